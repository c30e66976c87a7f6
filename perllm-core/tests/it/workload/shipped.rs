//! The shipped Azure slice: replayed directly, through `source_for`, and through the simulator;
//! empirical sizes from a trace.

use super::*;

// ------------------------------------------------------------------------------------------------
// The shipped Azure slice
// ------------------------------------------------------------------------------------------------

const SLICE: &str = include_str!("../../../../examples/traces/azure-llm-2023-conv-10min.csv");

/// Seconds since midnight from `YYYY-MM-DD HH:MM:SS.fffffff`, computed independently of the
/// replayer (all rows of the slice are on the same day).
fn secs_of_day(line: &str) -> f64 {
    let ts = line.split(',').next().unwrap();
    let time = ts.split(' ').nth(1).unwrap();
    let mut it = time.split(':');
    let h: f64 = it.next().unwrap().parse().unwrap();
    let m: f64 = it.next().unwrap().parse().unwrap();
    let s: f64 = it.next().unwrap().parse().unwrap();
    h * 3600.0 + m * 60.0 + s
}

#[test]
fn shipped_azure_slice_replays_exactly() {
    let lines: Vec<&str> = SLICE
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let n = lines.len();
    let span = secs_of_day(lines[n - 1]) - secs_of_day(lines[0]);
    let prompt: u64 = lines
        .iter()
        .map(|l| l.trim().split(',').nth(1).unwrap().parse::<u64>().unwrap())
        .sum();
    let output: u64 = lines
        .iter()
        .map(|l| l.trim().split(',').nth(2).unwrap().parse::<u64>().unwrap())
        .sum();
    assert!(
        n > 2000 && span > 590.0,
        "the slice is the first ten minutes ({n} rows, {span} s)"
    );

    let sp = spec(TraceFormat::Azure);
    let w = world(Some(sp.clone()));
    let mut src = TraceSource::new(&sp, "azure", reader(SLICE), &w).unwrap();
    let v = drain(&mut src).unwrap();
    assert_eq!(v.len(), n);
    assert_eq!(src.skipped(), 0);
    assert_eq!(v[0].arrival_ns, 0);
    let got_span = v[n - 1].arrival_ns as f64 / 1e9;
    assert!((got_span - span).abs() < 1e-6, "span {got_span} vs {span}");
    assert_eq!(
        v.iter().map(|r| r.prompt_tokens as u64).sum::<u64>(),
        prompt
    );
    assert_eq!(
        v.iter().map(|r| r.output_tokens as u64).sum::<u64>(),
        output
    );
    assert!(v.windows(2).all(|p| p[0].arrival_ns <= p[1].arrival_ns));

    // The summary agrees.
    let s = trace::summarize(TraceFormat::Azure, "azure", reader(SLICE), false).unwrap();
    assert_eq!(
        (s.pass.rows, s.pass.prompt_tokens, s.pass.output_tokens),
        (n as u64, prompt, output)
    );
}

#[test]
fn shipped_azure_slice_through_source_for() {
    let mut sp = spec(TraceFormat::Azure);
    sp.path = "traces/azure-llm-2023-conv-10min.csv".into();
    sp.target_rate = Some(20.0);
    let w = world(Some(sp));
    let opened = std::cell::RefCell::new(Vec::new());
    let open = |p: &str| -> std::io::Result<Reader> {
        opened.borrow_mut().push(p.to_string());
        Ok(reader(SLICE))
    };
    let v = drain(&mut *source_for(&w, &open).unwrap()).unwrap();
    assert_eq!(
        opened.borrow().as_slice(),
        ["traces/azure-llm-2023-conv-10min.csv"; 2]
    );
    // n requests at 20 per second: the pass lasts n / 20 s, so the last of them arrives at
    // (n - 1) / 20 s (the pass period is the span plus one mean gap).
    let n = SLICE.lines().skip(1).count();
    assert_eq!(v.len(), n);
    let last = v[n - 1].arrival_ns as f64 / 1e9;
    assert!(
        (last - (n - 1) as f64 / 20.0).abs() < 1e-3,
        "last arrival {last}"
    );
}

#[test]
fn source_for_without_trace_is_synthetic() {
    let w = world_with(None, |s| s.duration_ns = 10 * SECOND);
    let open = |_: &str| -> std::io::Result<Reader> { panic!("no file should be opened") };
    let a = drain(&mut *source_for(&w, &open).unwrap()).unwrap();
    let b = drain(&mut Synthetic::new(&w)).unwrap();
    assert_eq!(a, b);
    assert!(!a.is_empty());
}

#[test]
fn empirical_sizes_from_a_trace() {
    let (p, o) =
        trace::empirical_sizes(TraceFormat::Azure, "azure", reader(SLICE), 100_000, 1).unwrap();
    let (SizeDist::Empirical { values: p }, SizeDist::Empirical { values: o }) = (p, o) else {
        panic!("empirical")
    };
    let lines: Vec<&str> = SLICE.lines().skip(1).collect();
    assert_eq!(p.len(), lines.len());
    assert_eq!(
        p.iter().sum::<f64>() as u64,
        lines
            .iter()
            .map(|l| l.trim().split(',').nth(1).unwrap().parse::<u64>().unwrap())
            .sum::<u64>()
    );
    assert_eq!(o.len(), lines.len());
    // A bounded reservoir keeps a sample of real rows.
    let (p, _) =
        trace::empirical_sizes(TraceFormat::Azure, "azure", reader(SLICE), 100, 1).unwrap();
    let SizeDist::Empirical { values } = p else {
        panic!()
    };
    assert_eq!(values.len(), 100);
    let all: std::collections::HashSet<u64> = lines
        .iter()
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    assert!(values.iter().all(|v| all.contains(&(*v as u64))));
}

// Through the simulator
// ------------------------------------------------------------------------------------------------

#[test]
fn simulator_replays_the_slice_window() {
    use perllm_core::simple::LeastLoaded;
    // The first two minutes of the slice, counted independently.
    let lines: Vec<&str> = SLICE.lines().skip(1).collect();
    let t0 = secs_of_day(lines[0]);
    let n = lines.iter().filter(|l| secs_of_day(l) - t0 < 120.0).count() as u64;
    let mut sp = spec(TraceFormat::Azure);
    sp.window_ns = Some((0, 120 * SECOND));
    let w = world(Some(sp.clone()));
    let run = || {
        let mut src = TraceSource::new(&sp, "azure", reader(SLICE), &w).unwrap();
        perllm_core::run(
            &w,
            &mut LeastLoaded::default(),
            &perllm_core::Roofline::default(),
            &mut src,
            &mut [],
        )
        .unwrap()
    };
    let a = run();
    assert_eq!(a.arrived, n);
    assert_eq!(a.completed + a.rejected, n);
    assert_eq!(a, run(), "a replay is deterministic");
}

#[test]
fn simulator_reports_a_malformed_row() {
    use perllm_core::simple::LeastLoaded;
    let text = "arrival_s,prompt_tokens,output_tokens\n0,10,10\n0.5,10,ten\n1,10,10\n";
    let sp = spec(TraceFormat::Csv);
    let w = world(Some(sp.clone()));
    let mut src = TraceSource::new(&sp, "bad.csv", reader(text), &w).unwrap();
    let e = perllm_core::run(
        &w,
        &mut LeastLoaded::default(),
        &perllm_core::Roofline::default(),
        &mut src,
        &mut [],
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("bad.csv: row 3: output tokens: `ten`"),
        "{msg}"
    );
}

// ------------------------------------------------------------------------------------------------
