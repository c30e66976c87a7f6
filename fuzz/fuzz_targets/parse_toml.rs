//! Any bytes through the TOML reader, validator and lowering: no panic; a failure has an
//! error and renders; a success is a scenario perllm-core accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use perllm_dsl::{SourceKind, load_str};

fuzz_target!(|data: &[u8]| {
    let src = String::from_utf8_lossy(data);
    match load_str("fuzz.toml", &src, SourceKind::Toml) {
        Ok(l) => assert!(l.scenario.build().is_ok()),
        Err(f) => {
            assert!(f.errors().count() > 0);
            let _ = f.render(false);
        }
    }
});
