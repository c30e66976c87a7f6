//! The goodput bound in the table: per swept load, the mean over seeds of the bound `perllm
//! sweep` computed for each (point, seed) (docs/perllm-policy.md, "The goodput bound").

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The bound at one swept load (means over the seeds).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BoundPoint {
    /// The swept load.
    pub load: f64,
    /// Seeds it was computed for.
    pub seeds: u64,
    /// Upper bound on goodput (deadline-met requests per second of the arrival window); `None`
    /// ("n/a") when it was not computed for every seed.
    pub goodput_rps: Option<f64>,
    /// Upper bound on deadline attainment.
    pub attainment: Option<f64>,
    /// Lower bound on the energy per request the bound serves, joules.
    pub energy_per_request_j: Option<f64>,
    /// Why it is n/a, when it is.
    pub why_not: Option<String>,
}

/// The bounds of a results document, one per swept load in `load_of_point` (point index ->
/// load), in increasing load. A file without bounds (older perllm) gives n/a everywhere.
pub(crate) fn read(v: &Value, load_of_point: &BTreeMap<u64, f64>) -> Vec<BoundPoint> {
    let empty = Vec::new();
    let bounds = v.get("bounds").and_then(Value::as_array).unwrap_or(&empty);
    let mut out: Vec<BoundPoint> = Vec::new();
    for (&point, &load) in load_of_point {
        let here: Vec<&Value> = bounds
            .iter()
            .filter(|b| b.get("point").and_then(Value::as_u64) == Some(point))
            .collect();
        let mut bp = BoundPoint {
            load,
            seeds: here.len() as u64,
            ..BoundPoint::default()
        };
        let f = |b: &Value, k: &str| b.pointer(&format!("/bound/{k}")).and_then(Value::as_f64);
        let goodput: Option<Vec<f64>> = here.iter().map(|b| f(b, "goodput_rps")).collect();
        match goodput {
            Some(g) if !g.is_empty() => {
                let n = g.len() as f64;
                bp.goodput_rps = Some(g.iter().sum::<f64>() / n);
                bp.attainment = here
                    .iter()
                    .map(|b| f(b, "attainment"))
                    .sum::<Option<f64>>()
                    .map(|x| x / n);
                bp.energy_per_request_j = here
                    .iter()
                    .map(|b| f(b, "energy_min_per_request_j"))
                    .sum::<Option<f64>>()
                    .map(|x| x / n);
            }
            _ => {
                bp.why_not = Some(
                    here.iter()
                        .find_map(|b| b.get("error").and_then(Value::as_str))
                        .unwrap_or("not in the results file (made by an older perllm)")
                        .to_string(),
                );
            }
        }
        out.push(bp);
    }
    out.sort_by(|a, b| a.load.total_cmp(&b.load));
    out
}

/// The offline `clairvoyant` reference at one load: mean over its seeds (`perllm-paper table
/// --offline`, from the `CLAIRVOYANT_JSON` file of `perllm-cli`'s `clairvoyant` example).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OfflinePoint {
    /// The load (the swept key's value).
    pub load: f64,
    /// Seeds it was run for.
    pub seeds: u64,
    /// Mean goodput (deadline-met requests per second of the arrival window).
    pub goodput_rps: f64,
    /// Mean of the bound it computed for the same runs (req/s), a cross-check of the sweep's.
    pub bound_goodput_rps: f64,
}

/// Reads an offline reference file (`"schema": "perllm.offline"`).
pub fn read_offline(text: &str) -> Result<Vec<OfflinePoint>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    if v.get("schema").and_then(Value::as_str) != Some("perllm.offline") {
        return Err(
            "not an offline reference file (its \"schema\" is not \"perllm.offline\")".into(),
        );
    }
    let empty = Vec::new();
    let mut out = Vec::new();
    for (i, p) in v
        .get("points")
        .and_then(Value::as_array)
        .unwrap_or(&empty)
        .iter()
        .enumerate()
    {
        let load = p
            .get("value")
            .and_then(Value::as_str)
            .and_then(|s| s.trim().trim_end_matches("/s").trim().parse::<f64>().ok())
            .ok_or_else(|| format!("points[{i}]: no numeric \"value\" (the load)"))?;
        let seeds = p.get("seeds").and_then(Value::as_array).unwrap_or(&empty);
        let mean = |k: &str| -> Result<f64, String> {
            let xs: Option<Vec<f64>> = seeds
                .iter()
                .map(|s| s.get(k).and_then(Value::as_f64))
                .collect();
            match xs {
                Some(xs) if !xs.is_empty() => Ok(xs.iter().sum::<f64>() / xs.len() as f64),
                _ => Err(format!("points[{i}]: seeds without \"{k}\"")),
            }
        };
        out.push(OfflinePoint {
            load,
            seeds: seeds.len() as u64,
            goodput_rps: mean("goodput_rps")?,
            bound_goodput_rps: mean("bound_goodput_rps")?,
        });
    }
    Ok(out)
}

/// The offline reference's goodput at `load`, if it was run there.
pub(crate) fn offline_at(points: &[OfflinePoint], load: f64) -> Option<f64> {
    points
        .iter()
        .find(|p| (p.load - load).abs() <= 1e-9 * load.abs().max(1.0))
        .map(|p| p.goodput_rps)
}

/// How many of the lightest swept loads the tightness table shows per experiment.
pub const LIGHT_LOADS: usize = 2;
/// The goal: at light load, the best goodput within this fraction of the bound.
pub const GOAL_TIGHTNESS: f64 = 0.02;

/// The bound's tightness at light load (issue 15, point 2's goal): per experiment, at its
/// [`LIGHT_LOADS`] lightest swept loads, the highest goodput any policy reached (which policy),
/// the bound, and their gap; "n/a" where the bound was not computed.
pub(crate) fn tightness_markdown(analyses: &[crate::Analysis]) -> String {
    let mut s = String::from(
        "\n## The bound against the best policy at light load (issue 15's tightness goal)\n\n\
         | experiment | load (req/s) | best goodput (req/s), online policy | bound (req/s) | best vs bound | within 2% | `clairvoyant` (offline reference) (req/s) | `clairvoyant` vs bound |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for a in analyses {
        for l in a.by_load.iter().take(LIGHT_LOADS) {
            let (best, who) = l
                .best_goodput
                .as_ref()
                .map_or(("—".to_string(), String::new()), |(p, g)| {
                    (format!("{g:.3}"), format!(", `{p}`"))
                });
            s.push_str(&format!(
                "| {} | {:.2} | {best}{who} | {} | {} | {} | {} | {} |\n",
                a.name,
                l.load,
                l.bound_goodput.map_or("n/a".into(), |b| format!("{b:.3}")),
                l.best_bound_gap
                    .map_or("n/a".into(), |g| format!("{:+.1}%", g * 100.0)),
                match l.best_bound_gap {
                    None => "n/a",
                    Some(g) if g >= -GOAL_TIGHTNESS => "yes",
                    Some(_) => "no",
                },
                l.clairvoyant_goodput
                    .map_or("—".into(), |g| format!("{g:.3}")),
                l.clairvoyant_bound_gap
                    .map_or("—".into(), |g| format!("{:+.1}%", g * 100.0)),
            ));
        }
    }
    s.push_str(
        "\nBest goodput: the highest mean goodput (over seeds) of any policy in the sweep at that load \
         (PerLLM, its paper variant, `true-costs` or a baseline; on a tie, the first in the sweep's policy order). The goal is the best within 2% of \
         the bound at light load (here: the lightest swept load; the second lightest for context). \
         The bound allows everything a schedule that knows the arrivals in advance could do; \
         `clairvoyant` is such a schedule: an offline reference that reads the whole arrival \
         sequence before the run (`perllm_core::clairvoyant`), so no online policy can run it and \
         it is not among the policies above; it shows how much of the gap is the price of not \
         knowing the future (\"—\": not run at that load). docs/perllm-policy.md (\"The goodput \
         bound\") discusses what the rest of the gap is.\n",
    );
    s
}
