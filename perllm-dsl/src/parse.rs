//! The pest parser and the construction of the spanned syntax tree.

use crate::ast::*;
use crate::diag::{DiagBuilder, Diagnostic, Sources, codes};
use pest::Parser as _;
use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};
use std::cell::RefCell;

mod fast;

mod grammar {
    #![allow(missing_docs)]
    #[derive(pest_derive::Parser)]
    #[grammar = "grammar.pest"]
    pub struct Grammar;
}
use grammar::{Grammar, Rule};

/// Deepest bracket nesting the parser accepts. Real scenarios need fewer than ten levels; the
/// limit keeps the recursive-descent parser far away from the end of the stack.
pub const MAX_NESTING: usize = 64;

/// Largest source accepted, in bytes.
pub const MAX_SOURCE_BYTES: usize = 256 << 20;

/// The bytes the bracket scan stops at: string quotes, comment starts and brackets.
const SCAN_STOPS: [bool; 256] = {
    let mut t = [false; 256];
    let stops = b"\"#/()[]{}";
    let mut k = 0;
    while k < stops.len() {
        t[stops[k] as usize] = true;
        k += 1;
    }
    t
};

/// The brackets of `text` outside strings and comments, in order, with their offsets. `#` starts
/// a comment in both syntaxes; `//` only where `slash_comments` is set (the DSL, not TOML).
fn code_brackets(text: &str, slash_comments: bool) -> impl Iterator<Item = (usize, u8)> + '_ {
    let b = text.as_bytes();
    let mut i = 0;
    let line_end = move |i: usize| {
        b[i..]
            .iter()
            .position(|&c| c == b'\n')
            .map_or(b.len(), |k| i + k)
    };
    std::iter::from_fn(move || {
        loop {
            i += b.get(i..)?.iter().position(|&c| SCAN_STOPS[c as usize])?;
            let at = i;
            match b[i] {
                b'"' => {
                    i += 1;
                    while i < b.len() && b[i] != b'"' && b[i] != b'\n' {
                        if b[i] == b'\\' {
                            i += 1;
                        }
                        i += 1;
                    }
                }
                b'/' if !slash_comments || b.get(i + 1) != Some(&b'/') => {}
                b'#' | b'/' => i = line_end(i),
                c => {
                    i += 1;
                    return Some((at, c));
                }
            }
            i += 1;
        }
    })
}

/// Check bracket depth (outside strings and comments). Returns the offset of the first bracket
/// that goes deeper than [`MAX_NESTING`].
pub fn too_deep(text: &str, toml_comments: bool) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in code_brackets(text, !toml_comments) {
        if matches!(c, b'(' | b'[' | b'{') {
            depth += 1;
            if depth > MAX_NESTING {
                return Some(i);
            }
        } else {
            depth = depth.saturating_sub(1);
        }
    }
    None
}

/// The first opening bracket that is never closed (outside strings and comments), if any.
pub fn unclosed_bracket(text: &str) -> Option<(usize, char)> {
    let mut stack: Vec<(usize, u8)> = Vec::new();
    for (i, c) in code_brackets(text, true) {
        let open = match c {
            b')' => b'(',
            b']' => b'[',
            b'}' => b'{',
            _ => {
                stack.push((i, c));
                continue;
            }
        };
        if stack.last().is_some_and(|t| t.1 == open) {
            stack.pop();
        }
    }
    stack.first().map(|&(i, c)| (i, c as char))
}

fn nesting_error(sources: &Sources, src: u32, at: usize) -> Diagnostic {
    DiagBuilder::error(
        codes::NESTING,
        format!("brackets are nested more than {MAX_NESTING} levels deep"),
    )
    .label(Span::new(src, at, at + 1), "too deep here")
    .help("a scenario never needs this much nesting; check for unbalanced or generated brackets")
    .build(sources)
}

fn human(rule: Rule) -> &'static str {
    match rule {
        Rule::EOI => "end of input",
        Rule::item | Rule::file => "an item such as `server NAME { ... }`",
        Rule::ident | Rule::item_name | Rule::key => "a name",
        Rule::block | Rule::lbrace => "`{`",
        Rule::rbrace => "`}`",
        Rule::entry | Rule::assign | Rule::nested | Rule::constraint | Rule::constraint_kw => {
            "an entry such as `key = value`"
        }
        Rule::assign_op => "`=`",
        Rule::unit => "a unit such as `ms` or `s`",
        Rule::plus_minus
        | Rule::add
        | Rule::sub
        | Rule::mul
        | Rule::times
        | Rule::le
        | Rule::ge
        | Rule::eq => "an operator",
        Rule::lparen => "`(`",
        Rule::rparen => "`)`",
        Rule::rbracket => "`]`",
        Rule::tuple_comma => "`,`",
        Rule::arg | Rule::named_arg => "an argument",
        Rule::family | Rule::range_dots => "`..`",
        Rule::int => "an integer",
        Rule::str_inner | Rule::string => "a string",
        _ => "a value",
    }
}

fn syntax_error(
    sources: &Sources,
    src: u32,
    base: usize,
    e: pest::error::Error<Rule>,
) -> Diagnostic {
    use pest::error::{ErrorVariant, InputLocation};
    let text = &sources.get(src).text;
    let (start, end) = match e.location {
        InputLocation::Pos(p) => (p + base, p + base),
        InputLocation::Span((s, e)) => (s + base, e + base),
    };
    // Point at the offending character (or the end of input).
    let end = if end > start {
        end
    } else {
        let mut e = start + 1;
        while e < text.len() && !text.is_char_boundary(e) {
            e += 1;
        }
        e.min(text.len())
    };
    let found = match text.get(start..).and_then(|t| t.chars().next()) {
        None => "end of input".to_string(),
        Some('\n') | Some('\r') => "end of line".to_string(),
        Some(c) if c.is_control() || c == '\u{FFFD}' => format!("the character U+{:04X}", c as u32),
        Some(c) => format!("`{c}`"),
    };
    let expected = match &e.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            let mut words: Vec<&str> = Vec::new();
            for r in positives {
                let w = human(*r);
                if !words.contains(&w) {
                    words.push(w);
                }
            }
            if words.contains(&"a value") {
                // Brackets, names and strings all start values: say "a value" once.
                words.retain(|w| !matches!(*w, "`{`" | "`(`" | "a name" | "a string"));
            }
            words
        }
        ErrorVariant::CustomError { .. } => Vec::new(),
    };
    let msg = if expected.is_empty() {
        format!("unexpected {found}")
    } else {
        format!("expected {}, found {found}", join_or(&expected))
    };
    let at_end = start >= text.len() && start > 0;
    let mut d = if at_end {
        // Point at the last character: a zero-width label at the end is not drawn.
        let mut s = text.len() - 1;
        while !text.is_char_boundary(s) {
            s -= 1;
        }
        DiagBuilder::error(codes::SYNTAX, msg.clone())
            .label(Span::new(src, s, text.len()), "the input ends here")
    } else {
        DiagBuilder::error(codes::SYNTAX, msg.clone())
            .label(Span::new(src, start, end), "unexpected here")
    };
    if let Some((at, c)) = unclosed_bracket(text)
        && at + 1 < start
        && at >= base
    {
        let close = match c {
            '(' => ')',
            '[' => ']',
            _ => '}',
        };
        return d
            .label(
                Span::new(src, at, at + 1),
                format!("this `{c}` is never closed"),
            )
            .help(format!("add the missing `{close}`"))
            .build(sources);
    }
    if found.starts_with("`\"") || text.get(start..).is_some_and(|t| t.starts_with('"')) {
        d = d.help("strings are written in double quotes on one line, like `\"traces/azure.csv\"`");
    } else if expected.contains(&"`=`") {
        d = d.help("entries are written `key = value`");
    } else if expected.contains(&"`}`") && expected.contains(&"an operator") {
        d = d.help("separate entries with a new line or a comma");
    }
    d.build(sources)
}

fn join_or(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [a] => a.to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

struct Builder<'a> {
    src: u32,
    base: usize,
    sources: &'a Sources,
    errors: RefCell<Vec<Diagnostic>>,
    pratt: PrattParser<Rule>,
}

impl<'a> Builder<'a> {
    fn new(sources: &'a Sources, src: u32, base: usize) -> Self {
        let pratt = PrattParser::new()
            .op(Op::infix(Rule::le, Assoc::Left)
                | Op::infix(Rule::ge, Assoc::Left)
                | Op::infix(Rule::eq, Assoc::Left))
            .op(Op::infix(Rule::plus_minus, Assoc::Left))
            .op(Op::infix(Rule::add, Assoc::Left) | Op::infix(Rule::sub, Assoc::Left))
            .op(Op::infix(Rule::mul, Assoc::Left) | Op::infix(Rule::times, Assoc::Left))
            .op(Op::prefix(Rule::neg));
        Builder {
            src,
            base,
            sources,
            errors: RefCell::new(Vec::new()),
            pratt,
        }
    }

    fn span(&self, p: &Pair<'_, Rule>) -> Span {
        let s = p.as_span();
        Span::new(self.src, s.start() + self.base, s.end() + self.base)
    }

    fn ident(&self, p: Pair<'_, Rule>) -> Ident {
        Ident {
            name: p.as_str().to_string(),
            span: self.span(&p),
        }
    }

    fn err(&self, d: DiagBuilder) {
        // A pathological input (a chain of 50,000 comparisons) reports its first few problems only.
        let mut errs = self.errors.borrow_mut();
        if errs.len() < 20 {
            errs.push(d.build(self.sources));
        }
    }

    fn file(&self, p: Pair<'_, Rule>) -> File {
        let mut items = Vec::new();
        for it in p.into_inner() {
            if it.as_rule() == Rule::item {
                items.push(self.item(it));
            }
        }
        File { items }
    }

    fn item(&self, p: Pair<'_, Rule>) -> Item {
        let span = self.span(&p);
        let mut inner = p.into_inner();
        let kind = self.ident(inner.next().expect("item kind"));
        let mut name = None;
        let mut body = None;
        for q in inner {
            match q.as_rule() {
                Rule::item_name => name = Some(self.item_name(q)),
                Rule::block => body = Some(self.block(q)),
                _ => {}
            }
        }
        Item {
            kind,
            name,
            body: body.expect("item block"),
            span,
        }
    }

    fn item_name(&self, p: Pair<'_, Rule>) -> ItemName {
        let span = self.span(&p);
        let mut name = None;
        let mut range = None;
        for q in p.into_inner() {
            match q.as_rule() {
                Rule::ident => name = Some(self.ident(q)),
                Rule::string => {
                    let sp = self.span(&q);
                    name = Some(Ident {
                        name: unescape(str_inner(q)),
                        span: sp,
                    });
                }
                Rule::family => {
                    let fspan = self.span(&q);
                    let ints: Vec<_> = q
                        .into_inner()
                        .filter(|r| r.as_rule() == Rule::int)
                        .collect();
                    if ints.len() == 2 {
                        let mut vals = [0u64; 2];
                        let mut ok = true;
                        for (k, i) in ints.iter().enumerate() {
                            match i.as_str().parse::<u64>() {
                                Ok(v) => vals[k] = v,
                                Err(_) => {
                                    ok = false;
                                    self.err(
                                        DiagBuilder::error(
                                            codes::RANGE,
                                            "family bound is too large",
                                        )
                                        .label(self.span(i), "does not fit in 64 bits"),
                                    );
                                }
                            }
                        }
                        if ok {
                            range = Some((vals[0], vals[1], fspan));
                        }
                    }
                }
                _ => {}
            }
        }
        ItemName {
            name: name.expect("item name"),
            range,
            span,
        }
    }

    fn block(&self, p: Pair<'_, Rule>) -> Block {
        let span = self.span(&p);
        let entries = p
            .into_inner()
            .filter(|q| q.as_rule() == Rule::entry)
            .map(|q| self.entry(q))
            .collect();
        Block { entries, span }
    }

    fn entry(&self, p: Pair<'_, Rule>) -> Entry {
        let span = self.span(&p);
        let q = p.into_inner().next().expect("entry body");
        let rule = q.as_rule();
        let mut it = q.into_inner();
        let (key, value, is_constraint) = match rule {
            Rule::constraint => {
                let kw = self.ident(it.next().expect("keyword"));
                let value = self.expr(it.next().expect("constraint expression"));
                (kw, value, true)
            }
            Rule::assign => {
                let key = self.key(it.next().expect("key"));
                let _op = it.next();
                (key, self.expr(it.next().expect("value")), false)
            }
            Rule::nested => {
                let key = self.key(it.next().expect("key"));
                let b = self.block(it.next().expect("block"));
                return Entry::nested(key, b, span);
            }
            r => unreachable!("entry rule {r:?}"),
        };
        Entry {
            key,
            value,
            is_constraint,
            span,
        }
    }

    fn key(&self, p: Pair<'_, Rule>) -> Ident {
        let span = self.span(&p);
        let q = p.into_inner().next().expect("key body");
        match q.as_rule() {
            Rule::string => Ident {
                name: unescape(str_inner(q)),
                span,
            },
            _ => Ident {
                name: q.as_str().to_string(),
                span,
            },
        }
    }

    fn expr(&self, p: Pair<'_, Rule>) -> Expr {
        self.pratt
            .map_primary(|q| self.primary(q))
            .map_prefix(|op, rhs| {
                let span = self.span(&op).to(rhs.span);
                Expr {
                    kind: ExprKind::Neg(Box::new(rhs)),
                    span,
                }
            })
            .map_infix(|lhs, op, rhs| self.infix(lhs, op, rhs))
            .parse(p.into_inner())
    }

    fn infix(&self, lhs: Expr, op: Pair<'_, Rule>, rhs: Expr) -> Expr {
        let op_span = self.span(&op);
        let op = match op.as_rule() {
            Rule::add => InfixOp::Add,
            Rule::sub => InfixOp::Sub,
            Rule::mul => InfixOp::Mul,
            Rule::plus_minus => InfixOp::PlusMinus,
            Rule::times => InfixOp::Times,
            Rule::le => InfixOp::Le,
            Rule::ge => InfixOp::Ge,
            _ => InfixOp::Eq,
        };
        match combine(lhs, op, op_span, rhs) {
            Ok(e) => e,
            Err((lhs, what)) => {
                self.err(
                    DiagBuilder::error(codes::SYNTAX, what)
                        .label(op_span, "second operator here")
                        .help("split it into two entries"),
                );
                lhs
            }
        }
    }

    fn primary(&self, p: Pair<'_, Rule>) -> Expr {
        let span = self.span(&p);
        let kind = match p.as_rule() {
            Rule::quantity => {
                let mut it = p.into_inner();
                let num = it.next().expect("number");
                let text = num.as_str().to_string();
                let value = text.parse::<f64>().unwrap_or(f64::NAN);
                let unit = it.next().map(|u| self.ident(u));
                ExprKind::Quantity { value, text, unit }
            }
            Rule::string => ExprKind::Str(unescape(str_inner(p))),
            Rule::boolean => ExprKind::Bool(p.as_str() == "true"),
            Rule::path => ExprKind::Path(p.into_inner().map(|q| self.ident(q)).collect()),
            Rule::call => {
                let mut it = p.into_inner();
                let name = self.ident(it.next().expect("call name"));
                let mut args = Vec::new();
                for a in it {
                    if a.as_rule() != Rule::arg {
                        continue;
                    }
                    let q = a.into_inner().next().expect("arg body");
                    if q.as_rule() == Rule::named_arg {
                        let mut ni = q.into_inner();
                        let n = self.ident(ni.next().expect("arg name"));
                        let _op = ni.next();
                        let v = self.expr(ni.next().expect("arg value"));
                        args.push(Arg {
                            name: Some(n),
                            value: v,
                        });
                    } else {
                        args.push(Arg {
                            name: None,
                            value: self.expr(q),
                        });
                    }
                }
                ExprKind::Call { name, args }
            }
            Rule::list => ExprKind::List(
                p.into_inner()
                    .filter(|q| q.as_rule() == Rule::expr)
                    .map(|q| self.expr(q))
                    .collect(),
            ),
            Rule::tuple => {
                let mut commas = 0;
                let mut elems = Vec::new();
                for q in p.into_inner() {
                    match q.as_rule() {
                        Rule::expr => elems.push(self.expr(q)),
                        Rule::tuple_comma => commas += 1,
                        _ => {}
                    }
                }
                if commas == 0 && elems.len() == 1 {
                    // Parenthesised expression: keep the inner expression, widen its span.
                    let mut e = elems.pop().expect("one element");
                    e.span = span;
                    return e;
                }
                ExprKind::Tuple(elems)
            }
            Rule::map => {
                let entries = p
                    .into_inner()
                    .filter(|q| q.as_rule() == Rule::entry)
                    .map(|q| self.entry(q))
                    .collect();
                ExprKind::Map(Block { entries, span })
            }
            Rule::expr => return self.expr(p),
            r => unreachable!("primary rule {r:?}"),
        };
        Expr { kind, span }
    }
}

/// Infix operators, as both parsers fold them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InfixOp {
    Add,
    Sub,
    Mul,
    PlusMinus,
    Times,
    Le,
    Ge,
    Eq,
}

impl InfixOp {
    /// Binding power (all left-associative), as in [`Builder::new`]'s Pratt parser.
    fn precedence(self) -> u8 {
        match self {
            InfixOp::Le | InfixOp::Ge | InfixOp::Eq => 0,
            InfixOp::PlusMinus => 1,
            InfixOp::Add | InfixOp::Sub => 2,
            InfixOp::Mul | InfixOp::Times => 3,
        }
    }
}

/// `lhs op rhs`: sums and products stay n-ary; the other operators cannot be chained (then the
/// error gives back `lhs` and what to say).
fn combine(lhs: Expr, op: InfixOp, op_span: Span, rhs: Expr) -> Result<Expr, (Expr, &'static str)> {
    let span = lhs.span.to(rhs.span);
    let bop = match op {
        InfixOp::Add | InfixOp::Sub => {
            let neg = op == InfixOp::Sub;
            return Ok(match lhs.kind {
                ExprKind::Sum(mut v) => {
                    v.push((neg, rhs));
                    Expr {
                        kind: ExprKind::Sum(v),
                        span,
                    }
                }
                _ => Expr {
                    kind: ExprKind::Sum(vec![(false, lhs), (neg, rhs)]),
                    span,
                },
            });
        }
        InfixOp::Mul => {
            return Ok(match lhs.kind {
                ExprKind::Product(mut v) => {
                    v.push(rhs);
                    Expr {
                        kind: ExprKind::Product(v),
                        span,
                    }
                }
                _ => Expr {
                    kind: ExprKind::Product(vec![lhs, rhs]),
                    span,
                },
            });
        }
        InfixOp::PlusMinus => BinOp::PlusMinus,
        InfixOp::Times => BinOp::Times,
        InfixOp::Le => BinOp::Le,
        InfixOp::Ge => BinOp::Ge,
        InfixOp::Eq => BinOp::Eq,
    };
    if let ExprKind::Binary { op: prev, .. } = &lhs.kind {
        let cmp = |o: BinOp| matches!(o, BinOp::Le | BinOp::Ge | BinOp::Eq);
        if *prev == bop || (cmp(*prev) && cmp(bop)) {
            let what = if cmp(bop) {
                "comparisons cannot be chained"
            } else {
                "this operator cannot be chained"
            };
            return Err((lhs, what));
        }
    }
    Ok(Expr {
        kind: ExprKind::Binary {
            op: bop,
            op_span,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        },
        span,
    })
}

fn str_inner(p: Pair<'_, Rule>) -> &str {
    p.into_inner().next().map(|q| q.as_str()).unwrap_or("")
}

fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some(o) => out.push(o),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn check_input(
    sources: &Sources,
    src: u32,
    text: &str,
    base: usize,
    toml_comments: bool,
) -> Result<(), Vec<Diagnostic>> {
    if text.len() > MAX_SOURCE_BYTES {
        return Err(vec![
            DiagBuilder::error(
                codes::IO,
                format!(
                    "the input is {} MiB; the limit is {} MiB",
                    text.len() >> 20,
                    MAX_SOURCE_BYTES >> 20
                ),
            )
            .build(sources),
        ]);
    }
    if let Some(at) = too_deep(text, toml_comments) {
        return Err(vec![nesting_error(sources, src, at + base)]);
    }
    if let Some((at, len)) = long_word(text) {
        // No label: a snippet would print the word's whole line.
        let line = text[..at].matches('\n').count() + 1;
        let col = at - text[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
        let excerpt: String = text[at..].chars().take(40).collect();
        return Err(vec![
            DiagBuilder::error(
                codes::SYNTAX,
                format!(
                    "a {len}-byte word at line {line}, column {col} (`{excerpt}…`): names, \
                     keys and numbers are at most {MAX_WORD_BYTES} bytes"
                ),
            )
            .help("names are at most 256 bytes; check for a generated or truncated file")
            .build(sources),
        ]);
    }
    Ok(())
}

/// Longest run of name characters (letters, digits, `_`, `-`, `.`) the parser accepts. Names are
/// at most 256 bytes; a 250 MB identifier took 5 GB through the parser and the lowering.
const MAX_WORD_BYTES: usize = 65_536;

/// The first run of name characters longer than [`MAX_WORD_BYTES`]: its start and length.
fn long_word(text: &str) -> Option<(usize, usize)> {
    let mut start = 0;
    for (i, c) in text.bytes().chain(std::iter::once(b' ')).enumerate() {
        if !(c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')) {
            if i - start > MAX_WORD_BYTES {
                return Some((start, i - start));
            }
            start = i + 1;
        }
    }
    None
}

/// Parse a whole `.perllm` source.
pub fn parse_file(sources: &Sources, src: u32) -> Result<File, Vec<Diagnostic>> {
    let text = sources.get(src).text.clone();
    check_input(sources, src, &text, 0, false)?;
    // The common case (no error) by hand, 5x faster; pest for everything else (fast.rs).
    if let Some(file) = fast::parse(&text, src) {
        return Ok(file);
    }
    parse_file_pest(sources, src, &text)
}

/// [`parse_file`] with pest only (the reference the hand-written parser is tested against).
#[doc(hidden)]
pub fn parse_file_pest(sources: &Sources, src: u32, text: &str) -> Result<File, Vec<Diagnostic>> {
    let mut pairs =
        Grammar::parse(Rule::file, text).map_err(|e| vec![syntax_error(sources, src, 0, e)])?;
    let b = Builder::new(sources, src, 0);
    let file = b.file(pairs.next().expect("file"));
    let errs = b.errors.into_inner();
    if errs.is_empty() { Ok(file) } else { Err(errs) }
}

/// Parse one value written in the language; `text` sits at byte `base` of source `src`.
pub fn parse_value(
    sources: &Sources,
    src: u32,
    text: &str,
    base: usize,
) -> Result<Expr, Vec<Diagnostic>> {
    parse_fragment(
        sources,
        src,
        text,
        base,
        Rule::value_only,
        Rule::expr,
        |b, p| b.expr(p),
    )
}

/// Parse an item name such as `edge[1..5]`; `text` sits at byte `base` of source `src`.
pub fn parse_item_name(
    sources: &Sources,
    src: u32,
    text: &str,
    base: usize,
) -> Result<ItemName, Vec<Diagnostic>> {
    parse_fragment(
        sources,
        src,
        text,
        base,
        Rule::name_only,
        Rule::item_name,
        |b, p| b.item_name(p),
    )
}

/// Parse `text` (at byte `base` of source `src`) as the grammar's `top` rule and build its `inner`
/// pair with `build`: the one-piece parsers (`--set` values, item names).
fn parse_fragment<T>(
    sources: &Sources,
    src: u32,
    text: &str,
    base: usize,
    top: Rule,
    inner: Rule,
    build: impl FnOnce(&Builder, Pair<'_, Rule>) -> T,
) -> Result<T, Vec<Diagnostic>> {
    check_input(sources, src, text, base, false)?;
    let mut pairs =
        Grammar::parse(top, text).map_err(|e| vec![syntax_error(sources, src, base, e)])?;
    let b = Builder::new(sources, src, base);
    let p = pairs
        .next()
        .expect("the top rule")
        .into_inner()
        .find(|p| p.as_rule() == inner)
        .expect("the inner rule");
    let out = build(&b, p);
    let errs = b.errors.into_inner();
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}

/// The hand-written parser alone: `None` where [`parse_file`] falls back to pest (tests).
#[doc(hidden)]
pub fn parse_file_fast(text: &str, src: u32) -> Option<File> {
    fast::parse(text, src)
}
