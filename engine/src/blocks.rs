//! Reading a tenant's blocks — the ingester's local ones and the bucket's — for queries: one
//! [`BlockCatalog`] per shard thread (`Rc`-friendly, no locks, never shared between threads).
//!
//! Sources, both optional:
//! - the local TSDB directory, `<blocks_storage.tsdb.dir>/<tenant>/<ULID>/`, listed again on
//!   every call (one directory listing; blocks already known are not re-read);
//! - the bucket, `<tenant>/<ULID>/{meta.json,index,chunks/000001,...}` (Cortex's layout), listed
//!   with [`Bucket::list_blocks`] at most every [`BucketStoreConfig::sync_interval`].
//!
//! Invariants:
//! - a block counts when its directory is named by a ULID, its `meta.json` exists and parses, it
//!   has no deletion mark and holds raw (not downsampled) data;
//! - a ULID present locally and in the bucket is read once, from the local copy;
//! - a block is read when its `[minTime, maxTime)` overlaps the query's `[mint, maxt]`;
//! - an opened block's index is fetched whole once and kept (per shard) while the block is
//!   listed; concurrent queries opening the same block share one fetch;
//! - chunks are fetched by byte range: the chunks a query needs from one segment file come in as
//!   few `get_range` calls as their spread allows (see `blocks/fetch.rs`), never one call per
//!   chunk;
//! - samples of one series from several blocks (overlapping or replicated blocks) are merged
//!   and deduplicated by timestamp;
//! - no I/O blocks the calling thread: local files are read through an `object_store` local
//!   store on the bucket bridge, like the bucket's objects;
//! - no `RefCell` borrow is held across an `.await`, so concurrent queries on one shard are safe.
//!
//! Partitions: `partition: Some((k, n))` keeps the series that the push path would hand to shard
//! `k` of `n` ([`owner_shard`]), so that each shard can read only its share of the blocks.

mod discovery;
mod fetch;
mod open;
mod read;

pub use self::read::{SeriesChunks, XorChunk, decode_chunks};

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use hashbrown::HashMap;
use serde::Deserialize;
use strata_storage::block::{ChunkReadError, IndexError, Ulid};
use strata_storage::chunkenc::xor::ChunkError;
use strata_storage::labels::Labels;
use strata_storage::matcher::Matcher;
use xxhash_rust::xxh3::xxh3_64;

use crate::bucket::{Bucket, BucketError};
use crate::shard::SeriesSamples;
use crate::tenant::TenantId;

use self::discovery::{Source, TenantBlocks};

/// `blocks_storage.bucket_store:` — how a querier reads the bucket's blocks (Cortex's section;
/// only the keys strata reads).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BucketStoreConfig {
    /// How often a shard lists a tenant's blocks in the bucket again (0: on every query).
    /// Cortex's store-gateway default is 15m; queriers here read the bucket directly, so new
    /// blocks should show up sooner.
    #[serde(with = "humantime_serde")]
    pub sync_interval: Duration,
}

impl Default for BucketStoreConfig {
    fn default() -> Self {
        BucketStoreConfig {
            sync_interval: Duration::from_mins(1),
        }
    }
}

/// Where a block is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlockSource {
    /// The ingester's local TSDB directory.
    Local,
    /// The bucket.
    Bucket,
}

impl BlockSource {
    fn as_str(self) -> &'static str {
        match self {
            BlockSource::Local => "local",
            BlockSource::Bucket => "bucket",
        }
    }
}

impl std::fmt::Display for BlockSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A block the catalog would read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockInfo {
    pub ulid: Ulid,
    /// Oldest sample (ms), inclusive.
    pub min_time: i64,
    /// Newest sample plus one (ms): exclusive.
    pub max_time: i64,
    pub source: BlockSource,
}

impl BlockInfo {
    /// Whether the block may hold samples in `[mint, maxt]` (both inclusive).
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.min_time <= maxt && self.max_time > mint
    }
}

/// Why blocks could not be read. Every message names the tenant, and the block when one is at
/// fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlocksError {
    #[error("local blocks directory {}: {reason}", path.display())]
    LocalDir { path: PathBuf, reason: String },
    #[error("tenant {tenant}: listing blocks in the {source_kind}: {source}")]
    List {
        tenant: TenantId,
        source_kind: BlockSource,
        #[source]
        source: BucketError,
    },
    #[error("tenant {tenant}, {source_kind} block {block}: reading {file}: {source}")]
    Read {
        tenant: TenantId,
        block: Ulid,
        source_kind: BlockSource,
        file: String,
        #[source]
        source: BucketError,
    },
    #[error("tenant {tenant}, {source_kind} block {block}: index: {source}")]
    Index {
        tenant: TenantId,
        block: Ulid,
        source_kind: BlockSource,
        #[source]
        source: IndexError,
    },
    #[error("tenant {tenant}, {source_kind} block {block}: {source}")]
    Chunk {
        tenant: TenantId,
        block: Ulid,
        source_kind: BlockSource,
        #[source]
        source: ChunkReadError,
    },
    /// A chunk selected without decoding ([`BlockCatalog::select_chunks`]) failed to decode.
    #[error("tenant {tenant}: series {series}: a block chunk: {source}")]
    DecodeSeries {
        tenant: TenantId,
        series: String,
        #[source]
        source: ChunkError,
    },
    #[error("partition {k} of {n} does not exist")]
    Partition { k: usize, n: usize },
    /// An error met by another query opening the same block.
    #[error(transparent)]
    Shared(Arc<BlocksError>),
}

impl BlocksError {
    /// The block a read found missing (deleted since it was listed), if that is what happened.
    fn vanished(&self) -> Option<(BlockSource, Ulid)> {
        match self {
            BlocksError::Read {
                block,
                source_kind,
                source: BucketError::NotFound { .. },
                ..
            } => Some((*source_kind, *block)),
            BlocksError::Shared(e) => e.vanished(),
            _ => None,
        }
    }
}

/// What the catalog has done so far, for tests and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CatalogStats {
    /// Listings of a tenant's blocks, per source.
    pub local_syncs: u64,
    pub bucket_syncs: u64,
    /// Index files fetched (each block's once while it stays listed).
    pub index_fetches: u64,
    /// `get_range` calls for chunk bytes, and the bytes they returned.
    pub chunk_range_fetches: u64,
    pub chunk_bytes_fetched: u64,
    /// Blocks whose every chunk CRC was checked in the background (local files only), which
    /// queries then read without checking.
    pub blocks_verified: u64,
}

/// Counters shared by a catalog and its loading futures.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    local_syncs: Cell<u64>,
    bucket_syncs: Cell<u64>,
    index_fetches: Cell<u64>,
    chunk_range_fetches: Cell<u64>,
    chunk_bytes_fetched: Cell<u64>,
    blocks_verified: Cell<u64>,
}

fn bump(c: &Cell<u64>, n: u64) {
    c.set(c.get().saturating_add(n));
}

/// The shard that owns series `labels` of `tenant` among `shards`: the push path's choice,
/// `(xxh3_64(tenant) ^ labels.hash()) % shards` (see `instance::Instance::push`, which hashes the
/// label bytes as they arrive with the same [`strata_storage::labels::LabelHasher`]).
pub fn owner_shard(tenant: &TenantId, labels: &Labels, shards: usize) -> usize {
    shard_of(xxh3_64(tenant.as_str().as_bytes()), labels, shards)
}

fn shard_of(tenant_hash: u64, labels: &Labels, shards: usize) -> usize {
    ((tenant_hash ^ labels.hash()) % shards.max(1) as u64) as usize
}

/// The series filter of a partition: `Some((k, n))` keeps shard `k`'s share of `n`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Partition {
    tenant_hash: u64,
    k: usize,
    n: usize,
}

impl Partition {
    fn new(
        tenant: &TenantId,
        partition: Option<(usize, usize)>,
    ) -> Result<Option<Self>, BlocksError> {
        match partition {
            None => Ok(None),
            Some((k, n)) if n == 0 || k >= n => Err(BlocksError::Partition { k, n }),
            Some((k, n)) => Ok(Some(Partition {
                tenant_hash: xxh3_64(tenant.as_str().as_bytes()),
                k,
                n,
            })),
        }
    }

    pub(crate) fn keeps(self, labels: &Labels) -> bool {
        shard_of(self.tenant_hash, labels, self.n) == self.k
    }
}

/// One shard's view of every tenant's blocks; see the module docs.
pub struct BlockCatalog {
    local: Option<Source>,
    bucket: Option<Source>,
    tenants: RefCell<HashMap<TenantId, Rc<TenantBlocks>>>,
    counters: Rc<Counters>,
}

impl std::fmt::Debug for BlockCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCatalog")
            .field("local", &self.local.is_some())
            .field("bucket", &self.bucket.is_some())
            .field("tenants", &self.tenants.borrow().len())
            .finish_non_exhaustive()
    }
}

impl BlockCatalog {
    /// A catalog without sources: every answer is empty, at no cost.
    pub fn disabled() -> Self {
        BlockCatalog {
            local: None,
            bucket: None,
            tenants: RefCell::new(HashMap::new()),
            counters: Rc::default(),
        }
    }

    /// A catalog over the local TSDB directory `local_dir` (which must exist) and `bucket`,
    /// either optional. Does no I/O beyond resolving `local_dir`.
    pub fn new(
        local_dir: Option<&Path>,
        bucket: Option<Bucket>,
        cfg: &BucketStoreConfig,
    ) -> Result<Self, BlocksError> {
        let local = match local_dir {
            Some(dir) => Some(Source::local(dir)?),
            None => None,
        };
        Ok(BlockCatalog {
            local,
            bucket: bucket.map(|b| Source::bucket(b, cfg.sync_interval)),
            ..BlockCatalog::disabled()
        })
    }

    /// Whether the catalog has any source.
    pub fn is_enabled(&self) -> bool {
        self.local.is_some() || self.bucket.is_some()
    }

    pub fn stats(&self) -> CatalogStats {
        let c = &self.counters;
        CatalogStats {
            local_syncs: c.local_syncs.get(),
            bucket_syncs: c.bucket_syncs.get(),
            index_fetches: c.index_fetches.get(),
            chunk_range_fetches: c.chunk_range_fetches.get(),
            chunk_bytes_fetched: c.chunk_bytes_fetched.get(),
            blocks_verified: c.blocks_verified.get(),
        }
    }

    /// The tenant's blocks overlapping `[mint, maxt]`, local copies first for a ULID in both
    /// sources, sorted by `(min_time, ulid)`.
    pub async fn blocks(
        &self,
        tenant: &TenantId,
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<BlockInfo>, BlocksError> {
        let slots = self.slots(tenant, mint, maxt).await?;
        Ok(slots.iter().map(|s| s.id.info.clone()).collect())
    }

    /// Whether the tenant has a block overlapping `[mint, maxt]`.
    pub async fn has_blocks(
        &self,
        tenant: &TenantId,
        mint: i64,
        maxt: i64,
    ) -> Result<bool, BlocksError> {
        if !self.is_enabled() {
            return Ok(false);
        }
        Ok(!self.slots(tenant, mint, maxt).await?.is_empty())
    }

    /// [`BlockCatalog::select_chunks`] with every series decoded: its samples in `[mint, maxt]`,
    /// sorted by time, one per timestamp; series without samples in the range are left out.
    /// Holds every decoded sample at once: queries use `select_chunks` (this serves tests and
    /// tools).
    pub async fn select(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        partition: Option<(usize, usize)>,
    ) -> Result<Vec<SeriesSamples>, BlocksError> {
        let series = self
            .select_chunks(tenant, matchers, mint, maxt, partition)
            .await?;
        let mut scratch = Vec::new();
        let mut out = Vec::with_capacity(series.len());
        for s in series {
            let mut samples = Vec::new();
            decode_chunks(&s.chunks, mint, maxt, &mut scratch, &mut samples).map_err(|source| {
                BlocksError::DecodeSeries {
                    tenant: tenant.clone(),
                    series: s.labels.to_string(),
                    source,
                }
            })?;
            if !samples.is_empty() {
                out.push(SeriesSamples {
                    labels: s.labels,
                    samples,
                });
            }
        }
        Ok(out)
    }

    /// The series matching all `matchers` that have samples in `[mint, maxt]` in a block
    /// overlapping the range, merged by label set across blocks and sorted by labels, each with
    /// its XOR chunks overlapping the range: slices of the fetched bytes, decoded by the caller
    /// ([`decode_chunks`]) one series at a time, so a long range never holds its decoded samples
    /// all at once. `partition: Some((k, n))` keeps only the series shard `k` of `n` owns
    /// ([`owner_shard`]).
    pub async fn select_chunks(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        partition: Option<(usize, usize)>,
    ) -> Result<Vec<SeriesChunks>, BlocksError> {
        let partition = Partition::new(tenant, partition)?;
        self.retrying(tenant, mint, maxt, async |slots| {
            read::select_chunks(self, tenant, slots, matchers, mint, maxt, partition).await
        })
        .await
    }

    /// Label sets of the series matching any of `matcher_sets` (every series when empty) that
    /// have a chunk overlapping `[mint, maxt]`, sorted and unique.
    pub async fn series(
        &self,
        tenant: &TenantId,
        matcher_sets: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
        partition: Option<(usize, usize)>,
    ) -> Result<Vec<Labels>, BlocksError> {
        let partition = Partition::new(tenant, partition)?;
        self.retrying(tenant, mint, maxt, async |slots| {
            read::series(self, slots, matcher_sets, mint, maxt, partition).await
        })
        .await
    }

    /// Label names of the blocks overlapping `[mint, maxt]` (of their series matching any of
    /// `matcher_sets`, when there are matchers), sorted and unique.
    pub async fn label_names(
        &self,
        tenant: &TenantId,
        matcher_sets: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>, BlocksError> {
        self.retrying(tenant, mint, maxt, async |slots| {
            read::label_strings(self, slots, None, matcher_sets, mint, maxt).await
        })
        .await
    }

    /// Values of label `name` in the blocks overlapping `[mint, maxt]` (among their series
    /// matching any of `matcher_sets`, when there are matchers), sorted and unique.
    pub async fn label_values(
        &self,
        tenant: &TenantId,
        name: &str,
        matcher_sets: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>, BlocksError> {
        self.retrying(tenant, mint, maxt, async |slots| {
            read::label_strings(self, slots, Some(name), matcher_sets, mint, maxt).await
        })
        .await
    }

    /// Runs `op` over the tenant's blocks overlapping the range; when a block vanished while
    /// being read (retention removed the local copy, the compactor the bucket's), lists again
    /// and runs `op` once more (a local block's bucket copy is then read instead).
    async fn retrying<T>(
        &self,
        tenant: &TenantId,
        mint: i64,
        maxt: i64,
        op: impl AsyncFn(&[Rc<discovery::BlockSlot>]) -> Result<T, BlocksError>,
    ) -> Result<T, BlocksError>
    where
        T: Default,
    {
        if !self.is_enabled() {
            return Ok(T::default());
        }
        let slots = self.slots(tenant, mint, maxt).await?;
        let err = match op(&slots).await {
            Err(e) => e,
            ok => return ok,
        };
        let Some((source, ulid)) = err.vanished() else {
            return Err(err);
        };
        tracing::debug!(tenant = %tenant, block = %ulid, source = %source,
            "block vanished while read; listing again");
        self.tenant(tenant).forget(source, ulid);
        let slots = self.slots(tenant, mint, maxt).await?;
        op(&slots).await
    }

    fn tenant(&self, tenant: &TenantId) -> Rc<TenantBlocks> {
        self.tenants
            .borrow_mut()
            .entry(tenant.clone())
            .or_default()
            .clone()
    }

    /// The blocks to read for `[mint, maxt]`, after bringing the listings up to date.
    async fn slots(
        &self,
        tenant: &TenantId,
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<Rc<discovery::BlockSlot>>, BlocksError> {
        let state = self.tenant(tenant);
        if let Some(local) = &self.local {
            state.sync(local, tenant, &self.counters).await?;
        }
        if let Some(bucket) = &self.bucket {
            state.sync(bucket, tenant, &self.counters).await?;
        }
        Ok(state.overlapping(mint, maxt))
    }
}
