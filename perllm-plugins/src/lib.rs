//! The bundled perllm baseline policies and hardware cost models, as one `cdylib` loaded by the
//! host at run time through the C ABI of `perllm-plugin-abi`.
//!
//! Policies (the comparison set for the PerLLM policy):
//!
//! | name | decision |
//! |---|---|
//! | `cloud-only` | the least-loaded cloud server hosting the model, else reject |
//! | `edge-only` | the least-loaded edge server hosting the model, else reject |
//! | `random` | a uniformly random server hosting the model (seeded) |
//! | `round-robin` | the servers hosting the model in turn |
//! | `least-loaded` | the server hosting the model with the fewest requests per batch slot |
//! | `greedy` | the lowest estimated weighted energy among servers whose estimated latency meets the deadline, else the fastest |
//! | `ucb1` | plain UCB1 over (model, server) arms on observed latency, no constraints |
//! | `epsilon-greedy` | the best observed (model, server) arm, a random one with probability epsilon |
//! | `cloud-first` | the cloud unless its predicted completion misses the deadline, then the edge server that meets it; else the fastest, or rejected with `admission = "reject_infeasible"` |
//!
//! Cost models: `roofline` (the core roofline model with its parameters as config) and
//! `profile-table` (measured prefill and decode throughput per model, hardware and batch size
//! from a CSV, interpolated).
//!
//! This crate does not depend on perllm-core: it sees only the ABI's views.

pub mod cost;
pub mod policies;
mod util;

pub use cost::{ProfileTable, Roofline};
pub use policies::{
    CloudFirst, CloudOnly, EdgeOnly, EpsilonGreedy, Greedy, LeastLoaded, Random, RoundRobin, Ucb1,
};

perllm_plugin_abi::export_plugins! {
    policies: [CloudOnly, EdgeOnly, Random, RoundRobin, LeastLoaded, Greedy, Ucb1, EpsilonGreedy, CloudFirst],
    cost_models: [Roofline, ProfileTable],
}
