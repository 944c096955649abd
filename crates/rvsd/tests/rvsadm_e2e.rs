//! rvsadm against a running rvsd (run as root): namespaces `client`, `lb`
//! and two backends as in `fullnat_e2e`; rvsd starts with its ports and no
//! service, and everything else is done with the built `rvsadm` binary
//! over rvsd's API socket, as an operator would with ipvsadm:
//! service, local address and FullNAT real servers added; curl through the
//! VIP answered by both backends; `-L -n` connection counts and `--stats`
//! counters matching the traffic the client sent (its interface counters);
//! `-e -w 0` steers new requests away; `-d` removes a server; refused
//! commands (unknown scheduler, bad address, duplicate service, absent
//! server, a FullNAT server without local address, a batch with a
//! duplicate) exit non-zero with one line and leave `-L -n` unchanged;
//! timeouts, `-Lnc`, `-Z`; `-S | -C | -R` restores an identical `-S`; and a
//! restart of rvsd restores the configuration from its state file.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::harness::{OneShotServer as Server, Rvsd, Topo, sibling_bin};
use common::{Netns, TIMEOUT, unique};

const VIP: &str = "10.0.0.100";
const LADDR: &str = "10.0.9.1";
const REQUESTS: usize = 10;

/// Deletes files on drop.
struct TempFiles(Vec<String>);
impl Drop for TempFiles {
    fn drop(&mut self) {
        for f in &self.0 {
            let _ = std::fs::remove_file(f);
        }
    }
}

struct Adm {
    bin: PathBuf,
    socket: String,
}

struct Ran {
    code: i32,
    out: String,
    err: String,
}

impl Adm {
    fn run_input(&self, args: &[&str], input: Option<&str>) -> Ran {
        let mut child = Command::new(&self.bin)
            .args(args)
            .env("RVS_SOCKET", &self.socket)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rvsadm");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input.unwrap_or("").as_bytes()).unwrap();
        drop(stdin);
        let deadline = Instant::now() + TIMEOUT;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() >= deadline {
                let _ = child.kill();
                panic!("rvsadm {args:?} timed out");
            }
            thread::sleep(Duration::from_millis(5));
        }
        let out: Output = child.wait_with_output().unwrap();
        Ran {
            code: out.status.code().unwrap_or(-1),
            out: String::from_utf8_lossy(&out.stdout).into_owned(),
            err: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn run(&self, args: &[&str]) -> Ran {
        self.run_input(args, None)
    }

    /// Runs a command that must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(r.code, 0, "rvsadm {args:?}: {}", r.err);
        r.out
    }

    /// Runs a command that must fail with one line; `-L -n` unchanged.
    fn refused(&self, args: &[&str], input: Option<&str>, says: &str) {
        let before = self.ok(&["-L", "-n"]);
        let r = self.run_input(args, input);
        assert_ne!(r.code, 0, "rvsadm {args:?} succeeded: {}", r.out);
        assert_eq!(r.err.lines().count(), 1, "rvsadm {args:?}: {:?}", r.err);
        assert!(
            r.err.contains(says),
            "rvsadm {args:?}: {:?} does not say {says:?}",
            r.err
        );
        assert_eq!(
            self.ok(&["-L", "-n"]),
            before,
            "rvsadm {args:?} changed things"
        );
    }
}

fn curl(client: &Netns) -> String {
    let out = client
        .exec(
            &["curl", "-sS", "--max-time", "3", &format!("http://{VIP}/")],
            TIMEOUT,
        )
        .expect("curl");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `(ActiveConn, InActConn)` of a real server in `-L -n` output.
fn conns_of(list: &str, rs: &str) -> Option<(u64, u64)> {
    list.lines().find_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        match w.as_slice() {
            ["->", addr, _fwd, _weight, act, inact] if *addr == rs => {
                Some((act.parse().ok()?, inact.parse().ok()?))
            }
            _ => None,
        }
    })
}

/// The numbers of the line of `-L -n --stats --exact` starting with `head`.
fn stats_of(list: &str, head: &[&str]) -> Vec<u64> {
    list.lines()
        .find_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.starts_with(head).then(|| {
                w.iter()
                    .skip(head.len())
                    .filter_map(|n| n.parse().ok())
                    .collect()
            })
        })
        .unwrap_or_else(|| panic!("no line {head:?} in\n{list}"))
}

fn if_counter(ns: &Netns, dev: &str, what: &str) -> u64 {
    // `ip netns exec` mounts the namespace's own sysfs.
    let out = ns
        .exec(
            &["cat", &format!("/sys/class/net/{dev}/statistics/{what}")],
            TIMEOUT,
        )
        .expect("cat");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("counter")
}

#[test]
fn rvsadm_drives_rvsd() {
    let topo = Topo::new(2, false);
    let (client, lb, c) = (&topo.client, &topo.lb, &topo.c);
    let _s1 = Server::start(&topo.backends[0], "b1", 80);
    let _s2 = Server::start(&topo.backends[1], "b2", 80);

    let tag = unique("adm");
    let socket = format!("/tmp/rvs-e2e-{tag}/rvsd.sock");
    let state = format!("/tmp/rvs-e2e-{tag}/state.json");
    let path = format!("/tmp/rvsd-e2e-{tag}.toml");
    let _files = TempFiles(vec![path.clone(), state.clone(), socket.clone()]);
    let config = String::from("[daemon]\nworkers = 1\n\n")
        + &topo.ports_config("af_packet", "", None)
        + &format!("[api]\nsocket = \"{socket}\"\nstate = \"{state}\"\n");
    std::fs::write(&path, &config).unwrap();
    let mut rvsd = Rvsd::start(lb, &path);
    let adm = Adm {
        bin: sibling_bin("rvsadm"),
        socket: socket.clone(),
    };
    // The socket is the owner's only.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&socket).expect("socket").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");

    let svc = format!("{VIP}:80");
    let t = ["-t", svc.as_str()];
    assert_eq!(
        adm.ok(&["-L", "-n"]).lines().count(),
        3,
        "no service at start"
    );
    adm.ok(&["-A", t[0], t[1], "-s", "rr"]);
    adm.ok(&["-P", t[0], t[1], "-z", LADDR]);
    adm.ok(&["-a", t[0], t[1], "-r", "10.0.1.2:80", "-b"]);
    adm.ok(&["-a", t[0], t[1], "-r", "10.0.2.2:80", "-b"]);
    let laddrs = adm.ok(&["-G", t[0], t[1]]);
    assert!(laddrs.contains(LADDR), "{laddrs}");

    // Traffic through the VIP, counted at the client's interface.
    let tx0 = if_counter(client, &c.a.name, "tx_packets");
    let rx0 = if_counter(client, &c.a.name, "rx_packets");
    let mut seen = Vec::new();
    for _ in 0..REQUESTS {
        seen.push(curl(client));
    }
    let sent = if_counter(client, &c.a.name, "tx_packets") - tx0;
    let received = if_counter(client, &c.a.name, "rx_packets") - rx0;
    let n1 = seen.iter().filter(|s| *s == &format!("b1 {LADDR}")).count();
    let n2 = seen.iter().filter(|s| *s == &format!("b2 {LADDR}")).count();
    assert_eq!(
        (n1, n2),
        (REQUESTS / 2, REQUESTS / 2),
        "{seen:?}\n{}",
        rvsd.log()
    );

    // Workers publish their counters every 500 ms.
    thread::sleep(Duration::from_millis(1200));
    let list = adm.ok(&["-L", "-n"]);
    assert!(list.contains(&format!("TCP  {svc} rr")), "{list}");
    let (a1, i1) = conns_of(&list, "10.0.1.2:80").expect(&list);
    let (a2, i2) = conns_of(&list, "10.0.2.2:80").expect(&list);
    assert_eq!(
        a1 + i1 + a2 + i2,
        REQUESTS as u64,
        "every connection is still in the table (closing states):\n{list}"
    );
    assert!(i1 + i2 > 0, "closed connections are inactive:\n{list}");
    let stats = adm.ok(&["-L", "-n", "--stats", "--exact"]);
    let s = stats_of(&stats, &["TCP", &svc]);
    assert_eq!(s.first(), Some(&(REQUESTS as u64)), "Conns:\n{stats}");
    // InPkts: what the client sent (an ARP exchange or two aside).
    let (in_pkts, out_pkts) = (s[1], s[2]);
    assert!(
        in_pkts <= sent && in_pkts + 4 >= sent,
        "InPkts {in_pkts}, client sent {sent}:\n{stats}"
    );
    assert!(
        out_pkts <= received && out_pkts + 4 >= received,
        "OutPkts {out_pkts}, client received {received}:\n{stats}"
    );
    let r1 = stats_of(&stats, &["->", "10.0.1.2:80"]);
    let r2 = stats_of(&stats, &["->", "10.0.2.2:80"]);
    assert_eq!((r1[0], r2[0]), (5, 5), "per server:\n{stats}");
    assert_eq!(r1[1] + r2[1], in_pkts, "{stats}");
    let rate = adm.ok(&["-L", "-n", "--rate"]);
    assert!(rate.contains("CPS") && rate.contains(&svc), "{rate}");
    let conns = adm.ok(&["-L", "-n", "-c"]);
    assert_eq!(
        conns.lines().filter(|l| l.contains(&svc)).count(),
        REQUESTS,
        "{conns}"
    );

    // Weight 0: new requests avoid b1.
    adm.ok(&["-e", t[0], t[1], "-r", "10.0.1.2:80", "-b", "-w", "0"]);
    let list = adm.ok(&["-L", "-n"]);
    assert!(
        list.lines()
            .any(|l| l.contains("10.0.1.2:80") && l.split_whitespace().nth(3) == Some("0")),
        "{list}"
    );
    for _ in 0..4 {
        assert_eq!(curl(client), format!("b2 {LADDR}"));
    }
    // Delete it.
    adm.ok(&["-d", t[0], t[1], "-r", "10.0.1.2:80"]);
    let list = adm.ok(&["-L", "-n"]);
    assert!(!list.contains("10.0.1.2"), "{list}");
    assert_eq!(curl(client), format!("b2 {LADDR}"));

    // Listings lag the traffic by up to one stats period of the workers
    // (500 ms): let them catch up before comparing listings.
    thread::sleep(Duration::from_millis(700));
    // Refusals: non-zero, one line, nothing changed.
    adm.refused(
        &["-A", "-t", "10.0.0.100:81", "-s", "bogus"],
        None,
        "scheduler",
    );
    adm.refused(
        &["-a", t[0], t[1], "-r", "10.0.1.300:80", "-b"],
        None,
        "illegal real server address",
    );
    adm.refused(&["-A", t[0], t[1], "-s", "wlc"], None, "exists");
    adm.refused(
        &["-d", t[0], t[1], "-r", "10.0.3.3:80"],
        None,
        "not defined",
    );
    adm.refused(&["-D", "-t", "10.0.0.100:82"], None, "not defined");
    adm.ok(&["-A", "-t", "10.0.0.100:8080", "-s", "wrr"]);
    adm.refused(
        &["-a", "-t", "10.0.0.100:8080", "-r", "10.0.1.2:80", "-b"],
        None,
        "local address",
    );
    // A batch is all or nothing: its last line fails, so its first does not
    // happen either.
    adm.refused(
        &["-R"],
        Some("-A -t 10.0.0.100:9090 -s rr\n-A -t 10.0.0.100:80 -s rr\n"),
        "exists",
    );
    adm.ok(&["-D", "-t", "10.0.0.100:8080"]);

    // Timeouts.
    adm.ok(&["--set", "1000", "100", "200"]);
    let tmo = adm.ok(&["-L", "--timeout"]);
    assert!(tmo.contains("1000 100 200"), "{tmo}");

    // Zero, once the workers' counters show all the traffic so far
    // (REQUESTS + 5 connections).
    let t0 = Instant::now();
    loop {
        let stats = adm.ok(&["-L", "-n", "--stats", "--exact"]);
        let conns = stats_of(&stats, &["TCP", &svc])[0];
        if conns == REQUESTS as u64 + 5 {
            break;
        }
        assert!(t0.elapsed() < TIMEOUT, "counters stuck:\n{stats}");
        thread::sleep(Duration::from_millis(100));
    }
    adm.ok(&["-Z"]);

    thread::sleep(Duration::from_millis(600));
    let stats = adm.ok(&["-L", "-n", "--stats", "--exact"]);
    assert_eq!(stats_of(&stats, &["TCP", &svc])[..3], [0, 0, 0], "{stats}");

    // Save, clear, restore.
    let saved = adm.ok(&["-S", "-n"]);
    assert!(saved.contains(&format!("-A -t {svc} -s rr")), "{saved}");
    assert!(
        saved.contains(&format!("-P -t {svc} -z {LADDR}")),
        "{saved}"
    );
    adm.ok(&["-C"]);
    assert_eq!(adm.ok(&["-L", "-n"]).lines().count(), 3);
    let r = adm.run_input(&["-R"], Some(&saved));
    assert_eq!(r.code, 0, "-R: {}", r.err);
    assert_eq!(adm.ok(&["-S", "-n"]), saved);
    assert_eq!(curl(client), format!("b2 {LADDR}"));

    // One log line per change, with the peer's uid.
    let log = rvsd.log();
    assert!(
        log.lines().any(|l| l.contains("configuration changed")
            && l.contains("uid=0")
            && l.contains("add service")),
        "{log}"
    );

    // Restart: the configuration comes back from the state file.
    assert_eq!(rvsd.terminate(), Some(0), "{}", rvsd.log());
    assert!(
        !std::path::Path::new(&socket).exists(),
        "socket left behind"
    );
    let rvsd2 = Rvsd::start(lb, &path);
    assert!(rvsd2.log().contains("restored"), "{}", rvsd2.log());
    assert_eq!(adm.ok(&["-S", "-n"]), saved);
    let tmo = adm.ok(&["-L", "--timeout"]);
    assert!(tmo.contains("1000 100 200"), "{tmo}");
    thread::sleep(Duration::from_millis(200));
    assert_eq!(curl(client), format!("b2 {LADDR}"), "{}", rvsd2.log());
    let _ = std::fs::remove_dir_all(format!("/tmp/rvs-e2e-{tag}"));
}
