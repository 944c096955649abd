//! What the daemon tells its running parts (`lvs`,
//! [`crate::vrrp`]): a new configuration after SIGHUP, a request for a
//! state dump after SIGUSR1, or the end.

use std::sync::Arc;

use tokio::sync::oneshot;

use crate::conf::model::Config;

/// A message to a running part.
#[derive(Debug)]
pub(crate) enum Control {
    /// Adopt this configuration: keep the state of what is unchanged
    /// (health of unchanged real servers, VRRP state of unchanged
    /// instances), start what is new, stop what is gone.
    Reload(Arc<Config>),
    /// Answer with the current state as JSON.
    Dump(oneshot::Sender<serde_json::Value>),
    /// Stop: undo what should be undone (VRRP: priority-0 advert and VIPs
    /// removed; LVS: what keepalived removes at exit), then return.
    Shutdown,
}
