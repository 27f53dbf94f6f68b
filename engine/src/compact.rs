//! Head compaction: cutting each tenant's head into Prometheus blocks, shipping them to the
//! bucket and deleting shipped blocks past retention.
//!
//! One task (on shard 0) decides, every `head_compaction_interval`, with Prometheus's rule: a
//! tenant's oldest block range `[a, a + R)` (aligned to the clock, `R` the first of
//! `block_ranges_period`) is cut once the tenant's newest sample is at least `a + 1.5 R`.
//! `/ingester/flush` cuts every range now. A cut collects the range's chunks of the tenant from
//! every shard (chunks never straddle a range: the heads cut chunks at the same aligned
//! windows; from the collection on, a shard refuses samples before the range's end as out of
//! bounds), writes one block of them on a thread of its own (sorted series, `std::fs`), then has
//! every shard release the range (its chunks, and the series left without samples). Then the
//! shipper uploads every block of the tenant not yet in the bucket, and every shard truncates
//! its WAL behind a checkpoint.
//!
//! A tenant's head that received no sample for `head_compaction_idle_timeout` is cut whole.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use futures_channel::oneshot;
use hashbrown::HashMap;
use strata_storage::block::{BlockMeta, BlockWriter, BlockWriterOptions, ThanosMeta, Ulid};
use strata_storage::head::ChunkMeta;
use tracing::{info, warn};

use crate::bucket::Bucket;
use crate::bucket::shipper::{Shipper, delete_expired};
use crate::config::TsdbConfig;
use crate::rt::{Mesh, run_blocking};
use crate::shard::{CutMsg, CutSeries, HeadRange, ShardMsg};
use crate::tenant::TenantId;

/// What cuts blocks; shared by the periodic task and `/ingester/flush` (one cut at a time).
#[derive(Clone)]
pub struct Compactor {
    mesh: Mesh<ShardMsg>,
    cfg: Arc<TsdbConfig>,
    bucket: Option<Bucket>,
    busy: Arc<AtomicBool>,
}

impl Compactor {
    pub fn new(
        mesh: Mesh<ShardMsg>,
        cfg: Arc<TsdbConfig>,
        bucket: Option<Bucket>,
        busy: Arc<AtomicBool>,
    ) -> Self {
        Compactor {
            mesh,
            cfg,
            bucket,
            busy,
        }
    }

    /// The periodic task: compact, ship, apply retention; forever.
    pub async fn run(self) {
        loop {
            compio::time::sleep(self.cfg.head_compaction_interval).await;
            if let Err(e) = self.compact(false).await {
                warn!(error = %e, "head compaction failed");
            }
        }
    }

    /// Cuts every range that is due (`all`: every range with samples, as `/ingester/flush`),
    /// then ships and applies retention. Returns the blocks written.
    /// Waits for a compaction already running (the periodic one, or another flush) first.
    pub async fn compact(&self, all: bool) -> Result<Vec<BlockMeta>, String> {
        while self.busy.swap(true, Ordering::AcqRel) {
            compio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let res = self.compact_locked(all).await;
        self.busy.store(false, Ordering::Release);
        res
    }

    async fn compact_locked(&self, all: bool) -> Result<Vec<BlockMeta>, String> {
        let range = self.cfg.block_range_ms();
        let mut written = Vec::new();
        let tenants = self.ranges().await?;
        let mut truncated = false;
        for (tenant, r) in tenants {
            // A head without appends for the idle timeout is cut whole, as Cortex does.
            let all = all || r.idle >= self.cfg.head_compaction_idle_timeout;
            let mut from = r.min_t.max(r.min_valid_t);
            while from <= r.max_t {
                let a = from.div_euclid(range) * range;
                let b = a.saturating_add(range);
                let due = r.max_t >= b.saturating_add(range / 2);
                if !(due || all) {
                    break;
                }
                if let Some(meta) = self.cut(&tenant, a, b).await? {
                    written.push(meta);
                }
                self.truncate(&tenant, b).await?;
                truncated = true;
                from = b;
            }
            self.ship_and_expire(&tenant).await;
        }
        if truncated {
            self.checkpoint().await?;
        }
        Ok(written)
    }

    /// Has every shard truncate its WAL behind a checkpoint.
    async fn checkpoint(&self) -> Result<(), String> {
        for r in self
            .each_shard(|reply| CutMsg::Checkpoint {
                cfg: self.cfg.clone(),
                reply,
            })
            .await?
        {
            r?;
        }
        Ok(())
    }

    /// Sends the message `msg` makes to every shard, then waits for every answer (in shard
    /// order). The shards work concurrently.
    async fn each_shard<T>(
        &self,
        msg: impl Fn(oneshot::Sender<T>) -> CutMsg,
    ) -> Result<Vec<T>, String> {
        let mut pending = Vec::with_capacity(self.mesh.shards());
        for s in 0..self.mesh.shards() {
            let (tx, rx) = oneshot::channel();
            self.mesh
                .send(s, ShardMsg::Cut(msg(tx)))
                .await
                .map_err(|e| e.to_string())?;
            pending.push(rx);
        }
        let mut out = Vec::with_capacity(pending.len());
        for rx in pending {
            out.push(rx.await.map_err(|_| "a shard dropped a request")?);
        }
        Ok(out)
    }

    /// Every tenant's head range over all shards.
    async fn ranges(&self) -> Result<Vec<(TenantId, HeadRange)>, String> {
        let mut by_tenant: HashMap<TenantId, HeadRange> = HashMap::new();
        for ranges in self.each_shard(CutMsg::Ranges).await? {
            for r in ranges {
                by_tenant
                    .entry(r.tenant.clone())
                    .and_modify(|m| {
                        m.min_t = m.min_t.min(r.min_t);
                        m.max_t = m.max_t.max(r.max_t);
                        m.min_valid_t = m.min_valid_t.max(r.min_valid_t);
                        m.idle = m.idle.min(r.idle);
                    })
                    .or_insert(r);
            }
        }
        let mut out: Vec<_> = by_tenant.into_iter().collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Writes the block of `tenant`'s samples in `[a, b)`; `None` when there are none.
    async fn cut(&self, tenant: &TenantId, a: i64, b: i64) -> Result<Option<BlockMeta>, String> {
        let series: Vec<CutSeries> = self
            .each_shard(|reply| CutMsg::Collect {
                tenant: tenant.clone(),
                mint: a,
                maxt: b,
                reply,
            })
            .await?
            .into_iter()
            .flatten()
            .collect();
        if series.is_empty() {
            return Ok(None);
        }
        let dir = tenant_dir(&self.cfg.dir, tenant);
        let name = tenant.to_string();
        let meta = run_blocking("block-writer", move || {
            write_block(&dir, &name, a, b, &series)
        })
        .await
        .map_err(|e| e.to_string())??;
        info!(
            tenant = %tenant,
            ulid = %meta.ulid,
            min_time = a,
            max_time = b,
            series = meta.stats.num_series,
            samples = meta.stats.num_samples,
            "block cut from the head"
        );
        Ok(Some(meta))
    }

    async fn truncate(&self, tenant: &TenantId, before: i64) -> Result<(), String> {
        self.each_shard(|reply| CutMsg::Truncate {
            tenant: tenant.clone(),
            before,
            reply,
        })
        .await?;
        Ok(())
    }

    /// Uploads the tenant's blocks not yet in the bucket, then deletes shipped blocks past
    /// retention. Failures are logged and retried at the next compaction.
    async fn ship_and_expire(&self, tenant: &TenantId) {
        let Some(bucket) = &self.bucket else { return };
        if self.cfg.ship_interval.is_zero() {
            return;
        }
        let dir = tenant_dir(&self.cfg.dir, tenant);
        match Shipper::new(bucket.clone())
            .ship_pending(tenant.as_str(), &dir)
            .await
        {
            Ok(shipped) if !shipped.is_empty() => {
                info!(tenant = %tenant, blocks = ?shipped, "blocks shipped");
            }
            Ok(_) => {}
            Err(e) => warn!(tenant = %tenant, error = %e, "shipping blocks failed"),
        }
        let retention = self.cfg.retention_period;
        let res = run_blocking("block-retention", move || {
            delete_expired(&dir, retention, SystemTime::now())
        })
        .await;
        match res {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => warn!(tenant = %tenant, error = %e, "deleting expired blocks failed"),
            Err(e) => warn!(tenant = %tenant, error = %e, "deleting expired blocks failed"),
        }
    }
}

/// Where a tenant's blocks live on local disk.
pub fn tenant_dir(tsdb_dir: &Path, tenant: &TenantId) -> PathBuf {
    tsdb_dir.join(tenant.as_str())
}

fn write_block(
    dir: &Path,
    tenant: &str,
    a: i64,
    b: i64,
    series: &[CutSeries],
) -> Result<BlockMeta, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let opts = BlockWriterOptions {
        thanos: Some(ThanosMeta::for_tenant(tenant, "ingester")),
        time_range: Some((a, b)),
        ..BlockWriterOptions::default()
    };
    let mut w = BlockWriter::new(dir, Ulid::generate(), opts).map_err(|e| e.to_string())?;
    for s in series {
        w.add_series(
            &s.labels,
            s.chunks.iter().map(|(min_t, max_t, data)| ChunkMeta {
                min_t: *min_t,
                max_t: *max_t,
                data,
            }),
        )
        .map_err(|e| e.to_string())?;
    }
    w.finish().map_err(|e| e.to_string())
}

/// Per tenant, the end of its newest block on local disk (`maxTime`, exclusive): samples
/// before it are not taken again (replay, pushes). Blocks being written (`.tmp`) are ignored.
pub fn blocks_end(tsdb_dir: &Path) -> HashMap<TenantId, i64> {
    let mut out = HashMap::new();
    let Ok(entries) = std::fs::read_dir(tsdb_dir) else {
        return out;
    };
    for e in entries.flatten() {
        let Some(name) = e.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let Ok(tenant) = TenantId::parse(&name) else {
            continue;
        };
        let Ok(blocks) = std::fs::read_dir(e.path()) else {
            continue;
        };
        for b in blocks.flatten() {
            let Ok(bytes) = std::fs::read(b.path().join("meta.json")) else {
                continue;
            };
            if let Ok(meta) = BlockMeta::from_json(&bytes) {
                let end = out.entry(tenant.clone()).or_insert(i64::MIN);
                *end = (*end).max(meta.max_time);
            }
        }
    }
    out
}
