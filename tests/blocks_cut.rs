//! The ingester cuts blocks from its heads, ships them to the bucket, and after a restart
//! neither cuts a range again nor takes samples of a cut range (out of bounds), and queries
//! answer from the blocks. The blocks pass Prometheus's `promtool tsdb analyze` and `list`.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, series, write};

const RANGE_MS: i64 = 600_000;

fn config(dir: &Path) -> String {
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
            "    block_ranges_period: [10m]\n    head_compaction_interval: 1s\n",
            ""
        )
    )
}

fn blocks(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().join("meta.json").exists())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// 1h of samples for 20 series, every 15s, ending at `end`, in one push per 10 minutes.
fn push_hour(server: &Server, end: i64) {
    let start = end - 3_600_000;
    for part in 0..6 {
        let from = start + part * RANGE_MS;
        let req = write(
            (0..20)
                .map(|i| {
                    let v = i.to_string();
                    let samples: Vec<(i64, f64)> = (0..40)
                        .map(|k| (from + k * 15_000, (k + i * 100) as f64))
                        .collect();
                    series(&[("__name__", "cut_test"), ("i", &v)], &samples)
                })
                .collect(),
        );
        let r = server.push(None, &req);
        assert_eq!(r.status, 204, "{}", r.text());
    }
}

#[test]
fn blocks_are_cut_shipped_and_never_cut_twice() {
    let dir = common::temp_dir();
    let tenant_dir = dir.join("tsdb").join("anonymous");
    let bucket_dir = dir.join("bucket").join("anonymous");
    let server = Server::start_in(&dir, &config(&dir), &[]);
    let end = common::now_ms() / RANGE_MS * RANGE_MS;
    push_hour(&server, end);
    // The ranges more than 1.5 ranges behind the newest sample are cut within a few intervals.
    let deadline = Instant::now() + Duration::from_secs(30);
    while blocks(&tenant_dir).len() < 4 {
        assert!(
            Instant::now() < deadline,
            "no blocks cut: {:?}",
            blocks(&tenant_dir)
        );
        #[allow(clippy::disallowed_methods)] // the test's thread, not a shard
        std::thread::sleep(Duration::from_millis(200));
    }
    // Flush cuts the rest.
    let r = server.request("POST", "/ingester/flush", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let cut = blocks(&tenant_dir);
    assert_eq!(cut.len(), 6, "one block per 10m range: {cut:?}");
    for b in &cut {
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(tenant_dir.join(b).join("meta.json")).unwrap())
                .unwrap();
        assert_eq!(meta["thanos"]["labels"]["__org_id__"], "anonymous");
        assert_eq!(meta["stats"]["numSamples"], 20 * 40);
        assert_eq!(
            meta["maxTime"].as_i64().unwrap() - meta["minTime"].as_i64().unwrap(),
            RANGE_MS
        );
    }
    assert_eq!(blocks(&bucket_dir), cut, "every block shipped");
    if let Some(promtool) = common::promtool() {
        let out = Command::new(&promtool)
            .args(["tsdb", "list"])
            .arg(&tenant_dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let list = String::from_utf8_lossy(&out.stdout);
        for b in &cut {
            assert!(
                list.contains(b.as_str()),
                "promtool tsdb list misses {b}:\n{list}"
            );
        }
        for b in &cut {
            let out = Command::new(&promtool)
                .args(["tsdb", "analyze"])
                .arg(&tenant_dir)
                .arg(b)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(String::from_utf8_lossy(&out.stdout).contains("Series: 20"));
        }
    }
    // After a SIGKILL and a restart, the WAL's samples of cut ranges are not taken again: no
    // range is cut twice, and a push into a cut range is refused as out of bounds.
    server.sigkill();
    drop(server);
    let server = Server::start_in(&dir, &config(&dir), &[]);
    let r = server.request("POST", "/ingester/flush", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(blocks(&tenant_dir), cut, "a range was cut twice");
    let r = server.push(
        None,
        &write(vec![series(
            &[("__name__", "cut_test"), ("i", "0")],
            &[(end - 1000, 1.0)],
        )]),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("out of bounds"), "{}", r.text());
    // Every sample is answered from the blocks (the head holds none of them any more).
    let (status, body) = server.get_json(
        None,
        &format!(
            "/api/v1/query?query=sum(count_over_time(cut_test[1h]))&time={}",
            (end - 1) as f64 / 1000.0
        ),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["result"][0]["value"][1], "4800", "{body}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A head that receives nothing for `head_compaction_idle_timeout` is cut whole, although its
/// range is not due by the 1.5-range rule.
#[test]
fn idle_heads_are_cut_whole() {
    let dir = common::temp_dir();
    let tenant_dir = dir.join("tsdb").join("anonymous");
    let yaml = config(&dir).replace(
        "    head_compaction_interval: 1s\n",
        "    head_compaction_interval: 1s\n    head_compaction_idle_timeout: 2s\n",
    );
    let server = Server::start_in(&dir, &yaml, &[]);
    // Two minutes of samples ending now: nothing is due by the range rule.
    let now = common::now_ms();
    let samples: Vec<(i64, f64)> = (0..8)
        .map(|k| (now - 120_000 + k * 15_000, k as f64))
        .collect();
    let r = server.push(
        None,
        &write(vec![series(&[("__name__", "idle_test")], &samples)]),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    // Two minutes may straddle a range boundary: the cut then writes one block per range, one
    // after the other, so wait for all of them rather than the first.
    let samples_in_blocks = || -> i64 {
        blocks(&tenant_dir)
            .iter()
            .map(|b| {
                let meta: serde_json::Value = serde_json::from_slice(
                    &std::fs::read(tenant_dir.join(b).join("meta.json")).unwrap(),
                )
                .unwrap();
                meta["stats"]["numSamples"].as_i64().unwrap()
            })
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut total = samples_in_blocks();
    while total < 8 && Instant::now() < deadline {
        #[allow(clippy::disallowed_methods)] // the test's thread, not a shard
        std::thread::sleep(Duration::from_millis(200));
        total = samples_in_blocks();
    }
    assert_eq!(total, 8, "every sample in the cut blocks");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Samples `k` in `ks` (one second apart from `start`) of the 20 `cut_test` series (value
/// `i * 1000 + k`) and of one series `fresh` (value `k`).
fn push_recent(server: &Server, start: i64, ks: std::ops::Range<i64>) {
    let mut all: Vec<_> = (0..20)
        .map(|i| {
            let v = i.to_string();
            let samples: Vec<(i64, f64)> = ks
                .clone()
                .map(|k| (start + k * 1000, (i * 1000 + k) as f64))
                .collect();
            series(&[("__name__", "cut_test"), ("i", &v)], &samples)
        })
        .collect();
    let fresh: Vec<(i64, f64)> = ks.map(|k| (start + k * 1000, k as f64)).collect();
    all.push(series(&[("__name__", "fresh")], &fresh));
    let r = server.push(None, &write(all));
    assert_eq!(r.status, 204, "{}", r.text());
}

/// Every series' newest value at `t` (ms), by its `i` label (`fresh` as -1).
fn latest(server: &Server, t: i64) -> Vec<(i64, String)> {
    let (status, body) = server.get_json(
        None,
        &format!(
            "/api/v1/query?query=%7B__name__%3D~%22cut_test%7Cfresh%22%7D&time={}",
            t as f64 / 1000.0
        ),
    );
    assert_eq!(status, 200, "{body}");
    let mut out: Vec<(i64, String)> = body["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let i = s["metric"]["i"].as_str().map_or(-1, |i| i.parse().unwrap());
            (i, s["value"][1].as_str().unwrap().to_owned())
        })
        .collect();
    out.sort();
    out
}

fn wal_dirs(tsdb: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(tsdb)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("shard-"))
        .map(|e| e.path().join("wal"))
        .collect();
    out.sort();
    out
}

/// (checkpoint number, segment numbers) of a WAL directory.
fn wal_listing(dir: &Path) -> (Option<u32>, Vec<u32>) {
    let mut checkpoint = None;
    let mut segments = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(n) = name.strip_prefix("checkpoint.") {
            if let Ok(n) = n.parse::<u32>() {
                checkpoint = checkpoint.max(Some(n));
            }
        } else if let Ok(n) = name.parse::<u32>() {
            segments.push(n);
        }
    }
    segments.sort_unstable();
    (checkpoint, segments)
}

/// Once its samples are in blocks, the WAL is truncated behind a checkpoint of the series: the
/// old segments are gone, and across SIGKILLs and restarts the series keep their identities
/// (samples logged after the checkpoint land on the right series).
#[test]
fn wal_is_truncated_behind_a_checkpoint() {
    let dir = common::temp_dir();
    let tsdb = dir.join("tsdb");
    // Small segments so that the hour spans many; compaction only on flush. The server has two
    // shards: aggregations pushed down to them read each its partition of the blocks.
    let yaml = config(&dir).replace(
        "    head_compaction_interval: 1s\n",
        "    head_compaction_interval: 1h\n    wal_segment_size_bytes: 32768\n",
    );
    let server = Server::start_in(&dir, &yaml, &[]);
    let end = common::now_ms() / RANGE_MS * RANGE_MS;
    push_hour(&server, end);
    let before: Vec<_> = wal_dirs(&tsdb).iter().map(|d| wal_listing(d)).collect();
    assert!(
        before.iter().all(|(_, segs)| !segs.is_empty())
            && before.iter().any(|(_, segs)| segs.len() >= 2),
        "the hour spans several segments: {before:?}"
    );
    let r = server.request("POST", "/ingester/flush", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    for (d, (cp, segs)) in wal_dirs(&tsdb).iter().zip(&before) {
        let (checkpoint, segments) = wal_listing(d);
        let newest = *segs.last().unwrap();
        assert!(
            checkpoint >= Some(newest),
            "{}: every segment of the hour is checkpointed (before {cp:?} {segs:?}, after \
             {checkpoint:?} {segments:?})",
            d.display()
        );
        assert!(
            segments.iter().all(|&s| Some(s) > checkpoint),
            "{}: segments covered by the checkpoint are deleted: {segments:?}",
            d.display()
        );
    }
    // New samples after the cut, for the old series and a new one; then crash and restart,
    // twice: each restart replays the checkpoint, then the segments after it.
    push_recent(&server, end, 0..4);
    server.sigkill();
    drop(server);
    let server = Server::start_in(&dir, &yaml, &[]);
    let want = |k: i64| -> Vec<(i64, String)> {
        (-1..20)
            .map(|i| (i, if i < 0 { k } else { i * 1000 + k }.to_string()))
            .collect()
    };
    assert_eq!(latest(&server, end + 3_500), want(3));
    push_recent(&server, end, 4..8);
    server.sigkill();
    drop(server);
    let server = Server::start_in(&dir, &yaml, &[]);
    assert_eq!(latest(&server, end + 7_500), want(7));
    // The cut hour still answers, from the blocks.
    let (status, body) = server.get_json(
        None,
        &format!(
            "/api/v1/query?query=sum(count_over_time(cut_test[1h]))&time={}",
            (end - 1) as f64 / 1000.0
        ),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["result"][0]["value"][1], "4800", "{body}");
    // Blocks and heads together, in aggregations pushed down to the shards and in one that is
    // not (`quantile`).
    for (query, want) in [
        (
            "sum(count_over_time({__name__=~\"cut_test|fresh\"}[2h]))",
            "4968",
        ),
        (
            "count(count_over_time({__name__=~\"cut_test|fresh\"}[2h]))",
            "21",
        ),
        ("max(count_over_time(cut_test[2h]))", "248"),
        ("quantile(0.5, count_over_time(cut_test[2h]))", "248"),
    ] {
        let (status, body) = server.get_json(
            None,
            &format!(
                "/api/v1/query?query={}&time={}",
                urlencode(query),
                (end + 7_500) as f64 / 1000.0
            ),
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["data"]["result"][0]["value"][1], want,
            "{query}: {body}"
        );
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
