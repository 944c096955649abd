//! ICMP the node originates: echo replies for its own addresses and "time
//! exceeded" for packets it would forward with a TTL/hop limit of 1 or 0.
//! Both are built in place in the received frame's buffer.

use core::net::IpAddr;

use rvs_wire::icmpv4::{self, Icmpv4Packet, Icmpv4Repr};
use rvs_wire::icmpv6::{self, Icmpv6Packet, Icmpv6Repr};
use rvs_wire::ip_proto;
use rvs_wire::ipv4::{self, Ipv4Packet, Ipv4Repr};
use rvs_wire::ipv6::{self, Ipv6Packet, Ipv6Repr};

use crate::packet::Packet;
use crate::stats::DropReason;

/// TTL / hop limit of packets the node originates (Linux's default).
pub const TTL: u8 = 64;

/// TOS of ICMP errors (precedence "internetwork control", as Linux sends).
pub const ERROR_TOS: u8 = 0xc0;

/// Turns the IPv4 echo request `l3` (to one of our addresses) into its
/// reply: addresses swapped, TTL [`TTL`], type 0. Checksums are updated
/// incrementally, so a corrupt request gives an equally corrupt reply.
pub fn echo_reply_v4(l3: &mut [u8]) -> Result<(), DropReason> {
    let mut ip = Ipv4Packet::parse(l3).map_err(|_| DropReason::Malformed)?;
    let (src, dst) = (ip.src(), ip.dst());
    ip.set_src(dst);
    ip.set_dst(src);
    ip.set_ttl(TTL);
    let mut icmp = Icmpv4Packet::parse(ip.payload_mut()).map_err(|_| DropReason::Malformed)?;
    icmp.make_echo_reply().map_err(|_| DropReason::Malformed)
}

/// The IPv6 counterpart of [`echo_reply_v4`] (the ICMPv6 message must
/// follow the fixed header directly).
pub fn echo_reply_v6(l3: &mut [u8]) -> Result<(), DropReason> {
    let mut ip = Ipv6Packet::parse(l3).map_err(|_| DropReason::Malformed)?;
    if ip.next_header() != ip_proto::ICMPV6 {
        return Err(DropReason::Unsupported);
    }
    let (src, dst) = (ip.src(), ip.dst());
    ip.set_src(dst);
    ip.set_dst(src);
    ip.set_hop_limit(TTL);
    let mut icmp = Icmpv6Packet::parse(ip.payload_mut()).map_err(|_| DropReason::Malformed)?;
    icmp.make_echo_reply().map_err(|_| DropReason::Malformed)
}

/// Replaces the IP packet `p` (which expired in transit) by an ICMP "time
/// exceeded in transit" from `ours` to its source, quoting as much of it as
/// the RFCs allow; the quote stays where it is and the new headers go into
/// the headroom. `Err(TtlExpired)` when no error may be sent (about an ICMP
/// error, from a multicast source, ...): drop the packet.
pub fn time_exceeded(p: &mut Packet<'_>, ours: IpAddr) -> Result<(), DropReason> {
    match (p.data().first().map(|b| b >> 4), ours) {
        (Some(4), IpAddr::V4(ours)) => {
            let (src, quoted) = {
                let offending = p.data();
                let ip = Ipv4Packet::parse(offending).map_err(|_| DropReason::Malformed)?;
                if !icmpv4::error_allowed_for(offending) {
                    return Err(DropReason::TtlExpired);
                }
                (ip.src(), icmpv4::quote(offending).len())
            };
            const HEADERS: usize = ipv4::HEADER_LEN + icmpv4::HEADER_LEN;
            let payload_len =
                u16::try_from(icmpv4::HEADER_LEN + quoted).map_err(|_| DropReason::Malformed)?;
            if p.headroom() < HEADERS || !p.set_len(quoted) || !p.push_front(HEADERS) {
                return Err(DropReason::NoRoom);
            }
            let (ip, icmp) = p
                .data_mut()
                .split_at_mut_checked(ipv4::HEADER_LEN)
                .ok_or(DropReason::NoRoom)?;
            Ipv4Repr {
                ttl: TTL,
                dscp_ecn: ERROR_TOS,
                dont_fragment: false,
                ..Ipv4Repr::new(ours, src, ip_proto::ICMP, payload_len)
            }
            .emit(ip)
            .map_err(|_| DropReason::NoRoom)?;
            Icmpv4Repr::time_exceeded(icmpv4::time_exceeded::TTL, &[])
                .emit(icmp)
                .map_err(|_| DropReason::NoRoom)?;
            Icmpv4Packet::parse(icmp)
                .map_err(|_| DropReason::NoRoom)?
                .fill_checksum();
            Ok(())
        }
        (Some(6), IpAddr::V6(ours)) => {
            let (src, quoted) = {
                let offending = p.data();
                let ip = Ipv6Packet::parse(offending).map_err(|_| DropReason::Malformed)?;
                let t = icmpv6::msg_type::TIME_EXCEEDED;
                if !icmpv6::error_allowed_for(t, icmpv6::time_exceeded::HOP_LIMIT, offending) {
                    return Err(DropReason::TtlExpired);
                }
                (ip.src(), icmpv6::quote(offending).len())
            };
            const HEADERS: usize = ipv6::HEADER_LEN + icmpv6::HEADER_LEN;
            let payload_len =
                u16::try_from(icmpv6::HEADER_LEN + quoted).map_err(|_| DropReason::Malformed)?;
            if p.headroom() < HEADERS || !p.set_len(quoted) || !p.push_front(HEADERS) {
                return Err(DropReason::NoRoom);
            }
            let (ip, icmp) = p
                .data_mut()
                .split_at_mut_checked(ipv6::HEADER_LEN)
                .ok_or(DropReason::NoRoom)?;
            Ipv6Repr {
                src: ours,
                dst: src,
                next_header: ip_proto::ICMPV6,
                hop_limit: TTL,
                traffic_class: 0,
                flow_label: 0,
                payload_len,
            }
            .emit(ip)
            .map_err(|_| DropReason::NoRoom)?;
            Icmpv6Repr::time_exceeded(icmpv6::time_exceeded::HOP_LIMIT, &[])
                .emit(ours, src, icmp)
                .map_err(|_| DropReason::NoRoom)?;
            Icmpv6Packet::parse(icmp)
                .map_err(|_| DropReason::NoRoom)?
                .fill_checksum(ours, src);
            Ok(())
        }
        _ => Err(DropReason::TtlExpired),
    }
}
