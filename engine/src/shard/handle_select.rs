//! Reads over a shard's series of one tenant: label sets, names, values, or samples.

use strata_storage::head::{Head, SeriesRef};
use strata_storage::labels::Labels;
use strata_storage::matcher::Matcher;

use super::Shard;
use crate::tenant::TenantId;

/// What a select returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SelectKind {
    /// The label sets of matching series.
    Series,
    /// The label names of matching series.
    LabelNames,
    /// The values of one label among matching series.
    LabelValues(String),
    /// Matching series with their samples in the range.
    Samples,
}

/// One series and its samples.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesSamples {
    pub labels: Labels,
    pub samples: Vec<(i64, f64)>,
}

/// A shard's answer to a select.
#[derive(Debug, Default)]
pub enum SelectResult {
    #[default]
    Empty,
    Series(Vec<Labels>),
    Strings(Vec<String>),
    Samples(Vec<SeriesSamples>),
}

impl Shard {
    pub fn handle_select(
        &self,
        tenant: &TenantId,
        matcher_sets: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
        kind: SelectKind,
    ) -> SelectResult {
        let Some(th) = self.tenants.get(tenant) else {
            return SelectResult::Empty;
        };
        let head = &th.head;
        match kind {
            SelectKind::LabelNames => {
                let mut out = Vec::new();
                for_each_set(matcher_sets, |m| {
                    out.extend(head.label_names(m, mint, maxt));
                });
                out.sort_unstable();
                out.dedup();
                SelectResult::Strings(out)
            }
            SelectKind::LabelValues(name) => {
                let mut out = Vec::new();
                for_each_set(matcher_sets, |m| {
                    out.extend(head.label_values(&name, m, mint, maxt));
                });
                out.sort_unstable();
                out.dedup();
                SelectResult::Strings(out)
            }
            SelectKind::Series => SelectResult::Series(
                select_refs(head, matcher_sets, mint, maxt)
                    .into_iter()
                    .map(|s| head.labels(s))
                    .collect(),
            ),
            SelectKind::Samples => SelectResult::Samples(
                select_refs(head, matcher_sets, mint, maxt)
                    .into_iter()
                    .map(|s| {
                        let mut samples = Vec::new();
                        head.samples(s, mint, maxt, &mut samples);
                        SeriesSamples {
                            labels: head.labels(s),
                            samples,
                        }
                    })
                    .collect(),
            ),
        }
    }
}

/// Calls `f` once per matcher set, or once with no matchers when there are none.
fn for_each_set(sets: &[Vec<Matcher>], mut f: impl FnMut(&[Matcher])) {
    if sets.is_empty() {
        f(&[]);
    } else {
        for m in sets {
            f(m);
        }
    }
}

/// The union of the series matching each set, each at most once.
fn select_refs(head: &Head, sets: &[Vec<Matcher>], mint: i64, maxt: i64) -> Vec<SeriesRef> {
    let mut out = Vec::new();
    for_each_set(sets, |m| out.extend(head.select(m, mint, maxt)));
    if sets.len() > 1 {
        out.sort_unstable();
        out.dedup();
    }
    out
}
