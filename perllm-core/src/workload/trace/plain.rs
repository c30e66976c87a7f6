//! perllm's own trace formats: plain CSV with a header (`arrival_s,prompt_tokens,output_tokens`
//! and optional `slo`, `model`, `payload_bytes`) and the same fields as JSONL.

use super::WorkloadError;
use super::cells::{parse_seconds_ns, payload_bytes, seconds_to_ns, tokens};
use super::csv::{CsvLayout, Header};
use super::row::{Names, RawRow};

/// The columns of a plain CSV trace; unknown and repeated columns are errors, and so is a missing
/// `slo` / `model` column the assignment rules read.
pub(super) fn csv_layout(h: &Header, names: &Names) -> Result<CsvLayout, WorkloadError> {
    const KNOWN: [&str; 6] = [
        "arrival_s",
        "prompt_tokens",
        "output_tokens",
        "slo",
        "model",
        "payload_bytes",
    ];
    let header = &h.cells;
    if let Some(u) = header.iter().find(|c| !KNOWN.contains(&c.as_str())) {
        return Err(h.err(format!(
            "unknown column `{u}` (known: {})",
            KNOWN.join(", ")
        )));
    }
    for (i, c) in header.iter().enumerate() {
        if header[..i].contains(c) {
            return Err(h.err(format!("column `{c}` appears twice")));
        }
    }
    let slo = h.find("slo");
    let model = h.find("model");
    if names.want_slo && slo.is_none() {
        return Err(h.err("slo_assign = from_column but the header has no `slo` column".into()));
    }
    if names.want_model && model.is_none() {
        return Err(h.err("model_assign = from_column but the header has no `model` column".into()));
    }
    let layout = h.layout(
        [
            ("arrival_s", "arrival_s"),
            ("prompt_tokens", "prompt_tokens"),
            ("output_tokens", "output_tokens"),
        ],
        parse_seconds_ns,
    )?;
    Ok(CsvLayout {
        slo,
        model,
        payload: h.find("payload_bytes"),
        ..layout
    })
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PlainLine {
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

pub(super) fn jsonl_row(buf: &[u8], names: &Names, line: u64) -> Result<RawRow, String> {
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
