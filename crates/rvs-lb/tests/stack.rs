//! Golden-frame tests of the stack (`rvs_lb::stack::Node`): an Ethernet
//! frame in, the exact frame out. Expected frames are built by etherparse
//! (or by hand from the RFC layouts for ARP), never by the code under test.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use etherparse::{
    Icmpv4Header, Icmpv4Type, Icmpv6Type, IpNumber, Ipv4Header, PacketBuilder, VlanId,
    icmpv4::TimeExceededCode, icmpv6::NeighborAdvertisementHeader,
};
use rvs_lb::config::{Config, DestSpec, ForwardMode, ServiceKey, ServiceSpec, ToaMode};
use rvs_lb::conn::{Time, Timeouts};
use rvs_lb::packet::Packet;
use rvs_lb::sched::SchedulerKind;
use rvs_lb::stack::{Action, AddrConfig, HEADROOM, Node, PortConfig, RouteConfig, StackConfig};
use rvs_lb::stats::DropReason;
use rvs_lb::worker::{Worker, WorkerOptions};
use rvs_wire::ethernet::MacAddr;

const PMAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const CMAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0c];
const GMAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];
const G2MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfd];
const R1MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x05];
const BCAST: [u8; 6] = [0xff; 6];

const IFACE: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const IFACE2: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const GW: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 254);
const GW2: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 253);
const NEIGH: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 9);
const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const LADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const R1: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);
const R_FAR: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 5);
const IFACE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const NEIGH6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 9);

fn v4(a: Ipv4Addr) -> IpAddr {
    IpAddr::V4(a)
}

fn stack_config(addrs: &[(IpAddr, u8)]) -> StackConfig {
    StackConfig {
        ports: vec![PortConfig {
            id: 0,
            name: "eth0".into(),
            mac: MacAddr(PMAC),
            mtu: 1500,
        }],
        addrs: addrs
            .iter()
            .map(|&(addr, prefix_len)| AddrConfig {
                addr,
                prefix_len,
                port: 0,
            })
            .collect(),
        routes: vec![
            RouteConfig {
                prefix: v4(Ipv4Addr::UNSPECIFIED),
                prefix_len: 0,
                gateway: Some(v4(GW)),
                port: 0,
            },
            RouteConfig {
                prefix: v4(Ipv4Addr::new(172, 16, 0, 0)),
                prefix_len: 16,
                gateway: Some(v4(GW2)),
                port: 0,
            },
        ],
        static_neighbours: vec![(v4(GW2), MacAddr(G2MAC), 0)],
        explicit_vips: false,
    }
}

fn default_addrs() -> Vec<(IpAddr, u8)> {
    vec![(v4(IFACE), 24), (IpAddr::V6(IFACE6), 64)]
}

fn lb(mode: ForwardMode, dest: Ipv4Addr) -> Config {
    let mut spec = ServiceSpec::new(ServiceKey::tcp(v4(VIP), 80), SchedulerKind::Rr);
    spec.toa = ToaMode::Off;
    spec.laddrs = vec![v4(LADDR)];
    let port = if mode == ForwardMode::Dr { 80 } else { 8080 };
    spec.dests = vec![DestSpec::new(v4(dest), port, mode)];
    Config::build(vec![spec], Timeouts::default()).unwrap()
}

fn node_with(lbc: Config, stack: StackConfig) -> Node {
    let mut w = Worker::new(WorkerOptions {
        conn_capacity: 64,
        ..WorkerOptions::default()
    });
    w.apply(Arc::new(lbc), false);
    let mut n = Node::new(w, Arc::new(stack));
    drain(&mut n);
    n
}

fn node() -> Node {
    node_with(lb(ForwardMode::FullNat, R1), stack_config(&default_addrs()))
}

/// Every generated frame, as (port, bytes).
fn drain(n: &mut Node) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 2048];
    while let Some((port, start, len)) = n.poll_transmit(&mut buf, Time::ZERO) {
        assert_eq!(start, HEADROOM);
        out.push((port, buf[start..start + len].to_vec()));
    }
    out
}

fn run_at(n: &mut Node, frame: &[u8], t: Time) -> (Action, Vec<u8>) {
    let mut buf = vec![0u8; HEADROOM + frame.len() + 256];
    buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
    let mut p = Packet::new(&mut buf, HEADROOM, frame.len()).unwrap();
    let a = n.handle(0, &mut p, t);
    (a, p.data().to_vec())
}

fn run(n: &mut Node, frame: &[u8]) -> (Action, Vec<u8>) {
    run_at(n, frame, Time::from_secs(1))
}

/// An Ethernet/IPv4 ARP frame, written from RFC 826's layout.
fn arp(
    op: u16,
    eth_dst: [u8; 6],
    sha: [u8; 6],
    spa: Ipv4Addr,
    tha: [u8; 6],
    tpa: Ipv4Addr,
) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&eth_dst);
    v.extend_from_slice(&sha);
    v.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4]);
    v.extend_from_slice(&op.to_be_bytes());
    v.extend_from_slice(&sha);
    v.extend_from_slice(&spa.octets());
    v.extend_from_slice(&tha);
    v.extend_from_slice(&tpa.octets());
    v
}

fn tcp_frame(
    eth: ([u8; 6], [u8; 6]),
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    ttl: u8,
    syn: bool,
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(eth.0, eth.1)
        .ipv4(src.0.octets(), dst.0.octets(), ttl)
        .tcp(src.1, dst.1, 1000, 64240);
    let b = if syn { b.syn() } else { b };
    let mut v = Vec::new();
    b.write(&mut v, &[]).unwrap();
    v
}

#[test]
fn arp_requests_for_owned_addresses_are_answered_exactly() {
    for target in [IFACE, VIP, LADDR] {
        let mut n = node();
        let req = arp(1, BCAST, CMAC, NEIGH, [0; 6], target);
        let (a, out) = run(&mut n, &req);
        assert_eq!(a, Action::Transmit { port: 0 }, "{target}");
        assert_eq!(out, arp(2, CMAC, PMAC, target, CMAC, NEIGH), "{target}");
        assert_eq!(n.counters().arp_replies_sent, 1);
        // The asker was learned (it asked us).
        assert!(n.neighbours().get(v4(NEIGH), 0).is_some());
    }
}

#[test]
fn arp_padding_and_vlan_tags_are_kept() {
    let mut n = node();
    // A 60-byte padded request inside one 802.1Q tag (VID 42).
    let mut req = arp(1, BCAST, CMAC, NEIGH, [0; 6], IFACE);
    req.splice(12..12, [0x81, 0x00, 0x00, 42]);
    req.resize(64, 0);
    let (a, out) = run(&mut n, &req);
    assert_eq!(a, Action::Transmit { port: 0 });
    let mut expected = arp(2, CMAC, PMAC, IFACE, CMAC, NEIGH);
    expected.splice(12..12, [0x81, 0x00, 0x00, 42]);
    expected.resize(64, 0);
    assert_eq!(out, expected);
}

#[test]
fn arp_requests_for_other_addresses_are_not_answered() {
    let mut n = node();
    let req = arp(1, BCAST, CMAC, NEIGH, [0; 6], Ipv4Addr::new(10, 0, 0, 77));
    let (a, _) = run(&mut n, &req);
    assert_eq!(a, Action::Consumed);
    assert_eq!(n.counters().arp_replies_sent, 0);
    assert!(drain(&mut n).is_empty());
    // Not addressed to us: the sender is not added (RFC 826).
    assert!(n.neighbours().get(v4(NEIGH), 0).is_none());
}

fn na_expected(dst_mac: [u8; 6], dst: Ipv6Addr, target: Ipv6Addr, solicited: bool) -> Vec<u8> {
    let mut payload = target.octets().to_vec();
    payload.extend_from_slice(&[2, 1]);
    payload.extend_from_slice(&PMAC);
    let mut v = Vec::new();
    PacketBuilder::ethernet2(PMAC, dst_mac)
        .ipv6(target.octets(), dst.octets(), 255)
        .icmpv6(Icmpv6Type::NeighborAdvertisement(
            NeighborAdvertisementHeader {
                router: true,
                solicited,
                r#override: true,
            },
        ))
        .write(&mut v, &payload)
        .unwrap();
    v
}

#[test]
fn neighbour_solicitation_gets_an_advertisement() {
    let mut n = node();
    let group = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 0x0001);
    let mut payload = IFACE6.octets().to_vec();
    payload.extend_from_slice(&[1, 1]);
    payload.extend_from_slice(&CMAC);
    let mut ns = Vec::new();
    PacketBuilder::ethernet2(CMAC, [0x33, 0x33, 0xff, 0, 0, 1])
        .ipv6(NEIGH6.octets(), group.octets(), 255)
        .icmpv6(Icmpv6Type::NeighborSolicitation)
        .write(&mut ns, &payload)
        .unwrap();
    let (a, out) = run(&mut n, &ns);
    assert_eq!(a, Action::Transmit { port: 0 });
    assert_eq!(out, na_expected(CMAC, NEIGH6, IFACE6, true));
    assert_eq!(n.counters().na_sent, 1);
    assert_eq!(
        n.neighbours().get(IpAddr::V6(NEIGH6), 0).unwrap().mac,
        MacAddr(CMAC)
    );
    // A corrupted checksum is dropped, not answered.
    let mut bad = ns.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert_eq!(run(&mut n, &bad).0, Action::Drop(DropReason::BadChecksum));
}

#[test]
fn ping_to_owned_addresses_is_answered_v4_and_v6() {
    let mut n = node();
    for dst in [IFACE, VIP] {
        let mut req = Vec::new();
        PacketBuilder::ethernet2(GMAC, PMAC)
            .ipv4(CLIENT.octets(), dst.octets(), 50)
            .icmpv4_echo_request(7, 3)
            .write(&mut req, b"ping data")
            .unwrap();
        let (a, out) = run(&mut n, &req);
        assert_eq!(a, Action::Transmit { port: 0 });
        let mut expected = Vec::new();
        PacketBuilder::ethernet2(PMAC, GMAC)
            .ipv4(dst.octets(), CLIENT.octets(), 64)
            .icmpv4_echo_reply(7, 3)
            .write(&mut expected, b"ping data")
            .unwrap();
        assert_eq!(out, expected, "{dst}");
    }
    let mut req = Vec::new();
    PacketBuilder::ethernet2(CMAC, PMAC)
        .ipv6(NEIGH6.octets(), IFACE6.octets(), 50)
        .icmpv6_echo_request(9, 1)
        .write(&mut req, b"ping6")
        .unwrap();
    let (a, out) = run(&mut n, &req);
    assert_eq!(a, Action::Transmit { port: 0 });
    let mut expected = Vec::new();
    PacketBuilder::ethernet2(PMAC, CMAC)
        .ipv6(IFACE6.octets(), NEIGH6.octets(), 64)
        .icmpv6_echo_reply(9, 1)
        .write(&mut expected, b"ping6")
        .unwrap();
    assert_eq!(out, expected);
    assert_eq!(n.counters().echo_replies, 3);
}

#[test]
fn fullnat_syn_leaves_to_the_resolved_real_server() {
    let mut n = node();
    let tx0 = n.counters().port(0).unwrap().tx_frames;
    // R1 answers an ARP request of ours: learned.
    let reply = arp(2, PMAC, R1MAC, R1, PMAC, IFACE);
    assert_eq!(run(&mut n, &reply).0, Action::Consumed);
    let syn = tcp_frame((GMAC, PMAC), (CLIENT, 40000), (VIP, 80), 64, true);
    let (a, out) = run(&mut n, &syn);
    assert_eq!(a, Action::Transmit { port: 0 });
    let expected = tcp_frame((PMAC, R1MAC), (LADDR, 1025), (R1, 8080), 63, true);
    assert_eq!(out, expected);
    assert_eq!(n.counters().forwarded, 1);
    assert_eq!(n.counters().port(0).unwrap().tx_frames, tx0 + 1);
}

#[test]
fn fullnat_syn_via_a_gateway_route() {
    let mut n = node_with(
        lb(ForwardMode::FullNat, R_FAR),
        stack_config(&default_addrs()),
    );
    let syn = tcp_frame((GMAC, PMAC), (CLIENT, 40000), (VIP, 80), 64, true);
    let (a, out) = run(&mut n, &syn);
    assert_eq!(a, Action::Transmit { port: 0 });
    // 172.16/16 goes via 10.0.0.253, a static neighbour.
    let expected = tcp_frame((PMAC, G2MAC), (LADDR, 1025), (R_FAR, 8080), 63, true);
    assert_eq!(out, expected);
}

#[test]
fn unresolved_neighbour_holds_and_asks_once() {
    // Packets to an unresolved next hop are held (the frame is consumed,
    // not dropped) and sent when the answer comes; one request only.
    let mut n = node();
    let t = Time::from_secs(5);
    let syn = |port| tcp_frame((GMAC, PMAC), (CLIENT, port), (VIP, 80), 64, true);
    let (a, _) = run_at(&mut n, &syn(40000), t);
    assert_eq!(a, Action::Consumed);
    let (a, _) = run_at(&mut n, &syn(40001), t.add_millis(10));
    assert_eq!(a, Action::Consumed);
    assert_eq!(n.counters().drops.get(DropReason::NeighbourPending), 0);
    assert_eq!(n.counters().neighbour_held, 2);
    assert_eq!(n.counters().neighbour_requests_limited, 1);
    // Exactly one request: who-has R1 tell 10.0.0.1.
    let sent = drain(&mut n);
    assert_eq!(sent, vec![(0, arp(1, BCAST, PMAC, IFACE, [0; 6], R1))]);
    // The answer arrives: the held packets leave, then the next packet
    // goes out directly.
    let reply = arp(2, PMAC, R1MAC, R1, PMAC, IFACE);
    assert_eq!(run_at(&mut n, &reply, t.add_millis(20)).0, Action::Consumed);
    let held = drain(&mut n);
    assert_eq!(held.len(), 2);
    assert!(held.iter().all(|(p, f)| *p == 0 && f[..6] == R1MAC));
    let (a, out) = run_at(&mut n, &syn(40002), t.add_millis(30));
    assert_eq!(a, Action::Transmit { port: 0 });
    assert_eq!(&out[..6], &R1MAC);
    assert!(drain(&mut n).is_empty());
    assert_eq!(n.counters().neighbour_held_sent, 2);
    assert_eq!(n.counters().forwarded, 3);
}

#[test]
fn held_fullnat_syn_leaves_exactly_once_resolved() {
    let mut n = node();
    let t = Time::from_secs(5);
    let tx0 = n.counters().port(0).unwrap().tx_frames;
    let syn = tcp_frame((GMAC, PMAC), (CLIENT, 40000), (VIP, 80), 64, true);
    let (a, _) = run_at(&mut n, &syn, t);
    assert_eq!(a, Action::Consumed);
    assert_eq!(n.counters().neighbour_held, 1);
    assert_eq!(
        drain(&mut n),
        vec![(0, arp(1, BCAST, PMAC, IFACE, [0; 6], R1))]
    );
    // Nothing more until the answer.
    assert!(drain(&mut n).is_empty());
    let reply = arp(2, PMAC, R1MAC, R1, PMAC, IFACE);
    assert_eq!(run_at(&mut n, &reply, t.add_millis(50)).0, Action::Consumed);
    let expected = tcp_frame((PMAC, R1MAC), (LADDR, 1025), (R1, 8080), 63, true);
    assert_eq!(drain(&mut n), vec![(0, expected.clone())]);
    assert_eq!(n.counters().neighbour_held_sent, 1);
    assert_eq!(n.counters().forwarded, 1);
    // ARP request + the SYN.
    assert_eq!(n.counters().port(0).unwrap().tx_frames, tx0 + 2);
    assert!(drain(&mut n).is_empty());
}

#[test]
fn a_fifth_packet_for_one_neighbour_is_dropped_and_counted() {
    let mut n = node();
    let t = Time::from_secs(5);
    for i in 0..4u16 {
        let syn = tcp_frame((GMAC, PMAC), (CLIENT, 40000 + i), (VIP, 80), 64, true);
        assert_eq!(run_at(&mut n, &syn, t).0, Action::Consumed);
    }
    let syn = tcp_frame((GMAC, PMAC), (CLIENT, 40004), (VIP, 80), 64, true);
    let (a, _) = run_at(&mut n, &syn, t);
    assert_eq!(a, Action::Drop(DropReason::NeighbourPending));
    assert_eq!(n.counters().neighbour_held, 4);
    assert_eq!(n.counters().neighbour_hold_overflow, 1);
    assert_eq!(n.counters().drops.get(DropReason::NeighbourPending), 1);
    drain(&mut n);
    // The four held ones leave, oldest first (client ports 40000..40003,
    // local ports 1025..1028), not the dropped fifth.
    let reply = arp(2, PMAC, R1MAC, R1, PMAC, IFACE);
    run_at(&mut n, &reply, t.add_millis(1));
    let sent = drain(&mut n);
    let expected: Vec<(u16, Vec<u8>)> = (0..4u16)
        .map(|i| {
            (
                0,
                tcp_frame((PMAC, R1MAC), (LADDR, 1025 + i), (R1, 8080), 63, true),
            )
        })
        .collect();
    assert_eq!(sent, expected);
}

#[test]
fn held_packets_expire_after_three_seconds() {
    let mut n = node();
    let t = Time::from_secs(5);
    let syn = tcp_frame((GMAC, PMAC), (CLIENT, 40000), (VIP, 80), 64, true);
    assert_eq!(run_at(&mut n, &syn, t).0, Action::Consumed);
    drain(&mut n);
    n.on_tick(t.add_millis(2_999));
    assert_eq!(n.counters().neighbour_held_expired, 0);
    n.on_tick(t.add_millis(3_000));
    assert_eq!(n.counters().neighbour_held_expired, 1);
    // A late answer sends nothing.
    let reply = arp(2, PMAC, R1MAC, R1, PMAC, IFACE);
    run_at(&mut n, &reply, t.add_millis(3_100));
    assert!(drain(&mut n).is_empty());
    assert_eq!(n.counters().neighbour_held_sent, 0);

    // Expired on resolution too, without a tick in between.
    let mut n = node();
    let syn2 = tcp_frame((GMAC, PMAC), (CLIENT, 40001), (VIP, 80), 64, true);
    assert_eq!(run_at(&mut n, &syn, t).0, Action::Consumed);
    assert_eq!(
        run_at(&mut n, &syn2, t.add_millis(1_500)).0,
        Action::Consumed
    );
    drain(&mut n);
    run_at(&mut n, &reply, t.add_millis(3_200));
    let sent = drain(&mut n);
    assert_eq!(
        sent,
        vec![(
            0,
            tcp_frame((PMAC, R1MAC), (LADDR, 1026), (R1, 8080), 63, true)
        )]
    );
    assert_eq!(n.counters().neighbour_held_expired, 1);
}

#[test]
fn rate_limit_allows_one_request_per_second() {
    let mut n = node();
    let t = Time::from_secs(5);
    for i in 0..50u16 {
        let syn = tcp_frame((GMAC, PMAC), (CLIENT, 40000 + i), (VIP, 80), 64, true);
        run_at(&mut n, &syn, t.add_millis(u64::from(i) * 40));
    }
    // 0 .. 1960 ms: requests at 0 and 1000 ms only.
    assert_eq!(drain(&mut n).len(), 2);
}

#[test]
fn dr_changes_only_the_mac_and_ttl() {
    let mut stack = stack_config(&default_addrs());
    stack.static_neighbours.push((v4(R1), MacAddr(R1MAC), 0));
    let mut n = node_with(lb(ForwardMode::Dr, R1), stack);
    let syn = tcp_frame((GMAC, PMAC), (CLIENT, 40000), (VIP, 80), 64, true);
    let (a, out) = run(&mut n, &syn);
    assert_eq!(a, Action::Transmit { port: 0 });
    // Same packet, TTL decremented as every forwarded packet's.
    let expected = tcp_frame((PMAC, R1MAC), (CLIENT, 40000), (VIP, 80), 63, true);
    assert_eq!(out, expected);
}

#[test]
fn routed_packets_decrement_ttl_and_expire_with_time_exceeded() {
    let mut n = node();
    let dst = Ipv4Addr::new(172, 16, 9, 9);
    let pkt = tcp_frame((GMAC, PMAC), (CLIENT, 1234), (dst, 80), 5, false);
    let (a, out) = run(&mut n, &pkt);
    assert_eq!(a, Action::Transmit { port: 0 });
    assert_eq!(
        out,
        tcp_frame((PMAC, G2MAC), (CLIENT, 1234), (dst, 80), 4, false)
    );

    let pkt = tcp_frame((GMAC, PMAC), (CLIENT, 1234), (dst, 80), 1, false);
    let (a, out) = run(&mut n, &pkt);
    assert_eq!(a, Action::Transmit { port: 0 });
    let offending = &pkt[14..];
    let icmp = Icmpv4Header::with_checksum(
        Icmpv4Type::TimeExceeded(TimeExceededCode::TtlExceededInTransit),
        offending,
    );
    let mut ip = Ipv4Header::new(
        (icmp.header_len() + offending.len()) as u16,
        64,
        IpNumber::ICMP,
        IFACE.octets(),
        CLIENT.octets(),
    )
    .unwrap();
    ip.dont_fragment = false;
    ip.dscp = etherparse::IpDscp::try_new(0x30).unwrap();
    ip.header_checksum = ip.calc_header_checksum();
    let mut expected = Vec::new();
    expected.extend_from_slice(&GMAC);
    expected.extend_from_slice(&PMAC);
    expected.extend_from_slice(&[0x08, 0x00]);
    expected.extend_from_slice(&ip.to_bytes());
    expected.extend_from_slice(&icmp.to_bytes());
    expected.extend_from_slice(offending);
    assert_eq!(out, expected);
    assert_eq!(n.counters().time_exceeded_sent, 1);
    // No route (IPv6 has no default here): dropped and counted.
    let mut p6 = Vec::new();
    PacketBuilder::ethernet2(CMAC, PMAC)
        .ipv6(
            NEIGH6.octets(),
            [0x20, 0x01, 0xd, 0xb9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            64,
        )
        .udp(1, 2)
        .write(&mut p6, b"x")
        .unwrap();
    assert_eq!(run(&mut n, &p6).0, Action::Drop(DropReason::NoRoute));
    assert_eq!(n.counters().drops.get(DropReason::NoRoute), 1);
}

#[test]
fn pass_for_an_owned_address_goes_to_the_kernel() {
    let mut n = node();
    let ssh = tcp_frame((GMAC, PMAC), (CLIENT, 50000), (IFACE, 22), 64, true);
    let (a, out) = run(&mut n, &ssh);
    assert_eq!(a, Action::Kernel);
    assert_eq!(out, ssh);
    assert_eq!(n.counters().to_kernel, 1);
    // And a frame for another MAC is not ours at all.
    let other = tcp_frame((GMAC, CMAC), (CLIENT, 50000), (IFACE, 22), 64, true);
    assert_eq!(run(&mut n, &other).0, Action::Drop(DropReason::NotForUs));
}

#[test]
fn adding_a_vip_announces_it() {
    let mut n = node();
    // At start, every owned address was announced once (drained by node()).
    assert_eq!(n.counters().garp_sent, 3);
    assert_eq!(n.counters().unsolicited_na_sent, 1);
    let vip2 = Ipv4Addr::new(198, 51, 100, 2);
    let vip6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x80);
    let mut a = ServiceSpec::new(ServiceKey::tcp(v4(VIP), 80), SchedulerKind::Rr);
    a.dests = vec![DestSpec::new(v4(R1), 8080, ForwardMode::Nat)];
    let mut b = ServiceSpec::new(ServiceKey::tcp(v4(vip2), 80), SchedulerKind::Rr);
    b.dests = vec![DestSpec::new(v4(R1), 8080, ForwardMode::Nat)];
    let mut c = ServiceSpec::new(ServiceKey::tcp(IpAddr::V6(vip6), 80), SchedulerKind::Rr);
    c.dests = vec![DestSpec::new(IpAddr::V6(NEIGH6), 8080, ForwardMode::Nat)];
    let cfg = Config::build(vec![a, b, c], Timeouts::default()).unwrap();
    n.apply(
        Arc::new(cfg),
        Arc::new(stack_config(&default_addrs())),
        false,
    );
    let sent = drain(&mut n);
    let garp = arp(1, BCAST, PMAC, vip2, [0; 6], vip2);
    let una = na_expected(
        [0x33, 0x33, 0, 0, 0, 1],
        "ff02::1".parse().unwrap(),
        vip6,
        false,
    );
    assert_eq!(sent, vec![(0, garp), (0, una)]);
    assert_eq!(n.counters().garp_sent, 4);
    assert_eq!(n.counters().unsolicited_na_sent, 2);
    // The new VIP is answered; the removed laddr no longer is.
    let (act, _) = run(&mut n, &arp(1, BCAST, CMAC, NEIGH, [0; 6], vip2));
    assert_eq!(act, Action::Transmit { port: 0 });
    let (act, _) = run(&mut n, &arp(1, BCAST, CMAC, NEIGH, [0; 6], LADDR));
    assert_eq!(act, Action::Consumed);
}

#[test]
fn explicit_vips_are_answered_only_once_added_as_addresses() {
    // As on a VRRP BACKUP: the service exists, its VIP is not announced.
    let mut stack = stack_config(&default_addrs());
    stack.explicit_vips = true;
    let mut n = node_with(lb(ForwardMode::FullNat, R1), stack.clone());
    let ask_vip = arp(1, BCAST, CMAC, NEIGH, [0; 6], VIP);
    assert_eq!(run(&mut n, &ask_vip).0, Action::Consumed);
    // The local address is still rvs's own.
    let (act, _) = run(&mut n, &arp(1, BCAST, CMAC, NEIGH, [0; 6], LADDR));
    assert_eq!(act, Action::Transmit { port: 0 });
    // Becoming MASTER: the VIP is added as an address, announced once
    // and answered.
    stack.addrs.push(AddrConfig {
        addr: v4(VIP),
        prefix_len: 32,
        port: 0,
    });
    n.apply(
        Arc::new(lb(ForwardMode::FullNat, R1)),
        Arc::new(stack.clone()),
        false,
    );
    assert_eq!(
        drain(&mut n),
        vec![(0, arp(1, BCAST, PMAC, VIP, [0; 6], VIP))]
    );
    let (act, out) = run(&mut n, &ask_vip);
    assert_eq!(act, Action::Transmit { port: 0 });
    assert_eq!(out, arp(2, CMAC, PMAC, VIP, CMAC, NEIGH));
    // Leaving MASTER: removed again, no longer answered.
    stack.addrs.pop();
    n.apply(
        Arc::new(lb(ForwardMode::FullNat, R1)),
        Arc::new(stack),
        false,
    );
    assert_eq!(run(&mut n, &ask_vip).0, Action::Consumed);
}

#[test]
fn removing_one_of_two_addresses_keeps_the_connected_route() {
    let two = vec![(v4(IFACE), 24), (v4(IFACE2), 24)];
    let mut stack = stack_config(&two);
    stack.routes.clear();
    stack.static_neighbours = vec![(v4(R1), MacAddr(R1MAC), 0)];
    let mut n = node_with(lb(ForwardMode::FullNat, R1), stack.clone());
    stack.addrs.remove(0);
    n.apply(
        Arc::new(lb(ForwardMode::FullNat, R1)),
        Arc::new(stack),
        false,
    );
    let r = n.routes().lookup(v4(R1)).unwrap();
    assert!(r.connected);
    let syn = tcp_frame((GMAC, PMAC), (CLIENT, 40000), (VIP, 80), 64, true);
    let (a, out) = run(&mut n, &syn);
    assert_eq!(a, Action::Transmit { port: 0 });
    assert_eq!(&out[..6], &R1MAC);
    // The removed address is no longer answered for.
    let (a, _) = run(&mut n, &arp(1, BCAST, CMAC, NEIGH, [0; 6], IFACE));
    assert_eq!(a, Action::Consumed);
}

#[test]
fn malformed_frames_are_dropped_and_counted() {
    let mut n = node();
    let syn = tcp_frame((GMAC, PMAC), (CLIENT, 40000), (VIP, 80), 64, true);
    let mut bad_len = syn.clone();
    bad_len[14 + 2] = 0x05; // IPv4 total length 1280 > frame
    let mut bad_ver = syn.clone();
    bad_ver[14] = 0x65; // version 6 in an IPv4 EtherType
    let mut vlan_cut = syn[..12].to_vec();
    vlan_cut.extend_from_slice(&[0x81, 0x00, 0x00]);
    let cases: Vec<Vec<u8>> = vec![
        syn[..10].to_vec(),
        syn[..14 + 12].to_vec(),
        bad_len,
        bad_ver,
        arp(1, BCAST, CMAC, NEIGH, [0; 6], IFACE)[..30].to_vec(),
        vlan_cut,
    ];
    for (i, f) in cases.iter().enumerate() {
        assert_eq!(
            run(&mut n, f).0,
            Action::Drop(DropReason::Malformed),
            "case {i}"
        );
    }
    assert_eq!(
        n.counters().drops.get(DropReason::Malformed),
        cases.len() as u64
    );
}

#[test]
fn the_kernel_is_answered_and_routed() {
    let mut n = node();
    // The kernel asks for its gateway: the node answers with the port MAC.
    let kmac = [0x02, 0, 0, 0, 0, 0x77];
    let mut buf = vec![0u8; 512];
    let req = arp(1, BCAST, kmac, IFACE, [0; 6], GW2);
    buf[HEADROOM..HEADROOM + req.len()].copy_from_slice(&req);
    let mut p = Packet::new(&mut buf, HEADROOM, req.len()).unwrap();
    assert_eq!(n.handle_from_kernel(&mut p, Time::ZERO), Action::Kernel);
    assert_eq!(p.data(), &arp(2, kmac, PMAC, GW2, kmac, IFACE)[..]);
    // Its packets are routed and resolved, TTL untouched.
    let out = tcp_frame(
        (kmac, PMAC),
        (IFACE, 22),
        (Ipv4Addr::new(172, 16, 1, 1), 5000),
        64,
        false,
    );
    let mut buf = vec![0u8; 512];
    buf[HEADROOM..HEADROOM + out.len()].copy_from_slice(&out);
    let mut p = Packet::new(&mut buf, HEADROOM, out.len()).unwrap();
    assert_eq!(
        n.handle_from_kernel(&mut p, Time::ZERO),
        Action::Transmit { port: 0 }
    );
    assert_eq!(
        p.data(),
        &tcp_frame(
            (PMAC, G2MAC),
            (IFACE, 22),
            (Ipv4Addr::new(172, 16, 1, 1), 5000),
            64,
            false
        )[..]
    );
}

#[test]
fn the_kernels_gratuitous_arp_for_an_owned_address_leaves_the_port() {
    let mut n = node();
    let kmac = [0x02, 0, 0, 0, 0, 0x77];
    let before = n.counters().garp_sent;
    for (addr, leaves) in [
        (VIP, true),
        (IFACE, true),
        (Ipv4Addr::new(10, 0, 0, 77), false),
    ] {
        let garp = arp(1, BCAST, kmac, addr, [0; 6], addr);
        let mut buf = vec![0u8; 512];
        buf[HEADROOM..HEADROOM + garp.len()].copy_from_slice(&garp);
        let mut p = Packet::new(&mut buf, HEADROOM, garp.len()).unwrap();
        let act = n.handle_from_kernel(&mut p, Time::ZERO);
        if leaves {
            assert_eq!(act, Action::Transmit { port: 0 }, "{addr}");
            // The port's MAC in the Ethernet header and as sender.
            assert_eq!(p.data(), &arp(1, BCAST, PMAC, addr, [0; 6], addr)[..]);
        } else {
            assert_eq!(act, Action::Consumed, "{addr}");
        }
    }
    assert_eq!(n.counters().garp_sent, before + 2);
}

/// The kernel's frame through [`Node::handle_from_kernel`]: the action
/// and the frame after it.
fn from_kernel(n: &mut Node, frame: &[u8]) -> (Action, Vec<u8>) {
    let mut buf = vec![0u8; HEADROOM + frame.len() + 64];
    buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
    let mut p = Packet::new(&mut buf, HEADROOM, frame.len()).unwrap();
    let a = n.handle_from_kernel(&mut p, Time::ZERO);
    (a, p.data().to_vec())
}

/// An ICMPv6 neighbour message from `src` to `dst` (hop limit 255).
fn nd_frame(
    eth: ([u8; 6], [u8; 6]),
    src: Ipv6Addr,
    dst: Ipv6Addr,
    kind: Icmpv6Type,
    payload: &[u8],
) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(eth.0, eth.1)
        .ipv6(src.octets(), dst.octets(), 255)
        .icmpv6(kind)
        .write(&mut v, payload)
        .unwrap();
    v
}

#[test]
fn the_kernels_dad_probe_leaves_unanswered() {
    let mut n = node();
    let kmac = [0x02, 0, 0, 0, 0, 0x77];
    let ll = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 0x0077);
    let group = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 0x0077);
    let gmac = [0x33, 0x33, 0xff, 0, 0, 0x77];
    // DAD for its link-local: from ::, no source link-layer option. An
    // answer would make the kernel give the address up; it goes out.
    let probe = nd_frame(
        (kmac, gmac),
        Ipv6Addr::UNSPECIFIED,
        group,
        Icmpv6Type::NeighborSolicitation,
        &ll.octets(),
    );
    let (a, out) = from_kernel(&mut n, &probe);
    assert_eq!(a, Action::Transmit { port: 0 });
    let want = nd_frame(
        (PMAC, gmac),
        Ipv6Addr::UNSPECIFIED,
        group,
        Icmpv6Type::NeighborSolicitation,
        &ll.octets(),
    );
    assert_eq!(out, want);
    // A resolving solicitation is still answered back to the kernel.
    let mut payload = NEIGH6.octets().to_vec();
    payload.extend_from_slice(&[1, 1]);
    payload.extend_from_slice(&kmac);
    let ns = nd_frame(
        (kmac, [0x33, 0x33, 0xff, 0, 0, 9]),
        IFACE6,
        Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 9),
        Icmpv6Type::NeighborSolicitation,
        &payload,
    );
    assert_eq!(from_kernel(&mut n, &ns).0, Action::Kernel);
}

#[test]
fn the_kernels_unsolicited_na_for_an_owned_address_leaves_the_port() {
    let mut n = node();
    let kmac = [0x02, 0, 0, 0, 0, 0x77];
    let ll = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 0x0077);
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let amac = [0x33, 0x33, 0, 0, 0, 1];
    let unsolicited = Icmpv6Type::NeighborAdvertisement(NeighborAdvertisementHeader {
        router: false,
        solicited: false,
        r#override: true,
    });
    let na = |eth_src: [u8; 6], target: Ipv6Addr, lladdr: &[u8; 6]| {
        let mut payload = target.octets().to_vec();
        payload.extend_from_slice(&[2, 1]);
        payload.extend_from_slice(lladdr);
        nd_frame((eth_src, amac), ll, all_nodes, unsolicited, &payload)
    };
    let before = n.counters().unsolicited_na_sent;
    // For an owned address: out of the port, the port's MAC as Ethernet
    // source and target link-layer address, the checksum redone.
    let (a, out) = from_kernel(&mut n, &na(kmac, IFACE6, &kmac));
    assert_eq!(a, Action::Transmit { port: 0 });
    assert_eq!(out, na(PMAC, IFACE6, &PMAC));
    // For an address the node does not own: dropped.
    let (a, _) = from_kernel(&mut n, &na(kmac, NEIGH6, &kmac));
    assert_eq!(a, Action::Consumed);
    assert_eq!(n.counters().unsolicited_na_sent, before + 1);
}

#[test]
fn stale_neighbours_age_out_on_tick() {
    let mut n = node();
    let reply = arp(2, PMAC, R1MAC, R1, PMAC, IFACE);
    run_at(&mut n, &reply, Time::ZERO);
    assert!(n.neighbours().get(v4(R1), 0).is_some());
    for s in 0..10 {
        n.on_tick(Time::from_secs(200 + s));
    }
    assert!(n.neighbours().get(v4(R1), 0).is_none());
    // The static one stays.
    assert!(n.neighbours().get(v4(GW2), 0).is_some());
}

#[test]
fn vlan_tagged_ping_is_answered_on_its_vlan() {
    let mut n = node();
    let mut req = Vec::new();
    PacketBuilder::ethernet2(GMAC, PMAC)
        .single_vlan(VlanId::try_new(7).unwrap())
        .ipv4(CLIENT.octets(), IFACE.octets(), 64)
        .icmpv4_echo_request(1, 1)
        .write(&mut req, b"v")
        .unwrap();
    let (a, out) = run(&mut n, &req);
    assert_eq!(a, Action::Transmit { port: 0 });
    let mut expected = Vec::new();
    PacketBuilder::ethernet2(PMAC, GMAC)
        .single_vlan(VlanId::try_new(7).unwrap())
        .ipv4(IFACE.octets(), CLIENT.octets(), 64)
        .icmpv4_echo_reply(1, 1)
        .write(&mut expected, b"v")
        .unwrap();
    assert_eq!(out, expected);
}
