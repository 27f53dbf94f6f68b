//! Append-only storage in fixed-size pages: per-series records ([`PagedVec`]) and the label id
//! arena ([`IdArena`]).
//!
//! Invariants:
//! - an element's index never changes and pages are never reallocated once full, so growth never
//!   copies old elements (no latency spike when a head with millions of series grows) and leaves
//!   at most one partly filled page of headroom;
//! - page 0 grows by doubling up to the page size, so a small head (a small tenant on one shard)
//!   holds little memory;
//! - a full page may be released ([`PagedVec::release_pages`]) and a run of whole pages skipped
//!   over ([`PagedVec::skip_to`]): such a page holds no memory and its elements read as absent
//!   ([`PagedVec::try_get`]); indexes past it are unchanged;
//! - an [`IdArena`] slice is contiguous within one page; a slice longer than a page gets a page of
//!   its own that spans several page slots (the later slots stay empty).

/// Elements per [`PagedVec`] page.
const VEC_PAGE_SHIFT: u32 = 12;
const VEC_PAGE: usize = 1 << VEC_PAGE_SHIFT;

/// A vector of `T` stored in pages of [`VEC_PAGE`] elements, indexed by `u32`.
#[derive(Debug)]
pub(crate) struct PagedVec<T> {
    pages: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for PagedVec<T> {
    fn default() -> Self {
        Self {
            pages: Vec::new(),
            len: 0,
        }
    }
}

impl<T> PagedVec<T> {
    /// Appends `v` and returns its index.
    ///
    /// # Panics
    /// If the vector already holds `u32::MAX` elements.
    pub(crate) fn push(&mut self, v: T) -> u32 {
        let idx = u32::try_from(self.len).expect("more than 2^32 elements in a paged vector");
        let p = self.len >> VEC_PAGE_SHIFT;
        if p == self.pages.len() {
            self.pages
                .push(Vec::with_capacity(if p == 0 { 4 } else { VEC_PAGE }));
        }
        let page = &mut self.pages[p];
        if page.len() == page.capacity() {
            // Only page 0 starts small; it doubles up to a full page.
            let target = (page.capacity() * 2).clamp(4, VEC_PAGE);
            page.reserve_exact(target - page.len());
        }
        page.push(v);
        self.len += 1;
        idx
    }

    /// Element `i`.
    ///
    /// # Panics
    /// If `i` is out of range or its page was released.
    #[inline]
    pub(crate) fn get(&self, i: u32) -> &T {
        &self.pages[(i >> VEC_PAGE_SHIFT) as usize][i as usize & (VEC_PAGE - 1)]
    }

    /// Element `i`, or `None` when it is out of range or its page was released.
    #[inline]
    pub(crate) fn try_get(&self, i: u32) -> Option<&T> {
        self.pages
            .get((i >> VEC_PAGE_SHIFT) as usize)?
            .get(i as usize & (VEC_PAGE - 1))
    }

    /// Grows the vector to `n` elements (nothing if it holds that many): whole pages in the gap
    /// are left released (no memory), the others filled with `fill()`.
    pub(crate) fn skip_to(&mut self, n: u32, mut fill: impl FnMut() -> T) {
        let n = n as usize;
        while self.len < n {
            if self.len.is_multiple_of(VEC_PAGE) && n - self.len >= VEC_PAGE {
                debug_assert_eq!(self.pages.len(), self.len >> VEC_PAGE_SHIFT);
                self.pages.push(Vec::new());
                self.len += VEC_PAGE;
            } else {
                self.push(fill());
            }
        }
    }

    /// Releases every full page whose elements are all `dead`; returns how many were released.
    pub(crate) fn release_pages(&mut self, dead: impl Fn(&T) -> bool) -> usize {
        let full = self.len >> VEC_PAGE_SHIFT;
        let mut released = 0;
        for page in &mut self.pages[..full] {
            if !page.is_empty() && page.iter().all(&dead) {
                *page = Vec::new();
                released += 1;
            }
        }
        released
    }

    /// The elements present (not in a released page), with their indexes, ascending.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &T)> + '_ {
        self.pages.iter().enumerate().flat_map(|(p, page)| {
            page.iter()
                .enumerate()
                .map(move |(i, v)| (((p << VEC_PAGE_SHIFT) | i) as u32, v))
        })
    }

    /// The elements present, mutably, ascending by index.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> + '_ {
        self.pages.iter_mut().flatten()
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, i: u32) -> &mut T {
        &mut self.pages[(i >> VEC_PAGE_SHIFT) as usize][i as usize & (VEC_PAGE - 1)]
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes allocated for the elements and the page table.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.pages
            .iter()
            .map(|p| p.capacity() * size_of::<T>())
            .sum::<usize>()
            + self.pages.capacity() * size_of::<Vec<T>>()
    }
}

/// `u32`s per [`IdArena`] page (64 KiB).
const ID_PAGE_SHIFT: u32 = 14;
const ID_PAGE: usize = 1 << ID_PAGE_SHIFT;

/// Contiguous `u32` slices (a series' label ids) addressed by a `u32` offset.
#[derive(Debug, Default)]
pub(crate) struct IdArena {
    pages: Vec<Vec<u32>>,
}

impl IdArena {
    /// Stores `ids` and returns the offset to read them back with [`Self::get`].
    ///
    /// # Panics
    /// If the arena grows past 2^32 ids (16 GiB).
    pub(crate) fn push(&mut self, ids: &[u32]) -> u32 {
        let n = ids.len();
        let fits = self.pages.last().is_some_and(|p| ID_PAGE - p.len() >= n);
        if !fits {
            if n > ID_PAGE {
                let start = self.pages.len();
                self.pages.push(ids.to_vec());
                // Reserve the page slots the long slice spans, so offsets stay `page << shift`.
                let extra = n.div_ceil(ID_PAGE) - 1;
                self.pages.extend((0..extra).map(|_| Vec::new()));
                return offset(start, 0);
            }
            self.pages
                .push(Vec::with_capacity(if self.pages.is_empty() {
                    n.max(64)
                } else {
                    ID_PAGE
                }));
        }
        let p = self.pages.len() - 1;
        let page = &mut self.pages[p];
        if page.capacity() - page.len() < n {
            // Page 0 doubles up to a full page.
            let target = (page.capacity() * 2).max(page.len() + n).min(ID_PAGE);
            page.reserve_exact(target - page.len());
        }
        let off = page.len();
        page.extend_from_slice(ids);
        offset(p, off)
    }

    #[inline]
    pub(crate) fn get(&self, off: u32, len: usize) -> &[u32] {
        let page = &self.pages[(off >> ID_PAGE_SHIFT) as usize];
        let start = off as usize & (ID_PAGE - 1);
        &page[start..start + len]
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        self.pages.iter().map(|p| p.capacity() * 4).sum::<usize>()
            + self.pages.capacity() * size_of::<Vec<u32>>()
    }
}

fn offset(page: usize, off: usize) -> u32 {
    u32::try_from((page << ID_PAGE_SHIFT) | off).expect("label id arena larger than 2^32 ids")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paged_vec_indexes_across_pages() {
        let mut v = PagedVec::default();
        for i in 0..(VEC_PAGE * 3 + 7) {
            assert_eq!(v.push(i) as usize, i);
        }
        assert_eq!(v.len(), VEC_PAGE * 3 + 7);
        for i in [0, 1, VEC_PAGE - 1, VEC_PAGE, VEC_PAGE * 3 + 6] {
            assert_eq!(*v.get(i as u32), i);
        }
        *v.get_mut(5) = 99;
        assert_eq!(*v.get(5), 99);
        // Page 0 stopped at exactly one page.
        assert!(v.pages.iter().all(|p| p.capacity() == VEC_PAGE));
    }

    #[test]
    fn released_and_skipped_pages_read_as_absent() {
        let mut v = PagedVec::default();
        for i in 0..(VEC_PAGE * 2 + 3) {
            v.push(i);
        }
        // Only full pages whose elements are all dead go.
        assert_eq!(v.release_pages(|&x| x < VEC_PAGE + 5), 1);
        assert_eq!(v.try_get(0), None);
        assert_eq!(v.try_get(VEC_PAGE as u32), Some(&VEC_PAGE));
        assert_eq!(v.release_pages(|_| true), 1, "the partial last page stays");
        assert_eq!(
            v.try_get(VEC_PAGE as u32 * 2 + 2),
            Some(&(VEC_PAGE * 2 + 2))
        );
        assert_eq!(v.try_get(VEC_PAGE as u32 * 2 + 3), None, "out of range");
        // Skipping fills the current page, then leaves whole pages released.
        v.skip_to(VEC_PAGE as u32 * 5 + 1, || usize::MAX);
        assert_eq!(v.len(), VEC_PAGE * 5 + 1);
        assert_eq!(v.try_get(VEC_PAGE as u32 * 3 - 1), Some(&usize::MAX));
        assert_eq!(v.try_get(VEC_PAGE as u32 * 3), None);
        assert_eq!(v.try_get(VEC_PAGE as u32 * 5), Some(&usize::MAX));
        assert_eq!(v.push(7), VEC_PAGE as u32 * 5 + 1);
        let present: Vec<u32> = v.iter().map(|(i, _)| i).take(2).collect();
        assert_eq!(present, vec![VEC_PAGE as u32 * 2, VEC_PAGE as u32 * 2 + 1]);
        assert_eq!(v.iter().count(), VEC_PAGE + 2);
        v.skip_to(3, || 0);
        assert_eq!(v.len(), VEC_PAGE * 5 + 2, "never shrinks");
    }

    #[test]
    fn small_paged_vec_stays_small() {
        let mut v = PagedVec::default();
        for i in 0..10u64 {
            v.push(i);
        }
        assert!(v.memory_bytes() <= 16 * 8 + 4 * size_of::<Vec<u64>>());
    }

    #[test]
    fn id_arena_slices_never_straddle_pages() {
        let mut a = IdArena::default();
        let mut offs = Vec::new();
        for i in 0..20_000u32 {
            let ids: Vec<u32> = (0..(i % 17)).map(|k| i * 100 + k).collect();
            offs.push((a.push(&ids), ids));
        }
        let long: Vec<u32> = (0..(ID_PAGE as u32 * 2 + 5)).collect();
        let long_off = a.push(&long);
        let after = a.push(&[7, 8]);
        for (off, ids) in &offs {
            assert_eq!(a.get(*off, ids.len()), ids.as_slice());
        }
        assert_eq!(a.get(long_off, long.len()), long.as_slice());
        assert_eq!(a.get(after, 2), &[7, 8]);
    }
}
