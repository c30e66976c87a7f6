//! Robustness of the number rules of scenarios built in code.
//!
//! Every numeric field of a [`Scenario`] is set, one at a time, to NaN, the infinities, zero,
//! negative, tiny and huge values. For each value the table states the documented rule; the test
//! checks that `Scenario::build()` rejects the value with an error whose path names the field when
//! the rule says so, and otherwise that a short run (with the least-loaded policy and with PerLLM)
//! completes without a panic, ends every request and reports finite numbers. A panic (an
//! arithmetic overflow in a debug build, an `expect`) anywhere is a failure.

use perllm_core::policies::builtin;
use perllm_core::simple::LeastLoaded;
use perllm_core::spec::*;
use perllm_core::workload::trace::{Reader, TraceSource};
use perllm_core::workload::{RequestSource, Synthetic};
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

/// Can `v` stand in a constraint whose other number is `other` (see
/// `LinearConstraint::normalised`)?
fn representable(v: f64, other: f64) -> bool {
    let a = v.abs();
    v.is_finite()
        && (v == 0.0
            || (a >= f64::MIN_POSITIVE && a.min(other) / a.max(other) >= MIN_CONSTRAINT_RATIO))
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

fn fluctuate(s: &mut Scenario, f: Fluctuation) {
    s.links[0].fluctuation = f;
    s.links[0].redraw_ns = Some(SECOND);
}

type FloatSet = fn(&mut Scenario, f64);
type IntSet = fn(&mut Scenario, u64);
type FloatRow = (&'static str, &'static str, fn(f64) -> bool, FloatSet);
type IntRow = (&'static str, &'static str, fn(u64) -> bool, IntSet);

/// `(field, path fragments of the expected error separated by |, rule, setter)`.
fn float_fields() -> Vec<FloatRow> {
    vec![
        (
            "hardware.compute_flops",
            "hardware[xeon-4214r].compute",
            |v| pos(v) && v >= limits::MIN_COMPUTE_FLOPS,
            |s, v| s.hardware[0].compute_flops = v,
        ),
        (
            "hardware.memory_bandwidth",
            "hardware[xeon-4214r].memory_bandwidth",
            |v| pos(v) && v >= limits::MIN_MEMORY_BANDWIDTH,
            |s, v| s.hardware[0].memory_bandwidth_bytes_per_s = v,
        ),
        (
            "hardware.power_idle",
            "hardware[xeon-4214r].power",
            |v| nonneg(v) && v <= 125.0,
            |s, v| s.hardware[0].power_idle_w = v,
        ),
        (
            "hardware.power_busy",
            "hardware[xeon-4214r].power.busy",
            |v| (60.0..=limits::MAX_POWER_W).contains(&v),
            |s, v| s.hardware[0].power_busy_w = v,
        ),
        (
            "hardware.compute_efficiency",
            "hardware[xeon-4214r].compute_efficiency",
            |v| pos(v) && (limits::MIN_EFFICIENCY..=1.0).contains(&v),
            |s, v| s.hardware[0].compute_efficiency = Some(v),
        ),
        (
            "hardware.bandwidth_efficiency",
            "hardware[xeon-4214r].bandwidth_efficiency",
            |v| pos(v) && (limits::MIN_EFFICIENCY..=1.0).contains(&v),
            |s, v| s.hardware[0].bandwidth_efficiency = Some(v),
        ),
        // 1e300 parameters do not fit any memory: rejected by the fit check instead.
        (
            "model.params",
            "model[llama2-7b].params|server[edge1].models",
            |v| pos(v) && v < 1e12,
            |s, v| s.models[0].params = v,
        ),
        (
            "link.bandwidth",
            "link[edge-lan].bandwidth",
            |v| pos(v) && v >= limits::MIN_LINK_BPS,
            |s, v| s.links[0].bandwidth_bps = v,
        ),
        (
            "link.energy_j_per_bit",
            "link[edge-lan].energy",
            |v| nonneg(v) && v <= limits::MAX_LINK_J_PER_BIT,
            |s, v| s.links[0].energy_j_per_bit = v,
        ),
        (
            "link.fluctuation.uniform",
            "link[edge-lan].bandwidth",
            unit_half_open,
            |s, v| fluctuate(s, Fluctuation::Uniform { frac: v }),
        ),
        (
            "link.fluctuation.walk.step",
            "link[edge-lan].fluctuation",
            nonneg,
            |s, v| {
                fluctuate(
                    s,
                    Fluctuation::RandomWalk {
                        step: v,
                        bound: 0.3,
                    },
                )
            },
        ),
        (
            "link.fluctuation.walk.bound",
            "link[edge-lan].fluctuation",
            unit_half_open,
            |s, v| {
                fluctuate(
                    s,
                    Fluctuation::RandomWalk {
                        step: 0.1,
                        bound: v,
                    },
                )
            },
        ),
        (
            "link.fluctuation.series.factor",
            "link[edge-lan].fluctuation",
            |v| {
                pos(v) && (limits::MIN_BANDWIDTH_FACTOR..=limits::MAX_BANDWIDTH_FACTOR).contains(&v)
            },
            |s, v| {
                fluctuate(
                    s,
                    Fluctuation::Series {
                        points: vec![(0, 1.0), (SECOND, v)],
                    },
                )
            },
        ),
        // Shares must also sum to 100%: set the others so that only the tried value can be wrong.
        (
            "slo.share",
            "slo[interactive].share",
            unit_closed,
            |s, v| {
                s.slos[0].share = v;
                s.slos[1].share = 0.85 - v.clamp(0.0, 0.85);
                s.slos[2].share = 0.15;
                if v > 0.85 && v <= 1.0 {
                    s.slos[1].share = 0.0;
                    s.slos[2].share = 1.0 - v;
                }
            },
        ),
        (
            "workload.model_share",
            "workload.models",
            unit_closed,
            |s, v| {
                s.workload.models[0].1 = v;
                s.workload.models[1].1 = 1.0 - v.clamp(0.0, 1.0);
            },
        ),
        (
            "workload.prompt.fixed",
            "workload.prompt_tokens",
            nonneg,
            |s, v| s.workload.prompt_tokens = SizeDist::Fixed { value: v },
        ),
        (
            "workload.prompt.uniform.hi",
            "workload.prompt_tokens",
            |v| v.is_finite() && v >= 1.0,
            |s, v| s.workload.prompt_tokens = SizeDist::Uniform { lo: 1.0, hi: v },
        ),
        (
            "workload.prompt.lognormal.median",
            "workload.prompt_tokens",
            pos,
            |s, v| {
                s.workload.prompt_tokens = SizeDist::LogNormal {
                    median: v,
                    sigma: 0.5,
                }
            },
        ),
        (
            "workload.output.lognormal.sigma",
            "workload.output_tokens",
            nonneg,
            |s, v| {
                s.workload.output_tokens = SizeDist::LogNormal {
                    median: 100.0,
                    sigma: v,
                }
            },
        ),
        (
            "workload.output.empirical",
            "workload.output_tokens",
            nonneg,
            |s, v| {
                s.workload.output_tokens = SizeDist::Empirical {
                    values: vec![10.0, v],
                }
            },
        ),
        (
            "workload.payload.fixed",
            "workload.payload",
            nonneg,
            |s, v| s.workload.payload_bytes = SizeDist::Fixed { value: v },
        ),
        (
            "workload.output_bytes_per_token",
            "workload.output_bytes_per_token",
            |v| nonneg(v) && v <= limits::MAX_OUTPUT_BYTES_PER_TOKEN,
            |s, v| s.workload.output_bytes_per_token = v,
        ),
        (
            "arrivals.poisson.rate",
            "workload.arrivals",
            rate,
            |s, v| s.workload.arrivals = Arrivals::Poisson { rate: v },
        ),
        ("arrivals.gamma.rate", "workload.arrivals", rate, |s, v| {
            s.workload.arrivals = Arrivals::Gamma { rate: v, cv: 2.0 }
        }),
        (
            "arrivals.gamma.cv",
            "workload.arrivals",
            |v| pos(v) && v <= limits::MAX_GAMMA_CV,
            |s, v| s.workload.arrivals = Arrivals::Gamma { rate: 4.0, cv: v },
        ),
        ("arrivals.on_off.rate", "workload.arrivals", rate, |s, v| {
            s.workload.arrivals = Arrivals::OnOff {
                rate: v,
                on_ns: SECOND,
                off_ns: SECOND,
            }
        }),
        (
            "arrivals.diurnal.mean_rate",
            "workload.arrivals",
            // The peak, mean x 1.5, is what the limit bounds.
            |v| rate(v * 1.5),
            |s, v| {
                s.workload.arrivals = Arrivals::Diurnal {
                    mean_rate: v,
                    amplitude: 0.5,
                    period_ns: 60 * SECOND,
                }
            },
        ),
        (
            "arrivals.diurnal.amplitude",
            "workload.arrivals",
            unit_closed,
            |s, v| {
                s.workload.arrivals = Arrivals::Diurnal {
                    mean_rate: 4.0,
                    amplitude: v,
                    period_ns: 60 * SECOND,
                }
            },
        ),
        // A zero step is allowed as long as some step is positive.
        (
            "arrivals.steps.rate",
            "workload.arrivals",
            |v| nonneg(v) && v <= limits::MAX_ARRIVAL_RATE,
            |s, v| {
                s.workload.arrivals = Arrivals::Steps {
                    steps: vec![(0, 4.0), (SECOND, v)],
                }
            },
        ),
        (
            "objective.weight.transmission",
            "objective.minimize.transmission",
            |v| nonneg(v) && v <= limits::MAX_OBJECTIVE_WEIGHT,
            |s, v| s.objective.weights.transmission = v,
        ),
        (
            "objective.weight.inference",
            "objective.minimize.inference",
            |v| nonneg(v) && v <= limits::MAX_OBJECTIVE_WEIGHT,
            |s, v| s.objective.weights.inference = v,
        ),
        (
            "objective.weight.idle",
            "objective.minimize.idle",
            |v| nonneg(v) && v <= limits::MAX_OBJECTIVE_WEIGHT,
            |s, v| s.objective.weights.idle = v,
        ),
        (
            "objective.constraint.coefficient",
            "objective.constraint",
            // `v * share(cloud) - 0.6 <= 0`: zero, or within 1e12 of 0.6 and not subnormal.
            |v| representable(v, 0.6),
            |s, v| s.objective.constraints[1].terms[0].0 = v,
        ),
        (
            "objective.constraint.constant",
            "objective.constraint",
            // `share(cloud) + v <= 0`.
            |v| representable(v, 1.0),
            |s, v| s.objective.constraints[1].constant = v,
        ),
        (
            "sim.step_noise",
            "sim.step_noise",
            unit_half_open,
            |s, v| s.sim.step_noise = v,
        ),
        (
            "sim.contention",
            "sim.contention",
            |v| nonneg(v) && v <= limits::MAX_CONTENTION,
            |s, v| s.sim.contention = v,
        ),
    ]
}

fn int_fields() -> Vec<IntRow> {
    let positive = |v: u64| v > 0;
    let any = |_: u64| true;
    vec![
        (
            "scenario.duration",
            "scenario.duration",
            positive,
            |s, v| s.duration_ns = v,
        ),
        (
            "scenario.slot",
            "scenario.slot",
            |v| v <= limits::MAX_TIME_PARAM_NS,
            |s, v| s.slot_ns = v,
        ),
        ("scenario.seed", "", any, |s, v| s.seed = v),
        // The 7B int8 model needs 7 GB of weights plus KV memory.
        (
            "hardware.memory",
            "hardware[xeon-4214r].memory|server[edge1].models",
            |v| v > 8_000_000_000,
            |s, v| s.hardware[0].memory_bytes = v,
        ),
        // A KV cache the memory cannot hold one request of is rejected by the fit check.
        (
            "model.kv_per_token",
            "model[llama2-7b].kv_per_token|workload.models",
            |v| v > 0 && v < 1 << 35,
            |s, v| s.models[0].kv_bytes_per_token = v,
        ),
        (
            "link.latency",
            "link[edge-lan].latency",
            |v| v <= limits::MAX_TIME_PARAM_NS,
            |s, v| s.links[0].latency_ns = v,
        ),
        (
            "link.redraw",
            "link[edge-lan].redraw",
            |v| v >= limits::MIN_REDRAW_NS,
            |s, v| s.links[0].redraw_ns = Some(v),
        ),
        (
            "link.series.time",
            "link[edge-lan].fluctuation",
            positive,
            |s, v| {
                fluctuate(
                    s,
                    Fluctuation::Series {
                        points: vec![(0, 1.0), (v, 0.5)],
                    },
                )
            },
        ),
        (
            "server.count",
            "server[edge1].hardware",
            |v| v > 0 && v <= u32::MAX as u64,
            |s, v| {
                s.servers[0].count = if v > u32::MAX as u64 { 0 } else { v as u32 };
            },
        ),
        (
            "server.max_batch",
            "server[edge1].max_batch",
            |v| v > 0 && v <= u32::MAX as u64,
            |s, v| {
                s.servers[0].max_batch = if v > u32::MAX as u64 { 0 } else { v as u32 };
            },
        ),
        (
            "slo.deadline",
            "slo[interactive].deadline",
            positive,
            |s, v| s.slos[0].deadline_ns = v,
        ),
        (
            "workload.max_prompt_tokens",
            "workload.max_prompt_tokens",
            |v| v > 0 && v <= u32::MAX as u64,
            |s, v| {
                s.workload.max_prompt_tokens = if v > u32::MAX as u64 { 0 } else { v as u32 };
                s.workload.prompt_tokens = SizeDist::Fixed { value: 1e18 };
            },
        ),
        (
            "workload.max_output_tokens",
            "workload.max_output_tokens",
            |v| v > 0 && v <= u32::MAX as u64,
            |s, v| {
                s.workload.max_output_tokens = if v > u32::MAX as u64 { 0 } else { v as u32 };
                s.workload.output_tokens = SizeDist::Fixed { value: 1e18 };
            },
        ),
        (
            "workload.max_requests",
            "workload.max_requests",
            positive,
            |s, v| s.workload.max_requests = Some(v.min(REQUESTS)),
        ),
        (
            "arrivals.on_off.on",
            "workload.arrivals",
            positive,
            |s, v| {
                s.workload.arrivals = Arrivals::OnOff {
                    rate: 4.0,
                    on_ns: v,
                    off_ns: SECOND,
                }
            },
        ),
        // An off period of u64::MAX ns cannot be added to an on period.
        (
            "arrivals.on_off.off",
            "workload.arrivals",
            |v| v < u64::MAX,
            |s, v| {
                s.workload.arrivals = Arrivals::OnOff {
                    rate: 4.0,
                    on_ns: SECOND,
                    off_ns: v,
                }
            },
        ),
        (
            "arrivals.diurnal.period",
            "workload.arrivals",
            positive,
            |s, v| {
                s.workload.arrivals = Arrivals::Diurnal {
                    mean_rate: 4.0,
                    amplitude: 0.5,
                    period_ns: v,
                }
            },
        ),
        (
            "arrivals.steps.time",
            "workload.arrivals",
            positive,
            |s, v| {
                s.workload.arrivals = Arrivals::Steps {
                    steps: vec![(0, 4.0), (v, 2.0)],
                }
            },
        ),
        ("sim.max_defers", "", any, |s, v| {
            s.sim.max_defers = v.min(u32::MAX as u64) as u32
        }),
        ("sim.drain", "sim.drain", positive, |s, v| {
            s.sim.drain_ns = Some(v)
        }),
    ]
}

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

#[test]
fn float_fields_reject_bad_numbers_and_run_extremes() {
    let mut failures = Vec::new();
    let mut cases = 0;
    let q = QuietPanics::new();
    for (field, path, rule, set) in float_fields() {
        for v in FLOATS {
            let mut sc = base();
            set(&mut sc, v);
            cases += 1;
            if let Some(f) = try_case(field, format!("{v:e}"), path, rule(v), sc) {
                failures.push(f);
            }
        }
    }
    drop(q);
    report("float-field", cases, failures);
}

#[test]
fn integer_fields_reject_bad_numbers_and_run_extremes() {
    let mut failures = Vec::new();
    let mut cases = 0;
    let q = QuietPanics::new();
    for (field, path, rule, set) in int_fields() {
        for v in INTS {
            let mut sc = base();
            set(&mut sc, v);
            cases += 1;
            if let Some(f) = try_case(field, v.to_string(), path, rule(v), sc) {
                failures.push(f);
            }
        }
    }
    drop(q);
    report("integer-field", cases, failures);
}

/// A small plain CSV trace used by the trace-option cases.
const TRACE: &str = "arrival_s,prompt_tokens,output_tokens,payload_bytes\n\
0.0,100,20,1000\n0.5,200,30,\n1.0,50,10,5000\n1.5,300,40,\n2.0,80,12,2000\n";

fn trace_spec() -> TraceSpec {
    TraceSpec {
        path: "robust.csv".into(),
        format: TraceFormat::Csv,
        speedup: 1.0,
        target_rate: None,
        window_ns: None,
        repeat: 1,
        skip_bad_rows: false,
        slo_assign: Assign::ByShare,
        model_assign: Assign::ByShare,
        payload: None,
    }
}

type TraceFloat = (&'static str, fn(f64) -> bool, fn(&mut TraceSpec, f64));
type TraceInt = (&'static str, fn(u64) -> bool, fn(&mut TraceSpec, u64));

#[test]
fn trace_options_reject_bad_numbers_and_run_extremes() {
    let mut failures = Vec::new();
    let mut cases = 0;
    let q = QuietPanics::new();
    let floats: Vec<TraceFloat> = vec![
        ("trace.speedup", pos, |t, v| t.speedup = v),
        ("trace.target_rate", rate, |t, v| t.target_rate = Some(v)),
        ("trace.payload.fixed", nonneg, |t, v| {
            t.payload = Some(SizeDist::Fixed { value: v })
        }),
    ];
    for (field, rule, set) in floats {
        for v in FLOATS {
            let mut sc = base();
            let mut t = trace_spec();
            set(&mut t, v);
            sc.workload.trace = Some(t);
            cases += 1;
            if let Some(f) = try_case(field, format!("{v:e}"), "workload.trace", rule(v), sc) {
                failures.push(f);
            }
        }
    }
    let ints: Vec<TraceInt> = vec![
        (
            "trace.repeat",
            |v| v > 0 && v <= u32::MAX as u64,
            |t, v| t.repeat = if v > u32::MAX as u64 { 0 } else { v as u32 },
        ),
        // Starts past the last row (2 s) are valid but replay nothing (see the test below): clamp
        // them into the rows unless they are invalid (not before the 10 s end).
        (
            "trace.window.start",
            |v| v < 10 * SECOND,
            |t, v| {
                let start = if v >= 10 * SECOND {
                    v
                } else {
                    v.min(2 * SECOND)
                };
                t.window_ns = Some((start, 10 * SECOND))
            },
        ),
        (
            "trace.window.end",
            |v| v > 0,
            |t, v| t.window_ns = Some((0, v)),
        ),
        (
            "trace.by_size.max_tokens",
            |_| true,
            |t, v| {
                t.slo_assign = Assign::BySize {
                    rules: vec![(v, "interactive".into())],
                }
            },
        ),
    ];
    for (field, rule, set) in ints {
        for v in INTS {
            let mut sc = base();
            let mut t = trace_spec();
            set(&mut t, v);
            sc.workload.trace = Some(t);
            cases += 1;
            if let Some(f) = try_case(field, v.to_string(), "workload.trace", rule(v), sc) {
                failures.push(f);
            }
        }
    }
    drop(q);
    report("trace-option", cases, failures);
}

#[test]
fn trace_window_past_the_end_is_a_clear_error() {
    let mut sc = base();
    let mut t = trace_spec();
    t.window_ns = Some((5 * SECOND, 10 * SECOND));
    sc.workload.trace = Some(t);
    let world = sc.build().expect("a window past the rows is valid");
    let m = run_all(&world).unwrap_err();
    assert!(
        m.contains("robust.csv") && m.contains("no rows in its window"),
        "{m}"
    );
}

/// Run one policy and return the report (panics on a run error).
fn run_one(world: &World, p: &mut dyn Policy) -> Report {
    let cost = Roofline::default();
    let mut src = Synthetic::new(world);
    let mut dog = Watchdog(std::time::Instant::now());
    run(world, p, &cost, &mut src, &mut [&mut dog]).expect("the run succeeds")
}

/// Each plausibility limit, exactly at its boundary, is accepted and runs: every request ends
/// (delivered or, when it would take longer than the drain limit, `unfinished`) with finite numbers.
#[test]
fn every_limit_at_its_boundary_runs() {
    type Set = fn(&mut Scenario);
    let rows: Vec<(&str, Set)> = vec![
        ("compute", |s| {
            s.hardware[0].compute_flops = limits::MIN_COMPUTE_FLOPS
        }),
        ("memory_bandwidth", |s| {
            s.hardware[0].memory_bandwidth_bytes_per_s = limits::MIN_MEMORY_BANDWIDTH
        }),
        ("compute_efficiency", |s| {
            s.hardware[0].compute_efficiency = Some(limits::MIN_EFFICIENCY)
        }),
        ("bandwidth_efficiency", |s| {
            s.hardware[0].bandwidth_efficiency = Some(limits::MIN_EFFICIENCY)
        }),
        ("power.busy", |s| {
            s.hardware[0].power_busy_w = limits::MAX_POWER_W
        }),
        ("link.bandwidth", |s| {
            s.links[0].bandwidth_bps = limits::MIN_LINK_BPS
        }),
        ("link.latency", |s| {
            s.links[0].latency_ns = limits::MAX_TIME_PARAM_NS
        }),
        ("link.series", |s| {
            fluctuate(
                s,
                Fluctuation::Series {
                    points: vec![
                        (0, limits::MIN_BANDWIDTH_FACTOR),
                        (SECOND, limits::MAX_BANDWIDTH_FACTOR),
                        (2 * SECOND, limits::MIN_BANDWIDTH_FACTOR),
                    ],
                },
            )
        }),
        ("link.uniform.redraw", |s| {
            fluctuate(s, Fluctuation::Uniform { frac: 0.999_999 });
            s.links[0].redraw_ns = Some(limits::MIN_REDRAW_NS);
        }),
        ("output_bytes_per_token", |s| {
            s.workload.output_bytes_per_token = limits::MAX_OUTPUT_BYTES_PER_TOKEN
        }),
        ("contention", |s| s.sim.contention = limits::MAX_CONTENTION),
        ("slot", |s| s.slot_ns = limits::MAX_TIME_PARAM_NS),
        ("arrival_rate", |s| {
            s.workload.arrivals = Arrivals::Poisson {
                rate: limits::MAX_ARRIVAL_RATE,
            }
        }),
        ("gamma.cv", |s| {
            s.workload.arrivals = Arrivals::Gamma {
                rate: 4.0,
                cv: limits::MAX_GAMMA_CV,
            }
        }),
        ("link.energy + payload 1e15 bytes + weights", |s| {
            for l in &mut s.links {
                l.energy_j_per_bit = limits::MAX_LINK_J_PER_BIT;
            }
            s.workload.payload_bytes = SizeDist::Fixed { value: 1e15 };
            s.objective.weights = ObjectiveWeights {
                transmission: limits::MAX_OBJECTIVE_WEIGHT,
                inference: limits::MAX_OBJECTIVE_WEIGHT,
                idle: limits::MAX_OBJECTIVE_WEIGHT,
            };
        }),
    ];
    let mut failures = Vec::new();
    for (name, set) in &rows {
        let mut sc = base();
        set(&mut sc);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let w = sc.build().map_err(|e| format!("rejected: {e:?}"))?;
            run_all(&w)
        }));
        match outcome {
            Err(p) => failures.push(format!("{name}: panicked: {}", panic_message(p))),
            Ok(Err(m)) => failures.push(format!("{name}: {m}")),
            Ok(Ok(())) => {}
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// All the limits at once on every server and link: nothing can be served within the drain
/// limit, so every request ends `unfinished` at last arrival + drain, and the run stops there.
#[test]
fn a_hopeless_scenario_stops_at_the_drain_limit() {
    let mut sc = base();
    for h in &mut sc.hardware {
        h.compute_flops = limits::MIN_COMPUTE_FLOPS;
        h.memory_bandwidth_bytes_per_s = limits::MIN_MEMORY_BANDWIDTH;
        h.compute_efficiency = Some(limits::MIN_EFFICIENCY);
        h.bandwidth_efficiency = Some(limits::MIN_EFFICIENCY);
        h.power_busy_w = limits::MAX_POWER_W;
    }
    for l in &mut sc.links {
        l.bandwidth_bps = limits::MIN_LINK_BPS;
        // A 1 s redraw keeps the debug test fast: a busy link costs one event per period
        // (with the 1 ms minimum, 3.6 million per link over the hour).
        l.fluctuation = Fluctuation::Uniform { frac: 0.5 };
        l.redraw_ns = Some(SECOND);
    }
    sc.workload.output_bytes_per_token = limits::MAX_OUTPUT_BYTES_PER_TOKEN;
    sc.workload.payload_bytes = SizeDist::Fixed { value: 1e15 };
    sc.sim.contention = limits::MAX_CONTENTION;
    for l in &mut sc.links {
        l.energy_j_per_bit = limits::MAX_LINK_J_PER_BIT;
    }
    sc.objective.weights = ObjectiveWeights {
        transmission: limits::MAX_OBJECTIVE_WEIGHT,
        inference: limits::MAX_OBJECTIVE_WEIGHT,
        idle: limits::MAX_OBJECTIVE_WEIGHT,
    };
    let w = sc.build().expect("every value is at its limit, not beyond");
    let drain = w.drain_ns();
    assert_eq!(
        drain, HOUR,
        "the default drain is one hour for short deadlines"
    );
    let r = run_one(&w, &mut LeastLoaded::default());
    check_report(&r).unwrap();
    assert_eq!(r.completed, 0);
    assert_eq!(r.rejected_by_reason.get("unfinished"), Some(&r.arrived));
    // The run stopped at the last arrival (< 5 s) + the drain.
    assert!(
        r.horizon_s > 3600.0 && r.horizon_s < 3605.0,
        "horizon {} s",
        r.horizon_s
    );

    // A shorter explicit drain stops earlier; a request that was delivered is unaffected.
    sc.sim.drain_ns = Some(60 * SECOND);
    let w = sc.build().unwrap();
    let r = run_one(&w, &mut LeastLoaded::default());
    assert!(r.horizon_s > 60.0 && r.horizon_s < 65.0, "{}", r.horizon_s);
    assert_eq!(r.rejected_by_reason.get("unfinished"), Some(&r.arrived));
}

/// The drain limit never changes a normal run: the paper testbed at a moderate load ends long
/// before it, with the same report as with an enormous drain.
#[test]
fn the_drain_limit_does_not_touch_normal_runs() {
    let mut sc = testbed::paper(4.0, 20 * SECOND);
    let w = sc.build().unwrap();
    let a = run_one(&w, &mut LeastLoaded::default());
    sc.sim.drain_ns = Some(u64::MAX);
    let w = sc.build().unwrap();
    let b = run_one(&w, &mut LeastLoaded::default());
    assert!(a.completed > 0);
    assert_eq!(a.rejected_by_reason.get("unfinished"), None);
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
}

/// A rate typed in the wrong unit would hold millions of pending requests per slot, and a huge
/// expected count would run for days: both are build errors that say what to do, and
/// `max_requests` is the explicit way past the second.
#[test]
fn arrival_volume_limits() {
    let msg = |sc: &Scenario| -> String {
        match sc.build() {
            Ok(_) => String::new(),
            Err(e) => format!("{e:?}"),
        }
    };
    let with = |rate: Arrivals, secs: u64, max: Option<u64>| {
        let mut s = testbed::paper(1.0, secs * SECOND);
        s.workload.arrivals = rate;
        s.workload.max_requests = max;
        s
    };
    // 1e9/s (meant per hour or day): the peak is above the limit, whatever max_requests says.
    for max in [None, Some(8)] {
        let m = msg(&with(Arrivals::Poisson { rate: 1e9 }, 60, max));
        assert!(
            m.contains("workload.arrivals") && m.contains("1e9 requests/s") && m.contains("1e9/h"),
            "{m}"
        );
    }
    // The peak of a diurnal curve and the largest step count, not the mean.
    let m = msg(&with(
        Arrivals::Diurnal {
            mean_rate: 8e5,
            amplitude: 0.5,
            period_ns: 60 * SECOND,
        },
        60,
        None,
    ));
    assert!(m.contains("1.2e6 requests/s"), "{m}");
    let m = msg(&with(
        Arrivals::Steps {
            steps: vec![(0, 1.0), (SECOND, 2e6)],
        },
        60,
        None,
    ));
    assert!(m.contains("2e6 requests/s"), "{m}");
    // 1e5/s for 3 h is about 1.08e9 requests: an error naming max_requests ...
    let m = msg(&with(Arrivals::Poisson { rate: 1e5 }, 3 * 3600, None));
    assert!(
        m.contains("about 1.08e9 requests expected") && m.contains("max_requests"),
        "{m}"
    );
    // ... exactly 1e9 is accepted, and so is any volume with an explicit max_requests (run it).
    assert_eq!(
        msg(&with(Arrivals::Poisson { rate: 1e5 }, 10_000, None)),
        ""
    );
    let sc = with(Arrivals::Poisson { rate: 1e5 }, 3 * 3600, Some(REQUESTS));
    let w = sc.build().unwrap();
    run_all(&w).unwrap();
    // The mean of on/off and step arrivals is time-weighted: 1e6/s for 1 s in 1,000 s over a day
    // is 8.6e7 requests (accepted); steps reaching 1e6/s after 10 s of an hour are 3.6e9.
    let on_off = Arrivals::OnOff {
        rate: 1e6,
        on_ns: SECOND,
        off_ns: 999 * SECOND,
    };
    assert_eq!(msg(&with(on_off, 86_400, None)), "");
    let m = msg(&with(
        Arrivals::Steps {
            steps: vec![(0, 1.0), (10 * SECOND, 1e6)],
        },
        3600,
        None,
    ));
    assert!(m.contains("about 3.59e9 requests expected"), "{m}");
}

/// Gamma arrivals with a huge coefficient of variation (issue 21): `cv` above 100 is a build
/// error; a process that gets past the build anyway (a world edited after it) is stopped by the
/// generator after 2,000,000 arrivals in one simulated second instead of generating until memory
/// runs out (cv = 1e5 at 6/s: 3.8 GB, then an abort).
#[test]
fn gamma_arrivals_are_bounded_at_build_and_while_generating() {
    let gamma = |cv: f64| {
        let mut s = testbed::paper(1.0, 60 * SECOND);
        s.workload.arrivals = Arrivals::Gamma { rate: 6.0, cv };
        s
    };
    for cv in [100.5, 1e4, 1e5, 1e300] {
        let errs = gamma(cv).build().unwrap_err();
        let m = format!("{errs:?}");
        assert!(
            m.contains("workload.arrivals") && m.contains("above the maximum of 100"),
            "{m}"
        );
    }
    // cv = 100 (the limit) builds and runs with a realised volume of the right order.
    let w = gamma(100.0).build().unwrap();
    run_all(&w).unwrap();
    // Past the build: a world edited to cv = 1e5.
    let mut w = gamma(1.0).build().unwrap();
    w.scenario.workload.arrivals = Arrivals::Gamma { rate: 6.0, cv: 1e5 };
    // (The default limit is 2,000,000 per second; 20,000 keeps the test fast in debug builds.)
    assert_eq!(limits::MAX_ARRIVALS_PER_SECOND, 2_000_000);
    let mut src = Synthetic::new(&w).with_arrival_limit(20_000);
    let mut n = 0u64;
    let err = loop {
        match src.next_request() {
            Some(Ok(_)) => n += 1,
            Some(Err(e)) => break e,
            None => panic!("ended after {n} requests without an error"),
        }
    };
    assert_eq!(n, 20_000);
    let m = err.to_string();
    assert!(
        m.starts_with(
            "workload.arrivals: row 0: more than 20,000 requests arrive in simulated second 0"
        ),
        "{m}"
    );
    assert!(src.next_request().is_none());
}

/// A trace sped up too far (here 10,000 rows 1e9 times faster, repeated) would put millions of
/// requests into one simulated second: the replay stops with an error naming the trace and the
/// row at the 1,000,001st request of that second. A `target_rate` above 1M/s is a build error.
#[test]
fn a_trace_sped_up_past_the_rate_limit_is_an_error() {
    let mut text = String::from("arrival_s,prompt_tokens,output_tokens\n");
    for i in 0..10_000 {
        text.push_str(&format!("{}.{:03},100,20\n", i / 1000, i % 1000));
    }
    let mut sc = base();
    sc.workload.max_requests = None;
    let mut t = trace_spec();
    t.speedup = 1e9;
    t.repeat = 101;
    sc.workload.trace = Some(t.clone());
    let world = sc.build().unwrap();
    let bytes = text.into_bytes();
    let mut src = TraceSource::with_opener(
        &t,
        "robust.csv",
        || Ok(Box::new(Cursor::new(bytes.clone())) as Reader),
        &world,
    )
    .unwrap();
    let mut n = 0u64;
    let e = loop {
        match src.next_request() {
            Some(Ok(_)) => n += 1,
            Some(Err(e)) => break e,
            None => panic!("the replay ended after {n} requests"),
        }
    };
    assert_eq!(n, 1_000_000);
    // Request 1,000,001 is the first row (line 2) of pass 101.
    assert_eq!((e.source_name.as_str(), e.row), ("robust.csv", 2), "{e}");
    assert!(
        e.message
            .contains("more than 1,000,000 requests arrive in simulated second 0")
            && e.message.contains("speedup"),
        "{e}"
    );
    assert!(src.next_request().is_none());

    t.speedup = 1.0;
    t.target_rate = Some(2e6);
    sc.workload.trace = Some(t);
    let m = format!("{:?}", sc.build().unwrap_err());
    assert!(
        m.contains("workload.trace.target_rate") && m.contains("2e6 requests/s is above"),
        "{m}"
    );
}

/// Names (issue 21): empty names, control characters and names over 256 bytes are build errors
/// that quote at most a short excerpt (a 10 MB name makes a message of under 200 bytes); a server
/// named like a family and a model listed twice on a server are ambiguous; share sums that are
/// not 1 print enough digits to show it.
#[test]
fn names_are_usable_and_unambiguous() {
    let errs = |sc: &Scenario| -> Vec<ScenarioErrorText> {
        match sc.build() {
            Ok(_) => Vec::new(),
            Err(e) => e
                .iter()
                .map(|x| ScenarioErrorText(format!("{}: {}", x.path, x.message)))
                .collect(),
        }
    };
    for (name, want) in [
        ("", "is empty"),
        ("a\nb", "`a\\nb` contains a control character"),
        ("a\0b", "`a\\u{0}b` contains a control character"),
        ("tab\there", "contains a control character"),
    ] {
        let mut sc = base();
        sc.hardware[0].name = name.into();
        let e = errs(&sc);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].0.contains("hardware#1") && e[0].0.contains(want),
            "{e:?}"
        );
    }
    let mut sc = base();
    sc.slos[1].name = "s".repeat(10_000_000);
    let e = errs(&sc);
    assert_eq!(e.len(), 1, "{} errors", e.len());
    assert!(e[0].0.len() < 200, "{} bytes", e[0].0.len());
    assert!(
        e[0].0
            .contains("(10000000 bytes)` is longer than 256 bytes"),
        "{}",
        e[0].0
    );
    let mut sc = base();
    sc.servers[0].family = Some(String::new());
    assert!(
        errs(&sc)[0]
            .0
            .contains("the family name of server 1 is empty")
    );

    // Counts: 10,001 servers, 101 SLO classes (before: a 1,000,000-server family took 3.5 GB,
    // 5,000 classes 2.5 GB).
    let mut sc = base();
    let s0 = sc.servers[0].clone();
    sc.servers = (0..10_001)
        .map(|i| ServerSpec {
            name: format!("e{i}"),
            ..s0.clone()
        })
        .collect();
    let e = errs(&sc);
    assert!(
        e[0].0
            .contains("10001 server declarations, more than the 10000"),
        "{e:?}"
    );
    let mut sc = base();
    let c0 = sc.slos[0].clone();
    sc.slos = (0..101)
        .map(|i| SloClass {
            name: format!("c{i}"),
            share: 1.0 / 101.0,
            ..c0.clone()
        })
        .collect();
    let e = errs(&sc);
    assert!(
        e[0].0.contains("101 slo declarations, more than the 100"),
        "{e:?}"
    );
    // A server named like the `edge` family.
    let mut sc = base();
    let mut lone = sc.servers[0].clone();
    lone.name = "edge".into();
    lone.family = None;
    sc.servers.push(lone);
    let e = errs(&sc);
    assert!(
        e.iter().any(|x| x.0.starts_with(
            "server[edge]: server `edge` has the name of the family of servers edge1"
        )),
        "{e:?}"
    );
    // A model twice on a server.
    let mut sc = base();
    let m = sc.servers[0].models[0].clone();
    sc.servers[0].models.push(m.clone());
    let e = errs(&sc);
    assert!(
        e.iter()
            .any(|x| x.0.ends_with(&format!("model `{m}` is listed twice"))),
        "{e:?}"
    );
    // Shares that sum to 99.9995%: said so, not "100.0%".
    let mut sc = base();
    sc.workload.models[0].1 -= 5e-6;
    let e = errs(&sc);
    assert!(
        e.iter()
            .any(|x| x.0.contains("model shares sum to 99.99950%, not 100%")),
        "{e:?}"
    );
}

#[derive(Debug)]
struct ScenarioErrorText(String);
