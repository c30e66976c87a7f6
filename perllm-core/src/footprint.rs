//! What a run of a scenario holds in memory, estimated before anything is built, and the limit
//! it is checked against (issue 21: a 1,000,000-server family in a small file took 3.5 GB).
//! This is the one memory estimate and the one memory limit of a scenario: `sim.max_memory`
//! (default [`DEFAULT_MEMORY_LIMIT`], 2 GiB), checked by `Scenario::build`, so `check`, `run`,
//! `compare`, `sweep`, `serve` and library users all apply it; the CLI's `--memory-limit`
//! sets `sim.max_memory` for one command.
//!
//! The estimate counts what grows with the scenario itself: per server the simulator's state
//! ([`crate::sim::state_bytes_per_server`], an upper estimate from the sizes of the structures,
//! including a busy server's planned steps and per-model counters); per SLO class the report's
//! accumulators (a class keeps up to 4,096 latency samples as a list, 32 KB, before they move
//! into a histogram; see `report`); a fixed base. What grows with the requests (queues, the
//! decision log, the histograms of classes with more than 4,096 completions) is bounded
//! elsewhere (docs/robustness.md, "Outputs and resource bounds"). Measured against it
//! (BENCHMARKS.md, "Scenario memory footprint"): a 100,001-server run peaked at 319 MB, under
//! its estimate.

use crate::spec::Scenario;

/// Bytes one SLO class costs a run at most, before its latency samples move into a histogram
/// (the sample list at its 4,096-sample limit, plus the class's figures).
pub const BYTES_PER_SLO_CLASS: u64 = 33 * 1024;

/// What every run holds whatever the scenario (the program, buffers, the policy's fixed state).
pub const BYTES_BASE: u64 = 64 * 1024 * 1024;

/// The default of `sim.max_memory`, the limit on [`Footprint::bytes`]: 2 GiB (about 215,000
/// servers with two models). `sim { max_memory = 8 GiB }`, `--set sim.max_memory=8GiB` or the
/// CLI's `--memory-limit 8GiB` raise it; `none` removes it.
pub const DEFAULT_MEMORY_LIMIT: u64 = 2 * 1024 * 1024 * 1024;

/// The estimated memory of a run of a scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footprint {
    /// Servers (families expanded).
    pub servers: u64,
    /// Bytes per server ([`crate::sim::state_bytes_per_server`] for the scenario's models).
    pub per_server: u64,
    /// SLO classes.
    pub slo_classes: u64,
    /// The estimate, bytes.
    pub bytes: u64,
}

impl Footprint {
    /// The estimate for `sc`.
    pub fn of(sc: &Scenario) -> Footprint {
        Footprint::for_counts(
            sc.servers.len() as u64,
            sc.models.len(),
            sc.slos.len() as u64,
        )
    }

    /// The estimate for a scenario with these counts.
    pub fn for_counts(servers: u64, models: usize, slo_classes: u64) -> Footprint {
        let per_server = crate::sim::state_bytes_per_server(models);
        let bytes = BYTES_BASE
            .saturating_add(servers.saturating_mul(per_server))
            .saturating_add(slo_classes.saturating_mul(BYTES_PER_SLO_CLASS));
        Footprint {
            servers,
            per_server,
            slo_classes,
            bytes,
        }
    }

    /// `Ok` when the estimate is within `limit` bytes; otherwise the message to show, with the
    /// size needed, the limit, what the estimate counts and how to raise the limit.
    pub fn check(&self, limit: u64) -> Result<(), String> {
        if self.bytes <= limit {
            return Ok(());
        }
        let raise = self.bytes.div_ceil(1 << 30);
        Err(format!(
            "a run of this scenario needs about {} ({} servers x {} + {} SLO classes x {} + {}), \
             above the memory limit of {}; if the machine has the memory, raise it with \
             `--memory-limit {raise}GiB` (run, compare, sweep; `none` for no limit), \
             `--set sim.max_memory={raise}GiB` or `sim {{ max_memory = {raise} GiB }}` in the scenario",
            human_bytes(self.bytes),
            self.servers,
            human_bytes(self.per_server),
            self.slo_classes,
            human_bytes(BYTES_PER_SLO_CLASS),
            human_bytes(BYTES_BASE),
            human_bytes(limit)
        ))
    }
}

/// A byte count with a binary unit and three significant digits: `3.81 GiB`.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else if v >= 100.0 {
        format!("{v:.0} {}", UNITS[u])
    } else if v >= 10.0 {
        format!("{v:.1} {}", UNITS[u])
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_grow_with_servers_models_and_classes_and_saturate() {
        let small = Footprint::for_counts(6, 2, 3);
        assert!(small.check(DEFAULT_MEMORY_LIMIT).is_ok());
        // Issue 20's 100,000-server families fit under the default.
        assert!(
            Footprint::for_counts(100_001, 2, 3)
                .check(DEFAULT_MEMORY_LIMIT)
                .is_ok()
        );
        assert!(Footprint::for_counts(10, 3, 1).bytes > Footprint::for_counts(10, 2, 1).bytes);
        let big = Footprint::for_counts(1_000_001, 2, 3);
        let per = crate::sim::state_bytes_per_server(2);
        assert_eq!(
            big.bytes,
            BYTES_BASE + 1_000_001 * per + 3 * BYTES_PER_SLO_CLASS
        );
        let e = big.check(DEFAULT_MEMORY_LIMIT).unwrap_err();
        let gib = big.bytes.div_ceil(1 << 30);
        assert!(
            e.contains(&format!("needs about {}", human_bytes(big.bytes))),
            "{e}"
        );
        assert!(
            e.contains(&format!("1000001 servers x {}", human_bytes(per))),
            "{e}"
        );
        assert!(e.contains("memory limit of 2.00 GiB"), "{e}");
        assert!(e.contains(&format!("`--memory-limit {gib}GiB`")), "{e}");
        assert!(
            e.contains(&format!("`sim {{ max_memory = {gib} GiB }}`")),
            "{e}"
        );
        assert!(big.check(gib << 30).is_ok());
        let huge = Footprint::for_counts(u64::MAX, 2, u64::MAX);
        assert_eq!(huge.bytes, u64::MAX);
        assert!(huge.check(u64::MAX).is_ok());
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(u64::MAX), "16384 PiB");
    }
}
