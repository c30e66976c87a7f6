//! The C plugin example (`examples/c-policy/`) builds with the system C compiler against
//! `perllm_plugin.h` and runs through the CLI like any plugin.

use super::*;
use std::process::Command;

/// Build `examples/c-policy/deadline_first.c` into `dir` as the Makefile does.
fn build_c_example(dir: &Path) -> PathBuf {
    let lib = dir.join(format!(
        "{}c_deadline_first{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    run_ok(
        Command::new(cc)
            .args([
                "-O2",
                "-std=c11",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-pedantic",
                "-shared",
                "-fPIC",
                "-fvisibility=hidden",
                "-I",
            ])
            .arg(root().join("perllm-plugin-abi/include"))
            .arg("-o")
            .arg(&lib)
            .arg(root().join("examples/c-policy/deadline_first.c"))
            .arg("-lm"),
        "building the C example",
    );
    lib
}

#[test]
fn the_c_example_builds_and_runs_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = build_c_example(tmp.path());

    let list = perllm(&["plugins", "list", "--plugin", s(&lib)]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    has(&list.stdout, "c-deadline-first");

    let run_c = |extra: &str| {
        perllm_cmd(&format!(
            "run examples/paper.perllm --set {SHORT} --plugin {} --policy c-deadline-first {extra}",
            s(&lib)
        ))
    };
    let run = run_c("--param slack=0.9 --format json");
    let doc: serde_json::Value = serde_json::from_str(run.ok()).unwrap();
    assert_eq!(doc["policy"]["name"], "c-deadline-first");
    assert_eq!(doc["policy"]["abi"], "1.3");
    let rep = &doc["report"];
    let completed = rep["completed"].as_u64().unwrap();
    assert!(completed > 10, "{completed}");
    let v = &rep["policy_stats"]["values"];
    // observe() saw every completion and stats() reported them.
    let met = v["c_deadline_first.met"].as_f64().unwrap();
    let missed = v["c_deadline_first.missed"].as_f64().unwrap();
    assert_eq!(met + missed, completed as f64, "{v}");
    assert_eq!(rep["deadline_met"].as_f64().unwrap(), met);
    assert!(v["c_deadline_first.placed"].as_f64().unwrap() >= completed as f64);

    // A bad parameter: the C plugin's own message, naming the plugin and `create`.
    let bad = run_c("--param slack=3");
    assert_ne!(bad.code, 0);
    assert!(
        bad.stderr.contains("slack must be a number in (0, 1]")
            && bad.stderr.contains("c-deadline-first")
            && bad.stderr.contains("create"),
        "{}",
        bad.stderr
    );
}
