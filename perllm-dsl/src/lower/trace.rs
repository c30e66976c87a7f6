//! The workload's `trace` block: file, format (given or sniffed), replay options, assignment
//! rules.

use super::*;
use crate::ast::*;
use crate::diag::{DiagBuilder, codes, did_you_mean};
use crate::units::Dim;
use perllm_core::spec::*;
use std::collections::HashMap;
use std::path::Path;

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

/// The trace formats by name.
const TRACE_FORMATS: [(&str, TraceFormat); 5] = [
    ("azure", TraceFormat::Azure),
    ("mooncake", TraceFormat::Mooncake),
    ("burstgpt", TraceFormat::Burstgpt),
    ("csv", TraceFormat::Csv),
    ("jsonl", TraceFormat::Jsonl),
];

impl Lowerer {
    pub(super) fn trace(&mut self, e: &Expr, names: &Names) -> Option<TraceSpec> {
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
        let f = self.fields(
            block,
            "the `trace` block",
            block.span,
            Some(TRACE_KEYS),
            false,
        );
        self.index_entries("workload.trace", block);
        let pe = self.require(&f, "path")?;
        let path_text = self.string(pe, "a file path (a string)")?;
        let resolved = self.resolve_path(&path_text);
        let pspan = pe.span;
        // Traces are streamed (not read whole): no size limit, only a regular file.
        let checked = crate::files::check(&resolved, "trace file", u64::MAX);
        let exists = checked.is_ok();
        if let Err(why) = checked {
            let label = if resolved.exists() {
                "not a regular file"
            } else {
                "no such file"
            };
            self.err(
                DiagBuilder::error(codes::DATA_FILE, why)
                    .label(pspan, label)
                    .help("paths are relative to the scenario file's directory"),
            );
        }
        let format = match f.get("format") {
            Some(en) => self.choice(&en.value, "trace format", &TRACE_FORMATS),
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
                            TRACE_FORMATS.map(|x| x.0).join(", ")
                        )),
                    );
                    None
                }
            },
            None => None,
        };
        let speedup = self.optional(&f, "speedup", 1.0, |l, e| {
            l.positive_quantity(e, Dim::Count, "the speed-up")
        });
        let target_rate = self.maybe(&f, "target_rate", |l, e| l.rate(e));
        let window = self.maybe(&f, "window", |l, e| {
            let (a, b) = l.tuple2(e, "a `(start, end)` time window")?;
            match (l.time_ns(&a), l.time_ns(&b)) {
                (Some(s), Some(t)) if t > s => Some((s, t)),
                (Some(_), Some(_)) => {
                    l.err(
                        DiagBuilder::error(codes::RANGE, "the window ends before it starts")
                            .label(e.span, "empty window"),
                    );
                    None
                }
                _ => None,
            }
        });
        let repeat = self.optional(&f, "repeat", 1, |l, e| l.positive_u32(e, "repeat"));
        let skip = self.optional(&f, "skip_bad_rows", false, |l, e| l.boolean(e));
        let slo_assign = self.optional(&f, "slo_assign", Assign::ByShare, |l, e| {
            l.assign(e, "SLO class", &names.slos)
        });
        let model_assign = self.optional(&f, "model_assign", Assign::ByShare, |l, e| {
            l.assign(e, "model", &names.models)
        });
        let payload = self.maybe(&f, "payload", |l, e| l.size_dist(e, Dim::Data));
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
}

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
