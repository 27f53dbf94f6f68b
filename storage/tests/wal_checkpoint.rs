//! Checkpoints: the state a log amounts to, written as a checkpoint (live series, samples from
//! `min_t`, tombstones), replaces the segments it covers; replay (checkpoint + later segments)
//! gives the expected state; a crash at any operation of writing one leaves either the old log or
//! the new checkpoint, never damage; abandoned attempts are cleaned up; a damaged checkpoint is an
//! error that `repair` refuses to paper over.

#[path = "wal_support.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use strata_storage::wal::reader::{ReadError, SegmentId};
use strata_storage::wal::segment::{PAGE_SIZE, checkpoint_name, checkpoint_tmp_name, segment_name};
use strata_storage::wal::{
    Checkpoint, FaultyFs, StdFs, Wal, WalFs, WalOptions, WalReader, block_on, repair, replay,
};
use support::{Rec, log, replay_ok};

const DIR: &str = "/wal";

fn opts() -> WalOptions {
    WalOptions {
        segment_size: PAGE_SIZE as u64,
    }
}

/// What a log amounts to, with set semantics (replaying a record twice changes nothing).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct State {
    series: BTreeMap<(String, u32), Vec<(String, String)>>,
    samples: BTreeSet<(String, u32, i64, u64)>,
    tombstones: BTreeSet<(String, u32, i64, i64)>,
}

impl State {
    fn apply(&mut self, r: &Rec) {
        match r {
            Rec::Series { tenant, series } => {
                for (s, labels) in series {
                    let old = self.series.insert((tenant.clone(), *s), labels.clone());
                    assert!(old.is_none_or(|o| o == *labels), "series ref reused");
                }
            }
            Rec::Samples { tenant, samples } => {
                for &(s, t, v) in samples {
                    self.samples.insert((tenant.clone(), s, t, v));
                }
            }
            Rec::Tombstones { tenant, ranges } => {
                for &(s, a, b) in ranges {
                    self.tombstones.insert((tenant.clone(), s, a, b));
                }
            }
        }
    }

    fn of(recs: &[Rec]) -> State {
        let mut s = State::default();
        for r in recs {
            s.apply(r);
        }
        s
    }

    fn union(&self, other: &State) -> State {
        let mut s = self.clone();
        s.series.extend(other.series.clone());
        s.samples.extend(other.samples.iter().cloned());
        s.tombstones.extend(other.tombstones.iter().cloned());
        s
    }

    /// What a checkpoint keeps: series `keep` accepts, their samples from `min_t`.
    fn filtered(&self, keep: impl Fn(&str, u32) -> bool, min_t: i64) -> State {
        let mut s = State::default();
        for ((t, r), labels) in &self.series {
            if keep(t, *r) {
                s.series.insert((t.clone(), *r), labels.clone());
            }
        }
        s.samples = (self.samples.iter())
            .filter(|(t, r, ts, _)| keep(t, *r) && *ts >= min_t)
            .cloned()
            .collect();
        s.tombstones = (self.tombstones.iter())
            .filter(|(t, r, ..)| keep(t, *r))
            .cloned()
            .collect();
        s
    }

    /// The state as records, in the order a checkpoint writes them (tenant by tenant: series,
    /// then samples, then tombstones, in batches).
    fn records(&self) -> Vec<Rec> {
        let tenants: BTreeSet<&String> = self.series.keys().map(|(t, _)| t).collect();
        let mut out = Vec::new();
        for tenant in tenants {
            let series: Vec<_> = (self.series.iter())
                .filter(|((t, _), _)| t == tenant)
                .map(|((_, r), l)| (*r, l.clone()))
                .collect();
            for chunk in series.chunks(7) {
                out.push(Rec::Series {
                    tenant: tenant.clone(),
                    series: chunk.to_vec(),
                });
            }
            let samples: Vec<_> = (self.samples.iter())
                .filter(|(t, ..)| t == tenant)
                .map(|&(_, r, ts, v)| (r, ts, v))
                .collect();
            for chunk in samples.chunks(50) {
                out.push(Rec::Samples {
                    tenant: tenant.clone(),
                    samples: chunk.to_vec(),
                });
            }
            let ranges: Vec<_> = (self.tombstones.iter())
                .filter(|(t, ..)| t == tenant)
                .map(|&(_, r, a, b)| (r, a, b))
                .collect();
            for chunk in ranges.chunks(20) {
                out.push(Rec::Tombstones {
                    tenant: tenant.clone(),
                    ranges: chunk.to_vec(),
                });
            }
        }
        out
    }
}

/// A pseudo-random workload: series created before their samples, `n` batches.
fn workload(seed: u64, first_ref: u32, n: usize) -> Vec<Rec> {
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut next = move || {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        x >> 33
    };
    let mut out = Vec::new();
    let mut refs: BTreeMap<&str, u32> = BTreeMap::new();
    for i in 0..n {
        let tenant = ["a", "b", "c"][(next() % 3) as usize];
        let top = refs.entry(tenant).or_insert(first_ref);
        let new = if *top == first_ref {
            1 + next() % 4
        } else {
            next() % 5
        } as u32;
        if new > 0 {
            let series = (*top..*top + new)
                .map(|r| {
                    let labels = vec![
                        ("__name__".to_owned(), format!("m{}", r % 7)),
                        (
                            "i".to_owned(),
                            format!("{r}-{}", "x".repeat((next() % 300) as usize)),
                        ),
                    ];
                    (r, labels)
                })
                .collect();
            out.push(Rec::Series {
                tenant: tenant.to_owned(),
                series,
            });
            *top += new;
        }
        if *top > first_ref {
            let samples = (0..=next() % 60)
                .map(|j| {
                    let r = first_ref + (next() % u64::from(*top - first_ref)) as u32;
                    (r, (i as i64) * 1000 + j as i64, next() as f64)
                })
                .collect::<Vec<_>>();
            out.push(Rec::samples(tenant, &samples));
            if next() % 10 == 0 {
                out.push(Rec::Tombstones {
                    tenant: tenant.to_owned(),
                    ranges: vec![(first_ref, 0, i as i64)],
                });
            }
        }
    }
    out
}

fn keep(_tenant: &str, r: u32) -> bool {
    r % 5 != 3
}

/// Logs `recs` and syncs.
fn append<F: WalFs>(wal: &mut Wal<F>, recs: &[Rec]) {
    for r in recs {
        log(wal, r);
    }
    block_on(wal.sync()).unwrap();
}

/// Writes a checkpoint of `state` covering segments `..= upto`.
async fn write_checkpoint<F: WalFs>(
    fs: &F,
    dir: &Path,
    upto: u32,
    state: &State,
) -> std::io::Result<()> {
    let mut c = Checkpoint::create(fs.clone(), dir, upto, opts()).await?;
    for (i, r) in state.records().iter().enumerate() {
        log(c.wal(), r);
        if i % 10 == 9 {
            c.wal().sync().await?;
        }
    }
    c.finish().await
}

fn replayed_state<F: WalFs>(fs: &F, dir: &Path) -> (State, Option<u32>) {
    let (recs, stats) = replay_ok(fs, dir);
    assert!(stats.torn_tail.is_none());
    (State::of(&recs), stats.checkpoint)
}

fn names<F: WalFs>(fs: &F, dir: &Path) -> BTreeSet<String> {
    block_on(fs.list(dir)).unwrap().into_iter().collect()
}

fn checkpoint_and_replay<F: WalFs>(fs: &F, dir: &Path) {
    let before = workload(1, 0, 150);
    let after = workload(2, 10_000, 30);
    let later = workload(3, 20_000, 30);
    let mut wal = block_on(Wal::open(fs.clone(), dir, opts())).unwrap();
    append(&mut wal, &before);
    let upto = wal.cut_segment().unwrap();
    assert!(upto >= 2, "several segments");
    // The head's state at the cut, as the engine would write it: dropped series and old
    // samples are left out.
    let kept = State::of(&before).filtered(keep, 50_000);
    // Records keep arriving while the checkpoint is written.
    append(&mut wal, &after);
    block_on(write_checkpoint(fs, dir, upto, &kept)).unwrap();
    let listing = names(fs, dir);
    assert!(listing.contains(&checkpoint_name(upto)));
    assert!(!listing.contains(&segment_name(upto)), "{listing:?}");
    assert!(listing.contains(&segment_name(upto + 1)), "{listing:?}");
    let (state, ckpt) = replayed_state(fs, dir);
    assert_eq!(ckpt, Some(upto));
    assert_eq!(state, kept.union(&State::of(&after)));

    // A second checkpoint replaces the first.
    append(&mut wal, &later);
    let upto2 = wal.cut_segment().unwrap();
    let all = kept.union(&State::of(&after)).union(&State::of(&later));
    block_on(write_checkpoint(fs, dir, upto2, &all)).unwrap();
    let listing = names(fs, dir);
    assert_eq!(
        listing,
        BTreeSet::from([checkpoint_name(upto2)]),
        "segments and the old checkpoint are gone"
    );
    assert_eq!(replayed_state(fs, dir), (all.clone(), Some(upto2)));

    // Appending after the checkpoint, and reopening, continue the numbering after it.
    drop(wal);
    let mut wal = block_on(Wal::open(fs.clone(), dir, opts())).unwrap();
    assert_eq!(wal.current_segment(), upto2 + 1);
    let last = workload(4, 30_000, 5);
    append(&mut wal, &last);
    assert_eq!(replayed_state(fs, dir).0, all.union(&State::of(&last)));
}

#[test]
fn checkpoint_then_replay_gives_the_expected_state() {
    checkpoint_and_replay(&FaultyFs::new(0), Path::new(DIR));
}

#[test]
fn checkpoint_on_the_real_file_system() {
    let dir = support::temp_dir("wal-checkpoint");
    checkpoint_and_replay(&StdFs, &dir);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_crash_at_any_operation_of_a_checkpoint_leaves_the_old_log_or_the_new_checkpoint() {
    let dir = Path::new(DIR);
    let before = workload(5, 0, 40);
    let after = workload(6, 10_000, 20);
    let kept = State::of(&before).filtered(keep, 15_000);
    let old = State::of(&before).union(&State::of(&after));
    let new = kept.union(&State::of(&after));
    let mut saw = (false, false);
    for n in 0.. {
        let fs = FaultyFs::new(n);
        let mut wal = block_on(Wal::open(fs.clone(), dir, opts())).unwrap();
        append(&mut wal, &before);
        let upto = wal.cut_segment().unwrap();
        append(&mut wal, &after);
        fs.crash_at(fs.ops() + n);
        let finished = block_on(write_checkpoint(&fs, dir, upto, &kept)).is_ok();
        if !fs.has_crashed() {
            fs.crash();
        }
        let fs = fs.restart();
        let (state, ckpt) = replayed_state(&fs, dir);
        if ckpt == Some(upto) {
            assert_eq!(state, new, "crash at op {n}");
            saw.1 = true;
        } else {
            assert!(!finished, "crash at op {n}: a finished checkpoint was lost");
            assert_eq!(state, old, "crash at op {n}");
            saw.0 = true;
        }
        // The WAL opens (cleaning up) and a checkpoint can be taken again.
        let mut wal = block_on(Wal::open(fs.clone(), dir, opts())).unwrap();
        assert!(!names(&fs, dir).iter().any(|n| n.contains(".tmp")));
        append(&mut wal, &workload(7, 40_000, 2));
        let upto = wal.cut_segment().unwrap();
        let (state, _) = replayed_state(&fs, dir);
        block_on(write_checkpoint(&fs, dir, upto, &state)).unwrap();
        assert_eq!(replayed_state(&fs, dir), (state, Some(upto)));
        if finished {
            break;
        }
    }
    assert_eq!(saw, (true, true));
}

#[test]
fn abandoned_checkpoints_are_ignored_and_removed() {
    let fs = FaultyFs::new(0);
    let dir = Path::new(DIR);
    let recs = workload(8, 0, 10);
    let mut wal = block_on(Wal::open(fs.clone(), dir, opts())).unwrap();
    append(&mut wal, &recs);
    let upto = wal.cut_segment().unwrap();
    // An attempt that never finished, with garbage in it.
    fs.write_file(
        dir.join(checkpoint_tmp_name(upto)).join(segment_name(0)),
        b"garbage",
    );
    assert_eq!(replayed_state(&fs, dir), (State::of(&recs), None));
    drop(wal);
    block_on(Wal::open(fs.clone(), dir, opts())).unwrap();
    assert!(!names(&fs, dir).contains(&checkpoint_tmp_name(upto)));
    assert_eq!(replayed_state(&fs, dir).0, State::of(&recs));
}

#[test]
fn a_damaged_checkpoint_is_an_error_and_not_repaired() {
    let fs = FaultyFs::new(0);
    let dir = Path::new(DIR);
    let recs = workload(9, 0, 30);
    let mut wal = block_on(Wal::open(fs.clone(), dir, opts())).unwrap();
    append(&mut wal, &recs);
    let upto = wal.cut_segment().unwrap();
    block_on(write_checkpoint(&fs, dir, upto, &State::of(&recs))).unwrap();
    let seg = dir.join(checkpoint_name(upto)).join(segment_name(0));
    let mut data = fs.read_file(&seg).unwrap();
    let at = data.len() - 3;
    data[at] ^= 0x40;
    fs.write_file(&seg, &data);
    let c = block_on(async {
        let mut r = WalReader::open(fs.clone(), dir).await.unwrap();
        loop {
            match r.next().await {
                Ok(Some(_)) => {}
                Ok(None) => panic!("damage in a checkpoint is not a torn tail"),
                Err(ReadError::Corrupt(c)) => break c,
                Err(e) => panic!("{e}"),
            }
        }
    });
    assert!(matches!(c.segment, SegmentId::Checkpoint { checkpoint, .. } if checkpoint == upto));
    let err = block_on(repair(&fs, dir, &c)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn cut_segment_never_skips_a_number() {
    let fs = FaultyFs::new(0);
    let mut wal = block_on(Wal::open(fs.clone(), DIR, opts())).unwrap();
    assert_eq!(wal.cut_segment(), None, "nothing logged");
    append(&mut wal, &workload(10, 0, 2));
    assert_eq!(wal.cut_segment(), Some(0));
    assert_eq!(wal.cut_segment(), Some(0), "segment 1 is empty");
    append(&mut wal, &workload(11, 100, 2));
    assert_eq!(wal.cut_segment(), Some(1));
    assert_eq!(
        names(&fs, Path::new(DIR)),
        BTreeSet::from([segment_name(0), segment_name(1)])
    );
}

#[test]
fn the_reader_counts_files_for_progress_checkpoint_first() {
    let fs = FaultyFs::new(0);
    let dir = Path::new(DIR);
    let before = workload(1, 0, 150);
    let after = workload(2, 10_000, 60);
    let mut wal = block_on(Wal::open(fs.clone(), dir, opts())).unwrap();
    append(&mut wal, &before);
    let upto = wal.cut_segment().unwrap();
    append(&mut wal, &after);
    block_on(write_checkpoint(&fs, dir, upto, &State::of(&before))).unwrap();
    drop(wal);
    let in_checkpoint = names(&fs, &dir.join(checkpoint_name(upto))).len();
    let segments = names(&fs, dir).len() - 1;
    assert!(
        in_checkpoint >= 1 && segments >= 2,
        "{in_checkpoint} + {segments} files"
    );

    // What a progress line reads: the files read so far (counting the one being read), and
    // the total.
    let mut r = block_on(WalReader::open(fs.clone(), dir)).unwrap();
    let total = in_checkpoint + segments;
    assert_eq!(r.files_total(), total);
    let mut seen = Vec::new();
    while block_on(r.next()).unwrap().is_some() {
        let s = r.stats();
        if seen.last().is_none_or(|&(f, _)| f != s.files) {
            seen.push((s.files, s.records));
        }
    }
    let stats = r.stats();
    assert_eq!(stats.files, total);
    assert_eq!(
        seen.iter().map(|&(f, _)| f).collect::<Vec<_>>(),
        (1..=total).collect::<Vec<_>>(),
        "every file is reached, in order"
    );
    assert!(
        seen.windows(2).all(|w| w[0].1 < w[1].1),
        "records grow: {seen:?}"
    );
    assert_eq!(stats, block_on(replay(&fs, dir, |_| {})).unwrap());
}
