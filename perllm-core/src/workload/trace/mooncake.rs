//! The Mooncake trace: JSONL `{"timestamp": ms, "input_length": .., "output_length": ..}`.

use super::cells::{seconds_to_ns, tokens};
use super::row::RawRow;

#[derive(serde::Deserialize)]
pub(super) struct MooncakeLine {
    timestamp: serde_json::Number,
    input_length: u64,
    output_length: u64,
}

pub(super) fn mooncake_row(buf: &[u8], line: u64) -> Result<RawRow, String> {
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
