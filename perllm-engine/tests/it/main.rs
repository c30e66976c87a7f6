//! perllm-engine's integration tests (one binary).

mod batching;
mod correctness;
mod machine;
