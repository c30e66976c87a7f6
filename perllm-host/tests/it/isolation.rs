//! Isolation: plugin policies in a worker process decide exactly as in-process; a crash, an
//! abort, `exit` or a hang ends that run with an error naming the plugin, library, entry point
//! and call, and the host goes on. Without isolation, the crash reporter names the plugin and
//! call before the process dies.

use super::*;
use perllm_host::{HostError, IsolateMode, Isolation};
use std::time::Duration;

fn isolation(mode: IsolateMode, timeout: Duration) -> Isolation {
    Isolation {
        mode,
        program: env!("CARGO_BIN_EXE_perllm-plugin-worker").into(),
        args: Vec::new(),
        call_timeout: timeout,
    }
}

/// Bundled plus test-kit plugins.
fn registry(iso: Option<Isolation>) -> Registry {
    let mut r =
        Registry::discover_with(&[lib("perllm_plugin_testkit")], None, Some(&deps_dir())).unwrap();
    r.set_isolation(iso);
    r
}

/// [`registry`] with isolation `mode` and hard call timeout `timeout`.
fn isolated(mode: IsolateMode, timeout: Duration) -> Registry {
    registry(Some(isolation(mode, timeout)))
}

#[test]
fn isolated_policies_decide_exactly_as_in_process() {
    let world = paper(4.0, 20);
    let inproc = registry(None);
    let iso = isolated(IsolateMode::Always, Duration::from_secs(30));
    // greedy asks for estimates (computed by the host, shipped to the worker); ucb1 learns from
    // `observe` (outcomes delivered with the next call); testkit reports its own statistics.
    for name in ["greedy", "ucb1", "least-loaded", "testkit"] {
        assert!(iso.is_isolated(name), "{name}");
        assert!(!inproc.is_isolated(name), "{name}");
        let s = spec(name, &[]);
        let mut a = inproc.policy(&s, &world, 7).unwrap();
        let mut b = iso.policy(&s, &world, 7).unwrap();
        let ra = run(&world, &mut *a, &Roofline::default()).unwrap();
        let rb = run(&world, &mut *b, &Roofline::default()).unwrap();
        assert!(ra.completed > 10, "{name}: {}", ra.completed);
        assert_eq!(deterministic_json(&ra), deterministic_json(&rb), "{name}");
        let calls = &format!("{WALLCLOCK_PREFIX}plugin.isolated.round_trip.calls");
        assert!(rb.policy_stats.values[calls] >= 1.0, "{name}");
        assert!(rb.policy_stats.values[&format!("{WALLCLOCK_PREFIX}plugin.schedule.calls")] >= 1.0);
    }
    inproc.check().unwrap();
    iso.check().unwrap();
    // Built-in policies are not plugins: never isolated.
    assert!(!iso.is_isolated("perllm"));
}

#[test]
fn third_party_mode_isolates_only_libraries_other_than_the_bundled_one() {
    let r = isolated(IsolateMode::ThirdParty, Duration::from_secs(30));
    assert!(r.is_isolated("testkit"));
    assert!(!r.is_isolated("greedy"));
    assert!(!r.is_isolated("perllm"));
    let never = isolated(IsolateMode::Never, Duration::from_secs(30));
    assert!(!never.is_isolated("testkit"));
}

#[test]
fn crash_abort_exit_and_hang_end_one_run_with_a_named_error() {
    let world = paper(4.0, 6);
    let r = isolated(IsolateMode::ThirdParty, Duration::from_millis(1500));
    let path = lib("perllm_plugin_testkit")
        .canonicalize()
        .unwrap()
        .display()
        .to_string();
    for (mode, how) in [
        ("abort", "signal 6 (SIGABRT, abort)"),
        ("segfault", "signal 11 (SIGSEGV, segmentation fault)"),
        ("exit", "exited with status 3"),
        ("hang", "did not return within the 1.5s call timeout"),
    ] {
        let (mut p, check) = r
            .policy_for_run(&testkit_spec(mode, 2.0), &world, 1)
            .unwrap();
        let e = run(&world, &mut *p, &Roofline::default()).unwrap_err();
        let msg = e.to_string();
        eprintln!("{mode}: {msg}");
        for part in [
            "plugin `testkit`",
            path.as_str(),
            "`schedule`",
            "slot ",
            how,
        ] {
            assert!(msg.contains(part), "{mode}: `{part}` missing from: {msg}");
        }
        if mode != "hang" {
            // The worker's crash reporter said which call was running.
            assert!(msg.contains("the worker reported "), "{mode}: {msg}");
        }
        let failure = check.check().unwrap_err();
        assert!(
            matches!(
                failure,
                HostError::Crashed { .. } | HostError::TimedOut { .. }
            ),
            "{mode}: {failure:?}"
        );
        // Every later call fails the same way, without a worker.
        let (res, _) = schedule_once(&world, &mut *p, 2);
        assert_eq!(res.unwrap_err().message, failure.to_string());
        // The other runs of the study go on: a bundled policy in the same process.
        let (mut ok, ok_check) = r.policy_for_run(&spec("greedy", &[]), &world, 1).unwrap();
        let rep = run(&world, &mut *ok, &Roofline::default()).unwrap();
        assert!(rep.completed > 0);
        ok_check.check().unwrap();
    }
    // Failures of runs are the runs' own, not the registry's.
    r.check().unwrap();
}

#[test]
fn plugin_errors_in_the_worker_keep_their_message() {
    let world = paper(4.0, 4);
    let r = isolated(IsolateMode::Always, Duration::from_secs(30));
    let mut p = r
        .policy(&testkit_spec("bad-server", 1.0), &world, 1)
        .unwrap();
    let e = run(&world, &mut *p, &Roofline::default()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("`schedule` returned an invalid result") && msg.contains("isolated worker"),
        "{msg}"
    );
    assert!(r.check().is_err());
    // A plugin that refuses its configuration fails at creation, as in-process.
    let e = err(r.policy(&testkit_spec("fail-create", 0.0), &world, 1));
    assert!(
        e.to_string().contains("refusing to start") && e.to_string().contains("`create`"),
        "{e}"
    );
    // An `observe` failure is reported by the next call, or by the check after the run (the
    // outcomes of the last slot reach the worker with the final `stats`).
    let r = isolated(IsolateMode::Always, Duration::from_secs(30));
    let mut p = r
        .policy(&testkit_spec("error-observe", 0.0), &world, 1)
        .unwrap();
    let _ = run(&world, &mut *p, &Roofline::default());
    let e = r.check().unwrap_err().to_string();
    assert!(e.contains("testkit fails in observe"), "{e}");
}

#[test]
fn a_missing_worker_program_is_a_clear_error() {
    let world = paper(1.0, 1);
    let mut iso = isolation(IsolateMode::Always, Duration::from_secs(5));
    iso.program = "/nonexistent/perllm-worker".into();
    let r = registry(Some(iso));
    let e = err(r.policy(&spec("greedy", &[]), &world, 1));
    let msg = e.to_string();
    assert!(
        msg.contains("/nonexistent/perllm-worker") && msg.contains("cannot start it"),
        "{msg}"
    );
}

/// Environment variable that makes [`in_process_crash_helper`] crash (in a child test process).
const CRASH_MODE: &str = "PERLLM_TEST_IN_PROCESS_CRASH";

/// Not a test of its own: run by `a_crash_without_isolation_names_the_plugin_and_call` in a
/// child process, where it crashes the process with the test-kit plugin in-process.
#[test]
fn in_process_crash_helper() {
    let Ok(mode) = std::env::var(CRASH_MODE) else {
        return;
    };
    let world = paper(4.0, 4);
    let r = registry(None);
    let mut p = r.policy(&testkit_spec(&mode, 1.0), &world, 1).unwrap();
    let _ = run(&world, &mut *p, &Roofline::default());
    unreachable!("mode {mode} did not end the process");
}

#[test]
fn a_crash_without_isolation_names_the_plugin_and_call() {
    for (mode, what) in [
        ("segfault", "SIGSEGV (segmentation fault)"),
        ("abort", "SIGABRT (abort)"),
        ("exit", "the plugin called exit()"),
    ] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "isolation::in_process_crash_helper",
                "--nocapture",
            ])
            .env(CRASH_MODE, mode)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{mode}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let expected = format!(
            "perllm: fatal: {what} during a call of policy plugin `testkit` (`{}`), entry point `schedule`, slot ",
            lib("perllm_plugin_testkit")
                .canonicalize()
                .unwrap()
                .display()
        );
        assert!(stderr.contains(&expected), "{mode}: {stderr}");
    }
}
