//! How a new prompt joins the running batch: prefill-first, mixed, chunked (exact step counts on
//! one server without noise or contention).

use perllm_core::cost::{CostModel, StepShape};
use perllm_core::observer::Observer;
use perllm_core::request::{Outcome, Request};
use perllm_core::simple::Fixed;
use perllm_core::spec::*;
use perllm_core::{Roofline, run, testbed};
use std::collections::HashMap;

#[derive(Default)]
struct Trace {
    steps: Vec<(Nanos, Nanos)>,
    first: HashMap<u64, Nanos>,
    done: HashMap<u64, Outcome>,
}

impl Observer for Trace {
    fn on_step(&mut self, _s: u32, start: Nanos, end: Nanos) {
        self.steps.push((start, end));
    }
    fn on_first_token(&mut self, now: Nanos, r: &Request, _s: u32) {
        self.first.insert(r.id, now);
    }
    fn on_completion(&mut self, o: &Outcome) {
        self.done.insert(o.request.id, *o);
    }
}

impl Trace {
    /// Steps ending in `(from, to]`.
    fn steps_in(&self, from: Nanos, to: Nanos) -> usize {
        self.steps
            .iter()
            .filter(|s| s.1 > from && s.1 <= to)
            .count()
    }
    /// When request `id`'s last token was produced.
    fn decode_done(&self, id: u64) -> Nanos {
        self.first[&id] + self.done[&id].decode_ns
    }
}

/// The paper's A100 alone, a fast constant link, no noise, no contention.
fn one_gpu(batching: BatchingKind, chunk_tokens: Option<u32>) -> Scenario {
    let mut sc = testbed::paper(1.0, 10 * SECOND);
    sc.servers.retain(|s| s.name == "cloud");
    sc.servers[0].batching = Some(batching);
    sc.servers[0].chunk_tokens = chunk_tokens;
    sc.links[1].fluctuation = Fluctuation::None;
    sc.links[1].bandwidth_bps = 1e9;
    sc.workload.models = vec![("llama2-7b".into(), 1.0)];
    sc.slot_ns = 0;
    sc.sim.step_noise = 0.0;
    sc.sim.contention = 0.0;
    sc.objective.constraints.clear();
    sc
}

fn req(id: u64, arrival_ns: Nanos, prompt: u32, output: u32) -> Request {
    Request {
        id,
        arrival_ns,
        prompt_tokens: prompt,
        output_tokens: output,
        input_bytes: 1000,
        output_bytes: 8,
        ..Request::default()
    }
}

fn trace(sc: &Scenario, reqs: &[Request]) -> Trace {
    let world = sc.build().expect("valid scenario");
    let mut t = Trace::default();
    let mut src = reqs.iter().map(|r| Ok(*r));
    run(
        &world,
        &mut Fixed(0),
        &Roofline::default(),
        &mut src,
        &mut [&mut t],
    )
    .expect("run");
    assert_eq!(t.done.len(), reqs.len(), "every request completes");
    t
}

/// A decodes 50 tokens; B (a 400-token prompt) arrives 30 ms later, during A's decode.
fn a_then_b(sc: &Scenario) -> Trace {
    trace(
        sc,
        &[
            req(0, SECOND, 100, 50),
            req(1, SECOND + 30 * MILLISECOND, 400, 5),
        ],
    )
}

#[test]
fn mixed_decodes_through_a_newcomer_prefill() {
    let t = a_then_b(&one_gpu(BatchingKind::Mixed, None));
    // A's 49 tokens after the first each take one step, B's prefill step included.
    assert_eq!(t.steps_in(t.first[&0], t.decode_done(0)), 49);
    // B's prefill joined at a step boundary and took one step.
    assert_eq!(t.steps_in(t.first[&1] - 1, t.first[&1]), 1);
}

#[test]
fn prefill_first_pauses_running_decodes_for_the_prefill_step() {
    let t = a_then_b(&one_gpu(BatchingKind::PrefillFirst, None));
    // One more step than A's tokens: the step that prefilled B alone.
    assert_eq!(t.steps_in(t.first[&0], t.decode_done(0)), 50);
    // That step costs exactly a 400-token prefill alone (no contention, no noise).
    let w = one_gpu(BatchingKind::PrefillFirst, None).build().unwrap();
    let (hw, m) = (&w.hardware[w.servers[0].hardware], &w.models[0]);
    let alone = Roofline::default().step_ns(
        hw,
        1,
        m,
        &StepShape {
            prefill_tokens: 400,
            prefill_seqs: 1,
            ..StepShape::default()
        },
    );
    let b_step = t.steps.iter().find(|s| s.1 == t.first[&1]).unwrap();
    assert_eq!(b_step.1 - b_step.0, alone);
    // ... and A's decode is slower than with mixed batching by about that step.
    let mixed = a_then_b(&one_gpu(BatchingKind::Mixed, None));
    assert!(t.done[&0].decode_ns > mixed.done[&0].decode_ns);
}

#[test]
fn chunked_prefill_splits_a_prompt_over_the_token_budget() {
    // Alone: a 1000-token prompt with a budget of 256 takes ceil(1000 / 256) = 4 steps, priced
    // chunk by chunk (each chunk reads the KV of the ones before it).
    let sc = one_gpu(BatchingKind::Chunked, Some(256));
    let t = trace(&sc, &[req(0, SECOND, 1000, 3)]);
    let o = t.done[&0];
    assert_eq!(t.steps_in(0, t.first[&0]), 4);
    let w = sc.build().unwrap();
    let (hw, m) = (&w.hardware[w.servers[0].hardware], &w.models[0]);
    let chunk = |done: u64, n: u64| {
        Roofline::default().step_ns(
            hw,
            1,
            m,
            &StepShape {
                prefill_tokens: n,
                prefill_seqs: 1,
                decode_seqs: 0,
                kv_tokens: done,
            },
        )
    };
    let want = chunk(0, 256) + chunk(256, 256) + chunk(512, 256) + chunk(768, 232);
    assert_eq!(o.prefill_ns, want);
    assert_eq!(t.steps.len(), 4 + 2, "then two decode steps");

    // Next to a running sequence, the budget left for the prompt is 255 tokens a step: B's 400
    // tokens take 2 steps, and A decodes in every one of them.
    let t = a_then_b(&one_gpu(BatchingKind::Chunked, Some(256)));
    assert_eq!(t.steps_in(t.first[&0], t.decode_done(0)), 49);
    let admitted = t.first[&1] - t.done[&1].prefill_ns;
    assert_eq!(t.steps_in(admitted, t.first[&1]), 2);
    // A budget larger than the prompt behaves like mixed batching.
    let big = a_then_b(&one_gpu(BatchingKind::Chunked, Some(4096)));
    let mixed = a_then_b(&one_gpu(BatchingKind::Mixed, None));
    assert_eq!(big.steps, mixed.steps);
}

#[test]
fn the_scenario_default_applies_to_servers_without_their_own() {
    let mut sc = testbed::paper(1.0, 10 * SECOND);
    sc.sim.batching = BatchingKind::Chunked;
    sc.sim.chunk_tokens = 1024;
    sc.servers[5].batching = Some(BatchingKind::PrefillFirst);
    let w = sc.build().unwrap();
    assert_eq!(
        w.servers[0].batching,
        Batching::Chunked { chunk_tokens: 1024 }
    );
    assert_eq!(w.servers[5].batching, Batching::PrefillFirst);
    // Without any setting: mixed, as before the choice existed.
    let w = testbed::paper(1.0, 10 * SECOND).build().unwrap();
    assert!(w.servers.iter().all(|s| s.batching == Batching::Mixed));
}

#[test]
fn inconsistent_batching_settings_are_errors_naming_the_field() {
    let mut sc = testbed::paper(1.0, 10 * SECOND);
    sc.servers[5].batching = Some(BatchingKind::Chunked);
    sc.servers[5].chunk_tokens = Some(16); // below max_batch 64
    sc.servers[0].chunk_tokens = Some(512); // the edge is mixed
    let errs = sc.build().unwrap_err();
    let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
    assert!(paths.contains(&"server[cloud].chunk_tokens"), "{errs:?}");
    assert!(paths.contains(&"server[edge1].chunk_tokens"), "{errs:?}");
    // The scenario-wide budget is checked against every chunked server.
    let mut sc = testbed::paper(1.0, 10 * SECOND);
    sc.sim.batching = BatchingKind::Chunked;
    sc.sim.chunk_tokens = 8;
    let errs = sc.build().unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].path, "sim.chunk_tokens");
    assert!(errs[0].message.contains("cloud"), "{errs:?}");
}
