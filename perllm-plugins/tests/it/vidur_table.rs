//! The shipped `profile-table` of Llama-2-7B on one A100 (examples/profiles/, derived from
//! Vidur's profiled operator times, MIT) against the iteration times it was derived from
//! (perllm-cli/tests/fixtures/vidur-a100-llama2-7b.csv), per batch size; and the table's
//! interpolation on shapes left out of it (issue 14, item 6; docs/fidelity.md).

use perllm_plugin_abi::{
    GuestCostModel, HW_GPU, HardwareView, ModelView, StepQuery, StepShapeView, StrRef,
};
use perllm_plugins::cost::ProfileTable;
use std::collections::BTreeMap;

#[path = "../../../perllm-cli/tests/fixtures/vidur_rows.rs"]
mod vidur_rows;
use std::path::PathBuf;
use vidur_rows::vidur_rows;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The simulated iteration (ms) of each fixture shape under `table`:
/// (phase, batch, context, simulated / Vidur - 1).
fn errors(table: &ProfileTable) -> Vec<(String, u32, u64, f64)> {
    let hw = HardwareView {
        kind: HW_GPU,
        name: StrRef::new("a100"),
        ..Default::default()
    };
    let model = ModelView {
        params: 6.74e9,
        bytes_per_param: 2.0,
        weight_bytes: 13.48e9,
        kv_bytes_per_token: 512 << 10,
        name: StrRef::new("llama2-7b"),
        ..Default::default()
    };
    vidur_rows()
        .into_iter()
        .map(|(phase, batch, prompt, context, ms)| {
            let shape = if phase == "prefill" {
                StepShapeView {
                    prefill_tokens: prompt,
                    prefill_seqs: batch,
                    ..Default::default()
                }
            } else {
                StepShapeView {
                    decode_seqs: batch,
                    kv_tokens: context * batch as u64,
                    ..Default::default()
                }
            };
            let q = StepQuery {
                hardware: &hw,
                hardware_name: "a100",
                device_count: 1,
                model: &model,
                model_name: "llama2-7b",
                shape,
            };
            let sim_ms = table.step_ns(&q).unwrap() as f64 / 1e6;
            (phase, batch, context, sim_ms / ms - 1.0)
        })
        .collect()
}

fn shipped() -> String {
    std::fs::read_to_string(root().join("examples/profiles/vidur-a100-llama2-7b.csv")).unwrap()
}

#[test]
fn the_shipped_a100_table_reproduces_vidurs_iterations_per_batch_size() {
    let table = ProfileTable::create(
        &serde_json::json!({
            "path": root().join("examples/profiles/vidur-a100-llama2-7b.csv")
        })
        .to_string(),
    )
    .unwrap();
    let errs = errors(&table);
    let mut by_batch: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
    for (phase, b, _, e) in &errs {
        if phase == "prefill" {
            eprintln!("prefill of 400 tokens: {:+.3}%", e * 100.0);
            assert!(e.abs() < 0.001, "prefill {e}");
        } else {
            by_batch.entry(*b).or_default().push(*e);
        }
    }
    assert!(by_batch.len() >= 80, "decode batches 1..85");
    let mut worst: f64 = 0.0;
    for (b, v) in &by_batch {
        let m = v.iter().map(|e| e.abs()).fold(0.0, f64::max);
        eprintln!(
            "decode batch {b}: {} shapes, max |error| {:.3}%",
            v.len(),
            m * 100.0
        );
        worst = worst.max(m);
    }
    eprintln!("worst decode |error| {:.3}%", worst * 100.0);
    // A measured shape is read back (up to the table's 3 decimals): the goal is 5% per batch size.
    assert!(worst < 0.001, "worst {worst}");
}

/// Build a table from the shipped rows `keep` selects, and return the errors on the decode
/// shapes it left out.
fn left_out_errors(keep: impl Fn(u32, u64) -> bool) -> Vec<f64> {
    let kept: String = shipped()
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split(',').collect();
            l.starts_with('#')
                || f[0] == "model"
                || keep(f[2].parse().unwrap(), f[3].parse().unwrap())
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let table = ProfileTable::create(&serde_json::json!({ "csv": kept }).to_string()).unwrap();
    errors(&table)
        .into_iter()
        .filter(|(p, b, c, _)| p == "decode" && !keep(*b, *c))
        .map(|x| x.3)
        .collect()
}

#[test]
fn interpolation_between_measured_shapes_stays_within_five_percent() {
    // Batch sizes: every odd batch size left out, interpolated from its two neighbours.
    // Contexts: 448 and 512 left out where 384 and 576 were measured (batches 1-61).
    type Keep = Box<dyn Fn(u32, u64) -> bool>;
    let cases: [(&str, Keep); 2] = [
        (
            "odd batch sizes",
            Box::new(|b, _| b % 2 == 0 || b == 1 || b == 85),
        ),
        (
            "contexts 448, 512",
            Box::new(|b, c| b > 61 || (c != 448 && c != 512)),
        ),
    ];
    for (what, keep) in cases {
        let e = left_out_errors(keep);
        let n = e.len();
        let worst = e.iter().map(|x| x.abs()).fold(0.0, f64::max);
        let mean = e.iter().sum::<f64>() / n as f64;
        let within = e.iter().filter(|x| x.abs() <= 0.05).count();
        eprintln!(
            "left out {what}: {n} decode shapes, mean {:+.2}%, max |error| {:.2}%, {within} within 5%",
            mean * 100.0,
            worst * 100.0
        );
        assert!(n > 100, "{what}: {n}");
        assert!(worst <= 0.05, "{what}: worst interpolated error {worst}");
    }
}
