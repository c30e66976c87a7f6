//! Decides at build time whether the tests that need an external program can run: the
//! headless-browser test of the HTML page (Chromium) and the sharded sweep through a real batch
//! system (Slurm with munge).
//!
//! libtest fixes `#[ignore]` at compile time, so a test that needs such a program cannot mark
//! itself skipped at run time; passing silently would read as "checked". This script looks for
//! the programs and sets `cfg(perllm_chromium)` / `cfg(perllm_slurm)` when it finds them (or when
//! `PERLLM_REQUIRE_CHROMIUM` / `PERLLM_REQUIRE_SLURM` is set, as in CI after a successful install,
//! so that a missing program fails the test instead of skipping it). Without them the tests show
//! as `ignored` with their reason in `cargo test`'s output.

use std::path::PathBuf;

const CHROMIUM: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];
/// Every program the Slurm test starts or calls (Debian's `slurm-wlm` and `munge`).
const SLURM: [&str; 7] = [
    "munged",
    "slurmctld",
    "slurmd",
    "sbatch",
    "squeue",
    "scontrol",
    "munge",
];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(perllm_chromium)");
    println!("cargo::rustc-check-cfg=cfg(perllm_slurm)");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-env-changed=PERLLM_REQUIRE_CHROMIUM");
    println!("cargo::rerun-if-env-changed=PERLLM_REQUIRE_SLURM");
    println!("cargo::rerun-if-changed=build.rs");
    let path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    // Daemons live in sbin, which a non-root PATH often lacks (the Slurm test looks there too).
    let mut with_sbin = path.clone();
    with_sbin.extend(["/usr/sbin", "/sbin"].map(PathBuf::from));
    for dir in with_sbin.iter().filter(|d| d.is_dir()) {
        // Installing a program changes its directory: then this script runs again.
        println!("cargo::rerun-if-changed={}", dir.display());
    }
    let found = |dirs: &[PathBuf], name: &str| dirs.iter().any(|d| d.join(name).is_file());
    let required = |var: &str| std::env::var_os(var).is_some_and(|v| !v.is_empty());
    if CHROMIUM.iter().any(|n| found(&path, n)) || required("PERLLM_REQUIRE_CHROMIUM") {
        println!("cargo::rustc-cfg=perllm_chromium");
    }
    if SLURM.iter().all(|n| found(&with_sbin, n)) || required("PERLLM_REQUIRE_SLURM") {
        println!("cargo::rustc-cfg=perllm_slurm");
    }
}
