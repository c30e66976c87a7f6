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
        "perllm,true-costs,least-loaded",
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
    let policies = ["perllm", "true-costs", "least-loaded"];
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
        "true-costs",
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
    assert!(texts.iter().any(|t| t == "true-costs"));
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    let has_regret = !results["details"][0]["regret"]
        .as_array()
        .unwrap()
        .is_empty();
    assert_eq!(plots.join("regret.svg").exists(), has_regret);
}

/// A headless Chromium on PATH, if any.
fn chromium() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// The HTML page loads in a headless browser: the browser's DOM holds every chart and the
/// summary table, and the console reports no error. Needs Chromium: `.ci/run` installs Debian's
/// package and sets `PERLLM_REQUIRE_CHROMIUM=1` when that worked; elsewhere the test says it is
/// skipped unless that variable demands it.
#[test]
fn html_page_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("PERLLM_REQUIRE_CHROMIUM").is_none(),
            "PERLLM_REQUIRE_CHROMIUM is set but no chromium is on PATH"
        );
        eprintln!("skipped: no chromium on PATH (install Debian's `chromium` to run this test)");
        return;
    };
    let dir = tmp();
    let run = dir.path().join("run");
    perllm(&[
        "run",
        "examples/paper.perllm",
        "--set",
        SHORT,
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
    let page = plots.join("index.html");
    let profile = dir.path().join("profile");
    let out = std::process::Command::new("timeout")
        .arg("120")
        .arg(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--enable-logging=stderr", "--v=0", "--dump-dom"])
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "chromium failed ({:?}):\n{log}",
        out.status
    );
    let figures = std::fs::read_dir(&plots)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "svg")
        })
        .count();
    assert!(figures >= 5, "{figures} charts");
    assert_eq!(
        dom.matches("<svg").count(),
        figures,
        "every chart is in the browser's DOM"
    );
    assert!(
        dom.contains("<table>") && dom.contains("Goodput vs offered load"),
        "{dom}"
    );
    for bad in ["Uncaught", ":CONSOLE", "Failed to load resource"] {
        assert!(!log.contains(bad), "the browser reported `{bad}`:\n{log}");
    }
}
