//! The policy's state: the arms and classes it learns, requests in flight, decision records for
//! regret, counters, the last slot's notes; building it, and the feedback step (`observe`) that
//! updates an arm when a request completes.

use super::Mode;
use super::bandit::{Arms, Classifier, Sample};
use super::constraints::Compiled;
use super::params::{Params, Variant};
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
    /// Per server: its arm column (its pool). The paper variant gives every server its own; the
    /// improved variant shares one among interchangeable servers (see [`pools`]).
    pub(super) pool: Vec<u32>,
    /// Number of arm columns.
    pub(super) n_pools: usize,
    /// The improved variant's per-slot counters.
    pub(super) improved: ImprovedCounters,
    /// Per server: mean predicted work (prefill + decode ns) of the requests the improved
    /// variant admitted there, and their count (`admit`).
    pub(super) mean_work: Vec<(f64, u64)>,
    /// Per server: its kind (the pool it would be in), for the fast path's estimate cells.
    pub(super) est_pool: Vec<u32>,
    /// Use the fast path where it applies (tests turn it off to compare).
    pub(crate) fast_path: bool,
}

/// Counters of the improved variant (all zero for the paper variant).
#[derive(Clone, Debug, Default)]
pub(super) struct ImprovedCounters {
    /// (group, server) pairs whose optimistic index could not beat the best pessimistic one:
    /// scored by their mean, without exploration bonus.
    pub(super) eliminated: u64,
    /// (request, server) pairs left out because the request's deadline was predicted lost there.
    pub(super) deadline_filtered: u64,
    /// Placements on an arm (class, pool) that had no observation yet.
    pub(super) first_tries: u64,
    /// Placements rejected because the cost model, with the slot's queue, predicts the deadline
    /// missed on the chosen server (`admit`).
    pub(super) predicted_miss: u64,
    /// Placements deferred because the server would queue them and they cost more than its mean
    /// admitted request (`admit`).
    pub(super) overload_deferred: u64,
}

/// What makes servers interchangeable for the improved variant: same tier, hardware (kind and
/// count), link type, hosted models, batch limit, KV memory, batching choice and contention.
/// Returns each server's pool and the number of pools (pools numbered in order of first server).
pub(crate) fn pools(world: &World) -> (Vec<u32>, usize) {
    type Key = (
        crate::spec::Tier,
        usize,
        u32,
        usize,
        Vec<crate::world::ModelId>,
        u32,
        u64,
        crate::spec::Batching,
        u64,
    );
    let mut seen: HashMap<Key, u32> = HashMap::new();
    let mut out = Vec::with_capacity(world.servers.len());
    for s in &world.servers {
        let key: Key = (
            s.tier,
            s.hardware,
            s.count,
            s.link,
            s.models.clone(),
            s.max_batch,
            s.kv_capacity_bytes,
            s.batching,
            s.contention.to_bits(),
        );
        let next = seen.len() as u32;
        out.push(*seen.entry(key).or_insert(next));
    }
    let n = seen.len();
    (out, n)
}

impl Core {
    pub(crate) fn new(spec: &PolicySpec, world: &World, mode: Mode) -> Result<Core, PolicyError> {
        let mut params = Params::from_spec(spec)?;
        if mode == Mode::Oracle {
            if spec.params.contains_key("variant") {
                return Err(PolicyError {
                    policy: spec.name.clone(),
                    message: "parameter `variant`: this policy learns nothing, so it has no \
                              variants (`variant` is a parameter of `perllm`)"
                        .into(),
                });
            }
            // The improved variant changes only how the learner learns and explores.
            params.variant = Variant::Paper;
        }
        let constraints = Compiled::new(&spec.name, world)?;
        let n = world.servers.len();
        let (est_pool, n_kinds) = pools(world);
        let (pool, n_pools) = match params.variant {
            Variant::Paper => ((0..n as u32).collect(), n),
            Variant::Improved => (est_pool.clone(), n_kinds),
        };
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
            pool,
            n_pools,
            improved: ImprovedCounters::default(),
            mean_work: vec![(0.0, 0); world.servers.len()],
            est_pool,
            fast_path: true,
        })
    }

    /// Does the improved variant's learning run (learned mode, `variant = improved`)?
    pub(super) fn is_improved(&self) -> bool {
        self.mode == Mode::Learn && self.params.variant == Variant::Improved
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
        self.arms.ensure(f.class, self.n_pools);
        let col = self.pool[f.server as usize] as usize;
        self.arms.observe(&p, f.class, col, sample, reward, !o.met);
    }
}
