//! The parser: reads a trace of any format row by row (CSV by the format's column layout, or
//! JSONL) into raw rows, telling malformed and failed-request rows apart.

use super::csv::{CsvLayout, CsvRows, Header, csv_row, norm};
use super::lines::{CsvReader, Lines};
use super::row::{Names, RawRow, check_output_bytes};
use super::{Reader, WorkloadError, azure, burstgpt, mooncake, plain};
use crate::spec::TraceFormat;

pub(super) enum Item {
    Row(RawRow),
    /// A malformed row (skippable).
    Bad(WorkloadError),
    /// A row recording a failed request (BurstGPT, 0 response tokens): always skipped.
    Failed,
}

pub(super) struct JsonlRows {
    pub(super) lines: Lines<Reader>,
    pub(super) mooncake: bool,
}

pub(super) enum Rows {
    Csv(CsvRows),
    Jsonl(JsonlRows),
}

pub(super) struct Parser {
    pub(super) name: String,
    pub(super) rows: Rows,
    pub(super) names: Names,
}

impl Parser {
    pub(super) fn new(
        format: TraceFormat,
        name: &str,
        reader: Reader,
        names: Names,
    ) -> Result<Parser, WorkloadError> {
        let rows = match format {
            TraceFormat::Mooncake | TraceFormat::Jsonl => Rows::Jsonl(JsonlRows {
                lines: Lines::new(reader),
                mooncake: format == TraceFormat::Mooncake,
            }),
            TraceFormat::Azure | TraceFormat::Burstgpt | TraceFormat::Csv => {
                // The header is the first line that is not blank.
                let mut rec = CsvReader::new(reader);
                let line = match rec.advance() {
                    Err((row, m)) => {
                        return Err(WorkloadError::new(
                            name,
                            row,
                            format!("cannot read the header: {m}"),
                        ));
                    }
                    Ok(None) => 1,
                    Ok(Some(l)) => l,
                };
                let h = Header {
                    cells: rec.iter().map(norm).collect(),
                    line,
                    name,
                    format,
                };
                let lay: CsvLayout = match format {
                    TraceFormat::Azure => azure::layout(&h)?,
                    TraceFormat::Burstgpt => burstgpt::layout(&h, names.want_model)?,
                    _ => plain::csv_layout(&h, &names)?,
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
    pub(super) fn next(&mut self) -> Result<Option<Item>, WorkloadError> {
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
                    mooncake::mooncake_row(text, line)
                } else {
                    plain::jsonl_row(text, names, line)
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
