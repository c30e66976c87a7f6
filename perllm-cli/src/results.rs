//! Result files of `run`, `compare` and `sweep` (and `merge`): a versioned JSON document with
//! one tidy row per (point, policy, seed), a summary per (point, policy), and per-run details
//! for plots. The schema is documented in docs/report-schema.md.

use crate::catalog::ComponentInfo;
use crate::error::{CliError, Result};
use crate::runner::Details;
use crate::util::Shard;
use perllm_core::report::Report;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// Name of the results schema.
pub const RESULTS_SCHEMA: &str = "perllm.results";
/// Version of the results schema; bumped on any incompatible change.
pub const RESULTS_SCHEMA_VERSION: u32 = 2;

macro_rules! metrics {
    ($( $(#[doc = $doc:literal])* $name:ident : $ty:ty = |$r:ident| $e:expr ;)*) => {
        /// The metrics of one run, flat (one column each in CSV and JSON rows).
        #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
        pub struct Metrics {
            $( $(#[doc = $doc])* pub $name: $ty, )*
        }
        impl Metrics {
            /// Column names, in order.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($name)),*];
            /// Values as CSV cells, in [`Metrics::NAMES`] order.
            pub fn cells(&self) -> Vec<String> {
                vec![$( Cell::cell(&self.$name) ),*]
            }
            /// The metrics of a report.
            pub fn from_report(report: &Report) -> Metrics {
                Metrics { $( $name: { let $r = report; $e }, )* }
            }
        }
    };
}

/// A metric value as a CSV cell: numbers as Rust prints them, `n/a` for a figure that does not
/// exist (no completed request), the text of a reason.
trait Cell {
    fn cell(&self) -> String;
}

impl Cell for u64 {
    fn cell(&self) -> String {
        self.to_string()
    }
}

impl Cell for f64 {
    fn cell(&self) -> String {
        self.to_string()
    }
}

impl Cell for Option<f64> {
    fn cell(&self) -> String {
        self.map_or_else(|| NA.to_string(), |v| v.to_string())
    }
}

impl Cell for Option<String> {
    fn cell(&self) -> String {
        self.clone().unwrap_or_default()
    }
}

/// How tables and CSV cells show a figure that does not exist.
pub const NA: &str = "n/a";

/// Why the per-completion figures of a run with no completed request are `null`.
pub use perllm_core::report::NO_COMPLETIONS;

/// A per-completion figure: `None` when nothing completed (its mean, percentile or per-request
/// share does not exist; 0 would make a policy that completes nothing look best).
fn per_completion(r: &Report, v: f64) -> Option<f64> {
    (r.completed > 0).then_some(v)
}

fn cloud_share(r: &Report) -> f64 {
    r.servers
        .iter()
        .filter(|s| s.tier == "cloud")
        .map(|s| s.share)
        .sum()
}

metrics! {
    /// Requests that arrived.
    arrived: u64 = |r| r.arrived;
    /// Requests completed.
    completed: u64 = |r| r.completed;
    /// Requests rejected.
    rejected: u64 = |r| r.rejected;
    /// Requests completed within their deadline.
    deadline_met: u64 = |r| r.deadline_met;
    /// Output tokens generated.
    output_tokens: u64 = |r| r.output_tokens;
    /// Arrivals per second of the arrival window (the load actually offered).
    offered_load_rps: f64 = |r| if r.duration_s > 0.0 { r.arrived as f64 / r.duration_s } else { 0.0 };
    /// Completions per second of the arrival window.
    throughput_rps: f64 = |r| r.throughput_rps;
    /// Deadline-met completions per second of the arrival window (offered load x attainment).
    goodput_rps: f64 = |r| r.goodput_rps;
    /// Deadline-met requests / arrived requests.
    deadline_attainment: f64 = |r| r.deadline_attainment;
    /// Mean processing time D of completed requests, seconds.
    latency_mean_s: Option<f64> = |r| per_completion(r, r.latency_s.mean);
    /// Median D, seconds.
    latency_p50_s: Option<f64> = |r| per_completion(r, r.latency_s.p50);
    /// 90th percentile of D, seconds.
    latency_p90_s: Option<f64> = |r| per_completion(r, r.latency_s.p90);
    /// 99th percentile of D, seconds.
    latency_p99_s: Option<f64> = |r| per_completion(r, r.latency_s.p99);
    /// Largest D, seconds.
    latency_max_s: Option<f64> = |r| per_completion(r, r.latency_s.max);
    /// Median time to first token, seconds.
    ttft_p50_s: Option<f64> = |r| per_completion(r, r.ttft_s.p50);
    /// 99th percentile of the time to first token, seconds.
    ttft_p99_s: Option<f64> = |r| per_completion(r, r.ttft_s.p99);
    /// Total energy, joules.
    energy_total_j: f64 = |r| r.energy.total_j;
    /// Transmission energy, joules.
    energy_transmission_j: f64 = |r| r.energy.transmission_j;
    /// Inference energy, joules.
    energy_inference_j: f64 = |r| r.energy.inference_j;
    /// Idle energy, joules.
    energy_idle_j: f64 = |r| r.energy.idle_j;
    /// The objective: energy weighted by the scenario's weights, joules.
    energy_weighted_j: f64 = |r| r.energy.weighted_j;
    /// Total energy per completed request, joules.
    energy_per_request_j: Option<f64> = |r| per_completion(r, r.energy.per_request_j);
    /// Transmission energy per completed request, joules.
    energy_per_request_transmission_j: Option<f64> = |r| per_completion(r, r.energy.per_request_transmission_j);
    /// Inference energy per completed request, joules.
    energy_per_request_inference_j: Option<f64> = |r| per_completion(r, r.energy.per_request_inference_j);
    /// Idle energy per completed request, joules.
    energy_per_request_idle_j: Option<f64> = |r| per_completion(r, r.energy.per_request_idle_j);
    /// Total energy per output token, joules.
    energy_per_output_token_j: Option<f64> = |r| per_completion(r, r.energy.per_output_token_j);
    /// Share of completed requests that ran on cloud servers.
    cloud_share: f64 = |r| cloud_share(r);
    /// Time of the last event, seconds.
    horizon_s: f64 = |r| r.horizon_s;
    /// Why the latency, first-token and per-request energy figures are `null` (`no request
    /// completed`); `null` when they are numbers.
    na_reason: Option<String> = |r| (r.completed == 0).then(|| NO_COMPLETIONS.to_string());
}

/// One run: a (point, policy, seed) of the grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Index in the grid (point-major, then policy, then seed).
    pub run: u64,
    /// Index of the sweep point (0 for `run` and `compare`).
    pub point: u64,
    /// Policy name.
    pub policy: String,
    /// Seed.
    pub seed: u64,
    /// Hash of the scenario of this point (after `--set` overrides).
    pub scenario_hash: String,
    /// Metrics.
    #[serde(flatten)]
    pub metrics: Metrics,
    /// Swept parameters of this point, one column each (empty for `run` and `compare`).
    #[serde(flatten)]
    pub params: BTreeMap<String, Value>,
}

/// Mean and spread of the key metrics of one (point, policy) over seeds, and ratios against the
/// reference policy at the same point.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    /// Sweep point.
    pub point: u64,
    /// Policy.
    pub policy: String,
    /// Number of seeds aggregated.
    pub seeds: u64,
    /// Mean offered load, requests/s.
    pub offered_load_rps: f64,
    /// Mean goodput, requests/s.
    pub goodput_rps_mean: f64,
    /// Sample standard deviation of goodput.
    pub goodput_rps_std: f64,
    /// Mean throughput, requests/s.
    pub throughput_rps_mean: f64,
    /// Mean deadline attainment.
    pub deadline_attainment_mean: f64,
    /// Sample standard deviation of deadline attainment.
    pub deadline_attainment_std: f64,
    /// Mean energy per completed request, joules.
    pub energy_per_request_j_mean: Option<f64>,
    /// Sample standard deviation of energy per completed request.
    pub energy_per_request_j_std: Option<f64>,
    /// Mean transmission energy per completed request, joules.
    pub energy_per_request_transmission_j_mean: Option<f64>,
    /// Mean inference energy per completed request, joules.
    pub energy_per_request_inference_j_mean: Option<f64>,
    /// Mean idle energy per completed request, joules.
    pub energy_per_request_idle_j_mean: Option<f64>,
    /// Mean weighted energy (the objective), joules.
    pub energy_weighted_j_mean: f64,
    /// Sample standard deviation of weighted energy.
    pub energy_weighted_j_std: f64,
    /// Mean p99 latency, seconds.
    pub latency_p99_s_mean: Option<f64>,
    /// Sample standard deviation of p99 latency.
    pub latency_p99_s_std: Option<f64>,
    /// Why the per-completion means above are `null`: some seed completed no request (a mean
    /// over the other seeds would hide it). `null` when they are numbers.
    #[serde(default)]
    pub na_reason: Option<String>,
    /// Goodput mean / the reference's goodput mean.
    pub goodput_ratio: Option<f64>,
    /// Attainment mean / the reference's.
    pub attainment_ratio: Option<f64>,
    /// Energy per request mean / the reference's.
    pub energy_per_request_ratio: Option<f64>,
    /// p99 latency mean / the reference's.
    pub latency_p99_ratio: Option<f64>,
    /// Weighted energy mean / `true-costs`' - 1 (when `true-costs`, formerly `oracle`, ran at
    /// this point).
    pub true_costs_energy_gap: Option<f64>,
    /// The goodput bound at this point (mean over the seeds), requests/s; `None` ("n/a") when it
    /// was not computed for every seed of the point.
    pub bound_goodput_rps: Option<f64>,
    /// Deadline-met requests (mean over seeds) / the bound's (mean over the same seeds) - 1:
    /// the goodput gap to the bound (same seeds, so the same arrival windows). Never positive.
    pub bound_gap: Option<f64>,
    /// The bound's lower bound on energy per served request (mean over seeds), joules.
    pub bound_energy_per_request_j: Option<f64>,
    /// Swept parameters of this point.
    #[serde(flatten)]
    pub params: BTreeMap<String, Value>,
}

impl SummaryRow {
    /// The swept parameters as `key=value, ...` (strings without their quotes).
    pub fn params_text(&self) -> String {
        let parts: Vec<String> = self
            .params
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    v.as_str().map_or_else(|| v.to_string(), String::from)
                )
            })
            .collect();
        parts.join(", ")
    }
}

/// The goodput bound of one (point, seed): what no policy can beat (docs/perllm-policy.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BoundRow {
    /// Sweep point.
    pub point: u64,
    /// Seed.
    pub seed: u64,
    /// The bound, `null` when it was not computed.
    pub bound: Option<perllm_core::bound::Bound>,
    /// Why it was not computed, `null` when it was.
    pub error: Option<String>,
}

/// The scenario a results file is about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenarioInfo {
    /// Scenario name.
    pub name: String,
    /// File name (without directories).
    pub file: String,
    /// Hash of the scenario as loaded, with the fixed `--set` overrides of `compare` and `run`
    /// but before the swept ones.
    pub hash: String,
    /// Fixed `--set` overrides `(key, value)` applied to every run.
    #[serde(default)]
    pub overrides: Vec<(String, String)>,
}

/// A swept parameter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Parameter {
    /// Dotted scenario path.
    pub key: String,
    /// Values, as given on the command line.
    pub values: Vec<String>,
}

/// A results document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// Always `perllm.results`.
    pub schema: String,
    /// [`RESULTS_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `run`, `compare` or `sweep`.
    pub kind: String,
    /// Version of perllm that produced it.
    pub perllm_version: String,
    /// The scenario.
    pub scenario: ScenarioInfo,
    /// The cost model.
    pub cost_model: ComponentInfo,
    /// The cost model's configuration (`--cost-config`, a JSON object; `{}` for none; `null`
    /// in files written before it was recorded).
    #[serde(default)]
    pub cost_config: serde_json::Value,
    /// Policies of the grid, in grid order.
    pub policies: Vec<ComponentInfo>,
    /// Seeds of the grid, in grid order.
    pub seeds: Vec<u64>,
    /// Swept parameters (cartesian product, first one outermost).
    pub parameters: Vec<Parameter>,
    /// Reference policy of the ratios.
    pub reference: Option<String>,
    /// Size of the whole grid.
    pub runs: u64,
    /// The shard this file holds, `null` for a complete grid.
    pub shard: Option<Shard>,
    /// One row per (point, policy).
    pub summary: Vec<SummaryRow>,
    /// One row per run, in grid order.
    pub rows: Vec<Row>,
    /// Per-run data for plots, aligned with `rows`.
    pub details: Vec<Details>,
    /// The goodput bound of each (point, seed) of the grid, in (point, seed) order.
    #[serde(default)]
    pub bounds: Vec<BoundRow>,
    /// Runs of the grid that failed (a plugin's error, crash or hang), in grid order; they have
    /// no row, and summaries are over the other runs. Absent when every run succeeded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<FailedRun>,
}

/// A run of the grid that failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailedRun {
    /// Index in the grid.
    pub run: u64,
    /// Sweep point.
    pub point: u64,
    /// Policy, as listed.
    pub policy: String,
    /// Seed.
    pub seed: u64,
    /// Why (names the plugin, library, entry point and call for a plugin failure).
    pub error: String,
}

fn mean_std(xs: &[f64]) -> (f64, f64) {
    if xs.is_empty() {
        return (0.0, 0.0);
    }
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    if xs.len() < 2 {
        return (m, 0.0);
    }
    let var = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0);
    (m, var.sqrt())
}

/// Mean and sample standard deviation of a per-completion figure: `None` when any value is.
fn mean_std_opt(xs: &[Option<f64>]) -> (Option<f64>, Option<f64>) {
    match xs.iter().copied().collect::<Option<Vec<f64>>>() {
        Some(v) => {
            let (m, sd) = mean_std(&v);
            (Some(m), Some(sd))
        }
        None => (None, None),
    }
}

fn ratio_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    ratio(a?, b?)
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b != 0.0 && a.is_finite() && b.is_finite()).then(|| a / b)
}

/// Mean bound goodput and energy per request at `point`, if the bound was computed for every
/// one of `seeds` there.
fn bound_at(bounds: &[BoundRow], point: u64, seeds: &[u64]) -> Option<(f64, f64, Option<f64>)> {
    let mut g = Vec::new();
    let mut met = Vec::new();
    let mut e = Vec::new();
    for s in seeds {
        let b = bounds
            .iter()
            .find(|b| b.point == point && b.seed == *s)?
            .bound
            .as_ref()?;
        g.push(b.goodput_rps);
        met.push(b.deadline_met_max as f64);
        e.push(b.energy_min_per_request_j);
    }
    if g.is_empty() {
        return None;
    }
    let n = g.len() as f64;
    let energy = e
        .iter()
        .copied()
        .collect::<Option<Vec<f64>>>()
        .map(|v| v.iter().sum::<f64>() / n);
    Some((
        g.iter().sum::<f64>() / n,
        met.iter().sum::<f64>() / n,
        energy,
    ))
}

/// The summary of `rows`: one row per (point, policy) in order of first appearance.
#[cfg(test)]
pub fn summarise(rows: &[Row], reference: Option<&str>) -> Vec<SummaryRow> {
    summarise_with_bounds(rows, reference, &[])
}

/// [`summarise`], with each policy's gap to the goodput bound.
pub fn summarise_with_bounds(
    rows: &[Row],
    reference: Option<&str>,
    bounds: &[BoundRow],
) -> Vec<SummaryRow> {
    let mut groups: Vec<((u64, String), Vec<&Row>)> = Vec::new();
    let mut index: BTreeMap<(u64, &str), usize> = BTreeMap::new();
    for r in rows {
        match index.get(&(r.point, r.policy.as_str())) {
            Some(&g) => groups[g].1.push(r),
            None => {
                index.insert((r.point, r.policy.as_str()), groups.len());
                groups.push(((r.point, r.policy.clone()), vec![r]));
            }
        }
    }
    let mut out: Vec<SummaryRow> = groups
        .iter()
        .map(|((point, policy), rs)| {
            let col =
                |f: fn(&Metrics) -> f64| rs.iter().map(|r| f(&r.metrics)).collect::<Vec<f64>>();
            let (gp, gps) = mean_std(&col(|m| m.goodput_rps));
            let (att, atts) = mean_std(&col(|m| m.deadline_attainment));
            let opt = |f: fn(&Metrics) -> Option<f64>| {
                rs.iter()
                    .map(|r| f(&r.metrics))
                    .collect::<Vec<Option<f64>>>()
            };
            let (epr, eprs) = mean_std_opt(&opt(|m| m.energy_per_request_j));
            let (ew, ews) = mean_std(&col(|m| m.energy_weighted_j));
            let (p99, p99s) = mean_std_opt(&opt(|m| m.latency_p99_s));
            let none = rs.iter().filter(|r| r.metrics.completed == 0).count();
            SummaryRow {
                point: *point,
                policy: policy.clone(),
                seeds: rs.len() as u64,
                offered_load_rps: mean_std(&col(|m| m.offered_load_rps)).0,
                goodput_rps_mean: gp,
                goodput_rps_std: gps,
                throughput_rps_mean: mean_std(&col(|m| m.throughput_rps)).0,
                deadline_attainment_mean: att,
                deadline_attainment_std: atts,
                energy_per_request_j_mean: epr,
                energy_per_request_j_std: eprs,
                energy_per_request_transmission_j_mean: mean_std_opt(&opt(|m| {
                    m.energy_per_request_transmission_j
                }))
                .0,
                energy_per_request_inference_j_mean: mean_std_opt(&opt(|m| {
                    m.energy_per_request_inference_j
                }))
                .0,
                energy_per_request_idle_j_mean: mean_std_opt(&opt(|m| m.energy_per_request_idle_j))
                    .0,
                energy_weighted_j_mean: ew,
                energy_weighted_j_std: ews,
                latency_p99_s_mean: p99,
                latency_p99_s_std: p99s,
                na_reason: (none > 0)
                    .then(|| format!("{NO_COMPLETIONS} in {none} of {} seed(s)", rs.len())),
                params: rs[0].params.clone(),
                ..SummaryRow::default()
            }
        })
        .collect();
    let snapshot = out.clone();
    let find = |point: u64, name: &str| index.get(&(point, name)).map(|&g| &snapshot[g]);
    for s in &mut out {
        if let Some(r) = reference.and_then(|name| find(s.point, name)) {
            s.goodput_ratio = ratio(s.goodput_rps_mean, r.goodput_rps_mean);
            s.attainment_ratio = ratio(s.deadline_attainment_mean, r.deadline_attainment_mean);
            s.energy_per_request_ratio =
                ratio_opt(s.energy_per_request_j_mean, r.energy_per_request_j_mean);
            s.latency_p99_ratio = ratio_opt(s.latency_p99_s_mean, r.latency_p99_s_mean);
        }
        if let Some(o) = find(s.point, "true-costs").or_else(|| find(s.point, "oracle")) {
            s.true_costs_energy_gap =
                ratio(s.energy_weighted_j_mean, o.energy_weighted_j_mean).map(|x| x - 1.0);
        }
        let seeds: Vec<u64> = rows
            .iter()
            .filter(|r| r.point == s.point && r.policy == s.policy)
            .map(|r| r.seed)
            .collect();
        if let Some((g, met_max, e)) = bound_at(bounds, s.point, &seeds) {
            let met = rows
                .iter()
                .filter(|r| r.point == s.point && r.policy == s.policy)
                .map(|r| r.metrics.deadline_met as f64)
                .sum::<f64>()
                / seeds.len().max(1) as f64;
            s.bound_goodput_rps = Some(g);
            s.bound_gap = ratio(met, met_max).map(|x| x - 1.0);
            s.bound_energy_per_request_j = e;
        }
    }
    out
}

impl Results {
    /// Recompute the summary from the rows.
    pub fn resummarise(&mut self) {
        self.summary = summarise_with_bounds(&self.rows, self.reference.as_deref(), &self.bounds);
    }

    /// The document as pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("results serialise");
        s.push('\n');
        s
    }

    /// The rows as tidy CSV: run, point, parameters, policy, seed, scenario_hash, metrics.
    pub fn rows_csv(&self) -> String {
        let keys: Vec<&str> = self.parameters.iter().map(|p| p.key.as_str()).collect();
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut header: Vec<&str> = vec!["run", "point"];
        header.extend(&keys);
        header.extend(["policy", "seed", "scenario_hash"]);
        header.extend(Metrics::NAMES);
        w.write_record(&header).expect("in-memory CSV");
        for r in &self.rows {
            let mut rec = vec![r.run.to_string(), r.point.to_string()];
            for k in &keys {
                rec.push(match r.params.get(*k) {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => String::new(),
                });
            }
            rec.extend([
                r.policy.clone(),
                r.seed.to_string(),
                r.scenario_hash.clone(),
            ]);
            rec.extend(r.metrics.cells());
            w.write_record(&rec).expect("in-memory CSV");
        }
        String::from_utf8(w.into_inner().expect("in-memory CSV")).expect("UTF-8 CSV")
    }

    /// Read a results file, checking its schema.
    pub fn read(path: &Path) -> Result<Results> {
        use perllm_dsl::files;
        let bytes =
            files::read(path, "results file", files::MAX_RESULTS_BYTES).map_err(CliError::input)?;
        let text = String::from_utf8(bytes).map_err(|_| {
            CliError::input(format!(
                "`{}` is not a perllm results file (it is not UTF-8 text)",
                path.display()
            ))
        })?;
        Results::from_text(&text, &path.display().to_string())
    }

    /// Parse the text of a results file named `name` (for messages), checking its schema.
    pub fn from_text(text: &str, name: &str) -> Result<Results> {
        let v: Value = serde_json::from_str(text).map_err(|e| {
            CliError::input(format!(
                "`{}` is not a perllm results file (it is not JSON: {e})",
                name
            ))
        })?;
        match v.get("schema").and_then(Value::as_str) {
            Some(RESULTS_SCHEMA) => {}
            _ => {
                return Err(CliError::input(format!(
                    "`{}` is not a perllm results file (its \"schema\" is not \"{RESULTS_SCHEMA}\"; \
                     results come from `perllm compare --out`, `perllm sweep --out` or `perllm run --out`)",
                    name
                )));
            }
        }
        let ver = v.get("schema_version").and_then(Value::as_u64);
        if ver != Some(RESULTS_SCHEMA_VERSION as u64) {
            return Err(CliError::input(format!(
                "`{}` has results schema version {}, this perllm reads version {RESULTS_SCHEMA_VERSION}",
                name,
                ver.map_or("(none)".to_string(), |v| v.to_string())
            )));
        }
        let r: Results = serde_json::from_value(v)
            .map_err(|e| CliError::input(format!("`{}` is not a valid results file: {e}", name)))?;
        if r.rows.len() != r.details.len() {
            return Err(CliError::input(format!(
                "`{}` is not a valid results file: {} rows but {} details",
                name,
                r.rows.len(),
                r.details.len()
            )));
        }
        Ok(r)
    }
}

/// A parameter value as a JSON value: a number if it reads as one, else a string.
pub fn param_value(raw: &str) -> Value {
    match serde_json::from_str::<Value>(raw) {
        Ok(v @ Value::Number(_)) => v,
        Ok(v @ Value::Bool(_)) => v,
        _ => Value::String(raw.to_string()),
    }
}

/// The `--cost-config` string as the JSON value result files record: `{}` when empty, the
/// parsed object otherwise (it was validated before running), the text if it does not parse.
pub fn cost_config_value(raw: &str) -> serde_json::Value {
    if raw.trim().is_empty() {
        return serde_json::Value::Object(Default::default());
    }
    serde_json::from_str(raw).unwrap_or_else(|_| serde_json::Value::String(raw.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(point: u64, policy: &str, seed: u64, goodput: f64, energy: f64) -> Row {
        Row {
            run: 0,
            point,
            policy: policy.into(),
            seed,
            scenario_hash: "sha256:x".into(),
            metrics: Metrics {
                goodput_rps: goodput,
                energy_weighted_j: energy,
                energy_per_request_j: Some(energy / 10.0),
                ..Metrics::default()
            },
            params: [("workload.arrivals.rate".to_string(), param_value("4"))].into(),
        }
    }

    #[test]
    fn summary_means_spreads_ratios_and_true_costs_gap() {
        let rows = vec![
            row(0, "a", 1, 1.0, 100.0),
            row(0, "a", 2, 3.0, 100.0),
            row(0, "oracle", 1, 4.0, 80.0),
            row(0, "oracle", 2, 4.0, 80.0),
        ];
        let s = summarise(&rows, Some("oracle"));
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].policy, "a");
        assert_eq!(s[0].seeds, 2);
        assert_eq!(s[0].goodput_rps_mean, 2.0);
        assert!((s[0].goodput_rps_std - 2f64.sqrt()).abs() < 1e-12);
        assert_eq!(s[0].goodput_ratio, Some(0.5));
        assert!((s[0].true_costs_energy_gap.unwrap() - 0.25).abs() < 1e-12);
        assert_eq!(s[1].true_costs_energy_gap, Some(0.0));
        assert_eq!(s[0].bound_gap, None, "no bound: n/a");
    }

    #[test]
    fn rows_roundtrip_through_json_with_params() {
        let mut r = row(3, "p", 9, 1.0 / 3.0, 0.1 + 0.2);
        r.params.insert("slot".into(), param_value("50ms"));
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains("\"workload.arrivals.rate\":4"), "{text}");
        assert!(text.contains("\"slot\":\"50ms\""), "{text}");
        let back: Row = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
    }
}
