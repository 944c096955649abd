//! Virtual services: what clients connect to, and how their flows are spread.

use core::fmt;
use core::net::{IpAddr, Ipv6Addr};
use core::time::Duration;

use rvs_wire::ip_proto;

use super::{ConfigError, DestSpec, ForwardMode};
use crate::conn::Timeouts;
use crate::flow::{from_v6, to_v6};
use crate::sched::{SchedConfig, Scheduler, ServerSpec};

/// What identifies a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceKey {
    /// Protocol, virtual address (IPv4 mapped into IPv6) and port. Port 0
    /// means every port (only with persistence, as in IPVS). ICMP echo
    /// services use port 0.
    Addr {
        /// `ip_proto::TCP`, `UDP`, `ICMP` or `ICMPV6`.
        proto: u8,
        /// The VIP.
        addr: Ipv6Addr,
        /// The port.
        port: u16,
    },
    /// A firewall mark (`ipvsadm -f`), per family.
    Fwmark {
        /// The mark.
        mark: u32,
        /// True for the IPv6 service of this mark.
        v6: bool,
    },
    /// A match on the packet rather than a VIP (DPVS's `-H`), used by SNAT:
    /// outbound flows of `proto` from the `src` network to the `dst`
    /// network. Matched only when no VIP service is.
    Match {
        /// `ip_proto::TCP`, `UDP` or `ICMP`/`ICMPV6`.
        proto: u8,
        /// Source network (IPv4 mapped into IPv6) …
        src: Ipv6Addr,
        /// … and its prefix length (counted on the mapped form: an IPv4 /24
        /// is 96 + 24).
        src_prefix: u8,
        /// Destination network.
        dst: Ipv6Addr,
        /// Its prefix length (0: any destination).
        dst_prefix: u8,
    },
}

impl ServiceKey {
    /// A TCP service.
    pub fn tcp(addr: IpAddr, port: u16) -> Self {
        ServiceKey::Addr {
            proto: ip_proto::TCP,
            addr: to_v6(addr),
            port,
        }
    }

    /// A UDP service.
    pub fn udp(addr: IpAddr, port: u16) -> Self {
        ServiceKey::Addr {
            proto: ip_proto::UDP,
            addr: to_v6(addr),
            port,
        }
    }

    /// An SNAT match: `proto` flows from `src/src_len` to `dst/dst_len`
    /// (prefix lengths in the address's own family).
    pub fn snat_match(proto: u8, src: IpAddr, src_len: u8, dst: IpAddr, dst_len: u8) -> Self {
        let mapped = |a: IpAddr, len: u8| match a {
            IpAddr::V4(_) => len.saturating_add(96),
            IpAddr::V6(_) => len,
        };
        ServiceKey::Match {
            proto,
            src: to_v6(src),
            src_prefix: mapped(src, src_len),
            dst: to_v6(dst),
            dst_prefix: if dst_len == 0 && src.is_ipv4() {
                96
            } else {
                mapped(dst, dst_len)
            },
        }
    }

    /// The VIP, for address services.
    pub fn addr(&self) -> Option<IpAddr> {
        match self {
            ServiceKey::Addr { addr, .. } => Some(from_v6(*addr)),
            ServiceKey::Fwmark { .. } | ServiceKey::Match { .. } => None,
        }
    }

    /// The port (0 for fwmark and match services).
    pub fn port(&self) -> u16 {
        match self {
            ServiceKey::Addr { port, .. } => *port,
            ServiceKey::Fwmark { .. } | ServiceKey::Match { .. } => 0,
        }
    }

    /// True if the service's family is IPv6.
    pub fn is_v6(&self) -> bool {
        match self {
            ServiceKey::Addr { addr, .. } => addr.to_ipv4_mapped().is_none(),
            ServiceKey::Fwmark { v6, .. } => *v6,
            ServiceKey::Match { src, .. } => src.to_ipv4_mapped().is_none(),
        }
    }

    /// For match services: whether a flow of `proto` from `src` to `dst`
    /// (mapped addresses) matches.
    pub fn matches(&self, proto: u8, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        match *self {
            ServiceKey::Match {
                proto: p,
                src: s,
                src_prefix,
                dst: d,
                dst_prefix,
            } => p == proto && in_prefix(src, s, src_prefix) && in_prefix(dst, d, dst_prefix),
            _ => false,
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ServiceKey::Addr { proto, addr, port } => {
                let p = match proto {
                    ip_proto::TCP => "TCP",
                    ip_proto::UDP => "UDP",
                    ip_proto::ICMP => "ICMP",
                    ip_proto::ICMPV6 => "ICMPv6",
                    _ => "proto",
                };
                match from_v6(addr) {
                    IpAddr::V4(a) => write!(f, "{p} {a}:{port}"),
                    IpAddr::V6(a) => write!(f, "{p} [{a}]:{port}"),
                }
            }
            ServiceKey::Fwmark { mark, v6 } => {
                write!(f, "FWM {mark}{}", if v6 { " IPv6" } else { "" })
            }
            ServiceKey::Match {
                proto,
                src,
                src_prefix,
                dst,
                dst_prefix,
            } => {
                let net = |a: Ipv6Addr, len: u8| match from_v6(a) {
                    IpAddr::V4(v4) => format!("{v4}/{}", len.saturating_sub(96)),
                    IpAddr::V6(v6) => format!("{v6}/{len}"),
                };
                write!(
                    f,
                    "MATCH proto {proto} from {} to {}",
                    net(src, src_prefix),
                    net(dst, dst_prefix)
                )
            }
        }
    }
}

/// Persistence (`ipvsadm -p timeout -M netmask`): connections from one
/// client network go to the same real server while a template lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Persistence {
    /// How long the template outlives the client's last connection.
    pub timeout: Duration,
    /// Prefix length of the client network that shares a template (32 or
    /// 128 for one address; `-M 255.255.255.0` is 24).
    pub prefix_len: u8,
}

impl Persistence {
    /// IPVS's default: 300 s, one client address.
    pub const fn default_for(v6: bool) -> Self {
        Persistence {
            timeout: Duration::from_secs(300),
            prefix_len: if v6 { 128 } else { 32 },
        }
    }
}

/// Where FullNAT puts the client's address for the real server (TOA,
/// TCP option 254).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ToaMode {
    /// No TOA.
    Off,
    /// In the first ACK and the first data segment, as DPVS does (what
    /// backend TOA modules read).
    #[default]
    FirstData,
    /// In the SYN.
    Syn,
}

/// A virtual service as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    /// What identifies it.
    pub key: ServiceKey,
    /// Scheduler and its options.
    pub sched: SchedConfig,
    /// Persistence, if any.
    pub persistence: Option<Persistence>,
    /// Most concurrent connections (per worker); 0 = unlimited.
    pub conn_limit: u32,
    /// TOA for FullNAT TCP.
    pub toa: ToaMode,
    /// UOA (client address for FullNAT UDP) in the first packets.
    pub uoa: bool,
    /// One-packet scheduling (`-o`, UDP): every datagram is scheduled on
    /// its own and no connection is kept.
    pub one_packet: bool,
    /// FullNAT/SNAT local addresses.
    pub laddrs: Vec<IpAddr>,
    /// Connection timeouts for this service, overriding the global ones.
    pub timeouts: Option<Timeouts>,
    /// Real servers.
    pub dests: Vec<DestSpec>,
}

impl ServiceSpec {
    /// A service with scheduler `sched`, no servers, no local addresses.
    pub fn new(key: ServiceKey, sched: impl Into<SchedConfig>) -> Self {
        ServiceSpec {
            key,
            sched: sched.into(),
            persistence: None,
            conn_limit: 0,
            toa: ToaMode::default(),
            uoa: false,
            one_packet: false,
            laddrs: Vec::new(),
            timeouts: None,
            dests: Vec::new(),
        }
    }
}

/// A validated service with its scheduler built.
#[derive(Debug)]
pub struct Service {
    /// The specification it was built from.
    pub spec: ServiceSpec,
    /// The scheduler's shared part (tables).
    pub scheduler: Scheduler,
}

impl Service {
    pub(crate) fn build(spec: ServiceSpec) -> Result<Service, ConfigError> {
        validate_key(&spec)?;
        let v6 = spec.key.is_v6();
        let vip_family = match spec.key {
            ServiceKey::Addr { .. } | ServiceKey::Match { .. } => Some(v6),
            ServiceKey::Fwmark { .. } => None,
        };
        for (i, d) in spec.dests.iter().enumerate() {
            d.validate(vip_family, spec.key.port())
                .map_err(|e| e.in_dest(i))?;
            if spec
                .dests
                .iter()
                .take(i)
                .any(|o| o.addr == d.addr && o.port == d.port)
            {
                return Err(ConfigError::new(
                    format!("dests[{i}]"),
                    format!("real server {}:{} appears twice", d.addr, d.port),
                ));
            }
            let is_match = matches!(spec.key, ServiceKey::Match { .. });
            if d.mode == ForwardMode::Snat && !is_match {
                return Err(ConfigError::new(
                    format!("dests[{i}].mode"),
                    "SNAT real servers belong to match services (-H), not to a VIP",
                ));
            }
            if matches!(d.mode, ForwardMode::FullNat | ForwardMode::Tun(_))
                && !spec.laddrs.iter().any(|l| l.is_ipv6() == d.addr.is_ipv6())
            {
                return Err(ConfigError::new(
                    format!("dests[{i}].mode"),
                    format!(
                        "{} to {} needs a local address of its family (add one with --add-laddr)",
                        d.mode, d.addr
                    ),
                ));
            }
        }
        for (i, l) in spec.laddrs.iter().enumerate() {
            if l.is_unspecified() || l.is_multicast() {
                return Err(ConfigError::new(
                    format!("laddrs[{i}]"),
                    format!("{l} is not a unicast address"),
                ));
            }
            if spec.laddrs.iter().take(i).any(|o| o == l) {
                return Err(ConfigError::new(
                    format!("laddrs[{i}]"),
                    format!("local address {l} appears twice"),
                ));
            }
        }
        if let Some(p) = spec.persistence {
            let max = if v6 { 128 } else { 32 };
            if p.prefix_len > max {
                return Err(ConfigError::new(
                    "persistence.netmask",
                    format!("prefix length {} exceeds {max}", p.prefix_len),
                ));
            }
            if p.timeout.is_zero() {
                return Err(ConfigError::new(
                    "persistence.timeout",
                    "must be at least 1 second",
                ));
            }
        }
        let servers: Vec<ServerSpec> = spec
            .dests
            .iter()
            .map(|d| ServerSpec::new(d.addr, d.port, d.weight))
            .collect();
        let scheduler = Scheduler::build(spec.sched, &servers)
            .map_err(|e| ConfigError::new("scheduler", e.to_string()))?;
        Ok(Service { spec, scheduler })
    }
}

/// Whether `addr` is in the network `net/len` (lengths over 128 never match).
fn in_prefix(addr: Ipv6Addr, net: Ipv6Addr, len: u8) -> bool {
    if len > 128 {
        return false;
    }
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    addr.to_bits() & mask == net.to_bits() & mask
}

fn validate_key(spec: &ServiceSpec) -> Result<(), ConfigError> {
    if let ServiceKey::Match {
        src_prefix,
        dst_prefix,
        ..
    } = spec.key
    {
        if src_prefix > 128 || dst_prefix > 128 {
            return Err(ConfigError::new("match", "prefix length out of range"));
        }
        if spec.dests.iter().any(|d| d.mode != ForwardMode::Snat) {
            return Err(ConfigError::new(
                "dests",
                "a match (SNAT) service takes only SNAT real servers (-J): the source addresses to use",
            ));
        }
        return Ok(());
    }
    let ServiceKey::Addr { proto, addr, port } = spec.key else {
        return Ok(());
    };
    let a = from_v6(addr);
    if a.is_unspecified() || a.is_multicast() {
        return Err(ConfigError::new(
            "addr",
            format!("{a} is not a unicast address"),
        ));
    }
    match proto {
        ip_proto::TCP | ip_proto::UDP => {
            if port == 0 && spec.persistence.is_none() {
                return Err(ConfigError::new(
                    "port",
                    "port 0 (all ports) is only allowed with persistence (-p)",
                ));
            }
        }
        ip_proto::ICMP | ip_proto::ICMPV6 => {
            if port != 0 {
                return Err(ConfigError::new(
                    "port",
                    "ICMP services have no port: use 0",
                ));
            }
        }
        other => {
            return Err(ConfigError::new(
                "protocol",
                format!("IP protocol {other} cannot be balanced: use TCP, UDP or ICMP"),
            ));
        }
    }
    if spec.one_packet && proto != ip_proto::UDP {
        return Err(ConfigError::new(
            "one_packet",
            "one-packet scheduling applies to UDP services only",
        ));
    }
    Ok(())
}
