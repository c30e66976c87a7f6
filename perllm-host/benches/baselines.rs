#![allow(missing_docs)]
//! Decision time per slot of the bundled baselines, through the plugin ABI as a run calls them:
//! one `schedule` call for 1,000 pending requests on 500 servers (`testbed::scaled`: one A100
//! cloud server per ten, the rest Xeon edge servers; servers a quarter busy; requests from the
//! scenario's synthetic generator). The time includes the host's work: the views, the
//! cost-model estimates of the policies that want them (every (request, hosting server) pair),
//! and validating the placements; `least-loaded{admission=reject_infeasible}` adds perllm's
//! admission control (one estimate per placed request).
//!
//! Run: `cargo bench -p perllm-host --bench baselines`.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use perllm_core::policy::{ClusterView, Decision, Pending, ServerState};
use perllm_core::spec::{MILLISECOND, ParamValue, PolicySpec, SECOND};
use perllm_core::workload::{RequestSource, Synthetic};
use perllm_core::{Roofline, testbed};
use std::hint::black_box;

#[path = "common/bundled.rs"]
mod bundled;
use bundled::bundled_registry;

const POLICIES: &[(&str, &[(&str, &str)])] = &[
    ("least-loaded", &[]),
    ("least-loaded", &[("admission", "reject_infeasible")]),
    ("greedy", &[]),
    ("cloud-first", &[]),
    ("edf", &[]),
    ("filter-score", &[]),
    ("two-choices", &[]),
];

fn bench(c: &mut Criterion) {
    let (servers, n) = (500usize, 1000usize);
    let mut sc = testbed::scaled(servers, 50.0, 100 * SECOND);
    sc.workload.max_requests = None;
    let w = sc.build().expect("valid benchmark scenario");
    let states: Vec<ServerState> = w
        .servers
        .iter()
        .map(|s| ServerState {
            running: s.max_batch / 4,
            uploading: 1,
            free_kv_bytes: s.kv_capacity_bytes * 3 / 4,
            kv_capacity_bytes: s.kv_capacity_bytes,
            bandwidth_estimate_bps: w.links[s.link].bandwidth_bps,
            recent_utilization: 0.25,
            ..ServerState::default()
        })
        .collect();
    let mut src = Synthetic::new(&w);
    let reqs: Vec<_> = (0..n)
        .map(|_| src.next_request().expect("enough requests").expect("valid"))
        .collect();
    let now = reqs.last().expect("requests").arrival_ns + 300 * MILLISECOND;
    let pending: Vec<Pending> = reqs
        .iter()
        .map(|r| Pending {
            request: *r,
            defers: 0,
        })
        .collect();
    let cost = Roofline::default();
    let view = ClusterView {
        now_ns: now,
        slot: 1,
        world: &w,
        servers: &states,
        cost: &cost,
        truth: None,
        model_load: &[],
    };
    let registry = bundled_registry();
    let mut g = c.benchmark_group("baseline_decision_per_slot");
    g.sample_size(10);
    for (name, params) in POLICIES {
        let spec = PolicySpec {
            name: name.to_string(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), ParamValue::Text(v.to_string())))
                .collect(),
        };
        let label = if params.is_empty() {
            name.to_string()
        } else {
            format!("{name}{{admission}}")
        };
        let mut p = registry.policy(&spec, &w, 1).expect("policy");
        let mut out = vec![Decision::Defer; n];
        p.schedule(&view, &pending, &mut out).expect("warm-up slot");
        let placed = out
            .iter()
            .filter(|d| matches!(d, Decision::Assign(_)))
            .count();
        eprintln!("{label}: placed {placed}/{n}");
        g.bench_with_input(
            BenchmarkId::new(label, format!("{n}x{servers}")),
            &n,
            |b, _| {
                b.iter(|| {
                    p.schedule(&view, &pending, &mut out).expect("slot");
                    black_box(out[0])
                })
            },
        );
    }
    g.finish();
    registry.check().expect("no plugin failed");
}

criterion_group!(benches, bench);
criterion_main!(benches);
