//! Full chunk pages out of anonymous memory: the head's side of what Prometheus does by
//! memory-mapping its full head chunks.
//!
//! The head does no I/O. Its owner (the engine's shard) asks for the oldest full page still in
//! memory ([`Head::full_page`]), writes a copy of its bytes wherever it likes (a file it then maps
//! read-only), and hands them back ([`Head::page_spilled`]): the page's memory is freed and reads
//! go to the new bytes from then on. A page whose write failed is given up on
//! ([`Head::page_spill_failed`]) and stays in memory. The switch needs `&mut Head`, so no reader
//! borrows the page meanwhile.
//!
//! A page is named by the arena's generation and its index ([`PageId`]); `truncate_before`
//! rebuilds the arena under a new generation, so bytes handed back for a page of an older
//! generation are refused (returned) and nothing changes. [`Head::chunk_generation`] tells the
//! owner when what it wrote for an older generation is no longer needed.
//!
//! Costs: [`Head::has_full_pages`] is one comparison (the push path may call it per push);
//! [`Head::full_page`] scans from the oldest full page still in memory, which is at most a few
//! pages back.

use super::Head;
use super::arena::{PageBytes, PageId};

impl Head {
    /// Whether a full chunk page is still in anonymous memory, waiting to be spilled.
    #[inline]
    pub fn has_full_pages(&self) -> bool {
        self.chunk_bytes.has_full_pages()
    }

    /// The oldest full chunk page still in anonymous memory, and its bytes: once full, a page
    /// never changes until the arena is rebuilt under another generation.
    pub fn full_page(&self) -> Option<(PageId, &[u8])> {
        self.chunk_bytes.full_page()
    }

    /// The generation of the chunk arena: it changes when [`Head::truncate_before`] rebuilds the
    /// arena, after which no page of an older generation is in use.
    pub fn chunk_generation(&self) -> u64 {
        self.chunk_bytes.generation()
    }

    /// Page `id` now lies in `bytes`, which must hold exactly the bytes [`Head::full_page`] gave
    /// for it; its anonymous memory is freed. Returns `bytes` unused when `id` is not (or no
    /// longer) a full page in memory of the current generation, or `bytes` has another length.
    pub fn page_spilled(
        &mut self,
        id: PageId,
        bytes: Box<dyn PageBytes>,
    ) -> Result<(), Box<dyn PageBytes>> {
        self.chunk_bytes.spilled(id, bytes)
    }

    /// Page `id` could not be spilled: it stays in memory for good and is not handed out by
    /// [`Head::full_page`] again. Does nothing when `id` is not a full page in memory.
    pub fn page_spill_failed(&mut self, id: PageId) {
        self.chunk_bytes.spill_failed(id);
    }
}

#[cfg(test)]
mod tests {
    use crate::head::test_support::minute_head;
    use crate::head::{Head, PageId, SeriesRef};

    /// A head of `series` series with `samples` samples each, one per second (120-sample chunks
    /// cut at minute boundaries).
    fn head_with(series: usize, samples: i64) -> Head {
        let mut h = minute_head(series);
        append(&mut h, 0..samples);
        h
    }

    fn append(h: &mut Head, ks: std::ops::Range<i64>) {
        for k in ks {
            for r in 0..h.num_series() as SeriesRef {
                // Values that do not compress to nothing, so pages fill.
                let v = ((k * 7919 + i64::from(r) * 104_729) % 1000) as f64 / 7.0;
                h.append(r, k * 1000, v).unwrap();
            }
        }
    }

    type Snapshot = Vec<(Vec<(i64, i64, Vec<u8>)>, Vec<(i64, f64)>)>;

    /// Every series' chunks (range and bytes) and samples.
    fn snapshot(h: &Head) -> Snapshot {
        (0..h.num_series() as SeriesRef)
            .map(|r| {
                let chunks = h
                    .chunks(r, i64::MIN, i64::MAX)
                    .map(|c| (c.min_t, c.max_t, c.data.to_vec()))
                    .collect();
                let mut samples = Vec::new();
                h.samples(r, i64::MIN, i64::MAX, &mut samples);
                (chunks, samples)
            })
            .collect()
    }

    /// Switches every full page to a copy held elsewhere; returns the pages.
    fn spill_all(h: &mut Head) -> Vec<PageId> {
        let mut ids = Vec::new();
        while let Some((id, bytes)) = h.full_page() {
            let copy = bytes.to_vec();
            h.page_spilled(id, Box::new(copy)).expect("switch");
            ids.push(id);
        }
        ids
    }

    #[test]
    fn reads_are_equal_before_and_after_the_switch() {
        let mut h = head_with(200, 600);
        assert!(h.has_full_pages());
        let before = snapshot(&h);
        let mem = h.memory();
        assert_eq!(mem.mapped_chunks, 0);
        let ids = spill_all(&mut h);
        assert!(ids.len() >= 5, "pages: {ids:?}");
        assert!(!h.has_full_pages());
        assert_eq!(snapshot(&h), before);
        let after = h.memory();
        assert!(after.mapped_chunks > 0);
        assert!(
            after.chunks + after.mapped_chunks / 2 < mem.chunks,
            "anonymous chunk memory released: {mem:?} -> {after:?}"
        );
        // Appends go on; later pages fill and switch the same way.
        append(&mut h, 600..1200);
        assert!(h.has_full_pages());
        let before = snapshot(&h);
        let more = spill_all(&mut h);
        assert!(more.iter().all(|id| id.generation == ids[0].generation));
        assert!(more[0].index > ids[ids.len() - 1].index);
        assert_eq!(snapshot(&h), before);
    }

    #[test]
    fn truncate_with_spilled_pages_keeps_every_surviving_chunk() {
        let mut h = head_with(100, 900); // 15 minutes: 15 chunks per series
        spill_all(&mut h);
        let generation = h.chunk_generation();
        let survivors: Snapshot = snapshot(&h)
            .into_iter()
            .map(|(chunks, _)| {
                let chunks: Vec<_> = chunks.into_iter().filter(|c| c.1 >= 600_000).collect();
                (chunks, Vec::new())
            })
            .collect();
        // A page handed out before the truncation, handed back after it, is refused.
        let mut end = 900;
        while !h.has_full_pages() {
            append(&mut h, end..end + 10);
            end += 10;
        }
        let (stale, bytes) = h.full_page().expect("a full page");
        let copy = bytes.to_vec();
        assert_eq!(h.truncate_before(600_000), 100 * 10);
        assert_ne!(h.chunk_generation(), generation);
        assert_eq!(h.memory().mapped_chunks, 0, "the spilled pages are dropped");
        assert!(h.page_spilled(stale, Box::new(copy)).is_err());
        h.page_spill_failed(stale);
        let after: Snapshot = snapshot(&h)
            .into_iter()
            .map(|(chunks, _)| {
                let chunks: Vec<_> = chunks.into_iter().filter(|c| c.1 < 900_000).collect();
                // (Later chunks were appended after the first snapshot.)
                (chunks, Vec::new())
            })
            .collect();
        assert_eq!(after, survivors);
        // The rebuilt arena's pages spill again.
        let before = snapshot(&h);
        let ids = spill_all(&mut h);
        assert!(!ids.is_empty());
        assert!(ids.iter().all(|id| id.generation == h.chunk_generation()));
        assert_eq!(snapshot(&h), before);
    }

    #[test]
    fn a_head_whose_spill_failed_still_answers() {
        let mut h = head_with(100, 600);
        let before = snapshot(&h);
        let mut failed = 0;
        while let Some((id, _)) = h.full_page() {
            h.page_spill_failed(id);
            failed += 1;
        }
        assert!(failed > 0);
        assert!(!h.has_full_pages());
        assert_eq!(h.memory().mapped_chunks, 0);
        assert_eq!(snapshot(&h), before);
        // Pages filled later are handed out again; truncation works over kept pages.
        append(&mut h, 600..1200);
        assert!(h.has_full_pages());
        spill_all(&mut h);
        let before: Snapshot = snapshot(&h)
            .into_iter()
            .map(|(chunks, _)| {
                (
                    chunks.into_iter().filter(|c| c.1 >= 300_000).collect(),
                    Vec::new(),
                )
            })
            .collect();
        h.truncate_before(300_000);
        let after: Snapshot = snapshot(&h)
            .into_iter()
            .map(|(chunks, _)| {
                (
                    chunks.into_iter().filter(|c| c.1 < 1_200_000).collect(),
                    Vec::new(),
                )
            })
            .collect();
        assert_eq!(after, before);
    }
}
