//! The bundled baseline policies.
//!
//! Every policy counts the requests it places during a slot, so that a slot of many requests is
//! spread as the load changes rather than sent to the server that was least loaded before it.
//! A request whose model no eligible server hosts is rejected.

use crate::util::{SplitMix64, check, check_positive, least_loaded, parse_config, predicted_ns};
use perllm_plugin_abi::{
    Decision, GuestPolicy, Outcome, Slot, TIER_CLOUD, TIER_EDGE, guest_policy,
};
use serde::Deserialize;
use std::collections::BTreeMap;

/// An empty config: the policy takes no parameters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

pub(crate) fn assign(p: &mut Decision, server: Option<u32>, extra: &mut [u32]) {
    match server {
        Some(s) => {
            *p = Decision::assign(s);
            extra[s as usize] += 1;
        }
        None => *p = Decision::REJECT,
    }
}

fn by_load(slot: &Slot<'_>, out: &mut [Decision], tier: Option<u32>, extra: &mut Vec<u32>) {
    extra.clear();
    extra.resize(slot.servers().len(), 0);
    for (r, p) in slot.pending().iter().zip(out.iter_mut()) {
        let s = least_loaded(slot, r.request.model, extra, |s| {
            tier.is_none_or(|t| s.tier == t)
        });
        assign(p, s, extra);
    }
}

/// Declares a policy that sends every request to the least-loaded server hosting its model among
/// the servers of one tier (`None`: all of them), rejecting it if there is none: cloud-only,
/// edge-only and least-loaded differ only in that filter.
macro_rules! by_load_policy {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $desc:literal, $tier:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $ty {
            /// Requests placed in the current slot, per server (reused between slots).
            extra: Vec<u32>,
        }

        guest_policy! {
            impl $ty {
                name: $name,
                description: $desc,
                params: "(no parameters)",
                create(config, _seed) {
                    parse_config::<NoParams>(Self::NAME, config)?;
                    Ok($ty { extra: Vec::new() })
                }
                decide(self, slot, out) {
                    by_load(slot, out, $tier, &mut self.extra);
                    Ok(())
                }
            }
        }
    };
}

by_load_policy!(
    /// Every request to the least-loaded cloud server hosting its model; rejected if none does.
    CloudOnly,
    "cloud-only",
    "every request to the least-loaded cloud server hosting its model",
    Some(TIER_CLOUD)
);

by_load_policy!(
    /// Every request to the least-loaded edge server hosting its model; rejected if none does.
    EdgeOnly,
    "edge-only",
    "every request to the least-loaded edge server hosting its model",
    Some(TIER_EDGE)
);

by_load_policy!(
    /// Every request to the server hosting its model with the fewest requests per batch slot.
    LeastLoaded,
    "least-loaded",
    "the server hosting the model with the fewest requests per batch slot",
    None
);

/// A uniformly random server hosting the model, from the run's seed.
#[derive(Debug)]
pub struct Random {
    rng: SplitMix64,
}

guest_policy! {
    impl Random {
        name: "random",
        description: "a uniformly random server hosting the model (seeded)",
        params: "(no parameters)",
        create(config, seed) {
            parse_config::<NoParams>(Self::NAME, config)?;
            Ok(Random {
                rng: SplitMix64::new(seed),
            })
        }
        decide(self, slot, out) {
            let mut cands = Vec::new();
            let mut extra = vec![0u32; slot.servers().len()];
            for (r, p) in slot.pending().iter().zip(out.iter_mut()) {
                cands.clear();
                cands.extend(slot.hosting(r.request.model).map(|s| s.id));
                let s = (!cands.is_empty()).then(|| cands[self.rng.below(cands.len())]);
                assign(p, s, &mut extra);
            }
            Ok(())
        }
    }
}

/// The servers hosting each model, in turn.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: BTreeMap<u16, usize>,
}

guest_policy! {
    impl RoundRobin {
        name: "round-robin",
        description: "the servers hosting the model, in turn",
        params: "(no parameters)",
        create(config, _seed) {
            parse_config::<NoParams>(Self::NAME, config)?;
            Ok(RoundRobin::default())
        }
        decide(self, slot, out) {
            let mut cands = Vec::new();
            let mut extra = vec![0u32; slot.servers().len()];
            for (r, p) in slot.pending().iter().zip(out.iter_mut()) {
                cands.clear();
                cands.extend(slot.hosting(r.request.model).map(|s| s.id));
                let s = if cands.is_empty() {
                    None
                } else {
                    let k = self.next.entry(r.request.model).or_insert(0);
                    let s = cands[*k % cands.len()];
                    *k = k.wrapping_add(1);
                    Some(s)
                };
                assign(p, s, &mut extra);
            }
            Ok(())
        }
    }
}

/// The lowest estimated weighted energy among servers whose estimated latency meets the
/// deadline, else the fastest server.
///
/// Estimates come from the host's cost model with the state before the slot; the policy adds a
/// queueing term for the requests it places during the slot (the core estimate's rule: a full
/// batch waits one prefill-and-decode round per `max_batch` requests ahead).
#[derive(Debug)]
pub struct Greedy {
    /// Count the deadline as met when the estimate is within this fraction of it (default 1).
    slack: f64,
    /// Requests placed in the current slot, per server (reused between slots).
    extra: Vec<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct GreedyParams {
    /// A server is feasible if its estimated latency is at most `slack x deadline`.
    slack: f64,
}

impl Default for GreedyParams {
    fn default() -> Self {
        GreedyParams { slack: 1.0 }
    }
}

guest_policy! {
    impl Greedy {
        name: "greedy",
        description: "lowest estimated energy among servers meeting the deadline by estimate, else the fastest",
        wants_estimates: true,
        params: "slack (1.0): a server is feasible if its estimated latency is at most slack x the deadline",
        create(config, _seed) {
            let p: GreedyParams = parse_config(Self::NAME, config)?;
            check_positive(Self::NAME, "slack", p.slack)?;
            Ok(Greedy {
                slack: p.slack,
                extra: Vec::new(),
            })
        }
        decide(self, slot, out) {
            let servers = slot.servers();
            let w = slot.energy_weights();
            let extra = &mut self.extra;
            extra.clear();
            extra.resize(servers.len(), 0);
            for (ri, (r, p)) in slot.pending().iter().zip(out.iter_mut()).enumerate() {
                // (energy, server) of the best feasible; (latency, server) of the fastest.
                let mut best_ok: Option<(f64, u32)> = None;
                let mut fastest: Option<(u64, u32)> = None;
                let limit = self.slack * slot.deadline_ns(r) as f64;
                for (si, (s, e)) in servers.iter().zip(slot.estimates_of(ri)).enumerate() {
                    if e.valid != 1 {
                        continue;
                    }
                    let mb = s.max_batch.max(1);
                    let occupied = s.uploading + s.queued + s.running + extra[si];
                    let queue = if occupied >= mb {
                        let rounds = ((occupied - mb) / mb + 1) as u64;
                        rounds.saturating_mul(e.prefill_ns.saturating_add(e.decode_ns))
                    } else {
                        0
                    };
                    let latency = e
                        .total_ns()
                        .saturating_sub(e.queue_ns)
                        .saturating_add(e.queue_ns.max(queue));
                    if fastest.is_none_or(|(l, _)| latency < l) {
                        fastest = Some((latency, si as u32));
                    }
                    if latency as f64 <= limit {
                        let energy = e.weighted_energy(&w);
                        if best_ok.is_none_or(|(b, _)| energy < b) {
                            best_ok = Some((energy, si as u32));
                        }
                    }
                }
                let s = best_ok.map(|b| b.1).or(fastest.map(|f| f.1));
                assign(p, s, extra);
            }
            Ok(())
        }
    }
}

/// Per-(model, server) arm statistics.
#[derive(Clone, Copy, Debug, Default)]
struct Arm {
    pulls: u64,
    observed: u64,
    reward_sum: f64,
}

impl Arm {
    /// Mean observed reward; 1 (the largest) before any observation.
    fn mean(&self) -> f64 {
        if self.observed == 0 {
            1.0
        } else {
            self.reward_sum / self.observed as f64
        }
    }
}

/// The reward of an outcome: `1 / (1 + latency / deadline)`, in (0, 1].
fn reward(o: &Outcome) -> f64 {
    let d = o.request.deadline_ns.max(1) as f64;
    1.0 / (1.0 + o.total_ns as f64 / d)
}

/// The (model, server) arms of the bandit baselines.
#[derive(Debug, Default)]
struct Arms(BTreeMap<(u16, u32), Arm>);

impl Arms {
    /// The server among `servers` whose arm for `model` has the highest `index` (untried arms
    /// first; ties go to the earlier server).
    fn best(
        &self,
        model: u16,
        servers: impl Iterator<Item = u32>,
        index: impl Fn(&Arm) -> f64,
    ) -> Option<u32> {
        let mut best: Option<(f64, u32)> = None;
        for s in servers {
            let a = self.0.get(&(model, s)).copied().unwrap_or_default();
            let v = if a.pulls == 0 {
                f64::INFINITY
            } else {
                index(&a)
            };
            if best.is_none_or(|(b, _)| v > b) {
                best = Some((v, s));
            }
        }
        best.map(|b| b.1)
    }

    /// Counts a pull of `model`'s arm on `server` (at decision time: outcomes arrive later).
    fn pull(&mut self, model: u16, server: u32) {
        self.0.entry((model, server)).or_default().pulls += 1;
    }

    /// Adds an outcome's reward to its arm.
    fn record(&mut self, o: &Outcome) {
        let a = self.0.entry((o.request.model, o.server)).or_default();
        a.observed += 1;
        a.reward_sum += reward(o);
    }
}

/// Plain UCB1 over (model, server) arms on observed latency, with no constraints.
///
/// Reward `1 / (1 + D / deadline)`; index `mean + sqrt(exploration x ln(total pulls) / pulls)`;
/// untried arms first. Pulls count at decision time (outcomes arrive later), so one slot's
/// requests spread over the arms.
#[derive(Debug)]
pub struct Ucb1 {
    exploration: f64,
    arms: Arms,
    total: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Ucb1Params {
    exploration: f64,
}

impl Default for Ucb1Params {
    fn default() -> Self {
        Ucb1Params { exploration: 2.0 }
    }
}

guest_policy! {
    impl Ucb1 {
        name: "ucb1",
        description: "plain UCB1 over (model, server) arms on observed latency, no constraints",
        params: "exploration (2.0): weight of the exploration bonus, >= 0",
        create(config, _seed) {
            let p: Ucb1Params = parse_config(Self::NAME, config)?;
            check(Self::NAME, p.exploration.is_finite() && p.exploration >= 0.0, || {
                format!("exploration must be non-negative, got {}", p.exploration)
            })?;
            Ok(Ucb1 {
                exploration: p.exploration,
                arms: Arms::default(),
                total: 0,
            })
        }
        decide(self, slot, out) {
            let mut extra = vec![0u32; slot.servers().len()];
            for (r, p) in slot.pending().iter().zip(out.iter_mut()) {
                let ln_t = ((self.total + 1) as f64).ln();
                let s = self.arms.best(r.request.model, slot.hosting(r.request.model).map(|s| s.id), |a| {
                    a.mean() + (self.exploration * ln_t / a.pulls as f64).sqrt()
                });
                if let Some(s) = s {
                    self.arms.pull(r.request.model, s);
                    self.total += 1;
                }
                assign(p, s, &mut extra);
            }
            Ok(())
        }
        observe(self, o) {
            self.arms.record(o);
            Ok(())
        }
        stats(self, out) {
            out.push(("ucb1.arms".into(), self.arms.0.len() as f64));
            out.push(("ucb1.pulls".into(), self.total as f64));
        }
    }
}

/// The best observed (model, server) arm, a uniformly random one with probability epsilon.
///
/// Same reward as [`Ucb1`]; untried arms first.
#[derive(Debug)]
pub struct EpsilonGreedy {
    epsilon: f64,
    rng: SplitMix64,
    arms: Arms,
    explorations: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct EpsilonParams {
    epsilon: f64,
}

impl Default for EpsilonParams {
    fn default() -> Self {
        EpsilonParams { epsilon: 0.1 }
    }
}

guest_policy! {
    impl EpsilonGreedy {
        name: "epsilon-greedy",
        description: "best observed (model, server) arm, a random one with probability epsilon",
        params: "epsilon (0.1): probability of a uniformly random arm, in [0, 1]",
        create(config, seed) {
            let p: EpsilonParams = parse_config(Self::NAME, config)?;
            check(Self::NAME, (0.0..=1.0).contains(&p.epsilon), || {
                format!("epsilon must be in [0, 1], got {}", p.epsilon)
            })?;
            Ok(EpsilonGreedy {
                epsilon: p.epsilon,
                rng: SplitMix64::new(seed),
                arms: Arms::default(),
                explorations: 0,
            })
        }
        decide(self, slot, out) {
            let mut extra = vec![0u32; slot.servers().len()];
            let mut cands = Vec::new();
            for (r, p) in slot.pending().iter().zip(out.iter_mut()) {
                cands.clear();
                cands.extend(slot.hosting(r.request.model).map(|s| s.id));
                let s = if cands.is_empty() {
                    None
                } else if self.rng.unit() < self.epsilon {
                    self.explorations += 1;
                    Some(cands[self.rng.below(cands.len())])
                } else {
                    self.arms.best(r.request.model, cands.iter().copied(), Arm::mean)
                };
                if let Some(s) = s {
                    self.arms.pull(r.request.model, s);
                }
                assign(p, s, &mut extra);
            }
            Ok(())
        }
        observe(self, o) {
            self.arms.record(o);
            Ok(())
        }
        stats(self, out) {
            out.push((
                "epsilon_greedy.explorations".into(),
                self.explorations as f64,
            ));
        }
    }
}

/// Cloud first with edge overflow: each request goes to the cloud server (hosting its model)
/// with the smallest predicted completion, unless that prediction misses the deadline; then to
/// the edge server with the smallest predicted completion that meets it; if none meets it, to the
/// fastest server overall (which `admission = reject_infeasible`, applied by perllm to every
/// policy, then rejects).
///
/// Predicted completion: the host cost model's estimate from the state before the slot, with the
/// queueing of the requests this policy placed earlier in the slot added as in `greedy`.
#[derive(Debug)]
pub struct CloudFirst {
    slack: f64,
    extra: Vec<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct CloudFirstParams {
    /// A server meets the deadline if its predicted completion is at most `slack x deadline`.
    slack: f64,
}

impl Default for CloudFirstParams {
    fn default() -> Self {
        CloudFirstParams { slack: 1.0 }
    }
}
impl GuestPolicy for CloudFirst {
    const NAME: &'static str = "cloud-first";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "the cloud unless its predicted completion misses the deadline, then the edge";
    const WANTS_ESTIMATES: bool = true;
    const PARAMS: &'static str =
        "slack (1.0): the cloud is kept if its predicted completion is within slack x the deadline";
    const IN_PLACE: bool = true;
    fn create(config: &str, _seed: u64) -> Result<Self, String> {
        let p: CloudFirstParams = parse_config(Self::NAME, config)?;
        check_positive(Self::NAME, "slack", p.slack)?;
        Ok(CloudFirst {
            slack: p.slack,
            extra: Vec::new(),
        })
    }
    fn decide(&mut self, slot: &Slot<'_>, out: &mut [Decision]) -> Result<(), String> {
        let servers = slot.servers();
        let extra = &mut self.extra;
        extra.clear();
        extra.resize(servers.len(), 0);
        for (ri, (r, p)) in slot.pending().iter().zip(out.iter_mut()).enumerate() {
            let limit = self.slack * slot.deadline_ns(r) as f64;
            // Per tier: (predicted, server) of the fastest; and the fastest overall.
            let mut cloud: Option<(u64, u32)> = None;
            let mut edge: Option<(u64, u32)> = None;
            for (si, (s, e)) in servers.iter().zip(slot.estimates_of(ri)).enumerate() {
                let Some(t) = predicted_ns(s, e, extra[si]) else {
                    continue;
                };
                let best = if s.tier == TIER_CLOUD {
                    &mut cloud
                } else {
                    &mut edge
                };
                if best.is_none_or(|(b, _)| t < b) {
                    *best = Some((t, si as u32));
                }
            }
            let meets = |x: Option<(u64, u32)>| x.filter(|(t, _)| *t as f64 <= limit);
            let fastest = match (cloud, edge) {
                (Some(c), Some(e)) => Some(if e.0 < c.0 { e } else { c }),
                (c, e) => c.or(e),
            };
            let s = meets(cloud).or(meets(edge)).or(fastest).map(|x| x.1);
            assign(p, s, extra);
        }
        Ok(())
    }
}
