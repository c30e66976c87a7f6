//! The default request estimate: what [`CostModel::estimate`] returns unless a model overrides it.

use super::{CostModel, Estimate, LoadHint, StepShape};
use crate::request::{Energy, Request};
use crate::spec::{Batching, Nanos};
use crate::world::{ModelId, Server, World};

/// The body of [`CostModel::estimate`]'s default, usable by implementations that override it.
///
/// It aims at the simulator's mean: the mean of realised / estimated latency over many requests
/// is close to 1 (docs/fidelity.md measures it). Every engine step is priced with
/// [`CostModel::step_ns`] and slowed by the server's batch interference,
/// `1 + contention x (b - 1)` for a step of `b` sequences (the hardware's calibrated value; the
/// simulator's per-step noise has mean 1 and is left out).
///
/// - Concurrency: a server holds at most `slots` requests like this one, the smaller of
///   `max_batch` and how many fit in its KV memory. The request shares its steps with
///   `others = min(running, slots - 1)` sequences, each holding about `prompt + output / 2`
///   tokens of KV cache (the request's own sizes stand for the mean ones).
/// - Other hosted models: when the server runs sequences of other models (`load.running_models`),
///   each step also reads their weights (one decode step of each such model).
/// - Prefill, by the server's batching: `mixed` prefills the prompt in one step next to one
///   decode token of each of the others; `prefill_first` prefills it alone; `chunked` splits it
///   into steps of at most `chunk_tokens - others` prompt tokens, each next to the others'
///   decode tokens.
/// - Decode: `output - 1` steps at a batch of `others + 1`. While it decodes, about `others`
///   new requests join (in a full engine each running sequence is replaced about once per
///   request lifetime); their prompts (priced at this request's prompt length) make as many
///   steps longer (`mixed`, `chunked`) or add as many prefill-only steps during which this
///   request waits (`prefill_first`).
/// - Queueing: when the server is full (`queued + running >= slots`), or the request's KV does
///   not fit in the free memory now, the request waits for `(queued + running - slots) / slots
///   + 1` rounds, one request's service time (prefill + decode) each.
/// - Energy: the busy power over the prefill, and over the decode divided by the batch.
pub fn default_estimate<C: CostModel + ?Sized>(
    cm: &C,
    world: &World,
    server: &Server,
    req: &Request,
    load: &LoadHint,
) -> Estimate {
    let model = &world.models[req.model as usize];
    let link = &world.links[server.link];
    let share_bps = (load.bandwidth_bps / (load.active_uploads as f64 + 1.0)).max(1.0);
    let upload_ns = link
        .latency_ns
        .saturating_add((req.input_bytes as f64 * 8.0 / share_bps * 1e9) as Nanos);
    let download_ns = link.latency_ns.saturating_add(
        (req.output_bytes as f64 * 8.0 / load.bandwidth_bps.max(1.0) * 1e9) as Nanos,
    );
    let (prompt, output) = (req.prompt_tokens as u64, req.output_tokens as u64);
    // Concurrency is limited by the batch size and by KV memory: a server holds at most
    // `kv_capacity / kv_need` requests like this one at once.
    let kv_need = prompt
        .saturating_add(output)
        .saturating_mul(model.kv_bytes_per_token)
        .max(1);
    let kv_slots = (server.kv_capacity_bytes / kv_need).clamp(1, u32::MAX as u64) as u32;
    let slots = server.max_batch.min(kv_slots).max(1);
    // KV held by a typical running sequence: about its prompt and half its output.
    let kv_seq = prompt.saturating_add(output / 2);
    let decode_steps = output.saturating_sub(1);
    let job = Job {
        world,
        server,
        req,
        kv_seq,
        decode_steps,
    };
    // A first pass with what runs now.
    let now = load.running.min(slots - 1);
    let now_models = job.other_models_ns(cm, |m| f64::from(u8::from(load.runs_model(m))));
    let (p0, d0) = job.times(cm, now, now as f64, now_models);
    let stay = p0.saturating_add(d0).max(1) as f64;
    // Sequences sharing the request's steps: an engine that recently ran fuller than now fills
    // up during the stay (taken as a straight ramp from now to the recent mean batch a
    // sequence shared); one running fuller than that stays so.
    let steady = load.mean_batch - 1.0;
    let others = if steady > now as f64 {
        (now as f64 + steady) / 2.0
    } else {
        now as f64
    }
    .min((slots - 1) as f64);
    // Requests joining during the decode: in a steady state, as many as the others a sequence
    // shares its steps with (they overlap it by half on average, and half of the ones it
    // overlaps start after it), or the ones running now, each replaced once.
    let joining = steady.max(now as f64).min(decode_steps as f64);
    // Other models: one running now stays for about half the stay unless the recent mean says
    // more; one absent now arrives at its recent rate (its mean load over the stay of a
    // request of that model alone) and then runs for about half of the rest.
    let other_load = load.other_models_load;
    let other_share: f64 = server
        .models
        .iter()
        .filter(|&&m| m != req.model)
        .map(|&m| job.share(m))
        .sum();
    let other_models = job.other_models_ns(cm, |m| {
        let Some(l) = other_load else {
            return f64::from(u8::from(load.runs_model(m)));
        };
        let l = l.max(0.0) * job.share(m) / other_share.max(f64::MIN_POSITIVE);
        if load.runs_model(m) {
            (1.0 + 1.0 - (-l).exp()) / 2.0
        } else {
            let own = job.alone_ns(cm, m).max(1) as f64;
            (1.0 - (-l * stay / own).exp()) / 2.0
        }
    });
    // Between two whole numbers of others, the times are interpolated.
    let lo = others.floor() as u32;
    let frac = others - lo as f64;
    let (p_lo, d_lo) = job.times(cm, lo, joining, other_models);
    let (prefill_ns, decode_ns) = if frac > 0.0 {
        let (p_hi, d_hi) = job.times(cm, lo + 1, joining, other_models);
        let mix = |a: Nanos, b: Nanos| (a as f64 + (b as f64 - a as f64) * frac) as Nanos;
        (mix(p_lo, p_hi), mix(d_lo, d_hi))
    } else {
        (p_lo, d_lo)
    };
    let batch = others + 1.0;
    let occupied = load.queued.saturating_add(load.running);
    let queue_ns = if occupied >= slots || (kv_need > load.free_kv_bytes && load.running > 0) {
        let rounds = occupied.saturating_sub(slots) / slots + 1;
        // A round frees a batch after roughly one average request's service.
        (rounds as u64).saturating_mul(prefill_ns.saturating_add(decode_ns))
    } else {
        0
    };
    let busy_w = world.server_power_w(server).1;
    let inference = busy_w * (prefill_ns as f64 / 1e9) + busy_w * (decode_ns as f64 / 1e9) / batch;
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

/// What the step prices of one estimate share.
struct Job<'a> {
    world: &'a World,
    server: &'a Server,
    req: &'a Request,
    kv_seq: u64,
    decode_steps: u64,
}

impl Job<'_> {
    /// A step of model `m` on the server.
    fn step<C: CostModel + ?Sized>(&self, cm: &C, m: ModelId, shape: StepShape) -> Nanos {
        let hw = &self.world.hardware[self.server.hardware];
        cm.step_ns(
            hw,
            self.server.count,
            &self.world.models[m as usize],
            &shape,
        )
    }

    /// The workload share of model `m`.
    fn share(&self, m: ModelId) -> f64 {
        self.world
            .model_shares
            .iter()
            .find(|x| x.0 == m)
            .map_or(0.0, |x| x.1)
    }

    /// A request of this size but of model `m`, alone on the server: prefill and decode.
    fn alone_ns<C: CostModel + ?Sized>(&self, cm: &C, m: ModelId) -> Nanos {
        let prompt = self.req.prompt_tokens as u64;
        let prefill = StepShape {
            prefill_tokens: prompt,
            prefill_seqs: 1,
            ..StepShape::default()
        };
        let decode = StepShape {
            decode_seqs: 1,
            kv_tokens: self.kv_seq,
            ..StepShape::default()
        };
        self.step(cm, m, prefill)
            .saturating_add(self.step(cm, m, decode).saturating_mul(self.decode_steps))
    }

    /// What the other hosted models add to each step: one decode step of each, times the chance
    /// `presence(m)` that it has sequences in the engine.
    fn other_models_ns<C: CostModel + ?Sized>(
        &self,
        cm: &C,
        presence: impl Fn(ModelId) -> f64,
    ) -> Nanos {
        self.server
            .models
            .iter()
            .filter(|&&m| m != self.req.model)
            .map(|&m| {
                let t = self.step(
                    cm,
                    m,
                    StepShape {
                        decode_seqs: 1,
                        kv_tokens: self.kv_seq,
                        ..StepShape::default()
                    },
                );
                (t as f64 * presence(m).clamp(0.0, 1.0)) as Nanos
            })
            .fold(0, Nanos::saturating_add)
    }

    /// Prefill and decode times when `others` sequences share the request's steps, `joining`
    /// requests are prefilled during its decode and the other models add `other_models` to
    /// each step.
    fn times<C: CostModel + ?Sized>(
        &self,
        cm: &C,
        others: u32,
        joining: f64,
        other_models: Nanos,
    ) -> (Nanos, Nanos) {
        let server = self.server;
        let m = self.req.model;
        let prompt = self.req.prompt_tokens as u64;
        let kv_seq = self.kv_seq;
        let batch = others + 1;
        let slow = |t: Nanos| (t as f64 * (1.0 + server.contention * others as f64)) as Nanos;
        let step = |prefill: u64, decode: u32, kv: u64| {
            self.step(
                cm,
                m,
                StepShape {
                    prefill_tokens: prefill,
                    prefill_seqs: u32::from(prefill > 0),
                    decode_seqs: decode,
                    kv_tokens: kv,
                },
            )
        };
        let others_kv = kv_seq.saturating_mul(others as u64);
        let decode_step =
            slow(step(0, batch, kv_seq.saturating_mul(batch as u64)).saturating_add(other_models));
        // A step that prefills `p` prompt tokens next to the others' decode tokens.
        let mixed_step = |p: u64, kv: u64| slow(step(p, others, kv).saturating_add(other_models));
        // Prefill, and what one joining request's prefill adds to this request's decode.
        let (prefill_ns, joining_ns) = match server.batching {
            Batching::Mixed => {
                let s = mixed_step(prompt, others_kv);
                (s, s.saturating_sub(decode_step))
            }
            Batching::PrefillFirst => {
                let s = step(prompt, 0, 0);
                (s, s)
            }
            Batching::Chunked { chunk_tokens } => {
                let budget = (chunk_tokens as u64).saturating_sub(others as u64).max(1);
                let chunks = prompt.div_ceil(budget);
                // Priced at the mean chunk, reading the mean prefix.
                let s = mixed_step(
                    prompt.div_ceil(chunks),
                    others_kv.saturating_add(prompt / 2),
                );
                let all = s.saturating_mul(chunks);
                (all, all.saturating_sub(decode_step.saturating_mul(chunks)))
            }
        };
        let decode_ns = decode_step
            .saturating_mul(self.decode_steps)
            .saturating_add((joining_ns as f64 * joining) as Nanos);
        (prefill_ns, decode_ns)
    }
}
