//! Helpers shared by the head's unit tests.

use super::{Head, HeadOptions, SeriesRef};
use crate::labels::LabelHasher;

/// The label hash a push computes for `pairs`.
pub(crate) fn hash_of(pairs: &[(&str, &str)]) -> u64 {
    let mut h = LabelHasher::new();
    for (n, v) in pairs {
        h.add(n.as_bytes(), v.as_bytes());
    }
    h.finish()
}

pub(crate) fn create(head: &mut Head, pairs: &[(&str, &str)]) -> SeriesRef {
    head.create(hash_of(pairs), pairs.iter().copied())
}

pub(crate) fn lookup(head: &Head, pairs: &[(&str, &str)]) -> Option<SeriesRef> {
    head.lookup(
        hash_of(pairs),
        pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
    )
}

/// A head of `series` series `{i="<n>"}` without samples, chunks cut at minute boundaries or 120
/// samples.
pub(crate) fn minute_head(series: usize) -> Head {
    let mut h = Head::new(HeadOptions {
        chunk_range_ms: 60_000,
        max_samples_per_chunk: 120,
    });
    for i in 0..series {
        let v = i.to_string();
        create(&mut h, &[("i", v.as_str())]);
    }
    h
}
