//! Fuzz target: the GRE parser takes any bytes without panicking, rejects
//! only with `Truncated`/`Unsupported`, and what it accepts re-emits to the
//! same header and payload (bits the RFC says to ignore written as zero)
//! with a checksum that verifies.
//!
//! Runs under plain `cargo test` (bolero's random engine, seeded from the
//! corpus in `tests/__fuzz__/gre/corpus/`, which holds GRE packets — the
//! outer IP payload); `cargo xtask fuzz` runs it longer.

use rvs_wire::Error;
use rvs_wire::gre::{FLAG_CHECKSUM, GrePacket, GreRepr};

/// Flag bits 6..12 (and the low recursion bits): ignored on receipt.
const IGNORED: u16 = 0x03f8;

#[test]
fn fuzz_gre() {
    bolero::check!().for_each(|bytes: &[u8]| {
        let p = match GrePacket::parse(bytes) {
            Ok(p) => p,
            Err(e) => {
                assert!(matches!(e, Error::Truncated | Error::Unsupported), "{e:?}");
                return;
            }
        };
        let hl = p.header_len();
        assert!((4..=16).contains(&hl) && hl.is_multiple_of(4));
        assert_eq!(p.payload(), &bytes[hl..]);
        let repr = GreRepr::parse(&p);
        assert_eq!(repr.header_len(), hl);

        let mut out = vec![0u8; bytes.len()];
        let n = repr
            .emit_with_payload(&mut out, p.payload().len(), |b| {
                b.copy_from_slice(p.payload());
                Ok(())
            })
            .expect("fits");
        assert_eq!(n, bytes.len());
        let back = GrePacket::parse(&out[..]).expect("own output parses");
        assert_eq!(GreRepr::parse(&back), repr);
        assert_eq!(back.verify_checksum(), Ok(()));

        // Byte-for-byte equal except ignored flag bits, and the checksum
        // word (checksum + reserved1) when present.
        let flags_in = u16::from_be_bytes([bytes[0], bytes[1]]);
        let flags_out = u16::from_be_bytes([out[0], out[1]]);
        assert_eq!(flags_out, flags_in & !IGNORED);
        let skip = if flags_in & FLAG_CHECKSUM != 0 { 8 } else { 4 };
        assert_eq!(&out[2..4], &bytes[2..4]);
        assert_eq!(&out[skip..], &bytes[skip..]);

        // The mutable view is as safe as the read-only one.
        let mut owned = bytes.to_vec();
        let mut m = GrePacket::parse(&mut owned[..]).expect("same bytes");
        let _ = m.set_key(0x0102_0304);
        let _ = m.set_seq(5);
        m.fill_checksum();
        assert_eq!(m.verify_checksum(), Ok(()));
    });
}
