//! Receive-side scaling: which worker a reply will arrive on.
//!
//! In FullNAT and SNAT rvs chooses the local port that a backend's reply is
//! addressed to, so it can choose a port whose reply lands on the worker that
//! owns the connection (ARCHITECTURE.md §4). Two ways are offered:
//!
//! - [`Toeplitz`]: when the NIC's RSS key and indirection table are known,
//!   compute the NIC's own hash of the reply 5-tuple and pick a port whose
//!   reply hashes to the owner's queue. This needs no flow-director or ntuple
//!   rules, which many NICs lack (DPVS's most common complaint). The Toeplitz
//!   hash is linear over GF(2), so the hash of a reply is the hash of its
//!   addresses and remote port XOR the hash of the local port alone; the
//!   per-port part is precomputed once, and a port search is a table lookup
//!   per candidate.
//! - [`PortPartition`]: the low bits of the local port name the owning
//!   worker. This is what NIC flow rules with a port mask match on, and what a
//!   worker that receives someone else's reply uses to find the owner
//!   without any shared table.

use core::net::IpAddr;

/// The 40-byte key most drivers use by default (from Microsoft's RSS
/// specification), and the key of its published verification suite.
pub const DEFAULT_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// The longest input hashed: IPv6 source and destination plus two ports.
const MAX_INPUT: usize = 36;

/// A Toeplitz hasher for one RSS key.
#[derive(Debug, Clone)]
pub struct Toeplitz {
    key: [u8; MAX_INPUT + 4],
}

impl Toeplitz {
    /// A hasher for `key`. Keys shorter than 40 bytes are zero-extended
    /// (such keys cannot hash IPv6 4-tuples the way the NIC does, so give
    /// the NIC's real key).
    pub fn new(key: &[u8]) -> Self {
        let mut k = [0u8; MAX_INPUT + 4];
        for (d, s) in k.iter_mut().zip(key) {
            *d = *s;
        }
        Toeplitz { key: k }
    }

    /// The 32-bit Toeplitz hash of `input` (at most 36 bytes are hashed).
    pub fn hash(&self, input: &[u8]) -> u32 {
        let mut result = 0u32;
        // `window` holds key bits [i, i + 32) for input bit i.
        let mut window = u32::from_be_bytes([self.key[0], self.key[1], self.key[2], self.key[3]]);
        let next_key_bytes = self.key.iter().skip(4).chain(core::iter::repeat(&0));
        for (byte, &next) in input.iter().take(MAX_INPUT).zip(next_key_bytes) {
            for bit in 0..8 {
                if byte & (0x80 >> bit) != 0 {
                    result ^= window;
                }
                window = (window << 1) | u32::from((next >> (7 - bit)) & 1);
            }
        }
        result
    }

    /// The hash of a TCP/UDP 4-tuple as a NIC computes it for a received
    /// packet: source address, destination address, source port,
    /// destination port, all in network order. Mixed families hash as zero.
    pub fn hash_tuple(&self, src: IpAddr, dst: IpAddr, src_port: u16, dst_port: u16) -> u32 {
        let mut buf = [0u8; MAX_INPUT];
        let len = match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                buf[..4].copy_from_slice(&s.octets());
                buf[4..8].copy_from_slice(&d.octets());
                buf[8..10].copy_from_slice(&src_port.to_be_bytes());
                buf[10..12].copy_from_slice(&dst_port.to_be_bytes());
                12
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                buf[..16].copy_from_slice(&s.octets());
                buf[16..32].copy_from_slice(&d.octets());
                buf[32..34].copy_from_slice(&src_port.to_be_bytes());
                buf[34..36].copy_from_slice(&dst_port.to_be_bytes());
                36
            }
            _ => return 0,
        };
        self.hash(buf.get(..len).unwrap_or_default())
    }
}

/// The NIC's RSS setup for one port: key, indirection table (RETA) and which
/// worker polls each queue.
#[derive(Debug, Clone)]
pub struct RssSteering {
    toeplitz: Toeplitz,
    /// Indirection table: hash low bits → queue.
    reta: Vec<u16>,
    /// queue → worker.
    queue_worker: Vec<u16>,
    /// For IPv4 and IPv6, the low hash bits contributed by each local port
    /// value when it is the destination port of the reply.
    port_bits_v4: Vec<u16>,
    port_bits_v6: Vec<u16>,
}

/// Why an RSS description was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RssError {
    /// The indirection table is empty or its size is not a power of two.
    BadRetaSize(usize),
    /// A table entry names a queue with no worker.
    UnknownQueue(u16),
    /// The key is shorter than 40 bytes.
    ShortKey(usize),
}

impl core::fmt::Display for RssError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RssError::BadRetaSize(n) => {
                write!(
                    f,
                    "RSS indirection table size {n} is not a power of two ≥ 1"
                )
            }
            RssError::UnknownQueue(q) => {
                write!(
                    f,
                    "RSS indirection table names queue {q}, which no worker polls"
                )
            }
            RssError::ShortKey(n) => write!(f, "RSS key is {n} bytes; 40 are needed"),
        }
    }
}

impl std::error::Error for RssError {}

impl RssSteering {
    /// Builds the steering tables (control-plane work: allocates).
    pub fn new(key: &[u8], reta: Vec<u16>, queue_worker: Vec<u16>) -> Result<Self, RssError> {
        if key.len() < 40 {
            return Err(RssError::ShortKey(key.len()));
        }
        if reta.is_empty() || !reta.len().is_power_of_two() || reta.len() > 1 << 16 {
            return Err(RssError::BadRetaSize(reta.len()));
        }
        if let Some(&q) = reta.iter().find(|&&q| usize::from(q) >= queue_worker.len()) {
            return Err(RssError::UnknownQueue(q));
        }
        let toeplitz = Toeplitz::new(key);
        let mask = (reta.len() - 1) as u32;
        // Linearity: hash(addrs, rport, lport) = hash(addrs, rport, 0) ^ hash(0.., lport).
        let port_bits = |offset: usize| -> Vec<u16> {
            (0..=u16::MAX)
                .map(|p| {
                    let mut input = [0u8; MAX_INPUT];
                    let end = offset + 2;
                    if let Some(port) = input.get_mut(offset..end) {
                        port.copy_from_slice(&p.to_be_bytes());
                    }
                    (toeplitz.hash(input.get(..end).unwrap_or_default()) & mask) as u16
                })
                .collect()
        };
        Ok(RssSteering {
            port_bits_v4: port_bits(10),
            port_bits_v6: port_bits(34),
            toeplitz,
            reta,
            queue_worker,
        })
    }

    fn mask(&self) -> u32 {
        (self.reta.len() - 1) as u32
    }

    /// The worker that receives a packet with this 4-tuple.
    pub fn worker_for(&self, src: IpAddr, dst: IpAddr, src_port: u16, dst_port: u16) -> u16 {
        let h = self.toeplitz.hash_tuple(src, dst, src_port, dst_port) & self.mask();
        self.worker_of_index(h)
    }

    fn worker_of_index(&self, index: u32) -> u16 {
        let queue = self.reta.get(index as usize).copied().unwrap_or(0);
        self.queue_worker
            .get(usize::from(queue))
            .copied()
            .unwrap_or(0)
    }

    /// A port search for replies from `remote:remote_port` to `local`:
    /// candidate local ports in `range`, starting at `start` and wrapping,
    /// whose reply lands on `worker`. The caller filters out ports in use.
    pub fn ports_for<'a>(
        &'a self,
        remote: IpAddr,
        remote_port: u16,
        local: IpAddr,
        worker: u16,
        range: PortRange,
        start: u16,
    ) -> impl Iterator<Item = u16> + 'a {
        let base = self.toeplitz.hash_tuple(remote, local, remote_port, 0) & self.mask();
        let bits = if local.is_ipv4() {
            &self.port_bits_v4
        } else {
            &self.port_bits_v6
        };
        range.iter_from(start).filter(move |&p| {
            let contrib = u32::from(bits.get(usize::from(p)).copied().unwrap_or(0));
            self.worker_of_index(base ^ contrib) == worker
        })
    }
}

/// An inclusive range of local ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// First port.
    pub first: u16,
    /// Last port (inclusive).
    pub last: u16,
}

impl PortRange {
    /// The range rvs uses unless configured: above the well-known ports,
    /// as DPVS starts at 1025.
    pub const DEFAULT: PortRange = PortRange {
        first: 1025,
        last: 65535,
    };

    /// Number of ports in the range (a range with `first > last` is taken
    /// as the single port `first`).
    pub fn count(&self) -> u32 {
        u32::from(self.last).saturating_sub(u32::from(self.first)) + 1
    }

    /// Every port of the range once, starting at `start` (clamped into the
    /// range) and wrapping around.
    pub fn iter_from(self, start: u16) -> impl Iterator<Item = u16> {
        let first = u32::from(self.first);
        let len = self.count();
        let offset = u32::from(start).saturating_sub(first) % len;
        (0..len).map(move |i| (first + (offset + i) % len) as u16)
    }
}

/// Local ports partitioned among workers by their low bits: a port belongs
/// to worker `port & mask` (for `worker < workers`). NIC flow rules match the
/// same mask, and a worker that receives another's reply finds the owner by
/// the same arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortPartition {
    workers: u16,
    mask: u16,
}

impl PortPartition {
    /// A partition among `workers` workers (at least 1).
    pub fn new(workers: u16) -> Self {
        let workers = workers.max(1);
        let mask = workers.next_power_of_two() - 1;
        PortPartition { workers, mask }
    }

    /// The mask NIC flow rules use on the destination port.
    pub fn mask(&self) -> u16 {
        self.mask
    }

    /// The worker that owns a local port, if any worker does (with a worker
    /// count that is not a power of two, some low-bit values are unused).
    pub fn owner(&self, port: u16) -> Option<u16> {
        let w = port & self.mask;
        (w < self.workers).then_some(w)
    }

    /// Candidate ports of `worker` within `range`, from `start`, wrapping.
    pub fn ports_for(self, worker: u16, range: PortRange, start: u16) -> impl Iterator<Item = u16> {
        range
            .iter_from(start)
            .filter(move |&p| self.owner(p) == Some(worker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    fn v4(s: &str) -> IpAddr {
        IpAddr::V4(s.parse::<Ipv4Addr>().unwrap())
    }
    fn v6(s: &str) -> IpAddr {
        IpAddr::V6(s.parse::<Ipv6Addr>().unwrap())
    }

    /// Microsoft's RSS verification suite (published with the RSS
    /// specification): destination, source and the expected hashes.
    #[test]
    fn verification_suite_ipv4() {
        let t = Toeplitz::new(&DEFAULT_KEY);
        let cases = [
            (
                "161.142.100.80",
                1766,
                "66.9.149.187",
                2794,
                0x51ccc178u32,
                0x323e8fc2u32,
            ),
            (
                "65.69.140.83",
                4739,
                "199.92.111.2",
                14230,
                0xc626b0ea,
                0xd718262a,
            ),
            (
                "12.22.207.184",
                38024,
                "24.19.198.95",
                12898,
                0x5c2b394a,
                0xd2d0a5de,
            ),
            (
                "209.142.163.6",
                2217,
                "38.27.205.30",
                48228,
                0xafc7327f,
                0x82989176,
            ),
            (
                "202.188.127.2",
                1303,
                "153.39.163.191",
                44251,
                0x10e828a2,
                0x5d1809c5,
            ),
        ];
        for (dst, dport, src, sport, with_ports, addrs_only) in cases {
            let (s, d) = (v4(src), v4(dst));
            assert_eq!(
                t.hash_tuple(s, d, sport, dport),
                with_ports,
                "{src} → {dst}"
            );
            let mut a = [0u8; 8];
            if let (IpAddr::V4(s), IpAddr::V4(d)) = (s, d) {
                a[..4].copy_from_slice(&s.octets());
                a[4..].copy_from_slice(&d.octets());
            }
            assert_eq!(t.hash(&a), addrs_only, "{src} → {dst} addresses only");
        }
    }

    #[test]
    fn verification_suite_ipv6() {
        let t = Toeplitz::new(&DEFAULT_KEY);
        let cases = [
            (
                "3ffe:2501:200:3::1",
                1766,
                "3ffe:2501:200:1fff::7",
                2794,
                0x40207d3du32,
            ),
            (
                "ff02::1",
                4739,
                "3ffe:501:8::260:97ff:fe40:efab",
                14230,
                0xdde51bbf,
            ),
            (
                "fe80::200:f8ff:fe21:67cf",
                38024,
                "3ffe:1900:4545:3:200:f8ff:fe21:67cf",
                44251,
                0x02d1feef,
            ),
        ];
        for (dst, dport, src, sport, expected) in cases {
            assert_eq!(
                t.hash_tuple(v6(src), v6(dst), sport, dport),
                expected,
                "{src} → {dst}"
            );
        }
    }

    #[test]
    fn linear_port_search_agrees_with_direct_hash() {
        let reta: Vec<u16> = (0..128).map(|i| i % 4).collect();
        let s = RssSteering::new(&DEFAULT_KEY, reta, vec![0, 1, 0, 1]).unwrap();
        let remote = v4("10.0.1.5");
        let local = v4("10.0.0.100");
        for worker in 0..2 {
            let ports: Vec<u16> = s
                .ports_for(remote, 80, local, worker, PortRange::DEFAULT, 5000)
                .take(200)
                .collect();
            assert_eq!(ports.len(), 200);
            for p in ports {
                assert_eq!(s.worker_for(remote, local, 80, p), worker, "port {p}");
            }
        }
        let remote6 = v6("2001:db8::5");
        let local6 = v6("2001:db8::100");
        for p in s
            .ports_for(remote6, 443, local6, 1, PortRange::DEFAULT, 1025)
            .take(100)
        {
            assert_eq!(s.worker_for(remote6, local6, 443, p), 1);
        }
    }

    #[test]
    fn bad_rss_descriptions_are_refused() {
        assert_eq!(
            RssSteering::new(&DEFAULT_KEY, vec![0; 100], vec![0]).unwrap_err(),
            RssError::BadRetaSize(100)
        );
        assert_eq!(
            RssSteering::new(&DEFAULT_KEY, vec![0, 3], vec![0, 1]).unwrap_err(),
            RssError::UnknownQueue(3)
        );
        assert_eq!(
            RssSteering::new(&DEFAULT_KEY[..16], vec![0], vec![0]).unwrap_err(),
            RssError::ShortKey(16)
        );
    }

    #[test]
    fn port_partition() {
        let p = PortPartition::new(3);
        assert_eq!(p.mask(), 3);
        assert_eq!(p.owner(1028), Some(0));
        assert_eq!(p.owner(1031), None);
        let ports: Vec<u16> = p.ports_for(2, PortRange::DEFAULT, 65530).take(3).collect();
        assert_eq!(ports, vec![65530, 65534, 1026]);
        let r = PortRange {
            first: 10,
            last: 12,
        };
        assert_eq!(r.iter_from(11).collect::<Vec<_>>(), vec![11, 12, 10]);
        assert_eq!(r.iter_from(0).collect::<Vec<_>>(), vec![10, 11, 12]);
    }
}
