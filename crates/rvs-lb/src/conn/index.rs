//! The connection table's hash index: a fixed-capacity open-addressing
//! table of `u32` values (slab positions with a side bit), one cache line
//! per bucket, built so that a burst of lookups can be prefetched.
//!
//! # Layout
//! A [`Line`] is one 64-byte cache line holding up to 10 entries: a 16-bit
//! tag (bits 32..48 of the key's hash) and a value each, plus an overflow
//! count: 9.6 bytes per key at the 2/3 load the index is sized for. A key's home line is picked from the low half of its hash by a
//! multiply-shift, so the number of lines need not be a power of two and
//! the index is sized to the table (at most 2/3 full when every connection
//! has both keys in it). An entry that finds its home line full goes to the
//! next line with room (wrapping), and every line it passed counts it in
//! `overflow`; a lookup goes on to the next line only while that count is
//! non-zero, and a removal decrements the counts it had incremented. There
//! are no tombstones, so churn never lengthens probes, and nothing is ever
//! allocated after construction.
//!
//! # Prefetching
//! A lookup touches the key's home line (usually the only one) and then the
//! slab entry its tag points at. [`Index::prefetch`] fetches the line for a
//! hash and [`Index::candidate`] reads, from a line already fetched, the
//! value of the first entry with the hash's tag, so a burst can issue the
//! memory loads of all its packets before it needs any of them.
//!
//! Values are compared by the caller's `eq` (the slab's key): tags only
//! filter, so a tag collision (about one lookup in 6,500 when a line is
//! full) costs a key comparison, never a wrong answer.

/// Entries per line.
const WAYS: usize = 10;
/// The value of an empty entry (no encoded slab position reaches it).
const EMPTY: u32 = u32::MAX;

/// One cache line of entries.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct Line {
    tags: [u16; WAYS],
    /// Entries whose home line is before this one and that live after it.
    overflow: u32,
    vals: [u32; WAYS],
}

const EMPTY_LINE: Line = Line {
    tags: [0; WAYS],
    overflow: 0,
    vals: [EMPTY; WAYS],
};

impl Line {
    /// Bit `k` set where entry `k` holds a value with tag `t` (a removed
    /// entry's tag is 0 and its value [`EMPTY`], so it only matches tag 0,
    /// and then [`Line::vals`] says it is empty).
    #[inline(always)]
    fn matches(&self, t: u16) -> u32 {
        let mut m = 0;
        for (k, &tg) in self.tags.iter().enumerate() {
            m |= u32::from(tg == t) << k;
        }
        m
    }
}

/// Bits 32..48 of a hash (the low half picks the line), kept beside each
/// value.
const fn tag(hash: u64) -> u16 {
    (hash >> 32) as u16
}

/// Hints the CPU to bring the cache line holding address `p` into all
/// cache levels. Nothing else happens: `p` is never dereferenced, a
/// prefetch never faults (whatever the address) and changes no state, so
/// any pointer may be passed.
#[inline(always)]
pub(super) fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: `_mm_prefetch` only hints the cache: it neither reads nor
        // writes memory observably and does not fault, even on an invalid
        // address. SSE, which it needs, is part of the x86_64 baseline.
        // This is the crate's only `unsafe`.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>()) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// A fixed-capacity index of `u32` values keyed by 64-bit hashes.
#[derive(Debug)]
pub(super) struct Index {
    lines: Box<[Line]>,
    len: usize,
}

impl Index {
    /// An index for up to `keys` values, at most 2/3 full when they are
    /// all in. Allocates; call it at setup.
    pub(super) fn new(keys: usize) -> Self {
        let lines = keys.saturating_mul(3).div_ceil(2 * WAYS).max(1);
        Index {
            lines: vec![EMPTY_LINE; lines].into_boxed_slice(),
            len: 0,
        }
    }

    /// The number of values.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The number of entries (values it could hold).
    pub(super) fn capacity(&self) -> usize {
        self.lines.len() * WAYS
    }

    /// Bytes allocated.
    pub(super) fn memory_bytes(&self) -> usize {
        core::mem::size_of_val::<[Line]>(&self.lines)
    }

    /// The home line of `hash`.
    #[inline]
    fn home(&self, hash: u64) -> usize {
        (((hash & 0xffff_ffff) * self.lines.len() as u64) >> 32) as usize
    }

    /// The line after `i`, wrapping.
    #[inline]
    fn next(&self, i: usize) -> usize {
        if i + 1 >= self.lines.len() { 0 } else { i + 1 }
    }

    /// Fetches the home line of `hash` into the cache.
    #[inline]
    pub(super) fn prefetch(&self, hash: u64) {
        if let Some(line) = self.lines.get(self.home(hash)) {
            let line: *const Line = line;
            prefetch(line.cast());
        }
    }

    /// The value of the first entry of `hash`'s home line with its tag: the
    /// likely answer of a lookup, to prefetch what it points at.
    #[inline]
    pub(super) fn candidate(&self, hash: u64) -> Option<u32> {
        let line = self.lines.get(self.home(hash))?;
        let m = line.matches(tag(hash));
        if m == 0 {
            return None;
        }
        line.vals.get(m.trailing_zeros() as usize).copied()
    }

    /// The first value stored under `hash` for which `eq` holds.
    #[inline]
    pub(super) fn find(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        let t = tag(hash);
        let mut i = self.home(hash);
        for _ in 0..self.lines.len() {
            let line = self.lines.get(i)?;
            let mut m = line.matches(t);
            while m != 0 {
                let k = m.trailing_zeros() as usize;
                m &= m - 1;
                if let Some(&v) = line.vals.get(k)
                    && v != EMPTY
                    && eq(v)
                {
                    return Some(v);
                }
            }
            if line.overflow == 0 {
                return None;
            }
            i = self.next(i);
        }
        None
    }

    /// Stores `value` (not [`EMPTY`]) under `hash`; false if the index is
    /// full (cannot happen within the capacity it was made for).
    pub(super) fn insert(&mut self, hash: u64, value: u32) -> bool {
        if value == EMPTY || self.len >= self.capacity() {
            return false;
        }
        let t = tag(hash);
        let home = self.home(hash);
        let mut i = home;
        // Find the first line with room, then count the entry in the
        // overflow of every line it passed.
        let mut passed = 0;
        let found = loop {
            let Some(line) = self.lines.get_mut(i) else {
                return false;
            };
            if let Some(k) = line.vals.iter().position(|&v| v == EMPTY) {
                if let (Some(tg), Some(v)) = (line.tags.get_mut(k), line.vals.get_mut(k)) {
                    *tg = t;
                    *v = value;
                }
                break true;
            }
            passed += 1;
            if passed >= self.lines.len() {
                break false;
            }
            i = self.next(i);
        };
        if !found {
            return false;
        }
        self.count_overflow(home, passed, true);
        self.len += 1;
        true
    }

    /// Removes `value`, stored under `hash`; false if it is not there.
    pub(super) fn remove(&mut self, hash: u64, value: u32) -> bool {
        if value == EMPTY {
            return false;
        }
        let t = tag(hash);
        let home = self.home(hash);
        let mut i = home;
        for passed in 0..self.lines.len() {
            let Some(line) = self.lines.get_mut(i) else {
                return false;
            };
            let hit = line
                .tags
                .iter()
                .zip(&line.vals)
                .position(|(&tg, &v)| tg == t && v == value);
            if let Some(k) = hit {
                if let (Some(tg), Some(v)) = (line.tags.get_mut(k), line.vals.get_mut(k)) {
                    *tg = 0;
                    *v = EMPTY;
                }
                self.count_overflow(home, passed, false);
                self.len -= 1;
                return true;
            }
            if line.overflow == 0 {
                return false;
            }
            i = self.next(i);
        }
        false
    }

    /// Adds (or takes) one to the overflow count of the `n` lines from
    /// `from`.
    fn count_overflow(&mut self, from: usize, n: usize, add: bool) {
        let mut i = from;
        for _ in 0..n {
            if let Some(line) = self.lines.get_mut(i) {
                line.overflow = if add {
                    line.overflow.saturating_add(1)
                } else {
                    line.overflow.saturating_sub(1)
                };
            }
            i = self.next(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_a_cache_line() {
        assert_eq!(core::mem::size_of::<Line>(), 64);
        assert_eq!(core::mem::align_of::<Line>(), 64);
    }

    /// Every value lands in one line (one home): the overflow chain is
    /// walked on find and unwound on remove.
    #[test]
    fn overflow_chains_are_found_and_unwound() {
        let mut ix = Index::new(60);
        let n = ix.lines.len();
        assert!(n >= 3);
        // Same home (low half 0), distinct tags.
        let hash = |k: u64| k << 32;
        for k in 0..20u64 {
            assert!(ix.insert(hash(k), k as u32));
        }
        assert_eq!(ix.len(), 20);
        assert_eq!(ix.lines[0].overflow, 10);
        assert_eq!(ix.lines[1].overflow, 0);
        assert_eq!(ix.lines[2].overflow, 0);
        for k in 0..20u64 {
            assert_eq!(ix.find(hash(k), |v| v == k as u32), Some(k as u32));
        }
        assert_eq!(ix.find(hash(99), |_| true), None);
        for k in (0..20u64).rev() {
            assert!(ix.remove(hash(k), k as u32), "{k}");
            assert!(!ix.remove(hash(k), k as u32));
        }
        assert_eq!(ix.len(), 0);
        assert!(ix.lines.iter().all(|l| l.overflow == 0));
        assert!(ix.lines.iter().all(|l| l.vals.iter().all(|&v| v == EMPTY)));
    }

    #[test]
    fn wraps_at_the_last_line_and_refuses_past_capacity() {
        let mut ix = Index::new(10);
        let cap = ix.capacity();
        // Home: the last line.
        let last = u64::from(u32::MAX);
        for k in 0..cap as u32 {
            assert!(ix.insert(u64::from(k) << 32 | last, k));
        }
        assert!(!ix.insert(last, 1000));
        for k in 0..cap as u32 {
            assert_eq!(ix.find(u64::from(k) << 32 | last, |v| v == k), Some(k));
            assert_eq!(
                ix.candidate(u64::from(k) << 32 | last).is_some(),
                (k as usize) < WAYS
            );
        }
        for k in 0..cap as u32 {
            assert!(ix.remove(u64::from(k) << 32 | last, k));
        }
        assert!(ix.lines.iter().all(|l| l.overflow == 0));
    }
}
