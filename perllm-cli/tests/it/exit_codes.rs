//! Exit codes (0 ok, 1 a run failed, 2 bad usage or invalid input) and one-sentence errors.

use crate::{SHORT, perllm, perllm_env, s, settings, tmp};

#[track_caller]
fn fails(args: &[&str], code: i32, needle: &str) -> String {
    let out = perllm(args);
    assert_eq!(out.code, code, "{args:?}: stderr:\n{}", out.stderr);
    assert!(
        out.stderr.contains(needle),
        "{args:?}: stderr lacks `{needle}`:\n{}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "{args:?}: errors go to stderr only");
    out.stderr
}

#[test]
fn usage_errors_exit_2() {
    fails(&[], 2, "Usage: perllm");
    fails(&["frobnicate"], 2, "unrecognized subcommand");
    fails(&["run"], 2, "required");
    fails(
        &["run", "examples/paper.perllm", "--format", "xml"],
        2,
        "invalid value 'xml'",
    );
    fails(
        &["compare", "examples/paper.perllm", "--shard", "4/3"],
        2,
        "K must be in 1..=N",
    );
    fails(&["sweep", "examples/paper.perllm"], 2, "--set");
    fails(
        &["sweep", "examples/paper.perllm", "--set", "rate"],
        2,
        "key=v1,v2",
    );
}

#[test]
fn invalid_input_exits_2_with_one_sentence() {
    let cases: &[(&str, &[&str])] = &[
        ("err_missing_file", &["run", "no/such.perllm"]),
        (
            "err_unknown_policy",
            &["run", "examples/paper.perllm", "--policy", "perlm"],
        ),
        (
            "err_unknown_cost_model",
            &["run", "examples/paper.perllm", "--cost-model", "nope"],
        ),
        (
            "err_bad_seeds",
            &["compare", "examples/paper.perllm", "--seeds", "5..1"],
        ),
        (
            "err_duplicate_policy",
            &[
                "compare",
                "examples/paper.perllm",
                "--policies",
                "perllm,perllm",
            ],
        ),
        (
            "err_reference_not_run",
            &[
                "compare",
                "examples/paper.perllm",
                "--policies",
                "perllm",
                "--reference",
                "true-costs",
            ],
        ),
        (
            "err_bad_override",
            &[
                "run",
                "examples/paper.perllm",
                "--set",
                "workload.arrivals.rat=2/s",
            ],
        ),
        (
            "err_zero_jobs",
            &["compare", "examples/paper.perllm", "--jobs", "0"],
        ),
        ("err_not_results", &["plot", "examples/paper.perllm"]),
    ];
    for (name, args) in cases {
        let out = perllm(args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty());
        let last = out.stderr.lines().last().unwrap_or_default();
        assert!(last.starts_with("error: "), "{args:?}: {}", out.stderr);
        settings(None).bind(|| insta::assert_snapshot!(*name, out.stderr));
    }
}

#[test]
fn results_files_are_validated() {
    let dir = tmp();
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        "{\"schema\": \"perllm.results\", \"schema_version\": 99}",
    )
    .unwrap();
    fails(&["plot", s(&bad)], 2, "schema version 99");
    std::fs::write(&bad, "not json").unwrap();
    fails(
        &["merge", s(&bad), "--out", s(&dir.path().join("m.json"))],
        2,
        "it is not JSON",
    );
}

#[test]
fn failed_runs_and_outputs_exit_1() {
    fails(
        &["run", "perllm-cli/tests/fixtures/bad-trace.perllm", "-q"],
        1,
        "row 22",
    );
    fails(
        &[
            "compare",
            "perllm-cli/tests/fixtures/bad-trace.perllm",
            "--policies",
            "true-costs",
            "--seeds",
            "1",
            "-q",
        ],
        1,
        "row 22",
    );
    let dir = tmp();
    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    // A directory cannot be created under a regular file.
    fails(
        &[
            "run",
            "examples/paper.perllm",
            "--set",
            SHORT,
            "--out",
            s(&file.join("out")),
            "-q",
        ],
        1,
        "cannot write",
    );
}

#[test]
fn colour_follows_the_flag_and_no_color() {
    let args = ["run", "examples/paper.perllm", "--policy", "nope"];
    let plain = perllm(&args);
    assert!(
        !plain.stderr.contains('\x1b'),
        "NO_COLOR output has escapes"
    );
    let mut forced: Vec<&str> = args.to_vec();
    forced.extend(["--color", "always"]);
    let coloured = perllm_env(&forced, &[]);
    assert!(
        coloured.stderr.contains("\x1b[1;31merror"),
        "{:?}",
        coloured.stderr
    );
    let mut never = args.to_vec();
    never.extend(["--color", "never"]);
    assert!(
        !perllm_env(&never, &[("NO_COLOR", "")])
            .stderr
            .contains('\x1b')
    );
}

#[test]
fn stdout_closed_early_is_not_an_error() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_perllm"))
        .args(["completions", "bash"])
        .current_dir(crate::root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert!(status.code() == Some(0), "exit {status:?}: {err}");
}
