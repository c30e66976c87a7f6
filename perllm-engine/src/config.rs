//! The engine's configuration: model shape, precision, threads, batching, and its validation.

use serde::{Deserialize, Serialize};

/// Weight and activation precision of the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// 32-bit float (the fastest on most CPUs: their matrix kernels are f32).
    F32,
    /// bfloat16.
    Bf16,
    /// IEEE half precision.
    F16,
}

impl Dtype {
    /// Bytes per element.
    pub fn bytes(self) -> u64 {
        match self {
            Dtype::F32 => 4,
            Dtype::Bf16 | Dtype::F16 => 2,
        }
    }
    /// The name used in configs and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::Bf16 => "bf16",
            Dtype::F16 => "f16",
        }
    }
    pub(crate) fn candle(self) -> candle_core::DType {
        match self {
            Dtype::F32 => candle_core::DType::F32,
            Dtype::Bf16 => candle_core::DType::BF16,
            Dtype::F16 => candle_core::DType::F16,
        }
    }
}

impl std::str::FromStr for Dtype {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "f32" => Ok(Dtype::F32),
            "bf16" => Ok(Dtype::Bf16),
            "f16" => Ok(Dtype::F16),
            o => Err(format!("dtype must be f32, bf16 or f16, got `{o}`")),
        }
    }
}

/// How a new prompt joins the running batch: the same three choices as the simulated engine,
/// under the same names (`batching = mixed | prefill_first | chunked` and, for `chunked`,
/// `chunk_tokens`; docs/batching.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Batching {
    /// Orca: every step admits what fits and prefills the new prompts whole in the same forward
    /// pass as one decode token of every running sequence.
    Mixed,
    /// vLLM's original scheduler: while admissible prompts wait, a step prefills only them and
    /// the running sequences' decodes pause; otherwise the step decodes.
    PrefillFirst,
    /// Sarathi-Serve / vLLM's current default: every step decodes one token of each running
    /// sequence and fills the rest of a per-step token budget with chunks of prompts; a waiting
    /// request is admitted only while the step has budget left for one of its prompt tokens.
    Chunked {
        /// Tokens per step (decode tokens plus prompt-chunk tokens); at least `max_batch`.
        /// (Calibration files of earlier versions call it `token_budget`.)
        #[serde(alias = "token_budget")]
        chunk_tokens: u32,
    },
}

/// The simulator's default chunk budget (`sim.chunk_tokens`), also the engine's.
pub const DEFAULT_CHUNK_TOKENS: u32 = 512;

impl Batching {
    /// The choice's name in scenarios and on the command line: `mixed`, `prefill_first`,
    /// `chunked`.
    pub fn name(&self) -> &'static str {
        match self {
            Batching::Mixed => "mixed",
            Batching::PrefillFirst => "prefill_first",
            Batching::Chunked { .. } => "chunked",
        }
    }
    /// A short label: `mixed`, `prefill_first`, `chunked (chunk_tokens = 512)`.
    pub fn label(&self) -> String {
        match self {
            Batching::Chunked { chunk_tokens } => {
                format!("chunked (chunk_tokens = {chunk_tokens})")
            }
            o => o.name().into(),
        }
    }
}

/// A Llama-shaped decoder-only model and the engine around it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// Transformer blocks.
    pub layers: u32,
    /// Hidden (model) size.
    pub hidden: u32,
    /// Query heads; `hidden` must be a multiple of it, and the head size even (rotary embedding).
    pub heads: u32,
    /// Key/value heads (grouped-query attention); `heads` must be a multiple of it.
    pub kv_heads: u32,
    /// MLP intermediate size (SwiGLU).
    pub intermediate: u32,
    /// Vocabulary size.
    pub vocab: u32,
    /// Precision of weights, activations and KV cache.
    pub dtype: Dtype,
    /// Threads of the engine's compute pool.
    pub threads: u32,
    /// Most sequences running at once.
    pub max_batch: u32,
    /// Longest sequence (prompt + output) a request may have; the KV cache holds at most
    /// `max_batch x max_seq_len` tokens.
    pub max_seq_len: u32,
    /// How new prompts join the running batch.
    pub batching: Batching,
    /// Seed of the random weights.
    pub seed: u64,
}

impl Default for EngineConfig {
    /// A ~1M-parameter model for tests.
    fn default() -> Self {
        EngineConfig::tiny()
    }
}

/// A configuration that cannot work; names the field.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("engine config: `{field}`: {message}")]
pub struct ConfigError {
    /// The offending field.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

impl EngineConfig {
    /// A tiny model for tests (about 0.2M parameters).
    pub fn tiny() -> Self {
        EngineConfig {
            layers: 2,
            hidden: 64,
            heads: 4,
            kv_heads: 2,
            intermediate: 128,
            vocab: 256,
            dtype: Dtype::F32,
            threads: 1,
            max_batch: 8,
            max_seq_len: 512,
            batching: Batching::Mixed,
            seed: 1,
        }
    }

    /// The model of the published measurements: about 42M parameters
    /// (8 layers, hidden 512, 8 heads, 4 KV heads, intermediate 1536, vocabulary 16000), f32.
    pub fn small() -> Self {
        EngineConfig {
            layers: 8,
            hidden: 512,
            heads: 8,
            kv_heads: 4,
            intermediate: 1536,
            vocab: 16000,
            dtype: Dtype::F32,
            threads: 2,
            max_batch: 16,
            max_seq_len: 1024,
            batching: Batching::Mixed,
            seed: 1,
        }
    }

    /// Size of one attention head.
    pub fn head_dim(&self) -> u32 {
        self.hidden / self.heads.max(1)
    }

    /// Parameter count (embedding, blocks, final norm and an untied output head).
    pub fn params(&self) -> u64 {
        let h = self.hidden as u64;
        let kv = self.kv_heads as u64 * self.head_dim() as u64;
        let i = self.intermediate as u64;
        let v = self.vocab as u64;
        let block = h * h * 2 + h * kv * 2 + 3 * h * i + 2 * h;
        v * h * 2 + self.layers as u64 * block + h
    }

    /// Parameters read by a forward pass per token of compute: everything but the embedding
    /// table (a lookup), i.e. what `2 x params` FLOPs per token counts.
    pub fn compute_params(&self) -> u64 {
        self.params() - self.vocab as u64 * self.hidden as u64
    }

    /// Bytes of weights.
    pub fn weight_bytes(&self) -> u64 {
        self.params() * self.dtype.bytes()
    }

    /// KV-cache bytes per token, all layers (keys and values).
    pub fn kv_bytes_per_token(&self) -> u64 {
        2 * self.layers as u64 * self.kv_heads as u64 * self.head_dim() as u64 * self.dtype.bytes()
    }

    /// Largest memory the engine may use: weights plus a full KV cache.
    pub fn max_memory_bytes(&self) -> u64 {
        self.weight_bytes().saturating_add(
            (self.max_batch as u64)
                .saturating_mul(self.max_seq_len as u64)
                .saturating_mul(self.kv_bytes_per_token()),
        )
    }

    /// Check the configuration without allocating anything; `available_memory` is what the
    /// machine can give (None: not checked).
    pub fn validate(&self, available_memory: Option<u64>) -> Result<(), ConfigError> {
        let err = |field, message: String| Err(ConfigError { field, message });
        for (field, v) in [
            ("layers", self.layers),
            ("hidden", self.hidden),
            ("heads", self.heads),
            ("kv_heads", self.kv_heads),
            ("intermediate", self.intermediate),
            ("vocab", self.vocab),
            ("threads", self.threads),
            ("max_batch", self.max_batch),
            ("max_seq_len", self.max_seq_len),
        ] {
            if v == 0 {
                return err(field, "must be at least 1".into());
            }
        }
        if !self.hidden.is_multiple_of(self.heads) {
            return err(
                "hidden",
                format!("{} is not divisible by heads = {}", self.hidden, self.heads),
            );
        }
        if !self.heads.is_multiple_of(self.kv_heads) {
            return err(
                "kv_heads",
                format!(
                    "heads = {} is not a multiple of kv_heads = {}",
                    self.heads, self.kv_heads
                ),
            );
        }
        if !self.head_dim().is_multiple_of(2) {
            return err(
                "heads",
                format!(
                    "the head size hidden / heads = {} must be even (rotary embedding)",
                    self.head_dim()
                ),
            );
        }
        if let Batching::Chunked { chunk_tokens } = self.batching
            && chunk_tokens < self.max_batch
        {
            return err(
                "chunk_tokens",
                format!(
                    "{chunk_tokens} is less than max_batch = {}: every running sequence takes one token of each step, and the budget must leave room for prompt tokens (the simulator's rule too)",
                    self.max_batch
                ),
            );
        }
        if let Some(avail) = available_memory {
            let need = self.max_memory_bytes();
            if need > avail {
                return err(
                    "max_batch",
                    format!(
                        "weights ({:.2} GiB) plus a full KV cache of max_batch x max_seq_len = {} x {} tokens ({:.2} GiB) need more than the machine's available memory ({:.2} GiB): lower max_batch, max_seq_len or the model size",
                        gib(self.weight_bytes()),
                        self.max_batch,
                        self.max_seq_len,
                        gib(need - self.weight_bytes()),
                        gib(avail)
                    ),
                );
            }
        }
        Ok(())
    }
}

fn gib(b: u64) -> f64 {
    b as f64 / (1u64 << 30) as f64
}

/// The machine's available memory (`MemAvailable` in /proc/meminfo), if readable.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
