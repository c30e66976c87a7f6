//! Step 7 of a slot (the improved variant): admission of the slot's placements.
//!
//! The slot's placements, earliest deadline first, are checked against the cost model's own
//! prediction on the chosen server, with the queue the slot's earlier admissions there add
//! ([`crate::admission::predict`], the rule `admission = reject_infeasible` applies to any
//! policy). A placement predicted to miss its deadline is rejected: the learned latency ratio is
//! a mean over past loads and cannot vouch for a server the model sees as overloaded now.
//!
//! Where the model predicts the request would queue on the server, a request whose predicted
//! work there (prefill and decode) exceeds the mean work of the requests admitted to that
//! server so far is deferred: it waits at the scheduler, while cheaper requests take the
//! server's capacity, and is placed again in a later slot (or rejected once no server can meet
//! its deadline). Serving the cheaper requests first is what maximises the number of deadlines
//! met when a server cannot serve all; nothing changes on a server with no queue.
//!
//! Removing placements can break a per-slot user row (a share row counts the slot's placements
//! on every server): the rows are then repaired as the LP's rounding does, by deferring the
//! admitted placement (latest deadline first) with the largest coefficient in the most violated
//! row, so the slot still satisfies every row.

use super::classify::kv_bytes;
use super::plan::{Budgets, Ledger};
use super::state::Core;
use crate::policy::{ClusterView, Pending};
use crate::world::ServerId;

/// What admission did to the slot's placements, per pending request.
#[derive(Debug, Default)]
pub(super) struct Overload {
    refused: Vec<bool>,
    deferred: Vec<bool>,
}

impl Overload {
    /// Was request `i`'s placement rejected (deadline predicted missed)?
    pub(super) fn refused(&self, i: usize) -> bool {
        self.refused.get(i) == Some(&true)
    }
    /// Was request `i`'s placement deferred (costlier than the server's mean while it queues)?
    pub(super) fn deferred(&self, i: usize) -> bool {
        self.deferred.get(i) == Some(&true)
    }
}

/// A slot's decision for one pending request: server, how it was chosen, group.
pub(super) type Placed = Option<(ServerId, &'static str, Option<u32>)>;

impl Core {
    /// Check the slot's placements `decided` (see the module documentation); refused and
    /// deferred ones are cleared.
    pub(super) fn admit(
        &mut self,
        view: &ClusterView<'_>,
        pending: &[Pending],
        decided: &mut [Placed],
        budgets: &Budgets,
        ledger: &mut Ledger,
    ) -> Overload {
        let n = pending.len();
        let mut out = Overload {
            refused: vec![false; n],
            deferred: vec![false; n],
        };
        let due = |i: usize| {
            let r = &pending[i].request;
            r.arrival_ns.saturating_add(view.deadline_ns(r))
        };
        let mut order: Vec<usize> = (0..n).filter(|&i| decided[i].is_some()).collect();
        order.sort_by_key(|&i| (due(i), i));
        let mut admitted = vec![0u32; view.servers.len()];
        let world = view.world;
        let unplace = |ledger: &mut Ledger, i: usize, s: ServerId| {
            let r = &pending[i].request;
            ledger.add(
                budgets,
                kv_bytes(world, r),
                r.input_bytes as f64 * 8.0,
                s,
                -1.0,
            );
        };
        let mut kept: Vec<usize> = Vec::with_capacity(order.len());
        for i in order {
            let Some((s, _, _)) = decided[i] else {
                continue;
            };
            let su = s as usize;
            let pr = crate::admission::predict(view, &pending[i].request, s, admitted[su]);
            let work = pr.estimate.prefill_ns.saturating_add(pr.estimate.decode_ns) as f64;
            let (mean, count) = self.mean_work[su];
            if view.now_ns.saturating_add(pr.total_ns) > due(i) {
                decided[i] = None;
                unplace(ledger, i, s);
                out.refused[i] = true;
                self.improved.predicted_miss += 1;
            } else if pr.queue_ns > 0 && count > 0 && work > mean {
                decided[i] = None;
                unplace(ledger, i, s);
                out.deferred[i] = true;
                self.improved.overload_deferred += 1;
            } else {
                admitted[su] += 1;
                self.mean_work[su] = (mean + (work - mean) / (count + 1) as f64, count + 1);
                kept.push(i);
            }
        }
        // Repair the per-slot user rows the removals broke (none without user rows).
        while let Some(k) = ledger.worst_user_row(budgets) {
            let coef = &budgets.user[k].coef;
            let pick = kept
                .iter()
                .enumerate()
                .filter_map(|(j, &i)| decided[i].map(|(s, _, _)| (j, i, s)))
                .filter(|&(_, _, s)| coef[s as usize] > 0.0)
                .max_by(|a, b| {
                    coef[a.2 as usize]
                        .total_cmp(&coef[b.2 as usize])
                        .then(due(a.1).cmp(&due(b.1)))
                        .then(a.1.cmp(&b.1))
                });
            let Some((j, i, s)) = pick else { break };
            decided[i] = None;
            unplace(ledger, i, s);
            kept.swap_remove(j);
        }
        out
    }
}
