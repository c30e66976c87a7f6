//! The objective block's user constraints, compiled for the slot LP.
//!
//! A constraint whose quantities are all per request (`latency`, `deadline`, the energy terms)
//! becomes a per-(request, server) feasibility filter evaluated on the predicted values. A
//! constraint whose quantities are all per slot (`share(..)`, `occupancy(..)`) becomes a linear
//! row over the slot's placement counts. A constraint mixing the two kinds, or mixing `share`
//! with `occupancy` (which would make the row non-linear), is refused when the policy is built.

use crate::policy::{PolicyError, ServerState};
use crate::spec::{Cmp, LinearConstraint, Quantity};
use crate::world::{ServerId, World};

/// Per-request predicted quantities, in seconds and joules.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RequestQty {
    pub latency_s: f64,
    pub deadline_s: f64,
    pub e_tx: f64,
    pub e_inf: f64,
    pub e_idle: f64,
}

#[derive(Clone, Copy, Debug)]
enum ReqQty {
    Latency,
    Deadline,
    ETx,
    EInf,
    EIdle,
    E,
}

/// A per-request constraint: `sum(coef * q) + constant CMP 0`.
#[derive(Clone, Debug)]
pub(crate) struct RequestConstraint {
    terms: Vec<(f64, ReqQty)>,
    constant: f64,
    cmp: Cmp,
}

impl RequestConstraint {
    /// Does the predicted `q` satisfy it?
    pub fn holds(&self, q: &RequestQty) -> bool {
        let v: f64 = self
            .terms
            .iter()
            .map(|(c, t)| {
                c * match t {
                    ReqQty::Latency => q.latency_s,
                    ReqQty::Deadline => q.deadline_s,
                    ReqQty::ETx => q.e_tx,
                    ReqQty::EInf => q.e_inf,
                    ReqQty::EIdle => q.e_idle,
                    ReqQty::E => q.e_tx + q.e_inf + q.e_idle,
                }
            })
            .sum::<f64>()
            + self.constant;
        let tol = 1e-9 * (1.0 + self.constant.abs());
        match self.cmp {
            Cmp::Le => v <= tol,
            Cmp::Ge => v >= -tol,
            Cmp::Eq => v.abs() <= tol,
        }
    }
}

#[derive(Clone, Debug)]
enum SlotKind {
    /// Terms over shares of the slot's placed requests.
    Share,
    /// Terms over batch-slot occupancy.
    Occupancy,
}

/// A per-slot constraint over shares or batch-slot occupancies.
#[derive(Clone, Debug)]
pub(crate) struct SlotConstraint {
    kind: SlotKind,
    /// (coefficient, target servers, target batch capacity)
    terms: Vec<(f64, Vec<ServerId>, f64)>,
    constant: f64,
    cmp: Cmp,
}

/// One linear row over placement counts: `sum_s coef[s] * y_s <= rhs` (+ `tol` when checking
/// an integral placement).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct UserRow {
    /// Coefficient of one request placed on each server.
    pub coef: Vec<f64>,
    /// Right-hand side, never negative (see [`SlotConstraint::rows`]).
    pub rhs: f64,
    /// Slack allowed to an integral placement (non-zero only for `==` rows).
    pub tol: f64,
    /// Index of the constraint in the objective block.
    pub constraint: usize,
}

impl SlotConstraint {
    /// The LP rows for the current server states. `<=` and `>=` give one row, `==` two.
    ///
    /// A row already violated before anything is placed (possible for occupancy rows, whose
    /// left-hand side includes the servers' current load) cannot be repaired by this slot's
    /// placements alone; its right-hand side is raised to 0, so the placement never makes it
    /// worse. Share rows are multiplied by the number of placed requests (window plus slot), so
    /// they are linear; the same rule applies to them. An empty placement therefore always
    /// satisfies every row.
    ///
    /// `recent[s]` is the number of requests placed on server `s` within the share window before
    /// this slot: share rows count them with the slot's placements.
    pub fn rows(
        &self,
        idx: usize,
        world: &World,
        servers: &[ServerState],
        recent: &[u32],
        out: &mut Vec<UserRow>,
    ) {
        let n = world.servers.len();
        let mut coef = vec![0.0; n];
        let mut base = self.constant;
        match self.kind {
            SlotKind::Share => {
                // sum_k c_k P_k / P + const <= 0  <=>  sum_k c_k P_k + const P <= 0
                for c in coef.iter_mut() {
                    *c = self.constant;
                }
                for (c, ts, _) in &self.terms {
                    for &s in ts {
                        coef[s as usize] += c;
                    }
                }
                // The window's earlier placements enter the left-hand side as a constant.
                base = coef.iter().zip(recent).map(|(c, &h)| c * h as f64).sum();
            }
            SlotKind::Occupancy => {
                for (c, ts, cap) in &self.terms {
                    for &s in ts {
                        let st = &servers[s as usize];
                        let occ = (st.running + st.queued + st.uploading) as f64;
                        base += c * occ / cap;
                        coef[s as usize] += c / cap;
                    }
                }
            }
        }
        let tol_eq = coef.iter().fold(0.0f64, |m, c| m.max(c.abs())) * 0.5 + 1e-9;
        match self.cmp {
            Cmp::Le => out.push(UserRow {
                coef,
                rhs: (-base).max(0.0),
                tol: 0.0,
                constraint: idx,
            }),
            Cmp::Ge => {
                let neg = coef.iter().map(|c| -c).collect();
                out.push(UserRow {
                    coef: neg,
                    rhs: base.max(0.0),
                    tol: 0.0,
                    constraint: idx,
                })
            }
            Cmp::Eq => {
                let neg = coef.iter().map(|c| -c).collect();
                out.push(UserRow {
                    coef,
                    rhs: (-base).max(0.0),
                    tol: tol_eq,
                    constraint: idx,
                });
                out.push(UserRow {
                    coef: neg,
                    rhs: base.max(0.0),
                    tol: tol_eq,
                    constraint: idx,
                });
            }
        }
    }
}

/// All user constraints of a scenario, compiled.
#[derive(Clone, Debug, Default)]
pub(crate) struct Compiled {
    pub per_request: Vec<RequestConstraint>,
    pub per_slot: Vec<SlotConstraint>,
}

impl Compiled {
    /// Compile `world`'s objective constraints for the policy named `policy`.
    pub fn new(policy: &str, world: &World) -> Result<Compiled, PolicyError> {
        let mut out = Compiled::default();
        for (i, c) in world.scenario.objective.constraints.iter().enumerate() {
            out.add(policy, world, i, c)?;
        }
        Ok(out)
    }

    fn add(
        &mut self,
        policy: &str,
        world: &World,
        i: usize,
        c: &LinearConstraint,
    ) -> Result<(), PolicyError> {
        let err = |m: String| PolicyError {
            policy: policy.to_string(),
            message: format!("objective constraint {} `{}`: {m}", i + 1, c.source),
        };
        // Rows are normalised (largest entry 1) so that scaling a constraint never changes a
        // decision; `Scenario::build` already refused what cannot be normalised.
        let c = &c.normalised().map_err(err)?;
        let per_req = c
            .terms
            .iter()
            .filter(|(_, q)| !matches!(q, Quantity::Share(_) | Quantity::Occupancy(_)))
            .count();
        let shares = c
            .terms
            .iter()
            .filter(|(_, q)| matches!(q, Quantity::Share(_)))
            .count();
        let utils = c
            .terms
            .iter()
            .filter(|(_, q)| matches!(q, Quantity::Occupancy(_)))
            .count();
        if per_req > 0 && shares + utils > 0 {
            return Err(err(
                "mixes per-request quantities (latency, deadline, energy) with per-slot ones (share, occupancy); \
                 write them as separate constraints"
                    .into(),
            ));
        }
        if shares > 0 && utils > 0 {
            return Err(err(
                "mixes share(..) and occupancy(..), which is not linear in the placement".into(),
            ));
        }
        if shares + utils == 0 {
            let terms = c
                .terms
                .iter()
                .map(|(k, q)| {
                    let t = match q {
                        Quantity::Latency => ReqQty::Latency,
                        Quantity::Deadline => ReqQty::Deadline,
                        Quantity::EnergyTransmission => ReqQty::ETx,
                        Quantity::EnergyInference => ReqQty::EInf,
                        Quantity::EnergyIdle => ReqQty::EIdle,
                        Quantity::Energy => ReqQty::E,
                        Quantity::Share(_) | Quantity::Occupancy(_) => {
                            unreachable!("filtered above")
                        }
                    };
                    (*k, t)
                })
                .collect();
            self.per_request.push(RequestConstraint {
                terms,
                constant: c.constant,
                cmp: c.cmp,
            });
            return Ok(());
        }
        let mut terms = Vec::new();
        for (k, q) in &c.terms {
            let (Quantity::Share(t) | Quantity::Occupancy(t)) = q else {
                unreachable!("filtered above")
            };
            let ts = world.target_servers(t);
            if ts.is_empty() {
                return Err(err(format!("{t:?} names no server")));
            }
            let cap: f64 = ts
                .iter()
                .map(|&s| world.servers[s as usize].max_batch as f64)
                .sum();
            terms.push((*k, ts, cap));
        }
        self.per_slot.push(SlotConstraint {
            kind: if shares > 0 {
                SlotKind::Share
            } else {
                SlotKind::Occupancy
            },
            terms,
            constant: c.constant,
            cmp: c.cmp,
        });
        Ok(())
    }
}
