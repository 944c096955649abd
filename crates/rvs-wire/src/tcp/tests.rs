//! Tests for the TCP view, options, rewrites and builder.
//!
//! # Known-answer packets
//! Captured with `tcpdump -xx` on a veth pair between two network namespaces
//! created for the purpose (10.99.0.1 ↔ 10.99.0.2, fd00:99::1 ↔ fd00:99::2),
//! Linux 6.x client and server (Python sockets), with TX checksum offload
//! turned off on both ends (`ETHTOOL_STXCSUM` ioctl) so the captured
//! checksums are the real ones; tcpdump reported each `cksum … (correct)`.
//! Only the TCP segment (the IP payload) is kept. The TOA segment was
//! crafted with scapy 2.5 (DPVS's wire form `fe 08 <port> <ipv4>`, see
//! ARCHITECTURE.md §10) and decoded by tcpdump.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const C4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const S4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);
const LIP4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 100);
const RS4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 3);

fn c6() -> Ipv6Addr {
    "fd00:99::1".parse().unwrap()
}
fn s6() -> Ipv6Addr {
    "fd00:99::2".parse().unwrap()
}

/// `10.99.0.1.38414 > 10.99.0.2.8080: Flags [S], cksum 0x05c3 (correct),
/// seq 229578721, win 64240, options [mss 1460,sackOK,TS val 267863899 ecr
/// 0,nop,wscale 10], length 0`
fn syn() -> Vec<u8> {
    hex(
        "960e 1f90 0daf 17e1 0000 0000 a002 faf0 05c3 0000 0204 05b4 0402 080a
         0ff7 475b 0000 0000 0103 030a",
    )
}

/// `10.99.0.2.8080 > 10.99.0.1.38414: Flags [S.], cksum 0x12c4 (correct),
/// seq 1767734057, ack 229578722, win 65160, options [mss 1460,sackOK,TS val
/// 2238154087 ecr 267863899,nop,wscale 10], length 0`
fn syn_ack() -> Vec<u8> {
    hex(
        "1f90 960e 695d 7b29 0daf 17e2 a012 fe88 12c4 0000 0204 05b4 0402 080a
         8567 8567 0ff7 475b 0103 030a",
    )
}

const GET: &[u8] = b"GET / HTTP/1.0\r\n\r\n";

/// `10.99.0.1.38414 > 10.99.0.2.8080: Flags [P.], cksum 0x6123 (correct),
/// seq 1:19, ack 1, win 63, options [nop,nop,TS val 267863899 ecr
/// 2238154087], length 18: HTTP` (`GET / HTTP/1.0\r\n\r\n`)
fn data() -> Vec<u8> {
    let mut v = hex("960e 1f90 0daf 17e2 695d 7b2a 8018 003f 6123 0000 0101 080a
                     0ff7 475b 8567 8567");
    v.extend_from_slice(GET);
    v
}

/// scapy-crafted: the data segment above after FullNAT (10.99.0.100.1025 >
/// 10.99.0.3.80) carrying the client in TOA. tcpdump:
/// `10.99.0.100.1025 > 10.99.0.3.80: Flags [P.], cksum 0x5389 (correct),
/// seq 229578722:229578740, ack 1767734058, win 63, options [nop,nop,TS val
/// 267863899 ecr 2238154087,exp-960e], length 18` (tcpdump reads kind 254 as
/// an RFC 6994 experiment and prints the first two data bytes as its ExID).
fn data_toa() -> Vec<u8> {
    let mut v = hex("0401 0050 0daf 17e2 695d 7b2a a018 003f 5389 0000 0101 080a
                     0ff7 475b 8567 8567 fe08 960e 0a63 0001");
    v.extend_from_slice(GET);
    v
}

/// `fd00:99::1.40706 > fd00:99::2.8080: Flags [S], cksum 0xcfd5 (correct),
/// seq 3442793481, win 64800, options [mss 1440,sackOK,TS val 2760340363 ecr
/// 0,nop,wscale 10], length 0`
fn syn_v6() -> Vec<u8> {
    hex(
        "9f02 1f90 cd34 dc09 0000 0000 a002 fd20 cfd5 0000 0204 05a0 0402 080a
         a487 738b 0000 0000 0103 030a",
    )
}

/// `fd00:99::1.40706 > fd00:99::2.8080: Flags [P.], cksum 0x66b9 (correct),
/// seq 1:19, ack 1, win 64, options [nop,nop,TS val 2760340363 ecr
/// 1601387268], length 18: HTTP`
fn data_v6() -> Vec<u8> {
    let mut v = hex("9f02 1f90 cd34 dc0a 6c5f af17 8018 0040 66b9 0000 0101 080a
                     a487 738b 5f73 3b04");
    v.extend_from_slice(GET);
    v
}

/// Checks our reading of `bytes` against etherparse's.
fn cross_check_etherparse(bytes: &[u8], src: Ipv4Addr, dst: Ipv4Addr) {
    let p = TcpPacket::parse(bytes).unwrap();
    let (h, payload) = etherparse::TcpHeader::from_slice(bytes).unwrap();
    assert_eq!(h.source_port, p.src_port());
    assert_eq!(h.destination_port, p.dst_port());
    assert_eq!(h.sequence_number, p.seq());
    assert_eq!(h.acknowledgment_number, p.ack());
    assert_eq!(h.window_size, p.window());
    assert_eq!(h.checksum, p.checksum());
    assert_eq!(h.urgent_pointer, p.urgent());
    let f = p.flags();
    assert_eq!(h.ns, f.contains(TcpFlags::AE));
    assert_eq!(h.cwr, f.contains(TcpFlags::CWR));
    assert_eq!(h.ece, f.contains(TcpFlags::ECE));
    assert_eq!(h.urg, f.contains(TcpFlags::URG));
    assert_eq!(h.ack, f.contains(TcpFlags::ACK));
    assert_eq!(h.psh, f.contains(TcpFlags::PSH));
    assert_eq!(h.rst, f.contains(TcpFlags::RST));
    assert_eq!(h.syn, f.contains(TcpFlags::SYN));
    assert_eq!(h.fin, f.contains(TcpFlags::FIN));
    assert_eq!(h.header_len(), p.header_len());
    assert_eq!(h.options.as_slice(), p.options_bytes());
    assert_eq!(payload, p.payload());
    let theirs = h
        .calc_checksum_ipv4_raw(src.octets(), dst.octets(), payload)
        .unwrap();
    assert_eq!(theirs, p.compute_checksum_v4(src, dst));
}

#[test]
fn kat_syn() {
    let b = syn();
    let p = TcpPacket::parse(&b[..]).unwrap();
    assert_eq!(p.src_port(), 38414);
    assert_eq!(p.dst_port(), 8080);
    assert_eq!(p.seq(), 229578721);
    assert_eq!(p.ack(), 0);
    assert_eq!(p.data_offset(), 10);
    assert_eq!(p.header_len(), 40);
    assert_eq!(p.flags(), TcpFlags::SYN);
    assert_eq!(p.flags().to_string(), "S");
    assert_eq!(p.reserved(), 0);
    assert_eq!(p.window(), 64240);
    assert_eq!(p.checksum(), 0x05c3);
    assert_eq!(p.urgent(), 0);
    assert!(p.payload().is_empty());
    let opts: Vec<_> = p.options().map(Result::unwrap).collect();
    assert_eq!(
        opts,
        [
            TcpOption::Mss(1460),
            TcpOption::SackPermitted,
            TcpOption::Timestamps {
                tsval: 267863899,
                tsecr: 0
            },
            TcpOption::Nop,
            TcpOption::WindowScale(10),
        ]
    );
    assert_eq!(p.mss(), Some(1460));
    assert_eq!(p.toa(), None);
    p.verify_checksum_v4(C4, S4).unwrap();
    assert_eq!(p.compute_checksum_v4(C4, S4), 0x05c3);
    assert_eq!(
        p.verify_checksum_v4(S4, C4),
        Ok(()),
        "pseudo-header is symmetric"
    );
    assert_eq!(p.verify_checksum_v4(C4, RS4), Err(Error::BadChecksum));
    cross_check_etherparse(&b, C4, S4);
}

#[test]
fn kat_syn_ack_and_data() {
    let b = syn_ack();
    let p = TcpPacket::parse(&b[..]).unwrap();
    assert_eq!(p.flags(), TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(p.flags().to_string(), "S.");
    assert_eq!(
        (p.seq(), p.ack(), p.window()),
        (1767734057, 229578722, 65160)
    );
    assert_eq!(
        p.find_option(kind::TIMESTAMPS),
        Ok(Some(TcpOption::Timestamps {
            tsval: 2238154087,
            tsecr: 267863899
        }))
    );
    p.verify_checksum_v4(S4, C4).unwrap();
    cross_check_etherparse(&b, S4, C4);

    let b = data();
    let p = TcpPacket::parse(&b[..]).unwrap();
    assert_eq!(p.flags().to_string(), "P.");
    assert_eq!(p.header_len(), 32);
    assert_eq!(p.payload(), GET);
    assert_eq!(p.segment_len(), 50);
    p.verify_checksum_v4(C4, S4).unwrap();
    assert_eq!(p.compute_checksum_v4(C4, S4), 0x6123);
    cross_check_etherparse(&b, C4, S4);
    let r = TcpRepr::parse(&p).unwrap();
    assert_eq!(r.payload_len, 18);
    assert_eq!(r.options.len(), 1);
}

#[test]
fn kat_v6() {
    for (b, sum) in [(syn_v6(), 0xcfd5), (data_v6(), 0x66b9)] {
        let p = TcpPacket::parse(&b[..]).unwrap();
        p.verify_checksum_v6(c6(), s6()).unwrap();
        assert_eq!(p.compute_checksum_v6(c6(), s6()), sum);
        assert_eq!(
            p.verify_checksum_v6(c6(), "fd00:99::3".parse().unwrap()),
            Err(Error::BadChecksum)
        );
        let (h, payload) = etherparse::TcpHeader::from_slice(&b).unwrap();
        assert_eq!(
            h.calc_checksum_ipv6_raw(c6().octets(), s6().octets(), payload)
                .unwrap(),
            sum
        );
    }
    assert_eq!(TcpPacket::parse(&syn_v6()[..]).unwrap().mss(), Some(1440));
}

/// The whole FullNAT client→server rewrite on the captured data segment,
/// done with incremental updates only, gives byte for byte the segment
/// scapy built independently.
#[test]
fn kat_fullnat_with_toa_matches_scapy() {
    let orig = data();
    let mut buf = vec![0u8; orig.len() + 64];
    buf[..orig.len()].copy_from_slice(&orig);
    {
        let mut p = TcpPacket::parse(&mut buf[..orig.len()]).unwrap();
        p.update_checksum_for_addr_change_v4(C4, LIP4);
        p.update_checksum_for_addr_change_v4(S4, RS4);
        p.set_src_port(1025);
        p.set_dst_port(80);
    }
    let toa = Toa {
        port: 38414,
        addr: IpAddr::V4(C4),
    };
    let n = insert_toa(&mut buf, orig.len(), &toa).unwrap();
    assert_eq!(n, orig.len() + 8);
    assert_eq!(&buf[..n], &data_toa()[..]);
    let p = TcpPacket::parse(&buf[..n]).unwrap();
    p.verify_checksum_v4(LIP4, RS4).unwrap();
    assert_eq!(p.toa(), Some(toa));
    assert_eq!(p.payload(), GET);
    cross_check_etherparse(&buf[..n], LIP4, RS4);
}

#[test]
fn kat_mss_clamp_like_dpvs() {
    // DPVS lowers the MSS by the TOA length: 1460 -> 1452.
    let mut b = syn();
    let mut p = TcpPacket::parse(&mut b[..]).unwrap();
    assert_eq!(p.clamp_mss(1452), Some(1460));
    assert_eq!(p.mss(), Some(1452));
    p.verify_checksum_v4(C4, S4).unwrap();
    // Already below: unchanged, value reported.
    let before = p.checksum();
    assert_eq!(p.clamp_mss(1500), Some(1452));
    assert_eq!(p.checksum(), before);
    assert_eq!(&b[20..24], &[2, 4, 0x05, 0xac]);
    // No MSS option.
    let mut d = data();
    let mut p = TcpPacket::parse(&mut d[..]).unwrap();
    assert_eq!(p.clamp_mss(536), None);
}

#[test]
fn mss_at_odd_offset() {
    // NOP then MSS: the MSS value straddles 16-bit words.
    let repr = TcpRepr {
        src_port: 1,
        dst_port: 2,
        seq: 3,
        ack: 4,
        flags: TcpFlags::SYN,
        window: 5,
        urgent: 0,
        options: TcpOptionList::new(),
        payload_len: 3,
    };
    let mut buf = [0u8; 64];
    let n = repr.emit_v4(&mut buf, C4, S4, b"abc").unwrap();
    // Rebuild the option area by hand: nop, mss 1460, nop, nop, nop.
    let mut seg = buf[..n].to_vec();
    seg.splice(20..20, [1, 2, 4, 0x05, 0xb4, 1, 1, 1]);
    seg[12] = 7 << 4;
    let mut p = TcpPacket::parse(&mut seg[..]).unwrap();
    p.fill_checksum_v4(C4, S4);
    assert_eq!(p.clamp_mss(1400), Some(1460));
    p.verify_checksum_v4(C4, S4).unwrap();
    assert_eq!(p.mss(), Some(1400));
}

#[test]
fn kat_timestamps_to_nops() {
    let mut b = data();
    let mut p = TcpPacket::parse(&mut b[..]).unwrap();
    assert!(p.replace_timestamps_with_nops());
    p.verify_checksum_v4(C4, S4).unwrap();
    assert_eq!(p.options_bytes(), &[1u8; 12]);
    assert!(!p.replace_timestamps_with_nops());
    // SYN: the timestamps sit at option offset 6 (odd-free, but after SACK-perm).
    let mut b = syn();
    let mut p = TcpPacket::parse(&mut b[..]).unwrap();
    assert!(p.replace_timestamps_with_nops());
    p.verify_checksum_v4(C4, S4).unwrap();
    assert_eq!(p.mss(), Some(1460));
}

/// A malformed option ends the area for a receiver: the rewrites act on the
/// options before it, TOA insertion refuses.
#[test]
fn malformed_option_tail() {
    // Options: mss 1460, timestamps, then kind 2 with length 0.
    let mut seg = hex("0001 0002 0000 0003 0000 0004 9010 0100 0000 0000
                       0204 05b4 080a 0000 0001 0000 0002 0200");
    {
        let mut p = TcpPacket::parse(&mut seg[..]).unwrap();
        p.fill_checksum_v4(C4, S4);
        assert!(TcpRepr::parse(&p).is_err());
        assert_eq!(p.find_option(kind::SACK), Err(Error::BadOption));
        assert_eq!(p.clamp_mss(1000), Some(1460));
        assert!(p.replace_timestamps_with_nops());
        p.verify_checksum_v4(C4, S4).unwrap();
        assert_eq!(p.mss(), Some(1000));
        assert_eq!(
            &p.options_bytes()[4..16],
            &[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 0]
        );
    }
    let before = seg.clone();
    let mut buf = seg.clone();
    buf.resize(seg.len() + 8, 0);
    let toa = Toa {
        port: 1,
        addr: IpAddr::V4(C4),
    };
    assert_eq!(insert_toa(&mut buf, seg.len(), &toa), Err(Error::BadOption));
    assert_eq!(&buf[..seg.len()], &before[..]);
}

/// Linux takes the last MSS when several are present: clamp them all.
#[test]
fn every_mss_is_clamped() {
    let mut seg = hex("0001 0002 0000 0003 0000 0004 7002 0100 0000 0000
                       0204 05b4 0204 2328");
    let mut p = TcpPacket::parse(&mut seg[..]).unwrap();
    p.fill_checksum_v6(c6(), s6());
    assert_eq!(p.clamp_mss(1400), Some(1460));
    assert_eq!(p.options_bytes(), &[2, 4, 0x05, 0x78, 2, 4, 0x05, 0x78]);
    p.verify_checksum_v6(c6(), s6()).unwrap();
}

#[test]
fn header_field_setters_keep_checksum() {
    let mut b = syn_ack();
    let mut p = TcpPacket::parse(&mut b[..]).unwrap();
    p.set_window(1);
    p.set_urgent(7);
    p.set_flags(TcpFlags::ALL);
    assert_eq!(p.data_offset(), 10, "flags do not touch the data offset");
    p.adjust_seq(0u32.wrapping_sub(1767734057));
    assert_eq!(p.seq(), 0);
    p.adjust_ack(5);
    p.set_ack(u32::MAX);
    p.adjust_ack(1);
    assert_eq!(p.ack(), 0);
    p.verify_checksum_v4(S4, C4).unwrap();
    let v6a: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let mut b = syn_v6();
    let mut p = TcpPacket::parse(&mut b[..]).unwrap();
    p.update_checksum_for_addr_change_v6(c6(), v6a);
    p.set_dst_port(443);
    p.verify_checksum_v6(v6a, s6()).unwrap();
}

#[test]
fn flags_bits_and_display() {
    let all = TcpFlags::from_bits_truncate(0xffff);
    assert_eq!(all, TcpFlags::ALL);
    assert_eq!(all.to_string(), "FSRPUEWe.");
    let mut f = TcpFlags::SYN | TcpFlags::ACK;
    assert!(f.contains(TcpFlags::SYN) && f.intersects(TcpFlags::ACK | TcpFlags::RST));
    f.remove(TcpFlags::SYN);
    f.insert(TcpFlags::FIN);
    assert_eq!(f.bits(), 0x011);
    assert_eq!(format!("{f:?}"), "TcpFlags([F.])");
    // NS/AE is bit 0 of byte 12.
    let mut b = syn();
    b[12] |= 1;
    let p = TcpPacket::parse(&b[..]).unwrap();
    assert!(p.flags().contains(TcpFlags::NS));
    assert_eq!(p.data_offset(), 10);
    let (h, _) = etherparse::TcpHeader::from_slice(&b).unwrap();
    assert!(h.ns);
}

#[test]
fn every_truncation_is_an_error() {
    for seg in [syn(), syn_ack(), data(), data_toa(), syn_v6()] {
        let hl = usize::from(seg[12] >> 4) * 4;
        for n in 0..HEADER_LEN {
            assert_eq!(
                TcpPacket::parse(&seg[..n]).unwrap_err(),
                Error::Truncated,
                "{n}"
            );
        }
        for n in HEADER_LEN..hl {
            assert_eq!(
                TcpPacket::parse(&seg[..n]).unwrap_err(),
                Error::BadHeaderLength,
                "{n}"
            );
        }
        // Shorter payloads parse but no longer verify.
        for n in hl..seg.len() {
            let p = TcpPacket::parse(&seg[..n]).unwrap();
            assert!(
                p.verify_checksum_v4(C4, S4).is_err() && p.verify_checksum_v6(c6(), s6()).is_err()
            );
        }
    }
}

#[test]
fn data_offset_below_five() {
    let mut b = data();
    for off in 0..5u8 {
        b[12] = off << 4;
        assert_eq!(
            TcpPacket::parse(&b[..]).unwrap_err(),
            Error::BadHeaderLength
        );
    }
    b[12] = 15 << 4;
    assert_eq!(
        TcpPacket::parse(&b[..]).unwrap_err(),
        Error::BadHeaderLength
    );
}

#[test]
fn insert_toa_errors_leave_buffer_alone() {
    let toa4 = Toa {
        port: 1,
        addr: IpAddr::V4(C4),
    };
    let toa6 = Toa {
        port: 1,
        addr: IpAddr::V6(c6()),
    };
    // SYN has 40-byte header: +20 = 60 fits, +8 fits.
    let s = syn();
    let mut buf = s.clone();
    buf.resize(s.len() + 20, 0xee);
    let orig = buf.clone();
    // Tailroom lacking by one byte.
    assert_eq!(
        insert_toa(&mut buf[..s.len() + 19], s.len(), &toa6),
        Err(Error::BufferTooSmall)
    );
    assert_eq!(buf, orig);
    assert_eq!(
        insert_toa(&mut buf, s.len() + 21, &toa4),
        Err(Error::Truncated)
    );
    let n = insert_toa(&mut buf, s.len(), &toa6).unwrap();
    assert_eq!(n, 60);
    let p = TcpPacket::parse(&buf[..n]).unwrap();
    assert_eq!(p.header_len(), 60);
    assert_eq!(p.toa(), Some(toa6));
    p.verify_checksum_v4(C4, S4).unwrap();
    // Header now full: no more room for even the v4 form.
    buf.resize(n + 8, 0);
    let full = buf.clone();
    assert_eq!(insert_toa(&mut buf, n, &toa4), Err(Error::BadHeaderLength));
    assert_eq!(buf, full);
    // Bad segment.
    assert_eq!(insert_toa(&mut [0u8; 40], 10, &toa4), Err(Error::Truncated));
}

#[test]
fn insert_toa_after_eol_padding() {
    // Options: mss 1460, EOL, then two padding bytes (one non-zero).
    let mut seg = hex("0001 0002 0000 0003 0000 0004 7012 0100 0000 0000
                       0204 05b4 0000 0000 0009");
    {
        let mut p = TcpPacket::parse(&mut seg[..]).unwrap();
        p.fill_checksum_v6(c6(), s6());
    }
    let len = seg.len();
    seg.resize(len + 8, 0);
    let toa = Toa {
        port: 9,
        addr: IpAddr::V4(C4),
    };
    let n = insert_toa(&mut seg, len, &toa).unwrap();
    let p = TcpPacket::parse(&seg[..n]).unwrap();
    assert_eq!(&p.options_bytes()[4..8], &[1, 1, 1, 1]);
    assert_eq!(p.toa(), Some(toa));
    assert_eq!(p.mss(), Some(1460));
    assert_eq!(p.payload(), &[0x00, 0x09]);
    p.verify_checksum_v6(c6(), s6()).unwrap();
}

#[test]
fn repr_emit_errors() {
    let mut r = TcpRepr {
        src_port: 1,
        dst_port: 2,
        seq: 0,
        ack: 0,
        flags: TcpFlags::ACK,
        window: 0,
        urgent: 0,
        options: TcpOptionList::new(),
        payload_len: 2,
    };
    assert_eq!(r.emit(&mut [0u8; 19]), Err(Error::BufferTooSmall));
    assert_eq!(
        r.emit_v4(&mut [0u8; 21], C4, S4, b"ab"),
        Err(Error::BufferTooSmall)
    );
    assert_eq!(
        r.emit_v4(&mut [0u8; 64], C4, S4, b"a"),
        Err(Error::BadLength)
    );
    // 5 timestamps = 50 bytes > 40.
    for _ in 0..5 {
        r.options
            .push(TcpOption::Timestamps { tsval: 1, tsecr: 2 })
            .unwrap();
    }
    assert_eq!(r.emit(&mut [0u8; 80]), Err(Error::BadOption));
    let mut l = TcpOptionList::new();
    for _ in 0..MAX_REPR_OPTIONS {
        l.push(TcpOption::SackPermitted).unwrap();
    }
    assert_eq!(l.push(TcpOption::SackPermitted), Err(Error::Unsupported));
}

#[test]
fn repr_of_too_many_options_is_unsupported() {
    // 10 SACK-permitted options (20 bytes): well-formed, but more than fit.
    let mut seg = [0u8; 40];
    seg[12] = 10 << 4;
    for i in 0..10 {
        seg[20 + 2 * i] = 4;
        seg[21 + 2 * i] = 2;
    }
    let p = TcpPacket::parse(&seg[..]).unwrap();
    assert_eq!(p.options().count(), 10);
    assert_eq!(TcpRepr::parse(&p).unwrap_err(), Error::Unsupported);
}

// ---- property tests ----

/// An option with owned data, turned into a borrowing [`TcpOption`].
#[derive(Debug, Clone)]
enum Opt {
    Mss(u16),
    Ws(u8),
    SackPerm,
    Sack(Vec<(u32, u32)>),
    Ts(u32, u32),
    Toa4(u16, [u8; 4]),
    Toa6(u16, [u8; 16]),
    Unknown(u8, Vec<u8>),
}

impl Opt {
    fn as_option(&self) -> TcpOption<'_> {
        match self {
            Opt::Mss(v) => TcpOption::Mss(*v),
            Opt::Ws(v) => TcpOption::WindowScale(*v),
            Opt::SackPerm => TcpOption::SackPermitted,
            Opt::Sack(b) => TcpOption::Sack(SackBlocks::new(b).unwrap()),
            Opt::Ts(a, b) => TcpOption::Timestamps {
                tsval: *a,
                tsecr: *b,
            },
            Opt::Toa4(p, a) => TcpOption::Toa(Toa {
                port: *p,
                addr: IpAddr::V4(Ipv4Addr::from(*a)),
            }),
            Opt::Toa6(p, a) => TcpOption::Toa(Toa {
                port: *p,
                addr: IpAddr::V6(Ipv6Addr::from(*a)),
            }),
            Opt::Unknown(k, d) => TcpOption::Unknown { kind: *k, data: d },
        }
    }
}

fn arb_opt() -> impl Strategy<Value = Opt> {
    prop_oneof![
        any::<u16>().prop_map(Opt::Mss),
        any::<u8>().prop_map(Opt::Ws),
        Just(Opt::SackPerm),
        proptest::collection::vec(any::<(u32, u32)>(), 1..=4).prop_map(Opt::Sack),
        any::<(u32, u32)>().prop_map(|(a, b)| Opt::Ts(a, b)),
        any::<(u16, [u8; 4])>().prop_map(|(p, a)| Opt::Toa4(p, a)),
        any::<(u16, [u8; 16])>().prop_map(|(p, a)| Opt::Toa6(p, a)),
        (
            (6u8..=253).prop_filter("known", |k| *k != kind::TIMESTAMPS),
            proptest::collection::vec(any::<u8>(), 0..8)
        )
            .prop_map(|(k, d)| Opt::Unknown(k, d)),
    ]
}

/// Up to 8 options that fit in 40 bytes once padded.
fn arb_opts() -> impl Strategy<Value = Vec<Opt>> {
    proptest::collection::vec(arb_opt(), 0..6).prop_map(|v| {
        let mut out: Vec<Opt> = Vec::new();
        for o in v {
            out.push(o);
            let opts: Vec<_> = out.iter().map(Opt::as_option).collect();
            if padded_len(&opts) > MAX_OPTIONS_LEN {
                out.pop();
            }
        }
        out
    })
}

/// Ports, seq, ack, flags, window, urgent, options, payload.
type Parts = ((u16, u16), u32, u32, TcpFlags, u16, u16, Vec<Opt>, Vec<u8>);

prop_compose! {
    fn arb_repr_parts()(
        ports in any::<(u16, u16)>(),
        seq in any::<u32>(),
        ack in any::<u32>(),
        flags in any::<u16>(),
        window in any::<u16>(),
        urgent in any::<u16>(),
        opts in arb_opts(),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
    ) -> Parts {
        (ports, seq, ack, TcpFlags::from_bits_truncate(flags), window, urgent, opts, payload)
    }
}

fn make_repr<'a>(parts: &'a Parts) -> TcpRepr<'a> {
    let ((sp, dp), seq, ack, flags, window, urgent, opts, payload) = parts;
    let list: Vec<_> = opts.iter().map(Opt::as_option).collect();
    TcpRepr {
        src_port: *sp,
        dst_port: *dp,
        seq: *seq,
        ack: *ack,
        flags: *flags,
        window: *window,
        urgent: *urgent,
        options: TcpOptionList::from_slice(&list).unwrap(),
        payload_len: payload.len(),
    }
}

/// Two checksum values that are the same ones'-complement number.
fn same_sum(a: u16, b: u16) -> bool {
    a == b || (a == 0 && b == 0xffff) || (a == 0xffff && b == 0)
}

#[derive(Debug, Clone)]
enum Op {
    SrcPort(u16),
    DstPort(u16),
    Seq(u32),
    Ack(u32),
    Window(u16),
    Flags(u16),
    Urgent(u16),
    SrcAddr([u8; 16]),
    DstAddr([u8; 16]),
    Mss(u16),
    TsNops,
    Toa(bool, u16, [u8; 16]),
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        any::<u16>().prop_map(Op::SrcPort),
        any::<u16>().prop_map(Op::DstPort),
        any::<u32>().prop_map(Op::Seq),
        any::<u32>().prop_map(Op::Ack),
        any::<u16>().prop_map(Op::Window),
        any::<u16>().prop_map(Op::Flags),
        any::<u16>().prop_map(Op::Urgent),
        any::<[u8; 16]>().prop_map(Op::SrcAddr),
        any::<[u8; 16]>().prop_map(Op::DstAddr),
        any::<u16>().prop_map(Op::Mss),
        Just(Op::TsNops),
        any::<(bool, u16, [u8; 16])>().prop_map(|(v6, p, a)| Op::Toa(v6, p, a)),
    ]
}

/// Addresses of either family, as the rewrites see them.
#[derive(Debug, Clone, Copy)]
enum Addrs {
    V4(Ipv4Addr, Ipv4Addr),
    V6(Ipv6Addr, Ipv6Addr),
}

fn v4_of(a: [u8; 16]) -> Ipv4Addr {
    Ipv4Addr::new(a[0], a[1], a[2], a[3])
}

fn verify(seg: &[u8], addrs: Addrs) -> Result<()> {
    let p = TcpPacket::parse(seg)?;
    match addrs {
        Addrs::V4(s, d) => p.verify_checksum_v4(s, d),
        Addrs::V6(s, d) => p.verify_checksum_v6(s, d),
    }
}

fn full(seg: &[u8], addrs: Addrs) -> u16 {
    let p = TcpPacket::parse(seg).unwrap();
    match addrs {
        Addrs::V4(s, d) => p.compute_checksum_v4(s, d),
        Addrs::V6(s, d) => p.compute_checksum_v6(s, d),
    }
}

proptest! {
    #[test]
    fn repr_round_trip_and_etherparse(parts in arb_repr_parts(), src in any::<[u8; 4]>(), dst in any::<[u8; 4]>()) {
        let repr = make_repr(&parts);
        let payload = &parts.7;
        let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
        let mut buf = vec![0u8; MAX_HEADER_LEN + payload.len()];
        let n = repr.emit_v4(&mut buf, src, dst, payload).unwrap();
        prop_assert_eq!(n, repr.segment_len());
        let p = TcpPacket::parse(&buf[..n]).unwrap();
        prop_assert_eq!(TcpRepr::parse(&p).unwrap(), repr);
        prop_assert_eq!(p.header_len() % 4, 0);
        p.verify_checksum_v4(src, dst).unwrap();
        prop_assert_eq!(p.payload(), &payload[..]);
        cross_check_etherparse(&buf[..n], src, dst);
        // And over IPv6.
        let (s6, d6) = (src.to_ipv6_mapped(), dst.to_ipv6_mapped());
        let n6 = repr.emit_v6(&mut buf, s6, d6, payload).unwrap();
        let p = TcpPacket::parse(&buf[..n6]).unwrap();
        p.verify_checksum_v6(s6, d6).unwrap();
        let (h, pl) = etherparse::TcpHeader::from_slice(&buf[..n6]).unwrap();
        prop_assert_eq!(h.calc_checksum_ipv6_raw(s6.octets(), d6.octets(), pl).unwrap(), p.checksum());
    }

    #[test]
    fn every_truncation_of_emitted_segment_errors(parts in arb_repr_parts()) {
        let repr = make_repr(&parts);
        let mut buf = vec![0u8; MAX_HEADER_LEN + parts.7.len()];
        let n = repr.emit_v4(&mut buf, C4, S4, &parts.7).unwrap();
        let hl = repr.header_len();
        for cut in 0..hl {
            prop_assert!(TcpPacket::parse(&buf[..cut]).is_err());
        }
        // Cutting payload leaves a well-formed (if checksum-failing) segment.
        for cut in hl..n {
            let p = TcpPacket::parse(&buf[..cut]).unwrap();
            prop_assert_eq!(p.payload(), &parts.7[..cut - hl]);
        }
    }

}

proptest! {
    // The rewrites run on every forwarded packet: test them harder.
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// What the balancer runs on every packet: any sequence of in-place
    /// rewrites, with incremental checksum updates only, leaves a segment
    /// whose checksum verifies and equals a full recomputation.
    #[test]
    fn incremental_rewrites_match_full_checksum(
        parts in arb_repr_parts(),
        v6 in any::<bool>(),
        a in any::<([u8; 16], [u8; 16])>(),
        ops in proptest::collection::vec(arb_op(), 1..12),
    ) {
        let repr = make_repr(&parts);
        let payload = &parts.7;
        let mut addrs = if v6 {
            Addrs::V6(Ipv6Addr::from(a.0), Ipv6Addr::from(a.1))
        } else {
            Addrs::V4(v4_of(a.0), v4_of(a.1))
        };
        let mut buf = vec![0u8; MAX_HEADER_LEN + payload.len() + 40];
        let mut len = match addrs {
            Addrs::V4(s, d) => repr.emit_v4(&mut buf, s, d, payload).unwrap(),
            Addrs::V6(s, d) => repr.emit_v6(&mut buf, s, d, payload).unwrap(),
        };
        for op in ops {
            let before = buf.clone();
            if let Op::Toa(tv6, port, addr) = op {
                let toa = Toa {
                    port,
                    addr: if tv6 { IpAddr::V6(Ipv6Addr::from(addr)) } else { IpAddr::V4(v4_of(addr)) },
                };
                match insert_toa(&mut buf, len, &toa) {
                    Ok(n) => {
                        prop_assert_eq!(n, len + toa.wire_len());
                        len = n;
                        let p = TcpPacket::parse(&buf[..len]).unwrap();
                        prop_assert_eq!(p.payload(), &payload[..]);
                        // The TOA is visible to a receiver walking options.
                        let seen = p.options().any(|o| o == Ok(TcpOption::Toa(toa)));
                        prop_assert!(seen);
                    }
                    Err(e) => {
                        prop_assert_eq!(e, Error::BadHeaderLength);
                        prop_assert_eq!(&buf, &before);
                    }
                }
            } else {
                let mut p = TcpPacket::parse(&mut buf[..len]).unwrap();
                match op {
                    Op::SrcPort(v) => p.set_src_port(v),
                    Op::DstPort(v) => p.set_dst_port(v),
                    Op::Seq(d) => p.adjust_seq(d),
                    Op::Ack(d) => p.adjust_ack(d),
                    Op::Window(v) => p.set_window(v),
                    Op::Flags(v) => p.set_flags(TcpFlags::from_bits_truncate(v)),
                    Op::Urgent(v) => p.set_urgent(v),
                    Op::SrcAddr(n) => match &mut addrs {
                        Addrs::V4(s, _) => { p.update_checksum_for_addr_change_v4(*s, v4_of(n)); *s = v4_of(n); }
                        Addrs::V6(s, _) => { p.update_checksum_for_addr_change_v6(*s, Ipv6Addr::from(n)); *s = Ipv6Addr::from(n); }
                    },
                    Op::DstAddr(n) => match &mut addrs {
                        Addrs::V4(_, d) => { p.update_checksum_for_addr_change_v4(*d, v4_of(n)); *d = v4_of(n); }
                        Addrs::V6(_, d) => { p.update_checksum_for_addr_change_v6(*d, Ipv6Addr::from(n)); *d = Ipv6Addr::from(n); }
                    },
                    Op::Mss(m) => {
                        let had = p.mss();
                        prop_assert_eq!(p.clamp_mss(m), had);
                        if let Some(h) = had { prop_assert_eq!(p.mss(), Some(h.min(m))); }
                    }
                    Op::TsNops => {
                        p.replace_timestamps_with_nops();
                        prop_assert_eq!(p.find_option(kind::TIMESTAMPS).unwrap(), None);
                    }
                    Op::Toa(..) => unreachable!(),
                }
            }
            prop_assert_eq!(verify(&buf[..len], addrs), Ok(()));
            let p = TcpPacket::parse(&buf[..len]).unwrap();
            prop_assert!(same_sum(p.checksum(), full(&buf[..len], addrs)),
                "incremental {:#06x} full {:#06x}", p.checksum(), full(&buf[..len], addrs));
        }
        // Tailroom beyond the segment is never written.
        prop_assert!(buf[len..].iter().all(|&b| b == 0));
    }

}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(
        mut data in proptest::collection::vec(any::<u8>(), 0..80),
        extra in 0usize..24,
        mss in any::<u16>(),
    ) {
        if let Ok(p) = TcpPacket::parse(&data[..]) {
            prop_assert!(p.options().count() <= MAX_OPTIONS_LEN);
            let _ = TcpRepr::parse(&p);
            let _ = p.find_option(kind::TOA);
            let _ = p.compute_checksum_v4(C4, S4);
            let _ = format!("{p:?}");
        }
        if let Ok(mut p) = TcpPacket::parse(&mut data[..]) {
            let _ = p.clamp_mss(mss);
            let _ = p.replace_timestamps_with_nops();
            p.adjust_seq(u32::MAX);
        }
        let len = data.len();
        data.resize(len + extra, 0);
        let toa = Toa { port: mss, addr: IpAddr::V6(c6()) };
        let _ = insert_toa(&mut data, len, &toa);
        let _ = insert_toa(&mut data, len + extra + 1, &toa);
    }

    #[test]
    fn option_walk_never_panics(opts in proptest::collection::vec(any::<u8>(), 0..48)) {
        let mut n = 0;
        for o in TcpOptions::new(&opts) {
            n += 1;
            if let Ok(o) = o {
                // Every decoded option re-emits to something that decodes the same.
                let mut buf = [0u8; 64];
                if let Ok(len) = o.emit(&mut buf) {
                    prop_assert_eq!(TcpOptions::new(&buf[..len]).next(), Some(Ok(o)));
                }
            }
        }
        prop_assert!(n <= opts.len());
    }
}
