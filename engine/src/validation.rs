//! Validation of pushed series and samples, with Cortex's rules and error messages.
//!
//! A series is validated only when it is new to its shard: a known series was compared byte for
//! byte with a stored, already validated label set. Samples' timestamps are checked against
//! `reject_old_samples` and `creation_grace_period` every time (two comparisons).

use std::fmt::Write as _;

use serde::Deserialize;
use strata_storage::labels::METRIC_NAME;

use crate::limits::Limits;

/// How metric and label names are validated (Cortex's `name_validation_scheme`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NameValidationScheme {
    /// Prometheus 3.x: any non-empty UTF-8 string.
    #[default]
    Utf8,
    /// The pre-3.0 charset: `[a-zA-Z_:][a-zA-Z0-9_:]*` for metric names,
    /// `[a-zA-Z_][a-zA-Z0-9_]*` for label names.
    Legacy,
}

impl NameValidationScheme {
    pub fn is_valid_metric_name(self, name: &[u8]) -> bool {
        match self {
            NameValidationScheme::Utf8 => !name.is_empty() && std::str::from_utf8(name).is_ok(),
            NameValidationScheme::Legacy => {
                matches!(name.first(), Some(c) if c.is_ascii_alphabetic() || *c == b'_' || *c == b':')
                    && name
                        .iter()
                        .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b':')
            }
        }
    }

    pub fn is_valid_label_name(self, name: &[u8]) -> bool {
        match self {
            NameValidationScheme::Utf8 => !name.is_empty() && std::str::from_utf8(name).is_ok(),
            NameValidationScheme::Legacy => {
                matches!(name.first(), Some(c) if c.is_ascii_alphabetic() || *c == b'_')
                    && name.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
            }
        }
    }
}

/// Checks a new series' labels (raw bytes, wire order) against the limits and the naming rules.
/// Returns Cortex's message for the first rule broken. Labels with empty values are ignored (an
/// empty value means the label is absent, as in Prometheus).
pub fn validate_series<'a>(
    labels: impl Iterator<Item = (&'a [u8], &'a [u8])> + Clone,
    limits: &Limits,
    scheme: NameValidationScheme,
) -> Result<(), String> {
    let count = labels.clone().filter(|(_, v)| !v.is_empty()).count();
    if count > limits.max_label_names_per_series {
        return Err(format!(
            "series has too many labels (actual: {count}, limit: {}) series: '{}'",
            limits.max_label_names_per_series,
            format_series(labels)
        ));
    }
    let Some(metric) = labels
        .clone()
        .find(|(n, _)| *n == METRIC_NAME.as_bytes())
        .map(|l| l.1)
    else {
        return Err("sample missing metric name".into());
    };
    if metric.is_empty() {
        return Err("sample missing metric name".into());
    }
    if !scheme.is_valid_metric_name(metric) {
        return Err(format!("sample invalid metric name: {}", quote(metric)));
    }
    let mut prev: Option<&[u8]> = None;
    for (name, value) in labels {
        if !scheme.is_valid_label_name(name) {
            return Err(format!(
                "sample invalid label: {} metric {}",
                quote(name),
                quote(metric)
            ));
        }
        if name.len() > limits.max_label_name_length {
            return Err(format!(
                "label name too long: {} metric: {}",
                quote(name),
                quote(metric)
            ));
        }
        if value.len() > limits.max_label_value_length {
            return Err(format!(
                "label value too long: {} metric: {}",
                quote(value),
                quote(metric)
            ));
        }
        if std::str::from_utf8(value).is_err() {
            return Err(format!(
                "label value is not valid UTF-8: label {} metric: {}",
                quote(name),
                quote(metric)
            ));
        }
        if let Some(p) = prev {
            if p == name {
                return Err(format!(
                    "duplicate label name: {} metric {}",
                    quote(name),
                    quote(metric)
                ));
            }
            if p > name {
                return Err(format!(
                    "labels not sorted: {} metric {}",
                    quote(name),
                    quote(metric)
                ));
            }
        }
        prev = Some(name);
    }
    Ok(())
}

/// The window of acceptable timestamps, precomputed once per request.
#[derive(Clone, Copy, Debug)]
pub struct TimeWindow {
    /// Oldest accepted timestamp (inclusive), `i64::MIN` when old samples are accepted.
    pub min_t: i64,
    /// Newest accepted timestamp (inclusive).
    pub max_t: i64,
}

impl TimeWindow {
    pub fn new(limits: &Limits, now_ms: i64) -> Self {
        let min_t = if limits.reject_old_samples {
            now_ms.saturating_sub(limits.reject_old_samples_max_age.as_millis() as i64)
        } else {
            i64::MIN
        };
        let max_t = now_ms.saturating_add(limits.creation_grace_period.as_millis() as i64);
        TimeWindow { min_t, max_t }
    }

    /// Cortex's message when `t` is outside the window, or `None`.
    pub fn check<'a>(
        &self,
        t: i64,
        labels: impl Iterator<Item = (&'a [u8], &'a [u8])> + Clone,
    ) -> Option<String> {
        if t < self.min_t {
            return Some(format!(
                "timestamp too old: {t} metric: {}",
                metric_of(labels)
            ));
        }
        if t > self.max_t {
            return Some(format!(
                "timestamp too new: {t} metric: {}",
                metric_of(labels)
            ));
        }
        None
    }
}

fn metric_of<'a>(mut labels: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> String {
    quote(
        labels
            .find(|(n, _)| *n == METRIC_NAME.as_bytes())
            .map_or(&b""[..], |l| l.1),
    )
}

/// Go's `%.200q`: the first 200 characters, quoted and escaped.
pub fn quote(s: &[u8]) -> String {
    let s = String::from_utf8_lossy(s);
    let cut: String = s.chars().take(200).collect();
    format!("{cut:?}")
}

/// A series in Prometheus's notation, `name{a="b", c="d"}`, from raw label bytes.
pub fn format_series<'a>(labels: impl Iterator<Item = (&'a [u8], &'a [u8])> + Clone) -> String {
    let mut out = String::new();
    if let Some((_, name)) = labels.clone().find(|(n, _)| *n == METRIC_NAME.as_bytes()) {
        out.push_str(&String::from_utf8_lossy(name));
    }
    out.push('{');
    let mut first = true;
    for (n, v) in labels.filter(|(n, _)| *n != METRIC_NAME.as_bytes()) {
        if !first {
            out.push_str(", ");
        }
        first = false;
        let _ = write!(
            out,
            "{}={:?}",
            String::from_utf8_lossy(n),
            String::from_utf8_lossy(v)
        );
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(pairs: &[(&'static str, &'static str)]) -> Result<(), String> {
        validate_series(
            pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
            &Limits::default(),
            NameValidationScheme::Utf8,
        )
    }

    #[test]
    fn rules_and_messages() {
        assert!(v(&[("__name__", "up"), ("job", "x")]).is_ok());
        assert_eq!(
            v(&[("job", "x")]).unwrap_err(),
            "sample missing metric name"
        );
        assert!(
            v(&[("__name__", "up"), ("b", "1"), ("a", "2")])
                .unwrap_err()
                .starts_with("labels not sorted")
        );
        assert!(
            v(&[("__name__", "up"), ("a", "1"), ("a", "2")])
                .unwrap_err()
                .starts_with("duplicate label name")
        );
        assert!(
            v(&[("", "x"), ("__name__", "up")])
                .unwrap_err()
                .starts_with("sample invalid label")
        );
        // UTF-8 names are valid in Prometheus 3.x.
        assert!(v(&[("__name__", "my.metric"), ("läbel", "x")]).is_ok());
        let long = Box::leak("x".repeat(2049).into_boxed_str());
        assert!(
            v(&[("__name__", "up"), ("a", long)])
                .unwrap_err()
                .starts_with("label value too long")
        );
    }

    #[test]
    fn legacy_scheme() {
        let s = NameValidationScheme::Legacy;
        assert!(s.is_valid_metric_name(b"node_cpu:rate5m"));
        assert!(!s.is_valid_metric_name(b"my.metric"));
        assert!(!s.is_valid_label_name(b"a:b"));
        assert!(!s.is_valid_label_name(b"1a"));
    }

    #[test]
    fn time_window() {
        let limits = Limits {
            reject_old_samples: true,
            ..Limits::default()
        };
        let w = TimeWindow::new(&limits, 1_000_000_000_000);
        let l = [(&b"__name__"[..], &b"up"[..])];
        assert!(w.check(1_000_000_000_000, l.iter().copied()).is_none());
        assert!(
            w.check(0, l.iter().copied())
                .unwrap()
                .starts_with("timestamp too old: 0")
        );
        assert!(
            w.check(1_000_000_700_000, l.iter().copied())
                .unwrap()
                .starts_with("timestamp too new")
        );
    }
}
