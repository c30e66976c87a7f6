//! Outcome recording: a delivered request's timings and energy, the requests still unfinished
//! when the run stops, and the final report.

use super::Sim;
use crate::observer::Observer;
use crate::policy::Policy;
use crate::report::{Metrics, Report, ServerTotals};
use crate::request::{Energy, Outcome, RejectReason};

impl Sim<'_> {
    /// Ends every request still pending or in flight as [`RejectReason::Unfinished`] (pending ones
    /// first, in arrival order, then flights in slot order: deterministic, and without a copy of a
    /// possibly huge backlog), and counts the busy time of the runs under way.
    pub(super) fn stop_unfinished(&mut self, obs: &mut [&mut dyn Observer]) {
        let now = self.now;
        let pending = std::mem::take(&mut self.pending);
        for p in &pending {
            emit!(self, obs, o => o.on_rejection(now, &p.request, RejectReason::Unfinished));
        }
        let mut free = vec![false; self.flights.len()];
        for &f in &self.free {
            free[f as usize] = true;
        }
        let flights = std::mem::take(&mut self.flights);
        for (f, _) in flights.iter().zip(&free).filter(|(_, free)| !**free) {
            emit!(self, obs, o => o.on_rejection(now, &f.req, RejectReason::Unfinished));
        }
        for srv in &mut self.srv {
            if let Some(run) = srv.run.take() {
                srv.busy_ns += now.saturating_sub(run.start);
            }
        }
    }

    /// Records the outcome of flight `f`, whose output just reached the user, and feeds it back to the policy.
    pub(super) fn on_delivered(
        &mut self,
        f: u32,
        policy: &mut dyn Policy,
        obs: &mut [&mut dyn Observer],
    ) {
        let fl = self.flights[f as usize];
        let s = fl.server;
        let link = &self.world.links[self.world.servers[s as usize].link];
        let r = fl.req;
        let total = self.now - r.arrival_ns;
        let deadline = self.world.slos[r.slo as usize].deadline_ns;
        let o = Outcome {
            request: r,
            server: s,
            decided_ns: fl.decided,
            upload_ns: fl.at_server - fl.decided,
            queue_ns: fl.admitted - fl.at_server,
            prefill_ns: fl.first_token - fl.admitted,
            decode_ns: fl.decode_done - fl.first_token,
            download_ns: self.now - fl.decode_done,
            ttft_ns: fl
                .first_token
                .saturating_add(link.latency_ns)
                .saturating_sub(r.arrival_ns),
            total_ns: total,
            deadline_ns: deadline,
            met: total <= deadline,
            energy: Energy {
                transmission: (r.input_bytes as f64 + r.output_bytes as f64)
                    * 8.0
                    * link.energy_j_per_bit,
                inference: fl.inference_j,
                idle: 0.0,
            },
        };
        self.states[s as usize].downloading -= 1;
        self.free.push(f);
        emit!(self, obs, ob => ob.on_completion(&o));
        policy.observe(&o);
    }

    /// The report of the run that just ended.
    pub(super) fn finish(&mut self, policy: &mut dyn Policy, wants_truth: bool) -> Report {
        let horizon = self.now.max(self.world.scenario.duration_ns);
        let totals = ServerTotals {
            busy_ns: self.srv.iter().map(|s| s.busy_ns).collect(),
            steps: self.srv.iter().map(|s| s.steps).collect(),
        };
        let metrics = std::mem::replace(&mut self.metrics, Metrics::new(self.world));
        metrics.finish(
            self.world,
            policy.name().to_string(),
            self.cost.name().to_string(),
            wants_truth,
            horizon,
            totals,
            policy.stats(),
            std::mem::take(&mut self.counters),
        )
    }
}
