//! `perllm calibrate`: fit the analytic model's parameters to a profile or a request log, report
//! the fit and held-out errors, write the calibrated hardware.

use super::fit::{self, Ape, Dims, Params, Shape};
use super::profile::{Point, Profile, read_profile};
use super::reqlog::{Log, read_log};
use super::simulate::{Job, hardware_blocks, simulate};
use super::{EngineArgs, median};
use crate::error::{CliError, Result};
use crate::output::Outputs;
use crate::term::Term;
use clap::Args;
use perllm_engine::EngineConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `perllm calibrate`.
#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// A profile written by `perllm profile`.
    #[arg(
        long,
        value_name = "FILE.csv",
        conflicts_with = "log",
        required_unless_present = "log"
    )]
    pub profile: Option<PathBuf>,
    /// A request log (perllm's `perllm-requests 1` or `perllm run --requests` CSV).
    #[arg(long, value_name = "FILE.csv")]
    pub log: Option<PathBuf>,
    /// The engine that served a request log without a `# engine` line.
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Write the calibration (parameters, errors, engine) as JSON; `perllm validate` reads it.
    #[arg(short, long, value_name = "FILE.json")]
    pub out: Option<PathBuf>,
    /// Write the calibrated `hardware`, `model` and `sim` blocks for a scenario.
    #[arg(long, value_name = "FILE.perllm")]
    pub hardware: Option<PathBuf>,
    /// The step model fitted to a profile: `rows` (a measured table of the step's matrix work by
    /// its rows, plus the per-sequence and per-KV-token terms) or `smooth` (the roofline plus
    /// those terms, a one-token price and a per-step prompt time). A request log is always
    /// fitted with `smooth`.
    #[arg(long, value_name = "KIND", default_value = "rows", value_parser = ["rows", "smooth"])]
    pub step_model: String,
}

/// Version of the calibration files this perllm writes (2: the per-sequence terms
/// `decode_seq_ns`, `prefill_seq_ns` and `kv_token_ns` replaced the batch interference
/// `contention`; 3: `one_token_step_ns`, the price of a step computing one token,
/// `prefill_step_ns`, a step's prompt cost apart from its prompts' count, and `clock`; 4:
/// `rows_ns`, the step's matrix work by rows, which replaces the roofline when present). It reads
/// versions 2 to 4 (a version-2 file has no one-token price: such steps are priced like any;
/// versions 2 and 3 have no table).
pub const CALIBRATION_VERSION: u32 = 4;

/// The oldest calibration version this perllm reads.
pub const OLDEST_CALIBRATION_VERSION: u32 = 2;

/// What `calibrate` writes and `validate` reads.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Calibration {
    /// Format version ([`CALIBRATION_VERSION`]).
    pub version: u32,
    /// `profile` or `log`.
    pub source: String,
    /// The file fitted.
    pub file: String,
    /// The engine measured.
    pub engine: EngineConfig,
    /// The clock its step times were measured by (absent from older files: wall); `validate`
    /// serves on the same clock.
    #[serde(default)]
    pub clock: super::Clock,
    /// Fixed time per step, ns (the roofline's `step_overhead_ns`).
    pub overhead_ns: f64,
    /// Effective compute, FLOP/s.
    pub flops: f64,
    /// Effective memory bandwidth, bytes/s.
    pub bandwidth: f64,
    /// Time per decoding sequence, ns (the roofline's `decode_seq_ns`).
    pub decode_seq_ns: f64,
    /// Time per prefilling sequence, ns (the roofline's `prefill_seq_ns`).
    pub prefill_seq_ns: f64,
    /// Time per step with prompt tokens, ns (the roofline's `prefill_step_ns`; 0 when the
    /// profile has no step with two prompts or more, and absent from version 2).
    #[serde(default)]
    pub prefill_step_ns: f64,
    /// Time per KV-cache token a step reads, ns (the roofline's `kv_token_ns`).
    pub kv_token_ns: f64,
    /// Time of a step computing exactly one token, KV reads excluded, ns (the roofline's
    /// `one_token_step_ns`; 0: not separate, and absent from version 2).
    #[serde(default)]
    pub one_token_step_ns: f64,
    /// The step's matrix work by rows (prompt tokens + decoding sequences): `[rows, ns]` knots,
    /// linear between them (the roofline's `rows_ns`); when present it replaces the overhead,
    /// compute and bandwidth (kept for the `hardware` block) and the one-token price in the step
    /// price. Empty with `--step-model smooth`, and absent before version 4.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rows_ns: Vec<(u64, f64)>,
    /// Error on the points fitted.
    pub fit: ApeOut,
    /// Error on the held-out points (every fifth shape of a profile, every fourth request of a
    /// log), which the fit did not see.
    pub held_out: ApeOut,
}

/// [`Ape`] in the JSON.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct ApeOut {
    /// Points.
    pub n: usize,
    /// Median absolute percentage error.
    pub median_pct: f64,
    /// Max absolute percentage error.
    pub max_pct: f64,
}

impl From<Ape> for ApeOut {
    fn from(a: Ape) -> Self {
        ApeOut {
            n: a.n,
            median_pct: a.median,
            max_pct: a.max,
        }
    }
}

impl Calibration {
    /// The model's parameters.
    pub fn params(&self) -> Params {
        Params {
            overhead_ns: self.overhead_ns,
            flops: self.flops,
            bandwidth: self.bandwidth,
            decode_seq_ns: self.decode_seq_ns,
            prefill_seq_ns: self.prefill_seq_ns,
            prefill_step_ns: self.prefill_step_ns,
            kv_token_ns: self.kv_token_ns,
            one_token_ns: self.one_token_step_ns,
            rows_ns: self.rows_ns.clone(),
        }
    }
    /// Read a calibration file.
    pub fn read(path: &Path) -> Result<Calibration> {
        let text = super::read_text(path, "calibration")?;
        let version = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("version").and_then(|x| x.as_u64()));
        let supported = OLDEST_CALIBRATION_VERSION as u64..=CALIBRATION_VERSION as u64;
        let refuse = |v: u64| {
            Err(CliError::input(format!(
                "{}: calibration version {v}; this perllm reads versions {OLDEST_CALIBRATION_VERSION} to {CALIBRATION_VERSION}: run `perllm calibrate` again",
                path.display()
            )))
        };
        if let Some(v) = version
            && !supported.contains(&v)
        {
            return refuse(v);
        }
        let c: Calibration = serde_json::from_str(&text).map_err(|e| {
            CliError::input(format!(
                "{}:{}: not a calibration written by `perllm calibrate`: {e}",
                path.display(),
                e.line()
            ))
        })?;
        if !supported.contains(&(c.version as u64)) {
            return refuse(c.version as u64);
        }
        Ok(c)
    }
}

fn shape_of(p: &super::profile::Point) -> Shape {
    Shape {
        prefill_tokens: p.prefill_tokens as f64,
        prefill_seqs: p.prefill_seqs as f64,
        decode_seqs: p.batch as f64,
        kv_tokens: p.batch as f64 * (p.context as f64 + 1.0),
    }
}

/// Refuse a profile that cannot determine the four parameters; say what to add.
pub fn check_profile(p: &Profile, origin: &str) -> Result<()> {
    let refuse = |what: String| {
        Err(CliError::input(format!(
            "{origin}: cannot determine the model's parameters: {what}"
        )))
    };
    if p.points.len() < 8 {
        return refuse(format!(
            "{} shapes for 8 parameters and held-out points; measure at least 8 (the default grid of `perllm profile` has 63)",
            p.points.len()
        ));
    }
    // Each group of parameters needs two distinct values of one dimension among some shapes.
    // Batch 1 decodes are one-token steps with their own price: two larger batch sizes.
    type Dimension = (fn(&Point) -> bool, fn(&Point) -> u32, &'static str);
    let dimensions: [Dimension; 3] = [
        (
            |x| x.prefill_tokens > 0,
            |x| x.prefill_tokens,
            "compute and per-step overhead need prefills of at least two sizes: add e.g. `--prefill 0,128,512`",
        ),
        (
            |x| x.prefill_tokens == 0 && x.batch > 1,
            |x| x.batch,
            "bandwidth and the per-sequence time need decode-only steps at two batch sizes above 1 at least (a one-sequence decode has its own price): add e.g. `--batch 1,4,16` with 0 in `--prefill`",
        ),
        (
            |x| x.prefill_tokens == 0 && x.batch > 0,
            |x| x.context,
            "the per-KV-token time needs decode-only steps at two contexts at least: add e.g. `--context 64,256`",
        ),
    ];
    for (shapes, value, missing) in dimensions {
        let mut v: Vec<u32> = p.points.iter().filter(|x| shapes(x)).map(value).collect();
        v.sort();
        v.dedup();
        if v.len() < 2 {
            return refuse(missing.into());
        }
    }
    Ok(())
}

/// Fit a profile: (parameters, fit error, held-out error) of the step model asked for, and the
/// held-out error of the other one (for comparison; `None` when the table cannot be fitted).
/// Every fifth shape in (batch, context, prefill) order is held out (a stride that cycles
/// through the prefill sizes of a grid). The table model keeps the smooth fit's effective compute
/// and bandwidth for the `hardware` block.
pub fn fit_profile(p: &Profile, rows: bool) -> (Params, Ape, Ape, Option<Ape>) {
    let d = Dims::of(&p.engine);
    let mut pts = p.points.clone();
    pts.sort_by_key(|x| (x.batch, x.context, x.prefill_tokens));
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (i, x) in pts.iter().enumerate() {
        if i % 5 == 4 {
            test.push(x)
        } else {
            train.push(x)
        }
    }
    let shapes: Vec<Shape> = train.iter().map(|x| shape_of(x)).collect();
    let meas: Vec<f64> = train.iter().map(|x| x.median_ns).collect();
    let smooth = fit::fit_steps(&d, &shapes, &meas);
    let table = super::rows::fit_rows(&smooth, &shapes, &meas);
    let err = |params: &Params, set: &[&super::profile::Point]| {
        let pred: Vec<f64> = set
            .iter()
            .map(|x| fit::step_ns(params, &d, &shape_of(x)))
            .collect();
        let m: Vec<f64> = set.iter().map(|x| x.median_ns).collect();
        fit::ape(&pred, &m)
    };
    match (rows, table) {
        (true, Some(t)) => {
            let other = err(&smooth, &test);
            (t.clone(), err(&t, &train), err(&t, &test), Some(other))
        }
        (_, t) => {
            let other = t.map(|t| err(&t, &test));
            (
                smooth.clone(),
                err(&smooth, &train),
                err(&smooth, &test),
                other,
            )
        }
    }
}

/// Refuse a log that cannot determine the parameters.
pub fn check_log(log: &Log, origin: &str) -> Result<()> {
    let refuse = |what: String| {
        Err(CliError::input(format!(
            "{origin}: cannot determine the model's parameters: {what}"
        )))
    };
    if log.rows.len() < 8 {
        return refuse(format!(
            "{} completed requests for 8 parameters and held-out requests; log at least 8",
            log.rows.len()
        ));
    }
    let distinct = |f: &dyn Fn(&Job) -> u32| {
        let mut v: Vec<u32> = log.rows.iter().map(|r| f(&r.job)).collect();
        v.sort();
        v.dedup();
        v.len()
    };
    if distinct(&|j| j.prompt) < 2 {
        return refuse("every prompt has the same length: compute and per-step overhead need prompts of several lengths".into());
    }
    if distinct(&|j| j.output) < 2 {
        return refuse(
            "every output has the same length: decode needs outputs of several lengths".into(),
        );
    }
    let overlap = log
        .rows
        .windows(2)
        .any(|w| w[1].job.arrival_ns < w[0].job.arrival_ns + w[0].e2e_ns);
    if !overlap {
        return refuse("no two requests overlap, so batch interference is not observed: add a run at a higher arrival rate".into());
    }
    Ok(())
}

/// Fit a request log by simulating it (every fourth request held out of the loss).
pub fn fit_log(log: &Log, cfg: &EngineConfig) -> Result<(Params, Ape, Ape)> {
    let d = Dims::of(cfg);
    let jobs: Vec<Job> = log.rows.iter().map(|r| r.job).collect();
    // Start: compute from prompts over first-token times, bandwidth from per-token decode times.
    let mut f: Vec<f64> = log
        .rows
        .iter()
        .map(|r| 2.0 * d.params * r.job.prompt as f64 / (r.ttft_ns as f64 * 1e-9))
        .collect();
    let mut b: Vec<f64> = log
        .rows
        .iter()
        .filter(|r| r.job.output > 1)
        .map(|r| {
            d.weight_bytes / ((r.e2e_ns - r.ttft_ns) as f64 * 1e-9 / (r.job.output - 1) as f64)
        })
        .collect();
    let b0 = if b.is_empty() {
        1e10
    } else {
        median(&mut b).max(1e3)
    };
    let x0 = fit::to_x(&Params {
        overhead_ns: 1e5,
        flops: median(&mut f).max(1e6),
        bandwidth: b0,
        decode_seq_ns: 1e5,
        prefill_seq_ns: 1e5,
        prefill_step_ns: 1e5,
        kv_token_ns: 100.0,
        // A one-token step: one read of the weights.
        one_token_ns: d.weight_bytes / b0 * 1e9,
        rows_ns: Vec::new(),
    });
    let mut failure = None;
    let loss = |x: &[f64; fit::N_PARAMS]| -> f64 {
        let p = fit::from_x(x);
        match simulate(&p, cfg, &jobs) {
            Ok(s) => log
                .rows
                .iter()
                .zip(&s.latency)
                .enumerate()
                .filter(|(i, _)| i % 4 != 3)
                .map(|(_, (r, &(t, e)))| {
                    (t.max(1) as f64 / r.ttft_ns as f64).ln().powi(2)
                        + (e.max(1) as f64 / r.e2e_ns as f64).ln().powi(2)
                })
                .sum(),
            Err(e) => {
                failure.get_or_insert(e);
                f64::INFINITY
            }
        }
    };
    let (x, _) = fit::nelder_mead(loss, x0, 0.5, 700);
    if let Some(e) = failure.take() {
        return Err(e);
    }
    let params = fit::from_x(&x);
    let s = simulate(&params, cfg, &jobs)?;
    let (mut pt, mut mt, mut ph, mut mh) = (vec![], vec![], vec![], vec![]);
    for (i, (r, &(t, e))) in log.rows.iter().zip(&s.latency).enumerate() {
        let (p, m) = if i % 4 == 3 {
            (&mut ph, &mut mh)
        } else {
            (&mut pt, &mut mt)
        };
        p.extend([t as f64, e as f64]);
        m.extend([r.ttft_ns as f64, r.e2e_ns as f64]);
    }
    Ok((params, fit::ape(&pt, &mt), fit::ape(&ph, &mh)))
}

/// Run `perllm calibrate`.
pub fn calibrate(a: CalibrateArgs, term: Term) -> Result<()> {
    let (cal, unit, other) = if let Some(path) = &a.profile {
        let origin = path.display().to_string();
        let p = read_profile(path)?;
        check_profile(&p, &origin)?;
        let (params, f, h, other) = fit_profile(&p, a.step_model == "rows");
        (
            make("profile", &origin, p.engine, p.clock, params, f, h),
            "step times",
            other.map(|o| {
                format!(
                    "  ({} step model, for comparison: held-out median {:.1}%, max {:.1}%)\n",
                    if a.step_model == "rows" {
                        "smooth"
                    } else {
                        "rows-table"
                    },
                    o.median,
                    o.max
                )
            }),
        )
    } else {
        let path = a.log.as_ref().expect("clap requires --profile or --log");
        let origin = path.display().to_string();
        let log = read_log(path)?;
        check_log(&log, &origin)?;
        let cfg = match &log.engine {
            Some(c) => c.clone(),
            None => a.engine.config()?,
        };
        let (params, f, h) = fit_log(&log, &cfg)?;
        (
            make("log", &origin, cfg, log.clock, params, f, h),
            "TTFT and end-to-end latencies",
            None,
        )
    };
    let blocks = hardware_blocks(&cal.params(), &cal.engine, "cpu", "engine");
    let mut s = format!(
        "calibrated on {} ({} {}, {} clock):\n  step overhead     {:.1} µs\n  compute           {:.2} GFLOP/s (effective)\n  memory bandwidth  {:.2} GB/s (effective)\n  per decoding seq  {:.1} µs\n  per prefilling seq {:.1} µs\n  per step with prompts {:.1} µs\n  per KV token      {:.3} µs\n  one-token step    {}\n  fit error         median {:.1}%, max {:.1}% ({} points)\n  held-out error    median {:.1}%, max {:.1}% ({} points, not fitted)\n",
        cal.file,
        cal.source,
        unit,
        cal.clock.as_str(),
        cal.overhead_ns / 1e3,
        cal.flops / 1e9,
        cal.bandwidth / 1e9,
        cal.decode_seq_ns / 1e3,
        cal.prefill_seq_ns / 1e3,
        cal.prefill_step_ns / 1e3,
        cal.kv_token_ns / 1e3,
        if cal.one_token_step_ns > 0.0 {
            format!("{:.1} µs", cal.one_token_step_ns / 1e3)
        } else if !cal.rows_ns.is_empty() {
            "- (the table's one-row price, below)".into()
        } else {
            "- (no one-token steps measured: priced like any step)".into()
        },
        cal.fit.median_pct,
        cal.fit.max_pct,
        cal.fit.n,
        cal.held_out.median_pct,
        cal.held_out.max_pct,
        cal.held_out.n
    );
    if !cal.rows_ns.is_empty() {
        // The table replaces the overhead, compute, bandwidth and one-token lines above in the
        // step price; say so next to it.
        s.push_str("  step's matrix work by rows (replaces the overhead, compute, bandwidth and one-token price in the step price):\n");
        for (r, v) in &cal.rows_ns {
            s.push_str(&format!("    {r:>5} rows  {:.3} ms\n", v / 1e6));
        }
    }
    if let Some(o) = other {
        s.push_str(&o);
    }
    s.push('\n');
    s.push_str(&blocks);
    let mut out = Outputs::new();
    if let Some(p) = &a.out {
        out.open(p)?
            .write_text(&(serde_json::to_string_pretty(&cal).expect("serialisable") + "\n"))?;
    }
    if let Some(p) = &a.hardware {
        out.open(p)?.write_text(&blocks)?;
    }
    let input = a.profile.as_ref().or(a.log.as_ref()).expect("one input");
    out.refuse_inputs(&crate::inputs::one(input, "the input"))?;
    out.report_created(&term);
    out.commit()?;
    crate::term::print_stdout(&s)
}

fn make(
    source: &str,
    file: &str,
    engine: EngineConfig,
    clock: super::Clock,
    p: Params,
    f: Ape,
    h: Ape,
) -> Calibration {
    Calibration {
        version: CALIBRATION_VERSION,
        source: source.into(),
        file: file.into(),
        engine,
        clock,
        overhead_ns: p.overhead_ns,
        flops: p.flops,
        bandwidth: p.bandwidth,
        decode_seq_ns: p.decode_seq_ns,
        prefill_seq_ns: p.prefill_seq_ns,
        prefill_step_ns: p.prefill_step_ns,
        kv_token_ns: p.kv_token_ns,
        one_token_step_ns: p.one_token_ns,
        rows_ns: p.rows_ns,
        fit: f.into(),
        held_out: h.into(),
    }
}
