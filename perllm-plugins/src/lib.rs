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
//! | `cloud-first` | the cloud unless its predicted completion misses the deadline, then the edge server that meets it; else the fastest |
//! | `edf` | earliest deadline (or least slack) first, each to the server predicted to finish it first; rejects what it predicts to miss (its own admission control) |
//! | `filter-score` | llm-d-style: filter (hosts the model, link up, KV below a threshold), weighted scorers (queue, KV, TTFT, completion), highest score wins |
//! | `two-choices` | power of two choices: two random servers hosting the model (seeded), the one predicted to finish first |
//!
//! Every policy also takes `admission = reject_infeasible`, which perllm applies in front of it
//! (`perllm_core::admission`): the plugins never see it.
//!
//! Cost models: `roofline` (the core roofline model with its parameters as config) and
//! `profile-table` (measured prefill and decode throughput per model, hardware and batch size
//! from a CSV, interpolated).
//!
//! This crate does not depend on perllm-core: it sees only the ABI's views.

pub mod cost;
pub mod edf;
pub mod filter_score;
pub mod policies;
pub mod two_choices;
mod util;

pub use cost::{ProfileTable, Roofline};
pub use edf::Edf;
pub use filter_score::FilterScore;
pub use policies::{
    CloudFirst, CloudOnly, EdgeOnly, EpsilonGreedy, Greedy, LeastLoaded, Random, RoundRobin, Ucb1,
};
pub use two_choices::TwoChoices;

/// The bundled policies' names, in the order the library declares them (`export_plugins!` below).
pub const POLICY_NAMES: [&str; 12] = [
    "cloud-only",
    "edge-only",
    "random",
    "round-robin",
    "least-loaded",
    "greedy",
    "ucb1",
    "epsilon-greedy",
    "cloud-first",
    "edf",
    "filter-score",
    "two-choices",
];

/// The baselines of the PerLLM paper's comparison: the first eight bundled policies, which place
/// requests without admission control of their own.
pub const PAPER_BASELINES: &[&str] = POLICY_NAMES.split_at(8).0;

perllm_plugin_abi::export_plugins! {
    policies: [
        CloudOnly, EdgeOnly, Random, RoundRobin, LeastLoaded, Greedy, Ucb1, EpsilonGreedy, CloudFirst,
        Edf, FilterScore, TwoChoices,
    ],
    cost_models: [Roofline, ProfileTable],
}
