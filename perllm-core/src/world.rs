//! The validated, index-resolved form of a [`Scenario`]: what the simulator and policies read.

use crate::spec::*;
use serde::Serialize;

/// Index of a server in [`World::servers`].
pub type ServerId = u32;
/// Index of a model in [`World::models`].
pub type ModelId = u16;
/// Index of an SLO class in [`World::slos`].
pub type SloId = u16;

/// A problem found while building a [`World`] from a [`Scenario`].
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ScenarioError {
    /// Where in the scenario, e.g. `servers[edge3].hardware`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl ScenarioError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ScenarioError {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// A server with its references resolved.
#[derive(Clone, Debug, Serialize)]
pub struct Server {
    /// Index in [`World::servers`].
    pub id: ServerId,
    /// Unique name.
    pub name: String,
    /// Family name, if it came from one.
    pub family: Option<String>,
    /// Edge or cloud.
    pub tier: Tier,
    /// Index into [`World::hardware`].
    pub hardware: usize,
    /// Number of identical devices.
    pub count: u32,
    /// Hosted models, sorted.
    pub models: Vec<ModelId>,
    /// Index into [`World::links`].
    pub link: usize,
    /// Largest number of sequences in one step.
    pub max_batch: u32,
    /// Bytes of device memory left for KV cache after all hosted models' weights.
    pub kv_capacity_bytes: u64,
    /// How a new prompt joins the running batch (its own `batching` or `sim.batching`).
    pub batching: Batching,
    /// Batch interference of its hardware (the hardware's `contention` or `sim.contention`).
    pub contention: f64,
    /// Power usage effectiveness of its facility (`pue`, default 1.0).
    pub pue: f64,
    /// How its idle power is charged (`idle_charge`, default always).
    pub idle_charge: IdleCharge,
}

impl Server {
    /// Does this server host `model`?
    pub fn hosts(&self, model: ModelId) -> bool {
        self.models.binary_search(&model).is_ok()
    }
}

/// A validated scenario with names resolved to indices.
#[derive(Clone, Debug)]
pub struct World {
    /// The scenario this was built from.
    pub scenario: Scenario,
    /// Hardware, in scenario order.
    pub hardware: Vec<Hardware>,
    /// Models, in scenario order.
    pub models: Vec<ModelSpec>,
    /// Links, in scenario order.
    pub links: Vec<LinkSpec>,
    /// Servers, in scenario order.
    pub servers: Vec<Server>,
    /// SLO classes, in scenario order.
    pub slos: Vec<SloClass>,
    /// Model shares of the workload, resolved.
    pub model_shares: Vec<(ModelId, f64)>,
}

impl World {
    /// Model index by name.
    pub fn model_id(&self, name: &str) -> Option<ModelId> {
        self.models
            .iter()
            .position(|m| m.name == name)
            .map(|i| i as ModelId)
    }
    /// SLO index by name.
    pub fn slo_id(&self, name: &str) -> Option<SloId> {
        self.slos
            .iter()
            .position(|s| s.name == name)
            .map(|i| i as SloId)
    }
    /// Server index by name.
    pub fn server_id(&self, name: &str) -> Option<ServerId> {
        self.servers
            .iter()
            .position(|s| s.name == name)
            .map(|i| i as ServerId)
    }
    /// Hardware of a server.
    pub fn hardware_of(&self, s: ServerId) -> &Hardware {
        &self.hardware[self.servers[s as usize].hardware]
    }
    /// Link of a server.
    pub fn link_of(&self, s: ServerId) -> &LinkSpec {
        &self.links[self.servers[s as usize].link]
    }
    /// Servers a [`Target`] names (empty if it names nothing).
    pub fn target_servers(&self, t: &Target) -> Vec<ServerId> {
        self.servers
            .iter()
            .filter(|s| match t {
                Target::Server(n) => &s.name == n,
                Target::Family(f) => s.family.as_deref() == Some(f.as_str()),
                Target::Tier(tier) => s.tier == *tier,
            })
            .map(|s| s.id)
            .collect()
    }
    /// A server's (idle, busy) power in watts as the run is charged for it: its devices' power
    /// times their count times its facility's PUE. The idle figure is what the server draws when
    /// powered and not running a step, whatever its [`IdleCharge`].
    pub fn server_power_w(&self, s: &Server) -> (f64, f64) {
        let hw = &self.hardware[s.hardware];
        let k = s.count as f64 * s.pue;
        (hw.power_idle_w * k, hw.power_busy_w * k)
    }
    /// Sum of the idle power (W) of the servers whose idle power is always charged
    /// ([`IdleCharge::Always`], PUE included): the floor of the energy rate whatever a policy
    /// does. Servers charged `if_used` or `never` may cost nothing and add nothing.
    pub fn idle_power_w(&self) -> f64 {
        self.servers
            .iter()
            .filter(|s| s.idle_charge == IdleCharge::Always)
            .map(|s| self.server_power_w(s).0)
            .sum()
    }
    /// Redraw period of a link's fluctuation: its own `redraw`, else the slot length (at least
    /// [`limits::MIN_REDRAW_NS`]), else 100 ms when slots are per arrival.
    pub fn redraw_ns(&self, link: usize) -> Nanos {
        self.links[link]
            .redraw_ns
            .unwrap_or(if self.scenario.slot_ns > 0 {
                self.scenario.slot_ns.max(limits::MIN_REDRAW_NS)
            } else {
                100 * MILLISECOND
            })
    }
    /// How long the simulator keeps going after the last arrival (`sim.drain`, by default the
    /// larger of one hour and the longest deadline).
    pub fn drain_ns(&self) -> Nanos {
        self.scenario.sim.drain_ns.unwrap_or_else(|| {
            self.slos
                .iter()
                .map(|s| s.deadline_ns)
                .max()
                .unwrap_or(0)
                .max(HOUR)
        })
    }
}

/// A number for a message: plain from 0.001 to a million, else in scientific notation (never
/// hundreds of digits).
pub(crate) fn fmt_num(v: f64) -> String {
    if v != 0.0 && v.abs() < 1e-3 {
        format!("{v:e}")
    } else if v.abs() < 1e6 && v.fract() == 0.0 {
        format!("{v}")
    } else if v.abs() < 1e6 {
        format!("{}", (v * 1000.0).round() / 1000.0)
    } else {
        format!("{v:e}")
    }
}
