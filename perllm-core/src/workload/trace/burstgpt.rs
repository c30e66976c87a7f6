//! The BurstGPT trace: CSV `Timestamp,Model,Request tokens,Response tokens,...` with times in
//! seconds; rows with 0 response tokens record failed requests and are skipped.

use super::WorkloadError;
use super::cells::parse_seconds_ns;
use super::csv::{CsvLayout, Header};

/// The columns of a BurstGPT trace (`Model` only when the model is read from the column).
pub(super) fn layout(h: &Header, want_model: bool) -> Result<CsvLayout, WorkloadError> {
    let layout = h.layout(
        [
            ("timestamp", "Timestamp"),
            ("request tokens", "Request tokens"),
            ("response tokens", "Response tokens"),
        ],
        parse_seconds_ns,
    )?;
    Ok(CsvLayout {
        model: if want_model {
            Some(h.need("model", "Model")?)
        } else {
            None
        },
        burst: true,
        ..layout
    })
}
