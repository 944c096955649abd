//! Benchmarks of the whole per-packet pipeline (classify → connection
//! lookup → state → rewrite → counters) as issue 3 sets it: one core,
//! 64-byte TCP frames (46-byte IP packets) in bursts of 32, against a
//! worker holding 1M established connections spread over 100 services, so
//! lookups miss the cache as they would in production. The services are
//! 70 FullNAT, 10 NAT, 10 DR and 10 TUN (IPIP) ones; connection `k` belongs
//! to service `k % 100`, so every mode's entries are spread over the whole
//! slab and index. Kinds of packets:
//! - `fullnat_established`: client → server data of established FullNAT
//!   flows (both addresses and ports rewritten);
//! - `fullnat_reply`: the servers' replies of those flows;
//! - `syn_new_connection`: a SYN of a new flow (service lookup, wrr
//!   scheduling, local-port choice, table insert, rewrite); the entries are
//!   removed again outside the timed region so the table stays the same
//!   size;
//! - `nat_established`, `dr_established`, `tun_established`: client →
//!   server data of NAT, DR and TUN flows.
//!
//! Every flow of a kind is visited once per pass, in a scattered order.
//! Each timed packet includes copying its 46 bytes into the receive buffer
//! (the rewrite works in place, so every packet starts from a fresh copy).
//! Bursts go through [`Worker::process_burst`], which hashes the burst and
//! prefetches its table entries before processing it.
//!
//! Run with `cargo xtask bench` (criterion, then the callgrind count), or
//! `cargo bench -p rvs-lb --bench pipeline`. It first prints the table's
//! memory per connection. The same binary has a second mode for the
//! instruction count, `pipeline --callgrind KIND N`: set up (with fewer
//! connections), then process N packets of one kind and exit; `cargo xtask
//! callgrind` runs it under callgrind for two N and reports the difference
//! per packet, in which the setup cancels out.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use etherparse::PacketBuilder;
use rvs_lb::config::{Config, DestSpec, ForwardMode, ServiceKey, ServiceSpec, TunnelKind};
use rvs_lb::conn::{ConnTable, Time, Timeouts};
use rvs_lb::flow::FlowKey;
use rvs_lb::fwd::{ConnData, Verdict};
use rvs_lb::packet::Packet;
use rvs_lb::sched::SchedulerKind;
use rvs_lb::worker::{Worker, WorkerOptions};

const BURST: usize = 32;
/// Services, by mode: `SERVICES` in all, the first `FULLNAT_SERVICES` of
/// them FullNAT, then `OTHER_SERVICES` each of NAT, DR and TUN.
const SERVICES: u32 = 100;
const FULLNAT_SERVICES: u32 = 70;
const OTHER_SERVICES: u32 = 10;
/// Established connections in the criterion runs.
const CONNS: u32 = 1_000_000;
/// The same for the callgrind runs (instruction counts barely depend on the
/// table's size; its setup under valgrind does).
const CALLGRIND_CONNS: u32 = 20_000;
/// SYNs of fresh flows prepared for the new-connection benchmark.
const SYN_POOL: usize = 8192;
const HEADROOM: usize = 64;
const BUF: usize = 256;
/// The IP packet every benchmark packet is: 20 + 20 + 6 bytes.
const PKT: usize = 46;
const TCP: u8 = 6;

/// What the benchmark's packets are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    FullNat,
    FullNatReply,
    Syn,
    Nat,
    Dr,
    Tun,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::FullNat,
        Kind::FullNatReply,
        Kind::Syn,
        Kind::Nat,
        Kind::Dr,
        Kind::Tun,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::FullNat => "fullnat_established",
            Kind::FullNatReply => "fullnat_reply",
            Kind::Syn => "syn_new_connection",
            Kind::Nat => "nat_established",
            Kind::Dr => "dr_established",
            Kind::Tun => "tun_established",
        }
    }
}

fn ip(a: Ipv4Addr) -> IpAddr {
    IpAddr::V4(a)
}

/// The forwarding mode of service `i`.
fn mode(i: u32) -> ForwardMode {
    match i.saturating_sub(FULLNAT_SERVICES) / OTHER_SERVICES {
        _ if i < FULLNAT_SERVICES => ForwardMode::FullNat,
        0 => ForwardMode::Nat,
        1 => ForwardMode::Dr,
        _ => ForwardMode::Tun(TunnelKind::Ipip),
    }
}

/// The VIP of service `i` (198.18.0.0/15, the benchmarking range).
fn vip(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, i as u8)
}

/// Client number `n`: addresses in 100.64.0.0/10, ports from 1024.
fn client(n: u32) -> (Ipv4Addr, u16) {
    (
        Ipv4Addr::from(0x6440_0000 | (n >> 8 & 0x3f_ffff)),
        1024 + (n & 0xff) as u16,
    )
}

fn config() -> Config {
    let specs = (0..SERVICES)
        .map(|i| {
            let m = mode(i);
            let mut s = ServiceSpec::new(ServiceKey::tcp(ip(vip(i)), 80), SchedulerKind::Wrr);
            // FullNAT's local addresses; TUN's outer source is the first.
            s.laddrs = (0..4)
                .map(|l| ip(Ipv4Addr::new(10, 0, 0, 100 + l)))
                .collect();
            let port = match m {
                ForwardMode::FullNat | ForwardMode::Nat => 8080,
                _ => 0,
            };
            // Four real servers per service, of distinct addresses.
            s.dests = (0..4)
                .map(|r| {
                    let a = Ipv4Addr::new(10, 1, i as u8, 1 + r as u8);
                    DestSpec::new(ip(a), port, m).weight(1 + r)
                })
                .collect();
            s
        })
        .collect();
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

/// The packets of one kind, back to back, `len` bytes each.
struct Pool {
    kind: Kind,
    len: usize,
    bytes: Vec<u8>,
}

impl Pool {
    fn new(kind: Kind, len: usize) -> Self {
        Pool {
            kind,
            len,
            bytes: Vec::new(),
        }
    }

    fn push(&mut self, p: &[u8]) {
        assert_eq!(
            p.len(),
            self.len,
            "{:?} packets are {} bytes",
            self.kind,
            self.len
        );
        self.bytes.extend_from_slice(p);
    }

    fn count(&self) -> usize {
        self.bytes.len() / self.len
    }

    fn get(&self, i: usize) -> &[u8] {
        let at = (i % self.count()) * self.len;
        &self.bytes[at..at + self.len]
    }

    /// The same packets in the order `order`.
    fn reordered(&self, order: &[usize]) -> Pool {
        let mut p = Pool::new(self.kind, self.len);
        for &i in order {
            p.push(self.get(i));
        }
        p
    }
}

struct Bench {
    w: Worker,
    now: Time,
    pools: Vec<Pool>,
    bufs: Vec<[u8; BUF]>,
    verdicts: [Verdict; BURST],
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
    /// A worker with `conns` established connections, opened by real
    /// handshakes through `process` (connection `k` to service `k % 100`);
    /// and the packets of each kind.
    fn new(conns: u32) -> Self {
        let capacity = (conns + SYN_POOL as u32 + 1024).next_power_of_two();
        let mut w = Worker::new(WorkerOptions {
            conn_capacity: capacity,
            ..WorkerOptions::default()
        });
        w.apply(Arc::new(config()), false);
        let t = Time::ZERO;
        let fwd = |v: Verdict| matches!(v, Verdict::Forward { .. });
        let mut fullnat = Pool::new(Kind::FullNat, PKT);
        let mut reply = Pool::new(Kind::FullNatReply, PKT);
        let mut nat = Pool::new(Kind::Nat, PKT);
        let mut dr = Pool::new(Kind::Dr, PKT);
        let mut tun = Pool::new(Kind::Tun, PKT);
        for k in 0..conns {
            let c = client(k);
            let i = k % SERVICES;
            let m = mode(i);
            let v = (vip(i), 80);
            let (verdict, out) = run1(&mut w, &tcp(c, v, true, false, &[]), t);
            assert!(fwd(verdict), "SYN {c:?} → {v:?}: {verdict:?}");
            let (local, server) = endpoints(&out);
            if m.sees_replies() {
                let synack = tcp(server, local, true, true, &[]);
                assert!(fwd(run1(&mut w, &synack, t).0));
            }
            let data = tcp(c, v, false, true, DATA);
            assert!(fwd(run1(&mut w, &data, t).0));
            match m {
                ForwardMode::FullNat => {
                    fullnat.push(&data);
                    reply.push(&tcp(server, local, false, true, DATA));
                }
                ForwardMode::Nat => nat.push(&data),
                ForwardMode::Dr => dr.push(&data),
                _ => tun.push(&data),
            }
        }
        // Bursts visit the flows in a scattered order.
        let mut pools = Vec::new();
        for (seed, pool) in [(1, fullnat), (1, reply), (2, nat), (3, dr), (4, tun)] {
            let mut order: Vec<usize> = (0..pool.count()).collect();
            shuffle(&mut order, seed);
            pools.push(pool.reordered(&order));
        }
        // SYNs of flows not yet seen, spread over the FullNAT services.
        let mut syns = Pool::new(Kind::Syn, 40);
        for k in 0..SYN_POOL as u32 {
            let c = client(conns + k);
            syns.push(&tcp(c, (vip(k % FULLNAT_SERVICES), 80), true, false, &[]));
        }
        pools.push(syns);
        assert_eq!(w.conns().len(), conns as usize);
        Bench {
            w,
            now: Time::from_secs(1),
            pools,
            bufs: vec![[0u8; BUF]; BURST],
            verdicts: [Verdict::Pass; BURST],
        }
    }

    fn pool(&self, kind: Kind) -> &Pool {
        self.pools
            .iter()
            .find(|p| p.kind == kind)
            .expect("kind prepared")
    }

    /// Processes the burst of `kind` starting at packet `at`; returns how
    /// many were forwarded.
    #[inline(never)]
    fn burst(&mut self, kind: Kind, at: usize) -> usize {
        let pool = self
            .pools
            .iter()
            .find(|p| p.kind == kind)
            .expect("kind prepared");
        let mut bufs = self.bufs.iter_mut();
        let mut packets: [Packet<'_>; BURST] = core::array::from_fn(|i| {
            let buf = bufs.next().expect("a buffer per packet");
            let pkt = pool.get(at + i);
            buf[HEADROOM..HEADROOM + pkt.len()].copy_from_slice(pkt);
            Packet::new(buf, HEADROOM, pkt.len()).expect("fits")
        });
        self.w
            .process_burst(&mut packets, &[], self.now, &mut self.verdicts);
        let forwarded = self
            .verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Forward { .. }))
            .count();
        black_box(forwarded)
    }

    /// Removes the connections the SYN burst at `at` created.
    fn undo_syns(&mut self, at: usize) {
        let pool = self.pool(Kind::Syn);
        let keys: Vec<FlowKey> = (0..BURST)
            .map(|i| {
                let (c, v) = endpoints(pool.get(at + i));
                FlowKey::v4(TCP, c.0, c.1, v.0, v.1)
            })
            .collect();
        for k in keys {
            if let Some((id, _)) = self.w.conns().lookup(&k) {
                self.w.remove_conn(id);
            }
        }
    }

    /// The table's memory per connection.
    fn print_memory(&self) {
        let t = self.w.conns();
        let m = t.memory();
        let cap = t.capacity() as f64;
        println!(
            "connection table: capacity {}, {} live; bytes per connection: {:.1} \
             (slot {} B = {:.1}, hash index {:.1}, timer wheel {:.1})",
            t.capacity(),
            t.len(),
            m.total() as f64 / cap,
            ConnTable::<ConnData>::slot_bytes(),
            m.slab as f64 / cap,
            m.index as f64 / cap,
            m.wheel as f64 / cap,
        );
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
    let setup = Instant::now();
    let mut b = Bench::new(CONNS);
    println!(
        "set up {CONNS} connections over {SERVICES} services in {:.1} s",
        setup.elapsed().as_secs_f64()
    );
    b.print_memory();
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(BURST as u64));
    g.sample_size(20);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    for kind in Kind::ALL {
        let len = b.pool(kind).count();
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
    b.print_memory();
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
