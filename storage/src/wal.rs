//! The write-ahead log: one per shard, for all of the shard's tenants, in
//! `<tsdb dir>/shard-<n>/wal/`. Segmented files of CRC32C-framed records (tenants, series,
//! samples, tombstones), group-committed, replayed at start-up from the latest checkpoint.
//!
//! The byte format is specified in [`format`] (`storage/src/wal/format.md`). This page is the
//! design: who does what, and the rules that make an acknowledged sample survive `kill -9` and
//! power loss.
//!
//! # Parts
//! - [`fs`]: the small I/O interface ([`WalFs`], [`WalFile`]) every byte goes through, io_uring
//!   style (owned buffers, not `Send`); [`StdFs`] implements it with `std::fs`. The engine
//!   implements it with compio.
//! - [`conformance`]: the checks every [`WalFs`] implementation runs in its tests.
//! - [`faulty`]: [`FaultyFs`], an in-memory implementation that fails or tears chosen writes and
//!   fsyncs and simulates power loss. It is public (not `cfg(test)`) so that the engine's
//!   group-commit tests and the fuzz targets can use it too; it has no dependencies.
//! - [`record`]: the records and their encoders/decoder (hostile input: typed errors, no panics,
//!   no allocation sized by a length field, no allocation per record once warm).
//! - [`segment`]: segment names and the page framing (fragments of at most one page).
//! - [`writer`]: [`Wal`], the appender with its in-memory buffer and group commit.
//! - [`reader`]: [`WalReader`] and [`replay`]: checkpoint + segments, in order, stopping at the
//!   first damage.
//! - [`dir`]: the directory layout, [`repair`] and clean-up.
//! - [`checkpoint`]: [`Checkpoint`], a fresh compacted log that replaces the segments it covers.
//!
//! # Writing and group commit
//! `log_*` encodes a record and frames it into the buffer of the current segment: synchronous,
//! no I/O, no allocation in steady state. It returns the record's sequence number (1-based,
//! counting every record this `Wal` framed). Durability is a three-step hand-off so that the
//! shard never holds the WAL across an `.await` (its state lives in a `RefCell`):
//! [`Wal::start_sync`] takes the buffered bytes and the open file into a [`SyncJob`] (sync),
//! [`SyncJob::run`] writes and fsyncs them (async, borrows nothing), and [`Wal::finish_sync`]
//! records the outcome and returns the durable sequence number: every record whose number is at
//! most that is on stable storage. Pushes may keep logging while a job runs. [`Wal::sync`] does
//! the three steps at once, and is a no-op (no I/O) when nothing is buffered.
//!
//! Write rules:
//! - bytes are written once: each job writes only the bytes that no earlier job wrote (never a
//!   page again), so a torn write can never damage data that an earlier fsync made durable;
//! - a segment is fsynced before the next segment is created; a new segment file is created
//!   (exclusively, when its first bytes are written: an idle WAL creates no file) and its
//!   directory fsynced before those bytes are written. So every segment but the last is complete,
//!   only the last can end torn, and segment numbers never skip one;
//! - [`Wal::open`] fsyncs the last existing segment before anything is written after it: replay
//!   may have read its tail from the page cache only (the previous process died before its
//!   fsync, or the fsync failed), and a power loss must not take that tail while keeping newer
//!   segments;
//! - a record never straddles segments; a segment may exceed the configured size only when a
//!   single record is larger than a whole segment (it then fills a segment of its own);
//! - an I/O error fails the `Wal` for good (sticky): after a failed fsync the kernel may have
//!   dropped the dirty pages, so nothing written since the last good fsync can be trusted, and a
//!   retried fsync could report success over lost data. The engine answers the pushes that were
//!   waiting with an error and reopens the WAL (replay + repair), which starts a new segment.
//!
//! # Reading, damage and repair
//! [`WalReader`] reads the latest checkpoint, then every segment after it, in order, and stops at
//! the first damage. The policy:
//! - damage of the framing (bad CRC, truncated fragment, zeros where a fragment must start,
//!   non-zero padding, fragments out of sequence, a record cut by the end of the file) in the
//!   **last segment** is a torn tail: the normal result of a crash before the fsync that would
//!   have covered those bytes. Reading ends there cleanly ([`WalReader::torn_tail`]); the caller
//!   logs a warning and calls [`repair`], which truncates the segment at the end of the last good
//!   record. Unacknowledged data is lost, nothing else.
//! - any damage in an **earlier segment or in a checkpoint**, a missing segment number, and any
//!   record whose CRC is valid but whose content does not decode (or names an undeclared tenant)
//!   are [`ReadError::Corrupt`]: the records before it have been replayed, nothing after it is
//!   (never skip a damaged record and carry on: later records may depend on it, samples on their
//!   series). The caller logs an error and decides; to continue it calls [`repair`] with the same
//!   [`Corruption`], which truncates there and deletes every later segment.
//!
//! Damage cannot be told apart from a torn tail within the last segment: media corruption of
//! its acknowledged part also ends replay there (with the warning). The writer's
//! write-once rule and the zero check (a zero header where a fragment must start is damage, not
//! padding) make sure that what *is* replayed is always a prefix of what was logged: a crash that
//! keeps a later write but loses an earlier one leaves a hole of zeros, and reading stops at it.
//!
//! Tenants: every record but [`Record::Tenant`] names its tenant by a small id, declared by a
//! `Tenant` record earlier in the same segment (or checkpoint segment). The writer declares a
//! tenant automatically before its first record in each segment; the reader checks it. A
//! replayer maps ids to tenants with "the latest declaration wins".
//!
//! # Checkpoints
//! [`Wal::cut_segment`] closes the current segment (unless it is still empty) and returns `N`:
//! every record logged so far is in segments `<= N`, every later one goes after. The caller,
//! having captured the head's state at that same instant (no `.await` in between), writes, through a [`Checkpoint`], the
//! state those segments amount to (for each tenant its live series, the samples the head still
//! holds and the tombstones), in `wal/checkpoint.N.tmp/` with the same framing; `finish` fsyncs
//! it, renames it to `wal/checkpoint.N` atomically, and deletes segments `<= N` and older
//! checkpoints. Replay = latest complete checkpoint + segments `> N` (leftovers `<= N` from a
//! crash during deletion are skipped and deleted later; `.tmp` directories are ignored and
//! deleted by [`Wal::open`]). Records may appear both in the checkpoint and in segment `N + 1`
//! when the head kept changing while the checkpoint was written: replay must be idempotent (a
//! series ref seen again with the same labels is a no-op; a sample at or before its series'
//! newest one is skipped, as the head's append rules already do).

pub mod checkpoint;
pub mod conformance;
pub mod dir;
pub mod faulty;
pub mod fs;
pub mod reader;
pub mod record;
pub mod segment;
pub mod writer;

#[doc = include_str!("wal/format.md")]
pub mod format {}

pub use checkpoint::Checkpoint;
pub use dir::repair;
pub use faulty::FaultyFs;
pub use fs::{BufResult, StdFs, WalFile, WalFs, block_on};
pub use reader::{
    Corruption, CorruptionReason, ReadError, ReplayStats, SegmentId, WalReader, replay,
};
pub use record::{Decoder, Record, RecordError, Sample, Tombstone};
pub use writer::{PREALLOCATED_NAME, PreallocJob, SyncDone, SyncJob, Wal, WalOptions};
