//! One simulation: the workload source, the observers every run records, and the run itself.

use crate::error::{CliError, Result};
use crate::observers::{LatencyObserver, Timeline, TimelineObserver};
use perllm_core::report::Report;
use perllm_core::workload::{Reader, source_for};
use perllm_core::{CostModel, Observer, Policy, World};
use serde::{Deserialize, Serialize};

/// Largest number of points kept of a policy's regret series in result files.
pub const MAX_SERIES_POINTS: usize = 200;

/// What a run records beyond its [`Report`], for plots.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Details {
    /// Grid index of the run.
    pub run: u64,
    /// Latency (processing time D, seconds) at quantiles 0, 0.01, ..., 1 of completed requests.
    pub latency_quantiles_s: Vec<f64>,
    /// Assignments per server over time.
    pub timeline: Timeline,
    /// The policy's cumulative regret, `(time s, regret)`, at most 200 points; empty when the
    /// policy reports none.
    pub regret: Vec<(f64, f64)>,
}

/// A finished run.
pub struct RunOutput {
    /// The simulator's report.
    pub report: Report,
    /// Extra recorded data.
    pub details: Details,
}

/// Keep at most `max` points of a series, evenly spaced, always including the last one.
pub fn downsample(series: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    if series.len() <= max || max < 2 {
        return series.to_vec();
    }
    let n = series.len();
    (0..max).map(|i| series[i * (n - 1) / (max - 1)]).collect()
}

/// Open a trace file named in a scenario (the scenario loader already resolved it against the
/// scenario file's directory).
pub fn open_trace(path: &str) -> std::io::Result<Reader> {
    // Streamed: no size limit (the readers bound each line), but only a regular file.
    let f = perllm_dsl::files::open(std::path::Path::new(path), "trace file", u64::MAX)
        .map_err(|m| std::io::Error::new(std::io::ErrorKind::InvalidInput, m))?;
    Ok(Box::new(std::io::BufReader::with_capacity(1 << 16, f)))
}

/// Run `policy` on `world` (whose scenario carries the seed, and whose trace paths are resolved)
/// with `cost`; `extra` observers see every event too.
pub fn execute(
    world: &World,
    policy: &mut dyn Policy,
    cost: &dyn CostModel,
    extra: &mut [&mut dyn Observer],
) -> Result<RunOutput> {
    let open: &dyn Fn(&str) -> std::io::Result<Reader> = &open_trace;
    let mut source = source_for(world, open)
        .map_err(|e| CliError::input(format!("cannot read the workload: {e}")))?;
    let mut timeline = TimelineObserver::new(world);
    let mut latency = LatencyObserver::default();
    let report = {
        let mut obs: Vec<&mut dyn Observer> = vec![&mut timeline, &mut latency];
        for o in extra.iter_mut() {
            obs.push(&mut **o);
        }
        perllm_core::run(world, policy, cost, source.as_mut(), &mut obs).map_err(|e| {
            let message = format!(
                "the run of policy `{}` with seed {} failed: {e}",
                policy.name(),
                world.scenario.seed
            );
            match e {
                // The policy's own failure: in a study, that run only.
                perllm_core::SimError::Policy(_)
                | perllm_core::SimError::InvalidDecision { .. } => CliError::policy(message),
                _ => CliError::run(message),
            }
        })?
    };
    let regret = report
        .policy_stats
        .series
        .get("regret")
        .map(|s| downsample(s, MAX_SERIES_POINTS))
        .unwrap_or_default();
    Ok(RunOutput {
        details: Details {
            run: 0,
            latency_quantiles_s: latency.quantiles(),
            timeline: timeline.finish(world),
            regret,
        },
        report,
    })
}

/// The goodput bound of the run of `world` (same workload as [`execute`] reads) priced by `cost`.
pub fn bound(
    world: &World,
    cost: &dyn CostModel,
) -> std::result::Result<perllm_core::bound::Bound, perllm_core::bound::BoundError> {
    let open: &dyn Fn(&str) -> std::io::Result<Reader> = &open_trace;
    let mut source = source_for(world, open)
        .map_err(|e| perllm_core::bound::BoundError::Workload(e.to_string()))?;
    perllm_core::bound::compute_for(world, cost, source.as_mut())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsample_keeps_ends() {
        let s: Vec<(f64, f64)> = (0..1000).map(|i| (i as f64, i as f64)).collect();
        let d = downsample(&s, 200);
        assert_eq!(d.len(), 200);
        assert_eq!(d[0], (0.0, 0.0));
        assert_eq!(d[199], (999.0, 999.0));
        assert_eq!(downsample(&s[..10], 200).len(), 10);
    }
}
