//! End-to-end tests of the `perllm` binary: they run the real executable (cargo builds it for
//! this package's integration tests and names it in `CARGO_BIN_EXE_perllm`) from the workspace
//! root, and pin its output with insta (filters hide the scenario hash, the version and
//! temporary paths).

mod admission;
mod baselines;
mod bounds;
mod c_plugin;
mod check;
mod compare;
mod decisions;
#[cfg(unix)]
mod destinations;
mod exit_codes;
mod export;
// The real engine and HTTP serving: the default `engine` feature.
#[cfg(feature = "engine")]
mod fidelity;
mod help;
#[cfg(unix)]
mod inputs;
mod isolation;
mod light_load;
mod messages;
#[cfg(unix)]
#[cfg(feature = "engine")]
mod netem;
mod outputs;
mod plot;
mod plugins;
mod resources;
mod run;
#[cfg(feature = "engine")]
mod serve;
mod shard;
#[cfg(unix)]
mod slurm;

use std::path::{Path, PathBuf};
use std::process::Command;

/// What one invocation produced.
pub struct Out {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<std::process::Output> for Out {
    fn from(o: std::process::Output) -> Self {
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8(o.stdout).expect("UTF-8 stdout"),
            stderr: String::from_utf8(o.stderr).expect("UTF-8 stderr"),
        }
    }
}

impl Out {
    /// Assert success and return stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "exit {}; stderr:\n{}", self.code, self.stderr);
        &self.stdout
    }

    /// Assert that stderr contains `needle` (showing stderr if not).
    #[track_caller]
    pub fn stderr_has(&self, needle: &str) {
        has(&self.stderr, needle);
    }

    /// Assert exit code `code` and that stderr contains each of `needles` (showing stderr if not).
    #[track_caller]
    pub fn fails(&self, code: i32, needles: &[&str]) {
        assert_eq!(self.code, code, "stderr:\n{}", self.stderr);
        for n in needles {
            self.stderr_has(n);
        }
    }
}

/// Assert that `text` contains `needle` (showing `text` if not).
#[track_caller]
pub fn has(text: &str, needle: &str) {
    assert!(text.contains(needle), "no `{needle}` in:\n{text}");
}

/// The workspace root (commands run there, so paths in outputs are relative).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Run `perllm` with `args` from the workspace root, without colour, at a fixed width.
pub fn perllm(args: &[&str]) -> Out {
    perllm_env(args, &[])
}

/// [`perllm`] with the command line written as one string, split at white space (for arguments
/// without spaces).
pub fn perllm_cmd(line: &str) -> Out {
    perllm(&words(line))
}

/// A command line written as one string, split at white space (for arguments without spaces).
pub fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// [`perllm`] with extra environment variables.
pub fn perllm_env(args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_perllm"));
    cmd.args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("TERM");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Out::from(cmd.output().expect("the perllm binary runs"))
}

/// `perllm COMMAND examples/paper.perllm --set SET EXTRA..`: a command on the paper scenario.
pub fn paper(command: &str, set: &str, extra: &[&str]) -> Out {
    let mut a = vec![command, "examples/paper.perllm", "--set", set];
    a.extend_from_slice(extra);
    perllm(&a)
}

/// [`paper`] with the extra arguments written as one string, split at white space.
pub fn paper_cmd(command: &str, set: &str, extra: &str) -> Out {
    perllm_cmd(&format!(
        "{command} examples/paper.perllm --set {set} {extra}"
    ))
}

/// `perllm run examples/paper-7b.perllm --set SHORT --policy POLICY --param P..`: a short run of
/// the 7B deployment with one policy and its parameters.
pub fn run_7b(policy: &str, params: &[&str]) -> Out {
    let mut a = vec![
        "run",
        "examples/paper-7b.perllm",
        "--set",
        SHORT,
        "--policy",
        policy,
    ];
    for p in params {
        a.extend(["--param", p]);
    }
    perllm(&a)
}

/// A short run of the paper scenario: 30 simulated seconds.
pub const SHORT: &str = "scenario.duration=30s";

/// The smallest study: `compare` of least-loaded on a short paper run, one seed, quiet.
pub const SMALL_COMPARE: [&str; 9] = [
    "compare",
    "examples/paper.perllm",
    "--set",
    SHORT,
    "--policies",
    "least-loaded",
    "--seeds",
    "1",
    "-q",
];

/// `run examples/paper.perllm --set SHORT --plugin <testkit> --policy testkit`, then `extra`:
/// the test-kit policy (which misbehaves as its `--param mode=...` says) on a short run.
pub fn testkit_run<'a>(kit: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "run",
        "examples/paper.perllm",
        "--set",
        SHORT,
        "--plugin",
        s(kit),
        "--policy",
        "testkit",
    ];
    a.extend_from_slice(extra);
    a
}

/// `perllm COMMAND examples/paper.perllm --set SET --plugin <testkit> --policies POLICIES EXTRA..`
pub fn kit_study(command: &str, set: &str, policies: &str, extra: &str) -> Out {
    let kit = testkit();
    paper_cmd(
        command,
        set,
        &format!("--plugin {} --policies {policies} {extra}", s(&kit)),
    )
}

/// Send `signal` (e.g. `TERM`) to `child` with kill(1), asserting that it was delivered.
pub fn signal(child: &std::process::Child, signal: &str) {
    let sent = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill -{signal} {} failed", child.id());
}

/// The string field `key` of every element of the JSON array `rows`.
pub fn strings<'a>(rows: &'a serde_json::Value, key: &str) -> Vec<&'a str> {
    let rows = rows.as_array().expect("a JSON array");
    rows.iter()
        .map(|r| r[key].as_str().expect("a string field"))
        .collect()
}

/// insta settings with filters for hashes, versions and temporary paths.
pub fn settings(tmp: Option<&Path>) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("../snapshots");
    s.set_prepend_module_to_snapshot(false);
    s.add_filter(r"sha256:[0-9a-f]{64}", "sha256:[HASH]");
    s.add_filter(&regex_escape(env!("CARGO_PKG_VERSION")), "[VERSION]");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_perllm")).parent().unwrap();
    s.add_filter(&regex_escape(&bin_dir.display().to_string()), "[BIN_DIR]");
    s.add_filter(&regex_escape(&root().display().to_string()), "[ROOT]");
    if let Some(t) = tmp {
        s.add_filter(&regex_escape(&t.display().to_string()), "[TMP]");
    }
    s
}

/// Escape regex metacharacters.
pub fn regex_escape(s: &str) -> String {
    let mut o = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            o.push('\\');
        }
        o.push(c);
    }
    o
}

/// A fresh temporary directory.
pub fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

/// `path` as a &str.
pub fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// The test-kit plugin library (a dev-dependency, so cargo builds it next to the test binary).
pub fn testkit() -> PathBuf {
    let name = format!(
        "{}perllm_plugin_testkit{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let exe = Path::new(env!("CARGO_BIN_EXE_perllm"));
    let p = exe.parent().unwrap().join("deps").join(name);
    assert!(p.exists(), "{} was not built", p.display());
    p
}
mod estimate_bias;
mod gpu_fidelity;

/// Runs `cmd` and asserts that it succeeded; `what` names it in the failure message, with its
/// stderr.
pub fn run_ok(cmd: &mut std::process::Command, what: &str) -> std::process::Output {
    let out = cmd.output().expect(what);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed:\n{err}");
    out
}
