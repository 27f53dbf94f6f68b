//! A shard's part of cutting a block: reporting its heads' time ranges, handing over one range's
//! chunks of a tenant, and releasing them once the block is written.
//!
//! Releasing `[.., t)` drops the closed chunks before `t`, then the series with no sample at or
//! after `t` ([`strata_storage::head::Head::gc`]): the cut collected every chunk wholly in its
//! range, the open one included, and chunks never straddle a range (the heads' chunk range is the
//! block range), so such a series' samples are all in blocks. The dropped series are given back
//! to the tenant's series limit, which so counts live series only.

use futures_channel::oneshot;
use strata_storage::labels::Labels;
use tracing::info;

use super::Shard;
use crate::tenant::TenantId;

/// One tenant's head on one shard, for the compaction's decision.
#[derive(Clone, Debug)]
pub struct HeadRange {
    pub tenant: TenantId,
    /// Oldest and newest sample still held (`i64::MAX`/`i64::MIN` when none).
    pub min_t: i64,
    pub max_t: i64,
    /// Samples before this are in blocks: refused as out of bounds, never cut again.
    pub min_valid_t: i64,
    /// How long since a push last appended to this head.
    pub idle: std::time::Duration,
}

/// One series' chunks of a block's range (XOR chunk data, oldest first).
#[derive(Debug)]
pub struct CutSeries {
    pub labels: Labels,
    pub chunks: Vec<(i64, i64, Vec<u8>)>,
}

/// Messages of a block cut.
pub enum CutMsg {
    Ranges(oneshot::Sender<Vec<HeadRange>>),
    /// The chunks of `tenant` wholly in `[mint, maxt)`.
    Collect {
        tenant: TenantId,
        mint: i64,
        maxt: i64,
        reply: oneshot::Sender<Vec<CutSeries>>,
    },
    /// `[.., before)` is in a block: release its chunks and the series left without samples,
    /// and refuse samples before it. Answers the number of chunks dropped.
    Truncate {
        tenant: TenantId,
        before: i64,
        reply: oneshot::Sender<usize>,
    },
    /// After truncations: replace the WAL segments that hold only samples in blocks by a
    /// checkpoint ([`super::wal::checkpoint`]).
    Checkpoint {
        cfg: std::sync::Arc<crate::config::TsdbConfig>,
        reply: oneshot::Sender<Result<super::wal::CheckpointStats, String>>,
    },
}

impl Shard {
    pub fn handle_cut(&mut self, msg: CutMsg) {
        match msg {
            CutMsg::Ranges(reply) => {
                let _ = reply.send(
                    self.tenants
                        .iter()
                        .map(|(id, th)| HeadRange {
                            tenant: id.clone(),
                            min_t: th.head.min_time(),
                            max_t: th.head.max_time(),
                            min_valid_t: th.min_valid_t,
                            idle: th.last_append.elapsed(),
                        })
                        .collect(),
                );
            }
            CutMsg::Collect {
                tenant,
                mint,
                maxt,
                reply,
            } => {
                let mut out = Vec::new();
                if let Some(th) = self.tenants.get(&tenant) {
                    let head = &th.head;
                    for r in head.series_refs() {
                        let chunks: Vec<(i64, i64, Vec<u8>)> = head
                            .chunks(r, mint, maxt - 1)
                            .filter(|c| c.min_t >= mint && c.max_t < maxt)
                            .map(|c| (c.min_t, c.max_t, c.data.to_vec()))
                            .collect();
                        if !chunks.is_empty() {
                            out.push(CutSeries {
                                labels: head.labels(r),
                                chunks,
                            });
                        }
                    }
                }
                let _ = reply.send(out);
            }
            CutMsg::Truncate {
                tenant,
                before,
                reply,
            } => {
                let id = self.id;
                let dropped = self.tenants.get_mut(&tenant).map_or(0, |th| {
                    th.min_valid_t = th.min_valid_t.max(before);
                    let chunks = th.head.truncate_before(before);
                    let started = std::time::Instant::now();
                    let series = th.head.gc(before);
                    if series > 0 {
                        th.shared.release_series(series as u64);
                        info!(
                            shard = id,
                            tenant = %tenant,
                            series,
                            live = th.head.num_series(),
                            ms = started.elapsed().as_millis() as u64,
                            "head series in blocks dropped"
                        );
                    }
                    chunks
                });
                if dropped > 0 {
                    // The head's chunks are a new generation: the old one's file can go.
                    self.wake_head_spill();
                }
                let _ = reply.send(dropped);
            }
            CutMsg::Checkpoint { .. } => {
                unreachable!("serve_inbox runs checkpoints as tasks of their own")
            }
        }
    }
}
