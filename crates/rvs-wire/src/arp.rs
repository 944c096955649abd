//! ARP (RFC 826) for IPv4 over Ethernet, and the two packets rvs sends:
//! replies for the addresses it owns (VIPs, local addresses) and gratuitous
//! announcements when an address is added or moves to this node (VRRP
//! takeover).
//!
//! # What is accepted
//! ARP is generic over hardware and protocol types, but rvs only resolves
//! IPv4 on Ethernet, so [`ArpPacket::parse`] accepts exactly hardware type 1,
//! protocol type `0x0800`, address lengths 6 and 4 (a fixed 28-byte body)
//! and the operations request (1) and reply (2); anything else is
//! [`Error::Unsupported`] (counted and dropped, or passed to the kernel),
//! and a body shorter than 28 bytes is [`Error::Truncated`]. After `parse`
//! every accessor is a plain field read. Bytes after the 28 (Ethernet
//! padding up to 60) are kept as [`ArpPacket::trailer`] and ignored.
//!
//! # Gratuitous ARP
//! [`ArpRepr::announce`] builds the RFC 5227 §2.3 *ARP Announcement*: a
//! request whose sender and target protocol addresses are both the announced
//! address and whose target hardware address is zero, sent to the broadcast
//! MAC. Linux, keepalived and switches all update their tables from it.
//! (DPVS sent none when an address was added; rvs must.)

use core::fmt;
use core::net::Ipv4Addr;

use zerocopy::network_endian::U16;
use zerocopy::{
    FromBytes, Immutable, IntoBytes, KnownLayout, Ref, SplitByteSlice, SplitByteSliceMut, Unaligned,
};

use crate::ethernet::{self, EthernetHeader, MacAddr, ethertype};
use crate::{Error, Result};

/// ARP hardware type for Ethernet (RFC 826, IANA "Hardware Types").
pub const HTYPE_ETHERNET: u16 = 1;

/// Length of the Ethernet/IPv4 ARP body.
pub const HEADER_LEN: usize = core::mem::size_of::<ArpHeader>();

/// Length of an Ethernet frame carrying an ARP body, before padding to the
/// 60-byte Ethernet minimum (which NICs add; veth and AF_XDP do not need it).
pub const FRAME_LEN: usize = ethernet::HEADER_LEN + HEADER_LEN;

/// The ARP operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpOperation {
    /// `who-has` (1).
    Request,
    /// `is-at` (2).
    Reply,
}

impl ArpOperation {
    /// The wire value; `None` for operations rvs does not handle (RARP,
    /// InARP, ...).
    pub const fn from_u16(op: u16) -> Option<Self> {
        match op {
            1 => Some(ArpOperation::Request),
            2 => Some(ArpOperation::Reply),
            _ => None,
        }
    }

    /// The wire value.
    pub const fn to_u16(self) -> u16 {
        match self {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
        }
    }
}

/// The 28-byte ARP body for Ethernet/IPv4.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Debug, Clone, Copy)]
#[repr(C)]
pub struct ArpHeader {
    /// Hardware type (1 for Ethernet).
    pub htype: U16,
    /// Protocol type (`0x0800` for IPv4).
    pub ptype: U16,
    /// Hardware address length (6).
    pub hlen: u8,
    /// Protocol address length (4).
    pub plen: u8,
    /// Operation.
    pub oper: U16,
    /// Sender hardware address.
    pub sha: MacAddr,
    /// Sender protocol address.
    pub spa: [u8; 4],
    /// Target hardware address.
    pub tha: MacAddr,
    /// Target protocol address.
    pub tpa: [u8; 4],
}

/// A view of an Ethernet/IPv4 ARP packet (the Ethernet payload).
pub struct ArpPacket<B> {
    header: Ref<B, ArpHeader>,
    trailer: B,
}

impl<B: SplitByteSlice> fmt::Debug for ArpPacket<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArpPacket")
            .field("operation", &self.operation())
            .field("sender_mac", &self.sender_mac())
            .field("sender_ip", &self.sender_ip())
            .field("target_mac", &self.target_mac())
            .field("target_ip", &self.target_ip())
            .field("trailer_len", &self.trailer.len())
            .finish()
    }
}

impl<B: SplitByteSlice> ArpPacket<B> {
    /// Validates the fixed fields (see the module docs) and splits off the
    /// 28-byte body.
    pub fn parse(bytes: B) -> Result<Self> {
        // The first 8 bytes say what the rest is: judge them before the
        // length, so a short ARP of another kind is "unsupported", not
        // "truncated".
        let fixed: &[u8; 8] = bytes.first_chunk().ok_or(Error::Truncated)?;
        let [h0, h1, p0, p1, hlen, plen, o0, o1] = *fixed;
        if u16::from_be_bytes([h0, h1]) != HTYPE_ETHERNET
            || u16::from_be_bytes([p0, p1]) != ethertype::IPV4
            || hlen != 6
            || plen != 4
            || ArpOperation::from_u16(u16::from_be_bytes([o0, o1])).is_none()
        {
            return Err(Error::Unsupported);
        }
        let (header, trailer) = Ref::from_prefix(bytes).map_err(|_| Error::Truncated)?;
        Ok(ArpPacket { header, trailer })
    }

    /// The body.
    pub fn header(&self) -> &ArpHeader {
        &self.header
    }

    /// The operation.
    pub fn operation(&self) -> ArpOperation {
        // `parse` admitted only 1 and 2, and setters write only those.
        if self.header.oper.get() == 2 {
            ArpOperation::Reply
        } else {
            ArpOperation::Request
        }
    }

    /// Sender hardware address.
    pub fn sender_mac(&self) -> MacAddr {
        self.header.sha
    }

    /// Sender protocol address.
    pub fn sender_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.header.spa)
    }

    /// Target hardware address (zero, or anything, in a request).
    pub fn target_mac(&self) -> MacAddr {
        self.header.tha
    }

    /// Target protocol address.
    pub fn target_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.header.tpa)
    }

    /// Bytes after the 28-byte body (Ethernet padding).
    pub fn trailer(&self) -> &[u8] {
        &self.trailer
    }

    /// True for a gratuitous ARP (request or reply whose sender and target
    /// protocol addresses are equal): an announcement, not a question.
    pub fn is_gratuitous(&self) -> bool {
        self.header.spa == self.header.tpa
    }

    /// True for an RFC 5227 ARP probe (a request with sender address
    /// 0.0.0.0, sent during address conflict detection).
    pub fn is_probe(&self) -> bool {
        self.operation() == ArpOperation::Request && self.header.spa == [0; 4]
    }
}

impl<B: SplitByteSliceMut> ArpPacket<B> {
    /// Sets the operation.
    pub fn set_operation(&mut self, op: ArpOperation) {
        self.header.oper.set(op.to_u16());
    }

    /// Sets the sender hardware address.
    pub fn set_sender_mac(&mut self, mac: MacAddr) {
        self.header.sha = mac;
    }

    /// Sets the sender protocol address.
    pub fn set_sender_ip(&mut self, ip: Ipv4Addr) {
        self.header.spa = ip.octets();
    }

    /// Sets the target hardware address.
    pub fn set_target_mac(&mut self, mac: MacAddr) {
        self.header.tha = mac;
    }

    /// Sets the target protocol address.
    pub fn set_target_ip(&mut self, ip: Ipv4Addr) {
        self.header.tpa = ip.octets();
    }
}

/// A parsed or to-be-built Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    /// Request or reply.
    pub operation: ArpOperation,
    /// Sender hardware address.
    pub sender_mac: MacAddr,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address.
    pub target_mac: MacAddr,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl ArpRepr {
    /// Reads a parsed packet.
    pub fn parse<B: SplitByteSlice>(packet: &ArpPacket<B>) -> Self {
        ArpRepr {
            operation: packet.operation(),
            sender_mac: packet.sender_mac(),
            sender_ip: packet.sender_ip(),
            target_mac: packet.target_mac(),
            target_ip: packet.target_ip(),
        }
    }

    /// A request for `target_ip` from `our_mac`/`our_ip` (target MAC zero, as
    /// RFC 5227 recommends and Linux sends).
    pub const fn request(our_mac: MacAddr, our_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Self {
        ArpRepr {
            operation: ArpOperation::Request,
            sender_mac: our_mac,
            sender_ip: our_ip,
            target_mac: MacAddr::ZERO,
            target_ip,
        }
    }

    /// The reply to this request, from `our_mac` (which owns the requested
    /// address): sender and target swapped, our MAC as sender. `None` if
    /// this is not a request. Whether to answer at all (is the target ours?
    /// is the asker on this segment?) is the caller's decision.
    pub const fn reply(&self, our_mac: MacAddr) -> Option<Self> {
        match self.operation {
            ArpOperation::Request => Some(ArpRepr {
                operation: ArpOperation::Reply,
                sender_mac: our_mac,
                sender_ip: self.target_ip,
                target_mac: self.sender_mac,
                target_ip: self.sender_ip,
            }),
            ArpOperation::Reply => None,
        }
    }

    /// A gratuitous ARP announcing that `ip` is at `mac`, in the RFC 5227
    /// announcement form (request, sender IP = target IP, target MAC zero).
    pub const fn announce(mac: MacAddr, ip: Ipv4Addr) -> Self {
        ArpRepr {
            operation: ArpOperation::Request,
            sender_mac: mac,
            sender_ip: ip,
            target_mac: MacAddr::ZERO,
            target_ip: ip,
        }
    }

    /// The Ethernet destination this packet is sent to: the asker for a
    /// reply, broadcast for a request or announcement.
    pub fn eth_dst(&self) -> MacAddr {
        match self.operation {
            ArpOperation::Reply => self.target_mac,
            ArpOperation::Request => MacAddr::BROADCAST,
        }
    }

    /// Bytes [`ArpRepr::emit`] writes.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the 28-byte body at the start of `buf`; returns 28.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let (hdr, _) = ArpHeader::mut_from_prefix(buf).map_err(|_| Error::BufferTooSmall)?;
        hdr.htype.set(HTYPE_ETHERNET);
        hdr.ptype.set(ethertype::IPV4);
        hdr.hlen = 6;
        hdr.plen = 4;
        hdr.oper.set(self.operation.to_u16());
        hdr.sha = self.sender_mac;
        hdr.spa = self.sender_ip.octets();
        hdr.tha = self.target_mac;
        hdr.tpa = self.target_ip.octets();
        Ok(HEADER_LEN)
    }

    /// Writes a whole untagged frame: an Ethernet header from the sender MAC
    /// to [`ArpRepr::eth_dst`], then the body; returns [`FRAME_LEN`]. No
    /// padding is added.
    pub fn emit_frame(&self, buf: &mut [u8]) -> Result<usize> {
        let (eth, rest) =
            EthernetHeader::mut_from_prefix(buf).map_err(|_| Error::BufferTooSmall)?;
        // Check the body fits before writing anything.
        if rest.len() < HEADER_LEN {
            return Err(Error::BufferTooSmall);
        }
        eth.dst = self.eth_dst();
        eth.src = self.sender_mac;
        eth.ethertype.set(ethertype::ARP);
        self.emit(rest)?;
        Ok(FRAME_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Captured with `tcpdump -xx -e -vv` on a veth pair between two network
    // namespaces made for the purpose (10.99.0.1 at 02:00:00:00:0a:01,
    // 10.99.0.2 at 02:00:00:00:0b:02, Linux 6.x answering): a UDP send from
    // .1 to .2 triggered the request and the kernel's reply.

    /// `02:00:00:00:0a:01 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length
    /// 42: Ethernet (len 6), IPv4 (len 4), Request who-has 10.99.0.2 tell
    /// 10.99.0.1, length 28`.
    const REQUEST: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x0a, 0x01, 0x08, 0x06, 0x00,
        0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x0a, 0x01, 0x0a, 0x63,
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x63, 0x00, 0x02,
    ];

    /// `02:00:00:00:0b:02 > 02:00:00:00:0a:01, ethertype ARP (0x0806), length
    /// 42: Ethernet (len 6), IPv4 (len 4), Reply 10.99.0.2 is-at
    /// 02:00:00:00:0b:02, length 28`.
    const REPLY: [u8; 42] = [
        0x02, 0x00, 0x00, 0x00, 0x0a, 0x01, 0x02, 0x00, 0x00, 0x00, 0x0b, 0x02, 0x08, 0x06, 0x00,
        0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x0b, 0x02, 0x0a, 0x63,
        0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x0a, 0x01, 0x0a, 0x63, 0x00, 0x01,
    ];

    /// The kernel's own gratuitous ARP (same setup, `arp_notify=1`, link
    /// taken down and up): `02:00:00:00:0a:01 > ff:ff:ff:ff:ff:ff, ethertype
    /// ARP (0x0806), length 42: Request who-has 10.99.0.1 tell 10.99.0.1`.
    const LINUX_GARP: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x0a, 0x01, 0x08, 0x06, 0x00,
        0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x0a, 0x01, 0x0a, 0x63,
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x63, 0x00, 0x01,
    ];

    const MAC_A: MacAddr = MacAddr([0x02, 0, 0, 0, 0x0a, 0x01]);
    const MAC_B: MacAddr = MacAddr([0x02, 0, 0, 0, 0x0b, 0x02]);
    const IP_A: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
    const IP_B: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);

    #[test]
    fn request_known_answer() {
        let p = ArpPacket::parse(&REQUEST[14..]).unwrap();
        assert_eq!(p.operation(), ArpOperation::Request);
        assert_eq!(p.sender_mac(), MAC_A);
        assert_eq!(p.sender_ip(), IP_A);
        assert_eq!(p.target_mac(), MacAddr::ZERO);
        assert_eq!(p.target_ip(), IP_B);
        assert!(!p.is_gratuitous() && !p.is_probe());
        assert!(p.trailer().is_empty());
        let repr = ArpRepr::parse(&p);
        assert_eq!(repr, ArpRepr::request(MAC_A, IP_A, IP_B));
        let mut out = [0u8; FRAME_LEN];
        assert_eq!(repr.emit_frame(&mut out), Ok(FRAME_LEN));
        assert_eq!(out, REQUEST);
    }

    #[test]
    fn reply_known_answer() {
        let p = ArpPacket::parse(&REPLY[14..]).unwrap();
        assert_eq!(p.operation(), ArpOperation::Reply);
        assert_eq!((p.sender_mac(), p.sender_ip()), (MAC_B, IP_B));
        assert_eq!((p.target_mac(), p.target_ip()), (MAC_A, IP_A));
        assert_eq!(ArpRepr::parse(&p).reply(MAC_B), None);
    }

    /// What rvs answers to the captured request, if it owned 10.99.0.2 at
    /// MAC_B, is byte for byte what the Linux kernel answered.
    #[test]
    fn reply_helper_matches_linux() {
        let req = ArpRepr::parse(&ArpPacket::parse(&REQUEST[14..]).unwrap());
        let reply = req.reply(MAC_B).unwrap();
        let mut out = [0u8; FRAME_LEN];
        assert_eq!(reply.emit_frame(&mut out), Ok(FRAME_LEN));
        assert_eq!(out, REPLY);
    }

    /// The announcement helper builds the same frame as the kernel's own
    /// gratuitous ARP.
    #[test]
    fn announce_matches_linux() {
        let garp = ArpRepr::announce(MAC_A, IP_A);
        let mut out = [0u8; FRAME_LEN];
        assert_eq!(garp.emit_frame(&mut out), Ok(FRAME_LEN));
        assert_eq!(out, LINUX_GARP);
        let p = ArpPacket::parse(&LINUX_GARP[14..]).unwrap();
        assert!(p.is_gratuitous());
        assert!(!p.is_probe());
        assert_eq!(ArpRepr::parse(&p), garp);
    }

    #[test]
    fn cross_check_etherparse() {
        for frame in [&REQUEST, &REPLY, &LINUX_GARP] {
            let ours = ArpRepr::parse(&ArpPacket::parse(&frame[14..]).unwrap());
            let theirs = etherparse::ArpPacket::from_slice(&frame[14..])
                .unwrap()
                .try_eth_ipv4()
                .unwrap();
            assert_eq!(theirs.operation.0, ours.operation.to_u16());
            assert_eq!(theirs.sender_mac, ours.sender_mac.octets());
            assert_eq!(theirs.sender_ipv4_addr(), ours.sender_ip);
            assert_eq!(theirs.target_mac, ours.target_mac.octets());
            assert_eq!(theirs.target_ipv4_addr(), ours.target_ip);
        }
    }

    #[test]
    fn padding_is_a_trailer() {
        let mut padded = [0u8; 60];
        padded[..42].copy_from_slice(&REQUEST);
        let p = ArpPacket::parse(&padded[14..]).unwrap();
        assert_eq!(p.trailer().len(), 18);
        assert_eq!(p.target_ip(), IP_B);
    }

    #[test]
    fn every_truncation_is_an_error() {
        for n in 0..HEADER_LEN {
            assert_eq!(
                ArpPacket::parse(&REQUEST[14..14 + n]).unwrap_err(),
                Error::Truncated,
                "{n}"
            );
        }
    }

    #[test]
    fn unsupported_kinds() {
        // (offset, value) changes that each make the body something rvs does
        // not handle: hardware type, protocol type (IPv6), lengths, and the
        // RARP / InARP / zero operations.
        let changes: [(usize, &[u8]); 8] = [
            (0, &[0x00, 0x06]),
            (2, &[0x86, 0xdd]),
            (4, &[0x08]),
            (5, &[0x10]),
            (6, &[0x00, 0x03]),
            (6, &[0x00, 0x04]),
            (6, &[0x00, 0x08]),
            (6, &[0x00, 0x00]),
        ];
        for (off, val) in changes {
            let mut body = [0u8; HEADER_LEN];
            body.copy_from_slice(&REQUEST[14..]);
            body[off..off + val.len()].copy_from_slice(val);
            assert_eq!(ArpPacket::parse(&body[..]).unwrap_err(), Error::Unsupported);
            // Unsupported wins over truncated once the fixed part is there.
            assert_eq!(
                ArpPacket::parse(&body[..8]).unwrap_err(),
                Error::Unsupported
            );
        }
    }

    #[test]
    fn probe() {
        let mut body = [0u8; HEADER_LEN];
        ArpRepr::request(MAC_A, Ipv4Addr::UNSPECIFIED, IP_B)
            .emit(&mut body)
            .unwrap();
        assert!(ArpPacket::parse(&body[..]).unwrap().is_probe());
    }

    #[test]
    fn rewrite_in_place_into_a_reply() {
        let mut body = [0u8; HEADER_LEN];
        body.copy_from_slice(&REQUEST[14..]);
        let mut p = ArpPacket::parse(&mut body[..]).unwrap();
        let (smac, sip, tip) = (p.sender_mac(), p.sender_ip(), p.target_ip());
        p.set_operation(ArpOperation::Reply);
        p.set_sender_mac(MAC_B);
        p.set_sender_ip(tip);
        p.set_target_mac(smac);
        p.set_target_ip(sip);
        assert_eq!(body, REPLY[14..]);
    }

    #[test]
    fn short_buffers() {
        let r = ArpRepr::announce(MAC_A, IP_A);
        for n in 0..FRAME_LEN {
            let mut buf = vec![0xaau8; n];
            assert_eq!(r.emit_frame(&mut buf), Err(Error::BufferTooSmall));
            // Nothing is written when the frame does not fit.
            assert!(buf.iter().all(|&b| b == 0xaa));
        }
        for n in 0..HEADER_LEN {
            assert_eq!(r.emit(&mut vec![0u8; n]), Err(Error::BufferTooSmall));
        }
    }

    fn arb_repr() -> impl Strategy<Value = ArpRepr> {
        (
            any::<bool>(),
            any::<[u8; 6]>(),
            any::<u32>(),
            any::<[u8; 6]>(),
            any::<u32>(),
        )
            .prop_map(|(reply, sm, si, tm, ti)| ArpRepr {
                operation: if reply {
                    ArpOperation::Reply
                } else {
                    ArpOperation::Request
                },
                sender_mac: MacAddr(sm),
                sender_ip: Ipv4Addr::from_bits(si),
                target_mac: MacAddr(tm),
                target_ip: Ipv4Addr::from_bits(ti),
            })
    }

    proptest! {
        #[test]
        fn round_trip(repr in arb_repr(), pad in 0usize..32) {
            let mut buf = vec![0u8; FRAME_LEN + pad];
            prop_assert_eq!(repr.emit_frame(&mut buf), Ok(FRAME_LEN));
            let eth = ethernet::EthernetFrame::parse(&buf[..]).unwrap();
            prop_assert_eq!(eth.ethertype(), ethertype::ARP);
            prop_assert_eq!(eth.src(), repr.sender_mac);
            prop_assert_eq!(eth.dst(), repr.eth_dst());
            let p = ArpPacket::parse(eth.payload()).unwrap();
            prop_assert_eq!(ArpRepr::parse(&p), repr);
            prop_assert_eq!(p.trailer().len(), pad);

            // Independent decoder.
            let theirs = etherparse::ArpPacket::from_slice(eth.payload()).unwrap().try_eth_ipv4().unwrap();
            prop_assert_eq!(theirs.operation.0, repr.operation.to_u16());
            prop_assert_eq!(theirs.sender_mac, repr.sender_mac.octets());
            prop_assert_eq!(theirs.sender_ipv4_addr(), repr.sender_ip);
            prop_assert_eq!(theirs.target_mac, repr.target_mac.octets());
            prop_assert_eq!(theirs.target_ipv4_addr(), repr.target_ip);
            // And the other way: etherparse's bytes parse to the same repr.
            prop_assert_eq!(&theirs.to_bytes()[..], &buf[14..FRAME_LEN]);

            for n in 0..HEADER_LEN {
                prop_assert_eq!(ArpPacket::parse(&buf[14..14 + n]).unwrap_err(), Error::Truncated);
            }
        }

        #[test]
        fn reply_swaps(repr in arb_repr(), mac in any::<[u8; 6]>()) {
            let req = ArpRepr { operation: ArpOperation::Request, ..repr };
            let rep = req.reply(MacAddr(mac)).unwrap();
            prop_assert_eq!(rep.operation, ArpOperation::Reply);
            prop_assert_eq!((rep.sender_mac, rep.sender_ip), (MacAddr(mac), req.target_ip));
            prop_assert_eq!((rep.target_mac, rep.target_ip), (req.sender_mac, req.sender_ip));
            prop_assert_eq!(rep.eth_dst(), req.sender_mac);
        }

        #[test]
        fn arbitrary_bytes_never_panic(mut data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = ArpPacket::parse(&data[..]).map(|p| ArpRepr::parse(&p));
            if let Ok(mut p) = ArpPacket::parse(&mut data[..]) {
                p.set_operation(ArpOperation::Reply);
            }
        }
    }
}
