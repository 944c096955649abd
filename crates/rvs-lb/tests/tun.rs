//! Golden-packet tests of TUN forwarding (IPIP, IPv6-in-IPv6, GRE) and its
//! path-MTU handling: a packet in, the exact packet out. Expected packets
//! are built with etherparse (and, for the 4-byte GRE header, by hand from
//! RFC 2784), never by the code under test; checksums are recomputed by
//! etherparse.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use etherparse::{
    Icmpv4Header, Icmpv4Type, Icmpv6Header, Icmpv6Type, IpDscp, IpEcn, IpNumber, Ipv4Header,
    Ipv6FlowLabel, Ipv6Header, icmpv4::DestUnreachableHeader,
};
use rvs_lb::config::{Config, DestSpec, ForwardMode, ServiceKey, ServiceSpec, TunnelKind};
use rvs_lb::conn::{Time, Timeouts};
use rvs_lb::fwd::{FwdContext, Verdict};
use rvs_lb::packet::Packet;
use rvs_lb::sched::SchedulerKind;
use rvs_lb::stats::DropReason;
use rvs_lb::worker::{Worker, WorkerOptions};

const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const LADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const R1: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 5);

const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x10);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1);
const LADDR6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x100);
const R6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 1, 0, 0, 0, 5);

const HEADROOM: usize = 128;

fn worker(kind: TunnelKind, v6: bool, port: u16, mtu: u16) -> Worker {
    let (vip, laddr, r): (IpAddr, IpAddr, IpAddr) = if v6 {
        (VIP6.into(), LADDR6.into(), R6.into())
    } else {
        (VIP.into(), LADDR.into(), R1.into())
    };
    let mut spec = ServiceSpec::new(ServiceKey::tcp(vip, 80), SchedulerKind::Rr);
    // A local address of the other family first: the tunnel source must be
    // the one of the real server's family.
    spec.laddrs = if v6 {
        vec![LADDR.into(), laddr]
    } else {
        vec![LADDR6.into(), laddr]
    };
    spec.dests = vec![DestSpec::new(r, port, ForwardMode::Tun(kind))];
    let config = Config::build(vec![spec], Timeouts::default()).unwrap();
    // The rest of the context keeps its defaults, whatever fields it grows.
    #[allow(clippy::needless_update)]
    let fwd = FwdContext {
        mtu,
        ..FwdContext::default()
    };
    let mut w = Worker::new(WorkerOptions {
        conn_capacity: 64,
        fwd,
        ..WorkerOptions::default()
    });
    w.apply(Arc::new(config), false);
    w
}

/// A TCP SYN from the client to the VIP: `len` bytes of IPv4 with the given
/// DF bit, TOS and identification.
fn syn_v4(len: usize, df: bool, tos: u8, ident: u16) -> Vec<u8> {
    tcp_v4(len, df, tos, ident, true)
}

/// A TCP segment (SYN, or ACK) from the client to the VIP over IPv4.
fn tcp_v4(len: usize, df: bool, tos: u8, ident: u16, syn: bool) -> Vec<u8> {
    let payload = vec![0x5a; len - 40];
    let mut tcp = etherparse::TcpHeader::new(40000, 80, 1, 64240);
    tcp.syn = syn;
    tcp.ack = !syn;
    let mut ip = Ipv4Header::new(
        (20 + payload.len()) as u16,
        57,
        IpNumber::TCP,
        CLIENT.octets(),
        VIP.octets(),
    )
    .unwrap();
    ip.dont_fragment = df;
    ip.identification = ident;
    ip.dscp = IpDscp::try_new(tos >> 2).unwrap();
    ip.ecn = IpEcn::try_new(tos & 3).unwrap();
    ip.header_checksum = ip.calc_header_checksum();
    tcp.checksum = tcp.calc_checksum_ipv4(&ip, &payload).unwrap();
    let mut v = ip.to_bytes().to_vec();
    v.extend_from_slice(&tcp.to_bytes());
    v.extend_from_slice(&payload);
    assert_eq!(v.len(), len);
    v
}

/// A TCP SYN over IPv6, `len` bytes in all.
fn syn_v6(len: usize, traffic_class: u8, flow_label: u32) -> Vec<u8> {
    let payload = vec![0xa5; len - 60];
    let mut tcp = etherparse::TcpHeader::new(40000, 80, 1, 64240);
    tcp.syn = true;
    let ip = Ipv6Header {
        traffic_class,
        flow_label: Ipv6FlowLabel::try_new(flow_label).unwrap(),
        payload_length: (20 + payload.len()) as u16,
        next_header: IpNumber::TCP,
        hop_limit: 57,
        source: CLIENT6.octets(),
        destination: VIP6.octets(),
    };
    tcp.checksum = tcp.calc_checksum_ipv6(&ip, &payload).unwrap();
    let mut v = ip.to_bytes().to_vec();
    v.extend_from_slice(&tcp.to_bytes());
    v.extend_from_slice(&payload);
    assert_eq!(v.len(), len);
    v
}

/// Runs `pkt` through `w` in a buffer with `headroom` bytes in front (and
/// some tailroom, with two bytes of link padding after the packet);
/// returns the verdict and the packet's bytes afterwards.
fn run_with(w: &mut Worker, pkt: &[u8], headroom: usize) -> (Verdict, Vec<u8>) {
    let mut buf = vec![0xee; headroom + pkt.len() + 64];
    buf[headroom..headroom + pkt.len()].copy_from_slice(pkt);
    // Two bytes of link padding after the IP packet: not part of it.
    let mut p = Packet::new(&mut buf, headroom, pkt.len() + 2).unwrap();
    let v = w.process(&mut p, 0, Time::ZERO);
    (v, p.data().to_vec())
}

fn run(w: &mut Worker, pkt: &[u8]) -> (Verdict, Vec<u8>) {
    run_with(w, pkt, HEADROOM)
}

const ROUTE: Verdict = Verdict::Forward { next_hop: None };

/// The expected IPv4 outer header: `proto` 4 or 47, from LADDR to R1, TTL
/// 64, TOS, DF and identification as given.
fn outer_v4(proto: IpNumber, payload_len: usize, tos: u8, df: bool, ident: u16) -> Vec<u8> {
    let mut h =
        Ipv4Header::new(payload_len as u16, 64, proto, LADDR.octets(), R1.octets()).unwrap();
    h.dscp = IpDscp::try_new(tos >> 2).unwrap();
    h.ecn = IpEcn::try_new(tos & 3).unwrap();
    h.dont_fragment = df;
    h.identification = ident;
    h.header_checksum = h.calc_header_checksum();
    h.to_bytes().to_vec()
}

/// The expected IPv6 outer header from LADDR6 to R6, hop limit 64.
fn outer_v6(next: IpNumber, payload_len: usize, tc: u8, flow: u32) -> Vec<u8> {
    Ipv6Header {
        traffic_class: tc,
        flow_label: Ipv6FlowLabel::try_new(flow).unwrap(),
        payload_length: payload_len as u16,
        next_header: next,
        hop_limit: 64,
        source: LADDR6.octets(),
        destination: R6.octets(),
    }
    .to_bytes()
    .to_vec()
}

/// Checks an IPv4 outer header's checksum with etherparse's own parser and
/// returns the header and the rest.
fn parse_outer_v4(out: &[u8]) -> (Ipv4Header, &[u8]) {
    let (h, rest) = Ipv4Header::from_slice(out).unwrap();
    assert_eq!(
        h.header_checksum,
        h.calc_header_checksum(),
        "outer checksum"
    );
    (h, rest)
}

#[test]
fn ipip_v4_golden() {
    let mut w = worker(TunnelKind::Ipip, false, 0, 1500);
    let inner = syn_v4(60, true, 0xb9, 0x1234);
    let (v, out) = run(&mut w, &inner);
    assert_eq!(v, ROUTE);
    let mut want = outer_v4(IpNumber::IPV4, 60, 0xb9, true, 0x1234);
    want.extend_from_slice(&inner);
    assert_eq!(out, want);
    let (h, rest) = parse_outer_v4(&out);
    assert_eq!(h.protocol, IpNumber(4));
    assert_eq!(rest, &inner[..], "inner packet byte-identical");

    // The established path encapsulates the same way (an ACK this time,
    // with DF clear and another TOS: both follow the packet).
    let ack = tcp_v4(60, false, 0x00, 0x1235, false);
    let (v, out) = run(&mut w, &ack);
    assert_eq!(v, ROUTE);
    let mut want = outer_v4(IpNumber::IPV4, 60, 0x00, false, 0x1235);
    want.extend_from_slice(&ack);
    assert_eq!(out, want);
    assert_eq!(w.drops().total(), 0);
    assert_eq!(w.conns().len(), 1);
}

#[test]
fn ipip_v6_golden() {
    let mut w = worker(TunnelKind::Ipip, true, 80, 1500);
    let inner = syn_v6(100, 0x2e, 0xabcde);
    let (v, out) = run(&mut w, &inner);
    assert_eq!(v, ROUTE);
    let mut want = outer_v6(IpNumber(41), 100, 0x2e, 0xabcde);
    want.extend_from_slice(&inner);
    assert_eq!(out, want);
    let (h, rest) = Ipv6Header::from_slice(&out).unwrap();
    assert_eq!(h.next_header, IpNumber(41));
    assert_eq!(rest, &inner[..]);
    assert_eq!(w.drops().total(), 0);
}

#[test]
fn gre_v4_golden() {
    let mut w = worker(TunnelKind::Gre, false, 0, 1500);
    let inner = syn_v4(80, true, 0x28, 7);
    let (v, out) = run(&mut w, &inner);
    assert_eq!(v, ROUTE);
    let mut want = outer_v4(IpNumber::GRE, 4 + 80, 0x28, true, 7);
    // RFC 2784: no flags, version 0, protocol type IPv4.
    want.extend_from_slice(&[0x00, 0x00, 0x08, 0x00]);
    want.extend_from_slice(&inner);
    assert_eq!(out, want);
    let (h, rest) = parse_outer_v4(&out);
    assert_eq!(h.protocol, IpNumber(47));
    assert_eq!(&rest[4..], &inner[..]);
}

#[test]
fn gre_v6_golden() {
    let mut w = worker(TunnelKind::Gre, true, 0, 1500);
    let inner = syn_v6(90, 0, 0);
    let (v, out) = run(&mut w, &inner);
    assert_eq!(v, ROUTE);
    let mut want = outer_v6(IpNumber::GRE, 4 + 90, 0, 0);
    want.extend_from_slice(&[0x00, 0x00, 0x86, 0xdd]);
    want.extend_from_slice(&inner);
    assert_eq!(out, want);
}

/// The ICMP "fragmentation needed" rvs must send to the client about
/// `offending`, built by etherparse: from the VIP, TTL 64, precedence 6
/// (TOS 0xc0), DF clear, quoting at most 548 bytes (576 in all).
fn frag_needed(mtu: u16, offending: &[u8]) -> Vec<u8> {
    let quote = &offending[..offending.len().min(548)];
    let icmp = Icmpv4Header::with_checksum(
        Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded {
            next_hop_mtu: mtu,
        }),
        quote,
    );
    let mut ip = Ipv4Header::new(
        (8 + quote.len()) as u16,
        64,
        IpNumber::ICMP,
        VIP.octets(),
        CLIENT.octets(),
    )
    .unwrap();
    ip.dont_fragment = false;
    ip.dscp = IpDscp::try_new(0xc0 >> 2).unwrap();
    ip.header_checksum = ip.calc_header_checksum();
    let mut v = ip.to_bytes().to_vec();
    v.extend_from_slice(&icmp.to_bytes());
    v.extend_from_slice(quote);
    v
}

#[test]
fn ipip_v4_df_too_big_answers_frag_needed() {
    // MTU 1000 towards the servers: 980 bytes of inner packet fit exactly.
    let mut w = worker(TunnelKind::Ipip, false, 0, 1000);
    let fits = syn_v4(980, true, 0, 1);
    let (v, out) = run(&mut w, &fits);
    assert_eq!(v, ROUTE);
    assert_eq!(out.len(), 1000);
    assert_eq!(&out[20..], &fits[..]);

    // One byte more, DF set: the client hears "fragmentation needed, MTU
    // 980" from the VIP, quoting the first 548 bytes of its packet.
    let big = syn_v4(981, true, 0x10, 2);
    let (v, out) = run(&mut w, &big);
    assert_eq!(v, ROUTE);
    assert_eq!(out, frag_needed(980, &big));
    assert_eq!(out.len(), 576);
    let (h, rest) = parse_outer_v4(&out);
    assert_eq!((h.source, h.destination), (VIP.octets(), CLIENT.octets()));
    assert_eq!(&rest[8..], &big[..548]);
    // Answered, not dropped; the connection exists for the packets that fit.
    assert_eq!(w.drops().total(), 0);
    assert_eq!(w.conns().len(), 1);
}

#[test]
fn gre_v4_overhead_counts_in_the_mtu() {
    // GRE adds 24 bytes: 976 fit in 1000, 977 do not.
    let mut w = worker(TunnelKind::Gre, false, 0, 1000);
    let (v, out) = run(&mut w, &syn_v4(976, true, 0, 1));
    assert_eq!((v, out.len()), (ROUTE, 1000));
    let big = syn_v4(977, true, 0, 2);
    let (v, out) = run(&mut w, &big);
    assert_eq!(v, ROUTE);
    assert_eq!(out, frag_needed(976, &big));
}

#[test]
fn ipip_v4_df_too_big_small_packet_quotes_all_of_it() {
    // A tiny MTU: the whole offending packet fits in the quote.
    let mut w = worker(TunnelKind::Ipip, false, 0, 100);
    let big = syn_v4(200, true, 0, 3);
    let (v, out) = run(&mut w, &big);
    assert_eq!(v, ROUTE);
    assert_eq!(out, frag_needed(80, &big));
    assert_eq!(&out[28..], &big[..]);
}

#[test]
fn ipip_v4_df_clear_too_big_is_forwarded_for_fragmentation() {
    // DF clear: LVS forwards it with DF clear in the outer header; the
    // outer packet (1021 bytes) exceeds the MTU and is left to the egress
    // to fragment.
    let mut w = worker(TunnelKind::Ipip, false, 0, 1000);
    let big = syn_v4(1001, false, 0x04, 0xbeef);
    let (v, out) = run(&mut w, &big);
    assert_eq!(v, ROUTE);
    let mut want = outer_v4(IpNumber::IPV4, 1001, 0x04, false, 0xbeef);
    want.extend_from_slice(&big);
    assert_eq!(out, want);
    assert_eq!(w.drops().total(), 0);
}

#[test]
fn ipip_v6_too_big_answers_packet_too_big() {
    let mut w = worker(TunnelKind::Ipip, true, 0, 1500);
    let fits = syn_v6(1460, 0, 1);
    let (v, out) = run(&mut w, &fits);
    assert_eq!((v, out.len()), (ROUTE, 1500));

    let big = syn_v6(1461, 0, 1);
    let (v, out) = run(&mut w, &big);
    assert_eq!(v, ROUTE);
    let quote = &big[..1232];
    let icmp = Icmpv6Header::with_checksum(
        Icmpv6Type::PacketTooBig { mtu: 1460 },
        VIP6.octets(),
        CLIENT6.octets(),
        quote,
    )
    .unwrap();
    let mut want = Ipv6Header {
        traffic_class: 0,
        flow_label: Ipv6FlowLabel::ZERO,
        payload_length: (8 + quote.len()) as u16,
        next_header: IpNumber::IPV6_ICMP,
        hop_limit: 64,
        source: VIP6.octets(),
        destination: CLIENT6.octets(),
    }
    .to_bytes()
    .to_vec();
    want.extend_from_slice(&icmp.to_bytes());
    want.extend_from_slice(quote);
    assert_eq!(out, want);
    assert_eq!(out.len(), 1280);
    assert_eq!(w.drops().total(), 0);
}

#[test]
fn ipv6_tunnel_mtu_below_1280_drops_too_big() {
    // 1300 − 40 leaves 1260 for the inner packet: below the IPv6 minimum,
    // so no "packet too big" can help (IPVS refuses such a route).
    let mut w = worker(TunnelKind::Ipip, true, 0, 1300);
    let (v, _) = run(&mut w, &syn_v6(1280, 0, 0));
    assert_eq!(v, Verdict::Drop(DropReason::TooBig));
    assert_eq!(w.drops().get(DropReason::TooBig), 1);
}

#[test]
fn no_headroom_drops_no_room() {
    let mut w = worker(TunnelKind::Ipip, false, 0, 1500);
    let pkt = syn_v4(60, true, 0, 1);
    let (v, out) = run_with(&mut w, &pkt, 19);
    assert_eq!(v, Verdict::Drop(DropReason::NoRoom));
    assert_eq!(&out[..60], &pkt[..], "packet left as it was");
    assert_eq!(w.drops().get(DropReason::NoRoom), 1);
    // Exactly 20 bytes of headroom is enough.
    let mut w = worker(TunnelKind::Ipip, false, 0, 1500);
    let (v, out) = run_with(&mut w, &pkt, 20);
    assert_eq!((v, out.len()), (ROUTE, 80));

    // GRE needs 24; the ICMP error needs 28.
    let mut w = worker(TunnelKind::Gre, false, 0, 1500);
    let (v, _) = run_with(&mut w, &pkt, 23);
    assert_eq!(v, Verdict::Drop(DropReason::NoRoom));
    let mut w = worker(TunnelKind::Ipip, false, 0, 100);
    let (v, _) = run_with(&mut w, &syn_v4(200, true, 0, 1), 27);
    assert_eq!(v, Verdict::Drop(DropReason::NoRoom));
}

#[test]
fn tunnel_real_server_needs_a_local_address_of_its_family() {
    let mut spec = ServiceSpec::new(ServiceKey::tcp(VIP.into(), 80), SchedulerKind::Rr);
    spec.laddrs = vec![LADDR6.into()];
    spec.dests = vec![DestSpec::new(
        R1.into(),
        0,
        ForwardMode::Tun(TunnelKind::Ipip),
    )];
    let err = Config::build(vec![spec], Timeouts::default()).unwrap_err();
    assert!(err.to_string().contains("local address"), "{err}");
}
