//! What the stack did, per worker (read by the control plane, never
//! shared). Drops decided by the balancer are in the worker's own
//! [`DropCounters`](crate::stats::DropCounters); `drops` here counts only
//! the stack's own decisions, so the two add up without double counting.

use crate::stats::{DropCounters, DropReason};

/// Frames and bytes of one port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortCounters {
    /// The port's id.
    pub id: u16,
    /// Frames received.
    pub rx_frames: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames sent (answers, forwarded packets, generated frames).
    pub tx_frames: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
}

/// The stack's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackCounters {
    /// Per port, in configuration order.
    pub ports: Vec<PortCounters>,
    /// ARP requests for owned addresses answered.
    pub arp_replies_sent: u64,
    /// ARP packets that taught the neighbour cache something.
    pub arp_learned: u64,
    /// ARP packets ignored (requests for others, announcements of unknown
    /// hosts).
    pub arp_ignored: u64,
    /// ARP requests sent to resolve next hops.
    pub arp_requests_sent: u64,
    /// Gratuitous ARPs sent.
    pub garp_sent: u64,
    /// Neighbour solicitations for owned addresses answered.
    pub na_sent: u64,
    /// ND messages that taught the neighbour cache something.
    pub nd_learned: u64,
    /// ND messages ignored.
    pub nd_ignored: u64,
    /// Neighbour solicitations sent.
    pub ns_sent: u64,
    /// Unsolicited neighbour advertisements sent.
    pub unsolicited_na_sent: u64,
    /// Echo requests to owned addresses answered.
    pub echo_replies: u64,
    /// ICMP time-exceeded messages sent.
    pub time_exceeded_sent: u64,
    /// Packets handed to the kernel.
    pub to_kernel: u64,
    /// Frames the kernel sent out through the node.
    pub from_kernel: u64,
    /// Packets forwarded (balanced or routed).
    pub forwarded: u64,
    /// Generated frames not queued because the queue was full.
    pub tx_queue_full: u64,
    /// Neighbour requests not sent because one went out lately (the rate
    /// limit at work).
    pub neighbour_requests_limited: u64,
    /// Packets held while their next hop was unresolved (the frame is
    /// `Consumed`, not dropped; see [`hold`](super::hold)).
    pub neighbour_held: u64,
    /// Held packets sent once their neighbour resolved.
    pub neighbour_held_sent: u64,
    /// Held packets discarded: older than [`HOLD_MS`](super::hold::HOLD_MS)
    /// or their port removed.
    pub neighbour_held_expired: u64,
    /// Packets not held (per-neighbour limit reached, pool full, too big):
    /// dropped as `neighbour_pending`.
    pub neighbour_hold_overflow: u64,
    /// Drops decided by the stack, by reason.
    pub drops: DropCounters,
}

impl StackCounters {
    /// The counters of port `id`.
    pub fn port(&self, id: u16) -> Option<&PortCounters> {
        self.ports.iter().find(|p| p.id == id)
    }

    pub(crate) fn port_mut(&mut self, id: u16) -> Option<&mut PortCounters> {
        self.ports.iter_mut().find(|p| p.id == id)
    }

    pub(crate) fn rx(&mut self, id: u16, len: usize) {
        if let Some(p) = self.port_mut(id) {
            p.rx_frames = p.rx_frames.wrapping_add(1);
            p.rx_bytes = p.rx_bytes.wrapping_add(len as u64);
        }
    }

    pub(crate) fn tx(&mut self, id: u16, len: usize) {
        if let Some(p) = self.port_mut(id) {
            p.tx_frames = p.tx_frames.wrapping_add(1);
            p.tx_bytes = p.tx_bytes.wrapping_add(len as u64);
        }
    }

    pub(crate) fn drop(&mut self, reason: DropReason) {
        self.drops.count(reason);
    }
}

/// `*c += 1`, wrapping.
pub(crate) fn inc(c: &mut u64) {
    *c = c.wrapping_add(1);
}
