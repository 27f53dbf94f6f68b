//! The head's chunk arena: closed chunks' bytes, appended into large pages.
//!
//! Invariants:
//! - append-only: bytes, once stored, never move and are never freed while the head lives, so
//!   readers borrow them (`&[u8]` tied to the head) without copying;
//! - pages are allocated with their final capacity and never reallocated. Page sizes double from
//!   [`MIN_PAGE`] to [`MAX_PAGE`], so a head with few series does not hold a megabyte; a chunk
//!   larger than the next page gets a page of its own and the current page keeps filling.

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

#[derive(Debug, Default)]
pub(crate) struct ByteArena {
    pages: Vec<Vec<u8>>,
    /// The page small allocations go to.
    current: usize,
}

impl ByteArena {
    /// Copies `data` into the arena.
    ///
    /// # Panics
    /// If the arena holds more than 2^32 pages or `data` is 4 GiB or longer.
    pub(crate) fn push(&mut self, data: &[u8]) -> ArenaLoc {
        let fits = self
            .pages
            .get(self.current)
            .is_some_and(|p| p.capacity() - p.len() >= data.len());
        if !fits {
            let next = self
                .pages
                .get(self.current)
                .map_or(MIN_PAGE, |p| (p.capacity() * 2).min(MAX_PAGE));
            if data.len() > next {
                self.pages.push(data.to_vec());
                return ArenaLoc {
                    page: page_index(self.pages.len() - 1),
                    off: 0,
                };
            }
            self.pages.push(Vec::with_capacity(next));
            self.current = self.pages.len() - 1;
        }
        let page = &mut self.pages[self.current];
        let off = u32::try_from(page.len()).expect("arena page larger than 4 GiB");
        page.extend_from_slice(data);
        ArenaLoc {
            page: page_index(self.current),
            off,
        }
    }

    #[inline]
    pub(crate) fn get(&self, loc: ArenaLoc, len: u32) -> &[u8] {
        &self.pages[loc.page as usize][loc.off as usize..(loc.off + len) as usize]
    }

    /// Bytes allocated, including the unused tail of each page.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.pages.iter().map(Vec::capacity).sum::<usize>()
            + self.pages.capacity() * size_of::<Vec<u8>>()
    }
}

fn page_index(p: usize) -> u32 {
    u32::try_from(p).expect("more than 2^32 arena pages")
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            a.pages.iter().filter(|p| p.capacity() > MAX_PAGE).count(),
            1
        );
    }

    #[test]
    fn small_arena_stays_small() {
        let mut a = ByteArena::default();
        a.push(&[1, 2, 3]);
        assert!(a.memory_bytes() <= MIN_PAGE + 4 * size_of::<Vec<u8>>());
    }
}
