//! The hand-written parser (perllm-dsl/src/parse/fast.rs) against pest's, the reference: on every
//! input, either the fast parser gives up (and the loader runs pest, which reports the problem)
//! or both build the same tree, spans included; and the fast parser gives up on nothing pest
//! accepts. Inputs: every `.perllm` file in the repository, hand-picked corner cases of the
//! grammar, and mutations of the examples and fixtures (`PERLLM_FUZZ_CASES` per property).

use crate::fuzz::{apply, cases, fixture_dir, mutation, seeds, shipped};
use perllm_dsl::SourceKind;
use perllm_dsl::diag::Sources;
use perllm_dsl::parse::{parse_file_fast, parse_file_pest};
use proptest::prelude::*;

/// Both parsers on `text`; panics (with the input) if they disagree. True if pest accepted it.
fn agree(text: &str) -> bool {
    let mut sources = Sources::default();
    let src = sources.add("t.perllm", text);
    let pest = parse_file_pest(&sources, src, text);
    let fast = parse_file_fast(text, src);
    match (&pest, &fast) {
        (Ok(a), Some(b)) => assert!(
            a == b,
            "the trees differ on\n{text}\npest: {a:#?}\nfast: {b:#?}"
        ),
        (Ok(a), None) => panic!("the fast parser gave up on input pest accepts:\n{text}\n{a:#?}"),
        (Err(_), Some(b)) => panic!("the fast parser accepted input pest rejects:\n{text}\n{b:#?}"),
        (Err(_), None) => {}
    }
    pest.is_ok()
}

fn all_perllm_files() -> Vec<std::path::PathBuf> {
    let root = crate::common::crate_dir().join("..");
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if p.is_dir() {
                if !name.starts_with('.') && name != "target" {
                    stack.push(p);
                }
            } else if name.ends_with(".perllm") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_perllm_file_in_the_repository_parses_the_same() {
    let files = all_perllm_files();
    assert!(files.len() > 50, "{} files", files.len());
    let mut accepted = 0;
    for p in &files {
        // Files that are not UTF-8 are refused before parsing.
        if let Ok(text) = std::fs::read_to_string(p) {
            accepted += agree(&text) as usize;
        }
    }
    // The examples and the valid fixtures at least.
    assert!(accepted >= 15, "{accepted} files parsed");
}

#[test]
fn corner_cases_of_the_grammar_parse_the_same() {
    let item = |body: &str| format!("x {{ {body} }}");
    for body in [
        "a = 1",
        "a = 1 b = 2",
        "a = 1, b = 2; c = 3",
        "a: 1",
        "a = = 1",
        "a == 1",
        "a =\n 1",
        "a = // c\n 1",
        "a = # c\n 1",
        "\"quoted key\" = 1",
        "a = \"s\\\"t\\n\"",
        "a = \"\\",
        "a = \"x\ny\"",
        "a = 5ms",
        "a = 5 ms",
        "a = 5\tms",
        "a = 5\nms",
        "a = 5 %",
        "a = 5%",
        "a = 6 /s",
        "a = 6/s",
        "a = 50 nJ/bit",
        "a = 50 nJ/",
        "a = 3 µs",
        "a = 1e5",
        "a = 1e",
        "a = 1e+",
        "a = 1E-3 s",
        "a = .5",
        "a = 1.",
        "a = 2.5.3",
        "a = -1",
        "a = - 1",
        "a = --1",
        "a = 1 - -1",
        "a = -x.y",
        "a = 100 Mbps +/- 20%",
        "a = 1 ± 2",
        "a = 1 + /- 2",
        "a = a100 x 2",
        "a = a100 x2",
        "a = 2 x 3",
        "a = a x b x c",
        "a = 1 <= 2",
        "a = 1 <= 2 <= 3",
        "a = 1 < 2",
        "a = 1 >= 2 == 3",
        "a = 1 + 2 * 3 - 4 * 5 * 6",
        "a = (1 + 2) + 3",
        "a = ((1))",
        "a = (1,)",
        "a = (1, 2)",
        "a = ()",
        "a = (1 2)",
        "a = [1, 2,]",
        "a = []",
        "a = [,]",
        "a = [1 2]",
        "a = f()",
        "a = f(1, x = 2,)",
        "a = f (1)",
        "a = f(x = )",
        "a = f(x == 1)",
        "a = f(1,,)",
        "a = g.h(1)",
        "a = energy.idle",
        "a = energy.",
        "a = x-y",
        "a = x--y",
        "a = x-",
        "a = true",
        "a = false",
        "a = truex",
        "a = true(1)",
        "a = {b = 1}",
        "a { b = 1 }",
        "a {}",
        "constraint x <= 1",
        "constraint = 1",
        "constraintx <= 1",
        "constraint",
        "a = 1 +/- 2 +/- 3",
        "a = 1 x 2 x 3",
        "a = {",
        "a = 99999999999999999999",
        "a = 1 * (2 <= 3)",
        "a = \"é\" b = é",
    ] {
        agree(&item(body));
    }
    for file in [
        "",
        "  \n// only a comment",
        "\u{FEFF}x {}",
        "x{}y{}",
        "server edge[1..5] { a = 1 }",
        "server edge[ 1 .. 5 ] { }",
        "server edge [1..5] { }",
        "server edge[1..] { }",
        "server edge[99999999999999999999..1] { }",
        "server edge[5..1] { }",
        "scenario \"name\" { }",
        "scenario \"a\\\"b\"[1..2] { }",
        "x y z { }",
        "x",
        "x {",
        "x } ",
        "1 { }",
        "x { } \u{0}",
    ] {
        agree(file);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn mutated_scenarios_parse_the_same(
        seed in any::<prop::sample::Index>(),
        muts in prop::collection::vec(mutation(), 1..4),
    ) {
        let mut texts: Vec<String> = shipped()
            .into_iter()
            .filter(|f| f.2 == SourceKind::Perllm)
            .map(|f| f.1)
            .collect();
        texts.extend(seeds("perllm"));
        let text = seed.get(&texts);
        agree(&apply(text, &muts));
    }
}

#[test]
fn the_fixture_directory_exists() {
    assert!(fixture_dir().join("valid").is_dir());
}
