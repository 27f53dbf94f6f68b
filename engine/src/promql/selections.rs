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
    out: &mut Vec<Selection>,
) -> Result<(), EvalError> {
    collect(opts, expr, start, end, start, end, out)
}

fn collect(
    opts: &EngineOptions,
    expr: &Expr,
    start: i64,
    end: i64,
    qs: i64,
    qe: i64,
    out: &mut Vec<Selection>,
) -> Result<(), EvalError> {
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
                out.push(Selection {
                    matchers,
                    mint: a.saturating_sub(opts.lookback_delta_ms) + 1,
                    maxt: b,
                });
            }
        }
        Expr::MatrixSelector(m) => {
            let (a, b) = window(m.vs.at.as_ref(), m.vs.offset.as_ref());
            for matchers in matcher_sets(m.vs.name.as_ref(), &m.vs.matchers)? {
                out.push(Selection {
                    matchers,
                    mint: a.saturating_sub(ms(m.range)) + 1,
                    maxt: b,
                });
            }
        }
        Expr::Subquery(sq) => {
            let (a, b) = window(sq.at.as_ref(), sq.offset.as_ref());
            collect(
                opts,
                &sq.expr,
                a.saturating_sub(ms(sq.range)),
                b,
                qs,
                qe,
                out,
            )?;
        }
        Expr::Paren(p) => collect(opts, &p.expr, start, end, qs, qe, out)?,
        Expr::Unary(u) => collect(opts, &u.expr, start, end, qs, qe, out)?,
        Expr::Binary(b) => {
            collect(opts, &b.lhs, start, end, qs, qe, out)?;
            collect(opts, &b.rhs, start, end, qs, qe, out)?;
        }
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                collect(opts, p, start, end, qs, qe, out)?;
            }
            collect(opts, &a.expr, start, end, qs, qe, out)?;
        }
        Expr::Call(c) => {
            for a in &c.args.args {
                collect(opts, a, start, end, qs, qe, out)?;
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
    Ok(())
}
