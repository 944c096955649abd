//! Configuration pieces for tests: a virtual server and real servers with
//! keepalived's defaults, to be adjusted field by field.

use std::net::SocketAddr;

use crate::conf::model::{
    CheckCommon, CheckKind, Checker, LbKind, Loc, RealServer, VirtualServer, VsAddr,
};

/// `virtual_server IP PORT` (TCP, DR, wlc, delay_loop 60 s, quorum 1).
pub(crate) fn vs(addr: &str, real_servers: Vec<RealServer>) -> VirtualServer {
    let a: SocketAddr = addr.parse().expect("address");
    let addr = VsAddr::Addr {
        ip: a.ip(),
        port: a.port(),
    };
    VirtualServer {
        kind: LbKind::Dr,
        real_servers,
        ..VirtualServer::new(addr, Loc::default())
    }
}

/// `real_server IP PORT` with weight 1 and these checkers.
pub(crate) fn real(addr: &str, checkers: Vec<Checker>) -> RealServer {
    let a: SocketAddr = addr.parse().expect("address");
    RealServer {
        checkers,
        ..RealServer::new(a.ip(), a.port(), Loc::default())
    }
}

/// A checker of `kind` with keepalived's connection defaults.
pub(crate) fn checker(kind: CheckKind) -> Checker {
    Checker {
        kind,
        common: CheckCommon::new(Loc::default()),
    }
}

/// A NAT destination `10.1.0.LAST:PORT` with `weight`, as rvsd holds it.
pub(crate) fn dest(last: u8, port: u16, weight: u32) -> rvs_api::RealServer {
    rvs_api::RealServer {
        addr: std::net::IpAddr::from([10, 1, 0, last]),
        port,
        forward: rvs_api::Forward::Masq,
        weight,
        upper_threshold: 0,
        lower_threshold: 0,
    }
}
