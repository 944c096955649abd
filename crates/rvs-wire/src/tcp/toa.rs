//! Inserting a TOA option into a segment in place.
//!
//! FullNAT hides the client's address from the real server; TOA puts it
//! back as a TCP option (kind 254) that a backend kernel module reads. The
//! segment grows by 8 (IPv4 client) or 20 bytes (IPv6 client), so this needs
//! the whole buffer with tailroom, not a fixed-size view.
//!
//! # Why the checksum stays right without reading the payload
//! Both option lengths are even, so the payload moves by an even number of
//! bytes and every payload byte keeps its position within its 16-bit word:
//! the payload's contribution to the sum is unchanged. What changes is the
//! header (data offset, new option bytes, EOL padding turned into NOPs) —
//! at most 60 bytes, summed before and after — and the pseudo-header length.
//! RFC 1624 then gives `HC' = ~(~HC + ~H + H' + ~len + len')`.

use super::{CHECKSUM_OFFSET, HEADER_LEN, MAX_HEADER_LEN, TcpPacket, Toa, kind, options};
use crate::checksum::Checksum;
use crate::{Error, Result};

/// Sum of header bytes `[0, hl)` without the checksum field.
fn header_sum(seg: &[u8], hl: usize) -> u16 {
    let mut c = Checksum::new();
    c.add_bytes(seg.get(..CHECKSUM_OFFSET).unwrap_or(&[]))
        .add_bytes(seg.get(CHECKSUM_OFFSET + 2..hl).unwrap_or(&[]));
    c.fold()
}

/// Inserts `toa` after the existing options of the segment occupying
/// `buf[..seg_len]`, moving the payload up; returns the new segment length
/// (the caller then adds the difference to the IP length).
///
/// The data offset grows by 2 (IPv4 form) or 5 words (IPv6 form) and the
/// checksum is updated incrementally, pseudo-header length included, for
/// either IP family. If the options end with an End-of-Option-List, it and
/// the padding after it become NOPs, or receivers would stop reading before
/// the TOA.
///
/// Errors (the buffer is unchanged on every error):
/// - [`Error::Truncated`] / [`Error::BadHeaderLength`]: `seg_len` exceeds
///   `buf`, or the segment does not parse;
/// - [`Error::BadOption`]: the existing options are malformed;
/// - [`Error::BadHeaderLength`]: the header would exceed 60 bytes;
/// - [`Error::BufferTooSmall`]: `buf` lacks the tailroom;
/// - [`Error::BadLength`]: the segment would exceed 65535 bytes.
pub fn insert_toa(buf: &mut [u8], seg_len: usize, toa: &Toa) -> Result<usize> {
    let seg = buf.get(..seg_len).ok_or(Error::Truncated)?;
    let packet = TcpPacket::parse(seg)?;
    let hl = packet.header_len();
    let old_csum = packet.checksum();
    let add = toa.wire_len();
    let new_hl = hl + add;
    if new_hl > MAX_HEADER_LEN {
        return Err(Error::BadHeaderLength);
    }
    let new_len = seg_len + add;
    let old_len16 = u16::try_from(seg_len).map_err(|_| Error::BadLength)?;
    let new_len16 = u16::try_from(new_len).map_err(|_| Error::BadLength)?;
    if new_len > buf.len() {
        return Err(Error::BufferTooSmall);
    }
    // Walk the options: reject malformed ones, find an EOL.
    let mut eol = None;
    let mut at = 0;
    while let Some(span) = options::span_at(packet.options_bytes(), at)? {
        if span.kind == kind::EOL {
            eol = Some(span.offset);
            break;
        }
        at = span.offset + span.len;
    }
    let old_sum = header_sum(seg, hl);
    let mut opt_buf = [0u8; Toa::V6_LEN];
    let n = toa.emit(&mut opt_buf)?;
    let opt = opt_buf.get(..n).unwrap_or(&[]);

    // From here on nothing can fail: every range was checked above.
    let region = buf.get_mut(..new_len).ok_or(Error::BufferTooSmall)?;
    region.copy_within(hl..seg_len, new_hl);
    if let Some(e) = eol
        && let Some(pad) = region.get_mut(HEADER_LEN + e..hl)
    {
        pad.fill(kind::NOP);
    }
    if let Some(slot) = region.get_mut(hl..new_hl) {
        slot.copy_from_slice(opt);
    }
    if let Some(b) = region.get_mut(12) {
        // new_hl <= 60, so the word count fits in the high nibble.
        *b = (*b & 0x0f) | (((new_hl / 4) as u8) << 4);
    }
    let new_sum = header_sum(region, new_hl);
    let mut c = Checksum::new();
    c.add_u16(!old_csum)
        .add_u16(!old_sum)
        .add_u16(new_sum)
        .add_u16(!old_len16)
        .add_u16(new_len16);
    let csum = !c.fold();
    if let Some(field) = region.get_mut(CHECKSUM_OFFSET..CHECKSUM_OFFSET + 2) {
        field.copy_from_slice(&csum.to_be_bytes());
    }
    Ok(new_len)
}
