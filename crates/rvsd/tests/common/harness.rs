//! What the end-to-end tests of every forwarding mode share: a topology of
//! namespaces around the lb, rvsd as a child process (reload, counters),
//! real servers (HTTP with keep-alive, UDP echo), a shared L2 segment of
//! macvlans, a TUN device, and raw AF_PACKET capture and injection.
//!
//! Everything here lives inside namespaces the test creates and is
//! removed by guards on drop.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use std::path::PathBuf;

use super::{Netns, TIMEOUT, Veth, VethEnd, mac_str, run_with_timeout, sh, unique};

/// The `[api]` section of every test configuration: no control socket
/// (tests run side by side and must not take the default path).
pub(crate) const API_OFF: &str = "[api]\nsocket = \"\"\n\n";

/// `[0x02, 0x52, 0x56, 0x53, hi, lo]`: MACs of the tests' interfaces.
pub(crate) fn mac(hi: u8, lo: u8) -> [u8; 6] {
    [0x02, 0x52, 0x56, 0x53, hi, lo]
}

/// Turns checksum and segmentation offloads off on `dev` (a veth or
/// macvlan peer otherwise hands over frames with unfinished checksums).
pub(crate) fn offloads_off(ns: &Netns, dev: &str) {
    ns.sh(&[
        "ethtool", "-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off",
    ]);
}

/// Writes a sysctl inside `ns` (`net/ipv4/conf/all/rp_filter`).
pub(crate) fn sysctl(ns: &Netns, key: &str, value: &str) {
    let path = format!("/proc/sys/{key}");
    let value = value.to_string();
    ns.run(move || std::fs::write(&path, value).unwrap_or_else(|e| panic!("{path}: {e}")));
}

/// Deletes a file on drop.
pub(crate) struct TempFile(pub(crate) String);

impl TempFile {
    /// A fresh path under /tmp.
    pub(crate) fn new(tag: &str) -> TempFile {
        TempFile(format!("/tmp/rvsd-e2e-{}.{tag}", unique("f")))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The lb between a client and `n` backends, each on its own veth pair:
/// - client `10.0.0.2/24` and `fd00::2/64`, default routes via the lb's
///   `10.0.0.1` / `fd00::1` (port 0);
/// - backend `i` (1-based) `10.0.i.2/24` and `fd00:i::2/64`, default
///   routes via the lb's `10.0.i.1` / `fd00:i::1` (port `i`).
///
/// IPv6 is off unless asked for (no router solicitations or DAD to
/// wait for); IPv6 addresses are added without DAD.
pub(crate) struct Topo {
    pub(crate) client: Netns,
    pub(crate) lb: Netns,
    pub(crate) backends: Vec<Netns>,
    /// Client ↔ lb (`a` in the client).
    pub(crate) c: Veth,
    /// Backend `i` ↔ lb (`a` in the backend), index `i - 1`.
    pub(crate) v: Vec<Veth>,
    pub(crate) ipv6: bool,
}

impl Topo {
    pub(crate) fn new(backends: usize, ipv6: bool) -> Topo {
        Topo::with_queues(backends, ipv6, 1)
    }

    /// Like [`Topo::new`], every veth with `queues` RX and TX queues on
    /// both ends (AF_XDP worker `k` binds queue `k`).
    pub(crate) fn with_queues(backends: usize, ipv6: bool, queues: u16) -> Topo {
        let pair = |a: &Netns, ma, b: &Netns, mb| {
            if queues == 1 {
                Veth::new(a, ma, b, mb)
            } else {
                veth_mq(a, ma, b, mb, queues)
            }
        };
        let client = Netns::new("cl");
        let lb = Netns::new("lb");
        let bs: Vec<Netns> = (1..=backends)
            .map(|i| Netns::new(&format!("b{i}")))
            .collect();
        for ns in std::iter::once(&client).chain([&lb]).chain(&bs) {
            if !ipv6 {
                ns.disable_ipv6();
            }
        }
        let c = pair(&client, mac(0, 1), &lb, mac(0, 2));
        let v: Vec<Veth> = bs
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let n = u8::try_from(i + 1).unwrap();
                pair(b, mac(n, 1), &lb, mac(n, 2))
            })
            .collect();
        client.ip(&["addr", "add", "10.0.0.2/24", "dev", &c.a.name]);
        client.ip(&["route", "add", "default", "via", "10.0.0.1"]);
        if ipv6 {
            client.ip(&["addr", "add", "fd00::2/64", "dev", &c.a.name, "nodad"]);
            client.ip(&["-6", "route", "add", "default", "via", "fd00::1"]);
        }
        offloads_off(&client, &c.a.name);
        offloads_off(&lb, &c.b.name);
        for (i, (b, v)) in bs.iter().zip(&v).enumerate() {
            let n = i + 1;
            b.ip(&["addr", "add", &format!("10.0.{n}.2/24"), "dev", &v.a.name]);
            b.ip(&["route", "add", "default", "via", &format!("10.0.{n}.1")]);
            if ipv6 {
                b.ip(&[
                    "addr",
                    "add",
                    &format!("fd00:{n}::2/64"),
                    "dev",
                    &v.a.name,
                    "nodad",
                ]);
                b.ip(&[
                    "-6",
                    "route",
                    "add",
                    "default",
                    "via",
                    &format!("fd00:{n}::1"),
                ]);
            }
            offloads_off(b, &v.a.name);
            offloads_off(&lb, &v.b.name);
        }
        Topo {
            client,
            lb,
            backends: bs,
            c,
            v,
            ipv6,
        }
    }

    /// Each backend pings its gateway (rvs's address on its port, IPv4 and,
    /// with `v6`, IPv6), so rvs has learnt every backend's MAC: rvs drops
    /// a packet whose next hop is not resolved yet (it does not queue it;
    /// TCP recovers by retransmitting a second later, one datagram does
    /// not).
    pub(crate) fn warm_up(&self, rvsd: &mut Rvsd, v6: bool) {
        for (i, b) in self.backends.iter().enumerate() {
            let n = i + 1;
            let mut gws = vec![format!("10.0.{n}.1")];
            if v6 {
                gws.push(format!("fd00:{n}::1"));
            }
            for gw in gws {
                let out = b
                    .exec(&["ping", "-c", "1", "-W", "2", &gw], TIMEOUT)
                    .expect("ping");
                if !out.status.success() {
                    rvsd.fail(&format!("backend {n} cannot ping {gw}"));
                }
            }
        }
    }

    /// The `[daemon]`, `[[port]]` and `[[addr]]` sections for this
    /// topology on `backend` (`af_xdp` means generic mode).
    pub(crate) fn config_head(&self, backend: &str) -> String {
        let xdp = if backend == "af_xdp" {
            "xdp_mode = \"generic\"\n"
        } else {
            ""
        };
        String::from(API_OFF)
            + "[daemon]\nworkers = 1\ntick_ms = 10\n\n"
            + &self.ports_config(backend, xdp, None)
    }

    /// The `[[port]]` and `[[addr]]` sections for this topology on
    /// `backend`; `xdp` is put verbatim in every port (an `xdp_mode` line
    /// or nothing), `tap` names the TAP of the client port.
    pub(crate) fn ports_config(&self, backend: &str, xdp: &str, tap: Option<&str>) -> String {
        let mut s = String::new();
        let ports: Vec<&str> = std::iter::once(self.c.b.name.as_str())
            .chain(self.v.iter().map(|v| v.b.name.as_str()))
            .collect();
        for (i, p) in ports.iter().enumerate() {
            let tap = match tap {
                Some(t) if i == 0 => format!("tap = \"{t}\"\n"),
                _ => String::new(),
            };
            s.push_str(&format!(
                "[[port]]\nname = \"{p}\"\nbackend = \"{backend}\"\n{xdp}{tap}\n"
            ));
        }
        for (i, p) in ports.iter().enumerate() {
            s.push_str(&format!(
                "[[addr]]\naddr = \"10.0.{i}.1/24\"\nport = \"{p}\"\n\n"
            ));
            if self.ipv6 {
                let a = if i == 0 {
                    "fd00::1/64".to_string()
                } else {
                    format!("fd00:{i}::1/64")
                };
                s.push_str(&format!("[[addr]]\naddr = \"{a}\"\nport = \"{p}\"\n\n"));
            }
        }
        s
    }
}

/// A shared L2 segment (ARCHITECTURE.md §6): a veth pair inside a switch
/// namespace whose end `a` is the parent of macvlans in `bridge` mode,
/// each moved into its namespace. Deleted with the switch namespace.
pub(crate) struct Segment {
    sw: Netns,
    parent: Veth,
}

impl Segment {
    pub(crate) fn new() -> Segment {
        let sw = Netns::new("sw");
        sw.disable_ipv6();
        let parent = Veth::new(&sw, mac(0xee, 1), &sw, mac(0xee, 2));
        Segment { sw, parent }
    }

    /// A macvlan with `mac` on the segment, moved into `ns`, up, offloads
    /// off; returns its name.
    pub(crate) fn attach(&self, ns: &Netns, mac_addr: [u8; 6]) -> String {
        let name = unique("mv");
        self.sw.ip(&[
            "link",
            "add",
            &name,
            "link",
            &self.parent.a.name,
            "address",
            &super::mac_str(mac_addr),
            "type",
            "macvlan",
            "mode",
            "bridge",
        ]);
        self.sw.ip(&["link", "set", &name, "netns", &ns.name]);
        ns.ip(&["link", "set", &name, "up"]);
        offloads_off(ns, &name);
        name
    }
}

/// rvsd as a child process in a namespace; killed on drop if still
/// running. Its stderr (plain log lines) is collected.
pub(crate) struct Rvsd {
    pub(crate) child: Child,
    log: Arc<Mutex<String>>,
}

impl Rvsd {
    /// Starts rvsd with `config` (a file path) and waits for "rvsd started".
    pub(crate) fn start(ns: &Netns, config: &str) -> Rvsd {
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

    /// Writes `config` to `path` and starts rvsd with it.
    pub(crate) fn start_with(ns: &Netns, path: &TempFile, config: &str) -> Rvsd {
        std::fs::write(&path.0, config).unwrap();
        Rvsd::start(ns, &path.0)
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGTERM, then the exit code (bounded wait; `None` if still running).
    pub(crate) fn terminate(&mut self) -> Option<i32> {
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

    /// Whether the process is still running.
    pub(crate) fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGHUP, then waits (bounded) until the reload is logged; fails if
    /// it was refused.
    pub(crate) fn reload(&mut self) {
        let before = self.log().matches("configuration reloaded").count();
        // SAFETY: signalling our own child (`ip netns exec` execs rvsd).
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGHUP) };
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let log = self.log();
            if log.matches("configuration reloaded").count() > before {
                return;
            }
            assert!(!log.contains("reload refused"), "reload refused:\n{log}");
            assert!(Instant::now() < deadline, "no reload:\n{log}");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops rvsd (SIGTERM) and fails with `msg` and its whole log, final
    /// counters included.
    #[track_caller]
    pub(crate) fn fail(&mut self, msg: &str) -> ! {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + TIMEOUT;
        while !self.log().contains("rvsd stopped") && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        panic!("{msg}\nrvsd log:\n{}", self.log());
    }

    /// SIGTERM; waits (bounded) for exit 0 and returns the counters of
    /// the final log lines.
    pub(crate) fn stop(&mut self) -> Counters {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + TIMEOUT;
        let code = loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                break st.code();
            }
            assert!(
                Instant::now() < deadline,
                "rvsd did not stop:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        };
        // The stderr reader drains the last lines.
        let deadline = Instant::now() + TIMEOUT;
        while !self.log().contains("rvsd stopped") && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        let log = self.log();
        assert_eq!(code, Some(0), "rvsd exit code; log:\n{log}");
        Counters::parse(&log)
    }
}

impl Drop for Rvsd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The counters rvsd logs when it stops: the "worker counters" fields
/// (summed over workers) and the "drops" lines (summed by reason over
/// workers and layers).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) fields: BTreeMap<String, u64>,
    pub(crate) drops: BTreeMap<String, u64>,
    pub(crate) log: String,
}

impl Counters {
    pub(crate) fn parse(log: &str) -> Counters {
        let mut c = Counters {
            log: log.to_string(),
            ..Counters::default()
        };
        for line in log.lines() {
            let kv = || {
                line.split_whitespace().filter_map(|t| {
                    let (k, v) = t.split_once('=')?;
                    Some((k.to_string(), v.trim_matches('"').to_string()))
                })
            };
            if line.contains("worker counters") {
                for (k, v) in kv() {
                    if let Ok(n) = v.parse::<u64>() {
                        *c.fields.entry(k).or_default() += n;
                    }
                }
            } else if line.contains(" drops ") || line.contains("drops worker=") {
                let m: BTreeMap<String, String> = kv().collect();
                if let (Some(r), Some(n)) = (m.get("reason"), m.get("n")) {
                    *c.drops.entry(r.clone()).or_default() += n.parse::<u64>().unwrap_or(0);
                }
            }
        }
        c
    }

    /// A "worker counters" field (0 when absent).
    pub(crate) fn get(&self, name: &str) -> u64 {
        self.fields.get(name).copied().unwrap_or(0)
    }

    /// Drops for one reason (0 when none).
    pub(crate) fn drop_count(&self, reason: &str) -> u64 {
        self.drops.get(reason).copied().unwrap_or(0)
    }
}

/// An HTTP/1.1 server (keep-alive; `Connection: close` honoured) in a
/// namespace, a thread per connection. Answers every request with
/// `NAME PEER-ADDRESS\n`. Counts requests and remembers the peers it saw.
/// Stopped on drop.
pub(crate) struct HttpServer {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
    pub(crate) requests: Arc<AtomicU64>,
    pub(crate) peers: Arc<Mutex<Vec<IpAddr>>>,
}

impl HttpServer {
    pub(crate) fn start(ns: &Netns, name: &str, bind: SocketAddr) -> HttpServer {
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU64::new(0));
        let peers = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let (s, r, p) = (stop.clone(), requests.clone(), peers.clone());
        let name = name.to_string();
        let thread = ns.spawn(move || {
            let l = TcpListener::bind(bind).unwrap_or_else(|e| panic!("bind {bind}: {e}"));
            l.set_nonblocking(true).expect("nonblocking");
            tx.send(()).expect("ready");
            while !s.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((c, peer)) => {
                        {
                            let mut p = p.lock().unwrap();
                            if !p.contains(&peer.ip()) {
                                p.push(peer.ip());
                            }
                        }
                        let (s, r, name) = (s.clone(), r.clone(), name.clone());
                        thread::spawn(move || serve(c, peer, &name, &s, &r));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(1)),
                }
            }
        });
        rx.recv_timeout(TIMEOUT).expect("server ready");
        HttpServer {
            stop,
            thread: Some(thread),
            requests,
            peers,
        }
    }

    pub(crate) fn count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub(crate) fn peers(&self) -> Vec<IpAddr> {
        self.peers.lock().unwrap().clone()
    }
}

fn serve(mut c: TcpStream, peer: SocketAddr, name: &str, stop: &AtomicBool, reqs: &AtomicU64) {
    c.set_nonblocking(false).ok();
    c.set_nodelay(true).ok();
    c.set_read_timeout(Some(Duration::from_millis(200))).ok();
    let body = format!("{name} {}\n", peer.ip());
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let mut idle = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        // Answer every complete request in the buffer.
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            buf.drain(..end + 4);
            let close = head.contains("connection: close") || head.contains("http/1.0");
            reqs.fetch_add(1, Ordering::Relaxed);
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}\r\n{body}",
                body.len(),
                if close { "Connection: close\r\n" } else { "" }
            );
            if c.write_all(resp.as_bytes()).is_err() || close {
                return;
            }
        }
        match c.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                idle = Instant::now();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if idle.elapsed() > Duration::from_secs(20) {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An HTTP/1.0 server in a namespace on `0.0.0.0:port`, one request per
/// connection, closed after the answer `NAME PEER-ADDRESS\n`. Stopped on
/// drop.
pub(crate) struct OneShotServer {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl OneShotServer {
    pub(crate) fn start(ns: &Netns, name: &'static str, port: u16) -> OneShotServer {
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
        OneShotServer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for OneShotServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A UDP server in a namespace answering each datagram with
/// `NAME PEER-ADDRESS PAYLOAD`. Stopped on drop.
pub(crate) struct UdpEcho {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
    pub(crate) datagrams: Arc<AtomicU64>,
}

impl UdpEcho {
    pub(crate) fn start(ns: &Netns, name: &str, bind: SocketAddr) -> UdpEcho {
        let stop = Arc::new(AtomicBool::new(false));
        let datagrams = Arc::new(AtomicU64::new(0));
        let (tx, rx) = std::sync::mpsc::channel();
        let (s, d) = (stop.clone(), datagrams.clone());
        let name = name.to_string();
        let thread = ns.spawn(move || {
            let sock = UdpSocket::bind(bind).unwrap_or_else(|e| panic!("bind {bind}: {e}"));
            sock.set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            tx.send(()).expect("ready");
            let mut buf = [0u8; 2048];
            while !s.load(Ordering::Relaxed) {
                if let Ok((n, peer)) = sock.recv_from(&mut buf) {
                    d.fetch_add(1, Ordering::Relaxed);
                    let payload = String::from_utf8_lossy(&buf[..n]);
                    let reply = format!("{name} {} {}", peer.ip(), payload.trim());
                    let _ = sock.send_to(reply.as_bytes(), peer);
                }
            }
        });
        rx.recv_timeout(TIMEOUT).expect("udp server ready");
        UdpEcho {
            stop,
            thread: Some(thread),
            datagrams,
        }
    }
}

impl Drop for UdpEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `curl -sS --max-time 3 URL` (plus `extra`) in `ns`; the body, or the
/// error with rvsd's log.
pub(crate) fn curl(ns: &Netns, url: &str, extra: &[&str], rvsd: &mut Rvsd) -> String {
    let mut args = vec!["curl", "-sS", "--max-time", "3"];
    args.extend_from_slice(extra);
    args.push(url);
    let out = ns.exec(&args, TIMEOUT).expect("curl");
    if !out.status.success() {
        rvsd.fail(&format!(
            "curl {url} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Frames seen on an interface by an AF_PACKET socket (both directions)
/// until stopped.
pub(crate) struct Capture {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<Vec<Vec<u8>>>>,
}

impl Capture {
    pub(crate) fn start(ns: &Netns, dev: &str) -> Capture {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let dev = dev.to_string();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = ns.spawn(move || {
            let fd = packet_socket(&dev, true);
            tx.send(()).expect("ready");
            let mut frames = Vec::new();
            let mut buf = vec![0u8; 65536];
            while !s.load(Ordering::Relaxed) {
                // SAFETY: recv into a buffer we own, of its length.
                let n =
                    unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
                if let Ok(n) = usize::try_from(n) {
                    frames.push(buf[..n].to_vec());
                }
            }
            frames
        });
        rx.recv_timeout(TIMEOUT).expect("capture ready");
        Capture {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops and returns the frames seen.
    pub(crate) fn finish(mut self) -> Vec<Vec<u8>> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .map(|t| t.join().expect("capture thread"))
            .unwrap_or_default()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An AF_PACKET socket bound to `dev` in the calling thread's namespace
/// (receive timeout 50 ms when `rx`).
pub(crate) fn packet_socket(dev: &str, rx: bool) -> OwnedFd {
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket(2); the descriptor is owned right away.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) };
    assert!(fd >= 0, "AF_PACKET socket: {}", io::Error::last_os_error());
    // SAFETY: a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let name = std::ffi::CString::new(dev).unwrap();
    // SAFETY: a valid NUL-terminated name.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    assert!(ifindex > 0, "no interface {dev}");
    // SAFETY: sockaddr_ll is plain data; zeroed is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = i32::try_from(ifindex).unwrap();
    // SAFETY: binding with a valid sockaddr_ll of its size.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const sll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "bind AF_PACKET: {}", io::Error::last_os_error());
    if rx {
        set_rcvtimeo(&fd, Duration::from_millis(50));
    }
    fd
}

/// SO_RCVTIMEO on a socket.
pub(crate) fn set_rcvtimeo(fd: &OwnedFd, d: Duration) {
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: libc::suseconds_t::try_from(d.as_micros()).unwrap(),
    };
    // SAFETY: setsockopt with a timeval of its size.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const tv).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
    }
}

/// Sends raw Ethernet frames out of `dev` in `ns`, each `times` times.
pub(crate) fn inject(ns: &Netns, dev: &str, frames: Vec<Vec<u8>>, times: usize) {
    let dev = dev.to_string();
    ns.run(move || {
        let fd = packet_socket(&dev, false);
        for f in &frames {
            for _ in 0..times {
                // SAFETY: send from a buffer we own, of its length.
                let n = unsafe { libc::send(fd.as_raw_fd(), f.as_ptr().cast(), f.len(), 0) };
                assert_eq!(
                    usize::try_from(n).ok(),
                    Some(f.len()),
                    "send: {}",
                    io::Error::last_os_error()
                );
            }
        }
    });
}

/// A TUN device (layer 3, no packet information) created in `ns`; it
/// exists while this value lives.
pub(crate) struct Tun {
    pub(crate) name: String,
    pub(crate) file: File,
}

impl Tun {
    pub(crate) fn new(ns: &Netns) -> Tun {
        let name = unique("tn");
        let n = name.clone();
        let file = ns.run(move || {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/net/tun")
                .expect("/dev/net/tun");
            // SAFETY: ifreq is plain data; zeroed is valid.
            let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
            for (d, s) in ifr.ifr_name.iter_mut().zip(n.bytes()) {
                *d = s as libc::c_char;
            }
            ifr.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
            // SAFETY: TUNSETIFF with a valid ifreq on the tun descriptor.
            let r = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &raw mut ifr) };
            assert_eq!(r, 0, "TUNSETIFF: {}", io::Error::last_os_error());
            file
        });
        ns.ip(&["link", "set", &name, "up"]);
        Tun { name, file }
    }
}

/// Parses `wrk`'s summary: (requests, non-2xx/3xx responses, socket
/// errors).
pub(crate) fn wrk_summary(out: &str) -> (u64, u64, u64) {
    let num = |s: &str| s.trim().trim_end_matches(',').parse::<u64>().unwrap_or(0);
    let mut requests = 0;
    let mut non2xx = 0;
    let mut errors = 0;
    for line in out.lines() {
        let l = line.trim();
        if l.contains("requests in") {
            requests = num(l.split_whitespace().next().unwrap_or("0"));
        } else if let Some(r) = l.strip_prefix("Non-2xx or 3xx responses:") {
            non2xx = num(r);
        } else if let Some(r) = l.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            errors = r
                .split(',')
                .filter_map(|p| p.split_whitespace().nth(1))
                .map(num)
                .sum();
        }
    }
    (requests, non2xx, errors)
}

/// A veth pair like `Veth::new`, with `queues` RX and TX queues on both
/// ends (AF_XDP worker `k` binds queue `k`).
pub(crate) fn veth_mq(
    ns_a: &Netns,
    mac_a: [u8; 6],
    ns_b: &Netns,
    mac_b: [u8; 6],
    queues: u16,
) -> Veth {
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

/// A binary of the workspace beside rvsd's (`rvsadm`, `rvsip`), built
/// first when run under cargo.
pub(crate) fn sibling_bin(name: &str) -> PathBuf {
    let rvsd = PathBuf::from(env!("CARGO_BIN_EXE_rvsd"));
    let bin = rvsd.with_file_name(name);
    if let Ok(cargo) = std::env::var("CARGO") {
        let profile = rvsd
            .parent()
            .and_then(|p| p.file_name())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-q", "-p", name, "--bin", name]);
        if profile == "release" {
            cmd.arg("--release");
        }
        let out = run_with_timeout(&mut cmd, Duration::from_secs(300))
            .unwrap_or_else(|e| panic!("build {name}: {e}"));
        assert!(
            out.status.success(),
            "building {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(bin.exists(), "{} not built", bin.display());
    bin
}

/// An rr FullNAT service on `vip`:80 with local address `laddr` and the
/// first two backends of a [`Topo`] as real servers.
pub(crate) fn rr_fullnat_service(vip: &str, laddr: &str) -> String {
    format!(
        r#"
[[service]]
proto = "tcp"
vip = "{vip}"
port = 80
scheduler = "rr"
laddrs = ["{laddr}"]
[[service.real]]
addr = "10.0.1.2"
mode = "fullnat"
[[service.real]]
addr = "10.0.2.2"
mode = "fullnat"
"#
    )
}

/// A wrr FullNAT service on `vip`:80 (local addresses `10.0.9.1` and
/// `10.0.9.2`) with `(backend number, weight)` as real servers.
pub(crate) fn wrr_service(vip: &str, reals: &[(u8, u32)]) -> String {
    let mut s = format!(
        "[[service]]\nproto = \"tcp\"\nvip = \"{vip}\"\nport = 80\nscheduler = \"wrr\"\n\
         laddrs = [\"10.0.9.1\", \"10.0.9.2\"]\n"
    );
    for (n, w) in reals {
        s.push_str(&format!(
            "[[service.real]]\naddr = \"10.0.{n}.2\"\nweight = {w}\nmode = \"fullnat\"\n"
        ));
    }
    s
}

/// The request counts of `servers`.
pub(crate) fn counts(servers: &[HttpServer]) -> Vec<u64> {
    servers.iter().map(HttpServer::count).collect()
}

/// Runs wrk from the client against `vip`:80 (with `extra` arguments) for
/// `run_secs`; after `change_after`, calls `change`. Returns wrk's summary
/// and the backends' request counts just before the change, just after
/// it (once connections opened before it are done) and at the end.
pub(crate) fn wrk_with_change(
    t: &Topo,
    vip: &str,
    (run_secs, change_after): (u64, Duration),
    servers: &[HttpServer],
    extra: &[&str],
    change: impl FnOnce(),
) -> ChangeRun {
    let url = format!("http://{vip}/");
    let dur = format!("{run_secs}s");
    let mut args = vec![
        "wrk",
        "-t1",
        "-c8",
        "-d",
        &dur,
        "--timeout",
        "3s",
        "--latency",
    ];
    args.extend_from_slice(extra);
    args.push(&url);
    thread::scope(|s| {
        let wrk = s.spawn(|| {
            t.client
                .exec(&args, Duration::from_secs(run_secs + 10))
                .expect("wrk")
        });
        thread::sleep(change_after);
        let before = counts(servers);
        change();
        thread::sleep(Duration::from_millis(300));
        let just_after = counts(servers);
        let out = wrk.join().expect("wrk thread");
        let end = counts(servers);
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "wrk: {text}");
        (wrk_summary(&text), [before, just_after, end], text)
    })
}

/// The new spread of the live-change tests, exactly: 20 new connections
/// to `vip`:80 from client ports rvs has never seen (1024-19999) go to b1
/// and b4 in turn, none to b2 (weight 0) or b3 (removed).
pub(crate) fn check_new_spread(
    t: &Topo,
    vip: &str,
    rvsd: &mut Rvsd,
    servers: &[HttpServer],
) -> Result<(), String> {
    sysctl(&t.client, "net/ipv4/ip_local_port_range", "1024 19999");
    let start = counts(servers);
    for _ in 0..20 {
        curl(&t.client, &format!("http://{vip}/"), &[], rvsd);
    }
    let d: Vec<u64> = start
        .iter()
        .zip(counts(servers))
        .map(|(f, t)| t - f)
        .collect();
    if !(d[1] == 0 && d[2] == 0 && d[0] + d[3] == 20 && d[0].abs_diff(d[3]) <= 2) {
        return Err(format!("new spread {d:?}, expected b1 and b4 only, evenly"));
    }
    Ok(())
}

/// Stops rvsd and fails if it dropped anything for want of a real
/// server, a local port or room.
pub(crate) fn stop_without_resource_drops(rvsd: &mut Rvsd) {
    let c = rvsd.stop();
    let bad: BTreeMap<&String, &u64> = c
        .drops
        .iter()
        .filter(|(r, _)| {
            matches!(
                r.as_str(),
                "no_real_server" | "local_ports_exhausted" | "conn_table_full" | "no_room"
            )
        })
        .collect();
    assert!(bad.is_empty(), "{bad:?}\n{}", c.log);
}

/// The live-change tests' start: the client's ports limited to
/// 20000-65535 for the runs under load, and an HTTP server on port 80 of
/// every backend (`b1`, `b2`, ...).
///
/// rvs does not yet reschedule a SYN that meets one of its connections
/// in TIME_WAIT/CLOSE (IPVS's conn_reuse_mode): such a SYN goes on to
/// the connection's old server, removed or quiescent. At wrk's rate the
/// client's ports wrap around within seconds (Linux picks them with
/// small random steps), so under load some connections after the
/// change still reach b2 and b3. The exact new spread is checked after
/// the runs from client ports rvs has never seen ([`check_new_spread`]).
pub(crate) fn live_change_servers(t: &Topo) -> Vec<HttpServer> {
    sysctl(&t.client, "net/ipv4/ip_local_port_range", "20000 65535");
    let any = SocketAddr::from(([0, 0, 0, 0], 80));
    t.backends
        .iter()
        .enumerate()
        .map(|(i, b)| HttpServer::start(b, &format!("b{}", i + 1), any))
        .collect()
}

/// What [`wrk_with_change`] returns.
pub(crate) type ChangeRun = ((u64, u64, u64), [Vec<u64>; 3], String);

/// The checks of a keep-alive live-change run (b1..b3, then b4 added, b2
/// quiesced, b3 removed): no failed request, and b3's established
/// connections keep flowing after its removal.
pub(crate) fn check_keepalive_run(rvsd: &mut Rvsd, run: ChangeRun) {
    let ((reqs, non2xx, errors), [b, a, e], text) = run;
    let report = |what: &str, c: &mut Rvsd| -> ! {
        c.fail(&format!(
            "{what}\nwrk:\n{text}\nbefore {b:?} after {a:?} end {e:?}"
        ))
    };
    if reqs < 100 || non2xx != 0 || errors != 0 {
        report("keep-alive: failed requests", rvsd);
    }
    if e[2] <= a[2] {
        report(
            "keep-alive: b3's established connections stopped after its removal",
            rvsd,
        );
    }
}

/// The checks of a `Connection: close` live-change run, then the exact
/// new spread ([`check_new_spread`]) and a stop without resource drops.
pub(crate) fn check_close_run_and_stop(
    t: &Topo,
    vip: &str,
    rvsd: &mut Rvsd,
    servers: &[HttpServer],
    run: ChangeRun,
) {
    let ((reqs, non2xx, errors), [b, a, e], text) = run;
    let delta = |from: &[u64], to: &[u64]| -> Vec<u64> {
        from.iter().zip(to).map(|(f, t)| t - f).collect()
    };
    let (d_before, d_after) = (delta(&[0; 4], &b), delta(&a, &e));
    let report = |what: &str, c: &mut Rvsd| -> ! {
        c.fail(&format!(
            "{what}\nwrk:\n{text}\nbefore {b:?} after {a:?} end {e:?}"
        ))
    };
    if reqs < 100 || non2xx != 0 || errors != 0 {
        report("Connection: close: failed requests", rvsd);
    }
    // Under load, after the change: b4 takes connections, and b1 and b4
    // most of them (rvs does not yet reschedule a SYN that meets one of
    // its connections in TIME_WAIT/CLOSE, so some still reach b2 and b3).
    if !(d_after[0] > 0 && d_after[3] > 0 && d_after[1] + d_after[2] < d_after[0] + d_after[3]) {
        report(
            &format!("spread after the change {d_after:?} (before: {d_before:?})"),
            rvsd,
        );
    }

    // The new spread, exactly: new connections from ports rvs has never
    // seen go to b1 and b4 in turn, none to b2 (weight 0) or b3
    // (removed).
    if let Err(e) = check_new_spread(t, vip, rvsd, servers) {
        report(&e, rvsd);
    }
    stop_without_resource_drops(rvsd);
}

/// Runs `sh` with `args` (re-exported for the tests).
pub(crate) fn host(program: &str, args: &[&str]) {
    sh(program, args);
}
