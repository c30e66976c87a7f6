//! Storage of the flights (requests between assignment and delivery), in fixed chunks.
//!
//! A flight is two aligned cache lines (see [`Flight`]). In one `Vec`, growing past a few
//! thousand flights copied the whole array at each doubling (an over-aligned vector cannot be
//! grown in place by the allocator): with the backlog of a loaded cluster, 200,000 flights,
//! that copying was most of the 6-server run's cache misses (cachegrind). Chunks never move.

use super::Flight;
use std::ops::{Index, IndexMut};

/// Flights per chunk (128 KiB).
const CHUNK: usize = 1024;

/// The flights, by slot number; slots are reused through the simulator's free list.
#[derive(Default)]
pub(super) struct Flights {
    chunks: Vec<Box<[Flight; CHUNK]>>,
    len: usize,
}

impl Flights {
    /// Number of slots ever used.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Stores `f` in a new slot and returns its number.
    pub(super) fn push(&mut self, f: Flight) -> u32 {
        let i = self.len;
        if i / CHUNK == self.chunks.len() {
            // Built on the heap: 128 KiB is too much for a test thread's stack.
            let chunk: Box<[Flight]> = vec![Flight::default(); CHUNK].into_boxed_slice();
            self.chunks
                .push(chunk.try_into().expect("a chunk has CHUNK flights"));
        }
        self.len += 1;
        self[i] = f;
        u32::try_from(i).expect("fewer than 2^32 requests in flight")
    }

    /// Every slot ever used, in slot order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Flight> {
        self.chunks.iter().flat_map(|c| c.iter()).take(self.len)
    }
}

impl Index<usize> for Flights {
    type Output = Flight;
    fn index(&self, i: usize) -> &Flight {
        debug_assert!(i < self.len);
        &self.chunks[i / CHUNK][i % CHUNK]
    }
}

impl IndexMut<usize> for Flights {
    fn index_mut(&mut self, i: usize) -> &mut Flight {
        debug_assert!(i < self.len);
        &mut self.chunks[i / CHUNK][i % CHUNK]
    }
}
