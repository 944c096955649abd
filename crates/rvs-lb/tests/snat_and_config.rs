//! SNAT (outbound source NAT through match services) and configuration
//! validation: bad input gets an error naming the field, and builds nothing.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use etherparse::PacketBuilder;
use rvs_lb::config::{Config, DestSpec, ForwardMode, Persistence, ServiceKey, ServiceSpec};
use rvs_lb::conn::{Time, Timeouts};
use rvs_lb::fwd::Verdict;
use rvs_lb::packet::Packet;
use rvs_lb::sched::SchedulerKind;
use rvs_lb::worker::{Worker, WorkerOptions};

const INSIDE: Ipv4Addr = Ipv4Addr::new(192, 168, 100, 5);
const OUTSIDE: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 77);
const WAN: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);

fn ip(a: Ipv4Addr) -> IpAddr {
    IpAddr::V4(a)
}

fn tcp(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), syn: bool) -> Vec<u8> {
    let b = PacketBuilder::ipv4(src.0.octets(), dst.0.octets(), 64).tcp(src.1, dst.1, 1, 1000);
    let b = if syn { b.syn() } else { b.ack(1) };
    let mut v = Vec::new();
    b.write(&mut v, b"x").unwrap();
    v
}

fn run(w: &mut Worker, pkt: &[u8]) -> (Verdict, Vec<u8>) {
    let mut buf = pkt.to_vec();
    let mut p = Packet::whole(&mut buf);
    let v = w.process(&mut p, 0, Time::ZERO);
    (v, p.data().to_vec())
}

fn snat_worker() -> Worker {
    let key = ServiceKey::snat_match(
        6,
        ip(Ipv4Addr::new(192, 168, 100, 0)),
        24,
        ip(Ipv4Addr::UNSPECIFIED),
        0,
    );
    let mut spec = ServiceSpec::new(key, SchedulerKind::Rr);
    spec.dests = vec![DestSpec::new(ip(WAN), 0, ForwardMode::Snat)];
    let mut w = Worker::new(WorkerOptions {
        conn_capacity: 16,
        ..WorkerOptions::default()
    });
    w.apply(
        Arc::new(Config::build(vec![spec], Timeouts::default()).unwrap()),
        false,
    );
    w
}

#[test]
fn snat_rewrites_outbound_source_and_maps_replies_back() {
    let mut w = snat_worker();
    let (v, out) = run(&mut w, &tcp((INSIDE, 33000), (OUTSIDE, 443), true));
    assert_eq!(v, Verdict::Forward { next_hop: None });
    assert_eq!(out, tcp((WAN, 1025), (OUTSIDE, 443), true));
    let (v, out) = run(&mut w, &tcp((OUTSIDE, 443), (WAN, 1025), false));
    assert_eq!(v, Verdict::Forward { next_hop: None });
    assert_eq!(out, tcp((OUTSIDE, 443), (INSIDE, 33000), false));
    // A host outside the matched network is not translated.
    let other = tcp(
        (Ipv4Addr::new(192, 168, 101, 5), 33000),
        (OUTSIDE, 443),
        true,
    );
    assert_eq!(run(&mut w, &other).0, Verdict::Pass);
}

fn one(spec: ServiceSpec) -> Result<Config, rvs_lb::config::ConfigError> {
    Config::build(vec![spec], Timeouts::default())
}

#[test]
fn invalid_configurations_name_the_field() {
    let vip = ip(Ipv4Addr::new(198, 51, 100, 1));
    let base = || ServiceSpec::new(ServiceKey::tcp(vip, 80), SchedulerKind::Rr);

    let mut s = base();
    s.dests = vec![DestSpec::new(
        ip(Ipv4Addr::new(10, 0, 0, 1)),
        80,
        ForwardMode::FullNat,
    )];
    let e = one(s).unwrap_err();
    assert_eq!(e.field, "services[0].dests[0].mode");
    assert!(e.reason.contains("local address"), "{e}");

    let mut s = base();
    s.dests = vec![
        DestSpec::new(ip(Ipv4Addr::new(10, 0, 0, 1)), 80, ForwardMode::Nat),
        DestSpec::new(ip(Ipv4Addr::new(10, 0, 0, 1)), 80, ForwardMode::Nat),
    ];
    assert_eq!(one(s).unwrap_err().field, "services[0].dests[1]");

    let mut s = base();
    s.dests = vec![DestSpec::new(
        "2001:db8::1".parse().unwrap(),
        80,
        ForwardMode::Dr,
    )];
    assert_eq!(one(s).unwrap_err().field, "services[0].dests[0].addr");

    let mut s = base();
    s.dests = vec![DestSpec::new(
        ip(Ipv4Addr::new(10, 0, 0, 1)),
        8080,
        ForwardMode::Dr,
    )];
    assert_eq!(one(s).unwrap_err().field, "services[0].dests[0].port");

    let s = ServiceSpec::new(ServiceKey::tcp(vip, 0), SchedulerKind::Rr);
    assert_eq!(one(s).unwrap_err().field, "services[0].port");
    let mut s = ServiceSpec::new(ServiceKey::tcp(vip, 0), SchedulerKind::Rr);
    s.persistence = Some(Persistence::default_for(false));
    assert!(one(s).is_ok(), "port 0 with persistence is allowed");

    let mut s = base();
    s.dests = vec![DestSpec::new(ip(WAN), 0, ForwardMode::Snat)];
    assert_eq!(one(s).unwrap_err().field, "services[0].dests[0].mode");

    let mut s = base();
    s.dests =
        vec![DestSpec::new(ip(Ipv4Addr::new(10, 0, 0, 1)), 80, ForwardMode::Nat).weight(u32::MAX)];
    assert_eq!(one(s).unwrap_err().field, "services[0].dests[0].weight");

    let dup = Config::build(vec![base(), base()], Timeouts::default()).unwrap_err();
    assert_eq!(dup.field, "services[1]");
    assert!(dup.reason.contains("duplicate"), "{dup}");

    let mut s = base();
    s.sched.maglev_size = 100; // not prime: only checked for mh
    s.sched.kind = SchedulerKind::Mh;
    assert_eq!(one(s).unwrap_err().field, "services[0].scheduler");
}

#[test]
fn a_full_table_drops_new_flows_and_counts_them() {
    let vip = ip(Ipv4Addr::new(198, 51, 100, 1));
    let mut s = ServiceSpec::new(ServiceKey::tcp(vip, 80), SchedulerKind::Rr);
    s.dests = vec![DestSpec::new(
        ip(Ipv4Addr::new(10, 0, 0, 1)),
        80,
        ForwardMode::Nat,
    )];
    let mut w = Worker::new(WorkerOptions {
        conn_capacity: 2,
        ..WorkerOptions::default()
    });
    w.apply(Arc::new(one(s).unwrap()), false);
    let client = Ipv4Addr::new(192, 0, 2, 1);
    let vip4 = Ipv4Addr::new(198, 51, 100, 1);
    for port in 0..2 {
        assert!(matches!(
            run(&mut w, &tcp((client, 1000 + port), (vip4, 80), true)).0,
            Verdict::Forward { .. }
        ));
    }
    let (v, _) = run(&mut w, &tcp((client, 2000), (vip4, 80), true));
    assert_eq!(v, Verdict::Drop(rvs_lb::stats::DropReason::ConnTableFull));
    assert_eq!(w.drops().get(rvs_lb::stats::DropReason::ConnTableFull), 1);
    assert_eq!(w.conns().len(), 2);
}
