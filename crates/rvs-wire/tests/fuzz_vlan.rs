//! Fuzz target: the VLAN walker takes any frame without panicking; what it
//! accepts re-emits to the same header bytes, and popping then pushing the
//! outer tag in place gives back the original frame.
//!
//! Runs under plain `cargo test` (bolero's random engine, seeded from the
//! corpus in `tests/__fuzz__/vlan/corpus/`); `cargo xtask fuzz` runs it
//! longer.

use rvs_wire::Error;
use rvs_wire::vlan::{TaggedEthernetRepr, pop_outer_tag, push_tag, walk_frame};

#[test]
fn fuzz_vlan() {
    bolero::check!().for_each(|bytes: &[u8]| {
        let Ok(w) = walk_frame(bytes) else {
            // Rejections are only ever these two.
            let e = walk_frame(bytes).unwrap_err();
            assert!(matches!(e, Error::Truncated | Error::Unsupported), "{e:?}");
            return;
        };
        let hl = w.l3_offset();
        assert_eq!(w.payload(), &bytes[hl..]);

        let (repr, payload) = TaggedEthernetRepr::parse(bytes).expect("walk accepted it");
        assert_eq!(repr.tags, *w.tags());
        assert_eq!(repr.ethertype, w.ethertype());
        assert_eq!(payload, w.payload());
        let mut out = vec![0u8; hl];
        assert_eq!(repr.emit(&mut out), Ok(hl));
        assert_eq!(&out[..], &bytes[..hl]);

        // Pop the outer tag in place, then push it back.
        let mut owned = bytes.to_vec();
        match w.tags().outer() {
            None => assert_eq!(pop_outer_tag(&mut owned, 0), Err(Error::Unsupported)),
            Some(outer) => {
                let start = pop_outer_tag(&mut owned, 0).expect("tagged frame");
                assert_eq!(start, 4);
                let popped = walk_frame(&owned[start..]).expect("one tag fewer");
                assert_eq!(popped.tags().as_slice(), &w.tags().as_slice()[1..]);
                assert_eq!(popped.ethertype(), w.ethertype());
                assert_eq!(popped.payload(), w.payload());
                assert_eq!(push_tag(&mut owned, start, outer), Ok(0));
                assert_eq!(&owned[..], bytes);
            }
        }
    });
}
