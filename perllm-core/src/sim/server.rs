//! A server: its FIFO queue, its running batch and the run of steps under way, its busy time and
//! batch statistics; arrivals at the server and the end of a run.

use super::Sim;
use super::events::Ev;
use super::link::{Bandwidth, Direction};
use crate::observer::Observer;
use crate::policy::MEAN_BATCH_WINDOW_S;
use crate::rng::{Rng, stream, stream_rng};
use crate::spec::Nanos;
use crate::world::{Server, ServerId, World};
use std::collections::VecDeque;

/// The run of engine steps under way on a server (steps `0..=end_idx` of `step_ends`).
pub(super) struct Run {
    pub(super) start: Nanos,
    pub(super) end_idx: usize,
}

/// One server's state in the simulation.
pub(super) struct Srv {
    pub(super) up: Direction,
    pub(super) down: Direction,
    pub(super) bw: Bandwidth,
    pub(super) cur_bw: f64,
    pub(super) redraw_scheduled: bool,
    pub(super) waiting: VecDeque<u32>,
    pub(super) running: Vec<u32>,
    pub(super) kv_free: u64,
    pub(super) run: Option<Run>,
    pub(super) run_version: u64,
    pub(super) step_ends: Vec<Nanos>,
    /// Prefix sums of (step energy / step tokens).
    pub(super) share_prefix: Vec<f64>,
    pub(super) step0_per_token: f64,
    /// Whether the running sequences decode in step 0 of the current run (not while a
    /// prefill-first step prefills).
    pub(super) step0_decodes: bool,
    pub(super) busy_ns: Nanos,
    pub(super) busy_at_decision: Nanos,
    pub(super) steps: u64,
    pub(super) busy_w: f64,
    pub(super) noise: Rng,
    /// Exponentially weighted integrals of `running` and `running^2` over time (seconds) up to
    /// `batch_at`, for [`crate::policy::ServerState::mean_batch`].
    pub(super) batch_s: f64,
    pub(super) batch2_s: f64,
    pub(super) batch_at: Nanos,
    /// Running sequences per model, and the exponentially weighted integrals of those counts and
    /// of time, for [`crate::policy::ClusterView::model_load`].
    pub(super) model_running: Vec<u32>,
    pub(super) model_s: Vec<f64>,
    pub(super) time_s: f64,
}

impl Srv {
    /// Server `s` idle, its link at its nominal bandwidth.
    pub(super) fn new(world: &World, s: &Server, seed: u64) -> Self {
        let spec = &world.links[s.link];
        let bw = Bandwidth::new(spec, world.redraw_ns(s.link), seed, s.id as u64);
        Srv {
            up: Direction::default(),
            down: Direction::default(),
            cur_bw: spec.bandwidth_bps,
            bw,
            redraw_scheduled: false,
            waiting: VecDeque::new(),
            running: Vec::new(),
            kv_free: s.kv_capacity_bytes,
            run: None,
            run_version: 0,
            step_ends: Vec::new(),
            share_prefix: Vec::new(),
            step0_per_token: 0.0,
            step0_decodes: true,
            busy_ns: 0,
            busy_at_decision: 0,
            steps: 0,
            busy_w: world.server_power_w(s).1,
            noise: stream_rng(seed, stream::SERVER_BASE + s.id as u64),
            batch_s: 0.0,
            batch2_s: 0.0,
            batch_at: 0,
            model_running: vec![0; world.models.len()],
            model_s: vec![0.0; world.models.len()],
            time_s: 0.0,
        }
    }

    /// Adds the time since the last call, at the current batch, to the mean-batch integrals.
    pub(super) fn account_batch(&mut self, now: Nanos, decay: &mut DecayMemo) {
        let elapsed = now.saturating_sub(self.batch_at);
        if elapsed > 0 {
            let dt = elapsed as f64 / 1e9;
            let decay = decay.factor(elapsed, dt);
            let r = self.running.len() as f64;
            self.batch_s = self.batch_s * decay + r * dt;
            self.batch2_s = self.batch2_s * decay + r * r * dt;
            self.time_s = self.time_s * decay + dt;
            for (acc, &n) in self.model_s.iter_mut().zip(&self.model_running) {
                *acc = *acc * decay + n as f64 * dt;
            }
        }
        self.batch_at = now;
    }
}

/// The decay factor `exp(-dt / MEAN_BATCH_WINDOW_S)` of the last interval it was asked for.
///
/// Every server is brought up to date at each decision, so most of them ask for the same
/// interval (since the previous decision): with 10,000 servers the exponential was a sixth of
/// the instructions of a run (callgrind). Same interval, same bits: results do not change.
#[derive(Default)]
pub(super) struct DecayMemo {
    elapsed: Nanos,
    factor: f64,
}

impl DecayMemo {
    fn factor(&mut self, elapsed: Nanos, dt: f64) -> f64 {
        if elapsed != self.elapsed || self.elapsed == 0 {
            self.elapsed = elapsed;
            self.factor = (-dt / MEAN_BATCH_WINDOW_S).exp();
        }
        self.factor
    }
}

impl Sim<'_> {
    /// Flight `f`'s upload reached its server: it queues, and may join the batch at the next
    /// step boundary.
    pub(super) fn on_at_server(&mut self, f: u32) {
        let fl = &mut self.flights[f as usize];
        fl.at_server = self.now;
        let s = fl.server;
        let (out, need) = (fl.req.output_tokens, fl.kv_need);
        let st = &mut self.states[s as usize];
        st.uploading -= 1;
        st.queued += 1;
        st.pending_output_tokens += out as u64;
        let srv = &mut self.srv[s as usize];
        srv.waiting.push_back(f);
        let max_batch = self.world.servers[s as usize].max_batch as usize;
        let can_join =
            srv.running.len() < max_batch && srv.waiting.len() == 1 && need <= srv.kv_free;
        if let Some(run) = srv.run.as_mut() {
            // Continuous batching: a request that can join the batch joins at the next step boundary.
            if can_join {
                let now = self.now;
                let j = srv.step_ends.partition_point(|&e| e < now);
                if j < run.end_idx {
                    run.end_idx = j;
                    srv.run_version += 1;
                    let (t, v) = (srv.step_ends[j], srv.run_version);
                    self.schedule(t, Ev::RunEnd(s, v));
                }
            }
        } else {
            self.start_run(s);
        }
    }

    /// Server `s`'s run ends: account the steps, hand out tokens and energy, start the downloads
    /// of finished requests and plan the next run.
    pub(super) fn on_run_end(&mut self, s: ServerId, obs: &mut [&mut dyn Observer]) {
        let now = self.now;
        let srv = &mut self.srv[s as usize];
        let run = srv.run.take().expect("RunEnd only for an active run");
        if self.stats {
            srv.account_batch(now, &mut self.decay);
        }
        let done_steps = run.end_idx + 1;
        srv.busy_ns += srv.step_ends[run.end_idx] - run.start;
        srv.steps += done_steps as u64;
        self.counters.steps += done_steps as u64;
        if !obs.is_empty() {
            let mut start = run.start;
            for &end in &srv.step_ends[..done_steps] {
                for o in obs.iter_mut() {
                    o.on_step(s, start, end);
                }
                start = end;
            }
        }
        let share_all = srv.share_prefix[run.end_idx];
        let share0 = srv.step0_per_token;
        let first_end = srv.step_ends[0];
        let mut produced = 0u64;
        let mut i = 0;
        let mut finished = std::mem::take(&mut self.scratch_done);
        finished.clear();
        while i < srv.running.len() {
            let f = srv.running[i];
            let fl = &mut self.flights[f as usize];
            if fl.chunk > 0 {
                fl.prefilled += fl.chunk;
                fl.inference_j += fl.chunk as f64 * share0;
                fl.chunk = 0;
                if fl.prefill_left() == 0 {
                    fl.first_token = first_end;
                    fl.generated = done_steps as u32;
                    fl.inference_j += share_all - share0;
                    produced += done_steps as u64;
                    let r = fl.req;
                    emit!(self, obs, o => o.on_first_token(first_end, &r, s));
                }
            } else if fl.prefill_left() == 0 {
                let (n, share) = if srv.step0_decodes {
                    (done_steps, share_all)
                } else {
                    (done_steps - 1, share_all - share0)
                };
                fl.generated += n as u32;
                fl.inference_j += share;
                produced += n as u64;
            }
            if fl.prefill_left() == 0 && fl.generated >= fl.req.output_tokens {
                fl.decode_done = now;
                srv.kv_free += fl.kv_need;
                srv.model_running[fl.req.model as usize] -= 1;
                srv.running.swap_remove(i);
                finished.push(f);
            } else {
                i += 1;
            }
        }
        let st = &mut self.states[s as usize];
        st.pending_output_tokens = st.pending_output_tokens.saturating_sub(produced);
        st.running -= finished.len() as u32;
        st.downloading += finished.len() as u32;
        for &f in &finished {
            let bits = self.flights[f as usize].req.output_bytes as f64 * 8.0;
            self.start_transfer(s, false, bits, f);
        }
        self.scratch_done = finished;
        self.start_run(s);
    }
}
