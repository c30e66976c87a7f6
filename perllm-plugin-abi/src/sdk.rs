//! The safe guest SDK: traits a plugin author implements, and the shims the export macros
//! generate around them.

// The `extern "C"` shims below are the entry points the host calls through the vtables: their
// raw-pointer arguments are governed by the ABI contract (docs/plugin-abi.md), not by Rust
// signatures, so they are safe functions by design.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use crate::guard::{check_null, run_status};
use crate::inplace::{self, instance_and_slot};
use crate::*;
use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// A scheduling policy implemented in a plugin library.
///
/// Export it with [`export_policy!`](crate::export_policy) or
/// [`export_plugins!`](crate::export_plugins). The host creates one instance per run and calls
/// it from one thread at a time (it may move between threads between calls).
pub trait GuestPolicy: Send + Sized + 'static {
    /// Name users select it by (`--policy NAME`): ASCII letters, digits, `-`, `_`, `.`.
    const NAME: &'static str;
    /// The policy's version.
    const VERSION: &'static str;
    /// One-line description.
    const DESCRIPTION: &'static str;
    /// Set to true to receive [`Slot::estimate`] values (the host then computes them).
    const WANTS_ESTIMATES: bool = false;
    /// The parameters it accepts, one per line, `name (default): meaning`, shown by
    /// `perllm plugins info` (empty: not declared).
    const PARAMS: &'static str = "";

    /// Set to true if the policy implements [`GuestPolicy::decide`] (the in-place path of ABI
    /// 1.3) instead of [`GuestPolicy::schedule`]; [`guest_policy!`](crate::guest_policy) sets
    /// it when given `decide`. The SDK then exports both entry points: a 1.3 host calls
    /// `decide` with its own arrays, an older host `schedule`, which the SDK adapts.
    const IN_PLACE: bool = false;

    /// Create an instance from the scenario's policy parameters (a JSON object) and a seed.
    fn create(config: &str, seed: u64) -> Result<Self, String>;

    /// Decide one slot. `out` holds one placement per request of `slot.requests()`, in order,
    /// pre-filled with [`ACTION_DEFER`]; set `action` (and `server`) of each. Implement this or
    /// [`GuestPolicy::decide`].
    fn schedule(&mut self, _slot: &Slot<'_>, _out: &mut [Placement]) -> Result<(), String> {
        Err(format!(
            "policy `{}` implements neither `schedule` nor `decide` (with `IN_PLACE = true`)",
            Self::NAME
        ))
    }

    /// Decide one slot in place (set [`GuestPolicy::IN_PLACE`]): `out` holds one decision per
    /// request of [`Slot::pending`], in order, pre-filled with [`Decision::DEFER`]; write
    /// [`Decision::assign`] or [`Decision::REJECT`] where the policy decides. [`Slot::requests`]
    /// is empty here: read [`Slot::pending`] and [`Slot::deadline_ns`]. With a 1.3 host both
    /// are the host's own memory (no copy on either side).
    fn decide(&mut self, _slot: &Slot<'_>, _out: &mut [Decision]) -> Result<(), String> {
        Err(format!(
            "policy `{}` sets IN_PLACE but does not implement `decide`",
            Self::NAME
        ))
    }

    /// Feedback after a request completed.
    fn observe(&mut self, _outcome: &Outcome) -> Result<(), String> {
        Ok(())
    }

    /// Named statistics for the report, appended to `out`.
    fn stats(&self, _out: &mut Vec<(String, f64)>) {}
}

/// What a cost model's [`GuestCostModel::step_ns`] prices.
#[derive(Clone, Copy, Debug)]
pub struct StepQuery<'a> {
    /// The hardware of one device.
    pub hardware: &'a HardwareView,
    /// Its name in the scenario.
    pub hardware_name: &'a str,
    /// Number of identical devices of the server.
    pub device_count: u32,
    /// The model.
    pub model: &'a ModelView,
    /// Its name in the scenario.
    pub model_name: &'a str,
    /// The step.
    pub shape: StepShapeView,
}

/// What a cost model's [`GuestCostModel::estimate`] sees.
#[derive(Clone, Copy, Debug)]
pub struct EstimateQuery<'a> {
    /// The raw input (its scalar fields; the views it points to are below).
    pub input: &'a EstimateInput,
    /// The server's hardware.
    pub hardware: &'a HardwareView,
    /// The request's model.
    pub model: &'a ModelView,
    /// The server, with its current load.
    pub server: &'a ServerView,
    /// The request.
    pub request: &'a RequestView,
    /// The hardware's name.
    pub hardware_name: &'a str,
    /// The model's name.
    pub model_name: &'a str,
    /// The server's name.
    pub server_name: &'a str,
}

/// A cost model implemented in a plugin library. Instances are shared between threads.
pub trait GuestCostModel: Send + Sync + Sized + 'static {
    /// Name users select it by.
    const NAME: &'static str;
    /// The cost model's version.
    const VERSION: &'static str;
    /// One-line description.
    const DESCRIPTION: &'static str;
    /// Set to true if [`GuestCostModel::estimate`] is implemented; otherwise the host derives
    /// estimates from [`GuestCostModel::step_ns`].
    const PROVIDES_ESTIMATE: bool = false;
    /// The config keys it accepts, one per line, `name (default): meaning` (empty: not
    /// declared).
    const PARAMS: &'static str = "";

    /// Create an instance from its config (a JSON object).
    fn create(config: &str) -> Result<Self, String>;

    /// Time of one engine step, ns (positive for a non-empty shape).
    fn step_ns(&self, q: &StepQuery<'_>) -> Result<u64, String>;

    /// Estimate a request on a server (only called if [`GuestCostModel::PROVIDES_ESTIMATE`]).
    fn estimate(&self, _q: &EstimateQuery<'_>) -> Result<EstimateView, String> {
        Err(format!(
            "cost model `{}` does not provide estimates",
            Self::NAME
        ))
    }
}

/// A safe view of a [`SlotView`] for the duration of a `schedule` or `decide` call. (Not
/// `Clone`: its slices may point into copies it owns.)
pub struct Slot<'a> {
    /// The host's view, or the copy in `_owned` completed with defaults (an older host).
    pub(crate) raw: &'a SlotView,
    // The arrays as plain slices (no `Cow` branch on every access in a policy's inner loop): they
    // borrow the host's memory, or the copies in `_owned` when the host's strides differ from
    // this SDK's sizes (a heap buffer does not move with the `Slot`).
    pub(crate) servers: &'a [ServerView],
    pub(crate) requests: &'a [RequestView],
    pub(crate) estimates: &'a [EstimateView],
    /// Since 1.3 (see [`Slot::pending`]).
    pub(crate) pending: &'a [Pending],
    pub(crate) deadlines: &'a [u64],
    pub(crate) _owned: Option<Box<OwnedViews>>,
}

/// Copies of the host's arrays made for another minor version (never read directly: the
/// `Slot`'s slices point into them).
#[allow(dead_code)]
#[derive(Default)]
pub(crate) struct OwnedViews {
    /// The copy of an older host's slot view (one element: a `Vec`'s buffer, like the arrays,
    /// so that moving the box never moves or re-borrows what the `Slot` points to).
    pub(crate) raw: Vec<SlotView>,
    pub(crate) servers: Vec<ServerView>,
    pub(crate) requests: Vec<RequestView>,
    pub(crate) estimates: Vec<EstimateView>,
    pub(crate) pending: Vec<Pending>,
    pub(crate) deadlines: Vec<u64>,
}

/// A slice into `cow` that outlives the borrow of `cow`: `'a` if borrowed, else the life of the
/// owned buffer (moved into the `Slot`'s `OwnedViews`, whose heap buffer never moves).
///
/// # Safety
/// If `cow` is owned, the caller must keep its buffer alive and unmodified as long as the
/// returned slice is used, and expose it only through borrows of the holder.
unsafe fn detach<'a, T: Clone>(cow: &Cow<'a, [T]>) -> &'a [T] {
    match cow {
        Cow::Borrowed(s) => s,
        // SAFETY: the caller keeps the owned buffer alive and unmoved (see above).
        Cow::Owned(v) => unsafe { std::slice::from_raw_parts(v.as_ptr(), v.len()) },
    }
}

impl<'a> Slot<'a> {
    /// Wrap a raw view built by a host of any 1.x version: views of this SDK's sizes are
    /// borrowed, others are copied (fields an older host lacks take their documented defaults).
    ///
    /// # Safety
    /// `raw` must point to a slot view, and every pointer in it (and in its servers' `models`
    /// and `name`) must be valid for `'a`, as the ABI's rules require of the host.
    #[inline]
    pub unsafe fn from_raw(raw: *const SlotView) -> Result<Slot<'a>, String> {
        // The common case, a host of this SDK's minor version: everything is borrowed as is.
        // SAFETY: the caller guarantees a valid view for 'a, which begins with its size.
        match unsafe { Self::borrow_same_layout(raw) } {
            Some(slot) => Ok(slot),
            // SAFETY: forwarded to the caller.
            None => unsafe { Self::from_raw_other(raw) },
        }
    }

    /// [`Slot::from_raw`] for a host of another minor version: copies what is not of this
    /// SDK's size.
    ///
    /// # Safety
    /// As for [`Slot::from_raw`].
    #[cold]
    #[inline(never)]
    unsafe fn from_raw_other(raw: *const SlotView) -> Result<Slot<'a>, String> {
        // SAFETY: the caller guarantees a valid view for 'a.
        let raw: Cow<'a, SlotView> = unsafe { view(raw) }?;
        // SAFETY: the host's arrays with the strides it declares, valid for 'a.
        let (servers, requests, estimates) = unsafe {
            (
                view_slice(raw.servers.ptr, raw.servers.len, raw.server_size as usize)?,
                view_slice(
                    raw.requests.ptr,
                    raw.requests.len,
                    raw.request_size as usize,
                )?,
                view_slice(
                    raw.estimates.ptr,
                    raw.estimates.len,
                    raw.estimate_size as usize,
                )?,
            )
        };
        // SAFETY: the host's in-place arrays (1.3; empty from an older host), valid for 'a.
        let (pending, deadlines) = unsafe { inplace::pending_of(&raw, &requests) }?;
        // SAFETY: owned copies move into `owned` below (their heap buffers do not move) and live
        // as long as the `Slot`; the accessors hand out borrows of `&self` only.
        let (s, r, e, p, d) = unsafe {
            (
                detach(&servers),
                detach(&requests),
                detach(&estimates),
                detach(&pending),
                detach(&deadlines),
            )
        };
        let mut owned = match (servers, requests, estimates, pending, deadlines) {
            (
                Cow::Borrowed(_),
                Cow::Borrowed(_),
                Cow::Borrowed(_),
                Cow::Borrowed(_),
                Cow::Borrowed(_),
            ) => None,
            (servers, requests, estimates, pending, deadlines) => Some(Box::new(OwnedViews {
                raw: Vec::new(),
                servers: servers.into_owned(),
                requests: requests.into_owned(),
                estimates: estimates.into_owned(),
                pending: pending.into_owned(),
                deadlines: deadlines.into_owned(),
            })),
        };
        let raw: &'a SlotView = match raw {
            Cow::Borrowed(r) => r,
            Cow::Owned(r) => {
                let o = owned.get_or_insert_with(Box::default);
                o.raw = vec![r];
                // SAFETY: the copy lives in the heap buffer of `raw`, which is never modified
                // again and lives as long as the `Slot`, which hands out borrows of `&self` only.
                unsafe { &*o.raw.as_ptr() }
            }
        };
        Ok(Slot {
            raw,
            servers: s,
            requests: r,
            estimates: e,
            pending: p,
            deadlines: d,
            _owned: owned,
        })
    }
    /// The slot as is if the host's slot view and array strides are this SDK's sizes (no copy,
    /// no check beyond the sizes), else `None`.
    ///
    /// # Safety
    /// As for [`Slot::from_raw`].
    #[inline]
    unsafe fn borrow_same_layout(raw: *const SlotView) -> Option<Slot<'a>> {
        // SAFETY: a valid view begins with its `struct_size`.
        let size = unsafe { raw.cast::<u32>().read() } as usize;
        if size < size_of::<SlotView>() {
            return None;
        }
        // SAFETY: the view holds at least this SDK's fields, valid for 'a.
        let r: &'a SlotView = unsafe { &*raw };
        if r.server_size as usize != size_of::<ServerView>()
            || r.request_size as usize != size_of::<RequestView>()
            || r.estimate_size as usize != size_of::<EstimateView>()
            || r.pending_size as usize != size_of::<Pending>()
        {
            return None;
        }
        // SAFETY: arrays of this SDK's element sizes, valid for 'a (the caller's contract).
        let (servers, requests, estimates, pending, deadlines) = unsafe {
            (
                r.servers.as_slice(),
                r.requests.as_slice(),
                r.estimates.as_slice(),
                r.pending.as_slice(),
                r.slo_deadlines.as_slice(),
            )
        };
        Some(Slot {
            raw: r,
            servers,
            requests,
            estimates,
            pending,
            deadlines,
            _owned: None,
        })
    }
    /// The raw view (its `servers`, `requests` and `estimates` may have another stride than
    /// this SDK's: use the accessors).
    #[inline]
    pub fn raw(&self) -> &SlotView {
        self.raw
    }
    /// Index of this slot.
    #[inline]
    pub fn slot(&self) -> u64 {
        self.raw.slot
    }
    /// Current simulated time, ns. Estimates count from it.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.raw.now_ns
    }
    /// Every server, indexed by id.
    #[inline]
    pub fn servers(&self) -> &[ServerView] {
        self.servers
    }
    /// The pending requests.
    #[inline]
    pub fn requests(&self) -> &[RequestView] {
        self.requests
    }
    /// The objective's energy weights: transmission, inference, idle.
    #[inline]
    pub fn energy_weights(&self) -> [f64; 3] {
        self.raw.energy_weights
    }
    /// Models hosted by server `s` (empty if `s` is out of range).
    #[inline]
    pub fn models(&self, s: usize) -> &'a [u16] {
        match self.servers.get(s) {
            // SAFETY: the host guarantees the server's `models` slice is valid for 'a
            // (`from_raw`'s contract).
            Some(v) => unsafe { v.models.as_slice() },
            None => &[],
        }
    }
    /// Does server `s` host `model`?
    #[inline]
    pub fn hosts(&self, s: usize, model: u16) -> bool {
        self.models(s).binary_search(&model).is_ok()
    }
    /// Name of server `s` (empty if out of range or not UTF-8).
    #[inline]
    pub fn server_name(&self, s: usize) -> &'a str {
        match self.servers.get(s) {
            // SAFETY: as for `models`.
            Some(v) => unsafe { v.name.to_str() }.unwrap_or(""),
            None => "",
        }
    }
    /// Servers that host the request's model.
    #[inline]
    pub fn candidates(&self, req: &RequestView) -> impl Iterator<Item = &ServerView> {
        self.hosting(req.model)
    }
    /// Servers that host `model`.
    #[inline]
    pub fn hosting(&self, model: u16) -> impl Iterator<Item = &ServerView> {
        self.servers
            .iter()
            .enumerate()
            .filter(move |(i, _)| self.hosts(*i, model))
            .map(|(_, s)| s)
    }
    /// The host's estimates of request `r` (index into [`Slot::requests`]) on every server,
    /// indexed by server id; entries whose `valid` is not 1 are servers that do not host the
    /// model. Empty if the policy did not ask for estimates or `r` is out of range.
    #[inline]
    pub fn estimates_of(&self, r: usize) -> &[EstimateView] {
        let n = self.servers.len();
        r.checked_mul(n)
            .and_then(|start| self.estimates.get(start..start.checked_add(n)?))
            .unwrap_or(&[])
    }
    /// The host's estimate of request `r` (index into [`Slot::requests`]) on server `s`, if the
    /// policy asked for estimates and the server hosts the model. Its times count from
    /// [`Slot::now_ns`].
    #[inline]
    pub fn estimate(&self, r: usize, s: usize) -> Option<&EstimateView> {
        let n = self.servers.len();
        if s >= n {
            return None;
        }
        self.estimates
            .get(r.checked_mul(n)?.checked_add(s)?)
            .filter(|e| e.valid == 1)
    }
}

/// A completed request, as [`GuestPolicy::observe`] sees it (copied out of the host's
/// [`OutcomeView`] and the views it points to).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    /// The request (its `defers` is 0).
    pub request: RequestView,
    /// Where it ran.
    pub server: u32,
    /// 1 if the request met its deadline, else 0.
    pub met: u32,
    /// Time of the placement decision, ns.
    pub decided_ns: u64,
    /// Time to first token, counted from arrival, ns.
    pub ttft_ns: u64,
    /// Processing time from arrival to the last token delivered, ns.
    pub total_ns: u64,
    /// Realised phases and energy (`valid` is 1).
    pub phases: EstimateView,
}

impl Outcome {
    /// Copy a host's outcome view.
    ///
    /// # Safety
    /// `raw` must point to an outcome view whose pointers are valid for the call.
    pub unsafe fn from_raw(raw: *const OutcomeView) -> Result<Outcome, String> {
        // SAFETY: forwarded to the caller.
        let o = unsafe { view(raw) }?;
        check_null(o.request, "outcome.request")?;
        check_null(o.phases, "outcome.phases")?;
        // SAFETY: non-null views valid for the call.
        let (request, phases) = unsafe { (view(o.request)?, view(o.phases)?) };
        Ok(Outcome {
            request: *request,
            server: o.server,
            met: o.met,
            decided_ns: o.decided_ns,
            ttft_ns: o.ttft_ns,
            total_ns: o.total_ns,
            phases: *phases,
        })
    }
}

/// What the create shims share: `create` called with the host's config string, panics caught;
/// the boxed instance, or null with the error reported to `err`.
fn create_instance<T>(
    config: StrRef,
    err: *const ErrorSink,
    create: impl FnOnce(&str) -> Result<T, String>,
) -> *mut c_void {
    let r = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the host passes a config string valid for the call.
        let cfg = unsafe { config.to_str() }.map_err(|e| format!("config is not UTF-8: {e}"))?;
        create(cfg)
    }));
    match r {
        Ok(Ok(p)) => Box::into_raw(Box::new(p)).cast(),
        Ok(Err(m)) => {
            report_error(err, &m);
            std::ptr::null_mut()
        }
        Err(p) => {
            report_error(err, &format!("panicked: {}", panic_message(&*p)));
            std::ptr::null_mut()
        }
    }
}

/// Shim: [`PolicyCreateFn`] for `T`.
pub extern "C" fn policy_create<T: GuestPolicy>(
    config: StrRef,
    seed: u64,
    err: *const ErrorSink,
) -> *mut c_void {
    create_instance(config, err, |cfg| T::create(cfg, seed))
}

/// Shim: [`DestroyFn`] for `T` (a policy or a cost model).
pub extern "C" fn destroy<T: 'static>(instance: *mut c_void) {
    if instance.is_null() {
        return;
    }
    // A panicking destructor is swallowed: there is no one to report it to.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `instance` came from `Box::into_raw` in the matching create shim, and the host
        // destroys it once.
        drop(unsafe { Box::from_raw(instance.cast::<T>()) });
    }));
}

/// Shim: [`ScheduleFn`] for `T`.
pub extern "C" fn policy_schedule<T: GuestPolicy>(
    instance: *mut c_void,
    slot: *const SlotView,
    out: *mut Placement,
    out_len: usize,
    err: *const ErrorSink,
) -> u32 {
    run_status(err, || {
        let (me, slot) = instance_and_slot::<T>(instance, slot)?;
        if T::IN_PLACE {
            // SAFETY: the host passes `out_len` placements of its stride, valid for the call.
            return unsafe { inplace::decide_into_placements(me, &slot, out, out_len) };
        }
        if out_len == 0 {
            return me.schedule(&slot, &mut []);
        }
        check_null(out, "out")?;
        let stride = slot.raw().placement_size as usize;
        if stride == size_of::<Placement>() {
            // SAFETY: the host passes a buffer of `out_len` placements of this SDK's size that
            // it owns for the call.
            let out = unsafe { std::slice::from_raw_parts_mut(out, out_len) };
            return me.schedule(&slot, out);
        }
        if !size_is_valid::<Placement>(stride) {
            return Err(format!("the host's placements have stride {stride}"));
        }
        // A host of another minor version: decide into placements of this SDK's size, then
        // write back the fields both know.
        let at = |i: usize| {
            out.cast::<u8>()
                .wrapping_add(i * stride)
                .cast::<Placement>()
        };
        let mut local: Vec<Placement> = (0..out_len)
            // SAFETY: element `i` of the host's buffer, `stride` readable bytes.
            .map(|i| unsafe { read_versioned(at(i), stride) })
            .collect();
        me.schedule(&slot, &mut local)?;
        for (i, p) in local.iter().enumerate() {
            // SAFETY: element `i` of the host's buffer, `stride` writable bytes.
            unsafe { write_versioned(at(i), stride, p) };
        }
        Ok(())
    })
}

/// Shim: [`ObserveFn`] for `T`.
pub extern "C" fn policy_observe<T: GuestPolicy>(
    instance: *mut c_void,
    outcome: *const OutcomeView,
    err: *const ErrorSink,
) -> u32 {
    run_status(err, || {
        check_null(instance, "instance")?;
        check_null(outcome, "outcome")?;
        // SAFETY: as in `policy_schedule`.
        let me = unsafe { &mut *instance.cast::<T>() };
        // SAFETY: the host passes an outcome valid for the call.
        let outcome = unsafe { Outcome::from_raw(outcome) }?;
        me.observe(&outcome)
    })
}

/// Shim: [`StatsFn`] for `T`.
pub extern "C" fn policy_stats<T: GuestPolicy>(
    instance: *mut c_void,
    sink: *const StatSink,
) -> u32 {
    run_status(std::ptr::null(), || {
        check_null(instance, "instance")?;
        check_null(sink, "sink")?;
        // SAFETY: as in `policy_schedule`.
        let me = unsafe { &*instance.cast::<T>() };
        let mut v = Vec::new();
        me.stats(&mut v);
        // SAFETY: the host passes a sink valid for the call; `ctx` and `emit` are 1.0 fields.
        let (ctx, emit) = unsafe { ((*sink).ctx, (*sink).emit) };
        for (name, value) in &v {
            emit(ctx, StrRef::new(name), *value);
        }
        Ok(())
    })
}

/// Shim: [`CostModelCreateFn`] for `T`.
pub extern "C" fn cost_model_create<T: GuestCostModel>(
    config: StrRef,
    err: *const ErrorSink,
) -> *mut c_void {
    create_instance(config, err, T::create)
}

/// Shim: [`StepNsFn`] for `T`.
pub extern "C" fn cost_model_step_ns<T: GuestCostModel>(
    instance: *mut c_void,
    hardware: *const HardwareView,
    device_count: u32,
    model: *const ModelView,
    shape: *const StepShapeView,
    out_ns: *mut u64,
    err: *const ErrorSink,
) -> u32 {
    run_status(err, || {
        check_null(instance, "instance")?;
        check_null(hardware, "hardware")?;
        check_null(model, "model")?;
        check_null(shape, "shape")?;
        check_null(out_ns, "out_ns")?;
        // SAFETY: cost-model instances are Sync; the host passes the pointer create returned.
        let me = unsafe { &*instance.cast::<T>() };
        // SAFETY: the host passes views valid for the call.
        let (hw, m, shape) = unsafe { (view(hardware)?, view(model)?, view(shape)?) };
        let (hw, m, shape) = (&*hw, &*m, *shape);
        let q = StepQuery {
            hardware: hw,
            // SAFETY: names are valid for the call.
            hardware_name: unsafe { hw.name.to_str() }.unwrap_or(""),
            device_count,
            model: m,
            // SAFETY: as above.
            model_name: unsafe { m.name.to_str() }.unwrap_or(""),
            shape,
        };
        let ns = me.step_ns(&q)?;
        // SAFETY: `out_ns` is a host-owned u64 valid for the call.
        unsafe { *out_ns = ns };
        Ok(())
    })
}

/// Shim: [`EstimateFn`] for `T`.
pub extern "C" fn cost_model_estimate<T: GuestCostModel>(
    instance: *mut c_void,
    input: *const EstimateInput,
    out: *mut EstimateView,
    err: *const ErrorSink,
) -> u32 {
    run_status(err, || {
        check_null(instance, "instance")?;
        check_null(input, "input")?;
        check_null(out, "out")?;
        // SAFETY: as in `cost_model_step_ns`.
        let me = unsafe { &*instance.cast::<T>() };
        // SAFETY: the host passes an input valid for the call.
        let input = unsafe { view(input) }?;
        for (p, what) in [
            (input.hardware.cast::<u8>(), "input.hardware"),
            (input.model.cast(), "input.model"),
            (input.server.cast(), "input.server"),
            (input.request.cast(), "input.request"),
        ] {
            check_null(p, what)?;
        }
        // SAFETY: non-null views valid for the call.
        let (hardware, model, server, request) = unsafe {
            (
                view(input.hardware)?,
                view(input.model)?,
                view(input.server)?,
                view(input.request)?,
            )
        };
        let q = EstimateQuery {
            input: &input,
            hardware: &hardware,
            model: &model,
            server: &server,
            request: &request,
            // SAFETY: names are valid for the call.
            hardware_name: unsafe { hardware.name.to_str() }.unwrap_or(""),
            // SAFETY: as above.
            model_name: unsafe { model.name.to_str() }.unwrap_or(""),
            // SAFETY: as above.
            server_name: unsafe { server.name.to_str() }.unwrap_or(""),
        };
        let mut e = me.estimate(&q)?;
        e.valid = 1;
        // SAFETY: `out` is a host-owned estimate valid for the call, of the size it declares.
        let size = unsafe { out.cast::<u32>().read() } as usize;
        if !size_is_valid::<EstimateView>(size) {
            return Err(format!("the host's estimate has struct_size {size}"));
        }
        // SAFETY: as above.
        unsafe { write_versioned(out, size, &e) };
        Ok(())
    })
}

struct PolicyVt<T>(PhantomData<T>);
impl<T: GuestPolicy> PolicyVt<T> {
    const VT: PolicyVTable = PolicyVTable {
        struct_size: size_of::<PolicyVTable>() as u32,
        reserved: 0,
        create: Some(policy_create::<T>),
        destroy: Some(destroy::<T>),
        schedule: Some(policy_schedule::<T>),
        observe: Some(policy_observe::<T>),
        stats: Some(policy_stats::<T>),
        decide: if T::IN_PLACE {
            Some(inplace::policy_decide::<T>)
        } else {
            None
        },
    };
}

struct CostVt<T>(PhantomData<T>);
impl<T: GuestCostModel> CostVt<T> {
    const VT: CostModelVTable = CostModelVTable {
        struct_size: size_of::<CostModelVTable>() as u32,
        reserved: 0,
        create: Some(cost_model_create::<T>),
        destroy: Some(destroy::<T>),
        step_ns: Some(cost_model_step_ns::<T>),
        estimate: if T::PROVIDES_ESTIMATE {
            Some(cost_model_estimate::<T>)
        } else {
            None
        },
    };
}

/// The static vtable of policy `T`.
pub const fn policy_vtable<T: GuestPolicy>() -> &'static PolicyVTable {
    &PolicyVt::<T>::VT
}

/// The static vtable of cost model `T`.
pub const fn cost_model_vtable<T: GuestCostModel>() -> &'static CostModelVTable {
    &CostVt::<T>::VT
}

/// The declaration of policy `T` (used by the export macros).
pub const fn policy_decl<T: GuestPolicy>() -> PluginDecl {
    PluginDecl {
        struct_size: size_of::<PluginDecl>() as u32,
        kind: KIND_POLICY,
        name: StrRef::new(T::NAME),
        version: StrRef::new(T::VERSION),
        description: StrRef::new(T::DESCRIPTION),
        flags: if T::WANTS_ESTIMATES {
            FLAG_WANTS_ESTIMATES
        } else {
            0
        },
        reserved: 0,
        policy: policy_vtable::<T>(),
        cost_model: std::ptr::null(),
        params: StrRef::new(T::PARAMS),
    }
}

/// The declaration of cost model `T` (used by the export macros).
pub const fn cost_model_decl<T: GuestCostModel>() -> PluginDecl {
    PluginDecl {
        struct_size: size_of::<PluginDecl>() as u32,
        kind: KIND_COST_MODEL,
        name: StrRef::new(T::NAME),
        version: StrRef::new(T::VERSION),
        description: StrRef::new(T::DESCRIPTION),
        flags: 0,
        reserved: 0,
        policy: std::ptr::null(),
        cost_model: cost_model_vtable::<T>(),
        params: StrRef::new(T::PARAMS),
    }
}

impl PluginList {
    /// A list over static declarations (used by the export macros).
    pub const fn new(plugins: &'static [PluginDecl]) -> PluginList {
        PluginList {
            struct_size: size_of::<PluginList>() as u32,
            reserved: 0,
            plugins: Slice::new(plugins),
        }
    }
}

/// Export policies and cost models from this library: generates the `perllm_plugin_abi_version`
/// and `perllm_plugin_declare` symbols. Use it once per library.
///
/// ```ignore
/// perllm_plugin_abi::export_plugins! {
///     policies: [MyPolicy, MyOtherPolicy],
///     cost_models: [MyCostModel],
/// }
/// ```
#[macro_export]
macro_rules! export_plugins {
    (policies: [$($p:ty),* $(,)?], cost_models: [$($c:ty),* $(,)?] $(,)?) => {
        /// The perllm plugin ABI version this library was built against.
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub extern "C" fn perllm_plugin_abi_version() -> u32 {
            $crate::ABI_VERSION
        }

        /// The static list of perllm plugins this library provides.
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub extern "C" fn perllm_plugin_declare() -> *const $crate::PluginList {
            static DECLS: &[$crate::PluginDecl] = &[
                $($crate::policy_decl::<$p>(),)*
                $($crate::cost_model_decl::<$c>(),)*
            ];
            static LIST: $crate::PluginList = $crate::PluginList::new(DECLS);
            &LIST
        }
    };
}

/// Export a single policy from this library (see [`export_plugins!`](crate::export_plugins)).
#[macro_export]
macro_rules! export_policy {
    ($p:ty) => {
        $crate::export_plugins! { policies: [$p], cost_models: [] }
    };
}

/// Export a single cost model from this library (see [`export_plugins!`](crate::export_plugins)).
#[macro_export]
macro_rules! export_cost_model {
    ($c:ty) => {
        $crate::export_plugins! { policies: [], cost_models: [$c] }
    };
}

/// Implement [`GuestPolicy`] without its scaffolding: the name, description and flags as
/// fields, the version from the plugin crate's `Cargo.toml`, and the entry points as blocks
/// with the signatures written once (the types of `config`, `seed`, `slot`, `out`, `outcome`
/// and `stats` are the trait's).
///
/// ```
/// use perllm_plugin_abi::{ACTION_ASSIGN, guest_policy};
///
/// /// Every request to the first server hosting its model.
/// struct FirstFit {
///     placed: u64,
/// }
///
/// guest_policy! {
///     impl FirstFit {
///         name: "first-fit",
///         description: "the first server hosting the model",
///         wants_estimates: false, // optional, default false
///         params: "", // optional: one per line, `name (default): meaning`
///         create(config, seed) {
///             if !config.trim().is_empty() && config.trim() != "{}" {
///                 return Err(format!("first-fit takes no parameters, got {config}"));
///             }
///             Ok(FirstFit { placed: 0 })
///         }
///         schedule(self, slot, out) {
///             for (r, p) in slot.requests().iter().zip(out.iter_mut()) {
///                 if let Some(s) = slot.candidates(r).next() {
///                     p.action = ACTION_ASSIGN;
///                     p.server = s.id;
///                     self.placed += 1;
///                 }
///             }
///             Ok(())
///         }
///         observe(self, outcome) { Ok(()) } // optional
///         stats(self, values) { values.push(("first_fit.placed".into(), self.placed as f64)) }
///     }
/// }
///
/// perllm_plugin_abi::export_policy!(FirstFit);
/// # use perllm_plugin_abi::GuestPolicy;
/// # assert_eq!(FirstFit::NAME, "first-fit");
/// # assert!(FirstFit::create("{\"x\": 1}", 0).is_err());
/// ```
///
/// Give `decide(self, slot, out) { … }` instead of `schedule` for ABI 1.3's in-place path
/// (`out: &mut [Decision]`, the requests in [`Slot::pending`]); the macro then sets
/// [`GuestPolicy::IN_PLACE`].
///
/// It expands to `impl GuestPolicy for EdgeFirst { … }` with `VERSION =
/// env!("CARGO_PKG_VERSION")`; export the type with [`export_plugins!`](crate::export_plugins)
/// as usual.
#[macro_export]
macro_rules! guest_policy {
    (
        impl $ty:ty {
            name: $name:expr,
            description: $desc:expr,
            $(wants_estimates: $we:expr,)?
            $(params: $params:expr,)?
            create($config:ident, $seed:ident) $create:block
            $(schedule($s1:ident, $slot:ident, $out:ident) $schedule:block)?
            $(decide($d1:ident, $dslot:ident, $dout:ident) $decide:block)?
            $(observe($s2:ident, $outcome:ident) $observe:block)?
            $(stats($s3:ident, $values:ident) $stats:block)?
        }
    ) => {
        impl $crate::GuestPolicy for $ty {
            const NAME: &'static str = $name;
            const VERSION: &'static str = env!("CARGO_PKG_VERSION");
            const DESCRIPTION: &'static str = $desc;
            $(const WANTS_ESTIMATES: bool = $we;)?
            $(const PARAMS: &'static str = $params;)?

            #[allow(unused_variables)]
            fn create($config: &str, $seed: u64) -> ::std::result::Result<Self, String> $create

            $(fn schedule(
                &mut $s1,
                $slot: &$crate::Slot<'_>,
                $out: &mut [$crate::Placement],
            ) -> ::std::result::Result<(), String> $schedule)?

            $(
            const IN_PLACE: bool = { let _ = stringify!($decide); true };
            fn decide(
                &mut $d1,
                $dslot: &$crate::Slot<'_>,
                $dout: &mut [$crate::Decision],
            ) -> ::std::result::Result<(), String> $decide
            )?

            $(fn observe(&mut $s2, $outcome: &$crate::Outcome) -> ::std::result::Result<(), String> $observe)?

            $(fn stats(&$s3, $values: &mut Vec<(String, f64)>) $stats)?
        }
    };
}
