//! Input files that are not what they claim (issue 21, items 6 and 11): devices, FIFOs and huge
//! sparse files as scenario, series, trace, profile table, merge part or plotted results fail at
//! once with a message saying what the file is; a trace scenario hashes the same from any working
//! directory; escape sequences in a trace header never reach the terminal raw. Device nodes are
//! made with `mknod` in a temporary directory, never the machine's /dev; every command runs under
//! a deadline (a hang fails the test instead of blocking the suite).

use crate::{Out, root, s, tmp, words};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Run `perllm args` from `cwd`, killed (and the test failed) after 60 s.
pub fn within(cwd: &Path, args: &[&str]) -> Out {
    let mut child = Command::new(env!("CARGO_BIN_EXE_perllm"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "300")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("`perllm {}` did not end within 60 s", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Make `name` in `dir`: a character device `c major minor`, a FIFO, or a 2 GiB sparse file.
fn node(dir: &Path, name: &str, kind: &str) -> bool {
    let p = dir.join(name);
    let ok = match kind {
        "zero" | "urandom" => {
            let minor = if kind == "zero" { "5" } else { "9" };
            Command::new("mknod")
                .arg(&p)
                .args(["c", "1", minor])
                .status()
                .is_ok_and(|s| s.success())
                && std::fs::File::open(&p).is_ok()
        }
        "fifo" => Command::new("mkfifo")
            .arg(&p)
            .status()
            .is_ok_and(|s| s.success()),
        _ => std::fs::File::create(&p)
            .and_then(|f| f.set_len(2 << 30))
            .is_ok(),
    };
    if !ok {
        eprintln!("SKIPPED: cannot make {kind} node {}", p.display());
    }
    ok
}

#[track_caller]
fn refused(out: &Out, needles: &[&str]) {
    assert_eq!(out.code, 2, "stderr:\n{}", out.stderr);
    for n in needles {
        assert!(
            out.stderr.contains(n),
            "stderr lacks `{n}`:\n{}",
            out.stderr
        );
    }
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}

const CHAR: &str = "is a character device, not a regular file";
const FIFO: &str = "is a FIFO (named pipe), not a regular file";

#[test]
fn special_and_huge_input_files_fail_fast() {
    let dir = tmp();
    let d = dir.path();
    let kinds = [
        ("zero", "zero"),
        ("urandom", "urandom"),
        ("fifo", "fifo"),
        ("huge", "sparse"),
    ];
    for (base, kind) in kinds {
        for ext in ["perllm", "json", "csv"] {
            if !node(d, &format!("{base}.{ext}"), kind) {
                return;
            }
        }
    }
    let at = |n: &str| d.join(n).display().to_string();
    let paper = std::fs::read_to_string(root().join("examples/paper.perllm")).unwrap();
    let azure = std::fs::read_to_string(root().join("examples/azure-trace.perllm")).unwrap();
    let start = Instant::now();

    // Scenario files, in the language and as JSON; `check` too.
    for (name, needle) in [
        ("zero.perllm", CHAR),
        ("urandom.perllm", CHAR),
        ("fifo.perllm", FIFO),
        (
            "huge.perllm",
            "is 2 GiB, more than the 256 MiB a scenario file may have",
        ),
        ("zero.json", CHAR),
        ("fifo.json", FIFO),
        ("huge.json", "is 2 GiB, more than the 256 MiB"),
    ] {
        refused(&within(d, &["run", name, "-q"]), &[name, needle]);
    }
    let out = within(d, &["check", "fifo.perllm"]);
    assert_eq!(out.code, 2);
    out.stderr_has(FIFO);

    // Series files.
    for (name, needle) in [
        ("zero.csv", CHAR),
        ("fifo.csv", FIFO),
        ("huge.csv", "is 2 GiB, more than the 64 MiB"),
    ] {
        let sc = d.join(format!("series-{name}.perllm"));
        let text = paper.replace(
            "link edge-lan { bandwidth = 100 Mbps +/- 20%,",
            &format!("link edge-lan {{ bandwidth = 100 Mbps, fluctuation = series(\"{name}\"),"),
        );
        assert_ne!(text, paper);
        std::fs::write(&sc, text).unwrap();
        refused(&within(d, &["run", s(&sc), "-q"]), &[&at(name), needle]);
    }

    // Traces: named for what they are, not "trace file not found" (and a FIFO does not block
    // the format sniffing); the JSON route reaches the runner's own check.
    for (name, needle) in [("zero.csv", CHAR), ("fifo.csv", FIFO)] {
        let sc = d.join(format!("trace-{name}.perllm"));
        let text = azure.replace("traces/azure-llm-2023-conv-10min.csv", name);
        std::fs::write(&sc, text).unwrap();
        let out = within(d, &["run", s(&sc), "-q"]);
        refused(&out, &[&format!("the trace file `{}` {needle}", at(name))]);
        assert!(!out.stderr.contains("not found"), "{}", out.stderr);
    }
    let mut json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("perllm-cli/tests/fixtures/paper-30s.json")).unwrap(),
    )
    .unwrap();
    json["workload"]["trace"] = serde_json::json!({"path": "fifo.csv", "format": "csv"});
    std::fs::write(d.join("trace.json"), json.to_string()).unwrap();
    refused(&within(d, &["run", "trace.json", "-q"]), &[FIFO]);

    // The profile table of the cost model.
    for (name, needle) in [
        ("zero.csv", "not a regular file"),
        ("fifo.csv", "not a regular file"),
        ("huge.csv", "more than the 64 MiB a profile table may have"),
    ] {
        let cfg = format!("{{\"path\": \"{}\"}}", at(name));
        let out = within(
            &root(),
            &[
                "run",
                "examples/paper.perllm",
                "--cost-model",
                "profile-table",
                "--cost-config",
                &cfg,
                "-q",
            ],
        );
        refused(&out, &[needle]);
    }

    // Results files: merge parts and plot input.
    for (name, needle) in [
        ("zero.json", CHAR),
        ("fifo.json", FIFO),
        (
            "huge.json",
            "is 2 GiB, more than the 512 MiB a results file may have",
        ),
    ] {
        let out = within(d, &["merge", name, name, "--out", "m.json"]);
        refused(&out, &[name, needle]);
        refused(
            &within(d, &["plot", name, "--out", "plots"]),
            &[name, needle],
        );
    }
    assert!(!d.join("m.json").exists() && !d.join("plots").exists());
    // Each case fails at once; all of them together well under a minute (debug build).
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
}

/// Identical shards of a trace scenario run from two working directories merge (the scenario
/// hash does not depend on how the trace's path was reached).
#[test]
fn trace_shards_from_two_directories_merge() {
    let dir = tmp();
    let part = |k: u32, cwd: &Path, file: &str| {
        let p = dir.path().join(format!("p{k}.json"));
        let line = format!(
            "compare {file} --set scenario.duration=20s --policies least-loaded,round-robin \
             --seeds 1 --shard {k}/2 --out {} -q",
            s(&p)
        );
        within(cwd, &words(&line)).ok();
        p
    };
    let p1 = part(1, &root(), "examples/azure-trace.perllm");
    let p2 = part(2, &root().join("examples"), "azure-trace.perllm");
    let hash = |p: &Path| -> String {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        v["scenario"]["hash"].as_str().unwrap().to_string()
    };
    assert_eq!(hash(&p1), hash(&p2));
    let merged = dir.path().join("m.json");
    within(
        &root(),
        &["merge", s(&p1), s(&p2), "--out", s(&merged), "-q"],
    )
    .ok();
}

/// Escape sequences in a trace's header (clear screen, set the terminal title, bell) are shown
/// as `\x1b`, never sent raw.
#[test]
fn escape_sequences_from_a_trace_never_reach_the_terminal() {
    let dir = tmp();
    let d = dir.path();
    std::fs::create_dir(d.join("traces")).unwrap();
    std::fs::write(
        d.join("traces/azure-llm-2023-conv-10min.csv"),
        "a,b\x1b[2J\x1b]0;pwned\x07,c\n1,2,3\n",
    )
    .unwrap();
    std::fs::copy(
        root().join("examples/azure-trace.perllm"),
        d.join("a.perllm"),
    )
    .unwrap();
    let out = within(d, &["run", "a.perllm", "-q"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(!out.stderr.contains('\x1b') && !out.stderr.contains('\x07'));
    out.stderr_has("\\x1b[2j\\x1b]0;pwned\\x07");
}
