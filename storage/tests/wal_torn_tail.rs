//! Damage at the end of the log and in its middle. The last segment is cut at every byte offset
//! of its last records (exhaustively where records cross a page boundary or leave padding, at
//! every fragment boundary and a stride inside a record of several pages) and bits are flipped
//! there: replay returns exactly the records wholly written before the damage, reports where it
//! stopped, and after `repair` the WAL appends and replays the old records then the new ones.
//! Damage before the last segment, a missing segment and valid-CRC garbage are errors.

#[path = "wal_support.rs"]
mod support;

use std::path::{Path, PathBuf};

use strata_storage::wal::reader::{CorruptionReason, SegmentId};
use strata_storage::wal::record::{SamplesEncoder, encode_tenant};
use strata_storage::wal::segment::{HEADER_SIZE, MIN_FRAGMENT, PAGE_SIZE, segment_name};
use strata_storage::wal::{FaultyFs, Wal, WalFs, WalOptions, block_on, repair};
use support::{Rec, log, read_all, replay_ok};

const DIR: &str = "/wal";

/// A log of two segments whose last one ends with records placed around page boundaries.
struct Layout {
    /// Records of segment 0.
    head: Vec<Rec>,
    /// Records of segment 1 with their end offsets.
    tail: Vec<(Rec, u64)>,
    seg0: Vec<u8>,
    seg1: Vec<u8>,
    /// Offsets to cut or flip at.
    offsets: Vec<u64>,
}

fn seg_path(n: u32) -> PathBuf {
    Path::new(DIR).join(segment_name(n))
}

fn build() -> Layout {
    let fs = FaultyFs::new(0);
    let page = PAGE_SIZE as u64;
    block_on(async {
        let mut wal = Wal::open(fs.clone(), DIR, WalOptions::default())
            .await
            .unwrap();
        let head: Vec<Rec> = (0..5)
            .map(|i| Rec::sized("a", i, 100 * i as usize + 1))
            .collect();
        for r in &head {
            log(&mut wal, r);
        }
        wal.sync().await.unwrap();
        wal.cut_segment();
        let mut tail = Vec::new();
        let mut end = 0;
        let mut add = |wal: &mut Wal<FaultyFs>, r: Rec| {
            log(wal, &r);
            block_on(wal.sync()).unwrap();
            let e = fs.read_file(seg_path(1)).unwrap().len() as u64;
            tail.push((r, e));
            e
        };
        // Fillers up to a few hundred bytes before the end of page 0.
        while end < page - 1100 {
            end = add(&mut wal, Rec::sized("a", 10, 900));
        }
        let mut offsets: Vec<u64> = Vec::new();
        let w1 = end;
        add(&mut wal, Rec::sized("a", 11, 1500)); // crosses into page 1
        end = add(&mut wal, Rec::sized("a", 12, 30));
        offsets.extend(w1..=end);
        // A filler up to ~300 bytes before the end of page 1.
        end = add(
            &mut wal,
            Rec::sized("a", 13, (2 * page - 300 - end - 23) as usize),
        );
        let w2 = end;
        let room = 2 * page - end;
        assert!((200..400).contains(&room), "{room}");
        // Leaves 3 bytes of padding (22 bytes of framing and encoding for this size).
        end = add(&mut wal, Rec::sized("a", 14, (room - 3 - 22) as usize));
        assert_eq!(2 * page - end, 3);
        let d = add(&mut wal, Rec::sized("a", 15, 40));
        offsets.extend(w2..=d);
        // Three pages: first, middle, last fragments.
        end = add(&mut wal, Rec::sized("a", 16, 2 * PAGE_SIZE + 100));
        for boundary in [d, 3 * page, 4 * page, end] {
            offsets.extend(boundary.saturating_sub(24)..=boundary + 24);
        }
        offsets.extend((d..end).step_by(61));
        let last = add(&mut wal, Rec::sized("a", 17, 10));
        offsets.extend(end..=last);
        offsets.retain(|&o| o <= last);
        offsets.sort_unstable();
        offsets.dedup();
        Layout {
            head,
            tail,
            seg0: fs.read_file(seg_path(0)).unwrap(),
            seg1: fs.read_file(seg_path(1)).unwrap(),
            offsets,
        }
    })
}

/// A file system holding segment 0 and `seg1`.
fn planted(l: &Layout, seg1: &[u8]) -> FaultyFs {
    let fs = FaultyFs::new(1);
    fs.write_file(seg_path(0), &l.seg0);
    fs.write_file(seg_path(1), seg1);
    fs
}

/// Records expected when the last segment's good part ends before byte `at`.
fn expected_before(l: &Layout, at: u64) -> (Vec<Rec>, u64) {
    let mut recs = l.head.clone();
    let mut good = 0;
    for (r, e) in &l.tail {
        if *e <= at {
            recs.push(r.clone());
            good = *e;
        }
    }
    (recs, good)
}

/// Repairs (if needed), appends one record and checks the log replays old then new.
fn repair_and_append(
    fs: &FaultyFs,
    mut want: Vec<Rec>,
    torn: Option<&strata_storage::wal::Corruption>,
) {
    let dir = Path::new(DIR);
    block_on(async {
        if let Some(c) = torn {
            repair(fs, dir, c).await.unwrap();
        }
        let mut wal = Wal::open(fs.clone(), dir, WalOptions::default())
            .await
            .unwrap();
        let new = Rec::samples("b", &[(1, 1, 1.0), (2, 2, 2.0)]);
        log(&mut wal, &new);
        wal.sync().await.unwrap();
        want.push(new);
    });
    let (back, stats) = replay_ok(fs, dir);
    assert!(stats.torn_tail.is_none());
    assert_eq!(back, want);
}

#[test]
fn a_cut_at_every_offset_of_the_tail_loses_exactly_the_records_it_cuts() {
    let l = build();
    assert!(l.offsets.len() > 3000, "{}", l.offsets.len());
    for &at in &l.offsets {
        let fs = planted(&l, &l.seg1[..at as usize]);
        let (want, good) = expected_before(&l, at);
        let (back, stats) = replay_ok(&fs, Path::new(DIR));
        assert_eq!(back, want, "cut at {at}");
        let room = PAGE_SIZE - (good % PAGE_SIZE as u64) as usize;
        let clean = at == good || (room < MIN_FRAGMENT && at <= good + room as u64);
        match &stats.torn_tail {
            None => assert!(clean, "cut at {at}: no torn tail reported"),
            Some(c) => {
                assert!(!clean, "cut at {at}: {c}");
                assert_eq!(c.segment, SegmentId::Segment(1));
                assert_eq!(c.truncate_at, good, "cut at {at}: {c}");
                assert!(c.offset >= good && c.offset <= at, "cut at {at}: {c}");
            }
        }
        repair_and_append(&fs, want, stats.torn_tail.as_ref());
    }
}

#[test]
fn a_bit_flip_in_the_tail_stops_replay_before_the_damaged_record() {
    let l = build();
    for (i, &at) in l.offsets.iter().enumerate() {
        if at as usize >= l.seg1.len() {
            continue;
        }
        let mut seg1 = l.seg1.clone();
        seg1[at as usize] ^= 1 << (i % 8);
        let fs = planted(&l, &seg1);
        let (want, good) = expected_before(&l, at);
        let (back, stats) = replay_ok(&fs, Path::new(DIR));
        assert_eq!(back, want, "flip at {at}");
        let c = stats.torn_tail.as_ref().expect("damage reported");
        assert_eq!(c.truncate_at, good, "flip at {at}: {c}");
        if i % 16 == 0 {
            repair_and_append(&fs, want, Some(c));
        }
    }
}

#[test]
fn damage_before_the_last_segment_is_an_error() {
    let l = build();
    for at in (0..l.seg0.len()).step_by(7) {
        let mut seg0 = l.seg0.clone();
        seg0[at] ^= 0x10;
        let fs = FaultyFs::new(0);
        fs.write_file(seg_path(0), &seg0);
        fs.write_file(seg_path(1), &l.seg1);
        let (back, end) = read_all(&fs, Path::new(DIR));
        let c = end.expect_err("corruption in the middle");
        assert_eq!(c.segment, SegmentId::Segment(0));
        assert!(back.len() < l.head.len());
        assert_eq!(back, l.head[..back.len()]);
        // The caller may choose to cut there.
        repair_and_append(&fs, back, Some(&c));
    }
}

#[test]
fn garbage_and_zeros_after_the_last_record_are_a_torn_tail() {
    let l = build();
    let (all, end) = expected_before(&l, u64::MAX);
    for junk in [
        vec![0u8; 100],
        vec![0xab; 5],
        vec![1, 0, 0, 0, 0, 0, 0, 0, 0],
        vec![0; 3],
    ] {
        let mut seg1 = l.seg1.clone();
        seg1.extend_from_slice(&junk);
        let fs = planted(&l, &seg1);
        let (back, stats) = replay_ok(&fs, Path::new(DIR));
        assert_eq!(back, all);
        let c = stats.torn_tail.expect("junk reported");
        assert_eq!(c.truncate_at, end);
        repair_and_append(&fs, all.clone(), Some(&c));
        assert_eq!(
            fs.read_file(seg_path(1)).unwrap().len() as u64,
            end,
            "truncated at the last good record"
        );
    }
}

#[test]
fn zero_length_segments_are_empty_not_damaged() {
    let l = build();
    let fs = FaultyFs::new(0);
    fs.write_file(seg_path(0), &l.seg0);
    fs.write_file(seg_path(1), &[]);
    fs.write_file(seg_path(2), &l.seg1);
    fs.write_file(seg_path(3), &[]);
    let (back, stats) = replay_ok(&fs, Path::new(DIR));
    assert!(stats.torn_tail.is_none());
    assert_eq!(back, expected_before(&l, u64::MAX).0);
}

#[test]
fn a_missing_segment_is_an_error() {
    let l = build();
    let fs = FaultyFs::new(0);
    fs.write_file(seg_path(0), &l.seg0);
    fs.write_file(seg_path(2), &l.seg1);
    let (back, end) = read_all(&fs, Path::new(DIR));
    let c = end.expect_err("gap");
    assert_eq!(c.reason, CorruptionReason::MissingSegment { missing: 1 });
    assert_eq!(c.segment, SegmentId::Segment(2));
    assert_eq!(back, l.head);
    repair_and_append(&fs, l.head.clone(), Some(&c));
}

/// Whether a corruption reason is the one a case expects.
type IsExpected = fn(&CorruptionReason) -> bool;

/// One full fragment holding `rec`.
fn fragment(rec: &[u8]) -> Vec<u8> {
    let mut f = vec![1];
    f.extend_from_slice(&(rec.len() as u16).to_be_bytes());
    f.extend_from_slice(&crc32c::crc32c(rec).to_be_bytes());
    f.extend_from_slice(rec);
    f
}

#[test]
fn a_valid_crc_over_a_bad_record_is_an_error_even_at_the_tail() {
    let l = build();
    let (all, end) = expected_before(&l, u64::MAX);
    let mut decl = Vec::new();
    encode_tenant(&mut decl, 9, "nine");
    let mut undeclared = Vec::new();
    SamplesEncoder::new(&mut undeclared, 8).add(1, 2, 3.0);
    let cases: Vec<(Vec<u8>, IsExpected)> = vec![
        (vec![77, 1, 2], |r| matches!(r, CorruptionReason::Record(_))),
        (vec![34, 0, 0x80], |r| {
            matches!(r, CorruptionReason::Record(_))
        }),
        (undeclared, |r| {
            matches!(r, CorruptionReason::UndeclaredTenant(8))
        }),
    ];
    for (rec, reason) in cases {
        let mut seg1 = l.seg1.clone();
        seg1.extend(fragment(&decl));
        seg1.extend(fragment(&rec));
        let fs = planted(&l, &seg1);
        let (back, res) = read_all(&fs, Path::new(DIR));
        assert_eq!(back, all);
        let c = res.expect_err("undecodable record");
        assert!(reason(&c.reason), "{c}");
        assert_eq!(c.truncate_at, end + (HEADER_SIZE + decl.len()) as u64);
    }
}

#[test]
fn a_prometheus_wal_fails_on_its_first_record() {
    // A Prometheus series record (type 1) in a valid fragment.
    let fs = FaultyFs::new(0);
    fs.write_file(seg_path(0), &fragment(&[1, 0, 0, 0, 0, 0, 0, 0, 1, 0]));
    let (back, res) = read_all(&fs, Path::new(DIR));
    assert!(back.is_empty());
    assert!(matches!(
        res.expect_err("not our format").reason,
        CorruptionReason::Record(_)
    ));
    let _ = block_on(fs.list(Path::new(DIR))).unwrap();
}

#[test]
fn a_hole_of_whole_pages_stops_replay_at_the_hole() {
    // r0 and r1 fill pages 0 and 1 exactly (r0 after its tenant's 11-byte declaration), r2 and
    // r3 start on page 2. Losing page 1 (writeback in any order) must not let r2 through.
    let fs = FaultyFs::new(0);
    let recs = [
        Rec::sized("a", 0, PAGE_SIZE - 20 - 3 - 11),
        Rec::sized("a", 1, PAGE_SIZE - 20 - 3),
        Rec::sized("a", 2, 10),
        Rec::sized("a", 3, 10),
    ];
    block_on(async {
        let mut wal = Wal::open(fs.clone(), DIR, WalOptions::default())
            .await
            .unwrap();
        for r in &recs {
            log(&mut wal, r);
        }
        wal.sync().await.unwrap();
    });
    let mut seg = fs.read_file(seg_path(0)).unwrap();
    assert_eq!(
        seg[2 * PAGE_SIZE],
        1,
        "r2 starts page 2 with a full fragment"
    );
    for hole in [PAGE_SIZE..2 * PAGE_SIZE, 2 * PAGE_SIZE..2 * PAGE_SIZE + 31] {
        seg[hole].fill(0);
        fs.write_file(seg_path(0), &seg);
        let (back, stats) = replay_ok(&fs, Path::new(DIR));
        assert_eq!(back, recs[..1]);
        let c = stats.torn_tail.expect("hole reported");
        assert_eq!(
            (c.truncate_at, c.offset),
            (PAGE_SIZE as u64, PAGE_SIZE as u64)
        );
    }
}

/// A segment made from the preallocated file is the segment's size with zeros after its records;
/// replay stops at the zeros as at a torn tail and `repair` cuts them; a sealed segment is
/// trimmed to its records before the next one starts.
#[test]
fn preallocated_segments_end_in_zeros_only_while_they_are_last() {
    use strata_storage::wal::PREALLOCATED_NAME;
    let fs = FaultyFs::new(0);
    let size = 4 * PAGE_SIZE as u64;
    let opts = WalOptions { segment_size: size };
    let dir = Path::new(DIR);
    let recs: Vec<Rec> = (0..6)
        .map(|i| Rec::sized("a", i, 5000 * i as usize + 7))
        .collect();
    block_on(async {
        let mut wal = Wal::open(fs.clone(), DIR, opts.clone()).await.unwrap();
        let job = wal.start_prealloc().expect("nothing prepared yet");
        assert!(wal.start_prealloc().is_none(), "one preparation at a time");
        wal.finish_prealloc(job.run().await).unwrap();
        assert!(wal.is_preallocated());
        assert_eq!(
            fs.read_file(dir.join(PREALLOCATED_NAME)).unwrap(),
            vec![0; size as usize]
        );
        for r in &recs[..3] {
            log(&mut wal, r);
        }
        wal.sync().await.unwrap();
        assert!(!wal.is_preallocated(), "segment 0 took the prepared file");
        assert!(fs.read_file(dir.join(PREALLOCATED_NAME)).is_none());
        let seg0 = fs.read_file(seg_path(0)).unwrap();
        assert_eq!(seg0.len() as u64, size, "the preallocated length");

        // Live: replay reads the records, then stops at the zeros.
        let (got, end) = read_all(&fs, dir);
        assert_eq!(got, recs[..3]);
        let torn = end.unwrap().torn_tail.expect("zeros after the records");
        let data_end = seg0.iter().rposition(|&b| b != 0).unwrap() as u64 + 1;
        assert!(torn.truncate_at >= data_end && torn.truncate_at < data_end + 8);

        // Sealed: trimmed to its records before segment 1 exists.
        let job = wal.start_prealloc().unwrap();
        wal.finish_prealloc(job.run().await).unwrap();
        wal.cut_segment();
        for r in &recs[3..] {
            log(&mut wal, r);
        }
        wal.sync().await.unwrap();
        assert_eq!(
            fs.read_file(seg_path(0)).unwrap().len() as u64,
            torn.truncate_at
        );
        assert_eq!(fs.read_file(seg_path(1)).unwrap().len() as u64, size);
    });

    // After a crash: everything synced replays, the zeros are cut, and a reopened WAL appends
    // after them (deleting a leftover prepared file).
    let fs = fs.restart();
    let (got, end) = read_all(&fs, dir);
    assert_eq!(got, recs);
    let torn = end.unwrap().torn_tail.expect("the last segment's zeros");
    assert_eq!(torn.segment, SegmentId::Segment(1));
    block_on(async {
        repair(&fs, dir, &torn).await.unwrap();
        let mut wal = Wal::open(fs.clone(), DIR, opts.clone()).await.unwrap();
        let job = wal.start_prealloc().unwrap();
        wal.finish_prealloc(job.run().await).unwrap();
        drop(wal);
        let mut wal = Wal::open(fs.clone(), DIR, opts).await.unwrap();
        assert!(
            fs.read_file(dir.join(PREALLOCATED_NAME)).is_none(),
            "leftover deleted"
        );
        log(&mut wal, &Rec::sized("b", 9, 10));
        wal.sync().await.unwrap();
    });
    let (got, stats) = replay_ok(&fs, dir);
    assert_eq!(got.len(), recs.len() + 1);
    assert!(
        stats.torn_tail.is_none(),
        "segment 2 was created empty: no zeros"
    );
}

/// A segment created empty (no prepared file yet, as right after start-up) is cut as soon as a
/// prepared file is ready, so the records after go to the prepared file.
#[test]
fn a_segment_created_empty_gives_way_to_the_prepared_file() {
    let fs = FaultyFs::new(0);
    let size = 8 * PAGE_SIZE as u64;
    let dir = Path::new(DIR);
    let recs: Vec<Rec> = (0..4).map(|i| Rec::sized("a", i, 3000)).collect();
    block_on(async {
        let mut wal = Wal::open(fs.clone(), DIR, WalOptions { segment_size: size })
            .await
            .unwrap();
        log(&mut wal, &recs[0]);
        wal.sync().await.unwrap();
        let job = wal.start_prealloc().unwrap();
        wal.finish_prealloc(job.run().await).unwrap();
        assert_eq!(wal.current_segment(), 1, "segment 0 was cut");
        for r in &recs[1..] {
            log(&mut wal, r);
        }
        wal.sync().await.unwrap();
        assert!(!wal.is_preallocated());
        assert_eq!(fs.read_file(seg_path(1)).unwrap().len() as u64, size);
        let seg0 = fs.read_file(seg_path(0)).unwrap();
        assert!(seg0.len() < 4000, "segment 0 holds one record");
    });
    let (got, _) = read_all(&fs, dir);
    assert_eq!(got, recs);
}
