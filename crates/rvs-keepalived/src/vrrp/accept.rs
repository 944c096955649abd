//! Which received advertisements an instance acts on: the checks of RFC
//! 3768 §7.1 / RFC 5798 §7.1, in the order and with the outcome keepalived
//! 2.2.7 gives them (`vrrp_check_packet`), so a segment shared with
//! keepalived behaves the same whichever daemon receives:
//! - the packet must be exactly one advertisement with a valid checksum
//!   ([`super::packet::decode`]);
//! - TTL / hop limit 255 when multicast (unicast adverts may be routed);
//! - the configured version;
//! - v2: the configured auth type and password, and the same advert
//!   interval (keepalived drops a mismatch "to prevent concurrent VRID");
//! - the same number of addresses, and every configured VIP present
//!   (keepalived refuses both, `vrrp_strict` or not; with
//!   `vrrp_skip_check_adv_addr` the list is only checked when the sender
//!   is not the master already known);
//! - multicast when no unicast peers are configured, unicast when some
//!   are.
//!
//! Another virtual router id is not an error: it is another instance
//! sharing the segment.

use std::net::IpAddr;

use super::packet::{AUTH_LEN, Advert, DecodeError, Version};

/// What one instance expects of an advert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expect {
    /// Version.
    pub version: Version,
    /// Virtual router id.
    pub vrid: u8,
    /// v2 auth type.
    pub auth_type: u8,
    /// v2 auth data.
    pub auth_data: [u8; AUTH_LEN],
    /// The configured interval, in centiseconds (compared in v2).
    pub interval_cs: u16,
    /// The VIPs of the advert's family.
    pub vips: Vec<IpAddr>,
    /// Unicast peers are configured.
    pub unicast: bool,
}

/// How the advert arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Arrival {
    /// TTL / hop limit, when the kernel reported it.
    pub ttl: Option<u8>,
    /// Sent to a multicast group.
    pub multicast: bool,
    /// Check the address list (false only with
    /// `vrrp_skip_check_adv_addr` and a known master).
    pub check_addrs: bool,
}

/// Why an advert is refused; the name counts it in the dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reject {
    /// Not a well-formed advertisement.
    Decode(DecodeError),
    /// TTL / hop limit not 255.
    Ttl(u8),
    /// Version other than configured.
    Version,
    /// v2 auth type other than configured.
    AuthType,
    /// v2 password wrong.
    Password,
    /// v2 interval other than configured.
    Interval,
    /// Address count differs.
    AddrCount,
    /// A configured VIP is missing.
    AddrList,
    /// Multicast when unicast peers are configured, or the reverse.
    Cast,
}

impl Reject {
    /// A short name for counters.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Reject::Decode(e) => e.reason(),
            Reject::Ttl(_) => "ttl",
            Reject::Version => "version",
            Reject::AuthType => "auth_type",
            Reject::Password => "password",
            Reject::Interval => "interval",
            Reject::AddrCount => "addr_count",
            Reject::AddrList => "addr_list",
            Reject::Cast => "cast",
        }
    }
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reject::Decode(e) => write!(f, "{e}"),
            Reject::Ttl(t) => write!(f, "invalid TTL/hop limit {t}, expected 255"),
            Reject::Version => write!(f, "wrong version"),
            Reject::AuthType => write!(f, "wrong authentication type"),
            Reject::Password => write!(f, "invalid password"),
            Reject::Interval => write!(f, "advertisement interval mismatch"),
            Reject::AddrCount => write!(f, "unexpected address count"),
            Reject::AddrList => write!(f, "a virtual address is missing"),
            Reject::Cast => write!(f, "multicast/unicast mismatch"),
        }
    }
}

/// The outcome for one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Act on it.
    Accept,
    /// For another virtual router.
    OtherVrid,
    /// Refused.
    Reject(Reject),
}

/// Checks `a` against `e`.
pub(crate) fn check(a: &Advert, how: &Arrival, e: &Expect) -> Verdict {
    match check_inner(a, how, e) {
        Ok(v) => v,
        Err(r) => Verdict::Reject(r),
    }
}

fn check_inner(a: &Advert, how: &Arrival, e: &Expect) -> Result<Verdict, Reject> {
    if a.vrid != e.vrid {
        return Ok(Verdict::OtherVrid);
    }
    if !e.unicast
        && let Some(t) = how.ttl
        && t != 255
    {
        return Err(Reject::Ttl(t));
    }
    if a.version != e.version {
        return Err(Reject::Version);
    }
    if e.version == Version::V2 {
        if a.auth_type != e.auth_type {
            return Err(Reject::AuthType);
        }
        if e.auth_type != 0 && !constant_time_eq(&a.auth_data, &e.auth_data) {
            return Err(Reject::Password);
        }
        if a.interval_cs != e.interval_cs {
            return Err(Reject::Interval);
        }
    }
    if how.check_addrs && a.addrs.len() != e.vips.len() {
        return Err(Reject::AddrCount);
    }
    if how.multicast == e.unicast {
        return Err(Reject::Cast);
    }
    if how.check_addrs && !e.vips.iter().all(|v| a.addrs.contains(v)) {
        return Err(Reject::AddrList);
    }
    Ok(Verdict::Accept)
}

fn constant_time_eq(a: &[u8; AUTH_LEN], b: &[u8; AUTH_LEN]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::super::packet::{AUTH_NONE, AUTH_PASS, password_bytes};
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("addr")
    }

    fn expect() -> Expect {
        Expect {
            version: Version::V2,
            vrid: 51,
            auth_type: AUTH_PASS,
            auth_data: password_bytes(b"secret"),
            interval_cs: 100,
            vips: vec![ip("10.0.0.100"), ip("10.0.0.101")],
            unicast: false,
        }
    }

    fn advert() -> Advert {
        Advert {
            version: Version::V2,
            vrid: 51,
            priority: 100,
            interval_cs: 100,
            addrs: vec![ip("10.0.0.101"), ip("10.0.0.100")],
            auth_type: AUTH_PASS,
            auth_data: password_bytes(b"secret"),
        }
    }

    const MCAST: Arrival = Arrival {
        ttl: Some(255),
        multicast: true,
        check_addrs: true,
    };

    fn verdict(f: impl FnOnce(&mut Advert), how: Arrival) -> Verdict {
        let mut a = advert();
        f(&mut a);
        check(&a, &how, &expect())
    }

    #[test]
    fn accepts_in_any_address_order() {
        assert_eq!(verdict(|_| {}, MCAST), Verdict::Accept);
    }

    #[test]
    fn refusals() {
        let rej = |r| Verdict::Reject(r);
        assert_eq!(verdict(|a| a.vrid = 52, MCAST), Verdict::OtherVrid);
        let ttl = Arrival {
            ttl: Some(254),
            ..MCAST
        };
        assert_eq!(verdict(|_| {}, ttl), rej(Reject::Ttl(254)));
        assert_eq!(
            verdict(|a| a.version = Version::V3, MCAST),
            rej(Reject::Version)
        );
        assert_eq!(
            verdict(|a| a.auth_type = AUTH_NONE, MCAST),
            rej(Reject::AuthType)
        );
        assert_eq!(
            verdict(|a| a.auth_data = password_bytes(b"secreT"), MCAST),
            rej(Reject::Password)
        );
        assert_eq!(
            verdict(|a| a.interval_cs = 200, MCAST),
            rej(Reject::Interval)
        );
        assert_eq!(
            verdict(|a| a.addrs.truncate(1), MCAST),
            rej(Reject::AddrCount)
        );
        assert_eq!(
            verdict(|a| a.addrs[0] = ip("10.0.0.102"), MCAST),
            rej(Reject::AddrList)
        );
        let unicast = Arrival {
            multicast: false,
            ..MCAST
        };
        assert_eq!(verdict(|_| {}, unicast), rej(Reject::Cast));
    }

    #[test]
    fn skip_check_adv_addr_and_unicast_ttl() {
        let skip = Arrival {
            check_addrs: false,
            ..MCAST
        };
        assert_eq!(verdict(|a| a.addrs.truncate(1), skip), Verdict::Accept);
        // Unicast adverts may cross routers: any TTL.
        let mut e = expect();
        e.unicast = true;
        let how = Arrival {
            ttl: Some(64),
            multicast: false,
            check_addrs: true,
        };
        assert_eq!(check(&advert(), &how, &e), Verdict::Accept);
    }
}
