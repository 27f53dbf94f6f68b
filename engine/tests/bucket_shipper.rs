//! Shipping local blocks: ordering, restarts, retries, pending and expired blocks, and reading
//! the shipped blocks back from the bucket.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use object_store::ObjectStore;
use object_store::memory::InMemory;
use strata_engine::bucket::Bucket;
use strata_engine::bucket::shipper::{
    RetryPolicy, SHIPPER_FILE, ShipOutcome, Shipper, ShipperError, ShipperState, delete_expired,
    pending_blocks, ship_block,
};
use strata_engine::bucket::testing::FaultyStore;

const TENANT: &str = "team-a";

fn on_compio<F: Future>(f: F) -> F::Output {
    compio::runtime::Runtime::new().unwrap().block_on(f)
}

fn ulid(n: u32) -> String {
    format!("01J{n:023}")
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A fake block: meta.json, index, tombstones and two chunk segments.
fn make_block(tenant_dir: &Path, ulid: &str, min_time: i64, max_time: i64) -> PathBuf {
    let dir = tenant_dir.join(ulid);
    std::fs::create_dir_all(dir.join("chunks")).unwrap();
    let meta = format!(
        r#"{{"ulid":"{ulid}","minTime":{min_time},"maxTime":{max_time},"version":1,
            "stats":{{"numSamples":10}},"compaction":{{"level":1,"sources":["{ulid}"]}}}}"#
    );
    std::fs::write(dir.join("meta.json"), meta).unwrap();
    std::fs::write(dir.join("index"), format!("index of {ulid}").repeat(20)).unwrap();
    std::fs::write(dir.join("tombstones"), b"tombstones").unwrap();
    std::fs::write(dir.join("chunks/000001"), vec![1u8; 300]).unwrap();
    std::fs::write(dir.join("chunks/000002"), vec![2u8; 10]).unwrap();
    dir
}

fn quick_retries(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(4),
        max_attempts,
    }
}

/// A bucket over `memory` that logs and can fail writes; small parts so chunks go multipart.
fn faulty(memory: &Arc<InMemory>) -> (Arc<FaultyStore>, Bucket) {
    let store = FaultyStore::new(memory.clone() as Arc<dyn ObjectStore>);
    let bucket = Bucket::from_store(store.clone())
        .unwrap()
        .with_part_size(64);
    (store, bucket)
}

#[test]
fn uploads_every_file_with_meta_last() {
    let dir = tempfile::tempdir().unwrap();
    let tenant_dir = dir.path().join(TENANT);
    let id = ulid(1);
    let block = make_block(&tenant_dir, &id, 0, 7_200_000);
    let memory = Arc::new(InMemory::new());
    let (store, bucket) = faulty(&memory);

    let outcome = on_compio(ship_block(&bucket, TENANT, &block)).unwrap();
    let prefix = format!("{TENANT}/{id}");
    let puts = store.take_puts();
    assert_eq!(
        puts,
        [
            "chunks/000001",
            "chunks/000002",
            "index",
            "tombstones",
            "meta.json"
        ]
        .map(|f| format!("{prefix}/{f}"))
    );
    let ShipOutcome::Uploaded { files, bytes } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(files, 5);
    on_compio(async {
        for rel in ["chunks/000001", "chunks/000002", "index", "tombstones"] {
            let remote = bucket.get(&format!("{prefix}/{rel}")).await.unwrap();
            assert_eq!(remote, std::fs::read(block.join(rel)).unwrap(), "{rel}");
        }
        let meta = bucket.get(&format!("{prefix}/meta.json")).await.unwrap();
        let meta: serde_json::Value = serde_json::from_slice(&meta).unwrap();
        assert_eq!(meta["thanos"]["labels"]["__org_id__"], TENANT);
        assert_eq!(meta["maxTime"], 7_200_000);
        let total: u64 = bucket
            .list(&prefix)
            .await
            .unwrap()
            .iter()
            .map(|o| o.size)
            .sum();
        assert_eq!(total, bytes);
    });
    let state = ShipperState::load(&tenant_dir).unwrap();
    assert_eq!(state.uploaded, [id]);
    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tenant_dir.join(SHIPPER_FILE)).unwrap()).unwrap();
    assert_eq!(on_disk["version"], 1);
    assert!(!tenant_dir.join(format!("{SHIPPER_FILE}.tmp")).exists());
}

#[test]
fn a_restart_never_uploads_a_block_twice() {
    let dir = tempfile::tempdir().unwrap();
    let tenant_dir = dir.path().join(TENANT);
    let block = make_block(&tenant_dir, &ulid(1), 0, 1000);
    let memory = Arc::new(InMemory::new());
    let (_, bucket) = faulty(&memory);
    on_compio(ship_block(&bucket, TENANT, &block)).unwrap();

    // A new process: new store wrapper, new bucket and shipper, the same local directory.
    let (store, bucket) = faulty(&memory);
    let shipper = Shipper::new(bucket).with_retry(quick_retries(3));
    let outcome = on_compio(shipper.ship_block(TENANT, &block)).unwrap();
    assert_eq!(outcome, ShipOutcome::AlreadyShipped);
    assert!(store.take_puts().is_empty());
    assert!(pending_blocks(&tenant_dir).unwrap().is_empty());

    // shipper.json lost: the block's meta.json in the bucket proves it was shipped.
    std::fs::remove_file(tenant_dir.join(SHIPPER_FILE)).unwrap();
    assert_eq!(
        pending_blocks(&tenant_dir).unwrap(),
        std::slice::from_ref(&block)
    );
    let outcome = on_compio(shipper.ship_block(TENANT, &block)).unwrap();
    assert_eq!(outcome, ShipOutcome::FoundInBucket);
    assert!(store.take_puts().is_empty());
    assert_eq!(ShipperState::load(&tenant_dir).unwrap().uploaded, [ulid(1)]);

    // A corrupt shipper.json is read as empty, with the same result.
    std::fs::write(tenant_dir.join(SHIPPER_FILE), b"{not json").unwrap();
    let outcome = on_compio(shipper.ship_block(TENANT, &block)).unwrap();
    assert_eq!(outcome, ShipOutcome::FoundInBucket);
    assert!(store.take_puts().is_empty());
}

#[test]
fn failed_uploads_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let tenant_dir = dir.path().join(TENANT);
    let block = make_block(&tenant_dir, &ulid(7), 0, 1000);
    let memory = Arc::new(InMemory::new());
    let (store, bucket) = faulty(&memory);
    store.fail_next_puts(3);
    let shipper = Shipper::new(bucket.clone()).with_retry(quick_retries(5));
    let outcome = on_compio(shipper.ship_block(TENANT, &block)).unwrap();
    assert!(matches!(outcome, ShipOutcome::Uploaded { files: 5, .. }));
    assert_eq!(store.failed_puts(), 3);
    let puts = store.take_puts();
    assert_eq!(puts.len(), 5, "each file written once: {puts:?}");
    assert!(puts[4].ends_with("/meta.json"));
    let blocks = on_compio(bucket.list_blocks(TENANT)).unwrap();
    assert_eq!(blocks.len(), 1);
}

#[test]
fn exhausted_retries_leave_a_partial_block_unrecorded() {
    let dir = tempfile::tempdir().unwrap();
    let tenant_dir = dir.path().join(TENANT);
    let id = ulid(8);
    let block = make_block(&tenant_dir, &id, 0, 1000);
    let memory = Arc::new(InMemory::new());
    let (store, bucket) = faulty(&memory);
    let shipper = Shipper::new(bucket.clone()).with_retry(quick_retries(3));

    // Every file but meta.json reaches the bucket.
    store.fail_puts_ending_with(Some("/meta.json"));
    let err = on_compio(shipper.ship_block(TENANT, &block)).unwrap_err();
    let ShipperError::Upload {
        path,
        attempts,
        source,
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(path, &format!("{TENANT}/{id}/meta.json"));
    assert_eq!(*attempts, 3);
    assert!(source.is_retryable(), "{source}");
    assert_eq!(store.failed_puts(), 3);
    assert_eq!(store.take_puts().len(), 4);
    assert!(!ShipperState::load(&tenant_dir).unwrap().contains(&id));
    assert_eq!(
        pending_blocks(&tenant_dir).unwrap(),
        std::slice::from_ref(&block)
    );
    // Readers do not see the partial block.
    assert!(on_compio(bucket.list_blocks(TENANT)).unwrap().is_empty());

    // Once the store recovers, the block ships.
    store.fail_puts_ending_with(None);
    assert_eq!(
        on_compio(shipper.ship_pending(TENANT, &tenant_dir)).unwrap(),
        std::slice::from_ref(&id)
    );
    assert_eq!(on_compio(bucket.list_blocks(TENANT)).unwrap()[0].ulid, id);
}

#[test]
fn pending_blocks_and_retention() {
    let dir = tempfile::tempdir().unwrap();
    let tenant_dir = dir.path().join(TENANT);
    let hour = 3_600_000;
    let now = now_ms();
    let old_shipped = make_block(&tenant_dir, &ulid(1), now - 12 * hour, now - 10 * hour);
    let new_shipped = make_block(&tenant_dir, &ulid(2), now - 3 * hour, now - hour);
    // Not a block (yet): being written, or without meta.json; and a stray file.
    let creating = tenant_dir.join(format!("{}.tmp-for-creation", ulid(4)));
    std::fs::create_dir_all(&creating).unwrap();
    std::fs::write(creating.join("meta.json"), b"{}").unwrap();
    std::fs::create_dir_all(tenant_dir.join(ulid(5)).join("chunks")).unwrap();
    std::fs::write(tenant_dir.join("wal-marker"), b"").unwrap();

    let memory = Arc::new(InMemory::new());
    let (_, bucket) = faulty(&memory);
    let shipper = Shipper::new(bucket).with_retry(quick_retries(3));
    assert_eq!(
        pending_blocks(&tenant_dir).unwrap(),
        [old_shipped.clone(), new_shipped.clone()]
    );
    assert_eq!(
        on_compio(shipper.ship_pending(TENANT, &tenant_dir)).unwrap(),
        [ulid(1), ulid(2)]
    );
    // An old block that is not shipped yet.
    let old_unshipped = make_block(&tenant_dir, &ulid(3), now - 12 * hour, now - 10 * hour);
    assert_eq!(
        pending_blocks(&tenant_dir).unwrap(),
        std::slice::from_ref(&old_unshipped)
    );
    // A leftover of an interrupted deletion.
    let leftover = tenant_dir.join(format!("{}.tmp-for-deletion", ulid(6)));
    std::fs::create_dir_all(&leftover).unwrap();

    let retention = Duration::from_hours(6);
    let deleted = delete_expired(&tenant_dir, retention, SystemTime::now()).unwrap();
    assert_eq!(deleted, [ulid(1)]);
    assert!(!old_shipped.exists());
    assert!(new_shipped.exists() && old_unshipped.exists() && creating.exists());
    assert!(!leftover.exists());
    assert_eq!(ShipperState::load(&tenant_dir).unwrap().uploaded, [ulid(2)]);
    // Nothing more to delete until time passes.
    assert!(
        delete_expired(&tenant_dir, retention, SystemTime::now())
            .unwrap()
            .is_empty()
    );
    let later = SystemTime::now() + Duration::from_hours(6);
    assert_eq!(
        delete_expired(&tenant_dir, retention, later).unwrap(),
        [ulid(2)]
    );
    assert!(old_unshipped.exists(), "unshipped blocks are kept");
}

#[test]
fn refuses_what_is_not_a_block() {
    let dir = tempfile::tempdir().unwrap();
    let tenant_dir = dir.path().join(TENANT);
    let bucket = Bucket::from_store(Arc::new(InMemory::new())).unwrap();
    let not_ulid = tenant_dir.join("not-a-ulid");
    std::fs::create_dir_all(&not_ulid).unwrap();
    let err = on_compio(ship_block(&bucket, TENANT, &not_ulid)).unwrap_err();
    assert!(matches!(err, ShipperError::NotABlock { .. }), "{err}");

    let block = make_block(&tenant_dir, &ulid(1), 0, 1);
    std::fs::rename(&block, tenant_dir.join(ulid(2))).unwrap();
    let err = on_compio(ship_block(&bucket, TENANT, &tenant_dir.join(ulid(2)))).unwrap_err();
    assert!(err.to_string().contains("names block"), "{err}");

    let block = make_block(&tenant_dir, &ulid(3), 0, 1);
    let err = on_compio(ship_block(&bucket, "a/b", &block)).unwrap_err();
    assert!(matches!(err, ShipperError::InvalidTenant { .. }), "{err}");

    std::fs::write(block.join("meta.json"), b"not json").unwrap();
    let err = on_compio(ship_block(&bucket, TENANT, &block)).unwrap_err();
    assert!(matches!(err, ShipperError::Meta { .. }), "{err}");
    assert!(
        on_compio(bucket.list("")).unwrap().is_empty(),
        "nothing was sent"
    );
}

#[test]
fn readers_list_tenants_and_complete_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let memory = Arc::new(InMemory::new());
    let (_, bucket) = faulty(&memory);
    let shipper = Shipper::new(bucket.clone());
    for (tenant, n, min) in [
        ("t1", 1, 5000),
        ("t1", 2, 1000),
        ("t1", 3, 3000),
        ("t1", 4, 0),
        ("t2", 5, 0),
    ] {
        let block = make_block(&dir.path().join(tenant), &ulid(n), min, min + 100);
        on_compio(shipper.ship_block(tenant, &block)).unwrap();
    }
    on_compio(async {
        // A partial upload (no meta.json) and two deletion-marked blocks.
        let partial = ulid(9);
        bucket
            .put(&format!("t1/{partial}/index"), Bytes::from_static(b"i"))
            .await
            .unwrap();
        let mark = Bytes::from_static(br#"{"id":"x","deletion_time":1,"version":1}"#);
        bucket
            .put(&format!("t1/{}/deletion-mark.json", ulid(3)), mark.clone())
            .await
            .unwrap();
        bucket
            .put(&format!("t1/markers/{}-deletion-mark.json", ulid(4)), mark)
            .await
            .unwrap();

        assert_eq!(bucket.list_tenants().await.unwrap(), ["t1", "t2"]);
        let blocks = bucket.list_blocks("t1").await.unwrap();
        let got: Vec<(&str, i64, i64)> = blocks
            .iter()
            .map(|b| (b.ulid.as_str(), b.min_time, b.max_time))
            .collect();
        assert_eq!(
            got,
            [
                (ulid(2).as_str(), 1000, 1100),
                (ulid(1).as_str(), 5000, 5100)
            ]
        );
        let meta: serde_json::Value = serde_json::from_slice(&blocks[0].meta).unwrap();
        assert_eq!(meta["ulid"], ulid(2));
        assert_eq!(bucket.list_blocks("t2").await.unwrap().len(), 1);
        assert!(bucket.list_blocks("nobody").await.unwrap().is_empty());
    });
}
