//! UOA: the client's address for a FullNAT UDP real server, in DPVS's
//! "opp" (option protocol) form.
//!
//! UDP has no options, so DPVS puts a small header between the IP and the
//! UDP header and marks the packet as IP protocol 248; the backend's `uoa`
//! kernel module records the address it carries, removes the header and
//! hands the datagram to UDP, where `getsockopt` reveals the client. The
//! layout, as DPVS sends it (all fields in network order):
//!
//! ```text
//!  0               1               2               3
//!  +-------+-------+---------------+-------------------------------+
//!  |  Ver  | Rsvd  |   Protocol    |            Length             |  option-protocol header
//!  +-------+-------+---------------+-------------------------------+
//!  |  Code = 31    |  Opt. length  |          Client port          |  UOA option
//!  +---------------+---------------+-------------------------------+
//!  |            Client address (4 bytes, or 16 for IPv6)           |
//!  +---------------------------------------------------------------+
//! ```
//!
//! - Ver: 1 for an IPv4 client address, 2 for IPv6; Rsvd zero.
//! - Protocol: the next header, UDP (17).
//! - Length: this header plus the option, payload excluded: 12 (IPv4
//!   client) or 24 (IPv6 client).
//! - The option is laid out like an IPv4 option: code 31 (a private,
//!   non-copied control option), length 8 or 20, the client's port, then
//!   its address.
//!
//! The IPv4 protocol / IPv6 next header becomes 248 and the IP length grows
//! by the header's size. The UDP header and payload are unchanged, so the
//! UDP checksum stays the one the plain datagram carries, computed over the
//! UDP pseudo-header (protocol 17, UDP length) — exactly what the backend
//! verifies once the module has removed the header. (DPVS itself sends a
//! zero UDP checksum with IPv4 opp packets; a correct one is equally
//! accepted, and keeps the datagram protected.)
//!
//! # Which datagrams carry it
//! A connection of a service with `uoa` set starts with
//! [`FLAG_UOA_LEFT`] holding 3 (DPVS's default `uoa_max_trail`): each
//! client datagram that gets the header counts one down, so the first three
//! carry it and later ones are plain UDP. A datagram that cannot carry it
//! is forwarded plain, counted in [`FullNatCounters::uoa_skipped`], and
//! does not count down, so the next one tries: when the path MTU would be
//! exceeded, the buffer has neither the headroom nor the tailroom, the IPv6
//! packet has extension headers (the header must follow the fixed header,
//! as in DPVS), or the datagram is a first fragment. (DPVS sends an extra,
//! empty datagram with the header in those cases; the core forwards one
//! packet per packet, so it does not.)
//!
//! # Making room
//! Moving the IP header (20–60 bytes) is cheaper than moving the datagram,
//! so the header moves down into the headroom when there is enough;
//! otherwise the datagram moves up into the tailroom.

use core::net::IpAddr;

use rvs_wire::ip_proto;
use rvs_wire::ipv4::Ipv4Header;
use rvs_wire::ipv6::{self, Ipv6Header};
use zerocopy::FromBytes;

use crate::classify::{Family, PacketInfo};
use crate::packet::Packet;

use super::fullnat::FullNatCounters;
use super::rewrite::Endpoint;
use super::toa::grow_ip_len;
use super::{ConnData, FLAG_UOA_LEFT, FwdContext};

/// The flags of a new connection that carries UOA: three datagrams to go.
pub(super) const INITIAL_FLAGS: u8 = FLAG_UOA_LEFT;

/// One count in the [`FLAG_UOA_LEFT`] field.
const ONE: u8 = FLAG_UOA_LEFT & FLAG_UOA_LEFT.wrapping_neg();

/// UOA option code: 31 with the "control" class and no copy bit.
const OPTION_CODE: u8 = 31;

/// Length of the option-protocol header alone.
const OPP_FIXED_LEN: usize = 4;

/// Longest header (IPv6 client).
const MAX_LEN: usize = OPP_FIXED_LEN + 4 + 16;

/// Client → server, after the address rewrite: adds the UOA header to the
/// first datagrams of the flow. `info` describes the packet as it is now.
pub(super) fn to_server(
    packet: &mut Packet<'_>,
    info: &PacketInfo,
    data: &mut ConnData,
    client: Endpoint,
    ctx: &FwdContext,
    counters: &mut FullNatCounters,
) {
    if data.flags & FLAG_UOA_LEFT == 0 {
        return;
    }
    if try_add(packet, info, client, ctx.mtu) {
        data.flags -= ONE;
        counters.uoa_added += 1;
    } else {
        counters.uoa_skipped += 1;
    }
}

/// Writes the header for `client` into `buf`; returns its length.
fn emit(client: Endpoint, buf: &mut [u8; MAX_LEN]) -> usize {
    let (version, addr_len) = match client.0 {
        IpAddr::V4(a) => {
            if let Some(slot) = buf.get_mut(8..12) {
                slot.copy_from_slice(&a.octets());
            }
            (1u8, 4)
        }
        IpAddr::V6(a) => {
            if let Some(slot) = buf.get_mut(8..24) {
                slot.copy_from_slice(&a.octets());
            }
            (2u8, 16)
        }
    };
    let len = OPP_FIXED_LEN + 4 + addr_len;
    let opt_len = (4 + addr_len) as u8;
    let [l0, l1] = (len as u16).to_be_bytes();
    let [p0, p1] = client.1.to_be_bytes();
    if let Some(head) = buf.first_chunk_mut::<8>() {
        *head = [
            version << 4,
            ip_proto::UDP,
            l0,
            l1,
            OPTION_CODE,
            opt_len,
            p0,
            p1,
        ];
    }
    len
}

fn try_add(packet: &mut Packet<'_>, info: &PacketInfo, client: Endpoint, mtu: u16) -> bool {
    let mut header = [0u8; MAX_LEN];
    let n = emit(client, &mut header);
    let (l4, ip_len) = (info.l4_offset, info.ip_len);
    let new_len = ip_len + n;
    // These checks also keep the copies below inside the packet.
    if info.first_fragment
        || new_len > usize::from(mtu)
        || ip_len > packet.len()
        || l4 > ip_len
        || (info.family == Family::V6 && l4 != ipv6::HEADER_LEN)
    {
        return false;
    }
    if packet.headroom() >= n {
        // The IP header moves down by n.
        packet.push_front(n);
        packet.data_mut().copy_within(n..n + l4, 0);
    } else {
        // The datagram moves up by n.
        if !packet.set_len(new_len) {
            return false;
        }
        packet.data_mut().copy_within(l4..ip_len, l4 + n);
    }
    // Trailing padding, if any, is cut off.
    packet.set_len(new_len);
    let ip = packet.data_mut();
    if let (Some(slot), Some(h)) = (ip.get_mut(l4..l4 + n), header.get(..n)) {
        slot.copy_from_slice(h);
    }
    set_protocol(ip, info.family);
    grow_ip_len(ip, info.family, new_len)
}

/// Marks the packet as carrying the option protocol.
fn set_protocol(ip: &mut [u8], family: Family) {
    match family {
        Family::V4 => {
            if let Ok((h, _)) = Ipv4Header::mut_from_prefix(ip) {
                h.set_protocol(ip_proto::UOA_OPP);
            }
        }
        Family::V6 => {
            if let Ok((h, _)) = Ipv6Header::mut_from_prefix(ip) {
                h.next_header = ip_proto::UOA_OPP;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout() {
        let mut b = [0u8; MAX_LEN];
        let n = emit(("192.0.2.10".parse().unwrap(), 40000), &mut b);
        assert_eq!(n, 12);
        assert_eq!(
            &b[..n],
            &[0x10, 17, 0, 12, 31, 8, 0x9c, 0x40, 192, 0, 2, 10]
        );
        let n = emit(("2001:db8::a".parse().unwrap(), 1), &mut b);
        assert_eq!(n, 24);
        assert_eq!(&b[..8], &[0x20, 17, 0, 24, 31, 20, 0, 1]);
        assert_eq!(
            b[8..24],
            "2001:db8::a"
                .parse::<core::net::Ipv6Addr>()
                .unwrap()
                .octets()
        );
        assert_eq!(ONE, 0x40);
    }
}
