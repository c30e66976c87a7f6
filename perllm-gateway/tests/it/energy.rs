//! Measured energy: backends on this machine get their share of the RAPL package energy (read
//! from a fake powercap tree here: this machine has none), marked `measured`; the others keep
//! the cost model's estimate.

use crate::harness::*;
use perllm_engine::Rapl;
use perllm_gateway::{EnergyMeter, GatewayConfig, share_out};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[test]
fn package_energy_is_split_among_the_requests_in_flight() {
    let (mut a, mut b) = (0.5, 0.0);
    share_out(3.0, [&mut a, &mut b].into_iter());
    assert_eq!((a, b), (2.0, 1.5));
    // Nobody in flight: nobody is charged (and nothing breaks).
    share_out(3.0, std::iter::empty());
    share_out(f64::NAN, [&mut a].into_iter());
    assert_eq!(a, 2.0);
}

#[test]
fn a_local_backends_requests_carry_measured_energy() {
    // A fake powercap tree whose package counter a thread advances as a 10 W package would
    // (10 uJ per microsecond of the test, rewritten every 0.2 ms).
    let dir = tempfile::tempdir().unwrap();
    let zone = dir.path().join("intel-rapl:0");
    std::fs::create_dir_all(&zone).unwrap();
    std::fs::write(zone.join("max_energy_range_uj"), "1000000000000\n").unwrap();
    std::fs::write(zone.join("energy_uj"), "0\n").unwrap();
    let rapl = Rapl::open_at(dir.path()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let ticker = {
        let (stop, zone) = (stop.clone(), zone.clone());
        std::thread::spawn(move || {
            let t = std::time::Instant::now();
            let mut total: u64 = 0;
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_micros(200));
                total = t.elapsed().as_micros() as u64 * 10;
                // Write then rename: a reader never sees half a number.
                let tmp = zone.join("energy_uj.tmp");
                std::fs::write(&tmp, format!("{total}\n")).unwrap();
                std::fs::rename(&tmp, zone.join("energy_uj")).unwrap();
            }
            total as f64 * 1e-6
        })
    };
    // The slower engine: a request stays in flight for tens of milliseconds at least.
    let (local, remote) = (engine_with(None, true), engine(None));
    let world = world(&scenario(&[&local.url, &remote.url], "0 s", "perllm"));
    let (csv, log) = request_log(dir.path());
    let gw = gateway_with(
        world,
        RoundRobin::boxed(),
        GatewayConfig::default(),
        log,
        // `cloud` runs here; `edge1` is somewhere else.
        Some(EnergyMeter::new(rapl, vec![true, false])),
    );
    let c = client();
    for i in 0..4 {
        let r = complete(
            &c,
            &gw.url,
            &format!(r#"{{"model":"tiny","prompt":"energy {i}","max_tokens":32}}"#),
        );
        assert_eq!(r.status().as_u16(), 200);
    }
    gw.stop().unwrap();
    stop.store(true, Ordering::SeqCst);
    let spent = ticker.join().unwrap();
    let rows = request_rows(&csv);
    assert_eq!(rows.len(), 4);
    let mut measured = 0.0;
    for r in &rows {
        let j: f64 = r["energy_inference_j"].parse().unwrap();
        match r["server"].as_str() {
            "cloud" => {
                assert_eq!(r["energy_source"], "measured");
                // The counter moved while it was in flight.
                assert!(j > 0.0, "{j}");
                measured += j;
            }
            "edge1" => assert_eq!(r["energy_source"], "estimated"),
            s => panic!("server {s}"),
        }
    }
    // Only energy spent while a measured request was in flight is charged, never more than
    // the package spent.
    assert!(
        measured > 0.0 && measured <= spent + 1e-9,
        "{measured} of {spent}"
    );
}
