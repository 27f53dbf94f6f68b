//! Full pages of head chunks go to `<tsdb dir>/shard-<n>/head_chunks/` and are read through
//! mappings of those files (`blocks_storage.tsdb.head_chunks_on_disk`): queries answer the same
//! before and after the switch, after a restart (which deletes the old files and spills what the
//! WAL replay filled before it listens) and after a block cut (which truncates heads with mapped pages and
//! unlinks their files). Off, no file is written and a directory left by an earlier run goes.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Server, eq, series, write};

const SERIES: usize = 300;
/// Samples per series, one per second: five closed 120-sample chunks and an open one.
const SAMPLES: i64 = 660;

fn config(dir: &Path, on_disk: bool) -> String {
    format!(
        "auth_enabled: false
limits:
  ingestion_rate: 1e9
  ingestion_burst_size: 1000000000
  max_global_series_per_user: 0
  reject_old_samples: false
{}",
        common::blocks_storage(
            dir,
            &format!("    head_compaction_interval: 1h\n    head_chunks_on_disk: {on_disk}\n"),
            ""
        )
    )
}

/// Sample `k` of series `i`: values that do not compress to nothing, so pages fill.
fn value(i: usize, k: i64) -> f64 {
    ((k * 7919 + i as i64 * 104_729) % 100_000) as f64 / 7.0
}

/// Pushes every series' samples from `start`, a minute of them per push.
fn push_all(server: &Server, start: i64) {
    for from in (0..SAMPLES).step_by(60) {
        let req = write(
            (0..SERIES)
                .map(|i| {
                    let v = format!("{i:03}");
                    let samples: Vec<(i64, f64)> = (from..(from + 60).min(SAMPLES))
                        .map(|k| (start + k * 1000, value(i, k)))
                        .collect();
                    series(&[("__name__", "spill_test"), ("i", &v)], &samples)
                })
                .collect(),
        );
        let r = server.push(None, &req);
        assert_eq!(r.status, 204, "{}", r.text());
    }
}

/// The first difference between series `i`'s samples and what was pushed, if any.
fn diff(i: usize, start: i64, got: &[(i64, f64)]) -> Option<String> {
    let want: Vec<(i64, f64)> = (0..SAMPLES)
        .map(|k| (start + k * 1000, value(i, k)))
        .collect();
    if got == want.as_slice() {
        return None;
    }
    let at = got.iter().zip(&want).position(|(g, w)| g != w);
    Some(format!(
        "series {i}: {} samples, {} wanted; first difference at {at:?}: {:?} vs {:?}",
        got.len(),
        want.len(),
        at.and_then(|k| got.get(k)),
        at.and_then(|k| want.get(k)),
    ))
}

/// Every series' samples, read back (over remote read when `heads_only`, which reads the
/// heads, and always with PromQL), checked against what was pushed.
fn check_all(server: &Server, start: i64, heads_only: bool, what: &str) {
    if heads_only {
        let got = server.read(
            None,
            vec![eq("__name__", "spill_test")],
            start,
            start + SAMPLES * 1000,
        );
        assert_eq!(got.len(), SERIES, "{what}: remote read series");
        for ts in &got {
            let i = ts
                .labels
                .iter()
                .find(|l| l.name == "i")
                .unwrap()
                .value
                .parse()
                .unwrap();
            let samples: Vec<(i64, f64)> =
                ts.samples.iter().map(|s| (s.timestamp, s.value)).collect();
            if let Some(d) = diff(i, start, &samples) {
                panic!("{what}: remote read {d}");
            }
        }
    }
    // The query engine's path: a range selector over every series, from the heads and blocks.
    let end = (start + (SAMPLES - 1) * 1000) as f64 / 1000.0;
    let (status, body) = server.get_json(
        None,
        &format!("/api/v1/query?query=spill_test%5B15m%5D&time={end}"),
    );
    assert_eq!(status, 200, "{what}: {body}");
    let result = body["data"]["result"].as_array().expect("a matrix");
    assert_eq!(result.len(), SERIES, "{what}: query series");
    for r in result {
        let metric = r["metric"].as_object().unwrap();
        let i = metric["i"].as_str().unwrap().parse().unwrap();
        let samples: Vec<(i64, f64)> = r["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
                (t, p[1].as_str().unwrap().parse().unwrap())
            })
            .collect();
        if let Some(d) = diff(i, start, &samples) {
            panic!("{what}: query {d}");
        }
    }
}

/// The files under each shard's `head_chunks` directory: (shard, name, size).
fn spill_files(dir: &Path) -> Vec<(usize, String, u64)> {
    let mut out = Vec::new();
    for shard in 0..2 {
        let d = dir
            .join("tsdb")
            .join(format!("shard-{shard}"))
            .join("head_chunks");
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let size = e.metadata().map_or(0, |m| m.len());
            out.push((shard, e.file_name().to_string_lossy().into_owned(), size));
        }
    }
    out
}

/// Waits until both shards have spilled at least `min_bytes` each.
fn wait_for_spill(dir: &Path, min_bytes: u64) -> Vec<(usize, String, u64)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let files = spill_files(dir);
        let per_shard = |s| files.iter().filter(|f| f.0 == s).map(|f| f.2).sum::<u64>();
        if per_shard(0) >= min_bytes && per_shard(1) >= min_bytes {
            return files;
        }
        assert!(
            Instant::now() < deadline,
            "head chunks not spilled: {files:?}"
        );
        sleep(Duration::from_millis(50));
    }
}

/// Mappings of spilled files (of this test's directory) in any process: lines of
/// `/proc/<pid>/maps` naming them.
fn mappings(dir: &Path) -> usize {
    let needle = dir.join("tsdb").display().to_string();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return 0;
    };
    procs
        .flatten()
        .filter_map(|p| std::fs::read_to_string(p.path().join("maps")).ok())
        .map(|maps| {
            maps.lines()
                .filter(|l| l.contains(&needle) && l.contains("/head_chunks/"))
                .count()
        })
        .sum()
}

#[allow(clippy::disallowed_methods)] // the test's thread, not a shard
fn sleep(d: Duration) {
    std::thread::sleep(d);
}

#[test]
fn full_pages_spill_to_disk_and_queries_are_unchanged() {
    let dir = common::temp_dir();
    let mut server = Server::start_in(&dir, &config(&dir, true), &[]);
    let start = (common::now_ms() - 20 * 60_000) / 60_000 * 60_000;
    push_all(&server, start);
    // About 1.2 MB of chunks over two shards: the 4 KiB to 128 KiB pages fill at least.
    let files = wait_for_spill(&dir, 64 << 10);
    assert!(files.iter().all(|f| f.1.len() == 8), "{files:?}");
    // Read through the mappings: one window per file holds every page so far.
    let maps = mappings(&dir);
    assert!(
        maps >= 2 && maps <= files.len() * 2,
        "{maps} mappings of {files:?}"
    );
    check_all(&server, start, true, "spilled");

    // A restart deletes the old files; the replay refills the pages and spills them before the
    // server listens (so a restart's memory stays bounded), with no wait here.
    let marker = dir.join("tsdb/shard-0/head_chunks/left-by-an-earlier-run");
    std::fs::write(&marker, b"x").unwrap();
    assert!(server.sigterm_and_wait(Duration::from_secs(30)).is_some());
    drop(server);
    let server = Server::start_in(&dir, &config(&dir, true), &[]);
    assert!(!marker.exists());
    let files = spill_files(&dir);
    for shard in 0..2 {
        let bytes: u64 = files.iter().filter(|f| f.0 == shard).map(|f| f.2).sum();
        assert!(
            bytes >= 64 << 10,
            "shard {shard} spilled nothing during its replay: {files:?}"
        );
    }
    check_all(&server, start, true, "after restart");

    // A cut truncates the heads: their mapped pages go, and so do the files.
    let r = server.request("POST", "/ingester/flush", &[], b"");
    assert!(r.status < 300, "flush: {} {}", r.status, r.text());
    check_all(&server, start, false, "after a cut");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !spill_files(&dir).is_empty() || mappings(&dir) > 0 {
        assert!(
            Instant::now() < deadline,
            "files of truncated heads left: {:?}, {} mappings",
            spill_files(&dir),
            mappings(&dir)
        );
        sleep(Duration::from_millis(50));
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn off_the_chunks_stay_in_memory_and_old_files_go() {
    let dir = common::temp_dir();
    let old = dir.join("tsdb/shard-1/head_chunks");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(old.join("00000000"), b"from an earlier run").unwrap();
    let server = Server::start_in(&dir, &config(&dir, false), &[]);
    assert!(!old.exists());
    let start = (common::now_ms() - 20 * 60_000) / 60_000 * 60_000;
    push_all(&server, start);
    check_all(&server, start, true, "in memory");
    assert!(spill_files(&dir).is_empty());
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The spill's file writes go through the epoll fallback's thread pool where io_uring is
/// unavailable.
#[test]
fn pages_spill_through_the_epoll_fallback() {
    let dir = common::temp_dir();
    let server = Server::start_in(
        &dir,
        &config(&dir, true),
        &["--runtime.io-driver", "polling"],
    );
    let start = (common::now_ms() - 20 * 60_000) / 60_000 * 60_000;
    push_all(&server, start);
    wait_for_spill(&dir, 64 << 10);
    assert!(mappings(&dir) >= 2);
    check_all(&server, start, true, "spilled");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
