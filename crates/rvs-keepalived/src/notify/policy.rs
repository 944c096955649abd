//! The script policy of `global_defs`: who a script runs as when it names
//! no user, and whether root scripts are guarded.
//!
//! keepalived's rules, followed here:
//! - the default user is `script_user` when set; otherwise the user
//!   `keepalived_script` if it exists; otherwise the daemon's own user
//!   (root) — unless `enable_script_security` is set, which refuses that
//!   last fallback, so scripts without their own user do not run;
//! - a script that will run as root (user or group 0, or a set-id-root
//!   program) is checked ([`super::security`]): if it or its path can be
//!   changed by a non-root user it is refused under
//!   `enable_script_security`, and only warned about without it.

use super::security;
use super::user::RunAs;
use crate::conf::model::GlobalDefs;

/// The user keepalived runs scripts as by default, when it exists.
const DEFAULT_USER: &str = "keepalived_script";

/// What `global_defs` says about scripts.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    /// Who scripts without a `user` run as, or why there is nobody.
    default: Result<RunAs, String>,
    /// `enable_script_security`.
    security: bool,
}

impl Policy {
    /// The policy of `g`, with the default user resolved now.
    pub(crate) fn new(g: &GlobalDefs) -> Policy {
        let default = match &g.script_user {
            Some(u) => RunAs::resolve(u).map_err(|e| format!("script_user {u}: {e}")),
            None => match RunAs::resolve(DEFAULT_USER) {
                Ok(u) => Ok(u),
                Err(_) if g.enable_script_security => Err(format!(
                    "enable_script_security needs a `script_user` or a user `{DEFAULT_USER}`"
                )),
                Err(_) => Ok(RunAs::ours()),
            },
        };
        if let Err(e) = &default {
            tracing::error!("scripts without their own user will not run: {e}");
        }
        Policy {
            default,
            security: g.enable_script_security,
        }
    }

    /// Who runs `line` (a command line; `user` is its own `USER [GROUP]`),
    /// or why it must not run.
    pub(crate) fn prepare(&self, line: &str, user: Option<&str>) -> Result<RunAs, String> {
        let who = match user {
            Some(u) => RunAs::resolve(u)?,
            None => self.default.clone()?,
        };
        let program = security::program(line);
        let as_root = who.is_root() || program.as_deref().is_some_and(security::grants_root);
        if !as_root {
            return Ok(who);
        }
        let verdict = match &program {
            Some(p) => security::check(p),
            None => Err("its program is not a file that can be checked".to_string()),
        };
        match verdict {
            Ok(()) => Ok(who),
            Err(e) if self.security => Err(format!(
                "it would run as root ({}) and is unsafe: {e} (enable_script_security)",
                who.name
            )),
            Err(e) => {
                if program.is_some() {
                    tracing::warn!(
                        "script `{line}` runs as root and is unsafe: {e}; \
                         enable_script_security would refuse it"
                    );
                }
                Ok(who)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn globals(user: Option<&str>, security: bool) -> GlobalDefs {
        GlobalDefs {
            script_user: user.map(str::to_string),
            enable_script_security: security,
            ..GlobalDefs::default()
        }
    }

    #[test]
    fn default_user() {
        // No keepalived_script on this machine: root, or nobody under
        // script security.
        assert!(
            RunAs::resolve(DEFAULT_USER).is_err(),
            "test host has {DEFAULT_USER}"
        );
        let p = Policy::new(&globals(None, false));
        assert_eq!(p.prepare("exit 0", None).unwrap(), RunAs::ours());
        let p = Policy::new(&globals(None, true));
        let e = p.prepare("exit 0", None).unwrap_err();
        assert!(e.contains("enable_script_security needs"), "{e}");
        // A script with its own user still runs.
        assert_eq!(p.prepare("exit 0", Some("nobody")).unwrap().uid, 65534);
        // script_user is the default; a script's own user wins.
        let p = Policy::new(&globals(Some("nobody nogroup"), true));
        assert_eq!(p.prepare("exit 0", None).unwrap().uid, 65534);
        assert_eq!(p.prepare("exit 0", Some("daemon")).unwrap().uid, 1);
        let p = Policy::new(&globals(Some("no-such-user-rvs"), false));
        assert!(
            p.prepare("true", None)
                .unwrap_err()
                .contains("does not exist")
        );
    }

    #[test]
    fn root_scripts_are_guarded_only_under_security() {
        let d = std::env::temp_dir().join(format!("rvs-ka-policy-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        let s = d.join("check.sh");
        fs::write(&s, "#!/bin/sh\nexit 0\n").unwrap();
        fs::set_permissions(&s, fs::Permissions::from_mode(0o777)).unwrap();
        let line = format!("{} arg", s.display());
        let secure = Policy::new(&globals(None, true));
        let e = secure.prepare(&line, Some("root")).unwrap_err();
        assert!(e.contains("writable by everyone"), "{e}");
        // A non-root user may run it; without security root may too.
        assert!(secure.prepare(&line, Some("nobody")).is_ok());
        assert!(
            Policy::new(&globals(None, false))
                .prepare(&line, None)
                .is_ok()
        );
        // Builtins cannot be checked: refused as root under security.
        assert!(secure.prepare("exit 0", Some("root")).is_err());
        fs::set_permissions(&s, fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(secure.prepare(&line, Some("root")).unwrap().uid, 0);
        fs::remove_dir_all(&d).unwrap();
    }
}
