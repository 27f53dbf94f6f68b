//! Every `WalFs` implementation of this crate passes the conformance suite
//! (`strata_storage::wal::conformance`): the real file system and the fault-injecting one.

#[path = "wal_support.rs"]
mod support;

use std::path::Path;

use strata_storage::wal::{FaultyFs, StdFs, WalFs, block_on, conformance};

#[test]
fn std_fs_conforms() {
    let dir = support::temp_dir("wal-fs-conformance");
    block_on(conformance::check(&StdFs, &dir));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn faulty_fs_conforms() {
    let fs = FaultyFs::new(0);
    let dir = Path::new("/shard-0/wal");
    block_on(fs.create_dir_all(dir)).unwrap();
    block_on(conformance::check(&fs, dir));
    // After a crash, a restarted handle conforms too.
    fs.crash();
    let fs = fs.restart();
    block_on(conformance::check(&fs, dir));
}
