//! Load errors: each is a clear message naming the library path and the symbol.

use super::*;
use perllm_core::spec::ParamValue;
use perllm_host::{HostError, Symbols};

fn load_with(abi_version: &str, declare: &str) -> HostError {
    let mut r = Registry::new();
    r.load_library_with_symbols(
        &lib("perllm_plugin_testkit"),
        Symbols {
            abi_version,
            declare,
        },
    )
    .unwrap_err()
}

fn snap(name: &str, e: &HostError) {
    redact().bind(|| insta::assert_snapshot!(name, e.to_string()));
}

#[test]
fn file_not_found() {
    let e = Registry::new()
        .load_library(Path::new("/nonexistent/libnothing.so"))
        .unwrap_err();
    assert!(matches!(e, HostError::NotFound { .. }));
    snap("not_found", &e);
}

#[test]
fn not_a_library() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("libfake.so");
    std::fs::write(&p, "this is text, not ELF").unwrap();
    let e = Registry::new().load_library(&p).unwrap_err();
    let HostError::NotALibrary { path, reason } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(path, &p.canonicalize().unwrap());
    assert!(!reason.is_empty());
    // The system loader's reason, not only libloading's "dlopen failed" (issue 17).
    assert!(
        reason.len() > "dlopen failed".len() + 2 && !reason.ends_with("dlopen failed"),
        "{reason}"
    );
    // The loader's own message varies by platform: pin the start only.
    let msg = e.to_string();
    let head = &msg[..msg.find(": ").unwrap()];
    redact().bind(|| insta::assert_snapshot!("not_a_library", head));
    let e = Registry::new().load_library(dir.path()).unwrap_err();
    snap("a_directory", &e);
}

#[test]
fn missing_symbol() {
    let e = load_with(
        "perllm_plugin_abi_version_v9",
        perllm_plugin_abi::DECLARE_SYMBOL,
    );
    assert!(matches!(e, HostError::MissingSymbol { .. }));
    snap("missing_version_symbol", &e);
    let e = load_with(perllm_plugin_abi::ABI_VERSION_SYMBOL, "no_such_declaration");
    snap("missing_declare_symbol", &e);
}

#[test]
fn unsupported_abi_version() {
    let e = load_with("testkit_bad_version", perllm_plugin_abi::DECLARE_SYMBOL);
    assert!(matches!(e, HostError::AbiVersion { .. }));
    snap("abi_version", &e);
}

#[test]
fn malformed_declarations() {
    let v = perllm_plugin_abi::ABI_VERSION_SYMBOL;
    for sym in [
        "testkit_declare_null",
        "testkit_declare_bad_kind",
        "testkit_declare_no_vtable",
        "testkit_declare_no_schedule",
        "testkit_declare_empty_name",
        "testkit_declare_bad_utf8",
        "testkit_declare_short_list",
    ] {
        let e = load_with(v, sym);
        assert!(matches!(e, HostError::Malformed { .. }), "{sym}: {e:?}");
        snap(
            &format!("malformed_{}", sym.trim_start_matches("testkit_declare_")),
            &e,
        );
    }
}

#[test]
fn duplicate_names() {
    let e = load_with(perllm_plugin_abi::ABI_VERSION_SYMBOL, "testkit_declare_dup");
    assert!(matches!(e, HostError::Malformed { .. }));
    snap("duplicate_in_one_library", &e);
    // Two libraries that provide one name, both named by the user.
    let mut r = Registry::new();
    r.load_library(&lib("perllm_plugins")).unwrap();
    let e = r
        .load_library_with_symbols(
            &lib("perllm_plugin_testkit"),
            Symbols {
                abi_version: perllm_plugin_abi::ABI_VERSION_SYMBOL,
                declare: "testkit_declare_clash",
            },
        )
        .unwrap_err();
    assert!(matches!(e, HostError::DuplicateName { .. }));
    snap("duplicate_across_libraries", &e);
}

#[test]
fn unknown_names_and_failing_create() {
    let world = paper(1.0, 1);
    let r = testkit();
    let e = err(r.policy(&spec("no-such-policy", &[]), &world, 1));
    snap("unknown_policy", &e);
    let e = err(r.cost_model("no-such-model", ""));
    snap("unknown_cost_model", &e);
    let testkit_in_mode = |mode: &str| spec("testkit", &[("mode", ParamValue::Text(mode.into()))]);
    let e = err(r.policy(&testkit_in_mode("fail-create"), &world, 1));
    assert!(matches!(e, HostError::Call { .. }));
    snap("create_fails", &e);
    let e = err(r.policy(&testkit_in_mode("panic-create"), &world, 1));
    snap("create_panics", &e);
    let e = err(r.cost_model("testkit-cost", r#"{"mode": "fail-create"}"#));
    snap("cost_model_create_fails", &e);
}

#[test]
fn builtins_come_first() {
    let world = paper(1.0, 1);
    let r = Registry::new();
    let p = r.policy(&spec("perllm", &[]), &world, 1).unwrap();
    assert_eq!(p.name(), "perllm");
    let names: Vec<String> = r
        .list()
        .into_iter()
        .map(|i| format!("{} {} {}", i.kind, i.name, i.source))
        .collect();
    assert_eq!(
        names,
        [
            "policy perllm built-in",
            "policy true-costs built-in",
            "cost-model roofline built-in"
        ]
    );
    // `plugin:` skips the built-ins.
    let e = err(r.policy(&spec("plugin:perllm", &[]), &world, 1));
    snap("plugin_prefix_skips_builtins", &e);
}
