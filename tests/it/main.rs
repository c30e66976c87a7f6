//! Cross-crate tests: example scenarios through the scenario language, the JSON form the CLI
//! accepts and hashes, and the simulator; the paper experiment in small.

mod examples;
mod paper;
mod structure;

/// Runs `cmd` and asserts that it succeeded; `what` names it in the failure message, with its
/// stderr.
pub fn run_ok(cmd: &mut std::process::Command, what: &str) -> std::process::Output {
    let out = cmd.output().expect(what);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed:\n{err}");
    out
}
