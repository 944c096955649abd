//! Property tests of the whole pipeline over random flows.
//!
//! - Round trip: for FullNAT and NAT, TCP and UDP, IPv4 and IPv6, a client
//!   packet goes out to a real server with only its addresses and ports
//!   changed; the server's reply (built from the forwarded packet's
//!   endpoints, swapped) comes back to the client as exactly the client's
//!   original endpoints swapped, byte for byte what etherparse builds.
//! - Many random concurrent flows never share a reply key, and every reply
//!   reaches its own client.
//! - After the clock passes every timeout the table is empty and every
//!   service and real-server count is back to zero.
//!
//! Expected packets are built by etherparse, never by the code under test.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use proptest::prelude::*;
use rvs_lb::config::{Config, DestSpec, ForwardMode, ServiceKey, ServiceSpec, ToaMode};
use rvs_lb::conn::{Time, Timeouts};
use rvs_lb::fwd::Verdict;
use rvs_lb::packet::Packet;
use rvs_lb::sched::SchedulerKind;
use rvs_lb::worker::{Worker, WorkerOptions};

const TCP: u8 = 6;
const UDP: u8 = 17;

const VIP4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xa, 0, 0, 0, 0, 1);

type Endpoint = (IpAddr, u16);

fn vip(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(VIP6)
    } else {
        IpAddr::V4(VIP4)
    }
}

fn server(v6: bool, n: u16) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xb, 0, 0, 0, 0, n))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, 0, 1, n as u8))
    }
}

fn laddrs() -> Vec<IpAddr> {
    vec![
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100)),
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 101)),
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 100)),
    ]
}

/// The services of a test: (v6, protocol, port, mode). Each gets three
/// real servers of its own (`base + 0..3`, port `port + 8000`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Svc {
    v6: bool,
    proto: u8,
    port: u16,
    mode: ForwardMode,
}

const SERVICES: [Svc; 8] = [
    Svc {
        v6: false,
        proto: TCP,
        port: 80,
        mode: ForwardMode::FullNat,
    },
    Svc {
        v6: false,
        proto: UDP,
        port: 53,
        mode: ForwardMode::FullNat,
    },
    Svc {
        v6: false,
        proto: TCP,
        port: 81,
        mode: ForwardMode::Nat,
    },
    Svc {
        v6: false,
        proto: UDP,
        port: 54,
        mode: ForwardMode::Nat,
    },
    Svc {
        v6: true,
        proto: TCP,
        port: 80,
        mode: ForwardMode::FullNat,
    },
    Svc {
        v6: true,
        proto: UDP,
        port: 53,
        mode: ForwardMode::FullNat,
    },
    Svc {
        v6: true,
        proto: TCP,
        port: 81,
        mode: ForwardMode::Nat,
    },
    Svc {
        v6: true,
        proto: UDP,
        port: 54,
        mode: ForwardMode::Nat,
    },
];

fn servers_of(i: usize) -> Vec<Endpoint> {
    let s = SERVICES[i];
    (0..3)
        .map(|k| (server(s.v6, (i * 3 + k + 1) as u16), s.port + 8000))
        .collect()
}

fn worker(capacity: u32, sched: SchedulerKind) -> Worker {
    let specs = SERVICES
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let key = if s.proto == TCP {
                ServiceKey::tcp(vip(s.v6), s.port)
            } else {
                ServiceKey::udp(vip(s.v6), s.port)
            };
            let mut spec = ServiceSpec::new(key, sched);
            spec.toa = ToaMode::Off;
            spec.laddrs = laddrs();
            spec.dests = servers_of(i)
                .into_iter()
                .map(|(a, p)| DestSpec::new(a, p, s.mode))
                .collect();
            spec
        })
        .collect();
    let mut w = Worker::new(WorkerOptions {
        conn_capacity: capacity,
        ..WorkerOptions::default()
    });
    w.apply(
        Arc::new(Config::build(specs, Timeouts::default()).unwrap()),
        false,
    );
    w
}

/// What a test packet carries besides its endpoints.
#[derive(Debug, Clone)]
struct Body {
    proto: u8,
    syn: bool,
    ack: Option<u32>,
    seq: u32,
    payload: Vec<u8>,
}

/// The packet `src → dst` with `body`, built by etherparse.
fn build(src: Endpoint, dst: Endpoint, b: &Body) -> Vec<u8> {
    let ip = match (src.0, dst.0) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), 64),
        _ => panic!("mixed families"),
    };
    let mut out = Vec::new();
    if b.proto == TCP {
        let mut t = ip.tcp(src.1, dst.1, b.seq, 64240);
        if b.syn {
            t = t.syn();
        }
        if let Some(a) = b.ack {
            t = t.ack(a);
        }
        t.write(&mut out, &b.payload).unwrap();
    } else {
        ip.udp(src.1, dst.1).write(&mut out, &b.payload).unwrap();
    }
    out
}

/// Runs `pkt` through the worker (with headroom and tailroom); returns
/// the verdict and the packet as it leaves.
fn run(w: &mut Worker, pkt: &[u8], now: Time) -> (Verdict, Vec<u8>) {
    let mut buf = vec![0u8; 128 + pkt.len() + 128];
    buf[128..128 + pkt.len()].copy_from_slice(pkt);
    let mut p = Packet::new(&mut buf, 128, pkt.len()).unwrap();
    let v = w.process(&mut p, 0, now);
    (v, p.data().to_vec())
}

/// Source and destination endpoints of a TCP/UDP packet, per etherparse,
/// after checking every checksum with etherparse.
fn endpoints_checked(p: &[u8]) -> (Endpoint, Endpoint) {
    let s = SlicedPacket::from_ip(p).unwrap();
    let (src, dst): (IpAddr, IpAddr) = match &s.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header().to_header();
            assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 header");
            (h.source.into(), h.destination.into())
        }
        Some(NetSlice::Ipv6(ip)) => {
            let h = ip.header();
            (h.source_addr().into(), h.destination_addr().into())
        }
        _ => panic!("not IP"),
    };
    let ports = match (s.transport.unwrap(), src, dst) {
        (TransportSlice::Tcp(t), IpAddr::V4(a), IpAddr::V4(b)) => {
            assert_eq!(
                t.calc_checksum_ipv4(a.octets(), b.octets()).unwrap(),
                t.checksum()
            );
            (t.source_port(), t.destination_port())
        }
        (TransportSlice::Tcp(t), IpAddr::V6(a), IpAddr::V6(b)) => {
            assert_eq!(
                t.calc_checksum_ipv6(a.octets(), b.octets()).unwrap(),
                t.checksum()
            );
            (t.source_port(), t.destination_port())
        }
        (TransportSlice::Udp(u), IpAddr::V4(a), IpAddr::V4(b)) => {
            let want = u
                .to_header()
                .calc_checksum_ipv4_raw(a.octets(), b.octets(), u.payload())
                .unwrap();
            assert_eq!(want, u.checksum());
            (u.source_port(), u.destination_port())
        }
        (TransportSlice::Udp(u), IpAddr::V6(a), IpAddr::V6(b)) => {
            let want = u
                .to_header()
                .calc_checksum_ipv6_raw(a.octets(), b.octets(), u.payload())
                .unwrap();
            assert_eq!(want, u.checksum());
            (u.source_port(), u.destination_port())
        }
        other => panic!("unexpected {other:?}"),
    };
    ((src, ports.0), (dst, ports.1))
}

const ROUTED: Verdict = Verdict::Forward { next_hop: None };

fn client_addr(v6: bool, n: u32) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0xd,
            0,
            0,
            0,
            (n >> 16) as u16,
            n as u16,
        ))
    } else {
        // 100.64.0.0/10: one address per `n` up to 2^22.
        IpAddr::V4(Ipv4Addr::from(0x6440_0000 | (n & 0x3f_ffff)))
    }
}

fn schedulers() -> impl Strategy<Value = SchedulerKind> {
    prop_oneof![
        Just(SchedulerKind::Rr),
        Just(SchedulerKind::Wlc),
        Just(SchedulerKind::Sh),
        Just(SchedulerKind::Mh),
    ]
}

/// Sends the client's first packet of flow (service `si`, client `c`);
/// returns the packet as it left, having checked that only its endpoints
/// changed, in the way the service's mode allows.
fn open(w: &mut Worker, si: usize, c: Endpoint, body: &Body, now: Time) -> (Endpoint, Endpoint) {
    let s = SERVICES[si];
    let v = (vip(s.v6), s.port);
    let (verdict, out) = run(w, &build(c, v, body), now);
    assert_eq!(verdict, ROUTED, "service {si} client {c:?}");
    let (src, dst) = endpoints_checked(&out);
    assert_eq!(out, build(src, dst, body), "only endpoints change");
    assert!(servers_of(si).contains(&dst), "to a real server: {dst:?}");
    match s.mode {
        ForwardMode::FullNat => assert!(laddrs().contains(&src.0), "from a local address"),
        _ => assert_eq!(src, c, "NAT keeps the client's endpoint"),
    }
    (src, dst)
}

/// The server answers the forwarded packet `(src, dst)`; the answer must
/// reach the client as VIP → client, exactly.
fn answer(w: &mut Worker, si: usize, c: Endpoint, fwd: (Endpoint, Endpoint), now: Time) {
    let s = SERVICES[si];
    let v = (vip(s.v6), s.port);
    let body = Body {
        proto: s.proto,
        syn: s.proto == TCP,
        ack: (s.proto == TCP).then_some(1001),
        seq: 9000,
        payload: if s.proto == UDP {
            b"answer".to_vec()
        } else {
            Vec::new()
        },
    };
    let reply = build(fwd.1, fwd.0, &body);
    let (verdict, out) = run(w, &reply, now);
    assert_eq!(verdict, ROUTED, "reply of service {si} to {c:?}");
    assert_eq!(out, build(v, c, &body), "reply to {c:?} comes from the VIP");
}

/// Expires everything; the table must empty and every count be zero.
fn expire_all(w: &mut Worker, mut now: Time) {
    for _ in 0..32 {
        now = now.add_millis(3_600_000);
        w.expire(now, usize::MAX);
        if w.conns().is_empty() {
            break;
        }
    }
    assert!(w.conns().is_empty(), "{} connections left", w.conns().len());
    for (i, st) in w.services().iter().enumerate() {
        assert_eq!(st.conns, 0, "service {i}");
        for (d, f) in st.facts.iter().enumerate() {
            assert_eq!((f.active, f.inactive), (0, 0), "service {i} server {d}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn reply_returns_to_the_client_with_its_endpoints_swapped(
        si in 0..SERVICES.len(),
        n in any::<u32>(),
        port in 1u16..,
        sched in schedulers(),
        seq in any::<u32>(),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut w = worker(16, sched);
        let s = SERVICES[si];
        let c = (client_addr(s.v6, n), port);
        let body = Body {
            proto: s.proto,
            syn: s.proto == TCP,
            ack: None,
            seq,
            payload: if s.proto == UDP { payload } else { Vec::new() },
        };
        let t = Time::from_secs(1);
        let fwd = open(&mut w, si, c, &body, t);
        answer(&mut w, si, c, fwd, t);
        prop_assert_eq!(w.conns().len(), 1);
        expire_all(&mut w, t);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn concurrent_flows_never_share_a_reply_key(
        flows in proptest::collection::hash_set(
            (0..SERVICES.len(), any::<u16>(), 1u16..), 1..300),
        sched in schedulers(),
    ) {
        let mut w = worker(1024, sched);
        let t = Time::from_secs(5);
        let flows: Vec<(usize, Endpoint)> = flows
            .into_iter()
            .map(|(si, n, port)| (si, (client_addr(SERVICES[si].v6, u32::from(n)), port)))
            .collect();
        // The same client endpoint to the same service is one flow.
        let distinct: HashSet<(usize, Endpoint)> = flows.into_iter().collect();
        let mut outs = Vec::new();
        for &(si, c) in &distinct {
            let s = SERVICES[si];
            let body = Body {
                proto: s.proto,
                syn: s.proto == TCP,
                ack: None,
                seq: 1000,
                payload: b"q".to_vec(),
            };
            outs.push((si, c, open(&mut w, si, c, &body, t)));
        }
        prop_assert_eq!(w.conns().len(), distinct.len());
        // Forwarded 5-tuples, and so the replies' keys, are all different.
        let tuples: HashSet<_> = outs
            .iter()
            .map(|(si, _, o)| (SERVICES[*si].proto, *o))
            .collect();
        prop_assert_eq!(tuples.len(), outs.len(), "two flows share a forwarded 5-tuple");
        let replies: HashSet<_> = w.conns().iter().map(|(_, c)| *c.reply_key()).collect();
        prop_assert_eq!(replies.len(), w.conns().len(), "two connections share a reply key");
        let clients: HashSet<_> = w.conns().iter().map(|(_, c)| *c.client_key()).collect();
        prop_assert!(replies.is_disjoint(&clients), "a reply key is some client's key");
        // Every reply reaches its own client.
        for &(si, c, fwd) in &outs {
            answer(&mut w, si, c, fwd, t);
        }
        let conns: u32 = w.services().iter().map(|s| s.conns).sum();
        prop_assert_eq!(conns as usize, distinct.len());
        expire_all(&mut w, t);
    }
}
