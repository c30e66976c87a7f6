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
///         + [prefill_tokens > 0] x prefill_step_ns + kv_tokens x kv_token_ns`.
///
/// `prefill_step_ns` is what a step with prompt tokens costs beyond the roofline whatever the
/// number of prompts (measured on the CPU engine: four prompts of 30 tokens next to 12 decodes
/// cost about what one prompt of 120 tokens next to 15 decodes does, so a per-prompt term
/// fitted on steps of one prompt over-priced steps where several join at once).
///
/// The terms are added to, not overlapped with, the roofline's time, and they do not scale the
/// prefill: measured on the CPU engine (docs/fidelity.md), a decode step grows with its batch
/// and context by about this much whatever the prompt tokens next to it, where a multiplicative
/// batch interference (`contention`) over-priced mixed steps and under-priced large decodes.
/// With the terms 0 it prices exactly like the roofline. `perllm calibrate` fits them; the
/// built-in `roofline` cost model takes them as config (`decode_seq_ns`, `prefill_seq_ns`,
/// `kv_token_ns`, `one_token_step_ns`, `prefill_step_ns`).
///
/// `one_token_step_ns`, when above 0, prices a step that computes exactly one token (one
/// decoding sequence and no prompt, or a one-token prompt alone) on its own:
/// `step = one_token_step_ns + kv_tokens x kv_token_ns`. Matrix kernels take a different path
/// for one row (a matrix-vector product) than for two or more (a GEMM that packs the weights on
/// every call): measured on the CPU engine (docs/fidelity.md), a one-sequence decode step took
/// 12.9 ms and a two-sequence one 28.4 ms, a cliff no model smooth in the step's tokens follows.
/// 0 (the default) prices such steps like any other.
///
/// `rows_ns`, when not empty, is a measured table of what a step's matrix work costs by its
/// rows (the tokens it computes: `prefill_tokens + decode_seqs`), and replaces the roofline
/// (its overhead, compute and memory times) and the one-token price:
///
/// `step = rows_table(prefill_tokens + decode_seqs) + decode_seqs x decode_seq_ns
///         + prefill_seqs x prefill_seq_ns + [prefill_tokens > 0] x prefill_step_ns
///         + kv_tokens x kv_token_ns`.
///
/// The table is knots `(rows, ns)` with rows strictly increasing and ns not decreasing; between
/// two knots it is linear, below the first knot it is the first knot's value, beyond the last it
/// goes on with the last segment's slope. Measured on the CPU engine (docs/fidelity.md), the
/// matrix kernels' cost moves in steps with the row count (12.9 ms for one row, about 33 ms for
/// 2-8 rows, then growing), which no form smooth in the tokens follows; the table reads it from
/// the profile. Empty (the default): the roofline as above.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibrated {
    /// The roofline part (its fixed per-step overhead included).
    pub roofline: Roofline,
    /// Time per decoding sequence, ns.
    pub decode_seq_ns: f64,
    /// Time per prefilling sequence (a prompt or a chunk of one), ns.
    pub prefill_seq_ns: f64,
    /// Time per step with prompt tokens, whatever their sequences, ns.
    pub prefill_step_ns: f64,
    /// Time per KV-cache token read by the step, ns.
    pub kv_token_ns: f64,
    /// Time of a step computing exactly one token, KV reads excluded, ns; 0: not separate.
    pub one_token_step_ns: f64,
    /// The step's matrix work by rows, `(rows, ns)` knots (see above); empty: the roofline.
    pub rows_ns: Vec<(u64, f64)>,
}

/// The value at `rows` of a piecewise-linear table of `(rows, ns)` knots (rows increasing):
/// linear between knots, the first knot's value below the first, the last segment's slope
/// beyond the last (a one-knot table is constant). `perllm calibrate` fits such tables; an
/// empty table is 0.
pub fn rows_table_ns(knots: &[(u64, f64)], rows: f64) -> f64 {
    let Some(&(r0, v0)) = knots.first() else {
        return 0.0;
    };
    if rows <= r0 as f64 {
        return v0;
    }
    let i = knots.partition_point(|k| (k.0 as f64) < rows);
    let (a, b) = if i < knots.len() {
        (knots[i - 1], knots[i])
    } else if knots.len() >= 2 {
        (knots[knots.len() - 2], knots[knots.len() - 1])
    } else {
        return v0;
    };
    let t = (rows - a.0 as f64) / (b.0 - a.0) as f64;
    a.1 + t * (b.1 - a.1)
}

impl Calibrated {
    fn extra(&self, s: &StepShape) -> Nanos {
        (s.decode_seqs as f64 * self.decode_seq_ns
            + s.prefill_seqs as f64 * self.prefill_seq_ns
            + if s.prefill_tokens > 0 {
                self.prefill_step_ns
            } else {
                0.0
            }
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
        if !self.rows_ns.is_empty() {
            let rows = (s.prefill_tokens + s.decode_seqs as u64) as f64;
            let base = rows_table_ns(&self.rows_ns, rows);
            return (base + 0.5) as Nanos + self.extra(s);
        }
        if self.one_token_step_ns > 0.0 && s.prefill_tokens + s.decode_seqs as u64 == 1 {
            return (self.one_token_step_ns + s.kv_tokens as f64 * self.kv_token_ns + 0.5) as Nanos;
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
            prefill_step_ns: 0.0,
            kv_token_ns: 10.0,
            one_token_step_ns: 0.0,
            rows_ns: Vec::new(),
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
            prefill_step_ns: 0.0,
            kv_token_ns: 0.0,
            one_token_step_ns: 0.0,
            rows_ns: Vec::new(),
        };
        assert_eq!(
            plain.step_ns(&hw, 1, &model, &dec),
            r.step_ns(&hw, 1, &model, &dec)
        );
        // A separate one-token price: one decoding sequence, or a one-token prompt alone.
        let one = Calibrated {
            one_token_step_ns: 7000.0,
            ..c.clone()
        };
        let dec1 = StepShape {
            decode_seqs: 1,
            kv_tokens: 50,
            ..StepShape::default()
        };
        assert_eq!(one.step_ns(&hw, 1, &model, &dec1), 7000 + 50 * 10);
        let pre1 = StepShape {
            prefill_tokens: 1,
            prefill_seqs: 1,
            ..StepShape::default()
        };
        assert_eq!(one.step_ns(&hw, 1, &model, &pre1), 7000);
        // Two tokens or more: the general form, as without the term.
        for s in [dec, pre] {
            assert_eq!(
                one.step_ns(&hw, 1, &model, &s),
                c.step_ns(&hw, 1, &model, &s)
            );
        }
        let dec2 = StepShape {
            decode_seqs: 1,
            prefill_tokens: 3,
            prefill_seqs: 1,
            kv_tokens: 50,
        };
        assert_eq!(
            one.step_ns(&hw, 1, &model, &dec2),
            c.step_ns(&hw, 1, &model, &dec2)
        );
        // The per-step prompt time: once per step with prompt tokens, not per prompt.
        let ps = Calibrated {
            prefill_step_ns: 3000.0,
            ..c.clone()
        };
        let two = StepShape {
            prefill_tokens: 100,
            prefill_seqs: 2,
            ..StepShape::default()
        };
        assert_eq!(
            ps.step_ns(&hw, 1, &model, &two),
            c.step_ns(&hw, 1, &model, &two) + 3000
        );
        assert_eq!(
            ps.step_ns(&hw, 1, &model, &dec),
            c.step_ns(&hw, 1, &model, &dec)
        );
    }

    #[test]
    fn a_rows_table_replaces_the_roofline_and_interpolates() {
        let knots = [(1u64, 10.0), (2, 30.0), (8, 36.0), (32, 60.0)];
        assert_eq!(rows_table_ns(&[], 5.0), 0.0);
        assert_eq!(rows_table_ns(&knots, 1.0), 10.0);
        assert_eq!(rows_table_ns(&knots, 0.5), 10.0);
        assert_eq!(rows_table_ns(&knots, 2.0), 30.0);
        assert_eq!(rows_table_ns(&knots, 5.0), 33.0);
        assert_eq!(rows_table_ns(&knots, 20.0), 48.0);
        assert_eq!(rows_table_ns(&knots, 32.0), 60.0);
        // Beyond the last knot: the last segment's slope (1 ns per row).
        assert_eq!(rows_table_ns(&knots, 40.0), 68.0);
        assert_eq!(rows_table_ns(&[(4, 7.0)], 40.0), 7.0);
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
        let c = Calibrated {
            roofline: Roofline::default(),
            decode_seq_ns: 1000.0,
            prefill_seq_ns: 5000.0,
            prefill_step_ns: 300.0,
            kv_token_ns: 10.0,
            // Ignored with a table: the table's one-row knot prices one-token steps.
            one_token_step_ns: 1e9,
            rows_ns: vec![(1, 1e6), (2, 3e6), (8, 3.6e6), (32, 6e6)],
        };
        let price = |prefill_tokens, prefill_seqs, decode_seqs, kv_tokens| {
            c.step_ns(
                &hw,
                1,
                &model,
                &StepShape {
                    prefill_tokens,
                    prefill_seqs,
                    decode_seqs,
                    kv_tokens,
                },
            )
        };
        assert_eq!(price(0, 0, 1, 50), 1_000_000 + 1000 + 500);
        assert_eq!(price(0, 0, 4, 400), 3_200_000 + 4 * 1000 + 4000);
        // A chunk of 28 prompt tokens next to 4 decodes: 32 rows.
        assert_eq!(price(28, 1, 4, 400), 6_000_000 + 4000 + 5000 + 300 + 4000);
        assert_eq!(price(40, 2, 0, 0), 6_800_000 + 10_000 + 300);
        assert_eq!(price(0, 0, 0, 0), 0);
    }
}
