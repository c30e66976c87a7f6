//! The memory limit of the simulation state (`sim.max_memory`, default
//! `limits::DEFAULT_MAX_MEMORY_BYTES`): a cluster whose per-server state would exceed it is
//! refused when the scenario is built, with the size it needs and the limit; below it, it runs.

use perllm_core::simple::RoundRobin;
use perllm_core::spec::{SECOND, limits};
use perllm_core::{run_synthetic, sim, testbed};

#[test]
fn a_cluster_over_the_default_limit_is_refused_with_its_size() {
    let per_server = sim::state_bytes_per_server(2);
    // Just over the default limit.
    let n = (limits::DEFAULT_MAX_MEMORY_BYTES / per_server + 1) as usize;
    let sc = testbed::scaled(n, 10.0, SECOND);
    let errs = sc.build().expect_err("over the limit");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].path, "sim.max_memory");
    let m = &errs[0].message;
    assert!(
        m.contains(&format!(
            "the simulation state of {n} servers needs about 4.00 GiB"
        )) && m.contains(&format!("({per_server} bytes per server)"))
            && m.contains("over the limit of 4.00 GiB")
            && m.contains("--set sim.max_memory=5GiB"),
        "{m}"
    );
    // One server fewer fits.
    let sc = testbed::scaled(n - 1, 10.0, SECOND);
    sc.build().expect("at the limit");
}

#[test]
fn a_raised_limit_accepts_and_a_lowered_one_refuses() {
    let per_server = sim::state_bytes_per_server(2);
    let mut sc = testbed::scaled(100, 20.0, 2 * SECOND);
    sc.sim.max_memory_bytes = Some(100 * per_server - 1);
    let errs = sc.build().expect_err("under the lowered limit");
    assert!(
        errs[0].message.contains("100 servers needs about"),
        "{errs:?}"
    );
    sc.sim.max_memory_bytes = Some(100 * per_server);
    let world = sc.build().expect("at the limit");
    let r = run_synthetic(&world, &mut RoundRobin::default()).expect("runs");
    assert!(
        r.arrived > 10 && r.completed > 0,
        "{} {}",
        r.arrived,
        r.completed
    );
}

#[test]
fn the_estimate_covers_what_a_server_costs() {
    // The state of one server is at least its simulator struct and a run of planned steps.
    let one = sim::state_bytes_per_server(1);
    assert!(one > 4096 && one < 64 * 1024, "{one}");
    assert!(sim::state_bytes_per_server(3) > one);
}
