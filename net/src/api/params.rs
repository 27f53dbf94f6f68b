//! Query parameters of the Prometheus API: read from the URL and, for POST, from a
//! `application/x-www-form-urlencoded` body; timestamps as Prometheus parses them.

use http::header::CONTENT_TYPE;
use hyper::Request;
use hyper::body::Incoming;

use super::error::ApiError;
use crate::http::body::read_limited;

/// Largest form body accepted by the query routes.
const MAX_FORM_BODY: usize = 8 << 20;

/// Prometheus's formatted minimum and maximum times, accepted as `start`/`end`.
const MIN_TIME_FORMATTED: &str = "-292275055-05-16T16:47:04.192Z";
const MAX_TIME_FORMATTED: &str = "292277025-08-18T07:12:54.999Z";

/// All parameters of a request, in order; a name may repeat (`match[]`).
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Reads the URL query and, for a form POST, the body.
    pub async fn read(req: Request<Incoming>) -> Result<Params, ApiError> {
        let mut out = Vec::new();
        if let Some(q) = req.uri().query() {
            out.extend(form_urlencoded::parse(q.as_bytes()).into_owned());
        }
        let is_form = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if req.method() == http::Method::POST && is_form {
            let mut body = Vec::new();
            read_limited(req.into_body(), &mut body, MAX_FORM_BODY)
                .await
                .map_err(|e| ApiError::bad_data(e.to_string()))?;
            out.extend(form_urlencoded::parse(&body).into_owned());
        }
        Ok(Params(out))
    }

    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Params(pairs)
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// `start` and `end` in ms; all time when absent, as Prometheus.
    pub fn time_range(&self) -> Result<(i64, i64), ApiError> {
        let start = self.time("start")?.unwrap_or(i64::MIN);
        let end = self.time("end")?.unwrap_or(i64::MAX);
        if end < start {
            return Err(ApiError::bad_data(
                "end timestamp must not be before start time",
            ));
        }
        Ok((start, end))
    }

    fn time(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(v) => parse_time(v).map(Some).ok_or_else(|| {
                ApiError::bad_data(format!(
                    "invalid parameter \"{name}\": cannot parse \"{v}\" to a valid timestamp"
                ))
            }),
        }
    }

    /// `limit`: a non-negative integer, 0 (or absent) meaning no limit.
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.get("limit") {
            None | Some("") => Ok(0),
            Some(v) => v.parse::<usize>().map_err(|_| {
                ApiError::bad_data(format!(
                    "invalid parameter \"limit\": cannot parse \"{v}\": limit must be a non-negative integer"
                ))
            }),
        }
    }
}

/// Parses a Prometheus API timestamp: float seconds since the epoch, or RFC 3339. Returns ms.
pub fn parse_time(s: &str) -> Option<i64> {
    if s == MIN_TIME_FORMATTED {
        return Some(i64::MIN);
    }
    if s == MAX_TIME_FORMATTED {
        return Some(i64::MAX);
    }
    if let Ok(f) = s.parse::<f64>() {
        if !f.is_finite() {
            return None;
        }
        let ms = (f * 1000.0).round();
        if ms < i64::MIN as f64 || ms > i64::MAX as f64 {
            return None;
        }
        return Some(ms as i64);
    }
    parse_rfc3339(s)
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` to ms since the epoch.
fn parse_rfc3339(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b'T' | b't')
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut pos = 19;
    let mut millis = 0i64;
    if bytes.get(pos) == Some(&b'.') {
        pos += 1;
        let start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos == start {
            return None;
        }
        let digits: String = text[start..pos]
            .chars()
            .chain("000".chars())
            .take(3)
            .collect();
        millis = digits.parse().ok()?;
    }
    let offset_min = match bytes.get(pos)? {
        b'Z' | b'z' if pos + 1 == bytes.len() => 0,
        sign @ (b'+' | b'-') if pos + 6 == bytes.len() && bytes[pos + 3] == b':' => {
            let minutes = num(pos + 1..pos + 3)? * 60 + num(pos + 4..pos + 6)?;
            if *sign == b'-' { -minutes } else { minutes }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    Some(secs * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("1435781451.781"), Some(1_435_781_451_781));
        assert_eq!(parse_time("1435781451"), Some(1_435_781_451_000));
        assert_eq!(
            parse_time("2015-07-01T20:10:51.781Z"),
            Some(1_435_781_451_781)
        );
        assert_eq!(
            parse_time("2015-07-01T22:10:51.781+02:00"),
            Some(1_435_781_451_781)
        );
        assert_eq!(parse_time("2015-07-01T20:10:51Z"), Some(1_435_781_451_000));
        assert_eq!(parse_time(MIN_TIME_FORMATTED), Some(i64::MIN));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("NaN"), None);
        assert_eq!(parse_time("2015-13-01T20:10:51Z"), None);
    }
}
