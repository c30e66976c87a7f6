//! perllm-core integration tests.

mod perllm;
mod sim;
mod workload;
