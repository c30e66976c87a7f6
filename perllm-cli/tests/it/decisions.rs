//! The decision log's size is bounded (issue 21, item 10: an 800 KB trace wrote a 3.2 GB log,
//! one line per deferred request per slot): by default a request's first deferral and its final
//! decision, repeated deferrals counted in `deferred_slots`; every deferral on request; a byte
//! limit with a `truncated` line and a warning.

use crate::{SHORT, perllm, s, tmp};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

fn log(args: &[&str], path: &Path) -> (Vec<Value>, String) {
    let mut a = vec![
        "run",
        "examples/paper.perllm",
        "--set",
        SHORT,
        "--decisions",
        s(path),
    ];
    a.extend(args);
    let out = perllm(&a);
    out.ok();
    let lines = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    (lines, out.stderr)
}

#[test]
fn repeated_deferrals_are_folded_unless_asked_for() {
    let dir = tmp();
    let (folded, stderr) = log(&[], &dir.path().join("folded.jsonl"));
    let (every, _) = log(
        &["--decisions-every-defer"],
        &dir.path().join("every.jsonl"),
    );
    // Per request in the full log: its deferral lines and its final decision.
    let mut defers: BTreeMap<u64, u64> = BTreeMap::new();
    let mut finals: BTreeMap<u64, &Value> = BTreeMap::new();
    for l in &every {
        let id = l["request"].as_u64().unwrap();
        if l["decision"] == "defer" {
            *defers.entry(id).or_default() += 1;
            assert!(l["deferred_slots"].is_null());
        } else {
            assert!(finals.insert(id, l).is_none(), "one final decision");
            assert_eq!(
                l["deferred_slots"].as_u64().unwrap(),
                defers.get(&id).copied().unwrap_or(0),
                "{l}"
            );
        }
    }
    let repeated: u64 = defers.values().map(|n| n - 1).sum();
    assert!(repeated > 100, "the scenario defers requests repeatedly");
    // Folded: the same final lines, one deferral line per deferred request.
    let mut per_request: BTreeMap<u64, u64> = BTreeMap::new();
    for l in &folded {
        let id = l["request"].as_u64().unwrap();
        *per_request.entry(id).or_default() += 1;
        if l["decision"] != "defer" {
            assert_eq!(&l, finals.get(&id).unwrap());
        }
    }
    assert!(per_request.values().all(|&n| n <= 2));
    assert_eq!(folded.len() as u64, every.len() as u64 - repeated);
    assert!(
        stderr.contains(&format!("{} lines, ", folded.len()))
            && stderr.contains(&format!(
                "; {repeated} repeated deferrals counted in `deferred_slots`"
            )),
        "{stderr}"
    );
}

#[test]
fn the_log_stops_at_its_limit() {
    let dir = tmp();
    let p = dir.path().join("d.jsonl");
    let (lines, stderr) = log(&["--decisions-limit", "20KB"], &p);
    let bytes = std::fs::metadata(&p).unwrap().len();
    let last = lines.last().unwrap();
    assert_eq!(last["truncated"], true);
    assert_eq!(last["limit_bytes"], 20_000);
    assert_eq!(
        last["lines_before"].as_u64().unwrap(),
        lines.len() as u64 - 1
    );
    assert!(bytes <= 20_000 + 300, "{bytes}");
    assert!(
        lines[..lines.len() - 1]
            .iter()
            .all(|l| l.get("truncated").is_none())
    );
    assert!(
        stderr.contains("reached its 19.5 KiB limit") && stderr.contains("--decisions-limit"),
        "{stderr}"
    );
    for bad in ["0", "-1MB", "12 parsecs", "lots"] {
        let arg = format!("--decisions-limit={bad}");
        let out = perllm(&["run", "examples/paper.perllm", &arg]);
        assert_eq!(out.code, 2, "{bad}: {}", out.stderr);
        out.stderr_has("--decisions-limit");
    }
}
