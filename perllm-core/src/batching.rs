//! Resolution and validation of the engine choices a server inherits from the scenario-wide
//! `sim` block: how prompts join the batch ([`Batching`]) and batch interference (`contention`).

use crate::spec::{Batching, BatchingKind, Hardware, ServerSpec, SimParams, limits};

/// Checks a contention value (`what` names the field in messages).
pub(crate) fn check_contention(what: &str, v: f64, e: &mut impl FnMut(String, String)) {
    if !(v.is_finite() && v >= 0.0) {
        e(what.to_string(), "must be non-negative".into());
    } else if v > limits::MAX_CONTENTION {
        e(
            what.to_string(),
            format!(
                "{} is above the limit of 10 (each extra sequence in a batch would add {} times the step's estimate)",
                crate::world::fmt_num(v),
                crate::world::fmt_num(v)
            ),
        );
    }
}

/// The contention of `hw`: its own, else the scenario-wide default.
pub(crate) fn contention_of(hw: &Hardware, sim: &SimParams) -> f64 {
    hw.contention.unwrap_or(sim.contention)
}

/// Resolves server `s`'s batching (its own fields over the `sim` defaults); `p` is the server's
/// path in messages (`server[edge1]`).
pub(crate) fn resolve(
    s: &ServerSpec,
    sim: &SimParams,
    p: &str,
    e: &mut impl FnMut(String, String),
) -> Batching {
    let kind = s.batching.unwrap_or(sim.batching);
    if s.chunk_tokens.is_some() && kind != BatchingKind::Chunked {
        e(
            format!("{p}.chunk_tokens"),
            format!(
                "applies only to `batching = chunked` (this server's batching is `{}`); \
                 `sim {{ chunk_tokens = N }}` sets the budget of every chunked server, whatever \
                 the batching a sweep gives them",
                kind.as_str()
            ),
        );
    }
    match kind {
        BatchingKind::PrefillFirst => Batching::PrefillFirst,
        BatchingKind::Mixed => Batching::Mixed,
        BatchingKind::Chunked => {
            let (chunk_tokens, field) = match s.chunk_tokens {
                Some(c) => (c, format!("{p}.chunk_tokens")),
                None => (sim.chunk_tokens, "sim.chunk_tokens".to_string()),
            };
            if chunk_tokens < s.max_batch.max(1) {
                e(
                    field,
                    format!(
                        "a chunked step of server `{}` holds one token of each of up to {} running sequences \
                         (max_batch) plus prefill: the budget must be at least max_batch, not {chunk_tokens}",
                        s.name, s.max_batch
                    ),
                );
            }
            Batching::Chunked { chunk_tokens }
        }
    }
}
