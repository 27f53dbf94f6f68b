//! Blocks written by Prometheus are queryable: `promtool tsdb create-blocks-from openmetrics`
//! (Prometheus 2.42's promtool, through `STRATA_PROMTOOL` or on `PATH`) turns an OpenMetrics
//! text generated here into blocks, which are copied into a filesystem bucket under a tenant
//! (`<bucket>/<tenant>/<ULID>/`). The HTTP API (`query_range`, `query`, `series`, `labels`,
//! `label/<name>/values`) then answers with exactly the input's samples for that tenant, merged
//! with what the tenant's heads hold, and nothing for another tenant.
//!
//! The server runs in process, wired as `src/main.rs` wires it plus a `BlockCatalog` per shard
//! (the binary does not build the bucket from its configuration yet).

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc;

use prost::Message;
use serde_json::Value;
use strata_engine::blocks::{BlockCatalog, BucketStoreConfig};
use strata_engine::bucket::{Backend, Bucket, BucketConfig, FilesystemConfig};
use strata_engine::config::QuerierConfig;
use strata_engine::instance::Instance;
use strata_engine::limits::{Limits, TenantRegistry};
use strata_engine::metrics::Metrics;
use strata_engine::rt::{Runtime, RuntimeOptions};
use strata_engine::shard::{Shard, ShardMsg, serve_inbox};
use strata_engine::tenant::TenantId;
use strata_engine::validation::NameValidationScheme;
use strata_net::api::{ApiConfig, App};
use strata_storage::head::HeadOptions;
use strata_storage::labels::Labels;
use strata_storage::matcher::{MatchType, Matcher};

const TENANT: &str = "prom-import";
/// A 2h block boundary (ms): the samples straddle it, so promtool writes two blocks.
const BOUNDARY: i64 = 1_700_006_400_000;
const FIRST: i64 = BOUNDARY - 30 * 60_000;
const STEP: i64 = 60_000;
const SAMPLES: i64 = 60;
const LAST: i64 = FIRST + (SAMPLES - 1) * STEP;

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "strata-query-blocks-{}-{}",
            std::process::id(),
            common::now_ms()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The input: series (labels, metric name included) and their samples (ms, value).
type Input = BTreeMap<Labels, Vec<(i64, f64)>>;

fn input() -> Input {
    let mut input = Input::new();
    let series = [
        ("temperature", "kitchen", 21.25),
        ("temperature", "bedroom", 18.5),
        ("humidity", "kitchen", 40.0),
    ];
    for (n, (name, room, base)) in series.into_iter().enumerate() {
        let labels = Labels::from_pairs([("__name__", name), ("room", room), ("site", "home")]);
        let samples = (0..SAMPLES)
            .map(|i| (FIRST + i * STEP, base + (i as f64) * 0.125 - (n as f64)))
            .collect();
        input.insert(labels, samples);
    }
    input
}

/// The input as OpenMetrics text (one family after another, timestamps in seconds).
fn openmetrics(input: &Input) -> String {
    let mut text = String::new();
    let mut family = "";
    for (labels, samples) in input {
        let name = labels.metric_name();
        if name != family {
            let _ = writeln!(
                text,
                "# HELP {name} {name} of the test.\n# TYPE {name} gauge"
            );
            family = name;
        }
        let pairs: Vec<String> = labels
            .iter()
            .filter(|l| l.name != "__name__")
            .map(|l| format!("{}=\"{}\"", l.name, l.value))
            .collect();
        for (t, v) in samples {
            let _ = writeln!(text, "{name}{{{}}} {v} {}", pairs.join(","), t / 1000);
        }
    }
    text.push_str("# EOF\n");
    text
}

/// Runs promtool on the input and copies its blocks to `<bucket>/<TENANT>/`; returns how many.
fn import(promtool: &Path, dir: &Path, input: &Input) -> usize {
    let om = dir.join("input.om");
    std::fs::write(&om, openmetrics(input)).unwrap();
    let out = dir.join("promtool-out");
    let run = Command::new(promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&out)
        .output()
        .expect("run promtool");
    assert!(
        run.status.success(),
        "promtool failed:\n{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let tenant_dir = dir.join("bucket").join(TENANT);
    let mut blocks = 0;
    for entry in std::fs::read_dir(&out).unwrap() {
        let entry = entry.unwrap();
        if entry.path().join("meta.json").is_file() {
            copy_dir(&entry.path(), &tenant_dir.join(entry.file_name()));
            blocks += 1;
        }
    }
    blocks
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn bucket(dir: &Path) -> Bucket {
    Bucket::new(&BucketConfig {
        backend: Backend::Filesystem,
        filesystem: FilesystemConfig {
            dir: dir.to_path_buf(),
        },
        ..BucketConfig::default()
    })
    .unwrap()
}

/// Starts 2 shards serving the HTTP API, each with a catalog over `bucket`; returns the address.
fn serve(bucket: &Bucket) -> String {
    let metrics = Arc::new(Metrics::new());
    let limits = Limits {
        ingestion_rate: 1e9,
        ingestion_burst_size: 1_000_000_000,
        ..Limits::default()
    };
    let registry = Arc::new(TenantRegistry::new(limits, metrics.clone()));
    let api = ApiConfig {
        auth_enabled: true,
        max_recv_msg_size: 100 << 20,
        name_validation_scheme: NameValidationScheme::Utf8,
        engine: QuerierConfig::default().engine_options(),
    };
    let opts = RuntimeOptions {
        shards: 2,
        pin: false,
        ..RuntimeOptions::default()
    };
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let ready = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let bucket = bucket.clone();
    let rt = Runtime::start::<ShardMsg, _>(&opts, "127.0.0.1:0".parse().unwrap(), move |env| {
        let shard = Rc::new(RefCell::new(Shard::new(
            env.mesh.id(),
            HeadOptions::default(),
            NameValidationScheme::Utf8,
        )));
        let instance = Instance::new(
            shard.clone(),
            env.mesh.clone(),
            registry.clone(),
            metrics.clone(),
        );
        let mut app = App::new(instance, api.clone(), ready.clone());
        let catalog = BlockCatalog::new(None, Some(bucket.clone()), &BucketStoreConfig::default());
        let catalog = Rc::new(catalog.unwrap());
        shard
            .borrow_mut()
            .set_blocks(catalog.clone(), env.mesh.shards());
        app.blocks = catalog;
        let app = Rc::new(app);
        let started = started_tx.clone();
        Box::pin(async move {
            compio::runtime::spawn(serve_inbox(shard, env.inbox)).detach();
            let _ = started.send(());
            strata_net::http::server::serve(env.listener, app).await;
        })
    })
    .unwrap();
    for _ in 0..2 {
        started_rx.recv().unwrap();
    }
    let addr = rt.addr().to_string();
    // The shards serve until the test process exits.
    std::mem::forget(rt);
    addr
}

fn get(addr: &str, tenant: &str, path: &str) -> Value {
    let body = ureq::get(format!("http://{addr}{path}"))
        .header("X-Scope-OrgID", tenant)
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
        .into_body()
        .read_to_string()
        .unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "success", "{path}: {body}");
    v
}

/// A label set as JSON results show it: `(name, value)` pairs in order.
type Key = Vec<(String, String)>;

/// A matrix or vector result as label set (without the metric name when the query dropped it)
/// to `(ms, value)` points.
fn points(result: &Value) -> BTreeMap<Key, Vec<(i64, f64)>> {
    let mut out = BTreeMap::new();
    for s in result["data"]["result"].as_array().unwrap() {
        let labels: Key = s["metric"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        let values = match s.get("values") {
            Some(v) => v.as_array().unwrap().clone(),
            None => vec![s["value"].clone()],
        };
        let pts = values
            .iter()
            .map(|p| {
                let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
                (t, p[1].as_str().unwrap().parse::<f64>().unwrap())
            })
            .collect();
        out.insert(labels, pts);
    }
    out
}

fn key(labels: &Labels) -> Key {
    labels
        .iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect()
}

fn seconds(ms: i64) -> String {
    format!("{}", ms as f64 / 1000.0)
}

/// Pushes one sample of `labels` at `t` for `tenant` (remote write).
fn push(addr: &str, tenant: &str, labels: &[(&str, &str)], t: i64) {
    let req = common::write(vec![common::series(labels, &[(t, 1.0)])]);
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    let r = ureq::post(format!("http://{addr}/api/v1/push"))
        .header("X-Scope-OrgID", tenant)
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .send(&body[..])
        .unwrap();
    assert_eq!(r.status(), 204);
}

#[test]
fn prometheus_blocks_in_the_bucket_are_queryable() {
    let Some(promtool) = common::promtool() else {
        return;
    };
    let dir = TempDir::new();
    let input = input();
    let blocks = import(&promtool, dir.path(), &input);
    assert_eq!(blocks, 2, "the samples straddle a 2h boundary");
    let bucket = bucket(&dir.path().join("bucket"));

    // Through the engine API first.
    let rt = compio::runtime::Runtime::new().unwrap();
    let catalog =
        BlockCatalog::new(None, Some(bucket.clone()), &BucketStoreConfig::default()).unwrap();
    let tenant = TenantId::parse(TENANT).unwrap();
    let all = rt
        .block_on(catalog.select(&tenant, &[], FIRST, LAST, None))
        .unwrap();
    let got: Input = all.into_iter().map(|s| (s.labels, s.samples)).collect();
    assert_eq!(got, input);
    let m = [Matcher::new(MatchType::Equal, "room", "kitchen").unwrap()];
    let kitchen = rt
        .block_on(catalog.series(&tenant, &[m.to_vec()], FIRST, LAST, None))
        .unwrap();
    assert_eq!(kitchen.len(), 2);

    // Through the HTTP API.
    let addr = serve(&bucket);
    let (start, end) = (seconds(FIRST), seconds(LAST));
    for name in ["temperature", "humidity"] {
        let r = get(
            &addr,
            TENANT,
            &format!("/api/v1/query_range?query={name}&start={start}&end={end}&step=60"),
        );
        let want: BTreeMap<_, _> = input
            .iter()
            .filter(|(l, _)| l.metric_name() == name)
            .map(|(l, s)| (key(l), s.clone()))
            .collect();
        assert_eq!(points(&r), want, "{name}");
    }
    // An aggregation is evaluated over the blocks too (not pushed down to the heads only).
    let r = get(
        &addr,
        TENANT,
        &format!("/api/v1/query_range?query=sum(temperature)&start={start}&end={end}&step=60"),
    );
    let sum: Vec<(i64, f64)> = (0..SAMPLES as usize)
        .map(|i| {
            let at = |room: &str| {
                let l = Labels::from_pairs([
                    ("__name__", "temperature"),
                    ("room", room),
                    ("site", "home"),
                ]);
                input[&l][i]
            };
            (at("kitchen").0, at("kitchen").1 + at("bedroom").1)
        })
        .collect();
    assert_eq!(points(&r), BTreeMap::from([(Vec::new(), sum)]));
    // An instant query right after the boundary reads the second block.
    let r = get(
        &addr,
        TENANT,
        &format!("/api/v1/query?query=humidity&time={}", seconds(BOUNDARY)),
    );
    let humidity = input
        .iter()
        .find(|(l, _)| l.metric_name() == "humidity")
        .unwrap();
    let at_boundary = humidity
        .1
        .iter()
        .find(|p| p.0 == BOUNDARY)
        .copied()
        .unwrap();
    assert_eq!(
        points(&r),
        BTreeMap::from([(key(humidity.0), vec![at_boundary])])
    );

    // Series and labels: the blocks' merged with the heads'.
    push(
        &addr,
        TENANT,
        &[
            ("__name__", "temperature"),
            ("room", "garage"),
            ("site", "home"),
        ],
        common::now_ms(),
    );
    let r = get(
        &addr,
        TENANT,
        &format!("/api/v1/series?match[]=temperature&start={start}&end={end}"),
    );
    let rooms: Vec<&str> = r["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["room"].as_str().unwrap())
        .collect();
    assert_eq!(rooms, ["bedroom", "kitchen"]);
    let r = get(&addr, TENANT, "/api/v1/series?match[]=temperature");
    assert_eq!(r["data"].as_array().unwrap().len(), 3, "{r}");
    let r = get(&addr, TENANT, "/api/v1/labels");
    assert_eq!(r["data"], serde_json::json!(["__name__", "room", "site"]));
    let r = get(&addr, TENANT, "/api/v1/label/room/values");
    assert_eq!(
        r["data"],
        serde_json::json!(["bedroom", "garage", "kitchen"])
    );
    let r = get(
        &addr,
        TENANT,
        &format!("/api/v1/label/__name__/values?start={start}&end={end}"),
    );
    assert_eq!(r["data"], serde_json::json!(["humidity", "temperature"]));

    // Another tenant sees none of it.
    let r = get(
        &addr,
        "someone-else",
        &format!("/api/v1/query_range?query=temperature&start={start}&end={end}&step=60"),
    );
    assert!(points(&r).is_empty());
    let r = get(&addr, "someone-else", "/api/v1/series?match[]=temperature");
    assert_eq!(r["data"], serde_json::json!([]));
    let r = get(&addr, "someone-else", "/api/v1/labels");
    assert_eq!(r["data"], serde_json::json!([]));
}
