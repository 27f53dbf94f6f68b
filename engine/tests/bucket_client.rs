//! The bucket client on the filesystem and in-memory backends, awaited from compio executors
//! (a plain compio runtime and strata's own shard threads).

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::join_all;
use object_store::memory::InMemory;
use strata_engine::bucket::{
    Backend, Bucket, BucketConfig, BucketError, FilesystemConfig, testing,
};
use strata_engine::rt::{Driver, Runtime, RuntimeOptions};

fn on_compio<F: Future>(f: F) -> F::Output {
    compio::runtime::Runtime::new().unwrap().block_on(f)
}

fn filesystem_bucket(dir: &std::path::Path) -> Bucket {
    let cfg = BucketConfig {
        backend: Backend::Filesystem,
        filesystem: FilesystemConfig {
            dir: dir.join("bucket"),
        },
        ..BucketConfig::default()
    };
    Bucket::new(&cfg).unwrap()
}

#[test]
fn filesystem_backend_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = filesystem_bucket(dir.path()).with_part_size(1024);
    on_compio(testing::conformance(&bucket, "conformance", dir.path()));
    // The objects are plain files under the configured directory.
    on_compio(bucket.put(
        "t/01J00000000000000000000001/index",
        Bytes::from_static(b"x"),
    ))
    .unwrap();
    assert!(
        dir.path()
            .join("bucket/t/01J00000000000000000000001/index")
            .is_file()
    );
}

#[test]
fn filesystem_backend_maps_large_ranges_that_outlive_the_object() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = filesystem_bucket(dir.path());
    let len = 4 * strata_engine::bucket::MAP_MIN;
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    on_compio(async {
        bucket.put("t/x", Bytes::from(data.clone())).await.unwrap();
        let range = 5000..5000 + 2 * strata_engine::bucket::MAP_MIN;
        let slice = bucket.get_range("t/x", range.clone()).await.unwrap();
        let want = &data[range.start as usize..range.end as usize];
        assert_eq!(slice, want);
        // Replacing and then deleting the object leaves the slice already read intact.
        bucket
            .put("t/x", Bytes::from(vec![0u8; len as usize]))
            .await
            .unwrap();
        bucket.delete("t/x").await.unwrap();
        assert_eq!(slice, want);
        // A range past the end is an error naming the file; a missing object is NotFound.
        bucket.put("t/y", Bytes::from(data.clone())).await.unwrap();
        let past = bucket.get_range("t/y", 10..len + 1).await.unwrap_err();
        assert!(matches!(past, BucketError::Local { .. }), "{past}");
        assert!(past.to_string().contains("t/y"), "{past}");
        let missing = bucket.get_range("t/z", 0..len).await.unwrap_err();
        assert!(matches!(missing, BucketError::NotFound { .. }), "{missing}");
    });
}

#[test]
fn memory_backend_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = Bucket::from_store(Arc::new(InMemory::new()))
        .unwrap()
        .with_part_size(1024);
    on_compio(testing::conformance(&bucket, "conformance", dir.path()));
}

#[test]
fn concurrent_and_abandoned_calls() {
    let bucket = Bucket::from_store(Arc::new(InMemory::new())).unwrap();
    on_compio(async {
        // Many calls in flight from one task: the shard thread only awaits the answers.
        let puts = (0..64).map(|i| {
            let bucket = &bucket;
            async move {
                let path = format!("c/{i:02}");
                bucket.put(&path, Bytes::from(vec![i as u8; 100])).await
            }
        });
        for result in join_all(puts).await {
            result.unwrap();
        }
        let gets = (0..64).map(|i| {
            let bucket = &bucket;
            async move { (i, bucket.get(&format!("c/{i:02}")).await.unwrap()) }
        });
        for (i, data) in join_all(gets).await {
            assert_eq!(data, vec![i as u8; 100]);
        }
        // A call dropped before its answer leaves the bridge usable.
        drop(bucket.get("c/00"));
        let call = bucket.list("c");
        drop(call);
        assert_eq!(bucket.list("c").await.unwrap().len(), 64);
    });
}

#[test]
fn shard_threads_share_one_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = filesystem_bucket(dir.path());
    let opts = RuntimeOptions {
        shards: 2,
        driver: Driver::Polling,
        pin: false,
        queue_capacity: 4,
    };
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let for_shards = bucket.clone();
    let rt = Runtime::start::<(), _>(&opts, "127.0.0.1:0".parse().unwrap(), move |env| {
        let bucket = for_shards.clone();
        let done = done_tx.clone();
        Box::pin(async move {
            let shard = env.mesh.id();
            for i in 0..10 {
                let path = format!("shard-{shard}/{i}");
                bucket.put(&path, Bytes::from(path.clone())).await.unwrap();
                assert_eq!(bucket.get(&path).await.unwrap(), path.as_bytes());
            }
            done.send(shard).unwrap();
        })
    })
    .unwrap();
    let mut finished = [done_rx.recv().unwrap(), done_rx.recv().unwrap()];
    finished.sort_unstable();
    assert_eq!(finished, [0, 1]);
    rt.join();
    let listing = on_compio(bucket.list_dir("")).unwrap();
    assert_eq!(listing.prefixes, ["shard-0", "shard-1"]);
}
