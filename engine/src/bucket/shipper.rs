//! Shipping a tenant's local blocks to the bucket, and removing shipped blocks past retention.
//!
//! A tenant's local directory holds its blocks, `<ULID>/{meta.json, index, chunks/...}`, and
//! `shipper.json`, the record of the blocks already uploaded, in Thanos's format:
//! `{"version": 1, "uploaded": ["<ULID>", ...]}`.
//!
//! Invariants:
//! - a block's files are uploaded before its `meta.json`, so a reader that finds `meta.json`
//!   finds a complete block (readers skip blocks without one, see [`Bucket::list_blocks`]);
//! - a block is recorded in `shipper.json` only after its `meta.json` is uploaded; the file is
//!   replaced atomically (write to a temporary file, fsync, rename, fsync the directory);
//! - a block is never uploaded twice: not if it is recorded, nor if its `meta.json` is already
//!   in the bucket (a lost or corrupt `shipper.json`), which is then recorded;
//! - directories that are not ULID-named (`<ULID>.tmp-for-creation`, ...) or lack `meta.json`
//!   are not blocks yet and are left alone;
//! - one shipper works on a tenant directory at a time (the read-modify-write of
//!   `shipper.json` is not guarded against concurrent shippers).
//!
//! Files are read, and `shipper.json` written, on the bucket bridge's blocking pool: a shard
//! that awaits [`Shipper::ship_block`] never blocks. [`pending_blocks`] and [`delete_expired`]
//! are plain blocking functions for callers off the shards (or through the same pool).

use std::future::Future;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize};

use super::blocks::MetaTimes;
use super::{Bucket, BucketError, META_FILE, is_block_ulid};

/// The record of uploaded blocks in a tenant's local directory.
pub const SHIPPER_FILE: &str = "shipper.json";
/// A block directory renamed with this suffix is being deleted.
const DELETION_SUFFIX: &str = ".tmp-for-deletion";
/// The version of `shipper.json` this module reads and writes.
const STATE_VERSION: u32 = 1;

/// What went wrong while shipping or cleaning up blocks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShipperError {
    #[error("{}: not a block directory: {reason}", dir.display())]
    NotABlock { dir: PathBuf, reason: String },
    #[error("invalid tenant {tenant:?}: {reason}")]
    InvalidTenant {
        tenant: String,
        reason: &'static str,
    },
    #[error("{}: {source}", path.display())]
    Local {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: {reason}", path.display())]
    State { path: PathBuf, reason: String },
    #[error("{}: invalid meta.json: {source}", path.display())]
    Meta {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("upload of {path} failed after {attempts} attempt(s): {source}")]
    Upload {
        path: String,
        attempts: u32,
        #[source]
        source: BucketError,
    },
    #[error(transparent)]
    Bucket(#[from] BucketError),
}

type Result<T, E = ShipperError> = std::result::Result<T, E>;

fn local_err(path: &Path) -> impl FnOnce(io::Error) -> ShipperError + '_ {
    move |source| ShipperError::Local {
        path: path.to_path_buf(),
        source,
    }
}

/// `shipper.json`: the blocks of this tenant directory already in the bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipperState {
    pub version: u32,
    /// ULIDs, sorted.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub uploaded: Vec<String>,
}

impl Default for ShipperState {
    fn default() -> Self {
        ShipperState {
            version: STATE_VERSION,
            uploaded: Vec::new(),
        }
    }
}

/// Go writes an empty list as `null`.
fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

impl ShipperState {
    /// Reads the tenant directory's `shipper.json`; empty if there is none. A corrupt file is
    /// logged and read as empty: blocks already in the bucket are then found there, not
    /// uploaded again.
    pub fn load(tenant_dir: &Path) -> Result<ShipperState> {
        let path = tenant_dir.join(SHIPPER_FILE);
        let data = match std::fs::read(&path) {
            Ok(data) => data,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(ShipperState::default()),
            Err(e) => return Err(local_err(&path)(e)),
        };
        match serde_json::from_slice::<ShipperState>(&data) {
            Ok(state) if state.version == STATE_VERSION => Ok(state),
            Ok(state) => Err(ShipperError::State {
                path,
                reason: format!("version {} is not supported", state.version),
            }),
            Err(e) => {
                tracing::warn!(
                    path = %path.display(),
                    error = %e,
                    "corrupt shipper state; starting from the bucket's"
                );
                Ok(ShipperState::default())
            }
        }
    }

    /// Replaces the tenant directory's `shipper.json` atomically and durably.
    pub fn save(&self, tenant_dir: &Path) -> Result<()> {
        let path = tenant_dir.join(SHIPPER_FILE);
        let tmp = tenant_dir.join(format!("{SHIPPER_FILE}.tmp"));
        let data = serde_json::to_vec_pretty(self).map_err(|e| ShipperError::State {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let mut file = std::fs::File::create(&tmp).map_err(local_err(&tmp))?;
        file.write_all(&data).map_err(local_err(&tmp))?;
        file.sync_all().map_err(local_err(&tmp))?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(local_err(&path))?;
        std::fs::File::open(tenant_dir)
            .and_then(|dir| dir.sync_all())
            .map_err(local_err(tenant_dir))
    }

    pub fn contains(&self, ulid: &str) -> bool {
        self.uploaded.iter().any(|u| u == ulid)
    }

    fn insert(&mut self, ulid: &str) {
        if !self.uploaded.iter().any(|u| u == ulid) {
            self.uploaded.push(ulid.to_string());
        }
        self.uploaded.sort();
    }
}

/// How a failed upload is retried: waits of `initial_backoff`, doubling up to `max_backoff`,
/// for at most `max_attempts` attempts in all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    /// 100 ms doubling to 10 s, 10 attempts: about 33 s of waiting before giving up.
    fn default() -> Self {
        RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            max_attempts: 10,
        }
    }
}

impl RetryPolicy {
    /// The wait after the `failures`-th failed attempt (1-based).
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.initial_backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff)
    }
}

/// What [`Shipper::ship_block`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShipOutcome {
    /// The block's files were uploaded (`files` including `meta.json`).
    Uploaded { files: usize, bytes: u64 },
    /// `shipper.json` already records the block; nothing was sent.
    AlreadyShipped,
    /// The block's `meta.json` was already in the bucket; it is now recorded, nothing was sent.
    FoundInBucket,
}

/// Uploads blocks of tenant directories to a bucket.
#[derive(Clone, Debug)]
pub struct Shipper {
    bucket: Bucket,
    retry: RetryPolicy,
}

/// A local block ready to upload.
struct LocalBlock {
    dir: PathBuf,
    tenant_dir: PathBuf,
    ulid: String,
    meta: Bytes,
    /// Paths relative to `dir`, `/`-separated, sorted, without `meta.json`.
    files: Vec<String>,
    state: ShipperState,
}

impl Shipper {
    pub fn new(bucket: Bucket) -> Shipper {
        Shipper {
            bucket,
            retry: RetryPolicy::default(),
        }
    }

    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Shipper {
        self.retry = retry;
        self
    }

    /// Uploads the block in `block_dir` (a ULID-named directory in the tenant's directory) to
    /// `<tenant>/<ULID>/`, `meta.json` last, and records it in the tenant directory's
    /// `shipper.json`. Each file is retried by the [`RetryPolicy`]. `meta.json` is uploaded with
    /// `thanos.labels.__org_id__` set to the tenant (and `thanos.source`, `thanos.downsample`
    /// defaulted) when the local file lacks them, as Cortex's ingesters do.
    pub async fn ship_block(&self, tenant: &str, block_dir: &Path) -> Result<ShipOutcome> {
        check_tenant(tenant)?;
        let dir = block_dir.to_path_buf();
        let block = self
            .bucket
            .blocking(move || LocalBlock::open(dir))
            .await??;
        if block.state.contains(&block.ulid) {
            return Ok(ShipOutcome::AlreadyShipped);
        }
        let prefix = format!("{tenant}/{}", block.ulid);
        let meta_path = format!("{prefix}/{META_FILE}");
        if self.bucket.exists(&meta_path).await? {
            self.record(&block).await?;
            tracing::info!(tenant, block = %block.ulid, "block already in the bucket; recorded");
            return Ok(ShipOutcome::FoundInBucket);
        }
        let mut bytes = 0;
        for rel in &block.files {
            let src = block.dir.join(rel);
            let dst = format!("{prefix}/{rel}");
            bytes += self
                .retrying(&dst, || self.bucket.put_file(&src, &dst))
                .await?;
        }
        let meta =
            with_tenant_labels(&block.meta, tenant).map_err(|source| ShipperError::Meta {
                path: block.dir.join(META_FILE),
                source,
            })?;
        bytes += meta.len() as u64;
        self.retrying(&meta_path, || self.bucket.put(&meta_path, meta.clone()))
            .await?;
        self.record(&block).await?;
        let files = block.files.len() + 1;
        tracing::info!(tenant, block = %block.ulid, files, bytes, "block shipped");
        Ok(ShipOutcome::Uploaded { files, bytes })
    }

    /// Ships every pending block of the tenant directory, oldest first, and returns the ULIDs
    /// that are now in the bucket (uploaded or found there). Stops at the first failure.
    pub async fn ship_pending(&self, tenant: &str, tenant_dir: &Path) -> Result<Vec<String>> {
        let dir = tenant_dir.to_path_buf();
        let pending = self.bucket.blocking(move || pending_blocks(&dir)).await??;
        let mut shipped = Vec::with_capacity(pending.len());
        for block_dir in pending {
            match self.ship_block(tenant, &block_dir).await? {
                ShipOutcome::AlreadyShipped => {}
                ShipOutcome::Uploaded { .. } | ShipOutcome::FoundInBucket => {
                    shipped.push(dir_name(&block_dir).to_string());
                }
            }
        }
        Ok(shipped)
    }

    /// Adds the block to its tenant directory's `shipper.json`.
    async fn record(&self, block: &LocalBlock) -> Result<()> {
        let tenant_dir = block.tenant_dir.clone();
        let ulid = block.ulid.clone();
        self.bucket
            .blocking(move || {
                let mut state = ShipperState::load(&tenant_dir)?;
                state.insert(&ulid);
                state.save(&tenant_dir)
            })
            .await?
    }

    /// Runs `op` until it succeeds, fails with a non-retryable error, or runs out of attempts.
    async fn retrying<T, F, Fut>(&self, path: &str, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, BucketError>>,
    {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() && attempts < self.retry.max_attempts => {
                    let wait = self.retry.backoff(attempts);
                    tracing::warn!(path, attempts, error = %e, ?wait, "upload failed; retrying");
                    self.bucket.sleep(wait).await?;
                }
                Err(source) => {
                    return Err(ShipperError::Upload {
                        path: path.to_string(),
                        attempts,
                        source,
                    });
                }
            }
        }
    }
}

/// Ships one block with the default [`RetryPolicy`]; see [`Shipper::ship_block`].
pub async fn ship_block(bucket: &Bucket, tenant: &str, block_dir: &Path) -> Result<ShipOutcome> {
    Shipper::new(bucket.clone())
        .ship_block(tenant, block_dir)
        .await
}

impl LocalBlock {
    /// Reads the block's `meta.json`, lists its files and the tenant's shipper state (blocking).
    fn open(dir: PathBuf) -> Result<LocalBlock> {
        let not_a_block = |reason: &str| ShipperError::NotABlock {
            dir: dir.clone(),
            reason: reason.to_string(),
        };
        let ulid = dir_name(&dir).to_string();
        if !is_block_ulid(&ulid) {
            return Err(not_a_block("its name is not a ULID"));
        }
        let tenant_dir = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let meta_path = dir.join(META_FILE);
        let meta = match std::fs::read(&meta_path) {
            Ok(meta) => Bytes::from(meta),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(not_a_block("it has no meta.json"));
            }
            Err(e) => return Err(local_err(&meta_path)(e)),
        };
        let times = MetaTimes::parse(&meta).map_err(|source| ShipperError::Meta {
            path: meta_path.clone(),
            source,
        })?;
        if times.ulid != ulid {
            return Err(not_a_block(&format!(
                "its meta.json names block {}",
                times.ulid
            )));
        }
        let mut files = Vec::new();
        list_files(&dir, "", &mut files)?;
        files.retain(|f| f != META_FILE);
        files.sort();
        let state = ShipperState::load(&tenant_dir)?;
        Ok(LocalBlock {
            dir,
            tenant_dir,
            ulid,
            meta,
            files,
            state,
        })
    }
}

/// Appends the files under `dir` (recursively) to `out`, as `/`-separated paths after `rel`.
fn list_files(dir: &Path, rel: &str, out: &mut Vec<String>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(local_err(dir))? {
        let entry = entry.map_err(local_err(dir))?;
        let path = entry.path();
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(ShipperError::NotABlock {
                dir: path,
                reason: "a file name is not UTF-8".into(),
            });
        };
        let rel = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        let kind = std::fs::metadata(&path).map_err(local_err(&path))?;
        if kind.is_dir() {
            list_files(&path, &rel, out)?;
        } else if kind.is_file() {
            out.push(rel);
        }
    }
    Ok(())
}

/// `meta.json` with `thanos.labels.__org_id__` set to the tenant, `thanos.source` and
/// `thanos.downsample.resolution` defaulted; the original bytes when the label is already set.
fn with_tenant_labels(meta: &Bytes, tenant: &str) -> serde_json::Result<Bytes> {
    use serde_json::{Map, Value, json};
    let mut doc: Value = serde_json::from_slice(meta)?;
    let Some(root) = doc.as_object_mut() else {
        return Ok(meta.clone());
    };
    let thanos = root
        .entry("thanos")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(thanos) = thanos.as_object_mut() else {
        return Ok(meta.clone());
    };
    let labels = thanos
        .entry("labels")
        .or_insert_with(|| Value::Object(Map::new()));
    match labels.as_object_mut() {
        Some(labels) if !labels.contains_key("__org_id__") => {
            labels.insert("__org_id__".into(), json!(tenant));
        }
        _ => return Ok(meta.clone()),
    }
    thanos
        .entry("downsample")
        .or_insert_with(|| json!({"resolution": 0}));
    thanos.entry("source").or_insert_with(|| json!("receive"));
    Ok(Bytes::from(serde_json::to_vec_pretty(&doc)?))
}

fn check_tenant(tenant: &str) -> Result<()> {
    let reason = if tenant.is_empty() {
        "empty"
    } else if tenant == "." || tenant == ".." {
        "not a directory name"
    } else if tenant.contains('/') {
        "contains '/'"
    } else {
        return Ok(());
    };
    Err(ShipperError::InvalidTenant {
        tenant: tenant.to_string(),
        reason,
    })
}

fn dir_name(dir: &Path) -> &str {
    dir.file_name().and_then(|n| n.to_str()).unwrap_or_default()
}

/// The block directories of `tenant_dir` not yet shipped: ULID-named (so no `.tmp` suffix),
/// holding a `meta.json`, not in `shipper.json`; oldest (lowest ULID) first. Blocking.
pub fn pending_blocks(tenant_dir: &Path) -> Result<Vec<PathBuf>> {
    let state = ShipperState::load(tenant_dir)?;
    let entries = match std::fs::read_dir(tenant_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(local_err(tenant_dir)(e)),
    };
    let mut pending = Vec::new();
    for entry in entries {
        let entry = entry.map_err(local_err(tenant_dir))?;
        let path = entry.path();
        let name = dir_name(&path);
        if is_block_ulid(name)
            && path.join(META_FILE).is_file()
            && !state.contains(name)
            && path.is_dir()
        {
            pending.push(path);
        }
    }
    pending.sort();
    Ok(pending)
}

/// Removes the shipped blocks of `tenant_dir` whose `maxTime` is before `now - retention`, and
/// returns their ULIDs. A block is first renamed `<ULID>.tmp-for-deletion` so that an
/// interrupted deletion never leaves a partial block behind; leftovers of such deletions are
/// removed too. Blocks not shipped yet are kept whatever their age. `shipper.json` then forgets
/// the blocks that no longer exist. Blocking.
pub fn delete_expired(
    tenant_dir: &Path,
    retention: Duration,
    now: SystemTime,
) -> Result<Vec<String>> {
    let cutoff = now
        .checked_sub(retention)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(i64::MIN, |d| d.as_millis() as i64);
    let mut state = ShipperState::load(tenant_dir)?;
    let entries = match std::fs::read_dir(tenant_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(local_err(tenant_dir)(e)),
    };
    let mut deleted = Vec::new();
    for entry in entries {
        let entry = entry.map_err(local_err(tenant_dir))?;
        let path = entry.path();
        let name = dir_name(&path).to_string();
        if !path.is_dir() {
            continue;
        }
        if name
            .strip_suffix(DELETION_SUFFIX)
            .is_some_and(is_block_ulid)
        {
            std::fs::remove_dir_all(&path).map_err(local_err(&path))?;
            continue;
        }
        if !is_block_ulid(&name) || !state.contains(&name) {
            continue;
        }
        let meta_path = path.join(META_FILE);
        let times = match std::fs::read(&meta_path) {
            Ok(meta) => match MetaTimes::parse(&meta) {
                Ok(times) => times,
                Err(e) => {
                    tracing::warn!(
                        path = %meta_path.display(),
                        error = %e,
                        "invalid meta.json; block kept"
                    );
                    continue;
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(local_err(&meta_path)(e)),
        };
        if times.max_time < cutoff {
            let doomed = tenant_dir.join(format!("{name}{DELETION_SUFFIX}"));
            std::fs::rename(&path, &doomed).map_err(local_err(&path))?;
            std::fs::remove_dir_all(&doomed).map_err(local_err(&doomed))?;
            deleted.push(name);
        }
    }
    let before = state.uploaded.len();
    state.uploaded.retain(|ulid| tenant_dir.join(ulid).is_dir());
    if state.uploaded.len() != before {
        state.save(tenant_dir)?;
    }
    deleted.sort();
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy::default();
        let waits: Vec<u128> = (1..=9).map(|n| p.backoff(n).as_millis()).collect();
        assert_eq!(
            waits,
            [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]
        );
        assert_eq!(p.backoff(u32::MAX), Duration::from_secs(10));
    }

    #[test]
    fn state_reads_thanos_format_and_nulls() {
        let s: ShipperState =
            serde_json::from_str(r#"{"version": 1, "uploaded": ["B", "A"]}"#).unwrap();
        assert!(s.contains("A") && s.contains("B") && !s.contains("C"));
        let s: ShipperState = serde_json::from_str(r#"{"version": 1, "uploaded": null}"#).unwrap();
        assert!(s.uploaded.is_empty());
    }

    #[test]
    fn tenant_label_is_added_once() {
        let meta = Bytes::from_static(br#"{"ulid":"X","minTime":0,"maxTime":1,"version":1}"#);
        let out = with_tenant_labels(&meta, "team-a").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["thanos"]["labels"]["__org_id__"], "team-a");
        assert_eq!(v["thanos"]["source"], "receive");
        assert_eq!(v["thanos"]["downsample"]["resolution"], 0);
        assert_eq!(v["minTime"], 0);
        let again = with_tenant_labels(&out, "team-b").unwrap();
        assert_eq!(again, out, "an existing label is kept, bytes untouched");
    }

    #[test]
    fn tenants_must_be_single_segments() {
        assert!(check_tenant("team-a").is_ok());
        for bad in ["", ".", "..", "a/b"] {
            assert!(check_tenant(bad).is_err(), "{bad:?}");
        }
    }
}
