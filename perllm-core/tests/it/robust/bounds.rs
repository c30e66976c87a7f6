//! Issue 21's bounds: gamma arrivals, names and scenario counts.

use super::*;

/// Gamma arrivals with a huge coefficient of variation (issue 21): `cv` above 100 is a build
/// error; a process that gets past the build anyway (a world edited after it) is stopped by the
/// generator after 2,000,000 arrivals in one simulated second instead of generating until memory
/// runs out (cv = 1e5 at 6/s: 3.8 GB, then an abort).
#[test]
fn gamma_arrivals_are_bounded_at_build_and_while_generating() {
    let gamma = |cv: f64| {
        let mut s = testbed::paper(1.0, 60 * SECOND);
        s.workload.arrivals = Arrivals::Gamma { rate: 6.0, cv };
        s
    };
    for cv in [100.5, 1e4, 1e5, 1e300] {
        let errs = gamma(cv).build().unwrap_err();
        let m = format!("{errs:?}");
        assert!(
            m.contains("workload.arrivals") && m.contains("above the maximum of 100"),
            "{m}"
        );
    }
    // cv = 100 (the limit) builds and runs with a realised volume of the right order.
    let w = gamma(100.0).build().unwrap();
    run_all(&w).unwrap();
    // Past the build: a world edited to cv = 1e5.
    let mut w = gamma(1.0).build().unwrap();
    w.scenario.workload.arrivals = Arrivals::Gamma { rate: 6.0, cv: 1e5 };
    // (The default limit is 2,000,000 per second; 20,000 keeps the test fast in debug builds.)
    assert_eq!(limits::MAX_ARRIVALS_PER_SECOND, 2_000_000);
    let mut src = Synthetic::new(&w).with_arrival_limit(20_000);
    let (n, err) = first_error(&mut src);
    assert_eq!(n, 20_000);
    let m = err.to_string();
    assert!(
        m.starts_with(
            "workload.arrivals: row 0: more than 20,000 requests arrive in simulated second 0"
        ),
        "{m}"
    );
    assert!(src.next_request().is_none());
}

/// Names (issue 21): empty names, control characters and names over 256 bytes are build errors
/// that quote at most a short excerpt (a 10 MB name makes a message of under 200 bytes); a server
/// named like a family and a model listed twice on a server are ambiguous; share sums that are
/// not 1 print enough digits to show it.
#[test]
fn names_are_usable_and_unambiguous() {
    let errs = |sc: &Scenario| -> Vec<ScenarioErrorText> {
        match sc.build() {
            Ok(_) => Vec::new(),
            Err(e) => e
                .iter()
                .map(|x| ScenarioErrorText(format!("{}: {}", x.path, x.message)))
                .collect(),
        }
    };
    for (name, want) in [
        ("", "is empty"),
        ("a\nb", "`a\\nb` contains a control character"),
        ("a\0b", "`a\\u{0}b` contains a control character"),
        ("tab\there", "contains a control character"),
    ] {
        let mut sc = base();
        sc.hardware[0].name = name.into();
        let e = errs(&sc);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].0.contains("hardware#1") && e[0].0.contains(want),
            "{e:?}"
        );
    }
    let mut sc = base();
    sc.slos[1].name = "s".repeat(10_000_000);
    let e = errs(&sc);
    assert_eq!(e.len(), 1, "{} errors", e.len());
    assert!(e[0].0.len() < 200, "{} bytes", e[0].0.len());
    assert!(
        e[0].0
            .contains("(10000000 bytes)` is longer than 256 bytes"),
        "{}",
        e[0].0
    );
    let mut sc = base();
    sc.servers[0].family = Some(String::new());
    assert!(
        errs(&sc)[0]
            .0
            .contains("the family name of server 1 is empty")
    );

    // Counts: 10,001 SLO classes (the memory per class is bounded now: 5,000 classes took
    // 2.5 GB before, 28 MB after).
    let mut sc = base();
    let c0 = sc.slos[0].clone();
    sc.slos = (0..10_001)
        .map(|i| SloClass {
            name: format!("c{i}"),
            share: 1.0 / 10_001.0,
            ..c0.clone()
        })
        .collect();
    let e = errs(&sc);
    assert!(
        e[0].0
            .contains("10001 slo declarations, more than the 10000"),
        "{e:?}"
    );
    // A server named like the `edge` family.
    let mut sc = base();
    let mut lone = sc.servers[0].clone();
    lone.name = "edge".into();
    lone.family = None;
    sc.servers.push(lone);
    let e = errs(&sc);
    assert!(
        e.iter().any(|x| x.0.starts_with(
            "server[edge]: server `edge` has the name of the family of servers edge1"
        )),
        "{e:?}"
    );
    // A model twice on a server.
    let mut sc = base();
    let m = sc.servers[0].models[0].clone();
    sc.servers[0].models.push(m.clone());
    let e = errs(&sc);
    assert!(
        e.iter()
            .any(|x| x.0.ends_with(&format!("model `{m}` is listed twice"))),
        "{e:?}"
    );
    // Shares that sum to 99.9995%: said so, not "100.0%".
    let mut sc = base();
    sc.workload.models[0].1 -= 5e-6;
    let e = errs(&sc);
    assert!(
        e.iter()
            .any(|x| x.0.contains("model shares sum to 99.99950%, not 100%")),
        "{e:?}"
    );
}

#[derive(Debug)]
struct ScenarioErrorText(String);
