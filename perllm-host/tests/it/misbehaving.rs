//! A plugin that panics, fails, returns invalid placements or estimates, or is slow: each gives a
//! clear error naming the plugin, the host never aborts, and a poisoned plugin is never called
//! again.

use super::*;
use perllm_core::cost::StepShape;
use perllm_core::spec::ParamValue;
use perllm_host::HostError;
use std::time::Duration;

fn testkit_policy(r: &Registry, world: &World, mode: &str, after: f64) -> Box<dyn Policy> {
    r.policy(&testkit_spec(mode, after), world, 1).unwrap()
}

fn snap(name: &str, msg: &str) {
    redact().bind(|| insta::assert_snapshot!(name, msg));
}

#[test]
fn behaving_testkit_runs() {
    let world = paper(2.0, 3);
    let r = testkit();
    let mut p = testkit_policy(&r, &world, "ok", 0.0);
    let rep = run(&world, &mut *p, &Roofline::default()).unwrap();
    assert_eq!(rep.completed, rep.arrived);
    assert!(rep.policy_stats.values["testkit.calls"] >= 1.0);
    r.check().unwrap();
}

#[test]
fn invalid_placements_are_errors() {
    let world = paper(1.0, 1);
    for mode in ["bad-server", "unhosted", "bad-action", "error"] {
        let r = testkit();
        let mut p = testkit_policy(&r, &world, mode, 0.0);
        let (res, _) = schedule_once(&world, &mut *p, 4);
        let e = res.unwrap_err();
        assert_eq!(e.policy, "testkit");
        snap(&format!("schedule_{mode}"), &e.to_string());
        // The registry reports the same failure after the run.
        assert_eq!(r.check().unwrap_err().to_string(), e.message);
        assert!(r.failure("testkit").is_some());
    }
}

#[test]
fn invalid_placement_stops_a_simulation() {
    let world = paper(4.0, 4);
    let r = testkit();
    // Behaves for 3 slots, then names a server that does not exist.
    let mut p = testkit_policy(&r, &world, "bad-server", 3.0);
    let e = run(&world, &mut *p, &Roofline::default()).unwrap_err();
    assert!(matches!(e, SimError::Policy(_)), "{e:?}");
    snap("sim_bad_server", &e.to_string());
}

#[test]
fn a_panic_poisons_the_plugin() {
    let world = paper(4.0, 4);
    let r = testkit();
    let mut p = testkit_policy(&r, &world, "panic", 2.0);
    let e = run(&world, &mut *p, &Roofline::default()).unwrap_err();
    snap("sim_panic", &e.to_string());
    // Never called again: the next call fails without entering the plugin.
    let calls_before = p.stats().values[&format!("{WALLCLOCK_PREFIX}plugin.schedule.calls")];
    let (res, _) = schedule_once(&world, &mut *p, 3);
    assert!(res.unwrap_err().message.contains("panicked in `schedule`"));
    assert_eq!(
        p.stats().values[&format!("{WALLCLOCK_PREFIX}plugin.schedule.calls")],
        calls_before
    );
    assert!(matches!(r.check(), Err(HostError::Panic { .. })));
    // Dropping a poisoned policy does not call into it (nor crash).
    drop(p);
}

#[test]
fn a_failing_observe_invalidates_the_run() {
    // `Policy::observe` cannot return an error: the failure stops the run at the policy's next
    // `schedule` if there is one, and the registry's check reports it in any case.
    let world = paper(4.0, 6);
    for mode in ["panic-observe", "error-observe"] {
        let r = testkit();
        let mut p = testkit_policy(&r, &world, mode, 0.0);
        let res = run(&world, &mut *p, &Roofline::default());
        let e = r.check().unwrap_err();
        snap(&format!("observe_{mode}"), &e.to_string());
        if let Err(stopped) = res {
            assert!(stopped.to_string().contains(&e.to_string()), "{stopped}");
        }
        // The next schedule fails with the same error, without calling the plugin.
        let (res, _) = schedule_once(&world, &mut *p, 2);
        assert_eq!(res.unwrap_err().message, e.to_string());
    }
}

#[test]
fn slow_calls_are_counted_not_killed() {
    let world = paper(1.0, 1);
    let mut r = testkit();
    r.set_call_budget(Duration::from_millis(5));
    let params = [
        ("mode", ParamValue::Text("sleep".into())),
        ("sleep_ms", ParamValue::Number(20.0)),
    ];
    let mut p = r.policy(&spec("testkit", &params), &world, 1).unwrap();
    for _ in 0..3 {
        let (res, out) = schedule_once(&world, &mut *p, 2);
        res.unwrap();
        assert!(matches!(out[0], Decision::Assign(_)));
    }
    let v = p.stats().values;
    assert_eq!(v[&format!("{WALLCLOCK_PREFIX}plugin.schedule.calls")], 3.0);
    assert_eq!(
        v[&format!("{WALLCLOCK_PREFIX}plugin.schedule.over_budget")],
        3.0
    );
    assert!(v[&format!("{WALLCLOCK_PREFIX}plugin.schedule.max_us")] >= 20_000.0);
    assert_eq!(
        v[&format!("{WALLCLOCK_PREFIX}plugin.call_budget_us")],
        5_000.0
    );
    r.check().unwrap();
}

#[test]
fn bad_estimates_invalidate_the_run() {
    let world = paper(4.0, 4);
    let shape = StepShape {
        decode_seqs: 1,
        kv_tokens: 10,
        ..Default::default()
    };
    for mode in ["nan", "negative", "zero-step", "error", "panic"] {
        let r = bundled();
        r.check().unwrap();
        let mut reg = r;
        reg.load_library(&lib("perllm_plugin_testkit")).unwrap();
        let r = reg;
        // Misbehaves after 5 calls, i.e. in the middle of the run.
        let cost = r
            .cost_model(
                "testkit-cost",
                &format!(r#"{{"mode": "{mode}", "after": 5}}"#),
            )
            .unwrap();
        let mut p = r.policy(&spec("greedy", &[]), &world, 1).unwrap();
        let res = run(&world, &mut *p, &*cost);
        let e = r.check().unwrap_err();
        snap(&format!("cost_{mode}"), &e.to_string());
        // The policy of the same registry stopped the run at its next slot.
        let err = res.unwrap_err();
        assert!(err.to_string().contains("testkit-cost"), "{mode}: {err}");
        // From then on the model answers with the default roofline, never calling the plugin.
        assert_eq!(
            cost.step_ns(&world.hardware[0], 1, &world.models[0], &shape),
            Roofline::default().step_ns(&world.hardware[0], 1, &world.models[0], &shape)
        );
    }
}
