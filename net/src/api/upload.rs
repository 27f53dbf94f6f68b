//! Block upload, after Mimir's API: a client sends a whole TSDB block (written by Prometheus,
//! promtool, `strata-loadgen backfill --blocks-dir`, ...) for its tenant; strata validates it and
//! stores it in the bucket, where queries find it once the bucket catalog syncs
//! (`blocks_storage.bucket_store.sync_interval`). Routes, under `/api/v1/upload/block/<ULID>/`
//! (and `/prometheus/api/v1/...`), tenant from `X-Scope-OrgID`:
//!
//! - `POST start`, body meta.json: checks it (see [`validate::check_meta`]) and (re)starts the
//!   upload;
//! - `POST files?path=index` or `?path=chunks/000001`, body the file's bytes;
//! - `POST finish`: validates the whole block ([`validate::validate_block`]), then uploads it to
//!   `<tenant>/<ULID>/` (chunks, index, meta.json last) with `thanos.labels` set to
//!   `{__org_id__: <tenant>}` and `thanos.source` `upload`; answers when the block is stored;
//! - `GET check`: `{"result": "uploading" | "validating" | "complete" | "failed", "error": ...}`.
//!
//! Staging: files go to `<blocks_storage.tsdb.dir>/upload/<tenant>/<ULID>/`, each first as
//! `<name>.part`, renamed when its body is complete. A failed validation leaves
//! `<ULID>.failed` (the reason, for `check`) beside it and removes the staged files; a successful
//! upload removes everything.
//!
//! Bodies: a chunk segment can be 512 MiB (more for a single huge chunk), far above the push
//! limit, so file bodies are never held whole: they are streamed to the staging file in buffers
//! of [`WRITE_BUFFER`] bytes, each written by a helper thread ([`run_blocking`]) while the shard
//! awaits it, and refused (413) past `max_file_bytes` (a `Content-Length` above it is refused
//! before any byte is read). Every file system call runs off the shard threads.
//!
//! Invariants:
//! - nothing reaches the bucket before the whole block is valid, and a block's meta.json is
//!   stored last, so readers never see a partial block;
//! - a ULID already in the bucket for the tenant is refused (409), at `start` and `finish`;
//! - one `finish` at a time per block: a second, and any `start` or `files` meanwhile, get 409.

mod validate;

use std::collections::HashSet;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use http::header::CONTENT_LENGTH;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use hyper::Request;
use hyper::body::{Bytes, Incoming};
use strata_engine::bucket::{Bucket, META_FILE};
use strata_engine::rt::run_blocking;
use strata_engine::tenant::TenantId;
use strata_storage::block::{ThanosMeta, Ulid};

pub use self::validate::{
    InvalidBlock, MAX_META_BYTES, ValidBlock, ValidateError, check_meta, validate_block,
};

use super::error::{ApiError, Shape};
use super::{App, HttpResponse, json};
use crate::http::body::{BodyError, read_limited};

/// The routes' common prefix.
pub const PREFIX: &str = "/api/v1/upload/block/";
/// The staging directory under `blocks_storage.tsdb.dir`.
pub const STAGING_DIR: &str = "upload";
/// meta.json's `thanos.source` of uploaded blocks.
pub const SOURCE: &str = "upload";
/// Default largest file of a block: the chunk format cannot address records past 4 GiB in a
/// segment, and indexes of blocks worth uploading stay far below it.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 4 << 30;
/// Bytes of a file body gathered before they are written to the staging file.
pub const WRITE_BUFFER: usize = 8 << 20;
/// Suffix of a staging file still being received.
const PART_SUFFIX: &str = ".part";
/// Suffix of the record of a failed validation, beside the staging directory.
const FAILED_SUFFIX: &str = ".failed";

/// The upload API's state, shared by every shard (cheap to clone).
#[derive(Clone, Debug)]
pub struct Uploads {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    bucket: Bucket,
    /// `<tsdb.dir>/upload`.
    dir: PathBuf,
    max_file_bytes: u64,
    /// Blocks being finished (`<tenant>/<ULID>`): seen by every shard, gone with the process.
    finishing: Mutex<HashSet<String>>,
}

impl Uploads {
    /// Uploads staged under `<tsdb_dir>/upload` and stored in `bucket`; files above
    /// `max_file_bytes` are refused.
    pub fn new(bucket: Bucket, tsdb_dir: &Path, max_file_bytes: u64) -> Self {
        Uploads {
            inner: Arc::new(Inner {
                bucket,
                dir: tsdb_dir.join(STAGING_DIR),
                max_file_bytes,
                // Uploads are rare control-plane requests, not the data path; the lock is held
                // for a set lookup only, never across an await.
                #[allow(clippy::disallowed_methods)]
                finishing: Mutex::new(HashSet::new()),
            }),
        }
    }

    /// Marks `key` as being finished; `None` if it already is.
    fn begin_finish(&self, key: &str) -> Option<FinishGuard> {
        let mut set = self
            .inner
            .finishing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        set.insert(key.to_owned()).then(|| FinishGuard {
            uploads: self.clone(),
            key: key.to_owned(),
        })
    }

    fn is_finishing(&self, key: &str) -> bool {
        let set = self
            .inner
            .finishing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        set.contains(key)
    }

    /// Whether the bucket already holds the block.
    async fn in_bucket(&self, b: &BlockPaths) -> Result<bool, UploadError> {
        self.inner
            .bucket
            .exists(&format!("{}/{META_FILE}", b.object_prefix))
            .await
            .map_err(|e| UploadError::Internal(format!("looking for the block in the bucket: {e}")))
    }
}

/// Removes its block from the set of blocks being finished when dropped.
struct FinishGuard {
    uploads: Uploads,
    key: String,
}

impl Drop for FinishGuard {
    fn drop(&mut self) {
        let mut set = self
            .uploads
            .inner
            .finishing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        set.remove(&self.key);
    }
}

/// Where one tenant's upload of one block lives.
#[derive(Clone, Debug)]
struct BlockPaths {
    ulid: Ulid,
    /// `<tenant>/<ULID>`: the key of [`Inner::finishing`] and the block's prefix in the bucket.
    object_prefix: String,
    /// The staged block directory.
    staged: PathBuf,
    /// The record of a failed validation.
    failed: PathBuf,
}

impl BlockPaths {
    fn new(uploads: &Uploads, tenant: &TenantId, ulid: Ulid) -> Self {
        let tenant_dir = uploads.inner.dir.join(tenant.as_str());
        BlockPaths {
            ulid,
            object_prefix: format!("{tenant}/{ulid}"),
            staged: tenant_dir.join(ulid.to_string()),
            failed: tenant_dir.join(format!("{ulid}{FAILED_SUFFIX}")),
        }
    }
}

/// Why an upload request failed; [`UploadError::into_api`] is the one place that maps it to HTTP.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UploadError {
    #[error("{0}")]
    BadRequest(String),
    #[error("invalid block: {0}")]
    Invalid(InvalidBlock),
    #[error("no upload of this block was started (POST .../start first)")]
    NotStarted,
    #[error("the block already exists in the bucket")]
    Exists,
    #[error("the block is being validated and stored; try again later")]
    Busy,
    #[error("{what} is larger than the limit of {limit} bytes")]
    TooLarge { what: String, limit: u64 },
    #[error(
        "the block's index and chunk files are larger than the tenant's limit of {limit} bytes \
         (compactor_block_upload_max_block_size_bytes; {staged} bytes staged before {what})"
    )]
    BlockTooLarge {
        what: String,
        staged: u64,
        limit: u64,
    },
    #[error("block upload is not enabled in this process")]
    Disabled,
    #[error("{0}")]
    Internal(String),
}

impl UploadError {
    /// The HTTP answer, naming the tenant and the block.
    fn into_api(self, tenant: &TenantId, ulid: Ulid) -> ApiError {
        let (status, error_type) = match &self {
            UploadError::BadRequest(_) | UploadError::Invalid(_) => {
                (StatusCode::BAD_REQUEST, "bad_data")
            }
            UploadError::NotStarted | UploadError::Disabled => (StatusCode::NOT_FOUND, "not_found"),
            UploadError::Exists | UploadError::Busy => (StatusCode::CONFLICT, "conflict"),
            UploadError::TooLarge { .. } | UploadError::BlockTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "bad_data")
            }
            UploadError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        ApiError {
            status,
            error_type,
            message: format!("tenant {tenant}, block {ulid}: {self}"),
            shape: Shape::Text,
        }
    }
}

fn internal(what: &str) -> impl FnOnce(io::Error) -> UploadError + '_ {
    move |e| UploadError::Internal(format!("{what}: {e}"))
}

/// Runs blocking file work on a helper thread; a lost thread is an internal error.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, UploadError> + Send + 'static,
) -> Result<T, UploadError> {
    run_blocking("block-upload", f)
        .await
        .map_err(internal("block upload helper thread"))?
}

/// Routes `/api/v1/upload/block/...` (`path` without the `/prometheus` prefix).
pub async fn handle(
    app: &App,
    req: Request<Incoming>,
    path: &str,
) -> Result<HttpResponse, ApiError> {
    let Some((ulid, action)) = path.strip_prefix(PREFIX).and_then(|r| r.split_once('/')) else {
        return Err(ApiError::not_found(path));
    };
    let want = match action {
        "start" | "files" | "finish" => Method::POST,
        "check" => Method::GET,
        _ => return Err(ApiError::not_found(path)),
    };
    if req.method() != want {
        return Err(ApiError::method_not_allowed(req.method()));
    }
    let tenant = app.tenant(&req)?;
    let ulid: Ulid = ulid
        .parse()
        .map_err(|e| ApiError::bad_request(format!("tenant {tenant}: invalid block ID: {e}")))?;
    let Some(uploads) = &app.uploads else {
        return Err(UploadError::Disabled.into_api(&tenant, ulid));
    };
    let b = BlockPaths::new(uploads, &tenant, ulid);
    let result = match action {
        "start" => start(uploads, &b, req).await,
        "files" => {
            let block_limit = app
                .instance
                .limits(&tenant)
                .compactor_block_upload_max_block_size_bytes;
            files(uploads, &b, req, block_limit).await
        }
        "finish" => finish(uploads, &b, &tenant).await,
        _ => check(uploads, &b).await,
    };
    result.map_err(|e| {
        if let UploadError::Internal(reason) = &e {
            tracing::warn!(tenant = %tenant, block = %ulid, error = %reason, "block upload failed");
        }
        e.into_api(&tenant, ulid)
    })
}

/// `{"result": ..., "error": ...}`.
fn state(status: StatusCode, result: &str, error: Option<&str>) -> HttpResponse {
    let mut v = serde_json::json!({ "result": result });
    if let Some(e) = error {
        v["error"] = e.into();
    }
    json(status, serde_json::to_vec(&v).unwrap_or_default())
}

fn content_length(req: &Request<Incoming>) -> Option<u64> {
    req.headers()
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// `POST start`: checks meta.json and stages it, replacing any earlier upload of the block.
async fn start(
    uploads: &Uploads,
    b: &BlockPaths,
    req: Request<Incoming>,
) -> Result<HttpResponse, UploadError> {
    let limit = MAX_META_BYTES;
    if content_length(&req).is_some_and(|n| n > limit as u64) {
        return Err(UploadError::TooLarge {
            what: "meta.json".into(),
            limit: limit as u64,
        });
    }
    let mut meta = Vec::new();
    read_limited(req.into_body(), &mut meta, limit)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge { .. } => UploadError::TooLarge {
                what: "meta.json".into(),
                limit: limit as u64,
            },
            BodyError::Read(e) => UploadError::BadRequest(format!("reading meta.json: {e}")),
        })?;
    check_meta(&meta, b.ulid).map_err(UploadError::Invalid)?;
    if uploads.in_bucket(b).await? {
        return Err(UploadError::Exists);
    }
    if uploads.is_finishing(&b.object_prefix) {
        return Err(UploadError::Busy);
    }
    let (staged, failed) = (b.staged.clone(), b.failed.clone());
    blocking(move || {
        remove_file(&failed)?;
        if staged.exists() {
            std::fs::remove_dir_all(&staged).map_err(internal("clearing an earlier upload"))?;
        }
        let chunks = staged.join(validate::CHUNKS_DIR);
        std::fs::create_dir_all(&chunks).map_err(internal("creating the staging directory"))?;
        std::fs::write(staged.join(META_FILE), &meta).map_err(internal("staging meta.json"))
    })
    .await?;
    Ok(state(StatusCode::OK, "uploading", None))
}

/// The staged file a `path` parameter names: `index` or `chunks/<number>`.
fn file_param(query: &str) -> Result<String, UploadError> {
    let path = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "path")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| UploadError::BadRequest("missing parameter path".into()))?;
    let ok = path == validate::INDEX_FILENAME
        || path.strip_prefix("chunks/").is_some_and(|n| {
            !n.is_empty() && n.len() <= 10 && n.bytes().all(|c| c.is_ascii_digit())
        });
    if !ok {
        return Err(UploadError::BadRequest(format!(
            "path {path:?}: only index and chunks/NNNNNN are uploaded as files (meta.json comes \
             with start)"
        )));
    }
    Ok(path)
}

/// `POST files?path=...`: streams the body to the staging file. `block_limit` (0: none) caps
/// the bytes of the block's files staged so far plus this one (a file sent again replaces its
/// earlier copy).
async fn files(
    uploads: &Uploads,
    b: &BlockPaths,
    req: Request<Incoming>,
    block_limit: u64,
) -> Result<HttpResponse, UploadError> {
    let rel = file_param(req.uri().query().unwrap_or(""))?;
    let file_limit = uploads.inner.max_file_bytes;
    if content_length(&req).is_some_and(|n| n > file_limit) {
        return Err(UploadError::TooLarge {
            what: rel.clone(),
            limit: file_limit,
        });
    }
    if uploads.is_finishing(&b.object_prefix) {
        return Err(UploadError::Busy);
    }
    let target = b.staged.join(&rel);
    let part = b.staged.join(format!("{rel}{PART_SUFFIX}"));
    let (staged, t) = (b.staged.clone(), target.clone());
    let others = blocking(move || {
        if !staged.join(META_FILE).is_file() {
            return Err(UploadError::NotStarted);
        }
        if block_limit == 0 {
            return Ok(0);
        }
        staged_block_bytes(&staged, &t).map_err(internal("listing the staged files"))
    })
    .await?;
    // The tighter of the two limits applies to this body.
    let by_block = block_limit > 0 && block_limit.saturating_sub(others) < file_limit;
    let limit = if by_block {
        block_limit.saturating_sub(others)
    } else {
        file_limit
    };
    let too_large = || {
        if by_block {
            UploadError::BlockTooLarge {
                what: rel.clone(),
                staged: others,
                limit: block_limit,
            }
        } else {
            UploadError::TooLarge {
                what: rel.clone(),
                limit,
            }
        }
    };
    if content_length(&req).is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let p = part.clone();
    let file =
        blocking(move || std::fs::File::create(&p).map_err(internal("creating the staging file")))
            .await?;
    let received = receive(req.into_body(), file, limit).await;
    let p = part.clone();
    match received {
        Ok(file) => {
            blocking(move || {
                file.sync_all()
                    .and_then(|()| std::fs::rename(&p, &target))
                    .map_err(internal("storing the staging file"))
            })
            .await?;
            Ok(state(StatusCode::OK, "uploading", None))
        }
        Err(e) => {
            // Best effort: a partial file must not stay (validation would refuse the block).
            let _ = blocking(move || remove_file(&p)).await;
            Err(match e {
                Receive::TooLarge => too_large(),
                Receive::Read(e) => {
                    UploadError::BadRequest(format!("reading the body of {rel}: {e}"))
                }
                Receive::Write(e) => e,
            })
        }
    }
}

/// Bytes of the block files (index, chunk segments) complete in `staged`, except `except`.
fn staged_block_bytes(staged: &Path, except: &Path) -> io::Result<u64> {
    let mut total = 0;
    for dir in [staged.to_path_buf(), staged.join("chunks")] {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let meta = entry.metadata()?;
            if meta.is_file() && path != except && name != META_FILE && !name.ends_with(PART_SUFFIX)
            {
                total += meta.len();
            }
        }
    }
    Ok(total)
}

/// Why a file body was not stored.
enum Receive {
    TooLarge,
    Read(hyper::Error),
    Write(UploadError),
}

/// Appends `body` to `file`, [`WRITE_BUFFER`] bytes at a time, each write on a helper thread.
async fn receive(
    mut body: Incoming,
    file: std::fs::File,
    limit: u64,
) -> Result<std::fs::File, Receive> {
    let mut file = file;
    let mut buf: Vec<u8> = Vec::with_capacity(WRITE_BUFFER);
    let mut total = 0u64;
    loop {
        let frame = body.frame().await;
        let done = match frame {
            None => true,
            Some(Err(e)) => return Err(Receive::Read(e)),
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    total += data.len() as u64;
                    if total > limit {
                        return Err(Receive::TooLarge);
                    }
                    buf.extend_from_slice(data);
                }
                false
            }
        };
        if buf.len() >= WRITE_BUFFER || (done && !buf.is_empty()) {
            let (f, mut b) = blocking(move || {
                let mut f = file;
                f.write_all(&buf)
                    .map(|()| (f, buf))
                    .map_err(internal("writing the staging file"))
            })
            .await
            .map_err(Receive::Write)?;
            b.clear();
            (file, buf) = (f, b);
        }
        if done {
            return Ok(file);
        }
    }
}

/// Removes a file; a missing one is fine.
fn remove_file(path: &Path) -> Result<(), UploadError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(internal("removing a staging file")(e)),
    }
}

/// `POST finish`: validates the staged block, then stores it in the bucket.
async fn finish(
    uploads: &Uploads,
    b: &BlockPaths,
    tenant: &TenantId,
) -> Result<HttpResponse, UploadError> {
    let Some(_guard) = uploads.begin_finish(&b.object_prefix) else {
        return Err(UploadError::Busy);
    };
    let staged = b.staged.clone();
    let started = blocking(move || Ok(staged.join(META_FILE).is_file())).await?;
    if uploads.in_bucket(b).await? {
        let staged = b.staged.clone();
        // The staged copy is of no use any more.
        let _ =
            blocking(move || std::fs::remove_dir_all(&staged).map_err(internal("cleanup"))).await;
        return Err(UploadError::Exists);
    }
    if !started {
        return Err(UploadError::NotStarted);
    }

    let (staged, failed, ulid) = (b.staged.clone(), b.failed.clone(), b.ulid);
    let valid = blocking(move || match validate_block(&staged, ulid) {
        Ok(v) => Ok(Ok(v)),
        Err(ValidateError::Invalid(e)) => {
            // Keep the reason for `check`; the staged files are of no further use.
            std::fs::write(&failed, e.to_string()).map_err(internal("recording the failure"))?;
            std::fs::remove_dir_all(&staged).map_err(internal("removing the staged block"))?;
            Ok(Err(e))
        }
        Err(e @ ValidateError::Io { .. }) => Err(UploadError::Internal(e.to_string())),
    })
    .await?
    .map_err(UploadError::Invalid)?;
    tracing::info!(
        tenant = %tenant,
        block = %b.ulid,
        series = valid.series,
        chunks = valid.chunks,
        samples = valid.samples,
        "uploaded block is valid; storing it"
    );

    if let Err(e) = store(uploads, b, tenant, valid).await {
        let (failed, msg) = (b.failed.clone(), e.to_string());
        // The staged block stays: `finish` may be tried again.
        let _ = blocking(move || std::fs::write(&failed, msg).map_err(internal("recording"))).await;
        return Err(e);
    }
    let (staged, failed) = (b.staged.clone(), b.failed.clone());
    blocking(move || {
        remove_file(&failed)?;
        std::fs::remove_dir_all(&staged).map_err(internal("removing the staged block"))
    })
    .await?;
    tracing::info!(tenant = %tenant, block = %b.ulid, "uploaded block stored in the bucket");
    Ok(state(StatusCode::OK, "complete", None))
}

/// Uploads the validated block: its files, then meta.json as the tenant's.
async fn store(
    uploads: &Uploads,
    b: &BlockPaths,
    tenant: &TenantId,
    valid: ValidBlock,
) -> Result<(), UploadError> {
    let bucket = &uploads.inner.bucket;
    for rel in &valid.files {
        let dst = format!("{}/{rel}", b.object_prefix);
        bucket
            .put_file(&b.staged.join(rel), &dst)
            .await
            .map_err(|e| UploadError::Internal(format!("storing {rel} in the bucket: {e}")))?;
    }
    let mut meta = valid.meta;
    meta.thanos = Some(ThanosMeta::for_tenant(tenant.as_str(), SOURCE));
    let dst = format!("{}/{META_FILE}", b.object_prefix);
    bucket
        .put(&dst, Bytes::from(meta.to_json()))
        .await
        .map_err(|e| UploadError::Internal(format!("storing meta.json in the bucket: {e}")))
}

/// `GET check`: the upload's state.
async fn check(uploads: &Uploads, b: &BlockPaths) -> Result<HttpResponse, UploadError> {
    if uploads.is_finishing(&b.object_prefix) {
        return Ok(state(StatusCode::OK, "validating", None));
    }
    if uploads.in_bucket(b).await? {
        return Ok(state(StatusCode::OK, "complete", None));
    }
    let (staged, failed) = (b.staged.clone(), b.failed.clone());
    let found = blocking(move || {
        match std::fs::read_to_string(&failed) {
            Ok(reason) => return Ok(Some(Err(reason))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(internal("reading the failure record")(e)),
        }
        Ok(staged.join(META_FILE).is_file().then_some(Ok(())))
    })
    .await?;
    match found {
        Some(Ok(())) => Ok(state(StatusCode::OK, "uploading", None)),
        Some(Err(reason)) => Ok(state(StatusCode::OK, "failed", Some(&reason))),
        None => Err(UploadError::NotStarted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_index_and_numbered_segments_are_files() {
        assert_eq!(file_param("path=index").ok().as_deref(), Some("index"));
        assert_eq!(
            file_param("x=1&path=chunks%2F000001").ok().as_deref(),
            Some("chunks/000001")
        );
        assert_eq!(
            file_param("path=chunks/000002").ok().as_deref(),
            Some("chunks/000002")
        );
        for bad in [
            "",
            "path=meta.json",
            "path=tombstones",
            "path=chunks/",
            "path=chunks/../index",
            "path=chunks/1a",
            "path=../index",
            "path=/index",
        ] {
            assert!(
                matches!(file_param(bad), Err(UploadError::BadRequest(_))),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn errors_map_to_statuses_naming_tenant_and_block() {
        let tenant = TenantId::parse("team-a").expect("tenant");
        let ulid = Ulid::new(1_700_000_000_000, 7);
        let cases = [
            (UploadError::BadRequest("x".into()), 400),
            (
                UploadError::Invalid(InvalidBlock {
                    file: "index".into(),
                    reason: "bad".into(),
                }),
                400,
            ),
            (UploadError::NotStarted, 404),
            (UploadError::Exists, 409),
            (UploadError::Busy, 409),
            (
                UploadError::TooLarge {
                    what: "index".into(),
                    limit: 1,
                },
                413,
            ),
            (UploadError::Internal("disk".into()), 500),
        ];
        for (e, status) in cases {
            let api = e.into_api(&tenant, ulid);
            assert_eq!(api.status.as_u16(), status, "{}", api.message);
            assert!(
                api.message
                    .starts_with(&format!("tenant team-a, block {ulid}: "))
            );
        }
    }
}
