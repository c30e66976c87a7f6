//! The registry of policies built into perllm-core: `perllm` (CS-UCB) and `oracle`.

use crate::oracle::Oracle;
use crate::perllm::PerLlm;
use crate::policy::{Policy, PolicyError};
use crate::spec::PolicySpec;
use crate::world::World;

/// Names of the built-in policies.
pub fn builtin_names() -> &'static [&'static str] {
    &["perllm", "oracle"]
}

/// Build the built-in policy named by `spec.name` for `world`: `None` if no built-in policy has
/// that name (a plugin may), `Some(Err(..))` if its parameters or the scenario's constraints are
/// invalid for it.
pub fn builtin(spec: &PolicySpec, world: &World) -> Option<Result<Box<dyn Policy>, PolicyError>> {
    match spec.name.as_str() {
        "perllm" => Some(PerLlm::new(spec, world).map(|p| Box::new(p) as Box<dyn Policy>)),
        "oracle" => Some(Oracle::new(spec, world).map(|p| Box::new(p) as Box<dyn Policy>)),
        _ => None,
    }
}
