//! `fo`: weighted failover. Every new flow goes to the usable server with
//! the highest current weight (ties to the earlier server in the list); when
//! it becomes unavailable or quiescent the next-highest takes over, and when
//! it comes back it gets new flows again. This is IPVS `fo`: weights express
//! preference, not proportion.

use super::ServerFacts;

/// The usable server with the highest weight.
pub(crate) fn fo(n: usize, facts: &[ServerFacts]) -> Option<usize> {
    let mut best: Option<(usize, u32)> = None;
    for (i, f) in facts.iter().take(n).enumerate() {
        if f.usable() && best.is_none_or(|(_, w)| f.weight > w) {
            best = Some((i, f.weight));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highest_weight_then_fails_over_and_back() {
        let mut f = [5, 10, 10, 1].map(ServerFacts::up);
        assert_eq!(fo(4, &f), Some(1), "ties go to the first");
        f[1].available = false;
        assert_eq!(fo(4, &f), Some(2));
        f[2].weight = 0; // quiescent
        assert_eq!(fo(4, &f), Some(0));
        f[0].available = false;
        assert_eq!(fo(4, &f), Some(3));
        f[3].available = false;
        assert_eq!(fo(4, &f), None);
        f[1].available = true;
        assert_eq!(fo(4, &f), Some(1));
        assert_eq!(fo(1, &f), None);
        assert_eq!(fo(0, &[]), None);
    }
}
