//! The worker loop: one thread per worker, pinned to its core, owning its
//! node (`rvs_lb::stack::Node`: the balancer and the stack around it), one queue per port
//! and — on the worker that has them — the TAP devices.
//!
//! One round of the loop:
//! 1. If the configuration generation changed, adopt the new snapshots.
//!    With several workers, take what the other workers passed to this one
//!    (`crate::redirect`), and steer each received burst first: a reply
//!    another worker owns goes to it (`crate::steering`).
//! 2. For each port: receive a burst (up to [`BURST`] frames), hand each
//!    frame to the node and act on its answer: queue it for transmission
//!    (on its own port in place; on another port copied into a buffer of
//!    that port's backend, since buffers belong to the backend that
//!    received them), copy it to the port's TAP, or free it.
//! 3. Frames the kernel sent out of a TAP go through
//!    `handle_from_kernel` and are copied to their port.
//! 4. Frames the node generates itself (`poll_transmit`: ARP requests).
//! 5. One `tx_burst` per port (one kernel kick); frames the ring did not
//!    take are freed and counted.
//! 6. Timers (`on_tick`) every tick; counters published every
//!    [`STATS_PERIOD_MS`].
//!
//! # Idle
//! A worker does not spin a core when there is no traffic: after
//! [`IDLE_SPINS`] empty rounds in a row it sleeps in `poll(2)` on all its
//! descriptors (AF_PACKET, AF_XDP and TAP all signal `POLLIN` when frames
//! are ready) until one is ready or the next tick is due, capped at
//! [`IDLE_SLEEP_MAX`]. Under load it never sleeps; an idle worker costs a
//! wake-up per tick. The price is a wake-up latency of a few microseconds
//! for the first packet after a quiet period.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rvs_io::af_packet::AfPacketIo;
use rvs_io::af_xdp::XskSocket;
use rvs_io::tap::TapIo;
use rvs_io::{Frame, IoStats, PacketIo};
use rvs_lb::conn::Time;
use rvs_lb::packet::Packet;
use rvs_lb::stats::{DropCounters, DropReason};

use crate::shared::{PortStats, STATS_PERIOD_MS, Shared, WorkerStats};
use rvs_lb::stack::{Action, Node};

/// Frames per receive burst.
pub const BURST: usize = 32;
/// Empty rounds before a worker sleeps.
pub const IDLE_SPINS: u32 = 64;
/// The longest an idle worker sleeps at once.
pub const IDLE_SLEEP_MAX: Duration = Duration::from_millis(10);

/// One port's queue for one worker.
#[derive(Debug)]
pub enum PortIo {
    /// AF_PACKET.
    AfPacket(AfPacketIo),
    /// AF_XDP.
    AfXdp(XskSocket),
}

impl PortIo {
    fn fd(&self) -> RawFd {
        match self {
            PortIo::AfPacket(p) => p.as_raw_fd(),
            PortIo::AfXdp(x) => x.as_raw_fd(),
        }
    }
}

impl PacketIo for PortIo {
    #[inline]
    fn rx_burst(&mut self, frames: &mut [Frame]) -> io::Result<usize> {
        match self {
            PortIo::AfPacket(p) => p.rx_burst(frames),
            PortIo::AfXdp(x) => x.rx_burst(frames),
        }
    }
    #[inline]
    fn tx_burst(&mut self, frames: &[Frame]) -> io::Result<usize> {
        match self {
            PortIo::AfPacket(p) => p.tx_burst(frames),
            PortIo::AfXdp(x) => x.tx_burst(frames),
        }
    }
    #[inline]
    fn alloc(&mut self) -> Option<Frame> {
        match self {
            PortIo::AfPacket(p) => p.alloc(),
            PortIo::AfXdp(x) => x.alloc(),
        }
    }
    #[inline]
    fn free(&mut self, frame: Frame) {
        match self {
            PortIo::AfPacket(p) => p.free(frame),
            PortIo::AfXdp(x) => x.free(frame),
        }
    }
    #[inline]
    fn buffer(&mut self, frame: &Frame) -> &mut [u8] {
        match self {
            PortIo::AfPacket(p) => p.buffer(frame),
            PortIo::AfXdp(x) => x.buffer(frame),
        }
    }
    fn stats(&self) -> IoStats {
        match self {
            PortIo::AfPacket(p) => p.stats(),
            PortIo::AfXdp(x) => x.stats(),
        }
    }
}

/// Everything one worker thread owns.
#[derive(Debug)]
pub struct WorkerCtx {
    /// Worker index.
    pub id: u16,
    /// The node.
    pub node: Node,
    /// One queue per port, by port id.
    pub ports: Vec<PortIo>,
    /// The TAP of each port, on the worker that serves the exception path.
    pub taps: Vec<Option<TapIo>>,
    /// Timer period.
    pub tick: Duration,
    /// The daemon's clock origin.
    pub epoch: Instant,
    /// Shared state.
    pub shared: Arc<Shared>,
    /// Several workers: steering of received frames and the rings to the
    /// other workers (`crate::redirect`); `None` with one worker.
    pub peers: Option<crate::redirect::Peers>,
}

/// Copies `f` (owned by `src`) into a new buffer of `dst` at [`HEADROOM`]
/// and frees it in `src`. `None` if `dst` has no buffer or it is too small
/// (the frame is freed either way).
fn copy_frame<A: PacketIo + ?Sized, B: PacketIo + ?Sized>(
    src: &mut A,
    f: Frame,
    dst: &mut B,
) -> Option<Frame> {
    let out = dst.alloc().and_then(|mut n| {
        let len = usize::from(f.len);
        let from = src
            .buffer(&f)
            .get(usize::from(f.start)..usize::from(f.start) + len)?;
        let to = dst.buffer(&n);
        let start = usize::from(n.start);
        match to.get_mut(start..start + len) {
            Some(t) => {
                t.copy_from_slice(from);
                n.len = f.len;
                Some(n)
            }
            None => {
                dst.free(n);
                None
            }
        }
    });
    src.free(f);
    out
}

/// Like [`copy_frame`] from a byte slice.
fn frame_from_bytes<B: PacketIo + ?Sized>(bytes: &[u8], dst: &mut B) -> Option<Frame> {
    let mut n = dst.alloc()?;
    let start = usize::from(n.start);
    let Some(to) = dst.buffer(&n).get_mut(start..start + bytes.len()) else {
        dst.free(n);
        return None;
    };
    to.copy_from_slice(bytes);
    n.len = u16::try_from(bytes.len()).unwrap_or(0);
    Some(n)
}

/// Runs the node on one received frame; returns the action and the frame
/// with its new bounds.
#[inline]
fn run_node<I: PacketIo + ?Sized>(
    io: &mut I,
    mut f: Frame,
    now: Time,
    handle: impl FnOnce(&mut Packet<'_>, Time) -> Action,
) -> (Action, Frame) {
    let buf = io.buffer(&f);
    let Some(mut pkt) = Packet::new(buf, usize::from(f.start), usize::from(f.len)) else {
        return (Action::Drop(DropReason::Malformed), f);
    };
    let action = handle(&mut pkt, now);
    match (u16::try_from(pkt.start()), u16::try_from(pkt.len())) {
        (Ok(s), Ok(l)) => {
            f.start = s;
            f.len = l;
            (action, f)
        }
        _ => (Action::Drop(DropReason::NoRoom), f),
    }
}

impl WorkerCtx {
    /// The loop; returns when the stop flag is set.
    pub fn run(mut self) {
        let nports = self.ports.len();
        let mut frames = [Frame::default(); BURST];
        // Frames other workers passed to this one, by port.
        let mut staged: Vec<Vec<Frame>> =
            (0..nports).map(|_| Vec::with_capacity(4 * BURST)).collect();
        let mut tx: Vec<Vec<Frame>> = (0..nports).map(|_| Vec::with_capacity(4 * BURST)).collect();
        let mut tap_tx: Vec<Vec<Frame>> = (0..nports).map(|_| Vec::with_capacity(BURST)).collect();
        let mut tx_dropped = vec![0u64; nports];
        let mut drops = DropCounters::default();
        let mut scratch = vec![0u8; 2048];
        let mut pollfds: Vec<libc::pollfd> = self
            .ports
            .iter()
            .map(|p| p.fd())
            .chain(self.taps.iter().flatten().map(|t| t.as_raw_fd()))
            .chain(self.peers.as_ref().and_then(|x| x.wake_fd()))
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let mut generation = self.shared.snapshots.generation();
        let now_of = |epoch: Instant| {
            Time::from_millis(u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX))
        };
        let tick_ms = u64::try_from(self.tick.as_millis()).unwrap_or(10).max(1);
        let mut next_tick = now_of(self.epoch).add_millis(tick_ms);
        let mut next_stats = Time::ZERO;
        let (mut idle, mut busy_polls, mut idle_waits) = (0u32, 0u64, 0u64);

        while !self.shared.stop.load(std::sync::atomic::Ordering::Relaxed) {
            let now = now_of(self.epoch);
            let g = self.shared.snapshots.generation();
            if g != generation {
                let (lb, stack) = self.shared.snapshots.load();
                self.node.apply(lb, stack, false);
                generation = g;
            }
            let mut got = 0usize;
            if let Some(peers) = self.peers.as_mut() {
                got += peers.drain(&mut self.ports, &mut self.taps, &mut staged, &mut tap_tx);
            }
            for p in 0..nports {
                let Some(io) = self.ports.get_mut(p) else {
                    continue;
                };
                let mut n = io.rx_burst(&mut frames).unwrap_or(0);
                got += n;
                let port = u16::try_from(p).unwrap_or(u16::MAX);
                if let Some(peers) = self.peers.as_mut() {
                    n = peers.steer_burst(
                        port,
                        io,
                        frames.get_mut(..n).unwrap_or_default(),
                        &self.node,
                    );
                }
                let inbound = staged.get_mut(p).map(|s| s.drain(..)).into_iter().flatten();
                for f in frames.iter().take(n).copied().chain(inbound) {
                    let Some(io) = self.ports.get_mut(p) else {
                        break;
                    };
                    let node = &mut self.node;
                    let (action, f) = run_node(io, f, now, |pkt, now| node.handle(port, pkt, now));
                    match action {
                        Action::Transmit { port: q } if usize::from(q) == p => {
                            if let Some(t) = tx.get_mut(p) {
                                t.push(f);
                            }
                        }
                        Action::Transmit { port: q } => {
                            let q = usize::from(q);
                            match self.ports.get_disjoint_mut([p, q]) {
                                Ok([src, dst]) => {
                                    if let Some(c) = copy_frame(src, f, dst)
                                        && let Some(t) = tx.get_mut(q)
                                    {
                                        t.push(c);
                                    } else {
                                        drops.count(DropReason::NoRoom);
                                    }
                                }
                                Err(_) => {
                                    io_free(&mut self.ports, p, f);
                                    drops.count(DropReason::NoRoute);
                                }
                            }
                        }
                        Action::Kernel => {
                            let tap = self.taps.get_mut(p).and_then(Option::as_mut);
                            match (tap, self.ports.get_mut(p)) {
                                (Some(tap), Some(io)) => {
                                    if let Some(c) = copy_frame(io, f, tap)
                                        && let Some(t) = tap_tx.get_mut(p)
                                    {
                                        t.push(c);
                                    } else {
                                        drops.count(DropReason::NoRoom);
                                    }
                                }
                                (None, Some(io)) => {
                                    // Another worker serves the TAPs.
                                    if !self
                                        .peers
                                        .as_mut()
                                        .is_some_and(|x| x.to_kernel(port, io, &f))
                                    {
                                        drops.count(DropReason::Unsupported);
                                    }
                                    io.free(f);
                                }
                                _ => {
                                    io_free(&mut self.ports, p, f);
                                    drops.count(DropReason::Unsupported);
                                }
                            }
                        }
                        // Counted by the node (stack or balancer drops).
                        Action::Drop(_) | Action::Consumed => {
                            io_free(&mut self.ports, p, f);
                        }
                    }
                }
            }
            // The exception path: what the kernel sends out of the TAPs.
            for p in 0..nports {
                let Some(Some(tap)) = self.taps.get_mut(p) else {
                    continue;
                };
                let n = tap.rx_burst(&mut frames).unwrap_or(0);
                got += n;
                for &f in frames.iter().take(n) {
                    let node = &mut self.node;
                    let (action, f) =
                        run_node(tap, f, now, |pkt, now| node.handle_from_kernel(pkt, now));
                    match action {
                        Action::Transmit { port: q } => {
                            let q = usize::from(q);
                            match self.ports.get_mut(q) {
                                Some(dst) => {
                                    if let Some(c) = copy_frame(tap, f, dst)
                                        && let Some(t) = tx.get_mut(q)
                                    {
                                        t.push(c);
                                    } else {
                                        drops.count(DropReason::NoRoom);
                                    }
                                }
                                None => {
                                    tap.free(f);
                                    drops.count(DropReason::NoRoute);
                                }
                            }
                        }
                        // An answer to the kernel (ARP/ND proxy): back into
                        // the TAP, same buffer.
                        Action::Kernel => {
                            if let Some(t) = tap_tx.get_mut(p) {
                                t.push(f);
                            }
                        }
                        Action::Drop(_) | Action::Consumed => tap.free(f),
                    }
                }
                if let Some(t) = tap_tx.get_mut(p)
                    && !t.is_empty()
                {
                    let sent = tap.tx_burst(t).unwrap_or(0);
                    for &f in t.iter().skip(sent) {
                        tap.free(f);
                    }
                    t.clear();
                }
            }
            // Frames the node generates.
            for _ in 0..BURST {
                let Some((q, start, len)) = self.node.poll_transmit(&mut scratch, now) else {
                    break;
                };
                let q = usize::from(q);
                if let (Some(bytes), Some(dst)) =
                    (scratch.get(start..start + len), self.ports.get_mut(q))
                    && let Some(f) = frame_from_bytes(bytes, dst)
                    && let Some(t) = tx.get_mut(q)
                {
                    t.push(f);
                } else {
                    drops.count(DropReason::NoRoom);
                }
            }
            // One transmit burst per port.
            for (q, t) in tx.iter_mut().enumerate() {
                if t.is_empty() {
                    continue;
                }
                let Some(io) = self.ports.get_mut(q) else {
                    continue;
                };
                let sent = io.tx_burst(t).unwrap_or(0);
                for &f in t.iter().skip(sent) {
                    io.free(f);
                }
                if let Some(d) = tx_dropped.get_mut(q) {
                    *d += (t.len() - sent.min(t.len())) as u64;
                }
                t.clear();
            }
            if let Some(peers) = self.peers.as_mut() {
                peers.kick();
            }
            // Timers and counters.
            if now >= next_tick {
                self.node.on_tick(now);
                self.shared.conns.serve(self.id, self.node.worker(), now);
                self.shared.neighs.serve(self.id, &self.node);
                next_tick = now.add_millis(tick_ms);
            }
            if now >= next_stats {
                self.publish(generation, &tx_dropped, &drops, busy_polls, idle_waits);
                next_stats = now.add_millis(STATS_PERIOD_MS);
            }
            if got > 0 {
                idle = 0;
                busy_polls += 1;
                continue;
            }
            idle += 1;
            if idle >= IDLE_SPINS {
                idle_waits += 1;
                let until_tick = next_tick.saturating_since(now_of(self.epoch));
                let sleep = until_tick.clamp(Duration::from_millis(1), IDLE_SLEEP_MAX);
                if self.peers.as_mut().is_none_or(|x| x.may_sleep()) {
                    wait(&mut pollfds, sleep);
                }
                if let Some(peers) = self.peers.as_mut() {
                    peers.awake();
                }
            }
        }
        self.publish(generation, &tx_dropped, &drops, busy_polls, idle_waits);
    }

    fn publish(
        &self,
        generation: u64,
        tx_dropped: &[u64],
        drops: &DropCounters,
        busy_polls: u64,
        idle_waits: u64,
    ) {
        let stats = WorkerStats {
            worker: self.id,
            ports: self
                .ports
                .iter()
                .enumerate()
                .map(|(i, p)| PortStats {
                    io: p.stats(),
                    tx_dropped: tx_dropped.get(i).copied().unwrap_or(0),
                    tap: self.taps.get(i).and_then(Option::as_ref).map(|t| t.stats()),
                })
                .collect(),
            lb_drops: *self.node.worker().drops(),
            drops: *drops,
            stack: self.node.counters().clone(),
            connections: self.node.worker().conns().len() as u64,
            generation,
            busy_polls,
            idle_waits,
            redirect: self
                .peers
                .as_ref()
                .map(|x| x.mailbox.stats)
                .unwrap_or_default(),
            services: Some(crate::api::counters::ServiceCounters::of(
                self.node.worker(),
            )),
            fullnat: *self.node.worker().fullnat_counters(),
        };
        if let Some(slot) = self.shared.stats.get(usize::from(self.id)) {
            slot.store(Arc::new(stats));
        }
    }
}

fn io_free(ports: &mut [PortIo], p: usize, f: Frame) {
    if let Some(io) = ports.get_mut(p) {
        io.free(f);
    }
}

/// Sleeps in `poll(2)` until a descriptor is readable or `timeout` passes.
fn wait(fds: &mut [libc::pollfd], timeout: Duration) {
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(10);
    // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()`
    // pollfd structs for the duration of the call.
    unsafe {
        libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms);
    }
}
