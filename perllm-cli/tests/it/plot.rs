//! `perllm plot`: valid SVG with the expected series, and an HTML page with them inline.

use crate::{SHORT, perllm, s, tmp};
use quick_xml::Reader;
use quick_xml::events::Event;
use std::path::Path;

/// Parse an SVG document fully; return the text of its `<text>` elements.
fn svg_texts(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut r = Reader::from_str(&text);
    let mut out = Vec::new();
    let mut in_text = false;
    let mut depth = 0i32;
    let mut root = None;
    loop {
        match r.read_event() {
            Ok(Event::Start(e)) => {
                depth += 1;
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                root.get_or_insert(name.clone());
                in_text = name == "text";
            }
            Ok(Event::End(_)) => {
                depth -= 1;
                in_text = false;
            }
            Ok(Event::Text(t)) if in_text => {
                let raw = t.decode().unwrap();
                out.push(
                    quick_xml::escape::unescape(&raw)
                        .unwrap()
                        .trim()
                        .to_string(),
                );
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("{} is not well-formed XML: {e}", path.display()),
        }
    }
    assert_eq!(depth, 0, "{}: unbalanced elements", path.display());
    assert_eq!(
        root.as_deref(),
        Some("svg"),
        "{}: root is not <svg>",
        path.display()
    );
    out
}

#[test]
fn plots_have_the_expected_series() {
    let dir = tmp();
    let res = dir.path().join("sweep.json");
    perllm(&[
        "sweep",
        "examples/paper.perllm",
        "--set",
        SHORT,
        "--set",
        "workload.arrivals.rate=2/s,5/s",
        "--policies",
        "perllm,oracle,least-loaded",
        "--seeds",
        "1..2",
        "--out",
        s(&res),
        "-q",
    ])
    .ok();
    let plots = dir.path().join("plots");
    let out = perllm(&["plot", s(&res), "--out", s(&plots)]);
    out.ok();
    assert!(out.stderr.contains("index.html"), "{}", out.stderr);
    let policies = ["perllm", "oracle", "least-loaded"];
    for chart in ["goodput", "attainment", "latency-cdf", "regret"] {
        let texts = svg_texts(&plots.join(format!("{chart}.svg")));
        for p in policies {
            if chart == "regret" && p != "perllm" {
                continue;
            }
            assert!(
                texts.iter().any(|t| t == p),
                "{chart}.svg has no series `{p}`: {texts:?}"
            );
        }
    }
    let texts = svg_texts(&plots.join("energy.svg"));
    for layer in ["transmission", "inference", "idle"] {
        assert!(
            texts.iter().any(|t| t == layer),
            "energy.svg has no `{layer}`: {texts:?}"
        );
    }
    for p in policies {
        assert!(
            texts.iter().any(|t| t == p),
            "energy.svg has no bar label `{p}`"
        );
        let shares = svg_texts(&plots.join(format!("shares-{p}.svg")));
        for server in ["edge1", "edge5", "cloud"] {
            assert!(
                shares.iter().any(|t| t == server),
                "shares-{p}.svg has no `{server}`"
            );
        }
    }
    let html = std::fs::read_to_string(plots.join("index.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(html.matches("<svg").count(), 5 + policies.len());
    assert!(html.contains("<table>") && html.contains("workload.arrivals.rate"));
    assert!(!html.contains("src=\"http"), "the page is self-contained");
}

#[test]
fn plot_of_a_single_run() {
    let dir = tmp();
    let run = dir.path().join("run");
    perllm(&[
        "run",
        "examples/paper.perllm",
        "--set",
        SHORT,
        "--policy",
        "oracle",
        "--out",
        s(&run),
        "-q",
    ])
    .ok();
    let plots = dir.path().join("plots");
    perllm(&[
        "plot",
        s(&run.join("results.json")),
        "--out",
        s(&plots),
        "-q",
    ])
    .ok();
    let texts = svg_texts(&plots.join("goodput.svg"));
    assert!(texts.iter().any(|t| t == "oracle"));
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    let has_regret = !results["details"][0]["regret"]
        .as_array()
        .unwrap()
        .is_empty();
    assert_eq!(plots.join("regret.svg").exists(), has_regret);
}
