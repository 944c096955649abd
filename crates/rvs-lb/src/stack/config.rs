//! The stack's configuration: ports, interface addresses, static routes and
//! static neighbours, as one immutable snapshot (`Arc<StackConfig>`), the
//! counterpart of the balancer's [`Config`](crate::config::Config).
//!
//! [`StackConfig::validate`] checks everything [`Node`](super::Node) relies
//! on and names the offending field (`routes[2].gateway`) the way the
//! balancer's configuration does; the node itself never fails on a
//! configuration (it skips what it cannot use), so validate first.

use core::net::IpAddr;

use rvs_wire::ethernet::MacAddr;

use crate::config::ConfigError;

/// One network port (a NIC, or a veth/macvlan end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    /// The port's identifier: what `Node::handle` is told a frame came
    /// from, and what `Action::Transmit` names.
    pub id: u16,
    /// A name for listings and errors.
    pub name: String,
    /// The port's MAC: the source of every frame sent from it.
    pub mac: MacAddr,
    /// The port's MTU (IP packet size, without the Ethernet header).
    pub mtu: u16,
}

/// An interface address. VIPs and FullNAT local addresses come from the
/// balancer's configuration and need not be listed here; the node owns
/// them too (answers ARP/ND and ping for them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrConfig {
    /// The address.
    pub addr: IpAddr,
    /// Its prefix length: the connected route `addr/prefix_len` via `port`.
    pub prefix_len: u8,
    /// The port it is on.
    pub port: u16,
}

/// A static route (`prefix_len` 0 for the default route).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteConfig {
    /// The network (host bits must be zero).
    pub prefix: IpAddr,
    /// Its length.
    pub prefix_len: u8,
    /// The next hop; `None` for an on-link route.
    pub gateway: Option<IpAddr>,
    /// The port packets leave from.
    pub port: u16,
}

/// The stack's configuration snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackConfig {
    /// Ports.
    pub ports: Vec<PortConfig>,
    /// Interface addresses.
    pub addrs: Vec<AddrConfig>,
    /// Static routes (connected routes come from `addrs`).
    pub routes: Vec<RouteConfig>,
    /// Permanent neighbour entries: address, MAC, port.
    pub static_neighbours: Vec<(IpAddr, MacAddr, u16)>,
    /// Service VIPs are owned (answered in ARP/ND, announced) only when
    /// they are also interface addresses. Set where VRRP (rvs-keepalived)
    /// decides which node answers for a VIP, as DPVS's VIPs need
    /// `dpip addr add`; clear, every configured VIP is answered.
    pub explicit_vips: bool,
}

/// Smallest MTU accepted (the IPv6 minimum, which also covers IPv4's).
pub const MIN_MTU: u16 = 1280;

fn max_len(a: IpAddr) -> u8 {
    match a {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// `addr` with the bits after `len` cleared.
pub fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

fn unusable(a: IpAddr) -> Option<&'static str> {
    if a.is_unspecified() {
        Some("the unspecified address")
    } else if a.is_multicast() {
        Some("a multicast address")
    } else if matches!(a, IpAddr::V4(v) if v.is_broadcast()) {
        Some("the broadcast address")
    } else {
        None
    }
}

impl StackConfig {
    /// Checks the configuration; the error names the field and says what
    /// was expected.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |f: String, r: String| Err(ConfigError::new(f, r));
        for (i, p) in self.ports.iter().enumerate() {
            if p.name.is_empty() {
                return err(format!("ports[{i}].name"), "a non-empty name".into());
            }
            if let Some(j) = self.ports.iter().take(i).position(|o| o.id == p.id) {
                return err(
                    format!("ports[{i}].id"),
                    format!("a unique port id ({} is also ports[{j}])", p.id),
                );
            }
            if self.ports.iter().take(i).any(|o| o.name == p.name) {
                return err(
                    format!("ports[{i}].name"),
                    format!("a unique name ({} is taken)", p.name),
                );
            }
            if !p.mac.is_unicast() || p.mac == MacAddr::ZERO {
                return err(
                    format!("ports[{i}].mac"),
                    format!("a unicast MAC, not {}", p.mac),
                );
            }
            if p.mtu < MIN_MTU {
                return err(
                    format!("ports[{i}].mtu"),
                    format!("at least {MIN_MTU}, not {}", p.mtu),
                );
            }
        }
        let has_port = |id: u16| self.ports.iter().any(|p| p.id == id);
        for (i, a) in self.addrs.iter().enumerate() {
            if let Some(what) = unusable(a.addr) {
                return err(
                    format!("addrs[{i}].addr"),
                    format!("a unicast address, not {what}"),
                );
            }
            if a.prefix_len > max_len(a.addr) {
                return err(
                    format!("addrs[{i}].prefix_len"),
                    format!("at most {}, not {}", max_len(a.addr), a.prefix_len),
                );
            }
            if !has_port(a.port) {
                return err(
                    format!("addrs[{i}].port"),
                    format!("the id of a configured port, not {}", a.port),
                );
            }
            if self.addrs.iter().take(i).any(|o| o.addr == a.addr) {
                return err(
                    format!("addrs[{i}].addr"),
                    format!("a unique address ({} is listed twice)", a.addr),
                );
            }
        }
        for (i, r) in self.routes.iter().enumerate() {
            if r.prefix_len > max_len(r.prefix) {
                return err(
                    format!("routes[{i}].prefix_len"),
                    format!("at most {}, not {}", max_len(r.prefix), r.prefix_len),
                );
            }
            if mask(r.prefix, r.prefix_len) != r.prefix {
                return err(
                    format!("routes[{i}].prefix"),
                    format!(
                        "a network with no host bits for /{} (did you mean {}?)",
                        r.prefix_len,
                        mask(r.prefix, r.prefix_len)
                    ),
                );
            }
            if let Some(g) = r.gateway {
                if g.is_ipv4() != r.prefix.is_ipv4() {
                    return err(
                        format!("routes[{i}].gateway"),
                        "an address of the prefix's family".into(),
                    );
                }
                if let Some(what) = unusable(g) {
                    return err(
                        format!("routes[{i}].gateway"),
                        format!("a unicast address, not {what}"),
                    );
                }
            }
            if !has_port(r.port) {
                return err(
                    format!("routes[{i}].port"),
                    format!("the id of a configured port, not {}", r.port),
                );
            }
            if self
                .routes
                .iter()
                .take(i)
                .any(|o| o.prefix == r.prefix && o.prefix_len == r.prefix_len)
            {
                return err(
                    format!("routes[{i}].prefix"),
                    format!(
                        "a unique prefix ({}/{} is listed twice)",
                        r.prefix, r.prefix_len
                    ),
                );
            }
        }
        for (i, &(addr, mac, port)) in self.static_neighbours.iter().enumerate() {
            if let Some(what) = unusable(addr) {
                return err(
                    format!("static_neighbours[{i}].addr"),
                    format!("a unicast address, not {what}"),
                );
            }
            if !mac.is_unicast() || mac == MacAddr::ZERO {
                return err(
                    format!("static_neighbours[{i}].mac"),
                    format!("a unicast MAC, not {mac}"),
                );
            }
            if !has_port(port) {
                return err(
                    format!("static_neighbours[{i}].port"),
                    format!("the id of a configured port, not {port}"),
                );
            }
        }
        Ok(())
    }

    /// The port with this id.
    pub fn port(&self, id: u16) -> Option<&PortConfig> {
        self.ports.iter().find(|p| p.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> StackConfig {
        StackConfig {
            ports: vec![PortConfig {
                id: 0,
                name: "eth0".into(),
                mac: MacAddr([2, 0, 0, 0, 0, 1]),
                mtu: 1500,
            }],
            addrs: vec![AddrConfig {
                addr: "10.0.0.1".parse().unwrap(),
                prefix_len: 24,
                port: 0,
            }],
            routes: vec![RouteConfig {
                prefix: "0.0.0.0".parse().unwrap(),
                prefix_len: 0,
                gateway: Some("10.0.0.254".parse().unwrap()),
                port: 0,
            }],
            static_neighbours: vec![],
            explicit_vips: false,
        }
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(base().validate(), Ok(()));
        let mut c = base();
        c.routes[0].prefix = "10.0.0.1".parse().unwrap();
        c.routes[0].prefix_len = 24;
        assert_eq!(c.validate().unwrap_err().field, "routes[0].prefix");
        let mut c = base();
        c.addrs[0].port = 7;
        assert_eq!(c.validate().unwrap_err().field, "addrs[0].port");
        let mut c = base();
        c.addrs[0].prefix_len = 33;
        assert_eq!(c.validate().unwrap_err().field, "addrs[0].prefix_len");
        let mut c = base();
        c.ports[0].mac = MacAddr::BROADCAST;
        assert_eq!(c.validate().unwrap_err().field, "ports[0].mac");
        let mut c = base();
        c.routes[0].gateway = Some("::1".parse().unwrap());
        assert_eq!(c.validate().unwrap_err().field, "routes[0].gateway");
        let mut c = base();
        c.ports.push(c.ports[0].clone());
        assert_eq!(c.validate().unwrap_err().field, "ports[1].id");
        let mut c = base();
        c.static_neighbours
            .push(("10.0.0.9".parse().unwrap(), MacAddr::ZERO, 0));
        assert_eq!(c.validate().unwrap_err().field, "static_neighbours[0].mac");
    }

    #[test]
    fn masks() {
        assert_eq!(
            mask("10.1.2.3".parse().unwrap(), 16),
            "10.1.0.0".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            mask("10.1.2.3".parse().unwrap(), 0),
            "0.0.0.0".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            mask("2001:db8::1".parse().unwrap(), 64),
            "2001:db8::".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            mask("2001:db8::1".parse().unwrap(), 128),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
    }
}
