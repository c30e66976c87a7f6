//! Lowering: from the spanned syntax tree to perllm-core's [`Scenario`], with every problem that
//! can be located reported as a span-carrying diagnostic, all in one pass.

mod checks;
mod fields;
mod hardware;
mod link;
mod model;
mod objective;
mod policy;
mod scenario;
mod server;
mod sim;
mod slo;
mod trace;
mod values;
mod workload;

use fields::{Fields, Named};
pub use hardware::{HARDWARE_KEYS, POWER_KEYS};
pub use link::LINK_KEYS;
pub use model::MODEL_KEYS;
pub use objective::OBJECTIVE_KEYS;
pub use scenario::SCENARIO_KEYS;
pub use server::SERVER_KEYS;
use server::sources_name;
pub use sim::SIM_KEYS;
pub use slo::SLO_KEYS;
pub use trace::{TRACE_KEYS, sniff_format};
use values::{Interval, pct, si_value};
pub use workload::WORKLOAD_KEYS;

use crate::ast::*;
use crate::diag::{DiagBuilder, Diagnostic, Sources, codes, did_you_mean};
use perllm_core::spec::*;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

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
    /// Data files read (series files), as resolved.
    pub data_files: Vec<PathBuf>,
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
            data_files: Vec::new(),
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
        if !self.memory_fits(
            &get("server"),
            models.len(),
            get("slo").len(),
            get("sim").first().copied(),
        ) {
            return None;
        }
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

    /// Resolve a path relative to the scenario file's directory.
    pub fn resolve_path(&self, p: &str) -> PathBuf {
        let pb = PathBuf::from(p);
        match &self.base_dir {
            Some(d) if pb.is_relative() => d.join(pb),
            _ => pb,
        }
    }
}
