//! Prometheus's JSON for query results, written straight into a byte buffer (no intermediate
//! tree): values as strings in Go's float formatting, timestamps as seconds with up to three
//! decimals, label sets as objects in label order.

use strata_engine::promql::{QueryResult, Value};
use strata_storage::labels::Labels;

/// `{"status":"success","data":{"resultType":..,"result":..}[,"warnings":[..]][,"infos":[..]]}`.
pub fn write_result(out: &mut Vec<u8>, res: &QueryResult, extra_warnings: &[String]) {
    out.extend_from_slice(br#"{"status":"success","data":{"resultType":""#);
    match &res.value {
        // Scalars and strings go through Go's standard encoder in Prometheus: the time is a
        // float (`1435781451.78`), a scalar's value always in plain notation.
        Value::Scalar { t, v } => {
            out.extend_from_slice(br#"scalar","result":["#);
            write_seconds_float(out, *t);
            out.extend_from_slice(b",\"");
            out.extend_from_slice(format_plain(*v).as_bytes());
            out.extend_from_slice(b"\"]");
        }
        Value::String { t, s } => {
            out.extend_from_slice(br#"string","result":["#);
            write_seconds_float(out, *t);
            out.push(b',');
            write_string(out, s, true);
            out.push(b']');
        }
        Value::Vector(samples) => {
            out.extend_from_slice(br#"vector","result":["#);
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(br#"{"metric":"#);
                write_labels(out, &s.labels);
                out.extend_from_slice(br#","value":"#);
                write_point(out, s.t, s.v);
                out.push(b'}');
            }
            out.push(b']');
        }
        Value::Matrix(series) => {
            out.extend_from_slice(br#"matrix","result":["#);
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(br#"{"metric":"#);
                write_labels(out, &s.labels);
                out.extend_from_slice(br#","values":["#);
                for (j, &(t, v)) in s.samples.iter().enumerate() {
                    if j > 0 {
                        out.push(b',');
                    }
                    write_point(out, t, v);
                }
                out.extend_from_slice(b"]}");
            }
            out.push(b']');
        }
    }
    out.push(b'}');
    let warnings = res.warnings.iter().chain(extra_warnings);
    write_string_array(out, "warnings", warnings);
    write_string_array(out, "infos", res.infos.iter());
    out.push(b'}');
}

fn write_string_array<'a>(out: &mut Vec<u8>, key: &str, items: impl Iterator<Item = &'a String>) {
    let mut first = true;
    for s in items {
        if first {
            out.extend_from_slice(b",\"");
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(b"\":[");
            first = false;
        } else {
            out.push(b',');
        }
        write_string(out, s, true);
    }
    if !first {
        out.push(b']');
    }
}

/// `{"name":"value",...}` in label order.
pub fn write_labels(out: &mut Vec<u8>, labels: &Labels) {
    out.push(b'{');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(out, &l.name, false);
        out.push(b':');
        write_string(out, &l.value, false);
    }
    out.push(b'}');
}

/// `[<seconds>,"<value>"]`.
pub fn write_point(out: &mut Vec<u8>, t: i64, v: f64) {
    out.push(b'[');
    write_timestamp(out, t);
    out.extend_from_slice(b",\"");
    write_float(out, v);
    out.extend_from_slice(b"\"]");
}

/// Milliseconds as seconds: `1435781451.781`, `1435781451.780`, `1435781451` (the fraction is
/// written as three digits, and omitted when zero), as Prometheus writes them.
pub fn write_timestamp(out: &mut Vec<u8>, t: i64) {
    if t < 0 {
        out.push(b'-');
    }
    let abs = t.unsigned_abs();
    write_u64(out, abs / 1000);
    let frac = abs % 1000;
    if frac != 0 {
        let digit = |d: u64| b'0' + (d % 10) as u8;
        out.extend_from_slice(&[b'.', digit(frac / 100), digit(frac / 10), digit(frac)]);
    }
}

/// Decimal digits of `n`, without allocating (one call per point of a large answer).
fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Milliseconds as a float number of seconds in Go's shortest form (`1435781451.78`).
pub fn write_seconds_float(out: &mut Vec<u8>, t: i64) {
    out.extend_from_slice(format!("{}", t as f64 / 1000.0).as_bytes());
}

pub use strata_engine::promql::format_value as format_plain;

/// A float as Prometheus writes sample values: Go's shortest representation, in plain notation
/// unless the magnitude is below 1e-6 or at least 1e21 (then exponent notation, `1e-07`);
/// `NaN`, `+Inf`, `-Inf`.
pub fn write_float(out: &mut Vec<u8>, v: f64) {
    let abs = v.abs();
    if abs == 0.0 || (1e-6..1e21).contains(&abs) {
        // The common case, written in place: Rust's shortest plain form is Go's here.
        let _ = std::io::Write::write_fmt(out, format_args!("{v}"));
        return;
    }
    out.extend_from_slice(format_float(v).as_bytes());
}

pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let abs = v.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Rust writes `1.5e-7`; Go writes the exponent with a sign and at least two digits.
        let s = format!("{v:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        return format!("{mantissa}e{sign}{digits:0>2}");
    }
    format!("{v}")
}

/// A JSON string. `html` escapes `<`, `>` and `&` as Go's standard encoder does (used for
/// annotations; label sets are written by Prometheus's own encoder, which does not).
pub fn write_string(out: &mut Vec<u8>, s: &str, html: bool) {
    out.push(b'"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let esc: Option<&[u8]> = match c {
            '"' => Some(b"\\\""),
            '\\' => Some(b"\\\\"),
            '\n' => Some(b"\\n"),
            '\r' => Some(b"\\r"),
            '\t' => Some(b"\\t"),
            '<' if html => Some(b"\\u003c"),
            '>' if html => Some(b"\\u003e"),
            '&' if html => Some(b"\\u0026"),
            '\u{2028}' => Some(b"\\u2028"),
            '\u{2029}' => Some(b"\\u2029"),
            _ => None,
        };
        if esc.is_none() && (c as u32) >= 0x20 {
            continue;
        }
        out.extend_from_slice(&s.as_bytes()[start..i]);
        match esc {
            Some(e) => out.extend_from_slice(e),
            None => out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes()),
        }
        start = i + c.len_utf8();
    }
    out.extend_from_slice(&s.as_bytes()[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(t: i64) -> String {
        let mut v = Vec::new();
        write_timestamp(&mut v, t);
        String::from_utf8(v).unwrap()
    }

    fn js(s: &str, html: bool) -> String {
        let mut v = Vec::new();
        write_string(&mut v, s, html);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn floats_as_go_writes_them() {
        assert_eq!(format_float(1.0), "1");
        assert_eq!(format_float(0.1), "0.1");
        assert_eq!(format_float(1e6), "1000000");
        assert_eq!(format_float(-2.5), "-2.5");
        assert_eq!(format_float(1e-7), "1e-07");
        assert_eq!(format_float(1.5e-7), "1.5e-07");
        assert_eq!(format_float(1e21), "1e+21");
        assert_eq!(format_float(1.234e300), "1.234e+300");
        assert_eq!(format_float(1e20), "100000000000000000000");
        assert_eq!(format_float(0.000_001), "0.000001");
        assert_eq!(format_float(0.0), "0");
        assert_eq!(format_float(-0.0), "-0");
        assert_eq!(format_float(f64::NAN), "NaN");
        assert_eq!(format_float(f64::INFINITY), "+Inf");
        assert_eq!(format_float(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn scalars_in_plain_notation() {
        assert_eq!(format_plain(1e-7), "0.0000001");
        assert_eq!(format_plain(1e21), "1000000000000000000000");
        assert_eq!(format_plain(f64::NEG_INFINITY), "-Inf");
        let mut v = Vec::new();
        write_seconds_float(&mut v, 1_435_781_451_780);
        assert_eq!(v, b"1435781451.78");
    }

    #[test]
    fn floats_written_in_place_as_formatted() {
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let mut values = vec![
            0.0, -0.0, 1.0, 0.1, 1e-6, 9.99e-7, 1e21, 1e20, 123.456, -2.5e-300,
        ];
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(f64::from_bits(x));
        }
        for v in values {
            let mut out = Vec::new();
            write_float(&mut out, v);
            assert_eq!(String::from_utf8(out).unwrap(), format_float(v), "{v:e}");
        }
    }

    #[test]
    fn timestamps_as_seconds() {
        assert_eq!(ts(1_435_781_451_781), "1435781451.781");
        assert_eq!(ts(1_435_781_451_780), "1435781451.780");
        assert_eq!(ts(1_435_781_451_001), "1435781451.001");
        assert_eq!(ts(1_435_781_451_000), "1435781451");
        assert_eq!(ts(0), "0");
        assert_eq!(ts(-1500), "-1.500");
        assert_eq!(ts(i64::MIN), "-9223372036854775.808");
    }

    #[test]
    fn strings_escaped() {
        assert_eq!(js("a\"b\\c\n\u{1}", false), r#""a\"b\\c\n\u0001""#);
        assert_eq!(js("<&>", false), r#""<&>""#);
        assert_eq!(js("<&>", true), r#""\u003c\u0026\u003e""#);
        assert_eq!(js("héllo", false), "\"héllo\"");
    }
}
