//! `edge-first`: a third party's perllm policy, as a plugin.
//!
//! Each request goes to the edge server with the lowest estimated processing time if that
//! estimate is within `slack x deadline`; otherwise to the fastest server of any tier (by
//! estimate); requests whose model no server hosts are rejected. It counts the requests it places
//! in a slot so that one slot's requests spread over the edge.
//!
//! Build: `cargo build --release --manifest-path examples/third-party-policy/Cargo.toml`
//! Run:   `perllm run examples/paper.perllm --plugin <target>/release/libthird_party_policy.so --policy edge-first`

use perllm_plugin_abi::{
    ACTION_ASSIGN, ACTION_REJECT, GuestPolicy, Outcome, Placement, Slot, TIER_EDGE,
    export_policy,
};

/// The policy's state.
pub struct EdgeFirst {
    slack: f64,
    edge: u64,
    elsewhere: u64,
    met: u64,
    observed: u64,
}

/// Read a number field from a flat JSON object such as `{"slack": 0.8}` (this example avoids
/// dependencies; a real plugin would use serde_json).
fn number_field(config: &str, key: &str) -> Result<Option<f64>, String> {
    let body = config.trim();
    if body.is_empty() || body == "null" || body == "{}" {
        return Ok(None);
    }
    let inner = body
        .strip_prefix('{')
        .and_then(|b| b.strip_suffix('}'))
        .ok_or_else(|| format!("config must be a JSON object, got `{body}`"))?;
    let mut found = None;
    for pair in inner.split(',').filter(|p| !p.trim().is_empty()) {
        let (k, v) = pair
            .split_once(':')
            .ok_or_else(|| format!("malformed config entry `{}`", pair.trim()))?;
        let k = k.trim().trim_matches('"');
        if k != key {
            return Err(format!(
                "unknown parameter `{k}` (edge-first takes only `{key}`)"
            ));
        }
        found = Some(
            v.trim()
                .parse::<f64>()
                .map_err(|_| format!("`{key}` must be a number, got `{}`", v.trim()))?,
        );
    }
    Ok(found)
}

impl GuestPolicy for EdgeFirst {
    const NAME: &'static str = "edge-first";
    const VERSION: &'static str = "0.1.0";
    const DESCRIPTION: &'static str =
        "edge if its estimate meets slack x deadline, else the fastest server";
    const WANTS_ESTIMATES: bool = true;

    fn create(config: &str, _seed: u64) -> Result<Self, String> {
        let slack = number_field(config, "slack")?.unwrap_or(0.8);
        if !(slack.is_finite() && slack > 0.0) {
            return Err(format!("`slack` must be positive, got {slack}"));
        }
        Ok(EdgeFirst {
            slack,
            edge: 0,
            elsewhere: 0,
            met: 0,
            observed: 0,
        })
    }

    fn schedule(&mut self, slot: &Slot<'_>, out: &mut [Placement]) -> Result<(), String> {
        let servers = slot.servers();
        let mut placed = vec![0u64; servers.len()];
        for (ri, (req, p)) in slot.requests().iter().zip(out.iter_mut()).enumerate() {
            let mut best_edge: Option<(u64, usize)> = None;
            let mut best_any: Option<(u64, usize)> = None;
            for (si, s) in servers.iter().enumerate() {
                let Some(e) = slot.estimate(ri, si) else {
                    continue;
                };
                // Requests placed earlier in this slot wait one prefill+decode round per batch.
                let rounds = placed[si] / s.max_batch.max(1) as u64;
                let t = e
                    .total_ns()
                    .saturating_add(rounds.saturating_mul(e.prefill_ns + e.decode_ns));
                if s.tier == TIER_EDGE && best_edge.is_none_or(|b| t < b.0) {
                    best_edge = Some((t, si));
                }
                if best_any.is_none_or(|b| t < b.0) {
                    best_any = Some((t, si));
                }
            }
            let choice = match best_edge {
                Some((t, si)) if t as f64 <= self.slack * req.deadline_ns as f64 => {
                    self.edge += 1;
                    Some(si)
                }
                _ => {
                    self.elsewhere += best_any.is_some() as u64;
                    best_any.map(|b| b.1)
                }
            };
            match choice {
                Some(si) => {
                    p.action = ACTION_ASSIGN;
                    p.server = servers[si].id;
                    placed[si] += 1;
                }
                None => p.action = ACTION_REJECT,
            }
        }
        Ok(())
    }

    fn observe(&mut self, o: &Outcome) -> Result<(), String> {
        self.observed += 1;
        self.met += o.met as u64;
        Ok(())
    }

    fn stats(&self, out: &mut Vec<(String, f64)>) {
        out.push(("edge_first.to_edge".into(), self.edge as f64));
        out.push(("edge_first.elsewhere".into(), self.elsewhere as f64));
        let rate = if self.observed == 0 {
            0.0
        } else {
            self.met as f64 / self.observed as f64
        };
        out.push(("edge_first.observed_attainment".into(), rate));
    }
}

export_policy!(EdgeFirst);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_parsing() {
        assert_eq!(number_field("", "slack").unwrap(), None);
        assert_eq!(number_field("{}", "slack").unwrap(), None);
        assert_eq!(
            number_field(r#"{"slack": 0.5}"#, "slack").unwrap(),
            Some(0.5)
        );
        assert!(
            number_field(r#"{"speed": 1}"#, "slack")
                .unwrap_err()
                .contains("unknown parameter `speed`")
        );
        assert!(
            number_field(r#"{"slack": "x"}"#, "slack")
                .unwrap_err()
                .contains("must be a number")
        );
    }
}
