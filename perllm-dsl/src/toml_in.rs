//! The TOML twin: a TOML document read into the same syntax tree as a `.perllm` file.
//!
//! Layout: one table per item kind. Named kinds (`hardware`, `model`, `link`, `server`, `slo`,
//! `policy`) hold one sub-table per name (`[server."edge[1..5]"]`); the others are plain tables
//! (`[scenario]`, `[workload]`, `[objective]`, `[sim]`). Values that need units or expressions are
//! strings in the language's own syntax (`duration = "10 min"`, `arrivals = "poisson(rate = 6 /s)"`);
//! objective constraints are a list of strings (`constraints = ["latency <= deadline"]`).

use crate::ast::*;
use crate::diag::{DiagBuilder, Diagnostic, Sources, codes};
use crate::lower::ITEM_KINDS;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

struct Reader<'s> {
    sources: &'s Sources,
    src: u32,
    text: &'s str,
    errors: Vec<Diagnostic>,
}

/// Read a TOML source into a [`File`].
pub fn read(sources: &Sources, src: u32) -> Result<File, Vec<Diagnostic>> {
    let text = sources.get(src).text.clone();
    if let Some(at) = crate::parse::too_deep(&text, true) {
        return Err(vec![
            DiagBuilder::error(
                codes::NESTING,
                format!(
                    "brackets are nested more than {} levels deep",
                    crate::parse::MAX_NESTING
                ),
            )
            .label(Span::new(src, at, at + 1), "too deep here")
            .build(sources),
        ]);
    }
    let root = match DeTable::parse(&text) {
        Ok(t) => t,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let end = if span.end > span.start {
                span.end
            } else {
                (span.start + 1).min(text.len())
            };
            return Err(vec![
                DiagBuilder::error(
                    codes::SYNTAX,
                    format!("invalid TOML: {}", e.message().trim()),
                )
                .label(Span::new(src, span.start, end.max(span.start)), "here")
                .build(sources),
            ]);
        }
    };
    let mut r = Reader {
        sources,
        src,
        text: &text,
        errors: Vec::new(),
    };
    let mut items = Vec::new();
    for (k, v) in root.get_ref().iter() {
        let kspan = r.span(k.span());
        let kind = Ident {
            name: k.get_ref().to_string(),
            span: kspan,
        };
        let named = ITEM_KINDS.iter().find(|x| x.0 == kind.name).map(|x| x.1);
        let vspan = r.span(v.span());
        let DeValue::Table(t) = v.get_ref() else {
            r.err(
                DiagBuilder::error(codes::TYPE, format!("`{}` must be a table", kind.name))
                    .label(vspan, "expected a table")
                    .help(format!("write `[{}]` or `[{}.NAME]`", kind.name, kind.name)),
            );
            continue;
        };
        if named == Some(true) {
            for (n, body) in t.iter() {
                let Some(name) = r.item_name(n) else { continue };
                let bspan = r.span(body.span());
                let DeValue::Table(bt) = body.get_ref() else {
                    r.err(
                        DiagBuilder::error(
                            codes::TYPE,
                            format!("`{}.{}` must be a table", kind.name, n.get_ref()),
                        )
                        .label(bspan, "expected a table"),
                    );
                    continue;
                };
                let block = r.block(bt, bspan);
                items.push(Item {
                    kind: kind.clone(),
                    name: Some(name),
                    body: block,
                    span: kspan.to(bspan),
                });
            }
        } else {
            let block = r.block(t, vspan);
            items.push(Item {
                kind,
                name: None,
                body: block,
                span: kspan.to(vspan),
            });
        }
    }
    if r.errors.is_empty() {
        Ok(File { items })
    } else {
        Err(r.errors)
    }
}

impl Reader<'_> {
    fn span(&self, r: std::ops::Range<usize>) -> Span {
        Span::new(self.src, r.start, r.end)
    }

    fn err(&mut self, d: DiagBuilder) {
        self.errors.push(d.build(self.sources));
    }

    /// Offset of a key's or string's content, if the source holds it verbatim in quotes.
    fn content_offset(&self, span: &std::ops::Range<usize>, content: &str) -> Option<usize> {
        let raw = self.text.get(span.clone())?;
        if raw == content {
            return Some(span.start);
        }
        for q in ["\"", "'"] {
            if raw.len() >= 2
                && raw.starts_with(q)
                && raw.ends_with(q)
                && &raw[1..raw.len() - 1] == content
            {
                return Some(span.start + 1);
            }
        }
        None
    }

    fn item_name(&mut self, k: &Spanned<std::borrow::Cow<'_, str>>) -> Option<ItemName> {
        let s = k.get_ref();
        let kspan = k.span();
        let base = self.content_offset(&kspan, s);
        if !s.contains('[') {
            let span = match base {
                Some(b) => Span::new(self.src, b, b + s.len()),
                None => self.span(kspan),
            };
            let id = Ident {
                name: s.to_string(),
                span,
            };
            return Some(ItemName {
                name: id,
                range: None,
                span,
            });
        }
        let r = match base {
            Some(b) => crate::parse::parse_item_name(self.sources, self.src, s, b),
            None => crate::parse::parse_item_name(self.sources, self.src, s, kspan.start).map(
                |mut n| {
                    let sp = self.span(kspan.clone());
                    n.span = sp;
                    n.name.span = sp;
                    n
                },
            ),
        };
        match r {
            Ok(n) => Some(n),
            Err(ds) => {
                self.errors.extend(ds);
                None
            }
        }
    }

    fn block(&mut self, t: &DeTable<'_>, span: Span) -> Block {
        let mut entries = Vec::new();
        for (k, v) in t.iter() {
            let kspan = k.span();
            let kspan = match self.content_offset(&kspan, k.get_ref()) {
                Some(b) => Span::new(self.src, b, b + k.get_ref().len()),
                None => self.span(kspan),
            };
            let key = Ident {
                name: k.get_ref().to_string(),
                span: kspan,
            };
            let value = self.value(v);
            let espan = kspan.to(value.span);
            entries.push(Entry {
                key,
                value,
                is_constraint: false,
                span: espan,
            });
        }
        Block { entries, span }
    }

    fn value(&mut self, v: &Spanned<DeValue<'_>>) -> Expr {
        let r = v.span();
        let span = self.span(r.clone());
        let kind = match v.get_ref() {
            DeValue::String(s) => ExprKind::TomlStr {
                text: s.to_string(),
                offset: self.content_offset(&r, s).map(|o| o as u32),
            },
            DeValue::Integer(i) => {
                let text = i.as_str().replace('_', "");
                let value = match i.radix() {
                    10 => text.parse::<i128>().map(|x| x as f64).unwrap_or(f64::NAN),
                    radix => {
                        let digits = text.trim_start_matches(['+']).get(2..).unwrap_or("");
                        i128::from_str_radix(digits, radix)
                            .map(|x| x as f64)
                            .unwrap_or(f64::NAN)
                    }
                };
                if value < 0.0 {
                    let q = ExprKind::Quantity {
                        value: -value,
                        text: format!("{}", -value),
                        unit: None,
                    };
                    ExprKind::Neg(Box::new(Expr { kind: q, span }))
                } else {
                    ExprKind::Quantity {
                        value,
                        text: format!("{value}"),
                        unit: None,
                    }
                }
            }
            DeValue::Float(f) => {
                let text = f.as_str().replace('_', "");
                let value = match text.trim_start_matches(['+', '-']) {
                    "inf" => f64::INFINITY,
                    "nan" => f64::NAN,
                    t => t.parse::<f64>().unwrap_or(f64::NAN),
                };
                let neg = text.starts_with('-');
                let plain = text.trim_start_matches(['+', '-']).to_string();
                let q = ExprKind::Quantity {
                    value,
                    text: plain,
                    unit: None,
                };
                if neg {
                    ExprKind::Neg(Box::new(Expr { kind: q, span }))
                } else {
                    q
                }
            }
            DeValue::Boolean(b) => ExprKind::Bool(*b),
            DeValue::Datetime(_) => {
                self.err(
                    DiagBuilder::error(codes::TYPE, "dates are not used in scenarios")
                        .label(span, "a TOML date")
                        .help("write times as strings with units, e.g. `\"10 min\"`"),
                );
                ExprKind::Bool(false)
            }
            DeValue::Array(a) => ExprKind::List(a.iter().map(|x| self.value(x)).collect()),
            DeValue::Table(t) => ExprKind::Map(self.block(t, span)),
        };
        Expr { kind, span }
    }
}
