//! Request classes and the CS-UCB arm statistics.

use super::params::{ClassKeys, Params};
use crate::request::Request;
use crate::world::World;
use std::collections::{BTreeMap, VecDeque};

/// Pseudo-observations the cost model's prediction counts as, in every arm's ratios and in its
/// confidence bound. A constant of the algorithm, the same for every deployment.
pub(crate) const PRIOR_OBS: f64 = 4.0;

/// A learned mean ratio shrunk towards the model's prediction (ratio 1) by [`PRIOR_OBS`].
pub(crate) fn with_prior(mean: f64, n: f64) -> f64 {
    let n = n.max(0.0);
    (PRIOR_OBS + n * mean) / (PRIOR_OBS + n)
}

/// What identifies a request class (fields not in use are 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ClassKey {
    pub slo: u16,
    pub model: u16,
    pub prompt_bucket: u8,
    pub output_bucket: u8,
}

/// Maps requests to class indices, creating classes on first sight (deterministically: a class
/// index depends only on the order in which classes are first seen).
#[derive(Clone, Debug)]
pub(crate) struct Classifier {
    keys: ClassKeys,
    ln_base: f64,
    map: BTreeMap<ClassKey, u32>,
    /// Keys by index.
    pub list: Vec<ClassKey>,
}

impl Classifier {
    pub fn new(p: &Params) -> Self {
        Classifier {
            keys: p.classes,
            ln_base: p.size_bucket_base.ln(),
            map: BTreeMap::new(),
            list: Vec::new(),
        }
    }

    fn bucket(&self, tokens: u32) -> u8 {
        ((tokens.max(1) as f64).ln() / self.ln_base + 1e-9)
            .floor()
            .clamp(0.0, 255.0) as u8
    }

    /// The class key of `r`.
    pub fn key(&self, r: &Request) -> ClassKey {
        ClassKey {
            slo: if self.keys.slo { r.slo } else { 0 },
            model: if self.keys.model { r.model } else { 0 },
            prompt_bucket: if self.keys.size {
                self.bucket(r.prompt_tokens)
            } else {
                0
            },
            output_bucket: if self.keys.size {
                self.bucket(r.output_tokens)
            } else {
                0
            },
        }
    }

    /// The class index of `r`, creating the class if new.
    pub fn class_of(&mut self, r: &Request) -> u32 {
        let k = self.key(r);
        if let Some(&c) = self.map.get(&k) {
            return c;
        }
        let c = self.list.len() as u32;
        self.map.insert(k, c);
        self.list.push(k);
        c
    }

    /// A readable class name, e.g. `interactive/llama2-7b/p4/o3`.
    pub fn name(&self, c: u32, world: &World) -> String {
        let k = &self.list[c as usize];
        let mut parts = Vec::new();
        if self.keys.slo {
            parts.push(world.slos[k.slo as usize].name.clone());
        }
        if self.keys.model {
            parts.push(world.models[k.model as usize].name.clone());
        }
        if self.keys.size {
            parts.push(format!("p{}", k.prompt_bucket));
            parts.push(format!("o{}", k.output_bucket));
        }
        if parts.is_empty() {
            "all".into()
        } else {
            parts.join("/")
        }
    }
}

/// One observation of an arm, as the estimates use it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Sample {
    /// Normalised weighted energy.
    pub energy: f64,
    /// Realised deadline slack `(deadline - D) / deadline`, clamped to [-1, 1].
    pub slack: f64,
    /// Realised over predicted processing time.
    pub latency_ratio: f64,
    /// Realised over predicted weighted energy.
    pub energy_ratio: f64,
}

/// Statistics of one (class, server) arm.
#[derive(Clone, Debug, Default)]
pub(crate) struct Arm {
    /// Effective observation count (discounted when `discount < 1`, windowed when `window > 0`).
    w: f64,
    sum: Sample,
    /// Class clock at the last update (for lazy discounting).
    last_clock: u64,
    window: VecDeque<Sample>,
    violations: VecDeque<bool>,
    violation_count: u32,
    /// All-time count and reward sum (for hindsight regret).
    pub total_n: u64,
    pub total_reward: f64,
    /// Requests ever assigned to this arm.
    pub assigned: u64,
}

/// The estimates of an arm at a point in time.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub(crate) struct ArmView {
    /// Effective observation count.
    pub n: f64,
    /// Mean normalised energy.
    pub energy: f64,
    /// Mean deadline slack.
    pub slack: f64,
    /// Mean realised/predicted latency.
    pub latency_ratio: f64,
    /// Mean realised/predicted energy.
    pub energy_ratio: f64,
    /// Recent violation rate.
    pub violations: f64,
}

impl Arm {
    fn decay(&self, p: &Params, clock: u64) -> f64 {
        if p.discount < 1.0 {
            p.discount.powf((clock - self.last_clock) as f64)
        } else {
            1.0
        }
    }

    /// The arm's current estimates; `clock` is its class's observation clock.
    pub fn view(&self, p: &Params, clock: u64) -> ArmView {
        if self.w <= 0.0 {
            return ArmView {
                n: 0.0,
                energy: 0.0,
                slack: 0.0,
                latency_ratio: 1.0,
                energy_ratio: 1.0,
                violations: 0.0,
            };
        }
        let w = self.w;
        ArmView {
            n: w * self.decay(p, clock),
            energy: self.sum.energy / w,
            slack: self.sum.slack / w,
            latency_ratio: self.sum.latency_ratio / w,
            energy_ratio: self.sum.energy_ratio / w,
            violations: if self.violations.is_empty() {
                0.0
            } else {
                self.violation_count as f64 / self.violations.len() as f64
            },
        }
    }

    /// Add an observation at class clock `clock` (already advanced for this observation).
    pub fn observe(&mut self, p: &Params, clock: u64, s: Sample, reward: f64, violated: bool) {
        if p.window > 0 {
            self.window.push_back(s);
            if self.window.len() > p.window {
                self.window.pop_front();
            }
            // Recompute (windows are short; avoids drift from subtracting).
            let mut sum = Sample::default();
            for x in &self.window {
                sum.energy += x.energy;
                sum.slack += x.slack;
                sum.latency_ratio += x.latency_ratio;
                sum.energy_ratio += x.energy_ratio;
            }
            self.sum = sum;
            self.w = self.window.len() as f64;
        } else {
            let d = self.decay(p, clock);
            self.w = self.w * d + 1.0;
            self.sum.energy = self.sum.energy * d + s.energy;
            self.sum.slack = self.sum.slack * d + s.slack;
            self.sum.latency_ratio = self.sum.latency_ratio * d + s.latency_ratio;
            self.sum.energy_ratio = self.sum.energy_ratio * d + s.energy_ratio;
        }
        self.last_clock = clock;
        self.violations.push_back(violated);
        self.violation_count += violated as u32;
        if self.violations.len() > p.violation_window && self.violations.pop_front() == Some(true) {
            self.violation_count -= 1;
        }
        self.total_n += 1;
        self.total_reward += reward;
    }
}

/// The arms of all classes, indexed `[class][server]`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Arms {
    pub arms: Vec<Vec<Arm>>,
    /// Per class: observation clock (count of observations).
    pub clock: Vec<u64>,
    /// Per class: effective number of observations (discounted like the arms).
    pub class_n: Vec<f64>,
    /// Per class: the lowest mean energy and the highest mean slack of its observed arms
    /// (the optimistic prior of unobserved arms), refreshed at each observation of the class.
    prior: Vec<Option<(f64, f64)>>,
    /// Per class: sums of the squared prediction errors of the arms' corrected latency and
    /// energy ratios (realised ratio minus the arm's prior-shrunk mean before the sample), and
    /// their count: how far the corrected cost model is off for the class (the improved
    /// variant's confidence bound; the paper variant does not read it).
    pub residuals: Vec<(f64, f64, f64)>,
}

impl Arms {
    /// Make sure class `c` exists for `n_servers` servers.
    pub fn ensure(&mut self, c: u32, n_servers: usize) {
        while self.arms.len() <= c as usize {
            self.arms.push(vec![Arm::default(); n_servers]);
            self.clock.push(0);
            self.class_n.push(0.0);
            self.prior.push(None);
            self.residuals.push((0.0, 0.0, 0.0));
        }
    }

    /// The CS-UCB index of arm (c, s): see the module docs of [`super`].
    pub fn index(&self, p: &Params, c: u32, s: usize, rho: f64) -> (f64, ArmView) {
        let c = c as usize;
        let v = self.arms[c][s].view(p, self.clock[c]);
        let t = self.class_n[c].max(1.0);
        if v.n <= 0.0 {
            // Unobserved: optimistic prior = the class's lowest observed mean energy and highest
            // observed mean slack, plus the bonus of a single observation.
            let prior = match self.prior[c] {
                Some((e, slack)) => -e + p.constraint_weight * slack.min(rho),
                None => p.constraint_weight * rho,
            };
            return (prior + p.exploration * (t + 1.0).ln().sqrt(), v);
        }
        let u = -v.energy
            + p.constraint_weight * v.slack.min(rho)
            + p.exploration * ((t + 1.0).ln() / v.n).sqrt()
            - p.violation_penalty * v.violations;
        (u, v)
    }

    /// Record an observation of arm (c, s).
    pub fn observe(
        &mut self,
        p: &Params,
        c: u32,
        s: usize,
        sample: Sample,
        reward: f64,
        violated: bool,
    ) {
        let c = c as usize;
        self.clock[c] += 1;
        let d = if p.window == 0 && p.discount < 1.0 {
            p.discount
        } else {
            1.0
        };
        self.class_n[c] = self.class_n[c] * d + 1.0;
        let clock = self.clock[c];
        let before = self.arms[c][s].view(p, clock);
        let dl = sample.latency_ratio - with_prior(before.latency_ratio, before.n);
        let de = sample.energy_ratio - with_prior(before.energy_ratio, before.n);
        let r = &mut self.residuals[c];
        *r = (r.0 + dl * dl, r.1 + de * de, r.2 + 1.0);
        self.arms[c][s].observe(p, clock, sample, reward, violated);
        let mut prior: Option<(f64, f64)> = None;
        for a in self.arms[c].iter().filter(|a| a.w > 0.0) {
            let v = a.view(p, clock);
            prior = Some(match prior {
                None => (v.energy, v.slack),
                Some((e, sl)) => (e.min(v.energy), sl.max(v.slack)),
            });
        }
        self.prior[c] = prior;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An arm that observed energy 1 (a violation) at clock 1, then energy 3 at clock 2.
    fn observed_twice(p: &Params) -> Arm {
        let mut a = Arm::default();
        for (i, e) in [1.0, 3.0].into_iter().enumerate() {
            a.observe(
                p,
                i as u64 + 1,
                Sample {
                    energy: e,
                    slack: 0.5,
                    latency_ratio: 1.0,
                    energy_ratio: 1.0,
                },
                -e,
                i == 0,
            );
        }
        a
    }

    #[test]
    fn means_discount_and_window() {
        let p = Params::default();
        let v = observed_twice(&p).view(&p, 2);
        assert_eq!((v.n, v.energy, v.violations), (2.0, 2.0, 0.5));

        let pw = Params {
            window: 1,
            ..Params::default()
        };
        let a = observed_twice(&pw);
        assert_eq!(a.view(&pw, 2).energy, 3.0);
        assert_eq!(a.total_n, 2);

        let pd = Params {
            discount: 0.5,
            ..Params::default()
        };
        let a = observed_twice(&pd);
        let v = a.view(&pd, 2);
        // weights 0.5 and 1: mean (0.5 + 3) / 1.5
        assert!((v.energy - 3.5 / 1.5).abs() < 1e-12 && (v.n - 1.5).abs() < 1e-12);
        // Two more observations of other arms of the class decay this one's count.
        assert!((a.view(&pd, 4).n - 0.375).abs() < 1e-12);
    }

    #[test]
    fn index_prefers_low_energy_and_explores_unknown_arms() {
        let p = Params::default();
        let mut arms = Arms::default();
        arms.ensure(0, 3);
        for _ in 0..20 {
            arms.observe(
                &p,
                0,
                0,
                Sample {
                    energy: 0.8,
                    slack: 0.5,
                    latency_ratio: 1.0,
                    energy_ratio: 1.0,
                },
                0.0,
                false,
            );
            arms.observe(
                &p,
                0,
                1,
                Sample {
                    energy: 0.1,
                    slack: 0.5,
                    latency_ratio: 1.0,
                    energy_ratio: 1.0,
                },
                0.0,
                false,
            );
        }
        let (u0, _) = arms.index(&p, 0, 0, 1.0);
        let (u1, _) = arms.index(&p, 0, 1, 1.0);
        let (u2, v2) = arms.index(&p, 0, 2, 1.0);
        assert!(u1 > u0);
        assert_eq!(v2.n, 0.0);
        assert!(u2 > u1, "an unobserved arm is optimistic");
    }
}
