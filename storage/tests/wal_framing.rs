//! The WAL writer and reader together: records of every size (within a page, across pages,
//! larger than a segment) round-trip across page and segment boundaries, on the in-memory and
//! the real file system; segments respect their size; tenants are declared once per segment;
//! `sync` with nothing buffered does no I/O; logging goes on while a group commit runs.

#[path = "wal_support.rs"]
mod support;

use std::path::Path;

use proptest::prelude::*;
use strata_storage::wal::segment::{PAGE_SIZE, segment_name};
use strata_storage::wal::{FaultyFs, Record, StdFs, Wal, WalFs, WalOptions, WalReader, block_on};
use support::{Rec, log, replay_ok};

fn opts(segment_size: u64) -> WalOptions {
    WalOptions { segment_size }
}

/// Logs `recs`, syncing after those marked, then once at the end.
fn write_all<F: WalFs>(fs: &F, dir: &Path, o: WalOptions, recs: &[(Rec, bool)]) -> Wal<F> {
    block_on(async {
        let mut wal = Wal::open(fs.clone(), dir, o).await.unwrap();
        for (r, sync) in recs {
            let seq = log(&mut wal, r);
            if *sync {
                assert!(wal.sync().await.unwrap() >= seq);
            }
        }
        let logged = wal.logged_seq();
        assert_eq!(wal.sync().await.unwrap(), logged);
        wal
    })
}

/// Record sizes around the interesting boundaries.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => 1usize..200,
        2 => (PAGE_SIZE - 64)..(PAGE_SIZE + 64),
        1 => 0usize..4 * PAGE_SIZE,
        1 => (4 * PAGE_SIZE)..(9 * PAGE_SIZE),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn records_round_trip_across_pages_and_segments(
        pages in prop_oneof![Just(1u64), Just(2), Just(5), Just(4096)],
        recs in prop::collection::vec(
            (size(), prop_oneof![Just("a"), Just("b"), Just("c")], any::<bool>()), 1..40),
    ) {
        let fs = FaultyFs::new(0);
        let dir = Path::new("/wal");
        let recs: Vec<(Rec, bool)> = recs
            .iter()
            .enumerate()
            .map(|(i, &(len, t, sync))| (Rec::sized(t, i as u32, len), sync))
            .collect();
        write_all(&fs, dir, opts(pages * PAGE_SIZE as u64), &recs);
        let (back, stats) = replay_ok(&fs, dir);
        prop_assert!(stats.torn_tail.is_none());
        let want: Vec<Rec> = recs.into_iter().map(|(r, _)| r).collect();
        prop_assert_eq!(back, want);
        // Only a segment holding one record larger than a segment may exceed the size.
        for f in fs.files() {
            let len = fs.read_file(&f).unwrap().len() as u64;
            if len > pages * PAGE_SIZE as u64 {
                let (n, _) = count_records(&fs, dir, &f);
                prop_assert!(n <= 2, "{} records in oversized {}", n, f.display());
            }
        }
    }

    #[test]
    fn any_records_round_trip(recs in prop::collection::vec((support::rec(50), any::<bool>()), 1..30)) {
        let fs = FaultyFs::new(0);
        let dir = Path::new("/wal");
        write_all(&fs, dir, opts(2 * PAGE_SIZE as u64), &recs);
        let want: Vec<Rec> = recs.into_iter().map(|(r, _)| r).collect();
        prop_assert_eq!(replay_ok(&fs, dir).0, want);
    }
}

/// Records (tenant declarations included) in segment file `f`, and how many are declarations.
fn count_records(fs: &FaultyFs, dir: &Path, f: &Path) -> (usize, usize) {
    let scratch = Path::new("/count");
    let _ = block_on(fs.remove_dir_all(scratch));
    let data = fs.read_file(f).unwrap();
    fs.write_file(scratch.join(segment_name(0)), &data);
    let _ = dir;
    block_on(async {
        let mut r = WalReader::open(fs.clone(), scratch).await.unwrap();
        let (mut n, mut tenants) = (0, 0);
        while let Some(rec) = r.next().await.unwrap() {
            n += 1;
            if matches!(rec, Record::Tenant { .. }) {
                tenants += 1;
            }
        }
        (n, tenants)
    })
}

#[test]
fn a_record_larger_than_a_segment_gets_a_segment_of_its_own() {
    let fs = FaultyFs::new(0);
    let dir = Path::new("/wal");
    let recs = vec![
        (Rec::sized("a", 0, 100), false),
        (Rec::sized("a", 1, 3 * PAGE_SIZE), false),
        (Rec::sized("a", 2, 100), false),
    ];
    write_all(&fs, dir, opts(PAGE_SIZE as u64), &recs);
    let files = fs.files();
    assert_eq!(files.len(), 3, "{files:?}");
    let sizes: Vec<usize> = files
        .iter()
        .map(|f| fs.read_file(f).unwrap().len())
        .collect();
    assert!(sizes[1] > 3 * PAGE_SIZE && sizes[0] < PAGE_SIZE && sizes[2] < PAGE_SIZE);
    for f in &files {
        // each segment declares its tenant again
        assert_eq!(count_records(&fs, dir, f), (2, 1));
    }
    assert_eq!(replay_ok(&fs, dir).0.len(), 3);
}

#[test]
fn tenants_are_declared_once_per_segment() {
    let fs = FaultyFs::new(0);
    let dir = Path::new("/wal");
    let mut recs = Vec::new();
    for i in 0..600 {
        let t = ["a", "b", "c"][i % 3];
        recs.push((Rec::sized(t, i as u32, 1000), i % 7 == 0));
    }
    write_all(&fs, dir, opts(4 * PAGE_SIZE as u64), &recs);
    let files = fs.files();
    assert!(files.len() > 3);
    for f in &files {
        let (n, tenants) = count_records(&fs, dir, f);
        assert!(n > 3);
        assert_eq!(tenants, 3, "{}", f.display());
    }
}

#[test]
fn sync_with_nothing_buffered_does_no_io() {
    let fs = FaultyFs::new(0);
    block_on(async {
        let mut wal = Wal::open(fs.clone(), "/wal", WalOptions::default())
            .await
            .unwrap();
        let ops = fs.ops();
        assert_eq!(wal.sync().await.unwrap(), 0);
        assert!(wal.start_sync().unwrap().is_none());
        assert_eq!(fs.ops(), ops, "no file is created before a record");
        let seq = log(&mut wal, &Rec::samples("a", &[(1, 2, 3.0)]));
        assert_eq!(seq, 2, "the tenant declaration, then the record");
        assert_eq!(wal.sync().await.unwrap(), seq);
        let ops = fs.ops();
        assert_eq!(wal.sync().await.unwrap(), seq);
        assert_eq!(fs.ops(), ops);
        // A record with no entries is not logged.
        let t = wal.tenant("a");
        assert_eq!(wal.log_samples(t, |_| {}), seq);
        assert_eq!(wal.buffered_bytes(), 0);
    });
}

#[test]
fn logging_goes_on_while_a_group_commit_runs() {
    let fs = FaultyFs::new(0);
    let dir = Path::new("/wal");
    block_on(async {
        let mut wal = Wal::open(fs.clone(), dir, opts(PAGE_SIZE as u64))
            .await
            .unwrap();
        let first = log(&mut wal, &Rec::sized("a", 0, 5000));
        let job = wal.start_sync().unwrap().unwrap();
        assert_eq!(job.upto(), first);
        assert!(wal.start_sync().is_err(), "one sync at a time");
        // Logged while the job is in flight, crossing into a new segment.
        let mut last = 0;
        for i in 1..20 {
            last = log(&mut wal, &Rec::sized("b", i, 5000));
        }
        let done = job.run().await;
        assert_eq!(wal.finish_sync(done).unwrap(), first);
        assert!(wal.buffered_bytes() > 0);
        assert_eq!(wal.sync().await.unwrap(), last);
    });
    assert_eq!(replay_ok(&fs, dir).0.len(), 20);
}

#[test]
fn reopening_appends_to_a_new_segment() {
    let fs = FaultyFs::new(0);
    let dir = Path::new("/wal");
    let first: Vec<(Rec, bool)> = (0..5).map(|i| (Rec::sized("a", i, 10), false)).collect();
    let wal = write_all(&fs, dir, WalOptions::default(), &first);
    assert_eq!(wal.current_segment(), 0);
    drop(wal);
    let second: Vec<(Rec, bool)> = (5..9).map(|i| (Rec::sized("b", i, 10), false)).collect();
    let wal = write_all(&fs, dir, WalOptions::default(), &second);
    assert_eq!(wal.current_segment(), 1);
    let want: Vec<Rec> = first.into_iter().chain(second).map(|(r, _)| r).collect();
    assert_eq!(replay_ok(&fs, dir).0, want);
}

#[test]
fn round_trip_on_the_real_file_system() {
    let dir = support::temp_dir("wal-framing");
    let mut recs = Vec::new();
    for i in 0..300u32 {
        let len = [10, 3000, PAGE_SIZE, 2 * PAGE_SIZE + 5][i as usize % 4];
        recs.push((Rec::sized(["x", "y"][i as usize % 2], i, len), i % 10 == 0));
    }
    write_all(&StdFs, &dir, opts(8 * PAGE_SIZE as u64), &recs);
    let more = vec![(
        Rec::samples("z", &[(7, -5, f64::NAN), (9, 10, -0.0)]),
        false,
    )];
    write_all(&StdFs, &dir, opts(8 * PAGE_SIZE as u64), &more);
    let (back, stats) = replay_ok(&StdFs, &dir);
    let want: Vec<Rec> = recs.into_iter().chain(more).map(|(r, _)| r).collect();
    assert_eq!(back, want);
    assert!(stats.files > 10);
    assert!(stats.torn_tail.is_none());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn options_are_validated() {
    let fs = FaultyFs::new(0);
    assert!(WalOptions::default().validate().is_ok());
    let err = block_on(Wal::open(fs, "/wal", opts(100))).err().unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn an_empty_or_missing_directory_is_an_empty_log() {
    let fs = FaultyFs::new(0);
    let (recs, stats) = replay_ok(&fs, Path::new("/nothing"));
    assert!(recs.is_empty());
    assert_eq!(stats.files, 0);
}
