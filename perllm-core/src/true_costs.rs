//! `true-costs`: the PerLLM LP step fed with the true mean costs instead of learned estimates.
//!
//! It was called `oracle` (still accepted as an alias): it is a *reference policy*, not a bound.
//! It knows the means, not the future (arrivals, step noise draws), and decides slot by slot, so
//! other policies can beat it, e.g. under overload. The bound nothing can beat is
//! [`crate::bound`].
//!
//! The oracle reads the hidden [`crate::policy::GroundTruth`] (each server link's real bandwidth in
//! the current redraw period, the real contention slowdown, the step noise's mean of 1) and scores
//! each feasible (request, server) pair with the request's true expected reward
//! `-(weighted energy / (tokens x e_ref)) + lambda x min(true deadline slack, rho_s)`; the
//! feasibility filter uses the true predicted processing time. It then solves the same slot LP
//! (same grouping, budgets, user constraints, rounding and repair) as [`crate::perllm::PerLlm`],
//! without exploration. It does not know the per-step noise draws, so it is the best this LP
//! can do with perfect knowledge of the means: the reference for the energy gap.

use crate::perllm::{Core, Mode, core_policy};
use crate::policy::PolicyError;
use crate::spec::PolicySpec;
use crate::world::World;

/// The `true-costs` policy (`policy true-costs { ... }`, alias `oracle`; same parameters as
/// `perllm`).
pub struct TrueCosts {
    core: Core,
    world_for_notes: World,
}

impl TrueCosts {
    /// Build the policy for `world` with the parameters of `spec`.
    pub fn new(spec: &PolicySpec, world: &World) -> Result<TrueCosts, PolicyError> {
        Ok(TrueCosts {
            core: Core::new(spec, world, Mode::Oracle)?,
            world_for_notes: world.clone(),
        })
    }
}

core_policy!(TrueCosts, ground_truth = true);
