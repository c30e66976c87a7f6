//! Run the simulator on an explicit list of requests against one server whose hardware is the
//! calibrated model of the engine, and the scenario text that describes it.

use super::fit::{Dims, Params};
use crate::error::{CliError, Result};
use perllm_core::cost::Calibrated;
use perllm_core::policy::Decision;
use perllm_core::simple::from_fn;
use perllm_core::workload::WorkloadError;
use perllm_core::{Observer, Outcome, Request, Roofline, World};
use perllm_engine::{Dtype, EngineConfig};

/// One request of a workload: arrival (ns from the start), prompt and output tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Job {
    /// Arrival, ns from the start of the run.
    pub arrival_ns: u64,
    /// Prompt tokens.
    pub prompt: u32,
    /// Output tokens.
    pub output: u32,
}

/// What happened to each request and to the server.
#[derive(Clone, Debug, Default)]
pub struct Served {
    /// Per request (in job order): (time to first token, end-to-end latency), ns.
    pub latency: Vec<(u64, u64)>,
    /// Time the engine was running steps, ns.
    pub busy_ns: u64,
    /// Sum over requests of the time they spent in the batch (admitted to last token), ns.
    pub residence_ns: u64,
}

fn precision(d: Dtype) -> &'static str {
    match d {
        Dtype::F32 => "fp32",
        Dtype::Bf16 => "bf16",
        Dtype::F16 => "fp16",
    }
}

/// The calibrated `hardware` and `model` blocks for a scenario, and the cost-model config the
/// per-step terms go to.
pub fn hardware_blocks(p: &Params, cfg: &EngineConfig, hw_name: &str, model_name: &str) -> String {
    let d = Dims::of(cfg);
    format!(
        "// Calibrated by `perllm calibrate`: effective rates of the real engine (efficiencies 100%).
hardware {hw_name} {{
  kind = cpu
  compute = {:.4} GFLOPS
  memory = 64 GiB
  memory_bandwidth = {:.4} GB/s
  power {{ idle = 10 W, busy = 30 W }}
  compute_efficiency = 100%
  bandwidth_efficiency = 100%
  contention = 0
}}

// The engine's model: parameters a token multiplies (the embedding lookup excluded).
model {model_name} {{ params = {}, precision = {}, kv_per_token = {} B }}

// The engine's time per step, per decoding sequence and per KV token read are the roofline's
// config (`contention = 0`: they replace the batch interference). For the simulated steps to
// match the engine's: `sim {{ step_noise = 0 }}`. Run with:
// --cost-model roofline --cost-config '{}'
",
        p.flops / 1e9,
        p.bandwidth / 1e9,
        d.params as u64,
        precision(cfg.dtype),
        cfg.kv_bytes_per_token(),
        cost_config(p)
    )
}

/// The built-in `roofline` cost model's config for the calibrated per-step terms (JSON).
pub fn cost_config(p: &Params) -> String {
    if !p.rows_ns.is_empty() {
        let table: Vec<String> = p
            .rows_ns
            .iter()
            .map(|(r, v)| format!("[{r}, {v:.1}]"))
            .collect();
        return format!(
            "{{\"decode_seq_ns\": {:.1}, \"prefill_seq_ns\": {:.1}, \"prefill_step_ns\": {:.1}, \"kv_token_ns\": {:.3}, \"rows_ns\": [{}]}}",
            p.decode_seq_ns,
            p.prefill_seq_ns,
            p.prefill_step_ns,
            p.kv_token_ns,
            table.join(", ")
        );
    }
    format!(
        "{{\"step_overhead_ns\": {:.0}, \"decode_seq_ns\": {:.1}, \"prefill_seq_ns\": {:.1}, \"prefill_step_ns\": {:.1}, \"kv_token_ns\": {:.3}, \"one_token_step_ns\": {:.1}}}",
        p.overhead_ns.round().max(0.0),
        p.decode_seq_ns,
        p.prefill_seq_ns,
        p.prefill_step_ns,
        p.kv_token_ns,
        p.one_token_ns
    )
}

/// The cost model the simulator runs for the calibrated parameters (what `--cost-model roofline
/// --cost-config` with [`cost_config`] builds).
pub fn cost_model(p: &Params) -> Calibrated {
    Calibrated {
        roofline: Roofline {
            step_overhead_ns: p.overhead_ns.round().max(0.0) as u64,
        },
        decode_seq_ns: p.decode_seq_ns,
        prefill_seq_ns: p.prefill_seq_ns,
        prefill_step_ns: p.prefill_step_ns,
        kv_token_ns: p.kv_token_ns,
        one_token_step_ns: p.one_token_ns,
        rows_ns: p.rows_ns.clone(),
    }
}

/// The server's `batching` line for the engine's batching choice.
fn batching(cfg: &EngineConfig) -> String {
    match cfg.batching {
        perllm_engine::Batching::Mixed => "batching = mixed".into(),
        perllm_engine::Batching::PrefillFirst => "batching = prefill_first".into(),
        perllm_engine::Batching::Chunked { chunk_tokens } => {
            format!("batching = chunked\n  chunk_tokens = {chunk_tokens}")
        }
    }
}

/// The one-server scenario the simulator runs a validation workload on.
pub fn scenario_text(p: &Params, cfg: &EngineConfig, duration_s: f64) -> String {
    format!(
        "scenario \"fidelity\" {{
  seed = 1
  duration = {:.3} s
  slot = 0 s
}}
{}
link loopback {{ bandwidth = 100 Tbps, latency = 0 s, energy = 0 nJ/bit }}
server engine {{
  tier = edge
  hardware = cpu
  models = [engine]
  link = loopback
  max_batch = {}
  {}
}}
sim {{ step_noise = 0 }}
slo any {{ deadline = 1 h, share = 100% }}
workload {{
  arrivals = poisson(rate = 1 /s)
  prompt_tokens = 100
  output_tokens = 10
  payload = 1 B
  output_bytes_per_token = 0.001
  models = {{ engine: 100% }}
}}
",
        duration_s.max(1.0),
        hardware_blocks(p, cfg, "cpu", "engine"),
        cfg.max_batch,
        batching(cfg)
    )
}

#[derive(Default)]
struct Collect {
    out: Vec<Option<Outcome>>,
    busy: u64,
}

impl Observer for Collect {
    fn on_completion(&mut self, o: &Outcome) {
        let i = o.request.id as usize;
        if i < self.out.len() {
            self.out[i] = Some(*o);
        }
    }
    fn on_step(&mut self, _s: u32, start: u64, end: u64) {
        self.busy += end - start;
    }
}

/// Build the validation world for `p` and `cfg`.
pub fn world(p: &Params, cfg: &EngineConfig, duration_s: f64) -> Result<(World, Calibrated)> {
    let text = scenario_text(p, cfg, duration_s);
    let loaded = perllm_dsl::load_str("fidelity.perllm", &text, perllm_dsl::SourceKind::Perllm)
        .map_err(|f| {
            CliError::run(format!(
                "internal: the fidelity scenario does not load: {:?}",
                f.diagnostics
            ))
        })?;
    let world = loaded
        .scenario
        .build()
        .map_err(|e| CliError::run(format!("internal: the fidelity scenario is invalid: {e:?}")))?;
    Ok((world, cost_model(p)))
}

/// Simulate `jobs` (sorted by arrival) on the calibrated model.
pub fn simulate(p: &Params, cfg: &EngineConfig, jobs: &[Job]) -> Result<Served> {
    let last = jobs.iter().map(|j| j.arrival_ns).max().unwrap_or(0);
    let (world, cost) = world(p, cfg, last as f64 * 1e-9 + 1.0)?;
    let reqs: Vec<Request> = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| Request {
            id: i as u64,
            arrival_ns: j.arrival_ns,
            model: 0,
            prompt_tokens: j.prompt,
            output_tokens: j.output,
            input_bytes: 1,
            output_bytes: 1,
            slo: 0,
        })
        .collect();
    let mut source = reqs.into_iter().map(Ok::<Request, WorkloadError>);
    let mut col = Collect {
        out: vec![None; jobs.len()],
        ..Collect::default()
    };
    // Every request to server 0.
    let mut policy = from_fn("first", |_, _| Decision::Assign(0));
    {
        let mut obs: [&mut dyn Observer; 1] = [&mut col];
        perllm_core::run(&world, &mut policy, &cost, &mut source, &mut obs)
            .map_err(|e| CliError::run(format!("the simulation failed: {e}")))?;
    }
    let mut served = Served {
        busy_ns: col.busy,
        ..Served::default()
    };
    for (i, o) in col.out.iter().enumerate() {
        let o =
            o.ok_or_else(|| CliError::run(format!("the simulator did not complete request {i}")))?;
        served.latency.push((o.ttft_ns, o.total_ns));
        served.residence_ns += o.prefill_ns + o.decode_ns;
    }
    Ok(served)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fidelity::fit::{self, Shape};
    use perllm_core::cost::{CostModel, StepShape};

    /// The fitter prices steps with its own continuous formula (`fit::step_ns`); the simulator
    /// with the cost model and the hardware block `calibrate` writes. The two must agree on every
    /// shape (up to rounding to whole nanoseconds), or the calibration fits one model and the
    /// validation runs another.
    #[test]
    fn the_simulator_prices_steps_as_the_fit_does() {
        let cfg = EngineConfig::tiny();
        let d = Dims::of(&cfg);
        let table = vec![
            (1, 2.4e6),
            (2, 6.0e6),
            (8, 6.5e6),
            (32, 9.0e6),
            (96, 20.0e6),
        ];
        for (one_token_ns, rows_ns) in
            [(0.0, Vec::new()), (2.5e6, Vec::new()), (0.0, table.clone())]
        {
            let p = Params {
                overhead_ns: 1.2e6,
                flops: 3e10,
                bandwidth: 8e9,
                decode_seq_ns: 4.0e5,
                prefill_seq_ns: 7.0e5,
                prefill_step_ns: 9.0e5,
                kv_token_ns: 1500.0,
                one_token_ns,
                rows_ns,
            };
            let (world, cost) = world(&p, &cfg, 10.0).unwrap();
            let (hw, model) = (world.hardware_of(0), &world.models[0]);
            for (prefill_tokens, prefill_seqs, decode_seqs, kv_tokens) in [
                (0, 0, 1, 0),
                (0, 0, 1, 40),
                (1, 1, 0, 0),
                (0, 0, 2, 80),
                (0, 0, 14, 2000),
                (32, 1, 0, 0),
                (192, 2, 0, 0),
                (96, 1, 8, 700),
                (3, 1, 1, 50),
                // Chunked steps: decodes and a chunk filling a 32-token budget, and a chunk alone.
                (28, 1, 4, 400),
                (14, 1, 0, 0),
                (31, 1, 1, 97),
                // Beyond the table's last knot.
                (400, 4, 12, 1500),
            ] {
                let sim = cost.step_ns(
                    hw,
                    1,
                    model,
                    &StepShape {
                        prefill_tokens,
                        prefill_seqs,
                        decode_seqs,
                        kv_tokens,
                    },
                ) as f64;
                let fitted = fit::step_ns(
                    &p,
                    &d,
                    &Shape {
                        prefill_tokens: prefill_tokens as f64,
                        prefill_seqs: prefill_seqs as f64,
                        decode_seqs: decode_seqs as f64,
                        kv_tokens: kv_tokens as f64,
                    },
                );
                assert!(
                    (sim - fitted).abs() <= 2.0 + fitted * 1e-6,
                    "shape ({prefill_tokens}, {prefill_seqs}, {decode_seqs}, {kv_tokens}), \
                     one-token price {one_token_ns}, table {:?}: simulator {sim} ns, fit {fitted} ns",
                    p.rows_ns
                );
            }
        }
    }
}
