//! The PerLLM scheduler: CS-UCB (UCB with a constraint-satisfaction mechanism) over
//! (request class, server) arms, with a per-slot LP that places all pending requests jointly.
//!
//! One slot, in order (the full description with every modelling choice is in
//! `docs/perllm-policy.md`):
//!
//! 1. **Budgets.** Per server: free batch slots `(1 + queue_factor) x max_batch - committed`,
//!    free KV bytes (the same allowance), link bits `bandwidth x link_window - in-flight uploads`,
//!    and the resource slack `rho_s` (the smallest of the three free fractions).
//! 2. **Feasibility.** For each pending request and each server hosting its model whose KV
//!    memory can hold it: the predicted processing time `D = waited + estimate x latency_ratio`
//!    (the arm's learned realised/predicted ratio) and predicted energies; every per-request
//!    user constraint (`latency <= deadline`, energy caps) must hold. A request with no feasible
//!    server is rejected or sent best-effort (`infeasible`) and is never used to explore.
//! 3. **Index.** `U(c, s) = -mean energy + lambda x min(mean deadline slack, rho_s) +
//!    delta x sqrt(ln t_c / n) - theta x recent violation rate`; unobserved arms get an
//!    optimistic prior.
//! 4. **Exploration.** Each feasible arm never tried gets one request of its class (the one with
//!    the most slack) if the budgets allow.
//! 5. **LP.** Requests are grouped by (class, feasible set); the slot LP maximises the total
//!    index subject to the budgets and the per-slot user constraints, then rounds and repairs;
//!    it skips the LP when every group's best server can take the whole group, and falls back
//!    to a greedy placement if the LP fails.
//! 6. **Placement.** Within a group, the most urgent requests go to the servers with the
//!    smallest predicted processing time; requests left over are deferred.
//!
//! Feedback (`observe`) updates the arm of the completed request: normalised weighted energy,
//! realised deadline slack, realised/predicted latency and energy, and the violation window.

mod admit;
mod bandit;
mod classify;
pub(crate) mod constraints;
mod fast;
mod improved;
pub mod params;
pub(crate) mod plan;
mod report;
mod slot;
mod state;
#[cfg(test)]
mod tests;

use crate::policy::PolicyError;
use crate::spec::PolicySpec;
use crate::world::World;
pub use params::{Infeasible, Params, Variant};
pub(crate) use state::Core;

/// `impl Policy` (and the tests' `straightforward`) for a policy that is a [`Core`] plus the world
/// its decision notes name: PerLLM, and `true-costs`, which differs only in its [`Mode`] and in
/// reading the ground truth.
macro_rules! core_policy {
    ($ty:ident, ground_truth = $gt:expr) => {
        impl $crate::policy::Policy for $ty {
            fn name(&self) -> &str {
                self.core.name()
            }
            fn schedule(
                &mut self,
                view: &$crate::policy::ClusterView<'_>,
                pending: &[$crate::policy::Pending],
                out: &mut [$crate::policy::Decision],
            ) -> Result<(), $crate::policy::PolicyError> {
                self.core.schedule(view, pending, out)
            }
            fn observe(&mut self, outcome: &$crate::request::Outcome) {
                self.core.observe(outcome)
            }
            fn wants_ground_truth(&self) -> bool {
                $gt
            }
            fn stats(&self) -> $crate::policy::PolicyStats {
                self.core.stats()
            }
            fn explain(&mut self, out: &mut Vec<serde_json::Value>) {
                self.core.explain(&self.world_for_notes, out)
            }
        }

        impl $ty {
            /// Tests: take the straightforward feasibility step even where the fast one applies.
            #[cfg(test)]
            pub(crate) fn straightforward(mut self) -> Self {
                self.core.fast_path = false;
                self
            }
        }
    };
}
pub(crate) use core_policy;

/// Where a request's costs come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Learned: cost-model estimates corrected by the arms' realised/predicted ratios, and the
    /// CS-UCB index as the LP score.
    Learn,
    /// Oracle: true costs from the hidden ground truth, score = the request's true reward.
    Oracle,
}

/// The PerLLM policy: CS-UCB with a constraint-satisfaction LP step. Built from a scenario's
/// `policy perllm { ... }` block with [`PerLlm::new`] (or through
/// [`crate::policies::builtin`]); see the module documentation for the algorithm.
pub struct PerLlm {
    core: Core,
    world_for_notes: World,
}

impl PerLlm {
    /// Build the policy for `world` with the parameters of `spec` (see [`Params`]). Errors name
    /// a bad parameter or a user constraint the policy cannot enforce.
    pub fn new(spec: &PolicySpec, world: &World) -> Result<PerLlm, PolicyError> {
        Ok(PerLlm {
            core: Core::new(spec, world, Mode::Learn)?,
            world_for_notes: world.clone(),
        })
    }

    /// The parameters in use.
    pub fn params(&self) -> &Params {
        &self.core.params
    }
}

core_policy!(PerLlm, ground_truth = false);
