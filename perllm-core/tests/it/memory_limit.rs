//! The memory limit of a scenario (`sim.max_memory`, default
//! `footprint::DEFAULT_MEMORY_LIMIT`, 2 GiB) against its one estimate (`footprint::Footprint`):
//! a scenario whose estimate exceeds it is refused when it is built, with the size it needs, the
//! limit and how to raise it; at the limit, it builds and runs.

use perllm_core::footprint::{DEFAULT_MEMORY_LIMIT, Footprint};
use perllm_core::simple::RoundRobin;
use perllm_core::spec::SECOND;
use perllm_core::{run_synthetic, sim, testbed};

/// Servers of `testbed::scaled` whose estimate is just over `limit`.
fn servers_over(limit: u64) -> usize {
    let sc = testbed::scaled(1, 10.0, SECOND);
    let one = Footprint::of(&sc);
    ((limit - (one.bytes - one.per_server)) / one.per_server + 1) as usize
}

#[test]
fn a_cluster_over_the_default_limit_is_refused_with_its_size() {
    let n = servers_over(DEFAULT_MEMORY_LIMIT);
    let sc = testbed::scaled(n, 10.0, SECOND);
    let fp = Footprint::of(&sc);
    assert!(fp.bytes > DEFAULT_MEMORY_LIMIT);
    let errs = sc.build().expect_err("over the limit");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].path, "sim.max_memory");
    let m = &errs[0].message;
    assert!(
        m.contains("a run of this scenario needs about 2.00 GiB")
            && m.contains(&format!("({n} servers x "))
            && m.contains("above the memory limit of 2.00 GiB")
            && m.contains("`--memory-limit 3GiB`")
            && m.contains("`--set sim.max_memory=3GiB`")
            && m.contains("`sim { max_memory = 3 GiB }`"),
        "{m}"
    );
    // One server fewer fits.
    let sc = testbed::scaled(n - 1, 10.0, SECOND);
    sc.build().expect("at the limit");
}

#[test]
fn a_raised_limit_accepts_and_a_lowered_one_refuses() {
    let mut sc = testbed::scaled(100, 20.0, 2 * SECOND);
    let need = Footprint::of(&sc).bytes;
    sc.sim.max_memory_bytes = Some(need - 1);
    let errs = sc.build().expect_err("under the lowered limit");
    assert!(errs[0].message.contains("(100 servers x "), "{errs:?}");
    sc.sim.max_memory_bytes = Some(need);
    let world = sc.build().expect("at the limit");
    let r = run_synthetic(&world, &mut RoundRobin::default()).expect("runs");
    assert!(
        r.arrived > 10 && r.completed > 0,
        "{} {}",
        r.arrived,
        r.completed
    );
    // `none` (u64::MAX) accepts any size, without overflow in the estimate.
    let mut big = testbed::scaled(servers_over(DEFAULT_MEMORY_LIMIT), 10.0, SECOND);
    big.sim.max_memory_bytes = Some(u64::MAX);
    assert!(big.build().is_ok());
}

#[test]
fn the_estimate_covers_what_a_server_costs() {
    // The state of one server is at least its simulator struct and a run of planned steps.
    let one = sim::state_bytes_per_server(1);
    assert!(one > 4096 && one < 64 * 1024, "{one}");
    assert!(sim::state_bytes_per_server(3) > one);
    // Measured (BENCHMARKS.md, "Scenario memory footprint"): 100,001 servers peaked at 319 MB.
    let fp = Footprint::for_counts(100_001, 2, 3);
    assert!(fp.bytes > 319_000_000, "{}", fp.bytes);
}
