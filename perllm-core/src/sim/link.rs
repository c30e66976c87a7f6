//! Links: processor-sharing transfers over a fluctuating bandwidth.
//!
//! Each server owns one instance of its link type, with an uplink and a downlink direction of the
//! link's bandwidth each. Concurrent transfers in one direction share the bandwidth equally
//! (processor sharing). This is simulated with a virtual clock: `v` is the service (bits) every
//! active transfer has received since the direction was created; a transfer of `b` bits started when
//! the clock read `v0` finishes when it reads `v0 + b`. Between events the clock advances at
//! `bandwidth / active` bits per second, so each event costs O(log n).

use crate::rng::{Rng, stream, stream_rng, unit_f64};
use crate::spec::{Fluctuation, LinkSpec, Nanos, limits};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A finite f64 with a total order, for heaps.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Key(f64);
impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Key {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&o.0)
    }
}

/// One direction of a link instance.
#[derive(Debug, Default)]
pub(crate) struct Direction {
    /// Virtual clock, bits.
    v: f64,
    /// Time the clock was last advanced.
    last: Nanos,
    /// Active transfers by finish threshold: (threshold, sequence, transfer token).
    active: BinaryHeap<Reverse<(Key, u64, u32)>>,
    /// Bumped whenever the next completion is rescheduled; stale events carry an old version.
    pub(crate) version: u64,
}

impl Direction {
    /// Number of active transfers.
    pub(crate) fn len(&self) -> usize {
        self.active.len()
    }

    /// Advance the virtual clock to `now` at bandwidth `bw` (bits/s).
    pub(crate) fn advance(&mut self, now: Nanos, bw: f64) {
        let n = self.active.len();
        if n > 0 && now > self.last {
            self.v += (now - self.last) as f64 * 1e-9 * bw / n as f64;
        }
        self.last = now;
    }

    /// Add a transfer (after [`Direction::advance`] to `now`).
    pub(crate) fn push(&mut self, bits: f64, seq: u64, token: u32) {
        self.active.push(Reverse((Key(self.v + bits), seq, token)));
    }

    /// Pop every transfer whose threshold the clock has reached (within half a bit).
    pub(crate) fn pop_done(&mut self, out: &mut Vec<u32>) {
        while let Some(Reverse((Key(f), _, tok))) = self.active.peek().copied() {
            if f <= self.v + 0.5 {
                self.active.pop();
                out.push(tok);
            } else {
                break;
            }
        }
    }

    /// Time of the next completion at constant bandwidth `bw`, if any transfer is active.
    pub(crate) fn next_done(&self, bw: f64) -> Option<Nanos> {
        let Reverse((Key(f), _, _)) = self.active.peek()?;
        let n = self.active.len() as f64;
        let secs = (f - self.v).max(0.0) * n / bw;
        // `as` saturates: a transfer longer than 2^64 ns ends at the end of time (the run's drain
        // limit stops the simulation long before).
        Some(self.last.saturating_add((secs * 1e9).ceil() as Nanos))
    }
}

/// Longest stretch of random-walk periods walked step by step when an idle link wakes up.
const MAX_WALK_STEPS: u64 = 1 << 16;

/// The real bandwidth of one link instance over time (hidden from policies).
///
/// `repr(C)`: the fields read at every transfer come first, the random walk's generator (300
/// bytes, used only by `random_walk` fluctuations) last.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Bandwidth {
    mean: f64,
    period: Nanos,
    /// Key of the random-access uniform draws, from the link's ChaCha stream.
    key: u64,
    /// Period index of `factor`.
    k: u64,
    factor: f64,
    fluct: Fluctuation,
    rng: Rng,
}

impl Bandwidth {
    pub(crate) fn new(spec: &LinkSpec, period: Nanos, seed: u64, instance: u64) -> Self {
        let mut rng = stream_rng(seed, stream::LINK_BASE + instance);
        let key = rand::Rng::next_u64(&mut rng);
        let mut b = Bandwidth {
            mean: spec.bandwidth_bps,
            fluct: spec.fluctuation.clone(),
            period: period.max(1),
            rng,
            key,
            k: 0,
            factor: 1.0,
        };
        b.factor = b.factor_for(0, 0);
        b
    }

    /// The uniform draw of period `k`, by random access: a SplitMix64 hash of (this link's
    /// stream key, k). Random access keeps an idle link free of events and of sequential draws.
    fn uniform_at(&self, k: u64) -> f64 {
        let mut z = self.key ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    fn factor_for(&mut self, k: u64, now: Nanos) -> f64 {
        match &self.fluct {
            Fluctuation::None => 1.0,
            Fluctuation::Uniform { frac } => {
                let f = *frac;
                1.0 + f * (2.0 * self.uniform_at(k) - 1.0)
            }
            Fluctuation::RandomWalk { step, bound } => {
                let (step, bound) = (*step, *bound);
                // Sequential: walk from the last computed period (k only grows). The walk's draws
                // use word positions disjoint from nothing else: this stream serves only this link.
                // After a long idle stretch only the last MAX_WALK_STEPS steps are walked: the
                // walk has long forgotten where it was, and walking billions of periods would
                // look like a hang.
                let mut x = self.factor;
                for _ in self.k.max(k.saturating_sub(MAX_WALK_STEPS))..k {
                    x = (x + step * (2.0 * unit_f64(&mut self.rng) - 1.0))
                        .clamp(1.0 - bound, 1.0 + bound);
                }
                x
            }
            Fluctuation::Series { points } => {
                let i = points.partition_point(|p| p.0 <= now);
                points[i.saturating_sub(1)].1
            }
        }
    }

    /// Does the bandwidth ever change?
    pub(crate) fn varies(&self) -> bool {
        !matches!(self.fluct, Fluctuation::None)
    }

    /// Real bandwidth (bits/s) at time `now` (`now` never decreases between calls). Never below
    /// [`limits::MIN_BANDWIDTH_FACTOR`] of the mean, however the fluctuation draws.
    pub(crate) fn at(&mut self, now: Nanos) -> f64 {
        let k = now / self.period;
        if k != self.k {
            let start = k * self.period;
            self.factor = self.factor_for(k, start);
            self.k = k;
        }
        self.mean * self.factor.max(limits::MIN_BANDWIDTH_FACTOR)
    }

    /// Start of the next period after `now`.
    pub(crate) fn next_change(&self, now: Nanos) -> Nanos {
        (now / self.period + 1).saturating_mul(self.period)
    }
}
