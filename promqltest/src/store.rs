//! The data a script loads: a strata [`Head`] behind the evaluator's [`Queryable`].
//!
//! Native-histogram samples cannot be stored; the store remembers the label sets of series that
//! would hold them (series written with `{{...}}`, and the histograms `load_with_nhcb` derives
//! from classic `_bucket` series) and flags every selection that reaches one, so the runner can
//! tell an eval that needs histograms from one that fails. Start timestamps (`@st` lines of the
//! experimental scripts) are remembered the same way and not stored.

use std::cell::Cell;

use strata_engine::promql::{Queryable, SeriesSamples};
use strata_storage::head::{Head, HeadOptions};
use strata_storage::labels::{LabelHasher, Labels};
use strata_storage::matcher::Matcher;

use crate::script::Load;
use crate::series::Point;

/// A script's loaded data.
pub struct Store {
    head: Head,
    histogram_series: Vec<Labels>,
    /// Series given start timestamps (`@st` lines), which storage cannot keep.
    start_timestamp_series: Vec<Labels>,
    touched_histograms: Cell<bool>,
    selects: Cell<usize>,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

impl Store {
    pub fn new() -> Self {
        Store {
            head: Head::new(HeadOptions::default()),
            histogram_series: Vec::new(),
            start_timestamp_series: Vec::new(),
            touched_histograms: Cell::new(false),
            selects: Cell::new(0),
        }
    }

    /// Appends a `load` command's points: point `i` of a series is at `i * step`. When a
    /// command lists a series twice, the later line replaces the earlier one.
    pub fn load(&mut self, load: &Load) -> Result<(), String> {
        // A standalone `@st` line gives every series after it start timestamps.
        let mut default_start_timestamps = false;
        for (i, s) in load.series.iter().enumerate() {
            if s.start_timestamps && s.labels.is_empty() {
                default_start_timestamps = true;
                continue;
            }
            if default_start_timestamps && !s.start_timestamps {
                self.start_timestamp_series.push(s.labels.clone());
            }
            if load.series[i + 1..].iter().any(|later| {
                later.labels == s.labels && later.start_timestamps == s.start_timestamps
            }) {
                continue;
            }
            if s.start_timestamps {
                self.start_timestamp_series.push(s.labels.clone());
                continue;
            }
            if s.has_histograms() {
                self.histogram_series.push(s.labels.clone());
            }
            if load.with_nhcb
                && let Some(h) = nhcb_labels(&s.labels)
                && !self.histogram_series.contains(&h)
            {
                self.histogram_series.push(h);
            }
            let mut hasher = LabelHasher::new();
            for l in &s.labels {
                hasher.add(l.name.as_bytes(), l.value.as_bytes());
            }
            let hash = hasher.finish();
            let sref = match self.head.lookup(
                hash,
                s.labels
                    .iter()
                    .map(|l| (l.name.as_bytes(), l.value.as_bytes())),
            ) {
                Some(r) => r,
                None => self.head.create(
                    hash,
                    s.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())),
                ),
            };
            for (i, p) in s.points.iter().enumerate() {
                if let Point::Float(v) = *p {
                    let t = i as i64 * load.step_ms;
                    self.head
                        .append(sref, t, v)
                        .map_err(|e| format!("series {} at {t}ms: {e}", s.labels))?;
                }
            }
        }
        Ok(())
    }

    /// Whether any selection since the last call reached a series that would hold native
    /// histograms; resets the flag.
    pub fn take_touched_histograms(&self) -> bool {
        self.touched_histograms.replace(false)
    }

    /// How many selections the engine has made so far.
    pub fn selects(&self) -> usize {
        self.selects.get()
    }

    pub fn has_histograms(&self) -> bool {
        !self.histogram_series.is_empty()
    }

    /// Whether `expr` mentions the metric name of a series holding native histograms, for
    /// expressions the parser rejects (so their selections are unknown).
    pub fn names_histogram_series(&self, expr: &str) -> bool {
        let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
        self.histogram_series.iter().any(|l| {
            let name = l.metric_name();
            !name.is_empty()
                && expr.match_indices(name).any(|(i, _)| {
                    let before = expr[..i].chars().next_back();
                    let after = expr[i + name.len()..].chars().next();
                    !before.is_some_and(is_name) && !after.is_some_and(is_name)
                })
        })
    }

    /// Whether a selection with `matchers` would reach a series with start timestamps.
    pub fn selects_start_timestamps(&self, matchers: &[Matcher]) -> bool {
        self.start_timestamp_series
            .iter()
            .any(|l| matches_all(matchers, l))
    }

    /// Whether a selection with `matchers` would reach a series holding native histograms.
    pub fn selects_histograms(&self, matchers: &[Matcher]) -> bool {
        self.histogram_series
            .iter()
            .any(|l| matches_all(matchers, l))
    }
}

/// The native histogram with custom buckets that `load_with_nhcb` derives from a classic
/// histogram series: `x_bucket{le=..}`, `x_count` and `x_sum` all become `x`.
fn nhcb_labels(labels: &Labels) -> Option<Labels> {
    let name = labels.metric_name();
    let base = name
        .strip_suffix("_bucket")
        .filter(|_| labels.get("le").is_some())
        .or_else(|| name.strip_suffix("_count"))
        .or_else(|| name.strip_suffix("_sum"))?;
    Some(Labels::from_pairs(
        labels.iter().filter(|l| l.name != "le").map(|l| {
            if l.name == "__name__" {
                (l.name.clone(), base.to_owned())
            } else {
                (l.name.clone(), l.value.clone())
            }
        }),
    ))
}

fn matches_all(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers
        .iter()
        .all(|m| m.matches(labels.get(m.name()).unwrap_or("")))
}

impl Queryable for Store {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<SeriesSamples> {
        self.selects.set(self.selects.get() + 1);
        if self
            .histogram_series
            .iter()
            .any(|l| matches_all(matchers, l))
        {
            self.touched_histograms.set(true);
        }
        let mut out = Vec::new();
        for s in self.head.select(matchers, mint, maxt) {
            let mut samples = Vec::new();
            self.head.samples(s, mint, maxt, &mut samples);
            out.push(SeriesSamples {
                labels: self.head.labels(s),
                samples,
            });
        }
        out
    }
}
