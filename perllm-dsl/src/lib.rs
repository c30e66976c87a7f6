//! The perllm scenario language (pest) and its TOML twin, with diagnostics
