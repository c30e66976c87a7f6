//! Cross-crate tests: example scenarios through the scenario language, the JSON form the CLI
//! accepts and hashes, and the simulator; the paper experiment in small.

mod examples;
mod paper;
