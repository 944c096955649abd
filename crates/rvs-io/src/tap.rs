//! The TAP backend: the exception path to the host kernel (what DPVS calls
//! KNI). Frames the worker transmits are delivered to the kernel as if they
//! had arrived on the TAP interface; frames the kernel sends out of the TAP
//! interface are what the worker receives.
//!
//! The device is created with plain `ioctl`s on `/dev/net/tun` (`TUNSETIFF`
//! with `IFF_TAP | IFF_NO_PI`, then the MAC address, MTU and `IFF_UP` set on
//! a control socket): four calls at set-up, no dependency beyond `libc`,
//! which AF_PACKET needs anyway. It lives as long as the [`TapIo`]: closing
//! the descriptor removes the interface. Addresses and routes on the kernel
//! side are the host's business (`ip addr add ... dev NAME`).
//!
//! A TAP descriptor moves one frame per `read`/`write`; there is no batched
//! call for it, so each burst costs one syscall per frame plus one that finds
//! the queue empty. That is acceptable on the exception path (SSH, BGP, VRRP
//! to the host), not for balanced traffic.

use std::ffi::CStr;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::af_packet::{ifindex_of, poll_in};
use crate::{Frame, HEADROOM, IoStats, PacketIo, Pool};

/// How to create a TAP port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapConfig {
    /// Interface name (at most 15 bytes); a `%d` in it lets the kernel pick
    /// a number.
    pub name: String,
    /// MAC address of the kernel's side (usually the port's own MAC, so the
    /// kernel answers for the same address rvs uses); the kernel picks a
    /// random one if `None`.
    pub mac: Option<[u8; 6]>,
    /// MTU of the interface; the kernel default (1500) if `None`.
    pub mtu: Option<u32>,
    /// Buffers in the pool.
    pub buffers: u32,
    /// Size of each buffer (headroom included).
    pub buffer_size: usize,
}

impl Default for TapConfig {
    fn default() -> Self {
        TapConfig {
            name: "rvs%d".to_string(),
            mac: None,
            mtu: None,
            buffers: 512,
            buffer_size: 2048,
        }
    }
}

/// A TAP port.
#[derive(Debug)]
pub struct TapIo {
    fd: OwnedFd,
    /// A socket in the device's namespace, for interface ioctls from any
    /// thread.
    ctl: OwnedFd,
    name: String,
    ifindex: u32,
    pool: Pool,
    stats: IoStats,
}

impl TapIo {
    /// Creates the TAP interface (in the calling thread's network
    /// namespace), sets its MAC and MTU, and brings it up.
    pub fn create(config: &TapConfig) -> io::Result<Self> {
        if config.buffers == 0 || config.buffer_size <= HEADROOM || config.buffer_size > 65535 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "pool buffers must be larger than the headroom, at most 64 KiB",
            ));
        }
        let mut req = ifreq(&config.name)?;
        // SAFETY: a NUL-terminated path; the flags ask for a non-blocking,
        // close-on-exec descriptor.
        let raw = unsafe {
            libc::open(
                c"/dev/net/tun".as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        req.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
        ioctl(fd.as_fd(), libc::TUNSETIFF as libc::c_ulong, &mut req)?;
        // The kernel wrote the final name (with `%d` resolved).
        // SAFETY: the kernel NUL-terminates ifr_name (IFNAMSIZ bytes).
        let name = unsafe { CStr::from_ptr(req.ifr_name.as_ptr()) }
            .to_string_lossy()
            .into_owned();

        let ctl = control_socket()?;
        if let Some(mac) = config.mac {
            let mut r = ifreq(&name)?;
            // SAFETY: writing the sockaddr member of a zeroed union.
            let sa = unsafe { &mut r.ifr_ifru.ifru_hwaddr };
            sa.sa_family = libc::ARPHRD_ETHER;
            for (d, s) in sa.sa_data.iter_mut().zip(mac) {
                *d = s as libc::c_char;
            }
            ioctl(ctl.as_fd(), libc::SIOCSIFHWADDR, &mut r)?;
        }
        if let Some(mtu) = config.mtu {
            let mut r = ifreq(&name)?;
            r.ifr_ifru.ifru_mtu = i32::try_from(mtu).map_err(|_| io::ErrorKind::InvalidInput)?;
            ioctl(ctl.as_fd(), libc::SIOCSIFMTU, &mut r)?;
        }
        let mut r = ifreq(&name)?;
        ioctl(ctl.as_fd(), libc::SIOCGIFFLAGS, &mut r)?;
        // SAFETY: SIOCGIFFLAGS filled the flags member.
        let flags = unsafe { r.ifr_ifru.ifru_flags };
        r.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
        ioctl(ctl.as_fd(), libc::SIOCSIFFLAGS, &mut r)?;

        let ifindex = ifindex_of(&name)?;
        Ok(TapIo {
            fd,
            ctl,
            name,
            ifindex,
            pool: Pool::new(config.buffers, config.buffer_size),
            stats: IoStats::default(),
        })
    }

    /// The interface's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The interface's index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The interface's MAC address (a syscall: not for the burst path).
    pub fn mac(&self) -> io::Result<[u8; 6]> {
        let mut r = ifreq(&self.name)?;
        ioctl(self.ctl.as_fd(), libc::SIOCGIFHWADDR, &mut r)?;
        // SAFETY: SIOCGIFHWADDR filled the hwaddr member.
        let sa = unsafe { r.ifr_ifru.ifru_hwaddr };
        let mut mac = [0u8; 6];
        for (d, s) in mac.iter_mut().zip(sa.sa_data) {
            *d = s as u8;
        }
        Ok(mac)
    }

    /// Buffers free in the pool (to check for leaks).
    pub fn free_buffers(&self) -> usize {
        self.pool.available()
    }

    /// Sleeps until the kernel has sent a frame or `timeout` passes. True if
    /// one is ready.
    pub fn wait(&self, timeout: Duration) -> io::Result<bool> {
        poll_in(self.fd.as_fd(), timeout)
    }
}

impl PacketIo for TapIo {
    fn rx_burst(&mut self, frames: &mut [Frame]) -> io::Result<usize> {
        let mut n = 0;
        for slot in frames.iter_mut() {
            // With no free buffer the frames wait in the TAP queue (the
            // kernel bounds it by the interface's txqueuelen).
            let Some(id) = self.pool.alloc() else {
                break;
            };
            let buf = self.pool.buffer(id).get_mut(HEADROOM..).unwrap_or_default();
            // SAFETY: `buf` is a valid writable region of `buf.len()` bytes.
            let r = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if r <= 0 {
                self.pool.free(id);
                let e = io::Error::last_os_error();
                if r == 0 || matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) {
                    break;
                }
                if n == 0 {
                    return Err(e);
                }
                break;
            }
            let len = r as usize;
            self.stats.rx_frames += 1;
            self.stats.rx_bytes += len as u64;
            *slot = Frame {
                id,
                start: HEADROOM as u16,
                len: len as u16,
            };
            n += 1;
        }
        if n > 0 {
            self.stats.rx_bursts += 1;
        }
        Ok(n)
    }

    /// Writes the frames to the kernel. A frame the kernel refuses (for
    /// instance shorter than an Ethernet header) stops the burst: it stays
    /// the caller's and, if it is the first, the error is returned.
    fn tx_burst(&mut self, frames: &[Frame]) -> io::Result<usize> {
        let mut taken = 0;
        for f in frames {
            let start = usize::from(f.start);
            let len = usize::from(f.len);
            let Some(data) = self.pool.buffer(f.id).get(start..start + len) else {
                // Not a frame of this pool: drop it.
                self.pool.free(f.id);
                taken += 1;
                continue;
            };
            // SAFETY: `data` is a valid readable region of `data.len()` bytes.
            let r = unsafe { libc::write(self.fd.as_raw_fd(), data.as_ptr().cast(), data.len()) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) || taken > 0 {
                    break;
                }
                return Err(e);
            }
            self.stats.tx_frames += 1;
            self.stats.tx_bytes += len as u64;
            self.pool.free(f.id);
            taken += 1;
        }
        self.stats.tx_ring_full += (frames.len() - taken) as u64;
        Ok(taken)
    }

    fn alloc(&mut self) -> Option<Frame> {
        self.pool.alloc().map(Frame::empty)
    }

    fn free(&mut self, frame: Frame) {
        self.pool.free(frame.id);
    }

    fn buffer(&mut self, frame: &Frame) -> &mut [u8] {
        self.pool.buffer(frame.id)
    }

    fn stats(&self) -> IoStats {
        self.stats
    }
}

impl AsFd for TapIo {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for TapIo {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// A zeroed `ifreq` naming `name`.
fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "interface names are 1 to 15 bytes",
        ));
    }
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut r: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in r.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    Ok(r)
}

/// A datagram socket to carry interface ioctls.
fn control_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket creation.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ioctl(fd: BorrowedFd<'_>, request: libc::c_ulong, req: &mut libc::ifreq) -> io::Result<()> {
    const _: () = assert!(size_of::<libc::ifreq>() >= 32);
    // SAFETY: every request used here takes a pointer to a `struct ifreq`,
    // which `req` is, valid and writable for the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), request, req as *mut libc::ifreq) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
