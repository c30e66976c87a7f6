//! The command line of `compare`, `sweep` and `merge` (issue 21): shard specs, seed ranges,
//! `--set` values, `--jobs`, and results files given to `merge`.
//!
//! Input: if it starts with `M`, the rest is results files separated by NUL bytes, merged as
//! `perllm merge` does (`perllm_cli::fuzzing::merge_texts`); otherwise it is a command line, one
//! argument per line (e.g. `compare\ns.perllm\n--shard\n1/3`), checked as `perllm` does before
//! loading anything (`perllm_cli::fuzzing::check_args`). Both assert their properties (see
//! that module); a panic is a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| perllm_cli::fuzzing::fuzz_one(data));
