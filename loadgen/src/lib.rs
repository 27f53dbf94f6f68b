//! strata-loadgen: a deterministic node_exporter-like fleet ([`fleet`]) pushed over Prometheus
//! remote write ([`write`]) and read back over remote read to prove every sample arrived intact
//! ([`verify`]). Works against any remote-write receiver: strata, Cortex, Prometheus,
//! VictoriaMetrics. Profiles ([`fleet::profile`]) add churning Kubernetes pods and skewed
//! tenants; [`query`] and [`mix`] time PromQL queries against any Prometheus API.

pub mod backfill;
pub mod blocks;
pub mod fleet;
pub mod http;
pub mod mix;
pub mod query;
pub mod report;
pub mod upload;
pub mod usage;
pub mod verify;
pub mod wire;
pub mod write;

use std::io;
use std::path::PathBuf;

/// What can stop a run before it produces a report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{0}")]
    Invalid(String),
    #[error("snappy: {0}")]
    Snappy(#[from] snap::Error),
    #[error("protobuf: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("{}: {source}", path.display())]
    File { path: PathBuf, source: io::Error },
    #[error("{}: {source}", path.display())]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("http client: {0}")]
    Http(#[from] ureq::Error),
    #[error("a {0} thread panicked")]
    Panicked(&'static str),
}
