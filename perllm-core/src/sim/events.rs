//! The event queue and the loop that drains it.
//!
//! Events are keyed by (time, sequence number): ties run in the order they were scheduled.
//! Completion events carry the version of the thing they complete; a stale version (the link or
//! run was rescheduled since) is skipped.

use super::{Sim, SimError};
use crate::observer::Observer;
use crate::policy::Policy;
use crate::report::Report;
use crate::spec::Nanos;
use crate::workload::RequestSource;
use crate::world::ServerId;

/// One kind of event of the simulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Ev {
    /// The request held in `Sim::next_req` arrives.
    Arrival,
    /// A slot boundary: the policy decides for pending requests.
    Decide,
    /// The next uplink completion of a server (if the version still matches).
    UpDone(ServerId, u64),
    /// The next downlink completion of a server.
    DownDone(ServerId, u64),
    /// A server's link bandwidth is re-drawn.
    Redraw(ServerId),
    /// A flight's upload reached its server (after the link latency).
    AtServer(u32),
    /// A flight's output reached the user.
    Delivered(u32),
    /// A server's planned run ends (if the version still matches).
    RunEnd(ServerId, u64),
}

impl Sim<'_> {
    /// Queues `ev` at time `t`, after every event already queued for `t`.
    pub(super) fn schedule(&mut self, t: Nanos, ev: Ev) {
        debug_assert!(t >= self.now, "events are never scheduled in the past");
        self.seq += 1;
        self.queue.push(t, self.seq, ev);
    }

    /// Drains the event queue: the whole simulation.
    pub(super) fn run(
        &mut self,
        policy: &mut dyn Policy,
        source: &mut dyn RequestSource,
        obs: &mut [&mut dyn Observer],
    ) -> Result<Report, SimError> {
        let wants_truth = policy.wants_ground_truth();
        self.stats = policy.reads_load_statistics();
        let drain = self.world.drain_ns();
        self.pull(source)?;
        while let Some((t, ev)) = self.queue.pop() {
            debug_assert!(t >= self.now, "simulated time never goes back");
            // The drain limit: nothing more arrives and the rest would end too late to matter.
            let stop = self.last_arrival.saturating_add(drain);
            if t > stop && self.next_req.is_none() {
                self.now = stop.max(self.now);
                self.stop_unfinished(obs);
                break;
            }
            self.now = t;
            self.counters.events += 1;
            match ev {
                Ev::Arrival => {
                    let r = self
                        .next_req
                        .take()
                        .expect("an Arrival event always has a request");
                    self.on_arrival(r, obs);
                    self.pull(source)?;
                }
                Ev::Decide => self.on_decide(policy, obs, wants_truth)?,
                Ev::UpDone(s, v) => {
                    if self.srv[s as usize].up.version == v {
                        self.on_link_done(s, true);
                    }
                }
                Ev::DownDone(s, v) => {
                    if self.srv[s as usize].down.version == v {
                        self.on_link_done(s, false);
                    }
                }
                Ev::Redraw(s) => self.on_redraw(s),
                Ev::AtServer(f) => self.on_at_server(f),
                Ev::Delivered(f) => self.on_delivered(f, policy, obs),
                Ev::RunEnd(s, v) => {
                    if self.srv[s as usize].run_version == v {
                        self.on_run_end(s, obs);
                    }
                }
            }
        }
        self.counters.skipped_rows = source.skipped();
        debug_assert_eq!(
            self.metrics.arrived(),
            self.metrics.ended(),
            "every request ends exactly once"
        );
        Ok(self.finish(policy, wants_truth))
    }
}
