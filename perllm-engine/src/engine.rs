//! The engine: a request queue, a pool of per-sequence KV caches, and the iteration-level
//! scheduler. Each [`Engine::step`] is one batched forward pass over every running sequence.

use crate::config::{Batching, ConfigError, EngineConfig, available_memory};
use crate::model::{KvCache, Model, Segment};
use candle_core::{D, Device};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Why the engine refused something or failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The configuration cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A request the engine cannot serve.
    #[error("request {id}: {message}")]
    Request {
        /// The request's id.
        id: u64,
        /// What is wrong.
        message: String,
    },
    /// The tensor library failed.
    #[error("engine: {0}")]
    Compute(#[from] candle_core::Error),
    /// The thread pool could not be built.
    #[error("engine: cannot start {threads} threads: {message}")]
    Threads {
        /// Threads asked for.
        threads: u32,
        /// The error.
        message: String,
    },
}

/// A generation request: the prompt's token ids and how many tokens to generate (greedy; the
/// engine ignores end-of-sequence, so a request always produces exactly `max_tokens`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Caller's id, echoed in the events.
    pub id: u64,
    /// Prompt token ids (each below the vocabulary size), at least one.
    pub prompt: Vec<u32>,
    /// Tokens to generate, at least one.
    pub max_tokens: u32,
}

/// One token produced by a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenEvent {
    /// The request.
    pub id: u64,
    /// The token id.
    pub token: u32,
    /// Its index in the output (0: the first token, produced by the step that ends the prefill).
    pub index: u32,
    /// True for the request's last token: it has left the engine.
    pub finished: bool,
}

/// What one step computed, in the simulator's terms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepShape {
    /// Prompt tokens processed (whole prompts or chunks).
    pub prefill_tokens: u64,
    /// Sequences whose prompt (or a chunk of it) was processed.
    pub prefill_seqs: u32,
    /// Sequences that decoded one token.
    pub decode_seqs: u32,
    /// Tokens in the decoding sequences' KV caches, the new one included (what attention reads).
    pub kv_tokens: u64,
}

/// The result of one step.
#[derive(Clone, Debug, PartialEq)]
pub struct StepReport {
    /// Tokens produced, in the order of the running sequences.
    pub events: Vec<TokenEvent>,
    /// The step's shape.
    pub shape: StepShape,
    /// Wall time of the forward pass and sampling.
    pub elapsed: Duration,
    /// CPU time the process spent in them (every thread's): what the step costs whatever other
    /// processes take of the machine ([`cpu_time`]).
    pub cpu: Duration,
}

/// Wall and CPU time of one forward pass ([`Engine::probe`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Wall time.
    pub wall: Duration,
    /// CPU time of the process (every thread's).
    pub cpu: Duration,
}

/// CPU time used so far by this process, all threads (`CLOCK_PROCESS_CPUTIME_ID`). The engine's
/// steps measured by it do not stretch when other processes share the cores (their use of the
/// caches and memory bandwidth still shows).
pub fn cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(
        t.tv_sec.max(0) as u64,
        t.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

struct Seq {
    id: u64,
    prompt: Vec<u32>,
    max_tokens: u32,
    /// Prompt tokens already in the cache.
    prefilled: usize,
    generated: u32,
    last: u32,
    slot: usize,
}

/// A CPU transformer engine with continuous batching. Not `Sync`: one thread drives it (an
/// async server owns it on a dedicated thread, passes requests in over a channel and forwards
/// each step's [`TokenEvent`]s to the waiting clients).
pub struct Engine {
    cfg: EngineConfig,
    model: Model,
    pool: rayon::ThreadPool,
    caches: Vec<KvCache>,
    free_slots: Vec<usize>,
    waiting: VecDeque<Request>,
    running: Vec<Seq>,
    steps: u64,
}

impl Engine {
    /// Validate `cfg` (against the machine's available memory), then allocate the random weights
    /// and a KV cache of `max_seq_len` tokens for each of `max_batch` sequences.
    pub fn new(cfg: EngineConfig) -> Result<Engine, EngineError> {
        cfg.validate(available_memory())?;
        let dev = Device::Cpu;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(cfg.threads as usize)
            .thread_name(|i| format!("perllm-engine-{i}"))
            .build()
            .map_err(|e| EngineError::Threads {
                threads: cfg.threads,
                message: e.to_string(),
            })?;
        let model = pool.install(|| Model::new(&cfg, &dev))?;
        let caches = (0..cfg.max_batch)
            .map(|_| KvCache::new(&cfg, cfg.max_seq_len as usize, &dev))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Engine {
            free_slots: (0..cfg.max_batch as usize).rev().collect(),
            cfg,
            model,
            pool,
            caches,
            waiting: VecDeque::new(),
            running: Vec::new(),
            steps: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Queue a request (FIFO); it joins the batch at a later step.
    pub fn submit(&mut self, req: Request) -> Result<(), EngineError> {
        let bad = |message: String| {
            Err(EngineError::Request {
                id: req.id,
                message,
            })
        };
        if req.prompt.is_empty() {
            return bad("the prompt is empty".into());
        }
        if req.max_tokens == 0 {
            return bad("max_tokens must be at least 1".into());
        }
        let len = req.prompt.len() as u64 + req.max_tokens as u64;
        if len > self.cfg.max_seq_len as u64 {
            return bad(format!(
                "prompt ({}) + max_tokens ({}) exceeds max_seq_len = {}",
                req.prompt.len(),
                req.max_tokens,
                self.cfg.max_seq_len
            ));
        }
        if let Some(t) = req.prompt.iter().find(|&&t| t >= self.cfg.vocab) {
            return bad(format!(
                "token id {t} is outside the vocabulary (size {})",
                self.cfg.vocab
            ));
        }
        self.waiting.push_back(req);
        Ok(())
    }

    /// Drop a request, waiting or running (a client went away); true if it was there.
    pub fn cancel(&mut self, id: u64) -> bool {
        if let Some(i) = self.waiting.iter().position(|r| r.id == id) {
            self.waiting.remove(i);
            return true;
        }
        if let Some(i) = self.running.iter().position(|s| s.id == id) {
            let s = self.running.remove(i);
            self.free_slots.push(s.slot);
            return true;
        }
        false
    }

    /// Requests waiting for admission.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Sequences in the batch.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// True when nothing waits or runs.
    pub fn is_idle(&self) -> bool {
        self.waiting.is_empty() && self.running.is_empty()
    }

    /// Steps run so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Admit waiting requests (FIFO) while a batch slot is free. With `chunked`, as in the
    /// simulated engine, only while this step has prompt budget left: the budget less one token
    /// per decoding sequence and the prompt tokens the sequences still prefilling will take.
    fn admit(&mut self) {
        let mut budget = match self.cfg.batching {
            Batching::Chunked { chunk_tokens } => {
                let mut left = chunk_tokens as usize;
                for s in &self.running {
                    let need = s.prompt.len() - s.prefilled;
                    left = left.saturating_sub(if need == 0 { 1 } else { need });
                }
                Some(left)
            }
            _ => None,
        };
        while self.running.len() < self.cfg.max_batch as usize && budget != Some(0) {
            let Some(req) = self.waiting.pop_front() else {
                break;
            };
            if let Some(b) = budget.as_mut() {
                *b = b.saturating_sub(req.prompt.len());
            }
            let slot = self.free_slots.pop().expect("a free cache per batch slot");
            self.caches[slot].len = 0;
            self.running.push(Seq {
                id: req.id,
                prompt: req.prompt,
                max_tokens: req.max_tokens,
                prefilled: 0,
                generated: 0,
                last: 0,
                slot,
            });
        }
    }

    /// Run one step: admit waiting requests, then one forward pass over the batch the batching
    /// choice forms. `None` when there is nothing to do.
    pub fn step(&mut self) -> Result<Option<StepReport>, EngineError> {
        self.admit();
        if self.running.is_empty() {
            return Ok(None);
        }
        // Plan: (running index, token range or decode).
        let any_prefill = self.running.iter().any(|s| s.prefilled < s.prompt.len());
        let mut plan: Vec<(usize, Option<(usize, usize)>)> = Vec::new();
        match self.cfg.batching {
            Batching::Mixed => {
                for (i, s) in self.running.iter().enumerate() {
                    if s.prefilled < s.prompt.len() {
                        plan.push((i, Some((s.prefilled, s.prompt.len()))));
                    } else {
                        plan.push((i, None));
                    }
                }
            }
            Batching::PrefillFirst => {
                for (i, s) in self.running.iter().enumerate() {
                    if s.prefilled < s.prompt.len() {
                        plan.push((i, Some((s.prefilled, s.prompt.len()))));
                    } else if !any_prefill {
                        plan.push((i, None));
                    }
                }
            }
            Batching::Chunked { chunk_tokens } => {
                let mut left = chunk_tokens as usize;
                for (i, s) in self.running.iter().enumerate() {
                    if s.prefilled >= s.prompt.len() {
                        plan.push((i, None));
                        left = left.saturating_sub(1);
                    }
                }
                for (i, s) in self.running.iter().enumerate() {
                    if left == 0 {
                        break;
                    }
                    if s.prefilled < s.prompt.len() {
                        let n = left.min(s.prompt.len() - s.prefilled);
                        plan.push((i, Some((s.prefilled, s.prefilled + n))));
                        left -= n;
                    }
                }
            }
        }
        let mut shape = StepShape::default();
        // Borrow each planned sequence's cache mutably (distinct slots).
        let mut slots: Vec<Option<&mut KvCache>> = self.caches.iter_mut().map(Some).collect();
        let mut segs = Vec::with_capacity(plan.len());
        let mut wants = Vec::with_capacity(plan.len());
        let lasts: Vec<[u32; 1]> = plan.iter().map(|&(i, _)| [self.running[i].last]).collect();
        for (p, &(i, range)) in plan.iter().enumerate() {
            let s = &self.running[i];
            let cache = slots[s.slot].take().expect("one segment per sequence");
            let (tokens, want): (&[u32], bool) = match range {
                Some((a, b)) => {
                    shape.prefill_tokens += (b - a) as u64;
                    shape.prefill_seqs += 1;
                    (&s.prompt[a..b], b == s.prompt.len())
                }
                None => {
                    shape.decode_seqs += 1;
                    shape.kv_tokens += cache.len as u64 + 1;
                    (&lasts[p][..], true)
                }
            };
            wants.push(want);
            segs.push(Segment {
                cache,
                tokens,
                want_logits: want,
            });
        }
        let (start, cpu0) = (Instant::now(), cpu_time());
        let model = &self.model;
        let next: Vec<u32> = self.pool.install(|| -> candle_core::Result<Vec<u32>> {
            match model.forward(&mut segs)? {
                Some(logits) => logits.argmax(D::Minus1)?.to_vec1::<u32>(),
                None => Ok(Vec::new()),
            }
        })?;
        let (elapsed, cpu) = (start.elapsed(), cpu_time().saturating_sub(cpu0));
        drop(segs);
        self.steps += 1;
        let mut events = Vec::with_capacity(next.len());
        let mut k = 0;
        for (p, &(i, range)) in plan.iter().enumerate() {
            let s = &mut self.running[i];
            if let Some((_, b)) = range {
                s.prefilled = b;
            }
            if wants[p] {
                let token = next[k];
                k += 1;
                s.last = token;
                s.generated += 1;
                events.push(TokenEvent {
                    id: s.id,
                    token,
                    index: s.generated - 1,
                    finished: s.generated >= s.max_tokens,
                });
            }
        }
        // Finished sequences leave and free their cache slot.
        let mut i = 0;
        while i < self.running.len() {
            let s = &self.running[i];
            if s.generated >= s.max_tokens {
                self.free_slots.push(s.slot);
                self.running.remove(i);
            } else {
                i += 1;
            }
        }
        Ok(Some(StepReport {
            events,
            shape,
            elapsed,
            cpu,
        }))
    }

    /// Time one forward pass of a synthetic batch (profiling): `decode_seqs` sequences decoding
    /// one token each with `context` tokens already cached, plus `prefill_tokens` prompt tokens
    /// from position 0 split as evenly as possible over `prefill_seqs` sequences (1 when 0 is
    /// given). The engine must be idle; the caches are reset afterwards. Token ids are arbitrary
    /// (timing depends on shapes, not values).
    pub fn probe(
        &mut self,
        decode_seqs: u32,
        context: u32,
        prefill_tokens: u32,
        prefill_seqs: u32,
    ) -> Result<Timing, EngineError> {
        let bad = |message: String| Err(EngineError::Request { id: 0, message });
        if !self.is_idle() {
            return bad("probe needs an idle engine".into());
        }
        let np = if prefill_tokens > 0 {
            prefill_seqs.max(1)
        } else {
            0
        };
        if np > prefill_tokens {
            return bad(format!(
                "{np} prefilling sequences for {prefill_tokens} prompt tokens: each needs one at least"
            ));
        }
        let seqs = decode_seqs as u64 + np as u64;
        if seqs == 0 {
            return bad("probe of an empty batch".into());
        }
        if seqs > self.cfg.max_batch as u64 {
            return bad(format!(
                "probe of {seqs} sequences exceeds max_batch = {}",
                self.cfg.max_batch
            ));
        }
        if decode_seqs > 0 && context as u64 + 1 > self.cfg.max_seq_len as u64 {
            return bad(format!(
                "context {context} + 1 exceeds max_seq_len = {}",
                self.cfg.max_seq_len
            ));
        }
        if prefill_tokens > self.cfg.max_seq_len {
            return bad(format!(
                "prefill of {prefill_tokens} tokens exceeds max_seq_len = {}",
                self.cfg.max_seq_len
            ));
        }
        let vocab = self.cfg.vocab;
        let prompt: Vec<u32> = (0..prefill_tokens).map(|j| (j * 7919) % vocab).collect();
        // Prompt j of np: tokens [bounds[j], bounds[j + 1]).
        let bounds: Vec<usize> = (0..=np)
            .map(|j| (prefill_tokens as u64 * j as u64 / np.max(1) as u64) as usize)
            .collect();
        let dec_tokens: Vec<[u32; 1]> = (0..decode_seqs).map(|j| [(j * 31) % vocab]).collect();
        let mut segs = Vec::new();
        for (j, c) in self.caches.iter_mut().enumerate().take(seqs as usize) {
            if j < decode_seqs as usize {
                c.len = context as usize;
                segs.push(Segment {
                    cache: c,
                    tokens: &dec_tokens[j][..],
                    want_logits: true,
                });
            } else {
                let k = j - decode_seqs as usize;
                c.len = 0;
                segs.push(Segment {
                    cache: c,
                    tokens: &prompt[bounds[k]..bounds[k + 1]],
                    want_logits: true,
                });
            }
        }
        let (start, cpu0) = (Instant::now(), cpu_time());
        let model = &self.model;
        self.pool.install(|| -> candle_core::Result<()> {
            if let Some(l) = model.forward(&mut segs)? {
                let _ = l.argmax(D::Minus1)?.to_vec1::<u32>()?;
            }
            Ok(())
        })?;
        let t = Timing {
            wall: start.elapsed(),
            cpu: cpu_time().saturating_sub(cpu0),
        };
        drop(segs);
        for c in &mut self.caches {
            c.len = 0;
        }
        Ok(t)
    }

    /// Logits of the last token after feeding `tokens` to a fresh sequence in one pass, then
    /// `more` one token at a time through the cache (tests: cache reuse against recomputation).
    #[doc(hidden)]
    pub fn logits_after(&mut self, tokens: &[u32], more: &[u32]) -> Result<Vec<f32>, EngineError> {
        let slot = self
            .free_slots
            .last()
            .copied()
            .ok_or(EngineError::Request {
                id: 0,
                message: "no free cache".into(),
            })?;
        let model = &self.model;
        let cache = &mut self.caches[slot];
        cache.len = 0;
        let out = self.pool.install(|| -> candle_core::Result<Vec<f32>> {
            let mut last = {
                let mut segs = [Segment {
                    cache: &mut *cache,
                    tokens,
                    want_logits: true,
                }];
                model.forward(&mut segs)?
            };
            for t in more {
                let tok = [*t];
                let mut segs = [Segment {
                    cache: &mut *cache,
                    tokens: &tok,
                    want_logits: true,
                }];
                last = model.forward(&mut segs)?;
            }
            last.expect("logits asked")
                .squeeze(0)?
                .to_dtype(candle_core::DType::F32)?
                .to_vec1()
        })?;
        cache.len = 0;
        Ok(out)
    }
}
