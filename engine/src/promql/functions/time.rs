//! Date functions (`year`, `month`, `day_of_month`, ...) over sample values read as Unix seconds,
//! or over the evaluation time when called without an argument. Dates are UTC.

use promql_parser::parser::Expr;
use strata_storage::labels::Labels;

use crate::promql::EvalError;
use crate::promql::eval::{Ctx, Steps};
use crate::promql::series::{Series, Val};

pub(crate) fn is_date_fn(name: &str) -> bool {
    matches!(
        name,
        "year"
            | "month"
            | "day_of_month"
            | "day_of_week"
            | "day_of_year"
            | "days_in_month"
            | "hour"
            | "minute"
    )
}

pub(crate) fn eval(
    ctx: &mut Ctx<'_>,
    name: &str,
    args: &[Box<Expr>],
    st: &Steps,
) -> Result<Val, EvalError> {
    let mut v = if let Some(a) = args.first() {
        ctx.eval_vector(a, st)?
    } else {
        vec![Series {
            labels: Labels::default(),
            drop_name: false,
            points: (0..st.n).map(|i| Some(st.t(i) as f64 / 1000.0)).collect(),
        }]
    };
    for s in &mut v {
        s.drop_name = true;
        for p in s.points.iter_mut().flatten() {
            *p = date_part(name, *p);
        }
    }
    Ok(Val::Vector(v))
}

/// Civil date (year, month 1-12, day 1-31) of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn date_part(name: &str, v: f64) -> f64 {
    if !v.is_finite() {
        return f64::NAN;
    }
    let secs = v as i64;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    (match name {
        "year" => y,
        "month" => m,
        "day_of_month" => d,
        "day_of_week" => (days + 4).rem_euclid(7),
        "day_of_year" => (1..m).map(|mm| days_in_month(y, mm)).sum::<i64>() + d,
        "days_in_month" => days_in_month(y, m),
        "hour" => sod / 3600,
        _ => (sod % 3600) / 60,
    }) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        // 2024-02-29T13:45:00Z
        let t = 1_709_214_300.0;
        assert_eq!(date_part("year", t), 2024.0);
        assert_eq!(date_part("month", t), 2.0);
        assert_eq!(date_part("day_of_month", t), 29.0);
        assert_eq!(date_part("days_in_month", t), 29.0);
        assert_eq!(date_part("day_of_year", t), 60.0);
        assert_eq!(date_part("day_of_week", t), 4.0);
        assert_eq!(date_part("hour", t), 13.0);
        assert_eq!(date_part("minute", t), 45.0);
        assert_eq!(date_part("year", 0.0), 1970.0);
    }
}
