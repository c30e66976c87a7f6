//! An upper bound on goodput (deadline-met requests per second) that no policy can beat, and a
//! lower bound on the energy of a run that reaches it.
//!
//! The bound is a fluid relaxation of the whole run, solved as one LP (`good_lp` + `microlp`):
//!
//! - **the arrival sequence is known in advance** (the bound reads every request of the run);
//! - **best cases everywhere a quantity fluctuates**: each step at the low end of the step noise
//!   (`1 - sim.step_noise`), no contention slowdown in a request's own latency, every link at the
//!   highest bandwidth its fluctuation can reach, alone on it, no queueing;
//! - **capacity limits kept**: per group of identical servers and per time window, the engine
//!   time the served requests need at least (memory-bound and compute-bound, each with the step
//!   overhead and weights shared by the largest batch the server allows, plus the contention a
//!   batch of that size must cost), the batch slots they occupy at least, and the link bits.
//!
//! A request counts only on a server where its best-case processing time is within its deadline.
//! The argument that this bounds every policy is in docs/perllm-policy.md ("The goodput bound").
//! The step-time formulas are those of core's [`Roofline`] cost model, so the bound is computed
//! only for it; any other cost model gives [`BoundError::Unsupported`].

use crate::cost::Roofline;
use crate::request::Request;
use crate::spec::{Fluctuation, IdleCharge, limits};
use crate::world::World;
use good_lp::{Expression, ProblemVariables, Solution, SolverModel, microlp, variable};
use std::collections::HashMap;

mod noise;

/// Most requests the bound reads (beyond, it is not computed: memory grows with the run).
pub const MAX_REQUESTS: usize = 2_000_000;
/// Most LP variables the bound solves (classes x server groups), after the coarsest aggregation.
pub const MAX_LP_VARS: usize = 20_000;
/// Most time windows of the capacity rows.
const MAX_SEGMENTS: usize = 16;
/// Most pair rows (two classes that cannot both be met on one server) in the LP; beyond, the
/// remaining pairs are left out (any subset of valid rows is still a bound).
const MAX_PAIRS: usize = 4_000;
/// Size-bucket ratios tried in turn until the LP is small enough (coarser buckets only loosen
/// the bound: a class carries the smallest need of its members).
const BUCKET_RATIOS: &[f64] = &[1.1, 1.25, 1.5, 2.0, 4.0, 1e12];

/// The bound of one run (scenario and seed).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Bound {
    /// Requests of the run.
    pub arrived: u64,
    /// Requests that some server could complete within their deadline in the best case.
    pub feasible: u64,
    /// Largest number of deadline-met requests of any policy (the LP optimum, rounded down).
    pub deadline_met_max: u64,
    /// The LP optimum, unrounded.
    pub lp_value: f64,
    /// The shortest horizon any run can have: the later of the arrival window's end and the last
    /// arrival, seconds.
    pub horizon_min_s: f64,
    /// Upper bound on goodput per second of the arrival window: `deadline_met_max / duration`
    /// (the scenario's duration; 0 when it is 0).
    pub goodput_rps: f64,
    /// Upper bound on goodput per second of horizon: `deadline_met_max / horizon_min_s`.
    pub goodput_horizon_rps: f64,
    /// Upper bound on deadline attainment: `deadline_met_max / arrived`.
    pub attainment: f64,
    /// Lower bound on the total energy (transmission + inference + idle, unweighted) of a run that
    /// meets `lp_value` deadlines, joules; `None` if its LP failed.
    pub energy_min_j: Option<f64>,
    /// `energy_min_j / lp_value`: joules per served request at least.
    pub energy_min_per_request_j: Option<f64>,
    /// Request classes of the LP.
    pub classes: u64,
    /// LP variables.
    pub lp_vars: u64,
    /// LP rows.
    pub lp_rows: u64,
    /// Time windows of the capacity rows.
    pub windows: u64,
    /// Pairs of request classes that cannot both be met on one server (pair rows of the LP).
    #[serde(default)]
    pub conflicts: u64,
}

/// Why the bound could not be computed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum BoundError {
    /// The cost model is not core's roofline model.
    #[error(
        "the bound is derived for core's roofline cost model only (this run uses `{0}`): not computed"
    )]
    Unsupported(String),
    /// More requests than [`MAX_REQUESTS`].
    #[error("the run has more than {max} requests: the bound is not computed")]
    TooManyRequests {
        /// The limit.
        max: usize,
    },
    /// The LP is too large even with the coarsest aggregation.
    #[error(
        "the bound's LP would have {vars} variables even with the coarsest classes (limit {max}): not computed"
    )]
    TooLarge {
        /// Variables at the coarsest aggregation.
        vars: usize,
        /// The limit.
        max: usize,
    },
    /// The solver failed.
    #[error("the bound's LP solver failed: {0}")]
    Solver(String),
    /// The workload could not be read.
    #[error("the bound cannot read the workload: {0}")]
    Workload(String),
}

/// Servers that are interchangeable for the bound (same hardware, count, models, link, batch
/// and KV capacity): their capacities are pooled, a relaxation.
struct Group {
    members: f64,
    models: Vec<crate::world::ModelId>,
    /// Effective FLOP/s and bytes/s of one server.
    flops: f64,
    bw: f64,
    max_batch: f64,
    kv_capacity: u64,
    /// Per-sequence share of a step's fixed part (overhead, weights) at the cheapest batch size,
    /// as a factor of the fixed part: `min(1, contention + (1 - contention) / max_batch)`.
    phi: f64,
    link_bps_max: f64,
    /// The lowest bandwidth the link can fall to, bits/s.
    link_bps_min: f64,
    link_latency_s: f64,
    /// The member servers' ids.
    servers: Vec<u32>,
    j_per_bit: f64,
    /// Busy power (PUE included).
    busy_w: f64,
    /// Idle power a busy second displaces: the server's idle power, 0 if its idle is never
    /// charged (then each busy second costs its whole busy power).
    idle_w: f64,
    /// Power charged whether the server is used or not: the smaller of idle and busy power if
    /// its idle is always charged, else 0.
    floor_w: f64,
}

/// The best case of one request on one group.
#[derive(Clone, Copy, Debug)]
struct Need {
    /// Best-case processing time, seconds.
    latency_s: f64,
    /// Engine seconds, memory-bound part.
    mem_s: f64,
    /// Engine seconds, compute-bound part.
    comp_s: f64,
    /// Batch-slot seconds (admission to last decode step).
    slot_s: f64,
    /// Engine seconds of its own KV reads (memory-bound, without the weights).
    kv_s: f64,
    /// Steps it takes part in (its output tokens).
    steps: f64,
    /// Upload and download time at least (link latency and transfer at the highest bandwidth).
    up_s: f64,
    down_s: f64,
    up_bits: f64,
    down_bits: f64,
    tx_j: f64,
}

/// The lowest factor of the mean bandwidth a fluctuation can draw (the simulator's floor
/// included).
fn min_factor(f: &Fluctuation) -> f64 {
    let m = match f {
        Fluctuation::None => 1.0,
        Fluctuation::Uniform { frac } => 1.0 - frac,
        Fluctuation::RandomWalk { bound, .. } => 1.0 - bound,
        Fluctuation::Series { points } => points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min),
    };
    m.max(limits::MIN_BANDWIDTH_FACTOR)
}

fn max_factor(f: &Fluctuation) -> f64 {
    let m = match f {
        Fluctuation::None => 1.0,
        Fluctuation::Uniform { frac } => 1.0 + frac,
        Fluctuation::RandomWalk { bound, .. } => 1.0 + bound,
        Fluctuation::Series { points } => points.iter().map(|p| p.1).fold(0.0, f64::max),
    };
    m.max(limits::MIN_BANDWIDTH_FACTOR)
}

fn groups(world: &World) -> (Vec<Group>, Vec<usize>) {
    let mut out: Vec<Group> = Vec::new();
    type Key = (
        usize,
        u32,
        Vec<crate::world::ModelId>,
        usize,
        u32,
        u64,
        u64,
        IdleCharge,
    );
    let mut keys: Vec<Key> = Vec::new();
    let mut of_server = Vec::new();
    for s in &world.servers {
        let key = (
            s.hardware,
            s.count,
            s.models.clone(),
            s.link,
            s.max_batch,
            s.kv_capacity_bytes,
            s.pue.to_bits(),
            s.idle_charge,
        );
        if let Some(i) = keys.iter().position(|k| *k == key) {
            out[i].members += 1.0;
            out[i].servers.push(s.id);
            of_server.push(i);
            continue;
        }
        let hw = &world.hardware[s.hardware];
        let link = &world.links[s.link];
        let n = s.count.max(1) as f64;
        let b = s.max_batch.max(1) as f64;
        let kappa = s.contention.max(0.0);
        let (idle_w, busy_w) = world.server_power_w(s);
        out.push(Group {
            members: 1.0,
            models: s.models.clone(),
            flops: hw.compute_flops * hw.compute_efficiency() * n,
            bw: hw.memory_bandwidth_bytes_per_s * hw.bandwidth_efficiency() * n,
            max_batch: b,
            kv_capacity: s.kv_capacity_bytes,
            phi: (kappa + (1.0 - kappa) / b).min(1.0),
            link_bps_max: link.bandwidth_bps * max_factor(&link.fluctuation),
            link_bps_min: link.bandwidth_bps * min_factor(&link.fluctuation),
            servers: vec![s.id],
            link_latency_s: link.latency_ns as f64 / 1e9,
            j_per_bit: link.energy_j_per_bit,
            busy_w,
            idle_w: match s.idle_charge {
                IdleCharge::Never => 0.0,
                IdleCharge::Always | IdleCharge::IfUsed => idle_w,
            },
            floor_w: match s.idle_charge {
                IdleCharge::Always => idle_w.min(busy_w),
                IdleCharge::IfUsed | IdleCharge::Never => 0.0,
            },
        });
        keys.push(key);
        of_server.push(out.len() - 1);
    }
    (out, of_server)
}

/// Sum over `j = 1..=n` of `max(c, a + j b)` (with `b >= 0`).
fn sum_max_linear(n: u64, c: f64, a: f64, b: f64) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let nf = n as f64;
    if b <= 0.0 {
        return nf * c.max(a);
    }
    // First j with a + j b >= c.
    let first = ((c - a) / b).ceil().max(1.0);
    if first > nf {
        return nf * c;
    }
    let m = nf - first + 1.0;
    (first - 1.0) * c + m * a + b * (first + nf) * m / 2.0
}

/// The best case of `r` on a server of `g`; `noise_excess` is a lower bound on the sum, over
/// its decode steps, of their noise multipliers' excess over the low end (0 if unknown).
fn need(world: &World, cost: &Roofline, g: &Group, r: &Request, noise_excess: f64) -> Option<Need> {
    if !g.models.contains(&r.model) {
        return None;
    }
    let model = &world.models[r.model as usize];
    let p = r.prompt_tokens as u64;
    let q = r.output_tokens.max(1) as u64;
    let kvb = model.kv_bytes_per_token as f64;
    if (p + q).saturating_mul(model.kv_bytes_per_token) > g.kv_capacity {
        return None;
    }
    let sigma = world.scenario.sim.step_noise.clamp(0.0, 1.0);
    let low = 1.0 - sigma;
    let o = cost.step_overhead_ns as f64 / 1e9;
    let w = model.weight_bytes();
    let per_tok_flops = 2.0 * model.params / g.flops;
    // Latency: the prefill step alone, then q - 1 decode steps alone (KV p + j at step j).
    let prefill = o + (per_tok_flops * p as f64).max(w / g.bw);
    let decode = (q - 1) as f64 * o
        + sum_max_linear(
            q - 1,
            per_tok_flops,
            (w + p as f64 * kvb) / g.bw,
            kvb / g.bw,
        );
    // Each decode step costs at least `base` alone, so the steps' multipliers above the low end
    // add at least `base x noise_excess` (docs/perllm-policy.md, "The step noise as drawn").
    let base = o + per_tok_flops.max((w + p as f64 * kvb) / g.bw);
    // Rounding of step times to whole nanoseconds: at most 2 ns per step.
    let engine =
        (low * (prefill + decode) + base * noise_excess.max(0.0) - 2e-9 * q as f64).max(0.0);
    let slot_ns = world.scenario.slot_ns;
    let wait_s = if slot_ns > 0 {
        let k = r.arrival_ns.div_ceil(slot_ns);
        (k.saturating_mul(slot_ns) - r.arrival_ns) as f64 / 1e9
    } else {
        0.0
    };
    let up_bits = r.input_bytes as f64 * 8.0;
    let down_bits = r.output_bytes as f64 * 8.0;
    let latency_s =
        wait_s + 2.0 * g.link_latency_s + (up_bits + down_bits) / g.link_bps_max + engine - 1e-6;
    // Engine time shared with the largest batch: each of the q steps the request is in costs it
    // at least phi x (overhead + weights read) (memory-bound) or phi x overhead (compute-bound),
    // plus its own KV reads or FLOPs.
    let kv_tokens = (q - 1) as f64 * p as f64 + ((q - 1) * q) as f64 / 2.0;
    let mem_s = low * (q as f64 * (o + w / g.bw) * g.phi + kv_tokens * kvb / g.bw);
    let comp_s = low * (q as f64 * o * g.phi + per_tok_flops * (p + q - 1) as f64);
    Some(Need {
        latency_s,
        mem_s,
        comp_s,
        slot_s: engine,
        kv_s: low * kv_tokens * kvb / g.bw,
        steps: q as f64,
        up_s: wait_s + g.link_latency_s + up_bits / g.link_bps_max - 5e-7,
        down_s: g.link_latency_s + down_bits / g.link_bps_max - 5e-7,
        up_bits,
        down_bits,
        tx_j: (up_bits + down_bits) * g.j_per_bit,
    })
}

fn bucket(x: u32, ratio: f64) -> i32 {
    if ratio > 1e9 {
        0
    } else {
        ((x.max(1) as f64).ln() / ratio.ln()).floor() as i32
    }
}

/// What makes two requests one class: home window, arrival bucket (a quarter of its deadline),
/// model, SLO class, feasible groups, prompt and output size buckets.
type ClassKey = (usize, i64, u16, u16, Vec<bool>, i32, i32);

/// One LP class: requests alike for the bound, each carrying the smallest need of its members.
struct Class {
    n: f64,
    home: usize,
    model: u16,
    /// Earliest arrival and latest deadline of its members, seconds.
    lo: f64,
    hi: f64,
    /// Per group: the smallest need over members (groups where no member is feasible: None).
    needs: Vec<Option<Need>>,
}

fn min_need(a: &mut Need, b: &Need) {
    a.mem_s = a.mem_s.min(b.mem_s);
    a.comp_s = a.comp_s.min(b.comp_s);
    a.slot_s = a.slot_s.min(b.slot_s);
    a.kv_s = a.kv_s.min(b.kv_s);
    a.steps = a.steps.min(b.steps);
    a.up_s = a.up_s.min(b.up_s);
    a.down_s = a.down_s.min(b.down_s);
    a.up_bits = a.up_bits.min(b.up_bits);
    a.down_bits = a.down_bits.min(b.down_bits);
    a.tx_j = a.tx_j.min(b.tx_j);
}

/// Compute the bound of the run of `world` whose requests, in arrival order, are `requests`.
pub fn compute(world: &World, cost: &Roofline, requests: &[Request]) -> Result<Bound, BoundError> {
    if requests.len() > MAX_REQUESTS {
        return Err(BoundError::TooManyRequests { max: MAX_REQUESTS });
    }
    let (groups, _) = groups(world);
    let last_arrival = requests.iter().map(|r| r.arrival_ns).max().unwrap_or(0);
    let horizon_min_s = world.scenario.duration_ns.max(last_arrival) as f64 / 1e9;
    let mut bound = Bound {
        arrived: requests.len() as u64,
        horizon_min_s,
        ..Bound::default()
    };
    // The step noise each group's streams force on a request's decode steps.
    let drawn = noise::Drawn::new(world, cost, &groups, requests);
    // Best-case needs, feasibility.
    let mut feasible: Vec<(usize, Vec<Option<Need>>)> = Vec::new();
    for (i, r) in requests.iter().enumerate() {
        let deadline_s = world.slos[r.slo as usize].deadline_ns as f64 / 1e9;
        let needs: Vec<Option<Need>> = groups
            .iter()
            .enumerate()
            .map(|(gi, g)| {
                need(
                    world,
                    cost,
                    g,
                    r,
                    drawn.excess(gi, r, world.slos[r.slo as usize].deadline_ns),
                )
                .filter(|n| n.latency_s <= deadline_s)
            })
            .collect();
        if needs.iter().any(Option::is_some) {
            feasible.push((i, needs));
        }
    }
    bound.feasible = feasible.len() as u64;
    if feasible.is_empty() {
        bound.energy_min_j = Some(idle_floor(world, &groups, horizon_min_s));
        return Ok(bound);
    }
    // Time windows: segments of length L >= the longest deadline, so every request's
    // [arrival, arrival + deadline] lies in one segment or in two consecutive ones.
    let t0 = requests.iter().map(|r| r.arrival_ns).min().unwrap_or(0) as f64 / 1e9;
    let t_end = feasible
        .iter()
        .map(|(i, _)| {
            let r = &requests[*i];
            (r.arrival_ns as f64 + world.slos[r.slo as usize].deadline_ns as f64) / 1e9
        })
        .fold(t0, f64::max);
    let span = (t_end - t0).max(1e-9);
    let max_deadline = world
        .slos
        .iter()
        .map(|s| s.deadline_ns as f64 / 1e9)
        .fold(0.0, f64::max);
    let seg_len = max_deadline.max(span / MAX_SEGMENTS as f64).max(1e-9);
    let segments = ((span / seg_len).ceil() as usize).clamp(1, MAX_SEGMENTS + 1);
    // Homes: 0..segments = a segment, segments..2 segments - 1 = the pair (j, j + 1), last = all.
    let home_all = 2 * segments - 1;
    let home_of = |r: &Request| -> usize {
        let a = (r.arrival_ns as f64 / 1e9 - t0).max(0.0);
        let e = a + world.slos[r.slo as usize].deadline_ns as f64 / 1e9;
        let j = ((a / seg_len).floor() as usize).min(segments - 1);
        if e <= (j + 1) as f64 * seg_len {
            j
        } else if j + 1 < segments && e <= (j + 2) as f64 * seg_len {
            segments + j
        } else {
            home_all
        }
    };
    // Classes, coarser until the LP is small enough.
    let mut classes: Vec<Class> = Vec::new();
    let mut vars = usize::MAX;
    for &ratio in BUCKET_RATIOS {
        let mut index: HashMap<ClassKey, usize> = HashMap::new();
        classes.clear();
        for (i, needs) in &feasible {
            let r = &requests[*i];
            let a = r.arrival_ns as f64 / 1e9;
            let d = world.slos[r.slo as usize].deadline_ns as f64 / 1e9;
            let key = (
                home_of(r),
                (a / (d / 4.0).max(1e-9)).floor() as i64,
                r.model,
                r.slo,
                needs.iter().map(Option::is_some).collect::<Vec<bool>>(),
                bucket(r.prompt_tokens, ratio),
                bucket(r.output_tokens, ratio),
            );
            match index.get(&key) {
                Some(&c) => {
                    let cl = &mut classes[c];
                    cl.n += 1.0;
                    cl.lo = cl.lo.min(a);
                    cl.hi = cl.hi.max(a + d);
                    for (a, b) in cl.needs.iter_mut().zip(needs) {
                        if let (Some(a), Some(b)) = (a.as_mut(), b) {
                            min_need(a, b);
                        }
                    }
                }
                None => {
                    index.insert(key.clone(), classes.len());
                    classes.push(Class {
                        n: 1.0,
                        home: key.0,
                        model: r.model,
                        lo: a,
                        hi: a + d,
                        needs: needs.clone(),
                    });
                }
            }
        }
        vars = classes
            .iter()
            .map(|c| c.needs.iter().filter(|n| n.is_some()).count())
            .sum();
        if vars <= MAX_LP_VARS {
            break;
        }
    }
    if vars > MAX_LP_VARS {
        return Err(BoundError::TooLarge {
            vars,
            max: MAX_LP_VARS,
        });
    }
    bound.classes = classes.len() as u64;
    bound.lp_vars = vars as u64;
    bound.windows = segments as u64;
    let pairs = conflicts(world, cost, &groups, &classes);
    bound.conflicts = pairs.len() as u64;
    let lp = Lp {
        groups: &groups,
        classes: &classes,
        segments,
        seg_len,
        span,
        pairs: &pairs,
    };
    let (value, rows) = lp.solve(None)?;
    bound.lp_rows = rows as u64;
    bound.lp_value = value;
    // A solver's optimum is exact up to its tolerances: allow 1e-6 per class before rounding.
    let met = (value + 1e-6 * classes.len() as f64).floor().max(0.0);
    bound.deadline_met_max = (met as u64).min(bound.feasible);
    let window_s = world.scenario.duration_ns as f64 / 1e9;
    if window_s > 0.0 {
        bound.goodput_rps = bound.deadline_met_max as f64 / window_s;
    }
    bound.goodput_horizon_rps = bound.deadline_met_max as f64 / horizon_min_s.max(1e-9);
    bound.attainment = bound.deadline_met_max as f64 / (bound.arrived.max(1)) as f64;
    // The least energy of serving that many: min over the same polytope with sum y >= value.
    if let Ok((e, _)) = lp.solve(Some(value * (1.0 - 1e-9) - 1e-9)) {
        let total = e + idle_floor(world, &groups, horizon_min_s);
        bound.energy_min_j = Some(total);
        bound.energy_min_per_request_j = (value > 0.0).then(|| total / value);
    }
    Ok(bound)
}

/// Compute the bound of the run of `world` priced by `cost`, reading its requests from `source`
/// (the same source a run of this scenario and seed reads).
pub fn compute_for(
    world: &World,
    cost: &dyn crate::cost::CostModel,
    source: &mut dyn crate::workload::RequestSource,
) -> Result<Bound, BoundError> {
    let Some(roofline) = cost.as_roofline() else {
        return Err(BoundError::Unsupported(cost.name().to_string()));
    };
    let mut requests = Vec::new();
    while let Some(r) = source.next_request() {
        if requests.len() >= MAX_REQUESTS {
            return Err(BoundError::TooManyRequests { max: MAX_REQUESTS });
        }
        requests.push(r.map_err(|e| BoundError::Workload(e.to_string()))?);
    }
    compute(world, roofline, &requests)
}

/// Best-case quantities of one request on one server, as the bound uses them (for tests and
/// diagnostics): `None` if the server does not host the model or its KV memory cannot hold it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BestCase {
    /// Processing time (arrival to delivery) no run can beat, seconds.
    pub latency_s: f64,
    /// Engine seconds the request adds at least to its server's busy time (memory-bound view).
    pub engine_memory_s: f64,
    /// Engine seconds the request adds at least to its server's busy time (compute-bound view).
    pub engine_compute_s: f64,
}

/// The best case of `req` on `server` (see [`BestCase`]).
pub fn best_case(
    world: &World,
    cost: &Roofline,
    req: &Request,
    server: crate::world::ServerId,
) -> Option<BestCase> {
    let (groups, of_server) = groups(world);
    let g = &groups[*of_server.get(server as usize)?];
    need(world, cost, g, req, 0.0).map(|n| BestCase {
        latency_s: n.latency_s,
        engine_memory_s: n.mem_s,
        engine_compute_s: n.comp_s,
    })
}

/// The best cases of a run's requests with the step noise its servers' streams will draw
/// (the bound's feasibility test; [`best_case`] assumes every step at the low end instead).
pub struct DrawnBestCases<'a> {
    world: &'a World,
    cost: &'a Roofline,
    groups: Vec<Group>,
    of_server: Vec<usize>,
    drawn: noise::Drawn,
}

impl<'a> DrawnBestCases<'a> {
    /// For the run of `world` whose requests are `requests`.
    pub fn new(world: &'a World, cost: &'a Roofline, requests: &[Request]) -> Self {
        let (groups, of_server) = groups(world);
        let drawn = noise::Drawn::new(world, cost, &groups, requests);
        DrawnBestCases {
            world,
            cost,
            groups,
            of_server,
            drawn,
        }
    }

    /// The best case of `req` (one of the run's requests) on `server`.
    pub fn get(&self, req: &Request, server: crate::world::ServerId) -> Option<BestCase> {
        let gi = *self.of_server.get(server as usize)?;
        let deadline = self.world.slos[req.slo as usize].deadline_ns;
        let excess = self.drawn.excess(gi, req, deadline);
        need(self.world, self.cost, &self.groups[gi], req, excess).map(|n| BestCase {
            latency_s: n.latency_s,
            engine_memory_s: n.mem_s,
            engine_compute_s: n.comp_s,
        })
    }
}

/// Energy every run spends whatever it does: each server whose idle power is always charged
/// draws at least the smaller of its idle and busy power over the shortest horizon (a server
/// charged `if_used` or `never` may cost nothing).
fn idle_floor(_world: &World, groups: &[Group], horizon_s: f64) -> f64 {
    groups
        .iter()
        .map(|g| g.members * g.floor_w * horizon_s)
        .sum()
}

struct Lp<'a> {
    groups: &'a [Group],
    classes: &'a [Class],
    segments: usize,
    seg_len: f64,
    span: f64,
    pairs: &'a [(usize, usize, usize)],
}

/// The engine seconds every step that includes `model` costs at least on a server of `g`,
/// whatever else is in the step: the step overhead plus one read of the weights (the roofline
/// prices a multi-model step as one estimate per model), at the low end of the step noise, less
/// the nanosecond rounding of the estimate and of the step.
fn fixed_step_s(world: &World, cost: &Roofline, g: &Group, model: u16) -> f64 {
    let low = 1.0 - world.scenario.sim.step_noise.clamp(0.0, 1.0);
    let o = cost.step_overhead_ns as f64 / 1e9;
    let w = world.models[model as usize].weight_bytes();
    (low * (o + w / g.bw) - 2e-9).max(0.0)
}

/// One side of a pair: its need, its model's fixed step cost, its model, and the interval its
/// engine steps must lie in.
type Side<'a> = (&'a Need, f64, usize, f64, f64);

/// Would the two requests need more engine time than the hull of their intervals holds?
fn too_much_work(a: Side<'_>, b: Side<'_>) -> bool {
    let work = if a.2 == b.2 {
        a.0.steps.max(b.0.steps) * a.1
    } else {
        a.0.steps * a.1 + b.0.steps * b.1
    } + a.0.kv_s
        + b.0.kv_s;
    work > a.4.max(b.4) - a.3.min(b.3)
}

/// Can `a` and `b` not both meet their deadlines on `server`, by the bound's pair argument (see
/// docs/perllm-policy.md)? Always false on a server with identical twins (their group is pooled).
pub fn cannot_both_meet(
    world: &World,
    cost: &Roofline,
    a: &Request,
    b: &Request,
    server: crate::world::ServerId,
) -> bool {
    let (groups, of_server) = groups(world);
    let Some(&gi) = of_server.get(server as usize) else {
        return false;
    };
    let g = &groups[gi];
    if g.members != 1.0 {
        return false;
    }
    let side = |r: &Request| {
        let n = need(world, cost, g, r, 0.0)?;
        let t = r.arrival_ns as f64 / 1e9;
        let d = world.slos[r.slo as usize].deadline_ns as f64 / 1e9;
        Some((
            n,
            fixed_step_s(world, cost, g, r.model),
            t + n.up_s,
            t + d - n.down_s,
        ))
    };
    let (Some(x), Some(y)) = (side(a), side(b)) else {
        return false;
    };
    too_much_work(
        (&x.0, x.1, a.model as usize, x.2, x.3),
        (&y.0, y.1, b.model as usize, y.2, y.3),
    )
}

/// Pairs of classes `(a, b, group)` of a one-server group that cannot both have a member met
/// there: between the earlier start of their engine steps (arrival plus best-case upload) and
/// the later end (deadline less best-case download), the server would need more engine time than
/// there is. Steps that include a model cost at least its `fixed_step_s` each, whatever else
/// runs, so two requests of different models need `q_a f_a + q_b f_b` (one model: `max(q_a,
/// q_b) f`), plus their KV reads. In arrival order, at most [`MAX_PAIRS`].
fn conflicts(
    world: &World,
    cost: &Roofline,
    groups: &[Group],
    classes: &[Class],
) -> Vec<(usize, usize, usize)> {
    let mut order: Vec<usize> = (0..classes.len()).collect();
    order.sort_by(|&a, &b| classes[a].lo.total_cmp(&classes[b].lo));
    let mut out = Vec::new();
    for (gi, g) in groups.iter().enumerate() {
        if g.members != 1.0 {
            continue;
        }
        let fixed: Vec<f64> = (0..world.models.len())
            .map(|m| fixed_step_s(world, cost, g, m as u16))
            .collect();
        // Each class's engine interval on this group, in order of start.
        let span = |c: usize| -> Option<(f64, f64, Need)> {
            let n = classes[c].needs[gi]?;
            Some((classes[c].lo + n.up_s, classes[c].hi - n.down_s, n))
        };
        for (i, &a) in order.iter().enumerate() {
            let Some((a_lo, a_hi, na)) = span(a) else {
                continue;
            };
            for &b in &order[i + 1..] {
                if classes[b].lo >= a_hi {
                    break;
                }
                let Some((b_lo, b_hi, nb)) = span(b) else {
                    continue;
                };
                let (ma, mb) = (classes[a].model as usize, classes[b].model as usize);
                if too_much_work(
                    (&na, fixed[ma], ma, a_lo, a_hi),
                    (&nb, fixed[mb], mb, b_lo, b_hi),
                ) {
                    out.push((a, b, gi));
                    if out.len() >= MAX_PAIRS {
                        return out;
                    }
                }
            }
        }
    }
    out
}

impl Lp<'_> {
    /// Homes whose requests lie inside window `w` (windows: segments, then pairs, then all).
    fn window_contains(&self, w: usize, home: usize) -> bool {
        let s = self.segments;
        let all = 2 * s - 1;
        if w == all {
            return true;
        }
        if w < s {
            return home == w;
        }
        let j = w - s;
        home == j || home == j + 1 || home == w
    }

    fn window_len(&self, w: usize) -> f64 {
        let s = self.segments;
        if w == 2 * s - 1 {
            self.span
        } else if w < s {
            self.seg_len
        } else {
            2.0 * self.seg_len
        }
    }

    /// Stage 1 (`served_at_least = None`): maximise served requests; returns the optimum. Stage 2:
    /// minimise the energy above the idle floor with at least that many served; returns it.
    fn solve(&self, served_at_least: Option<f64>) -> Result<(f64, usize), BoundError> {
        let mut vars = ProblemVariables::new();
        let mut y: Vec<Vec<Option<good_lp::Variable>>> = Vec::with_capacity(self.classes.len());
        let mut served = Expression::default();
        for c in self.classes {
            let row = c
                .needs
                .iter()
                .map(|n| {
                    n.map(|_| {
                        let v = vars.add(variable().min(0.0).max(c.n));
                        served.add_mul(1.0, v);
                        v
                    })
                })
                .collect();
            y.push(row);
        }
        // Stage 2: busy time per group (z >= memory work, z >= compute work).
        let z: Vec<good_lp::Variable> = match served_at_least {
            Some(_) => self
                .groups
                .iter()
                .map(|_| vars.add(variable().min(0.0)))
                .collect(),
            None => Vec::new(),
        };
        let mut model = match served_at_least {
            None => vars.maximise(served.clone()).using(microlp),
            Some(_) => {
                let mut e = Expression::default();
                for (g, grp) in self.groups.iter().enumerate() {
                    e.add_mul((grp.busy_w - grp.idle_w).max(0.0), z[g]);
                }
                for (c, row) in self.classes.iter().zip(&y) {
                    for (n, v) in c.needs.iter().zip(row) {
                        if let (Some(n), Some(v)) = (n, v) {
                            e.add_mul(n.tx_j, *v);
                        }
                    }
                }
                vars.minimise(e).using(microlp)
            }
        };
        let mut rows = 0;
        for (c, row) in self.classes.iter().zip(&y) {
            let vs: Vec<_> = row.iter().flatten().collect();
            if vs.len() > 1 {
                let mut e = Expression::default();
                for v in vs {
                    e.add_mul(1.0, *v);
                }
                model.add_constraint(e.leq(c.n));
                rows += 1;
            }
        }
        type Pick = fn(&Need) -> f64;
        let works: [(Pick, bool); 3] = [
            (|n: &Need| n.mem_s, true),
            (|n: &Need| n.comp_s, true),
            (|n: &Need| n.slot_s, false),
        ];
        for (g, grp) in self.groups.iter().enumerate() {
            for w in 0..2 * self.segments {
                let cap = grp.members * self.window_len(w);
                for (k, (pick, engine)) in works.iter().enumerate() {
                    let cap = if *engine { cap } else { cap * grp.max_batch };
                    let mut e = Expression::default();
                    let mut most = 0.0;
                    for (c, row) in self.classes.iter().zip(&y) {
                        if let (Some(n), Some(v)) = (c.needs[g], row[g])
                            && self.window_contains(w, c.home)
                        {
                            e.add_mul(pick(&n), v);
                            most += pick(&n) * c.n;
                        }
                    }
                    if most > cap {
                        model.add_constraint(e.leq(cap));
                        rows += 1;
                    }
                    if served_at_least.is_some() && w == 2 * self.segments - 1 && k < 2 {
                        let mut e = Expression::default();
                        for (c, row) in self.classes.iter().zip(&y) {
                            if let (Some(n), Some(v)) = (c.needs[g], row[g]) {
                                e.add_mul(pick(&n), v);
                            }
                        }
                        e.add_mul(-1.0, z[g]);
                        model.add_constraint(e.leq(0.0));
                        rows += 1;
                    }
                }
            }
            // Link bits, whole run, each direction.
            let cap = grp.members * grp.link_bps_max * self.span;
            for dir in [|n: &Need| n.up_bits, |n: &Need| n.down_bits] {
                let mut e = Expression::default();
                let mut most = 0.0;
                for (c, row) in self.classes.iter().zip(&y) {
                    if let (Some(n), Some(v)) = (c.needs[g], row[g]) {
                        e.add_mul(dir(&n), v);
                        most += dir(&n) * c.n;
                    }
                }
                if most > cap {
                    model.add_constraint(e.leq(cap));
                    rows += 1;
                }
            }
        }
        // Pairs that cannot both be met on the group's one server: at most one of their members
        // is (y_a / n_a + y_b / n_b <= 1: a member of each would be two met).
        for &(a, b, g) in self.pairs {
            if let (Some(va), Some(vb)) = (y[a][g], y[b][g]) {
                let mut e = Expression::default();
                e.add_mul(1.0 / self.classes[a].n, va);
                e.add_mul(1.0 / self.classes[b].n, vb);
                model.add_constraint(e.leq(1.0));
                rows += 1;
            }
        }
        if let Some(m) = served_at_least {
            model.add_constraint(served.clone().geq(m));
            rows += 1;
        }
        let sol = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| model.solve()))
            .map_err(|_| BoundError::Solver("the LP solver panicked".into()))?
            .map_err(|e| BoundError::Solver(e.to_string()))?;
        let value = match served_at_least {
            None => sol.eval(&served),
            Some(_) => {
                let mut e = 0.0;
                for (g, grp) in self.groups.iter().enumerate() {
                    e += (grp.busy_w - grp.idle_w).max(0.0) * sol.value(z[g]);
                }
                for (c, row) in self.classes.iter().zip(&y) {
                    for (n, v) in c.needs.iter().zip(row) {
                        if let (Some(n), Some(v)) = (n, v) {
                            e += n.tx_j * sol.value(*v);
                        }
                    }
                }
                e
            }
        };
        if !value.is_finite() {
            return Err(BoundError::Solver("non-finite optimum".into()));
        }
        Ok((value, rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_max_linear_matches_a_loop() {
        for &(n, c, a, b) in &[
            (10u64, 5.0f64, 1.0f64, 1.0f64),
            (10, 0.5, 1.0, 1.0),
            (10, 50.0, 1.0, 1.0),
            (1, 3.0, 1.0, 1.5),
            (7, 3.0, 1.0, 0.0),
            (0, 3.0, 1.0, 1.0),
        ] {
            let want: f64 = (1..=n).map(|j| c.max(a + j as f64 * b)).sum();
            let got = sum_max_linear(n, c, a, b);
            assert!(
                (want - got).abs() < 1e-9,
                "{n} {c} {a} {b}: {want} vs {got}"
            );
        }
    }
}
