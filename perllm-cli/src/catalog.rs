//! Policies and cost models available to a command: the built-in ones and those of loaded
//! plugins (`--plugin PATH`, `PERLLM_PLUGIN_PATH`, the bundled library next to the binary).
//! The one place the CLI talks to the plugin host.

use crate::error::{CliError, Result};
use clap::Args;
use perllm_core::spec::PolicySpec;
use perllm_core::{CostModel, Policy, World};
use perllm_host::{PLUGIN_PREFIX, PluginKind, Registry};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

/// One policy or cost model, as `perllm plugins list` shows it and result files record it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentInfo {
    /// Name used on the command line.
    pub name: String,
    /// `policy` or `cost-model`.
    pub kind: String,
    /// Version of the component (perllm's version for built-ins).
    pub version: String,
    /// Plugin ABI version (`major.minor`), `null` for built-ins.
    pub abi: Option<String>,
    /// `built-in` or the plugin library's path.
    pub source: String,
    /// One-line description.
    #[serde(default)]
    pub description: String,
}

/// Plugin loading.
#[derive(Debug, Args, Clone, Default)]
pub struct PluginArgs {
    /// Load policy or cost-model plugins from this library or directory (repeatable).
    #[arg(long = "plugin", value_name = "PATH")]
    pub plugins: Vec<PathBuf>,
}

/// The catalogue of policies and cost models.
pub struct Catalog {
    registry: Registry,
    items: Vec<(ComponentInfo, bool)>,
}

/// Name of the default cost model.
pub const DEFAULT_COST_MODEL: &str = "roofline";

impl Catalog {
    /// Built-ins plus the plugins found at `plugins` (library files or directories), in
    /// `PERLLM_PLUGIN_PATH` and next to the binary.
    pub fn discover(plugins: &[PathBuf]) -> Result<Catalog> {
        let registry = Registry::discover(plugins).map_err(|e| CliError::input(e.to_string()))?;
        // A library of a plugin directory that failed to load, a bundled plugin a user library
        // replaced: said on every command, never silently.
        for w in registry.warnings() {
            eprintln!("warning: {w}");
        }
        let items = registry
            .list()
            .into_iter()
            .map(|i| {
                (
                    ComponentInfo {
                        name: i.name,
                        kind: i.kind.as_str().to_string(),
                        version: i.version,
                        abi: (i.abi_version != "-").then_some(i.abi_version),
                        source: i.source,
                        description: i.description,
                    },
                    i.shadowed,
                )
            })
            .collect();
        Ok(Catalog { registry, items })
    }

    /// The plugin registry behind the catalogue, to set call budgets and isolation.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Does the policy `name` run in a worker process?
    pub fn is_isolated(&self, name: &str) -> bool {
        self.registry.is_isolated(name)
    }

    /// Everything the registry knows of the policy or cost model `name` (a policy if both
    /// kinds have it): flags and declared parameters included.
    pub fn details(&self, name: &str) -> Result<perllm_host::PluginInfo> {
        let info = match self.policy_info(name) {
            Ok(i) => i.clone(),
            Err(policy_err) => match self.cost_model_info(name) {
                Ok(i) => i.clone(),
                Err(_) => return Err(policy_err),
            },
        };
        let plain = name.strip_prefix(PLUGIN_PREFIX).unwrap_or(name);
        self.registry
            .list()
            .into_iter()
            .find(|i| i.name == plain && i.kind.as_str() == info.kind && i.source == info.source)
            .ok_or_else(|| CliError::input(format!("no details for `{name}`")))
    }

    /// How many libraries of plugin directories failed to load (and were skipped).
    pub fn skipped_libraries(&self) -> usize {
        self.registry.skipped().len()
    }

    /// Everything available with its shadowed flag (a plugin hidden by a built-in of its name):
    /// built-ins first, then plugins in load order.
    pub fn list(&self) -> &[(ComponentInfo, bool)] {
        &self.items
    }

    /// Names of the selectable policies, in list order.
    pub fn policy_names(&self) -> Vec<String> {
        self.items
            .iter()
            .filter(|(i, shadowed)| i.kind == PluginKind::Policy.as_str() && !shadowed)
            .map(|(i, _)| i.name.clone())
            .collect()
    }

    fn find(&self, name: &str, kind: PluginKind) -> Result<&ComponentInfo> {
        let kind = kind.as_str();
        let (plain, plugin_only) = match name.strip_prefix(PLUGIN_PREFIX) {
            Some(n) => (n, true),
            None => (name, false),
        };
        let hit = self.items.iter().find(|(i, shadowed)| {
            i.kind == kind
                && i.name == plain
                && (if plugin_only {
                    i.abi.is_some()
                } else {
                    !shadowed
                })
        });
        if let Some((i, _)) = hit {
            return Ok(i);
        }
        let names: Vec<&str> = self
            .items
            .iter()
            .filter(|(i, shadowed)| i.kind == kind && !shadowed)
            .map(|(i, _)| i.name.as_str())
            .collect();
        let hint = match crate::util::closest(plain, &names) {
            Some(c) => format!("; did you mean `{c}`?"),
            None if kind == "policy" && !self.items.iter().any(|(i, _)| i.abi.is_some()) => {
                "; no plugin library was found: build the bundled baselines with \
                 `cargo build -p perllm-plugins` or pass `--plugin PATH`"
                    .to_string()
            }
            None => String::new(),
        };
        Err(CliError::input(format!(
            "unknown {} `{name}` (available: {}){hint}",
            kind.replace('-', " "),
            names.join(", ")
        )))
    }

    /// Information on a policy; errors (with a suggestion) for an unknown name.
    pub fn policy_info(&self, name: &str) -> Result<&ComponentInfo> {
        self.find(name, PluginKind::Policy)
    }

    /// Information on a cost model; errors for an unknown name.
    pub fn cost_model_info(&self, name: &str) -> Result<&ComponentInfo> {
        self.find(name, PluginKind::CostModel)
    }

    /// A fresh instance of the policy `spec` names for `world` (whose scenario carries the seed).
    pub fn policy(&self, spec: &PolicySpec, world: &World) -> Result<Box<dyn Policy>> {
        self.policy_info(&spec.name)?;
        self.registry
            .policy(spec, world, world.scenario.seed)
            .map_err(|e| CliError::input(format!("cannot set up policy `{}`: {e}", spec.name)))
    }

    /// [`Catalog::policy`] for one run of a study: the run's failures are its own (check them
    /// with [`perllm_host::RunCheck::check`] after the run), not [`Catalog::check`]'s.
    pub fn policy_for_run(
        &self,
        spec: &PolicySpec,
        world: &World,
    ) -> Result<(Box<dyn Policy>, perllm_host::RunCheck)> {
        self.policy_info(&spec.name)?;
        self.registry
            .policy_for_run(spec, world, world.scenario.seed)
            .map_err(|e| CliError::policy(format!("cannot set up policy `{}`: {e}", spec.name)))
    }

    /// The cost model `name` with its JSON configuration (empty for defaults).
    pub fn cost_model(&self, name: &str, config_json: &str) -> Result<Arc<dyn CostModel>> {
        self.cost_model_info(name)?;
        self.registry
            .cost_model(name, config_json)
            .map_err(|e| CliError::input(format!("cannot set up cost model `{name}`: {e}")))
    }

    /// Did a plugin fail (error, panic, invalid result) during the runs so far? A run during which
    /// a plugin failed is not a valid result.
    pub fn check(&self) -> Result<()> {
        self.registry
            .check()
            .map_err(|e| CliError::run(format!("a plugin failed during the run: {e}")))
    }
}

/// Calls of one plugin policy over its wall-clock budget, summed over runs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BudgetUse {
    /// Timed calls (`schedule` and `observe`).
    pub calls: f64,
    /// Calls longer than the budget.
    pub over: f64,
    /// The longest call, µs.
    pub max_us: f64,
    /// The budget, µs.
    pub budget_us: f64,
}

impl BudgetUse {
    /// Read from a policy's stats (`wallclock.plugin.*`); `None` for a built-in policy.
    pub fn from_stats(stats: &perllm_core::policy::PolicyStats) -> Option<BudgetUse> {
        let key = |k: &str| format!("{}plugin.{k}", perllm_host::WALLCLOCK_PREFIX);
        let v = |k: &str| stats.values.get(&key(k)).copied();
        let budget_us = v("call_budget_us")?;
        let mut u = BudgetUse {
            budget_us,
            ..BudgetUse::default()
        };
        for what in ["schedule", "observe"] {
            u.calls += v(&format!("{what}.calls")).unwrap_or(0.0);
            u.over += v(&format!("{what}.over_budget")).unwrap_or(0.0);
            u.max_us = u.max_us.max(v(&format!("{what}.max_us")).unwrap_or(0.0));
        }
        Some(u)
    }

    /// Add another run's use.
    pub fn add(&mut self, o: &BudgetUse) {
        self.calls += o.calls;
        self.over += o.over;
        self.max_us = self.max_us.max(o.max_us);
        self.budget_us = o.budget_us;
    }

    /// A warning for `policy` (from `source`) if any call was over the budget.
    pub fn warning(&self, policy: &str, source: &str) -> Option<String> {
        (self.over > 0.0).then(|| {
            format!(
                "warning: plugin policy `{policy}` ({source}) took longer than its {} call budget \
                 in {} of {} `schedule`/`observe` calls (longest {}); the calls were not interrupted and the results \
                 are valid, but the run was slow (raise the budget with --call-budget)\n",
                crate::util::si(self.budget_us * 1e-6, "s"),
                self.over,
                self.calls,
                crate::util::si(self.max_us * 1e-6, "s")
            )
        })
    }
}
