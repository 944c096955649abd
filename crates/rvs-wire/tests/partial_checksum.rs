//! `partial_checksum::complete` gives exactly the checksum a sender that
//! does not offload would have written, for TCP and UDP over IPv4 and IPv6
//! with and without a VLAN tag, and leaves anything else untouched.

use etherparse::PacketBuilder;
use proptest::prelude::*;
use rvs_wire::checksum::{ipv4_pseudo_header, ipv6_pseudo_header};
use rvs_wire::partial_checksum::complete;

/// A frame built by etherparse (correct checksum), its transport offset
/// and checksum-field offset within the transport header.
fn frame(v6: bool, tcp: bool, vlan: bool, payload: &[u8]) -> (Vec<u8>, usize, usize) {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let b = if vlan {
        b.single_vlan(etherparse::VlanId::try_new(42).unwrap())
    } else {
        b.single_vlan(etherparse::VlanId::try_new(1).unwrap())
    };
    let b = if v6 {
        b.ipv6([0xfd; 16], [0xfe; 16], 64)
    } else {
        b.ipv4([10, 0, 0, 2], [10, 0, 0, 100], 64)
    };
    let mut out = Vec::new();
    let field = if tcp {
        let b = b.tcp(40000, 80, 1234, 512).ack(99).psh();
        b.write(&mut out, payload).unwrap();
        16
    } else {
        b.udp(40000, 53).write(&mut out, payload).unwrap();
        6
    };
    if !vlan {
        // Drop the placeholder tag: a plain Ethernet II frame.
        out.drain(12..16);
    }
    let l3 = if vlan { 18 } else { 14 };
    let l4 = l3 + if v6 { 40 } else { 20 };
    (out, l4, field)
}

/// What an offloading sender hands over: the pseudo-header sum, folded,
/// not inverted.
fn make_partial(f: &mut [u8], v6: bool, tcp: bool, l4: usize, field: usize) {
    let proto = if tcp { 6 } else { 17 };
    let len = f.len() - l4;
    let l3 = if v6 { l4 - 40 } else { l4 - 20 };
    let pseudo = if v6 {
        let s: [u8; 16] = f[l3 + 8..l3 + 24].try_into().unwrap();
        let d: [u8; 16] = f[l3 + 24..l3 + 40].try_into().unwrap();
        ipv6_pseudo_header(s.into(), d.into(), proto, len as u32)
    } else {
        let s: [u8; 4] = f[l3 + 12..l3 + 16].try_into().unwrap();
        let d: [u8; 4] = f[l3 + 16..l3 + 20].try_into().unwrap();
        ipv4_pseudo_header(s.into(), d.into(), proto, len as u16)
    };
    f[l4 + field..l4 + field + 2].copy_from_slice(&pseudo.fold().to_be_bytes());
}

proptest! {
    #[test]
    fn completes_to_the_full_checksum(
        v6: bool,
        tcp: bool,
        vlan: bool,
        payload in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let (good, l4, field) = frame(v6, tcp, vlan, &payload);
        let mut f = good.clone();
        make_partial(&mut f, v6, tcp, l4, field);
        prop_assert!(complete(&mut f));
        prop_assert_eq!(f, good);
    }

    #[test]
    fn arbitrary_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = complete(&mut bytes);
    }
}

#[test]
fn ethernet_padding_is_not_summed() {
    let (good, l4, field) = frame(false, true, false, b"hi");
    let mut f = good.clone();
    make_partial(&mut f, false, true, l4, field);
    f.resize(60, 0xaa);
    assert!(complete(&mut f));
    assert_eq!(&f[..good.len()], &good[..]);
}

#[test]
fn other_packets_are_left_alone() {
    // ARP, an IPv4 fragment, ICMP.
    let mut arp = vec![0xff; 12];
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.resize(42, 0);
    let before = arp.clone();
    assert!(!complete(&mut arp));
    assert_eq!(arp, before);
    let (mut frag, _, _) = frame(false, false, false, b"x");
    frag[14 + 6] = 0x20; // more fragments
    let before = frag.clone();
    assert!(!complete(&mut frag));
    assert_eq!(frag, before);
    let (mut icmp, _, _) = frame(false, false, false, b"x");
    icmp[14 + 9] = 1;
    assert!(!complete(&mut icmp));
}
