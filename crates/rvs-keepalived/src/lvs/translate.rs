//! The configuration model in rvsd's terms: which services a
//! `virtual_server` stands for, their settings, and what a real server or
//! the sorry server looks like as an `rvs_api` destination.
//!
//! The rules follow keepalived's use of IPVS: a `group` virtual server is
//! one service per group entry; DR and TUN destinations carry the
//! service's port (a fwmark service's: 0), whatever port the real server
//! line names; persistence granularity defaults to one client address.

use std::net::IpAddr;

use rvs_api::{Family, Forward, LocalAddr, Persistence, Service, ServiceKey};

use crate::conf::model::{
    Config, LbKind, Protocol, RealServer, VirtualServer, VsAddr, VsGroupEntry,
};

/// rvsd's forwarding method for a keepalived `lb_kind`.
pub(crate) fn forward(kind: LbKind) -> Forward {
    match kind {
        LbKind::Nat => Forward::Masq,
        LbKind::Dr => Forward::Route,
        LbKind::Tun => Forward::Tunnel,
        LbKind::FullNat => Forward::Fullnat,
        LbKind::Snat => Forward::Snat,
    }
}

fn protocol(p: Protocol) -> rvs_api::Protocol {
    match p {
        Protocol::Tcp => rvs_api::Protocol::Tcp,
        Protocol::Udp => rvs_api::Protocol::Udp,
    }
}

/// The family of a fwmark service without one given: that of its real
/// servers (IPv6 only if they all are).
fn fwmark_family(vs: &VirtualServer) -> Family {
    if !vs.real_servers.is_empty() && vs.real_servers.iter().all(|r| r.ip.is_ipv6()) {
        Family::Ipv6
    } else {
        Family::Ipv4
    }
}

/// The services `vs` stands for (several for a `group`).
pub(crate) fn service_keys(vs: &VirtualServer, cfg: &Config) -> Result<Vec<ServiceKey>, String> {
    let proto = protocol(vs.protocol);
    let addr = |ip: IpAddr, port: u16| ServiceKey::Addr {
        protocol: proto,
        addr: ip,
        port,
    };
    match &vs.addr {
        VsAddr::Addr { ip, port } => Ok(vec![addr(*ip, *port)]),
        VsAddr::Fwmark { mark, v6 } => Ok(vec![ServiceKey::Fwmark {
            mark: *mark,
            family: if *v6 { Family::Ipv6 } else { Family::Ipv4 },
        }]),
        VsAddr::Group(name) => {
            let g = cfg
                .vs_groups
                .iter()
                .find(|g| g.name == *name)
                .ok_or_else(|| format!("virtual_server_group {name} is not defined"))?;
            Ok(g.entries
                .iter()
                .map(|e| match *e {
                    VsGroupEntry::Addr { ip, port } => addr(ip, port),
                    VsGroupEntry::Fwmark(mark) => ServiceKey::Fwmark {
                        mark,
                        family: fwmark_family(vs),
                    },
                })
                .collect())
        }
    }
}

/// The service `key` of `vs` as rvsd should hold it.
pub(crate) fn service(vs: &VirtualServer, key: ServiceKey) -> Service {
    let max_mask = match key.family() {
        Family::Ipv4 => 32,
        Family::Ipv6 => 128,
    };
    Service {
        key,
        scheduler: vs.scheduler.clone(),
        flags: vs.sched_flags.clone(),
        persistence: vs.persistence_timeout.map(|timeout| Persistence {
            timeout,
            netmask: vs.persistence_granularity.unwrap_or(max_mask).min(max_mask),
        }),
        one_packet: vs.ops && vs.protocol == Protocol::Udp,
    }
}

/// A configured real server as a destination, with its configured weight.
pub(crate) fn real_server(rs: &RealServer, vs: &VirtualServer) -> rvs_api::RealServer {
    rvs_api::RealServer {
        addr: rs.ip,
        port: rs.port,
        forward: forward(rs.kind_in(vs)),
        weight: rs.weight,
        upper_threshold: rs.upper_threshold,
        lower_threshold: rs.lower_threshold,
    }
}

/// The sorry server as a destination (weight 1, as keepalived gives it).
pub(crate) fn sorry_server(vs: &VirtualServer) -> Option<rvs_api::RealServer> {
    let (addr, port) = vs.sorry_server?;
    Some(rvs_api::RealServer {
        addr,
        port,
        forward: forward(vs.sorry_server_kind.unwrap_or(vs.kind)),
        weight: 1,
        upper_threshold: 0,
        lower_threshold: 0,
    })
}

/// A destination as it goes into service `key`: DR and TUN take the
/// service's port.
pub(crate) fn for_key(key: &ServiceKey, mut d: rvs_api::RealServer) -> rvs_api::RealServer {
    if matches!(d.forward, Forward::Route | Forward::Tunnel) {
        d.port = match *key {
            ServiceKey::Addr { port, .. } => port,
            ServiceKey::Fwmark { .. } => 0,
        };
    }
    d
}

/// The local addresses of a FullNAT/SNAT virtual server (its
/// `laddr_group_name`), empty for other kinds.
pub(crate) fn local_addrs(vs: &VirtualServer, cfg: &Config) -> Result<Vec<LocalAddr>, String> {
    let Some(name) = &vs.laddr_group else {
        return Ok(Vec::new());
    };
    if !matches!(vs.kind, LbKind::FullNat | LbKind::Snat) {
        return Ok(Vec::new());
    }
    let g = cfg
        .laddr_groups
        .iter()
        .find(|g| g.name == *name)
        .ok_or_else(|| format!("local_address_group {name} is not defined"))?;
    Ok(g.addrs
        .iter()
        .map(|(addr, ifname)| LocalAddr {
            addr: *addr,
            ifname: ifname.clone(),
        })
        .collect())
}

/// A short name of a virtual server for logs (`TCP 10.0.0.1:80`,
/// `FWM 3`, `group web`).
pub(crate) fn vs_name(vs: &VirtualServer) -> String {
    let p = match vs.protocol {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
    };
    match &vs.addr {
        VsAddr::Addr { ip, port } => format!("{p} {}", std::net::SocketAddr::new(*ip, *port)),
        VsAddr::Fwmark { mark, .. } => format!("FWM {mark}"),
        VsAddr::Group(g) => format!("{p} group {g}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conf::model::{LaddrGroup, Loc, VsGroup};
    use crate::lvs::fixtures::{real, vs};

    #[test]
    fn services_and_destinations() {
        let mut cfg = Config::default();
        let mut v = vs("10.0.0.1:80", vec![real("10.1.0.1:8080", vec![])]);
        v.scheduler = "wrr".into();
        v.persistence_timeout = Some(300);
        v.persistence_granularity = Some(24);
        let keys = service_keys(&v, &cfg).unwrap();
        assert_eq!(
            keys,
            vec![ServiceKey::Addr {
                protocol: rvs_api::Protocol::Tcp,
                addr: "10.0.0.1".parse().unwrap(),
                port: 80
            }]
        );
        let s = service(&v, keys[0]);
        assert_eq!(s.scheduler, "wrr");
        assert_eq!(
            s.persistence,
            Some(Persistence {
                timeout: 300,
                netmask: 24
            })
        );
        assert!(!s.one_packet);

        // NAT keeps the real server's port, DR takes the service's.
        v.kind = LbKind::Nat;
        let d = for_key(&keys[0], real_server(&v.real_servers[0], &v));
        assert_eq!((d.forward, d.port), (Forward::Masq, 8080));
        v.kind = LbKind::Dr;
        let d = for_key(&keys[0], real_server(&v.real_servers[0], &v));
        assert_eq!((d.forward, d.port), (Forward::Route, 80));

        // A group is one service per entry.
        cfg.vs_groups.push(VsGroup {
            name: "g".into(),
            entries: vec![
                VsGroupEntry::Addr {
                    ip: "10.0.0.1".parse().unwrap(),
                    port: 80,
                },
                VsGroupEntry::Fwmark(5),
            ],
            loc: Loc::default(),
        });
        v.addr = VsAddr::Group("g".into());
        let keys = service_keys(&v, &cfg).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(
            keys[1],
            ServiceKey::Fwmark {
                mark: 5,
                family: Family::Ipv4
            }
        );
        v.addr = VsAddr::Group("nope".into());
        assert!(service_keys(&v, &cfg).unwrap_err().contains("nope"));
    }

    #[test]
    fn sorry_server_and_laddrs() {
        let mut cfg = Config::default();
        let mut v = vs("10.0.0.1:80", vec![]);
        v.kind = LbKind::FullNat;
        v.sorry_server = Some(("10.9.0.1".parse().unwrap(), 8080));
        let s = sorry_server(&v).unwrap();
        assert_eq!((s.weight, s.forward), (1, Forward::Fullnat));
        v.sorry_server_kind = Some(LbKind::Nat);
        assert_eq!(sorry_server(&v).unwrap().forward, Forward::Masq);

        v.laddr_group = Some("l".into());
        assert!(local_addrs(&v, &cfg).is_err());
        cfg.laddr_groups.push(LaddrGroup {
            name: "l".into(),
            addrs: vec![("10.0.5.1".parse().unwrap(), Some("p0".into()))],
            loc: Loc::default(),
        });
        let l = local_addrs(&v, &cfg).unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].ifname.as_deref(), Some("p0"));
        v.kind = LbKind::Nat;
        assert!(local_addrs(&v, &cfg).unwrap().is_empty());
    }
}
