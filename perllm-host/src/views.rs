//! The views a [`crate::ForeignPolicy`] hands to its plugin's `schedule`, kept alive across
//! calls so that a call writes only what changed since the last one:
//!
//! - a server's view is written whole when the world is first seen (or is another world);
//!   afterwards a call rewrites only its load fields (the [`ServerState`]) and its two
//!   pointers into the world (name, hosted models), never the fields fixed for a run;
//! - a request's view is written when the request is first pending; a request still pending
//!   at a later call (deferred, or offered again) keeps its view and only `defers` is updated;
//! - the placements are pre-filled with `ACTION_DEFER` once and reset by the translation of
//!   the plugin's answer into core decisions, which reads each placement anyway.

use crate::convert::{request_view, server_view};
use perllm_core::policy::{Decision, Pending, ServerState};
use perllm_core::{Server, World};
use perllm_plugin_abi as abi;

/// A placement as the host pre-fills it (`ACTION_DEFER`, `NO_SERVER`).
const DEFER: abi::Placement = <abi::Placement as abi::Versioned>::DEFAULT;

/// What a placement could not be translated into a decision for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BadPlacement {
    /// Index of the placement (and of the pending request it decides).
    pub index: usize,
    /// Its action and server as the plugin left them.
    pub action: u32,
    pub server: u32,
}

/// The server, request and placement arrays of a foreign policy's slot views.
///
/// Safety of the cache: the server views point into the world (names, hosted models); those
/// pointers are rewritten at every call from the call's world, so they never outlive it. The
/// other cached fields are plain values: a world at another address, or simulated time going
/// backwards (another run through the same instance), rebuilds every view. Request views are
/// matched by request id and arrival time, which identify a request within a run. The views
/// are `const` to the plugin; one that writes into them anyway misleads only itself: the host
/// reads them back only to decide whether to rewrite them, and checks placements against the
/// core's requests and its own hosting table.
#[derive(Debug, Default)]
pub(crate) struct SlotViews {
    /// The world the fixed server fields were written for (compared, never dereferenced).
    world: usize,
    /// Its server array and length (a world rebuilt in place is another world).
    world_servers: (usize, usize),
    /// `now_ns` of the last call.
    last_now: u64,
    pub servers: Vec<abi::ServerView>,
    /// `requests[..cached]` are the views of the last call's pending requests, in its order.
    pub requests: Vec<abi::RequestView>,
    cached: usize,
    /// Every placement is [`DEFER`] between calls.
    pub out: Vec<abi::Placement>,
}

impl SlotViews {
    /// Prepare the views of a call at `now_ns` in `world` with `states` and `pending`: after it,
    /// `servers` holds one view per server, `requests[..pending.len()]` one per pending request
    /// and `out[..pending.len()]` pre-filled placements. True if the world is not the last
    /// call's (every view was rewritten).
    #[inline]
    pub fn prepare(
        &mut self,
        world: &World,
        states: &[ServerState],
        pending: &[Pending],
        now_ns: u64,
    ) -> bool {
        let changed = self.prepare_servers(world, states, now_ns);
        self.prepare_requests(world, pending);
        if self.out.len() < pending.len() {
            self.out.resize(pending.len(), DEFER);
        }
        changed
    }

    /// Prepare the server views only (the in-place path, which has no request views or
    /// placements). True if the world is not the last call's.
    #[inline]
    pub fn prepare_servers(&mut self, world: &World, states: &[ServerState], now_ns: u64) -> bool {
        let key = (
            world.servers.as_ptr() as usize,
            world.servers.len().min(states.len()),
        );
        let changed = self.world != world as *const World as usize
            || self.world_servers != key
            || now_ns < self.last_now;
        if changed {
            self.world = world as *const World as usize;
            self.world_servers = key;
            self.servers.clear();
            self.servers.extend(
                world
                    .servers
                    .iter()
                    .zip(states)
                    .map(|(s, st)| server_view(world, s, st)),
            );
            self.cached = 0;
        } else {
            for ((v, s), st) in self.servers.iter_mut().zip(&world.servers).zip(states) {
                update_server(v, s, st);
            }
        }
        self.last_now = now_ns;
        changed
    }

    /// Write the views of the requests that were not pending at the last call; keep the others.
    #[inline]
    fn prepare_requests(&mut self, world: &World, pending: &[Pending]) {
        let n = pending.len();
        if self.requests.len() < n {
            self.requests
                .resize(n, <abi::RequestView as abi::Versioned>::DEFAULT);
        }
        let cached = self.cached.min(self.requests.len());
        let views = &mut self.requests[..];
        // The usual cases first: the same requests as the last call in the same order (a
        // slot decided again), or requests all newer than the cached ones (the next slot; ids
        // increase with arrival).
        let mut i = 0;
        for (v, p) in views[..cached.min(n)].iter_mut().zip(pending) {
            if v.id != p.request.id || v.arrival_ns != p.request.arrival_ns {
                break;
            }
            v.defers = p.defers;
            i += 1;
        }
        if i == n {
            self.cached = n;
            return;
        }
        // No id in common with the cached ones (ids of the remaining pending requests all
        // above or all below them): every view is new.
        let disjoint = cached == 0
            || views[cached - 1].id < pending[i].request.id
            || pending[n - 1].request.id < views[0].id;
        if disjoint {
            for (v, p) in views[i..n].iter_mut().zip(&pending[i..]) {
                *v = request_view(world, &p.request, p.defers);
            }
            self.cached = n;
            return;
        }
        // Otherwise a merge of two lists in pending order: the requests still pending come
        // first, in the order of the last call, the new ones after them (the simulator's
        // order). Any other order is still correct, it only writes more views.
        let mut j = i;
        for (i, p) in pending.iter().enumerate().skip(i) {
            let r = &p.request;
            while j < cached && views[j].id < r.id {
                j += 1;
            }
            if j < cached && views[j].id == r.id && views[j].arrival_ns == r.arrival_ns {
                // `i <= j`: entry `i` was read already (or is this one).
                if i != j {
                    views[i] = views[j];
                }
                views[i].defers = p.defers;
                j += 1;
            } else {
                // Entries `i..j` are read already: writing entry `i` loses nothing unread.
                j = j.max(i + 1).min(cached);
                views[i] = request_view(world, r, p.defers);
            }
        }
        self.cached = n;
    }

    /// Check the plugin's placements `out[..decisions.len()]` and translate them into
    /// `decisions` (placement `i` decides `pending[i]`), resetting each to `ACTION_DEFER` for
    /// the next call. A placement with an unknown action, or assigning a request to a server
    /// that does not exist or does not host its model (`hosts`), stops the translation (every
    /// placement is reset all the same).
    #[inline]
    pub fn translate(
        &mut self,
        pending: &[Pending],
        hosts: &Hosts,
        decisions: &mut [Decision],
    ) -> Result<(), BadPlacement> {
        let n = decisions.len().min(self.out.len()).min(pending.len());
        let mut bad = None;
        for (i, ((p, d), q)) in self.out[..n]
            .iter_mut()
            .zip(decisions.iter_mut())
            .zip(pending)
            .enumerate()
        {
            let (action, server) = (p.action, p.server);
            *p = DEFER;
            *d = match action {
                abi::ACTION_ASSIGN if hosts.hosts(q.request.model, server) => {
                    Decision::Assign(server)
                }
                abi::ACTION_DEFER => Decision::Defer,
                abi::ACTION_REJECT => Decision::Reject,
                _ => {
                    bad = Some(BadPlacement {
                        index: i,
                        action,
                        server,
                    });
                    break;
                }
            };
        }
        match bad {
            None => Ok(()),
            Some(b) => {
                self.reset(n);
                Err(b)
            }
        }
    }

    /// Reset the first `n` placements (after a failed call: the plugin may have written any).
    #[cold]
    pub fn reset(&mut self, n: usize) {
        let n = n.min(self.out.len());
        self.out[..n].fill(DEFER);
    }
}

/// Which server hosts which model, one bit per (model, server) pair.
#[derive(Debug, Default)]
pub(crate) struct Hosts {
    servers: usize,
    /// 64-bit words per model.
    words: usize,
    bits: Vec<u64>,
}

impl Hosts {
    /// The table of `world`.
    pub fn new(world: &World) -> Hosts {
        let servers = world.servers.len();
        let words = servers.div_ceil(64).max(1);
        let mut bits = vec![0u64; words * world.models.len()];
        for (m, row) in bits.chunks_exact_mut(words).enumerate() {
            for (i, s) in world.servers.iter().enumerate() {
                if s.hosts(m as u16) {
                    row[i / 64] |= 1 << (i % 64);
                }
            }
        }
        Hosts {
            servers,
            words,
            bits,
        }
    }
    /// Does server `s` exist and host `model`?
    #[inline]
    pub fn hosts(&self, model: u16, s: u32) -> bool {
        let s = s as usize;
        if self.words == 1 {
            // Bits of servers beyond the last are 0.
            return s < 64
                && self
                    .bits
                    .get(model as usize)
                    .is_some_and(|w| w >> s & 1 != 0);
        }
        s < self.servers
            && self
                .bits
                .get(model as usize * self.words + s / 64)
                .is_some_and(|w| w >> (s % 64) & 1 != 0)
    }
}

/// Rewrite the fields of `v` that change during a run: the server's load and its pointers
/// into the world.
#[inline]
fn update_server(v: &mut abi::ServerView, s: &Server, st: &ServerState) {
    v.uploading = st.uploading;
    v.queued = st.queued;
    v.running = st.running;
    v.downloading = st.downloading;
    v.free_kv_bytes = st.free_kv_bytes;
    v.kv_capacity_bytes = st.kv_capacity_bytes;
    v.pending_output_tokens = st.pending_output_tokens;
    v.bandwidth_estimate_bps = st.bandwidth_estimate_bps;
    v.recent_utilization = st.recent_utilization;
    v.models = abi::Slice::new(&s.models);
    v.name = abi::StrRef::new(&s.name);
}

#[cfg(test)]
mod tests {
    use super::*;
    use perllm_core::Request;
    use perllm_core::spec::SECOND;

    fn pending(ids: &[u64]) -> Vec<Pending> {
        ids.iter()
            .map(|&id| Pending {
                request: Request {
                    id,
                    arrival_ns: id * 1000,
                    model: (id % 2) as u16,
                    prompt_tokens: 10 + id as u32,
                    output_tokens: 20,
                    input_bytes: 100 + id,
                    output_bytes: 40,
                    slo: (id % 3) as u16,
                },
                defers: (id % 4) as u32,
            })
            .collect()
    }

    /// Whatever the sequence of calls, the views are those written from scratch. Views of
    /// requests still pending in the simulator's order (the same slot again; deferred requests
    /// first, new ones after) are kept (a marker in `reserved` survives); in another order they
    /// may be written again.
    #[test]
    fn cached_views_are_the_views_of_the_pending_requests() {
        let world = perllm_core::testbed::paper(1.0, SECOND).build().unwrap();
        let states = ServerState::all_idle(&world);
        let mut v = SlotViews::default();
        let calls: [&[u64]; 8] = [
            &[1, 2, 3, 4],
            &[1, 2, 3, 4],    // the same slot again
            &[2, 4, 5, 6, 7], // 2 and 4 deferred, 5..7 new
            &[8, 9],          // all new
            &[9, 8],          // another order (index 4)
            &[],
            &[3, 10, 11, 12, 13, 14],
            &[3, 11, 14, 15],
        ];
        for (k, ids) in calls.iter().enumerate() {
            let mut p = pending(ids);
            for x in &mut p {
                x.defers += k as u32;
            }
            let marked: Vec<u64> = v.requests[..v.cached]
                .iter()
                .filter(|r| r.reserved == 7)
                .map(|r| r.id)
                .collect();
            v.prepare(&world, &states, &p, k as u64);
            assert!(v.out.len() >= p.len());
            for (i, x) in p.iter().enumerate() {
                let fresh = request_view(&world, &x.request, x.defers);
                let got = v.requests[i];
                let kept = got.reserved == 7;
                assert!(!kept || marked.contains(&x.request.id), "call {k}");
                if k != 4 {
                    assert_eq!(
                        kept,
                        marked.contains(&x.request.id),
                        "call {k}, request {i}"
                    );
                }
                assert_eq!(
                    abi::RequestView { reserved: 0, ..got },
                    fresh,
                    "call {k}, request {i}"
                );
            }
            for r in &mut v.requests[..p.len()] {
                r.reserved = 7;
            }
        }
        // Time going backwards (another run): everything is written again.
        let p = pending(&[3, 11]);
        v.prepare(&world, &states, &p, 0);
        assert!(v.requests[..2].iter().all(|r| r.reserved == 0));
    }

    /// Placements are checked, translated and reset to `ACTION_DEFER`, also after a refusal.
    #[test]
    fn placements_are_checked_translated_and_reset() {
        let world = perllm_core::testbed::paper(1.0, SECOND).build().unwrap();
        let states = ServerState::all_idle(&world);
        let hosts = Hosts::new(&world);
        let ns = world.servers.len() as u32;
        let cloud = (0..ns).find(|&s| hosts.hosts(1, s)).unwrap();
        let edge = (0..ns).find(|&s| !hosts.hosts(1, s)).unwrap();
        let mut v = SlotViews::default();
        let p = pending(&[1, 2, 3, 5]); // models 1, 0, 1, 1
        let place = |v: &mut SlotViews, x: [(u32, u32); 4]| {
            v.prepare(&world, &states, &p, 0);
            assert!(v.out[..4].iter().all(|o| *o == DEFER));
            for (o, (action, server)) in v.out.iter_mut().zip(x) {
                *o = abi::Placement {
                    struct_size: 99,
                    action,
                    server,
                    reserved: 5,
                };
            }
        };
        let mut d = vec![Decision::Defer; 4];
        let assign = abi::ACTION_ASSIGN;
        place(
            &mut v,
            [
                (assign, cloud),
                (abi::ACTION_REJECT, 0),
                (abi::ACTION_DEFER, 3),
                (assign, cloud),
            ],
        );
        v.translate(&p, &hosts, &mut d).unwrap();
        assert_eq!(
            d,
            [
                Decision::Assign(cloud),
                Decision::Reject,
                Decision::Defer,
                Decision::Assign(cloud)
            ]
        );
        assert!(v.out[..4].iter().all(|o| *o == DEFER));
        for (bad, index, action, server) in [
            ([(assign, cloud), (9, 0), (0, 0), (0, 0)], 1, 9, 0),
            (
                [(assign, cloud), (0, 0), (assign, edge), (0, 0)],
                2,
                assign,
                edge,
            ),
            ([(0, 0), (0, 0), (0, 0), (assign, ns)], 3, assign, ns),
            ([(assign, 64), (0, 0), (0, 0), (0, 0)], 0, assign, 64),
            (
                [(assign, u32::MAX), (0, 0), (0, 0), (0, 0)],
                0,
                assign,
                u32::MAX,
            ),
        ] {
            place(&mut v, bad);
            let e = v.translate(&p, &hosts, &mut d).unwrap_err();
            assert_eq!((e.index, e.action, e.server), (index, action, server));
            assert!(v.out[..4].iter().all(|o| *o == DEFER));
        }
    }
}
