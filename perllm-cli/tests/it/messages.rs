//! Messages a newcomer meets (issue 17, item 7): each says what is wrong and what to do.

use crate::{SHORT, has, paper, paper_cmd, perllm, perllm_cmd, s, tmp};

const TINY: &str = "scenario.duration=5s";

#[test]
fn unknown_policy_parameters_suggest_the_close_name() {
    // The built-in policy.
    let out = paper("run", TINY, &["--param", "explorationn=0.3"]);
    out.fails(
        2,
        &["unknown parameter `explorationn`; did you mean `exploration`?"],
    );
    // A bundled plugin: the same words, not serde's "expected `x`" for any name.
    let out = paper("run", TINY, &["--policy", "greedy", "--param", "slak=0.3"]);
    out.fails(
        2,
        &["unknown parameter `slak`; did you mean `slack`? known parameters: slack"],
    );
    let out = paper(
        "run",
        TINY,
        &["--policy", "cloud-only", "--param", "slack=1"],
    );
    out.stderr_has("unknown parameter `slack`: it takes no parameters");
}

#[test]
fn a_file_that_is_not_a_library_says_why() {
    let dir = tmp();
    let fake = dir.path().join("libfake.so");
    std::fs::write(&fake, "not ELF").unwrap();
    let out = paper("run", TINY, &["--plugin", s(&fake)]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("is not a loadable plugin library"))
        .unwrap_or_else(|| panic!("{}", out.stderr));
    assert!(!line.trim_end().ends_with("dlopen failed"), "{line}");
}

#[test]
fn compare_with_a_list_points_to_sweep() {
    let out = paper(
        "compare",
        "workload.arrivals.rate=2/s,4/s",
        &["--seeds", "1"],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    out.stderr_has("use `perllm sweep examples/paper.perllm --set workload.arrivals.rate=2/s,4/s`");
}

#[test]
fn a_mistyped_extension_suggests_the_file() {
    let out = perllm_cmd("check examples/paper.perlm");
    assert_eq!(out.code, 2);
    out.stderr_has("did you mean `examples/paper.perllm`?");
    out.stderr_has("`.json`");
}

#[test]
fn one_seed_shows_no_spread() {
    let out = paper(
        "compare",
        SHORT,
        &["--policies", "perllm,cloud-only", "--seeds", "1"],
    );
    let text = out.ok();
    assert!(!text.contains('±'), "{text}");
    has(text, "one seed, so no spread");
    has(
        text,
        "goodput = requests that met their deadline per second of the arrival window",
    );
}

#[test]
fn a_shard_past_the_grid_is_refused() {
    let dir = tmp();
    let part = dir.path().join("part.json");
    // 2 policies x 1 seed = 2 runs: shard 3/3 would hold none (it was a warning and an empty
    // part; a shard count above the grid size is now refused, issue 21).
    let out = paper_cmd(
        "compare",
        TINY,
        &format!(
            "--policies cloud-only,random --seeds 1 --shard 3/3 --out {}",
            s(&part)
        ),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    out.stderr_has(
        "`--shard`: shard 3/3 splits a grid of 2 runs into 3 shards: use at most 2 shards, or none",
    );
    assert!(!part.exists());
}

#[test]
fn created_output_folders_are_announced() {
    let dir = tmp();
    let dest = dir.path().join("new/deeper/results.json");
    let out = paper_cmd(
        "compare",
        TINY,
        &format!("--policies cloud-only --seeds 1 --out {}", s(&dest)),
    );
    out.ok();
    out.stderr_has(&format!(
        "note: created the directory `{}` for the outputs (`{}` did not exist)",
        s(&dir.path().join("new/deeper")),
        s(&dir.path().join("new"))
    ));
    assert!(dest.exists());
    // `run --out DIR` is asked to make DIR: only folders above it are announced.
    let run_dir = dir.path().join("runs-here");
    let out = paper("run", TINY, &["--out", s(&run_dir)]);
    out.ok();
    assert!(
        !out.stderr.contains("created the directory"),
        "{}",
        out.stderr
    );
    let nested = dir.path().join("above/run");
    let out = paper("run", TINY, &["--out", s(&nested)]);
    out.ok();
    out.stderr_has("(`");
    out.stderr_has(&format!("`{}` did not exist", s(&dir.path().join("above"))));
    // A command refused before its runs leaves no folder behind (the unit tests of `Outputs`
    // check that folders made for a command that then fails are removed).
    let gone = dir.path().join("gone/results.json");
    let out = paper(
        "compare",
        TINY,
        &["--policies", "no-such-policy", "--out", s(&gone)],
    );
    assert_eq!(out.code, 2);
    assert!(!dir.path().join("gone").exists());
}

/// README's first session shows this file's diagnostics: it is shipped, and it fails as shown.
#[test]
fn the_shipped_mistakes_example_fails_with_every_error() {
    let out = perllm_cmd("check examples/mistakes/bad.perllm");
    assert_eq!(out.code, 2, "{}", out.stderr);
    for needle in [
        "expected a bandwidth, found a time (`ms`)",
        "a scenario needs at least one `slo` class",
        "a scenario needs at least one `server`",
        "a scenario needs a `workload` block",
        "checked 1 file: 4 errors, 0 warnings",
    ] {
        assert!(
            out.stderr.contains(needle),
            "no `{needle}` in:\n{}",
            out.stderr
        );
    }
}

/// A `.json` scenario (checked by perllm-core, not the language) names a close link or hardware.
#[test]
fn unknown_link_and_hardware_in_a_json_scenario_suggest_the_close_name() {
    let dir = tmp();
    let json = dir.path().join("paper.json");
    perllm(&["export", "examples/paper.perllm", "--out", s(&json), "-q"]).ok();
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let servers = v["servers"].as_array_mut().unwrap();
    let cloud = servers.iter_mut().find(|s| s["name"] == "cloud").unwrap();
    cloud["link"] = "wann".into();
    cloud["hardware"] = "a10".into();
    std::fs::write(&json, v.to_string()).unwrap();
    let out = perllm(&["check", s(&json)]);
    out.fails(
        2,
        &[
            "unknown link `wann`; did you mean `wan`?",
            "unknown hardware `a10`; did you mean `a100`?",
        ],
    );
}
