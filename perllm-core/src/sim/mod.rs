//! The deterministic discrete-event simulator.
//!
//! A request's life: arrival -> pending until the next slot boundary -> the policy's decision ->
//! upload over the server's link (processor sharing, fluctuating bandwidth, then one-way latency)
//! -> FIFO wait at the server -> the iteration-level engine (continuous batching: each step
//! prefills newly admitted sequences and decodes one token for the others; admission limited by
//! `max_batch` and free KV memory, reserved for prompt + output at admission) -> download of the
//! output -> completion, fed back to the policy.
//!
//! Events are ordered by (time, sequence number), so ties run in the order they were scheduled.
//! Steps between two changes of a server's batch are planned together ("runs") and need one event;
//! a run is cut short at the next step boundary when a request that could join the batch arrives.
//! Every random draw comes from a per-component ChaCha stream derived from the scenario seed.

mod link;

use crate::cost::{CostModel, Roofline, StepShape};
use crate::observer::Observer;
use crate::policy::{
    ClusterView, Decision, GroundTruth, MEAN_BATCH_WINDOW_S, Pending, Policy, PolicyError,
    ServerState,
};
use crate::report::{Metrics, Report, ServerTotals, SimCounters};
use crate::request::{Energy, Outcome, RejectReason, Request};
use crate::rng::{Rng, stream, stream_rng, unit_f64};
use crate::spec::{Batching, MILLISECOND, Nanos};
use crate::workload::{RequestSource, Synthetic, WorkloadError};
use crate::world::{ModelId, ServerId, World};
use link::{Bandwidth, Direction};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// Largest number of engine steps planned in one run (bounds the work wasted when a run is cut).
const MAX_RUN_STEPS: usize = 256;

/// Re-decision interval for deferred requests when the slot length is 0.
const DEFER_RETRY_NS: Nanos = 100 * MILLISECOND;

/// Why a run stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The request source failed (malformed trace row, ...).
    #[error(transparent)]
    Workload(#[from] WorkloadError),
    /// The policy returned an error.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The policy returned a decision the simulator cannot carry out.
    #[error("policy `{policy}` made an invalid decision for request {request}: {message}")]
    InvalidDecision {
        /// Policy name.
        policy: String,
        /// Request id.
        request: u64,
        /// What was wrong.
        message: String,
    },
    /// A request from the source is inconsistent with the scenario.
    #[error("request {id}: {message}")]
    InvalidRequest {
        /// Request id.
        id: u64,
        /// What was wrong.
        message: String,
    },
}

/// Run `policy` on `world` with requests from `source`, priced by `cost`. Observers receive every
/// event; the built-in metrics produce the returned report.
pub fn run(
    world: &World,
    policy: &mut dyn Policy,
    cost: &dyn CostModel,
    source: &mut dyn RequestSource,
    observers: &mut [&mut dyn Observer],
) -> Result<Report, SimError> {
    let mut sim = Sim::new(world, cost);
    sim.run(policy, source, observers)
}

/// Run `policy` on `world` with the roofline cost model and the scenario's synthetic workload.
pub fn run_synthetic(world: &World, policy: &mut dyn Policy) -> Result<Report, SimError> {
    let cost = Roofline::default();
    let mut source = Synthetic::new(world);
    run(world, policy, &cost, &mut source, &mut [])
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    /// The request held in `Sim::next_req` arrives.
    Arrival,
    /// A slot boundary: the policy decides for pending requests.
    Decide,
    /// The next uplink completion of a server (if the version still matches).
    UpDone(ServerId, u64),
    /// The next downlink completion of a server.
    DownDone(ServerId, u64),
    /// A server's link bandwidth is re-drawn.
    Redraw(ServerId),
    /// A flight's upload reached its server (after the link latency).
    AtServer(u32),
    /// A flight's output reached the user.
    Delivered(u32),
    /// A server's planned run ends (if the version still matches).
    RunEnd(ServerId, u64),
}

#[derive(Clone, Copy, Debug, Default)]
struct Flight {
    req: Request,
    server: ServerId,
    decided: Nanos,
    at_server: Nanos,
    admitted: Nanos,
    first_token: Nanos,
    decode_done: Nanos,
    generated: u32,
    /// Prompt tokens prefilled so far.
    prefilled: u32,
    /// Prompt tokens step 0 of the current run prefills (0: none).
    chunk: u32,
    kv_need: u64,
    inference_j: f64,
}

impl Flight {
    fn prefill_left(&self) -> u32 {
        self.req.prompt_tokens - self.prefilled
    }
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

struct Run {
    start: Nanos,
    end_idx: usize,
}

struct Srv {
    up: Direction,
    down: Direction,
    bw: Bandwidth,
    cur_bw: f64,
    redraw_scheduled: bool,
    waiting: VecDeque<u32>,
    running: Vec<u32>,
    kv_free: u64,
    run: Option<Run>,
    run_version: u64,
    step_ends: Vec<Nanos>,
    /// Prefix sums of (step energy / step tokens).
    share_prefix: Vec<f64>,
    step0_per_token: f64,
    /// Whether the running sequences decode in step 0 of the current run (not while a
    /// prefill-first step prefills).
    step0_decodes: bool,
    busy_ns: Nanos,
    busy_at_decision: Nanos,
    steps: u64,
    busy_w: f64,
    noise: Rng,
    /// Exponentially weighted integrals of `running` and `running^2` over time (seconds) up to
    /// `batch_at`, for [`ServerState::mean_batch`].
    batch_s: f64,
    batch2_s: f64,
    batch_at: Nanos,
    /// Running sequences per model, and the exponentially weighted integrals of those counts and
    /// of time, for [`ClusterView::model_load`].
    model_running: Vec<u32>,
    model_s: Vec<f64>,
    time_s: f64,
}

impl Srv {
    /// Adds the time since the last call, at the current batch, to the mean-batch integrals.
    fn account_batch(&mut self, now: Nanos) {
        let dt = now.saturating_sub(self.batch_at) as f64 / 1e9;
        if dt > 0.0 {
            let decay = (-dt / MEAN_BATCH_WINDOW_S).exp();
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

struct Sim<'a> {
    world: &'a World,
    cost: &'a dyn CostModel,
    now: Nanos,
    seq: u64,
    heap: BinaryHeap<Reverse<(Nanos, u64, Ev)>>,
    flights: Vec<Flight>,
    free: Vec<u32>,
    pending: Vec<Pending>,
    decide_scheduled: bool,
    last_decision: Nanos,
    slot_counter: u64,
    next_req: Option<Request>,
    last_arrival: Nanos,
    srv: Vec<Srv>,
    states: Vec<ServerState>,
    metrics: Metrics,
    counters: SimCounters,
    scratch_done: Vec<u32>,
    shapes: Vec<(ModelId, StepShape)>,
    shapes1: Vec<(ModelId, StepShape)>,
    est: Vec<Nanos>,
    /// See [`ClusterView::model_load`].
    model_load: Vec<f64>,
}

macro_rules! emit {
    ($self:ident, $obs:ident, $o:ident => $body:expr) => {{
        {
            let $o = &mut $self.metrics;
            $body;
        }
        for $o in $obs.iter_mut() {
            $body;
        }
    }};
}

impl<'a> Sim<'a> {
    fn new(world: &'a World, cost: &'a dyn CostModel) -> Self {
        let seed = world.scenario.seed;
        let srv = world
            .servers
            .iter()
            .map(|s| {
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
            })
            .collect();
        let states = ServerState::all_idle(world);
        Sim {
            world,
            cost,
            now: 0,
            seq: 0,
            heap: BinaryHeap::new(),
            flights: Vec::new(),
            free: Vec::new(),
            pending: Vec::new(),
            decide_scheduled: false,
            last_decision: 0,
            slot_counter: 0,
            next_req: None,
            last_arrival: 0,
            srv,
            states,
            metrics: Metrics::new(world),
            counters: SimCounters::default(),
            scratch_done: Vec::new(),
            shapes: Vec::new(),
            shapes1: Vec::new(),
            est: Vec::new(),
            model_load: Vec::new(),
        }
    }

    fn schedule(&mut self, t: Nanos, ev: Ev) {
        debug_assert!(t >= self.now, "events are never scheduled in the past");
        self.seq += 1;
        self.heap.push(Reverse((t, self.seq, ev)));
    }

    fn pull(&mut self, source: &mut dyn RequestSource) -> Result<(), SimError> {
        match source.next_request() {
            None => self.next_req = None,
            Some(r) => {
                let r = r?;
                self.validate_request(&r)?;
                self.last_arrival = r.arrival_ns;
                self.next_req = Some(r);
                self.schedule(r.arrival_ns.max(self.now), Ev::Arrival);
            }
        }
        Ok(())
    }

    fn validate_request(&self, r: &Request) -> Result<(), SimError> {
        let bad = |m: String| {
            Err(SimError::InvalidRequest {
                id: r.id,
                message: m,
            })
        };
        if r.arrival_ns < self.last_arrival {
            return bad(format!(
                "arrives at {} ns, before the previous request ({} ns): sources must be in arrival order",
                r.arrival_ns, self.last_arrival
            ));
        }
        if r.model as usize >= self.world.models.len() {
            return bad(format!("model index {} does not exist", r.model));
        }
        if !self.world.servers.iter().any(|s| s.hosts(r.model)) {
            return bad(format!(
                "no server hosts model `{}`",
                self.world.models[r.model as usize].name
            ));
        }
        if r.slo as usize >= self.world.slos.len() {
            return bad(format!("SLO class index {} does not exist", r.slo));
        }
        if r.prompt_tokens == 0 || r.output_tokens == 0 {
            return bad("prompt and output must have at least one token each".into());
        }
        Ok(())
    }

    fn kv_need(&self, r: &Request) -> u64 {
        (r.prompt_tokens as u64 + r.output_tokens as u64)
            .saturating_mul(self.world.models[r.model as usize].kv_bytes_per_token)
    }

    fn run(
        &mut self,
        policy: &mut dyn Policy,
        source: &mut dyn RequestSource,
        obs: &mut [&mut dyn Observer],
    ) -> Result<Report, SimError> {
        let wants_truth = policy.wants_ground_truth();
        let drain = self.world.drain_ns();
        self.pull(source)?;
        while let Some(Reverse((t, _, ev))) = self.heap.pop() {
            debug_assert!(t >= self.now, "simulated time never goes back");
            // The drain limit: nothing more arrives and the rest would end too late to matter.
            let stop = self.last_arrival.saturating_add(drain);
            if t > stop && self.next_req.is_none() {
                self.now = stop.max(self.now);
                self.stop_unfinished(obs);
                break;
            }
            self.now = t;
            self.counters.events += 1;
            match ev {
                Ev::Arrival => {
                    let r = self
                        .next_req
                        .take()
                        .expect("an Arrival event always has a request");
                    self.on_arrival(r, obs);
                    self.pull(source)?;
                }
                Ev::Decide => self.on_decide(policy, obs, wants_truth)?,
                Ev::UpDone(s, v) => {
                    if self.srv[s as usize].up.version == v {
                        self.on_link_done(s, true);
                    }
                }
                Ev::DownDone(s, v) => {
                    if self.srv[s as usize].down.version == v {
                        self.on_link_done(s, false);
                    }
                }
                Ev::Redraw(s) => self.on_redraw(s),
                Ev::AtServer(f) => self.on_at_server(f),
                Ev::Delivered(f) => self.on_delivered(f, policy, obs),
                Ev::RunEnd(s, v) => {
                    if self.srv[s as usize].run_version == v {
                        self.on_run_end(s, obs);
                    }
                }
            }
        }
        self.counters.skipped_rows = source.skipped();
        debug_assert_eq!(
            self.metrics.arrived(),
            self.metrics.ended(),
            "every request ends exactly once"
        );
        let horizon = self.now.max(self.world.scenario.duration_ns);
        let totals = ServerTotals {
            busy_ns: self.srv.iter().map(|s| s.busy_ns).collect(),
            steps: self.srv.iter().map(|s| s.steps).collect(),
        };
        let metrics = std::mem::replace(&mut self.metrics, Metrics::new(self.world));
        Ok(metrics.finish(
            self.world,
            policy.name().to_string(),
            self.cost.name().to_string(),
            wants_truth,
            horizon,
            totals,
            policy.stats(),
            std::mem::take(&mut self.counters),
        ))
    }

    /// Ends every request still pending or in flight as [`RejectReason::Unfinished`] (pending ones
    /// first, in arrival order, then flights in slot order: deterministic, and without a copy of a
    /// possibly huge backlog), and counts the busy time of the runs under way.
    fn stop_unfinished(&mut self, obs: &mut [&mut dyn Observer]) {
        let now = self.now;
        let pending = std::mem::take(&mut self.pending);
        for p in &pending {
            emit!(self, obs, o => o.on_rejection(now, &p.request, RejectReason::Unfinished));
        }
        let mut free = vec![false; self.flights.len()];
        for &f in &self.free {
            free[f as usize] = true;
        }
        let flights = std::mem::take(&mut self.flights);
        for (f, _) in flights.iter().zip(&free).filter(|(_, free)| !**free) {
            emit!(self, obs, o => o.on_rejection(now, &f.req, RejectReason::Unfinished));
        }
        for srv in &mut self.srv {
            if let Some(run) = srv.run.take() {
                srv.busy_ns += now.saturating_sub(run.start);
            }
        }
    }

    fn on_arrival(&mut self, r: Request, obs: &mut [&mut dyn Observer]) {
        emit!(self, obs, o => o.on_arrival(&r));
        let need = self.kv_need(&r);
        if !self
            .world
            .servers
            .iter()
            .any(|s| s.hosts(r.model) && s.kv_capacity_bytes >= need)
        {
            let now = self.now;
            emit!(self, obs, o => o.on_rejection(now, &r, RejectReason::TooLarge));
            return;
        }
        self.pending.push(Pending {
            request: r,
            defers: 0,
        });
        if !self.decide_scheduled {
            let slot = self.world.scenario.slot_ns;
            let t = match self.now.checked_div(slot) {
                None => self.now,
                Some(k) => k.saturating_add(1).saturating_mul(slot),
            };
            self.decide_scheduled = true;
            self.schedule(t, Ev::Decide);
        }
    }

    fn refresh_states(&mut self) {
        let elapsed = self.now.saturating_sub(self.last_decision).max(1);
        let n_models = self.world.models.len();
        self.model_load.resize(self.srv.len() * n_models, 0.0);
        for ((st, s), load) in self
            .states
            .iter_mut()
            .zip(self.srv.iter_mut())
            .zip(self.model_load.chunks_mut(n_models.max(1)))
        {
            // Busy time up to now: finished runs plus the elapsed part of the current one.
            let upto = s.busy_ns
                + s.run
                    .as_ref()
                    .map_or(0, |r| self.now.saturating_sub(r.start));
            let busy = upto.saturating_sub(s.busy_at_decision);
            st.recent_utilization = (busy as f64 / elapsed as f64).min(1.0);
            st.free_kv_bytes = s.kv_free;
            s.account_batch(self.now);
            st.mean_batch = if s.batch_s > 0.0 {
                s.batch2_s / s.batch_s
            } else {
                0.0
            };
            for (l, acc) in load.iter_mut().zip(&s.model_s) {
                *l = if s.time_s > 0.0 { acc / s.time_s } else { 0.0 };
            }
            s.busy_at_decision = upto;
        }
        self.last_decision = self.now;
    }

    fn on_decide(
        &mut self,
        policy: &mut dyn Policy,
        obs: &mut [&mut dyn Observer],
        wants_truth: bool,
    ) -> Result<(), SimError> {
        self.decide_scheduled = false;
        if self.pending.is_empty() {
            return Ok(());
        }
        self.refresh_states();
        let slot = self.world.scenario.slot_ns;
        let slot_idx = self.now.checked_div(slot).unwrap_or(self.slot_counter);
        self.slot_counter += 1;
        self.counters.decisions += 1;
        let truth = if wants_truth {
            let now = self.now;
            Some(GroundTruth {
                link_bandwidth_bps: self.srv.iter_mut().map(|s| s.bw.at(now)).collect(),
                contention: self.world.scenario.sim.contention,
                step_noise: self.world.scenario.sim.step_noise,
            })
        } else {
            None
        };
        let pending = std::mem::take(&mut self.pending);
        let mut out = vec![Decision::Defer; pending.len()];
        {
            let view = ClusterView {
                now_ns: self.now,
                slot: slot_idx,
                world: self.world,
                servers: &self.states,
                cost: self.cost,
                truth: truth.as_ref(),
                model_load: &self.model_load,
            };
            policy.schedule(&view, &pending, &mut out)?;
        }
        let mut notes = Vec::new();
        if obs.iter().any(|o| o.wants_notes()) {
            policy.explain(&mut notes);
        }
        let max_defers = self.world.scenario.sim.max_defers;
        let mut keep = Vec::new();
        for (i, (p, d)) in pending.iter().zip(out.iter()).enumerate() {
            let r = p.request;
            if let Decision::Assign(s) = *d {
                let bad = |m: String| {
                    Err(SimError::InvalidDecision {
                        policy: policy.name().to_string(),
                        request: r.id,
                        message: m,
                    })
                };
                let Some(server) = self.world.servers.get(s as usize) else {
                    return bad(format!(
                        "server index {s} does not exist ({} servers)",
                        self.world.servers.len()
                    ));
                };
                if !server.hosts(r.model) {
                    return bad(format!(
                        "server `{}` does not host model `{}`",
                        server.name, self.world.models[r.model as usize].name
                    ));
                }
            }
            let (now, note) = (self.now, notes.get(i));
            emit!(self, obs, o => o.on_decision(now, slot_idx, &r, *d, note));
            match *d {
                Decision::Assign(s) => self.assign(r, s, obs),
                Decision::Reject => {
                    emit!(self, obs, o => o.on_rejection(now, &r, RejectReason::Policy))
                }
                Decision::Defer => {
                    if p.defers >= max_defers {
                        emit!(self, obs, o => o.on_rejection(now, &r, RejectReason::DeferredTooLong));
                    } else {
                        keep.push(Pending {
                            request: r,
                            defers: p.defers + 1,
                        });
                    }
                }
            }
        }
        self.pending = keep;
        if !self.pending.is_empty() && !self.decide_scheduled {
            let t = match self.now.checked_div(slot) {
                None => self.now.saturating_add(DEFER_RETRY_NS),
                Some(k) => k.saturating_add(1).saturating_mul(slot),
            };
            self.decide_scheduled = true;
            self.schedule(t, Ev::Decide);
        }
        Ok(())
    }

    fn assign(&mut self, r: Request, s: ServerId, obs: &mut [&mut dyn Observer]) {
        let kv_need = self.kv_need(&r);
        if kv_need > self.world.servers[s as usize].kv_capacity_bytes {
            let now = self.now;
            emit!(self, obs, o => o.on_rejection(now, &r, RejectReason::DoesNotFit));
            return;
        }
        let f = Flight {
            req: r,
            server: s,
            decided: self.now,
            kv_need,
            ..Flight::default()
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.flights[id as usize] = f;
                id
            }
            None => {
                self.flights.push(f);
                (self.flights.len() - 1) as u32
            }
        };
        self.states[s as usize].uploading += 1;
        self.start_transfer(s, true, r.input_bytes as f64 * 8.0, id);
    }

    /// Bring a link's virtual clocks up to now (refreshing its bandwidth if it was idle).
    fn touch(&mut self, s: ServerId) {
        let now = self.now;
        let l = &mut self.srv[s as usize];
        if l.up.len() == 0 && l.down.len() == 0 {
            l.cur_bw = l.bw.at(now);
        }
        l.up.advance(now, l.cur_bw);
        l.down.advance(now, l.cur_bw);
    }

    fn start_transfer(&mut self, s: ServerId, up: bool, bits: f64, flight: u32) {
        self.touch(s);
        self.seq += 1;
        let seq = self.seq;
        let l = &mut self.srv[s as usize];
        if up { &mut l.up } else { &mut l.down }.push(bits, seq, flight);
        self.resched(s, up);
        self.ensure_redraw(s);
    }

    fn resched(&mut self, s: ServerId, up: bool) {
        let l = &mut self.srv[s as usize];
        let bw = l.cur_bw;
        let d = if up { &mut l.up } else { &mut l.down };
        d.version += 1;
        let v = d.version;
        if let Some(t) = d.next_done(bw) {
            let t = t.max(self.now);
            self.schedule(
                t,
                if up {
                    Ev::UpDone(s, v)
                } else {
                    Ev::DownDone(s, v)
                },
            );
        }
    }

    fn ensure_redraw(&mut self, s: ServerId) {
        let l = &self.srv[s as usize];
        if !l.redraw_scheduled && l.bw.varies() && (l.up.len() + l.down.len()) > 0 {
            let t = l.bw.next_change(self.now);
            self.srv[s as usize].redraw_scheduled = true;
            self.schedule(t, Ev::Redraw(s));
        }
    }

    fn on_redraw(&mut self, s: ServerId) {
        let now = self.now;
        let l = &mut self.srv[s as usize];
        l.redraw_scheduled = false;
        l.up.advance(now, l.cur_bw);
        l.down.advance(now, l.cur_bw);
        l.cur_bw = l.bw.at(now);
        self.resched(s, true);
        self.resched(s, false);
        self.ensure_redraw(s);
    }

    fn on_link_done(&mut self, s: ServerId, up: bool) {
        self.touch(s);
        let mut done = std::mem::take(&mut self.scratch_done);
        done.clear();
        let l = &mut self.srv[s as usize];
        if up { &mut l.up } else { &mut l.down }.pop_done(&mut done);
        let latency = self.world.links[self.world.servers[s as usize].link].latency_ns;
        for &f in &done {
            let t = self.now.saturating_add(latency);
            self.schedule(
                t,
                if up {
                    Ev::AtServer(f)
                } else {
                    Ev::Delivered(f)
                },
            );
        }
        self.scratch_done = done;
        self.resched(s, up);
    }

    fn on_at_server(&mut self, f: u32) {
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

    /// Admit what fits and plan the next run of steps on server `s`.
    ///
    /// Step 0 of a run is the only one that may prefill; how it does depends on the server's
    /// [`Batching`]: `mixed` prefills the new prompts whole next to one decode token of every
    /// running sequence, `prefill_first` prefills them alone while the running sequences wait,
    /// `chunked` fills a token budget with one decode token per running sequence and then prompt
    /// tokens in admission order (a prompt that does not fit continues in the next step, so such a
    /// run is one step long). Steps 1.. decode every running sequence.
    fn start_run(&mut self, s: ServerId) {
        let server = &self.world.servers[s as usize];
        let hw = &self.world.hardware[server.hardware];
        let srv = &mut self.srv[s as usize];
        srv.account_batch(self.now);
        let st = &mut self.states[s as usize];
        let flights = &mut self.flights;
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
            if fl.kv_need > srv.kv_free {
                break; // FIFO: the head waits for memory
            }
            srv.waiting.pop_front();
            srv.kv_free -= fl.kv_need;
            fl.admitted = self.now;
            fl.prefilled = 0;
            srv.model_running[fl.req.model as usize] += 1;
            let prompt = fl.req.prompt_tokens;
            fl.chunk = budget.map_or(prompt, |b| b.min(prompt as u64) as u32);
            if let Some(b) = budget.as_mut() {
                *b -= fl.chunk as u64;
            }
            srv.running.push(f);
            st.queued -= 1;
            st.running += 1;
        }
        st.free_kv_bytes = srv.kv_free;
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
            let m = fl.req.model;
            let (prompt, out) = (fl.req.prompt_tokens as u64, fl.req.output_tokens);
            let sh = shape_of(&mut self.shapes, m);
            if fl.chunk > 0 {
                sh.prefill_tokens += fl.chunk as u64;
                sh.prefill_seqs += 1;
                // A continued prompt's attention reads the part prefilled before.
                sh.kv_tokens += fl.prefilled as u64;
                if fl.prefilled + fl.chunk < fl.req.prompt_tokens {
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
        srv.step_ends.clear();
        srv.share_prefix.clear();
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
        for (j, &est) in self.est.iter().enumerate() {
            let (c, pt) = if j == 0 {
                (contention0, per_token0)
            } else {
                (contention, per_token)
            };
            let noise = 1.0 + sim.step_noise * (2.0 * unit_f64(&mut srv.noise) - 1.0);
            let real = (est as f64 * c * noise).max(1.0) as Nanos;
            t = t.saturating_add(real);
            srv.step_ends.push(t);
            let share = real as f64 * pt;
            if j == 0 {
                srv.step0_per_token = share;
            }
            prefix += share;
            srv.share_prefix.push(prefix);
        }
        srv.run = Some(Run {
            start: self.now,
            end_idx: k - 1,
        });
        srv.run_version += 1;
        let (end, v) = (srv.step_ends[k - 1], srv.run_version);
        self.schedule(end, Ev::RunEnd(s, v));
    }

    fn on_run_end(&mut self, s: ServerId, obs: &mut [&mut dyn Observer]) {
        let now = self.now;
        let srv = &mut self.srv[s as usize];
        let run = srv.run.take().expect("RunEnd only for an active run");
        srv.account_batch(now);
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

    fn on_delivered(&mut self, f: u32, policy: &mut dyn Policy, obs: &mut [&mut dyn Observer]) {
        let fl = self.flights[f as usize];
        let s = fl.server;
        let link = &self.world.links[self.world.servers[s as usize].link];
        let r = fl.req;
        let total = self.now - r.arrival_ns;
        let deadline = self.world.slos[r.slo as usize].deadline_ns;
        let o = Outcome {
            request: r,
            server: s,
            decided_ns: fl.decided,
            upload_ns: fl.at_server - fl.decided,
            queue_ns: fl.admitted - fl.at_server,
            prefill_ns: fl.first_token - fl.admitted,
            decode_ns: fl.decode_done - fl.first_token,
            download_ns: self.now - fl.decode_done,
            ttft_ns: fl
                .first_token
                .saturating_add(link.latency_ns)
                .saturating_sub(r.arrival_ns),
            total_ns: total,
            deadline_ns: deadline,
            met: total <= deadline,
            energy: Energy {
                transmission: (r.input_bytes as f64 + r.output_bytes as f64)
                    * 8.0
                    * link.energy_j_per_bit,
                inference: fl.inference_j,
                idle: 0.0,
            },
        };
        self.states[s as usize].downloading -= 1;
        self.free.push(f);
        emit!(self, obs, ob => ob.on_completion(&o));
        policy.observe(&o);
    }
}
