//! The `*_over_time` family and `double_exponential_smoothing`: reductions of one window.

use super::WindowFn;
use crate::promql::EvalError;
use crate::promql::aggregate::{kahan_add, quantile};

pub(crate) fn lookup(name: &str) -> Option<WindowFn> {
    Some(match name {
        "avg_over_time" => |w, _, _, _, _| Some(mean(w.iter().map(|p| p.1))),
        "sum_over_time" => |w, _, _, _, _| {
            let (s, c) = w.iter().fold((0.0, 0.0), |(s, c), p| kahan_add(p.1, s, c));
            Some(s + c)
        },
        "count_over_time" => |w, _, _, _, _| Some(w.len() as f64),
        "min_over_time" => |w, _, _, _, _| {
            Some(
                w[1..]
                    .iter()
                    .fold(w[0].1, |m, p| if p.1 < m || m.is_nan() { p.1 } else { m }),
            )
        },
        "max_over_time" => |w, _, _, _, _| {
            Some(
                w[1..]
                    .iter()
                    .fold(w[0].1, |m, p| if p.1 > m || m.is_nan() { p.1 } else { m }),
            )
        },
        "last_over_time" => |w, _, _, _, _| Some(w[w.len() - 1].1),
        "first_over_time" => |w, _, _, _, _| Some(w[0].1),
        "present_over_time" => |_, _, _, _, _| Some(1.0),
        "ts_of_last_over_time" => |w, _, _, _, _| Some(w[w.len() - 1].0 as f64 / 1000.0),
        "ts_of_first_over_time" => |w, _, _, _, _| Some(w[0].0 as f64 / 1000.0),
        "ts_of_max_over_time" => |w, _, _, _, _| {
            let mut best = w[0];
            for &p in &w[1..] {
                if p.1 >= best.1 || best.1.is_nan() {
                    best = p;
                }
            }
            Some(best.0 as f64 / 1000.0)
        },
        "ts_of_min_over_time" => |w, _, _, _, _| {
            let mut best = w[0];
            for &p in &w[1..] {
                if p.1 <= best.1 || best.1.is_nan() {
                    best = p;
                }
            }
            Some(best.0 as f64 / 1000.0)
        },
        "stdvar_over_time" => |w, _, _, _, _| Some(variance(w)),
        "stddev_over_time" => |w, _, _, _, _| Some(variance(w).sqrt()),
        "quantile_over_time" => |w, _, _, _, p| {
            let mut v: Vec<f64> = w.iter().map(|x| x.1).collect();
            Some(quantile(p.first().copied().unwrap_or(f64::NAN), &mut v))
        },
        "mad_over_time" => |w, _, _, _, _| {
            if w.iter().any(|x| x.1.is_nan()) {
                return Some(f64::NAN);
            }
            let mut v: Vec<f64> = w.iter().map(|x| x.1).collect();
            let median = quantile(0.5, &mut v);
            let mut dev: Vec<f64> = v.iter().map(|x| (x - median).abs()).collect();
            Some(quantile(0.5, &mut dev))
        },
        "double_exponential_smoothing" | "holt_winters" => |w, _, _, _, p| {
            if w.len() < 2 {
                return None;
            }
            let (sf, tf) = (p[0], p[1]);
            let mut s0 = 0.0;
            let mut s1 = w[0].1;
            let mut b = w[1].1 - w[0].1;
            for (i, &(_, v)) in w.iter().enumerate().skip(1) {
                let x = sf * v;
                if i > 1 {
                    b = tf * (s1 - s0) + (1.0 - tf) * b;
                }
                let y = (1.0 - sf) * (s1 + b);
                s0 = s1;
                s1 = x + y;
            }
            Some(s1)
        },
        _ => return None,
    })
}

/// Rejects invalid parameters before any window is evaluated.
pub(crate) fn check_params(name: &str, params: &[Vec<f64>]) -> Result<(), EvalError> {
    if name == "double_exponential_smoothing" || name == "holt_winters" {
        for v in params.first().into_iter().flatten() {
            if *v <= 0.0 || *v >= 1.0 {
                return Err(EvalError::Execution(format!(
                    "invalid smoothing factor. Expected: 0 < sf < 1, got: {v}"
                )));
            }
        }
        for v in params.get(1).into_iter().flatten() {
            if *v <= 0.0 || *v >= 1.0 {
                return Err(EvalError::Execution(format!(
                    "invalid trend factor. Expected: 0 < tf < 1, got: {v}"
                )));
            }
        }
    }
    Ok(())
}

/// The mean with compensated summation, switching to an incremental mean if the sum overflows.
pub(crate) fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut c, mut m, mut count) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let mut incremental = false;
    for v in values {
        count += 1.0;
        if !incremental {
            let (ns, nc) = kahan_add(v, sum, c);
            if count == 1.0 || !ns.is_infinite() {
                sum = ns;
                c = nc;
                continue;
            }
            incremental = true;
            m = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (m, c) = kahan_add(v / count, q * m, q * c);
    }
    if incremental {
        m + c
    } else {
        sum / count + c / count
    }
}

/// The population variance with compensated Welford updates.
fn variance(w: &[(i64, f64)]) -> f64 {
    let (mut count, mut mean, mut cm, mut aux, mut ca) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(_, v) in w {
        count += 1.0;
        let delta = v - (mean + cm);
        (mean, cm) = kahan_add(delta / count, mean, cm);
        (aux, ca) = kahan_add(delta * (v - (mean + cm)), aux, ca);
    }
    (aux + ca) / count
}
