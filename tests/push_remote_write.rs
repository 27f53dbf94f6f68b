//! Remote write 1.0 receiver behaviour, following the receiver cases of the remote-write
//! compliance suite that apply to 1.0 (`tests/data/remote-write/receiver-and-sender-cases.tsv`):
//! request handling (content types, encodings, corrupt bodies), 1.0 compatibility, and the
//! sample, metadata and exemplar cases. Every accepted sample is read back.

mod common;

use common::{Server, eq, now_ms, series, write};
use strata_net::remote_write::proto;

const T: Option<&str> = Some("tenant-a");

fn stored(s: &Server, name: &str) -> Vec<proto::TimeSeries> {
    s.read(T, vec![eq("__name__", name)], i64::MIN, i64::MAX)
}

#[test]
fn single_metric_with_special_values_is_stored_bit_for_bit() {
    let s = Server::default_for_tests();
    let t = now_ms();
    let stale = f64::from_bits(0x7ff0_0000_0000_0002);
    // (-0.0 is left out: prost, the client here, omits it as proto3's default value, unlike Go's
    // encoder; the decoder's own tests cover it.)
    let values = [
        1.5,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        stale,
        1e308,
        0.0,
    ];
    let samples: Vec<(i64, f64)> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (t + i as i64 * 1000, *v))
        .collect();
    let r = s.push(
        T,
        &write(vec![series(
            &[("__name__", "test_metric"), ("job", "j")],
            &samples,
        )]),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let got = stored(&s, "test_metric");
    assert_eq!(got.len(), 1);
    let bits: Vec<(i64, u64)> = got[0]
        .samples
        .iter()
        .map(|x| (x.timestamp, x.value.to_bits()))
        .collect();
    let want: Vec<(i64, u64)> = samples.iter().map(|(t, v)| (*t, v.to_bits())).collect();
    assert_eq!(
        bits, want,
        "values (stale marker included) must round-trip bit for bit"
    );
}

#[test]
fn metric_names_and_label_values_of_prometheus_3() {
    let s = Server::default_for_tests();
    let t = now_ms();
    let cases = [
        vec![
            ("__name__", "with_labels"),
            ("a", "1"),
            ("b", "2"),
            ("c", "3"),
        ],
        vec![("__name__", "newlines"), ("v", "line1\nline2")],
        vec![("__name__", "my.dotted.metric"), ("k", "v")],
        vec![
            ("__name__", "with spaces"),
            ("label with spaces", "value with spaces"),
        ],
        vec![
            ("__name__", "unicode"),
            ("emoji", "😀 ✓ 日本語"),
            ("ключ", "значение"),
        ],
        vec![("__name__", "colons:metric:rate5m"), ("job", "x")],
    ];
    let req = write(cases.iter().map(|l| series(l, &[(t, 1.0)])).collect());
    let r = s.push(T, &req);
    assert_eq!(r.status, 204, "{}", r.text());
    for c in &cases {
        let got = stored(&s, c[0].1);
        assert_eq!(got.len(), 1, "{:?}", c[0]);
        let labels: Vec<(String, String)> = got[0]
            .labels
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect();
        let mut want: Vec<(String, String)> =
            c.iter().map(|(n, v)| ((*n).into(), (*v).into())).collect();
        want.sort();
        assert_eq!(labels, want);
    }
}

#[test]
fn missing_metric_name_is_400_and_valid_series_are_kept() {
    let s = Server::default_for_tests();
    let t = now_ms();
    // "without name label", "empty metric" and "1 without name label" of the compliance suite.
    let r = s.push(T, &write(vec![series(&[("job", "x")], &[(t, 1.0)])]));
    assert_eq!(r.status, 400);
    assert!(r.text().contains("user=tenant-a"), "{}", r.text());
    assert!(
        r.text().contains("sample missing metric name"),
        "{}",
        r.text()
    );
    let r = s.push(T, &write(vec![series(&[], &[(t, 1.0)])]));
    assert_eq!(r.status, 400);
    let r = s.push(
        T,
        &write(vec![
            series(&[("__name__", "good_one"), ("i", "1")], &[(t, 1.0)]),
            series(&[("job", "no-name")], &[(t, 2.0)]),
            series(&[("__name__", "good_two"), ("i", "2")], &[(t, 3.0)]),
        ]),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        stored(&s, "good_one").len(),
        1,
        "valid series of a partly invalid request are kept"
    );
    assert_eq!(stored(&s, "good_two").len(), 1);
}

#[test]
fn invalid_series_messages_name_tenant_series_and_rule() {
    let s = Server::default_for_tests();
    let t = now_ms();
    let mut unsorted = series(&[("__name__", "m"), ("a", "1"), ("b", "2")], &[(t, 1.0)]);
    unsorted.labels.swap(1, 2);
    let r = s.push(T, &write(vec![unsorted]));
    assert_eq!(r.status, 400);
    assert!(r.text().contains("labels not sorted"), "{}", r.text());
    let mut dup = series(&[("__name__", "m"), ("a", "1")], &[(t, 1.0)]);
    dup.labels.push(proto::Label {
        name: "a".into(),
        value: "2".into(),
    });
    let r = s.push(T, &write(vec![dup]));
    assert_eq!(r.status, 400);
    assert!(r.text().contains("duplicate label name"), "{}", r.text());
    let mut empty_name = series(&[("__name__", "m")], &[(t, 1.0)]);
    empty_name.labels.insert(
        0,
        proto::Label {
            name: String::new(),
            value: "x".into(),
        },
    );
    let r = s.push(T, &write(vec![empty_name]));
    assert_eq!(r.status, 400);
    assert!(r.text().contains("invalid label"), "{}", r.text());
    let huge = "v".repeat(3000);
    let r = s.push(
        T,
        &write(vec![series(
            &[("__name__", "m"), ("big", &huge)],
            &[(t, 1.0)],
        )]),
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("label value too long"), "{}", r.text());
    assert!(r.text().contains("user=tenant-a"), "{}", r.text());
}

#[test]
fn out_of_order_and_duplicate_samples_are_rejected_as_prometheus_does() {
    let s = Server::default_for_tests();
    let t = now_ms();
    let l = [("__name__", "ooo"), ("job", "x")];
    assert_eq!(
        s.push(T, &write(vec![series(&l, &[(t, 1.0), (t + 1000, 2.0)])]))
            .status,
        204
    );
    let r = s.push(T, &write(vec![series(&l, &[(t - 1000, 0.5)])]));
    assert_eq!(r.status, 400);
    assert!(r.text().contains("out of order sample"), "{}", r.text());
    assert!(r.text().contains(r#"ooo{job="x"}"#), "{}", r.text());
    // The same sample again is accepted (idempotent retries); a new value is a duplicate.
    assert_eq!(
        s.push(T, &write(vec![series(&l, &[(t + 1000, 2.0)])]))
            .status,
        204
    );
    let r = s.push(T, &write(vec![series(&l, &[(t + 1000, 3.0)])]));
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("duplicate sample for timestamp"),
        "{}",
        r.text()
    );
    let got = stored(&s, "ooo");
    let vals: Vec<(i64, f64)> = got[0]
        .samples
        .iter()
        .map(|x| (x.timestamp, x.value))
        .collect();
    assert_eq!(vals, vec![(t, 1.0), (t + 1000, 2.0)]);
}

#[test]
fn bad_content_types_are_415() {
    let s = Server::default_for_tests();
    let body = snap::raw::Encoder::new()
        .compress_vec(&prost::Message::encode_to_vec(&write(vec![series(
            &[("__name__", "x")],
            &[(now_ms(), 1.0)],
        )])))
        .unwrap();
    for ct in [
        "application/json",
        "text/plain",
        "application/x-protobuf;proto=io.prometheus.write.v2.Request",
        "application/octet-stream",
    ] {
        let r = s.request(
            "POST",
            "/api/v1/push",
            &[
                ("X-Scope-OrgID", "t"),
                ("Content-Encoding", "snappy"),
                ("Content-Type", ct),
            ],
            &body,
        );
        assert_eq!(r.status, 415, "{ct}: {}", r.text());
    }
    // 1.0 compatibility: the basic content type, with or without the 1.0 proto parameter.
    for ct in [
        "application/x-protobuf",
        "application/x-protobuf;proto=prometheus.WriteRequest",
    ] {
        let r = s.request(
            "POST",
            "/api/v1/push",
            &[
                ("X-Scope-OrgID", "t"),
                ("Content-Encoding", "snappy"),
                ("Content-Type", ct),
            ],
            &body,
        );
        assert_eq!(r.status, 204, "{ct}: {}", r.text());
    }
}

#[test]
fn bad_content_encodings_are_415() {
    let s = Server::default_for_tests();
    for enc in ["gzip", "zstd", "deflate", "identity", "br"] {
        let r = s.request(
            "POST",
            "/api/v1/push",
            &[
                ("X-Scope-OrgID", "t"),
                ("Content-Encoding", enc),
                ("Content-Type", "application/x-protobuf"),
            ],
            b"whatever",
        );
        assert_eq!(r.status, 415, "{enc}: {}", r.text());
    }
}

#[test]
fn corrupt_bodies_are_400_and_never_crash() {
    let s = Server::default_for_tests();
    let valid = snap::raw::Encoder::new()
        .compress_vec(&prost::Message::encode_to_vec(&write(vec![series(
            &[("__name__", "x"), ("a", "b")],
            &[(now_ms(), 1.0)],
        )])))
        .unwrap();
    let not_protobuf = snap::raw::Encoder::new()
        .compress_vec(b"\xff\xff\xff\xff this is not protobuf")
        .unwrap();
    let bodies: Vec<Vec<u8>> = vec![
        b"not snappy at all".to_vec(),
        valid[..valid.len() / 2].to_vec(),
        not_protobuf,
        vec![0xff; 64],
        (0..1024u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect(),
    ];
    for b in &bodies {
        let r = s.push_raw(Some("t"), b);
        assert_eq!(r.status, 400, "{}", r.text());
    }
    // The server still works.
    assert_eq!(s.push_raw(Some("t"), &valid).status, 204);
}

#[test]
fn oversized_bodies_are_413_before_allocating() {
    let s = Server::start("distributor:\n  max_recv_msg_size: 1000\n", &[]);
    // A snappy header that declares 200 MiB in a tiny body.
    let mut lie = Vec::new();
    let mut n: u64 = 200 << 20;
    while n >= 0x80 {
        lie.push((n as u8) | 0x80);
        n >>= 7;
    }
    lie.push(n as u8);
    lie.extend_from_slice(&[0, 0, 0, 0]);
    let r = s.push_raw(Some("t"), &lie);
    assert_eq!(r.status, 413, "{}", r.text());
    // A body over the limit on the wire.
    let r = s.push_raw(Some("t"), &vec![0u8; 5000]);
    assert_eq!(r.status, 413, "{}", r.text());
    // A small body that decompresses past the limit.
    let big = write(vec![series(
        &[("__name__", "x"), ("v", &"y".repeat(5000))],
        &[(now_ms(), 1.0)],
    )]);
    let r = s.push(Some("t"), &big);
    assert_eq!(r.status, 413, "{}", r.text());
}

#[test]
fn metadata_and_exemplars_only_requests_are_accepted() {
    let s = Server::default_for_tests();
    let meta = proto::WriteRequest {
        timeseries: vec![],
        metadata: (0..8)
            .map(|t| proto::MetricMetadata {
                r#type: t,
                metric_family_name: format!("family_{t}"),
                help: "help with\nnewlines and ünïcode".into(),
                unit: "seconds".into(),
            })
            .collect(),
    };
    assert_eq!(s.push(T, &meta).status, 204);
    let mut ex = series(&[("__name__", "with_exemplar"), ("job", "x")], &[]);
    ex.exemplars.push(proto::Exemplar {
        labels: vec![proto::Label {
            name: "trace_id".into(),
            value: "abc123".into(),
        }],
        value: 1.0,
        timestamp: now_ms(),
    });
    assert_eq!(s.push(T, &write(vec![ex.clone()])).status, 204);
    // Samples with metadata and exemplars in one request: the samples are stored.
    ex.samples.push(proto::Sample {
        value: 42.0,
        timestamp: now_ms(),
    });
    let mut req = write(vec![ex]);
    req.metadata = meta.metadata;
    assert_eq!(s.push(T, &req).status, 204);
    assert_eq!(stored(&s, "with_exemplar")[0].samples.len(), 1);
}

#[test]
fn many_samples_and_mixed_timestamps_in_one_request() {
    let s = Server::default_for_tests();
    let t0 = now_ms() - 3_600_000;
    let mut all = Vec::new();
    for i in 0..500 {
        let samples: Vec<(i64, f64)> = (0..20)
            .map(|j| {
                (
                    t0 + j * 15_000 + i64::from(i % 7),
                    f64::from(i * 100) + j as f64,
                )
            })
            .collect();
        all.push(series(
            &[("__name__", "many"), ("i", &i.to_string())],
            &samples,
        ));
    }
    assert_eq!(s.push(T, &write(all)).status, 204);
    let got = stored(&s, "many");
    assert_eq!(got.len(), 500);
    assert!(got.iter().all(|g| g.samples.len() == 20));
}

#[test]
fn success_answers_have_no_body() {
    let s = Server::default_for_tests();
    let r = s.push(
        T,
        &write(vec![series(&[("__name__", "x")], &[(now_ms(), 1.0)])]),
    );
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    // Also under /api/v1/write and the /prometheus prefix.
    let body = snap::raw::Encoder::new()
        .compress_vec(&prost::Message::encode_to_vec(&write(vec![series(
            &[("__name__", "y")],
            &[(now_ms(), 1.0)],
        )])))
        .unwrap();
    for path in ["/api/v1/write", "/prometheus/api/v1/push"] {
        let r = s.request(
            "POST",
            path,
            &[("X-Scope-OrgID", "t"), ("Content-Encoding", "snappy")],
            &body,
        );
        assert_eq!(r.status, 204, "{path}");
    }
}
