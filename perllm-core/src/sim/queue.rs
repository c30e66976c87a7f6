//! The event queue: a 4-ary min-heap of (time, sequence number) keys.
//!
//! Events pop in increasing (time, sequence) order, exactly as from `std`'s binary heap of those
//! pairs (every key is distinct, so any correct priority queue gives the same order).
//!
//! Why not `std::collections::BinaryHeap<(time, seq, event)>`: with 10,000 servers it holds tens
//! of thousands of pending events and each pop walks its 15 levels through memory that does not
//! fit the first-level cache; its comparisons were 13% of the first-level misses of a run
//! (cachegrind) and the largest item of a wall-time profile (perf). Here the keys live apart
//! from the events, four children's keys fill exactly one 64-byte cache line, and a pop walks
//! half as many levels. (A radix heap was tried too: fewer instructions, but more cache misses
//! from moving events between buckets.)

use super::events::Ev;
use crate::spec::Nanos;

/// Four keys: the children of one node, aligned to a cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u128; 4]);

/// A priority queue of events keyed by (time, sequence number).
///
/// Node `i` (the root is 0) has children `4i + 1 ..= 4i + 4`; it is stored at slot `i + 3`, so
/// that the children of a node are the four lanes of line `i + 1`.
pub(super) struct Queue {
    keys: Vec<Line>,
    events: Vec<Ev>,
}

impl Default for Queue {
    fn default() -> Self {
        Queue {
            keys: Vec::new(),
            events: Vec::new(),
        }
    }
}

fn key(t: Nanos, seq: u64) -> u128 {
    (t as u128) << 64 | seq as u128
}

impl Queue {
    fn len(&self) -> usize {
        self.events.len()
    }

    fn get(&self, i: usize) -> u128 {
        let p = i + 3;
        self.keys[p / 4].0[p % 4]
    }

    fn set(&mut self, i: usize, k: u128, ev: Ev) {
        let p = i + 3;
        self.keys[p / 4].0[p % 4] = k;
        self.events[i] = ev;
    }

    /// Queues `ev` at (`t`, `seq`).
    pub(super) fn push(&mut self, t: Nanos, seq: u64, ev: Ev) {
        let k = key(t, seq);
        let mut i = self.len();
        self.events.push(ev);
        if (i + 3) / 4 >= self.keys.len() {
            self.keys.push(Line([u128::MAX; 4]));
        }
        // Sift up: move parents down while they are larger.
        while i > 0 {
            let parent = (i - 1) / 4;
            let pk = self.get(parent);
            if pk < k {
                break;
            }
            let pe = self.events[parent];
            self.set(i, pk, pe);
            i = parent;
        }
        self.set(i, k, ev);
    }

    /// Removes and returns the event with the smallest (time, sequence) key.
    pub(super) fn pop(&mut self) -> Option<(Nanos, Ev)> {
        let n = self.len();
        if n == 0 {
            return None;
        }
        let (top_k, top_e) = (self.get(0), self.events[0]);
        let last = n - 1;
        let (k, ev) = (self.get(last), self.events[last]);
        // Unused slots hold the largest key, so a node's four lanes can always be compared.
        let p = last + 3;
        self.keys[p / 4].0[p % 4] = u128::MAX;
        self.events.pop();
        if last > 0 {
            // Sift down from the root with the last event.
            let mut i = 0;
            loop {
                let first = 4 * i + 1;
                if first >= last {
                    break;
                }
                let lanes = &self.keys[i + 1].0;
                let mut c = 0;
                for j in 1..4 {
                    if lanes[j] < lanes[c] {
                        c = j;
                    }
                }
                if lanes[c] >= k {
                    break;
                }
                let child = first + c;
                let (ck, ce) = (lanes[c], self.events[child]);
                self.set(i, ck, ce);
                i = child;
            }
            self.set(i, k, ev);
        }
        Some(((top_k >> 64) as Nanos, top_e))
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
                let a = q.pop().map(|(t, e)| (t, e));
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
