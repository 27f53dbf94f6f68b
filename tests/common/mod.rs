//! Starts the real `strata` binary on a free port and talks to it over HTTP.
#![allow(dead_code, clippy::missing_panics_doc)]

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prost::Message;
use strata_net::remote_write::proto;

/// A fresh, unique directory for a test's data.
pub fn temp_dir() -> PathBuf {
    std::env::temp_dir().join(format!(
        "strata-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ))
}

/// A `blocks_storage` section with the TSDB and bucket directories under `dir`: `tsdb` is added
/// under `tsdb:` (lines indented by four spaces), `more` after `filesystem:` (by two).
pub fn blocks_storage(dir: &Path, tsdb: &str, more: &str) -> String {
    format!(
        "blocks_storage:\n  tsdb:\n    dir: {}\n{tsdb}  filesystem:\n    dir: {}\n{more}",
        dir.join("tsdb").display(),
        dir.join("bucket").display()
    )
}

/// A running strata process; killed on drop.
pub struct Server {
    child: Child,
    pub addr: String,
    pub dir: PathBuf,
    /// The log up to the line saying it listens (start-up: WAL replay, configuration).
    pub startup_log: String,
    /// Whether `dir` outlives the server (started with [`Server::start_in`]).
    keep_dir: bool,
}

impl Server {
    /// Starts strata with `yaml` appended to a test base config (2 shards, port 0, data in a temp
    /// dir) and the extra CLI `args`.
    pub fn start(yaml: &str, args: &[&str]) -> Server {
        let mut s = Server::start_in(&temp_dir(), yaml, args);
        s.keep_dir = false;
        s
    }

    /// Like [`Server::start`], with its data in `dir` (kept from an earlier run: a restart).
    pub fn start_in(dir: &std::path::Path, yaml: &str, args: &[&str]) -> Server {
        let dir = dir.to_path_buf();
        std::fs::create_dir_all(&dir).unwrap();
        let mut config = String::from(
            "server:\n  http_listen_address: 127.0.0.1\n  http_listen_port: 0\ningester:\n  shards: 2\n",
        );
        // The data under `dir`, unless the test's config has its own `blocks_storage` (which
        // must then name its directories: the default, ./data, would be shared by every run).
        assert!(
            !yaml.contains("blocks_storage:") || yaml.contains("dir:"),
            "a test config with blocks_storage must set its dirs:\n{yaml}"
        );
        if !yaml.contains("blocks_storage:") {
            config.push_str(&blocks_storage(&dir, "", ""));
        }
        config.push_str(yaml);
        let cfg_path = dir.join("strata.yaml");
        std::fs::write(&cfg_path, config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
            .arg("--config.file")
            .arg(&cfg_path)
            .args(args)
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start strata");
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let mut log = String::new();
        let addr = loop {
            let Some(Ok(line)) = lines.next() else {
                panic!("strata exited before listening:\n{log}");
            };
            log.push_str(&line);
            log.push('\n');
            if let Some(i) = line.find("addr=")
                && line.contains("listening")
            {
                break line[i + 5..].split_whitespace().next().unwrap().to_string();
            }
        };
        // Keep draining the log so the child never blocks on a full pipe.
        #[allow(clippy::disallowed_methods)] // a test helper thread, not a shard
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            addr,
            dir,
            startup_log: log,
            keep_dir: true,
        }
    }

    /// Sends SIGKILL (no shutdown of any kind); dropping the server reaps it.
    pub fn sigkill(&self) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }

    /// Sends SIGTERM and waits (at most `timeout`) for the process to exit; `None` if it did not.
    #[allow(dead_code)] // not every test binary uses it
    pub fn sigterm_and_wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            #[allow(clippy::disallowed_methods)] // the test's thread, not a shard
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts strata with `auth_enabled: true` and generous limits.
    pub fn default_for_tests() -> Server {
        Server::start(
            "limits:\n  ingestion_rate: 1e9\n  ingestion_burst_size: 1000000000\n",
            &[],
        )
    }

    /// Sends one HTTP/1.1 request; returns status, headers (lowercased names) and body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.try_request(method, path, headers, body)
            .expect("request failed")
    }

    /// [`Server::request`], or `None` when the connection fails or no answer comes (the server
    /// died).
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Option<Response> {
        request_to(&self.addr, method, path, headers, body)
    }

    /// Pushes a remote-write request (prost-encoded, snappy-compressed) for `tenant`.
    pub fn push(&self, tenant: Option<&str>, req: &proto::WriteRequest) -> Response {
        let body = snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .unwrap();
        self.push_raw(tenant, &body)
    }

    pub fn push_raw(&self, tenant: Option<&str>, body: &[u8]) -> Response {
        let mut h = vec![
            ("Content-Encoding", "snappy"),
            ("Content-Type", "application/x-protobuf"),
            ("X-Prometheus-Remote-Write-Version", "0.1.0"),
        ];
        if let Some(t) = tenant {
            h.push(("X-Scope-OrgID", t));
        }
        self.request("POST", "/api/v1/push", &h, body)
    }

    /// Remote-reads the series matching `matchers` in [start, end].
    pub fn read(
        &self,
        tenant: Option<&str>,
        matchers: Vec<proto::LabelMatcher>,
        start: i64,
        end: i64,
    ) -> Vec<proto::TimeSeries> {
        let req = proto::ReadRequest {
            queries: vec![proto::Query {
                start_timestamp_ms: start,
                end_timestamp_ms: end,
                matchers,
                hints: None,
            }],
            accepted_response_types: vec![],
        };
        let body = snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .unwrap();
        let mut h = vec![
            ("Content-Encoding", "snappy"),
            ("Content-Type", "application/x-protobuf"),
        ];
        if let Some(t) = tenant {
            h.push(("X-Scope-OrgID", t));
        }
        let r = self.request("POST", "/api/v1/read", &h, &body);
        assert_eq!(r.status, 200, "remote read failed: {}", r.text());
        let raw = snap::raw::Decoder::new().decompress_vec(&r.body).unwrap();
        let resp = proto::ReadResponse::decode(raw.as_slice()).unwrap();
        resp.results.into_iter().next().unwrap().timeseries
    }

    /// GETs a Prometheus API path and parses the JSON answer.
    pub fn get_json(&self, tenant: Option<&str>, path: &str) -> (u16, serde_json::Value) {
        let h: Vec<(&str, &str)> = tenant
            .map(|t| vec![("X-Scope-OrgID", t)])
            .unwrap_or_default();
        let r = self.request("GET", path, &h, b"");
        let v = serde_json::from_slice(&r.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.text()));
        (r.status, v)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.keep_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// One HTTP/1.1 request to `addr`; `None` when the connection fails or no answer comes.
pub fn request_to(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<Response> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        let _ = write!(req, "{k}: {v}\r\n");
    }
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        let _ = write!(req, "Content-Length: {}\r\n", body.len());
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    if !raw.starts_with(b"HTTP/1.1 ") || !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        return None;
    }
    Some(Response::parse(&raw))
}

/// Pushes a remote-write request (no tenant header) to `addr`; `None` as [`request_to`].
#[allow(dead_code)] // not every test binary uses it
pub fn try_push_to(addr: &str, req: &proto::WriteRequest) -> Option<Response> {
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    let h = [
        ("Content-Encoding", "snappy"),
        ("Content-Type", "application/x-protobuf"),
        ("X-Prometheus-Remote-Write-Version", "0.1.0"),
    ];
    request_to(addr, "POST", "/api/v1/push", &h, &body)
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    fn parse(raw: &[u8]) -> Response {
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("no HTTP header end");
        let head = std::str::from_utf8(&raw[..end]).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut body = raw[end + 4..].to_vec();
        if headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
        {
            body = dechunk(&body);
        }
        Response {
            status,
            headers,
            body,
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(i) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let n = usize::from_str_radix(std::str::from_utf8(&b[..i]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[i + 2..i + 2 + n]);
        b = &b[i + 4 + n..];
    }
}

/// A series with the given labels (sorted here) and samples.
pub fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> proto::TimeSeries {
    let mut l: Vec<proto::Label> = labels
        .iter()
        .map(|(n, v)| proto::Label {
            name: (*n).into(),
            value: (*v).into(),
        })
        .collect();
    l.sort_by(|a, b| a.name.cmp(&b.name));
    proto::TimeSeries {
        labels: l,
        samples: samples
            .iter()
            .map(|&(t, v)| proto::Sample {
                value: v,
                timestamp: t,
            })
            .collect(),
        exemplars: vec![],
        histograms: vec![],
    }
}

pub fn write(series: Vec<proto::TimeSeries>) -> proto::WriteRequest {
    proto::WriteRequest {
        timeseries: series,
        metadata: vec![],
    }
}

pub fn eq(name: &str, value: &str) -> proto::LabelMatcher {
    proto::LabelMatcher {
        r#type: 0,
        name: name.into(),
        value: value.into(),
    }
}

pub fn re(name: &str, value: &str) -> proto::LabelMatcher {
    proto::LabelMatcher {
        r#type: 2,
        name: name.into(),
        value: value.into(),
    }
}

/// Now in ms.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Prometheus's `promtool`: `STRATA_PROMTOOL`, else `promtool` on `PATH`. `None` (with a
/// notice) when missing; a test failure instead under `CI=true`, so CI never skips silently.
pub fn promtool() -> Option<PathBuf> {
    let found = match std::env::var_os("STRATA_PROMTOOL") {
        Some(p) => Some(PathBuf::from(p)).filter(|p| p.is_file()),
        None => std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("promtool"))
                .find(|p| p.is_file())
        }),
    };
    if found.is_none() {
        let msg = "promtool not found: set STRATA_PROMTOOL or put Prometheus's promtool on PATH \
                   (scripts/test-deps.sh installs it)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("notice: {msg}; skipping this test");
    }
    found
}
