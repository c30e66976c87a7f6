//! The crash reporter: when a plugin call kills the process (a segmentation fault, `abort`, an
//! illegal instruction, `exit`), say on stderr which plugin, library, entry point and call were
//! active before the process dies.
//!
//! Each plugin call sets a thread-local pointer to a [`Note`] prepared when the plugin instance
//! was created (no allocation per call) and the call's number (slot, request id). Handlers of
//! `SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE` and `SIGABRT`, and an `atexit` hook, write the note with
//! `write(2)` only (async-signal-safe: no allocation, no lock, no formatting machinery), then
//! restore the previous disposition so that the process dies as it would have (a fault repeats
//! under the old handler; `abort` re-raises). Without an active note they change nothing.
//!
//! Under isolation the worker process runs the same reporter; its stderr is captured by the
//! parent and quoted in the run's error.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Once, OnceLock};

/// Set in an isolated worker: its host reports the crash, so the note gives no advice.
static IN_WORKER: AtomicBool = AtomicBool::new(false);

/// Mark this process as an isolated worker.
pub(crate) fn set_in_worker() {
    IN_WORKER.store(true, Ordering::Relaxed);
}

/// What a crash during one entry point of one plugin instance says.
#[derive(Debug)]
pub(crate) struct Note {
    /// `policy plugin `x` (`/lib.so`), entry point `schedule``, ready to write.
    head: Box<[u8]>,
    /// Label of the call number (`", slot "`), empty if the call has none.
    label: &'static [u8],
}

impl Note {
    /// A note for `kind` (`policy` or `cost model`) plugin `name` of library `path`, entry point
    /// `function`; `label` introduces the call's number (e.g. `", slot "`), or is empty.
    pub fn new(
        kind: &str,
        name: &str,
        path: &std::path::Path,
        function: &str,
        label: &'static str,
    ) -> Note {
        let head = format!(
            "{kind} plugin `{}` (`{}`), entry point `{function}`",
            name.escape_debug(),
            path.display()
        );
        Note {
            head: head.into_bytes().into_boxed_slice(),
            label: label.as_bytes(),
        }
    }
}

thread_local! {
    /// The note of the plugin call running on this thread (null outside calls) and its number.
    /// Const-initialised without a destructor: reading it in a signal handler touches no lazy
    /// initialisation.
    static ACTIVE: Cell<(*const Note, u64)> = const { Cell::new((std::ptr::null(), 0)) };
}

/// The active note while alive; the previous one again when dropped.
pub(crate) struct Active {
    prev: (*const Note, u64),
}

/// Mark `note` (with call number `n`) active on this thread until the guard drops. The note
/// must outlive the guard (it is a field of the plugin instance making the call).
#[inline]
pub(crate) fn enter(note: &Note, n: u64) -> Active {
    let prev = ACTIVE.with(|a| a.replace((note as *const Note, n)));
    Active { prev }
}

impl Drop for Active {
    #[inline]
    fn drop(&mut self) {
        ACTIVE.with(|a| a.set(self.prev));
    }
}

/// Install the handlers and the `atexit` hook, once per process. Called when the first plugin
/// instance is created.
pub(crate) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(install_now);
}

const SIGNALS: [(libc::c_int, &[u8]); 5] = [
    (libc::SIGSEGV, b"SIGSEGV (segmentation fault)"),
    (libc::SIGBUS, b"SIGBUS (bus error)"),
    (libc::SIGILL, b"SIGILL (illegal instruction)"),
    (libc::SIGFPE, b"SIGFPE (arithmetic exception)"),
    (libc::SIGABRT, b"SIGABRT (abort)"),
];

/// The dispositions replaced, restored before the process dies.
static PREVIOUS: [OnceLock<libc::sigaction>; 5] = [const { OnceLock::new() }; 5];

#[allow(unsafe_code)]
fn install_now() {
    for (i, (sig, _)) in SIGNALS.iter().enumerate() {
        // SAFETY: `sigaction` with a zeroed struct (a valid empty mask and no flags), then the
        // fields set; `on_fatal` only calls async-signal-safe functions (write, sigaction, raise)
        // and reads a const-initialised thread-local.
        unsafe {
            let mut new: libc::sigaction = std::mem::zeroed();
            new.sa_sigaction = on_fatal as *const () as libc::sighandler_t;
            new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut new.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(*sig, &new, &mut old) == 0 {
                let _ = PREVIOUS[i].set(old);
            }
        }
    }
    // SAFETY: registering a plain `extern "C" fn()` with the C library.
    unsafe {
        libc::atexit(on_exit);
    }
}

/// Write all of `bytes` to stderr with `write(2)` (async-signal-safe).
#[allow(unsafe_code)]
fn put(bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        // SAFETY: writes from a valid buffer of `rest.len()` bytes.
        let n = unsafe { libc::write(2, rest.as_ptr().cast(), rest.len()) };
        if n <= 0 {
            return;
        }
        rest = &rest[n as usize..];
    }
}

/// Write `n` in decimal without allocating.
fn put_number(mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    put(&buf[i..]);
}

/// Say what was running, if a plugin call is active on this thread; `what` is how it ends.
#[allow(unsafe_code)]
fn report(what: &[u8]) {
    let (note, n) = ACTIVE.with(Cell::get);
    if note.is_null() {
        return;
    }
    // SAFETY: the pointer was set by `enter` from a live `&Note` and is cleared (by the guard's
    // drop) before that note can be dropped; this thread is inside that call.
    let note = unsafe { &*note };
    put(b"\nperllm: fatal: ");
    put(what);
    put(b" during a call of ");
    put(&note.head);
    if !note.label.is_empty() {
        put(note.label);
        put_number(n);
    }
    if IN_WORKER.load(Ordering::Relaxed) {
        put(b"\n");
    } else {
        put(b"; the process ends (`perllm compare`/`sweep --isolate` run plugins in separate processes)\n");
    }
}

#[allow(unsafe_code)]
extern "C" fn on_fatal(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    let Some(i) = SIGNALS.iter().position(|s| s.0 == sig) else {
        return;
    };
    report(SIGNALS[i].1);
    // SAFETY: restores the disposition saved at install (or the default), async-signal-safe.
    // `info` is the kernel's siginfo for this signal.
    unsafe {
        match PREVIOUS[i].get() {
            Some(old) => libc::sigaction(sig, old, std::ptr::null_mut()),
            None => {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(sig, &dfl, std::ptr::null_mut())
            }
        };
        // A signal sent by a process (`abort`, `raise`, `kill`) is raised again under the
        // restored disposition (it is delivered when this handler returns); a fault repeats by
        // itself when the faulting instruction runs again.
        if info.is_null() || (*info).si_code <= 0 {
            libc::raise(sig);
        }
    }
}

extern "C" fn on_exit() {
    report(b"the plugin called exit()");
}
