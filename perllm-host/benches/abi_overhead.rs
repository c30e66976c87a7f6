#![allow(missing_docs)]
//! The cost of calling a policy through the plugin ABI versus the same policy in-process, on a
//! slot of 100 pending requests of the paper's testbed (`ABI_OVERHEAD_REQUESTS=<n>` for another size).
//!
//! - `greedy`: the bundled `greedy` plugin (host precomputes the 100 x 6 cost-model estimates,
//!   calls its `decide` through the C ABI with the simulator's own pending requests and
//!   decisions, checks the action codes) against the same algorithm written directly on the
//!   core `Policy` trait. `ABI_OVERHEAD_PATH=schedule` measures the copying path instead
//!   (request views and placements, as an older host or a plugin without `decide`).
//! - `least-loaded`: the bundled `least-loaded` plugin against the same algorithm in-process.
//!
//! Run: `cargo bench -p perllm-host --bench abi_overhead`.

use criterion::{Criterion, criterion_group, criterion_main};
use perllm_core::policy::{ClusterView, Decision, Pending, Policy, PolicyError, ServerState};
use perllm_core::spec::{PolicySpec, SECOND};
use perllm_core::{Request, Roofline, World};
use std::hint::black_box;

#[path = "common/bundled.rs"]
mod bundled;
use bundled::bundled_registry;

/// The bundled greedy policy's algorithm, in-process.
struct NativeGreedy {
    placed: Vec<u32>,
}

impl Policy for NativeGreedy {
    fn name(&self) -> &str {
        "greedy (native)"
    }
    fn schedule(
        &mut self,
        view: &ClusterView<'_>,
        pending: &[Pending],
        out: &mut [Decision],
    ) -> Result<(), PolicyError> {
        let w = &view.world.scenario.objective.weights;
        self.placed.clear();
        self.placed.resize(view.servers.len(), 0);
        for (p, d) in pending.iter().zip(out.iter_mut()) {
            let req = &p.request;
            let deadline = view.deadline_ns(req);
            let mut best_ok: Option<(f64, u32)> = None;
            let mut fastest: Option<(u64, u32)> = None;
            for s in view.world.servers.iter().filter(|s| s.hosts(req.model)) {
                let e = view.estimate(req, s.id);
                let st = &view.servers[s.id as usize];
                let mb = s.max_batch.max(1);
                let occupied = st.uploading + st.queued + st.running + self.placed[s.id as usize];
                let queue = if occupied >= mb {
                    ((occupied - mb) / mb + 1) as u64 * (e.prefill_ns + e.decode_ns)
                } else {
                    0
                };
                let latency = e.total_ns() - e.queue_ns + e.queue_ns.max(queue);
                if fastest.is_none_or(|(l, _)| latency < l) {
                    fastest = Some((latency, s.id));
                }
                if latency <= deadline {
                    let energy = e.energy.weighted(w);
                    if best_ok.is_none_or(|(b, _)| energy < b) {
                        best_ok = Some((energy, s.id));
                    }
                }
            }
            *d = match best_ok.map(|b| b.1).or(fastest.map(|f| f.1)) {
                Some(s) => {
                    self.placed[s as usize] += 1;
                    Decision::Assign(s)
                }
                None => Decision::Reject,
            };
        }
        Ok(())
    }
}

/// The bundled least-loaded policy's algorithm, in-process.
struct NativeLeastLoaded {
    placed: Vec<u32>,
}

impl Policy for NativeLeastLoaded {
    fn name(&self) -> &str {
        "least-loaded (native)"
    }
    fn schedule(
        &mut self,
        view: &ClusterView<'_>,
        pending: &[Pending],
        out: &mut [Decision],
    ) -> Result<(), PolicyError> {
        self.placed.clear();
        self.placed.resize(view.servers.len(), 0);
        for (p, d) in pending.iter().zip(out.iter_mut()) {
            let mut best: Option<(f64, u32)> = None;
            for s in view
                .world
                .servers
                .iter()
                .filter(|s| s.hosts(p.request.model))
            {
                let st = &view.servers[s.id as usize];
                let l = (st.uploading as f64
                    + st.queued as f64
                    + st.running as f64
                    + self.placed[s.id as usize] as f64)
                    / s.max_batch.max(1) as f64;
                if best.is_none_or(|(b, _)| l < b) {
                    best = Some((l, s.id));
                }
            }
            *d = match best {
                Some((_, s)) => {
                    self.placed[s as usize] += 1;
                    Decision::Assign(s)
                }
                None => Decision::Reject,
            };
        }
        Ok(())
    }
}

fn slot(world: &World, requests: u64, first_id: u64) -> (Vec<ServerState>, Vec<Pending>) {
    let states = world
        .servers
        .iter()
        .enumerate()
        .map(|(i, s)| ServerState {
            queued: i as u32 % 3,
            running: (i as u32 * 2) % s.max_batch.max(1),
            uploading: 1,
            free_kv_bytes: s.kv_capacity_bytes / 2,
            kv_capacity_bytes: s.kv_capacity_bytes,
            bandwidth_estimate_bps: world.links[s.link].bandwidth_bps,
            ..Default::default()
        })
        .collect();
    let pending = (0..requests)
        .map(|i| Pending {
            request: Request {
                id: first_id + i,
                arrival_ns: 0,
                model: (i % 3 == 0) as u16,
                prompt_tokens: 100 + (i as u32 * 37) % 900,
                output_tokens: 20 + (i as u32 * 13) % 300,
                input_bytes: 50_000 + i * 1000,
                output_bytes: 400,
                slo: (i % 3) as u16,
            },
            defers: 0,
        })
        .collect();
    (states, pending)
}

fn bench(c: &mut Criterion) {
    let world = perllm_core::testbed::paper(10.0, 10 * SECOND)
        .build()
        .expect("valid testbed");
    let mut registry = bundled_registry();
    // `ABI_OVERHEAD_PATH=schedule`: call the bundled plugins' `schedule` (the copying path every
    // plugin has, what an older host calls) instead of their `decide` (ABI 1.3's in-place path).
    if std::env::var("ABI_OVERHEAD_PATH").is_ok_and(|v| v == "schedule") {
        registry.set_in_place(false);
    }
    // `ABI_OVERHEAD_REQUESTS=<n>`: a slot of `n` pending requests
    // instead of 100, e.g. 1 for the fixed cost of a call (a paper-7b run decides about 1.2
    // requests per call).
    let requests = std::env::var("ABI_OVERHEAD_REQUESTS")
        .ok()
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(100);
    let (states, pending) = slot(&world, requests, 0);
    // `ABI_OVERHEAD_FRESH=1`: the calls alternate between this slot and one of the same
    // requests under other ids, so that every call sees requests it has not seen before (as in
    // a run, where a request is decided at its first slot unless deferred). Without it every
    // call decides the same slot again.
    let fresh = std::env::var("ABI_OVERHEAD_FRESH").is_ok_and(|v| v == "1");
    let slots = if fresh {
        vec![pending.clone(), slot(&world, requests, 1_000_000).1]
    } else {
        vec![pending.clone()]
    };
    let cost = Roofline::default();
    let view = ClusterView {
        now_ns: SECOND,
        slot: 10,
        ..ClusterView::new(&world, &states, &cost)
    };
    let mut out = vec![Decision::Defer; pending.len()];

    let spec = |n: &str| PolicySpec {
        name: n.into(),
        params: Default::default(),
    };
    type Case = (&'static str, Box<dyn Policy>, Box<dyn Policy>);
    let mut cases: Vec<Case> = vec![
        (
            "greedy",
            registry.policy(&spec("greedy"), &world, 1).expect("greedy"),
            Box::new(NativeGreedy { placed: Vec::new() }),
        ),
        (
            "least-loaded",
            registry
                .policy(&spec("least-loaded"), &world, 1)
                .expect("least-loaded"),
            Box::new(NativeLeastLoaded { placed: Vec::new() }),
        ),
    ];
    for (name, foreign, native) in &mut cases {
        for pending in &slots {
            // Same decisions both ways (else the comparison is meaningless).
            let mut a = vec![Decision::Defer; pending.len()];
            let mut b = vec![Decision::Defer; pending.len()];
            foreign.schedule(&view, pending, &mut a).expect("foreign");
            native.schedule(&view, pending, &mut b).expect("native");
            assert_eq!(
                a, b,
                "{name}: the plugin and the in-process policy decide alike"
            );
        }
    }
    // Instruction-count mode, for callgrind (wall-clock times on a shared machine are too noisy
    // to decide between small changes): `ABI_OVERHEAD_CALLS=<case>/<abi|in-process>:<n>` makes
    // exactly `n` calls of one variant (after the checks above) and exits before any timing.
    // The difference of the totals of two runs with different `n` divided by the difference of
    // the `n`s is the cost of one call.
    if let Ok(spec) = std::env::var("ABI_OVERHEAD_CALLS") {
        let parsed = spec.split_once(':').and_then(|(which, n)| {
            let (case, variant) = which.split_once('/')?;
            Some((
                case.to_string(),
                variant.to_string(),
                n.parse::<u64>().ok()?,
            ))
        });
        let Some((case, variant, n)) = parsed else {
            panic!("ABI_OVERHEAD_CALLS={spec:?}: expected <case>/<abi|in-process>:<calls>");
        };
        let Some((_, foreign, native)) = cases.iter_mut().find(|c| c.0 == case) else {
            panic!("ABI_OVERHEAD_CALLS={spec:?}: no case `{case}` (greedy, least-loaded)");
        };
        let p = match variant.as_str() {
            "abi" => foreign,
            "in-process" => native,
            v => panic!("ABI_OVERHEAD_CALLS={spec:?}: variant `{v}` is neither abi nor in-process"),
        };
        for k in 0..n as usize {
            let pending = &slots[k % slots.len()];
            p.schedule(black_box(&view), black_box(pending), &mut out)
                .expect("schedule");
        }
        println!("made {n} calls of {case}/{variant}");
        std::process::exit(0);
    }
    for (name, foreign, native) in &mut cases {
        let mut g = c.benchmark_group(format!("slot{requests}/{name}"));
        g.bench_function("abi", |bch| {
            bch.iter(|| foreign.schedule(black_box(&view), black_box(&pending), &mut out))
        });
        g.bench_function("in-process", |bch| {
            bch.iter(|| native.schedule(black_box(&view), black_box(&pending), &mut out))
        });
        g.finish();
    }
    // Paired, interleaved measurement: on a shared, noisy machine, the two criterion groups above
    // run seconds apart under different background load. Here each round times one call of each
    // (alternating which goes first), so both see the same conditions; the medians and the median
    // of the per-round ratios are printed.
    for (name, foreign, native) in &mut cases {
        let rounds = 3000;
        let (mut fa, mut na, mut ratio) = (
            Vec::with_capacity(rounds),
            Vec::with_capacity(rounds),
            Vec::with_capacity(rounds),
        );
        for k in 0..rounds {
            let mut time = |p: &mut Box<dyn Policy>| {
                let t = std::time::Instant::now();
                p.schedule(black_box(&view), black_box(&pending), &mut out)
                    .expect("schedule");
                t.elapsed().as_nanos() as f64
            };
            let (f, n) = if k % 2 == 0 {
                let f = time(foreign);
                (f, time(native))
            } else {
                let n = time(native);
                (time(foreign), n)
            };
            fa.push(f);
            na.push(n);
            ratio.push(f / n);
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "paired slot{requests}/{name}: abi median {:.2} us, in-process median {:.2} us, median per-round ratio {:.3} ({rounds} rounds)",
            median(&mut fa) / 1e3,
            median(&mut na) / 1e3,
            median(&mut ratio)
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
