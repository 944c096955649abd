//! rvsd end to end, FullNAT (run as root): namespaces `client`, `lb` and
//! two backends, one veth pair from the client to the lb and one from the
//! lb to each backend (three ports). rvsd runs in `lb` as a child process
//! with a generated configuration; each backend runs a tiny HTTP server
//! (a thread inside its namespace) that answers with its name and the
//! address it saw the connection come from. `curl` in the client asks
//! VIP:80 `REQUESTS` times: every request must be answered, both backends
//! must answer (rr), and they must see the local address as the source.
//! The exception path is checked too: the lb's interface address also
//! lives on the TAP of the client port in the lb namespace's kernel, where
//! a server listens on a port no service has; the client reaches it
//! through rvsd (and the node itself answers the client's ping). Then SIGTERM: rvsd exits 0, its TAP is gone and
//! no XDP program is left on the ports.
//!
//! Offloads: the client and backends send with checksum offload off (a
//! veth peer otherwise hands over frames with unfinished checksums).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{Netns, TIMEOUT, Veth, unique};

const VIP: &str = "10.0.0.100";
const LADDR: &str = "10.0.9.1";
const REQUESTS: usize = 10;

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
                    Err(_) => thread::sleep(Duration::from_millis(5)),
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
        // SAFETY: signalling our own child (`ip netns exec` execs rvsd, so
        // this is rvsd's pid).
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

fn run(backend: &str) {
    let client = Netns::new("cl");
    let lb = Netns::new("lb");
    let b1 = Netns::new("b1");
    let b2 = Netns::new("b2");
    for ns in [&client, &lb, &b1, &b2] {
        ns.disable_ipv6();
    }
    let mac = |n: u8| [0x02, 0x52, 0x56, 0x53, 0x00, n];
    let c = Veth::new(&client, mac(1), &lb, mac(2));
    let v1 = Veth::new(&b1, mac(3), &lb, mac(4));
    let v2 = Veth::new(&b2, mac(5), &lb, mac(6));
    client.ip(&["addr", "add", "10.0.0.2/24", "dev", &c.a.name]);
    client.ip(&["route", "add", "default", "via", "10.0.0.1"]);
    b1.ip(&["addr", "add", "10.0.1.2/24", "dev", &v1.a.name]);
    b1.ip(&["route", "add", "default", "via", "10.0.1.1"]);
    b2.ip(&["addr", "add", "10.0.2.2/24", "dev", &v2.a.name]);
    b2.ip(&["route", "add", "default", "via", "10.0.2.1"]);
    offloads_off(&client, &c.a.name);
    offloads_off(&b1, &v1.a.name);
    offloads_off(&b2, &v2.a.name);
    for (ns, dev) in [(&lb, &c.b.name), (&lb, &v1.b.name), (&lb, &v2.b.name)] {
        offloads_off(ns, dev);
    }
    let _s1 = Server::start(&b1, "b1", 80);
    let _s2 = Server::start(&b2, "b2", 80);

    let tap = unique("tp");
    let xdp = if backend == "af_xdp" {
        "xdp_mode = \"generic\"\n"
    } else {
        ""
    };
    let config = format!(
        r#"
[daemon]
workers = 1
tick_ms = 10

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
    let path = TempFile(format!("/tmp/rvsd-e2e-{}.toml", unique("cf")));
    std::fs::write(&path.0, &config).unwrap();

    // --check accepts it.
    let out = Command::new(env!("CARGO_BIN_EXE_rvsd"))
        .args(["--config", &path.0, "--check"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut rvsd = Rvsd::start(&lb, &path.0);
    // The exception path: the lb's client-side address on the TAP.
    lb.ip(&["addr", "add", "10.0.0.1/24", "dev", &tap]);

    let mut seen = Vec::new();
    for i in 0..REQUESTS {
        let out = client
            .exec(
                &["curl", "-sS", "--max-time", "3", &format!("http://{VIP}/")],
                TIMEOUT,
            )
            .expect("curl");
        assert!(
            out.status.success(),
            "request {i} failed: {}\nrvsd log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            rvsd.log()
        );
        seen.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    let b1_count = seen.iter().filter(|s| s.starts_with("b1 ")).count();
    let b2_count = seen.iter().filter(|s| s.starts_with("b2 ")).count();
    assert_eq!(b1_count + b2_count, REQUESTS, "{seen:?}");
    assert_eq!(b1_count, REQUESTS / 2, "rr alternates: {seen:?}");
    for s in &seen {
        assert!(
            s.ends_with(&format!(" {LADDR}")),
            "backend saw {s}, not the laddr"
        );
    }

    // A new snapshot through SIGHUP: b2 quiescent (weight 0), so every new
    // connection goes to b1.
    let quiesced = config.replacen(
        "addr = \"10.0.2.2\"\nmode = \"fullnat\"",
        "addr = \"10.0.2.2\"\nmode = \"fullnat\"\nweight = 0",
        1,
    );
    assert_ne!(quiesced, config);
    std::fs::write(&path.0, &quiesced).unwrap();
    // SAFETY: signalling our own child (rvsd).
    unsafe { libc::kill(rvsd.child.id() as libc::pid_t, libc::SIGHUP) };
    let deadline = Instant::now() + TIMEOUT;
    while !rvsd.log().contains("configuration reloaded") {
        assert!(Instant::now() < deadline, "no reload:\n{}", rvsd.log());
        thread::sleep(Duration::from_millis(20));
    }
    thread::sleep(Duration::from_millis(100));
    for _ in 0..4 {
        let out = client
            .exec(
                &["curl", "-sS", "--max-time", "3", &format!("http://{VIP}/")],
                TIMEOUT,
            )
            .expect("curl");
        assert!(out.status.success(), "after reload: {}", rvsd.log());
        let body = String::from_utf8_lossy(&out.stdout);
        assert!(body.starts_with("b1 "), "b2 is quiescent, got {body}");
    }

    // The node answers ping for its own address.
    let ping = client
        .exec(&["ping", "-c", "1", "-W", "2", "10.0.0.1"], TIMEOUT)
        .expect("ping");
    assert!(
        ping.status.success(),
        "ping 10.0.0.1: {}\nrvsd log:\n{}",
        String::from_utf8_lossy(&ping.stdout),
        rvsd.log()
    );
    // The exception path: TCP to the lb's own address and a port no service
    // has goes to the kernel behind the TAP, whose server answers; its
    // reply comes back out of the TAP and through rvsd.
    let _kernel_server = Server::start(&lb, "lb-kernel", 8080);
    let out = client
        .exec(
            &["curl", "-sS", "--max-time", "3", "http://10.0.0.1:8080/"],
            TIMEOUT,
        )
        .expect("curl");
    assert!(
        out.status.success(),
        "through the TAP: {}\nrvsd log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        rvsd.log()
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "lb-kernel 10.0.0.2"
    );

    // Graceful shutdown: exit 0, TAP removed, XDP detached.
    let code = rvsd.terminate();
    assert_eq!(code, Some(0), "rvsd exit; log:\n{}", rvsd.log());
    let log = rvsd.log();
    assert!(log.contains("rvsd stopped"), "{log}");
    // The counters published at shutdown show both paths were used.
    let counter = |name: &str| -> u64 {
        log.split(&format!("{name}="))
            .nth(1)
            .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    assert!(counter("to_kernel") > 0, "{log}");
    assert!(counter("from_kernel") > 0, "{log}");
    assert!(counter("forwarded") >= 4 * REQUESTS as u64, "{log}");
    let links = lb.exec(&["ip", "link", "show"], TIMEOUT).unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    assert!(!links.contains(&tap), "TAP still there:\n{links}");
    assert!(!links.contains("xdp"), "XDP program left:\n{links}");
}

#[test]
fn fullnat_af_packet() {
    run("af_packet");
}

#[test]
fn fullnat_af_xdp_generic() {
    run("af_xdp");
}
