//! When a checker's results change its verdict: keepalived's retry rule as
//! a pure state machine, so it is tested without sockets or clocks.
//!
//! A checker that is up needs `retry + 1` failed attempts in a row, the
//! retries `delay_before_retry` apart, before it is declared down; one
//! success resets the count. A checker that is down comes back up on its
//! first success (keepalived has no "rise" count for real servers) and is
//! not retried while down: it simply runs again after `delay_loop`.

/// When the next attempt is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// After `delay_loop` (the regular cadence).
    Loop,
    /// After `delay_before_retry` (a failure is being confirmed).
    Retry,
}

/// What one result means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// The checker's verdict changed to this (`true`: up).
    pub changed: Option<bool>,
    /// The first result of a checker that started down (`alpha`) confirmed
    /// it down: keepalived runs the real server's notify_down then.
    pub first_down: bool,
    /// When to check next.
    pub next: Next,
}

/// One checker's verdict and retry count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracker {
    up: bool,
    has_run: bool,
    failures: u32,
    retry: u32,
}

impl Tracker {
    /// A checker starting up (`up`) or down (`alpha`), allowed `retry`
    /// retries before a failure counts.
    pub fn new(up: bool, retry: u32) -> Tracker {
        Tracker {
            up,
            has_run: false,
            failures: 0,
            retry,
        }
    }

    /// The current verdict.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Whether a result has been taken yet.
    pub fn has_run(&self) -> bool {
        self.has_run
    }

    /// Takes one attempt's result.
    pub fn on_result(&mut self, ok: bool) -> Step {
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
    fn retry_zero_one_failure_is_enough() {
        let mut t = Tracker::new(true, 0);
        let s = t.on_result(false);
        assert_eq!(s.changed, Some(false));
        assert_eq!(s.next, Next::Loop);
        assert!(!t.is_up());
    }

    #[test]
    fn retries_then_down_and_success_resets() {
        let mut t = Tracker::new(true, 2);
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
        let mut t = Tracker::new(false, 3);
        let s = t.on_result(false);
        assert_eq!(s.changed, None);
        assert!(s.first_down);
        assert_eq!(s.next, Next::Loop);
        assert!(!t.on_result(false).first_down);
        assert_eq!(t.on_result(true).changed, Some(true));

        let mut t = Tracker::new(false, 3);
        assert_eq!(t.on_result(true).changed, Some(true));
    }
}
