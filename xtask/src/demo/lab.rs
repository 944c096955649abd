//! The lab: namespaces, backends, rvsd, traffic and the live display.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::sys::{self, Netns, Proc, SHORT, TempDir, check_interrupted, sleep};
use crate::run::{have, workspace_root};

const VIP: &str = "10.0.0.100";
const CLIENT: &str = "10.0.0.2";
const LADDR: &str = "10.0.9.1";
/// The backends: name and weight at the start.
const BACKENDS: [(&str, u32); 3] = [("b1", 3), ("b2", 2), ("b3", 1)];
/// Seconds of curl traffic before and after the change.
const PHASE_SECS: u32 = 8;
/// Seconds of wrk.
const WRK_SECS: u32 = 3;

fn backend_addr(i: usize) -> String {
    format!("10.0.{}.2", i + 1)
}

/// The namespaces and the temporary directory: dropped after [`Procs`].
struct Nets {
    ns: Vec<Netns>,
    tmp: TempDir,
}

impl Drop for Nets {
    fn drop(&mut self) {
        while let Some(ns) = self.ns.pop() {
            drop(ns);
        }
    }
}

impl Nets {
    fn ns(&self, role: &str) -> &Netns {
        let name = format!("{}{}-{role}", sys::NS_PREFIX, std::process::id());
        self.ns
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| unreachable!("namespace {role} is created first"))
    }
}

/// Every process the demo started, stopped before the namespaces go (it
/// is declared after them, so dropped first): rvsd first (it detaches its
/// XDP programs), then the others.
struct Procs {
    rvsd: Option<Proc>,
    others: Vec<Proc>,
}

impl Drop for Procs {
    fn drop(&mut self) {
        if let Some(mut r) = self.rvsd.take() {
            r.stop(Duration::from_secs(3));
        }
        while let Some(mut p) = self.others.pop() {
            p.stop(Duration::from_secs(1));
        }
    }
}

/// Counts the answers of a stream of curl requests, per backend.
#[derive(Debug, Default)]
struct Tally {
    per_backend: [AtomicU64; 3],
    failed: AtomicU64,
    /// The source address each backend saw (what FullNAT made of the
    /// client).
    seen_from: Mutex<[Option<String>; 3]>,
}

impl Tally {
    fn snapshot(&self) -> ([u64; 3], u64) {
        (
            std::array::from_fn(|i| self.per_backend[i].load(Ordering::Relaxed)),
            self.failed.load(Ordering::Relaxed),
        )
    }

    /// One line of curl's output: `<body> <http code>`, the body being
    /// `bN <source address>`; a failed request is ` 000`.
    fn count(&self, line: &str) {
        let mut words = line.split_whitespace();
        let (name, from, code) = (words.next(), words.next(), words.next());
        let ok = code == Some("200");
        match (
            ok,
            name.and_then(|n| BACKENDS.iter().position(|b| b.0 == n)),
        ) {
            (true, Some(i)) => {
                self.per_backend[i].fetch_add(1, Ordering::Relaxed);
                if let Ok(mut s) = self.seen_from.lock()
                    && s[i].is_none()
                {
                    s[i] = from.map(str::to_string);
                }
            }
            _ => {
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Where cargo puts its builds.
pub(super) fn target_dir() -> Result<PathBuf> {
    Ok(match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d),
        None => workspace_root()?.join("target"),
    })
}

fn rvsd_config(weights: [u32; 3], api: Option<&str>) -> String {
    let mut c = String::from(
        "# Written by `cargo xtask demo`.\n[daemon]\nworkers = 1\ntick_ms = 10\n\n\
         [[port]]\nname = \"to-client\"\nbackend = \"af_xdp\"\nxdp_mode = \"generic\"\n\n",
    );
    for (b, _) in BACKENDS {
        c += &format!(
            "[[port]]\nname = \"to-{b}\"\nbackend = \"af_xdp\"\nxdp_mode = \"generic\"\n\n"
        );
    }
    c += "[[addr]]\naddr = \"10.0.0.1/24\"\nport = \"to-client\"\n\n";
    for (i, (b, _)) in BACKENDS.iter().enumerate() {
        c += &format!(
            "[[addr]]\naddr = \"10.0.{}.1/24\"\nport = \"to-{b}\"\n\n",
            i + 1
        );
    }
    c += &format!(
        "[[service]]\nproto = \"tcp\"\nvip = \"{VIP}\"\nport = 80\nscheduler = \"wrr\"\n\
         toa = \"first-data\"\nladdrs = [\"{LADDR}\"]\n"
    );
    for (i, w) in weights.iter().enumerate() {
        c += &format!(
            "[[service.real]]\naddr = \"{}\"\nweight = {w}\nmode = \"fullnat\"\n",
            backend_addr(i)
        );
    }
    if let Some(sock) = api {
        c += &format!("\n[api]\nsocket = \"{sock}\"\n");
    }
    c
}

fn nginx_config(tmp: &TempDir, name: &str) -> String {
    let p = |s: &str| tmp.path(&format!("{name}-{s}"));
    format!(
        "# Written by `cargo xtask demo`: the backend `{name}`.\n\
         daemon off;\nmaster_process on;\nworker_processes 1;\n\
         pid {pid};\nerror_log {err} warn;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n    access_log off;\n    default_type text/plain;\n\
         \x20   client_body_temp_path {body};\n    proxy_temp_path {proxy};\n\
         \x20   fastcgi_temp_path {fcgi};\n    uwsgi_temp_path {uwsgi};\n\
         \x20   scgi_temp_path {scgi};\n\
         \x20   server {{\n        listen 80 backlog=1024;\n\
         \x20       location / {{ return 200 \"{name} $remote_addr\"; }}\n    }}\n\
         \x20   server {{\n        listen 127.0.0.1:8081;\n\
         \x20       location / {{ stub_status; }}\n    }}\n}}\n",
        pid = p("nginx.pid"),
        err = p("error.log"),
        body = p("body"),
        proxy = p("proxy"),
        fcgi = p("fastcgi"),
        uwsgi = p("uwsgi"),
        scgi = p("scgi"),
    )
}

/// Starts nginx in `ns` as the backend `name` (its configuration, logs
/// and temporary files in `tmp`).
pub(super) fn spawn_nginx(ns: &Netns, tmp: &TempDir, name: &str) -> Result<Proc> {
    let conf = tmp.path(&format!("{name}-nginx.conf"));
    std::fs::write(&conf, nginx_config(tmp, name))?;
    let mut cmd = ns.command("nginx");
    cmd.args([
        "-e",
        &tmp.path(&format!("{name}-start.log")),
        "-p",
        &tmp.path(""),
        "-c",
        &conf,
    ])
    .stdout(Stdio::null())
    .stderr(tmp.file(&format!("{name}-stderr.log"))?);
    Proc::spawn(&format!("nginx {name}"), &mut cmd)
}

/// The requests an nginx has served (its stub_status), asked from inside
/// its namespace.
fn nginx_requests(ns: &Netns) -> Result<u64> {
    let s = ns.exec(&["curl", "-sS", "--max-time", "2", "http://127.0.0.1:8081/"])?;
    // "server accepts handled requests\n A H R"
    s.lines()
        .nth(2)
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("unexpected stub_status: {s}"))
}

/// The Python fallback when nginx is not installed: same answer format.
fn python_backend(name: &str) -> String {
    format!(
        "import http.server as h\n\
         class H(h.BaseHTTPRequestHandler):\n\
         \x20   protocol_version = 'HTTP/1.0'\n\
         \x20   def do_GET(self):\n\
         \x20       b = ('{name} ' + self.client_address[0]).encode()\n\
         \x20       self.send_response(200); self.send_header('Content-Length', str(len(b)))\n\
         \x20       self.end_headers(); self.wfile.write(b)\n\
         \x20   def log_message(self, *a): pass\n\
         h.ThreadingHTTPServer(('0.0.0.0', 80), H).serve_forever()\n"
    )
}

/// `key=value` from rvsd's plain log lines (0 when absent).
fn log_value(log: &str, key: &str) -> u64 {
    log.lines()
        .rev()
        .find_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{key}=")))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// rvsd's own per-real-server counters through its control API
/// (`rvsadm -L -n --stats --exact`): new connections per backend.
fn rvsd_conns(rvsadm: &str, socket: &str) -> Option<[u64; 3]> {
    let out = sys::output(
        Command::new(rvsadm).args(["--socket", socket, "-L", "-n", "--stats", "--exact"]),
        Duration::from_secs(1),
    )
    .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut conns = [0u64; 3];
    for line in text.lines() {
        let mut w = line.split_whitespace();
        if w.next() != Some("->") {
            continue;
        }
        let (Some(addr), Some(n)) = (w.next(), w.next().and_then(|n| n.parse().ok())) else {
            continue;
        };
        let ip = addr.rsplit_once(':').map_or(addr, |(a, _)| a);
        if let Some(i) = (0..3).find(|&i| backend_addr(i) == ip) {
            conns[i] = n;
        }
    }
    Some(conns)
}

/// The first TCP segment in a pcap file (Ethernet, IPv4) that carries the
/// TOA option (kind 254, length 8: the client's port and IPv4 address):
/// `(source, client)` as `addr:port` strings.
fn toa_in_pcap(pcap: &[u8]) -> Option<(String, String)> {
    let be16 = |b: &[u8], at: usize| Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]));
    let ip4 = |b: &[u8]| format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3]);
    let le32 = |b: &[u8], at: usize| {
        Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize)
    };
    // Global header (24 bytes, little-endian magic as tcpdump writes it
    // here), then records: 16-byte header, `incl_len` at offset 8.
    if pcap.get(..4)? != [0xd4, 0xc3, 0xb2, 0xa1] {
        return None;
    }
    let mut at = 24;
    while let Some(len) = le32(pcap, at + 8) {
        let frame = pcap.get(at + 16..at + 16 + len)?;
        at += 16 + len;
        if be16(frame, 12)? != 0x0800 {
            continue;
        }
        let ip = frame.get(14..)?;
        let ihl = usize::from(ip.first()? & 0x0f) * 4;
        if *ip.get(9)? != 6 {
            continue;
        }
        let tcp = ip.get(ihl..)?;
        let doff = usize::from(tcp.get(12)? >> 4) * 4;
        let mut opts = tcp.get(20..doff)?;
        while let Some(&kind) = opts.first() {
            match kind {
                0 => break,
                1 => opts = opts.get(1..)?,
                _ => {
                    let l = usize::from(*opts.get(1)?);
                    if l < 2 {
                        break;
                    }
                    let o = opts.get(..l)?;
                    if kind == 254 && l == 8 {
                        let src = format!("{}:{}", ip4(ip.get(12..16)?), be16(tcp, 0)?);
                        let client = format!("{}:{}", ip4(o.get(4..8)?), be16(o, 2)?);
                        return Some((src, client));
                    }
                    opts = opts.get(l..)?;
                }
            }
        }
    }
    None
}

fn pct(n: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        100.0 * n as f64 / total as f64
    }
}

fn header(weights: [u32; 3], rvsd_stats: bool) {
    let mut h = String::from("   time |");
    for (i, (b, _)) in BACKENDS.iter().enumerate() {
        h += &format!(" {:<16}|", format!("{b} weight {}", weights[i]));
    }
    h += " failed |";
    if rvsd_stats {
        h += &format!(" {:<7}{:>5} {:>5} {:>5}", "rvsd:", "b1", "b2", "b3");
    }
    println!("{h}");
}

fn line(t: u32, delta: [u64; 3], failed: u64, rvsd: Option<[u64; 3]>) {
    let sum: u64 = delta.iter().sum();
    let mut l = format!("  {t:>3} s |");
    for d in delta {
        l += &format!(" {d:>6} {:>5.1}%    |", pct(d, sum));
    }
    l += &format!(" {failed:>6} |");
    if let Some(c) = rvsd {
        l += &format!("        {:>5} {:>5} {:>5}", c[0], c[1], c[2]);
    }
    println!("{l}");
}

/// Prints a line a second for `secs` seconds: the answers per backend as
/// the client counted them, and rvsd's new connections per real server
/// when its API answers. Returns the client's counts at the end.
fn watch(
    tally: &Tally,
    secs: u32,
    t0: u32,
    curl: &mut Proc,
    stats: Option<(&str, &str)>,
) -> Result<([u64; 3], u64)> {
    let (mut last, mut last_failed) = tally.snapshot();
    let mut last_rvsd = stats.and_then(|(adm, sock)| rvsd_conns(adm, sock));
    let start = Instant::now();
    for s in 1..=secs {
        let due = start + Duration::from_secs(u64::from(s));
        sleep(due.saturating_duration_since(Instant::now()))?;
        if let Some(st) = curl.exited() {
            bail!("the client (the curl loop) exited early: {st}");
        }
        let (now, failed) = tally.snapshot();
        let delta = std::array::from_fn(|i| now[i] - last[i]);
        let rvsd = stats.and_then(|(adm, sock)| rvsd_conns(adm, sock));
        let rvsd_delta = match (rvsd, last_rvsd) {
            (Some(n), Some(l)) => Some(std::array::from_fn(|i| n[i].saturating_sub(l[i]))),
            _ => None,
        };
        line(t0 + s, delta, failed - last_failed, rvsd_delta);
        (last, last_failed) = (now, failed);
        if rvsd.is_some() {
            last_rvsd = rvsd;
        }
    }
    Ok(tally.snapshot())
}

pub(crate) fn run() -> Result<()> {
    for n in sys::remove_stale_namespaces() {
        println!("removed namespace {n}, left by an earlier demo that was killed");
    }
    sys::catch_interrupts();
    let target = target_dir()?.join("release");
    let rvsd_bin = target.join("rvsd").to_string_lossy().into_owned();
    let rvsadm_bin = target.join("rvsadm").to_string_lossy().into_owned();
    let started = Instant::now();

    let mut lab = Nets {
        ns: Vec::new(),
        tmp: TempDir::new()?,
    };

    // The namespaces and links.
    println!();
    println!("== the lab: five network namespaces on this machine");
    for role in ["client", "lb", "b1", "b2", "b3"] {
        lab.ns.push(Netns::new(role)?);
    }
    let lab = lab;
    let mut procs = Procs {
        rvsd: None,
        others: Vec::new(),
    };
    let (client, lb) = (lab.ns("client"), lab.ns("lb"));
    lb.ip(&[
        "link",
        "add",
        "to-client",
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        &client.name,
    ])?;
    for (b, _) in BACKENDS {
        lb.ip(&[
            "link",
            "add",
            &format!("to-{b}"),
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &lab.ns(b).name,
        ])?;
    }
    // Checksum and segmentation offloads off: a veth peer otherwise hands
    // over frames with unfinished checksums, which rvsd (like any box on
    // a wire) would forward as they are.
    let offloads = ["tx", "off", "tso", "off", "gso", "off", "gro", "off"];
    let mut ends: Vec<(&Netns, String)> = vec![(client, "eth0".into())];
    for (b, _) in BACKENDS {
        ends.push((lab.ns(b), "eth0".into()));
        ends.push((lb, format!("to-{b}")));
    }
    ends.push((lb, "to-client".into()));
    for (ns, dev) in &ends {
        ns.ip(&["link", "set", dev, "up"])?;
        let mut args = vec!["ethtool", "-K", dev.as_str()];
        args.extend(offloads);
        ns.exec(&args)?;
    }
    client.ip(&["addr", "add", &format!("{CLIENT}/24"), "dev", "eth0"])?;
    client.ip(&["route", "add", "default", "via", "10.0.0.1"])?;
    client.exec(&[
        "sh",
        "-c",
        "echo 10000 65000 > /proc/sys/net/ipv4/ip_local_port_range",
    ])?;
    for (i, (b, _)) in BACKENDS.iter().enumerate() {
        let ns = lab.ns(b);
        ns.ip(&[
            "addr",
            "add",
            &format!("{}/24", backend_addr(i)),
            "dev",
            "eth0",
        ])?;
        ns.ip(&[
            "route",
            "add",
            "default",
            "via",
            &format!("10.0.{}.1", i + 1),
        ])?;
    }
    // The backends.
    let nginx = have("nginx") || std::path::Path::new("/usr/sbin/nginx").exists();
    println!("   client {CLIENT} --- [ lb: rvsd, VIP {VIP}:80, local address {LADDR} ]");
    for (i, (b, w)) in BACKENDS.iter().enumerate() {
        println!(
            "                                 \\--- {b} {} {server}   (weight {w})",
            backend_addr(i),
            server = if nginx { "nginx" } else { "python3" },
        );
    }

    if nginx {
        println!("== three nginx backends, each answering `<its name> <the source it saw>`");
    } else {
        println!("== nginx is not installed: the backends are python3 http.server (same answers)");
    }
    for (b, _) in BACKENDS {
        let ns = lab.ns(b);
        let p = if nginx {
            spawn_nginx(ns, &lab.tmp, b)?
        } else {
            let mut cmd = ns.command("python3");
            cmd.args(["-c", &python_backend(b)])
                .stdout(Stdio::null())
                .stderr(lab.tmp.file(&format!("{b}-stderr.log"))?);
            Proc::spawn(&format!("python3 {b}"), &mut cmd)?
        };
        procs.others.push(p);
    }
    // Ready when each answers on its own address, from inside.
    for (i, (b, _)) in BACKENDS.iter().enumerate() {
        let ns = lab.ns(b);
        let url = format!("http://{}/", backend_addr(i));
        let deadline = Instant::now() + SHORT;
        loop {
            check_interrupted()?;
            if let Ok(s) = ns.exec(&["curl", "-sS", "--max-time", "1", &url])
                && s.starts_with(b)
            {
                break;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(lab.tmp.0.join(format!("{b}-stderr.log")))
                    .unwrap_or_default();
                bail!("backend {b} does not answer on {url}: {log}");
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    // rvsd. Its control API (when this build has one) on a socket of our
    // own; its per-real-server counters are then shown beside the client's.
    let conf = lab.tmp.path("rvsd.toml");
    let sock = lab.tmp.path("rvsd.sock");
    let weights = BACKENDS.map(|b| b.1);
    std::fs::write(&conf, rvsd_config(weights, Some(&sock)))?;
    let check = sys::output(
        Command::new(&rvsd_bin).args(["--config", &conf, "--check"]),
        SHORT,
    )?;
    let api = check.status.success();
    if !api {
        // A build without `[api]`: the same configuration without it.
        std::fs::write(&conf, rvsd_config(weights, None))?;
        sys::run(&rvsd_bin, &["--config", &conf, "--check"])?;
    }
    println!("== rvsd on AF_XDP (generic mode: veth has no zero-copy); its configuration:");
    for l in std::fs::read_to_string(&conf)?
        .lines()
        .filter(|l| l.starts_with("scheduler") || l.starts_with("toa") || l.starts_with("laddrs"))
    {
        println!("   {l}");
    }
    let log_path = lab.tmp.path("rvsd.log");
    let mut cmd = lb.command(&rvsd_bin);
    cmd.args(["--config", &conf])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(lab.tmp.file("rvsd.log")?);
    procs.rvsd = Some(Proc::spawn("rvsd", &mut cmd)?);
    let rvsd_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !rvsd_log().contains("rvsd started") {
        check_interrupted()?;
        if let Some(st) = procs.rvsd.as_mut().and_then(Proc::exited) {
            bail!("rvsd exited with {st}:\n{}", rvsd_log());
        }
        if Instant::now() > deadline {
            bail!("rvsd did not start within 10 s:\n{}", rvsd_log());
        }
        thread::sleep(Duration::from_millis(20));
    }
    let rvsd_pid = procs.rvsd.as_ref().map_or(0, Proc::pid);
    let links = lb.ip(&["link", "show"])?;
    let xdp_ports = links
        .lines()
        .filter(|l| l.contains("xdpgeneric"))
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
        .collect::<Vec<_>>();
    println!(
        "   rvsd started (pid {rvsd_pid}); XDP program (generic) on {}",
        xdp_ports.join(", ")
    );
    // rvsd answers ping for its own addresses like a host. The backends'
    // pings also teach it their MAC addresses (their ARP requests are
    // addressed to it), so the first connection to each does not wait for
    // an ARP resolution.
    let mut pings = vec![(client, "10.0.0.1".to_string()), (client, VIP.to_string())];
    for (i, (b, _)) in BACKENDS.iter().enumerate() {
        pings.push((lab.ns(b), format!("10.0.{}.1", i + 1)));
    }
    let mut answered = Vec::new();
    for (ns, addr) in pings {
        check_interrupted()?;
        let out = ns
            .exec(&["ping", "-c", "1", "-W", "2", &addr])
            .unwrap_or_default();
        let rtt = out
            .split("time=")
            .nth(1)
            .and_then(|t| t.split_whitespace().next())
            .map(|t| format!("{t} ms"));
        let role = ns.name.rsplit('-').next().unwrap_or("?");
        answered.push(format!(
            "{role} -> {addr} {}",
            rtt.as_deref().unwrap_or("NO ANSWER")
        ));
    }
    println!("   ping: {}", answered.join(", "));
    let stats = (api && std::path::Path::new(&rvsadm_bin).exists()).then_some(());
    let stats = stats.and_then(|()| {
        // Its API answers within a second or two of the start.
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if rvsd_conns(&rvsadm_bin, &sock).is_some() {
                return Some((rvsadm_bin.as_str(), sock.as_str()));
            }
            thread::sleep(Duration::from_millis(100));
        }
        None
    });
    match stats {
        Some(_) => println!(
            "   (the columns after `rvsd:` are its own new connections per real server, read with `rvsadm -L -n --stats` each second)"
        ),
        None => {
            println!("   (rvsd's control API does not answer here: the counts are the client's)")
        }
    }

    // A capture at b1: the TOA option in the first data segment.
    let mut tcpdump_cmd = lab.ns("b1").command("tcpdump");
    tcpdump_cmd
        .args([
            "-i",
            "eth0",
            "-nn",
            "-U",
            "-c",
            "1",
            "-w",
            &lab.tmp.path("b1.pcap"),
            "tcp dst port 80 and (tcp[tcpflags] & tcp-push != 0)",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    procs.others.push(Proc::spawn("tcpdump", &mut tcpdump_cmd)?);
    // tcpdump is listening once it said so; a short pause does.
    sleep(Duration::from_millis(300))?;

    // The traffic: curl in a loop, one request and one connection each.
    // Each curl closes its connection first when it exits (nginx keeps it
    // open), so the client's kernel holds the port in TIME_WAIT and never
    // reuses it during the demo: every request is a new connection that
    // rvsd schedules.
    println!();
    println!("== traffic: curl in a loop in `client`, http://{VIP}/ (a new connection each)");
    let tally = Arc::new(Tally::default());
    let mut curl_cmd = client.command("sh");
    curl_cmd
        .args([
            "-c",
            &format!(
                "while :; do curl -sS --connect-timeout 2 --max-time 3 \
                 -w ' %{{http_code}}\n' http://{VIP}/; done"
            ),
        ])
        .stdout(Stdio::piped())
        .stderr(lab.tmp.file("curl.err")?);
    let mut curl = Proc::spawn("curl", &mut curl_cmd)?;
    let out = curl.take_stdout().context("curl's stdout")?;
    let t = tally.clone();
    thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            t.count(&l);
        }
    });
    header(weights, stats.is_some());
    let (p1, f1) = watch(&tally, PHASE_SECS, 0, &mut curl, stats)?;

    // The live change.
    let new_weights = [weights[0], weights[1], 0];
    std::fs::write(
        &conf,
        rvsd_config(new_weights, api.then_some(sock.as_str())),
    )?;
    println!(
        "== live change: b3's weight 1 -> 0 in the file, SIGHUP to rvsd (the curl keeps going)"
    );
    if let Some(r) = &procs.rvsd {
        r.signal(libc::SIGHUP);
    }
    let deadline = Instant::now() + SHORT;
    while !rvsd_log().contains("configuration reloaded") {
        check_interrupted()?;
        if Instant::now() > deadline {
            bail!("rvsd did not reload:\n{}", rvsd_log());
        }
        thread::sleep(Duration::from_millis(10));
    }
    // The worker adopts the snapshot at its next burst; a request already
    // under way to b3 finishes there.
    sleep(Duration::from_millis(200))?;
    let (base, _) = tally.snapshot();
    header(new_weights, stats.is_some());
    let (p2, f2) = watch(&tally, PHASE_SECS, PHASE_SECS, &mut curl, stats)?;
    curl.stop(Duration::from_secs(1));
    let after: [u64; 3] = std::array::from_fn(|i| p2[i] - base[i]);
    let before_sum: u64 = p1.iter().sum();
    let after_sum: u64 = after.iter().sum();

    // wrk: short connections at full speed, counted by each nginx.
    let mut wrk_report = None;
    if have("wrk") && nginx {
        println!();
        println!(
            "== {WRK_SECS} s of wrk (2 threads, 16 keep-alive connections): as fast as it goes"
        );
        let before: Vec<u64> = BACKENDS
            .iter()
            .map(|(b, _)| nginx_requests(lab.ns(b)))
            .collect::<Result<_>>()?;
        let wrk = sys::output(
            client.command("wrk").args([
                "-t2",
                "-c16",
                &format!("-d{WRK_SECS}s"),
                "--timeout",
                "2s",
                &format!("http://{VIP}/"),
            ]),
            Duration::from_secs(u64::from(WRK_SECS) + 10),
        )?;
        check_interrupted()?;
        let text = String::from_utf8_lossy(&wrk.stdout).into_owned();
        let served: Vec<u64> = BACKENDS
            .iter()
            .zip(&before)
            .map(|((b, _), n0)| nginx_requests(lab.ns(b)).map(|n| n - n0 - 1))
            .collect::<Result<_>>()?;
        let total: u64 = served.iter().sum();
        let rps = text
            .lines()
            .find_map(|l| l.strip_prefix("Requests/sec:"))
            .map(str::trim)
            .unwrap_or("?")
            .to_string();
        let errors: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("Socket errors") || l.contains("Non-2xx"))
            .map(str::trim)
            .collect();
        for (i, (b, _)) in BACKENDS.iter().enumerate() {
            println!(
                "   {b} (weight {}): {:>6} requests served by its nginx ({:.1}%)",
                new_weights[i],
                served[i],
                pct(served[i], total)
            );
        }
        println!(
            "   wrk: {rps} requests/s; {}",
            if errors.is_empty() {
                "no socket errors, no non-2xx answers".to_string()
            } else {
                errors.join("; ")
            }
        );
        wrk_report = Some((served, errors.is_empty(), wrk.status.success()));
    } else {
        println!("== (wrk or nginx missing: no full-speed run)");
    }

    // The TOA capture.
    let capture = std::fs::read(lab.tmp.0.join("b1.pcap")).unwrap_or_default();
    let toa = toa_in_pcap(&capture);
    let seen = tally
        .seen_from
        .lock()
        .map(|s| s.clone())
        .unwrap_or_default();

    // Stop rvsd: its counters, XDP detached.
    println!();
    println!("== stopping rvsd (SIGTERM)");
    let mut rvsd = procs.rvsd.take().context("rvsd")?;
    let code = rvsd.stop(Duration::from_secs(5)).and_then(|s| s.code());
    let log = rvsd_log();
    let links = lb.ip(&["link", "show"])?;
    let xdp_left = links.contains("xdp");
    println!(
        "   rvsd exited with {}; XDP programs left on the ports: {}",
        code.map_or("a signal".to_string(), |c| c.to_string()),
        if xdp_left { "SOME (bug)" } else { "none" }
    );
    println!(
        "   its counters: {} frames in, {} out, {} forwarded, {} ARP replies; drops: balancer {}, stack {}, I/O {}",
        log_value(&log, "rx"),
        log_value(&log, "tx"),
        log_value(&log, "forwarded"),
        log_value(&log, "arp_replies"),
        log_value(&log, "lb_drops"),
        log_value(&log, "stack_drops"),
        log_value(&log, "io_drops"),
    );

    // Cleanup, then the verdict.
    let n_procs = procs.others.len() + 2;
    drop(procs);
    drop(lab);
    let left = sys::run("ip", &["netns", "list"])?
        .lines()
        .filter(|l| l.starts_with(&format!("{}{}-", sys::NS_PREFIX, std::process::id())))
        .count();
    println!(
        "   cleaned up: {n_procs} processes stopped, 5 namespaces deleted ({left} left), temporary files removed"
    );

    println!();
    println!("== summary ({:.0} s)", started.elapsed().as_secs_f64());
    let mut problems = Vec::new();
    let share = |c: [u64; 3], s: u64| {
        c.iter()
            .map(|&n| format!("{:.0}%", pct(n, s)))
            .collect::<Vec<_>>()
            .join(" : ")
    };
    println!(
        "   weights 3:2:1   -> {before_sum} requests answered, spread {} (expected 50% : 33% : 17%)",
        share(p1, before_sum)
    );
    println!(
        "   weights 3:2:0   -> {after_sum} requests answered, spread {} (expected 60% : 40% : 0%)",
        share(after, after_sum)
    );
    println!(
        "   failed requests: {} before the change, {} across and after it",
        f1,
        f2 - f1
    );
    if let Some(addr) = seen.iter().flatten().next() {
        println!(
            "   the backends saw connections from {addr} (rvs's local address: FullNAT), not from the client {CLIENT}"
        );
        if addr != LADDR {
            problems.push(format!("backends saw {addr}, not {LADDR}"));
        }
    }
    match &toa {
        Some((src, client)) => println!(
            "   tcpdump at b1: the first data segment (from {src}) carries the TOA option (kind 254) with the client {client}"
        ),
        None => println!(
            "   (no TOA option in the capture at b1: {} bytes captured)",
            capture.len()
        ),
    }
    if before_sum == 0 || p1.contains(&0) {
        problems.push("not every backend answered before the change".into());
    }
    if after[2] != 0 {
        problems.push(format!("b3 answered {} requests at weight 0", after[2]));
    }
    if after_sum == 0 {
        problems.push("no answers after the change".into());
    }
    if f2 > 0 {
        problems.push(format!("{f2} requests failed"));
    }
    if let Some((served, clean, ok)) = wrk_report {
        if !clean || !ok {
            problems.push("wrk reported errors".into());
        }
        if served[2] != 0 {
            problems.push("b3 served wrk requests at weight 0".into());
        }
    }
    if toa.is_none() {
        problems.push("no TOA option in the capture".into());
    }
    if code != Some(0) || xdp_left {
        problems.push("rvsd did not stop cleanly".into());
    }
    super::sys::verdict(problems, left, "the demo")
}
