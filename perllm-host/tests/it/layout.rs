//! The size, alignment and key field offsets of every ABI type are part of the ABI: pin them.

use perllm_plugin_abi::*;
use std::mem::{align_of, offset_of, size_of};

macro_rules! layout {
    ($($t:ty),* $(,)?) => {
        vec![$((stringify!($t), size_of::<$t>(), align_of::<$t>())),*]
    };
}

#[test]
#[cfg(target_pointer_width = "64")]
fn sizes_and_alignments() {
    let got = layout![
        StrRef,
        Slice<u16>,
        Slice<ServerView>,
        ErrorSink,
        StatSink,
        ServerView,
        RequestView,
        EstimateView,
        SlotView,
        Placement,
        OutcomeView,
        HardwareView,
        ModelView,
        StepShapeView,
        EstimateInput,
        PolicyVTable,
        CostModelVTable,
        PluginDecl,
        PluginList,
        PendingRequest,
        Pending,
        Decision,
        Option<PolicyCreateFn>,
        Option<ScheduleFn>,
        Option<DecideFn>,
    ];
    let expected = vec![
        ("StrRef", 16, 8),
        ("Slice<u16>", 16, 8),
        ("Slice<ServerView>", 16, 8),
        ("ErrorSink", 24, 8),
        ("StatSink", 24, 8),
        ("ServerView", 144, 8),
        ("RequestView", 64, 8),
        ("EstimateView", 72, 8),
        ("SlotView", 152, 8),
        ("Placement", 16, 4),
        ("OutcomeView", 56, 8),
        ("HardwareView", 80, 8),
        ("ModelView", 56, 8),
        ("StepShapeView", 32, 8),
        ("EstimateInput", 72, 8),
        ("PolicyVTable", 56, 8),
        ("CostModelVTable", 40, 8),
        ("PluginDecl", 96, 8),
        ("PluginList", 24, 8),
        ("PendingRequest", 48, 8),
        ("Pending", 56, 8),
        ("Decision", 8, 4),
        ("Option<PolicyCreateFn>", 8, 8),
        ("Option<ScheduleFn>", 8, 8),
        ("Option<DecideFn>", 8, 8),
    ];
    assert_eq!(got, expected);
}

#[test]
#[cfg(target_pointer_width = "64")]
fn field_offsets() {
    // Every versioned struct starts with its size.
    assert_eq!(offset_of!(SlotView, struct_size), 0);
    assert_eq!(offset_of!(EstimateInput, struct_size), 0);
    assert_eq!(offset_of!(PolicyVTable, struct_size), 0);
    assert_eq!(offset_of!(CostModelVTable, struct_size), 0);
    assert_eq!(offset_of!(PluginDecl, struct_size), 0);
    assert_eq!(offset_of!(PluginList, struct_size), 0);
    let got = vec![
        offset_of!(ServerView, models),
        offset_of!(ServerView, free_kv_bytes),
        offset_of!(ServerView, bandwidth_estimate_bps),
        offset_of!(ServerView, name),
        offset_of!(RequestView, prompt_tokens),
        offset_of!(RequestView, model),
        offset_of!(RequestView, defers),
        offset_of!(EstimateView, upload_ns),
        offset_of!(EstimateView, energy_transmission_j),
        offset_of!(SlotView, servers),
        offset_of!(SlotView, requests),
        offset_of!(SlotView, estimates),
        offset_of!(SlotView, energy_weights),
        offset_of!(Placement, action),
        offset_of!(Placement, server),
        offset_of!(OutcomeView, server),
        offset_of!(OutcomeView, phases),
        offset_of!(HardwareView, compute_flops),
        offset_of!(HardwareView, name),
        offset_of!(ModelView, kv_bytes_per_token),
        offset_of!(StepShapeView, prefill_seqs),
        offset_of!(EstimateInput, hardware),
        offset_of!(EstimateInput, model),
        offset_of!(EstimateInput, server),
        offset_of!(EstimateInput, request),
        offset_of!(EstimateInput, active_uploads),
        offset_of!(EstimateInput, bandwidth_bps),
        offset_of!(PolicyVTable, create),
        offset_of!(PolicyVTable, stats),
        offset_of!(CostModelVTable, estimate),
        offset_of!(PluginDecl, name),
        offset_of!(PluginDecl, flags),
        offset_of!(PluginDecl, policy),
        offset_of!(PluginDecl, cost_model),
        offset_of!(PluginList, plugins),
        // 1.3: the in-place path.
        offset_of!(SlotView, pending),
        offset_of!(SlotView, slo_deadlines),
        offset_of!(SlotView, pending_size),
        offset_of!(SlotView, decision_size),
        offset_of!(PolicyVTable, decide),
        offset_of!(PendingRequest, arrival_ns),
        offset_of!(PendingRequest, input_bytes),
        offset_of!(PendingRequest, output_bytes),
        offset_of!(PendingRequest, prompt_tokens),
        offset_of!(PendingRequest, output_tokens),
        offset_of!(PendingRequest, model),
        offset_of!(PendingRequest, slo),
        offset_of!(Pending, defers),
        offset_of!(Decision, action),
        offset_of!(Decision, server),
    ];
    let expected = vec![
        40, 56, 88, 120, 8, 4, 16, 8, 48, 24, 40, 56, 72, 4, 8, 4, 48, 8, 64, 32, 4, 40, 48, 56,
        64, 8, 24, 8, 40, 32, 8, 56, 64, 72, 8, // 1.2
        112, 128, 144, 148, 48, 8, 16, 24, 32, 36, 40, 42, 48, 0, 4, // 1.3
    ];
    assert_eq!(got, expected);
}

#[test]
fn constants_are_stable() {
    assert_eq!(ABI_VERSION, 0x0001_0003);
    assert_eq!(HW_UNKNOWN, u32::MAX);
    assert_eq!((KIND_POLICY, KIND_COST_MODEL), (1, 2));
    assert_eq!((STATUS_OK, STATUS_ERROR, STATUS_PANIC), (0, 1, 2));
    assert_eq!((ACTION_DEFER, ACTION_ASSIGN, ACTION_REJECT), (0, 1, 2));
    assert_eq!((TIER_EDGE, TIER_CLOUD), (0, 1));
    assert_eq!((HW_CPU, HW_GPU, HW_NPU), (0, 1, 2));
    assert_eq!(FLAG_WANTS_ESTIMATES, 1);
    assert_eq!(NO_SERVER, u32::MAX);
    assert_eq!(
        (ABI_VERSION_SYMBOL, DECLARE_SYMBOL),
        ("perllm_plugin_abi_version", "perllm_plugin_declare")
    );
}
