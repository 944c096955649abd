//! `mh`: Maglev hashing (Eisenbud et al., "Maglev: A Fast and Reliable
//! Software Network Load Balancer", NSDI 2016, §3.4).
//!
//! The lookup table has `M` slots, `M` prime. Each server has a preference
//! list over the slots, the permutation `(offset + j * skip) mod M` for
//! `j = 0, 1, ...`, where
//!
//! * `offset = SipHash-2-4(key "rvs maglev offst", identity) mod M`,
//! * `skip = SipHash-2-4(key "rvs maglev skip!", identity) mod (M - 1) + 1`,
//!
//! (the 16 ASCII bytes are the 128-bit SipHash key) and `identity` is the
//! canonical encoding of the server: family byte `4`/`6`, address bytes,
//! port big-endian. Since `M` is prime and `1 <= skip < M`, every
//! preference list visits every slot. Servers take turns claiming the next
//! free slot on their own list until the table is full. The paper's turns
//! are a plain rotation; ours follow a weighted interleaved order (the
//! Sainte-Laguë divisor method: next turn to the smallest
//! `(2 * turns + 1) / weight`, ties to the earlier server; equal weights
//! give the paper's rotation), so each server ends up with a share of slots
//! equal to its weight share, to within about one slot. Weight 0 servers
//! take no turn and own no slot.
//!
//! A flow's slot is `SipHash-2-4(key "rvs flow hash v1", source)` modulo
//! `M`, where `source` is the family byte and address bytes of the flow's
//! source, followed by the source port big-endian with `mh-port`. Because each server claims slots from
//! its own fixed list, removing one of `N` servers moves its slots and only
//! a small fraction of the others' (the disruption test bounds it).
//!
//! The table depends only on the server list (identities, weights, order)
//! and `M`: no seed, no platform dependence. Tests compare against tables
//! stored in the source.
//!
//! `M` must be prime and at least [`SLOTS_PER_SERVER`] times the number of
//! servers (the paper's guidance: with fewer slots per server the weight
//! split gets coarse); the default is [`DEFAULT_TABLE_SIZE`].

use super::hash::{KeyBytes, MAGLEV_OFFSET_KEY, MAGLEV_SKIP_KEY};
use super::interleave::Interleave;
use super::slots::{EMPTY, SlotTable};
use super::{BuildError, ServerSpec};

/// The default table size, 65537 (prime).
pub const DEFAULT_TABLE_SIZE: u32 = 65_537;
/// The table must have at least this many slots per server.
pub const SLOTS_PER_SERVER: u64 = 100;
/// The largest table size accepted (2^24 slots, 64 MiB of indices).
pub const MAX_TABLE_SIZE: u32 = 1 << 24;

/// Whether `n` is prime (trial division; `n` is at most [`MAX_TABLE_SIZE`]
/// here, so at most ~2000 divisions).
pub fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    if n.is_multiple_of(2) {
        return n == 2;
    }
    let n = u64::from(n);
    let mut d: u64 = 3;
    while d * d <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 2;
    }
    true
}

/// Checks a table size for a list of `servers` servers.
pub(crate) fn check_size(size: u32, servers: usize) -> Result<(), BuildError> {
    if size > MAX_TABLE_SIZE {
        return Err(BuildError::MaglevSizeTooLarge {
            size,
            max: MAX_TABLE_SIZE,
        });
    }
    if !is_prime(size) {
        return Err(BuildError::MaglevSizeNotPrime { size });
    }
    let min = (servers as u64).saturating_mul(SLOTS_PER_SERVER);
    if u64::from(size) < min {
        return Err(BuildError::MaglevSizeTooSmall { size, min });
    }
    Ok(())
}

/// Builds the Maglev table of `size` slots for `servers`.
pub(crate) fn build(servers: &[ServerSpec], size: u32) -> Result<SlotTable, BuildError> {
    check_size(size, servers.len())?;
    let m = u64::from(size);
    // Per server: the next slot on its preference list, and its skip.
    let mut next: Vec<(u64, u64)> = servers
        .iter()
        .map(|s| {
            let id = KeyBytes::server(s.addr, s.port);
            let offset = id.hash(&MAGLEV_OFFSET_KEY) % m;
            let skip = id.hash(&MAGLEV_SKIP_KEY) % (m - 1) + 1;
            (offset, skip)
        })
        .collect();
    let mut slots = vec![EMPTY; size as usize];
    let mut filled: u64 = 0;
    let mut turns = Interleave::new(servers.iter().map(|s| s.weight));
    while filled < m {
        let Some(i) = turns.next() else { break };
        let Some((pos, skip)) = next.get_mut(i as usize) else {
            break;
        };
        // The list visits every slot, and a slot is free (filled < m), so
        // this finds one within m steps.
        for _ in 0..m {
            let c = *pos;
            *pos += *skip;
            if *pos >= m {
                *pos -= m;
            }
            if let Some(slot) = slots.get_mut(c as usize)
                && *slot == EMPTY
            {
                *slot = i;
                filled += 1;
                break;
            }
        }
    }
    Ok(SlotTable::new(slots, servers.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::tests::{fixed_flows, fixed_picks, fnv, many_picks_fnv, servers};
    use crate::sched::{
        SchedConfig, SchedFlags, SchedState, Scheduler, SchedulerKind, ServerFacts,
    };
    use proptest::prelude::*;

    fn mh(specs: &[ServerSpec], size: u32, port: bool, fallback: bool) -> Scheduler {
        let config = SchedConfig {
            maglev_size: size,
            flags: SchedFlags {
                fallback,
                port,
                flag3: false,
            },
            ..SchedConfig::new(SchedulerKind::Mh)
        };
        Scheduler::build(config, specs).unwrap()
    }

    #[test]
    fn sizes_must_be_prime_and_large_enough() {
        for p in [2, 3, 251, 1009, 65_521, 65_537, 65_539, 16_777_213] {
            assert!(is_prime(p), "{p}");
        }
        for c in [0, 1, 4, 9, 1001, 65_535, 65_536, 16_777_215, 4_294_967_295] {
            assert!(!is_prime(c), "{c}");
        }
        assert!(is_prime(DEFAULT_TABLE_SIZE));
        assert_eq!(check_size(65_537, 655), Ok(()));
        assert_eq!(
            check_size(65_537, 656),
            Err(BuildError::MaglevSizeTooSmall {
                size: 65_537,
                min: 65_600
            })
        );
        assert_eq!(
            check_size(65_536, 3),
            Err(BuildError::MaglevSizeNotPrime { size: 65_536 })
        );
        assert_eq!(
            check_size(16_777_259, 3),
            Err(BuildError::MaglevSizeTooLarge {
                size: 16_777_259,
                max: MAX_TABLE_SIZE
            })
        );
        // Through the public builder, with a readable message.
        let e = Scheduler::build(
            SchedConfig {
                maglev_size: 1000,
                ..SchedConfig::new(SchedulerKind::Mh)
            },
            &servers(&[1]),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "Maglev table size 1000 is not prime");
        // Other primes work, down to 100 slots per server.
        let t = mh(&servers(&[1; 10]), 1009, false, false);
        assert_eq!(t.slots().len(), 1009);
    }

    /// Stored outputs for five equal servers 10.0.0.1..5:80 and the default
    /// table: computed once with this code and written here. If the hash,
    /// the encoding, the permutation or the fill order changes, this fails.
    #[test]
    fn stored_table_equal_weights() {
        let t = mh(&servers(&[1; 5]), DEFAULT_TABLE_SIZE, false, false);
        assert_eq!(
            t.slots()[..24],
            [
                3, 1, 0, 0, 3, 3, 1, 0, 2, 3, 3, 2, 0, 4, 1, 3, 4, 0, 0, 3, 3, 4, 0, 2
            ]
        );
        assert_eq!(fnv(t.slots()), 0x0597_933e_1cab_ec10);
        let picks = [3, 3, 2, 3, 3, 3, 1, 4].map(Some);
        assert_eq!(fixed_picks(&t, None), picks);
        assert_eq!(many_picks_fnv(&t, false), 0x3295_7854_77ae_4551);
        // mh-port: same table, the port joins the flow hash.
        let t = mh(&servers(&[1; 5]), DEFAULT_TABLE_SIZE, true, false);
        assert_eq!(fnv(t.slots()), 0x0597_933e_1cab_ec10);
        let picks = [0, 4, 1, 3, 4, 4, 2, 1].map(Some);
        assert_eq!(fixed_picks(&t, None), picks);
        assert_eq!(many_picks_fnv(&t, false), 0xe5c6_dfac_1975_93a1);
    }

    /// Stored outputs for a weighted, mixed-family list (10.0.0.1:80 w1,
    /// [2001:db8::10]:8080 w2, 10.0.0.1:81 w3) in a 1009-slot table.
    #[test]
    fn stored_table_weighted_mixed_family() {
        let mut sv = servers(&[1, 2, 3]);
        sv[1] = ServerSpec::new("2001:db8::10".parse().unwrap(), 8080, 2);
        sv[2].addr = sv[0].addr;
        sv[2].port = 81;
        let t = mh(&sv, 1009, false, false);
        assert_eq!(
            t.slots()[..24],
            [
                1, 0, 2, 1, 2, 1, 1, 2, 1, 2, 0, 2, 2, 2, 1, 2, 2, 0, 2, 1, 0, 1, 2, 1
            ]
        );
        assert_eq!(fnv(t.slots()), 0x8b46_49eb_4425_a207);
        assert_eq!(fixed_picks(&t, None), [0, 0, 0, 2, 1, 2, 2, 2].map(Some));
        assert_eq!(many_picks_fnv(&t, false), 0xe5dc_4f4f_c66b_31b6);
        // Shares: 1009 * (1, 2, 3) / 6 = 168.2, 336.3, 504.5.
        assert_eq!(
            [t.table_share(0), t.table_share(1), t.table_share(2)],
            [Some(168), Some(336), Some(505)]
        );
    }

    #[test]
    fn unusable_slots_fall_back_or_drop() {
        let specs = servers(&[1; 5]);
        let strict = mh(&specs, DEFAULT_TABLE_SIZE, true, false);
        let fb = mh(&specs, DEFAULT_TABLE_SIZE, true, true);
        let mut facts = [ServerFacts::up(1); 5];
        let mut st = SchedState::default();
        let flows: Vec<_> = (0u16..2000)
            .map(|i| crate::sched::tests::flow([10, 9, (i >> 8) as u8, i as u8], i))
            .collect();
        let before: Vec<_> = flows
            .iter()
            .map(|f| fb.pick(&mut st, f, None, &facts).unwrap())
            .collect();
        facts[2].available = false;
        facts[4].weight = 0;
        let mut moved_to = [0usize; 5];
        for (f, &b) in flows.iter().zip(&before) {
            let s = strict.pick(&mut st, f, None, &facts);
            let p = fb.pick(&mut st, f, None, &facts).unwrap();
            assert!(facts[p].usable());
            if b == 2 || b == 4 {
                assert_eq!(s, None, "no mh-fallback: the flow has no server");
                moved_to[p] += 1;
            } else {
                // Flows of healthy servers stay where they were.
                assert_eq!(s, Some(b));
                assert_eq!(p, b);
            }
        }
        // The failed servers' flows spread over all three healthy ones.
        assert!(
            moved_to[0] > 100 && moved_to[1] > 100 && moved_to[3] > 100,
            "{moved_to:?}"
        );
        // Only one usable server: everything goes there; none: nothing.
        let mut facts = [ServerFacts::up(1); 5];
        for f in facts.iter_mut().take(4) {
            f.available = false;
        }
        for f in &fixed_flows() {
            assert_eq!(fb.pick(&mut st, f, None, &facts), Some(4));
        }
        facts[4].available = false;
        for f in &fixed_flows() {
            assert_eq!(fb.pick(&mut st, f, None, &facts), None);
        }
    }

    #[test]
    fn zero_weight_servers_own_no_slots() {
        let t = mh(&servers(&[0, 3, 0, 1]), 1009, false, false);
        assert_eq!(t.table_share(0), Some(0));
        assert_eq!(t.table_share(2), Some(0));
        assert_eq!(t.table_share(1), Some(757));
        assert_eq!(t.table_share(3), Some(252));
        let t = mh(&servers(&[0, 0]), 1009, false, true);
        assert!(t.slots().iter().all(|&s| s == EMPTY));
        let facts = [ServerFacts::up(1); 2];
        // Servers whose weight came up after the build still get flows
        // with mh-fallback.
        let f = fixed_flows()[0];
        assert_eq!(
            t.pick(&mut SchedState::default(), &f, None, &facts),
            Some(0)
        );
        let t = mh(&[], DEFAULT_TABLE_SIZE, false, true);
        assert_eq!(t.pick(&mut SchedState::default(), &f, None, &[]), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Every slot is filled, and each server's share of slots is its
        /// weight share to within 1% (plus two slots of rounding).
        #[test]
        fn table_full_and_shares_follow_weights(
            ws in prop::collection::vec(1u32..100, 1..40),
        ) {
            let t = mh(&servers(&ws), DEFAULT_TABLE_SIZE, false, false);
            prop_assert!(t.slots().iter().all(|&s| (s as usize) < ws.len()));
            let total: f64 = ws.iter().map(|&w| f64::from(w)).sum();
            let m = f64::from(DEFAULT_TABLE_SIZE);
            for (i, &w) in ws.iter().enumerate() {
                let ideal = m * f64::from(w) / total;
                let got = f64::from(t.table_share(i).unwrap());
                prop_assert!((got - ideal).abs() <= 0.01 * ideal + 2.0,
                    "server {} weight {} got {} want {}", i, w, got, ideal);
            }
        }

        /// Removing one of N servers moves its slots and at most
        /// 1/N + 1% of the slots that belonged to the others.
        #[test]
        fn removing_a_server_disrupts_little(
            ws in prop::collection::vec(1u32..20, 2..40),
            pick in any::<prop::sample::Index>(),
        ) {
            let all = servers(&ws);
            let r = pick.index(all.len());
            let mut less = all.clone();
            less.remove(r);
            let t0 = mh(&all, DEFAULT_TABLE_SIZE, false, false);
            let t1 = mh(&less, DEFAULT_TABLE_SIZE, false, false);
            let (mut others, mut moved) = (0u32, 0u32);
            for (&a, &b) in t0.slots().iter().zip(t1.slots()) {
                if a as usize == r {
                    continue;
                }
                others += 1;
                let b = if b as usize >= r { b + 1 } else { b };
                if a != b {
                    moved += 1;
                }
            }
            let frac = f64::from(moved) / f64::from(others);
            let bound = 1.0 / ws.len() as f64 + 0.01;
            prop_assert!(frac <= bound, "moved {} of {} ({}) > {}", moved, others, frac, bound);
        }
    }
}
