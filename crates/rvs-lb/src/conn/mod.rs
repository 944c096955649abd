//! The per-worker connection table: who is talking to which real server, in
//! which protocol state, until when.
//!
//! One [`ConnTable`] lives in each worker and is owned by it outright: no
//! locks, no atomics, no sharing (ARCHITECTURE.md §3, §4). Time is whatever
//! monotonic [`Time`] the caller passes in; nothing in here reads a clock.
//!
//! # Two keys per connection
//! A balanced connection is seen in two shapes. The client's packets arrive as
//! client→VIP; the real server's replies arrive as something else that the
//! forwarding mode decides: R→C in NAT, R→L (to the local address and port we
//! chose) in FullNAT, nothing at all in DR and TUN. Each entry is therefore
//! indexed under two [`FlowKey`](crate::flow::FlowKey)s — the *client key* (as
//! received from the client) and the *reply key* (as the reply will be
//! received) — and one hash lookup with the packet's own 5-tuple finds the
//! entry from either side and says which side matched ([`Direction`]). The
//! alternative, a second table for replies or rebuilding a canonical key per
//! packet, costs a second probe or mode-specific logic on the hot path; two
//! index slots per entry cost 8 bytes of index instead.
//!
//! Entries live in a slab preallocated at construction; the hash index holds
//! only slab positions (`u32`), so the index stays dense and cache friendly
//! while the entries stay put. The table never grows: when it is full, an
//! insert fails and the caller counts a drop, as a kernel-bypass balancer
//! under a SYN flood must (unbounded growth would be the attacker's win).
//! Slots are reused, so [`ConnId`] carries a generation: an id kept across a
//! removal cannot reach the entry that later took its slot.
//!
//! # Lazy timers
//! Every connection has an idle timeout (from its protocol state, see
//! [`tcp_state`]) counted from the last packet. A timer restarted on every
//! packet, as IPVS does with `mod_timer`, is a linked-list unlink and relink per
//! packet. Here the packet path only writes `last_seen` (and, on a state
//! change, the timeout) into the entry. Each entry sits in one slot of a
//! per-worker [`TimerWheel`] at a time no later than its true deadline; when
//! that slot fires, the entry is checked: if it really is idle past its
//! timeout it is removed and reported, otherwise it is put back at its true
//! deadline. A busy connection thus costs one timer visit per timeout period,
//! not one per packet. The only time the wheel must move an entry eagerly is
//! when its timeout *shrinks* (ESTABLISHED 15 min → FIN_WAIT 2 min), which
//! happens a few times per connection, and is O(1).
//!
//! Expiry work is bounded per call ([`ConnTable::expire`] takes a budget) so
//! that a burst of expiring connections cannot stall a worker's packet loop;
//! what is left is picked up on the next call.

use core::time::Duration;

mod index;
pub mod table;
pub mod tcp_state;
pub mod timer;

pub use table::{Conn, ConnId, ConnTable, Direction, InsertError, LookupHint, TableMemory};
pub use tcp_state::{ConnState, Side, TcpFlags, TcpState, Timeouts};
pub use timer::{ExpireReport, Fired, TimerWheel};

/// A point on the caller's monotonic clock, in milliseconds since an arbitrary
/// origin (the daemon's start, or zero in tests).
///
/// Milliseconds are fine enough for connection timeouts (the shortest IPVS
/// default is 2 s) and a `u64` of them never wraps in practice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(u64);

impl Time {
    /// The origin of the clock.
    pub const ZERO: Time = Time(0);

    /// A time `ms` milliseconds after the origin.
    pub const fn from_millis(ms: u64) -> Self {
        Time(ms)
    }

    /// A time `s` seconds after the origin (saturating).
    pub const fn from_secs(s: u64) -> Self {
        Time(s.saturating_mul(1000))
    }

    /// Milliseconds since the origin.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// This time plus `ms` milliseconds, saturating at the end of time.
    pub const fn add_millis(self, ms: u64) -> Self {
        Time(self.0.saturating_add(ms))
    }

    /// This time plus `d`, saturating at the end of time.
    pub fn saturating_add(self, d: Duration) -> Self {
        self.add_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// How long after `earlier` this is (zero if it is not after).
    pub const fn saturating_since(self, earlier: Time) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

/// A duration as whole milliseconds in a `u32` (saturating at about 49 days),
/// the form a timeout is stored in inside an entry.
pub(crate) fn duration_to_ms_u32(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}
