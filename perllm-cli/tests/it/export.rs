//! `perllm export`: the serialised scenario that `.json` scenarios and the scenario hash are.

use crate::{paper, perllm, perllm_cmd, s, tmp};

fn hash_line(report: &str) -> &str {
    report
        .lines()
        .find(|l| l.starts_with("scenario sha256:"))
        .unwrap_or_else(|| panic!("{report}"))
}

#[test]
fn an_exported_scenario_runs_as_the_original() {
    let dir = tmp();
    let json = dir.path().join("out/paper-5s.json");
    let out = paper("export", "scenario.duration=5s", &["--out", s(&json)]);
    out.ok();
    out.stderr_has("wrote ");
    let check = perllm(&["check", s(&json)]);
    check.ok();
    // Same scenario, same hash, same report.
    let a = perllm(&["run", s(&json)]);
    let b = paper("run", "scenario.duration=5s", &[]);
    assert_eq!(hash_line(a.ok()), hash_line(b.ok()));
    assert_eq!(
        a.ok().replace(&s(&json).to_string(), ""),
        b.ok().to_string(),
        "the same report"
    );
    // To standard output by default, the same text.
    let stdout = paper("export", "scenario.duration=5s", &[]);
    assert_eq!(stdout.ok(), std::fs::read_to_string(&json).unwrap());
}

#[test]
fn only_a_valid_scenario_is_exported() {
    let out = perllm_cmd("export perllm-cli/tests/fixtures/bad.perllm");
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stdout.is_empty());
    let out = perllm_cmd("export examples/paper.perllm --format yaml");
    assert_eq!(out.code, 2);
    out.stderr_has("json");
}
