//! One AF_XDP socket on one queue of an interface: its UMEM, its four rings
//! and the [`PacketIo`] burst functions.
//!
//! The rings are the kernel's single-producer/single-consumer rings mapped
//! into our memory: we produce on fill and TX, consume RX and completion.
//! Each side keeps a cached copy of the other side's index and reads the
//! shared one (an acquire load) only when the cache says the ring is
//! empty/full, as libxdp does.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};

use super::umem::{Mmap, Owner, Umem};
use crate::{Frame, IoStats, PacketIo};

/// Whether to ask for zero-copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ZeroCopy {
    /// Zero-copy where the driver supports it, copy mode otherwise.
    #[default]
    Auto,
    /// Copy mode always.
    Off,
    /// Zero-copy or fail.
    Require,
}

/// How to open a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XskConfig {
    /// The interface queue to bind.
    pub queue: u32,
    /// UMEM frame size: 2048 or 4096.
    pub frame_size: u32,
    /// UMEM frames (receive, transmit and generated frames share them).
    pub frame_count: u32,
    /// Entries of each ring (a power of two).
    pub ring_size: u32,
    /// Zero-copy policy.
    pub zero_copy: ZeroCopy,
}

impl Default for XskConfig {
    fn default() -> Self {
        XskConfig {
            queue: 0,
            frame_size: 2048,
            frame_count: 4096,
            ring_size: 2048,
            zero_copy: ZeroCopy::Auto,
        }
    }
}

/// A ring shared with the kernel.
#[derive(Debug)]
struct Ring<T> {
    _map: Mmap,
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    flags: *const AtomicU32,
    descs: *mut T,
    size: u32,
    mask: u32,
    /// Our copy of the producer index (ours on fill/TX, the kernel's on
    /// RX/completion).
    cached_prod: u32,
    /// Our copy of the consumer index.
    cached_cons: u32,
}

impl<T: Copy> Ring<T> {
    fn map(fd: RawFd, off: &libc::xdp_ring_offset, size: u32, pgoff: u64) -> io::Result<Self> {
        let len = off.desc as usize + size as usize * size_of::<T>();
        let map = Mmap::ring(fd, len, pgoff)?;
        let base = map.as_ptr();
        if [off.producer, off.consumer, off.flags]
            .iter()
            .any(|&o| o as usize + 4 > len)
        {
            return Err(io::Error::other("AF_XDP ring offsets outside the ring"));
        }
        // SAFETY: the kernel's offsets, checked above to fall inside the
        // mapping (desc by construction of `len`); the ring indices are
        // 4-byte aligned u32s the kernel updates atomically.
        let (producer, consumer, flags, descs) = unsafe {
            (
                base.add(off.producer as usize).cast::<AtomicU32>(),
                base.add(off.consumer as usize).cast::<AtomicU32>(),
                base.add(off.flags as usize).cast::<AtomicU32>(),
                base.add(off.desc as usize).cast::<T>(),
            )
        };
        let mut ring = Ring {
            _map: map,
            producer,
            consumer,
            flags,
            descs,
            size,
            mask: size - 1,
            cached_prod: 0,
            cached_cons: 0,
        };
        ring.cached_prod = ring.prod().load(Ordering::Relaxed);
        ring.cached_cons = ring.cons().load(Ordering::Relaxed);
        Ok(ring)
    }

    fn prod(&self) -> &AtomicU32 {
        // SAFETY: points into `_map`, which lives as long as `self`.
        unsafe { &*self.producer }
    }

    fn cons(&self) -> &AtomicU32 {
        // SAFETY: as `prod`.
        unsafe { &*self.consumer }
    }

    fn needs_wakeup(&self) -> bool {
        // SAFETY: as `prod`.
        let flags = unsafe { &*self.flags };
        flags.load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    fn slot(&self, idx: u32) -> *mut T {
        // SAFETY: `idx & mask` < size, and the mapping holds `size` entries
        // from `descs`.
        unsafe { self.descs.add((idx & self.mask) as usize) }
    }

    // Producer side (fill, TX).

    /// Free entries, reading the kernel's consumer index only if fewer than
    /// `want` are known free.
    fn prod_free(&mut self, want: u32) -> u32 {
        let free = self.size - self.cached_prod.wrapping_sub(self.cached_cons);
        if free >= want {
            return free;
        }
        self.cached_cons = self.cons().load(Ordering::Acquire);
        self.size - self.cached_prod.wrapping_sub(self.cached_cons)
    }

    /// Writes entry `i` past the producer index (not yet visible).
    fn put(&mut self, i: u32, v: T) {
        // SAFETY: `slot` is in the ring; the entry is past the kernel's
        // view until `submit`, so only we access it.
        unsafe { self.slot(self.cached_prod.wrapping_add(i)).write(v) }
    }

    /// Publishes `n` entries written with `put`.
    fn submit(&mut self, n: u32) {
        self.cached_prod = self.cached_prod.wrapping_add(n);
        self.prod().store(self.cached_prod, Ordering::Release);
    }

    // Consumer side (RX, completion).

    /// Entries ready, up to `max`.
    fn cons_ready(&mut self, max: u32) -> u32 {
        let mut ready = self.cached_prod.wrapping_sub(self.cached_cons);
        if ready == 0 {
            self.cached_prod = self.prod().load(Ordering::Acquire);
            ready = self.cached_prod.wrapping_sub(self.cached_cons);
        }
        ready.min(max)
    }

    /// Entry `i` past the consumer index.
    fn get(&self, i: u32) -> T {
        // SAFETY: `slot` is in the ring; entries up to the producer index
        // were published by the kernel (acquire in `cons_ready`).
        unsafe { self.slot(self.cached_cons.wrapping_add(i)).read() }
    }

    /// Gives `n` entries back to the kernel.
    fn release(&mut self, n: u32) {
        self.cached_cons = self.cached_cons.wrapping_add(n);
        self.cons().store(self.cached_cons, Ordering::Release);
    }
}

/// An AF_XDP socket bound to one queue, with its own UMEM.
///
/// Create it with [`XskSocket::open`], then register it in the program's
/// XSKMAP with [`XdpProgram::register`](super::XdpProgram::register).
#[derive(Debug)]
pub struct XskSocket {
    rx: Ring<libc::xdp_desc>,
    tx: Ring<libc::xdp_desc>,
    fill: Ring<u64>,
    comp: Ring<u64>,
    /// Declared after the rings and before the UMEM: the socket closes
    /// after its rings are unmapped and before the UMEM is.
    fd: OwnedFd,
    umem: Umem,
    /// Descriptors on the TX ring whose completion has not come back.
    tx_outstanding: u32,
    zero_copy: bool,
    queue: u32,
    stats: IoStats,
    kicks: u64,
    kick_errors: u64,
}

// SAFETY: the raw pointers point into mappings owned by this value alone;
// moving it to another thread moves sole access with it.
unsafe impl Send for XskSocket {}

impl XskSocket {
    /// Opens a socket on queue `cfg.queue` of interface index `ifindex`
    /// (in the calling thread's network namespace), trying zero-copy first
    /// when `cfg.zero_copy` is `Auto`.
    pub fn open(ifindex: u32, cfg: &XskConfig) -> io::Result<Self> {
        if !cfg.ring_size.is_power_of_two() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("AF_XDP ring size {}: must be a power of two", cfg.ring_size),
            ));
        }
        match cfg.zero_copy {
            ZeroCopy::Off => Self::open_with(ifindex, cfg, false),
            ZeroCopy::Require => Self::open_with(ifindex, cfg, true),
            ZeroCopy::Auto => Self::open_with(ifindex, cfg, true)
                .or_else(|_| Self::open_with(ifindex, cfg, false)),
        }
    }

    fn open_with(ifindex: u32, cfg: &XskConfig, zero_copy: bool) -> io::Result<Self> {
        let fd = xsk_socket()?;
        let raw = fd.as_raw_fd();
        let umem = Umem::new(cfg.frame_count, cfg.frame_size)?;
        let reg = libc::xdp_umem_reg {
            addr: umem.base() as u64,
            len: umem.len() as u64,
            chunk_size: umem.frame_size(),
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        setsockopt(raw, libc::XDP_UMEM_REG, &reg, "XDP_UMEM_REG")?;
        let n = cfg.ring_size;
        setsockopt(raw, libc::XDP_UMEM_FILL_RING, &n, "XDP_UMEM_FILL_RING")?;
        setsockopt(
            raw,
            libc::XDP_UMEM_COMPLETION_RING,
            &n,
            "XDP_UMEM_COMPLETION_RING",
        )?;
        setsockopt(raw, libc::XDP_RX_RING, &n, "XDP_RX_RING")?;
        setsockopt(raw, libc::XDP_TX_RING, &n, "XDP_TX_RING")?;
        let off = mmap_offsets(raw)?;
        let rx = Ring::map(raw, &off.rx, n, libc::XDP_PGOFF_RX_RING as u64)?;
        let tx = Ring::map(raw, &off.tx, n, libc::XDP_PGOFF_TX_RING as u64)?;
        let fill = Ring::map(raw, &off.fr, n, libc::XDP_UMEM_PGOFF_FILL_RING)?;
        let comp = Ring::map(raw, &off.cr, n, libc::XDP_UMEM_PGOFF_COMPLETION_RING)?;
        let mut sock = XskSocket {
            rx,
            tx,
            fill,
            comp,
            fd,
            umem,
            tx_outstanding: 0,
            zero_copy,
            queue: cfg.queue,
            stats: IoStats::default(),
            kicks: 0,
            kick_errors: 0,
        };
        // Half the frames (at most a ring's worth) wait for packets; the
        // rest serve transmit and generated frames.
        sock.refill((cfg.frame_count / 2).clamp(1, n));
        let mode = if zero_copy {
            libc::XDP_ZEROCOPY
        } else {
            libc::XDP_COPY
        };
        bind(raw, ifindex, cfg.queue, mode | libc::XDP_USE_NEED_WAKEUP)?;
        Ok(sock)
    }

    /// Whether the socket runs in zero-copy mode.
    pub fn is_zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// The queue it is bound to.
    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// Frames on the UMEM free list (to check for leaks).
    pub fn free_frames(&self) -> usize {
        self.umem.free_count()
    }

    /// Kernel calls made to wake the kernel up (at most one per burst), and
    /// how many of them failed (a transient EAGAIN/ENOBUFS is retried by
    /// the next burst).
    pub fn kicks(&self) -> (u64, u64) {
        (self.kicks, self.kick_errors)
    }

    /// The kernel's counters for this socket.
    pub fn kernel_stats(&self) -> io::Result<libc::xdp_statistics> {
        // SAFETY: xdp_statistics is plain old data; all-zero is valid.
        let mut st: libc::xdp_statistics = unsafe { std::mem::zeroed() };
        getsockopt(
            self.fd.as_raw_fd(),
            libc::XDP_STATISTICS,
            &mut st,
            "XDP_STATISTICS",
        )?;
        Ok(st)
    }

    /// Moves up to `max` free frames to the fill ring; returns how many.
    fn refill(&mut self, max: u32) -> u32 {
        let want = max.min(self.umem.free_count() as u32);
        if want == 0 {
            return 0;
        }
        let n = self.fill.prod_free(want).min(want);
        for i in 0..n {
            let Some(id) = self.umem.take(Owner::Fill) else {
                self.fill.submit(i);
                return i;
            };
            let addr = self.umem.addr(id, 0);
            self.fill.put(i, addr);
        }
        self.fill.submit(n);
        n
    }

    /// Takes transmitted frames back from the completion ring.
    fn reclaim(&mut self) {
        let n = self.comp.cons_ready(self.comp.size);
        for i in 0..n {
            let (id, _) = self.umem.split(self.comp.get(i));
            self.umem.give_back(id, Owner::Tx);
        }
        self.comp.release(n);
        self.tx_outstanding = self.tx_outstanding.saturating_sub(n);
    }

    /// One non-blocking kernel call: `sendto` drives transmission, a
    /// zero-length `recvfrom` the receive side.
    fn kick(&mut self, tx: bool) {
        let fd = self.fd.as_raw_fd();
        // SAFETY: no buffer is passed (null, length 0); the kernel only
        // looks at the socket's rings.
        let r = unsafe {
            if tx {
                libc::sendto(
                    fd,
                    std::ptr::null(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null(),
                    0,
                )
            } else {
                libc::recvfrom(
                    fd,
                    std::ptr::null_mut(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            }
        };
        self.kicks += 1;
        if r < 0 {
            self.kick_errors += 1;
        }
    }
}

impl AsRawFd for XskSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl PacketIo for XskSocket {
    fn rx_burst(&mut self, frames: &mut [Frame]) -> io::Result<usize> {
        let max = u32::try_from(frames.len()).unwrap_or(u32::MAX);
        let n = self.rx.cons_ready(max);
        for (i, slot) in (0..n).zip(frames.iter_mut()) {
            let d = self.rx.get(i);
            let (id, start) = self.umem.split(d.addr);
            self.umem.set_owner(id, Owner::Worker);
            *slot = Frame {
                id,
                start,
                len: d.len as u16,
            };
            self.stats.rx_frames += 1;
            self.stats.rx_bytes += u64::from(d.len);
        }
        self.rx.release(n);
        if n > 0 {
            self.stats.rx_bursts += 1;
        }
        self.reclaim();
        let size = self.fill.size;
        let filled = self.refill(size);
        if filled > 0 && self.fill.needs_wakeup() {
            self.kick(false);
        }
        Ok(n as usize)
    }

    fn tx_burst(&mut self, frames: &[Frame]) -> io::Result<usize> {
        self.reclaim();
        let want = u32::try_from(frames.len()).unwrap_or(u32::MAX);
        let room = self.tx.prod_free(want).min(want);
        let fs = self.umem.frame_size() as usize;
        let mut queued = 0u32;
        for f in frames.iter().take(room as usize) {
            if self.umem.owner(f.id) != Some(Owner::Worker) {
                // Not ours to send (double transmit, forged id): skip it.
                continue;
            }
            if usize::from(f.start) + usize::from(f.len) > fs || f.len == 0 {
                self.umem.give_back(f.id, Owner::Worker);
                continue;
            }
            self.umem.set_owner(f.id, Owner::Tx);
            let desc = libc::xdp_desc {
                addr: self.umem.addr(f.id, f.start),
                len: u32::from(f.len),
                options: 0,
            };
            self.tx.put(queued, desc);
            queued += 1;
            self.stats.tx_frames += 1;
            self.stats.tx_bytes += u64::from(f.len);
        }
        self.tx.submit(queued);
        self.tx_outstanding += queued;
        self.stats.tx_ring_full += u64::from(want - room);
        if self.tx_outstanding > 0 && (!self.zero_copy || self.tx.needs_wakeup()) {
            // Copy mode transmits only inside sendto; zero-copy drivers say
            // through the flag when they need the call.
            self.kick(true);
        }
        Ok(room as usize)
    }

    fn alloc(&mut self) -> Option<Frame> {
        if self.umem.free_count() == 0 {
            self.reclaim();
        }
        self.umem.take(Owner::Worker).map(Frame::empty)
    }

    fn free(&mut self, frame: Frame) {
        self.umem.give_back(frame.id, Owner::Worker);
    }

    fn buffer(&mut self, frame: &Frame) -> &mut [u8] {
        self.umem.frame_mut(frame.id)
    }

    fn stats(&self) -> IoStats {
        self.stats
    }
}

fn xsk_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(context(io::Error::last_os_error(), "socket(AF_XDP)"));
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn setsockopt<T>(fd: RawFd, opt: libc::c_int, v: &T, what: &str) -> io::Result<()> {
    // SAFETY: `v` is a live value of the size passed.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_XDP,
            opt,
            (v as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(context(io::Error::last_os_error(), what));
    }
    Ok(())
}

fn getsockopt<T>(fd: RawFd, opt: libc::c_int, v: &mut T, what: &str) -> io::Result<()> {
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: `v` is a live, writable value of the size passed, and T is
    // plain old data (only used with the kernel's xdp structs).
    let r = unsafe { libc::getsockopt(fd, libc::SOL_XDP, opt, (v as *mut T).cast(), &mut len) };
    if r < 0 {
        return Err(context(io::Error::last_os_error(), what));
    }
    if len as usize != size_of::<T>() {
        return Err(io::Error::other(format!(
            "{what}: kernel returned {len} bytes"
        )));
    }
    Ok(())
}

fn mmap_offsets(fd: RawFd) -> io::Result<libc::xdp_mmap_offsets> {
    // SAFETY: plain old data; all-zero is valid.
    let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
    getsockopt(fd, libc::XDP_MMAP_OFFSETS, &mut off, "XDP_MMAP_OFFSETS")?;
    Ok(off)
}

fn bind(fd: RawFd, ifindex: u32, queue: u32, flags: u16) -> io::Result<()> {
    let sa = libc::sockaddr_xdp {
        sxdp_family: libc::AF_XDP as u16,
        sxdp_flags: flags,
        sxdp_ifindex: ifindex,
        sxdp_queue_id: queue,
        sxdp_shared_umem_fd: 0,
    };
    // SAFETY: `sa` is a valid sockaddr_xdp of the length passed.
    let r = unsafe {
        libc::bind(
            fd,
            (&sa as *const libc::sockaddr_xdp).cast(),
            size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(context(
            io::Error::last_os_error(),
            &format!("bind AF_XDP socket to ifindex {ifindex} queue {queue}"),
        ));
    }
    Ok(())
}

fn context(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}
