//! `perllm compare`.

use crate::{SHORT, has, paper, perllm_cmd, s, settings, strings, tmp};
use serde_json::Value;

const POLICIES: &str = "perllm,true-costs,least-loaded";

#[test]
fn table_is_pinned() {
    let out = paper(
        "compare",
        SHORT,
        &["--policies", POLICIES, "--seeds", "1..2"],
    );
    settings(None).bind(|| insta::assert_snapshot!("compare_table", out.ok()));
}

#[test]
fn results_do_not_depend_on_jobs() {
    let run = |jobs: &str| {
        let out = paper(
            "compare",
            SHORT,
            &[
                "--policies",
                POLICIES,
                "--seeds",
                "1..3",
                "--jobs",
                jobs,
                "-f",
                "json",
            ],
        );
        out.ok().to_string()
    };
    let one = run("1");
    let two = run("2");
    let four = run("4");
    assert_eq!(one, two);
    assert_eq!(one, four);
    let v: Value = serde_json::from_str(&one).unwrap();
    assert_eq!(v["rows"].as_array().unwrap().len(), 9);
}

#[test]
fn summary_has_ratios_true_costs_and_bound_gaps() {
    let dir = tmp();
    let res = dir.path().join("cmp.json");
    let csv = dir.path().join("cmp.csv");
    paper(
        "compare",
        SHORT,
        &[
            "--policies",
            POLICIES,
            "--seeds",
            "1,2",
            "--reference",
            "least-loaded",
            "--out",
            s(&res),
            "--csv",
            s(&csv),
            "-q",
        ],
    )
    .ok();
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&res).unwrap()).unwrap();
    assert_eq!(v["schema"], "perllm.results");
    assert_eq!(v["reference"], "least-loaded");
    assert_eq!(v["seeds"], serde_json::json!([1, 2]));
    assert_eq!(v["runs"], 6);
    assert_eq!(v["shard"], Value::Null);
    let summary = v["summary"].as_array().unwrap();
    assert_eq!(summary.len(), 3);
    for row in summary {
        assert!(row["true_costs_energy_gap"].is_number(), "{row}");
        assert_eq!(row["seeds"], 2);
    }
    let ll = summary
        .iter()
        .find(|r| r["policy"] == "least-loaded")
        .unwrap();
    assert_eq!(ll["goodput_ratio"], 1.0);
    let tc = summary
        .iter()
        .find(|r| r["policy"] == "true-costs")
        .unwrap();
    assert_eq!(tc["true_costs_energy_gap"], 0.0);
    // The bound of each seed, and each policy's gap to it (never above it).
    let bounds = v["bounds"].as_array().unwrap();
    assert_eq!(bounds.len(), 2);
    for b in bounds {
        assert!(b["bound"]["goodput_rps"].as_f64().unwrap() > 0.0, "{b}");
        assert_eq!(b["error"], Value::Null);
    }
    for row in summary {
        let gap = row["bound_gap"].as_f64().unwrap();
        assert!((-1.0..=0.0).contains(&gap), "{row}");
        assert!(
            row["bound_goodput_rps"].as_f64().unwrap() >= row["goodput_rps_mean"].as_f64().unwrap()
        );
    }
    // Rows are the same in JSON and CSV.
    let rows = v["rows"].as_array().unwrap();
    let mut rdr = csv::Reader::from_path(&csv).unwrap();
    let recs: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    assert_eq!(recs.len(), rows.len());
    for (r, rec) in rows.iter().zip(&recs) {
        assert_eq!(rec[0], r["run"].to_string());
    }
}

#[test]
fn compare_runs_the_whole_file() {
    // `compare` with no --set runs the file as written (a JSON scenario of 30 s).
    let out = perllm_cmd(
        "compare perllm-cli/tests/fixtures/paper-30s.json --policies least-loaded --seeds 5 -f json",
    );
    let v: Value = serde_json::from_str(out.ok()).unwrap();
    assert_eq!(v["kind"], "compare");
    assert_eq!(v["parameters"], serde_json::json!([]));
    assert_eq!(v["rows"][0]["seed"], 5);
}

#[test]
fn the_old_oracle_name_runs_true_costs_with_a_note() {
    let out = paper(
        "compare",
        SHORT,
        &["--policies", "oracle", "--seeds", "1", "-f", "json"],
    );
    let v: Value = serde_json::from_str(out.ok()).unwrap();
    assert_eq!(v["rows"][0]["policy"], "true-costs");
    out.stderr_has("`oracle` is now called `true-costs`");
}

#[test]
fn a_bound_that_cannot_be_computed_is_n_a() {
    // The bound is derived for core's roofline cost model; with the plugin's it is n/a.
    let out = paper(
        "compare",
        SHORT,
        &[
            "--policies",
            "cloud-only",
            "--seeds",
            "1",
            "--cost-model",
            "plugin:roofline",
        ],
    );
    let text = out.ok();
    has(
        text,
        "bound: n/a (the bound is derived for core's roofline cost model only",
    );
    has(text, "n/a");
}

#[test]
fn one_policy_with_several_parameter_sets_in_one_study() {
    let out = paper(
        "compare",
        SHORT,
        &[
            "--policies",
            "least-loaded,ucb1,ucb1{exploration=0},epsilon-greedy{epsilon=1}",
            "--seeds",
            "1",
            "--cost-model",
            "plugin:roofline",
            "--cost-config",
            r#"{"step_overhead_ns": 250000}"#,
            "-f",
            "json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(out.ok()).unwrap();
    assert_eq!(
        strings(&v["policies"], "name"),
        [
            "least-loaded",
            "ucb1",
            "ucb1{exploration=0}",
            "epsilon-greedy{epsilon=1}"
        ]
    );
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[2]["policy"], "ucb1{exploration=0}");
    // The cost model's configuration is recorded.
    assert_eq!(v["cost_config"]["step_overhead_ns"], 250000);
    // The parameters reach the policy: a bad one fails before any run, naming it.
    let bad = paper(
        "compare",
        SHORT,
        &["--policies", "ucb1{explorashun=1}", "--seeds", "1"],
    );
    assert_ne!(bad.code, 0);
    bad.stderr_has("explorashun");
    let bad = perllm_cmd("compare examples/paper.perllm --policies ucb1{a=1");
    assert_ne!(bad.code, 0);
    bad.stderr_has("without its");
}
