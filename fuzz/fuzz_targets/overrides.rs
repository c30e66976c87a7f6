//! `--set key=value` overrides applied to the paper scenario: the first line of the input is the
//! key, the rest the value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use perllm_dsl::{LoadOptions, SourceKind, load_str_with};

const PAPER: &str = include_str!("../../examples/paper.perllm");

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let (k, v) = s.split_once('\n').unwrap_or((&s, ""));
    let opts = LoadOptions { base_dir: None, overrides: vec![(k.to_string(), v.to_string())] };
    match load_str_with("paper.perllm", PAPER, SourceKind::Perllm, &opts) {
        Ok(l) => assert!(l.scenario.build().is_ok()),
        Err(f) => {
            assert!(f.errors().count() > 0);
            let _ = f.render(false);
        }
    }
});
