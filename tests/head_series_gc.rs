//! Head garbage collection under churn: after a block cut, the series whose samples are all in
//! the block leave the heads and the tenant's series limit, so a tenant churning series (pods
//! that come and go) keeps creating new ones under a small `max_global_series_per_user`; queries
//! over cut ranges answer from the blocks; and restarts (WAL replay from a checkpoint written
//! after the collection, then the segments after it) answer the same and count the same live
//! series.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Server, series, write};
use strata_net::remote_write::proto::TimeSeries;

const TENANT: &str = "churn";
const RANGE_MS: i64 = 600_000;
const STEP_MS: i64 = 15_000;
const LIMIT: usize = 20;
const NODES: usize = 5;
const PODS: usize = LIMIT - NODES;

fn config(dir: &Path) -> String {
    format!(
        "limits:
  ingestion_rate: 1e9
  ingestion_burst_size: 1000000000
  max_global_series_per_user: {LIMIT}
  reject_old_samples: false
{}",
        common::blocks_storage(
            dir,
            "    block_ranges_period: [10m]\n    head_compaction_interval: 1s\n",
            ""
        )
    )
}

/// One series of `churn{kind, name}` with a sample every 15s in `[from, to)`.
fn one(kind: &str, name: &str, from: i64, to: i64) -> TimeSeries {
    let samples: Vec<(i64, f64)> = (from..to)
        .step_by(STEP_MS as usize)
        .map(|t| (t, (t / 1000) as f64))
        .collect();
    series(
        &[("__name__", "churn"), ("kind", kind), ("name", name)],
        &samples,
    )
}

fn nodes(from: i64, to: i64) -> Vec<TimeSeries> {
    (0..NODES)
        .map(|i| one("node", &format!("node-{i}"), from, to))
        .collect()
}

fn pods(first: usize, from: i64, to: i64) -> Vec<TimeSeries> {
    (first..first + PODS)
        .map(|i| one("pod", &format!("pod-{i}"), from, to))
        .collect()
}

fn push(server: &Server, s: Vec<TimeSeries>) -> common::Response {
    server.push(Some(TENANT), &write(s))
}

fn push_ok(server: &Server, s: Vec<TimeSeries>) {
    let r = push(server, s);
    assert_eq!(r.status, 204, "{}", r.text());
}

/// A new series is refused: the tenant has `LIMIT` live series.
fn assert_at_limit(server: &Server, base: i64, pod: usize) {
    let t = base + 60 * 60_000;
    let r = push(server, vec![one("pod", &format!("pod-{pod}"), t, t + 1)]);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text()
            .contains(&format!("per-user series limit of {LIMIT} exceeded")),
        "{}",
        r.text()
    );
}

fn blocks(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |rd| {
        rd.flatten()
            .filter(|e| e.path().join("meta.json").exists())
            .count()
    })
}

/// The heads' live series, from `/metrics`.
fn memory_series(server: &Server) -> usize {
    let r = server.request("GET", "/metrics", &[], b"");
    let text = r.text();
    text.lines()
        .find_map(|l| l.strip_prefix("strata_ingester_memory_series "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no memory series gauge:\n{text}"))
}

/// Waits until `blocks` blocks are cut and the heads hold the nodes only.
fn wait_for_cut(server: &Server, dir: &Path, want_blocks: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (b, live) = (
            blocks(&dir.join("tsdb").join(TENANT)),
            memory_series(server),
        );
        if b == want_blocks && live == NODES {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "blocks {b} (want {want_blocks}), live series {live} (want {NODES})"
        );
        #[allow(clippy::disallowed_methods)] // the test's thread, not a shard
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Each shard's newest WAL checkpoint.
fn checkpoints(dir: &Path) -> Vec<Option<u32>> {
    let tsdb = dir.join("tsdb");
    (0..2)
        .map(|s| {
            std::fs::read_dir(tsdb.join(format!("shard-{s}")).join("wal"))
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| {
                    e.file_name()
                        .to_str()?
                        .strip_prefix("checkpoint.")?
                        .parse()
                        .ok()
                })
                .max()
        })
        .collect()
}

/// Waits until every shard's WAL has a checkpoint newer than in `before`.
fn wait_for_checkpoints(dir: &Path, before: &[Option<u32>]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = checkpoints(dir);
        if now.iter().zip(before).all(|(n, b)| n > b) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "checkpoints {now:?}, before {before:?}"
        );
        #[allow(clippy::disallowed_methods)] // the test's thread, not a shard
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Per series (`kind/name`), its samples in range `k` (`[base + k R, base + (k + 1) R)`).
fn counts_in_range(server: &Server, base: i64, k: i64) -> Vec<(String, String)> {
    let at = base + (k + 1) * RANGE_MS - 1;
    let (status, body) = server.get_json(
        Some(TENANT),
        &format!(
            "/api/v1/query?query=count_over_time(churn%5B10m%5D)&time={}",
            at as f64 / 1000.0
        ),
    );
    assert_eq!(status, 200, "{body}");
    let mut out: Vec<(String, String)> = body["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let m = &s["metric"];
            (
                format!(
                    "{}/{}",
                    m["kind"].as_str().unwrap(),
                    m["name"].as_str().unwrap()
                ),
                s["value"][1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

/// What `counts_in_range` answers: every node with `nodes` samples, pods `first..` with 32.
fn expect(nodes: usize, first_pod: usize) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = (0..NODES)
        .map(|i| (format!("node/node-{i}"), nodes.to_string()))
        .chain((first_pod..first_pod + PODS).map(|i| (format!("pod/pod-{i}"), "32".into())))
        .collect();
    out.sort();
    out
}

#[test]
fn churning_series_leave_the_heads_and_the_limit_across_cuts_and_restarts() {
    let dir = common::temp_dir();
    let yaml = config(&dir);
    let server = Server::start_in(&dir, &yaml, &[]);
    let base = (common::now_ms() - 2 * 3_600_000) / RANGE_MS * RANGE_MS;
    let m = |minutes: i64| base + minutes * 60_000;

    // Range 0: nodes for 16 minutes (so range 0 is due), pods 0..15 for 8. The tenant is at its
    // limit.
    push_ok(&server, nodes(m(0), m(16)));
    push_ok(&server, pods(0, m(0), m(8)));
    assert_at_limit(&server, base, 100);
    // Range 0 is cut; the pods, in the block only, leave the heads and the limit.
    wait_for_cut(&server, &dir, 1);
    assert_eq!(counts_in_range(&server, base, 0), expect(40, 0));

    // Range 1: new pods 15..30 are taken (the limit counts live series), and no more.
    push_ok(&server, pods(PODS, m(10), m(18)));
    assert_at_limit(&server, base, 100);
    push_ok(&server, nodes(m(16), m(26)));
    wait_for_cut(&server, &dir, 2);
    // (Whether range 0's WAL segment is now behind a checkpoint depends on whether the first
    // cut closed it before the pushes above; the cut after the restart writes one for sure.)
    let ranges_0_1 = [expect(40, 0), expect(40, PODS)];
    for (k, want) in ranges_0_1.iter().enumerate() {
        assert_eq!(&counts_in_range(&server, base, k as i64), want, "range {k}");
    }

    // Restart: the WAL holds pods 0..30, all dropped since, and the nodes.
    server.sigkill();
    drop(server);
    let server = Server::start_in(&dir, &yaml, &[]);
    assert_eq!(memory_series(&server), NODES);
    for (k, want) in ranges_0_1.iter().enumerate() {
        assert_eq!(&counts_in_range(&server, base, k as i64), want, "range {k}");
    }
    // The nodes' samples of range 2 came back from the WAL.
    assert_eq!(counts_in_range(&server, base, 2), expect(24, 0)[..NODES]);

    // Range 2, after the restart: pods 30..45 fit, then the limit; then it is cut too, and the
    // segments replayed (their samples all in blocks now) go behind a checkpoint of the nodes.
    let before = checkpoints(&dir);
    push_ok(&server, pods(2 * PODS, m(20), m(28)));
    assert_at_limit(&server, base, 100);
    push_ok(&server, nodes(m(26), m(36)));
    wait_for_cut(&server, &dir, 3);
    wait_for_checkpoints(&dir, &before);
    let all = [expect(40, 0), expect(40, PODS), expect(40, 2 * PODS)];
    for (k, want) in all.iter().enumerate() {
        assert_eq!(&counts_in_range(&server, base, k as i64), want, "range {k}");
    }

    // Restart again: the checkpoint, then the segment written after the first restart, which
    // names pods 30..45 (dropped before the checkpoint) by their refs.
    server.sigkill();
    drop(server);
    let server = Server::start_in(&dir, &yaml, &[]);
    assert_eq!(memory_series(&server), NODES);
    for (k, want) in all.iter().enumerate() {
        assert_eq!(&counts_in_range(&server, base, k as i64), want, "range {k}");
    }
    assert_eq!(counts_in_range(&server, base, 3), expect(24, 0)[..NODES]);
    // A dropped pod's labels make a new series; the limit holds at live series.
    push_ok(&server, pods(0, m(30), m(38)));
    assert_at_limit(&server, base, 100);
    assert_eq!(memory_series(&server), LIMIT);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
