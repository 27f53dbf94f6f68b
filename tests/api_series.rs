//! The series metadata API (`series`, `labels`, `label/<name>/values`): Prometheus's parameters,
//! JSON shape and errors, under `/api/v1/` and `/prometheus/api/v1/`, GET and POST.

mod common;

use common::{Server, now_ms, series, write};
use serde_json::json;

fn fleet(s: &Server, t: i64) {
    let mut all = Vec::new();
    for host in 0..3 {
        for mode in ["idle", "user", "system"] {
            all.push(series(
                &[
                    ("__name__", "node_cpu_seconds_total"),
                    ("instance", &format!("h{host}")),
                    ("job", "node"),
                    ("mode", mode),
                ],
                &[(t, 1.0)],
            ));
        }
        all.push(series(
            &[
                ("__name__", "up"),
                ("instance", &format!("h{host}")),
                ("job", "node"),
            ],
            &[(t + 60_000, 1.0)],
        ));
    }
    assert_eq!(s.push(Some("t"), &write(all)).status, 204);
}

#[test]
fn series_by_matchers_in_prometheus_shape() {
    let s = Server::default_for_tests();
    let t = now_ms() - 120_000;
    fleet(&s, t);
    let (st, v) = s.get_json(Some("t"), "/api/v1/series?match[]=up");
    assert_eq!(st, 200);
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"].as_array().unwrap().len(), 3);
    assert_eq!(
        v["data"][0],
        json!({"__name__": "up", "instance": "h0", "job": "node"})
    );
    let q = "/prometheus/api/v1/series?match[]=node_cpu_seconds_total%7Bmode%3D~%22idle%7Cuser%22%2Cinstance%21%3D%22h1%22%7D";
    let (_, v) = s.get_json(Some("t"), q);
    assert_eq!(v["data"].as_array().unwrap().len(), 4);
    // Two match[]: the union.
    let (_, v) = s.get_json(
        Some("t"),
        "/api/v1/series?match[]=up&match[]=%7Bmode%3D%22idle%22%7D",
    );
    assert_eq!(v["data"].as_array().unwrap().len(), 6);
    // A time range that excludes the cpu samples but includes up's.
    let (_, v) = s.get_json(
        Some("t"),
        &format!(
            "/api/v1/series?match[]=%7Bjob%3D%22node%22%7D&start={}",
            (t + 30_000) / 1000
        ),
    );
    assert_eq!(v["data"].as_array().unwrap().len(), 3);
    // limit truncates and warns.
    let (_, v) = s.get_json(
        Some("t"),
        "/api/v1/series?match[]=%7Bjob%3D%22node%22%7D&limit=2",
    );
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["warnings"], json!(["results truncated due to limit"]));
}

#[test]
fn labels_and_values() {
    let s = Server::default_for_tests();
    fleet(&s, now_ms());
    let (_, v) = s.get_json(Some("t"), "/api/v1/labels");
    assert_eq!(v["data"], json!(["__name__", "instance", "job", "mode"]));
    let (_, v) = s.get_json(Some("t"), "/api/v1/labels?match[]=up");
    assert_eq!(v["data"], json!(["__name__", "instance", "job"]));
    let (_, v) = s.get_json(Some("t"), "/api/v1/label/mode/values");
    assert_eq!(v["data"], json!(["idle", "system", "user"]));
    let (_, v) = s.get_json(Some("t"), "/api/v1/label/__name__/values");
    assert_eq!(v["data"], json!(["node_cpu_seconds_total", "up"]));
    let (_, v) = s.get_json(
        Some("t"),
        "/api/v1/label/instance/values?match[]=%7Bmode%3D%22idle%22%7D&limit=2",
    );
    assert_eq!(v["data"], json!(["h0", "h1"]));
    let (_, v) = s.get_json(Some("t"), "/api/v1/label/nonexistent/values");
    assert_eq!(v["data"], json!([]));
}

#[test]
fn post_form_is_the_same_as_get() {
    let s = Server::default_for_tests();
    fleet(&s, now_ms());
    let r = s.request(
        "POST",
        "/api/v1/series",
        &[
            ("X-Scope-OrgID", "t"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        b"match[]=up&match[]=%7Bmode%3D%22idle%22%7D",
    );
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 6);
}

#[test]
fn errors_are_bad_data() {
    let s = Server::default_for_tests();
    for (path, needle) in [
        ("/api/v1/series", "no match[] parameter provided"),
        (
            "/api/v1/series?match[]=up%7B",
            "invalid parameter \\\"match[]\\\"",
        ),
        (
            "/api/v1/series?match[]=%7Bjob%3D%22%22%7D",
            "non-empty matcher",
        ),
        (
            "/api/v1/series?match[]=up&start=yesterday",
            "invalid parameter \\\"start\\\"",
        ),
        (
            "/api/v1/series?match[]=up&start=10&end=5",
            "end timestamp must not be before start time",
        ),
        ("/api/v1/labels?limit=-1", "invalid parameter \\\"limit\\\""),
        ("/api/v1/series?match[]=sum(up)", "invalid parameter"),
    ] {
        let r = s.request("GET", path, &[("X-Scope-OrgID", "t")], b"");
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["status"], "error", "{path}");
        assert_eq!(v["errorType"], "bad_data", "{path}");
        assert!(v.to_string().contains(needle), "{path}: {v}");
    }
}

#[test]
fn ready_and_buildinfo() {
    let s = Server::default_for_tests();
    let r = s.request("GET", "/ready", &[], b"");
    assert_eq!(r.status, 200);
    let (st, v) = s.get_json(None, "/api/v1/status/buildinfo");
    assert_eq!(st, 200);
    assert_eq!(v["data"]["version"], env!("CARGO_PKG_VERSION"));
}
