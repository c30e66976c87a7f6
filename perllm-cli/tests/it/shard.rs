//! `--shard K/N` and `perllm merge`: the merged parts are byte-identical to one machine's run.

use crate::{SHORT, perllm, s, tmp};

fn sweep(extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "sweep",
        "examples/paper.perllm",
        "--set",
        SHORT,
        "--set",
        "workload.arrivals.rate=2/s,5/s",
        "--policies",
        "perllm,least-loaded",
        "--seeds",
        "1..2",
        "-q",
    ]
    .iter()
    .map(|x| x.to_string())
    .collect();
    args.extend(extra.iter().map(|x| x.to_string()));
    args
}

fn run(args: &[String]) -> crate::Out {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    perllm(&a)
}

#[test]
fn merged_shards_equal_the_single_machine_run() {
    let dir = tmp();
    let full = dir.path().join("full.json");
    let full_csv = dir.path().join("full.csv");
    run(&sweep(&["--out", s(&full), "--csv", s(&full_csv)])).ok();
    let mut parts = Vec::new();
    for k in 1..=3 {
        let p = dir.path().join(format!("part{k}.json"));
        // Different --jobs per shard: it must not matter either.
        let jobs = k.to_string();
        run(&sweep(&[
            "--shard",
            &format!("{k}/3"),
            "--jobs",
            &jobs,
            "--out",
            s(&p),
        ]))
        .ok();
        parts.push(p);
    }
    let merged = dir.path().join("merged.json");
    let merged_csv = dir.path().join("merged.csv");
    // Parts in any order.
    let out = perllm(&[
        "merge",
        s(&parts[2]),
        s(&parts[0]),
        s(&parts[1]),
        "--out",
        s(&merged),
        "--csv",
        s(&merged_csv),
    ]);
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
    let out = perllm(&["merge", s(&parts[0]), s(&parts[1]), "--out", s(&merged)]);
    assert_eq!(out.code, 2);
    out.stderr_has("shard 3/3 is missing");
    let out = perllm(&[
        "merge",
        s(&parts[0]),
        s(&parts[1]),
        s(&parts[1]),
        "--out",
        s(&merged),
    ]);
    assert_eq!(out.code, 2);
    out.stderr_has("are both shard 2/3");
    let out = perllm(&["merge", s(&full), "--out", s(&merged)]);
    assert_eq!(out.code, 2);
    out.stderr_has("is not a shard");
    let other = dir.path().join("other.json");
    let mut o = sweep(&["--shard", "3/3", "--out", s(&other)]);
    assert_eq!(o[8], "--seeds");
    o[9] = "1..3".into(); // other seeds: another study
    run(&o).ok();
    let out = perllm(&[
        "merge",
        s(&parts[0]),
        s(&parts[1]),
        s(&other),
        "--out",
        s(&merged),
    ]);
    assert_eq!(out.code, 2);
    // One subject, one verb, and the values that differ.
    out.stderr_has(&format!(
        "their seeds differ (`{}`: 1, 2; `{}`: 1, 2, 3)",
        s(&parts[0]),
        s(&other)
    ));
}
