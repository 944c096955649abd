//! The command line as an operator uses it: keepalived's options, exit
//! codes, `--config-test`, the pid file, and the signals (SIGUSR1 dump,
//! SIGHUP reload of a broken file refused, SIGTERM clean stop).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_rvs-keepalived");

/// A scratch directory, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("rvs-ka-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const GOOD: &str = "\
global_defs {
    router_id test
}
! a keepalived comment
virtual_server 192.0.2.1 80 {
    delay_loop 5
    lb_algo rr
    lb_kind NAT
    real_server 198.51.100.1 8080 {
        weight 2
        TCP_CHECK {
            connect_timeout 3
        }
    }
}
";

#[test]
fn config_test_accepts_a_good_file() {
    let d = Dir::new("good");
    let f = d.write("keepalived.conf", GOOD);
    let o = run(&["-t", "-f", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("configuration OK"), "{}", stderr(&o));
    // The long spellings are keepalived's too.
    let o = run(&["--config-test", "--use-file", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn config_test_names_file_and_line_of_an_error() {
    let d = Dir::new("bad");
    // The real_server block is never closed: line 9 opens it.
    let text = GOOD.replacen("        }\n    }\n}\n", "        }\n", 1);
    let f = d.write("keepalived.conf", &text);
    let o = run(&["-t", "-f", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let want = format!("{}:", f.display());
    assert!(stderr(&o).starts_with(&want), "{}", stderr(&o));
    // A bad value: the line of the value.
    let f = d.write("bad2.conf", &GOOD.replace("lb_kind NAT", "lb_kind BOGUS"));
    let o = run(&["-t", "-f", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with(&format!("{}:8:", f.display())),
        "{}",
        stderr(&o)
    );
    // A missing file.
    let o = run(&["-t", "-f", "/nonexistent/keepalived.conf"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("/nonexistent/keepalived.conf"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn unknown_keywords_are_warned_with_file_and_line() {
    let d = Dir::new("warn");
    let f = d.write(
        "keepalived.conf",
        &GOOD.replace(
            "    delay_loop 5\n",
            "    delay_loop 5\n    frobnicate yes\n",
        ),
    );
    let o = run(&["-t", "-f", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let want = format!("{}:7: warning:", f.display());
    assert!(
        stderr(&o)
            .lines()
            .any(|l| l.starts_with(&want) && l.contains("frobnicate")),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_bad_command_line_exits_2() {
    let o = run(&["--no-such-option"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_pid_file_naming_a_live_process_refuses_to_start() {
    let d = Dir::new("pid");
    let f = d.write("keepalived.conf", GOOD);
    let pid = d.write("pid", &format!("{}\n", std::process::id()));
    let o = run(&[
        "-n",
        "-l",
        "-f",
        f.to_str().unwrap(),
        "-p",
        pid.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("already running"), "{}", stderr(&o));
}

fn wait_for(what: &str, f: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < Duration::from_secs(10), "{what}");
        thread::sleep(Duration::from_millis(20));
    }
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as libc::pid_t, sig) };
}

#[test]
fn signals_dump_refuse_a_broken_reload_and_stop_cleanly() {
    let d = Dir::new("sig");
    // VRRP and checkers have nothing to do: no rvsd is needed.
    let f = d.write("keepalived.conf", "global_defs {\n    router_id sig\n}\n");
    let pid = d.0.join("pid");
    let dump = d.0.join("dump.json");
    let mut child = Command::new(BIN)
        .args(["-n", "-l", "-f"])
        .arg(&f)
        .arg("-p")
        .arg(&pid)
        .arg("--dump-file")
        .arg(&dump)
        .args(["--rvsd-socket", "/nonexistent/rvsd.sock"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = child.id();
    wait_for("pid file", || {
        std::fs::read_to_string(&pid).is_ok_and(|s| s.trim() == id.to_string())
    });
    signal(id, libc::SIGUSR1);
    wait_for("dump", || {
        std::fs::read_to_string(&dump)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .is_some_and(|v| v.is_object())
    });
    // A broken file on SIGHUP is refused; the daemon keeps running.
    std::fs::write(&f, "global_defs {\n").unwrap();
    signal(id, libc::SIGHUP);
    thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited on a bad reload"
    );
    signal(id, libc::SIGTERM);
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t0.elapsed() < Duration::from_secs(15), "no stop on SIGTERM");
        thread::sleep(Duration::from_millis(20));
    };
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("reload refused"), "{log}");
    assert!(
        log.contains(&format!("{}:2:", f.display()))
            || log.contains(&format!("{}:1:", f.display())),
        "{log}"
    );
    assert!(!Path::new(&pid).exists(), "pid file left behind");
}
