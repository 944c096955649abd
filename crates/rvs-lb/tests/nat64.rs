//! Golden-packet tests of NAT64 in FullNAT: an IPv6 VIP balanced to IPv4
//! real servers through an IPv4 local address. Every expected packet is
//! built by etherparse (an independent builder that computes its own
//! checksums), and every translated packet is also re-parsed by etherparse
//! with its checksums recomputed from scratch.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use etherparse::{
    IpDscp, IpEcn, IpFragOffset, IpHeaders, IpNumber, Ipv4Header, Ipv6Extensions, Ipv6FlowLabel,
    Ipv6FragmentHeader, Ipv6Header, Ipv6RawExtHeader, Ipv6RoutingExtensions, PacketBuilder,
    SlicedPacket, TcpHeader, TcpOptionElement, TransportSlice,
};
use rvs_lb::config::{Config, DestSpec, ForwardMode, ServiceKey, ServiceSpec, ToaMode};
use rvs_lb::conn::{ConnState, TcpState, Time, Timeouts};
use rvs_lb::fwd::Verdict;
use rvs_lb::packet::Packet;
use rvs_lb::sched::SchedulerKind;
use rvs_lb::stats::DropReason;
use rvs_lb::worker::{Worker, WorkerOptions};

const CLIENT: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x10);
const VIP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const LADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const R1: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 5);
/// The first port of the default local-port range.
const LPORT: u16 = 1025;
const ROUTED: Verdict = Verdict::Forward { next_hop: None };

// ---- independent builders (etherparse) ----

/// IP header fields the translation carries over: hop limit / TTL and
/// traffic class / TOS.
#[derive(Clone, Copy)]
struct Ip {
    hop: u8,
    tc: u8,
}

const PLAIN: Ip = Ip { hop: 64, tc: 0 };

fn v4_header(src: Ipv4Addr, dst: Ipv4Addr, ip: Ip) -> IpHeaders {
    IpHeaders::Ipv4(
        Ipv4Header {
            source: src.octets(),
            destination: dst.octets(),
            time_to_live: ip.hop,
            dscp: IpDscp::try_new(ip.tc >> 2).unwrap(),
            ecn: IpEcn::try_new(ip.tc & 3).unwrap(),
            identification: 0,
            dont_fragment: true,
            ..Default::default()
        },
        Default::default(),
    )
}

fn v6_header(src: Ipv6Addr, dst: Ipv6Addr, ip: Ip, exts: Ipv6Extensions) -> IpHeaders {
    IpHeaders::Ipv6(
        Ipv6Header {
            traffic_class: ip.tc,
            flow_label: Ipv6FlowLabel::ZERO,
            payload_length: 0,
            next_header: IpNumber::TCP,
            hop_limit: ip.hop,
            source: src.octets(),
            destination: dst.octets(),
        },
        exts,
    )
}

/// A TCP segment description.
#[derive(Clone, Copy)]
struct Seg<'a> {
    sport: u16,
    dport: u16,
    seq: u32,
    syn: bool,
    ack: Option<u32>,
    mss: Option<u16>,
    payload: &'a [u8],
}

fn seg(sport: u16, dport: u16) -> Seg<'static> {
    Seg {
        sport,
        dport,
        seq: 1000,
        syn: false,
        ack: None,
        mss: None,
        payload: &[],
    }
}

fn tcp_header(s: &Seg<'_>) -> TcpHeader {
    let mut h = TcpHeader::new(s.sport, s.dport, s.seq, 64240);
    h.syn = s.syn;
    if let Some(a) = s.ack {
        h.ack = true;
        h.acknowledgment_number = a;
    }
    if let Some(m) = s.mss {
        h.set_options(&[
            TcpOptionElement::MaximumSegmentSize(m),
            TcpOptionElement::SelectiveAcknowledgementPermitted,
            TcpOptionElement::Noop,
            TcpOptionElement::WindowScale(7),
        ])
        .unwrap();
    }
    h
}

fn write(
    ip: IpHeaders,
    l4: impl FnOnce(etherparse::PacketBuilderStep<IpHeaders>) -> Vec<u8>,
) -> Vec<u8> {
    l4(PacketBuilder::ip(ip))
}

fn tcp6(src: Ipv6Addr, dst: Ipv6Addr, ip: Ip, exts: Ipv6Extensions, s: Seg<'_>) -> Vec<u8> {
    write(v6_header(src, dst, ip, exts), |b| {
        let mut v = Vec::new();
        b.tcp_header(tcp_header(&s))
            .write(&mut v, s.payload)
            .unwrap();
        v
    })
}

fn tcp4(src: Ipv4Addr, dst: Ipv4Addr, ip: Ip, s: Seg<'_>) -> Vec<u8> {
    write(v4_header(src, dst, ip), |b| {
        let mut v = Vec::new();
        b.tcp_header(tcp_header(&s))
            .write(&mut v, s.payload)
            .unwrap();
        v
    })
}

fn udp6(src: (Ipv6Addr, u16), dst: (Ipv6Addr, u16), ip: Ip, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ip(v6_header(src.0, dst.0, ip, Default::default()))
        .udp(src.1, dst.1)
        .write(&mut v, payload)
        .unwrap();
    v
}

fn udp4(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), ip: Ip, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ip(v4_header(src.0, dst.0, ip))
        .udp(src.1, dst.1)
        .write(&mut v, payload)
        .unwrap();
    v
}

fn echo6(src: Ipv6Addr, dst: Ipv6Addr, request: bool, id: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ip(v6_header(src, dst, PLAIN, Default::default()));
    let b = if request {
        b.icmpv6_echo_request(id, 7)
    } else {
        b.icmpv6_echo_reply(id, 7)
    };
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

fn echo4(src: Ipv4Addr, dst: Ipv4Addr, request: bool, id: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ip(v4_header(src, dst, PLAIN));
    let b = if request {
        b.icmpv4_echo_request(id, 7)
    } else {
        b.icmpv4_echo_reply(id, 7)
    };
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

/// Re-parses `pkt` with etherparse and recomputes every checksum from
/// scratch: the IPv4 header checksum and the layer-4 checksum.
fn assert_checksums(pkt: &[u8]) {
    let s = SlicedPacket::from_ip(pkt).expect("etherparse parses the packet");
    let net = s.net.expect("an IP header");
    let (v4, v6) = match &net {
        etherparse::NetSlice::Ipv4(i) => {
            let h = i.header().to_header();
            assert_eq!(
                h.header_checksum,
                h.calc_header_checksum(),
                "IPv4 header checksum"
            );
            (Some(h), None)
        }
        etherparse::NetSlice::Ipv6(i) => (None, Some(i.header().to_header())),
        _ => panic!("not IP"),
    };
    match s.transport.expect("a transport header") {
        TransportSlice::Tcp(t) => {
            let h = t.to_header();
            let want = match (&v4, &v6) {
                (Some(i), _) => h.calc_checksum_ipv4(i, t.payload()).unwrap(),
                (_, Some(i)) => h.calc_checksum_ipv6(i, t.payload()).unwrap(),
                _ => unreachable!(),
            };
            assert_eq!(h.checksum, want, "TCP checksum");
        }
        TransportSlice::Udp(u) => {
            let h = u.to_header();
            let want = match (&v4, &v6) {
                (Some(i), _) => h.calc_checksum_ipv4(i, u.payload()).unwrap(),
                (_, Some(i)) => h.calc_checksum_ipv6(i, u.payload()).unwrap(),
                _ => unreachable!(),
            };
            assert_eq!(h.checksum, want, "UDP checksum");
        }
        TransportSlice::Icmpv4(i) => {
            let want = i.icmp_type().calc_checksum(i.payload());
            assert_eq!(i.checksum(), want, "ICMPv4 checksum");
        }
        TransportSlice::Icmpv6(i) => {
            let ip = v6.unwrap();
            let want = i
                .icmp_type()
                .calc_checksum(ip.source, ip.destination, i.payload())
                .unwrap();
            assert_eq!(i.checksum(), want, "ICMPv6 checksum");
        }
        other => panic!("unexpected transport {other:?}"),
    }
}

// ---- the worker under test ----

fn spec(key: ServiceKey, port: u16) -> ServiceSpec {
    let mut spec = ServiceSpec::new(key, SchedulerKind::Rr);
    spec.toa = ToaMode::Off;
    spec.laddrs = vec![IpAddr::V4(LADDR)];
    spec.dests = vec![DestSpec::new(IpAddr::V4(R1), port, ForwardMode::FullNat)];
    spec
}

fn worker() -> Worker {
    let echo = ServiceKey::Addr {
        proto: 58,
        addr: VIP,
        port: 0,
    };
    let config = Config::build(
        vec![
            spec(ServiceKey::tcp(IpAddr::V6(VIP), 80), 8080),
            spec(ServiceKey::udp(IpAddr::V6(VIP), 53), 5353),
            spec(echo, 0),
        ],
        Timeouts::default(),
    )
    .unwrap();
    let mut w = Worker::new(WorkerOptions {
        conn_capacity: 64,
        ..WorkerOptions::default()
    });
    w.apply(Arc::new(config), false);
    w
}

const HEADROOM: usize = 64;

/// Runs `pkt` through the worker with `headroom` bytes before it and some
/// tailroom; returns the verdict, the packet after processing and where it
/// starts in the buffer.
fn run_with(w: &mut Worker, pkt: &[u8], headroom: usize) -> (Verdict, Vec<u8>, usize) {
    let mut buf = vec![0xeeu8; headroom + pkt.len() + 64];
    buf[headroom..headroom + pkt.len()].copy_from_slice(pkt);
    let mut p = Packet::new(&mut buf, headroom, pkt.len()).unwrap();
    let v = w.process(&mut p, 0, Time::from_secs(1));
    (v, p.data().to_vec(), p.start())
}

fn run(w: &mut Worker, pkt: &[u8]) -> (Verdict, Vec<u8>) {
    let (v, out, _) = run_with(w, pkt, HEADROOM);
    (v, out)
}

fn no_exts() -> Ipv6Extensions {
    Default::default()
}

/// Sets up a connection with a client SYN and returns the worker.
fn connected() -> Worker {
    let mut w = worker();
    let syn = Seg {
        syn: true,
        mss: Some(1440),
        ..seg(40000, 80)
    };
    let (v, _) = run(&mut w, &tcp6(CLIENT, VIP, PLAIN, no_exts(), syn));
    assert_eq!(v, ROUTED);
    w
}

// ---- TCP ----

#[test]
fn syn_v6_client_becomes_v4_syn_and_payload_does_not_move() {
    let mut w = worker();
    let ip = Ip { hop: 57, tc: 0xb9 };
    let syn = Seg {
        syn: true,
        mss: Some(1440),
        seq: 0x1234_5678,
        ..seg(40000, 80)
    };
    let input = tcp6(CLIENT, VIP, ip, no_exts(), syn);
    let (v, out, start) = run_with(&mut w, &input, HEADROOM);
    assert_eq!(v, ROUTED);
    // L:LPORT → R1:8080; TTL = hop limit, TOS = traffic class, DF, ident 0;
    // the client's MSS goes through unchanged (it fits IPv4 all the more).
    let expected = tcp4(
        LADDR,
        R1,
        ip,
        Seg {
            sport: LPORT,
            dport: 8080,
            ..syn
        },
    );
    assert_eq!(out, expected);
    assert_checksums(&out);
    // 40-byte IPv6 header replaced by a 20-byte IPv4 header in place: the
    // packet now starts 20 bytes later and the TCP header did not move.
    assert_eq!(start, HEADROOM + 20);
    assert_eq!(out.len(), input.len() - 20);
    let (_, conn) = w.conns().iter().next().unwrap();
    assert_eq!(conn.data.state, ConnState::Tcp(TcpState::SynRecv));
    assert_eq!(
        conn.reply_key().src_ip(),
        IpAddr::V4(R1),
        "the reply is expected from the IPv4 server"
    );
}

#[test]
fn syn_ack_v4_server_becomes_v6_with_mss_lowered_by_20() {
    let mut w = connected();
    let synack = Seg {
        syn: true,
        ack: Some(1001),
        mss: Some(1460),
        seq: 5000,
        ..seg(8080, LPORT)
    };
    let ip = Ip { hop: 63, tc: 0x10 };
    let input = tcp4(R1, LADDR, ip, synack);
    let (v, out, start) = run_with(&mut w, &input, HEADROOM);
    assert_eq!(v, ROUTED);
    let expected = tcp6(
        VIP,
        CLIENT,
        ip,
        no_exts(),
        Seg {
            sport: 80,
            dport: 40000,
            mss: Some(1440),
            ..synack
        },
    );
    assert_eq!(out, expected, "VIP:80 → client, MSS 1460 → 1440");
    assert_checksums(&out);
    assert_eq!(start, HEADROOM - 20, "grown into the headroom");
    assert_eq!(out.len(), input.len() + 20);

    // A SYN-ACK without an MSS option passes without one.
    let mut w = connected();
    let bare = Seg {
        mss: None,
        ..synack
    };
    let (_, out) = run(&mut w, &tcp4(R1, LADDR, PLAIN, bare));
    assert_eq!(
        out,
        tcp6(
            VIP,
            CLIENT,
            PLAIN,
            no_exts(),
            Seg {
                sport: 80,
                dport: 40000,
                ..bare
            }
        )
    );
}

#[test]
fn data_segments_both_ways_and_counters() {
    let mut w = connected();
    let synack = Seg {
        syn: true,
        ack: Some(1001),
        seq: 5000,
        ..seg(8080, LPORT)
    };
    run(&mut w, &tcp4(R1, LADDR, PLAIN, synack));
    let request = b"GET / HTTP/1.1\r\nHost: [2001:db8::1]\r\n\r\n";
    let data = Seg {
        seq: 1001,
        ack: Some(5001),
        payload: request,
        ..seg(40000, 80)
    };
    let input = tcp6(CLIENT, VIP, PLAIN, no_exts(), data);
    let (v, out) = run(&mut w, &input);
    assert_eq!(v, ROUTED);
    let expected = tcp4(
        LADDR,
        R1,
        PLAIN,
        Seg {
            sport: LPORT,
            dport: 8080,
            ..data
        },
    );
    assert_eq!(out, expected);
    assert_checksums(&out);

    // An odd-length response (the checksum's word alignment of the payload
    // must not matter).
    let body = vec![0xa5u8; 1001];
    let resp = Seg {
        seq: 5001,
        ack: Some(1001 + request.len() as u32),
        payload: &body,
        ..seg(8080, LPORT)
    };
    let input4 = tcp4(R1, LADDR, PLAIN, resp);
    let (v, out) = run(&mut w, &input4);
    assert_eq!(v, ROUTED);
    let expected = tcp6(
        VIP,
        CLIENT,
        PLAIN,
        no_exts(),
        Seg {
            sport: 80,
            dport: 40000,
            ..resp
        },
    );
    assert_eq!(out, expected);
    assert_checksums(&out);

    let (_, conn) = w.conns().iter().next().unwrap();
    assert_eq!(conn.data.state, ConnState::Tcp(TcpState::Established));
    let s = &w.services()[0];
    assert_eq!(s.stats.conns, 1);
    assert_eq!((s.stats.in_pkts, s.stats.out_pkts), (2, 2));
    // Bytes are counted as received, before translation.
    assert_eq!(
        s.stats.out_bytes,
        (tcp4(R1, LADDR, PLAIN, synack).len() + input4.len()) as u64
    );
}

#[test]
fn ipv4_options_from_the_server_are_dropped() {
    let mut w = connected();
    let synack = Seg {
        syn: true,
        ack: Some(1001),
        seq: 5000,
        payload: b"",
        ..seg(8080, LPORT)
    };
    let mut h = Ipv4Header {
        source: R1.octets(),
        destination: LADDR.octets(),
        time_to_live: 64,
        ..Default::default()
    };
    // A 4-byte option (NOP NOP NOP EOL): the header is 24 bytes.
    h.options = [1u8, 1, 1, 0][..].try_into().unwrap();
    let mut input = Vec::new();
    PacketBuilder::ip(IpHeaders::Ipv4(h, Default::default()))
        .tcp_header(tcp_header(&synack))
        .write(&mut input, &[])
        .unwrap();
    assert_eq!(input[0], 0x46);
    let (v, out, start) = run_with(&mut w, &input, HEADROOM);
    assert_eq!(v, ROUTED);
    let expected = tcp6(
        VIP,
        CLIENT,
        PLAIN,
        no_exts(),
        Seg {
            sport: 80,
            dport: 40000,
            ..synack
        },
    );
    assert_eq!(out, expected);
    assert_eq!(start, HEADROOM - 16, "grows by 40 − 24");
}

#[test]
fn ethernet_padding_is_cut_off() {
    let mut w = connected();
    let ack = Seg {
        seq: 1001,
        ack: Some(5001),
        ..seg(40000, 80)
    };
    let mut input = tcp6(CLIENT, VIP, PLAIN, no_exts(), ack);
    let exact = input.len();
    input.extend_from_slice(&[0u8; 6]);
    let (v, out) = run(&mut w, &input);
    assert_eq!(v, ROUTED);
    assert_eq!(out.len(), exact - 20);
    assert_eq!(
        out,
        tcp4(
            LADDR,
            R1,
            PLAIN,
            Seg {
                sport: LPORT,
                dport: 8080,
                ..ack
            }
        )
    );
}

// ---- headroom ----

#[test]
fn no_headroom_for_the_ipv6_header_drops_unchanged() {
    for headroom in [0usize, 19] {
        let mut w = connected();
        let synack = Seg {
            syn: true,
            ack: Some(1001),
            mss: Some(1460),
            ..seg(8080, LPORT)
        };
        let input = tcp4(R1, LADDR, PLAIN, synack);
        let (v, out, start) = run_with(&mut w, &input, headroom);
        assert_eq!(v, Verdict::Drop(DropReason::NoRoom), "headroom {headroom}");
        assert_eq!(out, input, "a dropped packet is left as it was");
        assert_eq!(start, headroom);
        assert_eq!(w.drops().get(DropReason::NoRoom), 1);
    }
    // Exactly 20 bytes is enough.
    let mut w = connected();
    let ack = Seg {
        ack: Some(1001),
        ..seg(8080, LPORT)
    };
    let (v, _, start) = run_with(&mut w, &tcp4(R1, LADDR, PLAIN, ack), 20);
    assert_eq!((v, start), (ROUTED, 0));
}

// ---- IPv6 extension headers ----

fn opts_header() -> Ipv6RawExtHeader {
    // PadN of 4 bytes: a valid 8-byte options header.
    Ipv6RawExtHeader::new_raw(IpNumber::TCP, &[1, 4, 0, 0, 0, 0]).unwrap()
}

#[test]
fn extension_headers_are_dropped_with_the_ipv6_header() {
    let mut w = worker();
    let syn = Seg {
        syn: true,
        mss: Some(1440),
        ..seg(40000, 80)
    };
    let exts = Ipv6Extensions {
        hop_by_hop_options: Some(opts_header()),
        destination_options: Some(opts_header()),
        ..Default::default()
    };
    let input = tcp6(CLIENT, VIP, PLAIN, exts, syn);
    assert_eq!(input.len(), 40 + 16 + 20 + 12);
    let (v, out, start) = run_with(&mut w, &input, HEADROOM);
    assert_eq!(v, ROUTED);
    let expected = tcp4(
        LADDR,
        R1,
        PLAIN,
        Seg {
            sport: LPORT,
            dport: 8080,
            ..syn
        },
    );
    assert_eq!(out, expected);
    assert_checksums(&out);
    assert_eq!(start, HEADROOM + 56 - 20, "shrinks by (40 + 16) − 20");

    // An atomic fragment header (offset 0, no more fragments) is the whole
    // datagram: translated like the others.
    let mut w = worker();
    let exts = Ipv6Extensions {
        fragment: Some(Ipv6FragmentHeader::new(
            IpNumber::TCP,
            IpFragOffset::ZERO,
            false,
            0xabcd,
        )),
        ..Default::default()
    };
    let (v, out) = run(&mut w, &tcp6(CLIENT, VIP, PLAIN, exts, syn));
    assert_eq!((v, out), (ROUTED, expected));
}

#[test]
fn routing_header_with_segments_left_and_first_fragments_are_unsupported() {
    let syn = Seg {
        syn: true,
        ..seg(40000, 80)
    };
    // Routing type 4 (segment routing) with one segment left.
    let routing = Ipv6RawExtHeader::new_raw(IpNumber::TCP, &[4, 1, 0, 0, 0, 0]).unwrap();
    let exts = Ipv6Extensions {
        routing: Some(Ipv6RoutingExtensions {
            routing,
            final_destination_options: None,
        }),
        ..Default::default()
    };
    let mut w = worker();
    let input = tcp6(CLIENT, VIP, PLAIN, exts, syn);
    let (v, out) = run(&mut w, &input);
    assert_eq!(v, Verdict::Drop(DropReason::Unsupported));
    assert_eq!(out, input);

    // Segments left 0: the VIP is the final destination; translated.
    let routing = Ipv6RawExtHeader::new_raw(IpNumber::TCP, &[4, 0, 0, 0, 0, 0]).unwrap();
    let exts = Ipv6Extensions {
        routing: Some(Ipv6RoutingExtensions {
            routing,
            final_destination_options: None,
        }),
        ..Default::default()
    };
    let mut w = worker();
    let (v, _) = run(&mut w, &tcp6(CLIENT, VIP, PLAIN, exts, syn));
    assert_eq!(v, ROUTED);

    // An authentication header covers the addresses being replaced.
    let exts = Ipv6Extensions {
        auth: Some(etherparse::IpAuthHeader::new(IpNumber::TCP, 0x100, 1, &[0u8; 12]).unwrap()),
        ..Default::default()
    };
    let mut w = worker();
    let input = tcp6(CLIENT, VIP, PLAIN, exts, syn);
    let (v, out) = run(&mut w, &input);
    assert_eq!(v, Verdict::Drop(DropReason::Unsupported));
    assert_eq!(out, input);

    // A first fragment (more fragments follow).
    let exts = Ipv6Extensions {
        fragment: Some(Ipv6FragmentHeader::new(
            IpNumber::TCP,
            IpFragOffset::ZERO,
            true,
            7,
        )),
        ..Default::default()
    };
    let mut w = worker();
    let input = tcp6(CLIENT, VIP, PLAIN, exts, syn);
    let (v, out) = run(&mut w, &input);
    assert_eq!(v, Verdict::Drop(DropReason::Unsupported));
    assert_eq!(out, input);
    assert_eq!(w.drops().get(DropReason::Unsupported), 1);
}

// ---- UDP ----

#[test]
fn udp_both_ways() {
    let mut w = worker();
    let ip = Ip { hop: 50, tc: 0x2e };
    let q = udp6((CLIENT, 5000), (VIP, 53), ip, b"odd-length query");
    let (v, out, start) = run_with(&mut w, &q, HEADROOM);
    assert_eq!(v, ROUTED);
    let expected = udp4((LADDR, LPORT), (R1, 5353), ip, b"odd-length query");
    assert_eq!(out, expected);
    assert_checksums(&out);
    assert_eq!(start, HEADROOM + 20);

    let a = udp4((R1, 5353), (LADDR, LPORT), PLAIN, b"answer");
    let (v, out, start) = run_with(&mut w, &a, HEADROOM);
    assert_eq!(v, ROUTED);
    assert_eq!(out, udp6((VIP, 53), (CLIENT, 5000), PLAIN, b"answer"));
    assert_checksums(&out);
    assert_eq!(start, HEADROOM - 20);
}

#[test]
fn udp_from_ipv4_without_checksum_gets_one_in_ipv6() {
    let mut w = worker();
    run(&mut w, &udp6((CLIENT, 5000), (VIP, 53), PLAIN, b"q"));
    let mut a = udp4((R1, 5353), (LADDR, LPORT), PLAIN, b"no checksum");
    a[26] = 0;
    a[27] = 0;
    let (v, out) = run(&mut w, &a);
    assert_eq!(v, ROUTED);
    assert_eq!(out, udp6((VIP, 53), (CLIENT, 5000), PLAIN, b"no checksum"));
    assert_checksums(&out);
}

// ---- ICMP echo ----

#[test]
fn echo_request_and_reply_translate_between_icmpv6_and_icmp() {
    let mut w = worker();
    let req = echo6(CLIENT, VIP, true, 0x4242, b"ping payload!");
    let (v, out, start) = run_with(&mut w, &req, HEADROOM);
    assert_eq!(v, ROUTED);
    // The identifier becomes the local port, as for any FullNAT echo flow.
    let expected = echo4(LADDR, R1, true, LPORT, b"ping payload!");
    assert_eq!(out, expected);
    assert_checksums(&out);
    assert_eq!(start, HEADROOM + 20);

    let rep = echo4(R1, LADDR, false, LPORT, b"ping payload!");
    let (v, out) = run(&mut w, &rep);
    assert_eq!(v, ROUTED);
    assert_eq!(out, echo6(VIP, CLIENT, false, 0x4242, b"ping payload!"));
    assert_checksums(&out);
    assert_eq!(w.conns().len(), 1);
}

// ---- whole conversation ----

#[test]
fn handshake_data_and_close_keep_every_checksum_valid() {
    let mut w = connected();
    let steps: Vec<(bool, Seg<'static>)> = vec![
        (
            false,
            Seg {
                syn: true,
                ack: Some(1001),
                mss: Some(1400),
                seq: 9,
                ..seg(8080, LPORT)
            },
        ),
        (
            true,
            Seg {
                seq: 1001,
                ack: Some(10),
                ..seg(40000, 80)
            },
        ),
        (
            true,
            Seg {
                seq: 1001,
                ack: Some(10),
                payload: b"x",
                ..seg(40000, 80)
            },
        ),
        (
            false,
            Seg {
                seq: 10,
                ack: Some(1002),
                payload: b"yz",
                ..seg(8080, LPORT)
            },
        ),
    ];
    for (from_client, s) in steps {
        let input = if from_client {
            tcp6(CLIENT, VIP, PLAIN, no_exts(), s)
        } else {
            tcp4(R1, LADDR, PLAIN, s)
        };
        let (v, out) = run(&mut w, &input);
        assert_eq!(v, ROUTED);
        assert_checksums(&out);
        assert_eq!(out[0] >> 4, if from_client { 4 } else { 6 });
    }
    let (_, conn) = w.conns().iter().next().unwrap();
    assert_eq!(conn.data.state, ConnState::Tcp(TcpState::Established));
}

// ---- properties ----

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any payload, hop limit and traffic class: both directions match
        /// the independently built packets exactly.
        #[test]
        fn translation_matches_etherparse(
            payload in proptest::collection::vec(any::<u8>(), 0..1500),
            hop in 1u8..=255,
            tc in any::<u8>(),
            sport in 1024u16..,
            seq in any::<u32>(),
        ) {
            let mut w = worker();
            let ip = Ip { hop, tc };
            let syn = Seg { syn: true, mss: Some(1440), ..seg(sport, 80) };
            let (v, _) = run(&mut w, &tcp6(CLIENT, VIP, ip, no_exts(), syn));
            prop_assert_eq!(v, ROUTED);
            let data = Seg { seq, ack: Some(1), payload: &payload, ..seg(sport, 80) };
            let (v, out) = run(&mut w, &tcp6(CLIENT, VIP, ip, no_exts(), data));
            prop_assert_eq!(v, ROUTED);
            let to_server = Seg { sport: LPORT, dport: 8080, ..data };
            prop_assert_eq!(out, tcp4(LADDR, R1, ip, to_server));
            let back = Seg { seq, ack: Some(2), payload: &payload, ..seg(8080, LPORT) };
            let (v, out) = run(&mut w, &tcp4(R1, LADDR, ip, back));
            prop_assert_eq!(v, ROUTED);
            let to_client = Seg { sport: 80, dport: sport, ..back };
            prop_assert_eq!(out, tcp6(VIP, CLIENT, ip, no_exts(), to_client));
        }

        /// Corrupted packets of a NAT64 flow never panic, and whatever is
        /// forwarded still fits its buffer.
        #[test]
        fn corrupted_packets_never_panic(
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
            cut in any::<usize>(),
            from_server in any::<bool>(),
            headroom in 0usize..48,
        ) {
            let mut w = connected();
            let udp_w = {
                let mut u = worker();
                run(&mut u, &udp6((CLIENT, 5000), (VIP, 53), PLAIN, b"q"));
                u
            };
            let mut pkt = if from_server {
                tcp4(R1, LADDR, PLAIN, Seg { ack: Some(1001), payload: b"abc", ..seg(8080, LPORT) })
            } else {
                tcp6(CLIENT, VIP, PLAIN, no_exts(), Seg { ack: Some(1), payload: b"abc", ..seg(40000, 80) })
            };
            for (at, x) in flips {
                let i = at % pkt.len();
                pkt[i] ^= x;
            }
            pkt.truncate(cut % (pkt.len() + 1));
            let _ = run_with(&mut w, &pkt, headroom);
            let mut u = udp_w;
            let _ = run_with(&mut u, &pkt, headroom);
        }
    }
}
