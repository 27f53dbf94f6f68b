//! Series fetched for one query ahead of its evaluation: the query API fetches every selection
//! from the heads and the blocks; a shard fetches its partition of the blocks and its head for a
//! pushed-down aggregation.

use std::collections::BTreeMap;

use strata_storage::labels::Labels;
use strata_storage::matcher::Matcher;

use super::{EvalError, Partials, Queryable, SeriesSamples, SeriesVisitor};

/// Series fetched for one query: every selection's series merged by label set, samples sorted
/// by time without duplicates. Selecting filters by matchers and time again, so a selection
/// sees exactly what storage holds in its range as long as a fetched selection covered it.
#[derive(Debug, Default)]
pub struct Fetched {
    series: BTreeMap<Labels, Vec<(i64, f64)>>,
    partials: Partials,
}

impl Fetched {
    /// An empty set with pushed-down aggregations already evaluated.
    pub fn with_partials(partials: Partials) -> Self {
        Fetched {
            series: BTreeMap::new(),
            partials,
        }
    }

    pub fn add(&mut self, s: SeriesSamples) {
        match self.series.get_mut(&s.labels) {
            None => {
                self.series.insert(s.labels, s.samples);
            }
            Some(existing) => {
                existing.extend(s.samples);
                existing.sort_by_key(|p| p.0);
                existing.dedup_by_key(|p| p.0);
            }
        }
    }
}

impl Queryable for Fetched {
    fn select_each(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        f: SeriesVisitor<'_>,
    ) -> Result<(), EvalError> {
        for (labels, samples) in &self.series {
            if !matchers
                .iter()
                .all(|m| m.matches(labels.get(m.name()).unwrap_or("")))
            {
                continue;
            }
            let lo = samples.partition_point(|p| p.0 < mint);
            let hi = samples.partition_point(|p| p.0 <= maxt);
            if lo < hi {
                f(labels, &samples[lo..hi])?;
            }
        }
        Ok(())
    }

    fn partials(&self) -> Option<&Partials> {
        Some(&self.partials)
    }

    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<SeriesSamples> {
        let mut out = Vec::new();
        let _ = self.select_each(matchers, mint, maxt, &mut |labels, samples| {
            out.push(SeriesSamples {
                labels: labels.clone(),
                samples: samples.to_vec(),
            });
            Ok(())
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_storage::matcher::MatchType;

    #[test]
    fn fetched_merges_and_filters() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "a")]);
        let other = Labels::from_pairs([("__name__", "down")]);
        let mut f = Fetched::default();
        f.add(SeriesSamples {
            labels: l.clone(),
            samples: vec![(1, 1.0), (2, 2.0)],
        });
        f.add(SeriesSamples {
            labels: l.clone(),
            samples: vec![(2, 2.0), (3, 3.0)],
        });
        f.add(SeriesSamples {
            labels: other,
            samples: vec![(1, 9.0)],
        });
        let m = [Matcher::new(MatchType::Equal, "__name__", "up").unwrap()];
        let got = f.select(&m, 2, 3);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].samples, vec![(2, 2.0), (3, 3.0)]);
        assert!(f.select(&m, 4, 5).is_empty());
    }
}
