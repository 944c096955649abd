//! Failover under load: two rvs nodes (rvsd + rvs-keepalived each) share
//! a VIP by VRRP, and a client sends requests in a loop while the MASTER
//! node dies.
//!
//! One macvlan segment holds the client, both nodes and two HTTP backends.
//! Each node runs rvsd on AF_PACKET with a TAP (the kernel's address on
//! it is rvsd's own, so VRRP and the health checks leave through rvsd),
//! `announce_vips = false`, and rvs-keepalived with the same
//! keepalived.conf but its priority and local address: a FullNAT
//! virtual server with TCP_CHECKs, and one VRRP instance. The test:
//! - the higher priority (A) becomes MASTER: the VIP is an address of A's
//!   rvsd only, and the backends see A's local address;
//! - A is killed (rvsd and rvs-keepalived, SIGKILL: a node dying) in the
//!   middle of the loop; B adds the VIP within 3 × advert + skew;
//! - the loop's failures all fall inside the takeover gap, and requests
//!   after it reach the backends from B's local address.
//!
//! Run as root.

mod common;

use std::net::IpAddr;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use common::harness::{Capture, HttpServer, Rvsd, Segment, mac, offloads_off, sysctl};
use common::keepalived::{
    Daemon, TempDir, api, rvs_keepalived, rvsd_addrs, rvsd_services, wait_until,
};
use common::{Netns, unique};

const VIP: &str = "10.0.0.100";
const ADVERT_S: f64 = 1.0;

/// One rvs node: its namespace, rvsd and rvs-keepalived.
struct Node {
    _ns: Netns,
    rvsd: Rvsd,
    ka: Daemon,
    socket: std::path::PathBuf,
    port: String,
    _dir: TempDir,
}

fn keepalived_conf(tap: &str, priority: u8, laddr: &str) -> String {
    format!(
        r#"
global_defs {{
    router_id rvs-{priority}
}}

vrrp_instance VI_1 {{
    state BACKUP
    interface {tap}
    virtual_router_id 51
    priority {priority}
    advert_int 1
    garp_master_delay 0
    garp_master_refresh 1
    authentication {{
        auth_type PASS
        auth_pass rvs-e2e
    }}
    virtual_ipaddress {{
        {VIP}/32
    }}
}}

local_address_group laddr {{
    {laddr}
}}

virtual_server {VIP} 80 {{
    delay_loop 1
    lb_algo rr
    lb_kind FNAT
    protocol TCP
    laddr_group_name laddr
    real_server 10.0.0.21 80 {{
        weight 1
        TCP_CHECK {{
            connect_timeout 1
        }}
    }}
    real_server 10.0.0.22 80 {{
        weight 1
        TCP_CHECK {{
            connect_timeout 1
        }}
    }}
}}
"#
    )
}

/// Starts a node on `seg` with interface address `addr` (rvsd's and the
/// TAP's), VRRP `priority` and FullNAT local address `laddr`.
fn node(seg: &Segment, tag: &str, hw: u8, addr: &str, priority: u8, laddr: &str) -> Node {
    let ns = Netns::new(tag);
    ns.disable_ipv6();
    // Only rvsd answers ARP on the port (the kernel holds the TAP's address).
    sysctl(&ns, "net/ipv4/conf/all/arp_ignore", "1");
    let port = seg.attach(&ns, mac(hw, 1));
    let tap = unique("tp");
    let dir = TempDir::new(tag);
    let socket = dir.file("rvsd.sock");
    let config = format!(
        "[daemon]\nworkers = 1\nannounce_vips = false\n\n\
         [[port]]\nname = \"{port}\"\nbackend = \"af_packet\"\ntap = \"{tap}\"\n\n\
         [[addr]]\naddr = \"{addr}/24\"\nport = \"{port}\"\n\n\
         [api]\nsocket = \"{}\"\nstate = \"{}\"\n\n[metrics]\nlisten = \"\"\n",
        socket.display(),
        dir.file("state.json").display()
    );
    let path = common::harness::TempFile::new("toml");
    let rvsd = Rvsd::start_with(&ns, &path, &config);
    ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", &tap]);
    ns.ip(&["link", "set", &tap, "up"]);
    offloads_off(&ns, &tap);
    let conf = dir.write("keepalived.conf", &keepalived_conf(&tap, priority, laddr));
    let ka = rvs_keepalived(&ns, &dir, &conf, &socket, &[]);
    Node {
        _ns: ns,
        rvsd,
        ka,
        socket,
        port,
        _dir: dir,
    }
}

fn has_vip(socket: &Path) -> bool {
    let vip: IpAddr = VIP.parse().unwrap();
    rvsd_addrs(socket).iter().any(|a| a.addr == vip)
}

/// One request: (time since `t0` when it ended, success).
fn request(client: &Netns, t0: Instant) -> (f64, bool) {
    let out = client.exec(
        &["curl", "-sS", "--max-time", "1", &format!("http://{VIP}/")],
        Duration::from_secs(5),
    );
    let ok = out.is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    (t0.elapsed().as_secs_f64(), ok)
}

#[test]
fn killing_the_master_moves_the_vip_and_traffic_continues() {
    let seg = Segment::new();
    let client = Netns::new("cl");
    client.disable_ipv6();
    let c_if = seg.attach(&client, mac(0x30, 1));
    client.ip(&["addr", "add", "10.0.0.2/24", "dev", &c_if]);
    let mut servers = Vec::new();
    let mut backends = Vec::new();
    for (i, hw) in [0x41u8, 0x42].into_iter().enumerate() {
        let b = Netns::new(&format!("b{}", i + 1));
        b.disable_ipv6();
        let dev = seg.attach(&b, mac(hw, 1));
        b.ip(&["addr", "add", &format!("10.0.0.2{}/24", i + 1), "dev", &dev]);
        servers.push(HttpServer::start(
            &b,
            &format!("b{}", i + 1),
            "0.0.0.0:80".parse().unwrap(),
        ));
        backends.push(b);
    }

    let mut a = node(&seg, "lba", 0x31, "10.0.0.11", 150, "10.0.0.31");
    let mut b = node(&seg, "lbb", 0x32, "10.0.0.12", 100, "10.0.0.32");
    let logs = |a: &Node, b: &Node| {
        format!(
            "--- A rvs-keepalived:\n{}\n--- B rvs-keepalived:\n{}\n--- A rvsd:\n{}\n--- B rvsd:\n{}",
            a.ka.log(),
            b.ka.log(),
            a.rvsd.log(),
            b.rvsd.log()
        )
    };

    // Priority decides: A is MASTER, B stays BACKUP.
    let took = wait_until(
        Duration::from_secs(15),
        "A MASTER",
        &|| logs(&a, &b),
        || has_vip(&a.socket),
    );
    println!("A became MASTER {:.2} s after start", took.as_secs_f64());
    // Both nodes hold the virtual server with both real servers (checks pass).
    for n in [&a, &b] {
        wait_until(
            Duration::from_secs(10),
            "real servers up",
            &|| logs(&a, &b),
            || {
                rvsd_services(&n.socket)
                    .first()
                    .is_some_and(|s| s.real_servers.len() == 2)
            },
        );
    }
    thread::sleep(Duration::from_secs(2));
    assert!(!has_vip(&b.socket), "B holds the VIP too\n{}", logs(&a, &b));
    // `garp_master_refresh 1`: the MASTER keeps announcing the VIP, a
    // gratuitous ARP a second from A's port.
    let cap = Capture::start(&client, &c_if);
    thread::sleep(Duration::from_millis(2500));
    let vip: std::net::Ipv4Addr = VIP.parse().unwrap();
    let garps = cap
        .finish()
        .iter()
        .filter(|f| {
            f.len() >= 42
                && f[12..14] == [0x08, 0x06]
                && f[28..32] == vip.octets()
                && f[38..42] == vip.octets()
                && f[6..12] == mac(0x31, 1)
        })
        .count();
    assert!((2..=3).contains(&garps), "{garps} gratuitous ARPs in 2.5 s");
    // An operator removes the VIP from the MASTER's rvsd by hand: the
    // MASTER adds it back (and announces it) within its recheck period.
    api(
        &a.socket,
        &rvs_api::Request::DelAddr {
            addr: rvs_api::IfAddr {
                addr: VIP.parse().unwrap(),
                prefix_len: 32,
                dev: a.port.clone(),
            },
        },
    );
    assert!(!has_vip(&a.socket));
    let back = wait_until(
        Duration::from_secs(5),
        "VIP restored",
        &|| logs(&a, &b),
        || has_vip(&a.socket),
    );
    println!(
        "the VIP removed by hand was back on A after {:.2} s",
        back.as_secs_f64()
    );
    let t0 = Instant::now();
    for _ in 0..4 {
        assert!(
            request(&client, t0).1,
            "request through A failed\n{}",
            logs(&a, &b)
        );
    }
    let laddr_a: IpAddr = "10.0.0.31".parse().unwrap();
    let laddr_b: IpAddr = "10.0.0.32".parse().unwrap();
    // The backends see A's local address (and both nodes' health checks
    // from their own addresses), not B's.
    for s in &servers {
        let p = s.peers();
        assert!(p.contains(&laddr_a) && !p.contains(&laddr_b), "{p:?}");
    }

    // The loop, and A dying in the middle of it.
    let t0 = Instant::now();
    let client_name = client.name.clone();
    let looper = thread::spawn(move || {
        let mut seen = Vec::new();
        while t0.elapsed() < Duration::from_secs(14) {
            let start = t0.elapsed().as_secs_f64();
            let out = std::process::Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &client_name,
                    "curl",
                    "-sS",
                    "--max-time",
                    "1",
                ])
                .arg(format!("http://{VIP}/"))
                .output();
            let ok = out.is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
            seen.push((start, t0.elapsed().as_secs_f64(), ok));
            thread::sleep(Duration::from_millis(50));
        }
        seen
    });
    thread::sleep(Duration::from_secs(3));
    let t_kill = t0.elapsed().as_secs_f64();
    a.ka.kill();
    let _ = a.rvsd.child.kill();
    let _ = a.rvsd.child.wait();
    let takeover = wait_until(
        Duration::from_secs(10),
        "B MASTER",
        &|| logs(&a, &b),
        || has_vip(&b.socket),
    );
    let seen = looper.join().unwrap();

    let skew = (256.0 - 100.0) / 256.0 * ADVERT_S;
    let bound = 3.0 * ADVERT_S + skew;
    // (start, end, ok) of each request.
    let ok_before: Vec<f64> = seen
        .iter()
        .filter(|&&(start, _, ok)| ok && start < t_kill)
        .map(|&(_, end, _)| end)
        .collect();
    let last_ok_before = ok_before.iter().copied().fold(0.0, f64::max);
    let first_ok_after = seen
        .iter()
        .find(|&&(start, _, ok)| ok && start > t_kill)
        .map(|&(_, end, _)| end)
        .unwrap_or_else(|| {
            panic!(
                "no request succeeded after the kill: {seen:?}\n{}",
                logs(&a, &b)
            )
        });
    let failed: Vec<(f64, f64)> = seen
        .iter()
        .filter(|&&(_, _, ok)| !ok)
        .map(|&(start, end, _)| (start, end))
        .collect();
    let gap = first_ok_after - last_ok_before;
    println!(
        "takeover: B added the VIP {:.2} s after A died (bound 3 x advert + skew = {bound:.2} s); \
         client gap (last answer before, first after) {gap:.2} s; {} requests ok before, \
         {} failed, {} in all",
        takeover.as_secs_f64(),
        ok_before.len(),
        failed.len(),
        seen.len()
    );
    assert!(
        ok_before.len() > 10,
        "the loop ran before the kill: {seen:?}"
    );
    assert!(
        takeover.as_secs_f64() <= bound + 0.5,
        "takeover {takeover:?} > {bound} s\n{}",
        logs(&a, &b)
    );
    // Only requests in flight during the takeover fail: each failed one
    // overlaps the time from the kill to the first answer after it.
    assert!(
        failed
            .iter()
            .all(|&(start, end)| end > t_kill && start < first_ok_after),
        "failures outside the takeover gap: {failed:?} (kill {t_kill:.2}, first ok {first_ok_after:.2})"
    );
    assert!(gap <= bound + 2.0, "client gap {gap:.2} s");
    for s in &servers {
        assert!(
            s.peers().contains(&laddr_b),
            "backends never saw B: {:?}",
            s.peers()
        );
    }
    assert!(b.ka.alive() && b.rvsd.alive());
}
