//! Slot and decision driving: at each slot boundary the policy sees the cluster and decides for
//! the pending requests (assign, reject or defer); assigned requests start their upload.

use super::events::Ev;
use super::{Flight, Sim, SimError};
use crate::observer::Observer;
use crate::policy::{ClusterView, Decision, GroundTruth, Pending, Policy};
use crate::request::{RejectReason, Request};
use crate::spec::{MILLISECOND, Nanos};
use crate::world::ServerId;

/// Re-decision interval for deferred requests when the slot length is 0.
pub(crate) const DEFER_RETRY_NS: Nanos = 100 * MILLISECOND;

impl Sim<'_> {
    /// Brings the servers' states the policy sees up to now.
    fn refresh_states(&mut self) {
        let elapsed = self.now.saturating_sub(self.last_decision).max(1);
        let n_models = self.world.models.len();
        self.model_load.resize(self.srv.len() * n_models, 0.0);
        for ((st, s), load) in self
            .states
            .iter_mut()
            .zip(self.srv.iter_mut())
            .zip(self.model_load.chunks_mut(n_models.max(1)))
        {
            // Busy time up to now: finished runs plus the elapsed part of the current one.
            let upto = s.busy_ns
                + s.run
                    .as_ref()
                    .map_or(0, |r| self.now.saturating_sub(r.start));
            let busy = upto.saturating_sub(s.busy_at_decision);
            st.recent_utilization = (busy as f64 / elapsed as f64).min(1.0);
            st.free_kv_bytes = s.kv_free;
            s.account_batch(self.now, &mut self.decay);
            st.mean_batch = if s.batch_s > 0.0 {
                s.batch2_s / s.batch_s
            } else {
                0.0
            };
            for (l, acc) in load.iter_mut().zip(&s.model_s) {
                *l = if s.time_s > 0.0 { acc / s.time_s } else { 0.0 };
            }
            s.busy_at_decision = upto;
        }
        self.last_decision = self.now;
    }

    /// A slot boundary: the policy decides for every pending request.
    pub(super) fn on_decide(
        &mut self,
        policy: &mut dyn Policy,
        obs: &mut [&mut dyn Observer],
        wants_truth: bool,
    ) -> Result<(), SimError> {
        self.decide_scheduled = false;
        if self.pending.is_empty() {
            return Ok(());
        }
        if self.stats {
            self.refresh_states();
        }
        let slot = self.world.scenario.slot_ns;
        let slot_idx = self.now.checked_div(slot).unwrap_or(self.slot_counter);
        self.slot_counter += 1;
        self.counters.decisions += 1;
        let truth = if wants_truth {
            let now = self.now;
            Some(GroundTruth {
                link_bandwidth_bps: self.srv.iter_mut().map(|s| s.bw.at(now)).collect(),
                contention: self.world.scenario.sim.contention,
                step_noise: self.world.scenario.sim.step_noise,
            })
        } else {
            None
        };
        let pending = std::mem::take(&mut self.pending);
        let mut out = vec![Decision::Defer; pending.len()];
        {
            let view = ClusterView {
                now_ns: self.now,
                slot: slot_idx,
                world: self.world,
                servers: &self.states,
                cost: self.cost,
                truth: truth.as_ref(),
                model_load: &self.model_load,
            };
            policy.schedule(&view, &pending, &mut out)?;
        }
        let mut notes = Vec::new();
        if obs.iter().any(|o| o.wants_notes()) {
            policy.explain(&mut notes);
        }
        let max_defers = self.world.scenario.sim.max_defers;
        let mut keep = Vec::new();
        for (i, (p, d)) in pending.iter().zip(out.iter()).enumerate() {
            let r = p.request;
            if let Decision::Assign(s) = *d {
                let bad = |m: String| {
                    Err(SimError::InvalidDecision {
                        policy: policy.name().to_string(),
                        request: r.id,
                        message: m,
                    })
                };
                let Some(server) = self.world.servers.get(s as usize) else {
                    return bad(format!(
                        "server index {s} does not exist ({} servers)",
                        self.world.servers.len()
                    ));
                };
                if !server.hosts(r.model) {
                    return bad(format!(
                        "server `{}` does not host model `{}`",
                        server.name, self.world.models[r.model as usize].name
                    ));
                }
            }
            let (now, note) = (self.now, notes.get(i));
            emit!(self, obs, o => o.on_decision(now, slot_idx, &r, *d, note));
            match *d {
                Decision::Assign(s) => self.assign(r, s, obs),
                Decision::Reject => {
                    emit!(self, obs, o => o.on_rejection(now, &r, RejectReason::Policy))
                }
                Decision::Defer => {
                    if p.defers >= max_defers {
                        emit!(self, obs, o => o.on_rejection(now, &r, RejectReason::DeferredTooLong));
                    } else {
                        keep.push(Pending {
                            request: r,
                            defers: p.defers + 1,
                        });
                    }
                }
            }
        }
        self.pending = keep;
        if !self.pending.is_empty() && !self.decide_scheduled {
            let t = match self.now.checked_div(slot) {
                None => self.now.saturating_add(DEFER_RETRY_NS),
                Some(k) => k.saturating_add(1).saturating_mul(slot),
            };
            self.decide_scheduled = true;
            self.schedule(t, Ev::Decide);
        }
        Ok(())
    }

    /// Starts the upload of `r` to server `s` (rejected if it can never fit there).
    fn assign(&mut self, r: Request, s: ServerId, obs: &mut [&mut dyn Observer]) {
        let kv_need = self.kv_need(&r);
        if kv_need > self.world.servers[s as usize].kv_capacity_bytes {
            let now = self.now;
            emit!(self, obs, o => o.on_rejection(now, &r, RejectReason::DoesNotFit));
            return;
        }
        let f = Flight::new(r, s, self.now);
        let id = match self.free.pop() {
            Some(id) => {
                self.flights[id as usize] = f;
                id
            }
            None => self.flights.push(f),
        };
        self.states[s as usize].uploading += 1;
        self.start_transfer(s, true, r.input_bytes as f64 * 8.0, id);
    }
}
