//! Hostile study sizes and shard specs (issue 21, items 4 and 5): validated before anything runs,
//! no panic, no allocation that grows with a number the user typed rather than with the runs.

use crate::{Out, paper, perllm, perllm_cmd, root, s, tmp, words};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// A compare of 1 ms of the paper scenario (no request completes; each run takes a few ms), with
/// the arguments `extra` (split at white space).
fn tiny(extra: &str) -> Out {
    perllm_cmd(&format!(
        "compare examples/paper.perllm --set scenario.duration=1ms --policies least-loaded -q {extra}"
    ))
}

/// Run `perllm` with its address space limited to `limit_kb` (`ulimit -v`): a run that
/// allocates past it aborts (exit 134) instead of exhausting the machine.
pub(crate) fn perllm_limited(args: &[&str], limit_kb: u64) -> Out {
    Out::from(
        Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -v {limit_kb} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_perllm"))
            .args(args)
            .current_dir(root())
            .env("NO_COLOR", "1")
            .output()
            .expect("sh runs"),
    )
}

/// 1 GB of address space: ample for one run at a time, far below what building every run of a
/// 100,000-run grid took (7.7 GB).
const LIMIT_KB: u64 = 1_000_000;

#[test]
fn shard_specs_out_of_range_are_usage_errors() {
    // The grid has 2 runs (one policy, two seeds).
    for (spec, msg) in [
        ("0/3", "K must be in 1..=N"),
        ("4/3", "K must be in 1..=N"),
        ("1/0", "K must be in 1..=N"),
        ("0/0", "K must be in 1..=N"),
        (
            "1/3",
            "splits a grid of 2 runs into 3 shards: use at most 2 shards",
        ),
        ("1/1000000000", "use at most 2 shards"),
        ("1/18446744073709551615", "use at most 2 shards"),
        (
            "18446744073709551615/18446744073709551615",
            "use at most 2 shards",
        ),
        ("1/18446744073709551616", "is not a number"),
        ("-1/2", "is not a number"),
        ("1/2/3", "is not a number"),
        ("1", "is not of the form K/N"),
    ] {
        let out = tiny(&format!("--seeds 1..2 --shard={spec}"));
        assert_eq!(out.code, 2, "--shard {spec}: {}", out.stderr);
        assert!(out.stderr.contains(msg), "--shard {spec}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
    // The largest valid shard count is the grid size.
    tiny("--seeds 1..2 --shard 2/2").ok();
}

/// Write `v` as a part file named `name` in `dir`.
fn write_part(dir: &Path, name: &str, v: &Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string(v).unwrap()).unwrap();
    s(&p).to_string()
}

/// A change to a part file.
type Edit = Box<dyn Fn(&mut Value)>;

#[test]
fn merge_refuses_parts_with_impossible_shard_fields() {
    let dir = tmp();
    let mut parts: Vec<Value> = Vec::new();
    for k in 1..=2 {
        let p = dir.path().join(format!("p{k}.json"));
        tiny(&format!("--seeds 1..3 --shard {k}/2 --out {}", s(&p))).ok();
        parts.push(serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap());
    }
    let merged = dir.path().join("merged.json");
    let merge = |a: &Value, b: &Value| {
        let pa = write_part(dir.path(), "a.json", a);
        let pb = write_part(dir.path(), "b.json", b);
        perllm(&["merge", &pa, &pb, "--out", s(&merged)])
    };
    merge(&parts[0], &parts[1]).ok();
    let big = u64::MAX;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "count 0",
            Box::new(|v| v["shard"]["count"] = 0.into()),
            "K must be in 1..=N",
        ),
        (
            "index 0",
            Box::new(|v| v["shard"]["index"] = 0.into()),
            "K must be in 1..=N",
        ),
        (
            "index above the count",
            Box::new(|v| v["shard"]["index"] = 3.into()),
            "K must be in 1..=N",
        ),
        (
            "count 2^64 - 1",
            Box::new(move |v| {
                v["shard"]["count"] = big.into();
                v["shard"]["index"] = 1.into();
            }),
            "use at most 3 shards",
        ),
        (
            "count 1e9",
            Box::new(|v| {
                v["shard"]["count"] = 1_000_000_000u64.into();
            }),
            "use at most 3 shards",
        ),
        (
            "a grid of 2^64 - 1 runs in 2^64 - 1 shards",
            Box::new(move |v| {
                v["runs"] = big.into();
                v["shard"]["count"] = big.into();
            }),
            "is not a valid part: it holds run 2 of a 18446744073709551615-run grid",
        ),
        (
            "a row from another shard",
            Box::new(|v| v["rows"][0]["run"] = 1.into()),
            "which is not in shard 1/2",
        ),
        (
            "a row past the grid",
            Box::new(|v| v["rows"][0]["run"] = 1_000_000.into()),
            "holds run 1000000 of a 3-run grid",
        ),
    ];
    for (what, edit, msg) in cases {
        let mut a = parts[0].clone();
        edit(&mut a);
        let out = merge(&a, &parts[1]);
        assert_eq!(out.code, 2, "{what}: {}", out.stderr);
        assert!(out.stderr.contains(msg), "{what}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{what}: {}", out.stderr);
    }
    // Both parts claiming a huge consistent grid: refused without allocating per shard.
    let mut a = parts[0].clone();
    let mut b = parts[1].clone();
    for v in [&mut a, &mut b] {
        v["runs"] = big.into();
        v["shard"]["count"] = big.into();
    }
    // Shard 1 of 2^64 - 1 holds run 0 only.
    for k in ["rows", "details"] {
        a[k].as_array_mut().unwrap().truncate(1);
    }
    let out = merge(&a, &b);
    assert_eq!(out.code, 2, "{}", out.stderr);
    out.stderr_has("shards 3/18446744073709551615, 4/18446744073709551615");
    out.stderr_has("and 18446744073709551603 more are missing");
}

#[test]
fn a_hundred_thousand_seeds_start_at_once_and_stop_at_the_first_failure() {
    // Every run fails on row 3 of the trace; validation (which does not read the trace) passes.
    let dir = tmp();
    std::fs::create_dir(dir.path().join("traces")).unwrap();
    std::fs::copy(
        root().join("examples/azure-trace.perllm"),
        dir.path().join("s.perllm"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("traces/azure-llm-2023-conv-10min.csv"),
        "TIMESTAMP,ContextTokens,GeneratedTokens\n\
         2023-11-16 18:15:46.6805900,374,44\n\
         2023-11-16 18:15:47.6805900,x,44\n",
    )
    .unwrap();
    let scenario = dir.path().join("s.perllm");
    let out = perllm_limited(
        &words(&format!(
            "compare {} --policies perllm --seeds 1..100000 --jobs 1 -q",
            s(&scenario)
        )),
        LIMIT_KB,
    );
    // Before: every run's world and policy were built first (7.7 GB, then an abort).
    assert_eq!(out.code, 1, "{}", out.stderr);
    out.stderr_has("row 3: prompt tokens: `x`");
}

#[test]
fn a_ten_thousand_value_sweep_shard_loads_only_its_points() {
    let values: Vec<String> = (0..10_000)
        .map(|i| format!("{}/s", 1.0 + i as f64 / 10_000.0))
        .collect();
    let set = format!("workload.arrivals.rate={}", values.join(","));
    let out = perllm_limited(
        &words(&format!(
            "sweep examples/paper.perllm --set scenario.duration=1ms --set {set} \
             --policies least-loaded --seeds 1 --shard 1/5000 -f csv -q"
        )),
        LIMIT_KB,
    );
    // Points 0 and 5000 (runs 0 and 5000), with their rates.
    let text = out.ok();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.contains("\n0,0,1ms,1/s,") && text.contains("\n5000,5000,1ms,1.5/s,"),
        "{text}"
    );
}

#[test]
fn grids_too_large_for_one_process_name_the_shards_to_use() {
    let values: Vec<String> = (0..10_000).map(|i| format!("{}/s", i + 1)).collect();
    let set = format!("workload.arrivals.rate={}", values.join(","));
    let out = perllm_limited(
        &words(&format!(
            "sweep examples/paper.perllm --set {set} --policies least-loaded,random --seeds 1..1000"
        )),
        LIMIT_KB,
    );
    out.fails(2, &["would run 20000000 runs in one process, more than the 1000000 whose results one process keeps; split it with `--shard K/20`"]);
    // A grid past 2^64 runs: five settings of 2^13 values.
    let v: Vec<String> = (0..8192).map(|i| format!("{}", i + 1)).collect();
    let v = v.join(",");
    let keys = [
        "server.cloud.max_batch",
        "workload.max_requests",
        "scenario.seed",
        "workload.max_prompt_tokens",
        "workload.max_output_tokens",
    ];
    let sets: Vec<String> = keys.iter().map(|k| format!("{k}={v}")).collect();
    let mut args = vec!["sweep", "examples/paper.perllm"];
    for s in &sets {
        args.extend(["--set", s.as_str()]);
    }
    let out = perllm_limited(&args, LIMIT_KB);
    assert_eq!(out.code, 2, "{}", out.stderr);
    out.stderr_has("more than 2^64 runs");
    // More than a million seeds in one list, even split into ranges.
    let out = tiny("--seeds 0..999999,1000000..1999999");
    assert_eq!(out.code, 2, "{}", out.stderr);
    out.stderr_has("more than a million seeds");
}

#[test]
fn jobs_beyond_what_helps_are_capped_with_a_note() {
    let out = perllm_limited(
        &words(
            "compare examples/paper.perllm --set scenario.duration=1ms --policies least-loaded \
             --seeds 1..3 --jobs 100000 -f csv",
        ),
        LIMIT_KB,
    );
    assert_eq!(out.stdout.lines().count(), 4, "{}", out.stderr);
    out.stderr_has("note: `--jobs 100000` capped at 3 (the number of runs to do)");
}

#[test]
fn repeated_keys_and_out_of_range_seeds_are_errors() {
    // `--set` and `--param` keys given twice name both values (the last one won silently).
    let out = perllm_cmd(
        "run examples/paper.perllm --set scenario.duration=1ms --set scenario.duration=2ms",
    );
    out.fails(2, &["`--set scenario.duration` is given twice (`scenario.duration=1ms` and `scenario.duration=2ms`)"]);
    let out = perllm_cmd(
        "run examples/paper.perllm --policy epsilon-greedy --param epsilon=0.1 --param epsilon=0.2",
    );
    out.fails(2, &["`--param epsilon` is given twice"]);
    let out = tiny("--set scenario.seed=1 --set scenario.seed=2");
    out.fails(2, &["is given twice"]);
    // seed = 2^64 was clamped to 2^64 - 1; integers above 2^53 lost digits.
    let out = perllm_cmd("run examples/paper.perllm --set scenario.seed=18446744073709551616");
    out.fails(2, &["too large (the limit is 18446744073709551615)"]);
    for seed in ["18446744073709551615", "9007199254740993"] {
        let out = paper(
            "run",
            "scenario.duration=1ms",
            &["--set", &format!("scenario.seed={seed}"), "-f", "json"],
        );
        let v: Value = serde_json::from_str(out.ok()).unwrap();
        assert_eq!(v["seed"].to_string(), seed);
    }
}
