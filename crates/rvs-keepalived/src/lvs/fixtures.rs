//! Configuration pieces for tests: a virtual server and real servers with
//! keepalived's defaults, to be adjusted field by field.

use std::net::SocketAddr;
use std::time::Duration;

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
        ip: a.ip(),
        port: a.port(),
        weight: 1,
        kind: None,
        inhibit_on_failure: false,
        upper_threshold: 0,
        lower_threshold: 0,
        notify_up: None,
        notify_down: None,
        delay_loop: None,
        checkers,
        loc: Loc::default(),
    }
}

/// A checker of `kind` with keepalived's connection defaults.
pub(crate) fn checker(kind: CheckKind) -> Checker {
    Checker {
        kind,
        common: CheckCommon {
            connect_ip: None,
            connect_port: None,
            bindto: None,
            bind_port: None,
            connect_timeout: Duration::from_secs(5),
            retry: 1,
            delay_before_retry: Duration::from_secs(1),
            warmup: None,
            delay_loop: None,
            loc: Loc::default(),
        },
    }
}
