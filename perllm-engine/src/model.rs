//! The transformer: random Llama-shaped weights and one batched forward pass over packed tokens
//! of many sequences, each at its own position with its own KV cache.

use crate::config::EngineConfig;
use candle_core::{DType, Device, Result, Tensor};
use candle_nn::ops::{rms_norm, silu, softmax_last_dim};
use candle_nn::rotary_emb::rope;

const EPS: f32 = 1e-5;
const ROPE_THETA: f64 = 10_000.0;

/// One sequence's KV cache: per layer, keys and values `[kv_heads, capacity, head_dim]`, filled
/// up to `len` positions.
pub(crate) struct KvCache {
    k: Vec<Tensor>,
    v: Vec<Tensor>,
    pub(crate) len: usize,
}

impl KvCache {
    pub(crate) fn new(cfg: &EngineConfig, capacity: usize, dev: &Device) -> Result<KvCache> {
        let shape = (cfg.kv_heads as usize, capacity, cfg.head_dim() as usize);
        let dt = cfg.dtype.candle();
        let mut k = Vec::with_capacity(cfg.layers as usize);
        let mut v = Vec::with_capacity(cfg.layers as usize);
        for _ in 0..cfg.layers {
            k.push(Tensor::zeros(shape, dt, dev)?);
            v.push(Tensor::zeros(shape, dt, dev)?);
        }
        Ok(KvCache { k, v, len: 0 })
    }
}

struct Block {
    attn_norm: Tensor,
    wq: Tensor,
    wk: Tensor,
    wv: Tensor,
    wo: Tensor,
    mlp_norm: Tensor,
    w_gate: Tensor,
    w_up: Tensor,
    w_down: Tensor,
}

/// The weights (stored transposed, `[in, out]`, so a projection is one matmul) and rotary tables.
pub(crate) struct Model {
    cfg: EngineConfig,
    dev: Device,
    embed: Tensor,
    blocks: Vec<Block>,
    norm: Tensor,
    lm_head: Tensor,
    cos: Tensor,
    sin: Tensor,
}

/// One sequence's part of a forward pass: `tokens` at positions `cache.len ..`.
pub(crate) struct Segment<'a> {
    pub cache: &'a mut KvCache,
    pub tokens: &'a [u32],
    /// Compute the logits of the last token (a chunk that does not end the prompt needs none).
    pub want_logits: bool,
}

/// Deterministic random weights: uniform with standard deviation `std` (splitmix64 from the
/// config's seed; candle's CPU generator cannot be seeded).
struct WeightRng(u64);

impl WeightRng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn tensor(
        &mut self,
        shape: (usize, usize),
        std: f64,
        cfg: &EngineConfig,
        dev: &Device,
    ) -> Result<Tensor> {
        let a = (std * 3f64.sqrt()) as f32;
        let v: Vec<f32> = (0..shape.0 * shape.1)
            .map(|_| ((self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * a)
            .collect();
        Tensor::from_vec(v, shape, dev)?.to_dtype(cfg.dtype.candle())
    }
}

impl Model {
    pub(crate) fn new(cfg: &EngineConfig, dev: &Device) -> Result<Model> {
        let mut rng = WeightRng(cfg.seed);
        let h = cfg.hidden as usize;
        let kv = (cfg.kv_heads * cfg.head_dim()) as usize;
        let i = cfg.intermediate as usize;
        let v = cfg.vocab as usize;
        let dt = cfg.dtype.candle();
        let std = 0.02;
        let ones = |n: usize| Tensor::ones(n, dt, dev);
        let mut blocks = Vec::with_capacity(cfg.layers as usize);
        for _ in 0..cfg.layers {
            blocks.push(Block {
                attn_norm: ones(h)?,
                wq: rng.tensor((h, h), std, cfg, dev)?,
                wk: rng.tensor((h, kv), std, cfg, dev)?,
                wv: rng.tensor((h, kv), std, cfg, dev)?,
                wo: rng.tensor((h, h), std, cfg, dev)?,
                mlp_norm: ones(h)?,
                w_gate: rng.tensor((h, i), std, cfg, dev)?,
                w_up: rng.tensor((h, i), std, cfg, dev)?,
                w_down: rng.tensor((i, h), std, cfg, dev)?,
            });
        }
        let hd = cfg.head_dim() as usize;
        let max = cfg.max_seq_len as usize;
        let inv: Vec<f32> = (0..hd / 2)
            .map(|j| 1.0 / ROPE_THETA.powf(2.0 * j as f64 / hd as f64) as f32)
            .collect();
        let inv = Tensor::from_vec(inv, (1, hd / 2), dev)?;
        let pos = Tensor::arange(0u32, max as u32, dev)?
            .to_dtype(DType::F32)?
            .reshape((max, 1))?;
        let freqs = pos.broadcast_mul(&inv)?;
        Ok(Model {
            cfg: cfg.clone(),
            dev: dev.clone(),
            embed: rng.tensor((v, h), 1.0, cfg, dev)?,
            blocks,
            norm: ones(h)?,
            lm_head: rng.tensor((h, v), std, cfg, dev)?,
            cos: freqs.cos()?.to_dtype(dt)?,
            sin: freqs.sin()?.to_dtype(dt)?,
        })
    }

    /// One forward pass over every segment, packed in segment order into one `[tokens, hidden]`
    /// activation that every projection and MLP multiplies at once (one matmul per weight for
    /// the whole batch). Attention is computed per sequence over its own cache (Orca's selective
    /// batching): a decoding sequence's one query against its `len` cached keys, a prompt (or
    /// chunk) with its causal mask; no sequence pays for another's longer context. Appends the
    /// new keys/values to the caches and returns the logits `[segments that asked, vocab]` of
    /// each asking segment's last token, in segment order.
    pub(crate) fn forward(&self, segs: &mut [Segment<'_>]) -> Result<Option<Tensor>> {
        let cfg = &self.cfg;
        let (nh, nkv, hd) = (
            cfg.heads as usize,
            cfg.kv_heads as usize,
            cfg.head_dim() as usize,
        );
        let g = nh / nkv;
        let dt = cfg.dtype.candle();
        let mut toks = Vec::new();
        let mut pos = Vec::new();
        let mut offs = Vec::with_capacity(segs.len());
        for s in segs.iter() {
            offs.push(toks.len());
            toks.extend_from_slice(s.tokens);
            pos.extend((0..s.tokens.len()).map(|j| (s.cache.len + j) as u32));
        }
        let t = toks.len();
        if t == 0 {
            return Ok(None);
        }
        let ids = Tensor::from_vec(toks, t, &self.dev)?;
        let pos_t = Tensor::from_vec(pos, t, &self.dev)?;
        let cos = self.cos.index_select(&pos_t, 0)?;
        let sin = self.sin.index_select(&pos_t, 0)?;
        let mut x = self.embed.index_select(&ids, 0)?;
        // Causal masks of the multi-token segments, shared by all layers.
        let masks: Vec<Option<Tensor>> = segs
            .iter()
            .map(|s| {
                let (n, start) = (s.tokens.len(), s.cache.len);
                if n < 2 {
                    return Ok(None);
                }
                let total = start + n;
                let m: Vec<f32> = (0..n)
                    .flat_map(|r| {
                        (0..total).map(move |c| {
                            if c <= start + r {
                                0.0
                            } else {
                                f32::NEG_INFINITY
                            }
                        })
                    })
                    .collect();
                Ok(Some(
                    Tensor::from_vec(m, (n, total), &self.dev)?.to_dtype(dt)?,
                ))
            })
            .collect::<Result<_>>()?;
        let scale = 1.0 / (hd as f64).sqrt();
        for (l, b) in self.blocks.iter().enumerate() {
            let hn = rms_norm(&x, &b.attn_norm, EPS)?;
            let q = hn
                .matmul(&b.wq)?
                .reshape((1, t, nh, hd))?
                .transpose(1, 2)?
                .contiguous()?;
            let k = hn
                .matmul(&b.wk)?
                .reshape((1, t, nkv, hd))?
                .transpose(1, 2)?
                .contiguous()?;
            let v = hn
                .matmul(&b.wv)?
                .reshape((1, t, nkv, hd))?
                .transpose(1, 2)?
                .contiguous()?;
            let q = rope(&q, &cos, &sin)?.squeeze(0)?; // [nh, t, hd]
            let k = rope(&k, &cos, &sin)?.squeeze(0)?; // [nkv, t, hd]
            let v = v.squeeze(0)?;
            let mut outs: Vec<Tensor> = Vec::with_capacity(segs.len());
            for (o, s) in segs.iter_mut().enumerate() {
                let n = s.tokens.len();
                let start = s.cache.len;
                let total = start + n;
                // Append the segment's new keys/values to its cache, then attend over it.
                let ks = k.narrow(1, offs[o], n)?.contiguous()?;
                let vs = v.narrow(1, offs[o], n)?.contiguous()?;
                s.cache.k[l].slice_set(&ks, 1, start)?;
                s.cache.v[l].slice_set(&vs, 1, start)?;
                let qs = q.narrow(1, offs[o], n)?.reshape((nkv, g * n, hd))?;
                let kk = s.cache.k[l].narrow(1, 0, total)?;
                let vv = s.cache.v[l].narrow(1, 0, total)?;
                let att =
                    (qs.matmul(&kk.transpose(1, 2)?)? * scale)?.reshape((nkv, g, n, total))?;
                let att = match &masks[o] {
                    Some(mask) => att.broadcast_add(mask)?,
                    None => att,
                };
                let att = softmax_last_dim(&att)?.reshape((nkv, g * n, total))?;
                let out = att.matmul(&vv)?.reshape((nh, n, hd))?; // heads in order
                outs.push(out.transpose(0, 1)?.reshape((n, nh * hd))?);
            }
            let attn = if outs.len() == 1 {
                outs.pop().expect("one output")
            } else {
                Tensor::cat(&outs, 0)?
            };
            x = (x + attn.matmul(&b.wo)?)?;
            let hn = rms_norm(&x, &b.mlp_norm, EPS)?;
            let gate = silu(&hn.matmul(&b.w_gate)?)?;
            let up = hn.matmul(&b.w_up)?;
            x = (&x + (gate * up)?.matmul(&b.w_down)?)?;
        }
        for s in segs.iter_mut() {
            s.cache.len += s.tokens.len();
        }
        // Logits only for the segments that need a next token, in the segments' order.
        let rows: Vec<u32> = (0..segs.len())
            .filter(|&i| segs[i].want_logits)
            .map(|i| (offs[i] + segs[i].tokens.len() - 1) as u32)
            .collect();
        if rows.is_empty() {
            return Ok(None);
        }
        let n = rows.len();
        let last = x.index_select(&Tensor::from_vec(rows, n, &self.dev)?, 0)?;
        Ok(Some(
            rms_norm(&last, &self.norm, EPS)?.matmul(&self.lm_head)?,
        ))
    }
}
