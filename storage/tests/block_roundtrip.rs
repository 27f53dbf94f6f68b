//! Blocks written by `BlockWriter` and read back by `Block::open`: labels, chunk metas, chunk
//! bytes and samples come back equal; `select` agrees with brute-force matching over the written
//! label sets (every matcher type, including ones that match the empty string); chunk refs grow
//! in series order whatever order the series were added in; bad series are rejected.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use strata_storage::block::{
    Block, BlockWriter, BlockWriterOptions, InvalidSeries, ThanosMeta, Ulid, WriteError,
};
use strata_storage::chunkenc::xor::{XorEncoder, decode_all};
use strata_storage::head::ChunkMeta;
use strata_storage::labels::Labels;
use strata_storage::matcher::{MatchType, Matcher};

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "strata-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One series to write: labels and its chunks' samples.
#[derive(Clone, Debug)]
struct TestSeries {
    labels: Labels,
    chunks: Vec<Vec<(i64, f64)>>,
}

/// Encoded chunks of a series: `(min_t, max_t, bytes)`.
fn encode(chunks: &[Vec<(i64, f64)>]) -> Vec<(i64, i64, Vec<u8>)> {
    chunks
        .iter()
        .map(|samples| {
            let mut e = XorEncoder::new();
            for &(t, v) in samples {
                e.append(t, v);
            }
            (samples[0].0, samples[samples.len() - 1].0, e.into_bytes())
        })
        .collect()
}

fn add(w: &mut BlockWriter, s: &TestSeries) -> Result<(), WriteError> {
    let enc = encode(&s.chunks);
    w.add_series(
        &s.labels,
        enc.iter().map(|(min_t, max_t, data)| ChunkMeta {
            min_t: *min_t,
            max_t: *max_t,
            data,
        }),
    )
}

const NAMES: &[&str] = &["__name__", "a", "b", "job", "zone"];
const VALUES: &[&str] = &["x", "y", "foo", "bar", "é", "a\nb", "x y"];

fn labels_strategy() -> impl Strategy<Value = Labels> {
    proptest::collection::btree_map(
        proptest::sample::select(NAMES),
        proptest::sample::select(VALUES),
        0..=NAMES.len(),
    )
    .prop_map(Labels::from_pairs)
}

/// 1-4 chunks of 1-40 samples with increasing timestamps and varied values.
fn chunks_strategy() -> impl Strategy<Value = Vec<Vec<(i64, f64)>>> {
    let value = prop_oneof![
        4 => (-1000i32..1000).prop_map(f64::from),
        2 => any::<f64>(),
        1 => Just(f64::NAN),
        1 => Just(f64::from_bits(0x7ff0_0000_0000_0002)), // Prometheus's stale marker
    ];
    (
        -1_000_000_000i64..2_000_000_000_000,
        proptest::collection::vec(
            proptest::collection::vec((1i64..100_000, value), 1..40),
            1..4,
        ),
    )
        .prop_map(|(start, chunks)| {
            let mut t = start;
            chunks
                .into_iter()
                .map(|c| {
                    c.into_iter()
                        .map(|(dt, v)| {
                            t += dt;
                            (t, v)
                        })
                        .collect()
                })
                .collect()
        })
}

fn series_set_strategy() -> impl Strategy<Value = Vec<TestSeries>> {
    proptest::collection::vec((labels_strategy(), chunks_strategy()), 0..40).prop_map(|v| {
        // One series per label set.
        let mut seen = BTreeSet::new();
        v.into_iter()
            .filter(|(l, _)| seen.insert(l.clone()))
            .map(|(labels, chunks)| TestSeries { labels, chunks })
            .collect()
    })
}

fn matcher_strategy() -> impl Strategy<Value = Matcher> {
    let t = proptest::sample::select(vec![
        MatchType::Equal,
        MatchType::NotEqual,
        MatchType::Regexp,
        MatchType::NotRegexp,
    ]);
    let name = proptest::sample::select(vec!["__name__", "a", "b", "job", "zone", "missing"]);
    let value = proptest::sample::select(vec![
        "", "x", "y", "foo", "é", "a\nb", "x|y", "x|", ".*", ".+", "f.*", ".*o", "[a-f]oo",
        "(x|foo)", "a.b", ".*y.*", "é|bar",
    ]);
    (t, name, value).prop_map(|(t, n, v)| Matcher::new(t, n, v).expect("valid matcher"))
}

/// Writes `series` (in the given order) as a block and opens it.
fn write_and_open(dir: &Path, series: &[TestSeries], opts: BlockWriterOptions) -> Block {
    let ulid = Ulid::generate();
    let mut w = BlockWriter::new(dir, ulid, opts).expect("new writer");
    for s in series {
        add(&mut w, s).expect("add series");
    }
    let meta = w.finish().expect("finish");
    assert_eq!(meta.ulid, ulid);
    assert!(!dir.join(format!("{ulid}.tmp")).exists());
    Block::open(&dir.join(ulid.to_string())).expect("open block")
}

/// Checks that `block` holds exactly `series`.
fn check_block(block: &Block, series: &[TestSeries]) {
    let mut expected: Vec<&TestSeries> = series.iter().collect();
    expected.sort_by(|a, b| a.labels.cmp(&b.labels));

    let meta = block.meta();
    let samples: usize = series.iter().flat_map(|s| &s.chunks).map(Vec::len).sum();
    let num_chunks: usize = series.iter().map(|s| s.chunks.len()).sum();
    assert_eq!(meta.stats.num_series, series.len() as u64);
    assert_eq!(meta.stats.num_samples, samples as u64);
    assert_eq!(meta.stats.num_chunks, num_chunks as u64);
    if !series.is_empty() {
        let min = series.iter().map(|s| s.chunks[0][0].0).min();
        let max = series
            .iter()
            .map(|s| s.chunks.last().and_then(|c| c.last()).map_or(0, |x| x.0))
            .max();
        assert_eq!(Some(meta.min_time), min);
        assert_eq!(Some(meta.max_time - 1), max);
    }

    let ix = block.index();
    let all = ix.all_postings().expect("all postings");
    assert_eq!(all.len(), expected.len());
    assert_eq!(ix.select(&[]).expect("select all"), all);
    let mut last_chunk_ref = None;
    for (r, want) in all.iter().zip(&expected) {
        let (labels, chunks) = ix.series(*r).expect("series");
        assert_eq!(labels, want.labels);
        let enc = encode(&want.chunks);
        assert_eq!(chunks.len(), enc.len());
        for (c, (min_t, max_t, bytes)) in chunks.iter().zip(&enc) {
            assert_eq!((c.min_t, c.max_t), (*min_t, *max_t));
            assert!(last_chunk_ref < Some(c.chunk_ref), "chunk refs must grow");
            last_chunk_ref = Some(c.chunk_ref);
            let data = block.chunks().chunk(c.chunk_ref).expect("chunk");
            assert_eq!(data, bytes.as_slice());
        }
        let decoded: Vec<(i64, u64)> = chunks
            .iter()
            .flat_map(|c| {
                decode_all(block.chunks().chunk(c.chunk_ref).expect("chunk")).expect("decode")
            })
            .map(|(t, v)| (t, v.to_bits()))
            .collect();
        let written: Vec<(i64, u64)> = want
            .chunks
            .iter()
            .flatten()
            .map(|&(t, v)| (t, v.to_bits()))
            .collect();
        assert_eq!(decoded, written);
    }

    let mut values: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for s in series {
        for l in &s.labels {
            values.entry(&l.name).or_default().insert(&l.value);
        }
    }
    assert_eq!(ix.label_names(), values.keys().copied().collect::<Vec<_>>());
    for (name, vals) in &values {
        assert_eq!(
            ix.label_values(name),
            vals.iter().copied().collect::<Vec<_>>()
        );
        for v in vals {
            let want: Vec<_> = all
                .iter()
                .zip(&expected)
                .filter(|(_, s)| s.labels.get(name) == Some(v))
                .map(|(r, _)| *r)
                .collect();
            assert_eq!(ix.postings(name, v).expect("postings"), want);
        }
    }
    assert!(ix.label_values("missing").is_empty());
    assert!(ix.postings("missing", "x").expect("postings").is_empty());
    assert!(ix.postings("", "").expect("postings").is_empty());
}

/// The label sets of the series selected by `matchers`, by brute force, in label order.
fn brute_force(series: &[TestSeries], matchers: &[Matcher]) -> Vec<Labels> {
    let mut out: Vec<Labels> = series
        .iter()
        .filter(|s| {
            matchers
                .iter()
                .all(|m| m.matches(s.labels.get(m.name()).unwrap_or("")))
        })
        .map(|s| s.labels.clone())
        .collect();
    out.sort();
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn written_blocks_read_back_equal(
        series in series_set_strategy(),
        shuffle in any::<bool>(),
        seed in any::<u64>(),
        small_segments in any::<bool>(),
        matcher_sets in proptest::collection::vec(proptest::collection::vec(matcher_strategy(), 0..4), 1..12),
    ) {
        let tmp = TempDir::new("block-roundtrip");
        let mut ordered = series.clone();
        if shuffle {
            // A cheap deterministic shuffle.
            let mut x = seed | 1;
            for i in (1..ordered.len()).rev() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ordered.swap(i, (x % (i as u64 + 1)) as usize);
            }
        } else {
            ordered.sort_by(|a, b| a.labels.cmp(&b.labels));
        }
        let opts = BlockWriterOptions {
            max_segment_size: if small_segments { 300 } else { 512 << 20 },
            ..BlockWriterOptions::default()
        };
        let block = write_and_open(tmp.path(), &ordered, opts);
        check_block(&block, &series);
        if small_segments && series.len() > 5 {
            prop_assert!(block.chunks().num_segments() > 1);
        }
        for ms in &matcher_sets {
            let got: Vec<Labels> = block
                .index()
                .select(ms)
                .expect("select")
                .into_iter()
                .map(|r| block.index().series(r).expect("series").0)
                .collect();
            prop_assert_eq!(got, brute_force(&series, ms), "matchers {:?}", ms.iter().map(ToString::to_string).collect::<Vec<_>>());
        }
    }
}

fn series(pairs: &[(&str, &str)], chunks: Vec<Vec<(i64, f64)>>) -> TestSeries {
    TestSeries {
        labels: Labels::from_pairs(pairs.iter().copied()),
        chunks,
    }
}

#[test]
fn meta_json_carries_the_thanos_section_and_time_range() {
    let tmp = TempDir::new("block-meta");
    let ulid = Ulid::generate();
    let opts = BlockWriterOptions {
        thanos: Some(ThanosMeta::for_tenant("tenant-1", "ingester")),
        time_range: Some((0, 7_200_000)),
        ..BlockWriterOptions::default()
    };
    let mut w = BlockWriter::new(tmp.path(), ulid, opts).expect("writer");
    add(
        &mut w,
        &series(&[("__name__", "up")], vec![vec![(1000, 1.0), (2000, 1.0)]]),
    )
    .expect("add");
    let meta = w.finish().expect("finish");
    assert_eq!((meta.min_time, meta.max_time), (0, 7_200_000));
    let block = Block::open(&tmp.path().join(ulid.to_string())).expect("open");
    assert_eq!(block.meta(), &meta);
    let json = std::fs::read_to_string(tmp.path().join(ulid.to_string()).join("meta.json"))
        .expect("meta.json");
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["thanos"]["labels"]["__org_id__"], "tenant-1");
    assert_eq!(v["thanos"]["downsample"]["resolution"], 0);
    assert_eq!(v["thanos"]["source"], "ingester");
    assert_eq!(v["compaction"]["level"], 1);
    assert_eq!(v["compaction"]["sources"][0], ulid.to_string());
    assert_eq!(v["version"], 1);
    assert_eq!(v["stats"]["numSamples"], 2);

    // Samples outside a caller-given range are refused.
    let ulid = Ulid::generate();
    let opts = BlockWriterOptions {
        time_range: Some((0, 2000)),
        ..BlockWriterOptions::default()
    };
    let mut w = BlockWriter::new(tmp.path(), ulid, opts).expect("writer");
    add(
        &mut w,
        &series(&[("__name__", "up")], vec![vec![(1000, 1.0), (2000, 1.0)]]),
    )
    .expect("add");
    assert!(matches!(
        w.finish(),
        Err(WriteError::OutsideTimeRange { .. })
    ));
    assert!(!tmp.path().join(ulid.to_string()).exists());
    assert!(!tmp.path().join(format!("{ulid}.tmp")).exists());
}

#[test]
fn invalid_series_are_rejected_and_leave_the_block_valid() {
    let tmp = TempDir::new("block-invalid");
    let ulid = Ulid::generate();
    let mut w = BlockWriter::new(tmp.path(), ulid, BlockWriterOptions::default()).expect("writer");
    let good = series(
        &[("__name__", "a")],
        vec![vec![(1, 1.0)], vec![(5, 2.0), (6, 3.0)]],
    );
    add(&mut w, &good).expect("add");

    let overlap = series(
        &[("__name__", "b")],
        vec![vec![(1, 1.0), (5, 1.0)], vec![(5, 2.0)]],
    );
    let err = add(&mut w, &overlap).expect_err("overlapping chunks");
    assert!(matches!(
        err,
        WriteError::InvalidSeries {
            reason: InvalidSeries::ChunksOverlap { .. },
            ..
        }
    ));
    assert!(err.to_string().contains("b{}"), "{err}");

    let backwards = ChunkMeta {
        min_t: 10,
        max_t: 5,
        data: &[0, 0],
    };
    let err = w
        .add_series(&Labels::from_pairs([("__name__", "c")]), [backwards])
        .expect_err("min after max");
    assert!(matches!(
        err,
        WriteError::InvalidSeries {
            reason: InvalidSeries::ChunkTimeRange { .. },
            ..
        }
    ));
    let short = ChunkMeta {
        min_t: 1,
        max_t: 1,
        data: &[0],
    };
    assert!(
        w.add_series(&Labels::from_pairs([("__name__", "c")]), [short])
            .is_err()
    );
    // `Labels` keeps names sorted; a value can still be empty through `from_sorted`.
    let empty_value = Labels::from_sorted(vec![strata_storage::labels::Label {
        name: "b".into(),
        value: String::new(),
    }]);
    let chunk = encode(&[vec![(1, 1.0)]]);
    let meta = ChunkMeta {
        min_t: 1,
        max_t: 1,
        data: &chunk[0].2,
    };
    assert!(matches!(
        w.add_series(&empty_value, [meta]),
        Err(WriteError::InvalidSeries {
            reason: InvalidSeries::EmptyValue(_),
            ..
        })
    ));
    // A series without chunks is not indexed.
    w.add_series(&Labels::from_pairs([("__name__", "empty")]), [])
        .expect("no chunks");
    assert_eq!(w.num_series(), 1);

    w.finish().expect("finish");
    let block = Block::open(&tmp.path().join(ulid.to_string())).expect("open");
    check_block(&block, &[good]);
}

#[test]
fn duplicate_series_fail_the_block() {
    let tmp = TempDir::new("block-dup");
    let ulid = Ulid::generate();
    let mut w = BlockWriter::new(tmp.path(), ulid, BlockWriterOptions::default()).expect("writer");
    let s = series(&[("__name__", "a"), ("job", "x")], vec![vec![(1, 1.0)]]);
    add(&mut w, &s).expect("add");
    add(&mut w, &series(&[("__name__", "b")], vec![vec![(1, 1.0)]])).expect("add");
    add(&mut w, &s).expect("add (checked at finish)");
    let err = w.finish().expect_err("duplicate");
    assert!(
        matches!(&err, WriteError::DuplicateSeries { labels } if labels == r#"a{job="x"}"#),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(tmp.path()).expect("dir").count(), 0);
}

#[test]
fn empty_block_is_valid() {
    let tmp = TempDir::new("block-empty");
    let block = write_and_open(tmp.path(), &[], BlockWriterOptions::default());
    check_block(&block, &[]);
    assert_eq!(block.chunks().num_segments(), 0);
    let m = Matcher::new(MatchType::Equal, "a", "").expect("matcher");
    assert!(block.index().select(&[m]).expect("select").is_empty());
}

#[test]
fn existing_block_directory_is_not_overwritten() {
    let tmp = TempDir::new("block-exists");
    let ulid = Ulid::generate();
    std::fs::create_dir(tmp.path().join(ulid.to_string())).expect("mkdir");
    assert!(matches!(
        BlockWriter::new(tmp.path(), ulid, BlockWriterOptions::default()),
        Err(WriteError::Exists(_))
    ));
}
