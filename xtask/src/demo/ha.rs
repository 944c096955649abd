//! Act two of the demo: high availability with rvs-keepalived.
//!
//! Two rvs nodes share the VIP by VRRP, each running rvsd and
//! rvs-keepalived with a keepalived.conf as LVS/DPVS users write theirs
//! (printed: it is what a user copies). All on one L2 segment: a veth
//! pair in a "switch" namespace whose end is the parent of one macvlan
//! (bridge mode) per namespace; no Linux bridge, which some kernels lack.
//! Each node: rvsd on AF_PACKET with a TAP that hands the kernel what the
//! balancer does not handle (VRRP among it), `announce_vips = false` so
//! that only the MASTER answers ARP for the VIP, and the node's address
//! on the TAP as well.
//!
//! The story, while the client sends a request every 100 ms: lb1 is
//! MASTER; it dies (SIGKILL, no goodbye advert) and lb2 takes the VIP
//! over (the time and the client's gap are measured); then b2's nginx
//! stops, lb2's health checks take it out of rvsd's table, and it comes
//! back when nginx starts again. The act fails when the failover does
//! not happen or a request fails outside the two windows where failing
//! is expected: the takeover, and the moments before the health check
//! notices that b2 is gone (a stopped server refuses the connections
//! scheduled to it until then). Everything is bounded in time and
//! removed at the end, also on error and Ctrl-C.

mod load;

use std::fs::File;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::lab::{spawn_nginx, target_dir};
use super::sys::{self, Netns, Proc, SHORT, TempDir, check_interrupted};
use load::{Load, Req};

const VIP: &str = "10.0.0.100";
const CLIENT: &str = "10.0.0.2";
/// The backends: name and address.
const BACKENDS: [(&str, &str); 3] = [
    ("b1", "10.0.0.21"),
    ("b2", "10.0.0.22"),
    ("b3", "10.0.0.23"),
];
/// The backend stopped and started again.
const STOPPED: usize = 1;
/// VRRP's `advert_int`, seconds.
const ADVERT_S: f64 = 1.0;

/// One rvs node.
#[derive(Debug)]
struct Lb {
    name: &'static str,
    /// rvsd's interface address (also the kernel's, on the TAP).
    addr: &'static str,
    /// Its FullNAT local address: the source the backends see.
    laddr: &'static str,
    priority: u8,
    state: &'static str,
}

const LBS: [Lb; 2] = [
    Lb {
        name: "lb1",
        addr: "10.0.0.11",
        laddr: "10.0.0.31",
        priority: 150,
        state: "MASTER",
    },
    Lb {
        name: "lb2",
        addr: "10.0.0.12",
        laddr: "10.0.0.32",
        priority: 100,
        state: "BACKUP",
    },
];

/// The release binaries act one built.
#[derive(Debug)]
struct Bins {
    rvsd: String,
    keepalived: String,
    rvsadm: String,
    rvsip: String,
}

impl Bins {
    fn find() -> Result<Bins> {
        let dir = target_dir()?.join("release");
        let bin = |name: &str| -> Result<String> {
            let p = dir.join(name);
            if !p.exists() {
                bail!(
                    "{} is missing: build the workspace in release first",
                    p.display()
                );
            }
            Ok(p.to_string_lossy().into_owned())
        };
        Ok(Bins {
            rvsd: bin("rvsd")?,
            keepalived: bin("rvs-keepalived")?,
            rvsadm: bin("rvsadm")?,
            rvsip: bin("rvsip")?,
        })
    }
}

fn keepalived_conf(lb: &Lb) -> String {
    let mut reals = String::new();
    for (_, addr) in BACKENDS {
        reals += &format!(
            "    real_server {addr} 80 {{
        weight 1
        HTTP_GET {{
            url {{
                path /
                status_code 200
            }}
            connect_timeout 1
            retry 1             # down after 2 failed checks in a row
            delay_before_retry 1
        }}
    }}
"
        );
    }
    format!(
        "global_defs {{
    router_id {name}
}}

vrrp_instance VI_1 {{
    state {state}
    interface tap0              # rvsd's TAP for its port eth0: VRRP goes through it
    virtual_router_id 51
    priority {priority}
    advert_int 1
    authentication {{
        auth_type PASS
        auth_pass rvs-demo
    }}
    virtual_ipaddress {{
        {VIP}/32           # added to rvsd on MASTER, removed on leaving it
    }}
}}

local_address_group laddr {{
    {laddr}                 # FullNAT source address towards the backends
}}

virtual_server {VIP} 80 {{
    delay_loop 1
    lb_algo rr
    lb_kind FNAT
    protocol TCP
    laddr_group_name laddr
{reals}}}
",
        name = lb.name,
        state = lb.state,
        priority = lb.priority,
        laddr = lb.laddr,
    )
}

fn rvsd_conf(lb: &Lb, tmp: &TempDir) -> String {
    format!(
        "# Written by `cargo xtask demo`: rvs node {name}.\n\
         [daemon]\nworkers = 1\nannounce_vips = false\n\n\
         [[port]]\nname = \"eth0\"\nbackend = \"af_packet\"\ntap = \"tap0\"\n\n\
         [[addr]]\naddr = \"{addr}/24\"\nport = \"eth0\"\n\n\
         [api]\nsocket = \"{sock}\"\nstate = \"{state}\"\n\n[metrics]\nlisten = \"\"\n",
        name = lb.name,
        addr = lb.addr,
        sock = tmp.path(&format!("{}-rvsd.sock", lb.name)),
        state = tmp.path(&format!("{}-state.json", lb.name)),
    )
}

/// Every process the act started, by name; stopped in the reverse order
/// of their start (rvs-keepalived before its rvsd, rvsd before the
/// backends) before the namespaces go.
#[derive(Debug, Default)]
struct Procs(Vec<(String, Proc)>);

impl Procs {
    fn add(&mut self, name: &str, p: Proc) {
        self.0.push((name.to_string(), p));
    }

    fn take(&mut self, name: &str) -> Option<Proc> {
        let i = self.0.iter().position(|(n, _)| n == name)?;
        Some(self.0.remove(i).1)
    }

    /// The first that has exited by itself, with how (not those killed
    /// on purpose: named `dead ...`).
    fn exited(&mut self) -> Option<(String, std::process::ExitStatus)> {
        self.0
            .iter_mut()
            .filter(|(n, _)| !n.starts_with("dead "))
            .find_map(|(n, p)| p.exited().map(|st| (n.clone(), st)))
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        while let Some((_, mut p)) = self.0.pop() {
            p.stop(Duration::from_secs(1));
        }
    }
}

/// The last lines of a log file.
fn tail(path: &str, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Polls `cond` every 20 ms for up to `limit`: how long it took.
fn poll(limit: Duration, mut cond: impl FnMut() -> bool) -> Result<Option<Duration>> {
    let t0 = Instant::now();
    loop {
        check_interrupted()?;
        if cond() {
            return Ok(Some(t0.elapsed()));
        }
        if t0.elapsed() >= limit {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A node's rvsd, reached through its API socket with the operators'
/// tools.
#[derive(Debug)]
struct Api<'a> {
    bins: &'a Bins,
    sock: String,
    lb: &'a Lb,
}

impl Api<'_> {
    /// Whether rvsd holds the VIP as an interface address (`rvsip addr
    /// show`): what rvs-keepalived adds on MASTER.
    fn has_vip(&self) -> bool {
        sys::output(
            Command::new(&self.bins.rvsip).args(["--socket", &self.sock, "addr", "show"]),
            Duration::from_secs(1),
        )
        .is_ok_and(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains(&format!(" {VIP}/"))
        })
    }

    /// `RVS_SOCKET=... rvsadm -Ln`.
    fn table(&self) -> Option<String> {
        let out = sys::output(
            Command::new(&self.bins.rvsadm)
                .arg("-Ln")
                .env("RVS_SOCKET", &self.sock),
            Duration::from_secs(1),
        )
        .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The real servers of the virtual server, as their addresses.
    fn reals(&self) -> Option<Vec<String>> {
        let t = self.table()?;
        Some(
            t.lines()
                .filter_map(|l| l.trim().strip_prefix("->"))
                .filter_map(|l| l.split_whitespace().next())
                .filter_map(|a| a.rsplit_once(':').map(|(ip, _)| ip.to_string()))
                .filter(|ip| BACKENDS.iter().any(|b| b.1 == ip))
                .collect(),
        )
    }

    fn has_real(&self, i: usize) -> bool {
        self.reals()
            .is_some_and(|r| r.iter().any(|a| a == BACKENDS[i].1))
    }

    /// Prints its table, indented, under the command that reads it.
    fn print_table(&self) {
        println!(
            "   $ RVS_SOCKET={} rvsadm -Ln    # on {}",
            self.sock, self.lb.name
        );
        match self.table() {
            Some(t) => t.lines().for_each(|l| println!("     {l}")),
            None => println!("     (no answer)"),
        }
    }
}

/// A macvlan on the segment (parent `sw0` in `sw`), moved into `ns` as
/// `eth0`, up, offloads off.
fn attach(sw: &Netns, ns: &Netns, tag: &str) -> Result<()> {
    let dev = format!("mv-{tag}");
    sw.ip(&[
        "link", "add", &dev, "link", "sw0", "type", "macvlan", "mode", "bridge",
    ])?;
    sw.ip(&["link", "set", &dev, "netns", &ns.name])?;
    ns.ip(&["link", "set", &dev, "name", "eth0"])?;
    ns.ip(&["link", "set", "eth0", "up"])?;
    offloads_off(ns, "eth0")
}

/// Checksum and segmentation offloads off (veth and macvlan otherwise
/// hand over frames with unfinished checksums).
fn offloads_off(ns: &Netns, dev: &str) -> Result<()> {
    ns.exec(&[
        "ethtool", "-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off",
    ])?;
    Ok(())
}

/// Waits (bounded) until nginx answers in `ns` on `addr`.
fn nginx_ready(ns: &Netns, name: &str, addr: &str) -> Result<()> {
    let url = format!("http://{addr}/");
    let ready = poll(SHORT, || {
        ns.exec(&["curl", "-sS", "--max-time", "1", &url])
            .is_ok_and(|s| s.starts_with(name))
    })?;
    if ready.is_none() {
        bail!("nginx {name} does not answer on {url}");
    }
    Ok(())
}

/// A log file for a child's stdout and stderr both.
fn log_file(tmp: &TempDir, name: &str) -> Result<(File, File)> {
    let f = tmp.file(name)?;
    let g = f.try_clone()?;
    Ok((f, g))
}

/// Starts rvsd on node `lb` (waits for it), then puts its address on the
/// TAP in the kernel, then rvs-keepalived with its keepalived.conf.
fn start_node(lb: &Lb, ns: &Netns, tmp: &TempDir, bins: &Bins, procs: &mut Procs) -> Result<()> {
    ns.exec(&[
        "sh",
        "-c",
        "echo 1 > /proc/sys/net/ipv4/conf/all/arp_ignore",
    ])?;
    let conf = tmp.path(&format!("{}-rvsd.toml", lb.name));
    std::fs::write(&conf, rvsd_conf(lb, tmp))?;
    let log = tmp.path(&format!("{}-rvsd.log", lb.name));
    let mut cmd = ns.command(&bins.rvsd);
    cmd.args(["--config", &conf])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(tmp.file(&format!("{}-rvsd.log", lb.name))?);
    let name = format!("{} rvsd", lb.name);
    procs.add(&name, Proc::spawn(&name, &mut cmd)?);
    let started = poll(Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("rvsd started"))
    })?;
    if started.is_none() {
        bail!(
            "rvsd on {} did not start within 10 s:\n{}",
            lb.name,
            tail(&log, 20)
        );
    }
    ns.ip(&["addr", "add", &format!("{}/24", lb.addr), "dev", "tap0"])?;
    ns.ip(&["link", "set", "tap0", "up"])?;
    offloads_off(ns, "tap0")?;

    let kconf = tmp.path(&format!("{}-keepalived.conf", lb.name));
    std::fs::write(&kconf, keepalived_conf(lb))?;
    let check = sys::output(
        Command::new(&bins.keepalived).args(["-t", "-f", &kconf]),
        SHORT,
    )?;
    if !check.status.success() {
        bail!(
            "rvs-keepalived -t refused {}'s keepalived.conf: {}",
            lb.name,
            String::from_utf8_lossy(&check.stderr).trim()
        );
    }
    let (out, err) = log_file(tmp, &format!("{}-keepalived.log", lb.name))?;
    let mut cmd = ns.command(&bins.keepalived);
    cmd.args([
        "-n",
        "-l",
        "-f",
        &kconf,
        "-p",
        &tmp.path(&format!("{}-keepalived.pid", lb.name)),
        "--rvsd-socket",
        &tmp.path(&format!("{}-rvsd.sock", lb.name)),
        "--dump-file",
        &tmp.path(&format!("{}-keepalived.json", lb.name)),
    ])
    .stdout(out)
    .stderr(err);
    let name = format!("{} rvs-keepalived", lb.name);
    procs.add(&name, Proc::spawn(&name, &mut cmd)?);
    Ok(())
}

/// What the requests of the loop say, judged against the two windows
/// where failures are expected.
#[derive(Debug)]
struct Verdict {
    ok: usize,
    failed_takeover: usize,
    failed_b2: usize,
    /// Failed requests outside both windows: (start, end).
    failed_elsewhere: Vec<(f64, f64)>,
    /// Answers before the kill through lb2, after it through lb1.
    wrong_lb: usize,
    /// Answers from the stopped backend while it was out of the table.
    b2_while_out: usize,
    /// Answers from it after it came back.
    b2_after: usize,
}

/// The moments of the story (seconds since the loop started).
#[derive(Debug)]
struct Moments {
    kill: f64,
    first_ok_after: f64,
    stop: f64,
    removed: f64,
    restart: f64,
    back: f64,
}

fn judge(reqs: &[Req], m: &Moments) -> Verdict {
    let mut v = Verdict {
        ok: 0,
        failed_takeover: 0,
        failed_b2: 0,
        failed_elsewhere: Vec::new(),
        wrong_lb: 0,
        b2_while_out: 0,
        b2_after: 0,
    };
    for r in reqs {
        // A failure overlaps a window when it ended after the window
        // opened and started before it closed.
        let within = |from: f64, to: f64| r.end > from && r.start < to;
        if !r.ok {
            if within(m.kill, m.first_ok_after) {
                v.failed_takeover += 1;
            } else if within(m.stop, m.removed) {
                v.failed_b2 += 1;
            } else {
                v.failed_elsewhere.push((r.start, r.end));
            }
            continue;
        }
        v.ok += 1;
        let expected_lb = if r.start < m.kill { 0 } else { 1 };
        if r.lb != Some(expected_lb) {
            v.wrong_lb += 1;
        }
        if r.backend == Some(STOPPED) {
            if r.start > m.removed && r.end < m.restart {
                v.b2_while_out += 1;
            }
            if r.start > m.back {
                v.b2_after += 1;
            }
        }
    }
    v
}

pub(super) fn run() -> Result<()> {
    check_interrupted()?;
    let started = Instant::now();
    let bins = Bins::find()?;
    let tmp = TempDir::new()?;

    println!();
    println!("== act two: high availability with rvs-keepalived");
    println!(
        "   one L2 segment (macvlans on a veth in a `switch` namespace): client {CLIENT}, \
         two rvs nodes lb1 {} and lb2 {}, backends b1..b3 {}..23 (nginx)",
        LBS[0].addr, LBS[1].addr, BACKENDS[0].1
    );
    println!(
        "   each node: rvsd (AF_PACKET on eth0, `tap = \"tap0\"` for the kernel, \
         `announce_vips = false`) and rvs-keepalived"
    );
    let sw = Netns::new("ha-sw")?;
    let client = Netns::new("ha-client")?;
    let lb_ns = LBS
        .iter()
        .map(|l| Netns::new(&format!("ha-{}", l.name)))
        .collect::<Result<Vec<_>>>()?;
    let b_ns = BACKENDS
        .iter()
        .map(|b| Netns::new(&format!("ha-{}", b.0)))
        .collect::<Result<Vec<_>>>()?;
    let mut procs = Procs::default();

    sw.ip(&["link", "add", "sw0", "type", "veth", "peer", "name", "sw1"])?;
    sw.ip(&["link", "set", "sw0", "up"])?;
    sw.ip(&["link", "set", "sw1", "up"])?;
    attach(&sw, &client, "client")?;
    client.ip(&["addr", "add", &format!("{CLIENT}/24"), "dev", "eth0"])?;
    for (l, ns) in LBS.iter().zip(&lb_ns) {
        attach(&sw, ns, l.name)?;
    }
    for ((b, addr), ns) in BACKENDS.iter().zip(&b_ns) {
        attach(&sw, ns, b)?;
        ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", "eth0"])?;
        procs.add(&format!("nginx {b}"), spawn_nginx(ns, &tmp, b)?);
    }
    for ((b, addr), ns) in BACKENDS.iter().zip(&b_ns) {
        nginx_ready(ns, b, addr)?;
    }

    println!(
        "== lb1's keepalived.conf (lb2's: `state BACKUP`, `priority 100`, `router_id lb2`, local address {}):",
        LBS[1].laddr
    );
    for l in keepalived_conf(&LBS[0]).lines() {
        println!("    {l}");
    }
    let t_start = Instant::now();
    for (l, ns) in LBS.iter().zip(&lb_ns) {
        start_node(l, ns, &tmp, &bins, &mut procs)?;
    }
    let apis: Vec<Api> = LBS
        .iter()
        .map(|lb| Api {
            bins: &bins,
            sock: tmp.path(&format!("{}-rvsd.sock", lb.name)),
            lb,
        })
        .collect();
    let logs = |i: usize| {
        format!(
            "--- {n} rvs-keepalived:\n{}\n--- {n} rvsd:\n{}",
            tail(&tmp.path(&format!("{}-keepalived.log", LBS[i].name)), 20),
            tail(&tmp.path(&format!("{}-rvsd.log", LBS[i].name)), 10),
            n = LBS[i].name
        )
    };
    // lb1 MASTER (its rvsd holds the VIP); both tables full (the checks
    // of all three backends passed on both nodes).
    let master = poll(Duration::from_secs(10), || apis[0].has_vip())?;
    if master.is_none() {
        bail!("lb1 did not become MASTER within 10 s\n{}", logs(0));
    }
    let all_up = poll(Duration::from_secs(10), || {
        apis.iter()
            .all(|a| a.reals().is_some_and(|r| r.len() == BACKENDS.len()))
    })?;
    if all_up.is_none() {
        bail!(
            "the three real servers are not in both rvsd tables within 10 s\n{}\n{}",
            logs(0),
            logs(1)
        );
    }
    if apis[1].has_vip() {
        bail!("lb2 holds the VIP too\n{}", logs(1));
    }
    if let Some((name, st)) = procs.exited() {
        bail!("{name} exited: {st}\n{}\n{}", logs(0), logs(1));
    }
    println!(
        "   started 3 nginx, 2 rvsd, 2 rvs-keepalived; lb1 MASTER (its rvsd holds {VIP}) and the \
         three real servers in both rvsd tables {:.1} s later; lb2 BACKUP",
        t_start.elapsed().as_secs_f64()
    );
    // The client's first request (ARP for the VIP answered by lb1).
    let first = poll(Duration::from_secs(3), || {
        client
            .exec(&["curl", "-sS", "--max-time", "1", &format!("http://{VIP}/")])
            .is_ok()
    })?;
    if first.is_none() {
        bail!("the client gets no answer from {VIP}\n{}", logs(0));
    }

    println!("== traffic: a curl every 100 ms from the client to http://{VIP}/ (--max-time 1)");
    println!(
        "   a line a second: the requests that ended in it, ok and failed, the answers per backend \
         and per node (by the source address nginx saw: lb1's local address {}, lb2's {})",
        LBS[0].laddr, LBS[1].laddr
    );
    let mut load = Load::start(&client);
    Load::header();
    load.run_for(Duration::from_secs(3))?;

    // lb1 dies.
    let kill = load.now();
    println!(
        "   >> {kill:.1} s: lb1 dies: SIGKILL to its rvsd and rvs-keepalived (no goodbye advert)"
    );
    let mut dead = Vec::new();
    for what in ["rvs-keepalived", "rvsd"] {
        let p = procs.take(&format!("lb1 {what}")).context("lb1")?;
        p.signal(libc::SIGKILL);
        dead.push((what, p));
    }
    for (what, mut p) in dead {
        p.wait(Duration::from_secs(1));
        procs.add(&format!("dead lb1 {what}"), p);
    }
    let skew = (256.0 - f64::from(LBS[1].priority)) / 256.0 * ADVERT_S;
    let bound = 3.0 * ADVERT_S + skew;
    let vip = load
        .wait_for(Duration::from_secs(10), |_| apis[1].has_vip())?
        .with_context(|| format!("lb2 did not take the VIP over within 10 s\n{}", logs(1)))?;
    let takeover = vip - kill;
    println!(
        "   >> {vip:.1} s: lb2's rvsd holds {VIP}: lb2 MASTER {takeover:.2} s after lb1 died \
         (VRRP: 3 x advert_int + skew = {bound:.2} s without an advert)"
    );
    let first_ok = |l: &Load| {
        l.requests()
            .iter()
            .filter(|r| r.ok && r.start > kill)
            .map(|r| r.end)
            .reduce(f64::min)
    };
    load.wait_for(Duration::from_secs(3), |l| first_ok(l).is_some())?;
    let reqs = load.requests();
    let first_ok_after =
        first_ok(&load).with_context(|| format!("no answer after the takeover\n{}", logs(1)))?;
    let last_ok_before = reqs
        .iter()
        .filter(|r| r.ok && r.start < kill)
        .map(|r| r.end)
        .fold(0.0, f64::max);
    let gap = first_ok_after - last_ok_before;
    println!(
        "   >> {first_ok_after:.1} s: the first answer through lb2; the client's gap: {gap:.2} s \
         (last answer before {last_ok_before:.2} s, first after {first_ok_after:.2} s)"
    );
    load.run_for(Duration::from_secs(2))?;

    // b2 stops, and comes back.
    let b2 = BACKENDS[STOPPED].0;
    println!("   >> {:.1} s: lb2's table before b2 stops:", load.now());
    apis[1].print_table();
    let stop = load.now();
    println!("   >> {stop:.1} s: b2's nginx stops (SIGTERM)");
    procs
        .take(&format!("nginx {b2}"))
        .context("nginx b2")?
        .stop(Duration::from_secs(2));
    let removed = load
        .wait_for(Duration::from_secs(6), |_| {
            apis[1]
                .reals()
                .is_some_and(|r| !r.iter().any(|a| a == BACKENDS[STOPPED].1))
        })?
        .with_context(|| format!("b2 still in lb2's table 6 s after it stopped\n{}", logs(1)))?;
    println!(
        "   >> {removed:.1} s: rvs-keepalived on lb2 took b2 out of rvsd's table, {:.2} s after \
         it stopped (HTTP_GET failed twice, 1 s apart); the table now:",
        removed - stop
    );
    apis[1].print_table();
    load.run_for(Duration::from_secs(2))?;
    let restart = load.now();
    println!("   >> {restart:.1} s: b2's nginx starts again");
    procs.add(
        &format!("nginx {b2}"),
        spawn_nginx(&b_ns[STOPPED], &tmp, b2)?,
    );
    let back = load
        .wait_for(Duration::from_secs(6), |_| apis[1].has_real(STOPPED))?
        .with_context(|| {
            format!(
                "b2 not back in lb2's table 6 s after it started\n{}",
                logs(1)
            )
        })?;
    println!(
        "   >> {back:.1} s: its check passes: b2 back in lb2's table {:.2} s after the start",
        back - restart
    );
    load.run_for(Duration::from_secs(2))?;
    let reqs = load.stop();
    drop(load);
    let lb2_alive = procs.exited().is_none();

    // Cleanup, then the verdict.
    let n_procs = procs.0.len();
    drop(procs);
    let n_ns = 2 + lb_ns.len() + b_ns.len();
    drop(b_ns);
    drop(lb_ns);
    drop(client);
    drop(sw);
    drop(tmp);
    let left = sys::run("ip", &["netns", "list"])?
        .lines()
        .filter(|l| l.starts_with(&format!("{}{}-ha-", sys::NS_PREFIX, std::process::id())))
        .count();
    println!("   cleaned up: {n_procs} processes stopped, {n_ns} namespaces deleted ({left} left)");

    let m = Moments {
        kill,
        first_ok_after,
        stop,
        removed,
        restart,
        back,
    };
    let v = judge(&reqs, &m);
    println!();
    println!(
        "== act two summary ({:.0} s)",
        started.elapsed().as_secs_f64()
    );
    println!(
        "   failover: lb2 MASTER {takeover:.2} s after lb1 died (bound {bound:.2} s); \
         the client's gap {gap:.2} s, {} requests failed in it",
        v.failed_takeover
    );
    println!(
        "   b2 down: out of lb2's table {:.2} s after its nginx stopped, {} requests refused \
         meanwhile; back {:.2} s after it started, then {} answers from it",
        removed - stop,
        v.failed_b2,
        back - restart,
        v.b2_after
    );
    println!(
        "   {} requests, {} answered; failed outside these two windows: {}",
        reqs.len(),
        v.ok,
        v.failed_elsewhere.len()
    );
    let mut problems = Vec::new();
    if takeover > bound + 0.5 {
        problems.push(format!("takeover {takeover:.2} s > {bound:.2} s + 0.5"));
    }
    if !v.failed_elsewhere.is_empty() {
        problems.push(format!(
            "requests failed outside the expected windows (start, end): {:?}",
            v.failed_elsewhere
        ));
    }
    if v.wrong_lb > 0 {
        problems.push(format!(
            "{} answers came through the wrong node (lb1 before the kill, lb2 after)",
            v.wrong_lb
        ));
    }
    if v.b2_while_out > 0 {
        problems.push(format!("b2 answered {} requests while out", v.b2_while_out));
    }
    if v.b2_after == 0 {
        problems.push("b2 answered nothing after it came back".into());
    }
    if !lb2_alive {
        problems.push("a process of lb2 or a backend exited".into());
    }
    super::sys::verdict(problems, left, "act two")
}
