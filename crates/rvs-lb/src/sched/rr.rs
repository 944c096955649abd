//! `rr` and `wrr`: round robin and smooth weighted round robin.
//!
//! Both keep their position in per-worker state ([`SchedState`]), so each
//! worker runs its own independent rotation over the shared server list;
//! with flows spread over workers by the NIC the aggregate is still a fair
//! rotation, and no worker ever writes memory another one reads.
//!
//! `wrr` is the smooth interleaved algorithm nginx uses (and LVS's `wrr`
//! spreads the same way in spirit): on every pick each usable server's
//! current weight grows by its weight, the largest current weight wins (ties
//! to the earlier server) and the winner's current weight drops by the sum of
//! the weights. Weights 5, 1, 1 give `a a b a c a a`, not `a a a a a b c`;
//! each cycle of `sum(weights)` picks (with constant weights and
//! availability) gives every server exactly its weight in picks. Weights are
//! read from the dynamic facts on every pick, so a weight change or a server
//! becoming unavailable takes effect at once, without a new table.
//!
//! [`SchedState`]: super::SchedState

use super::ServerFacts;

/// Round robin: the next usable server after the one picked last.
/// `cursor` is the index to try first; it is left after the pick.
pub(crate) fn rr(cursor: &mut usize, n: usize, facts: &[ServerFacts]) -> Option<usize> {
    let n = n.min(facts.len());
    if n == 0 {
        return None;
    }
    let start = *cursor % n;
    let (head, tail) = facts.get(..n)?.split_at_checked(start)?;
    let found = tail
        .iter()
        .position(ServerFacts::usable)
        .map(|i| start.saturating_add(i))
        .or_else(|| head.iter().position(ServerFacts::usable))?;
    *cursor = found.saturating_add(1) % n;
    Some(found)
}

/// Smooth weighted round robin over `current` (one entry per server).
pub(crate) fn wrr(current: &mut [i64], n: usize, facts: &[ServerFacts]) -> Option<usize> {
    let mut best: Option<(usize, i64)> = None;
    let mut total: i64 = 0;
    for (i, (f, c)) in facts.iter().zip(current.iter_mut()).take(n).enumerate() {
        if !f.usable() {
            continue;
        }
        let w = i64::from(f.weight);
        *c = c.saturating_add(w);
        total = total.saturating_add(w);
        if best.is_none_or(|(_, b)| *c > b) {
            best = Some((i, *c));
        }
    }
    let (i, _) = best?;
    if let Some(c) = current.get_mut(i) {
        *c = c.saturating_sub(total);
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn up(ws: &[u32]) -> Vec<ServerFacts> {
        ws.iter().map(|&w| ServerFacts::up(w)).collect()
    }

    fn rr_seq(facts: &[ServerFacts], k: usize) -> Vec<usize> {
        let mut cursor = 0;
        (0..k)
            .map(|_| rr(&mut cursor, facts.len(), facts).unwrap())
            .collect()
    }

    fn wrr_seq(facts: &[ServerFacts], k: usize) -> Vec<usize> {
        let mut cur = vec![0; facts.len()];
        (0..k)
            .map(|_| wrr(&mut cur, facts.len(), facts).unwrap())
            .collect()
    }

    #[test]
    fn rr_rotates_and_skips_unusable() {
        let mut f = up(&[1, 1, 1]);
        assert_eq!(rr_seq(&f, 7), [0, 1, 2, 0, 1, 2, 0]);
        f[1].available = false;
        assert_eq!(rr_seq(&f, 5), [0, 2, 0, 2, 0]);
        f[1].available = true;
        f[0].weight = 0; // quiescent
        assert_eq!(rr_seq(&f, 5), [1, 2, 1, 2, 1]);
        // The cursor continues after the last pick when a server comes back.
        let mut f = up(&[1, 1, 1]);
        let mut cursor = 0;
        f[2].available = false;
        assert_eq!(rr(&mut cursor, 3, &f), Some(0));
        assert_eq!(rr(&mut cursor, 3, &f), Some(1));
        f[2].available = true;
        assert_eq!(rr(&mut cursor, 3, &f), Some(2));
        assert_eq!(rr(&mut cursor, 3, &f), Some(0));
    }

    #[test]
    fn rr_and_wrr_with_nothing_to_pick() {
        let mut cursor = 7;
        assert_eq!(rr(&mut cursor, 0, &[]), None);
        assert_eq!(rr(&mut cursor, 5, &[]), None);
        let mut down = up(&[1, 0, 3]);
        down[0].available = false;
        down[2].available = false;
        assert_eq!(rr(&mut cursor, 3, &down), None);
        let mut cur = vec![0; 3];
        assert_eq!(wrr(&mut cur, 3, &down), None);
        assert_eq!(wrr(&mut [], 3, &down), None);
        // A state shorter than the list only sees the servers it covers.
        let mut short = vec![0; 1];
        assert_eq!(wrr(&mut short, 3, &up(&[0, 1, 1])), None);
    }

    #[test]
    fn wrr_is_smooth_nginx_order() {
        // a a b a c a a, per cycle, not a a a a a b c.
        let s = wrr_seq(&up(&[5, 1, 1]), 14);
        assert_eq!(s, [0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0]);
        let s = wrr_seq(&up(&[4, 2, 1]), 7);
        assert_eq!(s, [0, 1, 0, 2, 0, 1, 0]);
        let s = wrr_seq(&up(&[1, 1, 1]), 6);
        assert_eq!(s, [0, 1, 2, 0, 1, 2]);
        // Weight 0 and unavailable servers get nothing; the rest interleave.
        let mut f = up(&[5, 0, 1, 1]);
        f[3].available = false;
        let s = wrr_seq(&f, 12);
        assert_eq!(s, [0, 0, 0, 2, 0, 0, 0, 0, 0, 2, 0, 0]);
    }

    fn max_run(s: &[usize], who: usize) -> usize {
        s.split(|&x| x != who)
            .map(<[usize]>::len)
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn wrr_run_lengths_are_short() {
        // Within a cycle of 5,1,1 the heavy server never runs more than 2;
        // across a cycle boundary at most 4 (plain LVS-style order gives 5
        // inside every cycle).
        let one = wrr_seq(&up(&[5, 1, 1]), 7);
        assert_eq!(max_run(&one, 0), 2);
        let many = wrr_seq(&up(&[5, 1, 1]), 70);
        assert_eq!(max_run(&many, 0), 4);
        // Six light servers and one of weight 10: the heavy one runs at most
        // 4 (LVS-style order would give runs of 10).
        let many = wrr_seq(&up(&[1, 1, 1, 1, 1, 1, 10]), 160);
        assert_eq!(max_run(&many, 6), 4);
    }

    proptest! {
        /// Over one cycle of sum(weights) picks every server gets exactly its
        /// weight; after any prefix every server is within two picks of its
        /// proportional share (measured: at most ~1.04), so no long bursts.
        /// A bunched order (`a a a a a b c`) is off by up to w(1 - w/W).
        #[test]
        fn wrr_exact_per_cycle_and_smooth(
            ws in prop::collection::vec(0u32..20, 1..8),
            cycles in 1usize..4,
        ) {
            let f = up(&ws);
            let total: u64 = ws.iter().map(|&w| u64::from(w)).sum();
            let mut cur = vec![0; ws.len()];
            if total == 0 {
                prop_assert_eq!(wrr(&mut cur, ws.len(), &f), None);
                return Ok(());
            }
            let mut taken = vec![0u64; ws.len()];
            for t in 1..=total * cycles as u64 {
                let i = wrr(&mut cur, ws.len(), &f).unwrap();
                taken[i] += 1;
                for (k, &w) in ws.iter().enumerate() {
                    let ideal = t as f64 * f64::from(w) / total as f64;
                    prop_assert!((taken[k] as f64 - ideal).abs() < 2.0,
                        "t={} server {} taken {} ideal {}", t, k, taken[k], ideal);
                }
                if t % total == 0 {
                    for (k, &w) in ws.iter().enumerate() {
                        prop_assert_eq!(taken[k], u64::from(w) * (t / total));
                    }
                    prop_assert!(cur.iter().all(|&c| c == 0));
                }
            }
        }

        #[test]
        fn rr_visits_each_usable_once_per_round(
            usable in prop::collection::vec(any::<bool>(), 1..10),
            start in 0usize..20,
        ) {
            let f: Vec<_> = usable
                .iter()
                .map(|&u| ServerFacts { available: u, ..ServerFacts::up(1) })
                .collect();
            let k = usable.iter().filter(|&&u| u).count();
            let mut cursor = start;
            let mut seen: Vec<usize> = (0..k).map(|_| rr(&mut cursor, f.len(), &f).unwrap()).collect();
            seen.sort_unstable();
            let want: Vec<usize> = (0..f.len()).filter(|&i| usable[i]).collect();
            prop_assert_eq!(seen, want);
            if k == 0 {
                prop_assert_eq!(rr(&mut cursor, f.len(), &f), None);
            }
        }
    }
}
