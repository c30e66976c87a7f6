//! Failures recorded by foreign policies and cost models, for checks after (or during) a run.

use crate::error::HostError;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Failures of the plugins a registry created, in the order they happened.
#[derive(Debug, Default)]
pub(crate) struct Health {
    failures: Mutex<Vec<(Kind, String, HostError)>>,
    /// Set once a cost model failed: the per-slot check needs no lock.
    cost_model_failed: AtomicBool,
    /// The registry's health, for the health of one run: cost-model failures are the
    /// registry's (its cost models are shared by runs), policy failures the run's own.
    parent: Option<std::sync::Arc<Health>>,
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
        if kind == Kind::CostModel {
            self.cost_model_failed.store(true, Ordering::Release);
        }
    }
    /// A health for one run's policy, whose cost-model failures are `parent`'s.
    pub fn child(parent: &std::sync::Arc<Health>) -> Health {
        Health {
            parent: Some(parent.clone()),
            ..Health::default()
        }
    }
    /// The first failure of any cost model.
    pub fn cost_model_failure(&self) -> Option<HostError> {
        if let Some(p) = &self.parent {
            return p.cost_model_failure();
        }
        if !self.cost_model_failed.load(Ordering::Acquire) {
            return None;
        }
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
