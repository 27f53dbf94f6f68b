//! Series fetched for one query ahead of its evaluation: the query API fetches every selection
//! from the heads and the blocks; a shard fetches its partition of the blocks and its head for a
//! pushed-down aggregation.

use std::cell::RefCell;
use std::collections::BTreeMap;

use strata_storage::labels::Labels;
use strata_storage::matcher::Matcher;

use super::{EvalError, Partials, Queryable, SeriesSamples, SeriesVisitor};
use crate::blocks::{SeriesChunks, XorChunk, decode_chunks};

/// Series fetched for one query: every selection's series merged by label set. Samples from
/// the heads are held decoded (sorted by time, without duplicates); chunks from the blocks are
/// held compressed and decoded one series at a time as the evaluator visits it, so a long range
/// costs its compressed size, not its decoded samples. Selecting filters by matchers and time
/// again, so a selection sees exactly what storage holds in its range as long as a fetched
/// selection covered it.
#[derive(Debug, Default)]
pub struct Fetched {
    series: BTreeMap<Labels, Held>,
    partials: Partials,
    /// Decoding buffers, reused across series: one chunk's samples, and the series'.
    scratch: RefCell<(Samples, Samples)>,
}

type Samples = Vec<(i64, f64)>;

/// What is held of one series.
#[derive(Debug, Default)]
struct Held {
    samples: Vec<(i64, f64)>,
    /// Ordered by `min_t`.
    chunks: Vec<XorChunk>,
}

impl Fetched {
    /// An empty set with pushed-down aggregations already evaluated.
    pub fn with_partials(partials: Partials) -> Self {
        Fetched {
            partials,
            ..Fetched::default()
        }
    }

    /// Adds decoded samples of a series (merged with what is held of it).
    pub fn add(&mut self, s: SeriesSamples) {
        let held = self.series.entry(s.labels).or_default();
        if held.samples.is_empty() {
            held.samples = s.samples;
        } else {
            held.samples.extend(s.samples);
            held.samples.sort_by_key(|p| p.0);
            held.samples.dedup_by_key(|p| p.0);
        }
    }

    /// Adds the block chunks of a series (merged with what is held of it).
    pub fn add_chunks(&mut self, s: SeriesChunks) {
        let held = self.series.entry(s.labels).or_default();
        let sorted = held.chunks.is_empty();
        held.chunks.extend(s.chunks);
        if !sorted {
            held.chunks.sort_by_key(|c| c.min_t);
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
        // Taken out, not borrowed, across `f`: it may select again.
        let (mut scratch, mut merged) = std::mem::take(&mut *self.scratch.borrow_mut());
        let result = (|| {
            for (labels, held) in &self.series {
                if !matchers
                    .iter()
                    .all(|m| m.matches(labels.get(m.name()).unwrap_or("")))
                {
                    continue;
                }
                let lo = held.samples.partition_point(|p| p.0 < mint);
                let hi = held.samples.partition_point(|p| p.0 <= maxt);
                let decoded = &held.samples[lo..hi];
                if held.chunks.is_empty() {
                    if !decoded.is_empty() {
                        f(labels, decoded)?;
                    }
                    continue;
                }
                decode_chunks(&held.chunks, mint, maxt, &mut scratch, &mut merged).map_err(
                    |e| EvalError::Execution(format!("reading series {labels} from blocks: {e}")),
                )?;
                if let Some(&(first, _)) = decoded.first() {
                    let in_order = merged.last().is_none_or(|&(last, _)| last < first);
                    merged.extend_from_slice(decoded);
                    if !in_order {
                        // Stable: the blocks' sample wins a timestamp held twice.
                        merged.sort_by_key(|p| p.0);
                        merged.dedup_by_key(|p| p.0);
                    }
                }
                if !merged.is_empty() {
                    f(labels, &merged)?;
                }
            }
            Ok(())
        })();
        *self.scratch.borrow_mut() = (scratch, merged);
        result
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

    fn chunk(samples: &[(i64, f64)]) -> XorChunk {
        let mut e = strata_storage::chunkenc::xor::XorEncoder::new();
        for &(t, v) in samples {
            e.append(t, v);
        }
        XorChunk {
            min_t: samples[0].0,
            max_t: samples[samples.len() - 1].0,
            data: bytes::Bytes::copy_from_slice(e.bytes()),
        }
    }

    #[test]
    fn chunks_decode_lazily_and_merge_with_head_samples() {
        let l = Labels::from_pairs([("__name__", "up")]);
        let mut f = Fetched::default();
        // Two blocks overlapping at 3..=4 (replicas), and head samples overlapping the last.
        f.add_chunks(SeriesChunks {
            labels: l.clone(),
            chunks: vec![chunk(&[(3, 30.0), (4, 40.0), (5, 50.0)])],
        });
        f.add_chunks(SeriesChunks {
            labels: l.clone(),
            chunks: vec![chunk(&[(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)])],
        });
        f.add(SeriesSamples {
            labels: l.clone(),
            samples: vec![(5, 5.0), (6, 6.0)],
        });
        let m = [Matcher::new(MatchType::Equal, "__name__", "up").unwrap()];
        let got = f.select(&m, 2, 6);
        assert_eq!(got.len(), 1);
        // The older block's chunk comes first (ordered by min_t), so it wins 3 and 4.
        assert_eq!(
            got[0].samples,
            vec![(2, 2.0), (3, 3.0), (4, 4.0), (5, 50.0), (6, 6.0)]
        );
        assert_eq!(f.select(&m, 6, 9)[0].samples, vec![(6, 6.0)]);
        assert!(f.select(&m, 7, 9).is_empty());
        // A damaged chunk is an execution error naming the series, never a panic.
        let mut bad = Fetched::default();
        let mut c = chunk(&[(1, 1.0), (2, 2.0), (3, 3.0)]);
        c.data = c.data.slice(..c.data.len() - 2);
        bad.add_chunks(SeriesChunks {
            labels: l,
            chunks: vec![c],
        });
        let err = bad.select_each(&m, 0, 9, &mut |_, _| Ok(())).unwrap_err();
        assert!(
            matches!(err, EvalError::Execution(ref m) if m.contains("up")),
            "{err:?}"
        );
    }
}
