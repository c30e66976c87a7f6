//! Real traffic: `perllm serve` (the gateway), `perllm engine serve` (the engine behind the
//! OpenAI API), `perllm load` (an open-loop load generator) and `perllm link-relay` (the
//! latency of an emulated link). docs/serve.md is the guide.

pub mod engine;
pub mod gateway;
pub mod load;
pub mod relay;

use crate::error::{CliError, Result};

/// A multi-threaded tokio runtime with `threads` workers (0: one per core).
pub fn runtime(threads: usize) -> Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if threads > 0 {
        b.worker_threads(threads);
    }
    b.enable_all()
        .build()
        .map_err(|e| CliError::run(format!("cannot start the async runtime: {e}")))
}

/// Bind a listening socket, naming the address in the error, and read the address it got (the
/// port chosen for port 0).
pub async fn bind(addr: &str) -> Result<(tokio::net::TcpListener, std::net::SocketAddr)> {
    let l = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| CliError::input(format!("cannot listen on `{addr}`: {e}")))?;
    let bound = l
        .local_addr()
        .map_err(|e| CliError::run(format!("cannot read the bound address: {e}")))?;
    Ok((l, bound))
}
