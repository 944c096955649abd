//! A fixed pool of equal-size buffers, allocated once: the frame memory of
//! backends that do not get it from the kernel (memory, AF_PACKET, TAP).

/// `count` buffers of `size` bytes in one allocation, with a free list.
#[derive(Debug)]
pub struct Pool {
    memory: Vec<u8>,
    size: usize,
    free: Vec<u32>,
    /// Whether each buffer is out of the pool (guards against double free
    /// in O(1)).
    taken: Vec<bool>,
}

impl Pool {
    /// A pool of `count` buffers of `size` bytes each.
    pub fn new(count: u32, size: usize) -> Self {
        Pool {
            memory: vec![0; count as usize * size],
            size,
            free: (0..count).rev().collect(),
            taken: vec![false; count as usize],
        }
    }

    /// Size of each buffer.
    pub fn buffer_size(&self) -> usize {
        self.size
    }

    /// Buffers currently free.
    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// Takes a free buffer.
    pub fn alloc(&mut self) -> Option<u32> {
        let id = self.free.pop()?;
        if let Some(t) = self.taken.get_mut(id as usize) {
            *t = true;
        }
        Some(id)
    }

    /// Gives a buffer back. Freeing an id twice or one out of range is
    /// ignored (and would be a bug in the caller).
    pub fn free(&mut self, id: u32) {
        if let Some(t) = self.taken.get_mut(id as usize)
            && *t
        {
            *t = false;
            self.free.push(id);
        }
    }

    /// The bytes of buffer `id` (empty if out of range).
    pub fn buffer(&mut self, id: u32) -> &mut [u8] {
        let start = id as usize * self.size;
        self.memory
            .get_mut(start..start + self.size)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_each_buffer_once() {
        let mut p = Pool::new(3, 64);
        let a: Vec<u32> = (0..3).map(|_| p.alloc().unwrap()).collect();
        assert_eq!(p.alloc(), None);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, vec![0, 1, 2]);
        p.buffer(a[0])[0] = 7;
        assert_eq!(p.buffer(a[0])[0], 7);
        assert_eq!(p.buffer(a[1])[0], 0);
        p.free(a[0]);
        p.free(a[0]);
        p.free(99);
        assert_eq!(p.available(), 1);
        assert!(p.buffer(99).is_empty());
    }
}
