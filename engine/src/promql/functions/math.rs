//! Element-wise math and trigonometric functions, `clamp*` and `round`. NaN propagates as in Go's
//! `math.Min`/`math.Max`.

use promql_parser::parser::Expr;

use super::arg;
use crate::promql::EvalError;
use crate::promql::eval::{Ctx, Steps};
use crate::promql::series::Val;

pub(crate) fn lookup(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sgn" => |v| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        },
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "deg" => |v| v * 180.0 / std::f64::consts::PI,
        "rad" => |v| v * std::f64::consts::PI / 180.0,
        _ => return None,
    })
}

fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// `clamp(v, min, max)`, `clamp_min(v, min)`, `clamp_max(v, max)`, `round(v[, to_nearest])`.
pub(crate) fn clamp_round(
    ctx: &mut Ctx<'_>,
    name: &str,
    args: &[Box<Expr>],
    st: &Steps,
) -> Result<Val, EvalError> {
    let mut v = ctx.eval_vector(arg(args, 0)?, st)?;
    let mut p: Vec<Vec<f64>> = Vec::new();
    for a in &args[1..] {
        p.push(ctx.eval_scalar(a, st)?);
    }
    for s in &mut v {
        s.drop_name = true;
        for (i, pt) in s.points.iter_mut().enumerate() {
            let Some(x) = *pt else { continue };
            *pt = match name {
                "clamp" => {
                    let (lo, hi) = (p[0][i], p[1][i]);
                    if hi < lo {
                        None
                    } else {
                        Some(go_max(lo, go_min(hi, x)))
                    }
                }
                "clamp_min" => Some(go_max(p[0][i], x)),
                "clamp_max" => Some(go_min(p[0][i], x)),
                _ => {
                    let inv = 1.0 / p.first().map_or(1.0, |v| v[i]);
                    Some((x * inv + 0.5).floor() / inv)
                }
            };
        }
    }
    v.retain(|s| s.points.iter().any(Option::is_some));
    Ok(Val::Vector(v))
}
