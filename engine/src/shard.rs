//! A shard: the series it owns (one head per tenant) and the loop that serves its inbox.
//!
//! The shard's state lives on its thread only (`Rc<RefCell<Shard>>`); handlers are synchronous
//! and never hold a borrow across an `.await`, so the local push path and the inbox loop can share
//! it without locks. One file per request kind: `handle_push.rs`, `handle_select.rs`, `handle_eval.rs`.

mod handle_cut;
mod handle_eval;
mod handle_push;
mod handle_select;
pub mod head_spill;
pub mod wal;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use futures_channel::oneshot;
use hashbrown::HashMap;
use strata_storage::batch::WriteBatch;
use strata_storage::head::{Head, HeadOptions};
use strata_storage::labels::Labels;
use strata_storage::matcher::Matcher;

pub use handle_cut::{CutMsg, CutSeries, HeadRange};
pub use handle_eval::{EvalPart, HeadQueryable, eval_part};
pub use handle_push::PushResult;
pub use handle_select::{SelectKind, SelectResult, SeriesSamples};

use crate::limits::{TenantRegistry, TenantShared};
use crate::tenant::TenantId;
use crate::validation::{NameValidationScheme, TimeWindow};

/// A message between shards.
pub enum ShardMsg {
    /// Append the listed series of a shared batch.
    Push(PushPart),
    /// Answer a read over the shard's series of one tenant.
    Select(SelectRequest),
    /// Report the shard's statistics.
    Stats(oneshot::Sender<ShardStats>),
    /// Make everything the WAL logged durable and stop acknowledging pushes (shutdown).
    Shutdown(std::sync::mpsc::Sender<Result<(), String>>),
    /// A step of cutting a block from the heads.
    Cut(CutMsg),
    /// Evaluate a pushed-down aggregation over the shard's series.
    Eval(
        Box<EvalPart>,
        oneshot::Sender<Result<crate::promql::Partial, crate::instance::PartialError>>,
    ),
}

/// The series of one request that a shard owns.
pub struct PushPart {
    pub tenant: Arc<TenantShared>,
    pub batch: Arc<WriteBatch>,
    /// Indexes into `batch.series`.
    pub series: Vec<u32>,
    pub window: TimeWindow,
    pub reply: oneshot::Sender<PushResult>,
}

/// A read of one tenant's series.
pub struct SelectRequest {
    pub tenant: TenantId,
    /// Series matching any of these matcher sets (all series when empty).
    pub matchers: Arc<Vec<Vec<Matcher>>>,
    pub mint: i64,
    pub maxt: i64,
    pub kind: SelectKind,
    pub reply: oneshot::Sender<SelectResult>,
}

/// What a shard reports about itself.
#[derive(Clone, Debug, Default)]
pub struct ShardStats {
    pub tenants: usize,
    pub series: usize,
    pub memory_bytes: usize,
}

/// One tenant's series on this shard.
struct TenantHead {
    shared: Arc<TenantShared>,
    head: Head,
    /// The tenant's id in the shard's WAL.
    wal_id: u32,
    /// Samples before this are in blocks already: refused as out of bounds (and skipped at
    /// replay), so no range is cut twice.
    min_valid_t: i64,
    /// Samples before this are refused as out of bounds too, from the moment a cut collected
    /// the range ending here (a sample appended between the collection and the truncation
    /// would be in neither the block nor the head). Not persisted: a restart derives the bound
    /// from the blocks on disk. A failed cut leaves it raised; the range, due anyway (Prometheus
    /// refuses samples that old too), is cut again by the next compaction.
    collected_before: i64,
    /// When a push last appended a sample (for the head-compaction idle timeout).
    last_append: std::time::Instant,
}

/// The state one shard owns.
pub struct Shard {
    id: usize,
    tenants: HashMap<TenantId, TenantHead>,
    head_options: HeadOptions,
    scheme: NameValidationScheme,
    /// Reused label scratch for new series (canonical label order, empty values dropped).
    scratch: Vec<(Box<str>, Box<str>)>,
    /// The WAL, once opened (`wal::open`); `None` runs without durability (tests, tools).
    wal: Option<wal::ShardWal>,
    /// Per tenant, the end of its newest block on local disk at start-up (see
    /// `TenantHead::min_valid_t`).
    min_valid: HashMap<TenantId, i64>,
    /// The tenants' blocks, and the number of shards (pushed-down aggregations read this
    /// shard's partition of them).
    blocks: Option<(Rc<crate::blocks::BlockCatalog>, usize)>,
    /// Wakes the task that spills full head chunk pages to disk (`head_spill::start`); `None`
    /// keeps them in memory.
    spill: Option<head_spill::HeadSpill>,
}

/// A shard's state, shared between its tasks on its own thread.
pub type ShardRef = Rc<RefCell<Shard>>;

impl Shard {
    pub fn new(id: usize, head_options: HeadOptions, scheme: NameValidationScheme) -> Self {
        Shard {
            id,
            tenants: HashMap::new(),
            head_options,
            scheme,
            scratch: Vec::new(),
            wal: None,
            min_valid: HashMap::new(),
            blocks: None,
            spill: None,
        }
    }

    /// The blocks catalog this shard reads its partition of (one of `shards`) for pushed-down
    /// aggregations.
    pub fn set_blocks(&mut self, catalog: Rc<crate::blocks::BlockCatalog>, shards: usize) {
        self.blocks = Some((catalog, shards));
    }

    pub fn id(&self) -> usize {
        self.id
    }

    /// Sets, per tenant, where its blocks on disk end (before the WAL replay).
    pub fn set_min_valid(&mut self, min_valid: HashMap<TenantId, i64>) {
        self.min_valid = min_valid;
    }

    pub fn stats(&self) -> ShardStats {
        let mut s = ShardStats {
            tenants: self.tenants.len(),
            ..ShardStats::default()
        };
        for t in self.tenants.values() {
            s.series += t.head.num_series();
            s.memory_bytes += t.head.memory_bytes();
        }
        s
    }

    fn tenant_head(&mut self, shared: &Arc<TenantShared>) -> &mut TenantHead {
        if !self.tenants.contains_key(&shared.id) {
            let head = Head::new(self.head_options.clone());
            let wal_id = self
                .wal
                .as_mut()
                .map_or(0, |w| w.tenant(shared.id.as_str()));
            self.tenants.insert(
                shared.id.clone(),
                TenantHead {
                    shared: shared.clone(),
                    head,
                    wal_id,
                    min_valid_t: self.min_valid.get(&shared.id).copied().unwrap_or(i64::MIN),
                    collected_before: i64::MIN,
                    last_append: std::time::Instant::now(),
                },
            );
        }
        self.tenants.get_mut(&shared.id).expect("inserted above")
    }
}

/// Serves a shard's inbox until every sender is gone.
pub async fn serve_inbox(shard: ShardRef, inbox: async_channel::Receiver<ShardMsg>) {
    while let Ok(msg) = inbox.recv().await {
        let part = match msg {
            ShardMsg::Push(part) => part,
            ShardMsg::Select(req) => {
                let result = shard.borrow().handle_select(
                    &req.tenant,
                    &req.matchers,
                    req.mint,
                    req.maxt,
                    req.kind,
                );
                let _ = req.reply.send(result);
                continue;
            }
            ShardMsg::Stats(reply) => {
                let _ = reply.send(shard.borrow().stats());
                continue;
            }
            ShardMsg::Eval(req, reply) => {
                // May read blocks first: a task of its own.
                let shard = shard.clone();
                compio::runtime::spawn(async move {
                    let _ = reply.send(handle_eval::eval_part(&shard, &req).await);
                })
                .detach();
                continue;
            }
            ShardMsg::Cut(CutMsg::Checkpoint { cfg, reply }) => {
                // Writes files: a task of its own, so the inbox goes on meanwhile.
                let shard = shard.clone();
                compio::runtime::spawn(async move {
                    let _ = reply.send(wal::checkpoint(&shard, &cfg).await);
                })
                .detach();
                continue;
            }
            ShardMsg::Cut(msg) => {
                shard.borrow_mut().handle_cut(msg);
                continue;
            }
            ShardMsg::Shutdown(reply) => {
                let shard = shard.clone();
                compio::runtime::spawn(async move {
                    let res = wal::close(&shard).await.map_err(|e| e.to_string());
                    let _ = reply.send(res);
                })
                .detach();
                continue;
            }
        };
        let (result, wait) = {
            let mut s = shard.borrow_mut();
            let r = s.handle_push(&part.tenant, &part.batch, &part.series, part.window);
            let wait = s.durable_waiter(r.wal_seq);
            (r, wait)
        };
        drop(part.batch);
        match wait {
            None => {
                let _ = part.reply.send(result);
            }
            // Acknowledged once the fsync covering it is done; meanwhile the inbox goes on.
            Some(rx) => compio::runtime::spawn(async move {
                let _ = part.reply.send(wal::after_commit(result, rx.await));
            })
            .detach(),
        }
    }
}

/// Registry lookups cached per shard, so the registry's lock is taken once per tenant.
#[derive(Default)]
pub struct TenantCache {
    map: RefCell<HashMap<TenantId, Arc<TenantShared>>>,
}

impl TenantCache {
    pub fn get(&self, registry: &TenantRegistry, id: &TenantId) -> Arc<TenantShared> {
        if let Some(t) = self.map.borrow().get(id) {
            return t.clone();
        }
        let t = registry.get(id);
        self.map.borrow_mut().insert(id.clone(), t.clone());
        t
    }
}

/// Sorts and deduplicates label sets merged from several shards.
pub fn sort_dedup(mut v: Vec<Labels>) -> Vec<Labels> {
    v.sort();
    v.dedup();
    v
}
