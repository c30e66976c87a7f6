//! The event queue: a radix heap over (time, sequence number) keys.
//!
//! Events pop in increasing (time, sequence) order, exactly as from a binary heap of those
//! pairs (every key is distinct, so any correct priority queue gives the same order). A radix
//! heap can serve the simulation because it is monotone: an event is never scheduled before the
//! one just popped (its time is at least `now` and its sequence number is the largest so far).
//!
//! Why not `std::collections::BinaryHeap<(time, seq, event)>`: with 10,000 servers it holds tens
//! of thousands of pending events and each pop walks its 15 levels through memory that does not
//! fit the first-level cache: its comparisons were the largest item of a wall-time profile
//! (perf, 10,000 servers: about 15% of the run) and 13% of the first-level cache misses
//! (cachegrind). Here a push appends to one of 129 buckets, chosen by the highest bit in which
//! the key differs from the last popped key, and a pop takes the minimum of the lowest non-empty
//! bucket and moves the rest of that bucket to lower buckets: sequential scans over short
//! vectors, fewer instructions, and each event moves down at most once per level. (A 4-ary heap
//! with its keys apart from the events, four to a cache line, had fewer first-level misses in
//! cachegrind but was slower in wall time than both.)

use super::events::Ev;
use crate::spec::Nanos;

/// Number of buckets: 0 (key equal to the last popped one) and 1..=128 (highest differing bit).
const BUCKETS: usize = 129;

/// A monotone priority queue of events keyed by (time, sequence number).
pub(super) struct Queue {
    /// The last popped key (`time << 64 | seq`); every key in the queue is larger.
    last: u128,
    buckets: Vec<Vec<(u128, Ev)>>,
    /// Bit `b - 1` set when bucket `b` (1..=128) is not empty (bucket 0 is never used: keys are
    /// distinct, so the minimum is returned directly).
    occupied: u128,
}

impl Default for Queue {
    fn default() -> Self {
        Queue {
            last: 0,
            buckets: (0..BUCKETS).map(|_| Vec::new()).collect(),
            occupied: 0,
        }
    }
}

fn key(t: Nanos, seq: u64) -> u128 {
    (t as u128) << 64 | seq as u128
}

impl Queue {
    /// Bucket of `k` relative to the last popped key.
    fn bucket(&self, k: u128) -> usize {
        (128 - (k ^ self.last).leading_zeros()) as usize
    }

    fn put(&mut self, k: u128, ev: Ev) {
        let b = self.bucket(k);
        debug_assert!(b > 0, "keys are distinct");
        self.buckets[b].push((k, ev));
        self.occupied |= 1 << (b - 1);
    }

    /// Queues `ev` at (`t`, `seq`); the key must exceed the last popped one.
    pub(super) fn push(&mut self, t: Nanos, seq: u64, ev: Ev) {
        let k = key(t, seq);
        debug_assert!(k > self.last, "the event queue is monotone");
        self.put(k, ev);
    }

    /// Removes and returns the event with the smallest (time, sequence) key.
    pub(super) fn pop(&mut self) -> Option<(Nanos, Ev)> {
        if self.occupied == 0 {
            return None;
        }
        let b = self.occupied.trailing_zeros() as usize + 1;
        let mut items = std::mem::take(&mut self.buckets[b]);
        self.occupied &= !(1 << (b - 1));
        let (mut at, mut min) = (0, items[0].0);
        for (i, &(k, _)) in items.iter().enumerate().skip(1) {
            if k < min {
                (at, min) = (i, k);
            }
        }
        let (_, ev) = items.swap_remove(at);
        self.last = min;
        // Every other key of bucket `b` shares the bits above `b` with `min` and differs from it
        // below: it moves to a lower bucket.
        for &(k, e) in &items {
            self.put(k, e);
        }
        items.clear();
        self.buckets[b] = items;
        Some(((min >> 64) as Nanos, ev))
    }

    /// Number of queued events.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.buckets.iter().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    /// Same pops as a binary heap of (time, seq) under a monotone schedule with many ties.
    #[test]
    fn pops_in_time_then_sequence_order() {
        let mut q = Queue::default();
        let mut h = BinaryHeap::new();
        let (mut seq, mut now, mut x) = (0u64, 0u64, 0x2545_F491_4F6C_DD1Du64);
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..20_000 {
            for _ in 0..(next() % 4) {
                seq += 1;
                let r = next();
                // Ties at `now`, near and far future times, and the end of time.
                let t = match r % 5 {
                    0 => now,
                    1 => now + r % 16,
                    2 => now + (r >> 8) % 1_000_000_000,
                    3 if round % 97 == 0 => u64::MAX,
                    _ => now + (r >> 20) % 5_000,
                };
                q.push(t, seq, Ev::Redraw(seq as u32));
                h.push(Reverse((t, seq)));
            }
            if next() % 3 != 0 {
                let a = q.pop();
                let b = h.pop().map(|Reverse((t, s))| (t, Ev::Redraw(s as u32)));
                assert_eq!(a, b);
                if let Some((t, _)) = a {
                    now = t;
                }
            }
            assert_eq!(q.len(), h.len());
        }
        while let Some(Reverse((t, s))) = h.pop() {
            assert_eq!(q.pop(), Some((t, Ev::Redraw(s as u32))));
        }
        assert_eq!(q.pop(), None);
    }
}
