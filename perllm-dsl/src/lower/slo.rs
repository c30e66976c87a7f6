//! `slo NAME { .. }` blocks: SLO classes.

use super::*;
use crate::ast::*;
use perllm_core::spec::*;

/// Keys of an `slo` block.
pub const SLO_KEYS: &[&str] = &["deadline", "share"];

impl Lowerer {
    pub(super) fn slo(
        &mut self,
        it: &Item,
        names: &mut Names,
    ) -> Option<(SloClass, Span, Option<Span>)> {
        let Named { id, fresh, f, .. } =
            self.named_block(it, &mut names.slos, "SLO class", "slo", SLO_KEYS)?;
        let deadline = self.required(&f, "deadline", |l, e| l.positive_time(e, "the deadline"));
        let share_span = f.get("share").map(|e| e.value.span);
        let share = self.required(&f, "share", |l, e| {
            l.fraction(e, "a share", Interval::Closed)
        });
        if !fresh {
            return None;
        }
        let dspan = f.get("deadline").map(|e| e.value.span).unwrap_or(id.span);
        Some((
            SloClass {
                name: id.name,
                deadline_ns: deadline?,
                share: share?,
            },
            dspan,
            share_span,
        ))
    }
}
