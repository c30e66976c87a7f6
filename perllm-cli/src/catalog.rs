//! Policies and cost models available to a command: the built-in ones and those of loaded
//! plugins. The one place the CLI talks to the plugin host.

use crate::error::{CliError, Result};
use crate::provenance::PERLLM_VERSION;
use perllm_core::spec::PolicySpec;
use perllm_core::{CostModel, Policy, World};
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
    /// Plugin ABI version, `null` for built-ins.
    pub abi: Option<u32>,
    /// `built-in` or the plugin library's path.
    pub source: String,
}

/// The catalogue of policies and cost models.
pub struct Catalog {
    items: Vec<ComponentInfo>,
}

/// Name of the default cost model.
pub const DEFAULT_COST_MODEL: &str = "roofline";

fn builtin(name: &str, kind: &str) -> ComponentInfo {
    ComponentInfo {
        name: name.into(),
        kind: kind.into(),
        version: PERLLM_VERSION.into(),
        abi: None,
        source: "built-in".into(),
    }
}

impl Catalog {
    /// Built-ins plus the plugins found at `plugins` (files or directories).
    pub fn discover(plugins: &[PathBuf]) -> Result<Catalog> {
        if let Some(p) = plugins.first() {
            return Err(CliError::input(format!(
                "cannot load plugin `{}`: this build has no plugin host",
                p.display()
            )));
        }
        Ok(Catalog {
            items: vec![
                builtin("perllm", "policy"),
                builtin("oracle", "policy"),
                builtin("least-loaded", "policy"),
                builtin(DEFAULT_COST_MODEL, "cost-model"),
            ],
        })
    }

    /// Everything available, policies first, each group sorted by name.
    pub fn list(&self) -> Vec<ComponentInfo> {
        let mut v = self.items.clone();
        v.sort_by(|a, b| (a.kind != "policy", &a.name).cmp(&(b.kind != "policy", &b.name)));
        v
    }

    /// Names of the available policies, sorted.
    pub fn policy_names(&self) -> Vec<String> {
        self.list()
            .into_iter()
            .filter(|i| i.kind == "policy")
            .map(|i| i.name)
            .collect()
    }

    fn find(&self, name: &str, kind: &str) -> Result<&ComponentInfo> {
        self.items
            .iter()
            .find(|i| i.name == name && i.kind == kind)
            .ok_or_else(|| {
                let names: Vec<&str> = self
                    .items
                    .iter()
                    .filter(|i| i.kind == kind)
                    .map(|i| i.name.as_str())
                    .collect();
                let hint = match crate::util::closest(name, &names) {
                    Some(c) => format!("; did you mean `{c}`?"),
                    None => String::new(),
                };
                CliError::input(format!(
                    "unknown {} `{name}` (available: {}){hint}",
                    kind.replace('-', " "),
                    names.join(", ")
                ))
            })
    }

    /// Information on a policy; errors (with a suggestion) for an unknown name.
    pub fn policy_info(&self, name: &str) -> Result<&ComponentInfo> {
        self.find(name, "policy")
    }

    /// Information on a cost model; errors for an unknown name.
    pub fn cost_model_info(&self, name: &str) -> Result<&ComponentInfo> {
        self.find(name, "cost-model")
    }

    /// A fresh instance of the policy `spec` names for `world` (whose scenario carries the seed).
    pub fn policy(&self, spec: &PolicySpec, world: &World) -> Result<Box<dyn Policy>> {
        self.policy_info(&spec.name)?;
        if let Some(p) = perllm_core::policies::builtin(spec, world) {
            return p.map_err(|e| CliError::input(format!("cannot set up {e}")));
        }
        match spec.name.as_str() {
            "least-loaded" => Ok(Box::new(perllm_core::simple::LeastLoaded::default())),
            other => Err(CliError::input(format!("unknown policy `{other}`"))),
        }
    }

    /// The cost model `name` names.
    pub fn cost_model(&self, name: &str) -> Result<Arc<dyn CostModel>> {
        self.cost_model_info(name)?;
        Ok(Arc::new(perllm_core::Roofline::default()))
    }
}
