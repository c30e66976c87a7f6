//! Parse, validate and lower a generated scenario with 10,000 individually declared servers.

use criterion::{Criterion, criterion_group, criterion_main};
use perllm_dsl::{SourceKind, load_str};
use std::fmt::Write as _;
use std::hint::black_box;

/// A scenario with `n` servers, each declared on its own (no families), spread over 100 links.
pub fn big_scenario(n: usize) -> String {
    let mut s = String::from(
        r#"scenario "big" { seed = 1, duration = 10 min, slot = 100 ms }
hardware xeon { kind = cpu, compute = 1.6 TFLOPS, memory = 192 GiB, memory_bandwidth = 115 GB/s, power { idle = 60 W, busy = 125 W } }
hardware a100 { kind = gpu, compute = 312 TFLOPS, memory = 80 GiB, memory_bandwidth = 2039 GB/s, power { idle = 55 W, busy = 400 W } }
model llama2-7b { params = 7 B, precision = int8, kv_per_token = 512 KiB }
model llama-33b { params = 33 B, precision = fp16, kv_per_token = 1.5 MiB }
"#,
    );
    for l in 0..100 {
        writeln!(
            s,
            "link lan{l} {{ bandwidth = {} Mbps +/- 20%, latency = {} ms, energy = 50 nJ/bit }}",
            100 + l,
            1 + l % 10
        )
        .unwrap();
    }
    for i in 0..n {
        if i % 100 == 99 {
            writeln!(
                s,
                "server cloud{i} {{\n  tier = cloud\n  hardware = a100 x 2\n  models = [llama2-7b, llama-33b]\n  link = lan{}\n  max_batch = 64\n}}",
                i % 100
            )
            .unwrap();
        } else {
            writeln!(
                s,
                "server edge{i} {{\n  tier = edge\n  hardware = xeon\n  models = [llama2-7b]\n  link = lan{}\n  max_batch = 4\n}}",
                i % 100
            )
            .unwrap();
        }
    }
    s.push_str(
        r#"slo interactive { deadline = 4 s, share = 50% }
slo batch { deadline = 60 s, share = 50% }
workload {
  arrivals = poisson(rate = 600 /s)
  prompt_tokens = lognormal(median = 400, sigma = 0.8)
  output_tokens = lognormal(median = 120, sigma = 0.6)
  payload = lognormal(median = 256 KB, sigma = 1.0)
  models = { llama2-7b: 70%, llama-33b: 30% }
}
objective {
  minimize = energy.transmission + energy.inference + 0.5 * energy.idle
  constraint latency <= deadline
  constraint occupancy(edge) <= 90%
}
policy perllm { exploration = 0.5 }
"#,
    );
    s
}

fn bench(c: &mut Criterion) {
    let src = big_scenario(10_000);
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
    g.bench_function("core_build_only_10k_servers", |b| {
        b.iter(|| loaded.scenario.build().expect("builds"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
