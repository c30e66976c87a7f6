//! perllm-engine behind the OpenAI-compatible API (`perllm engine serve`).
//!
//! One thread owns the [`Engine`] and runs its continuous batching: requests arrive over a
//! channel, join the batch at the next step, and every step's tokens go to the waiting
//! handlers. A handler whose client went away drops its receiver; the engine thread sees the
//! closed channel at the next token and cancels the sequence, freeing its batch slot and KV cache.
//!
//! Text: the model has random weights and no tokenizer, so a prompt is cut into tokens of
//! [`BYTES_PER_TOKEN`] bytes (the same ratio the gateway counts with), and each generated token is
//! written as 4 characters (a space and 3 hex digits of its id).

use crate::wire::{self, ApiError, BYTES_PER_TOKEN, Endpoint, GenRequest};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use perllm_engine::{Engine, EngineConfig, Request, TokenEvent};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// How the engine server runs.
#[derive(Clone, Debug)]
pub struct EngineServerConfig {
    /// The engine.
    pub engine: EngineConfig,
    /// The model name it answers to (`/v1/models`, the requests' `model`).
    pub model: String,
    /// API keys a client must present as `Authorization: Bearer KEY` (none: no check).
    pub api_keys: Vec<String>,
}

enum Cmd {
    Submit(Request, mpsc::UnboundedSender<Result<TokenEvent, String>>),
}

struct Shared {
    cfg: EngineServerConfig,
    tx: std::sync::mpsc::Sender<Cmd>,
    next_id: AtomicU64,
    created: u64,
}

/// Build the engine (allocating its weights and KV caches) and start its thread; the router
/// serves it. Fails when the engine configuration does not work.
pub fn router(cfg: EngineServerConfig) -> Result<Router, perllm_engine::EngineError> {
    let engine = Engine::new(cfg.engine.clone())?;
    let (tx, rx) = std::sync::mpsc::channel::<Cmd>();
    std::thread::Builder::new()
        .name("perllm-engine-driver".into())
        .spawn(move || drive(engine, rx))
        .map_err(|e| perllm_engine::EngineError::Threads {
            threads: 1,
            message: e.to_string(),
        })?;
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let shared = Arc::new(Shared {
        cfg,
        tx,
        next_id: AtomicU64::new(1),
        created,
    });
    Ok(Router::new()
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/models", get(models))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(shared))
}

/// The engine thread: admit what arrived, step, hand out tokens; block when idle. Ends when
/// every sender (the router) is gone.
fn drive(mut engine: Engine, rx: std::sync::mpsc::Receiver<Cmd>) {
    let mut subs: HashMap<u64, mpsc::UnboundedSender<Result<TokenEvent, String>>> = HashMap::new();
    loop {
        let first = if engine.is_idle() {
            match rx.recv() {
                Ok(c) => Some(c),
                Err(_) => return,
            }
        } else {
            None
        };
        for cmd in first
            .into_iter()
            .chain(std::iter::from_fn(|| rx.try_recv().ok()))
        {
            match cmd {
                Cmd::Submit(req, tx) => {
                    let id = req.id;
                    match engine.submit(req) {
                        Ok(()) => {
                            subs.insert(id, tx);
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e.to_string()));
                        }
                    }
                }
            }
        }
        // Clients gone before their first token.
        subs.retain(|&id, tx| {
            if tx.is_closed() {
                engine.cancel(id);
                false
            } else {
                true
            }
        });
        match engine.step() {
            Ok(Some(rep)) => {
                for ev in rep.events {
                    let gone = match subs.get(&ev.id) {
                        Some(tx) => tx.send(Ok(ev)).is_err(),
                        None => true,
                    };
                    if gone && !ev.finished {
                        engine.cancel(ev.id);
                        subs.remove(&ev.id);
                    } else if ev.finished {
                        subs.remove(&ev.id);
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                // A failed forward pass fails every running request; the engine stays up.
                let msg = format!("engine step failed: {e}");
                for (id, tx) in subs.drain() {
                    let _ = tx.send(Err(msg.clone()));
                    engine.cancel(id);
                }
            }
        }
    }
}

/// Prompt text to token ids: [`BYTES_PER_TOKEN`]-byte chunks, each folded into the vocabulary.
pub fn tokenize(text: &str, vocab: u32) -> Vec<u32> {
    let b = text.as_bytes();
    if b.is_empty() {
        return vec![0];
    }
    b.chunks(BYTES_PER_TOKEN)
        .map(|c| {
            let mut v: u32 = 0;
            for &x in c {
                v = v.wrapping_mul(257).wrapping_add(x as u32);
            }
            v % vocab
        })
        .collect()
}

/// The text of a generated token: 4 characters.
pub fn detokenize(token: u32) -> String {
    format!(" {:03x}", token & 0xfff)
}

fn json_response(status: StatusCode, v: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

/// An [`ApiError`] as an HTTP response.
pub fn error_response(e: &ApiError) -> Response {
    json_response(
        StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
        &e.body(),
    )
}

/// Check `Authorization: Bearer KEY` against `keys` (empty: anything goes).
pub fn check_key(headers: &HeaderMap, keys: &[String]) -> Result<(), ApiError> {
    if keys.is_empty() {
        return Ok(());
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(k) if keys.iter().any(|x| x == k) => Ok(()),
        Some(_) => Err(ApiError {
            status: 401,
            message: "the API key is not valid".into(),
            kind: "invalid_request_error",
            param: None,
            code: "invalid_api_key",
        }),
        None => Err(ApiError {
            status: 401,
            message: "an API key is required: send `Authorization: Bearer <key>`".into(),
            kind: "invalid_request_error",
            param: None,
            code: "missing_api_key",
        }),
    }
}

async fn models(State(s): State<Arc<Shared>>) -> Response {
    json_response(
        StatusCode::OK,
        &serde_json::json!({
            "object": "list",
            "data": [{"id": s.cfg.model, "object": "model", "created": s.created, "owned_by": "perllm-engine"}],
        }),
    )
}

async fn completions(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    generate(s, Endpoint::Completions, &headers, &body).await
}

async fn chat(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    generate(s, Endpoint::Chat, &headers, &body).await
}

/// A response's `choices[0]` piece for `text`.
fn choice(endpoint: Endpoint, text: &str, stream: bool, finish: Option<&str>) -> serde_json::Value {
    match (endpoint, stream) {
        (Endpoint::Completions, _) => {
            serde_json::json!({"index": 0, "text": text, "logprobs": null, "finish_reason": finish})
        }
        (Endpoint::Chat, false) => serde_json::json!({
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": finish,
        }),
        (Endpoint::Chat, true) => serde_json::json!({
            "index": 0,
            "delta": {"content": text},
            "finish_reason": finish,
        }),
    }
}

async fn generate(
    s: Arc<Shared>,
    endpoint: Endpoint,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    if let Err(e) = check_key(headers, &s.cfg.api_keys) {
        return error_response(&e);
    }
    let ec = &s.cfg.engine;
    let req: GenRequest = match wire::parse(endpoint, body, ec.max_seq_len.saturating_sub(1).max(1))
    {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    if req.model != s.cfg.model {
        return error_response(&ApiError {
            status: 404,
            message: format!(
                "the model `{}` does not exist here; this server serves `{}`",
                req.model, s.cfg.model
            ),
            kind: "invalid_request_error",
            param: Some("model"),
            code: "model_not_found",
        });
    }
    let prompt = tokenize(&req.prompt, ec.vocab);
    if prompt.len() as u64 + req.max_tokens as u64 > ec.max_seq_len as u64 {
        return error_response(&ApiError::invalid(
            Some("max_tokens"),
            "context_length_exceeded",
            format!(
                "prompt ({} tokens) + max_tokens ({}) exceeds this model's context of {} tokens",
                prompt.len(),
                req.max_tokens,
                ec.max_seq_len
            ),
        ));
    }
    let prompt_tokens = prompt.len() as u32;
    let id = s.next_id.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let sent = s.tx.send(Cmd::Submit(
        Request {
            id,
            prompt,
            max_tokens: req.max_tokens,
        },
        tx,
    ));
    if sent.is_err() {
        return error_response(&ApiError {
            status: 503,
            message: "the engine has stopped".into(),
            kind: "server_error",
            param: None,
            code: "engine_stopped",
        });
    }
    let object = match (endpoint, req.stream) {
        (Endpoint::Completions, _) => "text_completion",
        (Endpoint::Chat, false) => "chat.completion",
        (Endpoint::Chat, true) => "chat.completion.chunk",
    };
    let rid = format!("cmpl-{id}");
    let created = s.created;
    let model = s.cfg.model.clone();
    let max_tokens = req.max_tokens;
    if req.stream {
        let stream = async_stream(rx, move |ev: Result<TokenEvent, String>| match ev {
            Ok(ev) => {
                let finish = ev.finished.then_some("length");
                let mut chunk = serde_json::json!({
                    "id": rid, "object": object, "created": created, "model": model,
                    "choices": [choice(endpoint, &detokenize(ev.token), true, finish)],
                });
                if ev.finished {
                    chunk["usage"] = usage(prompt_tokens, max_tokens);
                }
                let mut out = format!("data: {chunk}\n\n");
                if ev.finished {
                    out.push_str("data: [DONE]\n\n");
                }
                (Bytes::from(out), ev.finished)
            }
            Err(m) => {
                let e = ApiError {
                    status: 500,
                    message: m,
                    kind: "server_error",
                    param: None,
                    code: "engine_error",
                };
                (Bytes::from(format!("data: {}\n\n", e.body())), true)
            }
        });
        return Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/event-stream")
            .header(header::CACHE_CONTROL, "no-cache")
            .body(Body::from_stream(stream))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    }
    // Non-streaming: dropping `rx` (the client went away and the handler was dropped) makes the
    // engine thread cancel the sequence.
    let mut text = String::with_capacity(max_tokens as usize * 4);
    while let Some(ev) = rx.recv().await {
        match ev {
            Ok(ev) => {
                text.push_str(&detokenize(ev.token));
                if ev.finished {
                    return json_response(
                        StatusCode::OK,
                        &serde_json::json!({
                            "id": rid, "object": object, "created": created, "model": model,
                            "choices": [choice(endpoint, &text, false, Some("length"))],
                            "usage": usage(prompt_tokens, max_tokens),
                        }),
                    );
                }
            }
            Err(m) => {
                return error_response(&ApiError {
                    status: 500,
                    message: m,
                    kind: "server_error",
                    param: None,
                    code: "engine_error",
                });
            }
        }
    }
    error_response(&ApiError {
        status: 503,
        message: "the engine stopped before the request finished".into(),
        kind: "server_error",
        param: None,
        code: "engine_stopped",
    })
}

fn usage(prompt: u32, completion: u32) -> serde_json::Value {
    serde_json::json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt as u64 + completion as u64,
    })
}

/// A byte stream from the token channel: `f` renders each event and says whether it was the last.
fn async_stream<F>(
    rx: mpsc::UnboundedReceiver<Result<TokenEvent, String>>,
    f: F,
) -> impl futures_util::Stream<Item = Result<Bytes, std::convert::Infallible>> + Send + 'static
where
    F: FnMut(Result<TokenEvent, String>) -> (Bytes, bool) + Send + 'static,
{
    futures_util::stream::unfold((rx, f, false), |(mut rx, mut f, done)| async move {
        if done {
            return None;
        }
        let ev = rx.recv().await?;
        let (b, last) = f(ev);
        Some((Ok(b), (rx, f, last)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_follow_the_byte_ratio() {
        assert_eq!(tokenize("", 256).len(), 1);
        assert_eq!(tokenize("abcdefghi", 256).len(), 3);
        assert!(tokenize("abcdefghi", 7).iter().all(|&t| t < 7));
        assert_eq!(detokenize(0xabcd).len(), 4);
    }
}
