//! Prometheus TSDB blocks: writing and reading index v2, chunk segment files and meta.json.
