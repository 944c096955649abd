//! One virtual server's health as a pure state machine: which real
//! servers are alive, whether the quorum holds, and from that, what rvsd's
//! table should hold for it. No I/O, so every rule is tested directly.
//!
//! The rules are keepalived's (`ipwrapper.c`):
//! - a real server is alive iff every one of its checkers is up (a real
//!   server without checkers is always alive);
//! - an alive real server is in the table with its weight (the configured
//!   one, or what `misc_dynamic` set); a dead one is absent, or present
//!   with weight 0 under `inhibit_on_failure`;
//! - the quorum is the sum of the weights of alive real servers. Holding
//!   it, it is lost when that sum drops to 0 or below `quorum -
//!   hysteresis`; lost, it is regained when the sum reaches `quorum +
//!   hysteresis`. At start it holds iff the sum reaches `quorum +
//!   hysteresis`;
//! - while the quorum is lost and a sorry server is configured, the sorry
//!   server (weight 1) replaces the pool: the real servers leave the table
//!   (inhibited ones stay with weight 0) until the quorum is regained;
//!   otherwise the sorry server is absent, or present with weight 0 under
//!   `sorry_server_inhibit`;
//! - keepalived runs the `quorum_down` script when it starts with the
//!   quorum lost only if a sorry server is configured (that is when it
//!   "adds the sorry server"); so does this.
//!
//! The table is computed from the state ([`VsState::desired`]) rather
//! than edited step by step, so the sync side only ever applies a diff.

use std::net::IpAddr;

use rvs_api::RealServer;

/// One checker's verdict as the virtual server sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CheckState {
    /// The checker ([`crate::check::runner::Event::id`]).
    pub id: u64,
    /// Its verdict.
    pub up: bool,
    /// The weight it sets (`misc_dynamic`), if any.
    pub weight: Option<u32>,
}

/// A real server's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RsState {
    /// The destination with its configured weight.
    pub dest: RealServer,
    /// `inhibit_on_failure`.
    pub inhibit: bool,
    /// Its checkers' verdicts.
    pub checks: Vec<CheckState>,
    alive: bool,
}

impl RsState {
    /// A real server whose checkers start with these verdicts.
    pub(crate) fn new(dest: RealServer, inhibit: bool, checks: Vec<CheckState>) -> RsState {
        let alive = checks.iter().all(|c| c.up);
        RsState {
            dest,
            inhibit,
            checks,
            alive,
        }
    }

    /// Whether it is alive.
    pub(crate) fn alive(&self) -> bool {
        self.alive
    }

    /// Its weight in force: the last checker that sets one, else the
    /// configured weight.
    pub(crate) fn weight(&self) -> u32 {
        self.checks
            .iter()
            .rev()
            .find_map(|c| c.weight)
            .unwrap_or(self.dest.weight)
    }

    /// Its address and port.
    pub(crate) fn key(&self) -> (IpAddr, u16) {
        (self.dest.addr, self.dest.port)
    }
}

/// The sorry server of a virtual server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sorry {
    /// The destination (weight 1).
    pub dest: RealServer,
    /// `sorry_server_inhibit`.
    pub inhibit: bool,
}

/// Something to tell the world about (scripts, logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Real server at this index came up: notify_up.
    RsUp(usize),
    /// Real server at this index went down: notify_down.
    RsDown(usize),
    /// The quorum was gained: quorum_up.
    QuorumUp,
    /// The quorum was lost: quorum_down.
    QuorumDown,
}

/// Quorum settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QuorumConf {
    /// `quorum`.
    pub quorum: u32,
    /// `hysteresis`.
    pub hysteresis: u32,
}

/// One virtual server's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VsState {
    /// Its real servers, in configuration order.
    pub rs: Vec<RsState>,
    /// Its sorry server.
    pub sorry: Option<Sorry>,
    conf: QuorumConf,
    quorum_up: bool,
}

impl VsState {
    /// The state at start (`previous`: `None`) or after a reload
    /// (`previous`: whether the quorum held before), with what to notify.
    pub(crate) fn start(
        rs: Vec<RsState>,
        sorry: Option<Sorry>,
        conf: QuorumConf,
        previous: Option<bool>,
    ) -> (VsState, Vec<Action>) {
        let mut s = VsState {
            rs,
            sorry,
            conf,
            quorum_up: false,
        };
        let mut actions = Vec::new();
        match previous {
            None => {
                s.quorum_up = s.weight_sum() >= u64::from(conf.quorum) + u64::from(conf.hysteresis);
                if !s.quorum_up && s.sorry.is_some() {
                    actions.push(Action::QuorumDown);
                }
            }
            Some(up) => {
                s.quorum_up = up;
                actions.extend(s.update_quorum());
            }
        }
        (s, actions)
    }

    /// Whether the quorum holds.
    pub(crate) fn quorum_up(&self) -> bool {
        self.quorum_up
    }

    /// Whether the sorry server stands in for the pool.
    pub(crate) fn sorry_active(&self) -> bool {
        self.sorry.is_some() && !self.quorum_up
    }

    /// The sum of the weights of the alive real servers.
    pub(crate) fn weight_sum(&self) -> u64 {
        self.rs
            .iter()
            .filter(|r| r.alive)
            .map(|r| u64::from(r.weight()))
            .sum()
    }

    /// Whether checker `id` belongs here.
    pub(crate) fn has_check(&self, id: u64) -> bool {
        self.rs.iter().any(|r| r.checks.iter().any(|c| c.id == id))
    }

    /// Takes checker `id`'s new verdict and weight.
    pub(crate) fn on_check(
        &mut self,
        id: u64,
        up: bool,
        weight: Option<u32>,
        first_down: bool,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        let Some((i, rs)) = self
            .rs
            .iter_mut()
            .enumerate()
            .find(|(_, r)| r.checks.iter().any(|c| c.id == id))
        else {
            return actions;
        };
        for c in rs.checks.iter_mut().filter(|c| c.id == id) {
            c.up = up;
            c.weight = weight;
        }
        let alive = rs.checks.iter().all(|c| c.up);
        if alive != rs.alive {
            rs.alive = alive;
            actions.push(if alive {
                Action::RsUp(i)
            } else {
                Action::RsDown(i)
            });
        } else if first_down && !alive {
            actions.push(Action::RsDown(i));
        }
        actions.extend(self.update_quorum());
        actions
    }

    fn update_quorum(&mut self) -> Option<Action> {
        let sum = self.weight_sum();
        let q = u64::from(self.conf.quorum);
        let h = u64::from(self.conf.hysteresis);
        if !self.quorum_up && sum >= q + h {
            self.quorum_up = true;
            Some(Action::QuorumUp)
        } else if self.quorum_up && (sum == 0 || sum < q.saturating_sub(h)) {
            self.quorum_up = false;
            Some(Action::QuorumDown)
        } else {
            None
        }
    }

    /// What rvsd's table should hold for this virtual server.
    pub(crate) fn desired(&self) -> Vec<RealServer> {
        let sorry_active = self.sorry_active();
        let mut out: Vec<RealServer> = Vec::with_capacity(self.rs.len() + 1);
        for r in &self.rs {
            let weight = match (r.alive && !sorry_active, r.inhibit) {
                (true, _) => r.weight(),
                (false, true) => 0,
                (false, false) => continue,
            };
            out.push(RealServer { weight, ..r.dest });
        }
        if let Some(s) = &self.sorry {
            let same = |d: &RealServer| d.addr == s.dest.addr && d.port == s.dest.port;
            if sorry_active {
                out.retain(|d| !same(d));
                out.push(s.dest);
            } else if s.inhibit && !self.rs.iter().any(|r| same(&r.dest)) {
                out.push(RealServer {
                    weight: 0,
                    ..s.dest
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(last: u8, weight: u32) -> RealServer {
        crate::lvs::fixtures::dest(last, 80, weight)
    }

    /// Real servers with one checker each (id = index), up or not.
    fn pool(weights: &[u32], up: bool, inhibit: bool) -> Vec<RsState> {
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| {
                RsState::new(
                    dest(i as u8 + 1, *w),
                    inhibit,
                    vec![CheckState {
                        id: i as u64,
                        up,
                        weight: None,
                    }],
                )
            })
            .collect()
    }

    fn table(s: &VsState) -> Vec<(u8, u32)> {
        s.desired()
            .iter()
            .map(|d| match d.addr {
                IpAddr::V4(a) => (a.octets()[3], d.weight),
                IpAddr::V6(_) => unreachable!(),
            })
            .collect()
    }

    const Q1: QuorumConf = QuorumConf {
        quorum: 1,
        hysteresis: 0,
    };

    #[test]
    fn down_removes_and_inhibit_zeroes() {
        let (mut s, a) = VsState::start(pool(&[1, 2], true, false), None, Q1, None);
        assert!(a.is_empty());
        assert_eq!(table(&s), vec![(1, 1), (2, 2)]);
        assert_eq!(s.on_check(0, false, None, false), vec![Action::RsDown(0)]);
        assert_eq!(table(&s), vec![(2, 2)]);
        assert_eq!(s.on_check(0, true, None, false), vec![Action::RsUp(0)]);
        assert_eq!(table(&s), vec![(1, 1), (2, 2)]);

        let (mut s, _) = VsState::start(pool(&[1, 2], true, true), None, Q1, None);
        s.on_check(1, false, None, false);
        assert_eq!(table(&s), vec![(1, 1), (2, 0)]);
    }

    #[test]
    fn every_checker_must_be_up_and_no_checker_is_alive() {
        let checks = vec![
            CheckState {
                id: 1,
                up: true,
                weight: None,
            },
            CheckState {
                id: 2,
                up: true,
                weight: None,
            },
        ];
        let rs = vec![
            RsState::new(dest(1, 1), false, checks),
            RsState::new(dest(2, 1), false, vec![]),
        ];
        let (mut s, _) = VsState::start(rs, None, Q1, None);
        assert_eq!(s.on_check(1, false, None, false), vec![Action::RsDown(0)]);
        // The second checker failing too changes nothing more.
        assert_eq!(s.on_check(2, false, None, false), vec![]);
        assert_eq!(s.on_check(1, true, None, false), vec![]);
        assert_eq!(table(&s), vec![(2, 1)]);
        assert_eq!(s.on_check(2, true, None, false), vec![Action::RsUp(0)]);
        assert_eq!(table(&s), vec![(1, 1), (2, 1)]);
    }

    #[test]
    fn alpha_starts_out_and_first_down_notifies() {
        let (mut s, a) = VsState::start(pool(&[3], false, false), None, Q1, None);
        assert!(!s.quorum_up());
        assert!(a.is_empty(), "no sorry server: no quorum_down at start");
        assert!(table(&s).is_empty());
        assert_eq!(s.on_check(0, false, None, true), vec![Action::RsDown(0)]);
        assert_eq!(
            s.on_check(0, true, None, false),
            vec![Action::RsUp(0), Action::QuorumUp]
        );
        assert_eq!(table(&s), vec![(1, 3)]);
    }

    #[test]
    fn dynamic_weight() {
        let (mut s, _) = VsState::start(pool(&[5], true, false), None, Q1, None);
        assert_eq!(s.on_check(0, true, Some(40), false), vec![]);
        assert_eq!(table(&s), vec![(1, 40)]);
        // Weight 0 while alive: the sum is 0, the quorum is lost.
        assert_eq!(
            s.on_check(0, true, Some(0), false),
            vec![Action::QuorumDown]
        );
        assert_eq!(table(&s), vec![(1, 0)]);
        assert_eq!(s.on_check(0, true, None, false), vec![Action::QuorumUp]);
        assert_eq!(table(&s), vec![(1, 5)]);
    }

    #[test]
    fn sorry_server_when_all_are_down() {
        let sorry = Sorry {
            dest: dest(9, 1),
            inhibit: false,
        };
        let (mut s, a) = VsState::start(pool(&[1, 1], true, false), Some(sorry), Q1, None);
        assert!(a.is_empty());
        assert_eq!(table(&s), vec![(1, 1), (2, 1)]);
        assert_eq!(s.on_check(0, false, None, false), vec![Action::RsDown(0)]);
        assert_eq!(
            s.on_check(1, false, None, false),
            vec![Action::RsDown(1), Action::QuorumDown]
        );
        assert!(s.sorry_active());
        assert_eq!(table(&s), vec![(9, 1)]);
        assert_eq!(
            s.on_check(1, true, None, false),
            vec![Action::RsUp(1), Action::QuorumUp]
        );
        assert_eq!(table(&s), vec![(2, 1)]);
    }

    #[test]
    fn sorry_inhibit_stays_at_zero() {
        let sorry = Sorry {
            dest: dest(9, 1),
            inhibit: true,
        };
        let (mut s, _) = VsState::start(pool(&[1], true, true), Some(sorry), Q1, None);
        assert_eq!(table(&s), vec![(1, 1), (9, 0)]);
        s.on_check(0, false, None, false);
        assert_eq!(table(&s), vec![(1, 0), (9, 1)]);
    }

    #[test]
    fn quorum_with_hysteresis() {
        // quorum 4, hysteresis 1: lost below 3, regained at 5.
        let conf = QuorumConf {
            quorum: 4,
            hysteresis: 1,
        };
        let sorry = Sorry {
            dest: dest(9, 1),
            inhibit: false,
        };
        let (mut s, a) =
            VsState::start(pool(&[1, 1, 1, 1, 1], true, false), Some(sorry), conf, None);
        assert!(s.quorum_up() && a.is_empty());
        s.on_check(0, false, None, false); // 4
        s.on_check(1, false, None, false); // 3
        assert!(s.quorum_up());
        assert_eq!(
            s.on_check(2, false, None, false),
            vec![Action::RsDown(2), Action::QuorumDown]
        ); // 2
        assert_eq!(table(&s), vec![(9, 1)]);
        // 3 and 4 are not enough to come back.
        s.on_check(0, true, None, false);
        s.on_check(1, true, None, false);
        assert!(!s.quorum_up());
        assert_eq!(table(&s), vec![(9, 1)]);
        assert_eq!(
            s.on_check(2, true, None, false),
            vec![Action::RsUp(2), Action::QuorumUp]
        );
        assert_eq!(table(&s), vec![(1, 1), (2, 1), (3, 1), (4, 1), (5, 1)]);
    }

    #[test]
    fn starting_without_quorum() {
        // keepalived: the quorum_down script runs at start only when a sorry
        // server is configured (it is being added).
        let conf = QuorumConf {
            quorum: 3,
            hysteresis: 0,
        };
        let (s, a) = VsState::start(pool(&[1], true, false), None, conf, None);
        assert!(!s.quorum_up() && a.is_empty());
        let sorry = Sorry {
            dest: dest(9, 1),
            inhibit: false,
        };
        let (s, a) = VsState::start(pool(&[1], true, false), Some(sorry), conf, None);
        assert_eq!(a, vec![Action::QuorumDown]);
        assert_eq!(table(&s), vec![(9, 1)]);
        // A reload that lowers the quorum regains it.
        let (s, a) = VsState::start(s.rs.clone(), s.sorry.clone(), Q1, Some(false));
        assert_eq!(a, vec![Action::QuorumUp]);
        assert_eq!(table(&s), vec![(1, 1)]);
    }

    #[test]
    fn sorry_server_that_is_also_a_real_server() {
        let sorry = Sorry {
            dest: dest(1, 1),
            inhibit: true,
        };
        let (mut s, _) = VsState::start(pool(&[5], true, false), Some(sorry), Q1, None);
        assert_eq!(table(&s), vec![(1, 5)]);
        s.on_check(0, false, None, false);
        assert_eq!(table(&s), vec![(1, 1)]);
    }
}
