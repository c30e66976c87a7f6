//! Batching: admission to a server's batch and the plan of its next run of engine steps, priced
//! by the cost model (prefill-first, mixed or chunked prefill; contention and step noise).

use super::Sim;
use super::events::Ev;
use super::plan::{MAX_RUN_STEPS, PlannedStep};
use super::server::Run;
use crate::cost::StepShape;
use crate::rng::unit_f64;
use crate::spec::{Batching, Nanos};
use crate::world::{ModelId, ServerId};

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

impl Sim<'_> {
    /// Admit what fits and plan the next run of steps on server `s`.
    ///
    /// Step 0 of a run is the only one that may prefill; how it does depends on the server's
    /// [`Batching`]: `mixed` prefills the new prompts whole next to one decode token of every
    /// running sequence, `prefill_first` prefills them alone while the running sequences wait,
    /// `chunked` fills a token budget with one decode token per running sequence and then prompt
    /// tokens in admission order (a prompt that does not fit continues in the next step, so such a
    /// run is one step long). Steps 1.. decode every running sequence.
    pub(super) fn start_run(&mut self, s: ServerId) {
        let server = &self.world.servers[s as usize];
        let hw = &self.world.hardware[server.hardware];
        let srv = &mut self.srv[s as usize];
        if self.stats {
            srv.account_batch(self.now, &mut self.decay);
        }
        let st = &mut self.states[s as usize];
        let flights = &mut self.flights;
        let world = self.world;
        // Prompt tokens step 0 may still prefill (`None`: no limit).
        let mut budget = match server.batching {
            Batching::Chunked { chunk_tokens } => {
                let decoding = srv
                    .running
                    .iter()
                    .filter(|&&f| flights[f as usize].prefill_left() == 0)
                    .count() as u64;
                Some((chunk_tokens as u64).saturating_sub(decoding))
            }
            _ => None,
        };
        // A prompt an earlier chunked step began continues first (at most one such sequence).
        for &f in &srv.running {
            let fl = &mut flights[f as usize];
            let left = fl.prefill_left();
            fl.chunk = budget.map_or(left, |b| b.min(left as u64) as u32);
            if let Some(b) = budget.as_mut() {
                *b -= fl.chunk as u64;
            }
        }
        while srv.running.len() < server.max_batch as usize && budget != Some(0) {
            let Some(&f) = srv.waiting.front() else { break };
            let fl = &mut flights[f as usize];
            let need = fl.kv_need(world);
            if need > srv.kv_free {
                break; // FIFO: the head waits for memory
            }
            srv.waiting.pop_front();
            srv.kv_free -= need;
            fl.admitted = self.now;
            fl.prefilled = 0;
            srv.model_running[fl.model as usize] += 1;
            let prompt = fl.prompt;
            fl.chunk = budget.map_or(prompt, |b| b.min(prompt as u64) as u32);
            if let Some(b) = budget.as_mut() {
                *b -= fl.chunk as u64;
            }
            srv.running.push(f);
            st.queued -= 1;
            st.running += 1;
        }
        st.free_kv_bytes = srv.kv_free;
        self.plans.release(&mut srv.plan);
        if srv.running.is_empty() {
            st.running_models = 0;
            srv.run = None;
            return;
        }
        let prefills = srv.running.iter().any(|&f| flights[f as usize].chunk > 0);
        // Do the running sequences decode in step 0, or wait for the prefill?
        srv.step0_decodes = !(prefills && server.batching == Batching::PrefillFirst);
        // Per-model shapes of step 0 and of the decode steps after it, and the run length.
        self.shapes.clear();
        self.shapes1.clear();
        let mut k = MAX_RUN_STEPS;
        for &f in &srv.running {
            let fl = &flights[f as usize];
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
        st.running_models = self
            .shapes
            .iter()
            .filter(|(m, _)| *m < 64)
            .fold(0, |bits, (m, _)| bits | 1 << m);
        let sim = &self.world.scenario.sim;
        let plan = self.plans.alloc(&mut srv.plan, k);
        let mut t = self.now;
        let mut prefix = 0.0;
        let joules_per_ns = srv.busy_w * 1e-9;
        // Step 0 may prefill; price it on its own.
        let (mut est0, mut batch, mut tokens) = (0, 0u32, 0u64);
        for (m, sh) in &self.shapes {
            if sh.prefill_seqs + sh.decode_seqs == 0 {
                continue;
            }
            est0 = self
                .cost
                .step_ns(hw, server.count, &self.world.models[*m as usize], sh)
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
                    server.count,
                    &self.world.models[*m as usize],
                    sh,
                    &mut self.est[1..],
                );
            }
        }
        let c = server.contention;
        let contention0 = 1.0 + c * batch.saturating_sub(1) as f64;
        let per_token0 = joules_per_ns / tokens.max(1) as f64;
        let decode_batch: u32 = self.shapes1.iter().map(|(_, sh)| sh.decode_seqs).sum();
        let contention = 1.0 + c * decode_batch.saturating_sub(1) as f64;
        let per_token = joules_per_ns / decode_batch.max(1) as f64;
        for ((j, &est), step) in self.est.iter().enumerate().zip(plan.iter_mut()) {
            let (c, pt) = if j == 0 {
                (contention0, per_token0)
            } else {
                (contention, per_token)
            };
            let noise = 1.0 + sim.step_noise * (2.0 * unit_f64(&mut srv.noise) - 1.0);
            let real = (est as f64 * c * noise).max(1.0) as Nanos;
            t = t.saturating_add(real);
            let share = real as f64 * pt;
            if j == 0 {
                srv.step0_per_token = share;
            }
            prefix += share;
            *step = PlannedStep {
                end: t,
                share_prefix: prefix,
            };
        }
        srv.run = Some(Run {
            start: self.now,
            end_idx: k - 1,
            plan_end: t,
        });
        srv.run_version += 1;
        let (end, v) = (t, srv.run_version);
        self.schedule(end, Ev::RunEnd(s, v));
    }
}
