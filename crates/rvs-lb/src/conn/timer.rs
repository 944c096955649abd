//! A single-level timer wheel of entry indices, with lazy re-arm.
//!
//! The wheel has `N` slots (a power of two), each covering one tick of time.
//! An armed index sits in exactly one slot, in an intrusive doubly linked list
//! whose links live in arrays indexed by the entry index itself, so arming,
//! moving and cancelling are O(1) and nothing is allocated after
//! construction.
//!
//! # Invariants
//! - The cursor `next_tick` is the first tick not yet processed. Every armed
//!   index has its due tick in `next_tick ..= next_tick + N - 1`, so each slot
//!   holds the entries of exactly one tick and a slot is always processed at
//!   its own tick, never a turn early.
//! - A deadline `D` is armed at tick `ceil(D / tick)`, and that tick is only
//!   processed once `now >= tick * tick_len >= D`: an entry never fires before
//!   its deadline, and (if [`TimerWheel::expire`] is called at least once per
//!   tick) at most one tick after it.
//! - Deadlines further away than one turn are parked in the last slot of the
//!   window; when they come up the owner reports that they are not due
//!   ([`Fired::Rearm`]) and they move on by up to one more turn. A two-hour
//!   timeout in a 400-second wheel is looked at about 18 times in its life,
//!   which costs less than a second wheel level would.
//!
//! The wheel knows nothing about what an index means: [`TimerWheel::expire`]
//! hands each fired index to a callback that decides whether it has really
//! expired (lazy re-arm, see the [module docs of `conn`](super)).

use core::time::Duration;

use super::Time;

/// "No index": the end of a slot's list.
const NIL: u32 = u32::MAX;
/// The `slot` of an index that is not in the wheel (slots are below 2^20).
const UNARMED: u32 = u32::MAX;

/// An index's place in the wheel: 12 bytes. Only the slot of the due tick
/// is kept: every armed index is due in the window of `N` ticks from the
/// cursor (see the invariants), so the slot determines the tick
/// ([`TimerWheel::tick_of`]).
#[derive(Debug, Clone, Copy)]
struct Link {
    next: u32,
    prev: u32,
    /// The slot of the tick this index is armed for, or [`UNARMED`].
    slot: u32,
}

const UNLINKED: Link = Link {
    next: NIL,
    prev: NIL,
    slot: UNARMED,
};

/// What the owner of a fired index decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fired {
    /// It has expired (and the owner has dealt with it); it leaves the wheel.
    Expired,
    /// It is not due yet: arm it again for this deadline.
    Rearm(Time),
}

/// What one [`TimerWheel::expire`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpireReport {
    /// Fired indices handed to the callback (bounded by the budget).
    pub examined: usize,
    /// Of those, how many the callback reported as expired.
    pub expired: usize,
    /// Whether the wheel has processed every tick up to `now`. If not, the
    /// budget (or the one-turn limit) ran out; call again later.
    pub caught_up: bool,
}

/// A timer wheel over entry indices `0..capacity`. See the module docs.
#[derive(Debug)]
pub struct TimerWheel {
    links: Box<[Link]>,
    heads: Box<[u32]>,
    /// `N - 1`, where `N` (the number of slots) is a power of two.
    mask: u64,
    tick_ms: u64,
    next_tick: u64,
    armed: u32,
}

impl TimerWheel {
    /// A wheel for indices `0..capacity`, with ticks of `tick` (at least
    /// 1 ms) and `slots` slots (rounded up to a power of two, at least 2;
    /// at most 2^20). One turn of the wheel spans `tick * slots`.
    ///
    /// Allocates; call it at setup, not on the packet path.
    pub fn new(capacity: u32, tick: Duration, slots: u32) -> Self {
        let slots = slots.clamp(2, 1 << 20).next_power_of_two();
        let tick_ms = u64::try_from(tick.as_millis()).unwrap_or(u64::MAX).max(1);
        TimerWheel {
            links: vec![UNLINKED; capacity as usize].into_boxed_slice(),
            heads: vec![NIL; slots as usize].into_boxed_slice(),
            mask: u64::from(slots - 1),
            tick_ms,
            next_tick: 0,
            armed: 0,
        }
    }

    /// The length of one tick.
    pub fn tick(&self) -> Duration {
        Duration::from_millis(self.tick_ms)
    }

    /// The number of slots.
    pub fn slots(&self) -> u32 {
        u32::try_from(self.mask.saturating_add(1)).unwrap_or(u32::MAX)
    }

    /// How far ahead one turn of the wheel reaches (`tick * slots`).
    pub fn horizon(&self) -> Duration {
        Duration::from_millis(self.tick_ms.saturating_mul(self.mask.saturating_add(1)))
    }

    /// Bytes the wheel allocated (per-index links and slot heads).
    pub fn memory_bytes(&self) -> usize {
        core::mem::size_of_val::<[Link]>(&self.links) + core::mem::size_of_val::<[u32]>(&self.heads)
    }

    /// The number of indices this wheel can hold (`0..capacity`).
    pub fn capacity(&self) -> u32 {
        u32::try_from(self.links.len()).unwrap_or(u32::MAX)
    }

    /// How many indices are armed.
    pub fn len(&self) -> u32 {
        self.armed
    }

    /// Whether no index is armed.
    pub fn is_empty(&self) -> bool {
        self.armed == 0
    }

    /// Whether `idx` is armed.
    pub fn is_armed(&self, idx: u32) -> bool {
        self.links
            .get(idx as usize)
            .is_some_and(|l| l.slot != UNARMED)
    }

    /// The earliest time at which `idx` can fire, if it is armed. It fires at
    /// the first [`expire`](Self::expire) call at or after this time.
    pub fn fires_at(&self, idx: u32) -> Option<Time> {
        let slot = self.links.get(idx as usize)?.slot;
        (slot != UNARMED)
            .then(|| Time::from_millis(self.tick_of(slot).saturating_mul(self.tick_ms)))
    }

    /// Arms `idx` to fire at `deadline` (or the first expiry pass after it, if
    /// it has passed already). If `idx` was armed, it is moved. Returns false
    /// if `idx` is out of range. O(1).
    ///
    /// `now` lets an empty wheel move its cursor to the present, so that a
    /// wheel left idle for a long time does not walk through the idle ticks.
    pub fn arm(&mut self, idx: u32, deadline: Time, now: Time) -> bool {
        if idx as usize >= self.links.len() {
            return false;
        }
        self.unlink(idx);
        if self.armed == 0 {
            self.next_tick = self.next_tick.max(now.as_millis() / self.tick_ms);
        }
        let due = self.due_tick(deadline, self.next_tick);
        self.link(idx, due);
        true
    }

    /// Makes sure `idx` fires no later than `deadline`: moves it earlier if it
    /// is armed for a later tick, arms it if it is not armed, and otherwise
    /// leaves it alone (a later visit than needed is what lazy re-arm is for).
    /// Returns false if `idx` is out of range. O(1).
    pub fn arm_no_later_than(&mut self, idx: u32, deadline: Time) -> bool {
        let Some(current) = self.links.get(idx as usize).map(|l| l.slot) else {
            return false;
        };
        let due = self.due_tick(deadline, self.next_tick);
        if current == UNARMED || due < self.tick_of(current) {
            self.unlink(idx);
            self.link(idx, due);
        }
        true
    }

    /// Disarms `idx`. Returns whether it was armed. O(1).
    pub fn cancel(&mut self, idx: u32) -> bool {
        self.unlink(idx)
    }

    /// Processes the ticks up to `now`: each armed index whose tick has come is
    /// taken out of the wheel and handed to `on_fire`, which either reports it
    /// expired or gives its true deadline to re-arm it at.
    ///
    /// At most `budget` indices are handed over and at most one turn of slots
    /// is walked per call, so the work of one call is bounded; the report
    /// says whether the wheel caught up with `now`.
    pub fn expire(
        &mut self,
        now: Time,
        budget: usize,
        mut on_fire: impl FnMut(u32) -> Fired,
    ) -> ExpireReport {
        let now_tick = now.as_millis() / self.tick_ms;
        let mut report = ExpireReport::default();
        let mut slots_left = self.mask.saturating_add(1);
        loop {
            if self.next_tick > now_tick {
                report.caught_up = true;
                return report;
            }
            if self.armed == 0 {
                // Nothing can fire before a new arm, which places itself
                // relative to the cursor: skip the idle ticks at once.
                self.next_tick = now_tick.saturating_add(1);
                report.caught_up = true;
                return report;
            }
            let head = self.head(self.next_tick);
            if head == NIL {
                if slots_left == 0 {
                    return report;
                }
                slots_left -= 1;
                self.next_tick = self.next_tick.saturating_add(1);
                continue;
            }
            if report.examined >= budget {
                return report;
            }
            self.unlink(head);
            report.examined += 1;
            match on_fire(head) {
                Fired::Expired => report.expired += 1,
                Fired::Rearm(deadline) => {
                    // Strictly after the tick being processed, so a confused
                    // owner cannot keep an index in the current slot forever.
                    let due = self.due_tick(deadline, self.next_tick.saturating_add(1));
                    self.link(head, due);
                }
            }
        }
    }

    /// The tick to arm `deadline` at: its own tick, but no earlier than
    /// `earliest` and no later than the last tick of the current window.
    fn due_tick(&self, deadline: Time, earliest: u64) -> u64 {
        let own = deadline.as_millis().div_ceil(self.tick_ms);
        let last = self.next_tick.saturating_add(self.mask);
        own.max(earliest).min(last)
    }

    /// The tick an armed index in `slot` is due at: the one tick of the
    /// window `next_tick ..= next_tick + mask` that falls in that slot.
    fn tick_of(&self, slot: u32) -> u64 {
        let ahead = u64::from(slot).wrapping_sub(self.next_tick) & self.mask;
        self.next_tick.saturating_add(ahead)
    }

    fn slot(&self, tick: u64) -> usize {
        // The mask is below 2^20, so this fits any usize.
        (tick & self.mask) as usize
    }

    fn head(&self, tick: u64) -> u32 {
        self.heads.get(self.slot(tick)).copied().unwrap_or(NIL)
    }

    fn set_head(&mut self, tick: u64, idx: u32) {
        let slot = self.slot(tick);
        if let Some(h) = self.heads.get_mut(slot) {
            *h = idx;
        }
    }

    /// Pushes an unarmed `idx` onto the front of the slot of `due`.
    fn link(&mut self, idx: u32, due: u64) {
        let old = self.head(due);
        self.set_head(due, idx);
        if let Some(l) = self.links.get_mut(idx as usize) {
            *l = Link {
                next: old,
                prev: NIL,
                // The mask is below 2^20: the slot fits.
                slot: (due & self.mask) as u32,
            };
        }
        if let Some(o) = self.links.get_mut(old as usize) {
            o.prev = idx;
        }
        self.armed = self.armed.saturating_add(1);
    }

    /// Takes `idx` out of its slot; returns whether it was armed.
    fn unlink(&mut self, idx: u32) -> bool {
        let Some(l) = self.links.get(idx as usize).copied() else {
            return false;
        };
        if l.slot == UNARMED {
            return false;
        }
        match self.links.get_mut(l.prev as usize) {
            Some(p) => p.next = l.next,
            None => self.set_head(u64::from(l.slot), l.next),
        }
        if let Some(n) = self.links.get_mut(l.next as usize) {
            n.prev = l.prev;
        }
        if let Some(me) = self.links.get_mut(idx as usize) {
            *me = UNLINKED;
        }
        self.armed = self.armed.saturating_sub(1);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_is_twelve_bytes() {
        assert_eq!(core::mem::size_of::<Link>(), 12);
    }

    /// The due tick comes back from the slot alone however far the cursor
    /// has moved (many turns of a 4-slot wheel), and moving earlier
    /// compares ticks, not slots.
    #[test]
    fn due_ticks_survive_many_turns() {
        let mut w = TimerWheel::new(2, Duration::from_millis(100), 4);
        for turn in 0..40u64 {
            let now = Time::from_millis(turn * 250);
            w.expire(now, usize::MAX, |_| Fired::Expired);
            // Deadline 0.3 s ahead: tick ceil(D / 100).
            let d = now.add_millis(300);
            assert!(w.arm(0, d, now));
            let want = d.as_millis().div_ceil(100) * 100;
            assert_eq!(w.fires_at(0), Some(Time::from_millis(want)), "turn {turn}");
            // Earlier by one tick: moves; later: stays.
            assert!(w.arm_no_later_than(0, d.add_millis(200)));
            assert_eq!(w.fires_at(0), Some(Time::from_millis(want)));
            let earlier = Time::from_millis(want - 100);
            assert!(w.arm_no_later_than(0, earlier));
            assert_eq!(
                w.fires_at(0),
                Some(earlier.max(Time::from_millis(now.as_millis().div_ceil(100) * 100)))
            );
            assert!(w.cancel(0));
            assert_eq!(w.fires_at(0), None);
        }
    }

    fn secs(s: u64) -> Time {
        Time::from_secs(s)
    }

    /// Runs expiry with an owner whose deadlines are in `deadlines` (index →
    /// deadline); returns the indices reported expired.
    fn run(w: &mut TimerWheel, now: Time, budget: usize, deadlines: &[Time]) -> Vec<u32> {
        let mut out = Vec::new();
        w.expire(now, budget, |i| {
            let d = deadlines[i as usize];
            if d <= now {
                out.push(i);
                Fired::Expired
            } else {
                Fired::Rearm(d)
            }
        });
        out
    }

    #[test]
    fn fires_at_deadline_not_before_and_within_a_tick() {
        // 100 ms ticks; deadlines that do and do not fall on a tick boundary.
        let mut w = TimerWheel::new(4, Duration::from_millis(100), 64);
        let deadlines = [
            Time::from_millis(1000),
            Time::from_millis(1050),
            Time::from_millis(1099),
            Time::from_millis(1101),
        ];
        for (i, d) in deadlines.iter().enumerate() {
            assert!(w.arm(i as u32, *d, Time::ZERO));
        }
        let mut fired_at = [None; 4];
        // Step the clock 1 ms at a time and record when each one fires.
        for ms in 0..=1300 {
            let now = Time::from_millis(ms);
            for i in run(&mut w, now, usize::MAX, &deadlines) {
                assert!(fired_at[i as usize].is_none(), "fired twice");
                fired_at[i as usize] = Some(ms);
            }
        }
        for (i, d) in deadlines.iter().enumerate() {
            let at = fired_at[i].expect("never fired");
            assert!(at >= d.as_millis(), "index {i} fired early at {at}");
            assert!(at < d.as_millis() + 100, "index {i} fired late at {at}");
        }
        assert!(w.is_empty());
    }

    #[test]
    fn touched_entries_are_rearmed_not_expired() {
        let mut w = TimerWheel::new(2, Duration::from_secs(1), 16);
        let mut deadlines = [secs(10), secs(10)];
        w.arm(0, deadlines[0], Time::ZERO);
        w.arm(1, deadlines[1], Time::ZERO);
        // Entry 1 sees traffic at t=8 s: only its deadline moves (no wheel call).
        deadlines[1] = secs(18);
        assert_eq!(run(&mut w, secs(10), usize::MAX, &deadlines), vec![0]);
        assert!(w.is_armed(1));
        assert_eq!(w.fires_at(1), Some(secs(18)));
        assert!(run(&mut w, secs(17), usize::MAX, &deadlines).is_empty());
        assert_eq!(run(&mut w, secs(18), usize::MAX, &deadlines), vec![1]);
    }

    #[test]
    fn budget_bounds_each_call() {
        let n = 100u32;
        let mut w = TimerWheel::new(n, Duration::from_secs(1), 8);
        let deadlines = vec![secs(5); n as usize];
        for i in 0..n {
            w.arm(i, secs(5), Time::ZERO);
        }
        let mut total = 0;
        let mut calls = 0;
        loop {
            let mut got = 0;
            let r = w.expire(secs(5), 7, |i| {
                assert!(deadlines[i as usize] <= secs(5));
                got += 1;
                Fired::Expired
            });
            assert!(r.examined <= 7 && got <= 7);
            assert_eq!(r.expired, got);
            total += got;
            calls += 1;
            if r.caught_up {
                break;
            }
            assert_eq!(got, 7, "a call that did not catch up used its budget");
        }
        assert_eq!(total, 100);
        assert_eq!(calls, 15);
        assert!(w.is_empty());
    }

    #[test]
    fn long_timeouts_beyond_one_turn() {
        // One turn is 8 s; a 2-hour and a 100-second deadline.
        let mut w = TimerWheel::new(2, Duration::from_secs(1), 8);
        assert_eq!(w.horizon(), Duration::from_secs(8));
        let deadlines = [secs(7200), secs(100)];
        w.arm(0, deadlines[0], Time::ZERO);
        w.arm(1, deadlines[1], Time::ZERO);
        let mut fired = [None; 2];
        let mut visits = 0;
        for s in 0..=7300 {
            let now = secs(s);
            w.expire(now, usize::MAX, |i| {
                visits += 1;
                let d = deadlines[i as usize];
                if d <= now {
                    fired[i as usize] = Some(s);
                    Fired::Expired
                } else {
                    Fired::Rearm(d)
                }
            });
        }
        assert_eq!(fired, [Some(7200), Some(100)]);
        // Parked a turn at a time: about deadline / turn visits each.
        assert!(visits <= 7200 / 7 + 100 / 7 + 4, "{visits} visits");
    }

    #[test]
    fn cancel_and_move_earlier() {
        let mut w = TimerWheel::new(3, Duration::from_secs(1), 16);
        let deadlines = [secs(5), secs(900), secs(6)];
        w.arm(0, deadlines[0], Time::ZERO);
        w.arm(1, deadlines[1], Time::ZERO);
        w.arm(2, deadlines[2], Time::ZERO);
        assert!(w.cancel(0));
        assert!(!w.cancel(0));
        assert_eq!(w.len(), 2);
        // Entry 1's timeout shrinks to 10 s: it must move earlier.
        let deadlines = [secs(5), secs(10), secs(6)];
        assert!(w.arm_no_later_than(1, deadlines[1]));
        assert_eq!(w.fires_at(1), Some(secs(10)));
        // A later deadline does not move it.
        w.arm_no_later_than(2, secs(50));
        assert_eq!(w.fires_at(2), Some(secs(6)));
        assert_eq!(run(&mut w, secs(6), usize::MAX, &deadlines), vec![2]);
        assert_eq!(run(&mut w, secs(10), usize::MAX, &deadlines), vec![1]);
        assert!(w.is_empty());
        assert!(!w.arm(3, secs(1), Time::ZERO), "out of range");
    }

    #[test]
    fn idle_wheel_jumps_and_past_deadlines_fire_next() {
        let mut w = TimerWheel::new(1, Duration::from_millis(10), 4);
        // Idle for a very long time, then arm: no walk through idle ticks.
        let now = Time::from_millis(1 << 40);
        w.arm(0, Time::from_millis(5), now);
        let mut n = 0;
        let r = w.expire(now, usize::MAX, |_| {
            n += 1;
            Fired::Expired
        });
        assert_eq!((n, r.caught_up), (1, true));
    }

    #[test]
    fn lagging_cursor_is_bounded_per_call() {
        // Armed at 0 for 10 s, then the clock jumps far ahead: each call walks
        // at most one turn, and the entry still fires.
        let mut w = TimerWheel::new(1, Duration::from_millis(1), 16);
        w.arm(0, secs(10), Time::ZERO);
        let now = secs(3600);
        let mut fired = false;
        for _ in 0..10_000 {
            let r = w.expire(now, usize::MAX, |_| {
                fired = true;
                Fired::Expired
            });
            if r.caught_up {
                break;
            }
        }
        assert!(fired);
    }
}
