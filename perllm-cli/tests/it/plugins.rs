//! `perllm plugins list` and running plugin policies and cost models.

use crate::{
    SHORT, has, kit_study, perllm, perllm_cmd, run_7b, s, settings, testkit, testkit_run, tmp,
};
use serde_json::Value;

#[test]
fn list_shows_builtins_and_bundled_plugins() {
    let out = perllm_cmd("plugins list");
    // Column widths follow the library's path, which differs between checkouts, and the bundled
    // library may be found in the binary's directory or its `deps/`: normalise both.
    let mut st = settings(None);
    st.add_filter(r"\[BIN_DIR\](/deps)?/libperllm_plugins\.so", "[BUNDLED]");
    st.add_filter(r" {2,}", "  ");
    st.add_filter(r"-{2,}", "--");
    st.bind(|| insta::assert_snapshot!("plugins_list", out.ok()));
    let out = perllm_cmd("plugins list --format json");
    let v: Value = serde_json::from_str(out.ok()).unwrap();
    let items = v.as_array().unwrap();
    for name in ["perllm", "true-costs"] {
        let p = items.iter().find(|i| i["name"] == name).expect(name);
        assert_eq!(p["kind"], "policy");
        assert_eq!(p["source"], "built-in");
        assert_eq!(p["abi"], Value::Null);
        assert_eq!(p["version"], env!("CARGO_PKG_VERSION"));
    }
    for name in perllm_plugins::PAPER_BASELINES
        .iter()
        .copied()
        .chain(["cloud-first"])
    {
        let p = items
            .iter()
            .find(|i| i["name"] == name)
            .unwrap_or_else(|| panic!("no bundled `{name}`"));
        assert_eq!(p["kind"], "policy");
        assert!(
            p["source"].as_str().unwrap().contains("perllm_plugins"),
            "{p}"
        );
        assert!(p["abi"].is_string(), "{p}");
    }
    assert!(
        items
            .iter()
            .any(|i| i["kind"] == "cost-model" && i["name"] == "roofline")
    );
}

#[test]
fn extra_plugin_libraries_are_listed_and_run() {
    let kit = testkit();
    let out = perllm(&["plugins", "list", "--plugin", s(&kit), "--format", "json"]);
    let v: Value = serde_json::from_str(out.ok()).unwrap();
    let t = v
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "testkit")
        .expect("testkit listed");
    assert_eq!(t["version"], "0.0.1");
    assert_eq!(t["source"], s(&kit));

    let out = perllm(&testkit_run(&kit, &["-f", "json"]));
    let r: Value = serde_json::from_str(out.ok()).unwrap();
    assert_eq!(r["policy"]["name"], "testkit");
    assert_eq!(r["policy"]["version"], "0.0.1");
    assert_eq!(r["policy"]["source"], s(&kit));
}

#[test]
fn plugin_failures_exit_1_and_bad_setup_exits_2() {
    let kit = testkit();
    let run = |extra: &[&str]| {
        let mut a = testkit_run(&kit, &["-q"]);
        a.extend(extra);
        crate::perllm_env(&a, &[("RUST_BACKTRACE", "0")])
    };
    let out = run(&["--param", "mode=panic", "--param", "after=3"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    out.stderr_has("panicked in `schedule`");
    let out = run(&["--param", "mode=bad-server", "--param", "after=2"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let out = run(&["--param", "mode=fail-create"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    out.stderr_has("cannot set up policy `testkit`");
    let out = perllm_cmd("plugins list --plugin no/such/lib.so");
    assert_eq!(out.code, 2);
    out.stderr_has("no/such/lib.so");
}

#[test]
fn cost_models_by_name_with_config() {
    let base = [
        "run",
        "examples/paper.perllm",
        "--set",
        SHORT,
        "--policy",
        "least-loaded",
        "-f",
        "json",
        "-q",
    ];
    let run = |extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend(extra);
        let out = perllm(&a);
        let v: Value = serde_json::from_str(out.ok()).unwrap();
        v
    };
    let a = run(&[]);
    let b = run(&[
        "--cost-model",
        "roofline",
        "--cost-config",
        "{\"step_overhead_ns\": 20000000}",
    ]);
    assert_eq!(a["cost_model"]["name"], "roofline");
    assert_ne!(
        a["report"]["latency_s"], b["report"]["latency_s"],
        "the overhead changes latencies"
    );
    let c = run(&["--cost-model", "plugin:roofline"]);
    assert!(
        c["cost_model"]["source"]
            .as_str()
            .unwrap()
            .contains("perllm_plugins")
    );
    let out = perllm(&[
        "run",
        "examples/paper.perllm",
        "--cost-config",
        "{\"nope\": 1}",
        "-q",
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
}

#[test]
fn slow_plugin_calls_are_reported_not_killed() {
    let kit = testkit();
    let run = |budget: &str| {
        let flag = format!("--call-budget={budget}");
        let extra = [
            "--param",
            "mode=sleep",
            "--param",
            "sleep_ms=3",
            "-q",
            "-f",
            "json",
        ];
        let mut a = testkit_run(&kit, &extra);
        a.push(&flag);
        perllm(&a)
    };
    // Every call sleeps 3 ms: over a 1 ms budget, each is counted and the run still completes.
    let out = run("1ms");
    let r: Value = serde_json::from_str(out.ok()).unwrap();
    let v = &r["report"]["policy_stats"]["values"];
    let calls = v["wallclock.plugin.schedule.calls"].as_f64().unwrap();
    assert!(calls >= 1.0, "{v}");
    assert_eq!(v["wallclock.plugin.call_budget_us"], 1000.0);
    assert_eq!(v["wallclock.plugin.schedule.over_budget"], calls);
    for needle in [
        "plugin policy `testkit`",
        s(&kit),
        "longer than its 1.00 ms call budget",
    ] {
        out.stderr_has(needle);
    }
    assert_eq!(r["report"]["completed"], r["report"]["arrived"]);
    // Within a generous budget nothing is reported.
    let out = run("10s");
    out.ok();
    assert!(!out.stderr.contains("call budget"), "{}", out.stderr);
    // A budget that is not a duration is a usage error.
    for bad in ["0ms", "-5ms", "5", "5 parsecs", "nan s", "2d"] {
        run(bad).fails(2, &["--call-budget"]);
    }
}

#[test]
fn compare_reports_slow_plugin_calls_once_per_policy() {
    let out = kit_study(
        "compare",
        SHORT,
        "testkit,perllm",
        "--seeds 1..2 --call-budget 1ns -q",
    );
    out.ok();
    assert_eq!(
        out.stderr.matches("plugin policy `testkit`").count(),
        1,
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("`perllm`"), "{}", out.stderr);
}

#[test]
fn a_bad_library_in_a_plugin_directory_is_reported_and_the_others_listed() {
    let dir = tempfile::tempdir().unwrap();
    let kit = testkit();
    std::fs::copy(&kit, dir.path().join(kit.file_name().unwrap())).unwrap();
    std::fs::write(dir.path().join("libaaa_broken.so"), "not a library").unwrap();
    let out = perllm(&["plugins", "list", "--plugin", s(dir.path())]);
    assert_ne!(out.code, 0, "{}", out.stderr);
    has(&out.stdout, "testkit");
    assert!(
        out.stderr
            .contains("warning: skipped a plugin library that failed to load")
            && out.stderr.contains("libaaa_broken.so")
            && out.stderr.contains("1 plugin library failed to load"),
        "{}",
        out.stderr
    );
    // A run with a policy of a good library still works, with the warning.
    let mut args = testkit_run(&kit, &[]);
    args[5] = s(dir.path());
    let run = perllm(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.stderr_has("libaaa_broken.so");
}

/// `cloud-first`'s decisions on a small run, pinned: with and without admission control, and its
/// parameters validated with the key named.
#[test]
fn cloud_first_decisions_are_pinned() {
    let dir = tmp();
    let mut pinned = String::new();
    for admission in ["none", "reject_infeasible"] {
        let d = dir.path().join(format!("{admission}.jsonl"));
        perllm(&[
            "run",
            "examples/paper-7b.perllm",
            "--set",
            "scenario.duration=8s",
            "--set",
            "workload.arrivals.rate=3/s",
            "--policy",
            "cloud-first",
            "--param",
            &format!("admission={admission}"),
            "--decisions",
            s(&d),
            "-q",
        ])
        .ok();
        pinned.push_str(&format!("admission = {admission}\n"));
        for line in std::fs::read_to_string(&d).unwrap().lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            pinned.push_str(&format!(
                "t={} request={} slo={} decision={} server={}\n",
                v["time_s"], v["request"], v["slo"], v["decision"], v["server"]
            ));
        }
    }
    settings(None).bind(|| insta::assert_snapshot!("cloud_first_decisions", pinned));
    for (param, want) in [
        (
            "admission=maybe",
            "parameter `admission` must be `none` or `reject_infeasible`, got `maybe`",
        ),
        ("slack=-1", "slack must be positive"),
        ("slak=1", "unknown parameter `slak`"),
    ] {
        let out = run_7b("cloud-first", &[param]);
        assert!(out.stderr.contains(want), "{param}: {}", out.stderr);
    }
}

#[test]
fn plugins_info_shows_flags_and_parameters() {
    let out = perllm_cmd("plugins info greedy");
    let t = out.ok();
    has(t, "wants-estimates, in-place");
    has(t, "slack (1.0):");
    has(t, "abi          1.3");
    let out = perllm_cmd("plugins info profile-table --format json");
    let v: Value = serde_json::from_str(out.ok()).unwrap();
    assert_eq!(v["kind"], "cost-model");
    assert!(v["params"].as_str().unwrap().contains("fallback (error)"));
    let out = perllm_cmd("plugins info perllm");
    assert!(out.ok().contains("exploration"), "{}", out.stdout);
    let out = perllm_cmd("plugins info greedyy");
    assert_ne!(out.code, 0);
    out.stderr_has("did you mean `greedy`");
}
