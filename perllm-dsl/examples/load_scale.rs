//! Load a generated scenario of a large cluster and report the time it took.
//!
//! `cargo run --release -p perllm-dsl --example load_scale -- individual 10000 [REPS]` (each
//! server declared on its own) or `... -- family 100000 [REPS]` (`server edge[1..N]`). Prints the
//! median wall time of REPS loads (default 1), for `/usr/bin/time -v` and callgrind.
//!
//! `... -- family 100000 1 run 1000000 33333` then runs the loaded scenario: 1,000,000 requests
//! arriving at 33,333/s (a third of a request per second per server), round-robin, the drain cut
//! to 1 s after the last arrival, and prints the run's counts and the process's peak resident
//! memory (Linux `VmHWM`).

#[path = "../benches/common/scenarios.rs"]
mod scenarios;

use perllm_dsl::{SourceKind, load_str};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: load_scale individual|family SERVERS [REPS]";
    let (Some(kind), Some(n)) = (
        args.get(1),
        args.get(2).and_then(|n| n.parse::<usize>().ok()),
    ) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let reps: usize = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(1).max(1);
    let src = match kind.as_str() {
        "individual" => scenarios::big_scenario(n),
        "family" => scenarios::family_scenario(n),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    let mut times = Vec::new();
    let mut servers = 0;
    for _ in 0..reps {
        let t = Instant::now();
        let loaded = match load_str("big.perllm", &src, SourceKind::Perllm) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        };
        times.push(t.elapsed().as_secs_f64());
        servers = loaded.scenario.servers.len();
    }
    times.sort_by(f64::total_cmp);
    if args.get(4).map(String::as_str) == Some("run") {
        let requests: u64 = args
            .get(5)
            .and_then(|r| r.parse().ok())
            .unwrap_or(1_000_000);
        let rate: f64 = args.get(6).and_then(|r| r.parse().ok()).unwrap_or(600.0);
        let src = src.replace(
            "poisson(rate = 600 /s)",
            &format!("poisson(rate = {rate} /s)"),
        );
        let mut sc = match load_str("big.perllm", &src, SourceKind::Perllm) {
            Ok(l) => l.scenario,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        };
        sc.workload.max_requests = Some(requests);
        sc.duration_ns = ((requests as f64 / rate) * 1.5 * 1e9) as u64;
        sc.sim.drain_ns = Some(perllm_core::spec::SECOND);
        let world = sc.build().unwrap_or_else(|e| panic!("{e:?}"));
        let t = Instant::now();
        let r = perllm_core::run_synthetic(&world, &mut perllm_core::simple::RoundRobin::default())
            .unwrap_or_else(|e| panic!("{e}"));
        let wall = t.elapsed().as_secs_f64();
        let hwm = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                let l = s.lines().find(|l| l.starts_with("VmHWM:"))?.to_string();
                l.split_whitespace().nth(1)?.parse::<f64>().ok()
            })
            .unwrap_or(0.0);
        println!(
            "ran {} requests on {} servers in {wall:.1} s ({:.0} simulated requests/s): {} completed, {} steps; peak RSS {:.0} MiB",
            r.arrived,
            world.servers.len(),
            r.arrived as f64 / wall,
            r.completed,
            r.sim.steps,
            hwm / 1024.0
        );
    }
    println!(
        "{kind} {servers} servers, {} bytes: median {:.1} ms over {reps} loads (min {:.1}, max {:.1})",
        src.len(),
        times[times.len() / 2] * 1e3,
        times[0] * 1e3,
        times[times.len() - 1] * 1e3
    );
}
