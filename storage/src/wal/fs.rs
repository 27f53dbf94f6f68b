//! The file-system interface the WAL does all its I/O through, and its `std::fs` implementation.
//!
//! io_uring style, as compio's: buffers are passed by value and handed back with the result
//! ([`BufResult`]), so an implementation can lend them to the kernel for the duration of the
//! operation. Futures are not `Send`: a WAL belongs to one shard thread. The engine implements
//! these traits with compio; [`StdFs`] blocks inside its futures (tests, tools, start-up replay),
//! and [`super::faulty::FaultyFs`] keeps files in memory, injects faults and simulates crashes.
//!
//! Durability contract (what the WAL relies on): after `sync_data` returns `Ok`, the file's bytes
//! written before it survive a crash; after `write_durable_at` returns `Ok`, so do its own bytes
//! and those written before it; after `sync_dir(d)` returns `Ok`, the creations, removals
//! and renames of entries of `d` done before it survive a crash. Nothing else is assumed: not
//! that a new file's name is durable once its data is, nor that writes reach the disk in order.

use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// The result of an operation that borrowed a buffer by value, and the buffer.
pub type BufResult<T, B> = (io::Result<T>, B);

/// Directory operations of the WAL. Cheap to clone (a handle).
pub trait WalFs: Clone {
    type File: WalFile;

    /// Creates a new, empty file open for reading and writing; fails with `AlreadyExists` if
    /// `path` exists.
    fn create(&self, path: &Path) -> impl Future<Output = io::Result<Self::File>>;

    /// Opens an existing file for reading and writing.
    fn open(&self, path: &Path) -> impl Future<Output = io::Result<Self::File>>;

    /// Creates a directory and its missing parents (no error if it exists).
    fn create_dir_all(&self, path: &Path) -> impl Future<Output = io::Result<()>>;

    /// The names of the entries of directory `path`, in no particular order. Names that are not
    /// UTF-8 may be left out (the WAL names none of its files so).
    fn list(&self, path: &Path) -> impl Future<Output = io::Result<Vec<String>>>;

    /// Renames a file or a directory; replaces `to` if it is a file or an empty directory.
    fn rename(&self, from: &Path, to: &Path) -> impl Future<Output = io::Result<()>>;

    fn remove_file(&self, path: &Path) -> impl Future<Output = io::Result<()>>;

    /// Removes a directory and everything in it.
    fn remove_dir_all(&self, path: &Path) -> impl Future<Output = io::Result<()>>;

    /// Makes the entries of directory `path` durable (fsync of the directory).
    fn sync_dir(&self, path: &Path) -> impl Future<Output = io::Result<()>>;
}

/// An open file.
pub trait WalFile {
    /// Writes all of `buf` at offset `pos` (the file grows as needed) and hands `buf` back.
    fn write_at(&mut self, buf: Vec<u8>, pos: u64) -> impl Future<Output = BufResult<(), Vec<u8>>>;

    /// Reads from offset `pos` into the spare capacity of `buf` (after `buf.len()`, at most
    /// `buf.capacity() - buf.len()` bytes), appending what it read, and hands `buf` back with the
    /// count. A count of 0 means end of file (when there was spare capacity); a short count is
    /// not an end of file.
    fn read_at(
        &mut self,
        buf: Vec<u8>,
        pos: u64,
    ) -> impl Future<Output = BufResult<usize, Vec<u8>>>;

    /// Makes the file's data durable (fdatasync).
    fn sync_data(&mut self) -> impl Future<Output = io::Result<()>>;

    /// [`Self::write_at`], then [`Self::sync_data`]: returns once `buf`'s bytes and everything
    /// written before are durable. An implementation may do both in one operation (the WAL's
    /// commits go through here).
    fn write_durable_at(
        &mut self,
        buf: Vec<u8>,
        pos: u64,
    ) -> impl Future<Output = BufResult<(), Vec<u8>>> {
        async move {
            let (res, buf) = self.write_at(buf, pos).await;
            match res {
                Ok(()) => (self.sync_data().await, buf),
                Err(e) => (Err(e), buf),
            }
        }
    }

    /// Truncates or extends (with zeros) the file to `len` bytes.
    fn set_len(&mut self, len: u64) -> impl Future<Output = io::Result<()>>;
}

/// [`WalFs`] over `std::fs`, blocking inside its futures: for tests, tools and start-up code,
/// never for a shard's hot path.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdFs;

/// A file of [`StdFs`].
#[derive(Debug)]
pub struct StdFile(File);

impl WalFs for StdFs {
    type File = StdFile;

    fn create(&self, path: &Path) -> impl Future<Output = io::Result<StdFile>> {
        let r = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path);
        std::future::ready(r.map(StdFile))
    }

    fn open(&self, path: &Path) -> impl Future<Output = io::Result<StdFile>> {
        let r = OpenOptions::new().read(true).write(true).open(path);
        std::future::ready(r.map(StdFile))
    }

    fn create_dir_all(&self, path: &Path) -> impl Future<Output = io::Result<()>> {
        std::future::ready(std::fs::create_dir_all(path))
    }

    fn list(&self, path: &Path) -> impl Future<Output = io::Result<Vec<String>>> {
        let list = || -> io::Result<Vec<String>> {
            let mut names = Vec::new();
            for entry in std::fs::read_dir(path)? {
                if let Ok(name) = entry?.file_name().into_string() {
                    names.push(name);
                }
            }
            Ok(names)
        };
        std::future::ready(list())
    }

    fn rename(&self, from: &Path, to: &Path) -> impl Future<Output = io::Result<()>> {
        std::future::ready(std::fs::rename(from, to))
    }

    fn remove_file(&self, path: &Path) -> impl Future<Output = io::Result<()>> {
        std::future::ready(std::fs::remove_file(path))
    }

    fn remove_dir_all(&self, path: &Path) -> impl Future<Output = io::Result<()>> {
        std::future::ready(std::fs::remove_dir_all(path))
    }

    fn sync_dir(&self, path: &Path) -> impl Future<Output = io::Result<()>> {
        std::future::ready(File::open(path).and_then(|d| d.sync_all()))
    }
}

impl WalFile for StdFile {
    fn write_at(&mut self, buf: Vec<u8>, pos: u64) -> impl Future<Output = BufResult<(), Vec<u8>>> {
        let r = self
            .0
            .seek(SeekFrom::Start(pos))
            .and_then(|_| self.0.write_all(&buf));
        std::future::ready((r, buf))
    }

    fn read_at(
        &mut self,
        mut buf: Vec<u8>,
        pos: u64,
    ) -> impl Future<Output = BufResult<usize, Vec<u8>>> {
        let len = buf.len();
        let cap = buf.capacity();
        let r = if cap == len {
            Ok(0)
        } else {
            buf.resize(cap, 0);
            let r = self.0.seek(SeekFrom::Start(pos)).and_then(|_| {
                loop {
                    match self.0.read(&mut buf[len..]) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        r => break r,
                    }
                }
            });
            buf.truncate(len + r.as_ref().map_or(0, |&n| n));
            r
        };
        std::future::ready((r, buf))
    }

    fn sync_data(&mut self) -> impl Future<Output = io::Result<()>> {
        std::future::ready(self.0.sync_data())
    }

    fn set_len(&mut self, len: u64) -> impl Future<Output = io::Result<()>> {
        std::future::ready(self.0.set_len(len))
    }
}

/// Runs a future that never waits, such as every future of [`StdFs`] and
/// [`super::faulty::FaultyFs`], to completion on the current thread.
///
/// # Panics
/// If the future is pending when first polled: it needs a real executor.
pub fn block_on<T>(fut: impl Future<Output = T>) -> T {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("block_on: the future waits; it needs a real executor"),
    }
}
