//! Golden-packet tests of FullNAT IPv6 → IPv6: client C → VIP V becomes
//! local address L → real server R and back, both addresses and ports
//! rewritten. Expected packets are built by etherparse (an independent
//! builder with its own checksums); every output is also re-parsed by
//! etherparse and its checksum recomputed from scratch.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use etherparse::{
    IpHeaders, IpNumber, Ipv6Extensions, Ipv6FlowLabel, Ipv6Header, Ipv6RawExtHeader,
    PacketBuilder, SlicedPacket, TcpHeader, TcpOptionElement, TransportSlice,
};
use rvs_lb::config::{Config, DestSpec, ForwardMode, ServiceKey, ServiceSpec, ToaMode};
use rvs_lb::conn::{ConnState, TcpState, Time, Timeouts};
use rvs_lb::fwd::Verdict;
use rvs_lb::packet::Packet;
use rvs_lb::sched::SchedulerKind;
use rvs_lb::stats::DropReason;
use rvs_lb::worker::{Worker, WorkerOptions};

const CLIENT: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x10);
const VIP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const LADDR: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x100);
const R1: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 1, 0, 0, 0, 5);
const R2: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 1, 0, 0, 0, 6);
/// The first port of the default local-port range.
const LPORT: u16 = 1025;
const ROUTED: Verdict = Verdict::Forward { next_hop: None };

// ---- independent builders (etherparse) ----

fn ip(src: Ipv6Addr, dst: Ipv6Addr, hop: u8, tc: u8, exts: Ipv6Extensions) -> IpHeaders {
    IpHeaders::Ipv6(
        Ipv6Header {
            traffic_class: tc,
            flow_label: Ipv6FlowLabel::try_new(0x12345).unwrap(),
            payload_length: 0,
            next_header: IpNumber::TCP,
            hop_limit: hop,
            source: src.octets(),
            destination: dst.octets(),
        },
        exts,
    )
}

fn plain(src: Ipv6Addr, dst: Ipv6Addr) -> IpHeaders {
    ip(src, dst, 64, 0, Default::default())
}

/// A TCP segment description.
#[derive(Clone, Copy)]
struct Seg<'a> {
    sport: u16,
    dport: u16,
    seq: u32,
    syn: bool,
    ack: Option<u32>,
    mss: Option<u16>,
    payload: &'a [u8],
}

fn seg(sport: u16, dport: u16) -> Seg<'static> {
    Seg {
        sport,
        dport,
        seq: 1000,
        syn: false,
        ack: None,
        mss: None,
        payload: &[],
    }
}

fn tcp(ip: IpHeaders, s: Seg<'_>) -> Vec<u8> {
    let mut h = TcpHeader::new(s.sport, s.dport, s.seq, 64800);
    h.syn = s.syn;
    if let Some(a) = s.ack {
        h.ack = true;
        h.acknowledgment_number = a;
    }
    if let Some(m) = s.mss {
        h.set_options(&[
            TcpOptionElement::MaximumSegmentSize(m),
            TcpOptionElement::SelectiveAcknowledgementPermitted,
            TcpOptionElement::Noop,
            TcpOptionElement::WindowScale(7),
        ])
        .unwrap();
    }
    let mut v = Vec::new();
    PacketBuilder::ip(ip)
        .tcp_header(h)
        .write(&mut v, s.payload)
        .unwrap();
    v
}

fn udp(src: (Ipv6Addr, u16), dst: (Ipv6Addr, u16), payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ip(plain(src.0, dst.0))
        .udp(src.1, dst.1)
        .write(&mut v, payload)
        .unwrap();
    v
}

fn echo(src: Ipv6Addr, dst: Ipv6Addr, request: bool, id: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ip(plain(src, dst));
    let b = if request {
        b.icmpv6_echo_request(id, 3)
    } else {
        b.icmpv6_echo_reply(id, 3)
    };
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

/// Re-parses `pkt` with etherparse and recomputes its layer-4 checksum.
fn assert_checksum(pkt: &[u8]) {
    let s = SlicedPacket::from_ip(pkt).expect("etherparse parses the packet");
    let Some(etherparse::NetSlice::Ipv6(i)) = &s.net else {
        panic!("not IPv6");
    };
    let h = i.header().to_header();
    match s.transport.expect("a transport header") {
        TransportSlice::Tcp(t) => {
            let want = t.to_header().calc_checksum_ipv6(&h, t.payload()).unwrap();
            assert_eq!(t.checksum(), want, "TCP checksum");
        }
        TransportSlice::Udp(u) => {
            let want = u.to_header().calc_checksum_ipv6(&h, u.payload()).unwrap();
            assert_eq!(u.checksum(), want, "UDP checksum");
        }
        TransportSlice::Icmpv6(c) => {
            let want = c
                .icmp_type()
                .calc_checksum(h.source, h.destination, c.payload())
                .unwrap();
            assert_eq!(c.checksum(), want, "ICMPv6 checksum");
        }
        other => panic!("unexpected transport {other:?}"),
    }
}

// ---- the worker under test ----

fn spec(key: ServiceKey, port: u16) -> ServiceSpec {
    let mut spec = ServiceSpec::new(key, SchedulerKind::Rr);
    spec.toa = ToaMode::Off;
    spec.laddrs = vec![IpAddr::V6(LADDR)];
    spec.dests = vec![
        DestSpec::new(IpAddr::V6(R1), port, ForwardMode::FullNat),
        DestSpec::new(IpAddr::V6(R2), port, ForwardMode::FullNat),
    ];
    spec
}

fn worker() -> Worker {
    let echo = ServiceKey::Addr {
        proto: 58,
        addr: VIP,
        port: 0,
    };
    let config = Config::build(
        vec![
            spec(ServiceKey::tcp(IpAddr::V6(VIP), 443), 8443),
            spec(ServiceKey::udp(IpAddr::V6(VIP), 53), 5353),
            spec(echo, 0),
        ],
        Timeouts::default(),
    )
    .unwrap();
    let mut w = Worker::new(WorkerOptions {
        conn_capacity: 64,
        ..WorkerOptions::default()
    });
    w.apply(Arc::new(config), false);
    w
}

fn run(w: &mut Worker, pkt: &[u8]) -> (Verdict, Vec<u8>) {
    let mut buf = vec![0u8; 128 + pkt.len() + 128];
    buf[128..128 + pkt.len()].copy_from_slice(pkt);
    let mut p = Packet::new(&mut buf, 128, pkt.len()).unwrap();
    let v = w.process(&mut p, 0, Time::from_secs(1));
    assert_eq!(
        p.start(),
        128,
        "a same-family rewrite does not move the packet"
    );
    (v, p.data().to_vec())
}

// ---- TCP ----

#[test]
fn tcp_handshake_and_data_both_directions_exact_bytes() {
    let mut w = worker();
    // Hop limit, traffic class and flow label are carried through as they
    // are (FullNAT rewrites addresses and ports only).
    let syn = Seg {
        syn: true,
        mss: Some(1440),
        seq: 0xfeed_0001,
        ..seg(40000, 443)
    };
    let input = tcp(ip(CLIENT, VIP, 57, 0xb8, Default::default()), syn);
    let (v, out) = run(&mut w, &input);
    assert_eq!(v, ROUTED);
    let expected = tcp(
        ip(LADDR, R1, 57, 0xb8, Default::default()),
        Seg {
            sport: LPORT,
            dport: 8443,
            ..syn
        },
    );
    assert_eq!(out, expected, "C:40000 → V:443 becomes L:1025 → R1:8443");
    assert_checksum(&out);

    let synack = Seg {
        syn: true,
        ack: Some(0xfeed_0002),
        mss: Some(1440),
        seq: 77,
        ..seg(8443, LPORT)
    };
    let (v, out) = run(&mut w, &tcp(plain(R1, LADDR), synack));
    assert_eq!(v, ROUTED);
    assert_eq!(
        out,
        tcp(
            plain(VIP, CLIENT),
            Seg {
                sport: 443,
                dport: 40000,
                ..synack
            }
        ),
        "R1:8443 → L:1025 becomes V:443 → C:40000, MSS untouched"
    );
    assert_checksum(&out);

    let hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 odd";
    let data = Seg {
        seq: 0xfeed_0002,
        ack: Some(78),
        payload: hello,
        ..seg(40000, 443)
    };
    let (v, out) = run(&mut w, &tcp(plain(CLIENT, VIP), data));
    assert_eq!(v, ROUTED);
    assert_eq!(
        out,
        tcp(
            plain(LADDR, R1),
            Seg {
                sport: LPORT,
                dport: 8443,
                ..data
            }
        )
    );
    assert_checksum(&out);

    let body = vec![0x5au8; 1201];
    let resp = Seg {
        seq: 78,
        ack: Some(0xfeed_0002 + hello.len() as u32),
        payload: &body,
        ..seg(8443, LPORT)
    };
    let input = tcp(plain(R1, LADDR), resp);
    let (v, out) = run(&mut w, &input);
    assert_eq!(v, ROUTED);
    assert_eq!(
        out,
        tcp(
            plain(VIP, CLIENT),
            Seg {
                sport: 443,
                dport: 40000,
                ..resp
            }
        )
    );
    assert_checksum(&out);

    let (_, conn) = w.conns().iter().next().unwrap();
    assert_eq!(conn.data.state, ConnState::Tcp(TcpState::Established));
    let s = &w.services()[0];
    assert_eq!(s.stats.conns, 1);
    assert_eq!((s.stats.in_pkts, s.stats.out_pkts), (2, 2));
    assert_eq!(
        s.dest_stats[0].out_bytes,
        (40 + 20 + 12 + 40 + 20 + 1201) as u64
    );

    // The next client goes to R2 (rr) with the next local port.
    let syn2 = Seg {
        syn: true,
        ..seg(40001, 443)
    };
    let (_, out) = run(&mut w, &tcp(plain(CLIENT, VIP), syn2));
    assert_eq!(
        out,
        tcp(
            plain(LADDR, R2),
            Seg {
                sport: LPORT + 1,
                dport: 8443,
                ..syn2
            }
        )
    );
}

#[test]
fn extension_headers_stay_and_the_rewrite_reaches_the_tcp_header_behind_them() {
    let mut w = worker();
    let exts = || Ipv6Extensions {
        destination_options: Some(
            Ipv6RawExtHeader::new_raw(IpNumber::TCP, &[1, 4, 0, 0, 0, 0]).unwrap(),
        ),
        ..Default::default()
    };
    let syn = Seg {
        syn: true,
        ..seg(40000, 443)
    };
    let (v, out) = run(&mut w, &tcp(ip(CLIENT, VIP, 64, 0, exts()), syn));
    assert_eq!(v, ROUTED);
    assert_eq!(
        out,
        tcp(
            ip(LADDR, R1, 64, 0, exts()),
            Seg {
                sport: LPORT,
                dport: 8443,
                ..syn
            }
        )
    );
    assert_checksum(&out);
}

#[test]
fn segment_without_connection_is_dropped() {
    let mut w = worker();
    let ack = Seg {
        ack: Some(1),
        ..seg(40000, 443)
    };
    let (v, _) = run(&mut w, &tcp(plain(CLIENT, VIP), ack));
    assert_eq!(v, Verdict::Drop(DropReason::NoConnection));
    assert_eq!(w.drops().get(DropReason::NoConnection), 1);
    // Another port of the VIP is no service: passed to the stack.
    let syn = Seg {
        syn: true,
        ..seg(40000, 444)
    };
    assert_eq!(run(&mut w, &tcp(plain(CLIENT, VIP), syn)).0, Verdict::Pass);
}

// ---- UDP ----

#[test]
fn udp_both_directions_exact_bytes() {
    let mut w = worker();
    let (v, out) = run(&mut w, &udp((CLIENT, 5000), (VIP, 53), b"query, odd"));
    assert_eq!(v, ROUTED);
    assert_eq!(out, udp((LADDR, LPORT), (R1, 5353), b"query, odd"));
    assert_checksum(&out);
    let (v, out) = run(&mut w, &udp((R1, 5353), (LADDR, LPORT), b"answer"));
    assert_eq!(v, ROUTED);
    assert_eq!(out, udp((VIP, 53), (CLIENT, 5000), b"answer"));
    assert_checksum(&out);
    // A second datagram of the flow: same connection, same server.
    let (_, out) = run(&mut w, &udp((CLIENT, 5000), (VIP, 53), b"again"));
    assert_eq!(out, udp((LADDR, LPORT), (R1, 5353), b"again"));
    assert_eq!(w.conns().len(), 1);
    let (_, conn) = w.conns().iter().next().unwrap();
    assert_eq!(conn.data.state, ConnState::Udp);
}

// ---- ICMPv6 echo ----

#[test]
fn icmpv6_echo_both_directions_exact_bytes() {
    let mut w = worker();
    let (v, out) = run(&mut w, &echo(CLIENT, VIP, true, 0x0bad, b"ping!"));
    assert_eq!(v, ROUTED);
    // The identifier becomes the local port (it is the flow's "port").
    assert_eq!(out, echo(LADDR, R1, true, LPORT, b"ping!"));
    assert_checksum(&out);
    let (v, out) = run(&mut w, &echo(R1, LADDR, false, LPORT, b"ping!"));
    assert_eq!(v, ROUTED);
    assert_eq!(out, echo(VIP, CLIENT, false, 0x0bad, b"ping!"));
    assert_checksum(&out);
    let (_, conn) = w.conns().iter().next().unwrap();
    assert_eq!(conn.data.state, ConnState::Icmp);
    // A reply nobody asked for matches no connection.
    let (v, _) = run(&mut w, &echo(CLIENT, VIP, false, 9, b"?"));
    assert_eq!(v, Verdict::Drop(DropReason::NoConnection));
}
