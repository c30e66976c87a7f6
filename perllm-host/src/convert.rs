//! Conversions between core types and the ABI's views, and the error-capturing sink.

use perllm_core::cost::{Estimate, LoadHint};
use perllm_core::policy::ServerState;
use perllm_core::spec::{Hardware, HardwareKind, ModelSpec, Tier};
use perllm_core::{Energy, Outcome, Request, Server, World};
use perllm_plugin_abi as abi;
use std::ffi::c_void;

/// Longest error message kept from a plugin, bytes.
const MAX_MESSAGE: usize = 4096;

/// Receives a plugin's error message through an [`abi::ErrorSink`].
#[derive(Debug, Default)]
pub(crate) struct Capture {
    pub message: Option<String>,
}

extern "C" fn capture_report(ctx: *mut c_void, message: abi::StrRef) {
    if ctx.is_null() {
        return;
    }
    // SAFETY: `ctx` is the `&mut Capture` the host put in the sink, alive for the whole call
    // (see `Capture::sink`), and the guest calls back on the calling thread.
    let cap = unsafe { &mut *ctx.cast::<Capture>() };
    if cap.message.is_some() {
        return;
    }
    if message.ptr.is_null() && message.len > 0 {
        cap.message = Some(format!(
            "(the plugin reported a message with a null pointer and length {})",
            message.len
        ));
        return;
    }
    let len = message.len.min(MAX_MESSAGE);
    // SAFETY: the guest passes a string valid for the duration of the callback; we read at most
    // `len <= message.len` bytes of it.
    let bytes = unsafe {
        abi::StrRef {
            ptr: message.ptr,
            len,
        }
        .as_bytes()
    };
    let mut s = String::from_utf8_lossy(bytes).into_owned();
    if message.len > MAX_MESSAGE {
        s.push_str("... (truncated)");
    }
    cap.message = Some(s);
}

impl Capture {
    /// A sink writing into `self`; valid while `self` is neither moved nor dropped.
    pub fn sink(&mut self) -> abi::ErrorSink {
        abi::ErrorSink {
            struct_size: size_of::<abi::ErrorSink>() as u32,
            reserved: 0,
            ctx: (self as *mut Capture).cast(),
            report: capture_report,
        }
    }
    /// The message, or a note that the plugin gave none or an empty one.
    pub fn take(&mut self) -> String {
        match self.message.take() {
            None => "(the plugin reported no message)".into(),
            Some(m) if m.is_empty() => "(the plugin reported an empty message)".into(),
            Some(m) => m,
        }
    }
}

pub(crate) fn tier(t: Tier) -> u32 {
    match t {
        Tier::Edge => abi::TIER_EDGE,
        Tier::Cloud => abi::TIER_CLOUD,
    }
}

fn hardware_kind(h: &Hardware) -> u32 {
    match h.kind {
        HardwareKind::Cpu => abi::HW_CPU,
        HardwareKind::Gpu => abi::HW_GPU,
        HardwareKind::Npu => abi::HW_NPU,
    }
}

pub(crate) fn hardware_view(h: &Hardware) -> abi::HardwareView {
    abi::HardwareView {
        struct_size: size_of::<abi::HardwareView>() as u32,
        kind: hardware_kind(h),
        compute_flops: h.compute_flops,
        memory_bytes: h.memory_bytes,
        memory_bandwidth_bytes_per_s: h.memory_bandwidth_bytes_per_s,
        power_idle_w: h.power_idle_w,
        power_busy_w: h.power_busy_w,
        compute_efficiency: h.compute_efficiency(),
        bandwidth_efficiency: h.bandwidth_efficiency(),
        name: abi::StrRef::new(&h.name),
    }
}

pub(crate) fn model_view(m: &ModelSpec) -> abi::ModelView {
    abi::ModelView {
        struct_size: size_of::<abi::ModelView>() as u32,
        reserved: 0,
        params: m.params,
        bytes_per_param: m.precision.bytes_per_param(),
        weight_bytes: m.weight_bytes(),
        kv_bytes_per_token: m.kv_bytes_per_token,
        name: abi::StrRef::new(&m.name),
    }
}

#[inline]
pub(crate) fn request_view(world: &World, r: &Request, defers: u32) -> abi::RequestView {
    request_view_with(
        r,
        world.slos.get(r.slo as usize).map_or(0, |s| s.deadline_ns),
        defers,
    )
}

#[inline]
pub(crate) fn request_view_with(r: &Request, deadline_ns: u64, defers: u32) -> abi::RequestView {
    abi::RequestView {
        struct_size: size_of::<abi::RequestView>() as u32,
        reserved: 0,
        id: r.id,
        arrival_ns: r.arrival_ns,
        deadline_ns,
        input_bytes: r.input_bytes,
        output_bytes: r.output_bytes,
        prompt_tokens: r.prompt_tokens,
        output_tokens: r.output_tokens,
        model: r.model,
        slo: r.slo,
        defers,
    }
}

#[inline]
pub(crate) fn server_view(world: &World, s: &Server, st: &ServerState) -> abi::ServerView {
    let hw = &world.hardware[s.hardware];
    abi::ServerView {
        struct_size: size_of::<abi::ServerView>() as u32,
        reserved: 0,
        id: s.id,
        tier: tier(s.tier),
        max_batch: s.max_batch,
        device_count: s.count,
        uploading: st.uploading,
        queued: st.queued,
        running: st.running,
        downloading: st.downloading,
        models: abi::Slice::new(&s.models),
        free_kv_bytes: st.free_kv_bytes,
        kv_capacity_bytes: st.kv_capacity_bytes,
        pending_output_tokens: st.pending_output_tokens,
        link_latency_ns: world.links[s.link].latency_ns,
        bandwidth_estimate_bps: st.bandwidth_estimate_bps,
        recent_utilization: st.recent_utilization,
        power_idle_w: world.server_power_w(s).0,
        power_busy_w: world.server_power_w(s).1,
        name: abi::StrRef::new(&s.name),
        hardware_kind: hardware_kind(hw),
        reserved_1_1: 0,
    }
}

/// A server view for a cost estimate, with the load hint's counts.
pub(crate) fn server_view_for_load(world: &World, s: &Server, load: &LoadHint) -> abi::ServerView {
    let st = ServerState {
        uploading: load.active_uploads,
        queued: load.queued.saturating_sub(load.active_uploads),
        running: load.running,
        downloading: 0,
        free_kv_bytes: load.free_kv_bytes,
        kv_capacity_bytes: s.kv_capacity_bytes,
        pending_output_tokens: 0,
        bandwidth_estimate_bps: load.bandwidth_bps,
        recent_utilization: 0.0,
        running_models: load.running_models,
        mean_batch: load.mean_batch,
    };
    server_view(world, s, &st)
}

#[inline]
pub(crate) fn estimate_view(e: &Estimate) -> abi::EstimateView {
    abi::EstimateView {
        struct_size: size_of::<abi::EstimateView>() as u32,
        valid: 1,
        upload_ns: e.upload_ns,
        queue_ns: e.queue_ns,
        prefill_ns: e.prefill_ns,
        decode_ns: e.decode_ns,
        download_ns: e.download_ns,
        energy_transmission_j: e.energy.transmission,
        energy_inference_j: e.energy.inference,
        energy_idle_j: e.energy.idle,
    }
}

/// Check and convert a plugin's estimate.
pub(crate) fn estimate_from_view(v: &abi::EstimateView) -> Result<Estimate, String> {
    for (n, x) in [
        ("energy_transmission_j", v.energy_transmission_j),
        ("energy_inference_j", v.energy_inference_j),
        ("energy_idle_j", v.energy_idle_j),
    ] {
        if !x.is_finite() {
            return Err(format!("{n} is {x}, not a finite number"));
        }
        if x < 0.0 {
            return Err(format!("{n} is negative ({x})"));
        }
    }
    let parts = [
        v.upload_ns,
        v.queue_ns,
        v.prefill_ns,
        v.decode_ns,
        v.download_ns,
    ];
    if parts
        .iter()
        .try_fold(0u64, |a, &b| a.checked_add(b))
        .is_none()
    {
        return Err(format!("the phase times {parts:?} ns overflow when added"));
    }
    Ok(Estimate {
        upload_ns: v.upload_ns,
        queue_ns: v.queue_ns,
        prefill_ns: v.prefill_ns,
        decode_ns: v.decode_ns,
        download_ns: v.download_ns,
        energy: Energy {
            transmission: v.energy_transmission_j,
            inference: v.energy_inference_j,
            idle: v.energy_idle_j,
        },
    })
}

/// The views an [`abi::OutcomeView`] points to.
pub(crate) fn outcome_parts(o: &Outcome) -> (abi::RequestView, abi::EstimateView) {
    (
        request_view_with(&o.request, o.deadline_ns, 0),
        abi::EstimateView {
            struct_size: size_of::<abi::EstimateView>() as u32,
            valid: 1,
            upload_ns: o.upload_ns,
            queue_ns: o.queue_ns,
            prefill_ns: o.prefill_ns,
            decode_ns: o.decode_ns,
            download_ns: o.download_ns,
            energy_transmission_j: o.energy.transmission,
            energy_inference_j: o.energy.inference,
            energy_idle_j: o.energy.idle,
        },
    )
}

/// An outcome view pointing to `parts` (from [`outcome_parts`]), valid while they live.
pub(crate) fn outcome_view(
    o: &Outcome,
    parts: &(abi::RequestView, abi::EstimateView),
) -> abi::OutcomeView {
    abi::OutcomeView {
        struct_size: size_of::<abi::OutcomeView>() as u32,
        server: o.server,
        met: o.met as u32,
        reserved: 0,
        decided_ns: o.decided_ns,
        ttft_ns: o.ttft_ns,
        total_ns: o.total_ns,
        request: &parts.0,
        phases: &parts.1,
    }
}
