//! Health checkers: is a real server fit to receive traffic?
//!
//! Each kind of keepalived checker is one probe in its own file
//! ([`tcp`], [`http`] with [`tls`] for SSL_GET, [`udp`], [`misc`],
//! [`ping`]); a probe makes one attempt and says whether it
//! passed, and why not. What an attempt's result means over time (retries,
//! up/down) is [`retry`]'s pure rule, and [`runner`] runs every checker as
//! its own tokio task on its own cadence, reporting verdict changes to the
//! LVS side ([`crate::lvs`]), which owns what rvsd's table holds.

pub(crate) mod http;
pub(crate) mod misc;
pub(crate) mod ping;
pub(crate) mod retry;
pub(crate) mod runner;
pub(crate) mod spec;
pub(crate) mod tcp;
pub(crate) mod tls;
pub(crate) mod udp;

#[cfg(test)]
mod load_tests;
#[cfg(test)]
pub(crate) mod testutil;

use crate::conf::model::CheckKind;

pub(crate) use spec::CheckSpec;

/// A passed attempt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Pass {
    /// The weight the real server should get (`misc_dynamic` exit codes
    /// 2..=255), if the check decides it.
    pub weight: Option<u32>,
}

/// Makes one attempt of the check `spec` describes.
pub(crate) async fn probe(spec: &CheckSpec) -> Result<Pass, String> {
    match &spec.kind {
        CheckKind::Tcp => tcp::check(spec).await,
        CheckKind::Http { tls, urls, .. } => http::check(spec, *tls, urls).await,
        CheckKind::Udp {
            payload,
            require_reply,
        } => udp::check(spec, payload, require_reply.as_deref()).await,
        CheckKind::Misc {
            path,
            timeout,
            dynamic,
            user,
        } => misc::check(spec, path, *timeout, *dynamic, user.as_deref()).await,
        CheckKind::Ping => ping::check(spec).await,
    }
}
