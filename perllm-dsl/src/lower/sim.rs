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
    /// The scenario's memory limit (`sim.max_memory`, perllm_core::footprint) checked from the
    /// server families' ranges, before any family is expanded: a `server edge[1..1000000]` over
    /// the limit is refused at once instead of after building a million servers (and, for the
    /// located error, lowering the file twice: 1.7 GB and a minute in a debug build). `false`
    /// after reporting the error; `Scenario::build` checks the same estimate again.
    pub(super) fn memory_fits(
        &mut self,
        servers: &[&Item],
        models: usize,
        slos: usize,
        sim: Option<&Item>,
    ) -> bool {
        let members = |it: &Item| match it.name.as_ref().and_then(|n| n.range) {
            Some((lo, hi, _)) => hi.saturating_sub(lo).saturating_add(1),
            None => 1,
        };
        let total = servers
            .iter()
            .fold(0u64, |t, it| t.saturating_add(members(it)));
        let fp = perllm_core::footprint::Footprint::for_counts(total, models, slos as u64);
        if fp.bytes <= perllm_core::footprint::DEFAULT_MEMORY_LIMIT && sim.is_none() {
            return true;
        }
        // The file's limit: lower the `sim` block quietly (it is lowered again, with its
        // diagnostics, after the servers).
        let limit = match sim {
            Some(it) => {
                let before = self.diags.len();
                let got = self.sim(it);
                self.diags.truncate(before);
                match got {
                    Some(p) => p.max_memory_bytes,
                    None => return true,
                }
            }
            None => None,
        };
        let Err(m) = fp.check(limit.unwrap_or(perllm_core::footprint::DEFAULT_MEMORY_LIMIT)) else {
            return true;
        };
        let largest = servers.iter().max_by_key(|it| members(it));
        let mut d = DiagBuilder::error(codes::SCENARIO, format!("sim.max_memory: {m}"));
        if let Some(n) = largest.and_then(|it| it.name.as_ref()) {
            d = d.label(
                n.range.map_or(n.span, |r| r.2),
                format!("{} servers", members(largest.unwrap())),
            );
        }
        if let Some(e) =
            sim.and_then(|it| it.body.entries.iter().find(|e| e.key.name == "max_memory"))
        {
            d = d.label(e.value.span, "the limit");
        }
        self.err(d);
        false
    }

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
