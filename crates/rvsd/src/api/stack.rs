//! `rvsip`'s side of the API: the stack's configuration (interface
//! addresses, static routes, static neighbours) changed through the API,
//! and listings of ports, addresses, routes and the workers' neighbour
//! caches.
//!
//! - **Changes** are applied to a copy of the running `StackConfig` (ports
//!   never change), checked whole (`StackConfig::validate`) and published
//!   as a new stack snapshot beside the balancer's unchanged one; the
//!   workers adopt it between bursts ([`rvs_lb::stack::Node::apply`]):
//!   routes are rebuilt, static neighbours replaced, and a gratuitous ARP
//!   (unsolicited NA) goes out for every newly owned address.
//! - **Neighbour listings**: each worker's cache is its own. The control
//!   thread asks for a copy ([`NeighDump`], the connection-dump pattern):
//!   each worker checks one atomic per timer tick and, only when asked,
//!   walks its cache and publishes the copy (`arc-swap`). No lock is
//!   shared with the workers.
//! - **Save and restore**: once `rvsip` has changed the stack, the state
//!   file carries a `stack` section (addresses, routes, neighbours by port
//!   name) which replaces the configuration file's at the next start
//!   ([`restore`]); a SIGHUP re-applies the file's stack and drops the
//!   section again.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rvs_api::{
    ApiError, ErrorCode, IfAddr, Link, LinkStats, Neigh, NeighEntry, Request, Route, RouteEntry,
    format_mac, parse_mac,
};
use rvs_lb::config::ConfigError;
use rvs_lb::stack::config::mask;
use rvs_lb::stack::{
    AddrConfig, Neighbour, NeighbourState, Node, RouteConfig, RouteTable, StackConfig,
};
use rvs_wire::ethernet::MacAddr;
use serde::{Deserialize, Serialize};

use crate::config::StackSpec;
use crate::shared::Shared;

fn invalid(field: &str, reason: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::Invalid, field, reason)
}

fn not_found(field: &str, reason: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::NotFound, field, reason)
}

fn exists(field: &str, reason: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::Exists, field, reason)
}

/// The id of port `dev`.
pub fn port_id(stack: &StackConfig, dev: &str, field: &str) -> Result<u16, ApiError> {
    stack
        .ports
        .iter()
        .find(|p| p.name == dev)
        .map(|p| p.id)
        .ok_or_else(|| {
            let names: Vec<&str> = stack.ports.iter().map(|p| p.name.as_str()).collect();
            not_found(
                field,
                format!("unknown dev `{dev}' (ports: {})", names.join(", ")),
            )
        })
}

fn port_name(stack: &StackConfig, id: u16) -> String {
    stack
        .port(id)
        .map_or_else(|| format!("port{id}"), |p| p.name.clone())
}

/// Applies one stack change to `stack` (not validated whole: see
/// [`check`]).
pub fn apply(stack: &mut StackConfig, req: &Request) -> Result<(), ApiError> {
    match req {
        Request::AddAddr { addr } => {
            let port = port_id(stack, &addr.dev, "addr.dev")?;
            if let Some(a) = stack.addrs.iter().find(|a| a.addr == addr.addr) {
                return Err(exists(
                    "addr",
                    format!(
                        "{} is already an address ({}/{} dev {})",
                        addr.addr,
                        a.addr,
                        a.prefix_len,
                        port_name(stack, a.port)
                    ),
                ));
            }
            stack.addrs.push(AddrConfig {
                addr: addr.addr,
                prefix_len: addr.prefix_len,
                port,
            });
        }
        Request::DelAddr { addr } => {
            let port = port_id(stack, &addr.dev, "addr.dev")?;
            let i = stack
                .addrs
                .iter()
                .position(|a| {
                    a.addr == addr.addr && a.prefix_len == addr.prefix_len && a.port == port
                })
                .ok_or_else(|| {
                    let other = stack.addrs.iter().find(|a| a.addr == addr.addr).map(|a| {
                        format!(
                            " ({} is {}/{} dev {})",
                            a.addr,
                            a.addr,
                            a.prefix_len,
                            port_name(stack, a.port)
                        )
                    });
                    not_found(
                        "addr",
                        format!("no address {addr}{}", other.unwrap_or_default()),
                    )
                })?;
            stack.addrs.remove(i);
        }
        Request::AddRoute { route } => {
            let port = match (&route.dev, route.via) {
                (Some(d), _) => port_id(stack, d, "route.dev")?,
                (None, Some(via)) => RouteTable::build(stack)
                    .lookup(via)
                    .filter(|r| r.connected)
                    .map(|r| r.port)
                    .ok_or_else(|| {
                        invalid(
                            "route.via",
                            format!("{via} is on no port's network: name the port (dev)"),
                        )
                    })?,
                (None, None) => return Err(invalid("route.dev", "a route names its port (dev)")),
            };
            if stack
                .routes
                .iter()
                .any(|r| r.prefix == route.prefix && r.prefix_len == route.prefix_len)
            {
                return Err(exists(
                    "route",
                    format!("route {}/{} exists", route.prefix, route.prefix_len),
                ));
            }
            stack.routes.push(RouteConfig {
                prefix: route.prefix,
                prefix_len: route.prefix_len,
                gateway: route.via,
                port,
            });
        }
        Request::DelRoute { route } => {
            let port = route
                .dev
                .as_deref()
                .map(|d| port_id(stack, d, "route.dev"))
                .transpose()?;
            let i = stack
                .routes
                .iter()
                .position(|r| {
                    r.prefix == route.prefix
                        && r.prefix_len == route.prefix_len
                        && port.is_none_or(|p| p == r.port)
                        && route.via.is_none_or(|v| r.gateway == Some(v))
                })
                .ok_or_else(|| {
                    let connected = stack.addrs.iter().find(|a| {
                        a.prefix_len == route.prefix_len
                            && mask(a.addr, a.prefix_len) == route.prefix
                    });
                    match connected {
                        Some(a) => not_found(
                            "route",
                            format!(
                                "{}/{} is the connected route of address {}/{}: delete the address",
                                route.prefix, route.prefix_len, a.addr, a.prefix_len
                            ),
                        ),
                        None => not_found("route", format!("no route {route}")),
                    }
                })?;
            stack.routes.remove(i);
        }
        Request::AddNeigh { neigh } => {
            let port = port_id(stack, &neigh.dev, "neigh.dev")?;
            let mac = neigh
                .lladdr
                .as_deref()
                .and_then(parse_mac)
                .ok_or_else(|| invalid("neigh.lladdr", "a static neighbour needs its MAC"))?;
            if stack
                .static_neighbours
                .iter()
                .any(|&(a, _, p)| a == neigh.addr && p == port)
            {
                return Err(exists(
                    "neigh",
                    format!("static neighbour {} dev {} exists", neigh.addr, neigh.dev),
                ));
            }
            stack
                .static_neighbours
                .push((neigh.addr, MacAddr(mac), port));
        }
        Request::DelNeigh { neigh } => {
            let port = port_id(stack, &neigh.dev, "neigh.dev")?;
            let i = stack
                .static_neighbours
                .iter()
                .position(|&(a, _, p)| a == neigh.addr && p == port)
                .ok_or_else(|| {
                    not_found(
                        "neigh",
                        format!(
                            "no static neighbour {} dev {} (learned entries expire by themselves)",
                            neigh.addr, neigh.dev
                        ),
                    )
                })?;
            stack.static_neighbours.remove(i);
        }
        _ => return Err(invalid("", "not a stack change")),
    }
    Ok(())
}

/// Checks a whole stack configuration; the stack's field path is turned
/// into the request's (`addrs[3].prefix_len` → `addr.prefix_len`).
pub fn check(stack: &StackConfig) -> Result<(), ApiError> {
    stack.validate().map_err(|e: ConfigError| {
        let (table, rest) = e.field.split_once('.').unwrap_or((e.field.as_str(), ""));
        let table = table.split('[').next().unwrap_or(table);
        let field = match (table, rest) {
            ("addrs", r) => join("addr", r),
            ("routes", "gateway") => "route.via".to_string(),
            ("routes", r) => join("route", r),
            ("static_neighbours", "mac") => "neigh.lladdr".to_string(),
            ("static_neighbours", r) => join("neigh", r),
            (t, r) => join(t, r),
        };
        invalid(&field, e.reason)
    })
}

fn join(a: &str, b: &str) -> String {
    if b.is_empty() {
        a.to_string()
    } else {
        format!("{a}.{b}")
    }
}

/// One line saying what a stack change does (for the log).
pub fn describe(req: &Request) -> Option<String> {
    Some(match req {
        Request::AddAddr { addr } => format!("add address {addr}"),
        Request::DelAddr { addr } => format!("delete address {addr}"),
        Request::AddRoute { route } => format!("add route {route}"),
        Request::DelRoute { route } => format!("delete route {route}"),
        Request::AddNeigh { neigh } => format!("add static neighbour {neigh}"),
        Request::DelNeigh { neigh } => format!("delete static neighbour {neigh}"),
        _ => return None,
    })
}

/// The stack's part of the state file: by port name, so that it survives
/// a change of port order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedStack {
    /// Interface addresses.
    #[serde(default)]
    pub addrs: Vec<IfAddr>,
    /// Static routes.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Static neighbours.
    #[serde(default)]
    pub neighbours: Vec<Neigh>,
}

impl SavedStack {
    /// What `stack` configures.
    pub fn of(stack: &StackConfig) -> SavedStack {
        SavedStack {
            addrs: addrs(stack, None),
            routes: stack
                .routes
                .iter()
                .map(|r| Route {
                    prefix: r.prefix,
                    prefix_len: r.prefix_len,
                    via: r.gateway,
                    dev: Some(port_name(stack, r.port)),
                })
                .collect(),
            neighbours: stack
                .static_neighbours
                .iter()
                .map(|&(a, m, p)| Neigh {
                    addr: a,
                    lladdr: Some(format_mac(m.octets())),
                    dev: port_name(stack, p),
                })
                .collect(),
        }
    }
}

#[derive(Deserialize)]
struct StackOnly {
    #[serde(default)]
    stack: Option<SavedStack>,
}

fn saved(path: &Path) -> Result<Option<SavedStack>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    serde_json::from_str::<StackOnly>(&text)
        .map(|s| s.stack)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Whether the state file at `path` carries a stack section.
pub fn saved_in(path: &Path) -> bool {
    matches!(saved(path), Ok(Some(_)))
}

/// Replaces the file's addresses, routes and static neighbours with the
/// state file's, if it has a stack section. Called before anything starts.
pub fn restore(cfg: &super::ApiConfig, spec: &mut StackSpec) -> Result<bool, String> {
    let Some(path) = &cfg.state else {
        return Ok(false);
    };
    let Some(s) = saved(path)? else {
        return Ok(false);
    };
    let port = |dev: &str, what: String| {
        spec.ports
            .iter()
            .find(|p| p.name == dev)
            .map(|p| p.id)
            .ok_or_else(|| {
                format!(
                    "{}: {what} names dev `{dev}', which is not a port",
                    path.display()
                )
            })
    };
    let mut addrs = Vec::new();
    for a in &s.addrs {
        addrs.push(crate::config::AddrSpec {
            addr: a.addr,
            prefix_len: a.prefix_len,
            port: port(&a.dev, format!("address {a}"))?,
        });
    }
    let mut routes = Vec::new();
    for r in &s.routes {
        let dev = r.dev.clone().unwrap_or_default();
        routes.push(crate::config::RouteSpec {
            prefix: r.prefix,
            prefix_len: r.prefix_len,
            gateway: r.via,
            port: port(&dev, format!("route {r}"))?,
        });
    }
    let mut neighbours = Vec::new();
    for n in &s.neighbours {
        let mac = n
            .lladdr
            .as_deref()
            .and_then(parse_mac)
            .ok_or_else(|| format!("{}: neighbour {n} has no valid MAC", path.display()))?;
        neighbours.push((n.addr, mac, port(&n.dev, format!("neighbour {n}"))?));
    }
    spec.addrs = addrs;
    spec.routes = routes;
    spec.neighbours = neighbours;
    Ok(true)
}

/// Interface addresses (of one port).
pub fn addrs(stack: &StackConfig, port: Option<u16>) -> Vec<IfAddr> {
    stack
        .addrs
        .iter()
        .filter(|a| port.is_none_or(|p| p == a.port))
        .map(|a| IfAddr {
            addr: a.addr,
            prefix_len: a.prefix_len,
            dev: port_name(stack, a.port),
        })
        .collect()
}

/// The routing table as the node builds it: connected routes (one per
/// distinct prefix of the addresses, the first address's port), then the
/// static routes.
pub fn routes(stack: &StackConfig) -> Vec<RouteEntry> {
    let src = |port: u16, v4: bool| {
        stack
            .addrs
            .iter()
            .find(|a| a.port == port && a.addr.is_ipv4() == v4)
            .map(|a| a.addr)
    };
    let mtu = |port: u16| stack.port(port).map_or(0, |p| p.mtu);
    let mut out: Vec<RouteEntry> = Vec::new();
    for a in &stack.addrs {
        let prefix = mask(a.addr, a.prefix_len);
        if out
            .iter()
            .any(|e| e.route.prefix == prefix && e.route.prefix_len == a.prefix_len)
        {
            continue;
        }
        out.push(RouteEntry {
            route: Route {
                prefix,
                prefix_len: a.prefix_len,
                via: None,
                dev: Some(port_name(stack, a.port)),
            },
            src: Some(a.addr),
            mtu: mtu(a.port),
            connected: true,
        });
    }
    for r in &stack.routes {
        out.push(RouteEntry {
            route: Route {
                prefix: r.prefix,
                prefix_len: r.prefix_len,
                via: r.gateway,
                dev: Some(port_name(stack, r.port)),
            },
            src: src(r.port, r.prefix.is_ipv4()),
            mtu: mtu(r.port),
            connected: false,
        });
    }
    out
}

/// What the daemon knows of a port that the stack does not: its backend
/// label (`af_xdp (native)`) and its TAP.
#[derive(Debug, Clone, Default)]
pub struct PortLabel {
    /// The backend label.
    pub backend: String,
    /// The TAP's name, if the port has one.
    pub tap: Option<String>,
}

/// The ports with their counters summed over the workers. `labels` are
/// the ports' labels, by index.
pub fn links(stack: &StackConfig, shared: &Shared, labels: &[PortLabel]) -> Vec<Link> {
    let workers: Vec<_> = shared.stats.iter().map(|s| s.load_full()).collect();
    stack
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut st = LinkStats::default();
            for w in &workers {
                let Some(ps) = w.ports.get(i) else { continue };
                st.rx_packets += ps.io.rx_frames;
                st.rx_bytes += ps.io.rx_bytes;
                st.rx_dropped += ps.io.rx_no_buffer;
                st.tx_packets += ps.io.tx_frames;
                st.tx_bytes += ps.io.tx_bytes;
                st.tx_errors += ps.io.tx_ring_full;
                st.tx_dropped += ps.tx_dropped;
            }
            let state = std::fs::read_to_string(format!("/sys/class/net/{}/operstate", p.name))
                .map_or_else(|_| "UNKNOWN".to_string(), |s| s.trim().to_uppercase());
            let label = labels.get(i).cloned().unwrap_or_default();
            Link {
                id: p.id,
                name: p.name.clone(),
                mtu: p.mtu,
                mac: format_mac(p.mac.octets()),
                state,
                backend: label.backend,
                queues: u16::try_from(workers.len()).unwrap_or(u16::MAX),
                tap: label.tap,
                stats: st,
            }
        })
        .collect()
}

fn state_name(s: NeighbourState) -> &'static str {
    match s {
        NeighbourState::Incomplete => "INCOMPLETE",
        NeighbourState::Reachable => "REACHABLE",
        NeighbourState::Stale => "STALE",
        NeighbourState::Permanent => "PERMANENT",
    }
}

/// The workers' neighbour entries (of one port), sorted by port, address
/// and worker.
pub fn neighs(stack: &StackConfig, dump: &NeighDump, port: Option<u16>) -> Vec<NeighEntry> {
    let mut all = dump.collect(NEIGH_WAIT);
    all.retain(|(_, n)| port.is_none_or(|p| p == n.port));
    all.sort_by_key(|(w, n)| (n.port, n.addr, *w));
    all.into_iter()
        .map(|(w, n)| NeighEntry {
            addr: n.addr,
            lladdr: (n.state != NeighbourState::Incomplete).then(|| format_mac(n.mac.octets())),
            state: state_name(n.state).to_string(),
            dev: port_name(stack, n.port),
            worker: w,
            permanent: n.state == NeighbourState::Permanent,
        })
        .collect()
}

/// How long a neighbour listing waits for the workers.
pub const NEIGH_WAIT: Duration = Duration::from_secs(2);

/// Neighbour-cache listings on request (see the module documentation).
#[derive(Debug)]
pub struct NeighDump {
    requested: AtomicU64,
    served: Vec<AtomicU64>,
    answers: Vec<ArcSwap<Vec<Neighbour>>>,
}

impl NeighDump {
    /// For `workers` workers.
    pub fn new(workers: u16) -> Self {
        NeighDump {
            requested: AtomicU64::new(0),
            served: (0..workers).map(|_| AtomicU64::new(0)).collect(),
            answers: (0..workers)
                .map(|_| ArcSwap::from_pointee(Vec::new()))
                .collect(),
        }
    }

    /// Worker side, once per tick: publishes the cache if asked to.
    #[inline]
    pub fn serve(&self, id: u16, node: &Node) {
        let want = self.requested.load(Ordering::Acquire);
        let Some(served) = self.served.get(usize::from(id)) else {
            return;
        };
        if served.load(Ordering::Relaxed) == want {
            return;
        }
        let list: Vec<Neighbour> = node.neighbours().iter().copied().collect();
        if let Some(a) = self.answers.get(usize::from(id)) {
            a.store(Arc::new(list));
        }
        served.store(want, Ordering::Release);
    }

    /// Control side: asks every worker for its cache and waits (at most
    /// `timeout`). Workers that did not answer in time contribute their
    /// previous listing.
    pub fn collect(&self, timeout: Duration) -> Vec<(u16, Neighbour)> {
        let want = self.requested.fetch_add(1, Ordering::AcqRel) + 1;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline
            && self.served.iter().any(|s| s.load(Ordering::Acquire) < want)
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        self.answers
            .iter()
            .enumerate()
            .flat_map(|(w, a)| {
                let w = u16::try_from(w).unwrap_or(u16::MAX);
                a.load_full().iter().map(|n| (w, *n)).collect::<Vec<_>>()
            })
            .collect()
    }
}
