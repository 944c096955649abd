//! Fuzz target: the IPv4 parser takes any bytes without panicking, rejects
//! exactly what RFC 791's length rules reject (with the documented error),
//! and what it accepts re-emits to the same header and survives in-place
//! rewrites with a checksum equal to a full recomputation.
//!
//! Runs under plain `cargo test` (bolero's random engine, seeded from the
//! corpus in `tests/__fuzz__/ipv4/corpus/`: real captures of a ping, a TCP
//! SYN, an IGMP report with Router Alert, both fragments of a large ping, a
//! Record Route reply and a padded RST); `cargo xtask fuzz` runs it longer.

use core::net::Ipv4Addr;

use rvs_wire::Error;
use rvs_wire::checksum::checksum;
use rvs_wire::ipv4::{HEADER_LEN, Ipv4Packet, Ipv4Repr, MAX_HEADER_LEN};

/// The verdict RFC 791's length rules give, computed independently of the
/// parser.
fn expected(bytes: &[u8]) -> Result<(usize, usize), Error> {
    if bytes.len() < HEADER_LEN {
        return Err(Error::Truncated);
    }
    if bytes[0] >> 4 != 4 {
        return Err(Error::BadVersion);
    }
    let header_len = usize::from(bytes[0] & 0x0f) * 4;
    if header_len < HEADER_LEN || header_len > bytes.len() {
        return Err(Error::BadHeaderLength);
    }
    let total = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
    if total < header_len || total > bytes.len() {
        return Err(Error::BadLength);
    }
    Ok((header_len, total))
}

/// Checksum fields that verify identically: ones' complement has two zeros,
/// and a header whose other words sum to 0xffff verifies with either 0x0000
/// (what a full computation writes) or 0xffff (what no conforming sender
/// writes, but an incremental update of one can keep).
fn same_checksum(a: u16, b: u16) -> bool {
    a == b || matches!((a, b), (0, 0xffff) | (0xffff, 0))
}

#[test]
fn fuzz_ipv4() {
    bolero::check!().for_each(|bytes: &[u8]| {
        check(bytes);
        // Random bytes rarely get past the version check; also try them made
        // plausible (version 4, a total length near the buffer's, and a
        // correct checksum) so the accepting paths see random headers too.
        if bytes.len() >= HEADER_LEN {
            let mut v = bytes.to_vec();
            v[0] = 0x40 | (v[0] & 0x0f);
            let slack = usize::from(v[2] & 0x07);
            let total = v.len().saturating_sub(slack).min(usize::from(u16::MAX)) as u16;
            v[2..4].copy_from_slice(&total.to_be_bytes());
            let header_len = (usize::from(v[0] & 0x0f) * 4).clamp(HEADER_LEN, v.len());
            v[10] = 0;
            v[11] = 0;
            let c = checksum(&v[..header_len]);
            v[10..12].copy_from_slice(&c.to_be_bytes());
            check(&v);
        }
    });
}

/// Checks one input against the invariants above.
fn check(bytes: &[u8]) {
    let parsed = Ipv4Packet::parse(bytes);
    match (&parsed, expected(bytes)) {
        (Ok(p), Ok((header_len, total))) => {
            assert_eq!(p.header_len(), header_len);
            assert_eq!(p.payload(), &bytes[header_len..total]);
            assert_eq!(p.padding(), &bytes[total..]);
            assert_eq!(p.options_bytes(), &bytes[HEADER_LEN..header_len]);
        }
        (Err(e), Err(want)) => assert_eq!(*e, want),
        (got, want) => panic!("parse gave {got:?}, expected {want:?}"),
    }
    let Ok(p) = parsed else { return };
    let header_len = p.header_len();
    let checksum_ok = p.verify_checksum().is_ok();
    assert_eq!(checksum_ok, checksum(&bytes[..header_len]) == 0);

    // Options: the iterator never claims more bytes than there are, and
    // the validating entry points agree with it.
    let mut used = 0;
    let mut bad = false;
    for o in p.options() {
        match o {
            Ok(o) => used += o.wire_len(),
            Err(e) => {
                assert_eq!(e, Error::BadOption);
                bad = true;
            }
        }
    }
    assert!(used <= p.options_bytes().len());
    assert_eq!(p.parse_options().is_err(), bad);

    // Accepted with valid options: the repr re-emits the same header,
    // apart from the reserved flag bit (not kept) and the checksum
    // (recomputed, so equal whenever the original was right).
    match Ipv4Repr::parse(&p) {
        Ok(repr) => {
            assert!(!bad);
            let mut out = [0u8; MAX_HEADER_LEN];
            assert_eq!(repr.emit(&mut out), Ok(header_len));
            let mut want = bytes[..header_len].to_vec();
            want[6] &= 0x7f;
            let (theirs, ours) = (p.checksum(), u16::from_be_bytes([out[10], out[11]]));
            if checksum_ok && want[6] == bytes[6] {
                assert!(same_checksum(theirs, ours), "{theirs:#x} vs {ours:#x}");
            }
            want[10] = out[10];
            want[11] = out[11];
            assert_eq!(&out[..header_len], &want[..]);
            assert_eq!(checksum(&out[..header_len]), 0);
            let again = Ipv4Packet::parse(&out[..header_len])
                .ok()
                .map(|q| Ipv4Repr::parse(&q));
            if repr.payload_len == 0 {
                assert_eq!(again, Some(Ok(repr)));
            }
        }
        Err(e) => {
            assert_eq!(e, Error::BadOption);
            assert!(bad);
        }
    }

    // The mutable view: a NAT-style rewrite keeps a right checksum right
    // and equal to a full recomputation.
    let mut owned = bytes.to_vec();
    let mut p = Ipv4Packet::parse(&mut owned[..]).expect("parsed read-only");
    let ttl = p.ttl();
    p.set_src(Ipv4Addr::new(192, 0, 2, 1));
    p.set_dst(Ipv4Addr::from(u32::from(p.src()).rotate_left(7)));
    p.set_dscp_ecn(p.dscp_ecn() ^ 0x04);
    p.set_ident(p.ident().wrapping_add(1));
    p.set_dont_fragment(!p.dont_fragment());
    assert_eq!(p.decrement_ttl(), ttl <= 1);
    let total = p.total_len();
    assert_eq!(p.set_total_len(0), Err(Error::BadLength));
    assert_eq!(p.total_len(), total);
    let (hdr, payload) = p.split_mut();
    hdr.set_ttl(hdr.ttl());
    payload.reverse();
    let incremental = p.checksum();
    assert_eq!(p.verify_checksum().is_ok(), checksum_ok);
    p.fill_checksum();
    assert_eq!(p.verify_checksum(), Ok(()));
    if checksum_ok {
        assert!(same_checksum(p.checksum(), incremental));
    }
}
