//! The AF_XDP backend: the kernel-bypass path.
//!
//! - [`XdpProgram`]: the small XDP program (`bpf/redirect.c`) that sends each
//!   frame to the AF_XDP socket of the queue it arrived on, or lets it
//!   through to the kernel (`XDP_PASS`) when that queue has no socket: the
//!   host keeps working. Native mode where the driver has it, generic (SKB)
//!   mode otherwise; detached on drop, and a program left by a crashed run
//!   is removed at the next start ([`clean_stale`]).
//! - [`XskSocket`]: one socket per worker queue, each with its own UMEM
//!   (frames of 2048 or 4096 bytes) and fill/completion/RX/TX rings;
//!   zero-copy where the driver supports it, copy mode otherwise. It is the
//!   [`PacketIo`](crate::PacketIo) of one worker on one port.
//!
//! # Frames
//! A [`Frame`](crate::Frame)'s `id` is its UMEM frame index and `start` the
//! descriptor's offset in that frame. The kernel writes received frames
//! after its own `XDP_PACKET_HEADROOM` (256 bytes), which is more than
//! [`HEADROOM`](crate::HEADROOM); frames from `alloc` start at `HEADROOM`.
//!
//! # Bursts
//! `rx_burst` consumes up to N RX descriptors, then tops the fill ring up in
//! one go from the free list (and reclaims completed transmissions);
//! `tx_burst` queues descriptors on the TX ring and makes one `sendto` when
//! the kernel needs it. In copy mode (veth, virtio, generic XDP) the kernel
//! sends at most 32 frames per `sendto`: what is left goes out on the next
//! burst's kick. No allocation and at most one kernel call per burst.
//!
//! # veth
//! veth has native XDP but no zero-copy. In native mode a frame a veth
//! receives reaches XDP (and so the socket) only when the *peer* end is set
//! up for it: an XDP program on the peer (any, e.g. this one with no socket
//! registered) or GRO on. Generic mode works without that.

mod netlink;
mod program;
mod socket;
mod umem;

pub use program::{
    AttachMode, AttachedMode, PROGRAM_NAME, PROGRAM_OBJECT, XdpProgram, clean_stale, ifindex,
};
pub use socket::{XskConfig, XskSocket, ZeroCopy};
