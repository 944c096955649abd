//! Telling the segment a VIP moved: gratuitous ARP (IPv4) and
//! unsolicited neighbour advertisement (IPv6), as whole Ethernet frames
//! on an AF_PACKET socket of the interface.
//!
//! The interface is rvsd's TAP or a plain kernel interface: rvsd sends
//! out of the port a gratuitous ARP the kernel side writes for an address
//! it owns (with the port's MAC), so the same frames serve both modes
//! (rvsd also sends one of its own when the address is added). Frames
//! are built here rather than left to the kernel so the repeats of
//! `garp_master_repeat` / `garp_master_delay` are ours to time.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use rvs_wire::checksum::ipv6_pseudo_header;

/// A gratuitous ARP request for `vip` from `mac` (sender and target
/// address both `vip`, broadcast).
pub(crate) fn garp_frame(mac: [u8; 6], vip: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x08, 0x06]);
    // Ethernet, IPv4, 6, 4, request.
    f.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&vip.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&vip.octets());
    f
}

/// An unsolicited neighbour advertisement for `vip` (override flag,
/// target link-layer address `mac`) from `src` (the link-local address)
/// to all nodes.
pub(crate) fn na_frame(mac: [u8; 6], src: Ipv6Addr, vip: Ipv6Addr) -> Vec<u8> {
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let mut icmp = Vec::with_capacity(32);
    icmp.extend_from_slice(&[136, 0, 0, 0, 0x20, 0, 0, 0]);
    icmp.extend_from_slice(&vip.octets());
    icmp.extend_from_slice(&[2, 1]);
    icmp.extend_from_slice(&mac);
    let mut c = ipv6_pseudo_header(src, all_nodes, 58, 32);
    c.add_bytes(&icmp);
    icmp[2..4].copy_from_slice(&c.finish().to_be_bytes());
    let mut f = Vec::with_capacity(14 + 40 + 32);
    f.extend_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x86, 0xdd]);
    f.extend_from_slice(&[0x60, 0, 0, 0, 0, 32, 58, 255]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&all_nodes.octets());
    f.extend_from_slice(&icmp);
    f
}

/// The announcement frames for `vips` on an interface with `mac` and
/// link-local `ll` (IPv6 VIPs are skipped without one).
pub(crate) fn frames(mac: [u8; 6], ll: Option<Ipv6Addr>, vips: &[IpAddr]) -> Vec<Vec<u8>> {
    vips.iter()
        .filter_map(|v| match v {
            IpAddr::V4(a) => Some(garp_frame(mac, *a)),
            IpAddr::V6(a) => ll.map(|ll| na_frame(mac, ll, *a)),
        })
        .collect()
}

/// Sends `frames` out of interface `ifindex`.
pub(crate) fn send(ifindex: u32, frames: &[Vec<u8>]) -> io::Result<()> {
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket(2).
    let raw = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            i32::from(proto),
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: sockaddr_ll is plain data; zeroed is valid.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = ifindex as i32;
    for f in frames {
        // SAFETY: sendto from a buffer we own, to a valid sockaddr_ll.
        let n = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                f.as_ptr().cast(),
                f.len(),
                0,
                (&raw const sll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [2, 0x52, 0x56, 0x53, 0, 1];

    #[test]
    fn garp_layout() {
        let f = garp_frame(MAC, Ipv4Addr::new(10, 0, 0, 100));
        assert_eq!(f.len(), 42);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        assert_eq!(&f[20..22], &[0, 1]); // request
        assert_eq!(&f[22..28], &MAC);
        assert_eq!(&f[28..32], &[10, 0, 0, 100]);
        assert_eq!(&f[38..42], &[10, 0, 0, 100]);
    }

    #[test]
    fn na_checksum_verifies() {
        let src: Ipv6Addr = "fe80::52:56ff:fe53:1".parse().expect("addr");
        let vip: Ipv6Addr = "fd00::100".parse().expect("addr");
        let f = na_frame(MAC, src, vip);
        assert_eq!(f.len(), 14 + 40 + 32);
        let icmp = &f[54..];
        let all = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
        let mut c = ipv6_pseudo_header(src, all, 58, 32);
        c.add_bytes(icmp);
        assert_eq!(c.fold(), 0xffff);
        assert_eq!(&icmp[8..24], &vip.octets());
        // Link-local missing: IPv6 VIPs are not announced.
        assert_eq!(frames(MAC, None, &[IpAddr::V6(vip)]).len(), 0);
    }
}
