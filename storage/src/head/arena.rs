//! The head's chunk arena: closed chunks' bytes, appended into large pages.
//!
//! Invariants:
//! - append-only: bytes, once stored, never change and are never freed while the arena lives, so
//!   readers borrow them (`&[u8]` tied to the head) without copying;
//! - pages are allocated with their final capacity and never reallocated. Page sizes double from
//!   [`MIN_PAGE`] to [`MAX_PAGE`], so a head with few series does not hold a megabyte; a chunk
//!   larger than the next page gets a page of its own and the current page keeps filling;
//! - only the current page (the one small chunks go to) ever receives bytes. Every other page is
//!   full: immutable for the arena's life. A full page may leave anonymous memory: its owner
//!   writes its bytes elsewhere (the engine: a file it maps read-only) and hands them back as
//!   [`PageBytes`] ([`ByteArena::spilled`]); an [`ArenaLoc`] stays valid across the switch, which
//!   takes `&mut` so no reader borrows the page meanwhile. A page whose bytes could not be
//!   written out stays in memory for good ([`ByteArena::spill_failed`]);
//! - an arena has a generation, given when it is created: a full page is named by its generation
//!   and index ([`PageId`]), so a page handed out before the head rebuilt its arena
//!   (`truncate_before`) is never confused with a page of the new one.

use std::fmt;

/// The first page's size.
const MIN_PAGE: usize = 4 << 10;
/// The largest regular page's size.
const MAX_PAGE: usize = 1 << 20;

/// Where stored bytes lie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ArenaLoc {
    pub(crate) page: u32,
    pub(crate) off: u32,
}

/// A full page's bytes kept outside the head's anonymous memory, e.g. a read-only mapping of the
/// file they were written to. `bytes()` must return exactly the page's bytes, every time.
pub trait PageBytes: Send + Sync + fmt::Debug {
    fn bytes(&self) -> &[u8];
}

impl<T: AsRef<[u8]> + Send + Sync + fmt::Debug> PageBytes for T {
    #[inline]
    fn bytes(&self) -> &[u8] {
        self.as_ref()
    }
}

/// A full page of one arena generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PageId {
    /// The arena's generation (a head rebuilds its arena when it drops chunks).
    pub generation: u64,
    /// The page's index in that arena.
    pub index: u32,
}

#[derive(Debug)]
enum Page {
    /// In anonymous memory: the current page, or a full page not yet written out.
    Memory(Vec<u8>),
    /// Full, in anonymous memory for good: writing it out failed.
    Kept(Vec<u8>),
    /// Full, its bytes elsewhere.
    Spilled(Box<dyn PageBytes>),
}

impl Page {
    #[inline]
    fn bytes(&self) -> &[u8] {
        match self {
            Page::Memory(v) | Page::Kept(v) => v,
            Page::Spilled(b) => b.bytes(),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct ByteArena {
    pages: Vec<Page>,
    /// The page small allocations go to (`None` before the first regular page).
    current: Option<usize>,
    generation: u64,
    /// Full pages still [`Page::Memory`].
    full_in_memory: usize,
    /// No page before this is a full [`Page::Memory`] page.
    spill_from: usize,
    /// Bytes of the spilled pages.
    spilled_bytes: usize,
}

impl ByteArena {
    /// An empty arena of generation `generation`.
    pub(crate) fn with_generation(generation: u64) -> Self {
        ByteArena {
            generation,
            ..ByteArena::default()
        }
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Copies `data` into the arena.
    ///
    /// # Panics
    /// If the arena holds more than 2^32 pages or `data` is 4 GiB or longer.
    pub(crate) fn push(&mut self, data: &[u8]) -> ArenaLoc {
        let current = match self.current.map(|i| &self.pages[i]) {
            Some(Page::Memory(p)) => Some((p.capacity(), p.len())),
            _ => None,
        };
        let fits = current.is_some_and(|(cap, len)| cap - len >= data.len());
        if !fits {
            let next = current.map_or(MIN_PAGE, |(cap, _)| (cap * 2).min(MAX_PAGE));
            if data.len() > next {
                // A page of its own, full at once.
                self.pages.push(Page::Memory(data.to_vec()));
                self.full_in_memory += 1;
                return ArenaLoc {
                    page: page_index(self.pages.len() - 1),
                    off: 0,
                };
            }
            if current.is_some() {
                // The current page is full from now on.
                self.full_in_memory += 1;
            }
            self.pages.push(Page::Memory(Vec::with_capacity(next)));
            self.current = Some(self.pages.len() - 1);
        }
        let i = self
            .current
            .expect("a current page exists or was just added");
        let Page::Memory(page) = &mut self.pages[i] else {
            unreachable!("the current page is in memory");
        };
        let off = u32::try_from(page.len()).expect("arena page larger than 4 GiB");
        page.extend_from_slice(data);
        ArenaLoc {
            page: page_index(i),
            off,
        }
    }

    #[inline]
    pub(crate) fn get(&self, loc: ArenaLoc, len: u32) -> &[u8] {
        &self.pages[loc.page as usize].bytes()[loc.off as usize..(loc.off + len) as usize]
    }

    /// Whether a full page is still in memory and not given up on (one comparison).
    #[inline]
    pub(crate) fn has_full_pages(&self) -> bool {
        self.full_in_memory > 0
    }

    /// The oldest full page still in memory and not given up on, and its bytes.
    pub(crate) fn full_page(&self) -> Option<(PageId, &[u8])> {
        if self.full_in_memory == 0 {
            return None;
        }
        let (i, page) = self
            .pages
            .iter()
            .enumerate()
            .skip(self.spill_from)
            .find(|&(i, p)| Some(i) != self.current && matches!(p, Page::Memory(_)))?;
        let id = PageId {
            generation: self.generation,
            index: page_index(i),
        };
        Some((id, page.bytes()))
    }

    /// The full page `id` now lies in `bytes` (the same bytes, held elsewhere); its memory is
    /// freed. Gives `bytes` back, changing nothing, if `id` is not a full page of this arena in
    /// memory or `bytes` has another length.
    pub(crate) fn spilled(
        &mut self,
        id: PageId,
        bytes: Box<dyn PageBytes>,
    ) -> Result<(), Box<dyn PageBytes>> {
        let Some(i) = self.full_in_memory_index(id) else {
            return Err(bytes);
        };
        let page = &mut self.pages[i];
        let Page::Memory(v) = page else {
            return Err(bytes);
        };
        if v.len() != bytes.bytes().len() {
            return Err(bytes);
        }
        debug_assert!(v.as_slice() == bytes.bytes(), "spilled page {id:?} differs");
        self.spilled_bytes += v.len();
        *page = Page::Spilled(bytes);
        self.page_left_memory();
        Ok(())
    }

    /// The full page `id` could not be written out: it stays in memory and is not handed out
    /// again. Does nothing if `id` is not a full page of this arena in memory.
    pub(crate) fn spill_failed(&mut self, id: PageId) {
        let Some(i) = self.full_in_memory_index(id) else {
            return;
        };
        if let Page::Memory(v) = &mut self.pages[i] {
            let v = std::mem::take(v);
            self.pages[i] = Page::Kept(v);
            self.page_left_memory();
        }
    }

    fn full_in_memory_index(&self, id: PageId) -> Option<usize> {
        let i = id.index as usize;
        (id.generation == self.generation
            && Some(i) != self.current
            && matches!(self.pages.get(i), Some(Page::Memory(_))))
        .then_some(i)
    }

    fn page_left_memory(&mut self) {
        self.full_in_memory -= 1;
        while self
            .pages
            .get(self.spill_from)
            .is_some_and(|p| !matches!(p, Page::Memory(_)))
        {
            self.spill_from += 1;
        }
    }

    /// Anonymous memory allocated: the pages in memory, including the unused tail of each, and
    /// the page table.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.pages
            .iter()
            .map(|p| match p {
                Page::Memory(v) | Page::Kept(v) => v.capacity(),
                Page::Spilled(b) => size_of_val::<dyn PageBytes>(&**b),
            })
            .sum::<usize>()
            + self.pages.capacity() * size_of::<Page>()
    }

    /// Bytes of the pages held elsewhere ([`Self::spilled`]).
    pub(crate) fn spilled_bytes(&self) -> usize {
        self.spilled_bytes
    }
}

fn page_index(p: usize) -> u32 {
    u32::try_from(p).expect("more than 2^32 arena pages")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capacities(a: &ByteArena) -> Vec<usize> {
        a.pages
            .iter()
            .map(|p| match p {
                Page::Memory(v) | Page::Kept(v) => v.capacity(),
                Page::Spilled(_) => 0,
            })
            .collect()
    }

    #[test]
    fn stores_and_reads_back() {
        let mut a = ByteArena::default();
        let mut locs = Vec::new();
        for i in 0..20_000u32 {
            let data: Vec<u8> = (0..(i % 300)).map(|k| (k ^ i) as u8).collect();
            locs.push((a.push(&data), data));
        }
        let big = vec![7u8; MAX_PAGE * 2];
        let big_loc = a.push(&big);
        let after = a.push(b"tail");
        for (loc, data) in &locs {
            assert_eq!(a.get(*loc, data.len() as u32), data.as_slice());
        }
        assert_eq!(a.get(big_loc, big.len() as u32), big.as_slice());
        assert_eq!(a.get(after, 4), b"tail");
        // Regular pages never exceed the maximum size.
        assert_eq!(capacities(&a).iter().filter(|&&c| c > MAX_PAGE).count(), 1);
    }

    #[test]
    fn small_arena_stays_small() {
        let mut a = ByteArena::default();
        a.push(&[1, 2, 3]);
        assert!(a.memory_bytes() <= MIN_PAGE + 4 * size_of::<Page>());
        assert!(!a.has_full_pages(), "the current page is not full");
    }

    #[test]
    fn full_pages_are_handed_out_in_order_and_switch_in_place() {
        let mut a = ByteArena::with_generation(3);
        let mut locs = Vec::new();
        for i in 0..5_000u32 {
            let data: Vec<u8> = (0..=(i % 200)).map(|k| ((k * 31) ^ i) as u8).collect();
            locs.push((a.push(&data), data));
        }
        // An oversized chunk: a full page of its own, after the current page.
        let big = vec![9u8; MAX_PAGE + 1];
        locs.push((a.push(&big), big));
        let full = a.pages.len() - 1;
        let cur = a.current.expect("a current page");
        assert!(a.has_full_pages());
        let mut seen = Vec::new();
        let anon_before = a.memory_bytes();
        while let Some((id, bytes)) = a.full_page() {
            assert_eq!(id.generation, 3);
            assert_ne!(Some(id.index as usize), a.current);
            seen.push(id.index);
            let copy = bytes.to_vec();
            a.spilled(id, Box::new(copy)).expect("switch");
            // Handed out once.
            assert!(a.spilled(id, Box::new(Vec::<u8>::new())).is_err());
        }
        assert_eq!(seen.len(), full);
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]),
            "oldest first: {seen:?}"
        );
        assert!(!a.has_full_pages());
        assert!(a.memory_bytes() < anon_before / 2);
        assert!(a.spilled_bytes() > MAX_PAGE);
        for (loc, data) in &locs {
            assert_eq!(a.get(*loc, data.len() as u32), data.as_slice());
        }
        // The current page keeps filling and is handed out once full.
        while !a.has_full_pages() {
            let data = vec![1u8; 100];
            locs.push((a.push(&data), data));
        }
        let (id, _) = a.full_page().expect("a full page");
        assert_eq!(id.index as usize, cur, "the formerly current page");
    }

    #[test]
    fn wrong_generation_length_or_page_changes_nothing() {
        let mut a = ByteArena::with_generation(1);
        for _ in 0..100 {
            a.push(&[5u8; 100]);
        }
        let (id, bytes) = a.full_page().expect("full page");
        let copy = bytes.to_vec();
        let stale = PageId {
            generation: 0,
            ..id
        };
        assert!(a.spilled(stale, Box::new(copy.clone())).is_err());
        a.spill_failed(stale);
        let current = PageId {
            index: page_index(a.current.unwrap()),
            ..id
        };
        assert!(a.spilled(current, Box::new(copy.clone())).is_err());
        assert!(a.spilled(id, Box::new(copy[1..].to_vec())).is_err());
        assert_eq!(a.full_page().map(|p| p.0), Some(id));
        a.spilled(id, Box::new(copy)).expect("switch");
    }

    #[test]
    fn a_failed_page_stays_readable_and_is_not_handed_out_again() {
        let mut a = ByteArena::default();
        let mut locs = Vec::new();
        for i in 0..200u32 {
            let data = vec![i as u8; 90];
            locs.push((a.push(&data), data));
        }
        let (first, _) = a.full_page().expect("full page");
        a.spill_failed(first);
        let (second, bytes) = a.full_page().expect("another full page");
        assert!(second.index > first.index);
        let copy = bytes.to_vec();
        a.spilled(second, Box::new(copy)).expect("switch");
        assert!(!a.has_full_pages());
        assert!(a.spilled(first, Box::new(Vec::<u8>::new())).is_err());
        for (loc, data) in &locs {
            assert_eq!(a.get(*loc, data.len() as u32), data.as_slice());
        }
    }
}
