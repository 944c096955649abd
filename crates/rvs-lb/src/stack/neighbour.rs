//! The neighbour cache: ARP (IPv4) and neighbour discovery (IPv6) results,
//! per (address, port).
//!
//! # States (RFC 4861 §7.3.2, simplified; ARP uses the same machine)
//! - **Incomplete**: a request was sent and no answer came yet. Up to
//!   [`PER_NEIGHBOUR`](super::hold::PER_NEIGHBOUR) packets to it are held
//!   by the node ([`hold`](super::hold)) and sent when it resolves; more
//!   are dropped (and counted, `neighbour_pending`); a new request goes
//!   out at most once per [`RETRANS_MS`] per entry, however many packets
//!   arrive (DPVS flooded its log with one line per dropped packet; here
//!   there is no logging at all on the packet path, only counters). An
//!   entry that stays incomplete for [`INCOMPLETE_MS`] is removed by
//!   [`NeighbourCache::expire`]; the next packet starts over.
//! - **Reachable**: confirmed by an answer to our request within
//!   [`REACHABLE_MS`]. Used as is.
//! - **Stale**: learned without confirmation (someone's request, a
//!   gratuitous ARP, an NS) or reachable for longer than [`REACHABLE_MS`].
//!   Still used to send, and the first use after [`RETRANS_MS`] asks for a
//!   new request so the entry is re-confirmed (broadcast; rvs skips Linux's
//!   DELAY/PROBE unicast states). Removed after [`STALE_MS`] without
//!   confirmation.
//! - **Permanent**: a static neighbour from the configuration; never
//!   changed by traffic or evicted.
//!
//! # Memory
//! A fixed array of `buckets × WAYS` entries allocated once; an entry is
//! found by hashing (address, port) to a bucket and scanning its
//! [`WAYS`] slots. When a bucket is full, the least recently updated
//! non-permanent entry is replaced, so the cache never grows and an ARP
//! flood from many sources only churns the buckets it hits. No allocation
//! after construction.

use core::hash::BuildHasher;
use core::net::IpAddr;

use foldhash::fast::FixedState;
use rvs_wire::ethernet::MacAddr;

use crate::conn::Time;

/// Slots per bucket.
pub const WAYS: usize = 8;
/// Default capacity (entries).
pub const DEFAULT_CAPACITY: usize = 4096;
/// Least time between two requests for one neighbour.
pub const RETRANS_MS: u64 = 1_000;
/// How long an unanswered entry lives.
pub const INCOMPLETE_MS: u64 = 3_000;
/// How long a confirmation counts.
pub const REACHABLE_MS: u64 = 30_000;
/// How long an unconfirmed entry is kept.
pub const STALE_MS: u64 = 120_000;

/// The state of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NeighbourState {
    /// Being resolved.
    Incomplete,
    /// Confirmed recently.
    Reachable,
    /// Known but not confirmed recently.
    Stale,
    /// Configured.
    Permanent,
}

/// One entry, as listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbour {
    /// The neighbour's address.
    pub addr: IpAddr,
    /// The port it is on.
    pub port: u16,
    /// Its MAC ([`MacAddr::ZERO`] while incomplete).
    pub mac: MacAddr,
    /// State.
    pub state: NeighbourState,
    /// When it was last confirmed, learned or (incomplete) created.
    pub updated: Time,
    /// When a request for it was last sent.
    pub requested: Time,
}

/// What [`NeighbourCache::resolve`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolve {
    /// Send to this MAC; if `refresh`, also queue a request to re-confirm.
    Ready {
        /// The neighbour's MAC.
        mac: MacAddr,
        /// Queue a request (the entry is stale and none was sent lately).
        refresh: bool,
    },
    /// Not resolved: hold or drop the packet; queue a request if `request`.
    Pending {
        /// Queue a request (rate limit allows it).
        request: bool,
    },
}

/// What learning did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learned {
    /// An entry was created.
    Created,
    /// An existing entry was updated.
    Updated,
    /// Nothing (no entry and not asked to create one, a permanent entry,
    /// or no room).
    Ignored,
}

/// A fixed-size set-associative neighbour cache.
#[derive(Debug, Clone)]
pub struct NeighbourCache {
    slots: Box<[Option<Neighbour>]>,
    buckets: usize,
    hasher: FixedState,
    /// Where the next [`expire`](Self::expire) call starts.
    cursor: usize,
    len: usize,
}

impl NeighbourCache {
    /// A cache of at least `capacity` entries (rounded up to whole buckets
    /// of [`WAYS`]). Allocates; call at setup.
    pub fn new(capacity: usize, seed: u64) -> Self {
        let buckets = capacity.div_ceil(WAYS).max(1);
        NeighbourCache {
            slots: vec![None; buckets * WAYS].into_boxed_slice(),
            buckets,
            hasher: FixedState::with_seed(seed),
            cursor: 0,
            len: 0,
        }
    }

    /// Entries in use.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Total slots.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn bucket(&mut self, addr: IpAddr, port: u16) -> &mut [Option<Neighbour>] {
        let h = self.hasher.hash_one((addr, port));
        let b = (h % self.buckets as u64) as usize;
        self.slots
            .get_mut(b * WAYS..(b + 1) * WAYS)
            .unwrap_or_default()
    }

    /// The entry for `addr` on `port`.
    pub fn get(&self, addr: IpAddr, port: u16) -> Option<&Neighbour> {
        let h = self.hasher.hash_one((addr, port));
        let b = (h % self.buckets as u64) as usize;
        self.slots
            .get(b * WAYS..(b + 1) * WAYS)
            .unwrap_or_default()
            .iter()
            .flatten()
            .find(|n| n.addr == addr && n.port == port)
    }

    /// Finds the slot for `addr`/`port`, or a free one, or the oldest
    /// non-permanent one (`None` when every slot is permanent).
    fn slot(&mut self, addr: IpAddr, port: u16) -> Option<(&mut Option<Neighbour>, bool)> {
        let bucket = self.bucket(addr, port);
        let mut found = None;
        let mut free = None;
        let mut oldest: Option<(usize, Time)> = None;
        for (i, s) in bucket.iter().enumerate() {
            match s {
                Some(n) if n.addr == addr && n.port == port => {
                    found = Some(i);
                    break;
                }
                Some(n) if n.state != NeighbourState::Permanent => {
                    if oldest.is_none_or(|(_, t)| n.updated < t) {
                        oldest = Some((i, n.updated));
                    }
                }
                Some(_) => {}
                None => {
                    if free.is_none() {
                        free = Some(i);
                    }
                }
            }
        }
        let (i, existing) = match (found, free, oldest) {
            (Some(i), _, _) => (i, true),
            (None, Some(i), _) => (i, false),
            (None, None, Some((i, _))) => (i, false),
            (None, None, None) => return None,
        };
        bucket.get_mut(i).map(|s| (s, existing))
    }

    /// Looks `addr` up for sending a packet on `port` at `now`, creating an
    /// incomplete entry when it is unknown.
    #[inline]
    pub fn resolve(&mut self, addr: IpAddr, port: u16, now: Time) -> Resolve {
        let Some((slot, existing)) = self.slot(addr, port) else {
            return Resolve::Pending { request: false };
        };
        let due =
            |n: &Neighbour| now.as_millis().saturating_sub(n.requested.as_millis()) >= RETRANS_MS;
        match slot {
            Some(n) if existing => match n.state {
                NeighbourState::Permanent => Resolve::Ready {
                    mac: n.mac,
                    refresh: false,
                },
                NeighbourState::Reachable
                    if now.as_millis().saturating_sub(n.updated.as_millis()) < REACHABLE_MS =>
                {
                    Resolve::Ready {
                        mac: n.mac,
                        refresh: false,
                    }
                }
                NeighbourState::Reachable | NeighbourState::Stale => {
                    n.state = NeighbourState::Stale;
                    let refresh = due(n);
                    if refresh {
                        n.requested = now;
                    }
                    Resolve::Ready {
                        mac: n.mac,
                        refresh,
                    }
                }
                NeighbourState::Incomplete => {
                    let request = due(n);
                    if request {
                        n.requested = now;
                    }
                    Resolve::Pending { request }
                }
            },
            _ => {
                let added = slot.is_none();
                *slot = Some(Neighbour {
                    addr,
                    port,
                    mac: MacAddr::ZERO,
                    state: NeighbourState::Incomplete,
                    updated: now,
                    requested: now,
                });
                if added {
                    self.len += 1;
                }
                Resolve::Pending { request: true }
            }
        }
    }

    /// Records that `addr` is at `mac` on `port`. `confirmed`: an answer to
    /// our own request (the entry becomes reachable; otherwise stale, or
    /// reachable if it was incomplete and this is an answer addressed to
    /// us). `create`: make an entry if there is none (RFC 826: only when
    /// the packet was addressed to us).
    pub fn learn(
        &mut self,
        addr: IpAddr,
        port: u16,
        mac: MacAddr,
        confirmed: bool,
        create: bool,
        now: Time,
    ) -> Learned {
        let Some((slot, existing)) = self.slot(addr, port) else {
            return Learned::Ignored;
        };
        match slot {
            Some(n) if existing => {
                if n.state == NeighbourState::Permanent {
                    return Learned::Ignored;
                }
                let was_incomplete = n.state == NeighbourState::Incomplete;
                let still_reachable = n.mac == mac && n.state == NeighbourState::Reachable;
                n.state = if confirmed || was_incomplete || still_reachable {
                    NeighbourState::Reachable
                } else {
                    NeighbourState::Stale
                };
                if confirmed || was_incomplete || n.mac != mac {
                    n.updated = now;
                }
                n.mac = mac;
                Learned::Updated
            }
            _ if create => {
                let added = slot.is_none();
                *slot = Some(Neighbour {
                    addr,
                    port,
                    mac,
                    state: if confirmed {
                        NeighbourState::Reachable
                    } else {
                        NeighbourState::Stale
                    },
                    updated: now,
                    requested: Time::ZERO,
                });
                if added {
                    self.len += 1;
                }
                Learned::Created
            }
            _ => Learned::Ignored,
        }
    }

    /// Replaces the permanent entries by `statics` (at configuration time).
    pub fn set_static(&mut self, statics: &[(IpAddr, MacAddr, u16)], now: Time) {
        for s in self.slots.iter_mut() {
            if s.is_some_and(|n| n.state == NeighbourState::Permanent) {
                *s = None;
                self.len -= 1;
            }
        }
        for &(addr, mac, port) in statics {
            if let Some((slot, _)) = self.slot(addr, port) {
                let added = slot.is_none();
                *slot = Some(Neighbour {
                    addr,
                    port,
                    mac,
                    state: NeighbourState::Permanent,
                    updated: now,
                    requested: Time::ZERO,
                });
                if added {
                    self.len += 1;
                }
            }
        }
    }

    /// Removes entries on ports not in `ports` (at configuration time).
    pub fn retain_ports(&mut self, ports: &[u16]) {
        for s in self.slots.iter_mut() {
            if s.is_some_and(|n| !ports.contains(&n.port)) {
                *s = None;
                self.len -= 1;
            }
        }
    }

    /// Ages up to `budget` slots (continuing where the last call stopped):
    /// incomplete entries past [`INCOMPLETE_MS`] and stale ones past
    /// [`STALE_MS`] are removed, reachable ones past [`REACHABLE_MS`] become
    /// stale. Returns how many were removed.
    pub fn expire(&mut self, now: Time, budget: usize) -> usize {
        let n = self.slots.len();
        let mut removed = 0;
        for _ in 0..budget.min(n) {
            self.cursor = (self.cursor + 1) % n;
            let Some(s) = self.slots.get_mut(self.cursor) else {
                continue;
            };
            let Some(e) = s else { continue };
            let age = now.as_millis().saturating_sub(e.updated.as_millis());
            let gone = match e.state {
                NeighbourState::Incomplete => age >= INCOMPLETE_MS,
                NeighbourState::Stale => age >= STALE_MS,
                NeighbourState::Reachable => {
                    if age >= REACHABLE_MS {
                        e.state = NeighbourState::Stale;
                    }
                    false
                }
                NeighbourState::Permanent => false,
            };
            if gone {
                *s = None;
                self.len -= 1;
                removed += 1;
            }
        }
        removed
    }

    /// Every entry (for listings).
    pub fn iter(&self) -> impl Iterator<Item = &Neighbour> + '_ {
        self.slots.iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 9]);

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn resolution_is_rate_limited_and_ages() {
        let mut c = NeighbourCache::new(64, 1);
        let a = ip("10.0.0.9");
        let t = Time::from_secs(10);
        assert_eq!(c.resolve(a, 0, t), Resolve::Pending { request: true });
        assert_eq!(
            c.resolve(a, 0, t.add_millis(999)),
            Resolve::Pending { request: false }
        );
        assert_eq!(
            c.resolve(a, 0, t.add_millis(1000)),
            Resolve::Pending { request: true }
        );
        assert_eq!(c.len(), 1);
        assert_eq!(
            c.learn(a, 0, MAC, true, false, t.add_millis(1500)),
            Learned::Updated
        );
        let t2 = t.add_millis(1500);
        assert_eq!(
            c.resolve(a, 0, t2),
            Resolve::Ready {
                mac: MAC,
                refresh: false
            }
        );
        // Past the reachable time: stale, used, one refresh request.
        let t3 = t2.add_millis(REACHABLE_MS);
        assert_eq!(
            c.resolve(a, 0, t3),
            Resolve::Ready {
                mac: MAC,
                refresh: true
            }
        );
        assert_eq!(
            c.resolve(a, 0, t3.add_millis(1)),
            Resolve::Ready {
                mac: MAC,
                refresh: false
            }
        );
        // Unconfirmed for long: gone.
        assert_eq!(c.expire(t2.add_millis(STALE_MS), 1000), 1);
        assert!(c.is_empty());
    }

    #[test]
    fn incomplete_entries_expire() {
        let mut c = NeighbourCache::new(64, 1);
        let a = ip("2001:db8::9");
        let _ = c.resolve(a, 1, Time::ZERO);
        assert_eq!(c.expire(Time::from_millis(INCOMPLETE_MS - 1), 1000), 0);
        assert_eq!(c.expire(Time::from_millis(INCOMPLETE_MS), 1000), 1);
    }

    #[test]
    fn bounded_and_permanent_entries_stay() {
        let mut c = NeighbourCache::new(8, 1);
        assert_eq!(c.capacity(), 8);
        c.set_static(&[(ip("10.0.0.1"), MAC, 0)], Time::ZERO);
        for i in 0..100u32 {
            let a = IpAddr::V4((0x0a01_0000 + i).into());
            c.learn(a, 0, MAC, false, true, Time::from_millis(u64::from(i)));
        }
        assert_eq!(c.len(), 8);
        assert_eq!(
            c.get(ip("10.0.0.1"), 0).unwrap().state,
            NeighbourState::Permanent
        );
        assert_eq!(
            c.learn(
                ip("10.0.0.1"),
                0,
                MacAddr([2, 0, 0, 0, 0, 1]),
                true,
                true,
                Time::ZERO
            ),
            Learned::Ignored
        );
        // Not created without `create`.
        let mut c = NeighbourCache::new(8, 1);
        assert_eq!(
            c.learn(ip("10.0.0.2"), 0, MAC, false, false, Time::ZERO),
            Learned::Ignored
        );
        assert!(c.is_empty());
    }
}
