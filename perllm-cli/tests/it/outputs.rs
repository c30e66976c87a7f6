//! Output files are all-or-nothing: a failed command (a plugin that panics or errs mid-run)
//! leaves any previous outputs byte-identical and no temporary files; a successful one replaces
//! them; an unwritable output path is a clear error naming it.

use crate::{Out, SHORT, perllm, perllm_env, s, testkit, testkit_run, tmp};
use std::collections::BTreeMap;
use std::path::Path;

/// Every file under `dir` (recursively, hidden ones included) with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let name = p.strip_prefix(dir).unwrap().display().to_string();
                m.insert(name, std::fs::read(&p).unwrap());
            }
        }
    }
    m
}

fn names(m: &BTreeMap<String, Vec<u8>>) -> Vec<&str> {
    m.keys().map(String::as_str).collect()
}

/// `perllm` without a backtrace on plugin panics.
fn quiet_run(args: &[&str]) -> Out {
    perllm_env(args, &[("RUST_BACKTRACE", "0")])
}

#[track_caller]
fn failed(out: &Out, needle: &str) {
    assert_eq!(out.code, 1, "stderr:\n{}", out.stderr);
    assert!(
        out.stderr.contains(needle),
        "stderr lacks `{needle}`:\n{}",
        out.stderr
    );
    assert!(!out.stderr.contains("perllm-cli/src"), "{}", out.stderr);
}

#[test]
fn failed_run_keeps_the_previous_outputs() {
    let kit = testkit();
    let dir = tmp();
    let run_dir = dir.path().join("run");
    let logs = dir.path().join("logs");
    let run = |extra: &[&str]| {
        let mut a = testkit_run(&kit, &["--out", s(&run_dir), "-q"]);
        a.extend(extra);
        quiet_run(&a)
    };
    run(&["--seed", "1"]).ok();
    let good = snapshot(dir.path());
    assert_eq!(
        names(&good),
        [
            "run/decisions.jsonl",
            "run/report.json",
            "run/requests.csv",
            "run/results.json"
        ]
    );
    assert!(good["run/requests.csv"].len() > 1000);
    let with_logs = [
        "--decisions",
        &format!("{}/d.jsonl", s(&logs)),
        "--requests",
        &format!("{}/r.csv", s(&logs)),
    ]
    .map(String::from);
    let with_logs: Vec<&str> = with_logs.iter().map(String::as_str).collect();
    let mut seed_one = vec!["--seed", "1"];
    seed_one.extend(&with_logs);
    run(&seed_one).ok();
    let good = snapshot(dir.path());
    assert_eq!(good.len(), 6, "{:?}", names(&good));

    // Policy failures after a few slots, cost-model failures after a few hundred calls: each
    // one mid-run, after the logs have received rows.
    let cost = [
        "--cost-model",
        "testkit-cost",
        "--cost-config",
        r#"{"mode": "panic", "after": 300}"#,
    ];
    let cost_err = [
        "--cost-model",
        "testkit-cost",
        "--cost-config",
        r#"{"mode": "error", "after": 300}"#,
    ];
    let cases: [(&[&str], &str); 6] = [
        (
            &["--param", "mode=panic", "--param", "after=3"],
            "panicked in `schedule`",
        ),
        (&["--param", "mode=error", "--param", "after=3"], "testkit"),
        (
            &["--param", "mode=bad-server", "--param", "after=3"],
            "testkit",
        ),
        (
            &["--param", "mode=panic-observe", "--param", "after=3"],
            "testkit",
        ),
        (&cost, "testkit-cost"),
        (&cost_err, "testkit-cost"),
    ];
    for (extra, needle) in cases {
        for logs in [&[][..], &with_logs[..]] {
            let mut a = vec!["--seed", "2"];
            a.extend(extra);
            a.extend(logs);
            let out = run(&a);
            failed(&out, needle);
            assert!(
                snapshot(dir.path()) == good,
                "{a:?} changed the outputs: {:?}",
                names(&snapshot(dir.path()))
            );
        }
    }

    // Successful runs replace every file (`--decisions`/`--requests` take the place of the
    // `--out` directory's logs, so two runs write all six).
    mark_stale(dir.path());
    let mut seed_two = vec!["--seed", "2"];
    seed_two.extend(&with_logs);
    run(&seed_two).ok();
    run(&["--seed", "2"]).ok();
    assert_replaced(dir.path(), &good);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["seed"], 2);
}

/// Overwrite every file under `dir` with `stale`.
fn mark_stale(dir: &Path) {
    for name in snapshot(dir).keys() {
        std::fs::write(dir.join(name), "stale").unwrap();
    }
}

/// The same files as `before`, none of them `stale` any more, each complete.
#[track_caller]
fn assert_replaced(dir: &Path, before: &BTreeMap<String, Vec<u8>>) {
    let now = snapshot(dir);
    assert_eq!(names(&now), names(before));
    for (name, bytes) in &now {
        assert!(bytes != b"stale", "{name} was not replaced");
        assert!(bytes.ends_with(b"\n"), "{name} is not complete");
    }
}

#[test]
fn failed_compare_keeps_the_previous_outputs() {
    let kit = testkit();
    let dir = tmp();
    let json = dir.path().join("cmp.json");
    let csv = dir.path().join("cmp.csv");
    let compare = |seeds: &str, cost_config: &str| {
        quiet_run(&[
            "compare",
            "examples/paper.perllm",
            "--set",
            SHORT,
            "--plugin",
            s(&kit),
            "--policies",
            "least-loaded,greedy",
            "--cost-model",
            "testkit-cost",
            "--cost-config",
            cost_config,
            "--seeds",
            seeds,
            "--jobs",
            "2",
            "--out",
            s(&json),
            "--csv",
            s(&csv),
            "-q",
        ])
    };
    let fine = r#"{"mode": "ok"}"#;
    compare("1..2", fine).ok();
    let good = snapshot(dir.path());
    assert_eq!(names(&good), ["cmp.csv", "cmp.json"]);
    for mode in ["panic", "error", "nan"] {
        let out = compare("3..4", &format!(r#"{{"mode": "{mode}", "after": 500}}"#));
        failed(&out, "testkit-cost");
        assert!(
            snapshot(dir.path()) == good,
            "mode {mode} changed the outputs"
        );
    }
    mark_stale(dir.path());
    compare("3..4", fine).ok();
    assert_replaced(dir.path(), &good);
}

#[test]
fn unwritable_outputs_are_named_before_the_run() {
    let dir = tmp();
    let file = dir.path().join("file");
    std::fs::write(&file, "keep").unwrap();
    let taken = dir.path().join("taken.json");
    std::fs::create_dir(&taken).unwrap();
    let under_file = file.join("x.json");
    let grid = crate::SMALL_COMPARE;
    let with = |base: &[&str], extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend(extra);
        perllm(&a)
    };
    let res = dir.path().join("res.json");
    with(&grid, &["--out", s(&res)]).ok();
    let res = s(&res);
    let run = ["run", "examples/paper.perllm", "--set", SHORT, "-q"];
    let is_dir = format!("cannot write `{}`: it is a directory", s(&taken));
    let not_dir = format!("`{}` is not a directory", s(&file));
    let no_mkdir = format!("cannot create the directory `{}`", s(&file.join("plots")));
    let cases: Vec<(Out, &str)> = vec![
        (with(&grid, &["--out", s(&taken)]), &is_dir),
        (with(&grid, &["--csv", s(&under_file)]), &not_dir),
        (with(&run, &["--requests", s(&taken)]), &is_dir),
        (with(&run, &["--decisions", s(&under_file)]), &not_dir),
        (perllm(&["merge", res, "--out", s(&under_file)]), &not_dir),
        (
            perllm(&["plot", res, "--out", s(&file.join("plots"))]),
            &no_mkdir,
        ),
    ];
    for (i, (out, needle)) in cases.iter().enumerate() {
        failed(out, needle);
        assert!(!out.stderr.contains("panicked"), "case {i}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "case {i}");
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"keep");
    assert_eq!(
        names(&snapshot(dir.path())),
        ["file", "res.json"],
        "no file was left behind"
    );

    // One file named for two outputs is bad usage.
    let twice = dir.path().join("twice");
    let out = with(&run, &["--decisions", s(&twice), "--requests", s(&twice)]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    out.stderr_has("named for two outputs");
    assert!(!twice.exists());

    // A read-only directory (only checkable without privileges: root writes anyway).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let ro = dir.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        if std::fs::write(ro.join("probe"), "").is_err() {
            let out = with(&run, &["--out", s(&ro)]);
            failed(
                &out,
                &format!(
                    "cannot write `{}`: permission denied",
                    s(&ro.join("report.json"))
                ),
            );
            assert_eq!(std::fs::read_dir(&ro).unwrap().count(), 0);
        } else {
            eprintln!("running with privileges: the read-only directory case is not checkable");
        }
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// An interrupt (SIGINT, as Ctrl-C sends; SIGTERM) during a run deletes the staged outputs and
/// exits with 130: the previous outputs stay byte-identical, no temporary file is left.
#[cfg(unix)]
#[test]
fn an_interrupted_run_leaves_the_previous_outputs() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let kit = testkit();
    let dir = tmp();
    let out_dir = dir.path().join("run");
    let args = |extra: &[&'static str]| {
        let mut a = testkit_run(&kit, &["--out", s(&out_dir), "-q"]);
        a.extend_from_slice(extra);
        a.iter().map(|x| x.to_string()).collect::<Vec<_>>()
    };
    perllm(&testkit_run(&kit, &["--out", s(&out_dir), "-q"])).ok();
    let before = snapshot(&out_dir);
    assert_eq!(names(&before).len(), 4, "{:?}", names(&before));

    for signal in ["INT", "TERM"] {
        // Each schedule call sleeps 20 ms: the run takes several seconds.
        let child = Command::new(env!("CARGO_BIN_EXE_perllm"))
            .args(args(&["--param", "mode=sleep", "--param", "sleep_ms=20"]))
            .current_dir(crate::root())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until the outputs are staged (the temporaries exist), then interrupt.
        let start = Instant::now();
        while snapshot(&out_dir).len() == before.len() {
            assert!(start.elapsed() < Duration::from_secs(30), "no temporaries");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(200));
        crate::signal(&child, signal);
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "{signal}: {stderr}");
        assert!(stderr.contains("interrupted"), "{signal}: {stderr}");
        assert_eq!(snapshot(&out_dir), before, "{signal}");
    }
}
