//! Reading blocks through `BlockCatalog`: blocks written with `BlockWriter` into a local TSDB
//! directory, shipped to a bucket (filesystem and in-memory backends), or both. Selection by
//! matchers and time, deduplication of overlapping blocks and of a ULID present in both sources,
//! partitions, skipped blocks, the index cache and ranged chunk reads.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::memory::InMemory;
use strata_engine::blocks::{BlockCatalog, BlockSource, BucketStoreConfig, owner_shard};
use strata_engine::bucket::shipper::ship_block;
use strata_engine::bucket::{Backend, Bucket, BucketConfig, FilesystemConfig};
use strata_engine::shard::SeriesSamples;
use strata_engine::tenant::TenantId;
use strata_storage::block::{BlockWriter, BlockWriterOptions, ThanosMeta, Ulid};
use strata_storage::chunkenc::xor::XorEncoder;
use strata_storage::head::ChunkMeta;
use strata_storage::labels::Labels;
use strata_storage::matcher::{MatchType, Matcher};

const TENANT: &str = "team-a";

type Data = BTreeMap<Labels, Vec<(i64, f64)>>;

fn on_compio<F: Future>(f: F) -> F::Output {
    compio::runtime::Runtime::new().unwrap().block_on(f)
}

fn tenant() -> TenantId {
    TenantId::parse(TENANT).unwrap()
}

fn ulid(n: u64) -> Ulid {
    Ulid::new(1_700_000_000_000 + n, u128::from(n))
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn eq(name: &str, value: &str) -> Matcher {
    Matcher::new(MatchType::Equal, name, value).unwrap()
}

fn re(name: &str, value: &str) -> Matcher {
    Matcher::new(MatchType::Regexp, name, value).unwrap()
}

/// Writes block `id` with `data` under `parent` (chunks of at most 120 samples, segments of at
/// most `segment_size` bytes) and returns its directory.
fn write_block(parent: &Path, id: Ulid, data: &Data, segment_size: u64) -> std::path::PathBuf {
    let opts = BlockWriterOptions {
        thanos: Some(ThanosMeta::for_tenant(TENANT, "test")),
        max_segment_size: segment_size,
        ..BlockWriterOptions::default()
    };
    let mut w = BlockWriter::new(parent, id, opts).unwrap();
    for (l, samples) in data {
        let encoded: Vec<(i64, i64, Vec<u8>)> = samples
            .chunks(120)
            .map(|part| {
                let mut e = XorEncoder::new();
                for &(t, v) in part {
                    e.append(t, v);
                }
                (part[0].0, part[part.len() - 1].0, e.into_bytes())
            })
            .collect();
        w.add_series(
            l,
            encoded.iter().map(|(min_t, max_t, data)| ChunkMeta {
                min_t: *min_t,
                max_t: *max_t,
                data,
            }),
        )
        .unwrap();
    }
    w.finish().unwrap();
    parent.join(id.to_string())
}

/// `n` series `up{job=<job>, instance=<i>}` with one sample every 15 s in `[from, to)`.
fn series_data(jobs: &[&str], n: usize, from: i64, to: i64) -> Data {
    let mut d = Data::new();
    for job in jobs {
        for i in 0..n {
            let l = labels(&[
                ("__name__", "up"),
                ("job", job),
                ("instance", &format!("i{i}")),
            ]);
            let samples = (from..to)
                .step_by(15_000)
                .map(|t| (t, (t / 1000) as f64 + i as f64))
                .collect();
            d.insert(l, samples);
        }
    }
    d
}

/// What `data` holds for the series matching `matchers` in `[mint, maxt]`.
fn expected(data: &[&Data], matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<SeriesSamples> {
    let mut merged = Data::new();
    for d in data {
        for (l, samples) in *d {
            if !matchers
                .iter()
                .all(|m| m.matches(l.get(m.name()).unwrap_or("")))
            {
                continue;
            }
            let s = merged.entry(l.clone()).or_default();
            s.extend(samples.iter().filter(|p| p.0 >= mint && p.0 <= maxt));
            s.sort_by_key(|p| p.0);
            s.dedup_by_key(|p| p.0);
        }
    }
    merged
        .into_iter()
        .filter(|(_, s)| !s.is_empty())
        .map(|(labels, samples)| SeriesSamples { labels, samples })
        .collect()
}

/// Compares answers, reporting a difference briefly (series and sample counts, first mismatch).
#[track_caller]
fn assert_same(got: &[SeriesSamples], want: &[SeriesSamples], what: &str) {
    let summary = |v: &[SeriesSamples]| -> Vec<(String, usize)> {
        v.iter()
            .map(|s| (s.labels.to_string(), s.samples.len()))
            .collect()
    };
    assert_eq!(summary(got), summary(want), "{what}");
    for (g, w) in got.iter().zip(want) {
        let diff = g.samples.iter().zip(&w.samples).find(|(a, b)| a != b);
        assert!(diff.is_none(), "{what}: {}: {diff:?}", g.labels);
    }
}

fn local_catalog(dir: &Path) -> BlockCatalog {
    BlockCatalog::new(Some(dir), None, &BucketStoreConfig::default()).unwrap()
}

fn bucket_catalog(bucket: Bucket, sync_interval: Duration) -> BlockCatalog {
    BlockCatalog::new(None, Some(bucket), &BucketStoreConfig { sync_interval }).unwrap()
}

fn filesystem_bucket(dir: &Path) -> Bucket {
    Bucket::new(&BucketConfig {
        backend: Backend::Filesystem,
        filesystem: FilesystemConfig {
            dir: dir.to_path_buf(),
        },
        ..BucketConfig::default()
    })
    .unwrap()
}

/// Two blocks after each other in time, a third overlapping both with a replica's samples (the
/// same series and samples) plus a series of its own.
struct Fixture {
    a: Data,
    b: Data,
    c: Data,
}

const HOUR: i64 = 3_600_000;

fn fixture(tenant_dir: &Path) -> Fixture {
    let a = series_data(&["api", "db"], 5, 0, 2 * HOUR);
    let b = series_data(&["api", "db"], 5, 2 * HOUR, 4 * HOUR);
    let mut c = series_data(&["api"], 5, HOUR, 3 * HOUR);
    c.extend(series_data(&["cache"], 1, HOUR, 3 * HOUR));
    write_block(tenant_dir, ulid(1), &a, 1 << 20);
    write_block(tenant_dir, ulid(2), &b, 1 << 20);
    write_block(tenant_dir, ulid(3), &c, 1 << 20);
    Fixture { a, b, c }
}

/// The checks every source must pass over the fixture.
async fn check_fixture(catalog: &BlockCatalog, f: &Fixture) {
    let t = tenant();
    let all = [&f.a, &f.b, &f.c];
    for (matchers, mint, maxt) in [
        (vec![eq("__name__", "up")], 0, 4 * HOUR),
        (vec![eq("job", "api")], HOUR + 1, 3 * HOUR - 1),
        (
            vec![re("job", "api|cache"), eq("instance", "i0")],
            0,
            4 * HOUR,
        ),
        (vec![eq("job", "db")], 2 * HOUR - 60_000, 2 * HOUR + 60_000),
        (vec![eq("job", "nope")], 0, 4 * HOUR),
        (vec![eq("__name__", "up")], 5 * HOUR, 6 * HOUR),
    ] {
        let got = catalog
            .select(&t, &matchers, mint, maxt, None)
            .await
            .unwrap();
        let what = format!("{matchers:?} in [{mint}, {maxt}]");
        assert_same(&got, &expected(&all, &matchers, mint, maxt), &what);
    }
    // Only blocks overlapping the range count; maxTime is exclusive.
    let ulids =
        |v: Vec<strata_engine::blocks::BlockInfo>| v.iter().map(|b| b.ulid).collect::<Vec<_>>();
    assert_eq!(
        ulids(catalog.blocks(&t, 0, HOUR - 1).await.unwrap()),
        [ulid(1)]
    );
    assert_eq!(
        ulids(catalog.blocks(&t, 2 * HOUR, 2 * HOUR).await.unwrap()),
        [ulid(3), ulid(2)]
    );
    // Block b's last sample is at 4h - 15s.
    assert!(
        catalog
            .has_blocks(&t, 4 * HOUR - 15_000, 4 * HOUR)
            .await
            .unwrap()
    );
    assert!(
        !catalog
            .has_blocks(&t, 4 * HOUR - 14_999, 5 * HOUR)
            .await
            .unwrap()
    );

    // Series, label names and values.
    let series = catalog
        .series(
            &t,
            &[vec![eq("job", "cache")], vec![eq("instance", "i4")]],
            0,
            4 * HOUR,
            None,
        )
        .await
        .unwrap();
    let want: Vec<Labels> = all
        .iter()
        .flat_map(|d| d.keys())
        .filter(|l| l.get("job") == Some("cache") || l.get("instance") == Some("i4"))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(series, want);
    assert_eq!(
        catalog.label_names(&t, &[], 0, 4 * HOUR).await.unwrap(),
        ["__name__", "instance", "job"]
    );
    assert_eq!(
        catalog
            .label_values(&t, "job", &[], 0, 4 * HOUR)
            .await
            .unwrap(),
        ["api", "cache", "db"]
    );
    // Block b alone has no cache series.
    assert_eq!(
        catalog
            .label_values(&t, "job", &[], 3 * HOUR, 4 * HOUR)
            .await
            .unwrap(),
        ["api", "db"]
    );
    assert_eq!(
        catalog
            .label_values(&t, "instance", &[vec![eq("job", "cache")]], 0, 4 * HOUR)
            .await
            .unwrap(),
        ["i0"]
    );
    // Another tenant sees nothing.
    let other = TenantId::parse("team-b").unwrap();
    assert!(
        catalog
            .select(&other, &[], 0, 4 * HOUR, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        catalog
            .label_names(&other, &[], 0, 4 * HOUR)
            .await
            .unwrap()
            .is_empty()
    );
}

#[test]
fn local_blocks_answer_by_matchers_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture(&dir.path().join(TENANT));
    let catalog = local_catalog(dir.path());
    on_compio(check_fixture(&catalog, &f));
    let s = catalog.stats();
    assert_eq!(s.index_fetches, 3, "each index is fetched once: {s:?}");
    assert!(s.local_syncs > 0 && s.bucket_syncs == 0);
}

/// Waits up to 5 s for the catalog to have checked a block's chunks; returns how many it has.
async fn blocks_verified(catalog: &BlockCatalog) -> u64 {
    for _ in 0..500 {
        if catalog.stats().blocks_verified > 0 {
            break;
        }
        compio::time::sleep(Duration::from_millis(10)).await;
    }
    catalog.stats().blocks_verified
}

#[test]
fn local_chunks_are_checked_once_and_a_damaged_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = series_data(&["api"], 10, 0, 2 * HOUR);
    let block = write_block(&dir.path().join(TENANT), ulid(1), &data, 1 << 20);
    let catalog = local_catalog(dir.path());
    let t = tenant();
    on_compio(async {
        let want = expected(&[&data], &[], 0, 2 * HOUR);
        let got = catalog.select(&t, &[], 0, 2 * HOUR, None).await.unwrap();
        assert_same(&got, &want, "before the check");
        // Opening the block started the check of its chunks; once done, reads skip the CRCs
        // and answer the same.
        assert_eq!(blocks_verified(&catalog).await, 1);
        let got = catalog.select(&t, &[], 0, 2 * HOUR, None).await.unwrap();
        assert_same(&got, &want, "after the check");
    });

    // The same block with one bit of a chunk flipped (the first record's data: past the
    // segment header, its length and its encoding) is never marked checked, and every read of
    // that chunk fails naming its checksum.
    let mut bytes = std::fs::read(block.join("chunks/000001")).unwrap();
    bytes[8 + 3] ^= 0x10;
    let damaged_dir = tempfile::tempdir().unwrap();
    let damaged = damaged_dir.path().join(TENANT).join(ulid(1).to_string());
    std::fs::create_dir_all(damaged.join("chunks")).unwrap();
    for f in ["index", "meta.json"] {
        std::fs::copy(block.join(f), damaged.join(f)).unwrap();
    }
    std::fs::write(damaged.join("chunks/000001"), &bytes).unwrap();
    let catalog = local_catalog(damaged_dir.path());
    on_compio(async {
        for _ in 0..3 {
            let err = catalog
                .select(&t, &[], 0, 2 * HOUR, None)
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains("checksum"), "{err}");
            compio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(catalog.stats().blocks_verified, 0);
    });
}

#[test]
fn bucket_blocks_answer_as_local_ones() {
    let dir = tempfile::tempdir().unwrap();
    let fs = filesystem_bucket(&dir.path().join("bucket"));
    let memory = Bucket::from_store(Arc::new(InMemory::new())).unwrap();
    for (i, bucket) in [fs, memory].into_iter().enumerate() {
        // A local copy per bucket: the shipper remembers what it shipped from a directory.
        let local = dir.path().join(format!("local-{i}"));
        let f = fixture(&local.join(TENANT));
        on_compio(async {
            for n in 1..=3 {
                let block = local.join(TENANT).join(ulid(n).to_string());
                ship_block(&bucket, TENANT, &block).await.unwrap();
            }
        });
        let catalog = bucket_catalog(bucket, Duration::from_mins(1));
        on_compio(check_fixture(&catalog, &f));
        let s = catalog.stats();
        assert_eq!(s.index_fetches, 3, "{s:?}");
        // One listing per tenant (the fixture also asks for team-b) within the interval.
        assert_eq!(s.bucket_syncs, 2, "{s:?}");
        let blocks = on_compio(catalog.blocks(&tenant(), 0, 4 * HOUR)).unwrap();
        assert!(blocks.iter().all(|b| b.source == BlockSource::Bucket));
    }
}

#[test]
fn a_block_in_both_sources_is_read_once_from_the_local_copy() {
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("local");
    let f = fixture(&local.join(TENANT));
    let bucket = filesystem_bucket(&dir.path().join("bucket"));
    on_compio(async {
        // Block 1 in both, block 2 only in the bucket, block 3 only local.
        for n in [1, 2] {
            let block = local.join(TENANT).join(ulid(n).to_string());
            ship_block(&bucket, TENANT, &block).await.unwrap();
        }
    });
    std::fs::remove_dir_all(local.join(TENANT).join(ulid(2).to_string())).unwrap();
    let catalog =
        BlockCatalog::new(Some(&local), Some(bucket), &BucketStoreConfig::default()).unwrap();
    on_compio(async {
        let blocks = catalog.blocks(&tenant(), 0, 4 * HOUR).await.unwrap();
        let sources: Vec<_> = blocks.iter().map(|b| (b.ulid, b.source)).collect();
        assert_eq!(
            sources,
            [
                (ulid(1), BlockSource::Local),
                (ulid(3), BlockSource::Local),
                (ulid(2), BlockSource::Bucket)
            ]
        );
        check_fixture(&catalog, &f).await;

        // Retention removes the local copy: the bucket's is read instead.
        std::fs::remove_dir_all(local.join(TENANT).join(ulid(1).to_string())).unwrap();
        let blocks = catalog.blocks(&tenant(), 0, HOUR).await.unwrap();
        assert_eq!(blocks[0].source, BlockSource::Bucket);
        check_fixture(&catalog, &f).await;
    });
}

#[test]
fn overlapping_blocks_are_merged_and_deduplicated() {
    let dir = tempfile::tempdir().unwrap();
    let tenant_dir = dir.path().join(TENANT);
    let full = series_data(&["api"], 3, 0, HOUR);
    // Two replicas' blocks of the same range, and one holding the second half only.
    write_block(&tenant_dir, ulid(1), &full, 1 << 20);
    write_block(&tenant_dir, ulid(2), &full, 1 << 20);
    let half = series_data(&["api"], 3, HOUR / 2, HOUR);
    write_block(&tenant_dir, ulid(3), &half, 1 << 20);
    let catalog = local_catalog(dir.path());
    let got = on_compio(catalog.select(&tenant(), &[eq("job", "api")], 0, HOUR, None)).unwrap();
    assert_same(&got, &expected(&[&full], &[], 0, HOUR), "merged");
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].samples.len(), (HOUR / 15_000) as usize);
}

#[test]
fn partitions_split_the_series_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let tenant_dir = dir.path().join(TENANT);
    let a = series_data(&["api", "db", "web"], 20, 0, HOUR);
    let b = series_data(&["api", "db", "web"], 20, HOUR, 2 * HOUR);
    write_block(&tenant_dir, ulid(1), &a, 1 << 20);
    write_block(&tenant_dir, ulid(2), &b, 1 << 20);
    let catalog = local_catalog(dir.path());
    let t = tenant();
    on_compio(async {
        let all = catalog.select(&t, &[], 0, 2 * HOUR, None).await.unwrap();
        assert_eq!(all.len(), 60);
        for n in [1, 2, 3, 7] {
            let mut union = Vec::new();
            for k in 0..n {
                let part = catalog
                    .select(&t, &[], 0, 2 * HOUR, Some((k, n)))
                    .await
                    .unwrap();
                for s in &part {
                    assert_eq!(owner_shard(&t, &s.labels, n), k);
                }
                let labels = catalog
                    .series(&t, &[], 0, 2 * HOUR, Some((k, n)))
                    .await
                    .unwrap();
                assert_eq!(
                    labels,
                    part.iter().map(|s| s.labels.clone()).collect::<Vec<_>>()
                );
                union.extend(part);
            }
            // Disjoint (no series twice) and complete.
            union.sort_by(|x, y| x.labels.cmp(&y.labels));
            assert_same(&union, &all, &format!("{n} partitions"));
        }
        assert!(
            catalog
                .select(&t, &[], 0, HOUR, Some((3, 3)))
                .await
                .is_err()
        );
        assert!(
            catalog
                .select(&t, &[], 0, HOUR, Some((0, 0)))
                .await
                .is_err()
        );
    });
}

#[test]
fn incomplete_deleted_and_foreign_blocks_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("local");
    let tenant_dir = local.join(TENANT);
    let data = series_data(&["api"], 2, 0, HOUR);
    write_block(&tenant_dir, ulid(1), &data, 1 << 20);
    // No meta.json yet (a writer not done): skipped until it has one.
    let partial = write_block(&tenant_dir, ulid(2), &data, 1 << 20);
    let meta = std::fs::read(partial.join("meta.json")).unwrap();
    std::fs::remove_file(partial.join("meta.json")).unwrap();
    // Marked for deletion.
    let marked = write_block(&tenant_dir, ulid(3), &data, 1 << 20);
    std::fs::write(marked.join("deletion-mark.json"), b"{}").unwrap();
    // Not a block.
    std::fs::create_dir_all(tenant_dir.join("wal")).unwrap();
    std::fs::create_dir_all(tenant_dir.join(format!("{}.tmp", ulid(4)))).unwrap();

    let bucket = filesystem_bucket(&dir.path().join("bucket"));
    let catalog = BlockCatalog::new(
        Some(&local),
        Some(bucket.clone()),
        &BucketStoreConfig {
            sync_interval: Duration::ZERO,
        },
    )
    .unwrap();
    let t = tenant();
    on_compio(async {
        let ulids = |b: Vec<strata_engine::blocks::BlockInfo>| {
            b.into_iter().map(|b| b.ulid).collect::<Vec<_>>()
        };
        assert_eq!(ulids(catalog.blocks(&t, 0, HOUR).await.unwrap()), [ulid(1)]);
        std::fs::write(partial.join("meta.json"), &meta).unwrap();
        assert_eq!(
            ulids(catalog.blocks(&t, 0, HOUR).await.unwrap()),
            [ulid(1), ulid(2)]
        );

        // In the bucket: a block marked in Cortex's global markers, and one without meta.json.
        let other = dir.path().join("other");
        for n in [5, 6] {
            let block = write_block(&other, ulid(n), &data, 1 << 20);
            ship_block(&bucket, TENANT, &block).await.unwrap();
        }
        assert_eq!(ulids(catalog.blocks(&t, 0, HOUR).await.unwrap()).len(), 4);
        bucket
            .put(
                &format!("{TENANT}/markers/{}-deletion-mark.json", ulid(5)),
                Bytes::from_static(b"{}"),
            )
            .await
            .unwrap();
        bucket
            .delete(&format!("{TENANT}/{}/meta.json", ulid(6)))
            .await
            .unwrap();
        assert_eq!(
            ulids(catalog.blocks(&t, 0, HOUR).await.unwrap()),
            [ulid(1), ulid(2)]
        );
        let got = catalog.select(&t, &[], 0, HOUR, None).await.unwrap();
        assert_same(&got, &expected(&[&data], &[], 0, HOUR), "usable blocks");
    });
}

#[test]
fn the_bucket_is_listed_at_most_every_sync_interval() {
    let dir = tempfile::tempdir().unwrap();
    let data = series_data(&["api"], 2, 0, HOUR);
    let b1 = write_block(dir.path(), ulid(1), &data, 1 << 20);
    let b2 = write_block(dir.path(), ulid(2), &data, 1 << 20);
    let bucket = Bucket::from_store(Arc::new(InMemory::new())).unwrap();
    let slow = bucket_catalog(bucket.clone(), Duration::from_hours(1));
    let eager = bucket_catalog(bucket.clone(), Duration::ZERO);
    let t = tenant();
    on_compio(async {
        ship_block(&bucket, TENANT, &b1).await.unwrap();
        assert_eq!(slow.blocks(&t, 0, HOUR).await.unwrap().len(), 1);
        assert_eq!(eager.blocks(&t, 0, HOUR).await.unwrap().len(), 1);
        ship_block(&bucket, TENANT, &b2).await.unwrap();
        assert_eq!(slow.blocks(&t, 0, HOUR).await.unwrap().len(), 1);
        assert_eq!(eager.blocks(&t, 0, HOUR).await.unwrap().len(), 2);
    });
    assert_eq!(slow.stats().bucket_syncs, 1);
    assert_eq!(eager.stats().bucket_syncs, 2);
}

#[test]
fn indexes_are_cached_and_chunks_read_by_range() {
    let dir = tempfile::tempdir().unwrap();
    // 300 series of 2 h at 15 s: 480 samples in 4 chunks each, in 4 KiB segments.
    let data = series_data(&["api", "db", "web"], 100, 0, 2 * HOUR);
    let block = write_block(dir.path(), ulid(1), &data, 4 << 10);
    let segments = std::fs::read_dir(block.join("chunks")).unwrap().count() as u64;
    assert!(segments > 10, "{segments} segments");
    let bucket = Bucket::from_store(Arc::new(InMemory::new())).unwrap();
    let catalog = bucket_catalog(bucket.clone(), Duration::from_mins(1));
    let t = tenant();
    on_compio(async {
        ship_block(&bucket, TENANT, &block).await.unwrap();
        // Everything: one range per segment.
        let all = catalog.select(&t, &[], 0, 2 * HOUR, None).await.unwrap();
        assert_same(&all, &expected(&[&data], &[], 0, 2 * HOUR), "all");
        let s = catalog.stats();
        assert_eq!(s.index_fetches, 1);
        assert_eq!(s.chunk_range_fetches, segments, "{s:?}");
        // One series: one range, and the index is not fetched again.
        let one = [eq("job", "db"), eq("instance", "i42")];
        let got = catalog.select(&t, &one, 0, 2 * HOUR, None).await.unwrap();
        assert_same(&got, &expected(&[&data], &one, 0, 2 * HOUR), "one series");
        let s2 = catalog.stats();
        assert_eq!(s2.index_fetches, 1);
        assert!(
            s2.chunk_range_fetches - s.chunk_range_fetches <= 2,
            "{s2:?}"
        );
        assert!(
            s2.chunk_bytes_fetched - s.chunk_bytes_fetched < 8 << 10,
            "{s2:?}"
        );
        // Only the first hour: the second chunk of each series is not read.
        let got = catalog.select(&t, &one, 0, HOUR - 1, None).await.unwrap();
        assert_same(&got, &expected(&[&data], &one, 0, HOUR - 1), "first hour");
    });
}

#[test]
fn a_block_deleted_since_the_listing_is_dropped_when_read() {
    let dir = tempfile::tempdir().unwrap();
    let data = series_data(&["api"], 2, 0, HOUR);
    let kept = series_data(&["db"], 2, 0, HOUR);
    let b1 = write_block(dir.path(), ulid(1), &data, 1 << 20);
    let b2 = write_block(dir.path(), ulid(2), &kept, 1 << 20);
    let bucket = Bucket::from_store(Arc::new(InMemory::new())).unwrap();
    let catalog = bucket_catalog(bucket.clone(), Duration::from_hours(1));
    let t = tenant();
    on_compio(async {
        ship_block(&bucket, TENANT, &b1).await.unwrap();
        ship_block(&bucket, TENANT, &b2).await.unwrap();
        let all = catalog.select(&t, &[], 0, HOUR, None).await.unwrap();
        assert_eq!(all.len(), 4);
        // The compactor deletes block 1; the listing is not due for another hour, but the read
        // that finds the block gone lists again and answers from what is left.
        for object in bucket.list(&format!("{TENANT}/{}", ulid(1))).await.unwrap() {
            bucket.delete(&object.path).await.unwrap();
        }
        let got = catalog.select(&t, &[], 0, HOUR, None).await.unwrap();
        assert_same(&got, &expected(&[&kept], &[], 0, HOUR), "after deletion");
    });
    assert_eq!(catalog.stats().bucket_syncs, 2);
}
