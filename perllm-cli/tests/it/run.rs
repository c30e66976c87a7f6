//! `perllm run`.

use crate::{SHORT, has, paper, paper_cmd, perllm_cmd, s, settings, tmp};
use serde_json::Value;

#[test]
fn table_report_is_pinned() {
    let out = paper("run", SHORT, &["--seed", "3"]);
    let text = out.ok();
    has(text, "\npolicy stats: ");
    // The policy's own counters change with the policy; the table around them is pinned.
    let mut st = settings(None);
    st.add_filter(r"(?m)^policy stats: .*$", "policy stats: [POLICY STATS]");
    st.bind(|| insta::assert_snapshot!("run_table", text));
    // Same scenario and seed: the same report.
    let again = paper("run", SHORT, &["--seed", "3"]);
    assert_eq!(again.ok(), text);
}

#[test]
fn json_report_records_provenance() {
    let out = paper("run", SHORT, &["--seed", "3", "-f", "json"]);
    let v: Value = serde_json::from_str(out.ok()).expect("valid JSON");
    assert_eq!(v["schema"], "perllm.report");
    assert_eq!(v["schema_version"], 2);
    assert_eq!(v["perllm_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["seed"], 3);
    assert_eq!(v["policy"]["name"], "perllm");
    assert_eq!(
        v["policy_params"]["exploration"], 0.5,
        "the scenario's parameters"
    );
    assert_eq!(v["policy"]["source"], "built-in");
    assert_eq!(v["cost_model"]["name"], "roofline");
    assert_eq!(v["scenario"]["file"], "paper.perllm");
    let hash = v["scenario"]["hash"].as_str().unwrap();
    assert!(hash.starts_with("sha256:") && hash.len() == 71, "{hash}");
    let r = &v["report"];
    assert_eq!(r["seed"], 3);
    assert!(r["arrived"].as_u64().unwrap() > 50);
    assert_eq!(
        r["arrived"].as_u64().unwrap(),
        r["completed"].as_u64().unwrap() + r["rejected"].as_u64().unwrap()
    );
    // Another seed is another workload, under the same scenario hash.
    let other = paper("run", SHORT, &["--seed", "4", "-f", "json"]);
    let w: Value = serde_json::from_str(other.ok()).unwrap();
    assert_eq!(w["scenario"]["hash"], v["scenario"]["hash"]);
    assert_ne!(w["report"]["arrived"], Value::Null);
    assert_ne!(w["report"], v["report"]);
}

/// Issue 17: one word, one meaning. The report says `busy_fraction` (busy time over the horizon),
/// never `utilization` (which the constraint language once used for batch-slot occupancy), and
/// goodput is per second of the arrival window, with the per-horizon rate kept under its own name.
#[test]
fn report_names_and_units_say_what_they_measure() {
    let out = paper("run", SHORT, &["--seed", "3", "-f", "json"]);
    let v: Value = serde_json::from_str(out.ok()).expect("valid JSON");
    let r = &v["report"];
    assert_eq!(r["schema_version"], 2);
    let text = out.ok();
    assert!(!text.contains("\"utilization\""), "{text}");
    for server in r["servers"].as_array().unwrap() {
        let busy = server["busy_fraction"].as_f64().expect("busy_fraction");
        let busy_s = server["busy_s"].as_f64().unwrap();
        let horizon = r["horizon_s"].as_f64().unwrap();
        assert!((busy - busy_s / horizon).abs() < 1e-9, "{server}");
    }
    let f = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} in {r}"));
    let met = r["deadline_met"].as_u64().unwrap() as f64;
    let completed = r["completed"].as_u64().unwrap() as f64;
    assert!(
        f("horizon_s") > f("duration_s"),
        "the run drains after the arrivals"
    );
    assert!((f("goodput_rps") - met / f("duration_s")).abs() < 1e-9);
    assert!((f("throughput_rps") - completed / f("duration_s")).abs() < 1e-9);
    assert!((f("goodput_horizon_rps") - met / f("horizon_s")).abs() < 1e-9);
    assert!((f("throughput_horizon_rps") - completed / f("horizon_s")).abs() < 1e-9);
    // goodput = offered load x attainment, so it can be read against the offered load.
    let offered = r["arrived"].as_u64().unwrap() as f64 / f("duration_s");
    assert!((f("goodput_rps") - offered * f("deadline_attainment")).abs() < 1e-9);

    let table = paper("run", SHORT, &["--seed", "3"]);
    let table = table.ok();
    has(table, "(per second of the 30.0 s arrival window, in which");
    has(table, "busy = share of the ");
    assert!(!table.contains("utilization"), "{table}");
}

#[test]
fn csv_is_one_tidy_row() {
    let out = paper("run", SHORT, &["--policy", "true-costs", "-f", "csv"]);
    let text = out.ok();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
    for col in [
        "run",
        "point",
        "policy",
        "seed",
        "scenario_hash",
        "goodput_rps",
        "energy_idle_j",
        "latency_p99_s",
    ] {
        assert!(
            header.iter().any(|h| h == col),
            "no column {col}: {header:?}"
        );
    }
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1);
    let policy = header.iter().position(|h| h == "policy").unwrap();
    assert_eq!(&rows[0][policy], "true-costs");
}

#[test]
fn out_dir_has_report_results_requests_and_decisions() {
    let dir = tmp();
    let out_dir = dir.path().join("run");
    let out = paper("run", SHORT, &["--out", s(&out_dir), "-f", "json"]);
    let stdout: Value = serde_json::from_str(out.ok()).unwrap();
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report, stdout, "report.json is what --format json prints");
    let arrived = report["report"]["arrived"].as_u64().unwrap();

    // One CSV row per request, every request ends (completed or rejected).
    let mut rdr = csv::Reader::from_path(out_dir.join("requests.csv")).unwrap();
    let header = rdr.headers().unwrap().clone();
    let status = header.iter().position(|h| h == "status").unwrap();
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    assert_eq!(rows.len() as u64, arrived);
    let completed = rows.iter().filter(|r| &r[status] == "completed").count() as u64;
    assert_eq!(completed, report["report"]["completed"].as_u64().unwrap());
    let mut ids: Vec<u64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len() as u64, arrived, "each request appears once");

    // One JSON object per decision, with the policy's note.
    let log = std::fs::read_to_string(out_dir.join("decisions.jsonl")).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert!(!lines.is_empty());
    let assigned = lines.iter().filter(|l| l["decision"] == "assign").count() as u64;
    let server_assigned: u64 = report["report"]["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["assigned"].as_u64().unwrap())
        .sum();
    assert_eq!(assigned, server_assigned);
    for l in &lines {
        for k in [
            "slot", "time_s", "request", "model", "slo", "decision", "server", "note",
        ] {
            assert!(l.get(k).is_some(), "decision line lacks `{k}`: {l}");
        }
    }
    assert!(
        lines.iter().any(|l| l["note"].is_object()),
        "perllm explains its decisions"
    );

    // results.json is a one-row results document.
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap())
            .unwrap();
    assert_eq!(results["schema"], "perllm.results");
    assert_eq!(results["kind"], "run");
    assert_eq!(results["rows"].as_array().unwrap().len(), 1);
}

#[test]
fn separate_log_files() {
    let dir = tmp();
    let d = dir.path().join("d.jsonl");
    let r = dir.path().join("nested/r.csv");
    let out = paper_cmd(
        "run",
        SHORT,
        &format!(
            "--policy true-costs --decisions {} --requests {} -q",
            s(&d),
            s(&r)
        ),
    );
    out.ok();
    assert!(std::fs::read_to_string(&d).unwrap().lines().count() > 10);
    assert!(
        std::fs::read_to_string(&r)
            .unwrap()
            .starts_with("request,status,")
    );
}

#[test]
fn json_scenarios_with_dotted_overrides() {
    let base =
        perllm_cmd("run perllm-cli/tests/fixtures/paper-30s.json --policy true-costs -f json -q");
    let more = perllm_cmd(
        "run perllm-cli/tests/fixtures/paper-30s.json --policy true-costs -f json -q --set workload.arrivals.rate=6",
    );
    let a: Value = serde_json::from_str(base.ok()).unwrap();
    let b: Value = serde_json::from_str(more.ok()).unwrap();
    assert!(b["report"]["arrived"].as_u64() > a["report"]["arrived"].as_u64());
    assert_ne!(a["scenario"]["hash"], b["scenario"]["hash"]);
}

#[test]
fn malformed_trace_rows_fail_the_run_unless_skipped() {
    let out = perllm_cmd("run perllm-cli/tests/fixtures/bad-trace.perllm -q");
    assert_eq!(out.code, 1, "{}", out.stderr);
    settings(None).bind(|| insta::assert_snapshot!("run_bad_trace", out.stderr));
    let out = perllm_cmd("run perllm-cli/tests/fixtures/bad-trace.perllm -q --skip-bad-rows");
    assert!(
        out.ok().contains("trace rows skipped as malformed: 1"),
        "{}",
        out.stdout
    );
}
