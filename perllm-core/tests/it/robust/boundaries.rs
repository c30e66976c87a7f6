//! Limits at their boundaries: every plausibility limit, the drain limit, arrival volumes and
//! rates.

use super::*;

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
    let (n, e) = first_error(&mut src);
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
