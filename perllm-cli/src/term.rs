//! Terminal handling: colour choice (NO_COLOR, `--color`), stdout writes that tolerate a closed
//! pipe, and progress bars that stay hidden when stderr is not a terminal or with `--quiet`.

use crate::error::{CliError, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};

/// When to colour output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when writing to a terminal and NO_COLOR is unset.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// Output settings shared by every command.
#[derive(Clone, Copy, Debug)]
pub struct Term {
    /// Colour diagnostics and messages on stderr.
    pub color_stderr: bool,
    /// No progress bars or informational messages.
    pub quiet: bool,
}

fn no_color_env() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

impl Term {
    /// Settings from the global flags and the environment.
    pub fn new(color: ColorChoice, quiet: bool) -> Term {
        let color_stderr = match color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                !no_color_env()
                    && std::io::stderr().is_terminal()
                    && std::env::var("TERM").map_or(true, |t| t != "dumb")
            }
        };
        Term {
            color_stderr,
            quiet,
        }
    }

    /// A progress bar over `len` units, hidden unless stderr is a terminal and not `--quiet`.
    pub fn progress(&self, len: u64, what: &str) -> ProgressBar {
        self.bar(len, what, "eta {eta}", |s| s)
    }

    /// A progress bar over `len` runs whose time left comes from `eta` (what is left, weighed by
    /// size and policy), not from the mean time of the runs so far.
    pub fn progress_eta(
        &self,
        len: u64,
        what: &str,
        eta: std::sync::Arc<crate::eta::Eta>,
    ) -> ProgressBar {
        let pb = self.bar(len, what, "{left}", move |s| {
            s.with_key(
                "left",
                move |_: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = match eta.left_secs() {
                        Some(s) => write!(w, "about {} left", crate::eta::human(s)),
                        None => write!(w, "time left: after the first run"),
                    };
                },
            )
        });
        if !pb.is_hidden() {
            pb.enable_steady_tick(std::time::Duration::from_millis(500));
        }
        pb
    }

    /// A progress bar over `len` units labelled `what`, with `time` (a template part) after the
    /// elapsed time and `style` adding its keys; hidden unless stderr is a terminal and not
    /// `--quiet`.
    fn bar(
        &self,
        len: u64,
        what: &str,
        time: &str,
        style: impl FnOnce(ProgressStyle) -> ProgressStyle,
    ) -> ProgressBar {
        if self.quiet || !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        let bar = if self.color_stderr {
            "{spinner:.green} {msg} [{bar:30.cyan/blue}]"
        } else {
            "{spinner} {msg} [{bar:30}]"
        };
        let template = format!("{bar} {{pos}}/{{len}} ({{elapsed}}, {time})");
        pb.set_style(
            style(ProgressStyle::with_template(&template).expect("valid progress template"))
                .progress_chars("=> "),
        );
        pb.set_message(what.to_string());
        pb
    }

    /// Print an informational line on stderr (suppressed by `--quiet`).
    pub fn info(&self, msg: &str) {
        if !self.quiet {
            eprintln!("{}", safe(msg, false));
        }
    }

    /// Print rendered diagnostics or warnings on stderr as they are (their colours kept when
    /// colour is on), other control characters made visible.
    pub fn eprint_rendered(&self, text: &str) {
        eprint!("{}", safe(text, self.color_stderr));
    }

    /// Print an error on stderr.
    pub fn error(&self, e: &CliError) {
        if let Some(d) = &e.detail {
            self.eprint_rendered(d);
            if !d.ends_with('\n') {
                eprintln!();
            }
        }
        let msg = safe(&e.message, false);
        if self.color_stderr {
            eprintln!("\x1b[1;31merror\x1b[0m: {msg}");
        } else {
            eprintln!("error: {msg}");
        }
    }
}

/// `text` with every control character but newline and tab written as `\xNN`, so that text from
/// input files (a trace header, a scenario name, a path) can never send escape sequences to the
/// terminal (clear it, set its title, ...). With `keep_colours`, colour sequences (`ESC [ ... m`,
/// which our own diagnostics use) are kept.
pub fn safe(text: &str, keep_colours: bool) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(bad) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '\x1b' && keep_colours {
            let body = &rest[1..];
            let sgr = body.strip_prefix('[').and_then(|b| {
                let n = b.find(|ch: char| !(ch.is_ascii_digit() || ch == ';'))?;
                (b.as_bytes()[n] == b'm').then_some(n + 3)
            });
            if let Some(len) = sgr {
                out.push_str(&rest[..len]);
                rest = &rest[len..];
                continue;
            }
        }
        if bad(c) {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    std::borrow::Cow::Owned(out)
}

/// Write `text` to stdout; a closed pipe (`perllm ... | head`) is not an error.
pub fn print_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::run(format!(
            "cannot write to standard output: {}",
            crate::error::io_msg(&e)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::safe;

    #[test]
    fn escape_sequences_are_made_visible() {
        let header = "a,b\x1b[2J\x1b]0;pwned\x07,c\r\u{9b}31m";
        assert_eq!(
            safe(header, false),
            "a,b\\x1b[2J\\x1b]0;pwned\\x07,c\\x0d\\x9b31m"
        );
        assert_eq!(
            safe("\x1b[1;31merror\x1b[0m: \x1b[2J", true),
            "\x1b[1;31merror\x1b[0m: \\x1b[2J"
        );
        assert_eq!(
            safe("two\nlines\tand a tab", false),
            "two\nlines\tand a tab"
        );
    }
}
