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

use super::lines::{CsvReader, Lines};
use super::{RequestSource, WorkloadError, check_size_dist, pick_weighted, sample_size};
use crate::request::Request;
use crate::rng::{Rng, stream, stream_rng, unit_f64};
use crate::spec::{Assign, Nanos, SECOND, SizeDist, TraceFormat, TraceSpec};
use crate::world::{ModelId, SloId, World};
use std::collections::VecDeque;
use std::io::BufRead;

/// A readable trace: any buffered reader the caller opened.
pub type Reader = Box<dyn BufRead + Send>;

/// Opens the trace (again). Called once per pass over the file.
pub type Opener<'a> = Box<dyn FnMut() -> std::io::Result<Reader> + 'a>;

/// How far back in trace time a row may be relative to the latest row read before it and still be
/// accepted. Rows out of order by at most this much are re-sorted (stable: equal times keep file
/// order); a row further back is a malformed row.
pub const REORDER_TOLERANCE_NS: Nanos = SECOND;

pub use super::lines::MAX_LINE_BYTES;

/// The former name of [`MAX_LINE_BYTES`], from when the limit applied to JSONL lines only.
pub const MAX_JSON_LINE_BYTES: u64 = MAX_LINE_BYTES;

/// Largest byte count one trace row may imply: its `payload_bytes`, and its output tokens times
/// the workload's `output_bytes_per_token`. 1 TiB, far above any real request; a larger value is a
/// malformed row (a unit mistake or a corrupt file), never passed on to the simulator's links.
pub const MAX_PAYLOAD_BYTES: u64 = 1 << 40;

/// Pass period used when a pass holds a single row or all its rows share one timestamp.
const FALLBACK_GAP_NS: Nanos = SECOND;

// ---------------------------------------------------------------------------------------------
// Field parsing helpers (pure, public for reuse and tests).
// ---------------------------------------------------------------------------------------------

/// Parse a calendar timestamp `YYYY-MM-DD HH:MM:SS[.fraction][Z|+HH:MM|-HH:MM|+HHMM]` (a `T` may
/// replace the space) into nanoseconds since the Unix epoch (UTC). Fraction digits beyond the
/// ninth are ignored. Dates before 1970 are an error.
pub fn parse_datetime_ns(s: &str) -> Result<Nanos, String> {
    let b = s.trim().as_bytes();
    let bad = || {
        format!(
            "`{}` is not a timestamp of the form YYYY-MM-DD HH:MM:SS[.fff]",
            s.trim()
        )
    };
    if b.len() < 19 {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let mut v = 0u64;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + (c - b'0') as u64;
        }
        Some(v)
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b' ' || b[10] == b'T')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(sec)) = (
        num(0..4),
        num(5..7),
        num(8..10),
        num(11..13),
        num(14..16),
        num(17..19),
    ) else {
        return Err(bad());
    };
    if !(1..=12).contains(&mo)
        || d == 0
        || d > days_in_month(y, mo)
        || h > 23
        || mi > 59
        || sec > 59
    {
        return Err(format!("`{}` is not a valid date and time", s.trim()));
    }
    let mut i = 19;
    let mut frac_ns = 0u64;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let start = i;
        let mut scale = 100_000_000u64;
        while i < b.len() && b[i].is_ascii_digit() {
            frac_ns += (b[i] - b'0') as u64 * scale;
            scale /= 10;
            i += 1;
        }
        if i == start {
            return Err(bad());
        }
    }
    let mut offset_s: i64 = 0;
    if i < b.len() {
        match b[i] {
            b'Z' | b'z' if i + 1 == b.len() => {}
            b'+' | b'-' => {
                let sign = if b[i] == b'+' { 1 } else { -1 };
                let rest = &b[i + 1..];
                let (oh, om) = match rest.len() {
                    5 if rest[2] == b':' => (num(i + 1..i + 3), num(i + 4..i + 6)),
                    4 => (num(i + 1..i + 3), num(i + 3..i + 5)),
                    2 => (num(i + 1..i + 3), Some(0)),
                    _ => (None, None),
                };
                let (Some(oh), Some(om)) = (oh, om) else {
                    return Err(bad());
                };
                if oh > 23 || om > 59 {
                    return Err(bad());
                }
                offset_s = sign * (oh * 3600 + om * 60) as i64;
            }
            _ => return Err(bad()),
        }
    }
    let days = days_from_civil(y as i64, mo as i64, d as i64);
    let secs = days * 86_400 + (h * 3600 + mi * 60 + sec) as i64 - offset_s;
    if secs < 0 {
        return Err(format!("`{}` is before 1970", s.trim()));
    }
    (secs as u64)
        .checked_mul(1_000_000_000)
        .and_then(|v| v.checked_add(frac_ns))
        .ok_or_else(|| format!("`{}` is too far in the future", s.trim()))
}

fn is_leap(y: u64) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

fn days_in_month(y: u64, m: u64) -> u64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if is_leap(y) {
                29
            } else {
                28
            }
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parse a non-negative number of seconds (decimal or scientific notation) into nanoseconds,
/// rounded to the nearest nanosecond.
pub fn parse_seconds_ns(s: &str) -> Result<Nanos, String> {
    let t = s.trim();
    let v: f64 = t
        .parse()
        .map_err(|_| format!("`{t}` is not a number of seconds"))?;
    seconds_to_ns(v).map_err(|m| format!("`{t}` {m}"))
}

fn seconds_to_ns(v: f64) -> Result<Nanos, String> {
    if !v.is_finite() || v < 0.0 {
        return Err("is not a finite non-negative time".into());
    }
    let ns = (v * 1e9).round();
    if ns >= u64::MAX as f64 {
        return Err("overflows the nanosecond clock".into());
    }
    Ok(ns as Nanos)
}

/// Parse a non-negative decimal integer with overflow detection.
pub fn parse_u64(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("is empty".into());
    }
    let mut v = 0u64;
    for c in t.bytes() {
        if !c.is_ascii_digit() {
            return Err(format!("`{t}` is not a non-negative integer"));
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add((c - b'0') as u64))
            .ok_or_else(|| format!("`{t}` is too large (more than {})", u64::MAX))?;
    }
    Ok(v)
}

fn tokens(v: u64, what: &str) -> Result<u32, String> {
    if v == 0 {
        return Err(format!("{what} is 0; a request has at least one token"));
    }
    u32::try_from(v)
        .map_err(|_| format!("{what} {v} is more than the largest supported {}", u32::MAX))
}

fn payload_bytes(v: u64) -> Result<u64, String> {
    if v > MAX_PAYLOAD_BYTES {
        return Err(format!(
            "{v} is more than the largest supported {MAX_PAYLOAD_BYTES} (1 TiB)"
        ));
    }
    Ok(v)
}

/// The row-level byte rule that needs the scenario: output tokens x `output_bytes_per_token`.
fn check_output_bytes(r: &RawRow, names: &Names) -> Result<(), String> {
    let bytes = r.output as f64 * names.out_bytes_per_token;
    if bytes > MAX_PAYLOAD_BYTES as f64 {
        return Err(format!(
            "{} output tokens x {} output_bytes_per_token = {bytes:.3e} bytes, more than the largest supported {MAX_PAYLOAD_BYTES} (1 TiB)",
            r.output, names.out_bytes_per_token
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Row parsers.
// ---------------------------------------------------------------------------------------------

/// Names used to resolve `slo` / `model` columns.
#[derive(Clone, Debug)]
struct Names {
    slos: Vec<String>,
    models: Vec<String>,
    hosted: Vec<bool>,
    want_slo: bool,
    want_model: bool,
    /// The workload's `output_bytes_per_token` (0 when only the token counts matter).
    out_bytes_per_token: f64,
}

impl Names {
    fn none() -> Self {
        Names {
            slos: vec![],
            models: vec![],
            hosted: vec![],
            want_slo: false,
            want_model: false,
            out_bytes_per_token: 0.0,
        }
    }
    fn slo(&self, s: &str) -> Result<SloId, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("the slo column is empty".into());
        }
        self.slos
            .iter()
            .position(|n| n == s)
            .map(|i| i as SloId)
            .ok_or_else(|| {
                format!(
                    "unknown SLO class `{s}` (the scenario has: {})",
                    self.slos.join(", ")
                )
            })
    }
    fn model(&self, s: &str) -> Result<ModelId, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("the model column is empty".into());
        }
        match self.models.iter().position(|n| n == s) {
            Some(i) if self.hosted[i] => Ok(i as ModelId),
            Some(_) => Err(format!("model `{s}` is not hosted by any server")),
            None => Err(format!(
                "unknown model `{s}` (the scenario has: {})",
                self.models.join(", ")
            )),
        }
    }
}

/// One parsed row, before time mapping and assignment.
#[derive(Clone, Copy, Debug)]
struct RawRow {
    /// Trace time (absolute as given by the file).
    t: Nanos,
    prompt: u32,
    output: u32,
    slo: Option<SloId>,
    model: Option<ModelId>,
    payload: Option<u64>,
    line: u64,
}

enum Item {
    Row(RawRow),
    /// A malformed row (skippable).
    Bad(WorkloadError),
    /// A row recording a failed request (BurstGPT, 0 response tokens): always skipped.
    Failed,
}

#[derive(Clone, Copy, PartialEq)]
enum TimeKind {
    DateTime,
    Seconds,
}

struct CsvLayout {
    time: usize,
    kind: TimeKind,
    prompt: usize,
    output: usize,
    slo: Option<usize>,
    model: Option<usize>,
    payload: Option<usize>,
    nfields: usize,
    burst: bool,
}

struct CsvRows {
    rec: CsvReader<Reader>,
    lay: CsvLayout,
}

struct JsonlRows {
    lines: Lines<Reader>,
    mooncake: bool,
}

enum Rows {
    Csv(CsvRows),
    Jsonl(JsonlRows),
}

struct Parser {
    name: String,
    rows: Rows,
    names: Names,
}

/// A header cell: without a UTF-8 byte-order mark and surrounding whitespace, in lower case.
pub(crate) fn norm(h: &[u8]) -> String {
    let h = h.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(h);
    String::from_utf8_lossy(h).trim().to_ascii_lowercase()
}

impl Parser {
    fn new(
        format: TraceFormat,
        name: &str,
        reader: Reader,
        names: Names,
    ) -> Result<Parser, WorkloadError> {
        let err = |row: u64, m: String| WorkloadError::new(name, row, m);
        let rows = match format {
            TraceFormat::Mooncake | TraceFormat::Jsonl => Rows::Jsonl(JsonlRows {
                lines: Lines::new(reader),
                mooncake: format == TraceFormat::Mooncake,
            }),
            TraceFormat::Azure | TraceFormat::Burstgpt | TraceFormat::Csv => {
                // The header is the first line that is not blank.
                let mut rec = CsvReader::new(reader);
                let hline = match rec.advance() {
                    Err((row, m)) => return Err(err(row, format!("cannot read the header: {m}"))),
                    Ok(None) => 1,
                    Ok(Some(l)) => l,
                };
                let header: Vec<String> = rec.iter().map(norm).collect();
                let find = |n: &str| header.iter().position(|h| h == n);
                let need = |n: &str, shown: &str| {
                    find(n).ok_or_else(|| {
                        err(
                            hline,
                            format!(
                                "the header has no `{shown}` column (found: {}); is this a {format:?} trace?",
                                if header.iter().all(|h| h.is_empty()) { "nothing".to_string() } else { header.join(", ") }
                            ),
                        )
                    })
                };
                let lay = match format {
                    TraceFormat::Azure => CsvLayout {
                        time: need("timestamp", "TIMESTAMP")?,
                        kind: TimeKind::DateTime,
                        prompt: need("contexttokens", "ContextTokens")?,
                        output: need("generatedtokens", "GeneratedTokens")?,
                        slo: None,
                        model: None,
                        payload: None,
                        nfields: header.len(),
                        burst: false,
                    },
                    TraceFormat::Burstgpt => CsvLayout {
                        time: need("timestamp", "Timestamp")?,
                        kind: TimeKind::Seconds,
                        prompt: need("request tokens", "Request tokens")?,
                        output: need("response tokens", "Response tokens")?,
                        slo: None,
                        model: if names.want_model {
                            Some(need("model", "Model")?)
                        } else {
                            None
                        },
                        payload: None,
                        nfields: header.len(),
                        burst: true,
                    },
                    _ => {
                        const KNOWN: [&str; 6] = [
                            "arrival_s",
                            "prompt_tokens",
                            "output_tokens",
                            "slo",
                            "model",
                            "payload_bytes",
                        ];
                        if let Some(u) = header.iter().find(|h| !KNOWN.contains(&h.as_str())) {
                            return Err(err(
                                hline,
                                format!("unknown column `{u}` (known: {})", KNOWN.join(", ")),
                            ));
                        }
                        for (i, h) in header.iter().enumerate() {
                            if header[..i].contains(h) {
                                return Err(err(hline, format!("column `{h}` appears twice")));
                            }
                        }
                        let slo = find("slo");
                        let model = find("model");
                        if names.want_slo && slo.is_none() {
                            return Err(err(
                                hline,
                                "slo_assign = from_column but the header has no `slo` column"
                                    .into(),
                            ));
                        }
                        if names.want_model && model.is_none() {
                            return Err(err(
                                hline,
                                "model_assign = from_column but the header has no `model` column"
                                    .into(),
                            ));
                        }
                        CsvLayout {
                            time: need("arrival_s", "arrival_s")?,
                            kind: TimeKind::Seconds,
                            prompt: need("prompt_tokens", "prompt_tokens")?,
                            output: need("output_tokens", "output_tokens")?,
                            slo,
                            model,
                            payload: find("payload_bytes"),
                            nfields: header.len(),
                            burst: false,
                        }
                    }
                };
                Rows::Csv(CsvRows { rec, lay })
            }
        };
        Ok(Parser {
            name: name.to_string(),
            rows,
            names,
        })
    }

    /// The next row; `Err` only for unrecoverable errors (I/O, an overlong line).
    fn next(&mut self) -> Result<Option<Item>, WorkloadError> {
        let next = match &mut self.rows {
            Rows::Csv(c) => c.rec.advance(),
            Rows::Jsonl(j) => j.lines.advance(),
        };
        let line = match next {
            Ok(Some(l)) => l,
            Ok(None) => return Ok(None),
            Err((row, m)) => return Err(WorkloadError::new(&self.name, row, m)),
        };
        let names = &self.names;
        let row = match &mut self.rows {
            Rows::Csv(c) => csv_row(&c.rec, &c.lay, names, line),
            Rows::Jsonl(j) => {
                let text = j.lines.text();
                if j.mooncake {
                    mooncake_row(text, line)
                } else {
                    jsonl_row(text, names, line)
                }
                .map(Some)
            }
        };
        let row = row.and_then(|r| match r {
            Some(r) => check_output_bytes(&r, names).map(|()| Some(r)),
            None => Ok(None),
        });
        Ok(Some(match row {
            Ok(Some(r)) => Item::Row(r),
            Ok(None) => Item::Failed,
            Err(m) => Item::Bad(WorkloadError::new(&self.name, line, m)),
        }))
    }
}

fn field<'r>(rec: &'r CsvReader<Reader>, i: usize, what: &str) -> Result<&'r str, String> {
    let b = rec.get(i).ok_or_else(|| format!("missing {what}"))?;
    std::str::from_utf8(b).map_err(|_| format!("{what} is not valid UTF-8"))
}

/// `Ok(None)` is a failed-request row (BurstGPT with 0 response tokens).
fn csv_row(
    rec: &CsvReader<Reader>,
    lay: &CsvLayout,
    names: &Names,
    line: u64,
) -> Result<Option<RawRow>, String> {
    if rec.len() != lay.nfields {
        return Err(format!(
            "has {} fields, the header has {}",
            rec.len(),
            lay.nfields
        ));
    }
    let ts = field(rec, lay.time, "the timestamp")?;
    let t = match lay.kind {
        TimeKind::DateTime => parse_datetime_ns(ts),
        TimeKind::Seconds => parse_seconds_ns(ts),
    }
    .map_err(|m| format!("timestamp: {m}"))?;
    let p = parse_u64(field(rec, lay.prompt, "the prompt tokens")?)
        .map_err(|m| format!("prompt tokens: {m}"))?;
    let o = parse_u64(field(rec, lay.output, "the output tokens")?)
        .map_err(|m| format!("output tokens: {m}"))?;
    if lay.burst && o == 0 {
        return Ok(None);
    }
    let prompt = tokens(p, "prompt tokens")?;
    let output = tokens(o, "output tokens")?;
    let slo = match lay.slo {
        Some(i) if names.want_slo => Some(names.slo(field(rec, i, "the slo")?)?),
        _ => None,
    };
    let model = match lay.model {
        Some(i) if names.want_model => Some(names.model(field(rec, i, "the model")?)?),
        _ => None,
    };
    let payload = match lay.payload {
        Some(i) => {
            let f = field(rec, i, "the payload bytes")?;
            if f.trim().is_empty() {
                None
            } else {
                Some(
                    parse_u64(f)
                        .and_then(payload_bytes)
                        .map_err(|m| format!("payload_bytes: {m}"))?,
                )
            }
        }
        None => None,
    };
    Ok(Some(RawRow {
        t,
        prompt,
        output,
        slo,
        model,
        payload,
        line,
    }))
}

#[derive(serde::Deserialize)]
struct MooncakeLine {
    timestamp: serde_json::Number,
    input_length: u64,
    output_length: u64,
}

fn mooncake_row(buf: &[u8], line: u64) -> Result<RawRow, String> {
    let r: MooncakeLine =
        serde_json::from_slice(buf).map_err(|e| format!("invalid Mooncake JSON: {e}"))?;
    let t = if let Some(ms) = r.timestamp.as_u64() {
        ms.checked_mul(1_000_000)
            .ok_or_else(|| format!("timestamp {ms} ms overflows the nanosecond clock"))?
    } else {
        let ms = r.timestamp.as_f64().unwrap_or(f64::NAN);
        seconds_to_ns(ms / 1e3).map_err(|m| format!("timestamp {} ms {m}", r.timestamp))?
    };
    Ok(RawRow {
        t,
        prompt: tokens(r.input_length, "input_length")?,
        output: tokens(r.output_length, "output_length")?,
        slo: None,
        model: None,
        payload: None,
        line,
    })
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainLine {
    arrival_s: f64,
    prompt_tokens: u64,
    output_tokens: u64,
    #[serde(default)]
    slo: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    payload_bytes: Option<u64>,
}

fn jsonl_row(buf: &[u8], names: &Names, line: u64) -> Result<RawRow, String> {
    let r: PlainLine = serde_json::from_slice(buf).map_err(|e| format!("invalid JSON row: {e}"))?;
    let t = seconds_to_ns(r.arrival_s).map_err(|m| format!("arrival_s {} {m}", r.arrival_s))?;
    let slo = if names.want_slo {
        Some(
            names.slo(
                r.slo
                    .as_deref()
                    .ok_or("slo_assign = from_column but the row has no `slo`")?,
            )?,
        )
    } else {
        None
    };
    let model = if names.want_model {
        Some(
            names.model(
                r.model
                    .as_deref()
                    .ok_or("model_assign = from_column but the row has no `model`")?,
            )?,
        )
    } else {
        None
    };
    Ok(RawRow {
        t,
        prompt: tokens(r.prompt_tokens, "prompt_tokens")?,
        output: tokens(r.output_tokens, "output_tokens")?,
        slo,
        model,
        payload: r
            .payload_bytes
            .map(payload_bytes)
            .transpose()
            .map_err(|m| format!("payload_bytes: {m}"))?,
        line,
    })
}

// ---------------------------------------------------------------------------------------------
// One pass over a trace: parsing, re-ordering, window.
// ---------------------------------------------------------------------------------------------

struct Pass {
    parser: Parser,
    buf: VecDeque<RawRow>,
    max_seen: Option<Nanos>,
    eof: bool,
    finished: bool,
    t0: Option<Nanos>,
    window: (Nanos, Nanos),
    skip_bad: bool,
    malformed: u64,
    failed: u64,
}

impl Pass {
    fn new(parser: Parser, window: (Nanos, Nanos), skip_bad: bool) -> Self {
        Pass {
            parser,
            buf: VecDeque::new(),
            max_seen: None,
            eof: false,
            finished: false,
            t0: None,
            window,
            skip_bad,
            malformed: 0,
            failed: 0,
        }
    }

    fn bad(&mut self, e: WorkloadError) -> Result<(), WorkloadError> {
        if self.skip_bad {
            self.malformed += 1;
            Ok(())
        } else {
            Err(e)
        }
    }

    /// The next row in time order (re-sorted within the tolerance).
    fn next_sorted(&mut self) -> Result<Option<RawRow>, WorkloadError> {
        loop {
            if let Some(front) = self.buf.front() {
                let ready = self.eof
                    || front.t.saturating_add(REORDER_TOLERANCE_NS) <= self.max_seen.unwrap_or(0);
                if ready {
                    return Ok(self.buf.pop_front());
                }
            } else if self.eof {
                return Ok(None);
            }
            match self.parser.next()? {
                None => self.eof = true,
                Some(Item::Failed) => self.failed += 1,
                Some(Item::Bad(e)) => self.bad(e)?,
                Some(Item::Row(r)) => {
                    let max = self.max_seen.unwrap_or(0);
                    if r.t.saturating_add(REORDER_TOLERANCE_NS) < max {
                        let e = WorkloadError::new(
                            &self.parser.name,
                            r.line,
                            format!(
                                "timestamp is {:.3} s earlier than a previous row's; rows may be out of order by at most {} s",
                                (max - r.t) as f64 / 1e9,
                                REORDER_TOLERANCE_NS as f64 / 1e9
                            ),
                        );
                        self.bad(e)?;
                        continue;
                    }
                    if self.buf.back().is_none_or(|b| b.t <= r.t) {
                        self.buf.push_back(r);
                    } else {
                        // Stable: after every buffered row with the same time.
                        let at = self.buf.partition_point(|x| x.t <= r.t);
                        self.buf.insert(at, r);
                    }
                    self.max_seen = Some(max.max(r.t));
                }
            }
        }
    }

    /// The next row inside the window, with its offset from the window start.
    fn next(&mut self) -> Result<Option<(Nanos, RawRow)>, WorkloadError> {
        if self.finished {
            return Ok(None);
        }
        while let Some(r) = self.next_sorted()? {
            let t0 = *self.t0.get_or_insert(r.t);
            let off = r.t - t0;
            if off < self.window.0 {
                continue;
            }
            if off >= self.window.1 {
                self.finished = true;
                return Ok(None);
            }
            return Ok(Some((off - self.window.0, r)));
        }
        self.finished = true;
        Ok(None)
    }
}

// ---------------------------------------------------------------------------------------------
// The replayer.
// ---------------------------------------------------------------------------------------------

enum Rule<T> {
    Share(Vec<(T, f64)>),
    Column,
    Size(Vec<(u64, T)>),
}

impl<T: Copy> Rule<T> {
    fn pick(&self, col: Option<T>, size: u64, rng: &mut Rng) -> T {
        match self {
            Rule::Share(v) => pick_weighted(v, rng),
            Rule::Column => col.expect("the parser resolves the column when the rule is Column"),
            Rule::Size(rules) => {
                rules
                    .iter()
                    .find(|r| size <= r.0)
                    .unwrap_or(rules.last().expect("non-empty"))
                    .1
            }
        }
    }
}

/// Statistics of one pass over a trace's window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassStats {
    /// Rows in the window.
    pub rows: u64,
    /// Offset of the first row from the window start, trace ns.
    pub first_ns: Nanos,
    /// Offset of the last row from the window start, trace ns.
    pub last_ns: Nanos,
    /// Sum of prompt tokens.
    pub prompt_tokens: u64,
    /// Sum of output tokens.
    pub output_tokens: u64,
}

impl PassStats {
    fn add(&mut self, off: Nanos, r: &RawRow) {
        if self.rows == 0 {
            self.first_ns = off;
        }
        self.rows += 1;
        self.last_ns = off;
        self.prompt_tokens = self.prompt_tokens.saturating_add(r.prompt as u64);
        self.output_tokens = self.output_tokens.saturating_add(r.output as u64);
    }

    /// The pass period: the next pass starts one mean inter-arrival gap after this pass's last row
    /// (1 s if the pass has one row or a single timestamp). `None` for an empty pass.
    pub fn period_ns(&self) -> Option<Nanos> {
        if self.rows == 0 {
            return None;
        }
        let gap = if self.rows >= 2 {
            (self.last_ns - self.first_ns) / (self.rows - 1)
        } else {
            0
        };
        let gap = if gap == 0 { FALLBACK_GAP_NS } else { gap };
        Some(self.last_ns.saturating_add(gap))
    }

    /// Mean arrival rate of a pass in trace time: rows / period, per second.
    pub fn rate_per_s(&self) -> Option<f64> {
        self.period_ns()
            .map(|p| self.rows as f64 / (p as f64 / 1e9))
    }
}

/// Replays a trace as a [`RequestSource`].
///
/// Time mapping: trace times are taken relative to the first row (after re-ordering); rows whose
/// offset is outside `window_ns = (start, end)` are dropped and the window start becomes time 0.
/// Pass `k` (of `repeat`) is shifted by `k` pass periods ([`PassStats::period_ns`]). The result is
/// divided by the speed-up (or by the factor that makes the mean rate `target_rate`), and arrivals
/// at or after the scenario's duration end the replay, as does `max_requests`.
pub struct TraceSource<'a> {
    name: String,
    format: TraceFormat,
    names: Names,
    open: Option<Opener<'a>>,
    pass: Option<Pass>,
    pass_index: u32,
    repeat: u32,
    window: (Nanos, Nanos),
    skip_bad: bool,
    scale: f64,
    first: PassStats,
    period: Option<Nanos>,
    slo_rule: Rule<SloId>,
    model_rule: Rule<ModelId>,
    payload: SizeDist,
    out_bytes_per_token: f64,
    rng: Rng,
    end_ns: Nanos,
    limit: u64,
    next_id: u64,
    malformed: u64,
    failed: u64,
    done: bool,
    /// The simulated second of the last request and the requests in it (the arrival-rate cap).
    rate_second: u64,
    rate_count: u64,
}

fn resolve_rule<T: Copy>(
    name: &str,
    what: &str,
    a: &Assign,
    shares: Vec<(T, f64)>,
    lookup: impl Fn(&str) -> Option<T>,
    column_ok: bool,
    format: TraceFormat,
) -> Result<Rule<T>, WorkloadError> {
    let err = |m: String| WorkloadError::new(name, 0, m);
    Ok(match a {
        Assign::ByShare => Rule::Share(shares),
        Assign::FromColumn => {
            if !column_ok {
                return Err(err(format!(
                    "{what}_assign = from_column, but {format:?} traces have no {what} column"
                )));
            }
            Rule::Column
        }
        Assign::BySize { rules } => {
            if rules.is_empty() {
                return Err(err(format!(
                    "{what}_assign = by_size needs at least one rule"
                )));
            }
            if rules.windows(2).any(|w| w[1].0 <= w[0].0) {
                return Err(err(format!(
                    "{what}_assign = by_size rules must have increasing max_tokens"
                )));
            }
            let mut out = Vec::with_capacity(rules.len());
            for (max, n) in rules {
                let id = lookup(n).ok_or_else(|| {
                    err(format!(
                        "{what}_assign = by_size names unknown {what} `{n}`"
                    ))
                })?;
                out.push((*max, id));
            }
            Rule::Size(out)
        }
    })
}

impl TraceSource<'static> {
    /// A replayer reading the trace once from `reader`. `name` (usually the path) appears in errors.
    ///
    /// `target_rate` and `repeat > 1` need more than one pass: use [`TraceSource::with_opener`].
    pub fn new(
        spec: &TraceSpec,
        name: &str,
        reader: Reader,
        world: &World,
    ) -> Result<Self, WorkloadError> {
        if spec.target_rate.is_some() || spec.repeat > 1 {
            return Err(WorkloadError::new(
                name,
                0,
                "target_rate and repeat > 1 read the trace more than once: use TraceSource::with_opener".into(),
            ));
        }
        let mut s = TraceSource::build(spec, name, None, world)?;
        s.start_pass(reader)?;
        Ok(s)
    }
}

impl<'a> TraceSource<'a> {
    /// A replayer that opens the trace with `open` once per pass (and once more first if
    /// `target_rate` is set: a pre-pass counts the rows of the window to find the time scale).
    pub fn with_opener(
        spec: &TraceSpec,
        name: &str,
        open: impl FnMut() -> std::io::Result<Reader> + 'a,
        world: &World,
    ) -> Result<Self, WorkloadError> {
        let mut s = TraceSource::build(spec, name, Some(Box::new(open)), world)?;
        if let Some(rate) = spec.target_rate {
            let r = s.reopen()?;
            let parser = Parser::new(s.format, &s.name, r, s.names.clone())?;
            let mut pass = Pass::new(parser, s.window, s.skip_bad);
            let mut st = PassStats::default();
            while let Some((off, r)) = pass.next()? {
                st.add(off, &r);
            }
            let natural = st.rate_per_s().ok_or_else(|| s.empty_error(&pass))?;
            s.scale = rate / natural;
        }
        let r = s.reopen()?;
        s.start_pass(r)?;
        Ok(s)
    }

    fn build(
        spec: &TraceSpec,
        name: &str,
        open: Option<Opener<'a>>,
        world: &World,
    ) -> Result<Self, WorkloadError> {
        let err = |m: String| WorkloadError::new(name, 0, m);
        if let Some(r) = spec.target_rate {
            if !(r.is_finite() && r > 0.0) {
                return Err(err(format!(
                    "target_rate must be a positive number, not {r}"
                )));
            }
        } else if !(spec.speedup.is_finite() && spec.speedup > 0.0) {
            return Err(err(format!(
                "speedup must be a positive number, not {}",
                spec.speedup
            )));
        }
        if spec.repeat == 0 {
            return Err(err("repeat must be at least 1".into()));
        }
        let window = spec.window_ns.unwrap_or((0, Nanos::MAX));
        if window.0 >= window.1 {
            return Err(err(format!(
                "the window's start ({} ns) is not before its end ({} ns)",
                window.0, window.1
            )));
        }
        let w = &world.scenario.workload;
        let payload = spec
            .payload
            .clone()
            .unwrap_or_else(|| w.payload_bytes.clone());
        check_size_dist(&payload).map_err(|m| err(format!("payload: {m}")))?;
        let fmt = spec.format;
        let slo_rule = resolve_rule(
            name,
            "slo",
            &spec.slo_assign,
            world
                .slos
                .iter()
                .enumerate()
                .map(|(i, s)| (i as SloId, s.share))
                .collect(),
            |n| world.slo_id(n),
            matches!(fmt, TraceFormat::Csv | TraceFormat::Jsonl),
            fmt,
        )?;
        let model_rule = resolve_rule(
            name,
            "model",
            &spec.model_assign,
            world.model_shares.clone(),
            |n| world.model_id(n),
            matches!(
                fmt,
                TraceFormat::Csv | TraceFormat::Jsonl | TraceFormat::Burstgpt
            ),
            fmt,
        )?;
        if let Rule::Size(rules) = &model_rule {
            for &(_, m) in rules {
                if !world.servers.iter().any(|s| s.hosts(m)) {
                    return Err(err(format!(
                        "model_assign = by_size names model `{}`, which no server hosts",
                        world.models[m as usize].name
                    )));
                }
            }
        }
        let names = Names {
            slos: world.slos.iter().map(|s| s.name.clone()).collect(),
            models: world.models.iter().map(|m| m.name.clone()).collect(),
            hosted: (0..world.models.len())
                .map(|m| world.servers.iter().any(|s| s.hosts(m as ModelId)))
                .collect(),
            want_slo: matches!(slo_rule, Rule::Column),
            want_model: matches!(model_rule, Rule::Column),
            out_bytes_per_token: w.output_bytes_per_token,
        };
        Ok(TraceSource {
            name: name.to_string(),
            format: fmt,
            names,
            open,
            pass: None,
            pass_index: 0,
            repeat: spec.repeat,
            window,
            skip_bad: spec.skip_bad_rows,
            scale: if spec.target_rate.is_some() {
                1.0
            } else {
                spec.speedup
            },
            first: PassStats::default(),
            period: None,
            slo_rule,
            model_rule,
            payload,
            out_bytes_per_token: w.output_bytes_per_token,
            rng: stream_rng(world.scenario.seed, stream::WORKLOAD),
            end_ns: world.scenario.duration_ns,
            limit: w.max_requests.unwrap_or(u64::MAX),
            next_id: 0,
            malformed: 0,
            failed: 0,
            done: false,
            rate_second: 0,
            rate_count: 0,
        })
    }

    fn reopen(&mut self) -> Result<Reader, WorkloadError> {
        let open = self.open.as_mut().expect("only called with an opener");
        open().map_err(|e| WorkloadError::new(&self.name, 0, format!("cannot open: {e}")))
    }

    fn start_pass(&mut self, r: Reader) -> Result<(), WorkloadError> {
        let parser = Parser::new(self.format, &self.name, r, self.names.clone())?;
        self.pass = Some(Pass::new(parser, self.window, self.skip_bad));
        Ok(())
    }

    fn empty_error(&self, pass: &Pass) -> WorkloadError {
        let skipped = pass.malformed + pass.failed;
        let why = if skipped > 0 {
            format!(
                " ({} malformed and {} failed-request rows were skipped)",
                pass.malformed, pass.failed
            )
        } else {
            String::new()
        };
        let what = if self.window == (0, Nanos::MAX) {
            "the trace has no rows"
        } else {
            "the trace has no rows in its window"
        };
        WorkloadError::new(&self.name, 0, format!("{what}{why}"))
    }

    /// Trace nanoseconds per replay nanosecond (the speed-up, or the one derived from `target_rate`).
    pub fn time_scale(&self) -> f64 {
        self.scale
    }

    /// Statistics of the first pass so far (complete once the first pass has been read).
    pub fn first_pass(&self) -> PassStats {
        self.first
    }

    /// Malformed rows skipped (first pass only; later passes re-read the same rows).
    pub fn malformed_rows(&self) -> u64 {
        self.malformed
    }

    /// Rows recording failed requests (BurstGPT rows with 0 response tokens), always skipped
    /// (first pass only).
    pub fn failed_rows(&self) -> u64 {
        self.failed
    }

    fn fail(&mut self, e: WorkloadError) -> Option<Result<Request, WorkloadError>> {
        self.done = true;
        self.pass = None;
        Some(Err(e))
    }

    fn next_row(&mut self) -> Result<Option<(Nanos, RawRow)>, WorkloadError> {
        loop {
            let Some(pass) = self.pass.as_mut() else {
                return Ok(None);
            };
            let got = pass.next();
            if self.pass_index == 0 {
                self.malformed = pass.malformed;
                self.failed = pass.failed;
            }
            if let Some((off, r)) = got? {
                if self.pass_index == 0 {
                    self.first.add(off, &r);
                }
                return Ok(Some((off, r)));
            }
            // End of a pass.
            if self.pass_index == 0 {
                let p = self.first.period_ns();
                if p.is_none() {
                    let e = self.empty_error(self.pass.as_ref().expect("set"));
                    return Err(e);
                }
                self.period = p;
            }
            self.pass = None;
            self.pass_index += 1;
            if self.pass_index >= self.repeat {
                return Ok(None);
            }
            let r = self.reopen()?;
            self.start_pass(r)?;
        }
    }
}

impl RequestSource for TraceSource<'_> {
    fn next_request(&mut self) -> Option<Result<Request, WorkloadError>> {
        if self.done || self.next_id >= self.limit {
            return None;
        }
        let (off, row) = match self.next_row() {
            Ok(Some(x)) => x,
            Ok(None) => {
                self.done = true;
                return None;
            }
            Err(e) => return self.fail(e),
        };
        let trace_ns = self.pass_index as u128 * self.period.unwrap_or(0) as u128 + off as u128;
        let arrival = if self.scale == 1.0 {
            trace_ns
        } else {
            let v = (trace_ns as f64 / self.scale).round();
            if v >= u64::MAX as f64 {
                u128::MAX
            } else {
                v as u128
            }
        };
        if arrival >= self.end_ns as u128 {
            self.done = true;
            self.pass = None;
            return None;
        }
        // At most `limits::MAX_ARRIVAL_RATE` requests in any simulated second: a speed-up typed
        // in the wrong unit would otherwise hold millions of pending requests in memory.
        let second = (arrival / SECOND as u128) as u64;
        if second != self.rate_second {
            self.rate_second = second;
            self.rate_count = 0;
        }
        self.rate_count += 1;
        if self.rate_count as f64 > crate::spec::limits::MAX_ARRIVAL_RATE {
            let how = if self.scale == 1.0 {
                String::new()
            } else {
                format!(" (times divided by {})", self.scale)
            };
            let e = WorkloadError::new(
                &self.name,
                row.line,
                format!(
                    "more than 1,000,000 requests arrive in simulated second {second}{how}, above the \
                     arrival-rate limit: lower `speedup` or `target_rate`"
                ),
            );
            return self.fail(e);
        }
        let size = row.prompt as u64 + row.output as u64;
        let r = &mut self.rng;
        let slo = self.slo_rule.pick(row.slo, size, r);
        let model = self.model_rule.pick(row.model, size, r);
        let input_bytes = match row.payload {
            Some(b) => b,
            None => sample_size(&self.payload, r).round().clamp(1.0, 1e15) as u64,
        };
        let output_bytes = (row.output as f64 * self.out_bytes_per_token).round() as u64;
        let id = self.next_id;
        self.next_id += 1;
        Some(Ok(Request {
            id,
            arrival_ns: arrival as Nanos,
            model,
            prompt_tokens: row.prompt,
            output_tokens: row.output,
            input_bytes,
            output_bytes,
            slo,
        }))
    }

    fn skipped(&self) -> u64 {
        self.malformed + self.failed
    }
}

// ---------------------------------------------------------------------------------------------
// Empirical size distributions and summaries.
// ---------------------------------------------------------------------------------------------

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
