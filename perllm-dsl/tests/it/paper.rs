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

#[test]
fn server_endpoints_in_both_syntaxes() {
    let src = std::fs::read_to_string(examples_dir().join("paper.perllm")).unwrap();
    let with = src
        .replace(
            "  link = edge-lan\n",
            "  link = edge-lan\n  endpoint = \"http://10.0.0.{i}:8000\"\n  api_key_env = \"EDGE_KEY\"\n",
        )
        .replace("  link = wan\n", "  link = wan\n  endpoint = \"https://cloud.example:443/\"\n");
    let l = perllm_dsl::load_str("p.perllm", &with, perllm_dsl::SourceKind::Perllm).unwrap();
    let s = &l.scenario.servers;
    assert_eq!(s[0].endpoint.as_deref(), Some("http://10.0.0.1:8000"));
    assert_eq!(s[4].endpoint.as_deref(), Some("http://10.0.0.5:8000"));
    assert_eq!(s[4].api_key_env.as_deref(), Some("EDGE_KEY"));
    assert_eq!(s[5].endpoint.as_deref(), Some("https://cloud.example:443/"));
    assert_eq!(s[5].api_key_env, None);
    // The TOML twin reads the same keys.
    let toml = std::fs::read_to_string(examples_dir().join("paper.toml")).unwrap();
    let toml = toml.replacen(
        "link = \"wan\"",
        "link = \"wan\"\nendpoint = \"http://c:1\"\napi_key_env = \"K\"",
        1,
    );
    let t = perllm_dsl::load_str("p.toml", &toml, perllm_dsl::SourceKind::Toml).unwrap();
    let c = t
        .scenario
        .servers
        .iter()
        .find(|s| s.name == "cloud")
        .unwrap();
    assert_eq!(
        (c.endpoint.as_deref(), c.api_key_env.as_deref()),
        (Some("http://c:1"), Some("K"))
    );
    // A key in the scenario instead of a variable name, and a URL that is none, are errors.
    for bad in [
        "  api_key_env = \"sk-123-abc!\"\n",
        "  endpoint = \"10.0.0.5:8000\"\n",
    ] {
        let b = src.replace("  link = wan\n", &format!("  link = wan\n{bad}"));
        assert!(
            perllm_dsl::load_str("p.perllm", &b, perllm_dsl::SourceKind::Perllm).is_err(),
            "{bad}"
        );
    }
}
