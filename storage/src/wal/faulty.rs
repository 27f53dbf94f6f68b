//! [`FaultyFs`]: an in-memory [`WalFs`] that fails or tears chosen operations and simulates
//! power loss, for crash and fault tests of the WAL and of its users (the engine's group commit).
//!
//! Model (what a crash keeps), deliberately no kinder than a real disk:
//! - file data: what the last successful `sync_data` of the file covered survives. Each write
//!   since then survives independently as a prefix of random length (nothing, part, or all of
//!   it), so later writes may survive where earlier ones did not (holes read as zeros); or, after
//!   [`FaultyFs::tear_sectors`], as an arbitrary subset of its sectors, as a disk that writes a
//!   large request's sectors in any order does. Each `set_len` since then survives or not;
//! - names: creations, removals and renames are journaled in order. `sync_dir(d)` commits the
//!   journal up to the last operation on an entry of `d` (everything before it too, as an ordered
//!   journal does). A crash keeps a random prefix of the uncommitted rest. A file's data being
//!   synced does not make its name durable.
//!
//! A crash ends a generation: handles (the fs handle and its files) of the old generation fail
//! every operation; [`FaultyFs::restart`] gives a handle of the new one. Everything is
//! deterministic for a given seed and sequence of calls.
//!
//! Public rather than `cfg(test)` so that other crates' tests and the fuzz targets can use it; it
//! costs nothing at run time and has no dependencies.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::fs::{BufResult, WalFile, WalFs};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Node {
    Dir,
    File(usize),
}

#[derive(Clone, Debug)]
enum NsOp {
    Mkdir(PathBuf),
    Create(PathBuf, usize),
    Remove(PathBuf),
    RemoveAll(PathBuf),
    Rename(PathBuf, PathBuf),
}

impl NsOp {
    /// Whether the operation changes an entry of directory `d`.
    fn touches(&self, d: &Path) -> bool {
        match self {
            NsOp::Mkdir(p) | NsOp::Create(p, _) | NsOp::Remove(p) | NsOp::RemoveAll(p) => {
                p.parent() == Some(d)
            }
            NsOp::Rename(a, b) => a.parent() == Some(d) || b.parent() == Some(d),
        }
    }

    fn apply(&self, ns: &mut BTreeMap<PathBuf, Node>) {
        match self {
            NsOp::Mkdir(p) => {
                ns.entry(p.clone()).or_insert(Node::Dir);
            }
            NsOp::Create(p, ino) => {
                ns.insert(p.clone(), Node::File(*ino));
            }
            NsOp::Remove(p) => {
                ns.remove(p);
            }
            NsOp::RemoveAll(p) => ns.retain(|k, _| !k.starts_with(p)),
            NsOp::Rename(a, b) => {
                ns.retain(|k, _| !k.starts_with(b));
                let moved: Vec<(PathBuf, Node)> = ns
                    .iter()
                    .filter(|(k, _)| k.starts_with(a))
                    .map(|(k, &n)| (k.clone(), n))
                    .collect();
                for (k, n) in moved {
                    ns.remove(&k);
                    let rest = k.strip_prefix(a).unwrap_or(Path::new(""));
                    ns.insert(b.join(rest), n);
                }
            }
        }
    }
}

#[derive(Debug)]
enum DataOp {
    Write { pos: usize, bytes: Vec<u8> },
    SetLen(usize),
}

#[derive(Debug, Default)]
struct Inode {
    /// What reads see.
    data: Vec<u8>,
    /// What the last successful sync covered.
    durable: Vec<u8>,
    /// Changes since, in order.
    unsynced: Vec<DataOp>,
}

fn write_into(v: &mut Vec<u8>, pos: usize, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    if v.len() < pos + bytes.len() {
        v.resize(pos + bytes.len(), 0);
    }
    v[pos..pos + bytes.len()].copy_from_slice(bytes);
}

#[derive(Debug, Default)]
struct State {
    generation: u64,
    ns: BTreeMap<PathBuf, Node>,
    durable_ns: BTreeMap<PathBuf, Node>,
    /// Name operations in `ns` but not in `durable_ns`, in order.
    journal: Vec<NsOp>,
    inodes: Vec<Inode>,
    rng: u64,
    /// Mutating operations, writes and data syncs performed so far.
    ops: u64,
    writes: u64,
    syncs: u64,
    crash_at: Option<u64>,
    /// Writes to fail, by index: `None` writes nothing, `Some(n)` keeps the first `n` bytes.
    failing_writes: BTreeMap<u64, Option<usize>>,
    failing_syncs: Vec<u64>,
    /// Tear unsynced writes into sectors of this size at a crash, rather than into a prefix.
    sector: Option<usize>,
}

fn crashed() -> io::Error {
    io::Error::other("faulty fs: crashed (power loss); handles of before the crash are dead")
}

fn not_found(p: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("faulty fs: {} not found", p.display()),
    )
}

impl State {
    fn rand(&mut self) -> u64 {
        // splitmix64
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A random number in `0..=n`.
    fn upto(&mut self, n: usize) -> usize {
        (self.rand() % (n as u64 + 1)) as usize
    }

    fn alive(&self, generation: u64) -> io::Result<()> {
        if generation == self.generation {
            Ok(())
        } else {
            Err(crashed())
        }
    }

    /// Counts a mutating operation; crashes instead if it is the chosen one.
    fn tick(&mut self, generation: u64) -> io::Result<()> {
        self.alive(generation)?;
        if self.crash_at == Some(self.ops) {
            self.crash();
            return Err(crashed());
        }
        self.ops += 1;
        Ok(())
    }

    fn is_dir(&self, p: &Path) -> bool {
        p.as_os_str().is_empty() || p.parent().is_none() || self.ns.get(p) == Some(&Node::Dir)
    }

    fn parent_is_dir(&self, p: &Path) -> io::Result<()> {
        match p.parent() {
            Some(parent) if !self.is_dir(parent) => Err(not_found(parent)),
            _ => Ok(()),
        }
    }

    fn log(&mut self, op: NsOp) {
        op.apply(&mut self.ns);
        self.journal.push(op);
    }

    fn commit(&mut self, n: usize) {
        for op in self.journal.drain(..n) {
            op.apply(&mut self.durable_ns);
        }
    }

    /// Applies what a crash keeps of a write of `bytes` at `pos`.
    fn tear_into(&mut self, data: &mut Vec<u8>, pos: usize, bytes: &[u8]) {
        let how = self.rand() % 4;
        if how < 2 {
            // All of it or none of it.
            let keep = if how == 0 { 0 } else { bytes.len() };
            write_into(data, pos, &bytes[..keep]);
            return;
        }
        let Some(sector) = self.sector else {
            let keep = self.upto(bytes.len());
            write_into(data, pos, &bytes[..keep]);
            return;
        };
        // Each sector (aligned in the file) independently.
        let mut at = 0;
        while at < bytes.len() {
            let end = (at + sector - (pos + at) % sector).min(bytes.len());
            if self.rand().is_multiple_of(2) {
                write_into(data, pos + at, &bytes[at..end]);
            }
            at = end;
        }
    }

    fn crash(&mut self) {
        let keep = self.upto(self.journal.len());
        self.commit(keep);
        self.journal.clear();
        self.ns = self.durable_ns.clone();
        for i in 0..self.inodes.len() {
            let ops = std::mem::take(&mut self.inodes[i].unsynced);
            let mut data = std::mem::take(&mut self.inodes[i].durable);
            for op in ops {
                match op {
                    DataOp::Write { pos, bytes } => self.tear_into(&mut data, pos, &bytes),
                    DataOp::SetLen(len) => {
                        if self.rand().is_multiple_of(2) {
                            data.resize(len, 0);
                        }
                    }
                }
            }
            self.inodes[i].data.clone_from(&data);
            self.inodes[i].durable = data;
        }
        self.generation += 1;
        self.crash_at = None;
    }
}

/// The in-memory file system. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct FaultyFs {
    state: Rc<RefCell<State>>,
    generation: u64,
}

impl FaultyFs {
    /// An empty file system; `seed` drives what crashes keep.
    pub fn new(seed: u64) -> Self {
        FaultyFs {
            state: Rc::new(RefCell::new(State {
                rng: seed,
                ..State::default()
            })),
            generation: 0,
        }
    }

    /// Loses power now.
    pub fn crash(&self) {
        self.state.borrow_mut().crash();
    }

    /// A handle of the current generation (after a crash, the "rebooted" machine).
    #[must_use]
    pub fn restart(&self) -> FaultyFs {
        FaultyFs {
            state: self.state.clone(),
            generation: self.state.borrow().generation,
        }
    }

    /// Whether this handle's generation has crashed.
    pub fn has_crashed(&self) -> bool {
        self.state.borrow().generation != self.generation
    }

    /// Loses power instead of performing mutating operation number `op` (counting from 0, see
    /// [`Self::ops`]); that operation and all later ones of this generation fail.
    pub fn crash_at(&self, op: u64) {
        self.state.borrow_mut().crash_at = Some(op);
    }

    /// Fails write number `n` (counting every `write_at` from 0, see [`Self::writes`]) without
    /// writing anything.
    pub fn fail_write(&self, n: u64) {
        self.state.borrow_mut().failing_writes.insert(n, None);
    }

    /// Tears write number `n`: only its first `keep` bytes are written, then it fails.
    pub fn tear_write(&self, n: u64, keep: usize) {
        self.state.borrow_mut().failing_writes.insert(n, Some(keep));
    }

    /// From now on a crash keeps an arbitrary subset of the `sector`-byte sectors of each
    /// unsynced write, not a prefix of it.
    pub fn tear_sectors(&self, sector: usize) {
        self.state.borrow_mut().sector = Some(sector.max(1));
    }

    /// Fails data sync number `n` (counting every `sync_data` from 0); nothing becomes durable.
    pub fn fail_sync(&self, n: u64) {
        self.state.borrow_mut().failing_syncs.push(n);
    }

    /// Mutating operations performed so far (every call but `open`, `list` and `read_at`).
    pub fn ops(&self) -> u64 {
        self.state.borrow().ops
    }

    /// `write_at` calls so far.
    pub fn writes(&self) -> u64 {
        self.state.borrow().writes
    }

    /// `sync_data` calls so far.
    pub fn syncs(&self) -> u64 {
        self.state.borrow().syncs
    }

    /// The current contents of file `path`.
    pub fn read_file(&self, path: impl AsRef<Path>) -> Option<Vec<u8>> {
        let st = self.state.borrow();
        match st.ns.get(path.as_ref()) {
            Some(&Node::File(ino)) => Some(st.inodes[ino].data.clone()),
            _ => None,
        }
    }

    /// Creates or replaces file `path` with `data`, durably, creating its parents: for planting
    /// damaged files in tests. Not counted as an operation.
    pub fn write_file(&self, path: impl AsRef<Path>, data: &[u8]) {
        let path = path.as_ref();
        let mut st = self.state.borrow_mut();
        let parents: Vec<PathBuf> = path.ancestors().skip(1).map(Path::to_path_buf).collect();
        for p in parents.into_iter().rev() {
            if !st.is_dir(&p) {
                st.log(NsOp::Mkdir(p));
            }
        }
        let ino = if let Some(&Node::File(ino)) = st.ns.get(path) {
            ino
        } else {
            st.inodes.push(Inode::default());
            let ino = st.inodes.len() - 1;
            st.log(NsOp::Create(path.to_path_buf(), ino));
            ino
        };
        let len = st.journal.len();
        st.commit(len);
        st.inodes[ino] = Inode {
            data: data.to_vec(),
            durable: data.to_vec(),
            unsynced: Vec::new(),
        };
    }

    /// Every file path, sorted.
    pub fn files(&self) -> Vec<PathBuf> {
        let st = self.state.borrow();
        st.ns
            .iter()
            .filter(|(_, n)| matches!(n, Node::File(_)))
            .map(|(p, _)| p.clone())
            .collect()
    }

    fn with<T>(&self, f: impl FnOnce(&mut State, u64) -> io::Result<T>) -> io::Result<T> {
        f(&mut self.state.borrow_mut(), self.generation)
    }
}

/// A file of [`FaultyFs`].
#[derive(Debug)]
pub struct FaultyFile {
    fs: FaultyFs,
    ino: usize,
}

impl WalFs for FaultyFs {
    type File = FaultyFile;

    fn create(&self, path: &Path) -> impl Future<Output = io::Result<FaultyFile>> {
        let r = self.with(|st, g| {
            st.tick(g)?;
            if st.ns.contains_key(path) {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("faulty fs: {} exists", path.display()),
                ));
            }
            st.parent_is_dir(path)?;
            st.inodes.push(Inode::default());
            let ino = st.inodes.len() - 1;
            st.log(NsOp::Create(path.to_path_buf(), ino));
            Ok(ino)
        });
        std::future::ready(r.map(|ino| FaultyFile {
            fs: self.clone(),
            ino,
        }))
    }

    fn open(&self, path: &Path) -> impl Future<Output = io::Result<FaultyFile>> {
        let r = self.with(|st, g| {
            st.alive(g)?;
            match st.ns.get(path) {
                Some(&Node::File(ino)) => Ok(ino),
                Some(Node::Dir) => Err(io::Error::other("faulty fs: is a directory")),
                None => Err(not_found(path)),
            }
        });
        std::future::ready(r.map(|ino| FaultyFile {
            fs: self.clone(),
            ino,
        }))
    }

    fn create_dir_all(&self, path: &Path) -> impl Future<Output = io::Result<()>> {
        std::future::ready(self.with(|st, g| {
            st.tick(g)?;
            let missing: Vec<PathBuf> = path
                .ancestors()
                .take_while(|p| !st.is_dir(p))
                .map(Path::to_path_buf)
                .collect();
            for p in missing.into_iter().rev() {
                if st.ns.contains_key(&p) {
                    return Err(io::Error::other("faulty fs: a file is in the way"));
                }
                st.log(NsOp::Mkdir(p));
            }
            Ok(())
        }))
    }

    fn list(&self, path: &Path) -> impl Future<Output = io::Result<Vec<String>>> {
        std::future::ready(self.with(|st, g| {
            st.alive(g)?;
            if !st.is_dir(path) {
                return Err(not_found(path));
            }
            Ok(st
                .ns
                .keys()
                .filter(|k| k.parent() == Some(path))
                .filter_map(|k| k.file_name()?.to_str().map(str::to_owned))
                .collect())
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> impl Future<Output = io::Result<()>> {
        std::future::ready(self.with(|st, g| {
            st.tick(g)?;
            if !st.ns.contains_key(from) {
                return Err(not_found(from));
            }
            st.parent_is_dir(to)?;
            if st.ns.get(to) == Some(&Node::Dir) && st.ns.keys().any(|k| k.parent() == Some(to)) {
                return Err(io::Error::other(
                    "faulty fs: rename onto a non-empty directory",
                ));
            }
            st.log(NsOp::Rename(from.to_path_buf(), to.to_path_buf()));
            Ok(())
        }))
    }

    fn remove_file(&self, path: &Path) -> impl Future<Output = io::Result<()>> {
        std::future::ready(self.with(|st, g| {
            st.tick(g)?;
            match st.ns.get(path) {
                Some(Node::File(_)) => {
                    st.log(NsOp::Remove(path.to_path_buf()));
                    Ok(())
                }
                Some(Node::Dir) => Err(io::Error::other("faulty fs: is a directory")),
                None => Err(not_found(path)),
            }
        }))
    }

    fn remove_dir_all(&self, path: &Path) -> impl Future<Output = io::Result<()>> {
        std::future::ready(self.with(|st, g| {
            st.tick(g)?;
            match st.ns.get(path) {
                Some(Node::Dir) => {
                    st.log(NsOp::RemoveAll(path.to_path_buf()));
                    Ok(())
                }
                Some(Node::File(_)) => Err(io::Error::other("faulty fs: not a directory")),
                None => Err(not_found(path)),
            }
        }))
    }

    fn sync_dir(&self, path: &Path) -> impl Future<Output = io::Result<()>> {
        std::future::ready(self.with(|st, g| {
            st.tick(g)?;
            if !st.is_dir(path) {
                return Err(not_found(path));
            }
            if let Some(last) = st.journal.iter().rposition(|op| op.touches(path)) {
                st.commit(last + 1);
            }
            Ok(())
        }))
    }
}

impl WalFile for FaultyFile {
    fn write_at(&mut self, buf: Vec<u8>, pos: u64) -> impl Future<Output = BufResult<(), Vec<u8>>> {
        let ino = self.ino;
        let r = self.fs.with(|st, g| {
            st.tick(g)?;
            let n = st.writes;
            st.writes += 1;
            let pos = usize::try_from(pos).map_err(io::Error::other)?;
            let (keep, fail) = match st.failing_writes.remove(&n) {
                None => (buf.len(), false),
                Some(keep) => (keep.unwrap_or(0).min(buf.len()), true),
            };
            let inode = &mut st.inodes[ino];
            write_into(&mut inode.data, pos, &buf[..keep]);
            inode.unsynced.push(DataOp::Write {
                pos,
                bytes: buf[..keep].to_vec(),
            });
            if fail {
                return Err(io::Error::other(format!("faulty fs: write {n} fails")));
            }
            Ok(())
        });
        std::future::ready((r, buf))
    }

    fn read_at(
        &mut self,
        mut buf: Vec<u8>,
        pos: u64,
    ) -> impl Future<Output = BufResult<usize, Vec<u8>>> {
        let ino = self.ino;
        let r = self.fs.with(|st, g| {
            st.alive(g)?;
            let data = &st.inodes[ino].data;
            let start = usize::try_from(pos).map_or(data.len(), |p| p.min(data.len()));
            let n = (buf.capacity() - buf.len()).min(data.len() - start);
            buf.extend_from_slice(&data[start..start + n]);
            Ok(n)
        });
        std::future::ready((r, buf))
    }

    fn sync_data(&mut self) -> impl Future<Output = io::Result<()>> {
        let ino = self.ino;
        std::future::ready(self.fs.with(|st, g| {
            st.tick(g)?;
            let n = st.syncs;
            st.syncs += 1;
            if let Some(i) = st.failing_syncs.iter().position(|&s| s == n) {
                st.failing_syncs.swap_remove(i);
                return Err(io::Error::other(format!("faulty fs: sync {n} fails")));
            }
            let inode = &mut st.inodes[ino];
            for op in inode.unsynced.drain(..) {
                match op {
                    DataOp::Write { pos, bytes } => write_into(&mut inode.durable, pos, &bytes),
                    DataOp::SetLen(len) => inode.durable.resize(len, 0),
                }
            }
            Ok(())
        }))
    }

    fn set_len(&mut self, len: u64) -> impl Future<Output = io::Result<()>> {
        let ino = self.ino;
        std::future::ready(self.fs.with(|st, g| {
            st.tick(g)?;
            let len = usize::try_from(len).map_err(io::Error::other)?;
            let inode = &mut st.inodes[ino];
            inode.data.resize(len, 0);
            inode.unsynced.push(DataOp::SetLen(len));
            Ok(())
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::fs::block_on;

    #[test]
    fn synced_data_and_names_survive_a_crash() {
        let fs = FaultyFs::new(1);
        block_on(async {
            fs.create_dir_all(Path::new("/w")).await.unwrap();
            let mut f = fs.create(Path::new("/w/a")).await.unwrap();
            fs.sync_dir(Path::new("/w")).await.unwrap();
            let (r, _) = f.write_at(b"hello".to_vec(), 0).await;
            r.unwrap();
            f.sync_data().await.unwrap();
            let (r, _) = f.write_at(b" world".to_vec(), 5).await;
            r.unwrap();
            fs.create(Path::new("/w/b")).await.unwrap();
        });
        fs.crash();
        assert!(fs.has_crashed());
        let data = fs.read_file("/w/a").unwrap();
        assert!(data.starts_with(b"hello") && b"hello world".starts_with(&data));
        // Old handles are dead.
        assert!(block_on(fs.create(Path::new("/w/c"))).is_err());
        let fs = fs.restart();
        assert!(block_on(fs.create(Path::new("/w/c"))).is_ok());
    }

    #[test]
    fn unsynced_names_may_be_lost_synced_ones_are_not() {
        for seed in 0..20 {
            let fs = FaultyFs::new(seed);
            block_on(async {
                fs.create_dir_all(Path::new("/w")).await.unwrap();
                fs.create(Path::new("/w/a")).await.unwrap();
                fs.sync_dir(Path::new("/w")).await.unwrap();
                fs.create(Path::new("/w/b")).await.unwrap();
                fs.rename(Path::new("/w/a"), Path::new("/w/c"))
                    .await
                    .unwrap();
            });
            fs.crash();
            let files = fs.files();
            // a or c, never both, never neither; b only if kept before the rename
            assert_eq!(
                usize::from(files.contains(&"/w/a".into()))
                    + usize::from(files.contains(&"/w/c".into())),
                1
            );
            if files.contains(&"/w/c".into()) {
                assert!(files.contains(&"/w/b".into()));
            }
        }
    }

    #[test]
    fn crash_at_an_operation_and_faults() {
        let fs = FaultyFs::new(7);
        fs.fail_write(1);
        fs.tear_write(2, 2);
        fs.fail_sync(0);
        block_on(async {
            let mut f = fs.create(Path::new("/f")).await.unwrap();
            assert!(f.write_at(b"ab".to_vec(), 0).await.0.is_ok());
            assert!(f.write_at(b"cd".to_vec(), 2).await.0.is_err());
            assert!(f.write_at(b"efgh".to_vec(), 2).await.0.is_err());
            assert!(f.sync_data().await.is_err());
            assert!(f.sync_data().await.is_ok());
            assert_eq!(fs.read_file("/f").unwrap(), b"abef");
            fs.crash_at(fs.ops() + 1);
            assert!(f.set_len(1).await.is_ok());
            assert!(f.set_len(0).await.is_err());
        });
        assert!(fs.has_crashed());
    }
}
