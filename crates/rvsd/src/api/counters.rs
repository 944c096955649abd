//! What the workers hand the API: per-service counters with every periodic
//! stats publication, and their connection tables on request.
//!
//! Neither touches the packet path. [`ServiceCounters::of`] runs where a
//! worker already publishes its counters (every `STATS_PERIOD_MS`): one
//! small allocation per service a period. [`ConnDump::serve`] runs once per
//! timer tick: one relaxed load of the request counter and one of the
//! worker's own "served" counter; only when the control thread asked for a
//! listing (`rvsadm -Lnc`) does the worker walk its table and publish a copy
//! (`arc-swap`), which the control thread collects. No lock is shared with
//! the workers.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rvs_lb::config::Config;
use rvs_lb::conn::Time;
use rvs_lb::stats::TrafficStats;
use rvs_lb::worker::{ConnEntry, Worker};

/// One real server's counters in one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DestCounters {
    /// Address.
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
    /// Traffic.
    pub stats: TrafficStats,
    /// Active connections.
    pub active: u32,
    /// Inactive connections.
    pub inactive: u32,
}

/// One service's counters in one worker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SvcCounters {
    /// The service.
    pub key: Option<rvs_lb::config::ServiceKey>,
    /// Traffic of the service (removed servers included).
    pub stats: TrafficStats,
    /// Its real servers.
    pub dests: Vec<DestCounters>,
}

/// A worker's per-service counters, as of its last publication.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceCounters {
    /// Per service of the configuration in force at the worker.
    pub services: Vec<SvcCounters>,
}

impl ServiceCounters {
    /// Reads `w`'s counters (control-plane work, once per stats period).
    pub fn of(w: &Worker) -> Arc<ServiceCounters> {
        let config: &Config = w.config();
        let services = config
            .services()
            .iter()
            .zip(w.services())
            .map(|(svc, st)| SvcCounters {
                key: Some(svc.spec.key),
                stats: st.stats,
                dests: svc
                    .spec
                    .dests
                    .iter()
                    .enumerate()
                    .map(|(i, d)| {
                        let f = st.facts.get(i);
                        DestCounters {
                            addr: d.addr,
                            port: d.port,
                            stats: st.dest_stats.get(i).copied().unwrap_or_default(),
                            active: f.map_or(0, |f| f.active),
                            inactive: f.map_or(0, |f| f.inactive),
                        }
                    })
                    .collect(),
            })
            .collect();
        Arc::new(ServiceCounters { services })
    }
}

/// Connection listings on request (see the module documentation).
#[derive(Debug)]
pub struct ConnDump {
    requested: AtomicU64,
    served: Vec<AtomicU64>,
    answers: Vec<ArcSwap<Vec<ConnEntry>>>,
}

impl ConnDump {
    /// For `workers` workers.
    pub fn new(workers: u16) -> Self {
        ConnDump {
            requested: AtomicU64::new(0),
            served: (0..workers).map(|_| AtomicU64::new(0)).collect(),
            answers: (0..workers)
                .map(|_| ArcSwap::from_pointee(Vec::new()))
                .collect(),
        }
    }

    /// Worker side, once per tick: publishes the table if asked to.
    #[inline]
    pub fn serve(&self, id: u16, w: &Worker, now: Time) {
        let want = self.requested.load(Ordering::Acquire);
        let Some(served) = self.served.get(usize::from(id)) else {
            return;
        };
        if served.load(Ordering::Relaxed) == want {
            return;
        }
        let list: Vec<ConnEntry> = w.connections(now).collect();
        if let Some(a) = self.answers.get(usize::from(id)) {
            a.store(Arc::new(list));
        }
        served.store(want, Ordering::Release);
    }

    /// Control side: asks every worker for its table and waits (at most
    /// `timeout`) for the answers. Workers that did not answer in time
    /// (stopped) contribute their previous listing.
    pub fn collect(&self, timeout: Duration) -> Vec<ConnEntry> {
        let want = self.requested.fetch_add(1, Ordering::AcqRel) + 1;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline
            && self.served.iter().any(|s| s.load(Ordering::Acquire) < want)
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        self.answers
            .iter()
            .flat_map(|a| a.load_full().as_ref().clone())
            .collect()
    }
}
