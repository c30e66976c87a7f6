//! Workloads: trace formats (incl. malformed rows), replay options, the shipped Azure slice,
//! bandwidth series, and the statistics of the synthetic generators. Helpers here; one file per
//! topic.

mod bandwidth;
mod formats;
mod fuzz;
mod replay;
mod shipped;
mod synthetic;

use perllm_core::Request;
use perllm_core::spec::*;
use perllm_core::workload::trace::{
    self, REORDER_TOLERANCE_NS, Reader, TraceSource, parse_datetime_ns,
};
use perllm_core::workload::{
    RequestSource, Synthetic, WorkloadError, bandwidth_series_from_csv, read_bandwidth_csv,
    source_for,
};
use perllm_core::{World, testbed};
use std::cell::Cell;
use std::io::Cursor;

// ------------------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------------------

fn reader(s: &str) -> Reader {
    Box::new(Cursor::new(s.as_bytes().to_vec()))
}

fn spec(format: TraceFormat) -> TraceSpec {
    testbed::trace("fixture", format)
}

/// The paper testbed with a long duration (so replays are not cut) and `trace` as the workload.
fn world(trace: Option<TraceSpec>) -> World {
    world_with(trace, |_| {})
}

fn world_with(trace: Option<TraceSpec>, f: impl FnOnce(&mut Scenario)) -> World {
    let mut s = testbed::paper(5.0, 3_600 * SECOND);
    s.workload.trace = trace;
    f(&mut s);
    s.build().expect("valid scenario")
}

fn drain(src: &mut dyn RequestSource) -> Result<Vec<Request>, WorkloadError> {
    let mut out = Vec::new();
    while let Some(r) = src.next_request() {
        out.push(r?);
    }
    Ok(out)
}

/// Replay `text` once (single reader).
fn replay(sp: &TraceSpec, text: &str) -> Result<Vec<Request>, WorkloadError> {
    let w = world(Some(sp.clone()));
    let mut src = TraceSource::new(sp, "fixture.txt", reader(text), &w)?;
    drain(&mut src)
}

/// Replay with an opener (needed for target_rate and repeat); returns the requests and skipped count.
fn replay_opener(
    w: &World,
    sp: &TraceSpec,
    text: &str,
) -> Result<(Vec<Request>, u64), WorkloadError> {
    let text = text.to_string();
    let mut src = TraceSource::with_opener(sp, "fixture.txt", move || Ok(reader(&text)), w)?;
    let v = drain(&mut src)?;
    Ok((v, src.skipped()))
}

fn err_of(r: Result<Vec<Request>, WorkloadError>) -> WorkloadError {
    match r {
        Ok(v) => panic!("expected an error, got {} requests", v.len()),
        Err(e) => e,
    }
}

/// The error opening `text` (named `name`) under `sp` with the default world: a header or
/// spec error.
fn open_err(sp: &TraceSpec, name: &str, text: &str) -> WorkloadError {
    TraceSource::new(sp, name, reader(text), &world(None))
        .err()
        .expect("opening fails")
}

/// Replays `text` under `sp`, expecting an error at `row` (`None`: any row) whose message
/// contains `needle`.
fn replay_err(sp: &TraceSpec, text: &str, row: Option<u64>, needle: &str) {
    let e = err_of(replay(sp, text));
    assert!(
        e.message.contains(needle) && row.is_none_or(|r| r == e.row),
        "expected `{needle}` at row {row:?}, got: {e}"
    );
}

fn arrivals(v: &[Request]) -> Vec<Nanos> {
    v.iter().map(|r| r.arrival_ns).collect()
}

const AZURE: &str = "TIMESTAMP,ContextTokens,GeneratedTokens\r\n\
2023-11-16 18:15:46.6805900,374,44\r\n\
2023-11-16 18:15:50.9951690,396,109\r\n\
2023-11-16 18:15:51.2224670,879,55\r\n\
2023-11-16 18:15:52.0000000,91,16\r\n";
