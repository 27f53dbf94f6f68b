//! Releasing what a block now holds: closed chunks entirely before a time are dropped and their
//! bytes' memory returned, by rebuilding the chunk arena with the chunks that stay.
//!
//! The rebuilt arena is a new generation, entirely in anonymous memory: the chunks that stay are
//! copied out of the old pages (spilled ones included) and spill again as their new pages fill.
//! Dropping the old arena drops its spilled pages (the engine's mappings of the old generation's
//! file). Nothing is rebuilt when no chunk is dropped, so spilled pages are not read for nothing.
//!
//! Series stay (with their labels and postings) even when no chunk of theirs remains, and the open
//! chunk always stays (a series with samples has one), even when all its samples are before the
//! time: [`Head::gc`], run after a truncation, drops the series whose samples are all before it.

use super::Head;
use super::arena::ByteArena;
use super::paged::PagedVec;
use super::series::{ClosedChunk, NO_CHUNK};

impl Head {
    /// Drops every closed chunk whose samples are all before `t` (`max_t < t`) and releases its
    /// memory. Returns how many chunks were dropped.
    pub fn truncate_before(&mut self, t: i64) -> usize {
        if self.min_t >= t {
            return 0;
        }
        let droppable = self
            .series
            .iter()
            .any(|(_, s)| s.first_closed != NO_CHUNK && self.closed.get(s.first_closed).max_t < t);
        if !droppable {
            return 0;
        }
        let mut closed: PagedVec<ClosedChunk> = PagedVec::default();
        let mut arena = ByteArena::with_generation(self.chunk_bytes.generation() + 1);
        let mut dropped = 0;
        for s in self.series.iter_mut() {
            let (mut next, mut first, mut last) = (s.first_closed, NO_CHUNK, NO_CHUNK);
            while next != NO_CHUNK {
                let c = *self.closed.get(next);
                next = c.next;
                if c.max_t < t {
                    dropped += 1;
                    continue;
                }
                let loc = arena.push(self.chunk_bytes.get(c.loc, c.len));
                let idx = closed.push(ClosedChunk {
                    loc,
                    next: NO_CHUNK,
                    ..c
                });
                if last == NO_CHUNK {
                    first = idx;
                } else {
                    closed.get_mut(last).next = idx;
                }
                last = idx;
            }
            s.first_closed = first;
            s.last_closed = last;
        }
        debug_assert!(dropped > 0);
        self.closed = closed;
        self.chunk_bytes = arena;
        // The oldest sample left is at or after `t`, or in an open chunk that started before.
        self.min_t = self.oldest_sample();
        dropped
    }

    /// The first timestamp of the oldest series, `i64::MAX` when no series has samples.
    pub(crate) fn oldest_sample(&self) -> i64 {
        self.series
            .iter()
            .filter(|(_, s)| s.has_samples())
            .map(|(_, s)| self.first_t(s))
            .min()
            .unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::test_support::minute_head;

    fn head_with(series: usize, samples: i64) -> Head {
        let mut h = minute_head(series);
        for r in 0..series as u32 {
            for k in 0..samples {
                h.append(r, k * 10_000, (k * 7 + i64::from(r)) as f64)
                    .unwrap();
            }
        }
        h
    }

    #[test]
    fn drops_chunks_before_and_keeps_the_rest_bit_for_bit() {
        let mut h = head_with(20, 60); // 10 minutes, one chunk per minute
        let before = h.memory().chunks;
        let mut expect = Vec::new();
        for r in 0..20 {
            let mut s = Vec::new();
            h.samples(r, 300_000, i64::MAX, &mut s);
            expect.push(s);
        }
        let dropped = h.truncate_before(300_000);
        assert_eq!(dropped, 20 * 5, "5 whole minutes of chunks per series");
        assert!(h.memory().chunks < before, "memory released");
        assert_eq!(h.min_time(), 300_000);
        for r in 0..20 {
            let mut s = Vec::new();
            h.samples(r, i64::MIN, i64::MAX, &mut s);
            assert_eq!(s, expect[r as usize], "series {r}");
        }
        // Appends go on after a truncation.
        h.append(0, 600_000, 1.0).unwrap();
        assert_eq!(h.truncate_before(0), 0);
    }

    #[test]
    fn truncating_everything_keeps_the_open_chunks() {
        let mut h = head_with(3, 30);
        h.truncate_before(i64::MAX);
        for r in 0..3 {
            let mut s = Vec::new();
            h.samples(r, i64::MIN, i64::MAX, &mut s);
            // The open chunk: the last minute's samples (minute 4: t in [240s, 290s]).
            assert_eq!(s.first().map(|p| p.0), Some(240_000));
        }
    }
}
