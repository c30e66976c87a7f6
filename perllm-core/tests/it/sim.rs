//! Simulator invariants and behaviour.

use super::sim_checker::{Checker, checked_run};
use perllm_core::policy::Decision;
use perllm_core::request::{Outcome, Request};
use perllm_core::simple::{Fixed, LeastLoaded, from_fn};
use perllm_core::spec::*;
use perllm_core::workload::{RequestSource, Synthetic};
use perllm_core::{Roofline, SimError, World, run, run_synthetic, testbed};

fn paper(rate: f64, secs: u64) -> Scenario {
    testbed::paper(rate, secs * SECOND)
}

fn run_checked(sc: &Scenario) -> (perllm_core::Report, Checker) {
    let world = sc.build().expect("valid scenario");
    checked_run(&world, &mut LeastLoaded::default(), &Roofline::default())
}

#[test]
fn every_request_ends_exactly_once_and_time_moves_forward() {
    let (report, ch) = run_checked(&paper(3.0, 120));
    assert!(
        ch.arrived > 300,
        "enough requests to mean something: {}",
        ch.arrived
    );
    assert_eq!(report.arrived, ch.arrived);
    assert_eq!(report.completed + report.rejected, report.arrived);
    let bad: Vec<_> = ch.ends.iter().filter(|(_, n)| **n != 1).collect();
    assert!(bad.is_empty(), "requests not ended exactly once: {bad:?}");
    assert!(
        ch.violations.is_empty(),
        "{:?}",
        &ch.violations[..ch.violations.len().min(5)]
    );
}

#[test]
fn energy_is_at_least_the_idle_floor_and_the_sum_of_its_parts() {
    let sc = paper(1.0, 60);
    let world = sc.build().unwrap();
    let (report, _) = run_checked(&sc);
    let floor = world.idle_power_w() * report.horizon_s;
    let e = &report.energy;
    assert!(
        e.total_j >= floor,
        "total {} < idle floor {}",
        e.total_j,
        floor
    );
    assert!((e.total_j - (e.transmission_j + e.inference_j + e.idle_j)).abs() < 1e-6 * e.total_j);
    let w = &sc.objective.weights;
    let weighted =
        w.transmission * e.transmission_j + w.inference * e.inference_j + w.idle * e.idle_j;
    assert!((e.weighted_j - weighted).abs() < 1e-6 * weighted);
    // Per-server energies add up to the totals.
    let inf: f64 = report.servers.iter().map(|s| s.inference_j).sum();
    let idle: f64 = report.servers.iter().map(|s| s.idle_j).sum();
    assert!((inf - e.inference_j).abs() < 1e-6 * inf && (idle - e.idle_j).abs() < 1e-6 * idle);
}

#[test]
fn met_deadlines_really_are_met_and_attainment_counts_them() {
    let (report, ch) = run_checked(&paper(2.0, 120));
    let met = ch
        .outcomes
        .iter()
        .filter(|o| o.total_ns <= o.deadline_ns)
        .count() as u64;
    assert_eq!(report.deadline_met, met);
    assert!(
        met > 0 && met < report.arrived,
        "a mixed result: {met} of {}",
        report.arrived
    );
}

#[test]
fn same_seed_same_report_different_seed_different_report() {
    let sc = paper(2.0, 60);
    let a = serde_json::to_string(&run_checked(&sc).0).unwrap();
    let b = serde_json::to_string(&run_checked(&sc).0).unwrap();
    assert_eq!(a, b);
    let mut sc2 = sc.clone();
    sc2.seed = 8;
    let c = serde_json::to_string(&run_checked(&sc2).0).unwrap();
    assert_ne!(a, c);
}

/// A one-server scenario with a constant link, for exact timing checks.
fn single(bandwidth_bps: f64, payload: f64, rate: f64, secs: u64) -> Scenario {
    let mut sc = paper(rate, secs);
    sc.servers.retain(|s| s.name == "cloud");
    sc.links[1].fluctuation = Fluctuation::None;
    sc.links[1].bandwidth_bps = bandwidth_bps;
    sc.workload.models = vec![("llama2-7b".into(), 1.0)];
    sc.workload.payload_bytes = SizeDist::Fixed { value: payload };
    sc.workload.prompt_tokens = SizeDist::Fixed { value: 100.0 };
    sc.workload.output_tokens = SizeDist::Fixed { value: 10.0 };
    sc.sim.step_noise = 0.0;
    sc.objective.constraints.clear();
    sc
}

/// Outcomes of `n` 1 MB requests 10 s apart, sent to server 0 (no two uploads overlap).
fn spaced_outcomes(sc: &Scenario, n: u64) -> Vec<Outcome> {
    let world = sc.build().unwrap();
    let req = |id: u64| {
        Ok(Request {
            id,
            arrival_ns: (id + 1) * 10 * SECOND,
            prompt_tokens: 10,
            output_tokens: 2,
            input_bytes: 1_000_000,
            output_bytes: 8,
            ..Request::default()
        })
    };
    fixed_outcomes(&world, &mut (0..n).map(req))
}

fn outcomes(sc: &Scenario) -> Vec<Outcome> {
    let world = sc.build().unwrap();
    fixed_outcomes(&world, &mut Synthetic::new(&world))
}

/// Outcomes of the requests of `src`, all sent to server 0, checked by the [`Checker`].
fn fixed_outcomes(world: &World, src: &mut dyn RequestSource) -> Vec<Outcome> {
    let mut ch = Checker::default();
    run(
        world,
        &mut Fixed(0),
        &Roofline::default(),
        src,
        &mut [&mut ch],
    )
    .unwrap();
    assert!(ch.violations.is_empty(), "{:?}", ch.violations);
    ch.outcomes
}

#[test]
fn upload_takes_latency_plus_size_over_bandwidth() {
    // 1 MB over 8 Mbps = 1 s, plus 40 ms latency; requests far apart so links are not shared.
    let o = spaced_outcomes(&single(8e6, 1e6, 0.01, 2000), 20);
    assert_eq!(o.len(), 20);
    for o in &o {
        let expect = 1_040_000_000i64;
        assert!(
            (o.upload_ns as i64 - expect).abs() < 1_000,
            "upload {} ns {:?}",
            o.upload_ns,
            o
        );
        assert_eq!(o.queue_ns, 0, "an idle server admits at once");
    }
}

#[test]
fn concurrent_transfers_share_the_bandwidth_fairly() {
    // Two requests decided in the same slot start uploading together: each gets half the
    // bandwidth, so both take 2 s instead of 1 s.
    let sc = single(8e6, 1e6, 0.01, 2000);
    let world = sc.build().unwrap();
    let req = |id, t| {
        Ok(Request {
            id,
            arrival_ns: t,
            prompt_tokens: 10,
            output_tokens: 2,
            input_bytes: 1_000_000,
            output_bytes: 8,
            ..Request::default()
        })
    };
    // Three requests: two in the same slot, one alone much later.
    let mut src = vec![req(0, SECOND), req(1, SECOND + 1), req(2, 100 * SECOND)].into_iter();
    let outcomes = fixed_outcomes(&world, &mut src);
    assert_eq!(outcomes.len(), 3);
    let mut by_id: Vec<_> = outcomes
        .iter()
        .map(|o| (o.request.id, o.upload_ns as i64))
        .collect();
    by_id.sort();
    for (id, up) in by_id {
        let expect = if id < 2 { 2_040_000_000 } else { 1_040_000_000 };
        assert!(
            (up - expect).abs() < 1_000,
            "request {id}: upload {up} ns, expected {expect}"
        );
    }
}

#[test]
fn continuous_batching_admits_newcomers_at_the_next_step() {
    // Long outputs keep the engine busy; a request arriving mid-run must not wait for the run to end.
    let mut sc = single(1e9, 1e3, 5.0, 60);
    sc.workload.output_tokens = SizeDist::Fixed { value: 500.0 };
    sc.slot_ns = 0;
    let o = outcomes(&sc);
    assert!(o.len() > 100);
    // One decode step of a 7B int8 model on an A100 is a few ms; waits must stay below a few steps.
    let worst = o.iter().map(|o| o.queue_ns).max().unwrap();
    assert!(worst < 50 * MILLISECOND, "worst queueing {worst} ns");
    // And batching really happened: the decode of 500 tokens took about as long as alone.
    let steps: u64 = 500;
    assert!(
        o.iter()
            .all(|o| o.decode_ns > (steps - 1) * 4 * MILLISECOND)
    );
}

#[test]
fn kv_memory_and_batch_limits_hold_requests_back() {
    let mut sc = single(1e9, 1e3, 50.0, 20);
    sc.servers[0].max_batch = 2;
    let o = outcomes(&sc);
    let queued = o.iter().filter(|o| o.queue_ns > 0).count();
    assert!(
        queued > o.len() / 2,
        "with max_batch 2 at 50/s most requests queue: {queued} of {}",
        o.len()
    );
}

#[test]
fn requests_too_large_for_every_server_are_rejected_not_panicking() {
    let mut sc = single(1e9, 1e3, 1.0, 30);
    sc.workload.prompt_tokens = SizeDist::Fixed { value: 8000.0 };
    sc.workload.max_prompt_tokens = 8192;
    sc.models[0].kv_bytes_per_token = 64 << 20; // 64 MiB per token: 8000 tokens never fit
    let (report, ch) = run_checked(&sc);
    assert!(report.arrived > 0);
    assert_eq!(
        report.rejected_by_reason.get("too_large"),
        Some(&report.arrived)
    );
    assert!(ch.ends.values().all(|n| *n == 1));
}

#[test]
fn inconsistent_input_is_an_error_not_a_panic() {
    let mut sc = paper(1.0, 10);
    sc.servers.retain(|s| s.name != "cloud"); // llama-33b is now hosted nowhere
    let errs = sc.build().unwrap_err();
    assert!(
        errs.iter()
            .any(|e| e.message.contains("no server hosts model `llama-33b`")),
        "{errs:?}"
    );

    let mut sc = paper(1.0, 10);
    sc.links[0].bandwidth_bps = 0.0;
    let errs = sc.build().unwrap_err();
    assert!(
        errs.iter().any(|e| e.path == "link[edge-lan].bandwidth"),
        "{errs:?}"
    );

    let mut sc = paper(1.0, 10);
    sc.models[1].params = 80e9; // 160 GB of fp16 weights on an 80 GiB A100
    let errs = sc.build().unwrap_err();
    assert!(
        errs.iter().any(|e| e.message.contains("do not fit")),
        "{errs:?}"
    );

    // Out-of-order requests from a source are an error.
    let world = paper(1.0, 10).build().unwrap();
    let r = |id, t| {
        Ok(Request {
            id,
            arrival_ns: t,
            prompt_tokens: 10,
            output_tokens: 10,
            input_bytes: 10,
            output_bytes: 10,
            ..Request::default()
        })
    };
    let mut src = vec![r(0, 5 * SECOND), r(1, SECOND)].into_iter();
    let err = run(
        &world,
        &mut LeastLoaded::default(),
        &Roofline::default(),
        &mut src,
        &mut [],
    )
    .unwrap_err();
    assert!(
        matches!(err, SimError::InvalidRequest { id: 1, .. }),
        "{err}"
    );
}

#[test]
fn invalid_decisions_are_errors() {
    let mut bad = from_fn("bad", |_, _| Decision::Assign(99));
    let world = paper(1.0, 10).build().unwrap();
    let err = run_synthetic(&world, &mut bad).unwrap_err();
    assert!(
        err.to_string().contains("server index 99 does not exist"),
        "{err}"
    );
}

#[test]
fn deferring_for_ever_ends_in_rejection() {
    let mut never = from_fn("never", |_, _| Decision::Defer);
    let world = paper(1.0, 10).build().unwrap();
    let r = run_synthetic(&world, &mut never).unwrap();
    assert!(r.arrived > 0);
    assert_eq!(
        r.rejected_by_reason.get("deferred_too_long"),
        Some(&r.arrived)
    );
}

#[test]
fn bandwidth_fluctuation_changes_upload_times() {
    let mut sc = single(8e6, 1e6, 0.01, 3000);
    sc.links[1].fluctuation = Fluctuation::Uniform { frac: 0.2 };
    let o = spaced_outcomes(&sc, 50);
    let ups: Vec<f64> = o
        .iter()
        .map(|o| (o.upload_ns - 40_000_000) as f64 / 1e9)
        .collect();
    let (lo, hi) = ups
        .iter()
        .fold((f64::MAX, 0f64), |(a, b), &x| (a.min(x), b.max(x)));
    // 1 s at the mean; +/-20% bandwidth gives about 0.83 .. 1.25 s.
    assert!(
        lo >= 0.8 && hi <= 1.3 && hi - lo > 0.05,
        "upload times {lo} .. {hi}"
    );
}

/// A policy that says it reads the load statistics, wrapping one that does not: the simulator
/// then computes them at every slot (and every run), which must change nothing else. Records
/// the sum of the mean batches it saw at each slot.
struct ReadsStatistics(Box<dyn perllm_core::Policy>, Vec<f64>);

impl perllm_core::Policy for ReadsStatistics {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn schedule(
        &mut self,
        view: &perllm_core::policy::ClusterView<'_>,
        pending: &[perllm_core::policy::Pending],
        out: &mut [Decision],
    ) -> Result<(), perllm_core::policy::PolicyError> {
        self.1.push(view.servers.iter().map(|s| s.mean_batch).sum());
        self.0.schedule(view, pending, out)
    }
    fn reads_load_statistics(&self) -> bool {
        true
    }
}

#[test]
fn skipping_the_load_statistics_changes_no_result() {
    use perllm_core::Policy;
    use perllm_core::simple::RoundRobin;
    let mut sc = testbed::scaled(40, 30.0, 60 * SECOND);
    sc.workload.max_requests = Some(1500);
    let world = sc.build().expect("valid scenario");
    let report = |p: &mut dyn Policy| {
        let (r, ch) = checked_run(&world, p, &Roofline::default());
        (serde_json::to_string(&r).expect("report"), ch.outcomes)
    };
    let policies = || -> [Box<dyn Policy>; 2] {
        [
            Box::new(RoundRobin::default()),
            Box::new(LeastLoaded::default()),
        ]
    };
    for (mut lazy, eager) in policies().into_iter().zip(policies()) {
        assert!(!lazy.reads_load_statistics(), "{}", lazy.name());
        let (skipped, skipped_out) = report(&mut *lazy);
        let mut eager = ReadsStatistics(eager, Vec::new());
        let (computed, computed_out) = report(&mut eager);
        assert!(
            eager.1.iter().any(|&m| m > 0.0),
            "the statistics were computed"
        );
        assert!(skipped_out.len() > 1000, "{} outcomes", skipped_out.len());
        assert_eq!(skipped_out, computed_out, "{}", lazy.name());
        assert_eq!(skipped, computed, "{}", lazy.name());
    }
}
