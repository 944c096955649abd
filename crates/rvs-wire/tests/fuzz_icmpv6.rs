//! Fuzz target: the ICMPv6 parser, its typed messages and the
//! neighbour-discovery option iterator take any bytes without panicking,
//! and what they accept is self-consistent: the typed message re-emits with
//! a valid checksum and parses back to itself; error messages and echo keep
//! their length, type, code (packet too big has none) and payload; the
//! option iterator ends (length-0 options are rejected) and every option it
//! yields re-emits to the bytes it was read from, up to reserved fields;
//! in-place echo rewrites keep a valid checksum valid.
//!
//! An input is the IPv6 source and destination addresses (32 bytes, needed
//! for the pseudo-header checksum) followed by the ICMPv6 message. Runs
//! under plain `cargo test` (bolero's random engine, seeded from the corpus
//! in `tests/__fuzz__/icmpv6/corpus/`: captured neighbour solicitation and
//! advertisements, echo request and reply, a time exceeded and a
//! 1240-byte packet too big quoting a TCP segment); `cargo xtask fuzz` runs
//! it longer.

use core::net::Ipv6Addr;

use rvs_wire::icmpv6::{
    HEADER_LEN, Icmpv6Packet, Icmpv6Repr, NdpOption, error_allowed_for, msg_type,
};

#[test]
fn fuzz_icmpv6() {
    bolero::check!().for_each(|bytes: &[u8]| {
        let (src, dst, msg) = match bytes
            .split_first_chunk::<16>()
            .and_then(|(s, rest)| rest.split_first_chunk::<16>().map(|(d, m)| (*s, *d, m)))
        {
            Some((s, d, m)) => (Ipv6Addr::from(s), Ipv6Addr::from(d), m),
            None => (Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST, bytes),
        };
        check(src, dst, msg);
        // Random bytes rarely name a neighbour-discovery message with code
        // 0; force each so the option walker is reached on every input.
        if msg.len() >= HEADER_LEN {
            for t in [133, 134, 135, 136, 137, 2, 128] {
                let mut forced = msg.to_vec();
                forced[0] = t;
                forced[1] = 0;
                check(src, dst, &forced);
            }
        }
    });
}

fn check(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) {
    let Ok(p) = Icmpv6Packet::parse(msg) else {
        assert!(msg.len() < HEADER_LEN);
        return;
    };
    let valid = p.verify_checksum(src, dst);
    let _ = (p.target(), p.na_flags(), p.mtu(), p.pointer());
    let _ = error_allowed_for(msg[0], msg[1], msg);

    if let Ok(opts) = p.ndp_options() {
        let mut n = 0;
        // Where the options start: after the fixed part of each ND message.
        let mut at = match p.msg_type() {
            msg_type::ROUTER_SOLICIT => 8,
            msg_type::ROUTER_ADVERT => 16,
            msg_type::NEIGHBOR_SOLICIT | msg_type::NEIGHBOR_ADVERT => 24,
            _ => 40,
        };
        for o in opts {
            n += 1;
            assert!(n <= msg.len() / 8 + 1, "the iterator must end");
            let Ok(o) = o else { break };
            let len = o.buffer_len();
            let mut out = vec![0u8; len];
            assert_eq!(o.emit(&mut out), Ok(len));
            let orig = &msg[at..at + len];
            assert_eq!(&out[..2], &orig[..2]);
            if let NdpOption::Other { .. }
            | NdpOption::SourceLinkLayerAddr(_)
            | NdpOption::TargetLinkLayerAddr(_) = o
            {
                assert_eq!(&out[..], orig);
            }
            at += len;
        }
    }

    if let Ok(quoted) = p.quoted() {
        assert!(p.is_error());
        assert!(quoted.len() >= 48);
        assert_eq!(quoted, &msg[HEADER_LEN..]);
    }
    if let Ok((ip, _, l4)) = p.quoted_ipv6() {
        assert_eq!(ip.version(), 6);
        assert!(msg.ends_with(l4));
        assert!(l4.len() <= msg.len() - HEADER_LEN - 40);
    }

    if let Ok(repr) = Icmpv6Repr::parse(&p) {
        let mut out = vec![0u8; repr.buffer_len()];
        assert_eq!(repr.emit(src, dst, &mut out), Ok(out.len()));
        let q = Icmpv6Packet::parse(&out[..]).expect("emitted message parses");
        assert!(q.verify_checksum(src, dst));
        assert_eq!(Icmpv6Repr::parse(&q), Ok(repr));
        assert_eq!(q.msg_type(), p.msg_type());
        if p.is_error() || p.is_echo() {
            assert_eq!(out.len(), msg.len());
            assert_eq!(&out[HEADER_LEN..], &msg[HEADER_LEN..]);
            // Packet too big has no codes: senders write 0, receivers
            // ignore it (RFC 4443 §3.2), and so does the repr.
            if p.msg_type() != msg_type::PACKET_TOO_BIG {
                assert_eq!(out[1], msg[1]);
            }
        }
    }

    let mut owned = msg.to_vec();
    let mut m = Icmpv6Packet::parse(&mut owned[..]).expect("parsed once already");
    if m.is_echo() {
        m.set_echo_ident(0x1234).expect("echo");
        m.set_echo_seq(0xfffe).expect("echo");
        let _ = m.make_echo_reply();
        assert_eq!(m.verify_checksum(dst, src), valid);
    }
    if let Ok((ip, _, l4)) = m.quoted_ipv6_mut() {
        ip.hop_limit = 0;
        l4.fill(0xaa);
    }
    m.fill_checksum(src, dst);
    assert!(m.verify_checksum(src, dst));
}
