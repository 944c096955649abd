//! Running the configuration's scripts: notify_up/down, notify_master/...,
//! quorum_up/down, vrrp_script and MISC_CHECK commands.
//!
//! A script is a command line as written in keepalived.conf; like
//! keepalived, extra arguments (the notify `INSTANCE name STATE prio`
//! form) are appended. It runs under `/bin/sh -c`, so quoting in the file
//! works as a shell user expects, with a time limit after which it is
//! killed (its process group: a script's children die with it). A script
//! never blocks the caller beyond its limit.
//!
//! It runs as keepalived would run it ([`policy`]): as its own user (a
//! `vrrp_script`'s or MISC_CHECK's `user`, the `USER [GROUP]` written
//! after a notify script's command), or `global_defs`' `script_user`, or
//! `keepalived_script`, or root; and under `enable_script_security` a
//! root script that a non-root user could change is refused. The policy
//! is process-wide, like keepalived's `global_defs`: [`configure`] sets it
//! at start and on every reload, and each script is resolved and checked
//! once per configuration (the verdict is kept, so a refusal is logged
//! once, not at every run).

mod policy;
mod security;
mod user;

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use tokio::process::Command;

use crate::conf::model::{GlobalDefs, Script};
use policy::Policy;
use user::RunAs;

/// How a script ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScriptResult {
    /// It exited with this code.
    Exited(i32),
    /// A signal ended it.
    Signalled,
    /// It ran past its limit and was killed.
    TimedOut,
    /// It could not be started, or the script policy refused it.
    NotStarted,
}

impl ScriptResult {
    /// Exit 0.
    pub(crate) fn success(self) -> bool {
        self == ScriptResult::Exited(0)
    }
}

/// The policy in force and the verdicts reached under it, per command
/// line and `user`.
#[derive(Debug)]
struct Scripts {
    policy: Policy,
    verdicts: HashMap<(String, Option<String>), Result<RunAs, String>>,
}

static SCRIPTS: LazyLock<Mutex<Scripts>> =
    LazyLock::new(|| Mutex::new(Scripts::new(Policy::new(&GlobalDefs::default()))));

impl Scripts {
    fn new(policy: Policy) -> Scripts {
        Scripts {
            policy,
            verdicts: HashMap::new(),
        }
    }
}

/// Applies `global_defs`' script settings (`script_user`,
/// `enable_script_security`): call at start and on every reload. Scripts
/// are checked again under the new settings.
pub(crate) fn configure(g: &GlobalDefs) {
    let policy = Policy::new(g);
    *SCRIPTS.lock().unwrap_or_else(|p| p.into_inner()) = Scripts::new(policy);
}

/// Who runs `cmd` under the configured policy (resolved once).
fn verdict(cmd: &str, user: Option<&str>) -> Result<RunAs, String> {
    let mut s = SCRIPTS.lock().unwrap_or_else(|p| p.into_inner());
    let key = (cmd.to_string(), user.map(str::to_string));
    if let Some(v) = s.verdicts.get(&key) {
        return v.clone();
    }
    let v = s.policy.prepare(cmd, user);
    if let Err(e) = &v {
        tracing::error!("script `{cmd}` will not run: {e}");
    }
    s.verdicts.insert(key, v.clone());
    v
}

/// Checks that `USER [[:]GROUP]` names an existing user (and group):
/// the parser disables a notify script whose user does not, as
/// keepalived does.
pub(crate) fn check_user(spec: &str) -> Result<(), String> {
    RunAs::resolve(spec).map(|_| ())
}

/// Runs a notify-type script as its own user (else the default script
/// user), with `args` appended (each single-quoted), waiting at most
/// `timeout`.
pub(crate) async fn run(script: &Script, args: &[&str], timeout: Duration) -> ScriptResult {
    run_as(&script.cmd, script.user.as_deref(), args, timeout).await
}

/// Runs `cmd` as `user` (`USER [[:]GROUP]`; None: the default script
/// user), with `args` appended, waiting at most `timeout`. A script the
/// policy refuses is [`ScriptResult::NotStarted`] (the reason is logged
/// once).
pub(crate) async fn run_as(
    cmd: &str,
    user: Option<&str>,
    args: &[&str],
    timeout: Duration,
) -> ScriptResult {
    match verdict(cmd, user) {
        Ok(who) => exec(cmd, &who, args, timeout).await,
        Err(_) => ScriptResult::NotStarted,
    }
}

/// Runs `cmd` as `who`.
async fn exec(cmd: &str, who: &RunAs, args: &[&str], timeout: Duration) -> ScriptResult {
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
    who.apply(&mut c);
    let mut child = match c.spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("cannot start `{line}` as {}: {e}", who.name);
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

/// Runs a notify script in the background, as [`run`] does (its result
/// is only logged).
pub(crate) fn spawn(script: &Script, args: &[&str]) {
    let script = script.clone();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::spawn(async move {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = run(&script, &argv, Duration::from_secs(30)).await;
        tracing::info!("notify `{}` {argv:?}: {r:?}", script.cmd);
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
            run_as("exit 3", None, &[], Duration::from_secs(5)).await,
            ScriptResult::Exited(3)
        );
        assert_eq!(
            run_as("true", None, &[], Duration::from_secs(5)).await,
            ScriptResult::Exited(0)
        );
        assert_eq!(
            run_as("sleep 5", None, &[], Duration::from_millis(100)).await,
            ScriptResult::TimedOut
        );
        // Arguments arrive quoted, spaces and quotes intact.
        assert_eq!(
            run_as(
                "f() { test \"$1\" = \"a b'c\"; }; f",
                None,
                &["a b'c"],
                Duration::from_secs(5)
            )
            .await,
            ScriptResult::Exited(0)
        );
    }

    /// A scratch directory under /tmp with `mode`.
    fn scratch(tag: &str, mode: u32) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let d = std::env::temp_dir().join(format!("rvs-ka-notify-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode)).unwrap();
        d
    }

    #[tokio::test]
    async fn scripts_run_as_their_user() {
        let d = scratch("user", 0o777);
        let out = d.join("ids");
        let cmd = format!("id -u > {0}; id -g >> {0}; id -G >> {0}", out.display());
        let r = run_as(&cmd, Some("nobody"), &[], Duration::from_secs(5)).await;
        assert_eq!(r, ScriptResult::Exited(0));
        let ids = std::fs::read_to_string(&out).unwrap();
        // uid and gid of nobody, and none of root's groups.
        assert_eq!(ids, "65534\n65534\n65534\n");
        std::fs::remove_file(&out).unwrap();
        // A group of its own.
        let r = run_as(&cmd, Some("nobody daemon"), &[], Duration::from_secs(5)).await;
        assert_eq!(r, ScriptResult::Exited(0));
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "65534\n1\n1\n");
        // An unknown user: not started.
        let r = run_as(
            "true",
            Some("no-such-user-rvs"),
            &[],
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(r, ScriptResult::NotStarted);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[tokio::test]
    async fn notify_scripts_run_as_their_user() {
        let d = scratch("notify-user", 0o777);
        let out = d.join("ids");
        let script = |user: Option<&str>| Script {
            cmd: format!(
                "id -u > {0}; id -g >> {0}; echo \"$@\" >> {0}",
                out.display()
            ),
            user: user.map(str::to_string),
        };
        // `notify_master "..." nobody`: nobody's uid and gid, with the
        // notify arguments after the command.
        let r = run(
            &script(Some("nobody")),
            &["INSTANCE", "VI_1"],
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(r, ScriptResult::Exited(0));
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "65534\n65534\nINSTANCE VI_1\n"
        );
        // Without a user: the default script user (root here: the test
        // host has no keepalived_script and no script_user is set).
        std::fs::remove_file(&out).unwrap();
        let r = run(&script(None), &[], Duration::from_secs(5)).await;
        assert_eq!(r, ScriptResult::Exited(0));
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "0\n0\n\n");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[tokio::test]
    async fn script_security_refuses_writable_root_scripts() {
        use std::os::unix::fs::PermissionsExt;
        let d = scratch("sec", 0o755);
        let mark = d.join("ran");
        let script = d.join("notify.sh");
        std::fs::write(&script, format!("#!/bin/sh\ntouch {}\n", mark.display())).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o777)).unwrap();
        let g = GlobalDefs {
            script_user: Some("root".into()),
            enable_script_security: true,
            ..GlobalDefs::default()
        };
        let policy = Policy::new(&g);
        let cmd = script.display().to_string();
        let e = policy.prepare(&cmd, None).unwrap_err();
        assert!(
            e.contains(&format!("{cmd} is writable by everyone")) && e.contains("root"),
            "{e}"
        );
        // Once safe (0755, root's), it runs as root.
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let who = policy.prepare(&cmd, None).unwrap();
        let r = exec(&cmd, &who, &[], Duration::from_secs(5)).await;
        assert_eq!(r, ScriptResult::Exited(0));
        assert!(mark.exists());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
