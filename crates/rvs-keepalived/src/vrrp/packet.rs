//! The VRRP advertisement on the wire: VRRPv2 (RFC 3768 §5) and VRRPv3
//! (RFC 5798 §5), without the IP header (the kernel's raw socket adds
//! and strips it; IPv4 receive hands it over and [`super::socket`] takes
//! it off).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! |Version| Type  | Virtual Rtr ID|   Priority    | Count IPvX Addr|
//! v2: | Auth Type | Adver Int (s) |          Checksum           |
//! v3: |(rsvd)| Max Adver Int (cs) |          Checksum           |
//! |                       IPvX Address(es)                      |
//! v2 only: Authentication Data (8 bytes)
//! ```
//!
//! The checksums differ: v2 sums the VRRP message alone (auth data
//! included); v3 sums the IPv4 or IPv6 pseudo-header too (RFC 5798
//! §5.2.8), so decoding and encoding take the packet's addresses.
//! Decoding refuses anything that is not exactly one well-formed
//! advertisement (keepalived also refuses a packet longer than its
//! address count says).

use std::net::IpAddr;

use rvs_wire::checksum::{Checksum, ipv4_pseudo_header, ipv6_pseudo_header};

/// IP protocol number of VRRP.
pub(crate) const PROTO_VRRP: u8 = 112;
/// The one packet type: ADVERTISEMENT.
const TYPE_ADVERT: u8 = 1;
/// The fixed header.
const HEADER_LEN: usize = 8;
/// VRRPv2's authentication data.
pub(crate) const AUTH_LEN: usize = 8;
/// v2 auth type: none.
pub(crate) const AUTH_NONE: u8 = 0;
/// v2 auth type: simple text password (RFC 2338; dropped by RFC 3768 but
/// still sent and checked by keepalived).
pub(crate) const AUTH_PASS: u8 = 1;

/// Protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub(crate) enum Version {
    /// RFC 3768 (IPv4 only, seconds, optional password).
    V2,
    /// RFC 5798 (IPv4 and IPv6, centiseconds, pseudo-header checksum).
    V3,
}

impl Version {
    /// From the configuration's number (2 or 3).
    pub(crate) fn from_number(n: u8) -> Option<Version> {
        match n {
            2 => Some(Version::V2),
            3 => Some(Version::V3),
            _ => None,
        }
    }

    fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

/// One advertisement, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Advert {
    /// Version.
    pub version: Version,
    /// Virtual router id.
    pub vrid: u8,
    /// Sender's priority (0: the master is stopping).
    pub priority: u8,
    /// Advertisement interval in centiseconds (v2's seconds × 100; v3's
    /// 12-bit field).
    pub interval_cs: u16,
    /// The virtual addresses, all of the packet's family.
    pub addrs: Vec<IpAddr>,
    /// v2 auth type ([`AUTH_NONE`], [`AUTH_PASS`], ...); 0 in v3.
    pub auth_type: u8,
    /// v2 auth data (the password, zero-padded); zeros in v3.
    pub auth_data: [u8; AUTH_LEN],
}

/// Why bytes are not an advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// Fewer bytes than the header and its addresses need.
    Short,
    /// More bytes than the header and its addresses need.
    Long,
    /// Version neither 2 nor 3.
    Version(u8),
    /// Type other than ADVERTISEMENT.
    Type(u8),
    /// The checksum does not verify.
    Checksum,
    /// v2 carried over IPv6, or the source and destination families
    /// differ.
    Family,
}

impl DecodeError {
    /// A short name for counters.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            DecodeError::Short | DecodeError::Long => "length",
            DecodeError::Version(_) => "version",
            DecodeError::Type(_) => "type",
            DecodeError::Checksum => "checksum",
            DecodeError::Family => "family",
        }
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Short => write!(f, "packet too short"),
            DecodeError::Long => write!(f, "packet too long for its address count"),
            DecodeError::Version(v) => write!(f, "version {v}"),
            DecodeError::Type(t) => write!(f, "packet type {t}"),
            DecodeError::Checksum => write!(f, "invalid checksum"),
            DecodeError::Family => write!(f, "address family does not fit the version"),
        }
    }
}

/// The IP addresses a v3 checksum covers (and the family of the packet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Path {
    /// Source address of the IP packet.
    pub src: IpAddr,
    /// Destination address (the group, or a unicast peer).
    pub dst: IpAddr,
}

impl Path {
    fn v6(&self) -> Result<bool, DecodeError> {
        match (self.src, self.dst) {
            (IpAddr::V4(_), IpAddr::V4(_)) => Ok(false),
            (IpAddr::V6(_), IpAddr::V6(_)) => Ok(true),
            _ => Err(DecodeError::Family),
        }
    }
}

/// The running sum a v3 checksum starts from: the pseudo-header.
fn pseudo(path: &Path, len: usize) -> Checksum {
    match (path.src, path.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            ipv4_pseudo_header(s, d, PROTO_VRRP, u16::try_from(len).unwrap_or(u16::MAX))
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            ipv6_pseudo_header(s, d, PROTO_VRRP, u32::try_from(len).unwrap_or(u32::MAX))
        }
        _ => Checksum::new(),
    }
}

/// The sum a message is checked against: v2 the message alone, v3 with
/// the pseudo-header.
fn sum(version: Version, path: &Path, msg: &[u8]) -> Checksum {
    let mut c = match version {
        Version::V2 => Checksum::new(),
        Version::V3 => pseudo(path, msg.len()),
    };
    c.add_bytes(msg);
    c
}

/// Decodes one advertisement received on `path`.
pub(crate) fn decode(buf: &[u8], path: &Path) -> Result<Advert, DecodeError> {
    let v6 = path.v6()?;
    let head: &[u8; HEADER_LEN] = buf.first_chunk().ok_or(DecodeError::Short)?;
    let version = match head[0] >> 4 {
        2 => Version::V2,
        3 => Version::V3,
        v => return Err(DecodeError::Version(v)),
    };
    let kind = head[0] & 0x0f;
    if kind != TYPE_ADVERT {
        return Err(DecodeError::Type(kind));
    }
    if version == Version::V2 && v6 {
        return Err(DecodeError::Family);
    }
    let alen = if v6 { 16 } else { 4 };
    let count = usize::from(head[3]);
    let auth_len = if version == Version::V2 { AUTH_LEN } else { 0 };
    let want = HEADER_LEN + count * alen + auth_len;
    if buf.len() < want {
        return Err(DecodeError::Short);
    }
    if buf.len() > want {
        return Err(DecodeError::Long);
    }
    if sum(version, path, buf).fold() != 0xffff {
        return Err(DecodeError::Checksum);
    }
    let body = &buf[HEADER_LEN..HEADER_LEN + count * alen];
    let addrs = body
        .chunks_exact(alen)
        .map(|c| match <[u8; 16]>::try_from(c) {
            Ok(a) => IpAddr::from(a),
            Err(_) => {
                let mut a = [0u8; 4];
                a.copy_from_slice(c);
                IpAddr::from(a)
            }
        })
        .collect();
    let (interval_cs, auth_type, mut auth_data) = match version {
        Version::V2 => (u16::from(head[5]) * 100, head[4], [0u8; AUTH_LEN]),
        Version::V3 => (
            u16::from_be_bytes([head[4], head[5]]) & 0x0fff,
            AUTH_NONE,
            [0u8; AUTH_LEN],
        ),
    };
    if version == Version::V2 {
        auth_data.copy_from_slice(&buf[want - AUTH_LEN..]);
    }
    Ok(Advert {
        version,
        vrid: head[1],
        priority: head[2],
        interval_cs,
        addrs,
        auth_type,
        auth_data,
    })
}

impl Advert {
    /// The interval as a duration.
    pub(crate) fn interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(u64::from(self.interval_cs) * 10)
    }

    /// The message to send on `path`, checksum filled in. Addresses of
    /// the other family are left out (the caller never mixes them); at
    /// most 255 are sent. v2's interval is whole seconds (at least 1), v3's
    /// at most 4095 cs.
    pub(crate) fn encode(&self, path: &Path) -> Vec<u8> {
        let v6 = matches!(path.src, IpAddr::V6(_));
        let addrs: Vec<&IpAddr> = self
            .addrs
            .iter()
            .filter(|a| a.is_ipv6() == v6)
            .take(255)
            .collect();
        let mut out = Vec::with_capacity(HEADER_LEN + addrs.len() * 16 + AUTH_LEN);
        out.push((self.version.number() << 4) | TYPE_ADVERT);
        out.push(self.vrid);
        out.push(self.priority);
        out.push(u8::try_from(addrs.len()).unwrap_or(u8::MAX));
        match self.version {
            Version::V2 => {
                out.push(self.auth_type);
                out.push(u8::try_from((self.interval_cs / 100).max(1)).unwrap_or(u8::MAX));
            }
            Version::V3 => out.extend_from_slice(&self.interval_cs.min(0x0fff).to_be_bytes()),
        }
        out.extend_from_slice(&[0, 0]);
        for a in addrs {
            match a {
                IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
            }
        }
        if self.version == Version::V2 {
            out.extend_from_slice(&self.auth_data);
        }
        let c = sum(self.version, path, &out).finish();
        out[6..8].copy_from_slice(&c.to_be_bytes());
        out
    }
}

/// The 8 auth-data bytes of a password: its first 8 bytes, zero-padded
/// (keepalived truncates longer ones the same way).
pub(crate) fn password_bytes(pass: &[u8]) -> [u8; AUTH_LEN] {
    let mut out = [0u8; AUTH_LEN];
    for (d, s) in out.iter_mut().zip(pass) {
        *d = *s;
    }
    out
}

#[cfg(test)]
#[path = "packet_tests.rs"]
mod tests;
