//! The BurstGPT trace: CSV `Timestamp,Model,Request tokens,Response tokens,...` with times in
//! seconds; rows with 0 response tokens record failed requests and are skipped.

use super::WorkloadError;
use super::cells::parse_seconds_ns;
use super::csv::{CsvLayout, Header};

/// The columns of a BurstGPT trace (`Model` only when the model is read from the column).
pub(super) fn layout(h: &Header, want_model: bool) -> Result<CsvLayout, WorkloadError> {
    Ok(CsvLayout {
        time: h.need("timestamp", "Timestamp")?,
        parse_time: parse_seconds_ns,
        prompt: h.need("request tokens", "Request tokens")?,
        output: h.need("response tokens", "Response tokens")?,
        slo: None,
        model: if want_model {
            Some(h.need("model", "Model")?)
        } else {
            None
        },
        payload: None,
        nfields: h.cells.len(),
        burst: true,
    })
}
