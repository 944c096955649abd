//! The demo's system plumbing: network namespaces and child processes as
//! guards that undo themselves when dropped (on success, on error and after
//! Ctrl-C), commands bounded in time, and the Ctrl-C flag.
//!
//! Children run in process groups of their own, so a Ctrl-C at the terminal
//! reaches only the demo, which then stops them in order (rvsd gets SIGTERM
//! and detaches its XDP programs; nginx's master takes its workers with it)
//! before the namespaces are deleted.

use std::fs::File;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The prefix of every namespace the demo creates: `rvsdemo<pid>-<role>`.
pub(crate) const NS_PREFIX: &str = "rvsdemo";

/// The bound for every short command and wait.
pub(crate) const SHORT: Duration = Duration::from_secs(5);

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// From now on SIGINT, SIGTERM and SIGHUP only raise the flag that
/// [`check_interrupted`] reads: the demo unwinds through its guards.
pub(crate) fn catch_interrupts() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe).
        unsafe {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
}

/// An error once Ctrl-C (or SIGTERM) arrived.
pub(crate) fn check_interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::Relaxed) {
        bail!("interrupted: everything the demo started has been stopped and removed");
    }
    Ok(())
}

/// Sleeps `d` in small steps, returning early with an error on Ctrl-C.
pub(crate) fn sleep(d: Duration) -> Result<()> {
    let end = Instant::now() + d;
    loop {
        check_interrupted()?;
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        thread::sleep((end - now).min(Duration::from_millis(50)));
    }
}

/// Runs a command to completion within `timeout`, capturing its output.
pub(crate) fn output(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {what}"))?;
    // Drain both pipes beside the wait so a chatty command cannot block.
    let mut so = child.stdout.take().context("stdout")?;
    let mut se = child.stderr.take().context("stderr")?;
    let t_out = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let t_err = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{what} took longer than {timeout:?}");
        }
        thread::sleep(Duration::from_millis(5));
    };
    Ok(Output {
        status,
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
    })
}

/// Runs a command (bounded by [`SHORT`]); failing is an error with its
/// stderr.
pub(crate) fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = output(Command::new(program).args(args), SHORT)?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A network namespace; on drop every process still in it is killed and
/// the namespace is deleted (with its interfaces).
#[derive(Debug)]
pub(crate) struct Netns {
    pub(crate) name: String,
}

impl Netns {
    /// `rvsdemo<pid>-<role>`, with `lo` up and IPv6 off (no router
    /// solicitations or DAD in the way).
    pub(crate) fn new(role: &str) -> Result<Netns> {
        let ns = Netns {
            name: format!("{NS_PREFIX}{}-{role}", std::process::id()),
        };
        run("ip", &["netns", "add", &ns.name])?;
        ns.ip(&["link", "set", "lo", "up"])?;
        ns.exec(&[
            "sh",
            "-c",
            "for c in all default; do echo 1 > /proc/sys/net/ipv6/conf/$c/disable_ipv6; done",
        ])?;
        Ok(ns)
    }

    /// `ip -n NS args...`.
    pub(crate) fn ip(&self, args: &[&str]) -> Result<String> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Runs a command inside the namespace (bounded by [`SHORT`]).
    pub(crate) fn exec(&self, args: &[&str]) -> Result<String> {
        let mut all = vec!["netns", "exec", self.name.as_str()];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// A command that runs inside the namespace.
    pub(crate) fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        delete_namespace(&self.name);
    }
}

/// Stops what is left in a namespace (processes the demo started there:
/// SIGTERM, SIGKILL after a second) and deletes it.
fn delete_namespace(name: &str) {
    let pids = || -> Vec<i32> {
        run("ip", &["netns", "pids", name])
            .map(|s| {
                s.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut left = pids();
    for sig in [libc::SIGTERM, libc::SIGKILL] {
        for &pid in &left {
            // SAFETY: plain kill(2) of a process living in our namespace.
            unsafe { libc::kill(pid, sig) };
        }
        let end = Instant::now() + Duration::from_secs(1);
        while !left.is_empty() && Instant::now() < end {
            thread::sleep(Duration::from_millis(20));
            left = pids();
        }
    }
    let _ = run("ip", &["netns", "del", name]);
}

/// Namespaces left by an earlier demo that was killed outright (SIGKILL,
/// power loss...): those whose creator's process id is gone. Removed before
/// a new run so leftovers never pile up.
pub(crate) fn remove_stale_namespaces() -> Vec<String> {
    let Ok(list) = run("ip", &["netns", "list"]) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for line in list.lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix(NS_PREFIX)
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            delete_namespace(name);
            let _ = std::fs::remove_dir_all(std::env::temp_dir().join(format!("{NS_PREFIX}{pid}")));
            removed.push(name.to_string());
        }
    }
    removed
}

/// A child process in a process group of its own; on drop the group gets
/// SIGTERM, then SIGKILL if it has not gone within a second.
#[derive(Debug)]
pub(crate) struct Proc {
    child: Child,
    done: bool,
}

impl Proc {
    /// Starts `cmd` (stdin closed; stdout and stderr as the caller set
    /// them).
    pub(crate) fn spawn(name: &str, cmd: &mut Command) -> Result<Proc> {
        let child = cmd
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {name}: {cmd:?}"))?;
        Ok(Proc { child, done: false })
    }

    /// Its process id (also its process group).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Takes its stdout pipe (when spawned with `Stdio::piped()`).
    pub(crate) fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    /// Sends a signal to the process itself.
    pub(crate) fn signal(&self, sig: libc::c_int) {
        if !self.done {
            // SAFETY: kill(2) on our own child, which has not been reaped.
            unsafe { libc::kill(self.pid() as libc::pid_t, sig) };
        }
    }

    /// `Some(status)` once it has exited.
    pub(crate) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        match self.child.try_wait() {
            Ok(Some(st)) => {
                self.done = true;
                Some(st)
            }
            _ => None,
        }
    }

    /// Waits up to `timeout` for it to exit by itself.
    pub(crate) fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(st) = self.exited() {
                return Some(st);
            }
            if Instant::now() >= end {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM to its process group, SIGKILL after `grace`; returns how
    /// it ended (None: it had to be killed).
    pub(crate) fn stop(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        let pgid = self.pid() as libc::pid_t;
        if !self.done {
            // SAFETY: the process group we created for this child.
            unsafe { libc::kill(-pgid, libc::SIGTERM) };
        }
        let st = self.wait(grace);
        // Whatever is left of the group (also after a clean exit: an nginx
        // worker outliving its master).
        // SAFETY: as above.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        if st.is_none() {
            let _ = self.child.wait();
            self.done = true;
        }
        st
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if !self.done {
            self.stop(Duration::from_secs(1));
        }
    }
}

/// A temporary directory, removed on drop.
#[derive(Debug)]
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new() -> Result<TempDir> {
        let p = std::env::temp_dir().join(format!("{NS_PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).with_context(|| format!("{}", p.display()))?;
        Ok(TempDir(p))
    }

    /// A path inside it, as a string.
    pub(crate) fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }

    /// A new file inside it, for a child's output.
    pub(crate) fn file(&self, name: &str) -> Result<File> {
        let p = self.0.join(name);
        File::create(&p).with_context(|| format!("{}", p.display()))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The end of an act: "all as expected", or an error listing `problems`
/// (namespaces still there, `left`, are one).
pub(crate) fn verdict(mut problems: Vec<String>, left: usize, act: &str) -> anyhow::Result<()> {
    if left != 0 {
        problems.push("namespaces left behind".into());
    }
    if problems.is_empty() {
        println!("   all as expected.");
        Ok(())
    } else {
        anyhow::bail!("{act} saw problems: {}", problems.join("; "))
    }
}
