//! Help texts, version and completions.

use crate::{perllm, perllm_cmd, settings};

#[test]
fn help_texts() {
    let cases: &[(&str, &[&str])] = &[
        ("help_main", &["--help"]),
        ("help_check", &["check", "--help"]),
        ("help_run", &["run", "--help"]),
        ("help_compare", &["compare", "--help"]),
        ("help_sweep", &["sweep", "--help"]),
        ("help_merge", &["merge", "--help"]),
        ("help_plot", &["plot", "--help"]),
        ("help_plugins_list", &["plugins", "list", "--help"]),
        ("help_completions", &["completions", "--help"]),
    ];
    for (name, args) in cases {
        let out = perllm(args);
        let text = out.ok();
        assert!(text.contains("Usage: perllm"), "{name}: {text}");
        assert!(text.contains("Example"), "{name} has no examples: {text}");
        settings(None).bind(|| insta::assert_snapshot!(*name, text));
    }
}

#[test]
fn version() {
    let out = perllm(&["--version"]);
    assert_eq!(out.ok(), format!("perllm {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn completions_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = perllm(&["completions", shell]);
        let text = out.ok();
        for sub in [
            "check", "run", "compare", "sweep", "merge", "plot", "plugins",
        ] {
            assert!(text.contains(sub), "{shell} completions lack `{sub}`");
        }
    }
    assert!(perllm_cmd("completions bash").ok().contains("--policies"));
    assert_eq!(perllm_cmd("completions tcsh").code, 2);
}
