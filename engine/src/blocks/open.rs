//! Opening a block: its index fetched whole and parsed once, and the sizes of its segment files
//! (one listing of `chunks/`), kept in the block's slot while the block stays listed.
//!
//! Concurrent queries that need the same unopened block await one shared load; a failed load is
//! forgotten, so the next query tries again.

use std::cell::Cell;
use std::rc::{Rc, Weak};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::{LocalBoxFuture, Shared};
use strata_storage::block::IndexReader;
use strata_storage::block::chunks::SEGMENT_HEADER_LEN;

use super::discovery::{BlockId, BlockSlot};
use super::{BlocksError, Counters, bump, fetch};
use crate::bucket::{Bucket, BucketError};

/// What a load yields; the error is shared by every query that awaited it.
pub(crate) type OpenResult = Result<Rc<OpenBlock>, Arc<BlocksError>>;
/// A load in progress or done, awaited by any number of queries.
pub(crate) type OpenFuture = Shared<LocalBoxFuture<'static, OpenResult>>;

/// One chunk segment file of a block.
#[derive(Clone, Debug)]
pub(crate) struct Segment {
    /// Its object path.
    pub(crate) path: String,
    pub(crate) size: u64,
}

/// A block ready to be read.
pub(crate) struct OpenBlock {
    pub(crate) index: IndexReader<Bytes>,
    /// The segment files in order (`000001` first): a chunk ref's upper 32 bits index this.
    pub(crate) segments: Vec<Segment>,
    /// Whether every chunk record's CRC has been checked (see [`verify_chunks`]): queries then
    /// skip the check; until then, each chunk read is checked.
    pub(crate) verified: Cell<bool>,
}

impl BlockSlot {
    /// The opened block, loading it first if no query has.
    pub(crate) async fn opened(
        &self,
        counters: &Rc<Counters>,
    ) -> Result<Rc<OpenBlock>, BlocksError> {
        let load = {
            let mut open = self.open.borrow_mut();
            if let Some(f) = &*open {
                f.clone()
            } else {
                let f = load(self.load_args(), counters.clone())
                    .boxed_local()
                    .shared();
                *open = Some(f.clone());
                f
            }
        };
        match load.await {
            Ok(block) => Ok(block),
            Err(e) => {
                *self.open.borrow_mut() = None;
                Err(BlocksError::Shared(e))
            }
        }
    }

    fn load_args(&self) -> LoadArgs {
        LoadArgs {
            id: self.id.clone(),
            bucket: self.bucket.clone(),
            dir: self.dir.clone(),
        }
    }
}

/// What a load needs, owned (the load outlives any one query).
struct LoadArgs {
    id: BlockId,
    bucket: Bucket,
    dir: String,
}

async fn load(args: LoadArgs, counters: Rc<Counters>) -> OpenResult {
    let LoadArgs { id, bucket, dir } = args;
    let index_path = format!("{dir}/index");
    let chunks_dir = format!("{dir}/chunks");
    bump(&counters.index_fetches, 1);
    let (index, chunks) =
        futures_util::join!(bucket.get(&index_path), bucket.list_dir(&chunks_dir));
    let index = index.map_err(|e| Arc::new(id.read_err("index", e)))?;
    let index = IndexReader::new(index).map_err(|e| Arc::new(id.index_err(e)))?;
    let objects = match chunks {
        Ok(listing) => listing.objects,
        // A block without chunks may have no chunks directory.
        Err(BucketError::NotFound { .. }) => Vec::new(),
        Err(e) => return Err(Arc::new(id.read_err("chunks/", e))),
    };
    // Segment files are named by numbers; a chunk ref counts them in numeric order.
    let mut numbered: Vec<(u64, Segment)> = objects
        .into_iter()
        .filter_map(|o| {
            let n = o.path.rsplit('/').next()?.parse::<u64>().ok()?;
            Some((
                n,
                Segment {
                    path: o.path,
                    size: o.size,
                },
            ))
        })
        .collect();
    numbered.sort_unstable_by_key(|(n, _)| *n);
    let block = Rc::new(OpenBlock {
        index,
        segments: numbered.into_iter().map(|(_, s)| s).collect(),
        verified: Cell::new(false),
    });
    if bucket.maps_files() {
        let segments = block.segments.clone();
        compio::runtime::spawn(verify_chunks(
            bucket,
            segments,
            Rc::downgrade(&block),
            counters,
        ))
        .detach();
    }
    Ok(block)
}

/// Checks the CRC of every chunk record of a block on the local filesystem, once, in the
/// background, and marks the block verified when all are intact and the records fill every
/// segment exactly. Blocks are immutable, so queries can then skip the check that otherwise
/// costs each of them 3-6.5% of its CPU (the records are read through the files' mappings on the
/// bucket's blocking pool; nothing here runs on the shard's thread but the bookkeeping). On a
/// remote store this would download the whole block, so there every read keeps checking.
async fn verify_chunks(
    bucket: Bucket,
    segments: Vec<Segment>,
    block: Weak<OpenBlock>,
    counters: Rc<Counters>,
) {
    for seg in segments {
        let Ok(bytes) = bucket.get_range(&seg.path, 0..seg.size).await else {
            return;
        };
        let intact = bucket.run_blocking(move || records_intact(&bytes)).await;
        if block.strong_count() == 0 || !matches!(intact, Ok(true)) {
            return;
        }
    }
    if let Some(block) = block.upgrade() {
        block.verified.set(true);
        bump(&counters.blocks_verified, 1);
    }
}

/// Whether `segment` (a whole chunk segment file) is its header followed by records whose CRCs
/// all match, ending exactly at its end.
fn records_intact(segment: &[u8]) -> bool {
    let mut off = SEGMENT_HEADER_LEN;
    if segment.len() < off {
        return false;
    }
    while off < segment.len() {
        let rest = &segment[off..];
        let Some(total) = fetch::record_extent(rest)
            .and_then(|(total, _)| usize::try_from(total).ok())
            .filter(|&t| t <= rest.len())
        else {
            return false;
        };
        if fetch::parse_record(&rest[..total], off as u64, true, true).is_err() {
            return false;
        }
        off += total;
    }
    true
}
