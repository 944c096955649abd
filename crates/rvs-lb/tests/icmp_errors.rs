//! Golden-packet tests of ICMP/ICMPv6 errors about balanced connections:
//! an error in, the exact translated error out. Every packet, the quoted
//! ones included, is built by etherparse (which also computes every
//! checksum), never by the code under test; the outputs are parsed back by
//! etherparse and their checksums recomputed by it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use etherparse::icmpv4::DestUnreachableHeader;
use etherparse::icmpv6::DestUnreachableCode;
use etherparse::{
    Icmpv4Header, Icmpv4Type, Icmpv6Header, Icmpv6Type, Ipv4Header, Ipv6Header, PacketBuilder,
    TcpHeader, UdpHeader,
};
use rvs_lb::config::{Config, DestSpec, ForwardMode, ServiceKey, ServiceSpec, ToaMode};
use rvs_lb::conn::{Time, Timeouts};
use rvs_lb::fwd::Verdict;
use rvs_lb::packet::Packet;
use rvs_lb::sched::SchedulerKind;
use rvs_lb::stats::{DropReason, TrafficStats};
use rvs_lb::worker::{Worker, WorkerOptions};

const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const LADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const R1: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 5);
/// A router between rvs and the real servers.
const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 254);
/// A router on the client side.
const CROUTER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);

const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 0x10);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x1, 0, 0, 0, 0, 1);
const LADDR6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x100);
const R6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 1, 0, 0, 0, 5);
const ROUTER6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0xfe);

const ROUTED: Verdict = Verdict::Forward { next_hop: None };

fn tcp4(
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    seq: u32,
    syn: bool,
    ack: Option<u32>,
) -> Vec<u8> {
    let b = PacketBuilder::ipv4(src.0.octets(), dst.0.octets(), 64).tcp(src.1, dst.1, seq, 64240);
    let b = if syn { b.syn() } else { b };
    let b = match ack {
        Some(a) => b.ack(a),
        None => b,
    };
    let mut v = Vec::new();
    b.write(&mut v, &[]).unwrap();
    v
}

fn tcp6(src: (Ipv6Addr, u16), dst: (Ipv6Addr, u16), seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv6(src.0.octets(), dst.0.octets(), 64)
        .tcp(src.1, dst.1, seq, 64240)
        .syn()
        .write(&mut v, payload)
        .unwrap();
    v
}

fn udp4(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(src.0.octets(), dst.0.octets(), 64)
        .udp(src.1, dst.1)
        .write(&mut v, payload)
        .unwrap();
    v
}

/// An ICMPv4 error from `src` to `dst` quoting `quote`.
fn icmp4(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, t: Icmpv4Type, quote: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(src.octets(), dst.octets(), ttl)
        .icmpv4(t)
        .write(&mut v, quote)
        .unwrap();
    v
}

/// An ICMPv6 error from `src` to `dst` quoting `quote`.
fn icmp6(src: Ipv6Addr, dst: Ipv6Addr, t: Icmpv6Type, quote: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv6(src.octets(), dst.octets(), 60)
        .icmpv6(t)
        .write(&mut v, quote)
        .unwrap();
    v
}

fn frag_needed(mtu: u16) -> Icmpv4Type {
    Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded {
        next_hop_mtu: mtu,
    })
}

fn worker(specs: Vec<ServiceSpec>) -> Worker {
    let config = Config::build(specs, Timeouts::default()).unwrap();
    let mut w = Worker::new(WorkerOptions {
        conn_capacity: 64,
        ..WorkerOptions::default()
    });
    w.apply(Arc::new(config), false);
    w
}

fn spec(key: ServiceKey, laddr: IpAddr, dest: IpAddr, port: u16, mode: ForwardMode) -> ServiceSpec {
    let mut spec = ServiceSpec::new(key, SchedulerKind::Rr);
    spec.toa = ToaMode::Off;
    spec.laddrs = vec![laddr];
    spec.dests = vec![DestSpec::new(dest, port, mode)];
    spec
}

fn fullnat_tcp4() -> Worker {
    worker(vec![spec(
        ServiceKey::tcp(VIP.into(), 80),
        LADDR.into(),
        R1.into(),
        8080,
        ForwardMode::FullNat,
    )])
}

/// Runs a packet through the worker with headroom and tailroom around it.
fn run(w: &mut Worker, pkt: &[u8]) -> (Verdict, Vec<u8>) {
    let mut buf = vec![0u8; 64 + pkt.len() + 64];
    buf[64..64 + pkt.len()].copy_from_slice(pkt);
    let mut p = Packet::new(&mut buf, 64, pkt.len()).unwrap();
    let v = w.process(&mut p, 0, Time::from_secs(1));
    (v, p.data().to_vec())
}

/// Parses an ICMPv4 error with etherparse and checks every checksum in it
/// (outer IP header, ICMP, quoted IP header); returns the quoted bytes.
fn check_icmp4(pkt: &[u8]) -> Vec<u8> {
    let (ip, rest) = Ipv4Header::from_slice(pkt).unwrap();
    assert_eq!(
        ip.header_checksum,
        ip.calc_header_checksum(),
        "outer IPv4 checksum"
    );
    let (icmp, quote) = Icmpv4Header::from_slice(rest).unwrap();
    let recomputed = Icmpv4Header::with_checksum(icmp.icmp_type.clone(), quote);
    assert_eq!(icmp.checksum, recomputed.checksum, "ICMP checksum");
    let (qip, _) = Ipv4Header::from_slice(quote).unwrap();
    assert_eq!(
        qip.header_checksum,
        qip.calc_header_checksum(),
        "quoted IPv4 checksum"
    );
    quote.to_vec()
}

/// The same for ICMPv6 (the checksum includes the pseudo-header).
fn check_icmp6(pkt: &[u8]) -> Vec<u8> {
    let (ip, rest) = Ipv6Header::from_slice(pkt).unwrap();
    let (icmp, quote) = Icmpv6Header::from_slice(rest).unwrap();
    let recomputed =
        Icmpv6Header::with_checksum(icmp.icmp_type, ip.source, ip.destination, quote).unwrap();
    assert_eq!(icmp.checksum, recomputed.checksum, "ICMPv6 checksum");
    quote.to_vec()
}

/// The quoted TCP checksum of a full quote verifies for its addresses.
fn check_quoted_tcp4(quote: &[u8]) {
    let (qip, rest) = Ipv4Header::from_slice(quote).unwrap();
    let (tcp, payload) = TcpHeader::from_slice(rest).unwrap();
    assert_eq!(tcp.checksum, tcp.calc_checksum_ipv4(&qip, payload).unwrap());
}

#[test]
fn fullnat_frag_needed_from_the_server_side_reaches_the_client() {
    let mut w = fullnat_tcp4();
    let syn = tcp4((CLIENT, 40000), (VIP, 80), 1000, true, None);
    let (v, fwd) = run(&mut w, &syn);
    assert_eq!(v, ROUTED);
    let to_server = tcp4((LADDR, 1025), (R1, 8080), 1000, true, None);
    assert_eq!(fwd, to_server, "the SYN as the router sees it");

    // A router between rvs and R1 cannot forward it: frag-needed, MTU 1400,
    // quoting the whole L→R packet, sent to the local address.
    let err = icmp4(ROUTER, LADDR, 255, frag_needed(1400), &to_server);
    let (v, out) = run(&mut w, &err);
    assert_eq!(v, ROUTED);
    // The client gets it from the VIP, quoting exactly what it sent.
    let expected = icmp4(VIP, CLIENT, 255, frag_needed(1400), &syn);
    assert_eq!(out, expected);
    let quote = check_icmp4(&out);
    assert_eq!(quote, syn);
    check_quoted_tcp4(&quote);

    // Counted as an outbound packet of the service and the real server;
    // the connection is untouched.
    let s = &w.services()[0];
    let expect = TrafficStats {
        conns: 1,
        in_pkts: 1,
        out_pkts: 1,
        in_bytes: syn.len() as u64,
        out_bytes: err.len() as u64,
    };
    assert_eq!(s.stats, expect);
    assert_eq!(s.dest_stats[0], expect);
    assert_eq!(w.conns().len(), 1);
}

#[test]
fn fullnat_partial_quote_rewrites_ports_only() {
    let mut w = fullnat_tcp4();
    let syn = tcp4((CLIENT, 40000), (VIP, 80), 7, true, None);
    run(&mut w, &syn);
    let to_server = tcp4((LADDR, 1025), (R1, 8080), 7, true, None);
    // An RFC 792 router quotes the IP header and 8 bytes (ports and
    // sequence number): no TCP checksum to adjust.
    let err = icmp4(
        ROUTER,
        LADDR,
        250,
        Icmpv4Type::TimeExceeded(etherparse::icmpv4::TimeExceededCode::TtlExceededInTransit),
        &to_server[..28],
    );
    let (v, out) = run(&mut w, &err);
    assert_eq!(v, ROUTED);
    let expected = icmp4(
        VIP,
        CLIENT,
        250,
        Icmpv4Type::TimeExceeded(etherparse::icmpv4::TimeExceededCode::TtlExceededInTransit),
        &syn[..28],
    );
    assert_eq!(out, expected);
    check_icmp4(&out);
}

#[test]
fn nat_port_unreachable_from_the_server() {
    let mut w = worker(vec![spec(
        ServiceKey::udp(VIP.into(), 53),
        LADDR.into(),
        R1.into(),
        5353,
        ForwardMode::Nat,
    )]);
    let query = udp4((CLIENT, 5000), (VIP, 53), b"query");
    let (v, fwd) = run(&mut w, &query);
    assert_eq!(v, ROUTED);
    let to_server = udp4((CLIENT, 5000), (R1, 5353), b"query");
    assert_eq!(fwd, to_server);

    // R1 has nothing on 5353: port unreachable, to the client (through
    // rvs, its default route).
    let unreachable = Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port);
    let err = icmp4(R1, CLIENT, 64, unreachable.clone(), &to_server);
    let (v, out) = run(&mut w, &err);
    assert_eq!(v, ROUTED);
    assert_eq!(out, icmp4(VIP, CLIENT, 64, unreachable, &query));
    let quote = check_icmp4(&out);
    let (qip, rest) = Ipv4Header::from_slice(&quote).unwrap();
    let (udp, payload) = UdpHeader::from_slice(rest).unwrap();
    assert_eq!(udp.checksum, udp.calc_checksum_ipv4(&qip, payload).unwrap());
    assert_eq!(w.services()[0].stats.out_pkts, 1);
}

#[test]
fn icmpv6_packet_too_big_through_fullnat_v6() {
    let mut w = worker(vec![spec(
        ServiceKey::tcp(VIP6.into(), 443),
        LADDR6.into(),
        R6.into(),
        8443,
        ForwardMode::FullNat,
    )]);
    let syn = tcp6((CLIENT6, 50000), (VIP6, 443), 99, b"early data");
    let (v, fwd) = run(&mut w, &syn);
    assert_eq!(v, ROUTED);
    let to_server = tcp6((LADDR6, 1025), (R6, 8443), 99, b"early data");
    assert_eq!(fwd, to_server);

    let ptb = Icmpv6Type::PacketTooBig { mtu: 1280 };
    let err = icmp6(ROUTER6, LADDR6, ptb, &to_server);
    let (v, out) = run(&mut w, &err);
    assert_eq!(v, ROUTED);
    assert_eq!(out, icmp6(VIP6, CLIENT6, ptb, &syn));
    let quote = check_icmp6(&out);
    let (qip, rest) = Ipv6Header::from_slice(&quote).unwrap();
    let (tcp, payload) = TcpHeader::from_slice(rest).unwrap();
    assert_eq!(tcp.checksum, tcp.calc_checksum_ipv6(&qip, payload).unwrap());

    // A port unreachable from the server itself goes the same way.
    let unreach = Icmpv6Type::DestinationUnreachable(DestUnreachableCode::Port);
    let (v, out) = run(&mut w, &icmp6(R6, LADDR6, unreach, &to_server));
    assert_eq!(v, ROUTED);
    assert_eq!(out, icmp6(VIP6, CLIENT6, unreach, &syn));
}

#[test]
fn client_side_error_is_forwarded_to_the_server() {
    let mut w = fullnat_tcp4();
    run(&mut w, &tcp4((CLIENT, 40000), (VIP, 80), 1000, true, None));
    let synack = tcp4((R1, 8080), (LADDR, 1025), 5000, true, Some(1001));
    let (v, to_client) = run(&mut w, &synack);
    assert_eq!(v, ROUTED);
    assert_eq!(
        to_client,
        tcp4((VIP, 80), (CLIENT, 40000), 5000, true, Some(1001))
    );

    // A router on the client side cannot reach the client any more.
    let host = Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Host);
    let err = icmp4(CROUTER, VIP, 250, host.clone(), &to_client);
    let (v, out) = run(&mut w, &err);
    assert_eq!(v, ROUTED);
    // The server gets it from the local address, quoting its own SYN-ACK.
    assert_eq!(out, icmp4(LADDR, R1, 250, host, &synack));
    check_quoted_tcp4(&check_icmp4(&out));
    let s = &w.services()[0].stats;
    assert_eq!((s.in_pkts, s.out_pkts), (2, 1));
    assert_eq!(s.in_bytes, (40 + err.len()) as u64);
}

#[test]
fn nat_client_side_error_goes_to_the_server_keeping_its_source() {
    let mut w = worker(vec![spec(
        ServiceKey::udp(VIP.into(), 53),
        LADDR.into(),
        R1.into(),
        5353,
        ForwardMode::Nat,
    )]);
    run(&mut w, &udp4((CLIENT, 5000), (VIP, 53), b"q"));
    let answer = udp4((R1, 5353), (CLIENT, 5000), b"answer");
    let (_, to_client) = run(&mut w, &answer);
    assert_eq!(to_client, udp4((VIP, 53), (CLIENT, 5000), b"answer"));
    let port = Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port);
    let (v, out) = run(&mut w, &icmp4(CLIENT, VIP, 64, port.clone(), &to_client));
    assert_eq!(v, ROUTED);
    assert_eq!(out, icmp4(CLIENT, R1, 64, port, &answer));
    check_icmp4(&out);
}

#[test]
fn dr_client_side_error_goes_unchanged_to_the_server() {
    let mut w = worker(vec![spec(
        ServiceKey::tcp(VIP.into(), 80),
        LADDR.into(),
        R1.into(),
        0,
        ForwardMode::Dr,
    )]);
    run(&mut w, &tcp4((CLIENT, 40000), (VIP, 80), 1, true, None));
    // R1 answered the client directly as the VIP; the client's side
    // complains to the VIP.
    let reply = tcp4((VIP, 80), (CLIENT, 40000), 9, true, Some(2));
    let err = icmp4(CROUTER, VIP, 250, frag_needed(1300), &reply);
    let (v, out) = run(&mut w, &err);
    assert_eq!(
        v,
        Verdict::Forward {
            next_hop: Some(R1.into())
        }
    );
    assert_eq!(out, err);
}

#[test]
fn errors_about_no_connection_are_passed_untouched() {
    let mut w = fullnat_tcp4();
    run(&mut w, &tcp4((CLIENT, 40000), (VIP, 80), 1000, true, None));
    // Another local port: no such connection.
    let other = tcp4((LADDR, 1026), (R1, 8080), 1000, true, None);
    let err = icmp4(ROUTER, LADDR, 255, frag_needed(1400), &other);
    assert_eq!(run(&mut w, &err), (Verdict::Pass, err.clone()));
    // The client-side quote of a flow that is not ours.
    let stranger = tcp4((VIP, 81), (CLIENT, 40000), 1, true, Some(1));
    let err = icmp4(CROUTER, VIP, 255, frag_needed(1400), &stranger);
    assert_eq!(run(&mut w, &err), (Verdict::Pass, err.clone()));
    // Redirects are the stack's business even about a balanced flow.
    let to_server = tcp4((LADDR, 1025), (R1, 8080), 1000, true, None);
    let redirect = Icmpv4Type::Unknown {
        type_u8: 5,
        code_u8: 1,
        bytes5to8: ROUTER.octets(),
    };
    let err = icmp4(ROUTER, LADDR, 255, redirect, &to_server);
    assert_eq!(run(&mut w, &err), (Verdict::Pass, err.clone()));
    // An error quoting an ICMP error is never translated.
    let inner = icmp4(LADDR, R1, 64, frag_needed(1), &to_server);
    let err = icmp4(ROUTER, LADDR, 255, frag_needed(1400), &inner);
    assert_eq!(run(&mut w, &err), (Verdict::Pass, err.clone()));
    assert_eq!(w.services()[0].stats.out_pkts, 0);
    assert_eq!(w.drops().get(DropReason::Malformed), 0);
}

#[test]
fn truncated_quotes_are_dropped_as_malformed() {
    let mut w = fullnat_tcp4();
    run(&mut w, &tcp4((CLIENT, 40000), (VIP, 80), 1000, true, None));
    let to_server = tcp4((LADDR, 1025), (R1, 8080), 1000, true, None);
    // The IP header and only 4 bytes of TCP.
    let err = icmp4(ROUTER, LADDR, 255, frag_needed(1400), &to_server[..24]);
    assert_eq!(
        run(&mut w, &err),
        (Verdict::Drop(DropReason::Malformed), err.clone())
    );
    // Half an IP header.
    let err = icmp4(ROUTER, LADDR, 255, frag_needed(1400), &to_server[..10]);
    assert_eq!(run(&mut w, &err).0, Verdict::Drop(DropReason::Malformed));
    // ICMPv6 quoting too little of an IPv6 packet.
    let to_server6 = tcp6((LADDR6, 1025), (R6, 8443), 1, &[]);
    let err = icmp6(
        ROUTER6,
        LADDR6,
        Icmpv6Type::PacketTooBig { mtu: 1280 },
        &to_server6[..44],
    );
    assert_eq!(run(&mut w, &err).0, Verdict::Drop(DropReason::Malformed));
    assert_eq!(w.drops().get(DropReason::Malformed), 3);
    assert_eq!(w.services()[0].stats.out_pkts, 0);
}

/// The tunnel packet L→R carrying `inner` (IPIP, or GRE with `gre`), as a
/// router between rvs and the server sees it.
fn tunnelled(inner: &[u8], gre: bool) -> Vec<u8> {
    let gre_hdr: &[u8] = if gre { &[0, 0, 0x08, 0x00] } else { &[] };
    let proto = if gre {
        etherparse::IpNumber::GRE
    } else {
        etherparse::IpNumber::IPV4
    };
    let len = (gre_hdr.len() + inner.len()) as u16;
    let mut outer = Ipv4Header::new(len, 64, proto, LADDR.octets(), R1.octets()).unwrap();
    outer.header_checksum = outer.calc_header_checksum();
    let mut v = outer.to_bytes().to_vec();
    v.extend_from_slice(gre_hdr);
    v.extend_from_slice(inner);
    v
}

#[test]
fn tun_frag_needed_about_the_tunnel_packet_reaches_the_client() {
    for (kind, gre, overhead) in [
        (rvs_lb::config::TunnelKind::Ipip, false, 20),
        (rvs_lb::config::TunnelKind::Gre, true, 24),
    ] {
        let mut w = worker(vec![spec(
            ServiceKey::tcp(VIP.into(), 80),
            LADDR.into(),
            R1.into(),
            0,
            ForwardMode::Tun(kind),
        )]);
        let syn = tcp4((CLIENT, 40000), (VIP, 80), 1000, true, None);
        // The tunnelling itself is the TUN mode's business: only the
        // connection matters here.
        run(&mut w, &syn);
        let err = icmp4(ROUTER, LADDR, 255, frag_needed(1400), &tunnelled(&syn, gre));
        let (v, out) = run(&mut w, &err);
        assert_eq!(v, ROUTED, "{kind:?}");
        // A new error from the VIP: MTU less the tunnel overhead, quoting
        // the client's packet; TTL 64, precedence "internetwork control",
        // DF clear, as Linux sends errors.
        let icmp = Icmpv4Header::with_checksum(frag_needed(1400 - overhead), &syn);
        let mut ip = Ipv4Header::new(
            (icmp.header_len() + syn.len()) as u16,
            64,
            etherparse::IpNumber::ICMP,
            VIP.octets(),
            CLIENT.octets(),
        )
        .unwrap();
        ip.dscp = etherparse::IpDscp::try_new(0x30).unwrap();
        ip.dont_fragment = false;
        ip.header_checksum = ip.calc_header_checksum();
        let mut expected = ip.to_bytes().to_vec();
        expected.extend_from_slice(&icmp.to_bytes());
        expected.extend_from_slice(&syn);
        assert_eq!(out, expected, "{kind:?}");
        assert_eq!(check_icmp4(&out), syn);
        assert_eq!(w.services()[0].stats.out_pkts, 1);

        // Other errors about tunnel packets, and tunnel packets of no
        // connection, are the stack's.
        let host = Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Host);
        let err = icmp4(ROUTER, LADDR, 255, host, &tunnelled(&syn, gre));
        assert_eq!(run(&mut w, &err).0, Verdict::Pass);
        let other = tcp4((CLIENT, 40001), (VIP, 80), 1, true, None);
        let err = icmp4(
            ROUTER,
            LADDR,
            255,
            frag_needed(1400),
            &tunnelled(&other, gre),
        );
        assert_eq!(run(&mut w, &err).0, Verdict::Pass);
    }
}

#[test]
fn tun_client_side_error_is_tunnelled_to_the_server() {
    let mut w = worker(vec![spec(
        ServiceKey::tcp(VIP.into(), 80),
        LADDR.into(),
        R1.into(),
        0,
        ForwardMode::Tun(rvs_lb::config::TunnelKind::Ipip),
    )]);
    run(&mut w, &tcp4((CLIENT, 40000), (VIP, 80), 1, true, None));
    // R1 answered the client directly as the VIP.
    let reply = tcp4((VIP, 80), (CLIENT, 40000), 9, true, Some(2));
    let err = icmp4(CROUTER, VIP, 250, frag_needed(1300), &reply);
    let (v, out) = run(&mut w, &err);
    assert_eq!(v, ROUTED);
    // The error, unchanged, inside IPIP from the local address to R1
    // (TTL 64; DF and identification from the inner header).
    let mut outer = Ipv4Header::new(
        err.len() as u16,
        64,
        etherparse::IpNumber::IPV4,
        LADDR.octets(),
        R1.octets(),
    )
    .unwrap();
    outer.header_checksum = outer.calc_header_checksum();
    let mut expected = outer.to_bytes().to_vec();
    expected.extend_from_slice(&err);
    assert_eq!(out, expected);
    assert_eq!(w.services()[0].stats.in_pkts, 2);
}
