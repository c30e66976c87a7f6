//! The wire protocol between the host and an isolated plugin worker.
//!
//! Frames are a little-endian `u32` length and a [postcard](https://docs.rs/postcard) payload of
//! core types (`ServerState`, `Pending`, `Estimate`, `Outcome`), never the C layout: the worker
//! rebuilds the ABI views itself, with its own copy of the host code. One request, one reply;
//! outcomes for `observe` travel with the next request (the core `observe` cannot fail, so it
//! needs no reply of its own).

use perllm_core::Outcome;
use perllm_core::cost::Estimate;
use perllm_core::policy::{Decision, Pending, PolicyStats, ServerState};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};

/// Version of this protocol: the host and the worker must be the same perllm build.
pub const WIRE_VERSION: u32 = 1;

/// Largest frame accepted, bytes (a schedule call of 100,000 pending requests on 100 servers
/// with estimates is about 80 MB).
pub const MAX_FRAME: usize = 1 << 30;

/// The first message: which plugin to create, and the world it will see.
#[derive(Debug, Serialize, Deserialize)]
pub struct Init {
    /// [`WIRE_VERSION`] of the host.
    pub wire_version: u32,
    /// The library, as the host loaded it.
    pub library: std::path::PathBuf,
    /// The policy's name in that library.
    pub plugin: String,
    /// Its configuration (JSON object).
    pub config: String,
    /// The seed passed to `create` (already derived from the run's seed).
    pub seed: u64,
    /// Wall-clock budget of a call, ns (counted in the policy's stats, as in-process).
    pub budget_ns: u64,
    /// The scenario (JSON, as `perllm export` writes it): the worker builds the same world.
    pub scenario_json: String,
    /// Servers and models of the host's world, checked against the worker's.
    pub servers: u32,
    /// Models of the host's world.
    pub models: u32,
}

/// A request from the host (the worker's owned form; [`RequestRef`] is the host's borrowed one,
/// with the same encoding).
#[derive(Debug, Deserialize)]
pub enum Request {
    /// Deliver `observed` to `observe`, then call `schedule`.
    Schedule {
        /// Outcomes since the last request, in order.
        observed: Vec<Outcome>,
        /// Slot index.
        slot: u64,
        /// Simulated time, ns.
        now_ns: u64,
        /// Every server's state.
        servers: Vec<ServerState>,
        /// The pending requests.
        pending: Vec<Pending>,
        /// If the policy wants estimates: for each pending request in order, one estimate per
        /// server hosting its model, in server order.
        estimates: Vec<Estimate>,
    },
    /// Deliver `observed`, then return the policy's statistics.
    Stats {
        /// Outcomes since the last request.
        observed: Vec<Outcome>,
    },
}

/// [`Request`], borrowed (what the host sends).
#[derive(Debug, Serialize)]
pub enum RequestRef<'a> {
    /// See [`Request::Schedule`].
    Schedule {
        /// Outcomes since the last request.
        observed: &'a [Outcome],
        /// Slot index.
        slot: u64,
        /// Simulated time, ns.
        now_ns: u64,
        /// Every server's state.
        servers: &'a [ServerState],
        /// The pending requests.
        pending: &'a [Pending],
        /// Estimates, as in [`Request::Schedule`].
        estimates: &'a [Estimate],
    },
    /// See [`Request::Stats`].
    Stats {
        /// Outcomes since the last request.
        observed: &'a [Outcome],
    },
}

/// A decision on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireDecision {
    /// [`Decision::Assign`].
    Assign(u32),
    /// [`Decision::Reject`].
    Reject,
    /// [`Decision::Defer`].
    Defer,
}

impl From<Decision> for WireDecision {
    fn from(d: Decision) -> Self {
        match d {
            Decision::Assign(s) => WireDecision::Assign(s),
            Decision::Reject => WireDecision::Reject,
            Decision::Defer => WireDecision::Defer,
        }
    }
}

impl From<WireDecision> for Decision {
    fn from(d: WireDecision) -> Self {
        match d {
            WireDecision::Assign(s) => Decision::Assign(s),
            WireDecision::Reject => Decision::Reject,
            WireDecision::Defer => Decision::Defer,
        }
    }
}

/// A reply of the worker.
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    /// The plugin was created.
    Ready {
        /// Does it want estimates (`FLAG_WANTS_ESTIMATES`)?
        wants_estimates: bool,
    },
    /// The decisions of a `schedule` call, one per pending request.
    Decisions(Vec<WireDecision>),
    /// The call failed: the in-process host's message (it names the plugin, library and entry
    /// point). The worker stays usable; the host never calls the policy again.
    Failed(String),
    /// The policy's statistics, and the first failure recorded (e.g. an `observe` error or an
    /// invalid statistic name).
    Stats(PolicyStats, Option<String>),
}

/// Append the frame of `msg` to `buf` (cleared first) and write it to `w`.
pub fn send<T: Serialize, W: Write>(w: &mut W, buf: &mut Vec<u8>, msg: &T) -> std::io::Result<()> {
    buf.clear();
    buf.extend_from_slice(&[0; 4]);
    let mut b = postcard::to_extend(msg, std::mem::take(buf)).map_err(std::io::Error::other)?;
    let len = b.len() - 4;
    if len > MAX_FRAME {
        *buf = b;
        return Err(std::io::Error::other(format!(
            "message of {len} bytes is larger than the {MAX_FRAME}-byte limit"
        )));
    }
    b[..4].copy_from_slice(&(len as u32).to_le_bytes());
    let r = w.write_all(&b).and_then(|()| w.flush());
    *buf = b;
    r
}

/// Read one frame from a blocking reader into `buf`; `Ok(false)` at a clean end of input.
pub fn recv_blocking<R: Read>(r: &mut R, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::other(format!(
            "frame of {len} bytes is larger than the {MAX_FRAME}-byte limit"
        )));
    }
    buf.clear();
    buf.resize(len, 0);
    r.read_exact(buf)?;
    Ok(true)
}

/// Decode a payload.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> std::io::Result<T> {
    postcard::from_bytes(bytes).map_err(|e| std::io::Error::other(format!("bad message: {e}")))
}
