//! A perllm plugin library that misbehaves on demand, for the host's negative tests.
//!
//! - Policy `testkit`: config `{"mode": M, "after": N, "sleep_ms": T}`. It behaves (each request
//!   to the first server hosting its model) for `N` slots, then does `M`: `ok`, `panic`, `error`,
//!   `bad-server` (a server id that does not exist), `unhosted` (a server without the model),
//!   `bad-action`, `sleep` (sleep `T` ms per call, then behave), `defer` (config `"defers": D`:
//!   a request with an even prompt length is deferred until it has been deferred `D` times,
//!   then placed like the others), `panic-observe`, `error-observe`,
//!   and the faults no host can catch in-process: `abort` (`std::process::abort`), `segfault` (a
//!   write through a null pointer), `exit` (`std::process::exit(3)`) and `hang` (never returns).
//!   `fail-create` and `panic-create` fail at creation.
//! - Cost model `testkit-cost`: config `{"mode": M, "after": N}`; correct for `N` calls, then
//!   `nan` (NaN energy), `negative` (negative energy), `zero-step` (a zero step time),
//!   `error`, `panic`. `fail-create` fails at creation.
//! - Extra symbols with malformed versions and declarations, loaded by the host's tests through
//!   its symbol-name override: see the `testkit_*` functions.

#![allow(unsafe_code)]

use perllm_plugin_abi::*;
use serde::Deserialize;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    mode: String,
    after: u64,
    sleep_ms: u64,
    defers: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: "ok".into(),
            after: 0,
            sleep_ms: 0,
            defers: 0,
        }
    }
}

fn parse(config: &str) -> Result<Config, String> {
    if config.trim().is_empty() {
        return Ok(Config::default());
    }
    serde_json::from_str(config).map_err(|e| format!("invalid testkit config: {e}"))
}

/// The misbehaving policy.
#[derive(Debug)]
pub struct Testkit {
    cfg: Config,
    calls: u64,
}

impl GuestPolicy for Testkit {
    const NAME: &'static str = "testkit";
    const VERSION: &'static str = "0.0.1";
    const DESCRIPTION: &'static str = "misbehaves on demand (tests only)";
    fn create(config: &str, _seed: u64) -> Result<Self, String> {
        let cfg = parse(config)?;
        match cfg.mode.as_str() {
            "fail-create" => Err("refusing to start (mode fail-create)".into()),
            "panic-create" => panic!("testkit panics in create"),
            _ => Ok(Testkit { cfg, calls: 0 }),
        }
    }
    fn schedule(&mut self, slot: &Slot<'_>, out: &mut [Placement]) -> Result<(), String> {
        self.calls += 1;
        for (r, p) in slot.requests().iter().zip(out.iter_mut()) {
            if let Some(s) = slot.candidates(r).next() {
                p.action = ACTION_ASSIGN;
                p.server = s.id;
            } else {
                p.action = ACTION_REJECT;
            }
        }
        if self.cfg.mode == "defer" {
            for (r, p) in slot.requests().iter().zip(out.iter_mut()) {
                if r.prompt_tokens % 2 == 0 && r.defers < self.cfg.defers {
                    p.action = ACTION_DEFER;
                    p.server = NO_SERVER;
                }
            }
            return Ok(());
        }
        if self.cfg.mode == "sleep" {
            std::thread::sleep(std::time::Duration::from_millis(self.cfg.sleep_ms));
            return Ok(());
        }
        if self.calls <= self.cfg.after || out.is_empty() {
            return Ok(());
        }
        let n = slot.servers().len() as u32;
        match self.cfg.mode.as_str() {
            "panic" => panic!("testkit panics in schedule (slot {})", slot.slot()),
            "error" => return Err(format!("testkit fails in schedule (slot {})", slot.slot())),
            "bad-server" => out[0].server = n + 3,
            "unhosted" => {
                let bad = slot.requests().iter().enumerate().find_map(|(i, r)| {
                    (0..n as usize)
                        .find(|&s| !slot.hosts(s, r.model))
                        .map(|s| (i, s))
                });
                match bad {
                    Some((i, s)) => {
                        out[i].action = ACTION_ASSIGN;
                        out[i].server = s as u32;
                    }
                    None => {
                        return Err(
                            "testkit: every server hosts every pending request's model".into()
                        );
                    }
                }
            }
            "bad-action" => out[0].action = 77,
            "abort" => std::process::abort(),
            "segfault" => {
                // SAFETY: none: the point is to crash the process as a buggy C plugin would
                // (SIGSEGV). Address 16 is aligned and non-null (so the standard library's debug
                // checks let it through) but in the never-mapped first page; `write_volatile`
                // keeps the compiler from removing the write.
                unsafe { (16usize as *mut u64).write_volatile(1) };
            }
            "exit" => std::process::exit(3),
            "hang" => loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            },
            _ => {}
        }
        Ok(())
    }
    fn observe(&mut self, _o: &Outcome) -> Result<(), String> {
        match self.cfg.mode.as_str() {
            "panic-observe" => panic!("testkit panics in observe"),
            "error-observe" => Err("testkit fails in observe".into()),
            _ => Ok(()),
        }
    }
    fn stats(&self, out: &mut Vec<(String, f64)>) {
        out.push(("testkit.calls".into(), self.calls as f64));
    }
}

/// The misbehaving cost model.
#[derive(Debug)]
pub struct TestkitCost {
    cfg: Config,
    calls: AtomicU64,
}

impl TestkitCost {
    fn misbehave(&self) -> bool {
        self.calls.fetch_add(1, Ordering::Relaxed) >= self.cfg.after
    }
}

impl GuestCostModel for TestkitCost {
    const NAME: &'static str = "testkit-cost";
    const VERSION: &'static str = "0.0.1";
    const DESCRIPTION: &'static str = "misbehaves on demand (tests only)";
    const PROVIDES_ESTIMATE: bool = true;
    fn create(config: &str) -> Result<Self, String> {
        let cfg = parse(config)?;
        if cfg.mode == "fail-create" {
            return Err("refusing to start (mode fail-create)".into());
        }
        Ok(TestkitCost {
            cfg,
            calls: AtomicU64::new(0),
        })
    }
    fn step_ns(&self, q: &StepQuery<'_>) -> Result<u64, String> {
        let s = q.shape;
        if s.prefill_tokens == 0 && s.decode_seqs == 0 {
            return Ok(0);
        }
        if self.misbehave() {
            match self.cfg.mode.as_str() {
                "zero-step" => return Ok(0),
                "error" => return Err("testkit-cost fails in step_ns".into()),
                "panic" => panic!("testkit-cost panics in step_ns"),
                _ => {}
            }
        }
        Ok(1_000_000 + 10_000 * s.prefill_tokens + 20_000_000 * s.decode_seqs as u64)
    }
    fn estimate(&self, q: &EstimateQuery<'_>) -> Result<EstimateView, String> {
        let r = q.request;
        let mut e = EstimateView {
            struct_size: size_of::<EstimateView>() as u32,
            valid: 1,
            upload_ns: 1_000_000,
            queue_ns: 0,
            prefill_ns: 10_000 * r.prompt_tokens as u64,
            decode_ns: 20_000_000 * r.output_tokens as u64,
            download_ns: 1_000_000,
            energy_transmission_j: 0.5,
            energy_inference_j: 10.0,
            energy_idle_j: 0.0,
        };
        if self.misbehave() {
            match self.cfg.mode.as_str() {
                "nan" => e.energy_inference_j = f64::NAN,
                "negative" => e.energy_transmission_j = -1.0,
                "error" => return Err("testkit-cost fails in estimate".into()),
                "panic" => panic!("testkit-cost panics in estimate"),
                _ => {}
            }
        }
        Ok(e)
    }
}

export_plugins! {
    policies: [Testkit],
    cost_models: [TestkitCost],
}

/// An ABI version with an unsupported major (99).
#[unsafe(no_mangle)]
pub extern "C" fn testkit_bad_version() -> u32 {
    99 << 16
}

/// A declaration function that returns null.
#[unsafe(no_mangle)]
pub extern "C" fn testkit_declare_null() -> *const PluginList {
    std::ptr::null()
}

const GOOD: PluginDecl = policy_decl::<Testkit>();

/// `pub extern "C" fn $name() -> *const PluginList`, unmangled (the host's tests load it through
/// their symbol-name override), returning a static list of the declarations `$decls`.
macro_rules! declaration {
    ($(#[$doc:meta])* $name:ident => $decls:expr) => {
        $(#[$doc])*
        #[unsafe(no_mangle)]
        pub extern "C" fn $name() -> *const PluginList {
            static D: &[PluginDecl] = $decls;
            static L: PluginList = PluginList::new(D);
            &L
        }
    };
}

declaration! {
    /// A declaration with an unknown kind.
    testkit_declare_bad_kind => &[PluginDecl { kind: 7, ..GOOD }]
}

declaration! {
    /// A declaration of a policy without a vtable.
    testkit_declare_no_vtable => &[PluginDecl {
        policy: std::ptr::null(),
        ..GOOD
    }]
}

/// The policy vtable of `testkit_declare_no_schedule`.
static NO_SCHEDULE_VT: PolicyVTable = PolicyVTable {
    struct_size: size_of::<PolicyVTable>() as u32,
    reserved: 0,
    create: Some(policy_create::<Testkit>),
    destroy: Some(destroy::<Testkit>),
    schedule: None,
    observe: None,
    stats: None,
    decide: None,
};

declaration! {
    /// A declaration of a policy whose vtable lacks `schedule`.
    testkit_declare_no_schedule => &[PluginDecl {
        policy: &NO_SCHEDULE_VT,
        ..GOOD
    }]
}

declaration! {
    /// A declaration whose name is empty.
    testkit_declare_empty_name => &[PluginDecl {
        name: StrRef::EMPTY,
        ..GOOD
    }]
}

static BAD_UTF8: [u8; 3] = [b'a', 0xff, b'b'];

declaration! {
    /// A declaration whose name is not UTF-8.
    testkit_declare_bad_utf8 => &[PluginDecl {
        name: StrRef {
            ptr: BAD_UTF8.as_ptr(),
            len: 3,
        },
        ..GOOD
    }]
}

declaration! {
    /// A declaration of two policies with one name.
    testkit_declare_dup => &[GOOD, GOOD]
}

declaration! {
    /// A declaration of a policy named like a bundled one (`round-robin`).
    testkit_declare_clash => &[PluginDecl {
        name: StrRef::new("round-robin"),
        ..GOOD
    }]
}

/// A list whose `struct_size` is smaller than the ABI's.
#[unsafe(no_mangle)]
pub extern "C" fn testkit_declare_short_list() -> *const PluginList {
    static D: &[PluginDecl] = &[GOOD];
    static L: PluginList = PluginList {
        struct_size: 4,
        ..PluginList::new(D)
    };
    &L
}

/// A future minor version of ABI 1 (1.999).
#[unsafe(no_mangle)]
pub extern "C" fn testkit_future_minor() -> u32 {
    (ABI_VERSION_MAJOR << 16) | 999
}

/// A vtable of a future minor version: two entries this host does not know after the others.
#[repr(C)]
struct FutureVTable {
    vt: PolicyVTable,
    later: [Option<extern "C" fn()>; 2],
}

/// A declaration of a future minor version: 16 bytes this host does not know after the others.
#[repr(C)]
struct FutureDecl {
    decl: PluginDecl,
    later: [u64; 2],
}

// SAFETY: static data of function pointers and pointers to static data.
unsafe impl Sync for FutureVTable {}
// SAFETY: as above.
unsafe impl Sync for FutureDecl {}

extern "C" fn never_called() {
    std::process::abort();
}

/// A policy `testkit-future` declared with structs larger than this ABI's (a newer plugin).
#[unsafe(no_mangle)]
pub extern "C" fn testkit_declare_future() -> *const PluginList {
    static VT: FutureVTable = FutureVTable {
        vt: PolicyVTable {
            struct_size: size_of::<FutureVTable>() as u32,
            ..*policy_vtable::<Testkit>()
        },
        later: [Some(never_called), Some(never_called)],
    };
    static D: [FutureDecl; 1] = [FutureDecl {
        decl: PluginDecl {
            struct_size: size_of::<FutureDecl>() as u32,
            name: StrRef::new("testkit-future"),
            policy: &VT.vt,
            ..GOOD
        },
        later: [u64::MAX; 2],
    }];
    static L: PluginList = PluginList {
        struct_size: size_of::<PluginList>() as u32,
        reserved: 0,
        plugins: Slice::new_raw(D.as_ptr().cast(), 1),
    };
    &L
}

/// `testkit-raw`'s schedule, written against the raw ABI to misuse the error sink as a C plugin
/// might: by its config's mode, `null-message` (a null pointer with length 5), `empty-message`,
/// `no-message` (an error status without a message); otherwise every request is deferred.
extern "C" fn raw_schedule(
    instance: *mut std::ffi::c_void,
    _slot: *const SlotView,
    _out: *mut Placement,
    _out_len: usize,
    err: *const ErrorSink,
) -> u32 {
    // SAFETY: the instance `policy_create::<Testkit>` returned.
    let me = unsafe { &*instance.cast::<Testkit>() };
    // SAFETY: the host's sink, valid for the call.
    let (ctx, report) = unsafe { ((*err).ctx, (*err).report) };
    match me.cfg.mode.as_str() {
        "null-message" => {
            report(
                ctx,
                StrRef {
                    ptr: std::ptr::null(),
                    len: 5,
                },
            );
            STATUS_ERROR
        }
        "empty-message" => {
            report(ctx, StrRef::EMPTY);
            STATUS_ERROR
        }
        "no-message" => STATUS_ERROR,
        _ => STATUS_OK,
    }
}

/// `testkit-raw`'s stats: by mode, `null-stat-name`, `empty-stat-name` or `nul-stat-name`.
extern "C" fn raw_stats(instance: *mut std::ffi::c_void, sink: *const StatSink) -> u32 {
    // SAFETY: as in `raw_schedule`.
    let me = unsafe { &*instance.cast::<Testkit>() };
    // SAFETY: the host's sink, valid for the call.
    let (ctx, emit) = unsafe { ((*sink).ctx, (*sink).emit) };
    emit(ctx, StrRef::new("testkit.ok"), 1.0);
    match me.cfg.mode.as_str() {
        "null-stat-name" => emit(
            ctx,
            StrRef {
                ptr: std::ptr::null(),
                len: 0,
            },
            2.0,
        ),
        "empty-stat-name" => emit(ctx, StrRef::new(""), 3.0),
        "nul-stat-name" => emit(ctx, StrRef::new("testkit.calls\0"), 4.0),
        _ => {}
    }
    STATUS_OK
}

/// The policy vtable of `testkit_declare_raw`.
static RAW_VT: PolicyVTable = PolicyVTable {
    schedule: Some(raw_schedule),
    stats: Some(raw_stats),
    decide: None,
    observe: None,
    ..*policy_vtable::<Testkit>()
};

declaration! {
    /// A policy `testkit-raw` whose `schedule` and `stats` misuse the sinks (see `raw_schedule`).
    testkit_declare_raw => &[PluginDecl {
        name: StrRef::new("testkit-raw"),
        policy: &RAW_VT,
        ..GOOD
    }]
}

declaration! {
    /// A declaration whose name has a NUL byte inside (`round\0robin`), as a C string might.
    testkit_declare_nul_name => &[PluginDecl {
        name: StrRef::new("round\0robin"),
        ..GOOD
    }]
}

/// The in-place twin of [`Testkit`] (ABI 1.3's `decide`): config `{"mode": M, "after": N}`;
/// each request to the first server hosting its model for `N` slots, then `M`: `ok`,
/// `bad-action` (action 77 for the first request), `bad-server` (a server id that does not
/// exist), `unhosted` (a server without the model, at the first slot where one exists),
/// `error`, `panic`. Declared by
/// `testkit_declare_in_place` only (not in the library's main list).
#[derive(Debug)]
pub struct TestkitInPlace {
    cfg: Config,
    calls: u64,
}

impl GuestPolicy for TestkitInPlace {
    const NAME: &'static str = "testkit-in-place";
    const VERSION: &'static str = "0.0.1";
    const DESCRIPTION: &'static str = "misbehaves on demand through `decide` (tests only)";
    const IN_PLACE: bool = true;
    fn create(config: &str, _seed: u64) -> Result<Self, String> {
        Ok(TestkitInPlace {
            cfg: parse(config)?,
            calls: 0,
        })
    }
    fn decide(&mut self, slot: &Slot<'_>, out: &mut [Decision]) -> Result<(), String> {
        self.calls += 1;
        for (p, d) in slot.pending().iter().zip(out.iter_mut()) {
            *d = match slot.hosting(p.request.model).next() {
                Some(s) => Decision::assign(s.id),
                None => Decision::REJECT,
            };
        }
        if self.calls <= self.cfg.after || out.is_empty() {
            return Ok(());
        }
        let n = slot.servers().len() as u32;
        match self.cfg.mode.as_str() {
            "bad-action" => out[0].action = 77,
            "bad-server" => out[0] = Decision::assign(n + 3),
            "unhosted" => {
                let bad = slot.pending().iter().enumerate().find_map(|(i, p)| {
                    (0..n as usize)
                        .find(|&s| !slot.hosts(s, p.request.model))
                        .map(|s| (i, s as u32))
                });
                // At the first slot with a request some server does not host.
                if let Some((i, s)) = bad {
                    out[i] = Decision::assign(s);
                }
            }
            "error" => return Err(format!("testkit fails in decide (slot {})", slot.slot())),
            "panic" => panic!("testkit panics in decide (slot {})", slot.slot()),
            _ => {}
        }
        Ok(())
    }
}

declaration! {
    /// The in-place policy `testkit-in-place` (ABI 1.3's `decide`).
    testkit_declare_in_place => &[policy_decl::<TestkitInPlace>()]
}
