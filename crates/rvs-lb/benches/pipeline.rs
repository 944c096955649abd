//! Benchmarks of [`Worker::process`], the whole per-packet pipeline
//! (classify → connection lookup → state → rewrite → counters), in bursts
//! of 32 minimal TCP packets (46-byte IP packets: what a 64-byte Ethernet
//! frame carries) against a worker whose table holds ~120k established
//! connections spread over 120 services, so lookups miss the cache as
//! they would in production:
//! - `fullnat_established`: client → server data of established FullNAT
//!   flows (both addresses and ports rewritten);
//! - `fullnat_reply`: the servers' replies of those flows;
//! - `syn_new_connection`: a SYN of a new flow (service lookup, rr
//!   scheduling, local-port choice, table insert, rewrite); the entries are
//!   removed again outside the timed region so the table stays the same
//!   size;
//! - `nat_established`, `dr_established`: client → server data of NAT and
//!   DR flows.
//!
//! Each timed packet includes copying its 46 bytes into the receive buffer
//! (the rewrite works in place, so every packet starts from a fresh copy).
//!
//! Run with `cargo xtask bench` (criterion, then the callgrind count), or
//! `cargo bench -p rvs-lb --bench pipeline`. The same binary has a second
//! mode for the instruction count, `pipeline --callgrind KIND N`: set up,
//! then process N packets of one kind and exit; `cargo xtask bench` runs it
//! under callgrind for two N and reports the difference per packet, in
//! which the setup cancels out.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use etherparse::PacketBuilder;
use rvs_lb::config::{Config, DestSpec, ForwardMode, ServiceKey, ServiceSpec};
use rvs_lb::conn::{Time, Timeouts};
use rvs_lb::flow::FlowKey;
use rvs_lb::fwd::Verdict;
use rvs_lb::packet::Packet;
use rvs_lb::sched::SchedulerKind;
use rvs_lb::worker::{Worker, WorkerOptions};

const BURST: usize = 32;
const FULLNAT_SERVICES: u32 = 100;
const NAT_SERVICES: u32 = 10;
const DR_SERVICES: u32 = 10;
/// Established FullNAT connections in the criterion runs (NAT and DR get a
/// tenth of this each).
const CONNS: u32 = 100_000;
/// The same for the callgrind runs (instruction counts barely depend on the
/// table's size; its setup under valgrind does).
const CALLGRIND_CONNS: u32 = 10_000;
/// SYNs of fresh flows prepared for the new-connection benchmark.
const SYN_POOL: usize = 8192;
const HEADROOM: usize = 64;
const BUF: usize = 256;
const TCP: u8 = 6;

/// What the benchmark's packets are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    FullNat,
    FullNatReply,
    Syn,
    Nat,
    Dr,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::FullNat,
        Kind::FullNatReply,
        Kind::Syn,
        Kind::Nat,
        Kind::Dr,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::FullNat => "fullnat_established",
            Kind::FullNatReply => "fullnat_reply",
            Kind::Syn => "syn_new_connection",
            Kind::Nat => "nat_established",
            Kind::Dr => "dr_established",
        }
    }
}

fn ip(a: Ipv4Addr) -> IpAddr {
    IpAddr::V4(a)
}

/// The VIP of service `i` of `mode` (198.18.0.0/15, the benchmarking
/// range).
fn vip(mode: u8, i: u32) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, mode, i as u8)
}

/// Client number `n`: addresses in 100.64.0.0/10, ports from 1024.
fn client(n: u32) -> (Ipv4Addr, u16) {
    (
        Ipv4Addr::from(0x6440_0000 | (n >> 8 & 0xffff)),
        1024 + (n & 0xff) as u16,
    )
}

fn config() -> Config {
    let mut specs = Vec::new();
    let groups = [
        (0u8, FULLNAT_SERVICES, ForwardMode::FullNat, 8080),
        (1, NAT_SERVICES, ForwardMode::Nat, 8080),
        (2, DR_SERVICES, ForwardMode::Dr, 0),
    ];
    for (m, count, mode, port) in groups {
        for i in 0..count {
            let mut s = ServiceSpec::new(ServiceKey::tcp(ip(vip(m, i)), 80), SchedulerKind::Wrr);
            s.laddrs = (0..4)
                .map(|l| ip(Ipv4Addr::new(10, 0, m, 100 + l)))
                .collect();
            // Four real servers per service, of distinct addresses.
            s.dests = (0..4)
                .map(|r| {
                    let a = Ipv4Addr::new(10, 1 + m, i as u8, 1 + r);
                    DestSpec::new(ip(a), port, mode).weight(1 + u32::from(r))
                })
                .collect();
            specs.push(s);
        }
    }
    Config::build(specs, Timeouts::default()).unwrap()
}

fn tcp(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), syn: bool, ack: bool, data: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv4(src.0.octets(), dst.0.octets(), 64).tcp(src.1, dst.1, 1000, 64240);
    let b = if syn { b.syn() } else { b };
    let b = if ack { b.ack(5000) } else { b };
    let mut v = Vec::new();
    b.write(&mut v, data).unwrap();
    v
}

/// The 6 bytes of payload that make a 46-byte IP packet.
const DATA: &[u8] = b"abcdef";

struct Bench {
    w: Worker,
    now: Time,
    /// Per kind, the packets a burst is drawn from, in order.
    packets: Vec<(Kind, Vec<Vec<u8>>)>,
    bufs: Vec<[u8; BUF]>,
}

fn run1(w: &mut Worker, pkt: &[u8], now: Time) -> (Verdict, Vec<u8>) {
    let mut buf = [0u8; BUF];
    buf[HEADROOM..HEADROOM + pkt.len()].copy_from_slice(pkt);
    let mut p = Packet::new(&mut buf, HEADROOM, pkt.len()).unwrap();
    let v = w.process(&mut p, 0, now);
    (v, p.data().to_vec())
}

/// Source and destination of an IPv4 TCP packet.
fn endpoints(p: &[u8]) -> ((Ipv4Addr, u16), (Ipv4Addr, u16)) {
    let a = |o: usize| Ipv4Addr::new(p[o], p[o + 1], p[o + 2], p[o + 3]);
    let port = |o: usize| u16::from_be_bytes([p[o], p[o + 1]]);
    let l4 = usize::from(p[0] & 0xf) * 4;
    ((a(12), port(l4)), (a(16), port(l4 + 2)))
}

impl Bench {
    /// A worker with `conns` established FullNAT connections (and a tenth
    /// of that each for NAT and DR), opened by real handshakes through
    /// `process`; and the packets of each kind.
    fn new(conns: u32) -> Self {
        let capacity = (conns + 2 * (conns / 10) + SYN_POOL as u32 + 1024).next_power_of_two();
        let mut w = Worker::new(WorkerOptions {
            conn_capacity: capacity,
            ..WorkerOptions::default()
        });
        w.apply(Arc::new(config()), false);
        let t = Time::ZERO;
        let fwd = |v: Verdict| matches!(v, Verdict::Forward { .. });
        let mut packets = Vec::new();
        let mut n = 0u32;
        // (mode group, service count, connections, sees replies)
        for (m, services, count, kinds) in [
            (
                0u8,
                FULLNAT_SERVICES,
                conns,
                &[Kind::FullNat, Kind::FullNatReply][..],
            ),
            (1, NAT_SERVICES, conns / 10, &[Kind::Nat][..]),
            (2, DR_SERVICES, conns / 10, &[Kind::Dr][..]),
        ] {
            let mut to_server = Vec::new();
            let mut to_client = Vec::new();
            for k in 0..count {
                let c = client(n);
                n += 1;
                let v = (vip(m, k % services), 80);
                let (verdict, out) = run1(&mut w, &tcp(c, v, true, false, &[]), t);
                assert!(fwd(verdict), "SYN {c:?} → {v:?}: {verdict:?}");
                let (local, server) = endpoints(&out);
                if m != 2 {
                    let synack = tcp(server, local, true, true, &[]);
                    assert!(fwd(run1(&mut w, &synack, t).0));
                }
                let data = tcp(c, v, false, true, DATA);
                assert!(fwd(run1(&mut w, &data, t).0));
                to_server.push(data);
                to_client.push(tcp(server, local, false, true, DATA));
            }
            // Bursts visit the flows in a scattered order.
            let mut order: Vec<usize> = (0..to_server.len()).collect();
            shuffle(&mut order, u64::from(m) + 1);
            for &kind in kinds {
                let src = if kind == Kind::FullNatReply {
                    &to_client
                } else {
                    &to_server
                };
                packets.push((kind, order.iter().map(|&i| src[i].clone()).collect()));
            }
        }
        // SYNs of flows not yet seen, spread over the FullNAT services.
        let syns = (0..SYN_POOL as u32)
            .map(|k| {
                let c = client(n + k);
                tcp(c, (vip(0, k % FULLNAT_SERVICES), 80), true, false, &[])
            })
            .collect();
        packets.push((Kind::Syn, syns));
        let expected = (conns + 2 * (conns / 10)) as usize;
        assert_eq!(w.conns().len(), expected);
        Bench {
            w,
            now: Time::from_secs(1),
            packets,
            bufs: vec![[0u8; BUF]; BURST],
        }
    }

    fn packets(&self, kind: Kind) -> &[Vec<u8>] {
        &self
            .packets
            .iter()
            .find(|(k, _)| *k == kind)
            .expect("kind prepared")
            .1
    }

    /// Processes the burst of `kind` starting at packet `at`; returns how
    /// many were forwarded.
    #[inline(never)]
    fn burst(&mut self, kind: Kind, at: usize) -> usize {
        let pool = &self
            .packets
            .iter()
            .find(|(k, _)| *k == kind)
            .expect("kind prepared")
            .1;
        let mut forwarded = 0;
        for (i, buf) in self.bufs.iter_mut().enumerate() {
            let pkt = &pool[(at + i) % pool.len()];
            buf[HEADROOM..HEADROOM + pkt.len()].copy_from_slice(pkt);
            let Some(mut p) = Packet::new(buf, HEADROOM, pkt.len()) else {
                continue;
            };
            let v = self.w.process(&mut p, 0, self.now);
            forwarded += usize::from(matches!(v, Verdict::Forward { .. }));
        }
        black_box(forwarded)
    }

    /// Removes the connections the SYN burst at `at` created.
    fn undo_syns(&mut self, at: usize) {
        let pool = self.packets(Kind::Syn);
        let keys: Vec<FlowKey> = (0..BURST)
            .map(|i| {
                let (c, v) = endpoints(&pool[(at + i) % pool.len()]);
                FlowKey::v4(TCP, c.0, c.1, v.0, v.1)
            })
            .collect();
        for k in keys {
            if let Some((id, _)) = self.w.conns().lookup(&k) {
                self.w.remove_conn(id);
            }
        }
    }
}

/// A deterministic Fisher–Yates shuffle (xorshift).
fn shuffle(v: &mut [usize], mut seed: u64) {
    for i in (1..v.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

fn criterion_benches(c: &mut Criterion) {
    let mut b = Bench::new(CONNS);
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(BURST as u64));
    g.sample_size(20);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    for kind in Kind::ALL {
        let len = b.packets(kind).len();
        let mut at = 0usize;
        if kind == Kind::Syn {
            g.bench_function(kind.name(), |bench| {
                bench.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let start = Instant::now();
                        let n = b.burst(kind, at);
                        total += start.elapsed();
                        assert_eq!(n, BURST, "every SYN opens a connection");
                        b.undo_syns(at);
                        at = (at + BURST) % len;
                    }
                    total
                })
            });
        } else {
            g.bench_function(kind.name(), |bench| {
                bench.iter(|| {
                    let n = b.burst(kind, at);
                    at = (at + BURST) % len;
                    n
                })
            });
        }
    }
    g.finish();
}

/// `--callgrind KIND N`: set up, process `N` packets of `KIND` (rounded up
/// to whole bursts), print how many were forwarded.
fn callgrind(kind: &str, n: usize) {
    let kind = Kind::ALL
        .into_iter()
        .find(|k| k.name() == kind)
        .unwrap_or_else(|| panic!("unknown kind {kind}"));
    let mut b = Bench::new(CALLGRIND_CONNS);
    if kind == Kind::Syn {
        assert!(n <= SYN_POOL, "at most {SYN_POOL} new connections");
    }
    let mut forwarded = 0;
    let mut at = 0;
    while at < n {
        forwarded += b.burst(kind, at);
        at += BURST;
    }
    println!("{} {at} packets, {forwarded} forwarded", kind.name());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--callgrind") {
        let kind = args.get(i + 1).expect("--callgrind KIND N");
        let n = args
            .get(i + 2)
            .and_then(|n| n.parse().ok())
            .expect("--callgrind KIND N");
        callgrind(kind, n);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    criterion_benches(&mut c);
    c.final_summary();
}
