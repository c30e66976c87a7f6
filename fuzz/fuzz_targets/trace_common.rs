//! What the trace targets share: the harness (`perllm-core/tests/it/trace_fuzz/harness.rs`, which
//! `cargo test` runs on the same inputs) and the target body. Not a target itself.

#[path = "../../perllm-core/tests/it/trace_fuzz/harness.rs"]
#[allow(dead_code)]
pub mod harness;

/// A fuzz target that feeds any bytes to the harness as `harness::Target::$target`: byte 0 selects
/// the replay options, the rest is the file, read through every public reading path.
macro_rules! trace_target {
    ($target:ident) => {
        libfuzzer_sys::fuzz_target!(|data: &[u8]| {
            let target = trace_common::harness::Target::$target;
            if let Err(broken) = trace_common::harness::check_input(target, data) {
                panic!("{broken}");
            }
        });
    };
}
pub(crate) use trace_target;
