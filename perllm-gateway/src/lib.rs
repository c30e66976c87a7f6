//! perllm-gateway: an OpenAI-compatible HTTP gateway that routes real requests with perllm's
//! scheduling policies (`perllm serve`).
//!
//! The backends are a scenario's servers, each with an `endpoint` (any OpenAI-compatible server:
//! vLLM, llama.cpp's server, Ollama, `perllm engine serve`). A request to `/v1/completions` or
//! `/v1/chat/completions` is validated (bad JSON, unknown models, absurd `max_tokens` never reach
//! a backend), given its SLO class (the `x-perllm-slo` header, else the scenario's trace size
//! rules, else the first class), and handed to the scheduler thread, which decides at the
//! scenario's slot boundaries with the same [`perllm_core::Policy`] trait and view the simulator
//! uses. The request is then forwarded (streamed back as it comes); its outcome goes to the
//! policy's `observe`, the decision log (the simulator's JSONL) and the per-request CSV.
//!
//! Faults: a rejection is a 429 with `Retry-After`; a backend that refuses the connection or does
//! not answer in time is marked unhealthy (probed until it answers again) and the request is
//! offered to the policy again, so every accepted request ends with a response or an error its
//! client sees; a client that goes away cancels its backend request; on shutdown the gateway
//! stops accepting and drains what is in flight for a bounded time.

mod energy;
mod measured;
mod metrics;
mod proxy;
mod record;
mod sched;

pub use energy::{EnergyMeter, share_out};
pub use measured::{Measured, MeasuredCost};
pub use metrics::Metrics;
pub use record::{REQUEST_COLUMNS, RequestLog, Row, secs};
pub use sched::{DEFER_RETRY_NS, End, Msg, Placement};

use perllm_core::{CostModel, Observer, Policy, World};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Request header naming the SLO class of a request.
pub const SLO_HEADER: &str = "x-perllm-slo";
/// Response header naming the backend that served a request.
pub const BACKEND_HEADER: &str = "x-perllm-backend";
/// Header of a 429 naming why the request was refused (`policy`, `deferred_too_long`, ...).
pub const REJECT_REASON_HEADER: &str = "x-perllm-reject-reason";
/// Response header with the gateway's request id (the decision log's `request`).
pub const REQUEST_ID_HEADER: &str = "x-perllm-request";

/// How the gateway runs.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Keys clients must present as `Authorization: Bearer KEY` (empty: no check).
    pub api_keys: Vec<String>,
    /// The largest `max_tokens` accepted.
    pub max_tokens_limit: u32,
    /// Connecting to a backend longer than this marks it unhealthy.
    pub connect_timeout: Duration,
    /// A backend that sends no response headers within this marks it unhealthy.
    pub response_timeout: Duration,
    /// Interval of the health probes (`GET /v1/models` on every backend).
    pub probe_interval: Duration,
    /// SLO class of requests without the header when no size rule applies (index).
    pub default_slo: u16,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            api_keys: Vec::new(),
            max_tokens_limit: 32_768,
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(300),
            probe_interval: Duration::from_secs(2),
            default_slo: 0,
        }
    }
}

/// A backend as the HTTP side sees it.
#[derive(Clone, Debug)]
pub struct BackendInfo {
    /// Server name.
    pub name: String,
    /// Base URL without a trailing slash.
    pub url: String,
    /// `Authorization` header value to send, if the backend has a key.
    pub auth: Option<String>,
}

/// Why the gateway cannot start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A server has no endpoint, or a key variable is not set.
    #[error("server `{server}`: {message}")]
    Backend {
        /// The server.
        server: String,
        /// What is wrong.
        message: String,
    },
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
}

/// Everything the gateway needs: the world (every server an endpoint), the policy, the cost
/// model, the decision-log observers and the request CSV.
pub struct Parts {
    /// The scenario, resolved (leaked: the gateway lives until the process ends).
    pub world: &'static World,
    /// The policy.
    pub policy: Box<dyn Policy>,
    /// The cost model (the policy's estimates, and the energy the CSV marks as estimated).
    pub cost: Arc<dyn CostModel>,
    /// Observers of decisions and outcomes (the decision log), run on the scheduler thread.
    pub observers: Box<dyn FnOnce(&'static World) -> Vec<Box<dyn Observer>> + Send>,
    /// The per-request CSV, if one is wanted.
    pub requests: Option<RequestLog>,
    /// Measured energy of the backends on this machine (RAPL), if any: their requests' inference
    /// energy is measured instead of estimated.
    pub energy: Option<EnergyMeter>,
}

/// A running gateway: its router, and the handle to stop its scheduler.
pub struct Gateway {
    /// The HTTP routes (serve them with [`perllm_openai::serve_until`]).
    pub router: axum::Router,
    state: Arc<proxy::State>,
    scheduler: Option<std::thread::JoinHandle<Result<(), String>>>,
    probes: tokio::task::JoinHandle<()>,
}

/// The backends of `world`: every server must have an endpoint; keys are read from the
/// variables the scenario names.
pub fn backends(
    world: &World,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<BackendInfo>, GatewayError> {
    world
        .scenario
        .servers
        .iter()
        .map(|s| {
            let url = s.endpoint.clone().ok_or_else(|| GatewayError::Backend {
                server: s.name.clone(),
                message: "has no `endpoint`".into(),
            })?;
            if url.starts_with("https://") {
                return Err(GatewayError::Backend {
                    server: s.name.clone(),
                    message: format!(
                        "`{url}`: this build has no TLS client; reach the backend over http on a private network or through a local TLS proxy (docs/serve.md)"
                    ),
                });
            }
            let auth = match &s.api_key_env {
                Some(var) => Some(format!(
                    "Bearer {}",
                    env(var).filter(|k| !k.is_empty()).ok_or_else(|| {
                        GatewayError::Backend {
                            server: s.name.clone(),
                            message: format!(
                                "its API key variable `{var}` (api_key_env) is not set"
                            ),
                        }
                    })?
                )),
                None => None,
            };
            Ok(BackendInfo {
                name: s.name.clone(),
                url: url.trim_end_matches('/').to_string(),
                auth,
            })
        })
        .collect()
}

impl Gateway {
    /// Start the scheduler thread and the health probes (call inside a tokio runtime).
    pub fn start(
        cfg: GatewayConfig,
        parts: Parts,
        backends: Vec<BackendInfo>,
    ) -> Result<Gateway, GatewayError> {
        let world = parts.world;
        let start = Instant::now();
        let metrics = Arc::new(Metrics::new(world));
        let (tx, rx) = std::sync::mpsc::channel();
        let sched_metrics = metrics.clone();
        let scheduler = std::thread::Builder::new()
            .name("perllm-gateway-scheduler".into())
            .spawn(move || sched::Scheduler::new(parts, sched_metrics, start).run(rx))
            .map_err(|e| GatewayError::Client(e.to_string()))?;
        let client = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| GatewayError::Client(e.to_string()))?;
        let state = Arc::new(proxy::State {
            cfg,
            world,
            backends,
            client,
            tx: std::sync::Mutex::new(tx),
            metrics,
            start,
            next_id: std::sync::atomic::AtomicU64::new(0),
            draining: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        });
        let probes = tokio::spawn(proxy::probe_loop(state.clone()));
        Ok(Gateway {
            router: proxy::router(state.clone()),
            state,
            scheduler: Some(scheduler),
            probes,
        })
    }

    /// A flag that, once set, makes the gateway refuse new requests (503) and report
    /// `/healthz` as draining while the requests in flight finish.
    pub fn draining(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.state.draining.clone()
    }

    /// Stop the scheduler (requests still pending are refused) and flush the logs.
    pub fn finish(mut self) -> Result<(), String> {
        self.probes.abort();
        self.state.send(sched::Msg::Stop);
        match self.scheduler.take() {
            Some(h) => h
                .join()
                .map_err(|_| "the scheduler thread panicked".to_string())?,
            None => Ok(()),
        }
    }
}
