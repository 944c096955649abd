//! The one rewrite every NAT-like mode is made of: new source and
//! destination address and port on a packet of the same family, with every
//! checksum updated incrementally (RFC 1624).
//!
//! FullNAT, NAT and SNAT differ only in *which* endpoints they write, so
//! they all call [`rewrite_keys`] with addresses straight from the
//! connection's keys (the 16-byte form of [`crate::flow::FlowKey`]); family
//! translation (NAT64) is separate.
//!
//! # One checksum update per header
//! Each checksum is updated once for all the fields that change (both
//! addresses, both ports): the old words' complements and the new words are
//! summed with the old checksum's complement and folded once. This gives
//! exactly the value of updating field by field: every intermediate and the
//! final result are the same ones'-complement class, and a fold is zero only
//! when every word summed is zero in both cases, so even the choice between
//! the two representations of zero (0x0000 / 0xFFFF) is the same.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rvs_wire::checksum::Checksum;
use rvs_wire::icmpv4::Icmpv4Packet;
use rvs_wire::icmpv6::Icmpv6Packet;
use rvs_wire::ipv4::Ipv4Header;
use rvs_wire::ipv6::Ipv6Header;
use rvs_wire::tcp::TcpPacket;
use rvs_wire::udp::UdpPacket;
use zerocopy::FromBytes;

use crate::classify::{Family, L4, PacketInfo};
use crate::flow::to_v6;
use crate::stats::DropReason;

/// An address and port (for echo messages, the identifier).
pub type Endpoint = (IpAddr, u16);

/// An address as a flow key stores it (IPv4 mapped into IPv6) and a port.
pub type KeyEndpoint<'a> = (&'a Ipv6Addr, u16);

/// Rewrites `packet` (an IP packet described by `info`) to go from `src` to
/// `dst`. Fails, leaving the packet unchanged, on a family mismatch.
pub fn rewrite(
    packet: &mut [u8],
    info: &PacketInfo,
    src: Endpoint,
    dst: Endpoint,
) -> Result<(), DropReason> {
    let (s, d) = (to_v6(src.0), to_v6(dst.0));
    rewrite_keys(packet, info, (&s, src.1), (&d, dst.1))
}

/// The IPv4 address of a key address, if it is an IPv4-mapped one.
#[inline(always)]
fn v4(a: &Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = a.to_bits();
    (bits >> 32 == 0xffff).then_some(Ipv4Addr::from_bits(bits as u32))
}

/// Adds an IPv4 address change to a checksum update.
#[inline(always)]
fn sum_v4(c: &mut Checksum, old: Ipv4Addr, new: Ipv4Addr) {
    c.add_u32(!old.to_bits()).add_u32(new.to_bits());
}

/// Adds an IPv6 address change to a checksum update.
#[inline(always)]
fn sum_v6(c: &mut Checksum, old: &Ipv6Addr, new: &Ipv6Addr) {
    let (o, n) = (old.to_bits(), new.to_bits());
    c.add_u32(!(o >> 96) as u32)
        .add_u32(!(o >> 64) as u32)
        .add_u32(!(o >> 32) as u32)
        .add_u32(!o as u32)
        .add_u32((n >> 96) as u32)
        .add_u32((n >> 64) as u32)
        .add_u32((n >> 32) as u32)
        .add_u32(n as u32);
}

/// Adds a port change to a checksum update.
#[inline(always)]
fn sum_port(c: &mut Checksum, old: u16, new: u16) {
    c.add_u16(!old).add_u16(new);
}

/// A checksum update starting from checksum field value `csum`.
#[inline(always)]
fn start(csum: u16) -> Checksum {
    let mut c = Checksum::new();
    c.add_u16(!csum);
    c
}

/// Rewrites `packet` (an IP packet described by `info`) to go from `src` to
/// `dst`, given as a flow key holds them. The packet's family (`info`)
/// decides the header; every address, old (`info.key`) and new, must be of
/// that family, else [`DropReason::Unsupported`] and the packet is
/// unchanged.
#[inline]
pub fn rewrite_keys(
    packet: &mut [u8],
    info: &PacketInfo,
    src: KeyEndpoint<'_>,
    dst: KeyEndpoint<'_>,
) -> Result<(), DropReason> {
    let end = info.ip_len.min(packet.len());
    let packet = packet.get_mut(..end).ok_or(DropReason::Malformed)?;
    let (l3, l4) = packet
        .split_at_mut_checked(info.l4_offset)
        .ok_or(DropReason::Malformed)?;
    match info.family {
        Family::V4 => {
            let (Some(os), Some(od), Some(ns), Some(nd)) =
                (v4(&info.key.src), v4(&info.key.dst), v4(src.0), v4(dst.0))
            else {
                return Err(DropReason::Unsupported);
            };
            let (ip, _) = Ipv4Header::mut_from_prefix(l3).map_err(|_| DropReason::Malformed)?;
            let mut c = start(ip.checksum.get());
            sum_v4(&mut c, Ipv4Addr::from(ip.src), ns);
            sum_v4(&mut c, Ipv4Addr::from(ip.dst), nd);
            ip.src = ns.octets();
            ip.dst = nd.octets();
            ip.checksum.set(!c.fold());
            let addrs = |c: &mut Checksum| {
                sum_v4(c, os, ns);
                sum_v4(c, od, nd);
            };
            l4_rewrite(l4, info, src.1, dst.1, addrs)?;
        }
        Family::V6 => {
            if [&info.key.src, &info.key.dst, src.0, dst.0]
                .iter()
                .any(|a| v4(a).is_some())
            {
                return Err(DropReason::Unsupported);
            }
            let (os, od, ns, nd) = (&info.key.src, &info.key.dst, src.0, dst.0);
            let (ip, _) = Ipv6Header::mut_from_prefix(l3).map_err(|_| DropReason::Malformed)?;
            ip.src = ns.octets();
            ip.dst = nd.octets();
            match info.l4 {
                L4::Echo { request, .. } => {
                    let mut icmp = Icmpv6Packet::parse(l4).map_err(|_| DropReason::Malformed)?;
                    let ident = if request { src.1 } else { dst.1 };
                    icmp.set_echo_ident(ident)
                        .map_err(|_| DropReason::Malformed)?;
                    icmp.update_checksum(&os.octets(), &ns.octets());
                    icmp.update_checksum(&od.octets(), &nd.octets());
                }
                _ => {
                    let addrs = |c: &mut Checksum| {
                        sum_v6(c, os, ns);
                        sum_v6(c, od, nd);
                    };
                    l4_rewrite(l4, info, src.1, dst.1, addrs)?;
                }
            }
        }
    }
    Ok(())
}

/// The layer-4 part of a rewrite: new ports (echo identifier) and one
/// checksum update for them and the pseudo-header's addresses (`addrs`).
/// ICMPv6 echo is handled by the caller.
#[inline(always)]
fn l4_rewrite(
    l4: &mut [u8],
    info: &PacketInfo,
    sport: u16,
    dport: u16,
    addrs: impl FnOnce(&mut Checksum),
) -> Result<(), DropReason> {
    match info.l4 {
        L4::Tcp(_) => {
            let mut tcp = TcpPacket::parse(l4).map_err(|_| DropReason::Malformed)?;
            let h = tcp.header_mut();
            let mut c = start(h.checksum.get());
            sum_port(&mut c, h.src_port.get(), sport);
            sum_port(&mut c, h.dst_port.get(), dport);
            addrs(&mut c);
            h.src_port.set(sport);
            h.dst_port.set(dport);
            h.checksum.set(!c.fold());
        }
        L4::Udp => {
            let mut udp = if info.first_fragment {
                UdpPacket::parse_first_fragment(l4)
            } else {
                UdpPacket::parse(l4)
            }
            .map_err(|_| DropReason::Malformed)?;
            let h = udp.header_mut();
            let csum = h.checksum.get();
            if csum != 0 {
                let mut c = start(csum);
                sum_port(&mut c, h.src_port.get(), sport);
                sum_port(&mut c, h.dst_port.get(), dport);
                addrs(&mut c);
                // A computed 0 is sent as 0xFFFF (0 means "no checksum").
                let new = !c.fold();
                h.checksum.set(if new == 0 { 0xffff } else { new });
            }
            h.src_port.set(sport);
            h.dst_port.set(dport);
        }
        L4::Echo { request, .. } => {
            if info.family == Family::V4 {
                let mut icmp = Icmpv4Packet::parse(l4).map_err(|_| DropReason::Malformed)?;
                let ident = if request { sport } else { dport };
                icmp.set_echo_ident(ident)
                    .map_err(|_| DropReason::Malformed)?;
            }
        }
        L4::IcmpError | L4::Other => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rvs_wire::checksum::{update_ipv4_addr, update_ipv6_addr, update_u16};

    /// The field-by-field update (as `rvs_wire`'s setters do it) of a TCP
    /// checksum (`udp`: with UDP's "0 = none, 0 sent as 0xFFFF").
    fn stepwise(
        csum: u16,
        ports: [(u16, u16); 2],
        addrs: [(Ipv6Addr, Ipv6Addr); 2],
        udp: bool,
    ) -> u16 {
        if udp && csum == 0 {
            return 0;
        }
        let fix = |c: u16| if udp && c == 0 { 0xffff } else { c };
        let mut c = csum;
        for (o, n) in ports {
            c = fix(update_u16(c, o, n));
        }
        for (o, n) in addrs {
            c = fix(match (v4(&o), v4(&n)) {
                (Some(o), Some(n)) => update_ipv4_addr(c, o, n),
                _ => update_ipv6_addr(c, o, n),
            });
        }
        c
    }

    fn combined(
        csum: u16,
        ports: [(u16, u16); 2],
        addrs: [(Ipv6Addr, Ipv6Addr); 2],
        udp: bool,
    ) -> u16 {
        if udp && csum == 0 {
            return 0;
        }
        let mut c = start(csum);
        for (o, n) in ports {
            sum_port(&mut c, o, n);
        }
        for (o, n) in addrs {
            match (v4(&o), v4(&n)) {
                (Some(o), Some(n)) => sum_v4(&mut c, o, n),
                _ => sum_v6(&mut c, &o, &n),
            }
        }
        let r = !c.fold();
        if udp && r == 0 { 0xffff } else { r }
    }

    /// Words biased towards the values where the two zeros of
    /// ones'-complement arithmetic could tell the methods apart.
    fn word() -> impl Strategy<Value = u16> {
        prop_oneof![
            Just(0u16),
            Just(0xffff),
            Just(1),
            Just(0xfffe),
            any::<u16>()
        ]
    }

    /// An address from eight words, IPv4-mapped if `v4`.
    fn addr(w: &[u16], v4: bool) -> Ipv6Addr {
        let mut a = [0u16; 8];
        a.copy_from_slice(&w[..8]);
        if v4 {
            a[..6].copy_from_slice(&[0, 0, 0, 0, 0, 0xffff]);
        }
        Ipv6Addr::new(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7])
    }

    proptest! {
        /// One combined update gives exactly the field-by-field result,
        /// zero representation included.
        #[test]
        fn combined_update_equals_stepwise(
            w in proptest::collection::vec(word(), 37),
            v4 in any::<bool>(),
            udp in any::<bool>(),
        ) {
            let ports = [(w[0], w[1]), (w[2], w[3])];
            let addrs = [
                (addr(&w[4..], v4), addr(&w[12..], v4)),
                (addr(&w[20..], v4), addr(&w[28..], v4)),
            ];
            prop_assert_eq!(
                combined(w[36], ports, addrs, udp),
                stepwise(w[36], ports, addrs, udp)
            );
        }
    }

    /// The zero cases directly: all-zero input words and a class-0 sum.
    #[test]
    fn zero_representations() {
        let z = Ipv6Addr::UNSPECIFIED;
        let ones = Ipv6Addr::from_bits(u128::MAX);
        for csum in [0u16, 0xffff, 1] {
            for udp in [false, true] {
                for ports in [[(0xffff, 0), (0xffff, 0)], [(0, 0xffff), (1, 1)]] {
                    for addrs in [[(ones, z), (ones, z)], [(z, z), (ones, ones)]] {
                        assert_eq!(
                            combined(csum, ports, addrs, udp),
                            stepwise(csum, ports, addrs, udp),
                            "{csum:#x} {udp} {ports:?}"
                        );
                    }
                }
            }
        }
    }
}
