//! Replay cost: logs 1M samples (scrape-like batches of 1000) to the real file system, replays
//! them, and checks that replay allocates per file, never per record (a counting allocator
//! wraps the system one in this test binary). The time is printed, not asserted: this runs in
//! the unoptimised test profile on shared machines.

#[path = "wal_support.rs"]
mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Instant;

use strata_storage::wal::{Record, StdFs, Wal, WalOptions, WalReader, block_on};

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

/// Counts this thread's allocations.
struct Counting;

// SAFETY: forwards every call to `System` unchanged; counting touches only a const-initialised
// thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn replaying_a_million_samples_allocates_per_file_not_per_record() {
    const SERIES: u32 = 1000;
    const BATCHES: u32 = 1000;
    let dir = support::temp_dir("wal-replay-speed");
    let opts = WalOptions {
        segment_size: 1 << 20,
    };
    let mut want_sum = 0f64;
    block_on(async {
        let mut wal = Wal::open(StdFs, &dir, opts).await.unwrap();
        let t = wal.tenant("tenant-1");
        for chunk in 0..SERIES / 100 {
            wal.log_series(t, |e| {
                for r in chunk * 100..(chunk + 1) * 100 {
                    let i = r.to_string();
                    e.add(r, [("__name__", "up"), ("instance", i.as_str())]);
                }
            });
        }
        for b in 0..BATCHES {
            wal.log_samples(t, |e| {
                for r in 0..SERIES {
                    let v = f64::from(b * 7 + r % 13);
                    want_sum += v;
                    e.add(
                        r,
                        1_700_000_000_000 + i64::from(b) * 15_000 + i64::from(r % 100),
                        v,
                    );
                }
            });
            if b % 50 == 0 {
                wal.sync().await.unwrap();
            }
        }
        wal.sync().await.unwrap();
    });
    let bytes: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();

    block_on(async {
        let mut r = WalReader::open(StdFs, &dir).await.unwrap();
        // Warm up on the first records (buffers grow to their working size).
        let (mut samples, mut sum, mut records) = (0u64, 0f64, 0u64);
        while records < 20 {
            let rec = r.next().await.unwrap().expect("more records");
            if let Record::Samples { samples: s, .. } = rec {
                samples += s.len() as u64;
                sum += s.iter().map(|s| s.v).sum::<f64>();
            }
            records += 1;
        }
        let allocs_before = allocations();
        let start = Instant::now();
        while let Some(rec) = r.next().await.unwrap() {
            if let Record::Samples { samples: s, .. } = rec {
                samples += s.len() as u64;
                sum += s.iter().map(|s| s.v).sum::<f64>();
            }
            records += 1;
        }
        let elapsed = start.elapsed();
        let allocs = allocations() - allocs_before;
        let stats = r.stats();
        assert_eq!(samples, u64::from(SERIES * BATCHES));
        assert_eq!(sum, want_sum);
        assert!(stats.torn_tail.is_none());
        assert!(stats.files > 10);
        eprintln!(
            "replayed {samples} samples in {records} records, {} files, {:.1} MB ({:.2} bytes/sample) \
             in {elapsed:?}: {:.0} MB/s, {allocs} allocations (unoptimised test build)",
            stats.files,
            bytes as f64 / 1e6,
            bytes as f64 / samples as f64,
            bytes as f64 / 1e6 / elapsed.as_secs_f64(),
        );
        assert!(
            allocs <= 8 * stats.files as u64,
            "{allocs} allocations for {} files and {records} records",
            stats.files
        );
    });
    std::fs::remove_dir_all(&dir).unwrap();
}
