//! The registry of policies and cost models: built-ins, and plugins found by discovery.

use crate::cost::ForeignCostModel;
use crate::error::HostError;
use crate::health::Health;
use crate::isolate::{IsolateMode, IsolatedPolicy, Isolation};
use crate::loader::{Declared, LibInfo, Symbols, kind_name, load};
use crate::policy::{DEFAULT_CALL_BUDGET, ForeignPolicy};
use perllm_core::World;
use perllm_core::admission::{Admission, AdmissionMode};
use perllm_core::cost::{CostModel, Roofline};
use perllm_core::policy::Policy;
use perllm_core::spec::PolicySpec;
use perllm_plugin_abi as abi;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The environment variable listing plugin libraries and directories (`:`-separated on Unix).
pub const PLUGIN_PATH_VAR: &str = "PERLLM_PLUGIN_PATH";

/// Prefix that selects a plugin even when a built-in has the same name (`plugin:roofline`).
pub const PLUGIN_PREFIX: &str = "plugin:";
/// Prefix selecting the bundled library's plugin of a name a user library also provides
/// (`bundled:round-robin`).
pub const BUNDLED_PREFIX: &str = "bundled:";

/// Names of the built-in cost models.
const BUILTIN_COST_MODELS: &[(&str, &str)] = &[(
    "roofline",
    "core's roofline model (the default); config: step_overhead_ns, decode_seq_ns, prefill_seq_ns, kv_token_ns, one_token_step_ns, prefill_step_ns, rows_ns",
)];

/// What a registry entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    /// A scheduling policy.
    Policy,
    /// A cost model.
    CostModel,
}

impl PluginKind {
    /// `policy` or `cost-model`.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Policy => "policy",
            PluginKind::CostModel => "cost-model",
        }
    }
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One available policy or cost model, for `perllm plugins list`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PluginInfo {
    /// Name to select it by.
    pub name: String,
    /// Policy or cost model.
    pub kind: PluginKind,
    /// Its version (perllm's version for built-ins).
    pub version: String,
    /// ABI version of its library (`major.minor`), or `-` for built-ins.
    pub abi_version: String,
    /// The same, encoded (`major << 16 | minor`); `None` for built-ins.
    pub abi: Option<u32>,
    /// The library's path, or `built-in`.
    pub source: String,
    /// One-line description.
    pub description: String,
    /// True if a built-in of the same name hides it (select it with `plugin:NAME`).
    pub shadowed: bool,
    /// Declared flags (`wants-estimates`, `provides-estimate`) and `in-place` for a policy that
    /// provides ABI 1.3's `decide`.
    pub flags: Vec<String>,
    /// The parameters it accepts, one per line (`name (default): meaning`); empty if its
    /// plugin does not declare them (ABI before 1.2).
    pub params: String,
}

/// Policies and cost models by name: built-ins first, then plugins.
///
/// Libraries are loaded once and never unloaded.
#[derive(Debug)]
pub struct Registry {
    libraries: Vec<Arc<LibInfo>>,
    plugins: Vec<Declared>,
    /// Bundled plugins a user library replaced (reachable as `bundled:NAME`).
    replaced: Vec<Declared>,
    /// Libraries of plugin directories that failed to load (the others were loaded).
    skipped: Vec<HostError>,
    bundled: Option<PathBuf>,
    searched: Vec<PathBuf>,
    health: Arc<Health>,
    budget: Duration,
    isolation: Option<Isolation>,
    /// Call `decide` where a plugin provides it (ABI 1.3's in-place path).
    in_place: bool,
}

/// The failures of one run's policy (see [`Registry::policy_for_run`]).
#[derive(Debug)]
pub struct RunCheck {
    health: Arc<Health>,
}

impl RunCheck {
    /// The first failure of the run's plugin policy (an error, a panic, an invalid result, a
    /// crash or hang of its isolated worker, a failed `observe` or `stats`), or of a cost model
    /// of the registry. A run for which this returns an error must not be reported as valid.
    pub fn check(&self) -> Result<(), HostError> {
        match self
            .health
            .first(None)
            .or_else(|| self.health.cost_model_failure())
        {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl std::fmt::Debug for Declared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Declared")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("path", &self.lib.path)
            .finish()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

/// File name of the bundled plugin library on this platform (`libperllm_plugins.so` on Linux).
pub fn bundled_library_name() -> String {
    format!(
        "{}perllm_plugins{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

/// Where the bundled library is looked for, given the running executable's directory: the
/// directory itself, its `deps/` (where cargo puts a dependency's shared library) and its parent
/// (where test executables' `cargo build` outputs are).
pub fn bundled_candidates(exe_dir: &Path) -> Vec<PathBuf> {
    let name = bundled_library_name();
    let mut v = vec![exe_dir.join(&name), exe_dir.join("deps").join(&name)];
    if let Some(p) = exe_dir.parent() {
        v.push(p.join(&name));
    }
    v
}

fn builtin_policy_names() -> Vec<(String, String)> {
    perllm_core::policies::builtin_names()
        .iter()
        .map(|n| {
            let d = match *n {
                "perllm" => "CS-UCB with a constraint-satisfaction LP step (the paper's policy)",
                "true-costs" => {
                    "PerLLM's slot LP fed the true mean costs (reads the hidden ground truth; a \
                     reference policy, not a bound; old name `oracle`)"
                }
                _ => "built into perllm-core",
            };
            (n.to_string(), d.to_string())
        })
        .collect()
}

/// A built-in policy of `spec.name`, or `None` if no built-in has that name.
fn builtin_policy(spec: &PolicySpec, world: &World) -> Option<Result<Box<dyn Policy>, HostError>> {
    perllm_core::policies::builtin(spec, world).map(|r| {
        r.map_err(|e| HostError::Builtin {
            kind: "policy".into(),
            name: spec.name.clone(),
            message: e.message,
        })
    })
}

impl Registry {
    /// A registry with the built-ins only.
    pub fn new() -> Registry {
        Registry {
            libraries: Vec::new(),
            plugins: Vec::new(),
            replaced: Vec::new(),
            skipped: Vec::new(),
            bundled: None,
            searched: Vec::new(),
            health: Arc::new(Health::default()),
            budget: DEFAULT_CALL_BUDGET,
            isolation: None,
            in_place: true,
        }
    }

    /// Call a plugin policy's `decide` (ABI 1.3's in-place path) when it provides one, the
    /// default, or always its `schedule` (`false`), for policies created from now on in this
    /// process (an isolated worker decides for itself). Decisions are the same either way;
    /// this exists to test and measure one path against the other.
    pub fn set_in_place(&mut self, on: bool) {
        self.in_place = on;
    }

    /// Run plugin policies created from now on in worker processes, as `isolation.mode` says
    /// (`None`: all in-process, the default).
    pub fn set_isolation(&mut self, isolation: Option<Isolation>) {
        self.isolation = isolation;
    }

    /// Would the policy `name` run in a worker process? (False for built-ins and unknown names.)
    pub fn is_isolated(&self, name: &str) -> bool {
        let plain = match name.strip_prefix(PLUGIN_PREFIX) {
            Some(n) => n,
            None if perllm_core::policies::builtin_names().contains(&name) => return false,
            None => name,
        };
        self.find(abi::KIND_POLICY, plain)
            .is_some_and(|d| self.isolates(d))
    }

    fn isolates(&self, d: &Declared) -> bool {
        match self.isolation.as_ref().map(|i| i.mode) {
            None | Some(IsolateMode::Never) => false,
            Some(IsolateMode::Always) => true,
            Some(IsolateMode::ThirdParty) => self.bundled.as_deref() != Some(d.lib.path.as_path()),
        }
    }

    /// The registry's failure record (the worker creates its policy with it).
    pub(crate) fn health(&self) -> Arc<Health> {
        self.health.clone()
    }

    /// Find and load plugins: the `explicit` libraries or directories (`--plugin PATH`, in order), then every
    /// entry of `PERLLM_PLUGIN_PATH` (a library, or a directory whose libraries are all loaded),
    /// then the bundled library next to the running executable (see [`bundled_candidates`]).
    ///
    /// Two plugins of one kind and name in explicit or `PERLLM_PLUGIN_PATH` libraries are an
    /// error; a bundled plugin whose name an explicit or `PERLLM_PLUGIN_PATH` plugin already
    /// provides is skipped (the user's library wins). A library reached twice is loaded once.
    pub fn discover(explicit: &[PathBuf]) -> Result<Registry, HostError> {
        let var = std::env::var_os(PLUGIN_PATH_VAR);
        let exe_dir = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf));
        Registry::discover_with(explicit, var.as_deref(), exe_dir.as_deref())
    }

    /// [`Registry::discover`] with the plugin path and the executable's directory given.
    pub fn discover_with(
        explicit: &[PathBuf],
        plugin_path: Option<&OsStr>,
        exe_dir: Option<&Path>,
    ) -> Result<Registry, HostError> {
        let mut r = Registry::new();
        for p in explicit {
            if p.is_dir() {
                r.load_dir(p).map_err(|reason| HostError::NotALibrary {
                    path: p.clone(),
                    reason,
                })??;
            } else {
                r.load_library(p)?;
            }
        }
        if let Some(var) = plugin_path {
            for entry in std::env::split_paths(var) {
                if entry.as_os_str().is_empty() {
                    continue;
                }
                if entry.is_dir() {
                    r.load_dir(&entry)
                        .map_err(|reason| HostError::PluginPath {
                            entry: entry.clone(),
                            reason,
                        })??;
                } else if entry.is_file() {
                    r.load_library(&entry)?;
                } else {
                    return Err(HostError::PluginPath {
                        entry,
                        reason: "no such file or directory".into(),
                    });
                }
            }
        }
        if let Some(dir) = exe_dir {
            r.searched = bundled_candidates(dir);
            // The most recently built copy wins (a stale copy may sit next to a fresh one).
            let found = r
                .searched
                .iter()
                .filter_map(|p| Some((std::fs::metadata(p).ok()?.modified().ok()?, p.clone())))
                .max_by(|a, b| a.0.cmp(&b.0))
                .map(|x| x.1);
            if let Some(path) = found {
                r.load_bundled(&path)?;
            }
        }
        Ok(r)
    }

    /// Load every library (`*.so`, `*.dylib` or `*.dll`, by platform) in `dir`, in name order.
    /// The outer error is the directory's own (unreadable). A library that fails to load is
    /// skipped and recorded ([`Registry::skipped`]): one bad library does not hide the others. A
    /// duplicate name is still an error (which one to use would be a guess).
    fn load_dir(&mut self, dir: &Path) -> Result<Result<(), HostError>, String> {
        let rd = std::fs::read_dir(dir).map_err(|e| e.to_string())?;
        let mut libs: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.to_string_lossy().ends_with(std::env::consts::DLL_SUFFIX))
            .collect();
        libs.sort();
        for l in libs {
            match self.load_library(&l) {
                Ok(()) => {}
                Err(e @ HostError::DuplicateName { .. }) => return Ok(Err(e)),
                Err(e) => self.skipped.push(e),
            }
        }
        Ok(Ok(()))
    }

    /// Load every plugin of the library at `path`. A library already loaded is skipped.
    pub fn load_library(&mut self, path: &Path) -> Result<(), HostError> {
        self.load_library_with_symbols(path, Symbols::default())
    }

    /// [`Registry::load_library`] with other symbol names (tests load malformed declarations
    /// this way).
    #[doc(hidden)]
    pub fn load_library_with_symbols(
        &mut self,
        path: &Path,
        syms: Symbols<'_>,
    ) -> Result<(), HostError> {
        self.add(path, syms, false)
    }

    fn load_bundled(&mut self, path: &Path) -> Result<(), HostError> {
        self.add(path, Symbols::default(), true)?;
        self.bundled = path.canonicalize().ok();
        Ok(())
    }

    fn add(
        &mut self,
        path: &Path,
        syms: Symbols<'_>,
        yield_to_existing: bool,
    ) -> Result<(), HostError> {
        if let Ok(c) = path.canonicalize()
            && self.libraries.iter().any(|l| l.path == c)
            && syms.declare == abi::DECLARE_SYMBOL
        {
            return Ok(());
        }
        let (lib, decls) = load(path, syms)?;
        let mut keep = Vec::new();
        for d in decls {
            if let Some(prev) = self
                .plugins
                .iter()
                .find(|p| p.kind == d.kind && p.name == d.name)
            {
                if yield_to_existing {
                    self.replaced.push(Declared {
                        lib: lib.clone(),
                        ..d
                    });
                    continue;
                }
                return Err(HostError::DuplicateName {
                    kind: kind_name(d.kind).into(),
                    name: d.name,
                    first: prev.lib.path.display().to_string(),
                    second: lib.path.display().to_string(),
                });
            }
            keep.push(d);
        }
        self.plugins.extend(keep);
        self.libraries.push(lib);
        Ok(())
    }

    /// Set the per-call time budget of plugin policies created from now on (calls over it are
    /// counted in the policy's stats, never interrupted). Default 50 ms.
    pub fn set_call_budget(&mut self, budget: Duration) {
        self.budget = budget;
    }

    /// The bundled library, if discovery found it.
    pub fn bundled_path(&self) -> Option<&Path> {
        self.bundled.as_deref()
    }

    /// Libraries in plugin directories that failed to load; the others were loaded. Report them:
    /// a plugin the user expects may be missing.
    pub fn skipped(&self) -> &[HostError] {
        &self.skipped
    }

    /// What a user should be told about this registry: each library of a plugin directory that
    /// was skipped, and each bundled plugin a user library replaced (and how to select it).
    pub fn warnings(&self) -> Vec<String> {
        let mut w: Vec<String> = self
            .skipped
            .iter()
            .map(|e| format!("skipped a plugin library that failed to load: {e}"))
            .collect();
        for d in &self.replaced {
            let by = self
                .plugins
                .iter()
                .find(|p| p.kind == d.kind && p.name == d.name)
                .map_or_else(String::new, |p| p.lib.path.display().to_string());
            w.push(format!(
                "{kind} `{name}` of `{by}` replaces the bundled {kind} of that name; select the bundled one as `{BUNDLED_PREFIX}{name}`",
                kind = kind_name(d.kind),
                name = d.name,
            ));
        }
        w
    }

    /// Every policy and cost model available: built-ins first, then plugins in load order.
    pub fn list(&self) -> Vec<PluginInfo> {
        let version = env!("CARGO_PKG_VERSION").to_string();
        let mut v = Vec::new();
        let builtin_p = builtin_policy_names();
        for (name, description) in &builtin_p {
            v.push(PluginInfo {
                name: name.clone(),
                kind: PluginKind::Policy,
                version: version.clone(),
                abi_version: "-".into(),
                abi: None,
                source: "built-in".into(),
                description: description.clone(),
                shadowed: false,
                flags: Vec::new(),
                params: with_admission_help(if name == "perllm" {
                    perllm_core::perllm::params::PARAM_NAMES
                        .iter()
                        .map(|p| format!("{p}: see docs/perllm-policy.md"))
                        .collect::<Vec<_>>()
                        .join("\n")
                } else {
                    String::new()
                }),
            });
        }
        for (name, description) in BUILTIN_COST_MODELS {
            v.push(PluginInfo {
                name: name.to_string(),
                kind: PluginKind::CostModel,
                version: version.clone(),
                abi_version: "-".into(),
                abi: None,
                source: "built-in".into(),
                description: description.to_string(),
                shadowed: false,
                flags: Vec::new(),
                params: "step_overhead_ns (200000): fixed time added to every engine step, ns\n\
                    decode_seq_ns (0): time added per decoding sequence, ns (fitted by `perllm calibrate`)\n\
                    prefill_seq_ns (0): time added per prefilling sequence, ns (fitted by `perllm calibrate`)\n\
                    kv_token_ns (0): time added per KV-cache token a step reads, ns (fitted by `perllm calibrate`)\n\
                    one_token_step_ns (0): time of a step computing exactly one token, KV reads excluded, ns; 0 prices it like any step (fitted by `perllm calibrate`)\n\
                    prefill_step_ns (0): time added per step with prompt tokens, whatever their number, ns (fitted by `perllm calibrate`)\n\
                    rows_ns ([]): [[rows, ns], ...] the step's matrix work by its rows (prompt tokens + decoding sequences), linear between knots; replaces the roofline and one_token_step_ns (fitted by `perllm calibrate`)"
                    .into(),
            });
        }
        let replaced = self
            .replaced
            .iter()
            .map(|d| (d, format!("{BUNDLED_PREFIX}{}", d.name)));
        for (d, name) in self
            .plugins
            .iter()
            .map(|d| (d, d.name.clone()))
            .chain(replaced)
        {
            let kind = if d.kind == abi::KIND_POLICY {
                PluginKind::Policy
            } else {
                PluginKind::CostModel
            };
            let shadowed = match kind {
                PluginKind::Policy => builtin_p.iter().any(|b| b.0 == d.name),
                PluginKind::CostModel => BUILTIN_COST_MODELS.iter().any(|b| b.0 == d.name),
            };
            v.push(PluginInfo {
                name,
                kind,
                version: d.version.clone(),
                abi_version: format!(
                    "{}.{}",
                    abi::abi_major(d.lib.abi_version),
                    abi::abi_minor(d.lib.abi_version)
                ),
                abi: Some(d.lib.abi_version),
                source: d.lib.path.display().to_string(),
                description: d.description.clone(),
                shadowed,
                flags: match kind {
                    PluginKind::Policy => [
                        (d.flags & abi::FLAG_WANTS_ESTIMATES != 0, "wants-estimates"),
                        (d.policy.is_some_and(|v| v.decide.is_some()), "in-place"),
                    ]
                    .into_iter()
                    .filter(|x| x.0)
                    .map(|x| x.1.to_string())
                    .collect(),
                    PluginKind::CostModel
                        if d.cost_model.is_some_and(|v| v.estimate.is_some()) =>
                    {
                        vec!["provides-estimate".into()]
                    }
                    PluginKind::CostModel => Vec::new(),
                },
                params: match kind {
                    PluginKind::Policy if d.params.trim().is_empty() => with_admission_help(
                        "(its own parameters are not declared: the plugin predates ABI 1.2 or leaves `params` empty)".into(),
                    ),
                    PluginKind::Policy => with_admission_help(d.params.clone()),
                    PluginKind::CostModel => d.params.clone(),
                },
            });
        }
        v
    }

    /// The declaration of the plugin of `kind` named `name` (`bundled:` prefix accepted).
    pub(crate) fn declared(&self, kind: u32, name: &str) -> Option<&Declared> {
        self.find(kind, name)
    }

    fn find(&self, kind: u32, name: &str) -> Option<&Declared> {
        if let Some(n) = name.strip_prefix(BUNDLED_PREFIX) {
            let bundled = self.bundled.as_deref()?;
            return self
                .replaced
                .iter()
                .chain(&self.plugins)
                .find(|p| p.kind == kind && p.name == n && p.lib.path == bundled);
        }
        self.plugins
            .iter()
            .find(|p| p.kind == kind && p.name == name)
    }

    fn unknown(&self, kind: PluginKind, name: &str) -> HostError {
        let names: Vec<String> = self
            .list()
            .into_iter()
            .filter(|i| i.kind == kind)
            .map(|i| i.name)
            .collect();
        let hint = if self.bundled.is_none() && !self.searched.is_empty() {
            let s: Vec<String> = self
                .searched
                .iter()
                .map(|p| format!("`{}`", p.display()))
                .collect();
            format!(
                " (the bundled plugin library was not found; looked for {}: build it with `cargo build -p perllm-plugins` or pass --plugin PATH)",
                s.join(", ")
            )
        } else {
            String::new()
        };
        HostError::Unknown {
            kind: kind_name(if kind == PluginKind::Policy {
                abi::KIND_POLICY
            } else {
                abi::KIND_COST_MODEL
            })
            .into(),
            name: name.into(),
            available: if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            },
            hint,
        }
    }

    /// The policy `spec.name` with `spec.params` (passed to a plugin as a JSON object) for a run
    /// of `world` with seed `seed`: a built-in if one has that name, else a plugin (a
    /// `plugin:` prefix skips the built-ins). A plugin receives the seed of the run's policy
    /// random stream (`perllm_core::rng::stream::POLICY`).
    pub fn policy(
        &self,
        spec: &PolicySpec,
        world: &World,
        seed: u64,
    ) -> Result<Box<dyn Policy>, HostError> {
        self.make_policy(spec, world, seed, self.health.clone())
    }

    /// [`Registry::policy`] for one run of a study: the policy's failures are recorded for this
    /// run only ([`RunCheck`]), not in [`Registry::check`], so that one failing run does not
    /// invalidate the others. Check the run with [`RunCheck::check`] after it.
    pub fn policy_for_run(
        &self,
        spec: &PolicySpec,
        world: &World,
        seed: u64,
    ) -> Result<(Box<dyn Policy>, RunCheck), HostError> {
        let health = Arc::new(Health::child(&self.health));
        let p = self.make_policy(spec, world, seed, health.clone())?;
        Ok((p, RunCheck { health }))
    }

    fn make_policy(
        &self,
        spec: &PolicySpec,
        world: &World,
        seed: u64,
        health: Arc<Health>,
    ) -> Result<Box<dyn Policy>, HostError> {
        let name = match spec.name.strip_prefix(PLUGIN_PREFIX) {
            Some(n) => n,
            None => {
                let (inner, mode) = split_admission(spec, false)?;
                if let Some(p) = builtin_policy(&inner, world) {
                    return p.map(|p| with_admission(p, mode));
                }
                &spec.name
            }
        };
        let Some(d) = self.find(abi::KIND_POLICY, name) else {
            return Err(self.unknown(PluginKind::Policy, name));
        };
        let (spec, mode) = split_admission(spec, declares_param(&d.params, AdmissionMode::PARAM))?;
        let spec = &spec;
        let config = params_json(spec);
        let plugin_seed = {
            use rand::Rng as _;
            perllm_core::rng::stream_rng(seed, perllm_core::rng::stream::POLICY).next_u64()
        };
        if let Some(iso) = self.isolation.as_ref().filter(|_| self.isolates(d)) {
            let p = IsolatedPolicy::create(
                &d.name,
                &d.lib.path,
                &config,
                plugin_seed,
                world,
                health,
                self.budget,
                iso,
            )?;
            return Ok(with_admission(Box::new(p), mode));
        }
        let mut p = ForeignPolicy::create(d, &config, plugin_seed, health, self.budget)?;
        if !self.in_place {
            p.without_in_place();
        }
        Ok(with_admission(Box::new(p), mode))
    }

    /// The cost model `name` with `config_json` (a JSON object; empty means defaults). The
    /// built-in `roofline` (core's, the default) accepts `step_overhead_ns`; a `plugin:` prefix
    /// selects a plugin of a built-in's name (e.g. `plugin:roofline`, which accepts more).
    pub fn cost_model(
        &self,
        name: &str,
        config_json: &str,
    ) -> Result<Arc<dyn CostModel>, HostError> {
        let plugin_name = match name.strip_prefix(PLUGIN_PREFIX) {
            Some(n) => n,
            None => {
                if name == "roofline" {
                    return builtin_roofline(config_json);
                }
                name
            }
        };
        let Some(d) = self.find(abi::KIND_COST_MODEL, plugin_name) else {
            return Err(self.unknown(PluginKind::CostModel, plugin_name));
        };
        Ok(Arc::new(ForeignCostModel::create(
            d,
            config_json,
            self.health.clone(),
        )?))
    }

    /// The first failure of any plugin policy or cost model this registry created (an error,
    /// a panic, an invalid result). A run during which a plugin failed must not be reported as
    /// valid: call this after every run.
    pub fn check(&self) -> Result<(), HostError> {
        match self.health.first(None) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The first failure of the plugin named `name` (policy or cost model), if any.
    pub fn failure(&self, name: &str) -> Option<HostError> {
        self.health
            .first(Some(name.strip_prefix(PLUGIN_PREFIX).unwrap_or(name)))
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RooflineConfig {
    #[serde(default)]
    step_overhead_ns: Option<u64>,
    #[serde(default)]
    decode_seq_ns: f64,
    #[serde(default)]
    prefill_seq_ns: f64,
    #[serde(default)]
    kv_token_ns: f64,
    #[serde(default)]
    one_token_step_ns: f64,
    #[serde(default)]
    prefill_step_ns: f64,
    #[serde(default)]
    rows_ns: Vec<(u64, f64)>,
}

/// Core's roofline, or with `decode_seq_ns` / `prefill_seq_ns` / `kv_token_ns` /
/// `one_token_step_ns` / `prefill_step_ns` (what `perllm
/// calibrate` fits) the roofline plus those per-sequence terms, or with `rows_ns` a measured
/// step-cost table by rows in place of the roofline ([`perllm_core::cost::Calibrated`]).
fn builtin_roofline(config: &str) -> Result<Arc<dyn CostModel>, HostError> {
    let t = config.trim();
    if t.is_empty() || t == "null" {
        return Ok(Arc::new(Roofline::default()));
    }
    let bad = |message: String| HostError::Builtin {
        kind: "cost model".into(),
        name: "roofline".into(),
        message,
    };
    let c: RooflineConfig = serde_json::from_str(t).map_err(|e| {
        bad(format!(
            "invalid config: {e} (the built-in accepts `step_overhead_ns`, `decode_seq_ns`, `prefill_seq_ns`, `kv_token_ns`, `one_token_step_ns`, `prefill_step_ns` and `rows_ns`; `plugin:roofline` also accepts `compute_efficiency` and `bandwidth_efficiency`)"
        ))
    })?;
    for (k, v) in [
        ("decode_seq_ns", c.decode_seq_ns),
        ("prefill_seq_ns", c.prefill_seq_ns),
        ("kv_token_ns", c.kv_token_ns),
        ("one_token_step_ns", c.one_token_step_ns),
        ("prefill_step_ns", c.prefill_step_ns),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(bad(format!(
                "invalid config: `{k}` must be a finite number of ns, at least 0, got {v}"
            )));
        }
    }
    check_rows_table(&c.rows_ns).map_err(|m| bad(format!("invalid config: `rows_ns`: {m}")))?;
    if !c.rows_ns.is_empty() && (c.step_overhead_ns.unwrap_or(0) > 0 || c.one_token_step_ns > 0.0) {
        return Err(bad(
            "invalid config: `rows_ns` prices the whole step's matrix work, one-row steps included: it replaces `step_overhead_ns` and `one_token_step_ns` (leave them out or set them to 0)".into(),
        ));
    }
    let roofline = Roofline {
        step_overhead_ns: c
            .step_overhead_ns
            .unwrap_or(Roofline::default().step_overhead_ns),
    };
    if c.decode_seq_ns == 0.0
        && c.prefill_seq_ns == 0.0
        && c.kv_token_ns == 0.0
        && c.one_token_step_ns == 0.0
        && c.prefill_step_ns == 0.0
        && c.rows_ns.is_empty()
    {
        return Ok(Arc::new(roofline));
    }
    Ok(Arc::new(perllm_core::cost::Calibrated {
        roofline,
        decode_seq_ns: c.decode_seq_ns,
        prefill_seq_ns: c.prefill_seq_ns,
        kv_token_ns: c.kv_token_ns,
        one_token_step_ns: c.one_token_step_ns,
        prefill_step_ns: c.prefill_step_ns,
        rows_ns: c.rows_ns,
    }))
}

/// A step-cost table by rows: `[rows, ns]` knots, rows at least 1 and strictly increasing, ns
/// finite, at least 0 and not decreasing (more rows never cost less).
fn check_rows_table(knots: &[(u64, f64)]) -> Result<(), String> {
    for (i, &(r, v)) in knots.iter().enumerate() {
        if r == 0 {
            return Err(format!("knot {i}: rows must be at least 1"));
        }
        if !(v.is_finite() && v >= 0.0) {
            return Err(format!(
                "knot {i} ({r} rows): must be a finite number of ns, at least 0, got {v}"
            ));
        }
        if i > 0 {
            let (r0, v0) = knots[i - 1];
            if r <= r0 {
                return Err(format!("knot {i}: rows must increase ({r} after {r0})"));
            }
            if v < v0 {
                return Err(format!(
                    "knot {i}: {r} rows cost {v} ns, less than {r0} rows ({v0} ns); the table must not decrease"
                ));
            }
        }
    }
    Ok(())
}

/// A policy's declared parameters with the `admission` option perllm adds to every policy that
/// does not declare its own.
fn with_admission_help(params: String) -> String {
    if declares_param(&params, AdmissionMode::PARAM) {
        params
    } else if params.trim().is_empty() || params.trim() == "(no parameters)" {
        AdmissionMode::HELP.to_string()
    } else {
        format!("{}\n{}", params.trim_end(), AdmissionMode::HELP)
    }
}

/// Does a declared parameter list (`name (default): meaning`, one per line) name `param`?
fn declares_param(params: &str, param: &str) -> bool {
    params.lines().any(|l| {
        l.trim_start()
            .split([' ', '(', ':'])
            .next()
            .is_some_and(|n| n == param)
    })
}

/// `spec` without the `admission` option, and the option's value (perllm applies it to every
/// policy; a plugin that declares an `admission` parameter of its own (`own`) receives it
/// instead).
fn split_admission(spec: &PolicySpec, own: bool) -> Result<(PolicySpec, AdmissionMode), HostError> {
    use perllm_core::spec::ParamValue;
    let mut spec = spec.clone();
    if own {
        return Ok((spec, AdmissionMode::None));
    }
    let mode = match spec.params.remove(AdmissionMode::PARAM) {
        None => Ok(AdmissionMode::None),
        Some(ParamValue::Text(t)) => AdmissionMode::parse(&t),
        Some(v) => AdmissionMode::parse(&v.to_string()),
    }
    .map_err(|message| HostError::Param {
        policy: spec.name.clone(),
        message,
    })?;
    Ok((spec, mode))
}

/// `p` with admission control `mode` in front of it (itself when `mode` is `none`).
fn with_admission(p: Box<dyn Policy>, mode: AdmissionMode) -> Box<dyn Policy> {
    match mode {
        AdmissionMode::None => p,
        mode => Box::new(Admission::new(p, mode)),
    }
}

/// The policy's parameters as a JSON object. Scenario numbers are `f64`; integral ones are
/// written as JSON integers (`3`, not `3.0`) so that plugins may read them as integers.
pub(crate) fn params_json(spec: &PolicySpec) -> String {
    use perllm_core::spec::ParamValue;
    let map: serde_json::Map<String, serde_json::Value> = spec
        .params
        .iter()
        .map(|(k, v)| {
            let j = match v {
                ParamValue::Bool(b) => serde_json::Value::Bool(*b),
                ParamValue::Text(s) => serde_json::Value::String(s.clone()),
                ParamValue::Number(n) if n.is_finite() && n.fract() == 0.0 && n.abs() < 9.0e15 => {
                    if *n >= 0.0 {
                        serde_json::Value::from(*n as u64)
                    } else {
                        serde_json::Value::from(*n as i64)
                    }
                }
                ParamValue::Number(n) => serde_json::Number::from_f64(*n)
                    .map_or(serde_json::Value::Null, serde_json::Value::Number),
            };
            (k.clone(), j)
        })
        .collect();
    serde_json::Value::Object(map).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use perllm_core::spec::ParamValue;

    #[test]
    fn params_become_a_json_object_with_integers() {
        let spec = PolicySpec {
            name: "x".into(),
            params: [
                ("a".to_string(), ParamValue::Number(3.0)),
                ("b".to_string(), ParamValue::Number(0.25)),
                ("c".to_string(), ParamValue::Number(-2.0)),
                ("d".to_string(), ParamValue::Bool(true)),
                ("e".to_string(), ParamValue::Text("t".into())),
                ("f".to_string(), ParamValue::Number(f64::NAN)),
            ]
            .into_iter()
            .collect(),
        };
        assert_eq!(
            params_json(&spec),
            r#"{"a":3,"b":0.25,"c":-2,"d":true,"e":"t","f":null}"#
        );
        assert_eq!(
            params_json(&PolicySpec {
                name: "x".into(),
                params: Default::default()
            }),
            "{}"
        );
    }
}
