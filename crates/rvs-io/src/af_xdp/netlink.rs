//! What aya does not expose: which XDP program an interface runs (rtnetlink
//! `RTM_GETLINK`, `IFLA_XDP`), the names of programs, the XDP links on an
//! interface (`bpf(2)` id iteration), and detaching either kind. Used only
//! at start-up to remove an rvs program a crashed run left behind.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

// <linux/if_link.h>
const IFLA_XDP: u16 = 43;
const IFLA_XDP_FD: u16 = 1;
const IFLA_XDP_FLAGS: u16 = 3;
const IFLA_XDP_DRV_PROG_ID: u16 = 5;
const IFLA_XDP_SKB_PROG_ID: u16 = 6;
const IFLA_XDP_HW_PROG_ID: u16 = 7;
const NLA_F_NESTED: u16 = 1 << 15;
const NLA_TYPE_MASK: u16 = 0x3fff;
/// XDP_FLAGS_SKB_MODE, DRV_MODE, HW_MODE.
pub(super) const FLAGS_SKB: u32 = 1 << 1;
pub(super) const FLAGS_DRV: u32 = 1 << 2;
const FLAGS_HW: u32 = 1 << 3;

// bpf(2) commands and types.
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_LINK_GET_FD_BY_ID: libc::c_long = 30;
const BPF_LINK_GET_NEXT_ID: libc::c_long = 31;
const BPF_LINK_DETACH: libc::c_long = 34;
const BPF_LINK_TYPE_XDP: u32 = 6;

const NLMSG_HDR: usize = 16;
const IFINFOMSG: usize = 16;

/// A program attached to an interface, and the mode flag it runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Attached {
    pub(super) prog_id: u32,
    pub(super) mode_flags: u32,
}

/// An XDP bpf_link on an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct XdpLinkInfo {
    pub(super) link_id: u32,
    pub(super) prog_id: u32,
}

fn last_err(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn put_u16(b: &mut Vec<u8>, v: u16) {
    b.extend_from_slice(&v.to_ne_bytes());
}

fn put_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_ne_bytes());
}

fn rd_u16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2)?.try_into().ok().map(u16::from_ne_bytes)
}

fn rd_u32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)?.try_into().ok().map(u32::from_ne_bytes)
}

/// nlmsghdr + ifinfomsg for `ifindex`.
fn link_request(kind: u16, flags: u16, ifindex: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(64);
    put_u32(&mut b, 0); // length, set by `finish`
    put_u16(&mut b, kind);
    put_u16(&mut b, flags);
    put_u32(&mut b, 1); // sequence
    put_u32(&mut b, 0); // port id
    b.push(libc::AF_UNSPEC as u8);
    b.push(0);
    put_u16(&mut b, 0); // type
    put_u32(&mut b, ifindex);
    put_u32(&mut b, 0); // flags
    put_u32(&mut b, 0); // change
    b
}

fn finish(b: &mut [u8]) {
    let len = (b.len() as u32).to_ne_bytes();
    if let Some(h) = b.get_mut(0..4) {
        h.copy_from_slice(&len);
    }
}

/// Sends one request and returns the kernel's first answer.
fn transact(req: &[u8]) -> io::Result<Vec<u8>> {
    // SAFETY: plain syscall; the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(last_err("netlink socket"));
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let timeout = libc::timeval {
        tv_sec: 2,
        tv_usec: 0,
    };
    // SAFETY: `timeout` is a live timeval of the size passed.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        );
    }
    // SAFETY: `req` is a live buffer of the length passed.
    let sent = unsafe { libc::send(sock.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
    if sent < 0 {
        return Err(last_err("netlink send"));
    }
    let mut buf = vec![0u8; 32 * 1024];
    // SAFETY: `buf` is a live, writable buffer of the length passed.
    let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(last_err("netlink recv"));
    }
    buf.truncate(n as usize);
    // An NLMSG_ERROR answer: 0 is an ack, negative an errno.
    if rd_u16(&buf, 4) == Some(libc::NLMSG_ERROR as u16) {
        let code = rd_u32(&buf, NLMSG_HDR).unwrap_or(0) as i32;
        if code < 0 {
            return Err(io::Error::from_raw_os_error(-code));
        }
    }
    Ok(buf)
}

/// Walks the attributes in `b`, calling `f(type, payload)`.
fn attrs(b: &[u8], mut f: impl FnMut(u16, &[u8])) {
    let mut at = 0;
    while let (Some(len), Some(kind)) = (rd_u16(b, at), rd_u16(b, at + 2)) {
        let len = usize::from(len);
        if len < 4 {
            break;
        }
        if let Some(payload) = b.get(at + 4..at + len) {
            f(kind & NLA_TYPE_MASK, payload);
        }
        at += (len + 3) & !3;
    }
}

/// The XDP programs attached to `ifindex`, one per mode.
pub(super) fn attached(ifindex: u32) -> io::Result<Vec<Attached>> {
    let mut req = link_request(libc::RTM_GETLINK, libc::NLM_F_REQUEST as u16, ifindex);
    finish(&mut req);
    let resp = transact(&req)?;
    let mut out = Vec::new();
    let Some(body) = resp.get(NLMSG_HDR + IFINFOMSG..) else {
        return Ok(out);
    };
    attrs(body, |kind, payload| {
        if kind != IFLA_XDP {
            return;
        }
        attrs(payload, |k, v| {
            let flags = match k {
                IFLA_XDP_SKB_PROG_ID => FLAGS_SKB,
                IFLA_XDP_DRV_PROG_ID => FLAGS_DRV,
                IFLA_XDP_HW_PROG_ID => FLAGS_HW,
                _ => return,
            };
            if let Some(id) = rd_u32(v, 0).filter(|&id| id != 0) {
                out.push(Attached {
                    prog_id: id,
                    mode_flags: flags,
                });
            }
        });
    });
    Ok(out)
}

/// Detaches the netlink-attached program of mode `mode_flags` from
/// `ifindex` (fails with EBUSY if a bpf_link holds it).
pub(super) fn detach_netlink(ifindex: u32, mode_flags: u32) -> io::Result<()> {
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
    let mut req = link_request(libc::RTM_SETLINK, flags, ifindex);
    put_u16(&mut req, 4 + 8 + 8);
    put_u16(&mut req, IFLA_XDP | NLA_F_NESTED);
    put_u16(&mut req, 8);
    put_u16(&mut req, IFLA_XDP_FD);
    put_u32(&mut req, u32::MAX); // fd -1: remove
    put_u16(&mut req, 8);
    put_u16(&mut req, IFLA_XDP_FLAGS);
    put_u32(&mut req, mode_flags);
    finish(&mut req);
    transact(&req).map(|_| ())
}

/// `bpf(cmd, attr)`; returns the non-negative result.
fn sys_bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, writable bpf_attr prefix of the size passed
    // (the kernel reads at most that many bytes and writes only the fields
    // of this command).
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            (attr as *mut T).cast::<u8>(),
            size_of::<T>() as libc::c_ulong,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r)
}

#[repr(C)]
#[derive(Default)]
struct IdAttr {
    id: u32,
    next_id: u32,
    open_flags: u32,
}

#[repr(C)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

#[repr(C, align(8))]
struct InfoBuf([u8; 256]);

fn fd_by_id(cmd: libc::c_long, id: u32) -> io::Result<OwnedFd> {
    let mut a = IdAttr {
        id,
        ..IdAttr::default()
    };
    let fd = sys_bpf(cmd, &mut a)?;
    // SAFETY: the kernel returned a fresh descriptor that nothing owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn info(fd: &OwnedFd) -> io::Result<InfoBuf> {
    let mut buf = InfoBuf([0; 256]);
    let mut a = InfoAttr {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: buf.0.len() as u32,
        info: buf.0.as_mut_ptr() as u64,
    };
    sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &mut a)?;
    Ok(buf)
}

/// The name of program `id` (bpf_prog_info.name, at offset 64).
pub(super) fn program_name(id: u32) -> io::Result<String> {
    let fd = fd_by_id(BPF_PROG_GET_FD_BY_ID, id)?;
    let buf = info(&fd)?;
    let name = buf.0.get(64..80).unwrap_or_default();
    let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
    Ok(String::from_utf8_lossy(name.get(..end).unwrap_or_default()).into_owned())
}

/// The XDP bpf_links on `ifindex`.
pub(super) fn xdp_links(ifindex: u32) -> io::Result<Vec<XdpLinkInfo>> {
    let mut out = Vec::new();
    let mut id = 0;
    loop {
        let mut a = IdAttr {
            id,
            ..IdAttr::default()
        };
        match sys_bpf(BPF_LINK_GET_NEXT_ID, &mut a) {
            Ok(_) => id = a.next_id,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(out),
            Err(e) => return Err(e),
        }
        // A link may vanish between the two calls.
        let Ok(fd) = fd_by_id(BPF_LINK_GET_FD_BY_ID, id) else {
            continue;
        };
        let Ok(buf) = info(&fd) else { continue };
        // bpf_link_info: type, id, prog_id, then the union (xdp.ifindex at 16).
        let (Some(kind), Some(prog_id), Some(dev)) =
            (rd_u32(&buf.0, 0), rd_u32(&buf.0, 8), rd_u32(&buf.0, 16))
        else {
            continue;
        };
        if kind == BPF_LINK_TYPE_XDP && dev == ifindex {
            out.push(XdpLinkInfo {
                link_id: id,
                prog_id,
            });
        }
    }
}

/// Detaches bpf_link `link_id` from its interface (whoever holds it).
pub(super) fn detach_link(link_id: u32) -> io::Result<()> {
    let fd = fd_by_id(BPF_LINK_GET_FD_BY_ID, link_id)?;
    let mut a = fd.as_raw_fd() as u32;
    sys_bpf(BPF_LINK_DETACH, &mut a).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_walk_stops_on_garbage() {
        let mut seen = Vec::new();
        // One attribute (type 6, u32 7), then a truncated one.
        let b = [8, 0, 6, 0, 7, 0, 0, 0, 200, 0, 1];
        attrs(&b, |k, v| seen.push((k, v.to_vec())));
        assert_eq!(seen, vec![(6, vec![7, 0, 0, 0])]);
        attrs(&[0, 0, 0, 0], |_, _| panic!("zero-length attribute walked"));
    }
}
