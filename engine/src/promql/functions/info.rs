//! `info(v [, selector])` (experimental): adds the data labels of info series (by default
//! `target_info`) to the series of `v` they share the identifying labels `instance` and `job`
//! with.
//!
//! Rules, as Prometheus's test scripts pin them down:
//! - without `__name__` matchers the info metric is `target_info`; with only negative ones it is
//!   any `.+_info` metric they allow;
//! - series of `v` that are themselves such info series pass through unchanged;
//! - with data-label matchers only the labels they name are added, and an info series counts
//!   only if it satisfies them; where none does, a series is kept unchanged if every data matcher
//!   accepts the empty string and dropped otherwise;
//! - labels already on the series win; among series of one info metric the newest sample wins;
//!   two info metrics giving one label different values is an error;
//! - info series are looked up at the times the argument's own selector is evaluated (its `@`
//!   and `offset`).

use std::time::{Duration, UNIX_EPOCH};

use hashbrown::HashMap;
use promql_parser::label::{MatchOp, Matcher as PMatcher, Matchers};
use promql_parser::parser::ast::{AtModifier, Offset};
use promql_parser::parser::{Expr, VectorSelector};
use strata_storage::labels::{Label, Labels, METRIC_NAME};

use super::arg;
use crate::promql::EvalError;
use crate::promql::eval::{Ctx, Steps, at_ms, offset_ms};
use crate::promql::series::{Series, Val};

const IDENTIFYING: [&str; 2] = ["instance", "job"];

/// The `@` time (ms) and total offset (ms) at which the selector an expression reads from is
/// evaluated, composing subqueries with the selectors inside them.
fn time_anchor(ctx: &Ctx<'_>, e: &Expr, at: Option<i64>, off: i64) -> (Option<i64>, i64) {
    let step =
        |a: Option<&AtModifier>, o: Option<&Offset>| match at_ms(a, ctx.query_start, ctx.query_end)
        {
            Some(t) => (Some(t), offset_ms(o)),
            None => (at, off + offset_ms(o)),
        };
    match e {
        Expr::VectorSelector(vs) => step(vs.at.as_ref(), vs.offset.as_ref()),
        Expr::MatrixSelector(m) => step(m.vs.at.as_ref(), m.vs.offset.as_ref()),
        Expr::Subquery(sq) => {
            let (a, o) = step(sq.at.as_ref(), sq.offset.as_ref());
            time_anchor(
                ctx,
                &sq.expr,
                a.map(|t| t - o),
                if a.is_some() { 0 } else { o },
            )
        }
        Expr::Paren(p) => time_anchor(ctx, &p.expr, at, off),
        Expr::Unary(u) => time_anchor(ctx, &u.expr, at, off),
        Expr::Aggregate(a) => time_anchor(ctx, &a.expr, at, off),
        Expr::Call(c) => c
            .args
            .args
            .iter()
            .find(|a| !matches!(a.as_ref(), Expr::NumberLiteral(_) | Expr::StringLiteral(_)))
            .map_or((at, off), |a| time_anchor(ctx, a, at, off)),
        _ => (at, off),
    }
}

fn matches(m: &PMatcher, v: &str) -> bool {
    match &m.op {
        MatchOp::Equal => m.value == v,
        MatchOp::NotEqual => m.value != v,
        MatchOp::Re(_) | MatchOp::NotRe(_) => {
            let re = regex::Regex::new(&format!("^(?s:{})$", m.value));
            let hit = re.is_ok_and(|r| r.is_match(v));
            matches!(m.op, MatchOp::Re(_)) == hit
        }
    }
}

/// One info series at one step: its labels and the time of its sample.
struct Hit<'a> {
    labels: &'a Labels,
    ts: f64,
}

pub(crate) fn eval(ctx: &mut Ctx<'_>, args: &[Box<Expr>], st: &Steps) -> Result<Val, EvalError> {
    let base_expr = arg(args, 0)?;
    let base = ctx.eval_vector(base_expr, st)?;
    let sel: Vec<PMatcher> = match args.get(1).map(AsRef::as_ref) {
        Some(Expr::VectorSelector(vs)) => {
            let mut m = vs.matchers.matchers.clone();
            if let Some(n) = &vs.name {
                m.push(PMatcher::new(MatchOp::Equal, METRIC_NAME, n));
            }
            m
        }
        Some(_) => return Err(EvalError::Execution("info() needs a selector".into())),
        None => Vec::new(),
    };
    let (mut names, data): (Vec<PMatcher>, Vec<PMatcher>) =
        sel.into_iter().partition(|m| m.name == METRIC_NAME);
    if names.is_empty() {
        names.push(PMatcher::new(MatchOp::Equal, METRIC_NAME, "target_info"));
    } else if !names
        .iter()
        .any(|m| matches!(m.op, MatchOp::Equal | MatchOp::Re(_)))
    {
        let re =
            regex::Regex::new("^(?s:.+_info)$").map_err(|e| EvalError::Execution(e.to_string()))?;
        names.push(PMatcher::new(MatchOp::Re(re), METRIC_NAME, ".+_info"));
    }
    let (at, off) = time_anchor(ctx, base_expr, None, 0);
    let vs = VectorSelector {
        name: None,
        matchers: Matchers::new(names.clone()),
        offset: Some(if off < 0 {
            Offset::Neg(Duration::from_millis(off.unsigned_abs()))
        } else {
            Offset::Pos(Duration::from_millis(off.unsigned_abs()))
        }),
        at: at.map(|t| {
            let d = Duration::from_millis(t.unsigned_abs());
            AtModifier::At(if t < 0 {
                UNIX_EPOCH - d
            } else {
                UNIX_EPOCH + d
            })
        }),
    };
    let values = ctx.eval_selector(&vs, st, false)?;
    let times = ctx.eval_selector(&vs, st, true)?;
    let data_ok_empty = data.iter().all(|m| matches(m, ""));
    // Info series by identifying labels.
    let mut by_id: HashMap<Vec<String>, Vec<usize>> = HashMap::new();
    for (i, s) in values.iter().enumerate() {
        let id: Vec<String> = IDENTIFYING
            .iter()
            .map(|n| s.labels.get(n).unwrap_or("").to_string())
            .collect();
        if data
            .iter()
            .all(|m| matches(m, s.labels.get(&m.name).unwrap_or("")))
        {
            by_id.entry(id).or_default().push(i);
        }
    }
    let mut out: Vec<Series> = Vec::new();
    let mut index: HashMap<(Labels, bool), usize> = HashMap::new();
    for b in base {
        ctx.check_deadline()?;
        let is_info = names.iter().all(|m| matches(m, b.labels.metric_name()));
        let id: Vec<String> = IDENTIFYING
            .iter()
            .map(|n| b.labels.get(n).unwrap_or("").to_string())
            .collect();
        let group = if is_info || id.iter().all(String::is_empty) {
            None
        } else {
            by_id.get(&id)
        };
        for i in 0..st.n {
            let Some(v) = b.points[i] else { continue };
            let labels = if is_info {
                Some(b.labels.clone())
            } else {
                let mut newest: HashMap<&str, Hit<'_>> = HashMap::new();
                for &j in group.map_or(&[][..], Vec::as_slice) {
                    let (Some(_), Some(ts)) = (values[j].points[i], times[j].points[i]) else {
                        continue;
                    };
                    let name = values[j].labels.metric_name();
                    if newest.get(name).is_none_or(|h| ts > h.ts) {
                        newest.insert(
                            name,
                            Hit {
                                labels: &values[j].labels,
                                ts,
                            },
                        );
                    }
                }
                if newest.is_empty() {
                    data_ok_empty.then(|| b.labels.clone())
                } else {
                    Some(enrich(&b.labels, newest.values(), &data)?)
                }
            };
            let Some(labels) = labels else { continue };
            let key = (labels, b.drop_name);
            let o = *index.entry(key.clone()).or_insert_with(|| {
                out.push(Series {
                    labels: key.0,
                    drop_name: key.1,
                    points: vec![None; st.n],
                });
                out.len() - 1
            });
            out[o].points[i] = Some(v);
        }
    }
    Ok(Val::Vector(out))
}

/// `base` with the data labels of the info series in `hits` it lacks.
fn enrich<'a>(
    base: &Labels,
    hits: impl Iterator<Item = &'a Hit<'a>>,
    data: &[PMatcher],
) -> Result<Labels, EvalError> {
    let mut added: Vec<Label> = Vec::new();
    for h in hits {
        for l in h.labels {
            if l.name == METRIC_NAME
                || (data.is_empty() && IDENTIFYING.contains(&l.name.as_str()))
                || (!data.is_empty() && !data.iter().any(|m| m.name == l.name))
                || base.get(&l.name).is_some()
            {
                continue;
            }
            match added.iter().find(|x| x.name == l.name) {
                Some(x) if x.value != l.value => {
                    return Err(EvalError::Execution(format!(
                        "conflicting label: {} has values {:?} and {:?}",
                        l.name, x.value, l.value
                    )));
                }
                Some(_) => {}
                None => added.push(l.clone()),
            }
        }
    }
    let mut all: Vec<Label> = base.iter().cloned().collect();
    all.extend(added);
    all.sort();
    Ok(Labels::from_sorted(all))
}
