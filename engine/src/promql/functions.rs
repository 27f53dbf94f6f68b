//! Function calls: dispatch by name to one module per family.
//!
//! Range-vector functions run through [`range_fn`], which walks each series once across all
//! steps with a sliding window; instant-vector functions map each series' points.

mod histogram;
mod info;
mod label;
pub(crate) mod math;
pub(crate) mod over_time;
pub(crate) mod rate;
mod time;

use promql_parser::label::METRIC_NAME;
use promql_parser::parser::{Call, Expr};
use strata_storage::labels::Labels;

use super::EvalError;
use super::eval::{Ctx, SeriesSink, Steps, for_each_window};
use super::series::{Series, Val};

/// A range function over one window.
/// The arguments are the window, the window's end, the step's own time (before `@` and
/// `offset`), the range, and the scalar parameters.
pub(crate) type WindowFn = fn(&[(i64, f64)], i64, i64, i64, &[f64]) -> Option<f64>;

pub(crate) fn eval(ctx: &mut Ctx<'_>, c: &Call, st: &Steps) -> Result<Val, EvalError> {
    let name = c.func.name;
    let args = &c.args.args;
    if streams(c) {
        let mut out = Vec::new();
        let mut held = 0;
        eval_each(ctx, c, st, &mut |s| {
            held += s.points.iter().filter(|p| p.is_some()).count();
            out.push(s);
            Ok(())
        })?;
        ctx.add_samples(held)?;
        return Ok(Val::Vector(out));
    }
    match name {
        "time" => Ok(Val::Scalar(
            (0..st.n).map(|i| st.t(i) as f64 / 1000.0).collect(),
        )),
        "pi" => Ok(Val::Scalar(vec![std::f64::consts::PI; st.n])),
        "min_of" | "max_of" => {
            let a = ctx.eval_scalar(arg(args, 0)?, st)?;
            let b = ctx.eval_scalar(arg(args, 1)?, st)?;
            let min = name == "min_of";
            Ok(Val::Scalar(
                a.iter()
                    .zip(&b)
                    .map(|(x, y)| {
                        if x.is_nan() || y.is_nan() {
                            f64::NAN
                        } else if min {
                            x.min(*y)
                        } else {
                            x.max(*y)
                        }
                    })
                    .collect(),
            ))
        }
        "step" => Ok(Val::Scalar(vec![ctx.query_step as f64 / 1000.0; st.n])),
        "range" => Ok(Val::Scalar(vec![
            (ctx.query_end - ctx.query_start) as f64
                / 1000.0;
            st.n
        ])),
        "start" => Ok(Val::Scalar(vec![ctx.query_start as f64 / 1000.0; st.n])),
        "end" => Ok(Val::Scalar(vec![ctx.query_end as f64 / 1000.0; st.n])),
        "vector" => {
            let s = ctx.eval_scalar(arg(args, 0)?, st)?;
            Ok(Val::Vector(vec![Series {
                labels: Labels::default(),
                drop_name: false,
                points: s.into_iter().map(Some).collect(),
            }]))
        }
        "scalar" => {
            let v = ctx.eval_vector(arg(args, 0)?, st)?;
            Ok(Val::Scalar(
                (0..st.n)
                    .map(|i| {
                        let mut it = v.iter().filter_map(|s| s.points[i]);
                        match (it.next(), it.next()) {
                            (Some(x), None) => x,
                            _ => f64::NAN,
                        }
                    })
                    .collect(),
            ))
        }
        "absent" => {
            let v = ctx.eval_vector(arg(args, 0)?, st)?;
            let points: Vec<Option<f64>> = (0..st.n)
                .map(|i| (!v.iter().any(|s| s.points[i].is_some())).then_some(1.0))
                .collect();
            Ok(absent_result(arg(args, 0)?, points))
        }
        "absent_over_time" => {
            let a = ctx.eval_range(arg(args, 0)?, st)?;
            let mut seen = vec![false; st.n];
            for s in &a.series {
                for_each_window(&s.samples, st, a.at, a.offset, a.range, |i, _, _, w| {
                    seen[i] |= !w.is_empty();
                });
            }
            let points = seen.iter().map(|&x| (!x).then_some(1.0)).collect();
            Ok(absent_result(arg(args, 0)?, points))
        }
        "timestamp" => {
            let mut inner = arg(args, 0)?;
            while let Expr::Paren(p) = inner {
                inner = &p.expr;
            }
            let mut v = if let Expr::VectorSelector(vs) = inner {
                ctx.eval_selector(vs, st, true)?
            } else {
                let mut v = ctx.eval_vector(inner, st)?;
                for s in &mut v {
                    for (i, p) in s.points.iter_mut().enumerate() {
                        if p.is_some() {
                            *p = Some(st.t(i) as f64 / 1000.0);
                        }
                    }
                }
                v
            };
            for s in &mut v {
                s.drop_name = true;
            }
            Ok(Val::Vector(v))
        }
        "clamp" | "clamp_min" | "clamp_max" | "round" => math::clamp_round(ctx, name, args, st),
        "sort" | "sort_desc" => {
            let mut v = ctx.eval_vector(arg(args, 0)?, st)?;
            if st.n == 1 {
                let desc = name == "sort_desc";
                v.sort_by(|a, b| {
                    let (x, y) = (
                        a.points[0].unwrap_or(f64::NAN),
                        b.points[0].unwrap_or(f64::NAN),
                    );
                    match (x.is_nan(), y.is_nan()) {
                        (true, true) => std::cmp::Ordering::Equal,
                        (true, false) => std::cmp::Ordering::Greater,
                        (false, true) => std::cmp::Ordering::Less,
                        _ if desc => y.total_cmp(&x),
                        _ => x.total_cmp(&y),
                    }
                });
            }
            Ok(Val::Vector(v))
        }
        "label_replace" | "label_join" | "sort_by_label" | "sort_by_label_desc" => {
            label::eval(ctx, name, args, st)
        }
        "info" => info::eval(ctx, args, st),
        "histogram_quantile" | "histogram_fraction" | "histogram_quantiles" => {
            histogram::eval(ctx, name, args, st)
        }
        "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
        | "histogram_stdvar" => {
            // Classic (float) samples carry no native histogram: the result is empty.
            ctx.eval_vector(arg(args, 0)?, st)?;
            Ok(Val::Vector(Vec::new()))
        }
        _ if time::is_date_fn(name) => time::eval(ctx, name, args, st),
        _ => Err(EvalError::Execution(format!(
            "function {name:?} is not supported"
        ))),
    }
}

/// Whether the call's result can be produced series by series ([`eval_each`]).
pub(crate) fn streams(c: &Call) -> bool {
    let name = c.func.name;
    rate::lookup(name).is_some()
        || over_time::lookup(name).is_some()
        || math::lookup(name).is_some()
}

/// Evaluates a call for which [`streams`] holds, handing each series to `f`.
pub(crate) fn eval_each(
    ctx: &mut Ctx<'_>,
    c: &Call,
    st: &Steps,
    f: SeriesSink<'_>,
) -> Result<(), EvalError> {
    let name = c.func.name;
    let args = &c.args.args;
    if let Some(w) = rate::lookup(name).or_else(|| over_time::lookup(name)) {
        return range_fn(ctx, name, w, args, st, f);
    }
    let Some(m) = math::lookup(name) else {
        return Err(EvalError::Execution(format!(
            "function {name:?} does not stream"
        )));
    };
    ctx.eval_each(arg(args, 0)?, st, &mut |mut s| {
        for p in s.points.iter_mut().flatten() {
            *p = m(*p);
        }
        s.drop_name = true;
        f(s)
    })
}

pub(crate) fn arg(args: &[Box<Expr>], i: usize) -> Result<&Expr, EvalError> {
    args.get(i)
        .map(AsRef::as_ref)
        .ok_or_else(|| EvalError::Execution("missing function argument".into()))
}

/// The labels `absent` gives its result: the equality matchers of a plain selector argument.
fn absent_result(arg: &Expr, points: Vec<Option<f64>>) -> Val {
    if points.iter().all(Option::is_none) {
        return Val::Vector(Vec::new());
    }
    // Prometheus takes the labels only from a bare selector argument (not in parentheses).
    let labels = match arg {
        Expr::MatrixSelector(ms) => absent_labels(&ms.vs.matchers),
        Expr::VectorSelector(vs) => absent_labels(&vs.matchers),
        _ => Labels::default(),
    };
    Val::Vector(vec![Series {
        labels,
        drop_name: false,
        points,
    }])
}

fn absent_labels(m: &promql_parser::label::Matchers) -> Labels {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut dup: Vec<String> = Vec::new();
    for (i, x) in m.matchers.iter().enumerate() {
        if m.matchers[..i].iter().any(|y| y.name == x.name) {
            dup.push(x.name.clone());
        }
        if x.name == METRIC_NAME || !matches!(x.op, promql_parser::label::MatchOp::Equal) {
            continue;
        }
        pairs.push((x.name.clone(), x.value.clone()));
    }
    pairs.retain(|(n, _)| !dup.contains(n));
    Labels::from_pairs(pairs)
}

/// Runs a range function over every series and step. Scalar parameters are the other
/// arguments, in order; the range argument is the one of matrix type.
fn range_fn(
    ctx: &mut Ctx<'_>,
    name: &str,
    f: WindowFn,
    args: &[Box<Expr>],
    st: &Steps,
    sink: SeriesSink<'_>,
) -> Result<(), EvalError> {
    let mut params: Vec<Vec<f64>> = Vec::new();
    let mut range_arg = None;
    for a in args {
        if a.value_type() == promql_parser::parser::value::ValueType::Matrix {
            range_arg = Some(a.as_ref());
        } else {
            params.push(ctx.eval_scalar(a, st)?);
        }
    }
    let Some(range_expr) = range_arg else {
        return Err(EvalError::Execution(format!("{name} needs a range vector")));
    };
    over_time::check_params(name, &params)?;
    if name == "quantile_over_time"
        && let Some(q) = params[0]
            .iter()
            .find(|q| q.is_nan() || **q < 0.0 || **q > 1.0)
    {
        let pos = ctx.position(&args[0]);
        ctx.warn(format!(
            "PromQL warning: quantile value should be between 0 and 1, got {q} {pos}"
        ));
    }
    let keeps_name = matches!(name, "last_over_time" | "first_over_time");
    let mut p = vec![0.0; params.len()];
    let counter = matches!(name, "rate" | "increase");
    let per_second = name == "rate";
    ctx.each_range_series(range_expr, st, &mut |ctx, s, (range, offset, at)| {
        ctx.check_deadline()?;
        if counter && s.samples.len() >= 2 {
            let metric = s.labels.metric_name();
            if !["_total", "_sum", "_count", "_bucket"]
                .iter()
                .any(|x| metric.ends_with(x))
            {
                let pos = ctx.position(range_expr);
                ctx.info(format!(
                    "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {metric:?} {pos}"
                ));
            }
        }
        let mut points = vec![None; st.n];
        let (mut widest, mut any) = (0, false);
        if counter {
            // rate and increase walk the windows with running counter-reset corrections, unless
            // the step is longer than the range and the windows leave most samples out.
            let dense = st.step <= range && st.n > 1;
            (widest, any) = rate::counter_points(
                s.samples, dense, st, at, offset, range, per_second, &mut points,
            );
        } else {
            for_each_window(s.samples, st, at, offset, range, |i, te, _, w| {
                widest = widest.max(w.len());
                if w.is_empty() {
                    return;
                }
                for (slot, vals) in p.iter_mut().zip(&params) {
                    *slot = vals[i];
                }
                points[i] = f(w, te, st.t(i), range, &p);
                any |= points[i].is_some();
            });
        }
        // The widest window is held while it is reduced, as in Prometheus.
        ctx.add_samples(widest)?;
        ctx.release_samples(widest);
        if any {
            sink(Series {
                labels: s.labels.clone(),
                drop_name: s.drop_name || !keeps_name,
                points,
            })?;
        }
        Ok(())
    })?;
    Ok(())
}
