//! Per-component random streams derived from the scenario seed.
//!
//! Every random component (the workload generator, each link, each server's step noise) owns a
//! ChaCha8 stream: seeded from the scenario seed, with the component's stream id. Components
//! therefore never share randomness, and adding a draw in one does not shift another.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The random generator type used everywhere in perllm.
pub type Rng = ChaCha8Rng;

/// Stream ids of the simulator's components.
pub mod stream {
    /// The synthetic workload generator.
    pub const WORKLOAD: u64 = 1;
    /// Link `i` uses `LINK_BASE + i`.
    pub const LINK_BASE: u64 = 1 << 20;
    /// Server `i`'s step noise uses `SERVER_BASE + i`.
    pub const SERVER_BASE: u64 = 2 << 20;
    /// Policies (e.g. `random`, tie-breaking) use `POLICY`.
    pub const POLICY: u64 = 3 << 20;
}

/// The random stream `stream` of a run with seed `seed`.
pub fn stream_rng(seed: u64, stream: u64) -> Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// A uniform f64 in [0, 1) from 53 random bits.
#[inline]
pub fn unit_f64(r: &mut Rng) -> f64 {
    use rand::Rng as _;
    (r.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}
