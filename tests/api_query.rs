//! The `PromQL` query API (`query`, `query_range`, `format_query`, `parse_query`): Prometheus's
//! parameters, its exact JSON (values as strings, timestamps as float seconds) and its errors,
//! under `/api/v1/` and `/prometheus/api/v1/`, GET and POST.

mod common;

use common::{Server, now_ms, series, write};

/// A minute-aligned time ten minutes ago, in ms.
fn base() -> i64 {
    now_ms() / 60_000 * 60_000 - 600_000
}

/// Pushes `up` for two instances and a counter, one sample every 15s for 2 minutes from `t0`.
fn load(s: &Server, t0: i64) {
    let steps: Vec<i64> = (0..=8).map(|i| t0 + i * 15_000).collect();
    let all = vec![
        series(
            &[("__name__", "up"), ("instance", "a:9100"), ("job", "node")],
            &steps.iter().map(|&t| (t, 1.0)).collect::<Vec<_>>(),
        ),
        series(
            &[("__name__", "up"), ("instance", "b:9100"), ("job", "node")],
            &steps.iter().map(|&t| (t, 0.0)).collect::<Vec<_>>(),
        ),
        series(
            &[
                ("__name__", "requests_total"),
                ("code", "200"),
                ("job", "api"),
            ],
            &steps
                .iter()
                .enumerate()
                .map(|(i, &t)| (t, i as f64 * 150.0))
                .collect::<Vec<_>>(),
        ),
    ];
    assert_eq!(s.push(Some("t"), &write(all)).status, 204);
}

fn get(s: &Server, tenant: &str, path: &str) -> (u16, String) {
    let r = s.request("GET", path, &[("X-Scope-OrgID", tenant)], b"");
    (r.status, r.text())
}

fn secs(ms: i64) -> String {
    assert_eq!(ms % 1000, 0);
    (ms / 1000).to_string()
}

#[test]
fn instant_query_answers_prometheus_json() {
    let s = Server::default_for_tests();
    let t0 = base();
    load(&s, t0);
    let t = t0 + 60_000;
    let ts = secs(t);
    let (st, body) = get(&s, "t", &format!("/api/v1/query?query=up&time={ts}"));
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        body,
        format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{"__name__":"up","instance":"a:9100","job":"node"}},"value":[{ts},"1"]}},{{"metric":{{"__name__":"up","instance":"b:9100","job":"node"}},"value":[{ts},"0"]}}]}}}}"#
        )
    );
    // A fractional time and the /prometheus prefix.
    let t = t0 + 60_500;
    let (st, body) = get(
        &s,
        "t",
        &format!(
            "/prometheus/api/v1/query?query=requests_total&time={}.5",
            secs(t - 500)
        ),
    );
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        body,
        format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{"__name__":"requests_total","code":"200","job":"api"}},"value":[{}.500,"600"]}}]}}}}"#,
            secs(t - 500)
        )
    );
}

#[test]
fn scalars_strings_and_special_values() {
    let s = Server::default_for_tests();
    let t0 = base();
    load(&s, t0);
    let ts = secs(t0 + 60_000);
    let q = |expr: &str| get(&s, "t", &format!("/api/v1/query?query={expr}&time={ts}"));
    assert_eq!(
        q("1%2B1").1,
        format!(r#"{{"status":"success","data":{{"resultType":"scalar","result":[{ts},"2"]}}}}"#)
    );
    assert_eq!(
        q("%22foo%22").1,
        format!(r#"{{"status":"success","data":{{"resultType":"string","result":[{ts},"foo"]}}}}"#)
    );
    assert_eq!(
        q("1e6").1,
        format!(
            r#"{{"status":"success","data":{{"resultType":"scalar","result":[{ts},"1000000"]}}}}"#
        )
    );
    assert_eq!(
        q("vector(1)%2F0").1,
        format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[{ts},"+Inf"]}}]}}}}"#
        )
    );
    assert_eq!(
        q("vector(-1)%2F0").1,
        format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[{ts},"-Inf"]}}]}}}}"#
        )
    );
    assert_eq!(
        q("vector(0)%2F0").1,
        format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[{ts},"NaN"]}}]}}}}"#
        )
    );
    // Prometheus writes a scalar in plain notation but a sample below 1e-6 with an exponent.
    assert_eq!(
        q("1e-7").1,
        format!(
            r#"{{"status":"success","data":{{"resultType":"scalar","result":[{ts},"0.0000001"]}}}}"#
        )
    );
    assert_eq!(
        q("vector(1e-7)").1,
        format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[{ts},"1e-07"]}}]}}}}"#
        )
    );
    assert_eq!(
        q("vector(0.1)").1,
        format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[{ts},"0.1"]}}]}}}}"#
        )
    );
}

#[test]
fn range_query_answers_a_matrix() {
    let s = Server::default_for_tests();
    let t0 = base();
    load(&s, t0);
    let (start, end) = (secs(t0), secs(t0 + 60_000));
    let mid = secs(t0 + 30_000);
    let (st, body) = get(
        &s,
        "t",
        &format!(
            "/api/v1/query_range?query=sum%20by%20(job)%20(up)&start={start}&end={end}&step=30s"
        ),
    );
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        body,
        format!(
            r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{"job":"node"}},"values":[[{start},"1"],[{mid},"1"],[{end},"1"]]}}]}}}}"#
        )
    );
    // The same as a POST form, with the step as float seconds.
    let form = format!("query=sum%20by%20(job)%20(up)&start={start}&end={end}&step=30");
    let r = s.request(
        "POST",
        "/prometheus/api/v1/query_range",
        &[
            ("X-Scope-OrgID", "t"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        form.as_bytes(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), body);
    // Another tenant sees nothing.
    let (st, other) = get(
        &s,
        "u",
        &format!("/api/v1/query_range?query=up&start={start}&end={end}&step=30s"),
    );
    assert_eq!(st, 200);
    assert_eq!(
        other,
        r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#
    );
}

#[test]
fn limit_truncates_with_a_warning_and_gzip_is_honoured() {
    let s = Server::default_for_tests();
    let t0 = base();
    load(&s, t0);
    let ts = secs(t0 + 60_000);
    let (st, body) = get(
        &s,
        "t",
        &format!("/api/v1/query?query=up&time={ts}&limit=1"),
    );
    assert_eq!(st, 200);
    assert_eq!(
        body,
        format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{"__name__":"up","instance":"a:9100","job":"node"}},"value":[{ts},"1"]}}]}},"warnings":["results truncated due to limit"]}}"#
        )
    );
    let r = s.request(
        "GET",
        &format!("/api/v1/query?query=up&time={ts}"),
        &[("X-Scope-OrgID", "t"), ("Accept-Encoding", "gzip, deflate")],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(&r.body[..2], &[0x1f, 0x8b]);
}

#[test]
fn errors_have_prometheus_types() {
    let s = Server::default_for_tests();
    let t0 = base();
    load(&s, t0);
    let (start, end) = (secs(t0), secs(t0 + 3_600_000));
    let (st, body) = get(
        &s,
        "t",
        &format!("/api/v1/query_range?query=up&start={start}&end={end}&step=0.1"),
    );
    assert_eq!(st, 400);
    assert_eq!(
        body,
        r#"{"status":"error","errorType":"bad_data","error":"exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"}"#
    );
    let (st, body) = get(
        &s,
        "t",
        &format!("/api/v1/query_range?query=up&start={start}&end={end}"),
    );
    assert_eq!(st, 400);
    assert_eq!(
        body,
        r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"step\": cannot parse \"\" to a valid duration"}"#
    );
    let (st, body) = get(
        &s,
        "t",
        &format!("/api/v1/query_range?query=up&start={end}&end={start}&step=15s"),
    );
    assert_eq!(st, 400);
    assert_eq!(
        body,
        r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"end\": end timestamp must not be before start time"}"#
    );
    let (st, body) = get(&s, "t", "/api/v1/query?query=sum(");
    assert_eq!(st, 400, "{body}");
    assert!(
        body.starts_with(
            r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": "#
        ),
        "{body}"
    );
    let (st, body) = get(&s, "t", "/api/v1/query?query=up&time=yesterday");
    assert_eq!(st, 400);
    assert_eq!(
        body,
        r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"time\": cannot parse \"yesterday\" to a valid timestamp"}"#
    );
    // Many-to-many matching fails while running: 422 execution.
    let (st, body) = get(
        &s,
        "t",
        &format!(
            "/api/v1/query?query=up%20%2B%20on(job)%20up&time={}",
            secs(t0 + 60_000)
        ),
    );
    assert_eq!(st, 422, "{body}");
    assert!(
        body.starts_with(r#"{"status":"error","errorType":"execution","error":"#),
        "{body}"
    );
    // No tenant.
    let r = s.request("GET", "/api/v1/query?query=up", &[], b"");
    assert_eq!(r.status, 401);
}

#[test]
fn format_and_parse_query() {
    let s = Server::default_for_tests();
    let (st, body) = get(
        &s,
        "t",
        "/api/v1/format_query?query=sum(rate(foo%7Bjob%3D%22a%22%7D%5B5m%5D))",
    );
    assert_eq!(st, 200);
    assert_eq!(
        body,
        r#"{"status":"success","data":"sum(rate(foo{job=\"a\"}[5m]))"}"#
    );
    let (st, v) = s.get_json(Some("t"), "/api/v1/parse_query?query=up%7Bjob%3D%22a%22%7D");
    assert_eq!(st, 200);
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["type"], "vectorSelector");
    assert_eq!(v["data"]["name"], "up");
    let (st, _) = get(&s, "t", "/api/v1/parse_query?query=sum(");
    assert_eq!(st, 400);
}
