//! A lookup table of server indices addressed by a flow hash, shared by the
//! `sh`, `dh` and `mh` schedulers (they differ in how the table is filled and
//! how large it is, not in how it is read).
//!
//! Lookup is one hash and one load. When the server in the slot is not
//! usable, the `*-fallback` policy (IPVS `sh-fallback`/`mh-fallback`) looks
//! elsewhere, in an order that depends only on the flow and the table, so
//! every worker and every node sends the flow to the same replacement:
//!
//! 1. rehash the flow key with a counter appended, up to [`REHASHES`] times
//!    (IPVS rehashes with an offset in the same way); this spreads the flows
//!    of a failed server over the remaining ones in proportion to their
//!    slots;
//! 2. if that found nothing and some usable server owns slots, walk the
//!    table forward from the last probed slot (bounded by the table size);
//! 3. otherwise (the usable servers own no slots, which only happens while a
//!    new snapshot for changed weights is on its way) the first usable server
//!    in list order.
//!
//! Without the fallback flag an unusable server in the slot means no server,
//! as in IPVS.

use super::ServerFacts;
use super::hash::{FLOW_KEY, KeyBytes};

/// How many times the fallback rehashes before walking the table.
pub(crate) const REHASHES: u32 = 8;

/// A slot that no server owns (only in tables with no weighted server).
pub(crate) const EMPTY: u32 = u32::MAX;

/// Server indices, one per slot, and how many slots each server owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SlotTable {
    slots: Vec<u32>,
    counts: Vec<u32>,
}

impl SlotTable {
    /// A table from its slots; `n` is the number of servers in the list.
    /// Slots naming a server outside the list are cleared.
    pub(crate) fn new(mut slots: Vec<u32>, n: usize) -> Self {
        let mut counts = vec![0u32; n];
        for s in &mut slots {
            match counts.get_mut(*s as usize) {
                Some(c) => *c = c.saturating_add(1),
                None => *s = EMPTY,
            }
        }
        SlotTable { slots, counts }
    }

    /// The slots (server index per slot, [`EMPTY`] for none).
    pub(crate) fn slots(&self) -> &[u32] {
        &self.slots
    }

    /// How many slots server `i` owns.
    pub(crate) fn count(&self, i: usize) -> u32 {
        self.counts.get(i).copied().unwrap_or(0)
    }

    fn usable_at(&self, slot: u64, facts: &[ServerFacts]) -> Option<usize> {
        let owner = *self.slots.get(usize::try_from(slot).ok()?)? as usize;
        facts.get(owner).filter(|f| f.usable()).map(|_| owner)
    }

    /// The server for a flow whose canonical key bytes are `key`.
    pub(crate) fn lookup(
        &self,
        key: &KeyBytes,
        fallback: bool,
        facts: &[ServerFacts],
    ) -> Option<usize> {
        let m = self.slots.len() as u64;
        let first = key.hash(&FLOW_KEY).checked_rem(m);
        if let Some(found) = first.and_then(|s| self.usable_at(s, facts)) {
            return Some(found);
        }
        if !fallback {
            return None;
        }
        let mut last = first.unwrap_or(0);
        for k in 1..=REHASHES {
            let Some(s) = key.with_counter(k).hash(&FLOW_KEY).checked_rem(m) else {
                break;
            };
            if let Some(found) = self.usable_at(s, facts) {
                return Some(found);
            }
            last = s;
        }
        let n = self.counts.len().min(facts.len());
        let owned_usable = self
            .counts
            .iter()
            .zip(facts)
            .any(|(&c, f)| c > 0 && f.usable());
        if owned_usable {
            let mut s = last;
            for _ in 0..m {
                s = s.wrapping_add(1);
                if s >= m {
                    s = 0;
                }
                if let Some(found) = self.usable_at(s, facts) {
                    return Some(found);
                }
            }
        }
        facts.iter().take(n).position(ServerFacts::usable)
    }
}
