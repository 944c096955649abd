//! Real servers ("destinations" in IPVS) and how packets reach them.

use core::fmt;
use core::net::IpAddr;

use super::ConfigError;

/// How packets are forwarded to a real server (ARCHITECTURE.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ForwardMode {
    /// Both addresses and ports rewritten: C→V becomes L→R.
    FullNat,
    /// Destination rewritten (masquerading): C→V becomes C→R; replies must
    /// route back through rvs.
    Nat,
    /// Direct routing: only the destination MAC changes.
    Dr,
    /// Tunnelling: the packet is encapsulated towards the real server.
    Tun(TunnelKind),
    /// Source NAT for outbound traffic.
    Snat,
}

/// The encapsulation TUN mode uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TunnelKind {
    /// IP in IP (RFC 2003) / IPv6 in IPv6 (RFC 2473).
    Ipip,
    /// GRE (RFC 2784).
    Gre,
}

impl ForwardMode {
    /// The name `ipvsadm -L` prints in the Forward column (DPVS spellings
    /// for its own modes).
    pub const fn ipvsadm_name(self) -> &'static str {
        match self {
            ForwardMode::FullNat => "FullNat",
            ForwardMode::Nat => "Masq",
            ForwardMode::Dr => "Route",
            ForwardMode::Tun(_) => "Tunnel",
            ForwardMode::Snat => "SNAT",
        }
    }

    /// Whether the real server's replies come back through rvs.
    pub const fn sees_replies(self) -> bool {
        matches!(
            self,
            ForwardMode::FullNat | ForwardMode::Nat | ForwardMode::Snat
        )
    }
}

impl fmt::Display for ForwardMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.ipvsadm_name())
    }
}

/// A real server as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DestSpec {
    /// Address.
    pub addr: IpAddr,
    /// Port (0: the client's destination port, for port-0 services and DR/TUN).
    pub port: u16,
    /// Weight; 0 = quiescent (no new connections, existing ones go on).
    pub weight: u32,
    /// Forwarding mode.
    pub mode: ForwardMode,
    /// Upper connection threshold (`-x`); 0 = none. At or above it the
    /// server takes no new connections.
    pub upper_threshold: u32,
    /// Lower connection threshold (`-y`); 0 = none. An overloaded server
    /// becomes available again below it (IPVS: below 3/4 of the upper
    /// threshold when no lower one is set).
    pub lower_threshold: u32,
}

/// Largest weight, as IPVS (`INT_MAX`).
pub const MAX_WEIGHT: u32 = i32::MAX as u32;

impl DestSpec {
    /// A server with weight 1, no thresholds.
    pub const fn new(addr: IpAddr, port: u16, mode: ForwardMode) -> Self {
        DestSpec {
            addr,
            port,
            weight: 1,
            mode,
            upper_threshold: 0,
            lower_threshold: 0,
        }
    }

    /// With weight `w`.
    pub const fn weight(mut self, w: u32) -> Self {
        self.weight = w;
        self
    }

    pub(crate) fn validate(&self, vip_is_v6: Option<bool>, vport: u16) -> Result<(), ConfigError> {
        if self.weight > MAX_WEIGHT {
            return Err(ConfigError::new(
                "weight",
                format!("{} is above the maximum {MAX_WEIGHT}", self.weight),
            ));
        }
        if self.addr.is_unspecified() || self.addr.is_multicast() {
            return Err(ConfigError::new(
                "addr",
                format!("{} is not a unicast address", self.addr),
            ));
        }
        if self.lower_threshold > 0
            && self.upper_threshold > 0
            && self.lower_threshold > self.upper_threshold
        {
            return Err(ConfigError::new(
                "lower_threshold",
                format!(
                    "{} is above the upper threshold {}",
                    self.lower_threshold, self.upper_threshold
                ),
            ));
        }
        let same_family = vip_is_v6.is_none_or(|v6| v6 == self.addr.is_ipv6());
        match self.mode {
            // FullNAT translates families (NAT64) through its local address.
            ForwardMode::FullNat => {}
            ForwardMode::Nat | ForwardMode::Dr | ForwardMode::Tun(_) | ForwardMode::Snat
                if !same_family =>
            {
                return Err(ConfigError::new(
                    "addr",
                    format!(
                        "{} mode needs a real server of the virtual address's family",
                        self.mode
                    ),
                ));
            }
            ForwardMode::Dr | ForwardMode::Tun(_) if self.port != 0 && self.port != vport => {
                return Err(ConfigError::new(
                    "port",
                    format!(
                        "{} mode cannot change the port ({} ≠ {vport}): packets reach the server unchanged",
                        self.mode, self.port
                    ),
                ));
            }
            _ => {}
        }
        Ok(())
    }
}
