//! `edf`: earliest-deadline-first (or least-slack-first) placement with admission control.

use crate::policies::assign;
use crate::util::{check_one_of, due_ns, parse_config, predicted_ns};
use perllm_plugin_abi::{Decision, guest_policy};
use serde::Deserialize;

/// Earliest deadline first with admission control.
///
/// Each slot, the pending requests are taken in order of their absolute deadline
/// (`arrival + deadline`; `order = slack`: of their slack, the time left minus the smallest
/// predicted completion over the servers hosting their model), earliest first. Each goes to the
/// server with the earliest predicted completion (`fit = tightest`: the server that meets its
/// deadline with the least time to spare, keeping faster servers for tighter requests; the
/// earliest if none meets it). With `admission = reject_infeasible` (the default), a request
/// whose chosen server is predicted to miss its deadline is rejected and adds no load for the
/// rest of the slot.
///
/// Predicted completion: the host cost model's estimate from the state before the slot, with the
/// queue of the requests placed earlier in the slot added (the rule of `greedy`); a request meets
/// its deadline if `now + predicted <= arrival + deadline`.
#[derive(Debug)]
pub struct Edf {
    by_slack: bool,
    tightest: bool,
    reject_infeasible: bool,
    /// Requests placed in the current slot, per server (reused between slots).
    extra: Vec<u32>,
    /// The slot's requests in decision order, with their keys (reused between slots).
    order: Vec<(i128, u64, usize)>,
    rejected: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct EdfParams {
    order: String,
    fit: String,
    admission: String,
}

impl Default for EdfParams {
    fn default() -> Self {
        EdfParams {
            order: "deadline".into(),
            fit: "fastest".into(),
            admission: "reject_infeasible".into(),
        }
    }
}

guest_policy! {
    impl Edf {
        name: "edf",
        description: "earliest deadline (or least slack) first, each to the server predicted to finish it first; rejects what it predicts to miss",
        wants_estimates: true,
        params: "order (deadline): `deadline` (earliest absolute deadline first) or `slack` (least slack first)\n\
            fit (fastest): `fastest` (earliest predicted completion) or `tightest` (the server meeting the deadline with the least time to spare)\n\
            admission (reject_infeasible): `reject_infeasible` (a request predicted to miss where it would go is rejected and adds no load) or `none`",
        create(config, _seed) {
            let p: EdfParams = parse_config(Self::NAME, config)?;
            check_one_of(Self::NAME, "order", &p.order, &["deadline", "slack"])?;
            check_one_of(Self::NAME, "fit", &p.fit, &["fastest", "tightest"])?;
            check_one_of(Self::NAME, "admission", &p.admission, &["none", "reject_infeasible"])?;
            Ok(Edf {
                by_slack: p.order == "slack",
                tightest: p.fit == "tightest",
                reject_infeasible: p.admission == "reject_infeasible",
                extra: Vec::new(),
                order: Vec::new(),
                rejected: 0,
            })
        }
        decide(self, slot, out) {
            let servers = slot.servers();
            let now = slot.now_ns();
            self.extra.clear();
            self.extra.resize(servers.len(), 0);
            self.order.clear();
            for (ri, r) in slot.pending().iter().enumerate() {
                let due = due_ns(slot, r) as i128;
                let key = if self.by_slack {
                    let best = servers
                        .iter()
                        .zip(slot.estimates_of(ri))
                        .filter_map(|(s, e)| predicted_ns(s, e, 0))
                        .min();
                    // A request no server hosts sorts last; the loop below rejects it.
                    best.map_or(i128::MAX, |t| due - now as i128 - t as i128)
                } else {
                    due
                };
                self.order.push((key, r.request.id, ri));
            }
            self.order.sort_unstable();
            let requests = slot.pending();
            for &(_, _, ri) in &self.order {
                let r = &requests[ri];
                let room = due_ns(slot, r).saturating_sub(now);
                // (predicted, server) of the earliest, and of the tightest that meets the deadline.
                let mut fastest: Option<(u64, u32)> = None;
                let mut tightest: Option<(u64, u32)> = None;
                for (si, (s, e)) in servers.iter().zip(slot.estimates_of(ri)).enumerate() {
                    let Some(t) = predicted_ns(s, e, self.extra[si]) else {
                        continue;
                    };
                    if fastest.is_none_or(|(b, _)| t < b) {
                        fastest = Some((t, si as u32));
                    }
                    if t <= room && tightest.is_none_or(|(b, _)| t > b) {
                        tightest = Some((t, si as u32));
                    }
                }
                let pick = if self.tightest { tightest.or(fastest) } else { fastest };
                let p = &mut out[ri];
                match pick {
                    Some((t, _)) if self.reject_infeasible && t > room => {
                        *p = Decision::REJECT;
                        self.rejected += 1;
                    }
                    pick => assign(p, pick.map(|x| x.1), &mut self.extra),
                }
            }
            Ok(())
        }
        stats(self, out) {
            out.push(("edf.rejected_infeasible".into(), self.rejected as f64));
        }
    }
}
