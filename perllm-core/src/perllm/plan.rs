//! The per-slot placement: an LP over (group, server) counts, deterministic rounding and repair,
//! and the greedy placement used when the LP is skipped, disabled or fails.
//!
//! A *group* is a set of pending requests of one class with the same set of feasible servers;
//! the LP has one variable per (group, feasible server): how many of the group's requests go
//! there, in `[0, n_g]`. Rows: each group places at most `n_g`; per server, committed batch
//! slots, KV bytes and link bits stay within the slot's budgets; the user's per-slot constraints
//! (see [`super::constraints`]). The objective maximises the sum of `(score + M)` over placed
//! requests, with `M` larger than any score's magnitude: placing a request always beats
//! deferring it, and among placements the total score (the CS-UCB index) is maximal.

use super::constraints::UserRow;
use crate::world::ServerId;
use good_lp::{Expression, ProblemVariables, Solution, SolverModel, microlp, variable};

/// Pending requests of one class sharing one feasible-server set.
#[derive(Clone, Debug, Default)]
pub(crate) struct Group {
    /// Class index.
    pub class: u32,
    /// Indices into the slot's pending list, most urgent first.
    pub members: Vec<u32>,
    /// Feasible servers, ascending.
    pub servers: Vec<ServerId>,
    /// Score (index) of one request on each of `servers`.
    pub score: Vec<f64>,
    /// Mean predicted processing time (s) on each of `servers`, to place urgent requests first on fast servers.
    pub mean_d: Vec<f64>,
    /// Mean KV bytes of a member.
    pub kv: f64,
    /// Mean upload bits of a member.
    pub bits: f64,
}

impl Group {
    /// Number of requests in the group.
    pub fn n(&self) -> u32 {
        self.members.len() as u32
    }
    /// Position of the best-scoring server (ties: lowest server id).
    pub fn best(&self) -> usize {
        let mut b = 0;
        for k in 1..self.servers.len() {
            if self.score[k] > self.score[b] {
                b = k;
            }
        }
        b
    }
}

/// The slot's budgets: per server and the user rows.
#[derive(Clone, Debug, Default)]
pub(crate) struct Budgets {
    /// Batch slots a server can still take.
    pub batch: Vec<f64>,
    /// KV bytes a server can still take.
    pub kv: Vec<f64>,
    /// Upload bits a server's link can still take.
    pub link: Vec<f64>,
    /// A server link's full budget (`bandwidth x link_window`), bits: the most one request is
    /// charged, so an upload larger than the whole window still fits an idle link, alone.
    pub link_cap: Vec<f64>,
    /// User rows.
    pub user: Vec<UserRow>,
}

impl Budgets {
    /// The link bits one request of `bits` is charged on server `i`: at most the link's full
    /// budget (when that is positive).
    pub fn link_charge(&self, bits: f64, i: usize) -> f64 {
        match self.link_cap.get(i) {
            Some(&cap) if cap > 0.0 => bits.min(cap),
            _ => bits,
        }
    }
}

/// Running totals of a placement against [`Budgets`].
#[derive(Clone, Debug)]
pub(crate) struct Ledger {
    pub batch: Vec<f64>,
    pub kv: Vec<f64>,
    pub link: Vec<f64>,
    pub user: Vec<f64>,
    /// Requests placed on each server in this slot.
    pub placed: Vec<u32>,
}

const EPS: f64 = 1e-7;

impl Ledger {
    /// An empty placement.
    pub fn new(b: &Budgets) -> Ledger {
        let n = b.batch.len();
        Ledger {
            batch: vec![0.0; n],
            kv: vec![0.0; n],
            link: vec![0.0; n],
            user: vec![0.0; b.user.len()],
            placed: vec![0; n],
        }
    }

    /// Would one more request of a group with `kv`/`bits` on `s` keep every row satisfied?
    pub fn fits(&self, b: &Budgets, kv: f64, bits: f64, s: ServerId) -> bool {
        let i = s as usize;
        if self.batch[i] + 1.0 > b.batch[i] + EPS || self.kv[i] + kv > b.kv[i] * (1.0 + 1e-12) + EPS
        {
            return false;
        }
        if bits > 0.0 && self.link[i] + b.link_charge(bits, i) > b.link[i] * (1.0 + 1e-12) + EPS {
            return false;
        }
        b.user.iter().zip(&self.user).all(|(r, &lhs)| {
            let c = r.coef[i];
            c <= 0.0 || lhs + c <= r.rhs + r.tol + EPS
        })
    }

    /// Would one more such request fit `s`'s batch, KV and link budgets (ignoring user rows)?
    pub fn fits_capacity(&self, b: &Budgets, kv: f64, bits: f64, s: ServerId) -> bool {
        let i = s as usize;
        self.batch[i] + 1.0 <= b.batch[i] + EPS
            && self.kv[i] + kv <= b.kv[i] * (1.0 + 1e-12) + EPS
            && (bits <= 0.0
                || self.link[i] + b.link_charge(bits, i) <= b.link[i] * (1.0 + 1e-12) + EPS)
    }

    /// Add (`sign` = 1) or remove (`sign` = -1) one request.
    pub fn add(&mut self, b: &Budgets, kv: f64, bits: f64, s: ServerId, sign: f64) {
        let i = s as usize;
        self.batch[i] += sign;
        self.kv[i] += sign * kv;
        self.link[i] += sign * b.link_charge(bits, i);
        for (lhs, r) in self.user.iter_mut().zip(&b.user) {
            *lhs += sign * r.coef[i];
        }
        if sign > 0.0 {
            self.placed[i] += 1;
        } else {
            self.placed[i] -= 1;
        }
    }

    /// The user row violated the most (relative to its right-hand side), if any.
    pub fn worst_user_row(&self, b: &Budgets) -> Option<usize> {
        let mut worst = None;
        let mut wv = 0.0;
        for (k, (r, &lhs)) in b.user.iter().zip(&self.user).enumerate() {
            let v = lhs - r.rhs - r.tol;
            if v > EPS && v > wv {
                wv = v;
                worst = Some(k);
            }
        }
        worst
    }
}

/// How a slot's placement was computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Method {
    /// Nothing to place.
    Empty,
    /// Every group's best server could take all of it: the LP optimum without solving it.
    Skipped,
    /// Solved by the LP, then rounded and repaired.
    Lp,
    /// The LP failed (error or infeasible): greedy placement.
    Fallback,
    /// The LP is disabled: greedy placement.
    Greedy,
}

/// The outcome of planning a slot: how many of each group go to each of its servers.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    /// `counts[g][k]`: requests of group `g` sent to `groups[g].servers[k]`.
    pub counts: Vec<Vec<u32>>,
    /// How it was computed.
    pub method: Method,
    /// LP size (variables, rows) when solved.
    pub lp_size: (usize, usize),
    /// The LP error, on fallback.
    pub error: Option<String>,
}

/// Place `groups` within `budgets`, on top of what `ledger` already holds (the slot's
/// exploration placements). `ledger` ends with the full placement.
pub(crate) fn plan(groups: &[Group], budgets: &Budgets, ledger: &mut Ledger, use_lp: bool) -> Plan {
    let mut counts: Vec<Vec<u32>> = groups.iter().map(|g| vec![0; g.servers.len()]).collect();
    if groups.iter().all(|g| g.n() == 0 || g.servers.is_empty()) {
        return Plan {
            counts,
            method: Method::Empty,
            lp_size: (0, 0),
            error: None,
        };
    }
    // 1. The unconstrained optimum: every group on its best server. If it satisfies every row,
    //    it is also the LP's optimum.
    let mut trial = ledger.clone();
    for (g, grp) in groups.iter().enumerate() {
        if grp.n() == 0 || grp.servers.is_empty() {
            continue;
        }
        let b = grp.best();
        counts[g][b] = grp.n();
        for _ in 0..grp.n() {
            trial.add(budgets, grp.kv, grp.bits, grp.servers[b], 1.0);
        }
    }
    if within(budgets, &trial) {
        *ledger = trial;
        return Plan {
            counts,
            method: Method::Skipped,
            lp_size: (0, 0),
            error: None,
        };
    }
    for c in counts.iter_mut() {
        c.iter_mut().for_each(|x| *x = 0);
    }
    if !use_lp {
        greedy_fill(groups, budgets, ledger, &mut counts);
        return Plan {
            counts,
            method: Method::Greedy,
            lp_size: (0, 0),
            error: None,
        };
    }
    match solve_lp(groups, budgets, ledger) {
        Ok((y, size)) => {
            round_and_repair(groups, budgets, ledger, &y, &mut counts);
            Plan {
                counts,
                method: Method::Lp,
                lp_size: size,
                error: None,
            }
        }
        Err(e) => {
            greedy_fill(groups, budgets, ledger, &mut counts);
            Plan {
                counts,
                method: Method::Fallback,
                lp_size: (0, 0),
                error: Some(e),
            }
        }
    }
}

/// Does the ledger satisfy every row?
pub(crate) fn within(b: &Budgets, l: &Ledger) -> bool {
    for i in 0..b.batch.len() {
        if l.batch[i] > b.batch[i] + EPS
            || l.kv[i] > b.kv[i] * (1.0 + 1e-12) + EPS
            || l.link[i] > b.link[i] * (1.0 + 1e-12) + EPS
        {
            return false;
        }
    }
    l.worst_user_row(b).is_none()
}

/// Fewest candidate servers per group in the LP.
const MIN_CANDIDATES: usize = 4;

/// The servers of `g` that get an LP variable (positions in `g.servers`): in decreasing score,
/// until their remaining batch budgets could take the group twice over, and at least
/// [`MIN_CANDIDATES`]. Keeps the LP's size independent of the number of servers; servers left
/// out can still receive the group's requests in the greedy fill after rounding.
fn candidates(g: &Group, b: &Budgets, ledger: &Ledger) -> Vec<usize> {
    let by_score = |a: &usize, c: &usize| g.score[*c].total_cmp(&g.score[*a]).then(a.cmp(c));
    let need = 2.0 * g.n() as f64;
    let len = g.servers.len();
    // Only the best few servers are usually needed: order a prefix (the same prefix a full sort
    // gives, the order being total), widen it if it runs out.
    let mut m = 64usize;
    loop {
        let mut ks: Vec<usize> = (0..len).collect();
        let full = m >= len;
        if full {
            ks.sort_by(by_score);
        } else {
            ks.select_nth_unstable_by(m, by_score);
            ks.truncate(m);
            ks.sort_by(by_score);
        }
        let mut room = 0.0;
        let mut keep = 0;
        let mut done = full;
        for &k in &ks {
            if keep >= MIN_CANDIDATES && room >= need {
                done = true;
                break;
            }
            let s = g.servers[k] as usize;
            room += (b.batch[s] - ledger.batch[s]).max(0.0);
            keep += 1;
        }
        if done {
            ks.truncate(keep);
            ks.sort_unstable();
            return ks;
        }
        m *= 4;
    }
}

/// Tests only: make the solver fail on this thread, to exercise the fallback (the LP built from
/// finite scores is always feasible and bounded, so it cannot be made to fail from outside).
#[cfg(test)]
pub(crate) mod test_hook {
    use std::cell::Cell;

    /// How the solver is made to fail.
    #[derive(Clone, Copy, Debug)]
    pub(crate) enum Failure {
        /// It reports the LP infeasible.
        Infeasible,
        /// It panics.
        Panic,
    }

    thread_local! {
        pub(crate) static FORCE: Cell<Option<Failure>> = const { Cell::new(None) };
    }

    /// Run `f` with every solve on this thread failing as `how`.
    pub(crate) fn with_failure<T>(how: Failure, f: impl FnOnce() -> T) -> T {
        FORCE.with(|c| c.set(Some(how)));
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        FORCE.with(|c| c.set(None));
        out.unwrap_or_else(|p| std::panic::resume_unwind(p))
    }
}

/// The LP's values `y[g][k]` and its size (variables, rows).
type LpSolution = (Vec<Vec<f64>>, (usize, usize));

/// Solve the relaxation; returns y[g][k] and (variables, rows).
fn solve_lp(groups: &[Group], b: &Budgets, ledger: &Ledger) -> Result<LpSolution, String> {
    let n_servers = b.batch.len();
    if groups
        .iter()
        .flat_map(|g| g.score.iter())
        .any(|s| !s.is_finite())
    {
        return Err("non-finite score".into());
    }
    let max_abs = groups
        .iter()
        .flat_map(|g| g.score.iter())
        .fold(0.0f64, |m, s| m.max(s.abs()));
    let m = 1.0 + 2.0 * max_abs;
    let mut vars = ProblemVariables::new();
    let mut x = Vec::with_capacity(groups.len());
    let mut objective = Expression::with_capacity(groups.iter().map(|g| g.servers.len()).sum());
    // Per server: the variables on it, with their group's kv and bits.
    let mut on: Vec<Vec<(good_lp::Variable, f64, f64, f64)>> = vec![Vec::new(); n_servers];
    for g in groups {
        let n = g.n() as f64;
        let mut row = vec![None; g.servers.len()];
        if n > 0.0 {
            for k in candidates(g, b, ledger) {
                let s = g.servers[k];
                let v = vars.add(variable().min(0.0).max(n));
                objective.add_mul(g.score[k] + m, v);
                on[s as usize].push((v, g.kv, b.link_charge(g.bits, s as usize), n));
                row[k] = Some(v);
            }
        }
        x.push(row);
    }
    let n_vars = vars.len();
    let mut model = vars.maximise(objective).using(microlp);
    let mut rows = 0;
    for (g, grp) in groups.iter().enumerate() {
        if grp.n() > 0 && x[g].iter().flatten().count() > 1 {
            let mut e = Expression::with_capacity(grp.servers.len());
            for v in x[g].iter().flatten() {
                e.add_mul(1.0, *v);
            }
            model.add_constraint(e.leq(grp.n() as f64));
            rows += 1;
        }
    }
    for (s, list) in on.iter().enumerate() {
        if list.is_empty() {
            continue;
        }
        let max_batch: f64 = list.iter().map(|t| t.3).sum();
        let rb = b.batch[s] - ledger.batch[s];
        if max_batch > rb + EPS {
            let mut e = Expression::with_capacity(list.len());
            for t in list {
                e.add_mul(1.0, t.0);
            }
            model.add_constraint(e.leq(rb.max(0.0)));
            rows += 1;
        }
        let max_kv: f64 = list.iter().map(|t| t.1 * t.3).sum();
        let rk = b.kv[s] - ledger.kv[s];
        if max_kv > rk + EPS {
            let mut e = Expression::with_capacity(list.len());
            for t in list {
                e.add_mul(t.1, t.0);
            }
            model.add_constraint(e.leq(rk.max(0.0)));
            rows += 1;
        }
        let max_bits: f64 = list.iter().map(|t| t.2 * t.3).sum();
        let rl = b.link[s] - ledger.link[s];
        if max_bits > rl + EPS {
            let mut e = Expression::with_capacity(list.len());
            for t in list {
                e.add_mul(t.2, t.0);
            }
            model.add_constraint(e.leq(rl.max(0.0)));
            rows += 1;
        }
    }
    for (r, lhs) in b.user.iter().zip(&ledger.user) {
        let rhs = r.rhs - lhs;
        // Skip rows no placement can violate.
        let worst: f64 = on
            .iter()
            .enumerate()
            .map(|(s, l)| r.coef[s].max(0.0) * l.iter().map(|t| t.3).sum::<f64>())
            .sum();
        if worst <= rhs + EPS {
            continue;
        }
        let mut e = Expression::with_capacity(n_vars);
        for (s, l) in on.iter().enumerate() {
            let c = r.coef[s];
            if c != 0.0 {
                for t in l {
                    e.add_mul(c, t.0);
                }
            }
        }
        model.add_constraint(e.leq(rhs));
        rows += 1;
    }
    // A solver bug must cost one slot its LP (greedy fallback), not the whole run.
    let sol = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        #[cfg(test)]
        match test_hook::FORCE.with(|f| f.get()) {
            Some(test_hook::Failure::Infeasible) => {
                return Err(good_lp::ResolutionError::Infeasible);
            }
            Some(test_hook::Failure::Panic) => panic!("forced solver panic (test hook)"),
            None => {}
        }
        model.solve()
    }))
    .map_err(|_| "the LP solver panicked".to_string())?
    .map_err(|e| e.to_string())?;
    let y = x
        .iter()
        .map(|row| {
            row.iter()
                .map(|v| v.map_or(0.0, |v| sol.value(v).max(0.0)))
                .collect()
        })
        .collect();
    Ok((y, (n_vars, rows)))
}

/// Floor the LP's counts, hand out each group's remaining units by largest fractional part,
/// remove units while a user row is violated, then fill greedily.
fn round_and_repair(
    groups: &[Group],
    b: &Budgets,
    ledger: &mut Ledger,
    y: &[Vec<f64>],
    counts: &mut [Vec<u32>],
) {
    for (g, grp) in groups.iter().enumerate() {
        // Units of the group placed so far (a running sum: summing `counts[g]` at each server
        // made this loop quadratic in the servers).
        let mut sum: u32 = counts[g].iter().sum();
        for (k, &s) in grp.servers.iter().enumerate() {
            let f = (y[g][k] + 1e-6).floor().max(0.0) as u32;
            let f = f.min(grp.n() - sum);
            sum = sum - counts[g][k] + f;
            counts[g][k] = f;
            for _ in 0..f {
                ledger.add(b, grp.kv, grp.bits, s, 1.0);
            }
        }
    }
    // Capacity rows have non-negative coefficients, so floors satisfy them; user rows may not
    // (a share row has negative coefficients on the other servers). Remove the lowest-scoring
    // unit with a positive coefficient in the worst row until every row holds. An empty
    // placement satisfies every row, so this terminates.
    // The placed (group, position) pairs in scan order: only they can be removed.
    let placed: Vec<(usize, usize)> = counts
        .iter()
        .enumerate()
        .flat_map(|(g, c)| {
            c.iter()
                .enumerate()
                .filter(|x| *x.1 > 0)
                .map(move |(k, _)| (g, k))
        })
        .collect();
    while let Some(r) = ledger.worst_user_row(b) {
        let row = &b.user[r];
        let mut pick: Option<(usize, usize, f64)> = None;
        for &(g, k) in &placed {
            let grp = &groups[g];
            let s = grp.servers[k];
            if counts[g][k] > 0
                && row.coef[s as usize] > 0.0
                && pick.is_none_or(|p| grp.score[k] < p.2)
            {
                pick = Some((g, k, grp.score[k]));
            }
        }
        let Some((g, k, _)) = pick else { break };
        counts[g][k] -= 1;
        ledger.add(b, groups[g].kv, groups[g].bits, groups[g].servers[k], -1.0);
    }
    // Remaining units: first by largest fractional part of the LP's value, then greedily.
    let mut fracs: Vec<(f64, usize, usize)> = Vec::new();
    for (g, grp) in groups.iter().enumerate() {
        for k in 0..grp.servers.len() {
            let fr = y[g][k] - counts[g][k] as f64;
            if fr > 1e-6 {
                fracs.push((fr, g, k));
            }
        }
    }
    fracs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    for (_, g, k) in fracs {
        let grp = &groups[g];
        if counts[g].iter().sum::<u32>() < grp.n()
            && ledger.fits(b, grp.kv, grp.bits, grp.servers[k])
        {
            counts[g][k] += 1;
            ledger.add(b, grp.kv, grp.bits, grp.servers[k], 1.0);
        }
    }
    greedy_fill(groups, b, ledger, counts);
}

/// Place every unplaced unit on the best-scoring server that keeps every row satisfied; the
/// groups with the largest gap between their best and second-best server go first.
pub(crate) fn greedy_fill(
    groups: &[Group],
    b: &Budgets,
    ledger: &mut Ledger,
    counts: &mut [Vec<u32>],
) {
    let mut order: Vec<(f64, usize)> = groups
        .iter()
        .enumerate()
        .map(|(g, grp)| {
            // The gap between the two largest scores (in total order, as a sort gives them).
            let regret = match grp.score.len() {
                0 => 0.0,
                1 => f64::INFINITY,
                _ => {
                    let (mut a, mut c) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
                    for &x in &grp.score {
                        if x.total_cmp(&a).is_gt() {
                            c = a;
                            a = x;
                        } else if x.total_cmp(&c).is_gt() {
                            c = x;
                        }
                    }
                    a - c
                }
            };
            (regret, g)
        })
        .collect();
    order.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, g) in order {
        let grp = &groups[g];
        let mut left = grp.n() - counts[g].iter().sum::<u32>();
        if left == 0 {
            continue;
        }
        // The positions in decreasing score (ties: lower position first), ordered lazily: the
        // scan usually stops within the first few servers, so only `ks[..sorted]` is in order,
        // extended when the scan reaches its end (the order being total, this is the order a
        // full sort gives).
        // A group no server can take one more of now places nothing (the scan below would
        // find nothing): skip it without ordering its servers.
        if !grp
            .servers
            .iter()
            .any(|&s| ledger.fits(b, grp.kv, grp.bits, s))
        {
            continue;
        }
        let by_score =
            |a: &usize, c: &usize| grp.score[*c].total_cmp(&grp.score[*a]).then(a.cmp(c));
        let mut ks: Vec<usize> = (0..grp.servers.len()).collect();
        let mut sorted = 0;
        // A server whose batch, KV or link budget cannot take one more of this group never
        // will again in this pass (the fill only adds): it leaves the scan, which otherwise
        // visits the same servers in the same order.
        let mut full = vec![false; ks.len()];
        'units: while left > 0 {
            let mut any_full = false;
            let mut i = 0;
            loop {
                if i == sorted {
                    if sorted == ks.len() {
                        break;
                    }
                    sorted = extend_order(&mut ks, sorted, &by_score);
                }
                if full[i] {
                    i += 1;
                    continue;
                }
                let k = ks[i];
                let s = grp.servers[k];
                if !ledger.fits_capacity(b, grp.kv, grp.bits, s) {
                    full[i] = true;
                    any_full = true;
                    i += 1;
                    continue;
                }
                if ledger.fits(b, grp.kv, grp.bits, s) {
                    counts[g][k] += 1;
                    ledger.add(b, grp.kv, grp.bits, s, 1.0);
                    left -= 1;
                    if any_full {
                        // Every position marked full is in the ordered prefix.
                        sorted -= compact(&mut ks, &mut full);
                    }
                    continue 'units;
                }
                i += 1;
            }
            break;
        }
    }
}

/// Orders more of `ks` after its ordered prefix `ks[..sorted]`: the next (at least 64, and as
/// many as are ordered already) positions in `by`'s order; returns the new prefix length.
fn extend_order(
    ks: &mut [usize],
    sorted: usize,
    by: &impl Fn(&usize, &usize) -> std::cmp::Ordering,
) -> usize {
    let rest = &mut ks[sorted..];
    let m = sorted.max(64);
    if m >= rest.len() {
        rest.sort_by(by);
        return ks.len();
    }
    rest.select_nth_unstable_by(m, by);
    rest[..m].sort_by(by);
    sorted + m
}

/// Drop the positions marked full from `ks` (keeping the order) and clear the marks; returns
/// how many were dropped.
fn compact(ks: &mut Vec<usize>, full: &mut Vec<bool>) -> usize {
    let before = ks.len();
    let mut i = 0;
    ks.retain(|_| {
        let keep = !full[i];
        i += 1;
        keep
    });
    full.clear();
    full.resize(ks.len(), false);
    before - ks.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budgets(batch: &[f64], user: Vec<UserRow>) -> Budgets {
        Budgets {
            batch: batch.to_vec(),
            kv: vec![1e18; batch.len()],
            link: vec![1e18; batch.len()],
            link_cap: vec![1e18; batch.len()],
            user,
        }
    }
    fn group(n: u32, servers: &[ServerId], score: &[f64]) -> Group {
        Group {
            class: 0,
            members: (0..n).collect(),
            servers: servers.to_vec(),
            score: score.to_vec(),
            mean_d: vec![1.0; servers.len()],
            kv: 1.0,
            bits: 1.0,
        }
    }

    #[test]
    fn unconstrained_slot_skips_the_lp() {
        let b = budgets(&[10.0, 10.0], vec![]);
        let gs = vec![group(3, &[0, 1], &[0.1, 0.5])];
        let mut l = Ledger::new(&b);
        let p = plan(&gs, &b, &mut l, true);
        assert_eq!(p.method, Method::Skipped);
        assert_eq!(p.counts, vec![vec![0, 3]]);
    }

    #[test]
    fn capacity_binds_and_the_lp_splits() {
        // Two groups both prefer server 1 (capacity 3). Group A gains more from it (1.0 vs 0.0)
        // than group B (0.5 vs 0.4): the optimum gives A the 3 slots, B goes to server 0.
        let b = budgets(&[10.0, 3.0], vec![]);
        let gs = vec![
            group(3, &[0, 1], &[0.0, 1.0]),
            group(3, &[0, 1], &[0.4, 0.5]),
        ];
        let mut l = Ledger::new(&b);
        let p = plan(&gs, &b, &mut l, true);
        assert_eq!(p.method, Method::Lp);
        assert_eq!(p.counts, vec![vec![0, 3], vec![3, 0]]);
        assert!(within(&b, &l));
    }

    #[test]
    fn share_row_is_respected_after_rounding() {
        // share(server 1) <= 50%: coef = [-0.5, 0.5], rhs 0. Three requests all prefer server 1.
        let row = UserRow {
            coef: vec![-0.5, 0.5],
            rhs: 0.0,
            tol: 0.0,
            constraint: 0,
        };
        let b = budgets(&[10.0, 10.0], vec![row]);
        let gs = vec![group(3, &[0, 1], &[0.0, 1.0])];
        for use_lp in [true, false] {
            let mut l = Ledger::new(&b);
            let p = plan(&gs, &b, &mut l, use_lp);
            assert!(within(&b, &l));
            let on1 = p.counts[0][1];
            let total: u32 = p.counts[0].iter().sum();
            assert_eq!(total, 3, "{p:?}");
            assert!(on1 as f64 <= 0.5 * total as f64, "{p:?}");
            assert_eq!(on1, 1);
        }
    }

    #[test]
    fn a_failing_lp_falls_back_to_the_greedy_placement() {
        // A non-finite score makes the LP refuse; capacity binds so the LP would be needed.
        let b = budgets(&[2.0, 2.0], vec![]);
        let gs = vec![group(3, &[0, 1], &[f64::NAN, 1.0])];
        let mut l = Ledger::new(&b);
        let p = plan(&gs, &b, &mut l, true);
        assert_eq!(p.method, Method::Fallback);
        assert!(
            p.error.as_deref().unwrap().contains("non-finite"),
            "{:?}",
            p.error
        );
        assert_eq!(p.counts[0].iter().sum::<u32>(), 3);
        assert!(within(&b, &l));
    }

    #[test]
    fn a_solver_failure_or_panic_falls_back_to_the_greedy_placement() {
        use test_hook::{Failure, with_failure};
        // Capacity binds (5 requests, 2 + 2 slots), so the LP is needed and solved normally.
        let b = budgets(&[2.0, 2.0], vec![]);
        let gs = vec![
            group(3, &[0, 1], &[0.2, 1.0]),
            group(2, &[0, 1], &[0.9, 0.1]),
        ];
        let mut l = Ledger::new(&b);
        let solved = plan(&gs, &b, &mut l, true);
        assert_eq!(solved.method, Method::Lp);
        let mut l = Ledger::new(&b);
        let greedy = plan(&gs, &b, &mut l, false);
        assert_eq!(greedy.method, Method::Greedy);
        assert_ne!(
            solved.counts, greedy.counts,
            "the test needs a slot where they differ"
        );
        for (how, msg) in [
            (Failure::Infeasible, "infeasible"),
            (Failure::Panic, "the lp solver panicked"),
        ] {
            let mut l = Ledger::new(&b);
            let p = with_failure(how, || plan(&gs, &b, &mut l, true));
            assert_eq!(p.method, Method::Fallback, "{how:?}");
            let err = p.error.as_deref().unwrap_or_default();
            assert!(err.to_lowercase().contains(msg), "{how:?}: {err}");
            assert_eq!(p.lp_size, (0, 0));
            // The fallback is the greedy fill: the same placement as `use_lp = false`, within
            // every budget, as many requests placed as there are slots.
            assert_eq!(p.counts, greedy.counts, "{how:?}");
            assert!(within(&b, &l));
            assert_eq!(p.counts.iter().flatten().sum::<u32>(), 4);
        }
        // The hook is cleared afterwards: the next solve succeeds.
        let mut l = Ledger::new(&b);
        assert_eq!(plan(&gs, &b, &mut l, true).method, Method::Lp);
    }

    #[test]
    fn degenerate_inputs_never_reach_the_solver() {
        // No groups, empty groups, groups without servers: nothing to place.
        let b = budgets(&[1.0], vec![]);
        for gs in [
            vec![],
            vec![group(0, &[0], &[0.5])],
            vec![group(3, &[], &[])],
        ] {
            let mut l = Ledger::new(&b);
            let p =
                test_hook::with_failure(test_hook::Failure::Panic, || plan(&gs, &b, &mut l, true));
            assert_eq!(p.method, Method::Empty, "{gs:?}");
            assert!(p.counts.iter().flatten().all(|&c| c == 0));
            assert!(l.placed.iter().all(|&c| c == 0));
        }
        // One server with no budget at all: the LP runs on an empty feasible region and
        // places nothing, without error.
        let b = budgets(&[0.0], vec![]);
        let gs = vec![group(3, &[0], &[0.5])];
        let mut l = Ledger::new(&b);
        let p = plan(&gs, &b, &mut l, true);
        assert_eq!(p.method, Method::Lp);
        assert_eq!(p.counts, vec![vec![0]]);
        // One server, one group larger than its budget: the LP fills the budget exactly.
        let b = budgets(&[2.0], vec![]);
        let mut l = Ledger::new(&b);
        let p = plan(&gs, &b, &mut l, true);
        assert_eq!((p.method, p.counts.clone()), (Method::Lp, vec![vec![2]]));
        assert!(within(&b, &l));
    }

    #[test]
    fn an_upload_larger_than_the_link_window_fits_an_idle_link_alone() {
        // Links of 300 bits per window; server 1's has 200 bits in flight. Requests of 800 bits
        // are charged the full window: one goes to the idle link, none to the busy one.
        let mut b = budgets(&[10.0, 10.0], vec![]);
        b.link = vec![300.0, 100.0];
        b.link_cap = vec![300.0, 300.0];
        let mut g = group(3, &[0, 1], &[0.5, 1.0]);
        g.bits = 800.0;
        for use_lp in [true, false] {
            let mut l = Ledger::new(&b);
            let p = plan(std::slice::from_ref(&g), &b, &mut l, use_lp);
            assert_eq!(p.counts, vec![vec![1, 0]], "use_lp {use_lp}");
            assert!(within(&b, &l));
            assert_eq!(l.link, vec![300.0, 0.0]);
        }
    }

    #[test]
    fn over_capacity_requests_stay_unplaced() {
        let b = budgets(&[1.0, 1.0], vec![]);
        let gs = vec![group(5, &[0, 1], &[0.0, 1.0])];
        let mut l = Ledger::new(&b);
        let p = plan(&gs, &b, &mut l, true);
        assert_eq!(p.counts, vec![vec![1, 1]]);
    }
}
