//! PerLLM against each baseline, paired over seeds (issue 15, item 3's goal): at every swept
//! load, the mean over the common seeds of `PerLLM's attainment - the baseline's` (the same seed
//! gives both policies the same arrivals, sizes and link draws, so the pairing removes the
//! workload's variance), with its 95% confidence interval (Student's t with n - 1 degrees of
//! freedom); PerLLM's energy per request over cloud-only's where cloud-only meets the threshold;
//! and PerLLM's goodput gap to the bound.

use crate::{BoundPoint, CLOUD_ONLY, Experiment, PERLLM, Role, role};
use serde::Serialize;

/// The goal of issue 15, item 3: the mean paired difference at least -1 point.
pub const GOAL_POINTS: f64 = -1.0;
/// The energy goal: at most 1.05x cloud-only's energy per request where cloud-only meets the
/// threshold.
pub const GOAL_ENERGY: f64 = 1.05;

/// Two-sided 95% quantiles of Student's t distribution for 1..=30 degrees of freedom (standard
/// table values, e.g. NIST/SEMATECH e-Handbook of Statistical Methods, table 1.4.7.2).
const T95: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// The 95% two-sided t quantile for `df` degrees of freedom (1.96 above 30).
pub fn t95(df: usize) -> f64 {
    match df {
        0 => f64::NAN,
        1..=30 => T95[df - 1],
        _ => 1.96,
    }
}

/// A mean with its 95% confidence interval half-width (`None` with fewer than 2 pairs).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MeanCi {
    /// Mean of the paired differences, attainment points.
    pub mean: f64,
    /// Half-width of the 95% confidence interval, points.
    pub half_width: Option<f64>,
    /// Number of pairs (seeds both policies ran).
    pub n: usize,
}

/// The mean and 95% CI of `xs`.
pub fn mean_ci(xs: &[f64]) -> MeanCi {
    let n = xs.len();
    let mean = xs.iter().sum::<f64>() / n.max(1) as f64;
    let half_width = (n >= 2).then(|| {
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        t95(n - 1) * (var / n as f64).sqrt()
    });
    MeanCi {
        mean,
        half_width,
        n,
    }
}

/// One swept load.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PairedLoad {
    /// The swept load.
    pub load: f64,
    /// Per baseline (in the file's order): PerLLM minus it, attainment points, paired over seeds.
    pub diffs: Vec<(String, MeanCi)>,
    /// The smallest mean difference and its baseline.
    pub worst: Option<(String, MeanCi)>,
    /// Cloud-only's mean attainment here (if it ran).
    pub cloud_only_attainment: Option<f64>,
    /// PerLLM's mean energy per request / cloud-only's, where cloud-only meets the threshold.
    pub energy_vs_cloud_only: Option<f64>,
    /// PerLLM's goodput / the bound's - 1.
    pub bound_gap: Option<f64>,
}

/// One experiment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Paired {
    /// Experiment name.
    pub name: String,
    /// Baselines compared, in the file's order.
    pub baselines: Vec<String>,
    /// One row per swept load.
    pub loads: Vec<PairedLoad>,
    /// Attainment threshold of the energy comparison.
    pub threshold: f64,
}

impl Paired {
    /// Loads where every baseline's mean difference is at least [`GOAL_POINTS`], and all loads.
    pub fn attainment_goal(&self) -> (usize, usize) {
        let met = self
            .loads
            .iter()
            .filter(|l| l.worst.as_ref().is_none_or(|w| w.1.mean >= GOAL_POINTS))
            .count();
        (met, self.loads.len())
    }

    /// Loads where cloud-only meets the threshold and PerLLM's energy is within [`GOAL_ENERGY`],
    /// and all loads where cloud-only meets the threshold.
    pub fn energy_goal(&self) -> (usize, usize) {
        let ls: Vec<f64> = self
            .loads
            .iter()
            .filter_map(|l| l.energy_vs_cloud_only)
            .collect();
        (ls.iter().filter(|&&x| x <= GOAL_ENERGY).count(), ls.len())
    }
}

/// PerLLM's gap to the bound at `load`.
fn bound_gap(bounds: &[BoundPoint], load: f64, perllm_goodput: Option<f64>) -> Option<f64> {
    let b = bounds.iter().find(|b| b.load == load)?.goodput_rps?;
    let g = perllm_goodput?;
    (b > 0.0).then(|| g / b - 1.0)
}

/// The paired comparison of one experiment (empty loads when PerLLM did not run).
pub fn paired(exp: &Experiment, threshold: f64) -> Paired {
    let baselines: Vec<String> = exp
        .curves
        .iter()
        .filter(|c| role(&c.policy) == Role::Baseline)
        .map(|c| c.policy.clone())
        .collect();
    let mut out = Paired {
        name: exp.name.clone(),
        baselines: baselines.clone(),
        loads: Vec::new(),
        threshold,
    };
    let Some(ours) = exp.curve(PERLLM) else {
        return out;
    };
    for p in &ours.points {
        let at = |policy: &str| {
            exp.curve(policy)
                .and_then(|c| c.points.iter().find(|q| q.load == p.load))
        };
        let mut diffs = Vec::new();
        for b in &baselines {
            let Some(q) = at(b) else { continue };
            let xs: Vec<f64> = p
                .per_seed
                .iter()
                .filter_map(|(seed, ours)| {
                    q.per_seed
                        .get(seed)
                        .map(|theirs| 100.0 * (ours.0 - theirs.0))
                })
                .collect();
            if !xs.is_empty() {
                diffs.push((b.clone(), mean_ci(&xs)));
            }
        }
        let worst = diffs
            .iter()
            .min_by(|a, b| a.1.mean.total_cmp(&b.1.mean))
            .cloned();
        let cloud = at(CLOUD_ONLY);
        let energy_vs_cloud_only = cloud
            .filter(|c| c.attainment >= threshold && c.energy_per_request_j > 0.0)
            .map(|c| p.energy_per_request_j / c.energy_per_request_j);
        out.loads.push(PairedLoad {
            load: p.load,
            diffs,
            worst,
            cloud_only_attainment: cloud.map(|c| c.attainment),
            energy_vs_cloud_only,
            bound_gap: bound_gap(&exp.bounds, p.load, Some(p.goodput_rps)),
        });
    }
    out
}

fn ci(m: &MeanCi) -> String {
    match m.half_width {
        Some(h) => format!("{:+.1} ± {:.1}", m.mean, h),
        None => format!("{:+.1}", m.mean),
    }
}

/// The summary of every experiment against the goal (Markdown, with its footer).
pub fn summary_markdown(all: &[Paired]) -> String {
    let mut s = String::from(
        "## PerLLM against every baseline, paired over seeds (issue 15's goal)\n\n\
         | experiment | loads where PerLLM - every baseline >= -1 pt | worst difference (pt, 95% CI) | loads where energy <= 1.05x cloud-only's | largest energy ratio | PerLLM vs bound (goodput), range |\n\
         |---|---|---|---|---|---|\n",
    );
    for p in all {
        let (met, n) = p.attainment_goal();
        let worst = p
            .loads
            .iter()
            .filter_map(|l| l.worst.as_ref().map(|w| (l.load, w)))
            .min_by(|a, b| a.1.1.mean.total_cmp(&b.1.1.mean))
            .map_or("—".into(), |(load, (b, m))| {
                format!("{} vs `{b}` at {load:.2} req/s", ci(m))
            });
        let (emet, en) = p.energy_goal();
        let emax = p
            .loads
            .iter()
            .filter_map(|l| l.energy_vs_cloud_only.map(|e| (e, l.load)))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map_or("—".into(), |(e, l)| format!("{e:.3}x at {l:.2} req/s"));
        let gaps: Vec<f64> = p.loads.iter().filter_map(|l| l.bound_gap).collect();
        let gap = if gaps.is_empty() {
            "n/a".into()
        } else {
            let lo = gaps.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = gaps.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            format!("{:+.1}% to {:+.1}%", hi * 100.0, lo * 100.0)
        };
        s.push_str(&format!(
            "| {} | {met} of {n} | {worst} | {emet} of {en} | {emax} | {gap} |\n",
            p.name
        ));
    }
    s.push_str(
        "\nPaired difference: for each seed, PerLLM's deadline attainment minus the baseline's on the \
         same arrivals (same seed), in percentage points; mean over the seeds both ran, ± the \
         half-width of its 95% confidence interval (Student's t). The goal is a mean of at least \
         -1 point against every baseline (with and without admission control, where the baselines \
         offer it) at every swept load. Energy: PerLLM's mean energy per completed request over \
         cloud-only's, counted only at loads where cloud-only meets 90% of deadlines (goal: at most \
         1.05x). PerLLM vs bound: its goodput over the goodput bound's, minus 1, from the lightest \
         to the heaviest gap over the loads (the bound is an upper bound no policy can reach \
         exactly; see docs/perllm-policy.md). Per-load detail in each experiment's section.\n",
    );
    s
}

/// One experiment's per-load detail (Markdown, with its footer).
pub fn markdown(p: &Paired) -> String {
    if p.loads.is_empty() {
        return "\nPerLLM did not run in this experiment: no paired comparison.\n".into();
    }
    let mut s = String::from(
        "\nPerLLM minus each baseline, deadline attainment in points, paired over seeds (mean ± 95% CI half-width):\n\n| load (req/s) |",
    );
    for b in &p.baselines {
        s.push_str(&format!(" {b} |"));
    }
    s.push_str(" worst | goal (>= -1 pt) | cloud-only attainment | PerLLM energy / cloud-only's | PerLLM vs bound (goodput) |\n|---|");
    for _ in &p.baselines {
        s.push_str("---|");
    }
    s.push_str("---|---|---|---|---|\n");
    for l in &p.loads {
        s.push_str(&format!("| {:.2} |", l.load));
        for b in &p.baselines {
            let cell = l
                .diffs
                .iter()
                .find(|d| &d.0 == b)
                .map_or("—".into(), |d| ci(&d.1));
            s.push_str(&format!(" {cell} |"));
        }
        let (worst, goal) = match &l.worst {
            Some((b, m)) => (
                format!("{} (`{b}`)", ci(m)),
                if m.mean >= GOAL_POINTS {
                    "met"
                } else {
                    "**not met**"
                },
            ),
            None => ("—".into(), "—"),
        };
        s.push_str(&format!(
            " {worst} | {goal} | {} | {} | {} |\n",
            l.cloud_only_attainment
                .map_or("—".into(), |a| format!("{:.1}%", a * 100.0)),
            l.energy_vs_cloud_only.map_or(
                format!("— (cloud-only < {:.0}%)", p.threshold * 100.0),
                |e| format!("{e:.3}x")
            ),
            l.bound_gap
                .map_or("n/a".into(), |g| format!("{:+.1}%", g * 100.0)),
        ));
    }
    s.push_str(&format!(
        "\nEach cell: PerLLM's attainment minus that baseline's on the same seeds, mean ± 95% CI \
         half-width (n = seeds; Student's t), in points; positive = PerLLM met more deadlines. \
         `worst` is the baseline with the smallest mean difference; the goal is at least {GOAL_POINTS:.0} \
         point. Energy per completed request over cloud-only's only where cloud-only meets {:.0}% \
         of deadlines (goal <= {GOAL_ENERGY}x). PerLLM vs bound: PerLLM's goodput over the \
         goodput bound's, minus 1 (n/a: bound not computed).\n",
        p.threshold * 100.0
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidence_intervals_use_students_t() {
        let m = mean_ci(&[1.0, 2.0, 3.0]);
        assert_eq!((m.mean, m.n), (2.0, 3));
        // sd 1, n 3: t(2) x 1 / sqrt(3).
        assert!((m.half_width.unwrap() - 4.303 / 3f64.sqrt()).abs() < 1e-12);
        assert_eq!(mean_ci(&[5.0]).half_width, None);
        assert_eq!(t95(10), 2.228);
        assert_eq!(t95(100), 1.96);
    }
}
