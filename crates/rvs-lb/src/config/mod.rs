//! The balancer's configuration: virtual services, their real servers and
//! local addresses, as one immutable snapshot.
//!
//! The control plane builds a [`Config`] off to the side — validating
//! everything and building every scheduler table — and hands workers an
//! `Arc<Config>`; a worker adopts a new snapshot between bursts
//! ([`crate::worker::Worker::apply`]). A snapshot is never modified, so
//! workers read it without locks. Building is where allocation and errors
//! happen; an invalid specification yields a [`ConfigError`] naming the
//! field and the reason, and no snapshot at all.

mod dest;
mod error;
mod service;

use std::collections::HashMap;

pub use dest::{DestSpec, ForwardMode, MAX_WEIGHT, TunnelKind};
pub use error::ConfigError;
pub use service::{Persistence, Service, ServiceKey, ServiceSpec, ToaMode};

use crate::classify::PacketInfo;
use crate::conn::Timeouts;
use crate::flow::to_v6;

/// An immutable, validated configuration snapshot.
#[derive(Debug, Default)]
pub struct Config {
    services: Vec<Service>,
    by_key: HashMap<ServiceKey, usize>,
    /// Match (SNAT) services, in configuration order: tried in turn.
    matchers: Vec<usize>,
    /// Connection timeouts (`ipvsadm --set`).
    pub timeouts: Timeouts,
}

impl Config {
    /// Validates `specs` and builds their schedulers.
    pub fn build(specs: Vec<ServiceSpec>, timeouts: Timeouts) -> Result<Config, ConfigError> {
        let mut services = Vec::with_capacity(specs.len());
        let mut by_key = HashMap::with_capacity(specs.len());
        let mut matchers = Vec::new();
        for (i, spec) in specs.into_iter().enumerate() {
            let service = Service::build(spec).map_err(|e| e.in_service(i))?;
            if by_key.insert(service.spec.key, i).is_some() {
                return Err(ConfigError::new(
                    format!("services[{i}]"),
                    format!("duplicate virtual service {}", service.spec.key),
                ));
            }
            if matches!(service.spec.key, ServiceKey::Match { .. }) {
                matchers.push(i);
            }
            services.push(service);
        }
        Ok(Config {
            services,
            by_key,
            matchers,
            timeouts,
        })
    }

    /// The services, in configuration order (indices are stable within a
    /// snapshot).
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// The service at `index`.
    pub fn service(&self, index: usize) -> Option<&Service> {
        self.services.get(index)
    }

    /// The index of the service with this key.
    pub fn find(&self, key: &ServiceKey) -> Option<usize> {
        self.by_key.get(key).copied()
    }

    /// The service a new flow belongs to, in IPVS's order: a firewall-mark
    /// service if the packet carries a mark that has one, then the exact
    /// protocol/address/port, then a port-0 ("all ports") service on the
    /// address; last, the first match (SNAT) service whose networks match.
    pub fn lookup(&self, info: &PacketInfo, mark: u32) -> Option<usize> {
        if mark != 0
            && let Some(&i) = self.by_key.get(&ServiceKey::Fwmark {
                mark,
                v6: info.key.dst.to_ipv4_mapped().is_none(),
            })
        {
            return Some(i);
        }
        let exact = ServiceKey::Addr {
            proto: info.proto,
            addr: info.key.dst,
            port: info.key.dst_port,
        };
        if let Some(&i) = self.by_key.get(&exact) {
            return Some(i);
        }
        if let Some(&i) = self.by_key.get(&ServiceKey::Addr {
            proto: info.proto,
            addr: info.key.dst,
            port: 0,
        }) {
            return Some(i);
        }
        self.matchers.iter().copied().find(|&i| {
            self.services
                .get(i)
                .is_some_and(|s| s.spec.key.matches(info.proto, info.key.src, info.key.dst))
        })
    }

    /// The timeouts connections of service `index` use: the service's own,
    /// or the global ones.
    pub fn timeouts_for(&self, index: usize) -> &Timeouts {
        self.services
            .get(index)
            .and_then(|s| s.spec.timeouts.as_ref())
            .unwrap_or(&self.timeouts)
    }

    /// True if `addr` is the address of some virtual service (the stack
    /// answers ARP/ND and ping for it).
    pub fn is_vip(&self, addr: core::net::IpAddr) -> bool {
        let a = to_v6(addr);
        self.services
            .iter()
            .any(|s| matches!(s.spec.key, ServiceKey::Addr { addr, .. } if addr == a))
    }
}
