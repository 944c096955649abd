//! Keeping rvsd's virtual servers in line with the configuration and the
//! health checks: what keepalived's checker process does with IPVS, done
//! through rvsd's API.
//!
//! - [`translate`]: the model in `rvs_api` terms (services, destinations);
//! - [`state`]: one virtual server's health, quorum and sorry server as a
//!   pure state machine that says what the table should hold;
//! - [`sync`]: turning that into requests (full reconcile or diff);
//! - `manager`: the run-time set of virtual servers, their checker tasks
//!   and what was applied, across reloads;
//! - `dump`: the JSON state dump.
//!
//! [`run`] is the task the daemon starts: it configures, then reacts to
//! checker events and to [`Control`] messages until shutdown, when it
//! removes the services it created (as keepalived removes its virtual
//! servers at exit).
//!
//! Unlike the kernel's IPVS table, rvsd can restart (and come back empty,
//! or with only its own configuration) while health stays steady and no
//! checker event would prompt a change; so every [`VERIFY`] the table is
//! listed and compared with what it should hold, and repaired if needed.
//! rvsd unreachable is never fatal: what failed is retried every
//! [`RETRY`].

mod dump;
mod manager;
pub(crate) mod state;
pub(crate) mod sync;
pub(crate) mod translate;

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::conf::model::Config;
use crate::control::Control;
use crate::rvsd::Rvsd;

/// How often a failed sync with rvsd is retried.
const RETRY: Duration = Duration::from_secs(1);

/// How often what rvsd holds is compared with what it should hold.
const VERIFY: Duration = Duration::from_secs(3);

/// Runs the health checks and keeps rvsd in line until
/// [`Control::Shutdown`] (or until the control channel closes).
pub(crate) async fn run(cfg: Arc<Config>, rvsd: Rvsd, mut ctl: mpsc::Receiver<Control>) {
    let mut m = manager::Manager::new(rvsd);
    m.configure(cfg).await;
    let mut retry = tokio::time::interval(RETRY);
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut verify = tokio::time::interval_at(tokio::time::Instant::now() + VERIFY, VERIFY);
    verify.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            c = ctl.recv() => match c {
                Some(Control::Reload(cfg)) => {
                    tracing::info!("reloading the virtual servers");
                    m.configure(cfg).await;
                }
                Some(Control::Dump(tx)) => {
                    let _ = tx.send(dump::dump(&m));
                }
                Some(Control::Shutdown) | None => break,
            },
            ev = m.next_event() => m.on_events(ev).await,
            _ = retry.tick() => m.reconcile().await,
            _ = verify.tick() => m.verify().await,
        }
    }
    m.shutdown().await;
}
