//! `filter-score`: an llm-d-style router: filter the servers, score the rest, pick the best.

use crate::policies::assign;
use crate::util::{check, check_at_least, parse_config, predicted_ns, queue_ns};
use perllm_plugin_abi::guest_policy;
use serde::Deserialize;

/// Filter, score, pick (the structure of llm-d's endpoint picker).
///
/// Filters, for each request: the server hosts the model; its link is up (a positive bandwidth
/// estimate); its KV cache is at most `max_kv_utilization` full (the request's own KV size is not
/// in a policy's view, so "fits" is a utilisation threshold). If no server passes, every server
/// hosting the model is scored (counted as `filter_score.fallbacks`).
///
/// Scorers, each in [0, 1], higher is better, over the servers that passed:
/// - queue depth: requests waiting (uploading + queued + placed this slot), min-max normalised:
///   1 for the shortest queue, 0 for the longest (all 1 when equal);
/// - KV utilisation: the free fraction of the KV cache;
/// - estimated time to first token (upload + queueing + prefill): shortest / this;
/// - estimated completion: earliest / this.
///
/// The score is the weighted sum; the highest wins (ties: earlier completion, then lower id).
/// Estimates are the host cost model's, with the queue of the requests placed earlier in the
/// slot added (the rule of `greedy`).
#[derive(Debug)]
pub struct FilterScore {
    w: [f64; 4],
    max_kv: f64,
    extra: Vec<u32>,
    cands: Vec<Cand>,
    fallbacks: u64,
}

#[derive(Clone, Copy, Debug)]
struct Cand {
    id: u32,
    waiting: u32,
    kv_free: f64,
    ttft: u64,
    done: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FilterScoreParams {
    queue_weight: f64,
    kv_weight: f64,
    ttft_weight: f64,
    completion_weight: f64,
    max_kv_utilization: f64,
}

impl Default for FilterScoreParams {
    fn default() -> Self {
        FilterScoreParams {
            queue_weight: 1.0,
            kv_weight: 1.0,
            ttft_weight: 1.0,
            completion_weight: 1.0,
            max_kv_utilization: 0.95,
        }
    }
}

guest_policy! {
    impl FilterScore {
        name: "filter-score",
        description: "llm-d-style: filter (hosts the model, link up, KV below a threshold), weighted scorers (queue, KV, TTFT, completion), highest score wins",
        wants_estimates: true,
        params: "queue_weight (1.0): weight of the queue-depth scorer, >= 0\n\
            kv_weight (1.0): weight of the KV-utilisation scorer, >= 0\n\
            ttft_weight (1.0): weight of the estimated-TTFT scorer, >= 0\n\
            completion_weight (1.0): weight of the estimated-completion scorer, >= 0\n\
            max_kv_utilization (0.95): servers whose KV cache is fuller are filtered out, in (0, 1]",
        create(config, _seed) {
            let p: FilterScoreParams = parse_config(Self::NAME, config)?;
            let w = [p.queue_weight, p.kv_weight, p.ttft_weight, p.completion_weight];
            for (name, v) in ["queue_weight", "kv_weight", "ttft_weight", "completion_weight"]
                .into_iter()
                .zip(w)
            {
                check_at_least(Self::NAME, name, v, 0.0)?;
            }
            check(Self::NAME, w.iter().any(|&x| x != 0.0), || {
                "every weight is 0 (queue_weight, kv_weight, ttft_weight, completion_weight): nothing would be scored".into()
            })?;
            check(Self::NAME, p.max_kv_utilization > 0.0 && p.max_kv_utilization <= 1.0, || {
                format!("parameter `max_kv_utilization` must be in (0, 1], got {}", p.max_kv_utilization)
            })?;
            Ok(FilterScore {
                w,
                max_kv: p.max_kv_utilization,
                extra: Vec::new(),
                cands: Vec::new(),
                fallbacks: 0,
            })
        }
        decide(self, slot, out) {
            let servers = slot.servers();
            self.extra.clear();
            self.extra.resize(servers.len(), 0);
            for (ri, p) in out.iter_mut().enumerate().take(slot.pending().len()) {
                let ests = slot.estimates_of(ri);
                let fill = |filtered: bool, cands: &mut Vec<Cand>| {
                    cands.clear();
                    for (si, (s, e)) in servers.iter().zip(ests).enumerate() {
                        let Some(done) = predicted_ns(s, e, self.extra[si]) else {
                            continue;
                        };
                        let kv_free = if s.kv_capacity_bytes == 0 {
                            0.0
                        } else {
                            (s.free_kv_bytes as f64 / s.kv_capacity_bytes as f64).clamp(0.0, 1.0)
                        };
                        if filtered
                            && (s.bandwidth_estimate_bps <= 0.0 || 1.0 - kv_free > self.max_kv)
                        {
                            continue;
                        }
                        cands.push(Cand {
                            id: si as u32,
                            waiting: s.uploading.saturating_add(s.queued).saturating_add(self.extra[si]),
                            kv_free,
                            ttft: e
                                .upload_ns
                                .saturating_add(queue_ns(s, e, self.extra[si]))
                                .saturating_add(e.prefill_ns),
                            done,
                        });
                    }
                };
                fill(true, &mut self.cands);
                if self.cands.is_empty() {
                    fill(false, &mut self.cands);
                    if !self.cands.is_empty() {
                        self.fallbacks += 1;
                    }
                }
                let cands = &self.cands;
                let qmin = cands.iter().map(|c| c.waiting).min().unwrap_or(0);
                let qmax = cands.iter().map(|c| c.waiting).max().unwrap_or(0);
                let tmin = cands.iter().map(|c| c.ttft).min().unwrap_or(0);
                let dmin = cands.iter().map(|c| c.done).min().unwrap_or(0);
                let ratio = |best: u64, v: u64| if v == 0 { 1.0 } else { best as f64 / v as f64 };
                let mut best: Option<(f64, u64, u32)> = None;
                for c in cands {
                    let queue = if qmax == qmin {
                        1.0
                    } else {
                        f64::from(qmax - c.waiting) / f64::from(qmax - qmin)
                    };
                    let score = self.w[0] * queue
                        + self.w[1] * c.kv_free
                        + self.w[2] * ratio(tmin, c.ttft)
                        + self.w[3] * ratio(dmin, c.done);
                    let better = best.is_none_or(|(bs, bd, _)| {
                        score > bs || (score == bs && c.done < bd)
                    });
                    if better {
                        best = Some((score, c.done, c.id));
                    }
                }
                assign(p, best.map(|b| b.2), &mut self.extra);
            }
            Ok(())
        }
        stats(self, out) {
            out.push(("filter_score.fallbacks".into(), self.fallbacks as f64));
        }
    }
}
