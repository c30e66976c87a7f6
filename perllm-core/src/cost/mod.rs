//! Cost models: how long an engine step takes, and estimates of a request's latency and energy.

use crate::request::{Energy, Request};
use crate::spec::{Hardware, ModelSpec, Nanos};
use crate::world::{Server, World};

mod calibrated;
mod estimate;
pub use calibrated::{Calibrated, rows_table_ns};
pub use estimate::default_estimate;

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
    /// Models with running sequences, one bit per model id below 64 (0: unknown or none).
    pub running_models: u64,
    /// Mean batch a running sequence shared recently (0: unknown or nothing ran).
    pub mean_batch: f64,
    /// Time-average number of sequences of models other than the request's in the engine,
    /// recently (`None`: unknown; estimates then use `running_models`).
    pub other_models_load: Option<f64>,
}

impl LoadHint {
    /// Does the server run sequences of model `m`? (Models from 64 on are never reported.)
    pub fn runs_model(&self, m: crate::world::ModelId) -> bool {
        m < 64 && self.running_models & (1 << m) != 0
    }
}

/// A cost estimate for one request on one server.
///
/// `#[repr(C)]`: the plugin host writes estimates straight into the ABI's `EstimateView`,
/// whose value fields have this layout (checked at compile time in perllm-host).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[repr(C)]
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
    /// The default ([`default_estimate`], which documents the model) prices the steps the
    /// request will take part in with [`CostModel::step_ns`], slowed by the server's batch
    /// interference (`contention`), for the server's batching choice, and adds a queueing wait
    /// when the server is full.
    fn estimate(&self, world: &World, server: &Server, req: &Request, load: &LoadHint) -> Estimate {
        default_estimate(self, world, server, req, load)
    }

    /// This model as core's [`Roofline`], if it is one: the goodput bound ([`crate::bound`]) is
    /// derived from the roofline's step-time formulas and is computed only then.
    fn as_roofline(&self) -> Option<&Roofline> {
        None
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
