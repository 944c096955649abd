//! Scheduling policy around the schedulers, through the whole pipeline:
//! persistence templates (netmask, expiry, port-0 services, quiescent and
//! removed servers), real-server connection thresholds, one-packet
//! scheduling, and scheduler flags that read the flow's ports.
//!
//! Expected packets are built by etherparse, never by the code under test.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use etherparse::PacketBuilder;
use rvs_lb::config::{
    Config, DestSpec, ForwardMode, Persistence, ServiceKey, ServiceSpec, ToaMode,
};
use rvs_lb::conn::{Time, Timeouts};
use rvs_lb::flow::FlowKey;
use rvs_lb::fwd::Verdict;
use rvs_lb::packet::Packet;
use rvs_lb::sched::{SchedConfig, SchedFlags, SchedulerKind};
use rvs_lb::worker::{Worker, WorkerOptions};

const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const C1: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const C2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 99);
const C3: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
const R: [Ipv4Addr; 3] = [
    Ipv4Addr::new(10, 0, 1, 5),
    Ipv4Addr::new(10, 0, 1, 6),
    Ipv4Addr::new(10, 0, 1, 7),
];
const ROUTED: Verdict = Verdict::Forward { next_hop: None };
const UDP: u8 = 17;

fn v4(a: Ipv4Addr) -> IpAddr {
    IpAddr::V4(a)
}

fn syn(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16)) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(src.0.octets(), dst.0.octets(), 64)
        .tcp(src.1, dst.1, 1000, 64240)
        .syn()
        .write(&mut v, &[])
        .unwrap();
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

/// Checks the IPv4 header and layer-4 checksums of `pkt` independently.
fn assert_checksums(pkt: &[u8]) {
    let sliced = etherparse::SlicedPacket::from_ip(pkt).unwrap();
    let Some(etherparse::NetSlice::Ipv4(ip)) = sliced.net else {
        panic!("not IPv4")
    };
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    match sliced.transport {
        Some(etherparse::TransportSlice::Tcp(t)) => {
            let want = t.to_header().calc_checksum_ipv4(&h, t.payload()).unwrap();
            assert_eq!(t.checksum(), want);
        }
        Some(etherparse::TransportSlice::Udp(u)) => {
            let want = u.to_header().calc_checksum_ipv4(&h, u.payload()).unwrap();
            assert_eq!(u.checksum(), want);
        }
        _ => {}
    }
}

/// A NAT service (the output shows the chosen server plainly) with `n`
/// real servers on port `rport` (0: the client's port).
fn spec(key: ServiceKey, sched: impl Into<SchedConfig>, n: usize, rport: u16) -> ServiceSpec {
    let mut s = ServiceSpec::new(key, sched);
    s.toa = ToaMode::Off;
    s.dests = R[..n]
        .iter()
        .map(|&r| DestSpec::new(v4(r), rport, ForwardMode::Nat))
        .collect();
    s
}

fn persistent(mut s: ServiceSpec, secs: u64, prefix_len: u8) -> ServiceSpec {
    s.persistence = Some(Persistence {
        timeout: Duration::from_secs(secs),
        prefix_len,
    });
    s
}

fn worker_with(specs: Vec<ServiceSpec>, options: WorkerOptions) -> Worker {
    let config = Config::build(specs, Timeouts::default()).unwrap();
    let mut w = Worker::new(WorkerOptions {
        conn_capacity: 256,
        template_capacity: 64,
        ..options
    });
    w.apply(Arc::new(config), false);
    w
}

fn worker(specs: Vec<ServiceSpec>) -> Worker {
    worker_with(specs, WorkerOptions::default())
}

fn apply(w: &mut Worker, specs: Vec<ServiceSpec>) {
    let config = Config::build(specs, Timeouts::default()).unwrap();
    w.apply(Arc::new(config), false);
}

fn run(w: &mut Worker, pkt: &[u8], now: Time) -> (Verdict, Vec<u8>) {
    let mut buf = vec![0u8; 128 + pkt.len() + 128];
    buf[128..128 + pkt.len()].copy_from_slice(pkt);
    let mut p = Packet::new(&mut buf, 128, pkt.len()).unwrap();
    let v = w.process(&mut p, 0, now);
    (v, p.data().to_vec())
}

/// Sends a SYN from `client` to VIP:`vport` and returns the real server it
/// went to, checking that the output is exactly the NAT rewrite towards
/// that server's `rport`.
fn syn_to(w: &mut Worker, client: (Ipv4Addr, u16), vport: u16, rport: u16, now: Time) -> usize {
    let (v, out) = run(w, &syn(client, (VIP, vport)), now);
    assert_eq!(v, ROUTED, "SYN from {client:?} not forwarded");
    assert_checksums(&out);
    R.iter()
        .position(|&r| out == syn(client, (r, rport)))
        .unwrap_or_else(|| panic!("SYN from {client:?} is not an exact rewrite to a server"))
}

/// As [`syn_to`] for a UDP datagram to VIP:53, servers on 5353.
fn dgram_to(w: &mut Worker, client: (Ipv4Addr, u16), now: Time) -> usize {
    let (v, out) = run(w, &udp(client, (VIP, 53), b"q"), now);
    assert_eq!(v, ROUTED, "datagram from {client:?} not forwarded");
    assert_checksums(&out);
    R.iter()
        .position(|&r| out == udp(client, (r, 5353), b"q"))
        .unwrap_or_else(|| panic!("datagram from {client:?} is not an exact rewrite"))
}

fn tcp80() -> ServiceKey {
    ServiceKey::tcp(v4(VIP), 80)
}

fn udp53() -> ServiceKey {
    ServiceKey::udp(v4(VIP), 53)
}

fn t(s: u64) -> Time {
    Time::from_secs(s)
}

#[test]
fn rr_alternates_without_persistence() {
    let mut w = worker(vec![spec(tcp80(), SchedulerKind::Rr, 3, 8080)]);
    let got: Vec<usize> = (0..6)
        .map(|i| syn_to(&mut w, (C1, 40000 + i), 80, 8080, t(1)))
        .collect();
    assert_eq!(got, [0, 1, 2, 0, 1, 2]);
    assert!(w.templates().is_empty());
}

#[test]
fn persistence_pins_a_clients_new_connections() {
    let s = persistent(spec(tcp80(), SchedulerKind::Rr, 3, 8080), 300, 32);
    let mut w = worker(vec![s]);
    for i in 0..6 {
        assert_eq!(syn_to(&mut w, (C1, 40000 + i), 80, 8080, t(1)), 0);
    }
    // Another client is scheduled normally: rr moved on only once.
    assert_eq!(syn_to(&mut w, (C3, 5000), 80, 8080, t(1)), 1);
    assert_eq!(syn_to(&mut w, (C3, 5001), 80, 8080, t(1)), 1);
    // C2 is another /32 network.
    assert_eq!(syn_to(&mut w, (C2, 5000), 80, 8080, t(1)), 2);

    assert_eq!(w.templates().len(), 3);
    let tpl = w.templates().find(&tcp80(), 32, v4(C1)).unwrap();
    assert_eq!((tpl.data.dest, tpl.data.conns), (0, 6));
    let facts = &w.services()[0].facts;
    assert_eq!(
        facts.iter().map(|f| f.inactive).collect::<Vec<_>>(),
        [6, 2, 1]
    );
    assert_eq!(w.services()[0].stats.conns, 9);
}

#[test]
fn netmask_groups_a_client_network() {
    let s = persistent(spec(tcp80(), SchedulerKind::Rr, 3, 8080), 300, 24);
    let mut w = worker(vec![s]);
    assert_eq!(syn_to(&mut w, (C1, 1000), 80, 8080, t(0)), 0);
    // 192.0.2.99 is in 192.0.2.0/24 with 192.0.2.10.
    assert_eq!(syn_to(&mut w, (C2, 1000), 80, 8080, t(0)), 0);
    assert_eq!(syn_to(&mut w, (C2, 1001), 80, 8080, t(0)), 0);
    // 203.0.113.7 is not.
    assert_eq!(syn_to(&mut w, (C3, 1000), 80, 8080, t(0)), 1);
    assert_eq!(w.templates().len(), 2);
    let tpl = w.templates().find(&tcp80(), 24, v4(C2)).unwrap();
    assert_eq!(tpl.data.conns, 3);
    assert_eq!(
        tpl.client_key().src_ip(),
        v4(Ipv4Addr::new(192, 0, 2, 0)),
        "the template holds the client network"
    );
}

#[test]
fn template_outlives_its_connections_by_the_timeout_then_rr_resumes() {
    // Persistence 60 s; UDP connections idle out after 300 s.
    let s = persistent(spec(udp53(), SchedulerKind::Rr, 3, 5353), 60, 32);
    let mut w = worker(vec![s]);
    assert_eq!(dgram_to(&mut w, (C1, 1000), t(0)), 0);
    assert_eq!(dgram_to(&mut w, (C3, 1000), t(0)), 1);
    // Long past the persistence timeout, but C1's connection lives: so
    // does its template, and new flows of C1 still go to R1.
    w.expire(t(200), usize::MAX);
    assert!(w.templates().find(&udp53(), 32, v4(C1)).is_some());
    assert_eq!(dgram_to(&mut w, (C1, 1001), t(200)), 0);
    // The connections from t=0 expire at t=300; the one from t=200 at 500.
    w.expire(t(301), usize::MAX);
    assert_eq!(w.conns().len(), 1);
    assert!(w.templates().find(&udp53(), 32, v4(C1)).is_some());
    // C3's connection ended (expired at t=301): its template lives 60 s
    // more.
    assert!(w.templates().find(&udp53(), 32, v4(C3)).is_some());
    w.expire(t(360), usize::MAX);
    assert!(w.templates().find(&udp53(), 32, v4(C3)).is_some());
    w.expire(t(362), usize::MAX);
    assert!(w.templates().find(&udp53(), 32, v4(C3)).is_none());
    assert!(w.templates().find(&udp53(), 32, v4(C1)).is_some());
    w.expire(t(501), usize::MAX);
    assert_eq!(w.conns().len(), 0);
    // Still there 59 s after C1's last connection ended …
    w.expire(t(559), usize::MAX);
    assert!(w.templates().find(&udp53(), 32, v4(C1)).is_some());
    // … gone after 60 s.
    w.expire(t(562), usize::MAX);
    assert!(w.templates().is_empty());
    // rr resumes where it stood (it last gave R2): R3, then R1.
    assert_eq!(dgram_to(&mut w, (C1, 1002), t(562)), 2);
    assert_eq!(dgram_to(&mut w, (C2, 1000), t(562)), 0);
}

#[test]
fn removing_the_last_connection_restarts_the_template_timer() {
    let s = persistent(spec(tcp80(), SchedulerKind::Rr, 2, 8080), 60, 32);
    let mut w = worker(vec![s]);
    assert_eq!(syn_to(&mut w, (C1, 1000), 80, 8080, t(0)), 0);
    let key = FlowKey::v4(6, C1, 1000, VIP, 80);
    let (id, _) = w.conns().lookup(&key).unwrap();
    // Removed at t=30 (the worker's clock is where expire last left it).
    w.expire(t(30), usize::MAX);
    assert!(w.remove_conn(id));
    let tpl = w.templates().find(&tcp80(), 32, v4(C1)).unwrap();
    assert_eq!(tpl.data.conns, 0);
    assert_eq!(tpl.deadline(), t(90));
    w.expire(t(89), usize::MAX);
    assert_eq!(syn_to(&mut w, (C1, 1001), 80, 8080, t(89)), 0);
}

#[test]
fn port_zero_service_forwards_to_the_clients_destination_port() {
    let key = ServiceKey::tcp(v4(VIP), 0);
    let mut s = persistent(spec(key, SchedulerKind::Rr, 2, 0), 300, 32);
    // A port on a real server of an all-ports service is not used (IPVS
    // and DPVS forward to the client's destination port).
    s.dests[1].port = 9999;
    let mut w = worker(vec![s]);
    for vport in [22, 443, 80, 8443] {
        assert_eq!(syn_to(&mut w, (C1, 40000), vport, vport, t(0)), 0);
    }
    for vport in [80, 25] {
        assert_eq!(syn_to(&mut w, (C3, 40000), vport, vport, t(0)), 1);
    }
    // One template per client for all ports.
    assert_eq!(w.templates().len(), 2);
    assert_eq!(w.templates().find(&key, 32, v4(C1)).unwrap().data.conns, 4);
}

#[test]
fn quiescent_server_keeps_its_persistent_clients_removed_one_does_not() {
    let s = persistent(spec(tcp80(), SchedulerKind::Rr, 3, 8080), 300, 32);
    let mut w = worker(vec![s.clone()]);
    assert_eq!(syn_to(&mut w, (C1, 1000), 80, 8080, t(0)), 0);
    // R1 quiescent: as LVS, the template still sends C1 there …
    let mut q = s.clone();
    q.dests[0].weight = 0;
    apply(&mut w, vec![q.clone()]);
    assert_eq!(syn_to(&mut w, (C1, 1001), 80, 8080, t(1)), 0);
    // … while new clients avoid it.
    assert_eq!(syn_to(&mut w, (C3, 1000), 80, 8080, t(1)), 1);
    assert_eq!(syn_to(&mut w, (C2, 1000), 80, 8080, t(1)), 2);
    assert_eq!(
        syn_to(&mut w, (Ipv4Addr::new(192, 0, 2, 1), 1), 80, 8080, t(1)),
        1
    );
    // R1 removed: the template is re-pointed at a scheduled server.
    let mut r = s.clone();
    r.dests.remove(0);
    apply(&mut w, vec![r]);
    let got = syn_to(&mut w, (C1, 1002), 80, 8080, t(2));
    assert_ne!(got, 0);
    assert_eq!(syn_to(&mut w, (C1, 1003), 80, 8080, t(2)), got);
    let tpl = w.templates().find(&tcp80(), 32, v4(C1)).unwrap();
    assert_eq!(tpl.data.dest as usize, got - 1, "index in the new list");
}

#[test]
fn expire_quiescent_template_moves_persistent_clients() {
    let s = persistent(spec(tcp80(), SchedulerKind::Rr, 2, 8080), 300, 32);
    let mut w = worker_with(
        vec![s.clone()],
        WorkerOptions {
            expire_quiescent_template: true,
            ..WorkerOptions::default()
        },
    );
    assert_eq!(syn_to(&mut w, (C1, 1000), 80, 8080, t(0)), 0);
    let mut q = s;
    q.dests[0].weight = 0;
    apply(&mut w, vec![q]);
    assert_eq!(syn_to(&mut w, (C1, 1001), 80, 8080, t(1)), 1);
    assert_eq!(syn_to(&mut w, (C1, 1002), 80, 8080, t(1)), 1);
}

#[test]
fn overloaded_server_is_skipped_and_back_below_three_quarters_on_removal() {
    // R1: upper threshold 3, no lower one: available again when
    // 4 × conns < 3 × 3, i.e. at 2 connections.
    let mut s = spec(udp53(), SchedulerKind::Rr, 2, 5353);
    s.dests[0].upper_threshold = 3;
    let mut w = worker(vec![s]);
    let got: Vec<usize> = (0..8)
        .map(|i| dgram_to(&mut w, (C1, 1000 + i), t(0)))
        .collect();
    assert_eq!(got, [0, 1, 0, 1, 0, 1, 1, 1], "R1 full at 3");
    let f = &w.services()[0].facts;
    assert!(!f[0].available);
    // (UDP connections count as inactive, as in IPVS.)
    assert_eq!((f[0].inactive, f[1].inactive), (3, 5));
    // Remove one of R1's connections (ports 1000, 1002, 1004).
    let (id, _) = w
        .conns()
        .lookup(&FlowKey::v4(UDP, C1, 1002, VIP, 53))
        .unwrap();
    assert!(w.remove_conn(id));
    assert!(w.services()[0].facts[0].available);
    assert_eq!(dgram_to(&mut w, (C1, 2000), t(0)), 0);
    assert!(!w.services()[0].facts[0].available);
}

#[test]
fn lower_threshold_hysteresis_on_removal_and_expiry() {
    // R1: upper 3, lower 1.
    let mut s = spec(udp53(), SchedulerKind::Rr, 2, 5353);
    s.dests[0].upper_threshold = 3;
    s.dests[0].lower_threshold = 1;
    let mut w = worker(vec![s]);
    assert_eq!(dgram_to(&mut w, (C1, 1), t(0)), 0);
    assert_eq!(dgram_to(&mut w, (C1, 2), t(0)), 1);
    assert_eq!(dgram_to(&mut w, (C1, 3), t(0)), 0);
    assert_eq!(dgram_to(&mut w, (C1, 4), t(100)), 1);
    assert_eq!(dgram_to(&mut w, (C1, 5), t(100)), 0);
    assert_eq!(dgram_to(&mut w, (C1, 6), t(100)), 1);
    assert_eq!(dgram_to(&mut w, (C1, 7), t(100)), 1, "R1 overloaded");
    // Removal down to 2 (not below the lower threshold 1): still skipped.
    let (id, _) = w.conns().lookup(&FlowKey::v4(UDP, C1, 5, VIP, 53)).unwrap();
    assert!(w.remove_conn(id));
    assert!(!w.services()[0].facts[0].available);
    assert_eq!(dgram_to(&mut w, (C1, 8), t(100)), 1);
    // Expiry of the t=0 connections (ports 1 and 3 on R1) leaves 0 < 1.
    assert_eq!(w.expire(t(301), usize::MAX), 3);
    let f = &w.services()[0].facts;
    assert!(f[0].available);
    assert_eq!((f[0].inactive, f[1].inactive), (0, 4));
    assert_eq!(dgram_to(&mut w, (C1, 9), t(301)), 0);
}

#[test]
fn one_packet_scheduling_spreads_datagrams_of_one_flow() {
    let mut s = spec(udp53(), SchedulerKind::Rr, 2, 5353);
    s.one_packet = true;
    let mut w = worker(vec![s]);
    let client = (C1, 5000);
    for (i, want) in [0, 1, 0, 1].into_iter().enumerate() {
        let now = Time::from_millis(1000 + i as u64 * 10);
        assert_eq!(dgram_to(&mut w, client, now), want);
        // The server's answer is mapped back while the entry lives.
        let (v, out) = run(&mut w, &udp((R[want], 5353), client, b"a"), now);
        assert_eq!(v, ROUTED);
        assert_eq!(out, udp((VIP, 53), client, b"a"));
        assert_eq!(w.conns().len(), 1, "one short-lived entry at a time");
    }
    assert_eq!(w.services()[0].stats.conns, 4);
    assert_eq!(w.services()[0].dest_stats[0].conns, 2);
    // The entry is gone once the reply window (2 s) has passed.
    assert_eq!(w.expire(Time::from_millis(1030 + 2100), usize::MAX), 1);
    assert!(w.conns().is_empty());
    assert_eq!(w.services()[0].facts[1].active, 0);
    // An answer after that is not mapped.
    let (v, _) = run(&mut w, &udp((R[1], 5353), client, b"a"), t(5));
    assert_ne!(v, ROUTED);
}

#[test]
fn one_packet_dr_keeps_nothing_past_the_packet() {
    let mut s = ServiceSpec::new(udp53(), SchedulerKind::Rr);
    s.one_packet = true;
    s.dests = R[..2]
        .iter()
        .map(|&r| DestSpec::new(v4(r), 0, ForwardMode::Dr))
        .collect();
    let mut w = worker(vec![s]);
    let d = udp((C1, 5000), (VIP, 53), b"q");
    let mut hops = Vec::new();
    for i in 0..4 {
        let (v, out) = run(&mut w, &d, Time::from_millis(i));
        assert_eq!(out, d, "DR leaves the packet as it is");
        hops.push(v);
    }
    let to = |r: Ipv4Addr| Verdict::Forward {
        next_hop: Some(v4(r)),
    };
    assert_eq!(hops, [to(R[0]), to(R[1]), to(R[0]), to(R[1])]);
    // The entry has a zero timeout: the next expiry pass takes it.
    assert_eq!(w.expire(Time::from_millis(200), usize::MAX), 1);
    assert!(w.conns().is_empty());
}

#[test]
fn one_packet_with_persistence_keeps_the_client_on_one_server() {
    let mut s = persistent(spec(udp53(), SchedulerKind::Rr, 2, 5353), 60, 32);
    s.one_packet = true;
    let mut w = worker(vec![s]);
    for i in 0..4 {
        assert_eq!(dgram_to(&mut w, (C1, 5000), Time::from_millis(i)), 0);
    }
    assert_eq!(dgram_to(&mut w, (C3, 5000), t(0)), 1);
    w.expire(t(3), usize::MAX);
    assert!(w.conns().is_empty());
    // The template counts no connection and lives its 60 s.
    let tpl = w.templates().find(&udp53(), 32, v4(C1)).unwrap();
    assert_eq!(tpl.data.conns, 0);
    w.expire(t(62), usize::MAX);
    assert!(w.templates().find(&udp53(), 32, v4(C1)).is_some());
    w.expire(t(64), usize::MAX);
    assert!(w.templates().is_empty());
}

#[test]
fn source_hash_with_the_port_flag_spreads_one_clients_flows() {
    let by_port = |port_flag: bool| {
        let mut sc = SchedConfig::new(SchedulerKind::Sh);
        sc.flags = SchedFlags {
            port: port_flag,
            ..SchedFlags::NONE
        };
        let mut w = worker(vec![spec(tcp80(), sc, 3, 8080)]);
        (0..32)
            .map(|i| syn_to(&mut w, (C1, 30000 + i), 80, 8080, t(0)))
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    assert_eq!(by_port(false), 1, "sh: one client, one server");
    assert_eq!(by_port(true), 3, "sh-port: the source port counts");
}
