//! The input files of a command, so that no output overwrites one (see
//! [`crate::output::Outputs::refuse_inputs`]).

use crate::cli::SimArgs;
use crate::scenario::Loaded;
use perllm_core::Scenario;
use std::path::{Path, PathBuf};

/// Input files, each with what it is (`"the scenario"`, `"the trace"`, ...).
pub type Inputs = Vec<(String, PathBuf)>;

/// The files a simulating command reads: the scenario file and the data files it names (trace,
/// series), the cost model's table (`--cost-config '{"path": ...}'`) and the plugin libraries.
pub fn of_sim(loaded: &Loaded, scenario: &Scenario, sim: &SimArgs) -> Inputs {
    let mut v = of_scenario(loaded, scenario);
    if let Ok(serde_json::Value::Object(m)) =
        serde_json::from_str::<serde_json::Value>(&sim.cost_config)
        && let Some(serde_json::Value::String(p)) = m.get("path")
    {
        v.push(("the cost model's table".into(), PathBuf::from(p)));
    }
    for p in &sim.plugins.plugins {
        v.push(("a plugin library".into(), p.clone()));
        if p.is_dir()
            && let Ok(rd) = std::fs::read_dir(p)
        {
            for e in rd.flatten() {
                v.push(("a plugin library".into(), e.path()));
            }
        }
    }
    v
}

/// The scenario file and the data files it names (trace, series).
pub fn of_scenario(loaded: &Loaded, scenario: &Scenario) -> Inputs {
    let mut v: Inputs = vec![("the scenario".into(), loaded.path.clone())];
    v.extend(loaded.data_files.iter().cloned());
    if let Some(t) = &scenario.workload.trace {
        v.push(("the trace".into(), PathBuf::from(&t.path)));
    }
    v
}

/// Result files read by `merge` or `plot`.
pub fn parts(paths: &[PathBuf], what: &str) -> Inputs {
    paths
        .iter()
        .map(|p| (what.to_string(), p.clone()))
        .collect()
}

/// One input file.
pub fn one(path: &Path, what: &str) -> Inputs {
    vec![(what.to_string(), path.to_path_buf())]
}
