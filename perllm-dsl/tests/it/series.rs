//! Series files (`fluctuation = series(points = "file.csv")`) are read by perllm-core's bandwidth
//! reader: same points for CRLF and LF files, header optional for factors, any time origin,
//! absolute bandwidths normalised.

use perllm_core::spec::{Fluctuation, Nanos, Scenario};
use perllm_dsl::{LoadFailure, LoadOptions, SourceKind, load_str_with};
use std::path::Path;

const SECOND: Nanos = 1_000_000_000;

/// `examples/paper.perllm` or `examples/paper.toml` with the `wan` link following `series(path)`.
pub fn paper_with_series(kind: SourceKind, path: &str) -> String {
    let (file, from, to) = match kind {
        SourceKind::Toml => (
            "paper.toml",
            "bandwidth = \"300 Mbps +/- 20%\"".to_string(),
            format!("bandwidth = \"300 Mbps\"\nfluctuation = 'series(points = \"{path}\")'"),
        ),
        _ => (
            "paper.perllm",
            "bandwidth = 300 Mbps +/- 20%,".to_string(),
            format!("bandwidth = 300 Mbps, fluctuation = series(points = \"{path}\"),"),
        ),
    };
    let text = std::fs::read_to_string(crate::common::examples_dir().join(file)).unwrap();
    assert_eq!(text.matches(&from).count(), 1, "{file} has one `{from}`");
    text.replace(&from, &to)
}

fn load(kind: SourceKind, base: &Path, path: &str) -> Result<Scenario, LoadFailure> {
    let opts = LoadOptions {
        base_dir: Some(base.to_path_buf()),
        overrides: Vec::new(),
    };
    let name = match kind {
        SourceKind::Toml => "paper.toml",
        _ => "paper.perllm",
    };
    load_str_with(name, &paper_with_series(kind, path), kind, &opts).map(|l| l.scenario)
}

fn wan_points(s: &Scenario) -> Vec<(Nanos, f64)> {
    let l = s.links.iter().find(|l| l.name == "wan").unwrap();
    match &l.fluctuation {
        Fluctuation::Series { points } => points.clone(),
        f => panic!("wan fluctuation is {f:?}"),
    }
}

fn data_dir() -> std::path::PathBuf {
    crate::common::crate_dir().join("tests/fixtures/data")
}

#[test]
fn crlf_series_file_loads_like_lf() {
    let base = data_dir();
    let crlf = std::fs::read(base.join("wan-series-crlf.csv")).unwrap();
    assert!(crlf.windows(2).filter(|w| w == b"\r\n").count() >= 4);
    for kind in [SourceKind::Perllm, SourceKind::Toml] {
        let lf = load(kind, &base, "wan-series.csv").unwrap();
        let cr = load(kind, &base, "wan-series-crlf.csv").unwrap();
        assert_eq!(
            (lf.links.len(), lf.links[1].name.as_str()),
            (2, "wan"),
            "the other link keeps its own fluctuation"
        );
        assert_eq!(
            wan_points(&lf),
            vec![(0, 1.0), (30 * SECOND, 0.7), (60 * SECOND, 1.2)]
        );
        assert_eq!(lf, cr, "{kind:?}");
    }
}

#[test]
fn headerless_shifted_and_blank_lines_give_the_same_series() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        ("plain.csv", "time_s,factor\n0,1.0\n30,0.7\n60,1.2\n"),
        ("headerless.csv", "0,1.0\n30,0.7\n60,1.2\n"),
        (
            "shifted.csv",
            "# measured from t = 100 s\ntime_s,factor\n100,1.0\n130,0.7\n160,1.2",
        ),
        (
            "blank.csv",
            "\n\ntime_s , factor\r\n\r\n0,1.0\n \n30,0.7\r\n#\n60,1.2\n\n",
        ),
    ];
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
        let s = load(SourceKind::Perllm, dir.path(), name)
            .unwrap_or_else(|e| panic!("{}", e.render(false)));
        assert_eq!(
            wan_points(&s),
            vec![(0, 1.0), (30 * SECOND, 0.7), (60 * SECOND, 1.2)],
            "{name}"
        );
    }
}

#[test]
fn absolute_bandwidths_are_normalised_by_their_mean() {
    // 100 Mbps for 1 s, 50 Mbps for 3 s: time-weighted mean 62.5 Mbps.
    let s = load(SourceKind::Perllm, &data_dir(), "series-mbps.csv").unwrap();
    let p = wan_points(&s);
    assert_eq!(
        p.iter().map(|p| p.0).collect::<Vec<_>>(),
        [0, SECOND, 4 * SECOND]
    );
    for (got, want) in p.iter().map(|p| p.1).zip([1.6, 0.8, 1.6]) {
        assert!((got - want).abs() < 1e-12, "{p:?}");
    }
}

#[test]
fn errors_name_the_series_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("time,factor\n0,1\n", ":1: expected the header"),
        (
            "time_s,factor\r\n0,1\r\n\r\n1,x\r\n",
            ":4: `x` is not a number",
        ),
        (
            "time_s,factor\n0,1\n1,1,1\n",
            ":3: has 3 fields, expected 2",
        ),
        (
            "time_s,factor\n0,1\n1e400,1\n",
            ":3: time_s: `1e400` is not a finite",
        ),
        (
            "time_s,factor\n0,1\n2e10,1\n",
            ":3: time_s: `2e10` overflows",
        ),
        (
            "time_s,bandwidth_gbps\n0,1e300\n",
            ":2: `1e300` bandwidth_gbps overflows",
        ),
        (
            "time_s,factor\n0,1\n1,0.0001\n",
            ":3: factor 0.0001, outside [0.001, 1000]",
        ),
        (
            "time_s,bandwidth_mbps\n0,1\n1,1e7\n2,1\n",
            ":2: 1e6 bits/s is ",
        ),
        ("# nothing\n\n", ": the bandwidth series has no rows"),
        ("", ": the bandwidth series has no rows"),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let name = format!("s{i}.csv");
        std::fs::write(dir.path().join(&name), text).unwrap();
        for kind in [SourceKind::Perllm, SourceKind::Toml] {
            let f = load(kind, dir.path(), &name).expect_err(text);
            let errors: Vec<_> = f.errors().collect();
            assert_eq!(errors.len(), 1, "{text:?}: {}", f.render(false));
            let d = errors[0];
            let shown = format!("series file {}{want}", dir.path().join(&name).display());
            assert_eq!(d.code, "perllm::data-file");
            assert!(
                d.message.starts_with(&shown),
                "{text:?} ({kind:?}): `{}` does not start with `{shown}`",
                d.message
            );
            // The caret points at the path in the scenario.
            let (span, label) = &d.labels[0];
            let src = d.source.as_ref().unwrap().inner();
            assert_eq!(
                &src[span.offset()..span.offset() + span.len()],
                format!("\"{name}\""),
                "{kind:?}"
            );
            assert_eq!(label.as_deref(), Some("in this series file"));
        }
    }
}
