//! The command line's checks, callable without running anything: what the `cli_args` fuzz target
//! (`fuzz/fuzz_targets/cli_args.rs`) and its stable companion drive.
//!
//! [`check_args`] parses a command line as `perllm` does and, for `compare` and `sweep`, runs
//! every check that needs no scenario: the seed list, the `--set` settings (sweep values, repeated
//! keys), the grid size, `--shard` against it and the `--jobs` cap. [`merge_texts`] reads results
//! files from memory and merges them as `perllm merge` does. Neither reads or writes a file nor
//! runs a simulation; both must return (never panic, never allocate beyond their input's size).

pub use crate::commands::grid::GridPlan;
pub use crate::util::Shard;

use crate::cli::{Cli, Command, GridArgs};
use crate::results::Results;
use crate::util::{Setting, parse_seeds};
use clap::Parser;

/// One fuzz input, as the `cli_args` target reads it: if it starts with `M`, the rest is results
/// files separated by NUL bytes (at most 16), merged by [`merge_texts`]; otherwise a command
/// line, one argument per line (at most 64), checked by [`check_args`]. Errors are expected;
/// a panic is a bug.
pub fn fuzz_one(data: &[u8]) {
    if let Some(rest) = data.strip_prefix(b"M") {
        let parts: Vec<&[u8]> = rest.split(|b| *b == 0).take(16).collect();
        let _ = merge_texts(&parts);
    } else {
        let s = String::from_utf8_lossy(data);
        let args: Vec<String> = s.split('\n').take(64).map(str::to_string).collect();
        let _ = check_args(&args);
    }
}

/// What [`check_args`] found for a valid grid command.
#[derive(Clone, Debug, PartialEq)]
pub struct ArgsOutcome {
    /// The plan of a `compare` or `sweep` (`None` for other commands).
    pub plan: Option<GridPlan>,
}

/// Parse `args` (without the program name) as a `perllm` command line and run the checks of
/// `compare`, `sweep` and `merge` that need no file. An error is the message the user would see.
///
/// Properties the fuzz target asserts on success: the plan runs at most
/// [`crate::commands::grid::MAX_RUNS_PER_PROCESS`] runs with at least one worker and at most as
/// many workers as runs; the shard's run list has `mine` entries (checked when small).
pub fn check_args(args: &[String]) -> Result<ArgsOutcome, String> {
    let argv = std::iter::once("perllm".to_string()).chain(args.iter().cloned());
    let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
    let plan = match cli.command {
        Command::Compare(a) => {
            crate::util::check_repeated("--set", &a.set).map_err(|e| e.message)?;
            Some(plan(&a.grid, &[], 2)?)
        }
        Command::Run(a) => {
            crate::util::check_repeated("--set", &a.set).map_err(|e| e.message)?;
            crate::util::check_repeated("--param", &a.params).map_err(|e| e.message)?;
            None
        }
        Command::Sweep(a) => {
            crate::commands::grid::check_sweep_settings(&a.set).map_err(|e| e.message)?;
            Some(plan(&a.grid, &a.set, 2)?)
        }
        _ => None,
    };
    if let Some(p) = &plan {
        assert!(p.mine >= 1 && p.mine <= crate::commands::grid::MAX_RUNS_PER_PROCESS);
        assert!(p.jobs >= 1 && p.jobs as u64 <= p.mine.max(1));
        assert!(p.shard.index >= 1 && p.shard.index <= p.shard.count && p.shard.count <= p.total);
        if p.mine <= 10_000 {
            let runs: Vec<u64> = p.shard.runs(p.total).collect();
            assert_eq!(runs.len() as u64, p.mine);
            assert!(runs.iter().all(|&r| r < p.total && p.shard.owns(r)));
        }
    }
    Ok(ArgsOutcome { plan })
}

fn plan(g: &GridArgs, settings: &[Setting], cores: usize) -> Result<GridPlan, String> {
    let seeds = parse_seeds(&g.seeds).map_err(|e| e.message)?;
    let policies = if g.policies.is_empty() {
        // Every available policy: the built-ins and the bundled plugins (about ten).
        10
    } else {
        // `a,b{k=1,j=2}` is two policies: split as `compare` does, at the commas outside braces.
        crate::commands::grid::split_policies(&g.policies)
            .map_err(|e| e.message)?
            .len()
    };
    GridPlan::new(
        "grid",
        seeds.len(),
        policies,
        settings,
        g.shard,
        g.jobs,
        cores,
    )
    .map_err(|e| e.message)
}

/// Merge results files given as bytes (named `part1.json`, `part2.json`, ...) as `perllm merge`
/// does; the merged document as JSON.
///
/// Properties asserted on success: the merged document has no shard, one row per run of the
/// grid in grid order, and reads back as a results file.
pub fn merge_texts(parts: &[&[u8]]) -> Result<String, String> {
    let mut read = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let name = format!("part{}.json", i + 1);
        let text = std::str::from_utf8(p).map_err(|e| format!("`{name}` is not UTF-8: {e}"))?;
        read.push((
            name.clone(),
            Results::from_text(text, &name).map_err(|e| e.message)?,
        ));
    }
    let merged = crate::commands::merge::merge_parts(read).map_err(|e| e.message)?;
    assert!(merged.shard.is_none());
    assert_eq!(merged.rows.len() as u64, merged.runs);
    assert!(
        merged
            .rows
            .iter()
            .enumerate()
            .all(|(i, r)| r.run == i as u64)
    );
    let json = merged.to_json();
    let back = Results::from_text(&json, "merged.json").expect("the merged document reads back");
    assert_eq!(back.rows.len(), merged.rows.len());
    Ok(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split('\n').map(str::to_string).collect()
    }

    #[test]
    fn grid_commands_are_checked_without_files() {
        let ok = check_args(&args(
            "compare\nnone.perllm\n--seeds\n1..10\n--policies\na,b",
        ))
        .unwrap();
        let p = ok.plan.unwrap();
        assert_eq!((p.total, p.mine, p.jobs), (20, 20, 2));
        let e = check_args(&args(
            "compare\nx\n--shard\n1/21\n--seeds\n1..10\n--policies\na,b",
        ))
        .unwrap_err();
        assert!(e.contains("use at most 20 shards"), "{e}");
        // Policy parameters: the commas inside braces do not separate policies.
        let p = check_args(&args(
            "compare\nx\n--seeds\n1..10\n--policies\nucb1{exploration=0,window=5},b",
        ))
        .unwrap()
        .plan
        .unwrap();
        assert_eq!(p.total, 20);
        let e = check_args(&args("compare\nx\n--policies\na{k=1")).unwrap_err();
        assert!(e.contains("without its"), "{e}");
        let e = check_args(&args("sweep\nx\n--set\na=1,2\n--set\na=3")).unwrap_err();
        assert!(e.contains("given twice"), "{e}");
        let e = check_args(&args("compare\nx\n--jobs\n0")).unwrap_err();
        assert!(e.contains("at least 1"), "{e}");
        assert!(
            check_args(&args("merge\n--out\nm.json\np1"))
                .unwrap()
                .plan
                .is_none()
        );
    }

    /// The stable companion of the fuzz target: every committed input (the seeds and the
    /// minimized corpus of the recorded runs, `tests/fixtures/cli-args-fuzz/`) replays without a
    /// panic.
    #[test]
    fn fuzz_corpus_replays() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cli-args-fuzz");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let data = std::fs::read(e.unwrap().path()).unwrap();
            fuzz_one(&data);
            n += 1;
        }
        assert!(n >= 230, "{n} inputs");
    }

    #[test]
    fn merge_texts_rejects_garbage_and_non_shards() {
        assert!(merge_texts(&[b"{"]).unwrap_err().contains("not JSON"));
        assert!(merge_texts(&[b"\xff"]).unwrap_err().contains("not UTF-8"));
        assert!(merge_texts(&[]).unwrap_err().contains("nothing to merge"));
    }
}
