//! Test support for the bucket: a fault-injecting store wrapper and the conformance suite that
//! every backend runs (filesystem, memory, S3 through moto, and any store added later).

use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use object_store::path::Path as ObjectPath;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};

use super::{Bucket, BucketError};

/// Wraps a store: fails the next `n` writes, or every write to paths with a given suffix, on
/// request, and logs the paths of writes, in order. A multipart upload counts as a write when it
/// starts.
#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    failing_puts: AtomicUsize,
    failing_suffix: RwLock<Option<String>>,
    failed: AtomicUsize,
    log_tx: async_channel::Sender<String>,
    log_rx: async_channel::Receiver<String>,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Arc<FaultyStore> {
        let (log_tx, log_rx) = async_channel::unbounded();
        Arc::new(FaultyStore {
            inner,
            failing_puts: AtomicUsize::new(0),
            failing_suffix: RwLock::new(None),
            failed: AtomicUsize::new(0),
            log_tx,
            log_rx,
        })
    }

    /// Makes the next `n` writes fail with a (retryable) generic store error.
    pub fn fail_next_puts(&self, n: usize) {
        self.failing_puts.store(n, Ordering::SeqCst);
    }

    /// Makes every write to a path ending with `suffix` fail (`None`: stop).
    pub fn fail_puts_ending_with(&self, suffix: Option<&str>) {
        let mut failing = self
            .failing_suffix
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *failing = suffix.map(str::to_string);
    }

    /// How many writes failed on purpose so far.
    pub fn failed_puts(&self) -> usize {
        self.failed.load(Ordering::SeqCst)
    }

    /// The paths written (successfully, or started for multipart) since the last call, in order.
    pub fn take_puts(&self) -> Vec<String> {
        std::iter::from_fn(|| self.log_rx.try_recv().ok()).collect()
    }

    fn inject(&self, location: &ObjectPath) -> object_store::Result<()> {
        let suffix_fails = self
            .failing_suffix
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_deref()
            .is_some_and(|suffix| location.as_ref().ends_with(suffix));
        let fail = suffix_fails
            || self
                .failing_puts
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        if fail {
            self.failed.fetch_add(1, Ordering::SeqCst);
            return Err(object_store::Error::Generic {
                store: "FaultyStore",
                source: format!("injected failure writing {location}").into(),
            });
        }
        Ok(())
    }

    fn log(&self, location: &ObjectPath) {
        let _ = self.log_tx.try_send(location.to_string());
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &ObjectPath,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inject(location)?;
        let result = self.inner.put_opts(location, payload, opts).await?;
        self.log(location);
        Ok(result)
    }

    async fn put_multipart_opts(
        &self,
        location: &ObjectPath,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inject(location)?;
        let upload = self.inner.put_multipart_opts(location, opts).await?;
        self.log(location);
        Ok(upload)
    }

    async fn get_opts(
        &self,
        location: &ObjectPath,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &ObjectPath,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<ObjectPath>>,
    ) -> BoxStream<'static, object_store::Result<ObjectPath>> {
        self.inner.delete_stream(locations)
    }

    fn list(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &ObjectPath,
        to: &ObjectPath,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &ObjectPath,
        to: &ObjectPath,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

/// The behaviour every backend must show, checked under `root` (which must be empty) with
/// local scratch files in `scratch`. `put_file` is exercised below and above the bucket's part
/// size (a multipart upload of 2.5 parts), so keep the part size small for quick tests (S3
/// needs at least 5 MiB).
pub async fn conformance(bucket: &Bucket, root: &str, scratch: &Path) {
    let p = |rel: &str| format!("{root}/{rel}");
    assert!(
        bucket.list(root).await.unwrap().is_empty(),
        "{root} must be empty"
    );

    // put, get, get_range, head, exists
    bucket
        .put(&p("a/b/one"), Bytes::from_static(b"hello world"))
        .await
        .unwrap();
    assert_eq!(bucket.get(&p("a/b/one")).await.unwrap(), "hello world");
    assert_eq!(
        bucket.get_range(&p("a/b/one"), 6..11).await.unwrap(),
        "world"
    );
    assert_eq!(bucket.head(&p("a/b/one")).await.unwrap().size, 11);
    assert!(bucket.exists(&p("a/b/one")).await.unwrap());
    assert!(!bucket.exists(&p("a/b/missing")).await.unwrap());
    assert!(matches!(
        bucket.get(&p("a/b/missing")).await,
        Err(BucketError::NotFound { .. })
    ));
    assert!(matches!(
        bucket.head(&p("missing")).await,
        Err(BucketError::NotFound { .. })
    ));

    // a range long enough to be mapped by the filesystem backend, at an unaligned offset
    let big: Vec<u8> = (0..3 * super::MAP_MIN + 100)
        .map(|i| (i % 253) as u8)
        .collect();
    bucket
        .put(&p("a/big"), Bytes::from(big.clone()))
        .await
        .unwrap();
    let (from, to) = (4097, 4097 + super::MAP_MIN + 5);
    assert_eq!(
        bucket.get_range(&p("a/big"), from..to).await.unwrap(),
        &big[from as usize..to as usize]
    );
    bucket.delete(&p("a/big")).await.unwrap();

    // a put replaces the object
    bucket
        .put(&p("a/b/one"), Bytes::from_static(b"hi"))
        .await
        .unwrap();
    assert_eq!(bucket.get(&p("a/b/one")).await.unwrap(), "hi");

    // listings match whole segments
    for rel in ["a/b/two", "a/bc", "a/c/three"] {
        bucket
            .put(&p(rel), Bytes::from(rel.to_string()))
            .await
            .unwrap();
    }
    let paths =
        |objects: Vec<super::ObjectInfo>| objects.into_iter().map(|o| o.path).collect::<Vec<_>>();
    assert_eq!(
        paths(bucket.list(&p("a")).await.unwrap()),
        [p("a/b/one"), p("a/b/two"), p("a/bc"), p("a/c/three")]
    );
    assert_eq!(
        paths(bucket.list(&p("a/b")).await.unwrap()),
        [p("a/b/one"), p("a/b/two")]
    );
    let dir = bucket.list_dir(&p("a")).await.unwrap();
    assert_eq!(dir.prefixes, [p("a/b"), p("a/c")]);
    assert_eq!(paths(dir.objects), [p("a/bc")]);
    let top = bucket.list_dir(root).await.unwrap();
    assert_eq!(top.prefixes, [p("a")]);

    // put_file: one request, then multipart
    let part = bucket.part_size();
    for (name, len) in [("small", part / 2 + 1), ("large", part * 5 / 2)] {
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let local = scratch.join(name);
        std::fs::write(&local, &data).unwrap();
        let size = bucket.put_file(&local, &p(name)).await.unwrap();
        assert_eq!(size, len as u64);
        assert_eq!(bucket.get(&p(name)).await.unwrap(), data.as_slice());
        let (from, to) = (part as u64 - 3, part as u64 + 5);
        if len as u64 >= to {
            assert_eq!(
                bucket.get_range(&p(name), from..to).await.unwrap(),
                &data[from as usize..to as usize]
            );
        }
    }
    let missing = bucket
        .put_file(&scratch.join("no-such-file"), &p("x"))
        .await
        .unwrap_err();
    assert!(matches!(missing, BucketError::Local { .. }), "{missing}");
    assert!(!missing.is_retryable());

    // invalid paths are refused before reaching the store
    assert!(matches!(
        bucket.put(&format!("{root}//x"), Bytes::new()).await,
        Err(BucketError::InvalidPath { .. })
    ));

    // delete, twice
    bucket.delete(&p("a/b/one")).await.unwrap();
    assert!(!bucket.exists(&p("a/b/one")).await.unwrap());
    bucket.delete(&p("a/b/one")).await.unwrap();
    for object in bucket.list(root).await.unwrap() {
        bucket.delete(&object.path).await.unwrap();
    }
    assert!(bucket.list(root).await.unwrap().is_empty());
    assert!(bucket.list_dir(root).await.unwrap().prefixes.is_empty());
}

/// Ships a small block (`team-a/<ULID>`, written under `scratch`) into `bucket` and reads it
/// back as a store-gateway would: uploaded once, found by listing, its meta.json parsed, a byte
/// range of its chunks file served. For the backend tests against real servers.
pub async fn ship_and_read_back(bucket: &Bucket, scratch: &Path) {
    use super::shipper::{ShipOutcome, Shipper};
    let ulid = "01J00000000000000000000042";
    let block = scratch.join("team-a").join(ulid);
    std::fs::create_dir_all(block.join("chunks")).unwrap();
    std::fs::write(
        block.join("meta.json"),
        format!(r#"{{"ulid":"{ulid}","minTime":1000,"maxTime":2000,"version":1}}"#),
    )
    .unwrap();
    std::fs::write(block.join("index"), b"index").unwrap();
    std::fs::write(block.join("chunks/000001"), vec![7u8; 4096]).unwrap();
    let shipper = Shipper::new(bucket.clone());
    let outcome = shipper.ship_block("team-a", &block).await.unwrap();
    assert!(
        matches!(outcome, ShipOutcome::Uploaded { files: 3, .. }),
        "{outcome:?}"
    );
    assert_eq!(
        shipper.ship_block("team-a", &block).await.unwrap(),
        ShipOutcome::AlreadyShipped
    );
    assert_eq!(bucket.list_tenants().await.unwrap(), ["team-a"]);
    let blocks = bucket.list_blocks("team-a").await.unwrap();
    assert_eq!(blocks.len(), 1);
    assert_eq!((blocks[0].min_time, blocks[0].max_time), (1000, 2000));
    let chunk = bucket
        .get_range(&format!("team-a/{ulid}/chunks/000001"), 100..108)
        .await
        .unwrap();
    assert_eq!(chunk, Bytes::from(vec![7u8; 8]));
}
