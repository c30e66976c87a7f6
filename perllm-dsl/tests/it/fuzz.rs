//! A generated-corpus fuzzer on stable: mutated fixtures and shipped examples (`examples/*.perllm`
//! and `examples/paper.toml`), token soup, mutated TOML and random overrides must never panic the
//! loader, every failure must carry an error that renders, and every success must be a scenario
//! perllm-core accepts.
//!
//! Case counts: `PERLLM_FUZZ_CASES` (default 300 per property) for longer runs, e.g.
//! `PERLLM_FUZZ_CASES=20000 cargo test --release -p perllm-dsl --test it fuzz`.

use perllm_dsl::{LoadOptions, SourceKind, load_str_with};
use proptest::prelude::*;
use std::path::{Path, PathBuf};

#[path = "../../../perllm-core/tests/it/mutate.rs"]
mod mutate;
pub(crate) use mutate::Mutation;

pub(crate) fn cases() -> u32 {
    std::env::var("PERLLM_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

pub(crate) fn fixture_dir() -> PathBuf {
    crate::common::crate_dir().join("tests/fixtures")
}

pub(crate) fn seeds(ext: &str) -> Vec<String> {
    let mut out = Vec::new();
    for d in ["valid", "invalid"] {
        let mut files: Vec<_> = std::fs::read_dir(fixture_dir().join(d))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for p in files {
            if p.extension().and_then(|e| e.to_str()) == Some(ext)
                && let Ok(t) = std::fs::read_to_string(&p)
            {
                out.push(t);
            }
        }
    }
    assert!(!out.is_empty());
    out
}

/// The shipped scenarios, `examples/*.perllm` and `examples/*.toml`: (file name, text, kind).
pub(crate) fn shipped() -> Vec<(String, String, SourceKind)> {
    let mut files: Vec<_> = std::fs::read_dir(crate::common::examples_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let out: Vec<_> = files
        .into_iter()
        .filter_map(|p| {
            let kind = SourceKind::from_path(&p)?;
            let name = p.file_name()?.to_str()?.to_string();
            Some((name, std::fs::read_to_string(&p).unwrap(), kind))
        })
        .collect();
    assert!(out.iter().any(|f| f.2 == SourceKind::Toml) && out.len() > 5);
    out
}

const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    "=",
    ":",
    ",",
    ";",
    "\n",
    " ",
    "\"",
    "..",
    "+/-",
    " x ",
    "-",
    "+",
    "*",
    "<=",
    ">=",
    "==",
    "%",
    "/s",
    " ms",
    " s",
    " min",
    " GiB",
    " Mbps",
    " TFLOPS",
    " W",
    " nJ/bit",
    " B",
    " K",
    "0",
    "1",
    "7",
    "0.5",
    "1e400",
    "-3",
    "99999999999999999999",
    "edge[1..3]",
    "edge3",
    "cloud",
    "a100",
    "llama2-7b",
    "server",
    "hardware",
    "model",
    "link",
    "slo",
    "workload",
    "objective",
    "policy",
    "sim",
    "scenario",
    "constraint",
    "latency",
    "deadline",
    "share(cloud)",
    "occupancy(edge)",
    "utilization(edge)",
    "energy.idle",
    "poisson(rate = 2 /s)",
    "gamma(",
    "lognormal(median = ",
    "series(",
    "by_size([(1, x)])",
    "trace",
    "\"x.csv\"",
    "//",
    "#",
    "µs",
    "\u{FEFF}",
    "\u{0}",
    "é",
];

fn check(name: &str, src: &str, kind: SourceKind, overrides: Vec<(String, String)>) {
    check_in(fixture_dir().join("valid"), name, src, kind, overrides);
}

/// [`check`] with relative paths resolved against `base`.
fn check_in(
    base: PathBuf,
    name: &str,
    src: &str,
    kind: SourceKind,
    overrides: Vec<(String, String)>,
) {
    let opts = LoadOptions {
        base_dir: Some(base),
        overrides,
    };
    match load_str_with(name, src, kind, &opts) {
        Ok(l) => {
            if let Err(e) = l.scenario.build() {
                panic!("accepted a scenario core rejects: {e:?}\n--- input ---\n{src}");
            }
        }
        Err(f) => {
            assert!(f.errors().count() > 0, "failure without an error\n{src}");
            for d in &f.diagnostics {
                for (span, _) in &d.labels {
                    let len = d
                        .source
                        .as_ref()
                        .map(|s| miette::SourceCode::read_span(s, span, 0, 0).is_ok());
                    assert_eq!(len, Some(true), "label out of bounds: {d:?}");
                }
            }
            let r = f.render(false);
            assert!(!r.is_empty());
        }
    }
}

pub(crate) fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(a, n)| Mutation::Delete(a, n)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(a, t)| Mutation::Insert(a, t)),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Mutation::ByteFlip(a, b)),
    ]
}

pub(crate) fn apply(src: &str, muts: &[Mutation]) -> String {
    String::from_utf8_lossy(&apply_bytes(src.as_bytes(), muts, TOKENS)).into_owned()
}

/// Apply `muts` to `src`; `Insert` takes its text from `tokens`.
fn apply_bytes(src: &[u8], muts: &[Mutation], tokens: &[&str]) -> Vec<u8> {
    mutate::apply(src, muts, tokens, &[])
}

/// Insertions for mutating series files: separators, line ends, comments, quotes and numbers a
/// series file must reject or survive.
const SERIES_TOKENS: &[&str] = &[
    ",",
    "\n",
    "\r\n",
    "\r",
    "\n\n",
    "#",
    "# c\n",
    "\"",
    " ",
    "\t",
    "0",
    "1",
    "-1",
    "0.5",
    "1e308",
    "1e400",
    "-0",
    "NaN",
    "inf",
    "-inf",
    "1e-300",
    "5000",
    "0.0001",
    "99999999999999999999",
    "time_s,factor\n",
    "time_s,bandwidth_gbps\n",
    "factor",
    "\u{FEFF}",
    "\u{0}",
    "\u{ff}",
    "é",
];

/// The shipped valid series fixtures (seeds for [`mutated_series_files_name_file_and_line`]).
fn series_seeds() -> Vec<(String, Vec<u8>)> {
    ["wan-series.csv", "wan-series-crlf.csv", "series-mbps.csv"]
        .iter()
        .map(|n| {
            let p = fixture_dir().join("data").join(n);
            (n.to_string(), std::fs::read(p).unwrap())
        })
        .collect()
}

/// Load `examples/paper.*` with its `wan` link following the series file `bytes` and check: no
/// panic; a success builds and has at most one point per line; every failure is one data-file
/// error that names the file and a line inside it (no line only for an empty series) and points
/// at the path in the scenario.
fn check_series_file(bytes: &[u8], kind: SourceKind) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("series.csv");
    std::fs::write(&path, bytes).unwrap();
    let lines = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
    let src = crate::series::paper_with_series(kind, "series.csv");
    let opts = LoadOptions {
        base_dir: Some(dir.path().to_path_buf()),
        overrides: Vec::new(),
    };
    let shown = || String::from_utf8_lossy(bytes).into_owned();
    match load_str_with("paper", &src, kind, &opts) {
        Ok(l) => {
            if let Err(e) = l.scenario.build() {
                panic!(
                    "accepted a series core rejects: {e:?}\n--- file ---\n{}",
                    shown()
                );
            }
            let wan = l.scenario.links.iter().find(|l| l.name == "wan").unwrap();
            let perllm_core::spec::Fluctuation::Series { points } = &wan.fluctuation else {
                panic!("wan is not a series: {:?}", wan.fluctuation);
            };
            assert!(
                !points.is_empty() && points.len() <= lines,
                "{points:?}\n{}",
                shown()
            );
        }
        Err(f) => {
            let errors: Vec<_> = f.errors().collect();
            assert_eq!(
                errors.len(),
                1,
                "{}\n--- file ---\n{}",
                f.render(false),
                shown()
            );
            let d = errors[0];
            assert_eq!(d.code, "perllm::data-file", "{}", d.message);
            let prefix = format!("series file {}", path.display());
            let rest = d
                .message
                .strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("`{}` does not name {prefix}", d.message));
            if rest != ": the bandwidth series has no rows" {
                let r = rest
                    .strip_prefix(':')
                    .unwrap_or_else(|| panic!("no line in `{}`", d.message));
                let (n, msg) = r
                    .split_once(": ")
                    .unwrap_or_else(|| panic!("no line and message in `{}`", d.message));
                let n: usize = n
                    .parse()
                    .unwrap_or_else(|_| panic!("no line in `{}`", d.message));
                assert!(
                    (1..=lines).contains(&n),
                    "line {n} of {lines}: {}",
                    d.message
                );
                assert!(!msg.is_empty());
            }
            let (span, label) = &d.labels[0];
            let text = d.source.as_ref().unwrap().inner();
            assert_eq!(
                &text[span.offset()..span.offset() + span.len()],
                "\"series.csv\""
            );
            assert_eq!(label.as_deref(), Some("in this series file"));
            assert!(!f.render(false).is_empty());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    /// The seed scenarios of both syntaxes, mutated alike.
    #[test]
    fn mutated_scenarios_never_panic(seed in any::<prop::sample::Index>(), muts in prop::collection::vec(mutation(), 1..6)) {
        for (ext, kind) in [("perllm", SourceKind::Perllm), ("toml", SourceKind::Toml)] {
            let seeds = seeds(ext);
            let src = apply(&seeds[seed.index(seeds.len())], &muts);
            check(&format!("fuzz.{ext}"), &src, kind, Vec::new());
        }
    }

    /// The real shipped scenarios (both syntaxes), mutated, with their own directory as the base
    /// (so trace and series paths resolve as in `perllm run examples/...`).
    #[test]
    fn mutated_shipped_examples_never_panic(seed in any::<prop::sample::Index>(), muts in prop::collection::vec(mutation(), 1..6)) {
        let files = shipped();
        let (name, text, kind) = &files[seed.index(files.len())];
        let src = apply(text, &muts);
        check_in(crate::common::examples_dir(), name, &src, *kind, Vec::new());
    }

    /// The shipped series files, mutated (bytes, not only text), read through both syntaxes.
    #[test]
    fn mutated_series_files_name_file_and_line(
        seed in any::<prop::sample::Index>(),
        toml in any::<bool>(),
        muts in prop::collection::vec(mutation(), 1..6),
    ) {
        let seeds = series_seeds();
        let (_, bytes) = &seeds[seed.index(seeds.len())];
        let kind = if toml { SourceKind::Toml } else { SourceKind::Perllm };
        check_series_file(&apply_bytes(bytes, &muts, SERIES_TOKENS), kind);
    }

    #[test]
    fn token_soup_never_panics(toks in prop::collection::vec(0..TOKENS.len(), 0..200)) {
        let src: String = toks.iter().map(|&t| TOKENS[t]).collect();
        check("soup.perllm", &src, SourceKind::Perllm, Vec::new());
        check("soup.toml", &src, SourceKind::Toml, Vec::new());
    }

    #[test]
    fn random_overrides_never_panic(
        keys in prop::collection::vec(prop::collection::vec(0usize..24, 1..5), 1..4),
        vals in prop::collection::vec(prop::collection::vec(0..TOKENS.len(), 0..6), 1..4),
    ) {
        const KEYS: &[&str] = &[
            "scenario", "workload", "arrivals", "rate", "link", "wan", "bandwidth", "server", "cloud", "edge",
            "edge3", "max_batch", "policy", "exploration", "sim", "step_noise", "hardware", "a100", "power",
            "idle", "slo", "interactive", "deadline", "trace",
        ];
        let src = std::fs::read_to_string(crate::common::examples_dir().join("paper.perllm")).unwrap();
        let o: Vec<(String, String)> = keys
            .iter()
            .zip(vals.iter().cycle())
            .map(|(k, v)| {
                let key = k.iter().map(|&i| KEYS[i]).collect::<Vec<_>>().join(".");
                let val: String = v.iter().map(|&t| TOKENS[t]).collect();
                (key, val)
            })
            .collect();
        check("paper.perllm", &src, SourceKind::Perllm, o);
    }
}

/// Inputs that once crashed or misbehaved stay fixed.
#[test]
fn fuzz_regressions_stay_fixed() {
    let dir = fixture_dir().join("fuzz-regressions");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let kind = match p.extension().and_then(|e| e.to_str()) {
            Some("perllm") => SourceKind::Perllm,
            Some("toml") => SourceKind::Toml,
            _ => continue,
        };
        let bytes = std::fs::read(&p).unwrap();
        check(
            &p.display().to_string(),
            &String::from_utf8_lossy(&bytes),
            kind,
            Vec::new(),
        );
        n += 1;
    }
    assert!(
        n > 0,
        "no regression fixtures in {}",
        Path::new(&dir).display()
    );
}
