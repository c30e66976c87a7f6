//! `--shard K/N` and `perllm merge`: the merged parts are byte-identical to one machine's run.

use crate::{Out, SHORT, perllm_cmd, s, tmp};
use std::path::Path;

/// A sweep of 2 rates x 2 policies over `seeds`, with the arguments `extra`.
fn sweep(seeds: &str, extra: &str) -> Out {
    perllm_cmd(&format!(
        "sweep examples/paper.perllm --set {SHORT} --set workload.arrivals.rate=2/s,5/s \
         --policies perllm,least-loaded --seeds {seeds} -q {extra}"
    ))
}

/// `perllm merge PARTS.. OUT_ARGS`.
fn merge(parts: &[&Path], out_args: &str) -> Out {
    let parts: Vec<&str> = parts.iter().map(|p| s(p)).collect();
    perllm_cmd(&format!("merge {} {out_args}", parts.join(" ")))
}

#[test]
fn merged_shards_equal_the_single_machine_run() {
    let dir = tmp();
    let full = dir.path().join("full.json");
    let full_csv = dir.path().join("full.csv");
    sweep(
        "1..2",
        &format!("--out {} --csv {}", s(&full), s(&full_csv)),
    )
    .ok();
    let mut parts = Vec::new();
    for k in 1..=3 {
        let p = dir.path().join(format!("part{k}.json"));
        // Different --jobs per shard: it must not matter either.
        sweep("1..2", &format!("--shard {k}/3 --jobs {k} --out {}", s(&p))).ok();
        parts.push(p);
    }
    let merged = dir.path().join("merged.json");
    let merged_csv = dir.path().join("merged.csv");
    // Parts in any order.
    let out = merge(
        &[&parts[2], &parts[0], &parts[1]],
        &format!("--out {} --csv {}", s(&merged), s(&merged_csv)),
    );
    out.ok();
    out.stderr_has("merged 3 parts (8 runs)");
    let a = std::fs::read(&full).unwrap();
    let b = std::fs::read(&merged).unwrap();
    assert!(
        a == b,
        "merged results differ from the single-machine results"
    );
    assert_eq!(
        std::fs::read(&full_csv).unwrap(),
        std::fs::read(&merged_csv).unwrap()
    );

    // A shard holds only its runs.
    let p1: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&parts[0]).unwrap()).unwrap();
    let runs: Vec<u64> = p1["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run"].as_u64().unwrap())
        .collect();
    assert_eq!(runs, vec![0, 3, 6]);
    assert_eq!(p1["shard"], serde_json::json!({"index": 1, "count": 3}));

    // Missing, duplicated and foreign parts are refused with exit 2.
    let to_merged = format!("--out {}", s(&merged));
    let out = merge(&[&parts[0], &parts[1]], &to_merged);
    assert_eq!(out.code, 2);
    out.stderr_has("shard 3/3 is missing");
    let out = merge(&[&parts[0], &parts[1], &parts[1]], &to_merged);
    assert_eq!(out.code, 2);
    out.stderr_has("are both shard 2/3");
    let out = merge(&[&full], &to_merged);
    assert_eq!(out.code, 2);
    out.stderr_has("is not a shard");
    let other = dir.path().join("other.json");
    // Other seeds: another study.
    sweep("1..3", &format!("--shard 3/3 --out {}", s(&other))).ok();
    let out = merge(&[&parts[0], &parts[1], &other], &to_merged);
    assert_eq!(out.code, 2);
    // One subject, one verb, and the values that differ.
    out.stderr_has(&format!(
        "their seeds differ (`{}`: 1, 2; `{}`: 1, 2, 3)",
        s(&parts[0]),
        s(&other)
    ));
}
