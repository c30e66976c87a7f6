//! Integration tests of perllm-dsl.

mod common;
mod fast_parse;
mod fixtures;
mod fuzz;
mod overrides;
mod paper;
mod robust;
mod series;
