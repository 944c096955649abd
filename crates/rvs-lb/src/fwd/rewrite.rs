//! The one rewrite every NAT-like mode is made of: new source and
//! destination address and port on a packet of the same family, with every
//! checksum updated incrementally (RFC 1624).
//!
//! FullNAT, NAT and SNAT differ only in *which* endpoints they write, so
//! they all call [`rewrite`]; family translation (NAT64) is separate.

use core::net::IpAddr;

use rvs_wire::icmpv4::Icmpv4Packet;
use rvs_wire::icmpv6::Icmpv6Packet;
use rvs_wire::ipv4::Ipv4Header;
use rvs_wire::ipv6::Ipv6Header;
use rvs_wire::tcp::TcpPacket;
use rvs_wire::udp::UdpPacket;
use zerocopy::FromBytes;

use crate::classify::{L4, PacketInfo};
use crate::stats::DropReason;

/// An address and port (for echo messages, the identifier).
pub type Endpoint = (IpAddr, u16);

/// Rewrites `packet` (an IP packet described by `info`) to go from `src` to
/// `dst`. Fails, leaving the packet unchanged, on a family mismatch.
pub fn rewrite(
    packet: &mut [u8],
    info: &PacketInfo,
    src: Endpoint,
    dst: Endpoint,
) -> Result<(), DropReason> {
    let (old_src, old_dst) = (info.key.src_ip(), info.key.dst_ip());
    let end = info.ip_len.min(packet.len());
    let packet = packet.get_mut(..end).ok_or(DropReason::Malformed)?;
    let (l3, l4) = packet
        .split_at_mut_checked(info.l4_offset)
        .ok_or(DropReason::Malformed)?;
    match (old_src, old_dst, src.0, dst.0) {
        (IpAddr::V4(os), IpAddr::V4(od), IpAddr::V4(ns), IpAddr::V4(nd)) => {
            let (ip, _) = Ipv4Header::mut_from_prefix(l3).map_err(|_| DropReason::Malformed)?;
            ip.set_src(ns);
            ip.set_dst(nd);
            match info.l4 {
                L4::Tcp(_) => {
                    let mut tcp = TcpPacket::parse(l4).map_err(|_| DropReason::Malformed)?;
                    tcp.set_src_port(src.1);
                    tcp.set_dst_port(dst.1);
                    tcp.update_checksum_for_addr_change_v4(os, ns);
                    tcp.update_checksum_for_addr_change_v4(od, nd);
                }
                L4::Udp => {
                    let mut udp = UdpPacket::parse(l4).map_err(|_| DropReason::Malformed)?;
                    udp.set_src_port(src.1);
                    udp.set_dst_port(dst.1);
                    udp.update_checksum_for_addr_change_v4(os, ns);
                    udp.update_checksum_for_addr_change_v4(od, nd);
                }
                L4::Echo { request, .. } => {
                    let mut icmp = Icmpv4Packet::parse(l4).map_err(|_| DropReason::Malformed)?;
                    let ident = if request { src.1 } else { dst.1 };
                    icmp.set_echo_ident(ident)
                        .map_err(|_| DropReason::Malformed)?;
                }
                L4::IcmpError | L4::Other => {}
            }
        }
        (IpAddr::V6(os), IpAddr::V6(od), IpAddr::V6(ns), IpAddr::V6(nd)) => {
            let (ip, _) = Ipv6Header::mut_from_prefix(l3).map_err(|_| DropReason::Malformed)?;
            ip.src = ns.octets();
            ip.dst = nd.octets();
            match info.l4 {
                L4::Tcp(_) => {
                    let mut tcp = TcpPacket::parse(l4).map_err(|_| DropReason::Malformed)?;
                    tcp.set_src_port(src.1);
                    tcp.set_dst_port(dst.1);
                    tcp.update_checksum_for_addr_change_v6(os, ns);
                    tcp.update_checksum_for_addr_change_v6(od, nd);
                }
                L4::Udp => {
                    let mut udp = UdpPacket::parse(l4).map_err(|_| DropReason::Malformed)?;
                    udp.set_src_port(src.1);
                    udp.set_dst_port(dst.1);
                    udp.update_checksum_for_addr_change_v6(os, ns);
                    udp.update_checksum_for_addr_change_v6(od, nd);
                }
                L4::Echo { request, .. } => {
                    let mut icmp = Icmpv6Packet::parse(l4).map_err(|_| DropReason::Malformed)?;
                    let ident = if request { src.1 } else { dst.1 };
                    icmp.set_echo_ident(ident)
                        .map_err(|_| DropReason::Malformed)?;
                    icmp.update_checksum(&os.octets(), &ns.octets());
                    icmp.update_checksum(&od.octets(), &nd.octets());
                }
                L4::IcmpError | L4::Other => {}
            }
        }
        _ => return Err(DropReason::Unsupported),
    }
    Ok(())
}
