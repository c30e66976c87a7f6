//! `policy NAME { .. }` blocks: the policy's name and free-form parameters.

use super::*;
use crate::ast::*;
use perllm_core::spec::*;
use std::collections::BTreeMap;

impl Lowerer {
    pub(super) fn policy(&mut self, it: &Item) -> Option<PolicySpec> {
        let name = it.name.as_ref()?.name.name.clone();
        let f = self.block_fields(it, None);
        let mut params = BTreeMap::new();
        let mut ok = true;
        let mut entries: Vec<&Entry> = f.entries().map(|x| x.1).collect();
        entries.sort_by_key(|e| e.span.start);
        for en in entries {
            self.idx(format!("policy.{}", en.key.name), en.value.span);
            match self.param(&en.value) {
                Some(v) => {
                    params.insert(en.key.name.clone(), v);
                }
                None => ok = false,
            }
        }
        ok.then_some(PolicySpec { name, params })
    }

    fn param(&mut self, e: &Expr) -> Option<ParamValue> {
        if let ExprKind::TomlStr { text, .. } = &e.kind {
            // A TOML string is a number with a unit if it parses as one, text otherwise.
            let looks_numeric = text
                .trim_start()
                .starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.');
            if !looks_numeric {
                return Some(ParamValue::Text(text.clone()));
            }
        }
        let e = self.resolve(e)?.into_owned();
        match &e.kind {
            ExprKind::Bool(b) => Some(ParamValue::Bool(*b)),
            ExprKind::Str(s) => Some(ParamValue::Text(s.clone())),
            ExprKind::Path(p) => Some(ParamValue::Text(
                p.iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join("."),
            )),
            ExprKind::Neg(x) => match self.param(x)? {
                ParamValue::Number(n) => Some(ParamValue::Number(-n)),
                _ => {
                    self.type_err(&e, "a number");
                    None
                }
            },
            ExprKind::Quantity {
                value, unit: None, ..
            } => Some(ParamValue::Number(*value)),
            ExprKind::Quantity {
                value,
                text,
                unit: Some(u),
            } => {
                let unit = self.any_unit(u)?;
                // SI: seconds, bytes, bit/s, FLOP/s, W, J/bit, J, fractions, per second.
                let v = si_value(text, *value, unit);
                Some(ParamValue::Number(v))
            }
            _ => {
                self.type_err(&e, "a number, a string, a name or a boolean");
                None
            }
        }
    }
}
