//! `perllm validate`: serve workloads through the real engine in real time (requests join the
//! continuous batch at their arrival times; on a calibration profiled with `--clock cpu`, on the
//! engine's CPU-time clock instead), simulate the same workloads with the calibrated model, and
//! compare latency quantiles, throughput and batch size.

use super::calibrate::Calibration;
use super::reqlog::{Logged, write_log};
use super::simulate::{Job, Served, simulate};
use super::{build_engine, quantile};
use crate::error::{CliError, Result};
use crate::output::Outputs;
use crate::term::Term;
use clap::Args;
use perllm_engine::{Engine, EngineConfig, Machine, Rapl, Request};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// `perllm validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The calibration to validate (`perllm calibrate --out`); its engine is the one served.
    #[arg(long, value_name = "FILE.json")]
    pub calibration: PathBuf,
    /// Serve with another batching choice than the calibrated engine's: mixed, prefill_first
    /// or chunked (the scenario language's `batching`).
    #[arg(long, value_name = "KIND", value_parser = super::parse_batching_kind)]
    pub batching: Option<super::BatchingKind>,
    /// Tokens per step with `--batching chunked` (`chunk_tokens`; default: the calibrated
    /// engine's, else 512).
    #[arg(long, value_name = "N")]
    pub chunk_tokens: Option<u32>,
    /// Loads, as fractions of the measured saturation throughput.
    #[arg(
        long,
        value_name = "F,..",
        default_value = "0.3,0.6,0.9",
        value_delimiter = ','
    )]
    pub loads: Vec<f64>,
    /// Requests per load.
    #[arg(long, default_value_t = 80)]
    pub requests: usize,
    /// Requests of the saturation run (all queued at once); default 6 x max_batch.
    #[arg(long)]
    pub saturation_requests: Option<usize>,
    /// Warm-up requests, queued at once and served before the measured runs (first touch of
    /// the weights and caches, the allocator's pools); default 4 x max_batch.
    #[arg(long, value_name = "N")]
    pub warmup: Option<usize>,
    /// Median prompt tokens (lognormal, sigma 0.5).
    #[arg(long, default_value_t = 128)]
    pub prompt_median: u32,
    /// Median output tokens (lognormal, sigma 0.5).
    #[arg(long, default_value_t = 32)]
    pub output_median: u32,
    /// Seed of the workloads.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write summary.json and the engine's request logs (`perllm-requests 1`) here.
    #[arg(short, long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print the summary as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Latency quantiles, seconds.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Quantiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Quantiles {
    /// The quantiles with their names (`p50`, `p90`, `p99`).
    fn named(&self) -> [(&'static str, f64); 3] {
        [("p50", self.p50), ("p90", self.p90), ("p99", self.p99)]
    }
}

/// One side (engine or simulator) of one run.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Side {
    /// Time to first token.
    pub ttft_s: Quantiles,
    /// End-to-end latency.
    pub e2e_s: Quantiles,
    /// Completed requests per second (from the first arrival to the last completion), or for
    /// the saturation run, between the max_batch-th and the (n - max_batch)-th completion.
    pub throughput_rps: f64,
    /// Time-weighted mean sequences in the engine while it steps (admitted, not finished,
    /// whether the step computes them or, with `prefill_first`, pauses them).
    pub mean_batch: f64,
    /// Fraction of the run the engine was stepping.
    pub busy_fraction: f64,
}

/// One compared run.
#[derive(Clone, Debug, Serialize)]
pub struct Compared {
    /// `saturation` or the load fraction.
    pub load: String,
    /// Offered rate, requests/s (0 for the saturation run).
    pub rate_rps: f64,
    /// Requests.
    pub requests: usize,
    /// The real engine.
    pub engine: Side,
    /// The simulator with the calibrated model.
    pub sim: Side,
    /// Package energy measured by RAPL, joules, if the machine exposes it.
    pub rapl_joules: Option<f64>,
}

/// The whole validation.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// The machine.
    pub machine: Machine,
    /// The engine served.
    pub engine: EngineConfig,
    /// The calibration file.
    pub calibration: String,
    /// The clock the engine's times are on (the calibration's).
    pub clock: super::Clock,
    /// RAPL status: `available`, or why not.
    pub rapl: String,
    /// Runs: saturation first, then each load.
    pub runs: Vec<Compared>,
}

struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        (-2.0 * self.unit().ln()).sqrt() * (2.0 * std::f64::consts::PI * self.unit()).cos()
    }
    fn lognormal(&mut self, median: u32, lo: u32, hi: u32) -> u32 {
        ((median as f64 * (0.5 * self.normal()).exp()).round() as u32).clamp(lo, hi)
    }
}

/// A workload: `n` requests, Poisson at `rate` (all at 0 if `rate` is 0), lognormal sizes.
pub fn workload(n: usize, rate: f64, a: &ValidateArgs, cfg: &EngineConfig, seed: u64) -> Vec<Job> {
    let mut rng = Rng(seed);
    let half = cfg.max_seq_len / 2;
    let mut t = 0.0;
    (0..n)
        .map(|_| {
            if rate > 0.0 {
                t += -rng.unit().ln() / rate;
            }
            Job {
                arrival_ns: (t * 1e9) as u64,
                prompt: rng.lognormal(a.prompt_median, 4, half),
                output: rng.lognormal(a.output_median, 2, half),
            }
        })
        .collect()
}

/// One step of the real engine, as the driver saw it.
#[derive(Clone, Copy, Debug)]
pub struct StepLog {
    /// When the driver called `step`, ns from the start of the run.
    pub start_ns: u64,
    /// When `step` returned, ns.
    pub end_ns: u64,
    /// The forward pass and sampling alone (the engine's own timing), ns.
    pub forward_ns: u64,
    /// Time since the previous step returned, ns: submitting arrivals and planning the batch;
    /// idle waits for an arrival are not counted (`idle` is set instead).
    pub gap_ns: u64,
    /// The engine was idle before this step (waiting for an arrival).
    pub after_idle: bool,
    /// The step's shape.
    pub shape: perllm_engine::StepShape,
}

/// What the real engine did with a workload.
pub struct RealRun {
    /// Every step, in order.
    pub steps: Vec<StepLog>,
    /// Per request, in job order.
    pub logged: Vec<Logged>,
    /// Stepping time, ns.
    pub busy_ns: u64,
    /// Sum of sequences x step time, ns.
    pub seq_ns: u64,
}

/// Serve `jobs` through `engine`: in real time on the wall clock, or on the engine's virtual
/// CPU-time clock (each step advances it by the step's CPU time; an idle engine jumps to the
/// next arrival).
pub fn serve(engine: &mut Engine, jobs: &[Job], clock: super::Clock) -> Result<RealRun> {
    let cpu = clock == super::Clock::Cpu;
    let n = jobs.len();
    let vocab = engine.config().vocab;
    let mut first = vec![0u64; n];
    let mut done = vec![0u64; n];
    let (mut busy, mut seq_ns) = (0u64, 0u64);
    let mut steps: Vec<StepLog> = Vec::new();
    let (mut last_end, mut idle) = (0u64, true);
    let mut next = 0;
    let start = Instant::now();
    let mut vt = 0u64;
    let now = |vt: u64| {
        if cpu {
            vt
        } else {
            start.elapsed().as_nanos() as u64
        }
    };
    loop {
        let t = now(vt);
        while next < n && jobs[next].arrival_ns <= t {
            let j = jobs[next];
            let prompt = (0..j.prompt)
                .map(|k| (k * 7 + next as u32) % vocab)
                .collect();
            engine
                .submit(Request {
                    id: next as u64,
                    prompt,
                    max_tokens: j.output,
                })
                .map_err(|e| CliError::input(e.to_string()))?;
            next += 1;
        }
        if engine.is_idle() {
            if next == n {
                break;
            }
            if cpu {
                vt = vt.max(jobs[next].arrival_ns);
            } else {
                let wait = jobs[next].arrival_ns.saturating_sub(now(vt));
                std::thread::sleep(Duration::from_nanos(wait));
            }
            idle = true;
            continue;
        }
        let t0 = now(vt);
        let Some(rep) = engine.step().map_err(|e| CliError::run(e.to_string()))? else {
            continue;
        };
        if cpu {
            vt += (rep.cpu.as_nanos() as u64).max(1);
        }
        let t1 = now(vt);
        busy += t1 - t0;
        steps.push(StepLog {
            start_ns: t0,
            end_ns: t1,
            forward_ns: if cpu {
                rep.cpu.as_nanos() as u64
            } else {
                rep.elapsed.as_nanos() as u64
            },
            gap_ns: if idle { 0 } else { t0.saturating_sub(last_end) },
            after_idle: idle,
            shape: rep.shape,
        });
        (last_end, idle) = (t1, false);
        // The sequences in the engine during the step (admitted, not finished before it),
        // whether or not the step computes them: a `prefill_first` step pauses the decodes but
        // they are in the batch, as the simulator's residence counts them.
        let finished = rep.events.iter().filter(|e| e.finished).count() as u64;
        let seqs = engine.running() as u64 + finished;
        seq_ns += seqs * (t1 - t0);
        for ev in rep.events {
            let i = ev.id as usize;
            if ev.index == 0 {
                first[i] = t1;
            }
            if ev.finished {
                done[i] = t1;
            }
        }
    }
    let logged = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| Logged {
            job: *j,
            ttft_ns: first[i].saturating_sub(j.arrival_ns).max(1),
            e2e_ns: done[i].saturating_sub(j.arrival_ns).max(1),
        })
        .collect();
    Ok(RealRun {
        steps,
        logged,
        busy_ns: busy,
        seq_ns,
    })
}

fn quantiles(v: &[f64]) -> Quantiles {
    let mut v = v.to_vec();
    Quantiles {
        p50: quantile(&mut v, 0.5),
        p90: quantile(&mut v, 0.9),
        p99: quantile(&mut v, 0.99),
    }
}

/// Throughput: completions per second from the first arrival to the last completion, or over
/// the middle completions (`skip` at each end) for a saturation run.
fn throughput(jobs: &[Job], lat: &[(u64, u64)], skip: usize) -> f64 {
    let mut ends: Vec<u64> = jobs
        .iter()
        .zip(lat)
        .map(|(j, l)| j.arrival_ns + l.1)
        .collect();
    ends.sort();
    if skip > 0 && ends.len() > 2 * skip + 1 {
        let (a, b) = (ends[skip - 1], ends[ends.len() - 1 - skip]);
        return (ends.len() - 2 * skip) as f64 / ((b - a).max(1) as f64 * 1e-9);
    }
    let first = jobs.iter().map(|j| j.arrival_ns).min().unwrap_or(0);
    ends.len() as f64 / ((ends.last().copied().unwrap_or(1) - first).max(1) as f64 * 1e-9)
}

fn side(jobs: &[Job], lat: &[(u64, u64)], busy: u64, seq_ns: u64, skip: usize) -> Side {
    let ttft: Vec<f64> = lat.iter().map(|l| l.0 as f64 * 1e-9).collect();
    let e2e: Vec<f64> = lat.iter().map(|l| l.1 as f64 * 1e-9).collect();
    let span = jobs
        .iter()
        .zip(lat)
        .map(|(j, l)| j.arrival_ns + l.1)
        .max()
        .unwrap_or(1);
    Side {
        ttft_s: quantiles(&ttft),
        e2e_s: quantiles(&e2e),
        throughput_rps: throughput(jobs, lat, skip),
        mean_batch: seq_ns as f64 / busy.max(1) as f64,
        busy_fraction: busy as f64 / span.max(1) as f64,
    }
}

/// Serve and simulate one workload.
#[allow(clippy::too_many_arguments)]
fn compare(
    engine: &mut Engine,
    cal: &Calibration,
    cfg: &EngineConfig,
    jobs: &[Job],
    load: String,
    rate: f64,
    skip: usize,
    rapl: Option<&Rapl>,
) -> Result<(Compared, RealRun)> {
    let before = rapl.map(|r| r.read());
    let real = serve(engine, jobs, cal.clock)?;
    let rapl_joules = rapl
        .zip(before)
        .map(|(r, b)| r.joules_between(&b, &r.read()));
    let sim: Served = simulate(&cal.params(), cfg, jobs)?;
    let lat: Vec<(u64, u64)> = real.logged.iter().map(|l| (l.ttft_ns, l.e2e_ns)).collect();
    Ok((
        Compared {
            load,
            rate_rps: rate,
            requests: jobs.len(),
            engine: side(jobs, &lat, real.busy_ns, real.seq_ns, skip),
            sim: side(jobs, &sim.latency, sim.busy_ns, sim.residence_ns, skip),
            rapl_joules,
        },
        real,
    ))
}

/// Run `perllm validate`.
pub fn validate(a: ValidateArgs, term: Term) -> Result<()> {
    let cal = Calibration::read(&a.calibration)?;
    let mut cfg = cal.engine.clone();
    cfg.batching = super::batching_of(a.batching, a.chunk_tokens, cfg.batching)?;
    if a.requests < 2 {
        return Err(CliError::input("--requests must be at least 2"));
    }
    if let Some(f) = a.loads.iter().find(|f| !(**f > 0.0 && f.is_finite())) {
        return Err(CliError::input(format!(
            "--loads: {f} is not a positive fraction"
        )));
    }
    let machine = Machine::detect();
    let (rapl, rapl_status) = match Rapl::open() {
        Ok(r) => (Some(r), "available".to_string()),
        Err(e) => (None, e),
    };
    let mut engine = build_engine(cfg.clone())?;
    // Warm up the engine (first-touch of the weights and caches).
    let warm = workload(
        a.warmup.unwrap_or(4 * cfg.max_batch as usize),
        0.0,
        &a,
        &cfg,
        a.seed ^ 0xFFFF,
    );
    serve(&mut engine, &warm, cal.clock)?;
    let mb = cfg.max_batch as usize;
    let k = a.saturation_requests.unwrap_or(6 * mb).max(2 * mb + 2);
    term.info(&format!(
        "saturation run: {k} requests queued at once (max_batch {mb}); load {}",
        machine
            .load_avg_1m
            .map(|l| format!("{l:.2}"))
            .unwrap_or_else(|| "unknown".into())
    ));
    let jobs = workload(k, 0.0, &a, &cfg, a.seed);
    let mut steps = Vec::new();
    let (sat, sat_real) = compare(
        &mut engine,
        &cal,
        &cfg,
        &jobs,
        "saturation".into(),
        0.0,
        mb,
        rapl.as_ref(),
    )?;
    steps.push(("steps-saturation.csv".to_string(), sat_real.steps));
    let capacity = sat.engine.throughput_rps;
    let mut runs = vec![sat];
    let mut logs = Vec::new();
    for (i, &f) in a.loads.iter().enumerate() {
        let rate = f * capacity;
        term.info(&format!(
            "load {:.0}%: {} requests at {rate:.2}/s (about {:.0} s)",
            f * 100.0,
            a.requests,
            a.requests as f64 / rate
        ));
        let jobs = workload(a.requests, rate, &a, &cfg, a.seed + 1 + i as u64);
        let (c, real) = compare(
            &mut engine,
            &cal,
            &cfg,
            &jobs,
            format!("{:.0}%", f * 100.0),
            rate,
            0,
            rapl.as_ref(),
        )?;
        logs.push((format!("requests-{:.0}.csv", f * 100.0), real.logged));
        steps.push((format!("steps-{:.0}.csv", f * 100.0), real.steps));
        runs.push(c);
    }
    let summary = Summary {
        machine,
        engine: cfg.clone(),
        calibration: a.calibration.display().to_string(),
        clock: cal.clock,
        rapl: rapl_status,
        runs,
    };
    if let Some(dir) = &a.out {
        let mut out = Outputs::new();
        out.open(&dir.join("summary.json"))?
            .write_text(&(serde_json::to_string_pretty(&summary).expect("serialisable") + "\n"))?;
        for (name, l) in &logs {
            out.open(&dir.join(name))?
                .write_text(&write_log(&cfg, cal.clock, l))?;
        }
        for (name, st) in &steps {
            out.open(&dir.join(name))?
                .write_text(&write_steps(&cal.params(), &cfg, st))?;
        }
        out.refuse_inputs(&crate::inputs::one(&a.calibration, "the calibration"))?;
        out.report_created(&term);
        out.commit()?;
    }
    if a.json {
        crate::term::print_stdout(
            &(serde_json::to_string_pretty(&summary).expect("serialisable") + "\n"),
        )
    } else {
        crate::term::print_stdout(&render(&summary))
    }
}

/// The engine's step log as CSV: each step's timing, the driver's gap before it, its shape and
/// the calibrated model's price of that shape (what the simulator charges for it).
pub fn write_steps(p: &super::fit::Params, cfg: &EngineConfig, steps: &[StepLog]) -> String {
    let d = super::fit::Dims::of(cfg);
    let mut o = String::from(
        "# perllm-steps 1\nstep,start_s,end_s,gap_ms,after_idle,forward_ms,prefill_tokens,prefill_seqs,decode_seqs,kv_tokens,model_ms\n",
    );
    for (i, st) in steps.iter().enumerate() {
        let sh = &st.shape;
        let model = super::fit::step_ns(
            p,
            &d,
            &super::fit::Shape {
                prefill_tokens: sh.prefill_tokens as f64,
                prefill_seqs: sh.prefill_seqs as f64,
                decode_seqs: sh.decode_seqs as f64,
                kv_tokens: sh.kv_tokens as f64,
            },
        );
        let _ = writeln!(
            o,
            "{i},{:.6},{:.6},{:.3},{},{:.3},{},{},{},{},{:.3}",
            st.start_ns as f64 * 1e-9,
            st.end_ns as f64 * 1e-9,
            st.gap_ns as f64 * 1e-6,
            st.after_idle as u8,
            st.forward_ns as f64 * 1e-6,
            sh.prefill_tokens,
            sh.prefill_seqs,
            sh.decode_seqs,
            sh.kv_tokens,
            model * 1e-6
        );
    }
    o
}

fn err(s: f64, e: f64) -> String {
    format!("{:+.1}%", (s - e) / e * 100.0)
}

/// The summary as Markdown tables.
pub fn render(s: &Summary) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "engine: {} parameters ({} layers, hidden {}), {}, {} threads, max_batch {}, batching {}, {} clock; machine: {} ({} CPUs, load {})\n",
        s.engine.params(),
        s.engine.layers,
        s.engine.hidden,
        s.engine.dtype.as_str(),
        s.engine.threads,
        s.engine.max_batch,
        s.engine.batching.label(),
        s.clock.as_str(),
        s.machine.cpu_model,
        s.machine.cpus,
        s.machine
            .load_avg_1m
            .map(|l| format!("{l:.2}"))
            .unwrap_or_else(|| "unknown".into())
    );
    o.push_str(
        "| load | rate /s | metric | engine | simulator | error |\n|---|---|---|---|---|---|\n",
    );
    for r in &s.runs {
        let mut rows: Vec<(String, f64, f64)> = Vec::with_capacity(9);
        for (what, e, m) in [
            ("TTFT", r.engine.ttft_s, r.sim.ttft_s),
            ("E2E", r.engine.e2e_s, r.sim.e2e_s),
        ] {
            for ((p, e), (_, m)) in e.named().into_iter().zip(m.named()) {
                rows.push((format!("{what} {p} (ms)"), e * 1e3, m * 1e3));
            }
        }
        for (name, e, m) in [
            (
                "throughput (req/s)",
                r.engine.throughput_rps,
                r.sim.throughput_rps,
            ),
            ("mean batch", r.engine.mean_batch, r.sim.mean_batch),
            ("busy fraction", r.engine.busy_fraction, r.sim.busy_fraction),
        ] {
            rows.push((name.to_string(), e, m));
        }
        for (name, e, m) in rows {
            let _ = writeln!(
                o,
                "| {} | {:.2} | {name} | {e:.3} | {m:.3} | {} |",
                r.load,
                r.rate_rps,
                err(m, e)
            );
        }
    }
    let _ = writeln!(
        o,
        "\nerror = (simulator - engine) / engine. Energy: {}",
        if s.rapl == "available" {
            "RAPL joules per run are in summary.json".to_string()
        } else {
            format!("not measured: {}", s.rapl)
        }
    );
    o
}
