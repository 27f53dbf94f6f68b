//! The `s3` backend against moto's S3 server: the conformance suite and shipping a block.
//!
//! moto is found through `STRATA_MOTO_SERVER`, then `target/test-deps/venv/bin/moto_server`
//! (installed by `scripts/test-deps.sh`), then `moto_server` on `PATH`. Without it the test is
//! skipped with a notice, except under `CI=true`, where it fails.

mod test_server;

use strata_engine::bucket::{Backend, Bucket, BucketConfig, S3Config, Secret, testing};

const BUCKET: &str = "strata-test";

#[test]
fn s3_backend_conforms_and_ships_blocks() {
    let Some(server) =
        test_server::find("STRATA_MOTO_SERVER", "venv/bin/moto_server", "moto_server")
    else {
        return;
    };
    let moto = test_server::start(&server, |port| {
        vec![
            "-H".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string().into(),
        ]
    });
    ureq::put(format!("http://127.0.0.1:{}/{BUCKET}", moto.port))
        .send_empty()
        .expect("create the test bucket");
    let cfg = BucketConfig {
        backend: Backend::S3,
        s3: S3Config {
            endpoint: format!("127.0.0.1:{}", moto.port),
            region: "us-east-1".into(),
            bucket_name: BUCKET.into(),
            access_key_id: "test".into(),
            secret_access_key: Secret::new("test"),
            insecure: true,
            ..S3Config::default()
        },
        ..BucketConfig::default()
    };
    // S3 needs 5 MiB parts: put_file's multipart case uploads 12.5 MiB.
    let bucket = Bucket::new(&cfg).unwrap().with_part_size(5 << 20);
    let scratch = tempfile::tempdir().unwrap();
    let rt = compio::runtime::Runtime::new().unwrap();
    rt.block_on(testing::conformance(&bucket, "conformance", scratch.path()));

    rt.block_on(testing::ship_and_read_back(&bucket, scratch.path()));
    drop(moto);
}
