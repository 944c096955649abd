//! What VRRP needs to know about a kernel interface: its index, MAC,
//! primary IPv4 address, IPv6 link-local address and whether it is up.
//!
//! Read once when an instance starts (the primary address must be read
//! before any VIP lands on the interface) with getifaddrs(3) and sysfs,
//! both cheap and synchronous.

use std::ffi::{CStr, CString};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A kernel interface's facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Iface {
    /// Its name.
    pub name: String,
    /// Its index.
    pub index: u32,
    /// Its MAC.
    pub mac: [u8; 6],
    /// The first IPv4 address the kernel lists (the primary).
    pub ipv4: Option<Ipv4Addr>,
    /// Its IPv6 link-local address.
    pub link_local: Option<Ipv6Addr>,
}

impl Iface {
    /// Looks `name` up.
    pub(crate) fn lookup(name: &str) -> io::Result<Iface> {
        let c = CString::new(name)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface name"))?;
        // SAFETY: a valid NUL-terminated name.
        let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
        if index == 0 {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no interface {name}"),
            ));
        }
        let mac = read_mac(name).unwrap_or([0; 6]);
        let (ipv4, link_local) = addresses(name)?;
        Ok(Iface {
            name: name.to_string(),
            index,
            mac,
            ipv4,
            link_local,
        })
    }

    /// The address adverts of `v6` family are sent from.
    pub(crate) fn source(&self, v6: bool) -> Option<IpAddr> {
        if v6 {
            self.link_local.map(IpAddr::V6)
        } else {
            self.ipv4.map(IpAddr::V4)
        }
    }
}

/// Whether `name` is up (operstate `up`, or `unknown` as TAPs and
/// loopbacks report); a missing interface is down.
pub(crate) fn is_up(name: &str) -> bool {
    match std::fs::read_to_string(format!("/sys/class/net/{name}/operstate")) {
        Ok(s) => matches!(s.trim(), "up" | "unknown"),
        Err(_) => false,
    }
}

fn read_mac(name: &str) -> Option<[u8; 6]> {
    let s = std::fs::read_to_string(format!("/sys/class/net/{name}/address")).ok()?;
    parse_mac(s.trim())
}

/// `aa:bb:cc:dd:ee:ff`.
pub(crate) fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut out {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// The first IPv4 address and the link-local IPv6 address of `name`.
fn addresses(name: &str) -> io::Result<(Option<Ipv4Addr>, Option<Ipv6Addr>)> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below.
    if unsafe { libc::getifaddrs(&raw mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let (mut v4, mut v6) = (None, None);
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: a node of the list getifaddrs returned, alive until
        // freeifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: a NUL-terminated name from getifaddrs.
        let n = unsafe { CStr::from_ptr(ifa.ifa_name) };
        if n.to_bytes() != name.as_bytes() {
            continue;
        }
        // SAFETY: ifa_addr points to a sockaddr of the family it says.
        let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
        if family == libc::AF_INET && v4.is_none() {
            // SAFETY: an AF_INET sockaddr is a sockaddr_in.
            let sin = unsafe { &*ifa.ifa_addr.cast::<libc::sockaddr_in>() };
            v4 = Some(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)));
        } else if family == libc::AF_INET6 && v6.is_none() {
            // SAFETY: an AF_INET6 sockaddr is a sockaddr_in6.
            let sin6 = unsafe { &*ifa.ifa_addr.cast::<libc::sockaddr_in6>() };
            let a = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            if a.is_unicast_link_local() {
                v6 = Some(a);
            }
        }
    }
    // SAFETY: the list from getifaddrs, freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok((v4, v6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_facts() {
        let lo = Iface::lookup("lo").expect("lo");
        assert!(lo.index > 0);
        assert_eq!(lo.ipv4, Some(Ipv4Addr::LOCALHOST));
        assert!(Iface::lookup("no-such-if0").is_err());
        assert!(!is_up("no-such-if0"));
    }

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("02:52:56:53:00:0a"),
            Some([2, 0x52, 0x56, 0x53, 0, 10])
        );
        assert_eq!(parse_mac("02:52:56"), None);
        assert_eq!(parse_mac("02:52:56:53:00:0a:00"), None);
    }
}
