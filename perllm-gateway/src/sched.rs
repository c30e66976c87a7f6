//! The scheduler thread: the one owner of the policy, the backends' state and the logs.
//!
//! Handlers send it arrivals and what happened to their requests; it decides at the scenario's
//! slot boundaries (`slot = 0`: as soon as requests arrive), exactly as the simulator does: the
//! policy gets a [`ClusterView`] of the backends (requests in flight and waiting for their first
//! token, the measured time to first token, decode rate, round trip and throughput through
//! [`MeasuredCost`]), returns one decision per pending request, and is told each outcome.

use crate::Parts;
use crate::energy::{EnergyMeter, share_out};
use crate::measured::{Measured, MeasuredCost};
use crate::metrics::Metrics;
use crate::record::RequestLog;
use perllm_core::policy::MEAN_BATCH_WINDOW_S;
use perllm_core::spec::{MILLISECOND, Nanos};
use perllm_core::{
    ClusterView, CostModel, Decision, Energy, Observer, Outcome, Pending, Policy, RejectReason,
    Request, ServerId, ServerState, World,
};
use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// With `slot = 0`, a deferred request is offered again after this long (the simulator's value).
pub const DEFER_RETRY_NS: Nanos = 100 * MILLISECOND;

/// Where a request goes, as the scheduler answers a handler.
#[derive(Debug)]
pub enum Placement {
    /// Send it to this backend.
    Backend(ServerId),
    /// The policy (or the deferral limit) refused it: 429 with `Retry-After` seconds.
    Rejected {
        /// Why.
        reason: RejectReason,
        /// Suggested wait, seconds.
        retry_after_s: u64,
    },
}

/// How a request that reached a backend ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum End {
    /// The backend answered in full.
    Completed {
        /// Seconds from the send to the first token (the whole answer when not streaming).
        ttft_s: f64,
        /// Seconds from the send to the end.
        total_s: f64,
        /// Tokens received (the usage's `completion_tokens` when given, else chunks).
        tokens: u32,
        /// Response bytes.
        bytes: u64,
    },
    /// The backend failed after it started answering (the client got an error).
    Failed,
    /// The client went away; the backend request was dropped.
    Cancelled,
}

/// A message to the scheduler.
pub enum Msg {
    /// A request arrives (or is offered again after its backend failed).
    Arrive {
        /// The request.
        req: Request,
        /// Deferrals so far.
        defers: u32,
        /// The answer.
        reply: oneshot::Sender<Placement>,
    },
    /// The request's first token came back.
    FirstToken {
        /// Request id.
        id: u64,
    },
    /// The request left its backend.
    Ended {
        /// Request id.
        id: u64,
        /// How.
        end: End,
    },
    /// The request's backend refused the connection or timed out before answering: mark it
    /// unhealthy; the handler offers the request again.
    BackendDown {
        /// Request id.
        id: u64,
        /// Why, for the log.
        why: String,
    },
    /// A health probe's result.
    Probe {
        /// Backend.
        server: ServerId,
        /// Round trip when it answered.
        rtt_s: Option<f64>,
    },
    /// Stop: reject what is pending, flush the logs.
    Stop,
}

struct Flight {
    req: Request,
    server: ServerId,
    decided_ns: Nanos,
    sent_ns: Nanos,
    first: bool,
    energy: Energy,
    /// Its share of the measured package energy (a backend the meter covers), joules.
    measured_j: Option<f64>,
}

#[derive(Clone, Copy, Default)]
struct Backend {
    healthy: bool,
    waiting_first: u32,
    streaming: u32,
    pending_tokens: u64,
    reserved_kv: u64,
    measured: Measured,
    mean_batch: f64,
    last_ns: Nanos,
    weight: f64,
    busy_ns: Nanos,
}

/// The scheduler's state and loop.
pub struct Scheduler {
    world: &'static World,
    policy: Box<dyn Policy>,
    cost: std::sync::Arc<dyn CostModel>,
    observers: Vec<Box<dyn Observer>>,
    log: Option<RequestLog>,
    metrics: std::sync::Arc<Metrics>,
    start: Instant,
    pending: Vec<(Pending, oneshot::Sender<Placement>)>,
    flights: HashMap<u64, Flight>,
    backends: Vec<Backend>,
    slot: u64,
    last_decision_ns: Nanos,
    meter: Option<EnergyMeter>,
}

impl Scheduler {
    /// A scheduler over the servers of `parts.world` (every one a backend, all healthy until
    /// shown not); its observers are made here, on the scheduler's thread.
    pub fn new(parts: Parts, metrics: std::sync::Arc<Metrics>, start: Instant) -> Scheduler {
        let world = parts.world;
        let backends = world
            .servers
            .iter()
            .map(|_| Backend {
                healthy: true,
                ..Backend::default()
            })
            .collect();
        Scheduler {
            world,
            policy: parts.policy,
            cost: parts.cost,
            observers: (parts.observers)(world),
            log: parts.requests,
            metrics,
            start,
            pending: Vec::new(),
            flights: HashMap::new(),
            backends,
            slot: 0,
            last_decision_ns: 0,
            meter: parts.energy,
        }
    }

    /// Charge the package energy spent since the last event to the measured requests in
    /// flight (call before the set of requests in flight changes).
    fn meter_tick(&mut self) {
        if let Some(m) = &mut self.meter {
            let j = m.take();
            share_out(
                j,
                self.flights
                    .values_mut()
                    .filter_map(|f| f.measured_j.as_mut()),
            );
        }
    }

    fn now(&self) -> Nanos {
        self.start.elapsed().as_nanos().min(u64::MAX as u128) as Nanos
    }

    /// Run until [`Msg::Stop`] or every sender is gone; returns the first log-writing error.
    pub fn run(mut self, rx: Receiver<Msg>) -> Result<(), String> {
        let slot_ns = self.world.scenario.slot_ns;
        let mut retry_at: Option<Nanos> = None;
        loop {
            let now = self.now();
            let wake = now
                .checked_div(slot_ns)
                .map(|k| (k + 1) * slot_ns)
                .or(retry_at);
            let msg = match wake {
                Some(t) => match rx.recv_timeout(Duration::from_nanos(t.saturating_sub(now))) {
                    Ok(m) => Some(m),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                },
                None => match rx.recv() {
                    Ok(m) => Some(m),
                    Err(_) => break,
                },
            };
            let mut stop = false;
            if let Some(m) = msg {
                stop |= self.handle(m);
                while let Ok(m) = rx.try_recv() {
                    stop |= self.handle(m);
                }
            }
            if stop {
                break;
            }
            let now = self.now();
            let due = if slot_ns > 0 {
                wake.is_some_and(|t| now >= t)
            } else {
                retry_at.is_none_or(|t| now >= t) && !self.pending.is_empty()
            };
            if due && !self.pending.is_empty() {
                self.decide()?;
            }
            if slot_ns == 0 {
                retry_at = (!self.pending.is_empty()).then(|| self.now() + DEFER_RETRY_NS);
            }
        }
        let now = self.now();
        for (p, reply) in std::mem::take(&mut self.pending) {
            self.reject(now, &p.request, RejectReason::Unfinished, reply);
        }
        if let Some(log) = self.log.take() {
            log.finish()
                .map_err(|e| format!("cannot write the request log: {e}"))?;
        }
        Ok(())
    }

    /// Handle one message; true to stop.
    fn handle(&mut self, m: Msg) -> bool {
        match m {
            Msg::Arrive { req, defers, reply } => {
                if defers == 0 {
                    for o in &mut self.observers {
                        o.on_arrival(&req);
                    }
                }
                self.pending.push((
                    Pending {
                        request: req,
                        defers,
                    },
                    reply,
                ));
            }
            Msg::FirstToken { id } => {
                let now = self.now();
                if let Some(f) = self.flights.get_mut(&id)
                    && !f.first
                {
                    f.first = true;
                    let (s, req) = (f.server, f.req);
                    let b = &mut self.backends[s as usize];
                    b.waiting_first = b.waiting_first.saturating_sub(1);
                    b.streaming += 1;
                    for o in &mut self.observers {
                        o.on_first_token(now, &req, s);
                    }
                }
            }
            Msg::Ended { id, end } => {
                self.meter_tick();
                self.ended(id, end)
            }
            Msg::BackendDown { id, why } => {
                self.meter_tick();
                if let Some(f) = self.flights.remove(&id) {
                    self.leave(&f);
                    self.set_health(f.server, false, Some(&why));
                }
            }
            Msg::Probe { server, rtt_s } => {
                if let Some(b) = self.backends.get_mut(server as usize) {
                    if let Some(r) = rtt_s {
                        b.measured.add_rtt(r);
                    }
                    self.set_health(server, rtt_s.is_some(), None);
                }
            }
            Msg::Stop => return true,
        }
        false
    }

    fn set_health(&mut self, s: ServerId, healthy: bool, why: Option<&str>) {
        let b = &mut self.backends[s as usize];
        if b.healthy != healthy {
            b.healthy = healthy;
            let name = &self.world.servers[s as usize].name;
            match why {
                Some(w) => eprintln!("perllm serve: backend `{name}` marked unhealthy: {w}"),
                None if healthy => eprintln!("perllm serve: backend `{name}` is healthy again"),
                None => eprintln!("perllm serve: backend `{name}` failed its health probe"),
            }
        }
        self.metrics
            .set_healthy(&self.world.servers[s as usize].name, healthy);
    }

    /// Account a request leaving its backend.
    fn leave(&mut self, f: &Flight) {
        let now = self.now();
        self.tick_backend(f.server, now);
        let kv = self.kv_of(&f.req);
        let b = &mut self.backends[f.server as usize];
        if f.first {
            b.streaming = b.streaming.saturating_sub(1);
        } else {
            b.waiting_first = b.waiting_first.saturating_sub(1);
        }
        b.pending_tokens = b.pending_tokens.saturating_sub(f.req.output_tokens as u64);
        b.reserved_kv = b.reserved_kv.saturating_sub(kv);
        self.metrics.set_in_flight(
            &self.world.servers[f.server as usize].name,
            b.waiting_first + b.streaming,
        );
    }

    fn kv_of(&self, r: &Request) -> u64 {
        let m = &self.world.models[r.model as usize];
        m.kv_bytes_per_token
            .saturating_mul(r.prompt_tokens as u64 + r.output_tokens as u64)
    }

    /// Advance a backend's time-weighted mean batch and busy time to `now`.
    fn tick_backend(&mut self, s: ServerId, now: Nanos) {
        let b = &mut self.backends[s as usize];
        let n = (b.waiting_first + b.streaming) as f64;
        let dt = now.saturating_sub(b.last_ns) as f64 / 1e9;
        if n > 0.0 {
            b.busy_ns += now.saturating_sub(b.last_ns);
        }
        let decay = (-dt / MEAN_BATCH_WINDOW_S).exp();
        // Integral of n^2 over integral of n, both exponentially weighted.
        let num = b.mean_batch * b.weight * decay + n * n * dt;
        b.weight = b.weight * decay + n * dt;
        b.mean_batch = if b.weight > 0.0 { num / b.weight } else { 0.0 };
        b.last_ns = now;
    }

    fn ended(&mut self, id: u64, end: End) {
        let Some(f) = self.flights.remove(&id) else {
            return;
        };
        self.leave(&f);
        let now = self.now();
        let w = self.world;
        let name = &w.servers[f.server as usize].name;
        let slo = &w.slos[f.req.slo as usize];
        match end {
            End::Completed {
                ttft_s,
                total_s,
                tokens,
                bytes,
            } => {
                self.set_health(f.server, true, None);
                let b = &mut self.backends[f.server as usize];
                let decode_s = (total_s - ttft_s).max(0.0);
                b.measured
                    .add_request(ttft_s, decode_s, tokens, bytes, total_s);
                let ns = |s: f64| (s * 1e9).round().max(0.0) as Nanos;
                let queued_ns = f.sent_ns.saturating_sub(f.req.arrival_ns);
                let ttft_ns = queued_ns + ns(ttft_s);
                let total_ns = now.saturating_sub(f.req.arrival_ns);
                let deadline_ns = slo.deadline_ns;
                let met = total_ns <= deadline_ns;
                let rtt = b.measured.rtt_s.unwrap_or(0.0);
                // Measured inference energy where the meter covers the backend (the package's,
                // idle power included: no idle term on top), else the cost model's estimate.
                let energy = match f.measured_j {
                    Some(j) => Energy {
                        inference: j,
                        idle: 0.0,
                        ..f.energy
                    },
                    None => f.energy,
                };
                let o = Outcome {
                    request: Request {
                        output_tokens: tokens.max(1),
                        output_bytes: bytes,
                        ..f.req
                    },
                    server: f.server,
                    decided_ns: f.decided_ns,
                    upload_ns: ns(rtt / 2.0),
                    queue_ns: f.sent_ns.saturating_sub(f.req.arrival_ns),
                    prefill_ns: ns((ttft_s - rtt).max(0.0)),
                    decode_ns: ns(decode_s),
                    download_ns: ns(rtt / 2.0),
                    ttft_ns,
                    total_ns,
                    deadline_ns,
                    met,
                    energy,
                };
                self.metrics
                    .completed(name, &slo.name, ttft_ns, total_ns, met);
                self.policy.observe(&o);
                for ob in &mut self.observers {
                    ob.on_completion(&o);
                }
                if let Some(log) = &mut self.log {
                    let source = if f.measured_j.is_some() {
                        "measured"
                    } else {
                        "estimated"
                    };
                    log.completed(w, &o, now, source);
                }
            }
            End::Failed | End::Cancelled => {
                let status = if end == End::Failed {
                    "failed"
                } else {
                    "cancelled"
                };
                self.metrics.ended(status, &slo.name);
                if let Some(log) = &mut self.log {
                    log.ended(w, &f.req, status, Some(f.server), f.decided_ns, now);
                }
            }
        }
    }

    fn reject(
        &mut self,
        now: Nanos,
        r: &Request,
        reason: RejectReason,
        reply: oneshot::Sender<Placement>,
    ) {
        let slot_s = self.world.scenario.slot_ns.div_ceil(1_000_000_000);
        let _ = reply.send(Placement::Rejected {
            reason,
            retry_after_s: slot_s.max(1),
        });
        self.metrics
            .rejected(reason.as_str(), &self.world.slos[r.slo as usize].name);
        for o in &mut self.observers {
            o.on_rejection(now, r, reason);
        }
        if let Some(log) = &mut self.log {
            log.rejected(self.world, r, reason, now);
        }
    }

    fn states(&mut self, now: Nanos) -> Vec<ServerState> {
        let elapsed = now.saturating_sub(self.last_decision_ns).max(1);
        let w = self.world;
        (0..w.servers.len())
            .map(|i| {
                self.tick_backend(i as ServerId, now);
                let s = &w.servers[i];
                let b = &mut self.backends[i];
                let util = (b.busy_ns as f64 / elapsed as f64).min(1.0);
                b.busy_ns = 0;
                let mut st = ServerState {
                    uploading: 0,
                    queued: b.waiting_first,
                    running: b.streaming,
                    downloading: 0,
                    free_kv_bytes: s.kv_capacity_bytes.saturating_sub(b.reserved_kv),
                    kv_capacity_bytes: s.kv_capacity_bytes,
                    pending_output_tokens: b.pending_tokens,
                    bandwidth_estimate_bps: b
                        .measured
                        .throughput_bps
                        .unwrap_or(w.links[s.link].bandwidth_bps),
                    recent_utilization: util,
                    running_models: 0,
                    mean_batch: b.mean_batch,
                };
                if b.waiting_first + b.streaming > 0 {
                    for m in &s.models {
                        if *m < 64 {
                            st.running_models |= 1 << m;
                        }
                    }
                }
                if !b.healthy {
                    // An unhealthy backend looks full and unreachable to every policy.
                    st.free_kv_bytes = 0;
                    st.bandwidth_estimate_bps = 1.0;
                }
                st
            })
            .collect()
    }

    fn decide(&mut self) -> Result<(), String> {
        self.meter_tick();
        let now = self.now();
        let states = self.states(now);
        self.last_decision_ns = now;
        let measured: Vec<Measured> = self.backends.iter().map(|b| b.measured).collect();
        let pending = std::mem::take(&mut self.pending);
        let list: Vec<Pending> = pending.iter().map(|p| p.0).collect();
        let mut out = vec![Decision::Defer; list.len()];
        let mut notes = Vec::new();
        let cost = MeasuredCost {
            inner: self.cost.as_ref(),
            measured: &measured,
        };
        let view = ClusterView {
            now_ns: now,
            slot: self.slot,
            world: self.world,
            servers: &states,
            cost: &cost,
            truth: None,
            model_load: &[],
        };
        let wants_notes = self.observers.iter().any(|o| o.wants_notes());
        let r = self.policy.schedule(&view, &list, &mut out);
        if wants_notes && r.is_ok() {
            self.policy.explain(&mut notes);
        }
        let estimates: Vec<Option<Energy>> = list
            .iter()
            .zip(&out)
            .map(|(p, d)| match d {
                Decision::Assign(s) if (*s as usize) < self.world.servers.len() => {
                    Some(view.estimate(&p.request, *s).energy)
                }
                _ => None,
            })
            .collect();
        let slot = self.slot;
        self.slot += 1;
        if let Err(e) = r {
            // A failing policy fails the requests it was asked about, not the gateway.
            eprintln!("perllm serve: {e}");
            for (p, reply) in pending {
                self.reject(now, &p.request, RejectReason::Policy, reply);
            }
            return Ok(());
        }
        let max_defers = self.world.scenario.sim.max_defers;
        for (((p, reply), d), (i, energy)) in pending
            .into_iter()
            .zip(out)
            .zip(estimates.into_iter().enumerate())
        {
            let r = p.request;
            let note = notes.get(i);
            for o in &mut self.observers {
                o.on_decision(now, slot, &r, d, note);
            }
            self.metrics.decision(&d, self.world);
            match d {
                Decision::Assign(s)
                    if (s as usize) < self.world.servers.len()
                        && self.backends[s as usize].healthy
                        && self.world.servers[s as usize].hosts(r.model) =>
                {
                    self.tick_backend(s, now);
                    let kv = self.kv_of(&r);
                    let b = &mut self.backends[s as usize];
                    b.waiting_first += 1;
                    b.pending_tokens += r.output_tokens as u64;
                    b.reserved_kv += kv;
                    self.metrics.set_in_flight(
                        &self.world.servers[s as usize].name,
                        b.waiting_first + b.streaming,
                    );
                    self.flights.insert(
                        r.id,
                        Flight {
                            req: r,
                            server: s,
                            decided_ns: now,
                            sent_ns: now,
                            first: false,
                            energy: energy.unwrap_or_default(),
                            measured_j: self
                                .meter
                                .as_ref()
                                .is_some_and(|m| m.covers(s as usize))
                                .then_some(0.0),
                        },
                    );
                    if reply.send(Placement::Backend(s)).is_err() {
                        // The client left while its request was pending.
                        if let Some(f) = self.flights.remove(&r.id) {
                            self.leave(&f);
                        }
                    }
                }
                Decision::Reject => self.reject(now, &r, RejectReason::Policy, reply),
                // Deferred, or assigned where it cannot go now (an unhealthy backend, one that
                // does not host the model): offered again at the next slot.
                _ => {
                    if p.defers >= max_defers {
                        self.reject(now, &r, RejectReason::DeferredTooLong, reply);
                    } else {
                        self.pending.push((
                            Pending {
                                request: r,
                                defers: p.defers + 1,
                            },
                            reply,
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}
