//! `perllm profile`: time the real engine's forward pass over a grid of step shapes, and the
//! profile file format (`perllm-profile 2`) that `calibrate` reads.

use super::{EngineArgs, build_engine, quantile};
use crate::error::{CliError, Result};
use crate::output::Outputs;
use crate::term::Term;
use clap::Args;
use perllm_engine::{EngineConfig, Machine};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Version written on a profile's first line (2: the `prefill_seqs` column, the sequences a
/// shape's prompt tokens are split over; version 1 files, one prefilling sequence per shape
/// with prompt tokens, still load).
pub const PROFILE_VERSION: u32 = 2;

/// `perllm profile`.
#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// The engine.
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Decoding sequences per step (0: a prefill alone), comma-separated.
    #[arg(
        long,
        value_name = "N,..",
        default_value = "0,1,2,4,8,15",
        value_delimiter = ','
    )]
    pub batch: Vec<u32>,
    /// Tokens already in each decoding sequence's KV cache, comma-separated.
    #[arg(
        long,
        value_name = "N,..",
        default_value = "64,256,768",
        value_delimiter = ','
    )]
    pub context: Vec<u32>,
    /// Prompt tokens prefilled in the step by one more sequence (0: decode only), comma-separated.
    #[arg(
        long,
        value_name = "N,..",
        default_value = "0,32,128,512",
        value_delimiter = ','
    )]
    pub prefill: Vec<u32>,
    /// Sequences the prompt tokens of a shape are split over (as evenly as possible),
    /// comma-separated: several values measure steps where several prompts join at once, which
    /// tells a step's prompt cost from its per-prompt cost.
    #[arg(long, value_name = "N,..", default_value = "1", value_delimiter = ',')]
    pub prefill_seqs: Vec<u32>,
    /// Timed repeats of every shape (after one untimed warm-up); the grid is swept once per
    /// repeat so slow drifts of the machine's load spread over all shapes.
    #[arg(long, default_value_t = 5)]
    pub repeats: u32,
    /// Untimed runs of a shape right before each of its timed runs (0: the timed run follows
    /// the grid's previous, different shape). Tried in session 8 to bring the profile's decode
    /// steps closer to the serving engine's (docs/fidelity.md): it did not, so it is off.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub warm_runs: u32,
    /// Time each step by wall time or by the process's CPU time (`cpu`: immune to other
    /// processes' load; `calibrate` and `validate` then use the same clock).
    #[arg(long, value_enum, default_value_t = super::Clock::Wall)]
    pub clock: super::Clock,
    /// The profile file to write (CSV, `perllm-profile 2`).
    #[arg(short, long, value_name = "FILE.csv")]
    pub out: PathBuf,
    /// Also write a throughput table for the `profile-table` cost model.
    #[arg(long, value_name = "FILE.csv")]
    pub table: Option<PathBuf>,
    /// Model name in the `--table` file.
    #[arg(long, default_value = "engine")]
    pub model_name: String,
    /// Hardware name in the `--table` file.
    #[arg(long, default_value = "cpu")]
    pub hardware_name: String,
}

/// One measured shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Decoding sequences.
    pub batch: u32,
    /// Tokens in each decoding sequence's cache before the step.
    pub context: u32,
    /// Prompt tokens of the prefilling sequences (0: none).
    pub prefill_tokens: u32,
    /// Sequences those tokens are split over (0 without prompt tokens).
    pub prefill_seqs: u32,
    /// Timed repeats.
    pub repeats: u32,
    /// Median step time, ns.
    pub median_ns: f64,
    /// 10th percentile, ns.
    pub p10_ns: f64,
    /// 90th percentile, ns.
    pub p90_ns: f64,
}

/// A profile: the engine it measured, the machine, the points.
#[derive(Clone, Debug)]
pub struct Profile {
    /// The engine configuration.
    pub engine: EngineConfig,
    /// Measured shapes.
    pub points: Vec<Point>,
    /// The clock the step times were measured by (`# clock` line; absent: wall).
    pub clock: super::Clock,
}

/// The grid's shapes: (batch, context, prefill tokens, prefilling sequences); a prefill alone
/// has context 0; a split needs a token per sequence at least.
pub fn shapes(a: &ProfileArgs) -> Vec<(u32, u32, u32, u32)> {
    let mut v = Vec::new();
    let splits = |p: u32| -> Vec<u32> {
        if p == 0 {
            return vec![0];
        }
        a.prefill_seqs
            .iter()
            .map(|&n| n.max(1))
            .filter(|&n| n <= p)
            .collect()
    };
    for &b in &a.batch {
        if b == 0 {
            for &p in a.prefill.iter().filter(|&&p| p > 0) {
                for n in splits(p) {
                    v.push((0, 0, p, n));
                }
            }
            continue;
        }
        for &c in &a.context {
            for &p in &a.prefill {
                for n in splits(p) {
                    v.push((b, c, p, n));
                }
            }
        }
    }
    v.sort();
    v.dedup();
    v
}

/// Run `perllm profile`.
pub fn profile(a: ProfileArgs, term: Term) -> Result<()> {
    if a.repeats == 0 {
        return Err(CliError::input("--repeats must be at least 1"));
    }
    let cfg = a.engine.config()?;
    // A configuration that cannot work is reported first, naming its field.
    cfg.validate(perllm_engine::available_memory())
        .map_err(|e| CliError::input(e.to_string()))?;
    let grid = shapes(&a);
    if grid.is_empty() {
        return Err(CliError::input(
            "the grid is empty: give --batch values above 0 or --prefill values above 0",
        ));
    }
    for &(b, c, p, n) in &grid {
        let seqs = b + n;
        if seqs > cfg.max_batch {
            return Err(CliError::input(format!(
                "the shape batch {b} + {n} prefilling sequence(s) needs {seqs} sequences, more than --max-batch {}",
                cfg.max_batch
            )));
        }
        if c + 1 > cfg.max_seq_len || p > cfg.max_seq_len {
            return Err(CliError::input(format!(
                "the shape context {c} / prefill {p} does not fit --max-seq-len {}",
                cfg.max_seq_len
            )));
        }
    }
    let machine = Machine::detect();
    let mut engine = build_engine(cfg.clone())?;
    term.info(&format!(
        "profiling {} shapes x {} repeats on {} ({} CPUs, load {}), engine {} parameters, {} threads",
        grid.len(),
        a.repeats,
        machine.cpu_model,
        machine.cpus,
        machine
            .load_avg_1m
            .map(|l| format!("{l:.2}"))
            .unwrap_or_else(|| "unknown".into()),
        cfg.params(),
        cfg.threads
    ));
    let pb = term.progress(grid.len() as u64 * (a.repeats as u64 + 1), "profile");
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); grid.len()];
    for r in 0..=a.repeats {
        for (i, &(b, c, p, n)) in grid.iter().enumerate() {
            for _ in 0..if r > 0 { a.warm_runs } else { 0 } {
                engine
                    .probe(b, c, p, n)
                    .map_err(|e| CliError::run(e.to_string()))?;
            }
            let d = engine
                .probe(b, c, p, n)
                .map_err(|e| CliError::run(e.to_string()))?;
            if r > 0 {
                let t = match a.clock {
                    super::Clock::Wall => d.wall,
                    super::Clock::Cpu => d.cpu,
                };
                times[i].push(t.as_nanos().max(1) as f64);
            }
            pb.inc(1);
        }
    }
    pb.finish_and_clear();
    let points: Vec<Point> = grid
        .iter()
        .zip(times.iter_mut())
        .map(
            |(&(batch, context, prefill_tokens, prefill_seqs), t)| Point {
                batch,
                context,
                prefill_tokens,
                prefill_seqs,
                repeats: t.len() as u32,
                median_ns: quantile(t, 0.5),
                p10_ns: quantile(t, 0.1),
                p90_ns: quantile(t, 0.9),
            },
        )
        .collect();
    let text = write_profile(&cfg, &machine, a.clock, &points);
    let mut out = Outputs::new();
    out.open(&a.out)?.write_text(&text)?;
    if let Some(t) = &a.table {
        out.open(t)?
            .write_text(&throughput_table(&points, &a.model_name, &a.hardware_name)?)?;
    }
    out.report_created(&term);
    let written = out.commit()?;
    for w in written {
        term.info(&format!("wrote {}", w.display()));
    }
    Ok(())
}

/// The profile file's text.
pub fn write_profile(
    cfg: &EngineConfig,
    machine: &Machine,
    clock: super::Clock,
    points: &[Point],
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# perllm-profile {PROFILE_VERSION}");
    let _ = writeln!(
        s,
        "# machine {}",
        serde_json::to_string(machine).expect("serialisable")
    );
    let _ = writeln!(
        s,
        "# engine {}",
        serde_json::to_string(cfg).expect("serialisable")
    );
    let _ = writeln!(
        s,
        "# model params={} compute_params={} weight_bytes={} kv_bytes_per_token={}",
        cfg.params(),
        cfg.compute_params(),
        cfg.weight_bytes(),
        cfg.kv_bytes_per_token()
    );
    let _ = writeln!(s, "# clock {}", clock.as_str());
    s.push_str("batch,context,prefill_tokens,prefill_seqs,repeats,median_ns,p10_ns,p90_ns\n");
    for p in points {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{:.0},{:.0},{:.0}",
            p.batch,
            p.context,
            p.prefill_tokens,
            p.prefill_seqs,
            p.repeats,
            p.median_ns,
            p.p10_ns,
            p.p90_ns
        );
    }
    s
}

/// A `profile-table` cost-model CSV from a profile: decode throughput per batch size at the
/// middle measured context, prefill throughput of the largest measured prompt alone.
pub fn throughput_table(points: &[Point], model: &str, hardware: &str) -> Result<String> {
    let pre = points
        .iter()
        .filter(|p| p.batch == 0 && p.prefill_tokens > 0 && p.prefill_seqs == 1)
        .max_by_key(|p| p.prefill_tokens)
        .ok_or_else(|| {
            CliError::input("--table needs a prefill measured alone: include 0 in --batch")
        })?;
    let prefill_tps = pre.prefill_tokens as f64 * 1e9 / pre.median_ns;
    let mut ctxs: Vec<u32> = points
        .iter()
        .filter(|p| p.batch > 0 && p.prefill_tokens == 0)
        .map(|p| p.context)
        .collect();
    ctxs.sort();
    ctxs.dedup();
    let Some(&mid) = ctxs.get(ctxs.len() / 2) else {
        return Err(CliError::input(
            "--table needs decode-only shapes: include 0 in --prefill",
        ));
    };
    let mut s = format!(
        "# from a perllm-profile: decode at context {mid}, prefill of {} tokens alone\nmodel,hardware,batch,prefill_tokens_per_s,decode_tokens_per_s\n",
        pre.prefill_tokens
    );
    for p in points
        .iter()
        .filter(|p| p.batch > 0 && p.prefill_tokens == 0 && p.context == mid)
    {
        let _ = writeln!(
            s,
            "{model},{hardware},{},{:.1},{:.1}",
            p.batch,
            prefill_tps,
            p.batch as f64 * 1e9 / p.median_ns
        );
    }
    Ok(s)
}

/// Read a profile file; a malformed line is an error naming the file and line.
pub fn read_profile(path: &Path) -> Result<Profile> {
    let text = super::read_text(path, "profile")?;
    parse_profile(&path.display().to_string(), &text)
}

/// Parse a profile's text; `origin` names it in errors.
pub fn parse_profile(origin: &str, text: &str) -> Result<Profile> {
    let bad = |line: usize, msg: String| CliError::input(format!("{origin}:{line}: {msg}"));
    let mut engine: Option<EngineConfig> = None;
    let mut header: Option<Vec<String>> = None;
    let mut points = Vec::new();
    let mut version: Option<u32> = None;
    let mut clock = super::Clock::Wall;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(c) = line.strip_prefix('#') {
            let c = c.trim();
            if let Some(v) = c.strip_prefix("perllm-profile") {
                let v: u32 = v
                    .trim()
                    .parse()
                    .map_err(|_| bad(n, format!("bad version line `{line}`")))?;
                if !(1..=PROFILE_VERSION).contains(&v) {
                    return Err(bad(
                        n,
                        format!(
                            "profile version {v}; this perllm reads versions 1 to {PROFILE_VERSION}"
                        ),
                    ));
                }
                version = Some(v);
            } else if let Some(j) = c.strip_prefix("engine") {
                engine = Some(
                    serde_json::from_str(j.trim())
                        .map_err(|e| bad(n, format!("the engine line is not valid: {e}")))?,
                );
            } else if let Some(w) = c.strip_prefix("clock") {
                clock = super::Clock::parse(w).map_err(|m| bad(n, m))?;
            }
            continue;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let Some(h) = &header else {
            let mut want = vec!["batch", "context", "prefill_tokens"];
            if version.unwrap_or(PROFILE_VERSION) >= 2 {
                want.push("prefill_seqs");
            }
            want.extend(["repeats", "median_ns", "p10_ns", "p90_ns"]);
            if cells != want {
                return Err(bad(
                    n,
                    format!("expected the header `{}`, got `{line}`", want.join(",")),
                ));
            }
            header = Some(cells.iter().map(|s| s.to_string()).collect());
            continue;
        };
        if cells.len() != h.len() {
            return Err(bad(
                n,
                format!("{} cells, the header has {}", cells.len(), h.len()),
            ));
        }
        let int = |k: usize| -> Result<u32> {
            cells[k].parse().map_err(|_| {
                bad(
                    n,
                    format!("{}: `{}` is not a non-negative integer", h[k], cells[k]),
                )
            })
        };
        let num = |k: usize| -> Result<f64> {
            match cells[k].parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
                _ => Err(bad(
                    n,
                    format!("{}: `{}` is not a positive number", h[k], cells[k]),
                )),
            }
        };
        // Version 1 has no prefill_seqs column: one prefilling sequence with prompt tokens.
        let k = (h.len() == 8) as usize;
        let prefill_tokens = int(2)?;
        let prefill_seqs = if k == 1 {
            int(3)?
        } else {
            (prefill_tokens > 0) as u32
        };
        let p = Point {
            batch: int(0)?,
            context: int(1)?,
            prefill_tokens,
            prefill_seqs,
            repeats: int(3 + k)?,
            median_ns: num(4 + k)?,
            p10_ns: num(5 + k)?,
            p90_ns: num(6 + k)?,
        };
        if (prefill_tokens > 0) != (prefill_seqs > 0) || prefill_seqs > prefill_tokens {
            return Err(bad(
                n,
                format!(
                    "{prefill_seqs} prefilling sequences for {prefill_tokens} prompt tokens (each sequence needs one at least; none without prompt tokens)"
                ),
            ));
        }
        if p.batch == 0 && p.prefill_tokens == 0 {
            return Err(bad(
                n,
                "an empty shape (batch 0 and prefill_tokens 0)".into(),
            ));
        }
        points.push(p);
    }
    if version.is_none() {
        return Err(CliError::input(format!(
            "{origin}: not a perllm profile (no `# perllm-profile {PROFILE_VERSION}` line); write one with `perllm profile`"
        )));
    }
    let engine = engine.ok_or_else(|| {
        CliError::input(format!(
            "{origin}: no `# engine {{...}}` line: the profile does not say which engine it measured"
        ))
    })?;
    if points.is_empty() {
        return Err(CliError::input(format!(
            "{origin}: the profile has no rows"
        )));
    }
    Ok(Profile {
        engine,
        points,
        clock,
    })
}
