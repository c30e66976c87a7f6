//! The third-party example builds as a standalone crate and runs through the dynamic path.

use super::*;
use perllm_core::spec::{ParamValue, PolicySpec};
use std::process::Command;

#[test]
fn third_party_example_builds_and_runs() {
    let manifest = workspace_file("examples/third-party-policy/Cargo.toml");
    // Its own target directory inside ours: no lock contention with the running cargo.
    let target = deps_dir().parent().unwrap().join("third-party-policy");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run_ok(
        Command::new(cargo)
            .args(["build", "--quiet", "--offline", "--manifest-path"])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(&target),
        "building the example",
    );
    let lib = target.join("debug").join(format!(
        "{}third_party_policy{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    assert!(lib.exists(), "{}", lib.display());

    let r = Registry::discover_with(std::slice::from_ref(&lib), None, Some(&deps_dir())).unwrap();
    let info = r
        .list()
        .into_iter()
        .find(|i| i.name == "edge-first")
        .expect("edge-first is listed");
    assert_eq!(
        info.source,
        lib.canonicalize().unwrap().display().to_string()
    );
    let world = paper(4.0, 6);
    let spec = PolicySpec {
        name: "edge-first".into(),
        params: [("slack".to_string(), ParamValue::Number(0.9))]
            .into_iter()
            .collect(),
    };
    let mut p = r.policy(&spec, &world, 7).unwrap();
    let rep = run(&world, &mut *p, &Roofline::default()).unwrap();
    assert_eq!(rep.completed + rep.rejected, rep.arrived);
    let v = &rep.policy_stats.values;
    assert_eq!(
        v["edge_first.to_edge"] + v["edge_first.elsewhere"],
        rep.arrived as f64
    );
    assert!(
        v["edge_first.elsewhere"] > 0.0,
        "llama-33b requests go to the cloud"
    );
    r.check().unwrap();
    let bad = PolicySpec {
        name: "edge-first".into(),
        params: [("speed".to_string(), ParamValue::Number(1.0))]
            .into_iter()
            .collect(),
    };
    let e = err(r.policy(&bad, &world, 7));
    let msg = e
        .to_string()
        .replace(&lib.canonicalize().unwrap().display().to_string(), "[LIB]");
    insta::assert_snapshot!("third_party_bad_param", msg);
}
