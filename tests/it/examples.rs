//! Every example scenario loads, survives the JSON round trip the CLI relies on (JSON scenario
//! files and scenario hashes), and runs deterministically with the built-in policies.

use perllm_core::Scenario;
use perllm_core::spec::SECOND;
use perllm_tests::{example_files, load, run};

#[test]
fn there_are_examples() {
    let files = example_files();
    assert!(
        files.iter().any(|f| f.ends_with("paper.perllm")),
        "{files:?}"
    );
}

#[test]
fn examples_round_trip_through_json() {
    for f in example_files() {
        let s = load(&f);
        let json = serde_json::to_string(&s).unwrap();
        let back: Scenario = serde_json::from_str(&json)
            .unwrap_or_else(|e| panic!("{}: the JSON form does not read back: {e}", f.display()));
        assert_eq!(
            back,
            s,
            "{}: JSON round trip changed the scenario",
            f.display()
        );
        // Canonical: serialising again gives the same bytes (what the scenario hash relies on).
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
    }
}

#[test]
fn paper_twins_agree() {
    let root = perllm_tests::workspace_root();
    let a = load(&root.join("examples/paper.perllm"));
    let b = load(&root.join("examples/paper.toml"));
    assert_eq!(
        a, b,
        "paper.perllm and paper.toml describe different scenarios"
    );
}

#[test]
fn examples_run_deterministically_with_builtin_policies() {
    for f in example_files() {
        let mut s = load(&f);
        // 20 simulated seconds keep the test fast; traces are cut by the same window.
        s.duration_ns = s.duration_ns.min(20 * SECOND);
        for name in perllm_core::policies::builtin_names() {
            s.policy.name = name.to_string();
            if *name != "perllm" {
                s.policy.params.clear();
            }
            let world = s
                .build()
                .unwrap_or_else(|e| panic!("{}: {e:?}", f.display()));
            let mk = || {
                perllm_core::policies::builtin(&s.policy, &world)
                    .expect("a built-in")
                    .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
            };
            let r1 = run(&world, mk().as_mut());
            let r2 = run(&world, mk().as_mut());
            assert_eq!(r1, r2, "{} with {name}: not deterministic", f.display());
            assert!(r1.arrived > 0, "{} with {name}: no arrivals", f.display());
            assert_eq!(r1.arrived, r1.completed + r1.rejected, "{}", f.display());
            let e = &r1.energy;
            let sum = e.transmission_j + e.inference_j + e.idle_j;
            assert!(
                (sum - e.total_j).abs() <= 1e-9 * sum.max(1.0),
                "{}",
                f.display()
            );
        }
    }
}
