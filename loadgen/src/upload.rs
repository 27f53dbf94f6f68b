//! `strata-loadgen upload`: sends block directories to a server's block upload API (Mimir's
//! shape, as strata serves it under `/api/v1/upload/block/<ULID>/`): `start` with meta.json,
//! `files?path=...` once per file (the chunk segments, then the index, each streamed from disk
//! with its length), `finish`, then `check` until the block is `complete` or `failed`.
//!
//! A directory argument is either one block (it holds `meta.json`) or a directory of blocks
//! (every ULID-named subdirectory with a `meta.json`, as `backfill --blocks-dir` leaves them),
//! uploaded oldest ULID first. The first refusal stops the run with the server's message.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use serde::Deserialize;
use ureq::{Agent, AsSendBody};

use crate::Error;
use crate::http::USER_AGENT;

/// The header that carries the tenant.
const ORG_ID_HEADER: &str = "X-Scope-OrgID";

/// A `tombstones` file no larger than this records no deletion (Prometheus writes a header and a
/// checksum even when there is none).
const EMPTY_TOMBSTONES_LEN: u64 = 9;

/// How long to wait between two `check` calls.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// `strata-loadgen upload` flags.
#[derive(Args, Debug)]
pub struct UploadArgs {
    /// Base URL of the server; the API is under `<url>/api/v1/upload/block/`
    #[arg(long, default_value = "http://127.0.0.1:9009")]
    url: String,
    /// Tenant that owns the blocks (sent as X-Scope-OrgID)
    #[arg(long)]
    tenant: String,
    /// Block directories, or directories of blocks
    #[arg(required = true, value_name = "DIR")]
    dirs: Vec<PathBuf>,
    /// Per-request timeout (`finish` answers after validating the block and storing it)
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

/// One block on disk, ready to send.
#[derive(Debug)]
struct LocalBlock {
    dir: PathBuf,
    ulid: String,
    /// Relative paths, `/`-separated: chunk segments in order, then `index`.
    files: Vec<String>,
}

/// The `check` answer.
#[derive(Debug, Deserialize)]
struct Check {
    result: String,
    #[serde(default)]
    error: String,
}

fn file_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::File {
        path: path.to_owned(),
        source,
    }
}

/// Whether `name` looks like a ULID (26 characters of Crockford's base32).
fn is_ulid(name: &str) -> bool {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    name.len() == 26
        && name
            .bytes()
            .all(|c| ALPHABET.contains(&c.to_ascii_uppercase()))
}

/// The blocks named by the command line, in order.
fn find_blocks(dirs: &[PathBuf]) -> Result<Vec<LocalBlock>, Error> {
    let mut out = Vec::new();
    for dir in dirs {
        if dir.join("meta.json").is_file() {
            out.push(LocalBlock::open(dir)?);
            continue;
        }
        let mut found: Vec<PathBuf> = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(file_err(dir))? {
            let path = entry.map_err(file_err(dir))?.path();
            let named = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(is_ulid);
            if named && path.join("meta.json").is_file() {
                found.push(path);
            }
        }
        if found.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: neither a block (no meta.json) nor a directory of blocks",
                dir.display()
            )));
        }
        found.sort();
        for path in found {
            out.push(LocalBlock::open(&path)?);
        }
    }
    Ok(out)
}

impl LocalBlock {
    fn open(dir: &Path) -> Result<Self, Error> {
        #[derive(Deserialize)]
        struct Meta {
            ulid: String,
        }
        let meta_path = dir.join("meta.json");
        let meta = std::fs::read(&meta_path).map_err(file_err(&meta_path))?;
        let meta: Meta = serde_json::from_slice(&meta).map_err(|source| Error::Json {
            path: meta_path.clone(),
            source,
        })?;
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let ulid = if is_ulid(name) {
            name.to_owned()
        } else {
            meta.ulid
        };
        let chunks_dir = dir.join("chunks");
        let mut segments: Vec<(u64, String)> = Vec::new();
        if chunks_dir.is_dir() {
            for entry in std::fs::read_dir(&chunks_dir).map_err(file_err(&chunks_dir))? {
                let name = entry.map_err(file_err(&chunks_dir))?.file_name();
                let name = name.to_string_lossy().into_owned();
                match name.parse::<u64>() {
                    Ok(n) => segments.push((n, name)),
                    Err(_) => {
                        return Err(Error::Invalid(format!(
                            "{}: unexpected file chunks/{name} (segments are numbered)",
                            dir.display()
                        )));
                    }
                }
            }
        }
        segments.sort_unstable();
        let mut files: Vec<String> = segments
            .into_iter()
            .map(|(_, name)| format!("chunks/{name}"))
            .collect();
        files.push("index".to_owned());
        for entry in std::fs::read_dir(dir).map_err(file_err(dir))? {
            let entry = entry.map_err(file_err(dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            match name.as_str() {
                "meta.json" | "index" | "chunks" => {}
                "tombstones" => {
                    let len = entry.metadata().map_err(file_err(&entry.path()))?.len();
                    if len > EMPTY_TOMBSTONES_LEN {
                        return Err(Error::Invalid(format!(
                            "{}: the block has deletions (tombstones), which the upload API \
                             does not take; rewrite the block without them first",
                            dir.display()
                        )));
                    }
                }
                other => {
                    return Err(Error::Invalid(format!(
                        "{}: unexpected file {other} in a block directory",
                        dir.display()
                    )));
                }
            }
        }
        Ok(LocalBlock {
            dir: dir.to_owned(),
            ulid,
            files,
        })
    }
}

/// Talks to one server as one tenant.
struct Uploader {
    agent: Agent,
    base: String,
    tenant: String,
}

impl Uploader {
    fn url(&self, ulid: &str, action: &str) -> String {
        format!("{}/api/v1/upload/block/{ulid}/{action}", self.base)
    }

    /// POSTs `body`; a non-2xx answer is an error naming the step and the server's reason.
    fn post(&self, url: &str, body: impl AsSendBody) -> Result<Vec<u8>, Error> {
        let response = self
            .agent
            .post(url)
            .header(ORG_ID_HEADER, &self.tenant)
            .send(body);
        answer("POST", url, response)
    }

    fn get(&self, url: &str) -> Result<Vec<u8>, Error> {
        let response = self
            .agent
            .get(url)
            .header(ORG_ID_HEADER, &self.tenant)
            .call();
        answer("GET", url, response)
    }

    /// Uploads one block and waits until the server has stored it; returns the bytes sent.
    fn upload(&self, block: &LocalBlock, timeout: Duration) -> Result<u64, Error> {
        let meta_path = block.dir.join("meta.json");
        let meta = std::fs::read(&meta_path).map_err(file_err(&meta_path))?;
        let mut sent = meta.len() as u64;
        self.post(&self.url(&block.ulid, "start"), &meta[..])?;
        for rel in &block.files {
            let path = block.dir.join(rel);
            let file = File::open(&path).map_err(file_err(&path))?;
            sent += file.metadata().map_err(file_err(&path))?.len();
            // A file is sent with its length, streamed from disk.
            let url = format!("{}?path={rel}", self.url(&block.ulid, "files"));
            self.post(&url, file)?;
        }
        self.post(&self.url(&block.ulid, "finish"), &[][..])?;
        let deadline = Instant::now() + timeout;
        loop {
            let body = self.get(&self.url(&block.ulid, "check"))?;
            let check: Check = serde_json::from_slice(&body).map_err(|e| {
                Error::Invalid(format!(
                    "block {}: unreadable check answer: {e}",
                    block.ulid
                ))
            })?;
            match check.result.as_str() {
                "complete" => return Ok(sent),
                "failed" => {
                    return Err(Error::Invalid(format!(
                        "block {}: the server refused it: {}",
                        block.ulid, check.error
                    )));
                }
                _ if Instant::now() >= deadline => {
                    return Err(Error::Invalid(format!(
                        "block {}: still {} after {timeout:?}",
                        block.ulid, check.result
                    )));
                }
                _ => {
                    #[allow(clippy::disallowed_methods)] // a command-line client, not a shard
                    std::thread::sleep(POLL_INTERVAL);
                }
            }
        }
    }
}

/// The body of a 2xx answer; any other status is an error naming the request and the reason.
fn answer(
    method: &str,
    url: &str,
    response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<Vec<u8>, Error> {
    let mut response = response?;
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_vec()?;
    if !(200..300).contains(&status) {
        let text = String::from_utf8_lossy(&body[..body.len().min(2000)]);
        return Err(Error::Invalid(format!(
            "{method} {url}: HTTP {status}: {}",
            text.trim()
        )));
    }
    Ok(body)
}

/// Runs `strata-loadgen upload`.
pub fn main(args: &UploadArgs) -> Result<bool, Error> {
    let blocks = find_blocks(&args.dirs)?;
    let uploader = Uploader {
        agent: Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(USER_AGENT)
            .timeout_global(Some(args.timeout))
            .build()
            .into(),
        base: args.url.trim_end_matches('/').to_owned(),
        tenant: args.tenant.clone(),
    };
    let started = Instant::now();
    let mut total = 0;
    for block in &blocks {
        let t = Instant::now();
        let bytes = uploader.upload(block, args.timeout)?;
        total += bytes;
        eprintln!(
            "strata-loadgen: uploaded block {} ({} files, {bytes} bytes) for tenant {} in {:.1}s",
            block.ulid,
            block.files.len() + 1,
            args.tenant,
            t.elapsed().as_secs_f64()
        );
    }
    eprintln!(
        "strata-loadgen: uploaded {} blocks ({total} bytes) to {} in {:.1}s",
        blocks.len(),
        uploader.base,
        started.elapsed().as_secs_f64()
    );
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_blocks_and_their_files_in_order() {
        let root = std::env::temp_dir().join(format!(
            "strata-loadgen-upload-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let ulid = "01HQ3M6TDJDT0P2QG3D5E5K9X7";
        let block = root.join(ulid);
        std::fs::create_dir_all(block.join("chunks")).expect("mkdir");
        std::fs::write(block.join("meta.json"), format!("{{\"ulid\":\"{ulid}\"}}")).expect("meta");
        std::fs::write(block.join("index"), b"i").expect("index");
        for seg in ["000010", "000002", "000001"] {
            std::fs::write(block.join("chunks").join(seg), b"c").expect("segment");
        }
        std::fs::write(block.join("tombstones"), [0u8; 9]).expect("tombstones");
        std::fs::create_dir_all(root.join("not-a-block")).expect("mkdir");

        let found = find_blocks(std::slice::from_ref(&root)).expect("blocks");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].ulid, ulid);
        assert_eq!(
            found[0].files,
            ["chunks/000001", "chunks/000002", "chunks/000010", "index"]
        );
        assert_eq!(
            find_blocks(std::slice::from_ref(&block)).expect("block")[0].ulid,
            ulid
        );

        std::fs::write(block.join("tombstones"), [0u8; 30]).expect("tombstones");
        let e = find_blocks(std::slice::from_ref(&block)).expect_err("deletions");
        assert!(e.to_string().contains("tombstones"), "{e}");
        assert!(find_blocks(&[root.join("not-a-block")]).is_err());
        let _ = std::fs::remove_dir_all(&root);
    }
}
