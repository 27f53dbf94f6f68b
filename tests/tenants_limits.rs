//! Tenancy and per-tenant limits: tenant IDs validated as Cortex does, tenants never see each
//! other's data, and the limits answer with Cortex's messages and status codes.

mod common;

use common::{Server, eq, now_ms, series, write};

#[test]
fn missing_tenant_is_401_and_invalid_tenant_is_400() {
    let s = Server::default_for_tests();
    let req = write(vec![series(&[("__name__", "x")], &[(now_ms(), 1.0)])]);
    let r = s.push(None, &req);
    assert_eq!(r.status, 401);
    assert!(r.text().contains("no org id"), "{}", r.text());
    for bad in [
        "..",
        ".",
        "a/b",
        "../../etc",
        &"x".repeat(151),
        "a|b",
        "sp ace",
    ] {
        let r = s.push(Some(bad), &req);
        assert_eq!(r.status, 400, "{bad:?}: {}", r.text());
        assert!(r.text().contains("tenant"), "{}", r.text());
    }
    assert_eq!(s.push(Some(&"x".repeat(150)), &req).status, 204);
    let (status, _) = s.get_json(None, "/api/v1/labels");
    assert_eq!(status, 401);
}

#[test]
fn tenants_never_see_each_others_data() {
    let s = Server::default_for_tests();
    let t = now_ms();
    let req_a = write(vec![series(
        &[("__name__", "shared_name"), ("owner", "a")],
        &[(t, 1.0)],
    )]);
    let req_b = write(vec![series(
        &[("__name__", "shared_name"), ("owner", "b")],
        &[(t, 2.0)],
    )]);
    assert_eq!(s.push(Some("a"), &req_a).status, 204);
    assert_eq!(s.push(Some("b"), &req_b).status, 204);
    for (tenant, owner) in [("a", "a"), ("b", "b")] {
        let got = s.read(
            Some(tenant),
            vec![eq("__name__", "shared_name")],
            i64::MIN,
            i64::MAX,
        );
        assert_eq!(got.len(), 1);
        assert!(
            got[0]
                .labels
                .iter()
                .any(|l| l.name == "owner" && l.value == owner)
        );
        let (_, v) = s.get_json(Some(tenant), "/api/v1/label/owner/values");
        assert_eq!(v["data"], serde_json::json!([owner]));
    }
    assert!(
        s.read(
            Some("c"),
            vec![eq("__name__", "shared_name")],
            i64::MIN,
            i64::MAX
        )
        .is_empty()
    );
}

#[test]
fn auth_disabled_uses_anonymous() {
    let s = Server::start(
        "auth_enabled: false\nlimits:\n  ingestion_rate: 1e9\n  ingestion_burst_size: 1000000000\n",
        &[],
    );
    let req = write(vec![series(&[("__name__", "anon")], &[(now_ms(), 1.0)])]);
    assert_eq!(s.push(None, &req).status, 204);
    assert_eq!(
        s.read(None, vec![eq("__name__", "anon")], i64::MIN, i64::MAX)
            .len(),
        1
    );
}

#[test]
fn ingestion_rate_limit_is_429_and_nothing_of_the_request_is_kept() {
    let s = Server::start(
        "limits:\n  ingestion_rate: 10\n  ingestion_burst_size: 100\n",
        &[],
    );
    let t = now_ms();
    let small: Vec<_> = (0..50)
        .map(|i| series(&[("__name__", "rl"), ("i", &i.to_string())], &[(t, 1.0)]))
        .collect();
    assert_eq!(s.push(Some("t"), &write(small)).status, 204);
    let big: Vec<_> = (0..80)
        .map(|i| series(&[("__name__", "rl2"), ("i", &i.to_string())], &[(t, 1.0)]))
        .collect();
    let r = s.push(Some("t"), &write(big));
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(
        r.text()
            .contains("ingestion rate limit (10) exceeded while adding 80 samples and 0 metadata"),
        "{}",
        r.text()
    );
    assert!(
        s.read(Some("t"), vec![eq("__name__", "rl2")], i64::MIN, i64::MAX)
            .is_empty()
    );
    // Another tenant has its own bucket.
    let other: Vec<_> = (0..80)
        .map(|i| series(&[("__name__", "rl2"), ("i", &i.to_string())], &[(t, 1.0)]))
        .collect();
    assert_eq!(s.push(Some("u"), &write(other)).status, 204);
}

#[test]
fn series_limit_keeps_existing_series_and_refuses_new_ones() {
    let s = Server::start(
        "limits:\n  max_global_series_per_user: 10\n  ingestion_rate: 1e9\n  ingestion_burst_size: 1000000000\n",
        &[],
    );
    let t = now_ms();
    let first: Vec<_> = (0..10)
        .map(|i| series(&[("__name__", "sl"), ("i", &i.to_string())], &[(t, 1.0)]))
        .collect();
    assert_eq!(s.push(Some("t"), &write(first)).status, 204);
    let more: Vec<_> = (0..12)
        .map(|i| {
            series(
                &[("__name__", "sl"), ("i", &i.to_string())],
                &[(t + 1000, 2.0)],
            )
        })
        .collect();
    let r = s.push(Some("t"), &write(more));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("per-user series limit of 10 exceeded"),
        "{}",
        r.text()
    );
    let got = s.read(Some("t"), vec![eq("__name__", "sl")], i64::MIN, i64::MAX);
    assert_eq!(got.len(), 10);
    assert!(
        got.iter().all(|g| g.samples.len() == 2),
        "existing series still take samples"
    );
}

#[test]
fn label_limits_and_sample_age() {
    let s = Server::start(
        "limits:\n  max_label_names_per_series: 3\n  max_label_name_length: 10\n  reject_old_samples: true\n  reject_old_samples_max_age: 1h\n  creation_grace_period: 1m\n",
        &[],
    );
    let t = now_ms();
    let r = s.push(
        Some("t"),
        &write(vec![series(
            &[("__name__", "m"), ("a", "1"), ("b", "2"), ("c", "3")],
            &[(t, 1.0)],
        )]),
    );
    assert_eq!(r.status, 400);
    assert!(
        r.text()
            .contains("series has too many labels (actual: 4, limit: 3)"),
        "{}",
        r.text()
    );
    let r = s.push(
        Some("t"),
        &write(vec![series(
            &[("__name__", "m"), ("a_very_long_name", "1")],
            &[(t, 1.0)],
        )]),
    );
    assert!(r.text().contains("label name too long"), "{}", r.text());
    let r = s.push(
        Some("t"),
        &write(vec![series(
            &[("__name__", "old")],
            &[(t - 7_200_000, 1.0)],
        )]),
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("timestamp too old"), "{}", r.text());
    let r = s.push(
        Some("t"),
        &write(vec![series(&[("__name__", "new")], &[(t + 600_000, 1.0)])]),
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("timestamp too new"), "{}", r.text());
}

#[test]
fn legacy_name_validation() {
    let s = Server::start("name_validation_scheme: legacy\n", &[]);
    let t = now_ms();
    let r = s.push(
        Some("t"),
        &write(vec![series(&[("__name__", "my.metric")], &[(t, 1.0)])]),
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("invalid metric name"), "{}", r.text());
    let r = s.push(
        Some("t"),
        &write(vec![series(
            &[("__name__", "ok_metric"), ("bad-label", "x")],
            &[(t, 1.0)],
        )]),
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("invalid label"), "{}", r.text());
}

#[test]
fn metrics_endpoint_counts_per_tenant() {
    let s = Server::default_for_tests();
    let t = now_ms();
    let req = write(
        (0..5)
            .map(|i| series(&[("__name__", "mm"), ("i", &i.to_string())], &[(t, 1.0)]))
            .collect(),
    );
    assert_eq!(s.push(Some("metrics-tenant"), &req).status, 204);
    let r = s.request("GET", "/metrics", &[], b"");
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(
        text.contains(r#"strata_distributor_received_samples_total{user="metrics-tenant"} 5"#),
        "{text}"
    );
    assert!(text.contains("strata_ingester_memory_series 5"), "{text}");
    // The push waited for a WAL commit (group commit is the default): one commit at least.
    let count = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    assert!(
        count("strata_ingester_tsdb_wal_fsync_duration_seconds_count") >= 1,
        "{text}"
    );
    assert!(
        count("strata_ingester_tsdb_wal_commit_pushes_count") >= 1,
        "{text}"
    );
}
