//! TOA: the client's address for a FullNAT real server, as TCP option 254.
//!
//! The option (`fe 08 <port> <IPv4>` or `fe 14 <port> <IPv6>`, see
//! [`rvs_wire::tcp::Toa`]) carries the *client's* port and address — its
//! family is the client's, whatever the real server's. Backend TOA kernel
//! modules read it when the connection is accepted and report it to
//! `getpeername`.
//!
//! # Which segments carry it
//! A connection that uses TOA starts with [`FLAG_TOA_PENDING`]:
//! - [`ToaMode::FirstData`](crate::config::ToaMode::FirstData) (DPVS's
//!   behaviour, what the modules expect): every client segment without SYN
//!   or RST gets the option until one carries data (or FIN) — in practice
//!   the handshake's final ACK and the first data segment — and then the
//!   flag is cleared. Two chances, because the module reads whichever
//!   segment completes the handshake at the server, and the ACK may be lost.
//! - [`ToaMode::Syn`](crate::config::ToaMode::Syn) ([`FLAG_TOA_IN_SYN`] as
//!   well): the client's SYN (and its retransmissions) carry it; the first
//!   client segment without SYN clears the flag.
//!
//! # Growing the segment
//! The option goes after the existing options ([`insert_toa`], which keeps
//! the TCP checksum right incrementally); the payload moves up into the
//! buffer's tailroom, and the IPv4 total length (with its header checksum)
//! or the IPv6 payload length grows with it. The segment is forwarded
//! *without* the option, and counted in
//! [`FullNatCounters::toa_skipped`], when: the buffer lacks the tailroom,
//! the TCP header would exceed 60 bytes, the packet would exceed the path
//! MTU, the option area is malformed, or the packet is a first fragment
//! (growing it would shift every later fragment's offset). The client's
//! packet is never dropped for want of a TOA.
//!
//! # MSS: making room in advance
//! A client sends data segments as large as the MSS the server announced,
//! so a full-sized first data segment plus the option would exceed the
//! MTU. As DPVS does, the server's SYN-ACK has its MSS lowered by the
//! option's size (8 for an IPv4 client, 20 for IPv6; 1460 → 1452) on its
//! way to the client, for connections in `FirstData` mode. `Syn` mode needs
//! no such room: the SYN carries no data, so its MSS is left alone.

use core::net::IpAddr;

use rvs_wire::ipv4::Ipv4Header;
use rvs_wire::ipv6::Ipv6Header;
use rvs_wire::tcp::{self, TcpFlags, TcpPacket, Toa, insert_toa};
use zerocopy::FromBytes;

use crate::classify::{Family, PacketInfo};
use crate::packet::Packet;

use super::fullnat::FullNatCounters;
use super::rewrite::Endpoint;
use super::{ConnData, FLAG_TOA_IN_SYN, FLAG_TOA_PENDING, FwdContext};

/// Bytes the TOA for a client at `addr` adds to a segment (8 or 20).
pub(super) fn toa_len(addr: IpAddr) -> usize {
    Toa { port: 0, addr }.wire_len()
}

/// Client → server, after the address rewrite: adds the TOA if this
/// segment is one that carries it, and advances the connection's TOA state.
/// `info` describes the packet as it is now (its layer-4 offset and IP
/// length).
pub(super) fn to_server(
    packet: &mut Packet<'_>,
    info: &PacketInfo,
    flags: TcpFlags,
    data: &mut ConnData,
    client: Endpoint,
    ctx: &FwdContext,
    counters: &mut FullNatCounters,
) {
    if data.flags & FLAG_TOA_PENDING == 0 || flags.contains(TcpFlags::RST) {
        return;
    }
    let syn = flags.contains(TcpFlags::SYN);
    if data.flags & FLAG_TOA_IN_SYN != 0 {
        if !syn {
            // The handshake is over: no SYN will come again.
            data.flags &= !FLAG_TOA_PENDING;
        } else if !flags.contains(TcpFlags::ACK) {
            add(packet, info, client, ctx, counters);
        }
        return;
    }
    if syn {
        return;
    }
    let last = flags.contains(TcpFlags::FIN) || has_payload(packet.data(), info);
    add(packet, info, client, ctx, counters);
    if last {
        data.flags &= !FLAG_TOA_PENDING;
    }
}

/// Server → client, after the address rewrite, for a segment with SYN:
/// lowers its MSS by the TOA's size when the connection will add a TOA to
/// data-bearing segments (see the module documentation).
pub(super) fn lower_mss(
    packet: &mut Packet<'_>,
    info: &PacketInfo,
    data: &ConnData,
    client: IpAddr,
) {
    if data.flags & (FLAG_TOA_PENDING | FLAG_TOA_IN_SYN) != FLAG_TOA_PENDING {
        return;
    }
    let Some(seg) = packet.data_mut().get_mut(info.l4_offset..info.ip_len) else {
        return;
    };
    let Ok(mut tcp) = TcpPacket::parse(seg) else {
        return;
    };
    // toa_len is 8 or 20: the cast cannot truncate.
    let by = toa_len(client) as u16;
    if let Some(mss) = tcp.mss()
        && mss > by
    {
        tcp.clamp_mss(mss - by);
    }
}

/// True if the TCP segment of `ip` carries data.
fn has_payload(ip: &[u8], info: &PacketInfo) -> bool {
    let header_len = ip
        .get(info.l4_offset + 12)
        .map_or(tcp::HEADER_LEN, |b| usize::from(b >> 4) * 4);
    info.ip_len > info.l4_offset + header_len
}

/// Inserts the TOA for `client` into the segment; counts the outcome.
fn add(
    packet: &mut Packet<'_>,
    info: &PacketInfo,
    client: Endpoint,
    ctx: &FwdContext,
    counters: &mut FullNatCounters,
) {
    if try_add(packet, info, client, ctx.mtu) {
        counters.toa_added += 1;
    } else {
        counters.toa_skipped += 1;
    }
}

fn try_add(packet: &mut Packet<'_>, info: &PacketInfo, client: Endpoint, mtu: u16) -> bool {
    let toa = Toa {
        port: client.1,
        addr: client.0,
    };
    let grow = toa.wire_len();
    let new_len = info.ip_len + grow;
    if info.first_fragment || new_len > usize::from(mtu) {
        return false;
    }
    let Some(seg_len) = info.ip_len.checked_sub(info.l4_offset) else {
        return false;
    };
    // On error the buffer is unchanged (insert_toa's contract).
    if insert_toa(packet.tail_mut(info.l4_offset), seg_len, &toa).is_err() {
        return false;
    }
    // insert_toa checked that the buffer holds new_len bytes from the
    // packet's start, and the IP header parsed before: neither can fail.
    packet.set_len(new_len) && grow_ip_len(packet.data_mut(), info.family, new_len)
}

/// Sets the IP length of the packet `ip` (IPv4 total length with its header
/// checksum, or IPv6 payload length) for a packet of `new_len` bytes.
/// `new_len` is at most the path MTU, so it fits 16 bits.
pub(super) fn grow_ip_len(ip: &mut [u8], family: Family, new_len: usize) -> bool {
    match family {
        Family::V4 => match Ipv4Header::mut_from_prefix(ip) {
            Ok((h, _)) => {
                h.set_total_len(new_len as u16);
                true
            }
            Err(_) => false,
        },
        Family::V6 => match Ipv6Header::mut_from_prefix(ip) {
            Ok((h, _)) => {
                let payload = new_len.saturating_sub(rvs_wire::ipv6::HEADER_LEN);
                h.payload_len.set(payload as u16);
                true
            }
            Err(_) => false,
        },
    }
}
