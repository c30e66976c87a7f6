//! Any bytes as a Azure LLM inference trace (2023 and 2024 timestamp styles), through the shared trace harness (see `trace_common.rs`).
#![no_main]

mod trace_common;

trace_common::trace_target!(Azure);
