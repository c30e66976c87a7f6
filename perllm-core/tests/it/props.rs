//! Simulator invariants as properties over random scenarios (proptest).

use super::sim_checker::Checker;
use perllm_core::cost::{CostModel, StepShape};
use perllm_core::simple::{Fixed, LeastLoaded, RoundRobin};
use perllm_core::spec::*;
use perllm_core::workload::Synthetic;
use perllm_core::{Policy, Roofline, run, testbed};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Case {
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
}

fn case() -> impl Strategy<Value = Case> {
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
            0u8..3,
            any::<u64>(),
        ),
    )
        .prop_map(|(a, b, c)| Case {
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
        })
}

fn scenario(c: &Case) -> Scenario {
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
    sc.workload.prompt_tokens = SizeDist::LogNormal {
        median: c.prompt_median,
        sigma: 1.0,
    };
    sc.workload.output_tokens = SizeDist::LogNormal {
        median: c.output_median,
        sigma: 1.0,
    };
    sc.workload.payload_bytes = SizeDist::LogNormal {
        median: c.payload_median,
        sigma: 1.5,
    };
    sc.sim.step_noise = c.noise;
    sc.sim.contention = c.contention;
    sc.objective.constraints.clear();
    sc
}

fn policy(c: &Case) -> Box<dyn Policy> {
    match c.policy {
        0 => Box::new(LeastLoaded::default()),
        1 => Box::new(RoundRobin::default()),
        _ => Box::new(Fixed(0)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn simulator_invariants_hold_on_random_scenarios(c in case()) {
        let sc = scenario(&c);
        let world = sc.build().expect("generated scenarios are valid");
        let cost = Roofline::default();
        let mut ch = Checker::default();
        let mut src = Synthetic::new(&world);
        let mut p = policy(&c);
        let report = run(&world, &mut *p, &cost, &mut src, &mut [&mut ch]).expect("run");

        // Every request ends exactly once.
        prop_assert_eq!(report.arrived, ch.arrived);
        prop_assert_eq!(report.completed + report.rejected, report.arrived);
        prop_assert!(ch.ends.values().all(|n| *n == 1));
        // Time never goes back; steps never overlap; phases add up; met means met.
        prop_assert!(ch.violations.is_empty(), "{:?}", ch.violations);

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
        let mut p2 = policy(&c);
        let again = run(&world, &mut *p2, &cost, &mut src2, &mut []).expect("run");
        prop_assert_eq!(serde_json::to_string(&report).unwrap(), serde_json::to_string(&again).unwrap());
    }
}
