//! The trace-reader fuzz harness: feed bytes through every public reading path of one trace format
//! and check what comes out.
//!
//! This file is shared, unchanged, by the cargo-fuzz targets (`fuzz/fuzz_targets/trace_*.rs`
//! include it with `#[path]`) and the stable tests (`tests/it/trace_fuzz.rs`), so a crash found by
//! libFuzzer replays through exactly the same code in `cargo test`. It uses only perllm-core's
//! public API.
//!
//! Input layout ([`check_input`]): byte 0 selects the replay options ([`Options::from_byte`]), the
//! rest is the file. Properties checked on every input:
//!
//! - nothing panics (the caller's concern: libFuzzer or the test runner catches it);
//! - every request the replayer emits has id = its index, a non-decreasing arrival before the
//!   scenario's duration, at least one prompt and one output token, at most
//!   [`MAX_PAYLOAD_BYTES`] input and output bytes, a known SLO class and a hosted model; a pass
//!   emits at most one request per line of the file;
//! - every error names the file ([`NAME`]) and a row between 1 and the file's line count; row 0
//!   only for the whole-file errors "the trace has no rows ..." / "the bandwidth series has no
//!   rows"; the named line is the wrong one (alone, after the header, it fails with the same
//!   message: [`check_localized`]); after an error the replayer ends;
//! - the paths agree: `TraceSource::new` and `source_for` give the same requests and error; a
//!   replay at speed-up 1 without window or repeat that ends without error emits exactly the rows
//!   [`trace::summarize`] counts, with the same token totals and last offset (with
//!   `skip_bad_rows`: unless the replay rejects rows summarize keeps, which changes re-ordering);
//!   [`trace::empirical_sizes`] succeeds exactly when `summarize` does and finds rows;
//! - bandwidth series: points start at 0, increase strictly and hold finite positive values; the
//!   derived factors are not NaN.

use perllm_core::spec::{Assign, Nanos, SECOND, TraceFormat, TraceSpec};
use perllm_core::workload::trace::{self, MAX_PAYLOAD_BYTES, Reader, TraceSource};
use perllm_core::workload::{RequestSource, WorkloadError, read_bandwidth_csv, source_for};
use perllm_core::{World, testbed};
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Cursor;
use std::rc::Rc;

/// The name every reader is given; every error must carry it.
pub const NAME: &str = "fuzz/trace-input";

/// Scenario duration of the replays: the end of time, so that a replay at speed-up 1 is never cut
/// and reads the whole file (other options can still push arrivals past it).
pub const DURATION_NS: Nanos = Nanos::MAX;

/// One reader under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// Azure LLM inference traces 2023 and 2024 (`format = azure`).
    Azure,
    /// Mooncake JSONL.
    Mooncake,
    /// BurstGPT CSV.
    Burstgpt,
    /// perllm's plain CSV.
    Csv,
    /// perllm's plain JSONL.
    Jsonl,
    /// Bandwidth time series CSV (`read_bandwidth_csv`).
    Bandwidth,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 6] = [
        Target::Azure,
        Target::Mooncake,
        Target::Burstgpt,
        Target::Csv,
        Target::Jsonl,
        Target::Bandwidth,
    ];

    /// The short name used for fuzz targets (`trace_<name>`) and fixture folders.
    pub fn name(self) -> &'static str {
        match self {
            Target::Azure => "azure",
            Target::Mooncake => "mooncake",
            Target::Burstgpt => "burstgpt",
            Target::Csv => "csv",
            Target::Jsonl => "jsonl",
            Target::Bandwidth => "bandwidth",
        }
    }

    /// The trace format (`None` for the bandwidth series).
    pub fn format(self) -> Option<TraceFormat> {
        Some(match self {
            Target::Azure => TraceFormat::Azure,
            Target::Mooncake => TraceFormat::Mooncake,
            Target::Burstgpt => TraceFormat::Burstgpt,
            Target::Csv => TraceFormat::Csv,
            Target::Jsonl => TraceFormat::Jsonl,
            Target::Bandwidth => return None,
        })
    }
}

/// Replay options, one bit each of the input's first byte.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Options {
    /// Bit 0: `skip_bad_rows = true`.
    pub skip_bad_rows: bool,
    /// Bit 1: `slo_assign` / `model_assign = from_column()` where the format has the column (plain
    /// CSV and JSONL: both; BurstGPT: the model); ignored otherwise.
    pub from_column: bool,
    /// Bit 2: `slo_assign = by_size(...)` (unless taken from a column).
    pub by_size: bool,
    /// Bit 3: `target_rate = 25 /s` (a pre-pass) instead of the speed-up.
    pub target_rate: bool,
    /// Bit 4: `repeat = 3`.
    pub repeat: bool,
    /// Bit 5: `window = (0.5 s, 200 s)`.
    pub window: bool,
    /// Bit 6: `output_bytes_per_token` at its limit (1 MB) instead of 4, so large output token
    /// counts exceed [`MAX_PAYLOAD_BYTES`].
    pub big_output_bytes: bool,
    /// Bit 7: `speedup = 0.37` instead of 1 (non-integer time scaling).
    pub slow: bool,
}

impl Options {
    /// The options encoded in `b`.
    pub fn from_byte(b: u8) -> Options {
        let bit = |i: u8| b & (1 << i) != 0;
        Options {
            skip_bad_rows: bit(0),
            from_column: bit(1),
            by_size: bit(2),
            target_rate: bit(3),
            repeat: bit(4),
            window: bit(5),
            big_output_bytes: bit(6),
            slow: bit(7),
        }
    }

    /// The byte that encodes these options.
    pub fn to_byte(self) -> u8 {
        [
            self.skip_bad_rows,
            self.from_column,
            self.by_size,
            self.target_rate,
            self.repeat,
            self.window,
            self.big_output_bytes,
            self.slow,
        ]
        .iter()
        .enumerate()
        .map(|(i, &on)| (on as u8) << i)
        .sum()
    }

    fn world_key(self) -> u8 {
        self.to_byte()
    }
}

/// What one input did (for the tests' statistics).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// Requests the replay emitted (all passes).
    pub requests: u64,
    /// The error that ended the replay or refused the input, if any.
    pub error: Option<WorkloadError>,
}

/// The scenario of a replay: the paper testbed replaying `target` with `opts`.
pub fn world(target: Target, opts: Options) -> Rc<World> {
    thread_local! {
        static WORLDS: RefCell<HashMap<(Target, u8), Rc<World>>> = RefCell::new(HashMap::new());
    }
    WORLDS.with(|w| {
        w.borrow_mut()
            .entry((target, opts.world_key()))
            .or_insert_with(|| Rc::new(build_world(target, opts)))
            .clone()
    })
}

fn build_world(target: Target, opts: Options) -> World {
    let mut s = testbed::paper(5.0, DURATION_NS);
    if opts.big_output_bytes {
        s.workload.output_bytes_per_token = perllm_core::spec::limits::MAX_OUTPUT_BYTES_PER_TOKEN;
    }
    if let Some(format) = target.format() {
        let slo_col = opts.from_column && matches!(format, TraceFormat::Csv | TraceFormat::Jsonl);
        let model_col = opts.from_column
            && matches!(
                format,
                TraceFormat::Csv | TraceFormat::Jsonl | TraceFormat::Burstgpt
            );
        s.workload.trace = Some(TraceSpec {
            path: NAME.into(),
            format,
            speedup: if opts.slow { 0.37 } else { 1.0 },
            target_rate: opts.target_rate.then_some(25.0),
            window_ns: opts.window.then_some((SECOND / 2, 200 * SECOND)),
            repeat: if opts.repeat { 3 } else { 1 },
            skip_bad_rows: opts.skip_bad_rows,
            slo_assign: if slo_col {
                Assign::FromColumn
            } else if opts.by_size {
                Assign::BySize {
                    rules: vec![
                        (600, "interactive".into()),
                        (2000, "standard".into()),
                        (1_000_000, "batch".into()),
                    ],
                }
            } else {
                Assign::ByShare
            },
            model_assign: if model_col {
                Assign::FromColumn
            } else {
                Assign::ByShare
            },
            payload: None,
        });
    }
    s.build()
        .unwrap_or_else(|e| panic!("the harness scenario is invalid: {e:?}"))
}

fn reader(text: &[u8]) -> Reader {
    Box::new(Cursor::new(text.to_vec()))
}

/// Lines of `text` as the readers count them: one more than its `\n` bytes.
fn lines(text: &[u8]) -> u64 {
    text.iter().filter(|&&b| b == b'\n').count() as u64 + 1
}

/// The records a pass may hold at most: one per line.
fn max_records(text: &[u8]) -> u64 {
    lines(text)
}

/// The first error a replay of `text` with `opts` ends with, if any.
fn first_error(target: Target, opts: Options, text: &[u8]) -> Option<WorkloadError> {
    let Some(_) = target.format() else {
        return read_bandwidth_csv(text, NAME).err();
    };
    let w = world(target, opts);
    let spec = w.scenario.workload.trace.clone().expect("a trace world");
    let mut src = match TraceSource::with_opener(&spec, NAME, || Ok(reader(text)), &w) {
        Ok(s) => s,
        Err(e) => return Some(e),
    };
    std::iter::from_fn(|| src.next_request()).find_map(Result::err)
}

/// A row error names the line that is wrong: that line alone (after the header line, for the CSV
/// formats) fails with the same message. Not checked for errors that depend on other rows (out
/// of order, bandwidth times not increasing), for unreadable input, and for CSV files with quotes
/// (a quoted field may span lines).
fn check_localized(
    target: Target,
    opts: Options,
    text: &[u8],
    e: &WorkloadError,
) -> Result<(), String> {
    let csv = !matches!(target, Target::Mooncake | Target::Jsonl);
    let all: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    // Bandwidth files also skip comment lines (first byte `#`).
    let comment = |l: &[u8]| target == Target::Bandwidth && l.first() == Some(&b'#');
    // Before the first record the readers drop byte-order marks at the start of a line (then
    // the line may be blank or a comment).
    let blank = |i: usize| {
        let mut l = all[i];
        while let Some(rest) = l.strip_prefix(b"\xEF\xBB\xBF") {
            l = rest;
        }
        l.iter().all(u8::is_ascii_whitespace) || comment(l)
    };
    // CSV: the header is the first line that is not blank; data rows come after it.
    let header = (0..all.len()).find(|&i| !blank(i)).unwrap_or(0);
    let first_data = if csv { header as u64 + 2 } else { 1 };
    let contextual = [
        "earlier than a previous row",
        "times must increase strictly",
    ];
    if e.row < first_data
        || e.message.starts_with("cannot")
        || e.message.starts_with("line is longer")
        || contextual.iter().any(|c| e.message.contains(c))
        || (csv && text.contains(&b'"'))
    {
        return Ok(());
    }
    let Some(line) = all.get(e.row as usize - 1) else {
        return Err(format!("error names row {}, past the end: {e}", e.row));
    };
    let mut alone = Vec::new();
    if csv {
        alone.extend_from_slice(all[header]);
        alone.push(b'\n');
    }
    alone.extend_from_slice(line);
    if (e.row as usize) < all.len() {
        alone.push(b'\n'); // as in the file (the last line may have no terminator)
    }
    match first_error(target, opts, &alone) {
        Some(a) if a.row == if csv { 2 } else { 1 } && a.message == e.message => Ok(()),
        other => Err(format!(
            "`{e}` names line {}, `{}`, but alone it gives {other:?}",
            e.row,
            String::from_utf8_lossy(line)
        )),
    }
}

/// Check an error's file name and row.
fn check_error(e: &WorkloadError, text: &[u8], whole_file: &str) -> Result<(), String> {
    if e.source_name != NAME {
        return Err(format!(
            "error names `{}`, not `{NAME}`: {e}",
            e.source_name
        ));
    }
    if e.message.is_empty() {
        return Err(format!("error without a message: {e:?}"));
    }
    if e.row > lines(text) {
        return Err(format!(
            "error row {} is past the file's {} lines: {e}",
            e.row,
            lines(text)
        ));
    }
    if e.row == 0 && !e.message.starts_with(whole_file) {
        return Err(format!("error without a row: {e}"));
    }
    let shown = e.to_string();
    if !shown.starts_with(&format!("{NAME}: row {}: ", e.row)) {
        return Err(format!("error does not show file and row: {shown}"));
    }
    Ok(())
}

/// Split a fuzz input into options and file, and check it. `Err` is a broken property.
pub fn check_input(target: Target, data: &[u8]) -> Result<Outcome, String> {
    let (opts, text) = match data.split_first() {
        Some((&b, rest)) => (Options::from_byte(b), rest),
        None => (Options::default(), data),
    };
    check(target, opts, text)
}

/// Read `text` as `target` with `opts` through every public reading path and check the properties
/// listed in the module documentation. `Err` describes the first broken property.
pub fn check(target: Target, opts: Options, text: &[u8]) -> Result<Outcome, String> {
    match target.format() {
        None => check_bandwidth(text),
        Some(format) => check_trace(target, format, opts, text),
    }
}

fn check_bandwidth(text: &[u8]) -> Result<Outcome, String> {
    let s = match read_bandwidth_csv(text, NAME) {
        Ok(s) => s,
        Err(e) => {
            check_error(&e, text, "the bandwidth series has no rows")?;
            check_localized(Target::Bandwidth, Options::default(), text, &e)?;
            return Ok(Outcome {
                requests: 0,
                error: Some(e),
            });
        }
    };
    let p = &s.points;
    if p.is_empty() || p[0].0 != 0 {
        return Err(format!("series does not start at 0: {p:?}"));
    }
    if p.windows(2).any(|w| w[1].0 <= w[0].0) {
        return Err(format!("series times do not increase strictly: {p:?}"));
    }
    if let Some(v) = p.iter().find(|v| !(v.1.is_finite() && v.1 > 0.0)) {
        return Err(format!("series value {} is not finite and positive", v.1));
    }
    if p.len() as u64 > max_records(text) {
        return Err(format!(
            "{} points from {} records",
            p.len(),
            max_records(text)
        ));
    }
    // Each point's line: increasing, inside the file.
    if s.lines.len() != p.len()
        || s.lines.windows(2).any(|w| w[1] <= w[0])
        || s.lines.iter().any(|&l| l == 0 || l > lines(text))
    {
        return Err(format!("point lines {:?} for {} points", s.lines, p.len()));
    }
    let range = perllm_core::spec::limits::MIN_BANDWIDTH_FACTOR
        ..=perllm_core::spec::limits::MAX_BANDWIDTH_FACTOR;
    for mean in [None, Some(1e6)] {
        let f = s.factors(mean);
        if let Some(f) = f.iter().find(|f| f.1.is_nan()) {
            return Err(format!("factor is NaN: {f:?}"));
        }
        // The checked factors: all in range, or an error naming the first point outside.
        match (
            s.checked_factors(mean, NAME),
            f.iter().position(|x| !range.contains(&x.1)),
        ) {
            (Ok(c), None) if c == f => {}
            (Err(e), Some(i)) if e.row == s.lines[i] => check_error(&e, text, "")?,
            (r, i) => {
                return Err(format!(
                    "checked factors {r:?}, first out of range: {i:?} in {f:?}"
                ));
            }
        }
    }
    Ok(Outcome {
        requests: p.len() as u64,
        error: None,
    })
}

fn check_trace(
    target: Target,
    format: TraceFormat,
    opts: Options,
    text: &[u8],
) -> Result<Outcome, String> {
    const EMPTY: &str = "the trace has no rows";
    let w = world(target, opts);
    let spec = w.scenario.workload.trace.clone().expect("a trace world");
    assert_eq!(spec.path, NAME, "errors name the scenario's path");
    let repeat = spec.repeat as u64;

    // 1. The replayer as the CLI gets it: `workload::source_for`, which opens the file once per
    //    pass (and once more first for `target_rate`).
    let mut outcome = Outcome::default();
    let mut tokens = (0u64, 0u64);
    let mut last_arrival = 0;
    let mut emitted = Vec::new();
    let open = |_: &str| -> std::io::Result<Reader> { Ok(reader(text)) };
    match source_for(&w, &open) {
        Err(e) => {
            check_error(&e, text, EMPTY)?;
            check_localized(target, opts, text, &e)?;
            outcome.error = Some(e);
        }
        Ok(mut src) => {
            let cap = max_records(text) * repeat;
            while let Some(r) = src.next_request() {
                match r {
                    Ok(q) => {
                        if q.id != outcome.requests {
                            return Err(format!("request {} has id {}", outcome.requests, q.id));
                        }
                        if q.arrival_ns < last_arrival {
                            return Err(format!(
                                "request {} arrives at {} ns, before the previous one ({} ns)",
                                q.id, q.arrival_ns, last_arrival
                            ));
                        }
                        // (`>=` the duration, which is the largest value.)
                        if q.arrival_ns == DURATION_NS {
                            return Err(format!("request {} arrives after the duration", q.id));
                        }
                        if q.prompt_tokens == 0 || q.output_tokens == 0 {
                            return Err(format!("request {} has 0 tokens: {q:?}", q.id));
                        }
                        if q.input_bytes > MAX_PAYLOAD_BYTES || q.output_bytes > MAX_PAYLOAD_BYTES {
                            return Err(format!("request {} has absurd byte counts: {q:?}", q.id));
                        }
                        if q.slo as usize >= w.slos.len()
                            || !w.servers.iter().any(|s| s.hosts(q.model))
                        {
                            return Err(format!("request {} has a bad SLO or model: {q:?}", q.id));
                        }
                        last_arrival = q.arrival_ns;
                        tokens.0 = tokens.0.saturating_add(q.prompt_tokens as u64);
                        tokens.1 = tokens.1.saturating_add(q.output_tokens as u64);
                        outcome.requests += 1;
                        if outcome.requests > cap {
                            return Err(format!(
                                "more than {cap} requests from {} lines x {repeat} passes",
                                max_records(text)
                            ));
                        }
                        emitted.push(q);
                    }
                    Err(e) => {
                        check_error(&e, text, EMPTY)?;
                        check_localized(target, opts, text, &e)?;
                        if opts.skip_bad_rows
                            && e.row > 1
                            && !e.message.starts_with("cannot")
                            && !e.message.starts_with("line is longer")
                        {
                            return Err(format!("a row error despite skip_bad_rows: {e}"));
                        }
                        outcome.error = Some(e);
                        if let Some(more) = src.next_request() {
                            return Err(format!("the replay went on after an error: {more:?}"));
                        }
                        break;
                    }
                }
            }
        }
    }

    // 1b. The single-reader replayer (`TraceSource::new`, one pass) gives the same requests and
    //     the same error.
    if !opts.target_rate && !opts.repeat {
        let mut single = Vec::new();
        let mut error = None;
        match TraceSource::new(&spec, NAME, reader(text), &w) {
            Err(e) => error = Some(e),
            Ok(mut src) => {
                while let Some(r) = src.next_request() {
                    match r {
                        Ok(q) => single.push(q),
                        Err(e) => {
                            error = Some(e);
                            break;
                        }
                    }
                }
            }
        }
        if single != emitted || error != outcome.error {
            return Err(format!(
                "TraceSource::new gave {} requests and {error:?}; source_for {} and {:?}",
                single.len(),
                emitted.len(),
                outcome.error
            ));
        }
    }

    // 2. The summary (no window, no assignment), with and without skipping.
    let summary = |skip: bool| -> Result<Option<trace::TraceSummary>, String> {
        match trace::summarize(format, NAME, reader(text), skip) {
            Ok(s) => {
                if s.pass.rows > max_records(text) {
                    return Err(format!(
                        "summarize counted {} rows in {} records",
                        s.pass.rows,
                        max_records(text)
                    ));
                }
                Ok(Some(s))
            }
            Err(e) => {
                check_error(&e, text, EMPTY)?;
                Ok(None)
            }
        }
    };
    let strict = summary(false)?;
    let skipping = if opts.skip_bad_rows {
        summary(true)?
    } else {
        strict
    };

    // 3. The replay agrees with the summary. Only when it certainly read the whole file (no
    //    window, one pass, and arrivals equal to trace offsets, which never reach the duration),
    //    and, with skip_bad_rows, only when the replay checks rows exactly as summarize does:
    //    `from_column` names and the output-byte limit reject rows that summarize keeps, and a
    //    skipped row does not count for the re-ordering, so either can change which later rows
    //    are too far out of order.
    let whole = !opts.window && !opts.repeat && !opts.slow && !opts.target_rate;
    let same_rules = !opts.skip_bad_rows || !(opts.from_column || opts.big_output_bytes);
    if outcome.error.is_none() && whole && same_rules {
        let Some(sum) = skipping else {
            return Err("the replay succeeded but summarize failed".into());
        };
        if outcome.requests != sum.pass.rows {
            return Err(format!(
                "the replay emitted {} requests, summarize counted {} rows",
                outcome.requests, sum.pass.rows
            ));
        }
        if tokens != (sum.pass.prompt_tokens, sum.pass.output_tokens) {
            return Err(format!(
                "token totals differ: replay {tokens:?}, summarize ({}, {})",
                sum.pass.prompt_tokens, sum.pass.output_tokens
            ));
        }
        if outcome.requests > 0 && last_arrival != sum.pass.last_ns {
            return Err(format!(
                "last arrival {last_arrival} ns, summarize's last offset {} ns",
                sum.pass.last_ns
            ));
        }
    }

    // 4. Empirical sizes: succeed exactly when the strict summary finds rows.
    let emp = trace::empirical_sizes(format, NAME, reader(text), 16, 7);
    let has_rows = strict.is_some_and(|s| s.pass.rows > 0);
    match emp {
        Ok((p, o)) => {
            if !has_rows {
                return Err("empirical_sizes succeeded where summarize found no rows".into());
            }
            for d in [p, o] {
                let perllm_core::spec::SizeDist::Empirical { values } = d else {
                    return Err("empirical_sizes returned another distribution".into());
                };
                if values.is_empty()
                    || values.len() > 16
                    || values
                        .iter()
                        .any(|&v| !(1.0..=u32::MAX as f64).contains(&v))
                {
                    return Err(format!("bad empirical values {values:?}"));
                }
            }
        }
        Err(e) => {
            check_error(&e, text, EMPTY)?;
            if has_rows {
                return Err(format!(
                    "empirical_sizes failed where summarize did not: {e}"
                ));
            }
        }
    }
    Ok(outcome)
}
