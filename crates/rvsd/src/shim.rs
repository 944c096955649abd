//! A minimal L2/L3 layer around the balancer, standing in for the stack's
//! `rvs_lb::stack::Node` until it lands, with the same shape (`handle`,
//! `handle_from_kernel`, `poll_transmit`, `on_tick`, `apply`), so the worker
//! loop does not change when `Node` replaces it.
//!
//! What it does (IPv4 only for ARP; no VLANs; no IP forwarding; no TTL
//! decrement):
//! - ARP: requests for an owned address (interface addresses, VIPs, local
//!   addresses) are answered in place; every ARP frame teaches the
//!   neighbour table its sender; ARP frames that are not requests for an
//!   owned address go to the kernel (its own resolution).
//! - IP: the L3 part goes through [`Worker::process`]. A forwarded packet
//!   is routed (longest prefix; connected routes from the interface
//!   addresses), its next hop resolved in the neighbour table (unknown: the
//!   packet is dropped as `NeighbourPending` and an ARP request queued, at
//!   most one per second per next hop) and an Ethernet header written in
//!   front. A packet the balancer passes goes to the kernel if it is for an
//!   owned address and is dropped (`NoRoute`) otherwise.
//! - Frames from the kernel (the TAP) carry the kernel's own MAC header
//!   (the TAP has the port's MAC and resolves its neighbours itself through
//!   the port): they are transmitted unchanged on the TAP's port.
//!
//! It allocates only when it learns a new neighbour or queues a request,
//! never per packet in the steady state.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rvs_io::HEADROOM;
use rvs_lb::config::{Config, ServiceKey};
use rvs_lb::conn::Time;
use rvs_lb::fwd::Verdict;
use rvs_lb::packet::Packet;
use rvs_lb::stats::DropReason;
use rvs_lb::worker::Worker;

use crate::config::MacAddr;

/// The stack's tables the shim needs (the daemon builds them once the ports'
/// MACs are known).
#[derive(Debug, Clone, Default)]
pub struct ShimConfig {
    /// MAC of each port, by port id.
    pub port_macs: Vec<MacAddr>,
    /// Interface addresses: (address, prefix length, port).
    pub addrs: Vec<(IpAddr, u8, u16)>,
    /// Routes: (network, prefix length, gateway, port).
    pub routes: Vec<(IpAddr, u8, Option<IpAddr>, u16)>,
    /// Static neighbours.
    pub neighbours: Vec<(IpAddr, MacAddr, u16)>,
}

/// What to do with the frame just handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send it (rewritten in place) on this port.
    Transmit {
        /// Port id.
        port: u16,
    },
    /// Hand it to the host kernel (the port's TAP).
    Kernel,
    /// Drop it.
    Drop(DropReason),
}

/// Counters of the shim.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShimCounters {
    /// ARP requests answered.
    pub arp_replies: u64,
    /// ARP requests sent.
    pub arp_requests: u64,
    /// Frames handed to the kernel.
    pub to_kernel: u64,
    /// Frames from the kernel transmitted.
    pub from_kernel: u64,
    /// Frames forwarded by the balancer and transmitted.
    pub forwarded: u64,
}

const ETH_LEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IPV6: u16 = 0x86dd;
const BROADCAST: MacAddr = [0xff; 6];

/// The shim around one worker's balancer.
#[derive(Debug)]
pub struct Shim {
    worker: Worker,
    cfg: Arc<ShimConfig>,
    /// Addresses the node answers for: interface addresses, VIPs, laddrs.
    owned: Vec<IpAddr>,
    /// Routes by prefix length, longest first.
    routes: Vec<(IpAddr, u8, Option<IpAddr>, u16)>,
    neighbours: HashMap<IpAddr, (MacAddr, u16)>,
    /// Next hops to resolve: (target, port).
    pending: VecDeque<(Ipv4Addr, u16)>,
    /// When each next hop was last asked for.
    asked: HashMap<Ipv4Addr, Time>,
    counters: ShimCounters,
}

impl Shim {
    /// The shim around `worker` with the tables of `cfg`.
    pub fn new(worker: Worker, cfg: Arc<ShimConfig>) -> Self {
        let mut s = Shim {
            worker,
            cfg: Arc::new(ShimConfig::default()),
            owned: Vec::new(),
            routes: Vec::new(),
            neighbours: HashMap::new(),
            pending: VecDeque::new(),
            asked: HashMap::new(),
            counters: ShimCounters::default(),
        };
        let lb = s.worker.config().clone();
        s.apply(lb, cfg, false);
        s
    }

    /// Adopts new snapshots (between bursts).
    pub fn apply(&mut self, lb: Arc<Config>, cfg: Arc<ShimConfig>, expire_removed: bool) {
        let mut owned: Vec<IpAddr> = cfg.addrs.iter().map(|a| a.0).collect();
        for s in lb.services() {
            if let ServiceKey::Addr { .. } = s.spec.key
                && let Some(a) = s.spec.key.addr()
            {
                owned.push(a);
            }
            owned.extend(s.spec.laddrs.iter().copied());
        }
        owned.sort();
        owned.dedup();
        let mut routes: Vec<_> = cfg
            .addrs
            .iter()
            .map(|&(a, len, port)| (crate::config::mask(a, len), len, None, port))
            .chain(cfg.routes.iter().copied())
            .collect();
        routes.sort_by_key(|r| std::cmp::Reverse(r.1));
        for &(addr, mac, port) in &cfg.neighbours {
            self.neighbours.insert(addr, (mac, port));
        }
        self.owned = owned;
        self.routes = routes;
        self.cfg = cfg;
        self.worker.apply(lb, expire_removed);
    }

    /// The balancer.
    pub fn worker(&self) -> &Worker {
        &self.worker
    }

    /// Counters.
    pub fn counters(&self) -> &ShimCounters {
        &self.counters
    }

    fn owns(&self, a: IpAddr) -> bool {
        self.owned.binary_search(&a).is_ok()
    }

    fn mac(&self, port: u16) -> MacAddr {
        self.cfg
            .port_macs
            .get(usize::from(port))
            .copied()
            .unwrap_or_default()
    }

    /// One Ethernet frame received on `port`.
    pub fn handle(&mut self, port: u16, frame: &mut Packet<'_>, now: Time) -> Action {
        let d = frame.data();
        let (Some(dst), Some(ty)) = (d.get(0..6), d.get(12..14)) else {
            return Action::Drop(DropReason::Malformed);
        };
        let ours = self.mac(port);
        if dst != ours && dst.first().is_some_and(|b| b & 1 == 0) {
            return Action::Drop(DropReason::NotForUs);
        }
        match u16::from_be_bytes([ty[0], ty[1]]) {
            ETH_P_ARP => self.arp(port, frame, now),
            ETH_P_IP | ETH_P_IPV6 => self.ip(frame, now),
            _ => self.kernel(),
        }
    }

    fn kernel(&mut self) -> Action {
        self.counters.to_kernel += 1;
        Action::Kernel
    }

    fn arp(&mut self, port: u16, frame: &mut Packet<'_>, now: Time) -> Action {
        let _ = now;
        let d = frame.data();
        let Some(a) = d.get(ETH_LEN..ETH_LEN + 28) else {
            return Action::Drop(DropReason::Malformed);
        };
        if a.get(0..6) != Some(&[0, 1, 8, 0, 6, 4]) {
            return self.kernel();
        }
        let op = u16::from_be_bytes([a[6], a[7]]);
        let mut sha = [0u8; 6];
        sha.copy_from_slice(&a[8..14]);
        let spa = Ipv4Addr::new(a[14], a[15], a[16], a[17]);
        let tpa = Ipv4Addr::new(a[24], a[25], a[26], a[27]);
        if !spa.is_unspecified() && sha[0] & 1 == 0 {
            self.neighbours.insert(IpAddr::V4(spa), (sha, port));
            self.asked.remove(&spa);
        }
        if op != 1 || !self.owns(IpAddr::V4(tpa)) {
            return self.kernel();
        }
        let mac = self.mac(port);
        let Some(f) = frame.data_mut().get_mut(..ETH_LEN + 28) else {
            return Action::Drop(DropReason::Malformed);
        };
        f[0..6].copy_from_slice(&sha);
        f[6..12].copy_from_slice(&mac);
        f[ETH_LEN + 6..ETH_LEN + 8].copy_from_slice(&2u16.to_be_bytes());
        f[ETH_LEN + 8..ETH_LEN + 14].copy_from_slice(&mac);
        f[ETH_LEN + 14..ETH_LEN + 18].copy_from_slice(&tpa.octets());
        f[ETH_LEN + 18..ETH_LEN + 24].copy_from_slice(&sha);
        f[ETH_LEN + 24..ETH_LEN + 28].copy_from_slice(&spa.octets());
        self.counters.arp_replies += 1;
        Action::Transmit { port }
    }

    fn ip(&mut self, frame: &mut Packet<'_>, now: Time) -> Action {
        let len = frame.len().saturating_sub(ETH_LEN);
        let (buf, start) = frame.buffer_mut();
        let Some(mut l3) = Packet::new(buf, start + ETH_LEN, len) else {
            return Action::Drop(DropReason::Malformed);
        };
        let verdict = self.worker.process(&mut l3, 0, now);
        let (l3_start, l3_len) = (l3.start(), l3.len());
        let dst = match dst_addr(l3.data()) {
            Some(a) => a,
            None => return Action::Drop(DropReason::Malformed),
        };
        let next_hop = match verdict {
            Verdict::Drop(r) => return Action::Drop(r),
            Verdict::Pass if self.owns(dst) => return self.kernel(),
            Verdict::Pass => return Action::Drop(DropReason::NoRoute),
            Verdict::Forward { next_hop } => next_hop,
        };
        let Some(&(_, _, gw, port)) = self.routes.iter().find(|r| {
            crate::config::mask(next_hop.unwrap_or(dst), r.1) == r.0
                && r.0.is_ipv4() == dst.is_ipv4()
        }) else {
            return Action::Drop(DropReason::NoRoute);
        };
        let hop = next_hop.or(gw).unwrap_or(dst);
        let Some(&(mac, _)) = self.neighbours.get(&hop) else {
            if let IpAddr::V4(h) = hop {
                self.ask(h, port, now);
            }
            return Action::Drop(DropReason::NeighbourPending);
        };
        let Some(eth_start) = l3_start.checked_sub(ETH_LEN) else {
            return Action::Drop(DropReason::NoRoom);
        };
        if !frame.set_start(eth_start) || !frame.set_len(l3_len + ETH_LEN) {
            return Action::Drop(DropReason::NoRoom);
        }
        let src = self.mac(port);
        let ty = if dst.is_ipv4() { ETH_P_IP } else { ETH_P_IPV6 };
        if let Some(h) = frame.data_mut().get_mut(..ETH_LEN) {
            h[0..6].copy_from_slice(&mac);
            h[6..12].copy_from_slice(&src);
            h[12..14].copy_from_slice(&ty.to_be_bytes());
        }
        self.counters.forwarded += 1;
        Action::Transmit { port }
    }

    fn ask(&mut self, target: Ipv4Addr, port: u16, now: Time) {
        if let Some(&t) = self.asked.get(&target)
            && now.saturating_since(t).as_millis() < 1000
        {
            return;
        }
        self.asked.insert(target, now);
        if self.pending.len() < 256 {
            self.pending.push_back((target, port));
        }
    }

    /// A frame the kernel sent out of the TAP of `port`: transmitted as the
    /// kernel wrote it.
    pub fn handle_from_kernel(&mut self, port: u16, frame: &mut Packet<'_>, now: Time) -> Action {
        let _ = (frame, now);
        self.counters.from_kernel += 1;
        Action::Transmit { port }
    }

    /// A frame the shim generates (ARP requests), written into `buf` at
    /// [`HEADROOM`]: (port, start, len).
    pub fn poll_transmit(&mut self, buf: &mut [u8], now: Time) -> Option<(u16, usize, usize)> {
        let _ = now;
        let (target, port) = self.pending.pop_front()?;
        let src_ip = self
            .cfg
            .addrs
            .iter()
            .find_map(|&(a, _, p)| match a {
                IpAddr::V4(v4) if p == port => Some(v4),
                _ => None,
            })
            .unwrap_or(Ipv4Addr::UNSPECIFIED);
        let mac = self.mac(port);
        let f = buf.get_mut(HEADROOM..HEADROOM + 60)?;
        f.fill(0);
        f[0..6].copy_from_slice(&BROADCAST);
        f[6..12].copy_from_slice(&mac);
        f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
        f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        f[22..28].copy_from_slice(&mac);
        f[28..32].copy_from_slice(&src_ip.octets());
        f[38..42].copy_from_slice(&target.octets());
        self.counters.arp_requests += 1;
        Some((port, HEADROOM, 60))
    }

    /// Timers: the balancer's connection expiry (bounded).
    pub fn on_tick(&mut self, now: Time) {
        self.worker.expire(now, 4096);
    }
}

/// The destination address of an IP packet.
fn dst_addr(p: &[u8]) -> Option<IpAddr> {
    match p.first()? >> 4 {
        4 => {
            let b: [u8; 4] = p.get(16..20)?.try_into().ok()?;
            Some(IpAddr::from(b))
        }
        6 => {
            let b: [u8; 16] = p.get(24..40)?.try_into().ok()?;
            Some(IpAddr::from(b))
        }
        _ => None,
    }
}
