//! The `perllm` command-line interface.
fn main() {}
