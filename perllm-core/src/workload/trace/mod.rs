//! Trace replay: streaming parsers for the Azure, Mooncake, BurstGPT and perllm's plain CSV / JSONL
//! formats, and [`TraceSource`], a [`RequestSource`] that replays a trace with a time window, a
//! speed-up or target rate, repetition, and SLO / model / payload assignment.
//!
//! perllm-core does no file I/O: every reader here takes a [`Reader`] (any `BufRead + Send`) that
//! the caller opened. Options that need more than one pass over the file (`target_rate`, `repeat`)
//! take an [`Opener`], a closure that opens the trace again each time it is called.
//!
//! Memory does not grow with the trace length: rows are parsed one at a time into reused buffers;
//! the only buffer that holds rows is the small re-ordering window (rows within
//! [`REORDER_TOLERANCE_NS`] of trace time of the latest row).
//!
//! The formats, the time mapping and the error rules are documented in `docs/workloads.md`.
//!
//! One file per format: `azure`, `burstgpt`, `mooncake`, and `plain` (perllm's CSV and JSONL).
//! Around them: `csv` (the header and column layouts the CSV formats share), `cells` (cell
//! values), `row` (a parsed row), `parser` (rows of any format), `pass` (one pass: re-ordering
//! and window), `replay` ([`TraceSource`]), `summary` (whole-trace statistics).

mod azure;
mod burstgpt;
mod cells;
mod csv;
mod mooncake;
mod parser;
mod pass;
mod plain;
mod replay;
mod row;
mod summary;

use super::lines;
pub use super::lines::MAX_LINE_BYTES;
use super::{RequestSource, WorkloadError, pick_weighted, sample_size};
use crate::spec::{Nanos, SECOND};
pub use azure::parse_datetime_ns;
pub use cells::{parse_seconds_ns, parse_u64};
pub(crate) use csv::norm;
pub use pass::PassStats;
pub use replay::TraceSource;
use std::io::BufRead;
pub use summary::{TraceSummary, empirical_sizes, summarize};

/// A readable trace: any buffered reader the caller opened.
pub type Reader = Box<dyn BufRead + Send>;

/// Opens the trace (again). Called once per pass over the file.
pub type Opener<'a> = Box<dyn FnMut() -> std::io::Result<Reader> + 'a>;

/// How far back in trace time a row may be relative to the latest row read before it and still be
/// accepted. Rows out of order by at most this much are re-sorted (stable: equal times keep file
/// order); a row further back is a malformed row.
pub const REORDER_TOLERANCE_NS: Nanos = SECOND;

/// The former name of [`MAX_LINE_BYTES`], from when the limit applied to JSONL lines only.
pub const MAX_JSON_LINE_BYTES: u64 = MAX_LINE_BYTES;

/// Largest byte count one trace row may imply: its `payload_bytes`, and its output tokens times
/// the workload's `output_bytes_per_token`. 1 TiB, far above any real request; a larger value is a
/// malformed row (a unit mistake or a corrupt file), never passed on to the simulator's links.
pub const MAX_PAYLOAD_BYTES: u64 = 1 << 40;
