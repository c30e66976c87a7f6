//! Gateway overhead benchmark (BENCHMARKS.md). Three roles, one binary:
//!
//! - `gateway_bench stub ADDR`: an OpenAI-compatible backend that answers instantly (a fixed
//!   2-token completion); streamed, it sends the first event at once and the last one second
//!   later, so a burst of streaming clients is all open at the same time.
//! - `gateway_bench gateway SCENARIO ADDR`: the gateway (the scenario's policy if built in,
//!   `assign-all` for a policy that costs nothing, else `perllm`) on one worker thread, to pin with `taskset -c 0`.
//! - `gateway_bench latency DIRECT_URL GATEWAY_URL N`: N sequential non-streaming requests,
//!   alternating direct to the stub and through the gateway; prints p50/p99 of each and of the
//!   added latency (gateway minus direct, quantile by quantile).
//! - `gateway_bench rate URL SECONDS CONCURRENCY`: closed-loop non-streaming requests from
//!   CONCURRENCY connections for SECONDS; prints requests/s and errors.
//! - `gateway_bench streams URL CLIENTS`: CLIENTS concurrent streaming requests at once; prints
//!   how many completed with `[DONE]` and how many failed.
//!
//! Run it in release: `cargo run --release -p perllm-gateway --example gateway_bench -- ...`;
//! pin the gateway with `taskset` (docs in BENCHMARKS.md).

use axum::Router;
use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::time::{Duration, Instant};

const BODY: &str = r#"{"model":"tiny","prompt":"hello","max_tokens":2}"#;
const STREAM_BODY: &str = r#"{"model":"tiny","prompt":"hello","max_tokens":2,"stream":true}"#;

async fn complete(body: axum::body::Bytes) -> Response {
    let stream = body.windows(13).any(|w| w == b"\"stream\":true");
    if stream {
        let chunk = r#"{"id":"x","object":"text_completion","choices":[{"index":0,"text":" abc","finish_reason":null}]}"#;
        let last = r#"{"id":"x","object":"text_completion","choices":[{"index":0,"text":" def","finish_reason":"length"}],"usage":{"prompt_tokens":2,"completion_tokens":2,"total_tokens":4}}"#;
        // The first event at once, the rest after a second: every stream of a burst is open at
        // the same time.
        let first = format!("data: {chunk}\n\n");
        let rest = format!("data: {last}\n\ndata: [DONE]\n\n");
        let s = futures_util::stream::unfold(0u8, move |k| {
            let (first, rest) = (first.clone(), rest.clone());
            async move {
                match k {
                    0 => Some((Ok::<_, std::convert::Infallible>(first), 1)),
                    1 => {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        Some((Ok(rest), 2))
                    }
                    _ => None,
                }
            }
        });
        return (
            [(header::CONTENT_TYPE, "text/event-stream")],
            Body::from_stream(s),
        )
            .into_response();
    }
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"id":"x","object":"text_completion","created":0,"model":"tiny","choices":[{"index":0,"text":" abc def","logprobs":null,"finish_reason":"length"}],"usage":{"prompt_tokens":2,"completion_tokens":2,"total_tokens":4}}"#,
    )
        .into_response()
}

/// Every request to the first server hosting its model (policy `assign-all`): the gateway's own
/// cost with a policy that costs nothing.
fn assign_all() -> impl perllm_core::Policy {
    perllm_core::simple::from_fn("assign-all", |view, p| {
        match view.candidates(&p.request).next() {
            Some(s) => perllm_core::Decision::Assign(s),
            None => perllm_core::Decision::Defer,
        }
    })
}

fn q(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    match args.get(1).map(String::as_str) {
        Some("stub") => rt.block_on(async {
            let app = Router::new()
                .route("/v1/completions", post(complete))
                .route("/v1/chat/completions", post(complete))
                .route(
                    "/v1/models",
                    get(|| async { r#"{"object":"list","data":[{"id":"tiny","object":"model"}]}"# }),
                );
            let l = tokio::net::TcpListener::bind(&args[2]).await.unwrap();
            println!("stub on http://{}", l.local_addr().unwrap());
            axum::serve(l, app).await.unwrap();
        }),
        Some("gateway") => rt.block_on(async {
            let l = perllm_dsl::load_file(std::path::Path::new(&args[2])).expect("scenario");
            let world: &'static perllm_core::World =
                Box::leak(Box::new(l.scenario.build().expect("valid scenario")));
            let policy: Box<dyn perllm_core::Policy> = if world.scenario.policy.name == "assign-all" {
                Box::new(assign_all())
            } else {
                perllm_core::policies::builtin(&world.scenario.policy, world)
                .unwrap_or_else(|| {
                    perllm_core::policies::builtin(
                        &perllm_core::spec::PolicySpec {
                            name: "perllm".into(),
                            params: Default::default(),
                        },
                        world,
                    )
                    .unwrap()
                })
                .expect("policy")
            };
            let backends = perllm_gateway::backends(world, &|v| std::env::var(v).ok()).unwrap();
            let gw = perllm_gateway::Gateway::start(
                perllm_gateway::GatewayConfig::default(),
                perllm_gateway::Parts {
                    world,
                    policy,
                    cost: std::sync::Arc::new(perllm_core::Roofline::default()),
                    observers: Box::new(|_| Vec::new()),
                    requests: None,
                    energy: None,
                },
                backends,
            )
            .unwrap();
            let l = tokio::net::TcpListener::bind(&args[3]).await.unwrap();
            println!("gateway ({}) on http://{}", world.scenario.policy.name, l.local_addr().unwrap());
            axum::serve(l, gw.router.clone()).await.unwrap();
        }),
        Some("latency") => rt.block_on(async {
            let (direct, gw, n): (&str, &str, usize) = (&args[2], &args[3], args[4].parse().unwrap());
            let c = reqwest::Client::builder().tcp_nodelay(true).build().unwrap();
            let one = |url: String| {
                let c = c.clone();
                async move {
                    let t = Instant::now();
                    let r = c.post(url).header("content-type", "application/json").body(BODY).send().await.unwrap();
                    assert!(r.status().is_success(), "{}", r.status());
                    let _ = r.bytes().await.unwrap();
                    t.elapsed().as_secs_f64() * 1e6
                }
            };
            // Warm-up (connections, caches).
            for _ in 0..200 {
                one(format!("{direct}/v1/completions")).await;
                one(format!("{gw}/v1/completions")).await;
            }
            let (mut d, mut g) = (Vec::with_capacity(n), Vec::with_capacity(n));
            for _ in 0..n {
                d.push(one(format!("{direct}/v1/completions")).await);
                g.push(one(format!("{gw}/v1/completions")).await);
            }
            let (d50, d99, g50, g99) = (q(&mut d, 0.5), q(&mut d, 0.99), q(&mut g, 0.5), q(&mut g, 0.99));
            println!("n = {n}: direct p50 {d50:.0} us p99 {d99:.0} us; via gateway p50 {g50:.0} us p99 {g99:.0} us; added p50 {:.0} us p99 {:.0} us", g50 - d50, g99 - d99);
        }),
        Some("rate") => rt.block_on(async {
            let (url, secs, conc): (&str, f64, usize) = (&args[2], args[3].parse().unwrap(), args[4].parse().unwrap());
            let c = reqwest::Client::builder().tcp_nodelay(true).pool_max_idle_per_host(conc).build().unwrap();
            let end = Instant::now() + Duration::from_secs_f64(secs);
            let mut hs = Vec::new();
            for _ in 0..conc {
                let (c, url) = (c.clone(), format!("{url}/v1/completions"));
                hs.push(tokio::spawn(async move {
                    let (mut ok, mut err) = (0u64, 0u64);
                    while Instant::now() < end {
                        match c.post(&url).header("content-type", "application/json").body(BODY).send().await {
                            Ok(r) if r.status().is_success() => {
                                let _ = r.bytes().await;
                                ok += 1
                            }
                            _ => err += 1,
                        }
                    }
                    (ok, err)
                }));
            }
            let (mut ok, mut err) = (0, 0);
            for h in hs {
                let (o, e) = h.await.unwrap();
                ok += o;
                err += e;
            }
            println!("{:.0} requests/s ({ok} ok, {err} errors in {secs} s, {conc} connections)", ok as f64 / secs);
        }),
        Some("streams") => rt.block_on(async {
            let (url, clients): (&str, usize) = (&args[2], args[3].parse().unwrap());
            let c = reqwest::Client::builder().pool_max_idle_per_host(clients).build().unwrap();
            let t = Instant::now();
            let mut hs = Vec::new();
            for _ in 0..clients {
                let (c, url) = (c.clone(), format!("{url}/v1/completions"));
                hs.push(tokio::spawn(async move {
                    match c.post(&url).header("content-type", "application/json").body(STREAM_BODY).send().await {
                        Ok(r) if r.status().is_success() => match r.text().await {
                            Ok(t) if t.contains("data: [DONE]") => Ok(()),
                            Ok(t) => Err(format!("incomplete: {t}")),
                            Err(e) => Err(e.to_string()),
                        },
                        Ok(r) => Err(format!("status {}", r.status())),
                        Err(e) => Err(e.to_string()),
                    }
                }));
            }
            let (mut ok, mut errs) = (0, Vec::new());
            for h in hs {
                match h.await.unwrap() {
                    Ok(()) => ok += 1,
                    Err(e) => errs.push(e),
                }
            }
            println!("{clients} concurrent streaming clients: {ok} completed, {} failed, in {:.2} s", errs.len(), t.elapsed().as_secs_f64());
            for e in errs.iter().take(5) {
                println!("  {e}");
            }
        }),
        _ => eprintln!("usage: gateway_bench stub ADDR | latency DIRECT GATEWAY N | rate URL SECONDS CONCURRENCY | streams URL CLIENTS"),
    }
}
