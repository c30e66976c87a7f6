//! The `perllm` (and `oracle`) policy parameters, read from the scenario's `policy { ... }` block.

use crate::policy::PolicyError;
use crate::spec::{ParamValue, PolicySpec};

/// What happens to a request that no server can serve within its constraints (by the estimate).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Infeasible {
    /// Reject it at once.
    Reject,
    /// Send it to the hosting server with the smallest predicted processing time whose budgets
    /// and per-slot user rows allow it (also tried for requests the per-slot rows kept off every
    /// feasible server).
    BestEffort,
}

/// Which PerLLM algorithm runs (`variant`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// The default: interchangeable servers share their arms, arms start from the cost model's
    /// prediction, and exploration happens only where it can still pay off
    /// (docs/perllm-policy.md, "The improved variant").
    Improved,
    /// The paper's CS-UCB as first implemented: one arm per (class, server), optimistic priors
    /// and one forced trial of every arm. Kept for reproduction.
    Paper,
}

/// Which request attributes form a request class (the first half of an arm).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ClassKeys {
    /// Group by SLO class.
    pub slo: bool,
    /// Group by model.
    pub model: bool,
    /// Group by prompt and output size bucket.
    pub size: bool,
}

/// The parameters of the CS-UCB policy, with the documented defaults (see `docs/perllm-policy.md`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Params {
    /// `variant`: `improved` (default) or `paper`.
    pub variant: Variant,
    /// `exploration` (delta): weight of the exploration bonus `sqrt(ln t / n)`. Default 0.5.
    pub exploration: f64,
    /// `constraint_weight` (lambda): weight of the constraint-satisfaction score f(y). Default 1.
    pub constraint_weight: f64,
    /// `violation_penalty` (theta): weight of the arm's recent deadline-violation rate. Default 1.
    pub violation_penalty: f64,
    /// `violation_window`: how many of an arm's latest outcomes the violation rate covers. Default 20.
    pub violation_window: usize,
    /// `window`: keep only each arm's latest `window` observations in its estimates (0 = all). Default 0.
    pub window: usize,
    /// `discount` (gamma in (0, 1]): discount of older observations per new observation of the
    /// class (1 = none). Default 1.
    pub discount: f64,
    /// `classes`: comma-separated subset of `slo`, `model`, `size`. Default `slo,model,size`.
    pub classes: ClassKeys,
    /// `size_bucket_base`: sizes are bucketed by `floor(log_base(tokens))`. Default 4.
    pub size_bucket_base: f64,
    /// `infeasible`: `reject` or `best_effort`. Default `reject`.
    pub infeasible: Infeasible,
    /// `queue_factor`: how many extra batches a server may hold queued (capacity rows allow
    /// `(1 + queue_factor) x max_batch` committed requests). Default 1.
    pub queue_factor: f64,
    /// `link_window` (seconds): a link's capacity row is its mean bandwidth times this. Default 1 s.
    pub link_window: f64,
    /// `share_window` (seconds): `share(..)` constraints count the placements of the last
    /// `share_window` seconds plus the current slot's (0 = the current slot only). Default 10 s.
    pub share_window: f64,
    /// `use_lp`: solve the slot LP (false: greedy placement only, for ablations). Default true.
    pub use_lp: bool,
    /// `regret_min_obs`: arms with fewer observations are left out of the hindsight best arm. Default 3.
    pub regret_min_obs: u64,
    /// `explain_top`: how many servers' index values a decision-log note lists. Default 5.
    pub explain_top: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            variant: Variant::Improved,
            exploration: 0.5,
            constraint_weight: 1.0,
            violation_penalty: 1.0,
            violation_window: 20,
            window: 0,
            discount: 1.0,
            classes: ClassKeys {
                slo: true,
                model: true,
                size: true,
            },
            size_bucket_base: 4.0,
            infeasible: Infeasible::Reject,
            queue_factor: 1.0,
            link_window: 1.0,
            share_window: 10.0,
            use_lp: true,
            regret_min_obs: 3,
            explain_top: 5,
        }
    }
}

/// Every parameter name the policy accepts.
pub const PARAM_NAMES: &[&str] = &[
    "variant",
    "exploration",
    "constraint_weight",
    "violation_penalty",
    "violation_window",
    "window",
    "discount",
    "classes",
    "size_bucket_base",
    "infeasible",
    "queue_factor",
    "link_window",
    "share_window",
    "use_lp",
    "regret_min_obs",
    "explain_top",
];

/// The choice among `choices` that `value` names, else "expected EXPECTED, found `value`".
fn word<T: Copy>(value: &ParamValue, choices: &[(&str, T)], expected: &str) -> Result<T, String> {
    let found = match value {
        ParamValue::Text(t) => choices.iter().find(|c| c.0 == t).map(|c| c.1),
        _ => None,
    };
    found.ok_or_else(|| format!("expected {expected}, found `{value}`"))
}

impl Params {
    /// Read the parameters of `spec`, starting from the defaults. Unknown names, wrong types and
    /// out-of-range values are errors naming the parameter.
    pub fn from_spec(spec: &PolicySpec) -> Result<Params, PolicyError> {
        let policy = spec.name.clone();
        let err = |name: &str, msg: String| PolicyError {
            policy: policy.clone(),
            message: format!("parameter `{name}`: {msg}"),
        };
        let mut p = Params::default();
        for (name, value) in &spec.params {
            let num = |lo: f64, hi: f64, lo_open: bool| -> Result<f64, PolicyError> {
                match value {
                    ParamValue::Number(v)
                        if v.is_finite()
                            && (if lo_open { *v > lo } else { *v >= lo })
                            && *v <= hi =>
                    {
                        Ok(*v)
                    }
                    ParamValue::Number(v) => Err(err(
                        name,
                        format!(
                            "{v} is out of range: expected a number in {}{lo}, {hi}]",
                            if lo_open { "(" } else { "[" }
                        ),
                    )),
                    other => Err(err(name, format!("expected a number, found `{other}`"))),
                }
            };
            let int = |lo: f64, hi: f64| -> Result<u64, PolicyError> {
                let v = num(lo, hi, false)?;
                if v.fract() != 0.0 {
                    return Err(err(name, format!("expected a whole number, found {v}")));
                }
                Ok(v as u64)
            };
            match name.as_str() {
                "exploration" => p.exploration = num(0.0, 1e6, false)?,
                "constraint_weight" => p.constraint_weight = num(0.0, 1e6, false)?,
                "violation_penalty" => p.violation_penalty = num(0.0, 1e6, false)?,
                "violation_window" => p.violation_window = int(1.0, 1e6)? as usize,
                "window" => p.window = int(0.0, 1e9)? as usize,
                "discount" => p.discount = num(0.0, 1.0, true)?,
                "size_bucket_base" => p.size_bucket_base = num(1.0, 1e6, true)?,
                "queue_factor" => p.queue_factor = num(0.0, 1e3, false)?,
                "link_window" => p.link_window = num(0.0, 1e6, true)?,
                "share_window" => p.share_window = num(0.0, 1e9, false)?,
                "regret_min_obs" => p.regret_min_obs = int(1.0, 1e9)?,
                "explain_top" => p.explain_top = int(0.0, 1e6)? as usize,
                "use_lp" => match value {
                    ParamValue::Bool(b) => p.use_lp = *b,
                    other => {
                        return Err(err(
                            name,
                            format!("expected true or false, found `{other}`"),
                        ));
                    }
                },
                "variant" => {
                    let variants = [("improved", Variant::Improved), ("paper", Variant::Paper)];
                    p.variant = word(value, &variants, "`improved` or `paper`")
                        .map_err(|m| err(name, m))?;
                }
                "infeasible" => {
                    let choices = [
                        ("reject", Infeasible::Reject),
                        ("best_effort", Infeasible::BestEffort),
                        ("best-effort", Infeasible::BestEffort),
                    ];
                    p.infeasible = word(value, &choices, "`reject` or `best_effort`")
                        .map_err(|m| err(name, m))?;
                }
                "classes" => {
                    let ParamValue::Text(t) = value else {
                        return Err(err(
                            name,
                            format!("expected a list like \"slo,model,size\", found `{value}`"),
                        ));
                    };
                    let mut k = ClassKeys {
                        slo: false,
                        model: false,
                        size: false,
                    };
                    for part in t
                        .split([',', ' ', '+'])
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                    {
                        match part {
                            "slo" => k.slo = true,
                            "model" => k.model = true,
                            "size" => k.size = true,
                            "none" => {}
                            other => {
                                return Err(err(
                                    name,
                                    format!(
                                        "unknown class key `{other}`: expected slo, model, size or none"
                                    ),
                                ));
                            }
                        }
                    }
                    p.classes = k;
                }
                other => {
                    return Err(PolicyError {
                        policy: policy.clone(),
                        message: format!(
                            "unknown parameter `{other}`; {}known parameters: {}",
                            crate::suggest::did_you_mean(other, PARAM_NAMES.iter().copied()),
                            PARAM_NAMES.join(", ")
                        ),
                    });
                }
            }
        }
        if p.window > 0 && p.discount < 1.0 {
            return Err(err(
                "window",
                "set either `window` or `discount`, not both".into(),
            ));
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(pairs: &[(&str, ParamValue)]) -> PolicySpec {
        PolicySpec {
            name: "perllm".into(),
            params: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(Params::from_spec(&spec(&[])).unwrap(), Params::default());
        let p = Params::from_spec(&spec(&[
            ("exploration", ParamValue::Number(0.1)),
            ("classes", ParamValue::Text("slo, model".into())),
            ("infeasible", ParamValue::Text("best_effort".into())),
            ("use_lp", ParamValue::Bool(false)),
            ("window", ParamValue::Number(50.0)),
            ("variant", ParamValue::Text("paper".into())),
        ]))
        .unwrap();
        assert_eq!(p.variant, Variant::Paper);
        assert_eq!(p.exploration, 0.1);
        assert_eq!(
            p.classes,
            ClassKeys {
                slo: true,
                model: true,
                size: false
            }
        );
        assert_eq!(p.infeasible, Infeasible::BestEffort);
        assert!(!p.use_lp);
        assert_eq!(p.window, 50);
    }

    #[test]
    fn bad_parameters_are_named() {
        let e = Params::from_spec(&spec(&[("explore", ParamValue::Number(1.0))])).unwrap_err();
        assert!(e.message.contains("unknown parameter `explore`"), "{e}");
        assert!(e.message.contains("did you mean `exploration`?"), "{e}");
        let e = Params::from_spec(&spec(&[("share_windw", ParamValue::Number(1.0))])).unwrap_err();
        assert!(e.message.contains("did you mean `share_window`?"), "{e}");
        let e = Params::from_spec(&spec(&[("discount", ParamValue::Number(0.0))])).unwrap_err();
        assert!(
            e.message.contains("`discount`") && e.message.contains("out of range"),
            "{e}"
        );
        let e = Params::from_spec(&spec(&[("exploration", ParamValue::Text("high".into()))]))
            .unwrap_err();
        assert!(e.message.contains("expected a number"), "{e}");
        let e = Params::from_spec(&spec(&[("window", ParamValue::Number(2.5))])).unwrap_err();
        assert!(e.message.contains("whole number"), "{e}");
        let e = Params::from_spec(&spec(&[
            ("window", ParamValue::Number(5.0)),
            ("discount", ParamValue::Number(0.9)),
        ]))
        .unwrap_err();
        assert!(e.message.contains("not both"), "{e}");
        let e = Params::from_spec(&spec(&[("classes", ParamValue::Text("slo,colour".into()))]))
            .unwrap_err();
        assert!(e.message.contains("`colour`"), "{e}");
        let e =
            Params::from_spec(&spec(&[("variant", ParamValue::Text("fast".into()))])).unwrap_err();
        assert!(
            e.message.contains("`variant`") && e.message.contains("`paper`"),
            "{e}"
        );
    }
}
