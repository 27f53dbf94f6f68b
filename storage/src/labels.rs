//! Label sets and their hash.
//!
//! A label set is a list of `(name, value)` pairs sorted by name with unique names; `__name__`
//! holds the metric name. The hash is computed over the name and value bytes themselves (never
//! over a wire framing), so every encoding of one label set hashes the same: the push path hashes
//! slices of the request buffer, the head hashes its interned strings, and both agree.

use std::fmt;

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// The label that holds the metric name.
pub const METRIC_NAME: &str = "__name__";

/// One label pair.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    pub name: String,
    pub value: String,
}

/// An owned label set, sorted by name. Used at the edges (query results, tests); the head stores
/// interned ids instead.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Labels(Vec<Label>);

impl Labels {
    /// Builds a label set from pairs, sorting them by name. Empty values are dropped, as
    /// Prometheus treats a label with an empty value as absent.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let mut v: Vec<Label> = pairs
            .into_iter()
            .map(|(n, v)| Label {
                name: n.into(),
                value: v.into(),
            })
            .filter(|l| !l.value.is_empty())
            .collect();
        v.sort();
        Labels(v)
    }

    /// Wraps labels that are already sorted by name with unique names.
    pub fn from_sorted(labels: Vec<Label>) -> Self {
        debug_assert!(labels.windows(2).all(|w| w[0].name < w[1].name));
        Labels(labels)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of label `name`, or `None`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    /// The metric name, or `""`.
    pub fn metric_name(&self) -> &str {
        self.get(METRIC_NAME).unwrap_or("")
    }

    /// The hash of this label set; equal to [`LabelHasher`] over the same pairs.
    pub fn hash(&self) -> u64 {
        let mut h = LabelHasher::new();
        for l in &self.0 {
            h.add(l.name.as_bytes(), l.value.as_bytes());
        }
        h.finish()
    }

    pub fn into_vec(self) -> Vec<Label> {
        self.0
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for Labels {
    /// Prometheus's notation: `name{a="b", c="d"}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.metric_name();
        f.write_str(name)?;
        f.write_str("{")?;
        let mut first = true;
        for l in self.0.iter().filter(|l| l.name != METRIC_NAME) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{}={:?}", l.name, l.value)?;
        }
        f.write_str("}")
    }
}

const NAME_SEED: u64 = 0x9e37_79b9_7f4a_7c15;
const VALUE_SEED: u64 = 0xc2b2_ae3d_27d4_eb4f;

/// Incremental hash of a label set, fed pair by pair in label order.
#[derive(Clone, Copy, Debug)]
pub struct LabelHasher(u64);

impl LabelHasher {
    pub fn new() -> Self {
        LabelHasher(0)
    }

    #[inline]
    pub fn add(&mut self, name: &[u8], value: &[u8]) {
        self.0 = xxh3_64_with_seed(name, self.0 ^ NAME_SEED);
        self.0 = xxh3_64_with_seed(value, self.0 ^ VALUE_SEED);
    }

    #[inline]
    pub fn finish(self) -> u64 {
        self.0
    }
}

impl Default for LabelHasher {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_on_pair_boundaries() {
        let a = Labels::from_pairs([("ab", "c")]);
        let b = Labels::from_pairs([("a", "bc")]);
        assert_ne!(a.hash(), b.hash());
        let c = Labels::from_pairs([("a", "b"), ("c", "d")]);
        let d = Labels::from_pairs([("c", "d"), ("a", "b")]);
        assert_eq!(c.hash(), d.hash());
    }

    #[test]
    fn display_is_prometheus_notation() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "a\"b")]);
        assert_eq!(l.to_string(), r#"up{job="a\"b"}"#);
    }
}
