//! The pinned hash every table-driven scheduler uses.
//!
//! Maglev tables, consistent-hash rings and source/destination-hash tables
//! must come out identical on every rvs node and in every release: two nodes
//! behind one ECMP route have to send a flow to the same real server, and an
//! upgrade must not reshuffle established clients. So nothing here may depend
//! on a per-process random seed, on `std`'s `Hash` impls (whose byte stream
//! is not a stable format) or on platform endianness. We use SipHash-2-4
//! (Aumasson & Bernstein, 2012) with fixed 128-bit keys over a canonical byte
//! encoding:
//!
//! | what              | bytes                                                        |
//! |-------------------|--------------------------------------------------------------|
//! | address           | family byte (`4` or `6`), then 4 or 16 address bytes         |
//! | server identity   | address, then the port big-endian                            |
//! | flow key          | the flow's source (or destination) address, then, when the   |
//! |                   | scheduler hashes ports, the source port big-endian           |
//! | rehash / replica  | the bytes above, then a `u32` counter big-endian             |
//!
//! IPv4-mapped IPv6 addresses (how [`FlowKey`](crate::flow::FlowKey) stores
//! IPv4) are encoded as IPv4, so a server configured as `10.0.0.1` and a flow
//! from `10.0.0.1` use the same bytes whichever way they were written.
//!
//! Tests in this module pin the algorithm to the published SipHash-2-4 test
//! vector and the encoding to stored outputs: changing either fails them.

use core::net::{IpAddr, Ipv6Addr};

use siphasher::sip::SipHasher24;

/// Key for the Maglev permutation offset of a server.
pub(crate) const MAGLEV_OFFSET_KEY: [u8; 16] = *b"rvs maglev offst";
/// Key for the Maglev permutation skip of a server.
pub(crate) const MAGLEV_SKIP_KEY: [u8; 16] = *b"rvs maglev skip!";
/// Key for the points a server places on the consistent-hash ring.
pub(crate) const RING_KEY: [u8; 16] = *b"rvs conhash ring";
/// Key for hashing flows (addresses, ports, extra keys) at lookup time.
pub(crate) const FLOW_KEY: [u8; 16] = *b"rvs flow hash v1";

/// SipHash-2-4 of `bytes` under `key`.
pub(crate) fn sip24(key: &[u8; 16], bytes: &[u8]) -> u64 {
    SipHasher24::new_with_key(key).hash(bytes)
}

/// A small stack buffer holding one canonical encoding (at most
/// 1 + 16 + 2 + 4 bytes). Writes past the end are dropped rather than
/// panicking; the capacity is larger than any encoding this module makes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyBytes {
    buf: [u8; 32],
    len: usize,
}

impl KeyBytes {
    /// An empty encoding.
    pub(crate) const fn new() -> Self {
        KeyBytes {
            buf: [0; 32],
            len: 0,
        }
    }

    /// The canonical encoding of an address (family byte, address bytes).
    pub(crate) fn addr(addr: IpAddr) -> Self {
        let mut k = Self::new();
        match addr {
            IpAddr::V4(a) => {
                k.push(&[4]);
                k.push(&a.octets());
            }
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => {
                    k.push(&[4]);
                    k.push(&v4.octets());
                }
                None => {
                    k.push(&[6]);
                    k.push(&a.octets());
                }
            },
        }
        k
    }

    /// The canonical encoding of an address stored in 16-byte form.
    pub(crate) fn addr_v6(addr: Ipv6Addr) -> Self {
        Self::addr(IpAddr::V6(addr))
    }

    /// The canonical encoding of a server identity: address, port.
    pub(crate) fn server(addr: IpAddr, port: u16) -> Self {
        let mut k = Self::addr(addr);
        k.push(&port.to_be_bytes());
        k
    }

    /// Appends raw bytes (silently truncated at capacity, which no caller in
    /// this module reaches).
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        let end = self.len.saturating_add(bytes.len());
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(bytes);
            self.len = end;
        }
    }

    /// This encoding followed by `n` big-endian, without modifying `self`.
    pub(crate) fn with_counter(&self, n: u32) -> Self {
        let mut k = *self;
        k.push(&n.to_be_bytes());
        k
    }

    /// The encoded bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// SipHash-2-4 of the encoded bytes under `key`.
    pub(crate) fn hash(&self, key: &[u8; 16]) -> u64 {
        sip24(key, self.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    /// The test vector of the SipHash paper (Appendix A): key 00 01 .. 0f,
    /// message 00 01 .. 0e (15 bytes), SipHash-2-4 = a129ca6149be45e5.
    #[test]
    fn siphash24_published_vector() {
        let key: [u8; 16] = core::array::from_fn(|i| i as u8);
        let msg: [u8; 15] = core::array::from_fn(|i| i as u8);
        assert_eq!(sip24(&key, &msg), 0xa129_ca61_49be_45e5);
        // Empty message, same key (first entry of the reference vectors.h).
        assert_eq!(
            sip24(&key, &[]).to_le_bytes(),
            [0x31, 0x0e, 0x0e, 0xdd, 0x47, 0xdb, 0x6f, 0x72]
        );
    }

    #[test]
    fn canonical_encodings() {
        let v4 = KeyBytes::server(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80);
        assert_eq!(v4.as_bytes(), &[4, 10, 0, 0, 1, 0, 80]);
        // IPv4-mapped IPv6 encodes as IPv4.
        let mapped = KeyBytes::server(IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped()), 80);
        assert_eq!(mapped.as_bytes(), v4.as_bytes());
        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let k6 = KeyBytes::server(IpAddr::V6(v6), 443).with_counter(7);
        let mut want = vec![6u8];
        want.extend_from_slice(&v6.octets());
        want.extend_from_slice(&[0x01, 0xbb, 0, 0, 0, 7]);
        assert_eq!(k6.as_bytes(), &want[..]);
    }

    /// Stored outputs: the hashes every table is built from. Computed once
    /// with this code and written here; they must never change.
    #[test]
    fn stored_hashes() {
        let s = KeyBytes::server(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80);
        let got = [
            s.hash(&MAGLEV_OFFSET_KEY),
            s.hash(&MAGLEV_SKIP_KEY),
            s.with_counter(0).hash(&RING_KEY),
            KeyBytes::addr(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))).hash(&FLOW_KEY),
        ];
        assert_eq!(got, STORED);
    }

    const STORED: [u64; 4] = [
        0x0805_72f8_7aad_99b8,
        0x4570_3eb0_f1b8_1338,
        0xbb7c_5f03_955c_4376,
        0x78ec_1061_b118_acbd,
    ];
}
