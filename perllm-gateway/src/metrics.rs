//! `/metrics`: the gateway's Prometheus metrics (text exposition format).

use perllm_core::spec::Nanos;
use perllm_core::{Decision, World};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};
use std::sync::atomic::AtomicU64;

type Labels = Vec<(String, String)>;

fn latency_histogram() -> Histogram {
    // 1 ms .. ~65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// Every metric the gateway exports.
pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    decisions: Family<Labels, Counter>,
    rejections: Family<Labels, Counter>,
    ended: Family<Labels, Counter>,
    in_flight: Family<Labels, Gauge>,
    healthy: Family<Labels, Gauge>,
    ttft: Family<Labels, Histogram, fn() -> Histogram>,
    latency: Family<Labels, Histogram, fn() -> Histogram>,
    finished: Family<Labels, Counter>,
    met: Family<Labels, Counter>,
    attainment: Family<Labels, Gauge<f64, AtomicU64>>,
}

fn l(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `metric`, registered in `registry` as `name` with `help` (the registry keeps a clone, which
/// shares the values).
fn registered<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

impl Metrics {
    /// All metrics at zero; every backend and SLO class of `world` is listed from the start.
    pub fn new(world: &World) -> Metrics {
        let mut registry = Registry::with_prefix("perllm_gateway");
        let r = &mut registry;
        let m = Metrics {
            requests: registered(
                r,
                "requests",
                "HTTP requests received, by endpoint and response status",
                Family::default(),
            ),
            decisions: registered(
                r,
                "decisions",
                "Policy decisions, by decision and backend",
                Family::default(),
            ),
            rejections: registered(
                r,
                "rejections",
                "Requests refused with 429, by reason and SLO class",
                Family::default(),
            ),
            ended: registered(
                r,
                "requests_ended",
                "Requests that reached a backend and did not complete (failed, cancelled), by SLO class",
                Family::default(),
            ),
            in_flight: registered(
                r,
                "backend_in_flight",
                "Requests sent to a backend and not finished",
                Family::default(),
            ),
            healthy: registered(
                r,
                "backend_healthy",
                "1 when the backend answers, 0 while it is marked unhealthy",
                Family::default(),
            ),
            ttft: registered(
                r,
                "ttft_seconds",
                "Time to first token from arrival at the gateway, by backend and SLO class",
                Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            ),
            latency: registered(
                r,
                "latency_seconds",
                "End-to-end latency (arrival to last byte), by backend and SLO class",
                Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            ),
            finished: registered(
                r,
                "slo_completed",
                "Completed requests, by SLO class",
                Family::default(),
            ),
            met: registered(
                r,
                "slo_met",
                "Completed requests within their class's deadline, by SLO class",
                Family::default(),
            ),
            attainment: registered(
                r,
                "slo_attainment",
                "Deadline attainment so far (met over completed), by SLO class",
                Family::default(),
            ),
            registry,
        };
        for s in &world.servers {
            m.in_flight
                .get_or_create(&l(&[("backend", &s.name)]))
                .set(0);
            m.healthy.get_or_create(&l(&[("backend", &s.name)])).set(1);
        }
        for c in &world.slos {
            m.finished.get_or_create(&l(&[("slo", &c.name)])).inc_by(0);
            m.met.get_or_create(&l(&[("slo", &c.name)])).inc_by(0);
        }
        m
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        let _ = encode(&mut s, &self.registry);
        s
    }

    /// An HTTP request answered with `status`.
    pub fn request(&self, endpoint: &str, status: u16) {
        self.requests
            .get_or_create(&l(&[
                ("endpoint", endpoint),
                ("status", &status.to_string()),
            ]))
            .inc();
    }
    /// A policy decision.
    pub fn decision(&self, d: &Decision, w: &World) {
        let (what, backend) = match d {
            Decision::Assign(s) => (
                "assign",
                w.servers
                    .get(*s as usize)
                    .map(|s| s.name.as_str())
                    .unwrap_or("?"),
            ),
            Decision::Reject => ("reject", ""),
            Decision::Defer => ("defer", ""),
        };
        self.decisions
            .get_or_create(&l(&[("decision", what), ("backend", backend)]))
            .inc();
    }
    /// A request refused.
    pub fn rejected(&self, reason: &str, slo: &str) {
        self.rejections
            .get_or_create(&l(&[("reason", reason), ("slo", slo)]))
            .inc();
    }
    /// A request that ended without completing.
    pub fn ended(&self, how: &str, slo: &str) {
        self.ended
            .get_or_create(&l(&[("end", how), ("slo", slo)]))
            .inc();
    }
    /// A backend's requests in flight.
    pub fn set_in_flight(&self, backend: &str, n: u32) {
        self.in_flight
            .get_or_create(&l(&[("backend", backend)]))
            .set(n as i64);
    }
    /// A backend's health.
    pub fn set_healthy(&self, backend: &str, ok: bool) {
        self.healthy
            .get_or_create(&l(&[("backend", backend)]))
            .set(ok as i64);
    }
    /// A completed request.
    pub fn completed(&self, backend: &str, slo: &str, ttft_ns: Nanos, total_ns: Nanos, met: bool) {
        let lb = l(&[("backend", backend), ("slo", slo)]);
        self.ttft.get_or_create(&lb).observe(ttft_ns as f64 / 1e9);
        self.latency
            .get_or_create(&lb)
            .observe(total_ns as f64 / 1e9);
        let ls = l(&[("slo", slo)]);
        let done = self.finished.get_or_create(&ls).inc() + 1;
        let m = if met {
            self.met.get_or_create(&ls).inc() + 1
        } else {
            self.met.get_or_create(&ls).get()
        };
        self.attainment
            .get_or_create(&ls)
            .set(m as f64 / done as f64);
    }
}
