//! `perllm plot`: valid SVG with the expected series, and an HTML page with them inline.

use crate::{SHORT, paper_cmd, perllm, run_ok, s, tmp};
use quick_xml::Reader;
use quick_xml::events::Event;
use std::path::{Path, PathBuf};

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

/// An SVG element: its name, attributes and (for `<text>`) its text.
struct El {
    name: String,
    attrs: std::collections::BTreeMap<String, String>,
    text: String,
}

/// Every element of an SVG document, in document order.
fn svg_elements(path: &Path) -> Vec<El> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut r = Reader::from_str(&text);
    let mut out: Vec<El> = Vec::new();
    loop {
        match r.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                let attrs = e
                    .attributes()
                    .map(|a| {
                        let a = a.unwrap();
                        (
                            String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                            a.unescape_value().unwrap().into_owned(),
                        )
                    })
                    .collect();
                out.push(El {
                    name: String::from_utf8(e.name().as_ref().to_vec()).unwrap(),
                    attrs,
                    text: String::new(),
                });
            }
            Ok(Event::Text(t)) => {
                if let Some(last) = out.last_mut().filter(|e| e.name == "text") {
                    last.text.push_str(t.decode().unwrap().trim());
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }
    out
}

fn num(e: &El, k: &str) -> f64 {
    e.attrs[k].parse().unwrap()
}

/// The largest x of the coloured data lines (polylines not drawn in black: axes and ticks are).
fn data_max_x(els: &[El]) -> f64 {
    els.iter()
        .filter(|e| e.name == "polyline" && e.attrs.get("stroke").is_some_and(|c| c != "#000000"))
        .flat_map(|e| {
            e.attrs["points"]
                .split_whitespace()
                .map(|p| p.split(',').next().unwrap().parse::<f64>().unwrap())
                .collect::<Vec<_>>()
        })
        .fold(f64::MIN, f64::max)
}

/// `perllm COMMAND examples/paper-7b.perllm --set SHORT EXTRA.. --policies perllm,cloud-only,greedy
/// --seeds 1..2` into `dir`, then `perllm plot` of its results: the folder of the plots.
fn plotted(dir: &Path, command: &str, extra: &[&str]) -> PathBuf {
    let results = dir.join(format!("{command}.json"));
    let mut args = vec![command, "examples/paper-7b.perllm", "--set", SHORT];
    args.extend_from_slice(extra);
    args.extend(["--policies", "perllm,cloud-only,greedy", "--seeds", "1..2"]);
    args.extend(["--out", s(&results), "-q"]);
    perllm(&args).ok();
    let plots = dir.join(format!("{command}-plots"));
    perllm(&["plot", s(&results), "--out", s(&plots), "-q"]).ok();
    plots
}

/// Issue 17: legends beside the plot, never over the data; the latency CDF on a log time axis;
/// a load sweep with error bars; one load (`compare`) as bars with error bars.
#[test]
fn chart_layout_legends_log_axis_and_bars() {
    let dir = tmp();
    let plots = plotted(
        dir.path(),
        "sweep",
        &["--set", "workload.arrivals.rate=2/s,8/s"],
    );
    for chart in ["goodput", "attainment", "latency-cdf"] {
        let els = svg_elements(&plots.join(format!("{chart}.svg")));
        let right = data_max_x(&els);
        assert!(right > 0.0, "{chart}: no data lines");
        for p in ["perllm", "cloud-only", "greedy"] {
            let label = els
                .iter()
                .find(|e| e.name == "text" && e.text == p)
                .unwrap_or_else(|| panic!("{chart}: no legend entry {p}"));
            assert!(
                num(label, "x") > right,
                "{chart}: legend `{p}` at x={} is over the data (which reaches x={right})",
                num(label, "x")
            );
        }
    }
    // The CDF's time axis is logarithmic: decade labels, and it says so.
    let texts: Vec<String> = svg_texts(&plots.join("latency-cdf.svg"));
    assert!(
        texts.iter().any(|t| t == "processing time D (log scale)"),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t == "1.00 s") && texts.iter().any(|t| t == "10.0 s"),
        "decade labels: {texts:?}"
    );
    // Error bars: each sweep point of a 2-seed mean gets a whisker (a vertical coloured path).
    let els = svg_elements(&plots.join("goodput.svg"));
    let whiskers = els
        .iter()
        .filter(|e| e.name == "polyline" && e.attrs.get("stroke-width").is_some_and(|w| w == "1"))
        .filter(|e| e.attrs.get("stroke").is_some_and(|c| c != "#000000"))
        .filter(|e| {
            let xs: Vec<&str> = e.attrs["points"]
                .split_whitespace()
                .map(|p| p.split(',').next().unwrap())
                .collect();
            xs.len() == 2 && xs[0] == xs[1]
        })
        .count();
    assert!(whiskers >= 4, "{whiskers} whiskers");

    // One load: bars (one filled rectangle per policy at least), whiskers, no lines over load.
    let plots = plotted(dir.path(), "compare", &[]);
    for chart in ["goodput", "attainment"] {
        let els = svg_elements(&plots.join(format!("{chart}.svg")));
        let bars = els
            .iter()
            .filter(|e| e.name == "rect" && e.attrs.get("fill").is_some_and(|f| f != "#FFFFFF"))
            .count();
        assert!(bars >= 3, "{chart}: {bars} bars");
        assert_eq!(
            data_max_x(&els),
            f64::MIN,
            "{chart}: a line chart of one load"
        );
        let texts: Vec<&str> = els
            .iter()
            .filter(|e| e.name == "text")
            .map(|e| e.text.as_str())
            .collect();
        for p in ["perllm", "cloud-only", "greedy"] {
            assert!(texts.contains(&p), "{chart}: no bar `{p}`: {texts:?}");
        }
    }
}

#[test]
fn plots_have_the_expected_series() {
    let dir = tmp();
    let res = dir.path().join("sweep.json");
    paper_cmd(
        "sweep",
        SHORT,
        &format!(
            "--set workload.arrivals.rate=2/s,5/s --policies perllm,true-costs,least-loaded \
             --seeds 1..2 --out {} -q",
            s(&res)
        ),
    )
    .ok();
    let plots = dir.path().join("plots");
    let out = perllm(&["plot", s(&res), "--out", s(&plots)]);
    out.ok();
    out.stderr_has("index.html");
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
    paper_cmd(
        "run",
        SHORT,
        &format!("--policy true-costs --out {} -q", s(&run)),
    )
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
    let html = std::fs::read_to_string(plots.join("index.html")).unwrap();
    let table =
        &html[html.find("<h2>Summary</h2>").unwrap()..html.find("<h2>Policies</h2>").unwrap()];
    assert!(!table.contains("± "), "one seed has no spread: {table}");
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
/// summary table, the console reports no error, and a screenshot of the page is taken (kept in
/// `target/tmp/perllm-page.png` for a human to look at). Needs Chromium: without one on `PATH` when
/// the tests are built, the test is compiled as ignored and `cargo test` says so (build.rs);
/// `.ci/run` installs Debian's package and sets `PERLLM_REQUIRE_CHROMIUM=1`, which makes it run
/// (and fail if the browser is missing).
#[test]
#[cfg_attr(
    not(perllm_chromium),
    ignore = "no chromium on PATH when the tests were built: `apt-get install chromium` (as .ci/run does)"
)]
fn html_page_renders_in_headless_chromium() {
    let browser = chromium().unwrap_or_else(|| {
        panic!(
            "no chromium on PATH (PERLLM_REQUIRE_CHROMIUM is set, or it was on PATH when this \
             test was built): install Debian's `chromium`"
        )
    });
    let dir = tmp();
    let results = dir.path().join("compare.json");
    perllm(&[
        "compare",
        "examples/paper-7b.perllm",
        "--set",
        SHORT,
        "--policies",
        "perllm,cloud-only,greedy,least-loaded",
        "--seeds",
        "1..2",
        "--out",
        s(&results),
        "-q",
    ])
    .ok();
    let plots = dir.path().join("plots");
    perllm(&["plot", s(&results), "--out", s(&plots), "-q"]).ok();
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
        dom.contains("<table>") && dom.contains("Deadline attainment"),
        "{dom}"
    );
    for bad in ["Uncaught", ":CONSOLE", "Failed to load resource"] {
        assert!(!log.contains(bad), "the browser reported `{bad}`:\n{log}");
    }
    // A screenshot of the whole page, for the eye.
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("perllm-page.png");
    let _ = std::fs::remove_file(&shot);
    run_ok(
        std::process::Command::new("timeout")
            .arg("120")
            .arg(&browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--hide-scrollbars",
                "--window-size=1100,4200",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--screenshot={}", shot.display()))
            .arg(format!("file://{}", page.display())),
        "chromium screenshot",
    );
    let png = std::fs::read(&shot).expect("the screenshot was written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 50_000,
        "a page of charts, not a blank one: {} bytes",
        png.len()
    );
}

/// Every number of a study's summary and plot details replaced by an extreme value (issue 21:
/// `plot` hung on a results file whose axis range overflowed): each plot ends within the deadline
/// with valid SVG files, for bars (`compare`) and lines (`sweep`).
#[cfg(unix)]
#[test]
fn extreme_values_plot_without_hanging() {
    use serde_json::Value;
    fn walk(v: &mut Value, f: &dyn Fn(f64, usize) -> f64, k: &mut usize) {
        match v {
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, f, k)),
            Value::Object(m) => m.values_mut().for_each(|x| walk(x, f, k)),
            Value::Number(n) if n.is_f64() => {
                *k += 1;
                *v = serde_json::json!(f(n.as_f64().unwrap(), *k));
            }
            _ => {}
        }
    }
    let dir = tmp();
    let compare = dir.path().join("compare.json");
    let sweep = dir.path().join("sweep.json");
    let study = ["--policies", "least-loaded,perllm", "--seeds", "1..2", "-q"];
    let mut a = vec![
        "compare",
        "examples/paper.perllm",
        "--set",
        SHORT,
        "--out",
        s(&compare),
    ];
    a.extend(study);
    perllm(&a).ok();
    let mut a = vec![
        "sweep",
        "examples/paper.perllm",
        "--set",
        SHORT,
        "--set",
        "workload.arrivals.rate=2/s,4/s",
        "--out",
        s(&sweep),
    ];
    a.extend(study);
    perllm(&a).ok();
    type Rewrite<'a> = (&'a str, &'a dyn Fn(f64, usize) -> f64);
    let variants: [Rewrite; 6] = [
        ("max", &|x, _| if x < 0.0 { -f64::MAX } else { f64::MAX }),
        ("alternating", &|_, k| {
            if k % 2 == 0 { f64::MAX } else { -f64::MAX }
        }),
        ("near-1e300", &|x, _| 1e300 * (1.0 + x * 1e-16)),
        ("denormal", &|_, k| if k % 2 == 0 { 5e-324 } else { 0.0 }),
        ("1e200", &|x, _| x * 1e200),
        ("tiny-and-huge", &|_, k| {
            if k % 3 == 0 { 1e-300 } else { 1e300 }
        }),
    ];
    for file in [&compare, &sweep] {
        let base: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        for (name, f) in &variants {
            let mut v = base.clone();
            let mut k = 0;
            walk(&mut v["summary"], *f, &mut k);
            walk(&mut v["details"], *f, &mut k);
            let input = dir.path().join(format!("{name}.json"));
            std::fs::write(&input, v.to_string()).unwrap();
            let out_dir = dir.path().join(format!("plots-{name}"));
            let out = crate::inputs::within(
                &crate::root(),
                &["plot", s(&input), "--out", s(&out_dir), "-q"],
            );
            assert_eq!(out.code, 0, "{name} of {}: {}", file.display(), out.stderr);
            let svgs: Vec<_> = std::fs::read_dir(&out_dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "svg"))
                .collect();
            assert!(svgs.len() >= 4, "{name}");
            for p in svgs {
                svg_texts(&p);
            }
        }
    }
}

/// One results file always gives the same files, byte for byte: plotters' `Histogram` gathered
/// its bars in a `HashMap`, so the bars of `energy.svg` (and the page that embeds it) came out
/// in a different order from run to run.
#[test]
fn plots_are_byte_identical_from_run_to_run() {
    let dir = tmp();
    for command in ["sweep", "compare"] {
        let first = plotted(dir.path(), command, &[]);
        let results = dir.path().join(format!("{command}.json"));
        for k in 0..3 {
            let again = dir.path().join(format!("{command}-again-{k}"));
            perllm(&["plot", s(&results), "--out", s(&again), "-q"]).ok();
            for entry in std::fs::read_dir(&first).unwrap() {
                let name = entry.unwrap().file_name();
                assert!(
                    std::fs::read(first.join(&name)).unwrap()
                        == std::fs::read(again.join(&name)).unwrap(),
                    "{command}: {name:?} differs between two plots of one results file"
                );
            }
        }
    }
}
