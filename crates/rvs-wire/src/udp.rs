//! UDP datagrams (RFC 768): view, checksums, in-place rewrites, builder.
//!
//! # Length
//! [`UdpPacket::parse`] takes the IP payload and trusts the UDP length field
//! only after checking it: at least 8 (the header) and at most the buffer.
//! Bytes after `length` are padding (e.g. an IP layer that did not trim) and
//! are not part of the payload or the checksum. A datagram whose length
//! field exceeds the buffer is [`Error::BadLength`].
//!
//! # The zero checksum
//! Over IPv4 a checksum field of 0 means "no checksum" (RFC 768): it
//! verifies, and the in-place rewrites leave it 0 — updating it
//! incrementally would invent a checksum that does not match. A computed
//! checksum of 0 is sent as 0xFFFF (the other ones'-complement zero), and
//! so is an incremental update that lands on 0. Over IPv6 the checksum is
//! mandatory (RFC 8200 §8.1): a zero field fails
//! [`UdpPacket::verify_checksum_v6`]. The rewrites still leave a zero field
//! alone on IPv6; such a datagram is invalid whatever rvs does to it.

use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr};

use zerocopy::network_endian::U16;
use zerocopy::{
    FromBytes, Immutable, IntoBytes, KnownLayout, Ref, SplitByteSlice, SplitByteSliceMut, Unaligned,
};

use crate::checksum::{self, Checksum};
use crate::{Error, Result, ip_proto};

/// The 8-byte UDP header.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Debug, Clone, Copy)]
#[repr(C)]
pub struct UdpHeader {
    /// Source port (0 if unused).
    pub src_port: U16,
    /// Destination port.
    pub dst_port: U16,
    /// Header plus payload length.
    pub length: U16,
    /// Checksum (0 = none, IPv4 only).
    pub checksum: U16,
}

/// Length of the UDP header.
pub const HEADER_LEN: usize = core::mem::size_of::<UdpHeader>();

/// Maps a computed checksum of 0 to 0xFFFF, since 0 on the wire means "no
/// checksum" (RFC 768).
const fn wire_checksum(c: u16) -> u16 {
    if c == 0 { 0xffff } else { c }
}

fn pseudo_v4(src: Ipv4Addr, dst: Ipv4Addr, len: usize) -> Checksum {
    checksum::ipv4_pseudo_header_len(src, dst, ip_proto::UDP, len)
}

fn pseudo_v6(src: Ipv6Addr, dst: Ipv6Addr, len: usize) -> Checksum {
    checksum::ipv6_pseudo_header_len(src, dst, ip_proto::UDP, len)
}

/// A view of a UDP datagram: header and the payload the length field covers.
pub struct UdpPacket<B> {
    header: Ref<B, UdpHeader>,
    payload: B,
}

impl<B: SplitByteSlice> fmt::Debug for UdpPacket<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpPacket")
            .field("header", self.header())
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

impl<B: SplitByteSlice> UdpPacket<B> {
    /// Checks the header is present ([`Error::Truncated`]) and the length
    /// field is within `8..=bytes.len()` ([`Error::BadLength`]); splits off
    /// the payload and drops trailing padding.
    pub fn parse(bytes: B) -> Result<Self> {
        let (header, rest) =
            Ref::<B, UdpHeader>::from_prefix(bytes).map_err(|_| Error::Truncated)?;
        let payload_len = usize::from(header.length.get())
            .checked_sub(HEADER_LEN)
            .ok_or(Error::BadLength)?;
        let (payload, _padding) = rest.split_at(payload_len).map_err(|_| Error::BadLength)?;
        Ok(UdpPacket { header, payload })
    }

    /// Like [`UdpPacket::parse`] for the first fragment of a fragmented
    /// datagram: the length field covers the whole datagram, which runs past
    /// this fragment, so only `length ≥ 8` is checked and the payload is
    /// whatever this fragment holds (up to the length). The checksum field
    /// sits in this fragment, so incremental updates stay correct.
    pub fn parse_first_fragment(bytes: B) -> Result<Self> {
        let (header, rest) =
            Ref::<B, UdpHeader>::from_prefix(bytes).map_err(|_| Error::Truncated)?;
        let payload_len = usize::from(header.length.get())
            .checked_sub(HEADER_LEN)
            .ok_or(Error::BadLength)?;
        let keep = payload_len.min(rest.len());
        let (payload, _) = rest.split_at(keep).map_err(|_| Error::BadLength)?;
        Ok(UdpPacket { header, payload })
    }

    /// The header.
    pub fn header(&self) -> &UdpHeader {
        &self.header
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        self.header.src_port.get()
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        self.header.dst_port.get()
    }

    /// The length field (8..=buffer after `parse`).
    pub fn length(&self) -> u16 {
        self.header.length.get()
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        self.header.checksum.get()
    }

    /// The payload (`length - 8` bytes).
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    fn sum(&self, mut c: Checksum, with_field: bool) -> Checksum {
        let h = &self.header;
        c.add_u16(h.src_port.get())
            .add_u16(h.dst_port.get())
            .add_u16(h.length.get());
        if with_field {
            c.add_u16(h.checksum.get());
        }
        c.add_bytes(&self.payload);
        c
    }

    fn segment_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// The checksum to carry between IPv4 `src` and `dst` (never 0).
    pub fn compute_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> u16 {
        wire_checksum(
            self.sum(pseudo_v4(src, dst, self.segment_len()), false)
                .finish(),
        )
    }

    /// The checksum to carry between IPv6 `src` and `dst` (never 0).
    pub fn compute_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> u16 {
        wire_checksum(
            self.sum(pseudo_v6(src, dst, self.segment_len()), false)
                .finish(),
        )
    }

    /// Checks the checksum over IPv4; a zero field (no checksum) passes.
    pub fn verify_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> Result<()> {
        if self.checksum() == 0 {
            return Ok(());
        }
        match self
            .sum(pseudo_v4(src, dst, self.segment_len()), true)
            .fold()
        {
            0xffff => Ok(()),
            _ => Err(Error::BadChecksum),
        }
    }

    /// Checks the checksum over IPv6; a zero field is [`Error::BadChecksum`].
    pub fn verify_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> Result<()> {
        if self.checksum() == 0 {
            return Err(Error::BadChecksum);
        }
        match self
            .sum(pseudo_v6(src, dst, self.segment_len()), true)
            .fold()
        {
            0xffff => Ok(()),
            _ => Err(Error::BadChecksum),
        }
    }

    /// Splits the view into header and payload.
    pub fn into_parts(self) -> (Ref<B, UdpHeader>, B) {
        (self.header, self.payload)
    }
}

impl<B: SplitByteSliceMut> UdpPacket<B> {
    /// The header, writable (checksum not updated).
    pub fn header_mut(&mut self) -> &mut UdpHeader {
        &mut self.header
    }

    /// The payload, writable (checksum not updated).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.payload
    }

    /// Sets the checksum field as is.
    pub fn set_checksum(&mut self, csum: u16) {
        self.header.checksum.set(csum);
    }

    /// Applies an incremental update unless the datagram carries no
    /// checksum; a result of 0 is sent as 0xFFFF.
    fn update(&mut self, f: impl FnOnce(u16) -> u16) {
        let c = self.checksum();
        if c != 0 {
            self.header.checksum.set(wire_checksum(f(c)));
        }
    }

    /// Sets the source port, updating the checksum.
    pub fn set_src_port(&mut self, port: u16) {
        let old = self.src_port();
        self.header.src_port.set(port);
        self.update(|c| checksum::update_u16(c, old, port));
    }

    /// Sets the destination port, updating the checksum.
    pub fn set_dst_port(&mut self, port: u16) {
        let old = self.dst_port();
        self.header.dst_port.set(port);
        self.update(|c| checksum::update_u16(c, old, port));
    }

    /// Follows an IPv4 address rewrite into the checksum (pseudo-header).
    pub fn update_checksum_for_addr_change_v4(&mut self, old: Ipv4Addr, new: Ipv4Addr) {
        self.update(|c| checksum::update_ipv4_addr(c, old, new));
    }

    /// Follows an IPv6 address rewrite into the checksum (pseudo-header).
    pub fn update_checksum_for_addr_change_v6(&mut self, old: Ipv6Addr, new: Ipv6Addr) {
        self.update(|c| checksum::update_ipv6_addr(c, old, new));
    }

    /// Computes and stores the checksum for IPv4.
    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        let c = self.compute_checksum_v4(src, dst);
        self.header.checksum.set(c);
    }

    /// Computes and stores the checksum for IPv6.
    pub fn fill_checksum_v6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        let c = self.compute_checksum_v6(src, dst);
        self.header.checksum.set(c);
    }
}

/// A UDP header as values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload bytes after the header.
    pub payload_len: usize,
}

impl UdpRepr {
    /// Reads a parsed datagram.
    pub fn parse<B: SplitByteSlice>(packet: &UdpPacket<B>) -> Self {
        UdpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            payload_len: packet.payload().len(),
        }
    }

    /// Bytes [`UdpRepr::emit`] writes.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Header plus payload.
    pub fn datagram_len(&self) -> usize {
        HEADER_LEN.saturating_add(self.payload_len)
    }

    /// Writes the header (checksum 0) at the start of `buf`; returns 8.
    /// [`Error::BadLength`] if the datagram would exceed 65535 bytes.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let length = u16::try_from(self.datagram_len()).map_err(|_| Error::BadLength)?;
        let (hdr, _) = UdpHeader::mut_from_prefix(buf).map_err(|_| Error::BufferTooSmall)?;
        hdr.src_port.set(self.src_port);
        hdr.dst_port.set(self.dst_port);
        hdr.length.set(length);
        hdr.checksum.set(0);
        Ok(HEADER_LEN)
    }

    fn emit_with_payload<'b>(
        &self,
        buf: &'b mut [u8],
        payload: &[u8],
    ) -> Result<UdpPacket<&'b mut [u8]>> {
        if payload.len() != self.payload_len {
            return Err(Error::BadLength);
        }
        let out = buf
            .get_mut(..self.datagram_len())
            .ok_or(Error::BufferTooSmall)?;
        self.emit(out)?;
        out.get_mut(HEADER_LEN..)
            .ok_or(Error::BufferTooSmall)?
            .copy_from_slice(payload);
        UdpPacket::parse(out)
    }

    /// Writes header and `payload` (length must equal `payload_len`) and
    /// fills the IPv4 checksum; returns the datagram length.
    pub fn emit_v4(
        &self,
        buf: &mut [u8],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        payload: &[u8],
    ) -> Result<usize> {
        self.emit_with_payload(buf, payload)?
            .fill_checksum_v4(src, dst);
        Ok(self.datagram_len())
    }

    /// As [`UdpRepr::emit_v4`] for IPv6.
    pub fn emit_v6(
        &self,
        buf: &mut [u8],
        src: Ipv6Addr,
        dst: Ipv6Addr,
        payload: &[u8],
    ) -> Result<usize> {
        self.emit_with_payload(buf, payload)?
            .fill_checksum_v6(src, dst);
        Ok(self.datagram_len())
    }
}

#[cfg(test)]
mod tests {
    //! Known answers captured with `tcpdump -xx` on a veth pair between two
    //! network namespaces created for the purpose, TX checksum offload off
    //! (see `tcp/tests.rs`); tcpdump reported `[udp sum ok]`.
    use super::*;
    use proptest::prelude::*;

    const C4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
    const S4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);

    fn c6() -> Ipv6Addr {
        "fd00:99::1".parse().unwrap()
    }
    fn s6() -> Ipv6Addr {
        "fd00:99::2".parse().unwrap()
    }

    /// DNS query `A? example.com.` id 0x1a2b (29 bytes).
    const DNS: [u8; 29] = [
        0x1a, 0x2b, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x65, 0x78,
        0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00, 0x01, 0x00, 0x01,
    ];

    /// `10.99.0.1.40000 > 10.99.0.2.53: [udp sum ok] 6699+ A? example.com. (29)`
    /// header `9c40 0035 0025 64cd`.
    fn dns_v4() -> Vec<u8> {
        let mut v = vec![0x9c, 0x40, 0x00, 0x35, 0x00, 0x25, 0x64, 0xcd];
        v.extend_from_slice(&DNS);
        v
    }

    /// `fd00:99::1.40000 > fd00:99::2.53: [udp sum ok] 6699+ A? example.com. (29)`
    /// header `9c40 0035 0025 7e5f`.
    fn dns_v6() -> Vec<u8> {
        let mut v = vec![0x9c, 0x40, 0x00, 0x35, 0x00, 0x25, 0x7e, 0x5f];
        v.extend_from_slice(&DNS);
        v
    }

    #[test]
    fn kat_dns_v4() {
        let b = dns_v4();
        let p = UdpPacket::parse(&b[..]).unwrap();
        assert_eq!(p.src_port(), 40000);
        assert_eq!(p.dst_port(), 53);
        assert_eq!(p.length(), 37);
        assert_eq!(p.checksum(), 0x64cd);
        assert_eq!(p.payload(), &DNS);
        p.verify_checksum_v4(C4, S4).unwrap();
        assert_eq!(p.compute_checksum_v4(C4, S4), 0x64cd);
        assert_eq!(p.verify_checksum_v4(C4, C4), Err(Error::BadChecksum));
        let (h, payload) = etherparse::UdpHeader::from_slice(&b).unwrap();
        assert_eq!(
            (h.source_port, h.destination_port, h.length, h.checksum),
            (40000, 53, 37, 0x64cd)
        );
        assert_eq!(
            h.calc_checksum_ipv4_raw(C4.octets(), S4.octets(), payload)
                .unwrap(),
            0x64cd
        );
        assert_eq!(
            UdpRepr::parse(&p),
            UdpRepr {
                src_port: 40000,
                dst_port: 53,
                payload_len: 29
            }
        );
    }

    #[test]
    fn kat_dns_v6() {
        let b = dns_v6();
        let p = UdpPacket::parse(&b[..]).unwrap();
        p.verify_checksum_v6(c6(), s6()).unwrap();
        assert_eq!(p.compute_checksum_v6(c6(), s6()), 0x7e5f);
        let (h, payload) = etherparse::UdpHeader::from_slice(&b).unwrap();
        assert_eq!(
            h.calc_checksum_ipv6_raw(c6().octets(), s6().octets(), payload)
                .unwrap(),
            0x7e5f
        );
        // Same datagram, same rewrite: the answer goes back with ports swapped.
        let mut b = dns_v6();
        let mut p = UdpPacket::parse(&mut b[..]).unwrap();
        p.set_src_port(53);
        p.set_dst_port(40000);
        p.verify_checksum_v6(c6(), s6()).unwrap();
    }

    #[test]
    fn zero_checksum_rules() {
        let mut b = dns_v4();
        b[6] = 0;
        b[7] = 0;
        let mut p = UdpPacket::parse(&mut b[..]).unwrap();
        // IPv4: no checksum, accepted and kept through rewrites.
        p.verify_checksum_v4(C4, S4).unwrap();
        p.set_src_port(1);
        p.set_dst_port(2);
        p.update_checksum_for_addr_change_v4(C4, S4);
        p.update_checksum_for_addr_change_v6(c6(), s6());
        assert_eq!(p.checksum(), 0);
        // IPv6: mandatory.
        assert_eq!(p.verify_checksum_v6(c6(), s6()), Err(Error::BadChecksum));
    }

    /// A payload word chosen so the data sums to 0xffff: the checksum is
    /// then 0 and must be sent as 0xffff.
    #[test]
    fn computed_zero_is_sent_as_ffff() {
        let mut b = vec![0x12, 0x34, 0x00, 0x35, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00];
        let p = UdpPacket::parse(&b[..]).unwrap();
        let s = !p.compute_checksum_v4(C4, S4); // the folded sum
        let w = 0xffff - s;
        b[8..10].copy_from_slice(&w.to_be_bytes());
        let mut p = UdpPacket::parse(&mut b[..]).unwrap();
        assert_eq!(p.compute_checksum_v4(C4, S4), 0xffff);
        p.fill_checksum_v4(C4, S4);
        p.verify_checksum_v4(C4, S4).unwrap();
        let (h, payload) = etherparse::UdpHeader::from_slice(&b).unwrap();
        assert_eq!(
            h.calc_checksum_ipv4_raw(C4.octets(), S4.octets(), payload)
                .unwrap(),
            0xffff
        );
    }

    #[test]
    fn incremental_landing_on_zero_sends_ffff() {
        // Pick the new port n so that RFC 1624 gives 0:
        // ~(~c + ~o + n) = 0 when ~c + ~o + n = 0xffff (ones' complement).
        let mut b = dns_v4();
        let c = 0x64cd_u16;
        let o = 40000_u16;
        let mut acc = u32::from(!c) + u32::from(!o);
        acc = (acc & 0xffff) + (acc >> 16);
        let n = 0xffff - acc as u16;
        assert_eq!(checksum::update_u16(c, o, n), 0);
        let mut p = UdpPacket::parse(&mut b[..]).unwrap();
        p.set_src_port(n);
        assert_eq!(p.checksum(), 0xffff);
        p.verify_checksum_v4(C4, S4).unwrap();
    }

    #[test]
    fn first_fragment_may_end_before_the_length() {
        // Length 1008 claims 1000 payload bytes; this fragment carries 4.
        let b = [0x13, 0x88, 0x00, 0x35, 0x03, 0xf0, 0x12, 0x34, 1, 2, 3, 4];
        assert_eq!(UdpPacket::parse(&b[..]).unwrap_err(), Error::BadLength);
        let u = UdpPacket::parse_first_fragment(&b[..]).unwrap();
        assert_eq!(
            (u.src_port(), u.dst_port(), u.payload()),
            (5000, 53, &[1, 2, 3, 4][..])
        );
        let mut bad = b;
        bad[4] = 0;
        bad[5] = 7; // length 7 < 8
        assert_eq!(
            UdpPacket::parse_first_fragment(&bad[..]).unwrap_err(),
            Error::BadLength
        );
        assert!(UdpPacket::parse_first_fragment(&b[..7]).is_err());
    }

    #[test]
    fn length_validation() {
        let mut b = dns_v4();
        for n in 0..HEADER_LEN {
            assert_eq!(UdpPacket::parse(&b[..n]).unwrap_err(), Error::Truncated);
        }
        for n in HEADER_LEN..b.len() {
            assert_eq!(UdpPacket::parse(&b[..n]).unwrap_err(), Error::BadLength);
        }
        for len in 0..8u16 {
            b[4..6].copy_from_slice(&len.to_be_bytes());
            assert_eq!(UdpPacket::parse(&b[..]).unwrap_err(), Error::BadLength);
        }
        // Trailing bytes are padding, outside payload and checksum.
        let mut b = dns_v4();
        b.extend_from_slice(&[0xde, 0xad, 0xbe]);
        let p = UdpPacket::parse(&b[..]).unwrap();
        assert_eq!(p.payload(), &DNS);
        p.verify_checksum_v4(C4, S4).unwrap();
        // Length 8: empty payload.
        let p = UdpPacket::parse(&[0, 1, 0, 2, 0, 8, 0, 0, 9][..]).unwrap();
        assert!(p.payload().is_empty());
    }

    #[test]
    fn emit_errors() {
        let r = UdpRepr {
            src_port: 1,
            dst_port: 2,
            payload_len: 65528,
        };
        assert_eq!(r.emit(&mut [0u8; 8]), Err(Error::BadLength));
        let r = UdpRepr {
            payload_len: 3,
            ..r
        };
        assert_eq!(r.emit(&mut [0u8; 7]), Err(Error::BufferTooSmall));
        assert_eq!(
            r.emit_v4(&mut [0u8; 10], C4, S4, b"abc"),
            Err(Error::BufferTooSmall)
        );
        assert_eq!(
            r.emit_v4(&mut [0u8; 64], C4, S4, b"ab"),
            Err(Error::BadLength)
        );
    }

    /// Same ones'-complement number.
    fn same_sum(a: u16, b: u16) -> bool {
        a == b || (a == 0 && b == 0xffff) || (a == 0xffff && b == 0)
    }

    proptest! {
        #[test]
        fn round_trip_and_etherparse(
            sp in any::<u16>(), dp in any::<u16>(),
            payload in proptest::collection::vec(any::<u8>(), 0..128),
            padding in proptest::collection::vec(any::<u8>(), 0..8),
            src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(),
            src6 in any::<[u8; 16]>(), dst6 in any::<[u8; 16]>(),
        ) {
            let r = UdpRepr { src_port: sp, dst_port: dp, payload_len: payload.len() };
            let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
            let mut buf = vec![0u8; HEADER_LEN + payload.len() + padding.len()];
            let n = r.emit_v4(&mut buf, src, dst, &payload).unwrap();
            prop_assert_eq!(n, r.datagram_len());
            buf[n..].copy_from_slice(&padding);
            let p = UdpPacket::parse(&buf[..]).unwrap();
            prop_assert_eq!(UdpRepr::parse(&p), r);
            prop_assert_eq!(p.payload(), &payload[..]);
            prop_assert_ne!(p.checksum(), 0);
            p.verify_checksum_v4(src, dst).unwrap();
            let (h, pl) = etherparse::UdpHeader::from_slice(&buf[..n]).unwrap();
            prop_assert_eq!((h.source_port, h.destination_port, usize::from(h.length)), (sp, dp, n));
            prop_assert_eq!(h.calc_checksum_ipv4_raw(src.octets(), dst.octets(), pl).unwrap(), p.checksum());

            let (s6, d6) = (Ipv6Addr::from(src6), Ipv6Addr::from(dst6));
            let n = r.emit_v6(&mut buf, s6, d6, &payload).unwrap();
            let p = UdpPacket::parse(&buf[..n]).unwrap();
            p.verify_checksum_v6(s6, d6).unwrap();
            let (h, pl) = etherparse::UdpHeader::from_slice(&buf[..n]).unwrap();
            prop_assert_eq!(h.calc_checksum_ipv6_raw(s6.octets(), d6.octets(), pl).unwrap(), p.checksum());
        }

        /// NAT on UDP: ports and addresses rewritten with incremental
        /// updates only; the result verifies, matches a full computation and
        /// is never the "no checksum" value.
        #[test]
        fn incremental_rewrites_match_full(
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            a in any::<([u8; 16], [u8; 16], [u8; 16], [u8; 16])>(),
            ports in any::<(u16, u16, u16, u16)>(),
            v6 in any::<bool>(),
        ) {
            let r = UdpRepr { src_port: ports.0, dst_port: ports.1, payload_len: payload.len() };
            let mut buf = vec![0u8; HEADER_LEN + payload.len()];
            if v6 {
                let (s, d, ns, nd) = (Ipv6Addr::from(a.0), Ipv6Addr::from(a.1), Ipv6Addr::from(a.2), Ipv6Addr::from(a.3));
                r.emit_v6(&mut buf, s, d, &payload).unwrap();
                let mut p = UdpPacket::parse(&mut buf[..]).unwrap();
                p.update_checksum_for_addr_change_v6(s, ns);
                p.set_src_port(ports.2);
                p.update_checksum_for_addr_change_v6(d, nd);
                p.set_dst_port(ports.3);
                p.verify_checksum_v6(ns, nd).unwrap();
                prop_assert!(same_sum(p.checksum(), p.compute_checksum_v6(ns, nd)));
                prop_assert_ne!(p.checksum(), 0);
            } else {
                let v4 = |x: [u8; 16]| Ipv4Addr::new(x[0], x[1], x[2], x[3]);
                let (s, d, ns, nd) = (v4(a.0), v4(a.1), v4(a.2), v4(a.3));
                r.emit_v4(&mut buf, s, d, &payload).unwrap();
                let mut p = UdpPacket::parse(&mut buf[..]).unwrap();
                p.update_checksum_for_addr_change_v4(s, ns);
                p.set_src_port(ports.2);
                p.update_checksum_for_addr_change_v4(d, nd);
                p.set_dst_port(ports.3);
                p.verify_checksum_v4(ns, nd).unwrap();
                prop_assert!(same_sum(p.checksum(), p.compute_checksum_v4(ns, nd)));
                prop_assert_ne!(p.checksum(), 0);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(mut data in proptest::collection::vec(any::<u8>(), 0..64), port in any::<u16>()) {
            if let Ok(p) = UdpPacket::parse(&data[..]) {
                prop_assert!(usize::from(p.length()) <= data.len());
                let _ = p.verify_checksum_v4(C4, S4);
                let _ = p.verify_checksum_v6(c6(), s6());
                let _ = format!("{p:?}");
            }
            if let Ok(mut p) = UdpPacket::parse(&mut data[..]) {
                p.set_src_port(port);
                p.update_checksum_for_addr_change_v6(c6(), s6());
            }
        }
    }
}
