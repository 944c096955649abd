//! The state machine on a fake clock: single machines for exact timer
//! values, and a small simulated segment (every advert reaches every
//! other running node at once) for elections.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use super::*;

const SEC: Duration = Duration::from_secs(1);

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
}

fn params(last: u8) -> Params {
    Params {
        version: Version::V2,
        adver_int: SEC,
        nopreempt: false,
        preempt_delay: Duration::ZERO,
        start_as_master: false,
        own_addr: ip(last),
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A node of the simulated segment.
struct Node {
    m: Machine,
    running: bool,
    vips: bool,
    /// (time, priority) of every advert sent.
    sent: Vec<(Instant, u8)>,
}

impl Node {
    fn new(last: u8, prio: u8, tweak: impl FnOnce(&mut Params)) -> Node {
        let mut p = params(last);
        tweak(&mut p);
        Node {
            m: Machine::new(p, prio),
            running: false,
            vips: false,
            sent: Vec::new(),
        }
    }
}

/// A segment of nodes and a clock.
struct Seg {
    nodes: Vec<Node>,
    now: Instant,
    t0: Instant,
}

impl Seg {
    fn new(nodes: Vec<Node>) -> Seg {
        let t0 = Instant::now();
        Seg { nodes, now: t0, t0 }
    }

    /// Carries out `acts` of node `i`: adverts reach every other running
    /// node (whose answers are carried out in turn).
    fn apply(&mut self, i: usize, acts: Vec<Action>) {
        let mut queue: VecDeque<(usize, Action)> = acts.into_iter().map(|a| (i, a)).collect();
        while let Some((from, a)) = queue.pop_front() {
            match a {
                Action::Send(prio) => {
                    self.nodes[from].sent.push((self.now, prio));
                    let src = self.nodes[from].m.params().own_addr;
                    let int = self.nodes[from].m.params().adver_int;
                    for j in 0..self.nodes.len() {
                        if j != from && self.nodes[j].running {
                            let now = self.now;
                            let more = self.nodes[j].m.advert(now, src, prio, int);
                            queue.extend(more.into_iter().map(|a| (j, a)));
                        }
                    }
                }
                Action::TakeVips => self.nodes[from].vips = true,
                Action::ReleaseVips => self.nodes[from].vips = false,
                Action::Changed(_) => {}
            }
        }
    }

    fn start(&mut self, i: usize) {
        self.nodes[i].running = true;
        let acts = self.nodes[i].m.start(self.now);
        self.apply(i, acts);
    }

    fn stop(&mut self, i: usize) {
        let acts = self.nodes[i].m.stop();
        self.apply(i, acts);
        self.nodes[i].running = false;
    }

    /// Crashes node `i`: no priority-0 advert.
    fn crash(&mut self, i: usize) {
        self.nodes[i].running = false;
    }

    /// Runs the clock to `t0 + at`, in 1 ms steps, firing due timers.
    fn run_to(&mut self, at: Duration) {
        let end = self.t0 + at;
        while self.now < end {
            self.now += ms(1);
            for i in 0..self.nodes.len() {
                if self.nodes[i].running {
                    let acts = self.nodes[i].m.tick(self.now);
                    self.apply(i, acts);
                }
            }
        }
    }

    fn state(&self, i: usize) -> State {
        self.nodes[i].m.state()
    }

    fn masters(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].running && self.state(i) == State::Master)
            .collect()
    }

    /// When node `i` became MASTER last (its first advert of the run).
    fn since(&self, at: Duration) -> Duration {
        self.now - (self.t0 + at)
    }
}

#[test]
fn master_down_after_exactly_three_intervals_plus_skew() {
    // v2, priority 100: skew = 156/256 s = 609.375 ms.
    let t0 = Instant::now();
    let mut m = Machine::new(params(1), 100);
    assert_eq!(m.start(t0), vec![Action::Changed(State::Backup)]);
    let down = SEC * 3 + Duration::from_micros(609_375);
    assert_eq!(m.master_down_interval(), down);
    assert_eq!(m.deadline(), Some(t0 + down));
    assert!(m.tick(t0 + down - Duration::from_nanos(1)).is_empty());
    assert_eq!(
        m.tick(t0 + down),
        vec![
            Action::Send(100),
            Action::TakeVips,
            Action::Changed(State::Master)
        ]
    );
    // Then an advert every interval.
    assert_eq!(m.deadline(), Some(t0 + down + SEC));
    assert_eq!(m.tick(t0 + down + SEC), vec![Action::Send(100)]);
}

#[test]
fn an_advert_restarts_the_down_timer() {
    let t0 = Instant::now();
    let mut m = Machine::new(params(1), 100);
    m.start(t0);
    assert!(m.advert(t0 + SEC * 3, ip(2), 150, SEC).is_empty());
    assert_eq!(m.master_addr(), Some(ip(2)));
    assert_eq!(m.master_priority(), Some(150));
    assert_eq!(m.deadline(), Some(t0 + SEC * 3 + m.master_down_interval()));
}

#[test]
fn v3_backup_learns_the_masters_interval() {
    let t0 = Instant::now();
    let mut m = Machine::new(
        Params {
            version: Version::V3,
            ..params(1)
        },
        100,
    );
    m.start(t0);
    // v3 skew scales with the interval: 156/256 × 1 s as configured ...
    assert_eq!(m.skew(), Duration::from_micros(609_375));
    m.advert(t0, ip(2), 200, ms(500));
    // ... and with the master's 50 cs: 3 × 0.5 + 156/256 × 0.5.
    assert_eq!(m.master_adver_int(), ms(500));
    assert_eq!(
        m.deadline(),
        Some(t0 + ms(1500) + Duration::from_nanos(304_687_500))
    );
}

#[test]
fn v2_ignores_the_advert_interval_for_its_timer() {
    let t0 = Instant::now();
    let mut m = Machine::new(params(1), 100);
    m.start(t0);
    m.advert(t0, ip(2), 200, ms(500));
    assert_eq!(m.master_adver_int(), SEC);
}

#[test]
fn address_owner_is_master_at_once() {
    let t0 = Instant::now();
    let mut m = Machine::new(params(1), PRIO_OWNER);
    assert_eq!(
        m.start(t0),
        vec![
            Action::Send(255),
            Action::TakeVips,
            Action::Changed(State::Master)
        ]
    );
}

#[test]
fn state_master_waits_one_interval_then_takes_over() {
    let t0 = Instant::now();
    let mut m = Machine::new(
        Params {
            start_as_master: true,
            ..params(1)
        },
        100,
    );
    m.start(t0);
    assert_eq!(m.state(), State::Backup);
    // 1 s + 1/256 s.
    let at = t0 + SEC + Duration::from_micros(3_906);
    assert!(m.tick(at).is_empty());
    assert_eq!(m.tick(at + Duration::from_micros(1)).len(), 3);
    assert_eq!(m.state(), State::Master);
}

#[test]
fn election_by_priority() {
    let mut s = Seg::new(vec![Node::new(1, 100, |_| {}), Node::new(2, 200, |_| {})]);
    s.start(0);
    s.start(1);
    s.run_to(SEC * 10);
    assert_eq!(s.masters(), vec![1]);
    assert!(s.nodes[1].vips && !s.nodes[0].vips);
    // Node 0 never sent: it always heard a higher priority in time.
    assert!(s.nodes[0].sent.is_empty());
}

#[test]
fn equal_priority_tie_goes_to_the_higher_address() {
    // Both start as MASTER hints at once, time out together, both send;
    // the lower address yields.
    let hint = |p: &mut Params| p.start_as_master = true;
    let mut s = Seg::new(vec![Node::new(9, 100, hint), Node::new(3, 100, hint)]);
    s.start(0);
    s.start(1);
    s.run_to(SEC * 10);
    assert_eq!(s.masters(), vec![0]);
    assert_eq!(s.state(1), State::Backup);
}

#[test]
fn higher_priority_preempts_a_running_master() {
    let mut s = Seg::new(vec![Node::new(1, 100, |_| {}), Node::new(2, 200, |_| {})]);
    s.start(0);
    s.run_to(SEC * 5);
    assert_eq!(s.masters(), vec![0]);
    s.start(1);
    // Node 1 ignores the lower adverts: master after its down interval
    // (3 + 56/256 s).
    s.run_to(SEC * 8 + ms(218));
    assert_eq!(s.masters(), vec![0]);
    s.run_to(SEC * 8 + ms(219));
    assert_eq!(s.masters(), vec![1]);
    assert!(s.nodes[1].vips && !s.nodes[0].vips);
}

#[test]
fn nopreempt_leaves_a_lower_master_alone() {
    let mut s = Seg::new(vec![
        Node::new(1, 100, |_| {}),
        Node::new(2, 200, |p| p.nopreempt = true),
    ]);
    s.start(0);
    s.run_to(SEC * 5);
    s.start(1);
    s.run_to(SEC * 30);
    assert_eq!(s.masters(), vec![0]);
    // Until the master goes away.
    s.crash(0);
    s.run_to(SEC * 35);
    assert_eq!(s.masters(), vec![1]);
}

#[test]
fn preempt_delay_holds_off_preemption() {
    let mut s = Seg::new(vec![
        Node::new(1, 100, |_| {}),
        Node::new(2, 200, |p| p.preempt_delay = SEC * 5),
    ]);
    s.start(0);
    s.run_to(SEC * 5);
    s.start(1);
    // Node 0 is master from 3.609 s, advertising every second. Without
    // the delay node 1 would take over at 5 + 3.218 s; with it, the
    // adverts are accepted for 5 s after the first it hears (5.609 s),
    // the last at 9.609 s, and the down timer it set runs out 3.218 s
    // later, at 12.829 s (the clock steps 1 ms).
    s.run_to(SEC * 12 + ms(826));
    assert_eq!(s.masters(), vec![0]);
    s.run_to(SEC * 12 + ms(829));
    assert_eq!(s.masters(), vec![1]);
}

#[test]
fn priority_zero_means_takeover_after_skew_only() {
    let mut s = Seg::new(vec![Node::new(1, 200, |_| {}), Node::new(2, 100, |_| {})]);
    s.start(0);
    s.start(1);
    s.run_to(SEC * 5);
    assert_eq!(s.masters(), vec![0]);
    s.stop(0);
    assert_eq!(s.nodes[0].sent.last().map(|x| x.1), Some(0));
    assert!(!s.nodes[0].vips);
    // Skew of priority 100: 609.375 ms.
    s.run_to(SEC * 5 + ms(609));
    assert!(s.masters().is_empty());
    s.run_to(SEC * 5 + ms(610));
    assert_eq!(s.masters(), vec![1]);
}

#[test]
fn crashed_master_is_replaced_after_the_down_interval() {
    let mut s = Seg::new(vec![Node::new(1, 200, |_| {}), Node::new(2, 100, |_| {})]);
    s.start(0);
    s.start(1);
    s.run_to(SEC * 5);
    // Node 0's last advert went out at a whole second after it became
    // master; crash right after one.
    let last = s.nodes[0].sent.last().map(|x| x.0).expect("sent");
    s.crash(0);
    let since_last = s.now - last;
    let down = s.nodes[1].m.master_down_interval();
    let mut t = SEC * 5;
    while s.masters().is_empty() {
        t += ms(1);
        s.run_to(t);
    }
    assert_eq!(s.masters(), vec![1]);
    let takeover = s.since(SEC * 5) + since_last;
    assert!(takeover.abs_diff(down) <= ms(1), "{takeover:?} vs {down:?}");
}

#[test]
fn master_reasserts_against_a_lower_priority() {
    let t0 = Instant::now();
    let mut m = Machine::new(params(5), 255);
    m.start(t0);
    assert_eq!(
        m.advert(t0 + ms(10), ip(1), 100, SEC),
        vec![Action::Send(255)]
    );
    assert_eq!(m.deadline(), Some(t0 + ms(10) + SEC));
    // Priority 0 from another (leaving) master: answered too.
    assert_eq!(
        m.advert(t0 + ms(20), ip(1), 0, SEC),
        vec![Action::Send(255)]
    );
    assert_eq!(m.state(), State::Master);
}

#[test]
fn lowered_priority_gives_up_master() {
    // A track script lowers the master's priority below the backup's.
    let mut s = Seg::new(vec![Node::new(1, 200, |_| {}), Node::new(2, 150, |_| {})]);
    s.start(0);
    s.start(1);
    s.run_to(SEC * 5);
    assert_eq!(s.masters(), vec![0]);
    s.nodes[0].m.set_priority(100);
    s.run_to(SEC * 10);
    assert_eq!(s.masters(), vec![1]);
    assert!(!s.nodes[0].vips && s.nodes[1].vips);
    // Priority restored: node 0 preempts back.
    s.nodes[0].m.set_priority(200);
    s.run_to(SEC * 15);
    assert_eq!(s.masters(), vec![0]);
}

#[test]
fn fault_stops_adverts_and_releases_vips() {
    let t0 = Instant::now();
    let mut m = Machine::new(params(1), 255);
    m.start(t0);
    assert_eq!(
        m.set_fault(t0 + SEC, true),
        vec![
            Action::Send(0),
            Action::ReleaseVips,
            Action::Changed(State::Fault)
        ]
    );
    assert_eq!(m.deadline(), None);
    assert!(m.advert(t0 + SEC, ip(2), 100, SEC).is_empty());
    assert!(m.tick(t0 + SEC * 100).is_empty());
    // Recovery: BACKUP with a full down timer.
    assert_eq!(
        m.set_fault(t0 + SEC * 100, false),
        vec![Action::Changed(State::Backup)]
    );
    assert_eq!(
        m.deadline(),
        Some(t0 + SEC * 100 + m.master_down_interval())
    );
    // A fault before start: straight to FAULT.
    let mut m = Machine::new(params(1), 100);
    m.set_fault(t0, true);
    assert_eq!(m.start(t0), vec![Action::Changed(State::Fault)]);
}

#[test]
fn sync_group_orders() {
    let t0 = Instant::now();
    let mut m = Machine::new(params(1), 100);
    m.start(t0);
    assert_eq!(
        m.follow(t0, State::Master),
        vec![
            Action::Send(100),
            Action::TakeVips,
            Action::Changed(State::Master)
        ]
    );
    assert!(m.follow(t0, State::Master).is_empty());
    assert_eq!(
        m.follow(t0, State::Backup),
        vec![Action::ReleaseVips, Action::Changed(State::Backup)]
    );
    assert_eq!(
        m.set_group_fault(t0, true),
        vec![Action::Changed(State::Fault)]
    );
    assert!(m.follow(t0, State::Master).is_empty());
    assert_eq!(
        m.set_group_fault(t0, false),
        vec![Action::Changed(State::Backup)]
    );
}

#[test]
fn stop_from_backup_sends_nothing() {
    let t0 = Instant::now();
    let mut m = Machine::new(params(1), 100);
    m.start(t0);
    assert_eq!(m.stop(), vec![Action::Changed(State::Stop)]);
    assert_eq!(m.transitions(), 2);
}
