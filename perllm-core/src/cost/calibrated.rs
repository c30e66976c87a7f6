//! The roofline plus per-sequence attention terms, for engines calibrated on their own steps.

use super::{CostModel, Roofline, StepShape};
use crate::spec::{Hardware, ModelSpec, Nanos};

/// Core's [`Roofline`] plus three terms that a step's sequences add to it: `decode_seq_ns` for
/// each decoding sequence (the fixed part of its attention: gathering its cache, its small
/// per-sequence products), `prefill_seq_ns` for each prefilling sequence (a prompt's own
/// attention: its causal mask and products) and `kv_token_ns` for each KV-cache token the step's
/// attention reads (the part growing with context):
///
/// `step = roofline(shape) + decode_seqs x decode_seq_ns + prefill_seqs x prefill_seq_ns
///         + kv_tokens x kv_token_ns`.
///
/// The terms are added to, not overlapped with, the roofline's time, and they do not scale the
/// prefill: measured on the CPU engine (docs/fidelity.md), a decode step grows with its batch
/// and context by about this much whatever the prompt tokens next to it, where a multiplicative
/// batch interference (`contention`) over-priced mixed steps and under-priced large decodes.
/// With the terms 0 it prices exactly like the roofline. `perllm calibrate` fits them; the
/// built-in `roofline` cost model takes them as config (`decode_seq_ns`, `prefill_seq_ns`,
/// `kv_token_ns`).
#[derive(Clone, Debug, PartialEq)]
pub struct Calibrated {
    /// The roofline part (its fixed per-step overhead included).
    pub roofline: Roofline,
    /// Time per decoding sequence, ns.
    pub decode_seq_ns: f64,
    /// Time per prefilling sequence (a prompt or a chunk of one), ns.
    pub prefill_seq_ns: f64,
    /// Time per KV-cache token read by the step, ns.
    pub kv_token_ns: f64,
}

impl Calibrated {
    fn extra(&self, s: &StepShape) -> Nanos {
        (s.decode_seqs as f64 * self.decode_seq_ns
            + s.prefill_seqs as f64 * self.prefill_seq_ns
            + s.kv_tokens as f64 * self.kv_token_ns
            + 0.5) as Nanos
    }
}

impl CostModel for Calibrated {
    fn name(&self) -> &str {
        "roofline"
    }

    fn step_ns(&self, hw: &Hardware, count: u32, model: &ModelSpec, s: &StepShape) -> Nanos {
        if s.prefill_tokens == 0 && s.decode_seqs == 0 {
            return 0;
        }
        self.roofline
            .step_ns(hw, count, model, s)
            .saturating_add(self.extra(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Precision;

    #[test]
    fn adds_per_sequence_and_per_token_terms_to_the_roofline() {
        let hw = crate::spec::Hardware {
            name: "cpu".into(),
            kind: crate::spec::HardwareKind::Cpu,
            compute_flops: 1e11,
            memory_bytes: 1 << 34,
            memory_bandwidth_bytes_per_s: 1e10,
            power_idle_w: 10.0,
            power_busy_w: 30.0,
            compute_efficiency: None,
            bandwidth_efficiency: None,
            contention: None,
        };
        let model = ModelSpec {
            name: "m".into(),
            params: 1e9,
            precision: Precision::Fp16,
            kv_bytes_per_token: 1 << 10,
        };
        let r = Roofline::default();
        let c = Calibrated {
            roofline: r.clone(),
            decode_seq_ns: 1000.0,
            prefill_seq_ns: 5000.0,
            kv_token_ns: 10.0,
        };
        let dec = StepShape {
            decode_seqs: 4,
            kv_tokens: 400,
            ..StepShape::default()
        };
        assert_eq!(
            c.step_ns(&hw, 1, &model, &dec),
            r.step_ns(&hw, 1, &model, &dec) + 4 * 1000 + 400 * 10
        );
        let pre = StepShape {
            prefill_tokens: 100,
            prefill_seqs: 1,
            ..StepShape::default()
        };
        assert_eq!(
            c.step_ns(&hw, 1, &model, &pre),
            r.step_ns(&hw, 1, &model, &pre) + 5000
        );
        assert_eq!(c.step_ns(&hw, 1, &model, &StepShape::default()), 0);
        let plain = Calibrated {
            roofline: r.clone(),
            decode_seq_ns: 0.0,
            prefill_seq_ns: 0.0,
            kv_token_ns: 0.0,
        };
        assert_eq!(
            plain.step_ns(&hw, 1, &model, &dec),
            r.step_ns(&hw, 1, &model, &dec)
        );
    }
}
