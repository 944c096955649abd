//! Fuzz target: the UDP parser takes any bytes without panicking; what it
//! accepts round-trips through `UdpRepr`, and NAT rewrites done with
//! incremental checksum updates keep the checksum valid (or absent, for an
//! IPv4 datagram that carried none).
//!
//! Runs under plain `cargo test`, seeded from `tests/__fuzz__/udp/corpus/`
//! (captured DNS queries over IPv4 and IPv6).

use core::net::{Ipv4Addr, Ipv6Addr};

use rvs_wire::udp::{HEADER_LEN, UdpPacket, UdpRepr};

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);
const LIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 100);
const RS: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 3);

#[test]
fn fuzz_udp() {
    bolero::check!().for_each(|bytes: &[u8]| {
        let Ok(p) = UdpPacket::parse(bytes) else {
            return;
        };
        let len = usize::from(p.length());
        assert!(len >= HEADER_LEN && len <= bytes.len());
        assert_eq!(p.payload().len(), len - HEADER_LEN);

        // Round trip: same ports, length and payload.
        let repr = UdpRepr::parse(&p);
        let mut out = vec![0u8; len];
        assert_eq!(repr.emit_v4(&mut out, CLIENT, VIP, p.payload()), Ok(len));
        assert_eq!(&out[..6], &bytes[..6]);
        let q = UdpPacket::parse(&out[..]).expect("emitted datagram parses");
        assert_eq!(UdpRepr::parse(&q), repr);
        assert_eq!(q.verify_checksum_v4(CLIENT, VIP), Ok(()));
        assert_ne!(q.checksum(), 0);

        // NAT rewrite of the datagram as received, incremental updates only.
        let had_checksum = p.checksum() != 0;
        let mut raw = bytes.to_vec();
        let mut p = UdpPacket::parse(&mut raw[..]).expect("parsed above");
        p.update_checksum_for_addr_change_v4(CLIENT, LIP);
        p.update_checksum_for_addr_change_v4(VIP, RS);
        p.set_src_port(p.dst_port().rotate_left(3));
        p.set_dst_port(80);
        assert_eq!(p.checksum() != 0, had_checksum, "0 means none and stays 0");

        // And with a valid checksum first, over IPv6: it must still verify.
        let c6: Ipv6Addr = Ipv6Addr::from(u128::from(p.src_port()) << 32 | 1);
        let s6: Ipv6Addr = "fd00:99::2".parse().expect("literal");
        let r6: Ipv6Addr = "fd00:99::3".parse().expect("literal");
        p.fill_checksum_v6(c6, s6);
        p.update_checksum_for_addr_change_v6(s6, r6);
        p.set_dst_port(8080);
        assert_eq!(p.verify_checksum_v6(c6, r6), Ok(()));
    });
}
