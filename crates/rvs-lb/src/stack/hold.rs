//! Packets held while their next hop is being resolved (as Linux's
//! `unres_qlen` and DPVS's per-neighbour queue do), so the first SYN to a
//! new real server is not lost to the client's 1 s retransmission.
//!
//! # Memory
//! One pool per node, allocated at construction: [`SLOTS`] slots of
//! [`SLOT_BYTES`] bytes each, never grown. A held packet is the finished
//! L3 packet (after the balancer's rewrite and the TTL decrement), copied
//! into a slot; the Ethernet header is written when it is sent.
//!
//! # Limits
//! - At most [`PER_NEIGHBOUR`] packets per (next hop, port). A packet
//!   beyond that, or arriving when every slot is in use, or larger than a
//!   slot, is **not held: the newest packet is dropped** (the caller counts
//!   it as `neighbour_pending` and in `neighbour_hold_overflow`); the held
//!   ones keep their place, so what is sent first is what arrived first.
//! - A packet held longer than [`HOLD_MS`] (the incomplete entry's life)
//!   is discarded by [`HoldPool::expire`] or when its neighbour resolves.
//!
//! Finding a neighbour's packets scans the slot metadata (a few KiB);
//! this happens only on the unresolved path and on neighbour answers.

use core::net::IpAddr;

use crate::conn::Time;

use super::neighbour::INCOMPLETE_MS;

/// Slots in the pool.
pub const SLOTS: usize = 256;
/// Bytes per slot: the largest packet that can be held.
pub const SLOT_BYTES: usize = 2048;
/// Packets held per next hop.
pub const PER_NEIGHBOUR: usize = 4;
/// How long a packet may be held.
pub const HOLD_MS: u64 = INCOMPLETE_MS;

/// What a slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Free,
    /// Waiting for `nh` on `port`.
    Held {
        nh: IpAddr,
        port: u16,
        since: Time,
        seq: u64,
        len: u16,
    },
    /// Released: a transmit descriptor names it.
    Queued {
        len: u16,
    },
}

/// Why a packet was not held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotHeld {
    /// [`PER_NEIGHBOUR`] packets are already held for this next hop.
    NeighbourFull,
    /// Every slot is in use.
    PoolFull,
    /// Larger than [`SLOT_BYTES`].
    TooBig,
}

/// The fixed pool of held packets.
#[derive(Debug, Clone)]
pub struct HoldPool {
    data: Box<[u8]>,
    slots: Box<[Slot]>,
    seq: u64,
}

impl Default for HoldPool {
    fn default() -> Self {
        Self::new()
    }
}

impl HoldPool {
    /// A pool of [`SLOTS`] × [`SLOT_BYTES`]. Allocates; call at setup.
    pub fn new() -> Self {
        HoldPool {
            data: vec![0u8; SLOTS * SLOT_BYTES].into_boxed_slice(),
            slots: vec![Slot::Free; SLOTS].into_boxed_slice(),
            seq: 0,
        }
    }

    /// Packets held (waiting for a neighbour), not counting released ones.
    pub fn held(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(s, Slot::Held { .. }))
            .count()
    }

    /// Copies `pkt` (an L3 packet) to be sent to `nh` on `port` once it
    /// resolves.
    pub fn hold(&mut self, nh: IpAddr, port: u16, pkt: &[u8], now: Time) -> Result<(), NotHeld> {
        let Ok(len) = u16::try_from(pkt.len()) else {
            return Err(NotHeld::TooBig);
        };
        if pkt.len() > SLOT_BYTES {
            return Err(NotHeld::TooBig);
        }
        let mut count = 0;
        let mut free = None;
        for (i, s) in self.slots.iter().enumerate() {
            match *s {
                Slot::Held { nh: h, port: p, .. } if h == nh && p == port => count += 1,
                Slot::Free if free.is_none() => free = Some(i),
                _ => {}
            }
        }
        if count >= PER_NEIGHBOUR {
            return Err(NotHeld::NeighbourFull);
        }
        let Some(i) = free else {
            return Err(NotHeld::PoolFull);
        };
        let (Some(dst), Some(slot)) = (
            self.data
                .get_mut(i * SLOT_BYTES..i * SLOT_BYTES + pkt.len()),
            self.slots.get_mut(i),
        ) else {
            return Err(NotHeld::PoolFull);
        };
        dst.copy_from_slice(pkt);
        self.seq = self.seq.wrapping_add(1);
        *slot = Slot::Held {
            nh,
            port,
            since: now,
            seq: self.seq,
            len,
        };
        Ok(())
    }

    /// The oldest packet held for `nh` on `port`, marked released (its slot
    /// stays reserved until [`free`](Self::free)).
    /// Packets past [`HOLD_MS`] met on the way are freed and counted in
    /// `expired`.
    pub fn release_next(
        &mut self,
        nh: IpAddr,
        port: u16,
        now: Time,
        expired: &mut u64,
    ) -> Option<u16> {
        let mut best: Option<(usize, u64)> = None;
        for (i, s) in self.slots.iter_mut().enumerate() {
            if let Slot::Held {
                nh: h,
                port: p,
                since,
                seq,
                ..
            } = *s
                && h == nh
                && p == port
            {
                if too_old(since, now) {
                    *s = Slot::Free;
                    *expired = expired.wrapping_add(1);
                } else if best.is_none_or(|(_, b)| seq < b) {
                    best = Some((i, seq));
                }
            }
        }
        let (i, _) = best?;
        let slot = self.slots.get_mut(i)?;
        if let Slot::Held { len, .. } = *slot {
            *slot = Slot::Queued { len };
        }
        u16::try_from(i).ok()
    }

    /// The bytes of released slot `i`.
    pub fn bytes(&self, i: u16) -> Option<&[u8]> {
        let i = usize::from(i);
        match self.slots.get(i)? {
            Slot::Queued { len } => self
                .data
                .get(i * SLOT_BYTES..i * SLOT_BYTES + usize::from(*len)),
            _ => None,
        }
    }

    /// Frees slot `i`.
    pub fn free(&mut self, i: u16) {
        if let Some(s) = self.slots.get_mut(usize::from(i)) {
            *s = Slot::Free;
        }
    }

    /// Frees the held packets older than [`HOLD_MS`] and those on ports not
    /// in `ports` (when given); returns how many.
    pub fn expire(&mut self, now: Time, ports: Option<&[u16]>) -> u64 {
        let mut n = 0u64;
        for s in self.slots.iter_mut() {
            if let Slot::Held { since, port, .. } = *s
                && (too_old(since, now) || ports.is_some_and(|ps| !ps.contains(&port)))
            {
                *s = Slot::Free;
                n = n.wrapping_add(1);
            }
        }
        n
    }
}

fn too_old(since: Time, now: Time) -> bool {
    now.as_millis().saturating_sub(since.as_millis()) >= HOLD_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_per_neighbour_and_in_order() {
        let mut p = HoldPool::new();
        let a: IpAddr = "10.0.0.9".parse().unwrap();
        let t = Time::from_secs(1);
        for i in 0..4u8 {
            assert_eq!(p.hold(a, 0, &[i; 10], t), Ok(()));
        }
        assert_eq!(p.hold(a, 0, &[9; 10], t), Err(NotHeld::NeighbourFull));
        assert_eq!(p.hold(a, 1, &[9; 10], t), Ok(()));
        assert_eq!(p.hold(a, 0, &[0; SLOT_BYTES + 1], t), Err(NotHeld::TooBig));
        let mut exp = 0;
        for i in 0..4u8 {
            let s = p.release_next(a, 0, t, &mut exp).unwrap();
            assert_eq!(p.bytes(s).unwrap(), &[i; 10]);
            p.free(s);
        }
        assert_eq!(p.release_next(a, 0, t, &mut exp), None);
        assert_eq!(exp, 0);
        assert_eq!(p.expire(t.add_millis(HOLD_MS - 1), None), 0);
        assert_eq!(p.expire(t.add_millis(HOLD_MS), None), 1);
        assert_eq!(p.held(), 0);
    }

    #[test]
    fn pool_full() {
        let mut p = HoldPool::new();
        for i in 0..SLOTS as u32 {
            let a = IpAddr::V4((0x0a00_0000 + i).into());
            assert_eq!(p.hold(a, 0, &[1], Time::ZERO), Ok(()));
        }
        let a: IpAddr = "10.9.9.9".parse().unwrap();
        assert_eq!(p.hold(a, 0, &[1], Time::ZERO), Err(NotHeld::PoolFull));
    }
}
