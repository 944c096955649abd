//! The AF_PACKET backend: a packet socket bound to one interface with
//! TPACKET_V3 rings mapped into user space. The portable fallback where
//! AF_XDP is not available.
//!
//! # Receive
//! The kernel fills *blocks* of variable-size frames in the RX ring and hands
//! a block to user space by setting `TP_STATUS_USER` in its header (when the
//! block is full or its retire timer, [`AfPacketConfig::block_timeout_ms`],
//! fires). [`rx_burst`](PacketIo::rx_burst) walks the frames of the blocks it
//! owns, copies each into a [`Pool`] buffer at [`HEADROOM`] (re-inserting the
//! 802.1Q tag the kernel stripped into metadata, so VLANs stay a user-space
//! matter), and gives each block back (`TP_STATUS_KERNEL`) once all its
//! frames are copied. A burst that ends mid-block resumes there. No syscall.
//!
//! # Transmit
//! The TX ring is a ring of fixed-size `tpacket3_hdr` frames.
//! [`tx_burst`](PacketIo::tx_burst) copies each frame into the next
//! `TP_STATUS_AVAILABLE` slot, marks it `TP_STATUS_SEND_REQUEST`, frees the
//! pool buffer, and ends with one `sendto(fd, NULL, 0, MSG_DONTWAIT)` kick
//! for the whole burst. The socket bypasses the qdisc
//! (`PACKET_QDISC_BYPASS`), drops malformed frames instead of stalling the
//! ring (`PACKET_LOSS`), and does not see its own transmissions
//! (`PACKET_IGNORE_OUTGOING`).
//!
//! # Several workers on one interface
//! [`AfPacketConfig::fanout_group`] joins a `PACKET_FANOUT_HASH` group: one
//! socket per worker with the same group id, and the kernel spreads flows
//! over them by the packet's flow hash (both directions of a 5-tuple do not
//! necessarily land on the same socket).
//!
//! # Offloads
//! The ring carries what the stack hands it: a peer that sends with TSO or
//! checksum offload (veth does by default) delivers frames larger than a
//! buffer (dropped, counted in [`AfPacketStats::rx_too_long`]) or with an
//! unfinished transport checksum (`TP_STATUS_CSUMNOTREADY`: completed in
//! software, [`rvs_wire::partial_checksum`], and counted in
//! [`AfPacketStats::rx_csum_not_ready`]). Turn TSO off on the peer, as
//! for AF_XDP; a macvlan's checksum offload cannot be turned off, which
//! the completion covers.
//!
//! # Memory shared with the kernel
//! All access to the mapping goes through [`Mapping`]: status words are read
//! and written as atomics (acquire/release, matching the kernel's barriers);
//! the rest of a block or frame is touched as a byte slice only while its
//! status says user space owns it.

use std::ffi::CString;
use std::io;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::{Frame, HEADROOM, IoStats, PacketIo, Pool};

/// How to set up an AF_PACKET port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfPacketConfig {
    /// Size of one RX block (a multiple of the page size).
    pub block_size: u32,
    /// Number of RX blocks.
    pub block_count: u32,
    /// Milliseconds after which the kernel hands over a block that is not
    /// full (the receive latency at low rates; the kernel rounds up to a
    /// jiffy).
    pub block_timeout_ms: u32,
    /// Size of one TX slot (header included; a multiple of 16).
    pub tx_frame_size: u32,
    /// Number of TX slots (rounded up to fill whole pages).
    pub tx_frame_count: u32,
    /// Buffers in the worker's pool.
    pub buffers: u32,
    /// Size of each pool buffer (headroom included).
    pub buffer_size: usize,
    /// Put the interface in promiscuous mode while the socket is open.
    pub promiscuous: bool,
    /// Join this `PACKET_FANOUT_HASH` group (one socket per worker, same id).
    pub fanout_group: Option<u16>,
}

impl Default for AfPacketConfig {
    fn default() -> Self {
        AfPacketConfig {
            block_size: 1 << 18,
            block_count: 16,
            block_timeout_ms: 1,
            tx_frame_size: 2048,
            tx_frame_count: 1024,
            buffers: 4096,
            buffer_size: 2048,
            promiscuous: false,
            fanout_group: None,
        }
    }
}

/// Counters specific to this backend (beside [`IoStats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AfPacketStats {
    /// Frames received that did not fit in a buffer (GSO/GRO super-frames,
    /// or jumbo frames beyond `buffer_size`), dropped.
    pub rx_too_long: u64,
    /// Frames received whose transport checksum was left for offload
    /// (`TP_STATUS_CSUMNOTREADY`): completed in software.
    pub rx_csum_not_ready: u64,
    /// Frames handed to `tx_burst` that do not fit a TX slot, dropped.
    pub tx_too_long: u64,
    /// TX kicks the kernel refused (frames stay queued for the next kick).
    pub tx_kick_errors: u64,
}

// Layout of the ring headers (linux/if_packet.h).
const BLOCK_STATUS: usize =
    offset_of!(libc::tpacket_block_desc, hdr) + offset_of!(libc::tpacket_hdr_v1, block_status);
const BLOCK_NUM_PKTS: usize =
    offset_of!(libc::tpacket_block_desc, hdr) + offset_of!(libc::tpacket_hdr_v1, num_pkts);
const BLOCK_FIRST_PKT: usize = offset_of!(libc::tpacket_block_desc, hdr)
    + offset_of!(libc::tpacket_hdr_v1, offset_to_first_pkt);
const HDR_NEXT: usize = offset_of!(libc::tpacket3_hdr, tp_next_offset);
const HDR_SNAPLEN: usize = offset_of!(libc::tpacket3_hdr, tp_snaplen);
const HDR_LEN: usize = offset_of!(libc::tpacket3_hdr, tp_len);
const HDR_STATUS: usize = offset_of!(libc::tpacket3_hdr, tp_status);
const HDR_MAC: usize = offset_of!(libc::tpacket3_hdr, tp_mac);
const HDR_VLAN_TCI: usize =
    offset_of!(libc::tpacket3_hdr, hv1) + offset_of!(libc::tpacket_hdr_variant1, tp_vlan_tci);
const HDR_VLAN_TPID: usize =
    offset_of!(libc::tpacket3_hdr, hv1) + offset_of!(libc::tpacket_hdr_variant1, tp_vlan_tpid);
/// Where the frame starts in a TX slot: `TPACKET_ALIGN(sizeof(tpacket3_hdr))`
/// (the kernel's `tp_hdrlen - sizeof(struct sockaddr_ll)` without
/// `PACKET_TX_HAS_OFF`).
const TX_DATA: usize = (size_of::<libc::tpacket3_hdr>() + libc::TPACKET_ALIGNMENT - 1)
    & !(libc::TPACKET_ALIGNMENT - 1);
/// Nominal RX frame size the kernel wants for its checks (V3 frames are
/// variable-size within a block).
const RX_NOMINAL_FRAME: u32 = 2048;
/// Ethernet addresses before an 802.1Q tag.
const MAC_ADDRS: usize = 12;
const ETH_P_8021Q: u16 = 0x8100;

/// An AF_PACKET port for one worker.
#[derive(Debug)]
pub struct AfPacketIo {
    map: Mapping,
    fd: OwnedFd,
    ifindex: u32,
    pool: Pool,
    rx_block_size: usize,
    rx_blocks: u32,
    /// The block being read (or to read next).
    rx_block: u32,
    /// Frames left to read in the current block (0: not inside a block).
    rx_left: u32,
    /// Offset of the next frame header in the current block.
    rx_off: usize,
    tx_base: usize,
    tx_block_size: usize,
    tx_per_block: u32,
    tx_frame_size: usize,
    tx_frames: u32,
    /// The next TX slot to fill (the kernel sends in ring order).
    tx_head: u32,
    /// A kick failed: frames wait in the ring for the next one.
    tx_pending: bool,
    stats: IoStats,
    extra: AfPacketStats,
}

impl AfPacketIo {
    /// Opens a port on the interface called `name`.
    pub fn open_by_name(name: &str, config: &AfPacketConfig) -> io::Result<Self> {
        Self::open(ifindex_of(name)?, config)
    }

    /// Opens a port on the interface with index `ifindex`.
    pub fn open(ifindex: u32, config: &AfPacketConfig) -> io::Result<Self> {
        let page = page_size();
        let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_string());
        if config.block_size == 0
            || !(config.block_size as usize).is_multiple_of(page)
            || config.block_size < RX_NOMINAL_FRAME
            || config.block_count == 0
        {
            return Err(invalid(
                "RX block size must be a non-zero multiple of the page size",
            ));
        }
        let align = libc::TPACKET_ALIGNMENT as u32;
        if config.tx_frame_size as usize <= TX_DATA
            || !config.tx_frame_size.is_multiple_of(align)
            || config.tx_frame_count == 0
        {
            return Err(invalid(
                "TX frame size must be a multiple of 16 above the header",
            ));
        }
        if config.buffers == 0 || config.buffer_size <= HEADROOM || config.buffer_size > 65535 {
            return Err(invalid(
                "pool buffers must be larger than the headroom, at most 64 KiB",
            ));
        }

        // Protocol 0: the socket receives nothing until bound, so no frame
        // of another interface slips into the ring.
        let fd = socket()?;
        setsockopt_int(
            &fd,
            libc::PACKET_VERSION,
            libc::tpacket_versions::TPACKET_V3 as i32,
        )?;
        setsockopt_int(&fd, libc::PACKET_LOSS, 1)?;
        setsockopt_int(&fd, libc::PACKET_QDISC_BYPASS, 1)?;
        setsockopt_int(&fd, libc::PACKET_IGNORE_OUTGOING, 1)?;

        let rx = libc::tpacket_req3 {
            tp_block_size: config.block_size,
            tp_block_nr: config.block_count,
            tp_frame_size: RX_NOMINAL_FRAME,
            tp_frame_nr: config.block_size / RX_NOMINAL_FRAME * config.block_count,
            tp_retire_blk_tov: config.block_timeout_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        setsockopt(&fd, libc::PACKET_RX_RING, &rx)?;

        // TX blocks: the smallest page multiple that holds a slot; the
        // kernel wants no timer or private area on a TX ring.
        let tx_block_size = (config.tx_frame_size as usize).div_ceil(page) * page;
        let tx_per_block = (tx_block_size / config.tx_frame_size as usize) as u32;
        let tx_block_nr = config.tx_frame_count.div_ceil(tx_per_block);
        let tx = libc::tpacket_req3 {
            tp_block_size: tx_block_size as u32,
            tp_block_nr: tx_block_nr,
            tp_frame_size: config.tx_frame_size,
            tp_frame_nr: tx_per_block * tx_block_nr,
            tp_retire_blk_tov: 0,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        setsockopt(&fd, libc::PACKET_TX_RING, &tx)?;

        // One mapping: the RX ring, then the TX ring.
        let rx_len = config.block_size as usize * config.block_count as usize;
        let tx_len = tx_block_size * tx_block_nr as usize;
        let map = Mapping::new(&fd, rx_len + tx_len)?;

        bind(&fd, ifindex)?;
        if config.promiscuous {
            let mreq = libc::packet_mreq {
                mr_ifindex: ifindex as i32,
                mr_type: libc::PACKET_MR_PROMISC as u16,
                mr_alen: 0,
                mr_address: [0; 8],
            };
            setsockopt(&fd, libc::PACKET_ADD_MEMBERSHIP, &mreq)?;
        }
        if let Some(group) = config.fanout_group {
            // The socket must be bound before it joins a group.
            let arg = u32::from(group) | (libc::PACKET_FANOUT_HASH << 16);
            setsockopt_int(&fd, libc::PACKET_FANOUT, arg as i32)?;
        }

        Ok(AfPacketIo {
            map,
            fd,
            ifindex,
            pool: Pool::new(config.buffers, config.buffer_size),
            rx_block_size: config.block_size as usize,
            rx_blocks: config.block_count,
            rx_block: 0,
            rx_left: 0,
            rx_off: 0,
            tx_base: rx_len,
            tx_block_size,
            tx_per_block,
            tx_frame_size: config.tx_frame_size as usize,
            tx_frames: tx_per_block * tx_block_nr,
            tx_head: 0,
            tx_pending: false,
            stats: IoStats::default(),
            extra: AfPacketStats::default(),
        })
    }

    /// The interface index the socket is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Buffers free in the pool (to check for leaks).
    pub fn free_buffers(&self) -> usize {
        self.pool.available()
    }

    /// Slots in the TX ring.
    pub fn tx_capacity(&self) -> u32 {
        self.tx_frames
    }

    /// Counters specific to this backend.
    pub fn extra_stats(&self) -> AfPacketStats {
        self.extra
    }

    /// Frames the kernel dropped because the RX ring was full, since the
    /// last call (`PACKET_STATISTICS`; a syscall: not for the burst path).
    pub fn kernel_drops(&self) -> io::Result<u32> {
        let mut st = libc::tpacket_stats_v3 {
            tp_packets: 0,
            tp_drops: 0,
            tp_freeze_q_cnt: 0,
        };
        let mut len = size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: `st` is a valid, writable tpacket_stats_v3 and `len` its
        // size; the kernel writes at most `len` bytes.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&raw mut st).cast(),
                &mut len,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(st.tp_drops)
    }

    /// Sleeps until frames may be ready to receive or `timeout` passes
    /// (for an idle worker). True if ready.
    pub fn wait(&self, timeout: Duration) -> io::Result<bool> {
        if self.rx_left > 0 || self.block_ready(self.rx_block) {
            return Ok(true);
        }
        poll_in(self.fd.as_fd(), timeout)
    }

    fn block_ready(&self, block: u32) -> bool {
        let base = block as usize * self.rx_block_size;
        self.map
            .status(base + BLOCK_STATUS)
            .is_some_and(|s| s.load(Ordering::Acquire) & libc::TP_STATUS_USER != 0)
    }

    /// Gives the current RX block back to the kernel and moves to the next.
    fn release_block(&mut self) {
        let base = self.rx_block as usize * self.rx_block_size;
        if let Some(s) = self.map.status(base + BLOCK_STATUS) {
            s.store(libc::TP_STATUS_KERNEL, Ordering::Release);
        }
        self.rx_left = 0;
        self.rx_block = (self.rx_block + 1) % self.rx_blocks;
    }

    /// Copies the frame whose header is at `hdr` in the current block into
    /// a pool buffer; `None` if dropped.
    fn copy_in(&mut self, hdr: usize) -> Option<Frame> {
        let base = self.rx_block as usize * self.rx_block_size;
        // SAFETY: the caller owns the current block (its status had
        // TP_STATUS_USER, read with acquire) until `release_block`, which
        // happens after this slice is dropped.
        let block = unsafe { self.map.bytes(base, self.rx_block_size) }?;
        let snaplen = read_u32(block, hdr + HDR_SNAPLEN)? as usize;
        let status = read_u32(block, hdr + HDR_STATUS)?;
        let mac = usize::from(read_u16(block, hdr + HDR_MAC)?);
        let data = block.get(hdr + mac..hdr + mac + snaplen)?;
        let partial = status & libc::TP_STATUS_CSUMNOTREADY != 0;
        if partial {
            self.extra.rx_csum_not_ready += 1;
        }
        let tag = if status & libc::TP_STATUS_VLAN_VALID != 0 {
            let tci = read_u32(block, hdr + HDR_VLAN_TCI)? as u16;
            let tpid = if status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                read_u16(block, hdr + HDR_VLAN_TPID)?
            } else {
                ETH_P_8021Q
            };
            Some((tpid, tci))
        } else {
            None
        };
        let total = snaplen + if tag.is_some() { 4 } else { 0 };
        if HEADROOM + total > self.pool.buffer_size() || snaplen < MAC_ADDRS {
            self.extra.rx_too_long += 1;
            return None;
        }
        let Some(id) = self.pool.alloc() else {
            self.stats.rx_no_buffer += 1;
            return None;
        };
        let Some(out) = self.pool.buffer(id).get_mut(HEADROOM..HEADROOM + total) else {
            self.pool.free(id);
            return None;
        };
        match tag {
            None => out.copy_from_slice(data),
            Some((tpid, tci)) => {
                let (addrs, rest) = data.split_at(MAC_ADDRS);
                let (o_addrs, o_rest) = out.split_at_mut(MAC_ADDRS);
                o_addrs.copy_from_slice(addrs);
                let (o_tpid, o_rest) = o_rest.split_at_mut(2);
                let (o_tci, o_rest) = o_rest.split_at_mut(2);
                o_tpid.copy_from_slice(&tpid.to_be_bytes());
                o_tci.copy_from_slice(&tci.to_be_bytes());
                o_rest.copy_from_slice(rest);
            }
        }
        if partial {
            rvs_wire::partial_checksum::complete(out);
        }
        Some(Frame {
            id,
            start: HEADROOM as u16,
            len: total as u16,
        })
    }

    fn tx_slot(&self, index: u32) -> usize {
        let block = (index / self.tx_per_block) as usize;
        let within = (index % self.tx_per_block) as usize;
        self.tx_base + block * self.tx_block_size + within * self.tx_frame_size
    }

    /// One `sendto` for everything marked `TP_STATUS_SEND_REQUEST`.
    fn kick(&mut self) -> io::Result<()> {
        // SAFETY: a null buffer of length 0 and no address: the kernel reads
        // the frames from the TX ring of this bound socket.
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if r < 0 {
            self.tx_pending = true;
            self.extra.tx_kick_errors += 1;
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN | libc::ENOBUFS | libc::EINTR) => Ok(()),
                _ => Err(e),
            };
        }
        self.tx_pending = false;
        Ok(())
    }
}

impl PacketIo for AfPacketIo {
    fn rx_burst(&mut self, frames: &mut [Frame]) -> io::Result<usize> {
        let mut n = 0;
        while n < frames.len() {
            if self.rx_left == 0 {
                if !self.block_ready(self.rx_block) {
                    break;
                }
                let base = self.rx_block as usize * self.rx_block_size;
                // SAFETY: the block's status has TP_STATUS_USER (acquire):
                // the kernel does not touch it until we release it.
                let header = unsafe { self.map.bytes(base, self.rx_block_size) }.and_then(|b| {
                    Some((read_u32(b, BLOCK_NUM_PKTS)?, read_u32(b, BLOCK_FIRST_PKT)?))
                });
                match header {
                    Some((count, first)) if count > 0 => {
                        self.rx_left = count;
                        self.rx_off = first as usize;
                    }
                    _ => {
                        self.release_block();
                        continue;
                    }
                }
            }
            let hdr = self.rx_off;
            let base = self.rx_block as usize * self.rx_block_size;
            // SAFETY: as above, the current block is ours.
            let next = unsafe { self.map.bytes(base, self.rx_block_size) }
                .and_then(|b| read_u32(b, hdr + HDR_NEXT));
            if let Some(frame) = self.copy_in(hdr) {
                self.stats.rx_frames += 1;
                self.stats.rx_bytes += u64::from(frame.len);
                match frames.get_mut(n) {
                    Some(slot) => {
                        *slot = frame;
                        n += 1;
                    }
                    None => self.pool.free(frame.id),
                }
            }
            self.rx_left -= 1;
            match next {
                Some(next) if self.rx_left > 0 && next > 0 => self.rx_off = hdr + next as usize,
                _ => self.release_block(),
            }
        }
        if n > 0 {
            self.stats.rx_bursts += 1;
        }
        Ok(n)
    }

    fn tx_burst(&mut self, frames: &[Frame]) -> io::Result<usize> {
        let mut taken = 0;
        let mut queued = 0;
        for f in frames {
            let slot = self.tx_slot(self.tx_head);
            let Some(status) = self.map.status(slot + HDR_STATUS) else {
                break;
            };
            let st = status.load(Ordering::Acquire);
            if st & (libc::TP_STATUS_SEND_REQUEST | libc::TP_STATUS_SENDING) != 0 {
                break;
            }
            let start = usize::from(f.start);
            let len = usize::from(f.len);
            let data = self.pool.buffer(f.id).get(start..start + len);
            // SAFETY: the slot's status is neither SEND_REQUEST nor SENDING
            // (acquire): the kernel is done with it until we mark it.
            let out = unsafe { self.map.bytes_mut(slot, self.tx_frame_size) };
            match (data, out) {
                (Some(data), Some(out)) if TX_DATA + len <= out.len() => {
                    let (hdr, body) = out.split_at_mut(TX_DATA);
                    write_u32(hdr, HDR_NEXT, 0);
                    write_u32(hdr, HDR_LEN, len as u32);
                    write_u32(hdr, HDR_SNAPLEN, len as u32);
                    if let Some(dst) = body.get_mut(..len) {
                        dst.copy_from_slice(data);
                    }
                    if let Some(s) = self.map.status(slot + HDR_STATUS) {
                        s.store(libc::TP_STATUS_SEND_REQUEST, Ordering::Release);
                    }
                    self.tx_head = (self.tx_head + 1) % self.tx_frames;
                    self.stats.tx_frames += 1;
                    self.stats.tx_bytes += len as u64;
                    queued += 1;
                }
                _ => self.extra.tx_too_long += 1,
            }
            self.pool.free(f.id);
            taken += 1;
        }
        self.stats.tx_ring_full += (frames.len() - taken) as u64;
        if queued > 0 || self.tx_pending {
            // Frames taken are the backend's now, whatever the kick says:
            // report a refused kick only when nothing was taken (the frames
            // wait in the ring and go with the next kick).
            if let Err(e) = self.kick()
                && taken == 0
            {
                return Err(e);
            }
        }
        Ok(taken)
    }

    fn alloc(&mut self) -> Option<Frame> {
        self.pool.alloc().map(Frame::empty)
    }

    fn free(&mut self, frame: Frame) {
        self.pool.free(frame.id);
    }

    fn buffer(&mut self, frame: &Frame) -> &mut [u8] {
        self.pool.buffer(frame.id)
    }

    fn stats(&self) -> IoStats {
        self.stats
    }
}

impl AsFd for AfPacketIo {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for AfPacketIo {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The ring mapping, shared with the kernel.
#[derive(Debug)]
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is owned by one `AfPacketIo` and only reached through
// it; moving it to another thread (the worker's) is sound. The kernel side
// synchronises through the status words, accessed as atomics.
unsafe impl Send for Mapping {}

impl Mapping {
    fn new(fd: &OwnedFd, len: usize) -> io::Result<Self> {
        // SAFETY: a fresh shared mapping of the socket's rings, of the size
        // the rings were configured with; no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(io::Error::last_os_error)?;
        Ok(Mapping { ptr, len })
    }

    /// The 32-bit status word at `off`, if in bounds and aligned.
    fn status(&self, off: usize) -> Option<&AtomicU32> {
        if off.checked_add(4)? > self.len || !off.is_multiple_of(4) {
            return None;
        }
        // SAFETY: in bounds and 4-aligned (the mapping is page-aligned);
        // the memory lives as long as `self`; the kernel accesses status
        // words with its own barriers, so treating them as atomics is the
        // correct model of that sharing.
        Some(unsafe { AtomicU32::from_ptr(self.ptr.as_ptr().add(off).cast()) })
    }

    /// `len` bytes at `off`, if in bounds.
    ///
    /// # Safety
    /// The range must be owned by user space (by the ring protocol) for as
    /// long as the slice lives, and no status word inside it may be written
    /// meanwhile.
    unsafe fn bytes(&self, off: usize, len: usize) -> Option<&[u8]> {
        if off.checked_add(len)? > self.len {
            return None;
        }
        // SAFETY: in bounds; the caller guarantees the kernel does not write
        // the range while the slice lives.
        Some(unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(off), len) })
    }

    /// `len` writable bytes at `off`, if in bounds.
    ///
    /// # Safety
    /// As for [`Mapping::bytes`], and the kernel must not read the range
    /// while the slice lives.
    #[allow(clippy::mut_from_ref)]
    unsafe fn bytes_mut(&self, off: usize, len: usize) -> Option<&mut [u8]> {
        if off.checked_add(len)? > self.len {
            return None;
        }
        // SAFETY: in bounds; the caller guarantees exclusive ownership of
        // the range by the ring protocol while the slice lives.
        Some(unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(off), len) })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the region `new` mapped; nothing borrows it
        // any more (we are being dropped).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

fn read_u32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn read_u16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

fn write_u32(b: &mut [u8], off: usize, v: u32) {
    if let Some(d) = b.get_mut(off..off + 4) {
        d.copy_from_slice(&v.to_ne_bytes());
    }
}

pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(p).unwrap_or(4096).max(4096)
}

pub(crate) fn ifindex_of(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: `c` is a valid NUL-terminated string for the call's duration.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(i)
}

/// Polls `fd` for input for at most `timeout`.
pub(crate) fn poll_in(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: one valid pollfd, count 1.
    let r = unsafe { libc::poll(&mut p, 1, ms) };
    match r {
        r if r < 0 => {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            }
        }
        0 => Ok(false),
        _ => Ok(p.revents & libc::POLLIN != 0),
    }
}

fn socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket creation.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn setsockopt<T>(fd: &OwnedFd, opt: i32, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a valid `T` of the size passed.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            opt,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn setsockopt_int(fd: &OwnedFd, opt: i32, value: i32) -> io::Result<()> {
    setsockopt(fd, opt, &value)
}

fn bind(fd: &OwnedFd, ifindex: u32) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: `sll` is a valid sockaddr_ll of the size passed.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const sll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
