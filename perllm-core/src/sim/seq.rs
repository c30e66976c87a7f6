//! A request's state while it waits or runs at its server, kept with the server.
//!
//! Engine steps change a running request's token counts and energy at every run's end, and
//! admission reads a waiting request's size. Kept in the request's [`super::Flight`], each run's
//! end read one flight per running sequence, scattered over memory: with thousands of servers
//! the largest single source of cache misses (cachegrind, 10,000 servers). Kept in the server's
//! queue and batch, they are read in one sweep over a few consecutive cache lines; the flight is
//! read once at the arrival at the server and written once when decoding ends.

use super::{Flight, kv_bytes};
use crate::spec::Nanos;
use crate::world::{ModelId, World};

/// A request in a server's FIFO queue: its flight and what admission needs to know.
#[derive(Clone, Copy, Debug)]
pub(super) struct Waiting {
    pub(super) f: u32,
    pub(super) prompt: u32,
    pub(super) output: u32,
    pub(super) model: ModelId,
}

impl Waiting {
    /// Flight `f` (`fl`) joins its server's queue.
    pub(super) fn of(f: u32, fl: &Flight) -> Self {
        Waiting {
            f,
            prompt: fl.prompt,
            output: fl.output,
            model: fl.model,
        }
    }

    /// KV-cache bytes the request holds while it runs (as [`super::Sim::kv_need`]).
    pub(super) fn kv_need(&self, world: &World) -> u64 {
        kv_bytes(world, self.model, self.prompt, self.output)
    }
}

/// A request in a server's running batch.
#[derive(Clone, Copy, Debug)]
pub(super) struct Seq {
    pub(super) admitted: Nanos,
    pub(super) first_token: Nanos,
    pub(super) inference_j: f64,
    pub(super) f: u32,
    /// Prompt tokens prefilled so far.
    pub(super) prefilled: u32,
    /// Prompt tokens step 0 of the current run prefills (0: none).
    pub(super) chunk: u32,
    pub(super) generated: u32,
    pub(super) prompt: u32,
    pub(super) output: u32,
    pub(super) model: ModelId,
}

impl Seq {
    /// `w` admitted at `now`, nothing prefilled yet.
    pub(super) fn admit(w: Waiting, now: Nanos) -> Self {
        Seq {
            admitted: now,
            first_token: 0,
            inference_j: 0.0,
            f: w.f,
            prefilled: 0,
            chunk: 0,
            generated: 0,
            prompt: w.prompt,
            output: w.output,
            model: w.model,
        }
    }

    pub(super) fn prefill_left(&self) -> u32 {
        self.prompt - self.prefilled
    }

    /// KV-cache bytes the sequence holds while it runs.
    pub(super) fn kv_need(&self, world: &World) -> u64 {
        kv_bytes(world, self.model, self.prompt, self.output)
    }

    /// Writes what the flight's outcome needs when decoding ends at `now`.
    pub(super) fn finish(&self, fl: &mut Flight, now: Nanos) {
        fl.admitted = self.admitted;
        fl.first_token = self.first_token;
        fl.decode_done = now;
        fl.inference_j = self.inference_j;
    }
}
