//! Step 2-3 of a slot, the straightforward way: every pending request against every server
//! hosting its model, one cost-model estimate per pair. [`super::fast`] computes the same result
//! with one estimate per class of identical servers; a test checks both agree.

use super::Mode;
use super::bandit::with_prior;
use super::constraints::RequestQty;
use super::improved::optimistic_latency_ratio;
use super::plan::Group;
use super::state::Core;
use crate::policy::{ClusterView, Pending, PolicyError};
use crate::request::{Energy, Request};
use crate::world::{ServerId, World};
use std::collections::HashMap;

pub(super) fn kv_bytes(world: &World, r: &Request) -> f64 {
    (r.prompt_tokens as f64 + r.output_tokens as f64)
        * world.models[r.model as usize].kv_bytes_per_token as f64
}

/// A request's deadline and the time it has waited by the view's clock, in seconds.
#[inline]
pub(super) fn deadline_and_waited(view: &ClusterView<'_>, r: &Request) -> (f64, f64) {
    let deadline_s = view.world.slos[r.slo as usize].deadline_ns as f64 / 1e9;
    let waited_s = view.now_ns.saturating_sub(r.arrival_ns) as f64 / 1e9;
    (deadline_s, waited_s)
}

/// Where the raw estimates of each request's feasible pairs are kept, to be reused when the
/// request is placed.
pub(super) enum EstLookup {
    /// Request i's `(server, total ns, weighted J)` are `pairs[start[i]..start[i + 1]]`.
    Pairs {
        pairs: Vec<(ServerId, f64, f64)>,
        start: Vec<usize>,
    },
    /// Per request, `(total ns, weighted J)` per cell of its class (`NaN` when the cell was not
    /// feasible), and per class the cell of every server.
    Cells {
        per_request: Vec<Vec<(f64, f64)>>,
        cell_of: Vec<Vec<u32>>,
        class_slot: Vec<u32>,
    },
}

impl EstLookup {
    /// The raw estimate of request `i` on `s`, if `s` was feasible for it.
    pub(super) fn get(&self, i: usize, s: ServerId) -> Option<(f64, f64)> {
        match self {
            EstLookup::Pairs { pairs, start } => pairs[start[i]..start[i + 1]]
                .iter()
                .find(|x| x.0 == s)
                .map(|x| (x.1, x.2)),
            EstLookup::Cells {
                per_request,
                cell_of,
                class_slot,
            } => {
                let cell = cell_of[class_slot[i] as usize][s as usize];
                if cell == u32::MAX {
                    return None;
                }
                per_request[i]
                    .get(cell as usize)
                    .copied()
                    .filter(|x| !x.0.is_nan())
            }
        }
    }
}

/// What steps 2-3 find per pending request (indexed by its position in the slot).
pub(super) struct PerRequest {
    /// Deadline minus time waited, s.
    pub(super) member_urgency: Vec<f64>,
    /// (request, fastest server hosting its model with KV memory enough; None: no such server)
    pub(super) infeasible: Vec<(usize, Option<ServerId>)>,
    pub(super) req_class: Vec<u32>,
    /// The group it joined (None: infeasible).
    pub(super) member_group: Vec<Option<u32>>,
}

impl PerRequest {
    pub(super) fn new(n: usize) -> PerRequest {
        PerRequest {
            member_urgency: vec![0.0; n],
            infeasible: Vec::new(),
            req_class: vec![0; n],
            member_group: vec![None; n],
        }
    }
}

/// The result of steps 2-3.
pub(super) struct Classified {
    pub(super) groups: Vec<Group>,
    pub(super) requests: PerRequest,
    /// The improved variant: per group, the sums of (deadline - waited) / deadline, and per
    /// feasible server those of raw predicted time / deadline and normalised energy.
    pub(super) acc: Vec<(f64, Vec<f64>, Vec<f64>)>,
    pub(super) est: EstLookup,
}

impl Core {
    /// The class of `r`, its arms made ready; an error if it names an unknown model or SLO class.
    #[inline]
    pub(super) fn checked_class(&mut self, world: &World, r: &Request) -> Result<u32, PolicyError> {
        if r.model as usize >= world.models.len() || r.slo as usize >= world.slos.len() {
            return Err(self.err(format!(
                "request {} names an unknown model or SLO class",
                r.id
            )));
        }
        let c = self.classifier.class_of(r);
        self.arms.ensure(c, self.n_pools);
        Ok(c)
    }

    /// The (latency, energy) ratios class `c` has learned on arm column `col` (the improved
    /// variant: shrunk towards the prior).
    #[inline]
    pub(super) fn learned_ratios(&self, c: u32, col: usize) -> (f64, f64) {
        let v = self.arms.arms[c as usize][col].view(&self.params, self.arms.clock[c as usize]);
        if self.is_improved() {
            (
                with_prior(v.latency_ratio, v.n),
                with_prior(v.energy_ratio, v.n),
            )
        } else {
            (v.latency_ratio, v.energy_ratio)
        }
    }

    /// Does a request with predicted latency `d` and energy `energy` (scaled by the learned energy
    /// ratio `er`) satisfy every per-request constraint?
    #[inline]
    pub(super) fn meets_request_constraints(
        &self,
        d: f64,
        deadline_s: f64,
        energy: &Energy,
        er: f64,
    ) -> bool {
        let q = RequestQty {
            latency_s: d,
            deadline_s,
            e_tx: energy.transmission * er,
            e_inf: energy.inference * er,
            e_idle: energy.idle * er,
        };
        self.constraints.per_request.iter().all(|k| k.holds(&q))
    }

    /// The oracle's score of a feasible pair: minus the normalised energy `en`, plus the
    /// constraint weight times the deadline slack of the predicted latency `d`, capped by `rho`.
    #[inline]
    pub(super) fn oracle_score(&self, en: f64, d: f64, deadline_s: f64, rho: f64) -> f64 {
        let slack = ((deadline_s - d) / deadline_s).clamp(-1.0, 1.0);
        -en + self.params.constraint_weight * slack.min(rho)
    }

    /// The bandit index of class `c` on each of `servers`.
    #[inline]
    pub(super) fn index_scores(&self, c: u32, servers: &[ServerId], rho: &[f64]) -> Vec<f64> {
        servers
            .iter()
            .map(|&s| {
                let col = self.pool[s as usize] as usize;
                self.arms.index(&self.params, c, col, rho[s as usize]).0
            })
            .collect()
    }

    /// Steps 2-3, one estimate per (request, hosting server).
    pub(super) fn classify_plain(
        &mut self,
        view: &ClusterView<'_>,
        pending: &[Pending],
        rho: &[f64],
        e_ref: f64,
    ) -> Result<Classified, PolicyError> {
        let world = view.world;
        let improved = self.is_improved();
        let mut groups: Vec<Group> = Vec::new();
        // Feasible set -> [(class, group)]: looked up by slice, so no allocation per request.
        let mut group_of: HashMap<Vec<ServerId>, Vec<(u32, usize)>> = HashMap::new();
        let mut per = PerRequest::new(pending.len());
        let mut feas: Vec<ServerId> = Vec::new();
        let mut dlist: Vec<f64> = Vec::new();
        let mut tscore: Vec<f64> = Vec::new();
        // Raw estimates (total ns, weighted J) of each request's feasible pairs, reused when the
        // request is placed: request i's are `pairs[pair_start[i]..pair_start[i + 1]]`.
        let mut pairs: Vec<(ServerId, f64, f64)> = Vec::new();
        let mut pair_start: Vec<usize> = Vec::with_capacity(pending.len() + 1);
        // The improved variant: per group, the sums of (deadline - waited) / deadline, and per
        // feasible server those of raw predicted time / deadline and normalised energy.
        let mut acc: Vec<(f64, Vec<f64>, Vec<f64>)> = Vec::new();
        let mut bl: Vec<f64> = Vec::new();
        let mut el: Vec<f64> = Vec::new();
        for (i, pd) in pending.iter().enumerate() {
            pair_start.push(pairs.len());
            let r = &pd.request;
            let c = self.checked_class(world, r)?;
            per.req_class[i] = c;
            let (deadline_s, waited_s) = deadline_and_waited(view, r);
            per.member_urgency[i] = deadline_s - waited_s;
            let kv = kv_bytes(world, r);
            feas.clear();
            dlist.clear();
            tscore.clear();
            bl.clear();
            el.clear();
            let mut fastest: Option<(f64, ServerId)> = None;
            for s in &world.servers {
                if !s.hosts(r.model) || kv > s.kv_capacity_bytes as f64 {
                    continue;
                }
                let e = self.estimate(view, r, s.id)?;
                let (lr, er) = match self.mode {
                    Mode::Learn => self.learned_ratios(c, self.pool[s.id as usize] as usize),
                    Mode::Oracle => (1.0, 1.0),
                };
                // The improved variant filters and orders by the optimistic latency ratio.
                let lr = if improved {
                    optimistic_latency_ratio(lr, self.arms.residuals[c as usize])
                } else {
                    lr
                };
                let d = waited_s + e.total_ns() as f64 / 1e9 * lr;
                if fastest.is_none_or(|f| d < f.0) {
                    fastest = Some((d, s.id));
                }
                // The improved variant never sends a request where its deadline is predicted lost.
                if improved && d > deadline_s {
                    self.improved.deadline_filtered += 1;
                    continue;
                }
                if self.meets_request_constraints(d, deadline_s, &e.energy, er) {
                    feas.push(s.id);
                    dlist.push(d);
                    pairs.push((s.id, e.total_ns() as f64, e.energy.weighted(&self.weights)));
                    if improved {
                        let tokens = (r.prompt_tokens + r.output_tokens) as f64;
                        bl.push(e.total_ns() as f64 / 1e9 / deadline_s);
                        el.push(e.energy.weighted(&self.weights) / (tokens * e_ref));
                    }
                    if self.mode == Mode::Oracle {
                        let tokens = (r.prompt_tokens + r.output_tokens) as f64;
                        let en = e.energy.weighted(&self.weights) / (tokens * e_ref);
                        tscore.push(self.oracle_score(en, d, deadline_s, rho[s.id as usize]));
                    }
                }
            }
            if feas.is_empty() {
                per.infeasible.push((i, fastest.map(|f| f.1)));
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
                        // The improved index needs the group's means: computed below.
                        Mode::Learn if improved => vec![0.0; feas.len()],
                        Mode::Learn => self.index_scores(c, &feas, rho),
                        Mode::Oracle => vec![0.0; feas.len()],
                    };
                    if improved {
                        acc.push((0.0, vec![0.0; feas.len()], vec![0.0; feas.len()]));
                    }
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
            per.member_group[i] = Some(g as u32);
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
            if improved {
                let a = &mut acc[g];
                a.0 += (deadline_s - waited_s) / deadline_s;
                for k in 0..feas.len() {
                    a.1[k] += bl[k];
                    a.2[k] += el[k];
                }
            }
        }
        pair_start.push(pairs.len());
        Ok(Classified {
            groups,
            requests: per,
            acc,
            est: EstLookup::Pairs {
                pairs,
                start: pair_start,
            },
        })
    }
}
