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
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{Netns, TIMEOUT, Veth, VethEnd, mac_str, sh, unique};

const VIP: &str = "10.0.0.100";
const LADDR: &str = "10.0.9.1";
const REQUESTS: u16 = 40;
const KERNEL_REQUESTS: u16 = 12;

/// An HTTP server thread in a namespace; stopped on drop.
struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    fn start(ns: &Netns, name: &'static str, port: u16) -> Server {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let s = stop.clone();
        let thread = ns.spawn(move || {
            let l = TcpListener::bind(("0.0.0.0", port)).expect("bind");
            l.set_nonblocking(true).expect("nonblocking");
            tx.send(()).expect("ready");
            while !s.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut c, peer)) => {
                        c.set_nonblocking(false).ok();
                        c.set_read_timeout(Some(Duration::from_secs(2))).ok();
                        let mut buf = [0u8; 2048];
                        let _ = c.read(&mut buf);
                        let body = format!("{name} {}\n", peer.ip());
                        let _ = write!(
                            c,
                            "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        rx.recv_timeout(TIMEOUT).expect("server ready");
        Server {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// rvsd as a child process; killed on drop if still running.
struct Rvsd {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Rvsd {
    fn start(ns: &Netns, config: &str) -> Rvsd {
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.name,
                env!("CARGO_BIN_EXE_rvsd"),
                "--config",
                config,
            ])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rvsd");
        let mut r = Rvsd {
            child,
            log: Arc::new(Mutex::new(String::new())),
        };
        let stderr = r.child.stderr.take().expect("stderr");
        let log = r.log.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while !r.log().contains("rvsd started") {
            if let Ok(Some(st)) = r.child.try_wait() {
                panic!("rvsd exited with {st}:\n{}", r.log());
            }
            assert!(
                Instant::now() < deadline,
                "rvsd did not start:\n{}",
                r.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
        r
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGTERM, then the exit code (bounded wait).
    fn terminate(&mut self) -> Option<i32> {
        // SAFETY: signalling our own child (`ip netns exec` execs rvsd).
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                thread::sleep(Duration::from_millis(50));
                return st.code();
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Rvsd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Deletes a file on drop.
struct TempFile(String);
impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn offloads_off(ns: &Netns, dev: &str) {
    ns.sh(&[
        "ethtool", "-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off",
    ]);
}

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

/// A veth pair like `Veth::new`, with `queues` RX and TX queues on both
/// ends (AF_XDP worker `k` binds queue `k`).
fn veth_mq(ns_a: &Netns, mac_a: [u8; 6], ns_b: &Netns, mac_b: [u8; 6], queues: u16) -> Veth {
    let a = VethEnd {
        name: unique("va"),
        ns: ns_a.name.clone(),
        mac: mac_a,
    };
    let b = VethEnd {
        name: unique("vb"),
        ns: ns_b.name.clone(),
        mac: mac_b,
    };
    let (ma, mb, q) = (mac_str(mac_a), mac_str(mac_b), queues.to_string());
    sh(
        "ip",
        &[
            "link",
            "add",
            &a.name,
            "address",
            &ma,
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
            "netns",
            &a.ns,
            "type",
            "veth",
            "peer",
            "name",
            &b.name,
            "address",
            &mb,
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
            "netns",
            &b.ns,
        ],
    );
    let veth = Veth { a, b };
    ns_a.ip(&["link", "set", &veth.a.name, "up"]);
    ns_b.ip(&["link", "set", &veth.b.name, "up"]);
    veth
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
    let client = Netns::new("cl");
    let lb = Netns::new("lb");
    let b1 = Netns::new("b1");
    let b2 = Netns::new("b2");
    for ns in [&client, &lb, &b1, &b2] {
        ns.disable_ipv6();
    }
    let mac = |n: u8| [0x02, 0x52, 0x56, 0x53, 0x01, n];
    let c = veth_mq(&client, mac(1), &lb, mac(2), 2);
    let v1 = veth_mq(&b1, mac(3), &lb, mac(4), 2);
    let v2 = veth_mq(&b2, mac(5), &lb, mac(6), 2);
    client.ip(&["addr", "add", "10.0.0.2/24", "dev", &c.a.name]);
    client.ip(&["route", "add", "default", "via", "10.0.0.1"]);
    b1.ip(&["addr", "add", "10.0.1.2/24", "dev", &v1.a.name]);
    b1.ip(&["route", "add", "default", "via", "10.0.1.1"]);
    b2.ip(&["addr", "add", "10.0.2.2/24", "dev", &v2.a.name]);
    b2.ip(&["route", "add", "default", "via", "10.0.2.1"]);
    offloads_off(&client, &c.a.name);
    offloads_off(&b1, &v1.a.name);
    offloads_off(&b2, &v2.a.name);
    for dev in [&c.b.name, &v1.b.name, &v2.b.name] {
        offloads_off(&lb, dev);
    }
    let _s1 = Server::start(&b1, "b1", 80);
    let _s2 = Server::start(&b2, "b2", 80);

    let tap = unique("tp");
    let xdp = if backend == "af_xdp" {
        "xdp_mode = \"native\"\n"
    } else {
        ""
    };
    let config = format!(
        r#"
[daemon]
workers = 2
cores = [0, 1]
tick_ms = 10

[api]
socket = ""

[[port]]
name = "{p0}"
backend = "{backend}"
{xdp}tap = "{tap}"

[[port]]
name = "{p1}"
backend = "{backend}"
{xdp}
[[port]]
name = "{p2}"
backend = "{backend}"
{xdp}
[[addr]]
addr = "10.0.0.1/24"
port = "{p0}"

[[addr]]
addr = "10.0.1.1/24"
port = "{p1}"

[[addr]]
addr = "10.0.2.1/24"
port = "{p2}"

[[service]]
proto = "tcp"
vip = "{VIP}"
port = 80
scheduler = "rr"
laddrs = ["{LADDR}"]
[[service.real]]
addr = "10.0.1.2"
mode = "fullnat"
[[service.real]]
addr = "10.0.2.2"
mode = "fullnat"
"#,
        p0 = c.b.name,
        p1 = v1.b.name,
        p2 = v2.b.name,
    );
    let path = TempFile(format!("/tmp/rvsd-e2e-{}.toml", unique("wk")));
    std::fs::write(&path.0, &config).unwrap();

    let mut rvsd = Rvsd::start(&lb, &path.0);
    assert!(
        rvsd.log().contains("steering=\"port-partition\""),
        "two AF_PACKET workers use the port partition:\n{}",
        rvsd.log()
    );
    lb.ip(&["addr", "add", "10.0.0.1/24", "dev", &tap]);
    let _kernel_server = Server::start(&lb, "lb-kernel", 8080);

    // Distinct client source ports: distinct 5-tuples for the fanout hash.
    let mut seen = Vec::new();
    for i in 0..REQUESTS {
        match curl(&client, &format!("http://{VIP}/"), 31000 + i) {
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
        match curl(&client, "http://10.0.0.1:8080/", 32000 + i) {
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
