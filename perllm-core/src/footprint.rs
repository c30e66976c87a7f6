//! What a run of a scenario holds in memory, estimated before anything is built, and the limit
//! it is checked against (issue 21: a 1,000,000-server family in a small file took 3.5 GB).
//!
//! The estimate counts what grows with the scenario itself: per server the simulator's state,
//! the policy's per-server tables and the report's per-server figures; per SLO class the
//! report's accumulators (a class keeps up to 4,096 latency samples as a list, 32 KB, before
//! they move into a histogram; see `report`). What grows with the requests (queues, the
//! decision log, the histograms of classes with more than 4,096 completions) is bounded
//! elsewhere (docs/robustness.md, "Outputs and resource bounds"). The per-item figures were
//! measured with `/usr/bin/time -v` (BENCHMARKS.md, "Scenario memory footprint") and rounded up.

use crate::spec::Scenario;

/// Bytes one server costs a run (measured: a 100,001-server run peaked at 319 MB, about
/// 3.2 KB per server with everything else included; rounded up).
pub const BYTES_PER_SERVER: u64 = 4 * 1024;

/// Bytes one SLO class costs a run at most, before its latency samples move into a histogram
/// (the sample list at its 4,096-sample limit, plus the class's figures).
pub const BYTES_PER_SLO_CLASS: u64 = 33 * 1024;

/// What every run holds whatever the scenario (the program, buffers, the policy's fixed state).
pub const BYTES_BASE: u64 = 64 * 1024 * 1024;

/// The default limit on [`Footprint::bytes`]: 2 GiB. The CLI's `--memory-limit` raises it.
pub const DEFAULT_MEMORY_LIMIT: u64 = 2 * 1024 * 1024 * 1024;

/// The estimated memory of a run of a scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footprint {
    /// Servers (families expanded).
    pub servers: u64,
    /// SLO classes.
    pub slo_classes: u64,
    /// The estimate, bytes.
    pub bytes: u64,
}

impl Footprint {
    /// The estimate for `sc`.
    pub fn of(sc: &Scenario) -> Footprint {
        Footprint::for_counts(sc.servers.len() as u64, sc.slos.len() as u64)
    }

    /// The estimate for a scenario with these counts.
    pub fn for_counts(servers: u64, slo_classes: u64) -> Footprint {
        let bytes = BYTES_BASE
            .saturating_add(servers.saturating_mul(BYTES_PER_SERVER))
            .saturating_add(slo_classes.saturating_mul(BYTES_PER_SLO_CLASS));
        Footprint {
            servers,
            slo_classes,
            bytes,
        }
    }

    /// `Ok` when the estimate is within `limit` bytes; otherwise the message to show, with the
    /// size needed, the limit and what the estimate counts.
    pub fn check(&self, limit: u64) -> Result<(), String> {
        if self.bytes <= limit {
            return Ok(());
        }
        Err(format!(
            "a run of this scenario needs about {} ({} servers x {} + {} SLO classes x {} + {}), \
             above the memory limit of {}",
            human_bytes(self.bytes),
            self.servers,
            human_bytes(BYTES_PER_SERVER),
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
    fn estimates_grow_with_servers_and_classes_and_saturate() {
        let small = Footprint::for_counts(6, 3);
        assert!(small.check(DEFAULT_MEMORY_LIMIT).is_ok());
        assert!(
            Footprint::for_counts(100_001, 3)
                .check(DEFAULT_MEMORY_LIMIT)
                .is_ok()
        );
        let big = Footprint::for_counts(1_000_001, 3);
        let e = big.check(DEFAULT_MEMORY_LIMIT).unwrap_err();
        assert!(e.contains("needs about 3.88 GiB"), "{e}");
        assert!(e.contains("1000001 servers x 4.00 KiB"), "{e}");
        assert!(e.contains("memory limit of 2.00 GiB"), "{e}");
        assert!(big.check(8 << 30).is_ok());
        let huge = Footprint::for_counts(u64::MAX, u64::MAX);
        assert_eq!(huge.bytes, u64::MAX);
        assert!(huge.check(u64::MAX).is_ok());
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(u64::MAX), "16384 PiB");
    }
}
