//! Any bytes as a bandwidth time series CSV (`read_bandwidth_csv`), through the shared trace harness (see `trace_common.rs`).
#![no_main]

mod trace_common;

trace_common::trace_target!(Bandwidth);
