//! What the rvs-keepalived end-to-end tests share: rvs-keepalived and
//! Debian's keepalived as child processes in a namespace (config file,
//! pid files, log, signals), and rvsd's API read from a test.
//!
//! Helpers of the individual test files (health checks, VRRP interop,
//! failover) are added below the process wrappers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rvs_netns::{Netns, unique};

use super::harness::sibling_bin;

/// A directory under /tmp for one test's files, removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        let p = PathBuf::from(format!("/tmp/rvs-ka-e2e-{}", unique(tag)));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    /// A path inside it.
    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes `text` to `name` inside it and returns the path.
    pub(crate) fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.file(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process in a namespace whose stderr and stdout lines are
/// collected; killed on drop.
pub(crate) struct Daemon {
    pub(crate) child: Child,
    log: Arc<Mutex<String>>,
    pub(crate) name: String,
}

impl Daemon {
    /// Starts `program args` in `ns`.
    pub(crate) fn spawn(ns: &Netns, name: &str, program: &Path, args: &[&str]) -> Daemon {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns.name])
            .arg(program)
            .args(args)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let log = Arc::new(Mutex::new(String::new()));
        for pipe in [
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let log = log.clone();
            thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        Daemon {
            child,
            log,
            name: name.to_string(),
        }
    }

    /// Everything it printed so far.
    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits (bounded) until its log contains `needle` `n` times; panics
    /// with the log otherwise, or if it exits first.
    #[track_caller]
    pub(crate) fn wait_log(&mut self, needle: &str, n: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if self.log().matches(needle).count() >= n {
                return;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                thread::sleep(Duration::from_millis(100));
                panic!(
                    "{} exited ({st}) before `{needle}`:\n{}",
                    self.name,
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{}: no `{needle}` within {limit:?}:\n{}",
                self.name,
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `sig` to it.
    pub(crate) fn signal(&self, sig: i32) {
        // SAFETY: signalling our own child (`ip netns exec` execs it).
        unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
    }

    /// SIGKILL, as a node dying.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and the exit code (bounded wait; None if it still runs).
    pub(crate) fn terminate(&mut self) -> Option<i32> {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Whether it still runs.
    pub(crate) fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// rvs-keepalived in `ns` with `conf`, in the foreground, logging to the
/// console, talking to rvsd at `rvsd_socket`; pid and dump files in `dir`.
pub(crate) fn rvs_keepalived(
    ns: &Netns,
    dir: &TempDir,
    conf: &Path,
    rvsd_socket: &Path,
    extra: &[&str],
) -> Daemon {
    let bin = sibling_bin("rvs-keepalived");
    let pid = dir.file("rvs-keepalived.pid");
    let dump = dir.file("rvs-keepalived.json");
    let mut args = vec![
        "-n".to_string(),
        "-l".to_string(),
        "-D".to_string(),
        "-f".to_string(),
        conf.display().to_string(),
        "-p".to_string(),
        pid.display().to_string(),
        "--rvsd-socket".to_string(),
        rvsd_socket.display().to_string(),
        "--dump-file".to_string(),
        dump.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    Daemon::spawn(ns, "rvs-keepalived", &bin, &argv)
}

/// SIGUSR1 to rvs-keepalived, then its JSON state dump (bounded wait).
pub(crate) fn dump(ka: &Daemon, dir: &TempDir) -> serde_json::Value {
    let path = dir.file("rvs-keepalived.json");
    let _ = std::fs::remove_file(&path);
    ka.signal(libc::SIGUSR1);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Ok(v) = serde_json::from_str(&text)
        {
            return v;
        }
        assert!(Instant::now() < deadline, "no dump:\n{}", ka.log());
        thread::sleep(Duration::from_millis(50));
    }
}

/// Debian's keepalived in `ns` (VRRP only, foreground, console log),
/// its files in `dir`.
pub(crate) fn real_keepalived(ns: &Netns, dir: &TempDir, conf: &Path) -> Daemon {
    let args = [
        "-n".to_string(),
        "-l".to_string(),
        "-D".to_string(),
        "-P".to_string(),
        "-f".to_string(),
        conf.display().to_string(),
        "-p".to_string(),
        dir.file("keepalived.pid").display().to_string(),
        "-r".to_string(),
        dir.file("vrrp.pid").display().to_string(),
        "-c".to_string(),
        dir.file("checkers.pid").display().to_string(),
    ];
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    Daemon::spawn(ns, "keepalived", Path::new("/usr/sbin/keepalived"), &argv)
}

/// One request to rvsd's API.
pub(crate) fn api(socket: &Path, req: &rvs_api::Request) -> rvs_api::Reply {
    let mut c = rvs_api::Client::connect(socket)
        .unwrap_or_else(|e| panic!("connect {}: {e}", socket.display()));
    c.call(req).unwrap_or_else(|e| panic!("{req:?}: {e}"))
}

/// rvsd's interface addresses.
pub(crate) fn rvsd_addrs(socket: &Path) -> Vec<rvs_api::IfAddr> {
    match api(socket, &rvs_api::Request::ListAddrs { dev: None }) {
        rvs_api::Reply::Addrs { addrs } => addrs,
        other => panic!("ListAddrs: {other:?}"),
    }
}

/// rvsd's services.
pub(crate) fn rvsd_services(socket: &Path) -> Vec<rvs_api::ServiceEntry> {
    match api(socket, &rvs_api::Request::ListServices { service: None }) {
        rvs_api::Reply::Services { list } => list.services,
        other => panic!("ListServices: {other:?}"),
    }
}

// ---- VRRP interoperability (keepalived_vrrp_e2e) ----

/// A `vrrp_instance VI_1` on `iface`: VRRPv2, vrid 51, PASS
/// authentication, `advert_int 1`, VIP `vip`, state BACKUP, `priority`,
/// and `extra` lines (`nopreempt`, `version 3`, `unicast_peer { ... }`).
pub(crate) fn vrrp_conf(iface: &str, priority: u8, vip: &str, extra: &str) -> String {
    format!(
        "global_defs {{\n    router_id vrrp-e2e-{priority}\n}}\n\n\
         vrrp_instance VI_1 {{\n    state BACKUP\n    interface {iface}\n    \
         virtual_router_id 51\n    priority {priority}\n    advert_int 1\n    \
         authentication {{\n        auth_type PASS\n        auth_pass rvs-e2e\n    }}\n    \
         virtual_ipaddress {{\n        {vip}\n    }}\n{extra}\n}}\n"
    )
}

/// The state of instance `inst` as the last "(INST) Entering X STATE"
/// line of a keepalived or rvs-keepalived log says.
pub(crate) fn vrrp_state(log: &str, inst: &str) -> Option<String> {
    let needle = format!("({inst}) Entering ");
    log.lines()
        .rev()
        .find_map(|l| l.split_once(&needle))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .map(str::to_string)
}

/// The MAC that answers ARP for `ip` on `dev` in `ns` (arping, bounded),
/// as `aa:bb:...` in lowercase.
pub(crate) fn arp_owner(ns: &Netns, dev: &str, ip: &str) -> Option<String> {
    let out = ns
        .exec(
            &["arping", "-c", "1", "-w", "2", "-I", dev, ip],
            Duration::from_secs(5),
        )
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.contains("reply from"))?;
    let mac = line.split('[').nth(1)?.split(']').next()?;
    Some(mac.to_ascii_lowercase())
}

/// Waits (bounded) until `f` holds, polling every 20 ms; returns how long
/// it took, or panics with `what` and `context()`.
#[track_caller]
pub(crate) fn poll_until(
    limit: Duration,
    what: &str,
    context: &dyn Fn() -> String,
    mut f: impl FnMut() -> bool,
) -> Duration {
    let t0 = Instant::now();
    while !f() {
        assert!(
            t0.elapsed() < limit,
            "{what}: not within {limit:?}\n{}",
            context()
        );
        thread::sleep(Duration::from_millis(20));
    }
    t0.elapsed()
}

/// `tcpdump -vv` of `count` VRRP packets (`filter`: `ip proto 112` or
/// `ip6 proto 112`) on `dev` in `ns`, bounded by `limit`.
pub(crate) fn capture_vrrp(
    ns: &Netns,
    dev: &str,
    filter: &str,
    count: usize,
    limit: Duration,
) -> String {
    let c = count.to_string();
    let mut args = vec!["tcpdump", "-l", "-nn", "-vv", "-i", dev, "-c", &c];
    args.extend(filter.split_whitespace());
    let out = ns.exec(&args, limit);
    match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
        Err(e) => format!("tcpdump: {e}"),
    }
}

// ---- Health-check tests: nginx backends and rvsd's table. ----

/// nginx in a namespace, answering `body` on `/` and 500 on `/bad`, on
/// port 80; stopped gracefully (SIGTERM, so its workers go too) on drop.
pub(crate) struct Nginx {
    daemon: Option<Daemon>,
    ns_name: String,
    conf: PathBuf,
    prefix: PathBuf,
}

impl Nginx {
    /// Writes the configuration to `dir` and starts nginx in `ns`.
    pub(crate) fn start(ns: &Netns, dir: &TempDir, name: &str, body: &str) -> Nginx {
        let prefix = dir.file(&format!("nginx-{name}"));
        std::fs::create_dir_all(prefix.join("logs")).unwrap();
        let conf = dir.write(
            &format!("nginx-{name}.conf"),
            &format!(
                "worker_processes 1;\n\
                 daemon off;\n\
                 pid {pid};\n\
                 error_log {prefix}/logs/error.log;\n\
                 events {{ worker_connections 256; }}\n\
                 http {{\n\
                 \x20   access_log off;\n\
                 \x20   default_type text/plain;\n\
                 \x20   server {{\n\
                 \x20       listen 80;\n\
                 \x20       location = /bad {{ return 500; }}\n\
                 \x20       location / {{ return 200 \"{body}\"; }}\n\
                 \x20   }}\n\
                 }}\n",
                pid = prefix.join("nginx.pid").display(),
                prefix = prefix.display(),
            ),
        );
        let mut n = Nginx {
            daemon: None,
            ns_name: ns.name.clone(),
            conf,
            prefix,
        };
        n.resume(ns);
        n
    }

    /// Starts it again after [`Nginx::stop`]; returns once it answers.
    pub(crate) fn resume(&mut self, ns: &Netns) {
        let conf = self.conf.display().to_string();
        let prefix = self.prefix.display().to_string();
        let args = ["-c", conf.as_str(), "-p", prefix.as_str()];
        let mut d = Daemon::spawn(ns, "nginx", Path::new("/usr/sbin/nginx"), &args);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = ns.exec(
                &["curl", "-s", "--max-time", "1", "http://127.0.0.1/"],
                Duration::from_secs(3),
            );
            if out.is_ok_and(|o| o.status.success()) {
                break;
            }
            assert!(d.alive(), "nginx in {} exited:\n{}", self.ns_name, d.log());
            assert!(
                Instant::now() < deadline,
                "nginx in {} does not answer",
                self.ns_name
            );
            thread::sleep(Duration::from_millis(50));
        }
        self.daemon = Some(d);
    }

    /// Stops it (SIGTERM: the master stops its workers); the port then
    /// refuses connections.
    pub(crate) fn stop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            assert!(d.terminate().is_some(), "nginx did not stop:\n{}", d.log());
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The destinations of rvsd's service `vip` (TCP) as (address, port,
/// weight), sorted; `None` if the service is absent.
pub(crate) fn service_reals(
    socket: &Path,
    vip: std::net::SocketAddr,
) -> Option<Vec<(std::net::IpAddr, u16, u32)>> {
    let key = rvs_api::ServiceKey::Addr {
        protocol: rvs_api::Protocol::Tcp,
        addr: vip.ip(),
        port: vip.port(),
    };
    let s = rvsd_services(socket)
        .into_iter()
        .find(|s| s.service.key == key)?;
    let mut v: Vec<_> = s
        .real_servers
        .iter()
        .map(|r| (r.server.addr, r.server.port, r.server.weight))
        .collect();
    v.sort();
    Some(v)
}

/// Waits (bounded) until `f` holds; returns how long it took. `logs`
/// gives what to print on failure.
#[track_caller]
pub(crate) fn wait_until(
    limit: Duration,
    what: &str,
    logs: &dyn Fn() -> String,
    f: impl Fn() -> bool,
) -> Duration {
    let t0 = Instant::now();
    while !f() {
        assert!(
            t0.elapsed() < limit,
            "{what} not within {limit:?}\n{}",
            logs()
        );
        thread::sleep(Duration::from_millis(20));
    }
    t0.elapsed()
}
