//! Crash test of the WAL through the real binary: writers push while the process is killed with
//! SIGKILL at a random moment; after every restart (which replays the WAL) every acknowledged
//! sample must be there, bit for bit, and of every push that was not acknowledged each shard's
//! part is there whole or not at all (a part is one WAL record; parts on different shards are
//! separate records, as Cortex's writes to different ingesters are separate: the sender retries
//! the whole request). Nothing that was never sent may appear.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Server, eq, series, write};
use strata_storage::labels::Labels;

const TENANT: &str = "crash";
const SERIES_PER_PUSH: usize = 40;
const WRITERS: usize = 2;
const ROUNDS: usize = 5;
const SHARDS: u64 = 2;

const CONFIG: &str = "limits:
  ingestion_rate: 1e9
  ingestion_burst_size: 1000000000
  max_global_series_per_user: 0
  reject_old_samples: false
";

/// The labels of series `i` of writer `w`, sorted.
fn labels(w: usize, i: usize) -> Vec<(String, String)> {
    vec![
        ("__name__".into(), "crash_test".into()),
        ("i".into(), format!("{i:03}")),
        ("writer".into(), format!("w{w}")),
    ]
}

/// The shard that owns series `i` of writer `w` (the push path's rule).
fn owner(w: usize, i: usize) -> u64 {
    let l = Labels::from_pairs(labels(w, i));
    (xxhash_rust::xxh3::xxh3_64(TENANT.as_bytes()) ^ l.hash()) % SHARDS
}

/// Push `k` of a writer: one sample per series at `t(k)`, value `k * 1000 + i`.
fn t(k: u64) -> i64 {
    1_700_000_000_000 + k as i64 * 1000
}

fn value(k: u64, i: usize) -> f64 {
    k as f64 * 1000.0 + i as f64
}

/// What one writer knows after a round: pushes acknowledged, and pushes sent without an answer.
#[derive(Default)]
struct Log {
    acked: Vec<u64>,
    unknown: Vec<u64>,
}

fn writer(server: &Server, w: usize, first: u64, stop: &AtomicBool) -> (Log, u64) {
    let mut log = Log::default();
    let mut k = first;
    while !stop.load(Ordering::Relaxed) {
        let req = write(
            (0..SERIES_PER_PUSH)
                .map(|i| {
                    let l = labels(w, i);
                    let pairs: Vec<(&str, &str)> =
                        l.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
                    series(&pairs, &[(t(k), value(k, i))])
                })
                .collect(),
        );
        let body = snap::raw::Encoder::new()
            .compress_vec(&prost::Message::encode_to_vec(&req))
            .unwrap();
        let h = [
            ("Content-Encoding", "snappy"),
            ("Content-Type", "application/x-protobuf"),
            ("X-Scope-OrgID", TENANT),
        ];
        match server.try_request("POST", "/api/v1/push", &h, &body) {
            Some(r) if r.status == 204 => log.acked.push(k),
            Some(r) => panic!("push {k} of writer {w} refused: {} {}", r.status, r.text()),
            None => {
                // The process died: this push may or may not have been stored.
                log.unknown.push(k);
                break;
            }
        }
        k += 1;
    }
    (log, k + 1)
}

/// Checks the stored samples against what the writers know.
fn check(server: &Server, logs: &[Log], round: usize) -> usize {
    let stored = server.read(
        Some(TENANT),
        vec![eq("__name__", "crash_test")],
        0,
        i64::MAX,
    );
    // (writer, series, timestamp) -> value bits
    let mut have = std::collections::HashMap::new();
    for s in &stored {
        let get = |name: &str| {
            s.labels
                .iter()
                .find(|l| l.name == name)
                .map(|l| l.value.clone())
                .unwrap()
        };
        let w: usize = get("writer")[1..].parse().unwrap();
        let i: usize = get("i").parse().unwrap();
        for p in &s.samples {
            have.insert((w, i, p.timestamp), p.value.to_bits());
        }
    }
    let mut acked = 0;
    for (w, log) in logs.iter().enumerate() {
        for &k in &log.acked {
            for i in 0..SERIES_PER_PUSH {
                assert_eq!(
                    have.remove(&(w, i, t(k))),
                    Some(value(k, i).to_bits()),
                    "round {round}: acknowledged push {k} of writer {w}, series {i} lost or wrong"
                );
            }
            acked += 1;
        }
        for &k in &log.unknown {
            for shard in 0..SHARDS {
                let part: Vec<usize> = (0..SERIES_PER_PUSH)
                    .filter(|&i| owner(w, i) == shard)
                    .collect();
                let present: Vec<bool> = part
                    .iter()
                    .map(|&i| match have.remove(&(w, i, t(k))) {
                        Some(bits) => {
                            assert_eq!(bits, value(k, i).to_bits(), "round {round}: wrong value");
                            true
                        }
                        None => false,
                    })
                    .collect();
                assert!(
                    present.iter().all(|&p| p) || present.iter().all(|&p| !p),
                    "round {round}: unacknowledged push {k} of writer {w} half-present on shard \
                     {shard}: {present:?}"
                );
            }
        }
    }
    assert!(
        have.is_empty(),
        "round {round}: samples that were never sent: {:?}",
        have.keys().take(5).collect::<Vec<_>>()
    );
    acked
}

#[test]
fn acknowledged_samples_survive_sigkill() {
    sigkill_rounds("");
}

/// The same with each next segment prepared as a zero-filled file and small segments, so that
/// kills land while segments made from prepared files are live (their zero tails cut at replay)
/// and while new ones are being prepared.
#[test]
fn acknowledged_samples_survive_sigkill_with_preallocated_segments() {
    sigkill_rounds("    wal_preallocate: true\n    wal_segment_size_bytes: 262144\n");
}

/// Rounds of pushes by concurrent writers, each ended by a SIGKILL at a random moment, then a
/// restart that must return every acknowledged sample and nothing half-written.
/// `tsdb` is YAML added under `blocks_storage.tsdb` (indented by four spaces).
fn sigkill_rounds(tsdb: &str) {
    let dir = common::temp_dir();
    let config = &format!("{CONFIG}{}", common::blocks_storage(&dir, tsdb, ""));
    let mut logs: Vec<Log> = (0..WRITERS).map(|_| Log::default()).collect();
    let mut next: Vec<u64> = (0..WRITERS as u64).map(|w| w * 1_000_000).collect();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64 ^ u64::from(std::process::id());
    for round in 0..ROUNDS {
        let server = Arc::new(Server::start_in(&dir, config, &[]));
        // Everything acknowledged in earlier rounds is still there after the restart.
        check(&server, &logs, round);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let kill_after = Duration::from_millis(150 + seed % 450);
        let stop = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (server, stop, first) = (server.clone(), stop.clone(), next[w]);
                #[allow(clippy::disallowed_methods)] // test client threads, not shards
                std::thread::spawn(move || writer(&server, w, first, &stop))
            })
            .collect();
        #[allow(clippy::disallowed_methods)] // the test's main thread, not a shard
        std::thread::sleep(kill_after);
        // SIGKILL while the writers are pushing.
        server.sigkill();
        stop.store(true, Ordering::Relaxed);
        for (w, h) in handles.into_iter().enumerate() {
            let (log, k) = h.join().unwrap();
            logs[w].acked.extend(log.acked);
            logs[w].unknown.extend(log.unknown);
            next[w] = k;
        }
        drop(server);
    }
    let server = Server::start_in(&dir, config, &[]);
    for line in ["wal replaying", "wal replayed"] {
        assert!(
            server.startup_log.contains(line),
            "no {line:?} line at start-up:\n{}",
            server.startup_log
        );
    }
    let acked = check(&server, &logs, ROUNDS);
    assert!(
        acked > 0,
        "no push was acknowledged: the test tested nothing"
    );
    eprintln!("{acked} acknowledged pushes survived {ROUNDS} SIGKILLs");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
