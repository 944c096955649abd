//! Packet I/O for rvs: every way frames enter and leave a worker, behind one
//! trait, [`PacketIo`].
//!
//! Backends: [`memory`] (tests and benchmarks), AF_PACKET with TPACKET_V3
//! rings (portable), AF_XDP (the kernel-bypass path), TAP (the exception path
//! to the host kernel). None of them knows about load balancing.
//!
//! # The model
//! Frames live in buffers the backend owns (a UMEM for AF_XDP, a pool for the
//! others). A worker receives a burst of [`Frame`] handles, reads and rewrites
//! each frame in place through [`PacketIo::buffer`], and then either
//! transmits it (ownership passes back to the backend) or frees it. Every
//! buffer has headroom before the frame so that encapsulation and NAT64 can
//! grow a packet without copying it; [`Frame::start`] says where the frame
//! begins. One kernel kick per burst at most, never per packet; no
//! allocation on the burst path.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod af_packet;
pub mod af_xdp;
pub mod membership;
pub mod memory;
mod pool;
pub mod tap;

pub use pool::Pool;

use std::io;

/// A frame owned by the worker between receive and transmit/free.
///
/// `id` names the buffer in the backend's pool; the frame occupies
/// `start..start + len` of that buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Frame {
    /// The buffer, as the backend numbers them.
    pub id: u32,
    /// Offset of the frame's first byte in the buffer (the headroom).
    pub start: u16,
    /// Length of the frame.
    pub len: u16,
}

impl Frame {
    /// An empty frame in buffer `id`, after the [`HEADROOM`].
    pub fn empty(id: u32) -> Frame {
        Frame {
            id,
            start: HEADROOM as u16,
            len: 0,
        }
    }
}

/// Bytes of headroom every backend leaves before a received frame: room for
/// an outer IPv6 + GRE header and a VLAN tag with some to spare.
pub const HEADROOM: usize = 128;

/// Counters every backend keeps (read by the control plane).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoStats {
    /// Frames received.
    pub rx_frames: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames transmitted.
    pub tx_frames: u64,
    /// Bytes transmitted.
    pub tx_bytes: u64,
    /// Receive bursts that returned at least one frame.
    pub rx_bursts: u64,
    /// Frames the backend could not take for transmission (ring full).
    pub tx_ring_full: u64,
    /// Frames dropped on receive because no buffer was free.
    pub rx_no_buffer: u64,
}

/// A source and sink of Ethernet frames for one worker on one port (one
/// queue).
pub trait PacketIo {
    /// Receives up to `frames.len()` frames into `frames`, returning how
    /// many. Never blocks.
    fn rx_burst(&mut self, frames: &mut [Frame]) -> io::Result<usize>;

    /// Transmits the frames in `frames`, in order, returning how many were
    /// taken; the rest stay the caller's (to retry or free). At most one
    /// kernel call per burst.
    fn tx_burst(&mut self, frames: &[Frame]) -> io::Result<usize>;

    /// A fresh buffer for a frame the worker generates (ARP reply, ICMP
    /// error), with [`HEADROOM`] before `start`; `None` if the pool is empty.
    fn alloc(&mut self) -> Option<Frame>;

    /// Returns a frame's buffer to the pool without sending it.
    fn free(&mut self, frame: Frame);

    /// The whole buffer of `frame` (headroom and tailroom included).
    fn buffer(&mut self, frame: &Frame) -> &mut [u8];

    /// Counters.
    fn stats(&self) -> IoStats;
}

/// The bytes of a frame (within its buffer).
pub fn frame_bytes<'a, I: PacketIo + ?Sized>(io: &'a mut I, frame: &Frame) -> &'a [u8] {
    let start = usize::from(frame.start);
    let end = start + usize::from(frame.len);
    io.buffer(frame).get(start..end).unwrap_or_default()
}
