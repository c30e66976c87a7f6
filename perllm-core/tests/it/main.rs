//! perllm-core integration tests.

mod perllm;
mod props;
mod sim;
mod sim_checker;
mod workload;
