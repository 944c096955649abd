//! The network side of the API (what `rvsip` drives, as DPVS's `dpip`):
//! ports ("links"), interface addresses, static routes and neighbours.
//! Ports are named by their interface name (`dev`), as in the daemon's
//! configuration file.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// An interface address: `addr/prefix_len` on port `dev`. The node answers
/// ARP/ND and ping for it, and `addr/prefix_len` is a connected route.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IfAddr {
    /// The address.
    pub addr: IpAddr,
    /// Its prefix length (the connected route's).
    pub prefix_len: u8,
    /// The port.
    pub dev: String,
}

impl fmt::Display for IfAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} dev {}", self.addr, self.prefix_len, self.dev)
    }
}

/// A static route.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Route {
    /// The network (no host bits); `0.0.0.0`/`::` with length 0 for the
    /// default route.
    pub prefix: IpAddr,
    /// Its length.
    pub prefix_len: u8,
    /// The next hop; `None` for an on-link route.
    #[serde(default)]
    pub via: Option<IpAddr>,
    /// The port. When adding, `None` takes the port of the connected route
    /// covering `via`; when deleting, `None` matches any port.
    #[serde(default)]
    pub dev: Option<String>,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.prefix, self.prefix_len)?;
        if let Some(v) = self.via {
            write!(f, " via {v}")?;
        }
        if let Some(d) = &self.dev {
            write!(f, " dev {d}")?;
        }
        Ok(())
    }
}

/// A neighbour: `addr` has MAC `lladdr` on port `dev`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Neigh {
    /// The neighbour's address.
    pub addr: IpAddr,
    /// Its MAC as `aa:bb:cc:dd:ee:ff` (needed to add, ignored to delete).
    #[serde(default)]
    pub lladdr: Option<String>,
    /// The port.
    pub dev: String,
}

impl fmt::Display for Neigh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.addr)?;
        if let Some(m) = &self.lladdr {
            write!(f, " lladdr {m}")?;
        }
        write!(f, " dev {}", self.dev)
    }
}

/// A port's counters, summed over the workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkStats {
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Receive errors the backend reports (none of rvs's backends
    /// reports any yet: 0).
    pub rx_errors: u64,
    /// Frames lost on receive because no buffer was free.
    pub rx_dropped: u64,
    /// Frames sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Transmit errors the backend reports (the TX ring was full when a
    /// frame was offered).
    pub tx_errors: u64,
    /// Frames the worker dropped because the TX ring did not take them.
    pub tx_dropped: u64,
}

/// A port as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The port id (listing order).
    pub id: u16,
    /// The interface name.
    pub name: String,
    /// MTU.
    pub mtu: u16,
    /// MAC as `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// The interface's operational state as the kernel reports it (`UP`,
    /// `DOWN`, `UNKNOWN`, ...).
    pub state: String,
    /// The I/O backend (`af_xdp`, `af_packet`) and XDP mode if any.
    pub backend: String,
    /// Queues (one per worker).
    pub queues: u16,
    /// The TAP that carries this port's exception path to the kernel, if
    /// any (where VRRP and other kernel traffic of the port is seen).
    #[serde(default)]
    pub tap: Option<String>,
    /// Counters.
    #[serde(default)]
    pub stats: LinkStats,
}

/// A route as listed: the node's routing table, connected routes included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteEntry {
    /// The route (`dev` always set).
    pub route: Route,
    /// The interface address packets from the node take on this route, if
    /// the port has one of the family.
    #[serde(default)]
    pub src: Option<IpAddr>,
    /// The port's MTU.
    pub mtu: u16,
    /// True for a connected route (from an interface address).
    pub connected: bool,
}

/// A neighbour-cache entry of one worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighEntry {
    /// The neighbour's address.
    pub addr: IpAddr,
    /// Its MAC (`None` while incomplete).
    #[serde(default)]
    pub lladdr: Option<String>,
    /// `INCOMPLETE`, `REACHABLE`, `STALE` or `PERMANENT`.
    pub state: String,
    /// The port.
    pub dev: String,
    /// The worker whose cache holds it (dpip's `core`).
    pub worker: u16,
    /// A static entry (configured).
    pub permanent: bool,
}

/// Parses `aa:bb:cc:dd:ee:ff` (also `-` separated), hex digits either case.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split([':', '-']);
    for b in &mut out {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ErrorCode, Request};
    use crate::validate;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn field_of(r: &Request) -> String {
        validate::request(r).unwrap_err().field
    }

    #[test]
    fn macs() {
        assert_eq!(parse_mac("02:AB:0c:1:2:3"), Some([2, 0xab, 0xc, 1, 2, 3]));
        assert_eq!(
            parse_mac("02-ab-0c-01-02-03"),
            Some([2, 0xab, 0xc, 1, 2, 3])
        );
        assert_eq!(parse_mac("02:ab:0c:01:02"), None);
        assert_eq!(parse_mac("02:ab:0c:01:02:03:04"), None);
        assert_eq!(parse_mac("02:ab:0c:01:02:zz"), None);
        assert_eq!(parse_mac("02:ab:0c:01:02:123"), None);
        assert_eq!(format_mac([2, 0xab, 0xc, 1, 2, 3]), "02:ab:0c:01:02:03");
    }

    #[test]
    fn requests_are_checked_with_their_field() {
        let a = |s: &str, len: u8| Request::AddAddr {
            addr: IfAddr {
                addr: ip(s),
                prefix_len: len,
                dev: "eth0".into(),
            },
        };
        assert_eq!(validate::request(&a("10.0.0.1", 24)), Ok(()));
        assert_eq!(field_of(&a("10.0.0.1", 33)), "addr.prefix_len");
        assert_eq!(field_of(&a("fd00::1", 129)), "addr.prefix_len");
        assert_eq!(validate::request(&a("fd00::1", 128)), Ok(()));
        assert_eq!(field_of(&a("224.0.0.1", 24)), "addr.addr");
        assert_eq!(field_of(&a("0.0.0.0", 24)), "addr.addr");
        let r = |p: &str, len: u8, via: Option<&str>, dev: Option<&str>| Request::AddRoute {
            route: Route {
                prefix: ip(p),
                prefix_len: len,
                via: via.map(ip),
                dev: dev.map(str::to_string),
            },
        };
        assert_eq!(
            validate::request(&r("10.9.0.0", 24, Some("10.0.0.3"), None)),
            Ok(())
        );
        assert_eq!(
            validate::request(&r("0.0.0.0", 0, None, Some("eth0"))),
            Ok(())
        );
        let e = validate::request(&r("10.9.0.1", 24, None, Some("eth0"))).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_str()),
            (ErrorCode::Invalid, "route.prefix")
        );
        assert!(e.reason.contains("10.9.0.0/24"), "{e}");
        assert_eq!(field_of(&r("10.9.0.0", 24, None, None)), "route.dev");
        assert_eq!(
            field_of(&r("10.9.0.0", 24, Some("fd00::1"), None)),
            "route.via"
        );
        assert_eq!(
            field_of(&r("10.9.0.0", 40, None, Some("e"))),
            "route.prefix_len"
        );
        let n = |m: Option<&str>| Request::AddNeigh {
            neigh: Neigh {
                addr: ip("10.0.0.9"),
                lladdr: m.map(str::to_string),
                dev: "eth0".into(),
            },
        };
        assert_eq!(validate::request(&n(Some("02:00:00:00:00:09"))), Ok(()));
        assert_eq!(field_of(&n(None)), "neigh.lladdr");
        assert_eq!(field_of(&n(Some("zz"))), "neigh.lladdr");
        assert_eq!(field_of(&n(Some("01:00:5e:00:00:01"))), "neigh.lladdr");
        assert_eq!(field_of(&n(Some("00:00:00:00:00:00"))), "neigh.lladdr");
        // Deleting needs no MAC.
        assert_eq!(
            validate::request(&Request::DelNeigh {
                neigh: Neigh {
                    addr: ip("10.0.0.9"),
                    lladdr: None,
                    dev: "eth0".into(),
                }
            }),
            Ok(())
        );
        assert!(!Request::ListNeighs { dev: None }.is_change());
        assert!(
            Request::AddAddr {
                addr: IfAddr {
                    addr: ip("10.0.0.1"),
                    prefix_len: 24,
                    dev: "e".into()
                }
            }
            .is_stack_change()
        );
    }

    #[test]
    fn wire_form() {
        let r = Request::AddRoute {
            route: Route {
                prefix: ip("10.9.0.0"),
                prefix_len: 24,
                via: Some(ip("10.0.0.3")),
                dev: Some("eth0".into()),
            },
        };
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(
            j,
            r#"{"op":"add_route","route":{"prefix":"10.9.0.0","prefix_len":24,"via":"10.0.0.3","dev":"eth0"}}"#
        );
        assert_eq!(serde_json::from_str::<Request>(&j).unwrap(), r);
        let l: Request = serde_json::from_str(r#"{"op":"list_neighs"}"#).unwrap();
        assert_eq!(l, Request::ListNeighs { dev: None });
    }
}
