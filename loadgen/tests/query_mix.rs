//! `query-mix` against an in-test Prometheus API: queries are counted, weights respected, the
//! tenant header sent, errors counted and turned into exit status 1, and open-loop latency
//! includes the time a query waited for a busy worker. Only lower bounds on time are asserted,
//! so a loaded machine cannot make these fail.

#[path = "support/server.rs"]
mod server;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use strata_loadgen::mix::{self, MixOptions, parse_entry};

const SUCCESS: &str = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;

fn options(url: &str, entries: &[&str], count: u64, warmup: u64, rate: f64) -> MixOptions {
    MixOptions {
        url: url.to_owned(),
        tenant: None,
        entries: entries
            .iter()
            .map(|e| parse_entry(e).expect("entry"))
            .collect(),
        rate,
        concurrency: 4,
        count,
        warmup,
        end_ms: 1_700_000_000_000,
        seed: 1,
        timeout: Duration::from_secs(10),
    }
}

/// What the server saw: path, `query` form value, tenant header.
type Seen = Arc<Mutex<Vec<(String, String, Option<String>)>>>;

/// A server answering `status` and `body` per query text (success by default), recording every
/// request.
fn api(answers: &'static [(&'static str, u16, &'static str)]) -> (String, Seen) {
    // Test scaffolding: a lock around the request log is fine here.
    #[allow(clippy::disallowed_methods)]
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let addr = server::serve(move |req| {
        let query = req.form("query").unwrap_or_default();
        log.lock().expect("log").push((
            req.path.clone(),
            query.clone(),
            req.header("x-scope-orgid").map(str::to_owned),
        ));
        let (status, body) = answers
            .iter()
            .find(|(q, _, _)| *q == query)
            .map_or((200, SUCCESS), |(_, s, b)| (*s, *b));
        server::Response {
            status,
            body: body.as_bytes().to_vec(),
        }
    });
    (format!("http://{addr}/prometheus/"), seen)
}

#[test]
fn counts_queries_and_respects_weights() {
    let (url, seen) = api(&[]);
    let mut opts = options(
        &url,
        &[
            "weight=3,name=cheap,query=up",
            "weight=1,type=range,range=1h,step=60s,name=heavy,query=rate(x[5m])",
        ],
        400,
        20,
        4000.0,
    );
    opts.tenant = Some("tenant-7".into());
    let report = mix::run(&opts).expect("run");
    assert_eq!(report.errors, 0, "{:?}", report.first_errors);
    assert_eq!(report.queries, 400);
    assert_eq!(report.latency_us.count, 400);
    let seen = seen.lock().expect("log");
    assert_eq!(seen.len(), 420, "warmup queries are sent too");
    assert!(
        seen.iter()
            .all(|(_, _, tenant)| tenant.as_deref() == Some("tenant-7"))
    );

    // The draw is a pure function of the seed and the query number, and about 3:1.
    let cheap = (20..420).filter(|&j| opts.entry_of(j) == 0).count() as u64;
    assert_eq!(report.entries[0].queries, cheap);
    assert_eq!(report.entries[1].queries, 400 - cheap);
    assert!(
        (260..=340).contains(&cheap),
        "{cheap} of 400 for weight 3 of 4"
    );
    assert_eq!(report.entries[0].latency_us.count, cheap);

    let mut by_path: BTreeMap<&str, usize> = BTreeMap::new();
    for (path, query, _) in seen.iter() {
        *by_path.entry(path.as_str()).or_default() += 1;
        match path.as_str() {
            "/prometheus/api/v1/query" => assert_eq!(query, "up"),
            "/prometheus/api/v1/query_range" => assert_eq!(query, "rate%28x%5B5m%5D%29"),
            other => panic!("unexpected path {other}"),
        }
    }
    let cheap_all = (0..420).filter(|&j| opts.entry_of(j) == 0).count();
    assert_eq!(by_path["/prometheus/api/v1/query"], cheap_all);
}

#[test]
fn errors_are_counted_by_kind() {
    let (url, _) = api(&[
        ("bad", 503, "overloaded"),
        ("soft", 200, r#"{"status":"error","errorType":"bad_data"}"#),
    ]);
    let opts = options(
        &url,
        &[
            "name=good,query=good",
            "name=bad,query=bad",
            "name=soft,query=soft",
        ],
        60,
        5,
        2000.0,
    );
    let report = mix::run(&opts).expect("run");
    let (good, bad, soft) = (&report.entries[0], &report.entries[1], &report.entries[2]);
    assert_eq!(good.queries + bad.queries + soft.queries, 60);
    assert!(bad.queries > 0 && soft.queries > 0);
    assert_eq!(
        (good.errors, bad.errors, soft.errors),
        (0, bad.queries, soft.queries)
    );
    assert_eq!(report.errors, bad.queries + soft.queries);
    assert_eq!(report.errors_by_kind["503"], bad.queries);
    assert_eq!(report.errors_by_kind["status"], soft.queries);
    assert_eq!(
        report.latency_us.count, good.queries,
        "failures are not timed"
    );
    assert!(!report.first_errors.is_empty());
}

#[test]
fn any_error_makes_the_exit_status_one() {
    let (url, _) = api(&[("bad", 500, "boom")]);
    let bin = env!("CARGO_BIN_EXE_strata-loadgen");
    let run = |query: &str, json: Option<&std::path::Path>| {
        let mut cmd = Command::new(bin);
        cmd.args(["query-mix", "--url", &url, "--count", "3", "--rate", "200"])
            .args(["--mix", &format!("weight=2,query={query}")])
            .args(["--end", "1700000000000"]);
        if let Some(path) = json {
            cmd.arg("--json-out").arg(path);
        }
        cmd.output().expect("run strata-loadgen")
    };
    let failed = run("bad", None);
    assert_eq!(failed.status.code(), Some(1), "{failed:?}");

    let json = std::env::temp_dir().join(format!("loadgen-mix-{}.json", std::process::id()));
    let ok = run("good", Some(&json));
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    assert!(String::from_utf8_lossy(&ok.stdout).contains("latency (ms)"));
    let text = std::fs::read_to_string(&json).expect("json written");
    let _ = std::fs::remove_file(&json);
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["queries"], 3);
    assert_eq!(v["errors"], 0);
    assert_eq!(v["latency_us"]["count"], 3);
    assert_eq!(v["entries"][0]["type"], "instant");
    assert_eq!(v["entries"][0]["weight"], 2);
    assert_eq!(v["end_ms"], 1_700_000_000_000_i64);

    let usage = Command::new(bin)
        .args([
            "query-mix",
            "--url",
            &url,
            "--count",
            "1",
            "--mix",
            "weight=1",
        ])
        .output()
        .expect("run");
    assert_eq!(usage.status.code(), Some(2), "a bad --mix is a usage error");
}

#[test]
fn open_loop_latency_counts_from_the_due_time() {
    const SLEEP: Duration = Duration::from_millis(50);
    let addr = server::serve(|_| {
        // Test scaffolding: a slow server.
        #[allow(clippy::disallowed_methods)]
        thread::sleep(SLEEP);
        server::Response::ok(SUCCESS)
    });
    let mut opts = options(&format!("http://{addr}"), &["query=up"], 5, 0, 100.0);
    opts.concurrency = 1;
    let report = mix::run(&opts).expect("run");
    assert_eq!(report.errors, 0, "{:?}", report.first_errors);
    let us = |d: Duration| u64::try_from(d.as_micros()).expect("small");
    // Every answer takes the server's sleep at least ...
    assert!(
        report.service_us.p50 >= us(SLEEP),
        "{:?}",
        report.service_us
    );
    assert!(
        report.latency_us.p50 >= us(SLEEP),
        "{:?}",
        report.latency_us
    );
    // ... and with one worker, query 4 (due at 40 ms) cannot finish before 5 sleeps have
    // passed: its latency includes the 210 ms it waited, which service time does not show.
    assert!(
        report.latency_us.max >= us(Duration::from_millis(5 * 50 - 40)),
        "{:?}",
        report.latency_us
    );
}
