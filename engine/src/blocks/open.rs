//! Opening a block: its index fetched whole and parsed once, and the sizes of its segment files
//! (one listing of `chunks/`), kept in the block's slot while the block stays listed.
//!
//! Concurrent queries that need the same unopened block await one shared load; a failed load is
//! forgotten, so the next query tries again.

use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::{LocalBoxFuture, Shared};
use strata_storage::block::IndexReader;

use super::discovery::{BlockId, BlockSlot};
use super::{BlocksError, Counters, bump};
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
    Ok(Rc::new(OpenBlock {
        index,
        segments: numbered.into_iter().map(|(_, s)| s).collect(),
    }))
}
