//! Ethernet II frames (IEEE 802.3 with an EtherType) and MAC addresses.
//!
//! The view [`EthernetFrame`] is the pattern every format module follows:
//! [`EthernetFrame::parse`] casts the first 14 bytes to [`EthernetHeader`]
//! (failing with [`Error::Truncated`] on a short buffer) and keeps the rest as
//! the payload. After that no accessor can fail or panic. With `B = &mut [u8]`
//! the same view rewrites fields in place (DR mode rewrites only the MACs).
//!
//! The frame check sequence is not part of what rvs sees: packet I/O
//! backends strip it.

use core::fmt;

use zerocopy::network_endian::U16;
use zerocopy::{
    FromBytes, Immutable, IntoBytes, KnownLayout, Ref, SplitByteSlice, SplitByteSliceMut, Unaligned,
};

use crate::{Error, Result};

/// EtherType values rvs handles (IEEE registry).
pub mod ethertype {
    /// Internet Protocol version 4.
    pub const IPV4: u16 = 0x0800;
    /// Address Resolution Protocol.
    pub const ARP: u16 = 0x0806;
    /// IEEE 802.1Q VLAN tag (customer tag).
    pub const VLAN: u16 = 0x8100;
    /// IEEE 802.1ad service tag (outer tag of QinQ).
    pub const QINQ: u16 = 0x88a8;
    /// Pre-standard QinQ outer tag still seen on some switches.
    pub const QINQ_LEGACY: u16 = 0x9100;
    /// Internet Protocol version 6.
    pub const IPV6: u16 = 0x86dd;
}

/// A 48-bit IEEE 802 MAC address.
#[derive(
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    PartialOrd,
    Ord,
)]
#[repr(transparent)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// 00:00:00:00:00:00 (unknown target in an ARP request).
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// The six octets.
    pub const fn octets(self) -> [u8; 6] {
        self.0
    }

    /// True for the broadcast address.
    pub fn is_broadcast(self) -> bool {
        self == Self::BROADCAST
    }

    /// True for group addresses (I/G bit set), broadcast included.
    pub const fn is_multicast(self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// True for unicast addresses.
    pub const fn is_unicast(self) -> bool {
        !self.is_multicast()
    }

    /// The Ethernet multicast address an IPv6 multicast group maps to
    /// (RFC 2464 §7: 33:33 followed by the low 32 bits).
    pub const fn from_ipv6_multicast(group: core::net::Ipv6Addr) -> MacAddr {
        let o = group.octets();
        MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Error parsing a MAC address from text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseMacError;

impl fmt::Display for ParseMacError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("expected a MAC address as six hex octets separated by ':'")
    }
}

impl std::error::Error for ParseMacError {}

impl core::str::FromStr for MacAddr {
    type Err = ParseMacError;

    fn from_str(s: &str) -> core::result::Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for o in out.iter_mut() {
            let p = parts.next().ok_or(ParseMacError)?;
            if p.is_empty() || p.len() > 2 {
                return Err(ParseMacError);
            }
            *o = u8::from_str_radix(p, 16).map_err(|_| ParseMacError)?;
        }
        if parts.next().is_some() {
            return Err(ParseMacError);
        }
        Ok(MacAddr(out))
    }
}

/// The 14-byte Ethernet II header.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Debug, Clone, Copy)]
#[repr(C)]
pub struct EthernetHeader {
    /// Destination MAC.
    pub dst: MacAddr,
    /// Source MAC.
    pub src: MacAddr,
    /// EtherType of the payload (or of the first VLAN tag).
    pub ethertype: U16,
}

/// Length of the Ethernet II header.
pub const HEADER_LEN: usize = core::mem::size_of::<EthernetHeader>();

/// A view of an Ethernet II frame: header plus payload.
pub struct EthernetFrame<B> {
    header: Ref<B, EthernetHeader>,
    payload: B,
}

impl<B: SplitByteSlice> fmt::Debug for EthernetFrame<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EthernetFrame")
            .field("header", self.header())
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

impl<B: SplitByteSlice> EthernetFrame<B> {
    /// Checks that `bytes` holds at least a header and splits it.
    pub fn parse(bytes: B) -> Result<Self> {
        let (header, payload) = Ref::from_prefix(bytes).map_err(|_| Error::Truncated)?;
        Ok(EthernetFrame { header, payload })
    }

    /// The header.
    pub fn header(&self) -> &EthernetHeader {
        &self.header
    }

    /// Destination MAC.
    pub fn dst(&self) -> MacAddr {
        self.header.dst
    }

    /// Source MAC.
    pub fn src(&self) -> MacAddr {
        self.header.src
    }

    /// The EtherType field (may be a VLAN TPID: see [`crate::vlan`]).
    pub fn ethertype(&self) -> u16 {
        self.header.ethertype.get()
    }

    /// Everything after the 14-byte header.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Splits the view into its header and payload, e.g. to parse the payload
    /// mutably while keeping the header.
    pub fn into_parts(self) -> (Ref<B, EthernetHeader>, B) {
        (self.header, self.payload)
    }
}

impl<B: SplitByteSliceMut> EthernetFrame<B> {
    /// The header, writable.
    pub fn header_mut(&mut self) -> &mut EthernetHeader {
        &mut self.header
    }

    /// Sets the destination MAC.
    pub fn set_dst(&mut self, mac: MacAddr) {
        self.header.dst = mac;
    }

    /// Sets the source MAC.
    pub fn set_src(&mut self, mac: MacAddr) {
        self.header.src = mac;
    }

    /// Sets the EtherType.
    pub fn set_ethertype(&mut self, ethertype: u16) {
        self.header.ethertype.set(ethertype);
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.payload
    }
}

/// A parsed or to-be-built Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EthernetRepr {
    /// Source MAC.
    pub src: MacAddr,
    /// Destination MAC.
    pub dst: MacAddr,
    /// EtherType.
    pub ethertype: u16,
}

impl EthernetRepr {
    /// Reads the header of a parsed frame.
    pub fn parse<B: SplitByteSlice>(frame: &EthernetFrame<B>) -> Self {
        EthernetRepr {
            src: frame.src(),
            dst: frame.dst(),
            ethertype: frame.ethertype(),
        }
    }

    /// Bytes [`EthernetRepr::emit`] writes.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header at the start of `buf`; returns the bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let (hdr, _) = EthernetHeader::mut_from_prefix(buf).map_err(|_| Error::BufferTooSmall)?;
        hdr.dst = self.dst;
        hdr.src = self.src;
        hdr.ethertype.set(self.ethertype);
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The Ethernet header of an ARP request captured with `tcpdump -xx`:
    /// `ff:ff:ff:ff:ff:ff > 52:54:00:12:34:56, ethertype ARP (0x0806)` —
    /// tcpdump prints the source first: `52:54:00:12:34:56 > ff:ff:ff:ff:ff:ff`.
    const ARP_BCAST: [u8; 16] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x08, 0x06, 0x00,
        0x01,
    ];

    #[test]
    fn known_answer() {
        let f = EthernetFrame::parse(&ARP_BCAST[..]).unwrap();
        assert!(f.dst().is_broadcast());
        assert_eq!(f.src().to_string(), "52:54:00:12:34:56");
        assert_eq!(f.ethertype(), ethertype::ARP);
        assert_eq!(f.payload(), &[0x00, 0x01]);
    }

    #[test]
    fn every_truncation_is_an_error() {
        for n in 0..HEADER_LEN {
            assert_eq!(
                EthernetFrame::parse(&ARP_BCAST[..n]).unwrap_err(),
                Error::Truncated
            );
        }
        assert!(EthernetFrame::parse(&ARP_BCAST[..HEADER_LEN]).is_ok());
    }

    #[test]
    fn rewrite_in_place() {
        let mut buf = ARP_BCAST;
        let mut f = EthernetFrame::parse(&mut buf[..]).unwrap();
        f.set_dst(MacAddr([2, 0, 0, 0, 0, 1]));
        f.set_ethertype(ethertype::IPV4);
        assert_eq!(&buf[..6], &[2, 0, 0, 0, 0, 1]);
        assert_eq!(&buf[12..14], &[0x08, 0x00]);
    }

    #[test]
    fn mac_text() {
        let m: MacAddr = "02:00:0a:ff:00:01".parse().unwrap();
        assert_eq!(m.octets(), [2, 0, 0x0a, 0xff, 0, 1]);
        assert!("02:00:0a:ff:00".parse::<MacAddr>().is_err());
        assert!("02:00:0a:ff:00:01:02".parse::<MacAddr>().is_err());
        assert!("02:00:0a:ff:00:1g".parse::<MacAddr>().is_err());
        assert!(MacAddr::BROADCAST.is_multicast());
        assert!(m.is_unicast());
    }

    proptest! {
        #[test]
        fn round_trip(src in any::<[u8; 6]>(), dst in any::<[u8; 6]>(), et in any::<u16>(),
                      payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            let repr = EthernetRepr { src: MacAddr(src), dst: MacAddr(dst), ethertype: et };
            let mut buf = vec![0u8; HEADER_LEN + payload.len()];
            let n = repr.emit(&mut buf).unwrap();
            buf[n..].copy_from_slice(&payload);
            let f = EthernetFrame::parse(&buf[..]).unwrap();
            prop_assert_eq!(EthernetRepr::parse(&f), repr);
            prop_assert_eq!(f.payload(), &payload[..]);
            // Cross-check with an independent parser.
            let (eth, rest) = etherparse::Ethernet2Header::from_slice(&buf).unwrap();
            prop_assert_eq!(eth.source, src);
            prop_assert_eq!(eth.destination, dst);
            prop_assert_eq!(eth.ether_type.0, et);
            prop_assert_eq!(rest, &payload[..]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = EthernetFrame::parse(&data[..]);
        }

        #[test]
        fn emit_into_short_buffer_fails(n in 0usize..HEADER_LEN) {
            let mut buf = vec![0u8; n];
            let repr = EthernetRepr { src: MacAddr::ZERO, dst: MacAddr::BROADCAST, ethertype: 0x0800 };
            prop_assert_eq!(repr.emit(&mut buf), Err(Error::BufferTooSmall));
        }
    }
}
