//! The perllm scenario language (pest) and its TOML twin, with diagnostics.
//!
//! A scenario file describes hardware, models, links, servers (and `name[lo..hi]` families of
//! them), SLO classes, the workload, the objective with its linear constraints, the policy and the
//! simulator's ground-truth knobs. This crate parses `.perllm` files (and `.toml` files with the
//! same content), checks them, and lowers them to perllm-core's [`Scenario`]. Every problem is
//! reported with its file, line and column, in one pass; see [`Diagnostic`] and [`render`].
//!
//! ```
//! let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/paper.perllm")).unwrap();
//! let loaded = perllm_dsl::load_str("paper.perllm", &src, perllm_dsl::SourceKind::Perllm).unwrap();
//! assert_eq!(loaded.scenario.servers.len(), 6);
//! ```
//!
//! The language is documented in the crate's README.md.

pub mod ast;
pub mod diag;
pub mod files;
pub mod lower;
pub mod overrides;
pub mod parse;
mod toml_in;
pub mod units;

use diag::{DiagBuilder, Sources, codes};
pub use diag::{Diagnostic, Severity, render};
use perllm_core::Scenario;
use std::fmt;
use std::path::{Path, PathBuf};

/// Which surface syntax a source is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// The `.perllm` language.
    Perllm,
    /// The TOML twin.
    Toml,
}

impl SourceKind {
    /// By file extension (`.perllm` or `.toml`).
    pub fn from_path(path: &Path) -> Option<SourceKind> {
        match path.extension()?.to_str()? {
            "perllm" => Some(SourceKind::Perllm),
            "toml" => Some(SourceKind::Toml),
            _ => None,
        }
    }
}

/// A successfully loaded scenario, with the warnings found on the way.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The scenario; [`Scenario::build`] has accepted it.
    pub scenario: Scenario,
    /// Suspicious but legal input.
    pub warnings: Vec<Diagnostic>,
    /// Data files read while loading (series files), as resolved; the trace is not read then and
    /// is in the scenario's `workload.trace.path`.
    pub data_files: Vec<std::path::PathBuf>,
}

/// A scenario that could not be loaded: every error (and warning) found, in source order.
#[derive(Clone, Debug)]
pub struct LoadFailure {
    /// All diagnostics, errors and warnings.
    pub diagnostics: Vec<Diagnostic>,
}

impl LoadFailure {
    /// The errors only.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }
    /// Render all diagnostics (see [`render`]).
    pub fn render(&self, color: bool) -> String {
        render(&self.diagnostics, color)
    }
}

impl fmt::Display for LoadFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors().count();
        match self.errors().next() {
            Some(first) if n == 1 => f.write_str(&first.one_line()),
            Some(first) => write!(f, "{} (and {} more errors)", first.one_line(), n - 1),
            None => f.write_str("the scenario could not be loaded"),
        }
    }
}

impl std::error::Error for LoadFailure {}

/// Options for [`load_str_with`].
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Directory that relative trace and series paths are resolved against (default: as given,
    /// i.e. relative to the working directory).
    pub base_dir: Option<PathBuf>,
    /// `key=value` overrides (see [`overrides`]).
    pub overrides: Vec<(String, String)>,
}

/// Load a `.perllm` or `.toml` scenario file (by extension). Relative paths inside it are resolved
/// against the file's directory.
pub fn load_file(path: &Path) -> Result<Loaded, LoadFailure> {
    load_file_with_overrides(path, &[])
}

/// [`load_file`] with `key=value` overrides, e.g. `("workload.arrivals.rate", "8 /s")`; values are
/// written in the language. An unknown key or a value of the wrong unit is a diagnostic.
pub fn load_file_with_overrides(
    path: &Path,
    overrides: &[(String, String)],
) -> Result<Loaded, LoadFailure> {
    let name = path.display().to_string();
    let sources = Sources::default();
    let fail = |sources: &Sources, d: DiagBuilder| LoadFailure {
        diagnostics: vec![d.build(sources)],
    };
    let Some(kind) = SourceKind::from_path(path) else {
        let kinds = "scenario files end in `.perllm` (the language), `.toml` (its TOML twin) or, \
                     for the perllm CLI, `.json` (a serialised scenario, as `perllm export` writes)";
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let help = match diag::suggest(ext, ["perllm", "toml", "json"]) {
            Some(e) if !ext.is_empty() => {
                format!(
                    "did you mean `{}`? {kinds}",
                    path.with_extension(e).display()
                )
            }
            _ => kinds.to_string(),
        };
        return Err(fail(
            &sources,
            DiagBuilder::error(codes::IO, format!("{name}: not a scenario file")).help(help),
        ));
    };
    let bytes = match files::read(path, "scenario file", files::MAX_SCENARIO_BYTES) {
        Ok(b) => b,
        Err(e) => return Err(fail(&sources, DiagBuilder::error(codes::IO, e))),
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let bytes = e.as_bytes();
            let prefix = String::from_utf8_lossy(&bytes[..at]);
            let (line, col) = diag::line_col(&prefix, prefix.len());
            return Err(fail(
                &sources,
                DiagBuilder::error(
                    codes::IO,
                    format!(
                        "{name}:{line}:{col}: not UTF-8 text (byte 0x{:02x} at offset {at})",
                        bytes[at]
                    ),
                )
                .help("scenario files are UTF-8 text; is this a binary file?"),
            ));
        }
    };
    let opts = LoadOptions {
        base_dir: Some(path.parent().map(Path::to_path_buf).unwrap_or_default()),
        overrides: overrides.to_vec(),
    };
    load_inner(&name, text, kind, &opts)
}

/// Load a scenario from a string. `name` is shown in messages.
pub fn load_str(name: &str, src: &str, kind: SourceKind) -> Result<Loaded, LoadFailure> {
    load_inner(name, src.to_string(), kind, &LoadOptions::default())
}

/// Load a scenario from a string with a base directory and overrides.
pub fn load_str_with(
    name: &str,
    src: &str,
    kind: SourceKind,
    opts: &LoadOptions,
) -> Result<Loaded, LoadFailure> {
    load_inner(name, src.to_string(), kind, opts)
}

fn default_name(name: &str) -> String {
    Path::new(name)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or(name)
        .to_string()
}

fn load_inner(
    name: &str,
    text: String,
    kind: SourceKind,
    opts: &LoadOptions,
) -> Result<Loaded, LoadFailure> {
    let mut sources = Sources::default();
    let src = sources.add(name, text);
    let parsed = match kind {
        SourceKind::Perllm => parse::parse_file(&sources, src),
        SourceKind::Toml => toml_in::read(&sources, src),
    };
    let mut file = match parsed {
        Ok(f) => f,
        Err(diagnostics) => return Err(LoadFailure { diagnostics }),
    };
    let mut diags = Vec::new();
    if !opts.overrides.is_empty() {
        overrides::apply(&mut file, &mut sources, &opts.overrides, &mut diags);
    }
    let sources_copy = sources.clone();
    let mut lw = lower::Lowerer::new(sources, opts.base_dir.clone(), default_name(name));
    lw.diags = diags;
    let scenario = if lw.diags.iter().any(|d| d.is_error()) {
        None
    } else {
        lw.lower(&file)
    };
    if let Some(s) = &scenario
        && let Err(errs) = s.build()
    {
        // Rare: lower again, this time recording where each scenario path was written.
        let mut again =
            lower::Lowerer::new(sources_copy, opts.base_dir.clone(), default_name(name));
        again.want_index = true;
        let _ = again.lower(&file);
        for e in errs {
            let span = lookup_span(&again.index, &e.path);
            let mut d = DiagBuilder::error(codes::SCENARIO, format!("{}: {}", e.path, e.message));
            if let Some(sp) = span {
                d = d.label(sp, e.message.clone());
            }
            let d = d.build(&lw.sources);
            lw.diags.push(d);
        }
    }
    if lw.dropped > 0 {
        let d = DiagBuilder::error(
            codes::TRUNCATED,
            format!("{name}: {} more problems not shown", lw.dropped),
        )
        .help("fix the problems above and check again");
        let d = d.build(&lw.sources);
        lw.diags.push(d);
    }
    let mut diags = lw.diags;
    diags.sort_by_key(|d| {
        let src_order = d.source.as_ref().map(|_| 0).unwrap_or(1);
        let off = d.labels.first().map(|l| l.0.offset()).unwrap_or(usize::MAX);
        (src_order, d.location.as_ref().map(|l| l.0.clone()), off)
    });
    match scenario {
        Some(scenario) if !diags.iter().any(|d| d.is_error()) => Ok(Loaded {
            scenario,
            warnings: diags,
            data_files: lw.data_files,
        }),
        _ => Err(LoadFailure { diagnostics: diags }),
    }
}

fn lookup_span(
    index: &std::collections::HashMap<String, ast::Span>,
    path: &str,
) -> Option<ast::Span> {
    let mut p = path;
    loop {
        if let Some(s) = index.get(p) {
            return Some(*s);
        }
        match p.rfind('.') {
            Some(i) => p = &p[..i],
            None => return None,
        }
    }
}

/// What `perllm check FILE...` reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckOutcome {
    /// Everything to print: each file's diagnostics and a line per valid file.
    pub rendered: String,
    /// True when no file has an error.
    pub ok: bool,
    /// Number of errors over all files.
    pub errors: usize,
    /// Number of warnings over all files.
    pub warnings: usize,
}

/// Validate scenario files and render all their diagnostics.
pub fn check_files(paths: &[PathBuf], color: bool) -> CheckOutcome {
    let mut rendered = String::new();
    let (mut errors, mut warnings) = (0, 0);
    for p in paths {
        match load_file(p) {
            Ok(l) => {
                warnings += l.warnings.len();
                rendered.push_str(&render(&l.warnings, color));
                let s = &l.scenario;
                let w = if l.warnings.is_empty() {
                    String::new()
                } else {
                    format!(", {} warning(s)", l.warnings.len())
                };
                rendered.push_str(&format!(
                    "{}: ok ({} servers, {} models, {} SLO classes, policy `{}`{w})\n",
                    p.display(),
                    s.servers.len(),
                    s.models.len(),
                    s.slos.len(),
                    s.policy.name
                ));
            }
            Err(f) => {
                let e = f.errors().count();
                errors += e;
                warnings += f.diagnostics.len() - e;
                rendered.push_str(&f.render(color));
                rendered.push_str(&format!("{}: {e} error(s)\n", p.display()));
            }
        }
    }
    CheckOutcome {
        rendered,
        ok: errors == 0,
        errors,
        warnings,
    }
}
