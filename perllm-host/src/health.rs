//! Failures recorded by foreign policies and cost models, for checks after (or during) a run.

use crate::error::HostError;
use std::sync::Mutex;

/// Failures of the plugins a registry created, in the order they happened.
#[derive(Debug, Default)]
pub(crate) struct Health {
    failures: Mutex<Vec<(Kind, String, HostError)>>,
}

/// What failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Policy,
    CostModel,
}

impl Health {
    pub fn fail(&self, kind: Kind, plugin: &str, e: HostError) {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        f.push((kind, plugin.to_string(), e));
    }
    /// The first failure of any cost model.
    pub fn cost_model_failure(&self) -> Option<HostError> {
        let f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        f.iter()
            .find(|x| x.0 == Kind::CostModel)
            .map(|x| x.2.clone())
    }
    /// The first failure of anything, or of the plugin named `name`.
    pub fn first(&self, name: Option<&str>) -> Option<HostError> {
        let f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        f.iter()
            .find(|x| name.is_none_or(|n| x.1 == n))
            .map(|x| x.2.clone())
    }
}
