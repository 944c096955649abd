//! The data the API carries: plain values, independent of the data plane's
//! internal types (rvsd converts between the two).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

/// Schedulers rvs implements, by their IPVS/DPVS names.
pub const SCHEDULERS: [&str; 11] = [
    "rr", "wrr", "lc", "wlc", "sed", "nq", "sh", "dh", "mh", "conhash", "fo",
];

/// The scheduler a service gets when none is named (as ipvsadm's `DEF_SCHED`).
pub const DEFAULT_SCHEDULER: &str = "wlc";

/// The persistence timeout `-p` without a value means, in seconds (libipvs's
/// `IPVS_SVC_PERSISTENT_TIMEOUT`).
pub const DEFAULT_PERSISTENCE_TIMEOUT: u32 = 360;

/// The largest timeout ipvsadm accepts (31 days), in seconds.
pub const MAX_TIMEOUT: u32 = 86_400 * 31;

/// Scheduler flags as ipvsadm spells them (`-b`); `sh-*` only with `sh`,
/// `mh-*` only with `mh`.
pub const SCHED_FLAGS: [&str; 7] = [
    "flag-1",
    "flag-2",
    "flag-3",
    "sh-fallback",
    "sh-port",
    "mh-fallback",
    "mh-port",
];

/// A transport protocol of a virtual service or a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// TCP (`-t`).
    Tcp,
    /// UDP (`-u`).
    Udp,
    /// SCTP (`--sctp-service`).
    Sctp,
    /// ICMP (connections only).
    Icmp,
    /// ICMPv6 (connections only).
    Icmpv6,
}

impl Protocol {
    /// The IP protocol number (the order ipvsadm sorts services in).
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
            Protocol::Icmp => 1,
            Protocol::Icmpv6 => 58,
        }
    }

    /// The name the kernel's `/proc/net/ip_vs_conn` and ipvsadm print.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
            Protocol::Icmp => "ICMP",
            Protocol::Icmpv6 => "ICMPv6",
        }
    }
}

/// Address family, for firewall-mark services (which have no address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// IPv4.
    Ipv4,
    /// IPv6 (ipvsadm's `-f mark -6`).
    Ipv6,
}

/// What identifies a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKey {
    /// A protocol, address and port (port 0 only with persistence).
    Addr {
        /// TCP, UDP or SCTP.
        protocol: Protocol,
        /// The virtual address.
        addr: IpAddr,
        /// The virtual port.
        port: u16,
    },
    /// A firewall mark (`-f`).
    Fwmark {
        /// The mark, 1 or more.
        mark: u32,
        /// The family of the packets it matches.
        family: Family,
    },
}

impl ServiceKey {
    /// The address family.
    pub fn family(&self) -> Family {
        match *self {
            ServiceKey::Addr { addr, .. } => family_of(addr),
            ServiceKey::Fwmark { family, .. } => family,
        }
    }

    /// The order ipvsadm lists services in (libipvs `ipvs_cmp_services`):
    /// firewall mark (0 for address services, so they come first), family,
    /// protocol, address, port.
    pub fn sort_key(&self) -> (u32, Family, u8, IpAddr, u16) {
        match *self {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => (0, family_of(addr), protocol.number(), addr, port),
            ServiceKey::Fwmark { mark, family } => (
                mark,
                family,
                Protocol::Tcp.number(),
                IpAddr::from([0, 0, 0, 0]),
                0,
            ),
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => write!(f, "{} {}", protocol.name(), SocketAddr::new(addr, port)),
            ServiceKey::Fwmark { mark, family } => match family {
                Family::Ipv4 => write!(f, "FWM {mark}"),
                Family::Ipv6 => write!(f, "FWM {mark} IPv6"),
            },
        }
    }
}

/// The family of an address.
pub fn family_of(addr: IpAddr) -> Family {
    match addr {
        IpAddr::V4(_) => Family::Ipv4,
        IpAddr::V6(_) => Family::Ipv6,
    }
}

/// Persistence: connections from one client (network) go to the same real
/// server for `timeout` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Persistence {
    /// Seconds, 1..=[`MAX_TIMEOUT`].
    pub timeout: u32,
    /// Client network granularity as a prefix length (ipvsadm's `-M`):
    /// 32 (IPv4) or 128 (IPv6) means per client address.
    pub netmask: u8,
}

/// A virtual service's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// What identifies it.
    pub key: ServiceKey,
    /// One of [`SCHEDULERS`].
    pub scheduler: String,
    /// Scheduler flags, from [`SCHED_FLAGS`].
    #[serde(default)]
    pub flags: Vec<String>,
    /// Persistence, if any.
    #[serde(default)]
    pub persistence: Option<Persistence>,
    /// One-packet scheduling (UDP only, ipvsadm's `-o`).
    #[serde(default)]
    pub one_packet: bool,
}

/// How packets reach a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Forward {
    /// NAT (`-m`, ipvsadm "Masq").
    Masq,
    /// Direct routing (`-g`, "Route"), the ipvsadm default.
    Route,
    /// IP-in-IP tunnel (`-i`, "Tunnel").
    Tunnel,
    /// Full NAT (DPVS `-b`/`--fullnat`, "FullNat").
    Fullnat,
    /// Source NAT (DPVS `-J`/`--snat`, "SNAT").
    Snat,
}

impl Forward {
    /// The name in ipvsadm's/DPVS's `Forward` column.
    pub fn name(self) -> &'static str {
        match self {
            Forward::Masq => "Masq",
            Forward::Route => "Route",
            Forward::Tunnel => "Tunnel",
            Forward::Fullnat => "FullNat",
            Forward::Snat => "SNAT",
        }
    }

    /// The command-line switch that selects it (as `-S` prints it).
    pub fn switch(self) -> &'static str {
        match self {
            Forward::Masq => "-m",
            Forward::Route => "-g",
            Forward::Tunnel => "-i",
            Forward::Fullnat => "-b",
            Forward::Snat => "-J",
        }
    }
}

/// A real server's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealServer {
    /// Its address.
    pub addr: IpAddr,
    /// Its port (for Route and Tunnel, the service's port).
    pub port: u16,
    /// Forwarding method.
    pub forward: Forward,
    /// Weight, 0..=65535 (0: no new connections).
    pub weight: u32,
    /// Upper connection threshold (`-x`), 0 for none.
    #[serde(default)]
    pub upper_threshold: u32,
    /// Lower connection threshold (`-y`), 0 for none.
    #[serde(default)]
    pub lower_threshold: u32,
}

/// Counters since start or the last zeroing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Connections scheduled.
    pub conns: u64,
    /// Packets client → server.
    pub in_packets: u64,
    /// Packets server → client.
    pub out_packets: u64,
    /// Bytes client → server.
    pub in_bytes: u64,
    /// Bytes server → client.
    pub out_bytes: u64,
}

/// Rates estimated over the last seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rates {
    /// Connections per second.
    pub cps: u64,
    /// Packets per second in.
    pub in_pps: u64,
    /// Packets per second out.
    pub out_pps: u64,
    /// Bytes per second in.
    pub in_bps: u64,
    /// Bytes per second out.
    pub out_bps: u64,
}

/// A real server as listed: configuration, connection counts and counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealServerEntry {
    /// Its configuration.
    pub server: RealServer,
    /// Connections in an active (established) state.
    #[serde(default)]
    pub active_conns: u32,
    /// Other connections.
    #[serde(default)]
    pub inactive_conns: u32,
    /// Persistence templates pointing at it.
    #[serde(default)]
    pub persist_conns: u32,
    /// Counters.
    #[serde(default)]
    pub stats: Stats,
    /// Rates.
    #[serde(default)]
    pub rates: Rates,
}

/// A virtual service as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceEntry {
    /// Its configuration.
    pub service: Service,
    /// Counters (the sum over its real servers and removed ones).
    #[serde(default)]
    pub stats: Stats,
    /// Rates.
    #[serde(default)]
    pub rates: Rates,
    /// Its real servers.
    #[serde(default)]
    pub real_servers: Vec<RealServerEntry>,
    /// Its local addresses (FullNAT/SNAT).
    #[serde(default)]
    pub local_addrs: Vec<LocalAddrEntry>,
}

/// The answer to [`Request::ListServices`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceList {
    /// Connection table size, as ipvsadm's header prints it (`size=`).
    pub table_size: u32,
    /// The services, in any order (clients sort).
    pub services: Vec<ServiceEntry>,
}

/// A local address of a FullNAT/SNAT service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalAddr {
    /// The address backends see as the source.
    pub addr: IpAddr,
    /// The port it lives on (DPVS's `-F`), if given.
    #[serde(default)]
    pub ifname: Option<String>,
}

/// A local address as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalAddrEntry {
    /// Its configuration.
    pub laddr: LocalAddr,
    /// Times a local port was found taken.
    #[serde(default)]
    pub port_conflicts: u64,
    /// Connections using it.
    #[serde(default)]
    pub conns: u32,
}

/// One service's local addresses (the answer to [`Request::GetLaddrs`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceLaddrs {
    /// The service.
    pub service: ServiceKey,
    /// Its local addresses.
    pub laddrs: Vec<LocalAddrEntry>,
}

/// A connection entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// Protocol.
    pub protocol: Protocol,
    /// Seconds until it expires.
    pub expire_secs: u32,
    /// State as IPVS names it (`ESTABLISHED`, `SYN_RECV`, `FIN_WAIT`, `UDP`, ...).
    pub state: String,
    /// Client address and port.
    pub client: SocketAddr,
    /// Virtual address and port.
    pub virtual_addr: SocketAddr,
    /// Local address (FullNAT/SNAT only).
    #[serde(default)]
    pub local: Option<SocketAddr>,
    /// Real server address and port.
    pub destination: SocketAddr,
}

/// Protocol timeouts in seconds (ipvsadm's `--set tcp tcpfin udp`); 0 in a
/// set request leaves that one unchanged, as in IPVS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    /// Established TCP.
    pub tcp: u32,
    /// TCP after a FIN.
    pub tcp_fin: u32,
    /// UDP.
    pub udp: u32,
}

/// A request to rvsd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Add a virtual service (error if it exists).
    AddService {
        /// The service.
        service: Service,
    },
    /// Change a virtual service's scheduler, flags or persistence.
    EditService {
        /// The service.
        service: Service,
    },
    /// Delete a virtual service and its real servers.
    DeleteService {
        /// Which.
        service: ServiceKey,
    },
    /// Add a real server to a service.
    AddRealServer {
        /// The service.
        service: ServiceKey,
        /// The real server.
        server: RealServer,
    },
    /// Change a real server (found by address and port).
    EditRealServer {
        /// The service.
        service: ServiceKey,
        /// The real server.
        server: RealServer,
    },
    /// Remove a real server.
    DeleteRealServer {
        /// The service.
        service: ServiceKey,
        /// Its address.
        addr: IpAddr,
        /// Its port.
        port: u16,
    },
    /// Delete every service.
    Clear,
    /// Zero the counters of one service, or of all.
    Zero {
        /// Which, or all.
        #[serde(default)]
        service: Option<ServiceKey>,
    },
    /// List one service, or all.
    ListServices {
        /// Which, or all.
        #[serde(default)]
        service: Option<ServiceKey>,
    },
    /// List connection entries.
    ListConnections,
    /// Set protocol timeouts (0 leaves one unchanged).
    SetTimeouts {
        /// The timeouts.
        timeouts: Timeouts,
    },
    /// Get protocol timeouts.
    GetTimeouts,
    /// Add a local address to a FullNAT/SNAT service.
    AddLaddr {
        /// The service.
        service: ServiceKey,
        /// The local address.
        laddr: LocalAddr,
    },
    /// Remove a local address.
    DelLaddr {
        /// The service.
        service: ServiceKey,
        /// The local address.
        laddr: LocalAddr,
    },
    /// Local addresses of one service, or of all.
    GetLaddrs {
        /// Which, or all.
        #[serde(default)]
        service: Option<ServiceKey>,
    },
    /// Several changes applied all or nothing, in order (`rvsadm -R`).
    /// Only change requests may appear; an error names the index of the
    /// failing request in its field (`requests[3].server.weight`).
    Batch {
        /// The changes.
        requests: Vec<Request>,
    },
    /// The ports with their counters (`rvsip link show`).
    ListLinks,
    /// Add an interface address (`rvsip addr add`).
    AddAddr {
        /// The address.
        addr: crate::net::IfAddr,
    },
    /// Remove an interface address (`rvsip addr del`).
    DelAddr {
        /// The address.
        addr: crate::net::IfAddr,
    },
    /// Interface addresses of one port, or of all (`rvsip addr show`).
    ListAddrs {
        /// Which port, or all.
        #[serde(default)]
        dev: Option<String>,
    },
    /// Add a static route (`rvsip route add`).
    AddRoute {
        /// The route.
        route: crate::net::Route,
    },
    /// Remove a static route (`rvsip route del`).
    DelRoute {
        /// The route.
        route: crate::net::Route,
    },
    /// The routing table (`rvsip route show`).
    ListRoutes,
    /// Add a static (permanent) neighbour (`rvsip neigh add`).
    AddNeigh {
        /// The neighbour.
        neigh: crate::net::Neigh,
    },
    /// Remove a static neighbour (`rvsip neigh del`).
    DelNeigh {
        /// The neighbour.
        neigh: crate::net::Neigh,
    },
    /// The workers' neighbour caches, of one port or all (`rvsip neigh
    /// show`).
    ListNeighs {
        /// Which port, or all.
        #[serde(default)]
        dev: Option<String>,
    },
}

impl Request {
    /// Whether this request changes the configuration (and may go in a
    /// [`Request::Batch`]).
    pub fn is_change(&self) -> bool {
        !matches!(
            self,
            Request::ListServices { .. }
                | Request::ListConnections
                | Request::GetTimeouts
                | Request::GetLaddrs { .. }
                | Request::Batch { .. }
                | Request::ListLinks
                | Request::ListAddrs { .. }
                | Request::ListRoutes
                | Request::ListNeighs { .. }
        )
    }

    /// Whether this request changes the stack (addresses, routes,
    /// neighbours) rather than the balancer.
    pub fn is_stack_change(&self) -> bool {
        matches!(
            self,
            Request::AddAddr { .. }
                | Request::DelAddr { .. }
                | Request::AddRoute { .. }
                | Request::DelRoute { .. }
                | Request::AddNeigh { .. }
                | Request::DelNeigh { .. }
        )
    }
}

/// What a successful request returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reply {
    /// A change was applied.
    Done,
    /// Services.
    Services {
        /// The list.
        list: ServiceList,
    },
    /// Connection entries.
    Connections {
        /// The entries.
        connections: Vec<Connection>,
    },
    /// Timeouts.
    Timeouts {
        /// The timeouts.
        timeouts: Timeouts,
    },
    /// Local addresses per service.
    Laddrs {
        /// Per service.
        services: Vec<ServiceLaddrs>,
    },
    /// Ports.
    Links {
        /// By port id.
        links: Vec<crate::net::Link>,
    },
    /// Interface addresses.
    Addrs {
        /// In configuration order.
        addrs: Vec<crate::net::IfAddr>,
    },
    /// The routing table.
    Routes {
        /// Connected routes first, then static ones, each in order.
        routes: Vec<crate::net::RouteEntry>,
    },
    /// Neighbour-cache entries.
    Neighs {
        /// Per worker, sorted by port and address.
        neighs: Vec<crate::net::NeighEntry>,
    },
}

/// The kind of a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A value is out of range or inconsistent.
    Invalid,
    /// The service, real server or local address does not exist.
    NotFound,
    /// It exists already.
    Exists,
    /// The request could not be read.
    BadRequest,
    /// rvsd failed.
    Internal,
}

/// Why a request failed; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// The kind.
    pub code: ErrorCode,
    /// The field at fault as a path into the request (`service.scheduler`,
    /// `server.weight`), empty when the request as a whole is at fault.
    #[serde(default)]
    pub field: String,
    /// What is wrong, for a human.
    pub reason: String,
}

impl ApiError {
    /// An error about one field.
    pub fn new(code: ErrorCode, field: impl Into<String>, reason: impl Into<String>) -> Self {
        ApiError {
            code,
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.field, self.reason)
        }
    }
}

impl std::error::Error for ApiError {}

/// rvsd's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// Success.
    Ok(Reply),
    /// Failure; nothing changed.
    Error(ApiError),
}

impl From<Result<Reply, ApiError>> for Response {
    fn from(r: Result<Reply, ApiError>) -> Self {
        match r {
            Ok(reply) => Response::Ok(reply),
            Err(e) => Response::Error(e),
        }
    }
}
