//! The 5-tuple that identifies a flow in one direction.
//!
//! Addresses are stored as 16 bytes (IPv4 as an IPv4-mapped IPv6 address) so
//! that a key has one fixed size and layout for both families: the connection
//! table hashes and compares it as plain bytes.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Protocol, source and destination address and port of one direction of a
/// flow. For ICMP echo, the ports hold the echo identifier (both ports), as
/// IPVS does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    /// Source address (IPv4 mapped into IPv6).
    pub src: Ipv6Addr,
    /// Destination address (IPv4 mapped into IPv6).
    pub dst: Ipv6Addr,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// IP protocol number (`rvs_wire::ip_proto`).
    pub proto: u8,
}

impl FlowKey {
    /// A key from addresses of either family.
    pub fn new(proto: u8, src: IpAddr, src_port: u16, dst: IpAddr, dst_port: u16) -> Self {
        FlowKey {
            src: to_v6(src),
            dst: to_v6(dst),
            src_port,
            dst_port,
            proto,
        }
    }

    /// A key from IPv4 addresses.
    #[inline]
    pub fn v4(proto: u8, src: Ipv4Addr, src_port: u16, dst: Ipv4Addr, dst_port: u16) -> Self {
        FlowKey {
            src: src.to_ipv6_mapped(),
            dst: dst.to_ipv6_mapped(),
            src_port,
            dst_port,
            proto,
        }
    }

    /// The same flow seen from the other direction.
    pub fn reversed(&self) -> Self {
        FlowKey {
            src: self.dst,
            dst: self.src,
            src_port: self.dst_port,
            dst_port: self.src_port,
            proto: self.proto,
        }
    }

    /// The source address in its own family.
    pub fn src_ip(&self) -> IpAddr {
        from_v6(self.src)
    }

    /// The destination address in its own family.
    pub fn dst_ip(&self) -> IpAddr {
        from_v6(self.dst)
    }
}

/// Maps an address into the 16-byte form used by keys.
pub fn to_v6(addr: IpAddr) -> Ipv6Addr {
    match addr {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

/// The inverse of [`to_v6`]: IPv4-mapped addresses come back as IPv4.
pub fn from_v6(addr: Ipv6Addr) -> IpAddr {
    match addr.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(addr),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_round_trip_and_reverse() {
        let k = FlowKey::v4(
            6,
            Ipv4Addr::new(10, 0, 0, 1),
            1234,
            Ipv4Addr::new(10, 0, 0, 2),
            80,
        );
        assert_eq!(k.src_ip(), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(k.reversed().reversed(), k);
        assert_eq!(k.reversed().dst_port, 1234);
        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let k6 = FlowKey::new(17, v6.into(), 1, v6.into(), 2);
        assert_eq!(k6.dst_ip(), IpAddr::V6(v6));
    }
}
