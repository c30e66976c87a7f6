//! The analytic step-time model the simulator uses (core's roofline plus per-sequence attention
//! terms, `perllm_core::cost::Calibrated`), fitting its parameters, and error statistics.
//!
//! `step = overhead + max(2 x P x (prefill + decode) / F, (W + kv x k) / B) + d x s + p x q + kv x a`
//! with `P` the parameters a token multiplies, `W` their bytes, `k` KV bytes per token, `d` the
//! decoding sequences, `p` the prefilling ones and `kv` the KV tokens they read; fitted:
//! `overhead`, effective compute `F` (FLOP/s), effective memory bandwidth `B` (bytes/s), the time
//! `s` per decoding sequence, `q` per prefilling sequence and `a` per KV token. A step that
//! computes exactly one token has its own price, `one + kv x a` (matrix kernels take a
//! matrix-vector path for one row: docs/fidelity.md). (Until calibration version 2 the
//! per-sequence terms were a multiplicative batch interference `1 + c x (n - 1)`; the engine's
//! step logs showed it over-pricing mixed steps and under-pricing large decodes.)

use serde::Serialize;

/// The model's parameters.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Params {
    /// Fixed time per step, ns.
    pub overhead_ns: f64,
    /// Effective compute, FLOP/s.
    pub flops: f64,
    /// Effective memory bandwidth, bytes/s.
    pub bandwidth: f64,
    /// Time per decoding sequence, ns.
    pub decode_seq_ns: f64,
    /// Time per prefilling sequence, ns.
    pub prefill_seq_ns: f64,
    /// Time per step with prompt tokens, whatever their sequences, ns (0 when the data cannot
    /// tell it from the per-prefilling-sequence time: no step with two prompts or more).
    pub prefill_step_ns: f64,
    /// Time per KV-cache token the step reads, ns.
    pub kv_token_ns: f64,
    /// Time of a step computing exactly one token, KV reads excluded, ns (0: priced like any
    /// step, when the data has no such step).
    pub one_token_ns: f64,
    /// The step's matrix work by rows (`(rows, ns)` knots, [`super::rows`]); when not empty it
    /// replaces the overhead, the compute and memory times and the one-token price (empty: the
    /// smooth form above).
    pub rows_ns: Vec<(u64, f64)>,
}

/// Number of fitted parameters of the smooth form.
pub const N_PARAMS: usize = 8;

/// What the model needs to know about the engine's model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dims {
    /// Parameters multiplied per token.
    pub params: f64,
    /// Their bytes.
    pub weight_bytes: f64,
    /// KV-cache bytes per token.
    pub kv_bytes_per_token: f64,
}

impl Dims {
    /// The dimensions of an engine configuration (the embedding table is a lookup: not counted).
    pub fn of(cfg: &perllm_engine::EngineConfig) -> Dims {
        let p = cfg.compute_params() as f64;
        Dims {
            params: p,
            weight_bytes: p * cfg.dtype.bytes() as f64,
            kv_bytes_per_token: cfg.kv_bytes_per_token() as f64,
        }
    }
}

/// A step's shape.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shape {
    /// Prompt tokens in the step.
    pub prefill_tokens: f64,
    /// Sequences prefilling.
    pub prefill_seqs: f64,
    /// Sequences decoding one token.
    pub decode_seqs: f64,
    /// Tokens the decoding sequences' caches hold.
    pub kv_tokens: f64,
}

/// Does the step compute exactly one token (the one-row kernel path)?
pub fn one_token(s: &Shape) -> bool {
    s.prefill_tokens + s.decode_seqs == 1.0
}

/// The model's step time, ns.
pub fn step_ns(p: &Params, d: &Dims, s: &Shape) -> f64 {
    let extra = s.decode_seqs * p.decode_seq_ns
        + s.prefill_seqs * p.prefill_seq_ns
        + if s.prefill_tokens > 0.0 {
            p.prefill_step_ns
        } else {
            0.0
        }
        + s.kv_tokens * p.kv_token_ns;
    if !p.rows_ns.is_empty() {
        return perllm_core::cost::rows_table_ns(&p.rows_ns, s.prefill_tokens + s.decode_seqs)
            + extra;
    }
    if p.one_token_ns > 0.0 && one_token(s) {
        return p.one_token_ns + s.kv_tokens * p.kv_token_ns;
    }
    let compute = 2.0 * d.params * (s.prefill_tokens + s.decode_seqs) / p.flops;
    let memory = (d.weight_bytes + s.kv_tokens * d.kv_bytes_per_token) / p.bandwidth;
    p.overhead_ns + compute.max(memory) * 1e9 + extra
}

/// Absolute percentage errors: median and max, in percent.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Ape {
    /// Points.
    pub n: usize,
    /// Median APE, %.
    pub median: f64,
    /// Max APE, %.
    pub max: f64,
}

/// APE statistics of predictions against measurements.
pub fn ape(pred: &[f64], meas: &[f64]) -> Ape {
    let mut e: Vec<f64> = pred
        .iter()
        .zip(meas)
        .map(|(p, m)| ((p - m) / m).abs() * 100.0)
        .collect();
    let max = e.iter().copied().fold(0.0, f64::max);
    Ape {
        n: e.len(),
        median: super::median(&mut e),
        max,
    }
}

/// Parameters as an unconstrained vector (logs) and back.
pub fn to_x(p: &Params) -> [f64; N_PARAMS] {
    [
        p.overhead_ns.max(1.0).ln(),
        p.flops.ln(),
        p.bandwidth.ln(),
        p.decode_seq_ns.max(1e-3).ln(),
        p.prefill_seq_ns.max(1e-3).ln(),
        p.kv_token_ns.max(1e-6).ln(),
        p.one_token_ns.max(1.0).ln(),
        p.prefill_step_ns.max(1e-3).ln(),
    ]
}

/// Largest effective bandwidth a fit may give, bytes/s (1 TB/s, beyond any CPU's): when every
/// measured step is compute- or overhead-bound the weight read and the fixed overhead cannot be
/// told apart, and the fit would otherwise drive the bandwidth to infinity.
pub const MAX_BANDWIDTH: f64 = 1e12;

/// The inverse of [`to_x`].
pub fn from_x(x: &[f64; N_PARAMS]) -> Params {
    Params {
        overhead_ns: x[0].exp(),
        flops: x[1].exp(),
        bandwidth: x[2].exp().min(MAX_BANDWIDTH),
        decode_seq_ns: x[3].exp(),
        prefill_seq_ns: x[4].exp(),
        kv_token_ns: x[5].exp(),
        one_token_ns: x[6].exp(),
        prefill_step_ns: x[7].exp(),
        rows_ns: Vec::new(),
    }
}

/// Minimise `f` by Nelder-Mead from `x0` (initial step `step` per coordinate), restarting from
/// the best point until a restart no longer improves; at most `max_evals` evaluations.
pub fn nelder_mead<const N: usize, F: FnMut(&[f64; N]) -> f64>(
    mut f: F,
    x0: [f64; N],
    step: f64,
    max_evals: usize,
) -> ([f64; N], f64) {
    let mut best = (x0, f(&x0));
    let mut evals = 1;
    loop {
        let start = best;
        let mut simplex: Vec<([f64; N], f64)> = vec![best];
        for i in 0..N {
            let mut x = best.0;
            x[i] += step;
            simplex.push((x, f(&x)));
            evals += 1;
        }
        while evals < max_evals {
            simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
            let (lo, hi) = (simplex[0].1, simplex[N].1);
            if (hi - lo).abs() <= 1e-10 * (lo.abs() + 1e-12) {
                break;
            }
            let mut c = [0.0; N];
            for (x, _) in &simplex[..N] {
                for k in 0..N {
                    c[k] += x[k] / N as f64;
                }
            }
            let worst = simplex[N].0;
            let at = |t: f64| -> [f64; N] {
                let mut y = [0.0; N];
                for k in 0..N {
                    y[k] = c[k] + t * (worst[k] - c[k]);
                }
                y
            };
            let xr = at(-1.0);
            let fr = f(&xr);
            evals += 1;
            if fr < simplex[0].1 {
                let xe = at(-2.0);
                let fe = f(&xe);
                evals += 1;
                simplex[N] = if fe < fr { (xe, fe) } else { (xr, fr) };
            } else if fr < simplex[N - 1].1 {
                simplex[N] = (xr, fr);
            } else {
                let xc = if fr < simplex[N].1 { at(-0.5) } else { at(0.5) };
                let fc = f(&xc);
                evals += 1;
                if fc < fr.min(simplex[N].1) {
                    simplex[N] = (xc, fc);
                } else {
                    let b = simplex[0].0;
                    for s in simplex.iter_mut().skip(1) {
                        for (v, bk) in s.0.iter_mut().zip(b) {
                            *v = bk + 0.5 * (*v - bk);
                        }
                        s.1 = f(&s.0);
                        evals += 1;
                    }
                }
            }
        }
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        best = simplex[0];
        if evals >= max_evals || best.1 >= start.1 * (1.0 - 1e-9) {
            return best;
        }
    }
}

/// Fit [`Params`] to measured step times (least squares on log ratios). Without one-token steps
/// among the shapes the one-token price is 0 (not separate); without steps of two prompts or
/// more the per-step prompt time is folded into the per-prefilling-sequence time (the two are
/// the same for such data).
pub fn fit_steps(d: &Dims, shapes: &[Shape], measured_ns: &[f64]) -> Params {
    let loss = |x: &[f64; N_PARAMS]| -> f64 {
        let p = from_x(x);
        shapes
            .iter()
            .zip(measured_ns)
            .map(|(s, m)| (step_ns(&p, d, s) / m).ln().powi(2))
            .sum()
    };
    // Starting points: the fastest prefill sets the compute, the fastest decode the bandwidth.
    let mut f0: f64 = 0.0;
    let mut b0: f64 = 0.0;
    let mut min_t = f64::INFINITY;
    let mut one0 = f64::INFINITY;
    let multi = shapes.iter().any(|s| s.prefill_seqs >= 2.0);
    for (s, &m) in shapes.iter().zip(measured_ns) {
        min_t = min_t.min(m);
        if one_token(s) {
            one0 = one0.min(m);
        }
        let secs = m * 1e-9;
        if s.prefill_tokens > 0.0 {
            f0 = f0.max(2.0 * d.params * (s.prefill_tokens + s.decode_seqs) / secs);
        } else {
            b0 = b0.max((d.weight_bytes + s.kv_tokens * d.kv_bytes_per_token) / secs);
        }
    }
    if f0 == 0.0 {
        f0 = 1e11;
    }
    if b0 == 0.0 {
        b0 = 1e10;
    }
    let mut best: Option<([f64; N_PARAMS], f64)> = None;
    for (o, c) in [(0.05, 0.01), (0.3, 0.001), (0.01, 0.05)] {
        let x0 = to_x(&Params {
            overhead_ns: min_t * o,
            flops: f0,
            bandwidth: b0,
            decode_seq_ns: min_t * c,
            prefill_seq_ns: min_t * c,
            kv_token_ns: min_t * c * 1e-2,
            one_token_ns: if one0.is_finite() { one0 } else { 1.0 },
            prefill_step_ns: min_t * c,
            rows_ns: Vec::new(),
        });
        let r = nelder_mead(loss, x0, 0.5, 6000);
        if best.is_none_or(|b| r.1 < b.1) {
            best = Some(r);
        }
    }
    let mut p = from_x(&best.expect("three starts").0);
    if !one0.is_finite() {
        p.one_token_ns = 0.0;
    }
    if !multi {
        p.prefill_seq_ns += p.prefill_step_ns;
        p.prefill_step_ns = 0.0;
    }
    p
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A profile grid: every decode batch with every context (32, 96 and 192 tokens) and every
    /// prompt length, the prompt split into each of `splits` sequences (prompt-only steps at
    /// the smallest context only), priced by known parameters.
    pub(in crate::fidelity) fn grid(
        p: &Params,
        d: &Dims,
        batches: &[u32],
        prefills: &[u32],
        splits: &[u32],
    ) -> (Vec<Shape>, Vec<f64>) {
        let mut shapes = Vec::new();
        for &batch in batches {
            for ctx in [32u32, 96, 192] {
                for &pre in prefills {
                    if batch == 0 && (pre == 0 || ctx != 32) {
                        continue;
                    }
                    for seqs in if pre == 0 { vec![0] } else { splits.to_vec() } {
                        shapes.push(Shape {
                            prefill_tokens: pre as f64,
                            prefill_seqs: seqs as f64,
                            decode_seqs: batch as f64,
                            kv_tokens: batch as f64 * (ctx as f64 + 1.0),
                        });
                    }
                }
            }
        }
        let t = shapes.iter().map(|s| step_ns(p, d, s)).collect();
        (shapes, t)
    }

    /// The profile grid of `perllm profile`'s published run, priced by known parameters.
    fn synthetic(p: &Params, d: &Dims, splits: &[u32]) -> (Vec<Shape>, Vec<f64>) {
        grid(p, d, &[0, 1, 2, 4, 8, 12, 15], &[0, 32, 96, 192], splits)
    }

    const D: Dims = Dims {
        params: 33.4e6,
        weight_bytes: 133.6e6,
        kv_bytes_per_token: 16384.0,
    };

    fn close(got: f64, want: f64, tol: f64, what: &str) {
        assert!(
            ((got - want) / want).abs() < tol,
            "{what}: fitted {got}, known {want}"
        );
    }

    #[test]
    fn calibration_recovers_known_parameters_from_synthetic_steps() {
        // Compute-bound everywhere (the bandwidth cannot be told from the overhead: not checked).
        let known = Params {
            overhead_ns: 17e6,
            flops: 106e9,
            bandwidth: 1e12,
            decode_seq_ns: 1.4e6,
            prefill_seq_ns: 17.7e6,
            kv_token_ns: 5000.0,
            one_token_ns: 12.5e6,
            prefill_step_ns: 20e6,
            rows_ns: Vec::new(),
        };
        let (shapes, t) = synthetic(&known, &D, &[1, 2]);
        let got = fit_steps(&D, &shapes, &t);
        close(
            got.prefill_step_ns,
            known.prefill_step_ns,
            0.05,
            "per step with prompts",
        );
        close(got.overhead_ns, known.overhead_ns, 0.02, "overhead");
        close(got.flops, known.flops, 0.02, "compute");
        close(
            got.decode_seq_ns,
            known.decode_seq_ns,
            0.05,
            "per decoding sequence",
        );
        close(
            got.prefill_seq_ns,
            known.prefill_seq_ns,
            0.05,
            "per prefilling sequence",
        );
        close(got.kv_token_ns, known.kv_token_ns, 0.05, "per KV token");
        close(got.one_token_ns, known.one_token_ns, 0.02, "one-token step");
        let pred: Vec<f64> = shapes.iter().map(|s| step_ns(&got, &D, s)).collect();
        assert!(ape(&pred, &t).max < 1.0, "{:?}", ape(&pred, &t));
    }

    #[test]
    fn without_one_token_steps_the_one_token_price_is_off() {
        let known = Params {
            one_token_ns: 0.0,
            overhead_ns: 2e6,
            flops: 50e9,
            bandwidth: 20e9,
            decode_seq_ns: 3e5,
            prefill_seq_ns: 1e6,
            kv_token_ns: 800.0,
            prefill_step_ns: 0.0,
            rows_ns: Vec::new(),
        };
        let (shapes, t): (Vec<Shape>, Vec<f64>) = {
            let (s, t) = synthetic(&known, &D, &[1]);
            s.into_iter().zip(t).filter(|(s, _)| !one_token(s)).unzip()
        };
        let got = fit_steps(&D, &shapes, &t);
        assert_eq!(got.one_token_ns, 0.0);
        // One prompt per step at most: the per-step prompt time is not separate either.
        assert_eq!(got.prefill_step_ns, 0.0);
        let pred: Vec<f64> = shapes.iter().map(|s| step_ns(&got, &D, s)).collect();
        assert!(ape(&pred, &t).median < 2.0, "{:?}", ape(&pred, &t));
        // A one-token step is then priced by the general form.
        let one = Shape {
            prefill_tokens: 0.0,
            prefill_seqs: 0.0,
            decode_seqs: 1.0,
            kv_tokens: 33.0,
        };
        close(
            step_ns(&got, &D, &one),
            step_ns(&known, &D, &one),
            0.05,
            "one decode",
        );
    }
}
