//! Completing a transport checksum that the sender left to hardware.
//!
//! A host that offloads checksums (`CHECKSUM_PARTIAL`: veth, macvlan and
//! TAP peers on the same machine) hands a TCP or UDP segment over with
//! only the pseudo-header sum in its checksum field, folded but not
//! inverted; the device is expected to sum the transport header and
//! payload from there and write the inverted result. AF_PACKET says so
//! with `TP_STATUS_CSUMNOTREADY`. A balancer that forwards such a frame
//! out of another socket must finish the job, or the receiver drops the
//! segment as corrupt; the fields it rewrites afterwards are then updated
//! incrementally as for any other packet.
//!
//! Only the fixed IPv6 header is walked (senders put transport checksum
//! offload on packets without extension headers); VLAN tags are skipped.

use crate::checksum::Checksum;
use crate::ethernet::ethertype;
use crate::ip_proto;

/// Completes the TCP/UDP checksum of an Ethernet frame whose field holds
/// the pseudo-header sum only. Returns false (frame untouched) when the
/// frame is not an unfragmented IPv4/IPv6 TCP or UDP packet that fits.
pub fn complete(frame: &mut [u8]) -> bool {
    let Some((l4, end, field)) = locate(frame) else {
        return false;
    };
    let Some(segment) = frame.get(l4..end) else {
        return false;
    };
    let mut sum = Checksum::new().add_bytes(segment).finish();
    if sum == 0 && field == 6 {
        // UDP: 0 means "no checksum"; send its ones'-complement twin.
        sum = 0xffff;
    }
    match frame.get_mut(l4 + field..l4 + field + 2) {
        Some(f) => {
            f.copy_from_slice(&sum.to_be_bytes());
            true
        }
        None => false,
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// (start of the transport header, end of the IP packet, offset of the
/// checksum field in the transport header).
fn locate(frame: &[u8]) -> Option<(usize, usize, usize)> {
    let mut off = 12;
    let mut ty = be16(frame, off)?;
    for _ in 0..2 {
        if ty != ethertype::VLAN && ty != ethertype::QINQ {
            break;
        }
        off += 4;
        ty = be16(frame, off)?;
    }
    let l3 = off + 2;
    let (l4, end, proto) = match ty {
        ethertype::IPV4 => {
            let ihl = usize::from(*frame.get(l3)? & 0x0f) * 4;
            let total = usize::from(be16(frame, l3 + 2)?);
            let frag = be16(frame, l3 + 6)?;
            if ihl < 20 || total < ihl || frag & 0x3fff != 0 {
                return None;
            }
            (l3 + ihl, l3 + total, *frame.get(l3 + 9)?)
        }
        ethertype::IPV6 => {
            let payload = usize::from(be16(frame, l3 + 4)?);
            (l3 + 40, l3 + 40 + payload, *frame.get(l3 + 6)?)
        }
        _ => return None,
    };
    let field = match proto {
        ip_proto::TCP => 16,
        ip_proto::UDP => 6,
        _ => return None,
    };
    (end <= frame.len() && l4 + field + 2 <= end).then_some((l4, end, field))
}
