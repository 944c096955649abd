//! Test support for end-to-end tests (run as root): network namespaces
//! and veth pairs with Drop guards, and commands bounded in time.
//!
//! Every name carries the process id and a counter, so parallel tests and
//! parallel test binaries never collide; guards delete what they created
//! when dropped, also when a test fails. Used as a dev-dependency only
//! (by `rvs-io` and `rvsd`); not published.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The bound for every wait in these tests.
pub const TIMEOUT: Duration = Duration::from_secs(5);

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this process and call: `tag`, the process id, a
/// counter. Keep `tag` to 3 bytes for interface names (15 bytes at most).
pub fn unique(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{tag}{}x{n}", std::process::id())
}

/// Runs `cmd`, killing it after `timeout`. Its output is captured.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> io::Result<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + timeout;
    loop {
        if child.try_wait()?.is_some() {
            return child.wait_with_output();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output()?;
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{cmd:?} timed out after {timeout:?}; stderr: {}",
                    String::from_utf8_lossy(&out.stderr)
                ),
            ));
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `program args` and fails (with its stderr) unless it succeeds.
pub fn sh(program: &str, args: &[&str]) {
    let out = run_with_timeout(Command::new(program).args(args), TIMEOUT)
        .unwrap_or_else(|e| panic!("{program} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace, deleted on drop (with every interface in it).
#[derive(Debug)]
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates a namespace named `unique(tag)`, with `lo` up.
    pub fn new(tag: &str) -> Netns {
        let ns = Netns {
            name: format!("rvs-{}", unique(tag)),
        };
        sh("ip", &["netns", "add", &ns.name]);
        sh("ip", &["-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    /// Runs a command inside the namespace, bounded by `timeout`.
    pub fn exec(&self, args: &[&str], timeout: Duration) -> io::Result<Output> {
        run_with_timeout(
            Command::new("ip")
                .args(["netns", "exec", &self.name])
                .args(args),
            timeout,
        )
    }

    /// Runs a command inside the namespace and fails unless it succeeds.
    pub fn sh(&self, args: &[&str]) {
        let out = self
            .exec(args, TIMEOUT)
            .unwrap_or_else(|e| panic!("{args:?} in {}: {e}", self.name));
        assert!(
            out.status.success(),
            "{args:?} in {} failed: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `ip -n NS args...`.
    pub fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        sh("ip", &all);
    }

    /// Turns IPv6 off in the namespace (no router solicitations, DAD or MLD
    /// frames to filter out).
    pub fn disable_ipv6(&self) {
        self.run(|| {
            for conf in ["all", "default"] {
                let path = format!("/proc/sys/net/ipv6/conf/{conf}/disable_ipv6");
                std::fs::write(&path, "1").unwrap_or_else(|e| panic!("{path}: {e}"));
            }
        });
    }

    /// Runs `f` on a thread that has entered the namespace: sockets and
    /// devices it creates belong to the namespace and can be used from any
    /// thread afterwards.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        self.spawn(f)
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    }

    /// Like [`Netns::run`], without waiting: a client or server running
    /// beside the test.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> thread::JoinHandle<T> {
        let path = format!("/run/netns/{}", self.name);
        thread::spawn(move || {
            let file = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            // SAFETY: setns on a valid namespace descriptor; it changes only
            // this thread's network namespace.
            let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "setns {path}: {}", io::Error::last_os_error());
            f()
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run_with_timeout(
            Command::new("ip").args(["netns", "del", &self.name]),
            TIMEOUT,
        );
    }
}

/// One end of a veth pair.
#[derive(Debug, Clone)]
pub struct VethEnd {
    pub name: String,
    pub ns: String,
    pub mac: [u8; 6],
}

/// A veth pair between two namespaces, both ends up; deleted on drop (and
/// with either namespace).
#[derive(Debug)]
pub struct Veth {
    pub a: VethEnd,
    pub b: VethEnd,
}

impl Veth {
    /// Creates a pair with end `a` in `ns_a` and end `b` in `ns_b`, with the
    /// given MAC addresses, and brings both up.
    pub fn new(ns_a: &Netns, mac_a: [u8; 6], ns_b: &Netns, mac_b: [u8; 6]) -> Veth {
        let a = VethEnd {
            name: unique("va"),
            ns: ns_a.name.clone(),
            mac: mac_a,
        };
        let b = VethEnd {
            name: unique("vb"),
            ns: ns_b.name.clone(),
            mac: mac_b,
        };
        let (ma, mb) = (mac_str(mac_a), mac_str(mac_b));
        sh(
            "ip",
            &[
                "link", "add", &a.name, "address", &ma, "netns", &a.ns, "type", "veth", "peer",
                "name", &b.name, "address", &mb, "netns", &b.ns,
            ],
        );
        let veth = Veth { a, b };
        ns_a.ip(&["link", "set", &veth.a.name, "up"]);
        ns_b.ip(&["link", "set", &veth.b.name, "up"]);
        veth
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = run_with_timeout(
            Command::new("ip").args(["-n", &self.a.ns, "link", "del", &self.a.name]),
            TIMEOUT,
        );
    }
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac_str(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
