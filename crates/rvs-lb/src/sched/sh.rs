//! `sh` and `dh`: source and destination hashing over a bucket table.
//!
//! The table has `max(256, next_power_of_two(16 * servers))` buckets (IPVS
//! uses a fixed 256; more buckets keep the weight split accurate for larger
//! lists). Buckets are dealt to servers in the weighted interleaved order of
//! [`Interleave`](super::interleave::Interleave), so each server owns a
//! share of buckets proportional to its configured weight (weight 0: none).
//! A flow's bucket is the pinned hash of its source address (and source
//! port with `sh-port`) — or of its destination address for `dh` — modulo
//! the table size.
//!
//! Unlike Maglev this is not a consistent hash: adding or removing a server
//! re-deals most buckets (as in IPVS). Use `mh` or `conhash` when that
//! matters.
//!
//! `sh` honours `sh-fallback` (see [`slots`](super::slots)); `dh` has no
//! fallback in IPVS: an unusable destination server means no server.

use super::ServerSpec;
use super::interleave::Interleave;
use super::slots::SlotTable;

/// Fewest buckets a table has.
pub(crate) const MIN_BUCKETS: usize = 256;
/// Buckets per server the table aims for.
pub(crate) const BUCKETS_PER_SERVER: usize = 16;

/// Builds the bucket table for `servers`.
pub(crate) fn build(servers: &[ServerSpec]) -> SlotTable {
    let size = servers
        .len()
        .saturating_mul(BUCKETS_PER_SERVER)
        .max(MIN_BUCKETS)
        .checked_next_power_of_two()
        .unwrap_or(MIN_BUCKETS);
    let slots = Interleave::new(servers.iter().map(|s| s.weight))
        .take(size)
        .collect();
    SlotTable::new(slots, servers.len())
}

#[cfg(test)]
mod tests {
    use crate::sched::tests::{fixed_flows, fixed_picks, flow, fnv, many_picks_fnv, servers};
    use crate::sched::{
        SchedConfig, SchedFlags, SchedState, Scheduler, SchedulerKind, ServerFacts,
    };

    fn build(kind: SchedulerKind, ws: &[u32], port: bool, fallback: bool) -> Scheduler {
        let config = SchedConfig {
            flags: SchedFlags {
                fallback,
                port,
                flag3: false,
            },
            ..SchedConfig::new(kind)
        };
        Scheduler::build(config, &servers(ws)).unwrap()
    }

    #[test]
    fn table_sizes_and_weight_shares() {
        let t = build(SchedulerKind::Sh, &[3, 1, 2, 0], false, false);
        assert_eq!(t.slots().len(), 256);
        let shares = [0, 1, 2, 3].map(|i| t.table_share(i).unwrap());
        assert_eq!(shares, [128, 43, 85, 0]);
        let t = build(SchedulerKind::Sh, &[1; 40], false, false);
        assert_eq!(t.slots().len(), 1024);
        assert!((0..40).all(|i| matches!(t.table_share(i), Some(25 | 26))));
        assert!(
            build(SchedulerKind::Dh, &[], false, false)
                .slots()
                .is_empty()
        );
    }

    /// Stored outputs (servers 10.0.0.1..3:80, weights 3, 1, 2): computed
    /// once with this code; they must not change across releases.
    #[test]
    fn stored_tables_and_picks() {
        let t = build(SchedulerKind::Sh, &[3, 1, 2], false, false);
        assert_eq!(
            t.slots()[..24],
            [
                0, 2, 0, 1, 2, 0, 0, 2, 0, 1, 2, 0, 0, 2, 0, 1, 2, 0, 0, 2, 0, 1, 2, 0
            ]
        );
        assert_eq!(fnv(t.slots()), 0xd943_6880_2177_11d6);
        assert_eq!(fixed_picks(&t, None), [1, 1, 0, 0, 0, 0, 1, 1].map(Some));
        assert_eq!(many_picks_fnv(&t, false), 0xa9d7_4cad_c39f_8214);
        let t = build(SchedulerKind::Sh, &[3, 1, 2], true, false);
        assert_eq!(fixed_picks(&t, None), [1, 0, 0, 2, 2, 1, 2, 1].map(Some));
        assert_eq!(many_picks_fnv(&t, false), 0xec2a_3bee_3af3_5286);
        // dh hashes the destination the way sh hashes the source.
        let t = build(SchedulerKind::Dh, &[3, 1, 2], false, false);
        assert_eq!(fnv(t.slots()), 0xd943_6880_2177_11d6);
        assert_eq!(many_picks_fnv(&t, true), 0xa9d7_4cad_c39f_8214);
        assert_eq!(many_picks_fnv(&t, false), 0x94eb_5aa7_3e18_6ba5);
    }

    #[test]
    fn same_input_same_server_and_port_only_with_sh_port() {
        let a = build(SchedulerKind::Sh, &[1, 1, 1, 1], false, false);
        let b = build(SchedulerKind::Sh, &[1, 1, 1, 1], false, false);
        let with_port = build(SchedulerKind::Sh, &[1, 1, 1, 1], true, false);
        let facts = [ServerFacts::up(1); 4];
        let (mut s1, mut s2) = (a.new_state(), b.new_state());
        let mut port_matters = false;
        for i in 0u16..200 {
            let f = flow([198, 51, 100, (i % 50) as u8], i);
            let same_src_other_port = flow([198, 51, 100, (i % 50) as u8], i.wrapping_add(1));
            let p = a.pick(&mut s1, &f, None, &facts);
            assert_eq!(p, b.pick(&mut s2, &f, None, &facts));
            assert_eq!(p, a.pick(&mut s1, &same_src_other_port, None, &facts));
            port_matters |= with_port.pick(&mut s1, &f, None, &facts)
                != with_port.pick(&mut s1, &same_src_other_port, None, &facts);
        }
        assert!(port_matters);
        // dh: the destination decides, whatever the source.
        let d = build(SchedulerKind::Dh, &[1, 1, 1, 1], false, false);
        let mut st = SchedState::default();
        // The first seven fixed flows come from different sources, all to
        // 192.0.2.1:80, like this one.
        let p0 = d.pick(&mut st, &flow([1, 2, 3, 4], 1), None, &facts);
        for f in fixed_flows().iter().take(7) {
            assert_eq!(d.pick(&mut st, f, None, &facts), p0);
        }
    }

    #[test]
    fn fallback_only_with_sh_fallback_and_never_for_dh() {
        let strict = build(SchedulerKind::Sh, &[1, 1, 1], false, false);
        let fb = build(SchedulerKind::Sh, &[1, 1, 1], false, true);
        let dh = build(SchedulerKind::Dh, &[1, 1, 1], false, true);
        let mut facts = [ServerFacts::up(1); 3];
        let mut st = SchedState::default();
        let flows: Vec<_> = (0u8..=255).map(|i| flow([203, 0, 113, i], 9)).collect();
        let before: Vec<_> = flows
            .iter()
            .map(|f| strict.pick(&mut st, f, None, &facts).unwrap())
            .collect();
        facts[1].available = false;
        for (f, &b) in flows.iter().zip(&before) {
            let p = fb.pick(&mut st, f, None, &facts).unwrap();
            if b == 1 {
                assert_eq!(strict.pick(&mut st, f, None, &facts), None);
                assert_ne!(p, 1);
            } else {
                assert_eq!(p, b);
                assert_eq!(strict.pick(&mut st, f, None, &facts), Some(b));
            }
            let r = f.reversed();
            let d = dh.pick(&mut st, &r, None, &facts);
            assert!(d.is_none() || d.is_some_and(|d| d != 1));
        }
    }
}
