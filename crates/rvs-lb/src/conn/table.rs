//! The fixed-capacity connection table: a slab of entries, a hash index with
//! two keys per entry, and a timer wheel (see the [module docs of
//! `conn`](super) for the design).
//!
//! # Layout
//! - `slots`: the slab, one [`Conn`] or free-list link per slot, each with a
//!   generation counter bumped on every removal. Allocated once.
//! - `index`: an `Index` (`conn/index.rs`) of slab positions, each tagged with the side it
//!   was indexed under (`position << 1 | side`): fixed-capacity open
//!   addressing in 64-byte lines of 10 entries, sized at construction for
//!   the two keys of every slot at most 2/3 full, so it never allocates
//!   and, having no tombstones, never degrades with churn. A burst can
//!   hash first and prefetch index lines and entries ([`ConnTable::hash`],
//!   [`ConnTable::prefetch_index`], [`ConnTable::prefetch_entry`]) before
//!   looking up ([`ConnTable::lookup_hashed_mut`]).
//! - `wheel`: a [`TimerWheel`] over slab positions.
//!
//! Hashing is foldhash with a per-table seed chosen by the caller (random in
//! the daemon, fixed in tests), so that bucket collisions cannot be planned
//! from outside.

use core::hash::BuildHasher;
use core::time::Duration;

use foldhash::fast::FixedState;

use super::index::Index;
use super::timer::{ExpireReport, Fired, TimerWheel};
use super::{Time, duration_to_ms_u32};
use crate::flow::FlowKey;

/// "No slot": the end of the free list.
const NIL: u32 = u32::MAX;

/// Which key of a connection a packet matched, i.e. where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// It matched the client key: a packet from the client (to the VIP).
    FromClient,
    /// It matched the reply key: a packet from the real server.
    FromServer,
}

/// Bytes a [`ConnTable`] allocated, by part (see [`ConnTable::memory`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableMemory {
    /// The slab of entries.
    pub slab: usize,
    /// The hash index (buckets and control bytes).
    pub index: usize,
    /// The timer wheel's links and slot heads.
    pub wheel: usize,
}

impl TableMemory {
    /// All parts together.
    pub const fn total(&self) -> usize {
        self.slab + self.index + self.wheel
    }
}

/// A handle to one connection in one [`ConnTable`].
///
/// It names a slab slot and that slot's generation at insert time: once the
/// connection is removed, the handle no longer resolves, even when the slot
/// has been reused (until the generation wraps after 2^32 reuses of that one
/// slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    index: u32,
    generation: u32,
}

impl ConnId {
    /// The slab slot.
    pub const fn index(self) -> u32 {
        self.index
    }

    /// The slot's generation when this connection was inserted.
    pub const fn generation(self) -> u32 {
        self.generation
    }
}

/// Where a lookup will most likely end, found while prefetching (see
/// [`ConnTable::prefetch_entry_hinted`]); [`LookupHint::NONE`] for no
/// guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupHint(u32);

impl LookupHint {
    /// No guess: the lookup goes through the index.
    pub const NONE: LookupHint = LookupHint(NIL);
}

impl Default for LookupHint {
    fn default() -> Self {
        Self::NONE
    }
}

/// Why an insert was refused. The caller counts it as a drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InsertError {
    /// Every slot is taken.
    Full,
    /// The client or reply key already belongs to a connection (or the two
    /// keys are equal).
    Duplicate,
}

impl core::fmt::Display for InsertError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            InsertError::Full => "connection table full",
            InsertError::Duplicate => "connection key already in the table",
        })
    }
}

impl core::error::Error for InsertError {}

/// One connection: its two keys, its idle timer, and the caller's payload.
///
/// The keys are fixed for the entry's life (they are what it is indexed by).
/// The payload is public; the timer is read here and changed through
/// [`Conn::touch`] or [`ConnTable::set_timeout`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conn<T> {
    last_seen: Time,
    timeout_ms: u32,
    client: FlowKey,
    reply: FlowKey,
    /// What the caller keeps per connection (real server, forwarding
    /// details, state).
    pub data: T,
}

impl<T> Conn<T> {
    /// The key of packets from the client, as received.
    pub fn client_key(&self) -> &FlowKey {
        &self.client
    }

    /// The key of packets from the real server, as received.
    pub fn reply_key(&self) -> &FlowKey {
        &self.reply
    }

    /// The key for packets coming from `dir`.
    pub fn key(&self, dir: Direction) -> &FlowKey {
        match dir {
            Direction::FromClient => &self.client,
            Direction::FromServer => &self.reply,
        }
    }

    /// When the last packet was seen.
    pub fn last_seen(&self) -> Time {
        self.last_seen
    }

    /// The idle timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.timeout_ms))
    }

    /// When the connection expires if no packet comes: `last_seen + timeout`.
    pub fn deadline(&self) -> Time {
        self.last_seen.add_millis(u64::from(self.timeout_ms))
    }

    /// How long until it expires (the `expire` column of `ipvsadm -Lnc`).
    pub fn expires_in(&self, now: Time) -> Duration {
        self.deadline().saturating_since(now)
    }

    /// Records a packet at `now`. This is all the packet path does for the
    /// timer: no wheel work (lazy re-arm). Time never moves backwards here.
    pub fn touch(&mut self, now: Time) {
        self.last_seen = self.last_seen.max(now);
    }
}

#[derive(Debug)]
enum SlotState<T> {
    Free { next: u32 },
    Used(Conn<T>),
}

/// Aligned to cache lines, so that an entry of up to 128 bytes takes two
/// whole lines (what [`ConnTable::prefetch_entry`] fetches).
#[derive(Debug)]
#[repr(align(64))]
struct Slot<T> {
    generation: u32,
    state: SlotState<T>,
}

/// Everything but the wheel, so the wheel's expiry callback can borrow it.
#[derive(Debug)]
struct Store<T> {
    slots: Box<[Slot<T>]>,
    free_head: u32,
    len: u32,
    index: Index,
    hasher: FixedState,
}

/// An index value: a slab position and the side it was indexed under.
const fn encode(idx: u32, dir: Direction) -> u32 {
    (idx << 1)
        | match dir {
            Direction::FromClient => 0,
            Direction::FromServer => 1,
        }
}

const fn decode(v: u32) -> (u32, Direction) {
    let dir = if v & 1 == 0 {
        Direction::FromClient
    } else {
        Direction::FromServer
    };
    (v >> 1, dir)
}

fn used<T>(slots: &[Slot<T>], idx: u32) -> Option<&Conn<T>> {
    match &slots.get(idx as usize)?.state {
        SlotState::Used(c) => Some(c),
        SlotState::Free { .. } => None,
    }
}

/// The key an index value stands for.
fn key_at<T>(slots: &[Slot<T>], v: u32) -> Option<&FlowKey> {
    let (idx, dir) = decode(v);
    used(slots, idx).map(|c| c.key(dir))
}

impl<T> Store<T> {
    fn hash(&self, key: &FlowKey) -> u64 {
        self.hasher.hash_one(key)
    }

    fn find(&self, key: &FlowKey) -> Option<u32> {
        self.find_hashed(key, self.hash(key))
    }

    fn find_hashed(&self, key: &FlowKey, hash: u64) -> Option<u32> {
        let slots = &self.slots;
        self.index.find(hash, |v| key_at(slots, v) == Some(key))
    }

    fn id(&self, idx: u32) -> Option<ConnId> {
        let generation = self.slots.get(idx as usize)?.generation;
        Some(ConnId {
            index: idx,
            generation,
        })
    }

    fn get(&self, id: ConnId) -> Option<&Conn<T>> {
        let slot = self.slots.get(id.index as usize)?;
        match &slot.state {
            SlotState::Used(c) if slot.generation == id.generation => Some(c),
            _ => None,
        }
    }

    fn get_mut(&mut self, id: ConnId) -> Option<&mut Conn<T>> {
        let slot = self.slots.get_mut(id.index as usize)?;
        match &mut slot.state {
            SlotState::Used(c) if slot.generation == id.generation => Some(c),
            _ => None,
        }
    }

    /// Puts `conn` in a free slot and indexes both keys, unless a key is
    /// taken or no slot is free. Each key is hashed once.
    fn insert(&mut self, conn: Conn<T>) -> Result<u32, InsertError> {
        let hash_client = self.hash(&conn.client);
        let hash_reply = self.hash(&conn.reply);
        if conn.client == conn.reply
            || self.find_hashed(&conn.client, hash_client).is_some()
            || self.find_hashed(&conn.reply, hash_reply).is_some()
        {
            return Err(InsertError::Duplicate);
        }
        let idx = self.free_head;
        let slot = self.slots.get_mut(idx as usize).ok_or(InsertError::Full)?;
        let SlotState::Free { next } = slot.state else {
            return Err(InsertError::Full);
        };
        // The index holds two values per slot with room to spare, so these
        // cannot fail; should they, the slot stays free.
        let client = encode(idx, Direction::FromClient);
        if !self.index.insert(hash_client, client) {
            return Err(InsertError::Full);
        }
        if !self
            .index
            .insert(hash_reply, encode(idx, Direction::FromServer))
        {
            self.index.remove(hash_client, client);
            return Err(InsertError::Full);
        }
        let slot = self.slots.get_mut(idx as usize).ok_or(InsertError::Full)?;
        self.free_head = next;
        slot.state = SlotState::Used(conn);
        self.len = self.len.saturating_add(1);
        Ok(idx)
    }

    /// Removes the connection in slot `idx` (not touching any timer), frees
    /// the slot and bumps its generation.
    fn remove_at(&mut self, idx: u32) -> Option<(ConnId, Conn<T>)> {
        let free_head = self.free_head;
        let slot = self.slots.get_mut(idx as usize)?;
        if !matches!(slot.state, SlotState::Used(_)) {
            return None;
        }
        let id = ConnId {
            index: idx,
            generation: slot.generation,
        };
        let SlotState::Used(conn) =
            core::mem::replace(&mut slot.state, SlotState::Free { next: free_head })
        else {
            return None;
        };
        slot.generation = slot.generation.wrapping_add(1);
        self.free_head = idx;
        self.len = self.len.saturating_sub(1);
        for dir in [Direction::FromClient, Direction::FromServer] {
            self.index
                .remove(self.hasher.hash_one(conn.key(dir)), encode(idx, dir));
        }
        Some((id, conn))
    }
}

/// A fixed-capacity table of connections with payload `T`, indexed by client
/// and reply key, with idle expiry. See the module docs.
#[derive(Debug)]
pub struct ConnTable<T> {
    store: Store<T>,
    wheel: TimerWheel,
}

impl<T> ConnTable<T> {
    /// The largest capacity (index values keep a side bit beside the slot).
    pub const MAX_CAPACITY: u32 = u32::MAX >> 1;
    /// The default wheel tick: an entry expires at most this long after its
    /// deadline (given an expiry pass per tick).
    pub const DEFAULT_TICK: Duration = Duration::from_millis(100);
    /// The default number of wheel slots: with the default tick, one turn is
    /// 409.6 s, which covers every IPVS default timeout but ESTABLISHED's.
    pub const DEFAULT_SLOTS: u32 = 4096;

    /// A table for up to `capacity` connections (at most
    /// [`MAX_CAPACITY`](Self::MAX_CAPACITY)), hashing with `seed`, with the
    /// default timer wheel.
    ///
    /// Allocates everything the table will ever use; call it at setup.
    pub fn new(capacity: u32, seed: u64) -> Self {
        Self::with_wheel(capacity, seed, Self::DEFAULT_TICK, Self::DEFAULT_SLOTS)
    }

    /// As [`new`](Self::new), with a timer wheel of `slots` ticks of `tick`
    /// (see [`TimerWheel::new`]).
    pub fn with_wheel(capacity: u32, seed: u64, tick: Duration, wheel_slots: u32) -> Self {
        let capacity = capacity.min(Self::MAX_CAPACITY);
        let slots: Box<[Slot<T>]> = (0..capacity)
            .map(|i| Slot {
                generation: 0,
                state: SlotState::Free {
                    next: if i + 1 < capacity { i + 1 } else { NIL },
                },
            })
            .collect();
        ConnTable {
            store: Store {
                slots,
                free_head: if capacity == 0 { NIL } else { 0 },
                len: 0,
                index: Index::new((capacity as usize).saturating_mul(2)),
                hasher: FixedState::with_seed(seed),
            },
            wheel: TimerWheel::new(capacity, tick, wheel_slots),
        }
    }

    /// The number of connections.
    pub fn len(&self) -> usize {
        self.store.len as usize
    }

    /// Whether there are no connections.
    pub fn is_empty(&self) -> bool {
        self.store.len == 0
    }

    /// The most connections the table holds.
    pub fn capacity(&self) -> usize {
        self.store.slots.len()
    }

    /// Bytes of one slab slot (a connection with its keys, timer fields,
    /// payload and generation).
    pub const fn slot_bytes() -> usize {
        core::mem::size_of::<Slot<T>>()
    }

    /// What the table allocated, by part. Divided by
    /// [`capacity`](Self::capacity) it is the memory cost of a connection.
    pub fn memory(&self) -> TableMemory {
        TableMemory {
            slab: core::mem::size_of_val::<[Slot<T>]>(&self.store.slots),
            index: self.store.index.memory_bytes(),
            wheel: self.wheel.memory_bytes(),
        }
    }

    /// Whether an insert would fail with [`InsertError::Full`].
    pub fn is_full(&self) -> bool {
        self.store.free_head == NIL
    }

    /// The timer wheel (for its tick and horizon).
    pub fn wheel(&self) -> &TimerWheel {
        &self.wheel
    }

    /// Adds a connection seen at `now`, indexed under `client` (client
    /// packets as received) and `reply` (real-server packets as received),
    /// idle-expiring after `timeout`.
    ///
    /// Refused if either key is already in the table or the two are equal
    /// ([`InsertError::Duplicate`], checked first), or if every slot is taken
    /// ([`InsertError::Full`]). Never allocates.
    pub fn insert(
        &mut self,
        client: FlowKey,
        reply: FlowKey,
        data: T,
        now: Time,
        timeout: Duration,
    ) -> Result<ConnId, InsertError> {
        let conn = Conn {
            last_seen: now,
            timeout_ms: duration_to_ms_u32(timeout),
            client,
            reply,
            data,
        };
        let deadline = conn.deadline();
        let idx = self.store.insert(conn)?;
        self.wheel.arm(idx, deadline, now);
        self.store.id(idx).ok_or(InsertError::Full)
    }

    /// The connection a packet with 5-tuple `key` belongs to, and which side
    /// sent it.
    pub fn lookup(&self, key: &FlowKey) -> Option<(ConnId, Direction)> {
        let (idx, dir) = decode(self.store.find(key)?);
        Some((self.store.id(idx)?, dir))
    }

    /// The hash of `key` in this table, for [`prefetch_index`],
    /// [`prefetch_entry`] and [`lookup_hashed_mut`] (a burst hashes its
    /// keys once, first).
    ///
    /// [`prefetch_index`]: Self::prefetch_index
    /// [`prefetch_entry`]: Self::prefetch_entry
    /// [`lookup_hashed_mut`]: Self::lookup_hashed_mut
    #[inline]
    pub fn hash(&self, key: &FlowKey) -> u64 {
        self.store.hash(key)
    }

    /// Starts fetching the index line a lookup of `hash` reads first. A
    /// hint only: nothing changes.
    #[inline]
    pub fn prefetch_index(&self, hash: u64) {
        self.store.index.prefetch(hash);
    }

    /// Starts fetching the entry a lookup of `hash` most likely ends at
    /// (the first one of its home line with its tag; best called once that
    /// line is in the cache, after [`prefetch_index`](Self::prefetch_index)).
    /// A hint only: nothing changes.
    #[inline]
    pub fn prefetch_entry(&self, hash: u64) {
        let Some(v) = self.store.index.candidate(hash) else {
            return;
        };
        let (idx, _) = decode(v);
        let slots = &self.store.slots;
        if let Some(slot) = slots.get(idx as usize) {
            let first: *const Slot<T> = slot;
            let first = first.cast::<u8>();
            super::index::prefetch(first);
            if core::mem::size_of::<Slot<T>>() > 64 {
                // Its second cache line (`Slot` is line-aligned).
                super::index::prefetch(first.wrapping_add(64));
            }
        }
    }

    /// As [`prefetch_entry`](Self::prefetch_entry), also returning what it
    /// found, for [`lookup_hinted_mut`](Self::lookup_hinted_mut).
    #[inline]
    pub fn prefetch_entry_hinted(&self, hash: u64) -> LookupHint {
        let Some(v) = self.store.index.candidate(hash) else {
            return LookupHint(NIL);
        };
        let (idx, _) = decode(v);
        if let Some(slot) = self.store.slots.get(idx as usize) {
            let first: *const Slot<T> = slot;
            let first = first.cast::<u8>();
            super::index::prefetch(first);
            if core::mem::size_of::<Slot<T>>() > 64 {
                super::index::prefetch(first.wrapping_add(64));
            }
        }
        LookupHint(v)
    }

    /// As [`lookup_hashed_mut`](Self::lookup_hashed_mut), trying first the
    /// entry `hint` names (from
    /// [`prefetch_entry_hinted`](Self::prefetch_entry_hinted) for the same
    /// hash). The hint may be stale (the table may have changed since): it
    /// is used only if that entry holds `key` now, and as keys are unique in
    /// the table, that is then the answer the index would give.
    #[inline]
    pub fn lookup_hinted_mut(
        &mut self,
        key: &FlowKey,
        hash: u64,
        hint: LookupHint,
    ) -> Option<(ConnId, Direction, &mut Conn<T>)> {
        if hint.0 != NIL && key_at(&self.store.slots, hint.0) == Some(key) {
            let (idx, dir) = decode(hint.0);
            let id = self.store.id(idx)?;
            let conn = self.store.get_mut(id)?;
            return Some((id, dir, conn));
        }
        self.lookup_hashed_mut(key, hash)
    }

    /// As [`lookup_mut`](Self::lookup_mut) for a key whose
    /// [`hash`](Self::hash) is known.
    #[inline]
    pub fn lookup_hashed_mut(
        &mut self,
        key: &FlowKey,
        hash: u64,
    ) -> Option<(ConnId, Direction, &mut Conn<T>)> {
        let (idx, dir) = decode(self.store.find_hashed(key, hash)?);
        let id = self.store.id(idx)?;
        let conn = self.store.get_mut(id)?;
        Some((id, dir, conn))
    }

    /// As [`lookup`](Self::lookup), with the entry itself, so the packet path
    /// hashes once.
    pub fn lookup_mut(&mut self, key: &FlowKey) -> Option<(ConnId, Direction, &mut Conn<T>)> {
        let (id, dir) = self.lookup(key)?;
        let conn = self.store.get_mut(id)?;
        Some((id, dir, conn))
    }

    /// The connection `id`, if it is still in the table.
    pub fn get(&self, id: ConnId) -> Option<&Conn<T>> {
        self.store.get(id)
    }

    /// The connection `id`, mutably, if it is still in the table.
    pub fn get_mut(&mut self, id: ConnId) -> Option<&mut Conn<T>> {
        self.store.get_mut(id)
    }

    /// Records a packet on `id` at `now` (see [`Conn::touch`]). Returns false
    /// if `id` is stale.
    pub fn touch(&mut self, id: ConnId, now: Time) -> bool {
        self.store.get_mut(id).map(|c| c.touch(now)).is_some()
    }

    /// Sets the idle timeout of `id` (on a protocol state change), counted
    /// from its last packet. A longer timeout costs nothing now; a shorter
    /// one moves the timer earlier, O(1). Returns false if `id` is stale.
    pub fn set_timeout(&mut self, id: ConnId, timeout: Duration) -> bool {
        let Some(conn) = self.store.get_mut(id) else {
            return false;
        };
        conn.timeout_ms = duration_to_ms_u32(timeout);
        let deadline = conn.deadline();
        self.wheel.arm_no_later_than(id.index, deadline)
    }

    /// Removes `id`, freeing both keys and its slot; returns the entry, or
    /// `None` if `id` is stale.
    pub fn remove(&mut self, id: ConnId) -> Option<Conn<T>> {
        self.store.get(id)?;
        self.wheel.cancel(id.index);
        self.store.remove_at(id.index).map(|(_, c)| c)
    }

    /// Every connection, in slab order (for listings such as `ipvsadm -Lnc`).
    /// Walks the whole slab: a control-plane operation.
    pub fn iter(&self) -> impl Iterator<Item = (ConnId, &Conn<T>)> {
        self.store
            .slots
            .iter()
            .zip(0u32..)
            .filter_map(|(slot, index)| match &slot.state {
                SlotState::Used(c) => Some((
                    ConnId {
                        index,
                        generation: slot.generation,
                    },
                    c,
                )),
                SlotState::Free { .. } => None,
            })
    }

    /// Visits every connection's payload mutably (keys and timers stay as
    /// they are): for re-pointing connections at a new configuration.
    /// Walks the whole slab: a control-plane operation.
    pub fn for_each_data_mut(&mut self, mut f: impl FnMut(ConnId, &mut T)) {
        for (slot, index) in self.store.slots.iter_mut().zip(0u32..) {
            if let SlotState::Used(c) = &mut slot.state {
                let id = ConnId {
                    index,
                    generation: slot.generation,
                };
                f(id, &mut c.data);
            }
        }
    }

    /// Removes every connection for which `pred` holds, handing each to
    /// `on_removed` (to update the real server's counters); returns how many.
    /// For "remove this real server and expire its connections". Walks the
    /// whole slab; see [`remove_where_in`](Self::remove_where_in) to spread
    /// the walk over several calls.
    pub fn remove_where(
        &mut self,
        pred: impl FnMut(ConnId, &Conn<T>) -> bool,
        mut on_removed: impl FnMut(ConnId, Conn<T>),
    ) -> usize {
        let mut removed = 0;
        let all = u32::try_from(self.capacity()).unwrap_or(u32::MAX);
        self.remove_where_in(0, all, pred, |id, c| {
            removed += 1;
            on_removed(id, c)
        });
        removed
    }

    /// As [`remove_where`](Self::remove_where), over at most `max_slots`
    /// slab slots starting at `start`. Returns where to continue, or `None`
    /// when the end of the slab was reached.
    pub fn remove_where_in(
        &mut self,
        start: u32,
        max_slots: u32,
        mut pred: impl FnMut(ConnId, &Conn<T>) -> bool,
        mut on_removed: impl FnMut(ConnId, Conn<T>),
    ) -> Option<u32> {
        let cap = u32::try_from(self.capacity()).unwrap_or(u32::MAX);
        let end = start.saturating_add(max_slots).min(cap);
        for idx in start..end {
            let hit = match self.store.id(idx) {
                Some(id) => self.store.get(id).is_some_and(|c| pred(id, c)),
                None => false,
            };
            if hit {
                self.wheel.cancel(idx);
                if let Some((id, conn)) = self.store.remove_at(idx) {
                    on_removed(id, conn);
                }
            }
        }
        (end < cap).then_some(end)
    }

    /// Expires idle connections: runs the timer wheel up to `now`, removing
    /// each connection whose deadline has passed and handing it to
    /// `on_expired`; connections touched since they were armed are re-armed
    /// at their true deadline instead.
    ///
    /// At most `budget` connections are examined (and at most one wheel turn
    /// walked) per call; if the report says it has not caught up, call again.
    pub fn expire(
        &mut self,
        now: Time,
        budget: usize,
        mut on_expired: impl FnMut(ConnId, Conn<T>),
    ) -> ExpireReport {
        let store = &mut self.store;
        self.wheel.expire(now, budget, |idx| {
            let Some(deadline) = used(&store.slots, idx).map(Conn::deadline) else {
                // Not a live entry (cannot happen: removal cancels): drop it.
                return Fired::Expired;
            };
            if deadline > now {
                return Fired::Rearm(deadline);
            }
            if let Some((id, conn)) = store.remove_at(idx) {
                on_expired(id, conn);
            }
            Fired::Expired
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    const TCP: u8 = 6;

    fn key(a: u8, port: u16) -> FlowKey {
        FlowKey::v4(
            TCP,
            Ipv4Addr::new(10, 0, 0, a),
            port,
            Ipv4Addr::new(192, 0, 2, 1),
            80,
        )
    }

    /// Client C:port → VIP, and the FullNAT reply R:80 → L:lport.
    fn fullnat(c: u8, port: u16, lport: u16) -> (FlowKey, FlowKey) {
        let client = key(c, port);
        let reply = FlowKey::v4(
            TCP,
            Ipv4Addr::new(10, 1, 0, 2),
            80,
            Ipv4Addr::new(10, 1, 0, 1),
            lport,
        );
        (client, reply)
    }

    fn secs(s: u64) -> Time {
        Time::from_secs(s)
    }

    /// A hint taken before the table changed is checked, not trusted: it
    /// never yields an entry that does not hold the key, and a key is still
    /// found when the hint points elsewhere.
    #[test]
    fn stale_hints_are_checked() {
        let mut t = ConnTable::new(4, 7);
        let (ca, ra) = fullnat(1, 1000, 5000);
        let (cb, rb) = fullnat(2, 2000, 6000);
        let a = t
            .insert(ca, ra, 'a', Time::ZERO, Duration::from_secs(9))
            .unwrap();
        let ha = t.hash(&ca);
        let hint = t.prefetch_entry_hinted(ha);
        assert_ne!(hint, LookupHint::NONE);
        let got = t
            .lookup_hinted_mut(&ca, ha, hint)
            .map(|(id, d, c)| (id, d, c.data));
        assert_eq!(got, Some((a, Direction::FromClient, 'a')));
        // A's slot is reused by B.
        t.remove(a).unwrap();
        let b = t
            .insert(cb, rb, 'b', Time::ZERO, Duration::from_secs(9))
            .unwrap();
        assert_eq!(b.index(), a.index());
        assert!(t.lookup_hinted_mut(&ca, ha, hint).is_none());
        let hb = t.hash(&rb);
        let got = t
            .lookup_hinted_mut(&rb, hb, hint)
            .map(|(id, d, c)| (id, d, c.data));
        assert_eq!(got, Some((b, Direction::FromServer, 'b')));
        let got = t
            .lookup_hinted_mut(&cb, t.hash(&cb), LookupHint::NONE)
            .map(|(_, d, _)| d);
        assert_eq!(got, Some(Direction::FromClient));
    }

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn lookup_both_directions() {
        let mut t = ConnTable::new(8, 1);
        let (c, r) = fullnat(1, 40000, 5001);
        let id = t.insert(c, r, "a", secs(0), MIN).unwrap();
        assert_eq!(t.lookup(&c), Some((id, Direction::FromClient)));
        assert_eq!(t.lookup(&r), Some((id, Direction::FromServer)));
        // The reverse of either key is a different flow.
        assert_eq!(t.lookup(&c.reversed()), None);
        assert_eq!(t.lookup(&r.reversed()), None);
        let (id2, dir, conn) = t.lookup_mut(&r).unwrap();
        assert_eq!((id2, dir), (id, Direction::FromServer));
        conn.data = "b";
        assert_eq!(t.get(id).unwrap().data, "b");
        assert_eq!(t.get(id).unwrap().client_key(), &c);
        assert_eq!(t.get(id).unwrap().reply_key(), &r);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn full_table_refuses() {
        let mut t = ConnTable::new(3, 1);
        for i in 0..3 {
            let (c, r) = fullnat(1, 1000 + i, 2000 + i);
            t.insert(c, r, i, secs(0), MIN).unwrap();
        }
        assert!(t.is_full());
        let (c, r) = fullnat(1, 1003, 2003);
        assert_eq!(t.insert(c, r, 3, secs(0), MIN), Err(InsertError::Full));
        assert_eq!(t.len(), 3);
        assert_eq!(t.lookup(&c), None);
        // A zero-capacity table refuses everything.
        let mut z = ConnTable::new(0, 1);
        assert_eq!(z.insert(c, r, 0, secs(0), MIN), Err(InsertError::Full));
    }

    #[test]
    fn duplicate_keys_refused() {
        let mut t = ConnTable::new(8, 1);
        let (c, r) = fullnat(1, 1000, 2000);
        t.insert(c, r, 0, secs(0), MIN).unwrap();
        let (c2, r2) = fullnat(2, 1000, 2001);
        // Same client key, same reply key, either key under the other side.
        for (a, b) in [(c, r2), (c2, r), (r, c2), (c2, c), (c2, c2)] {
            assert_eq!(t.insert(a, b, 1, secs(0), MIN), Err(InsertError::Duplicate));
        }
        assert_eq!(t.len(), 1);
        assert!(t.insert(c2, r2, 1, secs(0), MIN).is_ok());
    }

    #[test]
    fn remove_frees_keys_and_slot_with_new_generation() {
        let mut t = ConnTable::new(1, 1);
        let (c, r) = fullnat(1, 1000, 2000);
        let id = t.insert(c, r, 7, secs(0), MIN).unwrap();
        let gone = t.remove(id).unwrap();
        assert_eq!((gone.data, *gone.client_key()), (7, c));
        assert!(t.is_empty());
        assert_eq!(t.lookup(&c), None);
        assert_eq!(t.lookup(&r), None);
        assert_eq!(t.remove(id), None, "double remove");
        assert!(!t.wheel().is_armed(id.index()));
        // The one slot is reused, under a new generation.
        let (c2, r2) = fullnat(2, 1000, 2000);
        let id2 = t.insert(c2, r2, 8, secs(0), MIN).unwrap();
        assert_eq!(id2.index(), id.index());
        assert_ne!(id2.generation(), id.generation());
        assert!(t.get(id).is_none());
        assert!(t.get_mut(id).is_none());
        assert!(!t.touch(id, secs(1)));
        assert!(!t.set_timeout(id, MIN));
        assert_eq!(t.remove(id), None);
        assert_eq!(t.get(id2).unwrap().data, 8);
        // The old keys can come back.
        t.remove(id2).unwrap();
        assert!(t.insert(c, r, 9, secs(0), MIN).is_ok());
    }

    #[test]
    fn index_never_grows_under_churn() {
        let mut t = ConnTable::new(64, 3);
        let before = t.store.index.capacity();
        let mut ids = Vec::new();
        for round in 0..200u16 {
            for i in 0..64u16 {
                let (c, r) = fullnat(3, round.wrapping_mul(64).wrapping_add(i), i);
                let r = FlowKey {
                    src_port: round,
                    ..r
                };
                ids.push(t.insert(c, r, (), secs(0), MIN).unwrap());
            }
            for id in ids.drain(..) {
                t.remove(id).unwrap();
            }
        }
        assert_eq!(t.store.index.capacity(), before);
    }

    #[test]
    fn expiry_and_lazy_touch() {
        let mut t = ConnTable::with_wheel(8, 1, Duration::from_secs(1), 16);
        let (c1, r1) = fullnat(1, 1, 1);
        let (c2, r2) = fullnat(2, 2, 2);
        let a = t
            .insert(c1, r1, 'a', secs(0), Duration::from_secs(10))
            .unwrap();
        let b = t
            .insert(c2, r2, 'b', secs(0), Duration::from_secs(10))
            .unwrap();
        assert!(t.touch(b, secs(8)));
        // A late-processed packet stamped earlier does not move time back.
        assert!(t.touch(b, secs(3)));
        assert_eq!(t.get(b).unwrap().last_seen(), secs(8));
        let mut out = Vec::new();
        t.expire(secs(9), usize::MAX, |id, c| out.push((id, c.data)));
        assert!(out.is_empty());
        t.expire(secs(10), usize::MAX, |id, c| out.push((id, c.data)));
        assert_eq!(out, vec![(a, 'a')]);
        assert_eq!(t.lookup(&c1), None);
        assert_eq!(
            t.get(b).unwrap().expires_in(secs(10)),
            Duration::from_secs(8)
        );
        t.expire(secs(17), usize::MAX, |id, c| out.push((id, c.data)));
        assert_eq!(out.len(), 1);
        t.expire(secs(18), usize::MAX, |id, c| out.push((id, c.data)));
        assert_eq!(out, vec![(a, 'a'), (b, 'b')]);
        assert!(t.is_empty() && t.wheel().is_empty());
    }

    #[test]
    fn shorter_timeout_expires_on_time() {
        // ESTABLISHED (15 min) → CLOSE (10 s): must not wait out the 15 min.
        let mut t = ConnTable::with_wheel(2, 1, Duration::from_secs(1), 64);
        let (c, r) = fullnat(1, 1, 1);
        let id = t
            .insert(c, r, (), secs(0), Duration::from_secs(900))
            .unwrap();
        t.touch(id, secs(5));
        assert!(t.set_timeout(id, Duration::from_secs(10)));
        let mut n = 0;
        t.expire(secs(14), usize::MAX, |_, _| n += 1);
        assert_eq!(n, 0);
        t.expire(secs(15), usize::MAX, |_, _| n += 1);
        assert_eq!(n, 1);
    }

    #[test]
    fn remove_where_expires_a_real_servers_connections() {
        let mut t = ConnTable::new(16, 1);
        for i in 0..10u16 {
            let (c, r) = fullnat(1, i, i);
            t.insert(c, r, i % 3, secs(0), MIN).unwrap();
        }
        let mut gone = Vec::new();
        let n = t.remove_where(|_, c| c.data == 1, |_, c| gone.push(c.data));
        assert_eq!(n, 3);
        assert_eq!(gone, vec![1, 1, 1]);
        assert_eq!(t.len(), 7);
        assert!(t.iter().all(|(_, c)| c.data != 1));
        assert_eq!(t.wheel().len(), 7);
        // Incrementally, 5 slots at a time.
        let mut cursor = Some(0);
        let mut calls = 0;
        while let Some(start) = cursor {
            cursor = t.remove_where_in(start, 5, |_, c| c.data == 2, |_, _| {});
            calls += 1;
        }
        assert_eq!(calls, 4);
        assert_eq!(t.len(), 4);
        assert_eq!(t.iter().count(), 4);
    }

    #[test]
    fn entries_are_small() {
        // Two 38-byte keys and the timer; the payload comes on top.
        assert!(size_of::<Conn<()>>() <= 96, "{}", size_of::<Conn<()>>());
        // With the worker's payload and the slot's generation, exactly two
        // cache lines (slots are line-aligned).
        let slot = size_of::<Slot<crate::fwd::ConnData>>();
        assert_eq!(slot, 128);
        assert_eq!(ConnTable::<crate::fwd::ConnData>::slot_bytes(), slot);
    }

    mod model {
        use super::*;
        use proptest::prelude::*;
        use std::collections::HashMap;

        const CAP: u32 = 4;
        const KEYS: u16 = 6;
        const TICK_MS: u64 = 100;

        #[derive(Debug, Clone)]
        enum Op {
            Insert { c: u16, r: u16, timeout_ms: u64 },
            Lookup { k: u16 },
            Remove { which: usize },
            Touch { which: usize },
            SetTimeout { which: usize, timeout_ms: u64 },
            Expire { advance_ms: u64, budget: usize },
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                3 => (0..KEYS, 0..KEYS, 0u64..5000)
                    .prop_map(|(c, r, timeout_ms)| Op::Insert { c, r, timeout_ms }),
                2 => (0..KEYS).prop_map(|k| Op::Lookup { k }),
                1 => any::<usize>().prop_map(|which| Op::Remove { which }),
                1 => any::<usize>().prop_map(|which| Op::Touch { which }),
                1 => (any::<usize>(), 0u64..5000)
                    .prop_map(|(which, timeout_ms)| Op::SetTimeout { which, timeout_ms }),
                2 => (0u64..3000, 0usize..4)
                    .prop_map(|(advance_ms, budget)| Op::Expire { advance_ms, budget }),
            ]
        }

        fn k(i: u16) -> FlowKey {
            key(1, 1000 + i)
        }

        #[derive(Debug, Clone)]
        struct M {
            client: FlowKey,
            reply: FlowKey,
            data: u32,
            last_seen: u64,
            timeout_ms: u64,
            /// When the timer was last set (insert or `set_timeout`).
            armed_at: u64,
        }

        impl M {
            fn deadline(&self) -> u64 {
                self.last_seen + self.timeout_ms
            }

            /// By when a caught-up expiry pass must have removed it: the end
            /// of the tick holding its deadline, or, if the deadline was
            /// already past when the timer was set, of the tick it was set
            /// in (expiry cannot act in the past).
            fn latest(&self) -> u64 {
                (self.deadline().max(self.armed_at) / TICK_MS + 1) * TICK_MS
            }
        }

        fn check_same(t: &ConnTable<u32>, model: &HashMap<ConnId, M>) {
            assert_eq!(t.len(), model.len());
            let mut listed: Vec<_> = t.iter().map(|(id, c)| (id, c.data)).collect();
            let mut want: Vec<_> = model.iter().map(|(id, m)| (*id, m.data)).collect();
            listed.sort();
            want.sort();
            assert_eq!(listed, want);
            assert_eq!(t.wheel().len() as usize, model.len());
            // Exactly two index values per entry: none leaked by removal.
            assert_eq!(t.store.index.len(), 2 * model.len());
            for (id, m) in model {
                let c = t.get(*id).unwrap();
                assert_eq!((c.client_key(), c.reply_key()), (&m.client, &m.reply));
                assert_eq!(c.deadline().as_millis(), m.deadline());
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]
            #[test]
            fn table_matches_hashmap_model(ops in proptest::collection::vec(op(), 1..80)) {
                let mut t: ConnTable<u32> =
                    ConnTable::with_wheel(CAP, 7, Duration::from_millis(TICK_MS), 8);
                let mut model: HashMap<ConnId, M> = HashMap::new();
                let mut issued: Vec<ConnId> = Vec::new();
                let mut now = 0u64;
                let mut next_data = 0u32;
                for op in ops {
                    match op {
                        Op::Insert { c, r, timeout_ms } => {
                            let (c, r) = (k(c), k(r));
                            let taken = |f: &FlowKey| {
                                model.values().any(|m| &m.client == f || &m.reply == f)
                            };
                            let want = if c == r || taken(&c) || taken(&r) {
                                Err(InsertError::Duplicate)
                            } else if model.len() == CAP as usize {
                                Err(InsertError::Full)
                            } else {
                                Ok(())
                            };
                            next_data += 1;
                            let got = t.insert(
                                c, r, next_data, Time::from_millis(now),
                                Duration::from_millis(timeout_ms),
                            );
                            prop_assert_eq!(got.map(|_| ()), want);
                            if let Ok(id) = got {
                                prop_assert!(!issued.contains(&id), "id reused: {:?}", id);
                                issued.push(id);
                                model.insert(id, M {
                                    client: c, reply: r, data: next_data,
                                    last_seen: now, timeout_ms, armed_at: now,
                                });
                            }
                        }
                        Op::Lookup { k: i } => {
                            let f = k(i);
                            let want = model.iter().find_map(|(id, m)| {
                                if m.client == f {
                                    Some((*id, Direction::FromClient))
                                } else if m.reply == f {
                                    Some((*id, Direction::FromServer))
                                } else {
                                    None
                                }
                            });
                            prop_assert_eq!(t.lookup(&f), want);
                        }
                        Op::Remove { which } => {
                            if issued.is_empty() { continue; }
                            let id = issued[which % issued.len()];
                            let got = t.remove(id).map(|c| c.data);
                            prop_assert_eq!(got, model.remove(&id).map(|m| m.data));
                        }
                        Op::Touch { which } => {
                            if issued.is_empty() { continue; }
                            let id = issued[which % issued.len()];
                            let live = model.get_mut(&id);
                            prop_assert_eq!(t.touch(id, Time::from_millis(now)), live.is_some());
                            if let Some(m) = live { m.last_seen = now; }
                        }
                        Op::SetTimeout { which, timeout_ms } => {
                            if issued.is_empty() { continue; }
                            let id = issued[which % issued.len()];
                            let live = model.get_mut(&id);
                            prop_assert_eq!(
                                t.set_timeout(id, Duration::from_millis(timeout_ms)),
                                live.is_some()
                            );
                            if let Some(m) = live {
                                m.timeout_ms = timeout_ms;
                                m.armed_at = now;
                            }
                        }
                        Op::Expire { advance_ms, budget } => {
                            now += advance_ms;
                            let mut got = Vec::new();
                            let report = t.expire(Time::from_millis(now), budget, |id, c| {
                                got.push((id, c.data));
                            });
                            prop_assert!(report.examined <= budget);
                            prop_assert_eq!(report.expired, got.len());
                            for (id, data) in got {
                                // Never before its deadline.
                                let m = model.remove(&id);
                                prop_assert!(m.is_some(), "expired unknown {:?}", id);
                                let m = m.unwrap();
                                prop_assert_eq!(m.data, data);
                                prop_assert!(m.deadline() <= now, "early: {:?} at {}", m, now);
                            }
                            if report.caught_up {
                                // Nothing left that is more than a tick late.
                                for m in model.values() {
                                    prop_assert!(m.latest() > now, "late: {:?} at {}", m, now);
                                }
                            }
                        }
                    }
                    check_same(&t, &model);
                }
                // Drain: far in the future everything goes, a budget at a time.
                let end = Time::from_millis(now + 10_000_000);
                let mut left = model.len();
                for _ in 0..1000 {
                    let r = t.expire(end, 3, |id, _| { model.remove(&id); });
                    left -= r.expired;
                    if r.caught_up { break; }
                }
                prop_assert_eq!(left, 0);
                prop_assert!(model.is_empty() && t.is_empty() && t.wheel().is_empty());
            }
        }
    }
}
