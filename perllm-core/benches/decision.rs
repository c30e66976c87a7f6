//! PerLLM decision time per slot: one `schedule` call for 100 pending requests on the 6-server
//! paper testbed, 1,000 on 500 servers and 10,000 on 5,000 servers, for both variants
//! (`variant = improved`, the default, and `variant = paper`), each through the fast feasibility
//! step (core's roofline cost model: one estimate per class of identical servers, `fast.rs`)
//! and, side by side, through the straightforward one (the same roofline behind a wrapper that
//! hides it, as a plugin cost model would: one estimate per request and server), checking that
//! both decide the first (warm-up) slot alike. The straightforward path is not run at
//! 10,000 x 5,000 (50 million estimates per call).
//!
//! `cargo bench -p perllm-core --bench decision`
//!
//! Worlds: the paper testbed (6 servers) and `testbed::scaled` (500, 5,000: one A100 cloud
//! server per ten, the rest Xeon edge servers), each with the constraints
//! `latency <= deadline`, `share(cloud tier) <= 60%` and `occupancy(edge tier) <= 90%`. Servers
//! are a quarter busy. Requests come from the scenario's synthetic generator (so classes are
//! realistic), waiting 0-300 ms. The policy is warmed up by one slot first (its exploration
//! placements); each measured call then decides the same slot again (`share_window = 0`, so
//! repeated calls see the same rows). After each configuration the policy's LP counters are
//! printed to stderr, so the reader can tell solved slots from skipped ones.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use perllm_core::perllm::PerLlm;
use perllm_core::policy::{ClusterView, Decision, Policy};
use perllm_core::spec::*;
use perllm_core::{CostModel, Roofline, StepShape};
use std::hint::black_box;

#[path = "common/decision_slot.rs"]
mod decision_slot;
use decision_slot::{Slot, perllm_spec};

/// Core's roofline behind a wrapper that does not say it is one: the policy then takes the
/// straightforward feasibility step, as with a plugin cost model.
struct Hidden(Roofline);

impl CostModel for Hidden {
    fn name(&self) -> &str {
        "hidden-roofline"
    }
    fn step_ns(&self, hw: &Hardware, count: u32, model: &ModelSpec, shape: &StepShape) -> Nanos {
        self.0.step_ns(hw, count, model, shape)
    }
    fn add_decode_steps_ns(
        &self,
        hw: &Hardware,
        count: u32,
        model: &ModelSpec,
        shape: &StepShape,
        out: &mut [Nanos],
    ) {
        self.0.add_decode_steps_ns(hw, count, model, shape, out)
    }
}

fn bench(c: &mut Criterion) {
    let fast = Roofline::default();
    let plain = Hidden(Roofline::default());
    let mut g = c.benchmark_group("perllm_decision_per_slot");
    g.sample_size(10);
    for (servers, n) in [(6usize, 100usize), (500, 1000), (5000, 10000)] {
        let Slot {
            w,
            states,
            pending,
            now,
        } = Slot::new(servers, n);
        for variant in ["improved", "paper"] {
            let mut decisions: Vec<Vec<Decision>> = Vec::new();
            for (path, cost) in [("fast", &fast as &dyn CostModel), ("plain", &plain)] {
                if path == "plain" && servers > 1000 {
                    continue;
                }
                let spec = perllm_spec(variant);
                let mut p = PerLlm::new(&spec, &w).expect("policy");
                let view = ClusterView {
                    now_ns: now,
                    slot: 1,
                    world: &w,
                    servers: &states,
                    cost,
                    truth: None,
                    model_load: &[],
                };
                let mut out = vec![Decision::Defer; n];
                p.schedule(&view, &pending, &mut out).expect("warm-up slot");
                // The first slot of a fresh policy, decided by both paths from the same state.
                decisions.push(out.clone());
                g.bench_with_input(
                    BenchmarkId::new(format!("{variant}_{path}_{servers}_servers"), n),
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
                    "{variant} {path}: {servers} servers x {n} requests: placed {placed}/{n} in the last slot; slots {} lp_solves {} lp_skipped {} greedy/fallback {} lp_vars_max {} lp_rows_max {} classes {}",
                    v["slots"],
                    v["lp_solves"],
                    v["lp_skipped"],
                    v["lp_fallbacks"],
                    v["lp_vars_max"],
                    v["lp_rows_max"],
                    v["classes"]
                );
            }
            if let [a, b] = &decisions[..] {
                assert_eq!(
                    a, b,
                    "{variant}: the fast and straightforward paths must agree"
                );
            }
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
