//! Load a generated scenario of a large cluster and report the time it took.
//!
//! `cargo run --release -p perllm-dsl --example load_scale -- individual 10000 [REPS]` (each
//! server declared on its own) or `... -- family 100000 [REPS]` (`server edge[1..N]`). Prints the
//! median wall time of REPS loads (default 1), for `/usr/bin/time -v` and callgrind.

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
    println!(
        "{kind} {servers} servers, {} bytes: median {:.1} ms over {reps} loads (min {:.1}, max {:.1})",
        src.len(),
        times[times.len() / 2] * 1e3,
        times[0] * 1e3,
        times[times.len() - 1] * 1e3
    );
}
