//! A checker's settings resolved against its real server and virtual
//! server: where to connect, from where, how often, how patiently.
//!
//! The configuration leaves many values to inheritance (`connect_ip`
//! defaults to the real server's address, `delay_loop` to the virtual
//! server's, the Host header to `virtualhost` or the address); resolving
//! them once gives the probes plain values and gives reloads a simple
//! identity: a checker whose resolved spec is unchanged keeps running.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use serde::Serialize;

use crate::conf::model::{CheckKind, Checker, RealServer, VirtualServer};

/// Everything a checker needs, resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct CheckSpec {
    /// What to check.
    pub kind: CheckKind,
    /// Where: `connect_ip`/`connect_port`, else the real server's.
    pub target: SocketAddr,
    /// The source address and port (`bindto`, `bind_port`), if set.
    pub bind: Option<SocketAddr>,
    /// `connect_timeout`: the limit on one attempt's network exchange.
    pub connect_timeout: Duration,
    /// `retry`: failed attempts tolerated after the first.
    pub retry: u32,
    /// `delay_before_retry`.
    pub delay_before_retry: Duration,
    /// `delay_loop` in force.
    pub delay_loop: Duration,
    /// `warmup`.
    pub warmup: Option<Duration>,
    /// The Host header unless a URL names its own: the checker's or the
    /// virtual server's `virtualhost`, else `IP:port` of the target.
    pub host: String,
}

impl CheckSpec {
    /// Resolves `c` on real server `rs` of virtual server `vs`.
    pub(crate) fn new(c: &Checker, rs: &RealServer, vs: &VirtualServer) -> CheckSpec {
        let cc = &c.common;
        let target = SocketAddr::new(
            cc.connect_ip.unwrap_or(rs.ip),
            cc.connect_port.unwrap_or(rs.port),
        );
        let bind = match (cc.bindto, cc.bind_port) {
            (None, None) => None,
            (ip, port) => Some(SocketAddr::new(
                ip.unwrap_or(unspecified(target.ip())),
                port.unwrap_or(0),
            )),
        };
        let checker_host = match &c.kind {
            CheckKind::Http { virtualhost, .. } => virtualhost.clone(),
            _ => None,
        };
        let host = checker_host
            .or_else(|| vs.virtualhost.clone())
            .unwrap_or_else(|| target.to_string());
        CheckSpec {
            kind: c.kind.clone(),
            target,
            bind,
            connect_timeout: cc.connect_timeout,
            retry: cc.retry,
            delay_before_retry: cc.delay_before_retry,
            delay_loop: c.delay_loop(rs, vs),
            warmup: cc.warmup,
            host,
        }
    }

    /// The name keepalived gives the checker kind, for logs and dumps.
    pub(crate) fn kind_name(&self) -> &'static str {
        match &self.kind {
            CheckKind::Tcp => "TCP_CHECK",
            CheckKind::Http { tls: false, .. } => "HTTP_GET",
            CheckKind::Http { tls: true, .. } => "SSL_GET",
            CheckKind::Udp { .. } => "UDP_CHECK",
            CheckKind::Misc { .. } => "MISC_CHECK",
            CheckKind::Ping => "PING_CHECK",
        }
    }
}

/// The unspecified address of `ip`'s family.
fn unspecified(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}
