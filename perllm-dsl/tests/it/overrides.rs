//! `--set` overrides for sweeps, and `check_files`.

use crate::common::examples_dir;
use perllm_core::spec::{Arrivals, Fluctuation, ParamValue, SECOND};
use perllm_core::testbed;
use perllm_dsl::{check_files, load_file_with_overrides};

fn set(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn overrides_change_exactly_what_they_name() {
    for file in ["paper.perllm", "paper.toml"] {
        let p = examples_dir().join(file);
        let o = set(&[
            ("workload.arrivals.rate", "8 /s"),
            ("scenario.seed", "11"),
            ("scenario.duration", "1 h"),
            ("link.wan.bandwidth", "200 Mbps"),
            ("server.cloud.max_batch", "32"),
            ("server.edge.max_batch", "2"),
            ("policy.exploration", "0.9"),
            ("policy.new_flag", "true"),
            ("sim.step_noise", "1%"),
            ("sim.drain", "10 min"),
            ("hardware.a100.power.idle", "50 W"),
            ("slo.interactive.deadline", "3 s"),
        ]);
        let s = load_file_with_overrides(&p, &o)
            .unwrap_or_else(|f| panic!("{file}: {}", f.render(false)))
            .scenario;
        let mut want = testbed::paper(8.0, 3600 * SECOND);
        want.seed = 11;
        want.links[1].bandwidth_bps = 200e6;
        for sv in &mut want.servers {
            sv.max_batch = if sv.name == "cloud" { 32 } else { 2 };
        }
        want.policy
            .params
            .insert("exploration".into(), ParamValue::Number(0.9));
        want.policy
            .params
            .insert("new_flag".into(), ParamValue::Bool(true));
        want.sim.step_noise = 0.01;
        want.sim.drain_ns = Some(600 * SECOND);
        want.hardware[1].power_idle_w = 50.0;
        want.slos[0].deadline_ns = 3 * SECOND;
        assert_eq!(s, want, "{file}");
        // The +/- of an overridden bandwidth is kept.
        assert_eq!(s.links[1].fluctuation, Fluctuation::Uniform { frac: 0.2 });
    }
}

#[test]
fn overrides_replace_whole_values_too() {
    let p = examples_dir().join("paper.perllm");
    let o = set(&[
        ("workload.arrivals", "gamma(rate = 3 /s, cv = 2)"),
        ("link.edge-lan.bandwidth", "1 Gbps +/- 5%"),
    ]);
    let s = load_file_with_overrides(&p, &o).unwrap().scenario;
    assert_eq!(s.workload.arrivals, Arrivals::Gamma { rate: 3.0, cv: 2.0 });
    assert_eq!(s.links[0].bandwidth_bps, 1e9);
    assert_eq!(s.links[0].fluctuation, Fluctuation::Uniform { frac: 0.05 });
}

fn override_error(pairs: &[(&str, &str)]) -> String {
    let p = examples_dir().join("paper.perllm");
    let f = load_file_with_overrides(&p, &set(pairs)).unwrap_err();
    // Paths differ between machines; the override sources do not.
    f.render(false)
}

#[test]
fn bad_overrides_are_diagnostics() {
    insta::with_settings!({ omit_expression => true }, {
        insta::assert_snapshot!("override-wrong-unit", override_error(&[("workload.arrivals.rate", "8 ms")]));
        insta::assert_snapshot!("override-unknown-block-key", override_error(&[("workload.arival.rate", "8 /s")]));
        insta::assert_snapshot!("override-unknown-name", override_error(&[("link.wann.bandwidth", "1 Gbps")]));
        insta::assert_snapshot!("override-family-member", override_error(&[("server.edge3.max_batch", "2")]));
        insta::assert_snapshot!("override-unknown-parameter", override_error(&[("workload.arrivals.rat", "2 /s")]));
        insta::assert_snapshot!("override-syntax", override_error(&[("scenario.seed", "1 +")]));
        insta::assert_snapshot!("override-not-a-path", override_error(&[("seed", "1")]));
    });
}

#[test]
fn check_files_reports_every_file() {
    let dir = crate::common::crate_dir();
    let paths = vec![
        examples_dir().join("paper.perllm"),
        dir.join("tests/fixtures/invalid/many-errors.perllm"),
        dir.join("tests/fixtures/valid/warnings.perllm"),
    ];
    let out = check_files(&paths, false);
    assert!(!out.ok);
    assert_eq!(out.errors, 5);
    assert_eq!(out.warnings, 3);
    assert!(
        out.rendered
            .contains("paper.perllm: ok (6 servers, 2 models, 3 SLO classes, policy `perllm`)"),
        "{}",
        out.rendered
    );
    assert!(out.rendered.contains("many-errors.perllm: 5 error(s)"));
    let ok = check_files(&paths[..1], false);
    assert!(ok.ok && ok.errors == 0 && ok.warnings == 0);
    // Colour only adds escape codes.
    assert!(check_files(&paths[1..2], true).rendered.contains('\u{1b}'));
}
