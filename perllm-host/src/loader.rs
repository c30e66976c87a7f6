//! Loading a plugin library and validating its declaration. All of the host's `unsafe` that
//! touches a library's symbols and static data is here.

use crate::error::HostError;
use perllm_plugin_abi as abi;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The symbol names a library is loaded with. [`Symbols::default`] is the ABI's; others exist so
/// that tests can load deliberately malformed declarations exported under other names.
#[derive(Clone, Copy, Debug)]
pub struct Symbols<'a> {
    /// The version function.
    pub abi_version: &'a str,
    /// The declaration function.
    pub declare: &'a str,
}

impl Default for Symbols<'_> {
    fn default() -> Self {
        Symbols {
            abi_version: abi::ABI_VERSION_SYMBOL,
            declare: abi::DECLARE_SYMBOL,
        }
    }
}

/// A loaded library (never unloaded).
#[derive(Debug)]
pub(crate) struct LibInfo {
    /// The path it was loaded from (canonical).
    pub path: PathBuf,
    /// The ABI version it reported.
    pub abi_version: u32,
}

/// One plugin of a loaded library, validated and copied into host memory.
#[derive(Clone)]
pub(crate) struct Declared {
    pub name: String,
    pub version: String,
    pub description: String,
    pub kind: u32,
    pub flags: u32,
    /// Declared parameters (ABI 1.2), empty if not declared.
    pub params: String,
    pub policy: Option<abi::PolicyVTable>,
    pub cost_model: Option<abi::CostModelVTable>,
    pub lib: Arc<LibInfo>,
}

/// Largest number of plugins one library may declare.
const MAX_PLUGINS: usize = 4096;
/// Largest length of a declared string.
const MAX_STR: usize = 1 << 16;

/// Load `path` and validate what it declares.
pub(crate) fn load(
    path: &Path,
    syms: Symbols<'_>,
) -> Result<(Arc<LibInfo>, Vec<Declared>), HostError> {
    if !path.exists() {
        return Err(HostError::NotFound {
            path: path.to_path_buf(),
        });
    }
    let path = path.canonicalize().map_err(|e| HostError::NotALibrary {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if !path.is_file() {
        return Err(HostError::NotALibrary {
            path,
            reason: "it is not a file".into(),
        });
    }
    // SAFETY: loading a library runs its initialisers; perllm loads only libraries the user
    // named (explicitly, by PERLLM_PLUGIN_PATH, or the bundled one), which is the documented trust
    // model of plugins (docs/plugin-abi.md).
    let lib = unsafe { libloading::Library::new(&path) }.map_err(|e| HostError::NotALibrary {
        path: path.clone(),
        reason: loader_reason(&e),
    })?;
    // Libraries are never unloaded: vtables and declarations must stay valid for the process.
    let lib: &'static libloading::Library = Box::leak(Box::new(lib));

    let missing = |symbol: &str| HostError::MissingSymbol {
        path: path.clone(),
        symbol: symbol.to_string(),
    };
    // SAFETY: the ABI defines this symbol as `extern "C" fn() -> u32`.
    let version_fn: libloading::Symbol<'static, extern "C" fn() -> u32> =
        unsafe { lib.get(syms.abi_version.as_bytes()) }.map_err(|_| missing(syms.abi_version))?;
    let version = version_fn();
    if abi::abi_major(version) != abi::ABI_VERSION_MAJOR {
        return Err(HostError::AbiVersion {
            path,
            symbol: syms.abi_version.to_string(),
            found: format!("{}.{}", abi::abi_major(version), abi::abi_minor(version)),
            supported: abi::ABI_VERSION_MAJOR,
        });
    }
    // SAFETY: the ABI defines this symbol as `extern "C" fn() -> *const PluginList`.
    let declare_fn: libloading::Symbol<'static, extern "C" fn() -> *const abi::PluginList> =
        unsafe { lib.get(syms.declare.as_bytes()) }.map_err(|_| missing(syms.declare))?;
    let list = declare_fn();
    let info = Arc::new(LibInfo {
        path: path.clone(),
        abi_version: version,
    });
    let malformed = |problem: String| HostError::Malformed {
        path: path.clone(),
        symbol: syms.declare.to_string(),
        problem,
    };
    // SAFETY: the declaration is static data of a library that is never unloaded; `read_list`
    // checks every pointer and size before reading through it.
    let decls = unsafe { read_list(list) }.map_err(malformed)?;
    let mut out = Vec::with_capacity(decls.len());
    let mut seen = std::collections::BTreeSet::new();
    for (i, d) in decls.into_iter().enumerate() {
        // SAFETY: as above; `read_decl` validates each pointer it follows.
        let mut p = unsafe { read_decl(&d) }.map_err(|e| malformed(format!("plugin #{i}: {e}")))?;
        p.lib = info.clone();
        if !seen.insert((p.kind, p.name.clone())) {
            return Err(malformed(format!(
                "plugin #{i}: a second {} named `{}`",
                kind_name(p.kind),
                p.name
            )));
        }
        out.push(p);
    }
    Ok((info, out))
}

/// `policy` or `cost model`.
pub(crate) fn kind_name(kind: u32) -> &'static str {
    if kind == abi::KIND_POLICY {
        "policy"
    } else {
        "cost model"
    }
}

/// Copy a guest struct whose first field is its `struct_size`, whatever its minor version: the
/// prefix this host knows, with [`abi::Versioned::DEFAULT`] for the fields an older guest lacks
/// (the fields a newer guest adds are ignored).
///
/// # Safety
/// `p` must be null or point to a readable struct of at least 4 bytes whose first field is its
/// `struct_size`, and to `struct_size` readable bytes.
unsafe fn read_sized<T: abi::Versioned>(p: *const T, what: &str) -> Result<T, String> {
    if p.is_null() {
        return Err(format!("the {what} pointer is null"));
    }
    if !(p as usize).is_multiple_of(align_of::<T>()) {
        return Err(format!("the {what} pointer is misaligned"));
    }
    // SAFETY: `p` is non-null and aligned; the caller guarantees at least 4 readable bytes.
    let size = unsafe { *(p as *const u32) } as usize;
    if size < T::MIN_SIZE {
        return Err(format!(
            "the {what} declares struct_size {size}, smaller than ABI 1.0's {} bytes",
            T::MIN_SIZE
        ));
    }
    if !abi::size_is_valid::<T>(size) {
        return Err(format!(
            "the {what} declares struct_size {size}, not a multiple of {}",
            align_of::<T>()
        ));
    }
    // SAFETY: the guest's struct holds `size` readable bytes, a valid 1.x size.
    Ok(unsafe { abi::read_versioned(p, size) })
}

unsafe fn read_list(list: *const abi::PluginList) -> Result<Vec<abi::PluginDecl>, String> {
    // SAFETY: forwarded; `read_sized` checks null, alignment and size.
    let l = unsafe { read_sized(list, "plugin list") }?;
    let n = l.plugins.len;
    if n == 0 {
        return Err("the library declares no plugins".into());
    }
    if n > MAX_PLUGINS {
        return Err(format!(
            "the library declares {n} plugins (at most {MAX_PLUGINS})"
        ));
    }
    let base = l.plugins.ptr as *const u8;
    if base.is_null() {
        return Err(format!(
            "the plugin array pointer is null but its length is {n}"
        ));
    }
    // SAFETY: a non-null array of `n` declarations; the first one's size is the stride.
    let first = unsafe { read_sized(base as *const abi::PluginDecl, "plugin #0 declaration") }?;
    // SAFETY: `read_sized` read it from the same pointer.
    let stride = unsafe { *(base as *const u32) } as usize;
    let mut out = vec![first];
    for i in 1..n {
        // SAFETY: element `i` of an array with stride `stride` the guest declared.
        let d = unsafe {
            read_sized(
                base.add(i * stride) as *const abi::PluginDecl,
                &format!("plugin #{i} declaration"),
            )
        }?;
        // SAFETY: as above.
        let size = unsafe { *(base.add(i * stride) as *const u32) } as usize;
        if size != stride {
            return Err(format!(
                "plugin #{i} has struct_size {size}, unlike plugin #0's {stride}"
            ));
        }
        out.push(d);
    }
    Ok(out)
}

/// Read a declared string.
///
/// # Safety
/// `s` must come from a declaration whose strings are static.
unsafe fn read_str(s: abi::StrRef, what: &str) -> Result<String, String> {
    if s.len > MAX_STR {
        return Err(format!(
            "its {what} is {} bytes long (at most {MAX_STR})",
            s.len
        ));
    }
    if s.ptr.is_null() && s.len > 0 {
        return Err(format!(
            "its {what} pointer is null but its length is {}",
            s.len
        ));
    }
    // SAFETY: non-null pointer to `len` bytes of static data (the caller's contract).
    let bytes = unsafe { s.as_bytes() };
    String::from_utf8(bytes.to_vec()).map_err(|e| format!("its {what} is not UTF-8 ({e})"))
}

unsafe fn read_decl(d: &abi::PluginDecl) -> Result<Declared, String> {
    // SAFETY: declaration strings are static (the library is never unloaded).
    let name = unsafe { read_str(d.name, "name") }?;
    if name.is_empty() {
        return Err("its name is empty".into());
    }
    if name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        // Escaped: a NUL or control byte printed raw would make the bad name look valid.
        return Err(format!(
            "its name \"{}\" is not 1-64 ASCII letters, digits, `-`, `_` or `.`{}",
            name.escape_debug(),
            if name.contains('\0') {
                " (it contains a NUL byte: C strings are not names; pass the length without the terminator)"
            } else {
                ""
            }
        ));
    }
    let ctx = |e: String| format!("`{name}`: {e}");
    // SAFETY: as above.
    let version = unsafe { read_str(d.version, "version") }.map_err(ctx)?;
    // SAFETY: as above.
    let description = unsafe { read_str(d.description, "description") }.map_err(ctx)?;
    // SAFETY: as above (an older plugin's declaration has the empty default).
    let params = unsafe { read_str(d.params, "params") }.map_err(ctx)?;
    for (what, v) in [
        ("version", &version),
        ("description", &description),
        ("params", &params),
    ] {
        if v.contains('\0') {
            return Err(format!(
                "`{name}`: its {what} \"{}\" contains a NUL byte (pass the length without the terminator)",
                v.escape_debug()
            ));
        }
    }
    let mut out = Declared {
        name: name.clone(),
        version,
        description,
        kind: d.kind,
        flags: d.flags,
        params,
        policy: None,
        cost_model: None,
        lib: Arc::new(LibInfo {
            path: PathBuf::new(),
            abi_version: 0,
        }),
    };
    match d.kind {
        abi::KIND_POLICY => {
            // SAFETY: the vtable is static data of the library; `read_sized` checks it.
            let vt = unsafe { read_sized(d.policy, "policy vtable") }.map_err(ctx)?;
            for (f, present) in [
                ("create", vt.create.is_some()),
                ("destroy", vt.destroy.is_some()),
                ("schedule", vt.schedule.is_some()),
            ] {
                if !present {
                    return Err(format!(
                        "`{name}`: its policy vtable has no `{f}` entry, which is required"
                    ));
                }
            }
            out.policy = Some(vt);
        }
        abi::KIND_COST_MODEL => {
            // SAFETY: as above.
            let vt = unsafe { read_sized(d.cost_model, "cost-model vtable") }.map_err(ctx)?;
            for (f, present) in [
                ("create", vt.create.is_some()),
                ("destroy", vt.destroy.is_some()),
                ("step_ns", vt.step_ns.is_some()),
            ] {
                if !present {
                    return Err(format!(
                        "`{name}`: its cost-model vtable has no `{f}` entry, which is required"
                    ));
                }
            }
            out.cost_model = Some(vt);
        }
        k => {
            return Err(format!(
                "`{name}`: unknown kind {k} (expected {} for a policy or {} for a cost model)",
                abi::KIND_POLICY,
                abi::KIND_COST_MODEL
            ));
        }
    }
    Ok(out)
}

/// The dynamic loader's message with its cause: libloading's `Display` says only "dlopen failed"
/// and keeps the system's reason (`dlerror()`: "invalid ELF header", a missing dependency...) as
/// the error's source.
fn loader_reason(e: &libloading::Error) -> String {
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !text.is_empty() && !reason.contains(&text) {
            reason.push_str(": ");
            reason.push_str(&text);
        }
        source = s.source();
    }
    reason
}
