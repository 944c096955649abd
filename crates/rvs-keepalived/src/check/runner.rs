//! One checker as a tokio task: it probes on its own cadence, applies the
//! retry rule ([`super::retry`]) and reports verdict changes on a channel.
//!
//! A task only sleeps between attempts, so thousands of them cost a timer
//! each. The cadence is anchored to the schedule, not to when the last
//! attempt ended: attempt *n+1* is due `delay_loop` after attempt *n* was
//! due (or at once, if the attempt itself took longer), so checks do not
//! drift later and later. How late each attempt started against its due
//! time is recorded, which is what "checks keep up with their delay_loop"
//! is measured by.
//!
//! The first attempt comes after a random delay: up to `warmup` if set
//! (keepalived's meaning), else up to one second (capped by delay_loop),
//! so that a large configuration does not fire every check in the same
//! instant, yet an `alpha` real server does not wait a whole delay_loop
//! for its first verdict. The random phase then persists, keeping the
//! load spread.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::retry::{Next, Start, Tracker};
use super::spec::CheckSpec;

/// The longest initial spread when no `warmup` is set.
const SPREAD: Duration = Duration::from_secs(1);

/// A checker's verdict changed (or its dynamic weight did).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Event {
    /// Which checker.
    pub id: u64,
    /// Its verdict.
    pub up: bool,
    /// The weight it sets for its real server (`misc_dynamic`), if any.
    pub weight: Option<u32>,
    /// The first result of a checker that started down confirmed it
    /// down (keepalived runs notify_down then).
    pub first_down: bool,
}

/// What a checker has done, for the state dump and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Stats {
    /// Its verdict.
    pub up: bool,
    /// Attempts made.
    pub checks: u64,
    /// Attempts that failed.
    pub failures: u64,
    /// Why the last failed attempt failed.
    pub last_error: Option<String>,
    /// Whether the last attempt passed.
    pub last_ok: Option<bool>,
    /// The latest an attempt started after it was due, in microseconds.
    pub max_lateness_us: u64,
    /// The sum of every attempt's lateness, in microseconds.
    pub total_lateness_us: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running checker; dropping it stops the task.
#[derive(Debug)]
pub(crate) struct CheckerTask {
    /// What it checks.
    pub spec: Arc<CheckSpec>,
    stats: Arc<Mutex<Stats>>,
    handle: JoinHandle<()>,
}

impl CheckerTask {
    /// Starts checking as `start` says, reporting changes on `events`
    /// as checker `id`.
    pub(crate) fn spawn(
        id: u64,
        spec: CheckSpec,
        start: Start,
        events: UnboundedSender<Event>,
    ) -> CheckerTask {
        let spec = Arc::new(spec);
        let tracker = Tracker::new(start, spec.retry);
        let stats = Arc::new(Mutex::new(Stats {
            up: tracker.is_up(),
            ..Stats::default()
        }));
        let handle = tokio::spawn(run(
            id,
            Arc::clone(&spec),
            tracker,
            events,
            Arc::clone(&stats),
        ));
        CheckerTask {
            spec,
            stats,
            handle,
        }
    }

    /// A copy of its counters.
    pub(crate) fn stats(&self) -> Stats {
        lock(&self.stats).clone()
    }
}

impl Drop for CheckerTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// A random number (std's hasher keys are random per process and differ
/// per call; good enough for spreading timers and ping tokens).
pub(crate) fn random_u64() -> u64 {
    RandomState::new().hash_one(std::time::SystemTime::now())
}

/// A random duration in `[0, max]`.
pub(crate) fn jitter(max: Duration) -> Duration {
    max.mul_f64(random_u64() as f64 / u64::MAX as f64)
}

/// The delay before the first attempt.
fn first_delay(spec: &CheckSpec) -> Duration {
    jitter(spec.warmup.unwrap_or(SPREAD.min(spec.delay_loop)))
}

async fn run(
    id: u64,
    spec: Arc<CheckSpec>,
    mut tracker: Tracker,
    events: UnboundedSender<Event>,
    stats: Arc<Mutex<Stats>>,
) {
    let mut weight = None;
    let mut due = Instant::now() + first_delay(&spec);
    loop {
        tokio::time::sleep_until(due).await;
        let late = Instant::now().saturating_duration_since(due);
        let outcome = super::probe(&spec).await;
        let step = tracker.on_result(outcome.is_ok());
        let new_weight = match (&outcome, tracker.is_up()) {
            (Ok(p), _) => p.weight,
            (Err(_), true) => weight,
            (Err(_), false) => None,
        };
        let weight_changed = new_weight != weight;
        weight = new_weight;
        {
            let mut s = lock(&stats);
            s.up = tracker.is_up();
            s.checks += 1;
            let late_us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
            s.max_lateness_us = s.max_lateness_us.max(late_us);
            s.total_lateness_us = s.total_lateness_us.saturating_add(late_us);
            s.last_ok = Some(outcome.is_ok());
            if let Err(e) = &outcome {
                s.failures += 1;
                s.last_error = Some(e.clone());
            }
        }
        match (&outcome, step.changed) {
            (Err(e), Some(false)) => {
                tracing::warn!("{} {} failed, now down: {e}", spec.kind_name(), spec.target)
            }
            (_, Some(true)) => {
                tracing::info!("{} {} succeeded, now up", spec.kind_name(), spec.target)
            }
            (Err(e), None) => tracing::debug!("{} {} failed: {e}", spec.kind_name(), spec.target),
            _ => {}
        }
        if (step.changed.is_some() || weight_changed || step.first_down)
            && events
                .send(Event {
                    id,
                    up: tracker.is_up(),
                    weight,
                    first_down: step.first_down,
                })
                .is_err()
        {
            return;
        }
        due = match step.next {
            Next::Loop => (due + spec.delay_loop).max(Instant::now()),
            Next::Retry => Instant::now() + spec.delay_before_retry,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testutil::spec;
    use crate::conf::model::CheckKind;
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    /// A listener that accepts and drops connections until stopped.
    fn accept_loop(l: TcpListener) -> JoinHandle<()> {
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                drop(s);
            }
        })
    }

    #[tokio::test]
    async fn reports_down_after_retries_and_up_again() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = accept_loop(l);
        let mut s = spec(CheckKind::Tcp, addr);
        s.delay_loop = Duration::from_millis(100);
        s.delay_before_retry = Duration::from_millis(50);
        s.retry = 2;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = CheckerTask::spawn(7, s, Start::Fresh { up: true }, tx);
        // Up from the start: no event while it passes.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(rx.try_recv().is_err());
        let before = task.stats();
        assert!(before.checks >= 2, "{before:?}");
        assert_eq!(before.failures, 0);

        server.abort();
        let _ = server.await;
        let t0 = std::time::Instant::now();
        let ev = tokio::time::timeout(Duration::from_secs(3), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            ev,
            Event {
                id: 7,
                up: false,
                weight: None,
                first_down: false
            }
        );
        // One regular attempt and two retries 50 ms apart.
        let st = task.stats();
        assert_eq!(st.failures, 3, "{st:?}");
        assert!(st.last_error.as_deref().unwrap().contains("refused"));
        assert!(t0.elapsed() < Duration::from_millis(400));

        // Back: the same port listens again.
        let l = TcpListener::bind(addr).await.unwrap();
        let _server = accept_loop(l);
        let ev = tokio::time::timeout(Duration::from_secs(3), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(ev.up);
        assert!(task.stats().up);
    }

    #[tokio::test]
    async fn alpha_reports_first_verdict() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let _server = accept_loop(l);
        let mut s = spec(CheckKind::Tcp, addr);
        s.warmup = Some(Duration::ZERO);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _task = CheckerTask::spawn(1, s, Start::Fresh { up: false }, tx);
        let ev = tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(ev.up && !ev.first_down);
    }

    #[test]
    fn jitter_is_bounded_and_varies() {
        let max = Duration::from_millis(1000);
        let v: Vec<Duration> = (0..50).map(|_| jitter(max)).collect();
        assert!(v.iter().all(|d| *d <= max));
        assert!(v.iter().any(|d| *d != v[0]));
    }
}
