//! Machine description and RAPL counters (on a fake powercap tree).

use perllm_engine::{Machine, Rapl};

#[test]
fn machine_is_described() {
    let m = Machine::detect();
    assert!(m.cpus >= 1);
    assert!(!m.cpu_model.is_empty());
}

#[test]
fn rapl_reads_package_zones_and_handles_wrap_around() {
    let dir = tempfile::tempdir().unwrap();
    let z = dir.path().join("intel-rapl:0");
    std::fs::create_dir_all(z.join("intel-rapl:0:0")).unwrap();
    std::fs::write(z.join("energy_uj"), "999000000\n").unwrap();
    std::fs::write(z.join("max_energy_range_uj"), "1000000000\n").unwrap();
    let r = Rapl::open_at(dir.path()).unwrap();
    let before = r.read();
    assert_eq!(before, vec![999_000_000]);
    std::fs::write(z.join("energy_uj"), "2000000\n").unwrap();
    let j = r.joules_between(&before, &r.read());
    assert!((j - 3.0).abs() < 1e-9, "{j}");
}

#[test]
fn rapl_says_plainly_when_absent() {
    let dir = tempfile::tempdir().unwrap();
    let e = Rapl::open_at(&dir.path().join("nope")).unwrap_err();
    assert!(e.contains("does not expose RAPL"), "{e}");
    let e = Rapl::open_at(dir.path()).unwrap_err();
    assert!(e.contains("no readable RAPL"), "{e}");
}
