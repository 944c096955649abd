//! Parse a packet once into the facts every later stage needs.
//!
//! The balancer looks at a packet's family, protocol, 5-tuple, TCP flags and
//! where its layer-4 header starts. Parsing those once, up front, into a small
//! [`PacketInfo`] keeps each forwarding mode free of re-parsing and makes the
//! drop decision for malformed input in one place: whatever does not parse
//! here is dropped and counted as [`DropReason::Malformed`] (or
//! [`DropReason::Fragment`] for non-first fragments, which carry no ports).
//!
//! Checksums: the IPv4 header checksum is verified (20 bytes, cheap, and a
//! NAT must not launder a corrupt header into a valid one). Layer-4
//! checksums are not: the rewrites update them incrementally, so a corrupt
//! segment stays corrupt and the receiver drops it, as with IPVS.

use core::net::IpAddr;

use rvs_wire::checksum;
use rvs_wire::icmpv4::{self, Icmpv4Packet};
use rvs_wire::icmpv6::{self, Icmpv6Packet};
use rvs_wire::ip_proto;
use rvs_wire::ipv4::{self, Ipv4Header, Ipv4Packet};
use rvs_wire::ipv6::Ipv6Packet;
use rvs_wire::tcp::{self, TcpHeader, TcpPacket};
use rvs_wire::udp::{self, UdpHeader, UdpPacket};
use zerocopy::{FromBytes, IntoBytes};

use crate::conn::TcpFlags;
use crate::flow::FlowKey;
use crate::stats::DropReason;

/// IP version of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

/// What the layer-4 part of a packet is, as far as balancing cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    /// A TCP segment with these flags.
    Tcp(TcpFlags),
    /// A UDP datagram.
    Udp,
    /// An ICMP/ICMPv6 echo request (`request`) or reply with this identifier.
    Echo {
        /// True for a request.
        request: bool,
        /// The echo identifier.
        ident: u16,
    },
    /// An ICMP/ICMPv6 error quoting another packet (handled by
    /// [`crate::icmp_error`]).
    IcmpError,
    /// Any other ICMP message, or another protocol.
    Other,
}

/// The facts about a packet that the balancer works from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketInfo {
    /// IP version.
    pub family: Family,
    /// IP protocol of the layer-4 header (after IPv6 extension headers).
    pub proto: u8,
    /// The flow key as received. For echo messages the identifier stands in
    /// for the port: requests carry it as the source port, replies as the
    /// destination port, so a reply's key is the reverse of its request's.
    pub key: FlowKey,
    /// What the layer-4 part is.
    pub l4: L4,
    /// Offset of the layer-4 header from the start of the IP header.
    pub l4_offset: usize,
    /// Length of the IP packet according to its own length field (the
    /// buffer may hold padding after it).
    pub ip_len: usize,
    /// True for the first fragment of a fragmented packet (it carries the
    /// ports and is balanced; later fragments are dropped for now).
    pub first_fragment: bool,
}

/// Parses an IP packet (starting at its IP header).
///
/// The common case — IPv4 without options, not fragmented, TCP or UDP — is
/// read straight from the fixed headers ([`classify_v4_fast`]); anything
/// else, including every packet that would be refused, goes through the
/// general parser, so what is accepted and refused (and why) is the general
/// parser's decision.
#[inline]
pub fn classify(packet: &[u8]) -> Result<PacketInfo, DropReason> {
    if let Some(info) = classify_v4_fast(packet) {
        return Ok(info);
    }
    classify_general(packet)
}

/// The general parser behind [`classify`].
fn classify_general(packet: &[u8]) -> Result<PacketInfo, DropReason> {
    match packet.first().map(|b| b >> 4) {
        Some(4) => classify_v4(packet),
        Some(6) => classify_v6(packet),
        _ => Err(DropReason::Malformed),
    }
}

/// The fast path of [`classify`]: an IPv4 packet with a 20-byte header, a
/// correct header checksum, not a fragment, carrying a TCP segment whose
/// data offset fits or a UDP datagram whose length fits. `None` for
/// anything else (the general parser then decides); when it answers, its
/// answer is the general parser's (the test `fast_path_agrees` checks).
#[inline(always)]
fn classify_v4_fast(packet: &[u8]) -> Option<PacketInfo> {
    let (ip, _) = Ipv4Header::ref_from_prefix(packet).ok()?;
    if ip.version_ihl != 0x45 || ip.is_fragment() {
        return None;
    }
    let ip_len = usize::from(ip.total_len());
    let proto = ip.protocol();
    let l4 = packet.get(ipv4::HEADER_LEN..ip_len)?;
    let (l4, src_port, dst_port) = match proto {
        ip_proto::TCP => {
            let (tcp, _) = TcpHeader::ref_from_prefix(l4).ok()?;
            let len = tcp.header_len();
            if len < tcp::HEADER_LEN || len > l4.len() {
                return None;
            }
            (L4::Tcp(tcp.flags()), tcp.src_port.get(), tcp.dst_port.get())
        }
        ip_proto::UDP => {
            let (udp, _) = UdpHeader::ref_from_prefix(l4).ok()?;
            let len = usize::from(udp.length.get());
            if len < udp::HEADER_LEN || len > l4.len() {
                return None;
            }
            (L4::Udp, udp.src_port.get(), udp.dst_port.get())
        }
        _ => return None,
    };
    if checksum::checksum(ip.as_bytes()) != 0 {
        return None;
    }
    Some(PacketInfo {
        family: Family::V4,
        proto,
        key: FlowKey::v4(proto, ip.src(), src_port, ip.dst(), dst_port),
        l4,
        l4_offset: ipv4::HEADER_LEN,
        ip_len,
        first_fragment: false,
    })
}

fn classify_v4(packet: &[u8]) -> Result<PacketInfo, DropReason> {
    let ip = Ipv4Packet::parse(packet).map_err(|_| DropReason::Malformed)?;
    ip.verify_checksum().map_err(|_| DropReason::BadChecksum)?;
    if ip.is_fragment() && !ip.is_first_fragment() {
        return Err(DropReason::Fragment);
    }
    let proto = ip.protocol();
    let (l4, src_port, dst_port) = ports(proto, ip.payload(), false, ip.is_fragment())?;
    Ok(PacketInfo {
        family: Family::V4,
        proto,
        key: FlowKey::v4(proto, ip.src(), src_port, ip.dst(), dst_port),
        l4,
        l4_offset: ip.header_len(),
        ip_len: usize::from(ip.total_len()),
        first_fragment: ip.is_fragment(),
    })
}

fn classify_v6(packet: &[u8]) -> Result<PacketInfo, DropReason> {
    let ip = Ipv6Packet::parse(packet).map_err(|_| DropReason::Malformed)?;
    let fragment = ip.fragment().map_err(|_| DropReason::Malformed)?;
    if fragment.is_some_and(|f| f.is_fragment() && !f.is_first()) {
        return Err(DropReason::Fragment);
    }
    let (proto, l4_offset) = ip.upper_layer().map_err(|_| DropReason::Malformed)?;
    let l4_bytes = packet
        .get(l4_offset..ip.total_len())
        .ok_or(DropReason::Malformed)?;
    let first_fragment = fragment.is_some_and(|f| f.is_fragment());
    let (l4, src_port, dst_port) = ports(proto, l4_bytes, true, first_fragment)?;
    Ok(PacketInfo {
        family: Family::V6,
        proto,
        key: FlowKey::new(proto, ip.src().into(), src_port, ip.dst().into(), dst_port),
        l4,
        l4_offset,
        ip_len: ip.total_len(),
        first_fragment: fragment.is_some_and(|f| f.is_fragment()),
    })
}

/// The layer-4 kind and the two "ports" of the flow key. A first fragment
/// carries the UDP header but not the whole datagram its length counts.
fn ports(
    proto: u8,
    l4: &[u8],
    v6: bool,
    first_fragment: bool,
) -> Result<(L4, u16, u16), DropReason> {
    let malformed = |_| DropReason::Malformed;
    match proto {
        ip_proto::TCP => {
            let tcp = TcpPacket::parse(l4).map_err(malformed)?;
            Ok((L4::Tcp(tcp.flags()), tcp.src_port(), tcp.dst_port()))
        }
        ip_proto::UDP => {
            let udp = if first_fragment {
                UdpPacket::parse_first_fragment(l4)
            } else {
                UdpPacket::parse(l4)
            }
            .map_err(malformed)?;
            Ok((L4::Udp, udp.src_port(), udp.dst_port()))
        }
        ip_proto::ICMP if !v6 => {
            let icmp = Icmpv4Packet::parse(l4).map_err(malformed)?;
            Ok(icmp_kind(
                icmp.msg_type(),
                icmp.echo_ident(),
                icmpv4::msg_type::ECHO_REQUEST,
                icmpv4::msg_type::is_error(icmp.msg_type()),
            ))
        }
        ip_proto::ICMPV6 if v6 => {
            let icmp = Icmpv6Packet::parse(l4).map_err(malformed)?;
            Ok(icmp_kind(
                icmp.msg_type(),
                icmp.echo_ident(),
                icmpv6::msg_type::ECHO_REQUEST,
                icmpv6::msg_type::is_error(icmp.msg_type()),
            ))
        }
        _ => Ok((L4::Other, 0, 0)),
    }
}

fn icmp_kind(msg_type: u8, ident: Option<u16>, request_type: u8, error: bool) -> (L4, u16, u16) {
    match ident {
        Some(ident) if msg_type == request_type => (
            L4::Echo {
                request: true,
                ident,
            },
            ident,
            0,
        ),
        Some(ident) => (
            L4::Echo {
                request: false,
                ident,
            },
            0,
            ident,
        ),
        None if error => (L4::IcmpError, 0, 0),
        None => (L4::Other, 0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};
    use etherparse::PacketBuilder;

    fn build(b: etherparse::PacketBuilderStep<etherparse::TcpHeader>) -> Vec<u8> {
        let mut v = Vec::new();
        b.write(&mut v, b"hello").unwrap();
        v
    }

    #[test]
    fn tcp_v4() {
        let p = build(
            PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                .tcp(1234, 80, 1, 1000)
                .syn(),
        );
        let i = classify(&p).unwrap();
        assert_eq!(i.family, Family::V4);
        assert_eq!(
            i.key,
            FlowKey::v4(
                6,
                Ipv4Addr::new(10, 0, 0, 1),
                1234,
                Ipv4Addr::new(10, 0, 0, 2),
                80
            )
        );
        assert_eq!(i.l4, L4::Tcp(TcpFlags::SYN));
        assert_eq!(i.l4_offset, 20);
        assert_eq!(i.ip_len, p.len());
    }

    #[test]
    fn udp_v6_and_echo() {
        let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let mut p = Vec::new();
        PacketBuilder::ipv6(a.octets(), b.octets(), 64)
            .udp(53, 5353)
            .write(&mut p, b"x")
            .unwrap();
        let i = classify(&p).unwrap();
        assert_eq!((i.family, i.l4, i.l4_offset), (Family::V6, L4::Udp, 40));
        assert_eq!(i.key, FlowKey::new(17, a.into(), 53, b.into(), 5353));

        let mut e = Vec::new();
        PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64)
            .icmpv4_echo_request(77, 1)
            .write(&mut e, b"ping")
            .unwrap();
        let i = classify(&e).unwrap();
        assert_eq!(
            i.l4,
            L4::Echo {
                request: true,
                ident: 77
            }
        );
        assert_eq!((i.key.src_port, i.key.dst_port), (77, 0));
    }

    #[test]
    fn malformed_and_fragments_are_refused_with_a_reason() {
        assert_eq!(classify(&[]), Err(DropReason::Malformed));
        assert_eq!(classify(&[0x45, 0, 0]), Err(DropReason::Malformed));
        let mut p = build(PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64).tcp(1, 2, 3, 4));
        p[8] ^= 1; // TTL changed without the checksum
        assert_eq!(classify(&p), Err(DropReason::BadChecksum));
        p[8] ^= 1;
        // A TCP header cut short.
        assert_eq!(classify(&p[..30]), Err(DropReason::Malformed));
        // A non-first fragment (offset 8 bytes) with a correct checksum.
        let mut f = p.clone();
        f[6] = 0x00;
        f[7] = 0x01;
        f[10] = 0;
        f[11] = 0;
        let c = rvs_wire::checksum::checksum(&f[..20]);
        f[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(classify(&f), Err(DropReason::Fragment));
    }

    /// Valid TCP/UDP packets (IPv4 with and without options, IPv6) with
    /// bytes then overwritten: the fast path, whenever it answers, answers
    /// as the general parser does, and it does answer for plain packets.
    fn seed_packets() -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut v = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(1234, 80, 1, 1000)
            .ack(5)
            .write(&mut v, b"hello")
            .unwrap();
        out.push(v);
        let mut v = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(53, 5353)
            .write(&mut v, b"x")
            .unwrap();
        out.push(v);
        let mut v = Vec::new();
        PacketBuilder::ipv6([1; 16], [2; 16], 64)
            .tcp(1, 2, 3, 4)
            .write(&mut v, b"")
            .unwrap();
        out.push(v);
        out
    }

    #[test]
    fn fast_path_answers_for_plain_packets() {
        let seeds = seed_packets();
        for p in &seeds[..2] {
            let fast = classify_v4_fast(p).expect("fast path");
            assert_eq!(Ok(fast), classify_general(p));
        }
        assert_eq!(classify_v4_fast(&seeds[2]), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
        #[test]
        fn fast_path_agrees(
            which in 0usize..3,
            edits in proptest::collection::vec((0usize..48, proptest::num::u8::ANY), 0..3),
            cut in 0usize..80,
            fix_checksum in proptest::bool::ANY,
        ) {
            let mut p = seed_packets().swap_remove(which);
            for (at, b) in edits {
                if let Some(x) = p.get_mut(at) {
                    *x = b;
                }
            }
            if fix_checksum && p.len() >= 20 && p[0] >> 4 == 4 {
                p[10] = 0;
                p[11] = 0;
                let c = rvs_wire::checksum::checksum(&p[..20]);
                p[10..12].copy_from_slice(&c.to_be_bytes());
            }
            p.truncate(p.len().saturating_sub(cut % 8 * (cut / 8 % 2)).max(cut % 40));
            if let Some(fast) = classify_v4_fast(&p) {
                proptest::prop_assert_eq!(Ok(fast), classify_general(&p));
            }
            proptest::prop_assert_eq!(classify(&p), classify_general(&p));
        }
    }
}
