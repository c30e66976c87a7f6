//! A hand-written parser for the common case: a whole `.perllm` file that parses without error.
//!
//! Profiling the load of a 10,000-server file (callgrind, `examples/load_scale.rs`) put 88% of
//! the instructions in pest's generated parser and the construction of the tree from its pairs.
//! This recursive-descent parser implements the same PEG (`grammar.pest`: same ordered choices,
//! same implicit whitespace and comments, same backtracking) and builds the same tree with the
//! same spans, in one pass over the bytes. It gives up (`None`) at the first thing it does not
//! accept, and on anything the tree builder would report (a family bound over 64 bits, a chained
//! comparison): the caller then runs pest, which produces the diagnostics. So pest's grammar stays
//! the reference; a differential test (tests/it/fast_parse.rs) checks that both agree on the
//! examples, the fixtures and thousands of mutations of them.
//!
//! Recursion is bounded by the bracket depth, which the caller checks first (`MAX_NESTING`).

use super::{InfixOp, combine, unescape};
use crate::ast::*;

/// Parse a whole file, or `None` if pest should (an error, or anything unusual).
pub(super) fn parse(text: &str, src: u32) -> Option<File> {
    let p = P {
        b: text.as_bytes(),
        t: text,
        src,
    };
    let mut pos = p.skip(0);
    let mut items = Vec::new();
    while let Some((it, end)) = p.item(pos) {
        items.push(it);
        pos = p.skip(end);
    }
    (pos == p.b.len()).then_some(File { items })
}

struct P<'a> {
    b: &'a [u8],
    t: &'a str,
    src: u32,
}

fn ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

impl P<'_> {
    fn span(&self, start: usize, end: usize) -> Span {
        Span::new(self.src, start, end)
    }

    fn at(&self, i: usize) -> u8 {
        self.b.get(i).copied().unwrap_or(0)
    }

    fn starts(&self, i: usize, s: &str) -> bool {
        self.b.get(i..).is_some_and(|r| r.starts_with(s.as_bytes()))
    }

    /// Implicit whitespace and comments (`WHITESPACE`, `COMMENT`).
    fn skip(&self, mut i: usize) -> usize {
        loop {
            match self.at(i) {
                b' ' | b'\t' | b'\r' | b'\n' => i += 1,
                b'#' => i = self.line_end(i + 1),
                b'/' if self.at(i + 1) == b'/' => i = self.line_end(i + 2),
                0xEF if self.starts(i, "\u{FEFF}") => i += 3,
                _ => return i,
            }
        }
    }

    fn line_end(&self, i: usize) -> usize {
        match self.b[i.min(self.b.len())..]
            .iter()
            .position(|&c| c == b'\n')
        {
            Some(k) => i + k,
            None => self.b.len(),
        }
    }

    /// `ident = @{ (ASCII_ALPHA | "_") ~ (ident_char_nodash | "-" ~ &ident_char_nodash)* }`.
    fn ident_end(&self, i: usize) -> Option<usize> {
        let c = self.at(i);
        if !(c.is_ascii_alphabetic() || c == b'_') {
            return None;
        }
        let nodash = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        let mut j = i + 1;
        loop {
            let c = self.at(j);
            if nodash(c) || (c == b'-' && nodash(self.at(j + 1))) {
                j += 1;
            } else {
                return Some(j);
            }
        }
    }

    fn ident(&self, i: usize) -> Option<(Ident, usize)> {
        let e = self.ident_end(i)?;
        Some((
            Ident {
                name: self.t[i..e].to_string(),
                span: self.span(i, e),
            },
            e,
        ))
    }

    /// `string = ${ "\"" ~ str_inner ~ "\"" }`: (unescaped content, end).
    fn string(&self, i: usize) -> Option<(String, usize)> {
        if self.at(i) != b'"' {
            return None;
        }
        let mut j = i + 1;
        loop {
            match self.at(j) {
                b'"' => break,
                b'\\' => {
                    // `"\\" ~ ANY`: any one character, a newline included.
                    let c = self.t.get(j + 1..)?.chars().next()?;
                    j += 1 + c.len_utf8();
                }
                b'\n' => return None,
                _ if j >= self.b.len() => return None,
                _ => j += self.t[j..].chars().next()?.len_utf8(),
            }
        }
        Some((unescape(&self.t[i + 1..j]), j + 1))
    }

    /// `item = { ident ~ item_name? ~ block }`.
    fn item(&self, i: usize) -> Option<(Item, usize)> {
        let (kind, e) = self.ident(i)?;
        let mut p = self.skip(e);
        let name = match self.item_name(p) {
            Some((n, e)) => {
                p = self.skip(e);
                Some(n)
            }
            None => None,
        };
        let (body, end) = self.block(p)?;
        Some((
            Item {
                kind,
                name,
                body,
                span: self.span(i, end),
            },
            end,
        ))
    }

    /// `item_name = ${ (ident | string) ~ family }`, `family = !{ ("[" ~ int ~ ".." ~ int ~ "]")? }`.
    fn item_name(&self, i: usize) -> Option<(ItemName, usize)> {
        let (name, e) = match self.ident(i) {
            Some(x) => x,
            None => {
                let (s, e) = self.string(i)?;
                (
                    Ident {
                        name: s,
                        span: self.span(i, e),
                    },
                    e,
                )
            }
        };
        let (range, end) = match self.family(e) {
            Some((lo, hi, fe)) => (Some((lo, hi, self.span(e, fe))), fe),
            None => (None, e),
        };
        Some((
            ItemName {
                name,
                range,
                span: self.span(i, end),
            },
            end,
        ))
    }

    /// The family range at `i`, if one is written there. A bound that does not fit in 64 bits
    /// also returns `None` here, which leaves the name without a range: [`Self::item_name`]'s
    /// callers then fail on the `[` and pest reports the bound.
    fn family(&self, i: usize) -> Option<(u64, u64, usize)> {
        if self.at(i) != b'[' {
            return None;
        }
        let int = |j: usize| -> Option<(u64, usize)> {
            let n = self.b[j..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if n == 0 {
                return None;
            }
            Some((self.t[j..j + n].parse().ok()?, j + n))
        };
        let (lo, e) = int(self.skip(i + 1))?;
        let p = self.skip(e);
        if !self.starts(p, "..") {
            return None;
        }
        let (hi, e) = int(self.skip(p + 2))?;
        let p = self.skip(e);
        (self.at(p) == b']').then_some((lo, hi, p + 1))
    }

    /// `block = { "{" ~ (entry ~ sep?)* ~ "}" }`.
    fn block(&self, i: usize) -> Option<(Block, usize)> {
        if self.at(i) != b'{' {
            return None;
        }
        let mut p = self.skip(i + 1);
        let mut entries = Vec::new();
        while let Some((en, e)) = self.entry(p) {
            entries.push(en);
            p = self.skip(e);
            if matches!(self.at(p), b',' | b';') {
                p = self.skip(p + 1);
            }
        }
        if self.at(p) != b'}' {
            return None;
        }
        Some((
            Block {
                entries,
                span: self.span(i, p + 1),
            },
            p + 1,
        ))
    }

    /// `key = ${ ident | string }`.
    fn key(&self, i: usize) -> Option<(Ident, usize)> {
        if let Some(x) = self.ident(i) {
            return Some(x);
        }
        let (s, e) = self.string(i)?;
        Some((
            Ident {
                name: s,
                span: self.span(i, e),
            },
            e,
        ))
    }

    /// `assign_op = { "=" ~ !"=" | ":" }`: the position after it.
    fn assign_op(&self, i: usize) -> Option<usize> {
        match self.at(i) {
            b'=' => {
                let p = self.skip(i + 1);
                (self.at(p) != b'=').then_some(p)
            }
            b':' => Some(i + 1),
            _ => None,
        }
    }

    /// `entry = { assign | nested | constraint }`.
    fn entry(&self, i: usize) -> Option<(Entry, usize)> {
        if let Some((key, ke)) = self.key(i) {
            let p = self.skip(ke);
            // assign = { key ~ assign_op ~ expr }
            let assigned = match self.assign_op(p) {
                Some(op_end) => self.expr(self.skip(op_end))?,
                None => None,
            };
            if let Some((value, e)) = assigned {
                return Some((
                    Entry {
                        key,
                        value,
                        is_constraint: false,
                        span: self.span(i, e),
                    },
                    e,
                ));
            }
            // nested = { key ~ block }
            if let Some((b, e)) = self.block(p) {
                return Some((Entry::nested(key, b, self.span(i, e)), e));
            }
        }
        // constraint = { constraint_kw ~ expr }, constraint_kw = @{ "constraint" ~ !ident_char }
        if self.starts(i, "constraint") && !ident_char(self.at(i + 10)) {
            let kw = Ident {
                name: "constraint".to_string(),
                span: self.span(i, i + 10),
            };
            let (value, e) = self.expr(self.skip(i + 10))??;
            return Some((
                Entry {
                    key: kw,
                    value,
                    is_constraint: true,
                    span: self.span(i, e),
                },
                e,
            ));
        }
        None
    }

    /// `expr = { prefix? ~ primary ~ (infix ~ prefix? ~ primary)* }`, folded by precedence as
    /// parse.rs's Pratt parser does. The outer `None` means "give up and let pest report".
    #[allow(clippy::type_complexity)]
    fn expr(&self, i: usize) -> Option<Option<(Expr, usize)>> {
        let Some((first, mut end)) = self.operand(i) else {
            return Some(None);
        };
        let mut operands = vec![first];
        let mut ops: Vec<(InfixOp, Span)> = Vec::new();
        loop {
            let p = self.skip(end);
            let Some((op, oe)) = self.infix(p) else { break };
            let Some((rhs, re)) = self.operand(self.skip(oe)) else {
                break;
            };
            ops.push((op, self.span(p, oe)));
            operands.push(rhs);
            end = re;
        }
        // pest's `primary ~ (infix ~ ..)*` keeps the whitespace before an empty repetition:
        // with no operator, the expression (and so its entry) ends after the trailing
        // whitespace and comments.
        if ops.is_empty() {
            end = self.skip(end);
        }
        let mut operands = operands.into_iter();
        let mut ops = ops.into_iter().peekable();
        let lhs = operands.next()?;
        let e = climb(lhs, 0, &mut operands, &mut ops)?;
        Some(Some((e, end)))
    }

    /// `prefix? ~ primary`.
    fn operand(&self, i: usize) -> Option<(Expr, usize)> {
        if self.at(i) == b'-' {
            let (rhs, e) = self.primary(self.skip(i + 1))?;
            let span = self.span(i, i + 1).to(rhs.span);
            return Some((
                Expr {
                    kind: ExprKind::Neg(Box::new(rhs)),
                    span,
                },
                e,
            ));
        }
        self.primary(i)
    }

    /// `infix`: the operator at `i` and its end.
    fn infix(&self, i: usize) -> Option<(InfixOp, usize)> {
        Some(match self.at(i) {
            b'+' if self.starts(i, "+/-") => (InfixOp::PlusMinus, i + 3),
            b'+' => (InfixOp::Add, i + 1),
            b'-' => (InfixOp::Sub, i + 1),
            b'*' => (InfixOp::Mul, i + 1),
            b'x' if !ident_char(self.at(i + 1)) => (InfixOp::Times, i + 1),
            b'<' if self.at(i + 1) == b'=' => (InfixOp::Le, i + 2),
            b'>' if self.at(i + 1) == b'=' => (InfixOp::Ge, i + 2),
            b'=' if self.at(i + 1) == b'=' => (InfixOp::Eq, i + 2),
            0xC2 if self.starts(i, "±") => (InfixOp::PlusMinus, i + 2),
            _ => return None,
        })
    }

    /// `primary = _{ quantity | string | boolean | call | path | list | tuple | map }`.
    fn primary(&self, i: usize) -> Option<(Expr, usize)> {
        let c = self.at(i);
        let (kind, end) = if c.is_ascii_digit() || (c == b'.' && self.at(i + 1).is_ascii_digit()) {
            self.quantity(i)?
        } else if c == b'"' {
            let (s, e) = self.string(i)?;
            (ExprKind::Str(s), e)
        } else if (self.starts(i, "true") && !ident_char(self.at(i + 4)))
            || (self.starts(i, "false") && !ident_char(self.at(i + 5)))
        {
            let t = c == b't';
            (ExprKind::Bool(t), i + if t { 4 } else { 5 })
        } else if let Some((name, ne)) = self.ident(i) {
            match self.call_args(self.skip(ne))? {
                Some((args, e)) => (ExprKind::Call { name, args }, e),
                None => self.path(name, ne),
            }
        } else if c == b'[' {
            self.list(i)?
        } else if c == b'(' {
            return self.tuple(i);
        } else if c == b'{' {
            let (b, e) = self.block(i)?;
            (ExprKind::Map(b), e)
        } else {
            return None;
        };
        Some((
            Expr {
                kind,
                span: self.span(i, end),
            },
            end,
        ))
    }

    /// `quantity = ${ number ~ ((" " | "\t")* ~ unit)? }`.
    fn quantity(&self, i: usize) -> Option<(ExprKind, usize)> {
        let digits = |j: usize| {
            self.b[j.min(self.b.len())..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count()
        };
        // number = @{ (DIGIT+ ~ ("." ~ DIGIT+)? | "." ~ DIGIT+) ~ (("e" | "E") ~ ("+" | "-")? ~ DIGIT+)? }
        let mut j = i;
        let d = digits(j);
        if d > 0 {
            j += d;
            if self.at(j) == b'.' && digits(j + 1) > 0 {
                j += 1 + digits(j + 1);
            }
        } else if self.at(j) == b'.' && digits(j + 1) > 0 {
            j += 1 + digits(j + 1);
        } else {
            return None;
        }
        if matches!(self.at(j), b'e' | b'E') {
            let mut k = j + 1;
            if matches!(self.at(k), b'+' | b'-') {
                k += 1;
            }
            let d = digits(k);
            if d > 0 {
                j = k + d;
            }
        }
        let text = self.t[i..j].to_string();
        let value = text.parse::<f64>().unwrap_or(f64::NAN);
        let mut k = j;
        while matches!(self.at(k), b' ' | b'\t') {
            k += 1;
        }
        match self.unit_end(k) {
            Some(ue) => Some((
                ExprKind::Quantity {
                    value,
                    text,
                    unit: Some(Ident {
                        name: self.t[k..ue].to_string(),
                        span: self.span(k, ue),
                    }),
                },
                ue,
            )),
            None => Some((
                ExprKind::Quantity {
                    value,
                    text,
                    unit: None,
                },
                j,
            )),
        }
    }

    /// `unit = @{ "%" | "/" ~ unit_word | unit_word ~ ("/" ~ unit_word)? }`,
    /// `unit_word = _{ (ASCII_ALPHA | "µ")+ }`.
    fn unit_end(&self, i: usize) -> Option<usize> {
        let word = |j: usize| -> Option<usize> {
            let mut k = j;
            loop {
                if self.at(k).is_ascii_alphabetic() {
                    k += 1;
                } else if self.starts(k, "µ") {
                    k += 2;
                } else {
                    break;
                }
            }
            (k > j).then_some(k)
        };
        match self.at(i) {
            b'%' => Some(i + 1),
            b'/' => word(i + 1),
            _ => {
                let e = word(i)?;
                if self.at(e) == b'/'
                    && let Some(e2) = word(e + 1)
                {
                    return Some(e2);
                }
                Some(e)
            }
        }
    }

    /// `path = ${ ident ~ ("." ~ ident)* }`, its first ident already read.
    fn path(&self, first: Ident, mut end: usize) -> (ExprKind, usize) {
        let mut parts = vec![first];
        while self.at(end) == b'.'
            && let Some((id, e)) = self.ident(end + 1)
        {
            parts.push(id);
            end = e;
        }
        (ExprKind::Path(parts), end)
    }

    /// The rest of `call = { ident ~ "(" ~ (arg ~ ("," ~ arg)* ~ ","?)? ~ ")" }` from `i`:
    /// `Some(None)` if no call starts here (a path then), outer `None` to give up.
    #[allow(clippy::type_complexity)]
    fn call_args(&self, i: usize) -> Option<Option<(Vec<Arg>, usize)>> {
        if self.at(i) != b'(' {
            return Some(None);
        }
        let mut args = Vec::new();
        let mut p = self.skip(i + 1);
        if let Some((a, e)) = self.arg(p)? {
            args.push(a);
            (p, _) = self.rest_of_list(&mut args, e, Self::arg)?;
        }
        if self.at(p) != b')' {
            // pest would try `path` next, then fail on the `(`: let it report.
            return None;
        }
        Some(Some((args, p + 1)))
    }

    /// `arg = { named_arg | expr }`, `named_arg = { ident ~ assign_op ~ expr }`.
    #[allow(clippy::type_complexity)]
    fn arg(&self, i: usize) -> Option<Option<(Arg, usize)>> {
        if let Some((n, ne)) = self.ident(i)
            && let Some(op_end) = self.assign_op(self.skip(ne))
            && let Some((v, e)) = self.expr(self.skip(op_end))?
        {
            return Some(Some((
                Arg {
                    name: Some(n),
                    value: v,
                },
                e,
            )));
        }
        Some(self.expr(i)?.map(|(v, e)| {
            (
                Arg {
                    name: None,
                    value: v,
                },
                e,
            )
        }))
    }

    /// The rest of a comma-separated list whose first item ended at `p`: `("," ~ item)* ~ ","?`.
    /// Pushes the further items onto `items`; returns the position after the list (blanks and a
    /// trailing comma skipped) and whether it ended in a trailing comma. `None` to give up.
    fn rest_of_list<T>(
        &self,
        items: &mut Vec<T>,
        mut p: usize,
        item: impl Fn(&Self, usize) -> Option<Option<(T, usize)>>,
    ) -> Option<(usize, bool)> {
        loop {
            let q = self.skip(p);
            if self.at(q) != b',' {
                break;
            }
            match item(self, self.skip(q + 1))? {
                Some((x, e)) => {
                    items.push(x);
                    p = e;
                }
                None => break,
            }
        }
        p = self.skip(p);
        if self.at(p) == b',' {
            return Some((self.skip(p + 1), true));
        }
        Some((p, false))
    }

    /// `list = { "[" ~ (expr ~ ("," ~ expr)* ~ ","?)? ~ "]" }`.
    fn list(&self, i: usize) -> Option<(ExprKind, usize)> {
        let mut elems = Vec::new();
        let mut p = self.skip(i + 1);
        if let Some((x, e)) = self.expr(p)? {
            elems.push(x);
            (p, _) = self.rest_of_list(&mut elems, e, Self::expr)?;
        }
        (self.at(p) == b']').then_some((ExprKind::List(elems), p + 1))
    }

    /// `tuple = { "(" ~ expr ~ ("," ~ expr)* ~ ","? ~ ")" }`; one element without a comma is a
    /// parenthesised expression (the inner expression, its span widened).
    fn tuple(&self, i: usize) -> Option<(Expr, usize)> {
        let (first, e) = self.expr(self.skip(i + 1))??;
        let mut elems = vec![first];
        let (p, trailing_comma) = self.rest_of_list(&mut elems, e, Self::expr)?;
        if self.at(p) != b')' {
            return None;
        }
        let span = self.span(i, p + 1);
        if !trailing_comma && elems.len() == 1 {
            let mut e = elems.pop()?;
            e.span = span;
            return Some((e, p + 1));
        }
        Some((
            Expr {
                kind: ExprKind::Tuple(elems),
                span,
            },
            p + 1,
        ))
    }
}

/// Precedence climbing over `lhs (op operand)*`, all operators left-associative, as pest's
/// Pratt parser configured in parse.rs folds them. `None` where the tree builder would report
/// an error (a chained comparison).
fn climb(
    mut lhs: Expr,
    min: u8,
    operands: &mut impl Iterator<Item = Expr>,
    ops: &mut std::iter::Peekable<impl Iterator<Item = (InfixOp, Span)>>,
) -> Option<Expr> {
    while let Some(&(op, _)) = ops.peek() {
        let prec = op.precedence();
        if prec < min {
            break;
        }
        let (op, op_span) = ops.next()?;
        let mut rhs = operands.next()?;
        while let Some(&(next, _)) = ops.peek() {
            if next.precedence() <= prec {
                break;
            }
            rhs = climb(rhs, prec + 1, operands, ops)?;
        }
        lhs = combine(lhs, op, op_span, rhs).ok()?;
    }
    Some(lhs)
}
