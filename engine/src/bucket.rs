//! Object storage: the bucket client, block shipping and reading blocks from the bucket.
//!
//! A [`Bucket`] is a cheap-to-clone handle on one object store (S3, GCS, Azure, a local
//! directory, or memory) built from [`BucketConfig`]. The stores come from the `object_store`
//! crate, which needs tokio; tokio must never run the data path, so every call is handed to one
//! small tokio runtime on its own thread (see `bucket/bridge.rs`) and answered over a oneshot
//! channel. The async methods therefore work from any executor: a compio shard awaits them without
//! blocking its thread, and without needing a tokio context.
//!
//! Layout, as Cortex: `<tenant>/<block ULID>/{meta.json, index, chunks/000001, ...}`, markers in
//! `<tenant>/markers/`. Object paths are `/`-separated strings without a leading `/`; a prefix
//! matches whole segments (`a/b` lists `a/b/x`, never `a/bc`).
//!
//! Invariants:
//! - nothing here blocks the calling thread: object store calls and local file reads made on the
//!   bucket's behalf run on the bridge runtime or its blocking pool;
//! - a write is atomic (the object is either absent or complete), including multipart uploads;
//! - deleting a missing object succeeds (every backend behaves the same).

mod azure;
mod blocks;
mod bridge;
mod config;
pub mod shipper;
pub mod testing;

use std::fmt;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

pub use blocks::{BlockMetaSummary, DELETION_MARK_FILE, META_FILE, is_block_ulid};
pub use config::{
    AzureConfig, Backend, BucketConfig, BucketLookupType, FilesystemConfig, GcsConfig, HttpConfig,
    S3Config, Secret,
};

/// Files larger than this are uploaded in parts of this size (multipart upload) by
/// [`Bucket::put_file`]; S3 needs at least 5 MiB per part but the last.
pub const DEFAULT_PART_SIZE: usize = 16 << 20;

/// How many parts of one multipart upload are in flight at once.
const PARTS_IN_FLIGHT: usize = 2;

/// What went wrong with a bucket operation or its configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BucketError {
    /// A configuration value is wrong; `key` is its full YAML path.
    #[error("{key}: {reason}")]
    Config { key: String, reason: String },
    /// The object path is not valid (empty segments, `.` or `..`, a leading `/`).
    #[error("invalid object path {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },
    /// The object does not exist.
    #[error("object {path} not found")]
    NotFound { path: String },
    /// The object store failed (network, permissions, server error, ...).
    #[error("bucket {op} {path}: {source}")]
    Store {
        op: &'static str,
        path: String,
        #[source]
        source: Box<object_store::Error>,
    },
    /// Reading or writing a local file failed.
    #[error("{}: {source}", path.display())]
    Local {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The bridge runtime is not running, or a call ended without an answer.
    #[error("bucket runtime: {0}")]
    Runtime(String),
}

impl BucketError {
    /// Whether trying again may succeed: store failures other than a missing object or a
    /// refused request. Local, path and configuration errors are not transient.
    pub fn is_retryable(&self) -> bool {
        match self {
            BucketError::Store { source, .. } => !matches!(
                **source,
                object_store::Error::NotFound { .. }
                    | object_store::Error::InvalidPath { .. }
                    | object_store::Error::NotSupported { .. }
                    | object_store::Error::NotImplemented { .. }
                    | object_store::Error::PermissionDenied { .. }
                    | object_store::Error::Unauthenticated { .. }
                    | object_store::Error::UnknownConfigurationKey { .. }
            ),
            _ => false,
        }
    }

    fn store(op: &'static str, path: &ObjectPath, source: object_store::Error) -> BucketError {
        match source {
            object_store::Error::NotFound { .. } => BucketError::NotFound {
                path: path.to_string(),
            },
            source => BucketError::Store {
                op,
                path: path.to_string(),
                source: Box::new(source),
            },
        }
    }
}

pub type Result<T, E = BucketError> = std::result::Result<T, E>;

/// An object's path, size and modification time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub path: String,
    pub size: u64,
    pub last_modified: SystemTime,
}

impl From<object_store::ObjectMeta> for ObjectInfo {
    fn from(meta: object_store::ObjectMeta) -> Self {
        ObjectInfo {
            path: meta.location.to_string(),
            size: meta.size,
            last_modified: meta.last_modified.into(),
        }
    }
}

/// One level of a listing: the objects directly under a prefix and the sub-prefixes ("dirs").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirListing {
    /// Full paths of the sub-prefixes, without a trailing `/`, sorted.
    pub prefixes: Vec<String>,
    /// Objects directly under the prefix, sorted by path.
    pub objects: Vec<ObjectInfo>,
}

/// A handle on an object store; cheap to clone, usable from any thread and any executor.
#[derive(Clone)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    /// The same store when it is the filesystem backend: large range reads map the file instead
    /// of copying it (see [`Bucket::get_range`]).
    local: Option<Arc<LocalFileSystem>>,
    bridge: bridge::Bridge,
    part_size: usize,
}

impl fmt::Debug for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bucket({})", self.store)
    }
}

impl Bucket {
    /// Validates `cfg`, builds its store and starts the bridge runtime if it is not running yet.
    pub fn new(cfg: &BucketConfig) -> Result<Bucket> {
        if cfg.backend != Backend::Filesystem {
            return Bucket::from_store(cfg.build_store()?);
        }
        cfg.validate()?;
        Bucket::from_local(cfg.build_local()?)
    }

    /// A bucket over a local directory (the filesystem backend, or a TSDB directory's blocks).
    pub fn from_local(store: LocalFileSystem) -> Result<Bucket> {
        let local = Arc::new(store);
        Ok(Bucket {
            local: Some(local.clone()),
            ..Bucket::from_store(local)?
        })
    }

    /// A bucket over an existing store (for instance `object_store::memory::InMemory`, or a
    /// fault-injecting wrapper in tests).
    pub fn from_store(store: Arc<dyn ObjectStore>) -> Result<Bucket> {
        Ok(Bucket {
            store,
            local: None,
            bridge: bridge::Bridge::get()?,
            part_size: DEFAULT_PART_SIZE,
        })
    }

    /// Sets the size above which [`Bucket::put_file`] uploads in parts, and the part size.
    #[must_use]
    pub fn with_part_size(mut self, bytes: usize) -> Bucket {
        self.part_size = bytes.max(1);
        self
    }

    /// The size above which [`Bucket::put_file`] uploads in parts.
    pub fn part_size(&self) -> usize {
        self.part_size
    }

    /// Whether large range reads map local files (the filesystem backend), so that reading a
    /// whole object costs no copy and no request.
    pub(crate) fn maps_files(&self) -> bool {
        self.local.is_some()
    }

    /// Runs blocking `f` (CPU-heavy work on fetched bytes) on the bridge's blocking pool.
    pub(crate) async fn run_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        self.bridge.blocking(f).await
    }

    /// The underlying store. Calling it directly needs a tokio context; prefer the methods here.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Writes `data` to `path`, replacing any object there.
    pub async fn put(&self, path: &str, data: Bytes) -> Result<()> {
        let location = object_path(path)?;
        let store = self.store.clone();
        self.bridge
            .run(async move {
                store
                    .put(&location, PutPayload::from_bytes(data))
                    .await
                    .map(|_| ())
                    .map_err(|e| BucketError::store("put", &location, e))
            })
            .await?
    }

    /// Uploads the local file `local` to `path` and returns its size. Files up to the part size
    /// ([`DEFAULT_PART_SIZE`] unless [`Bucket::with_part_size`]) are read whole and written with
    /// one request; larger files are streamed as a multipart upload, part by part (two in
    /// flight), so memory stays bounded whatever the file size. The file is read on the bridge's
    /// blocking pool, never on the caller's thread.
    pub async fn put_file(&self, local: &Path, path: &str) -> Result<u64> {
        let location = object_path(path)?;
        let store = self.store.clone();
        let local = local.to_path_buf();
        let part_size = self.part_size;
        self.bridge
            .run(async move { upload_file(store, local, location, part_size).await })
            .await?
    }

    /// Reads the whole object.
    pub async fn get(&self, path: &str) -> Result<Bytes> {
        let location = object_path(path)?;
        let store = self.store.clone();
        self.bridge
            .run(async move {
                let result = store
                    .get(&location)
                    .await
                    .map_err(|e| BucketError::store("get", &location, e))?;
                result
                    .bytes()
                    .await
                    .map_err(|e| BucketError::store("get", &location, e))
            })
            .await?
    }

    /// Reads the bytes `range` of the object; the range must lie within it.
    ///
    /// On the filesystem backend a range of at least [`MAP_MIN`] bytes is not copied: the file
    /// is mapped, its pages populated on the bridge's blocking pool (so the caller never takes a
    /// page fault that waits for the disk), and the answer borrows the mapping, which lives
    /// until the last slice of it is dropped. Copying ranges measured 16% of the CPU of a
    /// `sum(rate(..))` over a day of blocks (the pages of each fresh buffer are faulted in and
    /// zeroed, then filled). Objects are never rewritten in place (a put writes a new file and
    /// renames it over the old one; a delete unlinks it), so a mapping always sees the
    /// complete object it was made from.
    pub async fn get_range(&self, path: &str, range: Range<u64>) -> Result<Bytes> {
        let location = object_path(path)?;
        if let Some(local) = &self.local
            && range.end.saturating_sub(range.start) >= MAP_MIN
        {
            let file = local
                .path_to_filesystem(&location)
                .map_err(|e| BucketError::store("get_range", &location, e))?;
            let mapped = self
                .bridge
                .blocking({
                    let file = file.clone();
                    move || map_range(&file, range)
                })
                .await?;
            return mapped.map_err(|e| local_error(e, &file, path));
        }
        let store = self.store.clone();
        self.bridge
            .run(async move {
                store
                    .get_range(&location, range)
                    .await
                    .map_err(|e| BucketError::store("get_range", &location, e))
            })
            .await?
    }

    /// The object's size and modification time; [`BucketError::NotFound`] if it does not exist.
    pub async fn head(&self, path: &str) -> Result<ObjectInfo> {
        let location = object_path(path)?;
        let store = self.store.clone();
        self.bridge
            .run(async move {
                store
                    .head(&location)
                    .await
                    .map(ObjectInfo::from)
                    .map_err(|e| BucketError::store("head", &location, e))
            })
            .await?
    }

    /// Whether the object exists.
    pub async fn exists(&self, path: &str) -> Result<bool> {
        match self.head(path).await {
            Ok(_) => Ok(true),
            Err(BucketError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every object under `prefix` (recursively; `""` lists the whole bucket), sorted by path.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let location = object_path(prefix)?;
        let store = self.store.clone();
        self.bridge
            .run(async move {
                let prefix = (!location.as_ref().is_empty()).then_some(&location);
                let mut objects: Vec<ObjectInfo> = store
                    .list(prefix)
                    .map_ok(ObjectInfo::from)
                    .try_collect()
                    .await
                    .map_err(|e| BucketError::store("list", &location, e))?;
                objects.sort_by(|a, b| a.path.cmp(&b.path));
                Ok(objects)
            })
            .await?
    }

    /// One level under `prefix`: its sub-prefixes (`<tenant>`, `<tenant>/<ULID>`, ...) and the
    /// objects directly in it.
    pub async fn list_dir(&self, prefix: &str) -> Result<DirListing> {
        let location = object_path(prefix)?;
        let store = self.store.clone();
        self.bridge
            .run(async move {
                let prefix = (!location.as_ref().is_empty()).then_some(&location);
                let result = store
                    .list_with_delimiter(prefix)
                    .await
                    .map_err(|e| BucketError::store("list", &location, e))?;
                let mut listing = DirListing {
                    prefixes: result
                        .common_prefixes
                        .iter()
                        .map(ToString::to_string)
                        .collect(),
                    objects: result.objects.into_iter().map(ObjectInfo::from).collect(),
                };
                listing.prefixes.sort();
                listing.objects.sort_by(|a, b| a.path.cmp(&b.path));
                Ok(listing)
            })
            .await?
    }

    /// Deletes the object; deleting a missing object succeeds.
    pub async fn delete(&self, path: &str) -> Result<()> {
        let location = object_path(path)?;
        let store = self.store.clone();
        self.bridge
            .run(async move {
                match store.delete(&location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(BucketError::store("delete", &location, e)),
                }
            })
            .await?
    }

    /// Runs blocking work (local file system calls) on the bridge's blocking pool and returns
    /// its result, so that the caller's thread never blocks.
    pub(crate) async fn blocking<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.bridge.blocking(f).await
    }

    /// Waits `d` on the bridge's timer (usable from any executor).
    pub(crate) async fn sleep(&self, d: Duration) -> Result<()> {
        // Built inside the task: a tokio timer needs the runtime's context when created.
        self.bridge
            .run(async move { tokio::time::sleep(d).await })
            .await
    }
}

/// Parses a bucket path: `/`-separated segments, no empty, `.` or `..` segment.
fn object_path(path: &str) -> Result<ObjectPath> {
    ObjectPath::parse(path).map_err(|e| BucketError::InvalidPath {
        path: path.to_string(),
        reason: e.to_string(),
    })
}

/// Ranges at least this long are mapped rather than copied by the filesystem backend; shorter
/// ones (meta.json, an index's table of contents) are cheaper to copy than to map and unmap.
pub const MAP_MIN: u64 = 64 << 10;

/// `range` of `file`, mapped read-only with its pages populated.
fn map_range(file: &Path, range: Range<u64>) -> io::Result<Bytes> {
    let f = std::fs::File::open(file)?;
    let size = f.metadata()?.len();
    if range.start > range.end || range.end > size {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("range {range:?} is not within the object's {size} bytes"),
        ));
    }
    let len = usize::try_from(range.end - range.start).map_err(io::Error::other)?;
    // SAFETY: the mapping is read-only and objects are never modified in place (see
    // `Bucket::get_range`): a put renames a complete new file over the path and a delete
    // unlinks it, neither of which changes the mapped pages. Only a process outside strata
    // truncating a file in the bucket could invalidate them.
    let map = unsafe {
        memmap2::MmapOptions::new()
            .offset(range.start)
            .len(len)
            .populate()
            .map(&f)?
    };
    Ok(Bytes::from_owner(map))
}

/// A local file error as the store reports it: a missing file is a missing object.
fn local_error(e: io::Error, file: &Path, path: &str) -> BucketError {
    if e.kind() == io::ErrorKind::NotFound {
        BucketError::NotFound {
            path: path.to_string(),
        }
    } else {
        BucketError::Local {
            path: file.to_path_buf(),
            source: e,
        }
    }
}

/// Uploads `local` to `location` (runs on the bridge runtime).
async fn upload_file(
    store: Arc<dyn ObjectStore>,
    local: PathBuf,
    location: ObjectPath,
    part_size: usize,
) -> Result<u64> {
    let local = Arc::new(local);
    let file = {
        let local = local.clone();
        on_blocking_pool(move || {
            let file = std::fs::File::open(&*local)?;
            let len = file.metadata()?.len();
            Ok((Arc::new(file), len))
        })
    };
    let (file, len) = file.await.map_err(|source| BucketError::Local {
        path: local.to_path_buf(),
        source,
    })?;
    if len <= part_size as u64 {
        let data = read_part(&local, file, 0, len as usize).await?;
        store
            .put(&location, PutPayload::from_bytes(data))
            .await
            .map_err(|e| BucketError::store("put", &location, e))?;
        return Ok(len);
    }
    let mut upload = store
        .put_multipart(&location)
        .await
        .map_err(|e| BucketError::store("put", &location, e))?;
    let mut in_flight = std::collections::VecDeque::with_capacity(PARTS_IN_FLIGHT);
    let mut offset = 0u64;
    let sent: Result<()> = async {
        while offset < len {
            let n = part_size.min((len - offset) as usize);
            let data = read_part(&local, file.clone(), offset, n).await?;
            offset += n as u64;
            in_flight.push_back(tokio::spawn(upload.put_part(PutPayload::from_bytes(data))));
            if in_flight.len() >= PARTS_IN_FLIGHT
                && let Some(part) = in_flight.pop_front()
            {
                join_part(part, &location).await?;
            }
        }
        while let Some(part) = in_flight.pop_front() {
            join_part(part, &location).await?;
        }
        Ok(())
    }
    .await;
    if let Err(e) = sent {
        for part in in_flight {
            part.abort();
        }
        let _ = upload.abort().await;
        return Err(e);
    }
    upload
        .complete()
        .await
        .map_err(|e| BucketError::store("put", &location, e))?;
    Ok(len)
}

async fn join_part(
    part: tokio::task::JoinHandle<object_store::Result<()>>,
    location: &ObjectPath,
) -> Result<()> {
    match part.await {
        Ok(result) => result.map_err(|e| BucketError::store("put", location, e)),
        Err(e) => Err(BucketError::Runtime(format!("upload part task: {e}"))),
    }
}

/// Reads `len` bytes at `offset` of `file` on the blocking pool.
async fn read_part(
    local: &Arc<PathBuf>,
    file: Arc<std::fs::File>,
    offset: u64,
    len: usize,
) -> Result<Bytes> {
    on_blocking_pool(move || {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, offset)?;
        Ok(Bytes::from(buf))
    })
    .await
    .map_err(|source| BucketError::Local {
        path: local.to_path_buf(),
        source,
    })
}

/// Runs `f` on the current tokio runtime's blocking pool (called from bridge tasks only).
async fn on_blocking_pool<T, F>(f: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)))
}
