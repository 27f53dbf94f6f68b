//! Finding a tenant's blocks in each source and keeping the list current.
//!
//! A [`Listing`] is one source's view of one tenant: the usable blocks by ULID, each in a
//! [`BlockSlot`] that keeps the opened block (its index) for as long as the block stays listed,
//! and the blocks found unusable (logged once, not read again while they exist).
//!
//! - Local: every sync lists `<tenant>/` once; only directories not seen before are inspected
//!   (their listing, for `meta.json` and a deletion mark, then `meta.json`). A directory without
//!   `meta.json` is looked at again on the next sync: its writer may not have finished.
//! - Bucket: a sync is [`Bucket::list_blocks`] (which already leaves out partial and
//!   deletion-marked blocks), at most every `sync_interval`. While one task syncs, others use the
//!   previous listing; a failed sync keeps the previous listing (with a warning) when there is one.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};
use object_store::local::LocalFileSystem;
use strata_storage::block::{BlockMeta, ChunkReadError, IndexError, Ulid, meta::META_VERSION};

use super::open::OpenFuture;
use super::{BlockInfo, BlockSource, BlocksError, Counters, bump};
use crate::bucket::{Bucket, BucketError, DELETION_MARK_FILE, META_FILE, is_block_ulid};
use crate::tenant::TenantId;

/// How many new local blocks are inspected at once.
const INSPECT_CONCURRENCY: usize = 8;

/// One place blocks are read from.
pub(crate) struct Source {
    kind: BlockSource,
    bucket: Bucket,
    /// How old a listing may be before it is refreshed (zero: refreshed on every call).
    sync_interval: Duration,
}

impl Source {
    /// The local TSDB directory, read through an object store rooted there (its reads run on
    /// the bucket bridge's blocking pool, never on the shard's thread).
    pub(crate) fn local(dir: &Path) -> Result<Source, BlocksError> {
        let err = |reason: String| BlocksError::LocalDir {
            path: dir.to_path_buf(),
            reason,
        };
        let store = LocalFileSystem::new_with_prefix(dir).map_err(|e| err(e.to_string()))?;
        let bucket = Bucket::from_local(store).map_err(|e| err(e.to_string()))?;
        Ok(Source {
            kind: BlockSource::Local,
            bucket,
            sync_interval: Duration::ZERO,
        })
    }

    pub(crate) fn bucket(bucket: Bucket, sync_interval: Duration) -> Source {
        Source {
            kind: BlockSource::Bucket,
            bucket,
            sync_interval,
        }
    }
}

/// Names a block in errors: its tenant, ULID and source.
#[derive(Clone, Debug)]
pub(crate) struct BlockId {
    pub(crate) tenant: TenantId,
    pub(crate) info: BlockInfo,
}

impl BlockId {
    pub(crate) fn read_err(&self, file: &str, source: BucketError) -> BlocksError {
        BlocksError::Read {
            tenant: self.tenant.clone(),
            block: self.info.ulid,
            source_kind: self.info.source,
            file: file.to_string(),
            source,
        }
    }

    pub(crate) fn index_err(&self, source: IndexError) -> BlocksError {
        BlocksError::Index {
            tenant: self.tenant.clone(),
            block: self.info.ulid,
            source_kind: self.info.source,
            source,
        }
    }

    pub(crate) fn chunk_err(&self, source: ChunkReadError) -> BlocksError {
        BlocksError::Chunk {
            tenant: self.tenant.clone(),
            block: self.info.ulid,
            source_kind: self.info.source,
            source,
        }
    }
}

/// A usable block of one source, and its opened form once a query needed it.
pub(crate) struct BlockSlot {
    pub(crate) id: BlockId,
    /// The block's object path, `<tenant>/<directory name>`.
    pub(crate) dir: String,
    /// The store the block is read from.
    pub(crate) bucket: Bucket,
    /// The opening (shared by concurrent queries) or opened block.
    pub(super) open: RefCell<Option<OpenFuture>>,
}

/// One source's view of one tenant.
#[derive(Default)]
struct Listing {
    /// When the last sync succeeded.
    synced: Option<Instant>,
    /// Whether a sync is running.
    syncing: bool,
    blocks: BTreeMap<Ulid, Rc<BlockSlot>>,
    /// Blocks present but unusable (bad meta.json, deletion mark, downsampled, ...).
    skipped: HashSet<Ulid>,
}

/// Clears `syncing` when the sync ends, however it ends (a dropped query included).
struct SyncGuard<'a>(&'a RefCell<Listing>);

impl Drop for SyncGuard<'_> {
    fn drop(&mut self) {
        self.0.borrow_mut().syncing = false;
    }
}

/// What one source's sync found: every usable block's ULID, object path and time range.
type Found = Vec<(Ulid, String, BlockInfo)>;

/// A tenant's blocks in each source.
#[derive(Default)]
pub(crate) struct TenantBlocks {
    local: RefCell<Listing>,
    bucket: RefCell<Listing>,
}

impl TenantBlocks {
    fn listing(&self, kind: BlockSource) -> &RefCell<Listing> {
        match kind {
            BlockSource::Local => &self.local,
            BlockSource::Bucket => &self.bucket,
        }
    }

    /// Brings the listing of `source` up to date (see the module docs).
    pub(crate) async fn sync(
        &self,
        source: &Source,
        tenant: &TenantId,
        counters: &Counters,
    ) -> Result<(), BlocksError> {
        let cell = self.listing(source.kind);
        {
            let mut l = cell.borrow_mut();
            let fresh = l.synced.is_some_and(|t| {
                !source.sync_interval.is_zero() && t.elapsed() < source.sync_interval
            });
            if fresh || (l.syncing && l.synced.is_some()) {
                return Ok(());
            }
            l.syncing = true;
        }
        let _guard = SyncGuard(cell);
        let found = match source.kind {
            BlockSource::Local => {
                bump(&counters.local_syncs, 1);
                self.list_local(source, tenant).await
            }
            BlockSource::Bucket => {
                bump(&counters.bucket_syncs, 1);
                list_bucket(source, tenant).await
            }
        };
        let found = match found {
            Ok(f) => f,
            Err(e) => {
                if cell.borrow().synced.is_some() {
                    tracing::warn!(tenant = %tenant, source = %source.kind, error = %e,
                        "cannot list blocks; using the previous listing");
                    return Ok(());
                }
                return Err(e);
            }
        };
        let mut l = cell.borrow_mut();
        let mut blocks = BTreeMap::new();
        for (ulid, dir, info) in found {
            let slot = match l.blocks.remove(&ulid) {
                Some(slot) => slot,
                None => Rc::new(BlockSlot {
                    id: BlockId {
                        tenant: tenant.clone(),
                        info,
                    },
                    dir,
                    bucket: source.bucket.clone(),
                    open: RefCell::new(None),
                }),
            };
            blocks.insert(ulid, slot);
        }
        l.blocks = blocks;
        l.synced = Some(Instant::now());
        Ok(())
    }

    /// Lists `<tenant>/` in the local directory and inspects the block directories not seen
    /// before; returns every usable block.
    async fn list_local(&self, source: &Source, tenant: &TenantId) -> Result<Found, BlocksError> {
        let list_err = |source_err| BlocksError::List {
            tenant: tenant.clone(),
            source_kind: source.kind,
            source: source_err,
        };
        let names: Vec<(Ulid, String)> = match source.bucket.list_dir(tenant.as_str()).await {
            Ok(listing) => listing
                .prefixes
                .iter()
                .filter_map(|p| {
                    let name = p.rsplit('/').next().unwrap_or(p);
                    if !is_block_ulid(name) {
                        return None;
                    }
                    name.parse::<Ulid>().ok().map(|u| (u, name.to_string()))
                })
                .collect(),
            Err(BucketError::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(list_err(e)),
        };
        let present: HashSet<Ulid> = names.iter().map(|(u, _)| *u).collect();
        let (mut found, new) = {
            let mut l = self.local.borrow_mut();
            l.skipped.retain(|u| present.contains(u));
            let mut found = Vec::with_capacity(names.len());
            let mut new = Vec::new();
            for (ulid, name) in names {
                if let Some(slot) = l.blocks.get(&ulid) {
                    found.push((ulid, slot.dir.clone(), slot.id.info.clone()));
                } else if !l.skipped.contains(&ulid) {
                    new.push((ulid, name));
                }
            }
            (found, new)
        };
        let inspected: Vec<_> = stream::iter(new)
            .map(|(ulid, name)| async move {
                let dir = format!("{tenant}/{name}");
                let r = inspect_local(&source.bucket, &dir, ulid).await;
                (ulid, dir, r)
            })
            .buffer_unordered(INSPECT_CONCURRENCY)
            .collect()
            .await;
        for (ulid, dir, r) in inspected {
            match r {
                Ok(Some(meta)) => match usable(&meta, ulid) {
                    Ok(()) => found.push((ulid, dir, info(&meta, ulid, BlockSource::Local))),
                    Err(reason) => self.skip(BlockSource::Local, tenant, ulid, &reason),
                },
                // Not finished yet: look again next time.
                Ok(None) => {}
                Err(Inspect::Skip(reason)) => self.skip(BlockSource::Local, tenant, ulid, &reason),
                Err(Inspect::Failed(e)) => return Err(list_err(e)),
            }
        }
        Ok(found)
    }

    /// Records an unusable block, logging why once.
    fn skip(&self, kind: BlockSource, tenant: &TenantId, ulid: Ulid, reason: &str) {
        if self.listing(kind).borrow_mut().skipped.insert(ulid) {
            tracing::warn!(tenant = %tenant, block = %ulid, source = %kind, reason,
                "block skipped");
        }
    }

    /// Drops block `ulid` of `kind` (it vanished) and makes the next sync list that source again.
    pub(crate) fn forget(&self, kind: BlockSource, ulid: Ulid) {
        let mut l = self.listing(kind).borrow_mut();
        l.blocks.remove(&ulid);
        l.synced = None;
    }

    /// The blocks overlapping `[mint, maxt]`: local ones, then the bucket's that have no local
    /// copy; sorted by `(min_time, ulid)`.
    pub(crate) fn overlapping(&self, mint: i64, maxt: i64) -> Vec<Rc<BlockSlot>> {
        let local = self.local.borrow();
        let bucket = self.bucket.borrow();
        let mut out: Vec<Rc<BlockSlot>> = local
            .blocks
            .values()
            .filter(|s| s.id.info.overlaps(mint, maxt))
            .cloned()
            .collect();
        out.extend(
            bucket
                .blocks
                .iter()
                .filter(|(u, s)| s.id.info.overlaps(mint, maxt) && !local.blocks.contains_key(u))
                .map(|(_, s)| s.clone()),
        );
        out.sort_by_key(|s| (s.id.info.min_time, s.id.info.ulid));
        out
    }
}

/// Why a local block directory was not taken.
enum Inspect {
    /// It is not usable as it stands (deletion mark, bad meta.json).
    Skip(String),
    /// Reading it failed.
    Failed(BucketError),
}

/// Reads a local block directory's meta.json; `None` while it has none.
async fn inspect_local(
    bucket: &Bucket,
    dir: &str,
    ulid: Ulid,
) -> Result<Option<BlockMeta>, Inspect> {
    let listing = match bucket.list_dir(dir).await {
        Ok(l) => l,
        Err(BucketError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(Inspect::Failed(e)),
    };
    let has = |name: &str| {
        listing
            .objects
            .iter()
            .any(|o| o.path.rsplit('/').next() == Some(name))
    };
    if has(DELETION_MARK_FILE) {
        return Err(Inspect::Skip("it is marked for deletion".into()));
    }
    if !has(META_FILE) {
        return Ok(None);
    }
    let bytes = match bucket.get(&format!("{dir}/{META_FILE}")).await {
        Ok(b) => b,
        Err(BucketError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(Inspect::Failed(e)),
    };
    let meta = BlockMeta::from_json(&bytes)
        .map_err(|e| Inspect::Skip(format!("unreadable {META_FILE}: {e}")))?;
    if meta.ulid != ulid {
        return Err(Inspect::Skip(format!(
            "its {META_FILE} names block {}",
            meta.ulid
        )));
    }
    Ok(Some(meta))
}

/// Lists the tenant's blocks in the bucket.
async fn list_bucket(source: &Source, tenant: &TenantId) -> Result<Found, BlocksError> {
    let summaries = source
        .bucket
        .list_blocks(tenant.as_str())
        .await
        .map_err(|e| BlocksError::List {
            tenant: tenant.clone(),
            source_kind: source.kind,
            source: e,
        })?;
    let mut found = Vec::with_capacity(summaries.len());
    for s in summaries {
        let Ok(ulid) = s.ulid.parse::<Ulid>() else {
            continue;
        };
        // list_blocks read the times; a meta.json it accepted but this crate cannot parse whole
        // is read with those times (nothing is known against the block).
        if let Ok(meta) = BlockMeta::from_json(&s.meta)
            && let Err(reason) = usable(&meta, ulid)
        {
            tracing::debug!(tenant = %tenant, block = %ulid, reason, "bucket block skipped");
            continue;
        }
        found.push((
            ulid,
            format!("{tenant}/{}", s.ulid),
            BlockInfo {
                ulid,
                min_time: s.min_time,
                max_time: s.max_time,
                source: BlockSource::Bucket,
            },
        ));
    }
    Ok(found)
}

/// Whether a block with this meta can be read as raw samples.
fn usable(meta: &BlockMeta, ulid: Ulid) -> Result<(), String> {
    if meta.ulid != ulid {
        return Err(format!("its {META_FILE} names block {}", meta.ulid));
    }
    if meta.version != META_VERSION {
        return Err(format!("{META_FILE} version {} is not 1", meta.version));
    }
    if let Some(t) = &meta.thanos
        && t.downsample.resolution != 0
    {
        return Err(format!(
            "it is downsampled (resolution {} ms)",
            t.downsample.resolution
        ));
    }
    if meta.compaction.deletable {
        return Err("its compaction marks it deletable".into());
    }
    Ok(())
}

fn info(meta: &BlockMeta, ulid: Ulid, source: BlockSource) -> BlockInfo {
    BlockInfo {
        ulid,
        min_time: meta.min_time,
        max_time: meta.max_time,
        source,
    }
}
