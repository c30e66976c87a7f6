//! `perllm load SCENARIO --url URL`: replay the scenario's workload (its trace or its synthetic
//! arrivals) against any OpenAI-compatible endpoint in real time, open loop (each request is sent
//! at its arrival time whatever happened to the earlier ones), and write the simulator's
//! per-request CSV from what a client sees.

use crate::error::{CliError, Result};
use clap::Args;
use futures_util::StreamExt;
use perllm_core::spec::Nanos;
use perllm_core::{Request, World};
use perllm_gateway::{BACKEND_HEADER, RequestLog, Row, secs};
use perllm_openai::sse::SseReader;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// `perllm load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Scenario file whose workload is replayed (arrival times, sizes, models, SLO classes).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Base URL of the OpenAI-compatible endpoint (a gateway, or one server).
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// Override a scenario value, e.g. `scenario.duration=30s` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = crate::util::parse_override)]
    pub set: Vec<(String, String)>,
    /// Seed of the synthetic workload (default: the scenario's).
    #[arg(short, long, value_name = "N")]
    pub seed: Option<u64>,
    /// Write one CSV row per request here (the simulator's columns).
    #[arg(short, long, value_name = "FILE.csv")]
    pub out: PathBuf,
    /// Send at most this many requests.
    #[arg(long, value_name = "N")]
    pub max_requests: Option<u64>,
    /// Name of an environment variable holding the API key to send.
    #[arg(long, value_name = "VAR")]
    pub api_key_env: Option<String>,
    /// Use `/v1/chat/completions` instead of `/v1/completions`.
    #[arg(long)]
    pub chat: bool,
    /// Give up on a request after this long.
    #[arg(long, value_name = "DURATION", default_value = "600s", value_parser = crate::util::parse_duration)]
    pub timeout: Duration,
}

struct Seen {
    status: &'static str,
    reason: Option<String>,
    server: Option<String>,
    ttft_ns: Option<Nanos>,
    end_ns: Nanos,
    tokens: Option<u32>,
    bytes: u64,
}

/// A prompt of `tokens` tokens at 4 bytes per token (varied text, so caches do not help).
fn prompt(id: u64, tokens: u32) -> String {
    let words = [
        "edge ", "clou ", "slot ", "band ", "link ", "node ", "task ", "gpu  ",
    ];
    let mut s = String::with_capacity(tokens as usize * 4 + 16);
    s.push_str(&format!("{id:>7} "));
    while s.len() < tokens as usize * 4 {
        let w = words[(s.len() / 5 + id as usize) % words.len()];
        s.push_str(&w[..4]);
    }
    s.truncate((tokens as usize * 4).max(1));
    s
}

async fn one(
    client: reqwest::Client,
    url: String,
    auth: Option<String>,
    body: String,
    slo: String,
    start: Instant,
    timeout: Duration,
) -> Seen {
    let now = |s: Instant| s.elapsed().as_nanos() as Nanos;
    let mut rb = client
        .post(url)
        .header("content-type", "application/json")
        .header(perllm_gateway::SLO_HEADER, slo)
        .timeout(timeout)
        .body(body);
    if let Some(a) = auth {
        rb = rb.header("authorization", a);
    }
    let fail = |reason: String| Seen {
        status: "failed",
        reason: Some(reason),
        server: None,
        ttft_ns: None,
        end_ns: now(start),
        tokens: None,
        bytes: 0,
    };
    let resp = match rb.send().await {
        Ok(r) => r,
        Err(e) => return fail(format!("connection: {e}").replace(',', ";")),
    };
    let status = resp.status();
    let server = resp
        .headers()
        .get(BACKEND_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    if status.as_u16() == 429 {
        let reason = resp
            .headers()
            .get("x-perllm-reject-reason")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("http_429")
            .to_string();
        return Seen {
            status: "rejected",
            reason: Some(reason),
            ..fail(String::new())
        };
    }
    if !status.is_success() {
        return fail(format!("http_{}", status.as_u16()));
    }
    let mut sse = SseReader::default();
    let mut events = Vec::new();
    let mut ttft = None;
    let mut tokens = None;
    let mut chunks = 0u32;
    let mut bytes = 0u64;
    let mut stream = resp.bytes_stream();
    let mut error = None;
    while let Some(b) = stream.next().await {
        match b {
            Ok(b) => {
                bytes += b.len() as u64;
                sse.feed(&b, &mut events);
                for e in events.drain(..) {
                    if e == "[DONE]" {
                        continue;
                    }
                    let v: serde_json::Value = serde_json::from_str(&e).unwrap_or_default();
                    if v.get("error").is_some() {
                        error = Some("stream_error".to_string());
                        continue;
                    }
                    chunks += 1;
                    if ttft.is_none() {
                        ttft = Some(now(start));
                    }
                    if let Some(n) = v
                        .get("usage")
                        .and_then(|u| u.get("completion_tokens"))
                        .and_then(|n| n.as_u64())
                    {
                        tokens = Some(n as u32);
                    }
                }
            }
            Err(e) => {
                error = Some(format!("stream: {e}").replace(',', ";"));
                break;
            }
        }
    }
    if let Some(r) = error {
        return Seen { server, ..fail(r) };
    }
    Seen {
        status: "completed",
        reason: None,
        server,
        ttft_ns: ttft,
        end_ns: now(start),
        tokens: tokens.or(Some(chunks)),
        bytes,
    }
}

/// Replay the workload and write the CSV; prints a summary.
pub fn load(a: LoadArgs, term: crate::term::Term) -> Result<()> {
    let loaded = crate::scenario::load(&a.file, &a.set, term.color_stderr)?;
    let mut sc = loaded.scenario.clone();
    crate::scenario::apply_cli(&mut sc, a.seed, None, false);
    let world: World = crate::scenario::build(&loaded, &sc)?;
    let open: &dyn Fn(&str) -> std::io::Result<perllm_core::workload::Reader> =
        &crate::runner::open_trace;
    let mut source = perllm_core::workload::source_for(&world, open)
        .map_err(|e| CliError::input(format!("cannot read the workload: {e}")))?;
    let mut reqs: Vec<Request> = Vec::new();
    while let Some(r) = source.next_request() {
        let r = r.map_err(|e| CliError::input(format!("cannot read the workload: {e}")))?;
        reqs.push(r);
        if a.max_requests.is_some_and(|m| reqs.len() as u64 >= m) {
            break;
        }
    }
    let auth = match &a.api_key_env {
        Some(v) => Some(format!(
            "Bearer {}",
            std::env::var(v)
                .map_err(|_| CliError::input(format!("the API key variable `{v}` is not set")))?
        )),
        None => None,
    };
    let file = std::fs::File::create(&a.out)
        .map_err(|e| CliError::input(format!("cannot create `{}`: {e}", a.out.display())))?;
    let mut log = RequestLog::new(Box::new(std::io::BufWriter::new(file)));
    let path = if a.chat {
        "/v1/chat/completions"
    } else {
        "/v1/completions"
    };
    let url = format!("{}{path}", a.url.trim_end_matches('/'));
    let rt = super::runtime(2)?;
    let n = reqs.len();
    let results: Vec<(Request, Seen)> = rt.block_on(async {
        let client = reqwest::Client::builder()
            .tcp_nodelay(true)
            .build()
            .map_err(|e| CliError::run(format!("HTTP client: {e}")))?;
        let start = Instant::now();
        let mut tasks = Vec::with_capacity(n);
        for r in &reqs {
            let at = start + Duration::from_nanos(r.arrival_ns);
            tokio::time::sleep_until(at.into()).await;
            let model = &world.models[r.model as usize].name;
            let text = prompt(r.id, r.prompt_tokens);
            let body = if a.chat {
                serde_json::json!({"model": model, "messages": [{"role": "user", "content": text}],
                    "max_tokens": r.output_tokens, "stream": true,
                    "stream_options": {"include_usage": true}})
            } else {
                serde_json::json!({"model": model, "prompt": text,
                    "max_tokens": r.output_tokens, "stream": true,
                    "stream_options": {"include_usage": true}})
            };
            tasks.push(tokio::spawn(one(
                client.clone(),
                url.clone(),
                auth.clone(),
                body.to_string(),
                world.slos[r.slo as usize].name.clone(),
                start,
                a.timeout,
            )));
        }
        let mut out = Vec::with_capacity(n);
        for (r, t) in reqs.iter().zip(tasks) {
            let seen = t
                .await
                .map_err(|e| CliError::run(format!("a request task failed: {e}")))?;
            out.push((*r, seen));
        }
        Ok::<_, CliError>(out)
    })?;
    let mut lat = Vec::new();
    let mut ttfts = Vec::new();
    let (mut met, mut done, mut rejected, mut failed) = (0u64, 0u64, 0u64, 0u64);
    let mut placed: std::collections::BTreeMap<String, u64> = Default::default();
    for (r, s) in &results {
        let mut row = Row::request(&world, r);
        row.set("status", s.status).set("ended_s", secs(s.end_ns));
        if let Some(x) = &s.reason {
            row.set("reject_reason", x);
        }
        if let Some(sv) = &s.server {
            row.set("server", sv);
            if let Some(id) = world.server_id(sv) {
                row.set("tier", world.servers[id as usize].tier.as_str());
            }
            *placed.entry(sv.clone()).or_default() += 1;
        }
        let deadline = world.slos[r.slo as usize].deadline_ns;
        match s.status {
            "completed" => {
                done += 1;
                let total = s.end_ns.saturating_sub(r.arrival_ns);
                let ok = total <= deadline;
                met += ok as u64;
                lat.push(total as f64 / 1e9);
                row.set("latency_s", secs(total)).set("met", ok);
                if let Some(t) = s.ttft_ns {
                    let t = t.saturating_sub(r.arrival_ns);
                    ttfts.push(t as f64 / 1e9);
                    row.set("ttft_s", secs(t))
                        .set("decode_s", secs(s.end_ns.saturating_sub(r.arrival_ns + t)));
                }
                if let Some(k) = s.tokens {
                    row.set("output_tokens", k);
                }
                row.set("output_bytes", s.bytes);
            }
            "rejected" => {
                rejected += 1;
                row.set("met", false);
            }
            _ => {
                failed += 1;
                row.set("met", false);
            }
        }
        log.write(&row);
    }
    log.finish()
        .map_err(|e| CliError::run(format!("cannot write `{}`: {e}", a.out.display())))?;
    let q = |v: &mut Vec<f64>, p: f64| crate::fidelity::quantile(v, p);
    let total = results.len().max(1) as f64;
    println!(
        "{} requests: {done} completed, {rejected} rejected, {failed} failed; attainment {:.1}% of all requests",
        results.len(),
        met as f64 * 100.0 / total
    );
    if !lat.is_empty() {
        println!(
            "latency p50 {:.3} s, p90 {:.3} s, p99 {:.3} s; TTFT p50 {:.3} s, p99 {:.3} s",
            q(&mut lat, 0.5),
            q(&mut lat, 0.9),
            q(&mut lat, 0.99),
            q(&mut ttfts, 0.5),
            q(&mut ttfts, 0.99)
        );
    }
    let shares: Vec<String> = placed
        .iter()
        .map(|(k, v)| format!("{k} {:.1}%", *v as f64 * 100.0 / total))
        .collect();
    if !shares.is_empty() {
        println!("placement: {}", shares.join(", "));
    }
    Ok(())
}
