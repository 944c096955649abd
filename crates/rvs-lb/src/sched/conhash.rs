//! `conhash`: a consistent-hash ring with virtual nodes (as DPVS's
//! `conhash` scheduler, keyed on the source address, the source address and
//! port, or an extra key such as a QUIC connection id).
//!
//! Server `s` places `vnodes(s)` points on a 64-bit ring; point `j` is
//! `SipHash-2-4(key "rvs conhash ring", identity || j as u32 big-endian)`
//! (identity: family byte, address bytes, port big-endian). A key goes to
//! the owner of the first point at or after the key's hash, wrapping around;
//! the key's hash is `SipHash-2-4(key "rvs flow hash v1", bytes)` over the
//! source's family byte and address (then its port, for
//! [`ConhashKey::SrcIpPort`]) or over the extra key's bytes as given.
//! Points are sorted by value, then server index, so equal points (a 2^-64
//! event) still give one defined order.
//!
//! `vnodes(s)` is [`VNODES_PER_WEIGHT`] times the configured weight (weight
//! 0: none), so a server's share of the ring is proportional to its weight.
//! If that would exceed [`MAX_POINTS`] points in all, every count is scaled
//! down by the same factor (at least one point for a weighted server). A
//! server's points are a prefix of one fixed sequence, so when a count
//! changes only the points added or removed move keys; adding one server
//! to `N` moves about `1/(N+1)` of the keys, all of them to the new server.
//!
//! When the owner of a key is not usable, the lookup walks on around the
//! ring to the next usable owner: exactly where the key would go if that
//! server were removed, so its keys spread over the others and return when
//! it recovers.

use super::hash::{FLOW_KEY, KeyBytes, RING_KEY, sip24};
use super::{ServerFacts, ServerSpec};

/// Virtual nodes per unit of weight (DPVS uses 160 replicas too).
pub const VNODES_PER_WEIGHT: u64 = 160;
/// The most points a ring holds (12 bytes each).
pub const MAX_POINTS: u64 = 1 << 20;

/// What a `conhash` service hashes to find a flow's server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ConhashKey {
    /// The client's (source) address.
    #[default]
    SrcIp,
    /// The client's address and source port.
    SrcIpPort,
    /// The extra key given to `pick` (e.g. a QUIC destination connection
    /// id); the source address when there is none or it is empty.
    Extra,
}

/// The ring: sorted points and the server owning each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ring {
    points: Vec<u64>,
    owners: Vec<u32>,
    counts: Vec<u32>,
}

impl Ring {
    /// Builds the ring for `servers` (at most `u32::MAX` of them; callers
    /// check).
    pub(crate) fn build(servers: &[ServerSpec]) -> Ring {
        let raw: u64 = servers
            .iter()
            .map(|s| u64::from(s.weight).saturating_mul(VNODES_PER_WEIGHT))
            .fold(0, u64::saturating_add);
        let vnodes = |w: u32| -> u64 {
            let want = u64::from(w).saturating_mul(VNODES_PER_WEIGHT);
            if w == 0 || raw <= MAX_POINTS {
                return want;
            }
            let scaled = u128::from(want) * u128::from(MAX_POINTS) / u128::from(raw);
            u64::try_from(scaled).unwrap_or(MAX_POINTS).max(1)
        };
        let mut ring: Vec<(u64, u32)> = Vec::new();
        let mut counts = vec![0u32; servers.len()];
        for ((i, s), count) in servers.iter().enumerate().zip(&mut counts) {
            let Ok(i) = u32::try_from(i) else { break };
            let id = KeyBytes::server(s.addr, s.port);
            let v = u32::try_from(vnodes(s.weight)).unwrap_or(u32::MAX);
            *count = v;
            ring.extend((0..v).map(|j| (id.with_counter(j).hash(&RING_KEY), i)));
        }
        ring.sort_unstable();
        let (points, owners) = ring.into_iter().unzip();
        Ring {
            points,
            owners,
            counts,
        }
    }

    /// How many points server `i` has.
    pub(crate) fn count(&self, i: usize) -> u32 {
        self.counts.get(i).copied().unwrap_or(0)
    }

    /// The sorted ring points and their owners.
    #[cfg(test)]
    pub(crate) fn points(&self) -> (&[u64], &[u32]) {
        (&self.points, &self.owners)
    }

    /// The hash a key is looked up with.
    pub(crate) fn key_hash(key: &KeyBytes, extra: Option<&[u8]>) -> u64 {
        match extra {
            Some(x) if !x.is_empty() => sip24(&FLOW_KEY, x),
            _ => key.hash(&FLOW_KEY),
        }
    }

    /// The usable server owning hash `h`, walking on past unusable owners.
    pub(crate) fn lookup(&self, h: u64, facts: &[ServerFacts]) -> Option<usize> {
        let len = self.owners.len();
        let first = self.points.partition_point(|&p| p < h);
        let start = if first >= len { 0 } else { first };
        let usable = |pos: usize| {
            let o = *self.owners.get(pos)? as usize;
            facts.get(o).filter(|f| f.usable()).map(|_| o)
        };
        if let Some(o) = usable(start) {
            return Some(o);
        }
        let any_owner_usable = self
            .counts
            .iter()
            .zip(facts)
            .any(|(&c, f)| c > 0 && f.usable());
        if any_owner_usable {
            let mut pos = start;
            for _ in 0..len {
                pos = pos.wrapping_add(1);
                if pos >= len {
                    pos = 0;
                }
                if let Some(o) = usable(pos) {
                    return Some(o);
                }
            }
        }
        // Usable servers without points (weights changed since the build).
        let n = self.counts.len().min(facts.len());
        facts.iter().take(n).position(ServerFacts::usable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::tests::{fixed_flows, fixed_picks, flow, fnv, many_picks_fnv, servers};
    use crate::sched::{SchedConfig, SchedState, Scheduler, SchedulerKind};

    fn build(specs: &[ServerSpec], key: ConhashKey) -> Scheduler {
        let config = SchedConfig {
            conhash_key: key,
            ..SchedConfig::new(SchedulerKind::Conhash)
        };
        Scheduler::build(config, specs).unwrap()
    }

    fn ring(s: &Scheduler) -> &Ring {
        match &s.table {
            crate::sched::Table::Ring(r) => r,
            _ => panic!("not a ring"),
        }
    }

    /// Stored outputs for 10.0.0.1..4:80 with weights 1, 2, 3, 1: computed
    /// once with this code; they must not change across releases.
    #[test]
    fn stored_ring_and_picks() {
        let s = build(&servers(&[1, 2, 3, 1]), ConhashKey::SrcIp);
        let (points, owners) = ring(&s).points();
        assert_eq!(points.len(), 1120);
        assert_eq!(
            points[..4],
            [
                0x002a_68f2_a2ee_31a5,
                0x00a9_b7bb_f861_daa8,
                0x0118_3604_71ed_eb1a,
                0x011c_a8c8_aa09_5ce9
            ]
        );
        assert_eq!(owners[..12], [2, 2, 0, 2, 1, 2, 2, 2, 1, 1, 2, 2]);
        assert_eq!(fnv(owners), 0x3723_96ab_bc7a_ed45);
        assert_eq!(fixed_picks(&s, None), [1, 1, 3, 3, 2, 2, 1, 2].map(Some));
        assert_eq!(many_picks_fnv(&s, false), 0xa543_cfd5_350c_c5c7);
        let s = build(&servers(&[1, 2, 3, 1]), ConhashKey::Extra);
        let cid = b"\x8f\x01\x02\x03\x04\x05\x06\x07";
        assert_eq!(fixed_picks(&s, Some(cid)), [Some(STORED_CID_PICK); 8]);
        assert_eq!(
            fixed_picks(&s, Some(&[])),
            [1, 1, 3, 3, 2, 2, 1, 2].map(Some)
        );
        // 256 connection ids 8f 00 .. 00 i: pins the extra-key hash.
        let facts = [ServerFacts::up(1); 4];
        let f = fixed_flows()[0];
        let picks: Vec<u32> = (0u8..=255)
            .map(|i| {
                let cid = [0x8f, 0, 0, 0, 0, 0, 0, i];
                s.pick(&mut SchedState::default(), &f, Some(&cid), &facts)
                    .unwrap() as u32
            })
            .collect();
        assert_eq!(fnv(&picks), 0x3749_0514_3ae0_4194);
    }

    const STORED_CID_PICK: usize = 1;

    #[test]
    fn points_follow_weights() {
        let s = build(&servers(&[1, 0, 5]), ConhashKey::SrcIp);
        let r = ring(&s);
        assert_eq!([r.count(0), r.count(1), r.count(2)], [160, 0, 800]);
        // Very large weights are scaled down together, proportionally.
        let s = build(&servers(&[65_535, 65_535, 1]), ConhashKey::SrcIp);
        let r = ring(&s);
        let total = r.points().0.len() as u64;
        assert!(total <= MAX_POINTS);
        assert_eq!(r.count(0), r.count(1));
        assert!(r.count(0) > 500_000);
        assert_eq!(r.count(2), 8); // 2^20 / 131071, rounded down
        assert!(ring(&build(&[], ConhashKey::SrcIp)).points().0.is_empty());
    }

    fn keys() -> impl Iterator<Item = crate::flow::FlowKey> {
        (0u32..20_000).map(|i| {
            let [_, a, b, c] = i.to_be_bytes();
            flow([100, a, b, c], 7)
        })
    }

    #[test]
    fn adding_a_node_moves_about_one_in_n_keys_all_to_it() {
        let ten = servers(&[1; 10]);
        let eleven = servers(&[1; 11]);
        let (a, b) = (
            build(&ten, ConhashKey::SrcIp),
            build(&eleven, ConhashKey::SrcIp),
        );
        let facts = [ServerFacts::up(1); 11];
        let mut st = SchedState::default();
        let mut moved = 0u32;
        for f in keys() {
            let before = a.pick(&mut st, &f, None, &facts[..10]).unwrap();
            let after = b.pick(&mut st, &f, None, &facts).unwrap();
            if before != after {
                assert_eq!(after, 10, "a key moved between old servers");
                moved += 1;
            }
        }
        let frac = f64::from(moved) / 20_000.0;
        assert!(
            (0.06..0.13).contains(&frac),
            "moved {frac}, expected about 1/11"
        );
    }

    #[test]
    fn unusable_owner_acts_as_removed() {
        let all = servers(&[1, 2, 1, 3, 1]);
        let mut without = all.clone();
        without.remove(3);
        let (full, less) = (
            build(&all, ConhashKey::SrcIp),
            build(&without, ConhashKey::SrcIp),
        );
        let up = [ServerFacts::up(1); 5];
        let mut facts = up;
        facts[3].available = false;
        let mut st = SchedState::default();
        let mut moved = [0u32; 5];
        for f in keys() {
            let p = full.pick(&mut st, &f, None, &facts).unwrap();
            let q = less.pick(&mut st, &f, None, &up[..4]).unwrap();
            assert_eq!(p, if q >= 3 { q + 1 } else { q });
            moved[p] += 1;
        }
        assert_eq!(moved[3], 0);
        facts = [ServerFacts::up(1); 5];
        facts.iter_mut().for_each(|f| f.available = false);
        assert_eq!(full.pick(&mut st, &fixed_flows()[0], None, &facts), None);
    }

    #[test]
    fn key_modes() {
        let specs = servers(&[1; 8]);
        let facts = [ServerFacts::up(1); 8];
        let mut st = SchedState::default();
        let ip = build(&specs, ConhashKey::SrcIp);
        let port = build(&specs, ConhashKey::SrcIpPort);
        let extra = build(&specs, ConhashKey::Extra);
        let mut port_matters = false;
        let cid = [0xc0, 0xff, 0xee, 0, 1, 2, 3, 4];
        let cid_pick = extra.pick(&mut st, &flow([1, 1, 1, 1], 1), Some(&cid), &facts);
        for i in 0u16..100 {
            let f1 = flow([198, 18, 0, i as u8], i);
            let f2 = flow([198, 18, 0, i as u8], i + 1000);
            assert_eq!(
                ip.pick(&mut st, &f1, None, &facts),
                ip.pick(&mut st, &f2, None, &facts)
            );
            port_matters |=
                port.pick(&mut st, &f1, None, &facts) != port.pick(&mut st, &f2, None, &facts);
            // The connection id decides, wherever the client comes from
            // (a QUIC client that migrated keeps its server).
            assert_eq!(extra.pick(&mut st, &f1, Some(&cid), &facts), cid_pick);
            // Without one, the source address does.
            assert_eq!(
                extra.pick(&mut st, &f1, None, &facts),
                ip.pick(&mut st, &f1, None, &facts)
            );
            // The extra key is ignored by the other modes.
            assert_eq!(
                ip.pick(&mut st, &f1, Some(&cid), &facts),
                ip.pick(&mut st, &f1, None, &facts)
            );
        }
        assert!(port_matters);
    }
}
