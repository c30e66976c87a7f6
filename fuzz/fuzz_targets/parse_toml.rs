//! Any bytes through the TOML reader, validator and lowering (checks in `scenario_common.rs`).
#![no_main]

mod scenario_common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    scenario_common::check("fuzz.toml", perllm_dsl::SourceKind::Toml, data);
});
