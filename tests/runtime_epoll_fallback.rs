//! strata runs where io_uring is unavailable: the epoll fallback, forced here, serves pushes and
//! reads end to end.

mod common;

use common::{Server, eq, now_ms, series, write};

#[test]
fn push_and_read_through_the_epoll_fallback() {
    let s = Server::start(
        "limits:\n  ingestion_rate: 1e9\n  ingestion_burst_size: 1000000000\n",
        &["--runtime.io-driver", "polling"],
    );
    let t = now_ms();
    let req = write(
        (0..200)
            .map(|i| {
                series(
                    &[("__name__", "fallback"), ("i", &i.to_string())],
                    &[(t, f64::from(i)), (t + 1, 1.0)],
                )
            })
            .collect(),
    );
    assert_eq!(s.push(Some("t"), &req).status, 204);
    let got = s.read(
        Some("t"),
        vec![eq("__name__", "fallback")],
        i64::MIN,
        i64::MAX,
    );
    assert_eq!(got.len(), 200);
    assert!(got.iter().all(|g| g.samples.len() == 2));
    let (_, v) = s.get_json(Some("t"), "/api/v1/series?match[]=fallback");
    assert_eq!(v["data"].as_array().unwrap().len(), 200);
}
