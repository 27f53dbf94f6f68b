//! The `azure` backend against Azurite (Microsoft's Azure Storage emulator), configured by a
//! connection string as Mimir's `blocks_storage.azure.connection_string`: the conformance suite
//! and shipping a block.
//!
//! Azurite's blob server is found through `STRATA_AZURITE_BLOB`, then
//! `target/test-deps/azurite/node_modules/.bin/azurite-blob` (installed by
//! `scripts/test-deps.sh`), then `azurite-blob` on `PATH`. Without it the test is skipped with a
//! notice, except under `CI=true`, where it fails.

mod test_server;

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use strata_engine::bucket::{AzureConfig, Backend, Bucket, BucketConfig, Secret, testing};

const CONTAINER: &str = "strata-test";
/// Azurite's well-known development account and key (public, documented by Microsoft).
const ACCOUNT: &str = "devstoreaccount1";
const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// `PUT ?restype=container` with Shared Key authorization (`object_store` creates no
/// containers): the signature is HMAC-SHA256, under the account key, of the request's verb,
/// its (here empty) standard headers, its `x-ms-` headers and the resource.
fn create_container(port: u16) {
    let date = httpdate::fmt_http_date(SystemTime::now());
    let version = "2021-08-06";
    let to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n\
         /{ACCOUNT}/{ACCOUNT}/{CONTAINER}\nrestype:container"
    );
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &B64.decode(KEY).unwrap());
    let signature = B64.encode(ring::hmac::sign(&key, to_sign.as_bytes()).as_ref());
    ureq::put(format!(
        "http://127.0.0.1:{port}/{ACCOUNT}/{CONTAINER}?restype=container"
    ))
    .header("x-ms-date", &date)
    .header("x-ms-version", version)
    .header("Authorization", format!("SharedKey {ACCOUNT}:{signature}"))
    .send_empty()
    .expect("create the test container");
}

#[test]
fn azure_backend_conforms_and_ships_blocks() {
    let Some(server) = test_server::find(
        "STRATA_AZURITE_BLOB",
        "azurite/node_modules/.bin/azurite-blob",
        "azurite-blob",
    ) else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let azurite = test_server::start(&server, |port| {
        let mut args: Vec<std::ffi::OsString> = ["--blobHost", "127.0.0.1", "--blobPort"]
            .map(Into::into)
            .into();
        args.push(port.to_string().into());
        args.extend(["--skipApiVersionCheck", "--silent", "--location"].map(Into::into));
        args.push(data.path().into());
        args
    });
    create_container(azurite.port);
    let cfg = BucketConfig {
        backend: Backend::Azure,
        azure: AzureConfig {
            container_name: CONTAINER.into(),
            connection_string: Secret::new(format!(
                "DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};\
                 BlobEndpoint=http://127.0.0.1:{}/{ACCOUNT};",
                azurite.port
            )),
            ..AzureConfig::default()
        },
        ..BucketConfig::default()
    };
    let bucket = Bucket::new(&cfg).unwrap().with_part_size(1 << 20);
    let scratch = tempfile::tempdir().unwrap();
    let rt = compio::runtime::Runtime::new().unwrap();
    rt.block_on(testing::conformance(&bucket, "conformance", scratch.path()));
    rt.block_on(testing::ship_and_read_back(&bucket, scratch.path()));
    drop(azurite);
}
