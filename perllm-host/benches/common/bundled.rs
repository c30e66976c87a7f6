//! What the host's benchmarks share.

use perllm_host::Registry;

/// The bundled plugins, found beside the benchmark executable (`target/<profile>/deps`, where
/// cargo puts the library of the `perllm-plugins` dev-dependency).
pub fn bundled_registry() -> Registry {
    let exe_dir = std::env::current_exe()
        .expect("exe")
        .parent()
        .expect("dir")
        .to_path_buf();
    Registry::discover_with(&[], None, Some(&exe_dir)).expect("bundled plugins")
}
