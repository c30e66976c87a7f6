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
    let (power_idle_w, power_busy_w) = world.server_power_w(s);
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
        power_idle_w,
        power_busy_w,
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

/// An [`abi::EstimateView`] as the host builds it for a slot: the view's header followed by the
/// core's [`Estimate`], whose `#[repr(C)]` layout is the view's eight value fields (checked at
/// compile time below). The cost model's result is written straight into the array the plugin
/// reads, with no copy into another layout.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct EstimateSlot {
    /// `size_of::<abi::EstimateView>()`.
    pub struct_size: u32,
    /// 1 if `estimate` holds an estimate, 0 if the server does not host the request's model.
    pub valid: u32,
    /// The estimate (zero when `valid` is 0).
    pub estimate: Estimate,
}

impl EstimateSlot {
    /// An entry for a server that does not host the request's model: `valid` 0, every value 0
    /// (the view's documented default).
    pub const NOT_HOSTED: EstimateSlot = EstimateSlot {
        struct_size: size_of::<abi::EstimateView>() as u32,
        valid: 0,
        estimate: Estimate {
            upload_ns: 0,
            queue_ns: 0,
            prefill_ns: 0,
            decode_ns: 0,
            download_ns: 0,
            energy: Energy {
                transmission: 0.0,
                inference: 0.0,
                idle: 0.0,
            },
        },
    };
}

// `EstimateSlot` is an `abi::EstimateView`: same size and alignment, every field at the same
// offset (and of the same type: `tests::estimate_slot_is_an_estimate_view`). The host hands `&[EstimateSlot]` to plugins as `Slice<EstimateView>` on the strength of this.
const _: () = {
    use std::mem::offset_of;
    type V = abi::EstimateView;
    type S = EstimateSlot;
    assert!(size_of::<S>() == size_of::<V>());
    assert!(align_of::<S>() == align_of::<V>());
    assert!(offset_of!(S, struct_size) == offset_of!(V, struct_size));
    assert!(offset_of!(S, valid) == offset_of!(V, valid));
    assert!(offset_of!(S, estimate.upload_ns) == offset_of!(V, upload_ns));
    assert!(offset_of!(S, estimate.queue_ns) == offset_of!(V, queue_ns));
    assert!(offset_of!(S, estimate.prefill_ns) == offset_of!(V, prefill_ns));
    assert!(offset_of!(S, estimate.decode_ns) == offset_of!(V, decode_ns));
    assert!(offset_of!(S, estimate.download_ns) == offset_of!(V, download_ns));
    assert!(offset_of!(S, estimate.energy.transmission) == offset_of!(V, energy_transmission_j));
    assert!(offset_of!(S, estimate.energy.inference) == offset_of!(V, energy_inference_j));
    assert!(offset_of!(S, estimate.energy.idle) == offset_of!(V, energy_idle_j));
};

/// `slots` as the ABI's estimate array (the same memory: see the layout check above).
pub(crate) fn estimate_views(slots: &[EstimateSlot]) -> abi::Slice<abi::EstimateView> {
    abi::Slice::new_raw(slots.as_ptr().cast(), slots.len())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_slot_is_an_estimate_view() {
        let slots = [
            EstimateSlot::NOT_HOSTED,
            EstimateSlot {
                valid: 1,
                estimate: Estimate {
                    upload_ns: 1,
                    queue_ns: 2,
                    prefill_ns: 3,
                    decode_ns: 4,
                    download_ns: 5,
                    energy: Energy {
                        transmission: 6.5,
                        inference: 7.5,
                        idle: 8.5,
                    },
                },
                ..EstimateSlot::NOT_HOSTED
            },
        ];
        let views = estimate_views(&slots);
        // SAFETY: `views` points into `slots`, alive for the test, with the layout of
        // `EstimateView` (compile-time check above).
        let v = unsafe { views.as_slice() };
        assert_eq!(v.len(), 2);
        assert_eq!(v[0], <abi::EstimateView as abi::Versioned>::DEFAULT);
        let expected = abi::EstimateView {
            struct_size: size_of::<abi::EstimateView>() as u32,
            valid: 1,
            upload_ns: 1,
            queue_ns: 2,
            prefill_ns: 3,
            decode_ns: 4,
            download_ns: 5,
            energy_transmission_j: 6.5,
            energy_inference_j: 7.5,
            energy_idle_j: 8.5,
        };
        assert_eq!(v[1], expected);
        assert_eq!(estimate_from_view(&v[1]), Ok(slots[1].estimate));
    }
}
