//! The guest side of the in-place path (ABI 1.3): [`PolicyVTable::decide`] reads the host's
//! own pending requests ([`SlotView::pending`]) and writes its own decisions, so that neither
//! side copies a request or a decision. A policy opts in with [`GuestPolicy::IN_PLACE`] and
//! [`GuestPolicy::decide`]; the SDK then exports `decide` for 1.3 hosts and adapts `schedule`
//! for older ones (building the pending list from their request views and writing the
//! decisions back into their placements).

// As in `sdk`: the `extern "C"` shim's raw pointers are governed by the ABI contract.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use crate::guard::{check_null, run_status};
use crate::*;
use std::borrow::Cow;

/// Smallest stride of [`SlotView::pending`]: `size_of::<Pending>()` in ABI 1.3.
pub const PENDING_MIN_SIZE: usize = 56;
/// Smallest stride of `decide`'s decisions: `size_of::<Decision>()` in ABI 1.3.
pub const DECISION_MIN_SIZE: usize = 8;

impl<'a> Slot<'a> {
    /// The pending requests, in order: entry `i` of `decide`'s `out` decides `pending()[i]`.
    /// From a 1.3 host this is the host's own array (borrowed, no copy); from an older one it
    /// is built from [`Slot::requests`]. (Empty only if the slot has no requests.)
    #[inline]
    pub fn pending(&self) -> &'a [Pending] {
        self.pending
    }
    /// The deadline of `p`'s SLO class, ns, counted from arrival: `p` meets it if its last
    /// byte is delivered by `p.request.arrival_ns + deadline_ns(p)`. (0 if the host gave no
    /// deadline for that class, which a conforming host never does.)
    #[inline]
    pub fn deadline_ns(&self, p: &Pending) -> u64 {
        self.deadlines
            .get(p.request.slo as usize)
            .copied()
            .unwrap_or(0)
    }
    /// The deadline of every SLO class, ns, indexed by [`PendingRequest::slo`].
    #[inline]
    pub fn slo_deadlines(&self) -> &'a [u64] {
        self.deadlines
    }
}

/// The pending requests and the SLO deadlines of a slot, borrowed or copied.
type PendingAndDeadlines<'a> = (Cow<'a, [Pending]>, Cow<'a, [u64]>);

/// The pending requests and SLO deadlines of `raw`: the 1.3 host's arrays (borrowed when their
/// stride is this SDK's size, else copied), or built from the request views of an older host.
///
/// # Safety
/// `raw`'s `pending` and `slo_deadlines` must be empty or valid for `'a` with the stride it
/// declares (the ABI's rules for the host).
pub(crate) unsafe fn pending_of<'a>(
    raw: &SlotView,
    requests: &[RequestView],
) -> Result<PendingAndDeadlines<'a>, String> {
    if raw.pending.len == 0 || raw.pending.ptr.is_null() {
        if requests.is_empty() {
            return Ok((Cow::Borrowed(&[]), Cow::Borrowed(&[])));
        }
        // A host older than 1.3: the same requests, from its views.
        let pending = requests.iter().map(pending_from_view).collect();
        let n_slo = requests
            .iter()
            .map(|r| r.slo as usize + 1)
            .max()
            .unwrap_or(0);
        let mut deadlines = vec![0; n_slo];
        for r in requests {
            deadlines[r.slo as usize] = r.deadline_ns;
        }
        return Ok((Cow::Owned(pending), Cow::Owned(deadlines)));
    }
    // SAFETY: the host's deadlines, valid for 'a (the caller's contract).
    let deadlines = Cow::Borrowed(unsafe { raw.slo_deadlines.as_slice() });
    let stride = raw.pending_size as usize;
    if stride == size_of::<Pending>() {
        // SAFETY: `len` elements of this SDK's size, valid for 'a.
        return Ok((Cow::Borrowed(unsafe { raw.pending.as_slice() }), deadlines));
    }
    if stride < PENDING_MIN_SIZE || !stride.is_multiple_of(align_of::<Pending>()) {
        return Err(format!(
            "the host's pending requests have stride {stride} (at least {PENDING_MIN_SIZE} and a multiple of {} expected)",
            align_of::<Pending>()
        ));
    }
    // A newer host's larger elements: the prefix this SDK knows, element by element.
    let base = raw.pending.ptr.cast::<u8>();
    let pending = (0..raw.pending.len)
        // SAFETY: element `i` is at byte `i * stride`, aligned, with `stride >= 56` readable
        // bytes, the first 56 of them a 1.3 `Pending`.
        .map(|i| unsafe { base.add(i * stride).cast::<Pending>().read() })
        .collect();
    Ok((Cow::Owned(pending), deadlines))
}

/// The [`Pending`] of a request view (for a host older than 1.3).
fn pending_from_view(r: &RequestView) -> Pending {
    Pending {
        request: PendingRequest {
            id: r.id,
            arrival_ns: r.arrival_ns,
            input_bytes: r.input_bytes,
            output_bytes: r.output_bytes,
            prompt_tokens: r.prompt_tokens,
            output_tokens: r.output_tokens,
            model: r.model,
            slo: r.slo,
        },
        defers: r.defers,
    }
}

/// `schedule` of an in-place policy called by a host older than 1.3: decide into a local
/// decision array, then write each decision's action and server into the host's placement.
///
/// # Safety
/// `out` must be null with `out_len` 0, or hold `out_len` placements of stride
/// `slot.raw().placement_size`, writable for the call.
pub(crate) unsafe fn decide_into_placements<T: GuestPolicy>(
    me: &mut T,
    slot: &Slot<'_>,
    out: *mut Placement,
    out_len: usize,
) -> Result<(), String> {
    if slot.pending.len() != out_len {
        return Err(format!(
            "{} pending requests but {out_len} placements",
            slot.pending.len()
        ));
    }
    if out_len == 0 {
        return me.decide(slot, &mut []);
    }
    check_null(out, "out")?;
    let stride = slot.raw().placement_size as usize;
    if !size_is_valid::<Placement>(stride) {
        return Err(format!("the host's placements have stride {stride}"));
    }
    let mut local = vec![Decision::DEFER; out_len];
    me.decide(slot, &mut local)?;
    for (i, d) in local.iter().enumerate() {
        // SAFETY: placement `i` is at byte `i * stride` of the host's buffer, writable, and
        // `action` and `server` are 1.0 fields.
        unsafe {
            let p = out.cast::<u8>().add(i * stride).cast::<Placement>();
            (*p).action = d.action;
            (*p).server = d.server;
        }
    }
    Ok(())
}

/// The instance and the slot of a `schedule` or `decide` call, checked for null.
#[inline]
pub(crate) fn instance_and_slot<'a, T: GuestPolicy>(
    instance: *mut c_void,
    slot: *const SlotView,
) -> Result<(&'a mut T, Slot<'a>), String> {
    check_null(instance, "instance")?;
    check_null(slot, "slot")?;
    // SAFETY: the host passes the instance create returned, used by one thread at a time for
    // the call.
    let me = unsafe { &mut *instance.cast::<T>() };
    // SAFETY: the host passes a slot view valid for the call.
    let slot = unsafe { Slot::from_raw(slot) }?;
    Ok((me, slot))
}

/// Shim: [`DecideFn`] for `T` (exported when [`GuestPolicy::IN_PLACE`] is set).
pub extern "C" fn policy_decide<T: GuestPolicy>(
    instance: *mut c_void,
    slot: *const SlotView,
    out: *mut Decision,
    out_len: usize,
    err: *const ErrorSink,
) -> u32 {
    run_status(err, || {
        let (me, slot) = instance_and_slot::<T>(instance, slot)?;
        if slot.pending.len() != out_len {
            return Err(format!(
                "{} pending requests but {out_len} decisions",
                slot.pending.len()
            ));
        }
        if out_len == 0 {
            return me.decide(&slot, &mut []);
        }
        check_null(out, "out")?;
        let stride = slot.raw().decision_size as usize;
        if stride == size_of::<Decision>() {
            // SAFETY: the host passes `out_len` decisions of this SDK's size, writable for the
            // call and pre-filled (every bit pattern is a valid `Decision` of two `u32`s).
            let out = unsafe { std::slice::from_raw_parts_mut(out, out_len) };
            return me.decide(&slot, out);
        }
        if stride < DECISION_MIN_SIZE || !stride.is_multiple_of(align_of::<Decision>()) {
            return Err(format!("the host's decisions have stride {stride}"));
        }
        // A newer host's larger decisions: decide locally, write back the fields both know.
        let at = |i: usize| out.cast::<u8>().wrapping_add(i * stride).cast::<Decision>();
        let mut local: Vec<Decision> = (0..out_len)
            // SAFETY: element `i` of the host's buffer, at least 8 readable bytes.
            .map(|i| unsafe { at(i).read() })
            .collect();
        me.decide(&slot, &mut local)?;
        for (i, d) in local.iter().enumerate() {
            // SAFETY: element `i` of the host's buffer, at least 8 writable bytes.
            unsafe { at(i).write(*d) };
        }
        Ok(())
    })
}
