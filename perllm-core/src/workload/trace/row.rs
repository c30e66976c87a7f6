//! A row of any format as the parsers produce it, before time mapping and assignment, and the
//! scenario names that resolve its `slo` / `model` cells.

use super::MAX_PAYLOAD_BYTES;
use crate::spec::Nanos;
use crate::world::{ModelId, SloId};

/// Names used to resolve `slo` / `model` columns.
#[derive(Clone, Debug)]
pub(super) struct Names {
    pub(super) slos: Vec<String>,
    pub(super) models: Vec<String>,
    pub(super) hosted: Vec<bool>,
    pub(super) want_slo: bool,
    pub(super) want_model: bool,
    /// The workload's `output_bytes_per_token` (0 when only the token counts matter).
    pub(super) out_bytes_per_token: f64,
}

impl Names {
    pub(super) fn none() -> Self {
        Names {
            slos: vec![],
            models: vec![],
            hosted: vec![],
            want_slo: false,
            want_model: false,
            out_bytes_per_token: 0.0,
        }
    }
    pub(super) fn slo(&self, s: &str) -> Result<SloId, String> {
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
    pub(super) fn model(&self, s: &str) -> Result<ModelId, String> {
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
pub(super) struct RawRow {
    /// Trace time (absolute as given by the file).
    pub(super) t: Nanos,
    pub(super) prompt: u32,
    pub(super) output: u32,
    pub(super) slo: Option<SloId>,
    pub(super) model: Option<ModelId>,
    pub(super) payload: Option<u64>,
    pub(super) line: u64,
}

/// The row-level byte rule that needs the scenario: output tokens x `output_bytes_per_token`.
pub(super) fn check_output_bytes(r: &RawRow, names: &Names) -> Result<(), String> {
    let bytes = r.output as f64 * names.out_bytes_per_token;
    if bytes > MAX_PAYLOAD_BYTES as f64 {
        return Err(format!(
            "{} output tokens x {} output_bytes_per_token = {bytes:.3e} bytes, more than the largest supported {MAX_PAYLOAD_BYTES} (1 TiB)",
            r.output, names.out_bytes_per_token
        ));
    }
    Ok(())
}
