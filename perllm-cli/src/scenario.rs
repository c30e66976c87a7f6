//! Loading scenario files: the one place the CLI talks to the scenario loaders.
//!
//! `.json` files are serialised [`Scenario`] values (what tools generate); every other file is
//! the scenario language, read by `perllm-dsl`. Overrides (`--set key=value`) address the
//! scenario by dotted path.

use crate::error::{CliError, Result};
use perllm_core::{Scenario, World};
use perllm_dsl::files::MAX_SCENARIO_BYTES;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A scenario read from a file.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The scenario.
    pub scenario: Scenario,
    /// The file it came from.
    pub path: PathBuf,
    /// Rendered warnings (empty if none).
    pub warnings: String,
    /// Data files the scenario read while loading (series files), with what each is.
    pub data_files: Vec<(String, PathBuf)>,
}

impl Loaded {
    /// Directory trace paths are relative to.
    pub fn base_dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    }

    /// The file name, for result files (never the full path, so shards on different machines
    /// agree).
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

fn is_json(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// [`load_limited`] for a command run from a terminal: the scenario's warnings are printed on
/// stderr.
pub fn load_and_warn(
    path: &Path,
    overrides: &[(String, String)],
    memory_limit: Option<u64>,
    term: &crate::term::Term,
) -> Result<Loaded> {
    let loaded = load_limited(path, overrides, memory_limit, term.color_stderr)?;
    if !loaded.warnings.is_empty() {
        term.eprint_rendered(&loaded.warnings);
    }
    Ok(loaded)
}

/// Load a scenario file, with `overrides` (`key`, `value`) applied in order.
/// The scenario key of the memory limit (`perllm_core::footprint`), as `--set` names it.
pub const MEMORY_KEY: &str = "sim.max_memory";

/// [`load`] with `--memory-limit`: when given, it sets the scenario's `sim.max_memory` (the one
/// memory limit, default 2 GiB, checked when the scenario is built: a scenario whose estimate
/// is above it is refused with the size it needs, before anything runs). Giving it together
/// with `--set sim.max_memory=...` is an error, not a silent choice.
pub fn load_limited(
    path: &Path,
    overrides: &[(String, String)],
    memory_limit: Option<u64>,
    color: bool,
) -> Result<Loaded> {
    let Some(limit) = memory_limit else {
        return load(path, overrides, color);
    };
    if let Some((k, v)) = overrides.iter().find(|(k, _)| k == MEMORY_KEY) {
        return Err(CliError::input(format!(
            "`--memory-limit` and `--set {k}={v}` both set the memory limit: give one"
        )));
    }
    // The scenario language's byte counts stop at 2^63: a limit that large is no limit.
    let value = if limit >= u64::MAX / 2 {
        "none".to_string()
    } else {
        format!("{limit} B")
    };
    let mut all = overrides.to_vec();
    all.push((MEMORY_KEY.to_string(), value));
    load(path, &all, color)
}

/// Load a scenario file, with `overrides` (`key`, `value`) applied in order.
pub fn load(path: &Path, overrides: &[(String, String)], color: bool) -> Result<Loaded> {
    if !path.exists() {
        return Err(CliError::input(format!(
            "scenario file `{}` does not exist",
            path.display()
        )));
    }
    if is_json(path) {
        let bytes = perllm_dsl::files::read(path, "scenario file", MAX_SCENARIO_BYTES)
            .map_err(CliError::input)?;
        let text = String::from_utf8(bytes).map_err(|e| {
            CliError::input(format!(
                "`{}` is not UTF-8 text (byte offset {})",
                path.display(),
                e.utf8_error().valid_up_to()
            ))
        })?;
        let mut value: Value = serde_json::from_str(&text)
            .map_err(|e| CliError::input(format!("`{}` is not valid JSON: {e}", path.display())))?;
        for (k, v) in overrides {
            let set = if k == MEMORY_KEY {
                // Serialised as `sim.max_memory_bytes`; the value as the language writes it.
                crate::util::parse_size(v)
                    .and_then(|n| set_path(&mut value, "sim.max_memory_bytes", &n.to_string()))
            } else {
                set_path(&mut value, k, v)
            };
            set.map_err(|m| CliError::input(format!("cannot apply `--set {k}={v}`: {m}")))?;
        }
        let scenario: Scenario = serde_json::from_value(value).map_err(|e| {
            CliError::input(format!("`{}` is not a valid scenario: {e}", path.display()))
        })?;
        let mut loaded = Loaded {
            scenario,
            path: path.to_path_buf(),
            warnings: String::new(),
            data_files: Vec::new(),
        };
        // Trace paths are relative to the scenario file, as in the scenario language.
        let base = loaded.base_dir();
        if let Some(t) = loaded.scenario.workload.trace.as_mut()
            && Path::new(&t.path).is_relative()
        {
            t.path = base.join(&t.path).to_string_lossy().into_owned();
        }
        return Ok(loaded);
    }
    dsl::load(path, overrides, color)
}

/// Apply the command line's `--seed`, policy and `--skip-bad-rows` to a scenario.
pub fn apply_cli(sc: &mut Scenario, seed: Option<u64>, policy: Option<&str>, skip_bad_rows: bool) {
    if let Some(s) = seed {
        sc.seed = s;
    }
    // Old names of built-in policies (`oracle` is now `true-costs`).
    let policy = policy.map(perllm_core::policies::canonical);
    let current = perllm_core::policies::canonical(&sc.policy.name).to_string();
    sc.policy.name = current;
    match policy {
        Some(n) if n != sc.policy.name => {
            sc.policy = perllm_core::spec::PolicySpec {
                name: n.to_string(),
                params: Default::default(),
            };
        }
        _ => {}
    }
    if skip_bad_rows && let Some(t) = sc.workload.trace.as_mut() {
        t.skip_bad_rows = true;
    }
}

/// Validate a loaded scenario into a [`World`]; errors name the file and every problem.
pub fn build(loaded: &Loaded, scenario: &Scenario) -> Result<World> {
    scenario.build().map_err(|errs| {
        let detail: String = errs.iter().map(|e| format!("  {e}\n")).collect();
        CliError::input(format!(
            "`{}` describes an invalid scenario ({} problem{})",
            loaded.path.display(),
            errs.len(),
            if errs.len() == 1 { "" } else { "s" }
        ))
        .with_detail(detail)
    })
}

/// Outcome of `perllm check`.
pub struct CheckOutcome {
    /// Rendered diagnostics and per-file lines.
    pub rendered: String,
    /// Errors found.
    pub errors: usize,
    /// Warnings found.
    pub warnings: usize,
}

/// Check scenario files without running them.
pub fn check(paths: &[PathBuf], color: bool) -> CheckOutcome {
    let (json, other): (Vec<PathBuf>, Vec<PathBuf>) =
        paths.iter().cloned().partition(|p| is_json(p));
    let mut out = CheckOutcome {
        rendered: String::new(),
        errors: 0,
        warnings: 0,
    };
    for p in &json {
        let res = load(p, &[], color).and_then(|l| build(&l, &l.scenario).map(|_| ()));
        if let Err(e) = res {
            out.errors += 1 + e
                .detail
                .as_ref()
                .map_or(0, |d| d.lines().count().saturating_sub(1));
            if let Some(d) = &e.detail {
                out.rendered.push_str(d);
            }
            out.rendered.push_str(&format!("error: {}\n", e.message));
        }
    }
    if !other.is_empty() {
        let o = dsl::check(&other, color);
        out.rendered.push_str(&o.rendered);
        out.errors += o.errors;
        out.warnings += o.warnings;
    }
    out
}

/// Set the value at dotted `path` in a serialised scenario. Segments index objects by key and
/// arrays by position or by the `name` of their elements (`servers.edge1.max_batch`). The value is
/// read as JSON if it parses (numbers, booleans, quoted strings, arrays, objects), else as a string.
pub fn set_path(root: &mut Value, path: &str, raw: &str) -> std::result::Result<(), String> {
    let new: Value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
    let segs: Vec<&str> = path.split('.').collect();
    if segs.iter().any(|s| s.is_empty()) {
        return Err(format!("`{path}` is not a dotted path"));
    }
    let mut cur = root;
    let mut walked = String::new();
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        let here = if walked.is_empty() {
            "the scenario".to_string()
        } else {
            format!("`{walked}`")
        };
        cur = match cur {
            Value::Object(map) => {
                if !map.contains_key(*seg) {
                    if last {
                        // Optional fields absent from the serialisation may be set.
                        map.insert(seg.to_string(), Value::Null);
                    } else {
                        let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
                        keys.sort_unstable();
                        return Err(format!(
                            "{here} has no field `{seg}` (fields: {})",
                            keys.join(", ")
                        ));
                    }
                }
                map.get_mut(*seg).expect("present")
            }
            Value::Array(items) => {
                let idx = match seg.parse::<usize>() {
                    Ok(n) if n < items.len() => n,
                    Ok(n) => {
                        return Err(format!(
                            "{here} has {} elements, not {}",
                            items.len(),
                            n + 1
                        ));
                    }
                    Err(_) => items
                        .iter()
                        .position(|it| it.get("name").and_then(Value::as_str) == Some(seg))
                        .ok_or_else(|| format!("{here} has no element named `{seg}`"))?,
                };
                &mut items[idx]
            }
            _ => return Err(format!("{here} is a value, it has no field `{seg}`")),
        };
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(seg);
    }
    *cur = new;
    Ok(())
}

/// The scenario-language loader (`perllm-dsl`): `.perllm` files and their `.toml` twin.
mod dsl {
    use super::{CheckOutcome, Loaded};
    use crate::error::{CliError, Result};
    use std::path::{Path, PathBuf};

    pub fn load(path: &Path, overrides: &[(String, String)], color: bool) -> Result<Loaded> {
        match perllm_dsl::load_file_with_overrides(path, overrides) {
            Ok(l) => Ok(Loaded {
                scenario: l.scenario,
                path: path.to_path_buf(),
                warnings: perllm_dsl::render(&l.warnings, color),
                data_files: l
                    .data_files
                    .into_iter()
                    .map(|p| ("a series file".to_string(), p))
                    .collect(),
            }),
            Err(f) => {
                let n = f.errors().count();
                let with = if overrides.is_empty() {
                    String::new()
                } else {
                    let o: Vec<String> =
                        overrides.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    format!(" with {}", o.join(", "))
                };
                Err(CliError::input(format!(
                    "`{}`{with} is not a valid scenario ({n} error{})",
                    path.display(),
                    if n == 1 { "" } else { "s" }
                ))
                .with_detail(f.render(color)))
            }
        }
    }

    pub fn check(paths: &[PathBuf], color: bool) -> CheckOutcome {
        let o = perllm_dsl::check_files(paths, color);
        CheckOutcome {
            rendered: o.rendered,
            errors: o.errors,
            warnings: o.warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_path_by_key_index_and_name() {
        let s = perllm_core::testbed::paper(2.0, 1_000_000_000);
        let mut v = serde_json::to_value(&s).unwrap();
        set_path(&mut v, "workload.arrivals.rate", "8").unwrap();
        set_path(&mut v, "servers.cloud.max_batch", "32").unwrap();
        set_path(&mut v, "servers.0.count", "2").unwrap();
        set_path(&mut v, "name", "renamed").unwrap();
        set_path(&mut v, "workload.max_requests", "10").unwrap();
        let back: Scenario = serde_json::from_value(v).unwrap();
        assert_eq!(
            back.workload.arrivals,
            perllm_core::spec::Arrivals::Poisson { rate: 8.0 }
        );
        assert_eq!(back.servers[5].max_batch, 32);
        assert_eq!(back.servers[0].count, 2);
        assert_eq!(back.name, "renamed");
        assert_eq!(back.workload.max_requests, Some(10));
    }

    #[test]
    fn set_path_errors_say_where() {
        let s = perllm_core::testbed::paper(2.0, 1_000_000_000);
        let mut v = serde_json::to_value(&s).unwrap();
        let e = set_path(&mut v, "workload.arivals.rate", "8").unwrap_err();
        assert!(e.contains("`workload` has no field `arivals`"), "{e}");
        let e = set_path(&mut v, "servers.edge9.count", "1").unwrap_err();
        assert!(e.contains("no element named `edge9`"), "{e}");
        let e = set_path(&mut v, "seed.x", "1").unwrap_err();
        assert!(e.contains("is a value"), "{e}");
    }
}
