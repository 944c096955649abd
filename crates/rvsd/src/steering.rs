//! Several workers on one port: which worker handles a frame
//! (ARCHITECTURE.md §4).
//!
//! # Who owns a connection
//! The worker that handled its first packet. For FullNAT and SNAT that
//! worker also chose the local port the backend's replies come back to,
//! with the balancer's [`Steering`] ([`choose`]):
//!
//! - [`Steering::Partition`] (the default with several workers): the local
//!   port's low bits name the worker ([`PortPartition`]: worker `port &
//!   mask`). Whichever worker a reply reaches, the owner is known from the
//!   reply's destination port alone, without any shared table.
//! - [`Steering::Rss`]: on AF_XDP ports whose driver exposes its RSS key
//!   and indirection table through the `ETHTOOL_GRSSH` ioctl
//!   ([`read_rss`]), hashes TCP and UDP over both ports (`ETHTOOL_GRXFH`),
//!   with the Toeplitz function, and whose table names only queues that a
//!   worker polls (worker `k` binds queue `k`): the local port is chosen so
//!   that the NIC's own hash of the reply lands on the owner's queue, and
//!   replies need no redirect at all. The same computation names the owner
//!   of a reply that arrives elsewhere anyway. Every AF_XDP port must
//!   report the same key and table (one steering per worker). veth and
//!   macvlan have no RSS (`ETHTOOL_GRSSH` fails with `EOPNOTSUPP`), and
//!   AF_PACKET fanout spreads by the kernel's own flow hash, not the NIC's:
//!   there Partition is used. `ethtool -X DEV equal N` makes a NIC's table
//!   name only the first `N` queues.
//! - one worker: [`Steering::Any`], nothing is redirected.
//!
//! # What a worker does with a received frame ([`Steerer::steer`])
//! - TCP/UDP to a FullNAT local or SNAT address (`owned::LOCAL`): the reply
//!   of a connection; its owner is `PortPartition::owner(dst port)` (or the
//!   RSS computation). Another worker's frame is passed to it through the
//!   inter-worker ring ([`crate::redirect`]). ICMP errors to a local
//!   address (fragmentation needed, unreachable, time exceeded) go by the
//!   local port quoted inside them.
//! - ARP replies and IPv6 neighbour advertisements: handled here and
//!   copied to every other worker, since every worker keeps its own
//!   neighbour cache and asks for the next hops it needs. The fanout hash
//!   of an ARP frame has no ports or IP addresses in it, so all ARP frames
//!   reach one worker: without the copies, a worker other than that one
//!   would never learn the MAC it asked for.
//! - everything else: handled here. Frames the node hands to the kernel
//!   go to the worker that serves the TAP devices (worker 0) when that is
//!   not this one.
//!
//! # What is guaranteed for client → VIP packets
//! Nothing here moves them: a connection's packets from the client must
//! all reach the worker that saw its first one. AF_PACKET fanout
//! (`PACKET_FANOUT_HASH`) picks the socket by `__skb_get_hash_symmetric`,
//! the kernel's flow dissector hash of the addresses and ports (symmetric:
//! both directions of one 5-tuple agree; seeded at boot, so not
//! computable here), modulo the number of sockets in the group: one
//! 5-tuple always lands on the same worker while the group does not
//! change. It does not help the reply direction, whose 5-tuple (R → L) is
//! another one — hence the port partition. NIC RSS on AF_XDP queues is the
//! same per 5-tuple (the NIC's Toeplitz hash). For veth (created with
//! `numtxqueues N numrxqueues N`), in native XDP mode the queue of a frame
//! is the number of the peer's transmit queue, which the sender picks per
//! socket (`sk_txhash`); Linux re-picks it when TCP retransmits after a
//! timeout, so a client connection through a multi-queue veth can move to
//! another worker mid-way — that worker does not know it and drops it. In
//! generic XDP mode a veth frame carries no receive queue and every frame
//! is seen on queue 0 (measured: worker 1 receives nothing; all traffic is
//! still answered, by worker 0). DR and TUN
//! only see client → VIP. NAT (masquerade) replies (R → C, to the client's
//! address, not ours) carry no owner in them: with several workers they
//! are only handled if they happen to reach the owner; use FullNAT, or one
//! worker, for NAT services.

use std::io;
use std::net::IpAddr;
use std::sync::Arc;

use rvs_lb::laddr::Steering;
use rvs_lb::rss::{PortPartition, RssSteering};
use rvs_lb::stack::{Node, owned};

/// What to do with a received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steer {
    /// Handle it here.
    Here,
    /// Pass it to this worker (it owns the connection).
    To(u16),
    /// Handle it here and copy it to every other worker (neighbour
    /// answers).
    HereAndCopy,
}

/// How replies are steered, as decided at start.
#[derive(Debug, Clone)]
pub struct Choice {
    /// The balancer's local-port steering for every worker.
    pub steering: Steering,
    /// Why, for the start-up log.
    pub reason: String,
}

/// The steering for `workers` workers over `ports` (name, is AF_XDP).
pub fn choose(workers: u16, ports: &[(String, bool)]) -> Choice {
    if workers <= 1 {
        return Choice {
            steering: Steering::Any,
            reason: "one worker".into(),
        };
    }
    let partition = |reason: String| Choice {
        steering: Steering::Partition(PortPartition::new(workers)),
        reason,
    };
    if ports.iter().any(|(_, xdp)| !xdp) {
        return partition("AF_PACKET fanout spreads by the kernel's flow hash".into());
    }
    let mut found: Option<Rss> = None;
    for (name, _) in ports {
        let rss = match read_rss(name) {
            Ok(r) => r,
            Err(e) => return partition(format!("{name}: no RSS key/table ({e})")),
        };
        if !rss.hfunc_toeplitz {
            return partition(format!("{name}: RSS hash function is not Toeplitz"));
        }
        if !rss.l4_ports_hashed {
            return partition(format!("{name}: TCP/UDP ports are not in the RSS hash"));
        }
        match &found {
            Some(f) if f.key != rss.key || f.reta != rss.reta => {
                return partition("the ports' RSS keys or tables differ".into());
            }
            _ => found = Some(rss),
        }
    }
    let Some(rss) = found else {
        return partition("no ports".into());
    };
    // Worker k polls queue k.
    let queues = rss
        .reta
        .iter()
        .copied()
        .max()
        .map_or(0, |q| usize::from(q) + 1);
    let queue_worker: Vec<u16> = (0..queues.max(usize::from(workers)))
        .map(|q| u16::try_from(q).unwrap_or(u16::MAX))
        .collect();
    if let Some(q) = rss.reta.iter().find(|&&q| q >= workers) {
        return partition(format!(
            "the RSS table names queue {q}, which no worker polls (ethtool -X DEV equal {workers})"
        ));
    }
    match RssSteering::new(&rss.key, rss.reta, queue_worker) {
        Ok(s) => Choice {
            steering: Steering::Rss(Arc::new(s)),
            reason: "NIC RSS (Toeplitz key and table read with ETHTOOL_GRSSH)".into(),
        },
        Err(e) => partition(format!("RSS: {e}")),
    }
}

/// A short name of a steering, for logs.
pub fn label(s: &Steering) -> &'static str {
    match s {
        Steering::Any => "any",
        Steering::Partition(_) => "port-partition",
        Steering::Rss(_) => "rss",
    }
}

/// A port's RSS setup as the driver reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rss {
    /// Hash key.
    pub key: Vec<u8>,
    /// Indirection table (hash low bits → queue).
    pub reta: Vec<u16>,
    /// The hash function is Toeplitz (`ETH_RSS_HASH_TOP`).
    pub hfunc_toeplitz: bool,
    /// TCP and UDP over IPv4 and IPv6 hash both addresses and both ports.
    pub l4_ports_hashed: bool,
}

const ETHTOOL_GRXFH: u32 = 0x29;
const ETHTOOL_GRSSH: u32 = 0x46;
const ETH_RSS_HASH_TOP: u8 = 1;
const TCP_V4_FLOW: u32 = 0x01;
const UDP_V4_FLOW: u32 = 0x02;
const TCP_V6_FLOW: u32 = 0x05;
const UDP_V6_FLOW: u32 = 0x06;
/// RXH_IP_SRC | RXH_IP_DST | RXH_L4_B_0_1 | RXH_L4_B_2_3.
const RXH_4TUPLE: u64 = (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7);

/// `struct ethtool_rxfh` without its flexible array.
#[repr(C)]
#[derive(Clone, Copy)]
struct RxfhHeader {
    cmd: u32,
    rss_context: u32,
    indir_size: u32,
    key_size: u32,
    hfunc: u8,
    input_xfrm: u8,
    rsvd8: [u8; 2],
    rsvd32: u32,
}

/// `struct ethtool_rxnfc` up to `data` (what `ETHTOOL_GRXFH` fills), with
/// room for the rest of the structure.
#[repr(C)]
struct Rxnfc {
    cmd: u32,
    flow_type: u32,
    data: u64,
    rest: [u8; 192],
}

/// `SIOCETHTOOL` on `name` with `data`.
fn ethtool(name: &str, data: *mut libc::c_void) -> io::Result<()> {
    // SAFETY: a plain datagram socket for the ioctl, closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: ifreq is plain data; zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr
        .ifr_name
        .iter_mut()
        .zip(name.bytes().take(libc::IFNAMSIZ - 1))
    {
        *d = s as libc::c_char;
    }
    ifr.ifr_ifru.ifru_data = data.cast();
    // SAFETY: `ifr` names the interface and points at a buffer the caller
    // sized for the command; both outlive the call.
    let r = unsafe { libc::ioctl(fd, libc::SIOCETHTOOL as _, &mut ifr) };
    let err = io::Error::last_os_error();
    // SAFETY: closing the socket opened above.
    unsafe { libc::close(fd) };
    if r < 0 { Err(err) } else { Ok(()) }
}

/// Reads a port's RSS key, indirection table, hash function and TCP/UDP
/// hash fields (`ETHTOOL_GRSSH`, `ETHTOOL_GRXFH`). veth: `EOPNOTSUPP`.
pub fn read_rss(name: &str) -> io::Result<Rss> {
    let hdr_len = std::mem::size_of::<RxfhHeader>();
    let mut head = RxfhHeader {
        cmd: ETHTOOL_GRSSH,
        rss_context: 0,
        indir_size: 0,
        key_size: 0,
        hfunc: 0,
        input_xfrm: 0,
        rsvd8: [0; 2],
        rsvd32: 0,
    };
    ethtool(name, (&raw mut head).cast())?;
    let (indir, key) = (head.indir_size as usize, head.key_size as usize);
    if indir == 0 || key == 0 || indir > 1 << 16 || key > 1024 {
        return Err(io::Error::other(format!(
            "driver reports a {indir}-entry table and a {key}-byte key"
        )));
    }
    // Header, then `indir` u32 entries, then the key: a u32 buffer keeps
    // the alignment the kernel expects.
    let words = (hdr_len + 4 * indir + key).div_ceil(4);
    let mut buf = vec![0u32; words];
    head.cmd = ETHTOOL_GRSSH;
    head.hfunc = 0;
    // SAFETY: `buf` holds at least `hdr_len` bytes; RxfhHeader is plain
    // data written unaligned-safe as bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(
            (&raw const head).cast::<u8>(),
            buf.as_mut_ptr().cast::<u8>(),
            hdr_len,
        );
    }
    ethtool(name, buf.as_mut_ptr().cast())?;
    // SAFETY: `buf` holds `words * 4` initialised bytes.
    let bytes: &[u8] = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast(), words * 4) };
    let hfunc = bytes.get(16).copied().unwrap_or(0);
    let reta: Vec<u16> = bytes
        .get(hdr_len..hdr_len + 4 * indir)
        .unwrap_or_default()
        .chunks_exact(4)
        .map(|c| u16::try_from(u32::from_ne_bytes([c[0], c[1], c[2], c[3]])).unwrap_or(u16::MAX))
        .collect();
    let key = bytes
        .get(hdr_len + 4 * indir..hdr_len + 4 * indir + key)
        .unwrap_or_default()
        .to_vec();
    let mut l4 = true;
    for flow in [TCP_V4_FLOW, UDP_V4_FLOW, TCP_V6_FLOW, UDP_V6_FLOW] {
        let mut n = Rxnfc {
            cmd: ETHTOOL_GRXFH,
            flow_type: flow,
            data: 0,
            rest: [0; 192],
        };
        let fields = ethtool(name, (&raw mut n).cast()).map_or(0, |()| n.data);
        l4 &= fields & RXH_4TUPLE == RXH_4TUPLE;
    }
    Ok(Rss {
        key,
        reta,
        hfunc_toeplitz: hfunc == ETH_RSS_HASH_TOP,
        l4_ports_hashed: l4,
    })
}

/// Decides, per received frame, which worker handles it.
#[derive(Debug, Clone)]
pub struct Steerer {
    me: u16,
    owner: Owner,
}

#[derive(Debug, Clone)]
enum Owner {
    Partition(PortPartition),
    Rss(Arc<RssSteering>),
    Me,
}

const ETH_ARP: u16 = 0x0806;
const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_ICMPV6: u8 = 58;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn addr(b: &[u8], at: usize, v6: bool) -> Option<IpAddr> {
    if v6 {
        let o: [u8; 16] = b.get(at..at + 16)?.try_into().ok()?;
        Some(IpAddr::from(o))
    } else {
        let o: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(IpAddr::from(o))
    }
}

/// An IP header's protocol, source, destination and L4 offset (relative
/// to `l3`); `None` for fragments after the first, IPv6 extension headers
/// and anything malformed.
fn ip_header(b: &[u8], l3: usize, v6: bool) -> Option<(u8, IpAddr, IpAddr, usize)> {
    if v6 {
        let nh = *b.get(l3 + 6)?;
        Some((nh, addr(b, l3 + 8, true)?, addr(b, l3 + 24, true)?, 40))
    } else {
        let ihl = usize::from(b.get(l3)? & 0x0f) * 4;
        if ihl < 20 || be16(b, l3 + 6)? & 0x1fff != 0 {
            return None;
        }
        let proto = *b.get(l3 + 9)?;
        Some((
            proto,
            addr(b, l3 + 12, false)?,
            addr(b, l3 + 16, false)?,
            ihl,
        ))
    }
}

impl Steerer {
    /// The steerer of worker `me` under `steering`.
    pub fn new(me: u16, steering: &Steering) -> Self {
        let owner = match steering {
            Steering::Partition(p) => Owner::Partition(*p),
            Steering::Rss(r) => Owner::Rss(r.clone()),
            Steering::Any => Owner::Me,
        };
        Steerer { me, owner }
    }

    /// The worker owning the connection a packet `src:sport → dst:dport`
    /// to one of our local addresses belongs to.
    fn owner_of(&self, src: IpAddr, dst: IpAddr, sport: u16, dport: u16) -> Option<u16> {
        match &self.owner {
            Owner::Partition(p) => p.owner(dport),
            Owner::Rss(r) => Some(r.worker_for(src, dst, sport, dport)),
            Owner::Me => None,
        }
    }

    fn to(&self, w: Option<u16>) -> Steer {
        match w {
            Some(w) if w != self.me => Steer::To(w),
            _ => Steer::Here,
        }
    }

    /// Where the Ethernet frame `f` received by this worker is handled.
    /// Reads only the fixed headers; anything it does not recognise is
    /// handled here.
    pub fn steer(&self, f: &[u8], node: &Node) -> Steer {
        self.steer_with(f, |a| {
            node.owner(a).is_some_and(|bits| bits & owned::LOCAL != 0)
        })
    }

    fn steer_with(&self, f: &[u8], is_local: impl Fn(IpAddr) -> bool) -> Steer {
        let mut l3 = 14;
        let Some(mut et) = be16(f, 12) else {
            return Steer::Here;
        };
        // Up to two VLAN tags.
        for _ in 0..2 {
            if et == 0x8100 || et == 0x88a8 {
                let Some(inner) = be16(f, l3 + 2) else {
                    return Steer::Here;
                };
                et = inner;
                l3 += 4;
            }
        }
        let v6 = match et {
            ETH_ARP => {
                // Operation 2: reply.
                return if be16(f, l3 + 6) == Some(2) {
                    Steer::HereAndCopy
                } else {
                    Steer::Here
                };
            }
            ETH_IPV4 => false,
            ETH_IPV6 => true,
            _ => return Steer::Here,
        };
        let Some((proto, src, dst, l4)) = ip_header(f, l3, v6) else {
            return Steer::Here;
        };
        let l4 = l3 + l4;
        if v6 && proto == PROTO_ICMPV6 && f.get(l4) == Some(&136) {
            return Steer::HereAndCopy;
        }
        if matches!(self.owner, Owner::Me) || !is_local(dst) {
            return Steer::Here;
        }
        match proto {
            PROTO_TCP | PROTO_UDP => match (be16(f, l4), be16(f, l4 + 2)) {
                (Some(sport), Some(dport)) => self.to(self.owner_of(src, dst, sport, dport)),
                _ => Steer::Here,
            },
            // An ICMP error quoting a packet we sent (L:lport → R:rport):
            // the owner of the connection whose reply would be R → L.
            PROTO_ICMP | PROTO_ICMPV6 => {
                let t = f.get(l4).copied().unwrap_or(0);
                let error = if v6 {
                    (1..=4).contains(&t)
                } else {
                    matches!(t, 3 | 11 | 12)
                };
                if !error {
                    return Steer::Here;
                }
                let inner = l4 + 8;
                let Some((iproto, isrc, idst, il4)) = ip_header(f, inner, v6) else {
                    return Steer::Here;
                };
                if !matches!(iproto, PROTO_TCP | PROTO_UDP) || !is_local(isrc) {
                    return Steer::Here;
                }
                match (be16(f, inner + il4), be16(f, inner + il4 + 2)) {
                    (Some(lport), Some(rport)) => self.to(self.owner_of(idst, isrc, rport, lport)),
                    _ => Steer::Here,
                }
            }
            _ => Steer::Here,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: [u8; 4] = [10, 0, 9, 1];
    const R: [u8; 4] = [10, 0, 1, 2];

    fn eth(et: u16, body: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&et.to_be_bytes());
        f.extend_from_slice(body);
        f
    }

    fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], l4: &[u8]) -> Vec<u8> {
        let mut h = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0];
        h.extend_from_slice(&src);
        h.extend_from_slice(&dst);
        h.extend_from_slice(l4);
        h
    }

    fn ports(s: u16, d: u16) -> Vec<u8> {
        let mut p = s.to_be_bytes().to_vec();
        p.extend_from_slice(&d.to_be_bytes());
        p.extend_from_slice(&[0; 16]);
        p
    }

    fn local(a: IpAddr) -> bool {
        a == IpAddr::from(L)
    }

    #[test]
    fn replies_go_to_the_port_owner() {
        let part = Steering::Partition(PortPartition::new(2));
        let w0 = Steerer::new(0, &part);
        let w1 = Steerer::new(1, &part);
        // R:80 → L:5001 (odd: worker 1's port).
        let f = eth(ETH_IPV4, &ipv4(PROTO_TCP, R, L, &ports(80, 5001)));
        assert_eq!(w0.steer_with(&f, local), Steer::To(1));
        assert_eq!(w1.steer_with(&f, local), Steer::Here);
        let f = eth(ETH_IPV4, &ipv4(PROTO_UDP, R, L, &ports(53, 5000)));
        assert_eq!(w1.steer_with(&f, local), Steer::To(0));
        // Behind a VLAN tag.
        let mut tagged = vec![0u8; 12];
        tagged.extend_from_slice(&[0x81, 0, 0, 7, 0x08, 0]);
        tagged.extend_from_slice(&ipv4(PROTO_TCP, R, L, &ports(80, 5001)));
        assert_eq!(w0.steer_with(&tagged, local), Steer::To(1));
        // Client → VIP (not a local address): stays.
        let f = eth(
            ETH_IPV4,
            &ipv4(PROTO_TCP, [10, 0, 0, 2], [10, 0, 0, 100], &ports(5001, 80)),
        );
        assert_eq!(w0.steer_with(&f, local), Steer::Here);
        // A later fragment has no ports: stays.
        let mut frag = ipv4(PROTO_TCP, R, L, &ports(80, 5001));
        frag[6] = 0x00;
        frag[7] = 0x10;
        assert_eq!(w0.steer_with(&eth(ETH_IPV4, &frag), local), Steer::Here);
        // One worker: never moves anything.
        let any = Steerer::new(0, &Steering::Any);
        let f = eth(ETH_IPV4, &ipv4(PROTO_TCP, R, L, &ports(80, 5001)));
        assert_eq!(any.steer_with(&f, local), Steer::Here);
    }

    #[test]
    fn icmp_errors_follow_the_quoted_local_port() {
        let part = Steering::Partition(PortPartition::new(2));
        let w0 = Steerer::new(0, &part);
        // R → L: fragmentation needed, quoting L:5001 → R:80.
        let quoted = ipv4(PROTO_TCP, L, R, &ports(5001, 80));
        let mut icmp = vec![3, 4, 0, 0, 0, 0, 5, 0xdc];
        icmp.extend_from_slice(&quoted);
        let f = eth(ETH_IPV4, &ipv4(PROTO_ICMP, R, L, &icmp));
        assert_eq!(w0.steer_with(&f, local), Steer::To(1));
        // An echo request to L stays.
        let f = eth(ETH_IPV4, &ipv4(PROTO_ICMP, R, L, &[8, 0, 0, 0, 0, 1, 0, 1]));
        assert_eq!(w0.steer_with(&f, local), Steer::Here);
    }

    #[test]
    fn neighbour_answers_are_copied() {
        let w = Steerer::new(0, &Steering::Partition(PortPartition::new(2)));
        let arp = |op: u16| {
            let mut a = vec![0, 1, 8, 0, 6, 4];
            a.extend_from_slice(&op.to_be_bytes());
            a.extend_from_slice(&[0; 20]);
            eth(ETH_ARP, &a)
        };
        assert_eq!(w.steer_with(&arp(2), local), Steer::HereAndCopy);
        assert_eq!(w.steer_with(&arp(1), local), Steer::Here);
        let mut v6 = vec![0x60, 0, 0, 0, 0, 24, PROTO_ICMPV6, 255];
        v6.extend_from_slice(&[0; 32]);
        v6.extend_from_slice(&[136, 0, 0, 0]);
        assert_eq!(w.steer_with(&eth(ETH_IPV6, &v6), local), Steer::HereAndCopy);
        v6[40] = 135;
        assert_eq!(w.steer_with(&eth(ETH_IPV6, &v6), local), Steer::Here);
    }

    #[test]
    fn rss_owner_is_the_nic_queue_of_the_reply() {
        let reta: Vec<u16> = (0..128).map(|i| i % 2).collect();
        let rss = Arc::new(RssSteering::new(&rvs_lb::rss::DEFAULT_KEY, reta, vec![0, 1]).unwrap());
        let w0 = Steerer::new(0, &Steering::Rss(rss.clone()));
        for lport in 5000..5050u16 {
            let f = eth(ETH_IPV4, &ipv4(PROTO_TCP, R, L, &ports(80, lport)));
            let owner = rss.worker_for(IpAddr::from(R), IpAddr::from(L), 80, lport);
            let want = if owner == 0 {
                Steer::Here
            } else {
                Steer::To(owner)
            };
            assert_eq!(w0.steer_with(&f, local), want);
        }
    }

    #[test]
    fn choose_defaults() {
        assert!(matches!(choose(1, &[]).steering, Steering::Any));
        let c = choose(2, &[("lo".into(), false)]);
        assert!(
            matches!(c.steering, Steering::Partition(p) if p.mask() == 1),
            "{}",
            c.reason
        );
        // No RSS on lo: Partition, with the reason.
        let c = choose(4, &[("lo".into(), true)]);
        assert!(matches!(c.steering, Steering::Partition(_)));
        assert!(c.reason.contains("lo"), "{}", c.reason);
    }
}
