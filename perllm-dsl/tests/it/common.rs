//! Shared helpers.

use std::path::PathBuf;

/// The crate's directory.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The repository's `examples/` directory.
pub fn examples_dir() -> PathBuf {
    crate_dir().join("../examples")
}
