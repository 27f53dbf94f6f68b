//! Comparing an evaluation's result with an eval's expectations, with the tolerance of
//! Prometheus's runner: floats are equal when both are NaN, identical, or within a relative
//! difference of 1e-6 (an absolute one scaled to the smallest normal float near zero).

use strata_engine::promql::{QueryResult, SeriesSamples, Value, VectorSample};
use strata_storage::labels::Labels;

use crate::script::{Annotations, Eval, Expected};
use crate::series::Point;

const EPSILON: f64 = 1e-6;

/// Whether `a` and `b` are equal for the scripts.
pub fn almost_equal(a: f64, b: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < f64::MIN_POSITIVE {
        return diff < EPSILON * f64::MIN_POSITIVE;
    }
    diff / abs_sum.min(f64::MAX) < EPSILON
}

/// Checks the warnings and infos of a result against the eval's expectations.
pub fn check_annotations(eval: &Eval, res: &QueryResult) -> Result<(), String> {
    check_kind("warn", &eval.warn, &res.warnings)?;
    check_kind("info", &eval.info, &res.infos)
}

fn check_kind(kind: &str, want: &Annotations, got: &[String]) -> Result<(), String> {
    let expected = &want.expected;
    if want.none && !got.is_empty() {
        return Err(format!("expected no {kind} annotations but got {got:?}"));
    }
    for m in expected {
        if !got.iter().any(|g| m.matches(g)) {
            return Err(format!(
                "expected a {kind} annotation matching {m} but got {got:?}"
            ));
        }
    }
    if !expected.is_empty()
        && let Some(g) = got.iter().find(|g| !expected.iter().any(|m| m.matches(g)))
    {
        return Err(format!("unexpected {kind} annotation {g:?}"));
    }
    Ok(())
}

/// Checks an error against `expect fail` lines.
pub fn check_failure(eval: &Eval, err: &str) -> Result<(), String> {
    for m in &eval.fail {
        if !m.matches(err) {
            return Err(format!("expected error matching {m} but got {err:?}"));
        }
    }
    Ok(())
}

/// The time range a matrix result is laid out on: `(start, end, step)`.
pub type Grid = (i64, i64, i64);

/// Compares a value with the expected result; `grid` lays out expected points of a matrix.
pub fn compare(eval: &Eval, value: &Value, grid: Option<Grid>) -> Result<(), String> {
    match (&eval.expected, value) {
        (Expected::String(want), Value::String { s, .. }) => {
            if want == s {
                Ok(())
            } else {
                Err(format!("expected string {want:?} but got {s:?}"))
            }
        }
        (Expected::Scalar(want), Value::Scalar { v, .. }) => {
            if almost_equal(*want, *v) {
                Ok(())
            } else {
                Err(format!("expected scalar {want} but got {v}"))
            }
        }
        (Expected::Series(want), Value::Vector(got)) => compare_vector(want, got, eval.ordered),
        (Expected::Series(want), Value::Matrix(got)) => {
            if eval.ordered {
                return Err("expected ordered result, but query returned a matrix".into());
            }
            let Some(grid) = grid else {
                return Err(
                    "got a range vector; an instant eval needs `expect range vector`".into(),
                );
            };
            compare_matrix(want, got, grid)
        }
        (want, got) => Err(format!(
            "expected {} but got {}",
            expected_kind(want),
            value_kind(got)
        )),
    }
}

fn expected_kind(e: &Expected) -> &'static str {
    match e {
        Expected::Series(_) => "series",
        Expected::Scalar(_) => "a scalar",
        Expected::String(_) => "a string",
    }
}

fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::Scalar { .. } => "a scalar",
        Value::String { .. } => "a string",
        Value::Vector(_) => "a vector",
        Value::Matrix(_) => "a matrix",
    }
}

fn compare_vector(
    want: &[(Labels, Vec<Point>)],
    got: &[VectorSample],
    ordered: bool,
) -> Result<(), String> {
    let mut seen = vec![false; want.len()];
    for (pos, s) in got.iter().enumerate() {
        let Some(i) = want.iter().position(|(l, _)| *l == s.labels) else {
            return Err(format!(
                "unexpected metric {} in result, has value {}",
                s.labels, s.v
            ));
        };
        if seen[i] {
            return Err(format!("metric {} appears twice in the result", s.labels));
        }
        if ordered && i != pos {
            return Err(format!(
                "expected metric {} at position {} but was at {}",
                s.labels,
                i + 1,
                pos + 1
            ));
        }
        match want[i].1.first() {
            Some(Point::Float(v)) if almost_equal(*v, s.v) => {}
            Some(Point::Float(v)) => {
                return Err(format!("expected {v} for {} but got {}", s.labels, s.v));
            }
            Some(Point::Histogram) => {
                return Err(format!(
                    "expected a histogram for {} but got {}",
                    s.labels, s.v
                ));
            }
            Some(Point::Missing) | None => {
                return Err(format!("no expected value for {} (got {})", s.labels, s.v));
            }
        }
        seen[i] = true;
    }
    if let Some(i) = seen.iter().position(|s| !s) {
        return Err(format!("expected metric {} not found", want[i].0));
    }
    Ok(())
}

fn compare_matrix(
    want: &[(Labels, Vec<Point>)],
    got: &[SeriesSamples],
    (start, end, step): Grid,
) -> Result<(), String> {
    if let Some(w) = got.windows(2).find(|w| w[0].labels >= w[1].labels) {
        return Err(format!(
            "matrix is not sorted by labels: {} before {}",
            w[0].labels, w[1].labels
        ));
    }
    let mut seen = vec![false; want.len()];
    for s in got {
        let Some(i) = want.iter().position(|(l, _)| *l == s.labels) else {
            return Err(format!(
                "unexpected metric {} in result, has {:?}",
                s.labels, s.samples
            ));
        };
        seen[i] = true;
        let mut points = Vec::new();
        for (k, p) in want[i].1.iter().enumerate() {
            let t = start + k as i64 * step;
            if t > end {
                return Err(format!(
                    "expected {} points for {}, but the query range cannot return this many",
                    want[i].1.len(),
                    s.labels
                ));
            }
            match p {
                Point::Float(v) => points.push((t, *v)),
                Point::Missing => {}
                Point::Histogram => {
                    return Err(format!("expected a histogram at {t} for {}", s.labels));
                }
            }
        }
        if points.len() != s.samples.len() {
            return Err(format!(
                "expected {} points for {}, but got {:?}",
                points.len(),
                s.labels,
                s.samples
            ));
        }
        for (k, (&(wt, wv), &(gt, gv))) in points.iter().zip(&s.samples).enumerate() {
            if wt != gt {
                return Err(format!(
                    "expected point {k} of {} at t={wt}, but it is at t={gt} (result has {:?})",
                    s.labels, s.samples
                ));
            }
            if !almost_equal(wv, gv) {
                return Err(format!(
                    "expected point {k} (t={wt}) of {} to be {wv}, but got {gv} (result has {:?})",
                    s.labels, s.samples
                ));
            }
        }
    }
    if let Some(i) = seen.iter().position(|s| !s) {
        return Err(format!("expected metric {} not found", want[i].0));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::almost_equal;

    #[test]
    fn tolerance() {
        assert!(almost_equal(f64::NAN, f64::NAN));
        assert!(almost_equal(1.0, 1.0 + 1e-7));
        assert!(!almost_equal(1.0, 1.0 + 1e-5));
        assert!(almost_equal(f64::INFINITY, f64::INFINITY));
        assert!(!almost_equal(f64::INFINITY, f64::NEG_INFINITY));
        assert!(!almost_equal(0.0, 1e-300));
        assert!(almost_equal(0.0, -0.0));
        assert!(!almost_equal(1.0, f64::NAN));
    }
}
