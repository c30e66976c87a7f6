//! The machine a measurement ran on, and its energy counters (Linux RAPL) where it exposes them.

use serde::Serialize;
use std::path::{Path, PathBuf};

/// What a measurement records about the machine.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Machine {
    /// CPU model name (`/proc/cpuinfo`), or `unknown`.
    pub cpu_model: String,
    /// Logical CPUs the process may use.
    pub cpus: u32,
    /// 1-minute load average when the measurement started (`/proc/loadavg`), if readable.
    pub load_avg_1m: Option<f64>,
}

impl Machine {
    /// Read the machine's description now.
    pub fn detect() -> Machine {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1);
        let load_avg_1m = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse().ok());
        Machine {
            cpu_model,
            cpus,
            load_avg_1m,
        }
    }
}

/// Package energy counters of Linux RAPL (`/sys/class/powercap/intel-rapl:N/energy_uj`).
#[derive(Clone, Debug)]
pub struct Rapl {
    zones: Vec<(PathBuf, u64)>,
}

impl Rapl {
    /// The package zones under `/sys/class/powercap`, or why there are none (the directory is
    /// missing, as in most virtual machines, or the counters are not readable).
    pub fn open() -> Result<Rapl, String> {
        Rapl::open_at(Path::new("/sys/class/powercap"))
    }

    /// [`Rapl::open`] under another root (tests).
    pub fn open_at(root: &Path) -> Result<Rapl, String> {
        let dir = std::fs::read_dir(root).map_err(|e| {
            format!(
                "this machine does not expose RAPL energy counters ({}: {e})",
                root.display()
            )
        })?;
        let mut zones = Vec::new();
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            // Package zones are `intel-rapl:N` (sub-zones `intel-rapl:N:M` are inside them).
            if name.starts_with("intel-rapl:") && name.matches(':').count() == 1 {
                let p = entry.path();
                let max = read_u64(&p.join("max_energy_range_uj")).unwrap_or(u64::MAX);
                if read_u64(&p.join("energy_uj")).is_some() {
                    zones.push((p, max));
                }
            }
        }
        if zones.is_empty() {
            return Err(format!(
                "this machine exposes no readable RAPL package counter under {}",
                root.display()
            ));
        }
        zones.sort();
        Ok(Rapl { zones })
    }

    /// Current counters, microjoules, one per package.
    pub fn read(&self) -> Vec<u64> {
        self.zones
            .iter()
            .map(|(p, _)| read_u64(&p.join("energy_uj")).unwrap_or(0))
            .collect()
    }

    /// Joules spent between two readings, summed over packages (counter wrap-around handled).
    pub fn joules_between(&self, before: &[u64], after: &[u64]) -> f64 {
        self.zones
            .iter()
            .zip(before.iter().zip(after))
            .map(|((_, max), (&b, &a))| {
                let d = if a >= b {
                    a - b
                } else {
                    max.saturating_sub(b) + a
                };
                d as f64 * 1e-6
            })
            .sum()
    }
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}
