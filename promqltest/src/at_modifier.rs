//! The `@` variants of an instant eval. Prometheus's runner re-runs every instant eval with
//! `@ <eval time>` set on each selector and subquery that has none (not inside a subquery that
//! already has one), at several other evaluation times; the result must not change, since an
//! expression pinned with `@` is step invariant. Expressions calling a function whose result
//! depends on the evaluation time itself (`time`, `timestamp`, `predict_linear`, the date
//! functions, and `start`, `end`, `range`, `step`) have no variants.

use std::time::{Duration, SystemTime};

use promql_parser::parser::{self, AtModifier, Expr};

/// Functions whose result varies with the evaluation time even when their arguments do not.
const TIME_DEPENDENT_FUNCTIONS: &[&str] = &[
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "time",
    "timestamp",
    "start",
    "end",
    "range",
    "step",
];

/// Whether `expr` mentions `start()`, `end()`, `range()` or `step()` (as a function or in
/// `@ start()`/`@ end()`): their value depends on the query's range, so a range query cannot
/// reproduce an instant query's value at its middle step. A textual test, as Prometheus's runner
/// makes it.
pub fn depends_on_range(expr: &str) -> bool {
    ["start()", "end()", "range()", "step()"]
        .iter()
        .any(|f| expr.contains(f))
}

/// The extra `(expression, eval time)` pairs to run for an instant eval of `expr` at `t_ms`;
/// empty when the expression does not parse or has no step-invariant form.
pub fn variants(expr: &str, t_ms: i64) -> Vec<(String, i64)> {
    if has_non_ascii_byte_escape(expr) {
        return Vec::new();
    }
    let Ok(mut ast) = parser::parse(expr) else {
        return Vec::new();
    };
    // A negative `@` would not print correctly; the scripts never evaluate before 0.
    let Ok(t_unsigned) = u64::try_from(t_ms) else {
        return Vec::new();
    };
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(t_unsigned);
    let mut time_dependent = false;
    pin(&mut ast, &AtModifier::At(at), &mut time_dependent);
    if time_dependent {
        return Vec::new();
    }
    let pinned = ast.to_string();
    let times: Vec<i64> = if t_ms == 0 {
        vec![0, -1000, 1000]
    } else {
        vec![-10 * t_ms, 0, t_ms / 5, t_ms, 10 * t_ms]
    };
    times.into_iter().map(|t| (pinned.clone(), t)).collect()
}

/// Whether a string literal escapes a byte of 0x80 or more (`"\xff"`). Such a string is not
/// valid UTF-8 in Prometheus, but promql-parser decodes the byte as the character U+00FF, so the
/// variant printed from the parsed expression would no longer be the query the script wrote; the
/// variants are built by printing, so none is run for such an expression (the eval itself is).
fn has_non_ascii_byte_escape(expr: &str) -> bool {
    expr.as_bytes().windows(4).any(|w| {
        w[0] == b'\\'
            && w[1] == b'x'
            && std::str::from_utf8(&w[2..4])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .is_some_and(|b| b >= 0x80)
    })
}

fn pin(e: &mut Expr, at: &AtModifier, time_dependent: &mut bool) {
    match e {
        Expr::VectorSelector(vs) => {
            if vs.at.is_none() {
                vs.at = Some(at.clone());
            }
        }
        Expr::MatrixSelector(ms) => {
            if ms.vs.at.is_none() {
                ms.vs.at = Some(at.clone());
            }
        }
        Expr::Subquery(sq) => {
            // Everything below a subquery with `@` keeps its own times.
            if sq.at.is_none() {
                sq.at = Some(at.clone());
            }
        }
        Expr::Call(c) => {
            *time_dependent |= TIME_DEPENDENT_FUNCTIONS.contains(&c.func.name);
            for a in &mut c.args.args {
                pin(a, at, time_dependent);
            }
        }
        Expr::Aggregate(a) => {
            if let Some(p) = &mut a.param {
                pin(p, at, time_dependent);
            }
            pin(&mut a.expr, at, time_dependent);
        }
        Expr::Unary(u) => pin(&mut u.expr, at, time_dependent),
        Expr::Binary(b) => {
            pin(&mut b.lhs, at, time_dependent);
            pin(&mut b.rhs, at, time_dependent);
        }
        Expr::Paren(p) => pin(&mut p.expr, at, time_dependent),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::variants;

    #[test]
    fn non_ascii_byte_escapes_have_no_variants() {
        assert!(variants(r#"label_replace(m, "\xff", "", "src", "(.*)")"#, 0).is_empty());
        assert!(!variants(r#"label_replace(m, "\x41", "", "src", "(.*)")"#, 60_000).is_empty());
    }

    #[test]
    fn pins_selectors_and_outer_subqueries() {
        let v = variants("sum(rate(foo[5m])) + bar", 60_000);
        assert_eq!(v.len(), 5);
        assert!(v[0].0.contains("foo[5m] @ 60.000"), "{}", v[0].0);
        assert!(v[0].0.contains("bar @ 60.000"), "{}", v[0].0);
        assert_eq!(
            v.iter().map(|x| x.1).collect::<Vec<_>>(),
            [-600_000, 0, 12_000, 60_000, 600_000]
        );
        let v = variants("max_over_time(foo[5m:1m])", 0);
        assert_eq!(v.iter().map(|x| x.1).collect::<Vec<_>>(), [0, -1000, 1000]);
        assert!(!v[0].0.contains("foo @"), "{}", v[0].0);
        assert!(variants("time() + foo", 60_000).is_empty());
        assert!(variants("timestamp(foo)", 60_000).is_empty());
    }
}
