//! perllm-engine: a real CPU transformer engine with iteration-level continuous batching.
//!
//! A decoder-only, Llama-shaped model (RMSNorm, rotary embeddings, grouped-query attention,
//! SwiGLU MLP, untied output head) with random weights (timing depends on shapes, not on weight
//! values; nothing is downloaded), built on candle's CPU backend. Each sequence has its own KV
//! cache (a pool of `max_batch` caches of `max_seq_len` tokens, allocated up front). One
//! [`Engine::step`] is ONE forward pass over every sequence the batching choice puts in the step,
//! each at its own position: every projection and MLP multiplies the packed tokens of all
//! sequences at once; attention is computed per sequence over its own cache (Orca's selective
//! batching: no padding to the longest context; prompts with their causal mask).
//!
//! ```
//! use perllm_engine::{Engine, EngineConfig, Request};
//! let mut e = Engine::new(EngineConfig::tiny()).unwrap();
//! e.submit(Request { id: 7, prompt: vec![1, 2, 3], max_tokens: 4 }).unwrap();
//! let mut tokens = 0;
//! while let Some(step) = e.step().unwrap() {
//!     tokens += step.events.len();
//! }
//! assert_eq!(tokens, 4);
//! ```
//!
//! The engine is driven by one thread through [`Engine::step`]; a server owns it on a dedicated
//! thread, submits requests as they arrive and streams each step's [`TokenEvent`]s.

mod config;
mod engine;
mod machine;
mod model;

pub use config::{
    Batching, ConfigError, DEFAULT_CHUNK_TOKENS, Dtype, EngineConfig, available_memory,
};
pub use engine::{
    Engine, EngineError, Request, StepReport, StepShape, Timing, TokenEvent, cpu_time,
};
pub use machine::{Machine, Rapl};
