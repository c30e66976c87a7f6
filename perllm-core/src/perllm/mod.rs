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

mod bandit;
pub(crate) mod constraints;
pub mod params;
pub(crate) mod plan;

use crate::cost::Estimate;
use crate::policy::{ClusterView, Decision, Pending, Policy, PolicyError, PolicyStats};
use crate::request::{Outcome, Request};
use crate::spec::{ObjectiveWeights, PolicySpec};
use crate::world::{ServerId, World};
use bandit::{ArmView, Arms, Classifier, Sample};
use constraints::{Compiled, RequestQty};
pub use params::{Infeasible, Params};
use plan::{Budgets, Group, Ledger, Method};
use serde_json::json;
use std::collections::HashMap;

/// Where a request's costs come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Learned: cost-model estimates corrected by the arms' realised/predicted ratios, and the
    /// CS-UCB index as the LP score.
    Learn,
    /// Oracle: true costs from the hidden ground truth, score = the request's true reward.
    Oracle,
}

/// A request placed and not yet observed.
#[derive(Clone, Copy, Debug)]
struct InFlight {
    class: u32,
    server: ServerId,
    /// Predicted processing time from arrival, without the learned correction, ns.
    predicted_ns: f64,
    /// Predicted weighted energy, without the learned correction, J.
    predicted_energy: f64,
    /// The server's resource slack when the request was placed.
    rho: f64,
}

/// A decision, for hindsight regret.
#[derive(Clone, Copy, Debug)]
struct Record {
    t_s: f64,
    class: u32,
    server: ServerId,
    /// Index into `Core::sets`: servers feasible for the request with capacity in that slot.
    set: u32,
}

/// How one request of the last slot was decided (for `explain`).
#[derive(Clone, Copy, Debug)]
struct Note {
    request: u64,
    class: Option<u32>,
    group: Option<u32>,
    decision: Decision,
    via: &'static str,
}

#[derive(Clone, Debug, Default)]
struct Counters {
    bad_observations: u64,
    slots: u64,
    decisions: u64,
    assigned: u64,
    rejected: u64,
    deferred: u64,
    best_effort: u64,
    explored: u64,
    lp_solves: u64,
    lp_skipped: u64,
    lp_fallbacks: u64,
    greedy: u64,
    /// Slots with nothing left for the placement step (every request infeasible or explored).
    empty_slots: u64,
    lp_vars_max: u64,
    lp_rows_max: u64,
    last_lp_error: Option<String>,
}

/// The engine shared by [`PerLlm`] and the offline oracle.
pub(crate) struct Core {
    name: String,
    mode: Mode,
    params: Params,
    weights: ObjectiveWeights,
    constraints: Compiled,
    classifier: Classifier,
    arms: Arms,
    /// Reference energy, weighted J per token (the normaliser of the energy term).
    e_ref: Option<f64>,
    inflight: HashMap<u64, InFlight>,
    /// Per server: mean KV bytes and upload bits of the requests sent there (to charge queued
    /// and uploading requests against the budgets).
    mean_kv: Vec<(f64, u64)>,
    mean_bits: Vec<(f64, u64)>,
    counters: Counters,
    records: Vec<Record>,
    sets: Vec<Vec<ServerId>>,
    set_index: HashMap<Vec<ServerId>, u32>,
    last_groups: Vec<Group>,
    last_notes: Vec<Note>,
    last_method: Method,
    last_rho: Vec<f64>,
    /// Placements within the share window: (time, server), oldest first, and counts per server.
    window: std::collections::VecDeque<(u64, ServerId)>,
    recent: Vec<u32>,
}

fn kv_bytes(world: &World, r: &Request) -> f64 {
    (r.prompt_tokens as f64 + r.output_tokens as f64)
        * world.models[r.model as usize].kv_bytes_per_token as f64
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

    fn err(&self, m: impl Into<String>) -> PolicyError {
        PolicyError {
            policy: self.name.clone(),
            message: m.into(),
        }
    }

    /// The energy normaliser: the largest weighted energy per token of a reference request
    /// (512 prompt and 128 output tokens, 64 KiB up, 512 B down) over every (server, hosted
    /// model) pair on an idle server, by the cost model.
    fn reference_energy(&self, view: &ClusterView<'_>) -> f64 {
        let w = view.world;
        let mut best = 0.0f64;
        for s in &w.servers {
            for &m in &s.models {
                let r = Request {
                    id: 0,
                    arrival_ns: 0,
                    model: m,
                    prompt_tokens: 512,
                    output_tokens: 128,
                    input_bytes: 64 << 10,
                    output_bytes: 512,
                    slo: 0,
                };
                let hint = crate::cost::LoadHint {
                    queued: 0,
                    running: 0,
                    active_uploads: 0,
                    bandwidth_bps: w.links[s.link].bandwidth_bps,
                    free_kv_bytes: s.kv_capacity_bytes,
                    running_models: 0,
                    mean_batch: 0.0,
                    other_models_load: None,
                };
                let e = view.cost.estimate(w, s, &r, &hint);
                let v = e.energy.weighted(&self.weights) / 640.0;
                if v.is_finite() {
                    best = best.max(v);
                }
            }
        }
        if best > 0.0 { best } else { 1.0 }
    }

    /// Estimate of `r` on `s`: the cost model's (learned mode) or with the true link bandwidth
    /// (oracle mode).
    fn estimate(
        &self,
        view: &ClusterView<'_>,
        r: &Request,
        s: ServerId,
    ) -> Result<Estimate, PolicyError> {
        match self.mode {
            Mode::Learn => Ok(view.estimate(r, s)),
            Mode::Oracle => {
                let truth = view.truth.ok_or_else(|| {
                    self.err("the oracle needs the ground truth, but the view has none")
                })?;
                let w = view.world;
                let server = &w.servers[s as usize];
                let st = &view.servers[s as usize];
                let mut hint = st.load_hint();
                hint.bandwidth_bps =
                    *truth.link_bandwidth_bps.get(s as usize).ok_or_else(|| {
                        self.err(format!(
                            "ground truth has no link bandwidth for server {}",
                            server.name
                        ))
                    })?;
                // The estimate already includes the (calibrated, public) batch interference.
                Ok(view.cost.estimate(w, server, r, &hint))
            }
        }
    }

    pub(crate) fn schedule(
        &mut self,
        view: &ClusterView<'_>,
        pending: &[Pending],
        out: &mut [Decision],
    ) -> Result<(), PolicyError> {
        let world = view.world;
        let n_servers = world.servers.len();
        if out.len() != pending.len() {
            return Err(self.err(format!(
                "{} decisions for {} pending requests",
                out.len(),
                pending.len()
            )));
        }
        if view.servers.len() != n_servers {
            return Err(self.err(format!(
                "the view has {} server states for {} servers",
                view.servers.len(),
                n_servers
            )));
        }
        if self.mean_kv.len() != n_servers {
            return Err(self.err(format!(
                "built for {} servers, the view has {}",
                self.mean_kv.len(),
                n_servers
            )));
        }
        let e_ref = match self.e_ref {
            Some(e) => e,
            None => {
                let e = self.reference_energy(view);
                self.e_ref = Some(e);
                e
            }
        };
        self.counters.slots += 1;
        self.last_notes.clear();
        self.last_groups.clear();
        let p = self.params.clone();
        let now = view.now_ns;
        let horizon = (p.share_window * 1e9) as u64;
        while let Some(&(t, s)) = self.window.front() {
            if t + horizon > now && horizon > 0 {
                break;
            }
            self.window.pop_front();
            self.recent[s as usize] -= 1;
        }

        // 1. Budgets and resource slack.
        let mut budgets = Budgets {
            batch: Vec::with_capacity(n_servers),
            kv: Vec::with_capacity(n_servers),
            link: Vec::with_capacity(n_servers),
            link_cap: Vec::with_capacity(n_servers),
            user: Vec::new(),
        };
        let mut rho = Vec::with_capacity(n_servers);
        for (i, s) in world.servers.iter().enumerate() {
            let st = &view.servers[i];
            let committed = (st.running + st.queued + st.uploading) as f64;
            let waiting = (st.queued + st.uploading) as f64;
            let batch_cap = (1.0 + p.queue_factor) * s.max_batch as f64;
            let b = (batch_cap - committed).max(0.0).floor();
            let kv_cap =
                (1.0 + p.queue_factor) * st.kv_capacity_bytes.max(s.kv_capacity_bytes) as f64;
            let kv_used = st.kv_capacity_bytes.saturating_sub(st.free_kv_bytes) as f64
                + waiting * self.mean_kv[i].0;
            let k = (kv_cap - kv_used).max(0.0);
            let bw = match (self.mode, view.truth) {
                (Mode::Oracle, Some(t)) => t
                    .link_bandwidth_bps
                    .get(i)
                    .copied()
                    .unwrap_or(st.bandwidth_estimate_bps),
                _ => st.bandwidth_estimate_bps,
            };
            let link_cap = (bw * p.link_window).max(0.0);
            let l = (link_cap - st.uploading as f64 * self.mean_bits[i].0).max(0.0);
            let frac = |x: f64, cap: f64| {
                if cap > 0.0 {
                    (x / cap).clamp(0.0, 1.0)
                } else {
                    0.0
                }
            };
            rho.push(
                frac(b, batch_cap)
                    .min(frac(k, kv_cap))
                    .min(frac(l, link_cap)),
            );
            budgets.batch.push(b);
            budgets.kv.push(k);
            budgets.link.push(l);
            budgets.link_cap.push(link_cap);
        }
        for (i, c) in self.constraints.per_slot.iter().enumerate() {
            c.rows(i, world, view.servers, &self.recent, &mut budgets.user);
        }

        // 2-3. Feasibility, scores, groups.
        let mut groups: Vec<Group> = Vec::new();
        // Feasible set -> [(class, group)]: looked up by slice, so no allocation per request.
        let mut group_of: HashMap<Vec<ServerId>, Vec<(u32, usize)>> = HashMap::new();
        let mut member_urgency: Vec<f64> = vec![0.0; pending.len()];
        // (request, fastest server hosting its model with KV memory enough; None: no such server)
        let mut infeasible: Vec<(usize, Option<ServerId>)> = Vec::new();
        let mut req_class = vec![0u32; pending.len()];
        let mut member_group: Vec<Option<u32>> = vec![None; pending.len()];
        let mut feas: Vec<ServerId> = Vec::new();
        let mut dlist: Vec<f64> = Vec::new();
        let mut tscore: Vec<f64> = Vec::new();
        // Raw estimates (total ns, weighted J) of each request's feasible pairs, reused when the
        // request is placed: request i's are `pairs[pair_start[i]..pair_start[i + 1]]`.
        let mut pairs: Vec<(ServerId, f64, f64)> = Vec::new();
        let mut pair_start: Vec<usize> = Vec::with_capacity(pending.len() + 1);
        for (i, pd) in pending.iter().enumerate() {
            pair_start.push(pairs.len());
            let r = &pd.request;
            if r.model as usize >= world.models.len() || r.slo as usize >= world.slos.len() {
                return Err(self.err(format!(
                    "request {} names an unknown model or SLO class",
                    r.id
                )));
            }
            let c = self.classifier.class_of(r);
            self.arms.ensure(c, n_servers);
            req_class[i] = c;
            let deadline_s = world.slos[r.slo as usize].deadline_ns as f64 / 1e9;
            let waited_s = now.saturating_sub(r.arrival_ns) as f64 / 1e9;
            member_urgency[i] = deadline_s - waited_s;
            let kv = kv_bytes(world, r);
            feas.clear();
            dlist.clear();
            tscore.clear();
            let mut fastest: Option<(f64, ServerId)> = None;
            for s in &world.servers {
                if !s.hosts(r.model) || kv > s.kv_capacity_bytes as f64 {
                    continue;
                }
                let e = self.estimate(view, r, s.id)?;
                let (lr, er) = match self.mode {
                    Mode::Learn => {
                        let v = self.arms.arms[c as usize][s.id as usize]
                            .view(&p, self.arms.clock[c as usize]);
                        (v.latency_ratio, v.energy_ratio)
                    }
                    Mode::Oracle => (1.0, 1.0),
                };
                let d = waited_s + e.total_ns() as f64 / 1e9 * lr;
                if fastest.is_none_or(|f| d < f.0) {
                    fastest = Some((d, s.id));
                }
                let q = RequestQty {
                    latency_s: d,
                    deadline_s,
                    e_tx: e.energy.transmission * er,
                    e_inf: e.energy.inference * er,
                    e_idle: e.energy.idle * er,
                };
                if self.constraints.per_request.iter().all(|k| k.holds(&q)) {
                    feas.push(s.id);
                    dlist.push(d);
                    pairs.push((s.id, e.total_ns() as f64, e.energy.weighted(&self.weights)));
                    if self.mode == Mode::Oracle {
                        let tokens = (r.prompt_tokens + r.output_tokens) as f64;
                        let en = e.energy.weighted(&self.weights) / (tokens * e_ref);
                        let slack = ((deadline_s - d) / deadline_s).clamp(-1.0, 1.0);
                        tscore.push(-en + p.constraint_weight * slack.min(rho[s.id as usize]));
                    }
                }
            }
            if feas.is_empty() {
                infeasible.push((i, fastest.map(|f| f.1)));
                continue;
            }
            let found = group_of
                .get(feas.as_slice())
                .and_then(|v| v.iter().find(|x| x.0 == c))
                .map(|x| x.1);
            let g = match found {
                Some(g) => g,
                None => {
                    let score = match self.mode {
                        Mode::Learn => feas
                            .iter()
                            .map(|&s| self.arms.index(&p, c, s as usize, rho[s as usize]).0)
                            .collect(),
                        Mode::Oracle => vec![0.0; feas.len()],
                    };
                    groups.push(Group {
                        class: c,
                        members: Vec::new(),
                        servers: feas.clone(),
                        score,
                        mean_d: vec![0.0; feas.len()],
                        kv: 0.0,
                        bits: 0.0,
                    });
                    let g = groups.len() - 1;
                    group_of.entry(feas.clone()).or_default().push((c, g));
                    g
                }
            };
            member_group[i] = Some(g as u32);
            let grp = &mut groups[g];
            grp.members.push(i as u32);
            grp.kv += kv;
            grp.bits += r.input_bytes as f64 * 8.0;
            for k in 0..feas.len() {
                grp.mean_d[k] += dlist[k];
                if self.mode == Mode::Oracle {
                    grp.score[k] += tscore[k];
                }
            }
        }
        pair_start.push(pairs.len());
        for grp in groups.iter_mut() {
            let n = grp.members.len() as f64;
            grp.kv /= n;
            grp.bits /= n;
            grp.mean_d.iter_mut().for_each(|d| *d /= n);
            if self.mode == Mode::Oracle {
                grp.score.iter_mut().for_each(|s| *s /= n);
            }
            grp.members.sort_by(|&a, &b| {
                member_urgency[a as usize]
                    .total_cmp(&member_urgency[b as usize])
                    .then(
                        pending[a as usize]
                            .request
                            .id
                            .cmp(&pending[b as usize].request.id),
                    )
            });
        }

        // 4. Exploration of never-tried arms, one request (the one with the most slack) each.
        let mut ledger = Ledger::new(&budgets);
        let mut decided: Vec<Option<(ServerId, &'static str, Option<u32>)>> =
            vec![None; pending.len()];
        if self.mode == Mode::Learn {
            for (g, grp) in groups.iter_mut().enumerate() {
                let c = grp.class as usize;
                for k in 0..grp.servers.len() {
                    let s = grp.servers[k];
                    if grp.members.is_empty() {
                        break;
                    }
                    if self.arms.arms[c][s as usize].assigned > 0
                        || !ledger.fits(&budgets, grp.kv, grp.bits, s)
                    {
                        continue;
                    }
                    let m = grp.members.pop().expect("non-empty");
                    ledger.add(&budgets, grp.kv, grp.bits, s, 1.0);
                    decided[m as usize] = Some((s, "explore", Some(g as u32)));
                    self.arms.arms[c][s as usize].assigned += 1;
                    self.counters.explored += 1;
                }
            }
        }

        // 5. The LP (or its shortcuts).
        let pl = plan::plan(&groups, &budgets, &mut ledger, p.use_lp);
        match pl.method {
            Method::Empty => self.counters.empty_slots += 1,
            Method::Skipped => self.counters.lp_skipped += 1,
            Method::Lp => {
                self.counters.lp_solves += 1;
                self.counters.lp_vars_max = self.counters.lp_vars_max.max(pl.lp_size.0 as u64);
                self.counters.lp_rows_max = self.counters.lp_rows_max.max(pl.lp_size.1 as u64);
            }
            Method::Fallback => {
                self.counters.lp_fallbacks += 1;
                self.counters.last_lp_error = pl.error.clone();
            }
            Method::Greedy => self.counters.greedy += 1,
        }
        let via = match pl.method {
            Method::Empty => "none",
            Method::Skipped => "lp_skipped",
            Method::Lp => "lp",
            Method::Fallback => "fallback",
            Method::Greedy => "greedy",
        };
        // 6. Individual placement: urgent members first, to the fastest servers of the allocation.
        for (g, grp) in groups.iter().enumerate() {
            let mut ks: Vec<usize> = (0..grp.servers.len())
                .filter(|&k| pl.counts[g][k] > 0)
                .collect();
            ks.sort_by(|&a, &b| grp.mean_d[a].total_cmp(&grp.mean_d[b]).then(a.cmp(&b)));
            let mut it = grp.members.iter();
            for k in ks {
                for _ in 0..pl.counts[g][k] {
                    if let Some(&m) = it.next() {
                        decided[m as usize] = Some((grp.servers[k], via, Some(g as u32)));
                    }
                }
            }
        }
        // Best effort: requests with no feasible server, and requests the per-slot user rows kept
        // off every feasible server, go to the hosting server with the smallest predicted D whose
        // budgets and per-slot rows still allow it (the per-request filters are relaxed, never the
        // per-slot rows).
        if p.infeasible == Infeasible::BestEffort {
            let mut tries: Vec<usize> = infeasible.iter().map(|x| x.0).collect();
            for (i, mg) in member_group.iter().enumerate() {
                if decided[i].is_none()
                    && let Some(g) = mg
                {
                    let grp = &groups[*g as usize];
                    if grp
                        .servers
                        .iter()
                        .any(|&s| ledger.fits_capacity(&budgets, grp.kv, grp.bits, s))
                    {
                        tries.push(i);
                    }
                }
            }
            tries.sort_unstable();
            for i in tries {
                let r = &pending[i].request;
                let (kv, bits) = (kv_bytes(world, r), r.input_bytes as f64 * 8.0);
                let mut order: Vec<(f64, ServerId)> = Vec::new();
                for s in &world.servers {
                    if s.hosts(r.model) && kv <= s.kv_capacity_bytes as f64 {
                        let lr = match self.mode {
                            Mode::Learn => {
                                self.arms.arms[req_class[i] as usize][s.id as usize]
                                    .view(&p, self.arms.clock[req_class[i] as usize])
                                    .latency_ratio
                            }
                            Mode::Oracle => 1.0,
                        };
                        order.push((self.estimate(view, r, s.id)?.total_ns() as f64 * lr, s.id));
                    }
                }
                order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                if let Some(&(_, s)) = order
                    .iter()
                    .find(|(_, s)| ledger.fits(&budgets, kv, bits, *s))
                {
                    ledger.add(&budgets, kv, bits, s, 1.0);
                    decided[i] = Some((s, "best_effort", None));
                    self.counters.best_effort += 1;
                }
            }
        }

        // Write decisions, record in-flight requests and regret records.
        // Infeasible request -> does any server host its model with KV memory enough for it?
        let infeasible_set: HashMap<usize, bool> =
            infeasible.iter().map(|x| (x.0, x.1.is_some())).collect();
        let t_s = now as f64 / 1e9;
        for (i, pd) in pending.iter().enumerate() {
            let r = &pd.request;
            self.counters.decisions += 1;
            let (d, via, group) = match decided[i] {
                Some((s, via, g)) => (Decision::Assign(s), via, g),
                // No server could ever take it: deferring (even for best effort) would only
                // repeat this decision.
                None if infeasible_set.get(&i) == Some(&false) => {
                    (Decision::Reject, "no_server", None)
                }
                None if infeasible_set.contains_key(&i) && p.infeasible == Infeasible::Reject => {
                    (Decision::Reject, "infeasible", None)
                }
                None if infeasible_set.contains_key(&i) => {
                    (Decision::Defer, "infeasible_no_capacity", None)
                }
                None => {
                    // Deferred: by the budgets, or by the user's per-slot constraints?
                    let full = member_group[i].is_none_or(|g| {
                        let grp = &groups[g as usize];
                        grp.servers
                            .iter()
                            .all(|&s| !ledger.fits_capacity(&budgets, grp.kv, grp.bits, s))
                    });
                    (
                        Decision::Defer,
                        if full { "capacity" } else { "constraint" },
                        member_group[i],
                    )
                }
            };
            out[i] = d;
            let class = req_class[i];
            self.last_notes.push(Note {
                request: r.id,
                class: Some(class),
                group,
                decision: d,
                via,
            });
            match d {
                Decision::Assign(s) => {
                    self.counters.assigned += 1;
                    if horizon > 0 {
                        self.window.push_back((now, s));
                        self.recent[s as usize] += 1;
                    }
                    let (est_ns, est_j) = match pairs[pair_start[i]..pair_start[i + 1]]
                        .iter()
                        .find(|x| x.0 == s)
                    {
                        Some(&(_, t, j)) => (t, j),
                        None => {
                            let e = self.estimate(view, r, s)?;
                            (e.total_ns() as f64, e.energy.weighted(&self.weights))
                        }
                    };
                    if via != "explore" {
                        self.arms.arms[class as usize][s as usize].assigned += 1;
                    }
                    let waited_ns = now.saturating_sub(r.arrival_ns) as f64;
                    self.inflight.insert(
                        r.id,
                        InFlight {
                            class,
                            server: s,
                            predicted_ns: waited_ns + est_ns,
                            predicted_energy: est_j,
                            rho: rho[s as usize],
                        },
                    );
                    let su = s as usize;
                    let (m, n) = self.mean_kv[su];
                    self.mean_kv[su] = (m + (kv_bytes(world, r) - m) / (n + 1) as f64, n + 1);
                    let (m, n) = self.mean_bits[su];
                    self.mean_bits[su] =
                        (m + (r.input_bytes as f64 * 8.0 - m) / (n + 1) as f64, n + 1);
                    if let Some(g) = group {
                        let set: Vec<ServerId> = groups[g as usize]
                            .servers
                            .iter()
                            .copied()
                            .filter(|&x| budgets.batch[x as usize] >= 1.0 || x == s)
                            .collect();
                        let id = match self.set_index.get(&set) {
                            Some(&id) => id,
                            None => {
                                let id = self.sets.len() as u32;
                                self.sets.push(set.clone());
                                self.set_index.insert(set, id);
                                id
                            }
                        };
                        self.records.push(Record {
                            t_s,
                            class,
                            server: s,
                            set: id,
                        });
                    }
                }
                Decision::Reject => self.counters.rejected += 1,
                Decision::Defer => self.counters.deferred += 1,
            }
        }
        self.last_method = pl.method;
        self.last_groups = groups;
        self.last_rho = rho;
        Ok(())
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

    /// Cumulative hindsight pseudo-regret per decision, in decision order: `(time s, cumulative)`.
    fn regret_series(&self) -> Vec<(f64, f64)> {
        let min_obs = self.params.regret_min_obs;
        let mean = |c: u32, s: ServerId| {
            let a = &self.arms.arms[c as usize][s as usize];
            (a.total_n > 0).then(|| (a.total_reward / a.total_n as f64, a.total_n))
        };
        let mut cum = 0.0;
        let mut out = Vec::with_capacity(self.records.len());
        for rec in &self.records {
            let Some((mu, _)) = mean(rec.class, rec.server) else {
                out.push((rec.t_s, cum));
                continue;
            };
            let best = self.sets[rec.set as usize]
                .iter()
                .filter_map(|&s| mean(rec.class, s).filter(|m| m.1 >= min_obs).map(|m| m.0))
                .fold(mu, f64::max);
            cum += best - mu;
            out.push((rec.t_s, cum));
        }
        out
    }

    pub(crate) fn stats(&self) -> PolicyStats {
        let c = &self.counters;
        let mut st = PolicyStats::default();
        let series = self.regret_series();
        let total = series.last().map_or(0.0, |x| x.1);
        for (k, v) in [
            ("slots", c.slots as f64),
            ("decisions", c.decisions as f64),
            ("assigned", c.assigned as f64),
            ("rejected", c.rejected as f64),
            ("deferred", c.deferred as f64),
            ("best_effort", c.best_effort as f64),
            ("explored", c.explored as f64),
            ("lp_solves", c.lp_solves as f64),
            ("lp_skipped", c.lp_skipped as f64),
            ("lp_fallbacks", c.lp_fallbacks as f64),
            ("bad_observations", c.bad_observations as f64),
            ("greedy_slots", c.greedy as f64),
            ("empty_slots", c.empty_slots as f64),
            ("lp_vars_max", c.lp_vars_max as f64),
            ("lp_rows_max", c.lp_rows_max as f64),
            ("classes", self.classifier.list.len() as f64),
            (
                "arms_observed",
                self.arms
                    .arms
                    .iter()
                    .flatten()
                    .filter(|a| a.total_n > 0)
                    .count() as f64,
            ),
            ("regret", total),
            (
                "regret_per_decision",
                if series.is_empty() {
                    0.0
                } else {
                    total / series.len() as f64
                },
            ),
            ("energy_ref_j_per_token", self.e_ref.unwrap_or(0.0)),
        ] {
            st.values.insert(k.to_string(), v);
        }
        // At most 2,000 points (plus the last) so reports stay small.
        let stride = series.len().div_ceil(2000).max(1);
        let mut pts: Vec<(f64, f64)> = series.iter().step_by(stride).copied().collect();
        if let Some(&last) = series.last()
            && pts.last() != Some(&last)
        {
            pts.push(last);
        }
        st.series.insert("regret".into(), pts);
        st
    }

    fn arm_json(v: &ArmView) -> serde_json::Value {
        json!({
            "n": v.n,
            "energy": v.energy,
            "slack": v.slack,
            "latency_ratio": v.latency_ratio,
            "energy_ratio": v.energy_ratio,
            "violations": v.violations,
        })
    }

    pub(crate) fn explain(&mut self, world: &World, out: &mut Vec<serde_json::Value>) {
        let p = &self.params;
        for n in &self.last_notes {
            let mut o = serde_json::Map::new();
            o.insert("request".into(), json!(n.request));
            if let Some(c) = n.class {
                o.insert("class".into(), json!(self.classifier.name(c, world)));
            }
            let (decision, server) = match n.decision {
                Decision::Assign(s) => ("assign", Some(s)),
                Decision::Reject => ("reject", None),
                Decision::Defer => ("defer", None),
            };
            o.insert("decision".into(), json!(decision));
            o.insert(
                "server".into(),
                json!(server.map(|s| world.servers[s as usize].name.clone())),
            );
            o.insert("via".into(), json!(n.via));
            if n.via == "fallback" {
                // Notes are of the last slot, so the last LP error is this slot's.
                o.insert("lp_error".into(), json!(self.counters.last_lp_error));
            }
            if let Some(g) = n.group.and_then(|g| self.last_groups.get(g as usize)) {
                let mut ks: Vec<usize> = (0..g.servers.len()).collect();
                ks.sort_by(|&a, &b| g.score[b].total_cmp(&g.score[a]).then(a.cmp(&b)));
                let top: Vec<serde_json::Value> = ks
                    .iter()
                    .take(p.explain_top)
                    .map(|&k| json!({"server": world.servers[g.servers[k] as usize].name, "index": g.score[k]}))
                    .collect();
                o.insert(
                    if self.mode == Mode::Oracle {
                        "true_score"
                    } else {
                        "index"
                    }
                    .into(),
                    json!(top),
                );
            }
            if let (Some(c), Some(s)) = (n.class, server)
                && self.mode == Mode::Learn
            {
                let v = self.arms.arms[c as usize][s as usize].view(p, self.arms.clock[c as usize]);
                o.insert("estimate".into(), Self::arm_json(&v));
                o.insert("rho".into(), json!(self.last_rho.get(s as usize)));
            }
            out.push(serde_json::Value::Object(o));
        }
    }
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

impl Policy for PerLlm {
    fn name(&self) -> &str {
        self.core.name()
    }
    fn schedule(
        &mut self,
        view: &ClusterView<'_>,
        pending: &[Pending],
        out: &mut [Decision],
    ) -> Result<(), PolicyError> {
        self.core.schedule(view, pending, out)
    }
    fn observe(&mut self, outcome: &Outcome) {
        self.core.observe(outcome)
    }
    fn stats(&self) -> PolicyStats {
        self.core.stats()
    }
    fn explain(&mut self, out: &mut Vec<serde_json::Value>) {
        self.core.explain(&self.world_for_notes, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::Roofline;
    use crate::policy::{GroundTruth, ServerState};
    use crate::spec::{Cmp, LinearConstraint, Quantity, SECOND, Target};

    fn idle(world: &World) -> Vec<ServerState> {
        world
            .servers
            .iter()
            .map(|s| ServerState {
                free_kv_bytes: s.kv_capacity_bytes,
                kv_capacity_bytes: s.kv_capacity_bytes,
                bandwidth_estimate_bps: world.links[s.link].bandwidth_bps,
                ..ServerState::default()
            })
            .collect()
    }

    fn requests(world: &World, n: u64) -> Vec<Pending> {
        (0..n)
            .map(|i| Pending {
                request: Request {
                    id: i,
                    arrival_ns: 0,
                    model: (i % 3 == 0) as u16,
                    prompt_tokens: 100 + 37 * (i as u32 % 11),
                    output_tokens: 50 + 13 * (i as u32 % 7),
                    input_bytes: 20_000,
                    output_bytes: 400,
                    slo: (i % world.slos.len() as u64) as u16,
                },
                defers: 0,
            })
            .collect()
    }

    fn run_slot(
        p: &mut dyn Policy,
        world: &World,
        truth: Option<&GroundTruth>,
        pending: &[Pending],
    ) -> Vec<Decision> {
        let servers = idle(world);
        let cost = Roofline::default();
        let view = ClusterView {
            now_ns: 0,
            slot: 0,
            world,
            servers: &servers,
            cost: &cost,
            truth,
            model_load: &[],
        };
        let mut out = vec![Decision::Defer; pending.len()];
        p.schedule(&view, pending, &mut out).unwrap();
        out
    }

    #[test]
    fn paper_slot_respects_hosting_and_the_cloud_share() {
        let world = crate::testbed::paper(10.0, 10 * SECOND).build().unwrap();
        let pending = requests(&world, 40);
        let mut p = PerLlm::new(&world.scenario.policy, &world).unwrap();
        let out = run_slot(&mut p, &world, None, &pending);
        let cloud = world.server_id("cloud").unwrap();
        let mut placed = 0;
        let mut on_cloud = 0;
        for (d, pd) in out.iter().zip(&pending) {
            if let Decision::Assign(s) = d {
                assert!(world.servers[*s as usize].hosts(pd.request.model));
                placed += 1;
                on_cloud += (*s == cloud) as u32;
            }
        }
        assert!(placed > 0);
        assert!(
            on_cloud as f64 <= 0.6 * placed as f64 + 1e-9,
            "{on_cloud} of {placed} on the cloud"
        );
        // Same inputs, same decisions.
        let mut q = PerLlm::new(&world.scenario.policy, &world).unwrap();
        assert_eq!(run_slot(&mut q, &world, None, &pending), out);
        let mut notes = Vec::new();
        p.explain(&mut notes);
        assert_eq!(notes.len(), pending.len());
        assert!(notes[0].get("class").is_some() && notes[0].get("via").is_some());
        let st = p.stats();
        assert!(st.values["explored"] > 0.0);
    }

    #[test]
    fn oracle_needs_the_truth_and_uses_it() {
        let world = crate::testbed::paper(10.0, 10 * SECOND).build().unwrap();
        let pending = requests(&world, 12);
        let mut o = crate::oracle::Oracle::new(
            &PolicySpec {
                name: "oracle".into(),
                params: Default::default(),
            },
            &world,
        )
        .unwrap();
        assert!(o.wants_ground_truth());
        let servers = idle(&world);
        let cost = Roofline::default();
        let view = ClusterView {
            now_ns: 0,
            slot: 0,
            world: &world,
            servers: &servers,
            cost: &cost,
            truth: None,
            model_load: &[],
        };
        let mut out = vec![Decision::Defer; pending.len()];
        let e = o.schedule(&view, &pending, &mut out).unwrap_err();
        assert!(e.message.contains("ground truth"), "{e}");
        let truth = GroundTruth {
            link_bandwidth_bps: world
                .servers
                .iter()
                .map(|s| world.links[s.link].bandwidth_bps)
                .collect(),
            contention: 0.01,
            step_noise: 0.05,
        };
        let out = run_slot(&mut o, &world, Some(&truth), &pending);
        assert!(out.iter().any(|d| matches!(d, Decision::Assign(_))));
    }

    #[test]
    fn a_failing_solver_falls_back_to_greedy_and_is_counted() {
        use plan::test_hook::{Failure, with_failure};
        let world = crate::testbed::paper(10.0, 10 * SECOND).build().unwrap();
        let pending = requests(&world, 40);
        // Without a failure this slot needs the LP (the cloud-share row binds).
        let mut p = PerLlm::new(&world.scenario.policy, &world).unwrap();
        let _ = run_slot(&mut p, &world, None, &pending);
        assert_eq!(p.stats().values["lp_solves"], 1.0);
        let mut spec = world.scenario.policy.clone();
        spec.params
            .insert("use_lp".into(), crate::spec::ParamValue::Bool(false));
        let mut g = PerLlm::new(&spec, &world).unwrap();
        let greedy = run_slot(&mut g, &world, None, &pending);
        assert_eq!(g.stats().values["greedy_slots"], 1.0);
        for (how, msg) in [
            (Failure::Infeasible, "infeasible"),
            (Failure::Panic, "panicked"),
        ] {
            let mut p = PerLlm::new(&world.scenario.policy, &world).unwrap();
            let out = with_failure(how, || run_slot(&mut p, &world, None, &pending));
            // The fallback is the greedy placement, decision for decision.
            assert_eq!(out, greedy, "{how:?}");
            let st = p.stats().values;
            for (k, v) in [
                ("slots", 1.0),
                ("lp_fallbacks", 1.0),
                ("lp_solves", 0.0),
                ("greedy_slots", 0.0),
                ("lp_skipped", 0.0),
                ("empty_slots", 0.0),
                ("decisions", 40.0),
            ] {
                assert_eq!(st[k], v, "{how:?}: {k}");
            }
            assert_eq!(
                st["assigned"] + st["rejected"] + st["deferred"],
                st["decisions"]
            );
            let err = p.core.counters.last_lp_error.clone().unwrap_or_default();
            assert!(err.to_lowercase().contains(msg), "{how:?}: {err}");
            let mut notes = Vec::new();
            p.explain(&mut notes);
            let fallback: Vec<_> = notes.iter().filter(|n| n["via"] == "fallback").collect();
            assert!(!fallback.is_empty(), "{how:?}: {notes:?}");
            for n in fallback {
                assert_eq!(n["lp_error"], serde_json::json!(err));
            }
            assert!(notes.iter().all(|n| n["via"] != "lp"));
            // The next slot's solve succeeds again; the counters keep the failure.
            let _ = run_slot(&mut p, &world, None, &pending);
            let st = p.stats().values;
            assert_eq!((st["lp_fallbacks"], st["slots"]), (1.0, 2.0), "{how:?}");
        }
    }

    #[test]
    fn unenforceable_constraints_are_refused() {
        let mut sc = crate::testbed::paper(10.0, 10 * SECOND);
        sc.objective.constraints.push(LinearConstraint {
            terms: vec![
                (1.0, Quantity::Latency),
                (1.0, Quantity::Share(Target::Server("cloud".into()))),
            ],
            constant: -1.0,
            cmp: Cmp::Le,
            source: "latency + share(cloud) <= 1".into(),
        });
        let world = sc.build().unwrap();
        let e = PerLlm::new(&world.scenario.policy, &world).err().unwrap();
        assert!(
            e.message.contains("latency + share(cloud) <= 1") && e.message.contains("mixes"),
            "{e}"
        );
    }

    #[test]
    fn infeasible_requests_are_rejected_or_sent_best_effort() {
        let mut sc = crate::testbed::paper(10.0, 10 * SECOND);
        // A deadline no server can meet.
        for s in &mut sc.slos {
            s.deadline_ns = 1_000;
        }
        // Keep only `latency <= deadline` (a best-effort request still obeys per-slot rows).
        sc.objective.constraints.truncate(1);
        let world = sc.build().unwrap();
        let pending = requests(&world, 5);
        let mut p = PerLlm::new(&world.scenario.policy, &world).unwrap();
        assert!(
            run_slot(&mut p, &world, None, &pending)
                .iter()
                .all(|d| *d == Decision::Reject)
        );
        assert_eq!(
            p.stats().values["explored"],
            0.0,
            "infeasible requests never explore"
        );
        let mut spec = world.scenario.policy.clone();
        spec.params.insert(
            "infeasible".into(),
            crate::spec::ParamValue::Text("best_effort".into()),
        );
        let mut p = PerLlm::new(&spec, &world).unwrap();
        let out = run_slot(&mut p, &world, None, &pending);
        assert!(
            out.iter().all(|d| matches!(d, Decision::Assign(_))),
            "{out:?}"
        );
    }
}
