//! IEEE 802.1Q VLAN tags, stacked tags (802.1ad QinQ) and the in-place
//! tag push/pop a load balancer needs.
//!
//! # Layout
//! A tag is four bytes inserted after the source MAC: a TPID (what the
//! Ethernet header's EtherType field would otherwise hold: `0x8100`, or for a
//! service tag `0x88a8` / the pre-standard `0x9100`) followed by the TCI
//! (3-bit priority code point, 1-bit drop-eligible indicator, 12-bit VLAN ID).
//! The EtherType of what the tag carries follows the TCI, so once the
//! Ethernet view has consumed the TPID, the rest of a tag is
//! `TCI | EtherType` — the 4-byte [`VlanHeader`] this module's view
//! [`VlanTag`] reads:
//!
//! ```text
//! dst(6) src(6) TPID₁ | TCI₁ TPID₂ | TCI₂ EtherType | payload
//!               ^ Ethernet EtherType ^ VlanHeader₁   ^ VlanHeader₂
//! ```
//!
//! # Why a walker with a bound
//! rvs implements VLANs in user space (the test kernel has no 8021q module,
//! and DPVS does the same): every received frame goes through [`walk`], which
//! follows tags of any of the three TPIDs at any depth (as Linux does for
//! `0x8100`/`0x88a8`) up to [`MAX_TAGS`] and returns them in a fixed-size
//! [`VlanStack`] — no allocation per packet. Deeper stacks are legal 802.1Q
//! but nothing rvs serves uses them, and an unbounded walk over attacker
//! bytes is work we do not want on the fast path, so they are
//! [`Error::Unsupported`].
//!
//! VID 0 (priority-tagged frame) and VID 4095 (reserved) are reported as
//! they are; whether to accept them is the caller's policy.
//!
//! # In place
//! [`pop_outer_tag`] and [`push_tag`] move only the 12 MAC bytes: the frame's
//! start moves by four bytes inside the caller's buffer (which therefore
//! needs four bytes of headroom to push), and the payload never moves.

use core::fmt;

use zerocopy::network_endian::U16;
use zerocopy::{
    FromBytes, Immutable, IntoBytes, KnownLayout, Ref, SplitByteSlice, SplitByteSliceMut, Unaligned,
};

use crate::ethernet::{self, MacAddr, ethertype};
use crate::{Error, Result};

/// Length of one tag on the wire (TPID + TCI, or equivalently TCI + EtherType).
pub const TAG_LEN: usize = 4;

/// Length of [`VlanHeader`] (the part of a tag after its TPID).
pub const HEADER_LEN: usize = core::mem::size_of::<VlanHeader>();

/// Most tags [`walk`] follows before giving up with [`Error::Unsupported`].
pub const MAX_TAGS: usize = 4;

/// Largest VLAN ID (4095 itself is reserved by 802.1Q but representable).
pub const MAX_VID: u16 = 0x0fff;

/// True for the EtherType values that announce a VLAN tag: 802.1Q
/// (`0x8100`), 802.1ad (`0x88a8`) and the pre-standard QinQ `0x9100`.
pub const fn is_tpid(ethertype: u16) -> bool {
    matches!(
        ethertype,
        ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_LEGACY
    )
}

/// The tag control information: PCP (3 bits), DEI (1 bit), VID (12 bits).
///
/// Every `u16` is a valid TCI, so a `Tci` read from the wire needs no check;
/// [`Tci::new`] checks the ranges of the parts when building one.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Tci(u16);

impl Tci {
    /// Builds a TCI from its parts; `None` if `pcp > 7` or `vid > 4095`.
    pub const fn new(pcp: u8, dei: bool, vid: u16) -> Option<Tci> {
        if pcp > 7 || vid > MAX_VID {
            return None;
        }
        Some(Tci(((pcp as u16) << 13) | ((dei as u16) << 12) | vid))
    }

    /// A TCI with priority 0, DEI clear and the given VID; `None` if
    /// `vid > 4095`.
    pub const fn from_vid(vid: u16) -> Option<Tci> {
        Tci::new(0, false, vid)
    }

    /// The TCI as it appears on the wire.
    pub const fn from_bits(bits: u16) -> Tci {
        Tci(bits)
    }

    /// The 16-bit wire value.
    pub const fn to_bits(self) -> u16 {
        self.0
    }

    /// Priority code point (802.1p), 0..=7.
    pub const fn pcp(self) -> u8 {
        (self.0 >> 13) as u8
    }

    /// Drop eligible indicator (formerly CFI).
    pub const fn dei(self) -> bool {
        self.0 & 0x1000 != 0
    }

    /// VLAN identifier, 0..=4095.
    pub const fn vid(self) -> u16 {
        self.0 & MAX_VID
    }

    /// This TCI with another VID; `None` if `vid > 4095`.
    pub const fn with_vid(self, vid: u16) -> Option<Tci> {
        if vid > MAX_VID {
            return None;
        }
        Some(Tci((self.0 & !MAX_VID) | vid))
    }
}

impl fmt::Debug for Tci {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tci")
            .field("pcp", &self.pcp())
            .field("dei", &self.dei())
            .field("vid", &self.vid())
            .finish()
    }
}

/// One tag as it appears on the wire: the TPID that announces it and its TCI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Tag {
    /// Tag protocol identifier (`0x8100`, `0x88a8` or `0x9100`).
    pub tpid: u16,
    /// Tag control information.
    pub tci: Tci,
}

impl Tag {
    /// An 802.1Q customer tag (TPID `0x8100`).
    pub const fn dot1q(tci: Tci) -> Tag {
        Tag {
            tpid: ethertype::VLAN,
            tci,
        }
    }

    /// An 802.1ad service tag (TPID `0x88a8`), the outer tag of QinQ.
    pub const fn dot1ad(tci: Tci) -> Tag {
        Tag {
            tpid: ethertype::QINQ,
            tci,
        }
    }

    /// The VLAN ID.
    pub const fn vid(self) -> u16 {
        self.tci.vid()
    }
}

/// The four bytes of a tag that follow its TPID.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Debug, Clone, Copy)]
#[repr(C)]
pub struct VlanHeader {
    /// Tag control information.
    pub tci: U16,
    /// EtherType of the payload, or the TPID of the next tag.
    pub ethertype: U16,
}

/// A view of one VLAN tag (without its TPID) and what follows it.
pub struct VlanTag<B> {
    header: Ref<B, VlanHeader>,
    payload: B,
}

impl<B: SplitByteSlice> fmt::Debug for VlanTag<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VlanTag")
            .field("tci", &self.tci())
            .field("ethertype", &self.ethertype())
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

impl<B: SplitByteSlice> VlanTag<B> {
    /// Splits `bytes` (what follows a TPID) into the 4-byte tag and the rest.
    pub fn parse(bytes: B) -> Result<Self> {
        let (header, payload) = Ref::from_prefix(bytes).map_err(|_| Error::Truncated)?;
        Ok(VlanTag { header, payload })
    }

    /// The header.
    pub fn header(&self) -> &VlanHeader {
        &self.header
    }

    /// Tag control information.
    pub fn tci(&self) -> Tci {
        Tci(self.header.tci.get())
    }

    /// Priority code point.
    pub fn pcp(&self) -> u8 {
        self.tci().pcp()
    }

    /// Drop eligible indicator.
    pub fn dei(&self) -> bool {
        self.tci().dei()
    }

    /// VLAN ID.
    pub fn vid(&self) -> u16 {
        self.tci().vid()
    }

    /// EtherType of the payload (a TPID if another tag follows).
    pub fn ethertype(&self) -> u16 {
        self.header.ethertype.get()
    }

    /// Everything after the tag.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Splits the view into its header and payload.
    pub fn into_parts(self) -> (Ref<B, VlanHeader>, B) {
        (self.header, self.payload)
    }
}

impl<B: SplitByteSliceMut> VlanTag<B> {
    /// Sets the TCI.
    pub fn set_tci(&mut self, tci: Tci) {
        self.header.tci.set(tci.to_bits());
    }

    /// Sets the VID, keeping PCP and DEI; [`Error::Unsupported`] if
    /// `vid > 4095`.
    pub fn set_vid(&mut self, vid: u16) -> Result<()> {
        let tci = self.tci().with_vid(vid).ok_or(Error::Unsupported)?;
        self.set_tci(tci);
        Ok(())
    }

    /// Sets the EtherType of the payload.
    pub fn set_ethertype(&mut self, ethertype: u16) {
        self.header.ethertype.set(ethertype);
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.payload
    }
}

/// A parsed or to-be-built tag body (TCI and the EtherType that follows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VlanRepr {
    /// Tag control information.
    pub tci: Tci,
    /// EtherType of the payload (or TPID of the next tag).
    pub ethertype: u16,
}

impl VlanRepr {
    /// Reads a parsed tag.
    pub fn parse<B: SplitByteSlice>(tag: &VlanTag<B>) -> Self {
        VlanRepr {
            tci: tag.tci(),
            ethertype: tag.ethertype(),
        }
    }

    /// Bytes [`VlanRepr::emit`] writes.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes TCI and EtherType at the start of `buf`; returns 4.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let (hdr, _) = VlanHeader::mut_from_prefix(buf).map_err(|_| Error::BufferTooSmall)?;
        hdr.tci.set(self.tci.to_bits());
        hdr.ethertype.set(self.ethertype);
        Ok(HEADER_LEN)
    }
}

/// Up to [`MAX_TAGS`] tags, outermost first, held inline (no allocation).
#[derive(Clone, Copy, Default)]
pub struct VlanStack {
    tags: [Tag; MAX_TAGS],
    len: u8,
}

impl VlanStack {
    /// No tags.
    pub const fn new() -> Self {
        VlanStack {
            tags: [Tag {
                tpid: 0,
                tci: Tci(0),
            }; MAX_TAGS],
            len: 0,
        }
    }

    /// One 802.1Q tag.
    pub const fn single(tci: Tci) -> Self {
        let mut s = Self::new();
        s.tags[0] = Tag::dot1q(tci);
        s.len = 1;
        s
    }

    /// QinQ: an 802.1ad service tag outside an 802.1Q customer tag.
    pub const fn qinq(outer: Tci, inner: Tci) -> Self {
        let mut s = Self::new();
        s.tags[0] = Tag::dot1ad(outer);
        s.tags[1] = Tag::dot1q(inner);
        s.len = 2;
        s
    }

    /// Builds a stack from tags, outermost first; [`Error::Unsupported`] if
    /// there are more than [`MAX_TAGS`] or a TPID is not a VLAN TPID.
    pub fn from_tags(tags: &[Tag]) -> Result<Self> {
        let mut s = Self::new();
        for &t in tags {
            s.push(t)?;
        }
        Ok(s)
    }

    /// Appends an inner tag; [`Error::Unsupported`] if the stack is full or
    /// the TPID is not one [`is_tpid`] accepts (the parser could not read it
    /// back).
    pub fn push(&mut self, tag: Tag) -> Result<()> {
        if !is_tpid(tag.tpid) {
            return Err(Error::Unsupported);
        }
        let slot = self
            .tags
            .get_mut(usize::from(self.len))
            .ok_or(Error::Unsupported)?;
        *slot = tag;
        self.len += 1;
        Ok(())
    }

    /// The tags, outermost first.
    pub fn as_slice(&self) -> &[Tag] {
        self.tags.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Number of tags.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// True when untagged.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The outermost tag.
    pub fn outer(&self) -> Option<Tag> {
        self.as_slice().first().copied()
    }

    /// The innermost tag (the customer VLAN of QinQ).
    pub fn inner(&self) -> Option<Tag> {
        self.as_slice().last().copied()
    }

    /// The VLAN IDs, outermost first, in a fixed-size array; entries past
    /// [`VlanStack::len`] are 0.
    pub fn vids(&self) -> [u16; MAX_TAGS] {
        let mut out = [0u16; MAX_TAGS];
        for (o, t) in out.iter_mut().zip(self.as_slice()) {
            *o = t.vid();
        }
        out
    }

    /// Bytes the tags take on the wire.
    pub fn wire_len(&self) -> usize {
        self.len() * TAG_LEN
    }
}

impl PartialEq for VlanStack {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for VlanStack {}

impl fmt::Debug for VlanStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// The result of [`walk`]: the tags, the EtherType they carry and the L3
/// payload.
pub struct VlanWalk<B> {
    tags: VlanStack,
    ethertype: u16,
    payload: B,
}

impl<B: SplitByteSlice> fmt::Debug for VlanWalk<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VlanWalk")
            .field("tags", &self.tags)
            .field("ethertype", &self.ethertype)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

impl<B: SplitByteSlice> VlanWalk<B> {
    /// The tags, outermost first (empty for an untagged frame).
    pub fn tags(&self) -> &VlanStack {
        &self.tags
    }

    /// The VLAN IDs, outermost first; see [`VlanStack::vids`].
    pub fn vids(&self) -> [u16; MAX_TAGS] {
        self.tags.vids()
    }

    /// The EtherType after the last tag.
    pub fn ethertype(&self) -> u16 {
        self.ethertype
    }

    /// Offset of the L3 payload from the start of the Ethernet *payload*
    /// (4 per tag).
    pub fn offset(&self) -> usize {
        self.tags.wire_len()
    }

    /// Offset of the L3 payload from the start of the Ethernet *frame*.
    pub fn l3_offset(&self) -> usize {
        ethernet::HEADER_LEN + self.offset()
    }

    /// The L3 payload.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The L3 payload, by value (e.g. `&mut [u8]` to rewrite it).
    pub fn into_payload(self) -> B {
        self.payload
    }
}

/// Follows the VLAN tags of a frame whose Ethernet EtherType is `ethertype`
/// and whose Ethernet payload is `payload`.
///
/// An untagged frame gives an empty stack, `ethertype` and `payload`
/// unchanged. Errors: [`Error::Truncated`] if a tag is cut short,
/// [`Error::Unsupported`] if more than [`MAX_TAGS`] tags are stacked.
pub fn walk<B: SplitByteSlice>(ethertype: u16, payload: B) -> Result<VlanWalk<B>> {
    let mut tags = VlanStack::new();
    let mut et = ethertype;
    let mut rest = payload;
    while is_tpid(et) {
        let (hdr, next) = Ref::<B, VlanHeader>::from_prefix(rest).map_err(|_| Error::Truncated)?;
        tags.push(Tag {
            tpid: et,
            tci: Tci(hdr.tci.get()),
        })?;
        et = hdr.ethertype.get();
        rest = next;
    }
    Ok(VlanWalk {
        tags,
        ethertype: et,
        payload: rest,
    })
}

/// Walks a whole Ethernet frame: [`ethernet::EthernetFrame::parse`] then
/// [`walk`].
pub fn walk_frame<B: SplitByteSlice>(frame: B) -> Result<VlanWalk<B>> {
    let eth = ethernet::EthernetFrame::parse(frame)?;
    let et = eth.ethertype();
    let (_, payload) = eth.into_parts();
    walk(et, payload)
}

/// An Ethernet header with any number of tags (up to [`MAX_TAGS`]): the
/// builder for tagged frames (one tag, or two for QinQ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaggedEthernetRepr {
    /// Destination MAC.
    pub dst: MacAddr,
    /// Source MAC.
    pub src: MacAddr,
    /// Tags, outermost first.
    pub tags: VlanStack,
    /// EtherType of the payload after the last tag.
    pub ethertype: u16,
}

impl TaggedEthernetRepr {
    /// Reads the MACs and the tags of a frame; returns the header and the L3
    /// payload.
    pub fn parse(frame: &[u8]) -> Result<(Self, &[u8])> {
        let eth = ethernet::EthernetFrame::parse(frame)?;
        let (dst, src, et) = (eth.dst(), eth.src(), eth.ethertype());
        let (_, payload) = eth.into_parts();
        let w = walk(et, payload)?;
        let repr = TaggedEthernetRepr {
            dst,
            src,
            tags: w.tags,
            ethertype: w.ethertype,
        };
        Ok((repr, w.payload))
    }

    /// Bytes [`TaggedEthernetRepr::emit`] writes: 14 + 4 per tag.
    pub fn header_len(&self) -> usize {
        ethernet::HEADER_LEN + self.tags.wire_len()
    }

    /// Writes the MACs, the tags and the EtherType at the start of `buf`;
    /// returns the bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.header_len();
        let out = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        let (macs, mut rest) = out.split_at_mut_checked(12).ok_or(Error::BufferTooSmall)?;
        let (d, s) = macs.split_at_mut(6);
        d.copy_from_slice(&self.dst.octets());
        s.copy_from_slice(&self.src.octets());
        for t in self.tags.as_slice() {
            let (tag, next) = rest
                .split_first_chunk_mut::<TAG_LEN>()
                .ok_or(Error::BufferTooSmall)?;
            let [a, b] = t.tpid.to_be_bytes();
            let [c, e] = t.tci.to_bits().to_be_bytes();
            *tag = [a, b, c, e];
            rest = next;
        }
        let et: &mut [u8; 2] = rest.first_chunk_mut().ok_or(Error::BufferTooSmall)?;
        *et = self.ethertype.to_be_bytes();
        Ok(len)
    }
}

/// Removes the outermost tag of the frame that starts at `buf[start..]` by
/// moving its 12 MAC bytes four bytes towards the payload; returns the new
/// start of the frame (`start + 4`). The tag's EtherType becomes the frame's.
///
/// Errors: [`Error::Unsupported`] if the frame is not tagged,
/// [`Error::Truncated`] if it is shorter than an Ethernet header, or than a
/// tagged one (18 bytes) when it announces a tag.
pub fn pop_outer_tag(buf: &mut [u8], start: usize) -> Result<usize> {
    let frame = buf.get_mut(start..).ok_or(Error::Truncated)?;
    let eth: &[u8; ethernet::HEADER_LEN] = frame.first_chunk().ok_or(Error::Truncated)?;
    if !is_tpid(u16::from_be_bytes([eth[12], eth[13]])) {
        return Err(Error::Unsupported);
    }
    let hdr: &mut [u8; 18] = frame.first_chunk_mut().ok_or(Error::Truncated)?;
    hdr.copy_within(0..12, TAG_LEN);
    start.checked_add(TAG_LEN).ok_or(Error::Truncated)
}

/// Inserts `tag` as the new outermost tag of the frame that starts at
/// `buf[start..]`, using four bytes of headroom before it; returns the new
/// start of the frame (`start - 4`). The frame's EtherType becomes the tag's.
///
/// Errors: [`Error::BufferTooSmall`] without four bytes of headroom,
/// [`Error::Truncated`] if the frame is shorter than an Ethernet header,
/// [`Error::Unsupported`] if `tag.tpid` is not a VLAN TPID.
pub fn push_tag(buf: &mut [u8], start: usize, tag: Tag) -> Result<usize> {
    if !is_tpid(tag.tpid) {
        return Err(Error::Unsupported);
    }
    let new_start = start.checked_sub(TAG_LEN).ok_or(Error::BufferTooSmall)?;
    let region = buf.get_mut(new_start..).ok_or(Error::Truncated)?;
    let hdr: &mut [u8; 18] = region.first_chunk_mut().ok_or(Error::Truncated)?;
    hdr.copy_within(TAG_LEN..TAG_LEN + 12, 0);
    let [a, b] = tag.tpid.to_be_bytes();
    let [c, d] = tag.tci.to_bits().to_be_bytes();
    hdr[12] = a;
    hdr[13] = b;
    hdr[14] = c;
    hdr[15] = d;
    Ok(new_start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // The three frames below were crafted with scapy 2.5 and sent over a veth
    // pair between two network namespaces created for the purpose (kernel
    // 802.1Q is absent here); the bytes are what `tcpdump -xx -e -vv`
    // captured on the receiving end, and the decodes are tcpdump's (Wireshark
    // 4.0 agrees: "802.1Q Virtual LAN, PRI: 5, DEI: 0, ID: 100", "IEEE
    // 802.1ad, ID: 300 / 802.1Q Virtual LAN, PRI: 0, DEI: 1, ID: 100").

    /// `02:00:00:00:0a:01 > 02:00:00:00:0b:02, ethertype 802.1Q (0x8100),
    /// length 49: vlan 100, p 5, ethertype IPv4 (0x0800), 10.99.0.1.40000 >
    /// 10.99.0.2.53: [udp sum ok]`.
    const SINGLE: [u8; 49] = [
        0x02, 0x00, 0x00, 0x00, 0x0b, 0x02, 0x02, 0x00, 0x00, 0x00, 0x0a, 0x01, 0x81, 0x00, 0xa0,
        0x64, 0x08, 0x00, 0x45, 0x00, 0x00, 0x1f, 0x00, 0x01, 0x00, 0x00, 0x40, 0x11, 0x66, 0x05,
        0x0a, 0x63, 0x00, 0x01, 0x0a, 0x63, 0x00, 0x02, 0x9c, 0x40, 0x00, 0x35, 0x00, 0x0b, 0x69,
        0x23, 0x72, 0x76, 0x73,
    ];

    /// `ethertype 802.1Q-QinQ (0x88a8), length 73: vlan 300, p 3, ethertype
    /// 802.1Q (0x8100), vlan 100, p 0, DEI, ethertype IPv6 (0x86dd), fd00::1.40000 >
    /// fd00::2.53: [udp sum ok]`.
    const QINQ: [u8; 73] = [
        0x02, 0x00, 0x00, 0x00, 0x0b, 0x02, 0x02, 0x00, 0x00, 0x00, 0x0a, 0x01, 0x88, 0xa8, 0x61,
        0x2c, 0x81, 0x00, 0x10, 0x64, 0x86, 0xdd, 0x60, 0x00, 0x00, 0x00, 0x00, 0x0b, 0x11, 0x40,
        0xfd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x01, 0xfd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x02, 0x9c, 0x40, 0x00, 0x35, 0x00, 0x0b, 0x83, 0xe7, 0x72, 0x76, 0x73,
    ];

    /// `ethertype 802.1Q-9100 (0x9100), length 50: vlan 4094, p 0, ethertype
    /// 802.1Q (0x8100), vlan 1, p 7, ethertype ARP (0x0806), Request who-has
    /// 10.99.0.2 tell 10.99.0.1`.
    const LEGACY_QINQ_ARP: [u8; 50] = [
        0x02, 0x00, 0x00, 0x00, 0x0b, 0x02, 0x02, 0x00, 0x00, 0x00, 0x0a, 0x01, 0x91, 0x00, 0x0f,
        0xfe, 0x81, 0x00, 0xe0, 0x01, 0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,
        0x02, 0x00, 0x00, 0x00, 0x0a, 0x01, 0x0a, 0x63, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x0a, 0x63, 0x00, 0x02,
    ];

    #[test]
    fn single_tag_known_answer() {
        let w = walk_frame(&SINGLE[..]).unwrap();
        assert_eq!(w.tags().len(), 1);
        let t = w.tags().outer().unwrap();
        assert_eq!(t.tpid, ethertype::VLAN);
        assert_eq!((t.tci.pcp(), t.tci.dei(), t.tci.vid()), (5, false, 100));
        assert_eq!(w.vids(), [100, 0, 0, 0]);
        assert_eq!(w.ethertype(), ethertype::IPV4);
        assert_eq!(w.offset(), 4);
        assert_eq!(w.l3_offset(), 18);
        assert_eq!(w.payload(), &SINGLE[18..]);

        let tag = VlanTag::parse(&SINGLE[14..]).unwrap();
        assert_eq!((tag.pcp(), tag.dei(), tag.vid()), (5, false, 100));
        assert_eq!(tag.ethertype(), 0x0800);
        assert_eq!(tag.payload(), &SINGLE[18..]);

        // Independent decoder.
        let (v, rest) = etherparse::SingleVlanHeader::from_slice(&SINGLE[14..]).unwrap();
        assert_eq!(v.vlan_id.value(), 100);
        assert_eq!(v.pcp.value(), 5);
        assert_eq!(v.ether_type.0, 0x0800);
        assert_eq!(rest, w.payload());
    }

    #[test]
    fn qinq_known_answer() {
        let w = walk_frame(&QINQ[..]).unwrap();
        assert_eq!(
            w.tags().as_slice(),
            &[
                Tag::dot1ad(Tci::new(3, false, 300).unwrap()),
                Tag::dot1q(Tci::new(0, true, 100).unwrap()),
            ]
        );
        assert_eq!(
            w.tags(),
            &VlanStack::qinq(
                Tci::new(3, false, 300).unwrap(),
                Tci::new(0, true, 100).unwrap()
            )
        );
        assert_eq!(w.vids(), [300, 100, 0, 0]);
        assert_eq!(w.ethertype(), ethertype::IPV6);
        assert_eq!(w.l3_offset(), 22);
        assert_eq!(w.payload()[0] >> 4, 6);

        let (outer, rest) = etherparse::SingleVlanHeader::from_slice(&QINQ[14..]).unwrap();
        let (inner, rest) = etherparse::SingleVlanHeader::from_slice(rest).unwrap();
        assert_eq!(outer.vlan_id.value(), 300);
        assert_eq!(outer.pcp.value(), 3);
        assert_eq!(outer.ether_type.0, 0x8100);
        assert!(inner.drop_eligible_indicator);
        assert_eq!(inner.vlan_id.value(), 100);
        assert_eq!(inner.ether_type.0, 0x86dd);
        // etherparse's whole-packet slicer sees the same two VLANs and a
        // valid IPv6/UDP packet inside.
        let sliced = etherparse::SlicedPacket::from_ethernet(&QINQ).unwrap();
        assert!(sliced.net.is_some());
        assert_eq!(rest, w.payload());

        let (repr, payload) = TaggedEthernetRepr::parse(&QINQ).unwrap();
        assert_eq!(payload, &QINQ[22..]);
        let mut out = [0u8; 22];
        assert_eq!(repr.emit(&mut out), Ok(22));
        assert_eq!(out, QINQ[..22]);
    }

    #[test]
    fn legacy_outer_tpid_known_answer() {
        let w = walk_frame(&LEGACY_QINQ_ARP[..]).unwrap();
        assert_eq!(w.tags().outer().unwrap().tpid, ethertype::QINQ_LEGACY);
        assert_eq!(w.vids(), [4094, 1, 0, 0]);
        assert_eq!(w.tags().inner().unwrap().tci.pcp(), 7);
        assert_eq!(w.ethertype(), ethertype::ARP);
        assert_eq!(w.payload().len(), 28);
    }

    #[test]
    fn every_truncation_is_an_error() {
        for frame in [&SINGLE[..], &QINQ[..], &LEGACY_QINQ_ARP[..]] {
            let l3 = walk_frame(frame).unwrap().l3_offset();
            for n in 0..l3 {
                assert_eq!(
                    walk_frame(&frame[..n]).unwrap_err(),
                    Error::Truncated,
                    "{n}"
                );
                assert!(TaggedEthernetRepr::parse(&frame[..n]).is_err());
            }
            let w = walk_frame(&frame[..l3]).unwrap();
            assert!(w.payload().is_empty());
        }
        for n in 0..HEADER_LEN {
            assert_eq!(
                VlanTag::parse(&SINGLE[14..14 + n]).unwrap_err(),
                Error::Truncated
            );
        }
    }

    /// A frame with `depth` tags (VIDs 1..=depth) and a 2-byte payload.
    fn stacked(depth: usize) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        for vid in 1..=depth as u16 {
            f.extend_from_slice(&[0x81, 0x00]);
            f.extend_from_slice(&vid.to_be_bytes());
        }
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0x00]);
        f
    }

    #[test]
    fn depth_is_bounded() {
        for depth in 0..=MAX_TAGS {
            let f = stacked(depth);
            let w = walk_frame(&f[..]).unwrap();
            assert_eq!(w.tags().len(), depth);
            assert_eq!(w.ethertype(), 0x0800);
            assert_eq!(w.payload(), &[0x45, 0x00]);
            for (i, vid) in w.tags().as_slice().iter().map(|t| t.vid()).enumerate() {
                assert_eq!(usize::from(vid), i + 1);
            }
        }
        let f = stacked(MAX_TAGS + 1);
        assert_eq!(walk_frame(&f[..]).unwrap_err(), Error::Unsupported);
        let too_many = [Tag::dot1q(Tci::default()); MAX_TAGS + 1];
        assert_eq!(
            VlanStack::from_tags(&too_many).unwrap_err(),
            Error::Unsupported
        );
        assert_eq!(
            VlanStack::from_tags(&[Tag {
                tpid: 0x0800,
                tci: Tci::default()
            }])
            .unwrap_err(),
            Error::Unsupported
        );
    }

    #[test]
    fn pop_and_push_in_place() {
        let mut buf = QINQ;
        // Pop the service tag: the frame becomes single-tagged (customer VLAN).
        let start = pop_outer_tag(&mut buf, 0).unwrap();
        assert_eq!(start, 4);
        let w = walk_frame(&buf[start..]).unwrap();
        assert_eq!(w.vids(), [100, 0, 0, 0]);
        assert_eq!(&buf[start..start + 12], &QINQ[..12]);
        assert_eq!(&buf[start + 12..start + 14], &[0x81, 0x00]);
        // Pop the customer tag: an untagged IPv6 frame with the same payload.
        let start = pop_outer_tag(&mut buf, start).unwrap();
        assert_eq!(start, 8);
        assert_eq!(&buf[start..start + 12], &QINQ[..12]);
        assert_eq!(&buf[start + 12..], &QINQ[20..]);
        assert_eq!(
            pop_outer_tag(&mut buf, start).unwrap_err(),
            Error::Unsupported
        );
        // Push both back: the original bytes.
        let start = push_tag(&mut buf, start, Tag::dot1q(Tci::new(0, true, 100).unwrap())).unwrap();
        let start = push_tag(
            &mut buf,
            start,
            Tag::dot1ad(Tci::new(3, false, 300).unwrap()),
        )
        .unwrap();
        assert_eq!(start, 0);
        assert_eq!(buf, QINQ);
        // No headroom left.
        let t = Tag::dot1q(Tci::default());
        assert_eq!(push_tag(&mut buf, 0, t).unwrap_err(), Error::BufferTooSmall);
        assert_eq!(push_tag(&mut buf, 3, t).unwrap_err(), Error::BufferTooSmall);
        assert_eq!(
            push_tag(
                &mut buf,
                4,
                Tag {
                    tpid: 0x0800,
                    tci: Tci::default()
                }
            )
            .unwrap_err(),
            Error::Unsupported
        );
        // Too short to hold an Ethernet header after the headroom.
        let mut short = [0u8; 4 + 13];
        assert_eq!(push_tag(&mut short, 4, t).unwrap_err(), Error::Truncated);
        assert_eq!(
            pop_outer_tag(&mut short, 0).unwrap_err(),
            Error::Unsupported
        );
        short[12] = 0x81; // announces a tag, but only 3 of its 4 bytes are there
        assert_eq!(pop_outer_tag(&mut short, 0).unwrap_err(), Error::Truncated);
        assert_eq!(pop_outer_tag(&mut short, 4).unwrap_err(), Error::Truncated);
        assert_eq!(
            pop_outer_tag(&mut short, 100).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(push_tag(&mut short, 100, t).unwrap_err(), Error::Truncated);
    }

    #[test]
    fn set_vid_in_place() {
        let mut buf = SINGLE;
        let mut tag = VlanTag::parse(&mut buf[14..]).unwrap();
        tag.set_vid(4000).unwrap();
        assert_eq!(tag.set_vid(4096).unwrap_err(), Error::Unsupported);
        tag.set_ethertype(0x86dd);
        assert_eq!((tag.pcp(), tag.vid()), (5, 4000));
        assert_eq!(&buf[14..18], &[0xaf, 0xa0, 0x86, 0xdd]);
    }

    #[test]
    fn tci_bounds() {
        assert!(Tci::new(8, false, 0).is_none());
        assert!(Tci::new(0, false, 4096).is_none());
        assert!(Tci::from_vid(4096).is_none());
        let t = Tci::new(7, true, 4095).unwrap();
        assert_eq!(t.to_bits(), 0xffff);
        assert_eq!(Tci::from_bits(0xa064), Tci::new(5, false, 100).unwrap());
        assert_eq!(t.with_vid(1).unwrap().to_bits(), 0xf001);
        assert!(t.with_vid(0x1000).is_none());
    }

    fn arb_tag() -> impl Strategy<Value = Tag> {
        (
            prop_oneof![Just(0x8100u16), Just(0x88a8u16), Just(0x9100u16)],
            any::<u16>(),
        )
            .prop_map(|(tpid, bits)| Tag {
                tpid,
                tci: Tci::from_bits(bits),
            })
    }

    fn arb_ethertype() -> impl Strategy<Value = u16> {
        any::<u16>().prop_filter("not a TPID", |&e| !is_tpid(e))
    }

    proptest! {
        #[test]
        fn round_trip(
            dst in any::<[u8; 6]>(), src in any::<[u8; 6]>(),
            tags in proptest::collection::vec(arb_tag(), 0..=MAX_TAGS),
            et in arb_ethertype(),
            payload in proptest::collection::vec(any::<u8>(), 0..32),
        ) {
            let repr = TaggedEthernetRepr {
                dst: MacAddr(dst), src: MacAddr(src),
                tags: VlanStack::from_tags(&tags).unwrap(), ethertype: et,
            };
            let hl = repr.header_len();
            prop_assert_eq!(hl, 14 + 4 * tags.len());
            let mut buf = vec![0u8; hl + payload.len()];
            prop_assert_eq!(repr.emit(&mut buf), Ok(hl));
            buf[hl..].copy_from_slice(&payload);
            let (back, p) = TaggedEthernetRepr::parse(&buf).unwrap();
            prop_assert_eq!(back, repr);
            prop_assert_eq!(p, &payload[..]);
            let w = walk_frame(&buf[..]).unwrap();
            prop_assert_eq!(w.l3_offset(), hl);
            for (i, t) in tags.iter().enumerate() {
                prop_assert_eq!(w.vids()[i], t.tci.vid());
            }

            // Independent decoder: etherparse's Ethernet and VLAN headers.
            let (eth, mut rest) = etherparse::Ethernet2Header::from_slice(&buf).unwrap();
            prop_assert_eq!(eth.destination, dst);
            let mut et_seen = eth.ether_type.0;
            for t in &tags {
                prop_assert_eq!(et_seen, t.tpid);
                let (v, r) = etherparse::SingleVlanHeader::from_slice(rest).unwrap();
                prop_assert_eq!(v.vlan_id.value(), t.tci.vid());
                prop_assert_eq!(v.pcp.value(), t.tci.pcp());
                prop_assert_eq!(v.drop_eligible_indicator, t.tci.dei());
                et_seen = v.ether_type.0;
                rest = r;
            }
            prop_assert_eq!(et_seen, et);
            prop_assert_eq!(rest, &payload[..]);

            // Every truncation of the header is an error, never a panic.
            for n in 0..hl {
                prop_assert_eq!(walk_frame(&buf[..n]).unwrap_err(), Error::Truncated);
            }
            // Emitting into a short buffer fails.
            for n in 0..hl {
                prop_assert_eq!(repr.emit(&mut buf[..n]), Err(Error::BufferTooSmall));
            }
        }

        #[test]
        fn vlan_repr_round_trip(bits in any::<u16>(), et in any::<u16>(), tail in proptest::collection::vec(any::<u8>(), 0..8)) {
            let repr = VlanRepr { tci: Tci::from_bits(bits), ethertype: et };
            let mut buf = vec![0u8; 4 + tail.len()];
            prop_assert_eq!(repr.emit(&mut buf), Ok(4));
            buf[4..].copy_from_slice(&tail);
            let v = VlanTag::parse(&buf[..]).unwrap();
            prop_assert_eq!(VlanRepr::parse(&v), repr);
            prop_assert_eq!(v.payload(), &tail[..]);
            prop_assert_eq!(Tci::new(v.pcp(), v.dei(), v.vid()), Some(repr.tci));
        }

        #[test]
        fn push_then_pop_restores(
            tags in proptest::collection::vec(arb_tag(), 0..MAX_TAGS),
            new in arb_tag(),
            payload in proptest::collection::vec(any::<u8>(), 0..16),
        ) {
            let repr = TaggedEthernetRepr {
                dst: MacAddr([1, 2, 3, 4, 5, 6]), src: MacAddr([7, 8, 9, 10, 11, 12]),
                tags: VlanStack::from_tags(&tags).unwrap(), ethertype: 0x0800,
            };
            let hl = repr.header_len();
            let mut buf = vec![0u8; TAG_LEN + hl + payload.len()];
            repr.emit(&mut buf[TAG_LEN..]).unwrap();
            buf[TAG_LEN + hl..].copy_from_slice(&payload);
            let orig = buf.clone();

            let start = push_tag(&mut buf, TAG_LEN, new).unwrap();
            prop_assert_eq!(start, 0);
            let (pushed, p) = TaggedEthernetRepr::parse(&buf).unwrap();
            let mut expect = vec![new];
            expect.extend_from_slice(&tags);
            prop_assert_eq!(pushed.tags.as_slice(), &expect[..]);
            prop_assert_eq!((pushed.dst, pushed.src, pushed.ethertype), (repr.dst, repr.src, repr.ethertype));
            prop_assert_eq!(p, &payload[..]);

            let start = pop_outer_tag(&mut buf, start).unwrap();
            prop_assert_eq!(start, TAG_LEN);
            prop_assert_eq!(&buf[TAG_LEN..], &orig[TAG_LEN..]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            mut data in proptest::collection::vec(any::<u8>(), 0..64),
            et in any::<u16>(), start in 0usize..70, tag in arb_tag(),
        ) {
            let _ = walk(et, &data[..]);
            let _ = walk_frame(&data[..]);
            let _ = TaggedEthernetRepr::parse(&data);
            let _ = VlanTag::parse(&mut data[..]);
            let _ = pop_outer_tag(&mut data, start);
            let _ = push_tag(&mut data, start, tag);
        }
    }
}
