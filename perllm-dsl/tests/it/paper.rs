//! The example must lower to exactly the paper testbed.

use crate::common::examples_dir;
use perllm_core::spec::SECOND;
use perllm_core::testbed;
use perllm_dsl::{SourceKind, load_file, load_str};

#[test]
fn paper_perllm_lowers_to_the_testbed() {
    let loaded = load_file(&examples_dir().join("paper.perllm"))
        .unwrap_or_else(|f| panic!("{}", f.render(false)));
    assert_eq!(loaded.scenario, testbed::paper(6.0, 600 * SECOND));
    assert!(
        loaded.warnings.is_empty(),
        "{}",
        perllm_dsl::render(&loaded.warnings, false)
    );
}

#[test]
fn paper_toml_twin_gives_the_same_scenario() {
    let dsl = load_file(&examples_dir().join("paper.perllm"))
        .unwrap_or_else(|f| panic!("{}", f.render(false)));
    let toml = load_file(&examples_dir().join("paper.toml"))
        .unwrap_or_else(|f| panic!("{}", f.render(false)));
    assert_eq!(dsl.scenario, toml.scenario);
    assert!(toml.warnings.is_empty());
}

#[test]
fn paper_from_a_string_needs_no_directory() {
    let src = std::fs::read_to_string(examples_dir().join("paper.perllm")).unwrap();
    let loaded = load_str("paper.perllm", &src, SourceKind::Perllm).unwrap();
    assert_eq!(loaded.scenario, testbed::paper(6.0, 600 * SECOND));
}

#[test]
fn every_field_has_a_toml_twin() {
    let dir = crate::common::crate_dir().join("tests/fixtures/valid");
    let dsl = load_file(&dir.join("all-features.perllm"))
        .unwrap_or_else(|f| panic!("{}", f.render(false)));
    let toml =
        load_file(&dir.join("all-features.toml")).unwrap_or_else(|f| panic!("{}", f.render(false)));
    assert_eq!(dsl.scenario, toml.scenario);
}
