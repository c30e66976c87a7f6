//! `clairvoyant`: an offline reference that knows the whole arrival sequence in advance.
//!
//! It is not a policy anyone can run (it reads the future), and not a bound: it is a heuristic
//! schedule *with* that knowledge, used to measure how much of the gap between the online
//! policies and the goodput bound ([`crate::bound`]) is the price of not knowing the future
//! (docs/perllm-policy.md, "The goodput bound").
//!
//! Before the run it plans a timeline per server. Requests are taken tightest deadline first
//! (then by arrival); each gets the earliest start at or after its arrival at which it runs,
//! with a margin over its best case ([`crate::bound::best_case`]), without overlapping a planned
//! request of *another* model on that server (the roofline prices a step with two models as two
//! steps: an interactive 7B request sharing its steps with a 33B one is ten times slower) and
//! with at most a few of its own model, and still meets its deadline; the cloud tier is tried
//! first. A request with no such start is rejected. During the run a planned request is held
//! (deferred slot by slot) until its planned start, then sent to its planned server.

use crate::bound::best_case;
use crate::cost::Roofline;
use crate::policy::{ClusterView, Decision, Pending, Policy, PolicyError, PolicyStats};
use crate::request::Request;
use crate::spec::{Nanos, Tier};
use crate::world::{ModelId, ServerId, World};
use std::collections::HashMap;

/// Planned run length over the best case (same-model neighbours' KV reads, step noise).
const MARGIN: f64 = 1.08;
/// Least margin a planned run may have (when the deadline leaves less than [`MARGIN`]).
const MIN_MARGIN: f64 = 1.03;
/// Most planned requests of one model overlapping on a server.
const MAX_SAME_MODEL: usize = 8;

/// How the offline plan is built (the defaults are [`Clairvoyant::new`]'s). A run that knows
/// the future may simulate several plans and keep the best: `perllm-cli`'s `clairvoyant` example
/// does, over a few of these.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlanParams {
    /// Planned run length over the best case.
    pub margin: f64,
    /// Least margin when the deadline leaves less.
    pub min_margin: f64,
    /// Most planned requests of one model overlapping on a server.
    pub max_same_model: usize,
    /// Plan in arrival order instead of tightest deadline first.
    pub by_arrival: bool,
}

impl Default for PlanParams {
    fn default() -> Self {
        PlanParams {
            margin: MARGIN,
            min_margin: MIN_MARGIN,
            max_same_model: MAX_SAME_MODEL,
            by_arrival: false,
        }
    }
}

/// The clairvoyant reference over the requests of one run.
pub struct Clairvoyant {
    /// Request id -> (server, planned start).
    plan: HashMap<u64, (ServerId, Nanos)>,
    planned: u64,
    held: u64,
}

impl Clairvoyant {
    /// The reference for the run of `world` whose requests are `requests` (any order).
    pub fn new(world: &World, requests: &[Request]) -> Clairvoyant {
        Clairvoyant::with_params(world, requests, &PlanParams::default())
    }

    /// The reference with the plan built by `pp`.
    pub fn with_params(world: &World, requests: &[Request], pp: &PlanParams) -> Clairvoyant {
        let cost = Roofline::default();
        let slot = world.scenario.slot_ns.max(1);
        let hold_max =
            slot.saturating_mul(u64::from(world.scenario.sim.max_defers.saturating_sub(2)));
        let mut order: Vec<&Request> = requests.iter().collect();
        let deadline = |r: &Request| world.slos[r.slo as usize].deadline_ns;
        if pp.by_arrival {
            order.sort_by_key(|r| (r.arrival_ns, deadline(r), r.id));
        } else {
            order.sort_by_key(|r| (deadline(r), r.arrival_ns, r.id));
        }
        // Servers, cloud first.
        let mut servers: Vec<ServerId> = world.servers.iter().map(|s| s.id).collect();
        servers.sort_by_key(|&s| (world.servers[s as usize].tier != Tier::Cloud, s));
        // Per server: planned (start, end, model).
        let mut lines: Vec<Vec<(Nanos, Nanos, ModelId)>> = vec![Vec::new(); world.servers.len()];
        let mut plan = HashMap::new();
        for r in order {
            let due = r.arrival_ns.saturating_add(deadline(r));
            let first = r.arrival_ns.div_ceil(slot).saturating_mul(slot);
            'servers: for &s in &servers {
                let Some(b) = best_case(world, &cost, r, s) else {
                    continue;
                };
                let best = b.latency_s.max(0.0) * 1e9;
                let line = &lines[s as usize];
                // Candidate starts: the first slot, and the slot after each planned end.
                let mut starts: Vec<Nanos> = std::iter::once(first)
                    .chain(
                        line.iter()
                            .map(|&(_, e, _)| e.div_ceil(slot).saturating_mul(slot)),
                    )
                    .filter(|&t| t >= first && t <= first.saturating_add(hold_max))
                    .collect();
                starts.sort_unstable();
                for t in starts {
                    // The margin, or as much of it as the deadline leaves (at least 5%).
                    let room = due.saturating_sub(t) as f64;
                    if best * pp.min_margin > room {
                        break;
                    }
                    let end = t.saturating_add((best * pp.margin).min(room) as Nanos);
                    let overlapping = line.iter().filter(|&&(a, e, _)| a < end && t < e);
                    let mut same = 0;
                    let mut clash = false;
                    for &(_, _, m) in overlapping {
                        if m == r.model {
                            same += 1;
                        } else {
                            clash = true;
                        }
                    }
                    if !clash && same < pp.max_same_model {
                        lines[s as usize].push((t, end, r.model));
                        plan.insert(r.id, (s, t));
                        break 'servers;
                    }
                }
            }
        }
        Clairvoyant {
            planned: plan.len() as u64,
            plan,
            held: 0,
        }
    }
}

impl Policy for Clairvoyant {
    fn name(&self) -> &str {
        "clairvoyant"
    }

    fn schedule(
        &mut self,
        view: &ClusterView<'_>,
        pending: &[Pending],
        out: &mut [Decision],
    ) -> Result<(), PolicyError> {
        for (p, d) in pending.iter().zip(out.iter_mut()) {
            *d = match self.plan.get(&p.request.id) {
                None => Decision::Reject,
                Some(&(_, start)) if start > view.now_ns => {
                    self.held += 1;
                    Decision::Defer
                }
                Some(&(s, _)) => Decision::Assign(s),
            };
        }
        Ok(())
    }

    fn stats(&self) -> PolicyStats {
        let mut s = PolicyStats::default();
        s.values.insert("planned".into(), self.planned as f64);
        s.values.insert("held_for_future".into(), self.held as f64);
        s
    }
}
