//! Smaller faults a plugin or a plugin directory can have, each with a clear message.

use super::*;
use perllm_core::spec::ParamValue;
use perllm_host::{HostError, Symbols};

fn snap(name: &str, msg: &str) {
    redact().bind(|| insta::assert_snapshot!(name, msg));
}

fn raw_registry() -> Registry {
    let mut r = Registry::new();
    r.load_library_with_symbols(
        &lib("perllm_plugin_testkit"),
        Symbols {
            abi_version: perllm_plugin_abi::ABI_VERSION_SYMBOL,
            declare: "testkit_declare_raw",
        },
    )
    .unwrap();
    r
}

fn raw_policy(r: &Registry, world: &World, mode: &str) -> Box<dyn Policy> {
    let spec = spec("testkit-raw", &[("mode", ParamValue::Text(mode.into()))]);
    r.policy(&spec, world, 1).unwrap()
}

#[test]
fn error_statuses_with_a_null_an_empty_or_no_message_say_so() {
    let world = paper(1.0, 1);
    for (mode, expect) in [
        (
            "null-message",
            "(the plugin reported a message with a null pointer and length 5)",
        ),
        ("empty-message", "(the plugin reported an empty message)"),
        ("no-message", "(the plugin reported no message)"),
    ] {
        let r = raw_registry();
        let mut p = raw_policy(&r, &world, mode);
        let (res, _) = schedule_once(&world, &mut *p, 2);
        let e = res.unwrap_err().to_string();
        assert!(
            e.contains(expect) && e.contains("`schedule`"),
            "{mode}: {e}"
        );
    }
}

#[test]
fn a_bad_statistic_name_fails_the_run_instead_of_becoming_an_empty_key() {
    let world = paper(1.0, 1);
    for mode in ["null-stat-name", "empty-stat-name", "nul-stat-name"] {
        let r = raw_registry();
        let p = raw_policy(&r, &world, mode);
        let stats = p.stats();
        assert!(
            !stats.values.contains_key(""),
            "{mode}: an empty key: {stats:?}"
        );
        assert!(!stats.values.keys().any(|k| k.contains('\0')), "{mode}");
        let e = r.check().unwrap_err();
        assert!(matches!(e, HostError::Invalid { .. }), "{e:?}");
        snap(&format!("stats_{mode}"), &e.to_string());
    }
    // A good name still comes through.
    let r = raw_registry();
    let p = raw_policy(&r, &world, "ok");
    assert_eq!(p.stats().values["testkit.ok"], 1.0);
    r.check().unwrap();
}

#[test]
fn a_nul_byte_inside_a_name_is_shown_escaped() {
    let e = Registry::new()
        .load_library_with_symbols(
            &lib("perllm_plugin_testkit"),
            Symbols {
                abi_version: perllm_plugin_abi::ABI_VERSION_SYMBOL,
                declare: "testkit_declare_nul_name",
            },
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains(r#""round\0robin""#), "{e}");
    snap("nul_in_name", &e);
}

/// A directory with the test kit and a broken library beside it.
fn dir_with_a_bad_library() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        lib("perllm_plugin_testkit"),
        dir.path().join(format!(
            "{}perllm_plugin_testkit{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        )),
    )
    .unwrap();
    std::fs::write(
        dir.path().join(format!(
            "{}aaa_broken{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        )),
        "not a library",
    )
    .unwrap();
    dir
}

#[test]
fn one_bad_library_in_a_plugin_directory_does_not_hide_the_others() {
    let dir = dir_with_a_bad_library();
    let r = Registry::discover_with(&[dir.path().to_path_buf()], None, None).unwrap();
    assert!(r.list().iter().any(|i| i.name == "testkit"));
    assert_eq!(r.skipped().len(), 1);
    let w = r.warnings();
    assert_eq!(w.len(), 1);
    assert!(
        w[0].contains("aaa_broken") && w[0].contains("skipped"),
        "{w:?}"
    );
    // With the system loader's reason (glibc's `dlerror()` for a file shorter than an ELF
    // header), not a bare "dlopen failed".
    assert!(w[0].contains("file too short"), "{w:?}");
    // The same through PERLLM_PLUGIN_PATH.
    let r = Registry::discover_with(&[], Some(dir.path().as_os_str()), None).unwrap();
    assert!(r.list().iter().any(|i| i.name == "testkit"));
    assert_eq!(r.skipped().len(), 1);
    // A bad library named explicitly is still an error.
    let bad = dir.path().join(format!(
        "{}aaa_broken{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    let e = err(Registry::discover_with(&[bad], None, None)).to_string();
    assert!(
        e.contains("aaa_broken") && e.contains("file too short"),
        "{e}"
    );
}

/// A C plugin library declaring a policy `round-robin` (like a bundled one) that rejects all.
const C_ROUND_ROBIN: &str = r#"
#include <perllm_plugin.h>
#include <stdlib.h>
static void *create(PerllmStr c, uint64_t seed, const PerllmErrorSink *e) {
    (void)c; (void)seed; (void)e; return malloc(1);
}
static void destroy(void *p) { free(p); }
static uint32_t schedule(void *p, const PerllmSlotView *s, PerllmPlacement *out, size_t n,
                         const PerllmErrorSink *e) {
    (void)p; (void)e;
    for (size_t i = 0; i < n; i++) perllm_slot_placement(s, out, i)->action = PERLLM_ACTION_REJECT;
    return PERLLM_STATUS_OK;
}
static const PerllmPolicyVTable VT = { .struct_size = sizeof(PerllmPolicyVTable),
    .create = create, .destroy = destroy, .schedule = schedule };
static const PerllmPluginDecl D[] = {{ .struct_size = sizeof(PerllmPluginDecl),
    .kind = PERLLM_KIND_POLICY, .name = PERLLM_STR("round-robin"), .version = PERLLM_STR("9"),
    .description = PERLLM_STR("rejects everything"), .policy = &VT }};
static const PerllmPluginList L = { .struct_size = sizeof(PerllmPluginList), .plugins = { D, 1 } };
PERLLM_EXPORT uint32_t perllm_plugin_abi_version(void) { return PERLLM_ABI_VERSION; }
PERLLM_EXPORT const PerllmPluginList *perllm_plugin_declare(void) { return &L; }
"#;

#[test]
fn a_user_policy_named_like_a_bundled_one_is_announced_and_both_stay_selectable() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("rr.c");
    let so = dir.path().join("librr.so");
    std::fs::write(&src, C_ROUND_ROBIN).unwrap();
    let out = std::process::Command::new(super::c_header::c_compiler())
        .args(["-std=c11", "-shared", "-fPIC", "-fvisibility=hidden", "-I"])
        .arg(workspace_file("perllm-plugin-abi/include"))
        .arg(&src)
        .arg("-o")
        .arg(&so)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = Registry::discover_with(std::slice::from_ref(&so), None, Some(&deps_dir())).unwrap();
    let w = r.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("policy `round-robin`")
            && w[0].contains("librr.so")
            && w[0].contains("`bundled:round-robin`"),
        "{w:?}"
    );
    let names: Vec<String> = r.list().into_iter().map(|i| i.name).collect();
    assert!(names.contains(&"round-robin".to_string()));
    assert!(names.contains(&"bundled:round-robin".to_string()));
    let world = paper(4.0, 4);
    // The bare name is the user's (it rejects everything)...
    let mut mine = r.policy(&spec("round-robin", &[]), &world, 1).unwrap();
    let a = run(&world, &mut *mine, &Roofline::default()).unwrap();
    assert_eq!(a.rejected, a.arrived);
    // ... and the bundled one is `bundled:round-robin`.
    let mut bundled = r
        .policy(&spec("bundled:round-robin", &[]), &world, 1)
        .unwrap();
    let b = run(&world, &mut *bundled, &Roofline::default()).unwrap();
    assert_eq!(b.completed, b.arrived);
    r.check().unwrap();
}
