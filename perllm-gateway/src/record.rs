//! The per-request CSV of real runs: the simulator's columns (docs/report-schema.md), with what a
//! gateway or a client cannot observe left empty rather than zero.

use perllm_core::spec::Nanos;
use perllm_core::{Outcome, RejectReason, Request, ServerId, World};
use std::io::Write;

pub use perllm_core::REQUEST_COLUMNS;

/// Seconds, as the simulator writes them.
pub fn secs(ns: Nanos) -> String {
    (ns as f64 / 1e9).to_string()
}

/// One row; `None` cells are written empty.
#[derive(Clone, Debug, Default)]
pub struct Row {
    /// Cells by column, in [`REQUEST_COLUMNS`] order.
    pub cells: Vec<Option<String>>,
}

impl Row {
    /// An empty row.
    pub fn new() -> Row {
        Row {
            cells: vec![None; REQUEST_COLUMNS.len()],
        }
    }
    /// Set a column.
    pub fn set(&mut self, col: &str, v: impl ToString) -> &mut Row {
        if let Some(i) = REQUEST_COLUMNS.iter().position(|c| *c == col) {
            self.cells[i] = Some(v.to_string());
        }
        self
    }
    /// The request's own fields.
    pub fn request(w: &World, r: &Request) -> Row {
        let mut row = Row::new();
        row.set("request", r.id)
            .set("arrival_s", secs(r.arrival_ns))
            .set("model", &w.models[r.model as usize].name)
            .set("slo", &w.slos[r.slo as usize].name)
            .set("prompt_tokens", r.prompt_tokens)
            .set("output_tokens", r.output_tokens)
            .set("input_bytes", r.input_bytes)
            .set("output_bytes", r.output_bytes)
            .set("deadline_s", secs(w.slos[r.slo as usize].deadline_ns));
        row
    }
}

/// A CSV of [`REQUEST_COLUMNS`] rows, one per request as it ends.
pub struct RequestLog {
    out: csv::Writer<Box<dyn Write + Send>>,
    error: Option<csv::Error>,
}

impl RequestLog {
    /// Write the header into `out`.
    pub fn new(out: Box<dyn Write + Send>) -> RequestLog {
        let mut out = csv::Writer::from_writer(out);
        let error = out.write_record(REQUEST_COLUMNS).err();
        RequestLog { out, error }
    }

    /// Append a row.
    pub fn write(&mut self, row: &Row) {
        if self.error.is_some() {
            return;
        }
        let rec: Vec<&str> = row
            .cells
            .iter()
            .map(|c| c.as_deref().unwrap_or(""))
            .collect();
        if let Err(e) = self.out.write_record(&rec) {
            self.error = Some(e);
        }
        // Rows are few and precious (a killed gateway keeps what it wrote).
        if let Err(e) = self.out.flush() {
            self.error = Some(e.into());
        }
    }

    /// Flush; the first error.
    pub fn finish(mut self) -> Result<(), csv::Error> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush().map_err(csv::Error::from)
    }

    /// A completed request seen by the gateway. The upload, queue, prefill and download phases
    /// are not observable from outside a backend: empty. `energy_source` says where the energy
    /// comes from: `estimated` (the cost model) or `measured` (RAPL: the inference energy; the
    /// transmission energy stays estimated).
    pub fn completed(&mut self, w: &World, o: &Outcome, now: Nanos, energy_source: &str) {
        let r = &o.request;
        let s = &w.servers[o.server as usize];
        let mut row = Row::request(w, r);
        row.set("status", "completed")
            .set("server", &s.name)
            .set("tier", s.tier.as_str())
            .set("decided_s", secs(o.decided_ns))
            .set("decode_s", secs(o.decode_ns))
            .set("ttft_s", secs(o.ttft_ns))
            .set("latency_s", secs(o.total_ns))
            .set("met", o.met)
            .set("energy_transmission_j", o.energy.transmission)
            .set("energy_inference_j", o.energy.inference)
            .set("ended_s", secs(now))
            .set("energy_source", energy_source);
        self.write(&row);
    }

    /// A request that reached a backend and ended otherwise (`failed`, `cancelled`).
    pub fn ended(
        &mut self,
        w: &World,
        r: &Request,
        status: &str,
        server: Option<ServerId>,
        decided: Nanos,
        now: Nanos,
    ) {
        let mut row = Row::request(w, r);
        row.set("status", status)
            .set("decided_s", secs(decided))
            .set("met", false)
            .set("ended_s", secs(now));
        if let Some(s) = server {
            let s = &w.servers[s as usize];
            row.set("server", &s.name).set("tier", s.tier.as_str());
        }
        self.write(&row);
    }

    /// A rejected request.
    pub fn rejected(&mut self, w: &World, r: &Request, reason: RejectReason, now: Nanos) {
        let mut row = Row::request(w, r);
        row.set("status", "rejected")
            .set("reject_reason", reason.as_str())
            .set("met", false)
            .set("ended_s", secs(now));
        self.write(&row);
    }
}
