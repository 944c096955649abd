//! The lightweight stack around one worker's balancer: what makes rvs a
//! host on its networks (ARP, neighbour discovery, ping, routes) and
//! carries balanced packets from Ethernet frame to Ethernet frame.
//!
//! Sans-IO like the rest of the crate: a [`Node`] is handed received frames
//! and the time, and says what to do with each ([`Action`]); frames it
//! generates by itself (neighbour requests, gratuitous ARP, unsolicited
//! NA) are pulled with [`Node::poll_transmit`]; timers run in
//! [`Node::on_tick`]. No sockets, threads, clock or logging.
//!
//! # A received frame ([`Node::handle`])
//! 1. Ethernet and VLAN tags ([`l2`]); a unicast frame for another MAC is
//!    dropped (`not_for_us`); EtherTypes other than ARP/IPv4/IPv6 go to
//!    the kernel.
//! 2. ARP: senders are learned (RFC 826 merge: an existing entry is always
//!    updated, a new one is created only from packets addressed to us);
//!    a request for an owned address — interface address, VIP, FullNAT
//!    local address, SNAT address — is answered in place.
//! 3. IPv6 neighbour solicitation/advertisement: the same, answered with
//!    an NA in place (hop limit 255 and the checksum are checked first).
//! 4. Other IP packets: trimmed to their IP length (Ethernet padding
//!    dropped), then
//!    - not for an owned address and TTL/hop limit ≤ 1: ICMP time exceeded
//!      in place, back to the sender;
//!    - else the balancer ([`Worker::process`]). `Forward` → route, resolve,
//!      new Ethernet header, `Transmit`. `Pass` → an echo request to an
//!      owned address is answered in place; anything else for an owned
//!      address, multicast or broadcast goes to the kernel; anything else
//!      is routed (the node is a router).
//!
//! # Forwarding and TTL
//! Every packet the node forwards — balanced (any mode, for TUN the outer
//! header) or routed — has its TTL / hop limit decremented, as a router
//! and LVS do; packets the node originates or answers (echo replies, ICMP
//! errors, what the kernel sends) start at 64. A balanced packet that
//! arrives with TTL ≤ 1 (it is addressed to an owned VIP, so it cannot be
//! refused before the balancer has seen it) is dropped and counted
//! (`ttl_expired`) without an ICMP error: the error would have to quote the
//! packet as received, which the rewrite has already changed.
//! Next hop: the balancer's (DR: the real server), else the route's
//! gateway, else the destination itself (connected route). The route is
//! looked up for that next hop when the balancer names one. A packet whose
//! next hop is not resolved yet is copied, finished (rewritten, TTL
//! decremented), into the node's fixed [`hold`] pool — up to
//! [`hold::PER_NEIGHBOUR`] per next hop, for at most [`hold::HOLD_MS`] —
//! and its frame is `Consumed`; when the ARP reply / NA arrives, the held
//! packets leave through [`Node::poll_transmit`] in arrival order with the
//! egress port's MAC and the neighbour's. Beyond the limit (or with the
//! pool full) the newest packet is dropped (`neighbour_pending`). Packets larger
//! than the egress port's MTU are dropped (`too_big`); the node does not
//! fragment.
//!
//! # Answers go back where the question came from
//! ARP replies, neighbour advertisements, echo replies and time-exceeded
//! errors are written in place and sent out of the receiving port to the
//! frame's source MAC with the same VLAN tags, without a route or
//! neighbour lookup (a host behind a router is answered through that
//! router, whose MAC is the frame's source).
//!
//! # The kernel (exception path)
//! `Action::Kernel` frames are written to a TAP by the daemon, unchanged
//! (their destination MAC is the port's, so give the TAP the port's MAC or
//! make it promiscuous). What the kernel sends back comes through
//! [`Node::handle_from_kernel`]: the node is the kernel's only neighbour —
//! it answers the kernel's ARP requests and neighbour solicitations itself
//! with the egress port's MAC (proxy), and routes and resolves the
//! kernel's unicast IP packets like forwarded ones (without decrementing
//! the TTL: the kernel originated them). A gratuitous ARP from the kernel
//! for an owned address leaves the port (keepalived's announcements), and
//! so does an unsolicited neighbour advertisement for one; the kernel's
//! duplicate address detection probes are not answered (that would fail
//! its link-local address, the source of VRRPv3 adverts) but leave;
//! multicast/broadcast from the kernel (VRRP, router solicitations)
//! leaves, with the port's source MAC,
//! from the port of the interface address it is sent from (else the first
//! port).
//!
//! # Generated frames
//! A bounded queue ([`TX_QUEUE`]) of descriptors, turned into frames by
//! [`Node::poll_transmit`]. Neighbour requests are rate-limited per next
//! hop by the cache ([`neighbour::RETRANS_MS`]); what the limit suppresses
//! is counted, never logged. One gratuitous ARP (IPv4) or unsolicited NA
//! (IPv6) is queued for every owned address at start and for every address
//! that becomes owned at [`Node::apply`] — on its interface's port, or for
//! VIPs and local addresses on the port of the connected route covering
//! them (every port when none does).
//!
//! Not done yet: IPv6 link-local addresses of their own (configure one as
//! an interface address if routers must reach the node by it), per-VLAN
//! interfaces, fragmentation, ICMP redirects, repeated announcements.

pub mod config;
pub mod counters;
pub mod hold;
pub mod icmp;
pub mod l2;
pub mod neighbour;
pub mod route;

pub use config::{AddrConfig, PortConfig, RouteConfig, StackConfig};
pub use counters::{PortCounters, StackCounters};
pub use neighbour::{Neighbour, NeighbourCache, NeighbourState};
pub use route::{Route, RouteEntry, RouteTable};

use std::collections::VecDeque;
use std::sync::Arc;

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hashbrown::HashMap;
use rvs_wire::arp::{ArpOperation, ArpPacket, ArpRepr};
use rvs_wire::ethernet::{MacAddr, ethertype};
use rvs_wire::icmpv6::{self, Icmpv6Packet, Icmpv6Repr};
use rvs_wire::ip_proto;
use rvs_wire::ipv4::Ipv4Packet;
use rvs_wire::ipv6::{self, Ipv6Packet, Ipv6Repr};

use crate::config::{Config, ForwardMode};
use crate::conn::Time;
use crate::fwd::Verdict;
use crate::packet::Packet;
use crate::stats::DropReason;
use crate::worker::Worker;

use config::mask;
use counters::inc;
use hold::HoldPool;
use neighbour::{Learned, Resolve};

/// Where [`Node::poll_transmit`] writes a frame in the caller's buffer
/// (the same headroom `rvs-io` reserves).
pub const HEADROOM: usize = 128;

/// Capacity of the queue of generated frames.
pub const TX_QUEUE: usize = 256;

/// Neighbour-cache slots examined per [`Node::on_tick`].
pub const NEIGHBOUR_EXPIRE_BUDGET: usize = 512;

/// Connections examined per [`Node::on_tick`].
pub const CONN_EXPIRE_BUDGET: usize = 4096;

/// What the caller does with the frame it passed in. The frame was
/// rewritten in place and may have moved within its buffer (grown into the
/// headroom, shrunk): its new start and length are the `Packet`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send the frame out of `port`.
    Transmit {
        /// The egress port.
        port: u16,
    },
    /// Hand the frame to the kernel (write it to the TAP).
    Kernel,
    /// The node took what it needed (an ARP reply, an NA, an ARP request
    /// for someone else): free the buffer. Not a drop.
    Consumed,
    /// Dropped; the reason is counted (by the stack in
    /// [`StackCounters::drops`], or by the balancer in its own counters).
    Drop(DropReason),
}

/// A frame to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Generated {
    ArpRequest {
        port: u16,
        target: Ipv4Addr,
    },
    Ns {
        port: u16,
        target: Ipv6Addr,
    },
    Garp {
        port: u16,
        addr: Ipv4Addr,
    },
    Una {
        port: u16,
        addr: Ipv6Addr,
    },
    /// A packet held in the [`hold::HoldPool`] slot `slot`, its next hop
    /// now at `mac`.
    Held {
        port: u16,
        slot: u16,
        mac: MacAddr,
    },
}

impl Generated {
    fn port(self) -> u16 {
        match self {
            Generated::ArpRequest { port, .. }
            | Generated::Ns { port, .. }
            | Generated::Garp { port, .. }
            | Generated::Una { port, .. }
            | Generated::Held { port, .. } => port,
        }
    }
}

/// Why an address is owned (bits).
pub mod owned {
    /// An interface address.
    pub const INTERFACE: u8 = 1;
    /// The address of a virtual service.
    pub const VIP: u8 = 2;
    /// A FullNAT local address or an SNAT source address.
    pub const LOCAL: u8 = 4;
}

/// One worker's node: the stack around one [`Worker`].
#[derive(Debug)]
pub struct Node {
    worker: Worker,
    stack: Arc<StackConfig>,
    owned: HashMap<IpAddr, u8>,
    routes: RouteTable,
    neighbours: NeighbourCache,
    queue: VecDeque<Generated>,
    held: HoldPool,
    counters: StackCounters,
}

/// The addresses the node answers for.
fn owned_of(lb: &Config, stack: &StackConfig) -> HashMap<IpAddr, u8> {
    let mut m: HashMap<IpAddr, u8> = HashMap::new();
    for a in &stack.addrs {
        *m.entry(a.addr).or_default() |= owned::INTERFACE;
    }
    for s in lb.services() {
        if let Some(v) = s.spec.key.addr()
            && !stack.explicit_vips
        {
            *m.entry(v).or_default() |= owned::VIP;
        }
        for &l in &s.spec.laddrs {
            *m.entry(l).or_default() |= owned::LOCAL;
        }
        for d in &s.spec.dests {
            if d.mode == ForwardMode::Snat {
                *m.entry(d.addr).or_default() |= owned::LOCAL;
            }
        }
    }
    m
}

fn set_bounds(frame: &mut Packet<'_>, start: usize, len: usize) -> bool {
    frame.set_len(0) && frame.set_start(start) && frame.set_len(len)
}

/// The EtherType of an IP packet of the given family.
fn ip_ethertype(v6: bool) -> u16 {
    if v6 { ethertype::IPV6 } else { ethertype::IPV4 }
}

/// The destination, TTL and family facts of an IP header, read without a
/// full parse.
#[derive(Debug, Clone, Copy)]
struct IpPeek {
    v6: bool,
    /// Header plus payload, by the header's own length field.
    len: usize,
    ttl: u8,
    /// Protocol (IPv4) or the fixed header's next header (IPv6).
    proto: u8,
    /// Offset of the upper-layer header when it follows the fixed header.
    l4: usize,
    dst: IpAddr,
}

fn peek(l3: &[u8]) -> Option<IpPeek> {
    match l3.first()? >> 4 {
        4 => {
            let h: &[u8; 20] = l3.first_chunk()?;
            let ihl = usize::from(h[0] & 0x0f) * 4;
            let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
            (ihl >= 20 && len >= ihl && len <= l3.len()).then_some(IpPeek {
                v6: false,
                len,
                ttl: h[8],
                proto: h[9],
                l4: ihl,
                dst: IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19])),
            })
        }
        6 => {
            let h: &[u8; 40] = l3.first_chunk()?;
            let len = 40 + usize::from(u16::from_be_bytes([h[4], h[5]]));
            let mut dst = [0u8; 16];
            dst.copy_from_slice(h.get(24..40)?);
            (len <= l3.len()).then_some(IpPeek {
                v6: true,
                len,
                ttl: h[7],
                proto: h[6],
                l4: 40,
                dst: IpAddr::V6(Ipv6Addr::from(dst)),
            })
        }
        _ => None,
    }
}

fn is_group(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => v.is_multicast() || v.is_broadcast(),
        IpAddr::V6(v) => v.is_multicast(),
    }
}

impl Node {
    /// A node around `worker` (and the balancer configuration it holds)
    /// with the stack configuration `stack`. Queues an announcement for
    /// every owned address. Allocates; call at setup.
    pub fn new(worker: Worker, stack: Arc<StackConfig>) -> Self {
        let seed = stack.ports.iter().fold(0x5256_535f_6e65_6967u64, |h, p| {
            h.rotate_left(13)
                ^ u64::from_be_bytes({
                    let [a, b, c, d, e, f] = p.mac.octets();
                    [0, 0, a, b, c, d, e, f]
                })
        });
        let mut node = Node {
            worker,
            stack: Arc::new(StackConfig::default()),
            owned: HashMap::new(),
            routes: RouteTable::default(),
            neighbours: NeighbourCache::new(neighbour::DEFAULT_CAPACITY, seed),
            queue: VecDeque::with_capacity(TX_QUEUE),
            held: HoldPool::new(),
            counters: StackCounters::default(),
        };
        let lb = Arc::clone(node.worker.config());
        node.adopt(&lb, stack, Time::ZERO);
        node
    }

    /// Adopts new snapshots (between bursts): the balancer's (see
    /// [`Worker::apply`] for `expire_removed`) and the stack's. Routes are
    /// rebuilt from the whole address list; static neighbours replace the
    /// old ones; an announcement is queued for every newly owned address.
    pub fn apply(&mut self, lb: Arc<Config>, stack: Arc<StackConfig>, expire_removed: bool) {
        self.worker.apply(Arc::clone(&lb), expire_removed);
        self.adopt(&lb, stack, Time::ZERO);
    }

    fn adopt(&mut self, lb: &Config, stack: Arc<StackConfig>, now: Time) {
        let owned = owned_of(lb, &stack);
        self.routes = RouteTable::build(&stack);
        let ids: Vec<u16> = stack.ports.iter().map(|p| p.id).collect();
        self.neighbours.retain_ports(&ids);
        let gone = self.held.expire(now, Some(&ids));
        self.counters.neighbour_held_expired =
            self.counters.neighbour_held_expired.wrapping_add(gone);
        self.neighbours.set_static(&stack.static_neighbours, now);
        self.counters.ports = stack
            .ports
            .iter()
            .map(|p| {
                self.counters.port(p.id).copied().unwrap_or(PortCounters {
                    id: p.id,
                    ..PortCounters::default()
                })
            })
            .collect();
        let mut new: Vec<IpAddr> = owned
            .keys()
            .copied()
            .filter(|a| !self.owned.contains_key(a))
            .collect();
        new.sort_unstable();
        self.stack = stack;
        self.owned = owned;
        for addr in new {
            let iface = self
                .stack
                .addrs
                .iter()
                .find(|a| a.addr == addr)
                .map(|a| a.port);
            let port = iface.or_else(|| {
                self.routes
                    .lookup(addr)
                    .filter(|r| r.connected)
                    .map(|r| r.port)
            });
            let ports: Vec<u16> = match port {
                Some(p) => vec![p],
                None => ids.clone(),
            };
            for port in ports {
                self.enqueue(match addr {
                    IpAddr::V4(addr) => Generated::Garp { port, addr },
                    IpAddr::V6(addr) => Generated::Una { port, addr },
                });
            }
        }
    }

    /// The balancer.
    pub fn worker(&self) -> &Worker {
        &self.worker
    }

    /// The balancer, writable (removing connections, …).
    pub fn worker_mut(&mut self) -> &mut Worker {
        &mut self.worker
    }

    /// The stack's counters.
    pub fn counters(&self) -> &StackCounters {
        &self.counters
    }

    /// The neighbour cache (for listings).
    pub fn neighbours(&self) -> &NeighbourCache {
        &self.neighbours
    }

    /// The routing table (for listings).
    pub fn routes(&self) -> &RouteTable {
        &self.routes
    }

    /// The stack configuration in force.
    pub fn stack_config(&self) -> &Arc<StackConfig> {
        &self.stack
    }

    /// Why `addr` is owned ([`owned`] bits), if it is.
    pub fn owner(&self, addr: IpAddr) -> Option<u8> {
        self.owned.get(&addr).copied()
    }

    /// True if the node answers for `addr`.
    #[inline]
    pub fn owns(&self, addr: IpAddr) -> bool {
        self.owned.contains_key(&addr)
    }

    /// Frames waiting for [`poll_transmit`](Self::poll_transmit).
    pub fn pending_transmit(&self) -> usize {
        self.queue.len()
    }

    fn port_mac(&self, port: u16) -> Option<MacAddr> {
        self.stack.port(port).map(|p| p.mac)
    }

    fn drop(&mut self, reason: DropReason) -> Action {
        self.counters.drop(reason);
        Action::Drop(reason)
    }

    fn enqueue(&mut self, g: Generated) {
        if self.queue.len() < TX_QUEUE {
            self.queue.push_back(g);
        } else {
            inc(&mut self.counters.tx_queue_full);
        }
    }

    /// Queues for transmission the packets held for `nh` on `port`, now
    /// that the cache knows its MAC (oldest first; too old ones are
    /// discarded and counted).
    fn release_held(&mut self, nh: IpAddr, port: u16, now: Time) {
        let Some(mac) = self
            .neighbours
            .get(nh, port)
            .filter(|n| n.state != NeighbourState::Incomplete)
            .map(|n| n.mac)
        else {
            return;
        };
        let mut expired = 0;
        while let Some(slot) = self.held.release_next(nh, port, now, &mut expired) {
            if self.queue.len() < TX_QUEUE {
                self.queue.push_back(Generated::Held { port, slot, mac });
            } else {
                self.held.free(slot);
                inc(&mut self.counters.tx_queue_full);
            }
        }
        self.counters.neighbour_held_expired =
            self.counters.neighbour_held_expired.wrapping_add(expired);
    }

    fn request(&mut self, port: u16, target: IpAddr) {
        self.enqueue(match target {
            IpAddr::V4(target) => Generated::ArpRequest { port, target },
            IpAddr::V6(target) => Generated::Ns { port, target },
        });
    }

    /// Our address to send from to `target` out of `port`: an interface
    /// address of that port in the target's prefix, else any of that port,
    /// else any interface address, else any owned address, of the family.
    fn source_for(&self, port: u16, target: IpAddr) -> Option<IpAddr> {
        let fam = |a: IpAddr| a.is_ipv4() == target.is_ipv4();
        let addrs = &self.stack.addrs;
        addrs
            .iter()
            .find(|a| {
                a.port == port
                    && fam(a.addr)
                    && mask(a.addr, a.prefix_len) == mask(target, a.prefix_len)
            })
            .or_else(|| addrs.iter().find(|a| a.port == port && fam(a.addr)))
            .or_else(|| addrs.iter().find(|a| fam(a.addr)))
            .map(|a| a.addr)
            .or_else(|| self.owned.keys().copied().filter(|&a| fam(a)).min())
    }

    /// One received Ethernet frame (the `Packet` spans the frame, with
    /// headroom before it) from `port`.
    pub fn handle(&mut self, port: u16, frame: &mut Packet<'_>, now: Time) -> Action {
        self.counters.rx(port, frame.len());
        let action = self.handle_frame(port, frame, now);
        match action {
            Action::Transmit { port } => self.counters.tx(port, frame.len()),
            Action::Kernel => inc(&mut self.counters.to_kernel),
            Action::Consumed | Action::Drop(_) => {}
        }
        action
    }

    fn handle_frame(&mut self, port: u16, frame: &mut Packet<'_>, now: Time) -> Action {
        let Some(mac) = self.port_mac(port) else {
            return self.drop(DropReason::Unsupported);
        };
        let l2 = match l2::parse(frame.data()) {
            Ok(l2) => l2,
            Err(r) => return self.drop(r),
        };
        if l2.dst.is_unicast() && l2.dst != mac {
            return self.drop(DropReason::NotForUs);
        }
        match l2.ethertype {
            ethertype::ARP => self.arp(port, mac, frame, &l2, now),
            ethertype::IPV4 | ethertype::IPV6 => self.ip(port, mac, frame, &l2, now),
            _ => Action::Kernel,
        }
    }

    fn arp(
        &mut self,
        port: u16,
        mac: MacAddr,
        frame: &mut Packet<'_>,
        l2: &l2::L2,
        now: Time,
    ) -> Action {
        let body = frame.data().get(l2.l3_offset..).unwrap_or_default();
        let repr = match ArpPacket::parse(body) {
            Ok(p) => ArpRepr::parse(&p),
            Err(rvs_wire::Error::Unsupported) => return self.drop(DropReason::Unsupported),
            Err(_) => return self.drop(DropReason::Malformed),
        };
        let target = IpAddr::V4(repr.target_ip);
        let sender = IpAddr::V4(repr.sender_ip);
        let for_us = self.owns(target);
        let mut learned = false;
        if !repr.sender_ip.is_unspecified()
            && repr.sender_mac.is_unicast()
            && repr.sender_mac != MacAddr::ZERO
            && !self.owns(sender)
        {
            let confirmed = repr.operation == ArpOperation::Reply && for_us;
            learned = self
                .neighbours
                .learn(sender, port, repr.sender_mac, confirmed, for_us, now)
                != Learned::Ignored;
            if learned {
                self.release_held(sender, port, now);
            }
        }
        if repr.operation == ArpOperation::Request
            && for_us
            && repr.sender_ip != repr.target_ip
            && let Some(reply) = repr.reply(mac)
        {
            let l3 = frame.start() + l2.l3_offset;
            let (buf, _) = frame.buffer_mut();
            let ok = buf.get_mut(l3..).is_some_and(|b| reply.emit(b).is_ok())
                && l2::write_reply(buf, l3, l2, mac, ethertype::ARP).is_some();
            if ok {
                inc(&mut self.counters.arp_replies_sent);
                return Action::Transmit { port };
            }
            return self.drop(DropReason::NoRoom);
        }
        inc(if learned {
            &mut self.counters.arp_learned
        } else {
            &mut self.counters.arp_ignored
        });
        Action::Consumed
    }

    fn ip(
        &mut self,
        port: u16,
        mac: MacAddr,
        frame: &mut Packet<'_>,
        l2: &l2::L2,
        now: Time,
    ) -> Action {
        let off = l2.l3_offset;
        let Some(ip) = frame.data().get(off..).and_then(peek) else {
            return self.drop(DropReason::Malformed);
        };
        if ip.v6 != (l2.ethertype == ethertype::IPV6) {
            return self.drop(DropReason::Malformed);
        }
        let l3 = frame.start() + off;
        let first_l4 = frame.data().get(off + ip.l4).copied();
        if ip.v6
            && ip.proto == ip_proto::ICMPV6
            && matches!(
                first_l4,
                Some(icmpv6::msg_type::NEIGHBOR_SOLICIT | icmpv6::msg_type::NEIGHBOR_ADVERT)
            )
        {
            return self.nd(port, mac, frame, l2, ip.len, now);
        }
        let dst_owned = self.owns(ip.dst);
        let group = is_group(ip.dst);
        if ip.ttl <= 1 && !dst_owned && !group {
            return self.expired(port, mac, frame, l2, ip.len);
        }
        let (verdict, start, len) = {
            let (buf, _) = frame.buffer_mut();
            let Some(mut p) = Packet::new(buf, l3, ip.len) else {
                return self.drop(DropReason::Malformed);
            };
            let v = self.worker.process(&mut p, 0, now);
            (v, p.start(), p.len())
        };
        match verdict {
            Verdict::Forward { next_hop } => self.forward(frame, start, len, next_hop, true, now),
            Verdict::Drop(r) => Action::Drop(r),
            Verdict::Pass if dst_owned => {
                let echo = if ip.v6 {
                    ip.proto == ip_proto::ICMPV6 && first_l4 == Some(icmpv6::msg_type::ECHO_REQUEST)
                } else {
                    ip.proto == ip_proto::ICMP
                        && first_l4 == Some(rvs_wire::icmpv4::msg_type::ECHO_REQUEST)
                };
                if echo {
                    self.echo(port, mac, frame, l2, start, len, ip.v6)
                } else {
                    // Restore the frame as received (the worker passes
                    // packets unchanged) but without Ethernet padding.
                    let _ = set_bounds(frame, l3 - off, off + len);
                    Action::Kernel
                }
            }
            Verdict::Pass if group => Action::Kernel,
            Verdict::Pass => self.forward(frame, start, len, None, true, now),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn echo(
        &mut self,
        port: u16,
        mac: MacAddr,
        frame: &mut Packet<'_>,
        l2: &l2::L2,
        start: usize,
        len: usize,
        v6: bool,
    ) -> Action {
        let (buf, _) = frame.buffer_mut();
        let Some(l3) = buf.get_mut(start..start + len) else {
            return self.drop(DropReason::Malformed);
        };
        let done = if v6 {
            icmp::echo_reply_v6(l3)
        } else {
            icmp::echo_reply_v4(l3)
        };
        if let Err(r) = done {
            return self.drop(r);
        }
        let fs = l2::write_reply(buf, start, l2, mac, ip_ethertype(v6));
        self.transmit(frame, fs, start + len, port, |c| &mut c.echo_replies)
    }

    /// The last step of every frame the node sends: the frame now spans
    /// from the Ethernet header just written at `header` (`None`: it did not
    /// fit) to `end` of the buffer; it is counted with `count` and sent out
    /// of `port`.
    fn transmit(
        &mut self,
        frame: &mut Packet<'_>,
        header: Option<usize>,
        end: usize,
        port: u16,
        count: fn(&mut StackCounters) -> &mut u64,
    ) -> Action {
        match header {
            Some(fs) if set_bounds(frame, fs, end.saturating_sub(fs)) => {
                inc(count(&mut self.counters));
                Action::Transmit { port }
            }
            _ => self.drop(DropReason::NoRoom),
        }
    }

    fn expired(
        &mut self,
        port: u16,
        mac: MacAddr,
        frame: &mut Packet<'_>,
        l2: &l2::L2,
        ip_len: usize,
    ) -> Action {
        let l3 = frame.start() + l2.l3_offset;
        let v6 = l2.ethertype == ethertype::IPV6;
        let probe = if v6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        let Some(ours) = self.source_for(port, probe) else {
            return self.drop(DropReason::TtlExpired);
        };
        let (buf, _) = frame.buffer_mut();
        let Some(mut p) = Packet::new(buf, l3, ip_len) else {
            return self.drop(DropReason::Malformed);
        };
        if let Err(r) = icmp::time_exceeded(&mut p, ours) {
            return self.drop(r);
        }
        let (s, len) = (p.start(), p.len());
        let fs = l2::write_reply(buf, s, l2, mac, ip_ethertype(v6));
        self.transmit(frame, fs, s + len, port, |c| &mut c.time_exceeded_sent)
    }

    /// Sends the IP packet at `start..start + len` of the frame's buffer
    /// towards its destination (or `next_hop`).
    fn forward(
        &mut self,
        frame: &mut Packet<'_>,
        start: usize,
        len: usize,
        next_hop: Option<IpAddr>,
        decrement: bool,
        now: Time,
    ) -> Action {
        let (buf, _) = frame.buffer_mut();
        let Some(ip) = buf.get(start..start + len).and_then(peek) else {
            return self.drop(DropReason::Malformed);
        };
        let target = next_hop.unwrap_or(ip.dst);
        let Some(route) = self.routes.lookup(target) else {
            return self.drop(DropReason::NoRoute);
        };
        let nh = match next_hop {
            Some(h) => h,
            None => route.gateway.unwrap_or(ip.dst),
        };
        let Some(pc) = self.stack.port(route.port) else {
            return self.drop(DropReason::NoRoute);
        };
        let (port, src_mac) = (pc.id, pc.mac);
        if len > usize::from(pc.mtu) {
            return self.drop(DropReason::TooBig);
        }
        let Some(l3) = buf.get_mut(start..start + len) else {
            return self.drop(DropReason::Malformed);
        };
        if decrement {
            let expired = if ip.v6 {
                Ipv6Packet::parse(l3).map_or(true, |mut p| p.decrement_hop_limit().is_none())
            } else {
                Ipv4Packet::parse(l3).map_or(true, |mut p| p.decrement_ttl())
            };
            if expired {
                return self.drop(DropReason::TtlExpired);
            }
        }
        let dst_mac = match self.neighbours.resolve(nh, port, now) {
            Resolve::Ready { mac, refresh } => {
                if refresh {
                    self.request(port, nh);
                }
                mac
            }
            Resolve::Pending { request } => {
                if request {
                    self.request(port, nh);
                } else {
                    inc(&mut self.counters.neighbour_requests_limited);
                }
                // Hold a copy of the finished packet; the frame's buffer
                // is freed by the caller either way.
                let held = buf
                    .get(start..start + len)
                    .map(|pkt| self.held.hold(nh, port, pkt, now));
                if let Some(Ok(())) = held {
                    inc(&mut self.counters.neighbour_held);
                    return Action::Consumed;
                }
                inc(&mut self.counters.neighbour_hold_overflow);
                return self.drop(DropReason::NeighbourPending);
            }
        };
        let fs = l2::write_header(buf, start, src_mac, dst_mac, ip_ethertype(ip.v6));
        self.transmit(frame, fs, start + len, port, |c| &mut c.forwarded)
    }

    /// Neighbour solicitations and advertisements.
    fn nd(
        &mut self,
        port: u16,
        mac: MacAddr,
        frame: &mut Packet<'_>,
        l2: &l2::L2,
        ip_len: usize,
        now: Time,
    ) -> Action {
        let l3 = frame.start() + l2.l3_offset;
        let Some(bytes) = frame.data().get(l2.l3_offset..l2.l3_offset + ip_len) else {
            return self.drop(DropReason::Malformed);
        };
        let Ok(ip) = Ipv6Packet::parse(bytes) else {
            return self.drop(DropReason::Malformed);
        };
        // RFC 4861 §7.1: only from the link itself.
        if ip.hop_limit() != 255 {
            return self.drop(DropReason::Malformed);
        }
        let (src, dst) = (ip.src(), ip.dst());
        let Ok(msg) = Icmpv6Packet::parse(ip.payload()) else {
            return self.drop(DropReason::Malformed);
        };
        if !msg.verify_checksum(src, dst) {
            return self.drop(DropReason::BadChecksum);
        }
        let repr = match Icmpv6Repr::parse(&msg) {
            Ok(r) => r,
            Err(_) => return self.drop(DropReason::Malformed),
        };
        match repr {
            Icmpv6Repr::NeighborSolicit {
                target,
                source_lladdr,
            } => {
                let ours = self.owns(IpAddr::V6(target));
                let mut learned = false;
                if let Some(m) = source_lladdr
                    && !src.is_unspecified()
                    && m.is_unicast()
                    && !self.owns(IpAddr::V6(src))
                {
                    learned = self
                        .neighbours
                        .learn(IpAddr::V6(src), port, m, false, ours, now)
                        != Learned::Ignored;
                    if learned {
                        self.release_held(IpAddr::V6(src), port, now);
                    }
                }
                if !ours {
                    inc(if learned {
                        &mut self.counters.nd_learned
                    } else {
                        &mut self.counters.nd_ignored
                    });
                    return Action::Consumed;
                }
                let (to, na) = Icmpv6Repr::answer_solicitation(src, target, mac, true);
                let mut reply_l2 = *l2;
                if to.is_multicast() {
                    reply_l2.src = MacAddr::from_ipv6_multicast(to);
                }
                let (buf, _) = frame.buffer_mut();
                let Some(len) = buf
                    .get_mut(l3..)
                    .and_then(|out| emit_nd_packet(out, target, to, &na))
                else {
                    return self.drop(DropReason::NoRoom);
                };
                let fs = l2::write_reply(buf, l3, &reply_l2, mac, ethertype::IPV6);
                let end = l3 + len;
                self.transmit(frame, fs, end, port, |c| &mut c.na_sent)
            }
            Icmpv6Repr::NeighborAdvert {
                flags,
                target,
                target_lladdr,
            } => {
                let t = IpAddr::V6(target);
                let learned = match target_lladdr {
                    Some(m) if m.is_unicast() && !self.owns(t) => {
                        self.neighbours
                            .learn(t, port, m, flags.solicited, false, now)
                            != Learned::Ignored
                    }
                    _ => false,
                };
                if learned {
                    self.release_held(t, port, now);
                }
                inc(if learned {
                    &mut self.counters.nd_learned
                } else {
                    &mut self.counters.nd_ignored
                });
                Action::Consumed
            }
            _ => Action::Kernel,
        }
    }

    /// A frame the kernel sent out of its TAP. ARP requests and neighbour
    /// solicitations are answered (back to the kernel: `Action::Kernel`)
    /// with the MAC of the port the target is routed through; unicast IP is
    /// routed and resolved by the node (TTL untouched); multicast and
    /// broadcast leave from the port of their source address.
    pub fn handle_from_kernel(&mut self, frame: &mut Packet<'_>, now: Time) -> Action {
        inc(&mut self.counters.from_kernel);
        let action = self.kernel_frame(frame, now);
        if let Action::Transmit { port } = action {
            self.counters.tx(port, frame.len());
        }
        action
    }

    fn route_port(&self, target: IpAddr) -> Option<u16> {
        self.routes
            .lookup(target)
            .map(|r| r.port)
            .or_else(|| self.stack.ports.first().map(|p| p.id))
    }

    fn kernel_frame(&mut self, frame: &mut Packet<'_>, now: Time) -> Action {
        let l2 = match l2::parse(frame.data()) {
            Ok(l2) => l2,
            Err(r) => return self.drop(r),
        };
        let off = l2.l3_offset;
        let l3 = frame.start() + off;
        match l2.ethertype {
            ethertype::ARP => {
                let body = frame.data().get(off..).unwrap_or_default();
                let Ok(repr) = ArpPacket::parse(body).map(|p| ArpRepr::parse(&p)) else {
                    return self.drop(DropReason::Malformed);
                };
                let Some((port, mac)) = self
                    .route_port(IpAddr::V4(repr.target_ip))
                    .and_then(|p| Some((p, self.port_mac(p)?)))
                else {
                    return self.drop(DropReason::NoRoute);
                };
                if repr.sender_ip == repr.target_ip {
                    return self.kernel_garp(frame, l3, repr.sender_ip, port, mac);
                }
                match repr.reply(mac) {
                    Some(reply) => {
                        let (buf, _) = frame.buffer_mut();
                        let ok = buf.get_mut(l3..).is_some_and(|b| reply.emit(b).is_ok())
                            && l2::write_reply(buf, l3, &l2, mac, ethertype::ARP).is_some();
                        if ok {
                            Action::Kernel
                        } else {
                            self.drop(DropReason::NoRoom)
                        }
                    }
                    _ => Action::Consumed,
                }
            }
            ethertype::IPV4 | ethertype::IPV6 => {
                let Some(ip) = frame.data().get(off..).and_then(peek) else {
                    return self.drop(DropReason::Malformed);
                };
                if ip.v6 && ip.proto == ip_proto::ICMPV6 {
                    let t = frame.data().get(off + ip.l4).copied();
                    // A duplicate address detection probe (unspecified
                    // source) is not answered — the answer would fail the
                    // kernel's own address — but leaves as multicast.
                    let dad = frame
                        .data()
                        .get(off + 8..off + 24)
                        .is_some_and(|s| s.iter().all(|b| *b == 0));
                    if t == Some(icmpv6::msg_type::NEIGHBOR_SOLICIT) && !dad {
                        return self.kernel_ns(frame, &l2, ip.len);
                    }
                    if t == Some(icmpv6::msg_type::NEIGHBOR_ADVERT) {
                        return self.kernel_na(frame, &l2, ip.len);
                    }
                }
                if is_group(ip.dst) {
                    let src = frame.data().get(off..).and_then(|b| match ip.v6 {
                        false => b.get(12..16).and_then(|s| {
                            <[u8; 4]>::try_from(s).ok().map(|a| IpAddr::V4(a.into()))
                        }),
                        true => b.get(8..24).and_then(|s| {
                            <[u8; 16]>::try_from(s).ok().map(|a| IpAddr::V6(a.into()))
                        }),
                    });
                    let port = src
                        .and_then(|s| self.stack.addrs.iter().find(|a| a.addr == s))
                        .map(|a| a.port)
                        .or_else(|| self.stack.ports.first().map(|p| p.id));
                    let Some((port, mac)) = port.and_then(|p| Some((p, self.port_mac(p)?))) else {
                        return self.drop(DropReason::NoRoute);
                    };
                    let (buf, start) = frame.buffer_mut();
                    if let Some(s) = buf.get_mut(start + 6..start + 12) {
                        s.copy_from_slice(&mac.octets());
                    }
                    return Action::Transmit { port };
                }
                self.forward(frame, l3, ip.len, None, false, now)
            }
            _ => self.drop(DropReason::Unsupported),
        }
    }

    /// A gratuitous ARP the kernel sends (keepalived's announcements on
    /// becoming VRRP MASTER) leaves from the port, with the port's MAC, if
    /// it announces an address the node owns; one for any other address
    /// would draw traffic the node does not answer for, and is dropped.
    fn kernel_garp(
        &mut self,
        frame: &mut Packet<'_>,
        l3: usize,
        addr: std::net::Ipv4Addr,
        port: u16,
        mac: MacAddr,
    ) -> Action {
        if !self.owned.contains_key(&IpAddr::V4(addr)) {
            return Action::Consumed;
        }
        let (buf, start) = frame.buffer_mut();
        // Ethernet source, then the ARP sender hardware address (offset 8).
        for at in [start + 6, l3 + 8] {
            match buf.get_mut(at..at + 6) {
                Some(s) => s.copy_from_slice(&mac.octets()),
                None => return self.drop(DropReason::Malformed),
            }
        }
        inc(&mut self.counters.garp_sent);
        Action::Transmit { port }
    }

    /// An unsolicited neighbour advertisement the kernel sends (the IPv6
    /// announcements of a VRRP MASTER) leaves, like a gratuitous ARP, from
    /// the port the target is routed through with that port's MAC (in the
    /// Ethernet header and as target link-layer address) if it announces an
    /// address the node owns; any other advertisement is dropped.
    fn kernel_na(&mut self, frame: &mut Packet<'_>, l2: &l2::L2, ip_len: usize) -> Action {
        let off = l2.l3_offset;
        let parsed = frame
            .data()
            .get(off..off + ip_len)
            .and_then(|b| Ipv6Packet::parse(b).ok())
            .and_then(|ip| {
                let msg = Icmpv6Packet::parse(ip.payload()).ok()?;
                match Icmpv6Repr::parse(&msg).ok()? {
                    Icmpv6Repr::NeighborAdvert { flags, target, .. } => {
                        Some((ip.src(), ip.dst(), flags, target))
                    }
                    _ => None,
                }
            });
        let Some((src, dst, flags, target)) = parsed else {
            return self.drop(DropReason::Malformed);
        };
        if !dst.is_multicast() || !self.owns(IpAddr::V6(target)) {
            return Action::Consumed;
        }
        let Some((port, mac)) = self
            .route_port(IpAddr::V6(target))
            .and_then(|p| Some((p, self.port_mac(p)?)))
        else {
            return self.drop(DropReason::NoRoute);
        };
        let na = Icmpv6Repr::NeighborAdvert {
            flags,
            target,
            target_lladdr: Some(mac),
        };
        let (buf, start) = frame.buffer_mut();
        let len = buf
            .get_mut(start + off..)
            .and_then(|out| emit_nd_packet(out, src, dst, &na));
        match (len, buf.get_mut(start + 6..start + 12)) {
            (Some(_), Some(s)) => s.copy_from_slice(&mac.octets()),
            _ => return self.drop(DropReason::NoRoom),
        }
        if !set_bounds(frame, start, off + len.unwrap_or(0)) {
            return self.drop(DropReason::NoRoom);
        }
        inc(&mut self.counters.unsolicited_na_sent);
        Action::Transmit { port }
    }

    /// Answers the kernel's neighbour solicitation with the MAC of the port
    /// the target is routed through.
    fn kernel_ns(&mut self, frame: &mut Packet<'_>, l2: &l2::L2, ip_len: usize) -> Action {
        let l3 = frame.start() + l2.l3_offset;
        let parsed = frame
            .data()
            .get(l2.l3_offset..l2.l3_offset + ip_len)
            .and_then(|b| Ipv6Packet::parse(b).ok())
            .and_then(|ip| {
                let msg = Icmpv6Packet::parse(ip.payload()).ok()?;
                match Icmpv6Repr::parse(&msg).ok()? {
                    Icmpv6Repr::NeighborSolicit { target, .. } => Some((ip.src(), target)),
                    _ => None,
                }
            });
        let Some((src, target)) = parsed else {
            return self.drop(DropReason::Malformed);
        };
        let Some(mac) = self
            .route_port(IpAddr::V6(target))
            .and_then(|p| self.port_mac(p))
        else {
            return self.drop(DropReason::NoRoute);
        };
        let (to, na) = Icmpv6Repr::answer_solicitation(src, target, mac, true);
        let (buf, _) = frame.buffer_mut();
        let len = buf
            .get_mut(l3..)
            .and_then(|out| emit_nd_packet(out, target, to, &na));
        let written = len.filter(|_| l2::write_reply(buf, l3, l2, mac, ethertype::IPV6).is_some());
        let ok =
            written.is_some_and(|len| set_bounds(frame, l3 - l2.l3_offset, l2.l3_offset + len));
        if ok {
            Action::Kernel
        } else {
            self.drop(DropReason::NoRoom)
        }
    }

    /// Writes the next generated frame into `buf` at [`HEADROOM`]; returns
    /// (port, start, length), or `None` when there is nothing to send (or
    /// `buf` is too small: the frame stays queued).
    pub fn poll_transmit(&mut self, buf: &mut [u8], _now: Time) -> Option<(u16, usize, usize)> {
        while let Some(g) = self.queue.pop_front() {
            let port = g.port();
            let Some(mac) = self.port_mac(port) else {
                if let Generated::Held { slot, .. } = g {
                    self.held.free(slot);
                }
                continue;
            };
            let Some(out) = buf.get_mut(HEADROOM..) else {
                self.queue.push_front(g);
                return None;
            };
            let written = match g {
                Generated::ArpRequest { target, .. } => {
                    let src = match self.source_for(port, IpAddr::V4(target)) {
                        Some(IpAddr::V4(a)) => a,
                        _ => Ipv4Addr::UNSPECIFIED,
                    };
                    let n = ArpRepr::request(mac, src, target).emit_frame(out).ok();
                    if n.is_some() {
                        inc(&mut self.counters.arp_requests_sent);
                    }
                    n
                }
                Generated::Garp { addr, .. } => {
                    let n = ArpRepr::announce(mac, addr).emit_frame(out).ok();
                    if n.is_some() {
                        inc(&mut self.counters.garp_sent);
                    }
                    n
                }
                Generated::Ns { target, .. } => {
                    let Some(IpAddr::V6(src)) = self.source_for(port, IpAddr::V6(target)) else {
                        continue;
                    };
                    let dst = icmpv6::solicited_node_multicast(target);
                    let n = emit_nd(
                        out,
                        mac,
                        src,
                        dst,
                        &Icmpv6Repr::neighbor_solicit(target, mac),
                    );
                    if n.is_some() {
                        inc(&mut self.counters.ns_sent);
                    }
                    n
                }
                Generated::Held { slot, mac: dst, .. } => {
                    let Some(pkt) = self.held.bytes(slot) else {
                        continue;
                    };
                    let n = emit_held(out, mac, dst, pkt);
                    if n.is_some() {
                        self.held.free(slot);
                        inc(&mut self.counters.neighbour_held_sent);
                        inc(&mut self.counters.forwarded);
                    }
                    n
                }
                Generated::Una { addr, .. } => {
                    let msg = Icmpv6Repr::unsolicited_advert(addr, mac, true);
                    let n = emit_nd(out, mac, addr, icmpv6::ALL_NODES, &msg);
                    if n.is_some() {
                        inc(&mut self.counters.unsolicited_na_sent);
                    }
                    n
                }
            };
            match written {
                Some(len) => {
                    self.counters.tx(port, len);
                    return Some((port, HEADROOM, len));
                }
                None => {
                    self.queue.push_front(g);
                    return None;
                }
            }
        }
        None
    }

    /// Timers: ages the neighbour cache and expires the balancer's idle
    /// connections, each with a bounded amount of work
    /// ([`NEIGHBOUR_EXPIRE_BUDGET`], [`CONN_EXPIRE_BUDGET`]). Call it every
    /// few milliseconds between bursts.
    pub fn on_tick(&mut self, now: Time) {
        self.neighbours.expire(now, NEIGHBOUR_EXPIRE_BUDGET);
        let gone = self.held.expire(now, None);
        self.counters.neighbour_held_expired =
            self.counters.neighbour_held_expired.wrapping_add(gone);
        self.worker.expire(now, CONN_EXPIRE_BUDGET);
    }
}

/// Writes an Ethernet frame from `src` to `dst` carrying the held IP packet
/// `pkt`; returns its length.
fn emit_held(out: &mut [u8], src: MacAddr, dst: MacAddr, pkt: &[u8]) -> Option<usize> {
    let et = match pkt.first()? >> 4 {
        4 => ethertype::IPV4,
        _ => ethertype::IPV6,
    };
    let total = rvs_wire::ethernet::HEADER_LEN + pkt.len();
    let frame = out.get_mut(..total)?;
    let (eth, rest) = frame.split_at_mut(rvs_wire::ethernet::HEADER_LEN);
    rvs_wire::ethernet::EthernetRepr {
        src,
        dst,
        ethertype: et,
    }
    .emit(eth)
    .ok()?;
    rest.copy_from_slice(pkt);
    Some(total)
}

/// Writes an Ethernet frame carrying the ND message `msg` from `src` to the
/// multicast `dst` (hop limit 255); returns its length.
fn emit_nd(
    out: &mut [u8],
    mac: MacAddr,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    msg: &Icmpv6Repr<'_>,
) -> Option<usize> {
    let (eth, rest) = out.split_at_mut_checked(rvs_wire::ethernet::HEADER_LEN)?;
    rvs_wire::ethernet::EthernetRepr {
        src: mac,
        dst: MacAddr::from_ipv6_multicast(dst),
        ethertype: ethertype::IPV6,
    }
    .emit(eth)
    .ok()?;
    Some(rvs_wire::ethernet::HEADER_LEN + emit_nd_packet(rest, src, dst, msg)?)
}

/// Writes the IPv6 packet of the ND message `msg` (hop limit 255, as
/// RFC 4861 requires) at the start of `out`; returns its length.
fn emit_nd_packet(
    out: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    msg: &Icmpv6Repr<'_>,
) -> Option<usize> {
    let msg_len = msg.buffer_len();
    let total = ipv6::HEADER_LEN + msg_len;
    let (hdr, body) = out.get_mut(..total)?.split_at_mut(ipv6::HEADER_LEN);
    Ipv6Repr {
        src,
        dst,
        next_header: ip_proto::ICMPV6,
        hop_limit: 255,
        traffic_class: 0,
        flow_label: 0,
        payload_len: u16::try_from(msg_len).ok()?,
    }
    .emit(hdr)
    .ok()?;
    msg.emit(src, dst, body).ok()?;
    Some(total)
}
