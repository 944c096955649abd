//! Schedulers: which real server gets a new flow.
//!
//! The algorithms are the ones `ipvsadm -s` names — `rr`, `wrr`, `lc`,
//! `wlc`, `sed`, `nq`, `sh`, `dh`, `mh` (Maglev), `fo` — plus DPVS's
//! `conhash`, with the IPVS formulas and fallback rules so that a service
//! moved from LVS behaves the same.
//!
//! # Three pieces: shared table, per-worker state, per-pick facts
//!
//! One balancer core runs per worker thread and workers share nothing but a
//! read-only configuration snapshot (ARCHITECTURE.md §3, §4). A scheduler is
//! therefore split by who writes what, and when:
//!
//! * [`Scheduler`] — the immutable part, built by the control plane from the
//!   service's [`ServerSpec`] list (identity = address and port, configured
//!   weight, and list order) each time the configuration changes, then
//!   shared by every worker through the snapshot (`Send + Sync`, never
//!   written after the build). It holds what is expensive to compute and
//!   must be identical everywhere: the Maglev table (65537 slots by
//!   default), the consistent-hash ring, the source/destination-hash bucket
//!   table. Building allocates; that is control-plane work, off the packet
//!   path.
//! * [`SchedState`] — the small mutable part, one per worker per service:
//!   the `rr` cursor and the `wrr` current weights. It is written on every
//!   pick, so sharing it would put an atomic read-modify-write and a
//!   bouncing cache line on every new flow; kept per worker it costs
//!   nothing. Each worker thus runs its own rotation; with new flows spread
//!   over workers by the NIC the sum is still fair. A worker makes one with
//!   [`Scheduler::new_state`] when it adopts a new snapshot.
//! * [`ServerFacts`] — what is true of each server right now: its current
//!   weight, active and inactive connection counts, and whether it is
//!   available (not quiescent, not over its upper connection threshold).
//!   The caller passes them to every pick, indexed like the server list;
//!   they change without a rebuild.
//!
//! [`Scheduler::pick`] takes all three plus the flow (and an optional extra
//! key, e.g. a QUIC connection id for `conhash`) and returns the index of
//! the chosen server. It does not allocate and cannot panic; it returns
//! `None` when there is no server to give (empty list, nothing usable, or —
//! for `dh`, and for `sh`/`mh` without their fallback flag — the hashed
//! server is unusable, as in IPVS).
//!
//! # Usable servers and weights
//!
//! A server is *usable* for a new flow when its facts say `available` and
//! its current weight is above 0: weight 0 is quiescent (existing
//! connections continue, new ones never go there). No scheduler ever returns
//! an unusable server.
//!
//! The table schedulers (`sh`, `dh`, `mh`, `conhash`) split their table by
//! the *configured* weights in [`ServerSpec`]; the control plane rebuilds
//! the table when a weight changes. The others (`rr`, `wrr`, `lc`, `wlc`,
//! `sed`, `nq`, `fo`) read the current weight from the facts on each pick.
//!
//! # Stability
//!
//! Hash-based choices use a pinned hash (module `sched::hash`: SipHash-2-4, fixed keys,
//! canonical byte encodings), so the same server list gives the same tables
//! and the same flow the same server on every node and in every release.
//! Tests hold stored tables and picks; they fail if that ever changes.

mod fo;
mod hash;
mod interleave;
mod kind;
mod lc;
mod rr;
mod sh;
mod slots;

pub mod conhash;
pub mod maglev;

use core::fmt;
use core::net::IpAddr;

use crate::flow::FlowKey;

pub use conhash::ConhashKey;
pub use kind::{ParseError, ParseErrorKind, SchedFlags, SchedulerKind};

use conhash::Ring;
use hash::KeyBytes;
use slots::SlotTable;

/// The most servers one service may have.
pub const MAX_SERVERS: usize = 1 << 20;

/// A real server as configured: its identity (address and port), its
/// configured weight, and — by its position in the list — its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServerSpec {
    /// Address (IPv4 or IPv6; an IPv4-mapped IPv6 address counts as IPv4).
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
    /// Configured weight; 0 means quiescent.
    pub weight: u32,
}

impl ServerSpec {
    /// A server spec.
    pub const fn new(addr: IpAddr, port: u16, weight: u32) -> Self {
        ServerSpec { addr, port, weight }
    }
}

/// What is true of one server at the moment of a pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ServerFacts {
    /// Current weight (0: quiescent).
    pub weight: u32,
    /// Active connections (IPVS `ActiveConn`: established TCP).
    pub active: u32,
    /// Inactive connections (IPVS `InActConn`: all other states).
    pub inactive: u32,
    /// Not quiescent and not over its upper connection threshold.
    pub available: bool,
}

impl ServerFacts {
    /// An available server of weight `weight` with no connections.
    pub const fn up(weight: u32) -> Self {
        ServerFacts {
            weight,
            active: 0,
            inactive: 0,
            available: true,
        }
    }

    /// Whether new flows may go to this server: available and weight > 0.
    pub const fn usable(&self) -> bool {
        self.available && self.weight > 0
    }
}

/// How a service schedules: the algorithm and its options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SchedConfig {
    /// The algorithm.
    pub kind: SchedulerKind,
    /// `ipvsadm -b` flags (`sh`, `mh`).
    pub flags: SchedFlags,
    /// Maglev table size (`mh`); a prime, at least
    /// [`maglev::SLOTS_PER_SERVER`] per server.
    pub maglev_size: u32,
    /// What `conhash` hashes.
    pub conhash_key: ConhashKey,
}

impl SchedConfig {
    /// `kind` with no flags and default options.
    pub const fn new(kind: SchedulerKind) -> Self {
        SchedConfig {
            kind,
            flags: SchedFlags::NONE,
            maglev_size: maglev::DEFAULT_TABLE_SIZE,
            conhash_key: ConhashKey::SrcIp,
        }
    }
}

impl From<SchedulerKind> for SchedConfig {
    fn from(kind: SchedulerKind) -> Self {
        SchedConfig::new(kind)
    }
}

/// Why a scheduler could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BuildError {
    /// More servers than [`MAX_SERVERS`].
    TooManyServers {
        /// Servers given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The Maglev table size is not prime.
    MaglevSizeNotPrime {
        /// The size given.
        size: u32,
    },
    /// The Maglev table has fewer than 100 slots per server.
    MaglevSizeTooSmall {
        /// The size given.
        size: u32,
        /// The smallest size allowed for this many servers.
        min: u64,
    },
    /// The Maglev table size is above [`maglev::MAX_TABLE_SIZE`].
    MaglevSizeTooLarge {
        /// The size given.
        size: u32,
        /// The limit.
        max: u32,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BuildError::TooManyServers { count, max } => {
                write!(f, "{count} real servers in one service (at most {max})")
            }
            BuildError::MaglevSizeNotPrime { size } => {
                write!(f, "Maglev table size {size} is not prime")
            }
            BuildError::MaglevSizeTooSmall { size, min } => write!(
                f,
                "Maglev table size {size} is too small for this many servers \
                 (need a prime of at least {min})"
            ),
            BuildError::MaglevSizeTooLarge { size, max } => {
                write!(f, "Maglev table size {size} is above the limit {max}")
            }
        }
    }
}

impl std::error::Error for BuildError {}

/// The table a scheduler built, if its algorithm needs one.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Table {
    None,
    Slots(SlotTable),
    Ring(Ring),
}

/// The immutable part of a scheduler, built once per configuration change
/// and shared read-only by all workers. See the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduler {
    config: SchedConfig,
    n: usize,
    table: Table,
}

/// The per-worker mutable part of a scheduler. See the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SchedState {
    /// `rr`: the index to try first.
    cursor: usize,
    /// `wrr`: the current weight of each server.
    current: Vec<i64>,
}

impl Scheduler {
    /// Builds the scheduler for `servers` (control-plane work: allocates,
    /// and for `mh` fills the whole table).
    pub fn build(config: SchedConfig, servers: &[ServerSpec]) -> Result<Self, BuildError> {
        if servers.len() > MAX_SERVERS {
            return Err(BuildError::TooManyServers {
                count: servers.len(),
                max: MAX_SERVERS,
            });
        }
        let table = match config.kind {
            SchedulerKind::Rr
            | SchedulerKind::Wrr
            | SchedulerKind::Lc
            | SchedulerKind::Wlc
            | SchedulerKind::Sed
            | SchedulerKind::Nq
            | SchedulerKind::Fo => Table::None,
            SchedulerKind::Sh | SchedulerKind::Dh => Table::Slots(sh::build(servers)),
            SchedulerKind::Mh => Table::Slots(maglev::build(servers, config.maglev_size)?),
            SchedulerKind::Conhash => Table::Ring(Ring::build(servers)),
        };
        Ok(Scheduler {
            config,
            n: servers.len(),
            table,
        })
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &SchedConfig {
        &self.config
    }

    /// The number of servers in the list it was built from.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether it was built from an empty list.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// A fresh per-worker state for this scheduler. Use one state with one
    /// scheduler: a state made for a different list still never leads to a
    /// panic or an out-of-range index, but `wrr` then considers only as many
    /// servers as the state has room for.
    pub fn new_state(&self) -> SchedState {
        let current = match self.config.kind {
            SchedulerKind::Wrr => vec![0; self.n],
            _ => Vec::new(),
        };
        SchedState { cursor: 0, current }
    }

    /// How many table entries server `i` owns: slots for `sh`, `dh` and
    /// `mh`, ring points for `conhash`; `None` for schedulers without a
    /// table.
    pub fn table_share(&self, i: usize) -> Option<u32> {
        match &self.table {
            Table::None => None,
            Table::Slots(t) => Some(t.count(i)),
            Table::Ring(r) => Some(r.count(i)),
        }
    }

    /// The Maglev / bucket table (server index per slot, `u32::MAX` for an
    /// empty slot), for inspection; empty for other schedulers.
    pub fn slots(&self) -> &[u32] {
        match &self.table {
            Table::Slots(t) => t.slots(),
            _ => &[],
        }
    }

    /// Picks the server for a new flow: an index into the server list the
    /// scheduler was built from, always usable per `facts` (which is indexed
    /// like that list; servers beyond its end count as unusable). `extra`
    /// is an additional key (e.g. a QUIC connection id) that `conhash` with
    /// [`ConhashKey::Extra`] hashes instead of the source address.
    ///
    /// Never allocates or panics.
    pub fn pick(
        &self,
        state: &mut SchedState,
        flow: &FlowKey,
        extra: Option<&[u8]>,
        facts: &[ServerFacts],
    ) -> Option<usize> {
        let n = self.n.min(facts.len());
        let facts = facts.get(..n)?;
        let flags = self.config.flags;
        let src_key = |with_port: bool| {
            let mut k = KeyBytes::addr_v6(flow.src);
            if with_port {
                k.push(&flow.src_port.to_be_bytes());
            }
            k
        };
        match (&self.table, self.config.kind) {
            (_, SchedulerKind::Rr) => rr::rr(&mut state.cursor, n, facts),
            (_, SchedulerKind::Wrr) => rr::wrr(&mut state.current, n, facts),
            (_, SchedulerKind::Lc) => lc::lc(n, facts),
            (_, SchedulerKind::Wlc) => lc::wlc(n, facts),
            (_, SchedulerKind::Sed) => lc::sed(n, facts),
            (_, SchedulerKind::Nq) => lc::nq(n, facts),
            (_, SchedulerKind::Fo) => fo::fo(n, facts),
            (Table::Slots(t), SchedulerKind::Sh | SchedulerKind::Mh) => {
                t.lookup(&src_key(flags.port), flags.fallback, facts)
            }
            (Table::Slots(t), SchedulerKind::Dh) => {
                t.lookup(&KeyBytes::addr_v6(flow.dst), false, facts)
            }
            (Table::Ring(r), SchedulerKind::Conhash) => {
                let h = match self.config.conhash_key {
                    ConhashKey::SrcIp => Ring::key_hash(&src_key(false), None),
                    ConhashKey::SrcIpPort => Ring::key_hash(&src_key(true), None),
                    ConhashKey::Extra => Ring::key_hash(&src_key(false), extra),
                };
                r.lookup(h, facts)
            }
            // A table that does not match its kind cannot be built.
            (_, SchedulerKind::Sh | SchedulerKind::Dh)
            | (_, SchedulerKind::Mh | SchedulerKind::Conhash) => None,
        }
    }
}

#[cfg(test)]
mod tests;
