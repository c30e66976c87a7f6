//! Trivial in-core policies for tests, examples and simulator benchmarks, and [`from_fn`], a
//! policy from a closure.
//!
//! The comparison baselines (cloud-only, greedy, ucb1, ...) ship as plugins in `perllm-plugins`;
//! these exist so that core's own tests and benchmarks need no plugin.

use crate::policy::{ClusterView, Decision, Pending, Policy, PolicyError};

/// Sends each request to the server hosting its model with the fewest requests in flight per batch
/// slot (uploading + queued + running, divided by `max_batch`); ties go to the lower server id.
#[derive(Clone, Debug, Default)]
pub struct LeastLoaded {
    /// Requests placed in the current slot, per server (so one slot spreads its requests).
    placed: Vec<u32>,
}

impl Policy for LeastLoaded {
    fn name(&self) -> &str {
        "least-loaded (core)"
    }

    fn reads_load_statistics(&self) -> bool {
        false
    }

    fn schedule(
        &mut self,
        view: &ClusterView<'_>,
        pending: &[Pending],
        out: &mut [Decision],
    ) -> Result<(), PolicyError> {
        self.placed.clear();
        self.placed.resize(view.servers.len(), 0);
        for (p, d) in pending.iter().zip(out.iter_mut()) {
            let best = view
                .world
                .servers
                .iter()
                .filter(|s| s.hosts(p.request.model))
                .map(|s| {
                    let st = &view.servers[s.id as usize];
                    let load = st.uploading + st.queued + st.running + self.placed[s.id as usize];
                    (load as f64 / s.max_batch as f64, s.id)
                })
                .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            *d = match best {
                Some((_, s)) => {
                    self.placed[s as usize] += 1;
                    Decision::Assign(s)
                }
                None => Decision::Reject,
            };
        }
        Ok(())
    }
}

/// Sends every request to one fixed server (rejecting requests for models it does not host).
#[derive(Clone, Debug)]
pub struct Fixed(pub crate::world::ServerId);

impl Policy for Fixed {
    fn name(&self) -> &str {
        "fixed"
    }

    fn reads_load_statistics(&self) -> bool {
        false
    }

    fn schedule(
        &mut self,
        view: &ClusterView<'_>,
        pending: &[Pending],
        out: &mut [Decision],
    ) -> Result<(), PolicyError> {
        let s = &view.world.servers[self.0 as usize];
        for (p, d) in pending.iter().zip(out.iter_mut()) {
            *d = if s.hosts(p.request.model) {
                Decision::Assign(self.0)
            } else {
                Decision::Reject
            };
        }
        Ok(())
    }
}

/// Cycles through the servers hosting each request's model, in id order: O(1) per decision on
/// average, for simulator benchmarks where the policy must cost next to nothing.
#[derive(Clone, Debug, Default)]
pub struct RoundRobin {
    next: usize,
}

impl Policy for RoundRobin {
    fn name(&self) -> &str {
        "round-robin (core)"
    }

    fn reads_load_statistics(&self) -> bool {
        false
    }

    fn schedule(
        &mut self,
        view: &ClusterView<'_>,
        pending: &[Pending],
        out: &mut [Decision],
    ) -> Result<(), PolicyError> {
        let servers = &view.world.servers;
        for (p, d) in pending.iter().zip(out.iter_mut()) {
            *d = Decision::Reject;
            for _ in 0..servers.len() {
                let s = &servers[self.next % servers.len()];
                self.next = (self.next + 1) % servers.len();
                if s.hosts(p.request.model) {
                    *d = Decision::Assign(s.id);
                    break;
                }
            }
        }
        Ok(())
    }
}

/// A policy that decides each pending request on its own, in slot order, with `decide(view,
/// request)`: a [`Policy`] from a closure (as `tower::service_fn` makes a service), for tests,
/// benchmarks and one-line policies. The closure may keep state across calls (it is `FnMut`).
///
/// ```
/// use perllm_core::{Decision, simple::from_fn};
/// // Every request to the first server hosting its model; none left waiting.
/// let first = from_fn("first", |view, p| match view.candidates(&p.request).next() {
///     Some(s) => Decision::Assign(s),
///     None => Decision::Reject,
/// });
/// # let _ = first;
/// ```
pub fn from_fn<F>(name: &'static str, decide: F) -> FromFn<F>
where
    F: FnMut(&ClusterView<'_>, &Pending) -> Decision + Send,
{
    FromFn { name, decide }
}

/// The policy [`from_fn`] returns.
#[derive(Clone)]
pub struct FromFn<F> {
    name: &'static str,
    decide: F,
}

impl<F> std::fmt::Debug for FromFn<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FromFn").field("name", &self.name).finish()
    }
}

impl<F> Policy for FromFn<F>
where
    F: FnMut(&ClusterView<'_>, &Pending) -> Decision + Send,
{
    fn name(&self) -> &str {
        self.name
    }

    fn schedule(
        &mut self,
        view: &ClusterView<'_>,
        pending: &[Pending],
        out: &mut [Decision],
    ) -> Result<(), PolicyError> {
        for (p, d) in pending.iter().zip(out.iter_mut()) {
            *d = (self.decide)(view, p);
        }
        Ok(())
    }
}
