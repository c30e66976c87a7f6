//! Unit tests of the table's analysis.
use super::*;

fn pt(load: f64, att: f64, good: f64, e: f64) -> Point {
    Point {
        load,
        offered_rps: load,
        seeds: 2,
        goodput_rps: good,
        goodput_std: 0.0,
        attainment: att,
        attainment_std: 0.0,
        energy_per_request_j: e,
        energy_transmission_j: 0.0,
        energy_inference_j: e,
        energy_idle_j: 0.0,
        energy_weighted_j: e * 10.0,
        per_seed: [(1, (att - 0.01, e)), (2, (att + 0.01, e))].into(),
    }
}

fn curve(policy: &str, pts: &[(f64, f64, f64, f64)]) -> Curve {
    Curve {
        policy: policy.into(),
        points: pts.iter().map(|&(l, a, g, e)| pt(l, a, g, e)).collect(),
    }
}

fn exp() -> Experiment {
    Experiment {
        offline: Vec::new(),
        name: "t".into(),
        scenario: "s".into(),
        load_key: "workload.arrivals.rate".into(),
        curves: vec![
            curve(
                "perllm",
                &[
                    (1.0, 0.99, 1.0, 50.0),
                    (2.0, 0.95, 1.9, 40.0),
                    (4.0, 0.9, 3.6, 30.0),
                ],
            ),
            curve(
                "cloud-only",
                &[
                    (1.0, 0.998, 1.0, 100.0),
                    (2.0, 0.92, 1.8, 80.0),
                    (4.0, 0.3, 1.2, 60.0),
                ],
            ),
            curve(
                "random",
                &[
                    (1.0, 0.8, 0.8, 200.0),
                    (2.0, 0.95, 0.8, 200.0),
                    (4.0, 0.1, 0.4, 200.0),
                ],
            ),
            curve(
                "true-costs",
                &[
                    (1.0, 1.0, 1.0, 40.0),
                    (2.0, 1.0, 2.0, 32.0),
                    (4.0, 0.95, 3.8, 25.0),
                ],
            ),
        ],
        bounds: vec![
            BoundPoint {
                load: 1.0,
                seeds: 2,
                goodput_rps: Some(1.0),
                attainment: Some(1.0),
                energy_per_request_j: Some(20.0),
                why_not: None,
            },
            BoundPoint {
                load: 2.0,
                seeds: 2,
                goodput_rps: Some(2.0),
                attainment: Some(1.0),
                energy_per_request_j: Some(20.0),
                why_not: None,
            },
            BoundPoint {
                load: 4.0,
                seeds: 2,
                why_not: Some("too large".into()),
                ..BoundPoint::default()
            },
        ],
    }
}

#[test]
fn sustained_load_needs_every_lower_load() {
    let e = exp();
    assert_eq!(sustained_load(e.curve("perllm").unwrap(), 0.9), Some(4.0));
    assert_eq!(
        sustained_load(e.curve("cloud-only").unwrap(), 0.9),
        Some(2.0)
    );
    // Meets 90% at 2 req/s but not at 1: never sustained.
    assert_eq!(sustained_load(e.curve("random").unwrap(), 0.9), None);
}

#[test]
fn reference_load_ratios_and_gaps() {
    let a = analyse(&exp(), 0.9);
    assert_eq!(a.reference_load, 2.0);
    assert_eq!(a.best_baseline.as_deref(), Some("cloud-only"));
    assert!(!a.fallback);
    let cloud = a.row("cloud-only").unwrap();
    assert!((cloud.perllm_goodput_ratio.unwrap() - 1.9 / 1.8).abs() < 1e-12);
    assert!((cloud.perllm_peak_ratio.unwrap() - 3.6 / 1.8).abs() < 1e-12);
    assert_eq!(cloud.peak_load, 2.0);
    let p = a.row("perllm").unwrap();
    assert_eq!(p.energy_vs_cloud_only, Some(0.5));
    assert!((a.true_costs_goodput_gap.unwrap() - (1.9 / 2.0 - 1.0)).abs() < 1e-12);
    assert!((a.true_costs_energy_gap.unwrap() - (40.0 / 32.0 - 1.0)).abs() < 1e-12);
    assert!((p.bound_gap.unwrap() - (1.9 / 2.0 - 1.0)).abs() < 1e-12);
    assert!((cloud.bound_gap.unwrap() - (1.8 / 2.0 - 1.0)).abs() < 1e-12);
    assert_eq!(a.bound.as_ref().unwrap().goodput_rps, Some(2.0));
    assert_eq!(a.best_baseline_attainment(), Some(("random", 0.95)));
    assert_eq!(a.by_load.len(), 3);
    assert_eq!(a.by_load[2].perllm, Some(0.9));
    assert_eq!(
        a.by_load[2].best_baseline,
        Some(("cloud-only".to_string(), 0.3))
    );
    assert_eq!(a.by_load[0].true_costs, Some(1.0));
    assert_eq!(a.by_load[0].bound, Some(1.0));
    assert_eq!(a.by_load[2].bound, None, "n/a at 4 req/s");
    assert_eq!(a.by_load[2].perllm_bound_gap, None);
    // The best goodput of any policy (true-costs at 2 and 4 req/s; a tie at 1 req/s keeps the
    // first), its gap to the bound, n/a where the bound is.
    assert_eq!(a.by_load[0].best_goodput, Some(("perllm".to_string(), 1.0)));
    assert_eq!(
        a.by_load[1].best_goodput,
        Some(("true-costs".to_string(), 2.0))
    );
    assert_eq!(a.by_load[1].bound_goodput, Some(2.0));
    assert_eq!(a.by_load[1].best_bound_gap, Some(0.0));
    assert_eq!(
        a.by_load[2].best_goodput,
        Some(("true-costs".to_string(), 3.8))
    );
    assert_eq!(a.by_load[2].best_bound_gap, None);
}

#[test]
fn the_tightness_table_compares_the_bound_with_the_best_policy_at_the_lightest_loads() {
    let mut e = exp();
    // At 2 req/s the best policy is 5% under the bound: not within 2%.
    e.bounds[1].goodput_rps = Some(2.0 / 0.95);
    let mut na = exp();
    na.name = "u".into();
    na.bounds[0].goodput_rps = None;
    na.bounds[0].why_not = Some("too large".into());
    // The offline reference, run at 2 req/s only: 2.084 req/s, 1% under the bound.
    e.offline = bound::read_offline(
        r#"{"schema": "perllm.offline", "points": [{"value": "2/s", "seeds": [
            {"seed": 1, "goodput_rps": 2.0, "bound_goodput_rps": 2.1},
            {"seed": 2, "goodput_rps": 2.16736842105, "bound_goodput_rps": 2.1}]}]}"#,
    )
    .unwrap();
    assert_eq!(e.offline[0].seeds, 2);
    let md = bound::tightness_markdown(&[analyse(&e, 0.9), analyse(&na, 0.9)]);
    assert!(
        md.contains("| t | 1.00 | 1.000, `perllm` | 1.000 | +0.0% | yes | — | — |"),
        "{md}"
    );
    assert!(
        md.contains("| t | 2.00 | 2.000, `true-costs` | 2.105 | -5.0% | no | 2.084 | -1.0% |"),
        "{md}"
    );
    assert!(
        md.contains("| u | 1.00 | 1.000, `perllm` | n/a | n/a | n/a | — | — |"),
        "{md}"
    );
    assert!(
        !md.contains("| t | 4.00"),
        "only the two lightest loads: {md}"
    );
}

#[test]
fn fallback_when_no_baseline_reaches_the_threshold() {
    let a = analyse(&exp(), 0.999);
    assert!(a.fallback);
    assert_eq!(a.reference_load, 1.0);
    assert_eq!(a.best_baseline, None);
}

#[test]
fn claims_pick_the_best_experiment() {
    let t = table(&[exp()], 0.9);
    // At L* = 2: PerLLM 1.9 vs cloud-only 1.8 and random 0.8.
    assert!(!t.claims[0].met);
    assert!((t.claims[0].best.as_ref().unwrap().0 - 1.9 / 1.8).abs() < 1e-12);
    assert!(t.claims[1].met, "{:?}", t.claims[1]);
    // At peak: 3.6 vs 1.8 and 0.8.
    assert!(t.claims[2].met);
    assert!(t.claims[3].met);
    // Energy at L*: 40 / 80.
    assert!(t.claims[4].met);
    let md = t.markdown();
    assert!(md.contains("Reference load L* = 2.00 req/s"), "{md}");
    assert!(md.contains("| **perllm** | 4.00 |"), "{md}");
    assert!(
        md.contains("Goodput bound at L* (no policy can beat it): 2.00 req/s"),
        "{md}"
    );
    assert!(
        md.contains("| 4.00 | 90% | 30% (cloud-only) | +60.0 pt | 95% | n/a | n/a |"),
        "{md}"
    );
    assert_eq!(t.csv().lines().count(), 5);
}

#[test]
fn reads_a_results_document() {
    let row = |policy: &str, rate: f64, att: f64| {
        serde_json::json!({
            "run": 0, "point": if rate == 2.0 { 0 } else { 1 }, "policy": policy, "seed": 1, "scenario_hash": "x",
            "arrived": 10, "offered_load_rps": rate, "goodput_rps": rate * att * 0.9,
            "deadline_attainment": att, "energy_per_request_j": 10.0,
            "energy_per_request_transmission_j": 1.0,
            "energy_per_request_inference_j": 6.0,
            "energy_per_request_idle_j": 3.0, "energy_weighted_j": 100.0,
            "workload.arrivals.rate": format!("{rate}/s")
        })
    };
    let doc = serde_json::json!({
        "schema": "perllm.results", "schema_version": 2, "kind": "sweep",
        "scenario": {"name": "paper-7b", "file": "paper-7b.perllm", "hash": "x"},
        "parameters": [{"key": "workload.arrivals.rate", "values": ["2", "1"]}],
        "rows": [row("perllm", 2.0, 0.9), row("cloud-only", 2.0, 0.8),
                 row("perllm", 1.0, 0.95), row("cloud-only", 1.0, 0.97),
                 row("perllm", 1.0, 0.85)],
        "bounds": [{"point": 0, "seed": 1, "bound": {"goodput_rps": 1.9, "attainment": 0.95,
                    "energy_min_per_request_j": 5.0}, "error": null}],
    });
    let e = Experiment::from_results("7B", &doc.to_string()).unwrap();
    assert_eq!(e.scenario, "paper-7b");
    assert_eq!(e.loads(), vec![1.0, 2.0]);
    assert_eq!(e.curves.len(), 2);
    let p1 = &e.curve("perllm").unwrap().points[0];
    assert_eq!(p1.seeds, 2);
    assert!((p1.attainment - 0.9).abs() < 1e-12);
    assert!((p1.goodput_rps - 0.9).abs() < 1e-12, "offered x attainment");
    let a = analyse(&e, 0.9);
    assert_eq!(a.reference_load, 1.0);
    // Rows of point 0 are at 2 req/s: the bound is there.
    assert_eq!(e.bounds.len(), 2);
    assert_eq!(e.bounds[1].load, 2.0);
    assert_eq!(e.bounds[1].goodput_rps, Some(1.9));
    assert_eq!(e.bounds[0].load, 1.0);
    assert_eq!(e.bounds[0].goodput_rps, None, "no bound for point 1: n/a");
    assert!(e.bounds[0].why_not.is_some());
    let err = Experiment::from_results("x", "{\"schema\": \"other\"}").unwrap_err();
    assert!(
        err.to_string().contains("not a perllm results file"),
        "{err}"
    );
    let err = Experiment::from_results("x", "not json").unwrap_err();
    assert!(err.to_string().starts_with("x: not valid JSON"), "{err}");
}

#[test]
fn paired_differences_energy_and_bound_gap_per_load() {
    let mut e = exp();
    // Seed 2 of random at load 1 differs: the paired differences are then -3 and +1 points.
    let r = e.curves.iter_mut().find(|c| c.policy == "random").unwrap();
    r.points[0]
        .per_seed
        .insert(2, (0.99 + 0.01 - 0.03 - 0.19, 200.0));
    e.curves.push(curve(
        "perllm{variant=paper}",
        &[
            (1.0, 0.5, 0.5, 1.0),
            (2.0, 0.5, 1.0, 1.0),
            (4.0, 0.5, 2.0, 1.0),
        ],
    ));
    assert_eq!(role("perllm{variant=paper}"), Role::Variant);
    let p = paired::paired(&e, 0.9);
    assert_eq!(p.baselines, vec!["cloud-only", "random"]);
    let l1 = &p.loads[0];
    let cloud = &l1.diffs[0].1;
    assert!(
        (cloud.mean - -0.8).abs() < 1e-9 && cloud.half_width.unwrap().abs() < 1e-9,
        "{cloud:?}"
    );
    let random = &l1.diffs[1].1;
    // Differences +19 (0.98 - 0.79) and +22 (1.00 - 0.78): sd 2.12, standard error 1.5.
    assert_eq!(random.n, 2);
    assert!((random.mean - 20.5).abs() < 1e-9, "{random:?}");
    assert!((random.half_width.unwrap() - 12.706 * 1.5).abs() < 1e-9);
    assert_eq!(l1.worst.as_ref().unwrap().0, "cloud-only");
    assert_eq!(l1.energy_vs_cloud_only, Some(0.5));
    assert_eq!(l1.bound_gap, Some(0.0));
    let l2 = &p.loads[1];
    assert!((l2.bound_gap.unwrap() - -0.05).abs() < 1e-9);
    assert_eq!(l2.energy_vs_cloud_only, Some(0.5));
    // Cloud-only misses 90% at load 4: no energy comparison; the bound is n/a there.
    assert_eq!(
        (p.loads[2].energy_vs_cloud_only, p.loads[2].bound_gap),
        (None, None)
    );
    assert_eq!(p.attainment_goal(), (3, 3));
    assert_eq!(p.energy_goal(), (2, 2));
    let md = paired::markdown(&p);
    assert!(md.contains("| 1.00 | -0.8 ± 0.0 | +20.5 ± 19.1 |"), "{md}");
    assert!(md.contains("— (cloud-only < 90%)"), "{md}");
    let sum = paired::summary_markdown(std::slice::from_ref(&p));
    assert!(
        sum.contains("| t | 3 of 3 | -0.8 ± 0.0 vs `cloud-only` at 1.00 req/s | 2 of 2 | 0.500x"),
        "{sum}"
    );
}

#[test]
fn offline_reference_files_are_checked() {
    for (text, want) in [
        ("{", "not valid JSON"),
        (
            r#"{"schema": "perllm.results"}"#,
            "not an offline reference file",
        ),
        (
            r#"{"schema": "perllm.offline", "points": [{"seeds": []}]}"#,
            "points[0]: no numeric",
        ),
        (
            r#"{"schema": "perllm.offline", "points": [{"value": "1/s", "seeds": [{"seed": 1}]}]}"#,
            "points[0]: seeds without \"goodput_rps\"",
        ),
    ] {
        let e = bound::read_offline(text).unwrap_err();
        assert!(e.contains(want), "{text}: {e}");
    }
}
