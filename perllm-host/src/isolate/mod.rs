//! Isolation: a plugin policy run in a child process ([`IsolatedPolicy`]), so that a crash
//! (segmentation fault, `abort`, `exit`) or a hang ends one run with an error naming the plugin,
//! library, entry point and call, instead of the whole process.
//!
//! The worker is a process that runs [`serve_stdio`] (the hidden `perllm plugin-worker`
//! command, or the `perllm-plugin-worker` binary of this crate). The host sends it the scenario
//! once, then one message per `schedule` call with the core types of the call (server states,
//! pending requests, the host's estimates if the policy wants them) and the outcomes since the
//! last call; the worker runs the plugin through the same [`crate::ForeignPolicy`] code as
//! in-process and answers with the decisions. A call that does not answer within the hard
//! timeout kills the worker.

mod wire;
mod worker;

pub use worker::{serve, serve_stdio};

use crate::error::HostError;
use crate::health::{Health, Kind};
use crate::policy::{CallTiming, WALLCLOCK_PREFIX};
use perllm_core::cost::Estimate;
use perllm_core::policy::{ClusterView, Decision, Pending, Policy, PolicyError, PolicyStats};
use perllm_core::{Outcome, World};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, Read};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wire::{Init, Reply, RequestRef};

/// Default hard limit of one isolated call: past it the worker is killed and the run fails.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Which plugin policies run in a worker process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IsolateMode {
    /// None: every plugin runs in the host process.
    #[default]
    Never,
    /// Plugins of libraries other than the bundled one.
    ThirdParty,
    /// Every plugin policy (built-in policies are never isolated: they are not plugins).
    Always,
}

/// How to isolate plugin policies.
#[derive(Clone, Debug)]
pub struct Isolation {
    /// Which policies.
    pub mode: IsolateMode,
    /// The worker program (a process that runs [`serve_stdio`]).
    pub program: PathBuf,
    /// Its arguments (e.g. the hidden `plugin-worker` command).
    pub args: Vec<OsString>,
    /// Hard limit of one call (and of the worker's start-up).
    pub call_timeout: Duration,
}

/// What the host knows of the worker's stderr: the last lines, and the crash reporter's note.
#[derive(Debug, Default)]
struct StderrTail {
    lines: VecDeque<String>,
    note: Option<String>,
}

const TAIL_LINES: usize = 8;

/// A live worker process.
struct Conn {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    stderr: Arc<Mutex<StderrTail>>,
    stderr_thread: Option<std::thread::JoinHandle<()>>,
}

/// Why a call got no reply.
enum Death {
    /// No reply within the timeout.
    Timeout,
    /// The worker closed its end (it died) or the pipe broke.
    Gone,
    /// A reply that is not a protocol message.
    Garbled(String),
}

/// A plugin policy running in a worker process, usable wherever a core [`Policy`] is.
///
/// Decisions are exactly those of the same plugin in-process (the worker runs the same host
/// code on the same world and the host's estimates). If the worker dies or a call exceeds the
/// hard timeout, the call fails with [`HostError::Crashed`] or [`HostError::TimedOut`], the
/// worker is gone, and every later call fails with the same error.
pub struct IsolatedPolicy {
    name: String,
    path: PathBuf,
    worker: String,
    timeout: Duration,
    wants_estimates: bool,
    io: RefCell<Io>,
    failure: Option<HostError>,
    health: Arc<Health>,
    observed: Vec<Outcome>,
    estimates: Vec<Estimate>,
    /// Servers hosting each model (of the world of the first call).
    hosted: Vec<Vec<u32>>,
    round_trip: CallTiming,
    budget: Duration,
}

struct Io {
    conn: Option<Conn>,
    wbuf: Vec<u8>,
    rbuf: Vec<u8>,
}

impl std::fmt::Debug for IsolatedPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IsolatedPolicy")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("worker", &self.worker)
            .finish()
    }
}

impl IsolatedPolicy {
    /// Start a worker and create the plugin policy `plugin` of library `path` in it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn create(
        plugin: &str,
        path: &std::path::Path,
        config: &str,
        seed: u64,
        world: &World,
        health: Arc<Health>,
        budget: Duration,
        iso: &Isolation,
    ) -> Result<IsolatedPolicy, HostError> {
        let worker = format!(
            "{}{}",
            iso.program.display(),
            iso.args
                .iter()
                .map(|a| format!(" {}", a.to_string_lossy()))
                .collect::<String>()
        );
        let broken = |problem: String| HostError::Worker {
            plugin: plugin.into(),
            path: path.into(),
            worker: worker.clone(),
            problem,
        };
        let scenario_json = serde_json::to_string(&world.scenario)
            .map_err(|e| broken(format!("cannot serialise the scenario: {e}")))?;
        let mut child = Command::new(&iso.program)
            .args(&iso.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| broken(format!("cannot start it: {e}")))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(broken("its standard streams are not pipes".into()));
        };
        let tail = Arc::new(Mutex::new(StderrTail::default()));
        let stderr_thread = {
            let tail = tail.clone();
            let label = format!("[plugin {plugin}] ");
            std::thread::Builder::new()
                .name(format!("perllm-worker-stderr-{plugin}"))
                .spawn(move || forward_stderr(stderr, &tail, &label))
                .ok()
        };
        let mut p = IsolatedPolicy {
            name: plugin.into(),
            path: path.into(),
            worker,
            timeout: iso.call_timeout,
            wants_estimates: false,
            io: RefCell::new(Io {
                conn: Some(Conn {
                    child,
                    stdin,
                    stdout,
                    stderr: tail,
                    stderr_thread,
                }),
                wbuf: Vec::new(),
                rbuf: Vec::new(),
            }),
            failure: None,
            health,
            observed: Vec::new(),
            estimates: Vec::new(),
            hosted: Vec::new(),
            round_trip: CallTiming::default(),
            budget,
        };
        let init = Init {
            wire_version: wire::WIRE_VERSION,
            library: path.into(),
            plugin: plugin.into(),
            config: config.into(),
            seed,
            budget_ns: budget.as_nanos().min(u64::MAX as u128) as u64,
            scenario_json,
            servers: world.servers.len() as u32,
            models: world.models.len() as u32,
        };
        match p.call(&init, "create", "starting the worker")? {
            Reply::Ready { wants_estimates } => p.wants_estimates = wants_estimates,
            Reply::Failed(message) => {
                return Err(HostError::Remote {
                    plugin: plugin.into(),
                    path: path.into(),
                    message,
                });
            }
            other => return Err(p.garbled("create", format!("{other:?}"))),
        }
        p.hosted = (0..world.models.len())
            .map(|m| {
                world
                    .servers
                    .iter()
                    .filter(|s| s.hosts(m as u16))
                    .map(|s| s.id)
                    .collect()
            })
            .collect();
        Ok(p)
    }

    fn garbled(&self, function: &str, what: String) -> HostError {
        HostError::Worker {
            plugin: self.name.clone(),
            path: self.path.clone(),
            worker: self.worker.clone(),
            problem: format!("unexpected reply to `{function}`: {what}"),
        }
    }

    /// Send `msg`, wait for the reply. On a death the worker is reaped and the error says what
    /// happened (`function` and `call` describe the call in flight).
    fn call<T: serde::Serialize>(
        &self,
        msg: &T,
        function: &str,
        call: &str,
    ) -> Result<Reply, HostError> {
        let mut io = self.io.borrow_mut();
        let Io { conn, wbuf, rbuf } = &mut *io;
        let Some(c) = conn.as_mut() else {
            return Err(self.garbled(function, "the worker is gone".into()));
        };
        let deadline = Instant::now() + self.timeout;
        let result = match wire::send(&mut c.stdin, wbuf, msg) {
            Err(_) => Err(Death::Gone),
            Ok(()) => read_reply(&mut c.stdout, rbuf, deadline),
        };
        let death = match result {
            Ok(range) => match wire::decode::<Reply>(&rbuf[range]) {
                Ok(r) => return Ok(r),
                Err(e) => Death::Garbled(e.to_string()),
            },
            Err(d) => d,
        };
        let c = conn.take().expect("checked above");
        Err(self.bury(c, death, function, call))
    }

    /// Reap a dead (or hung: killed) worker and say what happened.
    fn bury(&self, mut c: Conn, death: Death, function: &str, call: &str) -> HostError {
        if !matches!(death, Death::Gone) {
            let _ = c.child.kill();
        }
        drop(c.stdin);
        let status = wait_bounded(&mut c.child, Duration::from_secs(2));
        if let Some(t) = c.stderr_thread.take() {
            let until = Instant::now() + Duration::from_millis(500);
            while !t.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let tail = c.stderr.lock().unwrap_or_else(|p| p.into_inner());
        // The worker's crash reporter names the entry point that was running.
        let function = tail
            .note
            .as_deref()
            .and_then(|n| n.split("entry point `").nth(1))
            .and_then(|r| r.split('`').next())
            .unwrap_or(function)
            .to_string();
        match death {
            Death::Timeout => HostError::TimedOut {
                plugin: self.name.clone(),
                path: self.path.clone(),
                function,
                call: call.into(),
                timeout: format!("{:?}", self.timeout),
            },
            Death::Garbled(problem) => HostError::Worker {
                plugin: self.name.clone(),
                path: self.path.clone(),
                worker: self.worker.clone(),
                problem: format!("a reply that is not a protocol message ({problem})"),
            },
            Death::Gone => {
                let how = describe_status(status);
                let detail = match (&tail.note, tail.lines.is_empty()) {
                    // "SIGSEGV (...) during a call of <plugin, library>, entry point `f`, slot N"
                    (Some(n), _) => {
                        let what = n.split(" during a call of ").next().unwrap_or(n);
                        match n.split("entry point ").nth(1) {
                            Some(at) => format!("; the worker reported {what} in {}", at.trim()),
                            None => format!("; the worker reported: {}", n.trim()),
                        }
                    }
                    (None, false) => format!(
                        "; the worker's last stderr lines: {}",
                        tail.lines.iter().cloned().collect::<Vec<_>>().join(" | ")
                    ),
                    (None, true) => String::new(),
                };
                HostError::Crashed {
                    plugin: self.name.clone(),
                    path: self.path.clone(),
                    function,
                    call: call.into(),
                    how: how + &detail,
                }
            }
        }
    }

    fn fail(&mut self, e: HostError) -> PolicyError {
        if self.failure.is_none() {
            self.failure = Some(e.clone());
            self.health.fail(Kind::Policy, &self.name, e.clone());
        }
        PolicyError {
            policy: self.name.clone(),
            message: e.to_string(),
        }
    }
}

/// Read one reply frame into `buf`, waiting at most until `deadline`; the payload is
/// `buf[range]` (the buffer keeps its size from call to call: no clearing, no allocation).
#[allow(unsafe_code)]
fn read_reply(
    r: &mut ChildStdout,
    buf: &mut Vec<u8>,
    deadline: Instant,
) -> Result<std::ops::Range<usize>, Death> {
    if buf.len() < 1 << 16 {
        buf.resize(1 << 16, 0);
    }
    let mut filled = 0usize;
    let mut need: Option<usize> = None;
    loop {
        if need.is_none() && filled >= 4 {
            let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
            if len > wire::MAX_FRAME {
                return Err(Death::Garbled(format!("a frame of {len} bytes")));
            }
            need = Some(4 + len);
            if buf.len() < 4 + len {
                buf.resize(4 + len, 0);
            }
        }
        if let Some(n) = need
            && filled >= n
        {
            return Ok(4..n);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Death::Timeout);
        }
        let mut pfd = libc::pollfd {
            fd: r.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
        // SAFETY: one valid `pollfd` for a descriptor this process owns (the child's stdout).
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(Death::Gone);
        }
        if n == 0 {
            continue;
        }
        match r.read(&mut buf[filled..]) {
            Ok(0) => return Err(Death::Gone),
            Ok(k) => filled += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Err(Death::Gone),
        }
    }
}

/// Wait for `child` at most `limit`, then kill it.
fn wait_bounded(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let until = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(2)),
            Ok(None) => {
                let _ = child.kill();
                return child.wait().ok();
            }
            Err(_) => return None,
        }
    }
}

/// How a worker ended, in words.
fn describe_status(status: Option<std::process::ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    let Some(s) = status else {
        return "the worker ended in an unknown way".into();
    };
    if let Some(sig) = s.signal() {
        let name = match sig {
            libc::SIGSEGV => " (SIGSEGV, segmentation fault)",
            libc::SIGABRT => " (SIGABRT, abort)",
            libc::SIGBUS => " (SIGBUS, bus error)",
            libc::SIGILL => " (SIGILL, illegal instruction)",
            libc::SIGFPE => " (SIGFPE, arithmetic exception)",
            libc::SIGKILL => " (SIGKILL)",
            libc::SIGTERM => " (SIGTERM)",
            _ => "",
        };
        return format!("the worker was killed by signal {sig}{name}");
    }
    match s.code() {
        Some(c) => format!("the worker exited with status {c} in the middle of the call"),
        None => "the worker ended in an unknown way".into(),
    }
}

/// Copy the worker's stderr to ours, line by line with `label`, keeping the last lines and the
/// crash reporter's note (which is not copied: the run's error quotes it).
fn forward_stderr(stderr: std::process::ChildStderr, tail: &Mutex<StderrTail>, label: &str) {
    let mut r = std::io::BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match r.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        if text.is_empty() {
            continue;
        }
        let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = text.strip_prefix("perllm: fatal: ") {
            t.note = Some(n.to_string());
            continue;
        }
        let kept: String = text.chars().take(300).collect();
        if t.lines.len() == TAIL_LINES {
            t.lines.pop_front();
        }
        t.lines.push_back(kept);
        drop(t);
        eprintln!("{label}{text}");
    }
}

impl Policy for IsolatedPolicy {
    fn name(&self) -> &str {
        &self.name
    }

    fn schedule(
        &mut self,
        view: &ClusterView<'_>,
        pending: &[Pending],
        out: &mut [Decision],
    ) -> Result<(), PolicyError> {
        if let Some(cost_model) =
            crate::policy::precheck(&self.name, &self.failure, &self.health, pending, out)?
        {
            return Err(self.fail(cost_model));
        }
        self.estimates.clear();
        if self.wants_estimates {
            for p in pending {
                if let Some(h) = self.hosted.get(p.request.model as usize) {
                    for &s in h {
                        self.estimates.push(view.estimate(&p.request, s));
                    }
                }
            }
        }
        let msg = RequestRef::Schedule {
            observed: &self.observed,
            slot: view.slot,
            now_ns: view.now_ns,
            servers: view.servers,
            pending,
            estimates: &self.estimates,
        };
        let t0 = Instant::now();
        let call = || {
            let mut c = format!(
                "slot {} at {:.3} s, {} pending request{}",
                view.slot,
                view.now_ns as f64 / 1e9,
                pending.len(),
                if pending.len() == 1 { "" } else { "s" }
            );
            if !self.observed.is_empty() {
                c.push_str(&format!(
                    ", after {} outcomes delivered to `observe`",
                    self.observed.len()
                ));
            }
            c
        };
        let reply = self.call(&msg, "schedule", &call());
        self.round_trip.record(t0.elapsed(), self.budget);
        self.observed.clear();
        match reply {
            Ok(Reply::Decisions(d)) if d.len() == out.len() => {
                for (o, d) in out.iter_mut().zip(d) {
                    *o = d.into();
                }
                Ok(())
            }
            Ok(Reply::Failed(message)) => {
                let e = HostError::Remote {
                    plugin: self.name.clone(),
                    path: self.path.clone(),
                    message,
                };
                Err(self.fail(e))
            }
            Ok(other) => {
                let e = self.garbled("schedule", format!("{other:?}"));
                Err(self.fail(e))
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    fn observe(&mut self, outcome: &Outcome) {
        if self.failure.is_none() {
            self.observed.push(*outcome);
        }
    }

    fn stats(&self) -> PolicyStats {
        let mut stats = PolicyStats::default();
        if self.failure.is_none() {
            match self.call(
                &RequestRef::Stats {
                    observed: &self.observed,
                },
                "stats",
                "the statistics at the end of the run",
            ) {
                Ok(Reply::Stats(s, failure)) => {
                    stats = s;
                    if let Some(message) = failure {
                        self.health.fail(
                            Kind::Policy,
                            &self.name,
                            HostError::Remote {
                                plugin: self.name.clone(),
                                path: self.path.clone(),
                                message,
                            },
                        );
                    }
                }
                Ok(other) => {
                    let e = self.garbled("stats", format!("{other:?}"));
                    self.health.fail(Kind::Policy, &self.name, e);
                }
                Err(e) => self.health.fail(Kind::Policy, &self.name, e),
            }
        }
        self.round_trip.put(&mut stats, "isolated.round_trip");
        stats.values.insert(
            format!("{WALLCLOCK_PREFIX}plugin.isolated.call_timeout_us"),
            self.timeout.as_nanos() as f64 / 1e3,
        );
        stats
    }
}

impl Drop for IsolatedPolicy {
    fn drop(&mut self) {
        // Closing stdin ends the worker (it destroys the instance and exits).
        if let Some(mut c) = self.io.get_mut().conn.take() {
            drop(c.stdin);
            let _ = wait_bounded(&mut c.child, Duration::from_secs(2));
        }
    }
}
