//! The trace readers under mutated real files, on stable, in every `cargo test`: the shipped Azure
//! slice (`examples/traces/`), rewritten with its real times and token counts into each format
//! (Azure 2023 and 2024, Mooncake, BurstGPT, plain CSV and JSONL, bandwidth series), is mutated
//! (byte flips, truncation, deletions, duplicated / deleted / swapped lines, huge and negative
//! numbers, non-UTF-8 bytes, separators) and read through every public reading path by
//! [`harness::check`], the same function the cargo-fuzz targets in `fuzz/` call.
//!
//! Case counts: `PERLLM_FUZZ_CASES` (default 600 per property) for longer runs, e.g.
//! `PERLLM_FUZZ_CASES=20000 cargo test --release -p perllm-core --test it trace_fuzz`.
//!
//! Fuzz inputs that ever failed, and the minimized libFuzzer corpus, live in
//! `tests/fixtures/trace-fuzz/<target>/` and are replayed by `corpus_and_regressions_pass`.
//! `write_seed_corpora` (ignored) writes the libFuzzer seed corpora; see `fuzz/README.md`.

pub mod harness;

use crate::mutate::Mutation;
use harness::{NAME, Options, Target};
use perllm_core::workload::trace::{MAX_PAYLOAD_BYTES, Reader, TraceSource};
use perllm_core::workload::{RequestSource, WorkloadError};
use proptest::prelude::*;
use std::io::Cursor;
use std::path::PathBuf;

const SLICE: &str = include_str!("../../../examples/traces/azure-llm-2023-conv-10min.csv");

fn cases() -> u32 {
    std::env::var("PERLLM_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600)
}

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/trace-fuzz")
}

// ------------------------------------------------------------------------------------------------
// The shipped slice in every format
// ------------------------------------------------------------------------------------------------

/// One row of the slice: its timestamp text, seconds since the first row, and token counts.
#[derive(Clone, Debug)]
struct SliceRow {
    stamp: String,
    secs: f64,
    prompt: String,
    output: String,
}

/// The first `n` rows of the shipped slice (times parsed independently of the readers: all rows
/// are on one day).
fn slice_rows(n: usize) -> Vec<SliceRow> {
    let secs_of_day = |ts: &str| -> f64 {
        let time = ts.split(' ').nth(1).unwrap();
        let v: Vec<f64> = time.split(':').map(|x| x.parse().unwrap()).collect();
        v[0] * 3600.0 + v[1] * 60.0 + v[2]
    };
    let mut rows: Vec<SliceRow> = SLICE
        .lines()
        .skip(1)
        .take(n)
        .map(|l| {
            let f: Vec<&str> = l.trim().split(',').collect();
            SliceRow {
                stamp: f[0].to_string(),
                secs: secs_of_day(f[0]),
                prompt: f[1].to_string(),
                output: f[2].to_string(),
            }
        })
        .collect();
    let t0 = rows[0].secs;
    for r in &mut rows {
        r.secs -= t0;
    }
    rows
}

/// Variants per target written by [`seed_file`].
const VARIANTS: usize = 2;

const SLOS: [&str; 3] = ["interactive", "standard", "batch"];
const MODELS: [&str; 2] = ["llama2-7b", "llama-33b"];

/// Rows of the slice written in `target`'s format, variant `variant` (see the match arms); `edit`
/// may replace a row's fields before it is written. Returns the file and, for each data row, its
/// 1-based line number.
fn render(
    target: Target,
    variant: usize,
    rows: &[SliceRow],
    edit: &dyn Fn(usize, &mut Fields),
) -> (Vec<u8>, Vec<u64>) {
    let mut out = String::new();
    let mut lines = Vec::new();
    let mut line = 1u64;
    let header = |out: &mut String, line: &mut u64, h: &str| {
        out.push_str(h);
        out.push_str(if variant == 0 && target == Target::Azure {
            "\r\n"
        } else {
            "\n"
        });
        *line += 1;
    };
    match (target, variant) {
        (Target::Azure, _) => header(
            &mut out,
            &mut line,
            "TIMESTAMP,ContextTokens,GeneratedTokens",
        ),
        (Target::Burstgpt, 0) => header(
            &mut out,
            &mut line,
            "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type",
        ),
        (Target::Burstgpt, _) => header(
            &mut out,
            &mut line,
            "Timestamp,Session ID,Elapsed time,Model,Request tokens,Response tokens,Total tokens,Log Type",
        ),
        (Target::Csv, 0) => header(
            &mut out,
            &mut line,
            "arrival_s,prompt_tokens,output_tokens,slo,model,payload_bytes",
        ),
        (Target::Csv, _) => header(&mut out, &mut line, "arrival_s,prompt_tokens,output_tokens"),
        (Target::Bandwidth, 0) => header(&mut out, &mut line, "time_s,factor"),
        (Target::Bandwidth, _) => header(&mut out, &mut line, "time_s,bandwidth_mbps"),
        (Target::Mooncake | Target::Jsonl, _) => {}
    }
    for (i, r) in rows.iter().enumerate() {
        let mut f = Fields {
            time: match (target, variant) {
                (Target::Azure, 0) => r.stamp.clone(),
                // The 2024 release: microseconds and a `+00:00` offset.
                (Target::Azure, _) => format!("{}+00:00", &r.stamp[..26]),
                (Target::Mooncake, 0) => format!("{}", (r.secs * 1e3).round() as u64),
                (Target::Mooncake, _) => format!("{:.3}", r.secs * 1e3),
                // Bandwidth times must increase strictly: one point per row, 0.5 s apart.
                (Target::Bandwidth, _) => format!("{}", i as f64 * 0.5),
                _ => format!("{:.6}", r.secs),
            },
            prompt: r.prompt.clone(),
            output: r.output.clone(),
            payload: if i % 3 == 2 {
                String::new()
            } else {
                format!("{}", 1000 + 37 * r.prompt.parse::<u64>().unwrap_or(1))
            },
        };
        edit(i, &mut f);
        let model = MODELS[i % 2];
        let slo = SLOS[i % 3];
        let row = match (target, variant) {
            (Target::Azure, 0) => format!("{},{},{}\r\n", f.time, f.prompt, f.output),
            (Target::Azure, _) => format!("{},{},{}\n", f.time, f.prompt, f.output),
            (Target::Mooncake, _) => format!(
                "{{\"timestamp\": {}, \"input_length\": {}, \"output_length\": {}, \"hash_ids\": [{}, {}]}}\n",
                f.time,
                f.prompt,
                f.output,
                i * 2,
                i * 2 + 1
            ),
            (Target::Burstgpt, v) => {
                // Every seventh row a failed request (0 response tokens), as BurstGPT records them.
                let out = if i % 7 == 6 {
                    "0".into()
                } else {
                    f.output.clone()
                };
                let total = format!(
                    "{}",
                    f.prompt.parse::<u64>().unwrap_or(0) + out.parse::<u64>().unwrap_or(0)
                );
                let (m, log) = if i % 2 == 0 {
                    ("ChatGPT", "Conversation log")
                } else {
                    ("GPT-4", "API log")
                };
                if v == 0 {
                    format!("{},{m},{},{out},{total},{log}\n", f.time, f.prompt)
                } else {
                    format!(
                        "{},{},{:.3},{model},{},{out},{total},{log}\n",
                        f.time,
                        i % 5,
                        r.secs / 10.0,
                        f.prompt
                    )
                }
            }
            (Target::Csv, 0) => format!(
                "{},{},{},{slo},{model},{}\n",
                f.time, f.prompt, f.output, f.payload
            ),
            (Target::Csv, _) => format!("{},{},{}\n", f.time, f.prompt, f.output),
            (Target::Jsonl, 0) => {
                let payload = if f.payload.is_empty() {
                    String::new()
                } else {
                    format!(", \"payload_bytes\": {}", f.payload)
                };
                format!(
                    "{{\"arrival_s\": {}, \"prompt_tokens\": {}, \"output_tokens\": {}, \"slo\": \"{slo}\", \"model\": \"{model}\"{payload}}}\n",
                    f.time, f.prompt, f.output
                )
            }
            (Target::Jsonl, _) => format!(
                "{{\"arrival_s\": {}, \"prompt_tokens\": {}, \"output_tokens\": {}}}\n",
                f.time, f.prompt, f.output
            ),
            (Target::Bandwidth, 0) => {
                let factor = f.prompt.parse::<f64>().unwrap_or(1.0) / 500.0;
                format!("{},{factor:.4}\n", f.time)
            }
            (Target::Bandwidth, _) => format!("{},{}\n", f.time, f.prompt),
        };
        out.push_str(&row);
        lines.push(line);
        line += 1;
    }
    (out.into_bytes(), lines)
}

/// The fields of one row as text, before they are written.
#[derive(Clone, Debug)]
struct Fields {
    time: String,
    prompt: String,
    output: String,
    payload: String,
}

/// The first `n` rows of the slice in `target`'s format, variant `variant`.
fn seed_file(target: Target, variant: usize, n: usize) -> Vec<u8> {
    render(target, variant, &slice_rows(n), &|_, _| {}).0
}

// ------------------------------------------------------------------------------------------------
// Mutations
// ------------------------------------------------------------------------------------------------

/// Numbers and fragments that break readers: overflowing, negative, fractional, non-finite.
const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1.5",
    "1e3",
    "1e400",
    "-0",
    "NaN",
    "inf",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999",
    "1099511627776",
    "1099511627777",
    "9223372036854775807",
    "0.000000001",
    "1.7976931348623157e308",
];

const TOKENS: &[&[u8]] = &[
    b",",
    b"\"",
    b"\n",
    b"\r",
    b"\r\n",
    b"{",
    b"}",
    b":",
    b" ",
    b"\t",
    b"\xff\xfe",
    b"\xc3",
    b"\xef\xbb\xbf",
    b"\0",
    b"null",
    b"[]",
    b"\"slo\": \"batch\"",
    b"T",
    b"+00:00",
    b"Z",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Mutation::ByteFlip(a, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1usize..30).prop_map(|(a, n)| Mutation::Delete(a, n)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(a, t)| Mutation::Insert(a, t)),
        (any::<usize>(), 0..NUMBERS.len()).prop_map(|(a, n)| Mutation::Number(a, n)),
        (any::<usize>(), 0..NUMBERS.len()).prop_map(|(a, n)| Mutation::Number(a, n)),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        any::<usize>().prop_map(Mutation::DeleteLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
    ]
}

/// `src` with `muts` applied, drawing from [`TOKENS`] and [`NUMBERS`].
fn apply(src: &[u8], muts: &[Mutation]) -> Vec<u8> {
    crate::mutate::apply(src, muts, TOKENS, NUMBERS)
}

fn show(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    if s.len() > 3000 {
        format!("{}...", &s[..s.floor_char_boundary(3000)])
    } else {
        s.into_owned()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    /// Mutated real rows through every reader, with random replay options.
    #[test]
    fn mutated_shipped_slice_in_every_format(
        t in 0..Target::ALL.len(),
        variant in 0..VARIANTS,
        n in 1usize..60,
        opts in any::<u8>(),
        muts in prop::collection::vec(mutation(), 1..6),
    ) {
        let target = Target::ALL[t];
        let text = apply(&seed_file(target, variant, n), &muts);
        let opts = Options::from_byte(opts);
        if let Err(m) = harness::check(target, opts, &text) {
            prop_assert!(false, "{target:?} {opts:?}: {m}\n--- input ---\n{}", show(&text));
        }
    }

    /// A row made invalid on purpose is reported with the file and exactly its line; with
    /// `skip_bad_rows` it is skipped and counted, and the other rows replay.
    #[test]
    fn a_bad_row_is_named_by_its_line(
        t in 0..5usize,
        variant in 0..VARIANTS,
        n in 2usize..40,
        k in any::<prop::sample::Index>(),
        bad in 0..BAD_FIELDS.len(),
    ) {
        let target = Target::ALL[t];
        let rows = slice_rows(n);
        let k = k.index(n);
        let (field, value, needle) = BAD_FIELDS[bad];
        if field == "payload" && !(matches!(target, Target::Csv | Target::Jsonl) && variant == 0) {
            return Ok(());
        }
        // A BurstGPT failed-request row (every seventh) with a parsable prompt is not malformed.
        if target == Target::Burstgpt && k % 7 == 6 {
            return Ok(());
        }
        let value = value.to_string();
        let edit = move |i: usize, f: &mut Fields| {
            if i == k {
                match field {
                    "prompt" => f.prompt = value.clone(),
                    "time" => f.time = value.clone(),
                    _ => f.payload = value.clone(),
                }
            }
        };
        let (text, lines) = render(target, variant, &rows, &edit);
        let e = replay_err(target, false, &text);
        let msg = e.to_string();
        prop_assert_eq!(e.row, lines[k], "{}\n{}", msg, show(&text));
        prop_assert!(msg.starts_with(&format!("{NAME}: row {}: ", lines[k])), "{}", msg);
        let json = matches!(target, Target::Mooncake | Target::Jsonl);
        prop_assert!(json || msg.contains(needle), "`{}` not in {}", needle, msg);

        // Skipped and counted with skip_bad_rows.
        let (ok, skipped) = replay_skipping(target, &text);
        let failed = if target == Target::Burstgpt { (0..n).filter(|i| i % 7 == 6).count() } else { 0 };
        prop_assert_eq!((ok, skipped), ((n - 1 - failed) as u64, (1 + failed) as u64), "{}", show(&text));
    }
}

/// (field, value, text the error must contain). Each makes a row malformed in every format.
const BAD_FIELDS: &[(&str, &str, &str)] = &[
    ("prompt", "0", "0"),
    ("prompt", "4294967296", "4294967296"),
    ("prompt", "18446744073709551616", "too large"),
    ("prompt", "-3", "-3"),
    ("prompt", "1.5", "1.5"),
    ("prompt", "12a", "12a"),
    ("prompt", "", "empty"),
    ("time", "-1", "timestamp"),
    ("time", "1e400", "timestamp"),
    ("time", "NaN", "timestamp"),
    (
        "payload",
        "1099511627777",
        "1099511627777 is more than the largest supported",
    ),
    (
        "payload",
        "18446744073709551615",
        "18446744073709551615 is more than",
    ),
    ("payload", "-5", "payload_bytes"),
];

fn reader(text: &[u8]) -> Reader {
    Box::new(Cursor::new(text.to_vec()))
}

fn source<'a>(
    target: Target,
    skip: bool,
    text: &'a [u8],
) -> Result<TraceSource<'a>, WorkloadError> {
    let opts = Options {
        skip_bad_rows: skip,
        ..Options::default()
    };
    let w = harness::world(target, opts);
    let spec = w.scenario.workload.trace.clone().unwrap();
    TraceSource::with_opener(&spec, NAME, move || Ok(reader(text)), &w)
}

fn replay_err(target: Target, skip: bool, text: &[u8]) -> WorkloadError {
    let mut src = match source(target, skip, text) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let mut n = 0;
    while let Some(r) = src.next_request() {
        match r {
            Ok(_) => n += 1,
            Err(e) => return e,
        }
    }
    panic!(
        "expected an error, the replay emitted {n} requests\n{}",
        show(text)
    );
}

/// Replay with skip_bad_rows: (requests, skipped rows).
fn replay_skipping(target: Target, text: &[u8]) -> (u64, u64) {
    let mut src = source(target, true, text).unwrap();
    let mut n = 0;
    while let Some(r) = src.next_request() {
        r.unwrap();
        n += 1;
    }
    (n, src.skipped())
}

/// Every rewritten seed is a valid trace that replays all its rows (so the mutations start from
/// real, accepted input), and every option byte accepts it.
#[test]
fn seeds_are_valid_in_every_format() {
    const N: usize = 20;
    for target in Target::ALL {
        for variant in 0..VARIANTS {
            let text = seed_file(target, variant, N);
            // The columns from_column() reads: plain CSV / JSONL variant 0, BurstGPT variant 1
            // (scenario model names); the others have none or foreign names.
            let columns = match target {
                Target::Csv | Target::Jsonl => variant == 0,
                Target::Burstgpt => variant == 1,
                _ => true,
            };
            let failed = if target == Target::Burstgpt {
                (0..N).filter(|i| i % 7 == 6).count() as u64
            } else {
                0
            };
            for b in 0..=255u8 {
                let opts = Options::from_byte(b);
                if opts.from_column && !columns {
                    continue;
                }
                let o = harness::check(target, opts, &text)
                    .unwrap_or_else(|m| panic!("{target:?}/{variant} {opts:?}: {m}"));
                assert!(
                    o.error.is_none(),
                    "{target:?}/{variant} {opts:?}: {:?}",
                    o.error
                );
                let whole = !opts.window && !opts.target_rate && !opts.repeat;
                if whole {
                    assert_eq!(
                        o.requests,
                        N as u64 - failed,
                        "{target:?}/{variant} {opts:?}"
                    );
                }
            }
        }
    }
}

/// The known bug: a row with payload_bytes = u64::MAX was accepted and overflowed the link's
/// clock in the simulator. Now a row error naming file and row; 1 TiB exactly is accepted and a
/// run with it ends.
#[test]
fn absurd_payload_bytes_are_row_errors() {
    let text = "arrival_s,prompt_tokens,output_tokens,payload_bytes\n0,10,10,1000\n0.5,10,10,18446744073709551615\n";
    let e = replay_err(Target::Csv, false, text.as_bytes());
    assert_eq!(
        e.to_string(),
        format!(
            "{NAME}: row 3: payload_bytes: 18446744073709551615 is more than the largest supported 1099511627776 (1 TiB)"
        )
    );
    let jsonl = "{\"arrival_s\": 0, \"prompt_tokens\": 1, \"output_tokens\": 1, \"payload_bytes\": 1099511627777}\n";
    let e = replay_err(Target::Jsonl, false, jsonl.as_bytes());
    assert_eq!(e.row, 1);
    assert!(
        e.message
            .starts_with("payload_bytes: 1099511627777 is more than"),
        "{e}"
    );

    // The limit itself is accepted, and the simulator ends a run with it.
    let text = format!(
        "arrival_s,prompt_tokens,output_tokens,payload_bytes\n0,10,10,{MAX_PAYLOAD_BYTES}\n0.5,10,10,1000\n"
    );
    let w = harness::world(Target::Csv, Options::default());
    let mut sc = w.scenario.clone();
    sc.duration_ns = 60 * perllm_core::spec::SECOND;
    let w = sc.build().unwrap();
    let spec = w.scenario.workload.trace.clone().unwrap();
    let mut src =
        TraceSource::with_opener(&spec, NAME, || Ok(reader(text.as_bytes())), &w).unwrap();
    let report = perllm_core::run(
        &w,
        &mut perllm_core::simple::LeastLoaded::default(),
        &perllm_core::Roofline::default(),
        &mut src,
        &mut [],
    )
    .unwrap();
    assert_eq!(report.arrived, 2);
}

/// Output tokens x output_bytes_per_token above 1 TiB is a row error (the product is computed in
/// floating point and never wraps); just below it is accepted.
#[test]
fn output_byte_products_are_bounded() {
    let opts = Options {
        big_output_bytes: true,
        ..Options::default()
    };
    // 1 MB per token: 1,099,511 tokens is just below 2^40 bytes, 1,099,512 just above. (The
    // second row releases the first from the re-ordering buffer before the bad row is read.)
    let text = "arrival_s,prompt_tokens,output_tokens\n0,10,1099511\n3,10,5\n4,10,1099512\n";
    let w = harness::world(Target::Csv, opts);
    let spec = w.scenario.workload.trace.clone().unwrap();
    let mut src =
        TraceSource::with_opener(&spec, NAME, || Ok(reader(text.as_bytes())), &w).unwrap();
    let first = src.next_request().unwrap().unwrap();
    assert_eq!(first.output_bytes, 1_099_511_000_000);
    let e = src.next_request().unwrap().unwrap_err();
    assert_eq!(e.row, 4);
    assert!(
        e.message
            .contains("1099512 output tokens x 1000000 output_bytes_per_token"),
        "{e}"
    );
    assert!(src.next_request().is_none());
    // The same row in every format with an output column is refused.
    for target in [
        Target::Azure,
        Target::Mooncake,
        Target::Burstgpt,
        Target::Jsonl,
    ] {
        let (text, lines) = render(target, 0, &slice_rows(3), &|i, f| {
            if i == 1 {
                f.output = "4294967295".into();
            }
        });
        let w = harness::world(target, opts);
        let spec = w.scenario.workload.trace.clone().unwrap();
        let mut src = TraceSource::with_opener(&spec, NAME, || Ok(reader(&text)), &w).unwrap();
        let e = std::iter::from_fn(|| src.next_request())
            .find_map(Result::err)
            .unwrap_or_else(|| panic!("{target:?}: no error"));
        assert_eq!(e.row, lines[1], "{target:?}: {e}");
        assert!(e.message.contains("output_bytes_per_token"), "{e}");
    }
}

/// Every reproducer of a past failure (`regression-*`, `libfuzzer-*`) and the minimized libFuzzer
/// corpus (`min-*`), per target, pass.
#[test]
fn corpus_and_regressions_pass() {
    let mut total = 0;
    for target in Target::ALL {
        let dir = fixture_dir().join(target.name());
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = rd.map(|e| e.unwrap().path()).collect();
        files.sort();
        for p in files {
            let data = std::fs::read(&p).unwrap();
            if let Err(m) = harness::check_input(target, &data) {
                panic!("{}: {m}", p.display());
            }
            total += 1;
        }
    }
    assert!(total > 0, "no inputs under {}", fixture_dir().display());
}

/// Write the libFuzzer seed corpora: `PERLLM_TRACE_SEEDS=fuzz/corpus cargo test -p perllm-core
/// --test it write_seed_corpora -- --ignored` writes `fuzz/corpus/trace_<target>/`: the slice's
/// first 5, 40 and 300 rows in each variant, each with options bytes 0x00 (defaults), 0x03 (skip
/// bad rows, from column) and 0x5c (by size, target rate, repeat, 1 MB per output token).
#[test]
#[ignore = "writes files; run by hand, see fuzz/README.md"]
fn write_seed_corpora() {
    let Some(root) = std::env::var_os("PERLLM_TRACE_SEEDS") else {
        panic!("set PERLLM_TRACE_SEEDS to the corpus root (e.g. fuzz/corpus)");
    };
    let root = PathBuf::from(root);
    for target in Target::ALL {
        let dir = root.join(format!("trace_{}", target.name()));
        std::fs::create_dir_all(&dir).unwrap();
        for variant in 0..VARIANTS {
            for n in [5, 40, 300] {
                for opt in [0x00u8, 0x03, 0x5c] {
                    let mut data = vec![opt];
                    data.extend(seed_file(target, variant, n));
                    let p = dir.join(format!("seed-v{variant}-{n}rows-{opt:02x}"));
                    std::fs::write(&p, data).unwrap();
                }
            }
        }
    }
    // The test fixtures of the other crates, where the format fits.
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    for (target, file) in [
        (
            Target::Azure,
            "perllm-dsl/tests/fixtures/data/azure-sample.csv",
        ),
        (Target::Csv, "perllm-dsl/tests/fixtures/data/plain.csv"),
        (Target::Csv, "perllm-cli/tests/fixtures/bad-row.csv"),
        (
            Target::Bandwidth,
            "perllm-dsl/tests/fixtures/data/wan-series.csv",
        ),
        (
            Target::Bandwidth,
            "perllm-dsl/tests/fixtures/data/bad-series.csv",
        ),
    ] {
        let mut data = vec![0u8];
        data.extend(std::fs::read(repo.join(file)).unwrap());
        let name = file.replace('/', "_");
        std::fs::write(
            root.join(format!("trace_{}", target.name())).join(name),
            data,
        )
        .unwrap();
    }
}

/// Row numbers are line numbers whatever the line endings and blank lines: the `csv` crate's
/// reader, used before, named the line where it started reading, one too early in CRLF files and
/// the blank line before a row after blank lines.
#[test]
fn rows_are_named_by_their_line_with_crlf_and_blank_lines() {
    for eol in ["\n", "\r\n"] {
        for target in [
            Target::Azure,
            Target::Burstgpt,
            Target::Csv,
            Target::Bandwidth,
        ] {
            let (mut text, _) = render(target, 1, &slice_rows(4), &|i, f| {
                if i == 3 {
                    f.prompt = "bad".into();
                }
            });
            // Blank lines before the header, between rows and a whitespace-only line.
            let mut s = String::from_utf8(text).unwrap().replace('\n', eol);
            s.insert_str(0, eol);
            let at = s.find(eol).unwrap() + eol.len();
            let at = at + s[at..].find(eol).unwrap() + eol.len(); // after the header
            s.insert_str(at, &format!("{eol}   {eol}"));
            text = s.into_bytes();
            // Line 1 blank, 2 header, 3 and 4 blank, 5-8 rows: the bad fourth row is line 8.
            let e = if target == Target::Bandwidth {
                perllm_core::workload::read_bandwidth_csv(&text[..], NAME).unwrap_err()
            } else {
                replay_err(target, false, &text)
            };
            assert_eq!(e.row, 8, "{target:?} {eol:?}: {e}\n{}", show(&text));
            assert!(e.message.contains("bad"), "{e}");
        }
    }
}

/// Byte-order marks before the first record (at the file's start, or alone on a line after blank
/// lines) are dropped without shifting the rows after them.
#[test]
fn byte_order_marks_before_the_header_keep_rows() {
    const BOM: &str = "\u{feff}";
    for (prefix, skipped) in [
        (BOM.to_string(), 0),
        (format!("{BOM}\n"), 1),
        (format!("\n{BOM}\n"), 2),
        (format!("{BOM}  \r\n\n{BOM}{BOM}\n"), 3),
    ] {
        for target in [
            Target::Azure,
            Target::Burstgpt,
            Target::Csv,
            Target::Bandwidth,
        ] {
            let (text, _) = render(target, 1, &slice_rows(4), &|i, f| {
                if i == 3 {
                    f.prompt = "bad".into();
                }
            });
            let mut text = [prefix.as_bytes(), &text].concat();
            // Header, 4 rows: the bad fourth row is line 5 after the skipped lines.
            let e = if target == Target::Bandwidth {
                perllm_core::workload::read_bandwidth_csv(&text[..], NAME).unwrap_err()
            } else {
                replay_err(target, false, &text)
            };
            assert_eq!(
                e.row,
                5 + skipped,
                "{target:?} {prefix:?}: {e}\n{}",
                show(&text)
            );
            assert!(e.message.contains("bad"), "{e}");
            text.clear();
        }
    }
    // A comment after a BOM line is still a comment (bandwidth series).
    let e = perllm_core::workload::read_bandwidth_csv(&b"\n\xEF\xBB\xBF\n#"[..], NAME).unwrap_err();
    assert_eq!(
        (e.row, e.message.as_str()),
        (0, "the bandwidth series has no rows")
    );
}

/// A CSV record is bounded in bytes and fields (a line of commas or an unterminated quote cannot
/// take unbounded memory), and a quoted field spanning lines does not shift later row numbers.
#[test]
fn csv_records_are_bounded_and_quoted_newlines_keep_rows() {
    let header = "arrival_s,prompt_tokens,output_tokens\n0,1,1\n";
    let commas = format!("{header}1,{}\n", ",".repeat(70_000));
    let e = replay_err(Target::Csv, true, commas.as_bytes());
    assert_eq!(
        (e.row, e.message.as_str()),
        (3, "a line has more than 65536 fields")
    );

    let long = format!(
        "{header}1,\"{}\n",
        "x".repeat(perllm_core::workload::trace::MAX_LINE_BYTES as usize + 10)
    );
    let e = replay_err(Target::Csv, true, long.as_bytes());
    assert_eq!(e.row, 3);
    assert!(e.message.starts_with("line is longer than"), "{e}");

    // Row 3 holds a quoted newline; the bad row after it is line 5.
    let text =
        "arrival_s,prompt_tokens,output_tokens,slo\n0,1,1,a\n1,1,1,\"two\nlines\"\n2,x,1,b\n";
    let e = replay_err(Target::Csv, false, text.as_bytes());
    assert_eq!(e.row, 5, "{e}");
}
