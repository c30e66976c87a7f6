//! The synthetic generators: sample statistics against their parameters (fixed seed).

use super::*;

// ------------------------------------------------------------------------------------------------
// Synthetic generators: sample statistics vs parameters (fixed seed)
// ------------------------------------------------------------------------------------------------

fn synth(arrivals: Arrivals, duration_s: u64, f: impl FnOnce(&mut WorkloadSpec)) -> Vec<Request> {
    let w = world_with(None, |s| {
        s.duration_ns = duration_s * SECOND;
        s.workload.arrivals = arrivals;
        f(&mut s.workload);
    });
    drain(&mut Synthetic::new(&w)).unwrap()
}

fn gaps(v: &[Request]) -> Vec<f64> {
    v.windows(2)
        .map(|w| (w[1].arrival_ns - w[0].arrival_ns) as f64 / 1e9)
        .collect()
}

fn mean_cv(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, var.sqrt() / m)
}

fn median(mut x: Vec<f64>) -> f64 {
    x.sort_by(f64::total_cmp);
    x[x.len() / 2]
}

#[test]
fn poisson_rate_and_cv() {
    let v = synth(Arrivals::Poisson { rate: 50.0 }, 2_000, |_| {});
    let rate = v.len() as f64 / 2_000.0;
    assert!((rate - 50.0).abs() < 0.5, "rate {rate}");
    let (m, cv) = mean_cv(&gaps(&v));
    assert!(
        (m - 0.02).abs() < 0.0003 && (cv - 1.0).abs() < 0.02,
        "mean {m} cv {cv}"
    );
}

#[test]
fn gamma_rate_and_cv() {
    for cv_want in [0.5, 3.0] {
        let v = synth(
            Arrivals::Gamma {
                rate: 100.0,
                cv: cv_want,
            },
            1_500,
            |_| {},
        );
        let (m, cv) = mean_cv(&gaps(&v));
        assert!((m - 0.01).abs() / 0.01 < 0.03, "cv {cv_want}: mean gap {m}");
        assert!(
            (cv - cv_want).abs() / cv_want < 0.06,
            "cv {cv_want}: sample cv {cv}"
        );
    }
}

#[test]
fn on_off_duty_and_rate() {
    // On 2 s at 40/s, off 3 s: arrivals only in on phases, mean rate 40 x 2/5 = 16/s.
    let v = synth(
        Arrivals::OnOff {
            rate: 40.0,
            on_ns: 2 * SECOND,
            off_ns: 3 * SECOND,
        },
        2_000,
        |_| {},
    );
    assert!(
        v.iter().all(|r| r.arrival_ns % (5 * SECOND) < 2 * SECOND),
        "an arrival in an off phase"
    );
    let rate = v.len() as f64 / 2_000.0;
    assert!((rate - 16.0).abs() < 0.4, "rate {rate}");
}

#[test]
fn diurnal_curve() {
    // rate(t) = 20 (1 + 0.6 sin(2 pi t / 100 s)): the first half of each period holds
    // (1/2 + 0.6/pi) of the arrivals, the second half (1/2 - 0.6/pi).
    let v = synth(
        Arrivals::Diurnal {
            mean_rate: 20.0,
            amplitude: 0.6,
            period_ns: 100 * SECOND,
        },
        4_000,
        |_| {},
    );
    let rate = v.len() as f64 / 4_000.0;
    assert!((rate - 20.0).abs() < 0.4, "rate {rate}");
    let first = v
        .iter()
        .filter(|r| r.arrival_ns % (100 * SECOND) < 50 * SECOND)
        .count() as f64
        / v.len() as f64;
    let want = 0.5 + 0.6 / std::f64::consts::PI;
    assert!(
        (first - want).abs() < 0.01,
        "first-half fraction {first} vs {want}"
    );
    // Quarter-period bins follow the integral of the curve too.
    let q = |k: u64| {
        v.iter()
            .filter(|r| r.arrival_ns % (100 * SECOND) / (25 * SECOND) == k)
            .count() as f64
            / v.len() as f64
    };
    let want_q = |a: f64, b: f64| {
        (0.25
            + 0.6 / (2.0 * std::f64::consts::PI)
                * ((a * std::f64::consts::TAU).cos() - (b * std::f64::consts::TAU).cos()))
            / 1.0
    };
    for (k, (a, b)) in [(0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0)]
        .into_iter()
        .enumerate()
    {
        assert!(
            (q(k as u64) - want_q(a, b)).abs() < 0.01,
            "quarter {k}: {} vs {}",
            q(k as u64),
            want_q(a, b)
        );
    }
}

#[test]
fn steps_change_the_rate() {
    let v = synth(
        Arrivals::Steps {
            steps: vec![(0, 10.0), (100 * SECOND, 0.0), (200 * SECOND, 50.0)],
        },
        300,
        |_| {},
    );
    let count = |a: u64, b: u64| {
        v.iter()
            .filter(|r| r.arrival_ns >= a * SECOND && r.arrival_ns < b * SECOND)
            .count() as f64
    };
    let (r1, r2, r3) = (
        count(0, 100) / 100.0,
        count(100, 200),
        count(200, 300) / 100.0,
    );
    assert!((r1 - 10.0).abs() < 1.0, "first step {r1}");
    assert_eq!(r2, 0.0);
    assert!((r3 - 50.0).abs() < 2.5, "third step {r3}");
}

#[test]
fn size_distributions() {
    let v = synth(Arrivals::Poisson { rate: 100.0 }, 400, |w| {
        w.prompt_tokens = SizeDist::LogNormal {
            median: 400.0,
            sigma: 0.8,
        };
        w.output_tokens = SizeDist::Uniform {
            lo: 10.0,
            hi: 110.0,
        };
        w.payload_bytes = SizeDist::Fixed { value: 4096.0 };
    });
    assert!(v.len() > 38_000);
    let p = median(v.iter().map(|r| r.prompt_tokens as f64).collect());
    assert!((p - 400.0).abs() / 400.0 < 0.03, "lognormal median {p}");
    let lp: Vec<f64> = v.iter().map(|r| (r.prompt_tokens as f64).ln()).collect();
    let ml = lp.iter().sum::<f64>() / lp.len() as f64;
    let sd = (lp.iter().map(|x| (x - ml).powi(2)).sum::<f64>() / lp.len() as f64).sqrt();
    assert!((sd - 0.8).abs() < 0.03, "lognormal sigma {sd}");
    let (m, _) = mean_cv(&v.iter().map(|r| r.output_tokens as f64).collect::<Vec<_>>());
    assert!((m - 60.0).abs() < 0.6, "uniform mean {m}");
    assert!(v.iter().all(|r| (10..=110).contains(&r.output_tokens)));
    assert!(
        v.iter()
            .all(|r| r.input_bytes == 4096 && r.output_bytes == r.output_tokens as u64 * 4)
    );
}

#[test]
fn empirical_resampling_matches_frequencies() {
    let values = vec![10.0, 20.0, 20.0, 30.0, 30.0, 30.0, 30.0, 30.0, 30.0, 40.0];
    let v = synth(Arrivals::Poisson { rate: 100.0 }, 300, |w| {
        w.prompt_tokens = SizeDist::Empirical {
            values: values.clone(),
        }
    });
    let n = v.len() as f64;
    for (x, want) in [(10, 0.1), (20, 0.2), (30, 0.6), (40, 0.1)] {
        let f = v.iter().filter(|r| r.prompt_tokens == x).count() as f64 / n;
        assert!((f - want).abs() < 0.01, "value {x}: {f} vs {want}");
    }
    assert_eq!(
        v.iter()
            .filter(|r| ![10, 20, 30, 40].contains(&r.prompt_tokens))
            .count(),
        0
    );
}

#[test]
fn generator_clamps_limits_and_is_deterministic() {
    let v = synth(Arrivals::Poisson { rate: 100.0 }, 100, |w| {
        w.prompt_tokens = SizeDist::LogNormal {
            median: 5000.0,
            sigma: 2.0,
        };
        w.max_prompt_tokens = 6000;
        w.output_tokens = SizeDist::Fixed { value: 0.0 };
        w.max_requests = Some(1234);
    });
    assert_eq!(v.len(), 1234);
    assert!(
        v.iter()
            .all(|r| (1..=6000).contains(&r.prompt_tokens) && r.output_tokens == 1)
    );
    assert!(v.iter().any(|r| r.prompt_tokens == 6000));
    let w = world_with(None, |s| s.duration_ns = 50 * SECOND);
    let a = drain(&mut Synthetic::new(&w)).unwrap();
    let b = drain(&mut Synthetic::new(&w)).unwrap();
    assert_eq!(a, b);
    let mut s = Synthetic::new(&w);
    while s.next_request().is_some() {}
    assert!(s.next_request().is_none(), "fused after the end");
}

#[test]
fn overlong_json_line_is_an_error() {
    let mut text = String::from("{\"timestamp\": 0, \"input_length\": 1, \"output_length\": 1}\n");
    text.push_str(&"x".repeat((trace::MAX_JSON_LINE_BYTES + 10) as usize));
    let e = err_of(replay(&spec(TraceFormat::Mooncake), &text));
    assert_eq!(e.row, 2);
    assert!(e.message.contains("longer than"), "{e}");
}

// ------------------------------------------------------------------------------------------------
