//! Any bytes as a perllm plain CSV trace: byte 0 selects the replay options, the rest is the
//! file, read through every public reading path. The checks are in the shared harness,
//! `perllm-core/tests/it/trace_fuzz/harness.rs`, which `cargo test` runs on the same inputs.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../perllm-core/tests/it/trace_fuzz/harness.rs"]
#[allow(dead_code)]
mod harness;

fuzz_target!(|data: &[u8]| {
    if let Err(broken) = harness::check_input(harness::Target::Csv, data) {
        panic!("{broken}");
    }
});
