//! Fuzz target: the ICMPv4 parser takes any bytes without panicking, and
//! what it accepts is self-consistent: the typed message re-emits to a
//! message of the same length with the same type, code and payload and a
//! valid checksum, which parses back to the same typed message; when the
//! input's checksum was valid and no unused header bytes were dropped, the
//! re-emitted bytes are the input. The in-place rewrites (echo NAT, echo
//! reply) keep a valid checksum valid.
//!
//! Runs under plain `cargo test` (bolero's random engine, seeded from the
//! corpus in `tests/__fuzz__/icmpv4/corpus/`: captured echo request and
//! reply, a time exceeded quoting an echo request and a 556-byte
//! fragmentation-needed quoting a TCP segment); `cargo xtask fuzz` runs it
//! longer.

use rvs_wire::icmpv4::{HEADER_LEN, Icmpv4Packet, Icmpv4Repr, error_allowed_for};

#[test]
fn fuzz_icmpv4() {
    bolero::check!().for_each(|bytes: &[u8]| {
        check(bytes);
        // Force the interpreted types so every input reaches them.
        if bytes.len() >= HEADER_LEN {
            for (t, code) in [(0, 0), (3, 4), (5, 1), (8, 0), (11, 0), (12, 0)] {
                let mut forced = bytes.to_vec();
                forced[0] = t;
                forced[1] = code;
                check(&forced);
            }
        }
    });
}

fn check(bytes: &[u8]) {
    let Ok(p) = Icmpv4Packet::parse(bytes) else {
        assert!(bytes.len() < HEADER_LEN);
        return;
    };
    let valid = p.verify_checksum();
    let repr = Icmpv4Repr::parse(&p);
    let mut out = vec![0u8; repr.buffer_len()];
    assert_eq!(repr.emit(&mut out), Ok(bytes.len()));
    let q = Icmpv4Packet::parse(&out[..]).expect("emitted message parses");
    assert!(q.verify_checksum());
    assert_eq!(Icmpv4Repr::parse(&q), repr);
    assert_eq!(&out[..2], &bytes[..2]);
    assert_eq!(&out[HEADER_LEN..], &bytes[HEADER_LEN..]);
    if valid && out[4..8] == bytes[4..8] {
        // Equal, up to the two encodings of a zero checksum.
        let (a, b) = (q.checksum(), p.checksum());
        assert!(a == b || (a | b == 0xffff && a & b == 0), "{a:#x} {b:#x}");
    }
    if let Ok(quoted) = p.quoted() {
        assert!(p.is_error());
        assert!(quoted.len() >= 28);
        assert_eq!(quoted, &bytes[HEADER_LEN..]);
        let _ = error_allowed_for(quoted);
    }
    if let Ok((ip, l4)) = p.quoted_ipv4() {
        assert_eq!(ip.version(), 4);
        assert!(l4.len() >= 8);
        assert_eq!(HEADER_LEN + ip.header_len() + l4.len(), bytes.len());
    }
    let _ = error_allowed_for(bytes);

    // The mutable view: rewrites keep a valid checksum valid.
    let mut owned = bytes.to_vec();
    let mut m = Icmpv4Packet::parse(&mut owned[..]).expect("parsed once already");
    if m.is_echo() {
        m.set_echo_ident(0x1234).expect("echo");
        m.set_echo_seq(0xfffe).expect("echo");
        let _ = m.make_echo_reply();
        assert_eq!(m.verify_checksum(), valid);
    } else {
        assert!(m.set_echo_ident(1).is_err());
    }
    if let Ok((ip, l4)) = m.quoted_ipv4_mut() {
        ip.set_dst(core::net::Ipv4Addr::BROADCAST);
        l4.fill(0xaa);
    }
    m.fill_checksum();
    assert!(m.verify_checksum());
}
