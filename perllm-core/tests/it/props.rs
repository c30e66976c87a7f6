//! Simulator invariants as properties over random scenarios (proptest).

use super::sim_checker::{Checker, checked_run};
use perllm_core::cost::{CostModel, StepShape};
use perllm_core::simple::{Fixed, LeastLoaded, RoundRobin};
use perllm_core::spec::*;
use perllm_core::workload::Synthetic;
use perllm_core::world::World;
use perllm_core::{Policy, Report, Roofline, run, testbed};
use proptest::prelude::*;

#[derive(Debug, Clone)]
pub(super) struct Case {
    edges: usize,
    cloud: bool,
    edge_bw: f64,
    cloud_bw: f64,
    frac: f64,
    walk: bool,
    slot_ms: u64,
    rate: f64,
    secs: u64,
    edge_batch: u32,
    cloud_batch: u32,
    noise: f64,
    contention: f64,
    prompt_median: f64,
    output_median: f64,
    payload_median: f64,
    policy: u8,
    seed: u64,
    /// Batching of the edge servers and of the cloud: 0 prefill-first, 1 mixed, 2 chunked.
    batching: (u8, u8),
    /// Chunked servers' budget per step, above `max_batch`.
    chunk_extra: u32,
}

fn batching(b: u8) -> BatchingKind {
    match b {
        0 => BatchingKind::PrefillFirst,
        1 => BatchingKind::Mixed,
        _ => BatchingKind::Chunked,
    }
}

pub(super) fn case() -> impl Strategy<Value = Case> {
    (
        (
            1usize..4,
            any::<bool>(),
            1e6f64..1e9,
            1e6f64..1e9,
            0.0f64..0.6,
            any::<bool>(),
        ),
        (
            prop_oneof![Just(0u64), 1u64..1000],
            0.1f64..15.0,
            5u64..40,
            1u32..8,
            1u32..64,
        ),
        (
            0.0f64..0.3,
            0.0f64..0.1,
            1.0f64..2000.0,
            1.0f64..400.0,
            1.0f64..1e7,
            0u8..4,
            any::<u64>(),
        ),
        (0u8..3, 0u8..3, 0u32..1000),
    )
        .prop_map(|(a, b, c, d)| Case {
            edges: a.0,
            cloud: a.1,
            edge_bw: a.2,
            cloud_bw: a.3,
            frac: a.4,
            walk: a.5,
            slot_ms: b.0,
            rate: b.1,
            secs: b.2,
            edge_batch: b.3,
            cloud_batch: b.4,
            noise: c.0,
            contention: c.1,
            prompt_median: c.2,
            output_median: c.3,
            payload_median: c.4,
            policy: c.5,
            seed: c.6,
            batching: (d.0, d.1),
            chunk_extra: d.2,
        })
}

pub(super) fn scenario(c: &Case) -> Scenario {
    let mut sc = testbed::paper(c.rate, c.secs * SECOND);
    sc.seed = c.seed;
    sc.slot_ns = c.slot_ms * MILLISECOND;
    let edge = sc.servers[0].clone();
    let cloud = sc.servers[5].clone();
    sc.servers = (0..c.edges)
        .map(|i| ServerSpec {
            name: format!("edge{i}"),
            max_batch: c.edge_batch,
            ..edge.clone()
        })
        .collect();
    if c.cloud {
        sc.servers.push(ServerSpec {
            max_batch: c.cloud_batch,
            ..cloud
        });
        sc.workload.models = vec![("llama2-7b".into(), 0.8), ("llama-33b".into(), 0.2)];
    } else {
        sc.workload.models = vec![("llama2-7b".into(), 1.0)];
    }
    sc.links[0].bandwidth_bps = c.edge_bw;
    sc.links[1].bandwidth_bps = c.cloud_bw;
    for l in &mut sc.links {
        l.fluctuation = if c.walk {
            Fluctuation::RandomWalk {
                step: c.frac / 4.0,
                bound: c.frac,
            }
        } else {
            Fluctuation::Uniform { frac: c.frac }
        };
    }
    sc.workload.prompt_tokens = log_normal(c.prompt_median, 1.0);
    sc.workload.output_tokens = log_normal(c.output_median, 1.0);
    sc.workload.payload_bytes = log_normal(c.payload_median, 1.5);
    sc.sim.step_noise = c.noise;
    sc.sim.contention = c.contention;
    // Each batching choice, per server: the edges' through the scenario-wide default, the
    // cloud's on the server itself.
    sc.sim.batching = batching(c.batching.0);
    sc.sim.chunk_tokens = c.edge_batch + c.chunk_extra;
    if let Some(cloud) = sc.servers.iter_mut().find(|s| s.tier == Tier::Cloud) {
        cloud.batching = Some(batching(c.batching.1));
        if cloud.batching == Some(BatchingKind::Chunked) {
            cloud.chunk_tokens = Some(c.cloud_batch + c.chunk_extra);
        }
    }
    sc.objective.constraints.clear();
    sc
}

fn policy(c: &Case, world: &perllm_core::world::World) -> Box<dyn Policy> {
    match c.policy {
        0 => Box::new(LeastLoaded::default()),
        1 => Box::new(RoundRobin::default()),
        2 => Box::new(Fixed(0)),
        // The scenario's own policy: PerLLM (CS-UCB with the LP step) with default parameters.
        _ => perllm_core::policies::builtin(&world.scenario.policy, world)
            .expect("perllm is built in")
            .expect("perllm accepts the world"),
    }
}

/// Cases per run: 48 by default, `PERLLM_PROPS_CASES=N` for longer runs.
/// A log-normal size distribution.
fn log_normal(median: f64, sigma: f64) -> SizeDist {
    SizeDist::LogNormal { median, sigma }
}

/// Runs `p` on `world`'s synthetic workload under the invariant checker and asserts what every
/// run must hold: every request ends exactly once; time never goes back, steps never overlap,
/// phases add up, met means met.
fn run_checked(
    world: &World,
    p: &mut dyn Policy,
    cost: &Roofline,
) -> Result<(Report, Checker), TestCaseError> {
    let (report, ch) = checked_run(world, p, cost);
    prop_assert_eq!(report.arrived, ch.arrived);
    prop_assert_eq!(report.completed + report.rejected, report.arrived);
    prop_assert!(ch.ends.values().all(|n| *n == 1));
    prop_assert!(ch.violations.is_empty(), "{:?}", ch.violations);
    Ok((report, ch))
}

fn cases(var: &str) -> u32 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases("PERLLM_PROPS_CASES"), ..ProptestConfig::default() })]

    #[test]
    fn simulator_invariants_hold_on_random_scenarios(c in case()) {
        let sc = scenario(&c);
        let world = sc.build().expect("generated scenarios are valid");
        let cost = Roofline::default();
        let (report, ch) = run_checked(&world, &mut *policy(&c, &world), &cost)?;

        // Energy: at least the idle floor, and the sum of its parts.
        let e = &report.energy;
        let floor = world.idle_power_w() * report.horizon_s;
        prop_assert!(e.total_j >= floor * (1.0 - 1e-9), "total {} < floor {}", e.total_j, floor);
        prop_assert!((e.total_j - (e.transmission_j + e.inference_j + e.idle_j)).abs() <= 1e-6 * e.total_j.max(1.0));
        // Delivered requests carry all the inference energy, unless the run stopped at the drain
        // limit: then the work done for `unfinished` requests is measured but attributed to none.
        let attributed: f64 = ch.outcomes.iter().map(|o| o.energy.inference).sum();
        if report.rejected_by_reason.contains_key("unfinished") {
            prop_assert!(attributed <= e.inference_j * (1.0 + 1e-9) + 1e-6,
                "attributed inference {} > measured {}", attributed, e.inference_j);
        } else {
            prop_assert!((attributed - e.inference_j).abs() <= 1e-6 * e.inference_j.max(1.0) + 1e-6,
                "attributed inference {} != measured {}", attributed, e.inference_j);
        }

        // Throughput never exceeds what the hardware can do by the cost model: each step yields
        // at most max_batch tokens, and no step is shorter than reading the weights once.
        for (s, sr) in world.servers.iter().zip(&report.servers) {
            prop_assert!(sr.output_tokens <= sr.steps * s.max_batch as u64,
                "{}: {} tokens in {} steps of at most {}", s.name, sr.output_tokens, sr.steps, s.max_batch);
            let hw = &world.hardware[s.hardware];
            let fastest = s.models.iter().map(|&m| {
                cost.step_ns(hw, s.count, &world.models[m as usize], &StepShape { decode_seqs: 1, ..StepShape::default() })
            }).min().unwrap_or(0) as f64 * (1.0 - c.noise);
            prop_assert!(sr.busy_s * 1e9 + 1.0 >= sr.steps as f64 * fastest,
                "{}: {} steps in {} s is faster than the hardware", s.name, sr.steps, sr.busy_s);
        }

        // Same seed, same report.
        let mut src2 = Synthetic::new(&world);
        let mut p2 = policy(&c, &world);
        let again = run(&world, &mut *p2, &cost, &mut src2, &mut []).expect("run");
        prop_assert_eq!(serde_json::to_string(&report).unwrap(), serde_json::to_string(&again).unwrap());
    }
}

/// A value log-uniform in `[lo, hi]` (both positive).
fn log_uniform(lo: f64, hi: f64) -> impl Strategy<Value = f64> {
    (0.0f64..=1.0).prop_map(move |u| (lo.ln() + u * (hi.ln() - lo.ln())).exp().clamp(lo, hi))
}

#[derive(Debug, Clone)]
struct Extreme {
    compute: [f64; 2],
    mem_bw: [f64; 2],
    eff: [f64; 2],
    busy_w: f64,
    link_bps: [f64; 2],
    latency_ns: [u64; 2],
    fluct: u8,
    frac: f64,
    slot_ns: u64,
    contention: f64,
    noise: f64,
    out_bytes: f64,
    payload: f64,
    prompt: f64,
    output: f64,
    batch: [u32; 2],
    deadline_ns: u64,
    policy: u8,
    seed: u64,
}

fn extreme() -> impl Strategy<Value = Extreme> {
    (
        (
            [
                log_uniform(limits::MIN_COMPUTE_FLOPS, 1e18),
                log_uniform(limits::MIN_COMPUTE_FLOPS, 1e18),
            ],
            [
                log_uniform(limits::MIN_MEMORY_BANDWIDTH, 1e13),
                log_uniform(limits::MIN_MEMORY_BANDWIDTH, 1e13),
            ],
            [
                log_uniform(limits::MIN_EFFICIENCY, 1.0),
                log_uniform(limits::MIN_EFFICIENCY, 1.0),
            ],
            log_uniform(125.0, limits::MAX_POWER_W),
            [
                log_uniform(limits::MIN_LINK_BPS, 1e12),
                log_uniform(limits::MIN_LINK_BPS, 1e12),
            ],
            [
                prop_oneof![Just(0u64), 1u64..=limits::MAX_TIME_PARAM_NS],
                prop_oneof![Just(0u64), 1u64..=limits::MAX_TIME_PARAM_NS],
            ],
        ),
        (
            0u8..4,
            0.0f64..0.999_999,
            prop_oneof![Just(0u64), 1u64..=limits::MAX_TIME_PARAM_NS],
            0.0f64..=limits::MAX_CONTENTION,
            0.0f64..0.999,
            0.0f64..=limits::MAX_OUTPUT_BYTES_PER_TOKEN,
            log_uniform(1.0, 1e15),
        ),
        (
            log_uniform(1.0, 1e6),
            log_uniform(1.0, 1e6),
            [1u32..10_000, 1u32..10_000],
            1u64..=HOUR,
            0u8..3,
            any::<u64>(),
        ),
    )
        .prop_map(|(a, b, c)| Extreme {
            compute: a.0,
            mem_bw: a.1,
            eff: a.2,
            busy_w: a.3,
            link_bps: a.4,
            latency_ns: a.5,
            fluct: b.0,
            frac: b.1,
            slot_ns: b.2,
            contention: b.3,
            noise: b.4,
            out_bytes: b.5,
            payload: b.6,
            prompt: c.0,
            output: c.1,
            batch: c.2,
            deadline_ns: c.3,
            policy: c.4,
            seed: c.5,
        })
}

fn extreme_scenario(x: &Extreme) -> Scenario {
    let mut sc = testbed::paper(4.0, 10 * SECOND);
    sc.seed = x.seed;
    sc.slot_ns = x.slot_ns;
    sc.workload.max_requests = Some(8);
    for (i, h) in sc.hardware.iter_mut().enumerate() {
        h.compute_flops = x.compute[i];
        h.memory_bandwidth_bytes_per_s = x.mem_bw[i];
        h.compute_efficiency = Some(x.eff[i]);
        h.bandwidth_efficiency = Some(x.eff[1 - i]);
        h.power_busy_w = x.busy_w;
    }
    for (i, l) in sc.links.iter_mut().enumerate() {
        l.bandwidth_bps = x.link_bps[i];
        l.latency_ns = x.latency_ns[i];
        // Redraws of at least a second keep a run that lasts to the drain limit cheap in debug.
        l.redraw_ns = Some(SECOND);
        l.fluctuation = match x.fluct {
            0 => Fluctuation::None,
            1 => Fluctuation::Uniform { frac: x.frac },
            2 => Fluctuation::RandomWalk {
                step: x.frac / 2.0,
                bound: x.frac,
            },
            _ => Fluctuation::Series {
                points: vec![
                    (0, limits::MIN_BANDWIDTH_FACTOR),
                    (SECOND, limits::MAX_BANDWIDTH_FACTOR),
                    (2 * SECOND, (1.0 - x.frac).max(limits::MIN_BANDWIDTH_FACTOR)),
                ],
            },
        };
    }
    for s in &mut sc.servers {
        s.max_batch = x.batch[usize::from(s.tier == Tier::Cloud)];
    }
    for slo in &mut sc.slos {
        slo.deadline_ns = x.deadline_ns;
    }
    sc.sim.contention = x.contention;
    sc.sim.step_noise = x.noise;
    // The batching choice and a chunk budget (at least the largest batch) from the seed's bits.
    sc.sim.batching = batching((x.seed % 3) as u8);
    sc.sim.chunk_tokens = x.batch[0].max(x.batch[1]) + (x.seed >> 8) as u32 % 4096;
    sc.workload.output_bytes_per_token = x.out_bytes;
    sc.workload.payload_bytes = log_normal(x.payload, 2.0);
    sc.workload.prompt_tokens = log_normal(x.prompt, 1.0);
    sc.workload.output_tokens = log_normal(x.output, 1.0);
    sc
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases("PERLLM_EXTREME_CASES"),
        ..ProptestConfig::default()
    })]

    /// Anything within the plausibility limits, however extreme, builds and runs to the end:
    /// every request ends exactly once, the numbers are finite, nothing runs past the drain limit.
    #[test]
    fn extreme_but_valid_scenarios_end(x in extreme()) {
        let sc = extreme_scenario(&x);
        let world = sc.build().map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        let mut p: Box<dyn Policy> = match x.policy {
            0 => Box::new(LeastLoaded::default()),
            1 => perllm_core::policies::builtin(&world.scenario.policy, &world)
                .expect("perllm is built in")
                .expect("perllm accepts the world"),
            _ => Box::new(RoundRobin::default()),
        };
        let (report, _) = run_checked(&world, &mut *p, &Roofline::default())?;
        let e = &report.energy;
        for v in [e.total_j, e.inference_j, e.idle_j, e.transmission_j, report.horizon_s, report.latency_s.max] {
            prop_assert!(v.is_finite() && v >= 0.0, "{:?}", report);
        }
        // The run never outlives the last arrival (within the 8-request arrival window) + drain.
        let bound = (world.scenario.duration_ns as f64 + world.drain_ns() as f64) / 1e9;
        prop_assert!(report.horizon_s <= bound + 1e-6, "horizon {} > {}", report.horizon_s, bound);
    }
}
