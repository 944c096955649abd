//! MISC_CHECK: a script decides. Exit 0 is up; with `misc_dynamic`, exit
//! 2..=255 is up too and sets the real server's weight to the code minus
//! 2 (exit 0 then restores the configured weight); anything else, a
//! signal, or running past `misc_timeout` (default: the delay_loop) is a
//! failure. The script runs through [`crate::notify::run_as`], as its
//! `user` (else the configured script user), killed with its process
//! group at the limit.

use std::time::Duration;

use super::{Pass, spec::CheckSpec};
use crate::notify::{self, ScriptResult};

/// One MISC_CHECK attempt: `path` run as `user` within `timeout`.
pub(crate) async fn check(
    spec: &CheckSpec,
    path: &str,
    timeout: Option<Duration>,
    dynamic: bool,
    user: Option<&str>,
) -> Result<Pass, String> {
    let limit = timeout.unwrap_or(spec.delay_loop);
    verdict(notify::run_as(path, user, &[], limit).await, dynamic, limit)
}

/// What a script's end means.
fn verdict(r: ScriptResult, dynamic: bool, limit: Duration) -> Result<Pass, String> {
    match r {
        ScriptResult::Exited(0) => Ok(Pass::default()),
        ScriptResult::Exited(code @ 2..=255) if dynamic => Ok(Pass {
            weight: Some(code as u32 - 2),
        }),
        ScriptResult::Exited(code) => Err(format!("exited with status {code}")),
        ScriptResult::Signalled => Err("ended by a signal".into()),
        ScriptResult::TimedOut => Err(format!("timed out after {limit:?}")),
        ScriptResult::NotStarted => Err("could not be started".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testutil::spec;
    use crate::conf::model::CheckKind;

    #[tokio::test]
    async fn runs_as_its_user() {
        let s = spec(CheckKind::Ping, "127.0.0.1:1".parse().unwrap());
        let l = Some(Duration::from_secs(5));
        let as_nobody = "test \"$(id -u)\" = 65534";
        assert_eq!(
            check(&s, as_nobody, l, false, Some("nobody")).await,
            Ok(Pass::default())
        );
        assert!(check(&s, as_nobody, l, false, None).await.is_err());
    }

    #[tokio::test]
    async fn exit_codes_weights_and_timeout() {
        let s = spec(CheckKind::Ping, "127.0.0.1:1".parse().unwrap());
        let l = Some(Duration::from_secs(5));
        assert_eq!(
            check(&s, "exit 0", l, false, None).await,
            Ok(Pass::default())
        );
        assert!(
            check(&s, "exit 1", l, false, None)
                .await
                .unwrap_err()
                .contains("status 1")
        );
        assert!(check(&s, "exit 7", l, false, None).await.is_err());
        assert_eq!(
            check(&s, "exit 7", l, true, None).await,
            Ok(Pass { weight: Some(5) })
        );
        assert_eq!(
            check(&s, "exit 2", l, true, None).await,
            Ok(Pass { weight: Some(0) })
        );
        assert!(check(&s, "exit 1", l, true, None).await.is_err());
        assert!(
            check(&s, "kill -9 $$", l, false, None)
                .await
                .unwrap_err()
                .contains("signal")
        );
        let e = check(&s, "sleep 5", Some(Duration::from_millis(100)), false, None)
            .await
            .unwrap_err();
        assert!(e.contains("timed out"), "{e}");

        // A file whose presence decides, as an operator would write it.
        let f = std::env::temp_dir().join(format!("rvs-ka-misc-{}", std::process::id()));
        let cmd = format!("test -e {}", f.display());
        assert!(check(&s, &cmd, l, false, None).await.is_err());
        std::fs::write(&f, b"").unwrap();
        assert!(check(&s, &cmd, l, false, None).await.is_ok());
        std::fs::remove_file(&f).unwrap();
    }
}
