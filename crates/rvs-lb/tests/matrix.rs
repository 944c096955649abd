//! The golden-packet matrix: forwarding mode × address family × protocol.
//!
//! # Which cells exist (from the code)
//! - **Modes and families.** FullNAT, NAT, DR, TUN (IPIP and GRE) and SNAT
//!   work within one family, IPv4 or IPv6; only FullNAT crosses families,
//!   IPv6 VIP → IPv4 real server (NAT64): `DestSpec::validate` refuses a
//!   real server of the other family for NAT, DR, TUN and SNAT.
//! - **Protocols.** Every mode forwards TCP, UDP and ICMP/ICMPv6 echo: a
//!   service with protocol ICMP (ICMPv6) and port 0 balances echo requests,
//!   the identifier standing in for the port (`classify.rs`: a request
//!   carries it as its source port, a reply as its destination port). What
//!   the identifier becomes follows from `rewrite.rs` and
//!   `Worker::new_connection`: FullNAT and SNAT replace it with the local
//!   port (so replies find the connection), NAT keeps the client's, DR and
//!   TUN leave the packet alone.
//! - **Directions.** FullNAT, NAT (and NAT64) and SNAT see the server's
//!   replies and rewrite them back; DR and TUN see only the client's
//!   packets (the server answers the client directly), so their rows check
//!   the client → server direction only.
//!
//! # Where each cell is tested
//! | mode | family | TCP | UDP | echo |
//! |---|---|---|---|---|
//! | FullNAT | v4 | `pipeline.rs` | `pipeline.rs` | here |
//! | FullNAT | v6 | `fullnat_v6.rs` | `fullnat_v6.rs` | `fullnat_v6.rs` |
//! | NAT64 (FullNAT) | v6 → v4 | `nat64.rs` | `nat64.rs` | `nat64.rs` |
//! | NAT | v4 | `pipeline.rs` (handshake), here (data) | here | here |
//! | NAT | v6 | here | here | here |
//! | DR | v4 | `pipeline.rs` | here | here |
//! | DR | v6 | here | here | here |
//! | TUN IPIP | v4, v6 | `tun.rs` | here | here |
//! | TUN GRE | v4, v6 | `tun.rs` | here | here |
//! | SNAT | v4 | `snat_and_config.rs`, here (exact sequence) | here | here |
//! | SNAT | v6 | here | here | here |
//!
//! The TOA/UOA extras of FullNAT are in `fullnat_options.rs`, ICMP errors
//! in `icmp_errors.rs`; they are off here.
//!
//! # How a row is checked
//! Each row runs three packets through a fresh worker: the client's first
//! packet (TCP SYN, a UDP datagram, an echo request), the server's answer
//! (SYN-ACK, a datagram, an echo reply) where the mode sees replies, and
//! the client's second packet (ACK with data, a datagram, the next echo
//! request), which takes the established path. The row states only the
//! endpoints; the expected packets are built by etherparse with the same
//! layer-4 content and IP header fields (TTL, identification, DF, DSCP/ECN,
//! traffic class, flow label), never by the code under test, and every
//! output must equal them byte for byte. Every output's checksums are then
//! verified twice: recomputed by etherparse, and summed by the RFC 1071
//! reference in this file. Finally the row checks the connection's state
//! name, the service's packet and byte counters and that nothing was
//! dropped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use etherparse::{
    IpDscp, IpEcn, IpHeaders, IpNumber, Ipv4Header, Ipv6FlowLabel, Ipv6Header, NetSlice,
    PacketBuilder, SlicedPacket, TcpHeader, TransportSlice,
};
use rvs_lb::config::{Config, DestSpec, ForwardMode, ServiceKey, ServiceSpec, ToaMode, TunnelKind};
use rvs_lb::conn::{Time, Timeouts};
use rvs_lb::fwd::Verdict;
use rvs_lb::packet::Packet;
use rvs_lb::sched::SchedulerKind;
use rvs_lb::worker::{Worker, WorkerOptions};

type Ep = (IpAddr, u16);

const CLIENT4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const VIP4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const LADDR4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const R4: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 5);
/// SNAT: an inside host, the outside server it reaches, the public address.
const INSIDE4: Ipv4Addr = Ipv4Addr::new(192, 168, 100, 5);
const OUTSIDE4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 77);
const WAN4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);

const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x10);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1);
const LADDR6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x100);
const R6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 1, 0, 0, 0, 5);
const INSIDE6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xaa, 0, 0, 0, 0, 0, 5);
const OUTSIDE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x77, 0, 0, 0, 0, 0x77);
const WAN6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 1);

/// Client ports (TCP, UDP) and echo identifier.
const CP: u16 = 40000;
const ID: u16 = 0x0b0e;
/// The first port of the default local-port range.
const LP: u16 = 1025;

/// IP header fields of every packet built here, so that the test sees
/// whether a mode keeps (or, TUN, copies) them.
const TTL: u8 = 61;
const IDENT: u16 = 0x1c46;
const TOS: u8 = 0x2a; // DSCP 10, ECN 2
const FLOW: u32 = 0x5_4321;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    Tcp,
    Udp,
    Echo,
}

/// One cell of the matrix.
struct Row {
    name: &'static str,
    mode: ForwardMode,
    proto: Proto,
    /// The client, and the VIP endpoint it talks to (SNAT: the outside
    /// server).
    client: Ep,
    vip: Ep,
    /// The client's packets as the real server receives them: source and
    /// destination (inside the tunnel for TUN).
    at_server: (Ep, Ep),
    /// The verdict's next hop for the client's packets.
    next_hop: Option<IpAddr>,
    /// TUN: the outer header's source and destination.
    tunnel: Option<(IpAddr, IpAddr)>,
}

fn a4(a: Ipv4Addr) -> IpAddr {
    IpAddr::V4(a)
}

fn a6(a: Ipv6Addr) -> IpAddr {
    IpAddr::V6(a)
}

#[allow(clippy::too_many_arguments)]
fn row(
    name: &'static str,
    mode: ForwardMode,
    proto: Proto,
    client: Ep,
    vip: Ep,
    at_server: (Ep, Ep),
    next_hop: Option<IpAddr>,
    tunnel: Option<(IpAddr, IpAddr)>,
) -> Row {
    Row {
        name,
        mode,
        proto,
        client,
        vip,
        at_server,
        next_hop,
        tunnel,
    }
}

/// The cells not tested elsewhere (see the table in the module doc).
#[rustfmt::skip]
fn rows() -> Vec<Row> {
    use ForwardMode::{Dr, FullNat, Nat, Snat, Tun};
    use Proto::{Echo, Tcp, Udp};
    use TunnelKind::{Gre, Ipip};
    let (c4, v4, l4, r4) = (a4(CLIENT4), a4(VIP4), a4(LADDR4), a4(R4));
    let (c6, v6, l6, r6) = (a6(CLIENT6), a6(VIP6), a6(LADDR6), a6(R6));
    let (i4, o4, w4) = (a4(INSIDE4), a4(OUTSIDE4), a4(WAN4));
    let (i6, o6, w6) = (a6(INSIDE6), a6(OUTSIDE6), a6(WAN6));
    vec![
        //  name                mode          proto  client    vip        server receives: src → dst    next hop  tunnel
        row("FullNAT v4 echo",  FullNat,      Echo, (c4, ID), (v4, 0),  ((l4, LP), (r4, 0)),          None,     None),
        row("NAT v4 TCP",       Nat,          Tcp,  (c4, CP), (v4, 80), ((c4, CP), (r4, 8080)),       None,     None),
        row("NAT v4 UDP",       Nat,          Udp,  (c4, CP), (v4, 53), ((c4, CP), (r4, 5353)),       None,     None),
        row("NAT v4 echo",      Nat,          Echo, (c4, ID), (v4, 0),  ((c4, ID), (r4, 0)),          None,     None),
        row("NAT v6 TCP",       Nat,          Tcp,  (c6, CP), (v6, 80), ((c6, CP), (r6, 8080)),       None,     None),
        row("NAT v6 UDP",       Nat,          Udp,  (c6, CP), (v6, 53), ((c6, CP), (r6, 5353)),       None,     None),
        row("NAT v6 echo",      Nat,          Echo, (c6, ID), (v6, 0),  ((c6, ID), (r6, 0)),          None,     None),
        row("DR v4 UDP",        Dr,           Udp,  (c4, CP), (v4, 53), ((c4, CP), (v4, 53)),         Some(r4), None),
        row("DR v4 echo",       Dr,           Echo, (c4, ID), (v4, 0),  ((c4, ID), (v4, 0)),          Some(r4), None),
        row("DR v6 TCP",        Dr,           Tcp,  (c6, CP), (v6, 80), ((c6, CP), (v6, 80)),         Some(r6), None),
        row("DR v6 UDP",        Dr,           Udp,  (c6, CP), (v6, 53), ((c6, CP), (v6, 53)),         Some(r6), None),
        row("DR v6 echo",       Dr,           Echo, (c6, ID), (v6, 0),  ((c6, ID), (v6, 0)),          Some(r6), None),
        row("TUN IPIP v4 UDP",  Tun(Ipip),    Udp,  (c4, CP), (v4, 53), ((c4, CP), (v4, 53)),         None,     Some((l4, r4))),
        row("TUN IPIP v4 echo", Tun(Ipip),    Echo, (c4, ID), (v4, 0),  ((c4, ID), (v4, 0)),          None,     Some((l4, r4))),
        row("TUN IPIP v6 UDP",  Tun(Ipip),    Udp,  (c6, CP), (v6, 53), ((c6, CP), (v6, 53)),         None,     Some((l6, r6))),
        row("TUN IPIP v6 echo", Tun(Ipip),    Echo, (c6, ID), (v6, 0),  ((c6, ID), (v6, 0)),          None,     Some((l6, r6))),
        row("TUN GRE v4 UDP",   Tun(Gre),     Udp,  (c4, CP), (v4, 53), ((c4, CP), (v4, 53)),         None,     Some((l4, r4))),
        row("TUN GRE v4 echo",  Tun(Gre),     Echo, (c4, ID), (v4, 0),  ((c4, ID), (v4, 0)),          None,     Some((l4, r4))),
        row("TUN GRE v6 UDP",   Tun(Gre),     Udp,  (c6, CP), (v6, 53), ((c6, CP), (v6, 53)),         None,     Some((l6, r6))),
        row("TUN GRE v6 echo",  Tun(Gre),     Echo, (c6, ID), (v6, 0),  ((c6, ID), (v6, 0)),          None,     Some((l6, r6))),
        row("SNAT v4 TCP",      Snat,         Tcp,  (i4, CP), (o4, 443), ((w4, LP), (o4, 443)),       None,     None),
        row("SNAT v4 UDP",      Snat,         Udp,  (i4, CP), (o4, 53), ((w4, LP), (o4, 53)),         None,     None),
        row("SNAT v4 echo",     Snat,         Echo, (i4, ID), (o4, 0),  ((w4, LP), (o4, 0)),          None,     None),
        row("SNAT v6 TCP",      Snat,         Tcp,  (i6, CP), (o6, 443), ((w6, LP), (o6, 443)),       None,     None),
        row("SNAT v6 UDP",      Snat,         Udp,  (i6, CP), (o6, 53), ((w6, LP), (o6, 53)),         None,     None),
        row("SNAT v6 echo",     Snat,         Echo, (i6, ID), (o6, 0),  ((w6, LP), (o6, 0)),          None,     None),
    ]
}

// ---- the independent builder (etherparse) ----

/// Layer-4 content of a packet. For echo, the identifier is the source
/// "port" of a request and the destination "port" of a reply.
#[derive(Debug, Clone, Copy)]
enum Body<'a> {
    Tcp {
        seq: u32,
        ack: Option<u32>,
        syn: bool,
        payload: &'a [u8],
    },
    Udp(&'a [u8]),
    Echo {
        request: bool,
        seq: u16,
        payload: &'a [u8],
    },
}

fn ip_headers(src: IpAddr, dst: IpAddr) -> IpHeaders {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut h = Ipv4Header::new(0, TTL, IpNumber::TCP, s.octets(), d.octets()).unwrap();
            h.identification = IDENT;
            h.dont_fragment = true;
            h.dscp = IpDscp::try_new(TOS >> 2).unwrap();
            h.ecn = IpEcn::try_new(TOS & 3).unwrap();
            IpHeaders::Ipv4(h, Default::default())
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => IpHeaders::Ipv6(
            Ipv6Header {
                traffic_class: TOS,
                flow_label: Ipv6FlowLabel::try_new(FLOW).unwrap(),
                payload_length: 0,
                next_header: IpNumber::TCP,
                hop_limit: TTL,
                source: s.octets(),
                destination: d.octets(),
            },
            Default::default(),
        ),
        _ => panic!("mixed families {src} → {dst}"),
    }
}

fn packet(src: Ep, dst: Ep, body: Body<'_>) -> Vec<u8> {
    let b = PacketBuilder::ip(ip_headers(src.0, dst.0));
    let v6 = src.0.is_ipv6();
    let mut v = Vec::new();
    match body {
        Body::Tcp {
            seq,
            ack,
            syn,
            payload,
        } => {
            let mut h = TcpHeader::new(src.1, dst.1, seq, 64240);
            h.syn = syn;
            h.psh = !payload.is_empty();
            if let Some(a) = ack {
                h.ack = true;
                h.acknowledgment_number = a;
            }
            b.tcp_header(h).write(&mut v, payload).unwrap();
        }
        Body::Udp(payload) => b.udp(src.1, dst.1).write(&mut v, payload).unwrap(),
        Body::Echo {
            request,
            seq,
            payload,
        } => {
            let r = match (v6, request) {
                (false, true) => b.icmpv4_echo_request(src.1, seq).write(&mut v, payload),
                (false, false) => b.icmpv4_echo_reply(dst.1, seq).write(&mut v, payload),
                (true, true) => b.icmpv6_echo_request(src.1, seq).write(&mut v, payload),
                (true, false) => b.icmpv6_echo_reply(dst.1, seq).write(&mut v, payload),
            };
            r.unwrap();
        }
    }
    v
}

/// `inner` encapsulated from `src` to `dst` as the tunnel must send it:
/// outer TTL/hop limit 64; DSCP/ECN (traffic class), DF and identification
/// (flow label) copied from the inner header; GRE as RFC 2784's 4 bytes.
fn encapsulated(kind: TunnelKind, src: IpAddr, dst: IpAddr, inner: &[u8]) -> Vec<u8> {
    let inner_v6 = inner[0] >> 4 == 6;
    let gre: &[u8] = match (kind, inner_v6) {
        (TunnelKind::Ipip, _) => &[],
        (TunnelKind::Gre, false) => &[0, 0, 0x08, 0x00],
        (TunnelKind::Gre, true) => &[0, 0, 0x86, 0xdd],
    };
    let proto = match (kind, inner_v6) {
        (TunnelKind::Gre, _) => IpNumber::GRE,
        (TunnelKind::Ipip, false) => IpNumber::IPV4,
        (TunnelKind::Ipip, true) => IpNumber::IPV6,
    };
    let payload_len = (gre.len() + inner.len()) as u16;
    let mut v = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut h = Ipv4Header::new(payload_len, 64, proto, s.octets(), d.octets()).unwrap();
            h.dscp = IpDscp::try_new(TOS >> 2).unwrap();
            h.ecn = IpEcn::try_new(TOS & 3).unwrap();
            h.dont_fragment = true;
            h.identification = IDENT;
            h.header_checksum = h.calc_header_checksum();
            h.to_bytes().to_vec()
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => Ipv6Header {
            traffic_class: TOS,
            flow_label: Ipv6FlowLabel::try_new(FLOW).unwrap(),
            payload_length: payload_len,
            next_header: proto,
            hop_limit: 64,
            source: s.octets(),
            destination: d.octets(),
        }
        .to_bytes()
        .to_vec(),
        _ => panic!("mixed tunnel families"),
    };
    v.extend_from_slice(gre);
    v.extend_from_slice(inner);
    v
}

// ---- checksums: etherparse, and a plain RFC 1071 reference ----

/// RFC 1071: the 16-bit one's-complement sum of `chunks` (each padded to
/// an even length), folded.
fn ones_sum(chunks: &[&[u8]]) -> u16 {
    let mut acc: u32 = 0;
    for c in chunks {
        for pair in c.chunks(2) {
            let hi = u32::from(pair[0]) << 8;
            acc += hi | pair.get(1).map_or(0, |&b| u32::from(b));
        }
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The pseudo-header of TCP/UDP/ICMPv6 (RFC 793, RFC 8200 §8.1).
fn pseudo(src: &[u8], dst: &[u8], proto: u8, len: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(40);
    p.extend_from_slice(src);
    p.extend_from_slice(dst);
    if src.len() == 4 {
        p.extend_from_slice(&[0, proto]);
        p.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        p.extend_from_slice(&(len as u32).to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, proto]);
    }
    p
}

/// Verifies every checksum of `pkt` (an IP packet, possibly a tunnel with
/// the inner packet inside) by the reference sum: each must sum to 0xffff.
/// Returns how many layer-4 checksums were verified (IPv4 headers are
/// verified too, uncounted).
fn reference_checksums(pkt: &[u8]) -> usize {
    let (proto, src, dst, l4, mut n) = match pkt[0] >> 4 {
        4 => {
            let ihl = usize::from(pkt[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
            assert_eq!(ones_sum(&[&pkt[..ihl]]), 0xffff, "IPv4 header checksum");
            (pkt[9], &pkt[12..16], &pkt[16..20], &pkt[ihl..total], 0)
        }
        6 => {
            let total = 40 + usize::from(u16::from_be_bytes([pkt[4], pkt[5]]));
            (pkt[6], &pkt[8..24], &pkt[24..40], &pkt[40..total], 0)
        }
        v => panic!("IP version {v}"),
    };
    match proto {
        4 | 41 => n += reference_checksums(l4),
        47 => n += reference_checksums(&l4[4..]),
        1 => {
            assert_eq!(ones_sum(&[l4]), 0xffff, "ICMP checksum");
            n += 1;
        }
        6 | 17 | 58 => {
            if proto == 17 && src.len() == 4 {
                assert_ne!(&l4[6..8], &[0, 0], "UDP checksum present");
            }
            let ph = pseudo(src, dst, proto, l4.len());
            assert_eq!(ones_sum(&[&ph, l4]), 0xffff, "protocol {proto} checksum");
            n += 1;
        }
        p => panic!("protocol {p}"),
    }
    n
}

/// Verifies every checksum of `pkt` with etherparse's own parser and
/// checksum functions (tunnels: the outer header, then the inner packet).
fn etherparse_checksums(pkt: &[u8]) {
    if pkt[0] >> 4 == 4 && matches!(pkt[9], 4 | 41 | 47) {
        let (h, rest) = Ipv4Header::from_slice(pkt).unwrap();
        assert_eq!(h.header_checksum, h.calc_header_checksum(), "outer IPv4");
        let inner = if pkt[9] == 47 { &rest[4..] } else { rest };
        return etherparse_checksums(inner);
    }
    if pkt[0] >> 4 == 6 && matches!(pkt[6], 4 | 41 | 47) {
        let (_, rest) = Ipv6Header::from_slice(pkt).unwrap();
        let inner = if pkt[6] == 47 { &rest[4..] } else { rest };
        return etherparse_checksums(inner);
    }
    let s = SlicedPacket::from_ip(pkt).expect("etherparse parses the packet");
    let transport = s.transport.expect("a transport header");
    match s.net.expect("an IP header") {
        NetSlice::Ipv4(i) => {
            let h = i.header().to_header();
            assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 header");
            match transport {
                TransportSlice::Tcp(t) => {
                    let want = t.to_header().calc_checksum_ipv4(&h, t.payload()).unwrap();
                    assert_eq!(t.checksum(), want, "TCP checksum");
                }
                TransportSlice::Udp(u) => {
                    let want = u.to_header().calc_checksum_ipv4(&h, u.payload()).unwrap();
                    assert_eq!(u.checksum(), want, "UDP checksum");
                }
                TransportSlice::Icmpv4(c) => {
                    let want = c.icmp_type().calc_checksum(c.payload());
                    assert_eq!(c.checksum(), want, "ICMP checksum");
                }
                other => panic!("unexpected transport {other:?}"),
            }
        }
        NetSlice::Ipv6(i) => {
            let h = i.header().to_header();
            match transport {
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
        other => panic!("unexpected network layer {other:?}"),
    }
}

// ---- the worker under test ----

fn icmp_proto(v6: bool) -> u8 {
    if v6 { 58 } else { 1 }
}

fn l4_proto(p: Proto, v6: bool) -> u8 {
    match p {
        Proto::Tcp => 6,
        Proto::Udp => 17,
        Proto::Echo => icmp_proto(v6),
    }
}

/// A worker with one service for the row: one real server, round robin,
/// local addresses of both families (the mode must take its own family's).
fn worker(r: &Row) -> Worker {
    let v6 = r.vip.0.is_ipv6();
    let proto = l4_proto(r.proto, v6);
    let key = match r.mode {
        ForwardMode::Snat => {
            let (inside, len) = if v6 {
                (a6(INSIDE6), 64)
            } else {
                (a4(INSIDE4), 24)
            };
            let any = if v6 {
                a6(Ipv6Addr::UNSPECIFIED)
            } else {
                a4(Ipv4Addr::UNSPECIFIED)
            };
            ServiceKey::snat_match(proto, inside, len, any, 0)
        }
        _ => ServiceKey::Addr {
            proto,
            addr: rvs_lb::flow::to_v6(r.vip.0),
            port: r.vip.1,
        },
    };
    // The configured real server: the source pool for SNAT; the next hop
    // (DR) or tunnel end (TUN), port 0; the rewritten destination otherwise.
    let dest = match (r.mode, r.next_hop, r.tunnel) {
        (ForwardMode::Snat, _, _) => (r.at_server.0.0, 0),
        (_, Some(hop), _) => (hop, 0),
        (_, _, Some((_, end))) => (end, 0),
        _ => r.at_server.1,
    };
    let mut spec = ServiceSpec::new(key, SchedulerKind::Rr);
    spec.toa = ToaMode::Off;
    if r.mode != ForwardMode::Snat {
        spec.laddrs = vec![a6(LADDR6), a4(LADDR4)];
    }
    spec.dests = vec![DestSpec::new(dest.0, dest.1, r.mode)];
    let config = Config::build(vec![spec], Timeouts::default())
        .unwrap_or_else(|e| panic!("{}: {e}", r.name));
    let mut w = Worker::new(WorkerOptions {
        conn_capacity: 16,
        ..WorkerOptions::default()
    });
    w.apply(Arc::new(config), false);
    w
}

fn run(w: &mut Worker, pkt: &[u8], now: Time) -> (Verdict, Vec<u8>) {
    let mut buf = vec![0u8; 128 + pkt.len() + 128];
    buf[128..128 + pkt.len()].copy_from_slice(pkt);
    let mut p = Packet::new(&mut buf, 128, pkt.len()).unwrap();
    let v = w.process(&mut p, 0, now);
    (v, p.data().to_vec())
}

/// The three packets of a row's exchange: client, server, client again.
fn bodies(p: Proto) -> [Body<'static>; 3] {
    match p {
        Proto::Tcp => [
            Body::Tcp {
                seq: 1000,
                ack: None,
                syn: true,
                payload: b"",
            },
            Body::Tcp {
                seq: 5000,
                ack: Some(1001),
                syn: true,
                payload: b"",
            },
            Body::Tcp {
                seq: 1001,
                ack: Some(5001),
                syn: false,
                payload: b"GET / HTTP/1.0\r\n\r\n",
            },
        ],
        Proto::Udp => [
            Body::Udp(b"query"),
            Body::Udp(b"answer!"),
            Body::Udp(b"second query"),
        ],
        Proto::Echo => [
            Body::Echo {
                request: true,
                seq: 1,
                payload: b"ping 1",
            },
            Body::Echo {
                request: false,
                seq: 1,
                payload: b"ping 1",
            },
            Body::Echo {
                request: true,
                seq: 2,
                payload: b"ping two",
            },
        ],
    }
}

/// Runs one row; returns a description of the first mismatch.
fn check(r: &Row) -> Result<(), String> {
    let mut w = worker(r);
    let now = Time::from_secs(1);
    let [first, answer, second] = bodies(r.proto);
    let mut in_bytes = 0;
    let mut out_pkts = 0;
    let mut out_bytes = 0;
    let step = |w: &mut Worker, what: &str, input: Vec<u8>, want: Vec<u8>, hop| {
        let (v, out) = run(w, &input, now);
        if v != (Verdict::Forward { next_hop: hop }) {
            return Err(format!("{what}: verdict {v:?}"));
        }
        if out != want {
            return Err(format!("{what}:\n got  {out:02x?}\n want {want:02x?}"));
        }
        etherparse_checksums(&out);
        if reference_checksums(&out) != 1 {
            return Err(format!("{what}: no layer-4 checksum verified"));
        }
        Ok(input.len())
    };
    let to_server = |body| {
        let inner = packet(r.at_server.0, r.at_server.1, body);
        match (r.mode, r.tunnel) {
            (ForwardMode::Tun(kind), Some((s, d))) => encapsulated(kind, s, d, &inner),
            _ => inner,
        }
    };
    in_bytes += step(
        &mut w,
        "client's first packet",
        packet(r.client, r.vip, first),
        to_server(first),
        r.next_hop,
    )?;
    if r.mode.sees_replies() {
        let reply = packet(r.at_server.1, r.at_server.0, answer);
        out_bytes += step(
            &mut w,
            "server's answer",
            reply,
            packet(r.vip, r.client, answer),
            None,
        )?;
        out_pkts += 1;
    }
    in_bytes += step(
        &mut w,
        "client's second packet",
        packet(r.client, r.vip, second),
        to_server(second),
        r.next_hop,
    )?;

    let list: Vec<_> = w.connections(now).collect();
    let want_state = match r.proto {
        Proto::Tcp => "ESTABLISHED",
        Proto::Udp => "UDP",
        Proto::Echo => "ICMP",
    };
    if list.len() != 1 || list[0].state != want_state {
        return Err(format!("connections {list:?}, want one {want_state}"));
    }
    let s = w.services()[0].stats;
    let want = (1, 2, out_pkts, in_bytes as u64, out_bytes as u64);
    let got = (s.conns, s.in_pkts, s.out_pkts, s.in_bytes, s.out_bytes);
    if got != want {
        return Err(format!("service counters {got:?}, want {want:?}"));
    }
    if w.drops().total() != 0 {
        return Err(format!("drops {:?}", w.drops()));
    }
    Ok(())
}

#[test]
fn every_mode_family_and_protocol_exact_bytes_both_ways() {
    let rows = rows();
    let failures: Vec<String> = rows
        .iter()
        .filter_map(|r| check(r).err().map(|e| format!("{}: {e}", r.name)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

/// The matrix's builder keeps the header fields the rows rely on (so that
/// an equality of outputs is not an equality of defaults).
#[test]
fn builder_sets_the_ip_fields() {
    let p = packet((a4(CLIENT4), 1), (a4(VIP4), 2), Body::Udp(b"x"));
    let (h, _) = Ipv4Header::from_slice(&p).unwrap();
    assert_eq!(
        (h.identification, h.dont_fragment, h.time_to_live),
        (IDENT, true, TTL)
    );
    assert_eq!((h.dscp.value() << 2) | h.ecn.value(), TOS);
    let p = packet((a6(CLIENT6), 1), (a6(VIP6), 2), Body::Udp(b"x"));
    let (h, _) = Ipv6Header::from_slice(&p).unwrap();
    assert_eq!(
        (h.traffic_class, h.flow_label.value(), h.hop_limit),
        (TOS, FLOW, TTL)
    );
    // The reference sum agrees with etherparse on a packet it built, and
    // catches a flipped payload bit.
    let mut p = packet((a6(CLIENT6), 1), (a6(VIP6), 2), Body::Udp(b"xyz"));
    assert_eq!(reference_checksums(&p), 1);
    let last = p.len() - 1;
    p[last] ^= 1;
    assert!(std::panic::catch_unwind(|| reference_checksums(&p)).is_err());
}
