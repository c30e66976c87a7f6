//! The `scenario` block: name, seed, duration, slot.

use super::*;
use crate::ast::*;
use crate::diag::{DiagBuilder, codes};
use crate::units::Dim;
use perllm_core::spec::*;

/// Keys of the `scenario` block.
pub const SCENARIO_KEYS: &[&str] = &["name", "seed", "duration", "slot"];

impl Lowerer {
    pub(super) fn scenario_block(
        &mut self,
        it: Option<&Item>,
    ) -> (Option<String>, Option<u64>, Option<u64>, Option<u64>) {
        let Some(it) = it else {
            self.err(
                DiagBuilder::error(codes::MISSING, "a scenario needs a `scenario` block with at least `duration`")
                    .help("add e.g. `scenario \"my-study\" { seed = 1, duration = 10 min, slot = 100 ms }`"),
            );
            return (None, None, None, None);
        };
        let f = self.block_fields(it, Some(SCENARIO_KEYS));
        let mut name = it.name.as_ref().map(|n| n.name.name.clone());
        if let Some(en) = f.get("name") {
            if let Some(n) = &it.name {
                self.err(
                    DiagBuilder::error(codes::DUPLICATE, "the scenario is named twice")
                        .label(en.key.span, "here")
                        .label(n.span, "and here"),
                );
            } else {
                name = self.string(&en.value, "a string");
            }
        }
        let name = name.or_else(|| Some(self.default_name.clone()));
        let seed = self.optional(&f, "seed", 0, |l, e| l.integer(e, Dim::Count, u64::MAX));
        let duration = self.required(&f, "duration", |l, e| l.positive_time(e, "the duration"));
        if let Some(e) = f.get("duration") {
            self.idx("scenario.duration".into(), e.value.span);
        }
        if let Some(e) = f.get("slot") {
            self.idx("scenario.slot".into(), e.value.span);
        }
        let slot = self.optional(&f, "slot", 100 * MILLISECOND, |l, e| l.time_ns(e));
        (name, seed, duration, slot)
    }
}
