//! The run report and the streaming metrics observer that builds it.
//!
//! Aggregates are streamed: memory is proportional to servers and SLO classes (plus fixed-size
//! latency histograms: two for the run, and one per SLO class once that class has more than
//! 4,096 completions; a class with fewer keeps its samples in a list), never to the number of
//! requests beyond that.

use crate::observer::Observer;
use crate::policy::{Decision, PolicyStats};
use crate::request::{Energy, Outcome, RejectReason, Request};
use crate::spec::{IdleCharge, Nanos};
use crate::world::World;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;

/// Version of the report's JSON schema (docs/report-schema.md).
pub const REPORT_SCHEMA_VERSION: u32 = 2;

/// Why a figure is `null` in a serialised report: nothing it could be computed from.
pub const NO_COMPLETIONS: &str = "no request completed";

/// Percentiles of a latency distribution, seconds. Serialised with every figure `null` and
/// `na_reason` beside them when [`Percentiles::count`] is 0 (no completed request: 0 s would
/// read as the best latency).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Percentiles {
    /// Completed requests the figures are over (not serialised).
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest value.
    pub max: f64,
}

/// Energy totals, joules. Serialised with the `per_*` figures `null` and `na_reason` beside them
/// when [`EnergyReport::completed`] is 0.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnergyReport {
    /// Completed requests the per-request figures are over (not serialised).
    pub completed: u64,
    /// Transmission energy over all links.
    pub transmission_j: f64,
    /// Inference (busy) energy over all servers.
    pub inference_j: f64,
    /// Idle energy over all servers.
    pub idle_j: f64,
    /// Sum of the three.
    pub total_j: f64,
    /// The objective: the weighted sum with the scenario's weights.
    pub weighted_j: f64,
    /// Total energy per completed request.
    pub per_request_j: f64,
    /// Total energy per generated output token.
    pub per_output_token_j: f64,
    /// Per completed request, split: transmission.
    pub per_request_transmission_j: f64,
    /// Per completed request, split: inference.
    pub per_request_inference_j: f64,
    /// Per completed request, split: idle.
    pub per_request_idle_j: f64,
}

fn na(v: f64, exists: bool) -> Option<f64> {
    exists.then_some(v)
}

impl Serialize for Percentiles {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let ok = self.count > 0;
        let mut st = s.serialize_struct("Percentiles", if ok { 5 } else { 6 })?;
        st.serialize_field("mean", &na(self.mean, ok))?;
        st.serialize_field("p50", &na(self.p50, ok))?;
        st.serialize_field("p90", &na(self.p90, ok))?;
        st.serialize_field("p99", &na(self.p99, ok))?;
        st.serialize_field("max", &na(self.max, ok))?;
        if !ok {
            st.serialize_field("na_reason", NO_COMPLETIONS)?;
        }
        st.end()
    }
}

impl Serialize for EnergyReport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let ok = self.completed > 0;
        let mut st = s.serialize_struct("EnergyReport", if ok { 10 } else { 11 })?;
        st.serialize_field("transmission_j", &self.transmission_j)?;
        st.serialize_field("inference_j", &self.inference_j)?;
        st.serialize_field("idle_j", &self.idle_j)?;
        st.serialize_field("total_j", &self.total_j)?;
        st.serialize_field("weighted_j", &self.weighted_j)?;
        st.serialize_field("per_request_j", &na(self.per_request_j, ok))?;
        st.serialize_field("per_output_token_j", &na(self.per_output_token_j, ok))?;
        st.serialize_field(
            "per_request_transmission_j",
            &na(self.per_request_transmission_j, ok),
        )?;
        st.serialize_field(
            "per_request_inference_j",
            &na(self.per_request_inference_j, ok),
        )?;
        st.serialize_field("per_request_idle_j", &na(self.per_request_idle_j, ok))?;
        if !ok {
            st.serialize_field("na_reason", NO_COMPLETIONS)?;
        }
        st.end()
    }
}

/// Per-server figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ServerReport {
    /// Server name.
    pub name: String,
    /// `edge` or `cloud`.
    pub tier: String,
    /// Requests assigned to it.
    pub assigned: u64,
    /// Requests it completed.
    pub completed: u64,
    /// Share of all completed requests.
    pub share: f64,
    /// Fraction of the horizon `[0, horizon_s]` it spent running engine steps (busy time over
    /// horizon). Not the batch-slot occupancy that the `occupancy(..)` constraint bounds.
    pub busy_fraction: f64,
    /// Seconds spent running steps.
    pub busy_s: f64,
    /// Engine steps run.
    pub steps: u64,
    /// Output tokens generated.
    pub output_tokens: u64,
    /// Inference energy, joules.
    pub inference_j: f64,
    /// Idle energy, joules.
    pub idle_j: f64,
    /// Transmission energy on its link, joules.
    pub transmission_j: f64,
}

/// Per-SLO-class figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SloReport {
    /// Class name.
    pub name: String,
    /// Deadline, seconds.
    pub deadline_s: f64,
    /// Requests of this class that arrived.
    pub arrived: u64,
    /// Completed.
    pub completed: u64,
    /// Rejected.
    pub rejected: u64,
    /// Completed within the deadline.
    pub met: u64,
    /// `met / arrived` (rejections count as misses).
    pub attainment: f64,
    /// Processing time D of completed requests.
    pub latency_s: Percentiles,
}

/// Simulator counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SimCounters {
    /// Events processed.
    pub events: u64,
    /// Engine steps simulated.
    pub steps: u64,
    /// Policy `schedule` calls.
    pub decisions: u64,
    /// Trace rows skipped as malformed.
    pub skipped_rows: u64,
}

/// Everything a run measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Report {
    /// Schema version of this structure.
    pub schema_version: u32,
    /// Scenario name.
    pub scenario: String,
    /// Policy name.
    pub policy: String,
    /// Cost-model name.
    pub cost_model: String,
    /// Seed of the run.
    pub seed: u64,
    /// True when the policy read hidden ground truth (the offline oracle).
    pub ground_truth_policy: bool,
    /// Arrival window, seconds.
    pub duration_s: f64,
    /// Time of the last event (all requests ended), seconds; the energy horizon.
    pub horizon_s: f64,
    /// Requests that arrived.
    pub arrived: u64,
    /// Requests completed.
    pub completed: u64,
    /// Requests rejected.
    pub rejected: u64,
    /// Rejections by reason.
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Completed within their deadline.
    pub deadline_met: u64,
    /// Completions per second of the arrival window (`completed / duration_s`).
    pub throughput_rps: f64,
    /// Deadline-met completions per second of the arrival window (`deadline_met / duration_s`),
    /// comparable with the offered load `arrived / duration_s`.
    pub goodput_rps: f64,
    /// Completions per second of the horizon, drain included (`completed / horizon_s`).
    pub throughput_horizon_rps: f64,
    /// Deadline-met completions per second of the horizon, drain included
    /// (`deadline_met / horizon_s`).
    pub goodput_horizon_rps: f64,
    /// `deadline_met / arrived`.
    pub deadline_attainment: f64,
    /// Output tokens generated.
    pub output_tokens: u64,
    /// Processing time D of completed requests.
    pub latency_s: Percentiles,
    /// Time to first token of completed requests.
    pub ttft_s: Percentiles,
    /// Energy.
    pub energy: EnergyReport,
    /// Per SLO class.
    pub slos: Vec<SloReport>,
    /// Per server.
    pub servers: Vec<ServerReport>,
    /// What the policy reported (LP fallbacks, regret series, ...).
    pub policy_stats: PolicyStats,
    /// Simulator counters.
    pub sim: SimCounters,
}

/// Latencies are recorded in microseconds, from 1 us to about 11.6 days, at 3 significant figures.
fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 1_000_000_000_000, 3).expect("valid histogram bounds")
}

fn record(h: &mut Histogram<u64>, ns: Nanos) {
    h.saturating_record(micros(ns));
}

fn micros(ns: Nanos) -> u64 {
    (ns / 1_000).max(1)
}

/// Samples a class keeps as a list before they move into a histogram: a histogram with the
/// report's bounds and precision holds about 0.5 MB of counters, a list of this many samples
/// 32 KB, so a scenario with thousands of rarely used classes does not pay 0.5 MB for each
/// (5,000 classes took 2.5 GB).
const SLO_SAMPLES_BEFORE_HISTOGRAM: usize = 4096;

/// The latencies of one SLO class: a list while short, then a histogram. Both give the same
/// percentiles (the list is recorded into a histogram when the report is built).
enum ClassLatency {
    Samples(Vec<u64>),
    Histogram(Box<Histogram<u64>>),
}

impl ClassLatency {
    fn record(&mut self, ns: Nanos) {
        match self {
            ClassLatency::Samples(v) if v.len() < SLO_SAMPLES_BEFORE_HISTOGRAM => {
                v.push(micros(ns))
            }
            ClassLatency::Samples(v) => {
                let mut h = hist();
                for &x in v.iter() {
                    h.saturating_record(x);
                }
                record(&mut h, ns);
                *self = ClassLatency::Histogram(Box::new(h));
            }
            ClassLatency::Histogram(h) => record(h, ns),
        }
    }

    fn percentiles(&self) -> Percentiles {
        match self {
            ClassLatency::Samples(v) if v.is_empty() => Percentiles::default(),
            ClassLatency::Samples(v) => {
                let mut h = hist();
                for &x in v {
                    h.saturating_record(x);
                }
                percentiles(&h)
            }
            ClassLatency::Histogram(h) => percentiles(h),
        }
    }
}

fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    let s = |v: u64| v as f64 / 1e6;
    Percentiles {
        count: h.len(),
        mean: h.mean() / 1e6,
        p50: s(h.value_at_quantile(0.5)),
        p90: s(h.value_at_quantile(0.9)),
        p99: s(h.value_at_quantile(0.99)),
        max: s(h.max()),
    }
}

#[derive(Default)]
struct SloAcc {
    arrived: u64,
    completed: u64,
    rejected: u64,
    met: u64,
}

/// One server's counters in [`Metrics`].
#[derive(Clone, Copy, Debug, Default)]
#[repr(align(32))]
struct ServerAcc {
    completed: u64,
    assigned: u64,
    tokens: u64,
    tx_j: f64,
}

/// The streaming observer that accumulates a [`Report`].
pub struct Metrics {
    latency: Histogram<u64>,
    ttft: Histogram<u64>,
    slo_latency: Vec<ClassLatency>,
    slo: Vec<SloAcc>,
    /// Per-server counters, one 32-byte entry per server: a completion updates three of them,
    /// so with thousands of servers one cache line instead of three separate arrays.
    per_server: Vec<ServerAcc>,
    arrived: u64,
    completed: u64,
    rejected: BTreeMap<RejectReason, u64>,
    met: u64,
    tokens: u64,
    tx_j: f64,
}

impl Metrics {
    /// An empty accumulator for `world`.
    pub fn new(world: &World) -> Self {
        let n = world.servers.len();
        Metrics {
            latency: hist(),
            ttft: hist(),
            slo_latency: world
                .slos
                .iter()
                .map(|_| ClassLatency::Samples(Vec::new()))
                .collect(),
            slo: world.slos.iter().map(|_| SloAcc::default()).collect(),
            per_server: vec![ServerAcc::default(); n],
            arrived: 0,
            completed: 0,
            rejected: BTreeMap::new(),
            met: 0,
            tokens: 0,
            tx_j: 0.0,
        }
    }

    /// Requests that arrived so far.
    pub fn arrived(&self) -> u64 {
        self.arrived
    }

    /// Requests that ended (completed or rejected) so far.
    pub fn ended(&self) -> u64 {
        self.completed + self.rejected.values().sum::<u64>()
    }
}

/// Server-side totals the simulator hands to [`Metrics::finish`].
pub struct ServerTotals {
    /// Busy (step) time per server, ns.
    pub busy_ns: Vec<Nanos>,
    /// Steps per server.
    pub steps: Vec<u64>,
}

impl Metrics {
    /// Turn the accumulated figures into a report.
    #[allow(clippy::too_many_arguments)]
    pub fn finish(
        self,
        world: &World,
        policy: String,
        cost_model: String,
        ground_truth_policy: bool,
        horizon_ns: Nanos,
        totals: ServerTotals,
        policy_stats: PolicyStats,
        sim: SimCounters,
    ) -> Report {
        let horizon_s = horizon_ns as f64 / 1e9;
        let mut servers = Vec::new();
        let (mut inf_j, mut idle_j) = (0.0, 0.0);
        for s in &world.servers {
            let i = s.id as usize;
            let (idle_w, busy_w) = world.server_power_w(s);
            let busy = totals.busy_ns[i].min(horizon_ns);
            let inference_j = busy_w * busy as f64 / 1e9;
            let idle = match s.idle_charge {
                IdleCharge::Always => idle_w * (horizon_ns - busy) as f64 / 1e9,
                IdleCharge::IfUsed if totals.steps[i] > 0 => {
                    idle_w * (horizon_ns - busy) as f64 / 1e9
                }
                IdleCharge::IfUsed | IdleCharge::Never => 0.0,
            };
            inf_j += inference_j;
            idle_j += idle;
            servers.push(ServerReport {
                name: s.name.clone(),
                tier: s.tier.as_str().into(),
                assigned: self.per_server[i].assigned,
                completed: self.per_server[i].completed,
                share: if self.completed > 0 {
                    self.per_server[i].completed as f64 / self.completed as f64
                } else {
                    0.0
                },
                busy_fraction: if horizon_ns > 0 {
                    busy as f64 / horizon_ns as f64
                } else {
                    0.0
                },
                busy_s: busy as f64 / 1e9,
                steps: totals.steps[i],
                output_tokens: self.per_server[i].tokens,
                inference_j,
                idle_j: idle,
                transmission_j: self.per_server[i].tx_j,
            });
        }
        let e = Energy {
            transmission: self.tx_j,
            inference: inf_j,
            idle: idle_j,
        };
        let total = e.total();
        let per = |x: f64| {
            if self.completed > 0 {
                x / self.completed as f64
            } else {
                0.0
            }
        };
        let duration_s = world.scenario.duration_ns as f64 / 1e9;
        let per_s = |x: u64, over: f64| if over > 0.0 { x as f64 / over } else { 0.0 };
        let frac = |a: u64, b: u64| if b > 0 { a as f64 / b as f64 } else { 0.0 };
        let slos = world
            .slos
            .iter()
            .zip(self.slo.iter().zip(&self.slo_latency))
            .map(|(c, (a, h))| SloReport {
                name: c.name.clone(),
                deadline_s: c.deadline_ns as f64 / 1e9,
                arrived: a.arrived,
                completed: a.completed,
                rejected: a.rejected,
                met: a.met,
                attainment: frac(a.met, a.arrived),
                latency_s: h.percentiles(),
            })
            .collect();
        let rejected: u64 = self.rejected.values().sum();
        Report {
            schema_version: REPORT_SCHEMA_VERSION,
            scenario: world.scenario.name.clone(),
            policy,
            cost_model,
            seed: world.scenario.seed,
            ground_truth_policy,
            duration_s,
            horizon_s,
            arrived: self.arrived,
            completed: self.completed,
            rejected,
            rejected_by_reason: self
                .rejected
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), *v))
                .collect(),
            deadline_met: self.met,
            throughput_rps: per_s(self.completed, duration_s),
            goodput_rps: per_s(self.met, duration_s),
            throughput_horizon_rps: per_s(self.completed, horizon_s),
            goodput_horizon_rps: per_s(self.met, horizon_s),
            deadline_attainment: frac(self.met, self.arrived),
            output_tokens: self.tokens,
            latency_s: percentiles(&self.latency),
            ttft_s: percentiles(&self.ttft),
            energy: EnergyReport {
                completed: self.completed,
                transmission_j: e.transmission,
                inference_j: e.inference,
                idle_j: e.idle,
                total_j: total,
                weighted_j: e.weighted(&world.scenario.objective.weights),
                per_request_j: per(total),
                per_output_token_j: if self.tokens > 0 {
                    total / self.tokens as f64
                } else {
                    0.0
                },
                per_request_transmission_j: per(e.transmission),
                per_request_inference_j: per(e.inference),
                per_request_idle_j: per(e.idle),
            },
            slos,
            servers,
            policy_stats,
            sim,
        }
    }
}

impl Observer for Metrics {
    fn on_arrival(&mut self, req: &Request) {
        self.arrived += 1;
        self.slo[req.slo as usize].arrived += 1;
    }
    fn on_decision(
        &mut self,
        _now: Nanos,
        _slot: u64,
        _req: &Request,
        d: Decision,
        _note: Option<&serde_json::Value>,
    ) {
        if let Decision::Assign(s) = d {
            self.per_server[s as usize].assigned += 1;
        }
    }
    fn on_completion(&mut self, o: &Outcome) {
        self.completed += 1;
        let s = o.server as usize;
        let acc = &mut self.per_server[s];
        acc.completed += 1;
        acc.tokens += o.request.output_tokens as u64;
        acc.tx_j += o.energy.transmission;
        self.tx_j += o.energy.transmission;
        self.tokens += o.request.output_tokens as u64;
        let acc = &mut self.slo[o.request.slo as usize];
        acc.completed += 1;
        if o.met {
            self.met += 1;
            acc.met += 1;
        }
        record(&mut self.latency, o.total_ns);
        record(&mut self.ttft, o.ttft_ns);
        self.slo_latency[o.request.slo as usize].record(o.total_ns);
    }
    fn on_rejection(&mut self, _now: Nanos, req: &Request, reason: RejectReason) {
        *self.rejected.entry(reason).or_default() += 1;
        self.slo[req.slo as usize].rejected += 1;
    }
}

/// The columns of the per-request CSV (`perllm run --requests`, docs/report-schema.md), in order;
/// the simulator and the gateway both write them.
pub const REQUEST_COLUMNS: &[&str] = &[
    "request",
    "status",
    "reject_reason",
    "arrival_s",
    "model",
    "slo",
    "prompt_tokens",
    "output_tokens",
    "input_bytes",
    "output_bytes",
    "server",
    "tier",
    "decided_s",
    "upload_s",
    "queue_s",
    "prefill_s",
    "decode_s",
    "download_s",
    "ttft_s",
    "latency_s",
    "deadline_s",
    "met",
    "energy_transmission_j",
    "energy_inference_j",
    "ended_s",
    "energy_source",
];
