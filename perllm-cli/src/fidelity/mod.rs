//! Fidelity: measure the real engine (`profile`), fit the analytic model to measurements
//! (`calibrate`), and compare the simulator with the real engine serving the same workload
//! (`validate`). docs/fidelity.md describes the method and the published results.

pub mod calibrate;
pub mod fit;
pub mod profile;
pub mod reqlog;
pub mod rows;
pub mod simulate;
pub mod validate;

use crate::error::{CliError, Result};
use clap::Args;
use perllm_engine::{Batching, DEFAULT_CHUNK_TOKENS, Dtype, EngineConfig};

/// The engine's configuration on the command line: a preset, then any field overridden.
#[derive(Debug, Args, Clone)]
pub struct EngineArgs {
    /// Starting configuration: `tiny` (0.2M parameters, tests) or `small` (42M, the published
    /// measurements).
    #[arg(long, value_name = "NAME", default_value = "small")]
    pub preset: String,
    /// Transformer blocks.
    #[arg(long)]
    pub layers: Option<u32>,
    /// Hidden size.
    #[arg(long)]
    pub hidden: Option<u32>,
    /// Query heads.
    #[arg(long)]
    pub heads: Option<u32>,
    /// Key/value heads.
    #[arg(long)]
    pub kv_heads: Option<u32>,
    /// MLP intermediate size.
    #[arg(long)]
    pub intermediate: Option<u32>,
    /// Vocabulary size.
    #[arg(long)]
    pub vocab: Option<u32>,
    /// Precision: f32, bf16 or f16.
    #[arg(long)]
    pub dtype: Option<Dtype>,
    /// Compute threads.
    #[arg(long)]
    pub threads: Option<u32>,
    /// Most sequences in a batch.
    #[arg(long)]
    pub max_batch: Option<u32>,
    /// Longest sequence (prompt + output).
    #[arg(long)]
    pub max_seq_len: Option<u32>,
    /// How prompts join the batch: mixed, prefill_first or chunked (the scenario language's
    /// `batching`).
    #[arg(long, value_name = "KIND", value_parser = parse_batching_kind)]
    pub batching: Option<BatchingKind>,
    /// Tokens per step with `--batching chunked` (the scenario language's `chunk_tokens`;
    /// default 512, at least max_batch).
    #[arg(long, value_name = "N")]
    pub chunk_tokens: Option<u32>,
}

/// What an engine step's time is measured by (`--clock`).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Clock {
    /// Wall time: what a user of the engine waits (the published measurements).
    #[default]
    Wall,
    /// The engine process's CPU time (every thread's): a step costs the same whatever other
    /// processes take of the cores, so a shared machine's load does not stretch it (their use
    /// of caches and memory bandwidth still shows). `validate` then runs the engine on a
    /// virtual clock: each step advances it by its CPU time and requests join at their
    /// arrival on that clock. For tests and loaded machines; not a user's waiting time.
    Cpu,
}

impl Clock {
    /// `wall` or `cpu`.
    pub fn as_str(self) -> &'static str {
        match self {
            Clock::Wall => "wall",
            Clock::Cpu => "cpu",
        }
    }
    /// Parse the word of a file's `# clock WORD` line; the error says what is accepted.
    pub fn parse(word: &str) -> std::result::Result<Clock, String> {
        match word.trim() {
            "wall" => Ok(Clock::Wall),
            "cpu" => Ok(Clock::Cpu),
            w => Err(format!("`# clock {w}`: the clock is `wall` or `cpu`")),
        }
    }
}

/// `--batching`: the scenario language's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchingKind {
    /// `mixed`.
    Mixed,
    /// `prefill_first`.
    PrefillFirst,
    /// `chunked`.
    Chunked,
}

/// Parse `--batching`, pointing the old spelling `chunked:N` (and the aliases the engine once
/// took) to the one spelling the scenario language and every command share.
pub fn parse_batching_kind(s: &str) -> std::result::Result<BatchingKind, String> {
    match s {
        "mixed" => Ok(BatchingKind::Mixed),
        "prefill_first" => Ok(BatchingKind::PrefillFirst),
        "chunked" => Ok(BatchingKind::Chunked),
        "orca" => Err("`orca` is no longer accepted: write `mixed`".into()),
        "prefill-first" => {
            Err("write `prefill_first` (with an underscore, as in scenarios)".into())
        }
        o => match o.strip_prefix("chunked:") {
            Some(n) => Err(format!(
                "`chunked:{n}` is the old spelling: write `--batching chunked --chunk-tokens {n}` (a scenario's `batching = chunked` and `chunk_tokens = {n}`)"
            )),
            None => Err(format!(
                "`{o}` is not a batching choice: use mixed, prefill_first or chunked (with --chunk-tokens N)"
            )),
        },
    }
}

/// The engine's batching from `--batching` and `--chunk-tokens` over `base` (the preset's or a
/// calibration's); the same rules as a scenario's server (docs/batching.md).
pub fn batching_of(
    kind: Option<BatchingKind>,
    chunk_tokens: Option<u32>,
    base: Batching,
) -> Result<Batching> {
    let kind = kind.unwrap_or(match base {
        Batching::Mixed => BatchingKind::Mixed,
        Batching::PrefillFirst => BatchingKind::PrefillFirst,
        Batching::Chunked { .. } => BatchingKind::Chunked,
    });
    match (kind, chunk_tokens) {
        (BatchingKind::Chunked, n) => {
            let chunk_tokens = n.unwrap_or(match base {
                Batching::Chunked { chunk_tokens } => chunk_tokens,
                _ => DEFAULT_CHUNK_TOKENS,
            });
            Ok(Batching::Chunked { chunk_tokens })
        }
        (_, Some(_)) => Err(CliError::input(
            "--chunk-tokens applies to `--batching chunked` only (as `chunk_tokens` on a server)",
        )),
        (BatchingKind::Mixed, None) => Ok(Batching::Mixed),
        (BatchingKind::PrefillFirst, None) => Ok(Batching::PrefillFirst),
    }
}

impl EngineArgs {
    /// The configuration these arguments describe (validated when the engine is built).
    pub fn config(&self) -> Result<EngineConfig> {
        let mut c = match self.preset.as_str() {
            "tiny" => EngineConfig::tiny(),
            "small" => EngineConfig::small(),
            o => {
                return Err(CliError::input(format!(
                    "unknown engine preset `{o}`: use `tiny` or `small`"
                )));
            }
        };
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { c.$f = v; } )* };
        }
        set!(
            layers,
            hidden,
            heads,
            kv_heads,
            intermediate,
            vocab,
            dtype,
            threads,
            max_batch,
            max_seq_len
        );
        c.batching = batching_of(self.batching, self.chunk_tokens, c.batching)?;
        Ok(c)
    }
}

/// Build the engine, mapping a bad configuration to an input error naming the field.
pub fn build_engine(cfg: EngineConfig) -> Result<perllm_engine::Engine> {
    perllm_engine::Engine::new(cfg).map_err(|e| match e {
        perllm_engine::EngineError::Config(c) => CliError::input(c.to_string()),
        o => CliError::run(o.to_string()),
    })
}

/// Median of a sample (sorts it).
pub fn median(v: &mut [f64]) -> f64 {
    quantile(v, 0.5)
}

/// Quantile `q` of a sample by linear interpolation (sorts it); NaN if empty.
pub fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let x = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (i, f) = (x.floor() as usize, x - x.floor());
    if i + 1 < v.len() {
        v[i] * (1.0 - f) + v[i + 1] * f
    } else {
        v[i]
    }
}

/// Read a text input (a regular file, at most 64 MiB), naming it in errors.
pub fn read_text(path: &std::path::Path, what: &str) -> Result<String> {
    let bytes = perllm_dsl::files::read(path, what, perllm_dsl::files::MAX_PROFILE_BYTES)
        .map_err(CliError::input)?;
    String::from_utf8(bytes).map_err(|_| {
        CliError::input(format!(
            "`{}` is not a {what} (it is not UTF-8 text)",
            path.display()
        ))
    })
}
