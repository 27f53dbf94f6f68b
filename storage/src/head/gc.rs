//! Head garbage collection: dropping the series whose samples are all in blocks.
//!
//! After a block cut, [`Head::truncate_before`] drops the closed chunks that end before the
//! block's end `t`; [`Head::gc`] then drops every series with no sample at or after `t`: no closed
//! chunk is left (one that stays ends at or after `t`) and its open chunk is empty or ends before
//! `t`. The caller vouches that such samples are in blocks (the engine's cut collects open chunks
//! too, and chunks never straddle a block's range) or may go.
//!
//! What goes: the series record becomes a tombstone (its ref is never handed out again, see
//! [`super`]), its entry in the hash index, its postings (with the values and names left without
//! series) and its label ids. The symbol table and the label id arena are rebuilt with what the
//! live series use, so a churning tenant (pods that come and go) leaves no strings behind. Full
//! pages of tombstones are released.
//!
//! Cost: O(refs + live label pairs + postings), once per block range, off the append path. When
//! no series goes, nothing is rebuilt: a second run is one scan of the series.

use super::series::Series;
use super::{Head, SeriesRef};
use crate::symbols::SymbolTable;

impl Head {
    /// Drops every series that has no sample at or after `t` (series without samples included)
    /// and releases what it held. Returns how many series were dropped. Run it after
    /// [`Head::truncate_before`] with the same `t`: a dropped series' closed chunks still before
    /// `t` would stay in the chunk arena until the next truncation rebuilds it.
    pub fn gc(&mut self, t: i64) -> usize {
        let mut dead = RefSet::with_len(self.series.len());
        for (r, s) in self.series.iter() {
            if !s.is_tombstone() && (!s.has_samples() || s.last_t < t) {
                dead.insert(r);
            }
        }
        if dead.is_empty() {
            return 0;
        }
        let mut dropped = 0;
        for r in dead.iter() {
            let s = std::mem::replace(self.series.get_mut(r), Series::tombstone());
            if s.has_samples() {
                self.open_chunk_bytes -= s.open_capacity as usize;
            } else {
                self.series_without_samples -= 1;
            }
            if let Ok(entry) = self.by_hash.find_entry(s.hash, |&x| x == r) {
                entry.remove();
            }
            dropped += 1;
        }
        self.live_series -= dropped;
        let remap = self.rebuild_labels();
        self.postings.retain(|r| !dead.contains(r), &remap);
        let series = &self.series;
        if self.by_hash.capacity() > 4 * self.by_hash.len().max(64) {
            self.by_hash.shrink_to_fit(|&r| series.get(r).hash);
        }
        self.series.release_pages(Series::is_tombstone);
        self.min_t = self.oldest_sample();
        self.max_t = self
            .series
            .iter()
            .filter(|(_, s)| s.has_samples())
            .map(|(_, s)| s.last_t)
            .max()
            .unwrap_or(i64::MIN);
        dropped
    }

    /// Rebuilds the symbol table and the label id arena with the strings and ids of the live
    /// series only. Returns the map from old symbol ids to new ones (`u32::MAX`: gone).
    fn rebuild_labels(&mut self) -> Vec<u32> {
        let old_symbols = std::mem::replace(&mut self.symbols, SymbolTable::new());
        let old_ids = std::mem::take(&mut self.label_ids);
        let mut remap = vec![u32::MAX; old_symbols.len()];
        let mut ids = std::mem::take(&mut self.scratch);
        for s in self.series.iter_mut() {
            if s.is_tombstone() {
                continue;
            }
            ids.clear();
            for &id in old_ids.get(s.labels, s.num_labels as usize * 2) {
                let new = &mut remap[id as usize];
                if *new == u32::MAX {
                    *new = self.symbols.intern(old_symbols.get(id));
                }
                ids.push(*new);
            }
            s.labels = self.label_ids.push(&ids);
        }
        self.scratch = ids;
        remap
    }
}

/// A set of series refs below a bound, one bit each.
struct RefSet {
    words: Vec<u64>,
    len: usize,
}

impl RefSet {
    fn with_len(refs: usize) -> Self {
        RefSet {
            words: vec![0; refs.div_ceil(64)],
            len: 0,
        }
    }

    fn insert(&mut self, r: SeriesRef) {
        self.words[r as usize / 64] |= 1 << (r % 64);
        self.len += 1;
    }

    #[inline]
    fn contains(&self, r: SeriesRef) -> bool {
        self.words
            .get(r as usize / 64)
            .is_some_and(|w| w & (1 << (r % 64)) != 0)
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The refs, ascending.
    fn iter(&self) -> impl Iterator<Item = SeriesRef> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let bit = w.trailing_zeros();
                w &= w - 1;
                Some((i * 64) as SeriesRef + bit)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::head::test_support::{create, hash_of, lookup};
    use crate::head::{Head, HeadOptions, SeriesRef};
    use crate::matcher::{MatchType, Matcher};

    fn m(t: MatchType, n: &str, v: &str) -> Matcher {
        Matcher::new(t, n, v).unwrap()
    }

    fn names(head: &Head, refs: &[SeriesRef]) -> Vec<String> {
        refs.iter().map(|&r| head.labels(r).to_string()).collect()
    }

    /// Minute-long chunks, so a truncation at a minute boundary drops whole chunks.
    fn head() -> Head {
        Head::new(HeadOptions {
            chunk_range_ms: 60_000,
            max_samples_per_chunk: 120,
        })
    }

    /// Pods: `pod-<i>` has samples every 10s from `from` to `to` (exclusive).
    fn add_pod(h: &mut Head, i: usize, from: i64, to: i64) -> SeriesRef {
        let pod = format!("pod-{i}");
        let r = create(
            h,
            &[
                ("__name__", "up"),
                ("job", "k8s"),
                ("pod", &pod),
                ("zone", if i.is_multiple_of(2) { "a" } else { "b" }),
            ],
        );
        let mut t = from;
        while t < to {
            h.append(r, t, i as f64).unwrap();
            t += 10_000;
        }
        r
    }

    #[test]
    fn drops_series_without_samples_after_t_and_keeps_the_rest_whole() {
        let mut h = head();
        // 0: all before 5m (closed chunks and an open chunk before it): dropped.
        let old = add_pod(&mut h, 0, 0, 300_000);
        // 1: before and after 5m: kept with its chunks after 5m.
        let both = add_pod(&mut h, 1, 0, 420_000);
        // 2: only an open chunk, before 5m: dropped (the open chunk is in a block).
        let open_only = add_pod(&mut h, 2, 240_000, 250_000);
        // 3: no samples at all: dropped.
        let empty = create(&mut h, &[("__name__", "up"), ("pod", "pod-3")]);
        // 4: only an open chunk starting exactly at 5m: kept.
        let at_t = add_pod(&mut h, 4, 300_000, 310_000);
        let mut want_both = Vec::new();
        h.samples(both, 300_000, i64::MAX, &mut want_both);
        let labels_both = h.labels(both);
        let (before, symbols) = (h.memory(), h.symbols().len());

        h.truncate_before(300_000);
        assert_eq!(h.gc(300_000), 3);
        assert_eq!(h.num_series(), 2);
        assert_eq!(h.next_ref(), 5, "refs are not handed out again");
        for r in [old, open_only, empty] {
            assert!(!h.is_live(r));
            assert_eq!(h.labels(r).len(), 0);
            assert_eq!(h.chunks(r, i64::MIN, i64::MAX).count(), 0);
        }
        assert_eq!(h.series_refs().collect::<Vec<_>>(), vec![both, at_t]);
        let mut got = Vec::new();
        h.samples(both, i64::MIN, i64::MAX, &mut got);
        assert_eq!(got, want_both);
        assert_eq!(h.labels(both), labels_both);
        assert_eq!(
            h.labels(at_t).to_string(),
            r#"up{job="k8s", pod="pod-4", zone="a"}"#
        );
        assert_eq!(h.min_time(), 300_000);
        assert_eq!(h.max_time(), 410_000);
        let after = h.memory();
        // pod-0, pod-2 and pod-3 are gone; the other strings stay.
        assert_eq!(h.symbols().len(), symbols - 3);
        assert!(after.postings < before.postings, "{before:?} -> {after:?}");
        assert!(after.chunks < before.chunks, "{before:?} -> {after:?}");

        // Appends go on; a second run with the same time is a no-op.
        h.append(both, 420_000, 1.0).unwrap();
        assert_eq!(h.gc(300_000), 0);
        assert_eq!(h.num_series(), 2);
    }

    #[test]
    fn dropped_label_sets_are_new_series_and_gone_from_the_index() {
        let mut h = head();
        for i in 0..10 {
            // Even pods stop before 2m, odd ones go on.
            add_pod(
                &mut h,
                i,
                0,
                if i.is_multiple_of(2) { 60_000 } else { 180_000 },
            );
        }
        h.truncate_before(120_000);
        assert_eq!(h.gc(120_000), 5);
        let pod0 = [
            ("__name__", "up"),
            ("job", "k8s"),
            ("pod", "pod-0"),
            ("zone", "a"),
        ];
        assert_eq!(lookup(&h, &pod0), None);
        let all = |h: &Head| h.select(&[], i64::MIN, i64::MAX);
        assert_eq!(
            names(&h, &all(&h)),
            (1..10)
                .step_by(2)
                .map(|i| format!(r#"up{{job="k8s", pod="pod-{i}", zone="b"}}"#))
                .collect::<Vec<_>>()
        );
        // Every zone="a" pod is gone: the value is gone, and so is a name only they had.
        assert_eq!(
            h.label_values("zone", &[], i64::MIN, i64::MAX),
            vec!["b".to_string()]
        );
        assert_eq!(
            h.label_values("pod", &[], i64::MIN, i64::MAX),
            vec!["pod-1", "pod-3", "pod-5", "pod-7", "pod-9"]
        );
        assert!(
            h.select(&[m(MatchType::Equal, "zone", "a")], i64::MIN, i64::MAX)
                .is_empty()
        );
        assert!(
            h.select(
                &[m(MatchType::Regexp, "pod", "pod-0|pod-2")],
                i64::MIN,
                i64::MAX
            )
            .is_empty()
        );
        assert_eq!(
            h.select(&[m(MatchType::NotEqual, "zone", "b")], i64::MIN, i64::MAX),
            Vec::<SeriesRef>::new()
        );
        // The dropped label set comes back as a new series under a new ref.
        let again = create(&mut h, &pod0);
        assert_eq!(again, 10);
        h.append(again, 200_000, 7.0).unwrap();
        assert_eq!(lookup(&h, &pod0), Some(again));
        assert_eq!(h.num_series(), 6);
        assert_eq!(
            h.label_values("zone", &[], i64::MIN, i64::MAX),
            vec!["a".to_string(), "b".to_string()]
        );
        let mut s = Vec::new();
        h.samples(again, i64::MIN, i64::MAX, &mut s);
        assert_eq!(s, vec![(200_000, 7.0)]);
        assert_eq!(
            h.select(&[m(MatchType::Equal, "pod", "pod-0")], i64::MIN, i64::MAX),
            vec![again]
        );
        // A name left without series is gone from the label names too.
        let lonely = create(&mut h, &[("__name__", "up"), ("only_me", "x")]);
        h.append(lonely, 200_000, 1.0).unwrap();
        assert!(
            h.label_names(&[], i64::MIN, i64::MAX)
                .contains(&"only_me".into())
        );
        h.truncate_before(210_000);
        assert_eq!(
            h.gc(210_000),
            7,
            "the five odd pods, pod-0 and the lonely one"
        );
        assert_eq!(h.num_series(), 0);
        assert!(h.label_names(&[], i64::MIN, i64::MAX).is_empty());
        assert_eq!(h.symbols().len(), 0);
        assert_eq!((h.min_time(), h.max_time()), (i64::MAX, i64::MIN));
    }

    #[test]
    fn churn_keeps_memory_bounded() {
        let mut h = head();
        let mut peak_without_chunks = 0;
        // Each round, 2000 pods live for one minute: after each round's cut only the new ones
        // stay. Ten rounds hand out 20000 refs, several full pages of them.
        for round in 0..10i64 {
            let from = round * 60_000;
            for i in 0..2000 {
                add_pod(&mut h, round as usize * 2000 + i, from, from + 60_000);
            }
            h.truncate_before(from);
            let dropped = h.gc(from);
            assert_eq!(dropped, if round == 0 { 0 } else { 2000 }, "round {round}");
            assert_eq!(h.num_series(), 2000);
            let mem = h.memory().without_chunks();
            if round == 2 {
                peak_without_chunks = mem;
            } else if round > 2 {
                assert!(
                    mem <= peak_without_chunks + peak_without_chunks / 4,
                    "round {round}: {mem} bytes vs {peak_without_chunks}"
                );
            }
        }
        assert_eq!(h.next_ref(), 20_000);
        // Names and values `__name__ job pod zone up k8s a b`, and the live pods' names.
        assert_eq!(h.symbols().len(), 8 + 2000, "pod names of live pods only");
    }

    #[test]
    fn refs_named_by_a_replay_are_never_handed_out_again() {
        let mut h = head();
        let a = [("__name__", "a")];
        let b = [("__name__", "b")];
        assert!(h.create_with_ref(3, hash_of(&a), a.iter().copied()));
        assert_eq!(h.next_ref(), 4);
        assert!(!h.is_live(0) && h.is_live(3));
        assert_eq!(lookup(&h, &a), Some(3));
        // A ref below the next one is refused, live or not.
        assert!(!h.create_with_ref(1, hash_of(&b), b.iter().copied()));
        assert!(!h.create_with_ref(3, hash_of(&b), b.iter().copied()));
        assert!(!h.create_with_ref(SeriesRef::MAX, hash_of(&b), b.iter().copied()));
        assert!(h.reserve_ref(10_000));
        assert!(!h.reserve_ref(SeriesRef::MAX));
        assert_eq!(h.next_ref(), 10_001);
        assert_eq!(create(&mut h, &b), 10_001);
        assert_eq!(h.num_series(), 2);
        assert_eq!(h.series_refs().collect::<Vec<_>>(), vec![3, 10_001]);
        // Whole pages of skipped refs hold no memory: pages 0 and 2 are allocated, not 1.
        assert!(h.memory().series < 3 * 4096 * size_of::<super::Series>());
        h.append(3, 1000, 1.0).unwrap();
        h.append(10_001, 1000, 1.0).unwrap();
        assert_eq!(
            names(&h, &h.select(&[], i64::MIN, i64::MAX)),
            vec!["a{}", "b{}"]
        );
        assert_eq!(h.gc(0), 0);
    }

    /// The index after a collection answers as one built from the surviving series alone.
    #[test]
    fn index_after_gc_equals_a_fresh_one() {
        let mut h = head();
        let mut fresh = head();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut rand = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let mut kept = Vec::new();
        for i in 0..3000 {
            let app = format!("app-{}", rand(40));
            let pod = format!("pod-{i}");
            let ver = format!("v{}", rand(5));
            let pairs = [
                ("__name__", "req_total"),
                ("app", app.as_str()),
                ("pod", pod.as_str()),
                ("version", ver.as_str()),
            ];
            let r = create(&mut h, &pairs);
            let keep = rand(3) == 0;
            let at = if keep { 500_000 } else { 100_000 };
            h.append(r, at, 1.0).unwrap();
            if keep {
                let f = create(&mut fresh, &pairs);
                fresh.append(f, at, 1.0).unwrap();
                kept.push(r);
            }
        }
        h.truncate_before(200_000);
        assert_eq!(h.gc(200_000), 3000 - kept.len());
        let matchers = [
            vec![],
            vec![m(MatchType::Equal, "app", "app-3")],
            vec![m(MatchType::Regexp, "app", "app-1.*")],
            vec![
                m(MatchType::NotEqual, "version", "v2"),
                m(MatchType::Regexp, "pod", "pod-1.*"),
            ],
            vec![m(MatchType::NotRegexp, "app", "app-[0-2].*")],
        ];
        for ms in &matchers {
            assert_eq!(
                names(&h, &h.select(ms, i64::MIN, i64::MAX)),
                names(&fresh, &fresh.select(ms, i64::MIN, i64::MAX)),
                "{ms:?}"
            );
            for name in ["app", "pod", "version", "__name__"] {
                assert_eq!(
                    h.label_values(name, ms, i64::MIN, i64::MAX),
                    fresh.label_values(name, ms, i64::MIN, i64::MAX),
                );
            }
            assert_eq!(
                h.label_names(ms, i64::MIN, i64::MAX),
                fresh.label_names(ms, i64::MIN, i64::MAX)
            );
        }
        assert_eq!(h.symbols().len(), fresh.symbols().len());
    }
}
