//! The host side of the ABI's in-place path (1.3): a plugin that provides
//! [`abi::PolicyVTable::decide`] reads the simulator's own [`Pending`] array and writes the
//! simulator's own [`Decision`] array. Nothing is copied per request: the host passes two
//! pointers, pre-fills the decisions and checks each one's action code after the call.
//!
//! That perllm-core's types *are* the ABI's layout is proved here at compile time: size,
//! alignment, the offset and the type of every field, and the discriminant of every
//! [`Decision`] variant. Changing `perllm_core::Request`, `Pending` or `Decision` in a way the
//! ABI's 1.3 layout does not allow fails the build of this crate.
//!
//! What the host checks: a plugin may leave any bytes in a decision, but a [`Decision`] whose
//! action code is not one of the three is not a value of the Rust type, so every action code
//! is checked before anything reads the array as decisions (an unknown code fails the call
//! and every decision is reset to `Defer`). Whether an assigned server exists and hosts the
//! request's model is checked where the decision is applied, by whoever applies it, as for
//! every core policy: the simulator (`perllm_core::sim`, which fails the run naming the policy
//! and the request) and the gateway (which rejects the request). The host does not check it a
//! second time.

use perllm_core::Request;
use perllm_core::policy::{Decision, Pending};
use perllm_plugin_abi as abi;
use std::mem::offset_of;

/// Assert at compile time that two structs have the same size and alignment and that each
/// listed field sits at the same offset with the same type.
macro_rules! same_layout {
    ($core:ty, $abi:ty, [$($f:ident),*]) => {
        const _: () = {
            assert!(size_of::<$core>() == size_of::<$abi>());
            assert!(align_of::<$core>() == align_of::<$abi>());
            $(assert!(offset_of!($core, $f) == offset_of!($abi, $f));)*
        };
        const _: fn(&$core, &mut $abi) = |c, a| {
            // Compiles only if every field has the same type on both sides.
            $(a.$f = c.$f;)*
        };
    };
}

same_layout!(
    Request,
    abi::PendingRequest,
    [
        id,
        arrival_ns,
        input_bytes,
        output_bytes,
        prompt_tokens,
        output_tokens,
        model,
        slo
    ]
);
const _: () = {
    assert!(size_of::<Pending>() == size_of::<abi::Pending>());
    assert!(align_of::<Pending>() == align_of::<abi::Pending>());
    assert!(offset_of!(Pending, request) == offset_of!(abi::Pending, request));
    assert!(offset_of!(Pending, defers) == offset_of!(abi::Pending, defers));
    assert!(size_of::<abi::Pending>() == abi::PENDING_MIN_SIZE);
};
const _: fn(&Pending, &mut abi::Pending) = |c, a| a.defers = c.defers;

/// The action code a [`Decision`] is stored with (its `#[repr(u32)]` discriminant).
const fn tag(d: &Decision) -> u32 {
    // SAFETY: `Decision` is `#[repr(u32)]`: every value begins with its discriminant, a `u32`.
    unsafe { *(d as *const Decision).cast::<u32>() }
}
/// The server of an `Assign`, where the ABI's `Decision::server` is.
const fn assigned(d: &Decision) -> u32 {
    // SAFETY: `Assign`'s field follows the `u32` discriminant (`#[repr(u32)]`: a `#[repr(C)]`
    // struct of the tag and the fields), at the offset of `abi::Decision::server`.
    unsafe { *(d as *const Decision).cast::<u32>().add(1) }
}
const _: () = {
    assert!(size_of::<Decision>() == size_of::<abi::Decision>());
    assert!(align_of::<Decision>() == align_of::<abi::Decision>());
    assert!(size_of::<abi::Decision>() == abi::DECISION_MIN_SIZE);
    assert!(offset_of!(abi::Decision, action) == 0);
    assert!(offset_of!(abi::Decision, server) == 4);
    assert!(tag(&Decision::Defer) == abi::ACTION_DEFER);
    assert!(tag(&Decision::Reject) == abi::ACTION_REJECT);
    assert!(tag(&Decision::Assign(7)) == abi::ACTION_ASSIGN);
    assert!(assigned(&Decision::Assign(7)) == 7);
};

/// The core's pending requests as the ABI's array (no copy: the same memory).
#[inline]
pub(crate) fn pending_slice(pending: &[Pending]) -> abi::Slice<abi::Pending> {
    abi::Slice::new_raw(pending.as_ptr().cast(), pending.len())
}

/// A decision with an action code that is none of the three.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BadAction {
    pub index: usize,
    pub action: u32,
}

/// Call `decide` with `out` as the ABI's decision array: pre-fill every decision with
/// `{ACTION_DEFER, NO_SERVER}`, call, and, if the call returned [`abi::STATUS_OK`], check every
/// action code. Returns the call's status. After it, `out` holds valid decisions: the plugin's
/// if its status is OK and every action is known, else `Defer` everywhere.
#[inline]
pub(crate) fn call_in_place(
    out: &mut [Decision],
    decide: impl FnOnce(*mut abi::Decision) -> u32,
) -> Result<u32, BadAction> {
    let n = out.len();
    // From here on `out` is used only through `p` (the plugin writes through it too).
    let p = out.as_mut_ptr().cast::<abi::Decision>();
    // SAFETY: `p` is `out`'s buffer of `n` elements, which have the ABI's size and alignment
    // (asserted above); every bit pattern is a valid `abi::Decision` (two `u32`s), and
    // `{0, NO_SERVER}` is the valid `Decision::Defer`. The borrow ends before the call.
    unsafe { std::slice::from_raw_parts_mut(p, n) }.fill(abi::Decision::DEFER);
    let status = decide(p);
    if status != abi::STATUS_OK {
        reset(p, n);
        return Ok(status);
    }
    // SAFETY: as above: the plugin's writes are plain `u32`s, whatever their values.
    let written = unsafe { std::slice::from_raw_parts(p, n) };
    // One pass without branches (it vectorises), then the index only if one is unknown.
    let unknown = written
        .iter()
        .fold(false, |bad, d| bad | (d.action > abi::ACTION_REJECT));
    if unknown {
        let index = written
            .iter()
            .position(|d| d.action > abi::ACTION_REJECT)
            .unwrap_or(0);
        let action = written[index].action;
        reset(p, n);
        return Err(BadAction { index, action });
    }
    // Every element holds a known action code (and, for `ACTION_ASSIGN`, a `u32` server): a
    // valid `Decision`.
    Ok(status)
}

/// Set the `n` decisions at `p` to `Defer` (after a failed call: the plugin may have written
/// anything).
#[cold]
fn reset(p: *mut abi::Decision, n: usize) {
    // SAFETY: as in `call_in_place`: `p` holds `n` decisions, any bit pattern valid.
    unsafe { std::slice::from_raw_parts_mut(p, n) }.fill(abi::Decision::DEFER);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decisions written through the ABI's layout are the core's; unknown codes reset all.
    #[test]
    fn decisions_written_in_place_are_the_cores() {
        let mut out = vec![Decision::Assign(3); 4];
        let r = call_in_place(&mut out, |p| {
            // SAFETY: `p` holds 4 pre-filled decisions.
            let d = unsafe { std::slice::from_raw_parts_mut(p, 4) };
            assert!(d.iter().all(|x| *x == abi::Decision::DEFER), "pre-filled");
            d[0] = abi::Decision::assign(5);
            d[1] = abi::Decision::REJECT;
            d[3] = abi::Decision {
                action: abi::ACTION_DEFER,
                server: 77,
            };
            abi::STATUS_OK
        });
        assert_eq!(r.unwrap(), abi::STATUS_OK);
        assert_eq!(
            out,
            [
                Decision::Assign(5),
                Decision::Reject,
                Decision::Defer,
                Decision::Defer
            ]
        );
        for (bad, index) in [(3u32, 2usize), (u32::MAX, 0)] {
            let mut out = vec![Decision::Reject; 3];
            let r = call_in_place(&mut out, |p| {
                // SAFETY: `p` holds 3 decisions.
                let d = unsafe { std::slice::from_raw_parts_mut(p, 3) };
                d[0] = abi::Decision::assign(1);
                d[index] = abi::Decision {
                    action: bad,
                    server: 0,
                };
                abi::STATUS_OK
            });
            let e = r.unwrap_err();
            assert_eq!((e.index, e.action), (index, bad));
            assert_eq!(out, [Decision::Defer; 3]);
        }
        let mut out = vec![Decision::Reject; 2];
        let r = call_in_place(&mut out, |p| {
            // SAFETY: `p` holds 2 decisions.
            unsafe {
                p.write(abi::Decision {
                    action: 9,
                    server: 0,
                })
            };
            abi::STATUS_ERROR
        });
        assert_eq!(r.unwrap(), abi::STATUS_ERROR);
        assert_eq!(out, [Decision::Defer; 2]);
    }
}
