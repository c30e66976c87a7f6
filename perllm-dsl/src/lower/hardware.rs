//! `hardware NAME { .. }` blocks and their `power` sub-block.

use super::*;
use crate::ast::*;
use crate::diag::{DiagBuilder, codes};
use crate::units::Dim;
use perllm_core::spec::*;

/// Keys of a `hardware` block.
pub const HARDWARE_KEYS: &[&str] = &[
    "kind",
    "compute",
    "memory",
    "memory_bandwidth",
    "power",
    "compute_efficiency",
    "bandwidth_efficiency",
    "contention",
];
/// Keys of a `power` block.
pub const POWER_KEYS: &[&str] = &["idle", "busy"];

/// Hardware kinds by name.
const HARDWARE_KINDS: [(&str, HardwareKind); 3] = [
    ("cpu", HardwareKind::Cpu),
    ("gpu", HardwareKind::Gpu),
    ("npu", HardwareKind::Npu),
];

impl Lowerer {
    pub(super) fn hardware(&mut self, it: &Item, names: &mut Names) -> Option<Hardware> {
        let Named { id, fresh, f, path } = self.named_block(
            it,
            &mut names.hardware,
            "hardware",
            "hardware",
            HARDWARE_KEYS,
        )?;
        let kind = self.required(&f, "kind", |l, e| {
            l.choice(e, "hardware kind", &HARDWARE_KINDS)
        });
        let compute = self.required(&f, "compute", |l, e| {
            l.positive_quantity(e, Dim::Compute, "compute")
        });
        let memory = self.required(&f, "memory", |l, e| l.positive_bytes(e, "memory"));
        let mbw = self.required(&f, "memory_bandwidth", |l, e| {
            l.positive_quantity(e, Dim::Bandwidth, "memory bandwidth")
                .map(|bits| bits / 8.0)
        });
        let (idle, busy) = match self.require(&f, "power") {
            Some(e) => self.power(e, &path),
            None => (None, None),
        };
        let ce = self.maybe(&f, "compute_efficiency", |l, e| {
            l.fraction(e, "compute_efficiency", Interval::OpenLow)
        });
        let be = self.maybe(&f, "bandwidth_efficiency", |l, e| {
            l.fraction(e, "bandwidth_efficiency", Interval::OpenLow)
        });
        let contention = self.maybe(&f, "contention", |l, e| {
            l.non_negative_quantity(e, Dim::Fraction, "contention")
        });
        if !fresh {
            return None;
        }
        Some(Hardware {
            name: id.name,
            kind: kind?,
            compute_flops: compute?,
            memory_bytes: memory?,
            memory_bandwidth_bytes_per_s: mbw?,
            power_idle_w: idle?,
            power_busy_w: busy?,
            compute_efficiency: ce?,
            bandwidth_efficiency: be?,
            contention: contention?,
        })
    }

    fn power(&mut self, e: &Expr, p: &str) -> (Option<f64>, Option<f64>) {
        let Some(b) = self.map_block(e, "a block `{ idle = .. W, busy = .. W }`") else {
            return (None, None);
        };
        let b = b.into_owned();
        let f = self.fields(&b, "the `power` block", b.span, Some(POWER_KEYS), false);
        let idle = self.required(&f, "idle", |l, e| {
            l.non_negative_quantity(e, Dim::Power, "idle power")
        });
        let busy = self.required(&f, "busy", |l, e| {
            l.non_negative_quantity(e, Dim::Power, "busy power")
        });
        if let (Some(i), Some(bz)) = (idle, busy)
            && bz < i
        {
            let (bs, is) = (f["busy"].value.span, f["idle"].value.span);
            self.err(
                DiagBuilder::error(codes::RANGE, "busy power must be at least the idle power")
                    .label(bs, format!("busy: {} W", super::values::num(bz)))
                    .label(is, format!("idle: {} W", super::values::num(i))),
            );
            return (idle, None);
        }
        for (k, en) in f.entries() {
            self.idx(format!("{p}.power.{k}"), en.value.span);
        }
        (idle, busy)
    }
}
