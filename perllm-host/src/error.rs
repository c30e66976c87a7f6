//! Errors of the plugin host.

use std::path::PathBuf;

/// Everything that can go wrong loading or calling a plugin. Each message names the plugin (when
/// known), the library path and the symbol or entry point involved.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum HostError {
    /// The library file does not exist.
    #[error("plugin library `{path}` does not exist")]
    NotFound {
        /// The path given.
        path: PathBuf,
    },
    /// The file exists but the dynamic loader refused it.
    #[error("`{path}` is not a loadable plugin library: {reason}")]
    NotALibrary {
        /// The library path.
        path: PathBuf,
        /// The dynamic loader's message.
        reason: String,
    },
    /// A required symbol is missing.
    #[error(
        "plugin library `{path}` does not export the symbol `{symbol}`: is it a perllm plugin?"
    )]
    MissingSymbol {
        /// The library path.
        path: PathBuf,
        /// The symbol.
        symbol: String,
    },
    /// The library was built against an ABI version this host does not support.
    #[error(
        "plugin library `{path}` was built for plugin ABI {found} (symbol `{symbol}`), but this perllm supports ABI {supported}.x: rebuild the plugin against perllm-plugin-abi {supported}.x"
    )]
    AbiVersion {
        /// The library path.
        path: PathBuf,
        /// The symbol that reported it.
        symbol: String,
        /// The version it reported, `major.minor`.
        found: String,
        /// The supported major version.
        supported: u32,
    },
    /// The declaration is malformed.
    #[error("plugin library `{path}`: malformed declaration from `{symbol}`: {problem}")]
    Malformed {
        /// The library path.
        path: PathBuf,
        /// The declaration symbol.
        symbol: String,
        /// What is wrong.
        problem: String,
    },
    /// Two plugins of one kind share a name.
    #[error("two {kind} plugins are named `{name}`: one in `{first}`, one in `{second}`")]
    DuplicateName {
        /// `policy` or `cost model`.
        kind: String,
        /// The name.
        name: String,
        /// Where the first came from.
        first: String,
        /// Where the second came from.
        second: String,
    },
    /// An entry of `PERLLM_PLUGIN_PATH` is unusable.
    #[error("PERLLM_PLUGIN_PATH entry `{entry}`: {reason}")]
    PluginPath {
        /// The entry.
        entry: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// No policy or cost model has this name.
    #[error("no {kind} named `{name}`; available: {available}{hint}")]
    Unknown {
        /// `policy` or `cost model`.
        kind: String,
        /// The name asked for.
        name: String,
        /// The names available, comma-separated.
        available: String,
        /// Extra advice (e.g. where the bundled library was looked for).
        hint: String,
    },
    /// A built-in policy or cost model refused its configuration.
    #[error("built-in {kind} `{name}`: {message}")]
    Builtin {
        /// `policy` or `cost model`.
        kind: String,
        /// Its name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A plugin's entry point reported an error.
    #[error("plugin `{plugin}` (`{path}`): `{function}` failed: {message}")]
    Call {
        /// The plugin.
        plugin: String,
        /// Its library.
        path: PathBuf,
        /// The entry point (`create`, `schedule`, ...).
        function: String,
        /// The plugin's message.
        message: String,
    },
    /// A plugin panicked; it is poisoned and never called again.
    #[error(
        "plugin `{plugin}` (`{path}`) panicked in `{function}`: {message}; the plugin is poisoned and will not be called again"
    )]
    Panic {
        /// The plugin.
        plugin: String,
        /// Its library.
        path: PathBuf,
        /// The entry point.
        function: String,
        /// The panic message.
        message: String,
    },
    /// A plugin returned something invalid.
    #[error("plugin `{plugin}` (`{path}`): `{function}` returned an invalid result: {problem}")]
    Invalid {
        /// The plugin.
        plugin: String,
        /// Its library.
        path: PathBuf,
        /// The entry point.
        function: String,
        /// What was wrong.
        problem: String,
    },
    /// A plugin was called after it panicked.
    #[error("plugin `{plugin}` (`{path}`) is poisoned by an earlier panic and cannot be called")]
    Poisoned {
        /// The plugin.
        plugin: String,
        /// Its library.
        path: PathBuf,
    },
    /// A plugin running in an isolated worker process failed; `message` is the worker's error
    /// (it names the plugin, library and entry point, as in-process).
    #[error("{message} (in its isolated worker process)")]
    Remote {
        /// The plugin.
        plugin: String,
        /// Its library.
        path: PathBuf,
        /// The worker's message.
        message: String,
    },
    /// The worker process running an isolated plugin died during a call (a crash, an abort,
    /// `exit`).
    #[error(
        "plugin `{plugin}` (`{path}`) crashed its isolated worker process in `{function}` ({call}): {how}"
    )]
    Crashed {
        /// The plugin.
        plugin: String,
        /// Its library.
        path: PathBuf,
        /// The entry point that was running (from the worker's crash report when it has one).
        function: String,
        /// The call (slot, time, requests).
        call: String,
        /// How the worker ended (signal or exit status), and what it said before it died.
        how: String,
    },
    /// An isolated call did not return within the hard timeout; the worker was killed.
    #[error(
        "plugin `{plugin}` (`{path}`): `{function}` ({call}) did not return within the {timeout} call timeout; its isolated worker process was killed (raise the limit with --call-timeout)"
    )]
    TimedOut {
        /// The plugin.
        plugin: String,
        /// Its library.
        path: PathBuf,
        /// The entry point called.
        function: String,
        /// The call.
        call: String,
        /// The timeout.
        timeout: String,
    },
    /// The worker process could not be started, or broke the protocol.
    #[error("plugin `{plugin}` (`{path}`): isolated worker `{worker}`: {problem}")]
    Worker {
        /// The plugin.
        plugin: String,
        /// Its library.
        path: PathBuf,
        /// The worker command.
        worker: String,
        /// What went wrong.
        problem: String,
    },
}
