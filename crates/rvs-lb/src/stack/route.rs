//! The routing table: longest-prefix match over connected routes (one per
//! distinct prefix of the interface addresses), static routes and the
//! default route, IPv4 and IPv6.
//!
//! # Structure and cost
//! One hash map per family keyed by (prefix length, masked address), plus
//! the list of prefix lengths present, longest first. A lookup masks the
//! address once per length present and probes the map: O(number of distinct
//! lengths) hash probes, typically 2–4 (a connected /24, a /32 or two, the
//! default /0), never more than 33 (IPv4) or 129 (IPv6). It allocates
//! nothing; the table is rebuilt whole at `apply` (off the packet path).
//! A full Internet table would want a DIR-24-8 or a Poptrie; a load
//! balancer's few routes do not.
//!
//! # Connected routes are derived, not counted
//! The table is rebuilt from the *whole* address list on every
//! configuration change, so removing one of two addresses in a prefix
//! keeps the prefix's connected route for as long as any address in it
//! remains (DPVS removed the shared route with the first address,
//! ARCHITECTURE.md §10). Where a static route names the same prefix as a
//! connected one, the connected route wins, as the kernel prefers it.

use core::net::IpAddr;

use hashbrown::HashMap;

use super::config::{StackConfig, mask};

/// Where a route sends packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The port packets leave from.
    pub port: u16,
    /// The next hop, or `None` when the destination is on-link.
    pub gateway: Option<IpAddr>,
    /// True for a connected route (from an interface address).
    pub connected: bool,
}

/// One route as listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteEntry {
    /// Network.
    pub prefix: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
    /// What it does.
    pub route: Route,
}

/// A longest-prefix-match table.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    /// (prefix length, masked address as u128) → route, per family.
    v4: HashMap<(u8, u128), Route>,
    v6: HashMap<(u8, u128), Route>,
    /// Prefix lengths present, longest first.
    v4_lens: Vec<u8>,
    v6_lens: Vec<u8>,
}

fn bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

impl RouteTable {
    /// The table of a configuration: connected routes from its addresses,
    /// then its static routes.
    pub fn build(config: &StackConfig) -> Self {
        let mut t = RouteTable::default();
        for a in &config.addrs {
            t.insert(
                a.addr,
                a.prefix_len,
                Route {
                    port: a.port,
                    gateway: None,
                    connected: true,
                },
            );
        }
        for r in &config.routes {
            t.insert(
                r.prefix,
                r.prefix_len,
                Route {
                    port: r.port,
                    gateway: r.gateway,
                    connected: false,
                },
            );
        }
        t.v4_lens.sort_unstable_by(|a, b| b.cmp(a));
        t.v6_lens.sort_unstable_by(|a, b| b.cmp(a));
        t
    }

    /// Adds a route unless its prefix is there already (first wins).
    fn insert(&mut self, prefix: IpAddr, len: u8, route: Route) {
        let (map, lens, max) = match prefix {
            IpAddr::V4(_) => (&mut self.v4, &mut self.v4_lens, 32),
            IpAddr::V6(_) => (&mut self.v6, &mut self.v6_lens, 128),
        };
        if len > max {
            return;
        }
        let key = (len, bits(mask(prefix, len)));
        if map.contains_key(&key) {
            return;
        }
        map.insert(key, route);
        if !lens.contains(&len) {
            lens.push(len);
        }
    }

    /// The longest-prefix match for `dst`.
    #[inline]
    pub fn lookup(&self, dst: IpAddr) -> Option<Route> {
        let (map, lens) = match dst {
            IpAddr::V4(_) => (&self.v4, &self.v4_lens),
            IpAddr::V6(_) => (&self.v6, &self.v6_lens),
        };
        lens.iter()
            .find_map(|&len| map.get(&(len, bits(mask(dst, len)))).copied())
    }

    /// Every route (for listings), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = RouteEntry> + '_ {
        let v4 = self.v4.iter().map(|(&(len, b), &route)| RouteEntry {
            prefix: IpAddr::V4((b as u32).into()),
            prefix_len: len,
            route,
        });
        let v6 = self.v6.iter().map(|(&(len, b), &route)| RouteEntry {
            prefix: IpAddr::V6(b.into()),
            prefix_len: len,
            route,
        });
        v4.chain(v6)
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::{AddrConfig, RouteConfig};
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn config() -> StackConfig {
        StackConfig {
            addrs: vec![
                AddrConfig {
                    addr: ip("10.0.0.1"),
                    prefix_len: 24,
                    port: 1,
                },
                AddrConfig {
                    addr: ip("2001:db8::1"),
                    prefix_len: 64,
                    port: 1,
                },
            ],
            routes: vec![
                RouteConfig {
                    prefix: ip("0.0.0.0"),
                    prefix_len: 0,
                    gateway: Some(ip("10.0.0.254")),
                    port: 1,
                },
                RouteConfig {
                    prefix: ip("172.16.0.0"),
                    prefix_len: 12,
                    gateway: Some(ip("10.0.0.253")),
                    port: 2,
                },
                RouteConfig {
                    prefix: ip("172.16.5.0"),
                    prefix_len: 24,
                    gateway: None,
                    port: 3,
                },
                RouteConfig {
                    prefix: ip("::"),
                    prefix_len: 0,
                    gateway: Some(ip("2001:db8::fe")),
                    port: 1,
                },
            ],
            ..StackConfig::default()
        }
    }

    #[test]
    fn longest_prefix_wins() {
        let t = RouteTable::build(&config());
        assert_eq!(t.len(), 6);
        let r = t.lookup(ip("10.0.0.77")).unwrap();
        assert_eq!((r.port, r.gateway, r.connected), (1, None, true));
        assert_eq!(t.lookup(ip("172.17.0.1")).unwrap().port, 2);
        assert_eq!(t.lookup(ip("172.16.5.9")).unwrap().port, 3);
        assert_eq!(t.lookup(ip("172.16.6.9")).unwrap().port, 2);
        assert_eq!(
            t.lookup(ip("8.8.8.8")).unwrap().gateway,
            Some(ip("10.0.0.254"))
        );
        assert_eq!(t.lookup(ip("2001:db8::9")).unwrap().gateway, None);
        assert_eq!(
            t.lookup(ip("2001:db9::9")).unwrap().gateway,
            Some(ip("2001:db8::fe"))
        );
    }

    #[test]
    fn no_default_no_route() {
        let mut c = config();
        c.routes.clear();
        let t = RouteTable::build(&c);
        assert_eq!(t.lookup(ip("8.8.8.8")), None);
        assert!(t.lookup(ip("10.0.0.2")).is_some());
    }
}
