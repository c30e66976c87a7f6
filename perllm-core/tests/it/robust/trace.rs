//! The trace options' numbers, and a window past the end of the trace.

use super::*;

type TraceFloat = (&'static str, fn(f64) -> bool, fn(&mut TraceSpec, f64));
type TraceInt = (&'static str, fn(u64) -> bool, fn(&mut TraceSpec, u64));

/// A trace option's row as a scenario row: the option set on the base trace.
#[allow(clippy::type_complexity)]
fn on_trace<V: Copy>(
    (field, rule, set): (&'static str, fn(V) -> bool, fn(&mut TraceSpec, V)),
) -> (
    &'static str,
    &'static str,
    fn(V) -> bool,
    impl Fn(&mut Scenario, V),
) {
    let set_on_trace = move |sc: &mut Scenario, v: V| {
        let mut t = trace_spec();
        set(&mut t, v);
        sc.workload.trace = Some(t);
    };
    (field, "workload.trace", rule, set_on_trace)
}

#[test]
fn trace_options_reject_bad_numbers_and_run_extremes() {
    let floats: Vec<TraceFloat> = vec![
        ("trace.speedup", pos, |t, v| t.speedup = v),
        ("trace.target_rate", rate, |t, v| t.target_rate = Some(v)),
        ("trace.payload.fixed", nonneg, |t, v| {
            t.payload = Some(SizeDist::Fixed { value: v })
        }),
    ];
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
    let (float_cases, mut failures) = sweep(floats.into_iter().map(on_trace), &FLOATS, |v| {
        format!("{v:e}")
    });
    let (int_cases, more) = sweep(ints.into_iter().map(on_trace), &INTS, |v| v.to_string());
    failures.extend(more);
    report("trace-option", float_cases + int_cases, failures);
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
