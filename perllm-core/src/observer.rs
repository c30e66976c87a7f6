//! Observers receive simulator events; metrics and logs are observers.

use crate::policy::Decision;
use crate::request::{Outcome, RejectReason, Request};
use crate::spec::Nanos;
use crate::world::ServerId;

/// Receives simulator events. Every method has an empty default.
pub trait Observer {
    /// A request arrived.
    fn on_arrival(&mut self, _req: &Request) {}
    /// A policy decided for a request in slot `slot` at `now`. `note` is the policy's explanation,
    /// present only if the observer asked for notes with [`Observer::wants_notes`].
    fn on_decision(
        &mut self,
        _now: Nanos,
        _slot: u64,
        _req: &Request,
        _d: Decision,
        _note: Option<&serde_json::Value>,
    ) {
    }
    /// Does this observer want the policy's per-decision notes? (Costs time; default no.)
    fn wants_notes(&self) -> bool {
        false
    }
    /// A request received its first token at `now`.
    fn on_first_token(&mut self, _now: Nanos, _req: &Request, _server: ServerId) {}
    /// A request completed.
    fn on_completion(&mut self, _o: &Outcome) {}
    /// A request was rejected.
    fn on_rejection(&mut self, _now: Nanos, _req: &Request, _reason: RejectReason) {}
    /// A server ran an engine step over `[start, end)` (reported when the run of steps ends).
    fn on_step(&mut self, _server: ServerId, _start: Nanos, _end: Nanos) {}
}
