//! What one shard's request handlers call: the push path's split of a request over the owning
//! shards, and reads fanned out to every shard and merged.
//!
//! A push is acknowledged only when every owning shard has appended its part: there is no queue
//! behind the acknowledgement. The request buffers are pooled per shard: the batch is shared
//! with the owners through an `Arc` and comes back to the pool once every part is answered.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use futures_channel::oneshot;
use strata_storage::batch::WriteBatch;
use strata_storage::labels::{LabelHasher, Labels};
use strata_storage::matcher::Matcher;
use xxhash_rust::xxh3::xxh3_64;

use crate::limits::{Limits, TenantRegistry};
use crate::metrics::{DiscardLabels, Metrics};
use crate::promql::{EvalError, Partial};
use crate::rt::Mesh;
use crate::shard::{
    EvalPart, PushPart, PushResult, SelectKind, SelectRequest, SelectResult, SeriesSamples,
    ShardMsg, ShardRef, ShardStats, TenantCache, sort_dedup,
};
use crate::tenant::TenantId;
use crate::validation::TimeWindow;

/// A push that was refused as a whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// Cortex's message for the ingestion rate limit (429).
    #[error(
        "ingestion rate limit ({limit}) exceeded while adding {samples} samples and {metadata} metadata"
    )]
    RateLimited {
        limit: f64,
        samples: u64,
        metadata: u64,
    },
    /// A shard stopped (5xx: our failure).
    #[error("internal error: {0}")]
    Internal(String),
}

/// Reads need every shard; one that stopped is our failure.
#[derive(Debug, thiserror::Error)]
#[error("internal error: {0}")]
pub struct ReadError(pub String);

/// Why a pushed-down aggregation failed: the query itself, or a shard.
#[derive(Debug, thiserror::Error)]
pub enum PartialError {
    #[error(transparent)]
    Eval(#[from] EvalError),
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// One shard's entry point to the whole process.
pub struct Instance {
    shard: ShardRef,
    mesh: Mesh<ShardMsg>,
    registry: Arc<TenantRegistry>,
    metrics: Arc<Metrics>,
    tenants: TenantCache,
    pool: RefCell<Vec<WriteBatch>>,
}

impl Instance {
    pub fn new(
        shard: ShardRef,
        mesh: Mesh<ShardMsg>,
        registry: Arc<TenantRegistry>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Instance {
            shard,
            mesh,
            registry,
            metrics,
            tenants: TenantCache::default(),
            pool: RefCell::new(Vec::new()),
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The limits of `tenant` (for paths outside the push, such as block uploads).
    pub fn limits(&self, tenant: &TenantId) -> Limits {
        self.registry.get(tenant).limits.clone()
    }

    pub fn shards(&self) -> usize {
        self.mesh.shards()
    }

    /// A cleared batch from the pool (or a new one).
    pub fn take_batch(&self) -> WriteBatch {
        let mut b = self.pool.borrow_mut().pop().unwrap_or_default();
        b.clear();
        b
    }

    /// Returns a batch to the pool.
    pub fn give_batch(&self, batch: WriteBatch) {
        let mut pool = self.pool.borrow_mut();
        if pool.len() < 16 {
            pool.push(batch);
        }
    }

    /// Appends a decoded request for `tenant`: checks the rate limit, hands every series to its
    /// owning shard, and waits until all of them have appended.
    pub async fn push(
        &self,
        tenant: &TenantId,
        mut batch: WriteBatch,
    ) -> Result<PushResult, PushError> {
        let shared = self.tenants.get(&self.registry, tenant);
        let samples = batch.num_samples() as u64;
        let exemplars: u64 = batch.series.iter().map(|s| u64::from(s.exemplars)).sum();
        let metadata = u64::from(batch.metadata);
        let cost = samples + exemplars + metadata;
        if cost > 0 && !shared.rate.allow(cost) {
            self.give_batch(batch);
            self.discard(tenant, "rate_limited", samples);
            return Err(PushError::RateLimited {
                limit: shared.limits.ingestion_rate,
                samples,
                metadata,
            });
        }
        canonicalize_hashes(&mut batch);
        let shards = self.mesh.shards();
        let me = self.mesh.id();
        let tenant_hash = xxh3_64(tenant.as_str().as_bytes());
        let mut parts: Vec<Vec<u32>> = vec![Vec::new(); shards];
        for (i, s) in batch.series.iter().enumerate() {
            let owner = ((tenant_hash ^ s.hash) % shards as u64) as usize;
            parts[owner].push(i as u32);
        }
        let window = TimeWindow::new(&shared.limits, now_ms());
        let batch = Arc::new(batch);
        let mut pending = Vec::new();
        for (owner, series) in parts.iter_mut().enumerate() {
            if owner == me || series.is_empty() {
                continue;
            }
            let (tx, rx) = oneshot::channel();
            let part = PushPart {
                tenant: shared.clone(),
                batch: batch.clone(),
                series: std::mem::take(series),
                window,
                reply: tx,
            };
            if let Err(e) = self.mesh.send(owner, ShardMsg::Push(part)).await {
                return Err(PushError::Internal(e.to_string()));
            }
            pending.push(rx);
        }
        let mut result = if parts[me].is_empty() {
            PushResult::default()
        } else {
            let (r, wait) = {
                let mut s = self.shard.borrow_mut();
                let r = s.handle_push(&shared, &batch, &parts[me], window);
                let wait = s.durable_waiter(r.wal_seq);
                (r, wait)
            };
            match wait {
                None => r,
                Some(rx) => crate::shard::wal::after_commit(r, rx.await),
            }
        };
        for rx in pending {
            match rx.await {
                Ok(r) => result.merge(r),
                Err(_) => return Err(PushError::Internal("a shard dropped a push".into())),
            }
        }
        if let Some(e) = result.wal_error.take() {
            // Not durable: the sender must retry (5xx). Appended samples stay in memory and a
            // retry finds them as duplicates, which Prometheus's senders accept.
            return Err(PushError::Internal(e));
        }
        shared.counters.received_samples.inc_by(result.appended);
        shared.counters.received_metadata.inc_by(metadata);
        shared.counters.received_exemplars.inc_by(exemplars);
        for (reason, n) in &result.discarded {
            self.discard(tenant, reason.as_str(), *n);
        }
        if let Ok(batch) = Arc::try_unwrap(batch) {
            self.give_batch(batch);
        }
        Ok(result)
    }

    fn discard(&self, tenant: &TenantId, reason: &str, n: u64) {
        if n > 0 {
            self.metrics
                .discarded_samples
                .get_or_create(&DiscardLabels {
                    user: tenant.to_string(),
                    reason: reason.into(),
                })
                .inc_by(n);
        }
    }

    /// Runs a select on every shard and returns the answers.
    async fn fan_out(
        &self,
        tenant: &TenantId,
        matchers: Vec<Vec<Matcher>>,
        mint: i64,
        maxt: i64,
        kind: &SelectKind,
    ) -> Result<Vec<SelectResult>, ReadError> {
        let matchers = Arc::new(matchers);
        let me = self.mesh.id();
        let mut pending = Vec::new();
        for owner in (0..self.mesh.shards()).filter(|&s| s != me) {
            let (tx, rx) = oneshot::channel();
            let req = SelectRequest {
                tenant: tenant.clone(),
                matchers: matchers.clone(),
                mint,
                maxt,
                kind: kind.clone(),
                reply: tx,
            };
            self.mesh
                .send(owner, ShardMsg::Select(req))
                .await
                .map_err(|e| ReadError(e.to_string()))?;
            pending.push(rx);
        }
        let mut out =
            vec![
                self.shard
                    .borrow()
                    .handle_select(tenant, &matchers, mint, maxt, kind.clone()),
            ];
        for rx in pending {
            out.push(
                rx.await
                    .map_err(|_| ReadError("a shard dropped a read".into()))?,
            );
        }
        Ok(out)
    }

    /// Label sets of the series matching any of `matchers`, sorted.
    pub async fn series(
        &self,
        tenant: &TenantId,
        matchers: Vec<Vec<Matcher>>,
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<Labels>, ReadError> {
        let mut all = Vec::new();
        for r in self
            .fan_out(tenant, matchers, mint, maxt, &SelectKind::Series)
            .await?
        {
            if let SelectResult::Series(v) = r {
                all.extend(v);
            }
        }
        Ok(sort_dedup(all))
    }

    /// Label names (`name` None) or the values of label `name`, sorted and unique.
    pub async fn label_strings(
        &self,
        tenant: &TenantId,
        name: Option<String>,
        matchers: Vec<Vec<Matcher>>,
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>, ReadError> {
        let kind = name.map_or(SelectKind::LabelNames, SelectKind::LabelValues);
        let mut all = Vec::new();
        for r in self.fan_out(tenant, matchers, mint, maxt, &kind).await? {
            if let SelectResult::Strings(v) = r {
                all.extend(v);
            }
        }
        all.sort_unstable();
        all.dedup();
        Ok(all)
    }

    /// Series matching all of `matchers` with their samples in `[mint, maxt]`, sorted by labels.
    pub async fn samples(
        &self,
        tenant: &TenantId,
        matchers: Vec<Matcher>,
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<SeriesSamples>, ReadError> {
        let mut all = Vec::new();
        for r in self
            .fan_out(tenant, vec![matchers], mint, maxt, &SelectKind::Samples)
            .await?
        {
            if let SelectResult::Samples(v) = r {
                all.extend(v);
            }
        }
        all.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(all)
    }

    /// A pushed-down aggregation evaluated by every shard over its own series, in parallel (this
    /// shard's part on this thread while the others run), and merged.
    pub async fn partial(&self, req: EvalPart) -> Result<Partial, PartialError> {
        let me = self.mesh.id();
        let mut pending = Vec::new();
        for owner in (0..self.mesh.shards()).filter(|&s| s != me) {
            let (tx, rx) = oneshot::channel();
            self.mesh
                .send(owner, ShardMsg::Eval(Box::new(req.clone()), tx))
                .await
                .map_err(|e| PartialError::Read(ReadError(e.to_string())))?;
            pending.push(rx);
        }
        let mut merged = crate::shard::eval_part(&self.shard, &req).await?;
        for rx in pending {
            let p = rx
                .await
                .map_err(|_| PartialError::Read(ReadError("a shard dropped a query".into())))??;
            merged.merge(p);
        }
        Ok(merged)
    }

    /// Every shard's statistics, summed; also refreshes the gauges.
    pub async fn stats(&self) -> Result<ShardStats, ReadError> {
        let me = self.mesh.id();
        let mut pending = Vec::new();
        for owner in (0..self.mesh.shards()).filter(|&s| s != me) {
            let (tx, rx) = oneshot::channel();
            self.mesh
                .send(owner, ShardMsg::Stats(tx))
                .await
                .map_err(|e| ReadError(e.to_string()))?;
            pending.push(rx);
        }
        let mut total = self.shard.borrow().stats();
        for rx in pending {
            let s = rx
                .await
                .map_err(|_| ReadError("a shard dropped a stats request".into()))?;
            total.series += s.series;
            total.memory_bytes += s.memory_bytes;
            total.tenants = total.tenants.max(s.tenants);
        }
        self.metrics.memory_series.set(total.series as i64);
        self.metrics.memory_users.set(total.tenants as i64);
        self.metrics
            .head_memory_bytes
            .set(total.memory_bytes as i64);
        self.metrics.shards.set(self.mesh.shards() as i64);
        Ok(total)
    }
}

/// Recomputes the hash of series that carry labels with empty values, leaving those labels out:
/// an empty value means the label is absent, so `{a=""}` and `{}` must be one series on one
/// shard. The common case (no empty value in the request) is a single scan of the label spans.
fn canonicalize_hashes(batch: &mut WriteBatch) {
    if !batch.labels.iter().any(|l| l.value_len == 0) {
        return;
    }
    for i in 0..batch.series.len() {
        let r = batch.series[i].labels.clone();
        if !batch.labels[r.start as usize..r.end as usize]
            .iter()
            .any(|l| l.value_len == 0)
        {
            continue;
        }
        let mut h = LabelHasher::new();
        for (n, v) in batch.labels_of(i).filter(|(_, v)| !v.is_empty()) {
            h.add(n, v);
        }
        batch.series[i].hash = h.finish();
    }
}

/// The wall clock in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
