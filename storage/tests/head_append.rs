//! The head's write side: series lookup and creation (including hash collisions), the append
//! rules (out of order, duplicates, stale markers), chunk cutting at the sample limit and at
//! clock-aligned windows, byte-identical chunks across replicas, and reading samples back.

use proptest::prelude::*;
use strata_storage::chunkenc::xor::decode_all;
use strata_storage::head::{AppendError, Head, HeadOptions, SeriesRef};
use strata_storage::labels::{LabelHasher, Labels};

/// Prometheus's stale marker.
const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

fn hash_of(pairs: &[(&str, &str)]) -> u64 {
    let mut h = LabelHasher::new();
    for (n, v) in pairs {
        h.add(n.as_bytes(), v.as_bytes());
    }
    h.finish()
}

fn create(head: &mut Head, pairs: &[(&str, &str)]) -> SeriesRef {
    head.create(hash_of(pairs), pairs.iter().copied())
}

fn lookup_with_hash(head: &Head, hash: u64, pairs: &[(&str, &str)]) -> Option<SeriesRef> {
    head.lookup(
        hash,
        pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
    )
}

fn lookup(head: &Head, pairs: &[(&str, &str)]) -> Option<SeriesRef> {
    lookup_with_hash(head, hash_of(pairs), pairs)
}

fn all_samples(head: &Head, s: SeriesRef) -> Vec<(i64, u64)> {
    let mut out = Vec::new();
    head.samples(s, i64::MIN, i64::MAX, &mut out);
    out.into_iter().map(|(t, v)| (t, v.to_bits())).collect()
}

fn opts(range: i64, max: u16) -> HeadOptions {
    HeadOptions {
        chunk_range_ms: range,
        max_samples_per_chunk: max,
    }
}

#[test]
fn lookup_create_append_and_read_back() {
    let mut h = Head::new(HeadOptions::default());
    assert_eq!(h.num_series(), 0);
    assert_eq!((h.min_time(), h.max_time()), (i64::MAX, i64::MIN));
    let up = [("__name__", "up"), ("instance", "a:9100"), ("job", "node")];
    assert_eq!(lookup(&h, &up), None);
    let s = create(&mut h, &up);
    assert_eq!(lookup(&h, &up), Some(s));
    assert_eq!(h.labels(s), Labels::from_pairs(up));
    let mut seen = Vec::new();
    h.for_each_label(s, |n, v| seen.push(format!("{n}={v}")));
    assert_eq!(seen, ["__name__=up", "instance=a:9100", "job=node"]);

    h.append(s, 1000, 1.0).expect("append");
    h.append(s, 2000, 0.0).expect("append");
    assert_eq!((h.min_time(), h.max_time()), (1000, 2000));
    assert_eq!(
        all_samples(&h, s),
        vec![(1000, 1f64.to_bits()), (2000, 0f64.to_bits())]
    );
}

#[test]
fn out_of_order_and_duplicates() {
    let mut h = Head::new(HeadOptions::default());
    let s = create(&mut h, &[("__name__", "x")]);
    h.append(s, 100, 1.5).expect("append");
    assert_eq!(
        h.append(s, 99, 1.5),
        Err(AppendError::OutOfOrder { last_t: 100 })
    );
    assert_eq!(
        h.append(s, 100, 1.5),
        Ok(()),
        "same t, same bits: silently ignored"
    );
    assert_eq!(h.append(s, 100, 2.5), Err(AppendError::Duplicate));
    assert_eq!(
        AppendError::Duplicate.to_string(),
        "duplicate sample for timestamp"
    );
    assert_eq!(
        AppendError::OutOfOrder { last_t: 1 }.to_string(),
        "out of order sample"
    );
    // -0.0 == 0.0 as floats, but the bits differ: a duplicate.
    h.append(s, 200, 0.0).expect("append");
    assert_eq!(h.append(s, 200, -0.0), Err(AppendError::Duplicate));
    // NaN != NaN as floats, but identical bits are the same sample.
    let stale = f64::from_bits(STALE_NAN);
    h.append(s, 300, stale).expect("append");
    assert_eq!(h.append(s, 300, f64::from_bits(STALE_NAN)), Ok(()));
    assert_eq!(h.append(s, 300, f64::NAN), Err(AppendError::Duplicate));
    h.append(s, 400, 7.0).expect("append");
    assert_eq!(
        all_samples(&h, s),
        vec![
            (100, 1.5f64.to_bits()),
            (200, 0f64.to_bits()),
            (300, STALE_NAN),
            (400, 7f64.to_bits())
        ]
    );
}

#[test]
fn hash_collisions_are_separate_series() {
    let mut h = Head::new(HeadOptions::default());
    let a = [("__name__", "a")];
    let b = [("__name__", "b")];
    let fake = 42;
    let ra = h.create(fake, a.iter().copied());
    assert_eq!(
        lookup_with_hash(&h, fake, &b),
        None,
        "same hash, different labels"
    );
    let rb = h.create(fake, b.iter().copied());
    assert_ne!(ra, rb);
    assert_eq!(lookup_with_hash(&h, fake, &a), Some(ra));
    assert_eq!(lookup_with_hash(&h, fake, &b), Some(rb));
    // A hash that does not match finds nothing even for known labels.
    assert_eq!(lookup_with_hash(&h, 43, &a), None);
    // Many colliding series, interleaved with the index growing.
    let names: Vec<String> = (0..500).map(|i| format!("m{i}")).collect();
    let mut refs = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let pairs = [("__name__", n.as_str())];
        let hash = if i % 2 == 0 { 7 } else { hash_of(&pairs) };
        refs.push(h.create(hash, pairs.iter().copied()));
    }
    for (i, n) in names.iter().enumerate() {
        let pairs = [("__name__", n.as_str())];
        let hash = if i % 2 == 0 { 7 } else { hash_of(&pairs) };
        assert_eq!(lookup_with_hash(&h, hash, &pairs), Some(refs[i]));
    }
    h.append(ra, 1, 1.0).expect("append");
    h.append(rb, 1, 2.0).expect("append");
    assert_eq!(all_samples(&h, ra), vec![(1, 1f64.to_bits())]);
    assert_eq!(all_samples(&h, rb), vec![(1, 2f64.to_bits())]);
}

#[test]
fn label_boundaries_matter_for_lookup() {
    let mut h = Head::new(HeadOptions::default());
    let s = create(&mut h, &[("a", "bc")]);
    assert_eq!(
        lookup_with_hash(&h, hash_of(&[("a", "bc")]), &[("ab", "c")]),
        None
    );
    assert_eq!(
        lookup_with_hash(&h, hash_of(&[("a", "bc")]), &[("a", "bc")]),
        Some(s)
    );
}

#[test]
fn chunk_cut_at_max_samples() {
    let mut h = Head::new(HeadOptions::default());
    let s = create(&mut h, &[("__name__", "x")]);
    for i in 0..300 {
        h.append(s, 1000 + i * 10, i as f64).expect("append");
    }
    let chunks: Vec<_> = h.chunks(s, i64::MIN, i64::MAX).collect();
    let counts: Vec<usize> = chunks
        .iter()
        .map(|c| decode_all(c.data).expect("decodes").len())
        .collect();
    assert_eq!(counts, vec![120, 120, 60]);
    assert_eq!((chunks[0].min_t, chunks[0].max_t), (1000, 1000 + 119 * 10));
    assert_eq!(chunks[1].min_t, 1000 + 120 * 10);
    assert_eq!(chunks[2].max_t, 1000 + 299 * 10);
}

#[test]
fn chunk_cut_at_window_boundaries_including_negative_time() {
    let mut h = Head::new(opts(1000, 120));
    let s = create(&mut h, &[("__name__", "x")]);
    // Windows: [-2000,-1000) [-1000,0) [0,1000) [1000,2000) ...
    let ts = [-1500, -1001, -1000, -1, 0, 999, 1000, 5000, 5001];
    for &t in &ts {
        h.append(s, t, 1.0).expect("append");
    }
    let ranges: Vec<(i64, i64)> = h
        .chunks(s, i64::MIN, i64::MAX)
        .map(|c| (c.min_t, c.max_t))
        .collect();
    assert_eq!(
        ranges,
        vec![
            (-1500, -1001),
            (-1000, -1),
            (0, 999),
            (1000, 1000),
            (5000, 5001)
        ]
    );
    let back: Vec<i64> = all_samples(&h, s).into_iter().map(|(t, _)| t).collect();
    assert_eq!(back, ts);
}

#[test]
fn window_is_aligned_to_the_clock_not_to_the_first_sample() {
    let mut h = Head::new(opts(7_200_000, 120));
    let s = create(&mut h, &[("__name__", "x")]);
    // Start one minute before a window boundary: the first chunk closes at the boundary.
    let boundary = 7_200_000 * 237_000;
    for i in 0..10 {
        h.append(s, boundary - 60_000 + i * 15_000, 1.0)
            .expect("append");
    }
    let ranges: Vec<(i64, i64)> = h
        .chunks(s, i64::MIN, i64::MAX)
        .map(|c| (c.min_t, c.max_t))
        .collect();
    assert_eq!(
        ranges,
        vec![
            (boundary - 60_000, boundary - 15_000),
            (boundary, boundary + 75_000)
        ]
    );
}

#[test]
fn chunks_and_samples_filter_by_range() {
    let mut h = Head::new(opts(1_000_000, 10));
    let s = create(&mut h, &[("__name__", "x")]);
    for i in 0..35 {
        h.append(s, i * 100, i as f64).expect("append");
    }
    // Chunks: [0,900] [1000,1900] [2000,2900] [3000,3400] (the last one open).
    let ranges = |mint, maxt| -> Vec<(i64, i64)> {
        h.chunks(s, mint, maxt)
            .map(|c| (c.min_t, c.max_t))
            .collect()
    };
    assert_eq!(ranges(950, 1000), vec![(1000, 1900)]);
    assert_eq!(ranges(900, 1000), vec![(0, 900), (1000, 1900)]);
    assert_eq!(ranges(2950, 2999), Vec::<(i64, i64)>::new());
    assert_eq!(ranges(3400, i64::MAX), vec![(3000, 3400)]);
    assert_eq!(ranges(3401, i64::MAX), Vec::<(i64, i64)>::new());
    let mut out = Vec::new();
    h.samples(s, 850, 1150, &mut out);
    assert_eq!(out, vec![(900, 9.0), (1000, 10.0), (1100, 11.0)]);
    out.clear();
    h.samples(s, 2850, 3150, &mut out);
    assert_eq!(out, vec![(2900, 29.0), (3000, 30.0), (3100, 31.0)]);
    out.clear();
    h.samples(s, 3401, 4000, &mut out);
    assert!(out.is_empty());
    out.clear();
    h.samples(s, i64::MIN, i64::MAX, &mut out);
    assert_eq!(out.len(), 35);
}

/// Feeds `head` the samples of `series` from index `from` on.
fn feed(head: &mut Head, s: SeriesRef, samples: &[(i64, f64)], from: usize) {
    for &(t, v) in &samples[from..] {
        head.append(s, t, v).expect("append");
    }
}

fn chunk_bytes_from(head: &Head, s: SeriesRef, mint: i64) -> Vec<(i64, i64, Vec<u8>)> {
    head.chunks(s, i64::MIN, i64::MAX)
        .filter(|c| c.min_t >= mint)
        .map(|c| (c.min_t, c.max_t, c.data.to_vec()))
        .collect()
}

proptest! {
    /// Replicas receive the same samples but may start at different points (one joined later,
    /// one restarted): from the first window boundary both have seen, their chunks are the same
    /// bytes. Fed identical samples from the start, all chunks are identical.
    #[test]
    fn replicas_cut_identical_chunks(
        start in -20_000_000i64..20_000_000,
        interval in 1i64..40_000,
        jitter in proptest::collection::vec(0i64..500, 200..1500),
        late in 0usize..200,
        range in prop_oneof![Just(7_200_000i64), 1000i64..1_000_000],
        values in proptest::collection::vec(any::<f64>(), 1500),
    ) {
        let mut t = start;
        let samples: Vec<(i64, f64)> = jitter.iter().zip(&values).map(|(j, &v)| {
            t += interval + j;
            (t, v)
        }).collect();
        let labels = [("__name__", "x"), ("replica", "same")];
        let mut a = Head::new(opts(range, 120));
        let mut b = Head::new(opts(range, 120));
        let mut c = Head::new(opts(range, 120));
        let (sa, sb, sc) = (create(&mut a, &labels), create(&mut b, &labels), create(&mut c, &labels));
        feed(&mut a, sa, &samples, 0);
        feed(&mut b, sb, &samples, late.min(samples.len() - 1));
        feed(&mut c, sc, &samples, 0);
        prop_assert_eq!(chunk_bytes_from(&a, sa, i64::MIN), chunk_bytes_from(&c, sc, i64::MIN));
        // Chunks that start at or after the end of the window b's first sample lies in.
        let first_b = samples[late.min(samples.len() - 1)].0;
        let boundary = (first_b.div_euclid(range) + 1) * range;
        let from_a = chunk_bytes_from(&a, sa, boundary);
        let from_b = chunk_bytes_from(&b, sb, boundary);
        prop_assert_eq!(from_a, from_b);
        // Every chunk respects both limits.
        for ch in a.chunks(sa, i64::MIN, i64::MAX) {
            let n = decode_all(ch.data).expect("decodes").len();
            prop_assert!((1..=120).contains(&n));
            prop_assert_eq!(ch.min_t.div_euclid(range), ch.max_t.div_euclid(range));
        }
    }

    /// Whatever is appended (including rejected samples), reading back gives exactly the
    /// accepted samples, in order, and every range query gives the matching slice.
    #[test]
    fn samples_read_back_exactly(
        ops in proptest::collection::vec((-50i64..200, prop_oneof![Just(f64::from_bits(STALE_NAN)), any::<f64>()]), 1..600),
        max in 1u16..150,
        range in 1i64..3000,
        q in (-100i64..5000, 0i64..5000),
    ) {
        let mut h = Head::new(opts(range, max));
        let s = create(&mut h, &[("a", "b")]);
        let mut want: Vec<(i64, u64)> = Vec::new();
        let mut t = -10_000i64;
        for (dt, v) in ops {
            t += dt;
            let res = h.append(s, t, v);
            match want.last() {
                Some(&(lt, _)) if t < lt => prop_assert_eq!(res, Err(AppendError::OutOfOrder { last_t: lt })),
                Some(&(lt, lv)) if t == lt && lv == v.to_bits() => prop_assert_eq!(res, Ok(())),
                Some(&(lt, _)) if t == lt => prop_assert_eq!(res, Err(AppendError::Duplicate)),
                _ => {
                    prop_assert_eq!(res, Ok(()));
                    want.push((t, v.to_bits()));
                }
            }
        }
        prop_assert_eq!(all_samples(&h, s), want.clone());
        let (mint, maxt) = (q.0 - 10_000, q.0 - 10_000 + q.1);
        let mut got = Vec::new();
        h.samples(s, mint, maxt, &mut got);
        let got: Vec<(i64, u64)> = got.into_iter().map(|(t, v)| (t, v.to_bits())).collect();
        let expect: Vec<(i64, u64)> = want.iter().copied().filter(|&(t, _)| t >= mint && t <= maxt).collect();
        prop_assert_eq!(got, expect);
    }
}

#[test]
fn head_can_move_to_its_shard_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<Head>();
}
