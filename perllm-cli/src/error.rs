//! The CLI's error type and its mapping to exit codes.
//!
//! Exit codes: 0 success, 1 a run failed (the simulation, a policy or writing an output), 2 bad
//! usage or invalid input (arguments, scenario files, results files, unknown policies).

use std::fmt;
use std::process::ExitCode;

/// What went wrong, and so which exit code the process returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Bad usage or invalid input: exit code 2.
    Input,
    /// A run or writing its output failed: exit code 1.
    Run,
    /// A run failed because of its policy (an error, an invalid decision, a crash or hang of
    /// its plugin): exit code 1. In a study it ends that run only.
    Policy,
}

/// An error shown to the user as one sentence on stderr, optionally preceded by rendered
/// diagnostics (for scenario errors).
#[derive(Debug)]
pub struct CliError {
    /// Exit-code class.
    pub kind: Kind,
    /// One clear sentence.
    pub message: String,
    /// Rendered diagnostics printed before the message, if any.
    pub detail: Option<String>,
}

impl CliError {
    /// Bad usage or invalid input (exit 2).
    pub fn input(message: impl Into<String>) -> Self {
        CliError {
            kind: Kind::Input,
            message: message.into(),
            detail: None,
        }
    }

    /// A failed run or output (exit 1).
    pub fn run(message: impl Into<String>) -> Self {
        CliError {
            kind: Kind::Run,
            message: message.into(),
            detail: None,
        }
    }

    /// A run failed because of its policy (exit 1; in `compare` and `sweep`, that run only).
    pub fn policy(message: impl Into<String>) -> Self {
        CliError {
            kind: Kind::Policy,
            message: message.into(),
            detail: None,
        }
    }

    /// Attach rendered diagnostics.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        let d = detail.into();
        if !d.trim().is_empty() {
            self.detail = Some(d);
        }
        self
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self.kind {
            Kind::Input => ExitCode::from(2),
            Kind::Run | Kind::Policy => ExitCode::from(1),
        }
    }

    /// Writing an output file failed.
    pub fn write(path: &std::path::Path, e: &std::io::Error) -> Self {
        CliError::run(format!("cannot write `{}`: {}", path.display(), io_msg(e)))
    }
}

/// An io error's message without the "(os error N)" suffix, lower-cased first letter.
pub fn io_msg(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    };
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => s,
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// Result alias of the CLI.
pub type Result<T> = std::result::Result<T, CliError>;
