//! Integration tests of perllm-dsl.

mod common;
mod paper;
