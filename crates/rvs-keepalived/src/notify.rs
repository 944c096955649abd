//! Running the configuration's scripts: notify_up/down, notify_master/...,
//! quorum_up/down, vrrp_script and MISC_CHECK commands.
//!
//! A script is a command line as written in keepalived.conf; like
//! keepalived, extra arguments (the notify `INSTANCE name STATE prio`
//! form) are appended. It runs under `/bin/sh -c`, so quoting in the file
//! works as a shell user expects, with a time limit after which it is
//! killed (its process group: a script's children die with it). A script
//! never blocks the caller beyond its limit.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// How a script ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptResult {
    /// It exited with this code.
    Exited(i32),
    /// A signal ended it.
    Signalled,
    /// It ran past its limit and was killed.
    TimedOut,
    /// It could not be started.
    NotStarted,
}

impl ScriptResult {
    /// Exit 0.
    pub fn success(self) -> bool {
        self == ScriptResult::Exited(0)
    }
}

/// Runs `cmd` with `args` appended (each single-quoted), waits at most
/// `timeout`.
pub async fn run(cmd: &str, args: &[&str], timeout: Duration) -> ScriptResult {
    let mut line = cmd.to_string();
    for a in args {
        line.push(' ');
        line.push_str(&quote(a));
    }
    let mut c = Command::new("/bin/sh");
    c.arg("-c")
        .arg(&line)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match c.spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("cannot start `{line}`: {e}");
            return ScriptResult::NotStarted;
        }
    };
    let pid = child.id();
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => match status.code() {
            Some(code) => ScriptResult::Exited(code),
            None => ScriptResult::Signalled,
        },
        Ok(Err(_)) => ScriptResult::NotStarted,
        Err(_) => {
            if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                // SAFETY: kill(2) on the process group we created.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
            }
            let _ = child.wait().await;
            tracing::warn!("`{line}` timed out after {timeout:?}; killed");
            ScriptResult::TimedOut
        }
    }
}

/// Runs a notify script in the background (its result is only logged).
pub fn spawn(cmd: &str, args: &[&str]) {
    let cmd = cmd.to_string();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::spawn(async move {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = run(&cmd, &argv, Duration::from_secs(30)).await;
        tracing::info!("notify `{cmd}` {argv:?}: {r:?}");
    });
}

/// Single-quotes one argument for sh.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn exit_codes_and_timeouts() {
        assert_eq!(
            run("exit 3", &[], Duration::from_secs(5)).await,
            ScriptResult::Exited(3)
        );
        assert_eq!(
            run("true", &[], Duration::from_secs(5)).await,
            ScriptResult::Exited(0)
        );
        assert_eq!(
            run("sleep 5", &[], Duration::from_millis(100)).await,
            ScriptResult::TimedOut
        );
        // Arguments arrive quoted, spaces and quotes intact.
        assert_eq!(
            run(
                "f() { test \"$1\" = \"a b'c\"; }; f",
                &["a b'c"],
                Duration::from_secs(5)
            )
            .await,
            ScriptResult::Exited(0)
        );
    }
}
