//! Generated scenarios of large clusters, shared by the `parse` bench and the `load_scale`
//! example.

use std::fmt::Write as _;

const HEADER: &str = r#"scenario "big" { seed = 1, duration = 10 min, slot = 100 ms }
hardware xeon { kind = cpu, compute = 1.6 TFLOPS, memory = 192 GiB, memory_bandwidth = 115 GB/s, power { idle = 60 W, busy = 125 W } }
hardware a100 { kind = gpu, compute = 312 TFLOPS, memory = 80 GiB, memory_bandwidth = 2039 GB/s, power { idle = 55 W, busy = 400 W } }
model llama2-7b { params = 7 B, precision = int8, kv_per_token = 512 KiB }
model llama-33b { params = 33 B, precision = fp16, kv_per_token = 1.5 MiB }
"#;

const FOOTER: &str = r#"slo interactive { deadline = 4 s, share = 50% }
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
"#;

fn links(s: &mut String) {
    for l in 0..100 {
        writeln!(
            s,
            "link lan{l} {{ bandwidth = {} Mbps +/- 20%, latency = {} ms, energy = 50 nJ/bit }}",
            100 + l,
            1 + l % 10
        )
        .unwrap();
    }
}

/// A scenario with `n` servers, each declared on its own (no families), spread over 100 links;
/// every hundredth is a cloud server.
pub fn big_scenario(n: usize) -> String {
    let mut s = String::from(HEADER);
    links(&mut s);
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
    s.push_str(FOOTER);
    s
}

/// A scenario with `n` servers declared as families: `n / 100` cloud servers in
/// `cloud[1..]` and the rest in `edge[1..]`, the same mix as [`big_scenario`].
pub fn family_scenario(n: usize) -> String {
    let clouds = (n / 100).max(1);
    let edges = n - clouds;
    let mut s = String::from(HEADER);
    links(&mut s);
    writeln!(
        s,
        "server edge[1..{edges}] {{\n  tier = edge\n  hardware = xeon\n  models = [llama2-7b]\n  link = lan0\n  max_batch = 4\n}}"
    )
    .unwrap();
    writeln!(
        s,
        "server cloud[1..{clouds}] {{\n  tier = cloud\n  hardware = a100 x 2\n  models = [llama2-7b, llama-33b]\n  link = lan1\n  max_batch = 64\n}}"
    )
    .unwrap();
    s.push_str(FOOTER);
    s
}
