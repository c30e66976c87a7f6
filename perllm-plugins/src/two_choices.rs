//! `two-choices`: the power of two choices on predicted completion.

use crate::policies::assign;
use crate::util::{SplitMix64, check, parse_config, predicted_ns};
use perllm_plugin_abi::guest_policy;
use serde::Deserialize;

/// The power of two choices: for each request, `choices` distinct servers hosting its model drawn
/// uniformly at random (all of them if there are no more), and the one with the earliest
/// predicted completion (ties: lower id). `choices = 1` is `random`.
///
/// The draws come from the run's policy random stream (the seed the host passes, derived from
/// the scenario's seed): a run is a pure function of (scenario, seed). Predicted completion: the
/// host cost model's estimate with the queue of the requests placed earlier in the slot added
/// (the rule of `greedy`).
#[derive(Debug)]
pub struct TwoChoices {
    choices: usize,
    rng: SplitMix64,
    extra: Vec<u32>,
    cands: Vec<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct TwoChoicesParams {
    choices: u32,
}

impl Default for TwoChoicesParams {
    fn default() -> Self {
        TwoChoicesParams { choices: 2 }
    }
}

guest_policy! {
    impl TwoChoices {
        name: "two-choices",
        description: "power of two choices: two random servers hosting the model, the one predicted to finish first (seeded)",
        wants_estimates: true,
        params: "choices (2): servers drawn per request, an integer in [1, 64]",
        create(config, seed) {
            let p: TwoChoicesParams = parse_config(Self::NAME, config)?;
            check(Self::NAME, (1..=64).contains(&p.choices), || {
                format!("parameter `choices` must be an integer in [1, 64], got {}", p.choices)
            })?;
            Ok(TwoChoices {
                choices: p.choices as usize,
                rng: SplitMix64::new(seed),
                extra: Vec::new(),
                cands: Vec::new(),
            })
        }
        decide(self, slot, out) {
            let servers = slot.servers();
            self.extra.clear();
            self.extra.resize(servers.len(), 0);
            for (ri, (r, p)) in slot.pending().iter().zip(out.iter_mut()).enumerate() {
                self.cands.clear();
                self.cands.extend(slot.hosting(r.request.model).map(|s| s.id));
                // A partial Fisher-Yates shuffle: the first `k` are a uniform draw without
                // replacement.
                let k = self.choices.min(self.cands.len());
                if k < self.cands.len() {
                    for i in 0..k {
                        let j = i + self.rng.below(self.cands.len() - i);
                        self.cands.swap(i, j);
                    }
                }
                let ests = slot.estimates_of(ri);
                let mut best: Option<(u64, u32)> = None;
                for &si in &self.cands[..k] {
                    let (Some(s), Some(e)) = (servers.get(si as usize), ests.get(si as usize)) else {
                        continue;
                    };
                    let Some(t) = predicted_ns(s, e, self.extra[si as usize]) else {
                        continue;
                    };
                    if best.is_none_or(|(bt, bs)| t < bt || (t == bt && si < bs)) {
                        best = Some((t, si));
                    }
                }
                assign(p, best.map(|b| b.1), &mut self.extra);
            }
            Ok(())
        }
    }
}
