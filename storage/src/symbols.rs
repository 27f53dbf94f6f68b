//! Symbol interning: every distinct label name or value string of a head, stored once, named by a
//! dense `u32` id.
//!
//! Invariants:
//! - ids are dense and handed out in order of first interning: `0..len()`; a string keeps its id
//!   for the life of the table (nothing is ever removed).
//! - each string's bytes are stored exactly once, in append-only pages that are never
//!   reallocated: a page is allocated with its final capacity and only filled, so interning never
//!   copies earlier strings. Pages grow from [`MIN_PAGE`] to [`MAX_PAGE`] bytes, so a small table
//!   (a small tenant on one shard) stays small; a string longer than a page gets a page of its
//!   own.
//! - the hash index stores only ids; a string's hash is recomputed from its bytes when the index
//!   grows, so no hash is kept per symbol.

use hashbrown::HashTable;
use xxhash_rust::xxh3::xxh3_64;

/// The first page's size in bytes.
const MIN_PAGE: usize = 1 << 10;
/// The largest regular page's size in bytes.
const MAX_PAGE: usize = 256 << 10;

/// Where one symbol's bytes lie.
#[derive(Clone, Copy, Debug)]
struct Loc {
    page: u32,
    off: u32,
    len: u32,
}

/// Interns strings to dense `u32` ids.
#[derive(Debug, Default)]
pub struct SymbolTable {
    /// Pages of string bytes; each is allocated once with its final capacity.
    pages: Vec<String>,
    /// The page new strings go to (dedicated pages for long strings are not current).
    current: usize,
    /// Where symbol `id` lies, indexed by id.
    locs: Vec<Loc>,
    /// Ids keyed by the hash of their bytes.
    index: HashTable<u32>,
    /// Total bytes of all strings.
    string_bytes: usize,
}

#[inline]
fn hash_bytes(b: &[u8]) -> u64 {
    xxh3_64(b)
}

impl SymbolTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of `s`, interning it on first sight.
    pub fn intern(&mut self, s: &str) -> u32 {
        let hash = hash_bytes(s.as_bytes());
        if let Some(&id) = self
            .index
            .find(hash, |&id| self.bytes_of(id) == s.as_bytes())
        {
            return id;
        }
        let id = u32::try_from(self.locs.len()).expect("more than 2^32 symbols in one table");
        let loc = self.store(s);
        self.locs.push(loc);
        self.string_bytes += s.len();
        let Self {
            index, pages, locs, ..
        } = self;
        index.insert_unique(hash, id, |&other| {
            let l = locs[other as usize];
            hash_bytes(page_bytes(pages, l))
        });
        id
    }

    /// The id of the string with bytes `b`, if interned. Never allocates.
    #[inline]
    pub fn lookup(&self, b: &[u8]) -> Option<u32> {
        let hash = hash_bytes(b);
        self.index.find(hash, |&id| self.bytes_of(id) == b).copied()
    }

    /// The string with id `id`.
    ///
    /// # Panics
    /// If `id` was not handed out by this table.
    #[inline]
    pub fn get(&self, id: u32) -> &str {
        let l = self.locs[id as usize];
        &self.pages[l.page as usize][l.off as usize..(l.off + l.len) as usize]
    }

    /// The bytes of the string with id `id` (as [`Self::get`], without the `str` view).
    #[inline]
    pub fn bytes_of(&self, id: u32) -> &[u8] {
        page_bytes(&self.pages, self.locs[id as usize])
    }

    /// Whether symbol `id` is the string with bytes `b`. Rejects on length before touching the
    /// string bytes.
    #[inline]
    pub fn equals(&self, id: u32, b: &[u8]) -> bool {
        let l = self.locs[id as usize];
        l.len as usize == b.len() && page_bytes(&self.pages, l) == b
    }

    /// How many distinct strings are interned.
    pub fn len(&self) -> usize {
        self.locs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.locs.is_empty()
    }

    /// Approximate bytes of memory held: pages, locations and the hash index.
    pub fn memory_bytes(&self) -> usize {
        self.pages.iter().map(String::capacity).sum::<usize>()
            + self.pages.capacity() * size_of::<String>()
            + self.locs.capacity() * size_of::<Loc>()
            + self.index.allocation_size()
    }

    /// Total bytes of the interned strings themselves.
    pub fn string_bytes(&self) -> usize {
        self.string_bytes
    }

    /// Copies `s` into a page and returns where it lies.
    fn store(&mut self, s: &str) -> Loc {
        let len = u32::try_from(s.len()).expect("symbol longer than 4 GiB");
        let fits = self
            .pages
            .get(self.current)
            .is_some_and(|p| p.capacity() - p.len() >= s.len());
        if !fits {
            let next = self
                .pages
                .get(self.current)
                .map_or(MIN_PAGE, |p| (p.capacity() * 2).min(MAX_PAGE));
            if s.len() > next {
                // A long string gets a page of its own; the current page keeps filling.
                let page = u32::try_from(self.pages.len()).expect("too many symbol pages");
                self.pages.push(s.to_owned());
                return Loc { page, off: 0, len };
            }
            self.pages.push(String::with_capacity(next));
            self.current = self.pages.len() - 1;
        }
        let p = &mut self.pages[self.current];
        let off = u32::try_from(p.len()).expect("symbol page larger than 4 GiB");
        p.push_str(s);
        Loc {
            page: u32::try_from(self.current).expect("too many symbol pages"),
            off,
            len,
        }
    }
}

#[inline]
fn page_bytes(pages: &[String], l: Loc) -> &[u8] {
    &pages[l.page as usize].as_bytes()[l.off as usize..(l.off + l.len) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_once_with_dense_ids() {
        let mut t = SymbolTable::new();
        assert!(t.is_empty());
        let a = t.intern("a");
        let b = t.intern("bb");
        let e = t.intern("");
        assert_eq!((a, b, e), (0, 1, 2));
        assert_eq!(t.intern("a"), a);
        assert_eq!(t.intern("bb"), b);
        assert_eq!(t.intern(""), e);
        assert_eq!(t.len(), 3);
        assert_eq!(t.get(b), "bb");
        assert_eq!(t.get(e), "");
        assert_eq!(t.lookup(b"bb"), Some(b));
        assert_eq!(t.lookup(b"c"), None);
        assert_eq!(t.string_bytes(), 3);
    }

    #[test]
    fn many_strings_across_pages_and_long_strings() {
        let mut t = SymbolTable::new();
        let long = "x".repeat(MAX_PAGE * 2);
        let mut ids = Vec::new();
        for i in 0..50_000 {
            ids.push(t.intern(&format!("value-{i}")));
            if i == 1000 {
                ids.push(t.intern(&long));
            }
        }
        assert_eq!(t.len(), 50_001);
        for (i, &id) in ids.iter().enumerate() {
            if i == 1001 {
                assert_eq!(t.get(id), long);
                continue;
            }
            let n = if i > 1001 { i - 1 } else { i };
            assert_eq!(t.get(id), format!("value-{n}"));
            assert_eq!(t.lookup(format!("value-{n}").as_bytes()), Some(id));
        }
        assert_eq!(t.lookup(long.as_bytes()), Some(ids[1001]));
        // Pages never exceed the maximum except the dedicated one.
        assert!(t.pages.iter().filter(|p| p.capacity() > MAX_PAGE).count() == 1);
    }

    #[test]
    fn equals_compares_bytes() {
        let mut t = SymbolTable::new();
        let id = t.intern("instance");
        assert!(t.equals(id, b"instance"));
        assert!(!t.equals(id, b"instancf"));
        assert!(!t.equals(id, b"instanc"));
    }

    #[test]
    fn unicode_round_trips() {
        let mut t = SymbolTable::new();
        let id = t.intern("héllo wörld ✓");
        assert_eq!(t.get(id), "héllo wörld ✓");
    }
}
