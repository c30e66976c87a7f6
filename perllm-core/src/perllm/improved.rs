//! The improved variant's index (`variant = improved`, the default; docs/perllm-policy.md,
//! "The improved variant").
//!
//! An arm (class, pool of interchangeable servers) learns how far the cost model is off: its mean
//! realised/predicted latency and energy ratios, starting from [`PRIOR_OBS`] pseudo-observations
//! of ratio 1 (the model's own prediction). Its mean index for a group of requests is the
//! group's predicted reward corrected by those ratios:
//!
//! ```text
//! M = -E x er + lambda x min(A - B x lr, rho_s) - theta x violations
//! ```
//!
//! with `E` the group's mean predicted normalised energy on the server, `A` its mean
//! `(deadline - waited) / deadline` and `B` its mean `predicted processing time / deadline`.
//! Its confidence bound is how much `M` moves if the ratios are off by their standard error:
//!
//! ```text
//! b = delta x sqrt(ln(t_c + 1) / (PRIOR_OBS + n)) x (E x er x sigma_e + lambda x B x lr x sigma_l)
//! U = M + b;   L = M - b
//! ```
//!
//! where `sigma_l`, `sigma_e` are the class's root-mean-square prediction errors of the
//! corrected ratios, starting from [`PRIOR_OBS`] pseudo-errors of 1 (100%): where the model has
//! proved accurate the bound is tight and little is explored; where it is off, exploration
//! resumes. An arm whose `U` is below the best `L` of the group cannot beat the best arm by the
//! confidence bound: it is scored by its mean `M` (no exploration bonus), so it only receives
//! requests the better servers have no room for.

use super::bandit::{ArmView, PRIOR_OBS, with_prior};

/// The class's root-mean-square prediction error of the corrected latency ratio, starting from
/// [`PRIOR_OBS`] pseudo-errors of 1 (100%); `residuals` as in [`PairInput::residuals`].
pub(crate) fn latency_sigma(residuals: (f64, f64, f64)) -> f64 {
    rms_error(residuals.0, residuals.2)
}

/// Root-mean-square error from a sum of squared errors over `n` outcomes, with [`PRIOR_OBS`]
/// pseudo-errors of 1.
fn rms_error(sum_sq: f64, n: f64) -> f64 {
    ((PRIOR_OBS + sum_sq) / (PRIOR_OBS + n)).sqrt()
}

/// The latency ratio the deadline filter uses: the learned one `lr`, less one prediction error
/// ([`latency_sigma`]) where the server has proved slower than the cost model predicts, and
/// never more optimistic than the model itself: `max(min(lr, 1), lr - sigma_l)`. So a server is
/// left out for a request where the model predicts its deadline lost, or where it has proved so
/// much slower than predicted that even one error better still misses; a close call the learned
/// mean alone would refuse is tried (the slot's admission check then uses the model's own
/// prediction with the queue the slot adds).
pub(crate) fn optimistic_latency_ratio(lr: f64, residuals: (f64, f64, f64)) -> f64 {
    lr.min(1.0).max(lr - latency_sigma(residuals))
}

/// One (group, server) pair's inputs to the index.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PairInput {
    /// The pool arm's current estimates (ratios, counts, violation rate).
    pub arm: ArmView,
    /// The class's effective observation count.
    pub class_n: f64,
    /// The class's prediction-error sums (see [`super::bandit::Arms::residuals`]).
    pub residuals: (f64, f64, f64),
    /// Mean predicted normalised energy (raw cost model, before the energy ratio).
    pub energy: f64,
    /// Mean `(deadline - waited) / deadline`.
    pub a: f64,
    /// Mean raw predicted processing time over the deadline.
    pub b: f64,
    /// The server's resource slack.
    pub rho: f64,
}

/// The three values of the index of one pair: optimistic, mean and pessimistic.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Bounds {
    pub upper: f64,
    pub mean: f64,
    pub lower: f64,
}

/// The index of one pair (see the module documentation).
pub(crate) fn bounds(
    x: &PairInput,
    exploration: f64,
    constraint_weight: f64,
    violation_penalty: f64,
) -> Bounds {
    let n = x.arm.n.max(0.0);
    let lr = with_prior(x.arm.latency_ratio, n);
    let er = with_prior(x.arm.energy_ratio, n);
    let viol = x.arm.violations * n / (n + PRIOR_OBS);
    let slack = (x.a - x.b * lr).clamp(-1.0, 1.0);
    let mean = -x.energy * er + constraint_weight * slack.min(x.rho) - violation_penalty * viol;
    let (sigma_l, sigma_e) = (
        latency_sigma(x.residuals),
        rms_error(x.residuals.1, x.residuals.2),
    );
    let spread = x.energy * er * sigma_e + constraint_weight * x.b * lr * sigma_l;
    let b = exploration * ((x.class_n.max(0.0) + 1.0).ln() / (PRIOR_OBS + n)).sqrt() * spread;
    Bounds {
        upper: mean + b,
        mean,
        lower: mean - b,
    }
}

/// The scores of one group's servers: the optimistic index where it can still beat the best
/// pessimistic one, else the mean. Returns the scores and how many pairs were eliminated.
pub(crate) fn scores(bounds: &[Bounds]) -> (Vec<f64>, u64) {
    let best_lower = bounds
        .iter()
        .map(|b| b.lower)
        .fold(f64::NEG_INFINITY, f64::max);
    let mut eliminated = 0;
    let s = bounds
        .iter()
        .map(|b| {
            if b.upper >= best_lower {
                b.upper
            } else {
                eliminated += 1;
                b.mean
            }
        })
        .collect();
    (s, eliminated)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arm(n: f64, lr: f64, er: f64) -> ArmView {
        ArmView {
            n,
            energy: 0.0,
            slack: 0.0,
            latency_ratio: lr,
            energy_ratio: er,
            violations: 0.0,
        }
    }

    #[test]
    fn the_prior_is_the_models_prediction_and_fades_with_observations() {
        assert_eq!(with_prior(3.0, 0.0), 1.0);
        assert!((with_prior(3.0, PRIOR_OBS) - 2.0).abs() < 1e-12);
        assert!((with_prior(3.0, 1e9) - 3.0).abs() < 1e-6);
    }

    #[test]
    fn bounds_bracket_the_mean_and_narrow_with_observations() {
        let x = |n| PairInput {
            arm: arm(n, 1.0, 1.0),
            class_n: 100.0,
            residuals: (0.0, 0.0, 0.0),
            energy: 0.5,
            a: 1.0,
            b: 0.3,
            rho: 1.0,
        };
        let few = bounds(&x(0.0), 0.5, 1.0, 1.0);
        let many = bounds(&x(1000.0), 0.5, 1.0, 1.0);
        assert!(few.upper > few.mean && few.mean > few.lower, "{few:?}");
        assert!((few.mean - many.mean).abs() < 1e-12);
        assert!(many.upper - many.lower < few.upper - few.lower);
    }

    #[test]
    fn an_arm_that_cannot_beat_the_best_is_scored_by_its_mean() {
        // A server predicted 15x costlier in energy and 5x slower: even its optimistic index
        // is below the efficient server's pessimistic one, so it gets no exploration bonus.
        let base = PairInput {
            arm: arm(0.0, 1.0, 1.0),
            class_n: 50.0,
            residuals: (0.0, 0.0, 0.0),
            energy: 0.06,
            a: 1.0,
            b: 0.1,
            rho: 1.0,
        };
        let bounds = |p: PairInput| bounds(&p, 0.5, 1.0, 1.0);
        let good = bounds(base);
        let bad = bounds(PairInput {
            energy: 0.9,
            b: 0.5,
            ..base
        });
        let (s, elim) = scores(&[good, bad]);
        assert_eq!(elim, 1);
        assert_eq!(s, vec![good.upper, bad.mean]);
        // Two close arms both stay in play with their optimistic index.
        let close = bounds(PairInput {
            energy: 0.07,
            ..base
        });
        let (s, elim) = scores(&[good, close]);
        assert_eq!(elim, 0);
        assert_eq!(s, vec![good.upper, close.upper]);
    }
}
