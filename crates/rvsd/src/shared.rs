//! The two places where the control side and the workers meet
//! (ARCHITECTURE.md §1): configuration snapshots going to the workers and
//! counters coming back. Neither takes a lock on the packet path.
//!
//! - [`Snapshots`]: the control side builds a new `Arc<Config>` and
//!   `Arc<StackConfig>` off to the side, stores them (`arc-swap`) and then
//!   bumps the generation counter. A worker reads the counter (one relaxed
//!   atomic load) once per burst and, when it changed, loads both snapshots
//!   and calls `apply`.
//! - [`WorkerStats`]: each worker publishes a copy of its counters every
//!   [`STATS_PERIOD_MS`] (one `Arc` allocation a period, none per packet);
//!   readers load the latest copy whenever they like.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arc_swap::ArcSwap;
use rvs_io::IoStats;
use rvs_lb::config::Config;
use rvs_lb::stats::DropCounters;

use rvs_lb::stack::{StackConfig, StackCounters};

/// How often a worker publishes its counters, in milliseconds.
pub const STATS_PERIOD_MS: u64 = 500;

/// The configuration snapshots workers adopt.
#[derive(Debug)]
pub struct Snapshots {
    generation: AtomicU64,
    lb: ArcSwap<Config>,
    stack: ArcSwap<StackConfig>,
}

impl Snapshots {
    /// The first snapshots (generation 1).
    pub fn new(lb: Arc<Config>, stack: Arc<StackConfig>) -> Self {
        Snapshots {
            generation: AtomicU64::new(1),
            lb: ArcSwap::new(lb),
            stack: ArcSwap::new(stack),
        }
    }

    /// Publishes new snapshots; workers adopt them at their next burst.
    pub fn publish(&self, lb: Arc<Config>, stack: Arc<StackConfig>) {
        self.lb.store(lb);
        self.stack.store(stack);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The current generation (cheap: one load).
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The current snapshots.
    pub fn load(&self) -> (Arc<Config>, Arc<StackConfig>) {
        (self.lb.load_full(), self.stack.load_full())
    }
}

/// One port's counters as a worker saw them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// The backend's counters.
    pub io: IoStats,
    /// Frames the worker dropped because the TX ring was full.
    pub tx_dropped: u64,
    /// The TAP's counters (if the port has one on this worker).
    pub tap: Option<IoStats>,
}

/// A copy of one worker's counters.
#[derive(Debug, Clone, Default)]
pub struct WorkerStats {
    /// Worker index.
    pub worker: u16,
    /// Per port.
    pub ports: Vec<PortStats>,
    /// The balancer's drops.
    pub lb_drops: DropCounters,
    /// Drops decided by the worker loop (no buffer to copy into, no TAP).
    pub drops: DropCounters,
    /// The stack's counters (stack drops are in `stack.drops`).
    pub stack: StackCounters,
    /// Connections in the table.
    pub connections: u64,
    /// Configuration generation in force.
    pub generation: u64,
    /// Bursts that received something, and idle waits.
    pub busy_polls: u64,
    /// Idle sleeps (poll on the descriptors).
    pub idle_waits: u64,
    /// Frames passed between workers (several workers).
    pub redirect: crate::redirect::RedirectStats,
    /// Per-service counters, for the API's listings.
    pub services: Option<Arc<crate::api::counters::ServiceCounters>>,
    /// What FullNAT's client-address extras (TOA, UOA) did.
    pub fullnat: rvs_lb::fwd::FullNatCounters,
}

/// Where the workers publish their counters, and the stop flag.
#[derive(Debug)]
pub struct Shared {
    /// Configuration snapshots.
    pub snapshots: Snapshots,
    /// Latest counters of each worker.
    pub stats: Vec<ArcSwap<WorkerStats>>,
    /// Set to stop the workers.
    pub stop: AtomicBool,
    /// Connection listings for the API, on request.
    pub conns: crate::api::counters::ConnDump,
    /// Neighbour-cache listings for the API (`rvsip neigh show`), on request.
    pub neighs: crate::api::stack::NeighDump,
}

impl Shared {
    /// State for `workers` workers.
    pub fn new(workers: u16, lb: Arc<Config>, stack: Arc<StackConfig>) -> Self {
        Shared {
            snapshots: Snapshots::new(lb, stack),
            stats: (0..workers)
                .map(|w| {
                    ArcSwap::from_pointee(WorkerStats {
                        worker: w,
                        ..WorkerStats::default()
                    })
                })
                .collect(),
            stop: AtomicBool::new(false),
            conns: crate::api::counters::ConnDump::new(workers),
            neighs: crate::api::stack::NeighDump::new(workers),
        }
    }
}
