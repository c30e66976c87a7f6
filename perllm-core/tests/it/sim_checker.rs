//! An observer that checks per-request invariants while a run goes.

use perllm_core::observer::Observer;
use perllm_core::policy::Decision;
use perllm_core::request::{Outcome, RejectReason, Request};
use perllm_core::spec::Nanos;
use perllm_core::workload::Synthetic;
use perllm_core::{CostModel, Policy, Report, World, run};
use std::collections::HashMap;

/// A run of `policy` on `world`'s synthetic workload, watched by a [`Checker`]: the report and
/// the checker (whose violations the caller asserts on).
pub fn checked_run(
    world: &World,
    policy: &mut dyn Policy,
    cost: &dyn CostModel,
) -> (Report, Checker) {
    let mut ch = Checker::default();
    let report = run(
        world,
        policy,
        cost,
        &mut Synthetic::new(world),
        &mut [&mut ch],
    )
    .expect("run");
    (report, ch)
}

/// Checks the per-request invariants while a run goes.
#[derive(Default)]
pub struct Checker {
    pub ends: HashMap<u64, u32>,
    pub arrived: u64,
    last_completion: Nanos,
    last_decision: Nanos,
    pub violations: Vec<String>,
    pub outcomes: Vec<Outcome>,
    steps: HashMap<u32, Nanos>,
}

impl Observer for Checker {
    fn on_arrival(&mut self, r: &Request) {
        self.arrived += 1;
        self.ends.insert(r.id, 0);
    }
    fn on_decision(
        &mut self,
        now: Nanos,
        _slot: u64,
        _r: &Request,
        _d: Decision,
        _n: Option<&serde_json::Value>,
    ) {
        if now < self.last_decision {
            self.violations.push(format!(
                "decision time went back: {now} < {}",
                self.last_decision
            ));
        }
        self.last_decision = now;
    }
    fn on_completion(&mut self, o: &Outcome) {
        *self
            .ends
            .get_mut(&o.request.id)
            .expect("completed request arrived") += 1;
        let t = o.request.arrival_ns + o.total_ns;
        if t < self.last_completion {
            self.violations.push(format!(
                "completion time went back: {t} < {}",
                self.last_completion
            ));
        }
        self.last_completion = t;
        if o.met && o.total_ns > o.deadline_ns {
            self.violations.push(format!(
                "request {} counted as met with D {} > deadline {}",
                o.request.id, o.total_ns, o.deadline_ns
            ));
        }
        let phases = o.upload_ns + o.queue_ns + o.prefill_ns + o.decode_ns + o.download_ns;
        if phases != o.total_ns - (o.decided_ns - o.request.arrival_ns) {
            self.violations
                .push(format!("request {}: phases do not add up", o.request.id));
        }
        self.outcomes.push(*o);
    }
    fn on_rejection(&mut self, _now: Nanos, r: &Request, _reason: RejectReason) {
        *self.ends.get_mut(&r.id).expect("rejected request arrived") += 1;
    }
    fn on_step(&mut self, server: u32, start: Nanos, end: Nanos) {
        let last = self.steps.entry(server).or_insert(0);
        if start < *last || end <= start {
            self.violations.push(format!(
                "server {server}: step [{start}, {end}) overlaps or is empty"
            ));
        }
        *last = end;
    }
}
