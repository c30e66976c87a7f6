//! `admission = reject_infeasible`, the option perllm adds to every policy.

use crate::{perllm, perllm_cmd, run_7b, s, tmp};
use serde_json::Value;

/// The paper-7b deployment overloaded (12 requests/s for 30 s): some requests are predicted to
/// miss wherever a policy puts them.
const OVERLOAD: [&str; 4] = [
    "--set",
    "scenario.duration=30s",
    "--set",
    "workload.arrivals.rate=12/s",
];

#[test]
fn every_bundled_baseline_takes_admission_in_compare() {
    // The paper's baselines and cloud-first: the bundled policies without admission of their own.
    let mut policies = perllm_plugins::PAPER_BASELINES.to_vec();
    policies.push("cloud-first");
    let list: Vec<String> = policies
        .iter()
        .flat_map(|p| [p.to_string(), format!("{p}{{admission=reject_infeasible}}")])
        .collect();
    let list = list.join(",");
    let mut args = vec!["compare", "examples/paper-7b.perllm"];
    args.extend(OVERLOAD);
    args.extend(["--policies", &list, "--seeds", "1", "-f", "json", "-q"]);
    let out = perllm(&args);
    let v: Value = serde_json::from_str(out.ok()).unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2 * policies.len());
    let row = |name: &str| rows.iter().find(|r| r["policy"] == name).unwrap();
    for p in policies {
        let (off, on) = (row(p), row(&format!("{p}{{admission=reject_infeasible}}")));
        let n = |r: &Value, k: &str| r[k].as_u64().unwrap();
        assert_eq!(n(off, "arrived"), n(on, "arrived"), "{p}");
        // Under this overload every policy puts some requests where they are predicted to miss:
        // admission control refuses them; without it nothing is refused.
        assert!(n(on, "rejected") > n(off, "rejected"), "{p}: {off} {on}");
    }
    // Where placement already avoids predicted misses, admission only refuses what no server
    // can serve in time, and attainment rises: greedy.
    let att = |n: &str| row(n)["deadline_attainment"].as_f64().unwrap();
    assert!(
        att("greedy{admission=reject_infeasible}") > att("greedy"),
        "{} vs {}",
        att("greedy{admission=reject_infeasible}"),
        att("greedy")
    );
}

#[test]
fn the_scenario_policy_block_takes_admission() {
    let dir = tmp();
    let src = std::fs::read_to_string(crate::root().join("examples/paper-7b.perllm")).unwrap();
    let at = src.find("policy perllm {").unwrap();
    let mut sc = src[..at].to_string();
    sc.push_str("policy least-loaded {\n  admission = reject_infeasible\n}\n");
    let path = dir.path().join("admission.perllm");
    std::fs::write(&path, &sc).unwrap();
    let mut args = vec!["run", s(&path)];
    args.extend(OVERLOAD);
    args.extend(["-f", "json", "-q"]);
    let out = perllm(&args);
    let r: Value = serde_json::from_str(out.ok()).unwrap();
    let values = &r["report"]["policy_stats"]["values"];
    let rejected = values["admission.rejected"].as_f64().unwrap();
    assert!(rejected > 0.0, "{values}");
    assert!(values["admission.checked"].as_f64().unwrap() > rejected);
    assert_eq!(
        r["report"]["rejected_by_reason"]["policy"]
            .as_f64()
            .unwrap(),
        rejected
    );
}

#[test]
fn a_bad_admission_value_is_named() {
    for (policy, value) in [
        ("greedy", "admission=maybe"),
        ("cloud-only", "admission=1"),
        ("perllm", "admission=yes"),
    ] {
        let out = run_7b(policy, &[value]);
        assert_ne!(out.code, 0, "{policy}");
        assert!(
            out.stderr
                .contains("parameter `admission` must be `none` or `reject_infeasible`"),
            "{policy}: {}",
            out.stderr
        );
    }
}

#[test]
fn plugins_info_lists_admission_for_every_policy() {
    for p in [
        "cloud-only",
        "greedy",
        "cloud-first",
        "perllm",
        "true-costs",
    ] {
        let out = perllm(&["plugins", "info", p]);
        let t = out.ok();
        assert!(t.contains("admission (none):"), "{p}: {t}");
    }
    // Cost models do not take it.
    let t = perllm_cmd("plugins info profile-table").ok().to_string();
    assert!(!t.contains("admission"), "{t}");
}
