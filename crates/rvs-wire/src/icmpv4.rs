//! ICMP for IPv4 (RFC 792), with the path-MTU extension of RFC 1191 and the
//! error-message rules of RFC 1812.
//!
//! rvs meets ICMPv4 in three roles:
//! - it *answers* pings to its VIPs and local addresses: [`Icmpv4Packet::make_echo_reply`]
//!   turns a request into a reply in place (one word of the header changes,
//!   so the checksum is fixed incrementally instead of re-summing the data);
//! - it *forwards* ICMP: echo through NAT (the identifier plays the part of a
//!   port, [`Icmpv4Packet::set_echo_ident`]) and errors about balanced flows,
//!   whose [`Icmpv4Packet::quoted`] packet tells which connection they are about;
//! - it *originates* errors: "fragmentation needed" when a packet with DF set
//!   does not fit the next hop (path-MTU discovery must keep working through
//!   the balancer) and "time exceeded". [`Icmpv4Repr::frag_needed`] and friends
//!   quote the offending packet truncated so the whole error stays within the
//!   576 bytes every IPv4 host must accept (RFC 1812 §4.3.2.3), and
//!   [`error_allowed_for`] applies the RFC 1812 §4.3.2.7 list of packets that
//!   must never cause an error.
//!
//! # Invariants
//! [`Icmpv4Packet::parse`] only requires the 8-byte header (type, code,
//! checksum, four type-specific bytes): ICMP carries no length field, the
//! message runs to the end of the IP payload. Every accessor after that reads
//! inside the header or returns the payload slice, so none can fail. Accessors
//! whose meaning depends on the type (`echo_ident`, `next_hop_mtu`, ...)
//! return `None` for other types rather than reinterpret unrelated bytes.
//! The checksum covers the whole message (no pseudo-header in ICMPv4) and is
//! not verified by `parse`: call [`Icmpv4Packet::verify_checksum`].

use core::fmt;
use core::net::Ipv4Addr;

use zerocopy::network_endian::U16;
use zerocopy::{
    FromBytes, Immutable, IntoBytes, KnownLayout, Ref, SplitByteSlice, SplitByteSliceMut, Unaligned,
};

#[cfg(test)]
use crate::checksum; // named by the tests through `use super::*`
use crate::checksum::Checksum;
use crate::icmp_common::{self, IcmpHeader, IcmpMessage, IcmpVersion, pair};
use crate::ipv4::Ipv4Header;
use crate::{Error, Result};

/// ICMPv4 message types (IANA "ICMP Type Numbers") rvs interprets.
pub mod msg_type {
    /// Echo reply (RFC 792).
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable (RFC 792, RFC 1191 for code 4).
    pub const DST_UNREACHABLE: u8 = 3;
    /// Source quench (deprecated by RFC 6633, still an error message).
    pub const SOURCE_QUENCH: u8 = 4;
    /// Redirect (RFC 792).
    pub const REDIRECT: u8 = 5;
    /// Echo request (RFC 792).
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded (RFC 792).
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem (RFC 792).
    pub const PARAM_PROBLEM: u8 = 12;
    /// Timestamp request (RFC 792).
    pub const TIMESTAMP: u8 = 13;
    /// Timestamp reply (RFC 792).
    pub const TIMESTAMP_REPLY: u8 = 14;

    /// True for the error messages, the ones that quote an offending packet
    /// (RFC 1812 §4.3.2.7 must never answer these with another error).
    pub const fn is_error(t: u8) -> bool {
        matches!(
            t,
            DST_UNREACHABLE | SOURCE_QUENCH | REDIRECT | TIME_EXCEEDED | PARAM_PROBLEM
        )
    }
}

/// Codes of "destination unreachable" (RFC 792, RFC 1122, RFC 1812).
pub mod unreachable {
    /// Network unreachable.
    pub const NET: u8 = 0;
    /// Host unreachable.
    pub const HOST: u8 = 1;
    /// Protocol unreachable.
    pub const PROTOCOL: u8 = 2;
    /// Port unreachable.
    pub const PORT: u8 = 3;
    /// Fragmentation needed and DF set; carries the next-hop MTU (RFC 1191).
    pub const FRAG_NEEDED: u8 = 4;
    /// Source route failed.
    pub const SOURCE_ROUTE_FAILED: u8 = 5;
    /// Destination network unknown.
    pub const NET_UNKNOWN: u8 = 6;
    /// Destination host unknown.
    pub const HOST_UNKNOWN: u8 = 7;
    /// Communication administratively prohibited (RFC 1812).
    pub const ADMIN_PROHIBITED: u8 = 13;
}

/// Codes of "time exceeded" (RFC 792).
pub mod time_exceeded {
    /// TTL reached zero in transit.
    pub const TTL: u8 = 0;
    /// Fragment reassembly time exceeded.
    pub const REASSEMBLY: u8 = 1;
}

/// The 8-byte header every ICMPv4 message starts with.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Debug, Clone, Copy)]
#[repr(C)]
pub struct Icmpv4Header {
    /// Message type ([`msg_type`]).
    pub msg_type: u8,
    /// Type-specific code.
    pub code: u8,
    /// Internet checksum over the whole message.
    pub checksum: U16,
    /// The type-specific "rest of header": identifier and sequence for echo,
    /// next-hop MTU for fragmentation needed, gateway for redirect, ...
    pub rest: [u8; 4],
}

/// Length of the ICMPv4 header.
pub const HEADER_LEN: usize = core::mem::size_of::<Icmpv4Header>();

/// The largest IPv4 datagram every host must accept, and the limit RFC 1812
/// §4.3.2.3 sets for an ICMP error including its IP header.
pub const MAX_ERROR_DATAGRAM: usize = 576;

/// Most bytes of an offending packet an error built here quotes: what fits
/// in [`MAX_ERROR_DATAGRAM`] after a 20-byte IPv4 header and the ICMP header.
pub const MAX_QUOTE_LEN: usize = MAX_ERROR_DATAGRAM - 20 - HEADER_LEN;

/// A view of an ICMPv4 message: header plus the rest of the IP payload.
pub struct Icmpv4Packet<B>(IcmpMessage<B, Icmpv4Header>);

impl IcmpVersion for Icmpv4Header {
    const VIEW_NAME: &'static str = "Icmpv4Packet";
    const ECHO_REQUEST: u8 = msg_type::ECHO_REQUEST;
    const ECHO_REPLY: u8 = msg_type::ECHO_REPLY;

    fn is_error(t: u8) -> bool {
        msg_type::is_error(t)
    }

    fn common(&self) -> &IcmpHeader {
        zerocopy::transmute_ref!(self)
    }

    fn common_mut(&mut self) -> &mut IcmpHeader {
        zerocopy::transmute_mut!(self)
    }
}

impl<B: SplitByteSlice> fmt::Debug for Icmpv4Packet<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Reads the quoted packet of an error message: the offending IPv4 header
/// and at least 8 bytes after it (RFC 792), checked against the quoted
/// header's own length field so a caller can read the quoted ports.
fn check_quote(quoted: &[u8]) -> Result<&[u8]> {
    let first = *quoted.first().ok_or(Error::Truncated)?;
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < 20 {
        return Err(Error::BadHeaderLength);
    }
    if quoted.len() < ihl + 8 {
        return Err(Error::Truncated);
    }
    Ok(quoted)
}

impl<B: SplitByteSlice> Icmpv4Packet<B> {
    /// Checks that `bytes` (the IP payload) holds at least the 8-byte header.
    pub fn parse(bytes: B) -> Result<Self> {
        IcmpMessage::parse(bytes).map(Icmpv4Packet)
    }

    /// The header.
    pub fn header(&self) -> &Icmpv4Header {
        self.0.header()
    }

    /// The message type.
    pub fn msg_type(&self) -> u8 {
        self.0.msg_type()
    }

    /// The code.
    pub fn code(&self) -> u8 {
        self.0.code()
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        self.0.checksum()
    }

    /// The four type-specific header bytes.
    pub fn rest_of_header(&self) -> [u8; 4] {
        self.0.rest_of_header()
    }

    /// Everything after the 8-byte header: echo data, or the quoted packet.
    pub fn payload(&self) -> &[u8] {
        self.0.payload()
    }

    /// Length of the whole message (header and payload).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true: a parsed message has at least its header. Present so
    /// `len` has its usual companion.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// True for error messages (destination unreachable, redirect, time
    /// exceeded, parameter problem, source quench).
    pub fn is_error(&self) -> bool {
        self.0.is_error()
    }

    /// True for an echo request or reply (the messages with an identifier).
    pub fn is_echo(&self) -> bool {
        self.0.is_echo()
    }

    /// The echo identifier (the "port" of ping, rewritten by echo NAT).
    pub fn echo_ident(&self) -> Option<u16> {
        self.0.echo_ident()
    }

    /// The echo sequence number.
    pub fn echo_seq(&self) -> Option<u16> {
        self.0.echo_seq()
    }

    /// The next-hop MTU of a "fragmentation needed" (RFC 1191 §4). `Some(0)`
    /// from a pre-RFC 1191 router that leaves the field zero: the sender then
    /// has to guess (RFC 1191 §5 plateau table).
    pub fn next_hop_mtu(&self) -> Option<u16> {
        let (_, mtu) = icmp_common::halves(self.rest_of_header());
        (self.msg_type() == msg_type::DST_UNREACHABLE && self.code() == unreachable::FRAG_NEEDED)
            .then_some(mtu)
    }

    /// The gateway of a redirect.
    pub fn gateway(&self) -> Option<Ipv4Addr> {
        (self.msg_type() == msg_type::REDIRECT).then_some(Ipv4Addr::from(self.rest_of_header()))
    }

    /// The pointer of a parameter problem (offset of the faulty octet in the
    /// quoted header).
    pub fn pointer(&self) -> Option<u8> {
        let [p, _, _, _] = self.rest_of_header();
        (self.msg_type() == msg_type::PARAM_PROBLEM).then_some(p)
    }

    /// The quoted original packet of an error message: its IPv4 header and at
    /// least the 8 bytes after it (ports for TCP/UDP, type/code/id for ICMP),
    /// ready for [`crate::ipv4`]. The quoted header's length fields describe
    /// the *original* packet, which is usually longer than the quote.
    ///
    /// [`Error::Unsupported`] if this is not an error message;
    /// [`Error::BadHeaderLength`] or [`Error::Truncated`] if the quote is too
    /// short to identify the flow.
    pub fn quoted(&self) -> Result<&[u8]> {
        if !self.is_error() {
            return Err(Error::Unsupported);
        }
        check_quote(self.payload())
    }

    /// The quoted packet split into its fixed IPv4 header and the bytes after
    /// the header and its options: the start of the offending TCP/UDP/ICMP
    /// header, at least 8 bytes (ports, or ICMP type, code and identifier).
    /// The header's total length and checksum describe the original packet;
    /// [`crate::ipv4::Ipv4Packet::parse`] would reject the quote as truncated.
    /// Errors as [`Icmpv4Packet::quoted`], and [`Error::BadVersion`] if the
    /// quote is not IPv4.
    pub fn quoted_ipv4(&self) -> Result<(&Ipv4Header, &[u8])> {
        let q = self.quoted()?;
        let (hdr, _) = Ipv4Header::ref_from_prefix(q).map_err(|_| Error::Truncated)?;
        if hdr.version() != 4 {
            return Err(Error::BadVersion);
        }
        let l4 = q.get(hdr.header_len()..).ok_or(Error::Truncated)?;
        Ok((hdr, l4))
    }

    /// True if the checksum over the whole message verifies.
    pub fn verify_checksum(&self) -> bool {
        self.0.verify_checksum(Checksum::new())
    }

    /// Splits the view into its header and payload.
    pub fn into_parts(self) -> (Ref<B, Icmpv4Header>, B) {
        self.0.into_parts()
    }
}

impl<B: SplitByteSliceMut> Icmpv4Packet<B> {
    /// The header, writable (the checksum is not kept right).
    pub fn header_mut(&mut self) -> &mut Icmpv4Header {
        self.0.header_mut()
    }

    /// The payload, writable (the checksum is not kept right: follow with
    /// [`Icmpv4Packet::update_checksum`] or [`Icmpv4Packet::fill_checksum`]).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        self.0.payload_mut()
    }

    /// [`Icmpv4Packet::quoted_ipv4`], writable: NAT rewrites the quoted
    /// addresses and ports so the error reaches the flow's other side in its
    /// own terms. [`Ipv4Header`]'s setters keep the *quoted* header checksum
    /// right; the ICMP checksum is not: finish with
    /// [`Icmpv4Packet::fill_checksum`] (errors are at most 576 bytes).
    pub fn quoted_ipv4_mut(&mut self) -> Result<(&mut Ipv4Header, &mut [u8])> {
        self.quoted_ipv4()?;
        let (hdr, rest) =
            Ipv4Header::mut_from_prefix(self.payload_mut()).map_err(|_| Error::Truncated)?;
        let options = hdr
            .header_len()
            .saturating_sub(core::mem::size_of::<Ipv4Header>());
        let l4 = rest.get_mut(options..).ok_or(Error::Truncated)?;
        Ok((hdr, l4))
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, csum: u16) {
        self.0.set_checksum(csum);
    }

    /// Recomputes the checksum over the whole message.
    pub fn fill_checksum(&mut self) {
        self.0.fill_checksum(Checksum::new());
    }

    /// Adjusts the checksum after the 16-bit aligned bytes `old` of the message
    /// were replaced by `new` (RFC 1624), e.g. an address or port inside the
    /// quoted packet rewritten by NAT. "Aligned" means at an even offset from
    /// the start of the ICMP message.
    pub fn update_checksum(&mut self, old: &[u8], new: &[u8]) {
        self.0.update_checksum(old, new);
    }

    /// Rewrites the echo identifier, keeping the checksum right
    /// ([`Error::Unsupported`] if this is not an echo message).
    pub fn set_echo_ident(&mut self, ident: u16) -> Result<()> {
        self.0.set_echo_ident(ident)
    }

    /// Rewrites the echo sequence number, keeping the checksum right.
    pub fn set_echo_seq(&mut self, seq: u16) -> Result<()> {
        self.0.set_echo_seq(seq)
    }

    /// Sets type and code, keeping the checksum right.
    pub fn set_type_code(&mut self, msg_type: u8, code: u8) {
        self.0.set_type_code(msg_type, code);
    }

    /// Turns an echo request into its reply in place: only the type changes
    /// (identifier, sequence and data are echoed, RFC 792), and the checksum
    /// is updated for that one word. The caller swaps the IP addresses.
    /// [`Error::Unsupported`] if this is not an echo request.
    pub fn make_echo_reply(&mut self) -> Result<()> {
        self.0.make_echo_reply()
    }
}

/// A typed ICMPv4 message. Fields the RFCs mark unused are written as zero
/// and ignored on parse; message types rvs does not interpret are kept
/// whole as [`Icmpv4Repr::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv4Repr<'a> {
    /// Echo request (type 8, code 0).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq: u16,
        /// Data, echoed by the reply.
        data: &'a [u8],
    },
    /// Echo reply (type 0, code 0).
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq: u16,
        /// Data of the request.
        data: &'a [u8],
    },
    /// Destination unreachable (type 3).
    DstUnreachable {
        /// Code ([`unreachable`](mod@unreachable)).
        code: u8,
        /// Next-hop MTU: meaningful for [`unreachable::FRAG_NEEDED`]
        /// (RFC 1191), zero otherwise.
        next_hop_mtu: u16,
        /// The offending packet (IP header and at least 8 bytes).
        quoted: &'a [u8],
    },
    /// Redirect (type 5).
    Redirect {
        /// Code (0 network, 1 host, 2 ToS and network, 3 ToS and host).
        code: u8,
        /// The better first hop.
        gateway: Ipv4Addr,
        /// The offending packet.
        quoted: &'a [u8],
    },
    /// Time exceeded (type 11).
    TimeExceeded {
        /// Code ([`time_exceeded`]).
        code: u8,
        /// The offending packet.
        quoted: &'a [u8],
    },
    /// Parameter problem (type 12).
    ParamProblem {
        /// Code (0: the pointer locates the error).
        code: u8,
        /// Offset of the faulty octet in the quoted header.
        pointer: u8,
        /// The offending packet.
        quoted: &'a [u8],
    },
    /// Any other message, header bytes kept as they are.
    Other {
        /// Message type.
        msg_type: u8,
        /// Code.
        code: u8,
        /// The four type-specific header bytes.
        rest: [u8; 4],
        /// The payload.
        data: &'a [u8],
    },
}

impl<'a> Icmpv4Repr<'a> {
    /// Interprets a parsed message. Echo with a non-zero code (not defined by
    /// RFC 792) is kept as [`Icmpv4Repr::Other`] so nothing is lost.
    pub fn parse<B: SplitByteSlice>(packet: &'a Icmpv4Packet<B>) -> Self {
        let [r0, r1, r2, r3] = packet.rest_of_header();
        let code = packet.code();
        let data = packet.payload();
        let (hi, lo) = icmp_common::halves(packet.rest_of_header());
        match (packet.msg_type(), code) {
            (msg_type::ECHO_REQUEST, 0) => Icmpv4Repr::EchoRequest {
                ident: hi,
                seq: lo,
                data,
            },
            (msg_type::ECHO_REPLY, 0) => Icmpv4Repr::EchoReply {
                ident: hi,
                seq: lo,
                data,
            },
            (msg_type::DST_UNREACHABLE, _) => Icmpv4Repr::DstUnreachable {
                code,
                next_hop_mtu: lo,
                quoted: data,
            },
            (msg_type::REDIRECT, _) => Icmpv4Repr::Redirect {
                code,
                gateway: Ipv4Addr::new(r0, r1, r2, r3),
                quoted: data,
            },
            (msg_type::TIME_EXCEEDED, _) => Icmpv4Repr::TimeExceeded { code, quoted: data },
            (msg_type::PARAM_PROBLEM, _) => Icmpv4Repr::ParamProblem {
                code,
                pointer: r0,
                quoted: data,
            },
            (t, _) => Icmpv4Repr::Other {
                msg_type: t,
                code,
                rest: [r0, r1, r2, r3],
                data,
            },
        }
    }

    /// Type, code, rest-of-header and payload as they go on the wire.
    fn wire(&self) -> (u8, u8, [u8; 4], &'a [u8]) {
        match *self {
            Icmpv4Repr::EchoRequest { ident, seq, data } => {
                (msg_type::ECHO_REQUEST, 0, pair(ident, seq), data)
            }
            Icmpv4Repr::EchoReply { ident, seq, data } => {
                (msg_type::ECHO_REPLY, 0, pair(ident, seq), data)
            }
            Icmpv4Repr::DstUnreachable {
                code,
                next_hop_mtu,
                quoted,
            } => (
                msg_type::DST_UNREACHABLE,
                code,
                pair(0, next_hop_mtu),
                quoted,
            ),
            Icmpv4Repr::Redirect {
                code,
                gateway,
                quoted,
            } => (msg_type::REDIRECT, code, gateway.octets(), quoted),
            Icmpv4Repr::TimeExceeded { code, quoted } => {
                (msg_type::TIME_EXCEEDED, code, [0; 4], quoted)
            }
            Icmpv4Repr::ParamProblem {
                code,
                pointer,
                quoted,
            } => (msg_type::PARAM_PROBLEM, code, [pointer, 0, 0, 0], quoted),
            Icmpv4Repr::Other {
                msg_type,
                code,
                rest,
                data,
            } => (msg_type, code, rest, data),
        }
    }

    /// Bytes [`Icmpv4Repr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        let (_, _, _, data) = self.wire();
        HEADER_LEN + data.len()
    }

    /// Writes the whole message at the start of `buf`, checksum included;
    /// returns the bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let (t, code, rest, data) = self.wire();
        let len = HEADER_LEN + data.len();
        let msg = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        let (hdr, body) = IcmpHeader::mut_from_prefix(msg).map_err(|_| Error::BufferTooSmall)?;
        *hdr = IcmpHeader::new(t, code, rest);
        body.copy_from_slice(data);
        let mut p = Icmpv4Packet::parse(msg)?;
        p.fill_checksum();
        Ok(len)
    }

    /// The quoted packet of an error message, if this is one.
    pub fn quoted(&self) -> Option<&'a [u8]> {
        match *self {
            Icmpv4Repr::DstUnreachable { quoted, .. }
            | Icmpv4Repr::Redirect { quoted, .. }
            | Icmpv4Repr::TimeExceeded { quoted, .. }
            | Icmpv4Repr::ParamProblem { quoted, .. } => Some(quoted),
            _ => None,
        }
    }

    /// "Fragmentation needed and DF set" (type 3 code 4) about `offending`
    /// (the whole IPv4 packet that did not fit), telling its sender the
    /// next-hop `mtu`. The quote is cut to [`MAX_QUOTE_LEN`].
    pub fn frag_needed(mtu: u16, offending: &'a [u8]) -> Self {
        Icmpv4Repr::DstUnreachable {
            code: unreachable::FRAG_NEEDED,
            next_hop_mtu: mtu,
            quoted: quote(offending),
        }
    }

    /// "Destination unreachable" with `code` (not frag-needed: use
    /// [`Icmpv4Repr::frag_needed`]) about `offending`, quote cut to [`MAX_QUOTE_LEN`].
    pub fn dst_unreachable(code: u8, offending: &'a [u8]) -> Self {
        Icmpv4Repr::DstUnreachable {
            code,
            next_hop_mtu: 0,
            quoted: quote(offending),
        }
    }

    /// "Time exceeded" with `code` ([`time_exceeded::TTL`] when forwarding
    /// decremented the TTL to zero), quote cut to [`MAX_QUOTE_LEN`].
    pub fn time_exceeded(code: u8, offending: &'a [u8]) -> Self {
        Icmpv4Repr::TimeExceeded {
            code,
            quoted: quote(offending),
        }
    }

    /// "Parameter problem" pointing at octet `pointer` of the offending
    /// header, quote cut to [`MAX_QUOTE_LEN`].
    pub fn param_problem(pointer: u8, offending: &'a [u8]) -> Self {
        Icmpv4Repr::ParamProblem {
            code: 0,
            pointer,
            quoted: quote(offending),
        }
    }
}

/// The part of an offending packet an error quotes: all of it up to
/// [`MAX_QUOTE_LEN`] bytes, so the error fits in 576 bytes (RFC 1812
/// §4.3.2.3 asks for as much as fits, RFC 792's minimum being header + 8).
pub fn quote(offending: &[u8]) -> &[u8] {
    offending.get(..MAX_QUOTE_LEN).unwrap_or(offending)
}

/// Whether RFC 1812 §4.3.2.7 allows sending an ICMP error about the IPv4
/// packet `offending`. It forbids errors about: ICMP error messages, any
/// fragment but the first, packets to a broadcast or multicast destination,
/// and packets whose source does not name a single host (unspecified,
/// broadcast, multicast, loopback, class E). Subnet-directed broadcasts
/// need the routing table and are left to the caller. Unparseable input
/// gives `false`: answering garbage is never required.
pub fn error_allowed_for(offending: &[u8]) -> bool {
    let Some(hdr) = offending.first_chunk::<20>() else {
        return false;
    };
    let ihl = usize::from(hdr[0] & 0x0f) * 4;
    if hdr[0] >> 4 != 4 || ihl < 20 {
        return false;
    }
    let frag_offset = u16::from_be_bytes([hdr[6], hdr[7]]) & 0x1fff;
    if frag_offset != 0 {
        return false;
    }
    let src = Ipv4Addr::new(hdr[12], hdr[13], hdr[14], hdr[15]);
    let dst = Ipv4Addr::new(hdr[16], hdr[17], hdr[18], hdr[19]);
    if dst.is_broadcast() || dst.is_multicast() {
        return false;
    }
    if src.is_unspecified()
        || src.is_broadcast()
        || src.is_multicast()
        || src.is_loopback()
        || src.octets()[0] >= 240
    {
        return false;
    }
    if hdr[9] == crate::ip_proto::ICMP {
        // An ICMP packet whose type we cannot see is treated as an error
        // message: better silent than a storm of errors about errors.
        return match offending.get(ihl) {
            Some(&t) => !msg_type::is_error(t),
            None => false,
        };
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Captures made for this module with tcpdump in three network namespaces
    // (A 10.201.1.1 — R 10.201.1.2/10.201.2.1, 1280-byte MTU towards
    // B 10.201.2.2), since deleted. The bytes are the ICMP message, i.e. the
    // IPv4 payload of the captured frame.

    /// `10.201.1.1 > 10.201.1.2: ICMP echo request, id 11666, seq 1, length 24`
    /// (`ping -c1 -s 16`: the 16 data bytes are ping's timeval).
    const ECHO_REQUEST: [u8; 24] = [
        0x08, 0x00, 0x73, 0x3a, 0x2d, 0x92, 0x00, 0x01, 0x00, 0x36, 0x02, 0x6b, 0x00, 0x00, 0x00,
        0x00, 0x50, 0x91, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];

    /// `10.201.1.2 > 10.201.1.1: ICMP echo reply, id 11666, seq 1, length 24`,
    /// the Linux kernel's answer to [`ECHO_REQUEST`].
    const ECHO_REPLY: [u8; 24] = [
        0x00, 0x00, 0x7b, 0x3a, 0x2d, 0x92, 0x00, 0x01, 0x00, 0x36, 0x02, 0x6b, 0x00, 0x00, 0x00,
        0x00, 0x50, 0x91, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];

    /// `10.201.1.2 > 10.201.1.1: ICMP time exceeded in-transit, length 52`,
    /// R's answer to `ping -t 1 10.201.2.2`; it quotes the whole request
    /// `IP (ttl 1, id 63307, flags [DF], proto ICMP, length 44) 10.201.1.1 >
    /// 10.201.2.2: ICMP echo request, id 11720, seq 1`.
    const TIME_EXCEEDED: [u8; 52] = [
        0x0b, 0x00, 0xf4, 0xff, 0x00, 0x00, 0x00, 0x00, // ICMP header
        0x45, 0x00, 0x00, 0x2c, 0xf7, 0x4b, 0x40, 0x00, 0x01, 0x01, 0x69, 0xf1, 0x0a, 0xc9, 0x01,
        0x01, 0x0a, 0xc9, 0x02, 0x02, // quoted IPv4 header
        0x08, 0x00, 0xd8, 0xee, 0x2d, 0xc8, 0x00, 0x01, 0x08, 0x36, 0x02, 0x6b, 0x00, 0x00, 0x00,
        0x00, 0xdb, 0xa6, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x00, // quoted echo request
    ];

    /// The first 60 bytes of `10.201.1.2 > 10.201.1.1: ICMP 10.201.2.2
    /// unreachable - need to frag (mtu 1280), length 556` (the IP datagram is
    /// 576 bytes: Linux cuts its quote at the RFC 1812 limit). It quotes
    /// `IP (id 1669, flags [DF], proto TCP, length 3052) 10.201.1.1.54370 >
    /// 10.201.2.2.5002: Flags [P.], seq 3128635015:3128638015, ack 940860827,
    /// win 63, options [nop,nop,TS val 2460196308 ecr 3855717813], length 3000`;
    /// the remaining 496 bytes of the quote are the segment's data, all `x`
    /// (0x78), see [`frag_needed_capture`].
    const FRAG_NEEDED_HEAD: [u8; 60] = [
        0x03, 0x04, 0x7a, 0xd2, 0x00, 0x00, 0x05, 0x00, // ICMP header, MTU 0x0500
        0x45, 0x00, 0x0b, 0xec, 0x06, 0x85, 0x40, 0x00, 0x40, 0x06, 0x0f, 0xf3, 0x0a, 0xc9, 0x01,
        0x01, 0x0a, 0xc9, 0x02, 0x02, // quoted IPv4 header
        0xd4, 0x62, 0x13, 0x8a, 0xba, 0x7b, 0x2e, 0x87, 0x38, 0x14, 0x65, 0x9b, 0x80, 0x18, 0x00,
        0x3f, 0x24, 0x73, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a, 0x92, 0xa3, 0x9d, 0xd4, 0xe5, 0xd1,
        0x95, 0xb5, // quoted TCP header with timestamps
    ];

    fn frag_needed_capture() -> Vec<u8> {
        let mut v = FRAG_NEEDED_HEAD.to_vec();
        v.resize(556, b'x');
        v
    }

    #[test]
    fn echo_known_answer() {
        let p = Icmpv4Packet::parse(&ECHO_REQUEST[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(p.msg_type(), msg_type::ECHO_REQUEST);
        assert_eq!(p.echo_ident(), Some(11666));
        assert_eq!(p.echo_seq(), Some(1));
        assert_eq!(p.next_hop_mtu(), None);
        assert_eq!(p.quoted(), Err(Error::Unsupported));
        assert_eq!(
            Icmpv4Repr::parse(&p),
            Icmpv4Repr::EchoRequest {
                ident: 11666,
                seq: 1,
                data: &ECHO_REQUEST[8..]
            }
        );
        let r = Icmpv4Packet::parse(&ECHO_REPLY[..]).unwrap();
        assert!(r.verify_checksum());
        assert_eq!(r.msg_type(), msg_type::ECHO_REPLY);
        assert_eq!(r.echo_ident(), Some(11666));
    }

    #[test]
    fn request_becomes_the_captured_reply() {
        let mut buf = ECHO_REQUEST;
        let mut p = Icmpv4Packet::parse(&mut buf[..]).unwrap();
        p.make_echo_reply().unwrap();
        assert_eq!(buf, ECHO_REPLY);
        let mut p = Icmpv4Packet::parse(&mut buf[..]).unwrap();
        assert_eq!(p.make_echo_reply(), Err(Error::Unsupported));
    }

    #[test]
    fn emit_reproduces_captures() {
        for cap in [
            &ECHO_REQUEST[..],
            &ECHO_REPLY[..],
            &TIME_EXCEEDED[..],
            &frag_needed_capture(),
        ] {
            let p = Icmpv4Packet::parse(cap).unwrap();
            let repr = Icmpv4Repr::parse(&p);
            let mut out = vec![0u8; repr.buffer_len()];
            assert_eq!(repr.emit(&mut out), Ok(cap.len()));
            assert_eq!(&out[..], cap);
        }
    }

    #[test]
    fn time_exceeded_known_answer() {
        let p = Icmpv4Packet::parse(&TIME_EXCEEDED[..]).unwrap();
        assert!(p.verify_checksum());
        assert!(p.is_error());
        assert_eq!(p.code(), time_exceeded::TTL);
        let q = p.quoted().unwrap();
        assert_eq!(q, &TIME_EXCEEDED[8..]);
        // The quoted packet is the echo request that died: its ICMP header
        // follows the 20-byte IPv4 header.
        let inner = Icmpv4Packet::parse(&q[20..]).unwrap();
        assert_eq!(inner.echo_ident(), Some(11720));
        assert!(inner.verify_checksum());
        // Rebuilding the error from the quoted request gives the capture.
        let repr = Icmpv4Repr::time_exceeded(time_exceeded::TTL, q);
        let mut out = [0u8; 52];
        assert_eq!(repr.emit(&mut out), Ok(52));
        assert_eq!(out, TIME_EXCEEDED);
    }

    #[test]
    fn frag_needed_known_answer() {
        let cap = frag_needed_capture();
        let p = Icmpv4Packet::parse(&cap[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(p.next_hop_mtu(), Some(1280));
        let q = p.quoted().unwrap();
        assert_eq!(q.len(), MAX_QUOTE_LEN);
        assert_eq!(&q[20..22], &54370u16.to_be_bytes()); // quoted source port
        assert_eq!(&q[22..24], &5002u16.to_be_bytes());
        // Rvs's builder, given the whole 3052-byte offending packet, cuts the
        // quote exactly where Linux did and so produces the same bytes.
        let mut offending = q.to_vec();
        offending.resize(3052, b'x');
        assert!(error_allowed_for(&offending));
        let repr = Icmpv4Repr::frag_needed(1280, &offending);
        assert_eq!(repr.buffer_len() + 20, MAX_ERROR_DATAGRAM);
        let mut out = vec![0u8; repr.buffer_len()];
        repr.emit(&mut out).unwrap();
        assert_eq!(out, cap);
    }

    #[test]
    fn quoted_ipv4_header_and_ports() {
        let mut cap = frag_needed_capture();
        let p = Icmpv4Packet::parse(&cap[..]).unwrap();
        let (ip, l4) = p.quoted_ipv4().unwrap();
        assert_eq!(ip.src(), Ipv4Addr::new(10, 201, 1, 1));
        assert_eq!(ip.dst(), Ipv4Addr::new(10, 201, 2, 2));
        assert_eq!(ip.protocol(), crate::ip_proto::TCP);
        assert_eq!(ip.total_len(), 3052);
        assert_eq!(&l4[..4], &[0xd4, 0x62, 0x13, 0x8a]); // 54370 > 5002
        assert_eq!(l4.len(), MAX_QUOTE_LEN - 20);

        // NAT: the quoted destination becomes a VIP, its port the VIP's.
        let mut p = Icmpv4Packet::parse(&mut cap[..]).unwrap();
        let (ip, l4) = p.quoted_ipv4_mut().unwrap();
        ip.set_dst(Ipv4Addr::new(192, 0, 2, 80));
        l4[2..4].copy_from_slice(&80u16.to_be_bytes());
        p.fill_checksum();
        assert!(p.verify_checksum());
        let q = p.quoted().unwrap();
        assert_eq!(checksum::checksum(&q[..20]), 0); // quoted header still valid
        assert_eq!(&q[16..20], &[192, 0, 2, 80]);
        assert_eq!(&q[22..24], &[0, 80]);

        let p = Icmpv4Packet::parse(&ECHO_REQUEST[..]).unwrap();
        assert_eq!(p.quoted_ipv4().unwrap_err(), Error::Unsupported);
        let mut v6 = TIME_EXCEEDED;
        v6[8] = 0x65;
        let p = Icmpv4Packet::parse(&v6[..]).unwrap();
        assert_eq!(p.quoted_ipv4().unwrap_err(), Error::BadVersion);
        // With options: the L4 bytes start after them.
        let mut opt = TIME_EXCEEDED.to_vec();
        opt[8] = 0x46;
        opt.splice(28..28, [1, 1, 1, 0]);
        let p = Icmpv4Packet::parse(&opt[..]).unwrap();
        assert_eq!(&p.quoted_ipv4().unwrap().1[..2], &[0x08, 0x00]);
        let mut p = Icmpv4Packet::parse(&mut opt[..]).unwrap();
        assert_eq!(&p.quoted_ipv4_mut().unwrap().1[..2], &[0x08, 0x00]);
    }

    #[test]
    fn every_truncation_is_an_error() {
        for cap in [
            &ECHO_REQUEST[..],
            &TIME_EXCEEDED[..],
            &frag_needed_capture(),
        ] {
            for n in 0..HEADER_LEN {
                assert_eq!(
                    Icmpv4Packet::parse(&cap[..n]).unwrap_err(),
                    Error::Truncated
                );
            }
        }
        // An error message must quote the IPv4 header and 8 more bytes.
        for cap in [&TIME_EXCEEDED[..], &frag_needed_capture()] {
            for n in HEADER_LEN..cap.len() {
                let p = Icmpv4Packet::parse(&cap[..n]).unwrap();
                let q = p.quoted();
                if n < HEADER_LEN + 28 {
                    assert_eq!(q, Err(Error::Truncated), "{n}");
                } else {
                    assert_eq!(q, Ok(&cap[8..n]));
                }
                // A cut message verifies only when the cut-off part sums to
                // zero (e.g. exactly a whole quoted packet with valid sums).
                assert_eq!(p.verify_checksum(), checksum::checksum(&cap[..n]) == 0);
                if n == cap.len() - 1 && cap[n] != 0 {
                    assert!(!p.verify_checksum());
                }
            }
        }
    }

    #[test]
    fn bad_quoted_header_length() {
        let mut buf = TIME_EXCEEDED;
        buf[8] = 0x44; // IHL 16 bytes
        let p = Icmpv4Packet::parse(&buf[..]).unwrap();
        assert_eq!(p.quoted(), Err(Error::BadHeaderLength));
        buf[8] = 0x4f; // IHL 60 bytes: more than is quoted
        let p = Icmpv4Packet::parse(&buf[..]).unwrap();
        assert_eq!(p.quoted(), Err(Error::Truncated));
    }

    #[test]
    fn errors_not_allowed_about() {
        let quoted_request = &TIME_EXCEEDED[8..];
        assert!(error_allowed_for(quoted_request));
        // ...but never about an ICMP error (the time exceeded as an IP packet).
        let mut err_pkt = TIME_EXCEEDED[8..28].to_vec();
        err_pkt[12..16].copy_from_slice(&[10, 201, 1, 2]);
        err_pkt.extend_from_slice(&TIME_EXCEEDED);
        assert!(!error_allowed_for(&err_pkt));
        let mutate = |at: usize, val: &[u8]| {
            let mut v = quoted_request.to_vec();
            v[at..at + val.len()].copy_from_slice(val);
            error_allowed_for(&v)
        };
        assert!(!mutate(6, &[0x20, 0x10])); // non-initial fragment
        assert!(mutate(6, &[0x20, 0x00])); // first fragment (MF only)
        assert!(!mutate(16, &[255, 255, 255, 255]));
        assert!(!mutate(16, &[224, 0, 0, 1]));
        assert!(!mutate(12, &[0, 0, 0, 0]));
        assert!(!mutate(12, &[127, 0, 0, 1]));
        assert!(!mutate(12, &[240, 0, 0, 1]));
        assert!(!mutate(0, &[0x65])); // not IPv4
        assert!(!error_allowed_for(&quoted_request[..19]));
        assert!(!error_allowed_for(&quoted_request[..20])); // ICMP type unseen
    }

    #[test]
    fn nat_helpers_keep_checksum() {
        let mut buf = ECHO_REQUEST;
        let mut p = Icmpv4Packet::parse(&mut buf[..]).unwrap();
        p.set_echo_ident(0xbeef).unwrap();
        p.set_echo_seq(0x1234).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(p.echo_ident(), Some(0xbeef));
        assert_eq!(p.echo_seq(), Some(0x1234));
        let mut buf = TIME_EXCEEDED;
        let mut p = Icmpv4Packet::parse(&mut buf[..]).unwrap();
        assert_eq!(p.set_echo_ident(1), Err(Error::Unsupported));
        // Rewrite the quoted destination address like NAT would.
        let old = [10, 201, 2, 2];
        let new = [192, 0, 2, 7];
        p.payload_mut()[16..20].copy_from_slice(&new);
        p.update_checksum(&old, &new);
        assert!(p.verify_checksum());
    }

    fn etherparse_checksum(msg: &[u8]) -> Option<u16> {
        let (h, rest) = etherparse::Icmpv4Header::from_slice(msg).ok()?;
        let hl = h.header_len();
        // Compare only where etherparse represents the header bytes exactly.
        (h.to_bytes()[..] == msg[..hl]).then(|| h.icmp_type.calc_checksum(rest))
    }

    fn repr_strategy() -> impl Strategy<Value = (u8, u8, u8, u16, u16, [u8; 4], Vec<u8>)> {
        (
            0u8..7,
            any::<u8>(),
            any::<u8>(),
            any::<u16>(),
            any::<u16>(),
            any::<[u8; 4]>(),
            proptest::collection::vec(any::<u8>(), 0..700),
        )
    }

    fn build<'a>(
        (kind, t, code, a, b, rest, data): &'a (u8, u8, u8, u16, u16, [u8; 4], Vec<u8>),
    ) -> Icmpv4Repr<'a> {
        let (t, code, a, b, rest) = (*t, *code, *a, *b, *rest);
        match kind {
            0 => Icmpv4Repr::EchoRequest {
                ident: a,
                seq: b,
                data,
            },
            1 => Icmpv4Repr::EchoReply {
                ident: a,
                seq: b,
                data,
            },
            2 => Icmpv4Repr::DstUnreachable {
                code,
                next_hop_mtu: if code == unreachable::FRAG_NEEDED {
                    b
                } else {
                    0
                },
                quoted: data,
            },
            3 => Icmpv4Repr::Redirect {
                code,
                gateway: Ipv4Addr::from(rest),
                quoted: data,
            },
            4 => Icmpv4Repr::TimeExceeded { code, quoted: data },
            5 => Icmpv4Repr::ParamProblem {
                code,
                pointer: if code == 0 { t } else { 0 },
                quoted: data,
            },
            _ => {
                let t = if matches!(t, 0 | 3 | 5 | 8 | 11 | 12) {
                    42
                } else {
                    t
                };
                Icmpv4Repr::Other {
                    msg_type: t,
                    code,
                    rest,
                    data,
                }
            }
        }
    }

    proptest! {
        #[test]
        fn round_trip(input in repr_strategy()) {
            let repr = build(&input);
            let mut buf = vec![0u8; repr.buffer_len()];
            let n = repr.emit(&mut buf).unwrap();
            prop_assert_eq!(n, buf.len());
            let p = Icmpv4Packet::parse(&buf[..]).unwrap();
            prop_assert!(p.verify_checksum());
            prop_assert_eq!(Icmpv4Repr::parse(&p), repr);
            prop_assert_eq!(checksum::checksum(&buf), 0);
            // Independent oracle for the checksum.
            let ours = u16::from_be_bytes([buf[2], buf[3]]);
            match etherparse_checksum(&buf) {
                Some(theirs) => prop_assert_eq!(ours, theirs),
                None => {
                    let other = matches!(repr, Icmpv4Repr::Other { .. });
                    prop_assert!(other);
                }
            }
        }

        #[test]
        fn echo_rewrites_match_recompute(data in proptest::collection::vec(any::<u8>(), 0..200),
                                         ident in any::<u16>(), seq in any::<u16>(),
                                         new_ident in any::<u16>(), new_seq in any::<u16>()) {
            let req = Icmpv4Repr::EchoRequest { ident, seq, data: &data };
            let mut buf = vec![0u8; req.buffer_len()];
            req.emit(&mut buf).unwrap();
            let mut p = Icmpv4Packet::parse(&mut buf[..]).unwrap();
            p.set_echo_ident(new_ident).unwrap();
            p.set_echo_seq(new_seq).unwrap();
            p.make_echo_reply().unwrap();
            prop_assert!(p.verify_checksum());
            let want = Icmpv4Repr::EchoReply { ident: new_ident, seq: new_seq, data: &data };
            let mut expect = vec![0u8; want.buffer_len()];
            want.emit(&mut expect).unwrap();
            // Same bytes up to the two representations of a zero checksum.
            prop_assert_eq!(&buf[4..], &expect[4..]);
            prop_assert_eq!(&buf[..2], &expect[..2]);
        }

        #[test]
        fn quote_is_bounded(len in 0usize..2000) {
            let offending = vec![0x45u8; len];
            let repr = Icmpv4Repr::time_exceeded(0, &offending);
            prop_assert_eq!(repr.buffer_len(), HEADER_LEN + len.min(MAX_QUOTE_LEN));
            prop_assert!(repr.buffer_len() + 20 <= MAX_ERROR_DATAGRAM);
        }

        #[test]
        fn arbitrary_bytes_never_panic(mut data in proptest::collection::vec(any::<u8>(), 0..128)) {
            if let Ok(p) = Icmpv4Packet::parse(&data[..]) {
                let _ = (p.quoted(), p.verify_checksum(), p.next_hop_mtu(), p.gateway(), p.pointer());
                let repr = Icmpv4Repr::parse(&p);
                let mut out = vec![0u8; repr.buffer_len()];
                prop_assert_eq!(repr.emit(&mut out), Ok(data.len()));
            }
            let _ = error_allowed_for(&data);
            if let Ok(mut p) = Icmpv4Packet::parse(&mut data[..]) {
                let _ = p.set_echo_ident(7);
                let _ = p.make_echo_reply();
                p.fill_checksum();
                prop_assert!(p.verify_checksum());
            }
        }

        #[test]
        fn emit_into_short_buffer_fails(data in proptest::collection::vec(any::<u8>(), 0..64),
                                        short in any::<proptest::sample::Index>()) {
            let repr = Icmpv4Repr::EchoRequest { ident: 1, seq: 2, data: &data };
            let n = short.index(repr.buffer_len());
            let mut buf = vec![0u8; n];
            prop_assert_eq!(repr.emit(&mut buf), Err(Error::BufferTooSmall));
        }
    }
}
