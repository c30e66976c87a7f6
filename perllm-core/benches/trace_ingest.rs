//! Trace ingestion speed (rows per second) and peak memory of the streaming trace replayer.
//!
//! `cargo bench -p perllm-core --bench trace_ingest`
//!
//! Generates synthetic 5,000,000-row traces (Azure CSV, perllm plain CSV, Mooncake JSONL) in a
//! temporary directory, then replays each through `TraceSource` from a buffered file reader,
//! producing full `Request`s (SLO and model drawn by share, payload sampled). Before the timed runs
//! it prints the process's peak resident memory (Linux `VmHWM`) after replaying a 500,000-row and
//! then the 5,000,000-row Azure file: equal figures mean memory does not grow with trace length.
//!
//! Without `--bench` (as under `cargo test --benches`) it runs once on 20,000-row files.

use criterion::{Criterion, Throughput};
use perllm_core::spec::{SECOND, TraceFormat, TraceSpec};
use perllm_core::workload::{Reader, RequestSource, TraceSource};
use perllm_core::{World, testbed};
use std::fs::File;
use std::hint::black_box;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

fn generate(path: &Path, format: TraceFormat, rows: u64) {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path).expect("create trace"));
    // Deterministic, varied sizes; 10 ms apart.
    let size = |i: u64| (1 + (i * 7919) % 4000, 1 + (i * 104_729) % 700);
    match format {
        TraceFormat::Azure => {
            writeln!(w, "TIMESTAMP,ContextTokens,GeneratedTokens").unwrap();
            for i in 0..rows {
                let ms = i * 10;
                let (s, m, h, d) = (
                    ms / 1000 % 60,
                    ms / 60_000 % 60,
                    ms / 3_600_000 % 24,
                    1 + ms / 86_400_000,
                );
                let (p, o) = size(i);
                writeln!(
                    w,
                    "2023-11-{d:02} {h:02}:{m:02}:{s:02}.{:03}0000,{p},{o}",
                    ms % 1000
                )
                .unwrap();
            }
        }
        TraceFormat::Csv => {
            writeln!(w, "arrival_s,prompt_tokens,output_tokens").unwrap();
            for i in 0..rows {
                let (p, o) = size(i);
                writeln!(w, "{}.{:02},{p},{o}", i / 100, i % 100).unwrap();
            }
        }
        TraceFormat::Mooncake => {
            for i in 0..rows {
                let (p, o) = size(i);
                writeln!(
                    w,
                    "{{\"timestamp\": {}, \"input_length\": {p}, \"output_length\": {o}, \"hash_ids\": [{}, {}, {}]}}",
                    i * 10,
                    i,
                    i + 1,
                    i + 2
                )
                .unwrap();
            }
        }
        _ => unreachable!("not benchmarked"),
    }
    w.flush().unwrap();
}

fn world(format: TraceFormat) -> (World, TraceSpec) {
    let mut sc = testbed::paper(1.0, 10_000_000 * SECOND);
    let spec = testbed::trace("bench", format);
    sc.workload.trace = Some(spec.clone());
    (sc.build().expect("valid scenario"), spec)
}

/// Replay the whole file; returns the number of requests and a checksum.
fn ingest(path: &Path, world: &World, spec: &TraceSpec) -> (u64, u64) {
    let r: Reader = Box::new(BufReader::with_capacity(
        1 << 16,
        File::open(path).expect("open"),
    ));
    let mut src = TraceSource::new(spec, &path.display().to_string(), r, world).expect("trace");
    let (mut n, mut sum) = (0u64, 0u64);
    while let Some(req) = src.next_request() {
        let req = req.expect("valid row");
        n += 1;
        sum = sum.wrapping_add(req.prompt_tokens as u64 + req.arrival_ns);
    }
    (n, sum)
}

fn vm_hwm_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let rows: u64 = if full { 5_000_000 } else { 20_000 };
    let dir = tempfile::tempdir().expect("temp dir");
    let files: Vec<(TraceFormat, &str, PathBuf)> = [
        (TraceFormat::Azure, "azure_csv", "azure.csv"),
        (TraceFormat::Csv, "plain_csv", "plain.csv"),
        (TraceFormat::Mooncake, "mooncake_jsonl", "mooncake.jsonl"),
    ]
    .into_iter()
    .map(|(f, name, file)| {
        let p = dir.path().join(file);
        generate(&p, f, rows);
        (f, name, p)
    })
    .collect();

    // Peak memory: a tenth of the rows, then all of them.
    let small = dir.path().join("azure-small.csv");
    generate(&small, TraceFormat::Azure, rows / 10);
    let (w, s) = world(TraceFormat::Azure);
    let hwm0 = vm_hwm_kib();
    let (n_small, _) = ingest(&small, &w, &s);
    let hwm1 = vm_hwm_kib();
    let (n_full, _) = ingest(&files[0].2, &w, &s);
    let hwm2 = vm_hwm_kib();
    assert_eq!((n_small, n_full), (rows / 10, rows));
    let size = std::fs::metadata(&files[0].2).map(|m| m.len()).unwrap_or(0);
    println!(
        "trace_ingest memory: VmHWM before {:?} KiB, after {n_small} rows {:?} KiB, after {n_full} rows ({:.0} MB file) {:?} KiB",
        hwm0,
        hwm1,
        size as f64 / 1e6,
        hwm2
    );

    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group(format!("ingest_{rows}_rows"));
    g.sample_size(10);
    g.throughput(Throughput::Elements(rows));
    for (format, name, path) in &files {
        let (w, s) = world(*format);
        g.bench_function(*name, |b| {
            b.iter(|| {
                let (n, sum) = ingest(path, &w, &s);
                assert_eq!(n, rows);
                black_box(sum)
            })
        });
    }
    g.finish();
    c.final_summary();
}
