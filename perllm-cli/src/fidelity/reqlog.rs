//! Request logs: one row per request with its arrival, sizes, first-token and completion times.
//!
//! Two formats are read, told apart by their header:
//! - perllm's request log (`perllm-requests 1`, written by `perllm validate`):
//!   `request,arrival_s,prompt_tokens,output_tokens,first_token_s,completion_s`, times in seconds
//!   from the start of the run; `#` lines are comments (`# engine {..}` names the engine,
//!   `# clock cpu` says the times are on the engine's CPU-time clock, `perllm validate` on a
//!   calibration profiled with `--clock cpu`; without it, wall time);
//! - the simulator's per-request CSV (`perllm run --requests`, docs/report-schema.md): columns
//!   found by name (`arrival_s`, `prompt_tokens`, `output_tokens`, `ttft_s`, `latency_s`,
//!   `status`); rejected requests are skipped.

use super::simulate::Job;
use crate::error::{CliError, Result};
use perllm_engine::EngineConfig;
use std::fmt::Write as _;
use std::path::Path;

/// A served request as logged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Logged {
    /// The request.
    pub job: Job,
    /// Time to first token, ns.
    pub ttft_ns: u64,
    /// End-to-end latency, ns.
    pub e2e_ns: u64,
}

/// A request log.
#[derive(Clone, Debug)]
pub struct Log {
    /// The engine that served it, if the log says.
    pub engine: Option<EngineConfig>,
    /// Requests sorted by arrival.
    pub rows: Vec<Logged>,
    /// The clock of its times.
    pub clock: super::Clock,
}

/// Header of perllm's request log.
pub const HEADER: &str = "request,arrival_s,prompt_tokens,output_tokens,first_token_s,completion_s";

/// Write a request log.
pub fn write_log(cfg: &EngineConfig, clock: super::Clock, rows: &[Logged]) -> String {
    let mut s = String::from("# perllm-requests 1\n");
    let _ = writeln!(
        s,
        "# engine {}",
        serde_json::to_string(cfg).expect("serialisable")
    );
    if clock != super::Clock::Wall {
        let _ = writeln!(s, "# clock {}", clock.as_str());
    }
    s.push_str(HEADER);
    s.push('\n');
    for (i, r) in rows.iter().enumerate() {
        let a = r.job.arrival_ns as f64 * 1e-9;
        let _ = writeln!(
            s,
            "{i},{a:.6},{},{},{:.6},{:.6}",
            r.job.prompt,
            r.job.output,
            a + r.ttft_ns as f64 * 1e-9,
            a + r.e2e_ns as f64 * 1e-9
        );
    }
    s
}

/// Read a request log; a malformed row names the file and line.
pub fn read_log(path: &Path) -> Result<Log> {
    let text = super::read_text(path, "request log")?;
    parse_log(&path.display().to_string(), &text)
}

/// Parse a request log's text; `origin` names it in errors.
pub fn parse_log(origin: &str, text: &str) -> Result<Log> {
    let bad = |line: usize, msg: String| CliError::input(format!("{origin}:{line}: {msg}"));
    let mut engine = None;
    let mut clock = super::Clock::Wall;
    let mut cols: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(c) = line.strip_prefix('#') {
            if let Some(j) = c.trim().strip_prefix("engine") {
                engine = Some(
                    serde_json::from_str(j.trim())
                        .map_err(|e| bad(n, format!("the engine line is not valid: {e}")))?,
                );
            } else if let Some(w) = c.trim().strip_prefix("clock") {
                clock = super::Clock::parse(w).map_err(|m| bad(n, m))?;
            }
            continue;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let Some(h) = &cols else {
            let h: Vec<String> = cells.iter().map(|c| c.to_ascii_lowercase()).collect();
            let has = |c: &str| h.iter().any(|x| x == c);
            let ours = has("first_token_s") && has("completion_s");
            let sim = has("ttft_s") && has("latency_s");
            if !(has("arrival_s") && has("prompt_tokens") && has("output_tokens") && (ours || sim))
            {
                return Err(bad(
                    n,
                    format!(
                        "not a request log: the header needs `{HEADER}` (or the columns of `perllm run --requests`), got `{line}`"
                    ),
                ));
            }
            cols = Some(h);
            continue;
        };
        if cells.len() != h.len() {
            return Err(bad(
                n,
                format!("{} cells, the header has {}", cells.len(), h.len()),
            ));
        }
        let get = |name: &str| h.iter().position(|x| x == name).map(|k| cells[k]);
        if get("status").is_some_and(|s| s != "completed") {
            continue;
        }
        let num = |name: &str| -> Result<f64> {
            let v = get(name).unwrap_or("");
            match v.parse::<f64>() {
                Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
                _ => Err(bad(
                    n,
                    format!("{name}: `{v}` is not a non-negative number"),
                )),
            }
        };
        let int = |name: &str| -> Result<u32> {
            let v = get(name).unwrap_or("");
            match v.parse::<u32>() {
                Ok(x) if x > 0 => Ok(x),
                _ => Err(bad(n, format!("{name}: `{v}` is not a positive integer"))),
            }
        };
        let arrival = num("arrival_s")?;
        let (ttft, e2e) = if get("first_token_s").is_some() {
            (
                num("first_token_s")? - arrival,
                num("completion_s")? - arrival,
            )
        } else {
            (num("ttft_s")?, num("latency_s")?)
        };
        if ttft <= 0.0 || e2e < ttft {
            return Err(bad(
                n,
                format!(
                    "the first token ({ttft:.6} s after arrival) must come after the arrival and before the completion ({e2e:.6} s)"
                ),
            ));
        }
        rows.push(Logged {
            job: Job {
                arrival_ns: (arrival * 1e9).round() as u64,
                prompt: int("prompt_tokens")?,
                output: int("output_tokens")?,
            },
            ttft_ns: (ttft * 1e9).round() as u64,
            e2e_ns: (e2e * 1e9).round() as u64,
        });
    }
    if cols.is_none() || rows.is_empty() {
        return Err(CliError::input(format!(
            "{origin}: the request log has no completed requests"
        )));
    }
    rows.sort_by_key(|r| r.job.arrival_ns);
    Ok(Log {
        engine,
        rows,
        clock,
    })
}
