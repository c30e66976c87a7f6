//! The slot the decision benchmark (`benches/decision.rs`) and the profiling example
//! (`examples/decision_scale.rs`) decide: one definition for both.
//!
//! Worlds: the paper testbed (6 servers) and `testbed::scaled` (one A100 cloud server per ten,
//! the rest Xeon edge servers), each with the constraints `latency <= deadline`,
//! `share(cloud tier) <= 60%` and `occupancy(edge tier) <= 90%`. Servers are a quarter busy.
//! Requests come from the scenario's synthetic generator (so classes are realistic), waiting
//! 0-300 ms.

use perllm_core::policy::{Pending, ServerState};
use perllm_core::spec::*;
use perllm_core::testbed;
use perllm_core::workload::{RequestSource, Synthetic};

/// One slot to decide: the world, the servers' states, the pending requests and the time.
pub struct Slot {
    pub w: perllm_core::World,
    pub states: Vec<ServerState>,
    pub pending: Vec<Pending>,
    pub now: Nanos,
}

impl Slot {
    /// `n` pending requests on `servers` servers (6: the paper testbed).
    pub fn new(servers: usize, n: usize) -> Slot {
        let w = world(servers);
        let states: Vec<ServerState> = w
            .servers
            .iter()
            .map(|s| ServerState {
                running: s.max_batch / 4,
                queued: 0,
                uploading: 1,
                downloading: 0,
                free_kv_bytes: s.kv_capacity_bytes * 3 / 4,
                kv_capacity_bytes: s.kv_capacity_bytes,
                pending_output_tokens: 0,
                bandwidth_estimate_bps: w.links[s.link].bandwidth_bps,
                recent_utilization: 0.25,
                ..ServerState::default()
            })
            .collect();
        let mut src = Synthetic::new(&w);
        let reqs: Vec<_> = (0..n)
            .map(|_| src.next_request().expect("enough requests").expect("valid"))
            .collect();
        let now = reqs.last().expect("at least one request").arrival_ns + 300 * MILLISECOND;
        let pending: Vec<Pending> = reqs
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut r = *r;
                r.arrival_ns = now - (i as u64 % 4) * 100 * MILLISECOND;
                Pending {
                    request: r,
                    defers: 0,
                }
            })
            .collect();
        Slot {
            w,
            states,
            pending,
            now,
        }
    }
}

/// The PerLLM spec of the benchmark: `variant` and `share_window = 0` (so repeated calls see
/// the same rows).
pub fn perllm_spec(variant: &str) -> PolicySpec {
    PolicySpec {
        name: "perllm".into(),
        params: [
            ("share_window".to_string(), ParamValue::Number(0.0)),
            ("variant".to_string(), ParamValue::Text(variant.into())),
        ]
        .into(),
    }
}

fn world(servers: usize) -> perllm_core::World {
    // Enough arrivals in 100 s for the slot (10,000 requests at 5,000 servers).
    let rate = 50.0 * (servers as f64 / 500.0).max(1.0);
    let mut sc = if servers == 6 {
        testbed::paper(rate, 100 * SECOND)
    } else {
        testbed::scaled(servers, rate, 100 * SECOND)
    };
    sc.objective.constraints = testbed::tier_constraints();
    sc.workload.max_requests = None;
    sc.build().expect("valid benchmark scenario")
}
