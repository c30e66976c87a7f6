//! A block's fields, handled once for every block kind: entries indexed by key (unknown and
//! duplicate keys reported), required, optional and maybe-absent fields lowered by a value reader
//! (see `values.rs`), the head of a named block (its name declared, its paths indexed).
//!
//! A block lowers each field in one line, e.g. in `server.rs`:
//! `let max_batch = self.required(&f, "max_batch", |l, e| l.positive_u32(e, "max_batch"));`
//! and lists its keys in its `*_KEYS` table next to that code.

use super::*;
use crate::ast::*;
use crate::diag::{DiagBuilder, codes, did_you_mean};
use std::borrow::Cow;
use std::collections::HashMap;

/// A block's entries by key (blocks are small: a linear scan beats hashing), with what the
/// diagnostics call the block and where they point when a required field is missing.
pub(super) struct Fields<'b> {
    entries: Vec<(&'b str, &'b Entry)>,
    what: String,
    at: Span,
}

impl<'b> Fields<'b> {
    /// A block's entries without any checking (for looking up spans after lowering).
    pub(super) fn unchecked(block: &'b Block, at: Span) -> Self {
        Fields {
            entries: block
                .entries
                .iter()
                .map(|e| (e.key.name.as_str(), e))
                .collect(),
            what: String::new(),
            at,
        }
    }
    pub(super) fn get(&self, k: &str) -> Option<&'b Entry> {
        self.entries.iter().find(|x| x.0 == k).map(|x| x.1)
    }
    pub(super) fn contains_key(&self, k: &str) -> bool {
        self.get(k).is_some()
    }
    /// The entries kept (known keys, first of duplicates), in the order written.
    pub(super) fn entries(&self) -> impl Iterator<Item = (&'b str, &'b Entry)> + '_ {
        self.entries.iter().copied()
    }
}

impl<'b> std::ops::Index<&str> for Fields<'b> {
    type Output = Entry;
    fn index(&self, k: &str) -> &Entry {
        self.get(k).expect("key present")
    }
}

/// The head of a named block (`hardware a100 { .. }`), see [`Lowerer::named_block`].
pub(super) struct Named<'b> {
    /// The block's name.
    pub(super) id: Ident,
    /// False when the name was declared before (the block is checked but not kept).
    pub(super) fresh: bool,
    /// The block's fields.
    pub(super) f: Fields<'b>,
    /// The block's scenario path, `kind[name]`.
    pub(super) path: String,
}

impl Lowerer {
    /// Index a block's entries by key; report duplicates and unknown keys (`allowed`: `None` takes
    /// any key), and `constraint` entries unless `constraints`. `what` names the block in
    /// diagnostics; a missing required field is pointed at `at`.
    pub(super) fn fields<'b>(
        &mut self,
        block: &'b Block,
        what: impl Into<String>,
        at: Span,
        allowed: Option<&[&str]>,
        constraints: bool,
    ) -> Fields<'b> {
        let what = what.into();
        let mut map = Fields {
            entries: Vec::with_capacity(block.entries.len()),
            what,
            at,
        };
        let what = map.what.clone();
        for en in &block.entries {
            if en.is_constraint {
                if !constraints {
                    self.err(
                        DiagBuilder::error(codes::UNKNOWN_KEY, format!("`constraint` entries belong in the `objective` block, not in {what}"))
                            .label(en.key.span, "not allowed here"),
                    );
                }
                continue;
            }
            if let Some(allowed) = allowed
                && !allowed.contains(&en.key.name.as_str())
            {
                let help = did_you_mean(&en.key.name, allowed.iter().copied())
                    .unwrap_or_else(|| format!("{what} takes: {}", allowed.join(", ")));
                self.err(
                    DiagBuilder::error(
                        codes::UNKNOWN_KEY,
                        format!("unknown key `{}` in {what}", en.key.name),
                    )
                    .label(en.key.span, "unknown key")
                    .help(help),
                );
                continue;
            }
            if let Some(prev) = map.get(en.key.name.as_str()) {
                self.err(DiagBuilder::twice(
                    codes::DUPLICATE,
                    format!("`{}` is given twice in {what}", en.key.name),
                    en.key.span,
                    prev.key.span,
                    "given",
                ));
                continue;
            }
            map.entries.push((en.key.name.as_str(), en));
        }
        map
    }

    /// The fields of a block named by its kind alone (`scenario`, `workload`, `objective`, `sim`,
    /// `policy`): "the `kind` block" in diagnostics, pointed at its keyword; only `objective`
    /// takes `constraint` entries.
    pub(super) fn block_fields<'b>(&mut self, it: &'b Item, keys: Option<&[&str]>) -> Fields<'b> {
        let kind = it.kind.name.as_str();
        let what = format!("the `{kind}` block");
        self.fields(&it.body, what, it.kind.span, keys, kind == "objective")
    }

    /// The head of a named block: declare `it`'s name in `table` as a `noun`, index its fields
    /// (`keys`), record where `kind[name]` and each of its entries were written.
    pub(super) fn named_block<'b>(
        &mut self,
        it: &'b Item,
        table: &mut HashMap<String, Decl>,
        noun: &str,
        kind: &str,
        keys: &[&str],
    ) -> Option<Named<'b>> {
        let id = it.name.as_ref()?.name.clone();
        let fresh = self.declare(table, noun, &id);
        let f = self.fields(
            &it.body,
            format!("{noun} `{}`", id.name),
            id.span,
            Some(keys),
            false,
        );
        let path = format!("{kind}[{}]", id.name);
        self.idx(path.clone(), id.span);
        self.index_entries(&path, &it.body);
        Some(Named { id, fresh, f, path })
    }

    /// The value of a required field; reported missing when absent.
    pub(super) fn require<'b>(&mut self, f: &Fields<'b>, key: &str) -> Option<&'b Expr> {
        match f.get(key) {
            Some(e) => Some(&e.value),
            None => {
                self.err(
                    DiagBuilder::error(codes::MISSING, format!("{} needs `{key}`", f.what))
                        .label(f.at, format!("`{key}` is missing"))
                        .help(format!("add `{key} = ...`")),
                );
                None
            }
        }
    }

    /// A required field lowered by `read`.
    pub(super) fn required<T>(
        &mut self,
        f: &Fields,
        key: &str,
        read: impl FnOnce(&mut Self, &Expr) -> Option<T>,
    ) -> Option<T> {
        let e = self.require(f, key)?;
        read(self, e)
    }

    /// An optional field lowered by `read`; `default` when absent.
    pub(super) fn optional<T>(
        &mut self,
        f: &Fields,
        key: &str,
        default: T,
        read: impl FnOnce(&mut Self, &Expr) -> Option<T>,
    ) -> Option<T> {
        match f.get(key) {
            Some(en) => read(self, &en.value),
            None => Some(default),
        }
    }

    /// A field that is required when `default` is `None`, optional with that default otherwise.
    pub(super) fn required_or<T>(
        &mut self,
        f: &Fields,
        key: &str,
        default: Option<T>,
        read: impl FnOnce(&mut Self, &Expr) -> Option<T>,
    ) -> Option<T> {
        match default {
            Some(d) => self.optional(f, key, d, read),
            None => self.required(f, key, read),
        }
    }

    /// An optional field lowered by `read`; `Some(None)` when absent.
    pub(super) fn maybe<T>(
        &mut self,
        f: &Fields,
        key: &str,
        read: impl FnOnce(&mut Self, &Expr) -> Option<T>,
    ) -> Option<Option<T>> {
        self.optional(f, key, None, |l, e| read(l, e).map(Some))
    }

    pub(super) fn map_block<'e>(&mut self, e: &'e Expr, what: &str) -> Option<Cow<'e, Block>> {
        match &e.kind {
            ExprKind::Map(b) => Some(Cow::Borrowed(b)),
            _ => {
                self.type_err(e, what);
                None
            }
        }
    }

    pub(super) fn idx(&mut self, path: String, span: Span) {
        if self.want_index {
            self.index.insert(path, span);
        }
    }

    pub(super) fn declare(
        &mut self,
        table: &mut HashMap<String, Decl>,
        what: &str,
        id: &Ident,
    ) -> bool {
        if let Some(prev) = table.get(&id.name) {
            self.err(DiagBuilder::twice(
                codes::DUPLICATE,
                format!("{what} `{}` is defined twice", id.name),
                id.span,
                prev.span,
                "defined",
            ));
            return false;
        }
        table.insert(id.name.clone(), Decl { span: id.span });
        true
    }

    pub(super) fn index_entries(&mut self, prefix: &str, block: &Block) {
        if !self.want_index {
            return;
        }
        for en in &block.entries {
            self.idx(format!("{prefix}.{}", en.key.name), en.value.span);
        }
    }
}
