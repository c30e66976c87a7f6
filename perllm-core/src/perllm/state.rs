//! The policy's state: the arms and classes it learns, requests in flight, decision records for
//! regret, counters, the last slot's notes; building it, and the feedback step (`observe`) that
//! updates an arm when a request completes.

use super::Mode;
use super::bandit::{Arms, Classifier, Sample};
use super::constraints::Compiled;
use super::params::Params;
use super::plan::{Group, Method};
use crate::policy::{Decision, PolicyError};
use crate::request::Outcome;
use crate::spec::{ObjectiveWeights, PolicySpec};
use crate::world::{ServerId, World};
use std::collections::HashMap;

/// A request placed and not yet observed.
#[derive(Clone, Copy, Debug)]
pub(super) struct InFlight {
    pub(super) class: u32,
    pub(super) server: ServerId,
    /// Predicted processing time from arrival, without the learned correction, ns.
    pub(super) predicted_ns: f64,
    /// Predicted weighted energy, without the learned correction, J.
    pub(super) predicted_energy: f64,
    /// The server's resource slack when the request was placed.
    pub(super) rho: f64,
}

/// A decision, for hindsight regret.
#[derive(Clone, Copy, Debug)]
pub(super) struct Record {
    pub(super) t_s: f64,
    pub(super) class: u32,
    pub(super) server: ServerId,
    /// Index into `Core::sets`: servers feasible for the request with capacity in that slot.
    pub(super) set: u32,
}

/// How one request of the last slot was decided (for `explain`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Note {
    pub(super) request: u64,
    pub(super) class: Option<u32>,
    pub(super) group: Option<u32>,
    pub(super) decision: Decision,
    pub(super) via: &'static str,
}

#[derive(Clone, Debug, Default)]
pub(super) struct Counters {
    pub(super) bad_observations: u64,
    pub(super) slots: u64,
    pub(super) decisions: u64,
    pub(super) assigned: u64,
    pub(super) rejected: u64,
    pub(super) deferred: u64,
    pub(super) best_effort: u64,
    pub(super) explored: u64,
    pub(super) lp_solves: u64,
    pub(super) lp_skipped: u64,
    pub(super) lp_fallbacks: u64,
    pub(super) greedy: u64,
    /// Slots with nothing left for the placement step (every request infeasible or explored).
    pub(super) empty_slots: u64,
    pub(super) lp_vars_max: u64,
    pub(super) lp_rows_max: u64,
    pub(super) last_lp_error: Option<String>,
}

/// The engine shared by [`PerLlm`] and the offline oracle.
pub(crate) struct Core {
    pub(super) name: String,
    pub(super) mode: Mode,
    pub(super) params: Params,
    pub(super) weights: ObjectiveWeights,
    pub(super) constraints: Compiled,
    pub(super) classifier: Classifier,
    pub(super) arms: Arms,
    /// Reference energy, weighted J per token (the normaliser of the energy term).
    pub(super) e_ref: Option<f64>,
    pub(super) inflight: HashMap<u64, InFlight>,
    /// Per server: mean KV bytes and upload bits of the requests sent there (to charge queued
    /// and uploading requests against the budgets).
    pub(super) mean_kv: Vec<(f64, u64)>,
    pub(super) mean_bits: Vec<(f64, u64)>,
    pub(super) counters: Counters,
    pub(super) records: Vec<Record>,
    pub(super) sets: Vec<Vec<ServerId>>,
    pub(super) set_index: HashMap<Vec<ServerId>, u32>,
    pub(super) last_groups: Vec<Group>,
    pub(super) last_notes: Vec<Note>,
    pub(super) last_method: Method,
    pub(super) last_rho: Vec<f64>,
    /// Placements within the share window: (time, server), oldest first, and counts per server.
    pub(super) window: std::collections::VecDeque<(u64, ServerId)>,
    pub(super) recent: Vec<u32>,
}

impl Core {
    pub(crate) fn new(spec: &PolicySpec, world: &World, mode: Mode) -> Result<Core, PolicyError> {
        let params = Params::from_spec(spec)?;
        let constraints = Compiled::new(&spec.name, world)?;
        let n = world.servers.len();
        Ok(Core {
            name: spec.name.clone(),
            mode,
            classifier: Classifier::new(&params),
            params,
            weights: world.scenario.objective.weights,
            constraints,
            arms: Arms::default(),
            e_ref: None,
            inflight: HashMap::new(),
            mean_kv: vec![(0.0, 0); n],
            mean_bits: vec![(0.0, 0); n],
            counters: Counters::default(),
            records: Vec::new(),
            sets: Vec::new(),
            set_index: HashMap::new(),
            last_groups: Vec::new(),
            last_notes: Vec::new(),
            last_method: Method::Empty,
            last_rho: Vec::new(),
            window: std::collections::VecDeque::new(),
            recent: vec![0; n],
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn err(&self, m: impl Into<String>) -> PolicyError {
        PolicyError {
            policy: self.name.clone(),
            message: m.into(),
        }
    }

    pub(crate) fn observe(&mut self, o: &Outcome) {
        let Some(f) = self.inflight.remove(&o.request.id) else {
            return;
        };
        if f.server != o.server {
            self.counters.bad_observations += 1;
            return;
        }
        if !(o.energy.transmission.is_finite()
            && o.energy.inference.is_finite()
            && o.energy.idle.is_finite())
        {
            // A non-finite energy (e.g. from a plugin cost model) would poison the arm forever.
            self.counters.bad_observations += 1;
            return;
        }
        let e_ref = self.e_ref.unwrap_or(1.0);
        let r = &o.request;
        let tokens = (r.prompt_tokens + r.output_tokens) as f64;
        let weighted = o.energy.weighted(&self.weights);
        let energy = (weighted / (tokens * e_ref)).clamp(0.0, 4.0);
        let deadline = o.deadline_ns.max(1) as f64;
        let slack = ((deadline - o.total_ns as f64) / deadline).clamp(-1.0, 1.0);
        let latency_ratio = if f.predicted_ns > 0.0 {
            (o.total_ns as f64 / f.predicted_ns).clamp(0.1, 10.0)
        } else {
            1.0
        };
        let energy_ratio = if f.predicted_energy > 0.0 {
            (weighted / f.predicted_energy).clamp(0.1, 10.0)
        } else {
            1.0
        };
        let reward = -energy + self.params.constraint_weight * slack.min(f.rho);
        let sample = Sample {
            energy,
            slack,
            latency_ratio,
            energy_ratio,
        };
        let p = self.params.clone();
        self.arms.ensure(f.class, self.mean_kv.len());
        self.arms
            .observe(&p, f.class, f.server as usize, sample, reward, !o.met);
    }
}
