//! ICMP errors that quote a balanced connection (fragmentation needed,
//! port unreachable, …) are translated and forwarded to the right side, as
//! IPVS does.
//!
//! An error quotes the packet that caused it, as that packet was when the
//! error was raised. A packet rvs *sent* has as its reverse what a packet
//! arriving for the same flow looks like, so the connection of an error is
//! found by one lookup of the **reverse of the quoted 5-tuple**:
//!
//! - It matches a connection's **reply key**: the quoted packet is one we
//!   sent towards the real server (L→R in FullNAT, C→R in NAT), and the
//!   error comes from the server side (the server's "port unreachable", or
//!   a router's "fragmentation needed" between rvs and the server). The
//!   quoted packet is rewritten back into what the client sent (C→V), the
//!   outer header becomes V→C (source the VIP, as IPVS does: the client
//!   never learns the backend's or its routers' addresses), and the message
//!   goes to the client.
//! - It matches a connection's **client key**: the quoted packet is our
//!   reply to the client (V→C), and the error comes from the client side.
//!   FullNAT: the quote becomes the server's packet R→L and the outer
//!   header L→R; NAT: the quote becomes R→C and the outer destination R
//!   (the outer source stays, as with IPVS). DR and TUN: the message goes
//!   to the real server as the mode forwards a client packet (DR: unchanged,
//!   next hop R; TUN: encapsulated towards R), since the server, which
//!   holds the VIP, sent the quoted packet itself.
//!
//! What is rewritten, all with incremental checksums (RFC 1624): the outer
//! addresses (and, for ICMPv6, the checksum's pseudo-header), the quoted
//! addresses (the quoted IPv4 header checksum with them), the quoted ports
//! or echo identifier, and the quoted layer-4 checksum when it lies inside
//! the quote (TCP: if at least 18 bytes are quoted; UDP: always; ICMP echo).
//! IPVS rewrites only the quoted ports; adjusting the quoted checksum too
//! gives the client back exactly the bytes it sent. The ICMP checksum is
//! updated by the difference of every rewritten word.
//!
//! The MTU of "fragmentation needed" / "packet too big" is copied as is:
//! FullNAT and NAT rewrite addresses without changing any header length, so
//! the path MTU towards the server is the client's path MTU too.
//!
//! Decisions and limits:
//! - Handled: IPv4 destination unreachable (all codes, frag-needed
//!   included), time exceeded and parameter problem; ICMPv6 destination
//!   unreachable, packet too big, time exceeded and parameter problem.
//!   Source quench (deprecated, RFC 6633) and redirects are passed to the
//!   stack, as is anything whose quote matches no connection, quotes a
//!   non-first fragment (no ports) or a protocol other than TCP, UDP and
//!   ICMP echo. An error quoting an ICMP error is never translated.
//! - A quote too short to hold the flow's ports, or not IP, is dropped as
//!   [`DropReason::Malformed`].
//! - The outer destination must be where such an error is expected (the
//!   local address in FullNAT, the client in NAT, the VIP for client-side
//!   errors); otherwise the message is passed to the stack untouched.
//! - A connection whose two sides are of different families (NAT64) would
//!   need ICMP↔ICMPv6 translation (RFC 7915), not done: dropped as
//!   [`DropReason::Unsupported`].
//! - Server-side errors in DR/TUN: the server answers the client directly,
//!   so its own errors do not pass here. An error about one of our tunnel
//!   packets (its quote is the IPIP/GRE outer header L→R, then the
//!   client's packet) is IPVS's special case: only "fragmentation needed"
//!   / "packet too big" is answered, by a *new* error from the VIP to the
//!   client quoting its packet, with the reported MTU **less the tunnel
//!   overhead** (the quoted outer header and GRE header: 20/24 bytes over
//!   IPv4, 40/44 over IPv6), so the client's next packets fit once
//!   encapsulated; none is sent below the family's minimum MTU (68/1280)
//!   or where RFC 1812 / RFC 4443 forbid an error. Other errors about
//!   tunnel packets are passed to the stack.
//! - SNAT: as FullNAT, except that a server-side error keeps its outer
//!   source (the router that raised it), as masquerading NATs do.
//! - Statistics: a translated error is counted as traffic of its
//!   connection's service and real server, "out" towards the client and
//!   "in" towards the server, as IPVS counts them. The connection's timer
//!   and state are not touched: an error is no sign of life.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rvs_wire::checksum;
use rvs_wire::gre::GrePacket;
use rvs_wire::icmpv4::{self, Icmpv4Packet, Icmpv4Repr};
use rvs_wire::icmpv6::{self, Icmpv6Packet, Icmpv6Repr};
use rvs_wire::ip_proto;
use rvs_wire::ipv4::{Ipv4Header, Ipv4Repr};
use rvs_wire::ipv6::{self, ExtHeaders, Ipv6Header, Ipv6Repr};
use zerocopy::{FromBytes, IntoBytes};

use crate::classify::{Family, PacketInfo};
use crate::config::ForwardMode;
use crate::conn::{Direction, Time};
use crate::flow::FlowKey;
use crate::fwd::rewrite::Endpoint;
use crate::fwd::{self, Verdict};
use crate::packet::Packet;
use crate::stats::DropReason;

use super::Worker;

/// How an error is rewritten.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// New source of the outer header (`None`: unchanged).
    outer_src: Option<IpAddr>,
    /// New destination of the outer header.
    outer_dst: IpAddr,
    /// New source of the quoted packet.
    quoted_src: Endpoint,
    /// New destination of the quoted packet.
    quoted_dst: Endpoint,
}

impl Worker {
    /// Handles an ICMP/ICMPv6 error message.
    pub(super) fn icmp_error(
        &mut self,
        packet: &mut Packet<'_>,
        info: &PacketInfo,
        _now: Time,
    ) -> Verdict {
        let quoted = match quoted_flow(packet.data(), info) {
            Ok(Some(key)) => key,
            Ok(None) => return self.tunnel_error(packet, info),
            Err(reason) => return self.drop(reason),
        };
        let Some((id, dir)) = self.conns.lookup(&quoted.reversed()) else {
            return Verdict::Pass;
        };
        let Some(conn) = self.conns.get(id) else {
            return Verdict::Pass;
        };
        let (client, reply, data) = (*conn.client_key(), *conn.reply_key(), conn.data);
        let outer_dst = info.key.dst_ip();
        let plan = match dir {
            Direction::FromServer => {
                let expected = match data.mode {
                    ForwardMode::FullNat | ForwardMode::Snat => reply.dst_ip(),
                    ForwardMode::Nat => client.src_ip(),
                    ForwardMode::Dr | ForwardMode::Tun(_) => return Verdict::Pass,
                };
                if outer_dst != expected {
                    return Verdict::Pass;
                }
                Plan {
                    outer_src: (data.mode != ForwardMode::Snat).then_some(client.dst_ip()),
                    outer_dst: client.src_ip(),
                    quoted_src: (client.src_ip(), client.src_port),
                    quoted_dst: (client.dst_ip(), client.dst_port),
                }
            }
            Direction::FromClient => {
                if outer_dst != client.dst_ip() {
                    return Verdict::Pass;
                }
                let outer_src = match data.mode {
                    ForwardMode::FullNat | ForwardMode::Snat => Some(reply.dst_ip()),
                    ForwardMode::Nat => None,
                    // The server sent the quoted packet as the VIP: it
                    // gets the error as it is, like any client packet.
                    ForwardMode::Dr => {
                        let verdict = Verdict::Forward {
                            next_hop: Some(reply.src_ip()),
                        };
                        return self.count(verdict, dir, data.service, data.dest, info.ip_len);
                    }
                    // Tunnelled to the server like a client packet.
                    ForwardMode::Tun(_) => {
                        let verdict = match self.conns.get_mut(id) {
                            Some(conn) => {
                                fwd::to_server(packet, info, conn, &self.fwd, &mut self.fullnat)
                            }
                            None => return Verdict::Pass,
                        };
                        return self.count(verdict, dir, data.service, data.dest, info.ip_len);
                    }
                };
                Plan {
                    outer_src,
                    outer_dst: reply.src_ip(),
                    quoted_src: (reply.src_ip(), reply.src_port),
                    quoted_dst: (reply.dst_ip(), reply.dst_port),
                }
            }
        };
        if Family::of(plan.quoted_src.0) != info.family
            || Family::of(plan.quoted_dst.0) != info.family
        {
            return self.drop(DropReason::Unsupported);
        }
        let verdict = match translate(packet.data_mut(), info, &plan) {
            Ok(()) => Verdict::Forward { next_hop: None },
            Err(reason) => Verdict::Drop(reason),
        };
        self.count(verdict, dir, data.service, data.dest, info.ip_len)
    }

    /// A server-side "fragmentation needed" / "packet too big" about one
    /// of our tunnel packets (the quote is the outer L→R header, then the
    /// client's packet): the client gets its own error from the VIP,
    /// quoting its packet, with the MTU less the tunnel overhead (IPVS's
    /// special case for tunnel errors). Anything else: passed.
    fn tunnel_error(&mut self, packet: &mut Packet<'_>, info: &PacketInfo) -> Verdict {
        let Some(t) = tunnel_quote(packet.data(), info) else {
            return Verdict::Pass;
        };
        let Some((id, Direction::FromClient)) = self.conns.lookup(&t.inner) else {
            return Verdict::Pass;
        };
        let Some(conn) = self.conns.get(id) else {
            return Verdict::Pass;
        };
        let (client, reply, data) = (*conn.client_key(), *conn.reply_key(), conn.data);
        if !matches!(data.mode, ForwardMode::Tun(_))
            || reply.src_ip() != t.outer_dst
            || crate::flow::from_v6(data.tun_src) != t.outer_src
        {
            return Verdict::Pass;
        }
        let Some(mtu) = t.mtu.checked_sub(t.overhead) else {
            return Verdict::Pass;
        };
        let verdict = match too_big(packet, &t, client.dst_ip(), client.src_ip(), mtu) {
            Ok(true) => Verdict::Forward { next_hop: None },
            Ok(false) => return Verdict::Pass,
            Err(reason) => Verdict::Drop(reason),
        };
        self.count(
            verdict,
            Direction::FromServer,
            data.service,
            data.dest,
            info.ip_len,
        )
    }

    /// Counts a handled error as traffic of its connection (or its drop).
    fn count(
        &mut self,
        verdict: Verdict,
        dir: Direction,
        service: u32,
        dest: u32,
        len: usize,
    ) -> Verdict {
        match verdict {
            Verdict::Drop(reason) => self.drops.count(reason),
            Verdict::Forward { .. } => {
                if let Some(st) = self.services.get_mut(service as usize) {
                    let count = |t: &mut crate::stats::TrafficStats| match dir {
                        Direction::FromClient => t.count_in(len),
                        Direction::FromServer => t.count_out(len),
                    };
                    count(&mut st.stats);
                    if let Some(ds) = st.dest_stats.get_mut(dest as usize) {
                        count(ds);
                    }
                }
            }
            Verdict::Pass => {}
        }
        verdict
    }
}

/// The bytes of the ICMP message (the IP payload without padding).
fn icmp_bytes<'a>(packet: &'a [u8], info: &PacketInfo) -> Result<&'a [u8], DropReason> {
    let end = info.ip_len.min(packet.len());
    packet.get(info.l4_offset..end).ok_or(DropReason::Malformed)
}

/// The 5-tuple of the packet an error quotes, as [`crate::classify`] would
/// key that packet; `None` if the error is not one rvs translates.
fn quoted_flow(packet: &[u8], info: &PacketInfo) -> Result<Option<FlowKey>, DropReason> {
    let bytes = icmp_bytes(packet, info)?;
    match info.family {
        Family::V4 => {
            let icmp = Icmpv4Packet::parse(bytes).map_err(malformed)?;
            match icmp.msg_type() {
                icmpv4::msg_type::DST_UNREACHABLE
                | icmpv4::msg_type::TIME_EXCEEDED
                | icmpv4::msg_type::PARAM_PROBLEM => {}
                _ => return Ok(None),
            }
            let (hdr, l4) = icmp.quoted_ipv4().map_err(malformed)?;
            if hdr.is_fragment() && !hdr.is_first_fragment() {
                return Ok(None);
            }
            let ports = quoted_ports(hdr.protocol(), l4, false)?;
            Ok(ports.map(|(sp, dp)| FlowKey::v4(hdr.protocol(), hdr.src(), sp, hdr.dst(), dp)))
        }
        Family::V6 => {
            let icmp = Icmpv6Packet::parse(bytes).map_err(malformed)?;
            match icmp.msg_type() {
                icmpv6::msg_type::DST_UNREACHABLE
                | icmpv6::msg_type::PACKET_TOO_BIG
                | icmpv6::msg_type::TIME_EXCEEDED
                | icmpv6::msg_type::PARAM_PROBLEM => {}
                _ => return Ok(None),
            }
            let (hdr, proto, l4) = icmp.quoted_ipv6().map_err(malformed)?;
            // A quoted non-first fragment carries no ports.
            let chain = icmp
                .quoted()
                .map_err(malformed)?
                .get(ipv6::HEADER_LEN..)
                .unwrap_or_default();
            for ext in ExtHeaders::new(hdr.next_header, chain, ipv6::HEADER_LEN) {
                let ext = ext.map_err(malformed)?;
                if ext.fragment().is_some_and(|f| f.offset() != 0) {
                    return Ok(None);
                }
            }
            let ports = quoted_ports(proto, l4, true)?;
            Ok(ports
                .map(|(sp, dp)| FlowKey::new(proto, hdr.src().into(), sp, hdr.dst().into(), dp)))
        }
    }
}

/// The "ports" of a quoted layer-4 header as the flow key holds them;
/// `None` for protocols rvs does not balance and for quoted ICMP messages
/// other than echo (never translate an error about an error).
fn quoted_ports(proto: u8, l4: &[u8], v6: bool) -> Result<Option<(u16, u16)>, DropReason> {
    // RFC 792 guarantees 8 bytes of the offending datagram's payload;
    // fewer cannot identify a flow (ports, or ICMP type and identifier).
    if l4.len() < 8 {
        return Err(DropReason::Malformed);
    }
    let w = |at| be16(l4, at).ok_or(DropReason::Malformed);
    let (request, reply) = if v6 {
        (icmpv6::msg_type::ECHO_REQUEST, icmpv6::msg_type::ECHO_REPLY)
    } else {
        (icmpv4::msg_type::ECHO_REQUEST, icmpv4::msg_type::ECHO_REPLY)
    };
    match proto {
        ip_proto::TCP | ip_proto::UDP => Ok(Some((w(0)?, w(2)?))),
        ip_proto::ICMP if !v6 => echo_ports(l4, request, reply),
        ip_proto::ICMPV6 if v6 => echo_ports(l4, request, reply),
        _ => Ok(None),
    }
}

/// Echo messages key on the identifier: requests as the source port,
/// replies as the destination port (see [`PacketInfo::key`]).
fn echo_ports(l4: &[u8], request: u8, reply: u8) -> Result<Option<(u16, u16)>, DropReason> {
    let ident = be16(l4, 4).ok_or(DropReason::Malformed)?;
    Ok(match l4.first() {
        Some(&t) if t == request => Some((ident, 0)),
        Some(&t) if t == reply => Some((0, ident)),
        _ => None,
    })
}

/// Rewrites the error in place according to `plan`.
fn translate(packet: &mut [u8], info: &PacketInfo, plan: &Plan) -> Result<(), DropReason> {
    let end = info.ip_len.min(packet.len());
    let packet = packet.get_mut(..end).ok_or(DropReason::Malformed)?;
    let (l3, l4) = packet
        .split_at_mut_checked(info.l4_offset)
        .ok_or(DropReason::Malformed)?;
    match info.family {
        Family::V4 => {
            let (ip, _) = Ipv4Header::mut_from_prefix(l3).map_err(malformed)?;
            if let Some(src) = plan.outer_src {
                ip.set_src(v4(src)?);
            }
            ip.set_dst(v4(plan.outer_dst)?);
            let mut icmp = Icmpv4Packet::parse(l4).map_err(malformed)?;
            let mut csum = icmp.checksum();
            let (qh, ql4) = icmp.quoted_ipv4_mut().map_err(malformed)?;
            let old = *qh;
            qh.set_src(v4(plan.quoted_src.0)?);
            qh.set_dst(v4(plan.quoted_dst.0)?);
            csum = checksum::update_bytes(csum, old.as_bytes(), qh.as_bytes());
            let addrs = AddrChange::V4 {
                old: (old.src(), old.dst()),
                new: (qh.src(), qh.dst()),
            };
            rewrite_quoted_l4(old.protocol(), ql4, &addrs, plan, &mut csum)?;
            icmp.set_checksum(csum);
        }
        Family::V6 => {
            let (ip, _) = Ipv6Header::mut_from_prefix(l3).map_err(malformed)?;
            let (old_src, old_dst) = (ip.src(), ip.dst());
            if let Some(src) = plan.outer_src {
                ip.src = v6(src)?.octets();
            }
            ip.dst = v6(plan.outer_dst)?.octets();
            let (new_src, new_dst) = (ip.src(), ip.dst());
            let mut icmp = Icmpv6Packet::parse(l4).map_err(malformed)?;
            // The pseudo-header is in the ICMPv6 checksum.
            let mut csum = checksum::update_ipv6_addr(icmp.checksum(), old_src, new_src);
            csum = checksum::update_ipv6_addr(csum, old_dst, new_dst);
            let (qh, proto, ql4) = icmp.quoted_ipv6_mut().map_err(malformed)?;
            let old = *qh;
            qh.src = v6(plan.quoted_src.0)?.octets();
            qh.dst = v6(plan.quoted_dst.0)?.octets();
            csum = checksum::update_bytes(csum, old.as_bytes(), qh.as_bytes());
            let addrs = AddrChange::V6 {
                old: (old.src(), old.dst()),
                new: (qh.src(), qh.dst()),
            };
            rewrite_quoted_l4(proto, ql4, &addrs, plan, &mut csum)?;
            icmp.set_checksum(csum);
        }
    }
    Ok(())
}

/// The quoted packet's addresses before and after the rewrite, for the
/// pseudo-header part of its layer-4 checksum.
enum AddrChange {
    V4 {
        old: (Ipv4Addr, Ipv4Addr),
        new: (Ipv4Addr, Ipv4Addr),
    },
    V6 {
        old: (Ipv6Addr, Ipv6Addr),
        new: (Ipv6Addr, Ipv6Addr),
    },
}

impl AddrChange {
    /// Updates a checksum that covers the addresses (a pseudo-header).
    fn apply(&self, csum: u16) -> u16 {
        match *self {
            AddrChange::V4 { old, new } => {
                let c = checksum::update_ipv4_addr(csum, old.0, new.0);
                checksum::update_ipv4_addr(c, old.1, new.1)
            }
            AddrChange::V6 { old, new } => {
                let c = checksum::update_ipv6_addr(csum, old.0, new.0);
                checksum::update_ipv6_addr(c, old.1, new.1)
            }
        }
    }
}

/// Bytes of the quoted layer-4 header that a rewrite may touch: ports,
/// identifier and checksum all lie in the first 18.
const L4_TOUCHED: usize = 18;

/// Rewrites the quoted ports (or echo identifier) and the quoted checksum
/// where it is inside the quote; adds the difference to the ICMP checksum
/// `csum`.
fn rewrite_quoted_l4(
    proto: u8,
    l4: &mut [u8],
    addrs: &AddrChange,
    plan: &Plan,
    csum: &mut u16,
) -> Result<(), DropReason> {
    let n = l4.len().min(L4_TOUCHED) & !1;
    let region = l4.get_mut(..n).ok_or(DropReason::Malformed)?;
    let mut old = [0u8; L4_TOUCHED];
    let old = old.get_mut(..n).ok_or(DropReason::Malformed)?;
    old.copy_from_slice(region);
    let (sport, dport) = (plan.quoted_src.1, plan.quoted_dst.1);
    let ipv6 = matches!(addrs, AddrChange::V6 { .. });
    match proto {
        ip_proto::TCP | ip_proto::UDP => {
            let (old_sport, old_dport) = (be16(region, 0), be16(region, 2));
            let (Some(old_sport), Some(old_dport)) = (old_sport, old_dport) else {
                return Err(DropReason::Malformed);
            };
            put16(region, 0, sport)?;
            put16(region, 2, dport)?;
            let at = if proto == ip_proto::TCP { 16 } else { 6 };
            // A UDP checksum of zero over IPv4 means "none": keep it so.
            let absent = proto == ip_proto::UDP && !ipv6 && be16(region, at) == Some(0);
            if let (Some(c), false) = (be16(region, at), absent) {
                let mut c = checksum::update_u16(c, old_sport, sport);
                c = checksum::update_u16(c, old_dport, dport);
                c = addrs.apply(c);
                if proto == ip_proto::UDP && c == 0 {
                    c = 0xffff;
                }
                put16(region, at, c)?;
            }
        }
        ip_proto::ICMP | ip_proto::ICMPV6 => {
            let request = if ipv6 {
                icmpv6::msg_type::ECHO_REQUEST
            } else {
                icmpv4::msg_type::ECHO_REQUEST
            };
            let ident = if region.first() == Some(&request) {
                sport
            } else {
                dport
            };
            let old_ident = be16(region, 4).ok_or(DropReason::Malformed)?;
            put16(region, 4, ident)?;
            let mut c = be16(region, 2).ok_or(DropReason::Malformed)?;
            c = checksum::update_u16(c, old_ident, ident);
            if ipv6 {
                c = addrs.apply(c);
            }
            put16(region, 2, c)?;
        }
        _ => return Err(DropReason::Unsupported),
    }
    *csum = checksum::update_bytes(*csum, old, region);
    Ok(())
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let w = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*w.first()?, *w.get(1)?]))
}

fn put16(b: &mut [u8], at: usize, v: u16) -> Result<(), DropReason> {
    b.get_mut(at..at.saturating_add(2))
        .filter(|w| w.len() == 2)
        .ok_or(DropReason::Malformed)?
        .copy_from_slice(&v.to_be_bytes());
    Ok(())
}

fn v4(addr: IpAddr) -> Result<Ipv4Addr, DropReason> {
    match addr {
        IpAddr::V4(a) => Ok(a),
        IpAddr::V6(_) => Err(DropReason::Unsupported),
    }
}

fn v6(addr: IpAddr) -> Result<Ipv6Addr, DropReason> {
    match addr {
        IpAddr::V6(a) => Ok(a),
        IpAddr::V4(_) => Err(DropReason::Unsupported),
    }
}

fn malformed<E>(_: E) -> DropReason {
    DropReason::Malformed
}

/// A tunnel packet quoted by a "fragmentation needed" / "packet too big".
#[derive(Debug, Clone, Copy)]
struct TunnelQuote {
    /// Source and destination of the quoted outer header.
    outer_src: IpAddr,
    outer_dst: IpAddr,
    /// The MTU the error reports.
    mtu: usize,
    /// Bytes of outer header (and GRE header) in front of the client's
    /// packet.
    overhead: usize,
    /// Where the client's packet starts in the error, and how much of it
    /// is quoted.
    inner_at: usize,
    inner_len: usize,
    /// The client's packet's flow key.
    inner: FlowKey,
}

/// Reads a tunnel quote; `None` if this is not one that can be answered.
fn tunnel_quote(packet: &[u8], info: &PacketInfo) -> Option<TunnelQuote> {
    let bytes = icmp_bytes(packet, info).ok()?;
    // (MTU, tunnel protocol, outer addresses, length of the outer header)
    let (mtu, proto, outer_src, outer_dst, outer_len): (usize, u8, IpAddr, IpAddr, usize) =
        match info.family {
            Family::V4 => {
                let icmp = Icmpv4Packet::parse(bytes).ok()?;
                let mtu = icmp.next_hop_mtu()?;
                let (hdr, l4) = icmp.quoted_ipv4().ok()?;
                let len = icmp.payload().len().checked_sub(l4.len())?;
                let (src, dst) = (hdr.src().into(), hdr.dst().into());
                (usize::from(mtu), hdr.protocol(), src, dst, len)
            }
            Family::V6 => {
                let icmp = Icmpv6Packet::parse(bytes).ok()?;
                let mtu = usize::try_from(icmp.mtu()?).ok()?;
                let (hdr, proto, l4) = icmp.quoted_ipv6().ok()?;
                let len = icmp.payload().len().checked_sub(l4.len())?;
                (mtu, proto, hdr.src().into(), hdr.dst().into(), len)
            }
        };
    let outer_at = icmp_quote_offset(info.family);
    let after_outer = bytes.get(outer_at.checked_add(outer_len)?..)?;
    let inner = match proto {
        ip_proto::IPIP | ip_proto::IPV6 => after_outer,
        ip_proto::GRE => GrePacket::parse(after_outer).ok()?.into_payload(),
        _ => return None,
    };
    // Offsets within the error: the quote's slices all point into it.
    let base = bytes.as_ptr() as usize;
    let inner_at = (inner.as_ptr() as usize).checked_sub(base)?;
    let key = inner_flow(inner)?;
    Some(TunnelQuote {
        outer_src,
        outer_dst,
        mtu,
        overhead: inner_at.checked_sub(outer_at)?,
        inner_at: info.l4_offset.checked_add(inner_at)?,
        inner_len: inner.len(),
        inner: key,
    })
}

/// Where the quote starts in an ICMP message (after its 8-byte header).
const fn icmp_quote_offset(family: Family) -> usize {
    match family {
        Family::V4 => icmpv4::HEADER_LEN,
        Family::V6 => icmpv6::HEADER_LEN,
    }
}

/// The flow key of a quoted (truncated) client packet.
fn inner_flow(inner: &[u8]) -> Option<FlowKey> {
    match inner.first().map(|b| b >> 4) {
        Some(4) => {
            let (hdr, _) = Ipv4Header::ref_from_prefix(inner).ok()?;
            if hdr.is_fragment() && !hdr.is_first_fragment() {
                return None;
            }
            let l4 = inner.get(hdr.header_len()..)?;
            let (sp, dp) = quoted_ports(hdr.protocol(), l4, false).ok()??;
            Some(FlowKey::v4(hdr.protocol(), hdr.src(), sp, hdr.dst(), dp))
        }
        Some(6) => {
            let (hdr, rest) = Ipv6Header::ref_from_prefix(inner).ok()?;
            let (proto, l4) = ExtHeaders::new(hdr.next_header, rest, ipv6::HEADER_LEN)
                .upper_layer_bytes()
                .ok()?;
            let (sp, dp) = quoted_ports(proto, l4, true).ok()??;
            Some(FlowKey::new(
                proto,
                hdr.src().into(),
                sp,
                hdr.dst().into(),
                dp,
            ))
        }
        _ => None,
    }
}

/// TTL / hop limit of the errors rvs sends.
const ERROR_TTL: u8 = 64;

/// Replaces the error in `packet` by a new one from `vip` to `client`
/// reporting `mtu` and quoting the client's packet, which stays where it
/// is (the new headers take the place of the old ones and the tunnel
/// header). `Ok(false)` when no error may be sent (RFC 1812 §4.3.2.7,
/// RFC 4443 §2.4(e)) or the MTU left is below the family's minimum.
fn too_big(
    packet: &mut Packet<'_>,
    t: &TunnelQuote,
    vip: IpAddr,
    client: IpAddr,
    mtu: usize,
) -> Result<bool, DropReason> {
    let end = t
        .inner_at
        .checked_add(t.inner_len)
        .ok_or(DropReason::Malformed)?;
    let offending = packet
        .data()
        .get(t.inner_at..end)
        .ok_or(DropReason::Malformed)?;
    match (vip, client) {
        (IpAddr::V4(vip), IpAddr::V4(client)) => {
            const HEADERS: usize = rvs_wire::ipv4::HEADER_LEN + icmpv4::HEADER_LEN;
            let Ok(mtu) = u16::try_from(mtu) else {
                return Ok(false);
            };
            if mtu < 68 || !icmpv4::error_allowed_for(offending) {
                return Ok(false);
            }
            let quoted = icmpv4::quote(offending).len();
            let front = t.inner_at.checked_sub(HEADERS).ok_or(DropReason::NoRoom)?;
            if !packet.pull_front(front) || !packet.set_len(HEADERS + quoted) {
                return Err(DropReason::NoRoom);
            }
            let payload_len = u16::try_from(icmpv4::HEADER_LEN + quoted).map_err(malformed)?;
            let (ip, icmp) = packet
                .data_mut()
                .split_at_mut_checked(rvs_wire::ipv4::HEADER_LEN)
                .ok_or(DropReason::NoRoom)?;
            Ipv4Repr {
                ttl: ERROR_TTL,
                dscp_ecn: 0xc0,
                dont_fragment: false,
                ..Ipv4Repr::new(vip, client, ip_proto::ICMP, payload_len)
            }
            .emit(ip)
            .map_err(malformed)?;
            Icmpv4Repr::frag_needed(mtu, &[])
                .emit(icmp)
                .map_err(malformed)?;
            Icmpv4Packet::parse(icmp)
                .map_err(malformed)?
                .fill_checksum();
        }
        (IpAddr::V6(vip), IpAddr::V6(client)) => {
            const HEADERS: usize = ipv6::HEADER_LEN + icmpv6::HEADER_LEN;
            let Ok(mtu) = u32::try_from(mtu) else {
                return Ok(false);
            };
            if mtu < 1280
                || !icmpv6::error_allowed_for(icmpv6::msg_type::PACKET_TOO_BIG, 0, offending)
            {
                return Ok(false);
            }
            let quoted = icmpv6::quote(offending).len();
            let front = t.inner_at.checked_sub(HEADERS).ok_or(DropReason::NoRoom)?;
            if !packet.pull_front(front) || !packet.set_len(HEADERS + quoted) {
                return Err(DropReason::NoRoom);
            }
            let payload_len = u16::try_from(icmpv6::HEADER_LEN + quoted).map_err(malformed)?;
            let (ip, icmp) = packet
                .data_mut()
                .split_at_mut_checked(ipv6::HEADER_LEN)
                .ok_or(DropReason::NoRoom)?;
            Ipv6Repr {
                src: vip,
                dst: client,
                next_header: ip_proto::ICMPV6,
                hop_limit: ERROR_TTL,
                traffic_class: 0,
                flow_label: 0,
                payload_len,
            }
            .emit(ip)
            .map_err(malformed)?;
            Icmpv6Repr::packet_too_big(mtu, &[])
                .emit(vip, client, icmp)
                .map_err(malformed)?;
            Icmpv6Packet::parse(icmp)
                .map_err(malformed)?
                .fill_checksum(vip, client);
        }
        _ => return Err(DropReason::Unsupported),
    }
    Ok(true)
}
