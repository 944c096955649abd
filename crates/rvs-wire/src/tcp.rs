//! TCP segments (RFC 9293): header view, options, checksums, the in-place
//! rewrites a layer-4 balancer performs, and a builder.
//!
//! # The view
//! [`TcpPacket::parse`] takes the *whole segment* — exactly the IP payload,
//! already trimmed to the IP length (Ethernet padding removed) — because the
//! checksum and the pseudo-header length cover all of it. It checks the
//! 20-byte fixed header is there and that the data offset is at least 5 words
//! and inside the buffer; after that no accessor can panic. Options are not
//! validated by `parse` (Linux forwards and ignores a malformed option area;
//! so does a balancer): they are walked lazily by [`TcpPacket::options`].
//! The option rewrites act, as a receiver would, on the options before an
//! End-of-Option-List or a malformed option; [`insert_toa`] refuses a
//! malformed area, since a TOA placed after it would never be read.
//!
//! # Rewrites keep the checksum right
//! Every setter on a mutable view (`set_src_port`, `adjust_seq`,
//! `clamp_mss`, …) changes the field *and* updates the checksum with RFC 1624
//! arithmetic over the changed bytes only, so the balancer never re-reads the
//! payload. When the IP layer rewrites an address, the TCP checksum covers it
//! through the pseudo-header: call
//! [`TcpPacket::update_checksum_for_addr_change_v4`] (or `_v6`) with the old
//! and new address. Options need not be 16-bit aligned (NOPs may shift them),
//! so option rewrites account for the byte parity of their offset.
//! [`insert_toa`] grows the segment; see its documentation.
//!
//! The raw field setters on [`TcpHeader`] (through `header_mut`) do *not*
//! touch the checksum; use them when building and then call `fill_checksum_*`.

mod options;
mod toa;

use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr};

use zerocopy::network_endian::{U16, U32};
use zerocopy::{
    FromBytes, Immutable, IntoBytes, KnownLayout, Ref, SplitByteSlice, SplitByteSliceMut, Unaligned,
};

use crate::checksum::{self, Checksum};
use crate::{Error, Result, ip_proto};

pub use options::{
    MAX_OPTIONS_LEN, MAX_SACK_BLOCKS, MSS_LEN, SACK_PERMITTED_LEN, SackBlocks, TIMESTAMPS_LEN,
    TcpOption, TcpOptionWriter, TcpOptions, Toa, WINDOW_SCALE_LEN, kind, padded_len,
};
pub use toa::insert_toa;

/// Length of the fixed TCP header.
pub const HEADER_LEN: usize = core::mem::size_of::<TcpHeader>();
/// Largest TCP header: data offset 15 words.
pub const MAX_HEADER_LEN: usize = 60;
/// Offset of the checksum field in the header.
pub const CHECKSUM_OFFSET: usize = 16;

/// The control bits: the 8 flags of byte 13 plus the former NS bit (RFC
/// 3540, historic), now AE in Accurate ECN, in the low bit of byte 12.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct TcpFlags(u16);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x001);
    /// Synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x002);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x004);
    /// Push.
    pub const PSH: TcpFlags = TcpFlags(0x008);
    /// Acknowledgment field is significant.
    pub const ACK: TcpFlags = TcpFlags(0x010);
    /// Urgent pointer is significant.
    pub const URG: TcpFlags = TcpFlags(0x020);
    /// ECN echo (RFC 3168).
    pub const ECE: TcpFlags = TcpFlags(0x040);
    /// Congestion window reduced (RFC 3168).
    pub const CWR: TcpFlags = TcpFlags(0x080);
    /// Accurate ECN (formerly the ECN-nonce NS bit of RFC 3540).
    pub const AE: TcpFlags = TcpFlags(0x100);
    /// Alias of [`TcpFlags::AE`] under its RFC 3540 name.
    pub const NS: TcpFlags = TcpFlags::AE;
    /// Every defined bit.
    pub const ALL: TcpFlags = TcpFlags(0x1ff);
    /// No flags.
    pub const NONE: TcpFlags = TcpFlags(0);

    /// From the 9 low bits of `bits`; higher bits are dropped.
    pub const fn from_bits_truncate(bits: u16) -> TcpFlags {
        TcpFlags(bits & Self::ALL.0)
    }

    /// The 9 flag bits as they sit in the low bits of header word 6.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// True if every flag of `other` is set.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// True if any flag of `other` is set.
    pub const fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// Sets the flags of `other`.
    pub fn insert(&mut self, other: TcpFlags) {
        self.0 |= other.0;
    }

    /// Clears the flags of `other`.
    pub fn remove(&mut self, other: TcpFlags) {
        self.0 &= !other.0;
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl core::ops::BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

impl core::ops::BitAnd for TcpFlags {
    type Output = TcpFlags;
    fn bitand(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 & rhs.0)
    }
}

/// tcpdump's letters: `F S R P U E W` and `.` for ACK; `e` for AE.
impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const LETTERS: [(TcpFlags, char); 9] = [
            (TcpFlags::FIN, 'F'),
            (TcpFlags::SYN, 'S'),
            (TcpFlags::RST, 'R'),
            (TcpFlags::PSH, 'P'),
            (TcpFlags::URG, 'U'),
            (TcpFlags::ECE, 'E'),
            (TcpFlags::CWR, 'W'),
            (TcpFlags::AE, 'e'),
            (TcpFlags::ACK, '.'),
        ];
        for (flag, c) in LETTERS {
            if self.contains(flag) {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TcpFlags([{self}])")
    }
}

/// The 20-byte fixed TCP header.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Debug, Clone, Copy)]
#[repr(C)]
pub struct TcpHeader {
    /// Source port.
    pub src_port: U16,
    /// Destination port.
    pub dst_port: U16,
    /// Sequence number.
    pub seq: U32,
    /// Acknowledgment number.
    pub ack: U32,
    /// Data offset (4 bits, in 32-bit words), 3 reserved bits, then the 9
    /// flag bits ([`TcpFlags`]).
    pub offset_flags: U16,
    /// Receive window (before scaling).
    pub window: U16,
    /// Checksum over pseudo-header, header and payload.
    pub checksum: U16,
    /// Urgent pointer.
    pub urgent: U16,
}

impl TcpHeader {
    /// Data offset in 32-bit words (any value 0..=15 as read).
    pub fn data_offset(&self) -> u8 {
        (self.offset_flags.get() >> 12) as u8
    }

    /// Header length in bytes claimed by the data offset.
    pub fn header_len(&self) -> usize {
        usize::from(self.data_offset()) * 4
    }

    /// The control bits.
    pub fn flags(&self) -> TcpFlags {
        TcpFlags::from_bits_truncate(self.offset_flags.get())
    }

    /// The three reserved bits between data offset and flags.
    pub fn reserved(&self) -> u8 {
        ((self.offset_flags.get() >> 9) & 0x7) as u8
    }

    /// Sets the data offset (low 4 bits of `words`) without touching flags.
    pub fn set_data_offset(&mut self, words: u8) {
        let v = self.offset_flags.get();
        self.offset_flags
            .set((v & 0x0fff) | (u16::from(words & 0xf) << 12));
    }

    /// Sets the flags without touching data offset or reserved bits.
    pub fn set_flags(&mut self, flags: TcpFlags) {
        let v = self.offset_flags.get();
        self.offset_flags.set((v & !TcpFlags::ALL.0) | flags.bits());
    }
}

/// The pseudo-header sum for IPv4; lengths beyond 16 bits (impossible in a
/// real IPv4 packet) are summed as 32-bit values rather than panicking.
/// The folded sum of `bytes` as they sit at `offset` in a checksummed
/// region: at an odd offset the first byte is the low half of a word.
fn sum_at(offset: usize, bytes: &[u8]) -> u16 {
    let mut c = Checksum::new();
    match bytes.split_first() {
        Some((first, rest)) if offset % 2 == 1 => {
            c.add_u16(u16::from(*first)).add_bytes(rest);
        }
        _ => {
            c.add_bytes(bytes);
        }
    }
    c.fold()
}

/// RFC 1624 eqn. 3 for a byte string at any offset changing from `old` to
/// `new` (same length).
pub(crate) fn patch_checksum(csum: u16, offset: usize, old: &[u8], new: &[u8]) -> u16 {
    let mut c = Checksum::new();
    c.add_u16(!csum)
        .add_u16(!sum_at(offset, old))
        .add_u16(sum_at(offset, new));
    !c.fold()
}

/// A view of a TCP segment: fixed header, option area, payload.
pub struct TcpPacket<B> {
    header: Ref<B, TcpHeader>,
    options: B,
    payload: B,
}

impl<B: SplitByteSlice> fmt::Debug for TcpPacket<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpPacket")
            .field("src_port", &self.src_port())
            .field("dst_port", &self.dst_port())
            .field("seq", &self.seq())
            .field("ack", &self.ack())
            .field("flags", &self.flags())
            .field("window", &self.window())
            .field("options", &&*self.options)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

impl<B: SplitByteSlice> TcpPacket<B> {
    /// Checks the fixed header is present ([`Error::Truncated`]) and that the
    /// data offset is at least 5 and within `bytes`
    /// ([`Error::BadHeaderLength`]); splits header, options and payload.
    pub fn parse(bytes: B) -> Result<Self> {
        let (header, rest) =
            Ref::<B, TcpHeader>::from_prefix(bytes).map_err(|_| Error::Truncated)?;
        let opt_len = header
            .header_len()
            .checked_sub(HEADER_LEN)
            .ok_or(Error::BadHeaderLength)?;
        let (options, payload) = rest.split_at(opt_len).map_err(|_| Error::BadHeaderLength)?;
        Ok(TcpPacket {
            header,
            options,
            payload,
        })
    }

    /// The fixed header.
    pub fn header(&self) -> &TcpHeader {
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

    /// Sequence number.
    pub fn seq(&self) -> u32 {
        self.header.seq.get()
    }

    /// Acknowledgment number.
    pub fn ack(&self) -> u32 {
        self.header.ack.get()
    }

    /// Data offset in 32-bit words (5..=15 after `parse`).
    pub fn data_offset(&self) -> u8 {
        self.header.data_offset()
    }

    /// Header length in bytes, options included (20..=60).
    pub fn header_len(&self) -> usize {
        self.header.header_len()
    }

    /// Control bits.
    pub fn flags(&self) -> TcpFlags {
        self.header.flags()
    }

    /// The three reserved bits.
    pub fn reserved(&self) -> u8 {
        self.header.reserved()
    }

    /// Receive window (unscaled).
    pub fn window(&self) -> u16 {
        self.header.window.get()
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        self.header.checksum.get()
    }

    /// Urgent pointer.
    pub fn urgent(&self) -> u16 {
        self.header.urgent.get()
    }

    /// The raw option area (0..=40 bytes).
    pub fn options_bytes(&self) -> &[u8] {
        &self.options
    }

    /// Iterator over the options.
    pub fn options(&self) -> TcpOptions<'_> {
        TcpOptions::new(&self.options)
    }

    /// The first option of kind `kind`, `Ok(None)` if there is none before
    /// the end of the list, `Err(BadOption)` if the walk hits a malformed
    /// option first.
    pub fn find_option(&self, kind: u8) -> Result<Option<TcpOption<'_>>> {
        for opt in self.options() {
            let opt = opt?;
            if opt.kind() == kind {
                return Ok(Some(opt));
            }
        }
        Ok(None)
    }

    /// The MSS option's value, if present and well-formed.
    pub fn mss(&self) -> Option<u16> {
        match self.find_option(kind::MSS) {
            Ok(Some(TcpOption::Mss(v))) => Some(v),
            _ => None,
        }
    }

    /// The TOA option, if present and well-formed.
    pub fn toa(&self) -> Option<Toa> {
        match self.find_option(kind::TOA) {
            Ok(Some(TcpOption::Toa(t))) => Some(t),
            _ => None,
        }
    }

    /// The payload (everything after the header).
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Header plus payload length: the pseudo-header's length.
    pub fn segment_len(&self) -> usize {
        HEADER_LEN + self.options.len() + self.payload.len()
    }

    /// Sum of header, options and payload, with the checksum field counted
    /// as zero.
    fn sum_segment(&self, mut c: Checksum) -> Checksum {
        let mut hdr = [0u8; HEADER_LEN];
        hdr.copy_from_slice(self.header.as_bytes());
        if let Some(field) = hdr.get_mut(CHECKSUM_OFFSET..CHECKSUM_OFFSET + 2) {
            field.fill(0);
        }
        c.add_bytes(&hdr)
            .add_bytes(&self.options)
            .add_bytes(&self.payload);
        c
    }

    /// The checksum the segment should carry between IPv4 `src` and `dst`.
    pub fn compute_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> u16 {
        self.sum_segment(checksum::ipv4_pseudo_header_len(
            src,
            dst,
            ip_proto::TCP,
            self.segment_len(),
        ))
        .finish()
    }

    /// The checksum the segment should carry between IPv6 `src` and `dst`.
    pub fn compute_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> u16 {
        self.sum_segment(checksum::ipv6_pseudo_header_len(
            src,
            dst,
            ip_proto::TCP,
            self.segment_len(),
        ))
        .finish()
    }

    fn verify(&self, mut c: Checksum) -> Result<()> {
        c.add_bytes(self.header.as_bytes())
            .add_bytes(&self.options)
            .add_bytes(&self.payload);
        if c.fold() == 0xffff {
            Ok(())
        } else {
            Err(Error::BadChecksum)
        }
    }

    /// Checks the checksum against the IPv4 pseudo-header.
    pub fn verify_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> Result<()> {
        self.verify(checksum::ipv4_pseudo_header_len(
            src,
            dst,
            ip_proto::TCP,
            self.segment_len(),
        ))
    }

    /// Checks the checksum against the IPv6 pseudo-header.
    pub fn verify_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> Result<()> {
        self.verify(checksum::ipv6_pseudo_header_len(
            src,
            dst,
            ip_proto::TCP,
            self.segment_len(),
        ))
    }

    /// Splits the view into header, option area and payload.
    pub fn into_parts(self) -> (Ref<B, TcpHeader>, B, B) {
        (self.header, self.options, self.payload)
    }
}

impl<B: SplitByteSliceMut> TcpPacket<B> {
    /// The header, writable. Changes made here do not update the checksum.
    pub fn header_mut(&mut self) -> &mut TcpHeader {
        &mut self.header
    }

    /// The payload, writable. Changes made here do not update the checksum.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.payload
    }

    /// The option area, writable. Changes made here do not update the
    /// checksum.
    pub fn options_bytes_mut(&mut self) -> &mut [u8] {
        &mut self.options
    }

    /// Sets the checksum field as is.
    pub fn set_checksum(&mut self, csum: u16) {
        self.header.checksum.set(csum);
    }

    fn update_u16_field(&mut self, old: u16, new: u16) {
        let c = checksum::update_u16(self.checksum(), old, new);
        self.header.checksum.set(c);
    }

    /// Sets the source port, updating the checksum.
    pub fn set_src_port(&mut self, port: u16) {
        let h = &mut *self.header;
        checksum::set_u16_field(&mut h.checksum, &mut h.src_port, port);
    }

    /// Sets the destination port, updating the checksum.
    pub fn set_dst_port(&mut self, port: u16) {
        let h = &mut *self.header;
        checksum::set_u16_field(&mut h.checksum, &mut h.dst_port, port);
    }

    /// Sets the sequence number, updating the checksum.
    pub fn set_seq(&mut self, seq: u32) {
        let h = &mut *self.header;
        checksum::set_u32_field(&mut h.checksum, &mut h.seq, seq);
    }

    /// Sets the acknowledgment number, updating the checksum.
    pub fn set_ack(&mut self, ack: u32) {
        let h = &mut *self.header;
        checksum::set_u32_field(&mut h.checksum, &mut h.ack, ack);
    }

    /// Adds `delta` (mod 2³²) to the sequence number: sequence translation
    /// for syn-proxy and ISN rewriting. Subtract with `0u32.wrapping_sub(n)`.
    pub fn adjust_seq(&mut self, delta: u32) {
        self.set_seq(self.seq().wrapping_add(delta));
    }

    /// Adds `delta` (mod 2³²) to the acknowledgment number.
    pub fn adjust_ack(&mut self, delta: u32) {
        self.set_ack(self.ack().wrapping_add(delta));
    }

    /// Sets the window, updating the checksum.
    pub fn set_window(&mut self, window: u16) {
        let h = &mut *self.header;
        checksum::set_u16_field(&mut h.checksum, &mut h.window, window);
    }

    /// Sets the urgent pointer, updating the checksum.
    pub fn set_urgent(&mut self, urgent: u16) {
        let h = &mut *self.header;
        checksum::set_u16_field(&mut h.checksum, &mut h.urgent, urgent);
    }

    /// Sets the control bits (data offset and reserved bits kept), updating
    /// the checksum.
    pub fn set_flags(&mut self, flags: TcpFlags) {
        let old = self.header.offset_flags.get();
        self.header.set_flags(flags);
        let new = self.header.offset_flags.get();
        self.update_u16_field(old, new);
    }

    /// Follows an IPv4 address rewrite in the IP header (source or
    /// destination) into this segment's checksum through the pseudo-header.
    pub fn update_checksum_for_addr_change_v4(&mut self, old: Ipv4Addr, new: Ipv4Addr) {
        let c = checksum::update_ipv4_addr(self.checksum(), old, new);
        self.header.checksum.set(c);
    }

    /// Follows an IPv6 address rewrite into this segment's checksum.
    pub fn update_checksum_for_addr_change_v6(&mut self, old: Ipv6Addr, new: Ipv6Addr) {
        let c = checksum::update_ipv6_addr(self.checksum(), old, new);
        self.header.checksum.set(c);
    }

    /// Overwrites option bytes `[at, at + N)` of the option area with `new`,
    /// updating the checksum; a no-op if the range is outside the area.
    fn patch_option_bytes<const N: usize>(&mut self, at: usize, new: [u8; N]) {
        let end = at.saturating_add(N);
        let Some(field) = self.options.get_mut(at..end) else {
            return;
        };
        let mut old = [0u8; N];
        old.copy_from_slice(field);
        field.copy_from_slice(&new);
        let c = patch_checksum(self.checksum(), HEADER_LEN + at, &old, &new);
        self.header.checksum.set(c);
    }

    /// Lowers every MSS option above `max` to `max` (the balancer's answer
    /// to added encapsulation or TOA), updating the checksum.
    ///
    /// Returns the first MSS value found before clamping, `None` if there is
    /// none. Like a receiver (Linux, and DPVS's own MSS adjustment), the walk
    /// stops quietly at an End-of-Option-List or a malformed option: options
    /// before it are the ones a receiver honours, so those are clamped.
    pub fn clamp_mss(&mut self, max: u16) -> Option<u16> {
        let mut first = None;
        let mut at = 0;
        while let Ok(Some(span)) = options::span_at(&self.options, at) {
            if span.kind == kind::EOL {
                break;
            }
            if span.kind == kind::MSS && span.len == MSS_LEN {
                let v = self
                    .options
                    .get(span.offset + 2..span.offset + 4)
                    .and_then(|s| s.first_chunk::<2>())
                    .map(|b| u16::from_be_bytes(*b));
                if let Some(v) = v {
                    if v > max {
                        self.patch_option_bytes(span.offset + 2, max.to_be_bytes());
                    }
                    first = first.or(Some(v));
                }
            }
            at = span.offset + span.len;
        }
        first
    }

    /// Replaces every timestamps option with ten NOPs, updating the checksum
    /// (DPVS does this in FullNAT: the backend's clock would otherwise leak
    /// and the PAWS state of different clients behind one local address
    /// would collide). Returns whether one was replaced. As with
    /// [`TcpPacket::clamp_mss`], the walk stops quietly at an EOL or a
    /// malformed option.
    pub fn replace_timestamps_with_nops(&mut self) -> bool {
        let mut found = false;
        let mut at = 0;
        while let Ok(Some(span)) = options::span_at(&self.options, at) {
            if span.kind == kind::EOL {
                break;
            }
            if span.kind == kind::TIMESTAMPS && span.len == TIMESTAMPS_LEN {
                self.patch_option_bytes(span.offset, [kind::NOP; TIMESTAMPS_LEN]);
                found = true;
            }
            at = span.offset + span.len;
        }
        found
    }

    /// Computes and stores the checksum for IPv4 `src` → `dst`.
    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        let c = self.compute_checksum_v4(src, dst);
        self.header.checksum.set(c);
    }

    /// Computes and stores the checksum for IPv6 `src` → `dst`.
    pub fn fill_checksum_v6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        let c = self.compute_checksum_v6(src, dst);
        self.header.checksum.set(c);
    }
}

/// How many typed options a [`TcpRepr`] holds (NOP and EOL padding are not
/// kept: emit re-pads).
pub const MAX_REPR_OPTIONS: usize = 8;

/// A short list of options for [`TcpRepr`], in wire order.
#[derive(Clone, Copy)]
pub struct TcpOptionList<'a> {
    items: [TcpOption<'a>; MAX_REPR_OPTIONS],
    len: u8,
}

impl<'a> TcpOptionList<'a> {
    /// An empty list.
    pub const fn new() -> Self {
        TcpOptionList {
            items: [TcpOption::Nop; MAX_REPR_OPTIONS],
            len: 0,
        }
    }

    /// Builds from a slice; [`Error::Unsupported`] beyond
    /// [`MAX_REPR_OPTIONS`].
    pub fn from_slice(opts: &[TcpOption<'a>]) -> Result<Self> {
        let mut l = Self::new();
        for o in opts {
            l.push(*o)?;
        }
        Ok(l)
    }

    /// Appends; [`Error::Unsupported`] when full.
    pub fn push(&mut self, opt: TcpOption<'a>) -> Result<()> {
        let slot = self
            .items
            .get_mut(usize::from(self.len))
            .ok_or(Error::Unsupported)?;
        *slot = opt;
        self.len += 1;
        Ok(())
    }

    /// The options in order.
    pub fn as_slice(&self) -> &[TcpOption<'a>] {
        self.items.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Number of options.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for TcpOptionList<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl PartialEq for TcpOptionList<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for TcpOptionList<'_> {}

impl fmt::Debug for TcpOptionList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// A TCP header as values, to build segments (RSTs, syn-proxy SYN-ACKs,
/// test frames) and to round-trip in tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRepr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Control bits.
    pub flags: TcpFlags,
    /// Window.
    pub window: u16,
    /// Urgent pointer.
    pub urgent: u16,
    /// Options other than NOP/EOL padding.
    pub options: TcpOptionList<'a>,
    /// Bytes of payload after the header.
    pub payload_len: usize,
}

impl<'a> TcpRepr<'a> {
    /// Reads a parsed segment. Fails with [`Error::BadOption`] on a
    /// malformed option area and [`Error::Unsupported`] if it holds more
    /// than [`MAX_REPR_OPTIONS`] options besides padding. The reserved bits
    /// are not kept.
    pub fn parse<B: SplitByteSlice>(packet: &'a TcpPacket<B>) -> Result<Self> {
        let mut options = TcpOptionList::new();
        for opt in packet.options() {
            match opt? {
                TcpOption::Nop | TcpOption::EndOfList => {}
                o => options.push(o)?,
            }
        }
        Ok(TcpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq: packet.seq(),
            ack: packet.ack(),
            flags: packet.flags(),
            window: packet.window(),
            urgent: packet.urgent(),
            options,
            payload_len: packet.payload().len(),
        })
    }

    /// Header length [`TcpRepr::emit`] writes: 20 plus the options padded
    /// to 4 bytes (may exceed 60, in which case emit fails).
    pub fn header_len(&self) -> usize {
        HEADER_LEN.saturating_add(padded_len(self.options.as_slice()))
    }

    /// Header plus payload.
    pub fn segment_len(&self) -> usize {
        self.header_len().saturating_add(self.payload_len)
    }

    /// Writes the header and options at the start of `buf` with a zero
    /// checksum; returns the header length. The payload goes after it; then
    /// fill the checksum (or use [`TcpRepr::emit_v4`]/[`TcpRepr::emit_v6`]).
    ///
    /// Fails with [`Error::BadOption`] if the options exceed 40 bytes or one
    /// cannot be written, and [`Error::BufferTooSmall`] if `buf` is shorter
    /// than the header.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let hl = self.header_len();
        if hl > MAX_HEADER_LEN {
            return Err(Error::BadOption);
        }
        let out = buf.get_mut(..hl).ok_or(Error::BufferTooSmall)?;
        let (hdr, opts) =
            Ref::<&mut [u8], TcpHeader>::from_prefix(out).map_err(|_| Error::BufferTooSmall)?;
        let hdr = Ref::into_mut(hdr);
        let mut w = TcpOptionWriter::new(opts);
        for o in self.options.as_slice() {
            w.push(o)?;
        }
        w.finish()?;
        hdr.src_port.set(self.src_port);
        hdr.dst_port.set(self.dst_port);
        hdr.seq.set(self.seq);
        hdr.ack.set(self.ack);
        // `hl` is at most 60, so the word count fits in 4 bits.
        hdr.offset_flags
            .set(((hl / 4) as u16) << 12 | self.flags.bits());
        hdr.window.set(self.window);
        hdr.checksum.set(0);
        hdr.urgent.set(self.urgent);
        Ok(hl)
    }

    fn emit_with_payload(&self, buf: &mut [u8], payload: &[u8]) -> Result<usize> {
        if payload.len() != self.payload_len {
            return Err(Error::BadLength);
        }
        let total = self.segment_len();
        let out = buf.get_mut(..total).ok_or(Error::BufferTooSmall)?;
        let hl = self.emit(out)?;
        out.get_mut(hl..)
            .ok_or(Error::BufferTooSmall)?
            .copy_from_slice(payload);
        Ok(total)
    }

    /// Writes header, options and `payload` (whose length must equal
    /// `payload_len`, else [`Error::BadLength`]) and fills the checksum for
    /// IPv4 `src` → `dst`; returns the segment length.
    pub fn emit_v4(
        &self,
        buf: &mut [u8],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        payload: &[u8],
    ) -> Result<usize> {
        let total = self.emit_with_payload(buf, payload)?;
        let seg = buf.get_mut(..total).ok_or(Error::BufferTooSmall)?;
        TcpPacket::parse(seg)?.fill_checksum_v4(src, dst);
        Ok(total)
    }

    /// As [`TcpRepr::emit_v4`] for IPv6.
    pub fn emit_v6(
        &self,
        buf: &mut [u8],
        src: Ipv6Addr,
        dst: Ipv6Addr,
        payload: &[u8],
    ) -> Result<usize> {
        let total = self.emit_with_payload(buf, payload)?;
        let seg = buf.get_mut(..total).ok_or(Error::BufferTooSmall)?;
        TcpPacket::parse(seg)?.fill_checksum_v6(src, dst);
        Ok(total)
    }
}

#[cfg(test)]
mod tests;
