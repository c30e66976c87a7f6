//! The `sim` block: simulator parameters.

use super::*;
use crate::ast::*;
use crate::units::Dim;
use perllm_core::spec::*;

/// Keys of the `sim` block.
pub const SIM_KEYS: &[&str] = &[
    "step_noise",
    "contention",
    "max_defers",
    "drain",
    "batching",
    "chunk_tokens",
    "max_memory",
];

/// Batching choices by name (see `perllm_core::spec::BatchingKind`).
pub(super) const BATCHING_KINDS: [(&str, BatchingKind); 3] = [
    ("prefill_first", BatchingKind::PrefillFirst),
    ("mixed", BatchingKind::Mixed),
    ("chunked", BatchingKind::Chunked),
];

impl Lowerer {
    pub(super) fn sim(&mut self, it: &Item) -> Option<SimParams> {
        let f = self.block_fields(it, Some(SIM_KEYS));
        self.index_entries("sim", &it.body);
        let d = SimParams::default();
        let step_noise = self.optional(&f, "step_noise", d.step_noise, |l, e| {
            l.fraction(e, "step noise", Interval::OpenHigh)
        });
        let contention = self.optional(&f, "contention", d.contention, |l, e| {
            l.non_negative_quantity(e, Dim::Fraction, "contention")
        });
        let max_defers = self.optional(&f, "max_defers", d.max_defers, |l, e| l.u32(e));
        let drain_ns = self.optional(&f, "drain", d.drain_ns, |l, e| {
            l.positive_time(e, "the drain limit").map(Some)
        });
        let batching = self.optional(&f, "batching", d.batching, |l, e| {
            l.choice(e, "batching", &BATCHING_KINDS)
        });
        let chunk_tokens = self.optional(&f, "chunk_tokens", d.chunk_tokens, |l, e| {
            l.positive_u32(e, "chunk_tokens")
        });
        // The scenario's memory limit (perllm_core::footprint): a size, or `none` for no limit.
        let max_memory_bytes = self.optional(&f, "max_memory", d.max_memory_bytes, |l, e| {
            if matches!(&e.kind, ExprKind::Path(p) if p.len() == 1 && p[0].name == "none") {
                return Some(Some(u64::MAX));
            }
            l.positive_bytes(e, "max_memory").map(Some)
        });
        Some(SimParams {
            step_noise: step_noise?,
            contention: contention?,
            max_defers: max_defers?,
            drain_ns: drain_ns?,
            batching: batching?,
            chunk_tokens: chunk_tokens?,
            max_memory_bytes: max_memory_bytes?,
        })
    }
}
