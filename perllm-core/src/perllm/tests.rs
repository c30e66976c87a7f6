//! Unit tests of the PerLLM engine.

use super::*;
use crate::cost::Roofline;
use crate::policy::{ClusterView, Decision, GroundTruth, Pending, Policy, ServerState};
use crate::request::Request;
use crate::spec::{Cmp, LinearConstraint, Quantity, SECOND, Target};

fn requests(world: &World, n: u64) -> Vec<Pending> {
    (0..n)
        .map(|i| Pending {
            request: Request {
                id: i,
                arrival_ns: 0,
                model: (i % 3 == 0) as u16,
                prompt_tokens: 100 + 37 * (i as u32 % 11),
                output_tokens: 50 + 13 * (i as u32 % 7),
                input_bytes: 20_000,
                output_bytes: 400,
                slo: (i % world.slos.len() as u64) as u16,
            },
            defers: 0,
        })
        .collect()
}

/// The paper testbed at 10 requests/s and a slot of its first `n` requests.
fn paper_slot(n: u64) -> (World, Vec<Pending>) {
    let world = crate::testbed::paper(10.0, 10 * SECOND).build().unwrap();
    let pending = requests(&world, n);
    (world, pending)
}

/// The world's PerLLM policy with the word-valued parameter `key` set to `value`.
fn perllm_with(world: &World, key: &str, value: &str) -> PerLlm {
    let mut spec = world.scenario.policy.clone();
    spec.params
        .insert(key.into(), crate::spec::ParamValue::Text(value.into()));
    PerLlm::new(&spec, world).unwrap()
}

fn run_slot(
    p: &mut dyn Policy,
    world: &World,
    truth: Option<&GroundTruth>,
    pending: &[Pending],
) -> Vec<Decision> {
    let servers = ServerState::all_idle(world);
    let cost = Roofline::default();
    let view = ClusterView {
        truth,
        ..ClusterView::new(world, &servers, &cost)
    };
    let mut out = vec![Decision::Defer; pending.len()];
    p.schedule(&view, pending, &mut out).unwrap();
    out
}

#[test]
fn paper_slot_respects_hosting_and_the_cloud_share() {
    let (world, pending) = paper_slot(40);
    let mut p = PerLlm::new(&world.scenario.policy, &world).unwrap();
    let out = run_slot(&mut p, &world, None, &pending);
    let cloud = world.server_id("cloud").unwrap();
    let mut placed = 0;
    let mut on_cloud = 0;
    for (d, pd) in out.iter().zip(&pending) {
        if let Decision::Assign(s) = d {
            assert!(world.servers[*s as usize].hosts(pd.request.model));
            placed += 1;
            on_cloud += (*s == cloud) as u32;
        }
    }
    assert!(placed > 0);
    assert!(
        on_cloud as f64 <= 0.6 * placed as f64 + 1e-9,
        "{on_cloud} of {placed} on the cloud"
    );
    // Same inputs, same decisions.
    let mut q = PerLlm::new(&world.scenario.policy, &world).unwrap();
    assert_eq!(run_slot(&mut q, &world, None, &pending), out);
    let mut notes = Vec::new();
    p.explain(&mut notes);
    assert_eq!(notes.len(), pending.len());
    assert!(notes[0].get("class").is_some() && notes[0].get("via").is_some());
    let st = p.stats();
    // The default (improved) variant does not force trials; the paper variant does.
    assert_eq!(st.values["explored"], 0.0);
    assert_eq!(
        st.values["pools"], 2.0,
        "five identical edge servers and the cloud"
    );
    let mut paper = perllm_with(&world, "variant", "paper");
    run_slot(&mut paper, &world, None, &pending);
    let st = paper.stats();
    assert!(st.values["explored"] > 0.0);
    assert!(!st.values.contains_key("pools"));
}

#[test]
fn oracle_needs_the_truth_and_uses_it() {
    let (world, pending) = paper_slot(12);
    let mut o = crate::true_costs::TrueCosts::new(
        &PolicySpec {
            name: "oracle".into(),
            params: Default::default(),
        },
        &world,
    )
    .unwrap();
    assert!(o.wants_ground_truth());
    let servers = ServerState::all_idle(&world);
    let cost = Roofline::default();
    let view = ClusterView::new(&world, &servers, &cost);
    let mut out = vec![Decision::Defer; pending.len()];
    let e = o.schedule(&view, &pending, &mut out).unwrap_err();
    assert!(e.message.contains("ground truth"), "{e}");
    let truth = GroundTruth {
        link_bandwidth_bps: world
            .servers
            .iter()
            .map(|s| world.links[s.link].bandwidth_bps)
            .collect(),
        contention: 0.01,
        step_noise: 0.05,
    };
    let out = run_slot(&mut o, &world, Some(&truth), &pending);
    assert!(out.iter().any(|d| matches!(d, Decision::Assign(_))));
}

#[test]
fn a_failing_solver_falls_back_to_greedy_and_is_counted() {
    use plan::test_hook::{Failure, with_failure};
    let (world, pending) = paper_slot(40);
    // Without a failure this slot needs the LP (the cloud-share row binds).
    let mut p = PerLlm::new(&world.scenario.policy, &world).unwrap();
    let _ = run_slot(&mut p, &world, None, &pending);
    assert_eq!(p.stats().values["lp_solves"], 1.0);
    let mut spec = world.scenario.policy.clone();
    spec.params
        .insert("use_lp".into(), crate::spec::ParamValue::Bool(false));
    let mut g = PerLlm::new(&spec, &world).unwrap();
    let greedy = run_slot(&mut g, &world, None, &pending);
    assert_eq!(g.stats().values["greedy_slots"], 1.0);
    for (how, msg) in [
        (Failure::Infeasible, "infeasible"),
        (Failure::Panic, "panicked"),
    ] {
        let mut p = PerLlm::new(&world.scenario.policy, &world).unwrap();
        let out = with_failure(how, || run_slot(&mut p, &world, None, &pending));
        // The fallback is the greedy placement, decision for decision.
        assert_eq!(out, greedy, "{how:?}");
        let st = p.stats().values;
        for (k, v) in [
            ("slots", 1.0),
            ("lp_fallbacks", 1.0),
            ("lp_solves", 0.0),
            ("greedy_slots", 0.0),
            ("lp_skipped", 0.0),
            ("empty_slots", 0.0),
            ("decisions", 40.0),
        ] {
            assert_eq!(st[k], v, "{how:?}: {k}");
        }
        assert_eq!(
            st["assigned"] + st["rejected"] + st["deferred"],
            st["decisions"]
        );
        let err = p.core.counters.last_lp_error.clone().unwrap_or_default();
        assert!(err.to_lowercase().contains(msg), "{how:?}: {err}");
        let mut notes = Vec::new();
        p.explain(&mut notes);
        let fallback: Vec<_> = notes.iter().filter(|n| n["via"] == "fallback").collect();
        assert!(!fallback.is_empty(), "{how:?}: {notes:?}");
        for n in fallback {
            assert_eq!(n["lp_error"], serde_json::json!(err));
        }
        assert!(notes.iter().all(|n| n["via"] != "lp"));
        // The next slot's solve succeeds again; the counters keep the failure.
        let _ = run_slot(&mut p, &world, None, &pending);
        let st = p.stats().values;
        assert_eq!((st["lp_fallbacks"], st["slots"]), (1.0, 2.0), "{how:?}");
    }
}

#[test]
fn unenforceable_constraints_are_refused() {
    let mut sc = crate::testbed::paper(10.0, 10 * SECOND);
    sc.objective.constraints.push(LinearConstraint {
        terms: vec![
            (1.0, Quantity::Latency),
            (1.0, Quantity::Share(Target::Server("cloud".into()))),
        ],
        constant: -1.0,
        cmp: Cmp::Le,
        source: "latency + share(cloud) <= 1".into(),
    });
    let world = sc.build().unwrap();
    let e = PerLlm::new(&world.scenario.policy, &world).err().unwrap();
    assert!(
        e.message.contains("latency + share(cloud) <= 1") && e.message.contains("mixes"),
        "{e}"
    );
}

#[test]
fn infeasible_requests_are_rejected_or_sent_best_effort() {
    let mut sc = crate::testbed::paper(10.0, 10 * SECOND);
    // A deadline no server can meet.
    for s in &mut sc.slos {
        s.deadline_ns = 1_000;
    }
    // Keep only `latency <= deadline` (a best-effort request still obeys per-slot rows).
    sc.objective.constraints.truncate(1);
    let world = sc.build().unwrap();
    let pending = requests(&world, 5);
    let mut p = PerLlm::new(&world.scenario.policy, &world).unwrap();
    assert!(
        run_slot(&mut p, &world, None, &pending)
            .iter()
            .all(|d| *d == Decision::Reject)
    );
    assert_eq!(
        p.stats().values["explored"],
        0.0,
        "infeasible requests never explore"
    );
    let mut p = perllm_with(&world, "infeasible", "best_effort");
    let out = run_slot(&mut p, &world, None, &pending);
    assert!(
        out.iter().all(|d| matches!(d, Decision::Assign(_))),
        "{out:?}"
    );
}

/// The fast feasibility step (estimate cells, `fast.rs`) decides exactly like the
/// straightforward one: whole runs through the simulator, both variants and `true-costs`, on a
/// scaled cluster (many identical servers in different load states, so cells split and merge)
/// and on the paper testbed with its share and occupancy rows; every decision and the whole
/// report (regret, counters) identical.
#[test]
fn the_fast_path_decides_like_the_straightforward_one() {
    use crate::observer::Observer;
    #[derive(Default)]
    struct Log(Vec<(u64, u64, Decision)>);
    impl Observer for Log {
        fn on_decision(
            &mut self,
            now: crate::spec::Nanos,
            _slot: u64,
            r: &Request,
            d: Decision,
            _note: Option<&serde_json::Value>,
        ) {
            self.0.push((now, r.id, d));
        }
    }
    let worlds = [
        crate::testbed::scaled(20, 12.0, 10 * SECOND)
            .build()
            .unwrap(),
        crate::testbed::paper(8.0, 15 * SECOND).build().unwrap(),
    ];
    for world in &worlds {
        for variant in ["improved", "paper", "true-costs"] {
            let run = |fast: bool| {
                let mut p: Box<dyn Policy> = if variant == "true-costs" {
                    let mut spec = world.scenario.policy.clone();
                    spec.name = "true-costs".into();
                    let t = crate::true_costs::TrueCosts::new(&spec, world).unwrap();
                    Box::new(if fast { t } else { t.straightforward() })
                } else {
                    let q = perllm_with(world, "variant", variant);
                    Box::new(if fast { q } else { q.straightforward() })
                };
                let mut log = Log::default();
                let mut src = crate::workload::Synthetic::new(world);
                let rep = crate::run(
                    world,
                    &mut *p,
                    &Roofline::default(),
                    &mut src,
                    &mut [&mut log],
                )
                .unwrap();
                (log.0, serde_json::to_string(&rep).unwrap())
            };
            let (fast, fast_rep) = run(true);
            let (plain, plain_rep) = run(false);
            assert!(
                fast.len() > 100,
                "{}: {} decisions",
                world.scenario.name,
                fast.len()
            );
            assert!(fast.iter().any(|d| matches!(d.2, Decision::Assign(_))));
            assert_eq!(fast, plain, "{} {variant}", world.scenario.name);
            assert!(
                fast_rep == plain_rep,
                "{} {variant}: the reports differ",
                world.scenario.name
            );
        }
    }
}

/// Large random clusters, slot by slot: hundreds of servers whose load states are drawn from a
/// small palette (so that estimate cells hold many servers) or drawn alone (cells of one),
/// hundreds of pending requests; three consecutive slots per cluster, each with new states and
/// the arms as the earlier slots left them. Both variants: the fast path decides every slot
/// like the straightforward one.
#[test]
fn large_random_clusters_decide_alike_on_both_paths() {
    use crate::rng::{stream_rng, unit_f64};
    use crate::workload::{RequestSource, Synthetic};
    let mut placed = 0;
    for seed in 0..3u64 {
        let n_servers = [300, 170, 420][seed as usize];
        let mut sc = crate::testbed::scaled(n_servers, 40.0 + 30.0 * seed as f64, 100 * SECOND);
        sc.seed = 17 + seed;
        sc.objective.constraints = crate::testbed::tier_constraints();
        if seed > 0 {
            // Without the cloud share row, which keeps every request off the cloud when no
            // edge server can meet its deadline.
            sc.objective.constraints.remove(1);
        }
        let world = sc.build().unwrap();
        let mut rng = stream_rng(seed, 99);
        let mut draw = |k: u32| (unit_f64(&mut rng) * k as f64) as u32;
        let mut src = Synthetic::new(&world);
        for variant in ["improved", "paper"] {
            let mut fast = perllm_with(&world, "variant", variant);
            let mut plain = perllm_with(&world, "variant", variant).straightforward();
            for slot in 0..3u64 {
                let palette: Vec<(u32, u32, u32, u32)> = (0..4)
                    .map(|_| (draw(9), draw(3), draw(3), draw(4)))
                    .collect();
                let states: Vec<ServerState> = world
                    .servers
                    .iter()
                    .map(|s| {
                        let (running, queued, uploading, kv_quarters) = if draw(3) == 0 {
                            (draw(9), draw(3), draw(3), draw(4))
                        } else {
                            palette[draw(4) as usize]
                        };
                        ServerState {
                            running: running.min(s.max_batch),
                            queued,
                            uploading,
                            free_kv_bytes: s.kv_capacity_bytes / 4 * kv_quarters as u64,
                            kv_capacity_bytes: s.kv_capacity_bytes,
                            bandwidth_estimate_bps: world.links[s.link].bandwidth_bps,
                            running_models: if running > 0 { 1 } else { 0 },
                            mean_batch: running as f64,
                            ..ServerState::default()
                        }
                    })
                    .collect();
                let n = 150 + draw(300) as usize;
                let reqs: Vec<Request> = (0..n)
                    .map(|_| src.next_request().unwrap().unwrap())
                    .collect();
                let now = reqs.last().unwrap().arrival_ns + 300 * crate::spec::MILLISECOND;
                // Waited 0-300 ms, as in the decision benchmark.
                let pending: Vec<Pending> = reqs
                    .into_iter()
                    .enumerate()
                    .map(|(i, mut request)| {
                        request.arrival_ns = now - (i as u64 % 4) * 100 * crate::spec::MILLISECOND;
                        Pending { request, defers: 0 }
                    })
                    .collect();
                let cost = Roofline::default();
                let view = ClusterView {
                    now_ns: now,
                    slot,
                    ..ClusterView::new(&world, &states, &cost)
                };
                let mut a = vec![Decision::Defer; n];
                let mut b = vec![Decision::Defer; n];
                fast.schedule(&view, &pending, &mut a).unwrap();
                plain.schedule(&view, &pending, &mut b).unwrap();
                placed += a
                    .iter()
                    .filter(|d| matches!(d, Decision::Assign(_)))
                    .count();
                assert_eq!(a, b, "seed {seed} {variant} slot {slot}");
            }
            assert_eq!(fast.stats(), plain.stats(), "seed {seed} {variant}");
        }
    }
    assert!(placed > 500, "{placed} requests placed in all");
}

/// The greedy fill orders each group's servers lazily (only as far as its scan goes); on
/// random slots, many servers, tied scores, binding budgets and user rows, it places exactly
/// as the straightforward fill (every server in full score order).
#[test]
fn the_lazily_ordered_greedy_fill_places_like_the_full_sort() {
    use super::constraints::UserRow;
    use super::plan::{Budgets, Group, Ledger, greedy_fill};
    use crate::rng::{stream_rng, unit_f64};
    use crate::world::ServerId;
    // The fill as it was before the lazy order: the whole order up front.
    fn reference(groups: &[Group], b: &Budgets, ledger: &mut Ledger, counts: &mut [Vec<u32>]) {
        let mut order: Vec<(f64, usize)> = groups
            .iter()
            .enumerate()
            .map(|(g, grp)| {
                let mut s = grp.score.clone();
                s.sort_by(|a, b| b.total_cmp(a));
                let regret = match s.len() {
                    0 => 0.0,
                    1 => f64::INFINITY,
                    _ => s[0] - s[1],
                };
                (regret, g)
            })
            .collect();
        order.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for (_, g) in order {
            let grp = &groups[g];
            let mut ks: Vec<usize> = (0..grp.servers.len()).collect();
            ks.sort_by(|&a, &c| grp.score[c].total_cmp(&grp.score[a]).then(a.cmp(&c)));
            let mut left = grp.n() - counts[g].iter().sum::<u32>();
            'units: while left > 0 {
                for &k in &ks {
                    if ledger.fits(b, grp.kv, grp.bits, grp.servers[k]) {
                        counts[g][k] += 1;
                        ledger.add(b, grp.kv, grp.bits, grp.servers[k], 1.0);
                        left -= 1;
                        continue 'units;
                    }
                }
                break;
            }
        }
    }
    let mut rng = stream_rng(7, 3);
    let mut u = move || unit_f64(&mut rng);
    let mut busy = 0;
    for case in 0..60 {
        let n_servers = 1 + (u() * 600.0) as usize;
        let user = (0..(u() * 3.0) as usize)
            .map(|_| UserRow {
                coef: (0..n_servers).map(|_| (u() * 4.0).floor() - 1.0).collect(),
                rhs: u() * 20.0,
                tol: 0.0,
                constraint: 0,
            })
            .collect();
        let b = Budgets {
            batch: (0..n_servers).map(|_| (u() * 3.0).floor()).collect(),
            kv: (0..n_servers).map(|_| u() * 5.0).collect(),
            link: (0..n_servers).map(|_| u() * 5.0).collect(),
            link_cap: (0..n_servers).map(|_| 4.0).collect(),
            user,
        };
        let groups: Vec<Group> = (0..1 + (u() * 12.0) as usize)
            .map(|_| {
                let servers: Vec<ServerId> =
                    (0..n_servers as ServerId).filter(|_| u() < 0.7).collect();
                // Few distinct scores: many ties.
                let score = servers.iter().map(|_| (u() * 5.0).floor()).collect();
                Group {
                    class: 0,
                    members: (0..(u() * 200.0) as u32).collect(),
                    mean_d: vec![1.0; servers.len()],
                    servers,
                    score,
                    kv: u(),
                    bits: u(),
                }
            })
            .collect();
        let mut l1 = Ledger::new(&b);
        let mut l2 = Ledger::new(&b);
        let mut c1: Vec<Vec<u32>> = groups.iter().map(|g| vec![0; g.servers.len()]).collect();
        let mut c2 = c1.clone();
        greedy_fill(&groups, &b, &mut l1, &mut c1);
        reference(&groups, &b, &mut l2, &mut c2);
        assert_eq!(c1, c2, "case {case}");
        assert_eq!(l1.placed, l2.placed, "case {case}");
        let placed: u32 = c1.iter().flatten().sum();
        let wanted: u32 = groups.iter().map(|g| g.n()).sum();
        busy += (placed > 0 && placed < wanted) as u32;
    }
    // Most cases place some requests and leave others for lack of room (the interesting ones).
    assert!(busy > 30, "{busy} of 60 cases partly placed");
}
