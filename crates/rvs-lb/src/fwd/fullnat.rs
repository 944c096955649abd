//! FullNAT: C→V becomes L→R, and R→L becomes V→C. Both addresses and
//! ports are rewritten, so real servers need no special setup and replies
//! return to rvs by plain routing to the local address.
//!
//! # Telling the real server who the client is
//! FullNAT hides the client from the real server; two extras put it back,
//! both as DPVS puts them on the wire (ARCHITECTURE.md §10), so the
//! backends' existing kernel modules read them:
//! - **TOA** for TCP ([`super::toa`]): TCP option 254 carrying the client's
//!   port and address, in the SYN or in the first ACK and first data
//!   segment (the service's [`ToaMode`]); the server's SYN-ACK has its MSS
//!   lowered by the option's size so that data segments still fit the MTU
//!   once the option is added.
//! - **UOA** for UDP ([`super::uoa`]): the first packets of a flow carry a
//!   small "option protocol" header (IP protocol 248) in front of the UDP
//!   header.
//!
//! Neither ever costs the client its packet: when there is no room for the
//! extra bytes (buffer tailroom, the 60-byte TCP header, the path MTU), the
//! packet is forwarded without them and [`FullNatCounters`] says so.
//!
//! # Timestamps
//! The client's SYN has its TCP timestamps option replaced by NOPs, as DPVS
//! does in FullNAT. Many clients share one local address towards a real
//! server, and a local port is reused for another client soon after a
//! connection closes; their timestamp clocks are unrelated, so a server that
//! checks timestamps per peer address (PAWS, TIME-WAIT reuse) would see them
//! go backwards and drop the new SYN. Timestamps are negotiated in the SYN
//! (RFC 7323 §3.2: without the option in the SYN neither side sends it), so
//! stripping it from the SYN alone is enough and costs nothing on later
//! segments. It also leaves room for the TOA in the SYN's option area.
//! SNAT connections share this file's rewrites but none of the extras.

use rvs_wire::tcp::{TcpFlags, TcpPacket};

use crate::classify::{L4, PacketInfo};
use crate::config::{ForwardMode, ServiceSpec, ToaMode};
use crate::conn::Conn;
use crate::packet::Packet;

use super::{
    ConnData, FLAG_TOA_IN_SYN, FLAG_TOA_PENDING, FLAG_UOA_LEFT, FwdContext, Xmit, nat64, rewrite,
    toa, uoa,
};

/// What FullNAT's extras did on one worker (plain counters, summed by the
/// reader like every other per-worker counter).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FullNatCounters {
    /// Segments that got a TOA option.
    pub toa_added: u64,
    /// Segments that should have carried a TOA but were forwarded without
    /// it: no tailroom, the TCP header would pass 60 bytes, the path MTU
    /// would be exceeded, or the option area is malformed.
    pub toa_skipped: u64,
    /// Client SYNs whose timestamps option was replaced by NOPs.
    pub timestamps_removed: u64,
    /// UDP datagrams sent with a UOA header.
    pub uoa_added: u64,
    /// UDP datagrams that should have carried a UOA header but were
    /// forwarded without it (no room in the buffer, the path MTU, IPv6
    /// extension headers); a later datagram of the flow tries again.
    pub uoa_skipped: u64,
}

/// The forwarding flags a new connection of `spec` to a real server in
/// `mode` starts with: which client-address extras it will carry.
pub fn initial_flags(mode: ForwardMode, l4: L4, spec: &ServiceSpec) -> u8 {
    if mode != ForwardMode::FullNat {
        return 0;
    }
    match (l4, spec.toa) {
        (L4::Tcp(_), ToaMode::Off) => 0,
        (L4::Tcp(_), ToaMode::FirstData) => FLAG_TOA_PENDING,
        (L4::Tcp(_), ToaMode::Syn) => FLAG_TOA_PENDING | FLAG_TOA_IN_SYN,
        (L4::Udp, _) if spec.uoa => uoa::INITIAL_FLAGS,
        _ => 0,
    }
}

/// Client → server: source becomes the local endpoint, destination the
/// real server (both from the reply key); then the client-address extras.
pub(super) fn to_server(
    packet: &mut Packet<'_>,
    info: &PacketInfo,
    conn: &mut Conn<ConnData>,
    ctx: &FwdContext,
    counters: &mut FullNatCounters,
) -> Xmit {
    if conn.data.nat64 {
        return nat64::to_server(packet, info, conn);
    }
    let reply = conn.reply_key();
    rewrite::rewrite_keys(
        packet.data_mut(),
        info,
        (&reply.dst, reply.dst_port),
        (&reply.src, reply.src_port),
    )?;
    if conn.data.mode == ForwardMode::FullNat {
        let client = |conn: &Conn<ConnData>| {
            let c = conn.client_key();
            (c.src_ip(), c.src_port)
        };
        match info.l4 {
            L4::Tcp(flags) => {
                if flags.contains(TcpFlags::SYN) && !flags.contains(TcpFlags::ACK) {
                    remove_timestamps(packet, info, counters);
                }
                if conn.data.flags & FLAG_TOA_PENDING != 0 {
                    let client = client(conn);
                    toa::to_server(packet, info, flags, &mut conn.data, client, ctx, counters);
                }
            }
            L4::Udp if conn.data.flags & FLAG_UOA_LEFT != 0 => {
                let client = client(conn);
                uoa::to_server(packet, info, &mut conn.data, client, ctx, counters);
            }
            _ => {}
        }
    }
    Ok(None)
}

/// Server → client: source becomes the VIP, destination the client (both
/// from the client key); the SYN-ACK's MSS makes room for the TOA.
pub(super) fn to_client(
    packet: &mut Packet<'_>,
    info: &PacketInfo,
    conn: &mut Conn<ConnData>,
) -> Xmit {
    if conn.data.nat64 {
        return nat64::to_client(packet, info, conn);
    }
    let client = conn.client_key();
    rewrite::rewrite_keys(
        packet.data_mut(),
        info,
        (&client.dst, client.dst_port),
        (&client.src, client.src_port),
    )?;
    if let L4::Tcp(flags) = info.l4
        && flags.contains(TcpFlags::SYN)
    {
        toa::lower_mss(packet, info, &conn.data, conn.client_key().src_ip());
    }
    Ok(None)
}

/// Replaces the timestamps option of the (already rewritten) segment with
/// NOPs.
fn remove_timestamps(packet: &mut Packet<'_>, info: &PacketInfo, counters: &mut FullNatCounters) {
    let end = info.ip_len;
    let Some(seg) = packet.data_mut().get_mut(info.l4_offset..end) else {
        return;
    };
    if let Ok(mut tcp) = TcpPacket::parse(seg)
        && tcp.replace_timestamps_with_nops()
    {
        counters.timestamps_removed += 1;
    }
}
