//! dpip's output layouts (DPVS `tools/dpip`: `link.c`, `addr.c`,
//! `route.c`, `neigh.c`), with what rvs knows in place of what only DPDK
//! knows (the backend instead of the NUMA socket, the kernel's operational
//! state instead of speed and duplex).

use std::fmt::Write;
use std::net::IpAddr;

use rvs_api::{IfAddr, Link, NeighEntry, RouteEntry};

fn family(a: IpAddr) -> &'static str {
    if a.is_ipv4() { "inet" } else { "inet6" }
}

fn any(like: IpAddr) -> IpAddr {
    if like.is_ipv4() {
        IpAddr::from([0u8; 4])
    } else {
        IpAddr::from([0u16; 8])
    }
}

fn keep(a: IpAddr, family: Option<u8>) -> bool {
    match family {
        Some(4) => a.is_ipv4(),
        Some(6) => a.is_ipv6(),
        _ => true,
    }
}

/// `link show`: per port, as dpip's `dump_nic_basic`, and with `stats`
/// its counters in dpip's `dump_nic_stats` columns.
pub fn links(links: &[Link], stats: bool) -> String {
    let mut s = String::new();
    for l in links {
        let _ = writeln!(
            s,
            "{}: {}: backend {} mtu {} rx-queue {} tx-queue {}",
            u32::from(l.id) + 1,
            l.name,
            l.backend,
            l.mtu,
            l.queues,
            l.queues
        );
        let _ = writeln!(s, "    {}", l.state);
        let _ = writeln!(s, "    addr {}", l.mac);
        if stats {
            let t = &l.stats;
            let _ = writeln!(
                s,
                "    {:<20}{:<20}{:<20}{:<20}",
                "ipackets", "opackets", "ibytes", "obytes"
            );
            let _ = writeln!(
                s,
                "    {:<20}{:<20}{:<20}{:<20}",
                t.rx_packets, t.tx_packets, t.rx_bytes, t.tx_bytes
            );
            let _ = writeln!(
                s,
                "    {:<20}{:<20}{:<20}{:<20}",
                "ierrors", "oerrors", "idropped", "odropped"
            );
            let _ = writeln!(
                s,
                "    {:<20}{:<20}{:<20}{:<20}",
                t.rx_errors, t.tx_errors, t.rx_dropped, t.tx_dropped
            );
        }
    }
    s
}

/// `addr show`, as dpip's `addr_dump`.
pub fn addrs(addrs: &[IfAddr], fam: Option<u8>) -> String {
    let mut s = String::new();
    for a in addrs.iter().filter(|a| keep(a.addr, fam)) {
        let _ = writeln!(
            s,
            "{} {}/{} scope global {}\n    valid_lft forever preferred_lft forever",
            family(a.addr),
            a.addr,
            a.prefix_len,
            a.dev
        );
    }
    s
}

/// `route show`, as dpip's `route_dump`.
pub fn routes(routes: &[RouteEntry], fam: Option<u8>) -> String {
    let mut s = String::new();
    for e in routes.iter().filter(|e| keep(e.route.prefix, fam)) {
        let r = &e.route;
        let onlink = r.via.is_none();
        let _ = writeln!(
            s,
            "{} {}/{} via {} src {} dev {} mtu {} tos 0 scope {} metric 0 proto {} {}",
            family(r.prefix),
            r.prefix,
            r.prefix_len,
            r.via.unwrap_or_else(|| any(r.prefix)),
            e.src.unwrap_or_else(|| any(r.prefix)),
            r.dev.as_deref().unwrap_or("-"),
            e.mtu,
            if onlink { "link" } else { "global" },
            if e.connected { "auto" } else { "static" },
            if onlink { "onlink " } else { "" },
        );
    }
    s
}

/// `neigh show`, as dpip's `neigh_dump` (`core` is the worker).
pub fn neighs(neighs: &[NeighEntry], fam: Option<u8>) -> String {
    let mut s = String::new();
    for n in neighs.iter().filter(|n| keep(n.addr, fam)) {
        let flag = if n.permanent { "static" } else { "" };
        let _ = match &n.lladdr {
            Some(m) => writeln!(
                s,
                "ip: {:<48} mac: {m}   state: {:<12}  dev: {}  core: {}  {flag}",
                n.addr.to_string(),
                n.state,
                n.dev,
                n.worker
            ),
            None => writeln!(
                s,
                "ip: {:<48} mac: incomplete          state: {:<12}  dev: {}  core: {}  {flag}",
                n.addr.to_string(),
                n.state,
                n.dev,
                n.worker
            ),
        };
    }
    s
}
