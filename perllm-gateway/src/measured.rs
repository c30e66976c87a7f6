//! What the gateway measures of each backend, and the cost model the policy sees through it.

use perllm_core::cost::{CostModel, Estimate, LoadHint, StepShape};
use perllm_core::spec::{Hardware, ModelSpec, Nanos};
use perllm_core::{Request, Server, World};

/// Weight of a new sample in the exponentially weighted means.
const ALPHA: f64 = 0.2;

/// Measurements of one backend, exponentially weighted (the last ~5 samples dominate).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Measured {
    /// Round trip of a health probe (`GET /v1/models`), seconds.
    pub rtt_s: Option<f64>,
    /// Time to first token from the gateway's send, seconds, minus the round trip.
    pub ttft_s: Option<f64>,
    /// Seconds per decoded token after the first (one request's decode time over its tokens).
    pub s_per_token: Option<f64>,
    /// Response bytes per second while a response streamed (its bytes over its duration), bits/s.
    pub throughput_bps: Option<f64>,
}

fn ewma(old: Option<f64>, x: f64) -> Option<f64> {
    if !x.is_finite() || x < 0.0 {
        return old;
    }
    Some(match old {
        Some(o) => o + ALPHA * (x - o),
        None => x,
    })
}

impl Measured {
    /// A probe's round trip.
    pub fn add_rtt(&mut self, s: f64) {
        self.rtt_s = ewma(self.rtt_s, s);
    }
    /// A finished request: its time to first token (from the send), its decode time and
    /// tokens after the first, and the bytes received over the whole response time.
    pub fn add_request(
        &mut self,
        ttft_s: f64,
        decode_s: f64,
        tokens: u32,
        bytes: u64,
        total_s: f64,
    ) {
        let rtt = self.rtt_s.unwrap_or(0.0);
        if ttft_s.is_finite() {
            self.ttft_s = ewma(self.ttft_s, (ttft_s - rtt).max(0.0));
        }
        if tokens > 1 && decode_s > 0.0 {
            self.s_per_token = ewma(self.s_per_token, decode_s / (tokens - 1) as f64);
        }
        if total_s > 0.0 && bytes > 0 {
            self.throughput_bps = ewma(self.throughput_bps, bytes as f64 * 8.0 / total_s);
        }
    }
}

/// The scenario's cost model with each backend's measurements put in: the wait and prefill
/// become the measured time to first token, the decode the measured time per token, the two
/// transfers half the measured round trip each. Energy stays the cost model's estimate (a real
/// backend reports none). A backend with no measurement yet gets the cost model's estimate.
pub struct MeasuredCost<'a> {
    /// The scenario's cost model.
    pub inner: &'a dyn CostModel,
    /// Per server, indexed by id.
    pub measured: &'a [Measured],
}

fn ns(s: f64) -> Nanos {
    (s * 1e9).round().clamp(0.0, u64::MAX as f64) as Nanos
}

impl CostModel for MeasuredCost<'_> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn step_ns(&self, hw: &Hardware, count: u32, model: &ModelSpec, shape: &StepShape) -> Nanos {
        self.inner.step_ns(hw, count, model, shape)
    }
    fn estimate(&self, world: &World, server: &Server, req: &Request, load: &LoadHint) -> Estimate {
        let mut e = self.inner.estimate(world, server, req, load);
        let Some(m) = self.measured.get(server.id as usize) else {
            return e;
        };
        if let Some(rtt) = m.rtt_s {
            e.upload_ns = ns(rtt / 2.0);
            e.download_ns = ns(rtt / 2.0);
        }
        if let Some(t) = m.ttft_s {
            // Measured at the load it was measured under; scale by the queue ahead now.
            let ahead = load.queued as f64;
            e.queue_ns = ns(t * ahead / (load.running.max(1) as f64));
            e.prefill_ns = ns(t);
        }
        if let Some(d) = m.s_per_token {
            e.decode_ns = ns(d * req.output_tokens.saturating_sub(1) as f64);
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn means_move_towards_samples() {
        let mut m = Measured::default();
        m.add_rtt(0.01);
        m.add_request(0.11, 1.0, 11, 4000, 1.11);
        assert!((m.ttft_s.unwrap() - 0.1).abs() < 1e-9);
        assert!((m.s_per_token.unwrap() - 0.1).abs() < 1e-9);
        m.add_request(0.21, 1.0, 11, 4000, 1.21);
        assert!((m.ttft_s.unwrap() - 0.12).abs() < 1e-9);
        m.add_request(f64::NAN, 1.0, 1, 0, 0.0);
        assert!((m.ttft_s.unwrap() - 0.12).abs() < 1e-9);
    }
}
