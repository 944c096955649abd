//! VRRP v2 and v3 (RFC 3768, RFC 5798), interoperable with keepalived.
//!
//! The protocol is split by concern: [`packet`] (the bytes),
//! [`accept`] (which adverts an instance acts on), [`machine`] (the
//! state machine, without I/O).

pub mod accept;
pub mod machine;
pub mod packet;

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::conf::model::Config;
use crate::control::Control;
use crate::rvsd::Rvsd;

/// Runs every `vrrp_instance` of `cfg` until [`Control::Shutdown`].
pub async fn run(cfg: Arc<Config>, rvsd: Rvsd, mut ctl: mpsc::Receiver<Control>) {
    let _ = (cfg, rvsd);
    while let Some(c) = ctl.recv().await {
        if matches!(c, Control::Shutdown) {
            break;
        }
    }
}
