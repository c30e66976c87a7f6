//! perllm-core integration tests.

mod sim;
