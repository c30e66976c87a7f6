//! Shared helpers for perllm's cross-crate tests: the workspace's example scenarios, loaded
//! through the scenario language and run through the simulator.
//!
//! End-to-end tests of the `perllm` binary live in `perllm-cli/tests/it/` (cargo names the
//! binary only to its own package's tests, in `CARGO_BIN_EXE_perllm`).

use perllm_core::report::Report;
use perllm_core::workload::{Reader, source_for};
use perllm_core::{Policy, Scenario, World};
use std::path::{Path, PathBuf};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// Every scenario file in `examples/` (`.perllm` and `.toml`), sorted.
pub fn example_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(workspace_root().join("examples"))
        .expect("examples/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("perllm") | Some("toml")
                )
        })
        .collect();
    v.sort();
    v
}

/// Load a scenario file through the scenario language, panicking with its diagnostics.
pub fn load(path: &Path) -> Scenario {
    match perllm_dsl::load_file(path) {
        Ok(l) => l.scenario,
        Err(f) => panic!("{} does not load:\n{}", path.display(), f.render(false)),
    }
}

fn open(path: &str) -> std::io::Result<Reader> {
    Ok(Box::new(std::io::BufReader::new(std::fs::File::open(
        path,
    )?)))
}

/// Run `policy` on `world` with the roofline cost model and the world's workload (synthetic or
/// trace, opened from disk as the CLI does).
pub fn run(world: &World, policy: &mut dyn Policy) -> Report {
    let opener: &dyn Fn(&str) -> std::io::Result<Reader> = &open;
    let mut source = source_for(world, opener).expect("the workload opens");
    let cost = perllm_core::Roofline::default();
    perllm_core::run(world, policy, &cost, source.as_mut(), &mut []).expect("the run succeeds")
}
