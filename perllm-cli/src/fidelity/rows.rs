//! The step-cost table by rows (`perllm_core::cost::Calibrated::rows_ns`): where its knots go and
//! fitting them, with the per-sequence and per-KV-token terms, to measured steps.
//!
//! `step = T(prefill + decode) + d x s + p x q + [prefill > 0] x r + kv x a`, with `T` piecewise
//! linear between knots at the row counts (tokens computed in the step) of the profile's pure
//! shapes: its decode-only steps (rows = decoding sequences) and prefill-only steps (rows =
//! prompt tokens). Steps that mix the two fall between knots and are interpolated, so they check
//! the table rather than define it. `T` is kept non-decreasing (more rows never cost less; the
//! fit's unknowns are `T`'s increments from knot to knot, all at least 0, as are `s`, `q`, `r`
//! and `a`), which makes the fit a non-negative least-squares problem on relative errors, solved
//! exactly by Lawson and Hanson's active-set method.

use super::fit::{Params, Shape};

/// The table's knots for a set of shapes: the distinct row counts of the decode-only and
/// prefill-only shapes, increasing.
pub fn knots_of(shapes: &[Shape]) -> Vec<u64> {
    let mut k: Vec<u64> = shapes
        .iter()
        .filter(|s| s.prefill_tokens == 0.0 || s.decode_seqs == 0.0)
        .map(|s| (s.prefill_tokens + s.decode_seqs).round() as u64)
        .filter(|&r| r > 0)
        .collect();
    k.sort_unstable();
    k.dedup();
    k
}

/// The coefficients of the knot increments in `T(rows)`: `T(rows) = sum_i c_i x delta_i` where
/// `delta_0` is `T` at the first knot and `delta_i` the rise from knot `i - 1` to knot `i`.
fn increment_coefficients(knots: &[u64], rows: f64, out: &mut [f64]) {
    out.iter_mut().for_each(|c| *c = 0.0);
    let k = knots.len();
    out[0] = 1.0;
    for i in 1..k {
        let (a, b) = (knots[i - 1] as f64, knots[i] as f64);
        let t = if i == k - 1 {
            // Beyond the last knot the last segment goes on.
            ((rows - a) / (b - a)).max(0.0)
        } else {
            ((rows - a) / (b - a)).clamp(0.0, 1.0)
        };
        out[i] = t;
        if t < 1.0 {
            break;
        }
    }
}

/// Non-negative least squares on normal equations: minimise `x' G x - 2 b' x` over `x >= 0`
/// (Lawson and Hanson's active-set method). `g` is `n x n`, row-major, positive semi-definite.
pub fn nnls(g: &[f64], b: &[f64]) -> Vec<f64> {
    let n = b.len();
    let ridge = 1e-12 * (0..n).map(|i| g[i * n + i]).fold(0.0, f64::max).max(1e-300);
    let mut x = vec![0.0; n];
    let mut passive = vec![false; n];
    let tol = 1e-12 * b.iter().map(|v| v.abs()).fold(0.0, f64::max).max(1e-300);
    for _ in 0..3 * n + 10 {
        // The gradient's negative: where adding a variable lowers the loss.
        let w: Vec<f64> = (0..n)
            .map(|i| b[i] - (0..n).map(|j| g[i * n + j] * x[j]).sum::<f64>())
            .collect();
        let Some(j) = (0..n)
            .filter(|&i| !passive[i] && w[i] > tol)
            .max_by(|&a, &c| w[a].total_cmp(&w[c]))
        else {
            break;
        };
        passive[j] = true;
        for _ in 0..3 * n + 10 {
            let z = solve_passive(g, b, &passive, ridge);
            if (0..n).all(|i| !passive[i] || z[i] > 0.0) {
                x = z;
                break;
            }
            let mut alpha = 1.0f64;
            for i in 0..n {
                if passive[i] && z[i] <= 0.0 {
                    alpha = alpha.min(x[i] / (x[i] - z[i]));
                }
            }
            for i in 0..n {
                x[i] += alpha * (z[i] - x[i]);
                if passive[i] && x[i] <= 0.0 {
                    passive[i] = false;
                    x[i] = 0.0;
                }
            }
        }
    }
    x
}

/// The unconstrained least-squares solution over the passive variables (the others 0).
fn solve_passive(g: &[f64], b: &[f64], passive: &[bool], ridge: f64) -> Vec<f64> {
    let n = b.len();
    let idx: Vec<usize> = (0..n).filter(|&i| passive[i]).collect();
    let m = idx.len();
    let mut a = vec![0.0; m * (m + 1)];
    for (r, &i) in idx.iter().enumerate() {
        for (c, &j) in idx.iter().enumerate() {
            a[r * (m + 1) + c] = g[i * n + j] + if i == j { ridge } else { 0.0 };
        }
        a[r * (m + 1) + m] = b[i];
    }
    // Gaussian elimination with partial pivoting on the augmented matrix.
    for col in 0..m {
        let piv = (col..m)
            .max_by(|&p, &q| {
                a[p * (m + 1) + col]
                    .abs()
                    .total_cmp(&a[q * (m + 1) + col].abs())
            })
            .expect("non-empty");
        if piv != col {
            for c in 0..=m {
                a.swap(col * (m + 1) + c, piv * (m + 1) + c);
            }
        }
        let d = a[col * (m + 1) + col];
        if d.abs() < 1e-300 {
            continue;
        }
        for r in col + 1..m {
            let f = a[r * (m + 1) + col] / d;
            if f != 0.0 {
                for c in col..=m {
                    a[r * (m + 1) + c] -= f * a[col * (m + 1) + c];
                }
            }
        }
    }
    let mut z = vec![0.0; m];
    for r in (0..m).rev() {
        let d = a[r * (m + 1) + r];
        let s: f64 = (r + 1..m).map(|c| a[r * (m + 1) + c] * z[c]).sum();
        z[r] = if d.abs() < 1e-300 {
            0.0
        } else {
            (a[r * (m + 1) + m] - s) / d
        };
    }
    let mut out = vec![0.0; n];
    for (r, &i) in idx.iter().enumerate() {
        out[i] = z[r];
    }
    out
}

/// Fit the table (knots [`knots_of`] the shapes) and the per-sequence, per-step and per-KV-token
/// terms to measured step times, by least squares on relative errors with every unknown at least
/// 0. `base` gives the rest of the returned [`Params`] (the smooth fit's effective compute and
/// bandwidth, which a scenario's `hardware` block takes; the table replaces them in the step
/// price). Without steps of two prompts or more the per-step prompt time is folded into the
/// per-prefilling-sequence time (the two are the same for such data). `None` without a pure shape.
pub fn fit_rows(base: &Params, shapes: &[Shape], measured_ns: &[f64]) -> Option<Params> {
    let knots = knots_of(shapes);
    if knots.is_empty() {
        return None;
    }
    let k = knots.len();
    let n = k + 4;
    // Columns: the knot increments, then s, q, r, a; each row divided by the measured time.
    let mut rows: Vec<Vec<f64>> = Vec::with_capacity(shapes.len());
    let mut c = vec![0.0; k];
    for (s, &m) in shapes.iter().zip(measured_ns) {
        increment_coefficients(&knots, s.prefill_tokens + s.decode_seqs, &mut c);
        let mut row: Vec<f64> = c.clone();
        row.extend([
            s.decode_seqs,
            s.prefill_seqs,
            if s.prefill_tokens > 0.0 { 1.0 } else { 0.0 },
            s.kv_tokens,
        ]);
        row.iter_mut().for_each(|v| *v /= m);
        rows.push(row);
    }
    // Scale every column to unit norm (the unknowns range from µs per KV token to ms per step).
    let norm: Vec<f64> = (0..n)
        .map(|j| {
            let s: f64 = rows.iter().map(|r| r[j] * r[j]).sum();
            if s > 0.0 { s.sqrt() } else { 1.0 }
        })
        .collect();
    let mut g = vec![0.0; n * n];
    let mut b = vec![0.0; n];
    for r in &rows {
        for i in 0..n {
            let ri = r[i] / norm[i];
            b[i] += ri;
            for j in 0..n {
                g[i * n + j] += ri * r[j] / norm[j];
            }
        }
    }
    let x: Vec<f64> = nnls(&g, &b).iter().zip(&norm).map(|(v, s)| v / s).collect();
    let mut level = 0.0;
    let rows_ns = knots
        .iter()
        .zip(&x[..k])
        .map(|(&r, d)| {
            level += d;
            (r, level)
        })
        .collect();
    let multi = shapes.iter().any(|s| s.prefill_seqs >= 2.0);
    let (mut q, mut r) = (x[k + 1], x[k + 2]);
    if !multi {
        q += r;
        r = 0.0;
    }
    Some(Params {
        overhead_ns: 0.0,
        one_token_ns: 0.0,
        decode_seq_ns: x[k],
        prefill_seq_ns: q,
        prefill_step_ns: r,
        kv_token_ns: x[k + 3],
        rows_ns,
        ..base.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fidelity::fit::tests::grid;
    use crate::fidelity::fit::{Dims, ape, step_ns};

    const D: Dims = Dims {
        params: 33.4e6,
        weight_bytes: 133.6e6,
        kv_bytes_per_token: 16384.0,
    };

    /// The published profile grid (with the small prompts that chunked steps need), priced by
    /// known parameters.
    fn synthetic(p: &Params, splits: &[u32]) -> (Vec<Shape>, Vec<f64>) {
        let prefills = [0, 8, 16, 32, 64, 96, 192];
        grid(p, &D, &[0, 1, 2, 4, 8, 12, 14], &prefills, splits)
    }

    fn known(splits_multi: bool) -> Params {
        Params {
            overhead_ns: 0.0,
            flops: 9e10,
            bandwidth: 4e9,
            decode_seq_ns: 8.4e5,
            prefill_seq_ns: 3e5,
            prefill_step_ns: if splits_multi { 2.1e6 } else { 0.0 },
            kv_token_ns: 810.0,
            one_token_ns: 0.0,
            // A cliff from one row to two, a plateau, then growth: what the CPU engine shows.
            rows_ns: vec![
                (1, 13.0e6),
                (2, 32.0e6),
                (4, 32.5e6),
                (8, 33.0e6),
                (12, 35.0e6),
                (14, 36.0e6),
                (16, 37.0e6),
                (32, 50.0e6),
                (64, 75.0e6),
                (96, 98.0e6),
                (192, 170.0e6),
            ],
        }
    }

    fn close(got: f64, want: f64, tol: f64, what: &str) {
        assert!(
            ((got - want) / want).abs() < tol,
            "{what}: fitted {got}, known {want}"
        );
    }

    #[test]
    fn the_table_and_the_terms_are_recovered_from_synthetic_steps() {
        let k = known(true);
        let (shapes, t) = synthetic(&k, &[1, 2]);
        let got = fit_rows(&k, &shapes, &t).expect("pure shapes");
        assert_eq!(
            got.rows_ns.iter().map(|x| x.0).collect::<Vec<_>>(),
            k.rows_ns.iter().map(|x| x.0).collect::<Vec<_>>(),
            "knots at the pure shapes' rows"
        );
        for (g, w) in got.rows_ns.iter().zip(&k.rows_ns) {
            close(g.1, w.1, 1e-6, &format!("T({} rows)", w.0));
        }
        close(
            got.decode_seq_ns,
            k.decode_seq_ns,
            1e-6,
            "per decoding sequence",
        );
        close(
            got.prefill_seq_ns,
            k.prefill_seq_ns,
            1e-6,
            "per prefilling sequence",
        );
        close(
            got.prefill_step_ns,
            k.prefill_step_ns,
            1e-6,
            "per step with prompts",
        );
        close(got.kv_token_ns, k.kv_token_ns, 1e-6, "per KV token");
        let pred: Vec<f64> = shapes.iter().map(|s| step_ns(&got, &D, s)).collect();
        assert!(ape(&pred, &t).max < 1e-4, "{:?}", ape(&pred, &t));
    }

    #[test]
    fn noisy_steps_give_a_table_that_never_decreases_and_fits_them() {
        // A table with a dip (12 rows cheaper than 8) and 3% noise: the fit stays monotone.
        let mut k = known(true);
        k.rows_ns[4].1 = 31.0e6;
        let (shapes, mut t) = synthetic(&k, &[1, 2]);
        let mut z = 0x2545_F491_4F6C_DD1Du64;
        for v in &mut t {
            z ^= z << 13;
            z ^= z >> 7;
            z ^= z << 17;
            *v *= 1.0 + 0.03 * ((z % 2001) as f64 / 1000.0 - 1.0);
        }
        let got = fit_rows(&k, &shapes, &t).expect("pure shapes");
        assert!(
            got.rows_ns.windows(2).all(|w| w[1].1 >= w[0].1),
            "{:?}",
            got.rows_ns
        );
        let pred: Vec<f64> = shapes.iter().map(|s| step_ns(&got, &D, s)).collect();
        let e = ape(&pred, &t);
        assert!(e.median < 3.0 && e.max < 12.0, "{e:?}");
        close(got.rows_ns[0].1, k.rows_ns[0].1, 0.05, "one row");
        close(
            got.decode_seq_ns,
            k.decode_seq_ns,
            0.25,
            "per decoding sequence",
        );
    }

    #[test]
    fn single_prompts_fold_the_per_step_time_into_the_per_prompt_time() {
        let k = known(false);
        let (shapes, t) = synthetic(&k, &[1]);
        let got = fit_rows(&k, &shapes, &t).expect("pure shapes");
        assert_eq!(got.prefill_step_ns, 0.0);
        close(
            got.prefill_seq_ns,
            k.prefill_seq_ns,
            1e-6,
            "per prefilling sequence",
        );
        assert!(fit_rows(&k, &[], &[]).is_none());
    }

    #[test]
    fn nnls_matches_a_hand_solved_problem() {
        // min |A x - y|^2, x >= 0 with A = [[1, 0], [0, 1], [1, 1]], y = (2, -1, 1):
        // unconstrained x = (5/3, -4/3); with x2 = 0, x1 = 3/2.
        let g = [2.0, 1.0, 1.0, 2.0];
        let b = [3.0, 0.0];
        let x = nnls(&g, &b);
        assert!((x[0] - 1.5).abs() < 1e-9 && x[1] == 0.0, "{x:?}");
    }
}
