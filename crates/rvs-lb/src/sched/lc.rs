//! `lc`, `wlc`, `sed` and `nq`: the connection-count schedulers, with the
//! formulas IPVS uses so that operators see the same choices.
//!
//! * `lc`: least overhead, where overhead = `active * 256 + inactive`
//!   (an active connection costs about 256 idle ones);
//! * `wlc`: least `overhead / weight`, compared by cross-multiplying
//!   (`oh_a * w_b < oh_b * w_a`) so no division and no rounding;
//! * `sed`: least `(active + 1) / weight` (expected delay if sent here);
//! * `nq`: the first usable server with no active connection, else `sed`.
//!
//! Ties go to the earlier server in the list. Only usable servers (available
//! and weight > 0) are considered. Products are computed in `u128`, so no
//! count or weight can overflow them.

use super::ServerFacts;

fn overhead(f: &ServerFacts) -> u128 {
    u128::from(f.active) * 256 + u128::from(f.inactive)
}

/// The usable server minimising `cost / weight` (exactly; first on ties).
fn least_ratio(
    n: usize,
    facts: &[ServerFacts],
    cost: impl Fn(&ServerFacts) -> u128,
    weighted: bool,
) -> Option<usize> {
    let mut best: Option<(usize, u128, u128)> = None;
    for (i, f) in facts.iter().take(n).enumerate() {
        if !f.usable() {
            continue;
        }
        let c = cost(f);
        let w = if weighted { u128::from(f.weight) } else { 1 };
        // c / w < bc / bw  <=>  c * bw < bc * w   (weights are > 0)
        if best.is_none_or(|(_, bc, bw)| c * bw < bc * w) {
            best = Some((i, c, w));
        }
    }
    best.map(|(i, _, _)| i)
}

/// Least connections.
pub(crate) fn lc(n: usize, facts: &[ServerFacts]) -> Option<usize> {
    least_ratio(n, facts, overhead, false)
}

/// Weighted least connections.
pub(crate) fn wlc(n: usize, facts: &[ServerFacts]) -> Option<usize> {
    least_ratio(n, facts, overhead, true)
}

/// Shortest expected delay.
pub(crate) fn sed(n: usize, facts: &[ServerFacts]) -> Option<usize> {
    least_ratio(n, facts, |f| u128::from(f.active) + 1, true)
}

/// Never queue.
pub(crate) fn nq(n: usize, facts: &[ServerFacts]) -> Option<usize> {
    facts
        .iter()
        .take(n)
        .position(|f| f.usable() && f.active == 0)
        .or_else(|| sed(n, facts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(weight: u32, active: u32, inactive: u32) -> ServerFacts {
        ServerFacts {
            weight,
            active,
            inactive,
            available: true,
        }
    }

    #[test]
    fn lc_uses_active_times_256_plus_inactive() {
        // Overheads 256, 300, 255.
        let f = [s(1, 1, 0), s(1, 0, 300), s(1, 0, 255)];
        assert_eq!(lc(3, &f), Some(2));
        // 256 vs 300 vs 256: tie goes to the first.
        let f = [s(1, 1, 0), s(1, 0, 300), s(1, 0, 256)];
        assert_eq!(lc(3, &f), Some(0));
        // lc ignores weight (but not weight 0).
        let f = [s(100, 0, 10), s(1, 0, 9), s(0, 0, 0)];
        assert_eq!(lc(3, &f), Some(1));
    }

    #[test]
    fn wlc_cross_multiplies_exactly() {
        // 256/1 vs 700/3 = 233.3: the heavier server wins.
        let f = [s(1, 1, 0), s(3, 2, 188)];
        assert_eq!(wlc(2, &f), Some(1));
        // 1000/3 = 333.33 vs 333/1: integer division would call it a tie and
        // pick server 0; the exact comparison picks server 1.
        let f = [s(3, 3, 232), s(1, 1, 77)];
        assert_eq!(wlc(2, &f), Some(1));
        // Exact ties go to the first.
        let f = [s(2, 2, 0), s(1, 1, 0)];
        assert_eq!(wlc(2, &f), Some(0));
        // No overflow at the extremes.
        let f = [s(u32::MAX, u32::MAX, u32::MAX), s(1, u32::MAX, u32::MAX)];
        assert_eq!(wlc(2, &f), Some(0));
        assert_eq!(lc(2, &f), Some(0));
        assert_eq!(sed(2, &f), Some(0));
    }

    #[test]
    fn sed_and_nq() {
        // sed: (active+1)/weight; inactive does not count.
        // 1/1 vs 3/3: tie, first wins; then 2/3 < 1.
        let f = [s(1, 0, 0), s(3, 2, 1000)];
        assert_eq!(sed(2, &f), Some(0));
        let f = [s(1, 0, 0), s(3, 1, 1000)];
        assert_eq!(sed(2, &f), Some(1));
        assert_eq!(wlc(2, &f), Some(0));
        // nq takes an idle server even if sed prefers a busy heavy one.
        let f = [s(10, 1, 0), s(1, 0, 0)];
        assert_eq!(sed(2, &f), Some(0));
        assert_eq!(nq(2, &f), Some(1));
        // No idle server: nq is sed.
        let f = [s(10, 3, 0), s(1, 1, 0)];
        assert_eq!(nq(2, &f), Some(0));
    }

    #[test]
    fn unusable_never_picked() {
        let mut f = [s(0, 0, 0), s(5, 9, 9), s(1, 0, 0)];
        f[2].available = false;
        for pick in [lc, wlc, sed, nq] {
            assert_eq!(pick(3, &f), Some(1));
            assert_eq!(pick(1, &f), None);
            assert_eq!(pick(0, &f), None);
            assert_eq!(pick(3, &[]), None);
        }
    }
}
