//! A server: its FIFO queue, its running batch and the run of steps under way, its busy time and
//! batch statistics; arrivals at the server and the end of a run.

use super::Sim;
use super::events::Ev;
use super::link::{Bandwidth, Direction};
use super::plan::{Plan, first_ending_at_or_after};
use super::seq::{Seq, Waiting};
use crate::observer::Observer;
use crate::policy::MEAN_BATCH_WINDOW_S;
use crate::rng::{Rng, stream, stream_rng};
use crate::spec::{Batching, Nanos};
use crate::world::{Server, ServerId, World};
use std::collections::VecDeque;

/// The run of engine steps under way on a server (steps `0..=end_idx` of its plan), with what
/// its end needs from the plan, so that the end does not read the plan (see [`super::plan`]).
pub(super) struct Run {
    pub(super) start: Nanos,
    pub(super) end_idx: usize,
    /// When the last planned step ends.
    pub(super) plan_end: Nanos,
    /// When step `end_idx` ends: the run's end (`plan_end` unless the run was cut short).
    pub(super) end: Nanos,
    /// When step 0 ends.
    pub(super) first_end: Nanos,
    /// The energy shares per token of steps `0..=end_idx`, summed (the plan's `share_prefix`).
    pub(super) share_end: f64,
}

/// One server's state in the simulation.
///
/// `repr(C)` keeps the declaration order: the fields every event of the server reads or writes
/// come first and share a few cache lines; the random-number generators (300 bytes each) and
/// the load statistics come last. With 10,000 servers a server's state has left the caches by
/// the time its next event comes, so each extra line an event touches is a miss (cachegrind).
#[repr(C, align(64))]
pub(super) struct Srv {
    // Read or written by every run end, arrival at the server and admission.
    pub(super) kv_free: u64,
    pub(super) run_version: u64,
    pub(super) run: Option<Run>,
    /// The running batch and the FIFO queue (see [`super::seq`]).
    pub(super) running: Vec<Seq>,
    pub(super) waiting: VecDeque<Waiting>,
    /// The planned steps of the current run, in [`super::plan::Plans`].
    pub(super) plan: Plan,
    pub(super) step0_per_token: f64,
    pub(super) busy_ns: Nanos,
    pub(super) steps: u64,
    pub(super) busy_w: f64,
    /// Copies of the world's description of the server that every run's start reads
    /// (`contention`, `batching`, `hardware`, `count`, `max_batch`), so that it does not read the
    /// world's 136-byte `Server` too.
    pub(super) contention: f64,
    pub(super) batching: Batching,
    pub(super) hardware: u32,
    pub(super) count: u32,
    pub(super) max_batch: u32,
    /// Whether the running sequences decode in step 0 of the current run (not while a
    /// prefill-first step prefills).
    pub(super) step0_decodes: bool,
    // Read or written by every transfer: the link.
    pub(super) redraw_scheduled: bool,
    /// The link's one-way latency (a copy of the world's).
    pub(super) latency_ns: Nanos,
    pub(super) cur_bw: f64,
    pub(super) up: Direction,
    pub(super) down: Direction,
    pub(super) bw: Bandwidth,
    /// Running sequences per model (kept only when the policy reads the load statistics).
    pub(super) model_running: Vec<u32>,
    pub(super) noise: Rng,
    pub(super) busy_at_decision: Nanos,
    /// Exponentially weighted integrals of `running` and `running^2` over time (seconds) up to
    /// `batch_at`, for [`crate::policy::ServerState::mean_batch`].
    pub(super) batch_s: f64,
    pub(super) batch2_s: f64,
    pub(super) batch_at: Nanos,
    /// The exponentially weighted integrals of `model_running` and of time, for
    /// [`crate::policy::ClusterView::model_load`].
    pub(super) model_s: Vec<f64>,
    pub(super) time_s: f64,
}

impl Srv {
    /// Server `s` idle, its link at its nominal bandwidth.
    pub(super) fn new(world: &World, s: &Server, seed: u64) -> Self {
        let spec = &world.links[s.link];
        let bw = Bandwidth::new(spec, world.redraw_ns(s.link), seed, s.id as u64);
        Srv {
            kv_free: s.kv_capacity_bytes,
            run_version: 0,
            run: None,
            running: Vec::new(),
            waiting: VecDeque::new(),
            plan: Plan::default(),
            step0_per_token: 0.0,
            busy_ns: 0,
            steps: 0,
            busy_w: world.server_power_w(s).1,
            contention: s.contention,
            batching: s.batching,
            hardware: u32::try_from(s.hardware).expect("fewer than 2^32 hardware types"),
            count: s.count,
            max_batch: s.max_batch,
            step0_decodes: true,
            redraw_scheduled: false,
            latency_ns: spec.latency_ns,
            up: Direction::default(),
            down: Direction::default(),
            cur_bw: spec.bandwidth_bps,
            model_running: vec![0; world.models.len()],
            bw,
            noise: stream_rng(seed, stream::SERVER_BASE + s.id as u64),
            busy_at_decision: 0,
            batch_s: 0.0,
            batch2_s: 0.0,
            batch_at: 0,
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
        let w = Waiting::of(f, fl);
        let (out, need) = (w.output, w.kv_need(self.world));
        let st = &mut self.states[s as usize];
        st.uploading -= 1;
        st.queued += 1;
        st.pending_output_tokens += out as u64;
        let srv = &mut self.srv[s as usize];
        srv.waiting.push_back(w);
        let can_join = srv.running.len() < srv.max_batch as usize
            && srv.waiting.len() == 1
            && need <= srv.kv_free;
        if let Some(run) = srv.run.as_mut() {
            // Continuous batching: a request that can join the batch joins at the next step boundary.
            if can_join {
                let now = self.now;
                let plan = self.plans.steps(&srv.plan);
                let j = first_ending_at_or_after(plan, run.start, run.plan_end, now);
                if j < run.end_idx {
                    run.end_idx = j;
                    (run.end, run.share_end) = (plan[j].end, plan[j].share_prefix);
                    srv.run_version += 1;
                    let (t, v) = (run.end, srv.run_version);
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
        let (now, world) = (self.now, self.world);
        let srv = &mut self.srv[s as usize];
        let run = srv.run.take().expect("RunEnd only for an active run");
        if self.stats {
            srv.account_batch(now, &mut self.decay);
        }
        let done_steps = run.end_idx + 1;
        srv.busy_ns += run.end - run.start;
        srv.steps += done_steps as u64;
        self.counters.steps += done_steps as u64;
        if !obs.is_empty() {
            let mut start = run.start;
            for step in &self.plans.steps(&srv.plan)[..done_steps] {
                let end = step.end;
                for o in obs.iter_mut() {
                    o.on_step(s, start, end);
                }
                start = end;
            }
        }
        let share_all = run.share_end;
        let share0 = srv.step0_per_token;
        let first_end = run.first_end;
        let mut produced = 0u64;
        let mut i = 0;
        let mut finished = std::mem::take(&mut self.scratch_done);
        finished.clear();
        while i < srv.running.len() {
            let fl = &mut srv.running[i];
            if fl.chunk > 0 {
                fl.prefilled += fl.chunk;
                fl.inference_j += fl.chunk as f64 * share0;
                fl.chunk = 0;
                if fl.prefill_left() == 0 {
                    fl.first_token = first_end;
                    fl.generated = done_steps as u32;
                    fl.inference_j += share_all - share0;
                    produced += done_steps as u64;
                    let f = fl.f as usize;
                    emit!(self, obs, o => o.on_first_token(first_end, &self.flights[f].req, s));
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
            if fl.prefill_left() == 0 && fl.generated >= fl.output {
                srv.kv_free += fl.kv_need(world);
                if self.stats {
                    srv.model_running[fl.model as usize] -= 1;
                }
                let done = srv.running.swap_remove(i);
                done.finish(&mut self.flights[done.f as usize], now);
                finished.push(done.f);
            } else {
                i += 1;
            }
        }
        let st = &mut self.states[s as usize];
        st.pending_output_tokens = st.pending_output_tokens.saturating_sub(produced);
        st.running -= finished.len() as u32;
        st.downloading += finished.len() as u32;
        for &f in &finished {
            let bits = self.flights[f as usize].output_bytes as f64 * 8.0;
            self.start_transfer(s, false, bits, f);
        }
        self.scratch_done = finished;
        self.start_run(s);
    }
}
