//! A weighted, interleaved order in which servers take turns filling a table.
//!
//! Table builders (Maglev, the `sh`/`dh` bucket tables) hand out slots one at
//! a time; whose turn it is next decides both how many slots each server
//! ends up with and how evenly they are spread. This is the Sainte-Laguë
//! (Webster) divisor method: the next turn goes to the server with the
//! smallest `(2 * turns_taken + 1) / weight`, ties to the earlier server in
//! the list. It is a heap operation per turn (tables of millions of slots
//! build fast), after any number `t` of turns every server has taken its
//! proportional share `t * w / W` to within a turn or so (a divisor method
//! may overshoot its quota by a fraction of a turn in some prefixes; the
//! test bounds it below two), and a server's turns are spread evenly rather
//! than bunched (weights 5, 1, 1 give `a a a b c a a`).
//!
//! All comparisons are exact integer cross-multiplications, so the order is
//! the same on every machine. Servers of weight 0 never get a turn.

use core::cmp::Ordering;
use std::collections::BinaryHeap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Turn {
    /// `2 * turns_taken + 1`.
    num: u64,
    /// The server's weight (non-zero).
    weight: u64,
    /// The server's index in the list.
    index: u32,
}

impl Ord for Turn {
    /// "Greater" means "goes first", because `BinaryHeap` pops the greatest.
    fn cmp(&self, other: &Self) -> Ordering {
        let mine = u128::from(self.num) * u128::from(other.weight);
        let theirs = u128::from(other.num) * u128::from(self.weight);
        theirs.cmp(&mine).then_with(|| other.index.cmp(&self.index))
    }
}

impl PartialOrd for Turn {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// An endless iterator of server indices in weighted interleaved order.
/// Yields nothing if every weight is 0.
#[derive(Debug, Clone)]
pub(crate) struct Interleave {
    heap: BinaryHeap<Turn>,
}

impl Interleave {
    /// The order for `weights` (index `i` is the `i`-th server). Indices
    /// that do not fit in a `u32` are skipped; callers limit the list first.
    pub(crate) fn new(weights: impl IntoIterator<Item = u32>) -> Self {
        let heap = weights
            .into_iter()
            .enumerate()
            .filter(|&(_, w)| w > 0)
            .filter_map(|(i, w)| {
                Some(Turn {
                    num: 1,
                    weight: u64::from(w),
                    index: u32::try_from(i).ok()?,
                })
            })
            .collect::<Vec<_>>()
            .into();
        Interleave { heap }
    }
}

impl Iterator for Interleave {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let mut top = self.heap.pop()?;
        let index = top.index;
        top.num = top.num.saturating_add(2);
        self.heap.push(top);
        Some(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaves_and_breaks_ties_by_order() {
        let order: Vec<u32> = Interleave::new([5, 1, 1]).take(14).collect();
        assert_eq!(order, [0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 1, 2, 0, 0]);
        let order: Vec<u32> = Interleave::new([1, 1, 1]).take(6).collect();
        assert_eq!(order, [0, 1, 2, 0, 1, 2]);
        let order: Vec<u32> = Interleave::new([0, 2, 0, 1]).take(6).collect();
        assert_eq!(order, [1, 3, 1, 1, 3, 1]);
        assert_eq!(Interleave::new([0, 0]).next(), None);
        assert_eq!(Interleave::new([]).next(), None);
    }

    #[test]
    fn every_prefix_is_proportional_within_two() {
        let weights = [7u32, 3, 1, 12, 5, 5, 1];
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut taken = [0u64; 7];
        for (t, i) in Interleave::new(weights).take(20_000).enumerate() {
            taken[i as usize] += 1;
            let t = t as u64 + 1;
            for (k, &w) in weights.iter().enumerate() {
                let ideal = t as f64 * w as f64 / total as f64;
                assert!(
                    (taken[k] as f64 - ideal).abs() < 2.0,
                    "turn {t}: server {k} has {} vs {ideal}",
                    taken[k]
                );
            }
        }
    }
}
