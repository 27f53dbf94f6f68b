//! `histogram_quantile` and `histogram_fraction` over classic histograms: series that differ only
//! in their `le` label are the cumulative buckets of one histogram.

use hashbrown::HashMap;
use promql_parser::parser::Expr;
use strata_storage::labels::Labels;

use super::arg;
use crate::promql::EvalError;
use crate::promql::eval::{Ctx, Steps};
use crate::promql::series::{Series, Val, filter_labels, set_label};

/// Counts within this relative difference of each other are treated as equal when buckets are
/// made monotonic, so floating-point noise raises no annotation.
const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

pub(crate) fn eval(
    ctx: &mut Ctx<'_>,
    name: &str,
    args: &[Box<Expr>],
    st: &Steps,
) -> Result<Val, EvalError> {
    // histogram_quantiles(v, "label", q...) has the vector first; the others last.
    let (vec_idx, param_idx): (usize, Vec<usize>) = match name {
        "histogram_quantile" => (1, vec![0]),
        "histogram_fraction" => (2, vec![0, 1]),
        _ => (0, (2..args.len()).collect()),
    };
    let mut params = Vec::new();
    for &i in &param_idx {
        params.push(ctx.eval_scalar(arg(args, i)?, st)?);
    }
    let qlabel = if name == "histogram_quantiles" {
        match ctx.eval(arg(args, 1)?, st)? {
            Val::Str(s) => Some(s),
            _ => return Err(EvalError::Execution("expected string argument".into())),
        }
    } else {
        None
    };
    for (p, &i) in params.iter().zip(&param_idx) {
        if name != "histogram_fraction"
            && let Some(q) = p.iter().find(|q| q.is_nan() || **q < 0.0 || **q > 1.0)
        {
            let pos = ctx.position(arg(args, i)?);
            ctx.warn(format!(
                "PromQL warning: quantile value should be between 0 and 1, got {q} {pos}"
            ));
        }
    }
    let v = ctx.eval_vector(arg(args, vec_idx)?, st)?;
    // Group buckets by their labels without `le` and `__name__`.
    let mut groups: Vec<(Labels, Vec<(f64, usize)>)> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let vec_pos = ctx.position(arg(args, vec_idx)?);
    let mut by_labels: HashMap<Labels, usize> = HashMap::new();
    for (i, s) in v.iter().enumerate() {
        let Some(le) = s.labels.get("le").and_then(parse_le) else {
            ctx.warn(format!(
                "PromQL warning: bucket label \"le\" is missing or has a malformed value of {:?} for metric name {:?} {vec_pos}",
                s.labels.get("le").unwrap_or(""),
                s.labels.metric_name(),
            ));
            continue;
        };
        // Series that differ only in their name would be merged as one bucket.
        let unnamed = filter_labels(&s.labels, |n| n != "__name__");
        if let Some(&j) = by_labels.get(&unnamed)
            && v[j]
                .points
                .iter()
                .zip(&s.points)
                .any(|(a, b)| a.is_some() && b.is_some())
        {
            return Err(EvalError::Execution(
                "vector cannot contain metrics with the same labelset".into(),
            ));
        }
        by_labels.insert(unnamed, i);
        let key = filter_labels(&s.labels, |n| n != "le" && n != "__name__");
        let g = *index.entry(key.clone()).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push((le, i));
    }
    let mut out = Vec::with_capacity(groups.len());
    let mut fixed = false;
    for (labels, buckets) in groups {
        ctx.check_deadline()?;
        let outputs = if name == "histogram_fraction" {
            1
        } else {
            params.len()
        };
        for k in 0..outputs {
            let mut points = vec![None; st.n];
            let mut b: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
            for (i, p) in points.iter_mut().enumerate() {
                b.clear();
                b.extend(
                    buckets
                        .iter()
                        .filter_map(|&(le, j)| v[j].points[i].map(|c| (le, c))),
                );
                if b.is_empty() {
                    continue;
                }
                *p = Some(if name == "histogram_fraction" {
                    bucket_fraction(params[0][i], params[1][i], &mut b, &mut fixed)
                } else {
                    bucket_quantile(params[k][i], &mut b, &mut fixed)
                });
            }
            let labels = match &qlabel {
                Some(l) => set_label(&labels, l, &format!("{:?}", params[k][0])),
                None => labels.clone(),
            };
            out.push(Series {
                labels,
                drop_name: false,
                points,
            });
        }
    }
    if fixed {
        ctx.info(format!(
            "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {:?} {vec_pos}",
            v.first().map_or("", |s| s.labels.metric_name())
        ));
    }
    if qlabel.is_some() {
        let mut seen: HashMap<&Labels, usize> = HashMap::new();
        for (i, s) in out.iter().enumerate() {
            if let Some(&j) = seen.get(&s.labels) {
                let o: &Series = &out[j];
                if o.points
                    .iter()
                    .zip(&s.points)
                    .any(|(a, b)| a.is_some() && b.is_some())
                {
                    return Err(EvalError::Execution(
                        "vector cannot contain metrics with the same labelset".into(),
                    ));
                }
            }
            seen.insert(&s.labels, i);
        }
    }
    Ok(Val::Vector(out))
}

fn parse_le(s: &str) -> Option<f64> {
    match s.trim() {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        t => t.parse().ok(),
    }
}

/// Sorts, merges equal bounds, and makes counts non-decreasing. Returns false when the
/// buckets cannot form a histogram (no `+Inf` bucket or fewer than two buckets).
fn prepare(b: &mut Vec<(f64, f64)>, fixed: &mut bool) -> bool {
    b.sort_by(|x, y| x.0.total_cmp(&y.0));
    if b.last().is_none_or(|l| l.0 != f64::INFINITY) {
        return false;
    }
    b.dedup_by(|next, prev| {
        if next.0 == prev.0 {
            prev.1 += next.1;
            true
        } else {
            false
        }
    });
    let mut max = f64::NEG_INFINITY;
    for x in b.iter_mut() {
        if x.1 < max {
            if (max - x.1) > SMALL_DELTA_TOLERANCE * max.abs() {
                *fixed = true;
            }
            x.1 = max;
        } else {
            max = x.1;
        }
    }
    true
}

fn bucket_quantile(q: f64, b: &mut Vec<(f64, f64)>, fixed: &mut bool) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    if !prepare(b, fixed) || b.len() < 2 {
        return f64::NAN;
    }
    let total = b[b.len() - 1].1;
    if total == 0.0 || total.is_nan() {
        return f64::NAN;
    }
    let mut rank = q * total;
    let i = b.partition_point(|x| x.1 < rank);
    if i == b.len() - 1 {
        return b[b.len() - 2].0;
    }
    if i == 0 && b[0].0 <= 0.0 {
        return b[0].0;
    }
    let mut start = 0.0;
    let end = b[i].0;
    let mut count = b[i].1;
    if i > 0 {
        start = b[i - 1].0;
        count -= b[i - 1].1;
        rank -= b[i - 1].1;
    }
    start + (end - start) * (rank / count)
}

/// The estimated fraction of observations in `[lo, hi]`, from the cumulative count at each
/// bound (see [`cumulative_at`]).
fn bucket_fraction(lo: f64, hi: f64, b: &mut Vec<(f64, f64)>, fixed: &mut bool) -> f64 {
    if !prepare(b, fixed) {
        return f64::NAN;
    }
    let total = b[b.len() - 1].1;
    if total == 0.0 || lo.is_nan() || hi.is_nan() {
        return f64::NAN;
    }
    if lo >= hi {
        return 0.0;
    }
    (cumulative_at(hi, b, total) - cumulative_at(lo, b, total)) / total
}

/// The estimated count of observations at or below `x`: interpolated linearly within a finite
/// bucket (the first starts at 0 when its bound is positive); an infinitely wide bucket gives
/// nothing of itself to an `x` inside it, which at the bottom means all of it lies below `x`.
fn cumulative_at(x: f64, b: &[(f64, f64)], total: f64) -> f64 {
    if x == f64::NEG_INFINITY {
        return 0.0;
    }
    if x == f64::INFINITY {
        return total;
    }
    let mut prev = (f64::NEG_INFINITY, 0.0);
    for (k, &(ub, c)) in b.iter().enumerate() {
        if x <= ub {
            let lb = if k == 0 {
                if ub > 0.0 { 0.0 } else { f64::NEG_INFINITY }
            } else {
                prev.0
            };
            if x <= lb {
                return prev.1;
            }
            if ub == f64::INFINITY {
                return prev.1;
            }
            if lb == f64::NEG_INFINITY {
                return c;
            }
            return prev.1 + (c - prev.1) * (x - lb) / (ub - lb);
        }
        prev = (ub, c);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets() -> Vec<(f64, f64)> {
        vec![(0.1, 10.0), (0.5, 30.0), (1.0, 40.0), (f64::INFINITY, 40.0)]
    }

    #[test]
    fn quantile_interpolates_within_the_bucket() {
        let mut fixed = false;
        // rank 20 falls in (0.1, 0.5] halfway: 0.1 + 0.4 * 10/20.
        assert!((bucket_quantile(0.5, &mut buckets(), &mut fixed) - 0.3).abs() < 1e-12);
        // The top rank in the +Inf bucket answers the highest finite bound.
        assert_eq!(bucket_quantile(1.0, &mut buckets(), &mut fixed), 1.0);
        assert!(bucket_quantile(f64::NAN, &mut buckets(), &mut fixed).is_nan());
        assert_eq!(
            bucket_quantile(-1.0, &mut buckets(), &mut fixed),
            f64::NEG_INFINITY
        );
        assert!(!fixed);
        let mut no_inf = vec![(0.1, 1.0), (0.5, 2.0)];
        assert!(bucket_quantile(0.5, &mut no_inf, &mut fixed).is_nan());
    }

    #[test]
    fn non_monotonic_buckets_are_fixed() {
        let mut fixed = false;
        let mut b = vec![(1.0, 10.0), (2.0, 5.0), (f64::INFINITY, 10.0)];
        bucket_quantile(0.5, &mut b, &mut fixed);
        assert!(fixed);
    }

    #[test]
    fn fraction_interpolates_and_counts_infinite_buckets_whole_only() {
        let mut fixed = false;
        // [0, 0.3]: all of (0, 0.1] (10) and half of (0.1, 0.5] (10) out of 40.
        let f = bucket_fraction(0.0, 0.3, &mut buckets(), &mut fixed);
        assert!((f - 0.5).abs() < 1e-12, "{f}");
        assert_eq!(bucket_fraction(2.0, 3.0, &mut buckets(), &mut fixed), 0.0);
        assert_eq!(
            bucket_fraction(f64::NEG_INFINITY, f64::INFINITY, &mut buckets(), &mut fixed),
            1.0
        );
    }
}
