//! Requests and their outcomes.

use crate::spec::Nanos;
use crate::world::{ModelId, ServerId, SloId};
use serde::{Deserialize, Serialize};

/// One LLM request as it arrives.
///
/// `#[repr(C)]`, its fields ordered by size: the plugin ABI's in-place path (ABI 1.3) hands a
/// plugin the simulator's own [`crate::policy::Pending`] array, whose layout is
/// `perllm_plugin_abi::PendingRequest`'s (perllm-host checks every offset at compile time).
/// The serialised form keeps the order the fields had before (see `RequestFields`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "RequestFields", into = "RequestFields")]
#[repr(C)]
pub struct Request {
    /// Unique, increasing id.
    pub id: u64,
    /// Arrival time.
    pub arrival_ns: Nanos,
    /// Bytes to upload (prompt text plus attached context).
    pub input_bytes: u64,
    /// Bytes to download (the generated text).
    pub output_bytes: u64,
    /// Prompt length in tokens (at least 1).
    pub prompt_tokens: u32,
    /// Output length in tokens (at least 1).
    pub output_tokens: u32,
    /// Requested model.
    pub model: ModelId,
    /// SLO class.
    pub slo: SloId,
}

/// [`Request`]'s serialised form: its fields in their historical order (reports, decision logs
/// and the isolation protocol write them in this order).
#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename = "Request")]
struct RequestFields {
    id: u64,
    arrival_ns: Nanos,
    model: ModelId,
    prompt_tokens: u32,
    output_tokens: u32,
    input_bytes: u64,
    output_bytes: u64,
    slo: SloId,
}

impl From<RequestFields> for Request {
    fn from(f: RequestFields) -> Request {
        let RequestFields {
            id,
            arrival_ns,
            model,
            prompt_tokens,
            output_tokens,
            input_bytes,
            output_bytes,
            slo,
        } = f;
        Request {
            id,
            arrival_ns,
            input_bytes,
            output_bytes,
            prompt_tokens,
            output_tokens,
            model,
            slo,
        }
    }
}

impl From<Request> for RequestFields {
    fn from(r: Request) -> RequestFields {
        let Request {
            id,
            arrival_ns,
            input_bytes,
            output_bytes,
            prompt_tokens,
            output_tokens,
            model,
            slo,
        } = r;
        RequestFields {
            id,
            arrival_ns,
            model,
            prompt_tokens,
            output_tokens,
            input_bytes,
            output_bytes,
            slo,
        }
    }
}

/// Energy split into the objective's three terms, joules. (`#[repr(C)]`: part of
/// [`crate::cost::Estimate`]'s fixed layout.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[repr(C)]
pub struct Energy {
    /// Moving bits over links.
    pub transmission: f64,
    /// Running engine steps.
    pub inference: f64,
    /// Servers idling.
    pub idle: f64,
}

impl Energy {
    /// Sum of the three terms.
    pub fn total(&self) -> f64 {
        self.transmission + self.inference + self.idle
    }
    /// Weighted sum with the objective's weights.
    pub fn weighted(&self, w: &crate::spec::ObjectiveWeights) -> f64 {
        w.transmission * self.transmission + w.inference * self.inference + w.idle * self.idle
    }
}

impl std::ops::AddAssign for Energy {
    fn add_assign(&mut self, o: Energy) {
        self.transmission += o.transmission;
        self.inference += o.inference;
        self.idle += o.idle;
    }
}

/// Why a request was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The policy rejected it.
    Policy,
    /// It was deferred more than `sim.max_defers` times.
    DeferredTooLong,
    /// Its KV cache does not fit any server hosting its model.
    TooLarge,
    /// It was placed on a server whose KV memory can never hold it.
    DoesNotFit,
    /// It had not been delivered when the run stopped, `sim.drain` after the last arrival.
    Unfinished,
}

impl RejectReason {
    /// Snake-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Policy => "policy",
            RejectReason::DeferredTooLong => "deferred_too_long",
            RejectReason::TooLarge => "too_large",
            RejectReason::DoesNotFit => "does_not_fit",
            RejectReason::Unfinished => "unfinished",
        }
    }
}

/// What really happened to a completed request: the policy's feedback and a per-request log row.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The request.
    pub request: Request,
    /// Where it ran.
    pub server: ServerId,
    /// Time of the placement decision.
    pub decided_ns: Nanos,
    /// Upload time (latency + transfer).
    pub upload_ns: Nanos,
    /// Wait at the server before admission to the engine.
    pub queue_ns: Nanos,
    /// From admission to the first token.
    pub prefill_ns: Nanos,
    /// From the first token to the last.
    pub decode_ns: Nanos,
    /// Download time (latency + transfer).
    pub download_ns: Nanos,
    /// Time to first token, from arrival.
    pub ttft_ns: Nanos,
    /// Processing time D, from arrival to the last output token delivered.
    pub total_ns: Nanos,
    /// The SLO deadline.
    pub deadline_ns: Nanos,
    /// D <= deadline.
    pub met: bool,
    /// Energy attributed to this request (idle energy is not attributed per request: 0 here).
    pub energy: Energy,
}
