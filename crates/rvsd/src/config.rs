//! The configuration file (TOML).
//!
//! Reading a file has two steps, and either one can fail with a
//! [`ConfigError`] that names the key path (`service[0].real[1].weight`) and
//! says what was expected; nothing starts unless both succeed:
//! 1. [`parse`]: syntax and types (serde; unknown keys are rejected), into
//!    the [`File`] structs, which mirror the file one to one.
//! 2. [`File::build`]: meaning: names resolve, addresses and prefixes parse,
//!    lists agree, and the balancer's own validation
//!    ([`rvs_lb::config::Config::build`]) passes. Its errors, which speak of
//!    `services[i].dests[j]`, are translated to the file's key names.
//!
//! What comes out is a [`Daemon`]: the daemon settings, the ports, the
//! stack's tables ([`StackSpec`]) and the balancer's [`Config`].
//!
//! ```toml
//! [daemon]
//! workers = 1          # worker threads (default 1)
//! cores = [1]          # one core per worker (default: 0, 1, 2, ...)
//! tick_ms = 10         # timer period (default 10)
//! announce_vips = true # answer ARP/ND for service VIPs; false: only for
//!                      # VIPs added as addresses (VRRP, rvsip addr add)
//!
//! [[port]]
//! name = "eth0"        # the interface
//! backend = "af_xdp"   # or "af_packet"
//! xdp_mode = "auto"    # "native", "generic" (af_xdp only)
//! mac = "02:00:00:00:00:01"   # default: the interface's
//! mtu = 1500                  # default: the interface's
//! tap = "rvs-eth0"     # exception device to the host kernel (alias: kni)
//!
//! [[addr]]
//! addr = "10.0.0.1/24"
//! port = "eth0"
//!
//! [[route]]
//! prefix = "0.0.0.0/0"
//! via = "10.0.0.254"   # omitted: directly connected
//! port = "eth0"
//!
//! [[neighbour]]
//! addr = "10.0.0.254"
//! mac = "02:00:00:00:00:fe"
//! port = "eth0"
//!
//! [[service]]
//! proto = "tcp"        # "udp", "icmp"
//! vip = "10.0.0.100"
//! port = 80
//! scheduler = "rr"     # ipvsadm -s names
//! sched_flags = "sh-port"     # ipvsadm -b
//! persistence = { timeout = 300, prefix = 24 }
//! toa = "first-data"   # "off", "syn"
//! uoa = false
//! laddrs = ["10.0.0.2"]
//! [[service.real]]
//! addr = "10.0.1.10"
//! port = 8080          # default: the service's port
//! weight = 1
//! mode = "fullnat"     # "nat", "dr", "tun", "tun-gre", "snat"
//! upper_threshold = 0
//! lower_threshold = 0
//!
//! [timeouts]           # seconds; ipvsadm --set
//! tcp = 900
//! tcp_fin = 120
//! udp = 300
//! icmp = 60
//!
//! [api]
//! socket = "/run/rvs/rvsd.sock"       # "" turns the API off
//! state = "/var/lib/rvs/state.json"   # saved running configuration
//! http_listen = ""                    # HTTP/JSON API on loopback, off by default
//! http_token_file = ""                # its bearer token (required with it)
//!
//! [metrics]
//! listen = "127.0.0.1:9469"   # Prometheus /metrics; "" turns it off
//! ```

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use rvs_lb::config::{
    Config, ConfigError, DestSpec, ForwardMode, Persistence, ServiceKey, ServiceSpec, ToaMode,
    TunnelKind,
};
use rvs_lb::conn::{TcpState, Timeouts};
use rvs_lb::sched::{SchedConfig, SchedFlags, SchedulerKind};
use rvs_lb::stack::config::MIN_MTU;
use rvs_lb::stack::{AddrConfig, PortConfig, RouteConfig, StackConfig};
use rvs_wire::ethernet::MacAddr as WireMac;
use serde::Deserialize;

/// The file, as written.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct File {
    /// `[daemon]`.
    #[serde(default)]
    pub daemon: DaemonSection,
    /// `[[port]]`.
    #[serde(default)]
    pub port: Vec<PortSection>,
    /// `[[addr]]`.
    #[serde(default)]
    pub addr: Vec<AddrSection>,
    /// `[[route]]`.
    #[serde(default)]
    pub route: Vec<RouteSection>,
    /// `[[neighbour]]`.
    #[serde(default)]
    pub neighbour: Vec<NeighbourSection>,
    /// `[[service]]`.
    #[serde(default)]
    pub service: Vec<ServiceSection>,
    /// `[timeouts]`.
    #[serde(default)]
    pub timeouts: TimeoutsSection,
    /// `[api]`.
    #[serde(default)]
    pub api: ApiSection,
    /// `[metrics]`.
    #[serde(default)]
    pub metrics: MetricsSection,
}

/// `[metrics]`: the Prometheus endpoint (see `crate::metrics`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// `ADDR:PORT` to serve `/metrics` on (default `127.0.0.1:9469`; `""`
    /// turns the endpoint off).
    pub listen: Option<String>,
}

/// `[api]`: the control socket and the saved running configuration (see
/// `crate::api`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// Unix socket path (default `/run/rvs/rvsd.sock`; `""` turns the API off).
    pub socket: Option<String>,
    /// State file the running configuration is saved to on every change and
    /// restored from at start (default: none).
    pub state: Option<String>,
    /// Loopback `ADDR:PORT` of the HTTP/JSON API (default off; see
    /// `crate::api::http`).
    pub http_listen: Option<String>,
    /// File holding the HTTP API's bearer token (required with
    /// `http_listen`).
    pub http_token_file: Option<String>,
}

/// `[daemon]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DaemonSection {
    /// Worker threads.
    #[serde(default = "one")]
    pub workers: u16,
    /// The core of each worker.
    pub cores: Option<Vec<usize>>,
    /// Timer period in milliseconds.
    #[serde(default = "ten")]
    pub tick_ms: u64,
    /// Connection table capacity per worker.
    #[serde(default = "conn_capacity")]
    pub conn_capacity: u32,
    /// Answer ARP/ND for every service VIP (the default). `false` leaves
    /// that to whoever adds the VIP as an interface address: VRRP
    /// (rvs-keepalived) on the MASTER, or `rvsip addr add`.
    #[serde(default = "yes")]
    pub announce_vips: bool,
}

fn one() -> u16 {
    1
}
fn ten() -> u64 {
    10
}
fn yes() -> bool {
    true
}
fn conn_capacity() -> u32 {
    1 << 18
}

impl Default for DaemonSection {
    fn default() -> Self {
        DaemonSection {
            workers: 1,
            cores: None,
            tick_ms: 10,
            conn_capacity: conn_capacity(),
            announce_vips: true,
        }
    }
}

/// The packet I/O backend of a port.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// AF_XDP (kernel bypass).
    AfXdp,
    /// AF_PACKET with TPACKET_V3 rings.
    AfPacket,
}

/// Where the XDP program runs.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum XdpMode {
    /// Native where the driver has it, generic otherwise.
    #[default]
    Auto,
    /// Native or fail.
    Native,
    /// Generic (SKB) mode.
    Generic,
}

/// `[[port]]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PortSection {
    /// Interface name.
    pub name: String,
    /// Backend.
    pub backend: Backend,
    /// XDP attach mode (AF_XDP).
    pub xdp_mode: Option<XdpMode>,
    /// MAC address; the interface's when absent.
    pub mac: Option<String>,
    /// MTU; the interface's when absent.
    pub mtu: Option<u16>,
    /// The exception device (TAP) to the host kernel.
    #[serde(alias = "kni")]
    pub tap: Option<String>,
}

/// `[[addr]]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AddrSection {
    /// `address/prefix`.
    pub addr: String,
    /// Port name.
    pub port: String,
}

/// `[[route]]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteSection {
    /// `network/prefix`.
    pub prefix: String,
    /// Gateway; none for a connected route.
    pub via: Option<IpAddr>,
    /// Port name.
    pub port: String,
}

/// `[[neighbour]]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NeighbourSection {
    /// Address.
    pub addr: IpAddr,
    /// MAC address.
    pub mac: String,
    /// Port name.
    pub port: String,
}

/// Protocol of a service.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP echo (ICMPv6 for an IPv6 VIP).
    Icmp,
}

/// TOA mode as written.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Toa {
    /// No TOA.
    Off,
    /// First ACK and first data segment.
    FirstData,
    /// In the SYN.
    Syn,
}

/// Forwarding mode as written.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// FullNAT.
    Fullnat,
    /// NAT (masquerade).
    Nat,
    /// Direct routing.
    Dr,
    /// IPIP tunnel.
    Tun,
    /// GRE tunnel.
    TunGre,
    /// Source NAT.
    Snat,
}

/// `persistence = { timeout = 300, prefix = 24 }`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PersistenceSection {
    /// Seconds.
    #[serde(default = "persist_timeout")]
    pub timeout: u64,
    /// Client network prefix length (default: one address).
    pub prefix: Option<u8>,
}

fn persist_timeout() -> u64 {
    300
}

/// `[[service]]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceSection {
    /// Protocol.
    pub proto: Proto,
    /// Virtual address.
    pub vip: IpAddr,
    /// Port (0 or absent for ICMP).
    #[serde(default)]
    pub port: u16,
    /// Scheduler name.
    #[serde(default = "rr")]
    pub scheduler: String,
    /// Scheduler flags (`ipvsadm -b`).
    pub sched_flags: Option<String>,
    /// Persistence.
    pub persistence: Option<PersistenceSection>,
    /// TOA.
    pub toa: Option<Toa>,
    /// UOA.
    #[serde(default)]
    pub uoa: bool,
    /// One-packet scheduling (UDP).
    #[serde(default)]
    pub one_packet: bool,
    /// Connection limit per worker.
    #[serde(default)]
    pub conn_limit: u32,
    /// Local addresses (FullNAT).
    #[serde(default)]
    pub laddrs: Vec<IpAddr>,
    /// Timeouts of this service.
    pub timeouts: Option<TimeoutsSection>,
    /// Real servers.
    #[serde(default)]
    pub real: Vec<RealSection>,
}

fn rr() -> String {
    "rr".to_string()
}

/// `[[service.real]]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RealSection {
    /// Address.
    pub addr: IpAddr,
    /// Port (default: the service's).
    pub port: Option<u16>,
    /// Weight.
    #[serde(default = "weight")]
    pub weight: u32,
    /// Forwarding mode.
    pub mode: Mode,
    /// Upper connection threshold.
    #[serde(default)]
    pub upper_threshold: u32,
    /// Lower connection threshold.
    #[serde(default)]
    pub lower_threshold: u32,
}

fn weight() -> u32 {
    1
}

/// `[timeouts]`, in seconds.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsSection {
    /// TCP ESTABLISHED.
    pub tcp: Option<u64>,
    /// TCP FIN_WAIT.
    pub tcp_fin: Option<u64>,
    /// UDP.
    pub udp: Option<u64>,
    /// ICMP.
    pub icmp: Option<u64>,
}

/// A 48-bit MAC address.
pub type MacAddr = [u8; 6];

/// A port, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// Index (the stack's port id).
    pub id: u16,
    /// Interface.
    pub name: String,
    /// Backend.
    pub backend: Backend,
    /// XDP mode.
    pub xdp_mode: XdpMode,
    /// MAC, when configured (else read from the interface at start).
    pub mac: Option<MacAddr>,
    /// MTU, when configured.
    pub mtu: Option<u16>,
    /// TAP device name.
    pub tap: Option<String>,
}

/// An interface address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrSpec {
    /// Address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
    /// Port id.
    pub port: u16,
}

/// A route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec {
    /// Network.
    pub prefix: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
    /// Gateway.
    pub gateway: Option<IpAddr>,
    /// Port id.
    pub port: u16,
}

/// The stack's tables, as in the file (the daemon turns them into the
/// stack's configuration once ports' MACs and MTUs are known).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackSpec {
    /// Ports.
    pub ports: Vec<PortSpec>,
    /// Interface addresses.
    pub addrs: Vec<AddrSpec>,
    /// Routes.
    pub routes: Vec<RouteSpec>,
    /// Static neighbours.
    pub neighbours: Vec<(IpAddr, MacAddr, u16)>,
    /// VIPs are answered only when they are interface addresses
    /// (`announce_vips = false`).
    pub explicit_vips: bool,
}

/// Daemon settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSpec {
    /// Workers.
    pub workers: u16,
    /// Core of each worker (None: not pinned).
    pub cores: Option<Vec<usize>>,
    /// Timer period.
    pub tick: Duration,
    /// Connection table capacity per worker.
    pub conn_capacity: u32,
}

/// Everything a file says, validated.
#[derive(Debug)]
pub struct Daemon {
    /// Daemon settings.
    pub daemon: DaemonSpec,
    /// Stack tables.
    pub stack: StackSpec,
    /// The balancer's services (what [`Daemon::lb`] was built from).
    pub services: Vec<ServiceSpec>,
    /// The balancer's configuration.
    pub lb: Config,
    /// `[api]`.
    pub api: ApiSection,
    /// `[metrics]`: where to serve `/metrics` (`None`: off).
    pub metrics: Option<crate::metrics::Listen>,
}

fn err(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::new(field, reason)
}

/// Parses the text of a configuration file (syntax and types only).
pub fn parse(text: &str) -> Result<File, ConfigError> {
    let de = toml::de::Deserializer::parse(text).map_err(|e| toml_error("syntax", &e, text))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." {
            "syntax".to_string()
        } else {
            path
        };
        toml_error(&path, e.inner(), text)
    })
}

fn toml_error(path: &str, e: &toml::de::Error, text: &str) -> ConfigError {
    let msg = e.message().trim_end().to_string();
    let line = e.span().map(|s| {
        text.get(..s.start)
            .map_or(0, |t| t.bytes().filter(|&b| b == b'\n').count())
            + 1
    });
    let reason = match line {
        Some(l) => format!("{msg} (line {l})"),
        None => msg,
    };
    err(path, reason)
}

/// Parses and validates a configuration file's text.
pub fn load(text: &str) -> Result<Daemon, ConfigError> {
    parse(text)?.build()
}

impl File {
    /// Validates the file and builds the daemon's configuration.
    pub fn build(&self) -> Result<Daemon, ConfigError> {
        let daemon = self.daemon_spec()?;
        let stack = self.stack_spec()?;
        // The stack's own checks, with the MACs and MTUs the file leaves to
        // the interfaces stood in for (the daemon checks again with the
        // real ones).
        let placeholder: Vec<(MacAddr, u16)> = stack
            .ports
            .iter()
            .map(|p| (p.mac.unwrap_or([2, 0, 0, 0, 0, 1]), p.mtu.unwrap_or(1500)))
            .collect();
        stack_config(&stack, &placeholder)?;
        let services = self
            .service
            .iter()
            .enumerate()
            .map(|(i, s)| s.spec().map_err(|e| prefix(&format!("service[{i}]"), e)))
            .collect::<Result<Vec<_>, _>>()?;
        let timeouts =
            timeouts(&self.timeouts, Timeouts::default()).map_err(|e| prefix("timeouts", e))?;
        let lb = Config::build(services.clone(), timeouts).map_err(translate)?;
        crate::api::http::check(&self.api).map_err(|(f, r)| err(f, r))?;
        Ok(Daemon {
            daemon,
            stack,
            services,
            lb,
            api: self.api.clone(),
            metrics: crate::metrics::Listen::parse(self.metrics.listen.as_deref())
                .map_err(|r| err("metrics.listen", r))?,
        })
    }

    fn daemon_spec(&self) -> Result<DaemonSpec, ConfigError> {
        let d = &self.daemon;
        if d.workers == 0 || d.workers > 256 {
            return Err(err(
                "daemon.workers",
                format!("{} workers: expected 1 to 256", d.workers),
            ));
        }
        if let Some(cores) = &d.cores {
            if cores.len() != usize::from(d.workers) {
                return Err(err(
                    "daemon.cores",
                    format!(
                        "{} cores for {} workers: expected one core per worker",
                        cores.len(),
                        d.workers
                    ),
                ));
            }
            for (i, c) in cores.iter().enumerate() {
                if cores.iter().take(i).any(|o| o == c) {
                    return Err(err(
                        format!("daemon.cores[{i}]"),
                        format!("core {c} is given to two workers"),
                    ));
                }
            }
        }
        if d.tick_ms == 0 || d.tick_ms > 1000 {
            return Err(err(
                "daemon.tick_ms",
                format!("{}: expected 1 to 1000 milliseconds", d.tick_ms),
            ));
        }
        if d.conn_capacity < 1024 {
            return Err(err(
                "daemon.conn_capacity",
                format!("{}: expected at least 1024", d.conn_capacity),
            ));
        }
        Ok(DaemonSpec {
            workers: d.workers,
            cores: d.cores.clone(),
            tick: Duration::from_millis(d.tick_ms),
            conn_capacity: d.conn_capacity,
        })
    }

    fn stack_spec(&self) -> Result<StackSpec, ConfigError> {
        let mut spec = StackSpec {
            explicit_vips: !self.daemon.announce_vips,
            ..StackSpec::default()
        };
        if self.port.is_empty() {
            return Err(err("port", "no [[port]]: expected at least one"));
        }
        let mut taps = HashSet::new();
        for (i, p) in self.port.iter().enumerate() {
            let at = |k: &str| format!("port[{i}].{k}");
            if p.name.is_empty() || p.name.len() > 15 || p.name.contains(['/', ' ']) {
                return Err(err(
                    at("name"),
                    format!("`{}`: expected an interface name (1 to 15 bytes)", p.name),
                ));
            }
            if self.port.iter().take(i).any(|o| o.name == p.name) {
                return Err(err(
                    at("name"),
                    format!("interface `{}` is configured twice", p.name),
                ));
            }
            if p.xdp_mode.is_some() && p.backend != Backend::AfXdp {
                return Err(err(at("xdp_mode"), "only for backend = \"af_xdp\""));
            }
            let mac = p
                .mac
                .as_deref()
                .map(|m| parse_mac(m).map_err(|r| err(at("mac"), r)))
                .transpose()?;
            if let Some(mtu) = p.mtu
                && !(MIN_MTU..=9000).contains(&mtu)
            {
                return Err(err(at("mtu"), format!("{mtu}: expected {MIN_MTU} to 9000")));
            }
            if let Some(t) = &p.tap {
                if t.is_empty() || t.len() > 15 {
                    return Err(err(
                        at("tap"),
                        format!("`{t}`: expected an interface name (1 to 15 bytes)"),
                    ));
                }
                if !taps.insert(t.clone()) || self.port.iter().any(|o| &o.name == t) {
                    return Err(err(at("tap"), format!("interface `{t}` is used twice")));
                }
            }
            spec.ports.push(PortSpec {
                id: u16::try_from(i).map_err(|_| err("port", "too many ports"))?,
                name: p.name.clone(),
                backend: p.backend,
                xdp_mode: p.xdp_mode.unwrap_or_default(),
                mac,
                mtu: p.mtu,
                tap: p.tap.clone(),
            });
        }
        let port_id = |name: &str, field: String| {
            self.port
                .iter()
                .position(|p| p.name == name)
                .and_then(|i| u16::try_from(i).ok())
                .ok_or_else(|| {
                    let known: Vec<_> = self.port.iter().map(|p| format!("`{}`", p.name)).collect();
                    err(
                        field,
                        format!(
                            "no port named `{name}` (expected one of the [[port]] names: {})",
                            known.join(", ")
                        ),
                    )
                })
        };
        for (i, a) in self.addr.iter().enumerate() {
            let (addr, prefix_len) =
                parse_prefix(&a.addr).map_err(|r| err(format!("addr[{i}].addr"), r))?;
            if addr.is_unspecified() || addr.is_multicast() {
                return Err(err(
                    format!("addr[{i}].addr"),
                    format!("{addr} is not a unicast address"),
                ));
            }
            if spec.addrs.iter().any(|o: &AddrSpec| o.addr == addr) {
                return Err(err(
                    format!("addr[{i}].addr"),
                    format!("{addr} is configured twice"),
                ));
            }
            let port = port_id(&a.port, format!("addr[{i}].port"))?;
            spec.addrs.push(AddrSpec {
                addr,
                prefix_len,
                port,
            });
        }
        for (i, r) in self.route.iter().enumerate() {
            let (prefix, prefix_len) =
                parse_prefix(&r.prefix).map_err(|e| err(format!("route[{i}].prefix"), e))?;
            if let Some(via) = r.via {
                if via.is_ipv4() != prefix.is_ipv4() {
                    return Err(err(
                        format!("route[{i}].via"),
                        format!("{via} is not of the family of {}", r.prefix),
                    ));
                }
                if via.is_unspecified() || via.is_multicast() {
                    return Err(err(
                        format!("route[{i}].via"),
                        format!("{via} is not a unicast address"),
                    ));
                }
            }
            let port = port_id(&r.port, format!("route[{i}].port"))?;
            spec.routes.push(RouteSpec {
                prefix: mask(prefix, prefix_len),
                prefix_len,
                gateway: r.via,
                port,
            });
        }
        for (i, n) in self.neighbour.iter().enumerate() {
            let mac = parse_mac(&n.mac).map_err(|r| err(format!("neighbour[{i}].mac"), r))?;
            let port = port_id(&n.port, format!("neighbour[{i}].port"))?;
            spec.neighbours.push((n.addr, mac, port));
        }
        Ok(spec)
    }
}

impl ServiceSection {
    fn spec(&self) -> Result<ServiceSpec, ConfigError> {
        let kind: SchedulerKind = self
            .scheduler
            .parse()
            .map_err(|e: rvs_lb::sched::ParseError| err("scheduler", e.to_string()))?;
        let mut sched = SchedConfig::new(kind);
        if let Some(f) = &self.sched_flags {
            sched.flags =
                SchedFlags::parse(kind, f).map_err(|e| err("sched_flags", e.to_string()))?;
        }
        let key = match self.proto {
            Proto::Tcp => ServiceKey::tcp(self.vip, self.port),
            Proto::Udp => ServiceKey::udp(self.vip, self.port),
            Proto::Icmp => ServiceKey::Addr {
                proto: if self.vip.is_ipv4() {
                    rvs_wire::ip_proto::ICMP
                } else {
                    rvs_wire::ip_proto::ICMPV6
                },
                addr: rvs_lb::flow::to_v6(self.vip),
                port: self.port,
            },
        };
        let mut spec = ServiceSpec::new(key, sched);
        if let Some(p) = self.persistence {
            let mut persist = Persistence::default_for(self.vip.is_ipv6());
            persist.timeout = Duration::from_secs(p.timeout);
            if let Some(prefix) = p.prefix {
                persist.prefix_len = prefix;
            }
            spec.persistence = Some(persist);
        }
        spec.toa = match self.toa {
            None => ToaMode::default(),
            Some(Toa::Off) => ToaMode::Off,
            Some(Toa::FirstData) => ToaMode::FirstData,
            Some(Toa::Syn) => ToaMode::Syn,
        };
        spec.uoa = self.uoa;
        spec.one_packet = self.one_packet;
        spec.conn_limit = self.conn_limit;
        spec.laddrs = self.laddrs.clone();
        spec.timeouts = self
            .timeouts
            .as_ref()
            .map(|t| timeouts(t, Timeouts::default()).map_err(|e| prefix("timeouts", e)))
            .transpose()?;
        for r in &self.real {
            let mode = match r.mode {
                Mode::Fullnat => ForwardMode::FullNat,
                Mode::Nat => ForwardMode::Nat,
                Mode::Dr => ForwardMode::Dr,
                Mode::Tun => ForwardMode::Tun(TunnelKind::Ipip),
                Mode::TunGre => ForwardMode::Tun(TunnelKind::Gre),
                Mode::Snat => ForwardMode::Snat,
            };
            let mut d = DestSpec::new(r.addr, r.port.unwrap_or(self.port), mode).weight(r.weight);
            d.upper_threshold = r.upper_threshold;
            d.lower_threshold = r.lower_threshold;
            spec.dests.push(d);
        }
        Ok(spec)
    }
}

fn timeouts(t: &TimeoutsSection, base: Timeouts) -> Result<Timeouts, ConfigError> {
    let mut out = base;
    let secs = |v: Option<u64>, name: &str| -> Result<Option<Duration>, ConfigError> {
        match v {
            None => Ok(None),
            Some(s) if (1..=31 * 24 * 3600).contains(&s) => Ok(Some(Duration::from_secs(s))),
            Some(s) => Err(err(
                name,
                format!("{s}: expected 1 to 2678400 seconds (31 days)"),
            )),
        }
    };
    if let Some(d) = secs(t.tcp, "tcp")? {
        out.set_tcp(TcpState::Established, d);
    }
    if let Some(d) = secs(t.tcp_fin, "tcp_fin")? {
        out.set_tcp(TcpState::FinWait, d);
    }
    if let Some(d) = secs(t.udp, "udp")? {
        out.set_udp(d);
    }
    if let Some(d) = secs(t.icmp, "icmp")? {
        out.set_icmp(d);
    }
    Ok(out)
}

fn prefix(p: &str, mut e: ConfigError) -> ConfigError {
    e.field = if e.field.is_empty() {
        p.to_string()
    } else {
        format!("{p}.{}", e.field)
    };
    e
}

/// The stack's configuration from the file's tables and each port's MAC
/// and MTU, checked by [`StackConfig::validate`] (its errors translated to
/// the file's key paths).
pub fn stack_config(
    spec: &StackSpec,
    ports: &[(MacAddr, u16)],
) -> Result<StackConfig, ConfigError> {
    let cfg = StackConfig {
        ports: spec
            .ports
            .iter()
            .zip(ports)
            .map(|(p, &(mac, mtu))| PortConfig {
                id: p.id,
                name: p.name.clone(),
                mac: WireMac(mac),
                mtu,
            })
            .collect(),
        addrs: spec
            .addrs
            .iter()
            .map(|a| AddrConfig {
                addr: a.addr,
                prefix_len: a.prefix_len,
                port: a.port,
            })
            .collect(),
        routes: spec
            .routes
            .iter()
            .map(|r| RouteConfig {
                prefix: r.prefix,
                prefix_len: r.prefix_len,
                gateway: r.gateway,
                port: r.port,
            })
            .collect(),
        static_neighbours: spec
            .neighbours
            .iter()
            .map(|&(a, m, p)| (a, WireMac(m), p))
            .collect(),
        explicit_vips: spec.explicit_vips,
    };
    cfg.validate().map_err(translate_stack)?;
    Ok(cfg)
}

/// Translates a stack error (`ports[i]`, `addrs[i].prefix_len`,
/// `routes[i].gateway`, `static_neighbours[i]`) to the file's key path.
pub fn translate_stack(mut e: ConfigError) -> ConfigError {
    let mut out: Vec<String> = Vec::new();
    let mut table = "";
    for seg in e.field.split('.') {
        let (name, index) = match seg.find('[') {
            Some(i) => (seg.get(..i).unwrap_or(seg), seg.get(i..).unwrap_or("")),
            None => (seg, ""),
        };
        let name = match (table, name) {
            ("", "ports") => "port",
            ("", "addrs") => "addr",
            ("", "routes") => "route",
            ("", "static_neighbours") => "neighbour",
            ("addr", "prefix_len") => "addr",
            ("route", "prefix_len") => "prefix",
            ("route", "gateway") => "via",
            (_, n) => n,
        };
        if table.is_empty() {
            table = match name {
                "port" => "port",
                "addr" => "addr",
                "route" => "route",
                _ => "other",
            };
        }
        out.push(format!("{name}{index}"));
    }
    e.field = out.join(".");
    e
}

/// Translates a balancer error (`services[i].dests[j].field`) to the file's
/// key path (`service[i].real[j].field`).
pub fn translate(mut e: ConfigError) -> ConfigError {
    let mut out = Vec::new();
    let mut in_dest = false;
    for seg in e.field.split('.') {
        let (name, index) = match seg.find('[') {
            Some(i) => (seg.get(..i).unwrap_or(seg), seg.get(i..).unwrap_or("")),
            None => (seg, ""),
        };
        let name = match (name, in_dest) {
            ("services", _) => "service",
            ("dests", _) => {
                in_dest = true;
                "real"
            }
            ("addr", false) => "vip",
            ("protocol", false) => "proto",
            ("netmask", false) => "prefix",
            (n, _) => n,
        };
        out.push(format!("{name}{index}"));
    }
    e.field = out.join(".");
    e
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Result<MacAddr, String> {
    let bad = || format!("`{s}`: expected a MAC address such as 02:00:00:00:00:01");
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        let p = parts.next().ok_or_else(bad)?;
        if p.len() != 2 {
            return Err(bad());
        }
        *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    if mac[0] & 1 != 0 || mac == [0; 6] {
        return Err(format!("`{s}`: expected a unicast MAC address"));
    }
    Ok(mac)
}

/// Parses `address/len`.
pub fn parse_prefix(s: &str) -> Result<(IpAddr, u8), String> {
    let bad = || format!("`{s}`: expected address/prefix-length such as 10.0.0.1/24");
    let (a, l) = s.split_once('/').ok_or_else(bad)?;
    let addr: IpAddr = a.parse().map_err(|_| bad())?;
    let len: u8 = l.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if len > max {
        return Err(format!("`{s}`: prefix length {len} exceeds {max}"));
    }
    Ok((addr, len))
}

/// `addr` with the bits past `len` cleared.
pub fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4((a.to_bits() & m).into())
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6((a.to_bits() & m).into())
        }
    }
}

#[cfg(test)]
mod tests;
