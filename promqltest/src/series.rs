//! The series notation of the scripts: `metric{label="value"} 1 2+3x2 _ stale {{...}}`, used both
//! for loaded data and for expected results.
//!
//! A point list expands to one entry per step: `a+bxn` is `n+1` values starting at `a`, `axn` is
//! `a` repeated `n+1` times, `_xn` is `n` missing points, `stale` a staleness marker. Native
//! histograms (`{{...}}`, with the same expansions) are recognised so that steps stay aligned, but
//! their contents are not decoded: strata stores float samples only.

use strata_storage::labels::Labels;

/// The bit pattern Prometheus uses for a staleness marker.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// One position of an expanded point list.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Point {
    /// A float (stale markers are floats with [`STALE_NAN_BITS`]).
    Float(f64),
    /// No point at this step (`_`).
    Missing,
    /// A native histogram (not decoded).
    Histogram,
}

/// A parsed series line.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesLine {
    pub labels: Labels,
    pub points: Vec<Point>,
    /// The line gives the series' start timestamps (`name{...}@st <offsets>`, experimental)
    /// rather than samples; the offsets are not decoded.
    pub start_timestamps: bool,
}

impl SeriesLine {
    pub fn has_histograms(&self) -> bool {
        self.points.iter().any(|p| matches!(p, Point::Histogram))
    }
}

/// Parses `metric{a="b"} <points>`.
pub fn parse_series_line(line: &str) -> Result<SeriesLine, String> {
    let line = line.trim();
    // A standalone `@st <offsets>` line gives the default start timestamps of the load.
    if line.starts_with("@st") {
        return Ok(SeriesLine {
            labels: Labels::default(),
            points: Vec::new(),
            start_timestamps: true,
        });
    }
    let (labels, rest) = parse_labels(line)?;
    if rest.starts_with("@st") {
        return Ok(SeriesLine {
            labels,
            points: Vec::new(),
            start_timestamps: true,
        });
    }
    let points = parse_points(rest)?;
    Ok(SeriesLine {
        labels,
        points,
        start_timestamps: false,
    })
}

/// Parses a series descriptor at the start of `s` (`name`, `name{...}` or `{...}`) and returns
/// it with the rest of the input.
pub fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let name_len = s
        .char_indices()
        .find(|&(i, c)| {
            !(c == '_' || c == ':' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()))
        })
        .map_or(s.len(), |(i, _)| i);
    if name_len > 0 {
        pairs.push(("__name__".into(), s[..name_len].into()));
    }
    let mut rest = &s[name_len..];
    if let Some(body) = rest.strip_prefix('{') {
        rest = body;
        loop {
            rest = rest.trim_start();
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            // A label name, or a quoted name; a quoted string alone is the metric name.
            let (name, r) = if rest.starts_with(['"', '\'', '`']) {
                let (n, r) = parse_quoted(rest)?;
                (n, r)
            } else {
                let len = rest
                    .char_indices()
                    .find(|&(i, c)| {
                        !(c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()))
                    })
                    .map_or(rest.len(), |(i, _)| i);
                if len == 0 {
                    return Err(format!("expected a label name in {s:?}"));
                }
                (rest[..len].to_owned(), &rest[len..])
            };
            let r = r.trim_start();
            if let Some(r) = r.strip_prefix('=') {
                let (value, r) = parse_quoted(r.trim_start())?;
                pairs.push((name, value));
                rest = r.trim_start();
            } else {
                pairs.push(("__name__".into(), name));
                rest = r;
            }
            if let Some(r) = rest.strip_prefix(',') {
                rest = r;
            } else if !rest.starts_with('}') {
                return Err(format!("expected ',' or '}}' in {s:?}"));
            }
        }
    } else if name_len == 0 {
        return Err(format!("expected a series descriptor in {s:?}"));
    }
    let mut names: Vec<&str> = pairs.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err(format!("duplicate label name in {s:?}"));
    }
    Ok((Labels::from_pairs(pairs), rest))
}

/// Parses a Go-style quoted string (double quotes, single quotes or backticks) at the start of
/// `s`, returning its value and the rest.
pub fn parse_quoted(s: &str) -> Result<(String, &str), String> {
    let mut chars = s.char_indices();
    let Some((_, quote)) = chars.next() else {
        return Err("expected a quoted string".into());
    };
    if !matches!(quote, '"' | '\'' | '`') {
        return Err(format!("expected a quoted string at {s:?}"));
    }
    let mut out = String::new();
    let mut bytes: Vec<u8> = Vec::new();
    while let Some((i, c)) = chars.next() {
        if c == quote {
            flush_bytes(&mut bytes, &mut out);
            return Ok((out, &s[i + 1..]));
        }
        if c != '\\' || quote == '`' {
            flush_bytes(&mut bytes, &mut out);
            out.push(c);
            continue;
        }
        let Some((_, e)) = chars.next() else { break };
        let simple = match e {
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            'f' => Some('\x0c'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\x0b'),
            '\\' | '"' | '\'' => Some(e),
            _ => None,
        };
        if let Some(c) = simple {
            flush_bytes(&mut bytes, &mut out);
            out.push(c);
            continue;
        }
        let digits = match e {
            'x' | '0'..='7' => 2,
            'u' => 4,
            'U' => 8,
            _ => return Err(format!("unknown escape \\{e} in {s:?}")),
        };
        let mut hex = String::new();
        for _ in 0..digits {
            let Some((_, d)) = chars.next() else { break };
            hex.push(d);
        }
        if e.is_ascii_digit() {
            let v = u32::from_str_radix(&format!("{e}{hex}"), 8)
                .map_err(|_| format!("bad octal escape in {s:?}"))?;
            bytes.push(u8::try_from(v).map_err(|_| format!("bad octal escape in {s:?}"))?);
            continue;
        }
        let v = u32::from_str_radix(&hex, 16).map_err(|_| format!("bad escape in {s:?}"))?;
        if e == 'x' {
            bytes.push(v as u8);
        } else {
            flush_bytes(&mut bytes, &mut out);
            out.push(char::from_u32(v).ok_or_else(|| format!("bad escape in {s:?}"))?);
        }
    }
    Err(format!("unterminated string in {s:?}"))
}

fn flush_bytes(bytes: &mut Vec<u8>, out: &mut String) {
    if !bytes.is_empty() {
        // Label values in the scripts are UTF-8; invalid sequences are kept lossily.
        out.push_str(&String::from_utf8_lossy(bytes));
        bytes.clear();
    }
}

/// Parses a number as the scripts write it: decimal, `0x` hex, `Inf`, `+Inf`, `-Inf`, `NaN`.
pub fn parse_number(s: &str) -> Option<f64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        let v = i64::from_str_radix(hex, 16).ok()? as f64;
        return Some(if neg { -v } else { v });
    }
    if body.is_empty()
        || !body.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c.is_ascii_alphabetic())
    {
        return None;
    }
    let lower = body.to_ascii_lowercase();
    let v = match lower.as_str() {
        "inf" | "infinity" => f64::INFINITY,
        "nan" => f64::NAN,
        _ if body.starts_with(|c: char| c.is_ascii_digit() || c == '.') => body.parse().ok()?,
        _ => return None,
    };
    Some(if neg { -v } else { v })
}

/// A number without the hex form.
fn parse_decimal(s: &str) -> Option<f64> {
    let body = s.trim_start_matches(['+', '-']);
    if body.starts_with("0x") || body.starts_with("0X") {
        return None;
    }
    parse_number(s)
}

/// Splits a point list into tokens; a histogram `{{...}}` with its expansion is one token.
fn tokens(s: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let mut depth = 0usize;
        while i < b.len() && (depth > 0 || !b[i].is_ascii_whitespace()) {
            if b[i..].starts_with(b"{{") {
                depth += 1;
                i += 2;
            } else if depth > 0 && b[i..].starts_with(b"}}") {
                depth -= 1;
                i += 2;
            } else {
                i += 1;
            }
        }
        if depth > 0 {
            return Err(format!("unterminated histogram in {s:?}"));
        }
        out.push(&s[start..i]);
    }
    Ok(out)
}

/// Expands a point list.
pub fn parse_points(s: &str) -> Result<Vec<Point>, String> {
    let mut out = Vec::new();
    for tok in tokens(s)? {
        expand(tok, &mut out)?;
    }
    Ok(out)
}

fn expand(tok: &str, out: &mut Vec<Point>) -> Result<(), String> {
    let bad = || format!("invalid point {tok:?}");
    if tok.starts_with("{{") {
        // `{{...}}`, `{{...}}xn` or `{{...}}+{{...}}xn`.
        let n = match tok.rfind("}}x") {
            Some(i) => tok[i + 3..].parse::<usize>().map_err(|_| bad())? + 1,
            None if tok.ends_with("}}") => 1,
            None => return Err(bad()),
        };
        out.extend(std::iter::repeat_n(Point::Histogram, n));
        return Ok(());
    }
    match tok {
        "_" => {
            out.push(Point::Missing);
            return Ok(());
        }
        "stale" => {
            out.push(Point::Float(f64::from_bits(STALE_NAN_BITS)));
            return Ok(());
        }
        _ => {}
    }
    // Hex is not point notation: `0x59` is 0 repeated 60 times.
    if let Some(v) = parse_decimal(tok) {
        out.push(Point::Float(v));
        return Ok(());
    }
    // `<base>x<n>` where base is `_`, `a`, `a+b` or `a-b`.
    let times = tok.rfind('x').ok_or_else(bad)?;
    let n: usize = tok[times + 1..].parse().map_err(|_| bad())?;
    let base = &tok[..times];
    if base == "_" {
        out.extend(std::iter::repeat_n(Point::Missing, n));
        return Ok(());
    }
    if base == "stale" {
        out.extend(std::iter::repeat_n(
            Point::Float(f64::from_bits(STALE_NAN_BITS)),
            n + 1,
        ));
        return Ok(());
    }
    let (start, increment) = match split_increment(base) {
        Some((first, sign, step)) => {
            let first = parse_decimal(first).ok_or_else(bad)?;
            let step = parse_decimal(step).ok_or_else(bad)?;
            (first, if sign == '-' { -step } else { step })
        }
        None => (parse_decimal(base).ok_or_else(bad)?, 0.0),
    };
    let mut v = start;
    out.push(Point::Float(v));
    for _ in 0..n {
        v += increment;
        out.push(Point::Float(v));
    }
    Ok(())
}

/// Splits `a+b` / `a-b` at the operator that is neither a leading sign nor an exponent's sign.
fn split_increment(s: &str) -> Option<(&str, char, &str)> {
    let b = s.as_bytes();
    (1..b.len()).find_map(|i| {
        let c = b[i];
        let prev = b[i - 1];
        ((c == b'+' || c == b'-') && prev != b'e' && prev != b'E')
            .then(|| (&s[..i], c as char, &s[i + 1..]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn floats(s: &str) -> Vec<Option<f64>> {
        parse_points(s)
            .unwrap()
            .into_iter()
            .map(|p| match p {
                Point::Float(v) => Some(v),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn expands_the_documented_examples() {
        assert_eq!(
            floats("-2+4x3"),
            [Some(-2.0), Some(2.0), Some(6.0), Some(10.0)]
        );
        assert_eq!(
            floats("1-2x4"),
            [Some(1.0), Some(-1.0), Some(-3.0), Some(-5.0), Some(-7.0)]
        );
        assert_eq!(floats("1x4"), vec![Some(1.0); 5]);
        let p = parse_points("1 _x3 stale").unwrap();
        assert_eq!(p.len(), 5);
        assert_eq!(p[1..4], [Point::Missing; 3]);
        let Point::Float(s) = p[4] else { panic!() };
        assert_eq!(s.to_bits(), STALE_NAN_BITS);
        assert_eq!(
            floats("5 2+3x2 _"),
            [Some(5.0), Some(2.0), Some(5.0), Some(8.0), None]
        );
    }

    #[test]
    fn numbers_and_exponents() {
        assert_eq!(floats("1e-6+1e-6x1"), [Some(1e-6), Some(2e-6)]);
        assert_eq!(
            floats("Inf -Inf +Inf"),
            [
                Some(f64::INFINITY),
                Some(f64::NEG_INFINITY),
                Some(f64::INFINITY)
            ]
        );
        assert!(floats("NaN")[0].unwrap().is_nan());
        assert_eq!(parse_number("0x10"), Some(16.0));
        assert_eq!(floats("0x3"), vec![Some(0.0); 4]);
        assert_eq!(floats("-1-1x2"), [Some(-1.0), Some(-2.0), Some(-3.0)]);
        assert!(parse_points("abc").is_err());
    }

    #[test]
    fn histograms_keep_steps_aligned() {
        let p = parse_points("1 {{schema:0 sum:1 count:1 buckets:[1]}}x2 {{sum:1}}+{{sum:2}}x1 3")
            .unwrap();
        assert_eq!(p.len(), 1 + 3 + 2 + 1);
        assert_eq!(p[6], Point::Float(3.0));
        assert_eq!(p[1], Point::Histogram);
    }

    #[test]
    fn parses_descriptors() {
        let l = parse_series_line(
            r#"http_requests{job="api-server", instance="0", group="production"} 0+10x10"#,
        )
        .unwrap();
        assert_eq!(l.labels.get("__name__"), Some("http_requests"));
        assert_eq!(l.labels.get("instance"), Some("0"));
        assert_eq!(l.points.len(), 11);
        let (l, rest) = parse_labels(r#"{__name__="a", b="x\"y\\z\n"} 1"#).unwrap();
        assert_eq!(l.get("b"), Some("x\"y\\z\n"));
        assert_eq!(rest.trim(), "1");
        let (l, _) = parse_labels(r#"{"metric.name", "a.b"='c'}"#).unwrap();
        assert_eq!(l.get("__name__"), Some("metric.name"));
        assert_eq!(l.get("a.b"), Some("c"));
        let (l, _) = parse_labels("{} 1").unwrap();
        assert!(l.is_empty());
        assert!(parse_labels(r#"{a="1",a="2"}"#).is_err());
        assert!(parse_labels(r#"{a="1""#).is_err());
        let l = parse_series_line(r#"c{type="st"}@st _ -30s-1mx2"#).unwrap();
        assert!(l.start_timestamps && l.points.is_empty());
    }
}
