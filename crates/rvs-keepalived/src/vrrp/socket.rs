//! The kernel raw socket (IP protocol 112) one instance sends and
//! receives its adverts on, bound to one kernel interface (rvsd's TAP for
//! the port, or a plain interface).
//!
//! Set up as keepalived sets its own up, so both look the same on the
//! wire: TTL / hop limit 255 (multicast and unicast), TOS / traffic class
//! 0xc0 (network control), no DF bit, no multicast loopback, the group (224.0.0.18 /
//! ff02::12) joined on the interface only and no other group's traffic
//! (`IP_MULTICAST_ALL` off), `SO_BINDTODEVICE`. IPv6 lets the kernel
//! fill in and verify the checksum (`IPV6_CHECKSUM` at offset 6, RFC 5798
//! §5.2.8 pseudo-header; what keepalived does too); IPv4 checksums are
//! ours ([`super::packet`]).
//!
//! One socket per instance, unbound (binding a raw socket to an address
//! filters what it receives by destination, which would lose the group):
//! the source address of each advert is given per packet
//! (`IP_PKTINFO` / `IPV6_PKTINFO`). Received packets come with their TTL
//! (IPv4: from the IP header the socket delivers; IPv6:
//! `IPV6_RECVHOPLIMIT`) and destination (`IPV6_RECVPKTINFO`), which the
//! checks and the v3 checksum need.
//!
//! An IPv6 source must have passed duplicate address detection before
//! adverts can leave from it ([`check_source`]).

use std::io;
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use tokio::io::unix::AsyncFd;

use super::packet::PROTO_VRRP;

/// The IPv4 VRRP group.
pub(crate) const GROUP4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The IPv6 VRRP group.
pub(crate) const GROUP6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// `IPV6_MULTICAST_ALL` (linux/in6.h), not in every libc.
const IPV6_MULTICAST_ALL: libc::c_int = 29;

/// The group of a family.
pub(crate) fn group(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(GROUP6)
    } else {
        IpAddr::V4(GROUP4)
    }
}

/// A received VRRP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Received {
    /// IP source.
    pub src: IpAddr,
    /// IP destination (the group or our address).
    pub dst: IpAddr,
    /// TTL / hop limit, if known.
    pub ttl: Option<u8>,
    /// The VRRP message (no IP header).
    pub payload: Vec<u8>,
}

/// A VRRP socket on one interface.
#[derive(Debug)]
pub(crate) struct VrrpSocket {
    fd: AsyncFd<OwnedFd>,
    v6: bool,
    ifindex: u32,
}

fn check(r: libc::c_int, what: &str) -> io::Result<()> {
    if r < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    Ok(())
}

fn setopt<T>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    v: &T,
    what: &str,
) -> io::Result<()> {
    // SAFETY: setsockopt reads size_of::<T>() bytes from a valid &T.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (v as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    check(r, what)
}

impl VrrpSocket {
    /// Opens a socket on interface `ifname` (index `ifindex`), joined to
    /// the group unless `multicast` is false (unicast peers). rvsd keeps
    /// its ports in all-multicast mode, so a group joined on the TAP
    /// passes the port's filter too.
    pub(crate) fn open(
        ifname: &str,
        ifindex: u32,
        v6: bool,
        multicast: bool,
    ) -> io::Result<VrrpSocket> {
        let family = if v6 { libc::AF_INET6 } else { libc::AF_INET };
        // SAFETY: plain socket(2).
        let raw = unsafe {
            libc::socket(
                family,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                i32::from(PROTO_VRRP),
            )
        };
        check(raw, "VRRP raw socket")?;
        // SAFETY: a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let s = fd.as_raw_fd();
        let name = ifname.as_bytes();
        // SAFETY: SO_BINDTODEVICE reads `name.len()` bytes.
        let r = unsafe {
            libc::setsockopt(
                s,
                libc::SOL_SOCKET,
                libc::SO_BINDTODEVICE,
                name.as_ptr().cast(),
                name.len() as libc::socklen_t,
            )
        };
        check(r, "SO_BINDTODEVICE")?;
        let idx = ifindex as libc::c_int;
        let (one, zero, ttl, tos) = (
            1 as libc::c_int,
            0 as libc::c_int,
            255 as libc::c_int,
            0xc0 as libc::c_int,
        );
        if v6 {
            let p = libc::IPPROTO_IPV6;
            setopt(s, p, libc::IPV6_MULTICAST_HOPS, &ttl, "IPV6_MULTICAST_HOPS")?;
            setopt(s, p, libc::IPV6_UNICAST_HOPS, &ttl, "IPV6_UNICAST_HOPS")?;
            setopt(
                s,
                p,
                libc::IPV6_MULTICAST_LOOP,
                &zero,
                "IPV6_MULTICAST_LOOP",
            )?;
            setopt(s, p, libc::IPV6_MULTICAST_IF, &idx, "IPV6_MULTICAST_IF")?;
            setopt(s, p, libc::IPV6_RECVHOPLIMIT, &one, "IPV6_RECVHOPLIMIT")?;
            setopt(s, p, libc::IPV6_RECVPKTINFO, &one, "IPV6_RECVPKTINFO")?;
            setopt(s, p, libc::IPV6_TCLASS, &tos, "IPV6_TCLASS")?;
            let offset: libc::c_int = 6;
            setopt(s, p, libc::IPV6_CHECKSUM, &offset, "IPV6_CHECKSUM")?;
            // Older kernels lack it; receiving more groups is harmless.
            let _ = setopt(s, p, IPV6_MULTICAST_ALL, &zero, "IPV6_MULTICAST_ALL");
            if multicast {
                let mreq = libc::ipv6_mreq {
                    ipv6mr_multiaddr: libc::in6_addr {
                        s6_addr: GROUP6.octets(),
                    },
                    ipv6mr_interface: ifindex,
                };
                setopt(s, p, libc::IPV6_ADD_MEMBERSHIP, &mreq, "join ff02::12")?;
            }
        } else {
            let p = libc::IPPROTO_IP;
            setopt(s, p, libc::IP_MULTICAST_TTL, &ttl, "IP_MULTICAST_TTL")?;
            setopt(s, p, libc::IP_TTL, &ttl, "IP_TTL")?;
            setopt(s, p, libc::IP_MULTICAST_LOOP, &zero, "IP_MULTICAST_LOOP")?;
            setopt(s, p, libc::IP_TOS, &tos, "IP_TOS")?;
            // No DF bit, as keepalived's adverts.
            let dont = libc::IP_PMTUDISC_DONT;
            setopt(s, p, libc::IP_MTU_DISCOVER, &dont, "IP_MTU_DISCOVER")?;
            let _ = setopt(s, p, libc::IP_MULTICAST_ALL, &zero, "IP_MULTICAST_ALL");
            let mreqn = libc::ip_mreqn {
                imr_multiaddr: libc::in_addr {
                    s_addr: u32::from(GROUP4).to_be(),
                },
                imr_address: libc::in_addr { s_addr: 0 },
                imr_ifindex: idx,
            };
            setopt(s, p, libc::IP_MULTICAST_IF, &mreqn, "IP_MULTICAST_IF")?;
            if multicast {
                setopt(s, p, libc::IP_ADD_MEMBERSHIP, &mreqn, "join 224.0.0.18")?;
            }
        }
        // SAFETY: the descriptor is owned by the AsyncFd from here on and
        // closed only when it is dropped (tokio's I/O-safety contract).
        let fd = unsafe { AsyncFd::register(fd) }.map_err(|e| io::Error::other(e.to_string()))?;
        Ok(VrrpSocket { fd, v6, ifindex })
    }

    /// Receives the next VRRP packet. An IPv4 packet whose header does not
    /// hold together is returned with an empty payload (it decodes as too
    /// short and is counted as such).
    pub(crate) async fn recv(&self) -> io::Result<Received> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| recv_one(fd.get_ref().as_raw_fd(), self.v6)) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    /// Sends `payload` from `src` to `dst`.
    pub(crate) async fn send(&self, src: IpAddr, dst: IpAddr, payload: &[u8]) -> io::Result<()> {
        loop {
            let mut guard = self.fd.writable().await?;
            let s = guard.get_ref().get_ref().as_raw_fd();
            match guard.try_io(|_| send_one(s, self.ifindex, src, dst, payload)) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }
}

/// Control-message room for a pktinfo and a hop limit.
const CMSG_ROOM: usize = 128;

#[repr(C, align(8))]
struct CmsgBuf([u8; CMSG_ROOM]);

fn recv_one(s: RawFd, v6: bool) -> io::Result<Received> {
    let mut buf = vec![0u8; 2048];
    // SAFETY: sockaddr_storage is plain data; zeroed is valid.
    let mut from: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut cbuf = CmsgBuf([0; CMSG_ROOM]);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; zeroed is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&raw mut from).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.0.as_mut_ptr().cast();
    msg.msg_controllen = CMSG_ROOM;
    // SAFETY: recvmsg into buffers that outlive the call.
    let n = unsafe { libc::recvmsg(s, &raw mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(usize::try_from(n).unwrap_or(0));
    if !v6 {
        return Ok(strip_ipv4(&buf));
    }
    // SAFETY: the kernel wrote a sockaddr_in6 for an AF_INET6 socket.
    let sin6 = unsafe { &*(&raw const from).cast::<libc::sockaddr_in6>() };
    let src = IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr));
    let mut dst = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
    let mut ttl = None;
    // SAFETY: walking the control messages recvmsg filled in, within
    // msg_controllen, with the libc macros.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&raw const msg);
        while !c.is_null() {
            let h = &*c;
            if h.cmsg_level == libc::IPPROTO_IPV6 && h.cmsg_type == libc::IPV6_HOPLIMIT {
                let v = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
                ttl = u8::try_from(v).ok();
            } else if h.cmsg_level == libc::IPPROTO_IPV6 && h.cmsg_type == libc::IPV6_PKTINFO {
                let pi = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::in6_pktinfo>());
                dst = IpAddr::V6(Ipv6Addr::from(pi.ipi6_addr.s6_addr));
            }
            c = libc::CMSG_NXTHDR(&raw const msg, c);
        }
    }
    Ok(Received {
        src,
        dst,
        ttl,
        payload: buf,
    })
}

/// Takes the IPv4 header off (keepalived's length checks: the header's
/// total length must be what arrived).
pub(crate) fn strip_ipv4(pkt: &[u8]) -> Received {
    let bad = Received {
        src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        ttl: None,
        payload: Vec::new(),
    };
    let Some(h) = pkt.first_chunk::<20>() else {
        return bad;
    };
    let ihl = usize::from(h[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    let src = IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19]));
    if h[0] >> 4 != 4 || ihl < 20 || total != pkt.len() || ihl > total {
        return Received { src, dst, ..bad };
    }
    Received {
        src,
        dst,
        ttl: Some(h[8]),
        payload: pkt[ihl..].to_vec(),
    }
}

fn send_one(s: RawFd, ifindex: u32, src: IpAddr, dst: IpAddr, payload: &[u8]) -> io::Result<()> {
    let mut iov = libc::iovec {
        iov_base: payload.as_ptr().cast_mut().cast(),
        iov_len: payload.len(),
    };
    let mut cbuf = CmsgBuf([0; CMSG_ROOM]);
    // SAFETY: msghdr is plain data; zeroed is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.0.as_mut_ptr().cast();
    // SAFETY: sockaddr types are plain data; zeroed is valid.
    let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut sin6: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    match (src, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_addr.s_addr = u32::from(dst).to_be();
            msg.msg_name = (&raw mut sin).cast();
            msg.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            let pi = libc::in_pktinfo {
                ipi_ifindex: ifindex as libc::c_int,
                ipi_spec_dst: libc::in_addr {
                    s_addr: u32::from(src).to_be(),
                },
                ipi_addr: libc::in_addr { s_addr: 0 },
            };
            // SAFETY: one control message of its size in a buffer big
            // and aligned enough.
            msg.msg_controllen =
                unsafe { put_cmsg(&raw mut msg, libc::IPPROTO_IP, libc::IP_PKTINFO, &pi) };
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_addr.s6_addr = dst.octets();
            if dst.is_multicast() || dst.is_unicast_link_local() {
                sin6.sin6_scope_id = ifindex;
            }
            msg.msg_name = (&raw mut sin6).cast();
            msg.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            let pi = libc::in6_pktinfo {
                ipi6_addr: libc::in6_addr {
                    s6_addr: src.octets(),
                },
                ipi6_ifindex: ifindex,
            };
            // SAFETY: as above.
            msg.msg_controllen =
                unsafe { put_cmsg(&raw mut msg, libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, &pi) };
        }
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "source and destination of different families",
            ));
        }
    }
    // SAFETY: sendmsg with buffers that outlive the call.
    let n = unsafe { libc::sendmsg(s, &raw const msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Writes one control message holding `v` at the start of
/// `msg.msg_control`; returns the length to put in `msg_controllen`.
///
/// # Safety
/// `msg.msg_control` must point to at least [`CMSG_ROOM`] bytes aligned
/// for `cmsghdr`.
unsafe fn put_cmsg<T>(
    msg: *mut libc::msghdr,
    level: libc::c_int,
    kind: libc::c_int,
    v: &T,
) -> usize {
    let len = size_of::<T>() as libc::c_uint;
    // SAFETY: the caller's buffer holds CMSG_SPACE(len) (checked by the
    // size of CmsgBuf for the two pktinfo types).
    unsafe {
        (*msg).msg_controllen = libc::CMSG_SPACE(len) as usize;
        let c = libc::CMSG_FIRSTHDR(msg);
        (*c).cmsg_level = level;
        (*c).cmsg_type = kind;
        (*c).cmsg_len = libc::CMSG_LEN(len) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<T>(), std::ptr::read(v));
        libc::CMSG_SPACE(len) as usize
    }
}

/// `IFA_F_OPTIMISTIC`, `IFA_F_DADFAILED`, `IFA_F_TENTATIVE`
/// (linux/if_addr.h).
const IFA_F_OPTIMISTIC: u32 = 0x04;
const IFA_F_DADFAILED: u32 = 0x08;
const IFA_F_TENTATIVE: u32 = 0x40;

/// Refuses an IPv6 source the kernel cannot send from: an address of
/// interface `ifindex` still tentative (duplicate address detection under
/// way, a second or so after a TAP comes up) or found duplicate. An
/// address the kernel does not list there is left to the send.
pub(crate) fn check_source(ifindex: u32, src: Ipv6Addr) -> io::Result<()> {
    let table = std::fs::read_to_string("/proc/net/if_inet6").unwrap_or_default();
    check_in(&table, ifindex, src)
}

/// [`check_source`] against a `/proc/net/if_inet6` table.
fn check_in(table: &str, ifindex: u32, src: Ipv6Addr) -> io::Result<()> {
    let why = match v6_flags(table, ifindex, src) {
        Some(f) if f & IFA_F_DADFAILED != 0 => "failed duplicate address detection",
        Some(f) if f & IFA_F_TENTATIVE != 0 && f & IFA_F_OPTIMISTIC == 0 => {
            "is tentative (duplicate address detection under way)"
        }
        _ => return Ok(()),
    };
    Err(io::Error::new(
        io::ErrorKind::AddrNotAvailable,
        format!("{src} {why}"),
    ))
}

/// The flags of `addr` on interface `ifindex` in a `/proc/net/if_inet6`
/// table (address, index, prefix length, scope, flags, name; hex).
fn v6_flags(table: &str, ifindex: u32, addr: Ipv6Addr) -> Option<u32> {
    let want = addr
        .octets()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    table.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (a, idx, flags) = (f.first()?, f.get(1)?, f.get(4)?);
        (a.eq_ignore_ascii_case(&want) && u32::from_str_radix(idx, 16).ok()? == ifindex)
            .then(|| u32::from_str_radix(flags, 16).ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tentative_and_duplicate_sources_are_refused() {
        // tp0: tentative + dadfailed; tp1: tentative; tp2: permanent;
        // tp3: tentative but optimistic.
        let table = "\
00000000000000000000000000000001 01 80 10 80       lo
fe80000000000000005256fffe530a01 0c 40 20 48     tp0
fe80000000000000005256fffe530a01 0d 40 20 40     tp1
fe80000000000000005256fffe530a02 0e 40 20 80     tp2
fe80000000000000005256fffe530a03 0f 40 20 c4     tp3
";
        let ll = |last: u16| Ipv6Addr::new(0xfe80, 0, 0, 0, 0x52, 0x56ff, 0xfe53, last);
        assert_eq!(v6_flags(table, 12, ll(0xa01)), Some(0x48));
        assert_eq!(v6_flags(table, 13, ll(0xa01)), Some(0x40));
        assert_eq!(v6_flags(table, 14, ll(0xa01)), None, "other interface");
        let err = |idx, a| check_in(table, idx, a).unwrap_err().to_string();
        assert!(err(12, ll(0xa01)).contains("failed duplicate address detection"));
        assert!(err(13, ll(0xa01)).contains("is tentative"));
        assert!(check_in(table, 14, ll(0xa02)).is_ok());
        assert!(check_in(table, 15, ll(0xa03)).is_ok());
        assert!(check_in(table, 1, Ipv6Addr::LOCALHOST).is_ok());
        // Not listed: left to the send.
        assert!(check_in(table, 14, ll(0xa09)).is_ok());
        assert!(check_source(1, Ipv6Addr::LOCALHOST).is_ok());
    }

    #[test]
    fn ipv4_header_is_taken_off() {
        // keepalived's v3 advert as captured (see packet_tests).
        let pkt = [
            0x45, 0xc0, 0x00, 0x20, 0x00, 0x01, 0x00, 0x00, 0xff, 0x70, 0xcc, 0xf0, 0xc0, 0xa8,
            0x4d, 0x01, 0xe0, 0x00, 0x00, 0x12, 0x31, 0x34, 0xc8, 0x01, 0x00, 0x64, 0x0a, 0x20,
            0xc0, 0xa8, 0x4d, 0x64,
        ];
        let r = strip_ipv4(&pkt);
        assert_eq!(r.src, IpAddr::V4(Ipv4Addr::new(192, 168, 77, 1)));
        assert_eq!(r.dst, IpAddr::V4(GROUP4));
        assert_eq!(r.ttl, Some(255));
        assert_eq!(r.payload, pkt[20..]);
        // Total length other than what arrived: no payload.
        assert!(strip_ipv4(&pkt[..30]).payload.is_empty());
        assert!(strip_ipv4(&pkt[..10]).payload.is_empty());
    }
}
