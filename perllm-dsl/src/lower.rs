//! Lowering: from the spanned syntax tree to perllm-core's [`Scenario`], with every problem that
//! can be located reported as a span-carrying diagnostic, all in one pass.

use crate::ast::*;
use crate::diag::{DiagBuilder, Diagnostic, Sources, codes, did_you_mean};
use crate::units::{self, Dim, Factor, Unit};
use perllm_core::spec::*;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Item kinds and whether they carry a name.
pub const ITEM_KINDS: &[(&str, bool)] = &[
    ("scenario", false),
    ("hardware", true),
    ("model", true),
    ("link", true),
    ("server", true),
    ("slo", true),
    ("workload", false),
    ("objective", false),
    ("policy", true),
    ("sim", false),
];

/// Keys of each block (`policy` takes any key).
pub const SCENARIO_KEYS: &[&str] = &["name", "seed", "duration", "slot"];
/// Keys of a `hardware` block.
pub const HARDWARE_KEYS: &[&str] = &[
    "kind",
    "compute",
    "memory",
    "memory_bandwidth",
    "power",
    "compute_efficiency",
    "bandwidth_efficiency",
];
/// Keys of a `power` block.
pub const POWER_KEYS: &[&str] = &["idle", "busy"];
/// Keys of a `model` block.
pub const MODEL_KEYS: &[&str] = &["params", "precision", "kv_per_token"];
/// Keys of a `link` block.
pub const LINK_KEYS: &[&str] = &["bandwidth", "fluctuation", "redraw", "latency", "energy"];
/// Keys of a `server` block.
pub const SERVER_KEYS: &[&str] = &["tier", "hardware", "count", "models", "link", "max_batch"];
/// Keys of an `slo` block.
pub const SLO_KEYS: &[&str] = &["deadline", "share"];
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
/// Keys of a `trace` block.
pub const TRACE_KEYS: &[&str] = &[
    "path",
    "format",
    "speedup",
    "target_rate",
    "window",
    "repeat",
    "skip_bad_rows",
    "slo_assign",
    "model_assign",
    "payload",
];
/// Keys of the `objective` block (plus `constraint` entries).
pub const OBJECTIVE_KEYS: &[&str] = &["minimize", "constraints"];
/// Keys of the `sim` block.
pub const SIM_KEYS: &[&str] = &["step_noise", "contention", "max_defers", "drain"];

/// The keys a block of this kind takes (`None`: any key).
pub fn keys_of(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "scenario" => SCENARIO_KEYS,
        "hardware" => HARDWARE_KEYS,
        "model" => MODEL_KEYS,
        "link" => LINK_KEYS,
        "server" => SERVER_KEYS,
        "slo" => SLO_KEYS,
        "workload" => WORKLOAD_KEYS,
        "objective" => OBJECTIVE_KEYS,
        "sim" => SIM_KEYS,
        _ => return None,
    })
}

const MAX_SERVERS: u64 = 1_000_000;

/// The lowering context.
pub struct Lowerer {
    /// Sources (TOML strings may add their own).
    pub sources: Sources,
    /// Everything found so far.
    pub diags: Vec<Diagnostic>,
    /// Directory relative paths are resolved against.
    pub base_dir: Option<PathBuf>,
    /// Scenario paths (`server[edge3].models`) to spans, for core's validation messages.
    pub index: HashMap<String, Span>,
    /// Name of the main source, for the default scenario name.
    pub default_name: String,
    /// False when some server failed to lower: hosting checks would then be misleading.
    servers_complete: bool,
    /// Diagnostics not kept because there were already [`MAX_DIAGNOSTICS`].
    pub dropped: usize,
    /// Fill [`Lowerer::index`] (only needed to locate perllm-core's messages).
    pub want_index: bool,
}

/// Most diagnostics kept for one load; the rest are counted.
pub const MAX_DIAGNOSTICS: usize = 200;

struct Decl {
    span: Span,
}

#[derive(Default)]
struct Names {
    hardware: HashMap<String, Decl>,
    models: HashMap<String, Decl>,
    links: HashMap<String, Decl>,
    servers: HashMap<String, Decl>,
    families: HashMap<String, Decl>,
    slos: HashMap<String, Decl>,
}

/// A block's entries by key (blocks are small: a linear scan beats hashing).
struct Fields<'b>(Vec<(&'b str, &'b Entry)>);

impl<'b> Fields<'b> {
    fn get(&self, k: &str) -> Option<&'b Entry> {
        self.0.iter().find(|x| x.0 == k).map(|x| x.1)
    }
    fn contains_key(&self, k: &str) -> bool {
        self.get(k).is_some()
    }
}

impl<'b> std::ops::Index<&str> for Fields<'b> {
    type Output = Entry;
    fn index(&self, k: &str) -> &Entry {
        self.get(k).expect("key present")
    }
}

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
    /// A new context.
    pub fn new(sources: Sources, base_dir: Option<PathBuf>, default_name: String) -> Self {
        Lowerer {
            sources,
            diags: Vec::new(),
            base_dir,
            index: HashMap::new(),
            default_name,
            servers_complete: true,
            dropped: 0,
            want_index: false,
        }
    }

    fn err(&mut self, d: DiagBuilder) {
        if self.diags.len() >= MAX_DIAGNOSTICS {
            self.dropped += 1;
            return;
        }
        // A diagnostic that points nowhere still says which file it is about.
        let d = if d.has_labels() {
            d
        } else {
            d.prefix(&format!("{}: ", self.sources.get(0).name))
        };
        let d = d.build(&self.sources);
        self.diags.push(d);
    }

    fn warn(&mut self, d: DiagBuilder) {
        if self.diags.len() >= MAX_DIAGNOSTICS {
            self.dropped += 1;
            return;
        }
        let d = d.build(&self.sources);
        self.diags.push(d);
    }

    fn has_errors(&self) -> bool {
        self.diags.iter().any(|d| d.is_error())
    }

    // ----- values -------------------------------------------------------------------------------

    /// A TOML string becomes an expression here; everything else is itself.
    fn resolve<'e>(&mut self, e: &'e Expr) -> Option<Cow<'e, Expr>> {
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

    fn type_err(&mut self, e: &Expr, expected: &str) {
        let found = e.kind.describe();
        self.err(
            DiagBuilder::error(codes::TYPE, format!("expected {expected}, found {found}"))
                .label(e.span, format!("expected {expected}")),
        );
    }

    /// A quantity in `dim`, converted to the dimension's base unit (see [`Dim`]); with its unit.
    fn quantity_unit(&mut self, e: &Expr, dim: Dim) -> Option<(f64, Option<Unit>)> {
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

    fn quantity(&mut self, e: &Expr, dim: Dim) -> Option<f64> {
        self.quantity_unit(e, dim).map(|x| x.0)
    }

    /// A non-negative integer quantity (time in ns, bytes, counts).
    fn integer(&mut self, e: &Expr, dim: Dim, max: u64) -> Option<u64> {
        let v = self.quantity(e, dim)?;
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

    fn time_ns(&mut self, e: &Expr) -> Option<u64> {
        self.integer(e, Dim::Time, u64::MAX / 2)
    }
    fn bytes(&mut self, e: &Expr) -> Option<u64> {
        self.integer(e, Dim::Data, u64::MAX / 2)
    }
    fn u32(&mut self, e: &Expr) -> Option<u32> {
        self.integer(e, Dim::Count, u32::MAX as u64)
            .map(|v| v as u32)
    }
    fn u64(&mut self, e: &Expr) -> Option<u64> {
        self.integer(e, Dim::Count, u64::MAX / 2)
    }

    fn positive(&mut self, e: &Expr, v: Option<f64>, what: &str) -> Option<f64> {
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
    fn non_negative(&mut self, e: &Expr, v: Option<f64>, what: &str) -> Option<f64> {
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
    #[allow(clippy::too_many_arguments)]
    fn in_range(
        &mut self,
        e: &Expr,
        v: Option<f64>,
        what: &str,
        lo: f64,
        hi: f64,
        hi_incl: bool,
        lo_incl: bool,
    ) -> Option<f64> {
        let v = v?;
        let ok =
            (if lo_incl { v >= lo } else { v > lo }) && (if hi_incl { v <= hi } else { v < hi });
        if !ok {
            let (l, h) = (
                if lo_incl { "[" } else { "(" },
                if hi_incl { "]" } else { ")" },
            );
            self.err(
                DiagBuilder::error(
                    codes::RANGE,
                    format!("{what} must be in {l}{}, {}{h}", pct(lo), pct(hi)),
                )
                .label(e.span, format!("this is {}", pct(v))),
            );
            return None;
        }
        Some(v)
    }
    fn pos_u(&mut self, e: &Expr, v: Option<u64>, what: &str) -> Option<u64> {
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

    /// A bare name (also accepted: a string).
    fn name(&mut self, e: &Expr, what: &str) -> Option<Ident> {
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

    fn string(&mut self, e: &Expr, what: &str) -> Option<String> {
        match &e.kind {
            ExprKind::TomlStr { text, .. } | ExprKind::Str(text) => Some(text.clone()),
            _ => {
                self.type_err(e, what);
                None
            }
        }
    }

    fn boolean(&mut self, e: &Expr) -> Option<bool> {
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
    fn word<'w>(&mut self, e: &Expr, what: &str, words: &[&'w str]) -> Option<&'w str> {
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

    /// A call (a bare name is a call without arguments). Returns the function and bound arguments.
    fn call(
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
    fn arg<'a>(
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

    fn list<'e>(&mut self, e: &'e Expr, what: &str) -> Option<Cow<'e, [Expr]>> {
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

    fn tuple2(&mut self, e: &Expr, what: &str) -> Option<(Expr, Expr)> {
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

    // ----- blocks -------------------------------------------------------------------------------

    /// Index a block's entries by key; report duplicates and unknown keys.
    fn fields<'b>(
        &mut self,
        block: &'b Block,
        what: &str,
        allowed: Option<&[&str]>,
        constraints: bool,
    ) -> Fields<'b> {
        let mut map = Fields(Vec::with_capacity(block.entries.len()));
        for en in &block.entries {
            if en.is_constraint {
                if !constraints {
                    self.err(
                        DiagBuilder::error(codes::UNKNOWN_KEY, format!("`constraint` entries belong in the `objective` block, not in {what}"))
                            .label(en.key.span, "not allowed here"),
                    );
                }
                continue;
            }
            if let Some(allowed) = allowed
                && !allowed.contains(&en.key.name.as_str())
            {
                let help = did_you_mean(&en.key.name, allowed.iter().copied())
                    .unwrap_or_else(|| format!("{what} takes: {}", allowed.join(", ")));
                self.err(
                    DiagBuilder::error(
                        codes::UNKNOWN_KEY,
                        format!("unknown key `{}` in {what}", en.key.name),
                    )
                    .label(en.key.span, "unknown key")
                    .help(help),
                );
                continue;
            }
            if let Some(prev) = map.get(en.key.name.as_str()) {
                let prev_span = prev.key.span;
                self.err(
                    DiagBuilder::error(
                        codes::DUPLICATE,
                        format!("`{}` is given twice in {what}", en.key.name),
                    )
                    .label(en.key.span, "given again here")
                    .label(prev_span, "first given here"),
                );
                continue;
            }
            map.0.push((en.key.name.as_str(), en));
        }
        map
    }

    fn require<'b>(&mut self, f: &Fields<'b>, key: &str, at: Span, what: &str) -> Option<&'b Expr> {
        match f.get(key) {
            Some(e) => Some(&e.value),
            None => {
                self.err(
                    DiagBuilder::error(codes::MISSING, format!("{what} needs `{key}`"))
                        .label(at, format!("`{key}` is missing"))
                        .help(format!("add `{key} = ...`")),
                );
                None
            }
        }
    }

    fn map_block<'e>(&mut self, e: &'e Expr, what: &str) -> Option<Cow<'e, Block>> {
        match &e.kind {
            ExprKind::Map(b) => Some(Cow::Borrowed(b)),
            _ => {
                self.type_err(e, what);
                None
            }
        }
    }

    fn idx(&mut self, path: String, span: Span) {
        if self.want_index {
            self.index.insert(path, span);
        }
    }

    // ----- the file -----------------------------------------------------------------------------

    /// Lower a whole file. `None` if any error was found (then `self.diags` says why).
    pub fn lower(&mut self, file: &File) -> Option<Scenario> {
        let mut by_kind: BTreeMap<&str, Vec<&Item>> = BTreeMap::new();
        for it in &file.items {
            match ITEM_KINDS.iter().find(|k| k.0 == it.kind.name) {
                None => {
                    self.servers_complete = false;
                    let help = did_you_mean(&it.kind.name, ITEM_KINDS.iter().map(|k| k.0))
                        .unwrap_or_else(|| {
                            format!(
                                "items are: {}",
                                ITEM_KINDS
                                    .iter()
                                    .map(|k| k.0)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        });
                    self.err(
                        DiagBuilder::error(
                            codes::UNKNOWN_ITEM,
                            format!("unknown item `{}`", it.kind.name),
                        )
                        .label(it.kind.span, "not an item kind")
                        .help(help),
                    );
                }
                Some(&(k, named)) => {
                    if named && it.name.is_none() {
                        self.err(
                            DiagBuilder::error(codes::MISSING, format!("`{k}` needs a name"))
                                .label(it.kind.span, format!("write `{k} NAME {{ ... }}`")),
                        );
                        continue;
                    }
                    if let Some(n) = &it.name
                        && n.range.is_some()
                        && k != "server"
                    {
                        self.err(
                            DiagBuilder::error(
                                codes::TYPE,
                                "only servers can be declared as a family `name[lo..hi]`",
                            )
                            .label(n.span, "family range here"),
                        );
                        continue;
                    }
                    if !named
                        && k != "scenario"
                        && let Some(n) = &it.name
                    {
                        self.err(
                            DiagBuilder::error(codes::TYPE, format!("`{k}` takes no name"))
                                .label(n.span, "remove this name"),
                        );
                    }
                    by_kind.entry(k).or_default().push(it);
                }
            }
        }
        if file.items.is_empty() {
            self.err(
                DiagBuilder::error(codes::MISSING, "the scenario is empty")
                    .help("a scenario needs a `scenario`, `hardware`, `model`, `link`, `server`, `slo` and `workload` block; see examples/paper.perllm"),
            );
            return None;
        }
        for single in ["scenario", "workload", "objective", "policy", "sim"] {
            if let Some(v) = by_kind.get(single)
                && v.len() > 1
            {
                let first = v[0].kind.span;
                for it in &v[1..] {
                    self.err(
                        DiagBuilder::error(
                            codes::DUPLICATE,
                            format!("there can be only one `{single}` block"),
                        )
                        .label(it.kind.span, "another one here")
                        .label(first, "first one here"),
                    );
                }
            }
        }
        let get = |k: &str| by_kind.get(k).cloned().unwrap_or_default();

        let mut names = Names::default();
        let (name, seed, duration_ns, slot_ns) =
            self.scenario_block(get("scenario").first().copied());
        let hardware: Vec<Hardware> = get("hardware")
            .iter()
            .filter_map(|it| self.hardware(it, &mut names))
            .collect();
        let models: Vec<ModelSpec> = get("model")
            .iter()
            .filter_map(|it| self.model(it, &mut names))
            .collect();
        let links: Vec<LinkSpec> = get("link")
            .iter()
            .filter_map(|it| self.link(it, &mut names))
            .collect();
        let mut servers = Vec::new();
        let mut server_items = Vec::new();
        for it in get("server") {
            let before = self.diags.len();
            let got = self.server(it, &mut names);
            if got.is_none() || self.diags[before..].iter().any(|d| d.is_error()) {
                self.servers_complete = false;
            }
            if let Some(v) = got {
                server_items.push((it, v.len()));
                servers.extend(v);
            }
        }
        let slos: Vec<(SloClass, Span, Option<Span>)> = get("slo")
            .iter()
            .filter_map(|it| self.slo(it, &mut names))
            .collect();

        self.check_refs(&server_items, &servers, &hardware, &models, &names);
        let slo_classes: Vec<SloClass> = slos.iter().map(|s| s.0.clone()).collect();
        self.check_shares(
            "SLO class shares",
            slos.iter()
                .map(|(s, _, sp)| (s.name.as_str(), s.share, *sp))
                .collect(),
            get("slo").first().map(|i| i.kind.span),
        );
        if get("slo").is_empty() {
            self.err(
                DiagBuilder::error(codes::MISSING, "a scenario needs at least one `slo` class")
                    .help("add e.g. `slo standard { deadline = 10 s, share = 100% }`"),
            );
        }
        if get("server").is_empty() {
            self.err(
                DiagBuilder::error(codes::MISSING, "a scenario needs at least one `server`")
                    .help("add e.g. `server cloud { tier = cloud, hardware = a100, models = [..], link = wan, max_batch = 64 }`"),
            );
        }

        let workload = match get("workload").first() {
            Some(it) => self.workload(it, &names, &servers, &models),
            None => {
                self.err(
                    DiagBuilder::error(codes::MISSING, "a scenario needs a `workload` block")
                        .help("add e.g. `workload { arrivals = poisson(rate = 5 /s), prompt_tokens = 400, output_tokens = 100, payload = 64 KB, models = { NAME: 100% } }`"),
                );
                None
            }
        };
        let objective = match get("objective").first() {
            Some(it) => self.objective(it, &servers, &names),
            None => Some(Objective::default()),
        };
        let policy = match get("policy").first() {
            Some(it) => self.policy(it),
            None => Some(PolicySpec::default()),
        };
        let sim = match get("sim").first() {
            Some(it) => self.sim(it),
            None => Some(SimParams::default()),
        };
        self.deadline_warnings(&slos, &servers, &hardware, &models, &links);

        if self.has_errors() {
            return None;
        }
        Some(Scenario {
            name: name?,
            seed: seed?,
            duration_ns: duration_ns?,
            slot_ns: slot_ns?,
            hardware,
            models,
            links,
            servers,
            slos: slo_classes,
            workload: workload?,
            objective: objective?,
            policy: policy?,
            sim: sim?,
        })
    }

    fn scenario_block(
        &mut self,
        it: Option<&Item>,
    ) -> (Option<String>, Option<u64>, Option<u64>, Option<u64>) {
        let Some(it) = it else {
            self.err(
                DiagBuilder::error(codes::MISSING, "a scenario needs a `scenario` block with at least `duration`")
                    .help("add e.g. `scenario \"my-study\" { seed = 1, duration = 10 min, slot = 100 ms }`"),
            );
            return (None, None, None, None);
        };
        let f = self.fields(&it.body, "the `scenario` block", Some(SCENARIO_KEYS), false);
        let mut name = it.name.as_ref().map(|n| n.name.name.clone());
        if let Some(en) = f.get("name") {
            if let Some(n) = &it.name {
                self.err(
                    DiagBuilder::error(codes::DUPLICATE, "the scenario is named twice")
                        .label(en.key.span, "here")
                        .label(n.span, "and here"),
                );
            } else {
                name = self.string(&en.value, "a string");
            }
        }
        let name = name.or_else(|| Some(self.default_name.clone()));
        let seed = match f.get("seed") {
            Some(e) => self.integer(&e.value, Dim::Count, u64::MAX),
            None => Some(0),
        };
        let duration = self
            .require(&f, "duration", it.kind.span, "the `scenario` block")
            .and_then(|e| {
                let v = self.time_ns(e);
                self.pos_u(e, v, "the duration")
            });
        if let Some(e) = f.get("duration") {
            self.idx("scenario.duration".into(), e.value.span);
        }
        if let Some(e) = f.get("slot") {
            self.idx("scenario.slot".into(), e.value.span);
        }
        let slot = match f.get("slot") {
            Some(e) => self.time_ns(&e.value),
            None => Some(100 * MILLISECOND),
        };
        (name, seed, duration, slot)
    }

    fn declare(&mut self, table: &mut HashMap<String, Decl>, what: &str, id: &Ident) -> bool {
        if let Some(prev) = table.get(&id.name) {
            let prev = prev.span;
            self.err(
                DiagBuilder::error(
                    codes::DUPLICATE,
                    format!("{what} `{}` is defined twice", id.name),
                )
                .label(id.span, "defined again here")
                .label(prev, "first defined here"),
            );
            return false;
        }
        table.insert(id.name.clone(), Decl { span: id.span });
        true
    }

    fn index_entries(&mut self, prefix: &str, block: &Block) {
        if !self.want_index {
            return;
        }
        for en in &block.entries {
            self.idx(format!("{prefix}.{}", en.key.name), en.value.span);
        }
    }

    fn hardware(&mut self, it: &Item, names: &mut Names) -> Option<Hardware> {
        let id = it.name.as_ref()?.name.clone();
        let fresh = self.declare(&mut names.hardware, "hardware", &id);
        let what = format!("hardware `{}`", id.name);
        let f = self.fields(&it.body, &what, Some(HARDWARE_KEYS), false);
        let p = format!("hardware[{}]", id.name);
        self.idx(p.clone(), id.span);
        self.index_entries(&p, &it.body);
        let kind = self
            .require(&f, "kind", id.span, &what)
            .and_then(|e| self.word(e, "hardware kind", &["cpu", "gpu", "npu"]));
        let compute = self.require(&f, "compute", id.span, &what).and_then(|e| {
            let v = self.quantity(e, Dim::Compute);
            self.positive(e, v, "compute")
        });
        let memory = self.require(&f, "memory", id.span, &what).and_then(|e| {
            let v = self.bytes(e);
            self.pos_u(e, v, "memory")
        });
        let mbw = self
            .require(&f, "memory_bandwidth", id.span, &what)
            .and_then(|e| {
                let v = self.quantity(e, Dim::Bandwidth).map(|bits| bits / 8.0);
                self.positive(e, v, "memory bandwidth")
            });
        let (idle, busy) = match self.require(&f, "power", id.span, &what) {
            Some(e) => self.power(e, &p),
            None => (None, None),
        };
        let mut eff = |k: &str| match f.get(k) {
            Some(e) => {
                let v = self.quantity(&e.value, Dim::Fraction);
                self.in_range(&e.value, v, k, 0.0, 1.0, true, false)
                    .map(Some)
            }
            None => Some(None),
        };
        let ce = eff("compute_efficiency");
        let be = eff("bandwidth_efficiency");
        let kind = match kind? {
            "cpu" => HardwareKind::Cpu,
            "gpu" => HardwareKind::Gpu,
            _ => HardwareKind::Npu,
        };
        if !fresh {
            return None;
        }
        Some(Hardware {
            name: id.name,
            kind,
            compute_flops: compute?,
            memory_bytes: memory?,
            memory_bandwidth_bytes_per_s: mbw?,
            power_idle_w: idle?,
            power_busy_w: busy?,
            compute_efficiency: ce?,
            bandwidth_efficiency: be?,
            contention: None,
        })
    }

    fn power(&mut self, e: &Expr, p: &str) -> (Option<f64>, Option<f64>) {
        let Some(b) = self.map_block(e, "a block `{ idle = .. W, busy = .. W }`") else {
            return (None, None);
        };
        let b = b.into_owned();
        let f = self.fields(&b, "the `power` block", Some(POWER_KEYS), false);
        let idle = self
            .require(&f, "idle", b.span, "the `power` block")
            .and_then(|e| {
                let v = self.quantity(e, Dim::Power);
                self.non_negative(e, v, "idle power")
            });
        let busy = self
            .require(&f, "busy", b.span, "the `power` block")
            .and_then(|e| {
                let v = self.quantity(e, Dim::Power);
                self.non_negative(e, v, "busy power")
            });
        if let (Some(i), Some(bz)) = (idle, busy)
            && bz < i
        {
            let (bs, is) = (f["busy"].value.span, f["idle"].value.span);
            self.err(
                DiagBuilder::error(codes::RANGE, "busy power must be at least the idle power")
                    .label(bs, format!("busy: {bz} W"))
                    .label(is, format!("idle: {i} W")),
            );
            return (idle, None);
        }
        for &(k, en) in &f.0 {
            self.idx(format!("{p}.power.{k}"), en.value.span);
        }
        (idle, busy)
    }

    fn model(&mut self, it: &Item, names: &mut Names) -> Option<ModelSpec> {
        let id = it.name.as_ref()?.name.clone();
        let fresh = self.declare(&mut names.models, "model", &id);
        let what = format!("model `{}`", id.name);
        let f = self.fields(&it.body, &what, Some(MODEL_KEYS), false);
        let p = format!("model[{}]", id.name);
        self.idx(p.clone(), id.span);
        self.index_entries(&p, &it.body);
        let params = self.require(&f, "params", id.span, &what).and_then(|e| {
            let v = self.quantity(e, Dim::Count);
            self.positive(e, v, "the parameter count")
        });
        let precision = self
            .require(&f, "precision", id.span, &what)
            .and_then(|e| self.word(e, "precision", &["fp32", "fp16", "bf16", "int8", "int4"]));
        let kv = self
            .require(&f, "kv_per_token", id.span, &what)
            .and_then(|e| {
                let v = self.bytes(e);
                self.pos_u(e, v, "the KV cache per token")
            });
        let precision = match precision? {
            "fp32" => Precision::Fp32,
            "fp16" => Precision::Fp16,
            "bf16" => Precision::Bf16,
            "int8" => Precision::Int8,
            _ => Precision::Int4,
        };
        if !fresh {
            return None;
        }
        Some(ModelSpec {
            name: id.name,
            params: params?,
            precision,
            kv_bytes_per_token: kv?,
        })
    }

    fn link(&mut self, it: &Item, names: &mut Names) -> Option<LinkSpec> {
        let id = it.name.as_ref()?.name.clone();
        let fresh = self.declare(&mut names.links, "link", &id);
        let what = format!("link `{}`", id.name);
        let f = self.fields(&it.body, &what, Some(LINK_KEYS), false);
        let p = format!("link[{}]", id.name);
        self.idx(p.clone(), id.span);
        self.index_entries(&p, &it.body);
        let mut fluct_from_bw = None;
        let bandwidth = match self.require(&f, "bandwidth", id.span, &what) {
            Some(e) => {
                let e = self.resolve(e).map(|c| c.into_owned());
                match e {
                    Some(Expr {
                        kind:
                            ExprKind::Binary {
                                op: BinOp::PlusMinus,
                                lhs,
                                rhs,
                                ..
                            },
                        ..
                    }) => {
                        let bw = self.quantity(&lhs, Dim::Bandwidth);
                        let bw = self.positive(&lhs, bw, "bandwidth");
                        let frac = self.plus_minus(&rhs, bw, Dim::Bandwidth);
                        fluct_from_bw = Some((frac, rhs.span));
                        bw
                    }
                    Some(e) => {
                        let v = self.quantity(&e, Dim::Bandwidth);
                        self.positive(&e, v, "bandwidth")
                    }
                    None => None,
                }
            }
            None => None,
        };
        let fluctuation = match (f.get("fluctuation"), fluct_from_bw) {
            (Some(en), Some((_, sp))) => {
                self.err(
                    DiagBuilder::error(codes::DUPLICATE, "the fluctuation is given twice")
                        .label(en.key.span, "here")
                        .label(sp, "and here, as `+/-`")
                        .help("keep one of them"),
                );
                None
            }
            (None, Some((frac, _))) => frac.map(|frac| Fluctuation::Uniform { frac }),
            (Some(en), None) => self.fluctuation(&en.value),
            (None, None) => Some(Fluctuation::None),
        };
        let redraw = match f.get("redraw") {
            Some(e) => {
                let v = self.time_ns(&e.value);
                self.pos_u(&e.value, v, "the redraw period").map(Some)
            }
            None => Some(None),
        };
        let latency = self
            .require(&f, "latency", id.span, &what)
            .and_then(|e| self.time_ns(e));
        let energy = self.require(&f, "energy", id.span, &what).and_then(|e| {
            let v = self.quantity(e, Dim::EnergyPerBit);
            self.non_negative(e, v, "transmission energy")
        });
        if !fresh {
            return None;
        }
        Some(LinkSpec {
            name: id.name,
            bandwidth_bps: bandwidth?,
            fluctuation: fluctuation?,
            redraw_ns: redraw?,
            latency_ns: latency?,
            energy_j_per_bit: energy?,
        })
    }

    /// The right side of `+/-`: a percentage, or an absolute amount in the mean's dimension.
    fn plus_minus(&mut self, e: &Expr, mean: Option<f64>, dim: Dim) -> Option<f64> {
        let is_pct = matches!(&e.kind, ExprKind::Quantity { unit: Some(u), .. } if u.name == "%")
            || matches!(&e.kind, ExprKind::Quantity { unit: None, .. });
        let frac = if is_pct {
            self.quantity(e, Dim::Fraction)
        } else {
            let abs = self.quantity(e, dim)?;
            mean.map(|m| abs / m)
        };
        self.in_range(e, frac, "the fluctuation", 0.0, 1.0, false, true)
    }

    fn fluctuation(&mut self, e: &Expr) -> Option<Fluctuation> {
        let (f, span, a) = self.call(
            e,
            "fluctuation",
            &[
                ("none", &[]),
                ("uniform", &["frac"]),
                ("random_walk", &["step", "bound"]),
                ("series", &["points"]),
            ],
        )?;
        match f.as_str() {
            "none" => Some(Fluctuation::None),
            "uniform" => {
                let x = self.arg(&a, 0, "uniform", "frac", span)?;
                let v = self.quantity(x, Dim::Fraction);
                self.in_range(x, v, "the fluctuation", 0.0, 1.0, false, true)
                    .map(|frac| Fluctuation::Uniform { frac })
            }
            "random_walk" => {
                let s = self.arg(&a, 0, "random_walk", "step", span).cloned();
                let b = self.arg(&a, 1, "random_walk", "bound", span).cloned();
                let step = s.as_ref().and_then(|s| {
                    let v = self.quantity(s, Dim::Fraction);
                    self.non_negative(s, v, "the step")
                });
                let bound = b.as_ref().and_then(|b| {
                    let v = self.quantity(b, Dim::Fraction);
                    self.in_range(b, v, "the bound", 0.0, 1.0, false, true)
                });
                Some(Fluctuation::RandomWalk {
                    step: step?,
                    bound: bound?,
                })
            }
            _ => {
                let x = self.arg(&a, 0, "series", "points", span)?.clone();
                let points = self.series(&x)?;
                Some(Fluctuation::Series { points })
            }
        }
    }

    /// A series: a list of `(time, factor)` tuples or the path of a CSV file `time_s,factor`.
    fn series(&mut self, e: &Expr) -> Option<Vec<(Nanos, f64)>> {
        let points = if matches!(e.kind, ExprKind::Str(_) | ExprKind::TomlStr { .. }) {
            let p = self.string(e, "a file path")?;
            let path = self.resolve_path(&p);
            self.read_series(&path, e.span)?
        } else {
            let l = self
                .list(e, "a list of `(time, factor)` points or a CSV file path")?
                .into_owned();
            let mut pts = Vec::new();
            let mut ok = true;
            for x in &l {
                let Some((t, v)) = self.tuple2(x, "a `(time, factor)` point") else {
                    ok = false;
                    continue;
                };
                let t = self.time_ns(&t);
                let fv = self.quantity(&v, Dim::Fraction);
                let fv = self.positive(&v, fv, "a bandwidth factor");
                match (t, fv) {
                    (Some(t), Some(fv)) => pts.push((t, fv)),
                    _ => ok = false,
                }
            }
            if !ok {
                return None;
            }
            pts
        };
        if points.is_empty() || points[0].0 != 0 || points.windows(2).any(|w| w[1].0 <= w[0].0) {
            self.err(
                DiagBuilder::error(
                    codes::RANGE,
                    "a series must start at time 0 and increase strictly in time",
                )
                .label(e.span, "this series"),
            );
            return None;
        }
        Some(points)
    }

    /// Resolve a path relative to the scenario file's directory.
    pub fn resolve_path(&self, p: &str) -> PathBuf {
        let pb = PathBuf::from(p);
        match &self.base_dir {
            Some(d) if pb.is_relative() => d.join(pb),
            _ => pb,
        }
    }

    /// Read a series file through the core reader
    /// ([`perllm_core::workload::bandwidth_series_from_csv`]): `time_s,factor` or
    /// `time_s,bandwidth_<unit>` (normalised by its time-weighted mean), header optional for
    /// factors, `#` comment lines. An error names the file and its line, and points at `span`.
    fn read_series(&mut self, path: &Path, span: Span) -> Option<Vec<(Nanos, f64)>> {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(err) => {
                self.err(
                    DiagBuilder::error(
                        codes::DATA_FILE,
                        format!("cannot read the series file {}: {err}", path.display()),
                    )
                    .label(span, "this file")
                    .help("paths are relative to the scenario file's directory"),
                );
                return None;
            }
        };
        let name = path.display().to_string();
        match perllm_core::workload::bandwidth_series_from_csv(file, &name) {
            Ok(points) => Some(points),
            Err(e) => {
                let at = if e.row > 0 {
                    format!("{name}:{}", e.row)
                } else {
                    name.clone()
                };
                self.err(
                    DiagBuilder::error(
                        codes::DATA_FILE,
                        format!("series file {at}: {}", e.message),
                    )
                    .label(span, "in this series file")
                    .help(SERIES_FILE_HELP),
                );
                None
            }
        }
    }

    fn server(&mut self, it: &Item, names: &mut Names) -> Option<Vec<ServerSpec>> {
        let n = it.name.as_ref()?;
        let id = n.name.clone();
        let what = format!("server `{}`", sources_name(n));
        let f = self.fields(&it.body, &what, Some(SERVER_KEYS), false);
        let tier = self
            .require(&f, "tier", id.span, &what)
            .and_then(|e| self.word(e, "tier", &["edge", "cloud"]));
        let mut count_from_hw = None;
        let hardware = match self.require(&f, "hardware", id.span, &what) {
            Some(e) => match self.resolve(e).map(|c| c.into_owned()) {
                Some(Expr {
                    kind:
                        ExprKind::Binary {
                            op: BinOp::Times,
                            lhs,
                            rhs,
                            ..
                        },
                    ..
                }) => {
                    let c = self.u32(&rhs).map(|c| (c, rhs.span));
                    count_from_hw = Some(c);
                    self.name(&lhs, "a hardware name")
                }
                Some(e) => self.name(&e, "a hardware name"),
                None => None,
            },
            None => None,
        };
        let count = match (f.get("count"), count_from_hw) {
            (Some(en), Some(_)) => {
                self.err(
                    DiagBuilder::error(codes::DUPLICATE, "the device count is given twice")
                        .label(en.key.span, "here")
                        .help("write either `hardware = NAME x N` or `count = N`"),
                );
                None
            }
            (Some(en), None) => self.u32(&en.value).map(|c| (c, en.value.span)),
            (None, Some(c)) => c,
            (None, None) => Some((1, id.span)),
        };
        let count = match count {
            Some((c, sp)) => {
                if c == 0 {
                    self.err(
                        DiagBuilder::error(codes::RANGE, "the device count must be positive")
                            .label(sp, "zero"),
                    );
                    None
                } else {
                    Some(c)
                }
            }
            None => None,
        };
        let models = match self.require(&f, "models", id.span, &what) {
            Some(e) => self.name_list(e, "a list of model names"),
            None => None,
        };
        if let Some(m) = &models
            && m.is_empty()
        {
            let sp = f["models"].value.span;
            self.err(
                DiagBuilder::error(codes::RANGE, "a server must host at least one model")
                    .label(sp, "empty list"),
            );
        }
        let link = self
            .require(&f, "link", id.span, &what)
            .and_then(|e| self.name(e, "a link name"));
        let max_batch = self.require(&f, "max_batch", id.span, &what).and_then(|e| {
            let v = self.u32(e).map(|v| v as u64);
            self.pos_u(e, v, "max_batch").map(|v| v as u32)
        });

        // Expand the family and declare every member.
        let member_names: Vec<String> = match n.range {
            None => vec![id.name.clone()],
            Some((lo, hi, rspan)) => {
                if lo > hi {
                    self.err(
                        DiagBuilder::error(codes::RANGE, format!("empty family range {lo}..{hi}"))
                            .label(rspan, "the first bound is larger than the second")
                            .help(format!("write `{}[{hi}..{lo}]`", id.name)),
                    );
                    return None;
                }
                if hi - lo >= MAX_SERVERS || names.servers.len() as u64 + (hi - lo) >= MAX_SERVERS {
                    self.err(
                        DiagBuilder::error(
                            codes::RANGE,
                            format!("too many servers (the limit is {MAX_SERVERS})"),
                        )
                        .label(rspan, "this family"),
                    );
                    return None;
                }
                if let Some(prev) = names.families.get(&id.name) {
                    let prev = prev.span;
                    self.err(
                        DiagBuilder::error(
                            codes::FAMILY_OVERLAP,
                            format!("family `{}` is declared twice", id.name),
                        )
                        .label(n.span, "declared again here")
                        .label(prev, "first declared here")
                        .help("give the two families different names, or merge their ranges"),
                    );
                    return None;
                }
                names
                    .families
                    .insert(id.name.clone(), Decl { span: n.span });
                (lo..=hi).map(|i| format!("{}{i}", id.name)).collect()
            }
        };
        let mut fresh = true;
        for m in &member_names {
            if let Some(prev) = names.servers.get(m) {
                let prev = prev.span;
                let (code, msg, help) = if n.range.is_some()
                    || prev != n.span && self.sources.slice(prev).contains('[')
                {
                    (
                        codes::FAMILY_OVERLAP,
                        format!("server `{m}` is declared twice: families overlap"),
                        "family `name[lo..hi]` declares servers name<lo> .. name<hi>; rename one of them or shrink the range",
                    )
                } else {
                    (
                        codes::DUPLICATE,
                        format!("server `{m}` is defined twice"),
                        "server names must be unique",
                    )
                };
                self.err(
                    DiagBuilder::error(code, msg)
                        .label(n.span, "declared here")
                        .label(prev, "already declared here")
                        .help(help),
                );
                fresh = false;
                break;
            }
        }
        if !fresh {
            return None;
        }
        for m in &member_names {
            names.servers.insert(m.clone(), Decl { span: n.span });
            let p = format!("server[{m}]");
            self.idx(p.clone(), n.span);
            self.index_entries(&p, &it.body);
        }
        let family = n.range.map(|_| id.name.clone());
        let (tier, hardware, count, models, link, max_batch) =
            (tier?, hardware?, count?, models?, link?, max_batch?);
        let tier = if tier == "edge" {
            Tier::Edge
        } else {
            Tier::Cloud
        };
        let models: Vec<String> = models.into_iter().map(|m| m.name).collect();
        Some(
            member_names
                .into_iter()
                .map(|name| ServerSpec {
                    name,
                    family: family.clone(),
                    tier,
                    hardware: hardware.name.clone(),
                    count,
                    models: models.clone(),
                    link: link.name.clone(),
                    max_batch,
                    batching: None,
                    chunk_tokens: None,
                })
                .collect(),
        )
    }

    fn name_list(&mut self, e: &Expr, what: &str) -> Option<Vec<Ident>> {
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

    fn slo(&mut self, it: &Item, names: &mut Names) -> Option<(SloClass, Span, Option<Span>)> {
        let id = it.name.as_ref()?.name.clone();
        let fresh = self.declare(&mut names.slos, "SLO class", &id);
        let what = format!("SLO class `{}`", id.name);
        let f = self.fields(&it.body, &what, Some(SLO_KEYS), false);
        let p = format!("slo[{}]", id.name);
        self.idx(p.clone(), id.span);
        self.index_entries(&p, &it.body);
        let deadline = self.require(&f, "deadline", id.span, &what).and_then(|e| {
            let v = self.time_ns(e);
            self.pos_u(e, v, "the deadline")
        });
        let share_span = f.get("share").map(|e| e.value.span);
        let share = self.require(&f, "share", id.span, &what).and_then(|e| {
            let v = self.quantity(e, Dim::Fraction);
            self.in_range(e, v, "a share", 0.0, 1.0, true, true)
        });
        if !fresh {
            return None;
        }
        let dspan = f.get("deadline").map(|e| e.value.span).unwrap_or(id.span);
        Some((
            SloClass {
                name: id.name,
                deadline_ns: deadline?,
                share: share?,
            },
            dspan,
            share_span,
        ))
    }

    fn check_shares(
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

    fn check_refs(
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
            let f = Fields(
                it.body
                    .entries
                    .iter()
                    .map(|e| (e.key.name.as_str(), e))
                    .collect(),
            );
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
                        .map(|m| format!("{} {:.1} GB", m.name, m.weight_bytes() / 1e9))
                        .collect();
                    let mut d = DiagBuilder::error(
                        codes::MEMORY,
                        format!(
                            "the models of server `{}` do not fit in its memory: {:.1} GB of weights, {:.1} GB of memory",
                            sources_name(it.name.as_ref().expect("server name")),
                            weights / 1e9,
                            mem / 1e9
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

    // ----- workload -----------------------------------------------------------------------------

    fn workload(
        &mut self,
        it: &Item,
        names: &Names,
        servers: &[ServerSpec],
        models: &[ModelSpec],
    ) -> Option<WorkloadSpec> {
        let what = "the `workload` block";
        let f = self.fields(&it.body, what, Some(WORKLOAD_KEYS), false);
        self.index_entries("workload", &it.body);
        let at = it.kind.span;
        let trace = match f.get("trace") {
            Some(en) => self.trace(&en.value, names).map(Some),
            None => Some(None),
        };
        let has_trace = f.contains_key("trace");
        let arrivals = match f.get("arrivals") {
            Some(en) => self.arrivals(&en.value),
            None if has_trace => Some(Arrivals::Poisson { rate: 1.0 }),
            None => self.require(&f, "arrivals", at, what).and(None),
        };
        let dist = |this: &mut Self, key: &str, dim: Dim, default: SizeDist| match f.get(key) {
            Some(en) => this.size_dist(&en.value, dim),
            None if has_trace => Some(default),
            None => this.require(&f, key, at, what).and(None),
        };
        let prompt = dist(
            self,
            "prompt_tokens",
            Dim::Count,
            SizeDist::Fixed { value: 1.0 },
        );
        let output = dist(
            self,
            "output_tokens",
            Dim::Count,
            SizeDist::Fixed { value: 1.0 },
        );
        let payload = dist(self, "payload", Dim::Data, SizeDist::Fixed { value: 0.0 });
        let obpt = match f.get("output_bytes_per_token") {
            Some(en) => {
                let v = self.data_or_number(&en.value);
                self.non_negative(&en.value, v, "output bytes per token")
            }
            None => Some(4.0),
        };
        let wmodels = match self.require(&f, "models", at, what) {
            Some(e) => self.model_shares(e, names, servers, models),
            None => None,
        };
        let maxu32 = |this: &mut Self, k: &str, d: u32| match f.get(k) {
            Some(en) => {
                let v = this.u32(&en.value).map(|v| v as u64);
                this.pos_u(&en.value, v, k).map(|v| v as u32)
            }
            None => Some(d),
        };
        let mp = maxu32(self, "max_prompt_tokens", 8192);
        let mo = maxu32(self, "max_output_tokens", 4096);
        let mr = match f.get("max_requests") {
            Some(en) => {
                let v = self.u64(&en.value);
                self.pos_u(&en.value, v, "max_requests").map(Some)
            }
            None => Some(None),
        };
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
                        let prev = *prev;
                        self.err(
                            DiagBuilder::error(
                                codes::DUPLICATE,
                                format!("model `{}` is listed twice", en.key.name),
                            )
                            .label(en.key.span, "again here")
                            .label(prev, "first here"),
                        );
                        ok = false;
                        continue;
                    }
                    seen.insert(en.key.name.clone(), en.key.span);
                    let v = self.quantity(&en.value, Dim::Fraction);
                    match self.in_range(&en.value, v, "a share", 0.0, 1.0, true, true) {
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

    fn rate(&mut self, e: &Expr) -> Option<f64> {
        let v = self.quantity(e, Dim::Rate);
        self.positive(e, v, "a rate")
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
                    let v = self.quantity(&c, Dim::Count);
                    self.positive(&c, v, "the coefficient of variation")
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
                let on_ns = on.and_then(|on| {
                    let v = self.time_ns(&on);
                    self.pos_u(&on, v, "the on period")
                });
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
                let amplitude = am.and_then(|am| {
                    let v = self.quantity(&am, Dim::Fraction);
                    self.in_range(&am, v, "the amplitude", 0.0, 1.0, true, true)
                });
                let period_ns = pe.and_then(|pe| {
                    let v = self.time_ns(&pe);
                    self.pos_u(&pe, v, "the period")
                });
                Some(Arrivals::Diurnal {
                    mean_rate: mean_rate?,
                    amplitude: amplitude?,
                    period_ns: period_ns?,
                })
            }
            _ => {
                let s = req(self, 0, "steps")?;
                let l = self
                    .list(&s, "a list of `(start time, rate)` steps")?
                    .into_owned();
                let mut steps = Vec::new();
                let mut ok = true;
                for x in &l {
                    let Some((t, r)) = self.tuple2(x, "a `(start time, rate)` step") else {
                        ok = false;
                        continue;
                    };
                    let t = self.time_ns(&t);
                    let rv = self.quantity(&r, Dim::Rate);
                    let rv = self.non_negative(&r, rv, "a rate");
                    match (t, rv) {
                        (Some(t), Some(rv)) => steps.push((t, rv)),
                        _ => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                if steps.is_empty() || steps[0].0 != 0 || steps.windows(2).any(|w| w[1].0 <= w[0].0)
                {
                    self.err(
                        DiagBuilder::error(
                            codes::RANGE,
                            "steps must start at time 0 and increase strictly in time",
                        )
                        .label(s.span, "these steps"),
                    );
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

    fn size_dist(&mut self, e: &Expr, dim: Dim) -> Option<SizeDist> {
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
                let sigma = s.and_then(|s| {
                    let v = self.quantity(&s, Dim::Count);
                    self.non_negative(&s, v, "sigma")
                });
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

    fn trace(&mut self, e: &Expr, names: &Names) -> Option<TraceSpec> {
        let owned;
        let block: &Block = match &e.kind {
            ExprKind::Map(b) => b,
            ExprKind::Str(_) | ExprKind::TomlStr { .. } => {
                owned = Block {
                    entries: vec![Entry {
                        key: Ident {
                            name: "path".into(),
                            span: e.span,
                        },
                        value: e.clone(),
                        is_constraint: false,
                        span: e.span,
                    }],
                    span: e.span,
                };
                &owned
            }
            _ => {
                self.err(
                    DiagBuilder::error(codes::TYPE, format!("expected a trace path or a `trace {{ ... }}` block, found {}", e.kind.describe()))
                        .label(e.span, "expected a trace")
                        .help("write `trace = \"traces/azure.csv\"` or `trace { path = \"..\", format = azure, speedup = 2 }`"),
                );
                return None;
            }
        };
        let what = "the `trace` block";
        let f = self.fields(block, what, Some(TRACE_KEYS), false);
        self.index_entries("workload.trace", block);
        let pe = self.require(&f, "path", block.span, what)?;
        let path_text = self.string(pe, "a file path (a string)")?;
        let resolved = self.resolve_path(&path_text);
        let pspan = pe.span;
        let exists = resolved.is_file();
        if !exists {
            self.err(
                DiagBuilder::error(
                    codes::DATA_FILE,
                    format!("trace file not found: {}", resolved.display()),
                )
                .label(pspan, "no such file")
                .help("paths are relative to the scenario file's directory"),
            );
        }
        let formats = ["azure", "mooncake", "burstgpt", "csv", "jsonl"];
        let format = match f.get("format") {
            Some(en) => self
                .word(&en.value, "trace format", &formats)
                .map(|w| match w {
                    "azure" => TraceFormat::Azure,
                    "mooncake" => TraceFormat::Mooncake,
                    "burstgpt" => TraceFormat::Burstgpt,
                    "csv" => TraceFormat::Csv,
                    _ => TraceFormat::Jsonl,
                }),
            None if exists => match sniff_format(&resolved) {
                Some(fm) => Some(fm),
                None => {
                    self.err(
                        DiagBuilder::error(
                            codes::MISSING,
                            "cannot tell the trace's format from its first line",
                        )
                        .label(pspan, "this file")
                        .help(format!(
                            "add `format = ...`, one of: {}",
                            formats.join(", ")
                        )),
                    );
                    None
                }
            },
            None => None,
        };
        let speedup = match f.get("speedup") {
            Some(en) => {
                let v = self.quantity(&en.value, Dim::Count);
                self.positive(&en.value, v, "the speed-up")
            }
            None => Some(1.0),
        };
        let target_rate = match f.get("target_rate") {
            Some(en) => self.rate(&en.value).map(Some),
            None => Some(None),
        };
        let window = match f.get("window") {
            Some(en) => match self.tuple2(&en.value, "a `(start, end)` time window") {
                Some((a, b)) => {
                    let (s, t) = (self.time_ns(&a), self.time_ns(&b));
                    match (s, t) {
                        (Some(s), Some(t)) if t > s => Some(Some((s, t))),
                        (Some(_), Some(_)) => {
                            self.err(
                                DiagBuilder::error(
                                    codes::RANGE,
                                    "the window ends before it starts",
                                )
                                .label(en.value.span, "empty window"),
                            );
                            None
                        }
                        _ => None,
                    }
                }
                None => None,
            },
            None => Some(None),
        };
        let repeat = match f.get("repeat") {
            Some(en) => {
                let v = self.u32(&en.value).map(|v| v as u64);
                self.pos_u(&en.value, v, "repeat").map(|v| v as u32)
            }
            None => Some(1),
        };
        let skip = match f.get("skip_bad_rows") {
            Some(en) => self.boolean(&en.value),
            None => Some(false),
        };
        let slo_assign = match f.get("slo_assign") {
            Some(en) => self.assign(&en.value, "SLO class", &names.slos),
            None => Some(Assign::ByShare),
        };
        let model_assign = match f.get("model_assign") {
            Some(en) => self.assign(&en.value, "model", &names.models),
            None => Some(Assign::ByShare),
        };
        let payload = match f.get("payload") {
            Some(en) => self.size_dist(&en.value, Dim::Data).map(Some),
            None => Some(None),
        };
        Some(TraceSpec {
            path: resolved.to_string_lossy().into_owned(),
            format: format?,
            speedup: speedup?,
            target_rate: target_rate?,
            window_ns: window?,
            repeat: repeat?,
            skip_bad_rows: skip?,
            slo_assign: slo_assign?,
            model_assign: model_assign?,
            payload: payload?,
        })
    }

    fn assign(&mut self, e: &Expr, what: &str, table: &HashMap<String, Decl>) -> Option<Assign> {
        let (f, span, a) = self.call(
            e,
            "assignment rule",
            &[
                ("by_share", &[]),
                ("from_column", &[]),
                ("by_size", &["rules"]),
            ],
        )?;
        match f.as_str() {
            "by_share" => Some(Assign::ByShare),
            "from_column" => Some(Assign::FromColumn),
            _ => {
                let x = self.arg(&a, 0, "by_size", "rules", span)?.clone();
                let l = self
                    .list(&x, "a list of `(max_tokens, name)` rules")?
                    .into_owned();
                let mut rules = Vec::new();
                let mut ok = true;
                for r in &l {
                    let Some((n, name)) = self.tuple2(r, "a `(max_tokens, name)` rule") else {
                        ok = false;
                        continue;
                    };
                    let n = self.u64(&n);
                    let name = self.name(&name, &format!("{what} name"));
                    if let Some(id) = &name
                        && !table.contains_key(&id.name)
                    {
                        let help = did_you_mean(&id.name, table.keys().map(|k| k.as_str()));
                        self.err(
                            DiagBuilder::error(
                                codes::UNKNOWN_REF,
                                format!("unknown {what} `{}`", id.name),
                            )
                            .label(id.span, format!("no {what} is called `{}`", id.name))
                            .help_opt(help),
                        );
                        ok = false;
                    }
                    match (n, name) {
                        (Some(n), Some(id)) => rules.push((n, id.name)),
                        _ => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                if rules.is_empty() || rules.windows(2).any(|w| w[1].0 <= w[0].0) {
                    self.err(
                        DiagBuilder::error(
                            codes::RANGE,
                            "size rules need at least one rule, in increasing `max_tokens`",
                        )
                        .label(x.span, "these rules"),
                    );
                    return None;
                }
                Some(Assign::BySize { rules })
            }
        }
    }

    // ----- objective ----------------------------------------------------------------------------

    fn objective(&mut self, it: &Item, servers: &[ServerSpec], names: &Names) -> Option<Objective> {
        let f = self.fields(
            &it.body,
            "the `objective` block",
            Some(OBJECTIVE_KEYS),
            true,
        );
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
                    .help("constraints compare `latency`, `deadline`, `share(x)`, `utilization(x)` or energy terms"),
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
                let unit = units::lookup(&u.name, None);
                match unit {
                    Some(unit) if matches!(unit.dim, Dim::Time | Dim::Energy | Dim::Fraction) => {
                        let v = match (unit.dim, unit.factor) {
                            // Constraints count time in seconds.
                            (Dim::Time, Factor::Dec(p)) => {
                                units::scale(text, *value, Factor::Dec(p - 9))
                            }
                            (Dim::Time, _) => units::scale(text, *value, unit.factor) / 1e9,
                            _ => units::scale(text, *value, unit.factor),
                        };
                        Some(mk(vec![], v, Some(unit.dim)))
                    }
                    Some(unit) => {
                        self.err(
                            DiagBuilder::error(codes::UNIT, format!("constraints cannot use {} (`{}`)", unit.dim.describe(), u.name))
                                .label(u.span, "not allowed here")
                                .help("constraints compare times (`s`), energies (`J`) and fractions (`%`)"),
                        );
                        None
                    }
                    None => {
                        let help =
                            units::suggest(&u.name, None).map(|s| format!("did you mean `{s}`?"));
                        self.err(
                            DiagBuilder::error(codes::UNIT, format!("unknown unit `{}`", u.name))
                                .label(u.span, "unknown unit")
                                .help_opt(help),
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
                            "utilization",
                        ];
                        let help = did_you_mean(other, known).unwrap_or_else(|| {
                            "the quantities are: latency, deadline, share(x), utilization(x), energy, energy.transmission, energy.inference, energy.idle".into()
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
                    "utilization" => false,
                    other => {
                        let help = did_you_mean(other, ["share", "utilization"]);
                        self.err(
                            DiagBuilder::error(
                                codes::UNKNOWN_REF,
                                format!("unknown function `{other}`"),
                            )
                            .label(name.span, "not a per-slot quantity")
                            .help_opt(help.or(Some(
                                "constraints know `share(x)` and `utilization(x)`".into(),
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
                            Quantity::Utilization(t)
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

    // ----- policy and sim -----------------------------------------------------------------------

    fn policy(&mut self, it: &Item) -> Option<PolicySpec> {
        let name = it.name.as_ref()?.name.name.clone();
        let f = self.fields(&it.body, "the `policy` block", None, false);
        let mut params = BTreeMap::new();
        let mut ok = true;
        let mut entries: Vec<&Entry> = f.0.iter().map(|x| x.1).collect();
        entries.sort_by_key(|e| e.span.start);
        for en in entries {
            self.idx(format!("policy.{}", en.key.name), en.value.span);
            match self.param(&en.value) {
                Some(v) => {
                    params.insert(en.key.name.clone(), v);
                }
                None => ok = false,
            }
        }
        ok.then_some(PolicySpec { name, params })
    }

    fn param(&mut self, e: &Expr) -> Option<ParamValue> {
        if let ExprKind::TomlStr { text, .. } = &e.kind {
            // A TOML string is a number with a unit if it parses as one, text otherwise.
            let looks_numeric = text
                .trim_start()
                .starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.');
            if !looks_numeric {
                return Some(ParamValue::Text(text.clone()));
            }
        }
        let e = self.resolve(e)?.into_owned();
        match &e.kind {
            ExprKind::Bool(b) => Some(ParamValue::Bool(*b)),
            ExprKind::Str(s) => Some(ParamValue::Text(s.clone())),
            ExprKind::Path(p) => Some(ParamValue::Text(
                p.iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join("."),
            )),
            ExprKind::Neg(x) => match self.param(x)? {
                ParamValue::Number(n) => Some(ParamValue::Number(-n)),
                _ => {
                    self.type_err(&e, "a number");
                    None
                }
            },
            ExprKind::Quantity {
                value, unit: None, ..
            } => Some(ParamValue::Number(*value)),
            ExprKind::Quantity {
                value,
                text,
                unit: Some(u),
            } => {
                let Some(unit) = units::lookup(&u.name, None) else {
                    let help =
                        units::suggest(&u.name, None).map(|s| format!("did you mean `{s}`?"));
                    self.err(
                        DiagBuilder::error(codes::UNIT, format!("unknown unit `{}`", u.name))
                            .label(u.span, "unknown unit")
                            .help_opt(help),
                    );
                    return None;
                };
                // SI: seconds, bytes, bit/s, FLOP/s, W, J/bit, J, fractions, per second.
                let v = match (unit.dim, unit.factor) {
                    (Dim::Time, Factor::Dec(p)) => units::scale(text, *value, Factor::Dec(p - 9)),
                    (Dim::Time, f) => units::scale(text, *value, f) / 1e9,
                    (_, f) => units::scale(text, *value, f) * if unit.bytes { 8.0 } else { 1.0 },
                };
                Some(ParamValue::Number(v))
            }
            _ => {
                self.type_err(&e, "a number, a string, a name or a boolean");
                None
            }
        }
    }

    fn sim(&mut self, it: &Item) -> Option<SimParams> {
        let f = self.fields(&it.body, "the `sim` block", Some(SIM_KEYS), false);
        self.index_entries("sim", &it.body);
        let d = SimParams::default();
        let step_noise = match f.get("step_noise") {
            Some(en) => {
                let v = self.quantity(&en.value, Dim::Fraction);
                self.in_range(&en.value, v, "step noise", 0.0, 1.0, false, true)
            }
            None => Some(d.step_noise),
        };
        let contention = match f.get("contention") {
            Some(en) => {
                let v = self.quantity(&en.value, Dim::Fraction);
                self.non_negative(&en.value, v, "contention")
            }
            None => Some(d.contention),
        };
        let max_defers = match f.get("max_defers") {
            Some(en) => self.u32(&en.value),
            None => Some(d.max_defers),
        };
        let drain_ns = match f.get("drain") {
            Some(en) => {
                let v = self.time_ns(&en.value);
                self.pos_u(&en.value, v, "the drain limit").map(Some)
            }
            None => Some(d.drain_ns),
        };
        Some(SimParams {
            step_noise: step_noise?,
            contention: contention?,
            max_defers: max_defers?,
            drain_ns: drain_ns?,
            ..d
        })
    }

    // ----- warnings -----------------------------------------------------------------------------

    fn deadline_warnings(
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
                let t = l.latency_ns + cm.step_ns(h, s.count, m, &shape);
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

fn sources_name(n: &ItemName) -> String {
    match n.range {
        Some((lo, hi, _)) => format!("{}[{lo}..{hi}]", n.name.name),
        None => n.name.name.clone(),
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

fn pct(v: f64) -> String {
    let p = v * 100.0;
    let r = (p * 1000.0).round() / 1000.0;
    format!("{r}%")
}

fn qname(q: &Quantity) -> String {
    match q {
        Quantity::Latency => "`latency`".into(),
        Quantity::Deadline => "`deadline`".into(),
        Quantity::Share(_) => "`share(..)`".into(),
        Quantity::Utilization(_) => "`utilization(..)`".into(),
        _ => "an energy term".into(),
    }
}

/// What a series file looks like, for diagnostics.
const SERIES_FILE_HELP: &str = "a series file is CSV: a header `time_s,factor` (or \
`time_s,bandwidth_mbps`, `_bps`, `_kbps`, `_gbps`), then one `seconds,value` row per line with \
times increasing strictly; `#` starts a comment line";

/// Guess a trace's format from its extension and first line.
pub fn sniff_format(path: &Path) -> Option<TraceFormat> {
    use std::io::BufRead;
    let f = std::fs::File::open(path).ok()?;
    let mut first = String::new();
    std::io::BufReader::new(f)
        .take(64 * 1024)
        .read_line(&mut first)
        .ok()?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ext == "jsonl" || first.trim_start().starts_with('{') {
        return Some(if first.contains("input_length") {
            TraceFormat::Mooncake
        } else {
            TraceFormat::Jsonl
        });
    }
    if first.contains("ContextTokens") {
        Some(TraceFormat::Azure)
    } else if first.contains("Request tokens") {
        Some(TraceFormat::Burstgpt)
    } else if ext == "csv" {
        Some(TraceFormat::Csv)
    } else {
        None
    }
}

use std::io::Read as _;
