//! Aggregations pushed down to the shards.
//!
//! `sum`, `count`, `group`, `min` and `max` over a series-local input (selectors, range functions
//! over a range selector, math functions of those) can be evaluated by every shard over its own
//! series, in parallel, without moving samples between shards: each shard folds its series into
//! per-group accumulators ([`Partial`]), the coordinator merges the accumulators of all shards
//! group by group ([`Partial::merge`]) and finishes them as if it had folded every series itself.
//!
//! Only aggregations evaluated at the query's own steps are pushed down (not those inside a
//! subquery, which runs at its own steps); [`pushdowns`] lists them by their text, which is
//! how a shard is told what to evaluate and how the coordinator finds the merged result
//! ([`Partials`]).

use hashbrown::HashMap;
use promql_parser::parser::token::{T_COUNT, T_GROUP, T_MAX, T_MIN, T_SUM, TokenId};
use promql_parser::parser::{AggregateExpr, Expr};

use super::aggregate::{Acc, accumulate};
use super::eval::{Ctx, Steps};
use super::functions::{math, over_time, rate};
use super::{EngineOptions, EvalError, Queryable};

/// One pushed-down aggregation evaluated over some of the series: per group, the accumulators
/// of every step, plus the annotations the evaluation produced.
#[derive(Clone, Debug)]
pub struct Partial {
    op: TokenId,
    start: i64,
    step: i64,
    n: usize,
    groups: Vec<Acc>,
    warnings: Vec<String>,
    infos: Vec<String>,
}

impl Partial {
    /// Adds the accumulators of `other`, the same aggregation evaluated over other series.
    pub fn merge(&mut self, other: Partial) {
        debug_assert_eq!((self.op, self.n), (other.op, other.n));
        let mut index: HashMap<_, usize> = self
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.labels().clone(), i))
            .collect();
        for g in other.groups {
            if let Some(&i) = index.get(g.labels()) {
                self.groups[i].merge(self.op, &g);
            } else {
                index.insert(g.labels().clone(), self.groups.len());
                self.groups.push(g);
            }
        }
        for w in other.warnings {
            if !self.warnings.contains(&w) {
                self.warnings.push(w);
            }
        }
        for i in other.infos {
            if !self.infos.contains(&i) {
                self.infos.push(i);
            }
        }
    }

    /// Groups (output series before finishing) it holds.
    pub fn groups(&self) -> usize {
        self.groups.len()
    }
}

/// Merged pushed-down aggregations of one query, by the aggregation's text.
#[derive(Clone, Debug, Default)]
pub struct Partials(HashMap<String, Partial>);

impl Partials {
    pub fn insert(&mut self, agg: String, p: Partial) {
        self.0.insert(agg, p);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Ctx<'_> {
    /// The merged accumulators of `a` when it was pushed down and evaluated at the steps `st`;
    /// its annotations join the query's.
    pub(crate) fn pushed_down(&mut self, a: &AggregateExpr, st: &Steps) -> Option<Vec<Acc>> {
        let parts = self.q.partials()?;
        if parts.is_empty() {
            return None;
        }
        let p = parts.0.get(&a.to_string())?;
        if (p.start, p.step, p.n) != (st.start, st.step, st.n) {
            return None;
        }
        for w in &p.warnings {
            self.warn(w.clone());
        }
        for i in &p.infos {
            self.info(i.clone());
        }
        Some(p.groups.clone())
    }
}

/// Appends the texts of the aggregations in `expr` that can be pushed down, outermost first;
/// subqueries are not entered.
pub(crate) fn pushdowns(expr: &Expr, out: &mut Vec<String>) {
    match expr {
        Expr::Aggregate(a) if pushable(a) => out.push(a.to_string()),
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                pushdowns(p, out);
            }
            pushdowns(&a.expr, out);
        }
        Expr::Paren(p) => pushdowns(&p.expr, out),
        Expr::Unary(u) => pushdowns(&u.expr, out),
        Expr::Binary(b) => {
            pushdowns(&b.lhs, out);
            pushdowns(&b.rhs, out);
        }
        Expr::Call(c) => {
            for a in &c.args.args {
                pushdowns(a, out);
            }
        }
        Expr::Subquery(_)
        | Expr::MatrixSelector(_)
        | Expr::VectorSelector(_)
        | Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::Extension(_) => {}
    }
}

fn pushable(a: &AggregateExpr) -> bool {
    matches!(a.op.id(), T_SUM | T_COUNT | T_GROUP | T_MIN | T_MAX)
        && a.param.is_none()
        && series_local(&a.expr)
}

/// Whether each output series of `e` depends on one input series only, so that any partition
/// of the series evaluates it to a partition of its output.
fn series_local(e: &Expr) -> bool {
    match e {
        Expr::VectorSelector(_) => true,
        Expr::Paren(p) => series_local(&p.expr),
        Expr::Call(c) => {
            let name = c.func.name;
            let args = &c.args.args;
            if rate::lookup(name).is_some() || over_time::lookup(name).is_some() {
                // The range argument must be a plain range selector (not a subquery) and the
                // others literals.
                args.iter()
                    .all(|a| matches!(unparen(a), Expr::MatrixSelector(_) | Expr::NumberLiteral(_)))
            } else if math::lookup(name).is_some() {
                args.len() == 1 && series_local(&args[0])
            } else {
                false
            }
        }
        _ => false,
    }
}

fn unparen(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unparen(&p.expr),
        e => e,
    }
}

/// Evaluates the pushed-down aggregation `expr` (text `agg`, part of the query `query`, whose
/// text places annotations) over `q` up to its accumulators.
#[allow(clippy::too_many_arguments)]
pub(crate) fn evaluate(
    opts: &EngineOptions,
    q: &dyn Queryable,
    query: &str,
    agg: &str,
    expr: &Expr,
    start: i64,
    end: i64,
    step: i64,
) -> Result<Partial, EvalError> {
    let Expr::Aggregate(a) = expr else {
        return Err(EvalError::Execution(format!(
            "not an aggregation that can be pushed down: {agg}"
        )));
    };
    if !pushable(a) {
        return Err(EvalError::Execution(format!(
            "not an aggregation that can be pushed down: {agg}"
        )));
    }
    let instant = step == 0;
    let (mut ctx, st) = Ctx::new(opts, q, query, start, end, step, instant);
    let groups = accumulate(&mut ctx, a, &st)?;
    Ok(Partial {
        op: a.op.id(),
        start: st.start,
        step: st.step,
        n: st.n,
        groups,
        warnings: ctx.warnings,
        infos: ctx.infos,
    })
}
