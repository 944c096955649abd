//! The VRRP state machine of one instance, without I/O (sans-IO): it is
//! fed events (an accepted advertisement, the time, a priority or fault
//! change, a sync-group order, stop) with the current instant, and
//! answers with [`Action`]s for the caller to carry out. Time only ever
//! comes in as an argument, so tests drive it with a fake clock.
//!
//! It follows RFC 3768 §6.4 / RFC 5798 §6.4 the way keepalived 2.2.7
//! reads them:
//! - `Master_Down_Interval = 3 × Master_Adver_Interval + Skew_Time`, with
//!   `Skew_Time = (256 − Priority) / 256` s in v2 and
//!   `((256 − Priority) × Master_Adver_Interval) / 256` in v3; a v3
//!   backup learns `Master_Adver_Interval` from the master's adverts.
//! - Priority 255 (the address owner) becomes MASTER at once; `state
//!   MASTER` below 255 is a hint: BACKUP for one interval plus the
//!   smallest skew, then MASTER if nobody spoke.
//! - A backup takes a priority-0 advert as "master leaving": it takes
//!   over after `Skew_Time` only.
//! - A preempting backup ignores adverts of lower priority (so its timer
//!   runs out and it takes over); `nopreempt` accepts them;
//!   `preempt_delay` accepts them until that long after the first one.
//! - A master yields to a higher priority, or an equal one from a
//!   higher primary address; it answers a lower one (or a priority-0
//!   one) with an advert at once, as keepalived does ("forcing new
//!   election").
//! - Leaving MASTER for FAULT or stop sends a priority-0 advert.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::packet::Version;

/// The priority of the address owner.
pub(crate) const PRIO_OWNER: u8 = 255;

/// Instance states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) enum State {
    /// Not started.
    Init,
    /// Listening to a master.
    Backup,
    /// Sending adverts, holding the VIPs.
    Master,
    /// Down: a tracked interface or weight-0 script failed.
    Fault,
    /// Stopped (shutdown, or removed by a reload).
    Stop,
}

impl State {
    /// The name keepalived gives notify scripts.
    pub(crate) fn name(self) -> &'static str {
        match self {
            State::Init => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
            State::Stop => "STOP",
        }
    }
}

/// What the caller must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Send an advertisement with this priority.
    Send(u8),
    /// Add the VIPs (and announce them).
    TakeVips,
    /// Remove the VIPs.
    ReleaseVips,
    /// The state is now this (run notify scripts, tell the sync group).
    Changed(State),
}

/// The instance settings the machine needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Params {
    /// Protocol version (decides the skew formula).
    pub version: Version,
    /// Configured advertisement interval.
    pub adver_int: Duration,
    /// `nopreempt`.
    pub nopreempt: bool,
    /// `preempt_delay`.
    pub preempt_delay: Duration,
    /// `state MASTER`.
    pub start_as_master: bool,
    /// The address adverts are sent from (ties are broken on it).
    pub own_addr: IpAddr,
}

/// One instance's protocol state.
#[derive(Debug)]
pub(crate) struct Machine {
    p: Params,
    state: State,
    /// Effective priority (base + tracking), what adverts carry.
    priority: u8,
    /// Fault from own tracking, and fault imposed by the sync group.
    fault: bool,
    group_fault: bool,
    master_adver_int: Duration,
    /// BACKUP: when the master is declared down.
    down_at: Option<Instant>,
    /// MASTER: when the next advert is due.
    advert_at: Option<Instant>,
    /// preempt_delay: until when lower-priority adverts are accepted.
    preempt_until: Option<Instant>,
    master_addr: Option<IpAddr>,
    master_priority: Option<u8>,
    transitions: u64,
}

/// A fraction `num/256` of `d`.
fn frac256(d: Duration, num: u32) -> Duration {
    d * num / 256
}

impl Machine {
    /// A machine in INIT with effective priority `priority`.
    pub(crate) fn new(p: Params, priority: u8) -> Machine {
        Machine {
            master_adver_int: p.adver_int,
            p,
            state: State::Init,
            priority: priority.max(1),
            fault: false,
            group_fault: false,
            down_at: None,
            advert_at: None,
            preempt_until: None,
            master_addr: None,
            master_priority: None,
            transitions: 0,
        }
    }

    /// Current state.
    pub(crate) fn state(&self) -> State {
        self.state
    }

    /// Effective priority.
    pub(crate) fn priority(&self) -> u8 {
        self.priority
    }

    /// The master as last seen (our own address while MASTER).
    pub(crate) fn master_addr(&self) -> Option<IpAddr> {
        match self.state {
            State::Master => Some(self.p.own_addr),
            _ => self.master_addr,
        }
    }

    /// The master's priority as last seen (our own while MASTER).
    pub(crate) fn master_priority(&self) -> Option<u8> {
        match self.state {
            State::Master => Some(self.priority),
            _ => self.master_priority,
        }
    }

    /// State changes so far.
    pub(crate) fn transitions(&self) -> u64 {
        self.transitions
    }

    /// The interval in force (v3: learnt from the master).
    pub(crate) fn master_adver_int(&self) -> Duration {
        self.master_adver_int
    }

    /// The settings.
    #[cfg(test)]
    pub(crate) fn params(&self) -> &Params {
        &self.p
    }

    /// The next instant [`Machine::tick`] has something to do.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Backup => self.down_at,
            State::Master => self.advert_at,
            _ => None,
        }
    }

    /// Skew_Time for priority `prio`.
    fn skew_for(&self, prio: u8) -> Duration {
        let num = 256 - u32::from(prio);
        match self.p.version {
            Version::V2 => frac256(Duration::from_secs(1), num),
            Version::V3 => frac256(self.master_adver_int, num),
        }
    }

    /// Skew_Time at the current priority.
    pub(crate) fn skew(&self) -> Duration {
        self.skew_for(self.priority)
    }

    /// Master_Down_Interval.
    pub(crate) fn master_down_interval(&self) -> Duration {
        self.master_adver_int * 3 + self.skew()
    }

    fn faulty(&self) -> bool {
        self.fault || self.group_fault
    }

    fn enter(&mut self, to: State, out: &mut Vec<Action>) {
        if self.state != to {
            self.state = to;
            self.transitions += 1;
            out.push(Action::Changed(to));
        }
    }

    fn become_master(&mut self, now: Instant, out: &mut Vec<Action>) {
        // The advert first, so the old master lets go before we announce.
        out.push(Action::Send(self.priority));
        out.push(Action::TakeVips);
        self.master_adver_int = self.p.adver_int;
        self.advert_at = Some(now + self.p.adver_int);
        self.down_at = None;
        self.preempt_until = None;
        self.enter(State::Master, out);
    }

    fn become_backup(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.state == State::Master {
            out.push(Action::ReleaseVips);
        }
        if self.state != State::Master {
            self.master_adver_int = self.p.adver_int;
        }
        self.advert_at = None;
        self.preempt_until = None;
        self.down_at = Some(now + self.master_down_interval());
        self.enter(State::Backup, out);
    }

    fn go_quiet(&mut self, to: State, out: &mut Vec<Action>) {
        if self.state == State::Master {
            out.push(Action::Send(0));
            out.push(Action::ReleaseVips);
        }
        self.advert_at = None;
        self.down_at = None;
        self.preempt_until = None;
        self.master_adver_int = self.p.adver_int;
        self.enter(to, out);
    }

    /// Leaves INIT.
    pub(crate) fn start(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state != State::Init {
            return out;
        }
        if self.faulty() {
            self.go_quiet(State::Fault, &mut out);
        } else if self.priority == PRIO_OWNER {
            self.become_master(now, &mut out);
        } else {
            self.become_backup(now, &mut out);
            if self.p.start_as_master {
                // One interval to hear an existing master, then take over.
                self.down_at = Some(now + self.p.adver_int + self.skew_for(PRIO_OWNER));
            }
        }
        out
    }

    /// Whether `src` wins a tie against our own address.
    fn src_higher(&self, src: IpAddr) -> std::cmp::Ordering {
        let key = |a: IpAddr| match a {
            IpAddr::V4(a) => u128::from(a.to_bits()),
            IpAddr::V6(a) => a.to_bits(),
        };
        key(src).cmp(&key(self.p.own_addr))
    }

    /// An advertisement that passed the checks of [`super::accept`],
    /// from `src` with `priority` and (v3) `interval`.
    pub(crate) fn advert(
        &mut self,
        now: Instant,
        src: IpAddr,
        priority: u8,
        interval: Duration,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        match self.state {
            State::Backup => self.advert_in_backup(now, src, priority, interval),
            State::Master => self.advert_in_master(now, src, priority, interval, &mut out),
            _ => {}
        }
        out
    }

    fn learn_interval(&mut self, interval: Duration) {
        if self.p.version == Version::V3 && !interval.is_zero() {
            self.master_adver_int = interval;
        }
    }

    fn advert_in_backup(&mut self, now: Instant, src: IpAddr, priority: u8, interval: Duration) {
        self.master_addr = Some(src);
        self.master_priority = Some(priority);
        if priority == 0 {
            self.down_at = Some(now + self.skew());
            return;
        }
        let delaying =
            !self.p.preempt_delay.is_zero() && self.preempt_until.is_none_or(|t| t > now);
        if self.p.nopreempt || priority >= self.priority || delaying {
            self.learn_interval(interval);
            self.down_at = Some(now + self.master_down_interval());
            if !self.p.preempt_delay.is_zero() {
                if priority >= self.priority {
                    self.preempt_until = None;
                } else if self.preempt_until.is_none() {
                    self.preempt_until = Some(now + self.p.preempt_delay);
                }
            }
        }
        // Else: a lower priority and we preempt: ignored, the down timer
        // runs on and we take over when it ends.
    }

    fn advert_in_master(
        &mut self,
        now: Instant,
        src: IpAddr,
        priority: u8,
        interval: Duration,
        out: &mut Vec<Action>,
    ) {
        use std::cmp::Ordering::*;
        if priority == 0 {
            out.push(Action::Send(self.priority));
            self.advert_at = Some(now + self.p.adver_int);
            return;
        }
        let order = self.src_higher(src);
        if priority == self.priority && self.priority == PRIO_OWNER && order != Equal {
            // Two address owners: a configuration error; keepalived lowers
            // its own priority so an election can happen.
            tracing::warn!("two VRRP address owners (priority 255); lowering ours to 254");
            self.priority = PRIO_OWNER - 1;
        }
        if priority > self.priority || (priority == self.priority && order == Greater) {
            self.learn_interval(interval);
            self.master_addr = Some(src);
            self.master_priority = Some(priority);
            self.become_backup(now, out);
        } else if order != Equal {
            // Lower (or equal from a lower address): reassert at once.
            out.push(Action::Send(self.priority));
            self.advert_at = Some(now + self.p.adver_int);
        }
    }

    /// Time passed: the master-down timer or the advert timer.
    pub(crate) fn tick(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match self.state {
            State::Backup if self.down_at.is_some_and(|t| t <= now) => {
                self.become_master(now, &mut out);
            }
            State::Master if self.advert_at.is_some_and(|t| t <= now) => {
                out.push(Action::Send(self.priority));
                self.advert_at = Some(now + self.p.adver_int);
            }
            _ => {}
        }
        out
    }

    /// The effective priority changed (tracking, reload). Adverts carry it
    /// from the next one on; a BACKUP's running down timer moves by the
    /// change of skew, as keepalived's does.
    pub(crate) fn set_priority(&mut self, priority: u8) {
        let old = self.skew();
        self.priority = priority.max(1);
        let new = self.skew();
        if self.state == State::Backup
            && let Some(t) = self.down_at
        {
            self.down_at = Some(if new >= old {
                t + (new - old)
            } else {
                t.checked_sub(old - new).unwrap_or(t)
            });
        }
    }

    /// New settings after a reload (same vrid, version and address).
    pub(crate) fn set_params(&mut self, p: Params) {
        if self.state != State::Master && p.adver_int != self.p.adver_int {
            self.master_adver_int = p.adver_int;
        }
        self.p = p;
    }

    fn apply_fault(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match (self.faulty(), self.state) {
            (true, State::Backup | State::Master) => self.go_quiet(State::Fault, &mut out),
            (false, State::Fault) => self.become_backup(now, &mut out),
            _ => {}
        }
        out
    }

    /// Own tracking says faulty (or fine again).
    pub(crate) fn set_fault(&mut self, now: Instant, fault: bool) -> Vec<Action> {
        self.fault = fault;
        self.apply_fault(now)
    }

    /// The sync group says a member is faulty (or none is any more).
    pub(crate) fn set_group_fault(&mut self, now: Instant, fault: bool) -> Vec<Action> {
        self.group_fault = fault;
        self.apply_fault(now)
    }

    /// The sync group moves every member to `to` (MASTER or BACKUP); no
    /// effect when faulty, stopped or already there.
    pub(crate) fn follow(&mut self, now: Instant, to: State) -> Vec<Action> {
        let mut out = Vec::new();
        if self.faulty() || self.state == to {
            return out;
        }
        match (self.state, to) {
            (State::Backup, State::Master) => self.become_master(now, &mut out),
            (State::Master, State::Backup) => self.become_backup(now, &mut out),
            _ => {}
        }
        out
    }

    /// Stops: a priority-0 advert and the VIPs removed if MASTER.
    pub(crate) fn stop(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        self.go_quiet(State::Stop, &mut out);
        out
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
