//! Every numeric field of a scenario, one at a time: the value tables with their documented
//! rules, and the two tests that try them.

use super::*;

/// `(field, path fragments of the expected error separated by |, rule, setter)`.
fn float_fields() -> Vec<FloatRow> {
    vec![
        (
            "hardware.compute_flops",
            "hardware[xeon-4214r].compute",
            |v| pos(v) && v >= limits::MIN_COMPUTE_FLOPS,
            |s, v| s.hardware[0].compute_flops = v,
        ),
        (
            "hardware.memory_bandwidth",
            "hardware[xeon-4214r].memory_bandwidth",
            |v| pos(v) && v >= limits::MIN_MEMORY_BANDWIDTH,
            |s, v| s.hardware[0].memory_bandwidth_bytes_per_s = v,
        ),
        (
            "hardware.power_idle",
            "hardware[xeon-4214r].power",
            |v| nonneg(v) && v <= 125.0,
            |s, v| s.hardware[0].power_idle_w = v,
        ),
        (
            "hardware.power_busy",
            "hardware[xeon-4214r].power.busy",
            |v| (60.0..=limits::MAX_POWER_W).contains(&v),
            |s, v| s.hardware[0].power_busy_w = v,
        ),
        (
            "hardware.compute_efficiency",
            "hardware[xeon-4214r].compute_efficiency",
            |v| pos(v) && (limits::MIN_EFFICIENCY..=1.0).contains(&v),
            |s, v| s.hardware[0].compute_efficiency = Some(v),
        ),
        (
            "hardware.bandwidth_efficiency",
            "hardware[xeon-4214r].bandwidth_efficiency",
            |v| pos(v) && (limits::MIN_EFFICIENCY..=1.0).contains(&v),
            |s, v| s.hardware[0].bandwidth_efficiency = Some(v),
        ),
        // 1e300 parameters do not fit any memory: rejected by the fit check instead.
        (
            "model.params",
            "model[llama2-7b].params|server[edge1].models",
            |v| pos(v) && v < 1e12,
            |s, v| s.models[0].params = v,
        ),
        (
            "link.bandwidth",
            "link[edge-lan].bandwidth",
            |v| pos(v) && v >= limits::MIN_LINK_BPS,
            |s, v| s.links[0].bandwidth_bps = v,
        ),
        (
            "link.energy_j_per_bit",
            "link[edge-lan].energy",
            |v| nonneg(v) && v <= limits::MAX_LINK_J_PER_BIT,
            |s, v| s.links[0].energy_j_per_bit = v,
        ),
        (
            "link.fluctuation.uniform",
            "link[edge-lan].bandwidth",
            unit_half_open,
            |s, v| fluctuate(s, Fluctuation::Uniform { frac: v }),
        ),
        (
            "link.fluctuation.walk.step",
            "link[edge-lan].fluctuation",
            nonneg,
            |s, v| {
                fluctuate(
                    s,
                    Fluctuation::RandomWalk {
                        step: v,
                        bound: 0.3,
                    },
                )
            },
        ),
        (
            "link.fluctuation.walk.bound",
            "link[edge-lan].fluctuation",
            unit_half_open,
            |s, v| {
                fluctuate(
                    s,
                    Fluctuation::RandomWalk {
                        step: 0.1,
                        bound: v,
                    },
                )
            },
        ),
        (
            "link.fluctuation.series.factor",
            "link[edge-lan].fluctuation",
            |v| {
                pos(v) && (limits::MIN_BANDWIDTH_FACTOR..=limits::MAX_BANDWIDTH_FACTOR).contains(&v)
            },
            |s, v| {
                fluctuate(
                    s,
                    Fluctuation::Series {
                        points: vec![(0, 1.0), (SECOND, v)],
                    },
                )
            },
        ),
        // Shares must also sum to 100%: set the others so that only the tried value can be wrong.
        (
            "slo.share",
            "slo[interactive].share",
            unit_closed,
            |s, v| {
                s.slos[0].share = v;
                s.slos[1].share = 0.85 - v.clamp(0.0, 0.85);
                s.slos[2].share = 0.15;
                if v > 0.85 && v <= 1.0 {
                    s.slos[1].share = 0.0;
                    s.slos[2].share = 1.0 - v;
                }
            },
        ),
        (
            "workload.model_share",
            "workload.models",
            unit_closed,
            |s, v| {
                s.workload.models[0].1 = v;
                s.workload.models[1].1 = 1.0 - v.clamp(0.0, 1.0);
            },
        ),
        (
            "workload.prompt.fixed",
            "workload.prompt_tokens",
            nonneg,
            |s, v| s.workload.prompt_tokens = SizeDist::Fixed { value: v },
        ),
        (
            "workload.prompt.uniform.hi",
            "workload.prompt_tokens",
            |v| v.is_finite() && v >= 1.0,
            |s, v| s.workload.prompt_tokens = SizeDist::Uniform { lo: 1.0, hi: v },
        ),
        (
            "workload.prompt.lognormal.median",
            "workload.prompt_tokens",
            pos,
            |s, v| {
                s.workload.prompt_tokens = SizeDist::LogNormal {
                    median: v,
                    sigma: 0.5,
                }
            },
        ),
        (
            "workload.output.lognormal.sigma",
            "workload.output_tokens",
            nonneg,
            |s, v| {
                s.workload.output_tokens = SizeDist::LogNormal {
                    median: 100.0,
                    sigma: v,
                }
            },
        ),
        (
            "workload.output.empirical",
            "workload.output_tokens",
            nonneg,
            |s, v| {
                s.workload.output_tokens = SizeDist::Empirical {
                    values: vec![10.0, v],
                }
            },
        ),
        (
            "workload.payload.fixed",
            "workload.payload",
            nonneg,
            |s, v| s.workload.payload_bytes = SizeDist::Fixed { value: v },
        ),
        (
            "workload.output_bytes_per_token",
            "workload.output_bytes_per_token",
            |v| nonneg(v) && v <= limits::MAX_OUTPUT_BYTES_PER_TOKEN,
            |s, v| s.workload.output_bytes_per_token = v,
        ),
        (
            "arrivals.poisson.rate",
            "workload.arrivals",
            rate,
            |s, v| s.workload.arrivals = Arrivals::Poisson { rate: v },
        ),
        ("arrivals.gamma.rate", "workload.arrivals", rate, |s, v| {
            s.workload.arrivals = Arrivals::Gamma { rate: v, cv: 2.0 }
        }),
        (
            "arrivals.gamma.cv",
            "workload.arrivals",
            |v| pos(v) && v <= limits::MAX_GAMMA_CV,
            |s, v| s.workload.arrivals = Arrivals::Gamma { rate: 4.0, cv: v },
        ),
        ("arrivals.on_off.rate", "workload.arrivals", rate, |s, v| {
            s.workload.arrivals = Arrivals::OnOff {
                rate: v,
                on_ns: SECOND,
                off_ns: SECOND,
            }
        }),
        (
            "arrivals.diurnal.mean_rate",
            "workload.arrivals",
            // The peak, mean x 1.5, is what the limit bounds.
            |v| rate(v * 1.5),
            |s, v| {
                s.workload.arrivals = Arrivals::Diurnal {
                    mean_rate: v,
                    amplitude: 0.5,
                    period_ns: 60 * SECOND,
                }
            },
        ),
        (
            "arrivals.diurnal.amplitude",
            "workload.arrivals",
            unit_closed,
            |s, v| {
                s.workload.arrivals = Arrivals::Diurnal {
                    mean_rate: 4.0,
                    amplitude: v,
                    period_ns: 60 * SECOND,
                }
            },
        ),
        // A zero step is allowed as long as some step is positive.
        (
            "arrivals.steps.rate",
            "workload.arrivals",
            |v| nonneg(v) && v <= limits::MAX_ARRIVAL_RATE,
            |s, v| {
                s.workload.arrivals = Arrivals::Steps {
                    steps: vec![(0, 4.0), (SECOND, v)],
                }
            },
        ),
        (
            "objective.weight.transmission",
            "objective.minimize.transmission",
            |v| nonneg(v) && v <= limits::MAX_OBJECTIVE_WEIGHT,
            |s, v| s.objective.weights.transmission = v,
        ),
        (
            "objective.weight.inference",
            "objective.minimize.inference",
            |v| nonneg(v) && v <= limits::MAX_OBJECTIVE_WEIGHT,
            |s, v| s.objective.weights.inference = v,
        ),
        (
            "objective.weight.idle",
            "objective.minimize.idle",
            |v| nonneg(v) && v <= limits::MAX_OBJECTIVE_WEIGHT,
            |s, v| s.objective.weights.idle = v,
        ),
        (
            "objective.constraint.coefficient",
            "objective.constraint",
            // `v * share(cloud) - 0.6 <= 0`: zero, or within 1e12 of 0.6 and not subnormal.
            |v| representable(v, 0.6),
            |s, v| s.objective.constraints[1].terms[0].0 = v,
        ),
        (
            "objective.constraint.constant",
            "objective.constraint",
            // `share(cloud) + v <= 0`.
            |v| representable(v, 1.0),
            |s, v| s.objective.constraints[1].constant = v,
        ),
        (
            "sim.step_noise",
            "sim.step_noise",
            unit_half_open,
            |s, v| s.sim.step_noise = v,
        ),
        (
            "sim.contention",
            "sim.contention",
            |v| nonneg(v) && v <= limits::MAX_CONTENTION,
            |s, v| s.sim.contention = v,
        ),
    ]
}

fn int_fields() -> Vec<IntRow> {
    let positive = |v: u64| v > 0;
    let any = |_: u64| true;
    vec![
        (
            "scenario.duration",
            "scenario.duration",
            positive,
            |s, v| s.duration_ns = v,
        ),
        (
            "scenario.slot",
            "scenario.slot",
            |v| v <= limits::MAX_TIME_PARAM_NS,
            |s, v| s.slot_ns = v,
        ),
        ("scenario.seed", "", any, |s, v| s.seed = v),
        // The 7B int8 model needs 7 GB of weights plus KV memory.
        (
            "hardware.memory",
            "hardware[xeon-4214r].memory|server[edge1].models",
            |v| v > 8_000_000_000,
            |s, v| s.hardware[0].memory_bytes = v,
        ),
        // A KV cache the memory cannot hold one request of is rejected by the fit check.
        (
            "model.kv_per_token",
            "model[llama2-7b].kv_per_token|workload.models",
            |v| v > 0 && v < 1 << 35,
            |s, v| s.models[0].kv_bytes_per_token = v,
        ),
        (
            "link.latency",
            "link[edge-lan].latency",
            |v| v <= limits::MAX_TIME_PARAM_NS,
            |s, v| s.links[0].latency_ns = v,
        ),
        (
            "link.redraw",
            "link[edge-lan].redraw",
            |v| v >= limits::MIN_REDRAW_NS,
            |s, v| s.links[0].redraw_ns = Some(v),
        ),
        (
            "link.series.time",
            "link[edge-lan].fluctuation",
            positive,
            |s, v| {
                fluctuate(
                    s,
                    Fluctuation::Series {
                        points: vec![(0, 1.0), (v, 0.5)],
                    },
                )
            },
        ),
        (
            "server.count",
            "server[edge1].hardware",
            |v| v > 0 && v <= u32::MAX as u64,
            |s, v| {
                s.servers[0].count = if v > u32::MAX as u64 { 0 } else { v as u32 };
            },
        ),
        (
            "server.max_batch",
            "server[edge1].max_batch",
            |v| v > 0 && v <= u32::MAX as u64,
            |s, v| {
                s.servers[0].max_batch = if v > u32::MAX as u64 { 0 } else { v as u32 };
            },
        ),
        (
            "slo.deadline",
            "slo[interactive].deadline",
            positive,
            |s, v| s.slos[0].deadline_ns = v,
        ),
        (
            "workload.max_prompt_tokens",
            "workload.max_prompt_tokens",
            |v| v > 0 && v <= u32::MAX as u64,
            |s, v| {
                s.workload.max_prompt_tokens = if v > u32::MAX as u64 { 0 } else { v as u32 };
                s.workload.prompt_tokens = SizeDist::Fixed { value: 1e18 };
            },
        ),
        (
            "workload.max_output_tokens",
            "workload.max_output_tokens",
            |v| v > 0 && v <= u32::MAX as u64,
            |s, v| {
                s.workload.max_output_tokens = if v > u32::MAX as u64 { 0 } else { v as u32 };
                s.workload.output_tokens = SizeDist::Fixed { value: 1e18 };
            },
        ),
        (
            "workload.max_requests",
            "workload.max_requests",
            positive,
            |s, v| s.workload.max_requests = Some(v.min(REQUESTS)),
        ),
        (
            "arrivals.on_off.on",
            "workload.arrivals",
            positive,
            |s, v| {
                s.workload.arrivals = Arrivals::OnOff {
                    rate: 4.0,
                    on_ns: v,
                    off_ns: SECOND,
                }
            },
        ),
        // An off period of u64::MAX ns cannot be added to an on period.
        (
            "arrivals.on_off.off",
            "workload.arrivals",
            |v| v < u64::MAX,
            |s, v| {
                s.workload.arrivals = Arrivals::OnOff {
                    rate: 4.0,
                    on_ns: SECOND,
                    off_ns: v,
                }
            },
        ),
        (
            "arrivals.diurnal.period",
            "workload.arrivals",
            positive,
            |s, v| {
                s.workload.arrivals = Arrivals::Diurnal {
                    mean_rate: 4.0,
                    amplitude: 0.5,
                    period_ns: v,
                }
            },
        ),
        (
            "arrivals.steps.time",
            "workload.arrivals",
            positive,
            |s, v| {
                s.workload.arrivals = Arrivals::Steps {
                    steps: vec![(0, 4.0), (v, 2.0)],
                }
            },
        ),
        ("sim.max_defers", "", any, |s, v| {
            s.sim.max_defers = v.min(u32::MAX as u64) as u32
        }),
        ("sim.drain", "sim.drain", positive, |s, v| {
            s.sim.drain_ns = Some(v)
        }),
    ]
}

#[test]
fn float_fields_reject_bad_numbers_and_run_extremes() {
    let (cases, failures) = sweep(float_fields(), &FLOATS, |v| format!("{v:e}"));
    report("float-field", cases, failures);
}

#[test]
fn integer_fields_reject_bad_numbers_and_run_extremes() {
    let (cases, failures) = sweep(int_fields(), &INTS, |v| v.to_string());
    report("integer-field", cases, failures);
}
