//! Batching: admission to a server's batch and the plan of its next run of engine steps, priced
//! by the cost model (prefill-first, mixed or chunked prefill; contention and step noise).

use super::Sim;
use super::events::Ev;
use super::plan::PlannedStep;
use super::seq::Seq;
use super::server::Run;
use crate::spec::Batching;
use crate::world::ServerId;

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
        let srv = &mut self.srv[s as usize];
        if self.stats {
            srv.account_batch(self.now, &mut self.decay);
        }
        let st = &mut self.states[s as usize];
        let world = self.world;
        // Prompt tokens step 0 may still prefill (`None`: no limit).
        let mut budget = match srv.batching {
            Batching::Chunked { chunk_tokens } => {
                let decoding = srv.running.iter().filter(|q| q.prefill_left() == 0).count() as u64;
                Some((chunk_tokens as u64).saturating_sub(decoding))
            }
            _ => None,
        };
        // A prompt an earlier chunked step began continues first (at most one such sequence).
        for fl in &mut srv.running {
            let left = fl.prefill_left();
            fl.chunk = budget.map_or(left, |b| b.min(left as u64) as u32);
            if let Some(b) = budget.as_mut() {
                *b -= fl.chunk as u64;
            }
        }
        while srv.running.len() < srv.max_batch as usize && budget != Some(0) {
            let Some(&w) = srv.waiting.front() else { break };
            let need = w.kv_need(world);
            if need > srv.kv_free {
                break; // FIFO: the head waits for memory
            }
            srv.waiting.pop_front();
            srv.kv_free -= need;
            let mut fl = Seq::admit(w, self.now);
            if self.stats {
                srv.model_running[fl.model as usize] += 1;
            }
            let prompt = fl.prompt;
            fl.chunk = budget.map_or(prompt, |b| b.min(prompt as u64) as u32);
            if let Some(b) = budget.as_mut() {
                *b -= fl.chunk as u64;
            }
            srv.running.push(fl);
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
        let prefills = srv.running.iter().any(|q| q.chunk > 0);
        // Do the running sequences decode in step 0, or wait for the prefill?
        srv.step0_decodes = !(prefills && srv.batching == Batching::PrefillFirst);
        let p = self.price_run(s);
        self.states[s as usize].running_models = self
            .shapes
            .iter()
            .filter(|(m, _)| *m < 64)
            .fold(0, |bits, (m, _)| bits | 1 << m);
        let step_noise = self.world.scenario.sim.step_noise;
        let srv = &mut self.srv[s as usize];
        let plan = self.plans.alloc(&mut srv.plan, p.k);
        let (mut t, mut prefix) = (self.now, 0.0);
        for ((j, &est), step) in self.est.iter().enumerate().zip(plan.iter_mut()) {
            let (real, share) = p.step(j, est, step_noise, &mut srv.noise);
            t = t.saturating_add(real);
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
            end_idx: p.k - 1,
            plan_end: t,
            end: t,
            first_end: plan[0].end,
            share_end: prefix,
        });
        srv.run_version += 1;
        let (end, v) = (t, srv.run_version);
        self.schedule(end, Ev::RunEnd(s, v));
    }
}
