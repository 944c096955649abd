//! TAP end to end: the device in a namespace with an address on the kernel
//! side; the worker is a host on the other side of the TAP.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::{Netns, TIMEOUT};
use etherparse::PacketBuilder;
use rvs_io::tap::{TapConfig, TapIo};
use rvs_io::{Frame, HEADROOM, PacketIo, frame_bytes};

/// The kernel's side of the TAP.
const KERNEL_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x01, 0x01];
const KERNEL_IP: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 1);
/// The worker's side.
const OUR_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x01, 0x02];
const OUR_IP: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 2);

fn create(ns: &Netns) -> TapIo {
    let config = TapConfig {
        name: common::unique("tp"),
        mac: Some(KERNEL_MAC),
        mtu: Some(1400),
        buffers: 64,
        buffer_size: 2048,
    };
    ns.run(move || TapIo::create(&config)).expect("create TAP")
}

fn frame_of(io: &mut impl PacketIo, bytes: &[u8]) -> Frame {
    let mut f = io.alloc().expect("a free buffer");
    let start = usize::from(f.start);
    assert_eq!(start, HEADROOM);
    io.buffer(&f)[start..start + bytes.len()].copy_from_slice(bytes);
    f.len = bytes.len() as u16;
    f
}

#[test]
fn the_kernel_answers_a_ping_injected_through_the_tap() {
    let ns = Netns::new("tp");
    ns.disable_ipv6();
    let mut tap = create(&ns);
    let name = tap.name().to_string();
    assert!(name.starts_with("tp"), "{name}");
    assert_eq!(tap.mac().unwrap(), KERNEL_MAC);
    let link = ns.exec(&["ip", "link", "show", &name], TIMEOUT).unwrap();
    let link = String::from_utf8_lossy(&link.stdout);
    assert!(link.contains("mtu 1400") && link.contains(",UP"), "{link}");
    ns.ip(&["addr", "add", "10.78.0.1/24", "dev", &name]);
    let total = tap.free_buffers();

    // An echo request from "the wire" to the kernel's address.
    let payload = b"rvs exception path";
    let mut request = Vec::new();
    PacketBuilder::ethernet2(OUR_MAC, KERNEL_MAC)
        .ipv4(OUR_IP.octets(), KERNEL_IP.octets(), 64)
        .icmpv4_echo_request(0x1234, 7)
        .write(&mut request, payload)
        .unwrap();
    let f = frame_of(&mut tap, &request);
    assert_eq!(tap.tx_burst(&[f]).unwrap(), 1);

    // The kernel resolves our address first (we answer), then replies.
    let mut arp_requests = 0;
    let mut reply = None;
    let deadline = Instant::now() + TIMEOUT;
    let mut frames = [Frame::default(); 16];
    while reply.is_none() && Instant::now() < deadline {
        let n = tap.rx_burst(&mut frames).unwrap();
        if n == 0 {
            tap.wait(Duration::from_millis(50)).unwrap();
        }
        for f in &frames[..n] {
            let bytes = frame_bytes(&mut tap, f).to_vec();
            tap.free(*f);
            match &bytes[12..14] {
                [0x08, 0x06] => {
                    assert_eq!(&bytes[6..12], &KERNEL_MAC);
                    assert_eq!(&bytes[20..22], &[0, 1], "request");
                    assert_eq!(&bytes[28..32], &KERNEL_IP.octets());
                    assert_eq!(&bytes[38..42], &OUR_IP.octets());
                    arp_requests += 1;
                    let mut arp = Vec::new();
                    arp.extend_from_slice(&KERNEL_MAC);
                    arp.extend_from_slice(&OUR_MAC);
                    arp.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 2]);
                    arp.extend_from_slice(&OUR_MAC);
                    arp.extend_from_slice(&OUR_IP.octets());
                    arp.extend_from_slice(&KERNEL_MAC);
                    arp.extend_from_slice(&KERNEL_IP.octets());
                    let a = frame_of(&mut tap, &arp);
                    assert_eq!(tap.tx_burst(&[a]).unwrap(), 1);
                }
                [0x08, 0x00] => reply = Some(bytes),
                other => panic!("unexpected EtherType {other:02x?}"),
            }
        }
    }
    let reply = reply.expect("the kernel's echo reply within 5 s");
    assert_eq!(arp_requests, 1);
    let mut expected = Vec::new();
    PacketBuilder::ethernet2(KERNEL_MAC, OUR_MAC)
        .ipv4(KERNEL_IP.octets(), OUR_IP.octets(), 64)
        .icmpv4_echo_reply(0x1234, 7)
        .write(&mut expected, payload)
        .unwrap();
    // Everything but the IP identification and header checksum, which the
    // kernel chooses.
    assert_eq!(reply.len(), expected.len());
    assert_eq!(&reply[..18], &expected[..18]);
    assert_eq!(&reply[22..24], &expected[22..24], "TTL and protocol");
    assert_eq!(
        &reply[26..],
        &expected[26..],
        "addresses and ICMP echo reply"
    );

    let s = tap.stats();
    assert_eq!((s.tx_frames, s.rx_frames), (2, 2));
    assert_eq!(tap.free_buffers(), total, "buffers leaked");

    // The interface lives as long as the backend.
    drop(tap);
    let gone = ns.exec(&["ip", "link", "show", &name], TIMEOUT).unwrap();
    assert!(!gone.status.success(), "TAP {name} outlived its backend");
}

#[test]
fn frames_the_kernel_sends_out_of_the_tap_are_received() {
    let ns = Netns::new("tq");
    ns.disable_ipv6();
    let mut tap = create(&ns);
    let name = tap.name().to_string();
    ns.ip(&["addr", "add", "10.78.0.1/24", "dev", &name]);
    ns.ip(&[
        "neigh",
        "add",
        "10.78.0.2",
        "lladdr",
        &common::mac_str(OUR_MAC),
        "dev",
        &name,
    ]);
    // A UDP datagram from a kernel socket to the worker's address.
    ns.run(|| {
        let s = std::net::UdpSocket::bind((KERNEL_IP, 9000)).unwrap();
        s.send_to(b"to the wire", (OUR_IP, 9001)).unwrap();
    });
    let mut frames = [Frame::default(); 16];
    let deadline = Instant::now() + TIMEOUT;
    let mut got = None;
    while got.is_none() && Instant::now() < deadline {
        tap.wait(Duration::from_millis(50)).unwrap();
        let n = tap.rx_burst(&mut frames).unwrap();
        for f in &frames[..n] {
            let bytes = frame_bytes(&mut tap, f).to_vec();
            tap.free(*f);
            if bytes[12..14] == [0x08, 0x00] && bytes[23] == 17 {
                got = Some(bytes);
            }
        }
    }
    let bytes = got.expect("the datagram within 5 s");
    assert_eq!(&bytes[..6], &OUR_MAC);
    assert_eq!(&bytes[6..12], &KERNEL_MAC);
    assert_eq!(&bytes[26..30], &KERNEL_IP.octets());
    assert_eq!(&bytes[30..34], &OUR_IP.octets());
    assert_eq!(
        &bytes[34..38],
        &[0x23, 0x28, 0x23, 0x29],
        "ports 9000 → 9001"
    );
    assert_eq!(&bytes[42..], b"to the wire");
    assert_eq!(tap.free_buffers(), 64);
    // Nothing more is waiting: rx_burst does not block.
    let t = Instant::now();
    assert_eq!(tap.rx_burst(&mut frames).unwrap(), 0);
    assert!(t.elapsed() < Duration::from_millis(100));
}
