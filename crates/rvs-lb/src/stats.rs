//! Counters a worker keeps and the control plane sums.
//!
//! Workers own their counters outright: plain integers, incremented without
//! atomics or locks (ARCHITECTURE.md §1, §3). The control plane reads a copy
//! of each worker's counters (the daemon publishes them once per burst or on
//! request) and adds them up; [`Add`] and [`Sum`](core::iter::Sum) make that
//! a one-liner. Every dropped packet is counted under a named
//! [`DropReason`], so an operator can tell "no service" from "table full".

use core::ops::{Add, AddAssign};

/// Traffic through a virtual service or a real server, as `ipvsadm --stats`
/// reports it: connections, and packets and bytes in each direction ("in"
/// is client → server, "out" is server → client).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrafficStats {
    /// Connections scheduled.
    pub conns: u64,
    /// Packets from clients.
    pub in_pkts: u64,
    /// Packets from servers.
    pub out_pkts: u64,
    /// Bytes (IP packets, headers included) from clients.
    pub in_bytes: u64,
    /// Bytes from servers.
    pub out_bytes: u64,
}

impl TrafficStats {
    /// Counts one packet from a client of `len` bytes.
    #[inline]
    pub fn count_in(&mut self, len: usize) {
        self.in_pkts = self.in_pkts.wrapping_add(1);
        self.in_bytes = self.in_bytes.wrapping_add(len as u64);
    }

    /// Counts one packet from a server of `len` bytes.
    #[inline]
    pub fn count_out(&mut self, len: usize) {
        self.out_pkts = self.out_pkts.wrapping_add(1);
        self.out_bytes = self.out_bytes.wrapping_add(len as u64);
    }
}

impl Add for TrafficStats {
    type Output = TrafficStats;
    fn add(self, o: TrafficStats) -> TrafficStats {
        TrafficStats {
            conns: self.conns.wrapping_add(o.conns),
            in_pkts: self.in_pkts.wrapping_add(o.in_pkts),
            out_pkts: self.out_pkts.wrapping_add(o.out_pkts),
            in_bytes: self.in_bytes.wrapping_add(o.in_bytes),
            out_bytes: self.out_bytes.wrapping_add(o.out_bytes),
        }
    }
}

impl AddAssign for TrafficStats {
    fn add_assign(&mut self, o: TrafficStats) {
        *self = *self + o;
    }
}

impl core::iter::Sum for TrafficStats {
    fn sum<I: Iterator<Item = TrafficStats>>(iter: I) -> TrafficStats {
        iter.fold(TrafficStats::default(), Add::add)
    }
}

/// Why a packet was dropped. Each has a counter and a stable name used as
/// the `reason` label of `rvs_worker_drops_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum DropReason {
    /// Headers that do not parse (truncated, bad lengths, bad version).
    Malformed,
    /// A checksum that does not verify where rvs must check it.
    BadChecksum,
    /// Addressed to a VIP/port/protocol with no virtual service.
    NoService,
    /// A service whose real servers are all unavailable (or it has none).
    NoRealServer,
    /// The connection table is full.
    ConnTableFull,
    /// No local address/port is free for a FullNAT or SNAT connection.
    LocalPortsExhausted,
    /// A service or real-server connection limit was reached.
    ConnLimit,
    /// A packet that does not start a connection (e.g. a TCP segment without
    /// SYN) and matches none.
    NoConnection,
    /// A non-first IP fragment (reassembly is not done yet).
    Fragment,
    /// TTL or hop limit reached zero.
    TtlExpired,
    /// The packet would exceed the path MTU and may not be fragmented.
    TooBig,
    /// A header would grow beyond what fits in the buffer (e.g. no room for
    /// an encapsulation header or a TOA option).
    NoRoom,
    /// Source address on the blacklist, or not on the whitelist.
    Denied,
    /// A protocol or mode combination rvs does not handle.
    Unsupported,
    /// No route to the destination (the stack).
    NoRoute,
    /// The next hop's link-layer address is still being resolved (the
    /// stack queued an ARP request / neighbour solicitation).
    NeighbourPending,
    /// A frame addressed to another host's MAC (the stack).
    NotForUs,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 17] = [
        DropReason::Malformed,
        DropReason::BadChecksum,
        DropReason::NoService,
        DropReason::NoRealServer,
        DropReason::ConnTableFull,
        DropReason::LocalPortsExhausted,
        DropReason::ConnLimit,
        DropReason::NoConnection,
        DropReason::Fragment,
        DropReason::TtlExpired,
        DropReason::TooBig,
        DropReason::NoRoom,
        DropReason::Denied,
        DropReason::Unsupported,
        DropReason::NoRoute,
        DropReason::NeighbourPending,
        DropReason::NotForUs,
    ];

    /// The stable counter label.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::BadChecksum => "bad_checksum",
            DropReason::NoService => "no_service",
            DropReason::NoRealServer => "no_real_server",
            DropReason::ConnTableFull => "conn_table_full",
            DropReason::LocalPortsExhausted => "local_ports_exhausted",
            DropReason::ConnLimit => "conn_limit",
            DropReason::NoConnection => "no_connection",
            DropReason::Fragment => "fragment",
            DropReason::TtlExpired => "ttl_expired",
            DropReason::TooBig => "too_big",
            DropReason::NoRoom => "no_room",
            DropReason::Denied => "denied",
            DropReason::Unsupported => "unsupported",
            DropReason::NoRoute => "no_route",
            DropReason::NeighbourPending => "neighbour_pending",
            DropReason::NotForUs => "not_for_us",
        }
    }
}

impl core::fmt::Display for DropReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Drop counters by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounters([u64; DropReason::ALL.len()]);

impl DropCounters {
    /// Counts one drop.
    #[inline]
    pub fn count(&mut self, reason: DropReason) {
        if let Some(c) = self.0.get_mut(reason as usize) {
            *c = c.wrapping_add(1);
        }
    }

    /// The count for one reason.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.0.get(reason as usize).copied().unwrap_or(0)
    }

    /// All drops.
    pub fn total(&self) -> u64 {
        self.0.iter().fold(0u64, |a, &b| a.wrapping_add(b))
    }

    /// (reason, count) pairs, every reason included.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.iter().map(|&r| (r, self.get(r)))
    }
}

impl Add for DropCounters {
    type Output = DropCounters;
    fn add(mut self, o: DropCounters) -> DropCounters {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a = a.wrapping_add(b);
        }
        self
    }
}

impl core::iter::Sum for DropCounters {
    fn sum<I: Iterator<Item = DropCounters>>(iter: I) -> DropCounters {
        iter.fold(DropCounters::default(), Add::add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_index_their_own_counter() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r} out of order");
        }
        let mut d = DropCounters::default();
        d.count(DropReason::NoService);
        d.count(DropReason::NoService);
        d.count(DropReason::Fragment);
        assert_eq!(d.get(DropReason::NoService), 2);
        assert_eq!(d.get(DropReason::Fragment), 1);
        assert_eq!(d.get(DropReason::Malformed), 0);
        assert_eq!(d.total(), 3);
        let sum: DropCounters = [d, d].into_iter().sum();
        assert_eq!(sum.get(DropReason::NoService), 4);
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::ALL.len());
    }

    #[test]
    fn traffic_sums() {
        let mut a = TrafficStats::default();
        a.count_in(60);
        a.count_out(1500);
        a.conns = 1;
        let s: TrafficStats = [a, a, a].into_iter().sum();
        assert_eq!(s.conns, 3);
        assert_eq!(s.in_bytes, 180);
        assert_eq!(s.out_pkts, 3);
    }
}
