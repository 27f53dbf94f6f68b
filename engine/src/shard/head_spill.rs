//! Full head chunk pages out of anonymous memory, as Prometheus memory-maps its full head chunks:
//! a shard's task writes each full page of its heads' chunk arenas to a file and hands the head a
//! read-only mapping of it in place of the page's memory (`strata_storage::head`'s `spill`
//! module has the head's side).
//!
//! Layout: `<tsdb dir>/shard-<n>/head_chunks/<8-digit number>`, one file per head generation
//! (a head rebuilds its chunk arena, under a new generation, when a block cut truncates it). A
//! file is the generation's full pages, in the order they filled, each at a 4 KiB-aligned offset;
//! the bytes are the pages' XOR chunks as they lie in memory, with no framing (the head keeps
//! every chunk's offset and length). The files are a memory spill, not durability: nothing reads
//! them back at start-up (the WAL replay rebuilds the heads), so [`start`] deletes the directory.
//!
//! The task:
//! - is woken by a push that left a full page in memory (`Head::has_full_pages`, one comparison
//!   per push), by a truncation, and by the WAL replay at start-up, which waits for it every few
//!   million samples ([`spill_and_wait`]) so that a restart does not hold the whole head's
//!   chunks in memory at once;
//! - copies the page into its one reused buffer under the shard's borrow, releases the borrow,
//!   writes the copy through compio (io_uring; no blocking syscall on the shard thread), maps it
//!   and takes the borrow again to switch the page. It never holds the borrow across an `.await`,
//!   so pushes and queries go on meanwhile;
//! - maps a file in windows, not page by page: a window covers the file from its first page on
//!   and doubles from 1 MiB up to 64 MiB, and every page in it holds the window (`Arc`). One
//!   mapping per 1 MiB page would cost a kernel mapping (VMA) per megabyte of chunks, and past
//!   `vm.max_map_count` (65530 by default, i.e. about 64 GiB of chunks) every `mmap` of the
//!   process fails, the block reads of `crate::bucket` included. A window may reach past the
//!   file's end; only written pages are ever read through it;
//! - unlinks a generation's file once its head moved to a new generation: the old arena's pages
//!   and with them the mappings are gone by then (a mapping keeps an unlinked file alive anyway).
//!
//! An I/O error never loses or corrupts data: the page stays in memory for good
//! (`Head::page_spill_failed`), and the first error of a shard is logged. Mapping and unmapping
//! a written region happen on the shard thread: they do no disk I/O. Reading a chunk of a mapped
//! page may fault it in from disk if the kernel dropped it from the page cache.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use compio::buf::BufResult;
use compio::fs::{File, OpenOptions};
use compio::io::AsyncWriteAtExt;
use hashbrown::HashMap;
use memmap2::Mmap;
use strata_storage::head::PageId;
use tracing::{debug, error, warn};

use super::{Shard, ShardRef};
use crate::config::TsdbConfig;
use crate::tenant::TenantId;

/// Pages start at multiples of this in their file.
const PAGE_ALIGN: u64 = 4 << 10;
/// The first mapping window of a file; each next one doubles, up to [`MAX_WINDOW`].
const MIN_WINDOW: u64 = 1 << 20;
const MAX_WINDOW: u64 = 64 << 20;

/// Where shard `shard` spills its heads' full chunk pages.
pub fn head_chunks_dir(tsdb_dir: &Path, shard: usize) -> PathBuf {
    tsdb_dir.join(format!("shard-{shard}")).join("head_chunks")
}

/// The shard's handle on its spill task.
pub struct HeadSpill {
    /// Capacity 1: one pending wake-up is enough.
    wake: async_channel::Sender<()>,
    /// Signalled (capacity 1) each time the task has spilled every full page it found.
    drained: async_channel::Receiver<()>,
}

impl HeadSpill {
    /// Wakes the task (never blocks; a wake-up already pending is enough).
    pub(super) fn wake(&self) {
        let _ = self.wake.try_send(());
    }

    /// What [`spill_and_wait`] needs, cloned so that no borrow of the shard is held across
    /// the wait.
    pub(super) fn handle(&self) -> (async_channel::Sender<()>, async_channel::Receiver<()>) {
        (self.wake.clone(), self.drained.clone())
    }
}

/// Wakes the spill task and waits until it has spilled every full page of the shard's heads
/// (a page that fails stays in memory and is not waited for). For the WAL replay, which fills
/// pages without ever yielding to the task: so that a restart's peak memory stays what the
/// ingester uses running, not the whole head's chunks. Returns at once without a task.
pub async fn spill_and_wait(shard: &ShardRef) {
    let Some((wake, drained)) = shard.borrow().spill.as_ref().map(HeadSpill::handle) else {
        return;
    };
    loop {
        let pending = shard
            .borrow()
            .tenants
            .values()
            .any(|th| th.head.has_full_pages());
        if !pending {
            return;
        }
        let _ = wake.try_send(());
        // A signal already pending (from an earlier pass) only costs one more round.
        if drained.recv().await.is_err() {
            return;
        }
    }
}

impl Shard {
    /// Wakes the spill task, if there is one.
    pub(super) fn wake_head_spill(&self) {
        if let Some(s) = &self.spill {
            s.wake();
        }
    }
}

/// Deletes the shard's `head_chunks` directory (left by an earlier run) and, with
/// `head_chunks_on_disk`, creates it anew and starts the spill task. Runs on the shard's thread
/// at start-up, before the WAL replay (which spills as it goes) and before the shard serves
/// anything (the directory operations are plain syscalls). A directory that cannot be prepared
/// is logged and leaves the heads in memory.
pub fn start(shard: &ShardRef, cfg: &TsdbConfig) {
    let id = shard.borrow().id;
    let dir = head_chunks_dir(&cfg.dir, id);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            warn!(shard = id, dir = %dir.display(), error = %e,
                "cannot delete the head chunks of an earlier run: head chunks stay in memory");
            return;
        }
    }
    if !cfg.head_chunks_on_disk {
        return;
    }
    if let Err(e) = std::fs::create_dir_all(&dir) {
        warn!(shard = id, dir = %dir.display(), error = %e,
            "cannot create the head chunks directory: head chunks stay in memory");
        return;
    }
    let (wake, rx) = async_channel::bounded(1);
    let (drained_tx, drained) = async_channel::bounded(1);
    let spill = HeadSpill { wake, drained };
    spill.wake();
    shard.borrow_mut().spill = Some(spill);
    let spiller = Spiller {
        shard: shard.clone(),
        shard_id: id,
        dir,
        files: HashMap::new(),
        next_file: 0,
        buf: Vec::new(),
        failures: 0,
    };
    compio::runtime::spawn(spiller.run(rx, drained_tx)).detach();
}

/// The spill task's state (its own: nothing else touches the files).
struct Spiller {
    shard: ShardRef,
    shard_id: usize,
    dir: PathBuf,
    /// Per tenant, the file of a generation of its head.
    files: HashMap<TenantId, SpillFile>,
    /// The number of the next file.
    next_file: u64,
    /// The page being written (reused).
    buf: Vec<u8>,
    /// Pages that could not be spilled; only the first is logged.
    failures: u64,
}

/// One head generation's file.
struct SpillFile {
    generation: u64,
    path: PathBuf,
    file: File,
    /// Where the next page goes (aligned).
    end: u64,
    /// The newest window.
    window: Option<Window>,
    /// Windows mapped so far (their sizes double).
    windows: u32,
}

/// A read-only mapping of `len` bytes of a file from `start` (possibly past the file's end).
struct Window {
    map: Arc<Mmap>,
    start: u64,
    len: u64,
}

/// A spilled page: `len` bytes at `off` in a window.
#[derive(Debug)]
struct MappedPage {
    map: Arc<Mmap>,
    off: usize,
    len: usize,
}

impl AsRef<[u8]> for MappedPage {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        &self.map[self.off..self.off + self.len]
    }
}

impl Spiller {
    async fn run(mut self, wake: async_channel::Receiver<()>, drained: async_channel::Sender<()>) {
        while wake.recv().await.is_ok() {
            self.drop_stale_files().await;
            while let Some((tenant, id)) = self.next_page() {
                let res = self.write(&tenant, id).await;
                self.switch(&tenant, id, res);
            }
            let _ = drained.try_send(());
        }
    }

    /// The oldest full page of some head, copied into `buf`.
    fn next_page(&mut self) -> Option<(TenantId, PageId)> {
        let s = self.shard.borrow();
        for (tenant, th) in &s.tenants {
            if let Some((id, bytes)) = th.head.full_page() {
                self.buf.clear();
                self.buf.extend_from_slice(bytes);
                return Some((tenant.clone(), id));
            }
        }
        None
    }

    /// Writes `buf` (page `id` of `tenant`'s head) to the generation's file and maps it.
    async fn write(&mut self, tenant: &TenantId, id: PageId) -> io::Result<MappedPage> {
        if self.buf.is_empty() {
            return Err(io::Error::other("empty page"));
        }
        if self
            .files
            .get(tenant)
            .is_none_or(|f| f.generation != id.generation)
        {
            if let Some(old) = self.files.remove(tenant) {
                unlink(old).await;
            }
            let path = self.dir.join(format!("{:08}", self.next_file));
            self.next_file += 1;
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .await?;
            debug!(shard = self.shard_id, tenant = %tenant, generation = id.generation,
                path = %path.display(), "head chunks file created");
            self.files.insert(
                tenant.clone(),
                SpillFile {
                    generation: id.generation,
                    path,
                    file,
                    end: 0,
                    window: None,
                    windows: 0,
                },
            );
        }
        let f = self.files.get_mut(tenant).expect("inserted above");
        let len = self.buf.len() as u64;
        let off = f.end;
        f.end = (off + len).next_multiple_of(PAGE_ALIGN);
        let BufResult(res, buf) = f
            .file
            .write_all_at(std::mem::take(&mut self.buf), off)
            .await;
        self.buf = buf;
        res?;
        f.map(off, len)
    }

    /// Hands the head its page's new bytes, or gives the page up after an error.
    fn switch(&mut self, tenant: &TenantId, id: PageId, res: io::Result<MappedPage>) {
        let mut s = self.shard.borrow_mut();
        let Some(th) = s.tenants.get_mut(tenant) else {
            return;
        };
        match res {
            Ok(page) => {
                if th.head.page_spilled(id, Box::new(page)).is_err() {
                    // The head rebuilt its arena meanwhile (the file goes on the next pass); a
                    // page still in memory that was refused stays there.
                    th.head.page_spill_failed(id);
                }
            }
            Err(e) => {
                th.head.page_spill_failed(id);
                self.failures += 1;
                if self.failures == 1 {
                    error!(shard = self.shard_id, tenant = %tenant, dir = %self.dir.display(),
                        error = %e, "cannot spill head chunks to disk: pages that fail stay in \
                        memory (only the first failure is logged)");
                } else {
                    debug!(shard = self.shard_id, tenant = %tenant, error = %e,
                        failures = self.failures, "cannot spill head chunks to disk");
                }
            }
        }
    }

    /// Closes and unlinks the files of generations their heads no longer use.
    async fn drop_stale_files(&mut self) {
        let stale: Vec<TenantId> = {
            let s = self.shard.borrow();
            self.files
                .iter()
                .filter(|(t, f)| {
                    s.tenants
                        .get(*t)
                        .is_none_or(|th| th.head.chunk_generation() != f.generation)
                })
                .map(|(t, _)| t.clone())
                .collect()
        };
        for t in stale {
            if let Some(f) = self.files.remove(&t) {
                unlink(f).await;
            }
        }
    }
}

impl SpillFile {
    /// `len` bytes written at `off`, as a page of a window (mapping a new one if needed).
    fn map(&mut self, off: u64, len: u64) -> io::Result<MappedPage> {
        let fits = self
            .window
            .as_ref()
            .is_some_and(|w| off >= w.start && off + len <= w.start + w.len);
        if !fits {
            let size = MIN_WINDOW
                .checked_shl(self.windows)
                .map_or(MAX_WINDOW, |s| s.min(MAX_WINDOW))
                .max(len.next_multiple_of(PAGE_ALIGN));
            let map_len = usize::try_from(size).map_err(io::Error::other)?;
            // SAFETY: the mapping is read-only, and the file is this process's own (created
            // with `create_new` in a directory it emptied at start-up): every region is written
            // once, before any page in it is read, never written again and never truncated
            // (the file is only unlinked, which leaves mapped pages alone). The window may reach
            // past the file's end, but only written regions are read through it, so no read
            // faults with SIGBUS. Only a process outside strata truncating the file could.
            let map = unsafe {
                memmap2::MmapOptions::new()
                    .offset(off)
                    .len(map_len)
                    .map(&self.file)?
            };
            self.windows += 1;
            self.window = Some(Window {
                map: Arc::new(map),
                start: off,
                len: size,
            });
        }
        let w = self.window.as_ref().expect("mapped above");
        Ok(MappedPage {
            map: w.map.clone(),
            off: usize::try_from(off - w.start).map_err(io::Error::other)?,
            len: usize::try_from(len).map_err(io::Error::other)?,
        })
    }
}

/// Closes and unlinks a generation's file. A failure is only logged (at start-up the directory
/// is emptied anyway).
async fn unlink(f: SpillFile) {
    let SpillFile {
        path, file, window, ..
    } = f;
    drop(window);
    let _ = file.close().await;
    if let Err(e) = compio::fs::remove_file(&path).await {
        debug!(path = %path.display(), error = %e, "cannot delete a head chunks file");
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use strata_storage::head::HeadOptions;

    use super::*;
    use crate::limits::{Limits, TenantRegistry};
    use crate::validation::NameValidationScheme;

    /// What the WAL replay relies on: after the wait, no full page is left in memory, and the
    /// samples read the same from the mapped pages.
    #[test]
    fn spill_and_wait_leaves_no_full_page_in_memory() {
        let dir = std::env::temp_dir().join(format!("strata-spill-wait-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cfg = TsdbConfig {
            dir: dir.clone(),
            head_chunks_on_disk: true,
            ..TsdbConfig::default()
        };
        let registry =
            TenantRegistry::new(Limits::default(), Arc::new(crate::metrics::Metrics::new()));
        let rt = crate::rt::build_executor_for_tests(crate::rt::Driver::Auto).unwrap();
        rt.block_on(async {
            let shard: ShardRef = Rc::new(RefCell::new(Shard::new(
                0,
                HeadOptions::default(),
                NameValidationScheme::Utf8,
            )));
            start(&shard, &cfg);
            let tenant = registry.get(&TenantId::parse("t").unwrap());
            // Values that XOR does not shrink much: several 1 MiB pages of closed chunks.
            let value = |i: u32, k: i64| f64::from(i) + (k as f64 * 0.618_033_988_7).fract() * 1e3;
            {
                let mut s = shard.borrow_mut();
                let th = s.tenant_head(&tenant);
                for i in 0..2_000u32 {
                    let name = format!("s{i}");
                    let labels = [("__name__", name.as_str())];
                    assert!(
                        th.head
                            .create_with_ref(i, u64::from(i), labels.iter().copied())
                    );
                    for k in 0..600 {
                        th.head.append(i, k * 1000, value(i, k)).unwrap();
                    }
                }
                assert!(th.head.has_full_pages(), "the test fills pages");
            }
            spill_and_wait(&shard).await;
            let s = shard.borrow();
            let th = s.tenants.get(&tenant.id).unwrap();
            assert!(!th.head.has_full_pages());
            let files = std::fs::read_dir(head_chunks_dir(&dir, 0)).unwrap().count();
            assert!(files > 0, "a head chunks file");
            for i in [0u32, 777, 1_999] {
                let mut out = Vec::new();
                th.head.samples(i, i64::MIN, i64::MAX, &mut out);
                let want: Vec<(i64, f64)> = (0..600).map(|k| (k * 1000, value(i, k))).collect();
                assert_eq!(out.len(), want.len());
                assert!(
                    out.iter()
                        .zip(&want)
                        .all(|(a, b)| a.0 == b.0 && a.1.to_bits() == b.1.to_bits())
                );
            }
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
}
