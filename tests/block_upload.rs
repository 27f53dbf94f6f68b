//! Block upload through the HTTP API (`/api/v1/upload/block/<ULID>/{start,files,finish,check}`)
//! of the real binary: a block written with strata's `BlockWriter` is uploaded for one tenant,
//! stored in the filesystem bucket as `<tenant>/<ULID>/` with the tenant in meta.json, and then
//! answers queries with exactly its samples, for that tenant only. Invalid uploads (a flipped
//! index byte, a meta.json naming another block) are refused with a 4xx naming the problem and
//! leave nothing in the bucket; a second upload of a stored block gets 409.

mod common;

use std::path::{Path, PathBuf};

use common::Server;
use serde_json::Value;
use strata_storage::block::{BlockWriter, BlockWriterOptions, Ulid};
use strata_storage::chunkenc::xor::XorEncoder;
use strata_storage::head::ChunkMeta;
use strata_storage::labels::Labels;

const TENANT_A: &str = "team-a";
const TENANT_B: &str = "team-b";
/// First sample (ms); samples every 15s.
const T0: i64 = 1_700_000_000_000;
const STEP: i64 = 15_000;
const SAMPLES: i64 = 200;

/// The value of series `s` at sample `i`.
fn value(s: i64, i: i64) -> f64 {
    (s * 1000 + i) as f64 / 4.0
}

/// Writes a block of two series (`upload_test{series="0"|"1"}`) under `parent`.
fn write_block(parent: &Path, ulid: Ulid) -> PathBuf {
    let mut w = BlockWriter::new(parent, ulid, BlockWriterOptions::default()).unwrap();
    for s in 0..2 {
        let labels = Labels::from_pairs([
            ("__name__", "upload_test".to_string()),
            ("series", s.to_string()),
        ]);
        let mut chunks: Vec<(i64, i64, Vec<u8>)> = Vec::new();
        for first in (0..SAMPLES).step_by(120) {
            let mut enc = XorEncoder::new();
            let idx: Vec<i64> = (first..(first + 120).min(SAMPLES)).collect();
            for &i in &idx {
                enc.append(T0 + i * STEP, value(s, i));
            }
            let (a, b) = (idx[0], idx[idx.len() - 1]);
            chunks.push((T0 + a * STEP, T0 + b * STEP, enc.into_bytes()));
        }
        w.add_series(
            &labels,
            chunks.iter().map(|(min_t, max_t, data)| ChunkMeta {
                min_t: *min_t,
                max_t: *max_t,
                data,
            }),
        )
        .unwrap();
    }
    w.finish().unwrap();
    parent.join(ulid.to_string())
}

fn post(server: &Server, tenant: &str, path: &str, body: &[u8]) -> common::Response {
    server.request("POST", path, &[("X-Scope-OrgID", tenant)], body)
}

fn check(server: &Server, tenant: &str, ulid: Ulid) -> (u16, Value) {
    let r = server.request(
        "GET",
        &format!("/api/v1/upload/block/{ulid}/check"),
        &[("X-Scope-OrgID", tenant)],
        b"",
    );
    let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status, v)
}

/// Uploads the block in `dir` as `ulid` for `tenant`; returns the `finish` answer (or the first
/// refusal before it).
fn upload(server: &Server, tenant: &str, ulid: Ulid, dir: &Path) -> common::Response {
    let base = format!("/api/v1/upload/block/{ulid}");
    let meta = std::fs::read(dir.join("meta.json")).unwrap();
    let r = post(server, tenant, &format!("{base}/start"), &meta);
    if r.status != 200 {
        return r;
    }
    assert_eq!(check(server, tenant, ulid).1["result"], "uploading");
    for file in ["chunks/000001", "index"] {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        // The `/prometheus` prefix serves the same routes.
        let r = post(
            server,
            tenant,
            &format!("/prometheus{base}/files?path={file}"),
            &bytes,
        );
        assert_eq!(r.status, 200, "{file}: {}", r.text());
    }
    post(server, tenant, &format!("{base}/finish"), b"")
}

/// Every object path under `dir`, relative, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn instant(server: &Server, tenant: &str, query: &str, t_ms: i64) -> Vec<Value> {
    let path = format!(
        "/api/v1/query?query={query}&time={}.{:03}",
        t_ms / 1000,
        t_ms % 1000
    );
    let (status, v) = server.get_json(Some(tenant), &path);
    assert_eq!(status, 200, "{v}");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

#[test]
fn uploaded_blocks_are_validated_stored_and_queryable() {
    let dir = common::temp_dir();
    let src = dir.join("src");
    let yaml = common::blocks_storage(&dir, "", "  bucket_store:\n    sync_interval: 0s\n");
    let server = Server::start_in(&dir, &yaml, &[]);
    let bucket = dir.join("bucket");

    // A valid block for tenant A.
    let ulid = Ulid::new(1_700_000_100_000, 1);
    let block = write_block(&src, ulid);
    let r = upload(&server, TENANT_A, ulid, &block);
    assert_eq!(r.status, 200, "{}", r.text());
    let (status, state) = check(&server, TENANT_A, ulid);
    assert_eq!((status, state["result"].as_str()), (200, Some("complete")));
    let stored = files_under(&bucket.join(TENANT_A).join(ulid.to_string()));
    assert_eq!(stored, ["chunks/000001", "index", "meta.json"]);
    let meta: Value = serde_json::from_slice(
        &std::fs::read(bucket.join(format!("{TENANT_A}/{ulid}/meta.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["thanos"]["labels"]["__org_id__"], TENANT_A);
    assert_eq!(meta["thanos"]["source"], "upload");
    assert_eq!(meta["ulid"], ulid.to_string());
    assert!(
        files_under(&dir.join("tsdb/upload")).is_empty(),
        "staging left behind"
    );

    // Queries see exactly its samples, for tenant A only.
    for i in [0, 1, 119, 120, SAMPLES - 1] {
        let t = T0 + i * STEP;
        let mut got = instant(&server, TENANT_A, "upload_test", t);
        got.sort_by_key(|s| s["metric"]["series"].as_str().unwrap_or("").to_owned());
        assert_eq!(got.len(), 2, "at sample {i}: {got:?}");
        for (s, series) in got.iter().enumerate() {
            assert_eq!(series["metric"]["series"], s.to_string());
            let v: f64 = series["value"][1].as_str().unwrap().parse().unwrap();
            assert_eq!(v, value(s as i64, i), "series {s} at sample {i}");
            assert_eq!(series["value"][0].as_f64().unwrap(), t as f64 / 1000.0);
        }
    }
    let end = T0 + (SAMPLES - 1) * STEP;
    let want = SAMPLES.to_string();
    let count = instant(
        &server,
        TENANT_A,
        "count_over_time(upload_test%5B2h%5D)",
        end,
    );
    assert!(
        count.len() == 2 && count.iter().all(|s| s["value"][1].as_str() == Some(&*want)),
        "{count:?}"
    );
    assert!(instant(&server, TENANT_B, "upload_test", end).is_empty());

    // The same block again: 409, at start.
    let r = upload(&server, TENANT_A, ulid, &block);
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("already exists"), "{}", r.text());

    // A flipped index byte: refused at finish, naming the index; nothing stored.
    let bad = Ulid::new(1_700_000_100_000, 2);
    let bad_dir = write_block(&src, bad);
    let index = bad_dir.join("index");
    let mut bytes = std::fs::read(&index).unwrap();
    // Inside the symbol table (after the 5-byte header and its length and count).
    bytes[14] ^= 0x40;
    std::fs::write(&index, bytes).unwrap();
    let r = upload(&server, TENANT_A, bad, &bad_dir);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("index"), "{}", r.text());
    assert!(r.text().contains(&bad.to_string()), "{}", r.text());
    let (_, state) = check(&server, TENANT_A, bad);
    assert_eq!(state["result"], "failed", "{state}");
    assert!(
        state["error"].as_str().unwrap_or("").contains("index"),
        "{state}"
    );
    assert!(!bucket.join(format!("{TENANT_A}/{bad}")).exists());

    // A meta.json naming another block: refused at start, naming meta.json.
    let other = Ulid::new(1_700_000_100_000, 3);
    let meta = std::fs::read(block.join("meta.json")).unwrap();
    let r = post(
        &server,
        TENANT_A,
        &format!("/api/v1/upload/block/{other}/start"),
        &meta,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("meta.json") && r.text().contains(&ulid.to_string()),
        "{}",
        r.text()
    );
    assert!(!bucket.join(format!("{TENANT_A}/{other}")).exists());

    // Files before start, and paths that are not block files.
    let r = post(
        &server,
        TENANT_A,
        &format!("/api/v1/upload/block/{other}/files?path=index"),
        b"x",
    );
    assert_eq!(r.status, 404, "{}", r.text());
    let r = post(
        &server,
        TENANT_A,
        &format!("/api/v1/upload/block/{other}/files?path=../meta.json"),
        b"x",
    );
    assert_eq!(r.status, 400, "{}", r.text());

    // Only the valid block reached the bucket.
    assert_eq!(
        files_under(&bucket),
        [
            format!("{TENANT_A}/{ulid}/chunks/000001"),
            format!("{TENANT_A}/{ulid}/index"),
            format!("{TENANT_A}/{ulid}/meta.json"),
        ]
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `limits.compactor_block_upload_max_block_size_bytes` caps the bytes of a block's files: a file
/// that would take the block past it is refused with 413 naming the limit, a file sent again
/// replaces its earlier copy in the count, and a block within the limit is stored.
#[test]
fn a_block_larger_than_the_tenants_upload_limit_is_refused() {
    let dir = common::temp_dir();
    let src = dir.join("src");
    let ulid = Ulid::new(1_700_000_200_000, 2);
    let block = write_block(&src, ulid);
    let size = |f: &str| std::fs::metadata(block.join(f)).unwrap().len();
    let (chunks, index) = (size("chunks/000001"), size("index"));
    // Room for the chunks and the index, but not for the chunks twice.
    let limit = chunks + index;
    let yaml = format!(
        "{}limits:\n  compactor_block_upload_max_block_size_bytes: {limit}\n",
        common::blocks_storage(&dir, "", "")
    );
    let server = Server::start_in(&dir, &yaml, &[]);
    let base = format!("/api/v1/upload/block/{ulid}");
    let meta = std::fs::read(block.join("meta.json")).unwrap();
    assert_eq!(
        post(&server, TENANT_A, &format!("{base}/start"), &meta).status,
        200
    );
    let send = |file: &str, bytes: &[u8]| {
        post(
            &server,
            TENANT_A,
            &format!("{base}/files?path={file}"),
            bytes,
        )
    };
    let chunk_bytes = std::fs::read(block.join("chunks/000001")).unwrap();
    assert_eq!(send("chunks/000001", &chunk_bytes).status, 200);
    // Sent again: replaces the first copy, still within the limit.
    assert_eq!(send("chunks/000001", &chunk_bytes).status, 200);
    // A second segment as large as the first would pass the limit.
    let r = send("chunks/000002", &chunk_bytes);
    assert_eq!(r.status, 413, "{}", r.text());
    let text = r.text();
    assert!(
        text.contains("compactor_block_upload_max_block_size_bytes")
            && text.contains(&limit.to_string())
            && text.contains("chunks/000002"),
        "{text}"
    );
    // The block itself fits.
    let index_bytes = std::fs::read(block.join("index")).unwrap();
    assert_eq!(send("index", &index_bytes).status, 200);
    let r = post(&server, TENANT_A, &format!("{base}/finish"), b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        check(&server, TENANT_A, ulid).1["result"],
        "complete",
        "the refused segment left nothing behind"
    );
}
