//! What the backend tests against real servers (moto, Azurite) share: finding the server (an
//! environment variable, then what `scripts/test-deps.sh` installed under `target/test-deps/`,
//! then `PATH`), skipping without it except under `CI=true`, where the test fails instead, and
//! starting it on a free port.

use std::ffi::OsString;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process on loopback, killed on drop.
pub struct ServerProcess {
    child: Child,
    pub port: u16,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The program `name`: `$env` if set, else `target/test-deps/<installed>` if it is there, else
/// `name` on `PATH`. Missing: `None` after a notice, or a panic under `CI=true`.
pub fn find(env: &str, installed: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/test-deps")
        .join(installed);
    if local.is_file() {
        return Some(local);
    }
    let on_path = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    if on_path.is_none() {
        let msg = format!("{name} not found: run scripts/test-deps.sh (or set {env})");
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("skipping: {msg}");
    }
    on_path
}

/// Starts `program` with the arguments `args` gives for a free port, and waits until it accepts
/// connections there (a minute at most; its exit fails the test at once).
pub fn start(program: &Path, args: impl FnOnce(u16) -> Vec<OsString>) -> ServerProcess {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let child = Command::new(program)
        .args(args(port))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let mut server = ServerProcess { child, port };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_mins(1);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!(
                "{} exited with {status} before listening",
                program.display()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{} did not listen on {addr} within a minute",
            program.display()
        );
        pause(Duration::from_millis(100));
    }
    server
}

#[allow(clippy::disallowed_methods)] // the test's own thread waiting for a child process
fn pause(d: Duration) {
    std::thread::sleep(d);
}
