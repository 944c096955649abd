//! A packet being processed: an IP packet inside a buffer that has room
//! before it (headroom) and after it (tailroom).
//!
//! Forwarding modes grow and shrink packets in place: TUN prepends an outer
//! header, TOA adds a TCP option, NAT64 swaps a 40-byte header for a 20-byte
//! one. The I/O layer hands the core frames with headroom (AF_XDP and DPDK
//! both reserve some), so none of this copies the payload or allocates.

/// An IP packet at `start..start + len` of `buf`.
#[derive(Debug)]
pub struct Packet<'a> {
    buf: &'a mut [u8],
    start: usize,
    len: usize,
}

impl<'a> Packet<'a> {
    /// The packet at `start..start + len` of `buf`; `None` if that range is
    /// not inside the buffer.
    pub fn new(buf: &'a mut [u8], start: usize, len: usize) -> Option<Self> {
        let end = start.checked_add(len)?;
        (end <= buf.len()).then_some(Packet { buf, start, len })
    }

    /// A packet filling the whole buffer (no headroom or tailroom).
    pub fn whole(buf: &'a mut [u8]) -> Self {
        let len = buf.len();
        Packet { buf, start: 0, len }
    }

    /// The packet's bytes.
    pub fn data(&self) -> &[u8] {
        self.buf
            .get(self.start..self.start + self.len)
            .unwrap_or_default()
    }

    /// The packet's bytes, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        let (start, end) = (self.start, self.start + self.len);
        self.buf.get_mut(start..end).unwrap_or_default()
    }

    /// From `offset` into the packet to the end of the buffer, tailroom
    /// included: for operations that grow the packet at the back.
    pub fn tail_mut(&mut self, offset: usize) -> &mut [u8] {
        let at = self.start.saturating_add(offset);
        self.buf.get_mut(at..).unwrap_or_default()
    }

    /// The whole buffer and the packet's start: for operations that write
    /// in front of the packet (encapsulation).
    pub fn buffer_mut(&mut self) -> (&mut [u8], usize) {
        (self.buf, self.start)
    }

    /// Length of the packet.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty packet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Offset of the packet in the buffer.
    pub fn start(&self) -> usize {
        self.start
    }

    /// Bytes free before the packet.
    pub fn headroom(&self) -> usize {
        self.start
    }

    /// Bytes free after the packet.
    pub fn tailroom(&self) -> usize {
        self.buf.len() - self.start - self.len
    }

    /// Extends the packet `n` bytes to the front (into the headroom); false
    /// if there is not enough headroom. The new bytes hold whatever the
    /// buffer held.
    pub fn push_front(&mut self, n: usize) -> bool {
        if n > self.start {
            return false;
        }
        self.start -= n;
        self.len += n;
        true
    }

    /// Removes `n` bytes from the front; false if the packet is shorter.
    pub fn pull_front(&mut self, n: usize) -> bool {
        if n > self.len {
            return false;
        }
        self.start += n;
        self.len -= n;
        true
    }

    /// Sets the packet's length (growing into the tailroom or shrinking);
    /// false if the buffer is too small.
    pub fn set_len(&mut self, len: usize) -> bool {
        if self.start.saturating_add(len) > self.buf.len() {
            return false;
        }
        self.len = len;
        true
    }

    /// Moves the packet to begin at `start` of the buffer, keeping its
    /// length: used to restore headroom after a header was removed.
    pub fn set_start(&mut self, start: usize) -> bool {
        if start.saturating_add(self.len) > self.buf.len() {
            return false;
        }
        self.start = start;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_shrinks_within_the_buffer() {
        let mut buf = [0u8; 100];
        buf[40..44].copy_from_slice(&[1, 2, 3, 4]);
        let mut p = Packet::new(&mut buf, 40, 4).unwrap();
        assert_eq!(p.data(), &[1, 2, 3, 4]);
        assert_eq!((p.headroom(), p.tailroom()), (40, 56));
        assert!(p.push_front(20));
        assert_eq!((p.start(), p.len()), (20, 24));
        assert!(!p.push_front(21));
        assert!(p.pull_front(20));
        assert_eq!(p.data(), &[1, 2, 3, 4]);
        assert!(p.set_len(60));
        assert!(!p.set_len(61));
        assert_eq!(p.tail_mut(4).len(), 56);
        assert!(Packet::new(&mut [0u8; 10], 8, 3).is_none());
        assert!(Packet::new(&mut [0u8; 10], usize::MAX, 3).is_none());
    }
}
