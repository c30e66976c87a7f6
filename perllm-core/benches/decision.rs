//! PerLLM decision time per slot: one `schedule` call for 10 / 100 / 1,000 pending requests on
//! 6 / 50 / 500 servers.
//!
//! `cargo bench -p perllm-core --bench decision`
//!
//! Worlds: the paper testbed (6 servers) and `testbed::scaled` (50, 500: one A100 cloud server per
//! ten, the rest Xeon edge servers), each with the constraints `latency <= deadline`,
//! `share(cloud tier) <= 60%` and `occupancy(edge tier) <= 90%`. Servers are a quarter busy.
//! Requests come from the scenario's synthetic generator (so classes are realistic), waiting
//! 0-300 ms. The policy is warmed up by one slot first (its exploration placements); each
//! measured call then decides the same slot again (`share_window = 0`, so repeated calls see
//! the same rows). After each configuration the policy's LP counters are printed to stderr, so
//! the reader can tell solved slots from skipped ones.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use perllm_core::perllm::PerLlm;
use perllm_core::policy::{ClusterView, Decision, Pending, Policy, ServerState};
use perllm_core::spec::*;
use perllm_core::workload::{RequestSource, Synthetic};
use perllm_core::{Roofline, testbed};
use std::hint::black_box;

fn world(servers: usize) -> perllm_core::World {
    let mut sc = if servers == 6 {
        testbed::paper(50.0, 100 * SECOND)
    } else {
        testbed::scaled(servers, 50.0, 100 * SECOND)
    };
    sc.objective.constraints = vec![
        LinearConstraint {
            terms: vec![(1.0, Quantity::Latency), (-1.0, Quantity::Deadline)],
            constant: 0.0,
            cmp: Cmp::Le,
            source: "latency <= deadline".into(),
        },
        LinearConstraint {
            terms: vec![(1.0, Quantity::Share(Target::Tier(Tier::Cloud)))],
            constant: -0.6,
            cmp: Cmp::Le,
            source: "share(cloud) <= 60%".into(),
        },
        LinearConstraint {
            terms: vec![(1.0, Quantity::Occupancy(Target::Tier(Tier::Edge)))],
            constant: -0.9,
            cmp: Cmp::Le,
            source: "occupancy(edge) <= 90%".into(),
        },
    ];
    sc.workload.max_requests = None;
    sc.build().expect("valid benchmark scenario")
}

fn bench(c: &mut Criterion) {
    let cost = Roofline::default();
    let mut g = c.benchmark_group("perllm_decision_per_slot");
    g.sample_size(10);
    for servers in [6usize, 50, 500] {
        let w = world(servers);
        let states: Vec<ServerState> = w
            .servers
            .iter()
            .map(|s| ServerState {
                running: s.max_batch / 4,
                queued: 0,
                uploading: 1,
                downloading: 0,
                free_kv_bytes: s.kv_capacity_bytes * 3 / 4,
                kv_capacity_bytes: s.kv_capacity_bytes,
                pending_output_tokens: 0,
                bandwidth_estimate_bps: w.links[s.link].bandwidth_bps,
                recent_utilization: 0.25,
                ..ServerState::default()
            })
            .collect();
        for n in [10usize, 100, 1000] {
            let mut src = Synthetic::new(&w);
            let reqs: Vec<_> = (0..n)
                .map(|_| src.next_request().expect("enough requests").expect("valid"))
                .collect();
            let now = reqs.last().unwrap().arrival_ns + 300 * MILLISECOND;
            let pending: Vec<Pending> = reqs
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let mut r = *r;
                    r.arrival_ns = now - (i as u64 % 4) * 100 * MILLISECOND;
                    Pending {
                        request: r,
                        defers: 0,
                    }
                })
                .collect();
            let spec = PolicySpec {
                name: "perllm".into(),
                params: [("share_window".to_string(), ParamValue::Number(0.0))].into(),
            };
            let mut p = PerLlm::new(&spec, &w).expect("policy");
            let view = ClusterView {
                now_ns: now,
                slot: 1,
                ..ClusterView::new(&w, &states, &cost)
            };
            let mut out = vec![Decision::Defer; n];
            p.schedule(&view, &pending, &mut out).expect("warm-up slot");
            g.bench_with_input(
                BenchmarkId::new(format!("{servers}_servers"), n),
                &n,
                |b, _| {
                    b.iter(|| {
                        p.schedule(&view, &pending, &mut out).expect("slot");
                        black_box(out[0])
                    })
                },
            );
            let v = p.stats().values;
            let placed = out
                .iter()
                .filter(|d| matches!(d, Decision::Assign(_)))
                .count();
            eprintln!(
                "{servers} servers x {n} requests: placed {placed}/{n} in the last slot; slots {} lp_solves {} lp_skipped {} greedy/fallback {} lp_vars_max {} lp_rows_max {} classes {}",
                v["slots"],
                v["lp_solves"],
                v["lp_skipped"],
                v["lp_fallbacks"],
                v["lp_vars_max"],
                v["lp_rows_max"],
                v["classes"]
            );
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
