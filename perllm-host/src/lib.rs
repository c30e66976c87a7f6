//! Loads perllm plugins through the C ABI of `perllm-plugin-abi` and wraps them as core
//! policies and cost models.
//!
//! - [`Registry`] finds plugin libraries (`--plugin PATH`, `PERLLM_PLUGIN_PATH`, the bundled
//!   library next to the executable), lists what they provide, and creates policies and cost
//!   models by name, built-ins first.
//! - [`ForeignPolicy`] and [`ForeignCostModel`] implement the core [`perllm_core::Policy`] and
//!   [`perllm_core::CostModel`] traits, so a loaded plugin runs exactly like a built-in one. They
//!   validate everything a plugin returns, poison a plugin that panicked, and record per-call
//!   wall-clock time against a budget.
//! - Every error is a [`HostError`] naming the plugin, the library path and the symbol or entry
//!   point.
//!
//! - [`isolate`]: [`IsolatedPolicy`] runs a plugin policy in a worker process, so that a crash
//!   or a hang ends one run with a named error; without isolation, the crash reporter still says
//!   which plugin and call were running when the process died.
//!
//! The `unsafe` code of the host is confined to the modules that call into libraries
//! (`loader`, `convert`, `policy`, `cost`, `inplace`) and the process-level shims (`crash`: signal
//! handlers; `isolate`: `poll`, `dup`), each block with a `// SAFETY:` comment.

#[allow(unsafe_code)]
mod convert;
#[allow(unsafe_code)]
mod cost;
#[allow(unsafe_code)]
mod crash;
mod error;
mod health;
#[allow(unsafe_code)]
mod inplace;
pub mod isolate;
#[allow(unsafe_code)]
mod loader;
#[allow(unsafe_code)]
mod policy;
mod registry;
mod views;

pub use cost::ForeignCostModel;
pub use error::HostError;
pub use isolate::{DEFAULT_CALL_TIMEOUT, IsolateMode, IsolatedPolicy, Isolation};
pub use loader::Symbols;
pub use policy::{CallTiming, DEFAULT_CALL_BUDGET, ForeignPolicy, WALLCLOCK_PREFIX};
pub use registry::{
    BUNDLED_PREFIX, PLUGIN_PATH_VAR, PLUGIN_PREFIX, PluginInfo, PluginKind, Registry, RunCheck,
    bundled_candidates, bundled_library_name,
};
