//! Virtual services: what clients connect to, and how their flows are spread.

use core::fmt;
use core::net::{IpAddr, Ipv6Addr};
use core::time::Duration;

use rvs_wire::ip_proto;

use super::{ConfigError, DestSpec, ForwardMode};
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

    /// The VIP, for address services.
    pub fn addr(&self) -> Option<IpAddr> {
        match self {
            ServiceKey::Addr { addr, .. } => Some(from_v6(*addr)),
            ServiceKey::Fwmark { .. } => None,
        }
    }

    /// The port (0 for fwmark services).
    pub fn port(&self) -> u16 {
        match self {
            ServiceKey::Addr { port, .. } => *port,
            ServiceKey::Fwmark { .. } => 0,
        }
    }

    /// True if the service's family is IPv6.
    pub fn is_v6(&self) -> bool {
        match self {
            ServiceKey::Addr { addr, .. } => addr.to_ipv4_mapped().is_none(),
            ServiceKey::Fwmark { v6, .. } => *v6,
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
            ServiceKey::Addr { .. } => Some(v6),
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
            let needs_laddr = matches!(d.mode, ForwardMode::FullNat | ForwardMode::Snat);
            if needs_laddr && !spec.laddrs.iter().any(|l| l.is_ipv6() == d.addr.is_ipv6()) {
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

fn validate_key(spec: &ServiceSpec) -> Result<(), ConfigError> {
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
