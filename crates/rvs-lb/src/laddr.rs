//! Choosing the local address and port of a FullNAT/SNAT connection.
//!
//! The choice must make the reply 5-tuple (R:rport → L:lport) unique in the
//! worker's connection table, and should make the reply arrive at this
//! worker ([`crate::rss`], ARCHITECTURE.md §4). Uniqueness is checked
//! against the table itself, so a local port is reused freely across real
//! servers: a local address serves up to ~64k connections *per real server
//! endpoint*, not 64k in all as with a per-address port pool.
//!
//! The search is bounded ([`MAX_PROBES`] candidates per address) so a nearly
//! exhausted pool costs a bounded amount of work per new connection; when
//! nothing is found the caller drops and counts
//! [`DropReason::LocalPortsExhausted`](crate::stats::DropReason).

use core::net::IpAddr;
use std::sync::Arc;

use crate::conn::ConnTable;
use crate::flow::FlowKey;
use crate::rss::{PortPartition, PortRange, RssSteering};

/// Most candidate ports tried per local address for one new connection.
pub const MAX_PROBES: usize = 512;

/// How replies are steered to the worker that owns a connection.
#[derive(Debug, Clone, Default)]
pub enum Steering {
    /// One worker, or replies redirected in software: any port will do.
    #[default]
    Any,
    /// Ports partitioned by their low bits (NIC flow rules, or software
    /// redirect by port).
    Partition(PortPartition),
    /// The NIC's RSS hash, computed to pick ports whose replies land here.
    Rss(Arc<RssSteering>),
}

/// One worker's local-port chooser.
#[derive(Debug, Clone)]
pub struct LocalPorts {
    worker: u16,
    steering: Steering,
    range: PortRange,
    /// Where the next search starts, so consecutive connections spread over
    /// the range instead of re-probing the same used ports.
    cursor: u16,
    /// Rotates over the local addresses.
    next_addr: usize,
}

impl LocalPorts {
    /// A chooser for `worker` with the default port range.
    pub fn new(worker: u16, steering: Steering) -> Self {
        Self::with_range(worker, steering, PortRange::DEFAULT)
    }

    /// A chooser using only ports in `range`.
    pub fn with_range(worker: u16, steering: Steering, range: PortRange) -> Self {
        LocalPorts {
            worker,
            steering,
            range,
            cursor: range.first,
            next_addr: 0,
        }
    }

    /// Picks a local endpoint among `laddrs` (of the real server's family)
    /// for a connection of protocol `proto` to `remote`, such that the
    /// reply key is not in `table`.
    pub fn allocate<T>(
        &mut self,
        laddrs: &[IpAddr],
        proto: u8,
        remote: (IpAddr, u16),
        table: &ConnTable<T>,
    ) -> Option<(IpAddr, u16)> {
        let n = laddrs.len();
        for i in 0..n {
            let idx = (self.next_addr + i) % n;
            let Some(&laddr) = laddrs.get(idx) else {
                continue;
            };
            if laddr.is_ipv4() != remote.0.is_ipv4() {
                continue;
            }
            let free = |port: u16| {
                table
                    .lookup(&FlowKey::new(proto, remote.0, remote.1, laddr, port))
                    .is_none()
            };
            let start = self.cursor;
            let found = match &self.steering {
                Steering::Any => self
                    .range
                    .iter_from(start)
                    .take(MAX_PROBES)
                    .find(|&p| free(p)),
                Steering::Partition(p) => p
                    .ports_for(self.worker, self.range, start)
                    .take(MAX_PROBES)
                    .find(|&p| free(p)),
                Steering::Rss(rss) => rss
                    .ports_for(remote.0, remote.1, laddr, self.worker, self.range, start)
                    .take(MAX_PROBES)
                    .find(|&p| free(p)),
            };
            if let Some(port) = found {
                self.cursor = if port >= self.range.last {
                    self.range.first
                } else {
                    port + 1
                };
                self.next_addr = (idx + 1) % n;
                return Some((laddr, port));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::ConnTable;
    use core::time::Duration;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ports_are_unique_per_remote_and_spread_over_addresses() {
        let mut table: ConnTable<()> = ConnTable::new(1000, 1);
        let mut lp = LocalPorts::with_range(
            0,
            Steering::Any,
            PortRange {
                first: 2000,
                last: 2002,
            },
        );
        let laddrs = [ip("10.0.0.100"), ip("10.0.0.101"), ip("2001:db8::1")];
        let remote = (ip("10.0.1.5"), 80);
        let mut got = Vec::new();
        for i in 0..6u16 {
            let (l, p) = lp.allocate(&laddrs, 6, remote, &table).unwrap();
            assert!(l.is_ipv4());
            let reply = FlowKey::new(6, remote.0, remote.1, l, p);
            let client = FlowKey::new(6, ip("192.0.2.1"), 1000 + i, ip("198.51.100.1"), 80);
            table
                .insert(
                    client,
                    reply,
                    (),
                    crate::conn::Time::ZERO,
                    Duration::from_secs(60),
                )
                .unwrap();
            got.push((l, p));
        }
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 6, "all (laddr, port) distinct");
        // Both IPv4 addresses × 3 ports are used: the pool is exhausted.
        assert_eq!(lp.allocate(&laddrs, 6, remote, &table), None);
        // Another real server can reuse the same local ports.
        assert!(
            lp.allocate(&laddrs, 6, (ip("10.0.1.6"), 80), &table)
                .is_some()
        );
        // No address of the server's family: nothing.
        assert_eq!(
            lp.allocate(&laddrs[..2], 6, (ip("2001:db8::5"), 80), &table),
            None
        );
    }

    #[test]
    fn partition_and_rss_steering_pick_owned_ports() {
        let table: ConnTable<()> = ConnTable::new(10, 1);
        let part = PortPartition::new(4);
        let mut lp = LocalPorts::new(3, Steering::Partition(part));
        let (_, p) = lp
            .allocate(&[ip("10.0.0.100")], 6, (ip("10.0.1.5"), 80), &table)
            .unwrap();
        assert_eq!(part.owner(p), Some(3));

        let reta: Vec<u16> = (0..128).map(|i| i % 2).collect();
        let rss = Arc::new(RssSteering::new(&crate::rss::DEFAULT_KEY, reta, vec![0, 1]).unwrap());
        let mut lp = LocalPorts::new(1, Steering::Rss(rss.clone()));
        for _ in 0..20 {
            let (l, p) = lp
                .allocate(&[ip("10.0.0.100")], 6, (ip("10.0.1.5"), 8080), &table)
                .unwrap();
            assert_eq!(rss.worker_for(ip("10.0.1.5"), l, 8080, p), 1);
        }
    }
}
