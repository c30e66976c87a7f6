//! Builds the paper's testbed in code (five CPU edge servers, one A100 cloud server), runs ten
//! simulated minutes of Poisson arrivals with the simple least-loaded policy, and prints the report.
//!
//! `cargo run --release -p perllm-core --example paper_testbed [RATE]`

use perllm_core::simple::LeastLoaded;
use perllm_core::spec::SECOND;
use perllm_core::{run_synthetic, testbed};

fn main() {
    let rate: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2.0);
    let scenario = testbed::paper(rate, 600 * SECOND);
    let world = match scenario.build() {
        Ok(w) => w,
        Err(errs) => {
            for e in errs {
                eprintln!("error: {e}");
            }
            std::process::exit(2);
        }
    };
    let mut policy = LeastLoaded::default();
    match run_synthetic(&world, &mut policy) {
        Ok(report) => println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("a report serialises")
        ),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
