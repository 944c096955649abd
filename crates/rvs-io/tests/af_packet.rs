//! AF_PACKET end to end: the backend on one end of a veth pair in one
//! namespace, real kernel sockets and `ping` in the peer namespace.

mod common;

use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};

use common::{Netns, TIMEOUT, Veth, mac_str};
use etherparse::PacketBuilder;
use rvs_io::af_packet::{AfPacketConfig, AfPacketIo};
use rvs_io::membership::AllMulticast;
use rvs_io::{Frame, HEADROOM, PacketIo, frame_bytes};

const MAC_A: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x0a];
const MAC_B: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x0b];
const BROADCAST: [u8; 6] = [0xff; 6];
const IP_A: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const IP_B: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);

/// Namespace `a` holds the backend's end (no address: user space owns it);
/// namespace `b` holds the peer with 10.77.0.2/24.
struct Lab {
    veth: Veth,
    // Dropped after the pair.
    a: Netns,
    b: Netns,
}

impl Lab {
    fn new() -> Lab {
        let a = Netns::new("apa");
        let b = Netns::new("apb");
        a.disable_ipv6();
        b.disable_ipv6();
        let veth = Veth::new(&a, MAC_A, &b, MAC_B);
        b.ip(&["addr", "add", "10.77.0.2/24", "dev", &veth.b.name]);
        Lab { veth, a, b }
    }

    fn open(&self, config: AfPacketConfig) -> AfPacketIo {
        let name = self.veth.a.name.clone();
        self.a
            .run(move || AfPacketIo::open_by_name(&name, &config))
            .expect("open AF_PACKET")
    }

    /// The peer sends to 10.77.0.1 without asking (static neighbour).
    fn peer_knows_a(&self) {
        self.b.ip(&[
            "neigh",
            "add",
            "10.77.0.1",
            "lladdr",
            &mac_str(MAC_A),
            "dev",
            &self.veth.b.name,
        ]);
    }

    /// A UDP socket bound in the peer namespace.
    fn peer_udp(&self, port: u16) -> UdpSocket {
        let s = self
            .b
            .run(move || UdpSocket::bind((IP_B, port)))
            .expect("bind in peer");
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        s
    }
}

fn config() -> AfPacketConfig {
    AfPacketConfig {
        block_size: 1 << 16,
        block_count: 4,
        buffers: 256,
        tx_frame_count: 64,
        ..AfPacketConfig::default()
    }
}

/// Copies `bytes` into a fresh buffer of `io`.
fn frame_of(io: &mut impl PacketIo, bytes: &[u8]) -> Frame {
    let mut f = io.alloc().expect("a free buffer");
    let start = usize::from(f.start);
    assert_eq!(start, HEADROOM);
    io.buffer(&f)[start..start + bytes.len()].copy_from_slice(bytes);
    f.len = bytes.len() as u16;
    f
}

/// Receives for at most `within`, handing each frame's bytes to `on` and
/// freeing it; stops early when `on` returns true.
fn receive(io: &mut AfPacketIo, within: Duration, mut on: impl FnMut(&[u8]) -> bool) -> bool {
    let deadline = Instant::now() + within;
    let mut frames = [Frame::default(); 32];
    while Instant::now() < deadline {
        let n = io.rx_burst(&mut frames).unwrap();
        let mut done = false;
        for f in &frames[..n] {
            let bytes = frame_bytes(io, f).to_vec();
            io.free(*f);
            done |= on(&bytes);
        }
        if done {
            return true;
        }
        if n == 0 {
            io.wait(Duration::from_millis(20)).unwrap();
        }
    }
    false
}

fn arp(op: u16, src_mac: [u8; 6], dst_mac: [u8; 6], spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&spa.octets());
    f.extend_from_slice(&if op == 1 { [0; 6] } else { dst_mac });
    f.extend_from_slice(&tpa.octets());
    f
}

fn udp(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(IP_A.octets(), IP_B.octets(), 64)
        .udp(src_port, dst_port);
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

#[test]
fn user_space_answers_arp_and_ping_from_the_peer() {
    let lab = Lab::new();
    let mut io = lab.open(config());
    let total = io.free_buffers();

    // The peer pings the address only our user-space responder owns.
    let b = lab.b.name.clone();
    let ping = std::thread::spawn(move || {
        common::run_with_timeout(
            std::process::Command::new("ip").args([
                "netns",
                "exec",
                &b,
                "ping",
                "-c",
                "2",
                "-i",
                "0.2",
                "-W",
                "4",
                "10.77.0.1",
            ]),
            TIMEOUT,
        )
    });

    let mut arp_requests = 0;
    let mut echo_requests = 0;
    let deadline = Instant::now() + TIMEOUT;
    let mut frames = [Frame::default(); 32];
    while echo_requests < 2 && Instant::now() < deadline {
        let n = io.rx_burst(&mut frames).unwrap();
        if n == 0 {
            io.wait(Duration::from_millis(20)).unwrap();
        }
        let mut replies = Vec::new();
        for f in &frames[..n] {
            let bytes = frame_bytes(&mut io, f).to_vec();
            io.free(*f);
            match &bytes[12..14] {
                [0x08, 0x06] => {
                    // Exactly the kernel's ARP request for our address.
                    assert_eq!(bytes, arp(1, MAC_B, BROADCAST, IP_B, IP_A)[..]);
                    arp_requests += 1;
                    replies.push(arp(2, MAC_A, MAC_B, IP_A, IP_B));
                }
                [0x08, 0x00] => {
                    assert_eq!(&bytes[..6], &MAC_A);
                    assert_eq!(&bytes[6..12], &MAC_B);
                    assert_eq!(&bytes[26..30], &IP_B.octets());
                    assert_eq!(&bytes[30..34], &IP_A.octets());
                    assert_eq!(bytes[23], 1, "ICMP");
                    assert_eq!(bytes[34], 8, "echo request");
                    echo_requests += 1;
                    let (id, seq) = (
                        u16::from_be_bytes([bytes[38], bytes[39]]),
                        u16::from_be_bytes([bytes[40], bytes[41]]),
                    );
                    let ip_len = usize::from(u16::from_be_bytes([bytes[16], bytes[17]]));
                    let data = &bytes[42..14 + ip_len];
                    let mut reply = Vec::new();
                    PacketBuilder::ethernet2(MAC_A, MAC_B)
                        .ipv4(IP_A.octets(), IP_B.octets(), 64)
                        .icmpv4_echo_reply(id, seq)
                        .write(&mut reply, data)
                        .unwrap();
                    replies.push(reply);
                }
                other => panic!("unexpected EtherType {other:02x?}"),
            }
        }
        let out: Vec<Frame> = replies.iter().map(|r| frame_of(&mut io, r)).collect();
        assert_eq!(io.tx_burst(&out).unwrap(), out.len());
    }
    let out = ping.join().unwrap().expect("ping ran");
    assert!(
        out.status.success(),
        "ping from the peer was not answered: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(arp_requests >= 1, "no ARP request seen");
    assert_eq!(echo_requests, 2);
    let s = io.stats();
    assert_eq!(s.tx_frames, (arp_requests + echo_requests) as u64);
    assert!(s.rx_frames >= 3);
    assert_eq!(io.free_buffers(), total, "buffers leaked");
}

#[test]
fn one_burst_of_udp_datagrams_reaches_a_peer_socket() {
    const N: usize = 16;
    let lab = Lab::new();
    let mut io = lab.open(config());
    let total = io.free_buffers();
    let sock = lab.peer_udp(5000);

    let frames: Vec<Frame> = (0..N)
        .map(|i| {
            frame_of(
                &mut io,
                &udp(4000 + i as u16, 5000, format!("rvs-{i}").as_bytes()),
            )
        })
        .collect();
    assert_eq!(io.tx_burst(&frames).unwrap(), N, "one burst takes all");
    assert_eq!(io.free_buffers(), total, "transmitted buffers go back");

    let mut buf = [0u8; 2048];
    for i in 0..N {
        let (len, from) = sock.recv_from(&mut buf).expect("datagram within 5 s");
        assert_eq!(
            &buf[..len],
            format!("rvs-{i}").as_bytes(),
            "in order, exact payload"
        );
        assert_eq!(from, (IP_A, 4000 + i as u16).into());
    }
    let s = io.stats();
    assert_eq!((s.tx_frames, s.tx_ring_full), (N as u64, 0));
    assert_eq!(
        s.tx_bytes,
        frames.iter().map(|f| u64::from(f.len)).sum::<u64>()
    );

    // PACKET_IGNORE_OUTGOING: our own frames never come back.
    receive(&mut io, Duration::from_millis(200), |bytes| {
        assert_ne!(&bytes[6..12], &MAC_A, "own transmission received");
        false
    });
    assert_eq!(io.free_buffers(), total);
}

#[test]
fn a_full_tx_ring_takes_what_fits_and_the_rest_follows() {
    const N: usize = 10;
    let lab = Lab::new();
    // 2 KiB slots, two per page: 4 slots.
    let mut io = lab.open(AfPacketConfig {
        tx_frame_count: 4,
        ..config()
    });
    assert_eq!(io.tx_capacity(), 4);
    let total = io.free_buffers();
    let sock = lab.peer_udp(5001);

    let frames: Vec<Frame> = (0..N)
        .map(|i| frame_of(&mut io, &udp(4000, 5001, &[i as u8; 100])))
        .collect();
    let first = io.tx_burst(&frames).unwrap();
    assert_eq!(first, 4, "a burst cannot overrun the ring");
    assert_eq!(io.stats().tx_ring_full, (N - 4) as u64);
    assert_eq!(
        io.free_buffers(),
        total - (N - 4),
        "the rest stay the caller's"
    );

    let mut sent = first;
    let deadline = Instant::now() + TIMEOUT;
    while sent < N {
        assert!(Instant::now() < deadline, "ring never drained");
        sent += io.tx_burst(&frames[sent..]).unwrap();
    }
    let mut buf = [0u8; 2048];
    for i in 0..N {
        let len = sock.recv(&mut buf).expect("datagram within 5 s");
        assert_eq!(&buf[..len], &[i as u8; 100], "ring order kept across wraps");
    }
    assert_eq!(io.stats().tx_frames, N as u64);
    assert_eq!(io.free_buffers(), total);
}

#[test]
fn fanout_spreads_flows_over_sockets_each_flow_to_one() {
    const FLOWS: u16 = 32;
    let lab = Lab::new();
    let group = Some(std::process::id() as u16);
    let mut w0 = lab.open(AfPacketConfig {
        fanout_group: group,
        ..config()
    });
    let mut w1 = lab.open(AfPacketConfig {
        fanout_group: group,
        ..config()
    });
    lab.peer_knows_a();
    lab.b.run(move || {
        for port in 0..FLOWS {
            let s = UdpSocket::bind((IP_B, 7000 + port)).expect("bind");
            for _ in 0..2 {
                s.send_to(b"fanout", (IP_A, 6000)).expect("send");
            }
        }
    });

    let mut seen: [Vec<u16>; 2] = [Vec::new(), Vec::new()];
    let deadline = Instant::now() + TIMEOUT;
    let mut frames = [Frame::default(); 32];
    while seen[0].len() + seen[1].len() < 2 * FLOWS as usize && Instant::now() < deadline {
        for (k, io) in [&mut w0, &mut w1].into_iter().enumerate() {
            let n = io.rx_burst(&mut frames).unwrap();
            for f in &frames[..n] {
                let bytes = frame_bytes(io, f).to_vec();
                io.free(*f);
                if bytes[12..14] == [0x08, 0x00] && bytes[23] == 17 {
                    assert_eq!(&bytes[36..38], &6000u16.to_be_bytes());
                    seen[k].push(u16::from_be_bytes([bytes[34], bytes[35]]));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        seen[0].len() + seen[1].len(),
        2 * FLOWS as usize,
        "every datagram once"
    );
    assert!(
        !seen[0].is_empty() && !seen[1].is_empty(),
        "both workers got flows"
    );
    for port in &seen[0] {
        assert!(!seen[1].contains(port), "flow {port} split over workers");
    }
    assert_eq!(w0.free_buffers(), config().buffers as usize);
    assert_eq!(w1.free_buffers(), config().buffers as usize);
}

#[test]
fn a_checksum_left_to_offload_arrives_complete() {
    let lab = Lab::new();
    let mut io = lab.open(config());
    // The peer's veth keeps its default checksum offload: its datagrams
    // come with only the pseudo-header sum in the UDP checksum.
    lab.peer_knows_a();
    lab.b.run(move || {
        let s = UdpSocket::bind((IP_B, 7100)).expect("bind");
        s.send_to(b"offloaded checksum", (IP_A, 6100))
            .expect("send");
    });
    let mut got = None;
    receive(&mut io, TIMEOUT, |b| {
        let udp = b.len() > 42 && b[12..14] == [0x08, 0x00] && b[23] == 17;
        if udp {
            got = Some(b.to_vec());
        }
        udp
    });
    let frame = got.expect("the datagram");
    assert!(io.extra_stats().rx_csum_not_ready >= 1, "sent with offload");
    // The checksum is the full one: etherparse verifies it.
    let p = etherparse::SlicedPacket::from_ethernet(&frame).unwrap();
    let Some(etherparse::NetSlice::Ipv4(ip)) = p.net else {
        panic!("not IPv4")
    };
    let Some(etherparse::TransportSlice::Udp(u)) = p.transport else {
        panic!("not UDP")
    };
    let want = u
        .to_header()
        .calc_checksum_ipv4(&ip.header().to_header(), u.payload())
        .unwrap();
    assert_eq!(u.checksum(), want);
    assert_eq!(u.payload(), b"offloaded checksum");
}

#[test]
fn all_multicast_holds_while_the_guard_lives() {
    let lab = Lab::new();
    let name = lab.veth.a.name.clone();
    let flags = |lab: &Lab| {
        let out = lab
            .a
            .exec(&["ip", "-d", "link", "show", &name], TIMEOUT)
            .expect("ip link");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(flags(&lab).contains(" allmulti 0 "), "{}", flags(&lab));
    let n = name.clone();
    let guard = lab
        .a
        .run(move || {
            let c = std::ffi::CString::new(n).unwrap();
            // SAFETY: a valid C string; the index is this namespace's.
            let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
            AllMulticast::enable(idx)
        })
        .expect("all-multicast");
    assert!(flags(&lab).contains(" allmulti 1 "), "{}", flags(&lab));
    drop(guard);
    assert!(flags(&lab).contains(" allmulti 0 "), "{}", flags(&lab));
}

#[test]
fn a_vlan_tag_stripped_by_the_kernel_is_put_back() {
    let lab = Lab::new();
    let mut rx = lab.open(config());
    // A second backend on the peer's end sends the tagged frame.
    let name = lab.veth.b.name.clone();
    let mut tx = lab
        .b
        .run(move || AfPacketIo::open_by_name(&name, &config()))
        .unwrap();
    let mut tagged = Vec::new();
    tagged.extend_from_slice(&MAC_A);
    tagged.extend_from_slice(&MAC_B);
    tagged.extend_from_slice(&[0x81, 0x00, 0x20, 0x2a]); // priority 1, VLAN 42
    tagged.extend_from_slice(&udp(1, 2, b"tagged")[12..]);
    let f = frame_of(&mut tx, &tagged);
    assert_eq!(tx.tx_burst(&[f]).unwrap(), 1);

    let mut got = None;
    receive(&mut rx, TIMEOUT, |bytes| {
        if bytes[6..12] == MAC_B && bytes[12..14] == [0x81, 0x00] {
            got = Some(bytes.to_vec());
            true
        } else {
            false
        }
    });
    assert_eq!(
        got.as_deref(),
        Some(&tagged[..]),
        "tagged frame, exact bytes"
    );
    assert_eq!(rx.free_buffers(), config().buffers as usize);
}

#[test]
fn opening_a_missing_interface_fails() {
    assert!(AfPacketIo::open_by_name("rvs-no-such", &config()).is_err());
    assert!(
        AfPacketIo::open(
            1,
            &AfPacketConfig {
                block_size: 1000,
                ..config()
            }
        )
        .is_err()
    );
}

#[test]
fn small_bursts_resume_mid_block_and_the_ring_wraps() {
    const N: u32 = 300;
    let lab = Lab::new();
    // One-page blocks of ~28 small frames: 300 frames go round the ring of
    // 8 blocks more than once; bursts of 7 stop in the middle of blocks.
    let mut io = lab.open(AfPacketConfig {
        block_size: 4096,
        block_count: 8,
        ..config()
    });
    lab.peer_knows_a();
    let sender = lab.b.spawn(move || {
        let s = UdpSocket::bind((IP_B, 7100)).unwrap();
        for i in 0..N {
            s.send_to(&i.to_be_bytes(), (IP_A, 6001)).unwrap();
            if i % 20 == 19 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    });
    let mut seqs = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    let mut frames = [Frame::default(); 7];
    while seqs.len() < N as usize && Instant::now() < deadline {
        let n = io.rx_burst(&mut frames).unwrap();
        for f in &frames[..n] {
            let bytes = frame_bytes(&mut io, f).to_vec();
            io.free(*f);
            if bytes[12..14] == [0x08, 0x00] && bytes[23] == 17 && bytes[36..38] == [0x17, 0x71] {
                seqs.push(u32::from_be_bytes(bytes[42..46].try_into().unwrap()));
            }
        }
        if n == 0 {
            io.wait(Duration::from_millis(20)).unwrap();
        }
    }
    sender.join().unwrap();
    assert_eq!(io.kernel_drops().unwrap(), 0);
    assert_eq!(
        seqs,
        (0..N).collect::<Vec<_>>(),
        "every frame, once, in order"
    );
    assert_eq!(io.free_buffers(), config().buffers as usize);
    assert!(io.stats().rx_bursts >= u64::from(N) / 7);
}
