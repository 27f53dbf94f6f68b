//! The prefetch plan of a query: the selections (matchers and time range) an expression needs,
//! with offsets, `@`, ranges, subquery windows and the lookback delta applied, so a caller can
//! fetch them (e.g. from every shard) and evaluate over an in-memory [`super::Queryable`].

use promql_parser::parser::Expr;
use promql_parser::parser::ast::{AtModifier, Offset};

use super::eval::{at_ms, matcher_sets, ms, offset_ms};
use super::{EngineOptions, EvalError, Selection};

/// The selections `expr` needs when evaluated over `[start, end]` of a query over
/// `[query_start, query_end]`.
pub(crate) fn selections(
    opts: &EngineOptions,
    expr: &Expr,
    start: i64,
    end: i64,
    skip: &[String],
    out: &mut Vec<Selection>,
) -> Result<(), EvalError> {
    let mut c = Collector {
        opts,
        qs: start,
        qe: end,
        skip,
        out,
    };
    c.collect(expr, start, end)
}

struct Collector<'a> {
    opts: &'a EngineOptions,
    qs: i64,
    qe: i64,
    skip: &'a [String],
    out: &'a mut Vec<Selection>,
}

impl Collector<'_> {
    fn collect(&mut self, expr: &Expr, start: i64, end: i64) -> Result<(), EvalError> {
        let (qs, qe) = (self.qs, self.qe);
        let window = |at: Option<&AtModifier>, off: Option<&Offset>| {
            let o = offset_ms(off);
            match at_ms(at, qs, qe) {
                Some(a) => (a.saturating_sub(o), a.saturating_sub(o)),
                None => (start.saturating_sub(o), end.saturating_sub(o)),
            }
        };
        match expr {
            Expr::VectorSelector(vs) => {
                let (a, b) = window(vs.at.as_ref(), vs.offset.as_ref());
                for matchers in matcher_sets(vs.name.as_ref(), &vs.matchers)? {
                    self.out.push(Selection {
                        matchers,
                        mint: a.saturating_sub(self.opts.lookback_delta_ms) + 1,
                        maxt: b,
                    });
                }
            }
            Expr::MatrixSelector(m) => {
                let (a, b) = window(m.vs.at.as_ref(), m.vs.offset.as_ref());
                for matchers in matcher_sets(m.vs.name.as_ref(), &m.vs.matchers)? {
                    self.out.push(Selection {
                        matchers,
                        mint: a.saturating_sub(ms(m.range)) + 1,
                        maxt: b,
                    });
                }
            }
            Expr::Subquery(sq) => {
                let (a, b) = window(sq.at.as_ref(), sq.offset.as_ref());
                // Pushed-down aggregations run at the query's own steps, never in a subquery.
                let skip = std::mem::take(&mut self.skip);
                let r = self.collect(&sq.expr, a.saturating_sub(ms(sq.range)), b);
                self.skip = skip;
                r?;
            }
            Expr::Paren(p) => self.collect(&p.expr, start, end)?,
            Expr::Unary(u) => self.collect(&u.expr, start, end)?,
            Expr::Binary(b) => {
                self.collect(&b.lhs, start, end)?;
                self.collect(&b.rhs, start, end)?;
            }
            Expr::Aggregate(a) => {
                if !self.skip.is_empty() && self.skip.contains(&expr.to_string()) {
                    return Ok(());
                }
                if let Some(p) = &a.param {
                    self.collect(p, start, end)?;
                }
                self.collect(&a.expr, start, end)?;
            }
            Expr::Call(c) => {
                for a in &c.args.args {
                    self.collect(a, start, end)?;
                }
            }
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
        Ok(())
    }
}
