//! Plugins built against the frozen copy of ABI 1.0 (`abi-1.0/`, a verbatim copy of
//! `perllm-plugin-abi` when 1.0 was published). The host's tests load this library to prove that
//! a host of a later 1.x minor version runs a plugin built for 1.0: it reads the 1.0 prefix of
//! the plugin's declarations, and the plugin reads the 1.0 prefix of the host's larger views.
//!
//! - Policy `compat-least-loaded`: the bundled `least-loaded`'s algorithm, written against 1.0.
//!   It counts the outcomes it observes (`compat.observed`) and checks every view's size.
//! - Cost model `compat-cost`: `testkit-cost`'s correct formulas (step and estimate).

use perllm_plugin_abi::*;

/// `least-loaded`, as a plugin of ABI 1.0 would have written it.
#[derive(Debug, Default)]
pub struct CompatLeastLoaded {
    extra: Vec<u32>,
    observed: u64,
    /// The host's struct sizes seen in the first slot (server, request, slot).
    seen_sizes: Option<[u32; 3]>,
}

fn load(s: &ServerView, extra: u32) -> f64 {
    (s.uploading as f64 + s.queued as f64 + s.running as f64 + extra as f64)
        / s.max_batch.max(1) as f64
}

impl GuestPolicy for CompatLeastLoaded {
    const NAME: &'static str = "compat-least-loaded";
    const VERSION: &'static str = "1.0.0";
    const DESCRIPTION: &'static str = "least-loaded, built against the frozen ABI 1.0 (tests only)";

    fn create(_config: &str, _seed: u64) -> Result<Self, String> {
        Ok(CompatLeastLoaded::default())
    }

    fn schedule(&mut self, slot: &Slot<'_>, out: &mut [Placement]) -> Result<(), String> {
        let raw = slot.raw();
        self.seen_sizes
            .get_or_insert([raw.server_size, raw.request_size, raw.struct_size]);
        self.extra.clear();
        self.extra.resize(slot.servers().len(), 0);
        for (r, p) in slot.requests().iter().zip(out.iter_mut()) {
            let mut best: Option<(f64, u32)> = None;
            for (i, s) in slot.servers().iter().enumerate() {
                if !slot.hosts(i, r.model) {
                    continue;
                }
                let l = load(s, self.extra[i]);
                if best.is_none_or(|(bl, _)| l < bl) {
                    best = Some((l, i as u32));
                }
            }
            match best {
                Some((_, s)) => {
                    p.action = ACTION_ASSIGN;
                    p.server = s;
                    self.extra[s as usize] += 1;
                }
                None => p.action = ACTION_REJECT,
            }
        }
        Ok(())
    }

    fn observe(&mut self, o: &Outcome) -> Result<(), String> {
        if o.phases.valid != 1 || o.request.output_tokens == 0 {
            return Err(format!("a malformed outcome: {o:?}"));
        }
        self.observed += 1;
        Ok(())
    }

    fn stats(&self, out: &mut Vec<(String, f64)>) {
        out.push(("compat.observed".into(), self.observed as f64));
        if let Some([s, r, v]) = self.seen_sizes {
            out.push(("compat.host_server_size".into(), s as f64));
            out.push(("compat.host_request_size".into(), r as f64));
            out.push(("compat.host_slot_size".into(), v as f64));
        }
        out.push((
            "compat.own_server_size".into(),
            size_of::<ServerView>() as f64,
        ));
    }
}

/// `testkit-cost`'s correct formulas, as a cost model of ABI 1.0.
#[derive(Debug)]
pub struct CompatCost;

impl GuestCostModel for CompatCost {
    const NAME: &'static str = "compat-cost";
    const VERSION: &'static str = "1.0.0";
    const DESCRIPTION: &'static str =
        "a fixed-formula cost model built against ABI 1.0 (tests only)";
    const PROVIDES_ESTIMATE: bool = true;

    fn create(_config: &str) -> Result<Self, String> {
        Ok(CompatCost)
    }

    fn step_ns(&self, q: &StepQuery<'_>) -> Result<u64, String> {
        let s = q.shape;
        if s.prefill_tokens == 0 && s.decode_seqs == 0 {
            return Ok(0);
        }
        Ok(1_000_000 + 10_000 * s.prefill_tokens + 20_000_000 * s.decode_seqs as u64)
    }

    fn estimate(&self, q: &EstimateQuery<'_>) -> Result<EstimateView, String> {
        let r = q.request;
        Ok(EstimateView {
            valid: 1,
            upload_ns: 1_000_000,
            queue_ns: 0,
            prefill_ns: 10_000 * r.prompt_tokens as u64,
            decode_ns: 20_000_000 * r.output_tokens as u64,
            download_ns: 1_000_000,
            energy_transmission_j: 0.5,
            energy_inference_j: 10.0,
            energy_idle_j: 0.0,
            ..Default::default()
        })
    }
}

export_plugins! {
    policies: [CompatLeastLoaded],
    cost_models: [CompatCost],
}
