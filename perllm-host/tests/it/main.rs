//! perllm-host integration tests: the bundled plugins, the third-party example and the test-kit
//! library, all loaded through the dynamic path.

mod bundled;
mod c_header;
mod compat;
mod errors;
mod faults;
mod inplace;
mod isolation;
mod layout;
mod misbehaving;
mod properties;
mod third_party;
mod views;

use perllm_core::policy::{ClusterView, Decision, Pending, Policy, PolicyError, ServerState};
use perllm_core::spec::{MILLISECOND, ParamValue, PolicySpec, SECOND};
use perllm_core::workload::Synthetic;
use perllm_core::{CostModel, Report, Roofline, SimError, World};
use perllm_host::{Registry, WALLCLOCK_PREFIX};
use std::path::{Path, PathBuf};

/// The policy `name` with `params`.
pub fn spec(name: &str, params: &[(&str, ParamValue)]) -> PolicySpec {
    PolicySpec {
        name: name.into(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    }
}

/// The test kit's policy in `mode`, misbehaving after `after` calls (see perllm-plugin-testkit).
pub fn testkit_spec(mode: &str, after: f64) -> PolicySpec {
    spec(
        "testkit",
        &[
            ("mode", ParamValue::Text(mode.into())),
            ("after", ParamValue::Number(after)),
        ],
    )
}

/// The directory of the test executable (`target/<profile>/deps`), where cargo puts the shared
/// libraries of the plugin crates this crate dev-depends on.
pub fn deps_dir() -> PathBuf {
    std::env::current_exe()
        .expect("test executable path")
        .parent()
        .expect("has a parent")
        .to_path_buf()
}

/// A plugin library built by cargo as a dev-dependency.
pub fn lib(stem: &str) -> PathBuf {
    let p = deps_dir().join(format!(
        "{}{stem}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    assert!(
        p.exists(),
        "{} was not built; it is a dev-dependency of perllm-host",
        p.display()
    );
    p
}

/// A registry with the bundled library, found like the CLI finds it.
pub fn bundled() -> Registry {
    Registry::discover_with(&[], None, Some(&deps_dir())).expect("bundled plugins load")
}

/// A registry with the test-kit library only.
pub fn testkit() -> Registry {
    let mut r = Registry::new();
    r.load_library(&lib("perllm_plugin_testkit"))
        .expect("testkit loads");
    r
}

/// The paper's testbed at `rate` requests/s for `secs` seconds.
pub fn paper(rate: f64, secs: u64) -> World {
    perllm_core::testbed::paper(rate, secs * SECOND)
        .build()
        .expect("paper testbed is valid")
}

/// Run `policy` on `world` with `cost` and the synthetic workload.
pub fn run(
    world: &World,
    policy: &mut dyn Policy,
    cost: &dyn CostModel,
) -> Result<Report, SimError> {
    let mut source = Synthetic::new(world);
    perllm_core::sim::run(world, policy, cost, &mut source, &mut [])
}

/// A report as JSON without wall-clock statistics (which differ between identical runs).
pub fn deterministic_json(r: &Report) -> serde_json::Value {
    let mut r = r.clone();
    r.policy_stats
        .values
        .retain(|k, _| !k.starts_with(WALLCLOCK_PREFIX));
    serde_json::to_value(&r).expect("report serialises")
}

/// One `schedule` call on a hand-built view of `world` (all servers idle) with `n` requests.
pub fn schedule_once(
    world: &World,
    policy: &mut dyn Policy,
    n: usize,
) -> (Result<(), PolicyError>, Vec<Decision>) {
    let states = ServerState::all_idle(world);
    let cost = Roofline::default();
    let view = ClusterView {
        now_ns: 100 * MILLISECOND,
        slot: 1,
        ..ClusterView::new(world, &states, &cost)
    };
    let pending = pending(world, n);
    let mut out = vec![Decision::Defer; n];
    let r = policy.schedule(&view, &pending, &mut out);
    (r, out)
}

/// `n` pending requests alternating between the paper's two models.
pub fn pending(world: &World, n: usize) -> Vec<Pending> {
    (0..n)
        .map(|i| Pending {
            request: perllm_core::Request {
                id: 1000 + i as u64,
                arrival_ns: 0,
                model: (i % world.models.len()) as u16,
                prompt_tokens: 300 + i as u32,
                output_tokens: 100,
                input_bytes: 200_000,
                output_bytes: 400,
                slo: (i % world.slos.len()) as u16,
            },
            defers: 0,
        })
        .collect()
}

/// Insta settings that replace machine-specific paths in messages.
pub fn redact() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    let deps = deps_dir().canonicalize().unwrap_or(deps_dir());
    s.add_filter(&regex_escape(&deps.display().to_string()), "[DEPS]");
    // The host may also load the copy `cargo build` leaves in the profile directory itself.
    if let Some(profile) = deps.parent() {
        s.add_filter(&regex_escape(&profile.display().to_string()), "[DEPS]");
    }
    s.add_filter(
        &regex_escape(
            &std::env::temp_dir()
                .canonicalize()
                .unwrap()
                .display()
                .to_string(),
        ),
        "[TMP]",
    );
    s.add_filter(r"\[TMP\]/\.tmp[A-Za-z0-9]+", "[TMP]/[DIR]");
    s
}

fn regex_escape(s: &str) -> String {
    let mut o = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            o.push('\\');
        }
        o.push(c);
    }
    o
}

/// Path of a file relative to the workspace root.
pub fn workspace_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .join(rel)
}

/// The error of a result whose success value has no `Debug`.
pub fn err<T>(r: Result<T, perllm_host::HostError>) -> perllm_host::HostError {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

/// Runs `cmd` and asserts that it succeeded; `what` names it in the failure message, with its
/// stderr.
pub fn run_ok(cmd: &mut std::process::Command, what: &str) -> std::process::Output {
    let out = cmd.output().expect(what);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed:\n{err}");
    out
}
