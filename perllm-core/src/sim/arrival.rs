//! Arrivals: requests taken from the source one at a time (checked against the scenario), and
//! their wait for the next slot boundary.

use super::events::Ev;
use super::{Sim, SimError};
use crate::observer::Observer;
use crate::policy::Pending;
use crate::request::{RejectReason, Request};
use crate::workload::RequestSource;

impl Sim<'_> {
    /// Takes the next request from `source` and schedules its arrival.
    pub(super) fn pull(&mut self, source: &mut dyn RequestSource) -> Result<(), SimError> {
        match source.next_request() {
            None => self.next_req = None,
            Some(r) => {
                let r = r?;
                self.validate_request(&r)?;
                self.last_arrival = r.arrival_ns;
                self.next_req = Some(r);
                self.schedule(r.arrival_ns.max(self.now), Ev::Arrival);
            }
        }
        Ok(())
    }

    fn validate_request(&self, r: &Request) -> Result<(), SimError> {
        let bad = |m: String| {
            Err(SimError::InvalidRequest {
                id: r.id,
                message: m,
            })
        };
        if r.arrival_ns < self.last_arrival {
            return bad(format!(
                "arrives at {} ns, before the previous request ({} ns): sources must be in arrival order",
                r.arrival_ns, self.last_arrival
            ));
        }
        if r.model as usize >= self.world.models.len() {
            return bad(format!("model index {} does not exist", r.model));
        }
        if !self.world.servers.iter().any(|s| s.hosts(r.model)) {
            return bad(format!(
                "no server hosts model `{}`",
                self.world.models[r.model as usize].name
            ));
        }
        if r.slo as usize >= self.world.slos.len() {
            return bad(format!("SLO class index {} does not exist", r.slo));
        }
        if r.prompt_tokens == 0 || r.output_tokens == 0 {
            return bad("prompt and output must have at least one token each".into());
        }
        Ok(())
    }

    /// KV-cache bytes `r` holds while it runs (prompt and output, reserved at admission).
    pub(super) fn kv_need(&self, r: &Request) -> u64 {
        super::kv_bytes(self.world, r.model, r.prompt_tokens, r.output_tokens)
    }

    /// A request arrives: rejected if no server could ever hold it, else pending until the next
    /// slot boundary.
    pub(super) fn on_arrival(&mut self, r: Request, obs: &mut [&mut dyn Observer]) {
        emit!(self, obs, o => o.on_arrival(&r));
        let need = self.kv_need(&r);
        if !self
            .world
            .servers
            .iter()
            .any(|s| s.hosts(r.model) && s.kv_capacity_bytes >= need)
        {
            let now = self.now;
            emit!(self, obs, o => o.on_rejection(now, &r, RejectReason::TooLarge));
            return;
        }
        self.pending.push(Pending {
            request: r,
            defers: 0,
        });
        if !self.decide_scheduled {
            let slot = self.world.scenario.slot_ns;
            let t = match self.now.checked_div(slot) {
                None => self.now,
                Some(k) => k.saturating_add(1).saturating_mul(slot),
            };
            self.decide_scheduled = true;
            self.schedule(t, Ev::Decide);
        }
    }
}
