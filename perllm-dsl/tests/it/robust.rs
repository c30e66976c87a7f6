//! No input may panic the loader: empty files, binary garbage, extreme nesting, huge files.

use perllm_dsl::{SourceKind, load_file, load_str};

fn codes(src: &str, kind: SourceKind) -> Vec<&'static str> {
    match load_str("input", src, kind) {
        Ok(_) => Vec::new(),
        Err(f) => f.errors().map(|d| d.code).collect(),
    }
}

/// [`codes`] of `src`, loaded on a thread with a small stack.
fn codes_on_small_stack(src: String, kind: SourceKind) -> Vec<&'static str> {
    small_stack(move || codes(&src, kind))
}

/// Runs `f` on a thread with a small stack, so a deep recursion would crash the test.
fn small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn deep_nesting_is_a_diagnostic_not_a_stack_overflow() {
    for (open, close) in [("[", "]"), ("(", ")"), ("{", "}")] {
        let n = 100_000;
        let src = format!(
            "workload {{ models = {}{} }}",
            open.repeat(n),
            close.repeat(n)
        );
        let c = codes_on_small_stack(src, SourceKind::Perllm);
        assert_eq!(c, vec!["perllm::nesting"], "{open}");
    }
    // Unbalanced: only opening brackets.
    let src = format!("scenario {{ x = {}", "(".repeat(100_000));
    assert_eq!(
        codes_on_small_stack(src, SourceKind::Perllm),
        vec!["perllm::nesting"]
    );
    // TOML: nested arrays and nesting inside a string that is parsed as an expression.
    let src = format!(
        "[workload]\nmodels = {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_eq!(
        codes_on_small_stack(src, SourceKind::Toml),
        vec!["perllm::nesting"]
    );
    let src = format!("[workload]\narrivals = \"{}\"\n", "(".repeat(100_000));
    let c = codes_on_small_stack(src, SourceKind::Toml);
    assert!(c.contains(&"perllm::nesting"), "{c:?}");
}

#[test]
fn long_flat_expressions_do_not_recurse() {
    let terms = vec!["energy.idle"; 100_000].join(" + ");
    let src = std::fs::read_to_string(crate::common::examples_dir().join("paper.perllm"))
        .unwrap()
        .replace(
            "minimize = 1.0 * energy.transmission + 1.0 * energy.inference + 0.5 * energy.idle",
            &format!("minimize = {terms}"),
        );
    let loaded =
        small_stack(move || load_str("long.perllm", &src, SourceKind::Perllm).map(|l| l.scenario));
    let s = loaded.unwrap_or_else(|f| panic!("{}", f.render(false)));
    assert_eq!(s.objective.weights.idle, 100_000.0);
    // Repeated prefix minus is not allowed (one sign per operand), so it cannot recurse either.
    let src = format!("scenario {{ seed = {}1 }}", "- ".repeat(100_000));
    assert_eq!(
        codes_on_small_stack(src, SourceKind::Perllm),
        vec!["perllm::syntax"]
    );
    // A long chain of comparisons is one error, not a deep tree.
    let src = format!(
        "objective {{ constraint {} }}",
        vec!["latency"; 50_000].join(" <= ")
    );
    let c = codes_on_small_stack(src, SourceKind::Perllm);
    assert!(c.contains(&"perllm::syntax"), "{c:?}");
}

#[test]
fn empty_and_blank_inputs_are_diagnostics() {
    for src in ["", "   \n\n\t", "// only a comment", "# only a comment\n"] {
        assert_eq!(
            codes(src, SourceKind::Perllm),
            vec!["perllm::missing"],
            "{src:?}"
        );
    }
    assert_eq!(codes("", SourceKind::Toml), vec!["perllm::missing"]);
}

#[test]
fn binary_garbage_is_a_diagnostic() {
    // Deterministic pseudo-random bytes (xorshift), decoded lossily and as raw control characters.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut bytes = Vec::new();
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.push(x as u8);
    }
    let lossy = String::from_utf8_lossy(&bytes).into_owned();
    assert!(!codes(&lossy, SourceKind::Perllm).is_empty());
    assert!(!codes(&lossy, SourceKind::Toml).is_empty());
    let ctrl: String = bytes.iter().map(|b| char::from(b & 0x7f)).collect();
    assert!(!codes(&ctrl, SourceKind::Perllm).is_empty());
    // As a file: not UTF-8 is reported as such.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("garbage.perllm");
    std::fs::write(&p, &bytes).unwrap();
    let f = load_file(&p).unwrap_err();
    assert_eq!(f.errors().next().unwrap().code, "perllm::io");
    assert!(f.to_string().contains("not UTF-8"), "{f}");
}

#[test]
fn unreadable_paths_are_diagnostics() {
    let f = load_file(std::path::Path::new("/definitely/not/here.perllm")).unwrap_err();
    assert_eq!(f.errors().next().unwrap().code, "perllm::io");
    let f = load_file(std::path::Path::new("scenario.yaml")).unwrap_err();
    assert!(f.to_string().contains("not a scenario file"), "{f}");
    let help = f.errors().next().unwrap().help.clone().unwrap_or_default();
    assert!(help.contains("`.json`"), "{help}");
    assert!(!help.contains("did you mean"), "{help}");
    // A typo in the extension: the intended file is suggested.
    let f = load_file(std::path::Path::new("examples/paper.perlm")).unwrap_err();
    let help = f.errors().next().unwrap().help.clone().unwrap_or_default();
    assert!(
        help.starts_with("did you mean `examples/paper.perllm`?"),
        "{help}"
    );
}

/// Debug builds of the pest parser are 20-50x slower than release builds; `cargo test` runs the
/// big-input tests at a tenth of the size, `cargo test --release` at full size (50 MB, 1M values).
const SCALE_DOWN: usize = if cfg!(debug_assertions) { 8 } else { 1 };

#[test]
fn a_50_mb_file_loads() {
    // The paper scenario followed by 50 MB of comments.
    let base = std::fs::read_to_string(crate::common::examples_dir().join("paper.perllm")).unwrap();
    let line =
        "// padding padding padding padding padding padding padding padding padding padding\n";
    let size = (50 << 20) / SCALE_DOWN;
    let mut src = String::with_capacity(size);
    src.push_str(&base);
    while src.len() < size {
        src.push_str(line);
    }
    let s = load_str("big.perllm", &src, SourceKind::Perllm)
        .unwrap_or_else(|f| panic!("{}", f.render(false)));
    assert_eq!(s.scenario.servers.len(), 6);
    // A file that is wrong at its very end reports the right line.
    src.truncate(5 << 20);
    src.push_str("\nbogus");
    let f = load_str("big.perllm", &src, SourceKind::Perllm).unwrap_err();
    let d = f.errors().next().unwrap();
    assert_eq!(d.code, "perllm::syntax");
    let (_, line, _) = d.location.clone().unwrap();
    assert_eq!(line, src.lines().count());
}

#[test]
fn floods_of_errors_are_capped() {
    // 100,000 wrong values: the first 200 problems are reported, the rest counted.
    let values = vec!["7 ms"; 100_000].join(", ");
    let base = std::fs::read_to_string(crate::common::examples_dir().join("paper.perllm")).unwrap();
    let src = base.replace(
        "output_tokens = lognormal(median = 120, sigma = 0.6)",
        &format!("output_tokens = empirical([{values}])"),
    );
    let f = load_str("flood.perllm", &src, SourceKind::Perllm).unwrap_err();
    assert_eq!(f.diagnostics.len(), 201);
    let last = f.diagnostics.last().unwrap();
    assert_eq!(last.code, "perllm::truncated");
    assert!(
        last.message.contains("99800 more problems"),
        "{}",
        last.message
    );
}

#[test]
fn a_large_list_loads() {
    // 1,000,000 list elements in one value.
    let n = 1_000_000 / SCALE_DOWN;
    let values = vec!["7"; n].join(", ");
    let base = std::fs::read_to_string(crate::common::examples_dir().join("paper.perllm")).unwrap();
    let src = base.replace(
        "output_tokens = lognormal(median = 120, sigma = 0.6)",
        &format!("output_tokens = empirical([{values}])"),
    );
    let s = load_str("list.perllm", &src, SourceKind::Perllm)
        .unwrap_or_else(|f| panic!("{}", f.render(false)));
    match s.scenario.workload.output_tokens {
        perllm_core::spec::SizeDist::Empirical { values } => assert_eq!(values.len(), n),
        other => panic!("{other:?}"),
    }
}

/// The longest run of digits in `s`.
fn longest_digit_run(s: &str) -> usize {
    s.split(|c: char| !c.is_ascii_digit())
        .map(str::len)
        .max()
        .unwrap_or(0)
}

#[test]
fn messages_quote_numbers_with_bounded_digits() {
    // Issue 21: numbers were printed with 300 digits. Every number of the paper scenario in
    // turn becomes huge, tiny or long; every message must keep numbers short.
    let src = std::fs::read_to_string(crate::common::examples_dir().join("paper.perllm")).unwrap();
    let mut starts = Vec::new();
    let bytes = src.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let digit = bytes[i].is_ascii_digit();
        let word = i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'-');
        if digit && !word {
            let mut j = i;
            while j < bytes.len() && (bytes[j].is_ascii_digit() || bytes[j] == b'.') {
                j += 1;
            }
            starts.push((i, j));
            i = j;
        } else {
            i += 1;
        }
    }
    assert!(starts.len() > 30, "{}", starts.len());
    let mut failures = 0;
    let mut long = Vec::new();
    for &(a, b) in &starts {
        for v in [
            "1e300",
            "1e-300",
            "123456789012345678901234567890",
            "1.7976931348623157e308",
        ] {
            let text = format!("{}{v}{}", &src[..a], &src[b..]);
            if let Err(f) = load_str("input", &text, SourceKind::Perllm) {
                failures += 1;
                let msg = f.render(false);
                let run = longest_digit_run(&msg.replace(v, ""));
                if run > 20 {
                    let line = msg
                        .lines()
                        .find(|l| longest_digit_run(&l.replace(v, "")) > 20)
                        .unwrap_or_default();
                    long.push(format!("{v} at byte {a}: {}", &line[..line.len().min(120)]));
                }
            }
        }
    }
    assert!(long.is_empty(), "{}", long.join("\n"));
    assert!(failures > 30, "{failures}");
}

#[test]
fn a_huge_word_is_one_short_diagnostic() {
    // A 250 MB server name took 5 GB and printed a 1.7 GB error; any word over 64 KiB is now
    // refused before parsing, quoting 40 characters (the CLI test loads 250 MB).
    let src = std::fs::read_to_string(crate::common::examples_dir().join("paper.perllm"))
        .unwrap()
        .replace("server cloud", &format!("server {}", "e".repeat(1_000_000)));
    let f = load_str("input", &src, SourceKind::Perllm).unwrap_err();
    let msg = f.render(false);
    assert!(msg.len() < 1_000, "{} bytes", msg.len());
    assert!(msg.contains("a 1000000-byte word at line"), "{msg}");
    // A name at the limit of names parses to the name rule's message.
    let ok = src.replace(&"e".repeat(1_000_000), &"e".repeat(60_000));
    let msg = load_str("input", &ok, SourceKind::Perllm)
        .unwrap_err()
        .render(false);
    assert!(
        !msg.contains("-byte word"),
        "{}",
        &msg[..msg.len().min(500)]
    );
    assert!(msg.len() < 1_000, "{} bytes", msg.len());
}

/// `sim.max_memory`: a file whose estimated memory is above the limit fails at load with the
/// size it needs, the limit and how to raise it (a located error); raising it in the file or
/// with an override, or `none`, loads it.
#[test]
fn a_cluster_over_the_memory_limit_fails_at_load_and_loads_when_raised() {
    use perllm_dsl::{LoadOptions, SourceKind, load_str_with};
    let src = "scenario \"m\" { seed = 1, duration = 2 s, slot = 100 ms }
hardware xeon { kind = cpu, compute = 1.6 TFLOPS, memory = 192 GiB, memory_bandwidth = 115 GB/s, power { idle = 60 W, busy = 125 W } }
model m7 { params = 7 B, precision = int8, kv_per_token = 512 KiB }
link lan { bandwidth = 100 Mbps, latency = 5 ms, energy = 50 nJ/bit }
server edge[1..2000] { tier = edge, hardware = xeon, models = [m7], link = lan, max_batch = 4 }
slo s { deadline = 10 s, share = 100% }
workload { arrivals = poisson(rate = 20 /s), prompt_tokens = 100, output_tokens = 10, payload = 1 KB, models = { m7: 100% } }
sim { max_memory = 1 MiB }
";
    let load = |overrides: Vec<(String, String)>| {
        load_str_with(
            "m.perllm",
            src,
            SourceKind::Perllm,
            &LoadOptions {
                base_dir: None,
                overrides,
            },
        )
    };
    let err = load(vec![]).expect_err("over the limit").render(false);
    assert!(
        err.contains("sim.max_memory: a run of this scenario needs about")
            && err.contains("(2000 servers x ")
            && err.contains("above the memory limit of 1.00 MiB")
            && err.contains("`--memory-limit 1GiB`")
            && err.contains("max_memory = 1 MiB"),
        "{err}"
    );
    assert!(load(vec![("sim.max_memory".into(), "none".into())]).is_ok());
    let l = load(vec![("sim.max_memory".into(), "1 GiB".into())]).expect("raised");
    assert_eq!(l.scenario.servers.len(), 2000);
    let world = l.scenario.build().expect("builds");
    let r = perllm_core::run_synthetic(&world, &mut perllm_core::simple::RoundRobin::default())
        .expect("runs");
    assert!(r.completed > 0);
}
