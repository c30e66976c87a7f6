//! perllm-gateway's integration tests: real engine processes (this test binary re-run as a child
//! that serves perllm-engine over HTTP on loopback), the gateway in process, real HTTP between.

mod child;
mod energy;
mod faults;
mod harness;
mod routing;
