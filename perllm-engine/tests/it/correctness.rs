//! Shapes, KV-cache reuse against recomputation, batched against alone, config errors.

use perllm_engine::{Batching, Engine, EngineConfig, Request};
use std::collections::HashMap;

fn prompt(n: u32, salt: u32) -> Vec<u32> {
    (0..n).map(|j| (j * 37 + salt * 101 + 3) % 256).collect()
}

/// Run requests to completion; the tokens each produced, in order.
fn run(e: &mut Engine, reqs: &[Request]) -> HashMap<u64, Vec<u32>> {
    for r in reqs {
        e.submit(r.clone()).unwrap();
    }
    let mut out: HashMap<u64, Vec<u32>> = HashMap::new();
    let mut steps = 0;
    while let Some(s) = e.step().unwrap() {
        steps += 1;
        assert!(steps < 10_000, "the engine does not finish");
        for ev in s.events {
            let v = out.entry(ev.id).or_default();
            assert_eq!(ev.index as usize, v.len(), "token indices are consecutive");
            v.push(ev.token);
        }
    }
    out
}

#[test]
fn every_request_gets_exactly_its_tokens() {
    let mut e = Engine::new(EngineConfig::tiny()).unwrap();
    let reqs: Vec<Request> = (0..5)
        .map(|i| Request {
            id: i,
            prompt: prompt(3 + 4 * i as u32, i as u32),
            max_tokens: 1 + 3 * i as u32,
        })
        .collect();
    let out = run(&mut e, &reqs);
    for r in &reqs {
        assert_eq!(out[&r.id].len(), r.max_tokens as usize, "request {}", r.id);
        assert!(out[&r.id].iter().all(|&t| t < 256));
    }
    assert!(e.is_idle());
}

#[test]
fn kv_cache_reuse_gives_the_logits_of_recomputation() {
    let mut e = Engine::new(EngineConfig::tiny()).unwrap();
    let toks = prompt(20, 1);
    // 12 tokens in one pass, then 8 one at a time through the cache...
    let cached = e.logits_after(&toks[..12], &toks[12..]).unwrap();
    // ... against all 20 recomputed in one pass.
    let full = e.logits_after(&toks, &[]).unwrap();
    assert_eq!(cached.len(), 256);
    let scale = full.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(scale > 0.0);
    let worst = cached
        .iter()
        .zip(&full)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        worst <= 1e-4 * scale.max(1.0),
        "max |diff| {worst} (scale {scale})"
    );
    // And a different prefix gives different logits (the test can fail).
    let other = e.logits_after(&prompt(20, 2), &[]).unwrap();
    assert!(other.iter().zip(&full).any(|(a, b)| (a - b).abs() > 1e-3));
}

#[test]
fn a_sequence_in_a_batch_generates_what_it_generates_alone() {
    let reqs: Vec<Request> = (0..4)
        .map(|i| Request {
            id: i,
            prompt: prompt(5 + 7 * i as u32, 10 + i as u32),
            max_tokens: 6,
        })
        .collect();
    let mut alone = HashMap::new();
    for r in &reqs {
        let mut e = Engine::new(EngineConfig::tiny()).unwrap();
        alone.extend(run(&mut e, std::slice::from_ref(r)));
    }
    for batching in [
        Batching::Mixed,
        Batching::PrefillFirst,
        Batching::Chunked { chunk_tokens: 8 },
    ] {
        let cfg = EngineConfig {
            batching,
            ..EngineConfig::tiny()
        };
        let mut e = Engine::new(cfg).unwrap();
        let together = run(&mut e, &reqs);
        assert_eq!(together, alone, "{batching:?}");
    }
}

/// A change that makes a config invalid, and the field its error must name.
type BadConfig = (fn(&mut EngineConfig), &'static str);

#[test]
fn bad_configs_fail_naming_the_field() {
    let cases: Vec<BadConfig> = vec![
        (|c| c.hidden = 66, "hidden"),
        (|c| c.layers = 0, "layers"),
        (|c| c.kv_heads = 3, "kv_heads"),
        (|c| c.heads = 64, "heads"),
        (
            |c| c.batching = Batching::Chunked { chunk_tokens: 7 },
            "chunk_tokens",
        ),
        // A KV cache of 2^20 x 2^20 tokens: refused before anything is allocated.
        (
            |c| {
                c.max_batch = 1 << 20;
                c.max_seq_len = 1 << 20;
            },
            "max_batch",
        ),
    ];
    for (set, field) in cases {
        let mut cfg = EngineConfig::tiny();
        set(&mut cfg);
        let e = cfg.validate(Some(64 << 30)).unwrap_err();
        assert_eq!(e.field, field, "{e}");
        assert!(e.to_string().contains(&format!("`{field}`")), "{e}");
        assert!(Engine::new(cfg).is_err());
    }
}

#[test]
fn bad_requests_are_refused() {
    let mut e = Engine::new(EngineConfig::tiny()).unwrap();
    // An empty prompt, no output token, a token outside the vocabulary, more than max_seq_len.
    let bad = [
        (1, vec![], 1),
        (2, vec![1], 0),
        (3, vec![300], 1),
        (4, vec![1; 500], 100),
    ];
    for (id, prompt, max_tokens) in bad {
        let r = Request {
            id,
            prompt,
            max_tokens,
        };
        let msg = e.submit(r).unwrap_err().to_string();
        assert!(msg.starts_with(&format!("request {id}:")), "{msg}");
    }
    assert!(e.is_idle());
}

#[test]
fn param_count_matches_the_shapes() {
    let c = EngineConfig::tiny();
    // embed 256x64 + head 64x256 + 2 x (q 64x64 + k,v 64x32 + o 64x64 + mlp 3x64x128 + 2 norms) + norm
    let block = 64 * 64 * 2 + 64 * 32 * 2 + 3 * 64 * 128 + 2 * 64;
    assert_eq!(c.params(), 2 * 256 * 64 + 2 * block + 64);
    assert_eq!(c.kv_bytes_per_token(), 2 * 2 * 2 * 16 * 4);
    let s = EngineConfig::small();
    assert!(
        s.params() > 30_000_000 && s.params() < 50_000_000,
        "{}",
        s.params()
    );
}
