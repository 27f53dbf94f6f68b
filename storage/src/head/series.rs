//! One series' in-memory record and the rules for cutting its chunks.
//!
//! Invariants:
//! - a series has an open chunk iff it has samples; `last_t`/`last_v` are then the newest
//!   sample's timestamp and value bits and `chunk_min_t` the open chunk's first timestamp;
//! - closed chunks form a list oldest to newest (`first_closed` → `next` → … → `last_closed`),
//!   each older and not overlapping the next, and all older than the open chunk;
//! - chunk boundaries depend only on the samples: a chunk is closed when it holds
//!   `max_samples_per_chunk` samples or the next sample reaches the end of the clock-aligned
//!   window (`chunk_range_ms`) the chunk started in. Two heads fed the same samples (replicas)
//!   therefore cut byte-identical chunks;
//! - a tombstone ([`Series::tombstone`]) fills the slot of a ref that names no series (dropped by
//!   the head's garbage collection, or skipped over by a replay): no labels, no chunks, never
//!   found by a lookup.

use crate::chunkenc::xor::XorEncoder;

use super::arena::ArenaLoc;

/// Marks "no chunk" in chunk links.
pub(crate) const NO_CHUNK: u32 = u32::MAX;

/// Bytes of the sample count at the start of XOR chunk data.
const CHUNK_HEADER: usize = 2;

/// `num_labels` of a tombstone.
const TOMBSTONE: u32 = u32::MAX;

#[derive(Debug)]
pub(crate) struct Series {
    /// [`crate::labels::LabelHasher`] value of the labels, for the hash index.
    pub(crate) hash: u64,
    /// Timestamp of the newest sample (meaningless without an open chunk).
    pub(crate) last_t: i64,
    /// Bits of the newest sample's value.
    pub(crate) last_v: u64,
    /// First timestamp of the open chunk.
    pub(crate) chunk_min_t: i64,
    /// The open chunk; `None` until the first sample.
    pub(crate) open: Option<XorEncoder>,
    /// Offset of the label ids (`name, value` pairs) in the head's id arena.
    pub(crate) labels: u32,
    /// Number of label pairs.
    pub(crate) num_labels: u32,
    /// Bytes the open chunk's buffer was created with (memory accounting).
    pub(crate) open_capacity: u32,
    /// Oldest closed chunk, or [`NO_CHUNK`].
    pub(crate) first_closed: u32,
    /// Newest closed chunk, or [`NO_CHUNK`].
    pub(crate) last_closed: u32,
}

impl Series {
    pub(crate) fn new(hash: u64, labels: u32, num_labels: u32) -> Self {
        Series {
            hash,
            last_t: i64::MIN,
            last_v: 0,
            chunk_min_t: i64::MIN,
            open: None,
            labels,
            num_labels,
            open_capacity: 0,
            first_closed: NO_CHUNK,
            last_closed: NO_CHUNK,
        }
    }

    /// The record of a ref that names no series.
    pub(crate) fn tombstone() -> Self {
        Series {
            num_labels: TOMBSTONE,
            ..Series::new(0, 0, 0)
        }
    }

    pub(crate) fn is_tombstone(&self) -> bool {
        self.num_labels == TOMBSTONE
    }

    pub(crate) fn has_samples(&self) -> bool {
        self.open.is_some()
    }
}

/// A closed chunk: its time range and where its bytes lie in the chunk arena.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClosedChunk {
    pub(crate) min_t: i64,
    pub(crate) max_t: i64,
    pub(crate) loc: ArenaLoc,
    pub(crate) len: u32,
    /// The series' next (newer) closed chunk, or [`NO_CHUNK`].
    pub(crate) next: u32,
}

/// The end (exclusive) of the clock-aligned window of `range` ms that contains `t`. Saturates at
/// `i64::MAX` for windows past the end of time.
#[inline]
pub(crate) fn window_end(t: i64, range: i64) -> i64 {
    t.div_euclid(range).saturating_add(1).saturating_mul(range)
}

/// Bytes to reserve for a new open chunk of `max_samples` samples.
pub(crate) fn first_chunk_capacity(max_samples: u16) -> usize {
    // About 1.4 bytes per sample is typical for 120-sample chunks of scraped data.
    CHUNK_HEADER + (usize::from(max_samples) * 7).div_ceil(5)
}

/// Bytes to reserve for the chunk after one of `len` bytes holding `samples` samples: the same
/// bytes per sample scaled to a full chunk plus an eighth, so a series whose values compress
/// badly does not regrow its buffer every chunk, and a well-compressed one holds no headroom.
pub(crate) fn next_chunk_capacity(len: usize, samples: u16, max_samples: u16) -> usize {
    let samples = usize::from(samples.max(1));
    let per_full = len.saturating_sub(CHUNK_HEADER) * usize::from(max_samples) / samples;
    let est = CHUNK_HEADER + per_full + per_full / 8 + 2;
    // Never below the typical size (a short chunk cut by a window end says little), never more
    // than the worst case of about 18 bytes per sample.
    est.clamp(
        first_chunk_capacity(max_samples),
        CHUNK_HEADER + 18 * usize::from(max_samples),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_clock_aligned_including_negative_time() {
        assert_eq!(window_end(0, 10), 10);
        assert_eq!(window_end(9, 10), 10);
        assert_eq!(window_end(10, 10), 20);
        assert_eq!(window_end(-1, 10), 0);
        assert_eq!(window_end(-10, 10), 0);
        assert_eq!(window_end(-11, 10), -10);
        assert_eq!(window_end(i64::MAX - 1, 7_200_000), i64::MAX);
        assert_eq!(
            window_end(i64::MIN, 7_200_000),
            i64::MIN / 7_200_000 * 7_200_000
        );
    }

    #[test]
    fn capacities() {
        assert_eq!(first_chunk_capacity(120), 170);
        assert_eq!(next_chunk_capacity(140, 120, 120), 170);
        assert_eq!(next_chunk_capacity(962, 120, 120), 962 + 120 + 2);
        assert_eq!(next_chunk_capacity(50, 10, 120), 2 + 576 + 72 + 2);
        assert_eq!(next_chunk_capacity(100_000, 1, 120), 2 + 18 * 120);
    }
}
