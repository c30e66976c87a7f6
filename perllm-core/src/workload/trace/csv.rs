//! The CSV formats' shared machinery: the header (found columns, missing-column errors), the column
//! layout each format builds from it, and reading one row by a layout.

use super::cells::{parse_u64, payload_bytes, tokens};
use super::lines::CsvReader;
use super::row::{Names, RawRow};
use super::{Reader, WorkloadError};
use crate::spec::{Nanos, TraceFormat};

pub(super) struct CsvLayout {
    pub(super) time: usize,
    /// Parses the time column (calendar timestamps or seconds).
    pub(super) parse_time: fn(&str) -> Result<Nanos, String>,
    pub(super) prompt: usize,
    pub(super) output: usize,
    pub(super) slo: Option<usize>,
    pub(super) model: Option<usize>,
    pub(super) payload: Option<usize>,
    pub(super) nfields: usize,
    pub(super) burst: bool,
}

pub(super) struct CsvRows {
    pub(super) rec: CsvReader<Reader>,
    pub(super) lay: CsvLayout,
}

/// A CSV trace's header: its cells (see [`norm`]) and where it is, for errors.
pub(super) struct Header<'a> {
    pub(super) cells: Vec<String>,
    pub(super) line: u64,
    pub(super) name: &'a str,
    pub(super) format: TraceFormat,
}

impl Header<'_> {
    /// The column called `n`.
    pub(super) fn find(&self, n: &str) -> Option<usize> {
        self.cells.iter().position(|h| h == n)
    }
    /// The column called `n` (`shown` as the format spells it), or an error naming what was found.
    pub(super) fn need(&self, n: &str, shown: &str) -> Result<usize, WorkloadError> {
        self.find(n).ok_or_else(|| {
            self.err(format!(
                "the header has no `{shown}` column (found: {}); is this a {:?} trace?",
                if self.cells.iter().all(|h| h.is_empty()) {
                    "nothing".to_string()
                } else {
                    self.cells.join(", ")
                },
                self.format
            ))
        })
    }
    /// An error about the header line.
    pub(super) fn err(&self, m: String) -> WorkloadError {
        WorkloadError::new(self.name, self.line, m)
    }
    /// The layout of a format with these time, prompt and output columns (each `(n, shown)` as
    /// [`Header::need`] takes it, in that order) and no optional column.
    pub(super) fn layout(
        &self,
        [time, prompt, output]: [(&str, &str); 3],
        parse_time: fn(&str) -> Result<Nanos, String>,
    ) -> Result<CsvLayout, WorkloadError> {
        Ok(CsvLayout {
            time: self.need(time.0, time.1)?,
            parse_time,
            prompt: self.need(prompt.0, prompt.1)?,
            output: self.need(output.0, output.1)?,
            slo: None,
            model: None,
            payload: None,
            nfields: self.cells.len(),
            burst: false,
        })
    }
}

/// A header cell: without a UTF-8 byte-order mark and surrounding whitespace, in lower case.
pub(crate) fn norm(h: &[u8]) -> String {
    let h = h.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(h);
    String::from_utf8_lossy(h).trim().to_ascii_lowercase()
}

pub(super) fn field<'r>(
    rec: &'r CsvReader<Reader>,
    i: usize,
    what: &str,
) -> Result<&'r str, String> {
    let b = rec.get(i).ok_or_else(|| format!("missing {what}"))?;
    std::str::from_utf8(b).map_err(|_| format!("{what} is not valid UTF-8"))
}

/// `Ok(None)` is a failed-request row (BurstGPT with 0 response tokens).
pub(super) fn csv_row(
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
    let t = (lay.parse_time)(ts).map_err(|m| format!("timestamp: {m}"))?;
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
