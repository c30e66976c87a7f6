//! Values: expressions turned into numbers with units, integers, names, strings, words, calls,
//! lists and tuples, each with its diagnostic when the expression is not what the field wants.

use super::*;
use crate::ast::*;
use crate::diag::{DiagBuilder, codes, did_you_mean};
use crate::units::{self, Dim, Factor, Unit};
use std::borrow::Cow;

/// Where a fraction may lie in [0, 1].
#[derive(Clone, Copy, Debug)]
pub(super) enum Interval {
    /// [0, 1]
    Closed,
    /// (0, 1]
    OpenLow,
    /// [0, 1)
    OpenHigh,
}

impl Lowerer {
    // ----- values -------------------------------------------------------------------------------

    /// A TOML string becomes an expression here; everything else is itself.
    pub(super) fn resolve<'e>(&mut self, e: &'e Expr) -> Option<Cow<'e, Expr>> {
        match &e.kind {
            ExprKind::TomlStr { text, offset } => {
                let (src, base) = match offset {
                    Some(o) => (e.span.src, *o as usize),
                    None => {
                        let name = self.sources.get(e.span.src).name.clone();
                        (
                            self.sources.add(format!("{name} (string)"), text.as_str()),
                            0,
                        )
                    }
                };
                match crate::parse::parse_value(&self.sources, src, text, base) {
                    Ok(x) => Some(Cow::Owned(x)),
                    Err(ds) => {
                        self.diags.extend(ds);
                        None
                    }
                }
            }
            _ => Some(Cow::Borrowed(e)),
        }
    }

    pub(super) fn type_err(&mut self, e: &Expr, expected: &str) {
        let found = e.kind.describe();
        self.err(
            DiagBuilder::error(codes::TYPE, format!("expected {expected}, found {found}"))
                .label(e.span, format!("expected {expected}")),
        );
    }

    /// A quantity in `dim`, converted to the dimension's base unit (see [`Dim`]); with its unit.
    pub(super) fn quantity_unit(&mut self, e: &Expr, dim: Dim) -> Option<(f64, Option<Unit>)> {
        let e = self.resolve(e)?;
        match &e.kind {
            ExprKind::Neg(inner) => self.quantity_unit(inner, dim).map(|(v, u)| (-v, u)),
            ExprKind::Quantity { value, text, unit } => {
                let v = match unit {
                    None => {
                        if matches!(dim, Dim::Count | Dim::Fraction) || *value == 0.0 {
                            (*value, None)
                        } else {
                            self.err(
                                DiagBuilder::error(
                                    codes::UNIT,
                                    format!("missing unit: expected {}", dim.describe()),
                                )
                                .label(
                                    e.span,
                                    format!("expected a unit such as {}", dim.examples()),
                                )
                                .help(format!(
                                    "write the unit after the number, e.g. `{text} {}`",
                                    example_unit(dim)
                                )),
                            );
                            return None;
                        }
                    }
                    Some(u) => match units::lookup(&u.name, Some(dim)) {
                        None => {
                            let help = units::suggest(&u.name, Some(dim))
                                .map(|s| format!("did you mean `{s}`?"))
                                .unwrap_or_else(|| {
                                    format!(
                                        "{} is written with a unit such as {}",
                                        dim.describe(),
                                        dim.examples()
                                    )
                                });
                            self.err(
                                DiagBuilder::error(
                                    codes::UNIT,
                                    format!("unknown unit `{}`", u.name),
                                )
                                .label(u.span, "unknown unit")
                                .help(help),
                            );
                            return None;
                        }
                        Some(unit) if unit.dim != dim => {
                            self.err(
                                DiagBuilder::error(
                                    codes::UNIT,
                                    format!(
                                        "expected {}, found {} (`{}`)",
                                        dim.describe(),
                                        unit.dim.describe(),
                                        u.name
                                    ),
                                )
                                .label(u.span, format!("this is {}", unit.dim.describe()))
                                .help(format!("use a unit such as {}", dim.examples())),
                            );
                            return None;
                        }
                        Some(unit) => {
                            let mut v = units::scale(text, *value, unit.factor);
                            if unit.bytes {
                                v *= 8.0;
                            }
                            (v, Some(unit))
                        }
                    },
                };
                if !v.0.is_finite() {
                    self.err(
                        DiagBuilder::error(codes::RANGE, "number out of range")
                            .label(e.span, "not a finite number"),
                    );
                    return None;
                }
                Some(v)
            }
            _ => {
                self.type_err(&e, dim.describe());
                None
            }
        }
    }

    pub(super) fn quantity(&mut self, e: &Expr, dim: Dim) -> Option<f64> {
        self.quantity_unit(e, dim).map(|x| x.0)
    }

    /// A non-negative integer quantity (time in ns, bytes, counts).
    pub(super) fn integer(&mut self, e: &Expr, dim: Dim, max: u64) -> Option<u64> {
        let v = self.quantity(e, dim)?;
        // A plain integer literal is read exactly: through f64, integers above 2^53 lose digits
        // and 2^64 rounds to u64::MAX (a seed of 2^64 was clamped silently).
        if let ExprKind::Quantity {
            text, unit: None, ..
        } = &e.kind
            && dim == Dim::Count
            && let Ok(n) = text.replace('_', "").parse::<u128>()
        {
            if n > max as u128 {
                self.err(
                    DiagBuilder::error(codes::RANGE, format!("too large (the limit is {max})"))
                        .label(e.span, "too large"),
                );
                return None;
            }
            return Some(n as u64);
        }
        if v < 0.0 {
            self.err(
                DiagBuilder::error(codes::RANGE, "must not be negative").label(e.span, "negative"),
            );
            return None;
        }
        let r = v.round();
        if dim == Dim::Count && (r - v).abs() > 1e-9 * v.abs().max(1.0) {
            self.err(
                DiagBuilder::error(codes::TYPE, "expected a whole number")
                    .label(e.span, "not a whole number"),
            );
            return None;
        }
        if r > max as f64 {
            self.err(
                DiagBuilder::error(codes::RANGE, format!("too large (the limit is {max})"))
                    .label(e.span, "too large"),
            );
            return None;
        }
        Some(r as u64)
    }

    pub(super) fn time_ns(&mut self, e: &Expr) -> Option<u64> {
        self.integer(e, Dim::Time, u64::MAX / 2)
    }
    pub(super) fn bytes(&mut self, e: &Expr) -> Option<u64> {
        self.integer(e, Dim::Data, u64::MAX / 2)
    }
    pub(super) fn u32(&mut self, e: &Expr) -> Option<u32> {
        self.integer(e, Dim::Count, u32::MAX as u64)
            .map(|v| v as u32)
    }
    pub(super) fn u64(&mut self, e: &Expr) -> Option<u64> {
        self.integer(e, Dim::Count, u64::MAX / 2)
    }

    pub(super) fn positive(&mut self, e: &Expr, v: Option<f64>, what: &str) -> Option<f64> {
        let v = v?;
        if v <= 0.0 {
            self.err(
                DiagBuilder::error(codes::RANGE, format!("{what} must be positive"))
                    .label(e.span, if v == 0.0 { "zero" } else { "negative" }),
            );
            return None;
        }
        Some(v)
    }
    pub(super) fn non_negative(&mut self, e: &Expr, v: Option<f64>, what: &str) -> Option<f64> {
        let v = v?;
        if v < 0.0 {
            self.err(
                DiagBuilder::error(codes::RANGE, format!("{what} must not be negative"))
                    .label(e.span, "negative"),
            );
            return None;
        }
        Some(v)
    }
    /// Check that the fraction `v` lies in the interval `iv` of [0, 1].
    pub(super) fn in_unit(
        &mut self,
        e: &Expr,
        v: Option<f64>,
        what: &str,
        iv: Interval,
    ) -> Option<f64> {
        let v = v?;
        let (lo_incl, hi_incl) = match iv {
            Interval::Closed => (true, true),
            Interval::OpenLow => (false, true),
            Interval::OpenHigh => (true, false),
        };
        let ok = (if lo_incl { v >= 0.0 } else { v > 0.0 })
            && (if hi_incl { v <= 1.0 } else { v < 1.0 });
        if !ok {
            let (l, h) = (
                if lo_incl { "[" } else { "(" },
                if hi_incl { "]" } else { ")" },
            );
            self.err(
                DiagBuilder::error(
                    codes::RANGE,
                    format!("{what} must be in {l}{}, {}{h}", pct(0.0), pct(1.0)),
                )
                .label(e.span, format!("this is {}", pct(v))),
            );
            return None;
        }
        Some(v)
    }
    pub(super) fn pos_u(&mut self, e: &Expr, v: Option<u64>, what: &str) -> Option<u64> {
        let v = v?;
        if v == 0 {
            self.err(
                DiagBuilder::error(codes::RANGE, format!("{what} must be positive"))
                    .label(e.span, "zero"),
            );
            return None;
        }
        Some(v)
    }

    // ----- checked readers: one call lowers a field's value and checks its range ---------------

    /// A quantity in `dim` that must be positive (`what` names it in the diagnostic).
    pub(super) fn positive_quantity(&mut self, e: &Expr, dim: Dim, what: &str) -> Option<f64> {
        let v = self.quantity(e, dim);
        self.positive(e, v, what)
    }
    /// A quantity in `dim` that must not be negative.
    pub(super) fn non_negative_quantity(&mut self, e: &Expr, dim: Dim, what: &str) -> Option<f64> {
        let v = self.quantity(e, dim);
        self.non_negative(e, v, what)
    }
    /// A fraction (`50%`, `0.5`) in the interval `iv` of [0, 1].
    pub(super) fn fraction(&mut self, e: &Expr, what: &str, iv: Interval) -> Option<f64> {
        let v = self.quantity(e, Dim::Fraction);
        self.in_unit(e, v, what, iv)
    }
    /// A positive time, in ns.
    pub(super) fn positive_time(&mut self, e: &Expr, what: &str) -> Option<u64> {
        let v = self.time_ns(e);
        self.pos_u(e, v, what)
    }
    /// A positive amount of data, in bytes.
    pub(super) fn positive_bytes(&mut self, e: &Expr, what: &str) -> Option<u64> {
        let v = self.bytes(e);
        self.pos_u(e, v, what)
    }
    /// A positive whole number up to `u32::MAX`.
    pub(super) fn positive_u32(&mut self, e: &Expr, what: &str) -> Option<u32> {
        let v = self.u32(e).map(|v| v as u64);
        self.pos_u(e, v, what).map(|v| v as u32)
    }
    /// A positive whole number.
    pub(super) fn positive_u64(&mut self, e: &Expr, what: &str) -> Option<u64> {
        let v = self.u64(e);
        self.pos_u(e, v, what)
    }

    /// `lhs OP rhs` split at `op` (`a100 x 2`, `100 Mbps +/- 20%`), or the expression alone.
    pub(super) fn split_at(&mut self, e: &Expr, op: BinOp) -> Option<(Expr, Option<Expr>)> {
        let e = self.resolve(e)?.into_owned();
        Some(match e.kind {
            ExprKind::Binary {
                op: o, lhs, rhs, ..
            } if o == op => (*lhs, Some(*rhs)),
            _ => (e, None),
        })
    }

    /// A list of `(time, value)` tuples (`what`: the list, `item`: one tuple); `None` if any
    /// item is wrong (each is reported).
    pub(super) fn time_points(
        &mut self,
        e: &Expr,
        what: &str,
        item: &str,
        mut value: impl FnMut(&mut Self, &Expr) -> Option<f64>,
    ) -> Option<Vec<(Nanos, f64)>> {
        let l = self.list(e, what)?.into_owned();
        let mut pts = Vec::new();
        let mut ok = true;
        for x in &l {
            let Some((t, v)) = self.tuple2(x, item) else {
                ok = false;
                continue;
            };
            let t = self.time_ns(&t);
            let v = value(self, &v);
            match (t, v) {
                (Some(t), Some(v)) => pts.push((t, v)),
                _ => ok = false,
            }
        }
        ok.then_some(pts)
    }

    /// Check that `points` start at time 0 and increase strictly in time; else report that
    /// `subject` must, pointing at `span` with `label`.
    pub(super) fn increasing_from_zero(
        &mut self,
        points: &[(Nanos, f64)],
        span: Span,
        subject: &str,
        label: &str,
    ) -> bool {
        if points.is_empty() || points[0].0 != 0 || points.windows(2).any(|w| w[1].0 <= w[0].0) {
            self.err(
                DiagBuilder::error(
                    codes::RANGE,
                    format!("{subject} must start at time 0 and increase strictly in time"),
                )
                .label(span, label),
            );
            return false;
        }
        true
    }

    /// A unit of any dimension, as written at `u`; an unknown one is reported.
    pub(super) fn any_unit(&mut self, u: &Ident) -> Option<Unit> {
        let unit = units::lookup(&u.name, None);
        if unit.is_none() {
            let help = units::suggest(&u.name, None).map(|s| format!("did you mean `{s}`?"));
            self.err(
                DiagBuilder::error(codes::UNIT, format!("unknown unit `{}`", u.name))
                    .label(u.span, "unknown unit")
                    .help_opt(help),
            );
        }
        unit
    }

    /// A bare name (also accepted: a string).
    pub(super) fn name(&mut self, e: &Expr, what: &str) -> Option<Ident> {
        match &e.kind {
            ExprKind::TomlStr { text, offset } => {
                let span = match offset {
                    Some(o) => Span {
                        src: e.span.src,
                        start: *o,
                        end: *o + text.len() as u32,
                    },
                    None => e.span,
                };
                Some(Ident {
                    name: text.clone(),
                    span,
                })
            }
            ExprKind::Str(s) => Some(Ident {
                name: s.clone(),
                span: e.span,
            }),
            ExprKind::Path(p) if p.len() == 1 => Some(p[0].clone()),
            _ => {
                self.type_err(e, what);
                None
            }
        }
    }

    pub(super) fn string(&mut self, e: &Expr, what: &str) -> Option<String> {
        match &e.kind {
            ExprKind::TomlStr { text, .. } | ExprKind::Str(text) => Some(text.clone()),
            _ => {
                self.type_err(e, what);
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, e: &Expr) -> Option<bool> {
        let e = self.resolve(e)?;
        match &e.kind {
            ExprKind::Bool(b) => Some(*b),
            _ => {
                self.type_err(&e, "`true` or `false`");
                None
            }
        }
    }

    /// One of a fixed set of words.
    pub(super) fn word<'w>(&mut self, e: &Expr, what: &str, words: &[&'w str]) -> Option<&'w str> {
        let id = self.name(e, what)?;
        match words.iter().find(|w| **w == id.name) {
            Some(w) => Some(*w),
            None => {
                let help = did_you_mean(&id.name, words.iter().copied())
                    .unwrap_or_else(|| format!("one of: {}", words.join(", ")));
                self.err(
                    DiagBuilder::error(codes::UNKNOWN_REF, format!("unknown {what} `{}`", id.name))
                        .label(id.span, format!("not a known {what}"))
                        .help(help),
                );
                None
            }
        }
    }

    /// One of a fixed set of words, as the value paired with it.
    pub(super) fn choice<T: Copy>(
        &mut self,
        e: &Expr,
        what: &str,
        options: &[(&str, T)],
    ) -> Option<T> {
        let words: Vec<&str> = options.iter().map(|o| o.0).collect();
        let w = self.word(e, what, &words)?;
        options.iter().find(|o| o.0 == w).map(|o| o.1)
    }

    /// A call (a bare name is a call without arguments). Returns the function and bound arguments.
    pub(super) fn call(
        &mut self,
        e: &Expr,
        what: &str,
        funcs: &[(&str, &[&str])],
    ) -> Option<(String, Span, Vec<Option<Expr>>)> {
        let e = self.resolve(e)?;
        let (name, args): (Ident, Vec<Arg>) = match &e.kind {
            ExprKind::Call { name, args } => (name.clone(), args.clone()),
            ExprKind::Path(p) if p.len() == 1 => (p[0].clone(), Vec::new()),
            _ => {
                let names: Vec<String> = funcs.iter().map(|f| format!("{}(..)", f.0)).collect();
                self.err(
                    DiagBuilder::error(
                        codes::TYPE,
                        format!("expected {what}, found {}", e.kind.describe()),
                    )
                    .label(e.span, format!("expected {what}"))
                    .help(format!("write one of: {}", names.join(", "))),
                );
                return None;
            }
        };
        let Some(&(fname, params)) = funcs.iter().find(|f| f.0 == name.name) else {
            let help = did_you_mean(&name.name, funcs.iter().map(|f| f.0)).unwrap_or_else(|| {
                format!(
                    "one of: {}",
                    funcs.iter().map(|f| f.0).collect::<Vec<_>>().join(", ")
                )
            });
            self.err(
                DiagBuilder::error(
                    codes::UNKNOWN_REF,
                    format!("unknown {what} `{}`", name.name),
                )
                .label(name.span, format!("not a known {what}"))
                .help(help),
            );
            return None;
        };
        let mut bound: Vec<Option<Expr>> = vec![None; params.len()];
        let mut ok = true;
        let mut pos = 0;
        for a in args {
            let slot = match &a.name {
                Some(n) => match params.iter().position(|p| *p == n.name) {
                    Some(i) => i,
                    None => {
                        let help = did_you_mean(&n.name, params.iter().copied())
                            .unwrap_or_else(|| format!("`{fname}` takes: {}", params.join(", ")));
                        self.err(
                            DiagBuilder::error(
                                codes::UNKNOWN_KEY,
                                format!("`{fname}` has no parameter `{}`", n.name),
                            )
                            .label(n.span, "unknown parameter")
                            .help(help),
                        );
                        ok = false;
                        continue;
                    }
                },
                None => {
                    while pos < params.len() && bound[pos].is_some() {
                        pos += 1;
                    }
                    if pos >= params.len() {
                        self.err(
                            DiagBuilder::error(
                                codes::TYPE,
                                format!("`{fname}` takes {} argument(s)", params.len()),
                            )
                            .label(a.value.span, "extra argument")
                            .help(format!("`{fname}` takes: {}", params.join(", "))),
                        );
                        ok = false;
                        continue;
                    }
                    pos
                }
            };
            if bound[slot].is_some() {
                self.err(
                    DiagBuilder::error(
                        codes::DUPLICATE,
                        format!("`{}` is given twice", params[slot]),
                    )
                    .label(a.value.span, "given again here"),
                );
                ok = false;
                continue;
            }
            bound[slot] = Some(a.value.clone());
        }
        ok.then(|| (fname.to_string(), e.span, bound))
    }

    /// A required call argument.
    pub(super) fn arg<'a>(
        &mut self,
        bound: &'a [Option<Expr>],
        i: usize,
        fname: &str,
        param: &str,
        span: Span,
    ) -> Option<&'a Expr> {
        match bound.get(i).and_then(|x| x.as_ref()) {
            Some(e) => Some(e),
            None => {
                self.err(
                    DiagBuilder::error(codes::MISSING, format!("`{fname}` needs `{param}`"))
                        .label(span, format!("missing `{param}`"))
                        .help(format!("write `{fname}({param} = ...)`")),
                );
                None
            }
        }
    }

    pub(super) fn list<'e>(&mut self, e: &'e Expr, what: &str) -> Option<Cow<'e, [Expr]>> {
        let e = self.resolve(e)?;
        match e {
            Cow::Borrowed(Expr {
                kind: ExprKind::List(v),
                ..
            }) => Some(Cow::Borrowed(v.as_slice())),
            Cow::Owned(Expr {
                kind: ExprKind::List(v),
                ..
            }) => Some(Cow::Owned(v)),
            other => {
                self.type_err(&other, what);
                None
            }
        }
    }

    pub(super) fn tuple2(&mut self, e: &Expr, what: &str) -> Option<(Expr, Expr)> {
        let e = self.resolve(e)?;
        match &e.kind {
            ExprKind::Tuple(v) | ExprKind::List(v) if v.len() == 2 => {
                Some((v[0].clone(), v[1].clone()))
            }
            _ => {
                self.type_err(&e, what);
                None
            }
        }
    }

    pub(super) fn name_list(&mut self, e: &Expr, what: &str) -> Option<Vec<Ident>> {
        let e = self.resolve(e)?.into_owned();
        match &e.kind {
            ExprKind::List(v) => {
                let mut out = Vec::new();
                let mut ok = true;
                for x in v {
                    match self.name(x, "a name") {
                        Some(i) => out.push(i),
                        None => ok = false,
                    }
                }
                ok.then_some(out)
            }
            ExprKind::Path(_) | ExprKind::Str(_) => self.name(&e, what).map(|i| vec![i]),
            _ => {
                self.type_err(&e, what);
                None
            }
        }
    }
}

fn example_unit(dim: Dim) -> &'static str {
    match dim {
        Dim::Time => "s",
        Dim::Data => "MB",
        Dim::Bandwidth => "Mbps",
        Dim::Compute => "TFLOPS",
        Dim::Power => "W",
        Dim::EnergyPerBit => "nJ/bit",
        Dim::Energy => "J",
        Dim::Count => "K",
        Dim::Fraction => "%",
        Dim::Rate => "/s",
    }
}

pub(super) fn pct(v: f64) -> String {
    format!("{}%", num(v * 100.0))
}

/// A number for a message: three decimals at most from 0.001 to 1e12, else scientific notation
/// (`1e300`), so no message prints hundreds of digits.
pub(crate) fn num(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 || !v.is_finite() || (1e-3..1e12).contains(&a) {
        let r = (v * 1000.0).round() / 1000.0;
        format!("{r}")
    } else {
        format!("{v:e}")
    }
}

/// `value` written as `text` in `unit`, in SI units with time in seconds (not the ns of
/// durations) and bandwidth in bit/s: what objectives, constraints and policy parameters see.
pub(super) fn si_value(text: &str, value: f64, unit: Unit) -> f64 {
    match (unit.dim, unit.factor) {
        (Dim::Time, Factor::Dec(p)) => units::scale(text, value, Factor::Dec(p - 9)),
        (Dim::Time, f) => units::scale(text, value, f) / 1e9,
        (_, f) => units::scale(text, value, f) * if unit.bytes { 8.0 } else { 1.0 },
    }
}
