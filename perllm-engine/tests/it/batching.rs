//! The three batching choices form the steps they promise.

use perllm_engine::{Batching, Engine, EngineConfig, Request, StepShape};

fn steps(
    batching: Batching,
    reqs: &[(u32, u32)],
    late: &[(u32, u32)],
    late_after: usize,
) -> Vec<StepShape> {
    let cfg = EngineConfig {
        batching,
        ..EngineConfig::tiny()
    };
    let mut e = Engine::new(cfg).unwrap();
    let mut id = 0;
    let mut sub = |e: &mut Engine, list: &[(u32, u32)]| {
        for &(p, o) in list {
            e.submit(Request {
                id,
                prompt: vec![1; p as usize],
                max_tokens: o,
            })
            .unwrap();
            id += 1;
        }
    };
    sub(&mut e, reqs);
    let mut out = Vec::new();
    loop {
        if out.len() == late_after {
            sub(&mut e, late);
        }
        match e.step().unwrap() {
            Some(s) => out.push(s.shape),
            None if out.len() > late_after => break,
            None => {}
        }
    }
    out
}

#[test]
fn mixed_prefills_a_new_prompt_alongside_the_decodes() {
    let s = steps(Batching::Mixed, &[(10, 5), (10, 5)], &[(30, 2)], 2);
    assert_eq!(
        (s[0].prefill_seqs, s[0].prefill_tokens, s[0].decode_seqs),
        (2, 20, 0)
    );
    assert_eq!((s[1].prefill_seqs, s[1].decode_seqs), (0, 2));
    assert_eq!(s[1].kv_tokens, 22);
    assert_eq!(
        (s[2].prefill_seqs, s[2].prefill_tokens, s[2].decode_seqs),
        (1, 30, 2)
    );
}

#[test]
fn prefill_first_pauses_the_decodes() {
    let s = steps(Batching::PrefillFirst, &[(10, 5), (10, 5)], &[(30, 2)], 2);
    assert_eq!(
        (s[2].prefill_seqs, s[2].prefill_tokens, s[2].decode_seqs),
        (1, 30, 0)
    );
    assert_eq!((s[3].prefill_seqs, s[3].decode_seqs), (0, 3));
}

#[test]
fn chunked_fills_a_token_budget() {
    let s = steps(
        Batching::Chunked { chunk_tokens: 16 },
        &[(10, 5), (10, 5)],
        &[(30, 2)],
        2,
    );
    // Step 0: 16 tokens of prompts (10 + 6); step 1: 1 decode + the last 4 prompt tokens.
    assert_eq!(
        (s[0].prefill_tokens, s[0].prefill_seqs, s[0].decode_seqs),
        (16, 2, 0)
    );
    assert_eq!(
        (s[1].prefill_tokens, s[1].prefill_seqs, s[1].decode_seqs),
        (4, 1, 1)
    );
    for sh in &s {
        assert!(sh.prefill_tokens + sh.decode_seqs as u64 <= 16, "{sh:?}");
    }
    // The late 30-token prompt is spread over several steps next to the decodes.
    let chunks = s
        .iter()
        .skip(2)
        .filter(|sh| sh.prefill_tokens > 0 && sh.decode_seqs > 0)
        .count();
    assert!(chunks >= 2, "{s:?}");
}

#[test]
fn chunked_admits_only_while_the_step_has_budget_left() {
    // As the simulated engine (docs/batching.md): a budget of 8 and prompts of 10 tokens.
    let cfg = EngineConfig {
        batching: Batching::Chunked { chunk_tokens: 8 },
        ..EngineConfig::tiny()
    };
    let mut e = Engine::new(cfg).unwrap();
    for id in 0..3 {
        e.submit(Request {
            id,
            prompt: vec![1; 10],
            max_tokens: 3,
        })
        .unwrap();
    }
    let s0 = e.step().unwrap().unwrap().shape;
    assert_eq!((s0.prefill_tokens, s0.prefill_seqs), (8, 1));
    assert_eq!((e.running(), e.waiting()), (1, 2), "the budget is spent");
    // Step 1: the first prompt's last 2 tokens leave 6 for the second.
    let s1 = e.step().unwrap().unwrap().shape;
    assert_eq!((s1.prefill_tokens, s1.prefill_seqs), (8, 2));
    assert_eq!((e.running(), e.waiting()), (2, 1));
}

#[test]
fn probe_times_a_synthetic_batch_and_leaves_the_engine_idle() {
    let mut e = Engine::new(EngineConfig::tiny()).unwrap();
    let d = e.probe(4, 100, 32, 1).unwrap();
    assert!(d.wall.as_nanos() > 0);
    // The process's CPU time: nothing else runs in it, so it cannot exceed the wall time by
    // more than the other threads could run (the engine's threads plus this one).
    assert!(d.cpu.as_nanos() > 0);
    let threads = EngineConfig::tiny().threads + 1;
    assert!(
        d.cpu <= d.wall * threads + std::time::Duration::from_millis(1),
        "{d:?}"
    );
    assert!(e.is_idle());
    assert!(e.probe(8, 100, 32, 1).is_err(), "9 sequences > max_batch");
    assert!(e.probe(1, 600, 0, 0).is_err(), "context beyond max_seq_len");
    // Prompt tokens split over several sequences; each needs a token, all count to max_batch.
    e.probe(2, 10, 30, 4).unwrap();
    assert!(e.is_idle());
    assert!(e.probe(0, 0, 3, 4).is_err(), "4 prompts of 3 tokens");
    assert!(e.probe(5, 10, 30, 4).is_err(), "9 sequences > max_batch");
    // CPU time grows with the work done.
    let t0 = perllm_engine::cpu_time();
    e.probe(8, 100, 0, 0).unwrap();
    assert!(perllm_engine::cpu_time() > t0);
}

#[test]
fn cancel_frees_the_slot() {
    let cfg = EngineConfig {
        max_batch: 1,
        ..EngineConfig::tiny()
    };
    let mut e = Engine::new(cfg).unwrap();
    e.submit(Request {
        id: 1,
        prompt: vec![1; 4],
        max_tokens: 100,
    })
    .unwrap();
    e.submit(Request {
        id: 2,
        prompt: vec![1; 4],
        max_tokens: 2,
    })
    .unwrap();
    e.step().unwrap();
    assert!(e.cancel(1));
    assert!(!e.cancel(1));
    let s = e.step().unwrap().unwrap();
    assert_eq!(s.events[0].id, 2);
}
