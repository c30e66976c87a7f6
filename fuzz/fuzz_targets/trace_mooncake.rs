//! Any bytes as a Mooncake JSONL trace, through the shared trace harness (see `trace_common.rs`).
#![no_main]

mod trace_common;

trace_common::trace_target!(Mooncake);
