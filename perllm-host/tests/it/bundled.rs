//! Every bundled plugin loads through the dynamic path and runs the paper's scenario.

use super::*;
use perllm_core::cost::StepShape;
use perllm_core::spec::ParamValue;
use perllm_host::PluginKind;

const POLICIES: &[&str] = &perllm_plugins::POLICY_NAMES;

#[test]
fn list_shows_every_bundled_plugin() {
    let r = bundled();
    let list = r.list();
    let policies: Vec<&str> = list
        .iter()
        .filter(|i| i.kind == PluginKind::Policy && i.source != "built-in")
        .map(|i| i.name.as_str())
        .collect();
    assert_eq!(policies, POLICIES);
    redact().bind(|| insta::assert_yaml_snapshot!("bundled_list", list));
}

#[test]
fn every_bundled_policy_runs_the_paper_scenario() {
    let world = paper(4.0, 6);
    let r = bundled();
    let cost = Roofline::default();
    for name in POLICIES {
        let mut p = r
            .policy(&spec(name, &[]), &world, world.scenario.seed)
            .unwrap();
        assert_eq!(p.name(), *name);
        let rep = run(&world, &mut *p, &cost).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(rep.arrived > 10, "{name}: {} arrived", rep.arrived);
        assert_eq!(
            rep.completed + rep.rejected,
            rep.arrived,
            "{name}: every request ends"
        );
        assert!(
            rep.policy_stats.values[&format!("{WALLCLOCK_PREFIX}plugin.schedule.calls")] >= 1.0,
            "{name}"
        );
        let assigned = |tier: &str| {
            rep.servers
                .iter()
                .filter(|s| s.tier == tier)
                .map(|s| s.assigned)
                .sum::<u64>()
        };
        match *name {
            "cloud-only" => {
                assert_eq!(assigned("edge"), 0);
                assert_eq!(rep.rejected, 0, "the cloud hosts both models");
            }
            "edge-only" => {
                assert_eq!(assigned("cloud"), 0);
                // llama-33b runs only in the cloud: those requests are rejected.
                assert!(rep.rejected > 0);
            }
            // With the roofline estimates the cloud is both faster and cheaper in energy.
            "greedy" => assert_eq!(rep.rejected, 0),
            // The cloud meets the deadlines here, so nothing overflows to the edge; without
            // admission control nothing is rejected.
            "cloud-first" => {
                assert_eq!(rep.rejected, 0);
                assert!(assigned("cloud") > 0);
            }
            // Its own admission control refuses what it predicts to miss; the rest runs on the
            // fastest server, the cloud here.
            "edf" => assert!(
                assigned("cloud") > 0 && rep.rejected < rep.arrived / 2,
                "{} of {} rejected",
                rep.rejected,
                rep.arrived
            ),
            "filter-score" => {
                assert_eq!(rep.rejected, 0);
                assert!(assigned("cloud") > 0);
            }
            _ => {
                assert_eq!(rep.rejected, 0, "{name}");
                assert!(
                    assigned("edge") > 0 && assigned("cloud") > 0,
                    "{name} uses both tiers"
                );
            }
        }
    }
    r.check().unwrap();
}

#[test]
fn runs_are_deterministic_per_seed() {
    let world = paper(4.0, 4);
    let r = bundled();
    let cost = Roofline::default();
    let report = |name: &str, seed: u64| {
        let mut p = r.policy(&spec(name, &[]), &world, seed).unwrap();
        deterministic_json(&run(&world, &mut *p, &cost).unwrap())
    };
    for name in ["random", "epsilon-greedy", "ucb1", "greedy"] {
        assert_eq!(report(name, 7), report(name, 7), "{name}");
    }
    // The random policy's choices depend on the seed it is given.
    let placements = |seed: u64| {
        let mut p = r.policy(&spec("random", &[]), &world, seed).unwrap();
        schedule_once(&world, &mut *p, 40).1
    };
    assert_eq!(placements(1), placements(1));
    assert_ne!(placements(1), placements(2));
}

#[test]
fn policies_spread_a_slot_and_respect_models() {
    let world = paper(1.0, 1);
    let r = bundled();
    let cloud = world.server_id("cloud").unwrap();
    for name in POLICIES {
        // Without admission control: every request is placed.
        let params = if *name == "edf" {
            vec![("admission", ParamValue::Text("none".into()))]
        } else {
            Vec::new()
        };
        let mut p = r.policy(&spec(name, &params), &world, 3).unwrap();
        let (res, out) = schedule_once(&world, &mut *p, 30);
        res.unwrap();
        for (i, d) in out.iter().enumerate() {
            // Odd requests are llama-33b, hosted only by the cloud.
            match d {
                Decision::Assign(s) if i % 2 == 1 => assert_eq!(*s, cloud, "{name} request {i}"),
                Decision::Assign(_) => {}
                Decision::Reject => assert!(
                    *name == "edge-only" && i % 2 == 1,
                    "{name} rejected request {i}"
                ),
                Decision::Defer => panic!("{name} deferred request {i}"),
            }
        }
        if matches!(*name, "least-loaded" | "round-robin" | "edge-only") {
            let edges: std::collections::BTreeSet<_> = out
                .iter()
                .step_by(2)
                .filter_map(|d| {
                    if let Decision::Assign(s) = d {
                        Some(*s)
                    } else {
                        None
                    }
                })
                .collect();
            assert!(
                edges.len() >= 5,
                "{name} spreads llama2-7b over the servers: {edges:?}"
            );
        }
    }
}

#[test]
fn greedy_prefers_low_energy_servers_that_meet_the_deadline() {
    let world = paper(1.0, 1);
    let r = bundled();
    let mut p = r.policy(&spec("greedy", &[]), &world, 1).unwrap();
    let (res, out) = schedule_once(&world, &mut *p, 2);
    res.unwrap();
    // Request 0: llama2-7b, 300 prompt tokens, interactive (4 s). An edge CPU needs seconds of
    // prefill alone, so only the cloud meets the deadline by estimate.
    let cost = Roofline::default();
    let states = ServerState::all_idle(&world);
    let view = ClusterView::new(&world, &states, &cost);
    let req = pending(&world, 1)[0].request;
    let feasible: Vec<u32> = world
        .servers
        .iter()
        .filter(|s| {
            s.hosts(req.model) && view.estimate(&req, s.id).total_ns() <= world.slos[0].deadline_ns
        })
        .map(|s| s.id)
        .collect();
    assert_eq!(out[0], Decision::Assign(feasible[0]));
    let e = err(r.policy(
        &spec("greedy", &[("slack", ParamValue::Number(-1.0))]),
        &world,
        1,
    ));
    redact().bind(|| insta::assert_snapshot!("greedy_bad_slack", e.to_string()));
    let e = err(r.policy(
        &spec("ucb1", &[("explore", ParamValue::Number(1.0))]),
        &world,
        1,
    ));
    redact().bind(|| insta::assert_snapshot!("ucb1_unknown_param", e.to_string()));
}

#[test]
fn learning_policies_report_their_stats() {
    let world = paper(4.0, 4);
    let r = bundled();
    // The policy `name` with its parameter `param` at 1, on one run.
    let report = |name: &str, param: &str| {
        let mut p = r
            .policy(&spec(name, &[(param, ParamValue::Number(1.0))]), &world, 7)
            .unwrap();
        run(&world, &mut *p, &Roofline::default()).unwrap()
    };
    let rep = report("ucb1", "exploration");
    assert_eq!(
        rep.policy_stats.values["ucb1.pulls"],
        (rep.completed) as f64
    );
    assert!(
        rep.policy_stats.values[&format!("{WALLCLOCK_PREFIX}plugin.observe.calls")]
            >= rep.completed as f64
    );
    let rep = report("epsilon-greedy", "epsilon");
    assert_eq!(
        rep.policy_stats.values["epsilon_greedy.explorations"],
        rep.arrived as f64
    );
}

#[test]
fn plugin_roofline_prices_exactly_like_core() {
    let world = paper(4.0, 4);
    let r = bundled();
    let plugin = r.cost_model("plugin:roofline", "").unwrap();
    assert_eq!(plugin.name(), "roofline");
    let core = Roofline::default();
    for hw in &world.hardware {
        for m in &world.models {
            for count in [1, 2, 8] {
                for (pt, ps, ds, kv) in [
                    (0, 0, 0, 0),
                    (1, 1, 0, 0),
                    (512, 1, 0, 0),
                    (4096, 4, 3, 9000),
                    (0, 0, 1, 400),
                    (0, 0, 64, 1 << 20),
                ] {
                    let shape = StepShape {
                        prefill_tokens: pt,
                        prefill_seqs: ps,
                        decode_seqs: ds,
                        kv_tokens: kv,
                    };
                    assert_eq!(
                        plugin.step_ns(hw, count, m, &shape),
                        core.step_ns(hw, count, m, &shape),
                        "{} {} {shape:?}",
                        hw.name,
                        m.name
                    );
                }
            }
        }
    }
    // A whole run with the plugin cost model gives the same report as with core's.
    let b = bundled();
    let mut p1 = b.policy(&spec("least-loaded", &[]), &world, 7).unwrap();
    let mut p2 = b.policy(&spec("least-loaded", &[]), &world, 7).unwrap();
    let mut a = deterministic_json(&run(&world, &mut *p1, &core).unwrap());
    let mut c = deterministic_json(&run(&world, &mut *p2, &*plugin).unwrap());
    a["cost_model"] = serde_json::Value::Null;
    c["cost_model"] = serde_json::Value::Null;
    assert_eq!(a, c);
    // Its parameters are config.
    let slow = r
        .cost_model(
            "plugin:roofline",
            r#"{"step_overhead_ns": 5000000, "bandwidth_efficiency": 0.3}"#,
        )
        .unwrap();
    let shape = StepShape {
        decode_seqs: 1,
        kv_tokens: 100,
        ..Default::default()
    };
    assert!(
        slow.step_ns(&world.hardware[0], 1, &world.models[0], &shape)
            > core.step_ns(&world.hardware[0], 1, &world.models[0], &shape)
    );
    // The built-in takes only the overhead.
    let b = r
        .cost_model("roofline", r#"{"step_overhead_ns": 1}"#)
        .unwrap();
    assert_eq!(
        b.step_ns(
            &world.hardware[0],
            1,
            &world.models[0],
            &StepShape::default()
        ),
        0
    );
    let e = err(r.cost_model("roofline", r#"{"bandwidth_efficiency": 0.3}"#));
    redact().bind(|| insta::assert_snapshot!("builtin_roofline_bad_config", e.to_string()));
    // A step-cost table by rows (what `perllm calibrate` writes) replaces the roofline: 4
    // decoding sequences are 4 rows, halfway between the knots at 2 and 6.
    let t = r
        .cost_model(
            "roofline",
            r#"{"decode_seq_ns": 100, "kv_token_ns": 2, "rows_ns": [[1, 1000], [2, 3000], [6, 5000]]}"#,
        )
        .unwrap();
    let four = StepShape {
        decode_seqs: 4,
        kv_tokens: 100,
        ..Default::default()
    };
    assert_eq!(
        t.step_ns(&world.hardware[0], 1, &world.models[0], &four),
        4000 + 400 + 200
    );
    for (config, says) in [
        (
            r#"{"rows_ns": [[2, 5], [1, 6]]}"#,
            "`rows_ns`: knot 1: rows must increase (1 after 2)",
        ),
        (
            r#"{"rows_ns": [[1, 5], [2, 4]]}"#,
            "the table must not decrease",
        ),
        (r#"{"rows_ns": [[0, 5]]}"#, "rows must be at least 1"),
        (
            r#"{"rows_ns": [[1, 5]], "one_token_step_ns": 3}"#,
            "it replaces `step_overhead_ns` and `one_token_step_ns`",
        ),
        (
            r#"{"rows_ns": [[1, 5]], "step_overhead_ns": 3}"#,
            "it replaces `step_overhead_ns` and `one_token_step_ns`",
        ),
    ] {
        let e = err(r.cost_model("roofline", config)).to_string();
        assert!(e.contains(says), "{config}: {e}");
    }
    r.cost_model(
        "roofline",
        r#"{"rows_ns": [[1, 5]], "step_overhead_ns": 0}"#,
    )
    .unwrap();
}

const PROFILE: &str = "model,hardware,batch,prefill_tokens_per_s,decode_tokens_per_s
llama2-7b,xeon-4214r,1,60,9
llama2-7b,xeon-4214r,4,70,24
llama2-7b,a100,1,9000,90
llama2-7b,a100,64,20000,2400
llama-33b,a100,1,2500,30
llama-33b,a100,64,6000,900
";

#[test]
fn profile_table_runs_and_fails_cleanly() {
    let world = paper(4.0, 4);
    let r = bundled();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profile.csv");
    std::fs::write(&path, PROFILE).unwrap();
    let cfg = serde_json::json!({ "path": path }).to_string();
    let cost = r.cost_model("profile-table", &cfg).unwrap();
    // 1 decoding sequence of llama2-7b on one Xeon: 1 token at 9 tokens/s.
    let shape = StepShape {
        decode_seqs: 1,
        kv_tokens: 500,
        ..Default::default()
    };
    assert_eq!(
        cost.step_ns(&world.hardware[0], 1, &world.models[0], &shape),
        111_111_111
    );
    let mut p = r.policy(&spec("greedy", &[]), &world, 7).unwrap();
    let rep = run(&world, &mut *p, &*cost).unwrap();
    assert_eq!(rep.completed + rep.rejected, rep.arrived);
    assert_eq!(rep.cost_model, "profile-table");
    r.check().unwrap();

    // Without llama2-7b on the A100, the first step there is an error naming the pair.
    let partial: String = PROFILE
        .lines()
        .filter(|l| !l.starts_with("llama2-7b,a100"))
        .map(|l| format!("{l}\n"))
        .collect();
    let r2 = bundled();
    let cost = r2
        .cost_model(
            "profile-table",
            &serde_json::json!({ "csv": partial }).to_string(),
        )
        .unwrap();
    let mut p = r2.policy(&spec("cloud-only", &[]), &world, 7).unwrap();
    let e = run(&world, &mut *p, &*cost).unwrap_err();
    let checked = r2.check().unwrap_err();
    redact().bind(|| {
        insta::assert_snapshot!("profile_missing_pair_run", e.to_string());
        insta::assert_snapshot!("profile_missing_pair_check", checked.to_string());
    });
    let e = err(r.cost_model(
        "profile-table",
        r#"{"csv": "model,hardware,batch,prefill_tokens_per_s,decode_tokens_per_s\nm,h,0,1,1\n"}"#,
    ));
    redact().bind(|| insta::assert_snapshot!("profile_bad_row", e.to_string()));
}

#[test]
fn discovery_orders_and_deduplicates() {
    let testkit_lib = lib("perllm_plugin_testkit");
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join(testkit_lib.file_name().unwrap());
    std::fs::copy(&testkit_lib, &copy).unwrap();
    std::fs::write(dir.path().join("README.txt"), "not a library").unwrap();
    // A directory on the plugin path, plus the bundled library next to the "executable".
    let var = std::env::join_paths([dir.path()]).unwrap();
    let r = Registry::discover_with(&[], Some(&var), Some(&deps_dir())).unwrap();
    let names: Vec<String> = r.list().into_iter().map(|i| i.name).collect();
    assert!(
        names.contains(&"testkit".to_string()) && names.contains(&"greedy".to_string()),
        "{names:?}"
    );
    assert!(r.bundled_path().is_some());
    // A directory given explicitly loads its libraries too.
    let r = Registry::discover_with(&[dir.path().to_path_buf()], None, None).unwrap();
    assert!(r.list().iter().any(|i| i.name == "testkit"));
    // The bundled library given explicitly too is loaded once.
    let bundled_lib = lib("perllm_plugins");
    let r = Registry::discover_with(std::slice::from_ref(&bundled_lib), None, Some(&deps_dir()))
        .unwrap();
    assert_eq!(r.list().iter().filter(|i| i.name == "greedy").count(), 1);
    // Without an executable directory holding it, nothing is bundled and the error says where
    // it looked.
    let empty = tempfile::tempdir().unwrap();
    let exe_dir = empty.path().join("release");
    std::fs::create_dir(&exe_dir).unwrap();
    let r = Registry::discover_with(&[], None, Some(&exe_dir)).unwrap();
    let world = paper(1.0, 1);
    let e = err(r.policy(&spec("greedy", &[]), &world, 1));
    redact().bind(|| insta::assert_snapshot!("unknown_policy_no_bundle", e.to_string()));
    // A missing entry of the plugin path is an error.
    let var = std::env::join_paths([empty.path().join("nope")]).unwrap();
    let e = Registry::discover_with(&[], Some(&var), None).unwrap_err();
    redact().bind(|| insta::assert_snapshot!("plugin_path_missing_entry", e.to_string()));
    // The "executable" in deps' parent finds the library in deps.
    let target_profile = deps_dir().parent().unwrap().to_path_buf();
    assert!(
        perllm_host::bundled_candidates(&target_profile).contains(
            &target_profile
                .join("deps")
                .join(perllm_host::bundled_library_name())
        )
    );
}
