//! `--set key=value` overrides for parameter sweeps, applied to the syntax tree before lowering,
//! so an override gets exactly the checks (units, ranges, references) the file itself gets.
//!
//! A key is a dotted path: `KIND.KEY...` for unnamed blocks (`scenario.seed`, `workload.arrivals.rate`,
//! `sim.step_noise`), `KIND.NAME.KEY...` for named ones (`link.wan.bandwidth`,
//! `server.cloud.max_batch`, `hardware.a100.power.idle`), and `policy.KEY` for the policy's
//! parameters. Inside a call the key names the parameter (`workload.arrivals.rate`). Overriding a
//! `+/-` bandwidth with a plain bandwidth keeps the fluctuation.

use crate::ast::*;
use crate::diag::{DiagBuilder, Diagnostic, Sources, codes, did_you_mean};
use crate::lower::{ITEM_KINDS, keys_of};

/// The parameters of the functions a key takes, by key (for positional arguments).
fn funcs_for_key(key: &str) -> &'static [(&'static str, &'static [&'static str])] {
    match key {
        "arrivals" => &[
            ("poisson", &["rate"]),
            ("gamma", &["rate", "cv"]),
            ("on_off", &["rate", "on", "off"]),
            ("diurnal", &["mean_rate", "amplitude", "period"]),
            ("steps", &["steps"]),
        ],
        "prompt_tokens" | "output_tokens" | "payload" => &[
            ("fixed", &["value"]),
            ("uniform", &["lo", "hi"]),
            ("lognormal", &["median", "sigma"]),
            ("empirical", &["values"]),
        ],
        "fluctuation" => &[
            ("uniform", &["frac"]),
            ("random_walk", &["step", "bound"]),
            ("series", &["points"]),
        ],
        _ => &[],
    }
}

struct Ctx<'a> {
    sources: &'a Sources,
    src: u32,
    key_span: Span,
    diags: &'a mut Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn fail(&mut self, msg: String, help: Option<String>) {
        let d = DiagBuilder::error(codes::OVERRIDE, msg)
            .label(self.key_span, "in this override")
            .help_opt(help);
        self.diags.push(d.build(self.sources));
    }
}

/// Apply overrides to a parsed file. Problems are pushed to `diags`.
pub fn apply(
    file: &mut File,
    sources: &mut Sources,
    overrides: &[(String, String)],
    diags: &mut Vec<Diagnostic>,
) {
    for (key, value) in overrides {
        let text = format!("{key}={value}");
        let src = sources.add(format!("--set {key}"), text.as_str());
        let key_span = Span::new(src, 0, key.len());
        let base = key.len() + 1;
        let parsed = match crate::parse::parse_value(sources, src, value, base) {
            Ok(e) => e,
            Err(ds) => {
                diags.extend(ds);
                continue;
            }
        };
        let mut cx = Ctx {
            sources,
            src,
            key_span,
            diags,
        };
        apply_one(file, &mut cx, key, parsed);
    }
}

fn apply_one(file: &mut File, cx: &mut Ctx<'_>, key: &str, value: Expr) {
    let segs: Vec<&str> = key.split('.').map(str::trim).collect();
    if segs.len() < 2 || segs.iter().any(|s| s.is_empty()) {
        cx.fail(
            format!("`{key}` is not a key"),
            Some("keys are dotted paths such as `workload.arrivals.rate`, `link.wan.bandwidth` or `policy.exploration`".into()),
        );
        return;
    }
    let kind = segs[0];
    let Some(&(kind, named)) = ITEM_KINDS.iter().find(|k| k.0 == kind) else {
        let help = did_you_mean(kind, ITEM_KINDS.iter().map(|k| k.0));
        cx.fail(format!("unknown block `{kind}` in `{key}`"), help);
        return;
    };
    let (item_idx, rest) = if kind == "policy" {
        let Some(i) = file.items.iter().position(|it| it.kind.name == "policy") else {
            cx.fail(
                "the scenario has no `policy` block to override".into(),
                Some("add `policy NAME { }` to the file".into()),
            );
            return;
        };
        let pname = file.items[i]
            .name
            .as_ref()
            .map(|n| n.name.name.clone())
            .unwrap_or_default();
        let rest: &[&str] = if segs.len() > 2 && segs[1] == pname {
            &segs[2..]
        } else {
            &segs[1..]
        };
        if rest == ["name"] {
            match &value.kind {
                ExprKind::Path(p) if p.len() == 1 => {
                    if let Some(n) = file.items[i].name.as_mut() {
                        n.name.name = p[0].name.clone();
                    }
                }
                ExprKind::Str(s) => {
                    if let Some(n) = file.items[i].name.as_mut() {
                        n.name.name = s.clone();
                    }
                }
                _ => cx.fail("a policy name is a name".into(), None),
            }
            return;
        }
        (i, rest.to_vec())
    } else if named {
        let name = segs[1];
        let found = file.items.iter().position(|it| {
            it.kind.name == kind && it.name.as_ref().is_some_and(|n| n.name.name == name)
        });
        let Some(i) = found else {
            // A member of a family?
            let fam = file
                .items
                .iter()
                .filter(|it| it.kind.name == kind)
                .find_map(|it| {
                    let n = it.name.as_ref()?;
                    let (lo, hi, _) = n.range?;
                    let num: u64 = name.strip_prefix(n.name.name.as_str())?.parse().ok()?;
                    (lo..=hi).contains(&num).then(|| n.name.name.clone())
                });
            if let Some(f) = fam {
                cx.fail(
                    format!(
                        "`{name}` belongs to the family `{f}`; a family is overridden as a whole"
                    ),
                    Some(format!("override `{kind}.{f}.{}`", segs[2..].join("."))),
                );
                return;
            }
            let names: Vec<String> = file
                .items
                .iter()
                .filter(|it| it.kind.name == kind)
                .filter_map(|it| it.name.as_ref().map(|n| n.name.name.clone()))
                .collect();
            let help = did_you_mean(name, names.iter().map(|s| s.as_str()));
            cx.fail(format!("there is no {kind} `{name}`"), help);
            return;
        };
        if segs.len() < 3 {
            cx.fail(
                format!("`{key}` names a whole {kind}; name one of its keys"),
                keys_of(kind).map(|k| format!("{kind} keys: {}", k.join(", "))),
            );
            return;
        }
        (i, segs[2..].to_vec())
    } else {
        let i = match file.items.iter().position(|it| it.kind.name == kind) {
            Some(i) => i,
            None => {
                let sp = cx.key_span;
                file.items.push(Item {
                    kind: Ident {
                        name: kind.to_string(),
                        span: sp,
                    },
                    name: None,
                    body: Block {
                        entries: Vec::new(),
                        span: sp,
                    },
                    span: sp,
                });
                file.items.len() - 1
            }
        };
        (i, segs[1..].to_vec())
    };
    if let Some(allowed) = keys_of(kind)
        && !allowed.contains(&rest[0])
    {
        let help = did_you_mean(rest[0], allowed.iter().copied())
            .or_else(|| Some(format!("{kind} keys: {}", allowed.join(", "))));
        cx.fail(format!("unknown key `{}` in `{key}`", rest[0]), help);
        return;
    }
    if kind == "scenario" && rest == ["name"] && file.items[item_idx].name.is_some() {
        let item = &mut file.items[item_idx];
        match &value.kind {
            ExprKind::Str(s) => item.name.as_mut().expect("name").name.name = s.clone(),
            _ => cx.fail("the scenario name is a string".into(), None),
        }
        return;
    }
    let key_span = cx.key_span;
    let body = &mut file.items[item_idx].body;
    set_in_block(body, &rest, value, cx, key, key_span);
}

fn set_in_block(
    block: &mut Block,
    path: &[&str],
    value: Expr,
    cx: &mut Ctx<'_>,
    full: &str,
    key_span: Span,
) {
    let k = path[0];
    let pos = block
        .entries
        .iter()
        .position(|e| !e.is_constraint && e.key.name == k);
    if path.len() == 1 {
        match pos {
            Some(i) => {
                let old = &mut block.entries[i].value;
                let old_resolved = reparse(old, cx);
                // `bandwidth = 100 Mbps +/- 20%` overridden with a plain bandwidth keeps the +/-.
                if let Some(ExprKind::Binary {
                    op: BinOp::PlusMinus,
                    op_span,
                    rhs,
                    ..
                }) = old_resolved.map(|e| e.kind)
                    && !matches!(
                        value.kind,
                        ExprKind::Binary {
                            op: BinOp::PlusMinus,
                            ..
                        }
                    )
                    && matches!(value.kind, ExprKind::Quantity { .. })
                {
                    let span = value.span;
                    *old = Expr {
                        kind: ExprKind::Binary {
                            op: BinOp::PlusMinus,
                            op_span,
                            lhs: Box::new(value),
                            rhs,
                        },
                        span,
                    };
                } else {
                    *old = value;
                }
            }
            None => block.entries.push(Entry {
                key: Ident {
                    name: k.to_string(),
                    span: key_span,
                },
                span: value.span,
                value,
                is_constraint: false,
            }),
        }
        return;
    }
    let Some(i) = pos else {
        cx.fail(
            format!("`{full}`: the file sets no `{k}` to look into"),
            Some(format!("override `{k}` as a whole")),
        );
        return;
    };
    let entry = &mut block.entries[i];
    if let Some(e) = reparse(&entry.value, cx) {
        entry.value = e;
    } else {
        return;
    }
    let funcs = funcs_for_key(k);
    match &mut entry.value.kind {
        ExprKind::Map(b) => set_in_block(b, &path[1..], value, cx, full, key_span),
        ExprKind::Call { name, args } if path.len() == 2 => {
            let p = path[1];
            let params: &[&str] = funcs
                .iter()
                .find(|f| f.0 == name.name)
                .map(|f| f.1)
                .unwrap_or(&[]);
            if let Some(a) = args
                .iter_mut()
                .find(|a| a.name.as_ref().is_some_and(|n| n.name == p))
            {
                a.value = value;
                return;
            }
            // Positional arguments fill the parameters not given by name, in order.
            let named: Vec<&str> = args
                .iter()
                .filter_map(|a| a.name.as_ref().map(|n| n.name.as_str()))
                .collect();
            let free: Vec<&str> = params
                .iter()
                .copied()
                .filter(|q| !named.contains(q))
                .collect();
            let mut k = 0;
            for a in args.iter_mut() {
                if a.name.is_none() {
                    if free.get(k) == Some(&p) {
                        a.value = value;
                        return;
                    }
                    k += 1;
                }
            }
            if !params.is_empty() && !params.contains(&p) {
                let help = did_you_mean(p, params.iter().copied())
                    .or_else(|| Some(format!("`{}` takes: {}", name.name, params.join(", "))));
                cx.fail(format!("`{}` has no parameter `{p}`", name.name), help);
                return;
            }
            args.push(Arg {
                name: Some(Ident {
                    name: p.to_string(),
                    span: key_span,
                }),
                value,
            });
        }
        ExprKind::Path(p) if p.len() == 1 && path.len() == 2 => {
            // A call without parentheses (`by_share`): give it its first argument.
            let name = p[0].clone();
            let span = entry.value.span;
            entry.value = Expr {
                kind: ExprKind::Call {
                    name,
                    args: vec![Arg {
                        name: Some(Ident {
                            name: path[1].to_string(),
                            span: key_span,
                        }),
                        value,
                    }],
                },
                span,
            };
        }
        other => {
            let d = other.describe();
            cx.fail(
                format!("`{full}`: `{k}` is {d}, which has no `{}`", path[1]),
                Some(format!("override `{k}` as a whole")),
            );
        }
    }
}

/// A TOML string is parsed into an expression before it is edited.
fn reparse(e: &Expr, cx: &mut Ctx<'_>) -> Option<Expr> {
    match &e.kind {
        ExprKind::TomlStr { text, offset } => {
            let r = match offset {
                Some(o) => crate::parse::parse_value(cx.sources, e.span.src, text, *o as usize),
                None => {
                    crate::parse::parse_value(cx.sources, cx.src, text, 0).map_err(|_| Vec::new())
                }
            };
            match r {
                Ok(x) => Some(x),
                Err(ds) => {
                    if ds.is_empty() {
                        cx.fail("the value being overridden does not parse".into(), None);
                    }
                    cx.diags.extend(ds);
                    None
                }
            }
        }
        _ => Some(e.clone()),
    }
}
