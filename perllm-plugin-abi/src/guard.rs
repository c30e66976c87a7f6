//! What every shim does at the boundary: catch panics, turn results into status codes, report
//! messages through the host's error sink, refuse null pointers.

// As in `sdk`: raw pointers from the host are governed by the ABI contract.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use crate::*;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic payload that is not a string)".to_string()
    }
}

/// Report `message` through `err` (ignored if `err` is null).
pub fn report_error(err: *const ErrorSink, message: &str) {
    if err.is_null() {
        return;
    }
    // SAFETY: a non-null `err` points to a sink the host keeps alive for the call; `ctx` and
    // `report` are 1.0 fields, present in every 1.x sink.
    let (ctx, report) = unsafe { ((*err).ctx, (*err).report) };
    report(ctx, StrRef::new(message));
}

pub(crate) fn run_status(err: *const ErrorSink, f: impl FnOnce() -> Result<(), String>) -> u32 {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => STATUS_OK,
        Ok(Err(m)) => {
            report_error(err, &m);
            STATUS_ERROR
        }
        Err(p) => {
            report_error(err, &panic_message(&*p));
            STATUS_PANIC
        }
    }
}

pub(crate) fn check_null<T>(p: *const T, what: &str) -> Result<(), String> {
    if p.is_null() {
        Err(format!("the host passed a null `{what}`"))
    } else {
        Ok(())
    }
}
