//! The `objective` block: `minimize` and `constraint` entries, linear forms over per-slot
//! quantities.

use super::*;
use crate::ast::*;
use crate::diag::{DiagBuilder, codes, did_you_mean};
use crate::units::Dim;
use perllm_core::spec::*;

/// Keys of the `objective` block (plus `constraint` entries).
pub const OBJECTIVE_KEYS: &[&str] = &["minimize", "constraints"];
/// A linear form over per-slot quantities.
#[derive(Clone, Debug)]
struct Lin {
    terms: Vec<(f64, Quantity)>,
    constant: f64,
    dim: Option<Dim>,
    span: Span,
}

impl Lin {
    fn add(&mut self, coef: f64, q: Quantity) {
        if let Some(t) = self.terms.iter_mut().find(|t| t.1 == q) {
            t.0 += coef;
        } else {
            self.terms.push((coef, q));
        }
    }
    fn is_const(&self) -> bool {
        self.terms.is_empty()
    }
    fn scale(&mut self, k: f64) {
        for t in &mut self.terms {
            t.0 *= k;
        }
        self.constant *= k;
    }
}

impl Lowerer {
    pub(super) fn objective(
        &mut self,
        it: &Item,
        servers: &[ServerSpec],
        names: &Names,
    ) -> Option<Objective> {
        let f = self.block_fields(it, Some(OBJECTIVE_KEYS));
        let mut ok = true;
        let weights = match f.get("minimize") {
            Some(en) => {
                self.idx("objective.minimize".into(), en.value.span);
                self.minimize(&en.value, servers, names)
            }
            None => Some(ObjectiveWeights::default()),
        };
        let mut exprs: Vec<Expr> = it
            .body
            .entries
            .iter()
            .filter(|e| e.is_constraint)
            .map(|e| e.value.clone())
            .collect();
        if let Some(en) = f.get("constraints") {
            match self.list(&en.value, "a list of constraints") {
                Some(l) => exprs.extend(l.iter().cloned()),
                None => ok = false,
            }
        }
        let mut constraints = Vec::new();
        for e in &exprs {
            match self.constraint(e, servers, names) {
                Some(c) => constraints.push(c),
                None => ok = false,
            }
        }
        if let Some(c) = exprs.first() {
            self.idx("objective.constraint".into(), c.span);
        }
        let weights = weights?;
        ok.then_some(Objective {
            weights,
            constraints,
        })
    }

    fn minimize(
        &mut self,
        e: &Expr,
        servers: &[ServerSpec],
        names: &Names,
    ) -> Option<ObjectiveWeights> {
        let lin = self.linear(e, servers, names)?;
        let mut w = ObjectiveWeights {
            transmission: 0.0,
            inference: 0.0,
            idle: 0.0,
        };
        let mut ok = true;
        for (c, q) in &lin.terms {
            match q {
                Quantity::EnergyTransmission => w.transmission += c,
                Quantity::EnergyInference => w.inference += c,
                Quantity::EnergyIdle => w.idle += c,
                Quantity::Energy => {
                    w.transmission += c;
                    w.inference += c;
                    w.idle += c;
                }
                other => {
                    self.err(
                        DiagBuilder::error(codes::OBJECTIVE, format!("`minimize` takes energy terms only, found {}", qname(other)))
                            .label(lin.span, "not an energy term here")
                            .help("write e.g. `minimize = 1.0 * energy.transmission + 1.0 * energy.inference + 0.5 * energy.idle`; put latency and share limits in `constraint` entries"),
                    );
                    ok = false;
                }
            }
        }
        if lin.terms.is_empty() {
            self.err(
                DiagBuilder::error(codes::OBJECTIVE, "`minimize` mentions no energy term")
                    .label(e.span, "nothing to minimise")
                    .help("write e.g. `minimize = energy` or a weighted sum of `energy.transmission`, `energy.inference`, `energy.idle`"),
            );
            ok = false;
        } else if lin.constant != 0.0 {
            self.warn(
                DiagBuilder::warning(codes::UNUSED, "a constant in `minimize` has no effect")
                    .label(e.span, format!("constant {}", lin.constant)),
            );
        }
        for (n, v) in [
            ("transmission", w.transmission),
            ("inference", w.inference),
            ("idle", w.idle),
        ] {
            if v < 0.0 {
                self.err(
                    DiagBuilder::error(codes::RANGE, format!("the weight of `energy.{n}` is negative ({v})"))
                        .label(e.span, "in this objective")
                        .help("energy weights must be non-negative: minimising a negative weight would reward waste"),
                );
                ok = false;
            }
        }
        ok.then_some(w)
    }

    fn constraint(
        &mut self,
        e: &Expr,
        servers: &[ServerSpec],
        names: &Names,
    ) -> Option<LinearConstraint> {
        let e = self.resolve(e)?.into_owned();
        let ExprKind::Binary {
            op,
            op_span,
            lhs,
            rhs,
        } = &e.kind
        else {
            self.err(
                DiagBuilder::error(
                    codes::OBJECTIVE,
                    "a constraint compares two sides with `<=`, `>=` or `==`",
                )
                .label(e.span, "not a comparison")
                .help("write e.g. `constraint share(cloud) <= 60%`"),
            );
            return None;
        };
        let cmp = match op {
            BinOp::Le => Cmp::Le,
            BinOp::Ge => Cmp::Ge,
            BinOp::Eq => Cmp::Eq,
            _ => {
                self.err(
                    DiagBuilder::error(
                        codes::OBJECTIVE,
                        format!("`{}` is not a comparison", op.as_str()),
                    )
                    .label(*op_span, "expected `<=`, `>=` or `==`"),
                );
                return None;
            }
        };
        let l = self.linear(lhs, servers, names);
        let r = self.linear(rhs, servers, names);
        let (l, r) = (l?, r?);
        if let (Some(a), Some(b)) = (l.dim, r.dim)
            && a != b
        {
            self.err(
                DiagBuilder::error(
                    codes::UNIT,
                    format!("cannot compare {} with {}", a.describe(), b.describe()),
                )
                .label(l.span, a.describe())
                .label(r.span, b.describe()),
            );
            return None;
        }
        let mut out = Lin {
            terms: Vec::new(),
            constant: l.constant - r.constant,
            dim: None,
            span: e.span,
        };
        for (c, q) in l.terms {
            out.add(c, q);
        }
        for (c, q) in r.terms {
            out.add(-c, q);
        }
        out.terms.retain(|t| t.0 != 0.0);
        if out.terms.is_empty() {
            self.err(
                DiagBuilder::error(codes::OBJECTIVE, "this constraint mentions no per-slot quantity")
                    .label(e.span, "always true or always false")
                    .help("constraints compare `latency`, `deadline`, `share(x)`, `occupancy(x)` or energy terms"),
            );
            return None;
        }
        let source = self
            .sources
            .slice(e.span)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        Some(LinearConstraint {
            terms: out.terms,
            constant: out.constant,
            cmp,
            source,
        })
    }

    fn linear(&mut self, e: &Expr, servers: &[ServerSpec], names: &Names) -> Option<Lin> {
        let resolved = self.resolve(e)?.into_owned();
        let e = &resolved;
        let span = e.span;
        let mk = |terms: Vec<(f64, Quantity)>, constant: f64, dim: Option<Dim>| Lin {
            terms,
            constant,
            dim,
            span,
        };
        match &e.kind {
            ExprKind::Quantity {
                unit: None, value, ..
            } => Some(mk(vec![], *value, None)),
            ExprKind::Quantity {
                unit: Some(u),
                value,
                text,
            } => {
                match self.any_unit(u)? {
                    unit if matches!(unit.dim, Dim::Time | Dim::Energy | Dim::Fraction) => {
                        // Constraints count time in seconds.
                        let v = si_value(text, *value, unit);
                        Some(mk(vec![], v, Some(unit.dim)))
                    }
                    unit => {
                        self.err(
                            DiagBuilder::error(codes::UNIT, format!("constraints cannot use {} (`{}`)", unit.dim.describe(), u.name))
                                .label(u.span, "not allowed here")
                                .help("constraints compare times (`s`), energies (`J`) and fractions (`%`)"),
                        );
                        None
                    }
                }
            }
            ExprKind::Path(p) => {
                let full: Vec<&str> = p.iter().map(|i| i.name.as_str()).collect();
                let full = full.join(".");
                let (q, dim) = match full.as_str() {
                    "latency" => (Quantity::Latency, Dim::Time),
                    "deadline" => (Quantity::Deadline, Dim::Time),
                    "energy" => (Quantity::Energy, Dim::Energy),
                    "energy.transmission" => (Quantity::EnergyTransmission, Dim::Energy),
                    "energy.inference" => (Quantity::EnergyInference, Dim::Energy),
                    "energy.idle" => (Quantity::EnergyIdle, Dim::Energy),
                    other => {
                        let known = [
                            "latency",
                            "deadline",
                            "energy",
                            "energy.transmission",
                            "energy.inference",
                            "energy.idle",
                            "share",
                            "occupancy",
                        ];
                        let help = did_you_mean(other, known).unwrap_or_else(|| {
                            "the quantities are: latency, deadline, share(x), occupancy(x), energy, energy.transmission, energy.inference, energy.idle".into()
                        });
                        self.err(
                            DiagBuilder::error(
                                codes::UNKNOWN_REF,
                                format!("unknown quantity `{other}`"),
                            )
                            .label(span, "not a per-slot quantity")
                            .help(help),
                        );
                        return None;
                    }
                };
                Some(mk(vec![(1.0, q)], 0.0, Some(dim)))
            }
            ExprKind::Call { name, args } => {
                let share = match name.name.as_str() {
                    "share" => true,
                    "occupancy" => false,
                    // The old spelling: one meaning in the language (batch-slot occupancy),
                    // but reports once used the word for busy time, so it is named.
                    "utilization" => {
                        self.warn(
                            DiagBuilder::warning(
                                codes::RENAMED,
                                "`utilization(..)` is now written `occupancy(..)`",
                            )
                            .label(name.span, "read as `occupancy`")
                            .help(
                                "it bounds the fraction of the target's batch slots in use \
                                 (requests running, queued or uploading / max_batch), not its busy \
                                 time over the run, which reports show as `busy`",
                            ),
                        );
                        false
                    }
                    other => {
                        let help = did_you_mean(other, ["share", "occupancy"]);
                        self.err(
                            DiagBuilder::error(
                                codes::UNKNOWN_REF,
                                format!("unknown function `{other}`"),
                            )
                            .label(name.span, "not a per-slot quantity")
                            .help_opt(help.or(Some(
                                "constraints know `share(x)` and `occupancy(x)`".into(),
                            ))),
                        );
                        return None;
                    }
                };
                let [Arg { name: None, value }] = args.as_slice() else {
                    self.err(
                        DiagBuilder::error(
                            codes::TYPE,
                            format!("`{}` takes one server, family or tier", name.name),
                        )
                        .label(span, "expected one argument")
                        .help(format!("write e.g. `{}(cloud)`", name.name)),
                    );
                    return None;
                };
                let id = self.name(value, "a server, family or tier name")?;
                let t = self.target(&id, servers, names)?;
                Some(mk(
                    vec![(
                        1.0,
                        if share {
                            Quantity::Share(t)
                        } else {
                            Quantity::Occupancy(t)
                        },
                    )],
                    0.0,
                    Some(Dim::Fraction),
                ))
            }
            ExprKind::Neg(x) => {
                let mut l = self.linear(x, servers, names)?;
                l.scale(-1.0);
                l.span = span;
                Some(l)
            }
            ExprKind::Sum(parts) => {
                let mut out = mk(vec![], 0.0, None);
                let mut ok = true;
                for (neg, x) in parts {
                    let Some(mut l) = self.linear(x, servers, names) else {
                        ok = false;
                        continue;
                    };
                    if *neg {
                        l.scale(-1.0);
                    }
                    match (out.dim, l.dim) {
                        (Some(a), Some(b)) if a != b => {
                            self.err(
                                DiagBuilder::error(
                                    codes::UNIT,
                                    format!("cannot add {} and {}", a.describe(), b.describe()),
                                )
                                .label(x.span, b.describe())
                                .label(parts[0].1.span, a.describe()),
                            );
                            ok = false;
                            continue;
                        }
                        (None, d) => out.dim = d,
                        _ => {}
                    }
                    for (c, q) in l.terms {
                        out.add(c, q);
                    }
                    out.constant += l.constant;
                }
                ok.then_some(out)
            }
            ExprKind::Product(parts) => {
                let mut acc: Option<Lin> = None;
                let mut var_span: Option<Span> = None;
                let mut ok = true;
                for x in parts {
                    let Some(l) = self.linear(x, servers, names) else {
                        ok = false;
                        continue;
                    };
                    let Some(a) = acc.as_mut() else {
                        if !l.is_const() {
                            var_span = Some(x.span);
                        }
                        acc = Some(l);
                        continue;
                    };
                    if !a.is_const() && !l.is_const() {
                        self.err(
                            DiagBuilder::error(codes::NONLINEAR, "a product of two variables is not linear")
                                .label(x.span, "a variable")
                                .label(var_span.unwrap_or(a.span), "multiplied by another variable")
                                .help("objectives and constraints must be linear: multiply quantities only by numbers"),
                        );
                        ok = false;
                        continue;
                    }
                    if l.is_const() {
                        let k = l.constant;
                        if l.dim.is_some() && a.dim.is_some() {
                            self.err(
                                DiagBuilder::error(
                                    codes::UNIT,
                                    "cannot multiply two quantities with units",
                                )
                                .label(x.span, "has a unit")
                                .help("a coefficient is a plain number"),
                            );
                            ok = false;
                            continue;
                        }
                        a.scale(k);
                        a.dim = a.dim.or(l.dim);
                    } else {
                        let k = a.constant;
                        let d = a.dim;
                        let mut l = l;
                        l.scale(k);
                        if d.is_some() && l.dim.is_some() {
                            self.err(
                                DiagBuilder::error(
                                    codes::UNIT,
                                    "cannot multiply a quantity with a unit by another quantity",
                                )
                                .label(x.span, "here")
                                .help("a coefficient is a plain number"),
                            );
                            ok = false;
                            continue;
                        }
                        var_span = Some(x.span);
                        *a = l;
                    }
                }
                let mut out = acc?;
                out.span = span;
                ok.then_some(out)
            }
            _ => {
                self.err(
                    DiagBuilder::error(
                        codes::OBJECTIVE,
                        format!("expected a linear expression, found {}", e.kind.describe()),
                    )
                    .label(span, "not allowed in an objective or constraint"),
                );
                None
            }
        }
    }

    fn target(&mut self, id: &Ident, servers: &[ServerSpec], names: &Names) -> Option<Target> {
        if names.servers.contains_key(&id.name) {
            return Some(Target::Server(id.name.clone()));
        }
        if names.families.contains_key(&id.name)
            || servers
                .iter()
                .any(|s| s.family.as_deref() == Some(&id.name))
        {
            return Some(Target::Family(id.name.clone()));
        }
        match id.name.as_str() {
            "edge" => return Some(Target::Tier(Tier::Edge)),
            "cloud" => return Some(Target::Tier(Tier::Cloud)),
            _ => {}
        }
        let cands: Vec<&str> = names
            .servers
            .keys()
            .chain(names.families.keys())
            .map(|s| s.as_str())
            .chain(["edge", "cloud"])
            .collect();
        let help = did_you_mean(&id.name, cands);
        self.err(
            DiagBuilder::error(
                codes::UNKNOWN_REF,
                format!("`{}` is not a server, a family or a tier", id.name),
            )
            .label(id.span, "unknown target")
            .help_opt(
                help.or(Some(
                    "name a server, a family (`edge` for `edge[1..5]`) or a tier (`edge`, `cloud`)"
                        .into(),
                )),
            ),
        );
        None
    }
}

fn qname(q: &Quantity) -> String {
    match q {
        Quantity::Latency => "`latency`".into(),
        Quantity::Deadline => "`deadline`".into(),
        Quantity::Share(_) => "`share(..)`".into(),
        Quantity::Occupancy(_) => "`occupancy(..)`".into(),
        _ => "an energy term".into(),
    }
}
