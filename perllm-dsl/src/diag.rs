//! Diagnostics: errors and warnings that point into the scenario's source, rendered with miette.

use crate::ast::Span;
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};
use std::fmt;
use std::sync::Arc;

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Suspicious but legal input; the scenario still loads.
    Warning,
    /// The scenario cannot be loaded.
    Error,
}

/// Stable diagnostic codes (shown as `perllm::<code>`).
pub mod codes {
    /// Input that does not follow the grammar.
    pub const SYNTAX: &str = "perllm::syntax";
    /// The file cannot be read, or is not UTF-8 text.
    pub const IO: &str = "perllm::io";
    /// Brackets nested deeper than the parser allows.
    pub const NESTING: &str = "perllm::nesting";
    /// A quantity in the wrong dimension, an unknown unit, or a missing unit.
    pub const UNIT: &str = "perllm::unit";
    /// A value of the wrong shape (a list where a number is expected, ...).
    pub const TYPE: &str = "perllm::type";
    /// A name that refers to nothing.
    pub const UNKNOWN_REF: &str = "perllm::unknown-reference";
    /// A key a block does not have.
    pub const UNKNOWN_KEY: &str = "perllm::unknown-key";
    /// An item kind the language does not have.
    pub const UNKNOWN_ITEM: &str = "perllm::unknown-item";
    /// A required key or block that is absent.
    pub const MISSING: &str = "perllm::missing";
    /// Two things with the same name, or a key given twice.
    pub const DUPLICATE: &str = "perllm::duplicate";
    /// A family whose members collide with another server.
    pub const FAMILY_OVERLAP: &str = "perllm::family-overlap";
    /// A value out of its allowed range (zero, negative, above 100%, ...).
    pub const RANGE: &str = "perllm::range";
    /// Shares that do not sum to 100%.
    pub const SHARES: &str = "perllm::shares";
    /// A model no server hosts.
    pub const UNHOSTED: &str = "perllm::unhosted-model";
    /// Models whose weights do not fit in a server's memory.
    pub const MEMORY: &str = "perllm::model-memory";
    /// A product of two variables, or another non-linear objective or constraint.
    pub const NONLINEAR: &str = "perllm::nonlinear";
    /// A problem in an objective or constraint other than non-linearity.
    pub const OBJECTIVE: &str = "perllm::objective";
    /// A problem in a referenced data file (trace, bandwidth series).
    pub const DATA_FILE: &str = "perllm::data-file";
    /// A `--set` override that names no key or does not parse.
    pub const OVERRIDE: &str = "perllm::override";
    /// A problem found by perllm-core's final scenario validation.
    pub const SCENARIO: &str = "perllm::scenario";
    /// Warning: a deadline no server can meet.
    pub const TIGHT_DEADLINE: &str = "perllm::tight-deadline";
    /// More problems were found than are shown.
    pub const TRUNCATED: &str = "perllm::truncated";
    /// Warning: a value that has no effect.
    pub const UNUSED: &str = "perllm::unused";
    /// Warning: an old spelling, still accepted, and the one to write instead.
    pub const RENAMED: &str = "perllm::renamed";
}

/// A label: a span with an optional message.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    /// Where.
    pub span: Span,
    /// What to say there.
    pub text: Option<String>,
}

/// One source text (a scenario file, or the text of a `--set` override).
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// Name shown in messages (usually the path).
    pub name: String,
    /// The text.
    pub text: Arc<str>,
}

/// The table of sources spans refer to.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    files: Vec<SourceFile>,
}

impl Sources {
    /// Add a source and return its index.
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<Arc<str>>) -> u32 {
        self.files.push(SourceFile {
            name: name.into(),
            text: text.into(),
        });
        (self.files.len() - 1) as u32
    }
    /// A source by index.
    pub fn get(&self, src: u32) -> &SourceFile {
        &self.files[src as usize]
    }
    /// The text a span covers ("" if out of range).
    pub fn slice(&self, span: Span) -> &str {
        let t = &self.get(span.src).text;
        t.get(span.start as usize..span.end as usize).unwrap_or("")
    }
}

/// An error or a warning, with where it is, a stable code and usually a hint.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Stable code, see [`codes`].
    pub code: &'static str,
    /// One-line description.
    pub message: String,
    /// Labelled spans; the first is the primary location. All are in `source`.
    pub labels: Vec<(SourceSpan, Option<String>)>,
    /// A hint on how to fix it.
    pub help: Option<String>,
    /// The source the labels point into.
    pub source: Option<NamedSource<Arc<str>>>,
    /// Where the primary label is: (source name, 1-based line, 1-based column).
    pub location: Option<(String, usize, usize)>,
    /// Further diagnostics shown with this one (e.g. the first definition of a duplicate).
    pub related: Vec<Diagnostic>,
}

impl Diagnostic {
    /// Is this an error?
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
    /// `file:line:col: message` (or just the message when it has no location).
    pub fn one_line(&self) -> String {
        match &self.location {
            Some((file, line, col)) => format!("{file}:{line}:{col}: {}", self.message),
            None => self.message.clone(),
        }
    }
    /// Render this one diagnostic (see [`render`]).
    pub fn render(&self, color: bool) -> String {
        render(std::slice::from_ref(self), color)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.source.is_none() || self.labels.is_empty() {
            return None;
        }
        Some(Box::new(self.labels.iter().enumerate().map(
            |(i, (span, text))| {
                if i == 0 {
                    LabeledSpan::new_primary_with_span(text.clone(), *span)
                } else {
                    LabeledSpan::new_with_span(text.clone(), *span)
                }
            },
        )))
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.related.is_empty() {
            return None;
        }
        Some(Box::new(
            self.related.iter().map(|d| d as &dyn miette::Diagnostic),
        ))
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let mut o = offset;
    while !text.is_char_boundary(o) {
        o -= 1;
    }
    let before = &text[..o];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col = text[line_start..o].chars().count() + 1;
    (line, col)
}

/// Builds [`Diagnostic`]s against a [`Sources`] table.
#[derive(Clone, Debug)]
pub struct DiagBuilder {
    diag: Diagnostic,
    src: Option<u32>,
}

impl DiagBuilder {
    /// A new error.
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, code, message)
    }
    /// A new error about something given twice: `again` labelled "VERB again here", `first`
    /// "first VERB here".
    pub fn twice(
        code: &'static str,
        message: impl Into<String>,
        again: Span,
        first: Span,
        verb: &str,
    ) -> Self {
        Self::error(code, message)
            .label(again, format!("{verb} again here"))
            .label(first, format!("first {verb} here"))
    }
    /// A new warning.
    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, code, message)
    }
    fn new(severity: Severity, code: &'static str, message: impl Into<String>) -> Self {
        DiagBuilder {
            diag: Diagnostic {
                severity,
                code,
                message: message.into(),
                labels: Vec::new(),
                help: None,
                source: None,
                location: None,
                related: Vec::new(),
            },
            src: None,
        }
    }
    /// Add a label (labels in a source other than the first label's are dropped).
    pub fn label(mut self, span: Span, text: impl Into<String>) -> Self {
        let t: String = text.into();
        self.push_label(span, if t.is_empty() { None } else { Some(t) });
        self
    }
    /// Add a label without text.
    pub fn at(mut self, span: Span) -> Self {
        self.push_label(span, None);
        self
    }
    fn push_label(&mut self, span: Span, text: Option<String>) {
        match self.src {
            None => self.src = Some(span.src),
            Some(s) if s != span.src => return,
            Some(_) => {}
        }
        self.diag.labels.push((
            SourceSpan::new((span.start as usize).into(), span.len()),
            text,
        ));
    }
    /// Add a hint.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.diag.help = Some(help.into());
        self
    }
    /// Add a hint if there is one.
    pub fn help_opt(mut self, help: Option<String>) -> Self {
        if let Some(h) = help {
            self.diag.help = Some(h);
        }
        self
    }
    /// Attach a related diagnostic.
    pub fn related(mut self, d: Diagnostic) -> Self {
        self.diag.related.push(d);
        self
    }
    /// True if a label was added.
    pub fn has_labels(&self) -> bool {
        !self.diag.labels.is_empty()
    }
    /// Prefix the message (e.g. with a file name, for diagnostics that point nowhere).
    pub fn prefix(mut self, p: &str) -> Self {
        self.diag.message = format!("{p}{}", self.diag.message);
        self
    }
    /// Finish against the source table.
    pub fn build(mut self, sources: &Sources) -> Diagnostic {
        if let Some(src) = self.src {
            let f = sources.get(src);
            self.diag.source = Some(NamedSource::new(f.name.clone(), f.text.clone()));
            if let Some((span, _)) = self.diag.labels.first() {
                let (line, col) = line_col(&f.text, span.offset());
                self.diag.location = Some((f.name.clone(), line, col));
            }
        }
        self.diag
    }
}

/// Render diagnostics the way `perllm check` prints them: miette's graphical report with the file,
/// line and column, the offending line with a caret, the code and the help text.
pub fn render(diags: &[Diagnostic], color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_context_lines(1);
    let mut out = String::new();
    for d in diags {
        if handler.render_report(&mut out, d).is_err() {
            out.push_str(&d.to_string());
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

/// Edit distance, for "did you mean" suggestions.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The closest candidate to `name`, if it is close enough to be a plausible typo.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    if name.len() > 64 {
        return None;
    }
    let lname = name.to_ascii_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for c in candidates.into_iter().take(100_000) {
        if c.len() > 64 {
            continue;
        }
        let d = levenshtein(&lname, &c.to_ascii_lowercase());
        let limit = (name.chars().count().max(c.chars().count()) / 3).max(1);
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// "did you mean `x`?" help text.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    suggest(name, candidates).map(|s| format!("did you mean `{s}`?"))
}
