//! Persistence templates (`ipvsadm -p timeout -M netmask`).
//!
//! As in LVS, a persistent service pins a *client network* — the client's
//! address masked to the service's prefix length — to one real server: the
//! first new connection from that network is scheduled normally and leaves
//! behind a *template* naming the chosen server; every later new
//! connection from the network goes to the template's server while the
//! template lives, whatever the scheduler would have said.
//!
//! # Key
//! A template is keyed by the service's identity and the client network,
//! encoded as a [`FlowKey`] so that the connection table's machinery
//! (fixed-capacity slab, keyed hash, timer wheel) can hold templates too, in
//! a table of their own ([`Templates`], one per worker, bounded):
//! - address services: the service's protocol, source = the masked client
//!   address, source port 0, destination = the VIP and the service's port.
//!   A port-0 ("all ports") service thus has one template per client
//!   network whatever port the client connects to, and, as in IPVS/DPVS,
//!   the real server port is then the client's destination port (see
//!   `schedule.rs`);
//! - firewall-mark services: protocol 0 (no address service has it),
//!   destination = the mark (and the family bit) as an address, port 0;
//! - SNAT match services: source port 2, the match's destination network
//!   and prefix lengths (see [`template_key`]).
//!
//! The table indexes every entry under two keys; a template has only one,
//! so its second key is the same with the top bit of the source port set
//! (real template keys have source port 0 or 2, so the two key spaces
//! cannot meet).
//!
//! # Lifetime
//! IPVS keeps a template while it controls connections and lets it expire
//! one persistence timeout after that (its timer restarts whenever it is
//! used). Here a template counts the connections it controls (connections
//! carry [`FLAG_PERSISTENT`](crate::fwd::FLAG_PERSISTENT)); while the count
//! is above zero its idle timer is parked about 49 days out, so the packet
//! path never has to touch it; when the last controlled connection goes
//! (removal or expiry), the template's timer restarts with the service's
//! persistence timeout. A template is also touched each time it places a
//! new connection. It therefore lives exactly "while it has connections,
//! then for the timeout", which is what `ipvsadm -p` promises.
//!
//! # A template whose server is no longer usable
//! IPVS (`ip_vs_check_template`) and DPVS (`dp_vs_check_template`) drop a
//! template only when its server has been *removed* (not available), or —
//! with the `expire_quiescent_template` switch — when its weight is 0.
//! Neither looks at the overload flag. So, by default, a persistent client
//! keeps reaching a quiescent (weight 0) or overloaded server while its
//! template lives; that is LVS's documented behaviour, and rvs follows it
//! ([`WorkerOptions::expire_quiescent_template`](super::WorkerOptions) is
//! the switch). A template whose server was removed is re-pointed at a
//! freshly scheduled server.

use core::net::{IpAddr, Ipv6Addr};
use core::time::Duration;

use crate::config::{Config, ServiceKey};
use crate::conn::{Conn, ConnId, ConnTable, InsertError, Time};
use crate::flow::{FlowKey, to_v6};
use crate::fwd::{NO_DEST, NO_SERVICE};
use crate::sched::ServerFacts;

/// How far out a template's idle timer is parked while it controls
/// connections (the largest timeout an entry can hold, about 49 days).
const PARKED: Duration = Duration::from_millis(u32::MAX as u64);

/// What a persistence template holds besides its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Template {
    /// Index of the service in the worker's current snapshot.
    pub service: u32,
    /// Index of the real server in that service ([`NO_DEST`] once removed).
    pub dest: u32,
    /// Connections the template controls.
    pub conns: u32,
}

/// One worker's persistence templates: a bounded table, expiring with its
/// own timer wheel.
#[derive(Debug)]
pub struct Templates {
    table: ConnTable<Template>,
}

impl Templates {
    /// A table for up to `capacity` templates.
    pub(crate) fn new(capacity: u32, seed: u64) -> Self {
        Templates {
            table: ConnTable::new(capacity, seed ^ 0x7465_6d70_6c61_7465),
        }
    }

    /// The number of templates.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The most templates the table holds.
    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// Every template (for listings: the entry's client key holds the
    /// client network as source and the VIP and port, or the mark, as
    /// destination).
    pub fn iter(&self) -> impl Iterator<Item = (ConnId, &Conn<Template>)> {
        self.table.iter()
    }

    /// The template of `service` (persistent with netmask `prefix_len`)
    /// for `client`'s network, if there is one.
    pub fn find(
        &self,
        service: &ServiceKey,
        prefix_len: u8,
        client: IpAddr,
    ) -> Option<&Conn<Template>> {
        let flow = FlowKey {
            src: to_v6(client),
            dst: Ipv6Addr::UNSPECIFIED,
            src_port: 0,
            dst_port: 0,
            proto: 0,
        };
        let (id, _) = self
            .table
            .lookup(&template_key(service, prefix_len, &flow))?;
        self.table.get(id)
    }

    pub(super) fn lookup_mut(&mut self, key: &FlowKey) -> Option<(ConnId, &mut Conn<Template>)> {
        self.table.lookup_mut(key).map(|(id, _, t)| (id, t))
    }

    pub(super) fn create(
        &mut self,
        key: FlowKey,
        template: Template,
        now: Time,
        timeout: Duration,
    ) -> Result<ConnId, InsertError> {
        self.table
            .insert(key, second_key(&key), template, now, timeout)
    }

    /// A new connection placed by template `id` exists: count it.
    pub(super) fn bind(&mut self, id: ConnId) {
        let first = match self.table.get_mut(id) {
            Some(t) => {
                t.data.conns = t.data.conns.saturating_add(1);
                t.data.conns == 1
            }
            None => false,
        };
        if first {
            self.table.set_timeout(id, PARKED);
        }
    }

    /// A connection of `service` from `client` controlled by a template is
    /// gone: uncount it; the last one restarts the template's timer.
    pub(super) fn release(&mut self, config: &Config, client: &FlowKey, service: u32, now: Time) {
        let Some(p) = config
            .service(service as usize)
            .and_then(|s| Some((s.spec.key, s.spec.persistence?)))
        else {
            return;
        };
        let key = template_key(&p.0, p.1.prefix_len, client);
        let Some((id, _, t)) = self.table.lookup_mut(&key) else {
            return;
        };
        t.data.conns = t.data.conns.saturating_sub(1);
        if t.data.conns == 0 {
            t.touch(now);
            self.table.set_timeout(id, p.1.timeout);
        }
    }

    /// Expires idle templates; at most `budget` examined.
    pub(super) fn expire(&mut self, now: Time, budget: usize) -> usize {
        self.table.expire(now, budget, |_, _| {}).expired
    }

    /// Follows a new configuration: templates of services that are gone or
    /// whose persistence netmask changed (or was turned off) are removed;
    /// the others are re-pointed at the new service and server indices.
    /// `remap[old service]` is `(new service, old dest → new dest)`.
    /// Returns whether any service's templates were dropped for a change.
    pub(super) fn apply(
        &mut self,
        old: &Config,
        new: &Config,
        remap: &[Option<(u32, Vec<u32>)>],
    ) -> bool {
        let mut dropped = false;
        self.table.for_each_data_mut(|_, t| {
            let kept = remap
                .get(t.service as usize)
                .and_then(|m| m.as_ref())
                .filter(|(ns, _)| same_netmask(old, t.service as usize, new, *ns as usize));
            match kept {
                Some((ns, dests)) => {
                    t.service = *ns;
                    t.dest = dests.get(t.dest as usize).copied().unwrap_or(NO_DEST);
                }
                None => {
                    t.service = NO_SERVICE;
                    dropped = true;
                }
            }
        });
        if dropped {
            self.table
                .remove_where(|_, t| t.data.service == NO_SERVICE, |_, _| {});
        }
        dropped
    }
}

/// Whether service `oi` of `old` and `ni` of `new` are both persistent with
/// the same netmask (their templates stay valid).
pub(super) fn same_netmask(old: &Config, oi: usize, new: &Config, ni: usize) -> bool {
    let prefix = |c: &Config, i: usize| {
        c.service(i)
            .and_then(|s| s.spec.persistence)
            .map(|p| p.prefix_len)
    };
    matches!((prefix(old, oi), prefix(new, ni)), (Some(a), Some(b)) if a == b)
}

/// Whether a template pointing at `dest` still places connections there:
/// the server is still configured and, with `expire_quiescent`, not
/// quiescent. Overload does not matter (as in IPVS).
pub(super) fn still_valid(dest: u32, facts: &[ServerFacts], expire_quiescent: bool) -> bool {
    dest != NO_DEST
        && facts
            .get(dest as usize)
            .is_some_and(|f| !expire_quiescent || f.weight > 0)
}

/// The template key of a flow `client` of `service` with netmask
/// `prefix_len` (see the module docs).
pub(super) fn template_key(service: &ServiceKey, prefix_len: u8, client: &FlowKey) -> FlowKey {
    let bits = prefix_bits(client.src, prefix_len);
    let src = masked_bits(client.src, bits);
    match *service {
        ServiceKey::Addr { proto, addr, port } => FlowKey {
            src,
            dst: addr,
            src_port: 0,
            dst_port: port,
            proto,
        },
        ServiceKey::Fwmark { mark, v6 } => FlowKey {
            src,
            dst: Ipv6Addr::from_bits((u128::from(v6) << 32) | u128::from(mark)),
            src_port: 0,
            dst_port: 0,
            proto: 0,
        },
        // Masked to at least the service's source network, which every
        // client of the service shares (so the grouping is the same), the
        // client network tells services with different source networks
        // apart.
        ServiceKey::Match {
            proto,
            src_prefix,
            dst,
            dst_prefix,
            ..
        } => FlowKey {
            src: masked_bits(client.src, bits.max(u32::from(src_prefix))),
            dst,
            src_port: 2,
            dst_port: u16::from(src_prefix) << 8 | u16::from(dst_prefix),
            proto,
        },
    }
}

/// The second index key of a template (the table wants two): real keys
/// have source port 0 or 2, second keys 0x8000 or 0x8002.
fn second_key(key: &FlowKey) -> FlowKey {
    FlowKey {
        src_port: key.src_port | 0x8000,
        ..*key
    }
}

/// `addr` with only its first `prefix_len` bits kept, counted within its
/// own family (an IPv4-mapped address keeps the mapping prefix).
#[cfg(test)]
fn masked(addr: Ipv6Addr, prefix_len: u8) -> Ipv6Addr {
    masked_bits(addr, prefix_bits(addr, prefix_len))
}

/// A prefix length within `addr`'s family as a length on the 128-bit form.
fn prefix_bits(addr: Ipv6Addr, prefix_len: u8) -> u32 {
    if addr.to_ipv4_mapped().is_some() {
        96 + u32::from(prefix_len.min(32))
    } else {
        u32::from(prefix_len.min(128))
    }
}

/// `addr` with its first `bits` (of 128) kept.
fn masked_bits(addr: Ipv6Addr, bits: u32) -> Ipv6Addr {
    let mask = match bits.min(128) {
        0 => 0,
        b => u128::MAX << (128 - b),
    };
    Ipv6Addr::from_bits(addr.to_bits() & mask)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    #[test]
    fn masks_within_the_family() {
        let a = Ipv4Addr::new(192, 0, 2, 77).to_ipv6_mapped();
        assert_eq!(masked(a, 24), Ipv4Addr::new(192, 0, 2, 0).to_ipv6_mapped());
        assert_eq!(masked(a, 32), a);
        assert_eq!(masked(a, 0), Ipv4Addr::UNSPECIFIED.to_ipv6_mapped());
        let b: Ipv6Addr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        assert_eq!(masked(b, 48), "2001:db8:1::".parse::<Ipv6Addr>().unwrap());
        assert_eq!(masked(b, 128), b);
        assert_eq!(masked(b, 0), Ipv6Addr::UNSPECIFIED);
    }

    #[test]
    fn keys_of_address_and_mark_services_differ() {
        let c = FlowKey::v4(
            6,
            Ipv4Addr::new(10, 0, 0, 1),
            4000,
            Ipv4Addr::new(10, 9, 9, 9),
            80,
        );
        let svc = ServiceKey::tcp(Ipv4Addr::new(10, 9, 9, 9).into(), 80);
        let k = template_key(&svc, 32, &c);
        assert_eq!((k.src_port, k.dst_port, k.proto), (0, 80, 6));
        let m = template_key(
            &ServiceKey::Fwmark {
                mark: 80,
                v6: false,
            },
            32,
            &c,
        );
        assert_ne!(k, m);
        assert_eq!(m.proto, 0);
        assert_ne!(second_key(&k), k);
    }
}
