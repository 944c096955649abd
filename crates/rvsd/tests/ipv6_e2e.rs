//! rvsd end to end over IPv6 (run as root), in fresh namespaces:
//! - IPv6 FullNAT: `curl -6` to `[fd00::100]:80`, two IPv6 backends that
//!   see the IPv6 local address; neighbour discovery for the VIP answered
//!   by rvs.
//! - NAT64: the same IPv6 VIP in front of two IPv4 backends through an
//!   IPv4 local address; the backends see that address.
//!
//! The client and backends send with checksum offload off; IPv6 addresses
//! are added without duplicate address detection.

mod common;

use std::net::SocketAddr;

use common::harness::{HttpServer, Rvsd, TempFile, Topo, curl, mac};
use common::{TIMEOUT, mac_str};

const VIP6: &str = "fd00::100";

fn service(laddr: &str, reals: &[&str]) -> String {
    let mut s = format!(
        "[[service]]\nproto = \"tcp\"\nvip = \"{VIP6}\"\nport = 80\nscheduler = \"rr\"\nladdrs = [\"{laddr}\"]\n"
    );
    for r in reals {
        s.push_str(&format!(
            "[[service.real]]\naddr = \"{r}\"\nmode = \"fullnat\"\n"
        ));
    }
    s
}

/// Four requests to `[VIP6]:80`, two answered by each backend, which saw
/// `laddr`.
fn run(laddr: &str, reals: &[&str], bind: SocketAddr) {
    let t = Topo::new(2, true);
    let s1 = HttpServer::start(&t.backends[0], "b1", bind);
    let s2 = HttpServer::start(&t.backends[1], "b2", bind);
    let config = t.config_head("af_xdp") + &service(laddr, reals);
    let path = TempFile::new("toml");
    let mut rvsd = Rvsd::start_with(&t.lb, &path, &config);
    t.warm_up(&mut rvsd, true);

    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(curl(
            &t.client,
            &format!("http://[{VIP6}]/"),
            &["-6"],
            &mut rvsd,
        ));
    }
    let b1 = seen.iter().filter(|s| **s == format!("b1 {laddr}")).count();
    let b2 = seen.iter().filter(|s| **s == format!("b2 {laddr}")).count();
    assert_eq!((b1, b2), (2, 2), "{seen:?}");
    assert_eq!(s1.count() + s2.count(), 4);
    // The client resolved the VIP to rvs's MAC by neighbour discovery.
    let neigh = t
        .client
        .exec(&["ip", "-6", "neigh", "show", VIP6], TIMEOUT)
        .unwrap();
    let neigh = String::from_utf8_lossy(&neigh.stdout);
    assert!(neigh.contains(&mac_str(mac(0, 2))), "{neigh}");

    let c = rvsd.stop();
    assert!(c.get("forwarded") >= 4 * 8, "{}", c.log);
    assert_eq!(c.drop_count("malformed"), 0, "{}", c.log);
}

#[test]
fn ipv6_fullnat() {
    run(
        "fd00:9::1",
        &["fd00:1::2", "fd00:2::2"],
        SocketAddr::from(([0u16; 8], 80)),
    );
}

#[test]
fn nat64_ipv6_vip_ipv4_backends() {
    run(
        "10.0.9.1",
        &["10.0.1.2", "10.0.2.2"],
        SocketAddr::from(([0, 0, 0, 0], 80)),
    );
}
