//! The `s3` backend against moto's S3 server: the conformance suite and shipping a block.
//!
//! moto is found through `STRATA_MOTO_SERVER`, then `target/test-deps/venv/bin/moto_server`
//! (installed by `scripts/test-deps.sh`), then `moto_server` on `PATH`. Without it the test is
//! skipped with a notice, except under `CI=true`, where it fails.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use strata_engine::bucket::{Backend, Bucket, BucketConfig, S3Config, Secret, testing};

const BUCKET: &str = "strata-test";

/// A running moto server, killed on drop.
struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_moto_server() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("STRATA_MOTO_SERVER").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let venv =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-deps/venv/bin/moto_server");
    if venv.is_file() {
        return Some(venv);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("moto_server"))
        .find(|p| p.is_file())
}

/// Starts moto on a free port and creates the test bucket; `None` (after a notice) if moto is
/// not installed and this is not CI.
fn start_moto() -> Option<Moto> {
    let Some(server) = find_moto_server() else {
        let msg = "moto_server not found: run scripts/test-deps.sh (or set STRATA_MOTO_SERVER)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("skipping the S3 test: {msg}");
        return None;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let child = Command::new(&server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", server.display()));
    let moto = Moto { child, port };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(30);
    let base = format!("http://127.0.0.1:{port}");
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
            && ureq::get(&base).call().is_ok()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "moto did not answer on {base} within 30 s"
        );
        pause(Duration::from_millis(100));
    }
    ureq::put(format!("{base}/{BUCKET}"))
        .send_empty()
        .expect("create the test bucket");
    Some(moto)
}

#[allow(clippy::disallowed_methods)] // the test's own thread waiting for a child process
fn pause(d: Duration) {
    std::thread::sleep(d);
}

#[test]
fn s3_backend_conforms_and_ships_blocks() {
    let Some(moto) = start_moto() else {
        return;
    };
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
