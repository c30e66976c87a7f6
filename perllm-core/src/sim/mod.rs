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
//!
//! Where things are: `queue.rs` holds the event queue (a radix heap) and `events.rs` the loop
//! that drains it; `arrival.rs` takes requests from the source; `decide.rs` drives the slots
//! (the policy's decisions, defers, assignment); `transfer.rs` moves uploads and downloads over
//! the processor-sharing links of `link.rs`; `server.rs` holds a server's queue and batch (of
//! `seq.rs` entries) and ends its runs; `batch.rs` admits requests and starts the next run of
//! engine steps, which `plan.rs` shapes, prices and keeps; `outcome.rs` records completions, the
//! requests still unfinished at the end, and the report.

// `emit!` is defined before the submodules so that they can use it.
/// Sends one event to the built-in metrics and then to every observer.
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

mod arrival;
mod batch;
mod decide;
mod events;
mod flights;
mod link;
mod outcome;
mod plan;
mod queue;
mod seq;
mod server;
mod transfer;

use crate::cost::{CostModel, Roofline, StepShape};
use crate::observer::Observer;
use crate::policy::{Pending, Policy, PolicyError, ServerState};
use crate::report::{Metrics, Report, SimCounters};
use crate::request::Request;
use crate::spec::Nanos;
use crate::workload::{RequestSource, Synthetic, WorkloadError};
use crate::world::{ModelId, ServerId, World};
/// For the bound's count of the noise draws a run can reach and of how long a request can be held.
pub(crate) use decide::DEFER_RETRY_NS;
pub(crate) use plan::MAX_RUN_STEPS;
use queue::Queue;
use server::{DecayMemo, Srv};

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

/// Upper estimate of the simulation state one server needs, in bytes, with `models` models: the
/// simulator's and the policy view's per-server state, a full run of steps planned ahead
/// (`plan::MAX_RUN_STEPS` step ends and energy shares), per-model counters, the built-in
/// metrics' per-server accumulators and the world's description of the server. Requests in
/// flight come on top (they grow with the load, not with the cluster).
/// The per-server term of [`crate::footprint::Footprint`], the estimate `sim.max_memory`
/// bounds (checked when the scenario is built).
pub fn state_bytes_per_server(models: usize) -> u64 {
    use std::mem::size_of;
    let fixed = size_of::<Srv>()
        + size_of::<crate::policy::ServerState>()
        + size_of::<crate::world::Server>()
        // The server's name and family, hosted models (typical sizes).
        + 64;
    // Planned steps (end u64 and energy-share prefix sum f64) in the arena of `plan.rs`: at
    // most one free or used block of each power-of-two size per server, 2 x MAX_RUN_STEPS in all.
    let run = 2 * plan::MAX_RUN_STEPS * 8 * 2;
    // Simulator (running count, integral), view (load) and metrics (per-model columns).
    let per_model = models * (4 + 8 + 8 + 8);
    // Metrics: completed, assigned, tokens, transmission energy and a few more per-server columns.
    let metrics = 16 * 8;
    (fixed + run + per_model + metrics) as u64
}

/// Run `policy` on `world` with the roofline cost model and the scenario's synthetic workload.
pub fn run_synthetic(world: &World, policy: &mut dyn Policy) -> Result<Report, SimError> {
    let cost = Roofline::default();
    let mut source = Synthetic::new(world);
    run(world, policy, &cost, &mut source, &mut [])
}

/// A request between its assignment to a server and its delivery.
///
/// `repr(C, align(64))`, two cache lines: the first holds what the arrival at the server and the
/// end of decoding read or write (the request's token counts and model, the stage times, the
/// energy); the request itself and its decision time fill the second, read only at delivery.
/// While the request is queued or runs at its server, the state the engine steps update lives
/// with the server ([`seq::Seq`], [`seq::Waiting`]), not here: with thousands of servers the
/// flights in progress outgrow the caches, and a run's end read one flight per running
/// sequence (cachegrind: the largest single source of misses at 10,000 servers).
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
struct Flight {
    server: ServerId,
    /// `req.prompt_tokens`, `req.output_tokens`, `req.model` and `req.output_bytes`, in the
    /// first cache line.
    prompt: u32,
    output: u32,
    model: ModelId,
    at_server: Nanos,
    admitted: Nanos,
    first_token: Nanos,
    decode_done: Nanos,
    inference_j: f64,
    output_bytes: u64,
    req: Request,
    decided: Nanos,
}

// What the server reads and writes fills the first cache line; the whole flight two.
const _: () = assert!(std::mem::offset_of!(Flight, output_bytes) + 8 <= 64);
const _: () = assert!(std::mem::size_of::<Flight>() == 128);

impl Flight {
    /// A flight of `req` to server `s`, decided at `now`.
    fn new(req: Request, server: ServerId, decided: Nanos) -> Self {
        Flight {
            prompt: req.prompt_tokens,
            output: req.output_tokens,
            model: req.model,
            output_bytes: req.output_bytes,
            req,
            server,
            decided,
            ..Flight::default()
        }
    }
}

/// KV-cache bytes a request of `prompt` + `output` tokens of model `m` holds while it runs
/// (reserved for both at admission).
fn kv_bytes(world: &World, m: ModelId, prompt: u32, output: u32) -> u64 {
    (prompt as u64 + output as u64).saturating_mul(world.models[m as usize].kv_bytes_per_token)
}

/// The state of one simulation; its behaviour is spread over the submodules (see above).
struct Sim<'a> {
    world: &'a World,
    cost: &'a dyn CostModel,
    now: Nanos,
    seq: u64,
    queue: Queue,
    /// Every server's planned steps.
    plans: plan::Plans,
    flights: flights::Flights,
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
    /// See [`crate::policy::ClusterView::model_load`].
    model_load: Vec<f64>,
    /// The last decay factor of the mean-batch integrals (see [`DecayMemo`]).
    decay: DecayMemo,
    /// Whether the policy reads the view's load statistics
    /// ([`Policy::reads_load_statistics`]): if not, they are not computed.
    stats: bool,
}

impl<'a> Sim<'a> {
    fn new(world: &'a World, cost: &'a dyn CostModel) -> Self {
        let seed = world.scenario.seed;
        let srv = world
            .servers
            .iter()
            .map(|s| Srv::new(world, s, seed))
            .collect();
        let states = ServerState::all_idle(world);
        Sim {
            world,
            cost,
            now: 0,
            seq: 0,
            queue: Queue::default(),
            plans: plan::Plans::default(),
            flights: flights::Flights::default(),
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
            decay: DecayMemo::default(),
            stats: true,
        }
    }
}
