//! Admission control as an option of any policy: `admission = reject_infeasible`.
//!
//! [`Admission`] wraps a policy. The policy places the slot's requests exactly as it would on its
//! own; admission control then rejects every request whose predicted completion on the server
//! the policy chose misses its deadline. So the placement of every admitted request is the
//! policy's own, and comparing a policy with and without the option separates what admission
//! control buys from what placement buys.
//!
//! Predicted completion of request `r` on server `s`: the cost model's estimate from the state
//! before the slot ([`ClusterView::estimate`]), its queueing raised to what the requests admitted
//! to `s` earlier in the same slot add: with `occupied = uploading + queued + running + admitted`
//! and `b = max_batch`, a full server (`occupied >= b`) makes the request wait
//! `(occupied - b) / b + 1` rounds of one prefill-and-decode each (the rule the bundled
//! baselines use). The request is infeasible if `now + predicted > arrival + deadline`.

use crate::policy::{ClusterView, Decision, Pending, Policy, PolicyError, PolicyStats};
use crate::request::{Outcome, Request};
use crate::spec::Nanos;
use crate::world::ServerId;

/// The values of the `admission` option.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AdmissionMode {
    /// Every decision of the policy stands (the default).
    #[default]
    None,
    /// A request the policy assigns is rejected if its predicted completion on that server
    /// misses its deadline.
    RejectInfeasible,
}

impl AdmissionMode {
    /// The parameter's name.
    pub const PARAM: &'static str = "admission";
    /// What `plugins info` shows for the option.
    pub const HELP: &'static str = "admission (none): `none` or `reject_infeasible`: reject a \
        request whose predicted completion on the server the policy chose misses its deadline \
        (applied by perllm to the policy's placements)";

    /// Parse the option's value; the error names the parameter and the accepted values.
    pub fn parse(value: &str) -> Result<AdmissionMode, String> {
        match value {
            "none" => Ok(AdmissionMode::None),
            "reject_infeasible" => Ok(AdmissionMode::RejectInfeasible),
            other => Err(format!(
                "parameter `admission` must be `none` or `reject_infeasible`, got `{other}`"
            )),
        }
    }

    /// The value as written in scenarios.
    pub fn as_str(self) -> &'static str {
        match self {
            AdmissionMode::None => "none",
            AdmissionMode::RejectInfeasible => "reject_infeasible",
        }
    }
}

/// Predicted completion of `req` on `server`, counted from `view.now_ns`, with `admitted`
/// requests already admitted to that server in this slot (see the module documentation).
pub fn predicted_ns(
    view: &ClusterView<'_>,
    req: &Request,
    server: ServerId,
    admitted: u32,
) -> Nanos {
    predict(view, req, server, admitted).total_ns
}

/// What [`predict`] returns: the cost model's estimate and the queueing admission control
/// predicts on top of the server's state.
#[derive(Clone, Copy, Debug)]
pub struct Prediction {
    /// The cost model's estimate from the state before the slot.
    pub estimate: crate::cost::Estimate,
    /// Predicted queueing: the estimate's, raised to the rounds the server's occupancy
    /// (with the slot's earlier admissions) implies.
    pub queue_ns: Nanos,
    /// Predicted completion, counted from `view.now_ns`.
    pub total_ns: Nanos,
}

/// [`predicted_ns`] with its parts.
pub fn predict(
    view: &ClusterView<'_>,
    req: &Request,
    server: ServerId,
    admitted: u32,
) -> Prediction {
    let e = view.estimate(req, server);
    let st = &view.servers[server as usize];
    let mb = view.world.servers[server as usize].max_batch.max(1);
    let occupied = st
        .uploading
        .saturating_add(st.queued)
        .saturating_add(st.running)
        .saturating_add(admitted);
    let queue = if occupied >= mb {
        let rounds = u64::from((occupied - mb) / mb + 1);
        rounds.saturating_mul(e.prefill_ns.saturating_add(e.decode_ns))
    } else {
        0
    };
    let queue_ns = e.queue_ns.max(queue);
    Prediction {
        estimate: e,
        queue_ns,
        total_ns: e
            .total_ns()
            .saturating_sub(e.queue_ns)
            .saturating_add(queue_ns),
    }
}

/// A request admission control rejected in the last slot (for the decision log).
#[derive(Clone, Copy, Debug)]
struct Refused {
    index: usize,
    server: ServerId,
    predicted_ns: Nanos,
    left_ns: i128,
}

/// A policy with admission control in front of its placements (see the module documentation).
pub struct Admission<P> {
    inner: P,
    mode: AdmissionMode,
    /// Requests admitted per server in the current slot (reused between slots).
    admitted: Vec<u32>,
    refused: Vec<Refused>,
    slot_len: usize,
    rejected_total: u64,
    checked_total: u64,
}

impl<P: Policy> Admission<P> {
    /// `inner` with admission control `mode`.
    pub fn new(inner: P, mode: AdmissionMode) -> Self {
        Admission {
            inner,
            mode,
            admitted: Vec::new(),
            refused: Vec::new(),
            slot_len: 0,
            rejected_total: 0,
            checked_total: 0,
        }
    }
    /// The wrapped policy.
    pub fn inner(&self) -> &P {
        &self.inner
    }
}

impl<P: Policy> Policy for Admission<P> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn schedule(
        &mut self,
        view: &ClusterView<'_>,
        pending: &[Pending],
        out: &mut [Decision],
    ) -> Result<(), PolicyError> {
        self.inner.schedule(view, pending, out)?;
        self.refused.clear();
        self.slot_len = pending.len();
        if self.mode == AdmissionMode::None {
            return Ok(());
        }
        self.admitted.clear();
        self.admitted.resize(view.servers.len(), 0);
        for (i, (p, d)) in pending.iter().zip(out.iter_mut()).enumerate() {
            let Decision::Assign(s) = *d else { continue };
            // An out-of-range server is the simulator's to report, unchanged.
            let Some(&admitted) = self.admitted.get(s as usize) else {
                continue;
            };
            if view.world.servers.get(s as usize).is_none() {
                continue;
            }
            let r = &p.request;
            self.checked_total += 1;
            let predicted = predicted_ns(view, r, s, admitted);
            let due = r.arrival_ns.saturating_add(view.deadline_ns(r));
            let done = view.now_ns.saturating_add(predicted);
            if done > due {
                *d = Decision::Reject;
                self.rejected_total += 1;
                self.refused.push(Refused {
                    index: i,
                    server: s,
                    predicted_ns: predicted,
                    left_ns: due as i128 - view.now_ns as i128,
                });
            } else {
                self.admitted[s as usize] += 1;
            }
        }
        Ok(())
    }

    fn observe(&mut self, outcome: &Outcome) {
        self.inner.observe(outcome)
    }

    fn wants_ground_truth(&self) -> bool {
        self.inner.wants_ground_truth()
    }

    fn reads_load_statistics(&self) -> bool {
        // Its check estimates every placement (load hints included).
        self.mode != AdmissionMode::None || self.inner.reads_load_statistics()
    }

    fn stats(&self) -> PolicyStats {
        let mut s = self.inner.stats();
        if self.mode != AdmissionMode::None {
            s.values
                .insert("admission.checked".into(), self.checked_total as f64);
            s.values
                .insert("admission.rejected".into(), self.rejected_total as f64);
        }
        s
    }

    fn explain(&mut self, out: &mut Vec<serde_json::Value>) {
        let start = out.len();
        self.inner.explain(out);
        if self.refused.is_empty() {
            return;
        }
        // Notes are positional: one per request of the slot.
        out.resize(
            start + self.slot_len.max(out.len() - start),
            serde_json::Value::Null,
        );
        for r in &self.refused {
            let note = serde_json::json!({
                "server": r.server,
                "predicted_s": r.predicted_ns as f64 * 1e-9,
                "deadline_left_s": r.left_ns as f64 * 1e-9,
            });
            let slot = &mut out[start + r.index];
            match slot {
                serde_json::Value::Object(m) => {
                    m.insert("admission".into(), note);
                }
                other => *other = serde_json::json!({ "admission": note }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simple::Fixed;

    #[test]
    fn the_option_parses_and_names_itself_in_errors() {
        assert_eq!(AdmissionMode::parse("none"), Ok(AdmissionMode::None));
        assert_eq!(
            AdmissionMode::parse("reject_infeasible"),
            Ok(AdmissionMode::RejectInfeasible)
        );
        let e = AdmissionMode::parse("maybe").unwrap_err();
        assert!(e.contains("`admission`") && e.contains("`maybe`"), "{e}");
        for m in [AdmissionMode::None, AdmissionMode::RejectInfeasible] {
            assert_eq!(AdmissionMode::parse(m.as_str()), Ok(m));
        }
    }

    /// Every request to edge server 0 at 10 requests/s, which overloads it (so some requests
    /// are predicted to miss there): the reports of that policy alone and wrapped in `mode`.
    fn overloaded(mode: AdmissionMode) -> (crate::Report, crate::Report) {
        let world = crate::testbed::paper(10.0, 10 * crate::spec::SECOND)
            .build()
            .unwrap();
        let plain = crate::run_synthetic(&world, &mut Fixed(0)).unwrap();
        let mut wrapped = Admission::new(Fixed(0), mode);
        let admitted = crate::run_synthetic(&world, &mut wrapped).unwrap();
        (plain, admitted)
    }

    #[test]
    fn admission_none_changes_nothing() {
        let (plain, none) = overloaded(AdmissionMode::None);
        assert_eq!(plain, none);
    }

    #[test]
    fn admission_rejects_only_what_the_prediction_says_misses_and_keeps_placements() {
        let (plain, adm) = overloaded(AdmissionMode::RejectInfeasible);
        let rejected = adm.policy_stats.values["admission.rejected"];
        assert!(rejected > 0.0, "the overloaded server must refuse some");
        assert!(adm.policy_stats.values["admission.checked"] > rejected);
        // Admission control helps here: fewer misses among fewer admitted requests.
        let refused = |r: &crate::Report| r.rejected_by_reason.get("policy").copied().unwrap_or(0);
        assert_eq!((refused(&adm) - refused(&plain)) as f64, rejected);
        assert!(
            adm.deadline_met >= plain.deadline_met,
            "{} < {}",
            adm.deadline_met,
            plain.deadline_met
        );
        // Every admitted request went where the policy put it: server 0.
        assert_eq!(adm.servers[0].assigned, adm.arrived - adm.rejected);
    }
}
