//! Measured energy of backends on this machine: Linux RAPL package counters (the reader `perllm
//! validate` uses, [`perllm_engine::Rapl`]), shared among the requests in flight.
//!
//! A real backend reports no energy, so the gateway gives `observe` and the logs the cost
//! model's estimate. For backends that run on the gateway's own machine, and where the machine
//! exposes RAPL, it measures instead: the package energy between two events (a request sent or
//! ended) is split evenly among the requests then in flight on those backends. What this counts
//! is the whole package: the backends' work, but also its idle power and every other process
//! on it (the gateway too); energy spent while no such request is in flight is charged to none.

use perllm_engine::Rapl;

/// Package energy counters and which backends they cover.
pub struct EnergyMeter {
    rapl: Rapl,
    last: Vec<u64>,
    local: Vec<bool>,
}

impl EnergyMeter {
    /// A meter over `rapl` for the backends marked `true` in `local` (by server id).
    pub fn new(rapl: Rapl, local: Vec<bool>) -> EnergyMeter {
        let last = rapl.read();
        EnergyMeter { rapl, last, local }
    }

    /// Whether requests on backend `server` are measured.
    pub fn covers(&self, server: usize) -> bool {
        self.local.get(server).copied().unwrap_or(false)
    }

    /// Joules spent since the previous call (or since [`EnergyMeter::new`]).
    pub fn take(&mut self) -> f64 {
        let now = self.rapl.read();
        let j = self.rapl.joules_between(&self.last, &now);
        self.last = now;
        j
    }
}

/// Split `joules` evenly among `shares` (the measured energy of the requests in flight on
/// measured backends); with none in flight, nobody is charged.
pub fn share_out<'a>(joules: f64, shares: impl Iterator<Item = &'a mut f64>) {
    let mut shares: Vec<&mut f64> = shares.collect();
    if shares.is_empty() || !joules.is_finite() {
        return;
    }
    let each = joules / shares.len() as f64;
    for s in shares.iter_mut() {
        **s += each;
    }
}
