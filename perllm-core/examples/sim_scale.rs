//! Runs N requests through a scenario with a trivial policy and prints wall time, simulated
//! requests per second and the process's peak resident memory (Linux `VmHWM`).
//!
//! `cargo run --release -p perllm-core --example sim_scale -- [REQUESTS] [SERVERS] [RATE] [DRAIN_S]`
//! SERVERS = 6 uses the paper testbed; otherwise `testbed::scaled(SERVERS, ..)`. DRAIN_S sets
//! `sim.drain` in seconds (`inf`: never stop early, simulate the whole backlog as before the
//! drain limit existed); default: the scenario's default (1 h after the last arrival).

use perllm_core::simple::RoundRobin;
use perllm_core::spec::SECOND;
use perllm_core::{run_synthetic, testbed};

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let arg = |i: usize, d: f64| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse::<f64>().ok())
            .unwrap_or(d)
    };
    let n = arg(1, 1e6) as u64;
    let servers = arg(2, 6.0) as usize;
    let rate = arg(
        3,
        if servers == 6 {
            2.0
        } else {
            servers as f64 / 25.0
        },
    );
    let dur = ((n as f64 / rate) * 1.5) as u64 * SECOND;
    let mut sc = if servers == 6 {
        testbed::paper(rate, dur)
    } else {
        testbed::scaled(servers, rate, dur)
    };
    sc.workload.max_requests = Some(n);
    match std::env::args().nth(4).as_deref() {
        None => {}
        Some("inf") => sc.sim.drain_ns = Some(u64::MAX),
        Some(d) => {
            let d: f64 = d.parse().expect("DRAIN_S is a number of seconds or `inf`");
            sc.sim.drain_ns = Some((d * 1e9) as u64);
        }
    }
    let world = sc
        .build()
        .unwrap_or_else(|e| panic!("invalid scenario: {e:?}"));
    let before = peak_rss_kib().unwrap_or(0);
    let t = std::time::Instant::now();
    let r = run_synthetic(&world, &mut RoundRobin::default())
        .unwrap_or_else(|e| panic!("run failed: {e}"));
    let wall = t.elapsed().as_secs_f64();
    // A digest of the whole report (every metric, per-server totals): equal digests before and
    // after a change of the simulator's internals mean the same results.
    let digest = {
        use std::hash::{Hash, Hasher};
        let json = serde_json::to_string(&r).expect("a report serialises");
        let mut h = std::collections::hash_map::DefaultHasher::new();
        json.hash(&mut h);
        h.finish()
    };
    println!(
        "requests={} servers={} rate={}/s wall={:.3}s sim_req_per_s={:.0} events={} steps={} attainment={:.3} peak_rss_mib={:.1} (before run {:.1}) report_digest={:016x}",
        r.arrived,
        servers,
        rate,
        wall,
        r.arrived as f64 / wall,
        r.sim.events,
        r.sim.steps,
        r.deadline_attainment,
        peak_rss_kib().unwrap_or(0) as f64 / 1024.0,
        before as f64 / 1024.0,
        digest
    );
}
