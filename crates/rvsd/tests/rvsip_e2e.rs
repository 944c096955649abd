//! rvsip against a running rvsd (run as root), with real traffic: one L2
//! segment of macvlans (`Segment`) joins the lb (rvsd's only port, AF_PACKET,
//! no address at start), a client `10.0.0.2/24` and a gateway `10.0.0.3/24`
//! that owns `10.9.0.5` and `10.8.0.5` on its loopback. The client routes
//! `10.9.0.0/24` and `10.8.0.0/24` via rvs's `10.0.0.1`.
//!
//! Everything is done with the built `rvsip` binary over rvsd's API socket:
//! - `addr add 10.0.0.1/24` → a gratuitous ARP on the segment and ping
//!   answered (not before); `addr show` lists it;
//! - `route add 10.9.0.0/24 via 10.0.0.3` → ping 10.9.0.5 answered by the
//!   gateway, and a capture at the gateway sees the echo requests from rvs's
//!   MAC to its own (not before the route);
//! - `neigh show` lists the client and the gateway with their MACs; a static
//!   neighbour (`neigh add 10.0.0.77 lladdr GW-MAC`) carries a route via an
//!   address nobody answers ARP for, shown PERMANENT;
//! - `link show -s` counters grow with a ping run;
//! - refusals (bad prefix length, unknown dev, host bits, duplicate route,
//!   absent address/route/neighbour, connected route, gateway on no
//!   network, multicast MAC) exit non-zero with one line and change neither
//!   the listings nor the state file; each change and refusal is logged;
//! - a restart restores addresses, routes and neighbours from the state
//!   file (ping and the routed ping answered again);
//! - `neigh del` + `route del` and `addr del` → no longer answered.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::Duration;

use common::harness::{Capture, Rvsd, Segment, TempFile, mac, sibling_bin, sysctl};
use common::{Netns, TIMEOUT, mac_str, run_with_timeout, unique};

struct Ip {
    bin: PathBuf,
    socket: String,
}

struct Ran {
    code: i32,
    out: String,
    err: String,
}

impl Ip {
    fn run(&self, args: &str) -> Ran {
        let out = run_with_timeout(
            Command::new(&self.bin)
                .args(args.split_whitespace())
                .env("RVS_SOCKET", &self.socket),
            TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("rvsip {args}: {e}"));
        Ran {
            code: out.status.code().unwrap_or(-1),
            out: String::from_utf8_lossy(&out.stdout).into_owned(),
            err: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn ok(&self, args: &str) -> String {
        let r = self.run(args);
        assert_eq!(r.code, 0, "rvsip {args}: {}", r.err);
        assert!(r.err.is_empty(), "rvsip {args}: {}", r.err);
        r.out
    }
}

/// `ping -c N` from `ns`; true if answered at least once.
fn ping(ns: &Netns, dst: &str, count: u32) -> bool {
    let c = count.to_string();
    ns.exec(
        &["ping", "-n", "-q", "-c", &c, "-i", "0.2", "-W", "1", dst],
        TIMEOUT,
    )
    .expect("ping")
    .status
    .success()
}

/// The numbers of the row after the header row starting with `head` in
/// `link show -s` output.
fn stats_row(text: &str, head: &str) -> Vec<u64> {
    let lines: Vec<&str> = text.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.trim_start().starts_with(head))
        .unwrap_or_else(|| panic!("no {head} row in\n{text}"));
    lines[i + 1]
        .split_whitespace()
        .map(|n| n.parse().expect("counter"))
        .collect()
}

fn ipv4_at(f: &[u8], off: usize) -> [u8; 4] {
    [f[off], f[off + 1], f[off + 2], f[off + 3]]
}

#[test]
fn rvsip_drives_addresses_routes_neighbours_and_links() {
    let bin = sibling_bin("rvsip");
    let (lb, client, gw) = (Netns::new("lb"), Netns::new("cl"), Netns::new("gw"));
    for ns in [&lb, &client, &gw] {
        ns.disable_ipv6();
    }
    let seg = Segment::new();
    let (lb_mac, cl_mac, gw_mac) = (mac(0, 2), mac(0, 1), mac(0, 3));
    let port = seg.attach(&lb, lb_mac);
    let cl_if = seg.attach(&client, cl_mac);
    let gw_if = seg.attach(&gw, gw_mac);
    client.ip(&["addr", "add", "10.0.0.2/24", "dev", &cl_if]);
    client.ip(&["route", "add", "10.9.0.0/24", "via", "10.0.0.1"]);
    client.ip(&["route", "add", "10.8.0.0/24", "via", "10.0.0.1"]);
    gw.ip(&["addr", "add", "10.0.0.3/24", "dev", &gw_if]);
    gw.ip(&["addr", "add", "10.9.0.5/32", "dev", "lo"]);
    gw.ip(&["addr", "add", "10.8.0.5/32", "dev", "lo"]);
    // The gateway answers ARP only for its segment address: 10.9.0.5 and
    // 10.8.0.5 are reachable through it, never on-link.
    sysctl(&gw, "net/ipv4/conf/all/arp_ignore", "1");

    let tag = unique("ip");
    let dir = format!("/tmp/rvs-e2e-{tag}");
    let socket = format!("{dir}/rvsd.sock");
    let state = format!("{dir}/state.json");
    let _cleanup = DirGuard(dir.clone());
    let cfg = TempFile::new("toml");
    let config = format!(
        "[api]\nsocket = \"{socket}\"\nstate = \"{state}\"\n\n[metrics]\nlisten = \"\"\n\n\
         [daemon]\nworkers = 1\ntick_ms = 10\n\n\
         [[port]]\nname = \"{port}\"\nbackend = \"af_packet\"\n"
    );
    let mut rvsd = Rvsd::start_with(&lb, &cfg, &config);
    let ip = Ip {
        bin,
        socket: socket.clone(),
    };

    // The port, no address.
    let links = ip.ok("link show");
    assert!(
        links.starts_with(&format!(
            "1: {port}: backend af_packet mtu 1500 rx-queue 1 tx-queue 1\n"
        )),
        "{links}"
    );
    assert!(
        links.contains(&format!("    addr {}\n", mac_str(lb_mac))),
        "{links}"
    );
    assert_eq!(ip.ok("addr show"), "");
    assert_eq!(ip.ok("route show"), "");
    assert!(!ping(&client, "10.0.0.1", 1), "answered before addr add");

    // addr add: announced, then answered.
    let cap = Capture::start(&client, &cl_if);
    ip.ok(&format!("addr add 10.0.0.1/24 dev {port}"));
    thread::sleep(Duration::from_millis(300));
    let frames = cap.finish();
    let garp = frames.iter().any(|f| {
        f.len() >= 42
            && f[6..12] == lb_mac
            && f[12..14] == [0x08, 0x06]
            && ipv4_at(f, 28) == [10, 0, 0, 1]
            && ipv4_at(f, 38) == [10, 0, 0, 1]
    });
    assert!(garp, "no gratuitous ARP for 10.0.0.1 from rvs");
    // The client asks afresh (its entry may have come from the announcement),
    // so that rvs learns it from its request.
    client.ip(&["neigh", "flush", "dev", &cl_if]);
    if !ping(&client, "10.0.0.1", 3) {
        rvsd.fail("ping 10.0.0.1 not answered after addr add");
    }
    assert_eq!(
        ip.ok("addr show"),
        format!(
            "inet 10.0.0.1/24 scope global {port}\n    valid_lft forever preferred_lft forever\n"
        )
    );
    assert_eq!(ip.ok(&format!("addr show dev {port}")), ip.ok("addr show"));

    // route add: the gateway gets the traffic (and answers it).
    assert!(!ping(&client, "10.9.0.5", 1), "routed before route add");
    ip.ok(&format!("route add 10.9.0.0/24 via 10.0.0.3 dev {port}"));
    let cap = Capture::start(&gw, &gw_if);
    if !ping(&client, "10.9.0.5", 3) {
        rvsd.fail("ping 10.9.0.5 not answered through the gateway");
    }
    let frames = cap.finish();
    let via_rvs = frames
        .iter()
        .filter(|f| {
            f.len() >= 34
                && f[0..6] == gw_mac
                && f[6..12] == lb_mac
                && f[12..14] == [0x08, 0x00]
                && f[23] == 1
                && ipv4_at(f, 30) == [10, 9, 0, 5]
        })
        .count();
    assert!(
        via_rvs >= 2,
        "{via_rvs} echo requests reached the gateway from rvs"
    );
    let routes = ip.ok("route show");
    assert_eq!(
        routes,
        format!(
            "inet 10.0.0.0/24 via 0.0.0.0 src 10.0.0.1 dev {port} mtu 1500 tos 0 scope link metric 0 proto auto onlink \n\
             inet 10.9.0.0/24 via 10.0.0.3 src 10.0.0.1 dev {port} mtu 1500 tos 0 scope global metric 0 proto static \n"
        )
    );

    // The neighbour cache, from the worker.
    let neighs = ip.ok("neigh show");
    for (addr, m) in [("10.0.0.2", cl_mac), ("10.0.0.3", gw_mac)] {
        let line = neighs
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(addr))
            .unwrap_or_else(|| panic!("no {addr} in\n{neighs}"));
        assert!(line.contains(&format!("mac: {}", mac_str(m))), "{line}");
        assert!(
            line.contains("REACHABLE") || line.contains("STALE"),
            "{line}"
        );
        assert!(line.contains(&format!("dev: {port}  core: 0")), "{line}");
    }

    // A static neighbour carries a route via an address nobody answers for.
    ip.ok(&format!(
        "neigh add 10.0.0.77 lladdr {} dev {port}",
        mac_str(gw_mac)
    ));
    ip.ok(&format!("route add 10.8.0.0/24 via 10.0.0.77 dev {port}"));
    if !ping(&client, "10.8.0.5", 3) {
        rvsd.fail("ping 10.8.0.5 not answered through the static neighbour");
    }
    let neighs = ip.ok(&format!("neigh show dev {port}"));
    assert!(
        neighs.lines().any(|l| l.contains("10.0.0.77")
            && l.contains(&mac_str(gw_mac))
            && l.contains("PERMANENT")
            && l.ends_with("static")),
        "{neighs}"
    );

    // Port counters grow with traffic.
    let before = ip.ok("-s link show");
    assert!(ping(&client, "10.0.0.1", 10));
    thread::sleep(Duration::from_millis(700));
    let after = ip.ok(&format!("link show -s {port}"));
    let (b, a) = (
        stats_row(&before, "ipackets"),
        stats_row(&after, "ipackets"),
    );
    assert!(a[0] >= b[0] + 10, "ipackets {} -> {}", b[0], a[0]);
    assert!(a[1] >= b[1] + 10, "opackets {} -> {}", b[1], a[1]);
    assert!(a[2] >= b[2] + 10 * 98, "ibytes {} -> {}", b[2], a[2]);
    assert!(a[3] >= b[3] + 10 * 98, "obytes {} -> {}", b[3], a[3]);
    assert_eq!(stats_row(&after, "ierrors").len(), 4);

    // Refusals: one line, nothing changed (listings and state file).
    let snapshot = |ip: &Ip| {
        (
            ip.ok("addr show"),
            ip.ok("route show"),
            std::fs::read_to_string(&state).expect("state file"),
        )
    };
    let before = snapshot(&ip);
    assert!(before.2.contains("\"stack\""), "{}", before.2);
    for (args, says) in [
        (
            format!("addr add 10.0.0.1/33 dev {port}"),
            "addr.prefix_len",
        ),
        (
            "addr add 10.0.0.5/24 dev nosuch0".to_string(),
            "unknown dev `nosuch0'",
        ),
        (
            format!("addr del 10.0.0.99/24 dev {port}"),
            "no address 10.0.0.99/24",
        ),
        (
            format!("addr add 10.0.0.1/24 dev {port}"),
            "already an address",
        ),
        (
            format!("route add 10.9.1.1/24 via 10.0.0.3 dev {port}"),
            "host bits",
        ),
        (
            format!("route add 10.9.0.0/24 via 10.0.0.3 dev {port}"),
            "exists",
        ),
        ("route del 10.7.0.0/24".to_string(), "no route 10.7.0.0/24"),
        ("route del 10.0.0.0/24".to_string(), "connected route"),
        (
            "route add 10.6.0.0/24 via 10.5.0.1".to_string(),
            "on no port's network",
        ),
        (
            format!("neigh del 10.0.0.99 dev {port}"),
            "no static neighbour",
        ),
        (
            format!("neigh add 10.0.0.9 lladdr 01:00:5e:00:00:01 dev {port}"),
            "neigh.lladdr",
        ),
    ] {
        let r = ip.run(&args);
        assert_ne!(r.code, 0, "rvsip {args} succeeded");
        assert_eq!(r.err.lines().count(), 1, "rvsip {args}: {:?}", r.err);
        assert!(
            r.err.contains(says),
            "rvsip {args}: {:?} lacks {says:?}",
            r.err
        );
        assert!(r.out.is_empty());
        assert_eq!(snapshot(&ip), before, "rvsip {args} changed things");
    }
    let log = rvsd.log();
    assert!(
        log.contains(&format!("add address 10.0.0.1/24 dev {port}")),
        "{log}"
    );
    assert!(log.contains("add route 10.9.0.0/24 via 10.0.0.3"), "{log}");
    assert!(log.contains("change refused"), "{log}");

    // Restart: restored from the state file.
    rvsd.stop();
    let mut rvsd = Rvsd::start_with(&lb, &cfg, &config);
    assert!(rvsd.log().contains("stack restored from the state file"));
    assert_eq!(snapshot(&ip), before, "not restored identically");
    if !ping(&client, "10.0.0.1", 3) || !ping(&client, "10.9.0.5", 3) {
        rvsd.fail("not answered after the restart");
    }

    // Deletions take effect.
    ip.ok(&format!("neigh del 10.0.0.77 dev {port}"));
    ip.ok("route del 10.8.0.0/24");
    assert!(
        !ping(&client, "10.8.0.5", 1),
        "still routed after route del"
    );
    assert!(!ip.ok("neigh show").contains("10.0.0.77"));
    ip.ok(&format!("addr del 10.0.0.1/24 dev {port}"));
    assert_eq!(ip.ok("addr show"), "");
    assert!(!ping(&client, "10.0.0.1", 2), "answered after addr del");
    rvsd.stop();
}

/// Removes a directory on drop.
struct DirGuard(String);

impl Drop for DirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
