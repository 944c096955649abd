//! rvsd with two workers end to end (run as root; ARCHITECTURE.md §4).
//!
//! Same topology as `fullnat_e2e`: namespaces `client`, `lb` and two
//! backends, one veth pair from the client to the lb and one from the lb to
//! each backend, every veth with two queues. rvsd runs `workers = 2` on
//! `cores = [0, 1]`, no static neighbours (every worker resolves the
//! backends by ARP itself), once on AF_PACKET (each port's two sockets in
//! one `PACKET_FANOUT_HASH` group) and once on AF_XDP in native mode
//! (worker `k` on queue `k`; a veth delivers a frame to the queue numbered
//! like the transmit queue the sender picked, per socket — in generic mode
//! every frame arrives on queue 0 instead, measured: worker 1 then receives
//! nothing, which is why this test runs native). `curl`
//! from `REQUESTS` distinct client source ports to a FullNAT VIP must all be
//! answered, by both backends, with the local address as source.
//!
//! The fanout hash (the kernel's symmetric flow hash, seeded at boot) puts
//! each client connection on either worker, and each backend reply (R:80 →
//! L:lport, another 5-tuple) on either worker too, independently of the
//! worker whose port-partitioned local port it carries: about half the
//! replies reach the wrong worker and must be redirected, and every one of
//! them must still be answered. With 40 connections the chance that the
//! hash keeps all client flows on one worker, or never misdirects a reply,
//! is about 2^-39: the counters published at shutdown must show both
//! workers receiving and redirects happening. The exception path: TCP to
//! the lb's own address goes to the TAP, served by worker 0 — connections
//! the hash gives to worker 1 reach it through the ring (`to_tap_owner`).

mod common;

use std::collections::HashMap;

use common::harness::{API_OFF, OneShotServer as Server, Rvsd, TempFile, Topo, rr_fullnat_service};
use common::{Netns, TIMEOUT, unique};

const VIP: &str = "10.0.0.100";
const LADDR: &str = "10.0.9.1";
const REQUESTS: u16 = 40;
const KERNEL_REQUESTS: u16 = 12;

/// The `key=value` fields of the log lines containing `what`, by worker.
fn counters(log: &str, what: &str) -> HashMap<u64, HashMap<String, u64>> {
    let mut out = HashMap::new();
    for line in log.lines().filter(|l| l.contains(what)) {
        let fields: HashMap<String, u64> = line
            .split_whitespace()
            .filter_map(|t| {
                let (k, v) = t.split_once('=')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect();
        if let Some(&w) = fields.get("worker") {
            out.insert(w, fields);
        }
    }
    out
}

fn curl(client: &Netns, url: &str, local_port: u16) -> Result<String, String> {
    let out = client
        .exec(
            &[
                "curl",
                "-sS",
                "--max-time",
                "3",
                "--local-port",
                &local_port.to_string(),
                url,
            ],
            TIMEOUT,
        )
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

#[test]
fn two_workers_af_packet_fanout_fullnat() {
    run("af_packet");
}

#[test]
fn two_workers_af_xdp_two_queues_fullnat() {
    run("af_xdp");
}

fn run(backend: &str) {
    let topo = Topo::with_queues(2, false, 2);
    let (client, lb) = (&topo.client, &topo.lb);
    let _s1 = Server::start(&topo.backends[0], "b1", 80);
    let _s2 = Server::start(&topo.backends[1], "b2", 80);

    let tap = unique("tp");
    let xdp = if backend == "af_xdp" {
        "xdp_mode = \"native\"\n"
    } else {
        ""
    };
    let config = String::from(API_OFF)
        + "[daemon]\nworkers = 2\ncores = [0, 1]\ntick_ms = 10\n\n"
        + &topo.ports_config(backend, xdp, Some(&tap))
        + &rr_fullnat_service(VIP, LADDR);
    let path = TempFile::new("toml");
    std::fs::write(&path.0, &config).unwrap();

    let mut rvsd = Rvsd::start(lb, &path.0);
    assert!(
        rvsd.log().contains("steering=\"port-partition\""),
        "two AF_PACKET workers use the port partition:\n{}",
        rvsd.log()
    );
    lb.ip(&["addr", "add", "10.0.0.1/24", "dev", &tap]);
    let _kernel_server = Server::start(lb, "lb-kernel", 8080);

    // Let both workers learn the backends' MACs first. rvs drops a packet
    // whose next hop is still being resolved; if the client's SYN
    // retransmission then lands on the other worker (veth picks the queue
    // from the sender's, which can change on a retransmission), the flow
    // gets a second connection on that worker and the backend resets the
    // first one's ACK. Warm-up requests may fail; the counted ones below
    // may not.
    topo.warm_up(&mut rvsd, false);
    for i in 0..4 {
        let _ = curl(client, &format!("http://{VIP}/"), 30000 + i);
    }

    // Distinct client source ports: distinct 5-tuples for the fanout hash.
    let mut seen = Vec::new();
    for i in 0..REQUESTS {
        match curl(client, &format!("http://{VIP}/"), 31000 + i) {
            Ok(body) => seen.push(body),
            Err(e) => panic!("request {i} failed: {e}\nrvsd log:\n{}", rvsd.log()),
        }
    }
    let b1_count = seen.iter().filter(|s| s.starts_with("b1 ")).count();
    let b2_count = seen.iter().filter(|s| s.starts_with("b2 ")).count();
    assert_eq!(b1_count + b2_count, usize::from(REQUESTS), "{seen:?}");
    assert!(
        b1_count > 0 && b2_count > 0,
        "both backends answer: {seen:?}"
    );
    for s in &seen {
        assert!(
            s.ends_with(&format!(" {LADDR}")),
            "backend saw {s}, not the laddr"
        );
    }
    // The exception path from either worker: the kernel behind the TAP
    // (served by worker 0) answers every connection.
    for i in 0..KERNEL_REQUESTS {
        match curl(client, "http://10.0.0.1:8080/", 32000 + i) {
            Ok(body) => assert_eq!(body, "lb-kernel 10.0.0.2"),
            Err(e) => panic!("kernel request {i} failed: {e}\nrvsd log:\n{}", rvsd.log()),
        }
    }

    let code = rvsd.terminate();
    assert_eq!(code, Some(0), "rvsd exit; log:\n{}", rvsd.log());
    let log = rvsd.log();
    let workers = counters(&log, "worker counters");
    let redirects = counters(&log, "worker redirects");
    let get = |m: &HashMap<u64, HashMap<String, u64>>, w: u64, k: &str| {
        m.get(&w).and_then(|f| f.get(k)).copied().unwrap_or(0)
    };
    eprintln!(
        "measured: rx {} / {}, forwarded {} / {}, redirected {} / {}, to_tap_owner {}, learn_copies {} / {}, ring_full {} / {}",
        get(&workers, 0, "rx"),
        get(&workers, 1, "rx"),
        get(&workers, 0, "forwarded"),
        get(&workers, 1, "forwarded"),
        get(&redirects, 0, "redirected"),
        get(&redirects, 1, "redirected"),
        get(&redirects, 1, "to_tap_owner"),
        get(&redirects, 0, "learn_copies"),
        get(&redirects, 1, "learn_copies"),
        get(&redirects, 0, "ring_full"),
        get(&redirects, 1, "ring_full"),
    );
    for w in 0..2 {
        assert!(
            get(&workers, w, "rx") > 0,
            "worker {w} received nothing:\n{log}"
        );
        assert!(
            get(&workers, w, "forwarded") > 0,
            "worker {w} forwarded nothing:\n{log}"
        );
    }
    let redirected = get(&redirects, 0, "redirected") + get(&redirects, 1, "redirected");
    assert!(redirected > 0, "no reply was redirected:\n{log}");
    let received = get(&redirects, 0, "from_peers") + get(&redirects, 1, "from_peers");
    assert!(received >= redirected, "redirects not all taken:\n{log}");
    assert!(
        get(&redirects, 1, "to_tap_owner") > 0,
        "no kernel-bound frame went from worker 1 to worker 0:\n{log}"
    );
    assert_eq!(
        get(&redirects, 0, "ring_full") + get(&redirects, 1, "ring_full"),
        0
    );
    let links = lb.exec(&["ip", "link", "show"], TIMEOUT).unwrap();
    assert!(!String::from_utf8_lossy(&links.stdout).contains(&tap));
}
