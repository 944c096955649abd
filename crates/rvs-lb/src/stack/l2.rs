//! Ethernet in and out.
//!
//! # VLAN tags
//! Received frames may carry up to four 802.1Q/802.1ad tags
//! ([`rvs_wire::vlan::walk`]). Ports have no VLAN configuration in this
//! version, so the policy is:
//! - frames the node *answers in place* (ARP replies, neighbour
//!   advertisements, echo replies, ICMP time exceeded) keep the request's
//!   tags: the answer goes back on the VLAN it came from;
//! - frames the node *forwards* (balanced or routed) leave untagged: the
//!   egress is chosen by the routing table, which has no VLANs;
//! - frames for the kernel keep their tags.

use rvs_wire::ethernet::{self, EthernetRepr, MacAddr};
use rvs_wire::vlan::{self, TaggedEthernetRepr, VlanStack};

use crate::stats::DropReason;

/// What the Ethernet header (and tags) of a received frame said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L2 {
    /// Destination MAC.
    pub dst: MacAddr,
    /// Source MAC.
    pub src: MacAddr,
    /// The tags, outermost first.
    pub tags: VlanStack,
    /// EtherType after the tags.
    pub ethertype: u16,
    /// Offset of the L3 header from the start of the frame.
    pub l3_offset: usize,
}

/// Parses the Ethernet header and VLAN tags of `frame`.
#[inline]
pub fn parse(frame: &[u8]) -> Result<L2, DropReason> {
    let (repr, _) = TaggedEthernetRepr::parse(frame).map_err(|_| DropReason::Malformed)?;
    Ok(L2 {
        dst: repr.dst,
        src: repr.src,
        tags: repr.tags,
        ethertype: repr.ethertype,
        l3_offset: repr.header_len(),
    })
}

/// Writes, in front of the L3 packet at `buf[l3_start..]`, the header of
/// the answer to a frame described by `l2`: back to its sender, from
/// `our_mac`, same tags, EtherType `ethertype`. Returns the frame's start.
pub fn write_reply(
    buf: &mut [u8],
    l3_start: usize,
    l2: &L2,
    our_mac: MacAddr,
    ethertype: u16,
) -> Option<usize> {
    let repr = TaggedEthernetRepr {
        dst: l2.src,
        src: our_mac,
        tags: l2.tags,
        ethertype,
    };
    let start = l3_start.checked_sub(repr.header_len())?;
    repr.emit(buf.get_mut(start..)?).ok()?;
    Some(start)
}

/// Writes an untagged Ethernet header in front of the L3 packet at
/// `buf[l3_start..]`; returns the frame's start.
#[inline]
pub fn write_header(
    buf: &mut [u8],
    l3_start: usize,
    src: MacAddr,
    dst: MacAddr,
    ethertype: u16,
) -> Option<usize> {
    let start = l3_start.checked_sub(ethernet::HEADER_LEN)?;
    EthernetRepr {
        src,
        dst,
        ethertype,
    }
    .emit(buf.get_mut(start..)?)
    .ok()?;
    Some(start)
}

/// Tags are walked by [`parse`]; this re-exports the limit for docs.
pub const MAX_TAGS: usize = vlan::MAX_TAGS;
