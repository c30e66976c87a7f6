//! The registry of policies built into perllm-core: `perllm` (CS-UCB) and `true-costs` (the same
//! LP fed the true mean costs; old name `oracle`, still accepted).

use crate::perllm::PerLlm;
use crate::policy::{Policy, PolicyError};
use crate::spec::PolicySpec;
use crate::true_costs::TrueCosts;
use crate::world::World;

/// Names of the built-in policies.
pub fn builtin_names() -> &'static [&'static str] {
    &["perllm", "true-costs"]
}

/// Old names still accepted, with the name they stand for.
pub const ALIASES: &[(&str, &str)] = &[("oracle", "true-costs")];

/// The current name of a built-in policy given by an old name (`oracle` -> `true-costs`); any
/// other name unchanged.
pub fn canonical(name: &str) -> &str {
    ALIASES
        .iter()
        .find(|(old, _)| *old == name)
        .map_or(name, |(_, new)| new)
}

/// Build the built-in policy named by `spec.name` for `world`: `None` if no built-in policy has
/// that name (a plugin may), `Some(Err(..))` if its parameters or the scenario's constraints are
/// invalid for it. An alias builds the policy under its current name.
pub fn builtin(spec: &PolicySpec, world: &World) -> Option<Result<Box<dyn Policy>, PolicyError>> {
    match canonical(&spec.name) {
        "perllm" => Some(PerLlm::new(spec, world).map(|p| Box::new(p) as Box<dyn Policy>)),
        "true-costs" => {
            let spec = PolicySpec {
                name: "true-costs".into(),
                params: spec.params.clone(),
            };
            Some(TrueCosts::new(&spec, world).map(|p| Box::new(p) as Box<dyn Policy>))
        }
        _ => None,
    }
}
