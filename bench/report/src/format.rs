//! How numbers are written in the report and on chart axes: three significant digits, SI
//! suffixes for large throughputs, thousands separators for large plain numbers.

use crate::stats::Spread;

/// `x` with three significant digits and no exponent: `0.0123`, `1.23`, `123`, `12,346`.
pub fn sig(x: f64) -> String {
    let a = x.abs();
    if a >= 999.5 {
        return thousands(x.round() as i64);
    }
    if a == 0.0 {
        return "0".to_owned();
    }
    // Digits after the point for three significant digits; rounding may carry into a new digit
    // (9.996 -> 10.0), which still reads correctly.
    let decimals = (2 - a.log10().floor() as i32).max(0) as usize;
    format!("{x:.decimals$}")
}

/// `x` with an SI suffix and three significant digits: `950`, `12.3k`, `1.90M`, `2.10G`.
pub fn si(x: f64) -> String {
    let a = x.abs();
    for (scale, suffix) in [(1e9, "G"), (1e6, "M"), (1e3, "k")] {
        if a >= scale * 0.9995 {
            return format!("{}{suffix}", sig(x / scale));
        }
    }
    sig(x)
}

/// `s`, a formatted number with an optional suffix, without trailing decimal zeros:
/// `0.100` -> `0.1`, `2.00M` -> `2M`, `12,000` unchanged.
pub fn trim_zeros(s: &str) -> String {
    let split = s.find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | ',' | '-')));
    let (number, suffix) = s.split_at(split.unwrap_or(s.len()));
    if !number.contains('.') {
        return s.to_owned();
    }
    let number = number.trim_end_matches('0').trim_end_matches('.');
    format!("{number}{suffix}")
}

/// An integer with `,` between thousands: `10,000`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A ratio such as `1.58x`; close to 1 it keeps a third decimal so that a loss never reads
/// `1.00x`.
pub fn ratio(r: f64) -> String {
    if (r - 1.0).abs() < 0.005 {
        format!("{r:.3}x")
    } else if r < 10.0 {
        format!("{r:.2}x")
    } else if r < 100.0 {
        format!("{r:.1}x")
    } else {
        format!("{r:.0}x")
    }
}

/// A median with its min–max spread when there were several runs: `12.3 (11.9–13.0)`.
pub fn spread(s: &Spread, f: fn(f64) -> String) -> String {
    if s.runs > 1 {
        format!("{} ({}–{})", f(s.median), f(s.min), f(s.max))
    } else {
        f(s.median)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_significant_digits() {
        assert_eq!(sig(0.0123_4), "0.0123");
        assert_eq!(sig(0.61), "0.610");
        assert_eq!(sig(1.234), "1.23");
        assert_eq!(sig(12.34), "12.3");
        assert_eq!(sig(123.4), "123");
        assert_eq!(sig(12_345.6), "12,346");
        assert_eq!(si(1.9e6), "1.90M");
        assert_eq!(si(950.0), "950");
        assert_eq!(si(12_340.0), "12.3k");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(trim_zeros("7.00"), "7");
        assert_eq!(trim_zeros("2.50M"), "2.5M");
        assert_eq!(trim_zeros("12,000"), "12,000");
    }

    #[test]
    fn ratios_near_one_keep_a_third_decimal() {
        assert_eq!(ratio(0.998), "0.998x");
        assert_eq!(ratio(0.84), "0.84x");
        assert_eq!(ratio(12.34), "12.3x");
        assert_eq!(ratio(123.4), "123x");
    }
}
