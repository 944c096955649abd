//! Fuzz target: the whole per-worker pipeline under arbitrary input.
//!
//! One [`Worker`] with a realistic configuration (FullNAT TCP and UDP, NAT,
//! DR, TUN, ICMP echo, NAT64, v4 and v6; a connection limit and a server
//! threshold; a second configuration to switch to) runs a little program
//! decoded from the fuzz input. Each step is one of:
//! - an arbitrary packet (raw bytes from the input);
//! - a valid client packet to one of the services (built by etherparse),
//!   with a few random byte flips, its checksums optionally repaired so the
//!   mutation reaches past parsing;
//! - the real server's reply to a packet the worker forwarded earlier (the
//!   forwarded packet's addresses and ports swapped), so the reply path and
//!   the TCP state machine are exercised;
//! - the clock advancing, with an `expire` call of some budget;
//! - a switch to the other configuration, expiring removed servers'
//!   connections or not.
//!
//! Checked after every step:
//! - nothing panics (arithmetic overflow included under `cargo xtask fuzz`);
//! - a packet whose input checksums were valid (per etherparse) and that is
//!   forwarded leaves with valid IP and layer-4 checksums (per etherparse),
//!   looking inside IPIP encapsulation;
//! - the connection table never holds more than its capacity;
//! - forwards + passes + drops = packets in, and each drop reason's counter
//!   equals the number of packets dropped for that reason;
//! - each service's connection count and each real server's active and
//!   inactive counts match what the table holds.
//!
//! At the end the clock jumps past every timeout: the table must empty and
//! every count return to zero.
//!
//! Runs under plain `cargo test` (bolero's random engine plus the seed
//! corpus in `tests/__fuzz__/pipeline/corpus/`); `cargo xtask fuzz` runs it
//! longer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, LazyLock};

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use rvs_lb::config::{Config, DestSpec, ForwardMode, ServiceKey, ServiceSpec, ToaMode, TunnelKind};
use rvs_lb::conn::{Time, Timeouts};
use rvs_lb::fwd::{FLAG_ACTIVE, Verdict};
use rvs_lb::packet::Packet;
use rvs_lb::sched::SchedulerKind;
use rvs_lb::stats::DropReason;
use rvs_lb::worker::{Worker, WorkerOptions};

/// Small, so that "table full" is reached.
const CAPACITY: u32 = 48;
const HEADROOM: usize = 128;
const TAILROOM: usize = 128;

const VIP4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xa, 0, 0, 0, 0, 1);
const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;

fn v4(d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 1, d))
}

fn v6(d: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xb, 0, 0, 0, 0, d))
}

fn laddrs() -> Vec<IpAddr> {
    vec![
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100)),
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 101)),
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 100)),
    ]
}

fn service(
    key: ServiceKey,
    sched: SchedulerKind,
    dests: Vec<DestSpec>,
    toa: ToaMode,
    conn_limit: u32,
) -> ServiceSpec {
    let mut s = ServiceSpec::new(key, sched);
    s.laddrs = laddrs();
    s.dests = dests;
    s.toa = toa;
    s.conn_limit = conn_limit;
    s
}

fn vip4() -> IpAddr {
    IpAddr::V4(VIP4)
}

fn vip6() -> IpAddr {
    IpAddr::V6(VIP6)
}

fn icmp_key(addr: IpAddr) -> ServiceKey {
    ServiceKey::Addr {
        proto: if addr.is_ipv4() { ICMP } else { 58 },
        addr: match addr {
            IpAddr::V4(a) => a.to_ipv6_mapped(),
            IpAddr::V6(a) => a,
        },
        port: 0,
    }
}

/// Configuration A (`alt` false) and B: B removes a FullNAT server and the
/// IPv6 UDP service, adds a NAT server and changes schedulers.
fn config(alt: bool) -> Config {
    use ForwardMode::{Dr, FullNat, Nat, Tun};
    use SchedulerKind::{Mh, Rr, Sh, Wlc, Wrr};
    let mut fnat_tcp = vec![
        DestSpec::new(v4(1), 8080, FullNat).weight(2),
        DestSpec::new(v4(2), 8080, FullNat),
    ];
    if alt {
        fnat_tcp.pop();
    }
    let mut thresh = DestSpec::new(v4(4), 8080, Nat);
    thresh.upper_threshold = 3;
    let mut nat = vec![DestSpec::new(v4(3), 8080, Nat), thresh];
    if alt {
        nat.push(DestSpec::new(v4(5), 8080, Nat));
    }
    let mut specs = vec![
        service(
            ServiceKey::tcp(vip4(), 80),
            if alt { Wrr } else { Rr },
            fnat_tcp,
            ToaMode::FirstData,
            0,
        ),
        service(
            ServiceKey::udp(vip4(), 53),
            Sh,
            vec![
                DestSpec::new(v4(1), 5353, FullNat),
                DestSpec::new(v4(2), 5353, FullNat),
            ],
            ToaMode::Off,
            0,
        ),
        service(ServiceKey::tcp(vip4(), 8000), Wlc, nat, ToaMode::Off, 8),
        service(
            ServiceKey::tcp(vip4(), 443),
            Mh,
            vec![DestSpec::new(v4(6), 0, Dr), DestSpec::new(v4(7), 0, Dr)],
            ToaMode::Off,
            0,
        ),
        service(
            ServiceKey::tcp(vip4(), 25),
            Rr,
            vec![DestSpec::new(v4(8), 0, Tun(TunnelKind::Ipip))],
            ToaMode::Off,
            0,
        ),
        service(
            icmp_key(vip4()),
            Rr,
            vec![DestSpec::new(v4(1), 0, FullNat)],
            ToaMode::Off,
            0,
        ),
        service(
            ServiceKey::tcp(vip6(), 80),
            Rr,
            vec![
                DestSpec::new(v6(1), 8080, FullNat),
                DestSpec::new(v6(2), 8080, FullNat),
            ],
            ToaMode::Syn,
            0,
        ),
        service(
            ServiceKey::tcp(vip6(), 443),
            Rr,
            vec![DestSpec::new(v6(6), 0, Dr)],
            ToaMode::Off,
            0,
        ),
        service(
            ServiceKey::tcp(vip6(), 8443),
            Rr,
            vec![DestSpec::new(v4(9), 8443, FullNat)],
            ToaMode::FirstData,
            0,
        ),
        service(
            icmp_key(vip6()),
            Rr,
            vec![DestSpec::new(v6(3), 0, Nat)],
            ToaMode::Off,
            0,
        ),
    ];
    if !alt {
        specs.push(service(
            ServiceKey::udp(vip6(), 53),
            Rr,
            vec![DestSpec::new(v6(3), 5353, Nat)],
            ToaMode::Off,
            0,
        ));
    }
    Config::build(specs, Timeouts::default()).unwrap()
}

static CONFIGS: LazyLock<[Arc<Config>; 2]> =
    LazyLock::new(|| [Arc::new(config(false)), Arc::new(config(true))]);

/// The client packets the program can send: (VIP, protocol, port).
const TARGETS: [(bool, u8, u16); 12] = [
    (false, TCP, 80),
    (false, UDP, 53),
    (false, TCP, 8000),
    (false, TCP, 443),
    (false, TCP, 25),
    (false, ICMP, 0),
    (true, TCP, 80),
    (true, TCP, 443),
    (true, TCP, 8443),
    (true, ICMP, 0),
    (true, UDP, 53),
    // No service: passed to the stack.
    (false, TCP, 81),
];

/// The fuzz input, read a byte at a time; reads past the end end the
/// program.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        b
    }
}

/// TCP flags as a client or server would send them, from a selector byte.
fn tcp_flags(
    b: u8,
) -> (
    bool, /* syn */
    bool, /* ack */
    bool, /* fin */
    bool, /* rst */
) {
    match b % 6 {
        0 => (true, false, false, false),
        1 => (true, true, false, false),
        2 | 3 => (false, true, false, false),
        4 => (false, true, true, false),
        _ => (false, b & 0x80 != 0, false, true),
    }
}

/// A packet from `src` to `dst` built by etherparse.
fn build(
    src: Endpoint,
    dst: Endpoint,
    proto: u8,
    flags: u8,
    echo_reply: bool,
    payload: &[u8],
) -> Option<Vec<u8>> {
    let ip = match (src.0, dst.0) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), 64),
        _ => return None,
    };
    let mut out = Vec::new();
    match proto {
        TCP => {
            let (syn, ack, fin, rst) = tcp_flags(flags);
            let mut b = ip.tcp(src.1, dst.1, 1000 + u32::from(flags), 64240);
            if syn {
                b = b.syn();
            }
            if ack {
                b = b.ack(7000);
            }
            if fin {
                b = b.fin();
            }
            if rst {
                b = b.rst();
            }
            b.write(&mut out, payload).ok()?;
        }
        UDP => ip.udp(src.1, dst.1).write(&mut out, payload).ok()?,
        _ => {
            // Echo: the identifier travels as the source port of a request
            // and the destination port of a reply.
            match (src.0.is_ipv4(), echo_reply) {
                (true, false) => ip.icmpv4_echo_request(src.1, 1).write(&mut out, payload),
                (true, true) => ip.icmpv4_echo_reply(dst.1, 1).write(&mut out, payload),
                (false, false) => ip.icmpv6_echo_request(src.1, 1).write(&mut out, payload),
                (false, true) => ip.icmpv6_echo_reply(dst.1, 1).write(&mut out, payload),
            }
            .ok()?;
        }
    }
    Some(out)
}

/// RFC 1071 sum of `data` added to `acc` (unfolded).
fn sum(data: &[u8], mut acc: u32) -> u32 {
    for c in data.chunks(2) {
        acc += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Recomputes the IPv4 header checksum and the TCP/UDP/ICMP checksum of a
/// (possibly mutated) packet in place, as far as its length fields allow:
/// a mutated packet with repaired checksums gets past verification.
fn repair_checksums(p: &mut [u8]) {
    let Some(&b0) = p.first() else { return };
    let (l4_start, l4_end, proto, pseudo) = match b0 >> 4 {
        4 => {
            let ihl = usize::from(b0 & 0xf) * 4;
            if ihl < 20 || p.len() < ihl {
                return;
            }
            p[10] = 0;
            p[11] = 0;
            let c = fold(sum(&p[..ihl], 0));
            p[10..12].copy_from_slice(&c.to_be_bytes());
            let total = usize::from(u16::from_be_bytes([p[2], p[3]])).min(p.len());
            if total <= ihl {
                return;
            }
            let proto = p[9];
            let len = (total - ihl) as u32;
            let pseudo = sum(&p[12..20], 0) + u32::from(proto) + len;
            (ihl, total, proto, pseudo)
        }
        6 => {
            if p.len() < 40 {
                return;
            }
            let plen = usize::from(u16::from_be_bytes([p[4], p[5]]));
            let end = (40 + plen).min(p.len());
            let proto = p[6];
            let len = (end - 40) as u32;
            let pseudo = sum(&p[8..40], 0) + u32::from(proto) + (len >> 16) + (len & 0xffff);
            (40, end, proto, pseudo)
        }
        _ => return,
    };
    let l4 = &mut p[l4_start..l4_end];
    let (at, pseudo) = match proto {
        6 => (16, pseudo),
        17 => (6, pseudo),
        1 => (2, 0),
        58 => (2, pseudo),
        _ => return,
    };
    if l4.len() < at + 2 {
        return;
    }
    l4[at] = 0;
    l4[at + 1] = 0;
    let mut c = fold(sum(l4, pseudo));
    if proto == 17 && c == 0 {
        c = 0xffff;
    }
    l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

/// What etherparse says about a packet's checksums.
#[derive(Debug, PartialEq)]
enum Sums {
    /// Every checksum etherparse can compute verifies.
    Valid,
    /// One does not.
    Invalid(String),
    /// etherparse does not parse it, or it is a fragment (the layer-4
    /// checksum covers bytes that are not here).
    Unchecked,
}

fn sums(p: &[u8]) -> Sums {
    let Ok(s) = SlicedPacket::from_ip(p) else {
        return Sums::Unchecked;
    };
    let (src, dst): (IpAddr, IpAddr) = match &s.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header().to_header();
            if h.header_checksum != h.calc_header_checksum() {
                return Sums::Invalid("IPv4 header".into());
            }
            if ip.payload().fragmented {
                return Sums::Unchecked;
            }
            // Tunnelled: the inner packet must be right too.
            if matches!(h.protocol.0, 4 | 41) {
                return sums(ip.payload().payload);
            }
            (h.source.into(), h.destination.into())
        }
        Some(NetSlice::Ipv6(ip)) => {
            if ip.payload().fragmented {
                return Sums::Unchecked;
            }
            let h = ip.header();
            if matches!(ip.payload().ip_number.0, 4 | 41) {
                return sums(ip.payload().payload);
            }
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
            )
        }
        _ => return Sums::Unchecked,
    };
    let ok = match (&s.transport, src, dst) {
        (Some(TransportSlice::Tcp(t)), IpAddr::V4(a), IpAddr::V4(b)) => {
            t.calc_checksum_ipv4(a.octets(), b.octets()).ok() == Some(t.checksum())
        }
        (Some(TransportSlice::Tcp(t)), IpAddr::V6(a), IpAddr::V6(b)) => {
            t.calc_checksum_ipv6(a.octets(), b.octets()).ok() == Some(t.checksum())
        }
        (Some(TransportSlice::Udp(u)), IpAddr::V4(a), IpAddr::V4(b)) => {
            u.checksum() == 0
                || u.to_header()
                    .calc_checksum_ipv4_raw(a.octets(), b.octets(), u.payload())
                    .ok()
                    == Some(u.checksum())
        }
        (Some(TransportSlice::Udp(u)), IpAddr::V6(a), IpAddr::V6(b)) => {
            u.to_header()
                .calc_checksum_ipv6_raw(a.octets(), b.octets(), u.payload())
                .ok()
                == Some(u.checksum())
        }
        (Some(TransportSlice::Icmpv4(i)), _, _) => {
            i.header().icmp_type.calc_checksum(i.payload()) == i.checksum()
        }
        (Some(TransportSlice::Icmpv6(i)), IpAddr::V6(a), IpAddr::V6(b)) => {
            i.header()
                .icmp_type
                .calc_checksum(a.octets(), b.octets(), i.payload())
                .ok()
                == Some(i.checksum())
        }
        (None, _, _) => return Sums::Valid,
        _ => return Sums::Unchecked,
    };
    if ok {
        Sums::Valid
    } else {
        Sums::Invalid(format!("{:?}", s.transport.map(|t| format!("{t:?}"))))
    }
}

type Endpoint = (IpAddr, u16);

/// The endpoints of a packet etherparse parses (echo: the identifier as
/// the port on the requester's side).
fn endpoints(p: &[u8]) -> Option<(u8, Endpoint, Endpoint)> {
    let s = SlicedPacket::from_ip(p).ok()?;
    let (src, dst): (IpAddr, IpAddr) = match &s.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            (h.source_addr().into(), h.destination_addr().into())
        }
        Some(NetSlice::Ipv6(ip)) => {
            let h = ip.header();
            (h.source_addr().into(), h.destination_addr().into())
        }
        _ => return None,
    };
    match s.transport? {
        TransportSlice::Tcp(t) => Some((TCP, (src, t.source_port()), (dst, t.destination_port()))),
        TransportSlice::Udp(u) => Some((UDP, (src, u.source_port()), (dst, u.destination_port()))),
        TransportSlice::Icmpv4(i) => match i.icmp_type() {
            etherparse::Icmpv4Type::EchoRequest(e) => Some((ICMP, (src, e.id), (dst, 0))),
            _ => None,
        },
        TransportSlice::Icmpv6(i) => match i.icmp_type() {
            etherparse::Icmpv6Type::EchoRequest(e) => Some((ICMP, (src, e.id), (dst, 0))),
            _ => None,
        },
        _ => None,
    }
}

struct Harness {
    w: Worker,
    now: Time,
    config: usize,
    /// Recently forwarded packets, for the servers to answer.
    forwarded: Vec<Vec<u8>>,
    packets_in: u64,
    forwards: u64,
    passes: u64,
    drops: [u64; DropReason::ALL.len()],
}

impl Harness {
    fn new() -> Self {
        let mut w = Worker::new(WorkerOptions {
            conn_capacity: CAPACITY,
            ..WorkerOptions::default()
        });
        w.apply(Arc::clone(&CONFIGS[0]), false);
        Harness {
            w,
            now: Time::from_secs(1),
            config: 0,
            forwarded: Vec::new(),
            packets_in: 0,
            forwards: 0,
            passes: 0,
            drops: [0; DropReason::ALL.len()],
        }
    }

    fn process(&mut self, pkt: &[u8]) {
        let input_sums = sums(pkt);
        let mut buf = vec![0u8; HEADROOM + pkt.len() + TAILROOM];
        buf[HEADROOM..HEADROOM + pkt.len()].copy_from_slice(pkt);
        let mut p = Packet::new(&mut buf, HEADROOM, pkt.len()).unwrap();
        let verdict = self.w.process(&mut p, 0, self.now);
        self.packets_in += 1;
        match verdict {
            Verdict::Forward { .. } => {
                self.forwards += 1;
                let out = p.data().to_vec();
                if input_sums == Sums::Valid {
                    let got = sums(&out);
                    assert_eq!(
                        got,
                        Sums::Valid,
                        "forwarded with a bad checksum:\n in  {pkt:02x?}\n out {out:02x?}"
                    );
                }
                if self.forwarded.len() >= 64 {
                    self.forwarded.remove(0);
                }
                self.forwarded.push(out);
            }
            Verdict::Pass => self.passes += 1,
            Verdict::Drop(r) => self.drops[r as usize] += 1,
        }
        self.check();
    }

    /// Counters and table agree with what was seen.
    fn check(&self) {
        let w = &self.w;
        assert!(w.conns().len() <= CAPACITY as usize, "table over capacity");
        let dropped: u64 = self.drops.iter().sum();
        assert_eq!(
            self.forwards + self.passes + dropped,
            self.packets_in,
            "every packet has one verdict"
        );
        for r in DropReason::ALL {
            assert_eq!(
                w.drops().get(r),
                self.drops[r as usize],
                "drop counter {r} differs from the verdicts"
            );
        }
        let cfg = w.config();
        for (si, st) in w.services().iter().enumerate() {
            let of_service = w
                .conns()
                .iter()
                .filter(|(_, c)| c.data.service as usize == si)
                .map(|(_, c)| c.data)
                .collect::<Vec<_>>();
            assert_eq!(
                st.conns as usize,
                of_service.len(),
                "service {si} ({}) connection count",
                cfg.services()[si].spec.key
            );
            for (di, f) in st.facts.iter().enumerate() {
                let (mut active, mut inactive) = (0, 0);
                for d in of_service.iter().filter(|d| d.dest as usize == di) {
                    if d.flags & FLAG_ACTIVE != 0 {
                        active += 1;
                    } else {
                        inactive += 1;
                    }
                }
                assert_eq!(
                    (f.active, f.inactive),
                    (active, inactive),
                    "service {si} server {di} active/inactive counts"
                );
            }
        }
    }

    /// Client `c`'s packet to target `t` (one of 4 addresses × 64 ports
    /// per target), built by etherparse.
    fn client(t: u8, c: u8, flags: u8, len: usize) -> Option<Vec<u8>> {
        let (v6, proto, port) = TARGETS[usize::from(t) % TARGETS.len()];
        let client = if v6 {
            IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                0xd,
                0,
                0,
                0,
                0,
                u16::from(c % 4),
            ))
        } else {
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10 + c % 4))
        };
        let vip = if v6 { vip6() } else { vip4() };
        let sport = 40000 + u16::from(c >> 2);
        let payload = vec![0x61; len];
        build((client, sport), (vip, port), proto, flags, false, &payload)
    }

    /// A client packet to one of the targets, maybe mutated.
    fn client_packet(&mut self, inp: &mut Input<'_>) -> Option<()> {
        let (t, c, flags, len) = (inp.u8()?, inp.u8()?, inp.u8()?, inp.u8()? % 32);
        let mut pkt = Self::client(t, c, flags, usize::from(len))?;
        let mutations = inp.u8()?;
        for _ in 0..mutations % 4 {
            let at = usize::from(inp.u16()?) % pkt.len();
            pkt[at] ^= inp.u8()?;
        }
        if mutations & 0x80 != 0 {
            repair_checksums(&mut pkt);
        }
        self.process(&pkt);
        Some(())
    }

    /// Up to 63 first packets of new flows to one target, unmutated: fills
    /// the table, reaches connection limits and thresholds.
    fn burst(&mut self, inp: &mut Input<'_>) -> Option<()> {
        let (t, c0, n) = (inp.u8()?, inp.u8()?, inp.u8()? % 64);
        for i in 0..n {
            if let Some(pkt) = Self::client(t, c0.wrapping_add(i), 0, 0) {
                self.process(&pkt);
            }
        }
        Some(())
    }

    /// The servers answer every packet forwarded recently.
    fn reply_all(&mut self, inp: &mut Input<'_>) -> Option<()> {
        let flags = inp.u8()?;
        for fwd in self.forwarded.clone() {
            if let Some((proto, src, dst)) = endpoints(&fwd)
                && let Some(pkt) = build(dst, src, proto, flags, true, b"r")
            {
                self.process(&pkt);
            }
        }
        Some(())
    }

    /// The server's answer to a forwarded packet.
    fn reply(&mut self, inp: &mut Input<'_>) -> Option<()> {
        let i = usize::from(inp.u8()?);
        let flags = inp.u8()?;
        let len = usize::from(inp.u8()? % 16);
        if self.forwarded.is_empty() {
            return Some(());
        }
        let fwd = &self.forwarded[i % self.forwarded.len()];
        let Some((proto, src, dst)) = endpoints(fwd) else {
            return Some(());
        };
        let payload = vec![0x62; len];
        if let Some(pkt) = build(dst, src, proto, flags, true, &payload) {
            self.process(&pkt);
        }
        Some(())
    }

    fn run(&mut self, mut inp: Input<'_>) {
        while let Some(op) = inp.u8() {
            let step = match op % 16 {
                0 => {
                    let len = usize::from(inp.u8().unwrap_or(0));
                    let pkt = inp.bytes(len).to_vec();
                    self.process(&pkt);
                    Some(())
                }
                1..=5 | 13..=15 => self.client_packet(&mut inp),
                6..=8 => self.reply(&mut inp),
                9 => inp.u16().map(|ms| {
                    self.now = self.now.add_millis(u64::from(ms) * 100);
                    let budget = usize::from(op >> 4);
                    self.w.expire(self.now, budget);
                    self.check();
                }),
                11 => self.burst(&mut inp),
                12 => self.reply_all(&mut inp),
                _ => {
                    self.config ^= 1;
                    let expire = op & 0x80 != 0;
                    self.w.apply(Arc::clone(&CONFIGS[self.config]), expire);
                    self.check();
                    Some(())
                }
            };
            if step.is_none() {
                break;
            }
        }
        // Past every timeout, everything goes and every count is zero.
        for _ in 0..64 {
            self.now = self.now.add_millis(3_600_000);
            self.w.expire(self.now, 1 << 16);
            if self.w.conns().is_empty() {
                break;
            }
        }
        assert!(self.w.conns().is_empty(), "connections left after expiry");
        self.check();
        for st in self.w.services() {
            assert_eq!(st.conns, 0);
            for f in &st.facts {
                assert_eq!((f.active, f.inactive), (0, 0));
            }
        }
    }
}

#[test]
fn fuzz_pipeline() {
    LazyLock::force(&CONFIGS);
    bolero::check!().for_each(|bytes: &[u8]| {
        Harness::new().run(Input(bytes));
    });
}
