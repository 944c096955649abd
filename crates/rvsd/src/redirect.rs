//! Frames passed between workers (ARCHITECTURE.md §4): a worker that
//! receives a frame another worker must handle — the reply of a connection
//! that worker owns, a neighbour answer every worker must learn from, a
//! frame for the kernel when the TAP devices are served by another worker —
//! copies it into a lock-free single-producer single-consumer ring (`rtrb`)
//! to that worker, one ring per ordered pair of workers. The owner drains
//! its inbound rings once per loop round, before it polls its ports, and
//! handles what it finds as if it had received it itself.
//!
//! # Records
//! Each ring is a byte ring of [`RING_BYTES`] allocated at start-up. A
//! frame is one record: a [`HDR`]-byte header (length, port, [`Kind`])
//! followed by the frame's bytes, copied in with two `memcpy`s and out
//! with one straight into a buffer of the receiving worker's backend (or
//! TAP). No allocation per frame; a record takes only the frame's length
//! (a 64-byte frame does not cost a 2 KiB slot), so a ring holds between
//! ~170 full-size and ~3700 minimum-size frames. The producer writes the
//! header, then the bytes; the consumer takes a record only once the
//! whole of it is there (it peeks at the header without consuming it).
//!
//! A full ring drops the frame and counts it ([`RedirectStats::ring_full`]):
//! the owner is behind, and blocking the receiving worker would only spread
//! the congestion.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rtrb::{Consumer, Producer, RingBuffer};
use rvs_io::{Frame, PacketIo};
use rvs_lb::laddr::Steering;
use rvs_lb::stack::Node;

use crate::steering::{Steer, Steerer};

/// Bytes of one ring (one per ordered pair of workers).
pub const RING_BYTES: usize = 256 * 1024;

/// Bytes of a record header: length (u16), port (u16), kind (u8), zero.
pub const HDR: usize = 6;

/// The longest frame passed between workers (larger ones are dropped and
/// counted as `ring_full`; nothing that size is received on a port whose
/// MTU the stack accepts).
pub const MAX_FRAME: usize = 16 * 1024;

/// Records a worker takes from one inbound ring per loop round.
pub const DRAIN_BUDGET: usize = 64;

/// What the receiving worker does with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A frame received on `port` that this worker must handle (the reply
    /// of a connection it owns).
    Handle = 0,
    /// A copy of a neighbour answer (ARP reply, IPv6 NA) received by
    /// another worker, who handled it too: learn from it.
    Learn = 1,
    /// A frame another worker's node sent to the kernel: write it to the
    /// TAP of `port` as it is.
    Kernel = 2,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        match b {
            0 => Some(Kind::Handle),
            1 => Some(Kind::Learn),
            2 => Some(Kind::Kernel),
            _ => None,
        }
    }
}

/// One worker's redirect counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RedirectStats {
    /// Frames this worker received for a connection another worker owns
    /// and passed to it.
    pub redirected: u64,
    /// Frames this worker got from other workers' rings (all kinds).
    pub received: u64,
    /// Neighbour answers copied to the other workers (one per copy).
    pub learn_copies: u64,
    /// Frames for the kernel passed to the worker that serves the TAPs.
    pub to_tap_owner: u64,
    /// Frames dropped because the ring to their worker was full (or the
    /// frame too long for a record).
    pub ring_full: u64,
    /// Records taken from a ring that could not be placed (no buffer in
    /// the backend, unknown port or TAP).
    pub undeliverable: u64,
}

/// One worker's ends of the rings: a producer to every other worker and a
/// consumer from every other worker.
#[derive(Debug)]
pub struct Mailbox {
    me: u16,
    out: Vec<Option<Producer<u8>>>,
    inbox: Vec<Option<Consumer<u8>>>,
    /// Counters.
    pub stats: RedirectStats,
}

/// The mailboxes of `workers` workers, index = worker id: `workers ×
/// (workers − 1)` rings of [`RING_BYTES`] each (set-up work: allocates).
pub fn mailboxes(workers: u16) -> Vec<Mailbox> {
    let n = usize::from(workers);
    let mut boxes: Vec<Mailbox> = (0..workers)
        .map(|me| Mailbox {
            me,
            out: (0..n).map(|_| None).collect(),
            inbox: (0..n).map(|_| None).collect(),
            stats: RedirectStats::default(),
        })
        .collect();
    for from in 0..n {
        for to in 0..n {
            if from == to {
                continue;
            }
            let (p, c) = RingBuffer::<u8>::new(RING_BYTES);
            if let Some(slot) = boxes.get_mut(from).and_then(|b| b.out.get_mut(to)) {
                *slot = Some(p);
            }
            if let Some(slot) = boxes.get_mut(to).and_then(|b| b.inbox.get_mut(from)) {
                *slot = Some(c);
            }
        }
    }
    boxes
}

impl Mailbox {
    /// This worker's id.
    pub fn id(&self) -> u16 {
        self.me
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.out.len()
    }

    /// Copies `frame` into the ring to worker `to`; false (and counted in
    /// `ring_full`) when the ring has no room.
    pub fn send(&mut self, to: u16, kind: Kind, port: u16, frame: &[u8]) -> bool {
        let Some(Some(p)) = self.out.get_mut(usize::from(to)) else {
            self.stats.undeliverable += 1;
            return false;
        };
        let len = frame.len();
        if len > MAX_FRAME || p.slots() < HDR + len {
            self.stats.ring_full += 1;
            return false;
        }
        let [l0, l1] = (len as u16).to_le_bytes();
        let [p0, p1] = port.to_le_bytes();
        let hdr = [l0, l1, p0, p1, kind as u8, 0];
        // Both fit: `slots()` only grows until this producer writes.
        if p.push_entire_slice(&hdr).is_err() || p.push_entire_slice(frame).is_err() {
            self.stats.ring_full += 1;
            return false;
        }
        match kind {
            Kind::Handle => self.stats.redirected += 1,
            Kind::Learn => self.stats.learn_copies += 1,
            Kind::Kernel => self.stats.to_tap_owner += 1,
        }
        true
    }

    /// Copies `frame` to every other worker.
    pub fn broadcast(&mut self, kind: Kind, port: u16, frame: &[u8]) {
        for to in 0..self.out.len() {
            let to = to as u16;
            if to != self.me {
                self.send(to, kind, port, frame);
            }
        }
    }

    /// True if any inbound ring holds a whole record.
    pub fn has_records(&mut self) -> bool {
        self.inbox.iter_mut().flatten().any(|c| peek(c).is_some())
    }

    /// The inbound rings' sources (worker ids with a ring to this worker).
    pub fn sources(&self) -> impl Iterator<Item = usize> + '_ {
        self.inbox
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().map(|_| i))
    }

    /// Takes the next whole record from the ring of worker `from`, if
    /// there is one: its kind, port and length, with a handle to copy the
    /// bytes out. The record is consumed when the [`Record`] is dropped
    /// (whether or not it was copied).
    pub fn next_record(&mut self, from: usize) -> Option<Record<'_>> {
        let c = self.inbox.get_mut(from)?.as_mut()?;
        let (kind, port, len) = peek(c)?;
        self.stats.received += 1;
        Some(Record {
            consumer: c,
            kind,
            port,
            len,
            stats: &mut self.stats,
            consumed: false,
        })
    }
}

/// One record taken from a ring ([`Mailbox::next_record`]).
#[derive(Debug)]
pub struct Record<'a> {
    consumer: &'a mut Consumer<u8>,
    /// What to do with it.
    pub kind: Kind,
    /// The port it was received on (or whose TAP it is for).
    pub port: u16,
    /// The frame's length.
    pub len: usize,
    stats: &'a mut RedirectStats,
    consumed: bool,
}

impl Record<'_> {
    /// Copies the frame into `dst` (exactly `len` bytes) and consumes the
    /// record.
    pub fn copy_to(mut self, dst: &mut [u8]) -> bool {
        self.consumed = dst.len() == self.len
            && self
                .consumer
                .read_chunk(HDR)
                .map(|c| c.commit_all())
                .is_ok()
            && self.consumer.pop_entire_slice(dst).is_ok();
        self.consumed
    }

    /// Drops the record without copying it (counted as undeliverable).
    pub fn skip(self) {
        drop(self);
    }
}

impl Drop for Record<'_> {
    fn drop(&mut self) {
        if self.consumed {
            return;
        }
        // Not copied: consume header and bytes (whatever is left of them).
        let n = (HDR + self.len).min(self.consumer.slots());
        if let Ok(c) = self.consumer.read_chunk(n) {
            c.commit_all();
        }
        self.stats.undeliverable += 1;
    }
}

/// The header of the next whole record, without consuming it.
fn peek(c: &mut Consumer<u8>) -> Option<(Kind, u16, usize)> {
    let avail = c.slots();
    if avail < HDR {
        return None;
    }
    let mut hdr = [0u8; HDR];
    {
        let chunk = c.read_chunk(HDR).ok()?;
        let (a, b) = chunk.as_slices();
        for (d, s) in hdr.iter_mut().zip(a.iter().chain(b)) {
            *d = *s;
        }
        // Dropped without commit: still in the ring.
    }
    let [l0, l1, p0, p1, k, _] = hdr;
    let len = usize::from(u16::from_le_bytes([l0, l1]));
    let port = u16::from_le_bytes([p0, p1]);
    if avail < HDR + len {
        return None;
    }
    let kind = Kind::from_u8(k)?;
    Some((kind, port, len))
}

/// Wakes a worker sleeping in `poll(2)` when another worker puts a record
/// in one of its rings (an `eventfd` in its poll set, written only when
/// the worker said it is going to sleep).
#[derive(Debug)]
struct Waker {
    fd: OwnedFd,
    sleeping: AtomicBool,
}

impl Waker {
    fn new() -> io::Result<Waker> {
        // SAFETY: eventfd(2) with valid flags; the descriptor is owned below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Waker {
            // SAFETY: a fresh descriptor nobody else owns.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            sleeping: AtomicBool::new(false),
        })
    }

    fn wake(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writing 8 bytes from a live buffer to our eventfd.
        unsafe { libc::write(self.fd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    }

    fn clear(&self) {
        let mut b = [0u8; 8];
        // SAFETY: reading 8 bytes into a live buffer from our eventfd
        // (non-blocking).
        unsafe { libc::read(self.fd.as_raw_fd(), b.as_mut_ptr().cast(), b.len()) };
    }
}

/// One worker's view of the other workers: its mailbox, how it decides
/// who owns a frame, and which worker serves the TAP devices.
#[derive(Debug)]
pub struct Peers {
    /// The rings.
    pub mailbox: Mailbox,
    /// Who owns a received frame.
    pub steerer: Steerer,
    /// The worker that serves the TAP devices.
    pub tap_owner: u16,
    wakers: Arc<Vec<Waker>>,
    /// Workers sent something this round (to wake if asleep).
    dirty: Vec<bool>,
}

/// The peers of `workers` workers under `steering`, index = worker id
/// (`None` with one worker: nothing to steer). The TAPs are served by
/// `tap_owner`.
pub fn peers(workers: u16, steering: &Steering, tap_owner: u16) -> io::Result<Vec<Option<Peers>>> {
    if workers <= 1 {
        return Ok((0..workers).map(|_| None).collect());
    }
    let wakers = Arc::new(
        (0..workers)
            .map(|_| Waker::new())
            .collect::<io::Result<Vec<Waker>>>()?,
    );
    Ok(mailboxes(workers)
        .into_iter()
        .map(|m| {
            Some(Peers {
                steerer: Steerer::new(m.id(), steering),
                tap_owner,
                wakers: wakers.clone(),
                dirty: vec![false; usize::from(workers)],
                mailbox: m,
            })
        })
        .collect())
}

/// The bytes of `f` in `io`.
fn bytes_of<'a, I: PacketIo + ?Sized>(io: &'a mut I, f: &Frame) -> &'a [u8] {
    let (s, l) = (usize::from(f.start), usize::from(f.len));
    io.buffer(f).get(s..s + l).unwrap_or_default()
}

impl Peers {
    fn send(&mut self, to: u16, kind: Kind, port: u16, bytes: &[u8]) -> bool {
        let ok = self.mailbox.send(to, kind, port, bytes);
        if ok && let Some(d) = self.dirty.get_mut(usize::from(to)) {
            *d = true;
        }
        ok
    }

    /// Steers a received burst of `port`: frames another worker owns are
    /// copied to it and freed, neighbour answers are copied to everyone;
    /// the frames to handle here are moved to the front of `frames`, and
    /// their number returned.
    pub fn steer_burst<I: PacketIo + ?Sized>(
        &mut self,
        port: u16,
        io: &mut I,
        frames: &mut [Frame],
        node: &Node,
    ) -> usize {
        let mut keep = 0;
        for i in 0..frames.len() {
            let Some(&f) = frames.get(i) else {
                break;
            };
            match self.steerer.steer(bytes_of(io, &f), node) {
                Steer::Here => {}
                Steer::HereAndCopy => {
                    let me = self.mailbox.id();
                    for to in 0..self.mailbox.workers() as u16 {
                        if to != me {
                            self.send(to, Kind::Learn, port, bytes_of(io, &f));
                        }
                    }
                }
                Steer::To(w) => {
                    self.send(w, Kind::Handle, port, bytes_of(io, &f));
                    io.free(f);
                    continue;
                }
            }
            if let Some(slot) = frames.get_mut(keep) {
                *slot = f;
            }
            keep += 1;
        }
        keep
    }

    /// Passes a frame the node sent to the kernel to the worker serving the
    /// TAP of `port`; false if this is that worker or its ring is full.
    /// The frame stays the caller's.
    pub fn to_kernel<I: PacketIo + ?Sized>(&mut self, port: u16, io: &mut I, f: &Frame) -> bool {
        self.tap_owner != self.mailbox.id()
            && self.send(self.tap_owner, Kind::Kernel, port, bytes_of(io, f))
    }

    /// Takes what the other workers passed to this one: frames to handle
    /// are copied into buffers of their port's backend and appended to
    /// `staged[port]`; frames for the kernel into buffers of the port's TAP
    /// and appended to `tap_tx[port]`. Returns the number of records taken.
    pub fn drain<P: PacketIo, T: PacketIo>(
        &mut self,
        ports: &mut [P],
        taps: &mut [Option<T>],
        staged: &mut [Vec<Frame>],
        tap_tx: &mut [Vec<Frame>],
    ) -> usize {
        let mut taken = 0;
        for from in 0..self.mailbox.workers() {
            for _ in 0..DRAIN_BUDGET {
                let Some(r) = self.mailbox.next_record(from) else {
                    break;
                };
                taken += 1;
                // A record not placed is dropped and counted (undeliverable).
                let port = usize::from(r.port);
                match r.kind {
                    Kind::Handle | Kind::Learn => {
                        if let (Some(io), Some(q)) = (ports.get_mut(port), staged.get_mut(port))
                            && let Some(f) = place(r, io)
                        {
                            q.push(f);
                        }
                    }
                    Kind::Kernel => {
                        if let (Some(io), Some(q)) = (
                            taps.get_mut(port).and_then(Option::as_mut),
                            tap_tx.get_mut(port),
                        ) && let Some(f) = place(r, io)
                        {
                            q.push(f);
                        }
                    }
                }
            }
        }
        taken
    }

    /// Wakes the workers sent something this round that are asleep.
    pub fn kick(&mut self) {
        std::sync::atomic::fence(Ordering::SeqCst);
        for (w, d) in self.dirty.iter_mut().enumerate() {
            if std::mem::take(d)
                && let Some(k) = self.wakers.get(w)
                && k.sleeping.load(Ordering::SeqCst)
            {
                k.wake();
            }
        }
    }

    /// The descriptor to add to this worker's poll set.
    pub fn wake_fd(&self) -> Option<RawFd> {
        self.wakers
            .get(usize::from(self.mailbox.id()))
            .map(|w| w.fd.as_raw_fd())
    }

    /// About to sleep: says so to the producers; false (do not sleep) if a
    /// record arrived meanwhile.
    pub fn may_sleep(&mut self) -> bool {
        let Some(w) = self.wakers.get(usize::from(self.mailbox.id())) else {
            return true;
        };
        w.sleeping.store(true, Ordering::SeqCst);
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.mailbox.has_records() {
            w.sleeping.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Awake again.
    pub fn awake(&mut self) {
        if let Some(w) = self.wakers.get(usize::from(self.mailbox.id())) {
            w.sleeping.store(false, Ordering::SeqCst);
            w.clear();
        }
    }
}

/// Copies a record into a new buffer of `io`; `None` (record dropped and
/// counted) when `io` has no buffer or it is too small.
fn place<I: PacketIo + ?Sized>(r: Record<'_>, io: &mut I) -> Option<Frame> {
    let mut f = io.alloc()?;
    let (s, len) = (usize::from(f.start), r.len);
    let Some(dst) = io.buffer(&f).get_mut(s..s + len) else {
        io.free(f);
        return None;
    };
    if !r.copy_to(dst) {
        io.free(f);
        return None;
    }
    f.len = u16::try_from(len).unwrap_or(0);
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_cross_between_workers_in_order_and_wrap() {
        let mut boxes = mailboxes(3);
        let mut b2 = boxes.pop().unwrap();
        let mut b1 = boxes.pop().unwrap();
        let mut b0 = boxes.pop().unwrap();
        assert_eq!(b0.sources().collect::<Vec<_>>(), vec![1, 2]);
        // Enough rounds to wrap the ring many times, odd lengths so records
        // straddle the end.
        let mut buf = vec![0u8; 2000];
        for round in 0..2000usize {
            let len = 60 + (round * 37) % 1400;
            let frame: Vec<u8> = (0..len).map(|i| (i + round) as u8).collect();
            assert!(b1.send(0, Kind::Handle, (round % 3) as u16, &frame));
            assert!(b1.send(2, Kind::Kernel, 7, &frame[..10]));
            let r = b0.next_record(1).expect("a record");
            assert_eq!(
                (r.kind, r.port, r.len),
                (Kind::Handle, (round % 3) as u16, len)
            );
            assert!(r.copy_to(&mut buf[..len]));
            assert_eq!(&buf[..len], &frame[..]);
            assert!(b0.next_record(1).is_none());
            let r = b2.next_record(1).expect("kernel record");
            assert_eq!((r.kind, r.port, r.len), (Kind::Kernel, 7, 10));
            r.skip();
        }
        assert_eq!(b1.stats.redirected, 2000);
        assert_eq!(b1.stats.to_tap_owner, 2000);
        assert_eq!(b0.stats.received, 2000);
        assert_eq!(b2.stats.undeliverable, 2000);
        assert!(b0.next_record(2).is_none());
    }

    #[test]
    fn a_full_ring_drops_and_counts() {
        let mut boxes = mailboxes(2);
        let mut b1 = boxes.pop().unwrap();
        let mut b0 = boxes.pop().unwrap();
        let frame = [0xabu8; 1500];
        let fits = RING_BYTES / (HDR + frame.len());
        for _ in 0..fits {
            assert!(b0.send(1, Kind::Handle, 0, &frame));
        }
        assert!(!b0.send(1, Kind::Handle, 0, &frame));
        assert_eq!(b0.stats.ring_full, 1);
        // Too long for a record.
        assert!(!b0.send(1, Kind::Handle, 0, &vec![0; MAX_FRAME + 1]));
        // Draining frees room.
        let mut buf = [0u8; 1500];
        assert!(b1.next_record(0).unwrap().copy_to(&mut buf));
        assert!(b0.send(1, Kind::Learn, 1, &frame));
        // A wrong destination length consumes and counts the record.
        assert!(!b1.next_record(0).unwrap().copy_to(&mut buf[..10]));
        assert_eq!(b1.stats.undeliverable, 1);
        let mut n = 0;
        while let Some(r) = b1.next_record(0) {
            n += 1;
            let kind = r.kind;
            assert!(r.copy_to(&mut buf));
            if n == fits - 1 {
                assert_eq!(kind, Kind::Learn);
            }
        }
        assert_eq!(n, fits - 1);
        // Broadcast reaches everyone else.
        b1.broadcast(Kind::Learn, 0, &frame[..42]);
        assert_eq!(b0.next_record(1).unwrap().len, 42);
    }
}
