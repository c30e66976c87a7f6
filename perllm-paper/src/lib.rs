//! The PerLLM paper experiment's analysis: reads the results files of `perllm sweep` (one per
//! deployment and workload, every policy over several seeds at several offered loads) and builds
//! the paper's table:
//!
//! - the highest offered load each policy sustains at the attainment threshold (90% of deadlines
//!   met), `L90`;
//! - the reference load `L*`, the largest `L90` among the baselines, and each policy's goodput and
//!   energy per request (transmission / inference / idle) there, with the ratios PerLLM / policy
//!   and policy / cloud-only;
//! - each policy's peak goodput over the sweep;
//! - PerLLM's gap to `true-costs` (its LP fed the true mean costs; formerly `oracle`), and every
//!   policy's gap to the goodput bound no policy can beat;
//! - the paper's three claims, checked against these numbers.
//!
//! The definitions are in `docs/paper-setup.md` ("Metrics and the table"); `scripts/reproduce-paper.sh`
//! produces the inputs. Nothing here runs a simulation: the table is a pure function of the files.

mod bound;
pub mod paired;
pub use bound::{BoundPoint, OfflinePoint, read_offline};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The paper's policy name in results files.
pub const PERLLM: &str = "perllm";
/// The name in results files of the reference policy that knows the true mean costs.
pub const TRUE_COSTS: &str = "true-costs";
/// Its old name, in files made before it was renamed.
pub const ORACLE: &str = "oracle";
/// The cloud-only baseline's name (the reference of the energy claim).
pub const CLOUD_ONLY: &str = "cloud-only";
/// The `perllm.results` schema version this crate reads (docs/report-schema.md).
pub const RESULTS_SCHEMA_VERSION: u64 = 2;

/// What went wrong reading a results file.
#[derive(Debug, thiserror::Error)]
pub enum PaperError {
    /// Not JSON, or not a perllm results document.
    #[error("{name}: {message}")]
    Input {
        /// The experiment (or file) name.
        name: String,
        /// What is wrong.
        message: String,
    },
}

fn input(name: &str, message: impl Into<String>) -> PaperError {
    PaperError::Input {
        name: name.to_string(),
        message: message.into(),
    }
}

/// One (load, policy) point of a sweep: means over seeds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Point {
    /// The swept load value (requests/s as given to `--set`), or the measured offered load.
    pub load: f64,
    /// Measured arrivals per second of the arrival window.
    pub offered_rps: f64,
    /// Seeds averaged.
    pub seeds: u64,
    /// Mean goodput: deadline-met requests per second of the arrival window (offered load x
    /// attainment, as the results rows' `goodput_rps`).
    pub goodput_rps: f64,
    /// Sample standard deviation of goodput over seeds.
    pub goodput_std: f64,
    /// Mean deadline attainment (rejections count as misses).
    pub attainment: f64,
    /// Sample standard deviation of attainment over seeds.
    pub attainment_std: f64,
    /// Mean energy per completed request, joules.
    pub energy_per_request_j: f64,
    /// Its transmission part.
    pub energy_transmission_j: f64,
    /// Its inference part.
    pub energy_inference_j: f64,
    /// Its idle part.
    pub energy_idle_j: f64,
    /// Mean weighted energy of the run (the objective), joules.
    pub energy_weighted_j: f64,
    /// Per seed: (attainment, energy per request), for the paired comparison (not in table.json).
    #[serde(skip)]
    pub per_seed: BTreeMap<u64, (f64, f64)>,
}

/// One policy's load curve.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Curve {
    /// Policy name.
    pub policy: String,
    /// Points in increasing load.
    pub points: Vec<Point>,
}

/// One results file: a deployment under one workload, every policy at every load.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Experiment {
    /// Display name (`7B synthetic`, `33B Azure trace`, ...).
    pub name: String,
    /// Scenario name recorded in the file.
    pub scenario: String,
    /// The swept key (`workload.arrivals.rate`), or `offered load` for a `compare` file.
    pub load_key: String,
    /// Curves, in the file's policy order.
    pub curves: Vec<Curve>,
    /// The goodput bound at each swept load.
    pub bounds: Vec<BoundPoint>,
    /// The offline `clairvoyant` reference (knows the arrivals; no online policy can run it) at
    /// the loads it was run at (`perllm-paper table --offline`); empty if not given.
    pub offline: Vec<OfflinePoint>,
}

#[derive(Deserialize)]
struct RowIn {
    policy: String,
    offered_load_rps: f64,
    deadline_attainment: f64,
    energy_per_request_j: f64,
    energy_per_request_transmission_j: f64,
    energy_per_request_inference_j: f64,
    energy_per_request_idle_j: f64,
    energy_weighted_j: f64,
    #[serde(flatten)]
    rest: BTreeMap<String, Value>,
}

/// Mean and sample standard deviation.
fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    if xs.is_empty() {
        return (0.0, 0.0);
    }
    let m = xs.iter().sum::<f64>() / n;
    if xs.len() < 2 {
        return (m, 0.0);
    }
    let var = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0);
    (m, var.sqrt())
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().trim_end_matches("/s").trim().parse().ok(),
        _ => None,
    }
}

impl Experiment {
    /// Read a `perllm sweep` (or `compare`) results document. `name` labels the experiment.
    pub fn from_results(name: &str, text: &str) -> Result<Experiment, PaperError> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| input(name, format!("not valid JSON: {e}")))?;
        if v.get("schema").and_then(Value::as_str) != Some("perllm.results") {
            return Err(input(
                name,
                "not a perllm results file (its \"schema\" is not \"perllm.results\")",
            ));
        }
        let version = v.get("schema_version").and_then(Value::as_u64);
        if version != Some(RESULTS_SCHEMA_VERSION) {
            return Err(input(
                name,
                format!(
                    "results schema version {}, this table builder reads version \
                     {RESULTS_SCHEMA_VERSION} (re-run the sweep with this revision's perllm)",
                    version.map_or_else(|| "missing".to_string(), |v| v.to_string())
                ),
            ));
        }
        let scenario = v
            .pointer("/scenario/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        // The load is the one swept parameter with several values; parameters given a single
        // value (such as a shorter `scenario.duration`) are fixed settings.
        let params: Vec<(String, usize)> = v
            .get("parameters")
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .map(|p| {
                        let key = p.get("key").and_then(Value::as_str).unwrap_or("");
                        let n = p
                            .get("values")
                            .and_then(Value::as_array)
                            .map_or(0, Vec::len);
                        (key.to_string(), n)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let swept: Vec<&(String, usize)> = params.iter().filter(|p| p.1 > 1).collect();
        if swept.len() > 1 {
            return Err(input(
                name,
                format!(
                    "the sweep varies {} parameters ({}); the table needs a load sweep over one",
                    swept.len(),
                    swept
                        .iter()
                        .map(|p| p.0.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let load_key = match (swept.first(), params.len()) {
            (Some(p), _) => Some(p.0.clone()),
            (None, 1) => Some(params[0].0.clone()),
            _ => None,
        };
        let rows = v
            .get("rows")
            .cloned()
            .ok_or_else(|| input(name, "no \"rows\" in the results file"))?;
        let rows: Vec<RowIn> = serde_json::from_value(rows)
            .map_err(|e| input(name, format!("malformed \"rows\": {e}")))?;
        if rows.is_empty() {
            return Err(input(name, "the results file has no runs"));
        }
        // Group the runs by (policy, load), in order of first appearance.
        let mut groups: Vec<(String, f64, Vec<RowIn>)> = Vec::new();
        let mut load_of_point: BTreeMap<u64, f64> = BTreeMap::new();
        for r in rows {
            let load = match &load_key {
                Some(k) => r.rest.get(k).and_then(number).ok_or_else(|| {
                    input(
                        name,
                        format!("a run of `{}` has no numeric `{k}`", r.policy),
                    )
                })?,
                None => r.offered_load_rps,
            };
            if let Some(p) = r.rest.get("point").and_then(Value::as_u64) {
                load_of_point.entry(p).or_insert(load);
            }
            match groups
                .iter_mut()
                .find(|g| g.0 == r.policy && (load_key.is_none() || g.1 == load))
            {
                Some(g) => g.2.push(r),
                None => groups.push((r.policy.clone(), load, vec![r])),
            }
        }
        let mut curves: Vec<Curve> = Vec::new();
        for (policy, load, runs) in groups {
            let col = |f: fn(&RowIn) -> f64| runs.iter().map(f).collect::<Vec<f64>>();
            let offered = mean_std(&col(|r| r.offered_load_rps)).0;
            let load = if load_key.is_some() { load } else { offered };
            // Deadline-met requests per second of the arrival window.
            let (goodput, goodput_std) =
                mean_std(&col(|r| r.offered_load_rps * r.deadline_attainment));
            let (att, att_std) = mean_std(&col(|r| r.deadline_attainment));
            let p = Point {
                load,
                offered_rps: offered,
                seeds: runs.len() as u64,
                goodput_rps: goodput,
                goodput_std,
                attainment: att,
                attainment_std: att_std,
                energy_per_request_j: mean_std(&col(|r| r.energy_per_request_j)).0,
                energy_transmission_j: mean_std(&col(|r| r.energy_per_request_transmission_j)).0,
                energy_inference_j: mean_std(&col(|r| r.energy_per_request_inference_j)).0,
                energy_idle_j: mean_std(&col(|r| r.energy_per_request_idle_j)).0,
                energy_weighted_j: mean_std(&col(|r| r.energy_weighted_j)).0,
                per_seed: runs
                    .iter()
                    .filter_map(|r| {
                        let seed = r.rest.get("seed").and_then(Value::as_u64)?;
                        Some((seed, (r.deadline_attainment, r.energy_per_request_j)))
                    })
                    .collect(),
            };
            match curves.iter_mut().find(|c| c.policy == policy) {
                Some(c) => c.points.push(p),
                None => curves.push(Curve {
                    policy,
                    points: vec![p],
                }),
            }
        }
        for c in &mut curves {
            c.points.sort_by(|a, b| a.load.total_cmp(&b.load));
            if c.points.windows(2).any(|w| w[0].load == w[1].load) {
                return Err(input(
                    name,
                    format!("policy `{}` has two points at the same load", c.policy),
                ));
            }
        }
        let loads = |c: &Curve| c.points.iter().map(|p| p.load).collect::<Vec<_>>();
        let first = loads(&curves[0]);
        if let Some(c) = curves.iter().find(|c| loads(c) != first) {
            return Err(input(
                name,
                format!(
                    "policy `{}` was run at other loads than `{}`",
                    c.policy, curves[0].policy
                ),
            ));
        }
        if load_key.is_none() {
            // A `compare` file: one point, at the measured offered load.
            let offered = curves[0].points[0].load;
            for l in load_of_point.values_mut() {
                *l = offered;
            }
        }
        Ok(Experiment {
            bounds: bound::read(&v, &load_of_point),
            name: name.to_string(),
            scenario,
            load_key: load_key.unwrap_or_else(|| "offered load".into()),
            curves,
            offline: Vec::new(),
        })
    }

    /// The swept loads, increasing.
    pub fn loads(&self) -> Vec<f64> {
        self.curves
            .first()
            .map(|c| c.points.iter().map(|p| p.load).collect())
            .unwrap_or_default()
    }

    /// The curve of `policy`.
    pub fn curve(&self, policy: &str) -> Option<&Curve> {
        self.curves.iter().find(|c| c.policy == policy)
    }
}

/// The role of a policy in the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// PerLLM itself.
    Perllm,
    /// `true-costs` (formerly `oracle`): PerLLM's LP fed the true mean costs; a reference that
    /// reads the simulator's ground truth, not a baseline and not a bound.
    TrueCosts,
    /// A comparison baseline.
    Baseline,
    /// PerLLM with other parameters (e.g. `perllm{variant=paper}`, the paper's algorithm):
    /// shown, not a baseline.
    Variant,
}

/// The role of the policy named `name`.
pub fn role(name: &str) -> Role {
    match name {
        PERLLM => Role::Perllm,
        TRUE_COSTS | ORACLE => Role::TrueCosts,
        n if n.starts_with("perllm{") => Role::Variant,
        _ => Role::Baseline,
    }
}

/// The highest swept load at which `curve`'s mean attainment is at least `threshold`, at that
/// load and at every lower swept load; `None` if the lowest load already misses it.
pub fn sustained_load(curve: &Curve, threshold: f64) -> Option<f64> {
    curve
        .points
        .iter()
        .take_while(|p| p.attainment >= threshold)
        .last()
        .map(|p| p.load)
}

/// One policy's row of the table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PolicyRow {
    /// Policy name.
    pub policy: String,
    /// PerLLM, oracle or baseline.
    pub role: Role,
    /// Highest load sustained at the threshold (`L90`).
    pub sustained_load: Option<f64>,
    /// The policy's point at the reference load.
    pub at_reference: Point,
    /// PerLLM's goodput / this policy's goodput at the reference load.
    pub perllm_goodput_ratio: Option<f64>,
    /// Highest mean goodput over the sweep.
    pub peak_goodput_rps: f64,
    /// The load where the peak is reached.
    pub peak_load: f64,
    /// PerLLM's peak goodput / this policy's peak goodput.
    pub perllm_peak_ratio: Option<f64>,
    /// This policy's energy per request / cloud-only's, at the reference load.
    pub energy_vs_cloud_only: Option<f64>,
    /// This policy's goodput / the bound's - 1 at the reference load (n/a: `None`).
    pub bound_gap: Option<f64>,
}

/// The analysis of one experiment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Analysis {
    /// Experiment name.
    pub name: String,
    /// Scenario name.
    pub scenario: String,
    /// The swept key.
    pub load_key: String,
    /// Swept loads.
    pub loads: Vec<f64>,
    /// Attainment threshold (0.9).
    pub threshold: f64,
    /// The reference load `L*`: the largest `L90` among the baselines, or the lowest swept load
    /// when no baseline reaches the threshold (`fallback`).
    pub reference_load: f64,
    /// The baseline whose `L90` is `L*` (the best baseline), if any reached the threshold.
    pub best_baseline: Option<String>,
    /// True when no baseline reached the threshold at any load.
    pub fallback: bool,
    /// One row per policy, in the file's order.
    pub rows: Vec<PolicyRow>,
    /// PerLLM's goodput / `true-costs`' - 1 at `L*` (when both ran).
    pub true_costs_goodput_gap: Option<f64>,
    /// PerLLM's weighted energy / `true-costs`' - 1 at `L*` (when both ran).
    pub true_costs_energy_gap: Option<f64>,
    /// The goodput bound at `L*`.
    pub bound: Option<BoundPoint>,
    /// At every swept load: PerLLM's attainment, the best baseline's, `true-costs`' and the
    /// bound's.
    pub by_load: Vec<LoadRow>,
}

/// Attainment at one swept load: PerLLM against the best baseline at that load.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoadRow {
    /// The swept load.
    pub load: f64,
    /// PerLLM's mean attainment (if it ran).
    pub perllm: Option<f64>,
    /// The baseline with the highest mean attainment at this load, and that attainment.
    pub best_baseline: Option<(String, f64)>,
    /// `true-costs`' mean attainment (if it ran).
    pub true_costs: Option<f64>,
    /// The bound on attainment (n/a: `None`).
    pub bound: Option<f64>,
    /// PerLLM's goodput / the bound's - 1 (n/a: `None`).
    pub perllm_bound_gap: Option<f64>,
    /// The policy (any: PerLLM, its variant, `true-costs` or a baseline) with the highest mean
    /// goodput at this load, and that goodput (req/s).
    pub best_goodput: Option<(String, f64)>,
    /// The goodput bound at this load (n/a: `None`).
    pub bound_goodput: Option<f64>,
    /// The best goodput / the bound's - 1 (n/a: `None`): how tight the bound is here.
    pub best_bound_gap: Option<f64>,
    /// The offline `clairvoyant` reference's mean goodput here (`None`: not run at this load).
    pub clairvoyant_goodput: Option<f64>,
    /// Its goodput / the bound's - 1.
    pub clairvoyant_bound_gap: Option<f64>,
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0 && a.is_finite() && b.is_finite()).then(|| a / b)
}

impl Analysis {
    /// The row of `policy`.
    pub fn row(&self, policy: &str) -> Option<&PolicyRow> {
        self.rows.iter().find(|r| r.policy == policy)
    }

    /// Baseline rows.
    pub fn baselines(&self) -> impl Iterator<Item = &PolicyRow> {
        self.rows.iter().filter(|r| r.role == Role::Baseline)
    }

    /// The baseline with the highest attainment at `L*` (ties: the first), and that attainment.
    pub fn best_baseline_attainment(&self) -> Option<(&str, f64)> {
        self.baselines()
            .map(|r| (r.policy.as_str(), r.at_reference.attainment))
            .fold(None, |best: Option<(&str, f64)>, x| match best {
                Some(b) if b.1 >= x.1 => Some(b),
                _ => Some(x),
            })
    }
}

/// Analyse one experiment at attainment `threshold`.
pub fn analyse(exp: &Experiment, threshold: f64) -> Analysis {
    let loads = exp.loads();
    let mut best: Option<(f64, &str)> = None;
    for c in exp
        .curves
        .iter()
        .filter(|c| role(&c.policy) == Role::Baseline)
    {
        if let Some(l) = sustained_load(c, threshold)
            && best.is_none_or(|b| l > b.0)
        {
            best = Some((l, &c.policy));
        }
    }
    let fallback = best.is_none();
    let reference_load = best.map_or(loads[0], |b| b.0);
    let at = |c: &Curve| -> Point {
        c.points
            .iter()
            .find(|p| p.load == reference_load)
            .cloned()
            .expect("every curve has every swept load (checked when reading)")
    };
    let peak = |c: &Curve| -> (f64, f64) {
        c.points.iter().fold((0.0, loads[0]), |acc, p| {
            if p.goodput_rps > acc.0 {
                (p.goodput_rps, p.load)
            } else {
                acc
            }
        })
    };
    let perllm = exp.curve(PERLLM);
    let cloud = exp.curve(CLOUD_ONLY);
    let true_costs = exp.curve(TRUE_COSTS).or_else(|| exp.curve(ORACLE));
    let bound_at = |load: f64| exp.bounds.iter().find(|b| b.load == load);
    let bound_ref = bound_at(reference_load).and_then(|b| b.goodput_rps);
    let rows = exp
        .curves
        .iter()
        .map(|c| {
            let here = at(c);
            let (pk, pk_load) = peak(c);
            PolicyRow {
                policy: c.policy.clone(),
                role: role(&c.policy),
                sustained_load: sustained_load(c, threshold),
                perllm_goodput_ratio: perllm
                    .and_then(|p| ratio(at(p).goodput_rps, here.goodput_rps)),
                peak_goodput_rps: pk,
                peak_load: pk_load,
                perllm_peak_ratio: perllm.and_then(|p| ratio(peak(p).0, pk)),
                energy_vs_cloud_only: cloud
                    .and_then(|cl| ratio(here.energy_per_request_j, at(cl).energy_per_request_j)),
                bound_gap: bound_ref
                    .and_then(|b| ratio(here.goodput_rps, b))
                    .map(|x| x - 1.0),
                at_reference: here,
            }
        })
        .collect();
    let (og, oe) = match (perllm, true_costs) {
        (Some(p), Some(o)) => {
            let (p, o) = (at(p), at(o));
            (
                ratio(p.goodput_rps, o.goodput_rps).map(|x| x - 1.0),
                ratio(p.energy_weighted_j, o.energy_weighted_j).map(|x| x - 1.0),
            )
        }
        _ => (None, None),
    };
    let by_load = loads
        .iter()
        .enumerate()
        .map(|(i, &load)| {
            let att = |c: &Curve| c.points[i].attainment;
            let best_goodput = exp
                .curves
                .iter()
                .map(|c| (c.policy.clone(), c.points[i].goodput_rps))
                .fold(None, |b: Option<(String, f64)>, x| match b {
                    Some(b) if b.1 >= x.1 => Some(b),
                    _ => Some(x),
                });
            let bound_goodput = bound_at(load).and_then(|b| b.goodput_rps);
            let clairvoyant_goodput = bound::offline_at(&exp.offline, load);
            LoadRow {
                clairvoyant_bound_gap: match (clairvoyant_goodput, bound_goodput) {
                    (Some(g), Some(b)) => ratio(g, b).map(|x| x - 1.0),
                    _ => None,
                },
                clairvoyant_goodput,
                best_bound_gap: match (&best_goodput, bound_goodput) {
                    (Some((_, g)), Some(b)) => ratio(*g, b).map(|x| x - 1.0),
                    _ => None,
                },
                best_goodput,
                bound_goodput,
                load,
                perllm: perllm.map(att),
                best_baseline: exp
                    .curves
                    .iter()
                    .filter(|c| role(&c.policy) == Role::Baseline)
                    .map(|c| (c.policy.clone(), att(c)))
                    .fold(None, |b: Option<(String, f64)>, x| match b {
                        Some(b) if b.1 >= x.1 => Some(b),
                        _ => Some(x),
                    }),
                true_costs: true_costs.map(att),
                bound: bound_at(load).and_then(|b| b.attainment),
                perllm_bound_gap: match (perllm, bound_at(load).and_then(|b| b.goodput_rps)) {
                    (Some(p), Some(b)) => ratio(p.points[i].goodput_rps, b).map(|x| x - 1.0),
                    _ => None,
                },
            }
        })
        .collect();
    Analysis {
        by_load,
        name: exp.name.clone(),
        scenario: exp.scenario.clone(),
        load_key: exp.load_key.clone(),
        loads,
        threshold,
        reference_load,
        best_baseline: best.map(|b| b.1.to_string()),
        fallback,
        rows,
        true_costs_goodput_gap: og,
        true_costs_energy_gap: oe,
        bound: bound_at(reference_load).cloned(),
    }
}

/// One of the paper's claims checked against the results.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Claim {
    /// What the paper claims.
    pub claim: String,
    /// The goal as a number (1.6, 2.2, 0.5).
    pub goal: f64,
    /// The best value found over the experiments, and where.
    pub best: Option<(f64, String)>,
    /// Whether some experiment meets the goal.
    pub met: bool,
}

/// The paper's three claims against `analyses`: PerLLM's goodput at least 1.6x every baseline's
/// in some experiment and at least 2.2x the weakest's, and energy per request at most half of
/// cloud-only's. Goodput claims are checked at the reference load and at peak goodput.
pub fn claims(analyses: &[Analysis]) -> Vec<Claim> {
    let mut out = Vec::new();
    type Pick = fn(&PolicyRow) -> Option<f64>;
    let at_ref: Pick = |r| r.perllm_goodput_ratio;
    let at_peak: Pick = |r| r.perllm_peak_ratio;
    for (label, pick) in [
        ("at the reference load L*", at_ref),
        ("at peak goodput", at_peak),
    ] {
        // Against every baseline: the smallest ratio over baselines, best over experiments.
        let every = analyses
            .iter()
            .filter_map(|a| {
                let rs: Vec<f64> = a
                    .baselines()
                    .map(|r| pick(r).unwrap_or(f64::INFINITY))
                    .collect();
                (!rs.is_empty()).then(|| {
                    (
                        rs.iter().cloned().fold(f64::INFINITY, f64::min),
                        a.name.clone(),
                    )
                })
            })
            .max_by(|x, y| x.0.total_cmp(&y.0));
        out.push(Claim {
            claim: format!("PerLLM goodput >= 1.6x every baseline's, {label}, in one experiment"),
            goal: 1.6,
            met: every.as_ref().is_some_and(|b| b.0 >= 1.6),
            best: every,
        });
        let weakest = analyses
            .iter()
            .filter_map(|a| {
                a.baselines()
                    .filter_map(pick)
                    .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
                    .map(|x| (x, a.name.clone()))
            })
            .max_by(|x, y| x.0.total_cmp(&y.0));
        out.push(Claim {
            claim: format!("PerLLM goodput >= 2.2x the weakest baseline's, {label}"),
            goal: 2.2,
            met: weakest.as_ref().is_some_and(|b| b.0 >= 2.2),
            best: weakest,
        });
    }
    let energy = analyses
        .iter()
        .filter_map(|a| {
            a.row(PERLLM)
                .and_then(|r| r.energy_vs_cloud_only)
                .map(|x| (x, a.name.clone()))
        })
        .min_by(|x, y| x.0.total_cmp(&y.0));
    out.push(Claim {
        claim: "PerLLM energy per request <= 0.5x cloud-only's, at the reference load".into(),
        goal: 0.5,
        met: energy.as_ref().is_some_and(|b| b.0 <= 0.5),
        best: energy,
    });
    out
}

/// The whole table: every experiment's analysis and the claims.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Table {
    /// Attainment threshold.
    pub threshold: f64,
    /// One analysis per experiment.
    pub experiments: Vec<Analysis>,
    /// The paper's claims.
    pub claims: Vec<Claim>,
    /// PerLLM against every baseline, paired over seeds, per experiment.
    pub paired: Vec<paired::Paired>,
}

/// Analyse every experiment and check the claims.
pub fn table(experiments: &[Experiment], threshold: f64) -> Table {
    let paired = experiments
        .iter()
        .map(|e| paired::paired(e, threshold))
        .collect();
    let experiments: Vec<Analysis> = experiments.iter().map(|e| analyse(e, threshold)).collect();
    Table {
        paired,
        threshold,
        claims: claims(&experiments),
        experiments,
    }
}

fn f(x: f64, digits: usize) -> String {
    format!("{x:.digits$}")
}

fn opt(x: Option<f64>, digits: usize, suffix: &str) -> String {
    x.map_or("—".into(), |x| format!("{}{suffix}", f(x, digits)))
}

impl Table {
    /// The table as Markdown (the body of `docs/results/table.md`).
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let pct = |x: f64| format!("{:.0}%", x * 100.0);
        s.push_str(
            "## The paper's claims\n\n| claim | goal | best found | met |\n|---|---|---|---|\n",
        );
        for c in &self.claims {
            let best = c
                .best
                .as_ref()
                .map_or("—".into(), |(v, w)| format!("{} ({w})", f(*v, 2)));
            s.push_str(&format!(
                "| {} | {} | {best} | {} |\n",
                c.claim,
                c.goal,
                if c.met { "yes" } else { "no" }
            ));
        }
        s.push('\n');
        s.push_str(&paired::summary_markdown(&self.paired));
        s.push_str(&bound::tightness_markdown(&self.experiments));
        for (i, a) in self.experiments.iter().enumerate() {
            s.push_str(&format!("\n## {}\n\n", a.name));
            s.push_str(&format!(
                "Scenario `{}`; swept `{}` over {}.\n",
                a.scenario,
                a.load_key,
                a.loads
                    .iter()
                    .map(|l| f(*l, 2))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            if a.fallback {
                s.push_str(&format!(
                    "No baseline meets {} of deadlines at any swept load; the columns \"at L*\" are at the lowest swept load, {} req/s.\n",
                    pct(a.threshold),
                    f(a.reference_load, 2)
                ));
            } else {
                s.push_str(&format!(
                    "Reference load L* = {} req/s, the highest load at which the best baseline (`{}`) still meets {} of deadlines.\n",
                    f(a.reference_load, 2),
                    a.best_baseline.as_deref().unwrap_or("?"),
                    pct(a.threshold)
                ));
            }
            s.push_str(&format!(
                "PerLLM vs `true-costs` (its LP fed the true mean costs) at L*: goodput {}, weighted energy {}.\n",
                opt(a.true_costs_goodput_gap.map(|x| x * 100.0), 1, "%"),
                opt(a.true_costs_energy_gap.map(|x| x * 100.0), 1, "%"),
            ));
            s.push_str(&match a.bound.as_ref().and_then(|b| b.goodput_rps.map(|g| (b, g))) {
                Some((b, g)) => format!(
                    "Goodput bound at L* (no policy can beat it): {} req/s, attainment {}; energy at least {} J per request it serves.\n\n",
                    f(g, 2),
                    b.attainment.map_or("n/a".into(), pct),
                    b.energy_per_request_j.map_or("n/a".into(), |e| f(e, 0)),
                ),
                None => format!(
                    "Goodput bound at L*: n/a ({}).\n\n",
                    a.bound
                        .as_ref()
                        .and_then(|b| b.why_not.clone())
                        .unwrap_or_else(|| "not computed".into())
                ),
            });
            s.push_str("| policy | L90 (req/s) | attainment at L* | goodput at L* (req/s) | vs bound | PerLLM / it | peak goodput (at load) | PerLLM / it (peak) | energy/req at L* (J) | tx / inference / idle (J) | vs cloud-only |\n");
            s.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
            for r in &a.rows {
                let p = &r.at_reference;
                let name = match r.role {
                    Role::Perllm => format!("**{}**", r.policy),
                    Role::TrueCosts => format!("{} (true mean costs)", r.policy),
                    Role::Baseline => r.policy.clone(),
                    Role::Variant => format!("{} (PerLLM variant)", r.policy),
                };
                s.push_str(&format!(
                    "| {name} | {} | {} ± {} | {} ± {} | {} | {} | {} ({}) | {} | {} | {} / {} / {} | {} |\n",
                    r.sustained_load.map_or("< lowest".into(), |l| f(l, 2)),
                    pct(p.attainment),
                    pct(p.attainment_std),
                    f(p.goodput_rps, 2),
                    f(p.goodput_std, 2),
                    r.bound_gap.map_or("n/a".into(), |g| format!("{:+.1}%", g * 100.0)),
                    opt(r.perllm_goodput_ratio, 2, "x"),
                    f(r.peak_goodput_rps, 2),
                    f(r.peak_load, 2),
                    opt(r.perllm_peak_ratio, 2, "x"),
                    f(p.energy_per_request_j, 0),
                    f(p.energy_transmission_j, 1),
                    f(p.energy_inference_j, 0),
                    f(p.energy_idle_j, 0),
                    opt(r.energy_vs_cloud_only, 2, "x"),
                ));
            }
            s.push_str("\nDeadline attainment by offered load (mean over seeds); the bound is on attainment, and PerLLM's goodput gap to it; then the highest goodput any policy reached at that load and its gap to the goodput bound:\n\n| load (req/s) | PerLLM | best baseline | PerLLM - best | true-costs | bound | PerLLM vs bound (goodput) | best goodput (policy) | best vs bound |\n|---|---|---|---|---|---|---|---|---|\n");
            for l in &a.by_load {
                let best = l
                    .best_baseline
                    .as_ref()
                    .map_or("—".into(), |(p, v)| format!("{} ({p})", pct(*v)));
                let diff = match (l.perllm, &l.best_baseline) {
                    (Some(p), Some((_, b))) => format!("{:+.1} pt", (p - b) * 100.0),
                    _ => "—".into(),
                };
                s.push_str(&format!(
                    "| {} | {} | {best} | {diff} | {} | {} | {} | {} | {} |\n",
                    f(l.load, 2),
                    l.perllm.map_or("—".into(), pct),
                    l.true_costs.map_or("—".into(), pct),
                    l.bound.map_or("n/a".into(), pct),
                    l.perllm_bound_gap
                        .map_or("n/a".into(), |g| format!("{:+.1}%", g * 100.0)),
                    l.best_goodput
                        .as_ref()
                        .map_or("—".into(), |(p, g)| format!("{} (`{p}`)", f(*g, 3))),
                    l.best_bound_gap
                        .map_or("n/a".into(), |g| format!("{:+.1}%", g * 100.0)),
                ));
            }
            if let Some(p) = self.paired.get(i) {
                s.push_str(&paired::markdown(p));
            }
        }
        s
    }

    /// The table as CSV: one row per (experiment, policy).
    pub fn csv(&self) -> String {
        let mut s = String::from(
            "experiment,scenario,reference_load,fallback,policy,role,sustained_load,attainment_at_ref,attainment_std,goodput_at_ref,goodput_std,perllm_goodput_ratio,peak_goodput,peak_load,perllm_peak_ratio,energy_per_request_j,energy_transmission_j,energy_inference_j,energy_idle_j,energy_vs_cloud_only,bound_gap\n",
        );
        let o = |x: Option<f64>| x.map_or(String::new(), |x| format!("{x:.6}"));
        for a in &self.experiments {
            for r in &a.rows {
                let p = &r.at_reference;
                s.push_str(&format!(
                    "{},{},{},{},{},{},{},{:.6},{:.6},{:.6},{:.6},{},{:.6},{},{},{:.3},{:.3},{:.3},{:.3},{},{}\n",
                    a.name,
                    a.scenario,
                    a.reference_load,
                    a.fallback,
                    r.policy,
                    match r.role {
                        Role::Perllm => "perllm",
                        Role::TrueCosts => "true_costs",
                        Role::Baseline => "baseline",
                        Role::Variant => "variant",
                    },
                    o(r.sustained_load),
                    p.attainment,
                    p.attainment_std,
                    p.goodput_rps,
                    p.goodput_std,
                    o(r.perllm_goodput_ratio),
                    r.peak_goodput_rps,
                    r.peak_load,
                    o(r.perllm_peak_ratio),
                    p.energy_per_request_j,
                    p.energy_transmission_j,
                    p.energy_inference_j,
                    p.energy_idle_j,
                    o(r.energy_vs_cloud_only),
                    o(r.bound_gap),
                ));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests;
