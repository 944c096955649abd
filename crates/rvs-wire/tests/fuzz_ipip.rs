//! Fuzz target: IP-in-IP decapsulation takes any bytes without panicking,
//! and encapsulation of any bytes either fails cleanly (leaving the buffer
//! untouched) or produces a packet that decapsulates to exactly the inner
//! packet, for both outer families.
//!
//! Runs under plain `cargo test` (bolero's random engine, seeded from the
//! corpus in `tests/__fuzz__/ipip/corpus/`: the four encapsulation
//! combinations of a captured ICMP and ICMPv6 echo request, as decoded by
//! tshark in the module's tests); `cargo xtask fuzz` runs it longer.

use rvs_wire::ipip::{Family, Ipv4Outer, Ipv6Outer, Outer, decapsulate, encapsulate};
use rvs_wire::ipv4::Ipv4Packet;
use rvs_wire::ipv6::Ipv6Packet;

const HEADROOM: usize = 64;

#[test]
fn fuzz_ipip() {
    bolero::check!().for_each(|bytes: &[u8]| {
        check_decap(bytes);
        check_encap(bytes);
        // Random bytes rarely hold consistent length fields: make them
        // consistent (as IPv4 and as IPv6) so encapsulation goes deep.
        if bytes.len() >= 20 && bytes.len() <= 65535 {
            let mut v4 = bytes.to_vec();
            v4[0] = 0x45;
            v4[2..4].copy_from_slice(&(bytes.len() as u16).to_be_bytes());
            check_encap(&v4);
        }
        if bytes.len() >= 40 && bytes.len() <= 65535 + 40 {
            let mut v6 = bytes.to_vec();
            v6[0] = 0x60 | (v6[0] & 0x0f);
            v6[4..6].copy_from_slice(&((bytes.len() - 40) as u16).to_be_bytes());
            check_encap(&v6);
        }
    });
}

fn check_decap(bytes: &[u8]) {
    if let Ok(d) = decapsulate(bytes) {
        let start = d.inner_offset;
        assert_eq!(d.inner, &bytes[start..start + d.inner.len()]);
        match d.inner_family {
            Family::Ipv4 => {
                let p = Ipv4Packet::parse(d.inner).expect("inner checked");
                assert_eq!(usize::from(p.total_len()), d.inner.len());
            }
            Family::Ipv6 => {
                let p = Ipv6Packet::parse(d.inner).expect("inner checked");
                assert_eq!(p.total_len(), d.inner.len());
            }
        }
        // Re-encapsulating the inner packet gives it back again.
        check_encap(d.inner);
    }
    let mut owned = bytes.to_vec();
    if let Ok(d) = decapsulate(&mut owned[..]) {
        d.inner.fill(0);
    }
}

fn check_encap(inner: &[u8]) {
    let outers = [
        Outer::V4(Ipv4Outer {
            src: [192, 0, 2, 1].into(),
            dst: [192, 0, 2, 2].into(),
            ttl: 64,
            ident: 7,
        }),
        Outer::V6(Ipv6Outer {
            src: [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1].into(),
            dst: [0x2001, 0xdb8, 0, 0, 0, 0, 0, 2].into(),
            hop_limit: 64,
            flow_label: 0x12345,
        }),
    ];
    for outer in outers {
        let mut buf = vec![0u8; HEADROOM];
        buf.extend_from_slice(inner);
        let before = buf.clone();
        match encapsulate(&mut buf, HEADROOM, &outer) {
            Ok(r) => {
                assert!(r.start < HEADROOM && r.end <= buf.len());
                let d = decapsulate(&buf[r.clone()]).expect("our own encapsulation");
                assert_eq!(d.inner_offset, HEADROOM - r.start);
                assert_eq!(d.inner, &inner[..d.inner.len()]);
                assert_eq!(r.end, HEADROOM + d.inner.len());
                if let Outer::V4(_) = outer {
                    let p = Ipv4Packet::parse(&buf[r]).expect("valid outer");
                    assert_eq!(p.verify_checksum(), Ok(()));
                }
            }
            Err(_) => assert_eq!(buf, before),
        }
    }
}
