//! Any bytes through the `.perllm` parser, validator and lowering (checks in `scenario_common.rs`).
#![no_main]

mod scenario_common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    scenario_common::check("fuzz.perllm", perllm_dsl::SourceKind::Perllm, data);
});
