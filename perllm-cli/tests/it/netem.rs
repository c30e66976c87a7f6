//! scripts/netem-links.sh: a scenario's links emulated on this machine (a network namespace and a
//! veth pair per backend; `netem`, or `tbf` and `perllm link-relay` on kernels without it). The
//! plan (what the script would run) is checked everywhere; the emulation itself when the tests run
//! as root with iproute2 on a kernel that can (`netem-links.sh check`), and is then required when
//! `PERLLM_REQUIRE_NETEM=1` (.ci/run sets it when the check passes there).

use super::serve::{Server, engine, scenario, start, wait};
use super::{Out, has, root};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn script() -> String {
    root().join("scripts/netem-links.sh").display().to_string()
}

/// `bash scripts/netem-links.sh ARGS` with this build's perllm.
fn netem(args: &[&str]) -> Out {
    Out::from(
        Command::new("bash")
            .arg(script())
            .args(args)
            .current_dir(root())
            .env("PERLLM", env!("CARGO_BIN_EXE_perllm"))
            .output()
            .expect("bash runs"),
    )
}

/// The serve tests' scenario over `urls` (round robin, decisions on arrival), the server
/// `edge<slow>`, if any, on a link of 200 ms one way and 1 Mbps (+/-20% when `fluctuating`).
fn slow_scenario(urls: &[&str], slow: usize, fluctuating: bool) -> String {
    let bw = if fluctuating {
        "1 Mbps +/- 20%"
    } else {
        "1 Mbps"
    };
    let mut s = scenario(urls, "round-robin").replace("slot = 100 ms", "slot = 0 s");
    let server = format!("server edge{slow} {{");
    if let Some(at) = s.find(&server) {
        let link = s[at..].find("link = lo").expect("its link") + at;
        s.replace_range(link..link + "link = lo".len(), "link = far");
    }
    s.push_str(&format!(
        "link far {{ bandwidth = {bw}, latency = 200 ms, energy = 1 nJ/bit }}\n"
    ));
    s
}

fn write_scenario(dir: &std::path::Path, text: &str) -> String {
    let p = dir.join("links.perllm");
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn the_plan_reads_each_backends_link_from_the_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let sc = write_scenario(
        dir.path(),
        &slow_scenario(
            &[
                "http://127.0.0.1:9",
                "http://10.213.1.2:8000",
                "http://10.213.2.2:8001",
            ],
            2,
            true,
        ),
    );
    // `perllm export --format links` is what the script reads.
    let links = super::perllm(&["export", &sc, "--format", "links"]);
    assert_eq!(
        links.ok(),
        "# server\thost\tport\tlink\tbandwidth_bps\tlatency_ns\tfluctuation\n\
         cloud\t127.0.0.1\t9\tlo\t1000000000\t1000000\tnone\n\
         edge1\t10.213.1.2\t8000\tlo\t1000000000\t1000000\tnone\n\
         edge2\t10.213.2.2\t8001\tfar\t1000000\t200000000\tuniform:0.2\n"
    );
    let o = netem(&[
        "--prefix",
        "ptest",
        "--delay-by",
        "netem",
        "--jitter",
        "5ms",
        "plan",
        &sc,
    ]);
    let plan = o.ok();
    for line in [
        "ip netns add ptest-edge1",
        "ip link add ptesth1 type veth peer name ptestn1",
        "ip addr add 10.213.1.3/32 peer 10.213.1.2/32 dev ptesth1",
        "ip -n ptest-edge1 addr add 10.213.1.2/32 peer 10.213.1.3/32 dev ptestn1",
        "tc qdisc add dev ptesth1 root netem delay 1000us 5ms distribution normal rate 1000000000bit limit 10000",
        "ip netns add ptest-edge2",
        // Both ends shape what they send: requests on this side, responses on the other.
        "tc qdisc add dev ptesth2 root netem delay 200000us 5ms distribution normal rate 1000000bit limit 10000",
        "ip netns exec ptest-edge2 tc qdisc add dev ptestn2 root netem delay 200000us 5ms distribution normal rate 1000000bit limit 10000",
    ] {
        has(plan, line);
    }
    assert!(!plan.contains("ptest-cloud"), "{plan}");
    o.stderr_has("server `cloud` (127.0.0.1:9) stays on loopback: not emulated");
    o.stderr_has("link `far` of `edge2` fluctuates (uniform:0.2): emulated at its mean bandwidth");
    o.stderr_has("backend listens on 10.213.2.2:8001");
    // Without netem: tbf for the bandwidth, the relay for the latency, the backend on loopback.
    let o = netem(&["--prefix", "ptest", "--delay-by", "relay", "plan", &sc]);
    has(
        o.ok(),
        "tc qdisc add dev ptesth2 root tbf rate 1000000bit burst 3200 latency 1s",
    );
    has(
        o.ok(),
        "link-relay --listen 10.213.2.2:8001 --to 127.0.0.1:8001 --seed 2 --delay 200000us &",
    );
    o.stderr_has("backend listens on 127.0.0.1:8001");

    // What it cannot emulate, it says, and changes nothing.
    let bad = |urls: &[&str], args: &[&str], msg: &str| {
        let sc = write_scenario(dir.path(), &slow_scenario(urls, 1, false));
        let mut a = args.to_vec();
        a.extend(["plan", sc.as_str()]);
        let o = netem(&a);
        assert_eq!(o.code, 2, "{}", o.stderr);
        o.stderr_has(msg);
    };
    bad(
        &["http://10.213.1.2:8000", "http://gpu-box.example:8000"],
        &[],
        "endpoint host `gpu-box.example` is not an IPv4 address",
    );
    bad(
        &["http://10.213.1.2:8000", "http://10.213.1.3:8000"],
        &[],
        "address 10.213.1.2 is used twice",
    );
    bad(&["http://127.0.0.1:8000"], &[], "has no server to emulate");
    bad(
        &["http://10.213.1.2:8000"],
        &["--prefix", "Bad!"],
        "--prefix",
    );
    bad(&["http://10.213.1.2:8000"], &["--jitter", "5"], "--jitter");
}

/// Why links cannot be emulated here, or `None` when they can.
fn cannot_emulate() -> Option<String> {
    let o = netem(&["--prefix", &prefix(), "check"]);
    (o.code != 0).then(|| format!("{}{}", o.stdout, o.stderr).trim().to_string())
}

fn prefix() -> String {
    format!("t{}", std::process::id() % 1_000_000)
}

/// The namespaces and host-side veths of `prefix` that exist now.
fn leftovers(prefix: &str) -> Vec<String> {
    let run = |args: &[&str]| {
        let o = Command::new("ip").args(args).output().unwrap();
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let namespaces = run(&["netns", "list"]);
    let links = run(&["-o", "link", "show"]);
    let mut found: Vec<String> = namespaces
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&format!("{prefix}-")))
        .map(String::from)
        .collect();
    // `7: t123h1@if6: <...>`
    found.extend(
        links
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n))
            .filter(|n| n.starts_with(&format!("{prefix}h")))
            .map(String::from),
    );
    found
}

/// A `netem-links.sh run` in progress; dropping it sends SIGTERM and, as a last resort, runs
/// `down`.
struct Run {
    child: Child,
    prefix: String,
}

impl Run {
    fn terminate(&mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        wait(&mut self.child, Duration::from_secs(30))
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.terminate();
            let _ = self.child.kill();
        }
        let _ = netem(&["--prefix", &self.prefix, "down"]);
    }
}

/// A streaming completion: seconds to the first event and to the end, and the backend.
fn stream(addr: &str, max_tokens: u32) -> (f64, f64, String) {
    let body = format!(
        r#"{{"model":"tiny","prompt":"hello there","max_tokens":{max_tokens},"stream":true}}"#
    );
    let t = Instant::now();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "POST /v1/completions HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\nx-perllm-slo: fast\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let mut first = None;
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if first.is_none() && String::from_utf8_lossy(&got).contains("data: ") {
            first = Some(t.elapsed().as_secs_f64());
        }
    }
    let text = String::from_utf8_lossy(&got).to_string();
    assert!(text.contains("data: [DONE]"), "{text}");
    let backend = text
        .lines()
        .find_map(|l| l.strip_prefix("x-perllm-backend: "))
        .expect("the backend header")
        .trim()
        .to_string();
    (first.unwrap(), t.elapsed().as_secs_f64(), backend)
}

/// Seconds to send `bytes` bytes to `addr` and read its whole answer.
fn upload(addr: &str, bytes: usize) -> f64 {
    let t = Instant::now();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "POST /v1/completions HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {bytes}\r\n\r\n"
    )
    .unwrap();
    s.write_all(&vec![b'a'; bytes]).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    t.elapsed().as_secs_f64()
}

#[test]
fn an_emulated_link_delays_the_first_token_and_caps_the_bandwidth() {
    if let Some(why) = cannot_emulate() {
        if std::env::var("PERLLM_REQUIRE_NETEM").as_deref() == Ok("1") {
            panic!("PERLLM_REQUIRE_NETEM=1 but links cannot be emulated: {why}");
        }
        eprintln!("skipped: links cannot be emulated here: {why}");
        return;
    }
    let t0 = Instant::now();
    let prefix = prefix();
    // An address of this process's own (two test runs at once do not collide).
    let pid = std::process::id();
    let far_addr = format!("10.{}.{}.2:8000", 200 + (pid / 250) % 50, pid % 250 + 1);
    // `near` on loopback, `edge1` behind the 200 ms, 1 Mbps link, taken in turn (round robin).
    let near = engine("1", &[]);
    let dir = tempfile::tempdir().unwrap();
    let sc = write_scenario(
        dir.path(),
        &slow_scenario(&[&near.url, &format!("http://{far_addr}")], 1, false),
    );
    // The far engine is the command the script runs, inside the namespace it made.
    let mut child = Command::new("bash")
        .arg(script())
        .args(["--prefix", &prefix, "run", &sc, "--", "sh", "-c"])
        .arg(
            "exec ip netns exec \"$PERLLM_NETNS_EDGE1\" \"$PERLLM\" engine serve --preset tiny \
             --threads 1 --model tiny --listen \"$PERLLM_LISTEN_EDGE1\"",
        )
        .current_dir(root())
        .env("PERLLM", env!("CARGO_BIN_EXE_perllm"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("bash runs");
    let out = child.stdout.take().unwrap();
    let mut run = Run {
        child,
        prefix: prefix.clone(),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.contains("http://") {
                let _ = tx.send(line);
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the engine in the namespace started");
    assert_eq!(leftovers(&prefix).len(), 2, "{:?}", leftovers(&prefix));
    let gw: Server = start(&["serve", &sc, "--listen", "127.0.0.1:0"]);
    let gw_addr = gw.url.trim_start_matches("http://").to_string();

    // Time to first token through the gateway, per backend (the least of three each).
    let (mut near_ttft, mut far_ttft) = (f64::MAX, f64::MAX);
    for _ in 0..6 {
        let (ttft, _, backend) = stream(&gw_addr, 4);
        match backend.as_str() {
            "cloud" => near_ttft = near_ttft.min(ttft),
            "edge1" => far_ttft = far_ttft.min(ttft),
            b => panic!("backend {b}"),
        }
    }
    eprintln!("time to first token: loopback {near_ttft:.3} s, behind the link {far_ttft:.3} s");
    // The request crosses the link once and the first event once: 2 x 200 ms at least.
    assert!(far_ttft >= 0.4, "{far_ttft}");
    assert!(far_ttft - near_ttft >= 0.3, "{near_ttft} {far_ttft}");
    assert!(far_ttft < near_ttft + 10.0, "{near_ttft} {far_ttft}");

    // 125,000 bytes take at least 1 s at 1 Mbps (plus the latency); on loopback, far less.
    let near_addr = near.url.trim_start_matches("http://").to_string();
    let (near_up, far_up) = (upload(&near_addr, 125_000), upload(&far_addr, 125_000));
    eprintln!("125,000 bytes up: loopback {near_up:.3} s, behind the link {far_up:.3} s");
    assert!(far_up >= 1.0, "{far_up}");
    assert!(far_up - near_up >= 0.8, "{near_up} {far_up}");
    drop(gw);

    // SIGTERM: the script stops the engine and removes what it made.
    assert_eq!(run.terminate(), Some(143));
    assert!(leftovers(&prefix).is_empty(), "{:?}", leftovers(&prefix));
    drop(run);

    // The command's own end tears down too; its exit status is the script's.
    let o = netem(&[
        "--prefix",
        &prefix,
        "run",
        &sc,
        "--",
        "sh",
        "-c",
        &format!("ip netns list | grep -c '^{prefix}-'; exit 7"),
    ]);
    assert_eq!(o.code, 7, "{}", o.stderr);
    assert_eq!(o.stdout.trim(), "1");
    assert!(leftovers(&prefix).is_empty(), "{:?}", leftovers(&prefix));
    assert!(t0.elapsed() < Duration::from_secs(120));
}
