//! Specs for the probes' tests: a checker of a kind aimed at an address,
//! with short limits.

use std::net::SocketAddr;
use std::time::Duration;

use super::CheckSpec;
use crate::conf::model::CheckKind;

/// A spec for `kind` against `target`: 1 s limit, no retry, 1 s loop.
pub(crate) fn spec(kind: CheckKind, target: SocketAddr) -> CheckSpec {
    CheckSpec {
        kind,
        target,
        bind: None,
        connect_timeout: Duration::from_secs(1),
        retry: 0,
        delay_before_retry: Duration::from_millis(100),
        delay_loop: Duration::from_secs(1),
        warmup: None,
        host: target.to_string(),
    }
}
