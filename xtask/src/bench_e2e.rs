//! `cargo xtask bench-e2e`: rvs end to end beside its peers, in one run on
//! this 2-core machine (issue 4, "Speed"; set-up and baselines in
//! `../shared/BENCH-NOTES.md`). A benchmark, not a test: `./x test` does not
//! run it.
//!
//! 1. Packets/s of 64-byte UDP, 64,512 flows (trafgen pinned to cpu0), for
//!    10 s each, counted as Δrx_packets at the backend's veth (which drops
//!    UDP with a tiny XDP program), through: rvsd FullNAT on AF_XDP and on
//!    AF_PACKET, dpdk-testpmd io-forward over net_af_xdp on the same ports
//!    (the user-space I/O ceiling), kernel forwarding and nftables DNAT.
//!    rvsd runs one worker on cpu1; testpmd forwards on lcore 1; the
//!    middle's NAPI threads are pinned to cpu1.
//! 2. HTTP requests/s with wrk (`-t1 -c50`, cpu0; keep-alive, then
//!    `Connection: close`) to nginx (one worker, cpu1) through rvsd FullNAT
//!    (AF_XDP), kernel forwarding, nftables DNAT and HAProxy `mode tcp`
//!    (cpu1).
//!
//! Every figure is printed with both CPUs' use (from /proc/stat deltas),
//! cpu1's busy time per packet or request, and the CPU of the threads that
//! matter (the peer's, nginx's, the NAPI threads', ksoftirqd/1); then the
//! ratios. `cargo xtask bench-e2e FILTER` runs only the cases whose name
//! (`udp-rvsxdp`, `udp-tpmd`, `tcp-kern-close`, `tcp-hapx-keepalive`...)
//! contains FILTER. Two rounds through every case, the best of each
//! counts (the VM is shared: another tenant's load comes and goes). Each case builds fresh namespaces and
//! removes them (every process in them killed); a peer that cannot run
//! here is reported with the reason and the rest goes on. About 5 min.

mod lab;
mod peers;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::demo::sys::{self, TempDir, check_interrupted, sleep};
use lab::{CpuStat, Lab, SocketBuffers, Threads};
use peers::{Peer, Running};

use crate::run::{cargo, workspace_root};

/// Seconds measured per figure.
const SECS: u32 = 10;
/// Rounds through every case.
const ROUNDS: u32 = 2;
/// Seconds of traffic before the measured window (connections created,
/// neighbours resolved, rings filled).
const WARMUP: Duration = Duration::from_millis(1500);

const UDP_PEERS: [Peer; 5] = [
    Peer::RvsXdp,
    Peer::RvsPacket,
    Peer::Testpmd,
    Peer::Kernel,
    Peer::Nft,
];
const TCP_PEERS: [Peer; 4] = [Peer::RvsXdp, Peer::Kernel, Peer::Nft, Peer::Haproxy];

/// A figure, or why it could not be measured.
type Outcome = Result<Figure, String>;

/// One figure with the CPU it cost.
#[derive(Debug, Clone)]
struct Figure {
    /// Packets/s delivered, or requests/s.
    rate: f64,
    /// Packets/s offered by trafgen (UDP), or 0.
    offered: f64,
    cpu: [(f64, f64); 2],
    /// The middle's threads: "name N% (user M%)".
    threads: String,
    /// A remark: rvsd's counters, wrk's errors.
    note: String,
}

fn cpu_text(cpu: &[(f64, f64); 2]) -> String {
    let one = |(busy, steal): (f64, f64)| {
        if steal >= 2.0 {
            format!("{busy:>3.0}% (st {steal:.0}%)")
        } else {
            format!("{busy:>3.0}%")
        }
    };
    format!("cpu0 {}  cpu1 {}", one(cpu[0]), one(cpu[1]))
}

fn target_dir() -> Result<PathBuf> {
    Ok(match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d),
        None => workspace_root()?.join("target"),
    })
}

/// The program each peer needs, when it is missing.
fn missing_tool(peer: Peer, tcp: bool) -> Option<&'static str> {
    let need: &[&str] = match peer {
        Peer::Testpmd => &["dpdk-testpmd"],
        Peer::Nft => &["nft"],
        Peer::Haproxy => &["haproxy"],
        _ => &[],
    };
    let common: &[&str] = if tcp {
        &["wrk", "nginx", "curl"]
    } else {
        &["trafgen"]
    };
    need.iter()
        .chain(common)
        .copied()
        .find(|p| !peers::installed(p))
}

/// Runs every case, or with `filter` only those whose name (as printed in
/// the NOT MEASURED lines' place: `udp-rvsxdp`, `tcp-kern-close`, ...)
/// contains it.
pub(crate) fn run(filter: Option<&str>) -> Result<()> {
    let wanted = |name: &str| filter.is_none_or(|f| name.contains(f));
    crate::setup::run()?;
    cargo(&["build", "--release", "--locked", "-p", "rvsd"])?;
    let rvsd_bin = target_dir()?
        .join("release")
        .join("rvsd")
        .to_string_lossy()
        .into_owned();
    // SAFETY: sysconf has no preconditions.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if cpus < 2 {
        bail!(
            "the bench needs two CPUs (cpu0 for the generator, cpu1 for the path); {cpus} online"
        );
    }
    for n in sys::remove_stale_namespaces() {
        println!("removed namespace {n}, left by an earlier run that was killed");
    }
    sys::catch_interrupts();
    let started = Instant::now();
    let tmp = TempDir::new()?;
    let drop_prog = lab::build_drop_program(&tmp)?;
    let _buffers = SocketBuffers::raise()?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!();
    println!(
        "== end-to-end bench: generator on cpu0, the path under test on cpu1, {SECS} s per figure (load average at start: {})",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );

    // The cases in rounds, each round through every peer in turn, so that
    // a burst of load from another tenant (the VM is shared) hits one
    // figure of a peer, not all of them; the best round of each counts.
    let mut udp: Vec<(Peer, Vec<Outcome>)> = UDP_PEERS
        .iter()
        .filter(|p| wanted(&format!("udp-{}", p.tag())))
        .map(|&p| (p, Vec::new()))
        .collect();
    let mut tcp: Vec<(Peer, bool, Vec<Outcome>)> = [false, true]
        .iter()
        .flat_map(|&close| TCP_PEERS.iter().map(move |&p| (p, close)))
        .filter(|(p, close)| {
            let mode = if *close { "close" } else { "keepalive" };
            wanted(&format!("tcp-{}-{mode}", p.tag()))
        })
        .map(|(p, close)| (p, close, Vec::new()))
        .collect();
    for round in 1..=ROUNDS {
        if !udp.is_empty() {
            println!();
            println!(
                "== UDP, round {round}/{ROUNDS}: 64-byte frames, 64,512 flows (trafgen -P 1 on cpu0), delivered to the backend"
            );
        }
        for (peer, results) in &mut udp {
            check_interrupted()?;
            let r = match missing_tool(*peer, false) {
                Some(t) => Err(format!("{t} is not installed")),
                None => udp_case(*peer, &tmp, &rvsd_bin, &drop_prog).map_err(|e| format!("{e:#}")),
            };
            check_interrupted()?;
            print_row(peer.label(), &r, "Mpps");
            results.push(r);
        }
        if !tcp.is_empty() {
            println!();
            println!(
                "== HTTP, round {round}/{ROUNDS}: wrk -t1 -c50 (cpu0) to nginx, 1 worker (cpu1), through the middle (cpu1)"
            );
        }
        for (peer, close, results) in &mut tcp {
            check_interrupted()?;
            let r = match missing_tool(*peer, true) {
                Some(t) => Err(format!("{t} is not installed")),
                None => tcp_case(*peer, &tmp, &rvsd_bin, *close).map_err(|e| format!("{e:#}")),
            };
            check_interrupted()?;
            print_row(&tcp_label(*peer, *close), &r, "k req/s");
            results.push(r);
        }
    }

    // The best round of each.
    let udp: Vec<(Peer, Outcome)> = udp.into_iter().map(|(p, r)| (p, best(r))).collect();
    let tcp: Vec<(Peer, bool, Outcome)> =
        tcp.into_iter().map(|(p, c, r)| (p, c, best(r))).collect();
    println!();
    println!("== the best of {ROUNDS} rounds");
    for (peer, r) in &udp {
        print_row(&format!("UDP {}", peer.label()), r, "Mpps");
    }
    for (peer, close, r) in &tcp {
        print_row(&format!("HTTP {}", tcp_label(*peer, *close)), r, "k req/s");
    }

    summary(&udp, &tcp);
    println!();
    println!(
        "== done in {:.0} s; every namespace and process removed, socket buffer defaults restored",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn tcp_label(peer: Peer, close: bool) -> String {
    format!(
        "{} {}",
        peer.label(),
        if close { "(close)" } else { "(keep-alive)" }
    )
}

/// The round with the highest rate (or the first failure when none
/// succeeded).
fn best(results: Vec<Outcome>) -> Outcome {
    let mut best: Option<Outcome> = None;
    for r in results {
        best = match (best, r) {
            (None, r) => Some(r),
            (Some(Ok(b)), Ok(f)) => Some(Ok(if f.rate > b.rate { f } else { b })),
            (Some(Ok(b)), Err(_)) => Some(Ok(b)),
            (Some(Err(_)), Ok(f)) => Some(Ok(f)),
            (Some(Err(e)), Err(_)) => Some(Err(e)),
        };
    }
    best.unwrap_or_else(|| Err("not run".into()))
}

fn print_row(label: &str, r: &Outcome, unit: &str) {
    match r {
        Ok(f) => {
            let (rate, offered) = if unit == "Mpps" {
                (f.rate / 1e6, f.offered / 1e6)
            } else {
                (f.rate / 1e3, 0.0)
            };
            let offered = if f.offered > 0.0 {
                format!(" (offered {offered:.2})")
            } else {
                String::new()
            };
            // cpu1's busy time per delivered packet or answered request.
            let per = if f.rate > 0.0 {
                f.cpu[1].0 / 100.0 / f.rate * 1e6
            } else {
                0.0
            };
            let per_unit = if unit == "Mpps" { "packet" } else { "request" };
            println!(
                "   {label:<60} {rate:>7.3} {unit}{offered}   {}   cpu1 {per:.2} µs/{per_unit}",
                cpu_text(&f.cpu)
            );
            if !f.threads.is_empty() {
                println!("        threads (% of one CPU): {}", f.threads);
            }
            if !f.note.is_empty() {
                println!("        {}", f.note);
            }
        }
        Err(e) => println!("   {label:<60} NOT MEASURED: {e}"),
    }
}

/// One UDP figure: a fresh lab, the peer, trafgen, 10 s counted at the
/// backend.
fn udp_case(peer: Peer, tmp: &TempDir, rvsd_bin: &str, drop_prog: &str) -> Result<Figure> {
    let tag = format!("u{}", peer.tag());
    let lab = Lab::new(&tag, peer.kernel_addrs())?;
    lab.back.ip(&[
        "link", "set", "dev", "eth0", "xdpdrv", "obj", drop_prog, "sec", "xdp",
    ])?;
    let running = peers::start(peer, &lab, tmp, rvsd_bin, false)?;
    let napi = lab.steer_to_cpu1()?;
    // Neighbours: the middle's kernel learns the backend (and rvsd too,
    // from the backend's ARP request).
    let _ = lab
        .back
        .exec(&["ping", "-c", "1", "-W", "1", lab::MID_OUT_IP]);
    // testpmd forwards frames unchanged: address them to the backend.
    let dst_mac = if peer == Peer::Testpmd {
        Lab::mac(&lab.back, "eth0")?
    } else {
        Lab::mac(&lab.mid, "mi")?
    };
    let mut gen_proc = peers::start_trafgen(
        &lab.gen_ns,
        tmp,
        &tag,
        &peers::trafgen_config(&dst_mac, peer.target()),
    )?;
    sleep(WARMUP)?;
    let m = measure_udp(&lab, &running, &napi, &mut gen_proc, tmp, &tag);
    gen_proc.stop(Duration::from_secs(1));
    let counters = running.stop();
    let mut fig = m?;
    if let Some(c) = counters {
        fig.note = format!("rvsd: {}", rvsd_brief(&c));
    }
    drop(lab);
    Ok(fig)
}

/// rvsd's counters line, shortened: forwarded and the drops.
fn rvsd_brief(line: &str) -> String {
    line.split_whitespace()
        .filter(|kv| {
            [
                "rx=",
                "tx=",
                "connections=",
                "forwarded=",
                "lb_drops=",
                "stack_drops=",
                "io_drops=",
            ]
            .iter()
            .any(|k| kv.starts_with(k))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn measure_udp(
    lab: &Lab,
    running: &Running,
    napi: &[i32],
    gen_proc: &mut sys::Proc,
    tmp: &TempDir,
    tag: &str,
) -> Result<Figure> {
    let trafgen_err = || {
        peers::tail(
            &std::fs::read_to_string(tmp.0.join(format!("{tag}-trafgen.err"))).unwrap_or_default(),
            3,
        )
    };
    if let Some(st) = gen_proc.exited() {
        bail!("trafgen exited with {st}: {}", trafgen_err());
    }
    let pids = running.pids();
    let (rx0, tx0) = (
        Lab::counter(&lab.back, "eth0", "rx_packets")?,
        Lab::counter(&lab.gen_ns, "eth0", "tx_packets")?,
    );
    let (c0, th0, t0) = (CpuStat::now()?, Threads::now(&pids, napi), Instant::now());
    sleep(Duration::from_secs(u64::from(SECS)))?;
    let (c1, th1, t1) = (CpuStat::now()?, Threads::now(&pids, napi), Instant::now());
    let (rx1, tx1) = (
        Lab::counter(&lab.back, "eth0", "rx_packets")?,
        Lab::counter(&lab.gen_ns, "eth0", "tx_packets")?,
    );
    if let Some(st) = gen_proc.exited() {
        bail!("trafgen exited early with {st}: {}", trafgen_err());
    }
    let secs = (t1 - t0).as_secs_f64();
    Ok(Figure {
        rate: (rx1 - rx0) as f64 / secs,
        offered: (tx1 - tx0) as f64 / secs,
        cpu: c1.since(&c0),
        threads: th1.since(&th0, secs),
        note: String::new(),
    })
}

/// One HTTP figure: a fresh lab, nginx, the peer, a check request, then
/// wrk for 10 s.
fn tcp_case(peer: Peer, tmp: &TempDir, rvsd_bin: &str, close: bool) -> Result<Figure> {
    let tag = format!("t{}{}", peer.tag(), if close { "c" } else { "k" });
    let lab = Lab::new(&tag, peer.kernel_addrs())?;
    let nginx = peers::start_nginx(&lab.back, tmp, &tag)?;
    let running = peers::start(peer, &lab, tmp, rvsd_bin, true)?;
    let napi = lab.steer_to_cpu1()?;
    let url = format!("http://{}/", peer.target());
    // The path works before it is measured (neighbours resolved too).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        check_interrupted()?;
        if lab
            .gen_ns
            .exec(&["curl", "-sS", "--max-time", "1", &url])
            .is_ok_and(|s| s.starts_with("ok"))
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("no answer from nginx through the middle at {url}");
        }
        sleep(Duration::from_millis(100))?;
    }
    let mut pids = running.pids();
    pids.push(nginx.pid());
    let (c0, th0, t0) = (CpuStat::now()?, Threads::now(&pids, &napi), Instant::now());
    let out = peers::wrk(&lab.gen_ns, &url, SECS, close);
    let (c1, th1, t1) = (CpuStat::now()?, Threads::now(&pids, &napi), Instant::now());
    let counters = running.stop();
    let out = out?;
    let rate: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .map(str::trim)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no Requests/sec in wrk's output: {out}"))?;
    let mut notes: Vec<String> = out
        .lines()
        .filter(|l| l.contains("Socket errors") || l.contains("Non-2xx"))
        .map(|l| format!("wrk: {}", l.trim()))
        .collect();
    if let Some(c) = counters {
        notes.push(format!("rvsd: {}", rvsd_brief(&c)));
    }
    let secs = (t1 - t0).as_secs_f64();
    Ok(Figure {
        rate,
        offered: 0.0,
        cpu: c1.since(&c0),
        threads: th1.since(&th0, secs),
        note: notes.join("; "),
    })
}

fn summary(udp: &[(Peer, Outcome)], tcp: &[(Peer, bool, Outcome)]) {
    let u = |p: Peer| {
        udp.iter()
            .find(|x| x.0 == p)
            .and_then(|x| x.1.as_ref().ok())
            .map(|f| f.rate)
    };
    let t = |p: Peer, close: bool| {
        tcp.iter()
            .find(|x| x.0 == p && x.1 == close)
            .and_then(|x| x.2.as_ref().ok())
            .map(|f| f.rate)
    };
    let ratio = |name: &str, a: Option<f64>, b: Option<f64>, aim: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => {
            let r = a / b;
            let aim = aim.map_or(String::new(), |x| {
                format!(
                    "  (aim ≥ {:.0}%: {})",
                    x * 100.0,
                    if r >= x { "met" } else { "not met" }
                )
            });
            println!("   {name:<44} {:>6.0}%{aim}", r * 100.0);
        }
        _ => println!("   {name:<44}    n/a (a figure is missing)"),
    };
    println!();
    println!("== ratios (same run)");
    let rvs = u(Peer::RvsXdp);
    ratio("UDP rvs AF_XDP / testpmd", rvs, u(Peer::Testpmd), Some(0.9));
    ratio(
        "UDP rvs AF_PACKET / testpmd",
        u(Peer::RvsPacket),
        u(Peer::Testpmd),
        None,
    );
    ratio(
        "UDP rvs AF_XDP / kernel forwarding",
        rvs,
        u(Peer::Kernel),
        None,
    );
    ratio("UDP rvs AF_XDP / nftables DNAT", rvs, u(Peer::Nft), None);
    for close in [false, true] {
        let mode = if close { "close" } else { "keep-alive" };
        let r = t(Peer::RvsXdp, close);
        ratio(
            &format!("HTTP {mode}: rvs / kernel forwarding"),
            r,
            t(Peer::Kernel, close),
            Some(0.9),
        );
        ratio(
            &format!("HTTP {mode}: rvs / nftables DNAT"),
            r,
            t(Peer::Nft, close),
            None,
        );
        ratio(
            &format!("HTTP {mode}: rvs / HAProxy"),
            r,
            t(Peer::Haproxy, close),
            Some(2.0),
        );
    }
}
