//! [`ForeignCostModel`]: a plugin cost model behind the core [`CostModel`] trait.

use crate::convert::{
    Capture, estimate_from_view, hardware_view, model_view, request_view, server_view_for_load,
};
use crate::crash::{self, Note};
use crate::error::HostError;
use crate::health::{Health, Kind};
use crate::loader::Declared;
use perllm_core::cost::{CostModel, Estimate, LoadHint, Roofline, StepShape, default_estimate};
use perllm_core::spec::{Hardware, ModelSpec, Nanos};
use perllm_core::{Request, Server, World};
use perllm_plugin_abi as abi;
use std::ffi::c_void;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A cost model from a plugin library, usable wherever a core [`CostModel`] is.
///
/// The core trait cannot report errors, so a failure (an error status, a panic, a zero step time
/// for a non-empty step, a NaN or negative estimate) is recorded in the registry that created
/// it; from then on the model answers with core's default roofline (so the run can end quickly),
/// every foreign policy of the same registry fails its next `schedule`, and
/// [`crate::Registry::check`] reports the failure. A run whose cost model failed must not be
/// reported as valid.
pub struct ForeignCostModel {
    name: String,
    path: PathBuf,
    vt: abi::CostModelVTable,
    instance: *mut c_void,
    failed: AtomicBool,
    panicked: AtomicBool,
    health: Arc<Health>,
    fallback: Roofline,
    /// What a crash says during `step_ns` and `estimate` (see [`crate::crash`]).
    notes: [Note; 2],
}

// SAFETY: the ABI requires cost-model instances to be callable from several threads at once
// (`GuestCostModel: Send + Sync`); the host never mutates the instance pointer after creation.
unsafe impl Send for ForeignCostModel {}
// SAFETY: as above.
unsafe impl Sync for ForeignCostModel {}

impl std::fmt::Debug for ForeignCostModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForeignCostModel")
            .field("name", &self.name)
            .field("path", &self.path)
            .finish()
    }
}

impl ForeignCostModel {
    /// Create an instance of the declared cost model `d` with `config` (JSON).
    pub(crate) fn create(
        d: &Declared,
        config: &str,
        health: Arc<Health>,
    ) -> Result<Self, HostError> {
        let vt = d
            .cost_model
            .expect("validated at load: a cost-model declaration has a cost-model vtable");
        let create = vt.create.expect("validated at load");
        crash::install();
        let note =
            |f: &str, label: &'static str| Note::new("cost-model", &d.name, &d.lib.path, f, label);
        let mut cap = Capture::default();
        let sink = cap.sink();
        let instance = {
            let create_note = note("create", "");
            let _active = crash::enter(&create_note, 0);
            create(abi::StrRef::new(config), &sink)
        };
        if instance.is_null() {
            return Err(HostError::Call {
                plugin: d.name.clone(),
                path: d.lib.path.clone(),
                function: "create".into(),
                message: cap.take(),
            });
        }
        Ok(ForeignCostModel {
            name: d.name.clone(),
            path: d.lib.path.clone(),
            vt,
            instance,
            failed: AtomicBool::new(false),
            panicked: AtomicBool::new(false),
            health,
            fallback: Roofline::default(),
            notes: [note("step_ns", ""), note("estimate", ", request ")],
        })
    }

    /// Has it failed (and fallen back to the default roofline)?
    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    fn fail(&self, function: &str, status: u32, cap: &mut Capture, problem: Option<String>) {
        let e = match (status, problem) {
            (_, Some(problem)) => HostError::Invalid {
                plugin: self.name.clone(),
                path: self.path.clone(),
                function: function.into(),
                problem,
            },
            (abi::STATUS_PANIC, None) => {
                self.panicked.store(true, Ordering::Relaxed);
                HostError::Panic {
                    plugin: self.name.clone(),
                    path: self.path.clone(),
                    function: function.into(),
                    message: cap.take(),
                }
            }
            (abi::STATUS_ERROR, None) => HostError::Call {
                plugin: self.name.clone(),
                path: self.path.clone(),
                function: function.into(),
                message: cap.take(),
            },
            (s, None) => HostError::Invalid {
                plugin: self.name.clone(),
                path: self.path.clone(),
                function: function.into(),
                problem: format!("unknown status {s}"),
            },
        };
        if !self.failed.swap(true, Ordering::Relaxed) {
            self.health.fail(Kind::CostModel, &self.name, e);
        }
    }
}

impl CostModel for ForeignCostModel {
    fn name(&self) -> &str {
        &self.name
    }

    fn step_ns(&self, hw: &Hardware, count: u32, model: &ModelSpec, shape: &StepShape) -> Nanos {
        if self.has_failed() {
            return self.fallback.step_ns(hw, count, model, shape);
        }
        let h = hardware_view(hw);
        let m = model_view(model);
        let s = abi::StepShapeView {
            struct_size: size_of::<abi::StepShapeView>() as u32,
            reserved: 0,
            prefill_tokens: shape.prefill_tokens,
            kv_tokens: shape.kv_tokens,
            prefill_seqs: shape.prefill_seqs,
            decode_seqs: shape.decode_seqs,
        };
        let mut ns = 0u64;
        let mut cap = Capture::default();
        let sink = cap.sink();
        let step = self.vt.step_ns.expect("validated at load");
        let status = {
            let _active = crash::enter(&self.notes[0], 0);
            step(self.instance, &h, count, &m, &s, &mut ns, &sink)
        };
        if status != abi::STATUS_OK {
            self.fail("step_ns", status, &mut cap, None);
            return self.fallback.step_ns(hw, count, model, shape);
        }
        let non_empty = shape.prefill_tokens > 0 || shape.decode_seqs > 0;
        if non_empty && ns == 0 {
            self.fail(
                "step_ns",
                status,
                &mut cap,
                Some(format!(
                    "a step of model `{}` on {count} x `{}` with {} prefill tokens and {} decoding sequences took 0 ns (must be positive)",
                    model.name, hw.name, shape.prefill_tokens, shape.decode_seqs
                )),
            );
            return self.fallback.step_ns(hw, count, model, shape);
        }
        ns
    }

    fn estimate(&self, world: &World, server: &Server, req: &Request, load: &LoadHint) -> Estimate {
        let Some(estimate) = self.vt.estimate else {
            return default_estimate(self, world, server, req, load);
        };
        if self.has_failed() {
            return default_estimate(&self.fallback, world, server, req, load);
        }
        let hardware = hardware_view(&world.hardware[server.hardware]);
        let model = model_view(&world.models[req.model as usize]);
        let server_v = server_view_for_load(world, server, load);
        let request = request_view(world, req, 0);
        let input = abi::EstimateInput {
            struct_size: size_of::<abi::EstimateInput>() as u32,
            device_count: server.count,
            hardware: &hardware,
            model: &model,
            server: &server_v,
            request: &request,
            active_uploads: load.active_uploads,
            queued: load.queued,
            running: load.running,
            reserved: 0,
            bandwidth_bps: load.bandwidth_bps,
            energy_j_per_bit: world.links[server.link].energy_j_per_bit,
        };
        // Pre-filled with the defaults: an older plugin leaves the fields it does not know.
        let mut out = <abi::EstimateView as abi::Versioned>::DEFAULT;
        let mut cap = Capture::default();
        let sink = cap.sink();
        let status = {
            let _active = crash::enter(&self.notes[1], req.id);
            estimate(self.instance, &input, &mut out, &sink)
        };
        if status != abi::STATUS_OK {
            self.fail("estimate", status, &mut cap, None);
            return default_estimate(&self.fallback, world, server, req, load);
        }
        match estimate_from_view(&out) {
            Ok(e) => e,
            Err(problem) => {
                let problem = format!(
                    "estimate of request {} on server `{}`: {problem}",
                    req.id, server.name
                );
                self.fail("estimate", status, &mut cap, Some(problem));
                default_estimate(&self.fallback, world, server, req, load)
            }
        }
    }
}

impl Drop for ForeignCostModel {
    fn drop(&mut self) {
        if !self.panicked.load(Ordering::Relaxed)
            && let Some(destroy) = self.vt.destroy
        {
            destroy(self.instance);
        }
    }
}
