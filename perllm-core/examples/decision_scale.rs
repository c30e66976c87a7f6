//! Decides the decision benchmark's slot (`benches/common/decision_slot.rs`) with PerLLM, for
//! profiling (callgrind, perf) and quick timings outside criterion: one warm-up slot, then
//! REPEATS measured slots; prints the median time per slot and the policy's LP counters.
//!
//! `cargo run --release -p perllm-core --example decision_scale -- [SERVERS] [REQUESTS] [VARIANT] [REPEATS]`
//! Defaults: 500 servers, 1,000 requests, `improved`, 5 repeats. VARIANT: `improved` or `paper`.

#[path = "../benches/common/decision_slot.rs"]
mod decision_slot;

use decision_slot::{Slot, perllm_spec};
use perllm_core::Roofline;
use perllm_core::perllm::PerLlm;
use perllm_core::policy::{ClusterView, Decision, Policy};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let num = |i: usize, d: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let servers = num(1, 500);
    let n = num(2, 1000);
    let variant = args.get(3).map_or("improved", |s| s.as_str());
    let repeats = num(4, 5);
    let slot = Slot::new(servers, n);
    let cost = Roofline::default();
    let view = ClusterView {
        now_ns: slot.now,
        slot: 1,
        ..ClusterView::new(&slot.w, &slot.states, &cost)
    };
    let mut p = PerLlm::new(&perllm_spec(variant), &slot.w).expect("policy");
    let mut out = vec![Decision::Defer; n];
    p.schedule(&view, &slot.pending, &mut out)
        .expect("warm-up slot");
    let mut times = Vec::new();
    for _ in 0..repeats {
        let t = std::time::Instant::now();
        p.schedule(&view, &slot.pending, &mut out).expect("slot");
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let placed = out
        .iter()
        .filter(|d| matches!(d, Decision::Assign(_)))
        .count();
    let v = p.stats().values;
    // A digest of the last slot's decisions, to compare builds (same digest, same decisions).
    let digest = {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        format!("{out:?}").hash(&mut h);
        h.finish()
    };
    println!(
        "{variant}: {servers} servers x {n} requests: median {:.2} ms per slot (min {:.2}, max {:.2}, {repeats} slots); placed {placed}; decisions digest {digest:016x}; lp_solves {} lp_skipped {} lp_vars_max {} lp_rows_max {} classes {}",
        times.get(times.len() / 2).copied().unwrap_or(f64::NAN),
        times.first().copied().unwrap_or(f64::NAN),
        times.last().copied().unwrap_or(f64::NAN),
        v["lp_solves"],
        v["lp_skipped"],
        v["lp_vars_max"],
        v["lp_rows_max"],
        v["classes"]
    );
}
