//! The stable C ABI for perllm plugins and a safe guest SDK.
//!
//! A plugin library is a shared library (a Rust `cdylib`, or anything with a C ABI) that exports two
//! symbols:
//!
//! - [`ABI_VERSION_SYMBOL`] (`perllm_plugin_abi_version`), `extern "C" fn() -> u32`, called first.
//!   It returns the [`ABI_VERSION`] the library was built against (major in the high 16 bits,
//!   minor in the low 16 bits).
//! - [`DECLARE_SYMBOL`] (`perllm_plugin_declare`), `extern "C" fn() -> *const PluginList`, which
//!   returns a static list of the plugins the library provides: policies and cost models, each
//!   with a name, a version and a vtable of optional `extern "C"` function pointers.
//!
//! Only `#[repr(C)]` plain data crosses the boundary. Strings and slices are borrowed
//! ([`StrRef`], [`Slice`]) and valid only for the duration of the call that receives them. Output
//! goes into host-owned buffers; errors travel through a callback ([`ErrorSink`]) that copies the
//! message, so no memory is ever freed on the other side of the boundary. Enumerations are `u32`
//! constants, never Rust enums.
//!
//! Plugin authors do not write any of this by hand: they implement [`GuestPolicy`] or
//! [`GuestCostModel`] and call [`export_plugins!`] (or [`export_policy!`] /
//! [`export_cost_model!`]), which generate both symbols and wrap every call in
//! [`std::panic::catch_unwind`], turning a panic into [`STATUS_PANIC`] with its message.
//!
//! The contract, the ownership and threading rules and the evolution rules are in
//! `docs/plugin-abi.md`.

#![allow(unsafe_code)]

use std::ffi::c_void;
use std::marker::PhantomData;

mod guard;
mod inplace;
mod sdk;
mod versioned;
pub use guard::{panic_message, report_error};
pub use inplace::*;
pub use sdk::*;
pub use versioned::*;

/// Major version of this ABI: a library with another major version is refused.
pub const ABI_VERSION_MAJOR: u32 = 1;
/// Minor version of this ABI: bumped when fields or vtable entries are appended.
///
/// - 1.0: the first published layout.
/// - 1.1: [`ServerView::hardware_kind`].
/// - 1.2: [`PluginDecl::params`].
/// - 1.3: the in-place path: [`PolicyVTable::decide`], which reads the host's [`Pending`]
///   requests and writes its [`Decision`]s where they are ([`SlotView::pending`] and the
///   fields after it).
pub const ABI_VERSION_MINOR: u32 = 3;
/// `major << 16 | minor`: what [`ABI_VERSION_SYMBOL`] returns.
pub const ABI_VERSION: u32 = (ABI_VERSION_MAJOR << 16) | ABI_VERSION_MINOR;

/// Name of the version symbol, `extern "C" fn() -> u32`.
pub const ABI_VERSION_SYMBOL: &str = "perllm_plugin_abi_version";
/// Name of the declaration symbol, `extern "C" fn() -> *const PluginList`.
pub const DECLARE_SYMBOL: &str = "perllm_plugin_declare";

/// The major part of an encoded ABI version.
pub const fn abi_major(version: u32) -> u32 {
    version >> 16
}
/// The minor part of an encoded ABI version.
pub const fn abi_minor(version: u32) -> u32 {
    version & 0xffff
}

/// [`PluginDecl::kind`]: a scheduling policy with a [`PolicyVTable`].
pub const KIND_POLICY: u32 = 1;
/// [`PluginDecl::kind`]: a cost model with a [`CostModelVTable`].
pub const KIND_COST_MODEL: u32 = 2;

/// [`PluginDecl::flags`]: the policy reads [`SlotView::estimates`]; without it the host leaves
/// them empty and saves the work of computing them.
pub const FLAG_WANTS_ESTIMATES: u32 = 1;

/// Status: the call succeeded.
pub const STATUS_OK: u32 = 0;
/// Status: the call failed; the message was reported through the [`ErrorSink`].
pub const STATUS_ERROR: u32 = 1;
/// Status: the call panicked (the guest caught it); the message was reported through the
/// [`ErrorSink`]. The host poisons the instance and never calls it again.
pub const STATUS_PANIC: u32 = 2;

/// [`ServerView::tier`]: an edge server.
pub const TIER_EDGE: u32 = 0;
/// [`ServerView::tier`]: a cloud server.
pub const TIER_CLOUD: u32 = 1;

/// [`HardwareView::kind`]: a CPU.
pub const HW_CPU: u32 = 0;
/// [`HardwareView::kind`]: a GPU.
pub const HW_GPU: u32 = 1;
/// [`HardwareView::kind`]: an NPU.
pub const HW_NPU: u32 = 2;
/// [`ServerView::hardware_kind`] from a host older than ABI 1.1, which does not say.
pub const HW_UNKNOWN: u32 = u32::MAX;

/// [`Placement::action`] and [`Decision::action`]: keep the request pending until the next slot
/// (the pre-filled value).
pub const ACTION_DEFER: u32 = 0;
/// [`Placement::action`] and [`Decision::action`]: send the request to the `server` field.
pub const ACTION_ASSIGN: u32 = 1;
/// [`Placement::action`] and [`Decision::action`]: refuse the request.
pub const ACTION_REJECT: u32 = 2;

/// [`Placement::server`] of a placement that names no server.
pub const NO_SERVER: u32 = u32::MAX;

/// A borrowed UTF-8 string: pointer and length in bytes, not NUL-terminated.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct StrRef {
    /// First byte (may dangle if `len` is 0).
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

impl StrRef {
    /// The empty string.
    pub const EMPTY: StrRef = StrRef {
        ptr: std::ptr::null(),
        len: 0,
    };

    /// Borrow a Rust string (usable in constants).
    pub const fn new(s: &str) -> StrRef {
        StrRef {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// The bytes this refers to.
    ///
    /// # Safety
    /// `ptr` must point to `len` readable bytes valid for `'a` (or `len` must be 0).
    pub unsafe fn as_bytes<'a>(&self) -> &'a [u8] {
        if self.len == 0 || self.ptr.is_null() {
            return &[];
        }
        // SAFETY: the caller guarantees `ptr` points to `len` bytes valid for 'a.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The string this refers to, if it is valid UTF-8.
    ///
    /// # Safety
    /// As for [`StrRef::as_bytes`].
    pub unsafe fn to_str<'a>(&self) -> Result<&'a str, std::str::Utf8Error> {
        // SAFETY: forwarded to the caller.
        std::str::from_utf8(unsafe { self.as_bytes() })
    }
}

/// A borrowed slice: pointer and number of elements.
#[repr(C)]
#[derive(Debug)]
pub struct Slice<T> {
    /// First element (may dangle if `len` is 0).
    pub ptr: *const T,
    /// Number of elements.
    pub len: usize,
    _marker: PhantomData<T>,
}

impl<T> Clone for Slice<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Slice<T> {}

impl<T> Slice<T> {
    /// The empty slice.
    pub const fn empty() -> Slice<T> {
        Slice {
            ptr: std::ptr::null(),
            len: 0,
            _marker: PhantomData,
        }
    }
    /// A slice of `len` elements at `ptr` (for arrays whose stride is not `size_of::<T>()`).
    pub const fn new_raw(ptr: *const T, len: usize) -> Slice<T> {
        Slice {
            ptr,
            len,
            _marker: PhantomData,
        }
    }
    /// Borrow a Rust slice.
    pub const fn new(s: &[T]) -> Slice<T> {
        Slice {
            ptr: s.as_ptr(),
            len: s.len(),
            _marker: PhantomData,
        }
    }
    /// The elements this refers to.
    ///
    /// # Safety
    /// `ptr` must point to `len` initialised elements valid for `'a` (or `len` must be 0).
    pub unsafe fn as_slice<'a>(&self) -> &'a [T] {
        if self.len == 0 || self.ptr.is_null() {
            return &[];
        }
        // SAFETY: the caller guarantees `ptr` points to `len` elements valid for 'a.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// Where a guest reports an error message: the guest calls `report(ctx, message)`; the host
/// copies the message before returning. May be called more than once (the host keeps the first).
/// A message with a null pointer and a non-zero length is reported by the host as such.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ErrorSink {
    /// `size_of::<ErrorSink>()` of the host that built it (see [`Versioned`]).
    pub struct_size: u32,
    /// Reserved, 0.
    pub reserved: u32,
    /// Host context, passed back unchanged.
    pub ctx: *mut c_void,
    /// Copies the message into host memory.
    pub report: extern "C" fn(ctx: *mut c_void, message: StrRef),
}

/// Where a guest reports named statistics: the guest calls `emit(ctx, name, value)` per value.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct StatSink {
    /// `size_of::<StatSink>()` of the host that built it.
    pub struct_size: u32,
    /// Reserved, 0.
    pub reserved: u32,
    /// Host context, passed back unchanged.
    pub ctx: *mut c_void,
    /// Records one named value.
    pub emit: extern "C" fn(ctx: *mut c_void, name: StrRef, value: f64),
}

/// One server as a policy sees it at a decision point.
///
/// An element of [`SlotView::servers`], whose stride is [`SlotView::server_size`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ServerView {
    /// `size_of::<ServerView>()` of the host that built it.
    pub struct_size: u32,
    /// Index of the server (what [`Placement::server`] names).
    pub id: u32,
    /// [`TIER_EDGE`] or [`TIER_CLOUD`].
    pub tier: u32,
    /// Largest number of sequences in one engine step.
    pub max_batch: u32,
    /// Number of identical devices.
    pub device_count: u32,
    /// Requests assigned and still uploading.
    pub uploading: u32,
    /// Requests uploaded and waiting for admission.
    pub queued: u32,
    /// Requests in the engine.
    pub running: u32,
    /// Requests downloading their output.
    pub downloading: u32,
    /// Reserved, 0.
    pub reserved: u32,
    /// Hosted model indices, sorted.
    pub models: Slice<u16>,
    /// Free KV-cache bytes.
    pub free_kv_bytes: u64,
    /// KV-cache capacity in bytes.
    pub kv_capacity_bytes: u64,
    /// Tokens still to be generated by running and queued requests.
    pub pending_output_tokens: u64,
    /// One-way latency of the server's link, ns.
    pub link_latency_ns: u64,
    /// The link's mean bandwidth, bits/s.
    pub bandwidth_estimate_bps: f64,
    /// Fraction of time the engine was busy over the last slot.
    pub recent_utilization: f64,
    /// Hardware idle power x device count x the facility's PUE (the server's `pue`, 1 by
    /// default), W.
    pub power_idle_w: f64,
    /// Hardware busy power x device count x the facility's PUE, W.
    pub power_busy_w: f64,
    /// The server's name.
    pub name: StrRef,
    /// Since 1.1: [`HW_CPU`], [`HW_GPU`] or [`HW_NPU`], the kind of the server's devices.
    /// Default (from a 1.0 host): [`HW_UNKNOWN`].
    pub hardware_kind: u32,
    /// Since 1.1: reserved, 0.
    pub reserved_1_1: u32,
}

/// One request waiting for a decision.
///
/// An element of [`SlotView::requests`], whose stride is [`SlotView::request_size`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RequestView {
    /// `size_of::<RequestView>()` of the host that built it.
    pub struct_size: u32,
    /// Model index.
    pub model: u16,
    /// SLO class index.
    pub slo: u16,
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Output tokens.
    pub output_tokens: u32,
    /// How many times the request was deferred already.
    pub defers: u32,
    /// Reserved, 0.
    pub reserved: u32,
    /// Unique request id.
    pub id: u64,
    /// Arrival time, ns.
    pub arrival_ns: u64,
    /// The SLO's processing-time requirement, counted from arrival, ns: the request meets its
    /// deadline if its last output byte arrives by `arrival_ns + deadline_ns`.
    pub deadline_ns: u64,
    /// Bytes to upload.
    pub input_bytes: u64,
    /// Bytes to download.
    pub output_bytes: u64,
}

/// A cost estimate of one request on one server (or of a completed request's real phases).
///
/// The phases are durations. An estimate made at a decision point starts **now**
/// ([`SlotView::now_ns`]): the request would finish at `now_ns + total_ns()`, and it meets its
/// deadline if `now_ns + total_ns() <= arrival_ns + deadline_ns`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EstimateView {
    /// `size_of::<EstimateView>()` of the side that built it.
    pub struct_size: u32,
    /// 1 if this entry holds an estimate, 0 if the server does not host the request's model.
    pub valid: u32,
    /// Upload time, ns.
    pub upload_ns: u64,
    /// Wait before admission, ns.
    pub queue_ns: u64,
    /// Prefill time, ns.
    pub prefill_ns: u64,
    /// Decode time, ns.
    pub decode_ns: u64,
    /// Download time, ns.
    pub download_ns: u64,
    /// Transmission energy, J.
    pub energy_transmission_j: f64,
    /// Inference energy, J.
    pub energy_inference_j: f64,
    /// Idle energy, J.
    pub energy_idle_j: f64,
}

impl EstimateView {
    /// Estimated processing time from now: the sum of the five phases (saturating).
    pub fn total_ns(&self) -> u64 {
        self.upload_ns
            .saturating_add(self.queue_ns)
            .saturating_add(self.prefill_ns)
            .saturating_add(self.decode_ns)
            .saturating_add(self.download_ns)
    }
    /// Weighted energy with the given weights (transmission, inference, idle).
    pub fn weighted_energy(&self, w: &[f64; 3]) -> f64 {
        w[0] * self.energy_transmission_j
            + w[1] * self.energy_inference_j
            + w[2] * self.energy_idle_j
    }
}

/// Everything a policy sees at one decision point. Valid only during the `schedule` call.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SlotView {
    /// `size_of::<SlotView>()` of the host that built it.
    pub struct_size: u32,
    /// Reserved, 0.
    pub reserved: u32,
    /// Index of this decision slot.
    pub slot: u64,
    /// Current simulated time, ns.
    pub now_ns: u64,
    /// Every server, indexed by id; element `i` is at byte `i * server_size`.
    pub servers: Slice<ServerView>,
    /// The pending requests; element `i` is at byte `i * request_size`.
    pub requests: Slice<RequestView>,
    /// `requests.len x servers.len` estimates, row-major (request `r`, server `s` at element
    /// `r * servers.len + s`, byte `(r * servers.len + s) * estimate_size`), or empty if the
    /// policy did not set [`FLAG_WANTS_ESTIMATES`].
    pub estimates: Slice<EstimateView>,
    /// The objective's energy weights: transmission, inference, idle.
    pub energy_weights: [f64; 3],
    /// Stride of `servers` in bytes: the host's `size_of::<ServerView>()`.
    pub server_size: u32,
    /// Stride of `requests` in bytes.
    pub request_size: u32,
    /// Stride of `estimates` in bytes.
    pub estimate_size: u32,
    /// Stride of the `out` placements in bytes: the host's `size_of::<Placement>()`.
    pub placement_size: u32,
    /// Since 1.3: the pending requests in the host's own layout, in the order of `requests`
    /// (element `i` is request `i`, at byte `i * pending_size`). A 1.3 host always fills it;
    /// when it calls [`PolicyVTable::decide`], `requests` is empty and this is the only list
    /// of the slot's requests. Default (an older host): empty.
    pub pending: Slice<Pending>,
    /// Since 1.3: the deadline of every SLO class, ns, counted from arrival, indexed by
    /// [`PendingRequest::slo`] (what [`RequestView::deadline_ns`] holds per request). Default:
    /// empty.
    pub slo_deadlines: Slice<u64>,
    /// Since 1.3: stride of `pending` in bytes (at least `size_of::<Pending>()` of 1.3, 56).
    /// Default: 0.
    pub pending_size: u32,
    /// Since 1.3: stride of `decide`'s `out` decisions in bytes (at least 8). Default: 0.
    pub decision_size: u32,
}

/// A pending request as the host keeps it (ABI 1.3, the in-place path): the first part of an
/// element of [`SlotView::pending`].
///
/// This is perllm-core's own `Request`, read where it lies: it carries no `struct_size` (the
/// array's stride, [`SlotView::pending_size`], says how large an element is) and it never
/// changes within major 1 (fields the host adds go after [`Pending::defers`]). Its 4 bytes
/// after `slo` are padding, not a field.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PendingRequest {
    /// Unique request id.
    pub id: u64,
    /// Arrival time, ns.
    pub arrival_ns: u64,
    /// Bytes to upload.
    pub input_bytes: u64,
    /// Bytes to download.
    pub output_bytes: u64,
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Output tokens.
    pub output_tokens: u32,
    /// Model index.
    pub model: u16,
    /// SLO class index: its deadline is `SlotView.slo_deadlines[slo]`.
    pub slo: u16,
}

/// One element of [`SlotView::pending`] (ABI 1.3): a request waiting for a decision, in
/// perllm-core's own layout (its `Pending`). No `struct_size`: the stride is
/// [`SlotView::pending_size`]; fields are only ever appended after `defers`, with defaults, as
/// for every other struct. Its last 4 bytes are padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pending {
    /// The request.
    pub request: PendingRequest,
    /// How many times the request was deferred already.
    pub defers: u32,
}

/// The decision about one pending request, written by [`PolicyVTable::decide`] in place into
/// the host's own decision array (ABI 1.3): entry `i` of `out` decides element `i` of
/// [`SlotView::pending`]. Pre-filled with `{ACTION_DEFER, NO_SERVER}`. No `struct_size`: the
/// stride is [`SlotView::decision_size`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// [`ACTION_DEFER`] (pre-filled), [`ACTION_ASSIGN`] or [`ACTION_REJECT`].
    pub action: u32,
    /// The server for [`ACTION_ASSIGN`] (read only then), else [`NO_SERVER`] (pre-filled).
    pub server: u32,
}

impl Decision {
    /// Keep the request pending (the pre-filled value).
    pub const DEFER: Decision = Decision {
        action: ACTION_DEFER,
        server: NO_SERVER,
    };
    /// Refuse the request.
    pub const REJECT: Decision = Decision {
        action: ACTION_REJECT,
        server: NO_SERVER,
    };
    /// Send the request to `server`.
    pub const fn assign(server: u32) -> Decision {
        Decision {
            action: ACTION_ASSIGN,
            server,
        }
    }
}

impl Default for Decision {
    fn default() -> Self {
        Decision::DEFER
    }
}

/// The decision about one request, written by the policy into the host's buffer: entry `i` of
/// `out` decides request `i` of [`SlotView::requests`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// `size_of::<Placement>()` of the host (pre-filled; the policy leaves it alone).
    pub struct_size: u32,
    /// [`ACTION_DEFER`] (pre-filled), [`ACTION_ASSIGN`] or [`ACTION_REJECT`].
    pub action: u32,
    /// The server for [`ACTION_ASSIGN`], else [`NO_SERVER`] (pre-filled).
    pub server: u32,
    /// Reserved, 0.
    pub reserved: u32,
}

/// Feedback after a request completed: what really happened.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct OutcomeView {
    /// `size_of::<OutcomeView>()` of the host that built it.
    pub struct_size: u32,
    /// Where it ran.
    pub server: u32,
    /// 1 if the request met its deadline, else 0.
    pub met: u32,
    /// Reserved, 0.
    pub reserved: u32,
    /// Time of the placement decision, ns.
    pub decided_ns: u64,
    /// Time to first token, counted from arrival, ns.
    pub ttft_ns: u64,
    /// Processing time from arrival to the last token delivered, ns.
    pub total_ns: u64,
    /// The request (its `defers` is 0).
    pub request: *const RequestView,
    /// Realised phases and energy (`valid` is 1).
    pub phases: *const EstimateView,
}

/// A hardware kind, as a cost model sees it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HardwareView {
    /// `size_of::<HardwareView>()` of the host that built it.
    pub struct_size: u32,
    /// [`HW_CPU`], [`HW_GPU`] or [`HW_NPU`].
    pub kind: u32,
    /// Peak compute of one device, FLOP/s.
    pub compute_flops: f64,
    /// Device memory, bytes.
    pub memory_bytes: u64,
    /// Memory bandwidth of one device, bytes/s.
    pub memory_bandwidth_bytes_per_s: f64,
    /// Idle power of one device, W.
    pub power_idle_w: f64,
    /// Busy power of one device, W.
    pub power_busy_w: f64,
    /// Fraction of peak compute reached by prefill (resolved: explicit or the kind's default).
    pub compute_efficiency: f64,
    /// Fraction of peak memory bandwidth reached by decode (resolved).
    pub bandwidth_efficiency: f64,
    /// The hardware's name in the scenario.
    pub name: StrRef,
}

/// A model, as a cost model sees it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ModelView {
    /// `size_of::<ModelView>()` of the host that built it.
    pub struct_size: u32,
    /// Reserved, 0.
    pub reserved: u32,
    /// Parameter count.
    pub params: f64,
    /// Bytes per parameter of its precision.
    pub bytes_per_param: f64,
    /// Bytes of weights.
    pub weight_bytes: f64,
    /// KV-cache bytes per token.
    pub kv_bytes_per_token: u64,
    /// The model's name in the scenario.
    pub name: StrRef,
}

/// The shape of one engine step.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepShapeView {
    /// `size_of::<StepShapeView>()` of the host that built it.
    pub struct_size: u32,
    /// Sequences newly prefilled.
    pub prefill_seqs: u32,
    /// Sequences producing one decode token.
    pub decode_seqs: u32,
    /// Reserved, 0.
    pub reserved: u32,
    /// Prompt tokens prefilled in the step.
    pub prefill_tokens: u64,
    /// Tokens in the KV cache of the decoding sequences.
    pub kv_tokens: u64,
}

/// Everything a cost model's `estimate` sees. Valid only during the call.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EstimateInput {
    /// `size_of::<EstimateInput>()` of the host that built it.
    pub struct_size: u32,
    /// Number of identical devices of the server.
    pub device_count: u32,
    /// Transfers in flight on the server's link (the request's bandwidth share is
    /// `bandwidth / (active_uploads + 1)`).
    pub active_uploads: u32,
    /// Requests queued (waiting or uploading) at the server, as the load hint counts them.
    pub queued: u32,
    /// Requests running at the server.
    pub running: u32,
    /// Reserved, 0.
    pub reserved: u32,
    /// Link bandwidth the estimate assumes, bits/s.
    pub bandwidth_bps: f64,
    /// Link transmission energy, J/bit.
    pub energy_j_per_bit: f64,
    /// The server's hardware.
    pub hardware: *const HardwareView,
    /// The request's model.
    pub model: *const ModelView,
    /// The server (its load fields are the current state).
    pub server: *const ServerView,
    /// The request.
    pub request: *const RequestView,
}

/// Create a policy instance from its config (a JSON object, UTF-8) and a seed. Returns the
/// instance, or null after reporting an error.
pub type PolicyCreateFn =
    extern "C" fn(config: StrRef, seed: u64, err: *const ErrorSink) -> *mut c_void;
/// Destroy an instance (of either kind). Called once; never after a panic.
pub type DestroyFn = extern "C" fn(instance: *mut c_void);
/// Decide one slot: write exactly `out_len` (= number of requests) placements into `out`, which
/// the host pre-fills with one [`ACTION_DEFER`] per request in order.
pub type ScheduleFn = extern "C" fn(
    instance: *mut c_void,
    slot: *const SlotView,
    out: *mut Placement,
    out_len: usize,
    err: *const ErrorSink,
) -> u32;
/// Since 1.3, the in-place path: decide one slot from [`SlotView::pending`] (stride
/// [`SlotView::pending_size`]; [`SlotView::requests`] is empty) into `out`, the host's own
/// `out_len` decisions (stride [`SlotView::decision_size`]), pre-filled with
/// [`Decision::DEFER`]. Entry `i` decides pending request `i`.
pub type DecideFn = extern "C" fn(
    instance: *mut c_void,
    slot: *const SlotView,
    out: *mut Decision,
    out_len: usize,
    err: *const ErrorSink,
) -> u32;
/// Feedback after a request completed.
pub type ObserveFn =
    extern "C" fn(instance: *mut c_void, outcome: *const OutcomeView, err: *const ErrorSink) -> u32;
/// Report named statistics at the end of a run.
pub type StatsFn = extern "C" fn(instance: *mut c_void, sink: *const StatSink) -> u32;

/// Create a cost-model instance from its config (a JSON object, UTF-8). Null after an error.
pub type CostModelCreateFn = extern "C" fn(config: StrRef, err: *const ErrorSink) -> *mut c_void;
/// Time of one engine step, written to `out_ns` (must be positive for a non-empty shape).
pub type StepNsFn = extern "C" fn(
    instance: *mut c_void,
    hardware: *const HardwareView,
    device_count: u32,
    model: *const ModelView,
    shape: *const StepShapeView,
    out_ns: *mut u64,
    err: *const ErrorSink,
) -> u32;
/// Estimate one request on one server, written to `out` (set `valid` to 1).
pub type EstimateFn = extern "C" fn(
    instance: *mut c_void,
    input: *const EstimateInput,
    out: *mut EstimateView,
    err: *const ErrorSink,
) -> u32;

/// The entry points of a policy. `create`, `destroy` and `schedule` are required.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PolicyVTable {
    /// `size_of::<PolicyVTable>()` of the guest: entries beyond it do not exist.
    pub struct_size: u32,
    /// Reserved, 0.
    pub reserved: u32,
    /// Create an instance.
    pub create: Option<PolicyCreateFn>,
    /// Destroy an instance.
    pub destroy: Option<DestroyFn>,
    /// Decide a slot.
    pub schedule: Option<ScheduleFn>,
    /// Feedback (optional).
    pub observe: Option<ObserveFn>,
    /// Statistics (optional).
    pub stats: Option<StatsFn>,
    /// Since 1.3: decide a slot in place (optional). A 1.3 host calls it instead of
    /// `schedule`, which stays required for older hosts. Default (an older plugin): null.
    pub decide: Option<DecideFn>,
}

/// The entry points of a cost model. `create`, `destroy` and `step_ns` are required; without
/// `estimate` the host derives estimates from `step_ns` like the core's default.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CostModelVTable {
    /// `size_of::<CostModelVTable>()` of the guest.
    pub struct_size: u32,
    /// Reserved, 0.
    pub reserved: u32,
    /// Create an instance.
    pub create: Option<CostModelCreateFn>,
    /// Destroy an instance.
    pub destroy: Option<DestroyFn>,
    /// Price one engine step.
    pub step_ns: Option<StepNsFn>,
    /// Estimate a request (optional).
    pub estimate: Option<EstimateFn>,
}

/// One plugin a library provides.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PluginDecl {
    /// `size_of::<PluginDecl>()` of the guest.
    pub struct_size: u32,
    /// [`KIND_POLICY`] or [`KIND_COST_MODEL`].
    pub kind: u32,
    /// Name (unique per kind across all loaded libraries): ASCII letters, digits, `-`, `_`, `.`.
    pub name: StrRef,
    /// The plugin's own version (free text, e.g. semver).
    pub version: StrRef,
    /// One-line description.
    pub description: StrRef,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// Reserved, 0.
    pub reserved: u32,
    /// The vtable if `kind` is [`KIND_POLICY`], else null.
    pub policy: *const PolicyVTable,
    /// The vtable if `kind` is [`KIND_COST_MODEL`], else null.
    pub cost_model: *const CostModelVTable,
    /// Since 1.2: the parameters the plugin accepts, for `perllm plugins info`: one per line,
    /// `name (default): meaning`. Default (a 1.0 or 1.1 plugin): empty, "not declared".
    pub params: StrRef,
}

/// What [`DECLARE_SYMBOL`] returns: a static list valid for the life of the process.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PluginList {
    /// `size_of::<PluginList>()` of the guest.
    pub struct_size: u32,
    /// Reserved, 0.
    pub reserved: u32,
    /// The plugins.
    pub plugins: Slice<PluginDecl>,
}

// SAFETY: these types hold raw pointers only to immutable data with static lifetime (the
// declaration a library returns lives as long as the library, which is never unloaded), so
// sharing them between threads is sound.
unsafe impl Sync for PluginList {}
// SAFETY: as above.
unsafe impl Sync for PluginDecl {}
// SAFETY: as above; vtables hold only function pointers.
unsafe impl Sync for PolicyVTable {}
// SAFETY: as above.
unsafe impl Sync for CostModelVTable {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_parts() {
        assert_eq!(abi_major(ABI_VERSION), ABI_VERSION_MAJOR);
        assert_eq!(abi_minor(ABI_VERSION), ABI_VERSION_MINOR);
        assert_eq!(abi_major(0x0003_0007), 3);
        assert_eq!(abi_minor(0x0003_0007), 7);
    }

    #[test]
    fn str_ref_round_trip() {
        let s = StrRef::new("héllo");
        // SAFETY: `s` borrows a static string.
        assert_eq!(unsafe { s.to_str() }.unwrap(), "héllo");
        // SAFETY: the empty StrRef has len 0.
        assert_eq!(unsafe { StrRef::EMPTY.to_str() }.unwrap(), "");
    }
}
