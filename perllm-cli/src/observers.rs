//! Observers the CLI attaches to a run: the share timeline and latency distribution recorded in
//! result files, the streaming decision log and per-request CSV, and a progress bar.

use hdrhistogram::Histogram;
use perllm_core::policy::Decision;
use perllm_core::request::{Outcome, RejectReason, Request};
use perllm_core::spec::Nanos;
use perllm_core::{Observer, World};
use serde::{Deserialize, Serialize};
use std::io::Write;

/// Number of time buckets of the share timeline over the arrival window.
pub const TIMELINE_BUCKETS: u64 = 24;

/// Assignments per server in consecutive time buckets (by decision time).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// Width of a bucket, seconds.
    pub bucket_s: f64,
    /// Server names, the inner order of `assigned`.
    pub servers: Vec<String>,
    /// `assigned[b][s]`: requests assigned to server `s` by decisions in bucket `b`.
    pub assigned: Vec<Vec<u64>>,
}

/// Records [`Timeline`].
pub struct TimelineObserver {
    width_ns: Nanos,
    servers: usize,
    counts: Vec<Vec<u64>>,
}

impl TimelineObserver {
    /// A timeline of `world`'s servers with [`TIMELINE_BUCKETS`] buckets over its duration.
    pub fn new(world: &World) -> Self {
        TimelineObserver {
            width_ns: (world.scenario.duration_ns / TIMELINE_BUCKETS).max(1_000_000),
            servers: world.servers.len(),
            counts: Vec::new(),
        }
    }

    /// The recorded timeline.
    pub fn finish(self, world: &World) -> Timeline {
        Timeline {
            bucket_s: self.width_ns as f64 / 1e9,
            servers: world.servers.iter().map(|s| s.name.clone()).collect(),
            assigned: self.counts,
        }
    }
}

impl Observer for TimelineObserver {
    fn on_decision(
        &mut self,
        now: Nanos,
        _slot: u64,
        _r: &Request,
        d: Decision,
        _n: Option<&serde_json::Value>,
    ) {
        if let Decision::Assign(s) = d {
            let b = (now / self.width_ns) as usize;
            if self.counts.len() <= b {
                self.counts.resize(b + 1, vec![0; self.servers]);
            }
            self.counts[b][s as usize] += 1;
        }
    }
}

/// Number of points of the recorded latency CDF (quantiles 0, 0.01, ..., 1).
pub const CDF_POINTS: usize = 101;

/// Records the distribution of processing times D of completed requests.
pub struct LatencyObserver {
    hist: Histogram<u64>,
}

impl Default for LatencyObserver {
    fn default() -> Self {
        LatencyObserver {
            // Microseconds, 1 us to about 11.6 days, 3 significant figures.
            hist: Histogram::new_with_bounds(1, 1_000_000_000_000, 3).expect("valid bounds"),
        }
    }
}

impl LatencyObserver {
    /// Latency (s) at quantiles 0, 0.01, ..., 1; empty if nothing completed.
    pub fn quantiles(&self) -> Vec<f64> {
        if self.hist.is_empty() {
            return Vec::new();
        }
        (0..CDF_POINTS)
            .map(|i| {
                let q = i as f64 / (CDF_POINTS - 1) as f64;
                self.hist.value_at_quantile(q) as f64 / 1e6
            })
            .collect()
    }
}

impl Observer for LatencyObserver {
    fn on_completion(&mut self, o: &Outcome) {
        self.hist.saturating_record((o.total_ns / 1_000).max(1));
    }
}

fn secs(ns: Nanos) -> f64 {
    ns as f64 / 1e9
}

/// Streams the decisions to a writer as JSON Lines: by default a request's first deferral and its
/// final decision (assign or reject, with `deferred_slots`, the number of slots it was deferred);
/// with `every_defer`, one line per deferral too. A deferred request is decided again every slot,
/// so logging each deferral grows with requests x slots (an 800 KB trace wrote a 3.2 GB log);
/// folded, the log has at most two lines per request. The log stops at `limit` bytes with a
/// `truncated` line.
pub struct DecisionLog<'w> {
    out: Box<dyn Write + 'w>,
    world: &'w World,
    /// The first write error, reported after the run.
    pub error: Option<std::io::Error>,
    line: Vec<u8>,
    every_defer: bool,
    limit: u64,
    /// Deferrals so far of each request not yet finally decided.
    deferred: std::collections::HashMap<u64, u64>,
    /// What was written and left out.
    pub stats: LogStats,
}

/// The size of a decision log, for the summary after a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Lines written (the `truncated` line included).
    pub lines: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Deferrals not written as lines of their own (counted in `deferred_slots`).
    pub folded: u64,
    /// Whether the log reached its limit.
    pub truncated: bool,
}

impl<'w> DecisionLog<'w> {
    /// A log of `world`'s decisions into `out`: every deferral if `every_defer`, at most `limit`
    /// bytes.
    pub fn new(world: &'w World, out: Box<dyn Write + 'w>, every_defer: bool, limit: u64) -> Self {
        DecisionLog {
            out,
            world,
            error: None,
            line: Vec::with_capacity(512),
            every_defer,
            limit,
            deferred: std::collections::HashMap::new(),
            stats: LogStats::default(),
        }
    }

    /// Flush; the size of the log, or its first error.
    pub fn finish(mut self) -> std::io::Result<LogStats> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()?;
        Ok(self.stats)
    }

    /// Write `self.line` unless it would pass the limit; then write the `truncated` line once.
    fn emit(&mut self) {
        if self.stats.truncated {
            return;
        }
        let n = self.line.len() as u64;
        if self.stats.bytes.saturating_add(n) > self.limit {
            self.stats.truncated = true;
            let end = serde_json::json!({
                "truncated": true,
                "limit_bytes": self.limit,
                "lines_before": self.stats.lines,
                "reason": "the decision log reached its size limit (--decisions-limit); \
                           later decisions are not logged",
            });
            self.line.clear();
            serde_json::to_writer(&mut self.line, &end).expect("JSON values serialise");
            self.line.push(b'\n');
        }
        match self.out.write_all(&self.line) {
            Ok(()) => {
                self.stats.lines += 1;
                self.stats.bytes += self.line.len() as u64;
            }
            Err(e) => self.error = Some(e),
        }
    }
}

impl Observer for DecisionLog<'_> {
    fn wants_notes(&self) -> bool {
        true
    }
    fn on_decision(
        &mut self,
        now: Nanos,
        slot: u64,
        r: &Request,
        d: Decision,
        note: Option<&serde_json::Value>,
    ) {
        if self.error.is_some() || self.stats.truncated {
            return;
        }
        let deferred_slots = if matches!(d, Decision::Defer) {
            let n = self.deferred.entry(r.id).or_insert(0);
            *n += 1;
            if *n > 1 && !self.every_defer {
                self.stats.folded += 1;
                return;
            }
            None
        } else {
            Some(self.deferred.remove(&r.id).unwrap_or(0))
        };
        let w = self.world;
        let (action, server) = match d {
            Decision::Assign(s) => ("assign", Some(w.servers[s as usize].name.as_str())),
            Decision::Reject => ("reject", None),
            Decision::Defer => ("defer", None),
        };
        let v = serde_json::json!({
            "slot": slot,
            "time_s": secs(now),
            "request": r.id,
            "arrival_s": secs(r.arrival_ns),
            "model": w.models[r.model as usize].name,
            "slo": w.slos[r.slo as usize].name,
            "prompt_tokens": r.prompt_tokens,
            "output_tokens": r.output_tokens,
            "input_bytes": r.input_bytes,
            "decision": action,
            "server": server,
            "deferred_slots": deferred_slots,
            "note": note,
        });
        self.line.clear();
        serde_json::to_writer(&mut self.line, &v).expect("JSON values serialise");
        self.line.push(b'\n');
        self.emit();
    }
}

pub use perllm_core::REQUEST_COLUMNS;

/// Streams one CSV row per request when it ends (completion or rejection), in that order.
pub struct RequestCsv<'w> {
    out: csv::Writer<Box<dyn Write + 'w>>,
    world: &'w World,
    /// The first write error, reported after the run.
    pub error: Option<csv::Error>,
}

impl<'w> RequestCsv<'w> {
    /// A per-request CSV of `world`'s requests into `out` (the header is written at once).
    pub fn new(world: &'w World, out: Box<dyn Write + 'w>) -> Self {
        let mut out = csv::Writer::from_writer(out);
        let error = out.write_record(REQUEST_COLUMNS).err();
        RequestCsv { out, world, error }
    }

    /// Flush; the first error of the whole file, if any.
    pub fn finish(mut self) -> std::result::Result<(), csv::Error> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush().map_err(csv::Error::from)
    }

    fn write(&mut self, rec: &[String]) {
        if self.error.is_none()
            && let Err(e) = self.out.write_record(rec)
        {
            self.error = Some(e);
        }
    }
}

impl Observer for RequestCsv<'_> {
    fn on_completion(&mut self, o: &Outcome) {
        let w = self.world;
        let r = &o.request;
        let s = &w.servers[o.server as usize];
        let mut rec = request_cells(w, r, "completed", "");
        rec.extend([
            s.name.clone(),
            s.tier.as_str().into(),
            secs(o.decided_ns).to_string(),
            secs(o.upload_ns).to_string(),
            secs(o.queue_ns).to_string(),
            secs(o.prefill_ns).to_string(),
            secs(o.decode_ns).to_string(),
            secs(o.download_ns).to_string(),
            secs(o.ttft_ns).to_string(),
            secs(o.total_ns).to_string(),
            secs(o.deadline_ns).to_string(),
            o.met.to_string(),
            o.energy.transmission.to_string(),
            o.energy.inference.to_string(),
            secs(r.arrival_ns + o.total_ns).to_string(),
            "simulated".into(),
        ]);
        self.write(&rec);
    }

    fn on_rejection(&mut self, now: Nanos, r: &Request, reason: RejectReason) {
        let w = self.world;
        let e = String::new;
        let mut rec = request_cells(w, r, "rejected", reason.as_str());
        rec.extend([
            e(),
            e(),
            e(),
            e(),
            e(),
            e(),
            e(),
            e(),
            e(),
            e(),
            secs(w.slos[r.slo as usize].deadline_ns).to_string(),
            "false".into(),
            e(),
            e(),
            secs(now).to_string(),
            e(),
        ]);
        self.write(&rec);
    }
}

/// The first cells of a request's row: id, status, reason, arrival, model, SLO class and sizes.
fn request_cells(w: &World, r: &Request, status: &str, reason: &str) -> Vec<String> {
    vec![
        r.id.to_string(),
        status.into(),
        reason.into(),
        secs(r.arrival_ns).to_string(),
        w.models[r.model as usize].name.clone(),
        w.slos[r.slo as usize].name.clone(),
        r.prompt_tokens.to_string(),
        r.output_tokens.to_string(),
        r.input_bytes.to_string(),
        r.output_bytes.to_string(),
    ]
}

/// Moves a progress bar with simulated arrival time (position in per-mille of the duration).
pub struct ProgressObserver {
    bar: indicatif::ProgressBar,
    duration_ns: Nanos,
    count: u64,
}

impl ProgressObserver {
    /// Progress over `world`'s arrival window.
    pub fn new(bar: indicatif::ProgressBar, world: &World) -> Self {
        ProgressObserver {
            bar,
            duration_ns: world.scenario.duration_ns.max(1),
            count: 0,
        }
    }
}

impl Observer for ProgressObserver {
    fn on_arrival(&mut self, r: &Request) {
        self.count += 1;
        if self.count.is_multiple_of(64) {
            let pos = (r.arrival_ns as u128 * 1000 / self.duration_ns as u128).min(1000) as u64;
            self.bar.set_position(pos);
        }
    }
}
