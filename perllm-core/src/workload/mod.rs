//! Request sources: the synthetic generator ([`Synthetic`]), trace replay ([`trace::TraceSource`])
//! over any reader, and bandwidth time series ([`bandwidth_series_from_csv`]).
//!
//! [`source_for`] picks the right source for a [`World`]. The formats and rules are documented in
//! `docs/workloads.md`.

pub mod bandwidth;
mod lines;
pub mod trace;

pub use bandwidth::{BandwidthSeries, bandwidth_series_from_csv, read_bandwidth_csv};
pub use trace::{Opener, Reader, TraceSource};

use crate::request::Request;
use crate::rng::{Rng, stream, stream_rng, unit_f64};
use crate::spec::{Arrivals, Nanos, SizeDist, limits};
use crate::world::{ModelId, SloId, World};

/// An error while producing requests (a malformed trace row, an out-of-order arrival).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{source_name}: row {row}: {message}")]
pub struct WorkloadError {
    /// The file or generator name.
    pub source_name: String,
    /// 1-based row (line) number, 0 if not applicable.
    pub row: u64,
    /// What is wrong.
    pub message: String,
}

/// `n` with thousands separators: `2,000,000`.
fn group_thousands(n: u64) -> String {
    let d = n.to_string();
    let mut out = String::new();
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl WorkloadError {
    /// An error in `source_name` at 1-based `row` (0 if not about one row).
    pub fn new(source_name: &str, row: u64, message: String) -> Self {
        WorkloadError {
            source_name: source_name.to_string(),
            row,
            message,
        }
    }
}

/// The request source of `world`: the trace replayer if the workload names a trace, the synthetic
/// generator otherwise.
///
/// `open` opens a trace path as written in the scenario (the CLI resolves it relative to the
/// scenario file). It is called once per pass over the trace (a pre-pass for `target_rate`, then
/// once per `repeat`), which is why the returned source borrows it.
pub fn source_for<'a>(
    world: &World,
    open: &'a dyn Fn(&str) -> std::io::Result<Reader>,
) -> Result<Box<dyn RequestSource + 'a>, WorkloadError> {
    match &world.scenario.workload.trace {
        None => Ok(Box::new(Synthetic::new(world))),
        Some(spec) => {
            let path = spec.path.clone();
            let src = TraceSource::with_opener(spec, &spec.path, move || open(&path), world)?;
            Ok(Box::new(src))
        }
    }
}

/// A stream of requests in non-decreasing arrival order.
pub trait RequestSource {
    /// The next request, `None` at the end.
    fn next_request(&mut self) -> Option<Result<Request, WorkloadError>>;
    /// Rows skipped as malformed so far (for sources that can skip).
    fn skipped(&self) -> u64 {
        0
    }
}

impl<I: Iterator<Item = Result<Request, WorkloadError>>> RequestSource for I {
    fn next_request(&mut self) -> Option<Result<Request, WorkloadError>> {
        self.next()
    }
}

/// Sample a size distribution.
pub fn sample_size(d: &SizeDist, r: &mut Rng) -> f64 {
    match d {
        SizeDist::Fixed { value } => *value,
        SizeDist::Uniform { lo, hi } => lo + (hi - lo) * unit_f64(r),
        SizeDist::LogNormal { median, sigma } => median * (sigma * std_normal(r)).exp(),
        SizeDist::Empirical { values } => {
            values[(unit_f64(r) * values.len() as f64) as usize % values.len()]
        }
    }
}

/// A standard normal draw (Box-Muller).
pub fn std_normal(r: &mut Rng) -> f64 {
    let u1 = 1.0 - unit_f64(r); // (0, 1]
    let u2 = unit_f64(r);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// An exponential draw with the given mean.
pub fn exponential(r: &mut Rng, mean: f64) -> f64 {
    -(1.0 - unit_f64(r)).ln() * mean
}

/// Pick an index by weights (which sum to about 1).
pub fn pick_weighted<T: Copy>(items: &[(T, f64)], r: &mut Rng) -> T {
    let total: f64 = items.iter().map(|x| x.1).sum();
    let mut u = unit_f64(r) * total;
    for &(t, w) in items {
        if u < w {
            return t;
        }
        u -= w;
    }
    items.last().expect("non-empty by validation").0
}

/// The synthetic generator described by a scenario's workload block.
pub struct Synthetic {
    rng: Rng,
    arrivals: Arrivals,
    prompt: SizeDist,
    output: SizeDist,
    payload: SizeDist,
    out_bytes_per_token: f64,
    max_prompt: u32,
    max_output: u32,
    models: Vec<(ModelId, f64)>,
    slos: Vec<(SloId, f64)>,
    /// Current time in seconds (f64 internally, emitted as integer ns).
    t: f64,
    end_ns: Nanos,
    next_id: u64,
    limit: u64,
    done: bool,
    /// The simulated second of the last arrival and the arrivals in it so far.
    second: (u64, u64),
    /// Most arrivals accepted in one simulated second.
    per_second: u64,
}

impl Synthetic {
    /// The generator for `world`'s workload, stopping at the scenario duration.
    pub fn new(world: &World) -> Self {
        let w = &world.scenario.workload;
        Synthetic {
            rng: stream_rng(world.scenario.seed, stream::WORKLOAD),
            arrivals: w.arrivals.clone(),
            prompt: w.prompt_tokens.clone(),
            output: w.output_tokens.clone(),
            payload: w.payload_bytes.clone(),
            out_bytes_per_token: w.output_bytes_per_token,
            max_prompt: w.max_prompt_tokens,
            max_output: w.max_output_tokens,
            models: world.model_shares.clone(),
            slos: world
                .slos
                .iter()
                .enumerate()
                .map(|(i, s)| (i as SloId, s.share))
                .collect(),
            t: 0.0,
            end_ns: world.scenario.duration_ns,
            next_id: 0,
            limit: w.max_requests.unwrap_or(u64::MAX),
            done: false,
            second: (0, 0),
            per_second: limits::MAX_ARRIVALS_PER_SECOND,
        }
    }

    /// Stop with an error after `n` arrivals in one simulated second instead of
    /// [`limits::MAX_ARRIVALS_PER_SECOND`] (a stricter bound for embedders and tests; a larger
    /// `n` is capped at the default).
    pub fn with_arrival_limit(mut self, n: u64) -> Self {
        self.per_second = n.min(limits::MAX_ARRIVALS_PER_SECOND);
        self
    }

    fn next_gap(&mut self) -> Option<f64> {
        let r = &mut self.rng;
        match &self.arrivals {
            Arrivals::Poisson { rate } => Some(exponential(r, 1.0 / rate)),
            Arrivals::Gamma { rate, cv } => Some(gamma(r, 1.0 / (cv * cv), (cv * cv) / rate)),
            Arrivals::OnOff {
                rate,
                on_ns,
                off_ns,
            } => {
                let (on, off) = (*on_ns as f64 / 1e9, *off_ns as f64 / 1e9);
                let period = on + off;
                let mut t = self.t;
                loop {
                    t += exponential(r, 1.0 / rate);
                    let phase = t % period;
                    if phase < on {
                        return Some(t - self.t);
                    }
                    // Skip the rest of the off period; memorylessness makes restarting exact.
                    t += period - phase;
                    // Also ends on NaN (not comparable): a tiny rate makes the gap infinite.
                    if !matches!(
                        t.partial_cmp(&(self.end_ns as f64 / 1e9)),
                        Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
                    ) {
                        return None;
                    }
                }
            }
            Arrivals::Diurnal {
                mean_rate,
                amplitude,
                period_ns,
            } => {
                // Thinning (Lewis-Shedler) against the peak rate.
                let peak = mean_rate * (1.0 + amplitude);
                let period = *period_ns as f64 / 1e9;
                let mut t = self.t;
                loop {
                    t += exponential(r, 1.0 / peak);
                    let rate =
                        mean_rate * (1.0 + amplitude * (std::f64::consts::TAU * t / period).sin());
                    if unit_f64(r) * peak <= rate {
                        return Some(t - self.t);
                    }
                    if t > self.end_ns as f64 / 1e9 {
                        return None;
                    }
                }
            }
            Arrivals::Steps { steps } => {
                let mut t = self.t;
                loop {
                    let idx = steps
                        .iter()
                        .rposition(|s| (s.0 as f64 / 1e9) <= t)
                        .unwrap_or(0);
                    let rate = steps[idx].1;
                    let next_change = steps.get(idx + 1).map(|s| s.0 as f64 / 1e9);
                    if rate <= 0.0 {
                        t = next_change?;
                        continue;
                    }
                    let cand = t + exponential(r, 1.0 / rate);
                    match next_change {
                        Some(c) if cand >= c => t = c,
                        _ => return Some(cand - self.t),
                    }
                }
            }
        }
    }
}

/// A Gamma(shape k, scale theta) draw (Marsaglia-Tsang, with the boost for k < 1).
pub fn gamma(r: &mut Rng, k: f64, theta: f64) -> f64 {
    if k < 1.0 {
        let u = unit_f64(r).max(f64::MIN_POSITIVE);
        return gamma(r, k + 1.0, theta) * u.powf(1.0 / k);
    }
    let d = k - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = std_normal(r);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u = unit_f64(r);
        if u < 1.0 - 0.0331 * x.powi(4) || u.ln() < 0.5 * x * x + d * (1.0 - v + v.ln()) {
            return d * v * theta;
        }
    }
}

impl RequestSource for Synthetic {
    fn next_request(&mut self) -> Option<Result<Request, WorkloadError>> {
        if self.done || self.next_id >= self.limit {
            return None;
        }
        let Some(gap) = self.next_gap() else {
            self.done = true;
            return None;
        };
        self.t += gap;
        let arrival_ns = (self.t * 1e9) as Nanos;
        if arrival_ns >= self.end_ns {
            self.done = true;
            return None;
        }
        let second = arrival_ns / crate::spec::SECOND;
        if second == self.second.0 {
            self.second.1 += 1;
        } else {
            self.second = (second, 1);
        }
        if self.second.1 > self.per_second {
            self.done = true;
            return Some(Err(WorkloadError::new(
                "workload.arrivals",
                0,
                format!(
                    "more than {} requests arrive in simulated second {second}, above the \
                     limit of the simulator (the process's realised arrivals are far above its \
                     mean rate: lower a gamma `cv` or the rate)",
                    group_thousands(self.per_second)
                ),
            )));
        }
        let r = &mut self.rng;
        let model = pick_weighted(&self.models, r);
        let slo = pick_weighted(&self.slos, r);
        let prompt = sample_size(&self.prompt, r)
            .round()
            .clamp(1.0, self.max_prompt as f64) as u32;
        let output = sample_size(&self.output, r)
            .round()
            .clamp(1.0, self.max_output as f64) as u32;
        let payload = sample_size(&self.payload, r).round().clamp(1.0, 1e15) as u64;
        let id = self.next_id;
        self.next_id += 1;
        Some(Ok(Request {
            id,
            arrival_ns,
            model,
            prompt_tokens: prompt,
            output_tokens: output,
            input_bytes: payload,
            output_bytes: (output as f64 * self.out_bytes_per_token).round() as u64,
            slo,
        }))
    }
}
