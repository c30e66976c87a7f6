//! Test harness: engine child processes, a scenario over them, the gateway in process.

use perllm_core::simple::from_fn;
use perllm_core::{Decision, Observer, Policy, Request, World};
use perllm_gateway::{Gateway, GatewayConfig, Parts, RequestLog};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every test gives up after this long.
pub const BOUND: Duration = Duration::from_secs(60);

#[path = "../fixtures/serving.rs"]
mod serving;
pub use serving::{Server, raw_stream};

/// Start an engine child process (optionally requiring `key`) and wait for its address.
pub fn engine(key: Option<&str>) -> Server {
    engine_with(key, false)
}

/// [`engine`], with a slower model when `slow`.
pub fn engine_with(key: Option<&str>, slow: bool) -> Server {
    let exe = std::env::current_exe().expect("test binary");
    let mut cmd = Command::new(exe);
    cmd.args([
        "child::engine_process",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("PERLLM_TEST_CHILD", "engine");
    if let Some(k) = key {
        cmd.env("PERLLM_TEST_KEY", k);
    }
    if slow {
        cmd.env("PERLLM_TEST_SLOW", "1");
    }
    // libtest prints `test child::engine_process ... ` before it, on the same line.
    Server::start(cmd, "the engine child", |line| {
        let i = line.find("LISTEN ")?;
        Some(format!("http://{}", line[i + 7..].trim()))
    })
}

/// The loopback cluster over `urls` (see [`serving::loopback_cluster`]): 8-token
/// requests at 1 per second for 10 s, slot `slot`, policy `policy`.
pub fn scenario(urls: &[&str], slot: &str, policy: &str) -> String {
    serving::loopback_cluster(
        &format!(r#"scenario "gw" {{ seed = 1, duration = 10 s, slot = {slot} }}"#),
        "  arrivals = poisson(rate = 1 /s)
  prompt_tokens = fixed(value = 8)
  output_tokens = fixed(value = 8)",
        urls,
        policy,
    )
}

/// The world of a scenario text (leaked, as the gateway wants).
pub fn world(src: &str) -> &'static World {
    let l = perllm_dsl::load_str("gw.perllm", src, perllm_dsl::SourceKind::Perllm)
        .unwrap_or_else(|e| panic!("scenario: {e:?}"));
    Box::leak(Box::new(l.scenario.build().expect("valid scenario")))
}

/// Records decisions and completions (the decision log's events) for assertions.
#[derive(Clone, Default)]
pub struct Seen {
    pub decisions: Arc<Mutex<Vec<(u64, Decision)>>>,
    pub completed: Arc<Mutex<Vec<(u64, u32, bool)>>>,
}

struct SeenObs(Seen);

impl Observer for SeenObs {
    fn on_decision(
        &mut self,
        _now: u64,
        _slot: u64,
        r: &Request,
        d: Decision,
        _note: Option<&serde_json::Value>,
    ) {
        self.0.decisions.lock().unwrap().push((r.id, d));
    }
    fn on_completion(&mut self, o: &perllm_core::Outcome) {
        self.0
            .completed
            .lock()
            .unwrap()
            .push((o.request.id, o.server, o.met));
    }
}

/// A running gateway on loopback.
pub struct Gw {
    pub url: String,
    pub seen: Seen,
    pub rt: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<Result<(), String>>>,
}

impl Gw {
    /// Stop the gateway (drain at most 5 s) and return the scheduler's result.
    pub fn stop(mut self) -> Result<(), String> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let d = self.done.take().expect("running");
        self.rt
            .block_on(async { tokio::time::timeout(BOUND, d).await })
            .expect("stopped in time")
            .expect("joined")
    }
}

/// Start a gateway over `world` with `policy`.
pub fn gateway(
    world: &'static World,
    policy: Box<dyn Policy>,
    cfg: GatewayConfig,
    requests: Option<Box<dyn std::io::Write + Send>>,
) -> Gw {
    gateway_with(world, policy, cfg, requests, None)
}

/// [`gateway`] with an energy meter.
pub fn gateway_with(
    world: &'static World,
    policy: Box<dyn Policy>,
    cfg: GatewayConfig,
    requests: Option<Box<dyn std::io::Write + Send>>,
    energy: Option<perllm_gateway::EnergyMeter>,
) -> Gw {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let seen = Seen::default();
    let s2 = seen.clone();
    // Backend keys: from the environment, and `PERLLM_TEST_BACKEND_KEY` is `backend-key`.
    let backends = perllm_gateway::backends(world, &|v| {
        std::env::var(v)
            .ok()
            .or_else(|| (v == "PERLLM_TEST_BACKEND_KEY").then(|| "backend-key".to_string()))
    })
    .expect("backends");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (url_tx, url_rx) = std::sync::mpsc::channel();
    let done = rt.spawn(async move {
        let gw = Gateway::start(
            cfg,
            Parts {
                world,
                policy,
                cost: Arc::new(perllm_core::Roofline::default()),
                observers: Box::new(move |_w| vec![Box::new(SeenObs(s2)) as Box<dyn Observer>]),
                requests: requests.map(RequestLog::new),
                energy,
            },
            backends,
        )
        .map_err(|e| e.to_string())?;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let _ = url_tx.send(format!(
            "http://{}",
            l.local_addr().map_err(|e| e.to_string())?
        ));
        let served = perllm_openai::serve_until(
            l,
            gw.router.clone(),
            async move {
                let _ = stop_rx.await;
            },
            Duration::from_secs(5),
        )
        .await;
        let f = gw.finish();
        served.map_err(|e| e.to_string())?;
        f
    });
    let url = url_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the gateway started");
    Gw {
        url,
        seen,
        rt,
        stop: Some(stop_tx),
        done: Some(done),
    }
}

/// Assigns round-robin over the servers, skipping those the view shows unreachable (unhealthy);
/// rejects every request whose id is in `reject`.
pub struct RoundRobin;

impl RoundRobin {
    /// Round robin that rejects nothing, boxed for [`gateway`].
    pub fn boxed() -> Box<dyn Policy> {
        Self::rejecting(vec![])
    }

    /// Round robin that rejects the requests whose ids are in `reject`, boxed for [`gateway`].
    pub fn rejecting(reject: Vec<u64>) -> Box<dyn Policy> {
        let mut next = 0u32;
        Box::new(from_fn("round-robin", move |view, p| {
            if reject.contains(&p.request.id) {
                return Decision::Reject;
            }
            let n = view.world.servers.len() as u32;
            let mut s = next % n;
            for _ in 0..n {
                if view.servers[s as usize].bandwidth_estimate_bps > 1.0 {
                    break;
                }
                s = (s + 1) % n;
            }
            next = s + 1;
            Decision::Assign(s)
        }))
    }
}

/// A request log for [`gateway`] in `dir`: its path and the writer to pass.
pub fn request_log(dir: &Path) -> (PathBuf, Option<Box<dyn std::io::Write + Send>>) {
    let path = dir.join("requests.csv");
    let file = std::fs::File::create(&path).unwrap();
    (path, Some(Box::new(file)))
}

/// The rows of the request log at `path`, each a map from column to cell; the header must be
/// [`perllm_gateway::REQUEST_COLUMNS`].
pub fn request_rows(path: &Path) -> Vec<HashMap<String, String>> {
    let mut rows = csv::Reader::from_path(path).unwrap();
    let head = rows.headers().unwrap().clone();
    assert_eq!(
        head.iter().collect::<Vec<_>>(),
        perllm_gateway::REQUEST_COLUMNS
    );
    rows.records()
        .map(|r| {
            let r = r.unwrap();
            head.iter()
                .zip(r.iter())
                .map(|(c, v)| (c.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// A blocking HTTP client for the tests.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(BOUND)
        .build()
        .expect("client")
}

/// POST a completion to the gateway at `url`.
pub fn complete(
    c: &reqwest::blocking::Client,
    url: &str,
    body: &str,
) -> reqwest::blocking::Response {
    c.post(format!("{url}/v1/completions"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .expect("the gateway answered")
}

/// The text of the gateway's `/metrics` at `url`.
pub fn metrics(c: &reqwest::blocking::Client, url: &str) -> String {
    c.get(format!("{url}/metrics"))
        .send()
        .and_then(|r| r.text())
        .expect("the gateway answered")
}
