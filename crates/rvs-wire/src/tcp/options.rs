//! TCP options (RFC 9293 §3.2): a borrowing iterator, typed values and a
//! writer into a fixed buffer.
//!
//! # Why this shape
//! The balancer looks at options on the packet path (MSS clamp, timestamp
//! removal, TOA), so walking them must not allocate and must not trust a
//! single length byte. Every option but EOL and NOP is `kind, length, data`
//! where `length` counts the two leading bytes; a length of 0 or 1 would make
//! a naive walker loop forever or step backwards, and a length running past
//! the option area would read into the payload. Both are
//! [`Error::BadOption`], after which iteration stops (Linux likewise stops
//! parsing at a malformed option).
//!
//! A known kind with the wrong length (an MSS option of 3 bytes, say) is not
//! an error: Linux ignores such an option, and the balancer must forward it
//! untouched, so it is yielded raw as [`TcpOption::Unknown`]. Kind 254 is the
//! RFC 4727 experimental kind; rvs reads it as TOA only in the two lengths
//! DPVS/Alibaba TOA uses (8 and 20, see [`Toa`]) and raw otherwise.
//!
//! Bytes after an End-of-Option-List are padding and are not looked at.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::{Error, Result};

/// Option kinds (IANA "TCP Option Kind Numbers") rvs understands.
pub mod kind {
    /// End of option list (RFC 9293).
    pub const EOL: u8 = 0;
    /// No-operation, used as padding (RFC 9293).
    pub const NOP: u8 = 1;
    /// Maximum segment size (RFC 9293), length 4.
    pub const MSS: u8 = 2;
    /// Window scale (RFC 7323), length 3.
    pub const WINDOW_SCALE: u8 = 3;
    /// SACK permitted (RFC 2018), length 2.
    pub const SACK_PERMITTED: u8 = 4;
    /// Selective acknowledgement blocks (RFC 2018), length 2 + 8n.
    pub const SACK: u8 = 5;
    /// Timestamps (RFC 7323), length 10.
    pub const TIMESTAMPS: u8 = 8;
    /// TOA, the client address a FullNAT balancer hands to the real server
    /// (DPVS / Alibaba TOA; the RFC 4727 experimental kind 254).
    pub const TOA: u8 = 254;
}

/// Bytes of option space in a TCP header (60-byte maximum minus 20 fixed).
pub const MAX_OPTIONS_LEN: usize = 40;
/// SACK blocks that fit in the option space (4 × 8 + 2 = 34 bytes).
pub const MAX_SACK_BLOCKS: usize = 4;

/// Length of the MSS option.
pub const MSS_LEN: usize = 4;
/// Length of the window-scale option.
pub const WINDOW_SCALE_LEN: usize = 3;
/// Length of the SACK-permitted option.
pub const SACK_PERMITTED_LEN: usize = 2;
/// Length of the timestamps option.
pub const TIMESTAMPS_LEN: usize = 10;

/// One to four SACK blocks, each `(left edge, right edge)`.
///
/// Unused slots are kept zero so that derived equality compares only the
/// blocks in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SackBlocks {
    blocks: [(u32, u32); MAX_SACK_BLOCKS],
    len: u8,
}

impl SackBlocks {
    /// Builds from 1 to 4 blocks; `None` for 0 or more than 4.
    pub fn new(blocks: &[(u32, u32)]) -> Option<Self> {
        if blocks.is_empty() || blocks.len() > MAX_SACK_BLOCKS {
            return None;
        }
        let mut out = SackBlocks {
            blocks: [(0, 0); MAX_SACK_BLOCKS],
            len: 0,
        };
        for (slot, b) in out.blocks.iter_mut().zip(blocks) {
            *slot = *b;
            out.len += 1;
        }
        Some(out)
    }

    /// The blocks in use.
    pub fn as_slice(&self) -> &[(u32, u32)] {
        self.blocks.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Number of blocks (1..=4).
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Always false for a value built by [`SackBlocks::new`] or parsed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads the data part of a SACK option (a multiple of 8, 8..=32 bytes).
    fn from_data(data: &[u8]) -> Option<Self> {
        let (pairs, rest) = data.as_chunks::<8>();
        if !rest.is_empty() || pairs.is_empty() || pairs.len() > MAX_SACK_BLOCKS {
            return None;
        }
        let mut out = SackBlocks {
            blocks: [(0, 0); MAX_SACK_BLOCKS],
            len: 0,
        };
        for (slot, p) in out.blocks.iter_mut().zip(pairs) {
            let (l, r) = p.split_at(4);
            let l = u32::from_be_bytes(l.try_into().unwrap_or_default());
            let r = u32::from_be_bytes(r.try_into().unwrap_or_default());
            *slot = (l, r);
            out.len += 1;
        }
        Some(out)
    }
}

/// The client address carried by TOA (DPVS / Alibaba TOA form).
///
/// On the wire: `fe 08 <port:2> <ipv4:4>` (8 bytes) or
/// `fe 14 <port:2> <ipv6:16>` (20 bytes), port and address in network
/// order. Backend TOA kernel modules read it from the first ACK or data
/// segment of a connection to report the client's address to `getpeername`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Toa {
    /// Client port.
    pub port: u16,
    /// Client address; the family selects the option's length.
    pub addr: IpAddr,
}

impl Toa {
    /// Length of the IPv4 form.
    pub const V4_LEN: usize = 8;
    /// Length of the IPv6 form.
    pub const V6_LEN: usize = 20;

    /// Bytes the option occupies (8 or 20). Both are even, so inserting it
    /// keeps the 16-bit alignment of what follows (see [`super::insert_toa`]).
    pub const fn wire_len(&self) -> usize {
        match self.addr {
            IpAddr::V4(_) => Self::V4_LEN,
            IpAddr::V6(_) => Self::V6_LEN,
        }
    }

    /// Reads the data part (after kind and length) of a kind-254 option of
    /// 8 or 20 bytes.
    fn from_data(data: &[u8]) -> Option<Self> {
        let (port, addr) = data.split_first_chunk::<2>()?;
        let port = u16::from_be_bytes(*port);
        let addr = if let Ok(a) = <[u8; 4]>::try_from(addr) {
            IpAddr::V4(Ipv4Addr::from(a))
        } else if let Ok(a) = <[u8; 16]>::try_from(addr) {
            IpAddr::V6(Ipv6Addr::from(a))
        } else {
            return None;
        };
        Some(Toa { port, addr })
    }

    /// Writes the whole option (kind, length, port, address) at the start of
    /// `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        TcpOption::Toa(*self).emit(buf)
    }
}

/// One TCP option, borrowed from the packet for unknown kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpOption<'a> {
    /// End of option list (kind 0); nothing after it is an option.
    EndOfList,
    /// No-operation padding (kind 1).
    Nop,
    /// Maximum segment size (kind 2).
    Mss(u16),
    /// Window scale shift count (kind 3).
    WindowScale(u8),
    /// SACK permitted (kind 4).
    SackPermitted,
    /// SACK blocks (kind 5).
    Sack(SackBlocks),
    /// Timestamps (kind 8).
    Timestamps {
        /// TSval: the sender's clock.
        tsval: u32,
        /// TSecr: the echoed peer clock.
        tsecr: u32,
    },
    /// TOA client address (kind 254, length 8 or 20).
    Toa(Toa),
    /// Any other option, or a known kind with a length rvs does not read.
    Unknown {
        /// Option kind.
        kind: u8,
        /// Option data after the kind and length bytes.
        data: &'a [u8],
    },
}

impl TcpOption<'_> {
    /// The option kind byte.
    pub fn kind(&self) -> u8 {
        match self {
            TcpOption::EndOfList => kind::EOL,
            TcpOption::Nop => kind::NOP,
            TcpOption::Mss(_) => kind::MSS,
            TcpOption::WindowScale(_) => kind::WINDOW_SCALE,
            TcpOption::SackPermitted => kind::SACK_PERMITTED,
            TcpOption::Sack(_) => kind::SACK,
            TcpOption::Timestamps { .. } => kind::TIMESTAMPS,
            TcpOption::Toa(_) => kind::TOA,
            TcpOption::Unknown { kind, .. } => *kind,
        }
    }

    /// Bytes the option occupies on the wire.
    pub fn wire_len(&self) -> usize {
        match self {
            TcpOption::EndOfList | TcpOption::Nop => 1,
            TcpOption::Mss(_) => MSS_LEN,
            TcpOption::WindowScale(_) => WINDOW_SCALE_LEN,
            TcpOption::SackPermitted => SACK_PERMITTED_LEN,
            TcpOption::Sack(b) => 2 + 8 * b.len(),
            TcpOption::Timestamps { .. } => TIMESTAMPS_LEN,
            TcpOption::Toa(t) => t.wire_len(),
            TcpOption::Unknown { data, .. } => data.len().saturating_add(2),
        }
    }

    /// Writes the option at the start of `buf`; returns its length.
    ///
    /// Fails with [`Error::BufferTooSmall`] if it does not fit, and with
    /// [`Error::BadOption`] for an `Unknown` option that cannot be written
    /// as one (kind 0 or 1, or data longer than 253 bytes) or an empty
    /// [`SackBlocks`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.wire_len();
        if let TcpOption::Unknown { kind, data } = self
            && (*kind <= kind::NOP || data.len() > usize::from(u8::MAX) - 2)
        {
            return Err(Error::BadOption);
        }
        if let TcpOption::Sack(b) = self
            && b.is_empty()
        {
            return Err(Error::BadOption);
        }
        let out = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        let Some((k, rest)) = out.split_first_mut() else {
            return Err(Error::BufferTooSmall);
        };
        *k = self.kind();
        if let Some((l, body)) = rest.split_first_mut() {
            // `len` fits in a byte: the largest is an Unknown of 255, checked above.
            *l = u8::try_from(len).map_err(|_| Error::BadOption)?;
            match self {
                TcpOption::EndOfList | TcpOption::Nop | TcpOption::SackPermitted => {}
                TcpOption::Mss(v) => body.copy_from_slice(&v.to_be_bytes()),
                TcpOption::WindowScale(s) => body.copy_from_slice(&[*s]),
                TcpOption::Sack(b) => {
                    let (chunks, _) = body.as_chunks_mut::<8>();
                    for (c, (l, r)) in chunks.iter_mut().zip(b.as_slice()) {
                        let (cl, cr) = c.split_at_mut(4);
                        cl.copy_from_slice(&l.to_be_bytes());
                        cr.copy_from_slice(&r.to_be_bytes());
                    }
                }
                TcpOption::Timestamps { tsval, tsecr } => {
                    let (a, b) = body.split_at_mut(4);
                    a.copy_from_slice(&tsval.to_be_bytes());
                    b.copy_from_slice(&tsecr.to_be_bytes());
                }
                TcpOption::Toa(t) => {
                    let (p, a) = body.split_at_mut(2);
                    p.copy_from_slice(&t.port.to_be_bytes());
                    match t.addr {
                        IpAddr::V4(v4) => a.copy_from_slice(&v4.octets()),
                        IpAddr::V6(v6) => a.copy_from_slice(&v6.octets()),
                    }
                }
                TcpOption::Unknown { data, .. } => body.copy_from_slice(data),
            }
        }
        Ok(len)
    }
}

/// Where one option sits in the option area (crate-internal walker used by
/// the iterator and by the in-place rewrites, which need offsets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    /// Offset of the kind byte from the start of the option area.
    pub(crate) offset: usize,
    /// Option kind.
    pub(crate) kind: u8,
    /// Total length including kind (and length byte, if any).
    pub(crate) len: usize,
}

/// The option starting at `offset` in `opts`: `Ok(None)` at the end of the
/// area, `Err(BadOption)` when its length byte is missing, below 2 or runs
/// past the area. An EOL is returned as a span of length 1; callers stop there.
pub(crate) fn span_at(opts: &[u8], offset: usize) -> Result<Option<Span>> {
    let Some(rest) = opts.get(offset..) else {
        return Ok(None);
    };
    let Some(&kind) = rest.first() else {
        return Ok(None);
    };
    if kind == kind::EOL || kind == kind::NOP {
        return Ok(Some(Span {
            offset,
            kind,
            len: 1,
        }));
    }
    let len = usize::from(*rest.get(1).ok_or(Error::BadOption)?);
    if len < 2 || len > rest.len() {
        return Err(Error::BadOption);
    }
    Ok(Some(Span { offset, kind, len }))
}

/// Decodes the option `span` describes; `bytes` is the whole option.
fn decode(kind: u8, bytes: &[u8]) -> TcpOption<'_> {
    let data = bytes.get(2..).unwrap_or(&[]);
    match (kind, bytes.len()) {
        (kind::EOL, _) => TcpOption::EndOfList,
        (kind::NOP, _) => TcpOption::Nop,
        (kind::MSS, MSS_LEN) => match data.first_chunk::<2>() {
            Some(v) => TcpOption::Mss(u16::from_be_bytes(*v)),
            None => TcpOption::Unknown { kind, data },
        },
        (kind::WINDOW_SCALE, WINDOW_SCALE_LEN) => match data.first() {
            Some(s) => TcpOption::WindowScale(*s),
            None => TcpOption::Unknown { kind, data },
        },
        (kind::SACK_PERMITTED, SACK_PERMITTED_LEN) => TcpOption::SackPermitted,
        (kind::SACK, _) => match SackBlocks::from_data(data) {
            Some(b) => TcpOption::Sack(b),
            None => TcpOption::Unknown { kind, data },
        },
        (kind::TIMESTAMPS, TIMESTAMPS_LEN) => match data.split_first_chunk::<4>() {
            Some((a, b)) => match b.first_chunk::<4>() {
                Some(b) => TcpOption::Timestamps {
                    tsval: u32::from_be_bytes(*a),
                    tsecr: u32::from_be_bytes(*b),
                },
                None => TcpOption::Unknown { kind, data },
            },
            None => TcpOption::Unknown { kind, data },
        },
        (kind::TOA, Toa::V4_LEN | Toa::V6_LEN) => match Toa::from_data(data) {
            Some(t) => TcpOption::Toa(t),
            None => TcpOption::Unknown { kind, data },
        },
        _ => TcpOption::Unknown { kind, data },
    }
}

/// Iterator over the options of a TCP header.
///
/// Yields `Ok(option)` for each option up to and including an
/// End-of-Option-List, then stops; on a malformed option yields one
/// `Err(Error::BadOption)` and stops.
#[derive(Debug, Clone)]
pub struct TcpOptions<'a> {
    opts: &'a [u8],
    offset: usize,
    done: bool,
}

impl<'a> TcpOptions<'a> {
    /// Iterates over the option area `opts` (the bytes between the fixed
    /// header and the data offset).
    pub fn new(opts: &'a [u8]) -> Self {
        TcpOptions {
            opts,
            offset: 0,
            done: false,
        }
    }
}

impl<'a> Iterator for TcpOptions<'a> {
    type Item = Result<TcpOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match span_at(self.opts, self.offset) {
            Ok(Some(span)) => {
                let end = span.offset.saturating_add(span.len);
                let bytes = self.opts.get(span.offset..end).unwrap_or(&[]);
                self.offset = end;
                if span.kind == kind::EOL {
                    self.done = true;
                }
                Some(Ok(decode(span.kind, bytes)))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl core::iter::FusedIterator for TcpOptions<'_> {}

/// Writes options one after another into a fixed buffer, then pads the area
/// to a multiple of 4 bytes with NOPs (as Linux does) so it can follow the
/// fixed header directly.
///
/// At most [`MAX_OPTIONS_LEN`] bytes are written, whatever the buffer size.
#[derive(Debug)]
pub struct TcpOptionWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> TcpOptionWriter<'b> {
    /// A writer at the start of `buf`.
    pub fn new(buf: &'b mut [u8]) -> Self {
        TcpOptionWriter { buf, len: 0 }
    }

    fn room(&mut self) -> &mut [u8] {
        let cap = self.buf.len().min(MAX_OPTIONS_LEN);
        self.buf.get_mut(self.len..cap).unwrap_or(&mut [])
    }

    /// Appends one option; on error nothing is written.
    pub fn push(&mut self, opt: &TcpOption<'_>) -> Result<()> {
        let n = opt.emit(self.room())?;
        self.len += n;
        Ok(())
    }

    /// Bytes written so far (before padding).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Pads with NOPs to a multiple of 4 and returns the padded length.
    pub fn finish(mut self) -> Result<usize> {
        let pad = self.len.next_multiple_of(4) - self.len;
        let room = self.room();
        room.get_mut(..pad)
            .ok_or(Error::BufferTooSmall)?
            .fill(kind::NOP);
        Ok(self.len + pad)
    }
}

/// Bytes `opts` occupy once padded to a multiple of 4.
pub fn padded_len(opts: &[TcpOption<'_>]) -> usize {
    opts.iter()
        .map(TcpOption::wire_len)
        .fold(0usize, usize::saturating_add)
        .next_multiple_of(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(opts: &[u8]) -> Vec<Result<TcpOption<'_>>> {
        TcpOptions::new(opts).collect()
    }

    #[test]
    fn linux_syn_options() {
        // From the captured SYN (see tcp.rs KATs): mss 1460, sackOK,
        // TS val 267863899 ecr 0, nop, wscale 10.
        let o = [
            0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x0f, 0xf7, 0x47, 0x5b, 0x00, 0x00,
            0x00, 0x00, 0x01, 0x03, 0x03, 0x0a,
        ];
        assert_eq!(
            collect(&o),
            vec![
                Ok(TcpOption::Mss(1460)),
                Ok(TcpOption::SackPermitted),
                Ok(TcpOption::Timestamps {
                    tsval: 267863899,
                    tsecr: 0
                }),
                Ok(TcpOption::Nop),
                Ok(TcpOption::WindowScale(10)),
            ]
        );
    }

    #[test]
    fn malformed_lengths() {
        // Length 0, length 1, length past the end, missing length byte.
        for bad in [
            &[2u8, 0, 5, 0xb4][..],
            &[2, 1, 5, 0xb4],
            &[2, 5, 5, 0xb4],
            &[1, 2],
        ] {
            let v = collect(bad);
            assert_eq!(v.last(), Some(&Err(Error::BadOption)), "{bad:?}");
        }
        // After an error, nothing more.
        let mut it = TcpOptions::new(&[1, 8, 0, 1, 1]);
        assert_eq!(it.next(), Some(Ok(TcpOption::Nop)));
        assert_eq!(it.next(), Some(Err(Error::BadOption)));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn eol_ends_and_wrong_lengths_are_raw() {
        assert_eq!(
            collect(&[1, 0, 2, 0, 0xff]),
            vec![Ok(TcpOption::Nop), Ok(TcpOption::EndOfList)]
        );
        assert_eq!(
            collect(&[2, 3, 9]),
            vec![Ok(TcpOption::Unknown {
                kind: 2,
                data: &[9]
            })]
        );
        assert_eq!(
            collect(&[5, 2]),
            vec![Ok(TcpOption::Unknown { kind: 5, data: &[] })]
        );
        // Kind 254 in RFC 6994 ExID form of length 4 is not TOA.
        assert_eq!(
            collect(&[254, 4, 0x12, 0x34]),
            vec![Ok(TcpOption::Unknown {
                kind: 254,
                data: &[0x12, 0x34]
            })]
        );
    }

    #[test]
    fn toa_forms() {
        let v4 = [0xfe, 0x08, 0x96, 0x0e, 10, 99, 0, 1];
        assert_eq!(
            collect(&v4),
            vec![Ok(TcpOption::Toa(Toa {
                port: 38414,
                addr: IpAddr::V4(Ipv4Addr::new(10, 99, 0, 1))
            }))]
        );
        let mut v6 = vec![0xfe, 20, 0x01, 0xbb];
        v6.extend_from_slice(&"fd00:99::1".parse::<Ipv6Addr>().unwrap().octets());
        let t = Toa {
            port: 443,
            addr: IpAddr::V6("fd00:99::1".parse().unwrap()),
        };
        assert_eq!(collect(&v6), vec![Ok(TcpOption::Toa(t))]);
        let mut buf = [0u8; 20];
        assert_eq!(t.emit(&mut buf), Ok(20));
        assert_eq!(&buf[..], &v6[..]);
    }

    #[test]
    fn writer_pads_with_nops_and_respects_limits() {
        let mut buf = [0xaau8; 64];
        let mut w = TcpOptionWriter::new(&mut buf);
        w.push(&TcpOption::Mss(1460)).unwrap();
        w.push(&TcpOption::WindowScale(7)).unwrap();
        assert_eq!(w.len(), 7);
        assert_eq!(w.finish(), Ok(8));
        assert_eq!(&buf[..9], &[2, 4, 5, 0xb4, 3, 3, 7, 1, 0xaa]);

        // 40-byte cap even with a larger buffer.
        let mut buf = [0u8; 64];
        let mut w = TcpOptionWriter::new(&mut buf);
        let sack = SackBlocks::new(&[(1, 2), (3, 4), (5, 6), (7, 8)]).unwrap();
        w.push(&TcpOption::Sack(sack)).unwrap();
        assert_eq!(w.len(), 34);
        assert_eq!(
            w.push(&TcpOption::Timestamps { tsval: 1, tsecr: 2 }),
            Err(Error::BufferTooSmall)
        );
        w.push(&TcpOption::Nop).unwrap();
        w.push(&TcpOption::Nop).unwrap();
        assert_eq!(w.finish(), Ok(36));

        // Padding needs room too.
        let mut buf = [0u8; 3];
        let mut w = TcpOptionWriter::new(&mut buf);
        w.push(&TcpOption::WindowScale(1)).unwrap();
        assert_eq!(w.finish(), Err(Error::BufferTooSmall));

        let mut buf = [0u8; 8];
        let bad = TcpOption::Unknown { kind: 1, data: &[] };
        assert_eq!(
            TcpOptionWriter::new(&mut buf).push(&bad),
            Err(Error::BadOption)
        );
    }

    #[test]
    fn sack_blocks_bounds() {
        assert!(SackBlocks::new(&[]).is_none());
        assert!(SackBlocks::new(&[(0, 0); 5]).is_none());
        let s = SackBlocks::new(&[(1, 2), (3, 4)]).unwrap();
        assert_eq!(s.as_slice(), &[(1, 2), (3, 4)]);
        assert_eq!(TcpOption::Sack(s).wire_len(), 18);
    }
}
