//! `model NAME { .. }` blocks.

use super::*;
use crate::ast::*;
use crate::units::Dim;
use perllm_core::spec::*;

/// Keys of a `model` block.
pub const MODEL_KEYS: &[&str] = &["params", "precision", "kv_per_token"];

/// Weight precisions by name.
const PRECISIONS: [(&str, Precision); 5] = [
    ("fp32", Precision::Fp32),
    ("fp16", Precision::Fp16),
    ("bf16", Precision::Bf16),
    ("int8", Precision::Int8),
    ("int4", Precision::Int4),
];

impl Lowerer {
    pub(super) fn model(&mut self, it: &Item, names: &mut Names) -> Option<ModelSpec> {
        let Named { id, fresh, f, .. } =
            self.named_block(it, &mut names.models, "model", "model", MODEL_KEYS)?;
        let params = self.required(&f, "params", |l, e| {
            l.positive_quantity(e, Dim::Count, "the parameter count")
        });
        let precision = self.required(&f, "precision", |l, e| {
            l.choice(e, "precision", &PRECISIONS)
        });
        let kv = self.required(&f, "kv_per_token", |l, e| {
            l.positive_bytes(e, "the KV cache per token")
        });
        if !fresh {
            return None;
        }
        Some(ModelSpec {
            name: id.name,
            params: params?,
            precision: precision?,
            kv_bytes_per_token: kv?,
        })
    }
}
