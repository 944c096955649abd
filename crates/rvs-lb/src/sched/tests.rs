//! Tests across schedulers: the pick invariants every scheduler keeps, and
//! shared helpers for the per-scheduler tests.

use super::*;
use core::net::Ipv4Addr;

/// `n` servers 10.0.0.1:80, 10.0.0.2:80, ... with the given weights.
pub(super) fn servers(weights: &[u32]) -> Vec<ServerSpec> {
    weights
        .iter()
        .enumerate()
        .map(|(i, &w)| {
            let i = u32::try_from(i).unwrap() + 1;
            ServerSpec::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), 80, w)
        })
        .collect()
}

/// A TCP flow from `src:sport` to 192.0.2.1:80.
pub(super) fn flow(src: [u8; 4], sport: u16) -> FlowKey {
    FlowKey::v4(6, src.into(), sport, Ipv4Addr::new(192, 0, 2, 1), 80)
}

/// Eight fixed flows used by the stored-pick tests.
pub(super) fn fixed_flows() -> [FlowKey; 8] {
    [
        flow([192, 0, 2, 7], 40000),
        flow([192, 0, 2, 7], 40001),
        flow([198, 51, 100, 1], 1024),
        flow([198, 51, 100, 2], 1024),
        flow([203, 0, 113, 200], 65535),
        flow([10, 1, 2, 3], 5555),
        flow([172, 16, 0, 1], 443),
        FlowKey::new(
            17,
            "2001:db8::42".parse().unwrap(),
            53000,
            "2001:db8::1".parse().unwrap(),
            443,
        ),
    ]
}

/// FNV-1a 64 of the table's indices as little-endian u32 (a checksum kept
/// independent of the hash under test).
pub(super) fn fnv(slots: &[u32]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in slots.iter().flat_map(|s| s.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Picks for the fixed flows with every server up.
pub(super) fn fixed_picks(s: &Scheduler, extra: Option<&[u8]>) -> Vec<Option<usize>> {
    let facts: Vec<_> = (0..s.len()).map(|_| ServerFacts::up(1)).collect();
    let mut st = s.new_state();
    fixed_flows()
        .iter()
        .map(|f| s.pick(&mut st, f, extra, &facts))
        .collect()
}

/// FNV-1a of the picks for 1000 synthetic flows (source 10.x.y.1, varying
/// ports) with every server up: pins the lookup side on many inputs.
pub(super) fn many_picks_fnv(s: &Scheduler, reverse: bool) -> u64 {
    let facts: Vec<_> = (0..s.len()).map(|_| ServerFacts::up(1)).collect();
    let mut st = s.new_state();
    let picks: Vec<u32> = (0u16..1000)
        .map(|i| {
            let [hi, lo] = i.to_be_bytes();
            let mut f = flow([10, hi, lo, 1], 1000 + i);
            if reverse {
                f = f.reversed();
            }
            s.pick(&mut st, &f, None, &facts)
                .map_or(u32::MAX, |p| p as u32)
        })
        .collect();
    fnv(&picks)
}

#[test]
fn schedulers_are_shareable_and_states_sendable() {
    fn shared<T: Send + Sync>() {}
    fn owned<T: Send>() {}
    shared::<Scheduler>();
    owned::<SchedState>();
}

#[test]
fn empty_list_and_nothing_usable() {
    let mut facts = [ServerFacts::up(1); 3];
    facts[0].available = false;
    facts[1].weight = 0;
    facts[2] = ServerFacts {
        available: false,
        weight: 0,
        ..ServerFacts::default()
    };
    for kind in SchedulerKind::ALL {
        for fallback in [false, true] {
            let config = SchedConfig {
                flags: SchedFlags {
                    fallback,
                    ..SchedFlags::NONE
                },
                ..SchedConfig::new(kind)
            };
            let empty = Scheduler::build(config, &[]).unwrap();
            assert!(empty.is_empty());
            let mut st = empty.new_state();
            for f in fixed_flows() {
                assert_eq!(empty.pick(&mut st, &f, None, &[]), None, "{kind}");
                assert_eq!(empty.pick(&mut st, &f, None, &facts), None, "{kind}");
            }
            let three = Scheduler::build(config, &servers(&[1, 1, 1])).unwrap();
            let mut st = three.new_state();
            for f in fixed_flows() {
                assert_eq!(three.pick(&mut st, &f, None, &facts), None, "{kind}");
                assert_eq!(three.pick(&mut st, &f, None, &[]), None, "{kind}");
            }
        }
    }
}

#[test]
fn through_the_public_api() {
    let kind: SchedulerKind = "wrr".parse().unwrap();
    let s = Scheduler::build(kind.into(), &servers(&[5, 1, 1])).unwrap();
    assert_eq!(s.config().kind, SchedulerKind::Wrr);
    assert_eq!(s.table_share(0), None);
    let facts = [5, 1, 1].map(ServerFacts::up);
    let mut st = s.new_state();
    let f = fixed_flows()[0];
    let seq: Vec<_> = (0..7)
        .map(|_| s.pick(&mut st, &f, None, &facts).unwrap())
        .collect();
    assert_eq!(seq, [0, 0, 1, 0, 2, 0, 0]);
    // Two workers, two states: independent rotations over one table.
    let rr = Scheduler::build(SchedulerKind::Rr.into(), &servers(&[1, 1])).unwrap();
    let (mut w1, mut w2) = (rr.new_state(), rr.new_state());
    let facts = [ServerFacts::up(1); 2];
    assert_eq!(rr.pick(&mut w1, &f, None, &facts), Some(0));
    assert_eq!(rr.pick(&mut w1, &f, None, &facts), Some(1));
    assert_eq!(rr.pick(&mut w2, &f, None, &facts), Some(0));
    // Configured weight 0 is quiescent for every scheduler.
    for kind in SchedulerKind::ALL {
        let config = SchedConfig {
            maglev_size: 1009,
            ..SchedConfig::new(kind)
        };
        let s = Scheduler::build(config, &servers(&[0, 2])).unwrap();
        let facts = [ServerFacts::up(0), ServerFacts::up(2)];
        let mut st = s.new_state();
        for f in fixed_flows() {
            assert_eq!(s.pick(&mut st, &f, None, &facts), Some(1), "{kind}");
        }
    }
    let e =
        Scheduler::build(SchedConfig::new(SchedulerKind::Mh), &servers(&vec![1; 700])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Maglev table size 65537 is too small for this many servers (need a prime of at \
         least 70000)"
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn addr() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<[u8; 16]>().prop_map(IpAddr::from),
        ]
    }

    fn spec() -> impl Strategy<Value = ServerSpec> {
        (addr(), any::<u16>(), 0u32..6).prop_map(|(a, p, w)| ServerSpec::new(a, p, w))
    }

    fn facts() -> impl Strategy<Value = ServerFacts> {
        (0u32..6, any::<u32>(), any::<u32>(), any::<bool>()).prop_map(
            |(weight, active, inactive, available)| ServerFacts {
                weight,
                active: active % 4,
                inactive: if inactive % 7 == 0 {
                    inactive
                } else {
                    inactive % 300
                },
                available,
            },
        )
    }

    fn flow_key() -> impl Strategy<Value = FlowKey> {
        (any::<u8>(), addr(), any::<u16>(), addr(), any::<u16>())
            .prop_map(|(p, s, sp, d, dp)| FlowKey::new(p, s, sp, d, dp))
    }

    fn config() -> impl Strategy<Value = SchedConfig> {
        (
            prop::sample::select(SchedulerKind::ALL.to_vec()),
            any::<(bool, bool)>(),
            prop::sample::select(vec![
                ConhashKey::SrcIp,
                ConhashKey::SrcIpPort,
                ConhashKey::Extra,
            ]),
        )
            .prop_map(|(kind, (fallback, port), conhash_key)| SchedConfig {
                kind,
                flags: SchedFlags {
                    fallback,
                    port,
                    flag3: false,
                },
                maglev_size: 1201,
                conhash_key,
            })
    }

    /// Whether IPVS guarantees a server whenever one is usable: all but
    /// `dh`, and `sh`/`mh` without their fallback flag.
    fn always_finds(c: &SchedConfig) -> bool {
        match c.kind {
            SchedulerKind::Dh => false,
            SchedulerKind::Sh | SchedulerKind::Mh => c.flags.fallback,
            _ => true,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever the list, the facts (even of another length), the flow
        /// and the extra key: a pick is an in-range, usable server, and
        /// there is one whenever a usable server exists (for the schedulers
        /// that promise it).
        #[test]
        fn picks_in_range_and_usable(
            config in config(),
            specs in prop::collection::vec(spec(), 0..12),
            facts in prop::collection::vec(facts(), 0..14),
            flows in prop::collection::vec(flow_key(), 1..16),
            extra in prop::option::of(prop::collection::vec(any::<u8>(), 0..20)),
            foreign_state in any::<bool>(),
        ) {
            let s = Scheduler::build(config, &specs).unwrap();
            let mut st = if foreign_state {
                // A state from another list must not break anything either.
                Scheduler::build(SchedulerKind::Wrr.into(), &specs[..specs.len() / 2])
                    .unwrap()
                    .new_state()
            } else {
                s.new_state()
            };
            let n = specs.len().min(facts.len());
            let any_usable = facts.iter().take(n).any(ServerFacts::usable);
            for f in &flows {
                let p = s.pick(&mut st, f, extra.as_deref(), &facts);
                if let Some(i) = p {
                    prop_assert!(i < n, "{} picked {} of {}", config.kind, i, n);
                    prop_assert!(facts[i].usable(), "{} picked unusable {}", config.kind, i);
                } else if always_finds(&config) && !(foreign_state && config.kind == SchedulerKind::Wrr) {
                    prop_assert!(!any_usable, "{} found nothing", config.kind);
                }
            }
        }
    }
}
