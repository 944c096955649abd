//! VRRP between rvs-keepalived and Debian's keepalived 2.2.7.
//!
//! One macvlan segment holds node A (rvs-keepalived), node B
//! (keepalived, `-P`: VRRP only) and a client. First on plain kernel
//! interfaces (no rvsd: rvs-keepalived adds the VIP with `ip addr` and
//! sends its own gratuitous ARPs), then with rvsd on A (AF_PACKET port
//! with a TAP, `announce_vips = false`, a FullNAT service on the VIP):
//! - priorities decide the MASTER: the client's ARP for the VIP is
//!   answered by the MASTER's MAC, both directions;
//! - killing the MASTER (SIGKILL: no priority-0 advert) moves the VIP
//!   within 3 × advert + skew (measured and printed); a graceful stop
//!   (priority 0) within the skew;
//! - preemption and `nopreempt` behave as keepalived's, both ways;
//! - rvs's adverts, captured on the client, are well-formed, look like
//!   keepalived's, and keepalived accepts them (no complaint in its log,
//!   it stays BACKUP); rvs accepts keepalived's (none refused in its
//!   dump);
//! - VRRPv3 over IPv6 (and a v3 backup learning the master's
//!   interval), unicast peers in v2 and v3;
//! - VRRPv3 over IPv6 through rvsd (adverts from the TAP's link-local,
//!   which passes duplicate address detection; unsolicited NAs; ND for
//!   the VIP and `curl -6` through rvs's MASTER), failover both ways;
//! - a failing track script lowers rvs's priority below keepalived's
//!   (keepalived preempts) and its recovery gives MASTER back; a reload
//!   changes the priority in place; an instance removed by a reload
//!   stops with a priority-0 advert.
//!
//! The tests run one at a time (timings are measured). Run as root.

mod common;

use std::path::PathBuf;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use common::harness::{
    HttpServer, Rvsd, Segment, TempFile, mac, offloads_off, sibling_bin, sysctl,
};
use common::keepalived::{
    Daemon, TempDir, arp_owner, capture_vrrp, dump, poll_until, real_keepalived, rvs_keepalived,
    rvsd_addrs, vrrp_conf, vrrp_state,
};
use common::{Netns, mac_str, unique};

const VIP: &str = "10.0.0.100";
/// 3 × advert_int + skew of priority 100 (156/256 s).
const DOWN_100: f64 = 3.0 + 156.0 / 256.0;
/// The same at priority 200 (56/256 s).
const DOWN_200: f64 = 3.0 + 56.0 / 256.0;

static SERIAL: Mutex<()> = Mutex::new(());

/// The segment: A (rvs), B (keepalived), client.
struct Lan {
    _seg: Segment,
    a: Netns,
    b: Netns,
    client: Netns,
    a_if: String,
    b_if: String,
    c_if: String,
    dir: TempDir,
    /// keepalived's files, one directory per start.
    ka_dirs: Mutex<Vec<TempDir>>,
}

const A_MAC: [u8; 6] = [0x02, 0x52, 0x56, 0x53, 0x0a, 0x01];
const B_MAC: [u8; 6] = [0x02, 0x52, 0x56, 0x53, 0x0b, 0x01];

impl Lan {
    fn new(v6: bool) -> Lan {
        // Built now, so starting it later does not wait on cargo while a
        // peer's timers run.
        sibling_bin("rvs-keepalived");
        let seg = Segment::new();
        let a = Netns::new("na");
        let b = Netns::new("nb");
        let client = Netns::new("cl");
        for ns in [&a, &b, &client] {
            if v6 {
                // Link-local addresses usable at once (no DAD wait).
                for conf in ["all", "default"] {
                    sysctl(ns, &format!("net/ipv6/conf/{conf}/accept_dad"), "0");
                }
            } else {
                ns.disable_ipv6();
            }
        }
        let a_if = seg.attach(&a, A_MAC);
        let b_if = seg.attach(&b, B_MAC);
        let c_if = seg.attach(&client, mac(0x0c, 1));
        a.ip(&["addr", "add", "10.0.0.11/24", "dev", &a_if]);
        b.ip(&["addr", "add", "10.0.0.12/24", "dev", &b_if]);
        client.ip(&["addr", "add", "10.0.0.2/24", "dev", &c_if]);
        if v6 {
            client.ip(&["addr", "add", "fd00::2/64", "dev", &c_if, "nodad"]);
        }
        Lan {
            _seg: seg,
            a,
            b,
            client,
            a_if,
            b_if,
            c_if,
            dir: TempDir::new("vrrp"),
            ka_dirs: Mutex::new(Vec::new()),
        }
    }

    /// rvs-keepalived on A with `conf` (VRRP only, no rvsd unless
    /// `socket`).
    fn start_rvs(&self, conf: &str, socket: Option<&PathBuf>) -> Daemon {
        let path = self.dir.write(&format!("{}.conf", unique("rvs")), conf);
        let none = self.dir.file("no-rvsd.sock");
        rvs_keepalived(&self.a, &self.dir, &path, socket.unwrap_or(&none), &["-P"])
    }

    /// keepalived on B with `conf`.
    fn start_ka(&self, conf: &str) -> Ka {
        let sub = TempDir::new("ka");
        let path = sub.write("keepalived.conf", conf);
        let d = real_keepalived(&self.b, &sub, &path);
        let vrrp_pid = sub.file("vrrp.pid");
        self.ka_dirs.lock().unwrap().push(sub);
        Ka { d, vrrp_pid }
    }

    /// Who answers the client's ARP for the VIP: "A", "B" or "-".
    fn vip_owner(&self) -> &'static str {
        match arp_owner(&self.client, &self.c_if, VIP) {
            Some(m) if m == mac_str(A_MAC) => "A",
            Some(m) if m == mac_str(B_MAC) => "B",
            _ => "-",
        }
    }
}

/// keepalived: its parent process and the VRRP child's pid file.
struct Ka {
    d: Daemon,
    vrrp_pid: PathBuf,
}

impl std::ops::Deref for Ka {
    type Target = Daemon;
    fn deref(&self) -> &Daemon {
        &self.d
    }
}

impl std::ops::DerefMut for Ka {
    fn deref_mut(&mut self) -> &mut Daemon {
        &mut self.d
    }
}

impl Ka {
    fn child(&self) -> Option<libc::pid_t> {
        std::fs::read_to_string(&self.vrrp_pid)
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The node dies: the VRRP child is killed before it can say
    /// anything (killing the parent alone makes the child stop
    /// gracefully, with a priority-0 advert); the parent is stopped first
    /// so it cannot start another child.
    fn crash(&mut self) {
        let child = self.child().expect("keepalived's VRRP child pid");
        let parent = self.d.child.id() as libc::pid_t;
        // SAFETY: signalling processes this test started.
        unsafe {
            libc::kill(parent, libc::SIGSTOP);
            libc::kill(child, libc::SIGKILL);
        }
        self.d.kill();
    }
}

impl Drop for Ka {
    fn drop(&mut self) {
        if let Some(c) = self.child() {
            // SAFETY: as above; a stale pid file names a dead process.
            unsafe { libc::kill(c, libc::SIGKILL) };
        }
    }
}

fn logs(a: &Daemon, b: &Daemon) -> String {
    format!(
        "--- rvs-keepalived (A):\n{}\n--- keepalived (B):\n{}",
        a.log(),
        b.log()
    )
}

fn state(d: &Daemon) -> String {
    vrrp_state(&d.log(), "VI_1").unwrap_or_default()
}

/// What keepalived says about adverts it refuses.
const KA_COMPLAINTS: [&str; 8] = [
    "invalid",
    "Invalid",
    "mismatch",
    "unexpected",
    "not present",
    "wrong version",
    "too short",
    "too long",
];

fn ka_complaints(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| KA_COMPLAINTS.iter().any(|c| l.contains(c)))
        .collect()
}

/// Waits until `d` logs a MASTER transition more than `before` times;
/// returns the time since `t0`.
fn master_after(d: &Daemon, before: usize, t0: Instant, ctx: &dyn Fn() -> String) -> f64 {
    poll_until(Duration::from_secs(10), "takeover", ctx, || {
        d.log().matches("(VI_1) Entering MASTER STATE").count() > before
    });
    t0.elapsed().as_secs_f64()
}

/// The first VRRP packet of a `tcpdump -vv` capture, with what may
/// differ between two senders taken out: the timestamp, IP id, source
/// address and priority.
fn advert_shape(cap: &str, src: &str) -> String {
    let mut lines = cap.lines().skip_while(|l| !l.contains("proto VRRP"));
    let (Some(ip), Some(vrrp)) = (lines.next(), lines.next()) else {
        return String::new();
    };
    let ip = ip.split_once(" IP ").map_or(ip, |(_, r)| r);
    format!("{ip} {}", vrrp.trim())
        .replace(src, "SRC")
        .split(", ")
        .filter(|f| !f.starts_with("id ") && !f.starts_with("prio "))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks a takeover `took` seconds after the MASTER died against the
/// master-down interval `bound` (3 × advert + skew): at most the bound and
/// a scheduling margin, at least the bound less one advert interval (the
/// dead MASTER's last advert was up to one interval before), and prints it.
#[track_caller]
fn crash_takeover(who: &str, after: &str, took: f64, bound: f64, logs: &str) {
    println!("{who} took over {took:.3} s after {after} (bound {bound:.3} s)");
    assert!(
        took > bound - 1.1 && took < bound + 0.3,
        "takeover {took:.3} s\n{logs}"
    );
}

#[test]
fn rvs_master_keepalived_backup_then_master_killed() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lan = Lan::new(false);
    let mut ka = lan.start_ka(&vrrp_conf(&lan.b_if, 100, "10.0.0.100/24", ""));
    ka.wait_log("(VI_1) Entering BACKUP STATE", 1, Duration::from_secs(10));
    let mut rvs = lan.start_rvs(&vrrp_conf(&lan.a_if, 200, "10.0.0.100/24", ""), None);
    poll_until(
        Duration::from_secs(15),
        "rvs MASTER, keepalived BACKUP",
        &|| logs(&rvs, &ka.d),
        || state(&rvs) == "MASTER" && state(&ka.d) == "BACKUP",
    );
    assert_eq!(lan.vip_owner(), "A", "{}", logs(&rvs, &ka.d));

    // rvs's adverts on the wire, and keepalived's view of them.
    let cap = capture_vrrp(
        &lan.client,
        &lan.c_if,
        "ip proto 112",
        3,
        Duration::from_secs(6),
    );
    println!("rvs adverts as the client sees them:\n{cap}");
    assert_eq!(cap.matches("10.0.0.11 > 224.0.0.18").count(), 3, "{cap}");
    for want in [
        "tos 0xc0, ttl 255",
        "proto VRRP (112)",
        "VRRPv2, Advertisement, vrid 51, prio 200, authtype simple, intvl 1s, length 20, addrs: 10.0.0.100 auth \"rvs-e2e\"",
    ] {
        assert!(cap.contains(want), "no `{want}` in\n{cap}");
    }
    thread::sleep(Duration::from_secs(2));
    assert_eq!(state(&ka.d), "BACKUP", "{}", logs(&rvs, &ka.d));
    assert!(ka_complaints(&ka.log()).is_empty(), "{}", logs(&rvs, &ka.d));

    // The MASTER dies: keepalived takes over within 3 × advert + skew
    // after rvs's last advert (which was up to one interval before).
    let before = ka.log().matches("(VI_1) Entering MASTER STATE").count();
    let t0 = Instant::now();
    rvs.kill();
    // The whole node is gone (its kernel still holds the VIP).
    lan.a.ip(&["link", "set", &lan.a_if, "down"]);
    let took = master_after(&ka.d, before, t0, &|| logs(&rvs, &ka.d));
    crash_takeover(
        "keepalived",
        "rvs-keepalived was killed",
        took,
        DOWN_100,
        &logs(&rvs, &ka.d),
    );
    poll_until(
        Duration::from_secs(5),
        "VIP answered by B",
        &|| logs(&rvs, &ka.d),
        || lan.vip_owner() == "B",
    );
    // The node comes back, its kernel still holding the VIP: the new
    // rvs-keepalived removes it at start and takes over again
    // (preemption by the higher priority).
    lan.a.ip(&["link", "set", &lan.a_if, "up"]);
    let mut rvs = lan.start_rvs(&vrrp_conf(&lan.a_if, 200, "10.0.0.100/24", ""), None);
    poll_until(
        Duration::from_secs(10),
        "rvs preempts keepalived",
        &|| logs(&rvs, &ka.d),
        || state(&rvs) == "MASTER" && state(&ka.d) == "BACKUP",
    );
    assert_eq!(lan.vip_owner(), "A", "{}", logs(&rvs, &ka.d));
    assert_eq!(rvs.terminate(), Some(0), "{}", logs(&rvs, &ka.d));
    assert_eq!(ka.terminate(), Some(0), "{}", logs(&rvs, &ka.d));
}

#[test]
fn keepalived_master_rvs_backup_then_master_killed() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lan = Lan::new(false);
    let mut ka = lan.start_ka(&vrrp_conf(&lan.b_if, 200, "10.0.0.100/24", ""));
    ka.wait_log("(VI_1) Entering MASTER STATE", 1, Duration::from_secs(10));
    let mut rvs = lan.start_rvs(&vrrp_conf(&lan.a_if, 100, "10.0.0.100/24", ""), None);
    rvs.wait_log("(VI_1) Entering BACKUP STATE", 1, Duration::from_secs(10));
    let cap = capture_vrrp(
        &lan.client,
        &lan.c_if,
        "ip proto 112",
        1,
        Duration::from_secs(4),
    );
    println!("keepalived's advert:\n{cap}");
    thread::sleep(Duration::from_secs(4));
    assert_eq!(state(&rvs), "BACKUP", "{}", logs(&rvs, &ka.d));
    assert_eq!(state(&ka.d), "MASTER", "{}", logs(&rvs, &ka.d));
    assert_eq!(lan.vip_owner(), "B", "{}", logs(&rvs, &ka.d));
    // rvs accepted every advert of keepalived's.
    let d = dump(&rvs, &lan.dir);
    let inst = &d["vrrp"]["instances"][0];
    assert!(inst["adverts_received"].as_u64().unwrap_or(0) >= 3, "{d:#}");
    assert_eq!(inst["adverts_rejected"], serde_json::json!({}), "{d:#}");
    assert_eq!(inst["master"], "10.0.0.12", "{d:#}");
    assert_eq!(inst["master_priority"], 200, "{d:#}");

    // rvs's adverts (once it is MASTER) have keepalived's shape.
    let ka_shape = advert_shape(&cap, "10.0.0.12");

    let before = rvs.log().matches("(VI_1) Entering MASTER STATE").count();
    let t0 = Instant::now();
    ka.crash();
    lan.b.ip(&["link", "set", &lan.b_if, "down"]);
    let took = master_after(&rvs, before, t0, &|| logs(&rvs, &ka.d));
    crash_takeover(
        "rvs-keepalived",
        "keepalived was killed",
        took,
        DOWN_100,
        &logs(&rvs, &ka.d),
    );
    poll_until(
        Duration::from_secs(5),
        "VIP answered by A",
        &|| logs(&rvs, &ka.d),
        || lan.vip_owner() == "A",
    );
    let cap = capture_vrrp(
        &lan.client,
        &lan.c_if,
        "ip proto 112",
        1,
        Duration::from_secs(4),
    );
    println!("rvs's advert:\n{cap}");
    let rvs_shape = advert_shape(&cap, "10.0.0.11");
    assert!(ka_shape.contains("VRRPv2"), "{ka_shape}");
    assert_eq!(rvs_shape, ka_shape);

    // keepalived back with the higher priority: it preempts rvs.
    // (keepalived, too, removes a VIP left behind when it starts.)
    lan.b.ip(&["link", "set", &lan.b_if, "up"]);
    let mut ka = lan.start_ka(&vrrp_conf(&lan.b_if, 200, "10.0.0.100/24", ""));
    poll_until(
        Duration::from_secs(10),
        "keepalived preempts rvs",
        &|| logs(&rvs, &ka.d),
        || state(&ka.d) == "MASTER" && state(&rvs) == "BACKUP",
    );
    poll_until(
        Duration::from_secs(5),
        "VIP answered by B",
        &|| logs(&rvs, &ka.d),
        || lan.vip_owner() == "B",
    );
    // rvs removed the VIP from its interface.
    let out = lan.a.exec(
        &["ip", "-4", "addr", "show", "dev", &lan.a_if],
        Duration::from_secs(5),
    );
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    assert!(!text.contains(VIP), "{text}");
    assert_eq!(rvs.terminate(), Some(0), "{}", logs(&rvs, &ka.d));
    assert_eq!(ka.terminate(), Some(0), "{}", logs(&rvs, &ka.d));
}

#[test]
fn graceful_stop_hands_over_after_the_skew() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lan = Lan::new(false);
    let mut rvs = lan.start_rvs(&vrrp_conf(&lan.a_if, 200, "10.0.0.100/24", ""), None);
    rvs.wait_log("(VI_1) Entering MASTER STATE", 1, Duration::from_secs(10));
    let mut ka = lan.start_ka(&vrrp_conf(&lan.b_if, 100, "10.0.0.100/24", ""));
    ka.wait_log("(VI_1) Entering BACKUP STATE", 1, Duration::from_secs(10));
    thread::sleep(Duration::from_millis(1500));
    // SIGTERM: rvs sends priority 0; keepalived takes over after its
    // skew (156/256 s) instead of the full down interval.
    let t0 = Instant::now();
    rvs.signal(libc::SIGTERM);
    let took = master_after(&ka.d, 0, t0, &|| logs(&rvs, &ka.d));
    println!("keepalived took over {took:.3} s after rvs-keepalived's priority-0 advert");
    assert!(
        took < 156.0 / 256.0 + 0.4,
        "{took:.3} s\n{}",
        logs(&rvs, &ka.d)
    );
    assert!(
        ka.log()
            .contains("Backup received priority 0 advertisement"),
        "{}",
        logs(&rvs, &ka.d)
    );
    assert_eq!(lan.vip_owner(), "B", "{}", logs(&rvs, &ka.d));
    assert_eq!(ka.terminate(), Some(0), "{}", logs(&rvs, &ka.d));
}

#[test]
fn nopreempt_both_ways() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // keepalived with nopreempt and the higher priority joins an rvs
    // MASTER: it stays BACKUP.
    let lan = Lan::new(false);
    let mut rvs = lan.start_rvs(&vrrp_conf(&lan.a_if, 100, "10.0.0.100/24", ""), None);
    rvs.wait_log("(VI_1) Entering MASTER STATE", 1, Duration::from_secs(10));
    let mut ka = lan.start_ka(&vrrp_conf(&lan.b_if, 200, "10.0.0.100/24", "    nopreempt"));
    ka.wait_log("(VI_1) Entering BACKUP STATE", 1, Duration::from_secs(10));
    thread::sleep(Duration::from_secs_f64(DOWN_200 * 2.0));
    assert_eq!(
        (state(&rvs).as_str(), state(&ka.d).as_str()),
        ("MASTER", "BACKUP"),
        "{}",
        logs(&rvs, &ka.d)
    );
    assert_eq!(lan.vip_owner(), "A", "{}", logs(&rvs, &ka.d));
    assert_eq!(rvs.terminate(), Some(0), "{}", logs(&rvs, &ka.d));
    assert_eq!(ka.terminate(), Some(0), "{}", logs(&rvs, &ka.d));
    drop((rvs, ka));

    // And the reverse: rvs with nopreempt and the higher priority joins
    // a keepalived MASTER.
    let lan = Lan::new(false);
    let mut ka = lan.start_ka(&vrrp_conf(&lan.b_if, 100, "10.0.0.100/24", ""));
    ka.wait_log("(VI_1) Entering MASTER STATE", 1, Duration::from_secs(10));
    let mut rvs = lan.start_rvs(
        &vrrp_conf(&lan.a_if, 200, "10.0.0.100/24", "    nopreempt"),
        None,
    );
    rvs.wait_log("(VI_1) Entering BACKUP STATE", 1, Duration::from_secs(10));
    thread::sleep(Duration::from_secs_f64(DOWN_200 * 2.0));
    assert_eq!(
        (state(&rvs).as_str(), state(&ka.d).as_str()),
        ("BACKUP", "MASTER"),
        "{}",
        logs(&rvs, &ka.d)
    );
    assert_eq!(lan.vip_owner(), "B", "{}", logs(&rvs, &ka.d));
    // Without nopreempt the same start preempts (checked in the other
    // tests); here the MASTER must go away first.
    ka.signal(libc::SIGTERM);
    master_after(&rvs, 0, Instant::now(), &|| logs(&rvs, &ka.d));
    assert_eq!(rvs.terminate(), Some(0), "{}", logs(&rvs, &ka.d));
}

/// rvsd on A's interface (AF_PACKET, TAP with A's address,
/// `announce_vips = false`) with a FullNAT service on the VIP to the
/// backend `10.0.0.21`; returns rvsd, its socket and the TAP.
fn rvsd_on_a(lan: &Lan, conf: &TempFile) -> (Rvsd, PathBuf, String) {
    // Only rvsd answers ARP on the port (the kernel holds the TAP's
    // address).
    sysctl(&lan.a, "net/ipv4/conf/all/arp_ignore", "1");
    let r = start_rvsd_on_a(lan, conf, "10.0.0.11/24", VIP, "10.0.0.31", "10.0.0.21");
    lan.a.ip(&["addr", "add", "10.0.0.11/24", "dev", &r.2]);
    offloads_off(&lan.a, &r.2);
    r
}

/// rvsd on A's interface (AF_PACKET port with a TAP, up, interface
/// address `addr`, `announce_vips = false`) with a TCP FullNAT service
/// `vip`:80 through `laddr` to `real`:80; the port's own kernel
/// addresses are flushed. Returns rvsd, its socket and the TAP.
fn start_rvsd_on_a(
    lan: &Lan,
    conf: &TempFile,
    addr: &str,
    vip: &str,
    laddr: &str,
    real: &str,
) -> (Rvsd, PathBuf, String) {
    lan.a.ip(&["addr", "flush", "dev", &lan.a_if]);
    let tap = unique("tp");
    let socket = lan.dir.file("rvsd.sock");
    let config = format!(
        "[daemon]\nworkers = 1\nannounce_vips = false\n\n\
         [[port]]\nname = \"{port}\"\nbackend = \"af_packet\"\ntap = \"{tap}\"\n\n\
         [[addr]]\naddr = \"{addr}\"\nport = \"{port}\"\n\n\
         [api]\nsocket = \"{sock}\"\nstate = \"{state}\"\n\n[metrics]\nlisten = \"\"\n\n\
         [[service]]\nproto = \"tcp\"\nvip = \"{vip}\"\nport = 80\nscheduler = \"rr\"\n\
         laddrs = [\"{laddr}\"]\n[[service.real]]\naddr = \"{real}\"\nmode = \"fullnat\"\n",
        port = lan.a_if,
        sock = socket.display(),
        state = lan.dir.file("state.json").display(),
    );
    let rvsd = Rvsd::start_with(&lan.a, conf, &config);
    lan.a.ip(&["link", "set", &tap, "up"]);
    (rvsd, socket, tap)
}

fn rvsd_has_vip(socket: &std::path::Path) -> bool {
    rvsd_has(socket, VIP)
}

/// Whether rvsd holds interface address `ip`.
fn rvsd_has(socket: &std::path::Path, ip: &str) -> bool {
    rvsd_addrs(socket).iter().any(|a| a.addr.to_string() == ip)
}

/// An HTTP request from the client to the VIP answered, within three
/// tries (the first after a takeover may wait on neighbour resolution).
fn curl_vip(lan: &Lan) -> bool {
    let url = format!("http://{VIP}/");
    (0..3).any(|_| {
        lan.client
            .exec(
                &["curl", "-sS", "--max-time", "2", &url],
                Duration::from_secs(5),
            )
            .is_ok_and(|o| o.status.success() && !o.stdout.is_empty())
    })
}

#[test]
fn rvsd_mode_both_directions() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lan = Lan::new(false);
    let backend = Netns::new("be");
    backend.disable_ipv6();
    let be_if = lan._seg.attach(&backend, mac(0x0d, 1));
    backend.ip(&["addr", "add", "10.0.0.21/24", "dev", &be_if]);
    let server = HttpServer::start(&backend, "b1", "0.0.0.0:80".parse().unwrap());
    let conf = TempFile::new("toml");
    let (mut rvsd, socket, tap) = rvsd_on_a(&lan, &conf);

    // keepalived MASTER (200); rvs BACKUP (100) on rvsd's port, named
    // by the port (rvs-keepalived finds its TAP through rvsd).
    let mut ka = lan.start_ka(&vrrp_conf(&lan.b_if, 200, "10.0.0.100/24", ""));
    ka.wait_log("(VI_1) Entering MASTER STATE", 1, Duration::from_secs(10));
    let mut rvs = lan.start_rvs(
        &vrrp_conf(&lan.a_if, 100, "10.0.0.100/32", ""),
        Some(&socket),
    );
    rvs.wait_log("(VI_1) Entering BACKUP STATE", 1, Duration::from_secs(10));
    let all = |rvs: &Daemon, ka: &Daemon, rvsd: &Rvsd| {
        format!("{}\n--- rvsd (A):\n{}", logs(rvs, ka), rvsd.log())
    };
    thread::sleep(Duration::from_secs(4));
    assert_eq!(state(&rvs), "BACKUP", "{}", all(&rvs, &ka.d, &rvsd));
    assert!(!rvsd_has_vip(&socket));
    assert_eq!(lan.vip_owner(), "B", "{}", all(&rvs, &ka.d, &rvsd));
    let d = dump(&rvs, &lan.dir);
    let inst = &d["vrrp"]["instances"][0];
    assert_eq!(inst["rvsd_port"], lan.a_if.as_str(), "{d:#}");
    assert_eq!(inst["interface"], tap.as_str(), "{d:#}");
    assert!(inst["adverts_received"].as_u64().unwrap_or(0) >= 3, "{d:#}");
    assert_eq!(inst["adverts_rejected"], serde_json::json!({}), "{d:#}");

    // keepalived's node dies: rvs takes over through rvsd.
    let t0 = Instant::now();
    ka.crash();
    lan.b.ip(&["link", "set", &lan.b_if, "down"]);
    let took = master_after(&rvs, 0, t0, &|| all(&rvs, &ka.d, &rvsd));
    crash_takeover(
        "rvs-keepalived (rvsd mode)",
        "keepalived was killed",
        took,
        DOWN_100,
        &all(&rvs, &ka.d, &rvsd),
    );
    poll_until(
        Duration::from_secs(2),
        "VIP in rvsd",
        &|| all(&rvs, &ka.d, &rvsd),
        || rvsd_has_vip(&socket),
    );
    poll_until(
        Duration::from_secs(5),
        "VIP answered by A",
        &|| all(&rvs, &ka.d, &rvsd),
        || lan.vip_owner() == "A",
    );
    assert!(
        curl_vip(&lan),
        "request through rvsd\n{}",
        all(&rvs, &ka.d, &rvsd)
    );
    assert!(server.count() > 0);
    // rvs's adverts leave through the TAP and rvsd's port.
    let cap = capture_vrrp(
        &lan.client,
        &lan.c_if,
        "ip proto 112",
        2,
        Duration::from_secs(5),
    );
    println!("rvs adverts through rvsd:\n{cap}");
    assert_eq!(
        cap.matches("10.0.0.11 > 224.0.0.18: VRRPv2, Advertisement, vrid 51, prio 100")
            .count(),
        2,
        "{cap}"
    );
    assert!(cap.contains("tos 0xc0, ttl 255"), "{cap}");

    // keepalived comes back with the higher priority and preempts: rvs
    // removes the VIP from rvsd.
    lan.b.ip(&["link", "set", &lan.b_if, "up"]);
    let ka = lan.start_ka(&vrrp_conf(&lan.b_if, 200, "10.0.0.100/24", ""));
    poll_until(
        Duration::from_secs(10),
        "keepalived preempts",
        &|| all(&rvs, &ka.d, &rvsd),
        || state(&ka) == "MASTER" && state(&rvs) == "BACKUP",
    );
    poll_until(
        Duration::from_secs(2),
        "VIP out of rvsd",
        &|| all(&rvs, &ka.d, &rvsd),
        || !rvsd_has_vip(&socket),
    );
    poll_until(
        Duration::from_secs(5),
        "VIP answered by B",
        &|| all(&rvs, &ka.d, &rvsd),
        || lan.vip_owner() == "B",
    );

    // keepalived stops (priority 0): rvs is MASTER after its skew; a
    // lower keepalived then joins and stays BACKUP, accepting rvs's
    // adverts that went through rvsd.
    let t0 = Instant::now();
    ka.signal(libc::SIGTERM);
    let took = master_after(&rvs, 1, t0, &|| all(&rvs, &ka.d, &rvsd));
    println!(
        "rvs-keepalived (rvsd mode) took over {took:.3} s after keepalived's priority-0 advert"
    );
    assert!(
        took < 156.0 / 256.0 + 0.5,
        "{took:.3} s\n{}",
        all(&rvs, &ka.d, &rvsd)
    );
    let mut ka = lan.start_ka(&vrrp_conf(&lan.b_if, 50, "10.0.0.100/24", ""));
    ka.wait_log("(VI_1) Entering BACKUP STATE", 1, Duration::from_secs(10));
    thread::sleep(Duration::from_secs(5));
    assert_eq!(
        (state(&rvs).as_str(), state(&ka).as_str()),
        ("MASTER", "BACKUP"),
        "{}",
        all(&rvs, &ka.d, &rvsd)
    );
    assert!(
        ka_complaints(&ka.log()).is_empty(),
        "{}",
        all(&rvs, &ka.d, &rvsd)
    );
    assert!(rvsd_has_vip(&socket));
    assert_eq!(lan.vip_owner(), "A", "{}", all(&rvs, &ka.d, &rvsd));
    assert!(
        curl_vip(&lan),
        "request through rvsd\n{}",
        all(&rvs, &ka.d, &rvsd)
    );

    // rvs-keepalived stops: the VIP leaves rvsd.
    assert_eq!(rvs.terminate(), Some(0), "{}", all(&rvs, &ka.d, &rvsd));
    assert!(!rvsd_has_vip(&socket));
    ka.wait_log("(VI_1) Entering MASTER STATE", 1, Duration::from_secs(5));
    assert_eq!(ka.terminate(), Some(0));
    rvsd.stop();
}

/// A VRRPv3 instance (no authentication: v3 has none) with `extra`
/// lines, as [`vrrp_conf`] otherwise.
fn v3_conf(iface: &str, priority: u8, vip: &str, extra: &str) -> String {
    let v2 = vrrp_conf(iface, priority, vip, extra);
    let auth_start = v2.find("    authentication").expect("auth block");
    let auth_end = v2[auth_start..].find("}\n").expect("auth end") + auth_start + 2;
    format!("{}    version 3\n{}", &v2[..auth_start], &v2[auth_end..])
}

/// The MAC the client's neighbour cache holds for `ip` after a fresh
/// ping (IPv6: after neighbour discovery).
fn nd_owner(lan: &Lan, ip: &str) -> &'static str {
    let _ = lan.client.exec(
        &["ip", "-6", "neigh", "flush", "dev", &lan.c_if],
        Duration::from_secs(5),
    );
    let _ = lan.client.exec(
        &["ping", "-6", "-c", "1", "-W", "1", ip],
        Duration::from_secs(5),
    );
    let out = lan
        .client
        .exec(
            &["ip", "-6", "neigh", "show", ip, "dev", &lan.c_if],
            Duration::from_secs(5),
        )
        .map(|o| String::from_utf8_lossy(&o.stdout).to_ascii_lowercase())
        .unwrap_or_default();
    if out.contains(&mac_str(A_MAC)) {
        "A"
    } else if out.contains(&mac_str(B_MAC)) {
        "B"
    } else {
        "-"
    }
}

#[test]
fn v3_ipv6_both_ways() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lan = Lan::new(true);
    let vip = "fd00::100/64";
    let mut ka = lan.start_ka(&v3_conf(&lan.b_if, 100, vip, ""));
    ka.wait_log("(VI_1) Entering BACKUP STATE", 1, Duration::from_secs(10));
    let mut rvs = lan.start_rvs(&v3_conf(&lan.a_if, 200, vip, ""), None);
    poll_until(
        Duration::from_secs(15),
        "rvs MASTER, keepalived BACKUP",
        &|| logs(&rvs, &ka.d),
        || state(&rvs) == "MASTER" && state(&ka.d) == "BACKUP",
    );
    let cap = capture_vrrp(
        &lan.client,
        &lan.c_if,
        "ip6 proto 112",
        2,
        Duration::from_secs(5),
    );
    println!("rvs's VRRPv3 IPv6 adverts:\n{cap}");
    assert_eq!(cap.matches("> ff02::12: VRRPv3, Advertisement, vrid 51, prio 200, intvl 100cs, length 24, addrs: fd00::100").count(), 2, "{cap}");
    assert!(cap.contains("hlim 255"), "{cap}");
    let rvs_shape = advert_shape6(&cap);
    thread::sleep(Duration::from_secs(2));
    assert_eq!(state(&ka.d), "BACKUP", "{}", logs(&rvs, &ka.d));
    assert!(ka_complaints(&ka.log()).is_empty(), "{}", logs(&rvs, &ka.d));
    assert_eq!(nd_owner(&lan, "fd00::100"), "A", "{}", logs(&rvs, &ka.d));

    // rvs dies: keepalived takes over; then rvs, back with priority 50,
    // stays BACKUP and accepts keepalived's adverts.
    let t0 = Instant::now();
    rvs.kill();
    lan.a.ip(&["link", "set", &lan.a_if, "down"]);
    let took = master_after(&ka.d, 0, t0, &|| logs(&rvs, &ka.d));
    crash_takeover(
        "keepalived (v3, IPv6)",
        "rvs-keepalived was killed",
        took,
        DOWN_100,
        &logs(&rvs, &ka.d),
    );
    let cap = capture_vrrp(
        &lan.client,
        &lan.c_if,
        "ip6 proto 112",
        1,
        Duration::from_secs(4),
    );
    println!("keepalived's VRRPv3 IPv6 advert:\n{cap}");
    assert_eq!(
        advert_shape6(&cap).replace("prio 100", "prio 200"),
        rvs_shape
    );
    lan.a.ip(&["link", "set", &lan.a_if, "up"]);
    let mut rvs = lan.start_rvs(&v3_conf(&lan.a_if, 50, vip, ""), None);
    rvs.wait_log("(VI_1) Entering BACKUP STATE", 1, Duration::from_secs(10));
    thread::sleep(Duration::from_secs(4));
    assert_eq!(
        (state(&rvs).as_str(), state(&ka.d).as_str()),
        ("BACKUP", "MASTER"),
        "{}",
        logs(&rvs, &ka.d)
    );
    let d = dump(&rvs, &lan.dir);
    let inst = &d["vrrp"]["instances"][0];
    assert!(inst["adverts_received"].as_u64().unwrap_or(0) >= 3, "{d:#}");
    assert_eq!(inst["adverts_rejected"], serde_json::json!({}), "{d:#}");
    assert_eq!(nd_owner(&lan, "fd00::100"), "B", "{}", logs(&rvs, &ka.d));
    assert_eq!(rvs.terminate(), Some(0), "{}", logs(&rvs, &ka.d));
    assert_eq!(ka.terminate(), Some(0), "{}", logs(&rvs, &ka.d));
}

/// The first IPv6 VRRP packet of a capture (one line: header, then
/// `SRC > DST: VRRPv3 ...`) without timestamp, flow label, source and
/// priority.
fn advert_shape6(cap: &str) -> String {
    let Some(line) = cap.lines().find(|l| l.contains("VRRPv3")) else {
        return String::new();
    };
    let line = line.split_once(" IP6 ").map_or(line, |(_, r)| r);
    let (head, rest) = line.split_once(") ").unwrap_or((line, ""));
    let rest = rest.split_once(" > ").map_or(rest, |(_, r)| r);
    format!("{head}) {rest}")
        .split(", ")
        .filter(|f| !f.starts_with("flowlabel ") && !f.starts_with("prio "))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn v3_ipv4_backup_learns_the_masters_interval() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lan = Lan::new(false);
    let mut ka = lan.start_ka(&v3_conf(
        &lan.b_if,
        200,
        "10.0.0.100/24",
        "    advert_int 0.5",
    ));
    ka.wait_log("(VI_1) Entering MASTER STATE", 1, Duration::from_secs(10));
    let mut rvs = lan.start_rvs(&v3_conf(&lan.a_if, 100, "10.0.0.100/24", ""), None);
    rvs.wait_log("(VI_1) Entering BACKUP STATE", 1, Duration::from_secs(10));
    thread::sleep(Duration::from_secs(3));
    let d = dump(&rvs, &lan.dir);
    let inst = &d["vrrp"]["instances"][0];
    assert_eq!(inst["state"], "BACKUP", "{d:#}");
    assert_eq!(inst["master_adver_int_ms"], 500, "{d:#}");
    assert_eq!(inst["adverts_rejected"], serde_json::json!({}), "{d:#}");
    // Down interval from the learnt 0.5 s: 3 × 0.5 + 156/256 × 0.5.
    let bound = 1.5 + 156.0 / 256.0 * 0.5;
    let t0 = Instant::now();
    ka.crash();
    lan.b.ip(&["link", "set", &lan.b_if, "down"]);
    let took = master_after(&rvs, 0, t0, &|| logs(&rvs, &ka.d));
    println!(
        "rvs-keepalived (v3, learnt 50 cs) took over {took:.3} s after keepalived was killed (bound {bound:.3} s)"
    );
    assert!(
        took > bound - 0.6 && took < bound + 0.3,
        "{took:.3} s\n{}",
        logs(&rvs, &ka.d)
    );
    assert_eq!(lan.vip_owner(), "A", "{}", logs(&rvs, &ka.d));
    assert_eq!(rvs.terminate(), Some(0), "{}", logs(&rvs, &ka.d));
}

#[test]
fn unicast_peers_v2_and_v3() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for v3 in [false, true] {
        let lan = Lan::new(false);
        let peer = |src: &str, dst: &str| {
            format!("    unicast_src_ip {src}\n    unicast_peer {{\n        {dst}\n    }}")
        };
        let conf = |iface: &str, prio: u8, extra: &str| {
            if v3 {
                v3_conf(iface, prio, "10.0.0.100/24", extra)
            } else {
                vrrp_conf(iface, prio, "10.0.0.100/24", extra)
            }
        };
        let mut ka = lan.start_ka(&conf(&lan.b_if, 100, &peer("10.0.0.12", "10.0.0.11")));
        ka.wait_log("(VI_1) Entering BACKUP STATE", 1, Duration::from_secs(10));
        let mut rvs = lan.start_rvs(&conf(&lan.a_if, 200, &peer("10.0.0.11", "10.0.0.12")), None);
        poll_until(
            Duration::from_secs(15),
            "rvs MASTER, keepalived BACKUP",
            &|| logs(&rvs, &ka.d),
            || state(&rvs) == "MASTER" && state(&ka.d) == "BACKUP",
        );
        // Adverts go to the peer only, with a checksum over the unicast
        // destination (v3) that keepalived accepts.
        let cap = capture_vrrp(&lan.b, &lan.b_if, "ip proto 112", 2, Duration::from_secs(5));
        println!("rvs's unicast adverts (v3 {v3}):\n{cap}");
        let want = if v3 {
            "10.0.0.11 > 10.0.0.12: VRRPv3, Advertisement, vrid 51, prio 200"
        } else {
            "10.0.0.11 > 10.0.0.12: VRRPv2, Advertisement, vrid 51, prio 200"
        };
        assert_eq!(cap.matches(want).count(), 2, "{cap}");
        thread::sleep(Duration::from_secs(2));
        assert_eq!(state(&ka.d), "BACKUP", "{}", logs(&rvs, &ka.d));
        assert!(ka_complaints(&ka.log()).is_empty(), "{}", logs(&rvs, &ka.d));
        assert_eq!(lan.vip_owner(), "A", "{}", logs(&rvs, &ka.d));
        // Graceful stop: keepalived takes over after the skew; rvs then
        // rejoins with a lower priority and accepts keepalived's unicast
        // adverts.
        let t0 = Instant::now();
        assert_eq!(rvs.terminate(), Some(0), "{}", logs(&rvs, &ka.d));
        let took = master_after(&ka.d, 0, t0, &|| logs(&rvs, &ka.d));
        println!(
            "keepalived took over {took:.3} s after rvs-keepalived stopped (unicast, v3 {v3})"
        );
        assert!(took < 1.2, "{took:.3} s\n{}", logs(&rvs, &ka.d));
        let mut rvs = lan.start_rvs(&conf(&lan.a_if, 50, &peer("10.0.0.11", "10.0.0.12")), None);
        rvs.wait_log("(VI_1) Entering BACKUP STATE", 1, Duration::from_secs(10));
        thread::sleep(Duration::from_secs(4));
        let d = dump(&rvs, &lan.dir);
        let inst = &d["vrrp"]["instances"][0];
        assert_eq!(inst["state"], "BACKUP", "{d:#}\n{}", logs(&rvs, &ka.d));
        assert!(inst["adverts_received"].as_u64().unwrap_or(0) >= 3, "{d:#}");
        assert_eq!(inst["adverts_rejected"], serde_json::json!({}), "{d:#}");
        assert_eq!(rvs.terminate(), Some(0), "{}", logs(&rvs, &ka.d));
        assert_eq!(ka.terminate(), Some(0), "{}", logs(&rvs, &ka.d));
    }
}

#[test]
fn track_script_and_reload_move_the_master() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lan = Lan::new(false);
    let flag = lan.dir.write("healthy", "");
    let script = format!(
        "vrrp_script chk {{\n    script \"test -e {}\"\n    interval 1\n    weight -150\n}}\n",
        flag.display()
    );
    let rvs_conf = |prio: u8, with_instance: bool| {
        let inst = vrrp_conf(
            &lan.a_if,
            prio,
            "10.0.0.100/24",
            "    track_script {\n        chk\n    }",
        );
        if with_instance {
            format!("{script}{inst}")
        } else {
            format!("{script}global_defs {{\n    router_id gone\n}}\n")
        }
    };
    let path = lan.dir.write("rvs-reload.conf", &rvs_conf(200, true));
    let none = lan.dir.file("no-rvsd.sock");
    let mut rvs = rvs_keepalived(&lan.a, &lan.dir, &path, &none, &["-P"]);
    rvs.wait_log("(VI_1) Entering MASTER STATE", 1, Duration::from_secs(10));
    let mut ka = lan.start_ka(&vrrp_conf(&lan.b_if, 100, "10.0.0.100/24", ""));
    ka.wait_log("(VI_1) Entering BACKUP STATE", 1, Duration::from_secs(10));
    let l = |rvs: &Daemon, ka: &Ka| logs(rvs, &ka.d);
    let masters = |want: (&str, &str), rvs: &Daemon, ka: &Ka| {
        poll_until(
            Duration::from_secs(10),
            &format!("{want:?}"),
            &|| l(rvs, ka),
            || (state(rvs).as_str(), state(&ka.d).as_str()) == want,
        )
    };

    // The script fails: 200 − 150 = 50 < 100, keepalived preempts.
    std::fs::remove_file(&flag).unwrap();
    let took = masters(("BACKUP", "MASTER"), &rvs, &ka);
    println!(
        "script failed: keepalived MASTER after {:.2} s",
        took.as_secs_f64()
    );
    let d = dump(&rvs, &lan.dir);
    assert_eq!(d["vrrp"]["instances"][0]["priority"], 50, "{d:#}");
    assert_eq!(lan.vip_owner(), "B", "{}", l(&rvs, &ka));
    // It passes again: rvs preempts back.
    std::fs::write(&flag, "").unwrap();
    masters(("MASTER", "BACKUP"), &rvs, &ka);
    assert_eq!(lan.vip_owner(), "A", "{}", l(&rvs, &ka));

    // Reload with priority 60: applied in place (the instance is not
    // restarted), keepalived preempts.
    let starts = rvs.log().matches("(VI_1) on ").count();
    std::fs::write(&path, rvs_conf(60, true)).unwrap();
    rvs.signal(libc::SIGHUP);
    masters(("BACKUP", "MASTER"), &rvs, &ka);
    let d = dump(&rvs, &lan.dir);
    assert_eq!(d["vrrp"]["instances"][0]["priority"], 60, "{d:#}");
    assert_eq!(
        rvs.log().matches("(VI_1) on ").count(),
        starts,
        "{}",
        l(&rvs, &ka)
    );
    // Back to 200: rvs preempts.
    std::fs::write(&path, rvs_conf(200, true)).unwrap();
    rvs.signal(libc::SIGHUP);
    masters(("MASTER", "BACKUP"), &rvs, &ka);
    // The instance removed by a reload stops as on shutdown: priority 0,
    // keepalived takes over after its skew, the VIP leaves A.
    std::fs::write(&path, rvs_conf(200, false)).unwrap();
    let before = ka.log().matches("(VI_1) Entering MASTER STATE").count();
    let t0 = Instant::now();
    rvs.signal(libc::SIGHUP);
    let took = master_after(&ka.d, before, t0, &|| l(&rvs, &ka));
    println!("instance removed by reload: keepalived MASTER after {took:.3} s");
    assert!(took < 1.5, "{took:.3} s\n{}", l(&rvs, &ka));
    assert_eq!(state(&rvs), "STOP", "{}", l(&rvs, &ka));
    assert_eq!(lan.vip_owner(), "B", "{}", l(&rvs, &ka));
    assert!(rvs.alive());
    assert_eq!(rvs.terminate(), Some(0), "{}", l(&rvs, &ka));
    assert_eq!(ka.terminate(), Some(0), "{}", l(&rvs, &ka));
}

// ---- VRRPv3 over IPv6 through rvsd ----

/// The IPv6 VIP of the rvsd-mode v3 test.
const VIP6: &str = "fd00::100";
/// 3 × advert_int + skew of priority 50 (206/256 s).
const DOWN_50: f64 = 3.0 + 206.0 / 256.0;

/// The IPv6 link-local address of `dev` in `ns` (waits, bounded, for
/// the kernel to give it one).
fn link_local(ns: &Netns, dev: &str) -> String {
    let show = || {
        ns.exec(
            &[
                "ip", "-6", "-o", "addr", "show", "dev", dev, "scope", "link",
            ],
            Duration::from_secs(5),
        )
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
    };
    let mut ll = String::new();
    poll_until(
        Duration::from_secs(5),
        &format!("link-local address on {dev}"),
        &show,
        || {
            let out = show();
            ll = out
                .split_whitespace()
                .skip_while(|w| *w != "inet6")
                .nth(1)
                .and_then(|a| a.split('/').next())
                .unwrap_or_default()
                .to_string();
            !ll.is_empty() && !out.contains("tentative")
        },
    );
    ll
}

/// `curl -6` from the client to the IPv6 VIP answered by the backend,
/// within three tries; returns the body.
fn curl_vip6(lan: &Lan) -> Option<String> {
    let url = format!("http://[{VIP6}]/");
    (0..3).find_map(|_| {
        lan.client
            .exec(
                &["curl", "-6", "-g", "-sS", "--max-time", "2", &url],
                Duration::from_secs(5),
            )
            .ok()
            .filter(|o| o.status.success() && !o.stdout.is_empty())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    })
}

/// VRRPv3 over IPv6 with rvsd on A (AF_PACKET port + TAP,
/// `announce_vips = false`, an IPv6 FullNAT service on the VIP) against
/// keepalived: rvs's adverts leave from the TAP's link-local address
/// through rvsd, keepalived's reach the TAP through rvsd; the MASTER
/// answers the client's neighbour solicitation for the VIP and the
/// client's `curl -6` reaches the backend through rvs; failover both
/// ways within 3 × advert + skew.
#[test]
fn rvsd_mode_v3_ipv6_both_directions() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lan = Lan::new(true);
    let backend = Netns::new("be");
    for conf in ["all", "default"] {
        sysctl(&backend, &format!("net/ipv6/conf/{conf}/accept_dad"), "0");
    }
    let be_if = lan._seg.attach(&backend, mac(0x0d, 1));
    backend.ip(&["addr", "add", "fd00::21/64", "dev", &be_if, "nodad"]);
    let server = HttpServer::start(&backend, "b1", "[::]:80".parse().unwrap());
    let conf = TempFile::new("toml");
    // The kernel keeps no IPv6 on the port: only the TAP speaks for A.
    sysctl(
        &lan.a,
        &format!("net/ipv6/conf/{}/disable_ipv6", lan.a_if),
        "1",
    );
    // The TAP's link-local goes through duplicate address detection, as
    // on a real host (its solicitation must not be answered by rvsd).
    for conf in ["all", "default"] {
        sysctl(&lan.a, &format!("net/ipv6/conf/{conf}/accept_dad"), "1");
    }
    let (mut rvsd, socket, tap) =
        start_rvsd_on_a(&lan, &conf, "fd00::11/64", VIP6, "fd00::31", "fd00::21");
    offloads_off(&lan.a, &tap);
    let tap_ll = link_local(&lan.a, &tap);
    let vip = format!("{VIP6}/64");
    let all = |rvs: &Daemon, ka: &Daemon, rvsd: &Rvsd| {
        format!("{}\n--- rvsd (A):\n{}", logs(rvs, ka), rvsd.log())
    };

    // keepalived MASTER (200), rvs BACKUP (100) on rvsd's port.
    let mut ka = lan.start_ka(&v3_conf(&lan.b_if, 200, &vip, ""));
    ka.wait_log("(VI_1) Entering MASTER STATE", 1, Duration::from_secs(10));
    let mut rvs = lan.start_rvs(&v3_conf(&lan.a_if, 100, &vip, ""), Some(&socket));
    rvs.wait_log("(VI_1) Entering BACKUP STATE", 1, Duration::from_secs(10));
    thread::sleep(Duration::from_secs(4));
    assert_eq!(state(&rvs), "BACKUP", "{}", all(&rvs, &ka.d, &rvsd));
    assert!(!rvsd_has(&socket, VIP6));
    assert_eq!(nd_owner(&lan, VIP6), "B", "{}", all(&rvs, &ka.d, &rvsd));
    let d = dump(&rvs, &lan.dir);
    let inst = &d["vrrp"]["instances"][0];
    assert_eq!(inst["rvsd_port"], lan.a_if.as_str(), "{d:#}");
    assert_eq!(inst["interface"], tap.as_str(), "{d:#}");
    assert_eq!(inst["source"], tap_ll.as_str(), "{d:#}");
    assert!(inst["adverts_received"].as_u64().unwrap_or(0) >= 3, "{d:#}");
    assert_eq!(inst["adverts_rejected"], serde_json::json!({}), "{d:#}");

    // keepalived's node dies: rvs takes over through rvsd. The client
    // watches the neighbour advertisements meanwhile.
    let (took, nas) = thread::scope(|s| {
        let watch = s.spawn(|| {
            capture_vrrp(
                &lan.client,
                &lan.c_if,
                "icmp6 and ip6[40] == 136",
                6,
                Duration::from_secs(8),
            )
        });
        thread::sleep(Duration::from_millis(300));
        let t0 = Instant::now();
        ka.crash();
        lan.b.ip(&["link", "set", &lan.b_if, "down"]);
        let took = master_after(&rvs, 0, t0, &|| all(&rvs, &ka.d, &rvsd));
        (took, watch.join().unwrap_or_default())
    });
    println!(
        "rvs-keepalived (rvsd mode, v3 IPv6) took over {took:.3} s after keepalived was killed (bound {DOWN_100:.3} s)"
    );
    // rvs-keepalived's burst of unsolicited NAs (garp_master_repeat 5,
    // sent on the TAP) leaves through rvsd, besides rvsd's own.
    println!("neighbour advertisements at the takeover:\n{nas}");
    let burst = nas
        .lines()
        .filter(|l| {
            l.contains(&format!("{tap_ll} > ff02::1:"))
                && l.contains("neighbor advertisement")
                && l.contains(&format!("tgt is {VIP6}"))
        })
        .count();
    assert_eq!(burst, 5, "{nas}\n{}", all(&rvs, &ka.d, &rvsd));
    assert!(
        took > DOWN_100 - 1.1 && took < DOWN_100 + 0.3,
        "{took:.3} s\n{}",
        all(&rvs, &ka.d, &rvsd)
    );
    poll_until(
        Duration::from_secs(2),
        "VIP in rvsd",
        &|| all(&rvs, &ka.d, &rvsd),
        || rvsd_has(&socket, VIP6),
    );
    poll_until(
        Duration::from_secs(5),
        "VIP's neighbour solicitation answered by A",
        &|| all(&rvs, &ka.d, &rvsd),
        || nd_owner(&lan, VIP6) == "A",
    );
    let body = curl_vip6(&lan);
    assert_eq!(
        body.as_deref(),
        Some("b1 fd00::31\n"),
        "curl -6 through rvsd\n{}",
        all(&rvs, &ka.d, &rvsd)
    );
    assert!(server.count() > 0);
    // rvs's adverts leave from the TAP's link-local through rvsd's port.
    let cap = capture_vrrp(
        &lan.client,
        &lan.c_if,
        "ip6 proto 112",
        2,
        Duration::from_secs(5),
    );
    println!("rvs's VRRPv3 IPv6 adverts through rvsd:\n{cap}");
    let want = format!(
        "{tap_ll} > ff02::12: VRRPv3, Advertisement, vrid 51, prio 100, intvl 100cs, length 24, addrs: {VIP6}"
    );
    assert_eq!(cap.matches(&want).count(), 2, "{cap}");
    assert!(cap.contains("hlim 255"), "{cap}");

    // keepalived comes back with priority 50: it stays BACKUP, accepting
    // rvs's adverts that went through rvsd.
    lan.b.ip(&["link", "set", &lan.b_if, "up"]);
    let mut ka = lan.start_ka(&v3_conf(&lan.b_if, 50, &vip, ""));
    ka.wait_log("(VI_1) Entering BACKUP STATE", 1, Duration::from_secs(10));
    thread::sleep(Duration::from_secs(5));
    assert_eq!(
        (state(&rvs).as_str(), state(&ka).as_str()),
        ("MASTER", "BACKUP"),
        "{}",
        all(&rvs, &ka.d, &rvsd)
    );
    assert!(
        ka_complaints(&ka.log()).is_empty(),
        "{}",
        all(&rvs, &ka.d, &rvsd)
    );

    // The rvs node dies (rvs-keepalived and rvsd killed, its port
    // down): keepalived takes over.
    let t0 = Instant::now();
    rvs.kill();
    let _ = rvsd.child.kill();
    let _ = rvsd.child.wait();
    lan.a.ip(&["link", "set", &lan.a_if, "down"]);
    let took = master_after(&ka, 0, t0, &|| all(&rvs, &ka.d, &rvsd));
    crash_takeover(
        "keepalived (v3 IPv6)",
        "the rvsd node was killed",
        took,
        DOWN_50,
        &all(&rvs, &ka.d, &rvsd),
    );
    assert_eq!(nd_owner(&lan, VIP6), "B", "{}", all(&rvs, &ka.d, &rvsd));
    assert_eq!(ka.terminate(), Some(0), "{}", all(&rvs, &ka.d, &rvsd));
}
