//! `server NAME { .. }` blocks and server families `server NAME[lo..hi] { .. }`.

use super::*;
use crate::ast::*;
use crate::diag::{DiagBuilder, codes};
use crate::units::Dim;
use perllm_core::spec::*;

/// Keys of a `server` block.
pub const SERVER_KEYS: &[&str] = &[
    "tier",
    "hardware",
    "count",
    "models",
    "link",
    "max_batch",
    "batching",
    "chunk_tokens",
    "endpoint",
    "api_key_env",
    "pue",
    "idle_charge",
];
/// Values of a server's `idle_charge`.
const IDLE_CHARGES: [(&str, IdleCharge); 3] = [
    ("always", IdleCharge::Always),
    ("if_used", IdleCharge::IfUsed),
    ("never", IdleCharge::Never),
];
const MAX_SERVERS: u64 = 1_000_000;

impl Lowerer {
    pub(super) fn server(&mut self, it: &Item, names: &mut Names) -> Option<Vec<ServerSpec>> {
        let n = it.name.as_ref()?;
        let id = n.name.clone();
        let what = format!("server `{}`", sources_name(n));
        let f = self.fields(&it.body, what, id.span, Some(SERVER_KEYS), false);
        let tier = self.required(&f, "tier", |l, e| {
            l.choice(e, "tier", &[("edge", Tier::Edge), ("cloud", Tier::Cloud)])
        });
        let mut count_from_hw = None;
        let hardware = self.required(&f, "hardware", |l, e| {
            let (hw, times) = l.split_at(e, BinOp::Times)?;
            if let Some(rhs) = times {
                count_from_hw = Some(l.u32(&rhs).map(|c| (c, rhs.span)));
            }
            l.name(&hw, "a hardware name")
        });
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
        let models = self.required(&f, "models", |l, e| l.name_list(e, "a list of model names"));
        if let Some(m) = &models
            && m.is_empty()
        {
            let sp = f["models"].value.span;
            self.err(
                DiagBuilder::error(codes::RANGE, "a server must host at least one model")
                    .label(sp, "empty list"),
            );
        }
        let link = self.required(&f, "link", |l, e| l.name(e, "a link name"));
        let max_batch = self.required(&f, "max_batch", |l, e| l.positive_u32(e, "max_batch"));
        let batching = self.maybe(&f, "batching", |l, e| {
            l.choice(e, "batching", &super::sim::BATCHING_KINDS)
        });
        let chunk_tokens = self.maybe(&f, "chunk_tokens", |l, e| l.positive_u32(e, "chunk_tokens"));
        let endpoint = self.maybe(&f, "endpoint", |l, e| {
            let url = l.string(e, "the base URL of an OpenAI-compatible server")?;
            if !(url.starts_with("http://") || url.starts_with("https://"))
                || url.len() <= "https://".len()
            {
                l.err(
                    DiagBuilder::error(codes::RANGE, format!("`{url}` is not an http(s) URL"))
                        .label(e.span, "here")
                        .help("write the server's base URL, e.g. `endpoint = \"http://10.0.0.5:8000\"`; in a family, `{i}` stands for the member's number"),
                );
                return None;
            }
            Some(url)
        });
        let api_key_env = self.maybe(&f, "api_key_env", |l, e| {
            let name = l.string(e, "the name of an environment variable")?;
            let ok = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !ok {
                l.err(
                    DiagBuilder::error(
                        codes::RANGE,
                        format!("`{name}` is not an environment variable name"),
                    )
                    .label(e.span, "here")
                    .help("name the variable that holds the key (letters, digits, `_`), never the key itself"),
                );
                return None;
            }
            Some(name)
        });
        let pue = self.maybe(&f, "pue", |l, e| l.pue(e));
        let idle_charge = self.maybe(&f, "idle_charge", |l, e| {
            l.choice(e, "idle_charge", &IDLE_CHARGES)
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
                    self.err(
                        DiagBuilder::twice(
                            codes::FAMILY_OVERLAP,
                            format!("family `{}` is declared twice", id.name),
                            n.span,
                            prev.span,
                            "declared",
                        )
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
            if self.want_index {
                let p = format!("server[{m}]");
                self.idx(p.clone(), n.span);
                self.index_entries(&p, &it.body);
            }
        }
        let family = n.range.map(|_| id.name.clone());
        let (tier, hardware, count, models, link, max_batch, batching, chunk_tokens) = (
            tier?,
            hardware?,
            count?,
            models?,
            link?,
            max_batch?,
            batching?,
            chunk_tokens?,
        );
        let (endpoint, api_key_env) = (endpoint?, api_key_env?);
        let lo = n.range.map(|r| r.0).unwrap_or(0);
        let (pue, idle_charge) = (pue?, idle_charge?);
        let models: Vec<String> = models.into_iter().map(|m| m.name).collect();
        Some(
            member_names
                .into_iter()
                .enumerate()
                .map(|(k, name)| ServerSpec {
                    endpoint: endpoint
                        .as_ref()
                        .map(|u| u.replace("{i}", &(lo + k as u64).to_string())),
                    api_key_env: api_key_env.clone(),
                    name,
                    family: family.clone(),
                    tier,
                    hardware: hardware.name.clone(),
                    count,
                    models: models.clone(),
                    link: link.name.clone(),
                    max_batch,
                    batching,
                    chunk_tokens,
                    pue,
                    idle_charge,
                })
                .collect(),
        )
    }
}

impl Lowerer {
    /// A power usage effectiveness: a plain number in [1, 5] (`limits::MAX_PUE`).
    fn pue(&mut self, e: &Expr) -> Option<f64> {
        let v = self.quantity(e, Dim::Fraction)?;
        if !(1.0..=limits::MAX_PUE).contains(&v) {
            self.err(
                DiagBuilder::error(
                    codes::RANGE,
                    format!("pue must be between 1 and {}", limits::MAX_PUE),
                )
                .label(e.span, format!("this is {v}"))
                .help(
                    "PUE is the facility's energy per joule its IT equipment draws: 1.0 counts \
                     the devices alone, published data-centre averages are about 1.1 to 1.6",
                ),
            );
            return None;
        }
        Some(v)
    }
}

pub(super) fn sources_name(n: &ItemName) -> String {
    match n.range {
        Some((lo, hi, _)) => format!("{}[{lo}..{hi}]", n.name.name),
        None => n.name.name.clone(),
    }
}
