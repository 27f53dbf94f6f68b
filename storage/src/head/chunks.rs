//! Reading a series' chunks and samples back out of the head.
//!
//! Closed chunks are borrowed from the chunk arena and the open chunk from its encoder: nothing is
//! copied or decoded unless samples are asked for.

use crate::chunkenc::xor::{XorIterator, decode_into};

use super::series::{NO_CHUNK, Series};
use super::{ChunkMeta, Head, SeriesRef};

/// A series' chunks overlapping a time range, oldest first: the closed chunks, then the open one.
#[derive(Clone, Debug)]
pub struct Chunks<'a> {
    head: &'a Head,
    /// The next closed chunk to look at, or [`NO_CHUNK`].
    next: u32,
    open: Option<ChunkMeta<'a>>,
    mint: i64,
    maxt: i64,
}

impl<'a> Iterator for Chunks<'a> {
    type Item = ChunkMeta<'a>;

    fn next(&mut self) -> Option<ChunkMeta<'a>> {
        while self.next != NO_CHUNK {
            let c = self.head.closed.get(self.next);
            self.next = c.next;
            if c.min_t > self.maxt {
                // Every later chunk is newer still.
                self.next = NO_CHUNK;
                self.open = None;
                return None;
            }
            if c.max_t >= self.mint {
                return Some(ChunkMeta {
                    min_t: c.min_t,
                    max_t: c.max_t,
                    data: self.head.chunk_bytes.get(c.loc, c.len),
                });
            }
        }
        self.open.take()
    }
}

impl Head {
    /// Chunks of series `s` overlapping `[mint, maxt]`, oldest first (closed chunks, then the
    /// open one); none when `s` is not a live series.
    pub fn chunks(&self, s: SeriesRef, mint: i64, maxt: i64) -> Chunks<'_> {
        let Some(series) = self.live(s) else {
            return Chunks {
                head: self,
                next: NO_CHUNK,
                open: None,
                mint,
                maxt,
            };
        };
        let open = series
            .open
            .as_ref()
            .map(|enc| ChunkMeta {
                min_t: series.chunk_min_t,
                max_t: series.last_t,
                data: enc.bytes(),
            })
            .filter(|c| c.min_t <= maxt && c.max_t >= mint);
        Chunks {
            head: self,
            next: series.first_closed,
            open,
            mint,
            maxt,
        }
    }

    /// Appends the samples of series `s` in `[mint, maxt]` to `out`, oldest first.
    pub fn samples(&self, s: SeriesRef, mint: i64, maxt: i64, out: &mut Vec<(i64, f64)>) {
        for c in self.chunks(s, mint, maxt) {
            if c.min_t >= mint && c.max_t <= maxt {
                // Wholly inside: no per-sample range checks. The head's own chunks decode
                // without error; a damaged one would end its samples early, as below.
                let _ = decode_into(c.data, out);
                continue;
            }
            for (t, v) in XorIterator::new(c.data) {
                if t > maxt {
                    return;
                }
                if t >= mint {
                    out.push((t, v));
                }
            }
        }
    }

    /// The first timestamp of a series with samples.
    pub(crate) fn first_t(&self, s: &Series) -> i64 {
        if s.first_closed == NO_CHUNK {
            s.chunk_min_t
        } else {
            self.closed.get(s.first_closed).min_t
        }
    }

    /// Whether series `s` has a sample in `[mint, maxt]`. Decodes at most the chunks that
    /// straddle the whole range.
    pub(crate) fn has_samples_in(&self, r: SeriesRef, mint: i64, maxt: i64) -> bool {
        let s = self.series.get(r);
        if !s.has_samples() || s.last_t < mint {
            return false;
        }
        let first = self.first_t(s);
        if first > maxt {
            return false;
        }
        // The first or the last sample lies in the range.
        if first >= mint || s.last_t <= maxt {
            return true;
        }
        self.chunks(r, mint, maxt).any(|c| {
            // A chunk whose first or last sample is in the range; otherwise the range lies
            // strictly inside the chunk and only its samples can tell.
            c.min_t >= mint
                || c.max_t <= maxt
                || XorIterator::new(c.data)
                    .map(|(t, _)| t)
                    .find(|&t| t >= mint)
                    .is_some_and(|t| t <= maxt)
        })
    }
}
