//! perllm-openai: the OpenAI-compatible HTTP API perllm speaks, and perllm-engine served over it.
//!
//! - [`wire`]: the `/v1/completions` and `/v1/chat/completions` requests, their validation
//!   (what a gateway refuses before any backend sees it), and OpenAI's error body.
//! - [`engine_server`]: `perllm engine serve`, the candle engine with its continuous batching
//!   behind that API (streaming with server-sent events, and not), cancelling a sequence when its
//!   client goes away.
//! - [`sse`]: reading a server-sent-events byte stream, for clients (the gateway, `perllm load`).

pub mod engine_server;
pub mod sse;
pub mod wire;

/// Serve `router` on `listener` until `shutdown` resolves, then stop accepting and wait for the
/// open requests to finish (at most `drain`; what is still open then is cut).
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    drain: std::time::Duration,
) -> std::io::Result<()> {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = tx.send(());
    });
    let deadline = async move {
        if rx.await.is_ok() {
            tokio::time::sleep(drain).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        r = server.into_future() => r,
        () = deadline => Ok(()),
    }
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
pub async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
