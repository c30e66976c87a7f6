//! `perllm-plugin-abi/include/perllm_plugin.h` matches the Rust layout: a C program compiled
//! with the system C compiler against the header prints every struct's size and alignment, every
//! field's offset and size, and every constant; the test compares them with the Rust types'.
//! The Rust side also checks that the listed fields cover each struct without padding (every
//! struct spells out its `reserved` fields; the in-place structs of 1.3, perllm-core's own
//! types, declare their tail padding), so a field added in Rust but not here fails.

use super::*;
use perllm_plugin_abi::*;
// The ABI's in-place types, not perllm-core's of the same names.
use perllm_plugin_abi::{Decision, Pending};
use std::fmt::Write as _;
use std::process::Command;

/// The size of a field, from a projection (no value needed).
fn field_size<T, F>(_: fn(&T) -> &F) -> usize {
    size_of::<F>()
}

struct Struct {
    rust: &'static str,
    c: &'static str,
    size: usize,
    align: usize,
    /// Padding after the last field (only the in-place structs, which are perllm-core's own
    /// types and have no `reserved` field to spell it out).
    tail_padding: usize,
    fields: Vec<(&'static str, usize, usize)>,
}

macro_rules! structs {
    ($($rust:ty => $c:ident { $($f:ident),* $(,)? } $(; padding $pad:literal)?)*) => {
        vec![$(Struct {
            rust: stringify!($rust),
            c: stringify!($c),
            size: size_of::<$rust>(),
            align: align_of::<$rust>(),
            tail_padding: 0 $(+ $pad)?,
            fields: vec![$((
                stringify!($f),
                std::mem::offset_of!($rust, $f),
                field_size(|s: &$rust| &s.$f),
            )),*],
        }),*]
    };
}

fn table() -> Vec<Struct> {
    structs! {
        StrRef => PerllmStr { ptr, len }
        Slice<ServerView> => PerllmSlice { ptr, len }
        Slice<u16> => PerllmSliceU16 { ptr, len }
        ErrorSink => PerllmErrorSink { struct_size, reserved, ctx, report }
        StatSink => PerllmStatSink { struct_size, reserved, ctx, emit }
        ServerView => PerllmServerView {
            struct_size, id, tier, max_batch, device_count, uploading, queued, running,
            downloading, reserved, models, free_kv_bytes, kv_capacity_bytes,
            pending_output_tokens, link_latency_ns, bandwidth_estimate_bps, recent_utilization,
            power_idle_w, power_busy_w, name, hardware_kind, reserved_1_1,
        }
        RequestView => PerllmRequestView {
            struct_size, model, slo, prompt_tokens, output_tokens, defers, reserved, id,
            arrival_ns, deadline_ns, input_bytes, output_bytes,
        }
        EstimateView => PerllmEstimateView {
            struct_size, valid, upload_ns, queue_ns, prefill_ns, decode_ns, download_ns,
            energy_transmission_j, energy_inference_j, energy_idle_j,
        }
        SlotView => PerllmSlotView {
            struct_size, reserved, slot, now_ns, servers, requests, estimates, energy_weights,
            server_size, request_size, estimate_size, placement_size, pending, slo_deadlines,
            pending_size, decision_size,
        }
        PendingRequest => PerllmPendingRequest {
            id, arrival_ns, input_bytes, output_bytes, prompt_tokens, output_tokens, model, slo,
        } ; padding 4
        Pending => PerllmPending { request, defers } ; padding 4
        Decision => PerllmDecision { action, server }
        Placement => PerllmPlacement { struct_size, action, server, reserved }
        OutcomeView => PerllmOutcomeView {
            struct_size, server, met, reserved, decided_ns, ttft_ns, total_ns, request, phases,
        }
        HardwareView => PerllmHardwareView {
            struct_size, kind, compute_flops, memory_bytes, memory_bandwidth_bytes_per_s,
            power_idle_w, power_busy_w, compute_efficiency, bandwidth_efficiency, name,
        }
        ModelView => PerllmModelView {
            struct_size, reserved, params, bytes_per_param, weight_bytes, kv_bytes_per_token,
            name,
        }
        StepShapeView => PerllmStepShapeView {
            struct_size, prefill_seqs, decode_seqs, reserved, prefill_tokens, kv_tokens,
        }
        EstimateInput => PerllmEstimateInput {
            struct_size, device_count, active_uploads, queued, running, reserved, bandwidth_bps,
            energy_j_per_bit, hardware, model, server, request,
        }
        PolicyVTable => PerllmPolicyVTable {
            struct_size, reserved, create, destroy, schedule, observe, stats, decide,
        }
        CostModelVTable => PerllmCostModelVTable {
            struct_size, reserved, create, destroy, step_ns, estimate,
        }
        PluginDecl => PerllmPluginDecl {
            struct_size, kind, name, version, description, flags, reserved, policy, cost_model,
            params,
        }
        PluginList => PerllmPluginList { struct_size, reserved, plugins }
    }
}

fn constants() -> Vec<(&'static str, u64)> {
    vec![
        ("PERLLM_ABI_VERSION_MAJOR", ABI_VERSION_MAJOR as u64),
        ("PERLLM_ABI_VERSION_MINOR", ABI_VERSION_MINOR as u64),
        ("PERLLM_ABI_VERSION", ABI_VERSION as u64),
        ("PERLLM_KIND_POLICY", KIND_POLICY as u64),
        ("PERLLM_KIND_COST_MODEL", KIND_COST_MODEL as u64),
        ("PERLLM_FLAG_WANTS_ESTIMATES", FLAG_WANTS_ESTIMATES as u64),
        ("PERLLM_STATUS_OK", STATUS_OK as u64),
        ("PERLLM_STATUS_ERROR", STATUS_ERROR as u64),
        ("PERLLM_STATUS_PANIC", STATUS_PANIC as u64),
        ("PERLLM_TIER_EDGE", TIER_EDGE as u64),
        ("PERLLM_TIER_CLOUD", TIER_CLOUD as u64),
        ("PERLLM_HW_CPU", HW_CPU as u64),
        ("PERLLM_HW_GPU", HW_GPU as u64),
        ("PERLLM_HW_NPU", HW_NPU as u64),
        ("PERLLM_HW_UNKNOWN", HW_UNKNOWN as u64),
        ("PERLLM_ACTION_DEFER", ACTION_DEFER as u64),
        ("PERLLM_ACTION_ASSIGN", ACTION_ASSIGN as u64),
        ("PERLLM_ACTION_REJECT", ACTION_REJECT as u64),
        ("PERLLM_NO_SERVER", NO_SERVER as u64),
    ]
}

/// The system C compiler: `$CC`, else `cc`.
pub fn c_compiler() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".into())
}

#[test]
fn every_struct_is_covered_field_by_field_without_padding() {
    for s in table() {
        let mut end = 0;
        for &(f, off, size) in &s.fields {
            assert_eq!(
                off, end,
                "{}.{f}: a gap or an unlisted field before it",
                s.rust
            );
            end = off + size;
        }
        assert_eq!(
            end + s.tail_padding,
            s.size,
            "{}: fields after the last listed one",
            s.rust
        );
        assert!(s.size.is_multiple_of(s.align));
    }
}

#[test]
fn the_c_header_matches_the_rust_layout() {
    let header_dir = workspace_file("perllm-plugin-abi/include");
    let table = table();
    let mut c = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include \"perllm_plugin.h\"\nint main(void) {\n",
    );
    let mut expected = String::new();
    for s in &table {
        writeln!(
            c,
            "  printf(\"{0} %zu %zu\\n\", sizeof({1}), _Alignof({1}));",
            s.rust, s.c
        )
        .unwrap();
        writeln!(expected, "{} {} {}", s.rust, s.size, s.align).unwrap();
        for (f, off, size) in &s.fields {
            writeln!(
                c,
                "  printf(\"{0}.{2} %zu %zu\\n\", offsetof({1}, {2}), sizeof((({1} *)0)->{2}));",
                s.rust, s.c, f
            )
            .unwrap();
            writeln!(expected, "{}.{f} {off} {size}", s.rust).unwrap();
        }
    }
    for (name, v) in constants() {
        writeln!(
            c,
            "  printf(\"{name} %llu\\n\", (unsigned long long)({name}));"
        )
        .unwrap();
        writeln!(expected, "{name} {v}").unwrap();
    }
    writeln!(
        c,
        "  printf(\"%s %s\\n\", PERLLM_ABI_VERSION_SYMBOL, PERLLM_DECLARE_SYMBOL);"
    )
    .unwrap();
    writeln!(expected, "{ABI_VERSION_SYMBOL} {DECLARE_SYMBOL}").unwrap();
    c.push_str("  return 0;\n}\n");

    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("layout.c");
    let exe = dir.path().join("layout");
    std::fs::write(&src, &c).unwrap();
    run_ok(
        Command::new(c_compiler())
            .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I"])
            .arg(&header_dir)
            .arg(&src)
            .arg("-o")
            .arg(&exe),
        "compiling against perllm_plugin.h",
    );
    let run = Command::new(&exe).output().unwrap();
    assert!(run.status.success());
    let got = String::from_utf8(run.stdout).unwrap();
    for (g, e) in got.lines().zip(expected.lines()) {
        assert_eq!(g, e, "C (left) and Rust (right) disagree");
    }
    assert_eq!(got.lines().count(), expected.lines().count());
}
