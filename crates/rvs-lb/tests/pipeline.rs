//! Golden-packet tests of the whole per-worker pipeline: a frame in, the
//! exact frame out. Expected packets are built by an independent builder
//! (etherparse), never by the code under test.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use etherparse::PacketBuilder;
use rvs_lb::config::{Config, DestSpec, ForwardMode, ServiceKey, ServiceSpec, ToaMode};
use rvs_lb::conn::{ConnState, TcpState, Time, Timeouts};
use rvs_lb::fwd::Verdict;
use rvs_lb::packet::Packet;
use rvs_lb::sched::SchedulerKind;
use rvs_lb::stats::DropReason;
use rvs_lb::worker::{Worker, WorkerOptions};

const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const LADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const R1: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 5);
const R2: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 6);

fn v4(a: Ipv4Addr) -> IpAddr {
    IpAddr::V4(a)
}

fn tcp(
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    seq: u32,
    syn: bool,
    ack: Option<u32>,
    payload: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ipv4(src.0.octets(), dst.0.octets(), 64).tcp(src.1, dst.1, seq, 64240);
    let b = if syn { b.syn() } else { b };
    let b = match ack {
        Some(a) => b.ack(a),
        None => b,
    };
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

fn udp(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(src.0.octets(), dst.0.octets(), 64)
        .udp(src.1, dst.1)
        .write(&mut v, payload)
        .unwrap();
    v
}

fn worker(mode: ForwardMode, sched: SchedulerKind, proto_udp: bool) -> Worker {
    let key = if proto_udp {
        ServiceKey::udp(v4(VIP), 53)
    } else {
        ServiceKey::tcp(v4(VIP), 80)
    };
    let port = if mode == ForwardMode::Dr {
        0
    } else if proto_udp {
        5353
    } else {
        8080
    };
    let mut spec = ServiceSpec::new(key, sched);
    spec.toa = ToaMode::Off;
    spec.laddrs = vec![v4(LADDR)];
    spec.dests = vec![
        DestSpec::new(v4(R1), port, mode),
        DestSpec::new(v4(R2), port, mode),
    ];
    let config = Config::build(vec![spec], Timeouts::default()).unwrap();
    let mut w = Worker::new(WorkerOptions {
        conn_capacity: 64,
        ..WorkerOptions::default()
    });
    w.apply(Arc::new(config), false);
    w
}

/// Runs a packet through the worker with headroom and tailroom around it;
/// returns the verdict and the packet after processing.
fn run(w: &mut Worker, pkt: &[u8], now: Time) -> (Verdict, Vec<u8>) {
    let mut buf = vec![0u8; 128 + pkt.len() + 128];
    buf[128..128 + pkt.len()].copy_from_slice(pkt);
    let mut p = Packet::new(&mut buf, 128, pkt.len()).unwrap();
    let v = w.process(&mut p, 0, now);
    (v, p.data().to_vec())
}

const ROUTED: Verdict = Verdict::Forward { next_hop: None };

#[test]
fn fullnat_tcp_both_directions_exact_bytes() {
    let mut w = worker(ForwardMode::FullNat, SchedulerKind::Rr, false);
    let t = Time::from_secs(1);
    let syn = tcp((CLIENT, 40000), (VIP, 80), 1000, true, None, &[]);
    let (v, out) = run(&mut w, &syn, t);
    assert_eq!(v, ROUTED);
    // The local port is the first of the default range.
    let expected = tcp((LADDR, 1025), (R1, 8080), 1000, true, None, &[]);
    assert_eq!(out, expected, "client SYN becomes LADDR:1025 → R1:8080");

    let synack = tcp((R1, 8080), (LADDR, 1025), 5000, true, Some(1001), &[]);
    let (v, out) = run(&mut w, &synack, t);
    assert_eq!(v, ROUTED);
    assert_eq!(
        out,
        tcp((VIP, 80), (CLIENT, 40000), 5000, true, Some(1001), &[])
    );

    let data = tcp(
        (CLIENT, 40000),
        (VIP, 80),
        1001,
        false,
        Some(5001),
        b"GET / HTTP/1.0\r\n\r\n",
    );
    let (v, out) = run(&mut w, &data, t);
    assert_eq!(v, ROUTED);
    assert_eq!(
        out,
        tcp(
            (LADDR, 1025),
            (R1, 8080),
            1001,
            false,
            Some(5001),
            b"GET / HTTP/1.0\r\n\r\n"
        )
    );

    // State and counters.
    let (_, conn) = w.conns().iter().next().unwrap();
    assert_eq!(conn.data.state, ConnState::Tcp(TcpState::Established));
    let s = &w.services()[0];
    assert_eq!(s.stats.conns, 1);
    assert_eq!((s.stats.in_pkts, s.stats.out_pkts), (2, 1));
    assert_eq!(s.stats.in_bytes, (syn.len() + data.len()) as u64);
    assert_eq!(s.dest_stats[0].conns, 1);
    assert_eq!((s.facts[0].active, s.facts[0].inactive), (1, 0));

    // A second client goes to the second server (rr) with the next port.
    let syn2 = tcp((CLIENT, 40001), (VIP, 80), 7, true, None, &[]);
    let (_, out) = run(&mut w, &syn2, t);
    assert_eq!(out, tcp((LADDR, 1026), (R2, 8080), 7, true, None, &[]));
}

#[test]
fn nat_rewrites_destination_only() {
    let mut w = worker(ForwardMode::Nat, SchedulerKind::Rr, false);
    let t = Time::ZERO;
    let (v, out) = run(
        &mut w,
        &tcp((CLIENT, 40000), (VIP, 80), 1, true, None, &[]),
        t,
    );
    assert_eq!(v, ROUTED);
    assert_eq!(out, tcp((CLIENT, 40000), (R1, 8080), 1, true, None, &[]));
    let (v, out) = run(
        &mut w,
        &tcp((R1, 8080), (CLIENT, 40000), 9, true, Some(2), &[]),
        t,
    );
    assert_eq!(v, ROUTED);
    assert_eq!(out, tcp((VIP, 80), (CLIENT, 40000), 9, true, Some(2), &[]));
}

#[test]
fn dr_forwards_unchanged_to_the_real_server() {
    let mut w = worker(ForwardMode::Dr, SchedulerKind::Rr, false);
    let syn = tcp((CLIENT, 40000), (VIP, 80), 1, true, None, &[]);
    let (v, out) = run(&mut w, &syn, Time::ZERO);
    assert_eq!(
        v,
        Verdict::Forward {
            next_hop: Some(v4(R1))
        }
    );
    assert_eq!(out, syn);
    // Later segments of the flow go to the same server.
    let ack = tcp((CLIENT, 40000), (VIP, 80), 2, false, Some(10), b"x");
    let (v, _) = run(&mut w, &ack, Time::ZERO);
    assert_eq!(
        v,
        Verdict::Forward {
            next_hop: Some(v4(R1))
        }
    );
    let (_, conn) = w.conns().iter().next().unwrap();
    // Input-only: SYN then ACK from the client → ESTABLISHED.
    assert_eq!(conn.data.state, ConnState::Tcp(TcpState::Established));
}

#[test]
fn fullnat_udp_round_trip() {
    let mut w = worker(ForwardMode::FullNat, SchedulerKind::Rr, true);
    let q = udp((CLIENT, 5000), (VIP, 53), b"query");
    let (v, out) = run(&mut w, &q, Time::ZERO);
    assert_eq!(v, ROUTED);
    assert_eq!(out, udp((LADDR, 1025), (R1, 5353), b"query"));
    let (v, out) = run(
        &mut w,
        &udp((R1, 5353), (LADDR, 1025), b"answer"),
        Time::ZERO,
    );
    assert_eq!(v, ROUTED);
    assert_eq!(out, udp((VIP, 53), (CLIENT, 5000), b"answer"));
}

#[test]
fn non_syn_without_connection_and_unknown_service() {
    let mut w = worker(ForwardMode::FullNat, SchedulerKind::Rr, false);
    let ack = tcp((CLIENT, 40000), (VIP, 80), 1, false, Some(1), &[]);
    assert_eq!(
        run(&mut w, &ack, Time::ZERO).0,
        Verdict::Drop(DropReason::NoConnection)
    );
    let other_port = tcp((CLIENT, 40000), (VIP, 81), 1, true, None, &[]);
    assert_eq!(run(&mut w, &other_port, Time::ZERO).0, Verdict::Pass);
    assert_eq!(
        run(&mut w, &[0x45, 0, 1], Time::ZERO).0,
        Verdict::Drop(DropReason::Malformed)
    );
    assert_eq!(w.drops().get(DropReason::NoConnection), 1);
    assert_eq!(w.drops().get(DropReason::Malformed), 1);
}

#[test]
fn connections_expire_and_are_uncounted() {
    let mut w = worker(ForwardMode::FullNat, SchedulerKind::Rr, false);
    run(
        &mut w,
        &tcp((CLIENT, 40000), (VIP, 80), 1, true, None, &[]),
        Time::ZERO,
    );
    assert_eq!(w.conns().len(), 1);
    assert_eq!(w.services()[0].facts[0].inactive, 1);
    // SYN_RECV times out after 1 min (IPVS default).
    assert_eq!(w.expire(Time::from_secs(59), 100), 0);
    assert_eq!(w.expire(Time::from_secs(61), 100), 1);
    assert_eq!(w.conns().len(), 0);
    assert_eq!(w.services()[0].facts[0].inactive, 0);
    assert_eq!(w.services()[0].conns, 0);
}

#[test]
fn live_config_change_keeps_established_connections() {
    let mut w = worker(ForwardMode::FullNat, SchedulerKind::Rr, false);
    let t = Time::ZERO;
    run(
        &mut w,
        &tcp((CLIENT, 40000), (VIP, 80), 1, true, None, &[]),
        t,
    );
    // New config: R1 removed, R3 added.
    let r3 = Ipv4Addr::new(10, 0, 1, 7);
    let mut spec = ServiceSpec::new(ServiceKey::tcp(v4(VIP), 80), SchedulerKind::Rr);
    spec.toa = ToaMode::Off;
    spec.laddrs = vec![v4(LADDR)];
    spec.dests = vec![
        DestSpec::new(v4(R2), 8080, ForwardMode::FullNat),
        DestSpec::new(v4(r3), 8080, ForwardMode::FullNat),
    ];
    let cfg = Arc::new(Config::build(vec![spec.clone()], Timeouts::default()).unwrap());
    w.apply(cfg, false);
    // The established flow still reaches R1.
    let (_, out) = run(
        &mut w,
        &tcp((CLIENT, 40000), (VIP, 80), 2, false, Some(1), b"a"),
        t,
    );
    assert_eq!(out, tcp((LADDR, 1025), (R1, 8080), 2, false, Some(1), b"a"));
    // New flows use only the new servers.
    let (_, out) = run(
        &mut w,
        &tcp((CLIENT, 40001), (VIP, 80), 1, true, None, &[]),
        t,
    );
    let dst = Ipv4Addr::from(<[u8; 4]>::try_from(&out[16..20]).unwrap());
    assert!(dst == R2 || dst == r3, "{dst}");
    // With expiry of removed servers' connections, the R1 flow goes.
    let cfg = Arc::new(Config::build(vec![spec], Timeouts::default()).unwrap());
    w.apply(cfg, true);
    assert_eq!(w.conns().len(), 1);
}

#[test]
fn weight_zero_is_quiescent() {
    let mut w = worker(ForwardMode::Nat, SchedulerKind::Wrr, false);
    let mut spec = ServiceSpec::new(ServiceKey::tcp(v4(VIP), 80), SchedulerKind::Wrr);
    spec.dests = vec![
        DestSpec::new(v4(R1), 8080, ForwardMode::Nat).weight(0),
        DestSpec::new(v4(R2), 8080, ForwardMode::Nat).weight(3),
    ];
    w.apply(
        Arc::new(Config::build(vec![spec], Timeouts::default()).unwrap()),
        false,
    );
    for port in 0..10 {
        let (_, out) = run(
            &mut w,
            &tcp((CLIENT, 30000 + port), (VIP, 80), 1, true, None, &[]),
            Time::ZERO,
        );
        assert_eq!(&out[16..20], &R2.octets());
    }
}

#[test]
fn connections_are_listed_like_ipvsadm_lnc() {
    let mut w = worker(ForwardMode::FullNat, SchedulerKind::Rr, false);
    run(
        &mut w,
        &tcp((CLIENT, 40000), (VIP, 80), 1, true, None, &[]),
        Time::from_secs(10),
    );
    let list: Vec<_> = w.connections(Time::from_secs(20)).collect();
    assert_eq!(list.len(), 1);
    let c = list[0];
    assert_eq!(c.state, "SYN_RECV");
    assert_eq!(c.expires, std::time::Duration::from_secs(50));
    assert_eq!(c.client, (v4(CLIENT), 40000));
    assert_eq!(c.virtual_addr, (v4(VIP), 80));
    assert_eq!(c.local, Some((v4(LADDR), 1025)));
    assert_eq!(c.dest, (v4(R1), 8080));
    assert_eq!(c.mode, ForwardMode::FullNat);
}

#[test]
fn per_service_timeouts_override_the_global_ones() {
    let mut w = worker(ForwardMode::FullNat, SchedulerKind::Rr, true);
    let mut spec = ServiceSpec::new(ServiceKey::udp(v4(VIP), 53), SchedulerKind::Rr);
    spec.toa = ToaMode::Off;
    spec.laddrs = vec![v4(LADDR)];
    spec.dests = vec![DestSpec::new(v4(R1), 5353, ForwardMode::FullNat)];
    let mut t = Timeouts::default();
    t.set_udp(std::time::Duration::from_secs(7));
    spec.timeouts = Some(t);
    w.apply(
        Arc::new(Config::build(vec![spec], Timeouts::default()).unwrap()),
        false,
    );
    run(&mut w, &udp((CLIENT, 5000), (VIP, 53), b"q"), Time::ZERO);
    let c = w.connections(Time::ZERO).next().unwrap();
    assert_eq!(c.expires, std::time::Duration::from_secs(7));
    assert_eq!(w.expire(Time::from_secs(6), 100), 0);
    assert_eq!(w.expire(Time::from_secs(8), 100), 1);
}

/// IPVS's conn_reuse_mode: a client that reuses its port while the old
/// connection is in TIME_WAIT gets a newly scheduled connection, so a
/// server set to weight 0 meanwhile receives nothing new.
#[test]
fn a_new_syn_on_a_time_wait_connection_is_scheduled_afresh() {
    let mut w = worker(ForwardMode::Nat, SchedulerKind::Rr, false);
    let t = Time::ZERO;
    let c = (CLIENT, 40000);
    run(&mut w, &tcp(c, (VIP, 80), 1, true, None, &[]), t);
    run(&mut w, &tcp((R1, 8080), c, 9, true, Some(2), &[]), t);
    run(&mut w, &tcp(c, (VIP, 80), 2, false, Some(10), &[]), t);
    // Client FIN, server FIN+ACK, client ACK → TIME_WAIT.
    let fin = |src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), seq: u32, ack: u32| {
        let mut v = Vec::new();
        PacketBuilder::ipv4(src.0.octets(), dst.0.octets(), 64)
            .tcp(src.1, dst.1, seq, 64240)
            .fin()
            .ack(ack)
            .write(&mut v, &[])
            .unwrap();
        v
    };
    run(&mut w, &fin(c, (VIP, 80), 2, 10), t);
    run(&mut w, &fin((R1, 8080), c, 10, 3), t);
    run(&mut w, &tcp(c, (VIP, 80), 3, false, Some(11), &[]), t);
    assert_eq!(w.connections(t).next().unwrap().state, "TIME_WAIT");
    // R1 goes quiescent; the client reuses port 40000.
    let mut spec = ServiceSpec::new(ServiceKey::tcp(v4(VIP), 80), SchedulerKind::Rr);
    spec.dests = vec![
        DestSpec::new(v4(R1), 8080, ForwardMode::Nat).weight(0),
        DestSpec::new(v4(R2), 8080, ForwardMode::Nat),
    ];
    w.apply(
        Arc::new(Config::build(vec![spec], Timeouts::default()).unwrap()),
        false,
    );
    let (v, out) = run(&mut w, &tcp(c, (VIP, 80), 500, true, None, &[]), t);
    assert_eq!(v, ROUTED);
    assert_eq!(out, tcp(c, (R2, 8080), 500, true, None, &[]));
    let list: Vec<_> = w.connections(t).collect();
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].state, list[0].dest), ("SYN_RECV", (v4(R2), 8080)));
}

/// The first fragment of a fragmented UDP datagram carries the ports and is
/// balanced like a whole datagram; its UDP checksum (which covers the whole
/// datagram) is updated exactly as for the unfragmented datagram.
#[test]
fn a_first_udp_fragment_is_balanced_by_its_ports() {
    let whole = udp((CLIENT, 5000), (VIP, 53), &[0x5a; 100]);
    // The first fragment: 8 bytes of UDP header + 16 of payload, MF set.
    let mut frag = whole[..20 + 24].to_vec();
    frag[2..4].copy_from_slice(&(44u16).to_be_bytes());
    frag[6] = 0x20; // MF
    frag[7] = 0;
    frag[10] = 0;
    frag[11] = 0;
    let c = rvs_wire::checksum::checksum(&frag[..20]);
    frag[10..12].copy_from_slice(&c.to_be_bytes());

    let mut w1 = worker(ForwardMode::FullNat, SchedulerKind::Rr, true);
    let (v, out_frag) = run(&mut w1, &frag, Time::ZERO);
    assert_eq!(v, ROUTED);
    let mut w2 = worker(ForwardMode::FullNat, SchedulerKind::Rr, true);
    let (_, out_whole) = run(&mut w2, &whole, Time::ZERO);
    // Same addresses and the same UDP header (ports, length, checksum).
    assert_eq!(&out_frag[12..20], &out_whole[12..20]);
    assert_eq!(&out_frag[20..28], &out_whole[20..28]);
    assert_eq!(&out_frag[28..], &frag[28..]);
    assert_eq!(rvs_wire::checksum::checksum(&out_frag[..20]), 0);
}
