//! Ready-made scenarios built in code: the paper's testbed and small variants for tests.

use crate::spec::*;

/// One server (`count = 1`, no family) with every optional field unset: batching, chunking,
/// endpoint, PUE and idle charge take their defaults.
pub fn server(
    name: &str,
    tier: Tier,
    hardware: &str,
    models: &[&str],
    link: &str,
    max_batch: u32,
) -> ServerSpec {
    ServerSpec {
        name: name.into(),
        family: None,
        tier,
        hardware: hardware.into(),
        count: 1,
        models: models.iter().map(|m| m.to_string()).collect(),
        link: link.into(),
        max_batch,
        batching: None,
        chunk_tokens: None,
        endpoint: None,
        api_key_env: None,
        pue: None,
        idle_charge: None,
    }
}

/// A replay of the trace at `path` with every option at its default, as a scenario file that
/// names only `path` and `format` gets: speedup 1, no target rate or window, one pass, bad rows
/// refused, SLO classes and models drawn by the workload's shares, payloads from the trace.
pub fn trace(path: &str, format: TraceFormat) -> TraceSpec {
    TraceSpec {
        path: path.into(),
        format,
        speedup: 1.0,
        target_rate: None,
        window_ns: None,
        repeat: 1,
        skip_bad_rows: false,
        slo_assign: Assign::ByShare,
        model_assign: Assign::ByShare,
        payload: None,
    }
}

/// The PerLLM paper's testbed: five Xeon Silver 4214R edge servers (llama2-7b int8) and one
/// A100 cloud server (llama2-7b and llama-33b), 100 Mbps edge and 300 Mbps cloud links with
/// +/-20% fluctuation, three SLO classes, Poisson arrivals at `rate` per second for `duration_ns`.
/// It is the same scenario as `examples/paper.perllm`.
pub fn paper(rate: f64, duration_ns: Nanos) -> Scenario {
    let mut servers: Vec<ServerSpec> = (1..=5)
        .map(|i| ServerSpec {
            family: Some("edge".into()),
            ..server(
                &format!("edge{i}"),
                Tier::Edge,
                "xeon-4214r",
                &["llama2-7b"],
                "edge-lan",
                4,
            )
        })
        .collect();
    servers.push(server(
        "cloud",
        Tier::Cloud,
        "a100",
        &["llama2-7b", "llama-33b"],
        "wan",
        64,
    ));
    Scenario {
        name: "perllm-paper".into(),
        seed: 7,
        duration_ns,
        slot_ns: 100 * MILLISECOND,
        hardware: vec![
            Hardware {
                name: "xeon-4214r".into(),
                kind: HardwareKind::Cpu,
                compute_flops: 1.6e12,
                memory_bytes: 192 << 30,
                memory_bandwidth_bytes_per_s: 115e9,
                power_idle_w: 60.0,
                power_busy_w: 125.0,
                compute_efficiency: None,
                bandwidth_efficiency: None,
                contention: None,
            },
            Hardware {
                name: "a100".into(),
                kind: HardwareKind::Gpu,
                compute_flops: 312e12,
                memory_bytes: 80 << 30,
                memory_bandwidth_bytes_per_s: 2039e9,
                power_idle_w: 55.0,
                power_busy_w: 400.0,
                // Fitted to Vidur's profiled A100 operator times (docs/fidelity.md).
                compute_efficiency: Some(0.535),
                bandwidth_efficiency: Some(0.72),
                contention: Some(0.0),
            },
        ],
        models: vec![
            ModelSpec {
                name: "llama2-7b".into(),
                params: 7e9,
                precision: Precision::Int8,
                kv_bytes_per_token: 512 << 10,
            },
            ModelSpec {
                name: "llama-33b".into(),
                params: 33e9,
                precision: Precision::Fp16,
                kv_bytes_per_token: 3 << 19,
            },
        ],
        links: vec![
            LinkSpec {
                name: "edge-lan".into(),
                bandwidth_bps: 100e6,
                fluctuation: Fluctuation::Uniform { frac: 0.2 },
                redraw_ns: None,
                latency_ns: 5 * MILLISECOND,
                energy_j_per_bit: 50e-9,
            },
            LinkSpec {
                name: "wan".into(),
                bandwidth_bps: 300e6,
                fluctuation: Fluctuation::Uniform { frac: 0.2 },
                redraw_ns: None,
                latency_ns: 40 * MILLISECOND,
                energy_j_per_bit: 150e-9,
            },
        ],
        servers,
        slos: vec![
            SloClass {
                name: "interactive".into(),
                deadline_ns: 4 * SECOND,
                share: 0.5,
            },
            SloClass {
                name: "standard".into(),
                deadline_ns: 15 * SECOND,
                share: 0.35,
            },
            SloClass {
                name: "batch".into(),
                deadline_ns: 60 * SECOND,
                share: 0.15,
            },
        ],
        workload: WorkloadSpec {
            arrivals: Arrivals::Poisson { rate },
            prompt_tokens: SizeDist::LogNormal {
                median: 400.0,
                sigma: 0.8,
            },
            output_tokens: SizeDist::LogNormal {
                median: 120.0,
                sigma: 0.6,
            },
            payload_bytes: SizeDist::LogNormal {
                median: 256e3,
                sigma: 1.0,
            },
            output_bytes_per_token: 4.0,
            models: vec![("llama2-7b".into(), 0.7), ("llama-33b".into(), 0.3)],
            max_prompt_tokens: 8192,
            max_output_tokens: 4096,
            trace: None,
            max_requests: None,
        },
        objective: Objective {
            weights: ObjectiveWeights {
                transmission: 1.0,
                inference: 1.0,
                idle: 0.5,
            },
            constraints: vec![
                within_deadline(),
                LinearConstraint {
                    terms: vec![(1.0, Quantity::Share(Target::Server("cloud".into())))],
                    constant: -0.6,
                    cmp: Cmp::Le,
                    source: "share(cloud) <= 60%".into(),
                },
                LinearConstraint {
                    terms: vec![(1.0, Quantity::Occupancy(Target::Family("edge".into())))],
                    constant: -0.9,
                    cmp: Cmp::Le,
                    source: "occupancy(edge) <= 90%".into(),
                },
            ],
        },
        policy: PolicySpec {
            name: "perllm".into(),
            params: [
                ("exploration".to_string(), ParamValue::Number(0.5)),
                ("constraint_weight".to_string(), ParamValue::Number(1.0)),
                ("violation_penalty".to_string(), ParamValue::Number(1.0)),
            ]
            .into_iter()
            .collect(),
        },
        sim: SimParams::default(),
    }
}

/// `latency <= deadline`.
fn within_deadline() -> LinearConstraint {
    LinearConstraint {
        terms: vec![(1.0, Quantity::Latency), (-1.0, Quantity::Deadline)],
        constant: 0.0,
        cmp: Cmp::Le,
        source: "latency <= deadline".into(),
    }
}

/// The paper testbed's three constraints by tier, for clusters whose servers are not named as
/// the paper's: `latency <= deadline`, `share(cloud tier) <= 60%`, `occupancy(edge tier) <= 90%`
/// (the decision benchmark's and its tests').
pub fn tier_constraints() -> Vec<LinearConstraint> {
    vec![
        within_deadline(),
        LinearConstraint {
            terms: vec![(1.0, Quantity::Share(Target::Tier(Tier::Cloud)))],
            constant: -0.6,
            cmp: Cmp::Le,
            source: "share(cloud) <= 60%".into(),
        },
        LinearConstraint {
            terms: vec![(1.0, Quantity::Occupancy(Target::Tier(Tier::Edge)))],
            constant: -0.9,
            cmp: Cmp::Le,
            source: "occupancy(edge) <= 90%".into(),
        },
    ]
}

/// The paper's hardware scaled out to `servers` servers: one A100 cloud server (both models) per
/// ten servers, the rest Xeon edge servers (llama2-7b), with Poisson arrivals at `rate` per second.
/// Used by the simulator's scale benchmarks.
pub fn scaled(servers: usize, rate: f64, duration_ns: Nanos) -> Scenario {
    let mut sc = paper(rate, duration_ns);
    sc.name = format!("perllm-scaled-{servers}");
    let edge = sc.servers[0].clone();
    let cloud = sc.servers[5].clone();
    sc.servers = (0..servers)
        .map(|i| {
            let mut s = if i % 10 == 9 {
                cloud.clone()
            } else {
                edge.clone()
            };
            s.name = format!("{}{}", if i % 10 == 9 { "cloud" } else { "edge" }, i + 1);
            s.family = Some(if i % 10 == 9 { "cloud" } else { "edge" }.into());
            s
        })
        .collect();
    sc.objective.constraints.clear();
    sc
}
