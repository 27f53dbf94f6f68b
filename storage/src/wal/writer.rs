//! [`Wal`]: appends records to an in-memory buffer and makes them durable in group commits.
//!
//! State: the current segment's number and logical end offset, the bytes of it not yet handed to
//! a sync (they end at that offset), and segments cut while their tail was still buffered
//! ("sealed"). A sync hands all of those to a [`SyncJob`], which writes each segment's bytes at
//! their offset (bytes are written exactly once), fsyncs it, closes it if it is sealed, and
//! creates the next segment file (exclusively, then fsyncs the directory) when it first has bytes
//! to write. Files are created lazily, so an idle WAL creates none.
//!
//! Sequence numbers: every framed record (tenant declarations included) gets the next number;
//! after a successful sync every record numbered at most [`Wal::durable_seq`] is durable.
//!
//! Preallocation: a [`PreallocJob`] ([`Wal::start_prealloc`]) writes a zero-filled file of a
//! segment's size ([`PREALLOCATED_NAME`]) and fsyncs it, off the commit path; the next segment
//! the WAL starts is that file, renamed. Data then overwrites blocks that already exist, so an
//! fdatasync flushes the data alone instead of also committing the file system's journal for the
//! size change, as an append must: 145 against 240 us per 8 KiB write + fdatasync on ext4 here
//! (`PostgreSQL` zero-fills its WAL segments for the same reason). A sealed segment is truncated
//! to its data and fsynced before the next is created, so only the last segment may end in zeros,
//! and replay reads zeros where a fragment must start as its torn tail: [`super::repair`] cuts
//! them off like any torn tail.

use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use hashbrown::HashMap;

use super::dir;
use super::fs::{WalFile, WalFs};
use super::record::{SamplesEncoder, SeriesEncoder, TombstonesEncoder, encode_tenant};
use super::segment::{self, DEFAULT_SEGMENT_SIZE, PAGE_SIZE};

/// Buffers larger than this are not kept for reuse after a sync (a burst should not pin memory).
const MAX_SPARE_CAPACITY: usize = 8 << 20;

/// The name of the zero-filled file prepared for the next segment (not a segment's name: readers
/// ignore it; [`Wal::open`] deletes a leftover).
pub const PREALLOCATED_NAME: &str = "preallocated";
/// Zeros a [`PreallocJob`] writes at a time.
const ZERO_CHUNK: usize = 1 << 20;
/// A [`PreallocJob`] fsyncs after each this many bytes, so that no single flush holds the disk
/// for long while the commit path's fsyncs wait behind it.
const ZERO_SYNC_EVERY: u64 = 8 << 20;

/// Where the file for the next segment stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Prealloc {
    /// None prepared: [`Wal::start_prealloc`] may start one.
    Absent,
    /// A [`PreallocJob`] is writing it.
    Running,
    /// Ready to become the next segment.
    Ready,
    /// Ready, and lent to the sync job in flight, which may use it.
    Lent,
    /// A preallocation failed: segments are created empty from now on.
    Off,
}

/// How a [`Wal`] cuts segments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalOptions {
    /// A new segment is started when the next record would end beyond this size (bytes). At
    /// least one page ([`PAGE_SIZE`]).
    pub segment_size: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size: DEFAULT_SEGMENT_SIZE,
        }
    }
}

/// [`WalOptions`] that cannot work.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OptionsError {
    #[error("wal segment_size {0} is smaller than a page ({PAGE_SIZE} bytes)")]
    SegmentTooSmall(u64),
}

impl WalOptions {
    pub fn validate(&self) -> Result<(), OptionsError> {
        if self.segment_size < PAGE_SIZE as u64 {
            return Err(OptionsError::SegmentTooSmall(self.segment_size));
        }
        Ok(())
    }
}

/// Bytes of one segment to write at `offset`; `seal`: the segment is complete after them.
#[derive(Debug)]
struct SegmentWrite {
    segment: u32,
    offset: u64,
    bytes: Vec<u8>,
    seal: bool,
}

/// The open file of a segment.
struct OpenSegment<T> {
    segment: u32,
    file: T,
    /// The file's length when it was a preallocated file (zeros past the data), else 0.
    preallocated: u64,
}

/// The tenants of a writer: ids are dense, assigned in registration order.
#[derive(Default)]
struct Tenants {
    ids: HashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
    /// Per tenant, the segment its declaration was last framed into.
    declared_in: Vec<Option<u32>>,
}

/// The write-ahead log's appender: see the [module docs](super).
pub struct Wal<F: WalFs> {
    fs: F,
    dir: Rc<Path>,
    opts: WalOptions,
    /// The segment the last sync wrote to, still open (`None` while a sync is in flight).
    file: Option<OpenSegment<F::File>>,
    /// The segment records are framed into, and its logical end offset.
    segment: u32,
    end: u64,
    /// Bytes of `segment` not yet handed to a sync; they end at `end`.
    buf: Vec<u8>,
    /// Segments cut while their tail was still buffered, oldest first.
    sealed: Vec<SegmentWrite>,
    /// Scratch for the record being logged and for a tenant declaration.
    scratch: Vec<u8>,
    decl: Vec<u8>,
    tenants: Tenants,
    logged: u64,
    durable: u64,
    in_flight: bool,
    /// The error that failed the WAL, if any (sticky).
    failed: Option<(io::ErrorKind, String)>,
    spare: Vec<Vec<u8>>,
    prealloc: Prealloc,
    /// The newest segment file a sync created, and whether it was the prepared file.
    created: Option<(u32, bool)>,
}

impl<F: WalFs> Wal<F> {
    /// Opens the WAL in `dir` (created if missing) for appending. Records go to a new segment
    /// after every segment and checkpoint present; abandoned checkpoint directories (`.tmp`) are
    /// deleted. Replay and [`super::repair`] come first: a torn tail left in the last segment
    /// would be reported as corruption in the middle by the next replay.
    pub async fn open(fs: F, dir: impl AsRef<Path>, opts: WalOptions) -> io::Result<Self> {
        opts.validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let dir = dir.as_ref();
        fs.create_dir_all(dir).await?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs.sync_dir(parent).await?;
        }
        let listing = dir::Listing::read(&fs, dir).await?;
        if !listing.tmp.is_empty() {
            for &n in &listing.tmp {
                fs.remove_dir_all(&dir.join(segment::checkpoint_tmp_name(n)))
                    .await?;
            }
            fs.sync_dir(dir).await?;
        }
        if listing.preallocated {
            // Possibly half written (the process died while preparing it): prepare a new one.
            fs.remove_file(&dir.join(PREALLOCATED_NAME)).await?;
        }
        // The last segment may hold bytes that were written but never fsynced (the previous
        // process died first, or its fsync failed) and that replay has just read from the page
        // cache. Make them durable before anything is written after them: otherwise a power loss
        // could take them while keeping newer segments, a hole in the middle of the log (and
        // records after it referring to series lost in it). Every earlier segment was fsynced
        // before its successor was created.
        if let Some(&last) = listing.segments.last() {
            let mut f = fs.open(&dir.join(segment::segment_name(last))).await?;
            f.sync_data().await?;
        }
        let segment = match listing.last_index() {
            Some(n) => n.checked_add(1).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, "wal segment numbers exhausted")
            })?,
            None => 0,
        };
        Ok(Wal {
            fs,
            dir: Rc::from(dir),
            opts,
            file: None,
            segment,
            end: 0,
            buf: Vec::new(),
            sealed: Vec::new(),
            scratch: Vec::new(),
            decl: Vec::new(),
            tenants: Tenants::default(),
            logged: 0,
            durable: 0,
            in_flight: false,
            failed: None,
            spare: Vec::new(),
            prealloc: Prealloc::Absent,
            created: None,
        })
    }

    /// The WAL's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn options(&self) -> &WalOptions {
        &self.opts
    }

    /// The id of tenant `name` in this WAL's records, registering it on first use. Ids are small
    /// and dense, valid for this `Wal` only (a reopened WAL assigns them afresh).
    pub fn tenant(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.tenants.ids.get(name) {
            return id;
        }
        let id = u32::try_from(self.tenants.names.len()).expect("more than 2^32 tenants");
        self.tenants.ids.insert(name.into(), id);
        self.tenants.names.push(name.into());
        self.tenants.declared_in.push(None);
        id
    }

    /// The name of tenant id `id`, if registered.
    pub fn tenant_name(&self, id: u32) -> Option<&str> {
        self.tenants.names.get(id as usize).map(|n| &**n)
    }

    /// Logs a Series record of `tenant` with the series `f` adds; returns its sequence number
    /// (or the last one if `f` adds none: nothing is logged).
    ///
    /// # Panics
    /// If `tenant` was not returned by [`Self::tenant`].
    pub fn log_series(&mut self, tenant: u32, f: impl FnOnce(&mut SeriesEncoder<'_>)) -> u64 {
        let mut rec = std::mem::take(&mut self.scratch);
        rec.clear();
        let mut e = SeriesEncoder::new(&mut rec, tenant);
        f(&mut e);
        let seq = if e.is_empty() {
            self.logged
        } else {
            self.append(tenant, &rec)
        };
        self.scratch = rec;
        seq
    }

    /// Logs a Samples record of `tenant` with the samples `f` adds; as [`Self::log_series`].
    pub fn log_samples(&mut self, tenant: u32, f: impl FnOnce(&mut SamplesEncoder<'_>)) -> u64 {
        let mut rec = std::mem::take(&mut self.scratch);
        rec.clear();
        let mut e = SamplesEncoder::new(&mut rec, tenant);
        f(&mut e);
        let seq = if e.is_empty() {
            self.logged
        } else {
            self.append(tenant, &rec)
        };
        self.scratch = rec;
        seq
    }

    /// Logs a Tombstones record of `tenant` with the ranges `f` adds; as [`Self::log_series`].
    pub fn log_tombstones(
        &mut self,
        tenant: u32,
        f: impl FnOnce(&mut TombstonesEncoder<'_>),
    ) -> u64 {
        let mut rec = std::mem::take(&mut self.scratch);
        rec.clear();
        let mut e = TombstonesEncoder::new(&mut rec, tenant);
        f(&mut e);
        let seq = if e.is_empty() {
            self.logged
        } else {
            self.append(tenant, &rec)
        };
        self.scratch = rec;
        seq
    }

    /// Frames `rec` of `tenant`, preceded by the tenant's declaration if the current segment
    /// lacks it, cutting a new segment first if they would not fit.
    fn append(&mut self, tenant: u32, rec: &[u8]) -> u64 {
        let t = tenant as usize;
        assert!(
            t < self.tenants.names.len(),
            "wal tenant id {tenant} was not registered"
        );
        let mut declare = self.tenants.declared_in[t] != Some(self.segment);
        if declare {
            self.decl.clear();
            encode_tenant(&mut self.decl, tenant, &self.tenants.names[t]);
        }
        if self.end > 0 {
            let mut end = self.end;
            if declare {
                end = segment::framed_end(end, self.decl.len());
            }
            if segment::framed_end(end, rec.len()) > self.opts.segment_size {
                self.cut_segment(); // `end > 0`: always closes this segment
                if !declare {
                    declare = true;
                    self.decl.clear();
                    encode_tenant(&mut self.decl, tenant, &self.tenants.names[t]);
                }
            }
        }
        if declare {
            self.end = segment::frame(&mut self.buf, self.end, &self.decl);
            self.tenants.declared_in[t] = Some(self.segment);
            self.logged += 1;
        }
        self.end = segment::frame(&mut self.buf, self.end, rec);
        self.logged += 1;
        self.logged
    }

    /// Closes the current segment and returns its number: every record logged so far is in
    /// segments up to it, every later one will be in later segments. For checkpoints. An empty
    /// current segment is not closed (segment numbers never skip one): the answer is then the
    /// segment before it. `None` if this `Wal` has logged nothing yet.
    pub fn cut_segment(&mut self) -> Option<u32> {
        if self.logged == 0 {
            return None;
        }
        if self.end == 0 {
            // Only a segment that holds bytes is ever left behind: this one's predecessor does.
            return self.segment.checked_sub(1);
        }
        let bytes = std::mem::replace(&mut self.buf, self.spare.pop().unwrap_or_default());
        self.sealed.push(SegmentWrite {
            segment: self.segment,
            offset: self.end - bytes.len() as u64,
            bytes,
            seal: true,
        });
        let cut = self.segment;
        self.segment += 1;
        self.end = 0;
        Some(cut)
    }

    /// The number of the last record logged.
    pub fn logged_seq(&self) -> u64 {
        self.logged
    }

    /// Every record numbered up to this is durable.
    pub fn durable_seq(&self) -> u64 {
        self.durable
    }

    /// Bytes logged but not yet handed to a sync.
    pub fn buffered_bytes(&self) -> usize {
        self.buf.len() + self.sealed.iter().map(|w| w.bytes.len()).sum::<usize>()
    }

    /// The segment records are currently framed into.
    pub fn current_segment(&self) -> u32 {
        self.segment
    }

    /// Whether an I/O error has failed this WAL (every later sync fails).
    pub fn is_failed(&self) -> bool {
        self.failed.is_some()
    }

    fn failed_error(&self) -> Option<io::Error> {
        self.failed.as_ref().map(|(kind, msg)| {
            io::Error::new(*kind, format!("wal failed by an earlier error: {msg}"))
        })
    }

    /// Takes everything buffered into a job that writes and fsyncs it; `None` when nothing is
    /// buffered (every logged record is durable). Logging may continue while the job runs; its
    /// outcome must be given to [`Self::finish_sync`] before the next `start_sync`.
    pub fn start_sync(&mut self) -> io::Result<Option<SyncJob<F>>> {
        if let Some(e) = self.failed_error() {
            return Err(e);
        }
        if self.in_flight {
            return Err(io::Error::other("wal sync already in flight"));
        }
        if self.buf.is_empty() && self.sealed.is_empty() {
            return Ok(None);
        }
        let bytes = std::mem::replace(&mut self.buf, self.spare.pop().unwrap_or_default());
        let tail = SegmentWrite {
            segment: self.segment,
            offset: self.end - bytes.len() as u64,
            bytes,
            seal: false,
        };
        self.in_flight = true;
        let preallocated = self.prealloc == Prealloc::Ready;
        if preallocated {
            self.prealloc = Prealloc::Lent;
        }
        Ok(Some(SyncJob {
            fs: self.fs.clone(),
            dir: self.dir.clone(),
            file: self.file.take(),
            sealed: std::mem::take(&mut self.sealed),
            tail,
            upto: self.logged,
            preallocated,
            preallocated_len: self.opts.segment_size,
        }))
    }

    /// Records the outcome of the job [`Self::start_sync`] returned; returns the durable
    /// sequence number, or the job's error, which fails the WAL for good.
    pub fn finish_sync(&mut self, done: SyncDone<F>) -> io::Result<u64> {
        self.in_flight = false;
        if self.prealloc == Prealloc::Lent {
            self.prealloc = if done.preallocated {
                Prealloc::Ready
            } else {
                Prealloc::Absent
            };
        }
        for w in done.sealed.into_iter().chain([done.tail]) {
            self.recycle(w.bytes);
        }
        match done.result {
            Ok(()) => {
                if let Some(open) = &done.file {
                    self.created = Some((open.segment, open.preallocated > 0));
                }
                self.file = done.file;
                self.switch_to_prepared();
                self.durable = self.durable.max(done.upto);
                Ok(self.durable)
            }
            Err(e) => {
                self.failed = Some((e.kind(), e.to_string()));
                Err(e)
            }
        }
    }

    fn recycle(&mut self, mut bytes: Vec<u8>) {
        if self.spare.len() < 2 && bytes.capacity() <= MAX_SPARE_CAPACITY {
            bytes.clear();
            self.spare.push(bytes);
        }
    }

    /// A job that prepares the file of the next segment (see the [module docs](self)), when none
    /// is prepared or being prepared and the WAL has not failed. Run it beside the commit path;
    /// give its outcome to [`Self::finish_prealloc`].
    pub fn start_prealloc(&mut self) -> Option<PreallocJob<F>> {
        if self.prealloc != Prealloc::Absent || self.failed.is_some() {
            return None;
        }
        self.prealloc = Prealloc::Running;
        Some(PreallocJob {
            fs: self.fs.clone(),
            path: self.dir.join(PREALLOCATED_NAME),
            len: self.opts.segment_size,
        })
    }

    /// Records the outcome of a [`PreallocJob`]. After an error (returned for the caller to
    /// report) no more preallocation is tried: segments are then created empty, which is only
    /// slower. A leftover file is deleted by the next [`Self::open`].
    pub fn finish_prealloc(&mut self, result: io::Result<()>) -> io::Result<()> {
        match result {
            Ok(()) => {
                self.prealloc = Prealloc::Ready;
                self.switch_to_prepared();
                Ok(())
            }
            Err(e) => {
                self.prealloc = Prealloc::Off;
                Err(e)
            }
        }
    }

    /// Cuts the current segment early when its file was created empty and a prepared file is now
    /// ready (the first segment after start-up, or when preparation fell behind): the records
    /// after it then go to the prepared file.
    fn switch_to_prepared(&mut self) {
        if self.prealloc == Prealloc::Ready && self.created == Some((self.segment, false)) {
            self.cut_segment();
        }
    }

    /// Whether a prepared file waits for the next segment.
    pub fn is_preallocated(&self) -> bool {
        matches!(self.prealloc, Prealloc::Ready | Prealloc::Lent)
    }

    /// Writes and fsyncs everything buffered: [`Self::start_sync`], [`SyncJob::run`],
    /// [`Self::finish_sync`]. No I/O when nothing is buffered.
    pub async fn sync(&mut self) -> io::Result<u64> {
        match self.start_sync()? {
            None => Ok(self.durable),
            Some(job) => {
                let done = job.run().await;
                self.finish_sync(done)
            }
        }
    }
}

/// Buffered WAL bytes on their way to disk: owns everything it needs, so the shard can keep
/// logging while it runs. Give its [`SyncDone`] back to [`Wal::finish_sync`]. A job dropped
/// before that takes its bytes with it: the `Wal` then refuses every later sync ("already in
/// flight") and must be reopened, like after an I/O error.
pub struct SyncJob<F: WalFs> {
    fs: F,
    dir: Rc<Path>,
    file: Option<OpenSegment<F::File>>,
    sealed: Vec<SegmentWrite>,
    tail: SegmentWrite,
    upto: u64,
    /// The prepared file may be used for the first segment this job creates.
    preallocated: bool,
    preallocated_len: u64,
}

/// The outcome of a [`SyncJob`], for [`Wal::finish_sync`].
pub struct SyncDone<F: WalFs> {
    file: Option<OpenSegment<F::File>>,
    sealed: Vec<SegmentWrite>,
    tail: SegmentWrite,
    upto: u64,
    /// The prepared file lent to the job is still there (the job created no segment).
    preallocated: bool,
    result: io::Result<()>,
}

impl<F: WalFs> SyncJob<F> {
    /// Records numbered up to this are durable once the job succeeds.
    pub fn upto(&self) -> u64 {
        self.upto
    }

    /// Writes and fsyncs each segment's bytes in order, closing sealed segments and creating new
    /// ones as needed; stops at the first error.
    pub async fn run(mut self) -> SyncDone<F> {
        let mut result = Ok(());
        let mut prealloc = self.preallocated.then_some(self.preallocated_len);
        for w in self.sealed.iter_mut().chain([&mut self.tail]) {
            if let Err(e) =
                write_segment(&self.fs, &self.dir, &mut self.file, &mut prealloc, w).await
            {
                self.file = None;
                result = Err(e);
                break;
            }
        }
        SyncDone {
            file: self.file,
            sealed: self.sealed,
            tail: self.tail,
            upto: self.upto,
            preallocated: prealloc.is_some(),
            result,
        }
    }
}

/// Writes the zero-filled file for the next segment: see [`Wal::start_prealloc`].
pub struct PreallocJob<F: WalFs> {
    fs: F,
    path: PathBuf,
    len: u64,
}

impl<F: WalFs> PreallocJob<F> {
    /// Creates the file (exclusively), fills it with zeros and fsyncs it.
    pub async fn run(self) -> io::Result<()> {
        let mut f = self.fs.create(&self.path).await?;
        let mut zeros = vec![0; ZERO_CHUNK];
        let mut pos = 0;
        while pos < self.len {
            let n = (self.len - pos).min(ZERO_CHUNK as u64);
            zeros.truncate(n as usize);
            let (r, back) = f.write_at(zeros, pos).await;
            zeros = back;
            r?;
            pos += n;
            if pos % ZERO_SYNC_EVERY == 0 {
                f.sync_data().await?;
            }
        }
        f.sync_data().await
    }
}

/// Writes `w` and fsyncs it. A segment's first bytes create its file: the prepared file renamed
/// if `prealloc` holds its length (taken then), else a new one.
async fn write_segment<F: WalFs>(
    fs: &F,
    dir: &Path,
    file: &mut Option<OpenSegment<F::File>>,
    prealloc: &mut Option<u64>,
    w: &mut SegmentWrite,
) -> io::Result<()> {
    let end = w.offset + w.bytes.len() as u64;
    if !w.bytes.is_empty() {
        let open = match file.take() {
            Some(open) if open.segment == w.segment => open,
            _ => {
                // A segment's first bytes: create it, and make its name durable before them.
                let path: PathBuf = dir.join(segment::segment_name(w.segment));
                let renamed = match prealloc.take() {
                    Some(len) => match fs.rename(&dir.join(PREALLOCATED_NAME), &path).await {
                        Ok(()) => Some((fs.open(&path).await?, len)),
                        // Deleted behind our back: only slower.
                        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                        Err(e) => return Err(e),
                    },
                    None => None,
                };
                let (f, preallocated) = match renamed {
                    Some(opened) => opened,
                    None => (fs.create(&path).await?, 0),
                };
                fs.sync_dir(dir).await?;
                OpenSegment {
                    segment: w.segment,
                    file: f,
                    preallocated,
                }
            }
        };
        let open = file.insert(open);
        let (r, bytes) = open
            .file
            .write_durable_at(std::mem::take(&mut w.bytes), w.offset)
            .await;
        w.bytes = bytes;
        r?;
    }
    if w.seal
        && let Some(open) = file.take_if(|f| f.segment == w.segment)
    {
        let mut open = open;
        if open.preallocated > end {
            // Only the last segment may end in zeros (see the module docs).
            open.file.set_len(end).await?;
            open.file.sync_data().await?;
        }
    }
    Ok(())
}
