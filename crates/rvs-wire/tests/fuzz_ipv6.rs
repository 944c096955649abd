//! Fuzz target: the IPv6 parser and its extension-header walker take any
//! bytes without panicking, and what they accept is self-consistent: the
//! fixed header re-emits to the same bytes, the walk ends inside the
//! payload after at most `MAX_EXT_HEADERS` headers that tile the payload
//! from offset 40, and each header is a slice of the packet at its offset.
//!
//! Runs under plain `cargo test` (bolero's random engine, seeded from the
//! corpus in `tests/__fuzz__/ipv6/corpus/`: real captures of an MLDv2
//! report with a hop-by-hop header, an ICMPv6 echo request and both
//! fragments of a fragmented echo request); `cargo xtask fuzz` runs it
//! longer.

use rvs_wire::ipv6::{HEADER_LEN, Ipv6FragmentRepr, Ipv6Packet, Ipv6Repr, MAX_EXT_HEADERS};

#[test]
fn fuzz_ipv6() {
    bolero::check!().for_each(|bytes: &[u8]| {
        check(bytes);
        // Random bytes almost never hold a consistent version and payload
        // length; make them so the walker is reached on every input.
        if bytes.len() >= HEADER_LEN {
            let mut fixed = bytes.to_vec();
            fixed[0] = 0x60 | (fixed[0] & 0x0f);
            let n = u16::try_from(bytes.len() - HEADER_LEN).unwrap_or(u16::MAX);
            fixed[4..6].copy_from_slice(&n.to_be_bytes());
            check(&fixed);
        }
    });
}

fn check(bytes: &[u8]) {
    if let Ok(p) = Ipv6Packet::parse(bytes) {
        let repr = Ipv6Repr::parse(&p);
        let mut out = [0u8; HEADER_LEN];
        assert_eq!(repr.emit(&mut out), Ok(HEADER_LEN));
        assert_eq!(&out[..], &bytes[..HEADER_LEN]);
        assert_eq!(p.total_len(), HEADER_LEN + usize::from(p.payload_len()));
        assert!(p.total_len() <= bytes.len());

        // The headers tile the payload from offset 40.
        let mut expect = HEADER_LEN;
        let mut count = 0;
        for h in p.ext_headers() {
            let Ok(h) = h else { break };
            count += 1;
            assert!(count <= MAX_EXT_HEADERS);
            assert_eq!(h.offset(), expect);
            assert_eq!(h.bytes(), &bytes[expect..expect + h.len()]);
            expect += h.len();
            if let Some(opts) = h.options() {
                for o in opts {
                    let Ok(o) = o else { break };
                    assert!(o.data().len() < h.len());
                }
            }
            if let Some(f) = h.fragment() {
                let fr = Ipv6FragmentRepr::parse(f);
                let mut out = [0u8; 8];
                assert_eq!(fr.emit(&mut out), Ok(8));
                // Reserved byte and bits are not kept; the rest is.
                assert_eq!(out[0], bytes[expect - 8]);
                assert_eq!(out[2] & 0xf8, bytes[expect - 6] & 0xf8);
                assert_eq!(out[3] & 1, bytes[expect - 5] & 1);
                assert_eq!(&out[4..], &bytes[expect - 4..expect]);
            }
        }
        if let Ok((proto, off)) = p.upper_layer() {
            assert_eq!(off, expect);
            assert!(off <= p.total_len());
            let (proto2, l4) = p.upper_layer_payload().expect("same walk");
            assert_eq!(proto2, proto);
            assert_eq!(l4, &bytes[off..p.total_len()]);
        }
        let _ = p.fragment();
    }
    // The mutable view must be as safe as the read-only one.
    let mut owned = bytes.to_vec();
    if let Ok(mut p) = Ipv6Packet::parse(&mut owned[..]) {
        let src = p.src();
        p.set_dst(src);
        let _ = p.decrement_hop_limit();
        p.set_flow_label(u32::MAX);
        if let Ok((_, l4)) = p.upper_layer_mut() {
            l4.fill(0);
        }
    }
}
