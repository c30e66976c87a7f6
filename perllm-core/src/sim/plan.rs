//! The plan of a server's run of engine steps: the steps' shapes and prices, and the planned
//! steps themselves, kept in one arena.
//!
//! A run plans up to [`MAX_RUN_STEPS`] engine steps ahead (when each ends, and the energy
//! shares). Kept in a vector per server, every server's buffer grew to the longest run it ever
//! planned (4 KiB), so with 10,000 servers the plans spread over 40 MB, each new run wrote to
//! memory that had long left the caches, and each run of the benchmark page-faulted all of it
//! in again. Here the plans are blocks of a power-of-two number of steps in one vector, and a
//! block freed by the end of a run is the next one handed out for a run of its size: the
//! arena stays as large as the plans in use. A run's end reads none of it: the run keeps its
//! end, its first step's end and its energy shares ([`super::server::Run`]); the steps are read
//! only when a request that can join arrives during the run, and by observers.

use super::Sim;
use crate::cost::StepShape;
use crate::rng::{Rng, unit_f64};
use crate::spec::Nanos;
use crate::world::{ModelId, ServerId};

/// Largest number of engine steps planned in one run (bounds the work wasted when a run is cut).
pub(crate) const MAX_RUN_STEPS: usize = 256;

/// One planned engine step of a run: when it ends, and the prefix sum of (step energy / step
/// tokens) up to and including it.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct PlannedStep {
    pub(super) end: Nanos,
    pub(super) share_prefix: f64,
}

/// Number of block sizes: 1, 2, 4, ..., `MAX_RUN_STEPS` steps.
const CLASSES: usize = MAX_RUN_STEPS.ilog2() as usize + 1;
const _: () = assert!(MAX_RUN_STEPS.is_power_of_two());

/// A server's block of the arena (empty: `len == 0`).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Plan {
    at: u32,
    len: u16,
    class: u8,
}

/// Blocks of planned steps, with a free list per block size.
#[derive(Default)]
pub(super) struct Plans {
    steps: Vec<PlannedStep>,
    free: [Vec<u32>; CLASSES],
}

impl Plans {
    /// Returns `plan`'s block to the free list (if it has one) and leaves `plan` empty.
    pub(super) fn release(&mut self, plan: &mut Plan) {
        if plan.len > 0 {
            self.free[plan.class as usize].push(plan.at);
        }
        *plan = Plan::default();
    }

    /// Gives `plan` a block of `k` steps (1..=`MAX_RUN_STEPS`; it must be empty) and returns them.
    pub(super) fn alloc(&mut self, plan: &mut Plan, k: usize) -> &mut [PlannedStep] {
        debug_assert!(plan.len == 0 && (1..=MAX_RUN_STEPS).contains(&k));
        let class = k.next_power_of_two().ilog2() as usize;
        let at = match self.free[class].pop() {
            Some(at) => at,
            None => {
                let at = self.steps.len();
                self.steps.resize(at + (1 << class), PlannedStep::default());
                u32::try_from(at).expect("fewer than 2^32 planned steps")
            }
        };
        *plan = Plan {
            at,
            len: k as u16,
            class: class as u8,
        };
        &mut self.steps[at as usize..at as usize + k]
    }

    /// The steps of `plan`.
    pub(super) fn steps(&self, plan: &Plan) -> &[PlannedStep] {
        &self.steps[plan.at as usize..plan.at as usize + plan.len as usize]
    }
}

/// The first step of `plan` that ends at or after `now` (`plan.len()` if none): the same index
/// as `plan.partition_point(|p| p.end < now)`, found from a guess.
///
/// Steps of a run last about as long as each other, so the index interpolated between the run's
/// `start` and `plan_end` (when its last step ends) is at most a step or two off, and walking
/// from there reads one or two cache lines of a plan that has usually left the caches, where a
/// binary search reads one per halving (perf, 10,000 servers: 4% of a run).
pub(super) fn first_ending_at_or_after(
    plan: &[PlannedStep],
    start: Nanos,
    plan_end: Nanos,
    now: Nanos,
) -> usize {
    let k = plan.len();
    let span = plan_end.saturating_sub(start).max(1) as u128;
    let guess = (now.saturating_sub(start) as u128 * k as u128 / span) as usize;
    let mut j = guess.min(k);
    // Ends never decrease: everything left of the answer ends before `now`, nothing after.
    while j > 0 && plan[j - 1].end >= now {
        j -= 1;
    }
    while j < k && plan[j].end < now {
        j += 1;
    }
    j
}

/// The shape of model `m` in `shapes`, added empty if absent.
fn shape_of(shapes: &mut Vec<(ModelId, StepShape)>, m: ModelId) -> &mut StepShape {
    let i = match shapes.iter().position(|x| x.0 == m) {
        Some(i) => i,
        None => {
            shapes.push((m, StepShape::default()));
            shapes.len() - 1
        }
    };
    &mut shapes[i].1
}

/// The prices of a run's steps (with the estimates in `Sim::est`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Pricing {
    /// Number of steps planned.
    pub(super) k: usize,
    contention0: f64,
    per_token0: f64,
    contention: f64,
    per_token: f64,
}

impl Pricing {
    /// Step `j` of estimate `est`: its real duration (contention and a noise draw from `noise`)
    /// and its energy share per token.
    pub(super) fn step(
        &self,
        j: usize,
        est: Nanos,
        step_noise: f64,
        noise: &mut Rng,
    ) -> (Nanos, f64) {
        let (c, pt) = if j == 0 {
            (self.contention0, self.per_token0)
        } else {
            (self.contention, self.per_token)
        };
        let noise = 1.0 + step_noise * (2.0 * unit_f64(noise) - 1.0);
        let real = (est as f64 * c * noise).max(1.0) as Nanos;
        (real, real as f64 * pt)
    }
}

impl Sim<'_> {
    /// Per-model shapes of step 0 and of the decode steps after it (`shapes`, `shapes1`), the
    /// run length and each step's cost-model estimate (`est`) for server `s`'s current batch: a
    /// pure function of the batch, so the same when a run is replayed.
    pub(super) fn price_run(&mut self, s: ServerId) -> Pricing {
        let world = self.world;
        let srv = &self.srv[s as usize];
        let hw = &world.hardware[srv.hardware as usize];
        self.shapes.clear();
        self.shapes1.clear();
        let mut k = MAX_RUN_STEPS;
        for fl in &srv.running {
            let m = fl.model;
            let (prompt, out) = (fl.prompt as u64, fl.output);
            let sh = shape_of(&mut self.shapes, m);
            if fl.chunk > 0 {
                sh.prefill_tokens += fl.chunk as u64;
                sh.prefill_seqs += 1;
                // A continued prompt's attention reads the part prefilled before.
                sh.kv_tokens += fl.prefilled as u64;
                if fl.prefilled + fl.chunk < fl.prompt {
                    k = 1; // the prompt goes on in the next step
                    continue;
                }
                // Step 0 gives its first token; it decodes from step 1.
                let sh1 = shape_of(&mut self.shapes1, m);
                sh1.decode_seqs += 1;
                sh1.kv_tokens += prompt + 1;
                k = k.min(out as usize);
            } else if fl.prefill_left() > 0 {
                k = 1; // not reached by the budget (cannot happen with chunk_tokens >= max_batch)
            } else {
                let kv = prompt + fl.generated as u64;
                let left = (out - fl.generated) as usize;
                let sh1 = shape_of(&mut self.shapes1, m);
                sh1.decode_seqs += 1;
                if srv.step0_decodes {
                    sh.decode_seqs += 1;
                    sh.kv_tokens += kv;
                    sh1.kv_tokens += kv + 1;
                    k = k.min(left);
                } else {
                    sh1.kv_tokens += kv;
                    k = k.min(left + 1);
                }
            }
        }
        let joules_per_ns = srv.busy_w * 1e-9;
        // Step 0 may prefill; price it on its own.
        let (mut est0, mut batch, mut tokens) = (0, 0u32, 0u64);
        for (m, sh) in &self.shapes {
            if sh.prefill_seqs + sh.decode_seqs == 0 {
                continue;
            }
            est0 = self
                .cost
                .step_ns(hw, srv.count, &world.models[*m as usize], sh)
                .saturating_add(est0);
            batch += sh.decode_seqs + sh.prefill_seqs;
            tokens += sh.prefill_tokens + sh.decode_seqs as u64;
        }
        // Steps 1.. are decode-only with a fixed batch: price them per model in one call each.
        self.est.clear();
        self.est.resize(k, 0);
        self.est[0] = est0;
        if k > 1 {
            for (m, sh) in &self.shapes1 {
                self.cost.add_decode_steps_ns(
                    hw,
                    srv.count,
                    &world.models[*m as usize],
                    sh,
                    &mut self.est[1..],
                );
            }
        }
        let c = srv.contention;
        let decode_batch: u32 = self.shapes1.iter().map(|(_, sh)| sh.decode_seqs).sum();
        Pricing {
            k,
            contention0: 1.0 + c * batch.saturating_sub(1) as f64,
            per_token0: joules_per_ns / tokens.max(1) as f64,
            contention: 1.0 + c * decode_batch.saturating_sub(1) as f64,
            per_token: joules_per_ns / decode_batch.max(1) as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guessed_search_finds_the_partition_point() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..2_000 {
            let k = 1 + (next() % 256) as usize;
            let start = next() % 1_000_000;
            // Uneven steps, some of one nanosecond, and the end of time.
            let mut t = start;
            let plan: Vec<PlannedStep> = (0..k)
                .map(|_| {
                    let d = match next() % 4 {
                        0 => 1,
                        1 => next() % 1_000_000,
                        _ => 10_000 + next() % 1_000,
                    };
                    t = if next() % 500 == 0 {
                        u64::MAX
                    } else {
                        t.saturating_add(d.max(1))
                    };
                    PlannedStep {
                        end: t,
                        share_prefix: 0.0,
                    }
                })
                .collect();
            let end = plan[k - 1].end;
            for now in [
                start,
                start + 1,
                end,
                end.saturating_add(1),
                start + (next() % (end - start).saturating_add(1)),
            ] {
                assert_eq!(
                    first_ending_at_or_after(&plan, start, end, now),
                    plan.partition_point(|p| p.end < now)
                );
            }
        }
    }

    #[test]
    fn blocks_are_reused_by_size_and_never_overlap() {
        let mut plans = Plans::default();
        let (mut a, mut b, mut c) = (Plan::default(), Plan::default(), Plan::default());
        plans.alloc(&mut a, 3).fill(PlannedStep {
            end: 1,
            share_prefix: 1.0,
        });
        plans.alloc(&mut b, 256).fill(PlannedStep {
            end: 2,
            share_prefix: 2.0,
        });
        assert_eq!(plans.steps.len(), 4 + 256);
        assert!(plans.steps(&a).iter().all(|s| s.end == 1));
        assert_eq!(plans.steps(&b).len(), 256);
        plans.release(&mut a);
        assert_eq!(plans.steps(&a).len(), 0);
        // A run of 4 steps takes the freed block of 4; one of 5 needs a new block of 8.
        plans.alloc(&mut c, 4);
        assert_eq!(c.at, 0);
        plans.alloc(&mut a, 5);
        assert_eq!((a.at, plans.steps.len()), (260, 268));
        assert!(plans.steps(&b).iter().all(|s| s.end == 2));
    }
}
