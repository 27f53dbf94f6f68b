//! Selecting series by label matchers and time, and listing label names and values.
//!
//! Matchers are evaluated on the postings index with Prometheus's semantics: a matcher that does
//! not accept the empty string selects the union of the postings of the values it accepts; one
//! that accepts the empty string also selects series without the label, so it is evaluated by
//! subtracting the series whose value it rejects. Positive sets are intersected (smallest first),
//! negative ones subtracted; with no positive matcher the start is every live series. Then the
//! time range filters and the result is sorted by labels.

use std::borrow::Cow;
use std::cmp::Ordering;

use hashbrown::HashSet;

use crate::matcher::{MatchType, Matcher};

use super::postings::{intersect, subtract, union_disjoint};
use super::{Head, SeriesRef};

impl Head {
    /// Series matching all `matchers` with at least one sample in `[mint, maxt]`, sorted by
    /// labels (lexicographically by label pairs, as Prometheus sorts them).
    pub fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<SeriesRef> {
        let mut refs = self.postings_for_matchers(matchers);
        self.retain_in_range(&mut refs, mint, maxt);
        refs.sort_unstable_by(|&a, &b| self.compare_labels(a, b));
        refs
    }

    /// Label names of the series matching `matchers` (all series if empty) with samples in
    /// `[mint, maxt]`; sorted, unique.
    pub fn label_names(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<String> {
        let mut names: Vec<String> = if matchers.is_empty() && self.covers(mint, maxt) {
            self.postings
                .names()
                .map(|n| self.symbols.get(n).to_owned())
                .collect()
        } else {
            let mut refs = self.postings_for_matchers(matchers);
            self.retain_in_range(&mut refs, mint, maxt);
            let mut ids = HashSet::new();
            for r in refs {
                ids.extend(
                    self.label_ids(self.series.get(r))
                        .iter()
                        .step_by(2)
                        .copied(),
                );
            }
            ids.into_iter()
                .map(|n| self.symbols.get(n).to_owned())
                .collect()
        };
        names.sort_unstable();
        names
    }

    /// Values of label `name` of the series matching `matchers` (all series if empty) with
    /// samples in `[mint, maxt]`; sorted, unique.
    pub fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Vec<String> {
        let Some(name_id) = self.symbols.lookup(name.as_bytes()) else {
            return Vec::new();
        };
        let mut values: Vec<String> = if matchers.is_empty() && self.covers(mint, maxt) {
            self.postings
                .values(name_id)
                .map(|(v, _)| self.symbols.get(v).to_owned())
                .collect()
        } else {
            let mut refs = self.postings_for_matchers(matchers);
            self.retain_in_range(&mut refs, mint, maxt);
            let mut ids = HashSet::new();
            for r in refs {
                let pairs = self.label_ids(self.series.get(r));
                if let Some(p) = pairs.chunks_exact(2).find(|p| p[0] == name_id) {
                    ids.insert(p[1]);
                }
            }
            ids.into_iter()
                .map(|v| self.symbols.get(v).to_owned())
                .collect()
        };
        values.sort_unstable();
        values
    }

    /// Whether every series' samples lie in `[mint, maxt]`, so the range filters nothing out.
    fn covers(&self, mint: i64, maxt: i64) -> bool {
        self.series_without_samples == 0 && mint <= self.min_t && maxt >= self.max_t
    }

    fn retain_in_range(&self, refs: &mut Vec<SeriesRef>, mint: i64, maxt: i64) {
        if !self.covers(mint, maxt) {
            refs.retain(|&r| self.has_samples_in(r, mint, maxt));
        }
    }

    /// Series matching all `matchers`, ascending by ref.
    pub(crate) fn postings_for_matchers(&self, matchers: &[Matcher]) -> Vec<SeriesRef> {
        let mut include: Vec<Cow<'_, [SeriesRef]>> = Vec::new();
        let mut exclude: Vec<Cow<'_, [SeriesRef]>> = Vec::new();
        for m in matchers {
            let name = self.symbols.lookup(m.name().as_bytes());
            if m.matches_empty() {
                // No series has the label: every series matches.
                let Some(name) = name else { continue };
                let ex = self.series_with_value(name, m, false);
                if !ex.is_empty() {
                    exclude.push(ex);
                }
            } else {
                let Some(name) = name else { return Vec::new() };
                let inc = self.series_with_value(name, m, true);
                if inc.is_empty() {
                    return Vec::new();
                }
                include.push(inc);
            }
        }
        let mut refs = if include.is_empty() {
            self.series_refs().collect()
        } else {
            include.sort_unstable_by_key(|l| l.len());
            let mut it = include.into_iter();
            let first = it.next().map(Cow::into_owned).unwrap_or_default();
            it.fold(first, |acc, l| {
                if acc.is_empty() {
                    acc
                } else {
                    intersect(&acc, &l)
                }
            })
        };
        for ex in &exclude {
            if refs.is_empty() {
                break;
            }
            refs = subtract(&refs, ex);
        }
        refs
    }

    /// Series that have label `name` with a value `v` for which `m.matches(v) == want`.
    fn series_with_value(&self, name: u32, m: &Matcher, want: bool) -> Cow<'_, [SeriesRef]> {
        let lookup = |v: &str| {
            self.symbols
                .lookup(v.as_bytes())
                .map_or(&[][..], |v| self.postings.get(name, v))
        };
        match (m.match_type(), want) {
            (MatchType::Equal, true) | (MatchType::NotEqual, false) => {
                return Cow::Borrowed(lookup(m.value()));
            }
            (MatchType::Regexp, true) | (MatchType::NotRegexp, false) => {
                if let Some(set) = m.set_values() {
                    return union(set.map(lookup).filter(|l| !l.is_empty()).collect());
                }
            }
            _ => {}
        }
        union(
            self.postings
                .values(name)
                .filter(|&(v, _)| m.matches(self.symbols.get(v)) == want)
                .map(|(_, l)| l)
                .collect(),
        )
    }

    /// Orders two series by their label sets as Prometheus does: pair by pair, name then value,
    /// a prefix first.
    fn compare_labels(&self, a: SeriesRef, b: SeriesRef) -> Ordering {
        let la = self.label_ids(self.series.get(a));
        let lb = self.label_ids(self.series.get(b));
        for (&x, &y) in la.iter().zip(lb) {
            // Equal ids are equal strings; only different ids need the strings.
            if x != y {
                return self.symbols.get(x).cmp(self.symbols.get(y));
            }
        }
        la.len().cmp(&lb.len())
    }
}

/// The union of one label's (disjoint) postings lists, borrowed when there is only one.
fn union(lists: Vec<&[SeriesRef]>) -> Cow<'_, [SeriesRef]> {
    match lists.as_slice() {
        [] => Cow::Borrowed(&[]),
        [one] => Cow::Borrowed(one),
        _ => Cow::Owned(union_disjoint(lists)),
    }
}
