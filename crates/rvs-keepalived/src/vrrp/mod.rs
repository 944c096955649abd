//! VRRP.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::conf::model::Config;
use crate::control::Control;
use crate::rvsd::Rvsd;

/// Runs until [`Control::Shutdown`] (placeholder until the part lands).
pub async fn run(cfg: Arc<Config>, rvsd: Rvsd, mut ctl: mpsc::Receiver<Control>) {
    let _ = (cfg, rvsd);
    while let Some(c) = ctl.recv().await {
        match c {
            Control::Shutdown => return,
            Control::Dump(tx) => {
                let _ = tx.send(serde_json::Value::Null);
            }
            Control::Reload(_) => {}
        }
    }
}
