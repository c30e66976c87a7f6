//! The replayer: [`TraceSource`] maps a trace's passes to arrival times (window, repeat,
//! speed-up or target rate) and assigns SLO classes, models and payloads.

use super::parser::Parser;
use super::pass::{Pass, PassStats};
use super::row::{Names, RawRow};
use super::{Opener, Reader, RequestSource, WorkloadError, pick_weighted, sample_size};
use crate::request::Request;
use crate::rng::{Rng, stream, stream_rng};
use crate::spec::{Assign, Nanos, SECOND, SizeDist, TraceFormat, TraceSpec};
use crate::world::{ModelId, SloId, World};

enum Rule<T> {
    Share(Vec<(T, f64)>),
    Column,
    Size(Vec<(u64, T)>),
}

impl<T: Copy> Rule<T> {
    fn pick(&self, col: Option<T>, size: u64, rng: &mut Rng) -> T {
        match self {
            Rule::Share(v) => pick_weighted(v, rng),
            Rule::Column => col.expect("the parser resolves the column when the rule is Column"),
            Rule::Size(rules) => {
                rules
                    .iter()
                    .find(|r| size <= r.0)
                    .unwrap_or(rules.last().expect("non-empty"))
                    .1
            }
        }
    }
}

/// Replays a trace as a [`RequestSource`].
///
/// Time mapping: trace times are taken relative to the first row (after re-ordering); rows whose
/// offset is outside `window_ns = (start, end)` are dropped and the window start becomes time 0.
/// Pass `k` (of `repeat`) is shifted by `k` pass periods ([`PassStats::period_ns`]). The result is
/// divided by the speed-up (or by the factor that makes the mean rate `target_rate`), and arrivals
/// at or after the scenario's duration end the replay, as does `max_requests`.
pub struct TraceSource<'a> {
    name: String,
    format: TraceFormat,
    names: Names,
    open: Option<Opener<'a>>,
    pass: Option<Pass>,
    pass_index: u32,
    repeat: u32,
    window: (Nanos, Nanos),
    skip_bad: bool,
    scale: f64,
    first: PassStats,
    period: Option<Nanos>,
    slo_rule: Rule<SloId>,
    model_rule: Rule<ModelId>,
    payload: SizeDist,
    out_bytes_per_token: f64,
    rng: Rng,
    end_ns: Nanos,
    limit: u64,
    next_id: u64,
    malformed: u64,
    failed: u64,
    done: bool,
    /// The simulated second of the last request and the requests in it (the arrival-rate cap).
    rate_second: u64,
    rate_count: u64,
}

fn resolve_rule<T: Copy>(
    name: &str,
    what: &str,
    a: &Assign,
    shares: Vec<(T, f64)>,
    lookup: impl Fn(&str) -> Option<T>,
    column_ok: bool,
    format: TraceFormat,
) -> Result<Rule<T>, WorkloadError> {
    let err = |m: String| WorkloadError::new(name, 0, m);
    Ok(match a {
        Assign::ByShare => Rule::Share(shares),
        Assign::FromColumn => {
            if !column_ok {
                return Err(err(format!(
                    "{what}_assign = from_column, but {format:?} traces have no {what} column"
                )));
            }
            Rule::Column
        }
        Assign::BySize { rules } => {
            if rules.is_empty() {
                return Err(err(format!(
                    "{what}_assign = by_size needs at least one rule"
                )));
            }
            if rules.windows(2).any(|w| w[1].0 <= w[0].0) {
                return Err(err(format!(
                    "{what}_assign = by_size rules must have increasing max_tokens"
                )));
            }
            let mut out = Vec::with_capacity(rules.len());
            for (max, n) in rules {
                let id = lookup(n).ok_or_else(|| {
                    err(format!(
                        "{what}_assign = by_size names unknown {what} `{n}`"
                    ))
                })?;
                out.push((*max, id));
            }
            Rule::Size(out)
        }
    })
}

impl TraceSource<'static> {
    /// A replayer reading the trace once from `reader`. `name` (usually the path) appears in errors.
    ///
    /// `target_rate` and `repeat > 1` need more than one pass: use [`TraceSource::with_opener`].
    pub fn new(
        spec: &TraceSpec,
        name: &str,
        reader: Reader,
        world: &World,
    ) -> Result<Self, WorkloadError> {
        if spec.target_rate.is_some() || spec.repeat > 1 {
            return Err(WorkloadError::new(
                name,
                0,
                "target_rate and repeat > 1 read the trace more than once: use TraceSource::with_opener".into(),
            ));
        }
        let mut s = TraceSource::build(spec, name, None, world)?;
        s.start_pass(reader)?;
        Ok(s)
    }
}

impl<'a> TraceSource<'a> {
    /// A replayer that opens the trace with `open` once per pass (and once more first if
    /// `target_rate` is set: a pre-pass counts the rows of the window to find the time scale).
    pub fn with_opener(
        spec: &TraceSpec,
        name: &str,
        open: impl FnMut() -> std::io::Result<Reader> + 'a,
        world: &World,
    ) -> Result<Self, WorkloadError> {
        let mut s = TraceSource::build(spec, name, Some(Box::new(open)), world)?;
        if let Some(rate) = spec.target_rate {
            let r = s.reopen()?;
            let parser = Parser::new(s.format, &s.name, r, s.names.clone())?;
            let mut pass = Pass::new(parser, s.window, s.skip_bad);
            let mut st = PassStats::default();
            while let Some((off, r)) = pass.next()? {
                st.add(off, &r);
            }
            let natural = st.rate_per_s().ok_or_else(|| s.empty_error(&pass))?;
            s.scale = rate / natural;
        }
        let r = s.reopen()?;
        s.start_pass(r)?;
        Ok(s)
    }

    fn build(
        spec: &TraceSpec,
        name: &str,
        open: Option<Opener<'a>>,
        world: &World,
    ) -> Result<Self, WorkloadError> {
        let err = |m: String| WorkloadError::new(name, 0, m);
        if let Some(r) = spec.target_rate {
            if !(r.is_finite() && r > 0.0) {
                return Err(err(format!(
                    "target_rate must be a positive number, not {r}"
                )));
            }
        } else if !(spec.speedup.is_finite() && spec.speedup > 0.0) {
            return Err(err(format!(
                "speedup must be a positive number, not {}",
                spec.speedup
            )));
        }
        if spec.repeat == 0 {
            return Err(err("repeat must be at least 1".into()));
        }
        let window = spec.window_ns.unwrap_or((0, Nanos::MAX));
        if window.0 >= window.1 {
            return Err(err(format!(
                "the window's start ({} ns) is not before its end ({} ns)",
                window.0, window.1
            )));
        }
        let w = &world.scenario.workload;
        let payload = spec
            .payload
            .clone()
            .unwrap_or_else(|| w.payload_bytes.clone());
        payload.check().map_err(|m| err(format!("payload: {m}")))?;
        let fmt = spec.format;
        let slo_rule = resolve_rule(
            name,
            "slo",
            &spec.slo_assign,
            world
                .slos
                .iter()
                .enumerate()
                .map(|(i, s)| (i as SloId, s.share))
                .collect(),
            |n| world.slo_id(n),
            matches!(fmt, TraceFormat::Csv | TraceFormat::Jsonl),
            fmt,
        )?;
        let model_rule = resolve_rule(
            name,
            "model",
            &spec.model_assign,
            world.model_shares.clone(),
            |n| world.model_id(n),
            matches!(
                fmt,
                TraceFormat::Csv | TraceFormat::Jsonl | TraceFormat::Burstgpt
            ),
            fmt,
        )?;
        if let Rule::Size(rules) = &model_rule {
            for &(_, m) in rules {
                if !world.servers.iter().any(|s| s.hosts(m)) {
                    return Err(err(format!(
                        "model_assign = by_size names model `{}`, which no server hosts",
                        world.models[m as usize].name
                    )));
                }
            }
        }
        let names = Names {
            slos: world.slos.iter().map(|s| s.name.clone()).collect(),
            models: world.models.iter().map(|m| m.name.clone()).collect(),
            hosted: (0..world.models.len())
                .map(|m| world.servers.iter().any(|s| s.hosts(m as ModelId)))
                .collect(),
            want_slo: matches!(slo_rule, Rule::Column),
            want_model: matches!(model_rule, Rule::Column),
            out_bytes_per_token: w.output_bytes_per_token,
        };
        Ok(TraceSource {
            name: name.to_string(),
            format: fmt,
            names,
            open,
            pass: None,
            pass_index: 0,
            repeat: spec.repeat,
            window,
            skip_bad: spec.skip_bad_rows,
            scale: if spec.target_rate.is_some() {
                1.0
            } else {
                spec.speedup
            },
            first: PassStats::default(),
            period: None,
            slo_rule,
            model_rule,
            payload,
            out_bytes_per_token: w.output_bytes_per_token,
            rng: stream_rng(world.scenario.seed, stream::WORKLOAD),
            end_ns: world.scenario.duration_ns,
            limit: w.max_requests.unwrap_or(u64::MAX),
            next_id: 0,
            malformed: 0,
            failed: 0,
            done: false,
            rate_second: 0,
            rate_count: 0,
        })
    }

    fn reopen(&mut self) -> Result<Reader, WorkloadError> {
        let open = self.open.as_mut().expect("only called with an opener");
        open().map_err(|e| WorkloadError::new(&self.name, 0, format!("cannot open: {e}")))
    }

    fn start_pass(&mut self, r: Reader) -> Result<(), WorkloadError> {
        let parser = Parser::new(self.format, &self.name, r, self.names.clone())?;
        self.pass = Some(Pass::new(parser, self.window, self.skip_bad));
        Ok(())
    }

    fn empty_error(&self, pass: &Pass) -> WorkloadError {
        let skipped = pass.malformed + pass.failed;
        let why = if skipped > 0 {
            format!(
                " ({} malformed and {} failed-request rows were skipped)",
                pass.malformed, pass.failed
            )
        } else {
            String::new()
        };
        let what = if self.window == (0, Nanos::MAX) {
            "the trace has no rows"
        } else {
            "the trace has no rows in its window"
        };
        WorkloadError::new(&self.name, 0, format!("{what}{why}"))
    }

    /// Trace nanoseconds per replay nanosecond (the speed-up, or the one derived from `target_rate`).
    pub fn time_scale(&self) -> f64 {
        self.scale
    }

    /// Statistics of the first pass so far (complete once the first pass has been read).
    pub fn first_pass(&self) -> PassStats {
        self.first
    }

    /// Malformed rows skipped (first pass only; later passes re-read the same rows).
    pub fn malformed_rows(&self) -> u64 {
        self.malformed
    }

    /// Rows recording failed requests (BurstGPT rows with 0 response tokens), always skipped
    /// (first pass only).
    pub fn failed_rows(&self) -> u64 {
        self.failed
    }

    fn fail(&mut self, e: WorkloadError) -> Option<Result<Request, WorkloadError>> {
        self.done = true;
        self.pass = None;
        Some(Err(e))
    }

    fn next_row(&mut self) -> Result<Option<(Nanos, RawRow)>, WorkloadError> {
        loop {
            let Some(pass) = self.pass.as_mut() else {
                return Ok(None);
            };
            let got = pass.next();
            if self.pass_index == 0 {
                self.malformed = pass.malformed;
                self.failed = pass.failed;
            }
            if let Some((off, r)) = got? {
                if self.pass_index == 0 {
                    self.first.add(off, &r);
                }
                return Ok(Some((off, r)));
            }
            // End of a pass.
            if self.pass_index == 0 {
                let p = self.first.period_ns();
                if p.is_none() {
                    let e = self.empty_error(self.pass.as_ref().expect("set"));
                    return Err(e);
                }
                self.period = p;
            }
            self.pass = None;
            self.pass_index += 1;
            if self.pass_index >= self.repeat {
                return Ok(None);
            }
            let r = self.reopen()?;
            self.start_pass(r)?;
        }
    }
}

impl RequestSource for TraceSource<'_> {
    fn next_request(&mut self) -> Option<Result<Request, WorkloadError>> {
        if self.done || self.next_id >= self.limit {
            return None;
        }
        let (off, row) = match self.next_row() {
            Ok(Some(x)) => x,
            Ok(None) => {
                self.done = true;
                return None;
            }
            Err(e) => return self.fail(e),
        };
        let trace_ns = self.pass_index as u128 * self.period.unwrap_or(0) as u128 + off as u128;
        let arrival = if self.scale == 1.0 {
            trace_ns
        } else {
            let v = (trace_ns as f64 / self.scale).round();
            if v >= u64::MAX as f64 {
                u128::MAX
            } else {
                v as u128
            }
        };
        if arrival >= self.end_ns as u128 {
            self.done = true;
            self.pass = None;
            return None;
        }
        // At most `limits::MAX_ARRIVAL_RATE` requests in any simulated second: a speed-up typed
        // in the wrong unit would otherwise hold millions of pending requests in memory.
        let second = (arrival / SECOND as u128) as u64;
        if second != self.rate_second {
            self.rate_second = second;
            self.rate_count = 0;
        }
        self.rate_count += 1;
        if self.rate_count as f64 > crate::spec::limits::MAX_ARRIVAL_RATE {
            let how = if self.scale == 1.0 {
                String::new()
            } else {
                format!(" (times divided by {})", self.scale)
            };
            let e = WorkloadError::new(
                &self.name,
                row.line,
                format!(
                    "more than 1,000,000 requests arrive in simulated second {second}{how}, above the \
                     arrival-rate limit: lower `speedup` or `target_rate`"
                ),
            );
            return self.fail(e);
        }
        let size = row.prompt as u64 + row.output as u64;
        let r = &mut self.rng;
        let slo = self.slo_rule.pick(row.slo, size, r);
        let model = self.model_rule.pick(row.model, size, r);
        let input_bytes = match row.payload {
            Some(b) => b,
            None => sample_size(&self.payload, r).round().clamp(1.0, 1e15) as u64,
        };
        let output_bytes = (row.output as f64 * self.out_bytes_per_token).round() as u64;
        let id = self.next_id;
        self.next_id += 1;
        Some(Ok(Request {
            id,
            arrival_ns: arrival as Nanos,
            model,
            prompt_tokens: row.prompt,
            output_tokens: row.output,
            input_bytes,
            output_bytes,
            slo,
        }))
    }

    fn skipped(&self) -> u64 {
        self.malformed + self.failed
    }
}
