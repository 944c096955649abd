//! Forwarding modes: what happens to a packet of a known connection.
//!
//! A connection's two keys already hold every endpoint a rewrite needs (see
//! [`crate::conn`]): the client key is C→V as received, the reply key is
//! the server's reply as it will be received (R→L in FullNAT, R→C in NAT).
//! So the client→server rewrite writes the *reverse of the reply key*, and
//! the server→client rewrite writes the *reverse of the client key*; no
//! configuration is consulted for an established flow, and a real server
//! removed from the configuration keeps its connections working.

mod dr;
mod fullnat;
mod nat;
mod nat64;
pub mod rewrite;
mod toa;
pub use nat64::{server_proto, translates};
mod tun;
mod uoa;

pub use fullnat::{FullNatCounters, initial_flags};

use core::net::{IpAddr, Ipv6Addr};

use crate::classify::PacketInfo;
use crate::config::ForwardMode;
use crate::conn::{Conn, ConnState};
use crate::flow::FlowKey;
use crate::packet::Packet;
use crate::stats::DropReason;

/// What the caller does with a packet after the balancer has seen it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send the (rewritten) packet on. `next_hop` is the on-link neighbour
    /// to hand it to (DR: the real server itself); `None` means route by
    /// the packet's destination address.
    Forward {
        /// The neighbour, when it is not the route's choice.
        next_hop: Option<IpAddr>,
    },
    /// Not a balanced flow: the stack handles it (local delivery, the
    /// kernel through the exception path, or its own drop).
    Pass,
    /// Dropped and counted.
    Drop(DropReason),
}

/// Sentinel for "the connection's real server is no longer configured".
pub const NO_DEST: u32 = u32::MAX;

/// Sentinel for "the connection's service is no longer configured".
pub const NO_SERVICE: u32 = u32::MAX;

/// What a worker keeps per connection besides its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnData {
    /// Index of the service in the worker's current snapshot.
    pub service: u32,
    /// Index of the real server in that service, or [`NO_DEST`].
    pub dest: u32,
    /// How packets are forwarded.
    pub mode: ForwardMode,
    /// Protocol state.
    pub state: ConnState,
    /// Flags (`FLAG_*`).
    pub flags: u8,
    /// The client and the real server are of different families (FullNAT
    /// NAT64/NAT46, [`translates`]): fixed by the keys, so decided once
    /// when the connection is created rather than per packet.
    pub nat64: bool,
    /// TUN: the outer source address (a local address of the real
    /// server's family, mapped as in [`FlowKey`]), chosen when the
    /// connection is created so that no configuration is consulted per
    /// packet. Unspecified for the other modes.
    pub tun_src: Ipv6Addr,
}

/// The connection is counted as active (not inactive) at its real server.
pub const FLAG_ACTIVE: u8 = 0x01;
/// A TOA option is still to be inserted (FullNAT TCP).
pub const FLAG_TOA_PENDING: u8 = 0x02;
/// The server's packets have been seen (DR/TUN connections that turn out
/// to see replies).
pub const FLAG_REPLIES_SEEN: u8 = 0x04;
/// The TOA goes into the client's SYN (`ToaMode::Syn`), not into the first
/// ACK and data segment.
pub const FLAG_TOA_IN_SYN: u8 = 0x20;
/// Two bits: how many more client datagrams carry a UOA header (FullNAT
/// UDP), 0 to 3. (TOA bits are TCP-only and these UDP-only: should flags
/// run out, the two can share bits.)
pub const FLAG_UOA_LEFT: u8 = 0xc0;
/// The connection is controlled by a persistence template, which counts it
/// (see `worker/persist.rs`).
pub const FLAG_PERSISTENT: u8 = 0x08;
/// One-packet scheduling (UDP `-o`): the entry only maps replies back for a
/// short while; the client's next datagram is scheduled anew.
pub const FLAG_ONE_PACKET: u8 = 0x10;

/// The reply key of a new connection in `mode`, for a client key `client`,
/// real server `dest` and, for FullNAT/SNAT, the local endpoint `local`.
pub fn reply_key(
    mode: ForwardMode,
    client: &FlowKey,
    dest: (IpAddr, u16),
    local: Option<(IpAddr, u16)>,
) -> FlowKey {
    let proto = nat64::server_proto(client.proto, dest.0);
    match (mode, local) {
        (ForwardMode::FullNat | ForwardMode::Snat, Some((laddr, lport))) => {
            FlowKey::new(proto, dest.0, dest.1, laddr, lport)
        }
        _ => FlowKey::new(proto, dest.0, dest.1, client.src_ip(), client.src_port),
    }
}

/// What the forwarding modes need to know about the worker's
/// surroundings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FwdContext {
    /// MTU of the path towards real servers (the egress port's MTU):
    /// packets that would exceed it after encapsulation are answered with
    /// ICMP "fragmentation needed" / "packet too big" when they may not be
    /// fragmented.
    pub mtu: u16,
}

impl Default for FwdContext {
    fn default() -> Self {
        FwdContext { mtu: 1500 }
    }
}

/// Client → server: rewrite and say where it goes.
pub fn to_server(
    packet: &mut Packet<'_>,
    info: &PacketInfo,
    conn: &mut Conn<ConnData>,
    ctx: &FwdContext,
    counters: &mut FullNatCounters,
) -> Verdict {
    let result = match conn.data.mode {
        ForwardMode::FullNat | ForwardMode::Snat => {
            fullnat::to_server(packet, info, conn, ctx, counters)
        }
        ForwardMode::Nat => nat::to_server(packet, info, conn),
        ForwardMode::Dr => return dr::to_server(conn),
        ForwardMode::Tun(kind) => tun::to_server(packet, info, conn, kind, ctx),
    };
    match result {
        Ok(next_hop) => Verdict::Forward { next_hop },
        Err(reason) => Verdict::Drop(reason),
    }
}

/// Server → client: rewrite and say where it goes.
pub fn to_client(packet: &mut Packet<'_>, info: &PacketInfo, conn: &mut Conn<ConnData>) -> Verdict {
    let result = match conn.data.mode {
        ForwardMode::FullNat | ForwardMode::Snat => fullnat::to_client(packet, info, conn),
        ForwardMode::Nat => nat::to_client(packet, info, conn),
        // The server answered through us although the mode does not need
        // it (e.g. its default route points here): pass it on unchanged.
        ForwardMode::Dr | ForwardMode::Tun(_) => Ok(None),
    };
    match result {
        Ok(next_hop) => Verdict::Forward { next_hop },
        Err(reason) => Verdict::Drop(reason),
    }
}

/// What a mode's rewrite returns: the next hop to hand the packet to
/// (`None`: route by destination), or why it was dropped.
pub type Xmit = Result<Option<IpAddr>, DropReason>;
