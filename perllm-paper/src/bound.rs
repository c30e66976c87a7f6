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
         | experiment | load (req/s) | best goodput (req/s), policy | bound (req/s) | best vs bound | within 2% |\n\
         |---|---|---|---|---|---|\n",
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
                "| {} | {:.2} | {best}{who} | {} | {} | {} |\n",
                a.name,
                l.load,
                l.bound_goodput.map_or("n/a".into(), |b| format!("{b:.3}")),
                l.best_bound_gap
                    .map_or("n/a".into(), |g| format!("{:+.1}%", g * 100.0)),
                match l.best_bound_gap {
                    None => "n/a",
                    Some(g) if g >= -GOAL_TIGHTNESS => "yes",
                    Some(_) => "no",
                }
            ));
        }
    }
    s.push_str(
        "\nBest goodput: the highest mean goodput (over seeds) of any policy in the sweep at that load \
         (PerLLM, its paper variant, `true-costs` or a baseline; on a tie, the first in the sweep's policy order). The goal is the best within 2% of \
         the bound at light load (here: the lightest swept load; the second lightest for context). \
         The bound allows everything a schedule that knows the arrivals in advance could do; \
         docs/perllm-policy.md (\"The goodput bound\") measures how far such an offline schedule \
         gets and what the rest of the gap is.\n",
    );
    s
}
