//! Health checks against real servers: rvsd + rvs-keepalived in front of
//! three nginx backends, every change observed in rvsd's table through its
//! API and through a client's requests.
//!
//! One L2 segment (macvlans on one veth parent, [`Segment`]) holds the
//! client (10.0.0.2), the lb (rvsd on
//! AF_PACKET with a TAP whose kernel address is rvsd's own, 10.0.0.11, so
//! the health checks leave through rvsd like any of its traffic) and the
//! backends 10.0.0.21..23 (nginx: a body on `/`, 500 on `/bad`). The
//! keepalived.conf has FullNAT virtual servers (local addresses
//! 10.0.0.30..33, one each):
//! - .100: HTTP_GET `/` status 200 (b1), HTTP_GET `/` with the right
//!   digest (b2), MISC_CHECK on a file's presence (b3);
//! - .101: HTTP_GET `/bad` (b1: 500), a wrong digest (b2), a good one (b3):
//!   only b3 stays;
//! - .102: TCP_CHECKs with inhibit_on_failure (b1, b2);
//! - .103: a real server nobody listens on (inhibited) and a sorry server
//!   (b3): the sorry server takes the traffic.
//!
//! The test stops b1's nginx while a client loops on .100 and measures how
//! long b1 takes to leave the table (bound: delay_loop × (retry + 1) +
//! connect_timeout); no request started after that fails; .102 shows b1
//! at weight 0 instead; b1 comes back when nginx starts again. Then the
//! MISC_CHECK file goes and comes back. A SIGHUP with .101 removed and a
//! weight changed applies just that, keeping every other real server and
//! checker task, while the client loop sees no failure. At SIGTERM
//! rvs-keepalived removes the virtual servers it created.
//!
//! Run as root.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::harness::{Rvsd, Segment, mac, offloads_off, sysctl};
use common::keepalived::{
    Daemon, Nginx, TempDir, dump, rvs_keepalived, rvsd_services, service_reals, wait_until,
};
use common::{Netns, unique};

/// MD5 of "hello", b2's body.
const HELLO_MD5: &str = "5d41402abc4b2a76b9719d911017c592";
const DELAY_LOOP_S: f64 = 1.0;
const RETRY: f64 = 1.0;
const CONNECT_TIMEOUT_S: f64 = 1.0;

/// The configuration; `reloaded`: the one SIGHUP brings (without .101,
/// b2 weighing 3 in .100).
fn conf(misc_file: &Path, reloaded: bool) -> String {
    let http = |url: &str| {
        format!(
            "HTTP_GET {{\n url {{\n {url}\n }}\n connect_timeout 1\n retry 1\n delay_before_retry 1\n }}"
        )
    };
    // One local address per virtual server (10.0.0.3x for 10.0.0.10x).
    let vs = |vip: &str, body: &str| {
        let n = vip
            .rsplit('.')
            .next()
            .and_then(|l| l.parse::<u8>().ok())
            .unwrap_or(100)
            - 100;
        format!(
            "local_address_group laddr{n} {{\n 10.0.0.3{n}\n}}\n\
             virtual_server {vip} 80 {{\n delay_loop 1\n lb_algo rr\n lb_kind FNAT\n \
             protocol TCP\n laddr_group_name laddr{n}\n{body}\n}}\n"
        )
    };
    let rs = |ip: &str, port: u16, body: &str| format!("real_server {ip} {port} {{\n{body}\n}}\n");
    let tcp = "TCP_CHECK {\n connect_timeout 1\n retry 1\n delay_before_retry 1\n }";
    let misc = format!(
        "MISC_CHECK {{\n misc_path \"test -e {}\"\n misc_timeout 2\n retry 0\n }}",
        misc_file.display()
    );
    format!(
        "global_defs {{\n router_id rvs-health\n}}\n{}{}{}{}",
        vs(
            "10.0.0.100",
            &(rs("10.0.0.21", 80, &http("path /\n status_code 200"))
                + &rs(
                    "10.0.0.22",
                    80,
                    &format!(
                        "weight {}\n{}",
                        if reloaded { 3 } else { 1 },
                        http(&format!("path /\n digest {HELLO_MD5}"))
                    )
                )
                + &rs("10.0.0.23", 80, &misc)),
        ),
        if reloaded {
            String::new()
        } else {
            vs(
                "10.0.0.101",
                &(rs("10.0.0.21", 80, &http("path /bad"))
                    + &rs(
                        "10.0.0.22",
                        80,
                        &http("path /\n digest 00000000000000000000000000000000"),
                    )
                    + &rs("10.0.0.23", 80, &http("path /"))),
            )
        },
        vs(
            "10.0.0.102",
            &(rs("10.0.0.21", 80, &format!("inhibit_on_failure\n{tcp}"))
                + &rs("10.0.0.22", 80, &format!("inhibit_on_failure\n{tcp}"))),
        ),
        vs(
            "10.0.0.103",
            &(" sorry_server 10.0.0.23 80\n".to_string()
                + &rs("10.0.0.21", 81, &format!("inhibit_on_failure\n{tcp}"))),
        ),
    )
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn vip(last: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, last], 80))
}

/// One request to `url` from `client`: its body, or curl's complaint.
fn get(client: &Netns, url: &str) -> Result<String, String> {
    let out = client
        .exec(
            &["curl", "-sS", "--max-time", "1", url],
            Duration::from_secs(5),
        )
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Requests in a loop until stopped: (start, end, ok) in seconds since `t0`.
fn curl_loop(
    client: &Netns,
    url: &str,
    t0: Instant,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<Vec<(f64, f64, bool)>> {
    let name = client.name.clone();
    let url = url.to_string();
    thread::spawn(move || {
        let mut seen = Vec::new();
        // Bounded: the test stops it, and it never runs past a minute.
        while !stop.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(60) {
            let start = t0.elapsed().as_secs_f64();
            let ok = std::process::Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &name,
                    "curl",
                    "-sS",
                    "--max-time",
                    "1",
                    &url,
                ])
                .output()
                .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
            seen.push((start, t0.elapsed().as_secs_f64(), ok));
            thread::sleep(Duration::from_millis(30));
        }
        seen
    })
}

#[test]
fn health_checks_drive_rvsds_table() {
    let seg = Segment::new();
    let dir = TempDir::new("health");
    let client = Netns::new("cl");
    client.disable_ipv6();
    let c_if = seg.attach(&client, mac(0x30, 1));
    client.ip(&["addr", "add", "10.0.0.2/24", "dev", &c_if]);

    let mut backends = Vec::new();
    let mut nginx = Vec::new();
    for (i, body) in ["b1", "hello", "b3"].into_iter().enumerate() {
        let b = Netns::new(&format!("b{}", i + 1));
        b.disable_ipv6();
        let dev = seg.attach(&b, mac(0x41 + i as u8, 1));
        b.ip(&["addr", "add", &format!("10.0.0.2{}/24", i + 1), "dev", &dev]);
        nginx.push(Nginx::start(&b, &dir, &format!("b{}", i + 1), body));
        backends.push(b);
    }

    // The lb: rvsd with a TAP holding its address for the kernel.
    let lb = Netns::new("lb");
    lb.disable_ipv6();
    sysctl(&lb, "net/ipv4/conf/all/arp_ignore", "1");
    let port = seg.attach(&lb, mac(0x31, 1));
    let tap = unique("tp");
    let socket = dir.file("rvsd.sock");
    let rvsd_conf = format!(
        "[daemon]\nworkers = 1\n\n\
         [[port]]\nname = \"{port}\"\nbackend = \"af_packet\"\ntap = \"{tap}\"\n\n\
         [[addr]]\naddr = \"10.0.0.11/24\"\nport = \"{port}\"\n\n\
         [api]\nsocket = \"{}\"\nstate = \"{}\"\n\n[metrics]\nlisten = \"\"\n",
        socket.display(),
        dir.file("state.json").display()
    );
    let path = common::harness::TempFile::new("toml");
    let mut rvsd = Rvsd::start_with(&lb, &path, &rvsd_conf);
    lb.ip(&["addr", "add", "10.0.0.11/24", "dev", &tap]);
    lb.ip(&["link", "set", &tap, "up"]);
    offloads_off(&lb, &tap);

    let misc_file = dir.file("b3-healthy");
    std::fs::write(&misc_file, b"").unwrap();
    let conf_path = dir.write("keepalived.conf", &conf(&misc_file, false));
    let mut ka = rvs_keepalived(&lb, &dir, &conf_path, &socket, &[]);
    let logs = |ka: &Daemon, rvsd: &Rvsd| {
        format!(
            "--- rvs-keepalived:\n{}\n--- rvsd:\n{}",
            ka.log(),
            rvsd.log()
        )
    };
    let table = |last: u8| service_reals(&socket, vip(last));
    let b = |n: u8| (ip(&format!("10.0.0.2{n}")), 80u16);

    // Start: every check settles.
    let all_up = vec![(b(1).0, 80, 1), (b(2).0, 80, 1), (b(3).0, 80, 1)];
    wait_until(
        Duration::from_secs(15),
        "the first verdicts",
        &|| logs(&ka, &rvsd),
        || {
            table(100).as_ref() == Some(&all_up)
                && table(101) == Some(vec![(b(3).0, 80, 1)])
                && table(102) == Some(vec![(b(1).0, 80, 1), (b(2).0, 80, 1)])
                && table(103) == Some(vec![(b(1).0, 81, 0), (b(3).0, 80, 1)])
        },
    );
    // HTTP_GET on a 500 and a wrong digest failed, with the reasons kept.
    let d = dump(&ka, &dir);
    let vs101 = &d["lvs"]["virtual_servers"][1];
    let err = |i: usize| {
        vs101["real_servers"][i]["checkers"][0]["stats"]["last_error"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(err(0).contains("status 500"), "{vs101:#}");
    assert!(err(1).contains("digest"), "{vs101:#}");
    assert_eq!(vs101["real_servers"][2]["state"], "up");
    let vs103 = &d["lvs"]["virtual_servers"][3];
    assert_eq!(vs103["sorry_active"], true, "{vs103:#}");

    // Traffic: every backend of .100 answers; .103 is the sorry server.
    let mut bodies: Vec<String> = (0..6)
        .map(|_| get(&client, "http://10.0.0.100/"))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| {
            let n = |ns: &Netns| {
                String::from_utf8_lossy(
                    &ns.exec(&["ip", "neigh"], Duration::from_secs(2))
                        .unwrap()
                        .stdout,
                )
                .into_owned()
            };
            let c = n(&client);
            let b1 = backends.iter().map(n).collect::<Vec<_>>().join(" | ");
            let _ = rvsd.stop();
            panic!(
                "request to .100: {e}\nclient neigh {c}\nb1 neigh {b1}\n{}",
                rvsd.log()
            )
        });
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies, vec!["b1", "b3", "hello"], "{}", logs(&ka, &rvsd));
    assert_eq!(get(&client, "http://10.0.0.103/").as_deref(), Ok("b3"));

    // b1's nginx stops while the client loops.
    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let looper = curl_loop(&client, "http://10.0.0.100/", t0, stop.clone());
    thread::sleep(Duration::from_secs(2));
    let t_stop = t0.elapsed().as_secs_f64();
    nginx[0].stop();
    let gone = wait_until(
        Duration::from_secs(10),
        "b1 leaving .100",
        &|| logs(&ka, &rvsd),
        || table(100) == Some(vec![(b(2).0, 80, 1), (b(3).0, 80, 1)]),
    );
    let t_gone = t0.elapsed().as_secs_f64();
    wait_until(
        Duration::from_secs(5),
        "b1 inhibited in .102",
        &|| logs(&ka, &rvsd),
        || table(102) == Some(vec![(b(1).0, 80, 0), (b(2).0, 80, 1)]),
    );
    thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    let seen = looper.join().unwrap();
    let bound = DELAY_LOOP_S * (RETRY + 1.0) + CONNECT_TIMEOUT_S;
    let failed_after: Vec<_> = seen
        .iter()
        .filter(|(s, _, ok)| !ok && *s > t_gone)
        .collect();
    let failed_between = seen
        .iter()
        .filter(|(s, _, ok)| !ok && *s >= t_stop && *s <= t_gone)
        .count();
    let after = seen.iter().filter(|(s, _, _)| *s > t_gone).count();
    println!(
        "b1 stopped: out of rvsd's table after {:.2} s (bound delay_loop x (retry+1) + \
         connect_timeout = {bound:.1} s); {failed_between} requests failed before that, \
         {} of {after} after",
        gone.as_secs_f64(),
        failed_after.len()
    );
    assert!(
        gone.as_secs_f64() <= bound + 0.5,
        "b1 left after {gone:?}\n{}",
        logs(&ka, &rvsd)
    );
    assert!(after >= 20, "the loop kept running: {seen:?}");
    assert!(
        failed_after.is_empty(),
        "requests failed after b1 left: {failed_after:?}"
    );
    assert!(
        seen.iter()
            .filter(|(s, _, _)| *s < t_stop)
            .all(|(_, _, ok)| *ok),
        "requests failed before the stop: {seen:?}"
    );

    // b1 comes back.
    nginx[0].resume(&backends[0]);
    let back = wait_until(
        Duration::from_secs(10),
        "b1 back in .100",
        &|| logs(&ka, &rvsd),
        || table(100).as_ref() == Some(&all_up),
    );
    wait_until(
        Duration::from_secs(5),
        "b1 weight restored in .102",
        &|| logs(&ka, &rvsd),
        || table(102) == Some(vec![(b(1).0, 80, 1), (b(2).0, 80, 1)]),
    );
    println!(
        "b1 restarted: back in rvsd's table after {:.2} s",
        back.as_secs_f64()
    );
    assert!(back.as_secs_f64() <= DELAY_LOOP_S + CONNECT_TIMEOUT_S + 0.5);

    // MISC_CHECK: the file decides.
    std::fs::remove_file(&misc_file).unwrap();
    let misc_gone = wait_until(
        Duration::from_secs(10),
        "b3 leaving .100 (MISC_CHECK)",
        &|| logs(&ka, &rvsd),
        || table(100) == Some(vec![(b(1).0, 80, 1), (b(2).0, 80, 1)]),
    );
    std::fs::write(&misc_file, b"").unwrap();
    let misc_back = wait_until(
        Duration::from_secs(10),
        "b3 back in .100 (MISC_CHECK)",
        &|| logs(&ka, &rvsd),
        || table(100).as_ref() == Some(&all_up),
    );
    println!(
        "MISC_CHECK: out {:.2} s after the file went, back {:.2} s after it returned",
        misc_gone.as_secs_f64(),
        misc_back.as_secs_f64()
    );

    // SIGHUP with .101 gone and b2 heavier: the rest keeps its state (no
    // real server leaves or re-enters, the checkers go on), and the client
    // sees no failure.
    let adds = |rvsd: &Rvsd| rvsd.log().matches("to TCP 10.0.0.100:80").count();
    let adds_before = adds(&rvsd);
    let ids = |d: &serde_json::Value| -> Vec<(u64, u64)> {
        d["lvs"]["virtual_servers"][0]["real_servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let c = &r["checkers"][0];
                (
                    c["id"].as_u64().unwrap(),
                    c["stats"]["checks"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let before = ids(&dump(&ka, &dir));
    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let looper = curl_loop(&client, "http://10.0.0.100/", t0, stop.clone());
    thread::sleep(Duration::from_secs(1));
    dir.write("keepalived.conf", &conf(&misc_file, true));
    ka.signal(libc::SIGHUP);
    wait_until(
        Duration::from_secs(10),
        "the reload applied",
        &|| logs(&ka, &rvsd),
        || {
            table(101).is_none()
                && table(100) == Some(vec![(b(1).0, 80, 1), (b(2).0, 80, 3), (b(3).0, 80, 1)])
        },
    );
    thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let seen = looper.join().unwrap();
    assert!(
        seen.len() >= 20 && seen.iter().all(|(_, _, ok)| *ok),
        "{seen:?}"
    );
    assert_eq!(
        adds(&rvsd),
        adds_before,
        "no real server re-added:\n{}",
        rvsd.log()
    );
    let after = ids(&dump(&ka, &dir));
    for ((id0, n0), (id1, n1)) in before.iter().zip(&after) {
        assert_eq!(id0, id1, "the checker task was kept");
        assert!(n1 > n0, "and kept checking");
    }
    println!(
        "reload: .101 removed, b2 reweighted, {} requests without a failure",
        seen.len()
    );

    // Exit: the virtual servers it created leave rvsd.
    assert_eq!(ka.terminate(), Some(0), "{}", logs(&ka, &rvsd));
    assert!(
        rvsd_services(&socket).is_empty(),
        "services left after exit: {:?}",
        rvsd_services(&socket)
    );
    assert!(rvsd.alive());
}
