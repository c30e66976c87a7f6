//! The step noise as the simulator draws it: how much of it no schedule can escape.
//!
//! A server prices each planned engine step with the next draw of its own seeded stream
//! (`sim/batch.rs`: `1 + step_noise x (2u - 1)`, `u` from `stream_rng(seed, SERVER_BASE + id)`),
//! so for a given scenario and seed every schedule meets the same multipliers, in the same
//! order. A request's decode steps take consecutive draws except where a run of steps is cut
//! short (draws planned but never used) or a prefill-first step leaves it out, and both happen
//! only when another request arrives at or is admitted to its server while it decodes. So its
//! `n` decode steps use at most `m` windows of consecutive positions of the stream, and their
//! multipliers sum to at least `n (1 - step_noise)` plus the least excess `m` such windows can
//! have. The argument, with the counts, is in docs/perllm-policy.md ("The step noise as drawn").

use super::Group;
use crate::cost::Roofline;
use crate::request::Request;
use crate::rng::{stream, stream_rng, unit_f64};
use crate::sim::{DEFER_RETRY_NS, MAX_RUN_STEPS};
use crate::world::World;

/// Per group of servers: the floor of its noise streams, and which requests can arrive at one of
/// its servers while a given request decodes there.
pub(super) struct Drawn {
    floors: Vec<Floor>,
    /// Arrival times (ns) of the requests of a model the group hosts, sorted.
    arrivals: Vec<Vec<u64>>,
    /// How long before a request's arrival another may arrive and still reach the server after
    /// it (held by the policy, then uploading), ns.
    reach_ns: Vec<f64>,
}

impl Drawn {
    pub(super) fn new(
        world: &World,
        cost: &Roofline,
        groups: &[Group],
        requests: &[Request],
    ) -> Drawn {
        let sim = &world.scenario.sim;
        let low = 1.0 - sim.step_noise.clamp(0.0, 1.0);
        let o = cost.step_overhead_ns as f64 / 1e9;
        let deadline = |r: &Request| world.slos[r.slo as usize].deadline_ns;
        // Every decode step of any request ends by the latest deadline.
        let t_end = requests
            .iter()
            .map(|r| r.arrival_ns.saturating_add(deadline(r)))
            .max()
            .unwrap_or(0) as f64
            / 1e9;
        // A request is placed at most `max_defers` decision periods after its first decision,
        // which comes within one period of its arrival.
        let period = world.scenario.slot_ns.max(DEFER_RETRY_NS) as f64;
        let hold_ns = (f64::from(sim.max_defers) + 1.0) * period;
        let mut out = Drawn {
            floors: Vec::new(),
            arrivals: Vec::new(),
            reach_ns: Vec::new(),
        };
        for g in groups {
            let hosted: Vec<&Request> = requests
                .iter()
                .filter(|r| g.models.contains(&r.model))
                .collect();
            let mut arr: Vec<u64> = hosted.iter().map(|r| r.arrival_ns).collect();
            arr.sort_unstable();
            // An upload shares the link with the others (processor sharing at the link's whole
            // bandwidth), so it lasts at most all the bits ever sent to the server over the
            // lowest bandwidth; then the link latency; 1 ms for the rounding of events.
            let bits: f64 = hosted.iter().map(|r| r.input_bytes as f64 * 8.0).sum();
            let upload_ns = bits / g.link_bps_min.max(1e-9) * 1e9;
            out.reach_ns
                .push(hold_ns + g.link_latency_s * 1e9 + upload_ns + 1e6);
            // Every step of a server costs at least its cheapest model's overhead and weights
            // at the low end of the noise (less 2 ns of rounding): how many steps fit by t_end.
            let step_min = g
                .models
                .iter()
                .map(|&m| low * (o + world.models[m as usize].weight_bytes() / g.bw) - 2e-9)
                .fold(f64::INFINITY, f64::min);
            let max_len = hosted
                .iter()
                .map(|r| r.output_tokens.max(1) as usize - 1)
                .max()
                .unwrap_or(0);
            let floor = if step_min > 1e-9 && step_min.is_finite() {
                // Positions a decode step ending by t_end can use: the steps run before it, plus
                // the draws of runs cut short (at most MAX_RUN_STEPS - 1 each, one cut per
                // request arriving at the server).
                let draws = (t_end / step_min).ceil() + 2.0 + (MAX_RUN_STEPS * hosted.len()) as f64;
                if draws <= MAX_DRAWS as f64 {
                    Floor::of_servers(
                        world.scenario.seed,
                        &g.servers,
                        sim.step_noise,
                        draws as usize,
                        max_len,
                    )
                } else {
                    Floor::none()
                }
            } else {
                Floor::none()
            };
            out.floors.push(floor);
            out.arrivals.push(arr);
        }
        out
    }

    /// A lower bound on the excess over the low end of the noise multipliers of `r`'s decode
    /// steps on a server of group `gi`.
    pub(super) fn excess(&self, gi: usize, r: &Request, deadline_ns: u64) -> f64 {
        let arr = &self.arrivals[gi];
        let a = r.arrival_ns as f64;
        let lo = arr.partition_point(|&t| (t as f64) < a - self.reach_ns[gi]);
        let hi = arr.partition_point(|&t| t <= r.arrival_ns.saturating_add(deadline_ns));
        // r itself is among them when its model is hosted; every other one can cut its decode
        // steps into one more window.
        let others = hi.saturating_sub(lo).saturating_sub(1);
        let steps = r.output_tokens.max(1) as f64 - 1.0;
        self.floors[gi].excess(steps, 1.0 + others as f64)
    }
}

/// Longest prefix of a server's stream the bound reads (beyond, no floor: sound, only looser).
const MAX_DRAWS: usize = 4_000_000;
/// Most prefix-sum window evaluations per group (draws x window lengths), a time budget.
const MAX_WORK: usize = 200_000_000;

/// A lower bound `g` on the excess over the low end, `min over windows of length L of (sum of
/// the multipliers) - L (1 - step_noise)`, as a function of `L`: convex, `g(0) = 0`, so that
/// `m` windows totalling `n` draws have an excess of at least `m g(n / m)` (Jensen).
#[derive(Clone, Debug, Default)]
pub(super) struct Floor {
    /// Vertices of the piecewise-linear `g`, increasing in `L`, from `(0, 0)`; empty: `g = 0`.
    hull: Vec<(f64, f64)>,
}

impl Floor {
    /// No floor (the excess may be 0).
    pub(super) fn none() -> Floor {
        Floor::default()
    }

    /// The floor of the servers whose noise streams are `streams` (a request runs on one of
    /// them: the pointwise least excess), each read over its first `draws` positions, for
    /// window lengths up to `max_len`.
    pub(super) fn of_servers(
        seed: u64,
        servers: &[u32],
        step_noise: f64,
        draws: usize,
        max_len: usize,
    ) -> Floor {
        // Outside [0, 1) a multiplier may reach 0 or below: no floor.
        if !(step_noise > 0.0 && step_noise < 1.0) {
            return Floor::none();
        }
        let sigma = step_noise;
        let max_len = max_len.min(draws);
        if servers.is_empty() || draws == 0 || max_len == 0 || draws > MAX_DRAWS {
            return Floor::none();
        }
        let lens = lengths(max_len);
        if servers
            .len()
            .saturating_mul(draws)
            .saturating_mul(lens.len())
            > MAX_WORK
        {
            return Floor::none();
        }
        let low = 1.0 - sigma;
        let mut least = vec![f64::INFINITY; lens.len()];
        let mut prefix = vec![0.0f64; draws + 1];
        for &s in servers {
            let mut rng = stream_rng(seed, stream::SERVER_BASE + u64::from(s));
            for i in 0..draws {
                // Exactly the simulator's multiplier, then its excess over the low end (>= 0).
                let v = 1.0 + step_noise * (2.0 * unit_f64(&mut rng) - 1.0);
                prefix[i + 1] = prefix[i] + (v - low).max(0.0);
            }
            for (k, &l) in lens.iter().enumerate() {
                let mut m = f64::INFINITY;
                for i in 0..=draws - l {
                    m = m.min(prefix[i + l] - prefix[i]);
                }
                least[k] = least[k].min(m);
            }
        }
        // The excess of a window never decreases with its length (each draw adds >= 0), so
        // between two computed lengths it is at least the value at the shorter one: the convex
        // minorant of those steps is that of the points (L_k, least_k) and (0, 0). Less a margin
        // for the prefix sums' rounding.
        let mut pts = vec![(0.0, 0.0)];
        for (&l, &e) in lens.iter().zip(&least) {
            pts.push((l as f64, (e - 1e-9 * l as f64 - 1e-9).max(0.0)));
        }
        Floor {
            hull: lower_hull(&pts),
        }
    }

    /// Least excess of the multipliers of `n` draws lying in at most `m` windows of the stream
    /// (`m >= 1`): `m g(n / m)`.
    pub(super) fn excess(&self, n: f64, m: f64) -> f64 {
        if self.hull.len() < 2 || n <= 0.0 {
            return 0.0;
        }
        let m = m.max(1.0);
        m * self.g(n / m)
    }

    fn g(&self, x: f64) -> f64 {
        let h = &self.hull;
        let last = h[h.len() - 1];
        if x >= last.0 {
            // Windows are never longer than the longest length computed (the stream prefix or
            // the longest request), so x <= last.0 whenever it matters; stay low beyond.
            return last.1;
        }
        let i = h.partition_point(|p| p.0 <= x).max(1);
        let (a, b) = (h[i - 1], h[i]);
        a.1 + (b.1 - a.1) * (x - a.0) / (b.0 - a.0)
    }
}

/// Window lengths computed: every length up to 64, then growing by 5%, and the longest.
fn lengths(max_len: usize) -> Vec<usize> {
    let mut out: Vec<usize> = (1..=max_len.min(64)).collect();
    let mut l = 64.0f64;
    while (l as usize) < max_len {
        l *= 1.05;
        let v = (l as usize).min(max_len);
        if v > *out.last().unwrap_or(&0) {
            out.push(v);
        }
    }
    out
}

/// The lower convex hull of points sorted by `x` (monotone chain).
fn lower_hull(pts: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut h: Vec<(f64, f64)> = Vec::with_capacity(pts.len());
    for &p in pts {
        while h.len() >= 2 {
            let (a, b) = (h[h.len() - 2], h[h.len() - 1]);
            // Drop b if it lies on or above the segment a-p.
            if (b.0 - a.0) * (p.1 - a.1) - (b.1 - a.1) * (p.0 - a.0) <= 0.0 {
                h.pop();
            } else {
                break;
            }
        }
        h.push(p);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The floor never exceeds the true least excess of any split of `n` draws into at most `m`
    /// windows (checked by brute force on a short stream), and it is not trivially zero.
    #[test]
    fn the_floor_is_below_every_split_into_windows() {
        let (seed, s, sigma, draws) = (7u64, 3u32, 0.3, 400usize);
        let f = Floor::of_servers(seed, &[s], sigma, draws, draws);
        let mut rng = stream_rng(seed, stream::SERVER_BASE + u64::from(s));
        let low = 1.0 - sigma;
        let v: Vec<f64> = (0..draws)
            .map(|_| 1.0 + sigma * (2.0 * unit_f64(&mut rng) - 1.0) - low)
            .collect();
        let win = |l: usize| -> f64 {
            (0..=draws - l)
                .map(|i| v[i..i + l].iter().sum::<f64>())
                .fold(f64::INFINITY, f64::min)
        };
        // Two windows: every split of n into a + b.
        for n in [2usize, 10, 50, 150] {
            let best2 = (1..n).map(|a| win(a) + win(n - a)).fold(win(n), f64::min);
            assert!(f.excess(n as f64, 2.0) <= best2 + 1e-9, "n {n}");
            assert!(f.excess(n as f64, 1.0) <= win(n) + 1e-9, "n {n}");
        }
        assert!(
            f.excess(150.0, 1.0) > 0.2 * 150.0 * sigma,
            "{}",
            f.excess(150.0, 1.0)
        );
        // More windows never give a larger floor.
        assert!(f.excess(150.0, 5.0) <= f.excess(150.0, 2.0) + 1e-12);
        assert_eq!(
            Floor::of_servers(seed, &[s], 0.0, draws, draws).excess(50.0, 1.0),
            0.0
        );
    }
}
