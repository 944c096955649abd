//! A port's link-layer multicast filter opened for everything.
//!
//! The kernel joins multicast groups (VRRP's 224.0.0.18 and ff02::12,
//! IPv6 neighbour discovery's solicited-node groups) on the interfaces
//! where its sockets ask for them: with rvs, on the TAP. The port under
//! AF_XDP or AF_PACKET is a different netdev whose filter knows nothing of
//! those joins, so a NIC (or a macvlan) would drop the frames before rvs
//! could hand them to the TAP. [`AllMulticast`] puts the port in
//! all-multicast mode for as long as it lives, through an AF_PACKET
//! membership (`PACKET_MR_ALLMULTI`): the kernel counts such memberships
//! per interface and undoes them when the socket closes, so a crash leaves
//! nothing behind. The socket is bound to no protocol and receives
//! nothing.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// All-multicast mode on one interface while this lives.
#[derive(Debug)]
pub struct AllMulticast {
    _fd: OwnedFd,
}

impl AllMulticast {
    /// Turns it on for the interface with index `ifindex`.
    pub fn enable(ifindex: u32) -> io::Result<AllMulticast> {
        // SAFETY: plain socket(2); protocol 0: no frame is delivered to it.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mreq = libc::packet_mreq {
            mr_ifindex: i32::try_from(ifindex).map_err(|_| io::ErrorKind::InvalidInput)?,
            mr_type: libc::PACKET_MR_ALLMULTI as u16,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        // SAFETY: setsockopt with a pointer to a live packet_mreq and its size.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_ADD_MEMBERSHIP,
                (&raw const mreq).cast(),
                size_of::<libc::packet_mreq>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(AllMulticast { _fd: fd })
    }
}
