//! Steps 2-3 of a slot in time that grows with the number of *kinds* of servers, not servers.
//!
//! With core's roofline cost model an estimate depends on the server only through what makes
//! servers interchangeable (hardware, count, link type, hosted models, batch limit, KV memory,
//! batching, contention: [`super::state::pools`]) and its load (the view's load hint and model
//! load). So, per slot, servers with the same kind and the same load form an *estimate cell*;
//! per request class, servers of one estimate cell whose arms hold the same learned ratios (and,
//! for `true-costs`, the same true bandwidth and resource slack) form a *cell*: every pending
//! request of the class gets the same estimate, feasibility and score on each server of a cell.
//! One estimate per (request, cell) replaces one per (request, server), and groups are keyed by
//! their feasible cells. The result is identical to [`Core::classify_plain`] (same groups, same
//! sums in the same order, same fastest server), checked by
//! `perllm::tests::the_fast_path_decides_like_the_straightforward_one`. Other cost models (plugins)
//! take the straightforward path.

use super::Mode;
use super::classify::{Classified, EstLookup, PerRequest, deadline_and_waited, kv_bytes};
use super::improved::optimistic_latency_ratio;
use super::plan::Group;
use super::state::Core;
use crate::policy::{ClusterView, Pending, PolicyError};
use crate::world::ServerId;
use std::collections::HashMap;

/// Servers of one class that every request of the class sees alike.
struct Cell {
    /// Ascending; the first is the representative.
    servers: Vec<ServerId>,
    /// The arm's (latency ratio, energy ratio) as the feasibility step uses them (the improved
    /// variant: the optimistic latency ratio).
    lr: f64,
    er: f64,
}

/// A group under construction: its feasible cells and per-cell sums.
struct Building {
    cells: Vec<u32>,
    /// Per feasible cell: sums of predicted D, oracle score, raw time / deadline, normalised
    /// energy, over the members so far (in member order, like the straightforward path).
    d: Vec<f64>,
    t: Vec<f64>,
    b: Vec<f64>,
    e: Vec<f64>,
}

impl Core {
    /// Does the fast path give the straightforward path's result here?
    pub(super) fn fast_path_applies(&self, view: &ClusterView<'_>) -> bool {
        self.fast_path && view.cost.as_roofline().is_some()
    }

    /// Per server: its estimate cell for this slot.
    fn estimate_cells(&self, view: &ClusterView<'_>) -> Vec<u32> {
        let w = view.world;
        let n_models = w.models.len();
        let mut seen: HashMap<Vec<u64>, u32> = HashMap::new();
        let mut out = Vec::with_capacity(w.servers.len());
        let mut key: Vec<u64> = Vec::new();
        for (i, st) in view.servers.iter().enumerate() {
            key.clear();
            let h = st.load_hint();
            key.extend([
                self.est_pool[i] as u64,
                h.queued as u64,
                h.running as u64,
                h.active_uploads as u64,
                h.bandwidth_bps.to_bits(),
                h.free_kv_bytes,
                h.running_models,
                h.mean_batch.to_bits(),
            ]);
            if let Some(row) = view.model_load.get(i * n_models..(i + 1) * n_models) {
                key.push(1);
                key.extend(row.iter().map(|x| x.to_bits()));
            }
            if self.mode == Mode::Oracle {
                let bw = view
                    .truth
                    .and_then(|t| t.link_bandwidth_bps.get(i).copied())
                    .unwrap_or(f64::NAN);
                key.push(bw.to_bits());
            }
            let next = seen.len() as u32;
            out.push(*seen.entry(key.clone()).or_insert(next));
        }
        out
    }

    /// The cells of class `c` (ordered by their first server) and each server's cell.
    fn class_cells(&self, c: u32, est_cell: &[u32], rho: &[f64]) -> (Vec<Cell>, Vec<u32>) {
        let improved = self.is_improved();
        // Per estimate cell: the (lr, er, rho) bits of its class cells so far and their ids
        // (usually one: a short list, no hashing).
        let n_ec = est_cell.iter().map(|&e| e as usize + 1).max().unwrap_or(0);
        let mut by_ec: Vec<Vec<(u64, u64, u64, u32)>> = vec![Vec::new(); n_ec];
        // Per arm column: its (lr, er), computed once (indexed by column: no hashing in this
        // per-server loop).
        let mut ratios: Vec<Option<(f64, f64)>> = vec![None; self.n_pools];
        let mut cells: Vec<Cell> = Vec::new();
        let mut cell_of = Vec::with_capacity(est_cell.len());
        for (s, &ec) in est_cell.iter().enumerate() {
            let (lr, er) = match self.mode {
                Mode::Learn => {
                    let col = self.pool[s] as usize;
                    *ratios[col].get_or_insert_with(|| {
                        let (lr, er) = self.learned_ratios(c, col);
                        if improved {
                            (
                                optimistic_latency_ratio(lr, self.arms.residuals[c as usize]),
                                er,
                            )
                        } else {
                            (lr, er)
                        }
                    })
                }
                Mode::Oracle => (1.0, 1.0),
            };
            let r = if self.mode == Mode::Oracle {
                rho[s].to_bits()
            } else {
                0
            };
            let k = (lr.to_bits(), er.to_bits(), r);
            let list = &mut by_ec[ec as usize];
            let id = match list.iter().find(|x| (x.0, x.1, x.2) == k) {
                Some(x) => x.3,
                None => {
                    cells.push(Cell {
                        servers: Vec::new(),
                        lr,
                        er,
                    });
                    let id = (cells.len() - 1) as u32;
                    list.push((k.0, k.1, k.2, id));
                    id
                }
            };
            cells[id as usize].servers.push(s as ServerId);
            cell_of.push(id);
        }
        (cells, cell_of)
    }

    /// Steps 2-3, one estimate per (request, cell); the same result as `classify_plain`.
    pub(super) fn classify_fast(
        &mut self,
        view: &ClusterView<'_>,
        pending: &[Pending],
        rho: &[f64],
        e_ref: f64,
    ) -> Result<Classified, PolicyError> {
        let world = view.world;
        let improved = self.is_improved();
        let est_cell = self.estimate_cells(view);
        // Per class seen in this slot: its cells (built on first sight).
        let mut slot_of_class: HashMap<u32, u32> = HashMap::new();
        let mut class_cells: Vec<Vec<Cell>> = Vec::new();
        let mut cell_of: Vec<Vec<u32>> = Vec::new();
        let mut class_slot: Vec<u32> = Vec::with_capacity(pending.len());
        let mut per_request: Vec<Vec<(f64, f64)>> = Vec::with_capacity(pending.len());

        let mut building: Vec<Building> = Vec::new();
        let mut group_class: Vec<u32> = Vec::new();
        let mut group_of: HashMap<(u32, Vec<u32>), usize> = HashMap::new();
        let mut members: Vec<Vec<u32>> = Vec::new();
        let mut kv_sum: Vec<f64> = Vec::new();
        let mut bits_sum: Vec<f64> = Vec::new();
        let mut per = PerRequest::new(pending.len());
        let mut acc0: Vec<f64> = Vec::new();
        // Per request: feasible cells and their values.
        let mut fcells: Vec<u32> = Vec::new();
        let mut fd: Vec<f64> = Vec::new();
        let mut ft: Vec<f64> = Vec::new();
        let mut fb: Vec<f64> = Vec::new();
        let mut fe: Vec<f64> = Vec::new();
        for (i, pd) in pending.iter().enumerate() {
            let r = &pd.request;
            let c = self.checked_class(world, r)?;
            per.req_class[i] = c;
            let cs = match slot_of_class.get(&c) {
                Some(&x) => x,
                None => {
                    let (cells, of) = self.class_cells(c, &est_cell, rho);
                    class_cells.push(cells);
                    cell_of.push(of);
                    let x = (class_cells.len() - 1) as u32;
                    slot_of_class.insert(c, x);
                    x
                }
            };
            class_slot.push(cs);
            let cells = &class_cells[cs as usize];
            let (deadline_s, waited_s) = deadline_and_waited(view, r);
            per.member_urgency[i] = deadline_s - waited_s;
            let kv = kv_bytes(world, r);
            let tokens = (r.prompt_tokens + r.output_tokens) as f64;
            fcells.clear();
            fd.clear();
            ft.clear();
            fb.clear();
            fe.clear();
            let mut ests = vec![(f64::NAN, f64::NAN); cells.len()];
            let mut fastest: Option<(f64, ServerId)> = None;
            for (k, cell) in cells.iter().enumerate() {
                let rep = cell.servers[0];
                let s = &world.servers[rep as usize];
                if !s.hosts(r.model) || kv > s.kv_capacity_bytes as f64 {
                    continue;
                }
                let e = self.estimate(view, r, rep)?;
                let d = waited_s + e.total_ns() as f64 / 1e9 * cell.lr;
                if fastest.is_none_or(|f| d < f.0) {
                    fastest = Some((d, rep));
                }
                if improved && d > deadline_s {
                    self.improved.deadline_filtered += cell.servers.len() as u64;
                    continue;
                }
                if self.meets_request_constraints(d, deadline_s, &e.energy, cell.er) {
                    let wj = e.energy.weighted(&self.weights);
                    ests[k] = (e.total_ns() as f64, wj);
                    fcells.push(k as u32);
                    fd.push(d);
                    fb.push(e.total_ns() as f64 / 1e9 / deadline_s);
                    fe.push(wj / (tokens * e_ref));
                    ft.push(if self.mode == Mode::Oracle {
                        self.oracle_score(wj / (tokens * e_ref), d, deadline_s, rho[rep as usize])
                    } else {
                        0.0
                    });
                }
            }
            per_request.push(ests);
            if fcells.is_empty() {
                per.infeasible.push((i, fastest.map(|f| f.1)));
                continue;
            }
            let key = (c, fcells.clone());
            let g = match group_of.get(&key) {
                Some(&g) => g,
                None => {
                    let n = fcells.len();
                    building.push(Building {
                        cells: fcells.clone(),
                        d: vec![0.0; n],
                        t: vec![0.0; n],
                        b: vec![0.0; n],
                        e: vec![0.0; n],
                    });
                    group_class.push(c);
                    members.push(Vec::new());
                    kv_sum.push(0.0);
                    bits_sum.push(0.0);
                    acc0.push(0.0);
                    let g = building.len() - 1;
                    group_of.insert(key, g);
                    g
                }
            };
            per.member_group[i] = Some(g as u32);
            members[g].push(i as u32);
            kv_sum[g] += kv;
            bits_sum[g] += r.input_bytes as f64 * 8.0;
            let bg = &mut building[g];
            for k in 0..fcells.len() {
                bg.d[k] += fd[k];
                bg.t[k] += ft[k];
                bg.b[k] += fb[k];
                bg.e[k] += fe[k];
            }
            if improved {
                acc0[g] += (deadline_s - waited_s) / deadline_s;
            }
        }
        // Expand the groups to their servers (ascending), as the straightforward path has them.
        let mut groups: Vec<Group> = Vec::with_capacity(building.len());
        let mut acc: Vec<(f64, Vec<f64>, Vec<f64>)> = Vec::new();
        for (g, bg) in building.into_iter().enumerate() {
            let c = group_class[g];
            let cs = slot_of_class[&c] as usize;
            let cells = &class_cells[cs];
            // Position of each feasible cell in `bg.cells` (usize::MAX: not feasible).
            let mut pos = vec![usize::MAX; cells.len()];
            for (k, &cell) in bg.cells.iter().enumerate() {
                pos[cell as usize] = k;
            }
            let of = &cell_of[cs];
            let servers: Vec<ServerId> = (0..of.len() as ServerId)
                .filter(|&s| pos[of[s as usize] as usize] != usize::MAX)
                .collect();
            let at = |s: ServerId| pos[of[s as usize] as usize];
            let score = match self.mode {
                Mode::Learn if improved => vec![0.0; servers.len()],
                Mode::Learn => self.index_scores(c, &servers, rho),
                Mode::Oracle => servers.iter().map(|&s| bg.t[at(s)]).collect(),
            };
            if improved {
                acc.push((
                    acc0[g],
                    servers.iter().map(|&s| bg.b[at(s)]).collect(),
                    servers.iter().map(|&s| bg.e[at(s)]).collect(),
                ));
            }
            groups.push(Group {
                class: c,
                members: std::mem::take(&mut members[g]),
                mean_d: servers.iter().map(|&s| bg.d[at(s)]).collect(),
                servers,
                score,
                kv: kv_sum[g],
                bits: bits_sum[g],
            });
        }
        Ok(Classified {
            groups,
            requests: per,
            acc,
            est: EstLookup::Cells {
                per_request,
                cell_of,
                class_slot,
            },
        })
    }
}
