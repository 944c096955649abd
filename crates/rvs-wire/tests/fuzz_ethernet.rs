//! Fuzz target: the Ethernet parser takes any bytes without panicking, and
//! what it accepts re-emits to the same header bytes.
//!
//! Runs under plain `cargo test` (bolero's random engine, seeded from the
//! corpus in `tests/__fuzz__/ethernet/corpus/`); `cargo xtask fuzz`
//! runs it longer.

use rvs_wire::ethernet::{EthernetFrame, EthernetRepr, HEADER_LEN};

#[test]
fn fuzz_ethernet() {
    bolero::check!().for_each(|bytes: &[u8]| {
        let mut owned = bytes.to_vec();
        if let Ok(frame) = EthernetFrame::parse(bytes) {
            let repr = EthernetRepr::parse(&frame);
            let mut out = [0u8; HEADER_LEN];
            assert_eq!(repr.emit(&mut out), Ok(HEADER_LEN));
            assert_eq!(&out[..], &bytes[..HEADER_LEN]);
        }
        // The mutable view must be as safe as the read-only one.
        if let Ok(mut frame) = EthernetFrame::parse(&mut owned[..]) {
            let src = frame.src();
            frame.set_dst(src);
        }
    });
}
