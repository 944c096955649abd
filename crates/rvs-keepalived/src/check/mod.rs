//! Health checkers: is a real server fit to receive traffic?
//!
//! Each kind of keepalived checker is one probe in its own file
//! ([`tcp`] for now); a probe makes one attempt and says whether it
//! passed, and why not. What an attempt's result means over time (retries,
//! up/down) is [`retry`]'s pure rule, and [`runner`] runs every checker as
//! its own tokio task on its own cadence, reporting verdict changes to the
//! LVS side ([`crate::lvs`]), which owns what rvsd's table holds.

pub mod retry;
pub mod runner;
pub mod spec;
pub mod tcp;

#[cfg(test)]
pub(crate) mod testutil;

use crate::conf::model::CheckKind;

pub use spec::CheckSpec;

/// A passed attempt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    /// The weight the real server should get (`misc_dynamic` exit codes
    /// 2..=255), if the check decides it.
    pub weight: Option<u32>,
}

/// Makes one attempt of the check `spec` describes.
pub async fn probe(spec: &CheckSpec) -> Result<Pass, String> {
    match &spec.kind {
        CheckKind::Tcp => tcp::check(spec).await,
        _ => Err(format!("{} is not supported yet", spec.kind_name())),
    }
}
