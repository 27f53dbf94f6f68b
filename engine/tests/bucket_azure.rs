//! The `azure` backend against Azurite (Microsoft's Azure Storage emulator), configured by a
//! connection string as Mimir's `blocks_storage.azure.connection_string`: the conformance suite
//! and shipping a block.
//!
//! Azurite's blob server is found through `STRATA_AZURITE_BLOB`, then
//! `target/test-deps/azurite/node_modules/.bin/azurite-blob` (installed by
//! `scripts/test-deps.sh`), then `azurite-blob` on `PATH`. Without it the test is skipped with a
//! notice, except under `CI=true`, where it fails.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use strata_engine::bucket::{AzureConfig, Backend, Bucket, BucketConfig, Secret, testing};

const CONTAINER: &str = "strata-test";
/// Azurite's well-known development account and key (public, documented by Microsoft).
const ACCOUNT: &str = "devstoreaccount1";
const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A running Azurite blob server, killed on drop.
struct Azurite {
    child: Child,
    port: u16,
    _data: tempfile::TempDir,
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_azurite() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("STRATA_AZURITE_BLOB").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/test-deps/azurite/node_modules/.bin/azurite-blob");
    if local.is_file() {
        return Some(local);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("azurite-blob"))
        .find(|p| p.is_file())
}

/// Starts Azurite on a free port and creates the test container; `None` (after a notice) if
/// Azurite is not installed and this is not CI.
fn start_azurite() -> Option<Azurite> {
    let Some(server) = find_azurite() else {
        let msg = "azurite-blob not found: run scripts/test-deps.sh (or set STRATA_AZURITE_BLOB)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("skipping the Azure test: {msg}");
        return None;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let data = tempfile::tempdir().unwrap();
    let child = Command::new(&server)
        .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
        .args(["--skipApiVersionCheck", "--silent", "--location"])
        .arg(data.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", server.display()));
    let mut azurite = Azurite {
        child,
        port,
        _data: data,
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_mins(1);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if let Ok(Some(status)) = azurite.child.try_wait() {
            panic!("azurite exited with {status} before listening");
        }
        assert!(
            Instant::now() < deadline,
            "azurite did not listen on {addr} within a minute"
        );
        pause(Duration::from_millis(100));
    }
    create_container(port);
    Some(azurite)
}

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

#[allow(clippy::disallowed_methods)] // the test's own thread waiting for a child process
fn pause(d: Duration) {
    std::thread::sleep(d);
}

#[test]
fn azure_backend_conforms_and_ships_blocks() {
    let Some(azurite) = start_azurite() else {
        return;
    };
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
