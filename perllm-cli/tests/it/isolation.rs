//! Isolation in studies (`--isolate third-party`, opt-in): a third-party plugin that crashes
//! (segfault, abort, `exit`) or hangs ends its own run with a named error; every other run of the `compare` or `sweep` completes,
//! the failed runs are listed on stderr, in the table and in the results file, and the exit code
//! is 1.

use crate::{SHORT, kit_study, perllm, s, strings, testkit, testkit_run, tmp};

const FAULTS: [(&str, &str); 4] = [
    ("segfault", "signal 11 (SIGSEGV, segmentation fault)"),
    ("abort", "signal 6 (SIGABRT, abort)"),
    ("exit", "exited with status 3"),
    ("hang", "did not return within the 2s call timeout"),
];

#[test]
fn crashes_and_hangs_end_their_own_runs_and_the_study_goes_on() {
    let kit = testkit();
    let dir = tmp();
    let json = dir.path().join("cmp.json");
    let mut policies: Vec<String> = FAULTS
        .iter()
        .map(|(m, _)| format!("testkit{{mode={m},after=2}}"))
        .collect();
    policies.push("greedy".into());
    policies.push("testkit".into());
    let policies = policies.join(",");
    let o = kit_study(
        "compare",
        SHORT,
        &policies,
        &format!(
            "--seeds 1,2 --call-timeout 2s --isolate third-party --out {}",
            s(&json)
        ),
    );
    // The isolated policies are announced; the bundled greedy is not third-party.
    o.fails(1, &["run in separate worker processes", "testkit"]);
    o.stderr_has("8 of 12 runs failed");
    let kit_path = kit.canonicalize().unwrap();
    for (mode, how) in FAULTS {
        let policy = format!("testkit{{mode={mode},after=2}}");
        for seed in [1, 2] {
            let line = o
                .stderr
                .lines()
                .find(|l| l.contains(&format!("(policy {policy}, seed {seed})")))
                .unwrap_or_else(|| panic!("no line for {policy} seed {seed}:\n{}", o.stderr));
            for part in [
                "plugin `testkit`",
                &kit_path.display().to_string(),
                "`schedule`",
                "slot ",
                how,
            ] {
                assert!(line.contains(part), "`{part}` missing: {line}");
            }
        }
        // The table lists them too.
        assert!(
            o.stdout.contains(&format!("policy {policy}, seed 1")),
            "{}",
            o.stdout
        );
    }
    // The other runs completed and are in the summary and the file.
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = doc["rows"].as_array().unwrap();
    let ran: Vec<(&str, u64)> = rows
        .iter()
        .map(|r| (r["policy"].as_str().unwrap(), r["seed"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        ran,
        [("greedy", 1), ("greedy", 2), ("testkit", 1), ("testkit", 2)]
    );
    assert!(rows.iter().all(|r| r["completed"].as_u64().unwrap() > 0));
    let failed = doc["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 8);
    assert!(failed.iter().all(|f| {
        f["error"]
            .as_str()
            .unwrap()
            .contains(&kit_path.display().to_string())
    }));
    assert_eq!(strings(&doc["summary"], "policy"), ["greedy", "testkit"]);
}

#[test]
fn a_sweep_keeps_the_points_where_the_plugin_survives() {
    let o = kit_study(
        "sweep",
        "scenario.duration=20s,30s",
        "testkit{mode=segfault,after=2},least-loaded",
        "--seeds 1 --format json --isolate third-party",
    );
    assert_eq!(o.code, 1, "stderr:\n{}", o.stderr);
    let doc: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(doc["rows"].as_array().unwrap().len(), 2);
    let failed = doc["failed"].as_array().unwrap();
    assert_eq!(
        failed
            .iter()
            .map(|f| f["point"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [0, 1]
    );
    o.stderr_has("2 of 4 runs failed");
}

#[test]
fn without_isolation_the_default_a_crash_names_the_plugin_before_the_process_dies() {
    let kit = testkit();
    let o = kit_study(
        "compare",
        SHORT,
        "testkit{mode=segfault,after=2}",
        "--seeds 1",
    );
    assert_eq!(
        o.code, -1,
        "killed by the signal, not an exit code: {}",
        o.stderr
    );
    o.stderr_has(&format!(
            "perllm: fatal: SIGSEGV (segmentation fault) during a call of policy plugin `testkit` (`{}`), entry point `schedule`, slot ",
            kit.canonicalize().unwrap().display()
        ));
}

#[test]
fn run_isolates_only_when_asked() {
    let kit = testkit();
    let mut iso = testkit_run(&kit, &["--param", "mode=abort", "--param", "after=2"]);
    iso.extend(["--isolate", "always"]);
    perllm(&iso).fails(
        1,
        &[
            "crashed its isolated worker process in `schedule`",
            "SIGABRT",
        ],
    );
}
