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

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{Netns, TIMEOUT, Veth, run_with_timeout, unique};

const VIP: &str = "10.0.0.100";
const LADDR: &str = "10.0.9.1";
const REQUESTS: usize = 10;

/// An HTTP server thread in a namespace; stopped on drop.
struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    fn start(ns: &Netns, name: &'static str, port: u16) -> Server {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let s = stop.clone();
        let thread = ns.spawn(move || {
            let l = TcpListener::bind(("0.0.0.0", port)).expect("bind");
            l.set_nonblocking(true).expect("nonblocking");
            tx.send(()).expect("ready");
            while !s.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut c, peer)) => {
                        c.set_nonblocking(false).ok();
                        c.set_read_timeout(Some(Duration::from_secs(2))).ok();
                        let mut buf = [0u8; 2048];
                        let _ = c.read(&mut buf);
                        let body = format!("{name} {}\n", peer.ip());
                        let _ = write!(
                            c,
                            "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        rx.recv_timeout(TIMEOUT).expect("server ready");
        Server {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// rvsd as a child process; killed on drop if still running.
struct Rvsd {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Rvsd {
    fn start(ns: &Netns, config: &str) -> Rvsd {
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.name,
                env!("CARGO_BIN_EXE_rvsd"),
                "--config",
                config,
            ])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rvsd");
        let mut r = Rvsd {
            child,
            log: Arc::new(Mutex::new(String::new())),
        };
        let stderr = r.child.stderr.take().expect("stderr");
        let log = r.log.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while !r.log().contains("rvsd started") {
            if let Ok(Some(st)) = r.child.try_wait() {
                panic!("rvsd exited with {st}:\n{}", r.log());
            }
            assert!(
                Instant::now() < deadline,
                "rvsd did not start:\n{}",
                r.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
        r
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGTERM, then the exit code (bounded wait).
    fn terminate(&mut self) -> Option<i32> {
        // SAFETY: signalling our own child (`ip netns exec` execs rvsd).
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                thread::sleep(Duration::from_millis(50));
                return st.code();
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Rvsd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Deletes files on drop.
struct TempFiles(Vec<String>);
impl Drop for TempFiles {
    fn drop(&mut self) {
        for f in &self.0 {
            let _ = std::fs::remove_file(f);
        }
    }
}

fn offloads_off(ns: &Netns, dev: &str) {
    ns.sh(&[
        "ethtool", "-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off",
    ]);
}

/// The rvsadm binary beside rvsd's (built first when run under cargo).
fn rvsadm_bin() -> PathBuf {
    let rvsd = PathBuf::from(env!("CARGO_BIN_EXE_rvsd"));
    let bin = rvsd.with_file_name("rvsadm");
    if let Ok(cargo) = std::env::var("CARGO") {
        let profile = rvsd
            .parent()
            .and_then(|p| p.file_name())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-q", "-p", "rvsadm", "--bin", "rvsadm"]);
        if profile == "release" {
            cmd.arg("--release");
        }
        let out = run_with_timeout(&mut cmd, Duration::from_secs(300)).expect("build rvsadm");
        assert!(
            out.status.success(),
            "building rvsadm: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(bin.exists(), "{} not built", bin.display());
    bin
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
    let client = Netns::new("cl");
    let lb = Netns::new("lb");
    let b1 = Netns::new("b1");
    let b2 = Netns::new("b2");
    for ns in [&client, &lb, &b1, &b2] {
        ns.disable_ipv6();
    }
    let mac = |n: u8| [0x02, 0x52, 0x56, 0x54, 0x00, n];
    let c = Veth::new(&client, mac(1), &lb, mac(2));
    let v1 = Veth::new(&b1, mac(3), &lb, mac(4));
    let v2 = Veth::new(&b2, mac(5), &lb, mac(6));
    client.ip(&["addr", "add", "10.0.0.2/24", "dev", &c.a.name]);
    client.ip(&["route", "add", "default", "via", "10.0.0.1"]);
    b1.ip(&["addr", "add", "10.0.1.2/24", "dev", &v1.a.name]);
    b1.ip(&["route", "add", "default", "via", "10.0.1.1"]);
    b2.ip(&["addr", "add", "10.0.2.2/24", "dev", &v2.a.name]);
    b2.ip(&["route", "add", "default", "via", "10.0.2.1"]);
    offloads_off(&client, &c.a.name);
    offloads_off(&b1, &v1.a.name);
    offloads_off(&b2, &v2.a.name);
    for dev in [&c.b.name, &v1.b.name, &v2.b.name] {
        offloads_off(&lb, dev);
    }
    let _s1 = Server::start(&b1, "b1", 80);
    let _s2 = Server::start(&b2, "b2", 80);

    let tag = unique("adm");
    let socket = format!("/tmp/rvs-e2e-{tag}/rvsd.sock");
    let state = format!("/tmp/rvs-e2e-{tag}/state.json");
    let path = format!("/tmp/rvsd-e2e-{tag}.toml");
    let _files = TempFiles(vec![path.clone(), state.clone(), socket.clone()]);
    let config = format!(
        r#"
[daemon]
workers = 1

[[port]]
name = "{p0}"
backend = "af_packet"

[[port]]
name = "{p1}"
backend = "af_packet"

[[port]]
name = "{p2}"
backend = "af_packet"

[[addr]]
addr = "10.0.0.1/24"
port = "{p0}"

[[addr]]
addr = "10.0.1.1/24"
port = "{p1}"

[[addr]]
addr = "10.0.2.1/24"
port = "{p2}"

[api]
socket = "{socket}"
state = "{state}"
"#,
        p0 = c.b.name,
        p1 = v1.b.name,
        p2 = v2.b.name,
    );
    std::fs::write(&path, &config).unwrap();
    let mut rvsd = Rvsd::start(&lb, &path);
    let adm = Adm {
        bin: rvsadm_bin(),
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
    let tx0 = if_counter(&client, &c.a.name, "tx_packets");
    let rx0 = if_counter(&client, &c.a.name, "rx_packets");
    let mut seen = Vec::new();
    for _ in 0..REQUESTS {
        seen.push(curl(&client));
    }
    let sent = if_counter(&client, &c.a.name, "tx_packets") - tx0;
    let received = if_counter(&client, &c.a.name, "rx_packets") - rx0;
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
        assert_eq!(curl(&client), format!("b2 {LADDR}"));
    }
    // Delete it.
    adm.ok(&["-d", t[0], t[1], "-r", "10.0.1.2:80"]);
    let list = adm.ok(&["-L", "-n"]);
    assert!(!list.contains("10.0.1.2"), "{list}");
    assert_eq!(curl(&client), format!("b2 {LADDR}"));

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
    assert_eq!(curl(&client), format!("b2 {LADDR}"));

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
    let rvsd2 = Rvsd::start(&lb, &path);
    assert!(rvsd2.log().contains("restored"), "{}", rvsd2.log());
    assert_eq!(adm.ok(&["-S", "-n"]), saved);
    let tmo = adm.ok(&["-L", "--timeout"]);
    assert!(tmo.contains("1000 100 200"), "{tmo}");
    thread::sleep(Duration::from_millis(200));
    assert_eq!(curl(&client), format!("b2 {LADDR}"), "{}", rvsd2.log());
    let _ = std::fs::remove_dir_all(format!("/tmp/rvs-e2e-{tag}"));
}
