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
blocks_storage:
  tsdb:
    dir: {}
    block_ranges_period: [10m]
    head_compaction_interval: 1s
  filesystem:
    dir: {}
",
        dir.join("tsdb").display(),
        dir.join("bucket").display()
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
