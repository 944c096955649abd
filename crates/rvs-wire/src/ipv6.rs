//! IPv6 (RFC 8200): the fixed header, the extension-header chain, fragment
//! headers and hop-by-hop / destination option TLVs.
//!
//! # What `parse` guarantees
//! [`Ipv6Packet::parse`] checks the three things every accessor relies on:
//! the buffer holds the 40-byte fixed header, the version is 6, and the
//! payload length fits in the buffer. Bytes after the payload length are
//! link-layer padding (an Ethernet frame is at least 60 bytes) and are not
//! part of the view. A payload length of 0 with a hop-by-hop header first is
//! a jumbogram (RFC 2675); rvs never sees links with an MTU above 64 KiB, so
//! those are refused as [`Error::Unsupported`].
//!
//! # Why the extension headers are walked lazily
//! Most packets the balancer forwards have no extension headers at all, and
//! the fixed header alone is enough for DR mode. So `parse` does not walk the
//! chain; [`Ipv6Packet::ext_headers`] returns an allocation-free iterator
//! and [`Ipv6Packet::upper_layer`] the protocol and offset where the chain
//! ends. The walk validates each header's length against what is left of the
//! payload and stops with [`Error::BadOption`] after
//! [`MAX_EXT_HEADERS`] headers, so a crafted chain (a hundred destination
//! option headers, a hop-by-hop loop) costs a bounded amount of work. As
//! RFC 8200 §4.1 requires, a hop-by-hop header anywhere but first is an
//! error. ESP (50) and "no next header" (59) end the walk like any upper
//! layer: what follows them is opaque.
//!
//! Offsets reported by the walker are counted from the first byte of the
//! IPv6 fixed header, so they index the packet the view was parsed from.

use core::fmt;
use core::net::Ipv6Addr;

use zerocopy::network_endian::{U16, U32};
use zerocopy::{
    FromBytes, Immutable, IntoBytes, KnownLayout, Ref, SplitByteSlice, SplitByteSliceMut, Unaligned,
};

use crate::checksum::{self, Checksum};
use crate::ip_proto;
use crate::{Error, Result};

/// Length of the IPv6 fixed header.
pub const HEADER_LEN: usize = core::mem::size_of::<Ipv6Header>();

/// Length of a fragment extension header.
pub const FRAGMENT_HEADER_LEN: usize = core::mem::size_of::<FragmentHeader>();

/// The most extension headers the walker follows before giving up with
/// [`Error::BadOption`]. A legitimate chain (hop-by-hop, destination options,
/// routing, fragment, AH, destination options) has at most six.
pub const MAX_EXT_HEADERS: usize = 8;

/// The 40-byte IPv6 fixed header.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Debug, Clone, Copy)]
#[repr(C)]
pub struct Ipv6Header {
    /// Version (4 bits), traffic class (8 bits), flow label (20 bits).
    pub ver_tc_flow: U32,
    /// Length of everything after the fixed header, extension headers included.
    pub payload_len: U16,
    /// Type of the first extension header or of the upper-layer protocol.
    pub next_header: u8,
    /// Hop limit.
    pub hop_limit: u8,
    /// Source address.
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
}

impl Ipv6Header {
    /// The version field (6 in a valid packet).
    pub fn version(&self) -> u8 {
        (self.ver_tc_flow.get() >> 28) as u8
    }

    /// The traffic class (DSCP in the upper six bits, ECN in the lower two).
    pub fn traffic_class(&self) -> u8 {
        (self.ver_tc_flow.get() >> 20) as u8
    }

    /// The 20-bit flow label.
    pub fn flow_label(&self) -> u32 {
        self.ver_tc_flow.get() & 0x000f_ffff
    }

    /// Sets version, traffic class and flow label at once (the flow label is
    /// masked to 20 bits).
    pub fn set_ver_tc_flow(&mut self, version: u8, traffic_class: u8, flow_label: u32) {
        self.ver_tc_flow.set(
            (u32::from(version & 0x0f) << 28)
                | (u32::from(traffic_class) << 20)
                | (flow_label & 0x000f_ffff),
        );
    }

    /// Source address.
    pub fn src(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.src)
    }

    /// Destination address.
    pub fn dst(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.dst)
    }
}

/// True for the next-header values the walker treats as extension headers:
/// hop-by-hop (0), routing (43), fragment (44), AH (51), destination options (60).
pub const fn is_ext_header(next_header: u8) -> bool {
    matches!(
        next_header,
        ip_proto::HOPOPT
            | ip_proto::IPV6_ROUTE
            | ip_proto::IPV6_FRAG
            | ip_proto::AH
            | ip_proto::IPV6_OPTS
    )
}

/// The 8-byte fragment extension header (RFC 8200 §4.5).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Debug, Clone, Copy)]
#[repr(C)]
pub struct FragmentHeader {
    /// Type of the header that follows (in the first fragment).
    pub next_header: u8,
    /// Reserved, sent as zero and ignored.
    pub reserved: u8,
    /// Fragment offset in 8-octet units (13 bits), 2 reserved bits, M flag.
    pub offset_flags: U16,
    /// Identification shared by all fragments of one packet.
    pub ident: U32,
}

impl FragmentHeader {
    /// Offset of this fragment's data in the original payload, in bytes.
    pub fn offset(&self) -> u16 {
        self.offset_flags.get() & !0x0007
    }

    /// The M ("more fragments") flag.
    pub fn more_fragments(&self) -> bool {
        self.offset_flags.get() & 1 != 0
    }

    /// The identification value.
    pub fn ident(&self) -> u32 {
        self.ident.get()
    }
}

/// One extension header found by the walker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtHeader<'a> {
    kind: u8,
    next_header: u8,
    offset: usize,
    bytes: &'a [u8],
}

impl<'a> ExtHeader<'a> {
    /// This header's own type (the next-header value that announced it).
    pub fn kind(&self) -> u8 {
        self.kind
    }

    /// The type of the header that follows it.
    pub fn next_header(&self) -> u8 {
        self.next_header
    }

    /// Offset of this header from the start of the IPv6 fixed header.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The whole header, next-header and length bytes included.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Length of the header in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: every extension header is at least 8 bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The option TLVs of a hop-by-hop or destination options header.
    pub fn options(&self) -> Option<Ipv6Options<'a>> {
        match self.kind {
            ip_proto::HOPOPT | ip_proto::IPV6_OPTS => {
                Some(Ipv6Options::new(self.bytes.get(2..).unwrap_or_default()))
            }
            _ => None,
        }
    }

    /// The fragment header, if this is one.
    pub fn fragment(&self) -> Option<&'a FragmentHeader> {
        if self.kind == ip_proto::IPV6_FRAG {
            FragmentHeader::ref_from_bytes(self.bytes).ok()
        } else {
            None
        }
    }
}

/// Allocation-free walker over an IPv6 extension-header chain.
///
/// Yields each extension header, or one error after which it stops. Once it
/// returns `None` without an error, [`ExtHeaders::upper_layer`] gives where
/// the chain ended.
#[derive(Debug, Clone)]
pub struct ExtHeaders<'a> {
    next_header: u8,
    rest: &'a [u8],
    offset: usize,
    walked: usize,
    done: bool,
    error: Option<Error>,
}

impl<'a> ExtHeaders<'a> {
    /// Walks `bytes`, whose first header has type `next_header` and starts
    /// `offset` bytes into the packet (40 for a chain right after the fixed
    /// header).
    pub fn new(next_header: u8, bytes: &'a [u8], offset: usize) -> Self {
        ExtHeaders {
            next_header,
            rest: bytes,
            offset,
            walked: 0,
            done: false,
            error: None,
        }
    }

    /// Walks the rest of the chain and returns the upper-layer protocol
    /// (which may be ESP or "no next header") and its offset from the start
    /// of the IPv6 fixed header.
    pub fn upper_layer(mut self) -> Result<(u8, usize)> {
        for h in self.by_ref() {
            h?;
        }
        match self.error {
            Some(e) => Err(e),
            None => Ok((self.next_header, self.offset)),
        }
    }

    /// Walks the rest of the chain and returns the upper-layer protocol and
    /// the bytes from its first header to the end of the payload.
    pub fn upper_layer_bytes(mut self) -> Result<(u8, &'a [u8])> {
        for h in self.by_ref() {
            h?;
        }
        match self.error {
            Some(e) => Err(e),
            None => Ok((self.next_header, self.rest)),
        }
    }

    fn step(&mut self) -> Result<ExtHeader<'a>> {
        let kind = self.next_header;
        if self.walked >= MAX_EXT_HEADERS {
            return Err(Error::BadOption);
        }
        if kind == ip_proto::HOPOPT && self.walked > 0 {
            return Err(Error::BadOption);
        }
        let &[next_header, len_field] = self.rest.first_chunk::<2>().ok_or(Error::BadOption)?;
        let len = match kind {
            ip_proto::IPV6_FRAG => FRAGMENT_HEADER_LEN,
            ip_proto::AH => {
                // RFC 4302 §2.2: length in 4-octet units minus 2; the
                // smallest AH (no ICV) is 12 bytes.
                if len_field == 0 {
                    return Err(Error::BadOption);
                }
                (usize::from(len_field) + 2) * 4
            }
            _ => (usize::from(len_field) + 1) * 8,
        };
        let (bytes, rest) = self.rest.split_at_checked(len).ok_or(Error::BadOption)?;
        let header = ExtHeader {
            kind,
            next_header,
            offset: self.offset,
            bytes,
        };
        self.offset = self.offset.checked_add(len).ok_or(Error::BadLength)?;
        self.rest = rest;
        self.next_header = next_header;
        self.walked += 1;
        Ok(header)
    }
}

impl<'a> Iterator for ExtHeaders<'a> {
    type Item = Result<ExtHeader<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || !is_ext_header(self.next_header) {
            self.done = true;
            return None;
        }
        match self.step() {
            Ok(h) => Some(Ok(h)),
            Err(e) => {
                self.done = true;
                self.error = Some(e);
                Some(Err(e))
            }
        }
    }
}

impl core::iter::FusedIterator for ExtHeaders<'_> {}

/// Option types of hop-by-hop and destination options headers (IANA
/// "Destination Options and Hop-by-Hop Options").
pub mod option_type {
    /// One byte of padding, no length or data.
    pub const PAD1: u8 = 0x00;
    /// N bytes of padding.
    pub const PADN: u8 = 0x01;
    /// Router alert (RFC 2711), carried by MLD reports.
    pub const ROUTER_ALERT: u8 = 0x05;
    /// Tunnel encapsulation limit (RFC 2473).
    pub const TUNNEL_ENCAP_LIMIT: u8 = 0x04;
    /// Jumbo payload (RFC 2675).
    pub const JUMBO: u8 = 0xc2;
}

/// One option TLV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Option<'a> {
    kind: u8,
    data: &'a [u8],
}

impl<'a> Ipv6Option<'a> {
    /// The option type.
    pub fn kind(&self) -> u8 {
        self.kind
    }

    /// The option data (empty for Pad1).
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// What a node that does not know the option must do (the two high bits
    /// of the type, RFC 8200 §4.2): 0 skip, 1 discard, 2 discard and send
    /// ICMP, 3 discard and send ICMP unless the destination is multicast.
    pub fn unknown_action(&self) -> u8 {
        self.kind >> 6
    }

    /// True if the option data may change en route.
    pub fn may_change(&self) -> bool {
        self.kind & 0x20 != 0
    }
}

/// Iterator over the option TLVs of a hop-by-hop or destination options
/// header. Yields padding too; an option whose length runs past the header
/// ends the walk with [`Error::BadOption`].
#[derive(Debug, Clone)]
pub struct Ipv6Options<'a> {
    rest: &'a [u8],
    done: bool,
}

impl<'a> Ipv6Options<'a> {
    /// Iterates over `data`, the header bytes after its first two.
    pub fn new(data: &'a [u8]) -> Self {
        Ipv6Options {
            rest: data,
            done: false,
        }
    }

    fn step(&mut self) -> Result<Ipv6Option<'a>> {
        let (&kind, rest) = self.rest.split_first().ok_or(Error::BadOption)?;
        if kind == option_type::PAD1 {
            self.rest = rest;
            return Ok(Ipv6Option { kind, data: &[] });
        }
        let (&len, rest) = rest.split_first().ok_or(Error::BadOption)?;
        let (data, rest) = rest
            .split_at_checked(usize::from(len))
            .ok_or(Error::BadOption)?;
        self.rest = rest;
        Ok(Ipv6Option { kind, data })
    }
}

impl<'a> Iterator for Ipv6Options<'a> {
    type Item = Result<Ipv6Option<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.rest.is_empty() {
            self.done = true;
            return None;
        }
        let r = self.step();
        if r.is_err() {
            self.done = true;
        }
        Some(r)
    }
}

impl core::iter::FusedIterator for Ipv6Options<'_> {}

/// What the first fragment header of a packet says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragmentInfo {
    /// Offset of this fragment's data in the original packet, in bytes.
    pub offset: u16,
    /// The M flag: more fragments follow.
    pub more_fragments: bool,
    /// Identification.
    pub ident: u32,
    /// Offset of the fragment header from the start of the fixed header.
    pub header_offset: usize,
}

impl FragmentInfo {
    /// True unless this is an atomic fragment (offset 0 and no more
    /// fragments, RFC 6946), which is a whole packet.
    pub fn is_fragment(&self) -> bool {
        self.offset != 0 || self.more_fragments
    }

    /// True for the fragment that carries the upper-layer header.
    pub fn is_first(&self) -> bool {
        self.offset == 0
    }
}

/// A view of an IPv6 packet: fixed header plus payload (extension headers
/// and upper layer). Link-layer padding after the payload is not included.
pub struct Ipv6Packet<B> {
    header: Ref<B, Ipv6Header>,
    payload: B,
}

impl<B: SplitByteSlice> fmt::Debug for Ipv6Packet<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ipv6Packet")
            .field("header", self.header())
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

impl<B: SplitByteSlice> Ipv6Packet<B> {
    /// Checks the fixed header and splits off the payload, dropping any
    /// padding after it. Errors, in the order checked: fewer than 40 bytes,
    /// [`Error::Truncated`]; version not 6, [`Error::BadVersion`]; a
    /// jumbogram, [`Error::Unsupported`]; a payload length beyond the
    /// buffer, [`Error::Truncated`] (the packet was cut short).
    pub fn parse(bytes: B) -> Result<Self> {
        let (header, rest) =
            Ref::<B, Ipv6Header>::from_prefix(bytes).map_err(|_| Error::Truncated)?;
        if header.version() != 6 {
            return Err(Error::BadVersion);
        }
        let payload_len = usize::from(header.payload_len.get());
        if payload_len == 0 && header.next_header == ip_proto::HOPOPT {
            // A jumbogram (RFC 2675): not on any link rvs drives.
            return Err(Error::Unsupported);
        }
        let (payload, _padding) = rest.split_at(payload_len).map_err(|_| Error::Truncated)?;
        Ok(Ipv6Packet { header, payload })
    }

    /// The fixed header.
    pub fn header(&self) -> &Ipv6Header {
        &self.header
    }

    /// The traffic class.
    pub fn traffic_class(&self) -> u8 {
        self.header.traffic_class()
    }

    /// The DSCP (upper six bits of the traffic class).
    pub fn dscp(&self) -> u8 {
        self.header.traffic_class() >> 2
    }

    /// The ECN field (lower two bits of the traffic class).
    pub fn ecn(&self) -> u8 {
        self.header.traffic_class() & 0x03
    }

    /// The flow label.
    pub fn flow_label(&self) -> u32 {
        self.header.flow_label()
    }

    /// The payload length field (equal to `payload().len()`).
    pub fn payload_len(&self) -> u16 {
        self.header.payload_len.get()
    }

    /// Fixed header plus payload: where the packet ends in the buffer.
    pub fn total_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// The next-header field of the fixed header.
    pub fn next_header(&self) -> u8 {
        self.header.next_header
    }

    /// The hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.header.hop_limit
    }

    /// Source address.
    pub fn src(&self) -> Ipv6Addr {
        self.header.src()
    }

    /// Destination address.
    pub fn dst(&self) -> Ipv6Addr {
        self.header.dst()
    }

    /// Extension headers and upper layer, `payload_len` bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// A walker over the extension headers.
    pub fn ext_headers(&self) -> ExtHeaders<'_> {
        ExtHeaders::new(self.header.next_header, &self.payload, HEADER_LEN)
    }

    /// The upper-layer protocol and its offset from the start of the fixed
    /// header, after walking the extension headers.
    pub fn upper_layer(&self) -> Result<(u8, usize)> {
        self.ext_headers().upper_layer()
    }

    /// The upper-layer protocol and its bytes (up to the payload's end).
    pub fn upper_layer_payload(&self) -> Result<(u8, &[u8])> {
        self.ext_headers().upper_layer_bytes()
    }

    /// The first fragment header of the chain, if any.
    pub fn fragment(&self) -> Result<Option<FragmentInfo>> {
        for h in self.ext_headers() {
            let h = h?;
            if let Some(f) = h.fragment() {
                return Ok(Some(FragmentInfo {
                    offset: f.offset(),
                    more_fragments: f.more_fragments(),
                    ident: f.ident(),
                    header_offset: h.offset(),
                }));
            }
        }
        Ok(None)
    }

    /// The pseudo-header sum (RFC 8200 §8.1) for an upper-layer packet of
    /// protocol `next_header` and `len` bytes carried in this packet.
    pub fn pseudo_header(&self, next_header: u8, len: u32) -> Checksum {
        checksum::ipv6_pseudo_header(self.src(), self.dst(), next_header, len)
    }

    /// Splits the view into its header and payload.
    pub fn into_parts(self) -> (Ref<B, Ipv6Header>, B) {
        (self.header, self.payload)
    }
}

impl<B: SplitByteSliceMut> Ipv6Packet<B> {
    /// The fixed header, writable.
    pub fn header_mut(&mut self) -> &mut Ipv6Header {
        &mut self.header
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.payload
    }

    /// The upper-layer protocol and its bytes, writable (for in-place
    /// rewrites of ports and checksums).
    pub fn upper_layer_mut(&mut self) -> Result<(u8, &mut [u8])> {
        let (proto, offset) = self.upper_layer()?;
        let start = offset.checked_sub(HEADER_LEN).ok_or(Error::BadLength)?;
        let bytes = self.payload.get_mut(start..).ok_or(Error::BadLength)?;
        Ok((proto, bytes))
    }

    /// Sets the source address.
    pub fn set_src(&mut self, addr: Ipv6Addr) {
        self.header.src = addr.octets();
    }

    /// Sets the destination address.
    pub fn set_dst(&mut self, addr: Ipv6Addr) {
        self.header.dst = addr.octets();
    }

    /// Sets the hop limit.
    pub fn set_hop_limit(&mut self, hop_limit: u8) {
        self.header.hop_limit = hop_limit;
    }

    /// Decrements the hop limit as a forwarding node must (RFC 8200 §3) and
    /// returns the new value. Returns `None`, leaving the packet unchanged,
    /// when the hop limit is 0 or 1: such a packet must not be forwarded.
    pub fn decrement_hop_limit(&mut self) -> Option<u8> {
        let h = self.header.hop_limit;
        if h <= 1 {
            return None;
        }
        let h = h - 1;
        self.header.hop_limit = h;
        Some(h)
    }

    /// Sets the payload length field. The view keeps the payload it was
    /// parsed with: re-parse after changing the packet's length.
    pub fn set_payload_len(&mut self, len: u16) {
        self.header.payload_len.set(len);
    }

    /// Sets the next-header field of the fixed header.
    pub fn set_next_header(&mut self, next_header: u8) {
        self.header.next_header = next_header;
    }

    /// Sets the traffic class.
    pub fn set_traffic_class(&mut self, traffic_class: u8) {
        let flow = self.header.flow_label();
        self.header.set_ver_tc_flow(6, traffic_class, flow);
    }

    /// Sets the flow label (masked to 20 bits).
    pub fn set_flow_label(&mut self, flow_label: u32) {
        let tc = self.header.traffic_class();
        self.header.set_ver_tc_flow(6, tc, flow_label);
    }
}

/// A parsed or to-be-built IPv6 fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Repr {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Next header.
    pub next_header: u8,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class (DSCP and ECN).
    pub traffic_class: u8,
    /// Flow label (20 bits; higher bits are dropped by `emit`).
    pub flow_label: u32,
    /// Payload length (everything after the fixed header).
    pub payload_len: u16,
}

impl Ipv6Repr {
    /// Reads the fixed header of a parsed packet.
    pub fn parse<B: SplitByteSlice>(packet: &Ipv6Packet<B>) -> Self {
        Ipv6Repr {
            src: packet.src(),
            dst: packet.dst(),
            next_header: packet.next_header(),
            hop_limit: packet.hop_limit(),
            traffic_class: packet.traffic_class(),
            flow_label: packet.flow_label(),
            payload_len: packet.payload_len(),
        }
    }

    /// Bytes [`Ipv6Repr::emit`] writes.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the fixed header at the start of `buf`; returns the bytes
    /// written. The payload is the caller's.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let (hdr, _) = Ipv6Header::mut_from_prefix(buf).map_err(|_| Error::BufferTooSmall)?;
        hdr.set_ver_tc_flow(6, self.traffic_class, self.flow_label);
        hdr.payload_len.set(self.payload_len);
        hdr.next_header = self.next_header;
        hdr.hop_limit = self.hop_limit;
        hdr.src = self.src.octets();
        hdr.dst = self.dst.octets();
        Ok(HEADER_LEN)
    }

    /// Writes the fixed header followed by a fragment header. Here
    /// `self.next_header` is the protocol the fragment header announces and
    /// `self.payload_len` the bytes after the fragment header; the fixed
    /// header gets next header 44 and a payload length 8 bytes larger.
    pub fn emit_fragmented(&self, frag: &Ipv6FragmentRepr, buf: &mut [u8]) -> Result<usize> {
        let payload_len = self
            .payload_len
            .checked_add(FRAGMENT_HEADER_LEN as u16)
            .ok_or(Error::BadLength)?;
        let fixed = Ipv6Repr {
            next_header: ip_proto::IPV6_FRAG,
            payload_len,
            ..*self
        };
        let frag = Ipv6FragmentRepr {
            next_header: self.next_header,
            ..*frag
        };
        let (head, rest) = buf
            .split_at_mut_checked(HEADER_LEN)
            .ok_or(Error::BufferTooSmall)?;
        let n = frag.emit(rest)?;
        fixed.emit(head)?;
        Ok(HEADER_LEN + n)
    }

    /// The pseudo-header sum for an upper-layer packet of protocol
    /// `next_header` and `len` bytes.
    pub fn pseudo_header(&self, next_header: u8, len: u32) -> Checksum {
        checksum::ipv6_pseudo_header(self.src, self.dst, next_header, len)
    }
}

/// A parsed or to-be-built fragment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6FragmentRepr {
    /// Protocol of the fragmented part.
    pub next_header: u8,
    /// Offset in bytes; must be a multiple of 8 (at most 65528).
    pub offset: u16,
    /// The M flag.
    pub more_fragments: bool,
    /// Identification.
    pub ident: u32,
}

impl Ipv6FragmentRepr {
    /// Reads a fragment header.
    pub fn parse(header: &FragmentHeader) -> Self {
        Ipv6FragmentRepr {
            next_header: header.next_header,
            offset: header.offset(),
            more_fragments: header.more_fragments(),
            ident: header.ident(),
        }
    }

    /// Writes the 8-byte fragment header at the start of `buf`. An offset
    /// that is not a multiple of 8 is [`Error::BadLength`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        if !self.offset.is_multiple_of(8) {
            return Err(Error::BadLength);
        }
        let (hdr, _) = FragmentHeader::mut_from_prefix(buf).map_err(|_| Error::BufferTooSmall)?;
        hdr.next_header = self.next_header;
        hdr.reserved = 0;
        hdr.offset_flags
            .set(self.offset | u16::from(self.more_fragments));
        hdr.ident.set(self.ident);
        Ok(FRAGMENT_HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Captures: `tcpdump -i v6a -w` on one end of a veth pair (MTU 1280)
    // between two network namespaces created for the purpose and deleted
    // afterwards, addresses fd00:6::1 and fd00:6::2; Ethernet header
    // stripped.

    /// MLDv2 report sent when fd00:6::1 joined its solicited-node group.
    /// `tcpdump -v`: `IP6 (hlim 1, next-header Options (0) payload length:
    /// 36) :: > ff02::16: HBH (rtalert: 0x0000) (padn) [icmp6 sum ok] ICMP6,
    /// multicast listener report v2, 1 group record(s) [gaddr ff02::1:ff00:2
    /// to_ex, 0 source(s)]`.
    const MLD_REPORT: [u8; 76] = [
        0x60, 0x00, 0x00, 0x00, 0x00, 0x24, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x16, 0x3a, 0x00, 0x05, 0x02, 0x00,
        0x00, 0x01, 0x00, 0x8f, 0x00, 0x6f, 0x88, 0x00, 0x00, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00,
        0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xff, 0x00, 0x00,
        0x02,
    ];

    /// `ping -6 -c 1 fd00:6::2`. `tcpdump -v`: `IP6 (flowlabel 0x5207f,
    /// hlim 64, next-header ICMPv6 (58) payload length: 64) fd00:6::1 >
    /// fd00:6::2: [icmp6 sum ok] ICMP6, echo request, id 12078, seq 1`.
    const ECHO_REQUEST: [u8; 104] = [
        0x60, 0x05, 0x20, 0x7f, 0x00, 0x40, 0x3a, 0x40, 0xfd, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00, 0x00, 0x06, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x80, 0x00, 0x3c, 0x36, 0x2f,
        0x2e, 0x00, 0x01, 0x16, 0x36, 0x02, 0x6b, 0x00, 0x00, 0x00, 0x00, 0x41, 0x9b, 0x01, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a,
        0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29,
        0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
    ];

    /// Second (last) fragment of `ping -6 -c 1 -s 1300 fd00:6::2` over the
    /// 1280-byte MTU. `tcpdump -v`: `IP6 (flowlabel 0x5207f, hlim 64,
    /// next-header Fragment (44) payload length: 84) fd00:6::1 > fd00:6::2:
    /// frag (0x0193d923:1232|76)`.
    const FRAG_LAST: [u8; 124] = [
        0x60, 0x05, 0x20, 0x7f, 0x00, 0x54, 0x2c, 0x40, 0xfd, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00, 0x00, 0x06, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x3a, 0x00, 0x04, 0xd0, 0x01,
        0x93, 0xd9, 0x23, 0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3,
        0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xe1, 0xe2,
        0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1,
        0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff, 0x00,
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
        0x10, 0x11, 0x12, 0x13,
    ];

    /// First fragment of the same ping (1280 bytes, kept as a corpus file).
    /// `tcpdump -v`: `IP6 (flowlabel 0x5207f, hlim 64, next-header Fragment
    /// (44) payload length: 1240) fd00:6::1 > fd00:6::2: frag
    /// (0x0193d923:0|1232) ICMP6, echo request, id 12079, seq 1`.
    const FRAG_FIRST: &[u8] = include_bytes!("../tests/__fuzz__/ipv6/corpus/frag-first");

    fn icmpv6_sum_ok(p: &Ipv6Packet<&[u8]>) -> bool {
        let (proto, l4) = p.upper_layer_payload().unwrap();
        let mut c = p.pseudo_header(proto, l4.len() as u32);
        c.add_bytes(l4);
        c.fold() == 0xffff
    }

    #[test]
    fn known_answer_mld_report_with_hop_by_hop() {
        let p = Ipv6Packet::parse(&MLD_REPORT[..]).unwrap();
        assert_eq!(p.header().version(), 6);
        assert_eq!(p.hop_limit(), 1);
        assert_eq!(p.next_header(), ip_proto::HOPOPT);
        assert_eq!(p.payload_len(), 36);
        assert_eq!(p.total_len(), 76);
        assert_eq!(p.src(), Ipv6Addr::UNSPECIFIED);
        assert_eq!(p.dst(), "ff02::16".parse::<Ipv6Addr>().unwrap());
        let hs: Vec<_> = p.ext_headers().collect::<Result<_>>().unwrap();
        assert_eq!(hs.len(), 1);
        assert_eq!(hs[0].kind(), ip_proto::HOPOPT);
        assert_eq!(hs[0].offset(), 40);
        assert_eq!(hs[0].len(), 8);
        assert_eq!(hs[0].next_header(), ip_proto::ICMPV6);
        let opts: Vec<_> = hs[0].options().unwrap().collect::<Result<_>>().unwrap();
        assert_eq!(opts.len(), 2);
        assert_eq!(opts[0].kind(), option_type::ROUTER_ALERT);
        assert_eq!(opts[0].data(), &[0, 0]); // MLD
        assert_eq!(opts[0].unknown_action(), 0);
        assert_eq!(opts[1].kind(), option_type::PADN);
        assert!(opts[1].data().is_empty());
        assert_eq!(p.upper_layer(), Ok((ip_proto::ICMPV6, 48)));
        let (_, l4) = p.upper_layer_payload().unwrap();
        assert_eq!(l4[0], 143); // MLDv2 report
        assert!(icmpv6_sum_ok(&p));
        assert_eq!(p.fragment(), Ok(None));
    }

    #[test]
    fn known_answer_echo_request() {
        let p = Ipv6Packet::parse(&ECHO_REQUEST[..]).unwrap();
        assert_eq!(p.flow_label(), 0x5207f);
        assert_eq!(p.traffic_class(), 0);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src(), "fd00:6::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.dst(), "fd00:6::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.ext_headers().count(), 0);
        assert_eq!(p.upper_layer(), Ok((ip_proto::ICMPV6, 40)));
        assert_eq!(p.payload()[0], 128); // echo request
        assert!(icmpv6_sum_ok(&p));
    }

    #[test]
    fn known_answer_fragments() {
        let p = Ipv6Packet::parse(&FRAG_LAST[..]).unwrap();
        let f = p.fragment().unwrap().unwrap();
        assert_eq!(
            f,
            FragmentInfo {
                offset: 1232,
                more_fragments: false,
                ident: 0x0193_d923,
                header_offset: 40
            }
        );
        assert!(f.is_fragment() && !f.is_first());
        assert_eq!(p.upper_layer(), Ok((ip_proto::ICMPV6, 48)));

        let p = Ipv6Packet::parse(FRAG_FIRST).unwrap();
        assert_eq!(p.payload_len(), 1240);
        let f = p.fragment().unwrap().unwrap();
        assert_eq!(
            (f.offset, f.more_fragments, f.ident),
            (0, true, 0x0193_d923)
        );
        assert!(f.is_fragment() && f.is_first());
        let (proto, l4) = p.upper_layer_payload().unwrap();
        assert_eq!((proto, l4.len(), l4[0]), (ip_proto::ICMPV6, 1232, 128));
        let h = p.ext_headers().next().unwrap().unwrap();
        let fr = Ipv6FragmentRepr::parse(h.fragment().unwrap());
        let mut out = [0u8; 8];
        fr.emit(&mut out).unwrap();
        assert_eq!(&out[..], &FRAG_FIRST[40..48]);
    }

    #[test]
    fn every_truncation_is_an_error() {
        for pkt in [
            &MLD_REPORT[..],
            &ECHO_REQUEST[..],
            &FRAG_LAST[..],
            FRAG_FIRST,
        ] {
            for n in 0..pkt.len() {
                assert_eq!(
                    Ipv6Packet::parse(&pkt[..n]).unwrap_err(),
                    Error::Truncated,
                    "len {n}"
                );
            }
            assert!(Ipv6Packet::parse(pkt).is_ok());
        }
    }

    #[test]
    fn padding_after_payload_is_not_payload() {
        let mut buf = ECHO_REQUEST.to_vec();
        buf.extend_from_slice(&[0xee; 10]);
        let p = Ipv6Packet::parse(&buf[..]).unwrap();
        assert_eq!(p.payload(), &ECHO_REQUEST[40..]);
        assert_eq!(p.total_len(), ECHO_REQUEST.len());
    }

    #[test]
    fn bad_version_and_jumbogram() {
        let mut buf = ECHO_REQUEST;
        buf[0] = 0x45;
        assert_eq!(Ipv6Packet::parse(&buf[..]).unwrap_err(), Error::BadVersion);
        let mut buf = MLD_REPORT;
        buf[4] = 0;
        buf[5] = 0;
        assert_eq!(Ipv6Packet::parse(&buf[..]).unwrap_err(), Error::Unsupported);
    }

    /// A packet whose payload is `chain` announced by `first`.
    fn packet(first: u8, chain: &[u8]) -> Vec<u8> {
        let repr = Ipv6Repr {
            src: "fd00::1".parse().unwrap(),
            dst: "fd00::2".parse().unwrap(),
            next_header: first,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
            payload_len: chain.len() as u16,
        };
        let mut buf = vec![0u8; HEADER_LEN + chain.len()];
        repr.emit(&mut buf).unwrap();
        buf[HEADER_LEN..].copy_from_slice(chain);
        buf
    }

    /// `n` 8-byte destination-options headers (PadN) ending in UDP.
    fn dest_opts_chain(n: usize) -> Vec<u8> {
        let mut chain = Vec::new();
        for i in 0..n {
            let next = if i + 1 == n {
                ip_proto::UDP
            } else {
                ip_proto::IPV6_OPTS
            };
            chain.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
        }
        chain.extend_from_slice(&[0; 8]);
        chain
    }

    #[test]
    fn long_chains_are_bounded() {
        let ok = packet(ip_proto::IPV6_OPTS, &dest_opts_chain(MAX_EXT_HEADERS));
        let p = Ipv6Packet::parse(&ok[..]).unwrap();
        assert_eq!(
            p.upper_layer(),
            Ok((ip_proto::UDP, HEADER_LEN + 8 * MAX_EXT_HEADERS))
        );
        for n in [MAX_EXT_HEADERS + 1, 100, 8000] {
            let bad = packet(ip_proto::IPV6_OPTS, &dest_opts_chain(n));
            let p = Ipv6Packet::parse(&bad[..]).unwrap();
            assert_eq!(p.upper_layer(), Err(Error::BadOption));
            let items: Vec<_> = p.ext_headers().collect();
            assert_eq!(items.len(), MAX_EXT_HEADERS + 1);
            assert_eq!(items.last().unwrap(), &Err(Error::BadOption));
            assert_eq!(p.fragment(), Err(Error::BadOption));
        }
    }

    #[test]
    fn hop_by_hop_only_first() {
        // HBH -> HBH: a "loop" of hop-by-hop headers.
        let chain = [0u8, 0, 1, 4, 0, 0, 0, 0, 0, 0, 1, 4, 0, 0, 0, 0];
        let p = packet(ip_proto::HOPOPT, &chain);
        let p = Ipv6Packet::parse(&p[..]).unwrap();
        assert_eq!(p.upper_layer(), Err(Error::BadOption));
        // Dest opts -> HBH.
        let chain = [0u8, 0, 1, 4, 0, 0, 0, 0, 17, 0, 1, 4, 0, 0, 0, 0];
        let p = packet(ip_proto::IPV6_OPTS, &chain);
        let p = Ipv6Packet::parse(&p[..]).unwrap();
        assert_eq!(p.upper_layer(), Err(Error::BadOption));
    }

    #[test]
    fn lengths_past_the_end() {
        // Routing header claiming 16 bytes in an 8-byte payload.
        let p = packet(ip_proto::IPV6_ROUTE, &[17, 1, 0, 0, 0, 0, 0, 0]);
        let p = Ipv6Packet::parse(&p[..]).unwrap();
        assert_eq!(p.upper_layer(), Err(Error::BadOption));
        // Fragment header cut short.
        let p = packet(ip_proto::IPV6_FRAG, &[17, 0, 0, 0, 0, 0]);
        let p = Ipv6Packet::parse(&p[..]).unwrap();
        assert_eq!(p.upper_layer(), Err(Error::BadOption));
        // AH with payload length 0 (needs at least 1) and AH too long.
        let p = packet(ip_proto::AH, &[17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let p = Ipv6Packet::parse(&p[..]).unwrap();
        assert_eq!(p.upper_layer(), Err(Error::BadOption));
        let p = packet(ip_proto::AH, &[17, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let p = Ipv6Packet::parse(&p[..]).unwrap();
        assert_eq!(p.upper_layer(), Err(Error::BadOption));
        // AH length in 4-byte units + 2: 1 → 12 bytes.
        let p = packet(ip_proto::AH, &[17, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let p = Ipv6Packet::parse(&p[..]).unwrap();
        assert_eq!(p.upper_layer(), Ok((17, 52)));
        // Only one byte of a header.
        let p = packet(ip_proto::IPV6_OPTS, &[17]);
        let p = Ipv6Packet::parse(&p[..]).unwrap();
        assert_eq!(p.upper_layer(), Err(Error::BadOption));
        // Empty payload announcing an extension header.
        let p = packet(ip_proto::IPV6_ROUTE, &[]);
        let p = Ipv6Packet::parse(&p[..]).unwrap();
        assert_eq!(p.upper_layer(), Err(Error::BadOption));
    }

    #[test]
    fn esp_and_no_next_header_end_the_walk() {
        let p = packet(ip_proto::IPV6_OPTS, &[50, 0, 1, 4, 0, 0, 0, 0, 0xde, 0xad]);
        let p = Ipv6Packet::parse(&p[..]).unwrap();
        assert_eq!(p.upper_layer(), Ok((ip_proto::ESP, 48)));
        let p = packet(ip_proto::IPV6_NONXT, &[1, 2, 3]);
        let p = Ipv6Packet::parse(&p[..]).unwrap();
        assert_eq!(p.upper_layer(), Ok((ip_proto::IPV6_NONXT, 40)));
    }

    #[test]
    fn option_tlvs() {
        let data = [0u8, 1, 2, 0, 0, 0xc2, 4, 1, 2, 3, 4, 0];
        let opts: Vec<_> = Ipv6Options::new(&data).collect::<Result<_>>().unwrap();
        let kinds: Vec<_> = opts.iter().map(|o| (o.kind(), o.data().len())).collect();
        assert_eq!(kinds, [(0, 0), (1, 2), (0xc2, 4), (0, 0)]);
        assert_eq!(opts[2].unknown_action(), 3);
        assert!(!opts[2].may_change());
        // Runs past the end; a lone type byte.
        for bad in [&[1u8, 5, 0, 0][..], &[5u8][..]] {
            let v: Vec<_> = Ipv6Options::new(bad).collect();
            assert_eq!(v.last().unwrap(), &Err(Error::BadOption));
        }
    }

    #[test]
    fn rewrite_in_place() {
        let mut buf = ECHO_REQUEST;
        let mut p = Ipv6Packet::parse(&mut buf[..]).unwrap();
        p.set_src("2001:db8::a".parse().unwrap());
        p.set_dst("2001:db8::b".parse().unwrap());
        p.set_traffic_class(0xb9);
        assert_eq!(p.flow_label(), 0x5207f);
        p.set_flow_label(0xfff_ffff);
        assert_eq!((p.flow_label(), p.dscp(), p.ecn()), (0xfffff, 0x2e, 1));
        assert_eq!(p.decrement_hop_limit(), Some(63));
        let (proto, l4) = p.upper_layer_mut().unwrap();
        assert_eq!(proto, ip_proto::ICMPV6);
        l4[0] = 129;
        p.set_hop_limit(1);
        assert_eq!(p.decrement_hop_limit(), None);
        assert_eq!(p.hop_limit(), 1);
        p.set_payload_len(10);
        p.set_next_header(ip_proto::UDP);
        assert_eq!(&buf[..4], &[0x6b, 0x9f, 0xff, 0xff]);
        assert_eq!(&buf[4..8], &[0, 10, 17, 1]);
        assert_eq!(
            buf[8..24],
            "2001:db8::a".parse::<Ipv6Addr>().unwrap().octets()
        );
        assert_eq!(
            buf[24..40],
            "2001:db8::b".parse::<Ipv6Addr>().unwrap().octets()
        );
        assert_eq!(buf[40], 129);
    }

    #[test]
    fn into_parts_gives_mutable_header_and_payload() {
        let mut buf = MLD_REPORT;
        let p = Ipv6Packet::parse(&mut buf[..]).unwrap();
        let (mut hdr, payload) = p.into_parts();
        hdr.hop_limit = 255;
        payload[8] = 0xaa;
        assert_eq!(buf[7], 255);
        assert_eq!(buf[48], 0xaa);
    }

    #[test]
    fn emit_fragmented_matches_capture() {
        let p = Ipv6Packet::parse(&FRAG_LAST[..]).unwrap();
        let mut repr = Ipv6Repr::parse(&p);
        repr.next_header = ip_proto::ICMPV6;
        repr.payload_len = 76;
        let frag = Ipv6FragmentRepr {
            next_header: 0, // replaced by repr.next_header
            offset: 1232,
            more_fragments: false,
            ident: 0x0193_d923,
        };
        let mut out = [0u8; 48];
        assert_eq!(repr.emit_fragmented(&frag, &mut out), Ok(48));
        assert_eq!(&out[..], &FRAG_LAST[..48]);
        assert_eq!(
            repr.emit_fragmented(&frag, &mut out[..47]),
            Err(Error::BufferTooSmall)
        );
        let bad = Ipv6FragmentRepr { offset: 4, ..frag };
        assert_eq!(bad.emit(&mut out), Err(Error::BadLength));
        repr.payload_len = u16::MAX;
        assert_eq!(repr.emit_fragmented(&frag, &mut out), Err(Error::BadLength));
    }

    fn arb_repr() -> impl Strategy<Value = Ipv6Repr> {
        (
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            0u32..(1 << 20),
        )
            .prop_map(|(s, d, nh, hl, tc, fl)| Ipv6Repr {
                src: Ipv6Addr::from(s),
                dst: Ipv6Addr::from(d),
                next_header: nh,
                hop_limit: hl,
                traffic_class: tc,
                flow_label: fl,
                payload_len: 0,
            })
    }

    /// A random extension header of `kind` (its next-header byte is set by
    /// the caller).
    fn arb_ext(kind: u8) -> impl Strategy<Value = Vec<u8>> {
        (0u8..4, any::<u32>()).prop_map(move |(units, fill)| {
            let len = match kind {
                ip_proto::IPV6_FRAG => 8,
                ip_proto::AH => (usize::from(units) + 3) * 4,
                _ => (usize::from(units) + 1) * 8,
            };
            let mut h = vec![0u8; len];
            for (i, b) in h.iter_mut().enumerate() {
                *b = fill.to_le_bytes()[i % 4];
            }
            h[1] = match kind {
                ip_proto::IPV6_FRAG => 0,
                ip_proto::AH => units + 1,
                _ => units,
            };
            h
        })
    }

    /// A random valid chain: optional hop-by-hop, then headers of other
    /// kinds, then an upper layer; returns (first next header, payload,
    /// upper-layer protocol, offset of the upper layer in the payload).
    fn arb_chain() -> impl Strategy<Value = (u8, Vec<u8>, u8, usize)> {
        let kinds = prop_oneof![
            Just(ip_proto::IPV6_ROUTE),
            Just(ip_proto::IPV6_FRAG),
            Just(ip_proto::IPV6_OPTS),
            Just(ip_proto::AH),
        ];
        (
            any::<bool>(),
            proptest::collection::vec(kinds, 0..MAX_EXT_HEADERS),
            prop_oneof![Just(6u8), Just(17), Just(58), Just(50), Just(59)],
            proptest::collection::vec(any::<u8>(), 0..32),
        )
            .prop_flat_map(|(hbh, mut kinds, upper, tail)| {
                if hbh {
                    kinds.insert(0, ip_proto::HOPOPT);
                }
                let exts: Vec<_> = kinds.iter().map(|&k| arb_ext(k)).collect();
                (Just(kinds), exts, Just(upper), Just(tail))
            })
            .prop_map(|(kinds, mut exts, upper, tail)| {
                let mut payload = Vec::new();
                for (i, h) in exts.iter_mut().enumerate() {
                    h[0] = kinds.get(i + 1).copied().unwrap_or(upper);
                    payload.extend_from_slice(h);
                }
                let l4 = payload.len();
                payload.extend_from_slice(&tail);
                (kinds.first().copied().unwrap_or(upper), payload, upper, l4)
            })
    }

    proptest! {
        #[test]
        fn round_trip(repr in arb_repr(), payload in proptest::collection::vec(any::<u8>(), 0..64),
                      pad in 0usize..8) {
            let repr = Ipv6Repr { payload_len: payload.len() as u16,
                next_header: if repr.next_header == 0 && payload.is_empty() { 59 } else { repr.next_header },
                ..repr };
            let mut buf = vec![0u8; HEADER_LEN + payload.len() + pad];
            prop_assert_eq!(repr.emit(&mut buf), Ok(HEADER_LEN));
            buf[HEADER_LEN..HEADER_LEN + payload.len()].copy_from_slice(&payload);
            let p = Ipv6Packet::parse(&buf[..]).unwrap();
            prop_assert_eq!(Ipv6Repr::parse(&p), repr);
            prop_assert_eq!(p.payload(), &payload[..]);
            // Cross-check with an independent parser.
            let (h, rest) = etherparse::Ipv6Header::from_slice(&buf).unwrap();
            prop_assert_eq!(h.source, repr.src.octets());
            prop_assert_eq!(h.destination, repr.dst.octets());
            prop_assert_eq!(h.traffic_class, repr.traffic_class);
            prop_assert_eq!(h.flow_label.value(), repr.flow_label);
            prop_assert_eq!(h.payload_length, repr.payload_len);
            prop_assert_eq!(h.next_header.0, repr.next_header);
            prop_assert_eq!(h.hop_limit, repr.hop_limit);
            prop_assert_eq!(rest.len(), payload.len() + pad);
        }

        #[test]
        fn chains_agree_with_etherparse((first, payload, upper, l4) in arb_chain(), repr in arb_repr()) {
            let repr = Ipv6Repr { next_header: first, payload_len: payload.len() as u16, ..repr };
            let mut buf = vec![0u8; HEADER_LEN + payload.len()];
            repr.emit(&mut buf).unwrap();
            buf[HEADER_LEN..].copy_from_slice(&payload);
            let p = Ipv6Packet::parse(&buf[..]).unwrap();
            prop_assert_eq!(p.upper_layer(), Ok((upper, HEADER_LEN + l4)));
            let (exts, nh, rest) = etherparse::Ipv6ExtensionsSlice::from_slice(
                etherparse::IpNumber(first), &payload).unwrap();
            prop_assert_eq!(nh.0, upper);
            prop_assert_eq!(rest.len(), payload.len() - l4);
            let ours: Vec<_> = p.ext_headers().map(|h| h.unwrap()).collect();
            prop_assert_eq!(ours.len(), exts.clone().into_iter().count());
            // Fragment headers agree too.
            let frag = p.fragment().unwrap();
            let theirs = exts.into_iter().find_map(|e| match e {
                etherparse::Ipv6ExtensionSlice::Fragment(f) => Some(f.to_header()),
                _ => None,
            });
            prop_assert_eq!(frag.is_some(), theirs.is_some());
            if let (Some(f), Some(t)) = (frag, theirs) {
                prop_assert_eq!(f.offset / 8, t.fragment_offset.value());
                prop_assert_eq!(f.more_fragments, t.more_fragments);
                prop_assert_eq!(f.ident, t.identification);
            }
            // Every truncation of the chain (payload length kept
            // consistent) is an error or a shorter valid walk, never a panic;
            // cutting the buffer instead is always Truncated.
            for n in 0..buf.len() {
                prop_assert_eq!(Ipv6Packet::parse(&buf[..n]).unwrap_err(), Error::Truncated);
            }
            for n in 0..l4 {
                let mut cut = buf[..HEADER_LEN + n].to_vec();
                cut[4..6].copy_from_slice(&(n as u16).to_be_bytes());
                if n == 0 && first == 0 { continue; }
                let p = Ipv6Packet::parse(&cut[..]).unwrap();
                prop_assert_eq!(p.upper_layer(), Err(Error::BadOption));
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            data in proptest::collection::vec(any::<u8>(), 0..200),
            first in prop_oneof![Just(0u8), Just(43), Just(44), Just(51), Just(60), any::<u8>()],
            fix_len in any::<bool>(),
        ) {
            let mut data = data;
            if let Some(b) = data.first_mut() { *b = 0x60 | (*b & 0x0f); }
            if data.len() >= HEADER_LEN {
                data[6] = first;
                if fix_len {
                    let n = (data.len() - HEADER_LEN) as u16;
                    data[4..6].copy_from_slice(&n.to_be_bytes());
                }
            }
            if let Ok(p) = Ipv6Packet::parse(&data[..]) {
                let ours = p.upper_layer();
                let _ = p.fragment();
                for h in p.ext_headers().flatten() {
                    if let Some(o) = h.options() { for _ in o {} }
                }
                // Whatever we accept etherparse accepts the same way.
                let theirs = etherparse::Ipv6ExtensionsSlice::from_slice(
                    etherparse::IpNumber(p.next_header()), p.payload());
                match (ours, theirs) {
                    (Ok((proto, off)), Ok((_, nh, rest))) => {
                        prop_assert_eq!(nh.0, proto);
                        prop_assert_eq!(rest.len(), p.total_len() - off);
                    }
                    (Ok(_), Err(e)) => prop_assert!(false, "etherparse rejects what we accept: {e:?}"),
                    // Only our bound on the chain length may reject more.
                    (Err(_), Ok((exts, _, _))) => {
                        prop_assert!(exts.into_iter().count() >= MAX_EXT_HEADERS);
                    }
                    (Err(_), Err(_)) => {}
                }
            }
            let _ = ExtHeaders::new(first, &data, 0).upper_layer();
            for _ in Ipv6Options::new(&data) {}
        }

        #[test]
        fn emit_into_short_buffer_fails(n in 0usize..HEADER_LEN, repr in arb_repr()) {
            let mut buf = vec![0u8; n];
            prop_assert_eq!(repr.emit(&mut buf), Err(Error::BufferTooSmall));
        }

        #[test]
        fn fragment_repr_round_trip(nh in any::<u8>(), units in 0u16..8192, m in any::<bool>(), id in any::<u32>()) {
            let f = Ipv6FragmentRepr { next_header: nh, offset: units * 8, more_fragments: m, ident: id };
            let mut buf = [0u8; 8];
            prop_assert_eq!(f.emit(&mut buf), Ok(8));
            let h = FragmentHeader::ref_from_bytes(&buf[..]).unwrap();
            prop_assert_eq!(Ipv6FragmentRepr::parse(h), f);
            let (t, _) = etherparse::Ipv6FragmentHeader::from_slice(&buf).unwrap();
            prop_assert_eq!((t.next_header.0, t.fragment_offset.value(), t.more_fragments, t.identification),
                            (nh, units, m, id));
        }
    }
}
