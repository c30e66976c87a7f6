//! perllm-core: the edge-cloud LLM serving model, the core traits, a deterministic discrete-event
//! simulator, energy accounting and metrics, and the PerLLM (CS-UCB) policy.
//!
//! This crate does no file or network I/O: scenarios come from [`spec::Scenario`] values, requests
//! from any [`workload::RequestSource`].

pub mod admission;
mod batching;
pub mod bound;
pub mod clairvoyant;
pub mod cost;
pub mod footprint;
pub mod names;
pub mod observer;
pub mod perllm;
pub mod policies;
pub mod policy;
pub mod report;
pub mod request;
pub mod rng;
pub mod sim;
pub mod simple;
pub mod spec;
pub mod suggest;
pub mod testbed;
pub mod true_costs;
pub mod validate;
pub mod workload;
pub mod world;

pub use cost::{CostModel, Estimate, LoadHint, Roofline, StepShape};
pub use observer::Observer;
pub use policy::{
    ClusterView, Decision, GroundTruth, Pending, Policy, PolicyError, PolicyStats, ServerState,
};
pub use report::{REQUEST_COLUMNS, Report};
pub use request::{Energy, Outcome, RejectReason, Request};
pub use sim::{SimError, run, run_synthetic};
pub use spec::{Nanos, Scenario};
pub use world::{ModelId, ScenarioError, Server, ServerId, SloId, World};
