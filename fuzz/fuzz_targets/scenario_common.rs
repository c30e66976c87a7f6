//! What the two scenario targets share: load any bytes as a scenario of one kind and check the
//! outcome. Not a target itself.

use perllm_dsl::{LoadOptions, SourceKind, load_str_with};

/// Load `data` as a scenario called `name` of `kind`: no panic; a failure has an error and
/// renders; a success is a scenario perllm-core accepts (`load_str_with` already ends with
/// `Scenario::build()`; this checks it again).
pub fn check(name: &str, kind: SourceKind, data: &[u8]) {
    let src = String::from_utf8_lossy(data);
    // Relative paths resolve against examples/, as for the shipped scenarios (the seeds), so a
    // mutated `examples/azure-trace.perllm` still finds its trace and series files.
    let opts = LoadOptions {
        base_dir: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples").into()),
        overrides: Vec::new(),
    };
    match load_str_with(name, &src, kind, &opts) {
        Ok(l) => assert!(l.scenario.build().is_ok()),
        Err(f) => {
            assert!(f.errors().count() > 0);
            let _ = f.render(false);
        }
    }
}
