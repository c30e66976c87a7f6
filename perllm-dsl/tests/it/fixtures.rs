//! Snapshots: the lowered scenario of every valid fixture and the rendered diagnostics of every
//! invalid one.

use perllm_dsl::load_file;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixtures(dir: &str) -> Vec<PathBuf> {
    // Relative paths keep file names in the rendered diagnostics machine-independent.
    let rel = Path::new("tests/fixtures").join(dir);
    let abs = crate::common::crate_dir().join(&rel);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&abs)
        .unwrap()
        .map(|e| rel.join(e.unwrap().file_name()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("perllm" | "toml")
            )
        })
        .collect();
    v.sort();
    v
}

/// Round floats to 10 significant digits so snapshots do not depend on the last bit.
pub fn round_floats(v: &mut Value) {
    match v {
        Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap();
            if x.is_finite() {
                let r: f64 = format!("{x:.9e}").parse().unwrap();
                *v = serde_json::json!(r);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(round_floats),
        Value::Object(o) => o.values_mut().for_each(round_floats),
        _ => {}
    }
}

fn snapshot_name(p: &Path) -> String {
    let stem = p.file_stem().unwrap().to_str().unwrap();
    let ext = p.extension().unwrap().to_str().unwrap();
    format!("{stem}.{ext}")
}

#[test]
fn valid_fixtures_lower_to_their_snapshots() {
    let files = fixtures("valid");
    assert!(files.len() >= 8);
    for p in files {
        let loaded = load_file(&p)
            .unwrap_or_else(|f| panic!("{} should load:\n{}", p.display(), f.render(false)));
        let mut v = serde_json::to_value(&loaded.scenario).unwrap();
        round_floats(&mut v);
        let warnings = perllm_dsl::render(&loaded.warnings, false);
        insta::with_settings!({ snapshot_suffix => "", prepend_module_to_snapshot => true, omit_expression => true }, {
            insta::assert_json_snapshot!(format!("valid-{}", snapshot_name(&p)), v);
            if !loaded.warnings.is_empty() {
                insta::assert_snapshot!(format!("warnings-{}", snapshot_name(&p)), warnings);
            }
        });
    }
}

#[test]
fn invalid_fixtures_render_their_diagnostics() {
    let files = fixtures("invalid");
    assert!(files.len() >= 30, "only {} invalid fixtures", files.len());
    for p in files {
        let f = match load_file(&p) {
            Ok(_) => panic!("{} should not load", p.display()),
            Err(f) => f,
        };
        assert!(
            f.errors().count() > 0,
            "{}: failure without an error",
            p.display()
        );
        for d in f.errors() {
            assert!(d.code.starts_with("perllm::"));
        }
        insta::with_settings!({ prepend_module_to_snapshot => true, omit_expression => true }, {
            insta::assert_snapshot!(format!("invalid-{}", snapshot_name(&p)), f.render(false));
        });
    }
}

/// `utilization(x)`, the old spelling of `occupancy(x)`, lowers to the same constraint and warns.
#[test]
fn the_old_utilization_spelling_is_occupancy_with_a_warning() {
    let dir = crate::common::crate_dir().join("tests/fixtures/valid");
    let old = load_file(&dir.join("renamed-utilization.perllm")).expect("loads");
    let new = load_file(&dir.join("paper.perllm")).expect("loads");
    let codes: Vec<&str> = old.warnings.iter().map(|w| w.code).collect();
    assert_eq!(codes, ["perllm::renamed"]);
    assert!(new.warnings.is_empty());
    let quantities = |l: &perllm_dsl::Loaded| {
        l.scenario
            .objective
            .constraints
            .iter()
            .map(|c| c.terms.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(quantities(&old), quantities(&new));
    // Serialised scenarios written before the rename still read.
    let json = serde_json::to_string(&new.scenario)
        .unwrap()
        .replace("\"occupancy\"", "\"utilization\"");
    let back: perllm_core::Scenario = serde_json::from_str(&json).unwrap();
    assert_eq!(
        back.objective.constraints,
        new.scenario.objective.constraints
    );
}
