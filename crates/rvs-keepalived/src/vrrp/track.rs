//! Tracking: what moves an instance's priority or puts it in FAULT —
//! `vrrp_script`s run periodically (`track_script`) and interfaces
//! (`track_interface`, and the instance's own interface).
//!
//! keepalived's rules, which keepalived.conf users rely on:
//! - weight > 0: added to the priority while the item is OK;
//! - weight < 0: added (so subtracted) while it fails;
//! - weight 0: failing means FAULT;
//! - the effective priority stays within 1..=254, and an address owner
//!   (255) is never changed;
//! - a script counts for nothing until its first result, and an instance
//!   with a weight-0 script waits in INIT for that result;
//! - after the first result a script turns OK after `rise` successes in
//!   a row and failed after `fall` failures in a row.
//!
//! Each instance runs its own tracker tasks (a script tracked by two
//! instances runs twice per interval), which report `(item, ok)` on a
//! channel; [`Tracking`] folds the reports into the instance's priority
//! and fault.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::iface;
use crate::conf::model::VrrpScript;

/// An item's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub(crate) enum Status {
    /// No result yet.
    Init,
    /// Fine.
    Ok,
    /// Failing.
    Failed,
}

/// One tracked thing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Item {
    /// `script NAME` or `interface NAME`.
    pub label: String,
    /// Its weight.
    pub weight: i32,
    /// Its status.
    pub status: Status,
}

/// What tracking does to an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Effect {
    /// The effective priority.
    pub priority: u8,
    /// FAULT.
    pub fault: bool,
    /// Wait in INIT (a weight-0 script has no result yet).
    pub pending: bool,
}

/// The tracked items of one instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Tracking {
    /// The items, in the order their trackers report them.
    pub items: Vec<Item>,
}

impl Tracking {
    /// Item `i` reports `status`; true if that changed anything.
    pub(crate) fn set(&mut self, i: usize, status: Status) -> bool {
        match self.items.get_mut(i) {
            Some(it) if it.status != status => {
                it.status = status;
                true
            }
            _ => false,
        }
    }

    /// The effect on an instance of priority `base`.
    pub(crate) fn effect(&self, base: u8) -> Effect {
        let mut total = i64::from(base);
        let (mut fault, mut pending) = (false, false);
        for it in &self.items {
            match (it.weight, it.status) {
                (0, Status::Failed) => fault = true,
                (0, Status::Init) => pending = true,
                (w, Status::Ok) if w > 0 => total += i64::from(w),
                (w, Status::Failed) if w < 0 => total += i64::from(w),
                _ => {}
            }
        }
        let priority = if base == super::machine::PRIO_OWNER {
            base
        } else {
            u8::try_from(total.clamp(1, 254)).unwrap_or(1)
        };
        Effect {
            priority,
            fault,
            pending,
        }
    }
}

/// A script's rise/fall counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RiseFall {
    rise: u32,
    fall: u32,
    status: Status,
    /// Results in a row contradicting the status.
    run: u32,
}

impl RiseFall {
    /// Starts with no result.
    pub(crate) fn new(rise: u32, fall: u32) -> RiseFall {
        RiseFall {
            rise: rise.max(1),
            fall: fall.max(1),
            status: Status::Init,
            run: 0,
        }
    }

    /// One result; the status after it.
    pub(crate) fn record(&mut self, ok: bool) -> Status {
        match (self.status, ok) {
            (Status::Init, true) => self.status = Status::Ok,
            (Status::Init, false) => self.status = Status::Failed,
            (Status::Ok, true) | (Status::Failed, false) => self.run = 0,
            (Status::Ok, false) | (Status::Failed, true) => {
                self.run += 1;
                let need = if ok { self.rise } else { self.fall };
                if self.run >= need {
                    self.status = if ok { Status::Ok } else { Status::Failed };
                    self.run = 0;
                }
            }
        }
        self.status
    }
}

/// A report: item index and status.
pub(crate) type Report = (usize, Status);

/// Runs `script` every interval; reports item `i`'s status when it
/// changes (the first result always).
pub(crate) fn spawn_script(
    i: usize,
    script: VrrpScript,
    tx: mpsc::Sender<Report>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut rf = RiseFall::new(script.rise, script.fall);
        let mut last = Status::Init;
        let timeout = script.timeout.unwrap_or(script.interval);
        let mut tick = tokio::time::interval(script.interval.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let ok = crate::notify::run_as(&script.script, script.user.as_deref(), &[], timeout)
                .await
                .success();
            let st = rf.record(ok);
            if st != last {
                tracing::info!(
                    "vrrp_script {}: {}",
                    script.name,
                    if st == Status::Ok { "OK" } else { "failed" }
                );
                last = st;
                if tx.send((i, st)).await.is_err() {
                    return;
                }
            }
        }
    })
}

/// Watches interface `name`'s operational state; reports item `i`'s
/// status when it changes (the first reading always).
pub(crate) fn spawn_interface(i: usize, name: String, tx: mpsc::Sender<Report>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = Status::Init;
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tick.tick().await;
            let st = if iface::is_up(&name) {
                Status::Ok
            } else {
                Status::Failed
            };
            if st != last {
                if last != Status::Init || st == Status::Failed {
                    tracing::info!(
                        "interface {name} is {}",
                        if st == Status::Ok { "up" } else { "down" }
                    );
                }
                last = st;
                if tx.send((i, st)).await.is_err() {
                    return;
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(weight: i32, status: Status) -> Item {
        Item {
            label: "x".into(),
            weight,
            status,
        }
    }

    fn effect(base: u8, items: Vec<Item>) -> Effect {
        Tracking { items }.effect(base)
    }

    #[test]
    fn weights() {
        // Positive adds while OK, negative subtracts while failing.
        assert_eq!(effect(100, vec![item(20, Status::Ok)]).priority, 120);
        assert_eq!(effect(100, vec![item(20, Status::Failed)]).priority, 100);
        assert_eq!(effect(100, vec![item(-30, Status::Failed)]).priority, 70);
        assert_eq!(effect(100, vec![item(-30, Status::Ok)]).priority, 100);
        // Clamped to 1..=254; the owner never moves.
        assert_eq!(effect(250, vec![item(20, Status::Ok)]).priority, 254);
        assert_eq!(effect(10, vec![item(-30, Status::Failed)]).priority, 1);
        assert_eq!(effect(255, vec![item(-30, Status::Failed)]).priority, 255);
        // Nothing before the first result.
        assert_eq!(effect(100, vec![item(-30, Status::Init)]).priority, 100);
    }

    #[test]
    fn weight_zero_means_fault_and_waits_for_a_result() {
        let e = effect(100, vec![item(0, Status::Failed)]);
        assert!(e.fault && !e.pending);
        let e = effect(100, vec![item(0, Status::Init)]);
        assert!(!e.fault && e.pending);
        let e = effect(100, vec![item(0, Status::Ok), item(-10, Status::Failed)]);
        assert_eq!((e.fault, e.pending, e.priority), (false, false, 90));
    }

    #[test]
    fn rise_and_fall() {
        let mut rf = RiseFall::new(2, 3);
        // The first result decides at once.
        assert_eq!(rf.record(true), Status::Ok);
        assert_eq!(rf.record(false), Status::Ok);
        assert_eq!(rf.record(false), Status::Ok);
        // A success in between restarts the count.
        assert_eq!(rf.record(true), Status::Ok);
        assert_eq!(rf.record(false), Status::Ok);
        assert_eq!(rf.record(false), Status::Ok);
        assert_eq!(rf.record(false), Status::Failed);
        assert_eq!(rf.record(true), Status::Failed);
        assert_eq!(rf.record(true), Status::Ok);
        let mut rf = RiseFall::new(1, 1);
        assert_eq!(rf.record(false), Status::Failed);
        assert_eq!(rf.record(true), Status::Ok);
    }

    #[tokio::test]
    async fn a_script_reports_its_results() {
        let dir = std::env::temp_dir().join(format!("rvs-ka-track-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let flag = dir.join("ok");
        std::fs::write(&flag, "").expect("flag");
        let script = VrrpScript {
            name: "chk".into(),
            script: format!("test -e {}", flag.display()),
            interval: Duration::from_millis(50),
            timeout: None,
            weight: -10,
            rise: 1,
            fall: 2,
            user: None,
            loc: Default::default(),
        };
        let (tx, mut rx) = mpsc::channel(8);
        let h = spawn_script(3, script, tx);
        let next = async |rx: &mut mpsc::Receiver<Report>| {
            tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .expect("a report in time")
        };
        assert_eq!(next(&mut rx).await, Some((3, Status::Ok)));
        std::fs::remove_file(&flag).expect("rm");
        assert_eq!(next(&mut rx).await, Some((3, Status::Failed)));
        h.abort();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
