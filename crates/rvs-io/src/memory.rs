//! The in-memory backend: frames are queued by the test or benchmark and
//! what the worker transmits is collected, so the whole data path runs with
//! no kernel involved.

use std::collections::VecDeque;
use std::io;

use crate::{Frame, HEADROOM, IoStats, PacketIo, Pool};

/// An in-memory port.
#[derive(Debug)]
pub struct MemoryIo {
    pool: Pool,
    rx: VecDeque<Frame>,
    tx: Vec<Vec<u8>>,
    stats: IoStats,
}

impl MemoryIo {
    /// A port with `buffers` buffers of `buffer_size` bytes.
    pub fn new(buffers: u32, buffer_size: usize) -> Self {
        MemoryIo {
            pool: Pool::new(buffers, buffer_size),
            rx: VecDeque::new(),
            tx: Vec::new(),
            stats: IoStats::default(),
        }
    }

    /// Queues a frame to be received; false if no buffer is free or the
    /// frame does not fit.
    pub fn inject(&mut self, bytes: &[u8]) -> bool {
        let Some(id) = self.pool.alloc() else {
            self.stats.rx_no_buffer += 1;
            return false;
        };
        let buf = self.pool.buffer(id);
        let Some(dst) = buf.get_mut(HEADROOM..HEADROOM + bytes.len()) else {
            self.pool.free(id);
            return false;
        };
        dst.copy_from_slice(bytes);
        self.rx.push_back(Frame {
            id,
            start: HEADROOM as u16,
            len: bytes.len() as u16,
        });
        true
    }

    /// Takes the frames transmitted so far.
    pub fn take_sent(&mut self) -> Vec<Vec<u8>> {
        core::mem::take(&mut self.tx)
    }

    /// Buffers free in the pool (to check for leaks).
    pub fn free_buffers(&self) -> usize {
        self.pool.available()
    }
}

impl PacketIo for MemoryIo {
    fn rx_burst(&mut self, frames: &mut [Frame]) -> io::Result<usize> {
        let mut n = 0;
        for slot in frames.iter_mut() {
            let Some(f) = self.rx.pop_front() else {
                break;
            };
            self.stats.rx_frames += 1;
            self.stats.rx_bytes += u64::from(f.len);
            *slot = f;
            n += 1;
        }
        if n > 0 {
            self.stats.rx_bursts += 1;
        }
        Ok(n)
    }

    fn tx_burst(&mut self, frames: &[Frame]) -> io::Result<usize> {
        for f in frames {
            let start = usize::from(f.start);
            let bytes = self
                .pool
                .buffer(f.id)
                .get(start..start + usize::from(f.len))
                .unwrap_or_default()
                .to_vec();
            self.stats.tx_frames += 1;
            self.stats.tx_bytes += u64::from(f.len);
            self.tx.push(bytes);
            self.pool.free(f.id);
        }
        Ok(frames.len())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame_bytes;

    #[test]
    fn frames_go_round_without_leaking_buffers() {
        let mut io = MemoryIo::new(4, 2048);
        assert!(io.inject(b"hello"));
        assert!(io.inject(b"world!"));
        let mut frames = [Frame::default(); 8];
        let n = io.rx_burst(&mut frames).unwrap();
        assert_eq!(n, 2);
        assert_eq!(frame_bytes(&mut io, &frames[0]), b"hello");
        // Rewrite in place, growing into the headroom.
        let f = &mut frames[1];
        f.start -= 2;
        f.len += 2;
        let start = usize::from(f.start);
        io.buffer(&frames[1])[start..start + 2].copy_from_slice(b">>");
        assert_eq!(io.tx_burst(&frames[1..2]).unwrap(), 1);
        io.free(frames[0]);
        assert_eq!(io.take_sent(), vec![b">>world!".to_vec()]);
        assert_eq!(io.free_buffers(), 4);
        let s = io.stats();
        assert_eq!((s.rx_frames, s.tx_frames, s.rx_bursts), (2, 1, 1));
    }
}
