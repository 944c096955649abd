//! Making rvsd's table what the health state says it should be.
//!
//! Two paths, both turning a wanted table into the fewest requests:
//! - a full reconcile ([`plan`]) compares against what rvsd lists (at
//!   start, after a reload, after a failed request, after rvsd lost its
//!   state): the service is added or edited, local addresses and real
//!   servers added, edited or removed until they match;
//! - an incremental sync ([`diff`]) compares against what was last applied
//!   successfully, for the frequent case of a real server going up or
//!   down, and costs no listing.
//!
//! The requests for one virtual server go to rvsd as one
//! [`Request::Batch`], so rvsd never holds half a change (the sorry server
//! in while the pool is still there, say).

use std::collections::BTreeMap;
use std::net::IpAddr;

use rvs_api::{LocalAddr, RealServer, Reply, Request, Service, ServiceEntry, ServiceKey};

use super::translate;
use crate::rvsd::Rvsd;

/// Destinations of one service by address and port.
pub(crate) type Table = BTreeMap<(IpAddr, u16), RealServer>;

/// The table of service `key` for these destinations (DR/TUN ports
/// follow the service).
pub(crate) fn table(key: &ServiceKey, dests: impl IntoIterator<Item = RealServer>) -> Table {
    dests
        .into_iter()
        .map(|d| translate::for_key(key, d))
        .map(|d| ((d.addr, d.port), d))
        .collect()
}

/// Requests that turn `have` into `want` for the destinations of `key`:
/// removals first, then changes, then additions.
pub(crate) fn diff(key: &ServiceKey, have: &Table, want: &Table) -> Vec<Request> {
    let mut out = Vec::new();
    for (&(addr, port), _) in have.iter().filter(|(k, _)| !want.contains_key(k)) {
        out.push(Request::DeleteRealServer {
            service: *key,
            addr,
            port,
        });
    }
    for (k, w) in want {
        match have.get(k) {
            Some(h) if h == w => {}
            Some(_) => out.push(Request::EditRealServer {
                service: *key,
                server: *w,
            }),
            None => out.push(Request::AddRealServer {
                service: *key,
                server: *w,
            }),
        }
    }
    out
}

/// Requests that make rvsd's `have` (`None`: the service is absent) into
/// `service` with local addresses `laddrs` and destinations `want`.
pub(crate) fn plan(
    service: &Service,
    laddrs: &[LocalAddr],
    want: &Table,
    have: Option<&ServiceEntry>,
) -> Vec<Request> {
    let key = service.key;
    let mut out = Vec::new();
    let (have_laddrs, have_dests): (Vec<LocalAddr>, Table) = match have {
        None => {
            out.push(Request::AddService {
                service: service.clone(),
            });
            (Vec::new(), Table::new())
        }
        Some(e) => {
            if e.service != *service {
                out.push(Request::EditService {
                    service: service.clone(),
                });
            }
            (
                e.local_addrs.iter().map(|l| l.laddr.clone()).collect(),
                table(&key, e.real_servers.iter().map(|r| r.server)),
            )
        }
    };
    for l in have_laddrs.iter().filter(|h| !laddrs.contains(h)) {
        out.push(Request::DelLaddr {
            service: key,
            laddr: l.clone(),
        });
    }
    for l in laddrs.iter().filter(|l| !have_laddrs.contains(l)) {
        out.push(Request::AddLaddr {
            service: key,
            laddr: l.clone(),
        });
    }
    out.extend(diff(&key, &have_dests, want));
    out
}

/// Sends `reqs` as one request (a batch if more than one).
pub(crate) async fn apply(rvsd: &Rvsd, mut reqs: Vec<Request>) -> anyhow::Result<()> {
    let req = match reqs.len() {
        0 => return Ok(()),
        1 => reqs.remove(0),
        _ => Request::Batch { requests: reqs },
    };
    rvsd.call(req).await.map(|_| ())
}

/// Every service rvsd holds.
pub(crate) async fn list(rvsd: &Rvsd) -> anyhow::Result<Vec<ServiceEntry>> {
    match rvsd.call(Request::ListServices { service: None }).await? {
        Reply::Services { list } => Ok(list.services),
        other => anyhow::bail!("rvsd answered a listing with {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_api::{LocalAddrEntry, Protocol, RealServerEntry};

    fn key() -> ServiceKey {
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: "10.0.0.1".parse().unwrap(),
            port: 80,
        }
    }

    fn d(last: u8, weight: u32) -> RealServer {
        crate::lvs::fixtures::dest(last, 8080, weight)
    }

    fn svc() -> Service {
        Service {
            key: key(),
            scheduler: "rr".into(),
            flags: vec![],
            persistence: None,
            one_packet: false,
        }
    }

    #[test]
    fn diff_removes_edits_adds() {
        let have = table(&key(), [d(1, 1), d(2, 1)]);
        let want = table(&key(), [d(2, 5), d(3, 1)]);
        let r = diff(&key(), &have, &want);
        assert_eq!(
            r,
            vec![
                Request::DeleteRealServer {
                    service: key(),
                    addr: d(1, 1).addr,
                    port: 8080
                },
                Request::EditRealServer {
                    service: key(),
                    server: d(2, 5)
                },
                Request::AddRealServer {
                    service: key(),
                    server: d(3, 1)
                },
            ]
        );
        assert!(diff(&key(), &want, &want).is_empty());
    }

    #[test]
    fn plan_adds_absent_and_edits_present() {
        let laddr = LocalAddr {
            addr: "10.0.5.1".parse().unwrap(),
            ifname: None,
        };
        let want = table(&key(), [d(1, 1)]);
        let r = plan(&svc(), std::slice::from_ref(&laddr), &want, None);
        assert_eq!(r.len(), 3);
        assert!(matches!(r[0], Request::AddService { .. }));
        assert!(matches!(r[1], Request::AddLaddr { .. }));
        assert!(matches!(r[2], Request::AddRealServer { .. }));

        let mut other = svc();
        other.scheduler = "wlc".into();
        let entry = ServiceEntry {
            service: other,
            stats: Default::default(),
            rates: Default::default(),
            real_servers: vec![RealServerEntry {
                server: d(1, 1),
                active_conns: 0,
                inactive_conns: 0,
                persist_conns: 0,
                stats: Default::default(),
                rates: Default::default(),
            }],
            local_addrs: vec![LocalAddrEntry {
                laddr: LocalAddr {
                    addr: "10.0.5.2".parse().unwrap(),
                    ifname: None,
                },
                port_conflicts: 0,
                conns: 0,
            }],
        };
        let r = plan(&svc(), std::slice::from_ref(&laddr), &want, Some(&entry));
        assert_eq!(r.len(), 3, "{r:?}");
        assert!(matches!(r[0], Request::EditService { .. }));
        assert!(
            matches!(&r[1], Request::DelLaddr { laddr, .. } if laddr.addr.to_string() == "10.0.5.2")
        );
        assert!(matches!(&r[2], Request::AddLaddr { laddr: l, .. } if *l == laddr));
    }
}
