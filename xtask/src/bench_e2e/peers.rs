//! The paths under test in the middle namespace, and the servers and
//! generators around them: how each is configured and started.

use std::path::Path;
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::lab::{BACK_IP, LADDRS, Lab, MID_IN_IP, MID_OUT_IP, UDP_PORT, VIP};
use crate::demo::sys::{self, Netns, Proc, TempDir, check_interrupted};

/// What runs in the middle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Peer {
    /// rvsd FullNAT on AF_XDP (native XDP on veth: copy mode).
    RvsXdp,
    /// rvsd FullNAT on AF_PACKET.
    RvsPacket,
    /// dpdk-testpmd io-forward over net_af_xdp on the same two ports.
    Testpmd,
    /// The kernel's IPv4 forwarding.
    Kernel,
    /// nftables DNAT to the backend (conntrack).
    Nft,
    /// HAProxy `mode tcp` (a proxy: two TCP connections per request's).
    Haproxy,
}

impl Peer {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Peer::RvsXdp => "rvsd FullNAT, AF_XDP (native, copy mode)",
            Peer::RvsPacket => "rvsd FullNAT, AF_PACKET",
            Peer::Testpmd => "dpdk-testpmd io-fwd, net_af_xdp",
            Peer::Kernel => "kernel forwarding",
            Peer::Nft => "nftables DNAT (conntrack)",
            Peer::Haproxy => "HAProxy mode tcp",
        }
    }

    /// A short name for namespaces and files.
    pub(crate) fn tag(self) -> &'static str {
        match self {
            Peer::RvsXdp => "rvsxdp",
            Peer::RvsPacket => "rvspkt",
            Peer::Testpmd => "tpmd",
            Peer::Kernel => "kern",
            Peer::Nft => "nft",
            Peer::Haproxy => "hapx",
        }
    }

    /// The middle's kernel has the addresses (it forwards or proxies).
    pub(crate) fn kernel_addrs(self) -> bool {
        matches!(self, Peer::Kernel | Peer::Nft | Peer::Haproxy)
    }

    /// The address the generator or client sends to.
    pub(crate) fn target(self) -> &'static str {
        match self {
            Peer::Kernel | Peer::Testpmd => BACK_IP,
            _ => VIP,
        }
    }
}

/// A started peer: its process (if it has one) and the log to quote.
pub(crate) struct Running {
    pub(crate) proc: Option<Proc>,
    pub(crate) log: Option<String>,
    /// A directory to remove after the peer stopped (DPDK's runtime
    /// directory).
    pub(crate) runtime_dir: Option<String>,
}

impl Running {
    /// The process ids whose threads are accounted.
    pub(crate) fn pids(&self) -> Vec<u32> {
        self.proc.iter().map(Proc::pid).collect()
    }

    /// Stops the peer; rvsd's counters line from its log, if any.
    pub(crate) fn stop(mut self) -> Option<String> {
        if let Some(mut p) = self.proc.take() {
            p.stop(Duration::from_secs(3));
        }
        if let Some(d) = self.runtime_dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
        let log = std::fs::read_to_string(self.log.as_ref()?).ok()?;
        log.lines()
            .find(|l| l.contains("worker counters"))
            .and_then(|l| l.split_once("worker=0 "))
            .map(|(_, rest)| rest.to_string())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.stop(Duration::from_secs(3));
        }
        if let Some(d) = self.runtime_dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn rvsd_config(backend: &str, tcp: bool) -> String {
    let mut c = String::from(
        "# Written by `cargo xtask bench-e2e`.\n[daemon]\nworkers = 1\ncores = [1]\ntick_ms = 10\n\n",
    );
    for dev in ["mi", "mo"] {
        c += &format!("[[port]]\nname = \"{dev}\"\nbackend = \"{backend}\"\n");
        if backend == "af_xdp" {
            c += "xdp_mode = \"native\"\n";
        }
        c += "\n";
    }
    c += &format!("[[addr]]\naddr = \"{MID_IN_IP}/24\"\nport = \"mi\"\n\n");
    c += &format!("[[addr]]\naddr = \"{MID_OUT_IP}/24\"\nport = \"mo\"\n\n");
    let (proto, port) = if tcp { ("tcp", 80) } else { ("udp", UDP_PORT) };
    let laddrs = LADDRS.map(|a| format!("\"{a}\"")).join(", ");
    c += &format!(
        "[[service]]\nproto = \"{proto}\"\nvip = \"{VIP}\"\nport = {port}\nscheduler = \"rr\"\n\
         laddrs = [{laddrs}]\n"
    );
    if tcp {
        c += "toa = \"off\"\n";
    }
    c += &format!("[[service.real]]\naddr = \"{BACK_IP}\"\nweight = 1\nmode = \"fullnat\"\n\n");
    c += "[api]\nsocket = \"\"\n";
    c
}

fn haproxy_config() -> String {
    format!(
        "# Written by `cargo xtask bench-e2e`.\nglobal\n    maxconn 8000\n    nbthread 1\n\n\
         defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n\n\
         frontend f\n    bind {VIP}:80\n    default_backend b\n\n\
         backend b\n    server s1 {BACK_IP}:80\n"
    )
}

fn nginx_config(tmp: &TempDir, tag: &str) -> String {
    let p = |s: &str| tmp.path(&format!("{tag}-nginx-{s}"));
    format!(
        "# Written by `cargo xtask bench-e2e`.\n\
         daemon off;\nmaster_process on;\nworker_processes 1;\n\
         pid {pid};\nerror_log {err} warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n    access_log off;\n    default_type text/plain;\n    keepalive_requests 10000000;\n\
         \x20   client_body_temp_path {body};\n    proxy_temp_path {proxy};\n\
         \x20   fastcgi_temp_path {fcgi};\n    uwsgi_temp_path {uwsgi};\n\
         \x20   scgi_temp_path {scgi};\n\
         \x20   server {{\n        listen 80 backlog=4096 reuseport;\n\
         \x20       location / {{ return 200 \"ok\\n\"; }}\n    }}\n}}\n",
        pid = p("pid"),
        err = p("error.log"),
        body = p("body"),
        proxy = p("proxy"),
        fcgi = p("fastcgi"),
        uwsgi = p("uwsgi"),
        scgi = p("scgi"),
    )
}

/// Waits up to `secs` for `log` to contain `needle`; an error when `proc`
/// exits first or time runs out.
fn wait_log(proc: &mut Proc, log: &str, needle: &str, secs: u64, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        check_interrupted()?;
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(needle) {
            return Ok(());
        }
        if let Some(st) = proc.exited() {
            bail!("{what} exited with {st}: {}", tail(&text, 6));
        }
        if Instant::now() > deadline {
            bail!("{what} not ready within {secs} s: {}", tail(&text, 6));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// The last `n` non-empty lines of `text`, joined.
pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// Starts `peer` in the lab's middle (and, for TCP, nothing else: nginx is
/// started by [`start_nginx`]).
pub(crate) fn start(
    peer: Peer,
    lab: &Lab,
    tmp: &TempDir,
    rvsd_bin: &str,
    tcp: bool,
) -> Result<Running> {
    let mid = &lab.mid;
    let tag = format!("{}-{}", peer.tag(), if tcp { "tcp" } else { "udp" });
    let mut running = Running {
        proc: None,
        log: None,
        runtime_dir: None,
    };
    match peer {
        Peer::RvsXdp | Peer::RvsPacket => {
            let backend = if peer == Peer::RvsXdp {
                "af_xdp"
            } else {
                "af_packet"
            };
            let conf = tmp.path(&format!("{tag}-rvsd.toml"));
            std::fs::write(&conf, rvsd_config(backend, tcp))?;
            let log = tmp.path(&format!("{tag}-rvsd.log"));
            let mut cmd = mid.command(rvsd_bin);
            cmd.args(["--config", &conf])
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(tmp.file(&format!("{tag}-rvsd.log"))?);
            let mut p = Proc::spawn("rvsd", &mut cmd)?;
            wait_log(&mut p, &log, "rvsd started", 10, "rvsd")?;
            running.proc = Some(p);
            running.log = Some(log);
            // The backend's ping teaches rvsd its MAC address (its ARP
            // request is addressed to rvsd).
            let _ = lab.back.exec(&["ping", "-c", "1", "-W", "1", MID_OUT_IP]);
        }
        Peer::Testpmd => {
            let prefix = format!("rvsbench{}", std::process::id());
            let log = tmp.path(&format!("{tag}-testpmd.log"));
            let out = tmp.file(&format!("{tag}-testpmd.log"))?;
            let mut cmd = mid.command("dpdk-testpmd");
            cmd.args([
                "-l",
                "0,1",
                "--main-lcore",
                "0",
                "--no-huge",
                "-m",
                "1024",
                "--no-pci",
                "--file-prefix",
                &prefix,
                "--vdev",
                "net_af_xdp0,iface=mi",
                "--vdev",
                "net_af_xdp1,iface=mo",
                "--",
                "--forward-mode=io",
                "--nb-cores=1",
                "--total-num-mbufs=16384",
                "--stats-period",
                "5",
            ])
            .stdout(out.try_clone()?)
            .stderr(out);
            let mut p = Proc::spawn("dpdk-testpmd", &mut cmd)?;
            running.runtime_dir = Some(format!("/var/run/dpdk/{prefix}"));
            let ready = wait_log(&mut p, &log, "forwards packets on", 20, "dpdk-testpmd");
            running.proc = Some(p);
            running.log = None;
            ready?;
        }
        Peer::Kernel => {}
        Peer::Nft => {
            let (proto, port) = if tcp { ("tcp", 80) } else { ("udp", UDP_PORT) };
            let rules = format!(
                "table ip bench {{\n  chain pre {{\n    type nat hook prerouting priority dstnat;\n    \
                 ip daddr {VIP} {proto} dport {port} dnat to {BACK_IP}\n  }}\n}}\n"
            );
            let file = tmp.path(&format!("{tag}.nft"));
            std::fs::write(&file, rules)?;
            mid.exec(&["nft", "-f", &file])?;
        }
        Peer::Haproxy => {
            mid.ip(&["addr", "add", &format!("{VIP}/32"), "dev", "mi"])?;
            let conf = tmp.path(&format!("{tag}-haproxy.cfg"));
            std::fs::write(&conf, haproxy_config())?;
            let log = tmp.path(&format!("{tag}-haproxy.log"));
            let mut cmd = mid.command("taskset");
            cmd.args(["-c", "1", "haproxy", "-db", "-f", &conf])
                .stdout(Stdio::null())
                .stderr(tmp.file(&format!("{tag}-haproxy.log"))?);
            let mut p = Proc::spawn("haproxy", &mut cmd)?;
            // Ready once it accepts on the VIP.
            let deadline = Instant::now() + Duration::from_secs(5);
            while mid
                .exec(&[
                    "bash",
                    "-c",
                    &format!("exec 3<>/dev/tcp/{VIP}/80 || exit 1; exec 3>&-"),
                ])
                .is_err()
            {
                check_interrupted()?;
                if let Some(st) = p.exited() {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    bail!("haproxy exited with {st}: {}", tail(&text, 6));
                }
                if Instant::now() > deadline {
                    bail!("haproxy does not accept on {VIP}:80");
                }
                thread::sleep(Duration::from_millis(50));
            }
            running.proc = Some(p);
        }
    }
    Ok(running)
}

/// nginx in the backend namespace, one worker, pinned to cpu1.
pub(crate) fn start_nginx(back: &Netns, tmp: &TempDir, tag: &str) -> Result<Proc> {
    let conf = tmp.path(&format!("{tag}-nginx.conf"));
    std::fs::write(&conf, nginx_config(tmp, tag))?;
    let mut cmd = back.command("taskset");
    cmd.args([
        "-c",
        "1",
        "nginx",
        "-e",
        &tmp.path(&format!("{tag}-nginx-start.log")),
        "-p",
        &tmp.path(""),
        "-c",
        &conf,
    ])
    .stdout(Stdio::null())
    .stderr(tmp.file(&format!("{tag}-nginx-stderr.log"))?);
    let mut p = Proc::spawn("nginx", &mut cmd)?;
    let url = format!("http://{BACK_IP}/");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        check_interrupted()?;
        if back
            .exec(&["curl", "-sS", "--max-time", "1", &url])
            .is_ok_and(|s| s.starts_with("ok"))
        {
            return Ok(p);
        }
        if let Some(st) = p.exited() {
            bail!("nginx exited with {st}");
        }
        if Instant::now() > deadline {
            bail!("nginx does not answer on {url}");
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// trafgen's packet: 60 bytes (64 on the wire with the FCS), IPv4/UDP from
/// source ports 1024..=65535 (64,512 flows) to `dst_ip`:5000, sent to
/// `dst_mac`.
pub(crate) fn trafgen_config(dst_mac: &str, dst_ip: &str) -> String {
    format!(
        "{{\n  eth(da={dst_mac}, type=0x0800),\n  ipv4(saddr={}, daddr={dst_ip}, ttl=64),\n  \
         udp(sp=dinc(1024, 65535), dp={UDP_PORT}),\n  fill(0x00, 18)\n}}\n",
        super::lab::GEN_IP
    )
}

/// trafgen on cpu0, one process (`-P 1`: a worker count, not a CPU).
pub(crate) fn start_trafgen(gen_ns: &Netns, tmp: &TempDir, tag: &str, cfg: &str) -> Result<Proc> {
    let file = tmp.path(&format!("{tag}-trafgen.cfg"));
    std::fs::write(&file, cfg)?;
    let mut cmd = gen_ns.command("taskset");
    cmd.args([
        "-c", "0", "trafgen", "-P", "1", "-i", &file, "-o", "eth0", "-q",
    ])
    .stdout(tmp.file(&format!("{tag}-trafgen.log"))?)
    .stderr(tmp.file(&format!("{tag}-trafgen.err"))?);
    Proc::spawn("trafgen", &mut cmd)
}

/// Runs wrk from `client` (pinned to cpu0) for `secs`: its output.
pub(crate) fn wrk(client: &Netns, url: &str, secs: u32, close: bool) -> Result<String> {
    let mut cmd = client.command("taskset");
    let dur = format!("-d{secs}s");
    cmd.args(["-c", "0", "wrk", "-t1", "-c50", &dur, "--timeout", "2s"]);
    if close {
        cmd.args(["-H", "Connection: close"]);
    }
    cmd.arg(url);
    let out = sys::output(&mut cmd, Duration::from_secs(u64::from(secs) + 15))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "wrk failed: {}",
            tail(&String::from_utf8_lossy(&out.stderr), 3)
        );
    }
    Ok(text)
}

/// True when the program is found (PATH or the usual sbin directories).
pub(crate) fn installed(program: &str) -> bool {
    crate::run::have(program)
        || ["/usr/sbin", "/sbin", "/usr/bin"]
            .iter()
            .any(|d| Path::new(d).join(program).exists())
}
