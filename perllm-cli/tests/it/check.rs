//! `perllm check`.

use crate::{paper, perllm, perllm_cmd, settings};

#[test]
fn valid_files_pass() {
    let out = perllm_cmd("check examples/paper.perllm examples/paper.toml");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "");
    settings(None).bind(|| insta::assert_snapshot!("check_ok", out.stderr));
    // Quiet keeps diagnostics (none here) and drops the verdict.
    let out = perllm_cmd("check -q examples/paper.perllm");
    assert_eq!(out.code, 0);
    assert!(!out.stderr.contains("checked"), "{}", out.stderr);
}

#[test]
fn errors_are_diagnosed_with_exit_2() {
    let out = perllm_cmd("check perllm-cli/tests/fixtures/bad.perllm examples/paper.perllm");
    assert_eq!(out.code, 2);
    out.stderr_has("did you mean `cpu1`?");
    settings(None).bind(|| insta::assert_snapshot!("check_errors", out.stderr));
}

#[test]
fn json_scenarios_are_checked_too() {
    let out = perllm_cmd("check perllm-cli/tests/fixtures/paper-30s.json");
    assert_eq!(out.code, 0, "{}", out.stderr);
    // A run's report is not a scenario: check rejects it with the reason.
    let dir = crate::tmp();
    let report = dir.path().join("report.json");
    let out = paper("run", crate::SHORT, &["--format", "json", "-q"]);
    std::fs::write(&report, out.ok()).unwrap();
    let out = perllm(&["check", crate::s(&report)]);
    assert_eq!(out.code, 2);
    out.stderr_has("is not a valid scenario: unknown field");
}
