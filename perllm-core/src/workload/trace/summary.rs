//! Whole-trace statistics and empirical size distributions read from a trace.

use super::parser::Parser;
use super::pass::{Pass, PassStats};
use super::row::Names;
use super::{Reader, WorkloadError};
use crate::rng::{stream, stream_rng, unit_f64};
use crate::spec::{Nanos, SizeDist, TraceFormat};

/// Statistics of a whole trace file (no window, no assignment).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceSummary {
    /// Rows (requests) and their token totals; offsets are relative to the first row.
    pub pass: PassStats,
    /// Malformed rows skipped (only with `skip_bad_rows`).
    pub malformed: u64,
    /// Failed-request rows skipped (BurstGPT).
    pub failed: u64,
}

/// Read a whole trace once and summarise it (row count, span, token totals).
pub fn summarize(
    format: TraceFormat,
    name: &str,
    reader: Reader,
    skip_bad_rows: bool,
) -> Result<TraceSummary, WorkloadError> {
    let parser = Parser::new(format, name, reader, Names::none())?;
    let mut pass = Pass::new(parser, (0, Nanos::MAX), skip_bad_rows);
    let mut st = PassStats::default();
    while let Some((off, r)) = pass.next()? {
        st.add(off, &r);
    }
    Ok(TraceSummary {
        pass: st,
        malformed: pass.malformed,
        failed: pass.failed,
    })
}

/// Empirical prompt and output size distributions from a trace: a uniform random sample (reservoir
/// sampling, so memory is bounded by `max_values`) of its rows' token counts, drawn with `seed`.
/// Feed the results to `workload.prompt_tokens` / `output_tokens` to resample a trace's sizes.
pub fn empirical_sizes(
    format: TraceFormat,
    name: &str,
    reader: Reader,
    max_values: usize,
    seed: u64,
) -> Result<(SizeDist, SizeDist), WorkloadError> {
    if max_values == 0 {
        return Err(WorkloadError::new(
            name,
            0,
            "max_values must be positive".into(),
        ));
    }
    let parser = Parser::new(format, name, reader, Names::none())?;
    let mut pass = Pass::new(parser, (0, Nanos::MAX), false);
    let mut rng = stream_rng(seed, stream::WORKLOAD);
    let (mut p, mut o) = (Vec::new(), Vec::new());
    let mut seen = 0u64;
    while let Some((_, r)) = pass.next()? {
        seen += 1;
        if p.len() < max_values {
            p.push(r.prompt as f64);
            o.push(r.output as f64);
        } else {
            let j = (unit_f64(&mut rng) * seen as f64) as u64;
            if (j as usize) < max_values {
                p[j as usize] = r.prompt as f64;
                o[j as usize] = r.output as f64;
            }
        }
    }
    if p.is_empty() {
        return Err(WorkloadError::new(name, 0, "the trace has no rows".into()));
    }
    Ok((
        SizeDist::Empirical { values: p },
        SizeDist::Empirical { values: o },
    ))
}
