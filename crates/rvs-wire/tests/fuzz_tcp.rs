//! Fuzz target: the TCP parser, option walker and in-place rewrites take any
//! bytes without panicking. What the parser accepts must round-trip through
//! `TcpRepr`, and after the balancer's rewrites (FullNAT addresses and
//! ports, sequence translation, MSS clamp, timestamp removal, TOA insertion)
//! done with incremental checksum updates only, the checksum must verify.
//!
//! Runs under plain `cargo test` (bolero's random engine, seeded from the
//! corpus in `tests/__fuzz__/tcp/corpus/`: captured Linux segments and a
//! DPVS-form TOA segment); `cargo xtask fuzz` runs it longer.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rvs_wire::tcp::{
    MAX_HEADER_LEN, MAX_OPTIONS_LEN, TcpFlags, TcpOption, TcpPacket, TcpRepr, Toa, insert_toa,
};

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);
const LIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 100);
const RS: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 3);

/// Rewrite values drawn from the input itself, so the fuzzer steers them.
fn knob(bytes: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    for (i, b) in w.iter_mut().enumerate() {
        *b = bytes.get(at + i).copied().unwrap_or(0x5a);
    }
    u32::from_be_bytes(w)
}

fn check_repr_round_trip(bytes: &[u8]) {
    let Ok(p) = TcpPacket::parse(bytes) else {
        return;
    };
    assert!(p.options().count() <= MAX_OPTIONS_LEN);
    let Ok(repr) = TcpRepr::parse(&p) else {
        return;
    };
    let mut out = vec![0u8; MAX_HEADER_LEN + p.payload().len()];
    let n = repr
        .emit_v4(&mut out, CLIENT, VIP, p.payload())
        .expect("a parsed repr re-emits");
    let q = TcpPacket::parse(&out[..n]).expect("emitted segment parses");
    assert_eq!(TcpRepr::parse(&q), Ok(repr));
    assert_eq!(q.verify_checksum_v4(CLIENT, VIP), Ok(()));
    // Ports, seq and ack are bytes 0..12 either way; flags and window too.
    assert_eq!(&out[..12], &bytes[..12]);
    assert_eq!(q.flags(), p.flags());
    assert_eq!(q.window(), p.window());
    assert_eq!(q.payload(), p.payload());
}

fn check_rewrites(bytes: &[u8]) {
    if TcpPacket::parse(bytes).is_err() {
        return;
    }
    let seg_len = bytes.len();
    let mut buf = bytes.to_vec();
    buf.resize(seg_len + Toa::V6_LEN, 0);
    let k = knob(bytes, 4);
    {
        let mut p = TcpPacket::parse(&mut buf[..seg_len]).expect("parsed above");
        // The input's checksum is arbitrary: make it right first.
        p.fill_checksum_v4(CLIENT, VIP);
        p.update_checksum_for_addr_change_v4(CLIENT, LIP);
        p.update_checksum_for_addr_change_v4(VIP, RS);
        p.set_src_port(k as u16);
        p.set_dst_port((k >> 16) as u16);
        p.adjust_seq(k.rotate_left(7));
        p.adjust_ack(0u32.wrapping_sub(k));
        p.set_window(!(k as u16));
        p.set_flags(TcpFlags::from_bits_truncate((k >> 3) as u16));
        let had = p.mss();
        let clamped = p.clamp_mss(1452);
        if had.is_some() {
            // mss() reads the first MSS unless a malformed option precedes
            // it, in which case clamp_mss does not reach it either.
            assert_eq!(clamped, had);
            assert_eq!(p.mss(), had.map(|m| m.min(1452)));
        }
        p.replace_timestamps_with_nops();
        assert!(!p.replace_timestamps_with_nops(), "none left to replace");
        assert_eq!(p.verify_checksum_v4(LIP, RS), Ok(()));
    }
    let v6 = k & 1 == 1;
    let toa = Toa {
        port: (k >> 8) as u16,
        addr: if v6 {
            IpAddr::V6(Ipv6Addr::from(u128::from(k) << 64 | 1))
        } else {
            IpAddr::V4(CLIENT)
        },
    };
    let payload = TcpPacket::parse(&buf[..seg_len])
        .expect("still parses")
        .payload()
        .to_vec();
    let before = buf.clone();
    match insert_toa(&mut buf, seg_len, &toa) {
        Ok(n) => {
            assert_eq!(n, seg_len + toa.wire_len());
            let p = TcpPacket::parse(&buf[..n]).expect("grown segment parses");
            assert_eq!(p.verify_checksum_v4(LIP, RS), Ok(()));
            assert_eq!(p.payload(), &payload[..]);
            assert!(p.options().any(|o| o == Ok(TcpOption::Toa(toa))));
        }
        Err(_) => assert_eq!(buf, before, "a failed insert changes nothing"),
    }
}

#[test]
fn fuzz_tcp() {
    bolero::check!().for_each(|bytes: &[u8]| {
        check_repr_round_trip(bytes);
        check_rewrites(bytes);
    });
}
