//! ICMP for IPv6 (RFC 4443) and the neighbour-discovery messages rvs needs
//! (RFC 4861).
//!
//! ICMPv6 does more than its IPv4 namesake, and rvs uses all of it:
//! - errors and echo, as for IPv4: answering pings to VIPs in place
//!   ([`Icmpv6Packet::make_echo_reply`]), echo NAT ([`Icmpv6Packet::set_echo_ident`]),
//!   reading the [`Icmpv6Packet::quoted`] packet of an error about a balanced
//!   flow, and originating "packet too big" (IPv6 routers never fragment, so
//!   path-MTU discovery depends entirely on it) and "time exceeded", quoting
//!   the offending packet within the 1280-byte minimum MTU (RFC 4443 §2.4(c));
//! - **neighbour discovery** replaces ARP: the balancer answers neighbour
//!   solicitations for its addresses ([`Icmpv6Repr::answer_solicitation`]),
//!   announces addresses it takes over with unsolicited advertisements
//!   ([`Icmpv6Repr::unsolicited_advert`], the analogue of gratuitous ARP that
//!   VRRP failover needs), and solicits its next hops.
//!
//! # Invariants
//! [`Icmpv6Packet::parse`] requires only the 8-byte header; the message runs
//! to the end of the IPv6 payload. Type-specific accessors return `None` (or
//! [`Error::Unsupported`]) for other types and [`Error::Truncated`] when a
//! fixed part is missing. Neighbour-discovery options are read by
//! [`NdpOptions`], which never allocates and rejects an option of length zero
//! (RFC 4861 §4.6: it would loop forever) or one that runs past the message.
//!
//! The checksum covers an IPv6 pseudo-header (RFC 4443 §2.3), so
//! verification, filling and emitting take the source and destination
//! addresses. What RFC 4861 §7.1 asks of the *IP* header (hop limit 255,
//! source rules) is the caller's to check; [`Icmpv6Repr::parse`] checks the
//! ICMP side: code 0, lengths and options.

use core::fmt;
use core::net::Ipv6Addr;

use zerocopy::network_endian::U16;
use zerocopy::{
    FromBytes, Immutable, IntoBytes, KnownLayout, Ref, SplitByteSlice, SplitByteSliceMut, Unaligned,
};

use crate::checksum::{self, Checksum};
use crate::ethernet::MacAddr;
use crate::icmp_common::{self, IcmpHeader, IcmpMessage, IcmpVersion, pair};
use crate::ipv6::{ExtHeaders, Ipv6Header};
use crate::{Error, Result, ip_proto};

/// ICMPv6 message types (IANA "ICMPv6 Parameters").
pub mod msg_type {
    /// Destination unreachable (RFC 4443 §3.1).
    pub const DST_UNREACHABLE: u8 = 1;
    /// Packet too big (RFC 4443 §3.2).
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time exceeded (RFC 4443 §3.3).
    pub const TIME_EXCEEDED: u8 = 3;
    /// Parameter problem (RFC 4443 §3.4).
    pub const PARAM_PROBLEM: u8 = 4;
    /// Echo request (RFC 4443 §4.1).
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo reply (RFC 4443 §4.2).
    pub const ECHO_REPLY: u8 = 129;
    /// Router solicitation (RFC 4861 §4.1).
    pub const ROUTER_SOLICIT: u8 = 133;
    /// Router advertisement (RFC 4861 §4.2).
    pub const ROUTER_ADVERT: u8 = 134;
    /// Neighbour solicitation (RFC 4861 §4.3).
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    /// Neighbour advertisement (RFC 4861 §4.4).
    pub const NEIGHBOR_ADVERT: u8 = 136;
    /// Redirect (RFC 4861 §4.5).
    pub const REDIRECT: u8 = 137;

    /// Error messages are types 0–127 (RFC 4443 §2.1).
    pub const fn is_error(t: u8) -> bool {
        t < 128
    }
}

/// Codes of "destination unreachable" (RFC 4443 §3.1).
pub mod unreachable {
    /// No route to destination.
    pub const NO_ROUTE: u8 = 0;
    /// Communication administratively prohibited.
    pub const ADMIN_PROHIBITED: u8 = 1;
    /// Beyond scope of source address.
    pub const BEYOND_SCOPE: u8 = 2;
    /// Address unreachable.
    pub const ADDRESS: u8 = 3;
    /// Port unreachable.
    pub const PORT: u8 = 4;
    /// Source address failed ingress/egress policy.
    pub const SOURCE_POLICY: u8 = 5;
    /// Reject route to destination.
    pub const REJECT_ROUTE: u8 = 6;
}

/// Codes of "time exceeded" (RFC 4443 §3.3).
pub mod time_exceeded {
    /// Hop limit exceeded in transit.
    pub const HOP_LIMIT: u8 = 0;
    /// Fragment reassembly time exceeded.
    pub const REASSEMBLY: u8 = 1;
}

/// Codes of "parameter problem" (RFC 4443 §3.4).
pub mod param_problem {
    /// Erroneous header field encountered.
    pub const HEADER_FIELD: u8 = 0;
    /// Unrecognised next header type.
    pub const NEXT_HEADER: u8 = 1;
    /// Unrecognised IPv6 option (may be sent to a multicast destination).
    pub const OPTION: u8 = 2;
}

/// Neighbour-discovery option types (RFC 4861 §4.6).
pub mod ndp_option {
    /// Source link-layer address.
    pub const SOURCE_LL_ADDR: u8 = 1;
    /// Target link-layer address.
    pub const TARGET_LL_ADDR: u8 = 2;
    /// Prefix information.
    pub const PREFIX_INFO: u8 = 3;
    /// Redirected header.
    pub const REDIRECTED_HEADER: u8 = 4;
    /// MTU.
    pub const MTU: u8 = 5;
}

/// ff02::1, all nodes on the link: destination of unsolicited advertisements
/// and of answers to duplicate-address-detection probes.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// ff02::2, all routers on the link: destination of router solicitations.
pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

/// The solicited-node multicast group of `addr` (RFC 4291 §2.7.1,
/// ff02::1:ffXX:XXXX from its low 24 bits): where neighbour solicitations for
/// `addr` are sent, and a group an owner of `addr` must receive.
pub const fn solicited_node_multicast(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | o[13] as u16,
        (o[14] as u16) << 8 | o[15] as u16,
    )
}

/// The 8-byte header every ICMPv6 message starts with.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Debug, Clone, Copy)]
#[repr(C)]
pub struct Icmpv6Header {
    /// Message type ([`msg_type`]).
    pub msg_type: u8,
    /// Type-specific code.
    pub code: u8,
    /// Checksum over pseudo-header and message.
    pub checksum: U16,
    /// The four type-specific bytes (identifier and sequence, MTU, pointer,
    /// advertisement flags, ...).
    pub rest: [u8; 4],
}

/// Length of the ICMPv6 header.
pub const HEADER_LEN: usize = core::mem::size_of::<Icmpv6Header>();

/// The IPv6 minimum link MTU (RFC 8200 §5): an error must fit in it.
pub const MIN_MTU: usize = 1280;

/// Most bytes of an offending packet an error built here quotes: what fits in
/// [`MIN_MTU`] after a 40-byte IPv6 header and the ICMPv6 header.
pub const MAX_QUOTE_LEN: usize = MIN_MTU - 40 - HEADER_LEN;

/// Length of the fixed IPv6 header a quoted packet starts with.
const IPV6_HEADER_LEN: usize = 40;

/// Length of the target address that starts NS and NA bodies.
const TARGET_LEN: usize = 16;

/// Length of the RA body before its options (reachable time, retrans timer).
const RA_FIXED_LEN: usize = 8;

/// Length of the redirect body before its options (target, destination).
const REDIRECT_FIXED_LEN: usize = 32;

/// The R/S/O flags of a neighbour advertisement (RFC 4861 §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NaFlags {
    /// R: the sender is a router.
    pub router: bool,
    /// S: sent in answer to a solicitation (unicast to its source).
    pub solicited: bool,
    /// O: the link-layer address must replace a cached one.
    pub override_: bool,
}

impl NaFlags {
    const ROUTER: u8 = 0x80;
    const SOLICITED: u8 = 0x40;
    const OVERRIDE: u8 = 0x20;

    /// Reads the first byte of the NA's rest-of-header.
    pub const fn from_byte(b: u8) -> Self {
        NaFlags {
            router: b & Self::ROUTER != 0,
            solicited: b & Self::SOLICITED != 0,
            override_: b & Self::OVERRIDE != 0,
        }
    }

    /// The first byte of the NA's rest-of-header.
    pub const fn to_byte(self) -> u8 {
        (if self.router { Self::ROUTER } else { 0 })
            | (if self.solicited { Self::SOLICITED } else { 0 })
            | (if self.override_ { Self::OVERRIDE } else { 0 })
    }
}

/// The prefix-information option of a router advertisement (RFC 4861 §4.6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PrefixInfo {
    /// Number of leading bits of `prefix` that are valid.
    pub prefix_len: u8,
    /// Flags: 0x80 on-link (L), 0x40 autonomous configuration (A).
    pub flags: u8,
    /// Valid lifetime in seconds (all ones: infinity).
    pub valid_lifetime: u32,
    /// Preferred lifetime in seconds.
    pub preferred_lifetime: u32,
    /// The prefix.
    pub prefix: Ipv6Addr,
}

/// Length in bytes of the prefix-information option.
const PREFIX_INFO_LEN: usize = 32;

/// One neighbour-discovery option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NdpOption<'a> {
    /// Source link-layer address (an Ethernet MAC: option length 1).
    SourceLinkLayerAddr(MacAddr),
    /// Target link-layer address (an Ethernet MAC: option length 1).
    TargetLinkLayerAddr(MacAddr),
    /// Prefix information.
    PrefixInfo(PrefixInfo),
    /// Recommended link MTU.
    Mtu(u32),
    /// Any other option (or a link-layer address of another length), with
    /// the bytes after its type and length fields.
    Other {
        /// Option type.
        kind: u8,
        /// The option's bytes after type and length (8×length − 2 of them).
        data: &'a [u8],
    },
}

impl<'a> NdpOption<'a> {
    /// Reads the option at the start of `bytes`; returns it and the rest.
    fn parse(bytes: &'a [u8]) -> Result<(Self, &'a [u8])> {
        let &[kind, units] = bytes.first_chunk::<2>().ok_or(Error::BadOption)?;
        if units == 0 {
            return Err(Error::BadOption);
        }
        let (opt, rest) = bytes
            .split_at_checked(usize::from(units) * 8)
            .ok_or(Error::BadOption)?;
        let data = opt.get(2..).unwrap_or_default();
        let parsed = match (kind, units) {
            (ndp_option::SOURCE_LL_ADDR | ndp_option::TARGET_LL_ADDR, 1) => {
                let mac = MacAddr(*data.first_chunk::<6>().ok_or(Error::BadOption)?);
                if kind == ndp_option::SOURCE_LL_ADDR {
                    NdpOption::SourceLinkLayerAddr(mac)
                } else {
                    NdpOption::TargetLinkLayerAddr(mac)
                }
            }
            (ndp_option::MTU, 1) => {
                let &[_, _, a, b, c, d] = data.first_chunk::<6>().ok_or(Error::BadOption)?;
                NdpOption::Mtu(u32::from_be_bytes([a, b, c, d]))
            }
            (ndp_option::MTU, _) => return Err(Error::BadOption),
            (ndp_option::PREFIX_INFO, 4) => {
                let pi = data.first_chunk::<30>().ok_or(Error::BadOption)?;
                let [
                    prefix_len,
                    flags,
                    v0,
                    v1,
                    v2,
                    v3,
                    p0,
                    p1,
                    p2,
                    p3,
                    _,
                    _,
                    _,
                    _,
                    prefix @ ..,
                ] = *pi;
                NdpOption::PrefixInfo(PrefixInfo {
                    prefix_len,
                    flags,
                    valid_lifetime: u32::from_be_bytes([v0, v1, v2, v3]),
                    preferred_lifetime: u32::from_be_bytes([p0, p1, p2, p3]),
                    prefix: Ipv6Addr::from(prefix),
                })
            }
            (ndp_option::PREFIX_INFO, _) => return Err(Error::BadOption),
            _ => NdpOption::Other { kind, data },
        };
        Ok((parsed, rest))
    }

    /// Bytes [`NdpOption::emit`] writes (a multiple of 8).
    pub fn buffer_len(&self) -> usize {
        match self {
            NdpOption::SourceLinkLayerAddr(_)
            | NdpOption::TargetLinkLayerAddr(_)
            | NdpOption::Mtu(_) => 8,
            NdpOption::PrefixInfo(_) => PREFIX_INFO_LEN,
            NdpOption::Other { data, .. } => 2 + data.len(),
        }
    }

    /// Writes the option at the start of `buf`; returns the bytes written.
    /// [`Error::BadLength`] for an `Other` whose data does not make the option
    /// a multiple of 8 bytes, up to 255 units.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        if !len.is_multiple_of(8) || len > 255 * 8 {
            return Err(Error::BadLength);
        }
        let out = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        out.fill(0);
        let (head, body) = out.split_at_mut_checked(2).ok_or(Error::BufferTooSmall)?;
        let kind = match *self {
            NdpOption::SourceLinkLayerAddr(_) => ndp_option::SOURCE_LL_ADDR,
            NdpOption::TargetLinkLayerAddr(_) => ndp_option::TARGET_LL_ADDR,
            NdpOption::PrefixInfo(_) => ndp_option::PREFIX_INFO,
            NdpOption::Mtu(_) => ndp_option::MTU,
            NdpOption::Other { kind, .. } => kind,
        };
        // `len` is at most 255 * 8, so the unit count fits in a byte.
        head.copy_from_slice(&[kind, u8::try_from(len / 8).map_err(|_| Error::BadLength)?]);
        match *self {
            NdpOption::SourceLinkLayerAddr(mac) | NdpOption::TargetLinkLayerAddr(mac) => {
                put(body, 0, &mac.octets())?;
            }
            NdpOption::Mtu(mtu) => put(body, 2, &mtu.to_be_bytes())?,
            NdpOption::PrefixInfo(pi) => {
                put(body, 0, &[pi.prefix_len, pi.flags])?;
                put(body, 2, &pi.valid_lifetime.to_be_bytes())?;
                put(body, 6, &pi.preferred_lifetime.to_be_bytes())?;
                put(body, 14, &pi.prefix.octets())?;
            }
            NdpOption::Other { data, .. } => put(body, 0, data)?,
        }
        Ok(len)
    }
}

/// Copies `data` into `buf` at `at`.
fn put(buf: &mut [u8], at: usize, data: &[u8]) -> Result<()> {
    let end = at.checked_add(data.len()).ok_or(Error::BufferTooSmall)?;
    buf.get_mut(at..end)
        .ok_or(Error::BufferTooSmall)?
        .copy_from_slice(data);
    Ok(())
}

/// An iterator over the neighbour-discovery options of a message. It yields
/// `Err(Error::BadOption)` once, and then stops, at an option of length 0,
/// one running past the end, or a known option of the wrong length; RFC 4861
/// §7.1 says to drop such a message whole.
#[derive(Debug, Clone)]
pub struct NdpOptions<'a> {
    rest: &'a [u8],
}

impl<'a> NdpOptions<'a> {
    /// Iterates over the options in `bytes`.
    pub const fn new(bytes: &'a [u8]) -> Self {
        NdpOptions { rest: bytes }
    }

    /// Checks every option.
    pub fn validate(bytes: &'a [u8]) -> Result<()> {
        NdpOptions::new(bytes).try_for_each(|o| o.map(|_| ()))
    }

    /// The first source link-layer address option, if any.
    pub fn source_lladdr(bytes: &'a [u8]) -> Result<Option<MacAddr>> {
        for o in NdpOptions::new(bytes) {
            if let NdpOption::SourceLinkLayerAddr(mac) = o? {
                return Ok(Some(mac));
            }
        }
        Ok(None)
    }

    /// The first target link-layer address option, if any.
    pub fn target_lladdr(bytes: &'a [u8]) -> Result<Option<MacAddr>> {
        for o in NdpOptions::new(bytes) {
            if let NdpOption::TargetLinkLayerAddr(mac) = o? {
                return Ok(Some(mac));
            }
        }
        Ok(None)
    }
}

impl<'a> Iterator for NdpOptions<'a> {
    type Item = Result<NdpOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match NdpOption::parse(self.rest) {
            Ok((opt, rest)) => {
                self.rest = rest;
                Some(Ok(opt))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// A view of an ICMPv6 message: header plus the rest of the IPv6 payload.
pub struct Icmpv6Packet<B>(IcmpMessage<B, Icmpv6Header>);

impl IcmpVersion for Icmpv6Header {
    const VIEW_NAME: &'static str = "Icmpv6Packet";
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

impl<B: SplitByteSlice> fmt::Debug for Icmpv6Packet<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<B: SplitByteSlice> Icmpv6Packet<B> {
    /// Checks that `bytes` (the upper-layer payload) holds the 8-byte header.
    pub fn parse(bytes: B) -> Result<Self> {
        IcmpMessage::parse(bytes).map(Icmpv6Packet)
    }

    /// The header.
    pub fn header(&self) -> &Icmpv6Header {
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

    /// Everything after the 8-byte header.
    pub fn payload(&self) -> &[u8] {
        self.0.payload()
    }

    /// Length of the whole message (header and payload).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true: a parsed message has at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// True for error messages (types below 128).
    pub fn is_error(&self) -> bool {
        self.0.is_error()
    }

    /// True for an echo request or reply.
    pub fn is_echo(&self) -> bool {
        self.0.is_echo()
    }

    fn rest_u32(&self) -> u32 {
        u32::from_be_bytes(self.rest_of_header())
    }

    /// The echo identifier.
    pub fn echo_ident(&self) -> Option<u16> {
        self.0.echo_ident()
    }

    /// The echo sequence number.
    pub fn echo_seq(&self) -> Option<u16> {
        self.0.echo_seq()
    }

    /// The MTU of a "packet too big".
    pub fn mtu(&self) -> Option<u32> {
        (self.msg_type() == msg_type::PACKET_TOO_BIG).then(|| self.rest_u32())
    }

    /// The pointer of a "parameter problem" (offset into the quoted packet).
    pub fn pointer(&self) -> Option<u32> {
        (self.msg_type() == msg_type::PARAM_PROBLEM).then(|| self.rest_u32())
    }

    /// The quoted packet of an error message: its fixed IPv6 header and at
    /// least 8 bytes more, ready for [`crate::ipv6`]. Its payload length
    /// describes the original packet, usually longer than the quote.
    /// [`Error::Unsupported`] for non-error messages, [`Error::Truncated`]
    /// if too little is quoted to find the flow.
    pub fn quoted(&self) -> Result<&[u8]> {
        if !self.is_error() {
            return Err(Error::Unsupported);
        }
        let payload = self.payload();
        if payload.len() < IPV6_HEADER_LEN + 8 {
            return Err(Error::Truncated);
        }
        Ok(payload)
    }

    /// The quoted packet split into its fixed IPv6 header, the upper-layer
    /// protocol found by walking its extension headers, and the bytes of
    /// that upper-layer header (at least its first bytes: ports, or ICMPv6
    /// type and identifier). The header's payload length describes the
    /// original packet. Errors as [`Icmpv6Packet::quoted`],
    /// [`Error::BadVersion`] if the quote is not IPv6, and the walker's
    /// errors if its extension headers do not fit in the quote.
    pub fn quoted_ipv6(&self) -> Result<(&Ipv6Header, u8, &[u8])> {
        let q = self.quoted()?;
        let (hdr, rest) = Ipv6Header::ref_from_prefix(q).map_err(|_| Error::Truncated)?;
        if hdr.version() != 6 {
            return Err(Error::BadVersion);
        }
        let (proto, l4) =
            ExtHeaders::new(hdr.next_header, rest, IPV6_HEADER_LEN).upper_layer_bytes()?;
        Ok((hdr, proto, l4))
    }

    /// The target address of a neighbour solicitation or advertisement
    /// (or of a redirect).
    pub fn target(&self) -> Result<Ipv6Addr> {
        match self.msg_type() {
            msg_type::NEIGHBOR_SOLICIT | msg_type::NEIGHBOR_ADVERT | msg_type::REDIRECT => {
                let t = self.payload().first_chunk::<16>().ok_or(Error::Truncated)?;
                Ok(Ipv6Addr::from(*t))
            }
            _ => Err(Error::Unsupported),
        }
    }

    /// The flags of a neighbour advertisement.
    pub fn na_flags(&self) -> Option<NaFlags> {
        let [f, _, _, _] = self.rest_of_header();
        (self.msg_type() == msg_type::NEIGHBOR_ADVERT).then_some(NaFlags::from_byte(f))
    }

    /// The options of a neighbour-discovery message (RS, RA, NS, NA,
    /// redirect). [`Error::Unsupported`] for other types,
    /// [`Error::Truncated`] if the fixed part before the options is short.
    /// The options themselves are checked as they are iterated.
    pub fn ndp_options(&self) -> Result<NdpOptions<'_>> {
        let fixed = match self.msg_type() {
            msg_type::ROUTER_SOLICIT => 0,
            msg_type::ROUTER_ADVERT => RA_FIXED_LEN,
            msg_type::NEIGHBOR_SOLICIT | msg_type::NEIGHBOR_ADVERT => TARGET_LEN,
            msg_type::REDIRECT => REDIRECT_FIXED_LEN,
            _ => return Err(Error::Unsupported),
        };
        let opts = self.payload().get(fixed..).ok_or(Error::Truncated)?;
        Ok(NdpOptions::new(opts))
    }

    /// The pseudo-header sum the checksum starts from (RFC 4443 §2.3).
    fn pseudo_header(&self, src: Ipv6Addr, dst: Ipv6Addr) -> Checksum {
        checksum::ipv6_pseudo_header_len(src, dst, ip_proto::ICMPV6, self.len())
    }

    /// True if the checksum verifies for a packet from `src` to `dst`.
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        self.0.verify_checksum(self.pseudo_header(src, dst))
    }

    /// Splits the view into its header and payload.
    pub fn into_parts(self) -> (Ref<B, Icmpv6Header>, B) {
        self.0.into_parts()
    }
}

impl<B: SplitByteSliceMut> Icmpv6Packet<B> {
    /// The header, writable (the checksum is not kept right).
    pub fn header_mut(&mut self) -> &mut Icmpv6Header {
        self.0.header_mut()
    }

    /// The payload, writable (the checksum is not kept right).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        self.0.payload_mut()
    }

    /// [`Icmpv6Packet::quoted_ipv6`], writable, for NAT of the quoted
    /// addresses and ports. The ICMPv6 checksum is not kept right: finish
    /// with [`Icmpv6Packet::fill_checksum`] (errors are at most 1280 bytes).
    pub fn quoted_ipv6_mut(&mut self) -> Result<(&mut Ipv6Header, u8, &mut [u8])> {
        let (proto, l4_len) = {
            let (_, proto, l4) = self.quoted_ipv6()?;
            (proto, l4.len())
        };
        let (hdr, rest) =
            Ipv6Header::mut_from_prefix(self.payload_mut()).map_err(|_| Error::Truncated)?;
        let start = rest.len().checked_sub(l4_len).ok_or(Error::Truncated)?;
        let l4 = rest.get_mut(start..).ok_or(Error::Truncated)?;
        Ok((hdr, proto, l4))
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, csum: u16) {
        self.0.set_checksum(csum);
    }

    /// Recomputes the checksum for a packet from `src` to `dst`.
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        let start = self.pseudo_header(src, dst);
        self.0.fill_checksum(start);
    }

    /// Adjusts the checksum after 16-bit aligned bytes `old` of the message
    /// were replaced by `new` (RFC 1624). Because the pseudo-header is in the
    /// sum, this also serves when NAT rewrites an IPv6 address of the
    /// enclosing header: pass the old and new address octets.
    pub fn update_checksum(&mut self, old: &[u8], new: &[u8]) {
        self.0.update_checksum(old, new);
    }

    /// Rewrites the echo identifier, keeping the checksum right.
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

    /// Turns an echo request into its reply in place (type 128 → 129). The
    /// pseudo-header sum does not change when the caller swaps source and
    /// destination, so the incremental update is the whole fix — unless the
    /// reply's source differs from the request's destination (a request to
    /// a multicast or anycast address): then follow with
    /// [`Icmpv6Packet::update_checksum`] for the address.
    pub fn make_echo_reply(&mut self) -> Result<()> {
        self.0.make_echo_reply()
    }
}

/// A typed ICMPv6 message. Fields the RFCs mark reserved are written as zero
/// and ignored on parse; neighbour-discovery options other than those a
/// variant names are skipped on parse, as RFC 4861 §4.6 requires of
/// receivers. Types rvs does not interpret, and ND messages with a non-zero
/// code (invalid per RFC 4861 §7.1), are [`Icmpv6Repr::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv6Repr<'a> {
    /// Destination unreachable (type 1).
    DstUnreachable {
        /// Code ([`unreachable`](mod@unreachable)).
        code: u8,
        /// The offending packet.
        quoted: &'a [u8],
    },
    /// Packet too big (type 2).
    PacketTooBig {
        /// MTU of the next hop.
        mtu: u32,
        /// The offending packet.
        quoted: &'a [u8],
    },
    /// Time exceeded (type 3).
    TimeExceeded {
        /// Code ([`time_exceeded`]).
        code: u8,
        /// The offending packet.
        quoted: &'a [u8],
    },
    /// Parameter problem (type 4).
    ParamProblem {
        /// Code ([`param_problem`]).
        code: u8,
        /// Offset of the error in the quoted packet.
        pointer: u32,
        /// The offending packet.
        quoted: &'a [u8],
    },
    /// Echo request (type 128, code 0).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq: u16,
        /// Data.
        data: &'a [u8],
    },
    /// Echo reply (type 129, code 0).
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq: u16,
        /// Data.
        data: &'a [u8],
    },
    /// Router solicitation (type 133).
    RouterSolicit {
        /// Source link-layer address option.
        source_lladdr: Option<MacAddr>,
    },
    /// Router advertisement (type 134).
    RouterAdvert {
        /// Hop limit hosts should use (0: unspecified).
        cur_hop_limit: u8,
        /// Flags byte: 0x80 managed (M), 0x40 other configuration (O), ...
        flags: u8,
        /// Seconds the router may be used as default router.
        router_lifetime: u16,
        /// Reachable time in milliseconds.
        reachable_time: u32,
        /// Retransmission timer in milliseconds.
        retrans_timer: u32,
        /// Options, validated; read them with [`NdpOptions`].
        options: &'a [u8],
    },
    /// Neighbour solicitation (type 135).
    NeighborSolicit {
        /// The address being resolved (or probed by DAD).
        target: Ipv6Addr,
        /// Source link-layer address option (absent in DAD probes).
        source_lladdr: Option<MacAddr>,
    },
    /// Neighbour advertisement (type 136).
    NeighborAdvert {
        /// R/S/O flags.
        flags: NaFlags,
        /// The address advertised.
        target: Ipv6Addr,
        /// Target link-layer address option.
        target_lladdr: Option<MacAddr>,
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

impl<'a> Icmpv6Repr<'a> {
    /// Interprets a parsed message. Neighbour-discovery messages must have
    /// their fixed part ([`Error::Truncated`]) and well-formed options
    /// ([`Error::BadOption`]); nothing else can fail.
    pub fn parse<B: SplitByteSlice>(packet: &'a Icmpv6Packet<B>) -> Result<Self> {
        let rest = packet.rest_of_header();
        let [r0, r1, _, _] = rest;
        let code = packet.code();
        let data = packet.payload();
        let (hi, lo) = icmp_common::halves(rest);
        let word = u32::from_be_bytes(rest);
        let target = || -> Result<(Ipv6Addr, &'a [u8])> {
            let (t, opts) = data.split_first_chunk::<16>().ok_or(Error::Truncated)?;
            Ok((Ipv6Addr::from(*t), opts))
        };
        Ok(match (packet.msg_type(), code) {
            (msg_type::DST_UNREACHABLE, _) => Icmpv6Repr::DstUnreachable { code, quoted: data },
            (msg_type::PACKET_TOO_BIG, _) => Icmpv6Repr::PacketTooBig {
                mtu: word,
                quoted: data,
            },
            (msg_type::TIME_EXCEEDED, _) => Icmpv6Repr::TimeExceeded { code, quoted: data },
            (msg_type::PARAM_PROBLEM, _) => Icmpv6Repr::ParamProblem {
                code,
                pointer: word,
                quoted: data,
            },
            (msg_type::ECHO_REQUEST, 0) => Icmpv6Repr::EchoRequest {
                ident: hi,
                seq: lo,
                data,
            },
            (msg_type::ECHO_REPLY, 0) => Icmpv6Repr::EchoReply {
                ident: hi,
                seq: lo,
                data,
            },
            (msg_type::ROUTER_SOLICIT, 0) => Icmpv6Repr::RouterSolicit {
                source_lladdr: NdpOptions::source_lladdr(data)?,
            },
            (msg_type::ROUTER_ADVERT, 0) => {
                let (fixed, options) = data
                    .split_first_chunk::<RA_FIXED_LEN>()
                    .ok_or(Error::Truncated)?;
                let &[a, b, c, d, e, f, g, h] = fixed;
                NdpOptions::validate(options)?;
                Icmpv6Repr::RouterAdvert {
                    cur_hop_limit: r0,
                    flags: r1,
                    router_lifetime: lo,
                    reachable_time: u32::from_be_bytes([a, b, c, d]),
                    retrans_timer: u32::from_be_bytes([e, f, g, h]),
                    options,
                }
            }
            (msg_type::NEIGHBOR_SOLICIT, 0) => {
                let (target, opts) = target()?;
                Icmpv6Repr::NeighborSolicit {
                    target,
                    source_lladdr: NdpOptions::source_lladdr(opts)?,
                }
            }
            (msg_type::NEIGHBOR_ADVERT, 0) => {
                let (target, opts) = target()?;
                Icmpv6Repr::NeighborAdvert {
                    flags: NaFlags::from_byte(r0),
                    target,
                    target_lladdr: NdpOptions::target_lladdr(opts)?,
                }
            }
            (t, _) => Icmpv6Repr::Other {
                msg_type: t,
                code,
                rest,
                data,
            },
        })
    }

    /// Bytes [`Icmpv6Repr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        let lladdr = |m: Option<MacAddr>| if m.is_some() { 8 } else { 0 };
        HEADER_LEN
            + match *self {
                Icmpv6Repr::DstUnreachable { quoted, .. }
                | Icmpv6Repr::PacketTooBig { quoted, .. }
                | Icmpv6Repr::TimeExceeded { quoted, .. }
                | Icmpv6Repr::ParamProblem { quoted, .. } => quoted.len(),
                Icmpv6Repr::EchoRequest { data, .. }
                | Icmpv6Repr::EchoReply { data, .. }
                | Icmpv6Repr::Other { data, .. } => data.len(),
                Icmpv6Repr::RouterSolicit { source_lladdr } => lladdr(source_lladdr),
                Icmpv6Repr::RouterAdvert { options, .. } => RA_FIXED_LEN + options.len(),
                Icmpv6Repr::NeighborSolicit { source_lladdr, .. } => {
                    TARGET_LEN + lladdr(source_lladdr)
                }
                Icmpv6Repr::NeighborAdvert { target_lladdr, .. } => {
                    TARGET_LEN + lladdr(target_lladdr)
                }
            }
    }

    /// Writes the whole message at the start of `buf`, with the checksum for
    /// a packet from `src` to `dst`; returns the bytes written.
    pub fn emit(&self, src: Ipv6Addr, dst: Ipv6Addr, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        let msg = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        let (hdr, body) = IcmpHeader::mut_from_prefix(msg).map_err(|_| Error::BufferTooSmall)?;
        let (t, code, rest) = match *self {
            Icmpv6Repr::DstUnreachable { code, quoted } => {
                put(body, 0, quoted)?;
                (msg_type::DST_UNREACHABLE, code, [0; 4])
            }
            Icmpv6Repr::PacketTooBig { mtu, quoted } => {
                put(body, 0, quoted)?;
                (msg_type::PACKET_TOO_BIG, 0, mtu.to_be_bytes())
            }
            Icmpv6Repr::TimeExceeded { code, quoted } => {
                put(body, 0, quoted)?;
                (msg_type::TIME_EXCEEDED, code, [0; 4])
            }
            Icmpv6Repr::ParamProblem {
                code,
                pointer,
                quoted,
            } => {
                put(body, 0, quoted)?;
                (msg_type::PARAM_PROBLEM, code, pointer.to_be_bytes())
            }
            Icmpv6Repr::EchoRequest { ident, seq, data } => {
                put(body, 0, data)?;
                (msg_type::ECHO_REQUEST, 0, pair(ident, seq))
            }
            Icmpv6Repr::EchoReply { ident, seq, data } => {
                put(body, 0, data)?;
                (msg_type::ECHO_REPLY, 0, pair(ident, seq))
            }
            Icmpv6Repr::RouterSolicit { source_lladdr } => {
                if let Some(mac) = source_lladdr {
                    NdpOption::SourceLinkLayerAddr(mac).emit(body)?;
                }
                (msg_type::ROUTER_SOLICIT, 0, [0; 4])
            }
            Icmpv6Repr::RouterAdvert {
                cur_hop_limit,
                flags,
                router_lifetime,
                reachable_time,
                retrans_timer,
                options,
            } => {
                put(body, 0, &reachable_time.to_be_bytes())?;
                put(body, 4, &retrans_timer.to_be_bytes())?;
                put(body, RA_FIXED_LEN, options)?;
                let [a, b] = router_lifetime.to_be_bytes();
                (msg_type::ROUTER_ADVERT, 0, [cur_hop_limit, flags, a, b])
            }
            Icmpv6Repr::NeighborSolicit {
                target,
                source_lladdr,
            } => {
                put(body, 0, &target.octets())?;
                if let Some(mac) = source_lladdr {
                    let opts = body.get_mut(TARGET_LEN..).ok_or(Error::BufferTooSmall)?;
                    NdpOption::SourceLinkLayerAddr(mac).emit(opts)?;
                }
                (msg_type::NEIGHBOR_SOLICIT, 0, [0; 4])
            }
            Icmpv6Repr::NeighborAdvert {
                flags,
                target,
                target_lladdr,
            } => {
                put(body, 0, &target.octets())?;
                if let Some(mac) = target_lladdr {
                    let opts = body.get_mut(TARGET_LEN..).ok_or(Error::BufferTooSmall)?;
                    NdpOption::TargetLinkLayerAddr(mac).emit(opts)?;
                }
                (msg_type::NEIGHBOR_ADVERT, 0, [flags.to_byte(), 0, 0, 0])
            }
            Icmpv6Repr::Other {
                msg_type,
                code,
                rest,
                data,
            } => {
                put(body, 0, data)?;
                (msg_type, code, rest)
            }
        };
        *hdr = IcmpHeader::new(t, code, rest);
        let mut p = Icmpv6Packet::parse(msg)?;
        p.fill_checksum(src, dst);
        Ok(len)
    }

    /// The quoted packet of an error message, if this is one.
    pub fn quoted(&self) -> Option<&'a [u8]> {
        match *self {
            Icmpv6Repr::DstUnreachable { quoted, .. }
            | Icmpv6Repr::PacketTooBig { quoted, .. }
            | Icmpv6Repr::TimeExceeded { quoted, .. }
            | Icmpv6Repr::ParamProblem { quoted, .. } => Some(quoted),
            _ => None,
        }
    }

    /// "Packet too big" about `offending` (the whole IPv6 packet that did not
    /// fit), telling its sender the next-hop `mtu`; quote cut to
    /// [`MAX_QUOTE_LEN`]. Sent even when `offending` went to a multicast
    /// address (RFC 4443 §2.4(e.3)).
    pub fn packet_too_big(mtu: u32, offending: &'a [u8]) -> Self {
        Icmpv6Repr::PacketTooBig {
            mtu,
            quoted: quote(offending),
        }
    }

    /// "Destination unreachable" with `code`, quote cut to [`MAX_QUOTE_LEN`].
    pub fn dst_unreachable(code: u8, offending: &'a [u8]) -> Self {
        Icmpv6Repr::DstUnreachable {
            code,
            quoted: quote(offending),
        }
    }

    /// "Time exceeded" with `code` ([`time_exceeded::HOP_LIMIT`] when
    /// forwarding found a hop limit of 1 or 0), quote cut to [`MAX_QUOTE_LEN`].
    pub fn time_exceeded(code: u8, offending: &'a [u8]) -> Self {
        Icmpv6Repr::TimeExceeded {
            code,
            quoted: quote(offending),
        }
    }

    /// "Parameter problem" with `code` and `pointer`, quote cut to
    /// [`MAX_QUOTE_LEN`].
    pub fn param_problem(code: u8, pointer: u32, offending: &'a [u8]) -> Self {
        Icmpv6Repr::ParamProblem {
            code,
            pointer,
            quoted: quote(offending),
        }
    }

    /// A neighbour solicitation resolving `target`, advertising our `mac`.
    /// Send it from one of our addresses to
    /// [`solicited_node_multicast`]`(target)` (or unicast to `target` to
    /// confirm reachability), hop limit 255.
    pub const fn neighbor_solicit(target: Ipv6Addr, mac: MacAddr) -> Self {
        Icmpv6Repr::NeighborSolicit {
            target,
            source_lladdr: Some(mac),
        }
    }

    /// The advertisement answering a solicitation for our address `target`
    /// that came from `ns_src`, carrying our `mac`; returns the destination
    /// to send it to (hop limit 255, source `target`) and the message.
    /// Per RFC 4861 §7.2.4: a solicitation from the unspecified address (a
    /// duplicate-address-detection probe) is answered to [`ALL_NODES`] with
    /// S clear; any other is answered to its source with S set. O is set:
    /// the balancer owns its addresses (it is not a proxy or anycast). R
    /// says whether we act as a router.
    pub fn answer_solicitation(
        ns_src: Ipv6Addr,
        target: Ipv6Addr,
        mac: MacAddr,
        router: bool,
    ) -> (Ipv6Addr, Self) {
        let dad = ns_src.is_unspecified();
        let flags = NaFlags {
            router,
            solicited: !dad,
            override_: true,
        };
        let dst = if dad { ALL_NODES } else { ns_src };
        (
            dst,
            Icmpv6Repr::NeighborAdvert {
                flags,
                target,
                target_lladdr: Some(mac),
            },
        )
    }

    /// An unsolicited advertisement announcing that `target` is now at `mac`
    /// (RFC 4861 §7.2.6): S clear, O set so neighbours replace their cached
    /// entry. Send it from `target` to [`ALL_NODES`], hop limit 255; the RFC
    /// allows up to 3 (`MAX_NEIGHBOR_ADVERTISEMENT`), spaced a second apart.
    pub const fn unsolicited_advert(target: Ipv6Addr, mac: MacAddr, router: bool) -> Self {
        Icmpv6Repr::NeighborAdvert {
            flags: NaFlags {
                router,
                solicited: false,
                override_: true,
            },
            target,
            target_lladdr: Some(mac),
        }
    }
}

/// The part of an offending packet an error quotes: as much as fits in the
/// minimum MTU (RFC 4443 §2.4(c)), i.e. up to [`MAX_QUOTE_LEN`] bytes.
pub fn quote(offending: &[u8]) -> &[u8] {
    offending.get(..MAX_QUOTE_LEN).unwrap_or(offending)
}

/// Whether RFC 4443 §2.4(e) allows sending an error of type `err_type` and
/// code `err_code` about the IPv6 packet `offending`. Never about an ICMPv6
/// error message (the extension-header chain is walked to find it; a
/// non-first fragment of ICMPv6, or a chain that cannot be followed, counts
/// as one); never about a packet from an address that does not name one node
/// (unspecified, multicast); and about a packet *to* a multicast address only
/// "packet too big" and "parameter problem" code 2. Sent-to-link-layer-
/// multicast is the caller's to check, as is rate limiting (§2.4(f)).
/// Unparseable input gives `false`.
pub fn error_allowed_for(err_type: u8, err_code: u8, offending: &[u8]) -> bool {
    let Some((hdr, mut rest)) = offending.split_first_chunk::<IPV6_HEADER_LEN>() else {
        return false;
    };
    if hdr[0] >> 4 != 6 {
        return false;
    }
    let addr = |at: usize| {
        hdr.get(at..at + 16)
            .and_then(|s| <[u8; 16]>::try_from(s).ok())
            .map(Ipv6Addr::from)
    };
    let (Some(src), Some(dst)) = (addr(8), addr(24)) else {
        return false;
    };
    if src.is_unspecified() || src.is_multicast() {
        return false;
    }
    if dst.is_multicast()
        && !(err_type == msg_type::PACKET_TOO_BIG
            || (err_type == msg_type::PARAM_PROBLEM && err_code == param_problem::OPTION))
    {
        return false;
    }
    let mut next = hdr[6];
    // Walk at most a handful of extension headers to find an ICMPv6 header.
    for _ in 0..8 {
        match next {
            ip_proto::ICMPV6 => {
                return match rest.first() {
                    Some(&t) => !msg_type::is_error(t),
                    None => false,
                };
            }
            ip_proto::HOPOPT | ip_proto::IPV6_ROUTE | ip_proto::IPV6_OPTS => {
                let Some(&[nh, units]) = rest.first_chunk::<2>() else {
                    return false;
                };
                let Some(after) = rest.get((usize::from(units) + 1) * 8..) else {
                    return false;
                };
                next = nh;
                rest = after;
            }
            ip_proto::IPV6_FRAG => {
                let Some((frag, after)) = rest.split_first_chunk::<8>() else {
                    return false;
                };
                let offset = u16::from_be_bytes([frag[2], frag[3]]) >> 3;
                if offset != 0 {
                    // The ICMPv6 header, if any, is in another fragment.
                    return frag[0] != ip_proto::ICMPV6;
                }
                next = frag[0];
                rest = after;
            }
            _ => return true,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Captures made for this module with tcpdump in three network namespaces
    // (A fd00:201:1::1 — R fd00:201:1::2/fd00:201:2::1, 1280-byte MTU
    // towards B fd00:201:2::2; MACs 02:00:00:00:0a:01 for A and
    // 02:00:00:00:0a:02 for R), since deleted. The bytes are the ICMPv6
    // message, i.e. the IPv6 payload of the captured frame.

    const A: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x201, 1, 0, 0, 0, 0, 1);
    const R: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x201, 1, 0, 0, 0, 0, 2);
    const A_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 0x0a01);
    const R_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 0x0a02);
    const A_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0x0a, 0x01]);
    const R_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0x0a, 0x02]);

    /// `fd00:201:1::1 > ff02::1:ff00:2: ICMP6, neighbor solicitation, length
    /// 32, who has fd00:201:1::2; source link-address option (1), length 8
    /// (1): 02:00:00:00:0a:01` (hlim 255).
    const NS: [u8; 32] = [
        0x87, 0x00, 0x6f, 0x93, 0x00, 0x00, 0x00, 0x00, 0xfd, 0x00, 0x02, 0x01, 0x00, 0x01, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x01, 0x01, 0x02, 0x00, 0x00, 0x00,
        0x0a, 0x01,
    ];

    /// `fd00:201:1::2 > fd00:201:1::1: ICMP6, neighbor advertisement, length
    /// 32, tgt is fd00:201:1::2, Flags [router, solicited, override];
    /// destination link-address option (2), length 8 (1): 02:00:00:00:0a:02`,
    /// the kernel's answer to [`NS`] (R forwards, hence the R flag).
    const NA: [u8; 32] = [
        0x88, 0x00, 0x8c, 0x93, 0xe0, 0x00, 0x00, 0x00, 0xfd, 0x00, 0x02, 0x01, 0x00, 0x01, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x01, 0x02, 0x00, 0x00, 0x00,
        0x0a, 0x02,
    ];

    /// `fe80::ff:fe00:a02 > fe80::ff:fe00:a01: ICMP6, neighbor advertisement,
    /// length 24, tgt is fe80::ff:fe00:a02, Flags [router, solicited]`: the
    /// answer to a unicast reachability probe, without an option.
    const NA_NO_OPT: [u8; 24] = [
        0x88, 0x00, 0xa1, 0x24, 0xc0, 0x00, 0x00, 0x00, 0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0xff, 0xfe, 0x00, 0x0a, 0x02,
    ];

    /// `fd00:201:1::1 > fd00:201:1::2: ICMP6, echo request, id 11667, seq 1,
    /// length 24` (`ping -6 -c1 -s 16`).
    const ECHO_REQUEST: [u8; 24] = [
        0x80, 0x00, 0xfc, 0xcd, 0x2d, 0x93, 0x00, 0x01, 0x00, 0x36, 0x02, 0x6b, 0x00, 0x00, 0x00,
        0x00, 0x50, 0xa1, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];

    /// `fd00:201:1::2 > fd00:201:1::1: ICMP6, echo reply, id 11667, seq 1,
    /// length 24`.
    const ECHO_REPLY: [u8; 24] = [
        0x81, 0x00, 0xfb, 0xcd, 0x2d, 0x93, 0x00, 0x01, 0x00, 0x36, 0x02, 0x6b, 0x00, 0x00, 0x00,
        0x00, 0x50, 0xa1, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];

    /// `fd00:201:1::2 > fd00:201:1::1: ICMP6, time exceeded in-transit for
    /// fd00:201:2::2, length 72`: R's answer to `ping -6 -t 1 fd00:201:2::2`,
    /// quoting the whole request (`hlim 1 ... echo request, id 11722, seq 1`).
    const TIME_EXCEEDED: [u8; 72] = [
        0x03, 0x00, 0x2d, 0xd2, 0x00, 0x00, 0x00, 0x00, // ICMPv6 header
        0x60, 0x01, 0x36, 0xda, 0x00, 0x18, 0x3a, 0x01, 0xfd, 0x00, 0x02, 0x01, 0x00, 0x01, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00, 0x02, 0x01, 0x00, 0x02,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, // quoted IPv6 header
        0x80, 0x00, 0x41, 0x82, 0x2d, 0xca, 0x00, 0x01, 0x08, 0x36, 0x02, 0x6b, 0x00, 0x00, 0x00,
        0x00, 0xfc, 0xb4, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x00, // quoted echo request
    ];

    /// The echo request quoted by [`TIME_EXCEEDED`].
    const ECHO_REQUEST_TO_B: [u8; 24] = [
        0x80, 0x00, 0x41, 0x82, 0x2d, 0xca, 0x00, 0x01, 0x08, 0x36, 0x02, 0x6b, 0x00, 0x00, 0x00,
        0x00, 0xfc, 0xb4, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];

    /// The first 80 bytes of `fd00:201:1::2 > fd00:201:1::1: ICMP6, packet too
    /// big, mtu 1280` (payload length 1240: Linux fills the minimum MTU). It
    /// quotes `fd00:201:1::1.44432 > fd00:201:2::2.5002: Flags [P.], seq
    /// 1:3001, options [nop,nop,TS ...], length 3000` (payload length 3032);
    /// the remaining 1160 quoted bytes are its data, all `x` (0x78).
    const PTB_HEAD: [u8; 80] = [
        0x02, 0x00, 0x2a, 0xd0, 0x00, 0x00, 0x05, 0x00, // ICMPv6 header, MTU 1280
        0x60, 0x01, 0xe6, 0x12, 0x0b, 0xd8, 0x06, 0x40, 0xfd, 0x00, 0x02, 0x01, 0x00, 0x01, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00, 0x02, 0x01, 0x00, 0x02,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, // quoted IPv6 header
        0xad, 0x90, 0x13, 0x8a, 0x7d, 0xe3, 0x5e, 0xde, 0x54, 0x93, 0x43, 0xba, 0x80, 0x18, 0x00,
        0x40, 0x09, 0xe8, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a, 0x23, 0x4b, 0x16, 0x76, 0x0e, 0xb9,
        0x71, 0xfd, // quoted TCP header
    ];

    fn ptb_capture() -> Vec<u8> {
        let mut v = PTB_HEAD.to_vec();
        v.resize(1240, b'x');
        v
    }

    /// (message, source, destination) of every capture.
    fn captures() -> Vec<(Vec<u8>, Ipv6Addr, Ipv6Addr)> {
        vec![
            (NS.to_vec(), A, solicited_node_multicast(R)),
            (NA.to_vec(), R, A),
            (NA_NO_OPT.to_vec(), R_LL, A_LL),
            (ECHO_REQUEST.to_vec(), A, R),
            (ECHO_REPLY.to_vec(), R, A),
            (TIME_EXCEEDED.to_vec(), R, A),
            (ptb_capture(), R, A),
        ]
    }

    #[test]
    fn captures_verify_and_reemit() {
        for (msg, src, dst) in captures() {
            let p = Icmpv6Packet::parse(&msg[..]).unwrap();
            assert!(p.verify_checksum(src, dst));
            let other = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
            assert!(!p.verify_checksum(src, other));
            let theirs = etherparse::Icmpv6Slice::from_slice(&msg).unwrap();
            assert!(theirs.is_checksum_valid(src.octets(), dst.octets()));
            let repr = Icmpv6Repr::parse(&p).unwrap();
            let mut out = vec![0u8; repr.buffer_len()];
            assert_eq!(repr.emit(src, dst, &mut out), Ok(msg.len()));
            assert_eq!(out, msg);
        }
    }

    #[test]
    fn neighbor_solicitation_known_answer() {
        assert_eq!(
            solicited_node_multicast(R),
            "ff02::1:ff00:2".parse::<Ipv6Addr>().unwrap()
        );
        let p = Icmpv6Packet::parse(&NS[..]).unwrap();
        assert_eq!(p.target(), Ok(R));
        let opts: Vec<_> = p.ndp_options().unwrap().collect();
        assert_eq!(opts, [Ok(NdpOption::SourceLinkLayerAddr(A_MAC))]);
        assert_eq!(
            Icmpv6Repr::parse(&p),
            Ok(Icmpv6Repr::neighbor_solicit(R, A_MAC))
        );
        // Answering it as the kernel did (R is a router) gives the captured NA.
        let (dst, na) = Icmpv6Repr::answer_solicitation(A, R, R_MAC, true);
        assert_eq!(dst, A);
        let mut out = [0u8; 32];
        assert_eq!(na.emit(R, dst, &mut out), Ok(32));
        assert_eq!(out, NA);
        let p = Icmpv6Packet::parse(&NA[..]).unwrap();
        assert_eq!(
            p.na_flags(),
            Some(NaFlags {
                router: true,
                solicited: true,
                override_: true
            })
        );
        let p = Icmpv6Packet::parse(&NA_NO_OPT[..]).unwrap();
        assert_eq!(
            Icmpv6Repr::parse(&p),
            Ok(Icmpv6Repr::NeighborAdvert {
                flags: NaFlags {
                    router: true,
                    solicited: true,
                    override_: false
                },
                target: R_LL,
                target_lladdr: None,
            })
        );
    }

    #[test]
    fn dad_and_unsolicited_adverts() {
        let (dst, na) = Icmpv6Repr::answer_solicitation(Ipv6Addr::UNSPECIFIED, R, R_MAC, false);
        assert_eq!(dst, ALL_NODES);
        let un = Icmpv6Repr::unsolicited_advert(R, R_MAC, false);
        assert_eq!(na, un);
        let mut out = [0u8; 32];
        un.emit(R, ALL_NODES, &mut out).unwrap();
        let theirs = etherparse::Icmpv6Slice::from_slice(&out).unwrap();
        assert!(theirs.is_checksum_valid(R.octets(), ALL_NODES.octets()));
        match theirs.icmp_type() {
            etherparse::Icmpv6Type::NeighborAdvertisement(h) => {
                assert!(!h.router && !h.solicited && h.r#override);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(&theirs.payload()[..16], &R.octets());
        assert_eq!(&out[24..], &[2, 1, 2, 0, 0, 0, 0x0a, 0x02]);
    }

    #[test]
    fn echo_request_becomes_the_captured_reply() {
        let mut buf = ECHO_REQUEST;
        let mut p = Icmpv6Packet::parse(&mut buf[..]).unwrap();
        p.make_echo_reply().unwrap();
        assert_eq!(buf, ECHO_REPLY);
        let mut p = Icmpv6Packet::parse(&mut buf[..]).unwrap();
        assert_eq!(p.make_echo_reply(), Err(Error::Unsupported));
        p.set_echo_ident(0x4242).unwrap();
        p.set_echo_seq(9).unwrap();
        assert!(p.verify_checksum(R, A));
        // NAT of the destination: fix the pseudo-header part incrementally.
        let nat = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7);
        p.update_checksum(&A.octets(), &nat.octets());
        assert!(p.verify_checksum(R, nat));
    }

    #[test]
    fn errors_known_answer() {
        let p = Icmpv6Packet::parse(&TIME_EXCEEDED[..]).unwrap();
        assert!(p.is_error());
        let q = p.quoted().unwrap();
        let inner = Icmpv6Packet::parse(&q[40..]).unwrap();
        assert_eq!(inner.echo_ident(), Some(11722));
        let dst_b = Ipv6Addr::new(0xfd00, 0x201, 2, 0, 0, 0, 0, 2);
        assert!(inner.verify_checksum(A, dst_b));
        let mut out = [0u8; 72];
        Icmpv6Repr::time_exceeded(time_exceeded::HOP_LIMIT, q)
            .emit(R, A, &mut out)
            .unwrap();
        assert_eq!(out, TIME_EXCEEDED);
        assert!(error_allowed_for(msg_type::TIME_EXCEEDED, 0, q));

        let cap = ptb_capture();
        let p = Icmpv6Packet::parse(&cap[..]).unwrap();
        assert_eq!(p.mtu(), Some(1280));
        let q = p.quoted().unwrap();
        assert_eq!(q.len(), MAX_QUOTE_LEN);
        assert_eq!(&q[40..42], &44432u16.to_be_bytes());
        // Given the whole 3072-byte offending packet, rvs cuts the quote where
        // Linux did.
        let mut offending = q.to_vec();
        offending.resize(40 + 3032, b'x');
        assert!(error_allowed_for(msg_type::PACKET_TOO_BIG, 0, &offending));
        let repr = Icmpv6Repr::packet_too_big(1280, &offending);
        assert_eq!(repr.buffer_len() + 40, MIN_MTU);
        let mut out = vec![0u8; repr.buffer_len()];
        repr.emit(R, A, &mut out).unwrap();
        assert_eq!(out, cap);
    }

    #[test]
    fn quoted_ipv6_header_and_ports() {
        let mut cap = ptb_capture();
        let p = Icmpv6Packet::parse(&cap[..]).unwrap();
        let (ip, proto, l4) = p.quoted_ipv6().unwrap();
        assert_eq!(ip.src(), A);
        assert_eq!(ip.dst(), Ipv6Addr::new(0xfd00, 0x201, 2, 0, 0, 0, 0, 2));
        assert_eq!(ip.payload_len.get(), 3032);
        assert_eq!(proto, ip_proto::TCP);
        assert_eq!(&l4[..4], &[0xad, 0x90, 0x13, 0x8a]); // 44432 > 5002
        // NAT of the quoted destination and port.
        let vip = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x80);
        let mut p = Icmpv6Packet::parse(&mut cap[..]).unwrap();
        let (ip, proto, l4) = p.quoted_ipv6_mut().unwrap();
        assert_eq!(proto, ip_proto::TCP);
        ip.dst = vip.octets();
        l4[2..4].copy_from_slice(&80u16.to_be_bytes());
        p.fill_checksum(R, A);
        assert!(p.verify_checksum(R, A));
        assert_eq!(&cap[32..48], &vip.octets());
        assert_eq!(&cap[50..52], &[0, 80]);

        let p = Icmpv6Packet::parse(&TIME_EXCEEDED[..]).unwrap();
        let (_, proto, l4) = p.quoted_ipv6().unwrap();
        assert_eq!(proto, ip_proto::ICMPV6);
        assert_eq!(l4, &ECHO_REQUEST_TO_B[..]);
        let p = Icmpv6Packet::parse(&NS[..]).unwrap();
        assert_eq!(p.quoted_ipv6().unwrap_err(), Error::Unsupported);
        let mut v4 = TIME_EXCEEDED;
        v4[8] = 0x45;
        let p = Icmpv6Packet::parse(&v4[..]).unwrap();
        assert_eq!(p.quoted_ipv6().unwrap_err(), Error::BadVersion);
        // Behind a destination-options header.
        let mut ext = TIME_EXCEEDED.to_vec();
        ext[14] = ip_proto::IPV6_OPTS;
        ext.splice(48..48, [ip_proto::ICMPV6, 0, 1, 4, 0, 0, 0, 0]);
        let mut p = Icmpv6Packet::parse(&mut ext[..]).unwrap();
        assert_eq!(p.quoted_ipv6().unwrap().2, &ECHO_REQUEST_TO_B[..]);
        let (_, proto, l4) = p.quoted_ipv6_mut().unwrap();
        assert_eq!((proto, &l4[..]), (ip_proto::ICMPV6, &ECHO_REQUEST_TO_B[..]));
        // A chain that runs past the quote.
        ext[49] = 200;
        let p = Icmpv6Packet::parse(&ext[..]).unwrap();
        assert!(p.quoted_ipv6().is_err());
    }

    #[test]
    fn error_rules() {
        let request = &TIME_EXCEEDED[8..];
        let te = msg_type::TIME_EXCEEDED;
        let ptb = msg_type::PACKET_TOO_BIG;
        assert!(error_allowed_for(te, 0, request));
        // About an error: never.
        let mut about_err = TIME_EXCEEDED[8..48].to_vec();
        about_err.extend_from_slice(&TIME_EXCEEDED);
        assert!(!error_allowed_for(ptb, 0, &about_err));
        let with = |at: usize, val: &[u8]| {
            let mut v = request.to_vec();
            v[at..at + val.len()].copy_from_slice(val);
            v
        };
        let mcast_dst = with(24, &ALL_NODES.octets());
        assert!(!error_allowed_for(te, 0, &mcast_dst));
        assert!(error_allowed_for(ptb, 0, &mcast_dst));
        assert!(error_allowed_for(msg_type::PARAM_PROBLEM, 2, &mcast_dst));
        assert!(!error_allowed_for(msg_type::PARAM_PROBLEM, 0, &mcast_dst));
        assert!(!error_allowed_for(te, 0, &with(8, &[0; 16])));
        assert!(!error_allowed_for(te, 0, &with(8, &[0xff; 16])));
        assert!(!error_allowed_for(te, 0, &with(0, &[0x45])));
        assert!(!error_allowed_for(te, 0, &request[..39]));
        assert!(!error_allowed_for(te, 0, &request[..40])); // ICMPv6 type unseen
        // Behind a destination-options header and a first fragment header.
        let mut chained = request[..40].to_vec();
        chained[6] = ip_proto::IPV6_OPTS;
        chained.extend_from_slice(&[ip_proto::IPV6_FRAG, 0, 1, 4, 0, 0, 0, 0]);
        chained.extend_from_slice(&[ip_proto::ICMPV6, 0, 0, 0, 0, 0, 0, 1]);
        let mut err_inside = chained.clone();
        err_inside.extend_from_slice(&TIME_EXCEEDED[..8]);
        assert!(!error_allowed_for(te, 0, &err_inside));
        let mut echo_inside = chained.clone();
        echo_inside.extend_from_slice(&ECHO_REQUEST);
        assert!(error_allowed_for(te, 0, &echo_inside));
        // A later fragment of ICMPv6: cannot tell, so no.
        let mut later = chained.clone();
        later[50] = 0x05; // fragment offset 160
        later.extend_from_slice(&ECHO_REQUEST);
        assert!(!error_allowed_for(te, 0, &later));
        // TCP: yes.
        let mut tcp = request[..40].to_vec();
        tcp[6] = ip_proto::TCP;
        assert!(error_allowed_for(te, 0, &tcp));
    }

    #[test]
    fn every_truncation_is_an_error() {
        for (msg, src, dst) in captures() {
            for n in 0..HEADER_LEN {
                assert_eq!(
                    Icmpv6Packet::parse(&msg[..n]).unwrap_err(),
                    Error::Truncated
                );
            }
            for n in HEADER_LEN..msg.len() {
                let p = Icmpv6Packet::parse(&msg[..n]).unwrap();
                // The pseudo-header length changes with the cut, so a cut
                // message never verifies.
                assert!(!p.verify_checksum(src, dst), "{n}");
                let repr = Icmpv6Repr::parse(&p);
                match p.msg_type() {
                    msg_type::NEIGHBOR_SOLICIT | msg_type::NEIGHBOR_ADVERT => {
                        if n == HEADER_LEN + 16 {
                            // Cut exactly before the option: a valid message.
                            let lladdr = repr.unwrap().buffer_len() > n;
                            assert!(!lladdr);
                            continue;
                        }
                        let want = if n < HEADER_LEN + 16 {
                            Error::Truncated
                        } else {
                            Error::BadOption
                        };
                        assert_eq!(repr, Err(want), "{n}");
                        if n > HEADER_LEN + 16 {
                            let opts = p.ndp_options().unwrap();
                            assert_eq!(opts.last(), Some(Err(Error::BadOption)));
                        }
                    }
                    _ if p.is_error() => {
                        let want = if n < HEADER_LEN + 48 {
                            Err(Error::Truncated)
                        } else {
                            Ok(&msg[8..n])
                        };
                        assert_eq!(p.quoted(), want, "{n}");
                    }
                    _ => assert!(repr.is_ok()),
                }
            }
        }
    }

    #[test]
    fn bad_options() {
        // Length 0 must not loop and must fail.
        let mut ns = NS;
        ns[25] = 0;
        let p = Icmpv6Packet::parse(&ns[..]).unwrap();
        let opts: Vec<_> = p.ndp_options().unwrap().collect();
        assert_eq!(opts, [Err(Error::BadOption)]);
        assert_eq!(Icmpv6Repr::parse(&p), Err(Error::BadOption));
        // Length beyond the end.
        ns[25] = 2;
        let p = Icmpv6Packet::parse(&ns[..]).unwrap();
        assert_eq!(Icmpv6Repr::parse(&p), Err(Error::BadOption));
        // Unknown options are skipped; a wrong-length MTU option is an error.
        let mut ns = NS.to_vec();
        ns.splice(24..24, [200, 1, 0, 0, 0, 0, 0, 0]);
        let p = Icmpv6Packet::parse(&ns[..]).unwrap();
        assert_eq!(
            Icmpv6Repr::parse(&p),
            Ok(Icmpv6Repr::neighbor_solicit(R, A_MAC))
        );
        ns[24] = ndp_option::MTU;
        ns[25] = 2;
        ns.extend_from_slice(&[0; 8]);
        let p = Icmpv6Packet::parse(&ns[..]).unwrap();
        assert_eq!(Icmpv6Repr::parse(&p), Err(Error::BadOption));
        // A non-zero code makes an ND message invalid: kept as Other.
        let mut ns = NS;
        ns[1] = 1;
        let p = Icmpv6Packet::parse(&ns[..]).unwrap();
        assert!(matches!(
            Icmpv6Repr::parse(&p),
            Ok(Icmpv6Repr::Other { msg_type: 135, .. })
        ));
        assert_eq!(
            NdpOption::Other {
                kind: 9,
                data: &[0; 5]
            }
            .emit(&mut [0; 16]),
            Err(Error::BadLength)
        );
    }

    #[test]
    fn router_advert_round_trip_with_options() {
        let pi = PrefixInfo {
            prefix_len: 64,
            flags: 0xc0,
            valid_lifetime: 2_592_000,
            preferred_lifetime: 604_800,
            prefix: Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, 0),
        };
        let options = [
            NdpOption::SourceLinkLayerAddr(R_MAC),
            NdpOption::Mtu(1500),
            NdpOption::PrefixInfo(pi),
            NdpOption::Other {
                kind: 25,
                // RDNSS (RFC 8106): reserved, lifetime 3600, 2001:db8::53.
                data: &[
                    0, 0, 0, 0, 0x0e, 0x10, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                    0, 0x53,
                ],
            },
        ];
        let mut opt_buf = [0u8; 8 + 8 + 32 + 24];
        let mut at = 0;
        for o in &options {
            at += o.emit(&mut opt_buf[at..]).unwrap();
        }
        assert_eq!(at, opt_buf.len());
        let ra = Icmpv6Repr::RouterAdvert {
            cur_hop_limit: 64,
            flags: 0x40,
            router_lifetime: 1800,
            reachable_time: 30_000,
            retrans_timer: 1000,
            options: &opt_buf,
        };
        let mut out = vec![0u8; ra.buffer_len()];
        ra.emit(R_LL, ALL_NODES, &mut out).unwrap();
        let p = Icmpv6Packet::parse(&out[..]).unwrap();
        assert_eq!(Icmpv6Repr::parse(&p), Ok(ra));
        let read: Vec<_> = p.ndp_options().unwrap().map(|o| o.unwrap()).collect();
        assert_eq!(read, options);
        let theirs = etherparse::Icmpv6Slice::from_slice(&out).unwrap();
        assert!(theirs.is_checksum_valid(R_LL.octets(), ALL_NODES.octets()));
        match theirs.icmp_type() {
            etherparse::Icmpv6Type::RouterAdvertisement(h) => {
                assert_eq!(
                    (h.cur_hop_limit, h.other_config, h.router_lifetime),
                    (64, true, 1800)
                );
            }
            other => panic!("{other:?}"),
        }
    }

    fn mac() -> impl Strategy<Value = Option<MacAddr>> {
        proptest::option::of(any::<[u8; 6]>().prop_map(MacAddr))
    }

    fn ip6() -> impl Strategy<Value = Ipv6Addr> {
        any::<[u8; 16]>().prop_map(Ipv6Addr::from)
    }

    type Input = (u8, u8, u32, Ipv6Addr, Option<MacAddr>, u8, Vec<u8>);

    fn input() -> impl Strategy<Value = Input> {
        (
            0u8..11,
            any::<u8>(),
            any::<u32>(),
            ip6(),
            mac(),
            any::<u8>(),
            proptest::collection::vec(any::<u8>(), 0..1300),
        )
    }

    fn build(&(kind, code, word, addr, mac, t, ref data): &Input) -> Icmpv6Repr<'_> {
        let [a, b, c, d] = word.to_be_bytes();
        let hi = u16::from_be_bytes([a, b]);
        let lo = u16::from_be_bytes([c, d]);
        match kind {
            0 => Icmpv6Repr::DstUnreachable { code, quoted: data },
            1 => Icmpv6Repr::PacketTooBig {
                mtu: word,
                quoted: data,
            },
            2 => Icmpv6Repr::TimeExceeded { code, quoted: data },
            3 => Icmpv6Repr::ParamProblem {
                code,
                pointer: word,
                quoted: data,
            },
            4 => Icmpv6Repr::EchoRequest {
                ident: hi,
                seq: lo,
                data,
            },
            5 => Icmpv6Repr::EchoReply {
                ident: hi,
                seq: lo,
                data,
            },
            6 => Icmpv6Repr::RouterSolicit { source_lladdr: mac },
            7 => Icmpv6Repr::NeighborSolicit {
                target: addr,
                source_lladdr: mac,
            },
            8 => Icmpv6Repr::NeighborAdvert {
                flags: NaFlags::from_byte(code),
                target: addr,
                target_lladdr: mac,
            },
            9 => Icmpv6Repr::RouterAdvert {
                cur_hop_limit: code,
                flags: t,
                router_lifetime: hi,
                reachable_time: word,
                retrans_timer: word.rotate_left(7),
                options: &[],
            },
            _ => {
                let t = if matches!(t, 1..=4 | 128 | 129 | 133..=136) {
                    200
                } else {
                    t
                };
                Icmpv6Repr::Other {
                    msg_type: t,
                    code,
                    rest: [a, b, c, d],
                    data,
                }
            }
        }
    }

    proptest! {
        #[test]
        fn round_trip(input in input(), src in ip6(), dst in ip6()) {
            let repr = build(&input);
            let mut buf = vec![0u8; repr.buffer_len()];
            prop_assert_eq!(repr.emit(src, dst, &mut buf), Ok(buf.len()));
            let p = Icmpv6Packet::parse(&buf[..]).unwrap();
            prop_assert!(p.verify_checksum(src, dst));
            prop_assert_eq!(Icmpv6Repr::parse(&p), Ok(repr));
            // Independent oracle for the checksum.
            let theirs = etherparse::Icmpv6Slice::from_slice(&buf).unwrap();
            prop_assert!(theirs.is_checksum_valid(src.octets(), dst.octets()));
        }

        #[test]
        fn echo_rewrites_keep_checksum(data in proptest::collection::vec(any::<u8>(), 0..200),
                                       ident in any::<u16>(), new_ident in any::<u16>(),
                                       new_seq in any::<u16>(), src in ip6(), dst in ip6()) {
            let req = Icmpv6Repr::EchoRequest { ident, seq: 1, data: &data };
            let mut buf = vec![0u8; req.buffer_len()];
            req.emit(src, dst, &mut buf).unwrap();
            let mut p = Icmpv6Packet::parse(&mut buf[..]).unwrap();
            p.set_echo_ident(new_ident).unwrap();
            p.set_echo_seq(new_seq).unwrap();
            p.make_echo_reply().unwrap();
            prop_assert!(p.verify_checksum(dst, src));
            let want = Icmpv6Repr::EchoReply { ident: new_ident, seq: new_seq, data: &data };
            prop_assert_eq!(Icmpv6Repr::parse(&p), Ok(want));
        }

        #[test]
        fn quote_is_bounded(len in 0usize..3000) {
            let offending = vec![0x60u8; len];
            let repr = Icmpv6Repr::packet_too_big(1280, &offending);
            prop_assert_eq!(repr.buffer_len(), HEADER_LEN + len.min(MAX_QUOTE_LEN));
            prop_assert!(repr.buffer_len() + 40 <= MIN_MTU);
        }

        #[test]
        fn arbitrary_bytes_never_panic(mut data in proptest::collection::vec(any::<u8>(), 0..128),
                                       t in prop_oneof![Just(133u8), Just(134), Just(135), Just(136), Just(137), any::<u8>()]) {
            if let Some(first) = data.first_mut() {
                *first = t;
            }
            if let Some(code) = data.get_mut(1) {
                *code = 0;
            }
            if let Ok(p) = Icmpv6Packet::parse(&data[..]) {
                let _ = (p.quoted(), p.target(), p.na_flags(), p.mtu(), p.pointer());
                if let Ok(opts) = p.ndp_options() {
                    prop_assert!(opts.count() <= data.len() / 8);
                }
                if let Ok(repr) = Icmpv6Repr::parse(&p) {
                    let mut out = vec![0u8; repr.buffer_len()];
                    prop_assert_eq!(repr.emit(A, R, &mut out), Ok(out.len()));
                    let q = Icmpv6Packet::parse(&out[..]).unwrap();
                    prop_assert_eq!(Icmpv6Repr::parse(&q), Ok(repr));
                }
            }
            let _ = error_allowed_for(1, 0, &data);
            if let Ok(mut p) = Icmpv6Packet::parse(&mut data[..]) {
                let _ = p.set_echo_ident(7);
                let _ = p.make_echo_reply();
                p.fill_checksum(A, R);
                prop_assert!(p.verify_checksum(A, R));
            }
        }

        #[test]
        fn arbitrary_options_never_panic(data in proptest::collection::vec(any::<u8>(), 0..96)) {
            let mut n = 0;
            for o in NdpOptions::new(&data) {
                n += 1;
                if let Ok(o) = o {
                    let mut out = [0u8; 2048];
                    let len = o.emit(&mut out).unwrap();
                    let (back, rest) = NdpOption::parse(&out[..len]).unwrap();
                    prop_assert_eq!(back, o);
                    prop_assert!(rest.is_empty());
                }
            }
            prop_assert!(n <= data.len() / 2 + 1);
        }

        #[test]
        fn emit_into_short_buffer_fails(input in input(), short in any::<proptest::sample::Index>()) {
            let repr = build(&input);
            let n = short.index(repr.buffer_len());
            let mut buf = vec![0u8; n];
            prop_assert_eq!(repr.emit(A, R, &mut buf), Err(Error::BufferTooSmall));
        }
    }
}
