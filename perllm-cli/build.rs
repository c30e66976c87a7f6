//! Decides at build time whether the headless-browser test of the HTML page can run.
//!
//! libtest fixes `#[ignore]` at compile time, so a test that needs Chromium cannot mark itself
//! skipped at run time; passing silently would read as "checked". This script looks for a
//! Chromium on `PATH` and sets `cfg(perllm_chromium)` when it finds one (or when
//! `PERLLM_REQUIRE_CHROMIUM` is set, as in CI, so that a missing browser fails the test instead of
//! skipping it). Without it the test shows as `ignored` with its reason in `cargo test`'s output.

use std::path::PathBuf;

const NAMES: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(perllm_chromium)");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-env-changed=PERLLM_REQUIRE_CHROMIUM");
    println!("cargo::rerun-if-changed=build.rs");
    let dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let mut found = false;
    for dir in dirs.iter().filter(|d| d.is_dir()) {
        // Installing a browser changes its directory: then this script runs again.
        println!("cargo::rerun-if-changed={}", dir.display());
        found |= NAMES.iter().any(|n| dir.join(n).is_file());
    }
    let required = std::env::var_os("PERLLM_REQUIRE_CHROMIUM").is_some_and(|v| !v.is_empty());
    if found || required {
        println!("cargo::rustc-cfg=perllm_chromium");
    }
}
