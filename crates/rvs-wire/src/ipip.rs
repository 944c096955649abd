//! IP-in-IP encapsulation for the balancer's TUN mode: IPv4 in IPv4
//! (RFC 2003, protocol 4), IPv6 in IPv6 (RFC 2473, next header 41) and the
//! mixed IPv6 in IPv4 (protocol 41, RFC 4213) and IPv4 in IPv6 (next
//! header 4).
//!
//! # Encapsulating in place
//! A TUN-mode forwarder already holds the client's packet in a frame buffer.
//! Rather than copy it, the I/O layer leaves headroom in front of it and
//! [`encap_ipv4`] / [`encap_ipv6`] write the outer header into that
//! headroom, ending exactly where the inner packet starts. They return the
//! outer packet's range in the buffer; the caller then writes the link
//! header before it. The inner packet is parsed first (it must be a valid
//! IPv4 or IPv6 packet, found by its version nibble), so the outer length
//! covers the inner packet's own length, not link padding after it.
//!
//! What the outer header copies from the inner one, and why:
//! - DSCP and ECN (the IPv4 TOS byte or the IPv6 traffic class): RFC 2003
//!   §3.1 copies the TOS, and RFC 6040's normal mode copies ECN so that
//!   congestion marks applied on the tunnel path reach the decapsulator.
//! - Don't Fragment, for IPv4 inner packets in IPv4 (RFC 2003 §3.1): a DF
//!   inner packet must not be fragmented along the tunnel either, and path
//!   MTU discovery keeps working. An IPv6 inner packet is never fragmented
//!   by routers, so its IPv4 outer header has DF set (as Linux's `sit`
//!   does with path MTU discovery on).
//!
//! The TTL / hop limit, identification and flow label of the outer header are
//! the caller's (RFC 2003: the tunnel entry point chooses a TTL suitable for
//! reaching the exit point). No tunnel encapsulation limit option is added
//! to IPv6 outer headers.
//!
//! # Decapsulating
//! [`decapsulate`] is what a real server (or the tests' user-space helper on
//! a kernel without the `ipip` module) does: it checks the outer header's
//! protocol, walks IPv6 extension headers to find it, refuses outer
//! fragments (they need reassembly first) and returns the inner packet's
//! bytes, cut to the inner packet's own length, after checking that the
//! inner packet parses with the version the protocol announced.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::ops::Range;

use zerocopy::SplitByteSlice;

use crate::ip_proto;
use crate::ipv4::{self, Ipv4Packet, Ipv4Repr};
use crate::ipv6::{self, Ipv6Packet, Ipv6Repr};
use crate::{Error, Result};

/// Bytes an IPv4 outer header adds (no options).
pub const IPV4_OVERHEAD: usize = ipv4::HEADER_LEN;

/// Bytes an IPv6 outer header adds (no extension headers).
pub const IPV6_OVERHEAD: usize = ipv6::HEADER_LEN;

/// An IP version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
}

impl Family {
    /// The protocol / next-header value announcing a packet of this family
    /// inside another IP packet: 4 or 41.
    pub const fn encap_proto(self) -> u8 {
        match self {
            Family::Ipv4 => ip_proto::IPIP,
            Family::Ipv6 => ip_proto::IPV6,
        }
    }

    /// The family an encapsulation protocol number announces.
    pub const fn from_encap_proto(proto: u8) -> Option<Family> {
        match proto {
            ip_proto::IPIP => Some(Family::Ipv4),
            ip_proto::IPV6 => Some(Family::Ipv6),
            _ => None,
        }
    }

    /// The family of the IP packet starting at `bytes`, from its version
    /// nibble: [`Error::Truncated`] if empty, [`Error::BadVersion`] if the
    /// version is neither 4 nor 6.
    pub fn of_packet(bytes: &[u8]) -> Result<Family> {
        match bytes.first().map(|b| b >> 4) {
            None => Err(Error::Truncated),
            Some(4) => Ok(Family::Ipv4),
            Some(6) => Ok(Family::Ipv6),
            Some(_) => Err(Error::BadVersion),
        }
    }

    /// Bytes an outer header of this family adds.
    pub const fn overhead(self) -> usize {
        match self {
            Family::Ipv4 => IPV4_OVERHEAD,
            Family::Ipv6 => IPV6_OVERHEAD,
        }
    }
}

/// What the caller chooses for an IPv4 outer header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Outer {
    /// Tunnel entry (the balancer's local address).
    pub src: Ipv4Addr,
    /// Tunnel exit (the real server).
    pub dst: Ipv4Addr,
    /// Time to live.
    pub ttl: u8,
    /// Identification (the caller's per-destination or per-worker counter).
    pub ident: u16,
}

/// What the caller chooses for an IPv6 outer header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Outer {
    /// Tunnel entry.
    pub src: Ipv6Addr,
    /// Tunnel exit.
    pub dst: Ipv6Addr,
    /// Hop limit.
    pub hop_limit: u8,
    /// Flow label (20 bits), e.g. a hash of the inner flow.
    pub flow_label: u32,
}

/// An outer header of either family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outer {
    /// IPv4 outer header.
    V4(Ipv4Outer),
    /// IPv6 outer header.
    V6(Ipv6Outer),
}

/// What the outer header needs to know about the inner packet.
struct Inner {
    family: Family,
    /// DSCP and ECN.
    tos: u8,
    dont_fragment: bool,
    /// The inner packet's own length (padding after it excluded).
    len: usize,
}

fn inspect_inner(bytes: &[u8]) -> Result<Inner> {
    match Family::of_packet(bytes)? {
        Family::Ipv4 => {
            let p = Ipv4Packet::parse(bytes)?;
            Ok(Inner {
                family: Family::Ipv4,
                tos: p.dscp_ecn(),
                dont_fragment: p.dont_fragment(),
                len: usize::from(p.total_len()),
            })
        }
        Family::Ipv6 => {
            let p = Ipv6Packet::parse(bytes)?;
            Ok(Inner {
                family: Family::Ipv6,
                tos: p.traffic_class(),
                dont_fragment: true,
                len: p.total_len(),
            })
        }
    }
}

impl Inner {
    /// The inner length as the outer header's 16-bit length field counts it
    /// ([`Error::BadLength`] beyond 65535).
    fn len_u16(&self) -> Result<u16> {
        u16::try_from(self.len).map_err(|_| Error::BadLength)
    }
}

/// The outer packet's range in the buffer: from `start`, the `header_len`
/// bytes of outer header just written, then the inner packet.
fn outer_range(start: usize, header_len: usize, inner: &Inner) -> Result<Range<usize>> {
    let end = start
        .checked_add(header_len)
        .and_then(|s| s.checked_add(inner.len))
        .ok_or(Error::BadLength)?;
    Ok(start..end)
}

/// Splits `buf` at `inner_offset`, checks the inner packet and the headroom
/// for `overhead` bytes; returns the headroom, the inner facts and the
/// outer start.
fn prepare(
    buf: &mut [u8],
    inner_offset: usize,
    overhead: usize,
) -> Result<(&mut [u8], Inner, usize)> {
    let (head, inner) = buf
        .split_at_mut_checked(inner_offset)
        .ok_or(Error::BufferTooSmall)?;
    let inner = inspect_inner(inner)?;
    let start = inner_offset
        .checked_sub(overhead)
        .ok_or(Error::BufferTooSmall)?;
    let outer = head.get_mut(start..).ok_or(Error::BufferTooSmall)?;
    Ok((outer, inner, start))
}

/// Writes an IPv4 outer header (protocol 4 or 41, by the inner packet's
/// version) in the 20 bytes before `buf[inner_offset..]` and returns the
/// outer packet's range in `buf`.
///
/// Errors: [`Error::BufferTooSmall`] if `inner_offset` is beyond `buf` or
/// there are fewer than 20 bytes of headroom; the inner packet's parse error
/// if it is not a valid IPv4 or IPv6 packet; [`Error::BadLength`] if the
/// outer packet would exceed 65535 bytes. Nothing is written on error.
pub fn encap_ipv4(buf: &mut [u8], inner_offset: usize, outer: &Ipv4Outer) -> Result<Range<usize>> {
    let (head, inner, start) = prepare(buf, inner_offset, IPV4_OVERHEAD)?;
    let payload_len = inner.len_u16()?;
    let repr = Ipv4Repr {
        ttl: outer.ttl,
        dscp_ecn: inner.tos,
        ident: outer.ident,
        dont_fragment: match inner.family {
            Family::Ipv4 => inner.dont_fragment,
            Family::Ipv6 => true,
        },
        ..Ipv4Repr::new(
            outer.src,
            outer.dst,
            inner.family.encap_proto(),
            payload_len,
        )
    };
    let n = repr.emit(head)?;
    outer_range(start, n, &inner)
}

/// Writes an IPv6 outer header (next header 4 or 41, by the inner packet's
/// version) in the 40 bytes before `buf[inner_offset..]` and returns the
/// outer packet's range in `buf`. Errors as for [`encap_ipv4`] (the limit
/// being a payload length of 65535).
pub fn encap_ipv6(buf: &mut [u8], inner_offset: usize, outer: &Ipv6Outer) -> Result<Range<usize>> {
    let (head, inner, start) = prepare(buf, inner_offset, IPV6_OVERHEAD)?;
    let payload_len = inner.len_u16()?;
    let repr = Ipv6Repr {
        src: outer.src,
        dst: outer.dst,
        next_header: inner.family.encap_proto(),
        hop_limit: outer.hop_limit,
        traffic_class: inner.tos,
        flow_label: outer.flow_label,
        payload_len,
    };
    let n = repr.emit(head)?;
    outer_range(start, n, &inner)
}

/// [`encap_ipv4`] or [`encap_ipv6`], by the outer header's family.
pub fn encapsulate(buf: &mut [u8], inner_offset: usize, outer: &Outer) -> Result<Range<usize>> {
    match outer {
        Outer::V4(o) => encap_ipv4(buf, inner_offset, o),
        Outer::V6(o) => encap_ipv6(buf, inner_offset, o),
    }
}

/// An IP-in-IP packet taken apart.
#[derive(Debug)]
pub struct Decapsulated<B> {
    /// Family of the outer header.
    pub outer_family: Family,
    /// Outer source (tunnel entry).
    pub outer_src: IpAddr,
    /// Outer destination (tunnel exit).
    pub outer_dst: IpAddr,
    /// Family of the inner packet.
    pub inner_family: Family,
    /// Offset of the inner packet from the start of the outer one.
    pub inner_offset: usize,
    /// The inner packet, exactly its own length.
    pub inner: B,
}

/// Takes an IP-in-IP packet apart: the outer header (IPv4 or IPv6, by its
/// version nibble) must carry protocol 4 or 41, after any IPv6 extension
/// headers, and must not be a fragment; the inner packet must parse as the
/// family the protocol announces.
///
/// Errors: the outer or inner parse error; [`Error::Unsupported`] if the
/// outer protocol is not 4 or 41 or the outer packet is a fragment;
/// [`Error::BadVersion`] if the inner version contradicts the protocol.
pub fn decapsulate<B: SplitByteSlice>(bytes: B) -> Result<Decapsulated<B>> {
    let (outer_family, outer_src, outer_dst, proto, inner_offset, payload) =
        match Family::of_packet(&bytes)? {
            Family::Ipv4 => {
                let p = Ipv4Packet::parse(bytes)?;
                if p.is_fragment() {
                    return Err(Error::Unsupported);
                }
                let (src, dst, proto, hl) = (p.src(), p.dst(), p.protocol(), p.header_len());
                let (_, _, payload) = p.into_parts();
                (
                    Family::Ipv4,
                    IpAddr::V4(src),
                    IpAddr::V4(dst),
                    proto,
                    hl,
                    payload,
                )
            }
            Family::Ipv6 => {
                let p = Ipv6Packet::parse(bytes)?;
                let (proto, off) = p.upper_layer()?;
                if p.fragment()?.is_some_and(|f| f.is_fragment()) {
                    return Err(Error::Unsupported);
                }
                let (src, dst) = (p.src(), p.dst());
                let (_, payload) = p.into_parts();
                let skip = off.checked_sub(ipv6::HEADER_LEN).ok_or(Error::BadLength)?;
                let (_, upper) =
                    SplitByteSlice::split_at(payload, skip).map_err(|_| Error::BadLength)?;
                (
                    Family::Ipv6,
                    IpAddr::V6(src),
                    IpAddr::V6(dst),
                    proto,
                    off,
                    upper,
                )
            }
        };
    let inner_family = Family::from_encap_proto(proto).ok_or(Error::Unsupported)?;
    if Family::of_packet(&payload)? != inner_family {
        return Err(Error::BadVersion);
    }
    let inner_len = inspect_inner(&payload)?.len;
    let (inner, _padding) =
        SplitByteSlice::split_at(payload, inner_len).map_err(|_| Error::BadLength)?;
    Ok(Decapsulated {
        outer_family,
        outer_src,
        outer_dst,
        inner_family,
        inner_offset,
        inner,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `ping -c1 -s 8 -Q 0xb8 10.44.0.2` between two network namespaces
    /// created for the capture (tcpdump -xx, Ethernet header stripped):
    /// `IP (tos 0xb8, ttl 64, id 9269, offset 0, flags [DF], proto ICMP (1),
    /// length 36) 10.44.0.1 > 10.44.0.2: ICMP echo request, id 31479, seq 1`.
    const V4_ECHO_DF: [u8; 36] = [
        0x45, 0xb8, 0x00, 0x24, 0x24, 0x35, 0x40, 0x00, 0x40, 0x01, 0x01, 0x92, 0x0a, 0x2c, 0x00,
        0x01, 0x0a, 0x2c, 0x00, 0x02, 0x08, 0x00, 0x70, 0xf7, 0x7a, 0xf7, 0x00, 0x01, 0x00, 0x01,
        0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
    ];

    /// Its reply, same capture: `IP (tos 0xb8, ttl 64, id 40647, offset 0,
    /// flags [none], proto ICMP (1), length 36) 10.44.0.2 > 10.44.0.1: ICMP
    /// echo reply, id 31479, seq 1`.
    const V4_REPLY_NO_DF: [u8; 36] = [
        0x45, 0xb8, 0x00, 0x24, 0x9e, 0xc7, 0x00, 0x00, 0x40, 0x01, 0xc6, 0xff, 0x0a, 0x2c, 0x00,
        0x02, 0x0a, 0x2c, 0x00, 0x01, 0x00, 0x00, 0x78, 0xf7, 0x7a, 0xf7, 0x00, 0x01, 0x00, 0x01,
        0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
    ];

    /// `ping -6 -c 1 fd00:6::2` (see the IPv6 module's tests): `IP6
    /// (flowlabel 0x5207f, hlim 64, next-header ICMPv6 (58) payload length:
    /// 64) fd00:6::1 > fd00:6::2: ICMP6, echo request, id 12078, seq 1`.
    const V6_ECHO: &[u8] = include_bytes!("../tests/__fuzz__/ipv6/corpus/icmpv6-echo-request");

    // Expected outer headers. Each whole encapsulated packet was written to
    // a pcap (LINKTYPE_RAW) and decoded by `tshark -o
    // ip.check_checksum:TRUE -V`, an independent implementation; the files
    // are the ipip fuzz corpus.

    /// V4_ECHO_DF in IPv4: tshark: `Internet Protocol Version 4, Src:
    /// 192.0.2.1, Dst: 192.0.2.2; Differentiated Services Field: 0xb8 (DSCP:
    /// EF PHB, ECN: Not-ECT); Total Length: 56; Identification: 0x1234;
    /// Flags: 0x2, Don't fragment; Time to Live: 64; Protocol: IPIP (4);
    /// Header Checksum: 0xa3d2 [correct]`, then the inner ICMP echo request
    /// with `[Checksum Status: Good]`.
    const OUTER_4IN4: &str = "45b80038123440004004a3d2c0000201c0000202";

    /// V4_ECHO_DF in IPv6: tshark: `Internet Protocol Version 6, Src:
    /// 2001:db8::1, Dst: 2001:db8::2; Differentiated Services Codepoint:
    /// Expedited Forwarding (46); Flow Label: 0x12345; Payload Length: 36;
    /// Next Header: IPIP (4); Hop Limit: 64`.
    const OUTER_4IN6: &str =
        "6b8123450024044020010db800000000000000000000000120010db8000000000000000000000002";

    /// V6_ECHO in IPv4: tshark: `Internet Protocol Version 4, Src:
    /// 192.0.2.1, Dst: 192.0.2.2; Differentiated Services Field: 0x00;
    /// Total Length: 124; Identification: 0x1234; Flags: 0x2, Don't
    /// fragment; Time to Live: 64; Protocol: IPv6 (41); Header Checksum:
    /// 0xa421 [correct]`, then the inner ICMPv6 echo request, checksum good.
    const OUTER_6IN4: &str = "4500007c123440004029a421c0000201c0000202";

    /// V6_ECHO in IPv6: tshark: `Internet Protocol Version 6, Src:
    /// 2001:db8::1, Dst: 2001:db8::2; Flow Label: 0x12345; Payload Length:
    /// 104; Next Header: IPv6 (41); Hop Limit: 64`.
    const OUTER_6IN6: &str =
        "600123450068294020010db800000000000000000000000120010db8000000000000000000000002";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn v4_outer() -> Ipv4Outer {
        Ipv4Outer {
            src: "192.0.2.1".parse().unwrap(),
            dst: "192.0.2.2".parse().unwrap(),
            ttl: 64,
            ident: 0x1234,
        }
    }

    fn v6_outer() -> Ipv6Outer {
        Ipv6Outer {
            src: "2001:db8::1".parse().unwrap(),
            dst: "2001:db8::2".parse().unwrap(),
            hop_limit: 64,
            flow_label: 0x12345,
        }
    }

    /// A buffer with `headroom` bytes, then `inner`, then `tail` bytes of 0xee.
    fn buffer(headroom: usize, inner: &[u8], tail: usize) -> Vec<u8> {
        let mut buf = vec![0u8; headroom];
        buf.extend_from_slice(inner);
        buf.extend(std::iter::repeat_n(0xee, tail));
        buf
    }

    #[test]
    fn known_answers_all_four_combinations() {
        let cases: [(&[u8], Outer, &str, Family, Family); 4] = [
            (
                &V4_ECHO_DF,
                Outer::V4(v4_outer()),
                OUTER_4IN4,
                Family::Ipv4,
                Family::Ipv4,
            ),
            (
                &V4_ECHO_DF,
                Outer::V6(v6_outer()),
                OUTER_4IN6,
                Family::Ipv6,
                Family::Ipv4,
            ),
            (
                V6_ECHO,
                Outer::V4(v4_outer()),
                OUTER_6IN4,
                Family::Ipv4,
                Family::Ipv6,
            ),
            (
                V6_ECHO,
                Outer::V6(v6_outer()),
                OUTER_6IN6,
                Family::Ipv6,
                Family::Ipv6,
            ),
        ];
        for (inner, outer, expect, outer_family, inner_family) in cases {
            let expect = hex(expect);
            // 64 bytes of headroom (room for a link header too) and 6 bytes
            // of link padding after the inner packet.
            let mut buf = buffer(64, inner, 6);
            let r = encapsulate(&mut buf, 64, &outer).unwrap();
            assert_eq!(r, 64 - expect.len()..64 + inner.len());
            assert_eq!(&buf[r.start..64], &expect[..]);
            assert_eq!(&buf[64..r.end], inner);
            assert!(buf[..r.start].iter().all(|&b| b == 0));

            let d = decapsulate(&buf[r.clone()]).unwrap();
            assert_eq!(d.outer_family, outer_family);
            assert_eq!(d.inner_family, inner_family);
            assert_eq!(d.inner_offset, expect.len());
            assert_eq!(d.inner, inner);
            // Link padding after the outer packet is not inner data either.
            let d = decapsulate(&buf[r.start..]).unwrap();
            assert_eq!(d.inner, inner);
            match outer {
                Outer::V4(o) => {
                    assert_eq!(d.outer_src, IpAddr::V4(o.src));
                    assert_eq!(d.outer_dst, IpAddr::V4(o.dst));
                }
                Outer::V6(o) => {
                    assert_eq!(d.outer_src, IpAddr::V6(o.src));
                    assert_eq!(d.outer_dst, IpAddr::V6(o.dst));
                }
            }
        }
    }

    #[test]
    fn corpus_files_are_the_known_answers() {
        let files: [(&[u8], &str, &[u8]); 4] = [
            (
                include_bytes!("../tests/__fuzz__/ipip/corpus/ipv4-in-ipv4"),
                OUTER_4IN4,
                &V4_ECHO_DF,
            ),
            (
                include_bytes!("../tests/__fuzz__/ipip/corpus/ipv4-in-ipv6"),
                OUTER_4IN6,
                &V4_ECHO_DF,
            ),
            (
                include_bytes!("../tests/__fuzz__/ipip/corpus/ipv6-in-ipv4"),
                OUTER_6IN4,
                V6_ECHO,
            ),
            (
                include_bytes!("../tests/__fuzz__/ipip/corpus/ipv6-in-ipv6"),
                OUTER_6IN6,
                V6_ECHO,
            ),
        ];
        for (file, outer, inner) in files {
            let outer = hex(outer);
            assert_eq!(&file[..outer.len()], &outer[..]);
            assert_eq!(&file[outer.len()..], inner);
        }
    }

    #[test]
    fn dont_fragment_follows_inner_ipv4() {
        let mut buf = buffer(20, &V4_REPLY_NO_DF, 0);
        let r = encap_ipv4(&mut buf, 20, &v4_outer()).unwrap();
        let p = Ipv4Packet::parse(&buf[r]).unwrap();
        assert!(!p.dont_fragment());
        assert_eq!(p.dscp_ecn(), 0xb8);
        assert_eq!(p.verify_checksum(), Ok(()));
    }

    #[test]
    fn ecn_is_copied() {
        for ecn in 0..4u8 {
            let mut inner = V4_ECHO_DF;
            inner[1] = 0xb8 | ecn;
            let mut buf = buffer(40, &inner, 0);
            let r = encap_ipv4(&mut buf, 40, &v4_outer()).unwrap();
            assert_eq!(Ipv4Packet::parse(&buf[r]).unwrap().dscp_ecn(), 0xb8 | ecn);
            let r = encap_ipv6(&mut buf, 40, &v6_outer()).unwrap();
            assert_eq!(
                Ipv6Packet::parse(&buf[r]).unwrap().traffic_class(),
                0xb8 | ecn
            );
        }
    }

    #[test]
    fn encap_errors_write_nothing() {
        // Headroom one byte short, inner offset past the end.
        for (inner, off) in [(&V4_ECHO_DF[..], 19), (V6_ECHO, 39)] {
            let mut buf = buffer(off, inner, 0);
            let before = buf.clone();
            assert_eq!(encap_ipv4(&mut buf, off, &v4_outer()).is_ok(), off >= 20);
            let mut buf = before.clone();
            assert_eq!(
                encap_ipv6(&mut buf, off, &v6_outer()),
                Err(Error::BufferTooSmall)
            );
            assert_eq!(buf, before);
            let past = buf.len() + 1;
            assert_eq!(
                encap_ipv6(&mut buf, past, &v6_outer()),
                Err(Error::BufferTooSmall)
            );
        }
        let mut buf = buffer(19, &V4_ECHO_DF, 0);
        let before = buf.clone();
        assert_eq!(
            encap_ipv4(&mut buf, 19, &v4_outer()),
            Err(Error::BufferTooSmall)
        );
        assert_eq!(buf, before);
        // Not an IP packet, empty, or cut short: the inner parse error.
        let mut buf = buffer(40, &[0x50; 40], 0);
        assert_eq!(
            encap_ipv4(&mut buf, 40, &v4_outer()),
            Err(Error::BadVersion)
        );
        let mut buf = vec![0u8; 40];
        assert_eq!(encap_ipv6(&mut buf, 40, &v6_outer()), Err(Error::Truncated));
        for inner in [&V4_ECHO_DF[..], V6_ECHO] {
            for n in 0..inner.len() {
                let mut buf = buffer(40, &inner[..n], 0);
                let before = buf.clone();
                assert!(encap_ipv4(&mut buf, 40, &v4_outer()).is_err(), "{n}");
                assert!(encap_ipv6(&mut buf, 40, &v6_outer()).is_err(), "{n}");
                assert_eq!(buf, before);
            }
        }
    }

    #[test]
    fn outer_length_limits() {
        // A 65535-byte IPv4 inner fits an IPv6 outer but not an IPv4 one.
        let mut inner = vec![0u8; 65535];
        Ipv4Repr::new([10, 0, 0, 1].into(), [10, 0, 0, 2].into(), 17, 65535 - 20)
            .emit(&mut inner)
            .unwrap();
        let mut buf = buffer(40, &inner, 0);
        assert_eq!(encap_ipv4(&mut buf, 40, &v4_outer()), Err(Error::BadLength));
        assert_eq!(encap_ipv6(&mut buf, 40, &v6_outer()), Ok(0..40 + 65535));
        // An IPv6 inner with the largest payload fits neither.
        let mut inner = vec![0u8; 40 + 65535];
        Ipv6Repr {
            src: Ipv6Addr::LOCALHOST,
            dst: Ipv6Addr::LOCALHOST,
            next_header: 17,
            hop_limit: 1,
            traffic_class: 0,
            flow_label: 0,
            payload_len: 65535,
        }
        .emit(&mut inner)
        .unwrap();
        let mut buf = buffer(40, &inner, 0);
        assert_eq!(encap_ipv4(&mut buf, 40, &v4_outer()), Err(Error::BadLength));
        assert_eq!(encap_ipv6(&mut buf, 40, &v6_outer()), Err(Error::BadLength));
    }

    fn encapsulated(inner: &[u8], outer: Outer) -> Vec<u8> {
        let mut buf = buffer(40, inner, 0);
        let r = encapsulate(&mut buf, 40, &outer).unwrap();
        buf[r].to_vec()
    }

    #[test]
    fn decap_errors() {
        // Outer protocol not IP-in-IP.
        let mut p = encapsulated(&V4_ECHO_DF, Outer::V4(v4_outer()));
        p[9] = ip_proto::GRE;
        assert_eq!(decapsulate(&p[..]).unwrap_err(), Error::Unsupported);
        let mut p = encapsulated(&V4_ECHO_DF, Outer::V6(v6_outer()));
        p[6] = ip_proto::UDP;
        assert_eq!(decapsulate(&p[..]).unwrap_err(), Error::Unsupported);
        // Protocol and inner version disagree.
        let mut p = encapsulated(&V4_ECHO_DF, Outer::V4(v4_outer()));
        p[9] = ip_proto::IPV6;
        assert_eq!(decapsulate(&p[..]).unwrap_err(), Error::BadVersion);
        let mut p = encapsulated(V6_ECHO, Outer::V6(v6_outer()));
        p[6] = ip_proto::IPIP;
        assert_eq!(decapsulate(&p[..]).unwrap_err(), Error::BadVersion);
        // An IPv4 outer fragment (MF set) needs reassembly first.
        let mut p = encapsulated(&V4_ECHO_DF, Outer::V4(v4_outer()));
        p[6] = 0x20;
        assert_eq!(decapsulate(&p[..]).unwrap_err(), Error::Unsupported);
        // Not IP at all.
        assert_eq!(
            decapsulate(&[0x10u8; 60][..]).unwrap_err(),
            Error::BadVersion
        );
        assert_eq!(decapsulate(&[][..]).unwrap_err(), Error::Truncated);
        // Every truncation of every combination.
        for inner in [&V4_ECHO_DF[..], V6_ECHO] {
            for outer in [Outer::V4(v4_outer()), Outer::V6(v6_outer())] {
                let p = encapsulated(inner, outer);
                for n in 0..p.len() {
                    assert!(decapsulate(&p[..n]).is_err(), "{n}");
                }
            }
        }
    }

    /// An IPv6 outer header followed by `ext` (whose first byte the caller
    /// set) and `inner`, with next header `first`.
    fn v6_outer_with_ext(first: u8, ext: &[u8], inner: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        Ipv6Repr {
            src: v6_outer().src,
            dst: v6_outer().dst,
            next_header: first,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
            payload_len: (ext.len() + inner.len()) as u16,
        }
        .emit(&mut p)
        .unwrap();
        p.extend_from_slice(ext);
        p.extend_from_slice(inner);
        p
    }

    #[test]
    fn decap_through_ipv6_extension_headers() {
        // RFC 2473 §5.1 tunnel encapsulation limit (type 4, length 1, limit
        // 4) padded by PadN in a destination options header.
        let ext = [ip_proto::IPIP, 0, 4, 1, 4, 1, 1, 0];
        let p = v6_outer_with_ext(ip_proto::IPV6_OPTS, &ext, &V4_ECHO_DF);
        let d = decapsulate(&p[..]).unwrap();
        assert_eq!((d.inner_family, d.inner_offset), (Family::Ipv4, 48));
        assert_eq!(d.inner, &V4_ECHO_DF[..]);
        // An atomic fragment (offset 0, no M flag) is a whole packet.
        let ext = [ip_proto::IPV6, 0, 0, 0, 0, 0, 0, 1];
        let p = v6_outer_with_ext(ip_proto::IPV6_FRAG, &ext, V6_ECHO);
        assert_eq!(decapsulate(&p[..]).unwrap().inner, V6_ECHO);
        // A real first fragment is not.
        let ext = [ip_proto::IPV6, 0, 0, 1, 0, 0, 0, 1];
        let p = v6_outer_with_ext(ip_proto::IPV6_FRAG, &ext, V6_ECHO);
        assert_eq!(decapsulate(&p[..]).unwrap_err(), Error::Unsupported);
        // A broken chain is the walker's error.
        let ext = [ip_proto::IPIP, 9, 0, 0, 0, 0, 0, 0];
        let p = v6_outer_with_ext(ip_proto::IPV6_OPTS, &ext, &V4_ECHO_DF);
        assert_eq!(decapsulate(&p[..]).unwrap_err(), Error::BadOption);
    }

    #[test]
    fn decap_mutably() {
        let mut p = encapsulated(&V4_ECHO_DF, Outer::V6(v6_outer()));
        let d = decapsulate(&mut p[..]).unwrap();
        d.inner[8] = 1; // inner TTL
        assert_eq!(p[48], 1);
    }

    #[test]
    fn family_helpers() {
        for f in [Family::Ipv4, Family::Ipv6] {
            assert_eq!(Family::from_encap_proto(f.encap_proto()), Some(f));
        }
        assert_eq!(Family::from_encap_proto(6), None);
        assert_eq!(Family::Ipv4.overhead(), 20);
        assert_eq!(Family::Ipv6.overhead(), 40);
    }

    /// A random valid inner packet of either family.
    fn arb_inner() -> impl Strategy<Value = Vec<u8>> {
        (
            any::<bool>(),
            any::<[u8; 32]>(),
            any::<u8>(),
            any::<bool>(),
            any::<u16>(),
            proptest::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(v4, addrs, tos, df, id, payload)| {
                let n = payload.len() as u16;
                let mut buf = if v4 {
                    let mut repr = Ipv4Repr::new(
                        Ipv4Addr::from(<[u8; 4]>::try_from(&addrs[..4]).unwrap()),
                        Ipv4Addr::from(<[u8; 4]>::try_from(&addrs[4..8]).unwrap()),
                        ip_proto::UDP,
                        n,
                    );
                    repr.dscp_ecn = tos;
                    repr.dont_fragment = df;
                    repr.ident = id;
                    let mut b = vec![0u8; 20];
                    repr.emit(&mut b).unwrap();
                    b
                } else {
                    let mut b = vec![0u8; 40];
                    Ipv6Repr {
                        src: Ipv6Addr::from(<[u8; 16]>::try_from(&addrs[..16]).unwrap()),
                        dst: Ipv6Addr::from(<[u8; 16]>::try_from(&addrs[16..]).unwrap()),
                        next_header: ip_proto::UDP,
                        hop_limit: tos,
                        traffic_class: tos,
                        flow_label: u32::from(id),
                        payload_len: n,
                    }
                    .emit(&mut b)
                    .unwrap();
                    b
                };
                buf.extend_from_slice(&payload);
                buf
            })
    }

    fn arb_outer() -> impl Strategy<Value = Outer> {
        prop_oneof![
            (
                any::<[u8; 4]>(),
                any::<[u8; 4]>(),
                any::<u8>(),
                any::<u16>()
            )
                .prop_map(|(s, d, ttl, ident)| Outer::V4(Ipv4Outer {
                    src: s.into(),
                    dst: d.into(),
                    ttl,
                    ident
                })),
            (
                any::<[u8; 16]>(),
                any::<[u8; 16]>(),
                any::<u8>(),
                0u32..1 << 20
            )
                .prop_map(|(s, d, hop_limit, flow_label)| Outer::V6(Ipv6Outer {
                    src: s.into(),
                    dst: d.into(),
                    hop_limit,
                    flow_label
                })),
        ]
    }

    /// The outer header built independently with etherparse.
    fn etherparse_outer(outer: &Outer, inner: &[u8]) -> Vec<u8> {
        let v4 = inner[0] >> 4 == 4;
        let proto = etherparse::IpNumber(if v4 { 4 } else { 41 });
        let (tos, df) = if v4 {
            (inner[1], inner[6] & 0x40 != 0)
        } else {
            ((u16::from_be_bytes([inner[0], inner[1]]) >> 4) as u8, true)
        };
        let len = inner.len() as u16;
        match outer {
            Outer::V4(o) => {
                let mut h =
                    etherparse::Ipv4Header::new(len, o.ttl, proto, o.src.octets(), o.dst.octets())
                        .unwrap();
                h.identification = o.ident;
                h.dont_fragment = df;
                h.dscp = etherparse::IpDscp::try_new(tos >> 2).unwrap();
                h.ecn = etherparse::IpEcn::try_new(tos & 3).unwrap();
                h.header_checksum = h.calc_header_checksum();
                h.to_bytes().to_vec()
            }
            Outer::V6(o) => etherparse::Ipv6Header {
                traffic_class: tos,
                flow_label: etherparse::Ipv6FlowLabel::try_new(o.flow_label).unwrap(),
                payload_length: len,
                next_header: proto,
                hop_limit: o.hop_limit,
                source: o.src.octets(),
                destination: o.dst.octets(),
            }
            .to_bytes()
            .to_vec(),
        }
    }

    proptest! {
        #[test]
        fn encap_decap_round_trip(inner in arb_inner(), outer in arb_outer(),
                                  extra in 0usize..20, pad in 0usize..8) {
            let overhead = match outer { Outer::V4(_) => 20, Outer::V6(_) => 40 };
            let off = overhead + extra;
            let mut buf = buffer(off, &inner, pad);
            let r = encapsulate(&mut buf, off, &outer).unwrap();
            prop_assert_eq!(r.clone(), extra..off + inner.len());
            prop_assert_eq!(&buf[r.start..off], &etherparse_outer(&outer, &inner)[..]);
            prop_assert_eq!(&buf[off..r.end], &inner[..]);
            let d = decapsulate(&buf[r.start..]).unwrap();
            prop_assert_eq!(d.inner, &inner[..]);
            prop_assert_eq!(d.inner_offset, overhead);
            prop_assert_eq!(d.inner_family, Family::of_packet(&inner).unwrap());
            // etherparse reads the same inner packet out of ours.
            let sliced = etherparse::SlicedPacket::from_ip(&buf[r]).unwrap();
            let ip = sliced.net.unwrap();
            let their_inner = match &ip {
                etherparse::NetSlice::Ipv4(s) => s.payload().payload,
                etherparse::NetSlice::Ipv6(s) => s.payload().payload,
                _ => unreachable!(),
            };
            prop_assert_eq!(their_inner, &inner[..]);
        }

        #[test]
        fn short_headroom_is_an_error(inner in arb_inner(), outer in arb_outer(), off in 0usize..40) {
            let overhead = match outer { Outer::V4(_) => 20, Outer::V6(_) => 40 };
            prop_assume!(off < overhead);
            let mut buf = buffer(off, &inner, 0);
            let before = buf.clone();
            prop_assert_eq!(encapsulate(&mut buf, off, &outer), Err(Error::BufferTooSmall));
            prop_assert_eq!(buf, before);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..120),
                                       off in 0usize..130, outer in arb_outer()) {
            let _ = decapsulate(&data[..]);
            let mut owned = data.clone();
            let _ = decapsulate(&mut owned[..]);
            let _ = encapsulate(&mut owned, off, &outer);
        }
    }
}
