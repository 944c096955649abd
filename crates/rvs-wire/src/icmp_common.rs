//! What ICMPv4 and ICMPv6 have in common, written once for both.
//!
//! The two protocols share their whole framing: an 8-byte header (type,
//! code, Internet checksum, four type-specific bytes) followed by a body that
//! runs to the end of the IP payload, echo messages whose identifier and
//! sequence sit in the type-specific bytes, and an error/informational split
//! by type. They differ in type numbers, in what the checksum covers (the
//! message alone for v4, a pseudo-header too for v6), in how an error quotes
//! its offending packet and in neighbour discovery. So the view
//! [`IcmpMessage`] here holds the parsing, the header accessors and every
//! in-place edit that keeps the checksum right (echo NAT, echo reply, type
//! and code, incremental updates); what it needs to know about a version
//! comes from [`IcmpVersion`], implemented by the public header structs.
//! `icmpv4` and `icmpv6` keep their own public views and header types (with
//! docs in their own terms) and delegate to this one.
//!
//! The checksum helpers take the starting sum (`Checksum::new()` for v4, the
//! pseudo-header sum for v6), which is the only place the versions differ.

use core::fmt;

use zerocopy::network_endian::U16;
use zerocopy::{
    FromBytes, Immutable, IntoBytes, KnownLayout, Ref, SplitByteSlice, SplitByteSliceMut, Unaligned,
};

use crate::checksum::{self, Checksum};
use crate::{Error, Result};

/// The 8-byte header layout both versions share; the public
/// `Icmpv4Header` and `Icmpv6Header` have exactly this layout and are viewed
/// as it through [`IcmpVersion::common`].
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct IcmpHeader {
    pub(crate) msg_type: u8,
    pub(crate) code: u8,
    pub(crate) checksum: U16,
    pub(crate) rest: [u8; 4],
}

impl IcmpHeader {
    /// A header with the checksum field zero, to be filled once the body is
    /// written.
    pub(crate) fn new(msg_type: u8, code: u8, rest: [u8; 4]) -> Self {
        IcmpHeader {
            msg_type,
            code,
            checksum: U16::ZERO,
            rest,
        }
    }
}

/// Length of the ICMP header, either version.
pub(crate) const HEADER_LEN: usize = core::mem::size_of::<IcmpHeader>();

/// What the shared view needs to know about one ICMP version; implemented
/// by that version's public header struct.
pub(crate) trait IcmpVersion:
    FromBytes + IntoBytes + KnownLayout + Immutable + Unaligned + fmt::Debug
{
    /// Name of the public view, for `Debug`.
    const VIEW_NAME: &'static str;
    /// Type number of an echo request.
    const ECHO_REQUEST: u8;
    /// Type number of an echo reply.
    const ECHO_REPLY: u8;
    /// True if `msg_type` is an error message (one that quotes a packet).
    fn is_error(msg_type: u8) -> bool;
    /// The header as the shared layout.
    fn common(&self) -> &IcmpHeader;
    /// The header as the shared layout, writable.
    fn common_mut(&mut self) -> &mut IcmpHeader;
}

/// Identifier and sequence (or any two 16-bit halves) as the four
/// type-specific header bytes.
pub(crate) fn pair(hi: u16, lo: u16) -> [u8; 4] {
    let [a, b] = hi.to_be_bytes();
    let [c, d] = lo.to_be_bytes();
    [a, b, c, d]
}

/// The two 16-bit halves of the four type-specific header bytes.
pub(crate) fn halves(rest: [u8; 4]) -> (u16, u16) {
    let [a, b, c, d] = rest;
    (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]))
}

/// A view of an ICMP message of version `H`: header plus the rest of the IP
/// payload. Parsing needs only the header, so no accessor can fail.
pub(crate) struct IcmpMessage<B, H> {
    header: Ref<B, H>,
    payload: B,
}

impl<B: SplitByteSlice, H: IcmpVersion> fmt::Debug for IcmpMessage<B, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(H::VIEW_NAME)
            .field("header", self.header())
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

impl<B: SplitByteSlice, H: IcmpVersion> IcmpMessage<B, H> {
    /// Checks that `bytes` holds at least the 8-byte header.
    pub(crate) fn parse(bytes: B) -> Result<Self> {
        let (header, payload) = Ref::from_prefix(bytes).map_err(|_| Error::Truncated)?;
        Ok(IcmpMessage { header, payload })
    }

    pub(crate) fn header(&self) -> &H {
        &self.header
    }

    fn fields(&self) -> &IcmpHeader {
        self.header.common()
    }

    pub(crate) fn msg_type(&self) -> u8 {
        self.fields().msg_type
    }

    pub(crate) fn code(&self) -> u8 {
        self.fields().code
    }

    pub(crate) fn checksum(&self) -> u16 {
        self.fields().checksum.get()
    }

    pub(crate) fn rest_of_header(&self) -> [u8; 4] {
        self.fields().rest
    }

    pub(crate) fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Header and payload.
    pub(crate) fn len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    pub(crate) fn is_error(&self) -> bool {
        H::is_error(self.msg_type())
    }

    pub(crate) fn is_echo(&self) -> bool {
        let t = self.msg_type();
        t == H::ECHO_REQUEST || t == H::ECHO_REPLY
    }

    /// The echo identifier; `None` unless this is an echo message.
    pub(crate) fn echo_ident(&self) -> Option<u16> {
        let (ident, _) = halves(self.rest_of_header());
        self.is_echo().then_some(ident)
    }

    /// The echo sequence number; `None` unless this is an echo message.
    pub(crate) fn echo_seq(&self) -> Option<u16> {
        let (_, seq) = halves(self.rest_of_header());
        self.is_echo().then_some(seq)
    }

    /// `start` (nothing, or a pseudo-header) plus the whole message,
    /// checksum included.
    pub(crate) fn sum(&self, mut start: Checksum) -> Checksum {
        start
            .add_bytes(self.header.as_bytes())
            .add_bytes(&self.payload);
        start
    }

    /// True if `start` plus the message sums to all ones.
    pub(crate) fn verify_checksum(&self, start: Checksum) -> bool {
        self.sum(start).fold() == 0xffff
    }

    pub(crate) fn into_parts(self) -> (Ref<B, H>, B) {
        (self.header, self.payload)
    }
}

impl<B: SplitByteSliceMut, H: IcmpVersion> IcmpMessage<B, H> {
    pub(crate) fn header_mut(&mut self) -> &mut H {
        &mut self.header
    }

    pub(crate) fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.payload
    }

    fn fields_mut(&mut self) -> &mut IcmpHeader {
        self.header.common_mut()
    }

    pub(crate) fn set_checksum(&mut self, csum: u16) {
        self.fields_mut().checksum.set(csum);
    }

    /// Recomputes the checksum over `start` plus the message.
    pub(crate) fn fill_checksum(&mut self, start: Checksum) {
        self.set_checksum(0);
        let c = self.sum(start).finish();
        self.set_checksum(c);
    }

    /// RFC 1624 update for 16-bit aligned bytes `old` replaced by `new`.
    pub(crate) fn update_checksum(&mut self, old: &[u8], new: &[u8]) {
        let c = checksum::update_bytes(self.checksum(), old, new);
        self.set_checksum(c);
    }

    /// Sets the checksum for one 16-bit word of the message that changed
    /// from `old` to `new` (RFC 1624).
    fn update_word(&mut self, old: u16, new: u16) {
        let c = checksum::update_u16(self.checksum(), old, new);
        self.set_checksum(c);
    }

    /// Rewrites the echo identifier, keeping the checksum right;
    /// [`Error::Unsupported`] if this is not an echo message.
    pub(crate) fn set_echo_ident(&mut self, ident: u16) -> Result<()> {
        let old = self.echo_ident().ok_or(Error::Unsupported)?;
        let (_, seq) = halves(self.rest_of_header());
        self.fields_mut().rest = pair(ident, seq);
        self.update_word(old, ident);
        Ok(())
    }

    /// Rewrites the echo sequence number, keeping the checksum right;
    /// [`Error::Unsupported`] if this is not an echo message.
    pub(crate) fn set_echo_seq(&mut self, seq: u16) -> Result<()> {
        let old = self.echo_seq().ok_or(Error::Unsupported)?;
        let (ident, _) = halves(self.rest_of_header());
        self.fields_mut().rest = pair(ident, seq);
        self.update_word(old, seq);
        Ok(())
    }

    /// Sets type and code (one 16-bit word of the message), keeping the
    /// checksum right.
    pub(crate) fn set_type_code(&mut self, msg_type: u8, code: u8) {
        let old = u16::from_be_bytes([self.msg_type(), self.code()]);
        let fields = self.fields_mut();
        fields.msg_type = msg_type;
        fields.code = code;
        self.update_word(old, u16::from_be_bytes([msg_type, code]));
    }

    /// Turns an echo request into its reply in place (only the type
    /// changes); [`Error::Unsupported`] if this is not an echo request.
    pub(crate) fn make_echo_reply(&mut self) -> Result<()> {
        if self.msg_type() != H::ECHO_REQUEST {
            return Err(Error::Unsupported);
        }
        self.set_type_code(H::ECHO_REPLY, 0);
        Ok(())
    }
}
