//! Robustness of the number rules of scenarios built in code.
//!
//! Every numeric field of a [`Scenario`] is set, one at a time, to NaN, the infinities, zero,
//! negative, tiny and huge values. For each value the table states the documented rule; the test
//! checks that `Scenario::build()` rejects the value with an error whose path names the field when
//! the rule says so, and otherwise that a short run (with the least-loaded policy and with PerLLM)
//! completes without a panic, ends every request and reports finite numbers. A panic (an
//! arithmetic overflow in a debug build, an `expect`) anywhere is a failure.

mod boundaries;
mod bounds;
mod fields;
mod trace;

use perllm_core::policies::builtin;
use perllm_core::simple::LeastLoaded;
use perllm_core::spec::*;
use perllm_core::workload::trace::{Reader, TraceSource};
use perllm_core::workload::{RequestSource, Synthetic, WorkloadError};
use perllm_core::{Policy, Report, Roofline, World, run, testbed};
use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// The values tried on every floating-point field.
const FLOATS: [f64; 11] = [
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    -1.0,
    -0.0,
    0.0,
    f64::MIN_POSITIVE,
    0.5,
    1.0,
    1.5,
    1e300,
];

/// The values tried on every integer field (truncated to the field's width).
const INTS: [u64; 7] = [
    0,
    1,
    1_000_000_000,
    u32::MAX as u64,
    u32::MAX as u64 + 1,
    u64::MAX / 2,
    u64::MAX,
];

/// Requests per acceptance run: keeps huge durations and rates short.
const REQUESTS: u64 = 8;

/// The paper testbed cut to a few requests. Links are steady: a fluctuating link is redrawn every
/// slot by default, so a 1 ns slot or a 1 bit/s link would make the run simulate billions of redraw
/// events (slow, not wrong); the fluctuation rows set their own 1 s redraw period.
fn base() -> Scenario {
    let mut s = testbed::paper(4.0, 5 * SECOND);
    s.workload.max_requests = Some(REQUESTS);
    for l in &mut s.links {
        l.fluctuation = Fluctuation::None;
    }
    s
}

fn pos(v: f64) -> bool {
    v.is_finite() && v > 0.0
}
fn rate(v: f64) -> bool {
    pos(v) && v <= limits::MAX_ARRIVAL_RATE
}
fn nonneg(v: f64) -> bool {
    v.is_finite() && v >= 0.0
}
fn unit_closed(v: f64) -> bool {
    v.is_finite() && (0.0..=1.0).contains(&v)
}
fn unit_half_open(v: f64) -> bool {
    v.is_finite() && (0.0..1.0).contains(&v)
}
/// Can `v` stand in a constraint whose other number is `other` (see
/// `LinearConstraint::normalised`)?
fn representable(v: f64, other: f64) -> bool {
    let a = v.abs();
    v.is_finite()
        && (v == 0.0
            || (a >= f64::MIN_POSITIVE && a.min(other) / a.max(other) >= MIN_CONSTRAINT_RATIO))
}

fn fluctuate(s: &mut Scenario, f: Fluctuation) {
    s.links[0].fluctuation = f;
    s.links[0].redraw_ns = Some(SECOND);
}

type FloatSet = fn(&mut Scenario, f64);
type IntSet = fn(&mut Scenario, u64);
type FloatRow = (&'static str, &'static str, fn(f64) -> bool, FloatSet);
type IntRow = (&'static str, &'static str, fn(u64) -> bool, IntSet);

/// What went wrong with one `(field, value)`.
#[derive(Debug)]
struct Failure {
    field: &'static str,
    value: String,
    problem: String,
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into())
}

/// Checks a run's report: every request ended, numbers finite.
fn check_report(r: &Report) -> Result<(), String> {
    if r.completed + r.rejected != r.arrived {
        return Err(format!(
            "{} arrived but {} completed + {} rejected",
            r.arrived, r.completed, r.rejected
        ));
    }
    let e = &r.energy;
    for (n, v) in [
        ("horizon_s", r.horizon_s),
        ("throughput_rps", r.throughput_rps),
        ("goodput_rps", r.goodput_rps),
        ("deadline_attainment", r.deadline_attainment),
        ("energy.total_j", e.total_j),
        ("energy.transmission_j", e.transmission_j),
        ("energy.inference_j", e.inference_j),
        ("energy.idle_j", e.idle_j),
        ("latency_s.max", r.latency_s.max),
        ("ttft_s.max", r.ttft_s.max),
    ] {
        if !v.is_finite() || v < 0.0 {
            return Err(format!("report field {n} is {v}"));
        }
    }
    Ok(())
}

/// Turns a run that takes far too long into a panic (caught and reported as a failure).
struct Watchdog(std::time::Instant);
impl Watchdog {
    fn check(&self) {
        if self.0.elapsed() > std::time::Duration::from_secs(20) {
            panic!("the run did not finish within 20 s of wall-clock time");
        }
    }
}
impl perllm_core::Observer for Watchdog {
    fn on_step(&mut self, _: perllm_core::ServerId, _: Nanos, _: Nanos) {
        self.check()
    }
    fn on_decision(
        &mut self,
        _: Nanos,
        _: u64,
        _: &perllm_core::Request,
        _: perllm_core::Decision,
        _: Option<&serde_json::Value>,
    ) {
        self.check()
    }
}

/// Run `world` with least-loaded and with the scenario's PerLLM policy; return the first problem.
fn run_all(world: &World) -> Result<(), String> {
    let mut policies: Vec<Box<dyn Policy>> = vec![Box::new(LeastLoaded::default())];
    match builtin(&world.scenario.policy, world) {
        Some(Ok(p)) => policies.push(p),
        Some(Err(e)) => return Err(format!("the PerLLM policy refused the world: {e}")),
        None => return Err("no built-in PerLLM".into()),
    }
    for mut p in policies {
        let name = p.name().to_string();
        let mut src: Box<dyn RequestSource> = match &world.scenario.workload.trace {
            None => Box::new(Synthetic::new(world)),
            Some(t) => {
                let text = TRACE.to_string();
                match TraceSource::with_opener(
                    t,
                    "robust.csv",
                    move || Ok(Box::new(Cursor::new(text.clone().into_bytes())) as Reader),
                    world,
                ) {
                    Ok(s) => Box::new(s),
                    Err(e) => return Err(format!("trace source refused: {e}")),
                }
            }
        };
        let cost = Roofline::default();
        let mut dog = Watchdog(std::time::Instant::now());
        let report = run(world, &mut *p, &cost, &mut *src, &mut [&mut dog])
            .map_err(|e| format!("{name}: run failed: {e}"))?;
        check_report(&report).map_err(|m| format!("{name}: {m}"))?;
    }
    Ok(())
}

/// Build and (if valid) run one modified scenario; `expect_valid` is the table's rule.
fn try_case(
    field: &'static str,
    value: String,
    path: &str,
    expect_valid: bool,
    sc: Scenario,
) -> Option<Failure> {
    let fail = |problem: String| {
        Some(Failure {
            field,
            value: value.clone(),
            problem,
        })
    };
    if std::env::var_os("PERLLM_ROBUST_TRACE").is_some() {
        eprintln!("case {field} = {value}");
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| match sc.build() {
        Err(errs) => Err(errs),
        Ok(w) => Ok(run_all(&w)),
    }));
    match outcome {
        Err(p) => fail(format!("panicked: {}", panic_message(p))),
        Ok(Err(errs)) if expect_valid => fail(format!("rejected a valid value: {errs:?}")),
        Ok(Err(errs)) => {
            if path.is_empty()
                || path
                    .split('|')
                    .any(|p| errs.iter().any(|e| e.path.contains(p)))
            {
                None
            } else {
                fail(format!("rejected, but no error names `{path}`: {errs:?}"))
            }
        }
        Ok(Ok(_)) if !expect_valid => fail("accepted an invalid value".into()),
        Ok(Ok(Err(m))) => fail(m),
        Ok(Ok(Ok(()))) => None,
    }
}

/// Tries every value of `values` on every row `(field, path of the expected error, rule, setter)`
/// against the base scenario (see [`try_case`]); the number of cases and the failures.
fn sweep<V: Copy, S: Fn(&mut Scenario, V)>(
    rows: impl IntoIterator<Item = (&'static str, &'static str, fn(V) -> bool, S)>,
    values: &[V],
    show: impl Fn(V) -> String,
) -> (usize, Vec<Failure>) {
    let mut failures = Vec::new();
    let mut cases = 0;
    let q = QuietPanics::new();
    for (field, path, rule, set) in rows {
        for &v in values {
            let mut sc = base();
            set(&mut sc, v);
            cases += 1;
            if let Some(f) = try_case(field, show(v), path, rule(v), sc) {
                failures.push(f);
            }
        }
    }
    drop(q);
    (cases, failures)
}

/// Draws requests from `src` up to its first error: how many came before it, and the error.
fn first_error(src: &mut impl RequestSource) -> (u64, WorkloadError) {
    let mut n = 0u64;
    loop {
        match src.next_request() {
            Some(Ok(_)) => n += 1,
            Some(Err(e)) => return (n, e),
            None => panic!("ended after {n} requests without an error"),
        }
    }
}

fn report(kind: &str, cases: usize, failures: Vec<Failure>) {
    eprintln!("{kind}: {cases} cases, {} failures", failures.len());
    if !failures.is_empty() {
        let list: Vec<String> = failures
            .iter()
            .map(|f| format!("  {} = {}: {}", f.field, f.value, f.problem))
            .collect();
        panic!(
            "{} of {cases} {kind} cases failed:\n{}",
            failures.len(),
            list.join("\n")
        );
    }
}

thread_local! {
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Silences the panic hook on this thread while panics are caught and reported (restored on
/// drop); other threads keep the default hook.
struct QuietPanics;
impl QuietPanics {
    fn new() -> Self {
        static INSTALL: std::sync::Once = std::sync::Once::new();
        INSTALL.call_once(|| {
            let prev = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                if !QUIET.with(|q| q.get()) {
                    prev(info)
                }
            }));
        });
        QUIET.with(|q| q.set(true));
        QuietPanics
    }
}
impl Drop for QuietPanics {
    fn drop(&mut self) {
        QUIET.with(|q| q.set(false));
    }
}

/// A small plain CSV trace used by the trace-option cases.
const TRACE: &str = "arrival_s,prompt_tokens,output_tokens,payload_bytes\n\
0.0,100,20,1000\n0.5,200,30,\n1.0,50,10,5000\n1.5,300,40,\n2.0,80,12,2000\n";

fn trace_spec() -> TraceSpec {
    testbed::trace("robust.csv", TraceFormat::Csv)
}
