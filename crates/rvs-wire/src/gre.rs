//! GRE (RFC 2784) with the key and sequence number extensions (RFC 2890):
//! the encapsulation TUN mode can use instead of IPIP, and what a GRE
//! tunnel to or from the balancer carries.
//!
//! # Layout
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! |C|R|K|S|s|Recur|  Flags  | Ver |         Protocol Type         |
//! |      Checksum (if C)          |       Reserved1 (if C)        |
//! |                         Key (if K)                            |
//! |                 Sequence Number (if S)                        |
//! ```
//! The optional words appear in that order, so the header is 4 to 16 bytes
//! and every optional field sits at an offset fixed by the flags. After
//! [`GrePacket::parse`] has checked that they are all there, the accessors
//! read them without failing.
//!
//! # What is accepted
//! Version 0 only: version 1 is PPTP's enhanced GRE (RFC 2637), which rvs
//! does not speak, so any other version is [`Error::Unsupported`]. RFC 2784
//! §2.3 says a receiver must discard a packet with any of bits 1–5 set
//! unless it implements RFC 1701; bits 2 and 3 are now K and S (RFC 2890),
//! so the routing bit R, the strict-source-route bit s and the top recursion
//! bit make a packet [`Error::Unsupported`] too. Bits 6–12 are ignored on
//! receipt and written as zero. The protocol type is not restricted: it is
//! an EtherType (IPv4, IPv6, or `0x6558` for bridged Ethernet) and the caller
//! dispatches on it.
//!
//! # Checksum
//! When C is set, the checksum is the Internet checksum of the GRE header and
//! payload (checksum field zero while computing). As everywhere in this
//! crate, `parse` does not verify it: [`GrePacket::verify_checksum`] does.
//! [`GreRepr::emit`] writes only the header; use
//! [`GreRepr::emit_with_payload`], or [`GrePacket::fill_checksum`] once the
//! payload is in place, to get the checksum filled in.

use core::fmt;

use zerocopy::network_endian::U16;
use zerocopy::{
    FromBytes, Immutable, IntoBytes, KnownLayout, Ref, SplitByteSlice, SplitByteSliceMut, Unaligned,
};

use crate::checksum::Checksum;
use crate::{Error, Result};

/// Protocol types GRE carries in rvs (EtherType values).
pub mod proto {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// Transparent Ethernet Bridging: the payload is an Ethernet frame.
    pub const TRANSPARENT_ETHERNET_BRIDGING: u16 = 0x6558;
}

/// Checksum present.
pub const FLAG_CHECKSUM: u16 = 0x8000;
/// Routing present (RFC 1701; rejected).
pub const FLAG_ROUTING: u16 = 0x4000;
/// Key present (RFC 2890).
pub const FLAG_KEY: u16 = 0x2000;
/// Sequence number present (RFC 2890).
pub const FLAG_SEQ: u16 = 0x1000;
/// Strict source route (RFC 1701; rejected).
pub const FLAG_STRICT_ROUTE: u16 = 0x0800;
/// The version field.
pub const VERSION_MASK: u16 = 0x0007;
/// Bits 1–5 that are neither K nor S: a receiver must discard packets with
/// any of them set (RFC 2784 §2.3).
const MUST_BE_ZERO: u16 = FLAG_ROUTING | FLAG_STRICT_ROUTE | 0x0400;

/// Length of the fixed part of the header.
pub const BASE_LEN: usize = core::mem::size_of::<GreHeader>();
/// Length of the header with checksum, key and sequence number.
pub const MAX_HEADER_LEN: usize = BASE_LEN + 12;

/// The fixed first four bytes of a GRE header.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Debug, Clone, Copy)]
#[repr(C)]
pub struct GreHeader {
    /// Flags (C, R, K, S, s, recursion, reserved) and version.
    pub flags_version: U16,
    /// EtherType of the payload.
    pub protocol: U16,
}

/// Bytes of optional fields the flags announce.
const fn options_len(flags: u16) -> usize {
    let mut n = 0;
    if flags & FLAG_CHECKSUM != 0 {
        n += 4;
    }
    if flags & FLAG_KEY != 0 {
        n += 4;
    }
    if flags & FLAG_SEQ != 0 {
        n += 4;
    }
    n
}

/// A view of a GRE packet: header, optional fields and payload.
pub struct GrePacket<B> {
    header: Ref<B, GreHeader>,
    options: B,
    payload: B,
}

impl<B: SplitByteSlice> fmt::Debug for GrePacket<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrePacket")
            .field(
                "flags_version",
                &format_args!("{:#06x}", self.flags_version()),
            )
            .field("protocol", &format_args!("{:#06x}", self.protocol()))
            .field("checksum", &self.checksum())
            .field("key", &self.key())
            .field("seq", &self.seq())
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

impl<B: SplitByteSlice> GrePacket<B> {
    /// Checks version and flags (see the module docs) and that every
    /// optional field the flags announce is present; splits off the payload.
    pub fn parse(bytes: B) -> Result<Self> {
        let (header, rest) =
            Ref::<B, GreHeader>::from_prefix(bytes).map_err(|_| Error::Truncated)?;
        let flags = header.flags_version.get();
        if flags & VERSION_MASK != 0 || flags & MUST_BE_ZERO != 0 {
            return Err(Error::Unsupported);
        }
        let (options, payload) = rest
            .split_at(options_len(flags))
            .map_err(|_| Error::Truncated)?;
        Ok(GrePacket {
            header,
            options,
            payload,
        })
    }

    /// The fixed header.
    pub fn header(&self) -> &GreHeader {
        &self.header
    }

    /// The raw first 16 bits (flags and version).
    pub fn flags_version(&self) -> u16 {
        self.header.flags_version.get()
    }

    /// The version (always 0 after `parse`).
    pub fn version(&self) -> u8 {
        (self.flags_version() & VERSION_MASK) as u8
    }

    /// C: a checksum is present.
    pub fn checksum_present(&self) -> bool {
        self.flags_version() & FLAG_CHECKSUM != 0
    }

    /// K: a key is present.
    pub fn key_present(&self) -> bool {
        self.flags_version() & FLAG_KEY != 0
    }

    /// S: a sequence number is present.
    pub fn seq_present(&self) -> bool {
        self.flags_version() & FLAG_SEQ != 0
    }

    /// EtherType of the payload.
    pub fn protocol(&self) -> u16 {
        self.header.protocol.get()
    }

    /// Header length including optional fields (4 to 16).
    pub fn header_len(&self) -> usize {
        BASE_LEN + self.options.len()
    }

    fn key_offset(&self) -> usize {
        if self.checksum_present() { 4 } else { 0 }
    }

    fn seq_offset(&self) -> usize {
        self.key_offset() + if self.key_present() { 4 } else { 0 }
    }

    fn opt_u16(&self, off: usize) -> Option<u16> {
        let b: &[u8; 2] = self.options.get(off..)?.first_chunk()?;
        Some(u16::from_be_bytes(*b))
    }

    fn opt_u32(&self, off: usize) -> Option<u32> {
        let b: &[u8; 4] = self.options.get(off..)?.first_chunk()?;
        Some(u32::from_be_bytes(*b))
    }

    /// The checksum field, if C is set.
    pub fn checksum(&self) -> Option<u16> {
        if self.checksum_present() {
            self.opt_u16(0)
        } else {
            None
        }
    }

    /// The key, if K is set.
    pub fn key(&self) -> Option<u32> {
        if self.key_present() {
            self.opt_u32(self.key_offset())
        } else {
            None
        }
    }

    /// The sequence number, if S is set.
    pub fn seq(&self) -> Option<u32> {
        if self.seq_present() {
            self.opt_u32(self.seq_offset())
        } else {
            None
        }
    }

    /// The encapsulated packet.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The encapsulated packet, by value (e.g. `&mut [u8]` to rewrite it).
    pub fn into_payload(self) -> B {
        self.payload
    }

    /// The ones'-complement sum of header and payload as they are.
    fn sum(&self) -> Checksum {
        let mut c = Checksum::new();
        // Header and options are whole 32-bit words, so only the payload
        // (the last call) can be odd, as `add_bytes` requires.
        c.add_bytes(self.header.as_bytes())
            .add_bytes(&self.options)
            .add_bytes(&self.payload);
        c
    }

    /// Ok if C is clear or the checksum verifies; [`Error::BadChecksum`]
    /// otherwise.
    pub fn verify_checksum(&self) -> Result<()> {
        if !self.checksum_present() || self.sum().fold() == 0xffff {
            Ok(())
        } else {
            Err(Error::BadChecksum)
        }
    }
}

impl<B: SplitByteSliceMut> GrePacket<B> {
    /// Sets the protocol type.
    pub fn set_protocol(&mut self, protocol: u16) {
        self.header.protocol.set(protocol);
    }

    fn set_opt(&mut self, off: usize, value: &[u8]) -> Result<()> {
        self.options
            .get_mut(off..)
            .and_then(|s| s.get_mut(..value.len()))
            .ok_or(Error::Unsupported)?
            .copy_from_slice(value);
        Ok(())
    }

    /// Sets the key; [`Error::Unsupported`] if the header has no key field
    /// (adding one would move the payload). Does not update the checksum.
    pub fn set_key(&mut self, key: u32) -> Result<()> {
        if !self.key_present() {
            return Err(Error::Unsupported);
        }
        let off = self.key_offset();
        self.set_opt(off, &key.to_be_bytes())
    }

    /// Sets the sequence number; [`Error::Unsupported`] if the header has no
    /// sequence number field. Does not update the checksum.
    pub fn set_seq(&mut self, seq: u32) -> Result<()> {
        if !self.seq_present() {
            return Err(Error::Unsupported);
        }
        let off = self.seq_offset();
        self.set_opt(off, &seq.to_be_bytes())
    }

    /// Computes and writes the checksum over header and payload (does
    /// nothing when C is clear). Call it last, once the payload is final.
    pub fn fill_checksum(&mut self) {
        if !self.checksum_present() {
            return;
        }
        if let Some(field) = self.options.first_chunk_mut::<2>() {
            *field = [0, 0];
        }
        let csum = self.sum().finish();
        if let Some(field) = self.options.first_chunk_mut::<2>() {
            *field = csum.to_be_bytes();
        }
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.payload
    }
}

/// A parsed or to-be-built GRE header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GreRepr {
    /// EtherType of the payload ([`proto`]).
    pub protocol: u16,
    /// Whether the header carries a checksum (C).
    pub checksum: bool,
    /// The key (K), if any.
    pub key: Option<u32>,
    /// The sequence number (S), if any.
    pub seq: Option<u32>,
}

impl GreRepr {
    /// Reads a parsed packet's header (the checksum value itself is not
    /// kept: it is recomputed on emit).
    pub fn parse<B: SplitByteSlice>(packet: &GrePacket<B>) -> Self {
        GreRepr {
            protocol: packet.protocol(),
            checksum: packet.checksum_present(),
            key: packet.key(),
            seq: packet.seq(),
        }
    }

    /// The flags-and-version word this header has.
    pub const fn flags_version(&self) -> u16 {
        let mut f = 0;
        if self.checksum {
            f |= FLAG_CHECKSUM;
        }
        if self.key.is_some() {
            f |= FLAG_KEY;
        }
        if self.seq.is_some() {
            f |= FLAG_SEQ;
        }
        f
    }

    /// Bytes [`GreRepr::emit`] writes (4 to 16).
    pub const fn header_len(&self) -> usize {
        BASE_LEN + options_len(self.flags_version())
    }

    /// Writes the header at the start of `buf` with a zero checksum field
    /// (see [`GreRepr::emit_with_payload`]); returns the header length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.header_len();
        let out = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        let (hdr, mut rest) = GreHeader::mut_from_prefix(out).map_err(|_| Error::BufferTooSmall)?;
        hdr.flags_version.set(self.flags_version());
        hdr.protocol.set(self.protocol);
        let words = [self.checksum.then_some(0u32), self.key, self.seq];
        for w in words.into_iter().flatten() {
            let (field, next) = rest
                .split_first_chunk_mut::<4>()
                .ok_or(Error::BufferTooSmall)?;
            *field = w.to_be_bytes();
            rest = next;
        }
        Ok(len)
    }

    /// Writes the header, lets `emit_payload` write the `payload_len` bytes
    /// after it, then fills in the checksum if [`GreRepr::checksum`] is set;
    /// returns the total length. Errors from `emit_payload` are passed on.
    pub fn emit_with_payload<F>(
        &self,
        buf: &mut [u8],
        payload_len: usize,
        emit_payload: F,
    ) -> Result<usize>
    where
        F: FnOnce(&mut [u8]) -> Result<()>,
    {
        let hl = self.header_len();
        let total = hl.checked_add(payload_len).ok_or(Error::BufferTooSmall)?;
        let out = buf.get_mut(..total).ok_or(Error::BufferTooSmall)?;
        self.emit(out)?;
        let payload = out.get_mut(hl..).ok_or(Error::BufferTooSmall)?;
        emit_payload(payload)?;
        let mut packet = GrePacket::parse(out)?;
        packet.fill_checksum();
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Two GRE-in-IPv4 packets crafted with scapy 2.5 and sent over a veth
    // pair between two network namespaces made for the purpose (the kernel
    // here has no GRE module); the bytes are what `tcpdump -xx -vv` captured
    // at the receiver, from the outer IPv4 header on (Ethernet header cut).
    // Both carry the same inner ICMP echo request 192.0.2.1 > 198.51.100.10.

    /// tcpdump: `10.99.0.1 > 10.99.0.2: GREv0, Flags [key present],
    /// key=0x12345, proto IPv4 (0x0800), length 44`. Wireshark 4.0: "Flags and
    /// Version: 0x2000 ... Key Bit: Yes ... Version: GRE (0), Protocol Type: IP
    /// (0x0800), Key: 0x00012345".
    const GRE_KEY: [u8; 64] = [
        0x45, 0x00, 0x00, 0x40, 0x42, 0x42, 0x40, 0x00, 0x40, 0x2f, 0xe3, 0x84, 0x0a, 0x63, 0x00,
        0x01, 0x0a, 0x63, 0x00, 0x02, // outer IPv4, proto 47
        0x20, 0x00, 0x08, 0x00, 0x00, 0x01, 0x23, 0x45, // GRE
        0x45, 0x00, 0x00, 0x24, 0x12, 0x34, 0x00, 0x00, 0x3f, 0x01, 0x7d, 0x66, 0xc0, 0x00, 0x02,
        0x01, 0xc6, 0x33, 0x64, 0x0a, 0x08, 0x00, 0x45, 0x50, 0x00, 0x77, 0x00, 0x01, 0x72, 0x76,
        0x73, 0x2d, 0x67, 0x72, 0x65, 0x21,
    ];

    /// tcpdump: `GREv0, Flags [checksum present, key present, sequence#
    /// present], sum 0xaa5a, off 0x0, key=0xdeadbeef, seq 7, proto IPv4
    /// (0x0800), length 52`. Wireshark 4.0: "Flags and Version: 0xb000,
    /// Checksum: 0xaa5a [correct], Key: 0xdeadbeef, Sequence Number: 7".
    const GRE_CKS: [u8; 72] = [
        0x45, 0x00, 0x00, 0x48, 0x42, 0x43, 0x40, 0x00, 0x40, 0x2f, 0xe3, 0x7b, 0x0a, 0x63, 0x00,
        0x01, 0x0a, 0x63, 0x00, 0x02, // outer IPv4, proto 47
        0xb0, 0x00, 0x08, 0x00, 0xaa, 0x5a, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x00, 0x00,
        0x07, // GRE
        0x45, 0x00, 0x00, 0x24, 0x12, 0x34, 0x00, 0x00, 0x3f, 0x01, 0x7d, 0x66, 0xc0, 0x00, 0x02,
        0x01, 0xc6, 0x33, 0x64, 0x0a, 0x08, 0x00, 0x45, 0x50, 0x00, 0x77, 0x00, 0x01, 0x72, 0x76,
        0x73, 0x2d, 0x67, 0x72, 0x65, 0x21,
    ];

    /// The outer IPv4 payload, checked by an independent parser.
    fn outer_payload(packet: &[u8]) -> &[u8] {
        let ip = etherparse::Ipv4Slice::from_slice(packet).unwrap();
        assert_eq!(ip.header().protocol(), etherparse::IpNumber::GRE);
        ip.payload().payload
    }

    fn assert_inner_is_the_echo(inner: &[u8]) {
        let (ip, _) = etherparse::Ipv4Header::from_slice(inner).unwrap();
        assert_eq!(ip.source, [192, 0, 2, 1]);
        assert_eq!(ip.destination, [198, 51, 100, 10]);
        assert_eq!(ip.header_checksum, ip.calc_header_checksum());
    }

    #[test]
    fn key_known_answer() {
        let gre = outer_payload(&GRE_KEY);
        let p = GrePacket::parse(gre).unwrap();
        assert_eq!(p.flags_version(), 0x2000);
        assert_eq!(p.version(), 0);
        assert!(!p.checksum_present() && p.key_present() && !p.seq_present());
        assert_eq!(p.protocol(), proto::IPV4);
        assert_eq!(p.key(), Some(0x0001_2345));
        assert_eq!((p.checksum(), p.seq()), (None, None));
        assert_eq!(p.header_len(), 8);
        assert_eq!(p.payload().len(), 36);
        assert_eq!(p.verify_checksum(), Ok(()));
        assert_inner_is_the_echo(p.payload());

        let repr = GreRepr::parse(&p);
        assert_eq!(
            repr,
            GreRepr {
                protocol: proto::IPV4,
                checksum: false,
                key: Some(0x12345),
                seq: None
            }
        );
        let mut out = [0u8; 44];
        let n = repr
            .emit_with_payload(&mut out, 36, |b| {
                b.copy_from_slice(p.payload());
                Ok(())
            })
            .unwrap();
        assert_eq!(n, 44);
        assert_eq!(&out[..], gre);
    }

    #[test]
    fn checksum_key_seq_known_answer() {
        let gre = outer_payload(&GRE_CKS);
        let p = GrePacket::parse(gre).unwrap();
        assert_eq!(p.flags_version(), 0xb000);
        assert!(p.checksum_present() && p.key_present() && p.seq_present());
        assert_eq!(p.checksum(), Some(0xaa5a));
        assert_eq!(p.key(), Some(0xdead_beef));
        assert_eq!(p.seq(), Some(7));
        assert_eq!(p.header_len(), 16);
        assert_eq!(p.verify_checksum(), Ok(()));
        assert_inner_is_the_echo(p.payload());

        // Re-emitting computes the same checksum scapy did.
        let repr = GreRepr::parse(&p);
        let mut out = [0u8; 52];
        let n = repr
            .emit_with_payload(&mut out, 36, |b| {
                b.copy_from_slice(p.payload());
                Ok(())
            })
            .unwrap();
        assert_eq!(&out[..n], gre);

        // Any flipped bit in header or payload breaks it.
        for byte in 0..gre.len() {
            let mut bad = [0u8; 52];
            bad.copy_from_slice(gre);
            bad[byte] ^= 0x01;
            if let Ok(p) = GrePacket::parse(&bad[..]) {
                assert_eq!(p.verify_checksum(), Err(Error::BadChecksum), "byte {byte}");
            }
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        for (gre, hl) in [(outer_payload(&GRE_KEY), 8), (outer_payload(&GRE_CKS), 16)] {
            for n in 0..hl {
                assert_eq!(
                    GrePacket::parse(&gre[..n]).unwrap_err(),
                    Error::Truncated,
                    "{n}"
                );
            }
            let p = GrePacket::parse(&gre[..hl]).unwrap();
            assert!(p.payload().is_empty());
        }
    }

    #[test]
    fn unsupported_versions_and_flags() {
        let gre = outer_payload(&GRE_KEY);
        for (word, why) in [
            (0x2001u16, "version 1 (PPTP)"),
            (0x2007, "version 7"),
            (0x6000, "routing present"),
            (0x2800, "strict source route"),
            (0x2400, "recursion bit 5"),
        ] {
            let mut bad = [0u8; 44];
            bad.copy_from_slice(gre);
            bad[..2].copy_from_slice(&word.to_be_bytes());
            assert_eq!(
                GrePacket::parse(&bad[..]).unwrap_err(),
                Error::Unsupported,
                "{why}"
            );
            // Judged on the first 4 bytes, before the options' length.
            assert_eq!(
                GrePacket::parse(&bad[..4]).unwrap_err(),
                Error::Unsupported,
                "{why}"
            );
        }
        // Bits 6..12 are ignored on receipt.
        let mut ok = [0u8; 44];
        ok.copy_from_slice(gre);
        ok[..2].copy_from_slice(&(0x2000u16 | 0x03f8).to_be_bytes());
        let p = GrePacket::parse(&ok[..]).unwrap();
        assert_eq!(p.key(), Some(0x12345));
        // ... and written as zero.
        let mut out = [0u8; 8];
        GreRepr::parse(&p).emit(&mut out).unwrap();
        assert_eq!(out, gre[..8]);
    }

    #[test]
    fn every_flag_combination() {
        let payload = [0x45u8, 0, 0, 20, 1, 2, 3];
        for bits in 0..8u8 {
            let repr = GreRepr {
                protocol: proto::TRANSPARENT_ETHERNET_BRIDGING,
                checksum: bits & 1 != 0,
                key: (bits & 2 != 0).then_some(0x0a0b_0c0d),
                seq: (bits & 4 != 0).then_some(0xfffe_fffd),
            };
            let hl = 4 + 4 * bits.count_ones() as usize;
            assert_eq!(repr.header_len(), hl);
            let mut buf = vec![0u8; hl + payload.len()];
            let n = repr
                .emit_with_payload(&mut buf, payload.len(), |b| {
                    b.copy_from_slice(&payload);
                    Ok(())
                })
                .unwrap();
            assert_eq!(n, buf.len());
            // Optional words in RFC order: checksum, key, sequence number.
            let mut off = 4;
            if repr.checksum {
                assert_eq!(&buf[off + 2..off + 4], &[0, 0], "reserved1");
                off += 4;
            }
            if repr.key.is_some() {
                assert_eq!(&buf[off..off + 4], &[0x0a, 0x0b, 0x0c, 0x0d]);
                off += 4;
            }
            if repr.seq.is_some() {
                assert_eq!(&buf[off..off + 4], &[0xff, 0xfe, 0xff, 0xfd]);
                off += 4;
            }
            assert_eq!(off, hl);
            let p = GrePacket::parse(&buf[..]).unwrap();
            assert_eq!(GreRepr::parse(&p), repr);
            assert_eq!(p.payload(), &payload);
            assert_eq!(p.verify_checksum(), Ok(()));
            if repr.checksum {
                // Odd payload: the checksum pads with a zero byte that is
                // not part of the packet; the plain reference agrees.
                assert_eq!(crate::checksum::checksum(&buf), 0);
            }
        }
    }

    #[test]
    fn rewrite_in_place() {
        let mut gre = [0u8; 52];
        gre.copy_from_slice(outer_payload(&GRE_CKS));
        let mut p = GrePacket::parse(&mut gre[..]).unwrap();
        p.set_key(0x0102_0304).unwrap();
        p.set_seq(8).unwrap();
        p.set_protocol(proto::IPV6);
        assert_eq!(p.verify_checksum(), Err(Error::BadChecksum));
        p.fill_checksum();
        assert_eq!(p.verify_checksum(), Ok(()));
        assert_eq!(
            (p.key(), p.seq(), p.protocol()),
            (Some(0x0102_0304), Some(8), 0x86dd)
        );

        let mut gre = [0u8; 44];
        gre.copy_from_slice(outer_payload(&GRE_KEY));
        let mut p = GrePacket::parse(&mut gre[..]).unwrap();
        assert_eq!(p.set_seq(1), Err(Error::Unsupported));
        p.fill_checksum(); // no checksum field: nothing to do
        p.set_key(7).unwrap();
        assert_eq!(&gre[4..8], &[0, 0, 0, 7]);
        assert_eq!(&gre[8..], &GRE_KEY[28..]);
        let mut p = GrePacket::parse(&mut gre[..]).unwrap();
        p.payload_mut()[0] = 0x60;
        assert_eq!(gre[8], 0x60);
    }

    #[test]
    fn short_buffers_and_payload_errors() {
        let repr = GreRepr {
            protocol: proto::IPV4,
            checksum: true,
            key: Some(1),
            seq: Some(2),
        };
        for n in 0..16 {
            assert_eq!(repr.emit(&mut vec![0u8; n]), Err(Error::BufferTooSmall));
        }
        let mut buf = [0u8; 20];
        assert_eq!(
            repr.emit_with_payload(&mut buf, 5, |_| Ok(())),
            Err(Error::BufferTooSmall)
        );
        assert_eq!(
            repr.emit_with_payload(&mut buf, usize::MAX, |_| Ok(())),
            Err(Error::BufferTooSmall)
        );
        assert_eq!(
            repr.emit_with_payload(&mut buf, 4, |_| Err(Error::Truncated)),
            Err(Error::Truncated)
        );
        assert_eq!(repr.emit_with_payload(&mut buf, 4, |_| Ok(())), Ok(20));
    }

    fn arb_repr() -> impl Strategy<Value = GreRepr> {
        (
            any::<u16>(),
            any::<bool>(),
            any::<Option<u32>>(),
            any::<Option<u32>>(),
        )
            .prop_map(|(protocol, checksum, key, seq)| GreRepr {
                protocol,
                checksum,
                key,
                seq,
            })
    }

    proptest! {
        #[test]
        fn round_trip(repr in arb_repr(), payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            let hl = repr.header_len();
            let mut buf = vec![0u8; hl + payload.len()];
            let n = repr.emit_with_payload(&mut buf, payload.len(), |b| {
                b.copy_from_slice(&payload);
                Ok(())
            }).unwrap();
            prop_assert_eq!(n, buf.len());
            let p = GrePacket::parse(&buf[..]).unwrap();
            prop_assert_eq!(GreRepr::parse(&p), repr);
            prop_assert_eq!(p.header_len(), hl);
            prop_assert_eq!(p.payload(), &payload[..]);
            prop_assert_eq!(p.verify_checksum(), Ok(()));
            if repr.checksum {
                // Against the plain reference: the whole packet sums to zero.
                prop_assert_eq!(crate::checksum::checksum(&buf), 0);
            }
            // Header-only emit writes the same bytes but a zero checksum.
            let mut hdr = vec![0u8; hl];
            prop_assert_eq!(repr.emit(&mut hdr), Ok(hl));
            if repr.checksum {
                prop_assert_eq!(&hdr[..4], &buf[..4]);
                prop_assert_eq!(&hdr[4..6], &[0, 0]);
                prop_assert_eq!(&hdr[6..], &buf[6..hl]);
            } else {
                prop_assert_eq!(&hdr[..], &buf[..hl]);
            }
            for k in 0..hl {
                prop_assert_eq!(GrePacket::parse(&buf[..k]).unwrap_err(), Error::Truncated);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(mut data in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(p) = GrePacket::parse(&data[..]) {
                let _ = (p.checksum(), p.key(), p.seq(), p.verify_checksum());
            }
            if let Ok(mut p) = GrePacket::parse(&mut data[..]) {
                let _ = p.set_key(1);
                let _ = p.set_seq(2);
                p.fill_checksum();
                prop_assert_eq!(p.verify_checksum(), Ok(()));
            }
        }
    }
}
