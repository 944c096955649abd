//! The UMEM: one anonymous, page-aligned mapping cut into equal frames
//! (2048 or 4096 bytes, the kernel's aligned-chunk mode), and the
//! bookkeeping of who owns each frame.
//!
//! A frame is always in exactly one place: the free list, the fill ring
//! (the kernel may write it), the worker (between receive and
//! transmit/free), or the TX ring (the kernel may read it until the
//! completion ring gives it back). The worker may touch only its own
//! frames; [`Umem::frame_mut`] returns an empty slice for any other, so a
//! stale or forged [`Frame`](crate::Frame) cannot race the kernel.

use std::io;
use std::ptr::NonNull;

/// Who holds a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Owner {
    /// On the free list.
    Free,
    /// Given to the kernel on the fill ring.
    Fill,
    /// Handed out to the worker.
    Worker,
    /// On the TX ring until its completion comes back.
    Tx,
}

/// An owned memory mapping, unmapped on drop.
#[derive(Debug)]
pub(super) struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mmap {
    /// Anonymous private memory, populated up front (no page faults on the
    /// data path).
    pub(super) fn anonymous(len: usize) -> io::Result<Self> {
        Self::map(
            len,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
            -1,
            0,
        )
    }

    /// A ring of socket `fd`, at the kernel's page offset `offset`.
    pub(super) fn ring(fd: libc::c_int, len: usize, offset: u64) -> io::Result<Self> {
        Self::map(
            len,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            fd,
            offset as libc::off_t,
        )
    }

    fn map(len: usize, flags: libc::c_int, fd: libc::c_int, off: libc::off_t) -> io::Result<Self> {
        // SAFETY: a fresh mapping chosen by the kernel (addr null) aliases no
        // Rust object; the result is checked before use.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                off,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        NonNull::new(p.cast::<u8>())
            .map(|ptr| Mmap { ptr, len })
            .ok_or_else(|| io::Error::other("mmap returned null"))
    }

    pub(super) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly what mmap returned, and nothing
        // borrows the mapping past its owner's life.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// The frames of one socket.
#[derive(Debug)]
pub(super) struct Umem {
    map: Mmap,
    frame_size: u32,
    owner: Vec<Owner>,
    free: Vec<u32>,
}

impl Umem {
    /// `count` frames of `frame_size` bytes (2048 or 4096), all free.
    pub(super) fn new(count: u32, frame_size: u32) -> io::Result<Self> {
        if frame_size != 2048 && frame_size != 4096 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("AF_XDP frame size {frame_size}: expected 2048 or 4096"),
            ));
        }
        if count == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "AF_XDP frame count must be at least 1",
            ));
        }
        let map = Mmap::anonymous(count as usize * frame_size as usize)?;
        Ok(Umem {
            map,
            frame_size,
            owner: vec![Owner::Free; count as usize],
            free: (0..count).rev().collect(),
        })
    }

    pub(super) fn base(&self) -> *mut u8 {
        self.map.as_ptr()
    }

    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    pub(super) fn frame_size(&self) -> u32 {
        self.frame_size
    }

    /// Frames on the free list.
    pub(super) fn free_count(&self) -> usize {
        self.free.len()
    }

    /// The UMEM address of byte `offset` of frame `id`.
    pub(super) fn addr(&self, id: u32, offset: u16) -> u64 {
        u64::from(id) * u64::from(self.frame_size) + u64::from(offset)
    }

    /// The frame and the offset in it of a UMEM address.
    pub(super) fn split(&self, addr: u64) -> (u32, u16) {
        let fs = u64::from(self.frame_size);
        ((addr / fs) as u32, (addr % fs) as u16)
    }

    pub(super) fn owner(&self, id: u32) -> Option<Owner> {
        self.owner.get(id as usize).copied()
    }

    pub(super) fn set_owner(&mut self, id: u32, to: Owner) {
        if let Some(o) = self.owner.get_mut(id as usize) {
            *o = to;
        }
    }

    /// Takes a frame off the free list for `to`.
    pub(super) fn take(&mut self, to: Owner) -> Option<u32> {
        let id = self.free.pop()?;
        self.set_owner(id, to);
        Some(id)
    }

    /// Puts frame `id` back on the free list if `from` holds it; false
    /// otherwise (a double free or a forged id: ignored).
    pub(super) fn give_back(&mut self, id: u32, from: Owner) -> bool {
        match self.owner.get_mut(id as usize) {
            Some(o) if *o == from => {
                *o = Owner::Free;
                self.free.push(id);
                true
            }
            _ => false,
        }
    }

    /// The whole of frame `id` if the worker holds it, else empty.
    pub(super) fn frame_mut(&mut self, id: u32) -> &mut [u8] {
        if self.owner(id) != Some(Owner::Worker) {
            return &mut [];
        }
        let fs = self.frame_size as usize;
        let off = id as usize * fs;
        // SAFETY: `owner(id)` is Some, so id < count and off + fs <= the
        // mapping's length; the mapping lives as long as `self`, which this
        // borrow holds mutably; the worker owns the frame, so the kernel
        // neither writes (fill) nor reads (TX) it meanwhile.
        unsafe { std::slice::from_raw_parts_mut(self.map.as_ptr().add(off), fs) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_guards_access_and_double_free() {
        let mut u = Umem::new(4, 2048).unwrap();
        assert_eq!(u.free_count(), 4);
        let a = u.take(Owner::Worker).unwrap();
        assert_eq!(u.frame_mut(a).len(), 2048);
        u.frame_mut(a)[5] = 9;
        let b = u.take(Owner::Fill).unwrap();
        assert!(u.frame_mut(b).is_empty(), "kernel-owned frame exposed");
        assert!(u.frame_mut(99).is_empty());
        assert!(u.give_back(a, Owner::Worker));
        assert!(!u.give_back(a, Owner::Worker), "double free accepted");
        assert!(!u.give_back(b, Owner::Worker), "fill frame freed by worker");
        assert_eq!(u.free_count(), 3);
        assert_eq!(u.split(u.addr(3, 256)), (3, 256));
        assert!(Umem::new(4, 3000).is_err());
    }
}
