//! Checks across blocks: shares summing to 100%, servers' references and memory fit, models
//! nobody hosts, deadlines no server can meet.

use super::*;
use crate::ast::*;
use crate::diag::{DiagBuilder, codes, did_you_mean};
use perllm_core::spec::*;
use std::collections::{HashMap, HashSet};

impl Lowerer {
    pub(super) fn check_shares(
        &mut self,
        what: &str,
        shares: Vec<(&str, f64, Option<Span>)>,
        at: Option<Span>,
    ) {
        if shares.is_empty() {
            return;
        }
        let sum: f64 = shares.iter().map(|s| s.1).sum();
        if (sum - 1.0).abs() > 1e-6 {
            let parts: Vec<String> = shares.iter().map(|s| pct(s.1)).collect();
            let mut d = DiagBuilder::error(
                codes::SHARES,
                format!("{what} sum to {}, not 100%", pct(sum)),
            );
            let mut any = false;
            for (n, v, sp) in &shares {
                if let Some(sp) = sp {
                    d = d.label(*sp, format!("{n}: {}", pct(*v)));
                    any = true;
                }
            }
            if !any && let Some(a) = at {
                d = d.at(a);
            }
            let d = d.help(format!(
                "{} = {}; adjust them to sum to 100%",
                parts.join(" + "),
                pct(sum)
            ));
            self.err(d);
        }
    }

    pub(super) fn check_refs(
        &mut self,
        server_items: &[(&Item, usize)],
        servers: &[ServerSpec],
        hardware: &[Hardware],
        models: &[ModelSpec],
        names: &Names,
    ) {
        let mut i = 0;
        for (it, n) in server_items {
            let Some(s) = servers.get(i) else { break };
            i += n;
            let f = Fields::unchecked(&it.body, it.span);
            let hw_ok = names.hardware.contains_key(&s.hardware);
            let report = |this: &mut Self,
                          key: &str,
                          what: &str,
                          name: &str,
                          table: &HashMap<String, Decl>| {
                let span = f
                    .get(key)
                    .map(|e| this.find_name_span(&e.value, name))
                    .unwrap_or(it.span);
                let help = did_you_mean(name, table.keys().map(|k| k.as_str())).or_else(|| {
                    if table.is_empty() {
                        Some(format!("declare it with `{what} {name} {{ ... }}`"))
                    } else {
                        None
                    }
                });
                this.err(
                    DiagBuilder::error(codes::UNKNOWN_REF, format!("unknown {what} `{name}`"))
                        .label(span, format!("no {what} is called `{name}`"))
                        .help_opt(help),
                );
            };
            if !hw_ok {
                report(self, "hardware", "hardware", &s.hardware, &names.hardware);
            }
            if !names.links.contains_key(&s.link) {
                report(self, "link", "link", &s.link, &names.links);
            }
            for m in &s.models {
                if !names.models.contains_key(m) {
                    self.servers_complete = false;
                    report(self, "models", "model", m, &names.models);
                }
            }
            // Memory: the hosted models' weights must fit.
            if hw_ok && let Some(h) = hardware.iter().find(|h| h.name == s.hardware) {
                let mem = h.memory_bytes as f64 * s.count as f64;
                let hosted: Vec<&ModelSpec> = models
                    .iter()
                    .filter(|m| s.models.contains(&m.name))
                    .collect();
                let weights: f64 = hosted.iter().map(|m| m.weight_bytes()).sum();
                if weights >= mem {
                    let span = f.get("models").map(|e| e.value.span).unwrap_or(it.span);
                    let detail: Vec<String> = hosted
                        .iter()
                        .map(|m| format!("{} {} GB", m.name, gb(m.weight_bytes())))
                        .collect();
                    let mut d = DiagBuilder::error(
                        codes::MEMORY,
                        format!(
                            "the models of server `{}` do not fit in its memory: {} GB of weights, {} GB of memory",
                            sources_name(it.name.as_ref().expect("server name")),
                            gb(weights),
                            gb(mem)
                        ),
                    )
                    .label(span, format!("weights: {}", detail.join(", ")));
                    if let Some(hd) = names.hardware.get(&h.name) {
                        d = d.label(
                            hd.span,
                            format!("{:.1} GB per device", h.memory_bytes as f64 / 1e9),
                        );
                    }
                    self.err(d.help("host fewer or smaller (quantised) models, or use more devices (`hardware = NAME x 2`)"));
                }
            }
        }
        // Models nobody hosts (unless a server is missing or broken: that is the real problem).
        if !self.servers_complete {
            return;
        }
        let hosted: HashSet<&str> = servers
            .iter()
            .flat_map(|s| s.models.iter().map(|m| m.as_str()))
            .collect();
        for m in models {
            if !hosted.contains(m.name.as_str()) {
                let span = names.models.get(&m.name).map(|d| d.span);
                if let Some(span) = span {
                    self.warn(
                        DiagBuilder::warning(
                            codes::UNUSED,
                            format!("no server hosts model `{}`", m.name),
                        )
                        .label(span, "declared here")
                        .help("add it to a server's `models`, or remove it"),
                    );
                }
            }
        }
    }

    /// The span of `name` inside a value (a list of names), or the value's span.
    fn find_name_span(&self, e: &Expr, name: &str) -> Span {
        match &e.kind {
            ExprKind::Path(p) if p.len() == 1 && p[0].name == name => p[0].span,
            ExprKind::List(v) => v
                .iter()
                .map(|x| self.find_name_span(x, name))
                .find(|s| self.sources.slice(*s).contains(name))
                .unwrap_or(e.span),
            ExprKind::Binary { lhs, .. } => self.find_name_span(lhs, name),
            ExprKind::TomlStr {
                text,
                offset: Some(o),
            } => match text.find(name) {
                Some(i) => Span {
                    src: e.span.src,
                    start: o + i as u32,
                    end: o + (i + name.len()) as u32,
                },
                None => e.span,
            },
            _ => e.span,
        }
    }

    // ----- warnings -----------------------------------------------------------------------------

    pub(super) fn deadline_warnings(
        &mut self,
        slos: &[(SloClass, Span, Option<Span>)],
        servers: &[ServerSpec],
        hardware: &[Hardware],
        models: &[ModelSpec],
        links: &[LinkSpec],
    ) {
        use perllm_core::cost::{CostModel, Roofline, StepShape};
        let cm = Roofline::default();
        // Fastest (link latency + one decode step) over servers; evaluate each distinct
        // (hardware, count, link, models) combination once.
        let mut best: Option<(u64, String)> = None;
        let mut seen = HashSet::new();
        for s in servers {
            if !seen.insert((&s.hardware, s.count, &s.link, &s.models)) {
                continue;
            }
            let (Some(h), Some(l)) = (
                hardware.iter().find(|h| h.name == s.hardware),
                links.iter().find(|l| l.name == s.link),
            ) else {
                continue;
            };
            for m in models.iter().filter(|m| s.models.contains(&m.name)) {
                let shape = StepShape {
                    prefill_tokens: 0,
                    prefill_seqs: 0,
                    decode_seqs: 1,
                    kv_tokens: 1,
                };
                let t = l
                    .latency_ns
                    .saturating_add(cm.step_ns(h, s.count, m, &shape));
                if best.as_ref().is_none_or(|b| t < b.0) {
                    best = Some((t, s.name.clone()));
                }
            }
        }
        let Some((t, server)) = best else { return };
        for (slo, span, _) in slos {
            if slo.deadline_ns < t {
                self.warn(DiagBuilder::warning(
                        codes::TIGHT_DEADLINE,
                        format!("SLO class `{}` has a deadline no server can meet", slo.name),
                    )
                    .label(*span, format!("{} ms", slo.deadline_ns as f64 / 1e6))
                    .help(format!(
                        "the fastest server, `{server}`, needs at least {:.1} ms (link latency plus one decode step)",
                        t as f64 / 1e6
                    ))
                    );
            }
        }
    }
}

/// Bytes as GB with one decimal, in scientific notation when huge.
fn gb(bytes: f64) -> String {
    let v = bytes / 1e9;
    if v.abs() < 1e12 {
        format!("{v:.1}")
    } else {
        format!("{v:.2e}")
    }
}
