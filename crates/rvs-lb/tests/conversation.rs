//! Whole conversations through FullNAT (IPv4, TOA off), both directions,
//! on a simulated clock: every packet's exact bytes out, the connection's
//! IPVS state (`Worker::connections`, as `ipvsadm -Lnc` names it) and idle
//! timer after each packet, the active/inactive counts the schedulers read,
//! and expiry back to zero. Then what the control plane does to live flows:
//! a changed backend set, a quiescent server, removal with and without
//! expiry, a full table, and `ipvsadm --set` timeouts.
//!
//! The state progressions are those of IPVS's normal TCP state table
//! (`ip_vs_proto_tcp.c`), client = INPUT, server = OUTPUT:
//! - client closes first: SYN_RECV → ESTABLISHED → (client FIN) CLOSE_WAIT
//!   → (server FIN) TIME_WAIT;
//! - server closes first: ESTABLISHED → (server FIN) FIN_WAIT → (client
//!   FIN) TIME_WAIT;
//! - RST from either side: CLOSE.
//!
//! Expected packets are built by etherparse, never by the code under test.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use etherparse::{PacketBuilder, TcpHeader};
use rvs_lb::config::{Config, DestSpec, ForwardMode, ServiceKey, ServiceSpec, ToaMode};
use rvs_lb::conn::{TcpState, Time, Timeouts};
use rvs_lb::fwd::Verdict;
use rvs_lb::packet::Packet;
use rvs_lb::sched::SchedulerKind;
use rvs_lb::stats::DropReason;
use rvs_lb::worker::{ConnEntry, Worker, WorkerOptions};

const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const LADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const R1: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 1);
const R2: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 2);
const R3: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 3);
const R4: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 4);
const VPORT: u16 = 80;
const RPORT: u16 = 8080;
const UDP_VPORT: u16 = 53;
const UDP_RPORT: u16 = 5353;
const ROUTED: Verdict = Verdict::Forward { next_hop: None };

fn ip(a: Ipv4Addr) -> IpAddr {
    IpAddr::V4(a)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

// ---- packets (etherparse) ----

#[derive(Debug, Clone, Copy, Default)]
struct Flags {
    syn: bool,
    ack: bool,
    fin: bool,
    rst: bool,
}

const SYN: Flags = Flags {
    syn: true,
    ack: false,
    fin: false,
    rst: false,
};
const SYN_ACK: Flags = Flags {
    syn: true,
    ack: true,
    fin: false,
    rst: false,
};
const ACK: Flags = Flags {
    syn: false,
    ack: true,
    fin: false,
    rst: false,
};
const FIN_ACK: Flags = Flags {
    syn: false,
    ack: true,
    fin: true,
    rst: false,
};
const RST: Flags = Flags {
    syn: false,
    ack: false,
    fin: false,
    rst: true,
};

type Ep = (Ipv4Addr, u16);

fn tcp(src: Ep, dst: Ep, f: Flags, seq: u32, ack: u32, payload: &[u8]) -> Vec<u8> {
    let mut h = TcpHeader::new(src.1, dst.1, seq, 64000);
    h.syn = f.syn;
    h.fin = f.fin;
    h.rst = f.rst;
    h.ack = f.ack;
    h.psh = !payload.is_empty();
    if f.ack {
        h.acknowledgment_number = ack;
    }
    let mut v = Vec::new();
    PacketBuilder::ipv4(src.0.octets(), dst.0.octets(), 64)
        .tcp_header(h)
        .write(&mut v, payload)
        .unwrap();
    v
}

fn udp(src: Ep, dst: Ep, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(src.0.octets(), dst.0.octets(), 64)
        .udp(src.1, dst.1)
        .write(&mut v, payload)
        .unwrap();
    v
}

// ---- the worker ----

/// A FullNAT TCP service on VIP:80 and a UDP one on VIP:53, rr over
/// `servers` (address, weight).
fn specs(servers: &[(Ipv4Addr, u32)]) -> Vec<ServiceSpec> {
    let make = |key, port| {
        let mut s = ServiceSpec::new(key, SchedulerKind::Rr);
        s.toa = ToaMode::Off;
        s.laddrs = vec![ip(LADDR)];
        s.dests = servers
            .iter()
            .map(|&(a, wt)| DestSpec::new(ip(a), port, ForwardMode::FullNat).weight(wt))
            .collect();
        s
    };
    vec![
        make(ServiceKey::tcp(ip(VIP), VPORT), RPORT),
        make(ServiceKey::udp(ip(VIP), UDP_VPORT), UDP_RPORT),
    ]
}

fn config(servers: &[(Ipv4Addr, u32)], timeouts: Timeouts) -> Arc<Config> {
    Arc::new(Config::build(specs(servers), timeouts).unwrap())
}

fn worker_with(servers: &[(Ipv4Addr, u32)], capacity: u32, timeouts: Timeouts) -> Worker {
    let mut w = Worker::new(WorkerOptions {
        conn_capacity: capacity,
        ..WorkerOptions::default()
    });
    w.apply(config(servers, timeouts), false);
    w
}

fn worker(servers: &[(Ipv4Addr, u32)]) -> Worker {
    worker_with(servers, 64, Timeouts::default())
}

fn run(w: &mut Worker, pkt: &[u8], now: Time) -> (Verdict, Vec<u8>) {
    let mut buf = vec![0u8; 64 + pkt.len() + 64];
    buf[64..64 + pkt.len()].copy_from_slice(pkt);
    let mut p = Packet::new(&mut buf, 64, pkt.len()).unwrap();
    let v = w.process(&mut p, 0, now);
    (v, p.data().to_vec())
}

/// One client's TCP connection as both ends see it: the client's endpoint,
/// and the local endpoint and real server the worker chose (learnt from
/// the forwarded SYN, then checked on every packet).
struct Flow {
    client: Ep,
    local: Ep,
    server: Ep,
}

/// The worker and the simulated clock.
struct Lb {
    w: Worker,
    now: Time,
}

impl Lb {
    fn new(w: Worker) -> Self {
        Lb {
            w,
            now: Time::from_secs(1000),
        }
    }

    fn advance(&mut self, d: Duration) {
        self.now = self.now.saturating_add(d);
    }

    /// The client opens a connection from `port`: its SYN must come out as
    /// the same segment from a local endpoint to a real server.
    fn open(&mut self, port: u16) -> Flow {
        let client = (CLIENT, port);
        let syn = tcp(client, (VIP, VPORT), SYN, 1000, 0, b"");
        let (v, out) = run(&mut self.w, &syn, self.now);
        assert_eq!(v, ROUTED, "SYN from port {port}");
        let a = |o: usize| Ipv4Addr::new(out[o], out[o + 1], out[o + 2], out[o + 3]);
        let p = |o: usize| u16::from_be_bytes([out[o], out[o + 1]]);
        let flow = Flow {
            client,
            local: (a(12), p(20)),
            server: (a(16), p(22)),
        };
        assert_eq!(flow.local.0, LADDR);
        assert_eq!(flow.server.1, RPORT);
        assert_eq!(out, tcp(flow.local, flow.server, SYN, 1000, 0, b""));
        flow
    }

    /// The client sends a segment: out it goes, local → server, unchanged
    /// otherwise. Returns the connection's state name.
    fn c(&mut self, f: &Flow, flags: Flags, seq: u32, ack: u32, data: &[u8]) -> &'static str {
        let (v, out) = run(
            &mut self.w,
            &tcp(f.client, (VIP, VPORT), flags, seq, ack, data),
            self.now,
        );
        assert_eq!(v, ROUTED, "client {flags:?}");
        assert_eq!(out, tcp(f.local, f.server, flags, seq, ack, data));
        self.entry(f).state
    }

    /// The server sends a segment: out it goes, VIP → client.
    fn s(&mut self, f: &Flow, flags: Flags, seq: u32, ack: u32, data: &[u8]) -> &'static str {
        let (v, out) = run(
            &mut self.w,
            &tcp(f.server, f.local, flags, seq, ack, data),
            self.now,
        );
        assert_eq!(v, ROUTED, "server {flags:?}");
        assert_eq!(out, tcp((VIP, VPORT), f.client, flags, seq, ack, data));
        self.entry(f).state
    }

    /// The flow's connection as listed.
    fn entry(&self, f: &Flow) -> ConnEntry {
        self.find(f.client).expect("the connection is listed")
    }

    fn find(&self, client: Ep) -> Option<ConnEntry> {
        self.w
            .connections(self.now)
            .find(|c| c.client == (ip(client.0), client.1) && c.proto == 6)
    }

    /// SYN, SYN-ACK, ACK: the flow is ESTABLISHED.
    fn handshake(&mut self, port: u16) -> Flow {
        let f = self.open(port);
        assert_eq!(self.entry(&f).state, "SYN_RECV");
        assert_eq!(self.s(&f, SYN_ACK, 5000, 1001, b""), "SYN_RECV");
        assert_eq!(self.c(&f, ACK, 1001, 5001, b""), "ESTABLISHED");
        f
    }

    /// Expires with a generous budget; returns how many went.
    fn expire(&mut self) -> usize {
        self.w.expire(self.now, 1000)
    }

    /// (active, inactive) of real server `d` of the TCP service.
    fn counts(&self, d: usize) -> (u32, u32) {
        let f = &self.w.services()[0].facts[d];
        (f.active, f.inactive)
    }

    /// Nothing left: no connection, and every connection count is zero.
    fn assert_all_zero(&self) {
        assert_eq!(self.w.conns().len(), 0);
        for (i, s) in self.w.services().iter().enumerate() {
            assert_eq!(s.conns, 0, "service {i} conns");
            for (d, f) in s.facts.iter().enumerate() {
                assert_eq!((f.active, f.inactive), (0, 0), "service {i} server {d}");
            }
        }
    }

    /// Moves the clock to just before the flow's deadline (it is still
    /// there after an expiry run) and then just past it (it is gone).
    /// Returns how many connections the second run expired.
    fn expire_exactly_after(&mut self, f: &Flow, timeout: Duration) -> usize {
        let e = self.entry(f);
        assert_eq!(e.expires, timeout, "{} timer", e.state);
        self.advance(timeout - Duration::from_millis(1));
        self.expire();
        assert!(self.find(f.client).is_some(), "{} not yet expired", e.state);
        self.advance(Duration::from_millis(200));
        let n = self.expire();
        assert!(self.find(f.client).is_none(), "{} expired", e.state);
        n
    }
}

// ---- whole TCP conversations ----

#[test]
fn client_closes_first_then_time_wait_expires() {
    let mut lb = Lb::new(worker(&[(R1, 1), (R2, 1)]));
    let f = lb.open(40000);
    assert_eq!(f.server, (R1, RPORT));
    assert_eq!(f.local, (LADDR, 1025));
    let e = lb.entry(&f);
    assert_eq!((e.state, e.expires), ("SYN_RECV", secs(60)));
    assert_eq!(lb.counts(0), (0, 1), "SYN_RECV is inactive");

    lb.advance(Duration::from_millis(10));
    assert_eq!(lb.s(&f, SYN_ACK, 5000, 1001, b""), "SYN_RECV");
    lb.advance(Duration::from_millis(10));
    assert_eq!(lb.c(&f, ACK, 1001, 5001, b""), "ESTABLISHED");
    assert_eq!(lb.entry(&f).expires, secs(15 * 60));
    assert_eq!(lb.counts(0), (1, 0), "ESTABLISHED is active");

    // Data both ways.
    lb.advance(secs(1));
    assert_eq!(
        lb.c(&f, ACK, 1001, 5001, b"GET / HTTP/1.0\r\n\r\n"),
        "ESTABLISHED"
    );
    assert_eq!(
        lb.s(&f, ACK, 5001, 1019, b"HTTP/1.0 200 OK\r\n\r\nhello"),
        "ESTABLISHED"
    );
    // A long idle gap within the ESTABLISHED timeout keeps the flow.
    lb.advance(secs(14 * 60));
    assert_eq!(lb.expire(), 0);
    assert_eq!(lb.c(&f, ACK, 1019, 5026, b"more"), "ESTABLISHED");

    // The client closes first.
    lb.advance(secs(1));
    assert_eq!(lb.c(&f, FIN_ACK, 1023, 5026, b""), "CLOSE_WAIT");
    assert_eq!(lb.entry(&f).expires, secs(60));
    assert_eq!(lb.counts(0), (0, 1), "CLOSE_WAIT is inactive");
    assert_eq!(lb.s(&f, ACK, 5026, 1024, b""), "CLOSE_WAIT");
    assert_eq!(lb.s(&f, FIN_ACK, 5026, 1024, b""), "TIME_WAIT");
    lb.advance(Duration::from_millis(5));
    assert_eq!(lb.c(&f, ACK, 1024, 5027, b""), "TIME_WAIT");

    let st = lb.w.services()[0].stats;
    assert_eq!((st.conns, st.in_pkts, st.out_pkts), (1, 6, 4));
    assert_eq!(lb.expire_exactly_after(&f, secs(120)), 1);
    lb.assert_all_zero();
    // The cumulative traffic counters stay (as `ipvsadm --stats`).
    assert_eq!(lb.w.services()[0].stats, st);
    // A straggler of the closed flow no longer matches anything.
    let late = tcp(f.client, (VIP, VPORT), ACK, 1024, 5027, b"");
    assert_eq!(
        run(&mut lb.w, &late, lb.now).0,
        Verdict::Drop(DropReason::NoConnection)
    );
    assert_eq!(lb.w.drops().total(), 1);
}

#[test]
fn server_closes_first_then_time_wait_expires() {
    let mut lb = Lb::new(worker(&[(R1, 1)]));
    let f = lb.handshake(40000);
    assert_eq!(lb.s(&f, ACK, 5001, 1001, b"220 ready\r\n"), "ESTABLISHED");
    assert_eq!(lb.c(&f, ACK, 1001, 5012, b"QUIT\r\n"), "ESTABLISHED");
    lb.advance(secs(2));
    assert_eq!(lb.s(&f, FIN_ACK, 5012, 1007, b"221 bye\r\n"), "FIN_WAIT");
    assert_eq!(lb.entry(&f).expires, secs(120));
    assert_eq!(lb.counts(0), (0, 1), "FIN_WAIT is inactive");
    assert_eq!(lb.c(&f, ACK, 1007, 5022, b""), "FIN_WAIT");
    lb.advance(secs(1));
    assert_eq!(lb.c(&f, FIN_ACK, 1007, 5022, b""), "TIME_WAIT");
    assert_eq!(lb.s(&f, ACK, 5022, 1008, b""), "TIME_WAIT");
    assert_eq!(lb.expire_exactly_after(&f, secs(120)), 1);
    lb.assert_all_zero();
}

#[test]
fn reset_in_the_middle_closes_for_ten_seconds() {
    let mut lb = Lb::new(worker(&[(R1, 1)]));
    // From the client.
    let f = lb.handshake(40000);
    assert_eq!(lb.c(&f, ACK, 1001, 5001, b"data"), "ESTABLISHED");
    assert_eq!(lb.c(&f, RST, 1005, 0, b""), "CLOSE");
    assert_eq!(lb.counts(0), (0, 1), "CLOSE is inactive");
    // From the server, on another connection.
    let g = lb.handshake(40001);
    assert_eq!(lb.s(&g, RST, 5001, 0, b""), "CLOSE");
    assert_eq!(lb.counts(0), (0, 2));
    assert_eq!(lb.expire_exactly_after(&g, secs(10)), 2, "both together");
    lb.assert_all_zero();
    // The server's late segment is for no connection and no VIP: the stack's.
    let late = tcp(g.server, g.local, ACK, 5001, 1001, b"late");
    assert_eq!(run(&mut lb.w, &late, lb.now).0, Verdict::Pass);
}

#[test]
fn udp_flow_expires_after_the_udp_timeout() {
    let mut lb = Lb::new(worker(&[(R1, 1), (R2, 1)]));
    let client = (CLIENT, 5000);
    let q = udp(client, (VIP, UDP_VPORT), b"query");
    let (v, out) = run(&mut lb.w, &q, lb.now);
    assert_eq!(v, ROUTED);
    let local = (LADDR, 1025);
    assert_eq!(out, udp(local, (R1, UDP_RPORT), b"query"));
    lb.advance(secs(1));
    let (v, out) = run(&mut lb.w, &udp((R1, UDP_RPORT), local, b"answer"), lb.now);
    assert_eq!(v, ROUTED);
    assert_eq!(out, udp((VIP, UDP_VPORT), client, b"answer"));
    // A datagram later restarts the idle timer; the flow keeps its server.
    lb.advance(secs(200));
    let (_, out) = run(&mut lb.w, &q, lb.now);
    assert_eq!(out, udp(local, (R1, UDP_RPORT), b"query"));
    let e =
        lb.w.connections(lb.now)
            .find(|c| c.proto == 17)
            .expect("listed");
    assert_eq!((e.state, e.expires), ("UDP", secs(300)));
    lb.advance(secs(300) - Duration::from_millis(1));
    assert_eq!(lb.expire(), 0);
    lb.advance(Duration::from_millis(200));
    assert_eq!(lb.expire(), 1);
    lb.assert_all_zero();
    let st = lb.w.services()[1].stats;
    assert_eq!((st.conns, st.in_pkts, st.out_pkts), (1, 2, 1));
    // The same client's next datagram is a new flow, scheduled anew (rr).
    let (_, out) = run(&mut lb.w, &q, lb.now);
    assert_eq!(out, udp((LADDR, 1026), (R2, UDP_RPORT), b"query"));
    assert_eq!(lb.w.services()[1].stats.conns, 2);
}

// ---- the control plane and live flows ----

#[test]
fn flow_sticks_to_its_server_when_the_backend_set_changes() {
    let mut lb = Lb::new(worker(&[(R1, 1), (R2, 1)]));
    let a = lb.handshake(40000);
    let b = lb.handshake(40001);
    assert_eq!((a.server.0, b.server.0), (R1, R2));
    // R3 added in front of R1 (indices shift), R4 after it, R2 kept.
    lb.w.apply(
        config(&[(R3, 1), (R1, 1), (R2, 1), (R4, 1)], Timeouts::default()),
        false,
    );
    assert_eq!(lb.c(&a, ACK, 1001, 5001, b"a"), "ESTABLISHED");
    assert_eq!(lb.s(&a, ACK, 5001, 1002, b"A"), "ESTABLISHED");
    assert_eq!(lb.c(&b, ACK, 1001, 5001, b"b"), "ESTABLISHED");
    assert_eq!(lb.entry(&a).dest, (ip(R1), RPORT));
    // Their counts followed them to the servers' new positions.
    assert_eq!(
        [lb.counts(0), lb.counts(1), lb.counts(2), lb.counts(3)],
        [(0, 0), (1, 0), (1, 0), (0, 0)]
    );
    assert_eq!(lb.w.services()[0].dest_stats[1].conns, 1);
    assert_eq!(lb.w.services()[0].conns, 2);
    // New flows are spread over the new set.
    let mut seen: Vec<Ipv4Addr> = (0..4).map(|i| lb.open(41000 + i).server.0).collect();
    seen.sort();
    assert_eq!(seen, vec![R1, R2, R3, R4]);
    // Now R2 and R3 go (without expiry): A still reaches R1, B still R2.
    lb.w.apply(config(&[(R1, 1), (R4, 1)], Timeouts::default()), false);
    assert_eq!(lb.c(&a, ACK, 1002, 5002, b"a"), "ESTABLISHED");
    assert_eq!(lb.s(&b, ACK, 5001, 1002, b"B"), "ESTABLISHED");
    assert_eq!([lb.counts(0), lb.counts(1)], [(1, 1), (0, 1)]);
    // Both close; every count returns to zero, the removed server's flow
    // included.
    for f in [&a, &b] {
        lb.c(f, RST, 1003, 0, b"");
    }
    lb.advance(secs(121));
    lb.expire();
    lb.assert_all_zero();
}

#[test]
fn quiescent_server_keeps_its_flow_and_takes_no_new_ones() {
    let mut lb = Lb::new(worker(&[(R1, 1), (R2, 1)]));
    let a = lb.handshake(40000);
    assert_eq!(a.server.0, R1);
    lb.w.apply(config(&[(R1, 0), (R2, 1)], Timeouts::default()), false);
    // The existing flow goes on, state machine and all.
    assert_eq!(lb.c(&a, ACK, 1001, 5001, b"still here"), "ESTABLISHED");
    assert_eq!(lb.s(&a, ACK, 5001, 1011, b"yes"), "ESTABLISHED");
    // New flows avoid R1.
    for i in 0..6 {
        assert_eq!(lb.open(41000 + i).server.0, R2, "new flow {i}");
    }
    assert_eq!(lb.counts(0), (1, 0));
    assert_eq!(lb.counts(1), (0, 6));
    assert_eq!(lb.c(&a, FIN_ACK, 1011, 5004, b""), "CLOSE_WAIT");
    assert_eq!(lb.s(&a, FIN_ACK, 5004, 1012, b""), "TIME_WAIT");
    assert_eq!(lb.counts(0), (0, 1));
    // Back to weight 1: R1 is scheduled again.
    lb.w.apply(config(&[(R1, 1), (R2, 1)], Timeouts::default()), false);
    let mut got: Vec<Ipv4Addr> = (0..2).map(|i| lb.open(42000 + i).server.0).collect();
    got.sort();
    assert_eq!(got, vec![R1, R2]);
}

#[test]
fn removed_server_without_expiry_keeps_its_flow_until_it_closes() {
    let mut lb = Lb::new(worker(&[(R1, 1), (R2, 1)]));
    let a = lb.handshake(40000);
    let b = lb.handshake(40001);
    lb.w.apply(config(&[(R2, 1)], Timeouts::default()), false);
    assert_eq!(lb.w.conns().len(), 2);
    assert_eq!(lb.c(&a, ACK, 1001, 5001, b"x"), "ESTABLISHED");
    assert_eq!(lb.s(&a, FIN_ACK, 5001, 1002, b""), "FIN_WAIT");
    assert_eq!(lb.c(&a, FIN_ACK, 1002, 5002, b""), "TIME_WAIT");
    assert_eq!(lb.entry(&a).dest, (ip(R1), RPORT));
    // The removed server's flow is no server's count; the service's still.
    assert_eq!(lb.counts(0), (1, 0), "R2 (now index 0) has only B");
    assert_eq!(lb.w.services()[0].conns, 2);
    assert_eq!(lb.open(41000).server.0, R2, "new flows go to R2 only");
    // A expires; so does the new flow, half-open for longer than a minute.
    lb.expire_exactly_after(&a, secs(120));
    assert_eq!(lb.w.services()[0].conns, 1, "B alone");
    assert_eq!(lb.c(&b, RST, 1001, 0, b""), "CLOSE");
    lb.advance(secs(11));
    assert_eq!(lb.expire(), 1);
    lb.assert_all_zero();
}

#[test]
fn removed_server_with_expiry_loses_its_flows_at_once() {
    let mut lb = Lb::new(worker(&[(R1, 1), (R2, 1)]));
    let a = lb.handshake(40000);
    let b = lb.handshake(40001);
    let a2 = lb.handshake(40002);
    assert_eq!(a2.server.0, R1);
    lb.w.apply(config(&[(R2, 1)], Timeouts::default()), true);
    assert!(lb.find(a.client).is_none() && lb.find(a2.client).is_none());
    assert_eq!(lb.w.conns().len(), 1);
    assert_eq!(lb.w.services()[0].conns, 1);
    assert_eq!(lb.counts(0), (1, 0));
    // A's next segment matches nothing (not a SYN): dropped and counted.
    let seg = tcp(a.client, (VIP, VPORT), ACK, 1001, 5001, b"x");
    assert_eq!(
        run(&mut lb.w, &seg, lb.now).0,
        Verdict::Drop(DropReason::NoConnection)
    );
    assert_eq!(lb.w.drops().get(DropReason::NoConnection), 1);
    // R1's answer is for no connection and no VIP: the stack's.
    let ans = tcp(a.server, a.local, ACK, 5001, 1001, b"y");
    assert_eq!(run(&mut lb.w, &ans, lb.now).0, Verdict::Pass);
    // B goes on.
    assert_eq!(lb.c(&b, ACK, 1001, 5001, b"b"), "ESTABLISHED");
    // A retried SYN from A's port is scheduled afresh, to R2.
    assert_eq!(lb.open(40000).server.0, R2);
}

#[test]
fn full_table_drops_new_flows_and_existing_ones_continue() {
    let mut lb = Lb::new(worker_with(&[(R1, 1), (R2, 1)], 2, Timeouts::default()));
    let a = lb.handshake(40000);
    let b = lb.handshake(40001);
    let before = lb.w.services()[0].stats;
    let syn = tcp((CLIENT, 40002), (VIP, VPORT), SYN, 1000, 0, b"");
    for _ in 0..3 {
        assert_eq!(
            run(&mut lb.w, &syn, lb.now).0,
            Verdict::Drop(DropReason::ConnTableFull)
        );
    }
    let dgram = udp((CLIENT, 5000), (VIP, UDP_VPORT), b"q");
    assert_eq!(
        run(&mut lb.w, &dgram, lb.now).0,
        Verdict::Drop(DropReason::ConnTableFull)
    );
    assert_eq!(lb.w.drops().get(DropReason::ConnTableFull), 4);
    assert_eq!(lb.w.drops().total(), 4);
    assert_eq!(
        lb.w.services()[0].stats,
        before,
        "dropped SYNs are no traffic"
    );
    assert_eq!(lb.w.conns().len(), 2);
    // Existing flows continue both ways.
    assert_eq!(lb.c(&a, ACK, 1001, 5001, b"a"), "ESTABLISHED");
    assert_eq!(lb.s(&b, ACK, 5001, 1001, b"b"), "ESTABLISHED");
    // Once one closes and expires, the retried SYN gets in.
    assert_eq!(lb.s(&b, RST, 5002, 0, b""), "CLOSE");
    lb.advance(secs(10));
    assert_eq!(lb.expire(), 1);
    let c = lb.open(40002);
    assert_eq!(lb.entry(&c).state, "SYN_RECV");
    assert_eq!(lb.w.drops().total(), 4);
}

#[test]
fn timeout_overrides_like_ipvsadm_set() {
    // `ipvsadm --set 30 5 7`: tcp (ESTABLISHED), tcpfin (FIN_WAIT), udp.
    let mut t = Timeouts::default();
    t.set_tcp(TcpState::Established, secs(30));
    t.set_tcp(TcpState::FinWait, secs(5));
    t.set_udp(secs(7));
    let mut lb = Lb::new(worker_with(&[(R1, 1)], 64, t));
    let a = lb.handshake(40000);
    assert_eq!(lb.expire_exactly_after(&a, secs(30)), 1);
    let b = lb.handshake(40001);
    assert_eq!(lb.s(&b, FIN_ACK, 5001, 1001, b""), "FIN_WAIT");
    assert_eq!(lb.expire_exactly_after(&b, secs(5)), 1);
    // The other states keep the IPVS defaults.
    let c = lb.open(40002);
    assert_eq!(lb.entry(&c).expires, secs(60));
    // (A client RST leaves SYN_RECV as it is, as in IPVS; the server's
    // closes.)
    assert_eq!(lb.c(&c, RST, 1001, 0, b""), "SYN_RECV");
    assert_eq!(lb.s(&c, RST, 5000, 0, b""), "CLOSE");
    assert_eq!(lb.entry(&c).expires, secs(10));
    let (_, _) = run(
        &mut lb.w,
        &udp((CLIENT, 5000), (VIP, UDP_VPORT), b"q"),
        lb.now,
    );
    let e = lb.w.connections(lb.now).find(|c| c.proto == 17).unwrap();
    assert_eq!(e.expires, secs(7));
    lb.advance(secs(11));
    assert_eq!(lb.expire(), 2);
    lb.assert_all_zero();
}

/// IPVS sets a connection's timeout from the current table on every
/// packet (`set_tcp_state` ends with `cp->timeout =
/// pd->timeout_table[new_state]` whether or not the state changed; UDP's
/// `udp_state_transition` likewise), so after `ipvsadm --set` a live flow
/// takes the new timeout with its next packet.
#[test]
fn new_timeouts_reach_live_flows_with_their_next_packet() {
    let mut lb = Lb::new(worker(&[(R1, 1)]));
    let a = lb.handshake(40000);
    let q = udp((CLIENT, 5000), (VIP, UDP_VPORT), b"q");
    run(&mut lb.w, &q, lb.now);
    let mut t = Timeouts::default();
    t.set_tcp(TcpState::Established, secs(30));
    t.set_udp(secs(7));
    lb.w.apply(config(&[(R1, 1)], t), false);
    assert_eq!(lb.c(&a, ACK, 1001, 5001, b"x"), "ESTABLISHED");
    assert_eq!(lb.entry(&a).expires, secs(30), "TCP takes the new timeout");
    run(&mut lb.w, &q, lb.now);
    let e = lb.w.connections(lb.now).find(|c| c.proto == 17).unwrap();
    assert_eq!(e.expires, secs(7), "UDP takes the new timeout");
}

/// IPVS counts a new connection as inactive (`__ip_vs_update_dest` gives
/// every real server's `conn_flags` `IP_VS_CONN_F_INACTIVE`, which
/// `ip_vs_bind_dest` counts under `inactconns`); only TCP's move to
/// ESTABLISHED makes one active, and UDP has no state that does. So
/// `ipvsadm -Ln` shows UDP flows under InActConn, and lc/wlc weigh them as
/// inactive (overhead `active * 256 + inactive`).
#[test]
fn udp_flows_count_as_inactive_as_in_ipvs() {
    let mut lb = Lb::new(worker(&[(R1, 1)]));
    let q = udp((CLIENT, 5000), (VIP, UDP_VPORT), b"q");
    assert_eq!(run(&mut lb.w, &q, lb.now).0, ROUTED);
    let f = &lb.w.services()[1].facts[0];
    assert_eq!((f.active, f.inactive), (0, 1));
}
