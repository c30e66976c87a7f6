//! The scenario specification: plain, serialisable data that names things by string.
//!
//! A [`Scenario`] is what the DSL and the TOML loader produce and what users may build in code.
//! [`Scenario::build`] validates it, resolves names to indices and returns a [`crate::World`], the
//! runtime object the simulator and the policies work with. All quantities use SI base units in
//! their field names' unit: `_ns` nanoseconds, `_bytes` bytes, `_bps` bits per second,
//! `_flops` FLOP/s, `_w` watts, `_j_per_bit` joules per bit.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Simulated time in integer nanoseconds.
pub type Nanos = u64;

/// One nanosecond-based second.
pub const SECOND: Nanos = 1_000_000_000;
/// One millisecond in nanoseconds.
pub const MILLISECOND: Nanos = 1_000_000;
/// One hour in nanoseconds.
pub const HOUR: Nanos = 3_600 * SECOND;
/// One day in nanoseconds.
pub const DAY: Nanos = 24 * HOUR;

/// Plausibility limits that [`Scenario::build`](crate::Scenario::build) enforces on top of the
/// sign and finiteness rules.
///
/// A value beyond one of these is almost certainly a unit mistake (1 FLOP/s instead of 1 TFLOP/s,
/// a latency in ns written as s), and it would make simulated times overflow 2^64 ns (584 years)
/// or a run take practically for ever. Each limit is far outside any real hardware or network.
pub mod limits {
    use super::{DAY, MILLISECOND, Nanos};

    /// Smallest accepted compute throughput of a device: 1 MFLOP/s.
    pub const MIN_COMPUTE_FLOPS: f64 = 1e6;
    /// Smallest accepted memory bandwidth of a device: 1 MB/s.
    pub const MIN_MEMORY_BANDWIDTH: f64 = 1e6;
    /// Smallest accepted compute or bandwidth efficiency: 0.1%.
    pub const MIN_EFFICIENCY: f64 = 1e-3;
    /// Largest accepted power draw of one device: 10 MW.
    pub const MAX_POWER_W: f64 = 1e7;
    /// Largest accepted power usage effectiveness of a server's facility (the smallest is 1).
    /// Published fleet averages are 1.1-1.6 and the worst surveyed facilities about 2.5; a
    /// value above 5 is a typing mistake (a percentage, or a power) in practice.
    pub const MAX_PUE: f64 = 5.0;
    /// Smallest accepted mean link bandwidth: 1 kbit/s.
    pub const MIN_LINK_BPS: f64 = 1e3;
    /// Bandwidth factors (series points, and the floor of uniform and random-walk fluctuation)
    /// are kept within `[MIN_BANDWIDTH_FACTOR, MAX_BANDWIDTH_FACTOR]` of the mean.
    pub const MIN_BANDWIDTH_FACTOR: f64 = 1e-3;
    /// See [`MIN_BANDWIDTH_FACTOR`].
    pub const MAX_BANDWIDTH_FACTOR: f64 = 1e3;
    /// Largest accepted output size per generated token: 1 MB.
    pub const MAX_OUTPUT_BYTES_PER_TOKEN: f64 = 1e6;
    /// Largest accepted batch contention factor.
    pub const MAX_CONTENTION: f64 = 10.0;
    /// Largest accepted slot length and link latency: one day.
    pub const MAX_TIME_PARAM_NS: Nanos = DAY;
    /// Smallest accepted bandwidth redraw period (and the floor of the default, the slot): 1 ms.
    /// A shorter period makes a busy link cost one event per period.
    pub const MIN_REDRAW_NS: Nanos = MILLISECOND;
    /// Largest accepted arrival rate of a synthetic workload (the peak of a diurnal curve, the
    /// largest step): one million requests per second. Every pending request of a slot is held
    /// in memory, so a rate typed in the wrong unit (`1e9/s` for `1e9/day`) would exhaust it.
    pub const MAX_ARRIVAL_RATE: f64 = 1e6;
    /// Largest expected number of requests of a synthetic workload (mean rate x duration)
    /// without an explicit `max_requests`: one billion, about half an hour of simulation on one
    /// core at the 600,000-800,000 requests/s of BENCHMARKS.md. Setting `max_requests` accepts
    /// more.
    pub const MAX_EXPECTED_REQUESTS: f64 = 1e9;
    /// Largest accepted transmission energy of a link: 1 mJ per bit (cellular radios spend
    /// about 1 µJ/bit). With the other limits (payloads <= 1e15 bytes, power <= 10 MW per
    /// device, times < 2^64 ns) every energy figure of a run stays finite.
    pub const MAX_LINK_J_PER_BIT: f64 = 1e-3;
    /// Largest accepted objective weight of an energy term.
    pub const MAX_OBJECTIVE_WEIGHT: f64 = 1e6;
    /// Most SLO classes a scenario may declare. A class costs a run at most about 33 KB until it
    /// has more than 4,096 completions (it held a 0.5 MB histogram from the start: 5,000 classes
    /// took 2.5 GB); the memory estimate of `footprint` counts them.
    pub const MAX_SLO_CLASSES: usize = 10_000;
    /// Largest accepted coefficient of variation of gamma inter-arrival times. The gamma shape is
    /// `1 / cv^2`: past this, nearly every gap is zero and requests come in bursts of about
    /// `cv^2` at one instant (cv = 1e4 at 6/s gave 102,789 arrivals where 360 were expected, and
    /// cv = 1e5 exhausted memory). Measured arrival processes have cv of a few units.
    pub const MAX_GAMMA_CV: f64 = 100.0;
    /// Largest number of synthetic arrivals in one simulated second; the generator stops the run
    /// with an error past it. Twice [`MAX_ARRIVAL_RATE`], so that a process at the rate limit
    /// never reaches it by chance; what it catches is a process whose realised arrivals are far
    /// above its mean rate.
    pub const MAX_ARRIVALS_PER_SECOND: u64 = 2_000_000;
}

/// A complete description of one experiment: hardware, servers, links, models, SLO classes, workload,
/// objective, policy and simulator parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Human-readable name.
    pub name: String,
    /// Seed from which every random stream of a run is derived.
    pub seed: u64,
    /// Arrivals stop at this time; the run then drains in-flight requests.
    pub duration_ns: Nanos,
    /// Length of a scheduling slot; 0 means "decide at each arrival".
    pub slot_ns: Nanos,
    /// Hardware kinds, referenced by servers.
    pub hardware: Vec<Hardware>,
    /// LLMs, referenced by servers and the workload.
    pub models: Vec<ModelSpec>,
    /// Network links (user to server), referenced by servers.
    pub links: Vec<LinkSpec>,
    /// Servers (edge and cloud).
    pub servers: Vec<ServerSpec>,
    /// Service-level-objective classes (deadlines).
    pub slos: Vec<SloClass>,
    /// Where requests come from.
    pub workload: WorkloadSpec,
    /// Weighted energy objective and user constraints.
    #[serde(default)]
    pub objective: Objective,
    /// The policy to run and its parameters.
    #[serde(default)]
    pub policy: PolicySpec,
    /// Simulator parameters: engine defaults (batching, batch interference) and the ground truth
    /// policies do not see (step noise).
    #[serde(default)]
    pub sim: SimParams,
}

/// Kind of compute device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HardwareKind {
    /// A general-purpose CPU.
    Cpu,
    /// A GPU.
    Gpu,
    /// An NPU / AI accelerator.
    Npu,
}

impl HardwareKind {
    /// Default fraction of peak FLOP/s reached by prefill on this kind of device.
    pub fn default_compute_efficiency(self) -> f64 {
        match self {
            HardwareKind::Cpu => 0.4,
            HardwareKind::Gpu => 0.6,
            HardwareKind::Npu => 0.5,
        }
    }
    /// Default fraction of peak memory bandwidth reached by decode on this kind of device.
    pub fn default_bandwidth_efficiency(self) -> f64 {
        match self {
            HardwareKind::Cpu => 0.6,
            HardwareKind::Gpu => 0.8,
            HardwareKind::Npu => 0.7,
        }
    }
}

/// One kind of device (a CPU socket, a GPU).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hardware {
    /// Name referenced by servers.
    pub name: String,
    /// CPU, GPU or NPU.
    pub kind: HardwareKind,
    /// Peak compute, FLOP/s.
    pub compute_flops: f64,
    /// Device memory, bytes.
    pub memory_bytes: u64,
    /// Memory bandwidth, bytes/s.
    pub memory_bandwidth_bytes_per_s: f64,
    /// Power when idle, watts.
    pub power_idle_w: f64,
    /// Power while running a step, watts.
    pub power_busy_w: f64,
    /// Fraction of peak compute reached by prefill (default by kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_efficiency: Option<f64>,
    /// Fraction of peak memory bandwidth reached by decode (default by kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_efficiency: Option<f64>,
    /// Slowdown per additional sequence in a step on this hardware (batch interference, a
    /// calibrated property of the device): a step of `b` sequences takes its roofline time x
    /// `(1 + contention x (b - 1))`. `None`: the scenario-wide `sim.contention`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contention: Option<f64>,
}

impl Hardware {
    /// Effective prefill efficiency (explicit or the kind's default).
    pub fn compute_efficiency(&self) -> f64 {
        self.compute_efficiency
            .unwrap_or_else(|| self.kind.default_compute_efficiency())
    }
    /// Effective decode efficiency (explicit or the kind's default).
    pub fn bandwidth_efficiency(&self) -> f64 {
        self.bandwidth_efficiency
            .unwrap_or_else(|| self.kind.default_bandwidth_efficiency())
    }
}

/// Numeric precision of model weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit float.
    Fp32,
    /// 16-bit float.
    Fp16,
    /// bfloat16.
    Bf16,
    /// 8-bit integer.
    Int8,
    /// 4-bit integer.
    Int4,
}

impl Precision {
    /// Bytes per parameter.
    pub fn bytes_per_param(self) -> f64 {
        match self {
            Precision::Fp32 => 4.0,
            Precision::Fp16 | Precision::Bf16 => 2.0,
            Precision::Int8 => 1.0,
            Precision::Int4 => 0.5,
        }
    }
}

/// An LLM.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Name referenced by servers and the workload.
    pub name: String,
    /// Parameter count.
    pub params: f64,
    /// Weight precision.
    pub precision: Precision,
    /// KV-cache bytes per token (all layers).
    pub kv_bytes_per_token: u64,
}

impl ModelSpec {
    /// Bytes of weights.
    pub fn weight_bytes(&self) -> f64 {
        self.params * self.precision.bytes_per_param()
    }
}

/// Where a server sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Close to users, weak, cheap.
    Edge,
    /// Far, strong, bandwidth-limited.
    Cloud,
}

impl Tier {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Edge => "edge",
            Tier::Cloud => "cloud",
        }
    }
}

/// How a link's real bandwidth departs from its mean (ground truth; policies see the mean).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fluctuation {
    /// Constant bandwidth.
    None,
    /// Re-drawn uniformly in mean x [1 - frac, 1 + frac] every period (the paper's +/-20%).
    Uniform {
        /// Half-width as a fraction of the mean (0.2 for +/-20%).
        frac: f64,
    },
    /// A bounded random walk: each period the factor moves by up to +/-`step`, clamped to [1-bound, 1+bound].
    RandomWalk {
        /// Largest change of the factor per period.
        step: f64,
        /// Largest departure from 1.
        bound: f64,
    },
    /// A time series of multiplicative factors `(time_ns, factor)`, sampled at the start of each
    /// redraw period; a value holds until the next point, the last one for ever.
    Series {
        /// Points sorted by time; the first at time 0.
        points: Vec<(Nanos, f64)>,
    },
}

/// A network link from users to a server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// Name referenced by servers.
    pub name: String,
    /// Mean bandwidth, bits per second (each direction).
    pub bandwidth_bps: f64,
    /// Real-bandwidth variation.
    pub fluctuation: Fluctuation,
    /// How often the fluctuation is re-drawn; `None` means the scenario's slot (or 100 ms if the slot is 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redraw_ns: Option<Nanos>,
    /// One-way latency.
    pub latency_ns: Nanos,
    /// Transmission energy, joules per bit.
    pub energy_j_per_bit: f64,
}

/// A server: some identical devices, the models they host, a link.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    /// Unique name.
    pub name: String,
    /// Family this server was expanded from (`edge` for `edge[1..5]`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Edge or cloud.
    pub tier: Tier,
    /// Hardware name.
    pub hardware: String,
    /// Number of identical devices.
    pub count: u32,
    /// Names of the models it hosts.
    pub models: Vec<String>,
    /// Link name.
    pub link: String,
    /// Largest number of sequences in one engine step.
    pub max_batch: u32,
    /// How a new prompt joins the running batch; `None`: the scenario-wide `sim.batching`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batching: Option<BatchingKind>,
    /// Token budget per step of `batching = chunked`; `None`: the scenario-wide
    /// `sim.chunk_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_tokens: Option<u32>,
    /// Base URL of a real OpenAI-compatible server for this server (`perllm serve` routes to
    /// it; the simulator ignores it), e.g. `http://10.0.0.5:8000`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Name of the environment variable holding the endpoint's API key (the key itself never
    /// appears in a scenario); `perllm serve` forwards it as `Authorization: Bearer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// Power usage effectiveness of the facility the server sits in: the energy the facility
    /// draws (cooling, power distribution) per joule the devices draw. It multiplies the
    /// server's busy and idle power everywhere energy is counted or estimated. `None`: 1.0 (only
    /// the devices' own power is counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pue: Option<f64>,
    /// How the server's idle power is charged to the run; `None`: [`IdleCharge::Always`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_charge: Option<IdleCharge>,
}

/// How a server's idle power is charged to a run (docs/architecture.md, "Energy").
///
/// Busy power is charged for every engine step in every mode; the modes differ only in who pays
/// for the time the server is not running a step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdleCharge {
    /// The server is provisioned for this workload and powered for the whole run: its idle
    /// power is charged whenever it is not running a step, whether the policy uses it or not.
    #[default]
    Always,
    /// A server that runs no engine step during the run is switched off and charged nothing;
    /// one that runs any step is charged as with `Always`. Models provisioning that follows the
    /// policy: a deployment that never uses its edge servers would not power them.
    IfUsed,
    /// Idle power is never charged to this workload: the server is shared with other work that
    /// pays for its idle time, or powers down between steps (perfect energy proportionality).
    Never,
}

impl IdleCharge {
    /// Lower-case name, as written in scenarios.
    pub fn as_str(self) -> &'static str {
        match self {
            IdleCharge::Always => "always",
            IdleCharge::IfUsed => "if_used",
            IdleCharge::Never => "never",
        }
    }
}

/// How a server's engine lets a newly admitted prompt join the running batch (docs/batching.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchingKind {
    /// A step prefills the newly admitted prompts alone and the running sequences wait for it
    /// (vLLM's original scheduler).
    PrefillFirst,
    /// The new prompts are prefilled whole in the same step as one decode token of every running
    /// sequence (Orca's iteration-level scheduling).
    #[default]
    Mixed,
    /// Every step holds at most `chunk_tokens` tokens: one per running sequence, the rest of the
    /// budget prefills prompts in arrival order, a prompt longer than what is left is split over
    /// several steps (Sarathi-Serve, vLLM's chunked prefill).
    Chunked,
}

impl BatchingKind {
    /// The name used in scenario files (`prefill_first`, `mixed`, `chunked`).
    pub fn as_str(self) -> &'static str {
        match self {
            BatchingKind::PrefillFirst => "prefill_first",
            BatchingKind::Mixed => "mixed",
            BatchingKind::Chunked => "chunked",
        }
    }
}

/// A server's resolved batching choice (what the simulated engine runs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Batching {
    /// See [`BatchingKind::PrefillFirst`].
    PrefillFirst,
    /// See [`BatchingKind::Mixed`].
    #[default]
    Mixed,
    /// See [`BatchingKind::Chunked`].
    Chunked {
        /// Tokens per step (decode tokens plus prefill tokens), at least the server's `max_batch`.
        chunk_tokens: u32,
    },
}

impl Batching {
    /// The kind, without its parameter.
    pub fn kind(self) -> BatchingKind {
        match self {
            Batching::PrefillFirst => BatchingKind::PrefillFirst,
            Batching::Mixed => BatchingKind::Mixed,
            Batching::Chunked { .. } => BatchingKind::Chunked,
        }
    }
}

/// A service-level-objective class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloClass {
    /// Name.
    pub name: String,
    /// Processing-time requirement: from arrival to the last output token delivered.
    pub deadline_ns: Nanos,
    /// Share of the workload, as a fraction in [0, 1].
    pub share: f64,
}

/// An arrival process.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Arrivals {
    /// Poisson arrivals at `rate` per second.
    Poisson {
        /// Mean arrivals per second.
        rate: f64,
    },
    /// Gamma-distributed inter-arrival times with mean 1/rate and coefficient of variation `cv`.
    Gamma {
        /// Mean arrivals per second.
        rate: f64,
        /// Coefficient of variation of the gaps (1 = Poisson, >1 burstier).
        cv: f64,
    },
    /// Alternating on/off periods; Poisson at `rate` while on, nothing while off.
    OnOff {
        /// Arrivals per second while on.
        rate: f64,
        /// Length of an on period.
        on_ns: Nanos,
        /// Length of an off period.
        off_ns: Nanos,
    },
    /// A sinusoidal daily curve: rate(t) = mean * (1 + amplitude * sin(2 pi t / period)).
    Diurnal {
        /// Mean arrivals per second.
        mean_rate: f64,
        /// Relative amplitude in [0, 1].
        amplitude: f64,
        /// Period of the curve.
        period_ns: Nanos,
    },
    /// Piecewise-constant Poisson rate: `(start_ns, rate)` steps, the first at 0.
    Steps {
        /// Steps sorted by start time.
        steps: Vec<(Nanos, f64)>,
    },
}

impl Arrivals {
    /// Peak and mean arrival rate (per second) over an arrival window of `duration_ns`.
    pub fn rates(&self, duration_ns: Nanos) -> (f64, f64) {
        match self {
            Arrivals::Poisson { rate } | Arrivals::Gamma { rate, .. } => (*rate, *rate),
            Arrivals::OnOff {
                rate,
                on_ns,
                off_ns,
            } => (
                *rate,
                *rate * *on_ns as f64 / (*on_ns as f64 + *off_ns as f64),
            ),
            Arrivals::Diurnal {
                mean_rate,
                amplitude,
                ..
            } => (mean_rate * (1.0 + amplitude), *mean_rate),
            Arrivals::Steps { steps } => {
                let peak = steps.iter().map(|s| s.1).fold(0.0, f64::max);
                let mut total = 0.0;
                for (i, &(start, rate)) in steps.iter().enumerate() {
                    let end = steps
                        .get(i + 1)
                        .map_or(duration_ns, |s| s.0.min(duration_ns));
                    total += rate * end.saturating_sub(start) as f64;
                }
                (peak, total / (duration_ns.max(1) as f64))
            }
        }
    }
}

/// A distribution of a non-negative integer size (tokens or bytes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SizeDist {
    /// Always this value.
    Fixed {
        /// The value.
        value: f64,
    },
    /// Uniform in [lo, hi].
    Uniform {
        /// Lower bound.
        lo: f64,
        /// Upper bound.
        hi: f64,
    },
    /// Log-normal with the given median and sigma of the underlying normal.
    LogNormal {
        /// Median.
        median: f64,
        /// Sigma of ln(X).
        sigma: f64,
    },
    /// Resampled uniformly from these values.
    Empirical {
        /// Observed values.
        values: Vec<f64>,
    },
}

impl SizeDist {
    /// Check the parameters: finite, non-negative values, `lo <= hi`, a positive median, at least
    /// one empirical value. What [`Scenario::build`] checks for every distribution of the
    /// workload, and the trace replayer for its payload.
    pub fn check(&self) -> Result<(), String> {
        let ok = |v: f64| v.is_finite() && v >= 0.0;
        let good = match self {
            SizeDist::Fixed { value } => ok(*value),
            SizeDist::Uniform { lo, hi } => ok(*lo) && ok(*hi) && lo <= hi,
            SizeDist::LogNormal { median, sigma } => ok(*median) && *median > 0.0 && ok(*sigma),
            SizeDist::Empirical { values } => !values.is_empty() && values.iter().all(|v| ok(*v)),
        };
        if good {
            Ok(())
        } else {
            Err(format!("invalid size distribution {self:?}"))
        }
    }
}

/// Trace formats understood by the replayer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceFormat {
    /// Azure LLM inference trace (CSV: TIMESTAMP, ContextTokens, GeneratedTokens).
    Azure,
    /// Mooncake (JSONL: timestamp ms, input_length, output_length, hash_ids).
    Mooncake,
    /// BurstGPT (CSV: Timestamp, Model, Request tokens, Response tokens, Total tokens, Log Type).
    Burstgpt,
    /// perllm's plain CSV (arrival_s, prompt_tokens, output_tokens[, slo, model, payload_bytes]).
    Csv,
    /// perllm's plain JSONL with the same fields as `Csv`.
    Jsonl,
}

/// A trace to replay instead of synthetic arrivals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceSpec {
    /// Path, relative to the scenario file.
    pub path: String,
    /// File format.
    pub format: TraceFormat,
    /// Divide trace time by this factor (2.0 plays twice as fast). Ignored if `target_rate` is set.
    #[serde(default = "one")]
    pub speedup: f64,
    /// Rescale time so that the mean arrival rate is this many per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_rate: Option<f64>,
    /// Only rows in `[start, end)` of trace time (relative to the first row).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_ns: Option<(Nanos, Nanos)>,
    /// Play the trace this many times back to back.
    #[serde(default = "one_u32")]
    pub repeat: u32,
    /// Skip and count malformed rows instead of failing.
    #[serde(default)]
    pub skip_bad_rows: bool,
    /// How each row gets its SLO class.
    #[serde(default)]
    pub slo_assign: Assign,
    /// How each row gets its model.
    #[serde(default)]
    pub model_assign: Assign,
    /// Payload bytes of rows that carry none; `None` uses the workload's `payload_bytes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<SizeDist>,
}

/// How trace rows are given an SLO class or a model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Assign {
    /// Drawn at random by the scenario's shares (SLO classes' `share`, the workload's `models`).
    #[default]
    ByShare,
    /// Taken from the trace's own column (plain CSV/JSONL `slo`/`model`, BurstGPT `Model`);
    /// unknown names are row errors.
    FromColumn,
    /// By request size: the first rule whose `max_tokens` (prompt + output) is >= the row's size
    /// gives the name; rows larger than every rule take the last rule's name.
    BySize {
        /// `(max_tokens, name)` rules in increasing `max_tokens`.
        rules: Vec<(u64, String)>,
    },
}

fn one() -> f64 {
    1.0
}
fn one_u32() -> u32 {
    1
}

/// Where requests come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// Arrival process (ignored when `trace` is set).
    pub arrivals: Arrivals,
    /// Prompt length in tokens.
    pub prompt_tokens: SizeDist,
    /// Output length in tokens.
    pub output_tokens: SizeDist,
    /// Input payload in bytes (prompt text plus attached context).
    pub payload_bytes: SizeDist,
    /// Output bytes per output token (default 4).
    #[serde(default = "default_output_bytes_per_token")]
    pub output_bytes_per_token: f64,
    /// Share of each model, by name (fractions summing to 1).
    pub models: Vec<(String, f64)>,
    /// Largest prompt a generator produces (samples are clamped).
    #[serde(default = "default_max_prompt")]
    pub max_prompt_tokens: u32,
    /// Largest output a generator produces (samples are clamped).
    #[serde(default = "default_max_output")]
    pub max_output_tokens: u32,
    /// Replay a trace instead of generating arrivals and sizes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceSpec>,
    /// Stop after this many requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u64>,
}

fn default_output_bytes_per_token() -> f64 {
    4.0
}
fn default_max_prompt() -> u32 {
    8192
}
fn default_max_output() -> u32 {
    4096
}

/// Weights of the three energy terms in the objective (the paper's w_tran, w_infer, w_idle).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectiveWeights {
    /// Weight of transmission energy.
    pub transmission: f64,
    /// Weight of inference energy.
    pub inference: f64,
    /// Weight of idle energy.
    pub idle: f64,
}

impl Default for ObjectiveWeights {
    fn default() -> Self {
        ObjectiveWeights {
            transmission: 1.0,
            inference: 1.0,
            idle: 1.0,
        }
    }
}

/// What a `share(..)` or `occupancy(..)` quantity refers to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Target {
    /// One server by name.
    Server(String),
    /// A family of servers (`edge` for `edge[1..5]`).
    Family(String),
    /// Every server of a tier.
    Tier(Tier),
}

/// A per-slot quantity a user constraint may mention.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "target", rename_all = "snake_case")]
pub enum Quantity {
    /// A request's processing time D (seconds).
    Latency,
    /// A request's deadline (seconds).
    Deadline,
    /// Fraction of placed requests sent to the target, in [0, 1]. The PerLLM policy counts the
    /// placements of the last `share_window` seconds (default 10 s) plus the current slot, because
    /// a short slot often holds a single request; `share_window = 0` makes it literally per slot.
    Share(Target),
    /// Batch-slot occupancy: requests running, queued or uploading on the target servers over
    /// their batch slots (the sum of their `max_batch`), as the policy sees them when it decides;
    /// above 1 when requests queue. Not busy time (the report's `busy_fraction`). Written `occupancy(x)`; the
    /// old spelling `utilization(x)` and the old serialised name are still read.
    #[serde(alias = "utilization")]
    Occupancy(Target),
    /// Transmission energy of a request (joules).
    EnergyTransmission,
    /// Inference energy of a request (joules).
    EnergyInference,
    /// Idle energy attributed to a request (joules).
    EnergyIdle,
    /// Total energy of a request (joules).
    Energy,
}

/// Comparison operator of a constraint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cmp {
    /// `<=`
    #[serde(rename = "<=")]
    Le,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
    /// `==`
    #[serde(rename = "==")]
    Eq,
}

/// A linear constraint `sum(coef * quantity) + constant CMP 0`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearConstraint {
    /// Terms of the left-hand side after moving everything left.
    pub terms: Vec<(f64, Quantity)>,
    /// Constant of the left-hand side after moving everything left.
    pub constant: f64,
    /// Comparison against zero.
    pub cmp: Cmp,
    /// The constraint as the user wrote it, for messages.
    #[serde(default)]
    pub source: String,
}

/// Smallest ratio between a non-zero coefficient (or constant) of a constraint and its largest
/// one. A smaller one vanishes next to the largest in floating point and within the decision
/// tolerance (1e-9 of the largest), so the constraint would not say what it was written to say.
pub const MIN_CONSTRAINT_RATIO: f64 = 1e-12;

impl LinearConstraint {
    /// The constraint divided by its largest coefficient or constant in absolute value, so that
    /// every row reaching the LP and the per-request filters has its largest entry at 1: scaling
    /// a constraint (`1e-10 * latency <= 1e-10 s`) decides exactly as the unscaled one
    /// (`latency <= 1 s`).
    ///
    /// Refused (an error saying why): non-finite values, subnormal values (below 2.2e-308, held
    /// with reduced precision), and a non-zero entry more than 1e12 times smaller than the
    /// largest ([`MIN_CONSTRAINT_RATIO`]). A constraint of zeros only is returned unchanged.
    pub fn normalised(&self) -> Result<LinearConstraint, String> {
        let values = || {
            self.terms
                .iter()
                .map(|(c, _)| *c)
                .chain(std::iter::once(self.constant))
        };
        if values().any(|v| !v.is_finite()) {
            return Err("coefficients and constants must be finite".into());
        }
        if let Some(v) = values().find(|v| *v != 0.0 && v.abs() < f64::MIN_POSITIVE) {
            return Err(format!(
                "{v:e} is below 2.2e-308 and cannot be represented at full precision; change \
                 the units or scale the whole constraint"
            ));
        }
        let scale = values().fold(0.0f64, |m, v| m.max(v.abs()));
        if scale == 0.0 {
            return Ok(self.clone());
        }
        if let Some(v) = values().find(|v| *v != 0.0 && v.abs() / scale < MIN_CONSTRAINT_RATIO) {
            return Err(format!(
                "{v:e} is more than 1e12 times smaller than {scale:e}, the largest number of the \
                 constraint: next to it, it cannot change a decision; drop the term or change \
                 the units"
            ));
        }
        Ok(LinearConstraint {
            terms: self
                .terms
                .iter()
                .map(|(c, q)| (c / scale, q.clone()))
                .collect(),
            constant: self.constant / scale,
            cmp: self.cmp,
            source: self.source.clone(),
        })
    }
}

/// The objective block.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objective {
    /// Energy weights.
    pub weights: ObjectiveWeights,
    /// User constraints, enforced by the PerLLM policy's LP step.
    #[serde(default)]
    pub constraints: Vec<LinearConstraint>,
}

/// A policy parameter value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// A boolean.
    Bool(bool),
    /// A number (any unit already converted to SI).
    Number(f64),
    /// A string or identifier.
    Text(String),
}

impl std::fmt::Display for ParamValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Number(n) => write!(f, "{n}"),
            ParamValue::Text(s) => write!(f, "{s}"),
        }
    }
}

/// Which policy to run, with its parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// Policy name (`perllm`, `oracle`, or a plugin's policy).
    pub name: String,
    /// Parameters, passed to the policy as given.
    #[serde(default)]
    pub params: BTreeMap<String, ParamValue>,
}

impl Default for PolicySpec {
    fn default() -> Self {
        PolicySpec {
            name: "perllm".into(),
            params: BTreeMap::new(),
        }
    }
}

/// Simulator parameters: defaults of the simulated engines (batching, batch interference: each
/// server or hardware may override them) and how reality departs from the cost model's estimates
/// (step noise, which policies never see).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimParams {
    /// Relative per-step time noise: each step's time is multiplied by a factor uniform in
    /// [1 - noise, 1 + noise].
    #[serde(default = "default_noise")]
    pub step_noise: f64,
    /// Slowdown per additional sequence in a step (interference the roofline ignores):
    /// real step time = roofline x (1 + contention x (batch - 1)).
    /// This is the default of every hardware without its own `contention`.
    #[serde(default = "default_contention")]
    pub contention: f64,
    /// Default batching of servers without their own `batching` (see [`BatchingKind`]).
    #[serde(default, skip_serializing_if = "is_mixed")]
    pub batching: BatchingKind,
    /// Default token budget per step of chunked servers without their own `chunk_tokens`
    /// (512, vLLM's default for chunked prefill).
    #[serde(
        default = "default_chunk_tokens",
        skip_serializing_if = "is_default_chunk"
    )]
    pub chunk_tokens: u32,
    /// A request deferred more than this many times is rejected.
    #[serde(default = "default_max_defers")]
    pub max_defers: u32,
    /// How long the simulator keeps going after the last arrival. Requests not delivered by then
    /// end as `unfinished` (never met: they are older than every deadline). `None`: the larger of
    /// one hour and the longest SLO deadline. Bounds the simulated time of any run, whatever the
    /// hardware and links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_ns: Option<Nanos>,
    /// The memory limit of a run, in bytes: the scenario's estimated memory
    /// ([`crate::footprint::Footprint`]) above it is a build error. `None`:
    /// [`crate::footprint::DEFAULT_MEMORY_LIMIT`] (2 GiB); `u64::MAX`: no limit. Not part of
    /// what a run computes (the CLI leaves it out of the scenario hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_bytes: Option<u64>,
}

fn default_noise() -> f64 {
    0.05
}
fn default_contention() -> f64 {
    0.01
}
fn default_max_defers() -> u32 {
    100
}
/// Default token budget per step of `batching = chunked`.
pub const DEFAULT_CHUNK_TOKENS: u32 = 512;
fn default_chunk_tokens() -> u32 {
    DEFAULT_CHUNK_TOKENS
}
fn is_default_chunk(v: &u32) -> bool {
    *v == DEFAULT_CHUNK_TOKENS
}
fn is_mixed(b: &BatchingKind) -> bool {
    *b == BatchingKind::Mixed
}

impl Default for SimParams {
    fn default() -> Self {
        SimParams {
            step_noise: default_noise(),
            contention: default_contention(),
            max_defers: default_max_defers(),
            drain_ns: None,
            max_memory_bytes: None,
            batching: BatchingKind::Mixed,
            chunk_tokens: DEFAULT_CHUNK_TOKENS,
        }
    }
}
