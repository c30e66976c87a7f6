//! What the policy reports: hindsight regret, the counters as statistics, and the per-request
//! notes of the last slot (`explain`).

use super::Mode;
use super::bandit::ArmView;
use crate::policy::{Decision, PolicyStats};
use crate::world::{ServerId, World};
use serde_json::json;

use super::state::Core;

impl Core {
    /// Cumulative hindsight pseudo-regret per decision, in decision order: `(time s, cumulative)`.
    fn regret_series(&self) -> Vec<(f64, f64)> {
        let min_obs = self.params.regret_min_obs;
        let mean = |c: u32, s: ServerId| {
            let a = &self.arms.arms[c as usize][self.pool[s as usize] as usize];
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
        if self.is_improved() {
            let im = &self.improved;
            for (k, v) in [
                ("pools", self.n_pools as f64),
                ("eliminated", im.eliminated as f64),
                ("deadline_filtered", im.deadline_filtered as f64),
                ("first_tries", im.first_tries as f64),
                ("predicted_miss", im.predicted_miss as f64),
                ("overload_deferred", im.overload_deferred as f64),
            ] {
                st.values.insert(k.to_string(), v);
            }
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
                let v = self.arms.arms[c as usize][self.pool[s as usize] as usize]
                    .view(p, self.arms.clock[c as usize]);
                o.insert("estimate".into(), Self::arm_json(&v));
                o.insert("rho".into(), json!(self.last_rho.get(s as usize)));
            }
            out.push(serde_json::Value::Object(o));
        }
    }
}
