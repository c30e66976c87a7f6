//! The `workload` block: arrivals, size distributions, model shares.

use super::*;
use crate::ast::*;
use crate::diag::{DiagBuilder, codes, did_you_mean};
use crate::units::Dim;
use perllm_core::spec::*;
use std::collections::HashMap;

/// Keys of the `workload` block.
pub const WORKLOAD_KEYS: &[&str] = &[
    "arrivals",
    "prompt_tokens",
    "output_tokens",
    "payload",
    "output_bytes_per_token",
    "models",
    "max_prompt_tokens",
    "max_output_tokens",
    "max_requests",
    "trace",
];

impl Lowerer {
    pub(super) fn workload(
        &mut self,
        it: &Item,
        names: &Names,
        servers: &[ServerSpec],
        models: &[ModelSpec],
    ) -> Option<WorkloadSpec> {
        let f = self.block_fields(it, Some(WORKLOAD_KEYS));
        self.index_entries("workload", &it.body);
        let trace = self.maybe(&f, "trace", |l, e| l.trace(e, names));
        // A trace gives the arrivals and sizes: those fields are then optional.
        let has_trace = f.contains_key("trace");
        let arrivals = self.required_or(
            &f,
            "arrivals",
            has_trace.then_some(Arrivals::Poisson { rate: 1.0 }),
            |l, e| l.arrivals(e),
        );
        let one = || has_trace.then_some(SizeDist::Fixed { value: 1.0 });
        let prompt = self.required_or(&f, "prompt_tokens", one(), |l, e| {
            l.size_dist(e, Dim::Count)
        });
        let output = self.required_or(&f, "output_tokens", one(), |l, e| {
            l.size_dist(e, Dim::Count)
        });
        let payload = self.required_or(
            &f,
            "payload",
            has_trace.then_some(SizeDist::Fixed { value: 0.0 }),
            |l, e| l.size_dist(e, Dim::Data),
        );
        let obpt = self.optional(&f, "output_bytes_per_token", 4.0, |l, e| {
            let v = l.data_or_number(e);
            l.non_negative(e, v, "output bytes per token")
        });
        let wmodels = self.required(&f, "models", |l, e| {
            l.model_shares(e, names, servers, models)
        });
        let mp = self.optional(&f, "max_prompt_tokens", 8192, |l, e| {
            l.positive_u32(e, "max_prompt_tokens")
        });
        let mo = self.optional(&f, "max_output_tokens", 4096, |l, e| {
            l.positive_u32(e, "max_output_tokens")
        });
        let mr = self.maybe(&f, "max_requests", |l, e| l.positive_u64(e, "max_requests"));
        Some(WorkloadSpec {
            arrivals: arrivals?,
            prompt_tokens: prompt?,
            output_tokens: output?,
            payload_bytes: payload?,
            output_bytes_per_token: obpt?,
            models: wmodels?,
            max_prompt_tokens: mp?,
            max_output_tokens: mo?,
            trace: trace?,
            max_requests: mr?,
        })
    }

    fn data_or_number(&mut self, e: &Expr) -> Option<f64> {
        let e = self.resolve(e)?.into_owned();
        let has_unit = matches!(&e.kind, ExprKind::Quantity { unit: Some(_), .. });
        if has_unit {
            self.quantity(&e, Dim::Data)
        } else {
            self.quantity(&e, Dim::Count)
        }
    }

    fn model_shares(
        &mut self,
        e: &Expr,
        names: &Names,
        servers: &[ServerSpec],
        models: &[ModelSpec],
    ) -> Option<Vec<(String, f64)>> {
        let e = self.resolve(e)?.into_owned();
        let mut out: Vec<(String, f64, Span, Span)> = Vec::new();
        let mut ok = true;
        match &e.kind {
            ExprKind::Map(b) => {
                let mut seen: HashMap<String, Span> = HashMap::new();
                for en in &b.entries {
                    if en.is_constraint {
                        self.type_err(&en.value, "`model: share`");
                        ok = false;
                        continue;
                    }
                    if let Some(prev) = seen.get(&en.key.name) {
                        self.err(DiagBuilder::twice(
                            codes::DUPLICATE,
                            format!("model `{}` is listed twice", en.key.name),
                            en.key.span,
                            *prev,
                            "listed",
                        ));
                        ok = false;
                        continue;
                    }
                    seen.insert(en.key.name.clone(), en.key.span);
                    match self.fraction(&en.value, "a share", Interval::Closed) {
                        Some(v) => out.push((en.key.name.clone(), v, en.key.span, en.value.span)),
                        None => ok = false,
                    }
                }
            }
            ExprKind::Path(_) | ExprKind::Str(_) => {
                let id = self.name(&e, "a model name")?;
                out.push((id.name, 1.0, id.span, e.span));
            }
            _ => {
                self.err(
                    DiagBuilder::error(
                        codes::TYPE,
                        format!("expected model shares, found {}", e.kind.describe()),
                    )
                    .label(e.span, "expected `{ model: share, ... }`")
                    .help("write e.g. `models = { llama2-7b: 70%, llama-33b: 30% }`"),
                );
                return None;
            }
        }
        for (name, _, span, _) in &out {
            if !names.models.contains_key(name) {
                let help = did_you_mean(name, names.models.keys().map(|k| k.as_str()));
                self.err(
                    DiagBuilder::error(codes::UNKNOWN_REF, format!("unknown model `{name}`"))
                        .label(*span, format!("no model is called `{name}`"))
                        .help_opt(help),
                );
                ok = false;
            } else if self.servers_complete
                && !servers.iter().any(|s| s.models.contains(name))
                && models.iter().any(|m| &m.name == name)
            {
                let decl = names.models[name].span;
                self.err(
                    DiagBuilder::error(
                        codes::UNHOSTED,
                        format!("the workload asks for model `{name}`, but no server hosts it"),
                    )
                    .label(*span, "requested here")
                    .label(decl, "declared here")
                    .help(format!("add `{name}` to some server's `models`")),
                );
                ok = false;
            }
        }
        self.check_shares(
            "model shares",
            out.iter()
                .map(|(n, v, _, sp)| (n.as_str(), *v, Some(*sp)))
                .collect(),
            None,
        );
        for (n, _, _, sp) in &out {
            self.idx(format!("workload.models.{n}"), *sp);
        }
        ok.then(|| out.into_iter().map(|(n, v, _, _)| (n, v)).collect())
    }

    pub(super) fn rate(&mut self, e: &Expr) -> Option<f64> {
        self.positive_quantity(e, Dim::Rate, "a rate")
    }

    fn arrivals(&mut self, e: &Expr) -> Option<Arrivals> {
        let (f, span, a) = self.call(
            e,
            "arrival process",
            &[
                ("poisson", &["rate"]),
                ("gamma", &["rate", "cv"]),
                ("on_off", &["rate", "on", "off"]),
                ("diurnal", &["mean_rate", "amplitude", "period"]),
                ("steps", &["steps"]),
            ],
        )?;
        let req = |this: &mut Self, i: usize, p: &str| this.arg(&a, i, &f, p, span).cloned();
        match f.as_str() {
            "poisson" => {
                let r = req(self, 0, "rate")?;
                self.rate(&r).map(|rate| Arrivals::Poisson { rate })
            }
            "gamma" => {
                let (r, c) = (req(self, 0, "rate"), req(self, 1, "cv"));
                let rate = r.and_then(|r| self.rate(&r));
                let cv = c.and_then(|c| {
                    self.positive_quantity(&c, Dim::Count, "the coefficient of variation")
                });
                Some(Arrivals::Gamma {
                    rate: rate?,
                    cv: cv?,
                })
            }
            "on_off" => {
                let (r, on, off) = (
                    req(self, 0, "rate"),
                    req(self, 1, "on"),
                    req(self, 2, "off"),
                );
                let rate = r.and_then(|r| self.rate(&r));
                let on_ns = on.and_then(|on| self.positive_time(&on, "the on period"));
                let off_ns = off.and_then(|off| self.time_ns(&off));
                Some(Arrivals::OnOff {
                    rate: rate?,
                    on_ns: on_ns?,
                    off_ns: off_ns?,
                })
            }
            "diurnal" => {
                let (r, am, pe) = (
                    req(self, 0, "mean_rate"),
                    req(self, 1, "amplitude"),
                    req(self, 2, "period"),
                );
                let mean_rate = r.and_then(|r| self.rate(&r));
                let amplitude =
                    am.and_then(|am| self.fraction(&am, "the amplitude", Interval::Closed));
                let period_ns = pe.and_then(|pe| self.positive_time(&pe, "the period"));
                Some(Arrivals::Diurnal {
                    mean_rate: mean_rate?,
                    amplitude: amplitude?,
                    period_ns: period_ns?,
                })
            }
            _ => {
                let s = req(self, 0, "steps")?;
                let steps = self.time_points(
                    &s,
                    "a list of `(start time, rate)` steps",
                    "a `(start time, rate)` step",
                    |l, r| l.non_negative_quantity(r, Dim::Rate, "a rate"),
                )?;
                if !self.increasing_from_zero(&steps, s.span, "steps", "these steps") {
                    return None;
                }
                if steps.iter().all(|s| s.1 == 0.0) {
                    self.err(
                        DiagBuilder::error(codes::RANGE, "every step has rate 0")
                            .label(s.span, "no arrivals at all"),
                    );
                    return None;
                }
                Some(Arrivals::Steps { steps })
            }
        }
    }

    pub(super) fn size_dist(&mut self, e: &Expr, dim: Dim) -> Option<SizeDist> {
        let r = self.resolve(e)?.into_owned();
        if matches!(r.kind, ExprKind::Quantity { .. } | ExprKind::Neg(_)) {
            let v = self.quantity(&r, dim);
            return self
                .non_negative(&r, v, "a size")
                .map(|value| SizeDist::Fixed { value });
        }
        let (f, span, a) = self.call(
            &r,
            "size distribution",
            &[
                ("fixed", &["value"]),
                ("uniform", &["lo", "hi"]),
                ("lognormal", &["median", "sigma"]),
                ("empirical", &["values"]),
            ],
        )?;
        let req = |this: &mut Self, i: usize, p: &str| this.arg(&a, i, &f, p, span).cloned();
        match f.as_str() {
            "fixed" => {
                let x = req(self, 0, "value")?;
                let v = self.quantity(&x, dim);
                self.non_negative(&x, v, "a size")
                    .map(|value| SizeDist::Fixed { value })
            }
            "uniform" => {
                let (l, h) = (req(self, 0, "lo"), req(self, 1, "hi"));
                let lo = l.as_ref().and_then(|l| {
                    let v = self.quantity(l, dim);
                    self.non_negative(l, v, "the lower bound")
                });
                let hi = h.as_ref().and_then(|h| self.quantity(h, dim));
                let (lo, hi) = (lo?, hi?);
                if hi < lo {
                    self.err(
                        DiagBuilder::error(
                            codes::RANGE,
                            "the upper bound is below the lower bound",
                        )
                        .label(h.expect("hi").span, "upper bound")
                        .label(l.expect("lo").span, "lower bound"),
                    );
                    return None;
                }
                Some(SizeDist::Uniform { lo, hi })
            }
            "lognormal" => {
                let (m, s) = (req(self, 0, "median"), req(self, 1, "sigma"));
                let median = m.and_then(|m| {
                    let v = self.quantity(&m, dim);
                    self.positive(&m, v, "the median")
                });
                let sigma = s.and_then(|s| self.non_negative_quantity(&s, Dim::Count, "sigma"));
                Some(SizeDist::LogNormal {
                    median: median?,
                    sigma: sigma?,
                })
            }
            _ => {
                let x = req(self, 0, "values")?;
                let l = self.list(&x, "a list of values")?.into_owned();
                if l.is_empty() {
                    self.err(
                        DiagBuilder::error(
                            codes::RANGE,
                            "an empirical distribution needs at least one value",
                        )
                        .label(x.span, "empty"),
                    );
                    return None;
                }
                let mut values = Vec::with_capacity(l.len());
                for v in &l {
                    let q = self.quantity(v, dim);
                    values.push(self.non_negative(v, q, "a size"));
                }
                values
                    .into_iter()
                    .collect::<Option<Vec<f64>>>()
                    .map(|values| SizeDist::Empirical { values })
            }
        }
    }
}
