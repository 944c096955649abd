//! Known answers captured from Debian's keepalived 2.2.7 (tcpdump -xx
//! on a veth in a namespace, IP header removed), round trips, and
//! refusals.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn group4() -> Path {
    Path {
        src: v4([192, 168, 77, 1]),
        dst: v4([224, 0, 0, 18]),
    }
}

fn group6() -> Path {
    Path {
        src: "fe80::ff:fe00:1".parse().expect("addr"),
        dst: IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12)),
    }
}

/// `192.168.77.1 > 224.0.0.18: VRRPv2, Advertisement, vrid 51, prio 150,
/// authtype simple, intvl 1s, length 24`: two addresses
/// (192.168.77.100, .101), password "secret12", checksum 0xbe2f.
const KA_V2: &str = "2133 9602 0101 be2f c0a8 4d64 c0a8 4d65 7365 6372 6574 3132";
/// `192.168.77.1 > 224.0.0.18: VRRPv3, Advertisement, vrid 52, prio 200,
/// intvl 100cs, length 12`: 192.168.77.100, checksum 0x0a20 (with the
/// IPv4 pseudo-header).
const KA_V3: &str = "3134 c801 0064 0a20 c0a8 4d64";
/// `fe80::ff:fe00:1 > ff02::12: VRRPv3, Advertisement, vrid 53, prio
/// 100, intvl 100cs, length 24`: fd00:77::100, checksum 0x6ece (with the
/// IPv6 pseudo-header; keepalived lets the kernel fill it in).
const KA_V3_6: &str = "3135 6401 0064 6ece fd00 0077 0000 0000 0000 0000 0000 0100";

fn ka_v2() -> Advert {
    Advert {
        version: Version::V2,
        vrid: 51,
        priority: 150,
        interval_cs: 100,
        addrs: vec![v4([192, 168, 77, 100]), v4([192, 168, 77, 101])],
        auth_type: AUTH_PASS,
        auth_data: password_bytes(b"secret12"),
    }
}

fn ka_v3() -> Advert {
    Advert {
        version: Version::V3,
        vrid: 52,
        priority: 200,
        interval_cs: 100,
        addrs: vec![v4([192, 168, 77, 100])],
        auth_type: AUTH_NONE,
        auth_data: [0; 8],
    }
}

fn ka_v3_6() -> Advert {
    Advert {
        version: Version::V3,
        vrid: 53,
        priority: 100,
        interval_cs: 100,
        addrs: vec!["fd00:77::100".parse().expect("addr")],
        auth_type: AUTH_NONE,
        auth_data: [0; 8],
    }
}

#[test]
fn keepalived_known_answers_decode() {
    assert_eq!(decode(&hex(KA_V2), &group4()), Ok(ka_v2()));
    assert_eq!(decode(&hex(KA_V3), &group4()), Ok(ka_v3()));
    assert_eq!(decode(&hex(KA_V3_6), &group6()), Ok(ka_v3_6()));
}

#[test]
fn encode_gives_keepalived_bytes() {
    assert_eq!(ka_v2().encode(&group4()), hex(KA_V2));
    assert_eq!(ka_v3().encode(&group4()), hex(KA_V3));
    assert_eq!(ka_v3_6().encode(&group6()), hex(KA_V3_6));
}

#[test]
fn v3_checksum_covers_the_addresses() {
    // The same v3 message to a unicast peer has another checksum; the
    // group's checksum does not verify there.
    let peer = Path {
        src: v4([192, 168, 77, 1]),
        dst: v4([192, 168, 77, 2]),
    };
    let b = hex(KA_V3);
    assert_eq!(decode(&b, &peer), Err(DecodeError::Checksum));
    let unicast = ka_v3().encode(&peer);
    assert_ne!(unicast, b);
    assert_eq!(decode(&unicast, &peer), Ok(ka_v3()));
    // v2's does not: the message alone.
    assert_eq!(decode(&hex(KA_V2), &peer), Ok(ka_v2()));
}

#[test]
fn every_flipped_bit_is_refused() {
    for (text, path) in [(KA_V2, group4()), (KA_V3, group4()), (KA_V3_6, group6())] {
        let good = hex(text);
        for i in 0..good.len() * 8 {
            let mut b = good.clone();
            b[i / 8] ^= 1 << (i % 8);
            assert!(
                decode(&b, &path).is_err(),
                "{text}: bit {i} flipped accepted"
            );
        }
    }
}

#[test]
fn checksum_rejection() {
    let mut b = hex(KA_V3);
    b[2] = 201; // priority changed, checksum kept
    assert_eq!(decode(&b, &group4()), Err(DecodeError::Checksum));
}

#[test]
fn every_truncation_and_extension_is_refused() {
    for (text, path) in [(KA_V2, group4()), (KA_V3, group4()), (KA_V3_6, group6())] {
        let b = hex(text);
        for n in 0..b.len() {
            assert_eq!(
                decode(&b[..n], &path),
                Err(DecodeError::Short),
                "{text}: {n} bytes"
            );
        }
        let mut long = b.clone();
        long.push(0);
        assert_eq!(decode(&long, &path), Err(DecodeError::Long));
    }
}

#[test]
fn wrong_version_type_and_family() {
    let mut b = hex(KA_V3);
    b[0] = 0x41;
    assert_eq!(decode(&b, &group4()), Err(DecodeError::Version(4)));
    b[0] = 0x32;
    assert_eq!(decode(&b, &group4()), Err(DecodeError::Type(2)));
    // v2 over IPv6 does not exist.
    let mut v2 = ka_v2();
    v2.addrs = vec!["fd00::1".parse().expect("addr")];
    let bytes = ka_v2().encode(&group4());
    assert_eq!(decode(&bytes, &group6()), Err(DecodeError::Family));
    let mixed = Path {
        src: group4().src,
        dst: group6().dst,
    };
    assert_eq!(decode(&bytes, &mixed), Err(DecodeError::Family));
}

#[test]
fn intervals() {
    // v2 carries whole seconds, v3 centiseconds up to 4095.
    let mut a = ka_v2();
    a.interval_cs = 300;
    assert_eq!(
        decode(&a.encode(&group4()), &group4()).map(|d| d.interval_cs),
        Ok(300)
    );
    let mut a = ka_v3();
    a.interval_cs = 35;
    let d = decode(&a.encode(&group4()), &group4()).expect("decode");
    assert_eq!(d.interval(), std::time::Duration::from_millis(350));
    a.interval_cs = 5000;
    let d = decode(&a.encode(&group4()), &group4()).expect("decode");
    assert_eq!(d.interval_cs, 4095);
}

#[test]
fn password_is_truncated_and_padded() {
    assert_eq!(password_bytes(b"abc"), *b"abc\0\0\0\0\0");
    assert_eq!(password_bytes(b"0123456789"), *b"01234567");
}

fn arb_advert() -> impl Strategy<Value = (Advert, Path)> {
    (
        any::<bool>(),
        any::<u8>(),
        any::<u8>(),
        1u16..4096,
        prop::collection::vec(any::<[u8; 16]>(), 0..20),
        any::<[u8; 8]>(),
    )
        .prop_map(|(v3, vrid, priority, cs, raw, pass)| {
            let (version, path) = if v3 && raw.len() % 2 == 0 {
                (Version::V3, group6())
            } else if v3 {
                (Version::V3, group4())
            } else {
                (Version::V2, group4())
            };
            let v6 = path.src.is_ipv6();
            let addrs = raw
                .iter()
                .map(|a| {
                    if v6 {
                        IpAddr::from(*a)
                    } else {
                        v4([a[0], a[1], a[2], a[3]])
                    }
                })
                .collect();
            let (interval_cs, auth_type, auth_data) = match version {
                Version::V2 => ((cs % 255 + 1) * 100, AUTH_PASS, pass),
                Version::V3 => (cs, AUTH_NONE, [0; 8]),
            };
            (
                Advert {
                    version,
                    vrid,
                    priority,
                    interval_cs,
                    addrs,
                    auth_type,
                    auth_data,
                },
                path,
            )
        })
}

proptest! {
    #[test]
    fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400), v6 in any::<bool>()) {
        let path = if v6 { group6() } else { group4() };
        let _ = decode(&bytes, &path);
    }

    #[test]
    fn round_trip((advert, path) in arb_advert()) {
        let bytes = advert.encode(&path);
        prop_assert_eq!(decode(&bytes, &path), Ok(advert));
    }
}
