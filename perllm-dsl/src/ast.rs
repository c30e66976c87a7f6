//! The spanned syntax tree shared by the `.perllm` parser and the TOML reader.
//!
//! The tree is deliberately untyped: an item is `KIND [NAME] { entries }` and a value is an
//! expression. What a key means and which unit it takes is decided by the lowering pass
//! (`lower.rs`), so both surface syntaxes get the same checks and the same messages.

/// A byte range in one source (`src` indexes the loader's source table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// Index of the source in [`crate::diag::Sources`].
    pub src: u32,
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
}

impl Span {
    /// A span in source `src`.
    pub fn new(src: u32, start: usize, end: usize) -> Span {
        Span {
            src,
            start: start as u32,
            end: end as u32,
        }
    }
    /// The smallest span covering both (same source assumed).
    pub fn to(self, other: Span) -> Span {
        if self.src != other.src {
            return self;
        }
        Span {
            src: self.src,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
    /// Byte length.
    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }
    /// True for a zero-length span.
    pub fn is_empty(self) -> bool {
        self.end == self.start
    }
}

/// A name with where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    /// The text.
    pub name: String,
    /// Where.
    pub span: Span,
}

/// A whole file.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct File {
    /// Top-level items in order.
    pub items: Vec<Item>,
}

/// `KIND [NAME] { ... }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// `server`, `link`, ...
    pub kind: Ident,
    /// The item's name, if it has one.
    pub name: Option<ItemName>,
    /// The entries.
    pub body: Block,
    /// The whole item.
    pub span: Span,
}

/// An item's name, with an optional family range (`edge[1..5]`).
#[derive(Clone, Debug, PartialEq)]
pub struct ItemName {
    /// The base name.
    pub name: Ident,
    /// `[lo..hi]` with its span.
    pub range: Option<(u64, u64, Span)>,
    /// The whole name including the range.
    pub span: Span,
}

/// `{ entries }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    /// Entries in order.
    pub entries: Vec<Entry>,
    /// The braces and everything between.
    pub span: Span,
}

/// One entry of a block.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The key (`constraint` for constraint entries).
    pub key: Ident,
    /// The value (a nested block is an [`ExprKind::Map`]).
    pub value: Expr,
    /// True for `constraint EXPR` entries.
    pub is_constraint: bool,
    /// The whole entry.
    pub span: Span,
}

impl Entry {
    /// `key { ... }`: the block becomes the value, an [`ExprKind::Map`] spanning the block.
    pub fn nested(key: Ident, block: Block, span: Span) -> Entry {
        let value = Expr {
            span: block.span,
            kind: ExprKind::Map(block),
        };
        Entry {
            key,
            value,
            is_constraint: false,
            span,
        }
    }
}

/// An expression with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where.
    pub span: Span,
}

/// Binary operators (sums and products are n-ary, see [`ExprKind::Sum`] and [`ExprKind::Product`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `a +/- b`.
    PlusMinus,
    /// `a x b`.
    Times,
    /// `a <= b`.
    Le,
    /// `a >= b`.
    Ge,
    /// `a == b`.
    Eq,
}

impl BinOp {
    /// As written.
    pub fn as_str(self) -> &'static str {
        match self {
            BinOp::PlusMinus => "+/-",
            BinOp::Times => "x",
            BinOp::Le => "<=",
            BinOp::Ge => ">=",
            BinOp::Eq => "==",
        }
    }
}

/// The kinds of expressions.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// A number with an optional unit; `text` is the number as written (for exact scaling).
    Quantity {
        /// The number's value.
        value: f64,
        /// The number as written.
        text: String,
        /// The unit, if any.
        unit: Option<Ident>,
    },
    /// A string literal (escapes resolved).
    Str(String),
    /// A TOML string: plain text where text is expected, a `.perllm` expression elsewhere.
    /// `offset` is the byte offset of its content in the source, if the content maps 1:1.
    TomlStr {
        /// The content.
        text: String,
        /// Offset of the content in the source when it maps byte for byte.
        offset: Option<u32>,
    },
    /// `true` / `false`.
    Bool(bool),
    /// A dotted name: `cloud`, `energy.idle`.
    Path(Vec<Ident>),
    /// `name(args)`.
    Call {
        /// The function.
        name: Ident,
        /// Arguments, optionally named.
        args: Vec<Arg>,
    },
    /// `[a, b]`.
    List(Vec<Expr>),
    /// `(a, b)`.
    Tuple(Vec<Expr>),
    /// `{ k = v }` or a nested block.
    Map(Block),
    /// `-a`.
    Neg(Box<Expr>),
    /// `a + b - c`: operands with a `true` sign for subtraction (the first is never negated).
    Sum(Vec<(bool, Expr)>),
    /// `a * b * c`.
    Product(Vec<Expr>),
    /// A non-associative binary operation.
    Binary {
        /// The operator.
        op: BinOp,
        /// Its span.
        op_span: Span,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
    },
}

/// A call argument.
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    /// `name =`, if given.
    pub name: Option<Ident>,
    /// The value.
    pub value: Expr,
}

impl ExprKind {
    /// A short description for messages ("a number", "a list", ...).
    pub fn describe(&self) -> &'static str {
        match self {
            ExprKind::Quantity { unit: Some(_), .. } => "a quantity with a unit",
            ExprKind::Quantity { .. } => "a number",
            ExprKind::Str(_) | ExprKind::TomlStr { .. } => "a string",
            ExprKind::Bool(_) => "a boolean",
            ExprKind::Path(_) => "a name",
            ExprKind::Call { .. } => "a call",
            ExprKind::List(_) => "a list",
            ExprKind::Tuple(_) => "a tuple",
            ExprKind::Map(_) => "a block",
            ExprKind::Neg(_) | ExprKind::Sum(_) | ExprKind::Product(_) => {
                "an arithmetic expression"
            }
            ExprKind::Binary {
                op: BinOp::PlusMinus,
                ..
            } => "a `+/-` range",
            ExprKind::Binary {
                op: BinOp::Times, ..
            } => "an `x` count",
            ExprKind::Binary { .. } => "a comparison",
        }
    }
}
