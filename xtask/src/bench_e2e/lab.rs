//! The bench's lab: three fresh namespaces per case (generator or client →
//! middle → backend), the CPU split, and what is measured (Δ counters,
//! /proc/stat and per-thread CPU deltas).
//!
//! ```text
//!  gen (cpu0: trafgen / wrk)        mid (cpu1: the path under test)        back
//!  eth0 10.0.0.2 ---------------- mi 10.0.0.1 | mo 10.0.2.1 ------------ eth0 10.0.2.2
//!                                  VIP 10.0.0.100, local addresses 10.0.9.1-4
//! ```
//!
//! Steering (BENCH-NOTES.md): without it veth does the receiver's work on
//! the *sender's* CPU. GRO on `mi` and `mo` gives them a NAPI instance, which
//! is made threaded and its kernel thread pinned to cpu1 once the peer under
//! test has started; so the whole middle (receive, forwarding or the
//! user-space peer, transmit) runs on cpu1 and the generator alone on cpu0.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::demo::sys::{self, Netns, TempDir};

pub(crate) const GEN_IP: &str = "10.0.0.2";
pub(crate) const MID_IN_IP: &str = "10.0.0.1";
pub(crate) const MID_OUT_IP: &str = "10.0.2.1";
pub(crate) const BACK_IP: &str = "10.0.2.2";
pub(crate) const VIP: &str = "10.0.0.100";
pub(crate) const LADDRS: [&str; 4] = ["10.0.9.1", "10.0.9.2", "10.0.9.3", "10.0.9.4"];
pub(crate) const UDP_PORT: u16 = 5000;

/// One case's namespaces; dropped in reverse order (every process in them
/// killed, the namespaces deleted with their veths).
pub(crate) struct Lab {
    pub(crate) gen_ns: Netns,
    pub(crate) mid: Netns,
    pub(crate) back: Netns,
}

impl Lab {
    /// Builds the three namespaces and two veth pairs. `kernel_addrs`: the
    /// middle's kernel gets the addresses and forwards (kernel, nftables,
    /// HAProxy); otherwise the ports stay bare for rvsd or testpmd.
    pub(crate) fn new(case: &str, kernel_addrs: bool) -> Result<Lab> {
        let lab = Lab {
            gen_ns: Netns::new(&format!("{case}-gen"))?,
            mid: Netns::new(&format!("{case}-mid"))?,
            back: Netns::new(&format!("{case}-back"))?,
        };
        let mid = &lab.mid;
        for (dev, peer) in [("mi", &lab.gen_ns), ("mo", &lab.back)] {
            mid.ip(&[
                "link", "add", dev, "type", "veth", "peer", "name", "eth0", "netns", &peer.name,
            ])?;
        }
        // No checksum or segmentation offloads (frames leave complete; a
        // TSO sender would also bypass the receiver's NAPI and native XDP);
        // GRO on the middle's ports gives them a NAPI instance to steer.
        let off = ["tx", "off", "tso", "off", "gso", "off"];
        for (ns, dev, gro) in [
            (&lab.gen_ns, "eth0", "off"),
            (&lab.back, "eth0", "off"),
            (mid, "mi", "on"),
            (mid, "mo", "on"),
        ] {
            ns.ip(&["link", "set", dev, "up"])?;
            let mut args = vec!["ethtool", "-K", dev];
            args.extend(off);
            args.extend(["gro", gro]);
            ns.exec(&args)?;
        }
        lab.gen_ns
            .ip(&["addr", "add", &format!("{GEN_IP}/24"), "dev", "eth0"])?;
        lab.gen_ns
            .ip(&["route", "add", "default", "via", MID_IN_IP])?;
        // The VIP is inside the client's subnet: reach it through the
        // middle's address (rvsd would answer ARP for it, the kernel peers
        // do not).
        lab.gen_ns
            .ip(&["route", "add", &format!("{VIP}/32"), "via", MID_IN_IP])?;
        lab.back
            .ip(&["addr", "add", &format!("{BACK_IP}/24"), "dev", "eth0"])?;
        lab.back
            .ip(&["route", "add", "default", "via", MID_OUT_IP])?;
        for ns in [&lab.gen_ns, &lab.mid, &lab.back] {
            ns.exec(&[
                "sh",
                "-c",
                "echo 10000 65000 > /proc/sys/net/ipv4/ip_local_port_range; \
                 echo 1 > /proc/sys/net/ipv4/tcp_tw_reuse",
            ])?;
        }
        if kernel_addrs {
            mid.ip(&["addr", "add", &format!("{MID_IN_IP}/24"), "dev", "mi"])?;
            mid.ip(&["addr", "add", &format!("{MID_OUT_IP}/24"), "dev", "mo"])?;
            mid.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
        }
        Ok(lab)
    }

    /// The MAC address of `dev` in `ns`.
    pub(crate) fn mac(ns: &Netns, dev: &str) -> Result<String> {
        let out = ns.exec(&["cat", &format!("/sys/class/net/{dev}/address")])?;
        Ok(out.trim().to_string())
    }

    /// A counter of `dev` in `ns` (`/sys/class/net/DEV/statistics/NAME`).
    pub(crate) fn counter(ns: &Netns, dev: &str, name: &str) -> Result<u64> {
        let out = ns.exec(&["cat", &format!("/sys/class/net/{dev}/statistics/{name}")])?;
        out.trim()
            .parse()
            .with_context(|| format!("{dev} {name}: {out:?}"))
    }

    /// Threaded NAPI on the middle's ports, each NAPI thread pinned to
    /// cpu1; returns their thread ids (for the per-thread CPU figures).
    pub(crate) fn steer_to_cpu1(&self) -> Result<Vec<i32>> {
        let before: HashSet<i32> = threads_named("napi/").into_iter().map(|t| t.0).collect();
        let mut tids = Vec::new();
        for dev in ["mi", "mo"] {
            self.mid.exec(&[
                "sh",
                "-c",
                &format!("echo 1 > /sys/class/net/{dev}/threaded"),
            ])?;
        }
        // The kernel threads appear at once; a moment for the scheduler.
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            for (tid, comm) in threads_named("napi/m") {
                if !before.contains(&tid)
                    && (comm.starts_with("napi/mi-") || comm.starts_with("napi/mo-"))
                    && !tids.contains(&tid)
                {
                    pin(tid, 1)?;
                    tids.push(tid);
                }
            }
            if tids.len() >= 2 || Instant::now() > deadline {
                break;
            }
            sys::sleep(Duration::from_millis(20))?;
        }
        if tids.is_empty() {
            bail!("no NAPI thread appeared for the middle's ports");
        }
        Ok(tids)
    }
}

/// Processes (kernel threads here) whose name starts with `prefix`:
/// (pid, name).
fn threads_named(prefix: &str) -> Vec<(i32, String)> {
    let mut v = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return v;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) {
            let comm = comm.trim();
            if comm.starts_with(prefix) {
                v.push((pid, comm.to_string()));
            }
        }
    }
    v
}

/// Pins thread `tid` to `cpu`.
pub(crate) fn pin(tid: i32, cpu: usize) -> Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes
    // inside it; sched_setaffinity reads it.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        bail!(
            "cannot pin thread {tid} to cpu{cpu}: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// `/proc/stat` for cpu0 and cpu1: (busy, steal, total) jiffies each.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuStat([(u64, u64, u64); 2]);

impl CpuStat {
    pub(crate) fn now() -> Result<CpuStat> {
        let s = std::fs::read_to_string("/proc/stat")?;
        let mut out = [(0, 0, 0); 2];
        for (i, slot) in out.iter_mut().enumerate() {
            let line = s
                .lines()
                .find(|l| l.starts_with(&format!("cpu{i} ")))
                .with_context(|| format!("no cpu{i} in /proc/stat"))?;
            // user nice system idle iowait irq softirq steal (guest is
            // already counted in user).
            let f: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .take(8)
                .map(|x| x.parse().unwrap_or(0))
                .collect();
            let total: u64 = f.iter().sum();
            let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
            let steal = f.get(7).copied().unwrap_or(0);
            *slot = (total - idle - steal, steal, total);
        }
        Ok(CpuStat(out))
    }

    /// Busy and stolen percent of each CPU since `earlier`.
    pub(crate) fn since(&self, earlier: &CpuStat) -> [(f64, f64); 2] {
        std::array::from_fn(|i| {
            let (b1, s1, t1) = self.0[i];
            let (b0, s0, t0) = earlier.0[i];
            let t = (t1 - t0).max(1) as f64;
            (100.0 * (b1 - b0) as f64 / t, 100.0 * (s1 - s0) as f64 / t)
        })
    }
}

/// Per-thread CPU ticks (user, system) of the threads watched in a case:
/// every thread of the peer's process and the NAPI threads.
#[derive(Debug, Clone, Default)]
pub(crate) struct Threads(Vec<(String, u64, u64)>);

impl Threads {
    /// Reads the tasks of `pids` (every thread) and the single threads
    /// `tids`.
    pub(crate) fn now(pids: &[u32], tids: &[i32]) -> Threads {
        let mut v = Vec::new();
        let mut read = |path: String| {
            let Ok(s) = std::fs::read_to_string(&path) else {
                return;
            };
            // "tid (comm) state ... utime stime": fields 14 and 15.
            let (Some(open), Some(close)) = (s.find('('), s.rfind(')')) else {
                return;
            };
            let comm = s[open + 1..close].to_string();
            let rest: Vec<&str> = s[close + 1..].split_whitespace().collect();
            let num = |i: usize| rest.get(i).and_then(|x| x.parse().ok()).unwrap_or(0);
            v.push((comm, num(11), num(12)));
        };
        // The processes and their children (nginx's worker).
        let mut all: Vec<u32> = pids.to_vec();
        for pid in pids {
            if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
                for e in dir.flatten() {
                    let path = e.path().join("children");
                    let kids = std::fs::read_to_string(path).unwrap_or_default();
                    all.extend(
                        kids.split_whitespace()
                            .filter_map(|k| k.parse::<u32>().ok()),
                    );
                }
            }
        }
        for pid in &all {
            if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
                let mut tasks: Vec<String> = dir
                    .flatten()
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .collect();
                tasks.sort();
                for t in tasks {
                    read(format!("/proc/{pid}/task/{t}/stat"));
                }
            }
        }
        for tid in tids {
            read(format!("/proc/{tid}/stat"));
        }
        // cpu1's softirq thread: receive work deferred out of interrupts.
        for (tid, comm) in threads_named("ksoftirqd/1") {
            if comm == "ksoftirqd/1" {
                read(format!("/proc/{tid}/stat"));
            }
        }
        Threads(v)
    }

    /// "name 61% (user 23%)" for each thread that used ≥ 2% of a CPU
    /// since `earlier`, over `secs` seconds.
    pub(crate) fn since(&self, earlier: &Threads, secs: f64) -> String {
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let mut parts = Vec::new();
        for (i, (comm, u1, s1)) in self.0.iter().enumerate() {
            let Some((_, u0, s0)) = earlier.0.get(i).filter(|e| &e.0 == comm) else {
                continue;
            };
            let user = (u1.saturating_sub(*u0)) as f64 / hz / secs * 100.0;
            let sys = (s1.saturating_sub(*s0)) as f64 / hz / secs * 100.0;
            if user + sys >= 2.0 {
                let name = comm.split('-').take(2).collect::<Vec<_>>().join("-");
                parts.push(format!("{name} {:.0}% (user {:.0}%)", user + sys, user));
            }
        }
        parts.join(", ")
    }
}

/// The XDP program that drops every IPv4 UDP frame the backend receives
/// (and passes the rest: ARP, ICMP, TCP), compiled with clang.
pub(crate) fn build_drop_program(tmp: &TempDir) -> Result<String> {
    let src = tmp.path("udp_drop.c");
    let obj = tmp.path("udp_drop.o");
    std::fs::write(
        &src,
        "struct xdp_md { unsigned int data, data_end, data_meta, ingress_ifindex, \
         rx_queue_index, egress_ifindex; };\n\
         __attribute__((section(\"xdp\"), used)) int udp_drop(struct xdp_md *ctx)\n{\n\
         \x20   unsigned char *p = (unsigned char *)(long)ctx->data;\n\
         \x20   unsigned char *end = (unsigned char *)(long)ctx->data_end;\n\
         \x20   if (p + 34 > end) return 2; /* XDP_PASS */\n\
         \x20   if (p[12] != 0x08 || p[13] != 0x00 || p[23] != 17) return 2;\n\
         \x20   return 1; /* XDP_DROP */\n}\n\
         char _license[] __attribute__((section(\"license\"), used)) = \"GPL\";\n",
    )?;
    sys::run("clang", &["-O2", "-target", "bpf", "-c", &src, "-o", &obj])?;
    Ok(obj)
}

/// Raises `net.core.{w,r}mem_default` in the initial namespace for the
/// run (trafgen inside a namespace cannot raise its own socket buffers)
/// and restores them on drop.
pub(crate) struct SocketBuffers(Vec<(String, String)>);

impl SocketBuffers {
    pub(crate) fn raise() -> Result<SocketBuffers> {
        let mut saved = Vec::new();
        for key in ["wmem_default", "rmem_default"] {
            let path = format!("/proc/sys/net/core/{key}");
            let old = std::fs::read_to_string(&path)?.trim().to_string();
            std::fs::write(&path, "4194304").with_context(|| path.clone())?;
            saved.push((path, old));
        }
        Ok(SocketBuffers(saved))
    }
}

impl Drop for SocketBuffers {
    fn drop(&mut self) {
        for (path, old) in &self.0 {
            let _ = std::fs::write(path, old);
        }
    }
}
