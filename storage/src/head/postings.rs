//! The head's inverted index: for every label pair, the sorted list of series that carry it; for
//! every label name, its values. Plus the sorted-list set operations matchers are evaluated with.
//!
//! Invariants:
//! - a postings list is sorted ascending without duplicates: series refs are handed out in
//!   increasing order and a series is added once per label, so appending keeps the order;
//! - every list is non-empty, and every name has at least one value: the head's garbage
//!   collection rebuilds the index without the series it drops ([`Postings::retain`]);
//! - the lists of one name's values are pairwise disjoint (a series has one value per name), so
//!   their union is a concatenation plus a sort, with no deduplication.

use hashbrown::HashMap;

use super::SeriesRef;

#[derive(Debug, Default)]
pub(crate) struct Postings {
    /// `(name id, value id)` → index into `lists`.
    pairs: HashMap<(u32, u32), u32>,
    /// name id → `(value id, list index)` for each of its values, in order of first sight.
    names: HashMap<u32, Vec<(u32, u32)>>,
    lists: Vec<Vec<SeriesRef>>,
}

impl Postings {
    /// Records that series `s` carries `name=value`. `s` must be larger than every series added
    /// before.
    pub(crate) fn add(&mut self, name: u32, value: u32, s: SeriesRef) {
        let idx = *self.pairs.entry((name, value)).or_insert_with(|| {
            let idx = u32::try_from(self.lists.len()).expect("more than 2^32 label pairs");
            self.lists.push(Vec::new());
            self.names.entry(name).or_default().push((value, idx));
            idx
        });
        let list = &mut self.lists[idx as usize];
        debug_assert!(list.last().is_none_or(|&l| l < s));
        list.push(s);
    }

    /// Keeps only the series for which `live` holds and renames every label id `id` to
    /// `remap[id]`; pairs, values and names left without series are removed. Lists that stay are
    /// filtered in place (no copy); O(postings + pairs).
    pub(crate) fn retain(&mut self, live: impl Fn(SeriesRef) -> bool, remap: &[u32]) {
        let Postings {
            names, mut lists, ..
        } = std::mem::take(self);
        for (name, values) in names {
            let mut kept = Vec::new();
            for (value, idx) in values {
                // Each list belongs to exactly one (name, value).
                let mut list = std::mem::take(&mut lists[idx as usize]);
                list.retain(|&r| live(r));
                if list.is_empty() {
                    continue;
                }
                if list.capacity() > 2 * list.len() {
                    list.shrink_to_fit();
                }
                let (n, v) = (remap[name as usize], remap[value as usize]);
                debug_assert!(
                    n != u32::MAX && v != u32::MAX,
                    "a live series' ids are remapped"
                );
                let new_idx = u32::try_from(self.lists.len()).expect("fewer pairs than before");
                self.lists.push(list);
                self.pairs.insert((n, v), new_idx);
                kept.push((v, new_idx));
            }
            if !kept.is_empty() {
                self.names.insert(remap[name as usize], kept);
            }
        }
    }

    /// The series carrying `name=value`, ascending.
    pub(crate) fn get(&self, name: u32, value: u32) -> &[SeriesRef] {
        self.pairs
            .get(&(name, value))
            .map_or(&[], |&i| &self.lists[i as usize])
    }

    /// The values of label `name` with their lists.
    pub(crate) fn values(&self, name: u32) -> impl Iterator<Item = (u32, &[SeriesRef])> {
        self.names
            .get(&name)
            .into_iter()
            .flatten()
            .map(|&(v, i)| (v, self.lists[i as usize].as_slice()))
    }

    /// Every label name of the head.
    pub(crate) fn names(&self) -> impl Iterator<Item = u32> + '_ {
        self.names.keys().copied()
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        self.pairs.allocation_size()
            + self.names.allocation_size()
            + self.names.values().map(|v| v.capacity() * 8).sum::<usize>()
            + self.lists.capacity() * size_of::<Vec<SeriesRef>>()
            + self.lists.iter().map(|l| l.capacity() * 4).sum::<usize>()
    }
}

/// The union of pairwise-disjoint sorted lists, sorted.
pub(crate) fn union_disjoint<'a>(
    lists: impl IntoIterator<Item = &'a [SeriesRef]>,
) -> Vec<SeriesRef> {
    let mut out = Vec::new();
    let mut sorted = true;
    for l in lists {
        if let (Some(&last), Some(&first)) = (out.last(), l.first()) {
            sorted &= last < first;
        }
        out.extend_from_slice(l);
    }
    if !sorted {
        out.sort_unstable();
    }
    out
}

/// The elements of sorted `a` that are also in sorted `b`.
pub(crate) fn intersect(a: &[SeriesRef], b: &[SeriesRef]) -> Vec<SeriesRef> {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(small.len());
    let mut rest = large;
    for &x in small {
        rest = gallop(rest, x);
        match rest.first() {
            None => break,
            Some(&y) if y == x => {
                out.push(x);
                rest = &rest[1..];
            }
            Some(_) => {}
        }
    }
    out
}

/// The elements of sorted `a` that are not in sorted `b`.
pub(crate) fn subtract(a: &[SeriesRef], b: &[SeriesRef]) -> Vec<SeriesRef> {
    let mut out = Vec::with_capacity(a.len());
    let mut rest = b;
    for (i, &x) in a.iter().enumerate() {
        rest = gallop(rest, x);
        if rest.is_empty() {
            out.extend_from_slice(&a[i..]);
            break;
        }
        if rest[0] != x {
            out.push(x);
        }
    }
    out
}

/// The suffix of sorted `s` starting at its first element `>= x`, found by exponential then
/// binary search (cheap when the answer is near the front, as it is when walking two lists).
#[inline]
fn gallop(s: &[SeriesRef], x: SeriesRef) -> &[SeriesRef] {
    if s.first().is_none_or(|&f| f >= x) {
        return s;
    }
    let mut hi = 1;
    while hi < s.len() && s[hi] < x {
        hi *= 2;
    }
    let lo = hi / 2;
    let hi = hi.min(s.len());
    let i = lo + s[lo..hi].partition_point(|&y| y < x);
    &s[i..]
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn sorted_set() -> impl Strategy<Value = Vec<u32>> {
        proptest::collection::btree_set(0u32..300, 0..120).prop_map(|s| s.into_iter().collect())
    }

    proptest! {
        #[test]
        fn set_operations_match_the_obvious_ones(a in sorted_set(), b in sorted_set()) {
            let want_i: Vec<u32> = a.iter().copied().filter(|x| b.contains(x)).collect();
            let want_s: Vec<u32> = a.iter().copied().filter(|x| !b.contains(x)).collect();
            prop_assert_eq!(intersect(&a, &b), want_i.clone());
            prop_assert_eq!(intersect(&b, &a), want_i);
            prop_assert_eq!(subtract(&a, &b), want_s);
        }
    }

    #[test]
    fn postings_by_pair_and_name() {
        let mut p = Postings::default();
        p.add(1, 2, 0);
        p.add(1, 3, 1);
        p.add(1, 2, 2);
        p.add(4, 5, 2);
        assert_eq!(p.get(1, 2), &[0, 2]);
        assert_eq!(p.get(1, 9), &[] as &[u32]);
        let mut vals: Vec<(u32, Vec<u32>)> = p.values(1).map(|(v, l)| (v, l.to_vec())).collect();
        vals.sort();
        assert_eq!(vals, vec![(2, vec![0, 2]), (3, vec![1])]);
        let mut names: Vec<u32> = p.names().collect();
        names.sort_unstable();
        assert_eq!(names, vec![1, 4]);
        assert_eq!(
            union_disjoint([&[1u32, 5][..], &[0, 3][..]]),
            vec![0, 1, 3, 5]
        );
    }

    #[test]
    fn retain_drops_series_then_empty_values_and_names_and_renames_ids() {
        let mut p = Postings::default();
        p.add(1, 2, 0);
        p.add(1, 3, 1);
        p.add(1, 2, 2);
        p.add(4, 5, 2);
        // Series 2 goes: 1=2 keeps series 0, name 4 goes entirely. Ids 1, 2, 3 become 10, 20, 30.
        let remap = [u32::MAX, 10, 20, 30, u32::MAX, u32::MAX];
        p.retain(|r| r != 2, &remap);
        assert_eq!(p.get(10, 20), &[0]);
        assert_eq!(p.get(10, 30), &[1]);
        assert_eq!(p.get(1, 2), &[] as &[u32]);
        let mut vals: Vec<(u32, Vec<u32>)> = p.values(10).map(|(v, l)| (v, l.to_vec())).collect();
        vals.sort();
        assert_eq!(vals, vec![(20, vec![0]), (30, vec![1])]);
        assert_eq!(p.names().collect::<Vec<_>>(), vec![10]);
        assert_eq!(p.lists.len(), 2);
        // Every series going leaves nothing.
        p.retain(|_| false, &[u32::MAX; 40]);
        assert_eq!(p.names().count(), 0);
        assert!(p.lists.is_empty() && p.pairs.is_empty());
    }
}
