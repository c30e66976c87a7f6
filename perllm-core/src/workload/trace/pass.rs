//! One pass over a trace: rows parsed, re-sorted within [`REORDER_TOLERANCE_NS`], cut to the
//! window; and the statistics of a pass (its period and mean rate).

use super::parser::{Item, Parser};
use super::row::RawRow;
use super::{REORDER_TOLERANCE_NS, WorkloadError};
use crate::spec::{Nanos, SECOND};
use std::collections::VecDeque;

/// Pass period used when a pass holds a single row or all its rows share one timestamp.
const FALLBACK_GAP_NS: Nanos = SECOND;

pub(super) struct Pass {
    pub(super) parser: Parser,
    pub(super) buf: VecDeque<RawRow>,
    pub(super) max_seen: Option<Nanos>,
    pub(super) eof: bool,
    pub(super) finished: bool,
    pub(super) t0: Option<Nanos>,
    pub(super) window: (Nanos, Nanos),
    pub(super) skip_bad: bool,
    pub(super) malformed: u64,
    pub(super) failed: u64,
}

impl Pass {
    pub(super) fn new(parser: Parser, window: (Nanos, Nanos), skip_bad: bool) -> Self {
        Pass {
            parser,
            buf: VecDeque::new(),
            max_seen: None,
            eof: false,
            finished: false,
            t0: None,
            window,
            skip_bad,
            malformed: 0,
            failed: 0,
        }
    }

    pub(super) fn bad(&mut self, e: WorkloadError) -> Result<(), WorkloadError> {
        if self.skip_bad {
            self.malformed += 1;
            Ok(())
        } else {
            Err(e)
        }
    }

    /// The next row in time order (re-sorted within the tolerance).
    pub(super) fn next_sorted(&mut self) -> Result<Option<RawRow>, WorkloadError> {
        loop {
            if let Some(front) = self.buf.front() {
                let ready = self.eof
                    || front.t.saturating_add(REORDER_TOLERANCE_NS) <= self.max_seen.unwrap_or(0);
                if ready {
                    return Ok(self.buf.pop_front());
                }
            } else if self.eof {
                return Ok(None);
            }
            match self.parser.next()? {
                None => self.eof = true,
                Some(Item::Failed) => self.failed += 1,
                Some(Item::Bad(e)) => self.bad(e)?,
                Some(Item::Row(r)) => {
                    let max = self.max_seen.unwrap_or(0);
                    if r.t.saturating_add(REORDER_TOLERANCE_NS) < max {
                        let e = WorkloadError::new(
                            &self.parser.name,
                            r.line,
                            format!(
                                "timestamp is {:.3} s earlier than a previous row's; rows may be out of order by at most {} s",
                                (max - r.t) as f64 / 1e9,
                                REORDER_TOLERANCE_NS as f64 / 1e9
                            ),
                        );
                        self.bad(e)?;
                        continue;
                    }
                    if self.buf.back().is_none_or(|b| b.t <= r.t) {
                        self.buf.push_back(r);
                    } else {
                        // Stable: after every buffered row with the same time.
                        let at = self.buf.partition_point(|x| x.t <= r.t);
                        self.buf.insert(at, r);
                    }
                    self.max_seen = Some(max.max(r.t));
                }
            }
        }
    }

    /// The next row inside the window, with its offset from the window start.
    pub(super) fn next(&mut self) -> Result<Option<(Nanos, RawRow)>, WorkloadError> {
        if self.finished {
            return Ok(None);
        }
        while let Some(r) = self.next_sorted()? {
            let t0 = *self.t0.get_or_insert(r.t);
            let off = r.t - t0;
            if off < self.window.0 {
                continue;
            }
            if off >= self.window.1 {
                self.finished = true;
                return Ok(None);
            }
            return Ok(Some((off - self.window.0, r)));
        }
        self.finished = true;
        Ok(None)
    }
}

/// Statistics of one pass over a trace's window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassStats {
    /// Rows in the window.
    pub rows: u64,
    /// Offset of the first row from the window start, trace ns.
    pub first_ns: Nanos,
    /// Offset of the last row from the window start, trace ns.
    pub last_ns: Nanos,
    /// Sum of prompt tokens.
    pub prompt_tokens: u64,
    /// Sum of output tokens.
    pub output_tokens: u64,
}

impl PassStats {
    pub(super) fn add(&mut self, off: Nanos, r: &RawRow) {
        if self.rows == 0 {
            self.first_ns = off;
        }
        self.rows += 1;
        self.last_ns = off;
        self.prompt_tokens = self.prompt_tokens.saturating_add(r.prompt as u64);
        self.output_tokens = self.output_tokens.saturating_add(r.output as u64);
    }

    /// The pass period: the next pass starts one mean inter-arrival gap after this pass's last row
    /// (1 s if the pass has one row or a single timestamp). `None` for an empty pass.
    pub fn period_ns(&self) -> Option<Nanos> {
        if self.rows == 0 {
            return None;
        }
        let gap = if self.rows >= 2 {
            (self.last_ns - self.first_ns) / (self.rows - 1)
        } else {
            0
        };
        let gap = if gap == 0 { FALLBACK_GAP_NS } else { gap };
        Some(self.last_ns.saturating_add(gap))
    }

    /// Mean arrival rate of a pass in trace time: rows / period, per second.
    pub fn rate_per_s(&self) -> Option<f64> {
        self.period_ns()
            .map(|p| self.rows as f64 / (p as f64 / 1e9))
    }
}
