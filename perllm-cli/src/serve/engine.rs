//! `perllm engine serve`: perllm-engine (continuous batching) behind the OpenAI-compatible API.

use crate::error::{CliError, Result};
use crate::fidelity::EngineArgs;
use clap::Args;
use perllm_openai::engine_server::{EngineServerConfig, router};
use std::time::Duration;

/// `perllm engine serve`.
#[derive(Debug, Args)]
pub struct EngineServeArgs {
    /// The engine.
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Address to listen on (port 0: any free port; the address is printed on stdout).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8000")]
    pub listen: String,
    /// Model name the server answers to (what clients put in `model`).
    #[arg(long, value_name = "NAME", default_value = "engine")]
    pub model: String,
    /// Name of an environment variable holding the API keys clients must present, comma-separated
    /// (unset: no check).
    #[arg(long, value_name = "VAR")]
    pub api_keys_env: Option<String>,
    /// On SIGTERM or Ctrl-C, wait this long for requests in flight before exiting.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::util::parse_duration)]
    pub drain: Duration,
}

/// Read a comma-separated key list from an environment variable.
pub fn keys_from_env(var: Option<&str>) -> Result<Vec<String>> {
    let Some(var) = var else {
        return Ok(Vec::new());
    };
    let v = std::env::var(var)
        .map_err(|_| CliError::input(format!("the API key variable `{var}` is not set")))?;
    let keys: Vec<String> = v
        .split(',')
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .collect();
    if keys.is_empty() {
        return Err(CliError::input(format!(
            "the API key variable `{var}` holds no key"
        )));
    }
    Ok(keys)
}

/// Run the engine server until SIGTERM or Ctrl-C.
pub fn engine_serve(a: EngineServeArgs) -> Result<()> {
    let cfg = EngineServerConfig {
        engine: a.engine.config()?,
        model: a.model.clone(),
        api_keys: keys_from_env(a.api_keys_env.as_deref())?,
    };
    let app = router(cfg).map_err(|e| match e {
        perllm_engine::EngineError::Config(c) => CliError::input(c.to_string()),
        o => CliError::run(o.to_string()),
    })?;
    let rt = super::runtime(2)?;
    rt.block_on(async move {
        let (l, addr) = super::bind(&a.listen).await?;
        println!("perllm engine serve: model `{}` on http://{addr}", a.model);
        perllm_openai::serve_until(l, app, perllm_openai::termination(), a.drain)
            .await
            .map_err(|e| CliError::run(format!("the server failed: {e}")))
    })
}
