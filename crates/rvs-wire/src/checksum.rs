//! Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! The balancer rewrites addresses and ports on every packet; recomputing the
//! checksum over the whole segment would cost a pass over the payload, so the
//! rewrite paths use the `update_*` functions, which adjust an existing
//! checksum from the old and new values of the changed words only (RFC 1624
//! equation 3: `HC' = ~(~HC + ~m + m')`).
//!
//! [`Checksum`] accumulates 64-bit words with end-around carry, which is
//! equivalent to summing 16-bit words in ones' complement (RFC 1071 §2(B)) and
//! lets the full computation read eight bytes at a time.

use core::net::{Ipv4Addr, Ipv6Addr};

use zerocopy::network_endian::{U16, U32};

/// A running ones'-complement sum.
///
/// Bytes are taken as a stream of big-endian 16-bit words. Only the *last*
/// call to [`Checksum::add_bytes`] may pass an odd number of bytes (it is
/// padded with a zero byte, as RFC 1071 specifies for the end of the data).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checksum {
    sum: u64,
}

impl Checksum {
    /// An empty sum.
    pub const fn new() -> Self {
        Checksum { sum: 0 }
    }

    #[inline]
    fn add_word64(&mut self, word: u64) {
        let (sum, carry) = self.sum.overflowing_add(word);
        self.sum = sum + u64::from(carry);
    }

    /// Adds one 16-bit word.
    #[inline]
    pub fn add_u16(&mut self, word: u16) -> &mut Self {
        self.add_word64(u64::from(word));
        self
    }

    /// Adds a 32-bit value as two 16-bit words.
    #[inline]
    pub fn add_u32(&mut self, word: u32) -> &mut Self {
        self.add_word64(u64::from(word));
        self
    }

    /// Adds a byte string as big-endian 16-bit words, padding an odd tail.
    #[inline]
    pub fn add_bytes(&mut self, data: &[u8]) -> &mut Self {
        let (words, tail) = data.as_chunks::<8>();
        for w in words {
            self.add_word64(u64::from_be_bytes(*w));
        }
        let (pairs, last) = tail.as_chunks::<2>();
        for p in pairs {
            self.add_word64(u64::from(u16::from_be_bytes(*p)));
        }
        if let Some(&b) = last.first() {
            self.add_word64(u64::from(b) << 8);
        }
        self
    }

    /// The folded 16-bit ones'-complement sum (not inverted).
    #[inline]
    pub fn fold(self) -> u16 {
        let mut s = self.sum;
        s = (s & 0xffff_ffff) + (s >> 32);
        s = (s & 0xffff_ffff) + (s >> 32);
        s = (s & 0xffff) + (s >> 16);
        s = (s & 0xffff) + (s >> 16);
        s = (s & 0xffff) + (s >> 16);
        s as u16
    }

    /// The checksum field value: the inverted folded sum.
    #[inline]
    pub fn finish(self) -> u16 {
        !self.fold()
    }
}

/// The checksum of a byte string (e.g. an IPv4 header with its checksum
/// field zeroed). Over data whose checksum field is filled in, a correct
/// checksum makes this return 0.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    Checksum::new().add_bytes(data).finish()
}

/// The sum of the IPv4 pseudo-header (RFC 793 §3.1, RFC 768) for a TCP/UDP
/// segment of `len` bytes (header + payload).
#[inline]
pub fn ipv4_pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: u16) -> Checksum {
    let mut c = Checksum::new();
    c.add_u32(src.to_bits())
        .add_u32(dst.to_bits())
        .add_u16(u16::from(protocol))
        .add_u16(len);
    c
}

/// The sum of the IPv6 pseudo-header (RFC 8200 §8.1) for an upper-layer
/// packet of `len` bytes.
#[inline]
pub fn ipv6_pseudo_header(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, len: u32) -> Checksum {
    let mut c = Checksum::new();
    c.add_bytes(&src.octets())
        .add_bytes(&dst.octets())
        .add_u32(len)
        .add_u16(u16::from(next_header));
    c
}

/// [`ipv4_pseudo_header`] for a segment whose length is a `usize`: the
/// length is added as a 32-bit value (saturating), so a caller never casts
/// it down to 16 bits and a too-long segment gives a wrong sum, not a panic.
pub(crate) fn ipv4_pseudo_header_len(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    len: usize,
) -> Checksum {
    let mut c = ipv4_pseudo_header(src, dst, protocol, 0);
    c.add_u32(u32::try_from(len).unwrap_or(u32::MAX));
    c
}

/// [`ipv6_pseudo_header`] for a packet whose length is a `usize`
/// (saturating: no IPv6 payload, even a jumbogram, exceeds 2^32 − 1).
pub(crate) fn ipv6_pseudo_header_len(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: u8,
    len: usize,
) -> Checksum {
    ipv6_pseudo_header(
        src,
        dst,
        next_header,
        u32::try_from(len).unwrap_or(u32::MAX),
    )
}

/// Stores `new` in the 16-bit header field `field` and adjusts the
/// checksum field `csum` of the same packet for the change (RFC 1624): the
/// body of every "rewrite a port / identifier / length, keep the checksum
/// right" setter. `field` must sit at an even offset of the checksummed data.
pub(crate) fn set_u16_field(csum: &mut U16, field: &mut U16, new: u16) {
    let old = field.get();
    field.set(new);
    csum.set(update_u16(csum.get(), old, new));
}

/// [`set_u16_field`] for a 32-bit field (TCP sequence and acknowledgment).
pub(crate) fn set_u32_field(csum: &mut U16, field: &mut U32, new: u32) {
    let old = field.get();
    field.set(new);
    csum.set(update_u32(csum.get(), old, new));
}

/// RFC 1624 eqn. 3 on a partially folded sum.
#[inline]
fn fold32(mut s: u32) -> u16 {
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// Updates checksum `csum` after a 16-bit word changed from `old` to `new`.
#[inline]
pub fn update_u16(csum: u16, old: u16, new: u16) -> u16 {
    !fold32(u32::from(!csum) + u32::from(!old) + u32::from(new))
}

/// Updates checksum `csum` after a 32-bit aligned value (an IPv4 address)
/// changed from `old` to `new`.
#[inline]
pub fn update_u32(csum: u16, old: u32, new: u32) -> u16 {
    let s = u32::from(!csum)
        + u32::from(!(old >> 16) as u16)
        + u32::from(!old as u16)
        + (new >> 16)
        + (new & 0xffff);
    !fold32(s)
}

/// Updates checksum `csum` after an IPv4 address changed.
#[inline]
pub fn update_ipv4_addr(csum: u16, old: Ipv4Addr, new: Ipv4Addr) -> u16 {
    update_u32(csum, old.to_bits(), new.to_bits())
}

/// Updates checksum `csum` after an IPv6 address changed.
#[inline]
pub fn update_ipv6_addr(csum: u16, old: Ipv6Addr, new: Ipv6Addr) -> u16 {
    update_bytes(csum, &old.octets(), &new.octets())
}

/// Updates checksum `csum` after a 16-bit aligned byte string changed from
/// `old` to `new`. Both must have the same even length; if they differ, the
/// shorter length is used (callers pass fixed-size fields).
#[inline]
pub fn update_bytes(csum: u16, old: &[u8], new: &[u8]) -> u16 {
    let mut c = Checksum::new();
    c.add_u16(!csum);
    let (old_words, _) = old.as_chunks::<2>();
    let (new_words, _) = new.as_chunks::<2>();
    for (o, n) in old_words.iter().zip(new_words) {
        c.add_u16(!u16::from_be_bytes(*o));
        c.add_u16(u16::from_be_bytes(*n));
    }
    !c.fold()
}

/// Updates checksum `csum` when a value counted in it grows or shrinks by a
/// 16-bit amount, e.g. a pseudo-header length after a TCP option is inserted:
/// equivalent to `update_u16(csum, old, new)`.
#[inline]
pub fn update_len(csum: u16, old: u16, new: u16) -> u16 {
    update_u16(csum, old, new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Plain reference: 16-bit words summed with end-around carry.
    fn reference(data: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        for chunk in data.chunks(2) {
            let w = if chunk.len() == 2 {
                u16::from_be_bytes([chunk[0], chunk[1]])
            } else {
                u16::from(chunk[0]) << 8
            };
            sum += u32::from(w);
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the sum of these words is 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(Checksum::new().add_bytes(&data).fold(), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn ipv4_header_known_answer() {
        // IPv4 header from a ping (tcpdump -xx), checksum 0xb861.
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&hdr), 0);
        let mut z = hdr;
        z[10] = 0;
        z[11] = 0;
        assert_eq!(checksum(&z), 0xb861);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(checksum(&[0xab]), !0xab00);
        assert_eq!(
            checksum(&[0x12, 0x34, 0x56]),
            reference(&[0x12, 0x34, 0x56])
        );
    }

    proptest! {
        #[test]
        fn full_matches_reference(data in proptest::collection::vec(any::<u8>(), 0..1600)) {
            prop_assert_eq!(checksum(&data), reference(&data));
        }

        #[test]
        fn update_u16_matches_recompute(
            mut data in proptest::collection::vec(any::<u8>(), 2..200),
            at in any::<proptest::sample::Index>(),
            new in any::<u16>(),
        ) {
            let words = data.len() / 2;
            let i = at.index(words) * 2;
            let before = checksum(&data);
            let old = u16::from_be_bytes([data[i], data[i + 1]]);
            data[i..i + 2].copy_from_slice(&new.to_be_bytes());
            let after = checksum(&data);
            // Data whose sum folds to zero has two representations of the
            // checksum (0x0000/0xffff); compare the verified form instead.
            let updated = update_u16(before, old, new);
            let mut verify = Checksum::new();
            verify.add_bytes(&data).add_u16(updated);
            prop_assert!(updated == after || verify.fold() == 0xffff);
        }

        #[test]
        fn update_u32_and_bytes_match_recompute(
            mut data in proptest::collection::vec(any::<u8>(), 16..200),
            at in any::<proptest::sample::Index>(),
            new4 in any::<u32>(),
            new16 in any::<[u8; 16]>(),
        ) {
            let i = at.index((data.len() - 16) / 2 + 1) * 2;
            let before = checksum(&data);
            let old4 = u32::from_be_bytes(data[i..i + 4].try_into().unwrap());
            data[i..i + 4].copy_from_slice(&new4.to_be_bytes());
            let c4 = update_u32(before, old4, new4);
            prop_assert_eq!(c4, checksum(&data));

            let old16: [u8; 16] = data[i..i + 16].try_into().unwrap();
            data[i..i + 16].copy_from_slice(&new16);
            let c16 = update_bytes(c4, &old16, &new16);
            prop_assert_eq!(c16, checksum(&data));
        }
    }
}
