//! Reading the bucket's block layout: tenants, their blocks and each block's `meta.json`.
//!
//! A block counts as present when its `meta.json` exists (the shipper uploads it last, so a
//! block without one is a partial upload) and it carries no deletion mark, neither
//! `<tenant>/<ULID>/deletion-mark.json` nor Cortex's global
//! `<tenant>/markers/<ULID>-deletion-mark.json`.

use std::collections::HashSet;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};
use serde::Deserialize;

use super::{Bucket, BucketError, Result};

/// A block's metadata file, uploaded last.
pub const META_FILE: &str = "meta.json";
/// Marks a block for deletion (Thanos/Cortex).
pub const DELETION_MARK_FILE: &str = "deletion-mark.json";
/// The directory of a tenant's global markers.
const MARKERS_DIR: &str = "markers";
/// How many blocks' metadata are fetched at once.
const META_FETCH_CONCURRENCY: usize = 16;

/// What a reader needs to know of a block in the bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockMetaSummary {
    pub ulid: String,
    /// Milliseconds since the epoch, inclusive.
    pub min_time: i64,
    /// Milliseconds since the epoch, exclusive.
    pub max_time: i64,
    /// `meta.json` as stored.
    pub meta: Bytes,
}

/// The fields of `meta.json` this module reads; the rest is kept as bytes.
#[derive(Deserialize)]
pub(crate) struct MetaTimes {
    pub ulid: String,
    #[serde(rename = "minTime")]
    pub min_time: i64,
    #[serde(rename = "maxTime")]
    pub max_time: i64,
}

impl MetaTimes {
    pub(crate) fn parse(meta: &[u8]) -> serde_json::Result<MetaTimes> {
        serde_json::from_slice(meta)
    }
}

/// Whether `name` is a ULID as block directories are named: 26 characters of Crockford's
/// base32 (either case), the first at most `7`.
pub fn is_block_ulid(name: &str) -> bool {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    name.len() == 26
        && name.as_bytes()[0] <= b'7'
        && name
            .bytes()
            .all(|c| ALPHABET.contains(&c.to_ascii_uppercase()))
}

/// The last segment of a bucket path.
fn last_segment(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

impl Bucket {
    /// The tenants that have a directory in the bucket, sorted.
    pub async fn list_tenants(&self) -> Result<Vec<String>> {
        let top = self.list_dir("").await?;
        Ok(top
            .prefixes
            .iter()
            .map(|p| last_segment(p).to_string())
            .collect())
    }

    /// The tenant's complete, not deletion-marked blocks, sorted by `(min_time, ulid)`.
    /// A block whose `meta.json` cannot be parsed is skipped with a warning.
    pub async fn list_blocks(&self, tenant: &str) -> Result<Vec<BlockMetaSummary>> {
        let markers = format!("{tenant}/{MARKERS_DIR}");
        let (dirs, marks) =
            futures_util::try_join!(self.list_dir(tenant), self.list_dir(&markers))?;
        let marked: HashSet<&str> = marks
            .objects
            .iter()
            .filter_map(|o| last_segment(&o.path).strip_suffix("-deletion-mark.json"))
            .collect();
        let ulids: Vec<&str> = dirs
            .prefixes
            .iter()
            .map(|p| last_segment(p))
            .filter(|u| is_block_ulid(u) && !marked.contains(u))
            .collect();
        let mut blocks: Vec<BlockMetaSummary> = stream::iter(ulids)
            .map(|ulid| self.block_summary(tenant, ulid))
            .buffer_unordered(META_FETCH_CONCURRENCY)
            .try_filter_map(|b| async move { Ok(b) })
            .try_collect()
            .await?;
        blocks.sort_by(|a, b| (a.min_time, &a.ulid).cmp(&(b.min_time, &b.ulid)));
        Ok(blocks)
    }

    /// The block's summary, or `None` if it is partial, marked for deletion, or unreadable.
    async fn block_summary(&self, tenant: &str, ulid: &str) -> Result<Option<BlockMetaSummary>> {
        let dir = format!("{tenant}/{ulid}");
        let listing = self.list_dir(&dir).await?;
        let has = |name: &str| {
            listing
                .objects
                .iter()
                .any(|o| last_segment(&o.path) == name)
        };
        if !has(META_FILE) || has(DELETION_MARK_FILE) {
            return Ok(None);
        }
        let meta = match self.get(&format!("{dir}/{META_FILE}")).await {
            Ok(meta) => meta,
            // Deleted since the listing.
            Err(BucketError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        match MetaTimes::parse(&meta) {
            Ok(times) if times.ulid == ulid => Ok(Some(BlockMetaSummary {
                ulid: ulid.to_string(),
                min_time: times.min_time,
                max_time: times.max_time,
                meta,
            })),
            Ok(times) => {
                tracing::warn!(
                    tenant,
                    block = ulid,
                    meta_ulid = %times.ulid,
                    "block meta.json names another block; skipped"
                );
                Ok(None)
            }
            Err(e) => {
                tracing::warn!(
                    tenant,
                    block = ulid,
                    error = %e,
                    "unreadable block meta.json; skipped"
                );
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_ulids() {
        assert!(is_block_ulid("01HZX3K4V5W6Y7Z8A9B0C1D2E3"));
        assert!(is_block_ulid("01hzx3k4v5w6y7z8a9b0c1d2e3"));
        assert!(!is_block_ulid(
            "01HZX3K4V5W6Y7Z8A9B0C1D2E3.tmp-for-creation"
        ));
        assert!(
            !is_block_ulid("81HZX3K4V5W6Y7Z8A9B0C1D2E3"),
            "overflows 128 bits"
        );
        assert!(
            !is_block_ulid("01HZX3K4V5W6Y7Z8A9B0C1D2EU"),
            "U is not in the alphabet"
        );
        assert!(!is_block_ulid("markers"));
    }

    #[test]
    fn parses_meta_times() {
        let m = MetaTimes::parse(
            br#"{"ulid":"01HZX3K4V5W6Y7Z8A9B0C1D2E3","minTime":1000,"maxTime":7201000,"version":1,
                "stats":{"numSamples":3},"compaction":{"level":1}}"#,
        )
        .unwrap();
        assert_eq!((m.min_time, m.max_time), (1000, 7_201_000));
    }
}
