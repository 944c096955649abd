//! Adopting a new configuration snapshot while traffic flows.
//!
//! Workers never stop for a configuration change: the control plane builds
//! the new snapshot off to the side and each worker swaps it in between
//! bursts. What must survive the swap is everything keyed by *identity*
//! rather than by position — per-service and per-server counters, the
//! scheduler's view of each server's connections, the connections
//! themselves and persistence templates — so this module maps old
//! positions to new ones by service key and by server address and port.

use std::sync::Arc;

use crate::config::Config;
use crate::fwd::{NO_DEST, NO_SERVICE};
use crate::sched::ServerFacts;
use crate::stats::TrafficStats;

use super::accounting::{forget, refresh_availability};
use super::{ServiceState, Worker};

impl Worker {
    /// Adopts a new configuration snapshot without disturbing established
    /// connections: per-service and per-server state is carried over by
    /// identity (service key; server address and port), and connections are
    /// re-pointed at the new indices. A connection whose service or server
    /// is gone keeps flowing (its keys hold everything the rewrite needs)
    /// but is no longer counted anywhere; with `expire_removed`, such
    /// connections are removed instead (`ipvsadm`'s "expire_nodest_conn").
    pub fn apply(&mut self, config: Arc<Config>, expire_removed: bool) {
        let old_config = core::mem::replace(&mut self.config, config);
        let timeouts_of = |c: &Config| -> Vec<_> {
            c.services()
                .iter()
                .map(|s| (s.spec.key, s.spec.timeouts))
                .collect()
        };
        if old_config.timeouts != self.config.timeouts
            || timeouts_of(&old_config) != timeouts_of(&self.config)
        {
            self.retime_connections();
        }
        let old_states = core::mem::take(&mut self.services);
        // old service index → (new index, old dest index → new dest index)
        let mut remap: Vec<Option<(u32, Vec<u32>)>> = Vec::with_capacity(old_states.len());
        for old in old_config.services() {
            let new_idx = self.config.find(&old.spec.key);
            let new_service = new_idx.and_then(|ni| Some((ni, self.config.service(ni)?)));
            remap.push(new_service.map(|(ni, new)| {
                let dests = old
                    .spec
                    .dests
                    .iter()
                    .map(|d| {
                        new.spec
                            .dests
                            .iter()
                            .position(|n| n.addr == d.addr && n.port == d.port)
                            .map_or(NO_DEST, |p| p as u32)
                    })
                    .collect();
                (ni as u32, dests)
            }));
        }
        self.services = self
            .config
            .services()
            .iter()
            .map(|s| {
                let n = s.spec.dests.len();
                let old = old_config
                    .find(&s.spec.key)
                    .and_then(|oi| old_states.get(oi).map(|st| (oi, st)));
                let mut facts: Vec<ServerFacts> = s
                    .spec
                    .dests
                    .iter()
                    .map(|d| ServerFacts::up(d.weight))
                    .collect();
                let mut dest_stats = vec![TrafficStats::default(); n];
                let mut stats = TrafficStats::default();
                if let Some((oi, st)) = old {
                    stats = st.stats;
                    if let Some(Some((_, map))) = remap.get(oi) {
                        for (od, &nd) in map.iter().enumerate() {
                            let (Some(f), Some(ds)) = (st.facts.get(od), st.dest_stats.get(od))
                            else {
                                continue;
                            };
                            if let (Some(nf), Some(nds)) =
                                (facts.get_mut(nd as usize), dest_stats.get_mut(nd as usize))
                            {
                                nf.active = f.active;
                                nf.inactive = f.inactive;
                                *nds = *ds;
                            }
                        }
                    }
                }
                let mut state = ServiceState {
                    sched: s.scheduler.new_state(),
                    facts,
                    stats,
                    dest_stats,
                    conns: 0,
                };
                for (i, d) in s.spec.dests.iter().enumerate() {
                    refresh_availability(&mut state, i, d.upper_threshold, d.lower_threshold);
                }
                state
            })
            .collect();
        // Re-point connections and count them per service again.
        let services = &mut self.services;
        let mut orphans = 0usize;
        self.conns.for_each_data_mut(|_, data| {
            let mapped = remap
                .get(data.service as usize)
                .and_then(|m| m.as_ref())
                .map(|(ns, dests)| {
                    (
                        *ns,
                        dests.get(data.dest as usize).copied().unwrap_or(NO_DEST),
                    )
                });
            match mapped {
                Some((ns, nd)) => {
                    data.service = ns;
                    data.dest = nd;
                    if let Some(s) = services.get_mut(ns as usize) {
                        s.conns += 1;
                    }
                }
                None => {
                    data.service = NO_SERVICE;
                    data.dest = NO_DEST;
                }
            }
            if data.dest == NO_DEST {
                orphans += 1;
            }
        });
        if expire_removed && orphans > 0 {
            let (services, config, templates) =
                (&mut self.services, &self.config, &mut self.templates);
            let now = self.clock;
            self.conns.remove_where(
                |_, conn| conn.data.dest == NO_DEST,
                |_, conn| forget(services, config, templates, now, &conn),
            );
        }
        self.persist_apply(&old_config, &remap);
    }

    /// After `ipvsadm --set`: every connection takes the timeout of its
    /// state from the new table at once (IPVS re-reads the table with each
    /// packet; doing it here keeps that work off the packet path).
    fn retime_connections(&mut self) {
        let config = &self.config;
        let ids: Vec<_> = self
            .conns
            .iter()
            .map(|(id, c)| {
                let t = config.timeouts_for(c.data.service as usize);
                (id, t.of(c.data.state))
            })
            .collect();
        for (id, timeout) in ids {
            self.conns.set_timeout(id, timeout);
        }
    }
}
