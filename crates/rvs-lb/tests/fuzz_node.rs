//! Fuzz target: any bytes through `Node::handle` / `handle_from_kernel`
//! never panic, and what the node says to transmit is a well-formed
//! Ethernet frame from the port's MAC inside the buffer.
//!
//! Input: records `[op, len, bytes × len]`; `op & 1` sends the frame from
//! the kernel instead of port 0, `op & 2` advances the clock by `op` × 100 ms
//! and runs the timers, `op & 4` drains the generated frames. Runs under
//! plain `cargo test` (bolero's random engine plus the seed corpus in
//! `tests/__fuzz__/node/corpus/`).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rvs_lb::config::{Config, DestSpec, ForwardMode, ServiceKey, ServiceSpec};
use rvs_lb::conn::{Time, Timeouts};
use rvs_lb::packet::Packet;
use rvs_lb::sched::SchedulerKind;
use rvs_lb::stack::{Action, AddrConfig, HEADROOM, Node, PortConfig, RouteConfig, StackConfig};
use rvs_lb::worker::{Worker, WorkerOptions};
use rvs_wire::ethernet::MacAddr;

const PMAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

fn node() -> Node {
    let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
    let mut fnat = ServiceSpec::new(ServiceKey::tcp(v4(198, 51, 100, 1), 80), SchedulerKind::Rr);
    fnat.laddrs = vec![v4(10, 0, 0, 100)];
    fnat.dests = vec![
        DestSpec::new(v4(10, 0, 0, 5), 8080, ForwardMode::FullNat),
        DestSpec::new(v4(172, 16, 0, 5), 8080, ForwardMode::FullNat),
    ];
    let mut dr = ServiceSpec::new(ServiceKey::udp(v4(198, 51, 100, 1), 53), SchedulerKind::Rr);
    dr.dests = vec![DestSpec::new(v4(10, 0, 0, 6), 53, ForwardMode::Dr)];
    let mut v6 = ServiceSpec::new(
        ServiceKey::tcp("2001:db8:1::1".parse().unwrap(), 80),
        SchedulerKind::Rr,
    );
    v6.laddrs = vec!["2001:db8::100".parse().unwrap()];
    v6.dests = vec![DestSpec::new(
        "2001:db8::5".parse().unwrap(),
        80,
        ForwardMode::FullNat,
    )];
    let lb = Config::build(vec![fnat, dr, v6], Timeouts::default()).unwrap();
    let stack = StackConfig {
        ports: vec![PortConfig {
            id: 0,
            name: "p0".into(),
            mac: MacAddr(PMAC),
            mtu: 1500,
        }],
        addrs: vec![
            AddrConfig {
                addr: v4(10, 0, 0, 1),
                prefix_len: 24,
                port: 0,
            },
            AddrConfig {
                addr: "2001:db8::1".parse().unwrap(),
                prefix_len: 64,
                port: 0,
            },
        ],
        routes: vec![RouteConfig {
            prefix: v4(0, 0, 0, 0),
            prefix_len: 0,
            gateway: Some(v4(10, 0, 0, 254)),
            port: 0,
        }],
        static_neighbours: vec![(v4(10, 0, 0, 254), MacAddr([2, 0, 0, 0, 0, 0xfe]), 0)],
        explicit_vips: false,
    };
    let mut w = Worker::new(WorkerOptions {
        conn_capacity: 64,
        ..WorkerOptions::default()
    });
    w.apply(Arc::new(lb), false);
    Node::new(w, Arc::new(stack))
}

fn run(bytes: &[u8]) {
    let mut n = node();
    let mut now = Time::from_secs(1);
    let mut rest = bytes;
    let mut out = vec![0u8; 2048];
    while let [op, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (frame, next) = tail.split_at(len);
        rest = next;
        if op & 2 != 0 {
            now = now.add_millis(u64::from(*op) * 100);
            n.on_tick(now);
        }
        let mut buf = vec![0u8; HEADROOM + frame.len() + 64];
        buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
        let mut p = Packet::new(&mut buf, HEADROOM, frame.len()).unwrap();
        let action = if op & 1 != 0 {
            n.handle_from_kernel(&mut p, now)
        } else {
            n.handle(0, &mut p, now)
        };
        if let Action::Transmit { port } = action {
            assert_eq!(port, 0);
            assert!(p.len() >= 14, "{action:?} {:?}", p.data());
            // Multicast from the kernel keeps its destination; everything
            // else the node writes comes from the port's MAC.
            assert_eq!(&p.data()[6..12], &PMAC);
        }
        if op & 4 != 0 {
            while let Some((port, start, len)) = n.poll_transmit(&mut out, now) {
                assert_eq!((port, start), (0, HEADROOM));
                assert!(len >= 42 && start + len <= out.len());
                assert_eq!(&out[start + 6..start + 12], &PMAC);
            }
        }
    }
    assert!(n.pending_transmit() <= rvs_lb::stack::TX_QUEUE);
}

#[test]
fn fuzz_node() {
    bolero::check!().for_each(run);
}
