//! FullNAT's client-address extras, packet for packet: TOA (TCP option
//! 254) in the SYN or in the first ACK and data segment, the MSS lowered on
//! the SYN-ACK, timestamps replaced by NOPs in the SYN, and UOA (IP protocol
//! 248 "opp" header) on the first three UDP datagrams.
//!
//! Expected packets are built by etherparse (its TCP option builder for the
//! standard options); etherparse knows neither TOA nor UOA, so those bytes
//! are written out by hand from the documented layouts (`fe 08 <port>
//! <IPv4>`, `fe 14 <port> <IPv6>`; UOA: `<ver<<4> 11 00 <len> 1f <optlen>
//! <port> <addr>`), and every checksum of every output is re-verified by
//! etherparse.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use etherparse::{
    IpHeaders, Ipv4Header, NetSlice, PacketBuilder, PacketBuilderStep, SlicedPacket, TcpHeader,
    TcpOptionElement, TransportSlice, UdpHeader,
};
use rvs_lb::config::{Config, DestSpec, ForwardMode, ServiceKey, ServiceSpec, ToaMode};
use rvs_lb::conn::{Time, Timeouts};
use rvs_lb::fwd::{FullNatCounters, Verdict};
use rvs_lb::packet::Packet;
use rvs_lb::sched::SchedulerKind;
use rvs_lb::worker::{Worker, WorkerOptions};

const CLIENT4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const VIP4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const LADDR4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const RS4: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 5);

const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 0x10);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 1);
const LADDR6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x100);
const RS6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 1, 0, 0, 0, 5);

const CPORT: u16 = 40000;
const LPORT: u16 = 1025;
const ROUTED: Verdict = Verdict::Forward { next_hop: None };
const T: Time = Time::ZERO;

/// The four endpoints of one FullNAT flow of either family.
#[derive(Clone, Copy)]
struct Net {
    client: (IpAddr, u16),
    vip: (IpAddr, u16),
    local: (IpAddr, u16),
    server: (IpAddr, u16),
}

fn net4(vport: u16, rport: u16) -> Net {
    Net {
        client: (CLIENT4.into(), CPORT),
        vip: (VIP4.into(), vport),
        local: (LADDR4.into(), LPORT),
        server: (RS4.into(), rport),
    }
}

fn net6(vport: u16, rport: u16) -> Net {
    Net {
        client: (CLIENT6.into(), CPORT),
        vip: (VIP6.into(), vport),
        local: (LADDR6.into(), LPORT),
        server: (RS6.into(), rport),
    }
}

fn worker(net: &Net, udp: bool, toa: ToaMode, uoa: bool) -> Worker {
    let key = if udp {
        ServiceKey::udp(net.vip.0, net.vip.1)
    } else {
        ServiceKey::tcp(net.vip.0, net.vip.1)
    };
    let mut spec = ServiceSpec::new(key, SchedulerKind::Rr);
    spec.toa = toa;
    spec.uoa = uoa;
    spec.laddrs = vec![net.local.0];
    spec.dests = vec![DestSpec::new(
        net.server.0,
        net.server.1,
        ForwardMode::FullNat,
    )];
    let config = Config::build(vec![spec], Timeouts::default()).unwrap();
    let mut w = Worker::new(WorkerOptions {
        conn_capacity: 64,
        ..WorkerOptions::default()
    });
    w.apply(Arc::new(config), false);
    w
}

/// Runs `pkt` through the worker in a buffer with `head` bytes of headroom
/// and `tail` bytes of tailroom.
fn run_with(w: &mut Worker, pkt: &[u8], head: usize, tail: usize) -> (Verdict, Vec<u8>) {
    let mut buf = vec![0u8; head + pkt.len() + tail];
    buf[head..head + pkt.len()].copy_from_slice(pkt);
    let mut p = Packet::new(&mut buf, head, pkt.len()).unwrap();
    let v = w.process(&mut p, 0, T);
    (v, p.data().to_vec())
}

fn run(w: &mut Worker, pkt: &[u8]) -> (Verdict, Vec<u8>) {
    run_with(w, pkt, 128, 128)
}

fn ip(src: IpAddr, dst: IpAddr) -> PacketBuilderStep<IpHeaders> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), 64),
        _ => panic!("mixed families"),
    }
}

/// The option bytes etherparse's option builder makes of `elems`.
fn opts(elems: &[TcpOptionElement]) -> Vec<u8> {
    let mut h = TcpHeader::default();
    h.set_options(elems).unwrap();
    h.options.as_slice().to_vec()
}

/// The TOA option for `client`, written out by hand.
fn toa_bytes(client: (IpAddr, u16)) -> Vec<u8> {
    let mut v = match client.0 {
        IpAddr::V4(_) => vec![0xfe, 8],
        IpAddr::V6(_) => vec![0xfe, 20],
    };
    v.extend_from_slice(&client.1.to_be_bytes());
    match client.0 {
        IpAddr::V4(a) => v.extend_from_slice(&a.octets()),
        IpAddr::V6(a) => v.extend_from_slice(&a.octets()),
    }
    v
}

#[derive(Clone, Copy, Default)]
struct Flags {
    syn: bool,
    ack: Option<u32>,
    fin: bool,
    rst: bool,
}

const SYN: Flags = Flags {
    syn: true,
    ack: None,
    fin: false,
    rst: false,
};

fn ack(n: u32) -> Flags {
    Flags {
        ack: Some(n),
        ..Flags::default()
    }
}

fn syn_ack(n: u32) -> Flags {
    Flags {
        syn: true,
        ack: Some(n),
        ..Flags::default()
    }
}

/// A TCP segment built by etherparse, with raw option bytes.
fn tcp(
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    seq: u32,
    f: Flags,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let mut b = ip(src.0, dst.0).tcp(src.1, dst.1, seq, 64240);
    if f.syn {
        b = b.syn();
    }
    if let Some(a) = f.ack {
        b = b.ack(a);
    }
    if f.fin {
        b = b.fin();
    }
    if f.rst {
        b = b.rst();
    }
    if !options.is_empty() {
        b = b.options_raw(options).unwrap();
    }
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

fn udp(src: (IpAddr, u16), dst: (IpAddr, u16), payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    ip(src.0, dst.0)
        .udp(src.1, dst.1)
        .write(&mut v, payload)
        .unwrap();
    v
}

/// Checks the IPv4 header checksum (if any) and the TCP checksum with
/// etherparse; returns the TCP option bytes.
fn verify_tcp(pkt: &[u8]) -> Vec<u8> {
    let s = SlicedPacket::from_ip(pkt).expect("etherparse parses the output");
    let Some(TransportSlice::Tcp(tcp)) = &s.transport else {
        panic!("not TCP")
    };
    let want = match &s.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header().to_header();
            assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 checksum");
            assert_eq!(usize::from(h.total_len), pkt.len(), "IPv4 total length");
            tcp.calc_checksum_ipv4(h.source, h.destination).unwrap()
        }
        Some(NetSlice::Ipv6(ip)) => {
            let h = ip.header().to_header();
            assert_eq!(usize::from(h.payload_length) + 40, pkt.len(), "IPv6 length");
            tcp.calc_checksum_ipv6(h.source, h.destination).unwrap()
        }
        _ => panic!("not IP"),
    };
    assert_eq!(tcp.checksum(), want, "TCP checksum");
    tcp.options().to_vec()
}

// ---------------------------------------------------------------- TOA ----

/// Client options of a typical Linux SYN: MSS, SACK permitted, timestamps,
/// NOP, window scale (20 bytes).
fn linux_syn_options(mss: u16) -> Vec<u8> {
    opts(&[
        TcpOptionElement::MaximumSegmentSize(mss),
        TcpOptionElement::SelectiveAcknowledgementPermitted,
        TcpOptionElement::Timestamp(0x1122_3344, 0),
        TcpOptionElement::Noop,
        TcpOptionElement::WindowScale(7),
    ])
}

/// The same with the timestamps option turned into ten NOPs.
fn linux_syn_options_without_timestamps(mss: u16) -> Vec<u8> {
    let mut e = vec![
        TcpOptionElement::MaximumSegmentSize(mss),
        TcpOptionElement::SelectiveAcknowledgementPermitted,
    ];
    e.extend(std::iter::repeat_n(TcpOptionElement::Noop, 10));
    e.extend([TcpOptionElement::Noop, TcpOptionElement::WindowScale(7)]);
    opts(&e)
}

#[test]
fn toa_in_the_syn() {
    for net in [net4(80, 8080), net6(80, 8080)] {
        let mut w = worker(&net, false, ToaMode::Syn, false);
        let (c, v, l, r) = (net.client, net.vip, net.local, net.server);

        // The SYN: timestamps become NOPs, then the TOA follows the options.
        let syn = tcp(c, v, 1000, SYN, &linux_syn_options(1460), &[]);
        let (verdict, out) = run(&mut w, &syn);
        assert_eq!(verdict, ROUTED);
        let mut o = linux_syn_options_without_timestamps(1460);
        o.extend(toa_bytes(c));
        assert_eq!(out, tcp(l, r, 1000, SYN, &o, &[]), "SYN with TOA");
        assert_eq!(verify_tcp(&out), o);

        // A retransmitted SYN carries it again.
        let (_, out) = run(&mut w, &syn);
        assert_eq!(out, tcp(l, r, 1000, SYN, &o, &[]), "retransmitted SYN");

        // The SYN-ACK's MSS is left alone in SYN mode.
        let mss = opts(&[TcpOptionElement::MaximumSegmentSize(1460)]);
        let synack = tcp(r, l, 5000, syn_ack(1001), &mss, &[]);
        let (_, out) = run(&mut w, &synack);
        assert_eq!(out, tcp(v, c, 5000, syn_ack(1001), &mss, &[]));
        verify_tcp(&out);

        // Neither the ACK nor data carry it.
        let a = tcp(c, v, 1001, ack(5001), &[], &[]);
        let (_, out) = run(&mut w, &a);
        assert_eq!(out, tcp(l, r, 1001, ack(5001), &[], &[]));
        let d = tcp(c, v, 1001, ack(5001), &[], b"hello");
        let (_, out) = run(&mut w, &d);
        assert_eq!(out, tcp(l, r, 1001, ack(5001), &[], b"hello"));
        verify_tcp(&out);

        let n = w.fullnat_counters();
        assert_eq!((n.toa_added, n.toa_skipped), (2, 0));
        assert_eq!(n.timestamps_removed, 2);
    }
}

/// The DPVS conversation: the TOA rides in the handshake's ACK and the first
/// data segment, and the SYN-ACK's MSS is lowered by the option's size.
#[test]
fn toa_in_the_first_ack_and_data() {
    for (net, mss_in, mss_out) in [(net4(80, 8080), 1460, 1452), (net6(80, 8080), 1440, 1420)] {
        let mut w = worker(&net, false, ToaMode::FirstData, false);
        let (c, v, l, r) = (net.client, net.vip, net.local, net.server);

        // The SYN: no TOA, timestamps gone.
        let syn = tcp(c, v, 1000, SYN, &linux_syn_options(mss_in), &[]);
        let (verdict, out) = run(&mut w, &syn);
        assert_eq!(verdict, ROUTED);
        let o = linux_syn_options_without_timestamps(mss_in);
        assert_eq!(out, tcp(l, r, 1000, SYN, &o, &[]), "SYN without TOA");
        verify_tcp(&out);

        // The SYN-ACK: MSS lowered by 8 (IPv4 TOA) or 20 (IPv6 TOA).
        let synack_opts = |mss| {
            opts(&[
                TcpOptionElement::MaximumSegmentSize(mss),
                TcpOptionElement::SelectiveAcknowledgementPermitted,
                TcpOptionElement::Noop,
                TcpOptionElement::WindowScale(7),
            ])
        };
        let synack = tcp(r, l, 5000, syn_ack(1001), &synack_opts(mss_in), &[]);
        let (verdict, out) = run(&mut w, &synack);
        assert_eq!(verdict, ROUTED);
        let want = tcp(v, c, 5000, syn_ack(1001), &synack_opts(mss_out), &[]);
        assert_eq!(out, want, "SYN-ACK with lowered MSS");
        verify_tcp(&out);

        // The handshake's ACK: TOA.
        let a = tcp(c, v, 1001, ack(5001), &[], &[]);
        let (_, out) = run(&mut w, &a);
        assert_eq!(out, tcp(l, r, 1001, ack(5001), &toa_bytes(c), &[]), "ACK");
        assert_eq!(verify_tcp(&out), toa_bytes(c));

        // The first data segment: TOA, payload moved behind it.
        let d = tcp(c, v, 1001, ack(5001), &[], b"GET / HTTP/1.0\r\n\r\n");
        let (_, out) = run(&mut w, &d);
        let want = tcp(
            l,
            r,
            1001,
            ack(5001),
            &toa_bytes(c),
            b"GET / HTTP/1.0\r\n\r\n",
        );
        assert_eq!(out, want, "first data segment");
        verify_tcp(&out);

        // Later segments: none, either way.
        let d2 = tcp(c, v, 1019, ack(5001), &[], b"more");
        let (_, out) = run(&mut w, &d2);
        assert_eq!(out, tcp(l, r, 1019, ack(5001), &[], b"more"), "later data");
        let a2 = tcp(c, v, 1023, ack(6000), &[], &[]);
        let (_, out) = run(&mut w, &a2);
        assert_eq!(out, tcp(l, r, 1023, ack(6000), &[], &[]), "later ACK");

        // A later SYN-ACK retransmission is not lowered any more.
        let (_, out) = run(&mut w, &synack);
        let want = tcp(v, c, 5000, syn_ack(1001), &synack_opts(mss_in), &[]);
        assert_eq!(out, want, "no TOA pending, MSS untouched");

        let n = w.fullnat_counters();
        assert_eq!((n.toa_added, n.toa_skipped), (2, 0));
        assert_eq!(n.timestamps_removed, 1);
    }
}

/// The data segment with piggy-backed data completes the TOA's work in one.
#[test]
fn toa_data_in_the_handshake_ack_clears_it() {
    let net = net4(80, 8080);
    let mut w = worker(&net, false, ToaMode::FirstData, false);
    let (c, v, l, r) = (net.client, net.vip, net.local, net.server);
    run(&mut w, &tcp(c, v, 1000, SYN, &[], &[]));
    run(&mut w, &tcp(r, l, 5000, syn_ack(1001), &[], &[]));
    let d = tcp(c, v, 1001, ack(5001), &[], b"x");
    let (_, out) = run(&mut w, &d);
    assert_eq!(out, tcp(l, r, 1001, ack(5001), &toa_bytes(c), b"x"));
    let (_, out) = run(&mut w, &tcp(c, v, 1002, ack(5001), &[], &[]));
    assert_eq!(out, tcp(l, r, 1002, ack(5001), &[], &[]));
    // RST never carries it.
    let mut w = worker(&net, false, ToaMode::FirstData, false);
    run(&mut w, &tcp(c, v, 1000, SYN, &[], &[]));
    let rst = Flags {
        rst: true,
        ..ack(5001)
    };
    let (_, out) = run(&mut w, &tcp(c, v, 1001, rst, &[], &[]));
    assert_eq!(out, tcp(l, r, 1001, rst, &[], &[]));
}

#[test]
fn toa_off_adds_nothing_and_keeps_the_mss() {
    let net = net4(80, 8080);
    let mut w = worker(&net, false, ToaMode::Off, false);
    let (c, v, l, r) = (net.client, net.vip, net.local, net.server);
    run(&mut w, &tcp(c, v, 1000, SYN, &[], &[]));
    let mss = opts(&[TcpOptionElement::MaximumSegmentSize(1460)]);
    let (_, out) = run(&mut w, &tcp(r, l, 5000, syn_ack(1001), &mss, &[]));
    assert_eq!(out, tcp(v, c, 5000, syn_ack(1001), &mss, &[]));
    let (_, out) = run(&mut w, &tcp(c, v, 1001, ack(5001), &[], b"x"));
    assert_eq!(out, tcp(l, r, 1001, ack(5001), &[], b"x"));
    assert_eq!(*w.fullnat_counters(), FullNatCounters::default());
}

/// No room → the segment goes on unchanged (but for the rewrite), counted;
/// the TOA is still pending for the next segment.
#[test]
fn toa_without_room_forwards_the_segment_plain() {
    for net in [net4(80, 8080), net6(80, 8080)] {
        let mut w = worker(&net, false, ToaMode::FirstData, false);
        let (c, v, l, r) = (net.client, net.vip, net.local, net.server);
        run(&mut w, &tcp(c, v, 1000, SYN, &[], &[]));
        run(&mut w, &tcp(r, l, 5000, syn_ack(1001), &[], &[]));

        // 1. No tailroom: the ACK goes without TOA.
        let a = tcp(c, v, 1001, ack(5001), &[], &[]);
        let (verdict, out) = run_with(&mut w, &a, 64, 0);
        assert_eq!(verdict, ROUTED);
        assert_eq!(out, tcp(l, r, 1001, ack(5001), &[], &[]), "no tailroom");
        verify_tcp(&out);
        assert_eq!(w.fullnat_counters().toa_skipped, 1);

        // 2. The TCP header would pass 60 bytes: 36 bytes of options
        //    (NOP, NOP, four SACK blocks) leave room for neither form.
        let sack = opts(&[
            TcpOptionElement::Noop,
            TcpOptionElement::Noop,
            TcpOptionElement::SelectiveAcknowledgement(
                (1, 2),
                [Some((3, 4)), Some((5, 6)), Some((7, 8))],
            ),
        ]);
        assert_eq!(sack.len(), 36);
        let a = tcp(c, v, 1001, ack(5001), &sack, &[]);
        let (_, out) = run(&mut w, &a);
        assert_eq!(out, tcp(l, r, 1001, ack(5001), &sack, &[]), "header full");
        verify_tcp(&out);
        assert_eq!(w.fullnat_counters().toa_skipped, 2);

        // 3. The path MTU (1500) would be exceeded: a full-sized data
        //    segment goes without TOA, and that was the first data.
        let full = vec![0x5a; 1500 - (a.len() - sack.len())];
        let d = tcp(c, v, 1001, ack(5001), &[], &full);
        assert_eq!(d.len(), 1500);
        let (verdict, out) = run(&mut w, &d);
        assert_eq!(verdict, ROUTED);
        assert_eq!(out, tcp(l, r, 1001, ack(5001), &[], &full), "MTU");
        verify_tcp(&out);
        let n = w.fullnat_counters();
        assert_eq!((n.toa_added, n.toa_skipped), (0, 3));

        // The first data segment has gone by: no more tries.
        let (_, out) = run(&mut w, &tcp(c, v, 2461, ack(5001), &[], b"x"));
        assert_eq!(out, tcp(l, r, 2461, ack(5001), &[], b"x"));
    }
}

/// An option area ending in End-of-Option-List padding: the padding turns
/// into NOPs so the TOA after it is read.
#[test]
fn toa_after_end_of_option_list() {
    let net = net4(80, 8080);
    let mut w = worker(&net, false, ToaMode::FirstData, false);
    let (c, v, l, r) = (net.client, net.vip, net.local, net.server);
    run(&mut w, &tcp(c, v, 1000, SYN, &[], &[]));
    // Window scale alone is padded by etherparse with an EOL.
    let ws = opts(&[TcpOptionElement::WindowScale(7)]);
    assert_eq!(ws, [3, 3, 7, 0]);
    let (_, out) = run(&mut w, &tcp(c, v, 1001, ack(5001), &ws, &[]));
    let mut o = opts(&[TcpOptionElement::WindowScale(7), TcpOptionElement::Noop]);
    o.extend(toa_bytes(c));
    assert_eq!(out, tcp(l, r, 1001, ack(5001), &o, &[]));
    verify_tcp(&out);
}

// ---------------------------------------------------------------- UOA ----

/// The UOA "opp" header for `client`, written out by hand.
fn uoa_bytes(client: (IpAddr, u16)) -> Vec<u8> {
    let (ver, len, optlen) = match client.0 {
        IpAddr::V4(_) => (0x10, 12, 8),
        IpAddr::V6(_) => (0x20, 24, 20),
    };
    let mut v = vec![ver, 17, 0, len, 31, optlen];
    v.extend_from_slice(&client.1.to_be_bytes());
    match client.0 {
        IpAddr::V4(a) => v.extend_from_slice(&a.octets()),
        IpAddr::V6(a) => v.extend_from_slice(&a.octets()),
    }
    v
}

/// The IP header length of a packet built by [`udp`] (no options or
/// extension headers).
fn ip_header_len(pkt: &[u8]) -> usize {
    if pkt[0] >> 4 == 4 { 20 } else { 40 }
}

/// `plain` (a UDP packet from etherparse) with the UOA header spliced in
/// after the IP header, protocol 248 and the length grown; the IPv4 header
/// checksum is recomputed by etherparse.
fn with_uoa(plain: &[u8], client: (IpAddr, u16)) -> Vec<u8> {
    let hl = ip_header_len(plain);
    let uoa = uoa_bytes(client);
    let mut out = plain[..hl].to_vec();
    out.extend_from_slice(&uoa);
    out.extend_from_slice(&plain[hl..]);
    if hl == 20 {
        let (mut h, _) = Ipv4Header::from_slice(&out).unwrap();
        h.protocol = etherparse::IpNumber(248);
        h.total_len += uoa.len() as u16;
        h.header_checksum = h.calc_header_checksum();
        out[..20].copy_from_slice(&h.to_bytes());
    } else {
        out[6] = 248;
        let plen = u16::from_be_bytes([out[4], out[5]]) + uoa.len() as u16;
        out[4..6].copy_from_slice(&plen.to_be_bytes());
    }
    out
}

/// What the backend's uoa module does: checks the IP header, removes the
/// opp header and returns the client it carried and the plain UDP packet,
/// whose UDP checksum etherparse then verifies.
fn strip_uoa(pkt: &[u8]) -> ((IpAddr, u16), Vec<u8>) {
    let hl = ip_header_len(pkt);
    let v4 = hl == 20;
    if v4 {
        let (h, _) = Ipv4Header::from_slice(pkt).unwrap();
        assert_eq!(h.protocol.0, 248);
        assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 checksum");
        assert_eq!(usize::from(h.total_len), pkt.len());
    } else {
        assert_eq!(pkt[6], 248);
        assert_eq!(
            usize::from(u16::from_be_bytes([pkt[4], pkt[5]])) + 40,
            pkt.len()
        );
    }
    let opp = &pkt[hl..];
    assert_eq!(opp[1], 17, "next protocol UDP");
    let len = usize::from(u16::from_be_bytes([opp[2], opp[3]]));
    assert_eq!(opp[4], 31, "UOA option code");
    let port = u16::from_be_bytes([opp[6], opp[7]]);
    let addr: IpAddr = match (opp[0] >> 4, opp[5]) {
        (1, 8) => Ipv4Addr::from(<[u8; 4]>::try_from(&opp[8..12]).unwrap()).into(),
        (2, 20) => Ipv6Addr::from(<[u8; 16]>::try_from(&opp[8..24]).unwrap()).into(),
        other => panic!("bad opp version/length {other:?}"),
    };
    assert_eq!(len, 4 + usize::from(opp[5]));
    let mut plain = pkt[..hl].to_vec();
    plain.extend_from_slice(&pkt[hl + len..]);
    if v4 {
        let (mut h, _) = Ipv4Header::from_slice(&plain).unwrap();
        h.protocol = etherparse::IpNumber::UDP;
        h.total_len -= len as u16;
        h.header_checksum = h.calc_header_checksum();
        plain[..20].copy_from_slice(&h.to_bytes());
    } else {
        plain[6] = 17;
        let plen = u16::from_be_bytes([plain[4], plain[5]]) - len as u16;
        plain[4..6].copy_from_slice(&plen.to_be_bytes());
    }
    verify_udp(&plain);
    ((addr, port), plain)
}

/// Checks a plain UDP packet's checksums with etherparse.
fn verify_udp(pkt: &[u8]) {
    let s = SlicedPacket::from_ip(pkt).expect("etherparse parses it");
    let Some(TransportSlice::Udp(u)) = &s.transport else {
        panic!("not UDP")
    };
    let h = u.to_header();
    let want = match &s.net {
        Some(NetSlice::Ipv4(ip)) => {
            let iph = ip.header().to_header();
            assert_eq!(iph.header_checksum, iph.calc_header_checksum());
            h.calc_checksum_ipv4_raw(iph.source, iph.destination, u.payload())
                .unwrap()
        }
        Some(NetSlice::Ipv6(ip)) => {
            let iph = ip.header().to_header();
            h.calc_checksum_ipv6_raw(iph.source, iph.destination, u.payload())
                .unwrap()
        }
        _ => panic!("not IP"),
    };
    assert_eq!(h.checksum, want, "UDP checksum");
    let _: UdpHeader = h;
}

#[test]
fn uoa_on_the_first_three_datagrams() {
    for net in [net4(53, 5353), net6(53, 5353)] {
        // With headroom (the IP header moves down) and without (the
        // datagram moves up): the same bytes.
        for head in [128, 0] {
            let mut w = worker(&net, true, ToaMode::Off, true);
            let (c, v, l, r) = (net.client, net.vip, net.local, net.server);
            for i in 0..5u8 {
                let payload = [i; 9];
                let (verdict, out) = run_with(&mut w, &udp(c, v, &payload), head, 64);
                assert_eq!(verdict, ROUTED);
                let plain = udp(l, r, &payload);
                if i < 3 {
                    assert_eq!(out, with_uoa(&plain, c), "datagram {i} carries UOA");
                    let (client, stripped) = strip_uoa(&out);
                    assert_eq!(client, c);
                    assert_eq!(stripped, plain);
                } else {
                    assert_eq!(out, plain, "datagram {i} is plain UDP");
                    verify_udp(&out);
                }
                // Replies are never touched by UOA.
                let (_, back) = run(&mut w, &udp(r, l, b"answer"));
                assert_eq!(back, udp(v, c, b"answer"));
            }
            let n = w.fullnat_counters();
            assert_eq!((n.uoa_added, n.uoa_skipped), (3, 0));
        }
    }
}

#[test]
fn uoa_without_room_waits_for_the_next_datagram() {
    for net in [net4(53, 5353), net6(53, 5353)] {
        let mut w = worker(&net, true, ToaMode::Off, true);
        let (c, v, l, r) = (net.client, net.vip, net.local, net.server);
        // Neither headroom nor tailroom.
        let (verdict, out) = run_with(&mut w, &udp(c, v, b"a"), 0, 0);
        assert_eq!(verdict, ROUTED);
        assert_eq!(out, udp(l, r, b"a"));
        verify_udp(&out);
        // Past the MTU (1500).
        let hl = ip_header_len(&out);
        let big = vec![7u8; 1500 - hl - 8];
        let (_, out) = run(&mut w, &udp(c, v, &big));
        assert_eq!(out, udp(l, r, &big));
        assert_eq!(w.fullnat_counters().uoa_skipped, 2);
        // Three more get it, then plain.
        for i in 0..4u8 {
            let (_, out) = run(&mut w, &udp(c, v, &[i]));
            if i < 3 {
                assert_eq!(out, with_uoa(&udp(l, r, &[i]), c));
            } else {
                assert_eq!(out, udp(l, r, &[i]));
            }
        }
        let n = w.fullnat_counters();
        assert_eq!((n.uoa_added, n.uoa_skipped), (3, 2));
    }
}

#[test]
fn uoa_off_sends_plain_udp() {
    let net = net4(53, 5353);
    let mut w = worker(&net, true, ToaMode::FirstData, false);
    let (c, v, l, r) = (net.client, net.vip, net.local, net.server);
    let (_, out) = run(&mut w, &udp(c, v, b"q"));
    assert_eq!(out, udp(l, r, b"q"));
    assert_eq!(*w.fullnat_counters(), FullNatCounters::default());
}

/// A first fragment keeps its layout (later fragments' offsets count from
/// the UDP header): no UOA, and the flow tries again on the next datagram.
#[test]
fn uoa_skips_first_fragments() {
    let net = net4(53, 5353);
    let mut w = worker(&net, true, ToaMode::Off, true);
    let (c, v, l, r) = (net.client, net.vip, net.local, net.server);
    let more_fragments = |pkt: &[u8]| {
        let (mut h, rest) = Ipv4Header::from_slice(pkt).unwrap();
        h.more_fragments = true;
        h.header_checksum = h.calc_header_checksum();
        let mut v = h.to_bytes().to_vec();
        v.extend_from_slice(rest);
        v
    };
    let (verdict, out) = run(&mut w, &more_fragments(&udp(c, v, b"part")));
    assert_eq!(verdict, ROUTED);
    assert_eq!(out, more_fragments(&udp(l, r, b"part")));
    let (_, out) = run(&mut w, &udp(c, v, b"whole"));
    assert_eq!(out, with_uoa(&udp(l, r, b"whole"), c));
    let n = w.fullnat_counters();
    assert_eq!((n.uoa_added, n.uoa_skipped), (1, 1));
}
