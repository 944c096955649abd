//! When a checker's results change its verdict: keepalived's retry rule as
//! a pure state machine, so it is tested without sockets or clocks.
//!
//! A checker that is up needs `retry + 1` failed attempts in a row, the
//! retries `delay_before_retry` apart, before it is declared down; one
//! success resets the count. A checker that is down comes back up on its
//! first success (keepalived has no "rise" count for real servers) and is
//! not retried while down: it simply runs again after `delay_loop`.
//!
//! Until its first success, a checker of a real server whose health is
//! not known yet (at start, or a real server a reload adds) has no
//! retries: keepalived starts it with its retries used up ("one failure
//! is enough initially"), so a server that is dead at start leaves the
//! pool at its first failed attempt instead of `retry ×
//! delay_before_retry` later. Only a checker a reload adds to a real
//! server that is alive starts with its retries ([`Start::Joining`]).

/// When the next attempt is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// After `delay_loop` (the regular cadence).
    Loop,
    /// After `delay_before_retry` (a failure is being confirmed).
    Retry,
}

/// What one result means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Step {
    /// The checker's verdict changed to this (`true`: up).
    pub changed: Option<bool>,
    /// The first result of a checker that started down (`alpha`) confirmed
    /// it down: keepalived runs the real server's notify_down then.
    pub first_down: bool,
    /// When to check next.
    pub next: Next,
}

/// What is known of a real server when one of its checkers starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// Nothing yet (daemon start, a real server a reload adds): the
    /// checker starts up, or down under `alpha`, and its first failure is
    /// decisive.
    Fresh {
        /// The verdict before the first result (false under `alpha`).
        up: bool,
    },
    /// A reload adds this checker to a real server that is alive: it
    /// starts up, with its retries.
    Joining,
}

/// One checker's verdict and retry count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tracker {
    up: bool,
    has_run: bool,
    /// Failures in a row so far, counted against `retry`.
    failures: u32,
    retry: u32,
}

impl Tracker {
    /// A checker starting as `start` says, allowed `retry` retries before
    /// a failure counts (once it has passed, for a fresh one).
    pub(crate) fn new(start: Start, retry: u32) -> Tracker {
        let (up, failures) = match start {
            Start::Fresh { up } => (up, retry),
            Start::Joining => (true, 0),
        };
        Tracker {
            up,
            has_run: false,
            failures,
            retry,
        }
    }

    /// The current verdict.
    pub(crate) fn is_up(&self) -> bool {
        self.up
    }

    /// Takes one attempt's result.
    pub(crate) fn on_result(&mut self, ok: bool) -> Step {
        let first = !self.has_run;
        self.has_run = true;
        if ok {
            self.failures = 0;
            let changed = (!self.up).then_some(true);
            self.up = true;
            return Step {
                changed,
                first_down: false,
                next: Next::Loop,
            };
        }
        if !self.up {
            // Down already: no retries, the regular cadence goes on.
            return Step {
                changed: None,
                first_down: first,
                next: Next::Loop,
            };
        }
        if self.failures < self.retry {
            self.failures += 1;
            return Step {
                changed: None,
                first_down: false,
                next: Next::Retry,
            };
        }
        self.failures = 0;
        self.up = false;
        Step {
            changed: Some(false),
            first_down: false,
            next: Next::Loop,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_failure_is_decisive() {
        // keepalived starts a checker with its retries used up: a server
        // that is down at start leaves the pool at its first failure.
        let mut t = Tracker::new(Start::Fresh { up: true }, 3);
        let s = t.on_result(false);
        assert_eq!((s.changed, s.next), (Some(false), Next::Loop));
        // Once it has passed, failures are retried.
        assert_eq!(t.on_result(true).changed, Some(true));
        assert_eq!(t.on_result(false).next, Next::Retry);
    }

    #[test]
    fn a_checker_joining_a_live_server_retries_from_the_start() {
        let mut t = Tracker::new(Start::Joining, 1);
        assert!(t.is_up());
        assert_eq!(t.on_result(false).next, Next::Retry);
        assert_eq!(t.on_result(false).changed, Some(false));
    }

    #[test]
    fn retry_zero_one_failure_is_enough() {
        let mut t = Tracker::new(Start::Joining, 0);
        let s = t.on_result(false);
        assert_eq!(s.changed, Some(false));
        assert_eq!(s.next, Next::Loop);
        assert!(!t.is_up());
    }

    #[test]
    fn retries_then_down_and_success_resets() {
        let mut t = Tracker::new(Start::Joining, 2);
        // Two failures are retried, a success in between resets the count.
        assert_eq!(t.on_result(false).next, Next::Retry);
        assert_eq!(t.on_result(false).next, Next::Retry);
        let s = t.on_result(true);
        assert_eq!((s.changed, s.next), (None, Next::Loop));
        assert_eq!(t.on_result(false).next, Next::Retry);
        assert_eq!(t.on_result(false).next, Next::Retry);
        let s = t.on_result(false);
        assert_eq!((s.changed, s.next), (Some(false), Next::Loop));
        // Down: failures are not retried; one success brings it up.
        let s = t.on_result(false);
        assert_eq!((s.changed, s.next), (None, Next::Loop));
        assert!(!s.first_down);
        assert_eq!(t.on_result(true).changed, Some(true));
        assert!(t.is_up());
    }

    #[test]
    fn alpha_starts_down() {
        let mut t = Tracker::new(Start::Fresh { up: false }, 3);
        let s = t.on_result(false);
        assert_eq!(s.changed, None);
        assert!(s.first_down);
        assert_eq!(s.next, Next::Loop);
        assert!(!t.on_result(false).first_down);
        assert_eq!(t.on_result(true).changed, Some(true));

        let mut t = Tracker::new(Start::Fresh { up: false }, 3);
        assert_eq!(t.on_result(true).changed, Some(true));
    }
}
