//! Structs that grow: every struct crossing the boundary begins with its `struct_size`, and the
//! side that reads it copies only the prefix both sides know, taking documented defaults for the
//! rest. This is what lets a host of ABI 1.x run a plugin built for any other 1.y.

use crate::*;
use std::borrow::Cow;

/// A `#[repr(C)]` struct of the ABI whose first field is `struct_size: u32`.
///
/// A reader of a struct built by the other side trusts `struct_size`, not its own
/// `size_of::<Self>()`: a smaller struct comes from an older writer (the fields it lacks take
/// their values from [`Versioned::DEFAULT`]); a larger one from a newer writer (the fields the
/// reader does not know are ignored).
///
/// # Safety
/// The implementing type must be `#[repr(C)]`, begin with a `u32` holding its size, and every
/// prefix of it ending on a field boundary (a multiple of its alignment at or above
/// [`Versioned::MIN_SIZE`]) copied over [`Versioned::DEFAULT`] must be a valid value.
pub unsafe trait Versioned: Copy + 'static {
    /// Its size in ABI 1.0, the oldest layout of this major: a smaller `struct_size` is malformed.
    const MIN_SIZE: usize;
    /// Every field's value when the writer does not provide it, with `struct_size` set to this
    /// side's size. The defaults of fields added in a minor version are documented on the field.
    const DEFAULT: Self;
}

macro_rules! versioned {
    ($($t:ty = $min:expr, $default:expr;)*) => {
        $(
            // SAFETY: the type is #[repr(C)], starts with `struct_size: u32`, and
            // holds only integers, floats, raw pointers, `StrRef`/`Slice` and `Option<fn>`, all
            // valid for the bytes a conforming writer puts in them.
            unsafe impl Versioned for $t {
                const MIN_SIZE: usize = $min;
                const DEFAULT: Self = $default;
            }

            /// [`Versioned::DEFAULT`]: this side's size and every field's documented default.
            impl Default for $t {
                fn default() -> Self {
                    <$t as Versioned>::DEFAULT
                }
            }
        )*
    };
}

extern "C" fn ignore_report(_: *mut c_void, _: StrRef) {}
extern "C" fn ignore_emit(_: *mut c_void, _: StrRef, _: f64) {}

const fn size32<T>() -> u32 {
    size_of::<T>() as u32
}

versioned! {
    ErrorSink = 24, ErrorSink {
        struct_size: size32::<ErrorSink>(), reserved: 0, ctx: std::ptr::null_mut(),
        report: ignore_report,
    };
    StatSink = 24, StatSink {
        struct_size: size32::<StatSink>(), reserved: 0, ctx: std::ptr::null_mut(),
        emit: ignore_emit,
    };
    ServerView = 136, ServerView {
        struct_size: size32::<ServerView>(), id: 0, tier: TIER_EDGE, max_batch: 0,
        device_count: 0, uploading: 0, queued: 0, running: 0, downloading: 0, reserved: 0,
        models: Slice::empty(), free_kv_bytes: 0, kv_capacity_bytes: 0,
        pending_output_tokens: 0, link_latency_ns: 0, bandwidth_estimate_bps: 0.0,
        recent_utilization: 0.0, power_idle_w: 0.0, power_busy_w: 0.0, name: StrRef::EMPTY,
        hardware_kind: HW_UNKNOWN, reserved_1_1: 0,
    };
    RequestView = 64, RequestView {
        struct_size: size32::<RequestView>(), model: 0, slo: 0, prompt_tokens: 0,
        output_tokens: 0, defers: 0, reserved: 0, id: 0, arrival_ns: 0, deadline_ns: 0,
        input_bytes: 0, output_bytes: 0,
    };
    EstimateView = 72, EstimateView {
        struct_size: size32::<EstimateView>(), valid: 0, upload_ns: 0, queue_ns: 0,
        prefill_ns: 0, decode_ns: 0, download_ns: 0, energy_transmission_j: 0.0,
        energy_inference_j: 0.0, energy_idle_j: 0.0,
    };
    SlotView = 112, SlotView {
        struct_size: size32::<SlotView>(), reserved: 0, slot: 0, now_ns: 0,
        servers: Slice::empty(), requests: Slice::empty(), estimates: Slice::empty(),
        energy_weights: [0.0; 3], server_size: size32::<ServerView>(),
        request_size: size32::<RequestView>(), estimate_size: size32::<EstimateView>(),
        placement_size: size32::<Placement>(), pending: Slice::empty(),
        slo_deadlines: Slice::empty(), pending_size: 0, decision_size: 0,
    };
    Placement = 16, Placement {
        struct_size: size32::<Placement>(), action: ACTION_DEFER, server: NO_SERVER, reserved: 0,
    };
    OutcomeView = 56, OutcomeView {
        struct_size: size32::<OutcomeView>(), server: 0, met: 0, reserved: 0, decided_ns: 0,
        ttft_ns: 0, total_ns: 0, request: std::ptr::null(), phases: std::ptr::null(),
    };
    HardwareView = 80, HardwareView {
        struct_size: size32::<HardwareView>(), kind: HW_GPU, compute_flops: 0.0,
        memory_bytes: 0, memory_bandwidth_bytes_per_s: 0.0, power_idle_w: 0.0,
        power_busy_w: 0.0, compute_efficiency: 0.0, bandwidth_efficiency: 0.0,
        name: StrRef::EMPTY,
    };
    ModelView = 56, ModelView {
        struct_size: size32::<ModelView>(), reserved: 0, params: 0.0, bytes_per_param: 0.0,
        weight_bytes: 0.0, kv_bytes_per_token: 0, name: StrRef::EMPTY,
    };
    StepShapeView = 32, StepShapeView {
        struct_size: size32::<StepShapeView>(), prefill_seqs: 0, decode_seqs: 0, reserved: 0,
        prefill_tokens: 0, kv_tokens: 0,
    };
    EstimateInput = 72, EstimateInput {
        struct_size: size32::<EstimateInput>(), device_count: 0, active_uploads: 0, queued: 0,
        running: 0, reserved: 0, bandwidth_bps: 0.0, energy_j_per_bit: 0.0,
        hardware: std::ptr::null(), model: std::ptr::null(), server: std::ptr::null(),
        request: std::ptr::null(),
    };
    PolicyVTable = 48, PolicyVTable {
        struct_size: size32::<PolicyVTable>(), reserved: 0, create: None, destroy: None,
        schedule: None, observe: None, stats: None, decide: None,
    };
    CostModelVTable = 40, CostModelVTable {
        struct_size: size32::<CostModelVTable>(), reserved: 0, create: None, destroy: None,
        step_ns: None, estimate: None,
    };
    PluginDecl = 80, PluginDecl {
        struct_size: size32::<PluginDecl>(), kind: 0, name: StrRef::EMPTY,
        version: StrRef::EMPTY, description: StrRef::EMPTY, flags: 0, reserved: 0,
        policy: std::ptr::null(), cost_model: std::ptr::null(), params: StrRef::EMPTY,
    };
    PluginList = 24, PluginList {
        struct_size: size32::<PluginList>(), reserved: 0, plugins: Slice::empty(),
    };
}

/// Is `size` a `struct_size` a reader of `T` can use: at least `T`'s 1.0 size and a multiple of
/// its alignment (so that it ends on a field boundary)?
pub const fn size_is_valid<T: Versioned>(size: usize) -> bool {
    size >= T::MIN_SIZE && size.is_multiple_of(align_of::<T>())
}

/// Copy a struct the other side built, whatever its version: the first
/// `min(size, size_of::<T>())` bytes of `*p` over [`Versioned::DEFAULT`]. The copy's
/// `struct_size` is this side's size.
///
/// # Safety
/// `p` must point to `size` readable bytes holding a `T` of some 1.x version, with
/// [`size_is_valid`]`::<T>(size)`. `p` need not be aligned.
pub unsafe fn read_versioned<T: Versioned>(p: *const T, size: usize) -> T {
    let mut v = T::DEFAULT;
    let n = size.min(size_of::<T>());
    // SAFETY: `p` has `size >= n` readable bytes; `v` has `size_of::<T>() >= n` bytes; the
    // prefix ends on a field boundary, so `v` is a valid `T` (the trait's contract).
    unsafe { std::ptr::copy_nonoverlapping(p.cast::<u8>(), (&raw mut v).cast::<u8>(), n) };
    // SAFETY: every `Versioned` type begins with its `struct_size: u32`.
    unsafe { (&raw mut v).cast::<u32>().write(size_of::<T>() as u32) };
    v
}

/// Write `value` into a struct of `size` bytes the other side owns: the first
/// `min(size, size_of::<T>())` bytes, leaving the rest (and the destination's `struct_size`,
/// which its owner set) unchanged.
///
/// # Safety
/// `dst` must point to `size` writable bytes, with [`size_is_valid`]`::<T>(size)`.
pub unsafe fn write_versioned<T: Versioned>(dst: *mut T, size: usize, value: &T) {
    let n = size.min(size_of::<T>());
    // SAFETY: both sides hold at least `n` bytes; skipping the first 4 keeps the owner's size.
    unsafe {
        std::ptr::copy_nonoverlapping(
            (value as *const T).cast::<u8>().add(4),
            dst.cast::<u8>().add(4),
            n - 4,
        )
    };
}

/// Borrow a struct the other side built if it is at least as large as this side's `T`, else
/// copy it with [`read_versioned`].
///
/// # Safety
/// `p` must be non-null, aligned for `T` and point to a `T` of some 1.x version whose
/// `struct_size` is correct and valid for `'a`.
pub unsafe fn view<'a, T: Versioned>(p: *const T) -> Result<Cow<'a, T>, String> {
    // SAFETY: the caller guarantees a readable struct starting with its size.
    let size = unsafe { p.cast::<u32>().read() } as usize;
    if !size_is_valid::<T>(size) {
        return Err(format!(
            "a {} of struct_size {size} (at least {} and a multiple of {} expected)",
            short_name::<T>(),
            T::MIN_SIZE,
            align_of::<T>()
        ));
    }
    if size >= size_of::<T>() {
        // SAFETY: the struct holds at least `size_of::<T>()` valid bytes for 'a.
        Ok(Cow::Borrowed(unsafe { &*p }))
    } else {
        // SAFETY: `size` readable bytes, validated above.
        Ok(Cow::Owned(unsafe { read_versioned(p, size) }))
    }
}

/// Borrow an array the other side built if its stride is this side's `size_of::<T>()`, else copy
/// each element with [`read_versioned`].
///
/// # Safety
/// `ptr` must be null with `len` 0, or point to `len` elements `stride` bytes apart, valid for
/// `'a`, and aligned for `T`.
pub unsafe fn view_slice<'a, T: Versioned>(
    ptr: *const T,
    len: usize,
    stride: usize,
) -> Result<Cow<'a, [T]>, String> {
    if len == 0 || ptr.is_null() {
        return Ok(Cow::Borrowed(&[]));
    }
    if stride == size_of::<T>() {
        // SAFETY: `len` elements of this side's size, valid for 'a.
        return Ok(Cow::Borrowed(unsafe {
            std::slice::from_raw_parts(ptr, len)
        }));
    }
    if !size_is_valid::<T>(stride) {
        return Err(format!(
            "an array of {} with stride {stride} (at least {} and a multiple of {} expected)",
            short_name::<T>(),
            T::MIN_SIZE,
            align_of::<T>()
        ));
    }
    Ok(Cow::Owned(
        (0..len)
            // SAFETY: element `i` is at byte `i * stride` and holds `stride` readable bytes.
            .map(|i| unsafe { read_versioned(ptr.cast::<u8>().add(i * stride).cast(), stride) })
            .collect(),
    ))
}

fn short_name<T>() -> &'static str {
    let n = std::any::type_name::<T>();
    n.rsplit("::").next().unwrap_or(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_carry_their_own_size() {
        fn check<T: Versioned>() {
            let d = T::DEFAULT;
            // SAFETY: every Versioned type begins with a u32 size.
            // SAFETY: as above.
            let size = unsafe { (&raw const d).cast::<u32>().read() } as usize;
            assert_eq!(size, size_of::<T>(), "{}", short_name::<T>());
            assert!(T::MIN_SIZE <= size_of::<T>(), "{}", short_name::<T>());
            assert!(size_is_valid::<T>(size_of::<T>()));
        }
        check::<ErrorSink>();
        check::<StatSink>();
        check::<ServerView>();
        check::<RequestView>();
        check::<EstimateView>();
        check::<SlotView>();
        check::<Placement>();
        check::<OutcomeView>();
        check::<HardwareView>();
        check::<ModelView>();
        check::<StepShapeView>();
        check::<EstimateInput>();
        check::<PolicyVTable>();
        check::<CostModelVTable>();
        check::<PluginDecl>();
        check::<PluginList>();
    }

    #[test]
    fn a_larger_struct_is_borrowed_and_a_smaller_one_completed_with_defaults() {
        // A writer with 8 more bytes than ours.
        #[repr(C, align(8))]
        struct Bigger([u8; size_of::<RequestView>() + 8]);
        let mut big = Bigger([0xAB; size_of::<RequestView>() + 8]);
        let r = RequestView {
            struct_size: size_of::<Bigger>() as u32,
            id: 7,
            ..RequestView::DEFAULT
        };
        // SAFETY: `big` holds a whole RequestView at its start.
        unsafe { std::ptr::write((&raw mut big).cast::<RequestView>(), r) };
        // SAFETY: as above, and `struct_size` is the buffer's size.
        let v = unsafe { view::<RequestView>((&raw const big).cast()) }.unwrap();
        assert!(matches!(v, Cow::Borrowed(_)));
        assert_eq!(v.id, 7);

        // A writer that knew only the first 32 bytes: the rest keeps the defaults.
        let mut small = RequestView {
            id: 99,
            arrival_ns: 5,
            ..RequestView::DEFAULT
        };
        small.struct_size = 32;
        small.model = 3;
        // SAFETY: `small` is a whole RequestView.
        let v = unsafe { read_versioned(&small, 32) };
        assert_eq!((v.model, v.id), (3, 99), "within the writer's 32 bytes");
        assert_eq!(v.arrival_ns, 0, "beyond the writer's 32 bytes: the default");
        assert_eq!(v.struct_size as usize, size_of::<RequestView>());
    }

    #[test]
    fn arrays_with_another_stride_are_copied_element_by_element() {
        // Elements 80 bytes apart (a newer writer's RequestView).
        let mut buf = vec![0u64; 3 * 10];
        for i in 0..3 {
            let r = RequestView {
                struct_size: 80,
                id: 100 + i as u64,
                ..RequestView::DEFAULT
            };
            // SAFETY: element `i` starts at u64 index 10 * i and has 80 bytes.
            unsafe { std::ptr::write(buf.as_mut_ptr().add(10 * i).cast::<RequestView>(), r) };
        }
        // SAFETY: three elements 80 bytes apart.
        let v = unsafe { view_slice::<RequestView>(buf.as_ptr().cast(), 3, 80) }.unwrap();
        assert!(matches!(v, Cow::Owned(_)));
        assert_eq!(v.iter().map(|r| r.id).collect::<Vec<_>>(), [100, 101, 102]);
        // SAFETY: a bad stride is refused before any read.
        let bad = unsafe { view_slice::<RequestView>(buf.as_ptr().cast(), 3, 12) };
        assert!(bad.unwrap_err().contains("stride 12"));
    }

    #[test]
    fn writing_keeps_the_owners_size_and_tail() {
        let mut dst = [0xFFu8; 88];
        let dst_p = dst.as_mut_ptr().cast::<EstimateView>();
        // SAFETY: 88 writable bytes; the owner's size goes first.
        unsafe { dst_p.cast::<u32>().write_unaligned(88) };
        let v = EstimateView {
            valid: 1,
            upload_ns: 5,
            ..EstimateView::DEFAULT
        };
        // SAFETY: 88 >= 72 writable bytes.
        unsafe { write_versioned(dst_p, 88, &v) };
        assert_eq!(u32::from_ne_bytes(dst[0..4].try_into().unwrap()), 88);
        assert_eq!(u32::from_ne_bytes(dst[4..8].try_into().unwrap()), 1);
        assert_eq!(
            dst[80..88],
            [0xFF; 8],
            "bytes the writer does not know are untouched"
        );
    }
}
