//! Parse, validate and lower a generated scenario with 10,000 individually declared servers, and
//! families of 10,000 and 100,000 servers.

#[path = "common/scenarios.rs"]
mod scenarios;

use criterion::{Criterion, criterion_group, criterion_main};
use perllm_dsl::{SourceKind, load_str};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let src = scenarios::big_scenario(10_000);
    // Sanity: it loads and has every server.
    let loaded =
        load_str("big.perllm", &src, SourceKind::Perllm).expect("the generated scenario loads");
    assert_eq!(loaded.scenario.servers.len(), 10_000);
    let mut g = c.benchmark_group("dsl");
    g.sample_size(20);
    g.bench_function("parse_validate_lower_10k_servers", |b| {
        b.iter(|| load_str("big.perllm", black_box(&src), SourceKind::Perllm).expect("loads"))
    });
    // Phases, to see where the time goes.
    g.bench_function("parse_only_10k_servers", |b| {
        b.iter(|| {
            let mut sources = perllm_dsl::diag::Sources::default();
            let src_id = sources.add("big.perllm", black_box(src.as_str()));
            perllm_dsl::parse::parse_file(&sources, src_id).expect("parses")
        })
    });
    // The same parse with pest alone: the parser before the hand-written one (side by side).
    g.bench_function("parse_only_pest_10k_servers", |b| {
        b.iter(|| {
            let mut sources = perllm_dsl::diag::Sources::default();
            let src_id = sources.add("big.perllm", black_box(src.as_str()));
            perllm_dsl::parse::parse_file_pest(&sources, src_id, &src).expect("parses")
        })
    });
    // Families: loading time linear in the number of members.
    for n in [10_000, 100_000] {
        let fam = scenarios::family_scenario(n);
        g.bench_function(format!("family_load_{}k_servers", n / 1000), |b| {
            b.iter(|| load_str("fam.perllm", black_box(&fam), SourceKind::Perllm).expect("loads"))
        });
    }
    g.bench_function("core_build_only_10k_servers", |b| {
        b.iter(|| loaded.scenario.build().expect("builds"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
