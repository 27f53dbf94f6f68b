//! Durations and times as the scripts write them: Prometheus's duration syntax (`1m`, `10s53ms`,
//! `1h30m`, `0`), always in milliseconds.

/// Parses a duration such as `5m`, `10s53ms` or `0` into milliseconds. Units must appear from the
/// largest to the smallest, each at most once, as Prometheus requires.
pub fn parse_ms(s: &str) -> Result<i64, String> {
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 24 * 3_600_000),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    if s == "0" {
        return Ok(0);
    }
    let mut rest = s;
    let mut total: i64 = 0;
    let mut next_unit = 0;
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("invalid duration {s:?}"));
        }
        let n: i64 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid duration {s:?}"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let Some(i) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(format!("invalid unit {unit:?} in duration {s:?}"));
        };
        if i < next_unit {
            return Err(format!("units out of order in duration {s:?}"));
        }
        next_unit = i + 1;
        total = n
            .checked_mul(UNITS[i].1)
            .and_then(|v| v.checked_add(total))
            .ok_or_else(|| format!("duration {s:?} overflows"))?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::parse_ms;

    #[test]
    fn parses_prometheus_durations() {
        assert_eq!(parse_ms("0"), Ok(0));
        assert_eq!(parse_ms("5m"), Ok(300_000));
        assert_eq!(parse_ms("10s53ms"), Ok(10_053));
        assert_eq!(parse_ms("1h30m"), Ok(5_400_000));
        assert_eq!(parse_ms("1d"), Ok(86_400_000));
        assert!(parse_ms("").is_err());
        assert!(parse_ms("5").is_err());
        assert!(parse_ms("1s1m").is_err());
        assert!(parse_ms("1x").is_err());
    }
}
