//! The evaluator's intermediate values: step-aligned series and label-set helpers.
//!
//! A [`Series`] holds one optional point per step of the evaluation it belongs to; `drop_name`
//! marks a series whose `__name__` is removed when the query ends (Prometheus's delayed name
//! removal), so label functions can still read and keep it.

use std::fmt::Write as _;

use strata_storage::labels::{Label, Labels, METRIC_NAME};

/// The bit pattern of Prometheus's staleness marker.
pub(crate) const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

pub(crate) fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// Whether any of the samples is a staleness marker. Blocks of samples are folded without an
/// early exit, so the compiler vectorises the comparisons (a range selection holds up to tens of
/// thousands of samples per series, and markers are rare).
pub(crate) fn any_stale(samples: &[(i64, f64)]) -> bool {
    samples.chunks(64).any(|block| {
        block
            .iter()
            .fold(false, |any, p| any | (p.1.to_bits() == STALE_NAN_BITS))
    })
}

/// One series of an instant vector evaluated over steps.
#[derive(Clone, Debug)]
pub(crate) struct Series {
    pub labels: Labels,
    pub drop_name: bool,
    pub points: Vec<Option<f64>>,
}

/// One series of a range vector: raw (or subquery) samples, sorted by time, without stale markers.
#[derive(Clone, Debug)]
pub(crate) struct RangeSeries {
    pub labels: Labels,
    pub drop_name: bool,
    pub samples: Vec<(i64, f64)>,
}

/// The value of a node over all steps.
#[derive(Clone, Debug)]
pub(crate) enum Val {
    Scalar(Vec<f64>),
    Str(String),
    Vector(Vec<Series>),
    Matrix(Vec<RangeSeries>),
}

/// `labels` without the names for which `drop` is true.
pub(crate) fn filter_labels(labels: &Labels, mut keep: impl FnMut(&str) -> bool) -> Labels {
    Labels::from_sorted(labels.iter().filter(|l| keep(&l.name)).cloned().collect())
}

/// `labels` with `name` set to `value` (removed when `value` is empty).
pub(crate) fn set_label(labels: &Labels, name: &str, value: &str) -> Labels {
    let mut v: Vec<Label> = labels.iter().filter(|l| l.name != name).cloned().collect();
    if !value.is_empty() {
        let pos = v.partition_point(|l| l.name.as_str() < name);
        v.insert(
            pos,
            Label {
                name: name.to_string(),
                value: value.to_string(),
            },
        );
    }
    Labels::from_sorted(v)
}

pub(crate) fn without_name(labels: &Labels) -> Labels {
    filter_labels(labels, |n| n != METRIC_NAME)
}

/// A key identifying the values of the `names` labels (`on = true`) or of all labels but `names`
/// and `__name__` (`on = false`).
pub(crate) fn signature(labels: &Labels, on: bool, names: &[String]) -> Vec<(String, String)> {
    if on {
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            if let Some(v) = labels.get(n) {
                out.push((n.clone(), v.to_string()));
            }
        }
        out.sort();
        out.dedup();
        out
    } else {
        labels
            .iter()
            .filter(|l| l.name != METRIC_NAME && !names.contains(&l.name))
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect()
    }
}

/// The label set of a signature, in Prometheus's notation.
pub(crate) fn signature_labels(sig: &[(String, String)]) -> Labels {
    Labels::from_pairs(sig.iter().map(|(n, v)| (n.clone(), v.clone())))
}

/// Prometheus's `{a="b", c="d"}` notation, keeping `__name__` as a label.
pub(crate) fn labels_string(labels: &Labels) -> String {
    let mut s = String::from("{");
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&l.name);
        s.push('=');
        let _ = write!(s, "{:?}", l.value);
    }
    s.push('}');
    s
}
