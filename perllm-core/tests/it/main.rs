//! perllm-core integration tests.

mod batching;
mod bound;
mod degenerate;
mod energy;
mod memory_limit;
mod mutate;
mod perllm;
mod props;
mod robust;
mod sim;
mod sim_checker;
mod trace_fuzz;
mod workload;
