//! The HTTP side: validation, the wait for the scheduler's decision, forwarding and streaming
//! back, outcomes reported to the scheduler, health probes.

use crate::sched::{End, Msg, Placement};
use crate::{BACKEND_HEADER, BackendInfo, GatewayConfig, Metrics, REQUEST_ID_HEADER, SLO_HEADER};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use perllm_core::spec::{Assign, Nanos};
use perllm_core::{Request, ServerId, SloId, World};
use perllm_openai::engine_server::check_key;
use perllm_openai::sse::SseReader;
use perllm_openai::wire::{self, ApiError, BYTES_PER_TOKEN, Endpoint, GenRequest};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

pub(crate) struct State {
    pub cfg: GatewayConfig,
    pub world: &'static World,
    pub backends: Vec<BackendInfo>,
    pub client: reqwest::Client,
    pub tx: std::sync::Mutex<std::sync::mpsc::Sender<Msg>>,
    pub metrics: Arc<Metrics>,
    pub start: Instant,
    pub next_id: AtomicU64,
    pub draining: Arc<AtomicBool>,
}

impl State {
    pub fn send(&self, m: Msg) {
        if let Ok(tx) = self.tx.lock() {
            let _ = tx.send(m);
        }
    }
    fn now(&self) -> Nanos {
        self.start.elapsed().as_nanos().min(u64::MAX as u128) as Nanos
    }
}

pub(crate) fn router(state: Arc<State>) -> Router {
    let s1 = state.clone();
    let s2 = state.clone();
    let s3 = state.clone();
    let s4 = state.clone();
    Router::new()
        .route(
            "/v1/completions",
            post(move |h: HeaderMap, b: Bytes| generate(s1, Endpoint::Completions, h, b)),
        )
        .route(
            "/v1/chat/completions",
            post(move |h: HeaderMap, b: Bytes| generate(s2, Endpoint::Chat, h, b)),
        )
        .route("/v1/models", get(move |h: HeaderMap| models(s3, h)))
        .route(
            "/metrics",
            get(move || async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    s4.metrics.encode(),
                )
            }),
        )
        .route("/healthz", get(move || healthz(state)))
}

async fn healthz(s: Arc<State>) -> Response {
    if s.draining.load(Ordering::SeqCst) {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else {
        "ok\n".into_response()
    }
}

fn json(status: StatusCode, v: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn error(e: &ApiError) -> Response {
    json(
        StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
        &e.body(),
    )
}

async fn models(s: Arc<State>, h: HeaderMap) -> Response {
    if let Err(e) = check_key(&h, &s.cfg.api_keys) {
        return error(&e);
    }
    let data: Vec<serde_json::Value> = s
        .world
        .models
        .iter()
        .map(|m| serde_json::json!({"id": m.name, "object": "model", "created": 0, "owned_by": "perllm"}))
        .collect();
    json(
        StatusCode::OK,
        &serde_json::json!({"object": "list", "data": data}),
    )
}

/// The request's SLO class: the header, else the scenario's trace size rules, else the default.
fn slo_of(s: &State, h: &HeaderMap, size: u64) -> Result<SloId, ApiError> {
    let w = s.world;
    if let Some(v) = h.get(SLO_HEADER) {
        let name = v.to_str().unwrap_or("");
        return w.slo_id(name).ok_or_else(|| {
            let names: Vec<&str> = w.slos.iter().map(|c| c.name.as_str()).collect();
            ApiError::invalid(
                None,
                "unknown_slo_class",
                format!(
                    "the {SLO_HEADER} header names `{name}`, which is not an SLO class of this gateway (classes: {})",
                    names.join(", ")
                ),
            )
        });
    }
    if let Some(t) = &w.scenario.workload.trace
        && let Assign::BySize { rules } = &t.slo_assign
        && !rules.is_empty()
    {
        let name = rules
            .iter()
            .find(|(max, _)| *max >= size)
            .unwrap_or(&rules[rules.len() - 1])
            .1
            .as_str();
        if let Some(id) = w.slo_id(name) {
            return Ok(id);
        }
    }
    Ok(s.cfg.default_slo)
}

/// Reports the request's end to the scheduler exactly once; dropped without an end (the client
/// went away, the handler was cancelled), it reports a cancellation.
struct Guard {
    state: Arc<State>,
    id: u64,
    done: bool,
}

impl Guard {
    fn end(&mut self, end: End) {
        if !self.done {
            self.done = true;
            self.state.send(Msg::Ended { id: self.id, end });
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.end(End::Cancelled);
    }
}

async fn generate(s: Arc<State>, endpoint: Endpoint, h: HeaderMap, body: Bytes) -> Response {
    let r = generate_inner(&s, endpoint, &h, body).await;
    s.metrics.request(endpoint.label(), r.status().as_u16());
    r
}

async fn generate_inner(
    s: &Arc<State>,
    endpoint: Endpoint,
    h: &HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(e) = check_key(h, &s.cfg.api_keys) {
        return error(&e);
    }
    if s.draining.load(Ordering::SeqCst) {
        return error(&shutting_down());
    }
    let g: GenRequest = match wire::parse(endpoint, &body, s.cfg.max_tokens_limit) {
        Ok(g) => g,
        Err(e) => return error(&e),
    };
    let w = s.world;
    let Some(model) = w.model_id(&g.model) else {
        let names: Vec<&str> = w.models.iter().map(|m| m.name.as_str()).collect();
        return error(&ApiError {
            status: 404,
            message: format!(
                "the model `{}` does not exist; this gateway serves: {}",
                g.model,
                names.join(", ")
            ),
            kind: "invalid_request_error",
            param: Some("model"),
            code: "model_not_found",
        });
    };
    let prompt_tokens = g.prompt_tokens();
    let slo = match slo_of(s, h, prompt_tokens as u64 + g.max_tokens as u64) {
        Ok(c) => c,
        Err(e) => return error(&e),
    };
    let id = s.next_id.fetch_add(1, Ordering::Relaxed);
    let req = Request {
        id,
        arrival_ns: s.now(),
        model,
        prompt_tokens,
        output_tokens: g.max_tokens,
        input_bytes: body.len() as u64,
        output_bytes: g.max_tokens as u64 * BYTES_PER_TOKEN as u64,
        slo,
    };
    let mut defers = 0;
    loop {
        let (tx, rx) = oneshot::channel();
        s.send(Msg::Arrive {
            req,
            defers,
            reply: tx,
        });
        let server: ServerId = match rx.await {
            Ok(Placement::Backend(b)) => b,
            Ok(Placement::Rejected {
                reason,
                retry_after_s,
            }) => {
                let e = ApiError {
                    status: 429,
                    message: format!(
                        "the scheduling policy refused this request ({}); retry in {retry_after_s} s",
                        reason.as_str()
                    ),
                    kind: "rate_limit_error",
                    param: None,
                    code: "rejected_by_policy",
                };
                let mut r = error(&e);
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
                r.headers_mut().insert(
                    crate::REJECT_REASON_HEADER,
                    HeaderValue::from_static(reason.as_str()),
                );
                return r;
            }
            Err(_) => {
                return error(&shutting_down());
            }
        };
        let mut guard = Guard {
            state: s.clone(),
            id,
            done: false,
        };
        let b = &s.backends[server as usize];
        let mut rb = s
            .client
            .post(format!("{}{}", b.url, endpoint.path()))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.clone());
        if let Some(a) = &b.auth {
            rb = rb.header(header::AUTHORIZATION, a);
        }
        let sent = Instant::now();
        let resp = match tokio::time::timeout(s.cfg.response_timeout, rb.send()).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                guard.done = true;
                s.send(Msg::BackendDown {
                    id,
                    why: format!("{e}"),
                });
                defers += 1;
                continue;
            }
            Err(_) => {
                guard.done = true;
                s.send(Msg::BackendDown {
                    id,
                    why: format!(
                        "no response within {} s",
                        s.cfg.response_timeout.as_secs_f64()
                    ),
                });
                defers += 1;
                continue;
            }
        };
        let status = resp.status();
        let ctype = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .cloned()
            .unwrap_or(HeaderValue::from_static("application/json"));
        let mut out = Response::builder()
            .status(status.as_u16())
            .header(header::CONTENT_TYPE, ctype)
            .header(BACKEND_HEADER, b.name.as_str())
            .header(REQUEST_ID_HEADER, id);
        if g.stream && status.is_success() {
            out = out.header(header::CACHE_CONTROL, "no-cache");
            let stream = relay(resp, guard, sent, s.clone());
            return out
                .body(Body::from_stream(stream))
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
        }
        // Not streaming (or an error status, passed on as the backend said it).
        s.send(Msg::FirstToken { id });
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => {
                guard.end(End::Failed);
                return error(&ApiError {
                    status: 502,
                    message: format!("backend `{}` failed while answering: {e}", b.name),
                    kind: "server_error",
                    param: None,
                    code: "backend_failed",
                });
            }
        };
        let total = sent.elapsed().as_secs_f64();
        if status.is_success() {
            let tokens = completion_tokens(&bytes).unwrap_or(g.max_tokens);
            guard.end(End::Completed {
                ttft_s: total,
                total_s: total,
                tokens,
                bytes: bytes.len() as u64,
            });
        } else {
            guard.end(End::Failed);
        }
        return out
            .body(Body::from(bytes))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    }
}

fn completion_tokens(body: &[u8]) -> Option<u32> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("usage")?
        .get("completion_tokens")?
        .as_u64()
        .map(|n| n.min(u32::MAX as u64) as u32)
}

/// Relay a backend's event stream to the client, reporting the first token and the end.
fn relay(
    resp: reqwest::Response,
    guard: Guard,
    sent: Instant,
    s: Arc<State>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    struct St {
        inner: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<Bytes>> + Send>>,
        guard: Guard,
        sent: Instant,
        first: Option<f64>,
        chunks: u32,
        usage: Option<u32>,
        bytes: u64,
        sse: SseReader,
        events: Vec<String>,
        finished: bool,
        s: Arc<State>,
    }
    let st = St {
        inner: Box::pin(resp.bytes_stream()),
        guard,
        sent,
        first: None,
        chunks: 0,
        usage: None,
        bytes: 0,
        sse: SseReader::default(),
        events: Vec::new(),
        finished: false,
        s,
    };
    futures_util::stream::unfold(st, |mut st| async move {
        if st.finished {
            return None;
        }
        match st.inner.next().await {
            Some(Ok(b)) => {
                st.bytes += b.len() as u64;
                st.sse.feed(&b, &mut st.events);
                for e in st.events.drain(..) {
                    if e == "[DONE]" {
                        continue;
                    }
                    st.chunks += 1;
                    if st.first.is_none() {
                        st.first = Some(st.sent.elapsed().as_secs_f64());
                        st.s.send(Msg::FirstToken { id: st.guard.id });
                    }
                    if let Some(n) = completion_tokens(e.as_bytes()) {
                        st.usage = Some(n);
                    }
                }
                Some((Ok(b), st))
            }
            Some(Err(e)) => {
                st.finished = true;
                st.guard.end(End::Failed);
                let err = ApiError {
                    status: 502,
                    message: format!("the backend failed while streaming: {e}"),
                    kind: "server_error",
                    param: None,
                    code: "backend_failed",
                };
                Some((Ok(Bytes::from(format!("data: {}\n\n", err.body()))), st))
            }
            None => {
                let total = st.sent.elapsed().as_secs_f64();
                st.guard.end(End::Completed {
                    ttft_s: st.first.unwrap_or(total),
                    total_s: total,
                    tokens: st.usage.unwrap_or(st.chunks),
                    bytes: st.bytes,
                });
                None
            }
        }
    })
}

/// Probe every backend (`GET /v1/models`) every `probe_interval`; the round trip is the link's
/// measured RTT, a failure marks the backend unhealthy, a success healthy again.
pub(crate) async fn probe_loop(s: Arc<State>) {
    let timeout = s.cfg.connect_timeout.max(Duration::from_millis(100));
    loop {
        for (i, b) in s.backends.iter().enumerate() {
            let mut rb = s
                .client
                .get(format!("{}/v1/models", b.url))
                .timeout(timeout);
            if let Some(a) = &b.auth {
                rb = rb.header(header::AUTHORIZATION, a);
            }
            let t = Instant::now();
            let ok = matches!(rb.send().await, Ok(r) if r.status().is_success());
            s.send(Msg::Probe {
                server: i as ServerId,
                rtt_s: ok.then(|| t.elapsed().as_secs_f64()),
            });
        }
        tokio::time::sleep(s.cfg.probe_interval).await;
    }
}

/// The answer to a request that arrives, or waits for its decision, while the gateway drains.
fn shutting_down() -> ApiError {
    ApiError {
        status: 503,
        message: "the gateway is shutting down".into(),
        kind: "server_error",
        param: None,
        code: "shutting_down",
    }
}
