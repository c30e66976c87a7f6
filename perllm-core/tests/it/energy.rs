//! How a run is charged for energy: a server's facility PUE and its idle charge
//! (docs/architecture.md, "Energy").

use perllm_core::simple::Fixed;
use perllm_core::spec::*;
use perllm_core::workload::Synthetic;
use perllm_core::{Report, Roofline, run, testbed};

/// The paper testbed at 1 request/s for a minute: five edge servers, then the cloud (index 5).
fn paper() -> Scenario {
    testbed::paper(1.0, 60 * SECOND)
}

/// Everything to the cloud: the placement does not depend on energy, so two scenarios that
/// differ only in how energy is charged run the same steps at the same times.
/// The cloud-only run of the paper testbed, the testbed with every server's idle charge set to
/// `charge`, and its cloud-only run.
fn idle_charged(charge: IdleCharge) -> (Report, Scenario, Report) {
    let base = cloud_only(&paper());
    let mut sc = paper();
    for s in &mut sc.servers {
        s.idle_charge = Some(charge);
    }
    let r = cloud_only(&sc);
    (base, sc, r)
}

fn cloud_only(sc: &Scenario) -> Report {
    let world = sc.build().expect("valid scenario");
    run(
        &world,
        &mut Fixed(5),
        &Roofline::default(),
        &mut Synthetic::new(&world),
        &mut [],
    )
    .expect("run")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn pue_multiplies_its_servers_busy_and_idle_energy_and_nothing_else() {
    let base = cloud_only(&paper());
    let mut sc = paper();
    sc.servers[5].pue = Some(1.5);
    let r = cloud_only(&sc);
    assert_eq!(r.horizon_s, base.horizon_s, "same steps, same horizon");
    assert_eq!(r.completed, base.completed);
    let (c, c0) = (&r.servers[5], &base.servers[5]);
    assert!(c0.inference_j > 0.0 && c0.idle_j > 0.0);
    assert!(
        close(c.inference_j, 1.5 * c0.inference_j),
        "{c:?} vs {c0:?}"
    );
    assert!(close(c.idle_j, 1.5 * c0.idle_j), "{c:?} vs {c0:?}");
    assert!(
        close(c.transmission_j, c0.transmission_j),
        "links are outside the facility"
    );
    for (e, e0) in r.servers[..5].iter().zip(&base.servers[..5]) {
        assert!(close(e.idle_j, e0.idle_j), "edge servers keep PUE 1: {e:?}");
    }
    // The estimates policies see carry the PUE too.
    let world = sc.build().unwrap();
    let (idle, busy) = world.server_power_w(&world.servers[5]);
    assert!(
        close(idle, 1.5 * 55.0) && close(busy, 1.5 * 400.0),
        "{idle} {busy}"
    );
    assert!(close(world.idle_power_w(), 5.0 * 60.0 + 1.5 * 55.0));
}

#[test]
fn idle_charge_if_used_switches_off_only_the_servers_that_never_ran() {
    let (base, sc, r) = idle_charged(IdleCharge::IfUsed);
    for e in &r.servers[..5] {
        assert_eq!(e.steps, 0);
        assert_eq!(e.idle_j, 0.0, "an unused server is off: {e:?}");
    }
    assert!(close(r.servers[5].idle_j, base.servers[5].idle_j));
    assert!(close(r.energy.inference_j, base.energy.inference_j));
    let edge_idle: f64 = base.servers[..5].iter().map(|s| s.idle_j).sum();
    assert!(close(r.energy.total_j, base.energy.total_j - edge_idle));
    assert!(close(r.energy.idle_j, r.servers[5].idle_j));
    assert_eq!(
        sc.build().unwrap().idle_power_w(),
        0.0,
        "no server must be on"
    );
}

#[test]
fn idle_charge_never_charges_busy_power_only() {
    let (base, _, r) = idle_charged(IdleCharge::Never);
    assert_eq!(r.energy.idle_j, 0.0);
    assert!(r.servers.iter().all(|s| s.idle_j == 0.0));
    assert!(close(r.energy.inference_j, base.energy.inference_j));
    assert!(close(
        r.energy.total_j,
        base.energy.inference_j + base.energy.transmission_j
    ));
    assert!(r.energy.per_request_j < base.energy.per_request_j);
}

#[test]
fn a_pue_below_one_above_five_or_not_finite_is_an_error_naming_the_server() {
    for bad in [0.9, 0.0, -1.0, 5.5, f64::NAN, f64::INFINITY] {
        let mut sc = paper();
        sc.servers[5].pue = Some(bad);
        let errs = sc.build().expect_err("invalid PUE");
        assert!(
            errs.iter().any(|e| e.path == "server[cloud].pue"),
            "{bad}: {errs:?}"
        );
    }
    for ok in [1.0, 1.58, 5.0] {
        let mut sc = paper();
        sc.servers[5].pue = Some(ok);
        sc.build().unwrap_or_else(|e| panic!("{ok}: {e:?}"));
    }
}

#[test]
fn the_charging_fields_are_omitted_from_json_when_unset_and_round_trip_when_set() {
    let sc = paper();
    let json = serde_json::to_string(&sc).unwrap();
    assert!(
        !json.contains("pue") && !json.contains("idle_charge"),
        "old hashes kept"
    );
    let mut sc = paper();
    sc.servers[5].pue = Some(1.1);
    sc.servers[0].idle_charge = Some(IdleCharge::IfUsed);
    let json = serde_json::to_string(&sc).unwrap();
    assert!(json.contains(r#""pue":1.1"#) && json.contains(r#""idle_charge":"if_used""#));
    let back: Scenario = serde_json::from_str(&json).unwrap();
    assert_eq!(back, sc);
}
