//! One slot of the PerLLM procedure (`schedule`): budgets, feasibility, the CS-UCB index,
//! exploration, the slot LP (or its greedy fallback) and placement; see the steps in the
//! module documentation of `perllm`.

use super::Mode;
use super::improved;
use super::params::Infeasible;
use super::plan::{self, Budgets, Ledger, Method};
use crate::cost::Estimate;
use crate::policy::{ClusterView, Decision, Pending, PolicyError};
use crate::request::Request;
use crate::world::ServerId;
use std::collections::HashMap;

use super::state::{Core, InFlight, Note, Record};

use super::admit::Overload;
use super::classify::{Classified, PerRequest, kv_bytes};

impl Core {
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
    pub(super) fn estimate(
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

        // 2-3. Feasibility, scores, groups (the fast path when the cost model is core's
        // roofline; see `fast.rs`).
        let improved = self.is_improved();
        let Classified {
            mut groups,
            requests:
                PerRequest {
                    member_urgency,
                    infeasible,
                    req_class,
                    member_group,
                },
            acc,
            est,
        } = if self.fast_path_applies(view) {
            self.classify_fast(view, pending, &rho, e_ref)?
        } else {
            self.classify_plain(view, pending, &rho, e_ref)?
        };
        if improved {
            for (grp, a) in groups.iter_mut().zip(&acc) {
                let n = grp.members.len() as f64;
                let c = grp.class as usize;
                let bounds: Vec<improved::Bounds> = grp
                    .servers
                    .iter()
                    .enumerate()
                    .map(|(k, &s)| {
                        let col = self.pool[s as usize] as usize;
                        let x = improved::PairInput {
                            arm: self.arms.arms[c][col].view(&p, self.arms.clock[c]),
                            class_n: self.arms.class_n[c],
                            residuals: self.arms.residuals[c],
                            energy: a.2[k] / n,
                            a: a.0 / n,
                            b: a.1[k] / n,
                            rho: rho[s as usize],
                        };
                        improved::bounds(
                            &x,
                            p.exploration,
                            p.constraint_weight,
                            p.violation_penalty,
                        )
                    })
                    .collect();
                let (score, eliminated) = improved::scores(&bounds);
                grp.score = score;
                self.improved.eliminated += eliminated;
            }
        }
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
        // (The improved variant starts its arms from the cost model's prediction instead.)
        if self.mode == Mode::Learn && !improved {
            for (g, grp) in groups.iter_mut().enumerate() {
                let c = grp.class as usize;
                for k in 0..grp.servers.len() {
                    let s = grp.servers[k];
                    if grp.members.is_empty() {
                        break;
                    }
                    if self.arms.arms[c][self.pool[s as usize] as usize].assigned > 0
                        || !ledger.fits(&budgets, grp.kv, grp.bits, s)
                    {
                        continue;
                    }
                    let m = grp.members.pop().expect("non-empty");
                    ledger.add(&budgets, grp.kv, grp.bits, s, 1.0);
                    decided[m as usize] = Some((s, "explore", Some(g as u32)));
                    self.arms.arms[c][self.pool[s as usize] as usize].assigned += 1;
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
                                let c = req_class[i] as usize;
                                let v = self.arms.arms[c][self.pool[s.id as usize] as usize]
                                    .view(&p, self.arms.clock[c]);
                                if improved {
                                    super::bandit::with_prior(v.latency_ratio, v.n)
                                } else {
                                    v.latency_ratio
                                }
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

        // 7. Admission (the improved variant; docs/perllm-policy.md, "The improved variant").
        let overload = if improved && self.mode == Mode::Learn && p.infeasible == Infeasible::Reject
        {
            self.admit(view, pending, &mut decided, &budgets, &mut ledger)
        } else {
            Overload::default()
        };

        // Write decisions, record in-flight requests and regret records.
        // Infeasible request -> does any server host its model with KV memory enough for it?
        let infeasible_set: HashMap<usize, bool> =
            infeasible.iter().map(|x| (x.0, x.1.is_some())).collect();
        let t_s = now as f64 / 1e9;
        let mut set_of_group: Vec<Option<u32>> = vec![None; groups.len()];
        for (i, pd) in pending.iter().enumerate() {
            let r = &pd.request;
            self.counters.decisions += 1;
            let (d, via, group) = match decided[i] {
                Some((s, via, g)) => (Decision::Assign(s), via, g),
                // No server could ever take it: deferring (even for best effort) would only
                // repeat this decision.
                None if overload.refused(i) => (Decision::Reject, "predicted_miss", None),
                None if overload.deferred(i) => {
                    (Decision::Defer, "overload_deferred", member_group[i])
                }
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
                    let (est_ns, est_j) = match est.get(i, s) {
                        Some(x) => x,
                        None => {
                            let e = self.estimate(view, r, s)?;
                            (e.total_ns() as f64, e.energy.weighted(&self.weights))
                        }
                    };
                    let arm = &mut self.arms.arms[class as usize][self.pool[s as usize] as usize];
                    if via != "explore" {
                        if improved && arm.total_n == 0 {
                            self.improved.first_tries += 1;
                        }
                        arm.assigned += 1;
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
                        // The group's servers with batch budget (and `s`); the same for every
                        // member placed on a server with budget, so computed once per group.
                        let cached = budgets.batch[s as usize] >= 1.0;
                        let id = match set_of_group[g as usize] {
                            Some(id) if cached => id,
                            _ => {
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
                                if cached {
                                    set_of_group[g as usize] = Some(id);
                                }
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
}
