//! Cost models: how long an engine step takes, and estimates of a request's latency and energy.

use crate::request::{Energy, Request};
use crate::spec::{Hardware, ModelSpec, Nanos};
use crate::world::{Server, World};

/// The shape of one engine step for one model: what the cost model prices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepShape {
    /// Prompt tokens prefilled in this step (sum over newly admitted sequences).
    pub prefill_tokens: u64,
    /// Sequences newly admitted (prefilled) in this step.
    pub prefill_seqs: u32,
    /// Sequences producing one decode token in this step.
    pub decode_seqs: u32,
    /// Tokens held in the KV cache by the decoding sequences (read once each by the step).
    pub kv_tokens: u64,
}

/// What a server is doing, as far as a cost estimate needs to know.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LoadHint {
    /// Requests waiting at the server (uploaded, not admitted).
    pub queued: u32,
    /// Requests running in the engine.
    pub running: u32,
    /// Transfers in flight on the server's link (uplink).
    pub active_uploads: u32,
    /// Bandwidth the link's mean offers, bits/s.
    pub bandwidth_bps: f64,
    /// Free KV-cache bytes on the server (capacity minus running requests' reservations).
    pub free_kv_bytes: u64,
}

/// A cost estimate for one request on one server.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Estimate {
    /// Upload: latency + transfer at the estimated bandwidth share.
    pub upload_ns: Nanos,
    /// Estimated wait before admission.
    pub queue_ns: Nanos,
    /// Prefill step.
    pub prefill_ns: Nanos,
    /// All decode steps.
    pub decode_ns: Nanos,
    /// Download: latency + transfer.
    pub download_ns: Nanos,
    /// Energy attributable to this request (idle is the server's idle power over the request's
    /// share of a step-free interval: 0 in the default estimate).
    pub energy: Energy,
}

impl Estimate {
    /// Estimated processing time D.
    pub fn total_ns(&self) -> Nanos {
        self.upload_ns
            .saturating_add(self.queue_ns)
            .saturating_add(self.prefill_ns)
            .saturating_add(self.decode_ns)
            .saturating_add(self.download_ns)
    }
    /// True if every field is finite (floats) — used to validate plugin output.
    pub fn is_valid(&self) -> bool {
        let e = &self.energy;
        [e.transmission, e.inference, e.idle]
            .iter()
            .all(|v| v.is_finite() && *v >= 0.0)
    }
}

/// Prices engine steps and estimates requests. Only [`CostModel::step_ns`] is required.
pub trait CostModel: Send + Sync {
    /// Name shown in reports.
    fn name(&self) -> &str;

    /// Time of one engine step of `model` on a server of `count` x `hw`, with the given shape.
    /// Must be positive for a non-empty shape.
    fn step_ns(&self, hw: &Hardware, count: u32, model: &ModelSpec, shape: &StepShape) -> Nanos;

    /// Add to `out[j]` the time of the `j`-th of `out.len()` consecutive decode-only steps that
    /// start from `shape` (no prefill); each step grows the KV cache by one token per sequence
    /// (`kv_tokens += decode_seqs`). The simulator prices a run of steps with one call per model.
    ///
    /// The default calls [`CostModel::step_ns`] once per step; override it when the steps can be
    /// priced faster (the roofline model does it without a division per step).
    fn add_decode_steps_ns(
        &self,
        hw: &Hardware,
        count: u32,
        model: &ModelSpec,
        shape: &StepShape,
        out: &mut [Nanos],
    ) {
        let mut sh = StepShape {
            prefill_tokens: 0,
            prefill_seqs: 0,
            ..*shape
        };
        for o in out.iter_mut() {
            *o += self.step_ns(hw, count, model, &sh);
            sh.kv_tokens += sh.decode_seqs as u64;
        }
    }

    /// Estimate latency and energy of `req` on `server` under `load`, from mean values.
    ///
    /// The default prices prefill as one step with the request alone, decode as `output - 1`
    /// steps at a batch of `min(running + 1, slots)` sequences, where `slots` is the smaller of
    /// `max_batch` and how many requests of this size fit in the server's KV memory; it adds a
    /// queueing estimate of `(queued + running - slots) / slots + 1` request service times when the
    /// server is full (or the request's KV does not fit in the free memory now), and attributes
    /// to the request its token share of each step's busy energy.
    fn estimate(&self, world: &World, server: &Server, req: &Request, load: &LoadHint) -> Estimate {
        default_estimate(self, world, server, req, load)
    }

    /// This model as core's [`Roofline`], if it is one: the goodput bound ([`crate::bound`]) is
    /// derived from the roofline's step-time formulas and is computed only then.
    fn as_roofline(&self) -> Option<&Roofline> {
        None
    }
}

/// The body of [`CostModel::estimate`]'s default, usable by implementations that override it.
pub fn default_estimate<C: CostModel + ?Sized>(
    cm: &C,
    world: &World,
    server: &Server,
    req: &Request,
    load: &LoadHint,
) -> Estimate {
    let hw = &world.hardware[server.hardware];
    let model = &world.models[req.model as usize];
    let link = &world.links[server.link];
    let share_bps = (load.bandwidth_bps / (load.active_uploads as f64 + 1.0)).max(1.0);
    let upload_ns = link
        .latency_ns
        .saturating_add((req.input_bytes as f64 * 8.0 / share_bps * 1e9) as Nanos);
    let download_ns = link.latency_ns.saturating_add(
        (req.output_bytes as f64 * 8.0 / load.bandwidth_bps.max(1.0) * 1e9) as Nanos,
    );
    let prefill_ns = cm.step_ns(
        hw,
        server.count,
        model,
        &StepShape {
            prefill_tokens: req.prompt_tokens as u64,
            prefill_seqs: 1,
            decode_seqs: 0,
            kv_tokens: 0,
        },
    );
    // Concurrency is limited by the batch size and by KV memory: a server holds at most
    // `kv_capacity / kv_need` requests like this one at once.
    let kv_need = (req.prompt_tokens as u64 + req.output_tokens as u64)
        .saturating_mul(model.kv_bytes_per_token)
        .max(1);
    let kv_slots = (server.kv_capacity_bytes / kv_need).clamp(1, u32::MAX as u64) as u32;
    let slots = server.max_batch.min(kv_slots).max(1);
    let batch = (load.running + 1).min(slots).max(1);
    let decode_steps = req.output_tokens.saturating_sub(1) as u64;
    // Average KV read per step: each of `batch` sequences holds about prompt + output/2 tokens.
    let kv_avg =
        (req.prompt_tokens as u64 + req.output_tokens as u64 / 2).saturating_mul(batch as u64);
    let step = if decode_steps > 0 {
        cm.step_ns(
            hw,
            server.count,
            model,
            &StepShape {
                prefill_tokens: 0,
                prefill_seqs: 0,
                decode_seqs: batch,
                kv_tokens: kv_avg,
            },
        )
    } else {
        0
    };
    let decode_ns = step.saturating_mul(decode_steps);
    let occupied = load.queued + load.running;
    let queue_ns = if occupied >= slots || (kv_need > load.free_kv_bytes && load.running > 0) {
        let rounds = occupied.saturating_sub(slots) / slots + 1;
        // A round frees a batch after roughly one average request's decode.
        (rounds as u64).saturating_mul(prefill_ns.saturating_add(decode_ns))
    } else {
        0
    };
    let busy_w = hw.power_busy_w * server.count as f64;
    let inference =
        busy_w * (prefill_ns as f64 / 1e9) + busy_w * (decode_ns as f64 / 1e9) / batch as f64;
    let transmission =
        (req.input_bytes as f64 + req.output_bytes as f64) * 8.0 * link.energy_j_per_bit;
    Estimate {
        upload_ns,
        queue_ns,
        prefill_ns,
        decode_ns,
        download_ns,
        energy: Energy {
            transmission,
            inference,
            idle: 0.0,
        },
    }
}

/// The roofline cost model: prefill bound by compute, decode by memory bandwidth.
///
/// - prefill: `2 x params x prompt_tokens` FLOPs at `compute x compute_efficiency x count`;
/// - decode: weights read once per step (shared by the batch) plus every sequence's KV cache,
///   at `memory_bandwidth x bandwidth_efficiency x count`; plus the (small) decode FLOPs if they
///   dominate;
/// - a step that mixes prefill and decode costs the larger of its compute and memory times;
/// - plus a fixed per-step overhead.
#[derive(Clone, Debug, PartialEq)]
pub struct Roofline {
    /// Fixed overhead per step (kernel launches, scheduling), ns.
    pub step_overhead_ns: Nanos,
}

impl Default for Roofline {
    fn default() -> Self {
        Roofline {
            step_overhead_ns: 200_000,
        }
    }
}

impl CostModel for Roofline {
    fn name(&self) -> &str {
        "roofline"
    }

    fn as_roofline(&self) -> Option<&Roofline> {
        Some(self)
    }

    fn step_ns(&self, hw: &Hardware, count: u32, model: &ModelSpec, s: &StepShape) -> Nanos {
        if s.prefill_tokens == 0 && s.decode_seqs == 0 {
            return 0;
        }
        let n = count.max(1) as f64;
        let flops = hw.compute_flops * hw.compute_efficiency() * n;
        let bw = hw.memory_bandwidth_bytes_per_s * hw.bandwidth_efficiency() * n;
        let tokens = s.prefill_tokens as f64 + s.decode_seqs as f64;
        let compute_s = 2.0 * model.params * tokens / flops;
        let memory_s =
            (model.weight_bytes() + s.kv_tokens as f64 * model.kv_bytes_per_token as f64) / bw;
        let t = compute_s.max(memory_s);
        self.step_overhead_ns
            .saturating_add((t * 1e9 + 0.5) as Nanos)
    }

    fn add_decode_steps_ns(
        &self,
        hw: &Hardware,
        count: u32,
        model: &ModelSpec,
        s: &StepShape,
        out: &mut [Nanos],
    ) {
        if s.decode_seqs == 0 {
            return;
        }
        let n = count.max(1) as f64;
        let flops = hw.compute_flops * hw.compute_efficiency() * n;
        let bw = hw.memory_bandwidth_bytes_per_s * hw.bandwidth_efficiency() * n;
        let compute_s = 2.0 * model.params * s.decode_seqs as f64 / flops;
        let inv_bw = 1.0 / bw;
        let per_kv = model.kv_bytes_per_token as f64 * inv_bw;
        let base = model.weight_bytes() * inv_bw;
        let mut kv = s.kv_tokens as f64;
        let growth = s.decode_seqs as f64;
        for o in out.iter_mut() {
            let t = compute_s.max(base + kv * per_kv);
            *o = o.saturating_add(
                self.step_overhead_ns
                    .saturating_add((t * 1e9 + 0.5) as Nanos),
            );
            kv += growth;
        }
    }
}
