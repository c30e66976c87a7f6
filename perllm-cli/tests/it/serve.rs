//! `perllm engine serve`, `perllm serve` and `perllm load` as real processes on loopback: one
//! workload replayed through the gateway over three engines, its decision log pinned, and a
//! SIGTERM drain.

use super::{regex_escape, root, settings};
use std::io::Read;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

#[path = "../../../perllm-gateway/tests/fixtures/serving.rs"]
mod serving;
pub use serving::Server;
use serving::raw_stream;

/// Start `perllm ARGS` (a server) and wait for the `http://ADDR` it prints on stdout.
pub fn start(args: &[&str]) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_perllm"));
    cmd.args(args).current_dir(root()).env("NO_COLOR", "1");
    Server::start(cmd, &format!("`perllm {}`", args.join(" ")), |line| {
        line.rfind("http://").map(|i| line[i..].trim().to_string())
    })
}

pub fn engine(threads: &str, extra: &[&str]) -> Server {
    let mut a = vec![
        "engine",
        "serve",
        "--preset",
        "tiny",
        "--threads",
        threads,
        "--model",
        "tiny",
        "--listen",
        "127.0.0.1:0",
    ];
    a.extend_from_slice(extra);
    start(&a)
}

/// The gateway tests' loopback cluster over `urls` (see
/// [`serving::loopback_cluster`]): 4 s of varied requests at 1.5 per second, slot
/// 100 ms, policy `policy`.
pub fn scenario(urls: &[&str], policy: &str) -> String {
    serving::loopback_cluster(
        r#"scenario "serve-test" { seed = 3, duration = 4 s, slot = 100 ms }"#,
        "  arrivals = poisson(rate = 1.5 /s)
  prompt_tokens = uniform(lo = 4, hi = 40)
  output_tokens = uniform(lo = 2, hi = 12)",
        urls,
        policy,
    )
}

#[test]
fn a_workload_through_the_gateway_over_three_engines() {
    let t0 = Instant::now();
    let engines = [engine("1", &[]), engine("1", &[]), engine("1", &[])];
    let urls: Vec<&str> = engines.iter().map(|e| e.url.as_str()).collect();
    let dir = tempfile::tempdir().unwrap();
    let sc = dir.path().join("cluster.perllm");
    std::fs::write(&sc, scenario(&urls, "round-robin")).unwrap();
    let decisions = dir.path().join("decisions.jsonl");
    let requests = dir.path().join("gateway.csv");
    let gw = start(&[
        "serve",
        sc.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--decisions",
        decisions.to_str().unwrap(),
        "--requests",
        requests.to_str().unwrap(),
    ]);
    let real = dir.path().join("real.csv");
    let o = Command::new(env!("CARGO_BIN_EXE_perllm"))
        .args(["load", sc.to_str().unwrap(), "--url", &gw.url, "--out"])
        .arg(&real)
        .current_dir(root())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Every request completed (round robin, nothing refused), spread over the three engines.
    let n = std::fs::read_to_string(&real).unwrap().lines().count() - 1;
    assert!(n >= 3, "{stdout}");
    assert!(
        stdout.contains(&format!(
            "{n} requests: {n} completed, 0 rejected, 0 failed"
        )),
        "{stdout}"
    );
    for s in ["cloud", "edge1", "edge2"] {
        assert!(stdout.contains(s), "{s} got no request: {stdout}");
    }
    // SIGTERM: the gateway drains and exits 0, its logs complete.
    let mut gw = gw;
    crate::signal(&gw.child, "TERM");
    let st = wait(&mut gw.child, Duration::from_secs(30));
    assert_eq!(st, Some(0));
    let log = std::fs::read_to_string(&decisions).unwrap();
    assert_eq!(log.lines().count(), n);
    let gw_rows = std::fs::read_to_string(&requests).unwrap();
    assert_eq!(gw_rows.lines().count(), n + 1);
    // The decision log is the simulator's JSONL: pinned, with the times (wall clock) redacted.
    let mut s = settings(Some(dir.path()));
    s.add_filter(r#""(time_s|arrival_s)":[0-9.e-]+"#, r#""$1":"[T]""#);
    s.add_filter(r#""slot":[0-9]+"#, r#""slot":"[N]""#);
    s.add_filter(&regex_escape(&dir.path().display().to_string()), "[TMP]");
    s.bind(|| insta::assert_snapshot!("serve_decisions", log));
    assert!(t0.elapsed() < Duration::from_secs(120));
}

pub fn wait(c: &mut Child, bound: Duration) -> Option<i32> {
    let t = Instant::now();
    while t.elapsed() < bound {
        if let Ok(Some(st)) = c.try_wait() {
            return st.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn sigterm_drains_the_requests_in_flight() {
    // A slower engine (4 layers, hidden 512): a 300-token request takes a while.
    let e = engine(
        "1",
        &[
            "--layers",
            "4",
            "--hidden",
            "512",
            "--heads",
            "8",
            "--kv-heads",
            "4",
            "--intermediate",
            "1536",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let sc = dir.path().join("one.perllm");
    std::fs::write(
        &sc,
        scenario(&[&e.url], "round-robin").replace("slot = 100 ms", "slot = 0 s"),
    )
    .unwrap();
    let mut gw = start(&[
        "serve",
        sc.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--drain",
        "60s",
    ]);
    let body = r#"{"model":"tiny","prompt":"drain me","max_tokens":300,"stream":true}"#;
    let mut s = raw_stream(&gw.url, body);
    crate::signal(&gw.child, "TERM");
    // The request in flight still completes, every token of it.
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    let text = String::from_utf8_lossy(&rest);
    assert!(text.contains("data: [DONE]"), "cut short: {text}");
    assert!(text.contains("\"completion_tokens\":300"), "{text}");
    assert_eq!(wait(&mut gw.child, Duration::from_secs(30)), Some(0));
    // And nothing is accepted any more.
    assert!(std::net::TcpStream::connect(gw.url.trim_start_matches("http://")).is_err());
}
