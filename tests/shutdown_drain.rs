//! SIGTERM drains the write path: pushes already taken are answered and durable, later ones are
//! refused (503 or a closed connection, which a sender retries), the WAL is synced and the
//! process exits with status 0. After a restart every acknowledged sample is there, and nothing
//! beyond the one push whose answer the shutdown may have cut off.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Server, series, write};

const SERIES: usize = 50;

fn config(dir: &std::path::Path) -> String {
    format!(
        "auth_enabled: false
limits:
  ingestion_rate: 1e9
  ingestion_burst_size: 1000000000
  max_global_series_per_user: 0
{}",
        common::blocks_storage(dir, "", "")
    )
}

/// Push `k` of sender `w`: one sample at `base + k` ms for each of the sender's series.
fn push_k(addr: &str, w: i64, base: i64, k: i64) -> Option<u16> {
    let w = w.to_string();
    let req = write(
        (0..SERIES)
            .map(|i| {
                let v = i.to_string();
                series(
                    &[("__name__", "drain_test"), ("i", &v), ("w", &w)],
                    &[(base + k, k as f64)],
                )
            })
            .collect(),
    );
    common::try_push_to(addr, &req).map(|r| r.status)
}

#[test]
fn sigterm_answers_pushes_in_flight_then_exits_cleanly() {
    let dir = common::temp_dir();
    let mut server = Server::start_in(&dir, &config(&dir), &[]);
    let base = common::now_ms() - 60_000;
    // Two senders, each with its own pushes, as fast as answered.
    let stop = Arc::new(AtomicBool::new(false));
    let addr = server.addr.clone();
    let senders: Vec<_> = (0..2)
        .map(|w| {
            let stop = stop.clone();
            let addr = addr.clone();
            #[allow(clippy::disallowed_methods)] // test client threads, not shards
            std::thread::spawn(move || {
                let mut acked = 0i64;
                let mut refused = 0u32;
                let mut k = 0;
                while !stop.load(Ordering::Relaxed) {
                    match push_k(&addr, w, base, k) {
                        Some(204) => acked += 1,
                        Some(503) | None => {
                            refused += 1;
                            if refused > 3 {
                                break;
                            }
                        }
                        Some(s) => panic!("push {k}: status {s}"),
                    }
                    k += 1;
                }
                (acked, k)
            })
        })
        .collect();
    #[allow(clippy::disallowed_methods)] // the test's thread, not a shard
    std::thread::sleep(Duration::from_millis(500));
    let status = server
        .sigterm_and_wait(Duration::from_secs(30))
        .expect("strata exits within 30 s of SIGTERM");
    stop.store(true, Ordering::Relaxed);
    assert!(status.success(), "clean exit after SIGTERM: {status}");
    let results: Vec<(i64, i64)> = senders.into_iter().map(|s| s.join().unwrap()).collect();
    drop(server);
    let server = Server::start_in(&dir, &config(&dir), &[]);
    // Per sender: its pushes are sequential, so the first `acked` are stored, and the one after
    // may be stored with its answer cut off.
    let (status, body) = server.get_json(
        None,
        &format!(
            "/api/v1/query?query=sum(count_over_time(drain_test%7Bi%3D%220%22%7D%5B10m%5D))&time={}",
            (base + 100_000) as f64 / 1000.0
        ),
    );
    assert_eq!(status, 200, "{body}");
    let stored: i64 = body["data"]["result"][0]["value"][1]
        .as_str()
        .map_or(0, |v| v.parse().unwrap());
    let acked: i64 = results.iter().map(|(a, _)| a).sum();
    assert!(acked > 0, "pushes were acknowledged before SIGTERM");
    assert!(
        stored >= acked && stored <= acked + 2,
        "stored {stored} samples of series 0; acknowledged {acked} (senders {results:?})"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
